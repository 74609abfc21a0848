//! What the ring benchmarks share: a ring of 8-byte records in heap memory.

use shmchan_ring::model::Region;
use shmchan_ring::{Layout, RawRing, RingConfig, RingKind};

/// A ring of 8-byte records in a zeroed 128-aligned heap region ([`Region`], the one the unit
/// tests and the fuzzer use), freed on drop.
pub struct HeapRing {
    pub ring: RawRing,
    /// Owns the memory `ring` points into; dropped with the benchmark run, after every handle.
    _region: Region,
}

impl HeapRing {
    pub fn new(kind: RingKind, capacity: u32) -> HeapRing {
        let cfg = RingConfig::new(kind, capacity, 8, 8);
        let region = Region::zeroed(Layout::new(&cfg).unwrap().total_len as usize);
        let ring = region.init(&cfg).unwrap();
        HeapRing {
            ring,
            _region: region,
        }
    }
}
