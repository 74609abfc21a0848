//! What the ring benchmarks share: a ring of 8-byte records in heap memory.

use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
use std::ptr::NonNull;

use shmchan_ring::{Layout, RawRing, RingConfig, RingKind};

/// A ring of 8-byte records in a zeroed 128-aligned heap allocation, freed on drop.
pub struct HeapRing {
    ptr: NonNull<u8>,
    alloc: AllocLayout,
    pub ring: RawRing,
}

impl HeapRing {
    pub fn new(kind: RingKind, capacity: u32) -> HeapRing {
        let cfg = RingConfig::new(kind, capacity, 8, 8);
        let len = Layout::new(&cfg).unwrap().total_len as usize;
        let alloc = AllocLayout::from_size_align(len, 128).unwrap();
        // SAFETY: non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(alloc) }).unwrap();
        // SAFETY: fresh zeroed allocation of `len` bytes, 128-aligned, freed only in Drop, after
        // every handle (and every benchmark thread using one) is gone.
        let ring = unsafe { RawRing::init(ptr, len, &cfg) }.unwrap();
        HeapRing { ptr, alloc, ring }
    }
}

impl Drop for HeapRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; no handle outlives the benchmark run.
        unsafe { dealloc(self.ptr.as_ptr(), self.alloc) }
    }
}
