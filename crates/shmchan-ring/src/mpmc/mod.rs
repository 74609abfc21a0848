//! MPMC: a bounded queue with per-slot sequence stamps (Vyukov; crossbeam
//! `crossbeam-queue/src/array_queue.rs`), with send and receive split into *claim* and
//! *publish/release* as in crossbeam-channel `src/flavors/array.rs`.
//!
//! # Stamps
//!
//! Positions are monotonically increasing `u64` below 2^60 (36 years at 10^9 operations a
//! second; a cursor at or above it reads as `Corrupted`). Each slot starts with an `AtomicU64`
//! stamp that encodes a position and a state in its two low bits:
//!
//! | stamp        | meaning                                                        |
//! |--------------|----------------------------------------------------------------|
//! | `p << 2`     | free for the producer of position `p`                          |
//! | `p << 2 \| 1` | holds the record of position `p` (published)                   |
//! | `p << 2 \| 2` | position `p` was claimed and *skipped*: consumers pass over it |
//! | `p << 2 \| 3` | the record of `p` is being *adopted* from a dead consumer      |
//! |  bit 62 or 63 | no position reaches 2^60: `Corrupted`                          |
//!
//! Slot `i` starts free for position `i`. A producer loads the tail `t`, checks that stamp(t) is
//! `t << 2`, claims with a CAS of the tail, writes the record, and publishes `t << 2 | 1` with
//! Release. A consumer loads the head `h`, checks stamp(h) is `h << 2 | 1` (or `| 2`), claims with
//! a CAS of the head, reads, and releases the slot with `(h + capacity) << 2` (Release). Unlike a
//! plain `pos + 1` stamp, this encoding is unambiguous for every capacity including 1.
//!
//! Batches and grants claim `k` slots with **one** CAS after checking each slot's stamp, then
//! store `k` stamps. A claim cannot be undone, so an MPMC [`WriteGrant`] dropped uncommitted
//! publishes its slots as *skipped*, and consumers silently pass over skipped slots (the same
//! mechanism will settle a dead producer's half-written slot). A [`ReadGrant`]'s claim is final
//! too: dropping or releasing it frees every slot it holds.
//!
//! # Waiting out a claim
//!
//! A send holds the ring from its claim (the CAS of the tail) and a receive from its claim of
//! the head, as in crossbeam-channel's array flavor, so the try operations are linearizable:
//! `Empty` only if the tail equalled the head at some instant during the call, `Full` only if
//! the tail was `capacity` past the head. Between claim and publish (or release) the stamp of
//! the slot lags its cursor, and a try operation that finds the slot it needs in that state
//! does not report `Empty`/`Full` at once:
//!
//! - a consumer that finds the head slot unpublished loads the tail: at the head, nothing was
//!   claimed, so `Empty`; past it, a producer claimed the slot and is writing it;
//! - a producer that finds the tail slot still holding the record of one lap earlier loads the
//!   head: not past that record, so `Full`; past it, a consumer claimed it and is reading it;
//!
//! and in the second cases it watches that slot's stamp (not the cursors, which the other
//! side's claims write) until it says the claim is done, then starts over. The wait is
//! bounded: 128 pause hints, one between two looks (a few microseconds: a running claimer is
//! done long before), then, with the `std` feature (shmchan enables it), yielding the CPU
//! until [`CLAIM_WAIT`] (10 ms) has passed since the first pause; without `std`, a bounded
//! count of pause hints. A blocking wait on the doorbell is the upper layer's business, not
//! this one's.
//!
//! The price: a try operation that finds its slot not ready loads the other side's cursor
//! once (crossbeam's array flavor does the same), so a consumer polling an empty ring, or a
//! producer polling a full one, reads a line the other side writes at every claim. A caller
//! that polls — tries again until it succeeds, as a blocking send or receive does while it
//! spins — needs no linearizable answer and should not pay that: it turns the wait off with
//! [`MpmcProducer::set_linearizable`] / [`MpmcConsumer::set_linearizable`], and its tries
//! then answer `Full`/`Empty` from the slot's stamp alone (the cursor is not loaded, nothing is
//! waited for).
//!
//! A claimer that stays stalled past the bound — descheduled for longer, stopped (`SIGSTOP`,
//! a debugger), dead and not yet settled, or a handle that holds a [`WriteGrant`] or
//! [`ReadGrant`] across the call — makes the operation report `Empty`/`Full` as if the ring
//! were empty or full, after the wait: nothing is lost (the record arrives, or the slot frees,
//! when the claimer finishes), but that one answer is not linearizable. A handle waits for a
//! given claim once: later calls of the same handle that meet the same claim answer at once,
//! so such a claimer costs each handle one wait, not one per call. As in every Vyukov
//! queue (see heapless `src/mpmc.rs`), records published after a stalled producer's position
//! wait behind it, and a stalled consumer keeps its slot from being reused one lap later.
//! Handles that announce their work in a [`Working`] record let the crash-recovery layer
//! settle slots whose claimer died: see [`crate::settle`].
//!
//! # Hostile peers
//!
//! Every slot index is reduced below the capacity. A stamp that says the cursor we loaded is stale while a reload
//! shows the same cursor cannot happen in a correct ring (the stamp's writer moved the cursor
//! before its Release store) and is reported as `Corrupted`; a stamp with bit 62 or 63 set
//! likewise. Every retry loop is bounded and ends in `Full`/`Empty` without progress.

