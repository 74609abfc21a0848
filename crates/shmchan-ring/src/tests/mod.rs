//! Unit tests: layout, validation, corruption handling, threaded smoke tests, model sequences
//! and the fuzz corpus replay. Miri runs all of them (the large ones shrink under `cfg(miri)`).
//!
//! One file per topic; this one holds what they share (`use super::*` in each).

mod differential;
mod layout;
mod mailbox;
mod operations;
mod settle;

use crate::model::Region;
use crate::*;

fn cfg(kind: RingKind, capacity: u32, size: u32, align: u32) -> RingConfig {
    RingConfig::new(kind, capacity, size, align)
}

fn region_for(c: &RingConfig) -> (Region, RawRing) {
    let l = Layout::new(c).unwrap();
    let region = Region::zeroed(l.total_len as usize);
    let ring = region.init(c).unwrap();
    (region, ring)
}

/// The offset in the region of the MPMC stamp of slot `i` (a slot's first word).
fn stamp_offset(ring: &RawRing, i: u64) -> u64 {
    let l = ring.layout();
    l.slots_offset + i * u64::from(l.info.slot_stride)
}

/// Overwrites a u64 in the region (as a hostile peer would).
fn poke_u64(region: &Region, offset: u64, v: u64) {
    for (i, b) in v.to_ne_bytes().into_iter().enumerate() {
        region.scribble(offset as usize + i, b);
    }
}

fn poke_u32(region: &Region, offset: u64, v: u32) {
    for (i, b) in v.to_ne_bytes().into_iter().enumerate() {
        region.scribble(offset as usize + i, b);
    }
}
