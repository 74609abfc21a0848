//! SPSC: a Lamport ring in which each endpoint caches the peer's cursor (rtrb's design,
//! `rtrb/src/lib.rs`).
//!
//! Positions are monotonically increasing `u64` (wrapping); slot index = `pos & (slots - 1)`,
//! and the producer stays at most `capacity` (≤ slots) positions ahead of the consumer.
//! The producer owns the tail cursor, the consumer the head cursor; each keeps its own cursor in
//! its handle (`tail`/`head`, written to shared memory with Release after every publish) and a
//! cached copy of the peer's cursor, reloaded with Acquire only when the cache says full (producer)
//! or empty (consumer). On the fast path an operation touches no line the peer writes.
//!
//! The mailbox: a one-record publish of a small record (at most
//! [`MAILBOX_MAX`](crate::layout::MAILBOX_MAX) bytes, whole words) also copies the record into
//! the producer cursor's line, and a consumer whose look at that cursor finds exactly one new
//! record takes it from there (a seqlock read) instead of fetching the slot's line: a waiting
//! reader's round trip then moves one cache line each way, as in a ring whose reader polls a
//! stamp in the slot, while the slots stay dense records for batches and zero copy. The slot
//! always holds the record too; the layout module says how a torn or stale mailbox is told
//! apart, and `spsc/mailbox.rs` holds the protocol's two halves.
//!
//! A reloaded peer cursor is validated: `tail - head > capacity` (wrapping) can only be written
//! by a broken or hostile peer and is reported as `Corrupted`. A peer can still make the ring
//! hand out stale or overwritten records, but every slot index is reduced below the capacity, so nothing it writes
//! leads out of the region.
//!
//! Grants: [`SpscProducer::try_reserve`] hands out slots to write in place; [`WriteGrant::commit`]
//! publishes them with one cursor store, and dropping the grant uncommitted publishes nothing.
//! [`SpscConsumer::try_peek`] hands out records to read in place; [`ReadGrant::release`] frees
//! them, and dropping the grant unreleased leaves them in the ring.

use core::ptr::NonNull;

use crate::raw::{copy_record, Core};
use crate::sync::{prefetch_write, prefetch_write_unchecked, CACHE_LINE};

mod consumer;
mod mailbox;
mod producer;

pub use consumer::{ReadGrant, SpscConsumer};
pub(crate) use mailbox::words as mailbox_words;
pub use producer::{SpscProducer, WriteGrant};

/// Copies `n` records from `src` into the slots of positions `start..start + n`.
///
/// # Safety
/// `src` is valid for reads of `n * record_size` bytes, `n ≤ capacity`, and the caller owns
/// those slots for writing.
#[inline]
unsafe fn copy_in(core: &Core, start: u64, src: *const u8, n: u64) {
    let rs = core.record_size;
    if core.stride == rs {
        // Records are contiguous: at most two memcpys (before and after the wrap point).
        for i in 0..n {
            core.tracker(start + i).write();
        }
        let first = n.min(core.lap - (start & core.mask)) as usize;
        // SAFETY: slots from `start`'s index up to the end of the slot array are `first`
        // contiguous records inside the region (Core invariant, stride == record_size); the rest
        // start at slot 0. `src` holds n records (caller contract); the caller owns the slots.
        unsafe {
            copy_record(src, core.slot(start).as_ptr(), first * rs);
            let rest = n as usize - first;
            if rest > 0 {
                copy_record(src.add(first * rs), core.slot(0).as_ptr(), rest * rs);
            }
        }
    } else {
        for i in 0..n {
            // SAFETY: record i of `src` is readable (caller contract); the caller owns the slot.
            unsafe { core.write_record(start + i, src.add(i as usize * rs)) };
        }
    }
}

/// Copies the records of positions `start..start + n` into `dst`.
///
/// # Safety
/// `dst` is valid for writes of `n * record_size` bytes, `n ≤ capacity`, and the caller owns
/// those slots for reading.
#[inline]
unsafe fn copy_out(core: &Core, start: u64, dst: *mut u8, n: u64) {
    let rs = core.record_size;
    if core.stride == rs {
        for i in 0..n {
            core.tracker(start + i).read();
        }
        let first = n.min(core.lap - (start & core.mask)) as usize;
        // SAFETY: as in `copy_in`, with source and destination swapped.
        unsafe {
            copy_record(core.slot(start).as_ptr(), dst, first * rs);
            let rest = n as usize - first;
            if rest > 0 {
                copy_record(core.slot(0).as_ptr(), dst.add(first * rs), rest * rs);
            }
        }
    } else {
        for i in 0..n {
            // SAFETY: record i of `dst` is writable (caller contract); the caller owns the slot.
            unsafe { core.read_record(start + i, dst.add(i as usize * rs)) };
        }
    }
}

/// The most bytes of slots a producer prefetches after a batch (see
/// [`SpscProducer::prefetch_next`]): a few lines, well inside any L1 cache.
const PREFETCH_MAX_BYTES: u64 = 1024;

/// Prefetches, for writing, every cache line of the `len` bytes of slots from `start` (`len`
/// bytes from `start` lie inside the slot array).
#[inline]
fn prefetch_run(start: NonNull<u8>, len: u64) {
    let mut off = 0;
    while off < len {
        prefetch_write(start.as_ptr().wrapping_add(off as usize));
        off += CACHE_LINE;
    }
}

/// The one-record paths' prefetch. At about one position per cache line of slots
/// ([`Core::prefetch_mask`]) it asks the CPU, through `prefetch`, for the slot
/// [`PREFETCH_AHEAD_BYTES`](crate::raw::PREFETCH_AHEAD_BYTES) beyond `pos`, but only if that
/// position is among the `owned` positions from `pos` on that are ours: free slots for the
/// producer, published records for the consumer. So a line the other side may still be using
/// is never pulled away from it, and near empty or near full (where a prefetch could only steal
/// a line) nothing is asked. A hint only: it changes no memory and cannot fault.
///
/// Why: crossing into a new line is where a streaming side stalls on a cross-core transfer (the
/// producer waits for ownership of a line the consumer read a lap ago; the consumer waits for a
/// line the producer wrote). Asking a few lines early overlaps those transfers with the records
/// in between. On the two-thread `throughput` bench it took our one-record rate from about
/// rtrb's to about 1.5× it.
#[inline(always)]
fn prefetch_ahead(core: &Core, pos: u64, owned: u64, prefetch: fn(*const u8)) {
    if pos & core.prefetch_mask == 0 && owned > core.prefetch_ahead {
        prefetch(core.slot(pos.wrapping_add(core.prefetch_ahead)).as_ptr());
    }
}

/// [`prefetch_ahead`] for the producer (`owned`: its free slots), in a writable state, with
/// the CPU's answer kept in [`Core::write_prefetch_ahead`].
#[inline(always)]
fn prefetch_ahead_for_write(core: &Core, pos: u64, owned: u64) {
    if pos & core.prefetch_mask == 0 && owned > core.write_prefetch_ahead {
        // SAFETY: `write_prefetch_ahead` is `u64::MAX`, which no `u64` exceeds, unless
        // `can_prefetch_write` said yes when the core was built.
        unsafe {
            prefetch_write_unchecked(core.slot(pos.wrapping_add(core.prefetch_ahead)).as_ptr())
        };
    }
}