mod claim;
mod grant;
mod patience;
pub mod settle;

pub use grant::{ReadGrant, WriteGrant};
#[cfg(all(any(feature = "std", test), not(loom)))]
pub use patience::CLAIM_WAIT;

use core::fmt;
use core::ptr::NonNull;

use crate::error::{PopError, PushError};
use crate::handle::handle_accessors;
use crate::raw::{copy_record, Core};
use claim::{pop_one, push_one};
use patience::Local;
use settle::{Announcer, Working};

/// Positions at or above this are treated as corruption (stamps must fit `pos << 2`).
const MAX_POS: u64 = 1 << 60;
const TAG_FULL: u64 = 1;
const TAG_SKIPPED: u64 = 2;
const TAG_ADOPTED: u64 = 3;
const TAG_MASK: u64 = 3;
/// Stamps of positions below [`MAX_POS`] never have these bits set.
const STAMP_GARBAGE: u64 = !((MAX_POS << 2) - 1);

/// The stamp of a slot free for the producer of `pos`.
#[inline(always)]
pub(crate) const fn free_stamp(pos: u64) -> u64 {
    pos << 2
}

#[inline(always)]
const fn full_stamp(pos: u64) -> u64 {
    pos << 2 | TAG_FULL
}

#[inline(always)]
const fn skipped_stamp(pos: u64) -> u64 {
    pos << 2 | TAG_SKIPPED
}

/// The stamp of a record being adopted from a dead consumer (see [`crate::settle`]).
#[inline(always)]
const fn adopted_stamp(pos: u64) -> u64 {
    pos << 2 | TAG_ADOPTED
}

/// A producer end of an MPMC ring (any number may exist). Built by
/// [`RawRing::mpmc_producer`](crate::RawRing::mpmc_producer); `Clone` (a clone has no
/// [`Working`] record).
pub struct MpmcProducer {
    core: Core,
    working: Option<Announcer>,
    /// The handle's own claim state (see [`patience::Local`]).
    local: Local,
}

impl Clone for MpmcProducer {
    fn clone(&self) -> Self {
        MpmcProducer::new(self.core)
    }
}

// SAFETY: the handle holds pointers into the shared region (see RawRing's Send impl) and
// constants; MPMC handles may be used from any thread and any number may exist.
unsafe impl Send for MpmcProducer {}
// SAFETY: `&self` methods only perform atomic operations and read constants.
unsafe impl Sync for MpmcProducer {}

impl fmt::Debug for MpmcProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpmcProducer")
            .field("ring", &self.core.ring)
            .finish()
    }
}

impl MpmcProducer {
    pub(crate) fn new(core: Core) -> Self {
        MpmcProducer {
            core,
            working: None,
            local: Local::new(&core),
        }
    }

    /// Makes this handle announce every claim in `w` (position, count, role) before claiming
    /// and clear it after publishing, so that if its process dies mid-operation a survivor can
    /// [`settle_producer`](crate::RawRing::settle_producer) what it claimed (see
    /// [`crate::settle`]). Costs two stores to `w` per operation (three when the count changes).
    ///
    /// # Safety
    /// `w` points at a valid [`Working`] (e.g. in the upper layer's endpoint table) that stays
    /// valid while this handle lives and that no other handle announces in meanwhile.
    pub unsafe fn set_working(&mut self, w: NonNull<Working>) {
        self.working = Some(Announcer::new(w));
    }

    /// Whether this handle's try operations report `Full` only when the ring was full at
    /// some instant of the call (`true`, the default): a try that finds the tail slot still
    /// held by a consumer between its claim and its release loads the head and waits that
    /// consumer out, briefly (see "Waiting out a claim" in the [module docs](self)). With
    /// `false` it reports `Full` from the slot's stamp alone, without loading the head: for a
    /// caller that polls (tries again until it succeeds), to which that answer is as good and
    /// the load of a line every consumer writes is a cost at every poll.
    ///
    /// ```
    /// use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
    /// use std::ptr::NonNull;
    /// use shmchan_ring::{Layout, PushError, RawRing, RingConfig, RingKind};
    ///
    /// let cfg = RingConfig::new(RingKind::Mpmc, 1, 8, 8);
    /// let len = Layout::new(&cfg).unwrap().total_len as usize;
    /// let mem = AllocLayout::from_size_align(len, 128).unwrap();
    /// let base = NonNull::new(unsafe { alloc_zeroed(mem) }).unwrap();
    /// // SAFETY: fresh zeroed allocation of `len` bytes, 128-aligned, freed after the last use.
    /// let ring = unsafe { RawRing::init(base, len, &cfg) }.unwrap();
    /// let mut tx = ring.mpmc_producer().unwrap();
    /// tx.set_linearizable(false); // this handle polls: it tries again until it succeeds
    /// tx.try_push(&1u64.to_ne_bytes()).unwrap();
    /// assert_eq!(tx.try_push(&2u64.to_ne_bytes()), Err(PushError::Full));
    /// drop(tx);
    /// unsafe { dealloc(base.as_ptr(), mem) };
    /// ```
    #[inline]
    pub fn set_linearizable(&mut self, on: bool) {
        self.local.linear = on;
    }

    /// Pushes one record by letting `write` fill the claimed slot in place (`record_size` bytes
    /// at the pointer, aligned to `record_align`); returns what `write` returns. If `write`
    /// panics the slot is published as skipped.
    #[inline]
    pub fn try_push_with<R>(
        &mut self,
        write: impl FnOnce(NonNull<u8>) -> R,
    ) -> Result<R, PushError> {
        // Two copies of the path, so the one without a Working record tests for it once, not
        // at every announcement.
        match self.working.as_mut() {
            None => push_one(&self.core, None, &mut self.local, write),
            Some(a) => push_one(&self.core, Some(a), &mut self.local, write),
        }
    }

    /// Pushes one record (exactly `record_size` bytes).
    #[inline]
    pub fn try_push(&mut self, record: &[u8]) -> Result<(), PushError> {
        let rs = self.core.record_size;
        if record.len() != rs {
            return Err(PushError::WrongLength {
                expected: rs,
                got: record.len(),
            });
        }
        self.try_push_with(|slot| {
            // SAFETY: `record` holds rs readable bytes; the claimed slot holds rs bytes we own
            // for writing until publish.
            unsafe { copy_record(record.as_ptr(), slot.as_ptr(), rs) }
        })
    }

    /// Pushes as many whole records of `records` as fit, with one claim CAS and one stamp store
    /// per record; returns how many (0 if full, corrupted, or none given).
    #[inline]
    pub fn push_batch(&mut self, records: &[u8]) -> usize {
        self.try_push_batch(records).unwrap_or(0)
    }

    /// [`push_batch`](Self::push_batch) that tells `Full` from `Corrupted`. Returns `Ok(0)` only
    /// when `records` holds no whole record.
    pub fn try_push_batch(&mut self, records: &[u8]) -> Result<usize, PushError> {
        let rs = self.core.record_size;
        let want = (self.core.records_in(records.len()) as u64).min(self.core.capacity);
        if want == 0 {
            return Ok(0);
        }
        let (start, n) =
            self.core
                .claim_push(want, false, self.working.as_mut(), &mut self.local)?;
        for i in 0..n {
            // SAFETY: record i of `records` is readable (i < n ≤ want); the slot is claimed.
            unsafe {
                self.core
                    .write_record(start + i, records.as_ptr().add(i as usize * rs))
            };
        }
        for i in 0..n {
            self.core.publish_slot(start + i);
        }
        if let Some(a) = &self.working {
            a.clear();
        }
        Ok(n as usize)
    }

    /// Claims exactly `n` slots to write in place (`Full` if fewer are free in a row, including
    /// when `n > capacity`). `n == 0` gives an empty grant.
    #[inline]
    pub fn try_reserve(&mut self, n: usize) -> Result<WriteGrant<'_>, PushError> {
        let want = n as u64;
        if want == 0 {
            return Ok(WriteGrant::new(self, 0, 0));
        }
        if want > self.core.capacity {
            return Err(PushError::Full);
        }
        if want == 1 {
            // The one-record push's inline claim.
            let c = self
                .core
                .claim_push_one(self.working.as_mut(), &mut self.local)?;
            return Ok(WriteGrant::new(self, c.pos, 1));
        }
        let (start, k) =
            self.core
                .claim_push(want, true, self.working.as_mut(), &mut self.local)?;
        Ok(WriteGrant::new(self, start, k))
    }

    /// Claims up to `n` slots (0 if full or corrupted).
    #[inline]
    pub fn reserve_up_to(&mut self, n: usize) -> WriteGrant<'_> {
        let want = (n as u64).min(self.core.capacity);
        if want == 0 {
            return WriteGrant::new(self, 0, 0);
        }
        match self
            .core
            .claim_push(want, false, self.working.as_mut(), &mut self.local)
        {
            Ok((start, k)) => WriteGrant::new(self, start, k),
            Err(_) => WriteGrant::new(self, 0, 0),
        }
    }

    handle_accessors! {
        /// Rings the consumers' doorbell: returns how many tokens the doorbell layer must post
        /// (`data_cell().take_tokens()`; see [`crate::wait`]). Call once after every publish and
        /// after dropping a grant uncommitted (skipped slots must be passed over).
        wake_consumers: data_cell
    }
}

/// A consumer end of an MPMC ring (any number may exist). Built by
/// [`RawRing::mpmc_consumer`](crate::RawRing::mpmc_consumer); `Clone` (a clone has no
/// [`Working`] record).
pub struct MpmcConsumer {
    core: Core,
    working: Option<Announcer>,
    /// The handle's own claim state (see [`patience::Local`]).
    local: Local,
}

impl Clone for MpmcConsumer {
    fn clone(&self) -> Self {
        MpmcConsumer::new(self.core)
    }
}

// SAFETY: as for MpmcProducer.
unsafe impl Send for MpmcConsumer {}
// SAFETY: as for MpmcProducer.
unsafe impl Sync for MpmcConsumer {}

impl fmt::Debug for MpmcConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpmcConsumer")
            .field("ring", &self.core.ring)
            .finish()
    }
}

impl MpmcConsumer {
    pub(crate) fn new(core: Core) -> Self {
        MpmcConsumer {
            core,
            working: None,
            local: Local::new(&core),
        }
    }

    /// Makes this handle announce every claim in `w` before claiming and clear it after
    /// releasing (including a [`ReadGrant`]'s lifetime), so that if its process dies
    /// mid-operation a survivor can [`adopt`](Self::adopt) the records it held (see
    /// [`crate::settle`]). Required for [`adopt`](Self::adopt) itself. Costs two stores to `w`
    /// per operation (three when the count changes).
    ///
    /// # Safety
    /// `w` points at a valid [`Working`] that stays valid while this handle lives and that no
    /// other handle announces in meanwhile.
    pub unsafe fn set_working(&mut self, w: NonNull<Working>) {
        self.working = Some(Announcer::new(w));
    }

    /// Whether this handle's try operations report `Empty` only when the ring was empty at
    /// some instant of the call (`true`, the default): a try that finds the head slot claimed
    /// by a producer and not yet published loads the tail and waits that producer out,
    /// briefly. With `false` it reports `Empty` from the slot's stamp alone, without loading
    /// the tail: for a caller that polls. See [`MpmcProducer::set_linearizable`].
    #[inline]
    pub fn set_linearizable(&mut self, on: bool) {
        self.local.linear = on;
    }

    /// Pops one record by letting `read` read the claimed slot in place (`record_size` bytes at
    /// the pointer, aligned to `record_align`); returns what `read` returns. Skipped slots ahead
    /// of it are passed over. If `read` panics the slot is freed (the record is lost).
    ///
    /// To copy out a record of more than 16 bytes, copy it into memory of your own inside
    /// `read` and return `()`: a record returned as `R` comes back in a `Result<R, PopError>`,
    /// which the optimizer may split into parts it copies the record through one by one (a
    /// 64-byte record streamed across processes ran at half the rate that way).
    #[inline]
    pub fn try_pop_with<R>(&mut self, read: impl FnOnce(NonNull<u8>) -> R) -> Result<R, PopError> {
        // As in `MpmcProducer::try_push_with`.
        match self.working.as_mut() {
            None => pop_one(&self.core, None, &mut self.local, read),
            Some(a) => pop_one(&self.core, Some(a), &mut self.local, read),
        }
    }

    /// Pushes one record back into the ring, as a producer would (at the tail, filled in place
    /// by `write`; see [`MpmcProducer::try_push_with`]): how a consumer hands on records it
    /// [`adopt`](Self::adopt)ed instead of keeping them in private memory, where its own death
    /// or drop would lose them.
    ///
    /// The claim is announced in this consumer's [`Working`] record with the *producer* role,
    /// so if the process dies mid-push a survivor settles it with
    /// [`settle_producer`](crate::RawRing::settle_producer) (see [`crate::settle`]). Ring the
    /// consumers' doorbell afterwards, as after any publish
    /// (`data_cell().take_tokens()`; see [`crate::wait`]).
    #[inline]
    pub fn push_back_with<R>(
        &mut self,
        write: impl FnOnce(NonNull<u8>) -> R,
    ) -> Result<R, PushError> {
        push_one(&self.core, self.working.as_mut(), &mut self.local, write)
    }

    /// Pops one record into `out` (exactly `record_size` bytes).
    #[inline]
    pub fn try_pop(&mut self, out: &mut [u8]) -> Result<(), PopError> {
        let rs = self.core.record_size;
        if out.len() != rs {
            return Err(PopError::WrongLength {
                expected: rs,
                got: out.len(),
            });
        }
        self.try_pop_with(|slot| {
            // SAFETY: the claimed slot holds rs published bytes we own for reading until
            // release; `out` holds rs writable bytes.
            unsafe { copy_record(slot.as_ptr(), out.as_mut_ptr(), rs) }
        })
    }

    /// Pops as many whole records as fit in `out` and are ready in a row (up to the next skipped
    /// or unpublished slot), with one claim CAS; returns how many.
    #[inline]
    pub fn pop_batch(&mut self, out: &mut [u8]) -> usize {
        self.try_pop_batch(out).unwrap_or(0)
    }

    /// [`pop_batch`](Self::pop_batch) that tells `Empty` from `Corrupted`. Returns `Ok(0)` only
    /// when `out` holds no whole record.
    pub fn try_pop_batch(&mut self, out: &mut [u8]) -> Result<usize, PopError> {
        let rs = self.core.record_size;
        let want = (self.core.records_in(out.len()) as u64).min(self.core.capacity);
        if want == 0 {
            return Ok(0);
        }
        let (start, n) =
            self.core
                .claim_pop(want, false, self.working.as_mut(), &mut self.local)?;
        for i in 0..n {
            // SAFETY: record i of `out` is writable (i < n ≤ want); the slot is claimed.
            unsafe {
                self.core
                    .read_record(start + i, out.as_mut_ptr().add(i as usize * rs))
            };
        }
        for i in 0..n {
            self.core.release_slot(start + i);
        }
        if let Some(a) = &self.working {
            a.clear();
        }
        Ok(n as usize)
    }

    /// Claims exactly `n` records in a row to read in place (`Empty` if fewer are ready before
    /// the next skipped or unpublished slot). `n == 0` gives an empty grant.
    // Always inlined: in the endpoint's one-record peek, a call here cost the MPMC zero-copy
    // path about a third of its rate across processes when the compiler stopped inlining it.
    #[inline(always)]
    pub fn try_peek(&mut self, n: usize) -> Result<ReadGrant<'_>, PopError> {
        let want = n as u64;
        if want == 0 {
            return Ok(ReadGrant::new(self, 0, 0));
        }
        if want > self.core.capacity {
            return Err(PopError::Empty);
        }
        if want == 1 {
            // The one-record pop's inline claim (the general claim is out of line).
            let c = self
                .core
                .claim_pop_one(self.working.as_mut(), &mut self.local)?;
            return Ok(ReadGrant::new(self, c.pos, 1));
        }
        let (start, k) = self
            .core
            .claim_pop(want, true, self.working.as_mut(), &mut self.local)?;
        Ok(ReadGrant::new(self, start, k))
    }

    /// Whether a take now would find something at the head: a published record, a skipped
    /// slot to pass over, or a stamp that a take must look into (a later lap's, or one that
    /// is not a stamp: corruption is reported by the take, never waited on). Unlike
    /// [`is_empty`](Self::is_empty)
    /// it does not read the producers' cursor, which a consumer waiting in a loop would pull
    /// away from producers claiming on it; a claim not yet published is not ready.
    #[inline]
    pub fn head_ready(&self) -> bool {
        self.core.head_ready()
    }

    /// Claims up to `n` records (0 if empty or corrupted).
    #[inline]
    pub fn peek_up_to(&mut self, n: usize) -> ReadGrant<'_> {
        let want = (n as u64).min(self.core.capacity);
        if want == 0 {
            return ReadGrant::new(self, 0, 0);
        }
        match self
            .core
            .claim_pop(want, false, self.working.as_mut(), &mut self.local)
        {
            Ok((start, k)) => ReadGrant::new(self, start, k),
            Err(_) => ReadGrant::new(self, 0, 0),
        }
    }

    handle_accessors! {
        /// Rings the producers' doorbell: returns how many tokens the doorbell layer must post
        /// (`room_cell().take_tokens()`; see [`crate::wait`]). Call once after every release, and
        /// after a pop that returned `Empty` (it may have passed over skipped slots, freeing room).
        wake_producers: room_cell
    }
}
