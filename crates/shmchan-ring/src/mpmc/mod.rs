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
//! # The stalled-claimer caveat
//!
//! As in every Vyukov queue (see heapless `src/mpmc.rs`), a producer that claimed a slot and
//! stalls before publishing blocks consumers at that position even if later positions are
//! published (they see `Empty`); a consumer that stalls between claim and release keeps that slot
//! from being reused (producers see `Full` one lap later). Handles that announce their work in a
//! [`Working`] record let the crash-recovery layer settle slots whose claimer died: see
//! [`crate::settle`].
//!
//! # Hostile peers
//!
//! Every slot address is masked. A stamp that says the cursor we loaded is stale while a reload
//! shows the same cursor cannot happen in a correct ring (the stamp's writer moved the cursor
//! before its Release store) and is reported as `Corrupted`; a stamp with bit 62 or 63 set
//! likewise. Every retry loop is bounded and ends in `Full`/`Empty` without progress.

use core::fmt;
use core::mem;
use core::ptr::NonNull;

pub mod settle;

use crate::error::{PopError, PushError};
use crate::raw::{copy_record, Core, RawRing};
use crate::sync::{spin_loop, AtomicU64, Ordering};
use crate::wait::WaitCell;
use settle::{Announcer, Working, ROLE_CONSUMER, ROLE_PRODUCER};

/// Positions at or above this are treated as corruption (stamps must fit `pos << 2`).
const MAX_POS: u64 = 1 << 60;
const TAG_FULL: u64 = 1;
const TAG_SKIPPED: u64 = 2;
const TAG_ADOPTED: u64 = 3;
const TAG_MASK: u64 = 3;
/// Stamps of positions below [`MAX_POS`] never have these bits set.
const STAMP_GARBAGE: u64 = !((MAX_POS << 2) - 1);
/// Bound on claim retries: each retry means another party made progress, so a legitimate run
/// never comes near it; with static or garbage memory every loop ends well before.
const RETRIES: u32 = 1 << 12;

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

/// Loads a cursor (Relaxed: claims are validated by the stamps, which carry the
/// synchronisation) and rejects values no correct ring reaches.
#[inline(always)]
fn load_pos(cursor: &AtomicU64) -> Option<u64> {
    check_pos(cursor.load(Ordering::Relaxed))
}

#[inline(always)]
fn check_pos(pos: u64) -> Option<u64> {
    if pos < MAX_POS {
        Some(pos)
    } else {
        None
    }
}

/// A slot as seen by the producer of position `q`.
enum ForPush {
    Free,
    /// Still holds an older position (full, or a consumer has not released it yet).
    Behind,
    /// Already used for `q` or later: our tail is stale.
    Ahead,
    Corrupt,
}

#[inline(always)]
fn classify_push(s: u64, q: u64) -> ForPush {
    if s == free_stamp(q) {
        ForPush::Free
    } else if s & STAMP_GARBAGE != 0 {
        ForPush::Corrupt
    } else if s >> 2 < q {
        ForPush::Behind
    } else {
        ForPush::Ahead
    }
}

/// A slot as seen by the consumer of position `q`.
enum ForPop {
    Data,
    Skipped,
    /// Not published for `q` yet.
    NotReady,
    /// Already consumed (or beyond): our head is stale.
    Ahead,
    Corrupt,
}

#[inline(always)]
fn classify_pop(s: u64, q: u64) -> ForPop {
    let (p, tag) = (s >> 2, s & TAG_MASK);
    if s & STAMP_GARBAGE != 0 {
        ForPop::Corrupt
    } else if p == q {
        match tag {
            TAG_FULL => ForPop::Data,
            TAG_SKIPPED => ForPop::Skipped,
            // Adopted: a consumer claimed q already, so our head is stale.
            TAG_ADOPTED => ForPop::Ahead,
            _ => ForPop::NotReady,
        }
    } else if p < q {
        ForPop::NotReady
    } else {
        ForPop::Ahead
    }
}

/// A position claimed by one of the single-record paths, with its slot's address.
///
/// Invariant: `slot == core.slot(pos)` for the ring whose claim made it.
#[derive(Clone, Copy)]
struct Claimed {
    pos: u64,
    slot: NonNull<u8>,
}

impl Claimed {
    #[inline(always)]
    fn new(core: &Core, pos: u64) -> Claimed {
        Claimed {
            pos,
            slot: core.slot(pos),
        }
    }
}

impl Core {
    /// Claims the one slot at the tail: the single-record fast path of [`Core::claim_push`].
    ///
    /// Only the common case is handled inline — the slot is free for the tail we loaded and the
    /// CAS succeeds — with exactly the orderings of `claim_push` (one Acquire stamp load, the
    /// announcement, one Release CAS). Anything else (full, stale tail, lost CAS, garbage) goes to
    /// the general out-of-line loop, which starts over from a fresh tail.
    #[inline(always)]
    fn claim_push_one(&self, mut ann: Option<&mut Announcer>) -> Result<Claimed, PushError> {
        let tail = self.tail().load(Ordering::Relaxed);
        if tail < MAX_POS {
            // The slot's address is computed once and used for the claim, the write and the
            // publish (the single-record paths are instruction-bound when the peer keeps up).
            let slot = self.slot(tail);
            // SAFETY: `slot` is the start of a slot of this ring.
            let stamp = unsafe { self.stamp_at(slot) };
            // SYNC(mpmc-free): as in `claim_push_inner`.
            if stamp.load(Ordering::Acquire) == free_stamp(tail) {
                if let Some(a) = ann.as_deref_mut() {
                    a.announce(tail, 1, ROLE_PRODUCER);
                }
                // SYNC(settle-claim): as in `claim_push_inner`.
                if self
                    .tail()
                    .compare_exchange(tail, tail + 1, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(Claimed { pos: tail, slot });
                }
            }
        }
        self.claim_push_slow(ann)
    }

    #[cold]
    #[inline(never)]
    fn claim_push_slow(&self, ann: Option<&mut Announcer>) -> Result<Claimed, PushError> {
        self.claim_push(1, true, ann)
            .map(|(pos, _)| Claimed::new(self, pos))
    }

    /// Claims up to `want` (≥ 1, ≤ capacity) consecutive free slots from the tail with one CAS;
    /// with `exact`, all `want` or none. Returns the first position and the count (≥ 1).
    #[inline]
    fn claim_push(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
    ) -> Result<(u64, u64), PushError> {
        let r = self.claim_push_inner(want, exact, ann.as_deref_mut());
        if r.is_err() {
            // A failed claim must not leave an announcement that makes settlers defer.
            if let Some(a) = ann {
                a.clear();
            }
        }
        r
    }

    #[inline(always)]
    fn claim_push_inner(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
    ) -> Result<(u64, u64), PushError> {
        let mut tail = load_pos(self.tail()).ok_or(PushError::Corrupted)?;
        for _ in 0..RETRIES {
            let mut n = 0;
            let mut ahead = false;
            while n < want {
                let q = tail + n;
                // SYNC(mpmc-free): pairs with the consumer's Release store in `release_slot`; its
                // read of the slot's previous record happens before our write.
                let s = self.stamp(q).load(Ordering::Acquire);
                match classify_push(s, q) {
                    ForPush::Free => n += 1,
                    ForPush::Behind => break,
                    ForPush::Ahead => {
                        ahead = true;
                        break;
                    }
                    ForPush::Corrupt => return Err(PushError::Corrupted),
                }
            }
            if ahead && n == 0 {
                // Whoever moved the stamp past `tail` advanced the tail before its Release store,
                // which our Acquire load saw: a fresh load must show a larger tail.
                let now = load_pos(self.tail()).ok_or(PushError::Corrupted)?;
                if now == tail {
                    return Err(PushError::Corrupted);
                }
                tail = now;
                continue;
            }
            if n == 0 || (exact && n < want) {
                return Err(PushError::Full);
            }
            if let Some(a) = ann.as_deref_mut() {
                a.announce(tail, n, ROLE_PRODUCER);
            }
            // The CAS arbitrates ownership of positions tail..tail+n; data visibility is carried
            // by the stamps (Acquire above, Release at publish).
            // SYNC(settle-claim): Release on success pairs with a settler's Acquire load of the
            // tail: a settler that sees the tail past a position sees the announcement of
            // whoever claimed it (every later tail write is a CAS, so it continues our release
            // sequence). It also keeps the announcement before the claim in program order.
            match self
                .tail()
                .compare_exchange(tail, tail + n, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return Ok((tail, n)),
                Err(now) => {
                    tail = check_pos(now).ok_or(PushError::Corrupted)?;
                    spin_loop();
                }
            }
        }
        Err(PushError::Full)
    }

    /// Publishes position `pos` as holding a record.
    #[inline(always)]
    fn publish_slot(&self, pos: u64) {
        self.publish_claimed(Claimed::new(self, pos));
    }

    /// Publishes a claimed position as holding a record.
    #[inline(always)]
    fn publish_claimed(&self, c: Claimed) {
        self.tracker(c.pos).write();
        // SAFETY: `c.slot` is the start of position `c.pos`'s slot (Claimed invariant).
        let stamp = unsafe { self.stamp_at(c.slot) };
        // SYNC(mpmc-publish): pairs with the consumer's Acquire stamp load in `claim_pop`; our
        // record write happens before its read.
        stamp.store(full_stamp(c.pos), Ordering::Release);
    }

    /// Publishes position `pos` as skipped (claimed, no record).
    #[inline(always)]
    fn skip_slot(&self, pos: u64) {
        // SYNC(mpmc-publish): as in `publish_slot` (orders any partial write before the next
        // lap's reuse through the consumer's release).
        self.stamp(pos).store(skipped_stamp(pos), Ordering::Release);
    }

    /// Claims the one record at the head: the single-record fast path of [`Core::claim_pop`].
    ///
    /// Only the common case is handled inline — the slot holds the record of the head we loaded
    /// and the CAS succeeds — with exactly the orderings of `claim_pop` (one Acquire stamp load,
    /// the announcement, one Release CAS). Anything else (empty, skipped slots, stale head, lost
    /// CAS, garbage) goes to the general out-of-line loop, which starts over from a fresh head.
    #[inline(always)]
    fn claim_pop_one(&self, mut ann: Option<&mut Announcer>) -> Result<Claimed, PopError> {
        let head = self.head().load(Ordering::Relaxed);
        if head < MAX_POS {
            // One address computation for the claim, the read and the release (as in
            // `claim_push_one`).
            let slot = self.slot(head);
            // SAFETY: `slot` is the start of a slot of this ring.
            let stamp = unsafe { self.stamp_at(slot) };
            // SYNC(mpmc-publish): as in `claim_pop_inner`.
            if stamp.load(Ordering::Acquire) == full_stamp(head) {
                if let Some(a) = ann.as_deref_mut() {
                    a.announce(head, 1, ROLE_CONSUMER);
                }
                // SYNC(settle-claim): as in `claim_pop_inner`.
                if self
                    .head()
                    .compare_exchange(head, head + 1, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(Claimed { pos: head, slot });
                }
            }
        }
        self.claim_pop_slow(ann)
    }

    #[cold]
    #[inline(never)]
    fn claim_pop_slow(&self, ann: Option<&mut Announcer>) -> Result<Claimed, PopError> {
        self.claim_pop(1, true, ann)
            .map(|(pos, _)| Claimed::new(self, pos))
    }

    /// Claims up to `want` (≥ 1, ≤ capacity) consecutive published records from the head with
    /// one CAS, passing over (and freeing) skipped slots before them; with `exact`, all `want` or
    /// none. Returns the first record's position and the count (≥ 1).
    #[inline]
    fn claim_pop(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
    ) -> Result<(u64, u64), PopError> {
        let r = self.claim_pop_inner(want, exact, ann.as_deref_mut());
        if r.is_err() {
            // As in claim_push: no stale announcement after a failed claim.
            if let Some(a) = ann {
                a.clear();
            }
        }
        r
    }

    #[inline(always)]
    fn claim_pop_inner(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
    ) -> Result<(u64, u64), PopError> {
        let mut head = load_pos(self.head()).ok_or(PopError::Corrupted)?;
        for _ in 0..RETRIES {
            let (mut skipped, mut data) = (0u64, 0u64);
            let mut ahead = false;
            while data < want && skipped + data < self.capacity {
                let q = head + skipped + data;
                // SYNC(mpmc-publish): pairs with the producer's Release store in `publish_slot`
                // / `skip_slot`; its record write happens before our read.
                let s = self.stamp(q).load(Ordering::Acquire);
                match classify_pop(s, q) {
                    ForPop::Data => data += 1,
                    ForPop::Skipped if data == 0 => skipped += 1,
                    ForPop::Skipped | ForPop::NotReady => break,
                    ForPop::Ahead => {
                        ahead = true;
                        break;
                    }
                    ForPop::Corrupt => return Err(PopError::Corrupted),
                }
            }
            if ahead && skipped + data == 0 {
                // As in claim_push: the stamp's writer advanced the head before its Release.
                let now = load_pos(self.head()).ok_or(PopError::Corrupted)?;
                if now == head {
                    return Err(PopError::Corrupted);
                }
                head = now;
                continue;
            }
            let take = if exact && data < want { 0 } else { data };
            let total = skipped + take;
            if total == 0 {
                return Err(PopError::Empty);
            }
            if let Some(a) = ann.as_deref_mut() {
                a.announce(head, total, ROLE_CONSUMER);
            }
            // Ownership only; visibility comes from the stamps (see claim_push).
            // SYNC(settle-claim): Release on success, as in claim_push, for the head.
            match self.head().compare_exchange(
                head,
                head + total,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    for i in 0..skipped {
                        self.release_slot(head + i);
                    }
                    head += skipped;
                    if take > 0 {
                        return Ok((head, take));
                    }
                }
                Err(now) => {
                    head = check_pos(now).ok_or(PopError::Corrupted)?;
                    spin_loop();
                }
            }
        }
        Err(PopError::Empty)
    }

    /// Frees position `pos`'s slot for the producer one lap later.
    #[inline(always)]
    fn release_slot(&self, pos: u64) {
        self.release_claimed(Claimed::new(self, pos));
    }

    /// Frees a claimed position's slot for the producer one lap later.
    #[inline(always)]
    fn release_claimed(&self, c: Claimed) {
        self.tracker(c.pos).read();
        // SAFETY: `c.slot` is the start of position `c.pos`'s slot (Claimed invariant).
        let stamp = unsafe { self.stamp_at(c.slot) };
        // SYNC(mpmc-free): pairs with the producer's Acquire stamp load in `claim_push`; our
        // read of the record happens before its overwrite.
        stamp.store(free_stamp(c.pos + self.capacity), Ordering::Release);
    }
}

/// Publishes a claimed slot as skipped if the user's closure unwinds.
struct SkipOnUnwind<'a> {
    core: &'a Core,
    pos: u64,
}

impl Drop for SkipOnUnwind<'_> {
    fn drop(&mut self) {
        self.core.skip_slot(self.pos);
    }
}

/// Frees a claimed slot if the user's closure unwinds.
struct ReleaseOnUnwind<'a> {
    core: &'a Core,
    pos: u64,
}

impl Drop for ReleaseOnUnwind<'_> {
    fn drop(&mut self) {
        self.core.release_slot(self.pos);
    }
}

/// The single-record push: claim, `write` in place, publish, clear the announcement.
#[inline(always)]
fn push_one<R>(
    core: &Core,
    mut ann: Option<&mut Announcer>,
    write: impl FnOnce(NonNull<u8>) -> R,
) -> Result<R, PushError> {
    let c = core.claim_push_one(ann.as_deref_mut())?;
    core.tracker(c.pos).write();
    let guard = SkipOnUnwind { core, pos: c.pos };
    // SAFETY: `c.slot` is the start of position `c.pos`'s slot (Claimed invariant).
    let r = write(unsafe { core.record_at(c.slot) });
    mem::forget(guard);
    core.publish_claimed(c);
    if let Some(a) = ann {
        a.clear();
    }
    Ok(r)
}

/// The single-record pop: claim, `read` in place, release, clear the announcement.
#[inline(always)]
fn pop_one<R>(
    core: &Core,
    mut ann: Option<&mut Announcer>,
    read: impl FnOnce(NonNull<u8>) -> R,
) -> Result<R, PopError> {
    let c = core.claim_pop_one(ann.as_deref_mut())?;
    core.tracker(c.pos).read();
    let guard = ReleaseOnUnwind { core, pos: c.pos };
    // SAFETY: `c.slot` is the start of position `c.pos`'s slot (Claimed invariant).
    let r = read(unsafe { core.record_at(c.slot) });
    mem::forget(guard);
    core.release_claimed(c);
    if let Some(a) = ann {
        a.clear();
    }
    Ok(r)
}

/// A producer end of an MPMC ring (any number may exist). Built by
/// [`RawRing::mpmc_producer`]; `Clone` (a clone has no [`Working`] record).
pub struct MpmcProducer {
    core: Core,
    working: Option<Announcer>,
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
        }
    }

    /// Makes this handle announce every claim in `w` (position, count, role) before claiming
    /// and clear it after publishing, so that if its process dies mid-operation a survivor can
    /// [`settle_producer`](RawRing::settle_producer) what it claimed (see [`crate::settle`]).
    /// Costs two stores to `w` per operation (three when the count changes).
    ///
    /// # Safety
    /// `w` points at a valid [`Working`] (e.g. in the upper layer's endpoint table) that stays
    /// valid while this handle lives and that no other handle announces in meanwhile.
    pub unsafe fn set_working(&mut self, w: NonNull<Working>) {
        self.working = Some(Announcer::new(w));
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
            None => push_one(&self.core, None, write),
            Some(a) => push_one(&self.core, Some(a), write),
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
        let (start, n) = self.core.claim_push(want, false, self.working.as_mut())?;
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
            return Ok(self.grant(0, 0));
        }
        if want > self.core.capacity {
            return Err(PushError::Full);
        }
        let (start, k) = self.core.claim_push(want, true, self.working.as_mut())?;
        Ok(self.grant(start, k))
    }

    /// Claims up to `n` slots (0 if full or corrupted).
    #[inline]
    pub fn reserve_up_to(&mut self, n: usize) -> WriteGrant<'_> {
        let want = (n as u64).min(self.core.capacity);
        if want == 0 {
            return self.grant(0, 0);
        }
        match self.core.claim_push(want, false, self.working.as_mut()) {
            Ok((start, k)) => self.grant(start, k),
            Err(_) => self.grant(0, 0),
        }
    }

    #[inline]
    fn grant(&mut self, start: u64, len: u64) -> WriteGrant<'_> {
        for i in 0..len {
            self.core.tracker(start + i).write();
        }
        WriteGrant {
            producer: self,
            start,
            len: len as usize,
        }
    }

    /// Rings the consumers' doorbell: returns how many tokens the doorbell layer must post
    /// (`data_cell().take_tokens()`; see [`crate::wait`]). Call once after every publish and
    /// after dropping a grant uncommitted (skipped slots must be passed over).
    #[inline]
    pub fn wake_consumers(&self) -> u32 {
        self.core.ring.data_cell().take_tokens()
    }

    /// The cell consumers waiting for records announce themselves on.
    #[inline]
    pub fn data_cell(&self) -> &WaitCell {
        self.core.ring.data_cell()
    }

    /// The cell producers waiting for room announce themselves on.
    #[inline]
    pub fn room_cell(&self) -> &WaitCell {
        self.core.ring.room_cell()
    }

    /// The ring.
    #[inline]
    pub fn ring(&self) -> &RawRing {
        &self.core.ring
    }

    /// Capacity in records.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.core.capacity as usize
    }

    /// Record size in bytes.
    #[inline]
    pub fn record_size(&self) -> usize {
        self.core.record_size
    }

    /// Claimed positions not yet claimed by consumers (approximate; see [`RawRing::len`]).
    #[inline]
    pub fn len(&self) -> usize {
        self.core.ring.len()
    }

    /// `len() == 0` (approximate).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len() == capacity()` (approximate).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }
}

/// Slots claimed by an [`MpmcProducer`], written in place and published by
/// [`commit`](Self::commit). The claim cannot be undone: dropping the grant uncommitted
/// publishes its slots as *skipped*, and consumers pass over them.
pub struct WriteGrant<'a> {
    producer: &'a mut MpmcProducer,
    start: u64,
    len: usize,
}

impl fmt::Debug for WriteGrant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteGrant")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl WriteGrant<'_> {
    /// Number of claimed slots.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `len() == 0`.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record of claimed slot `i` (`record_size` writable bytes, aligned to
    /// `record_align`), valid until the grant is committed or dropped.
    ///
    /// # Panics
    /// If `i >= len()`.
    #[inline]
    pub fn slot(&self, i: usize) -> NonNull<u8> {
        assert!(i < self.len, "slot {i} out of a grant of {}", self.len);
        self.producer.core.record(self.start + i as u64)
    }

    /// Copies `record` into slot `i`.
    ///
    /// # Panics
    /// If `i >= len()` or `record.len() != record_size`.
    pub fn write(&mut self, i: usize, record: &[u8]) {
        let rs = self.producer.core.record_size;
        assert_eq!(record.len(), rs, "record length");
        let dst = self.slot(i);
        // SAFETY: slot i is claimed by this grant (owned for writing) and holds rs bytes;
        // `record` holds rs readable bytes.
        unsafe { copy_record(record.as_ptr(), dst.as_ptr(), rs) }
    }

    /// Publishes every claimed slot.
    #[inline]
    pub fn commit(self) {
        let n = self.len;
        self.commit_first(n);
    }

    /// Publishes the first `k` slots (clamped to `len()`) and the rest as skipped.
    #[inline]
    pub fn commit_first(mut self, k: usize) {
        self.finish(k);
    }

    fn finish(&mut self, k: usize) {
        let core = &self.producer.core;
        for i in 0..self.len {
            let pos = self.start + i as u64;
            if i < k {
                core.publish_slot(pos);
            } else {
                core.skip_slot(pos);
            }
        }
        if let Some(a) = &self.producer.working {
            a.clear();
        }
        self.len = 0;
    }
}

impl Drop for WriteGrant<'_> {
    fn drop(&mut self) {
        if self.len > 0 {
            self.finish(0);
        }
    }
}

/// A consumer end of an MPMC ring (any number may exist). Built by
/// [`RawRing::mpmc_consumer`]; `Clone` (a clone has no [`Working`] record).
pub struct MpmcConsumer {
    core: Core,
    working: Option<Announcer>,
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

    /// Pops one record by letting `read` read the claimed slot in place (`record_size` bytes at
    /// the pointer, aligned to `record_align`); returns what `read` returns. Skipped slots ahead
    /// of it are passed over. If `read` panics the slot is freed (the record is lost).
    #[inline]
    pub fn try_pop_with<R>(&mut self, read: impl FnOnce(NonNull<u8>) -> R) -> Result<R, PopError> {
        // As in `MpmcProducer::try_push_with`.
        match self.working.as_mut() {
            None => pop_one(&self.core, None, read),
            Some(a) => pop_one(&self.core, Some(a), read),
        }
    }

    /// Pushes one record back into the ring, as a producer would (at the tail, filled in place
    /// by `write`; see [`MpmcProducer::try_push_with`]): how a consumer hands on records it
    /// [`adopt`](Self::adopt)ed instead of keeping them in private memory, where its own death
    /// or drop would lose them.
    ///
    /// The claim is announced in this consumer's [`Working`] record with the *producer* role,
    /// so if the process dies mid-push a survivor settles it with
    /// [`settle_producer`](RawRing::settle_producer) (see [`crate::settle`]). Ring the
    /// consumers' doorbell afterwards, as after any publish
    /// (`data_cell().take_tokens()`; see [`crate::wait`]).
    #[inline]
    pub fn push_back_with<R>(
        &mut self,
        write: impl FnOnce(NonNull<u8>) -> R,
    ) -> Result<R, PushError> {
        push_one(&self.core, self.working.as_mut(), write)
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
        let (start, n) = self.core.claim_pop(want, false, self.working.as_mut())?;
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
    #[inline]
    pub fn try_peek(&mut self, n: usize) -> Result<ReadGrant<'_>, PopError> {
        let want = n as u64;
        if want == 0 {
            return Ok(self.grant(0, 0));
        }
        if want > self.core.capacity {
            return Err(PopError::Empty);
        }
        let (start, k) = self.core.claim_pop(want, true, self.working.as_mut())?;
        Ok(self.grant(start, k))
    }

    /// Claims up to `n` records (0 if empty or corrupted).
    #[inline]
    pub fn peek_up_to(&mut self, n: usize) -> ReadGrant<'_> {
        let want = (n as u64).min(self.core.capacity);
        if want == 0 {
            return self.grant(0, 0);
        }
        match self.core.claim_pop(want, false, self.working.as_mut()) {
            Ok((start, k)) => self.grant(start, k),
            Err(_) => self.grant(0, 0),
        }
    }

    #[inline]
    fn grant(&mut self, start: u64, len: u64) -> ReadGrant<'_> {
        for i in 0..len {
            self.core.tracker(start + i).read();
        }
        ReadGrant {
            consumer: self,
            start,
            len: len as usize,
        }
    }

    /// Rings the producers' doorbell: returns how many tokens the doorbell layer must post
    /// (`room_cell().take_tokens()`; see [`crate::wait`]). Call once after every release, and
    /// after a pop that returned `Empty` (it may have passed over skipped slots, freeing room).
    #[inline]
    pub fn wake_producers(&self) -> u32 {
        self.core.ring.room_cell().take_tokens()
    }

    /// The cell consumers waiting for records announce themselves on.
    #[inline]
    pub fn data_cell(&self) -> &WaitCell {
        self.core.ring.data_cell()
    }

    /// The cell producers waiting for room announce themselves on.
    #[inline]
    pub fn room_cell(&self) -> &WaitCell {
        self.core.ring.room_cell()
    }

    /// The ring.
    #[inline]
    pub fn ring(&self) -> &RawRing {
        &self.core.ring
    }

    /// Capacity in records.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.core.capacity as usize
    }

    /// Record size in bytes.
    #[inline]
    pub fn record_size(&self) -> usize {
        self.core.record_size
    }

    /// Claimed positions not yet claimed by consumers (approximate; see [`RawRing::len`]).
    #[inline]
    pub fn len(&self) -> usize {
        self.core.ring.len()
    }

    /// `len() == 0` (approximate).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len() == capacity()` (approximate).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }
}

/// Records claimed by an [`MpmcConsumer`] to read in place. The claim is final: releasing or
/// dropping the grant frees every slot it holds.
pub struct ReadGrant<'a> {
    consumer: &'a mut MpmcConsumer,
    start: u64,
    len: usize,
}

impl fmt::Debug for ReadGrant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadGrant")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl ReadGrant<'_> {
    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `len() == 0`.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th record (`record_size` readable bytes, aligned to `record_align`; read-only
    /// use), valid until the grant is released or dropped.
    ///
    /// # Panics
    /// If `i >= len()`.
    #[inline]
    pub fn slot(&self, i: usize) -> NonNull<u8> {
        assert!(i < self.len, "slot {i} out of a grant of {}", self.len);
        self.consumer.core.record(self.start + i as u64)
    }

    /// Copies record `i` into `out`.
    ///
    /// # Panics
    /// If `i >= len()` or `out.len() != record_size`.
    pub fn read(&self, i: usize, out: &mut [u8]) {
        let rs = self.consumer.core.record_size;
        assert_eq!(out.len(), rs, "buffer length");
        let src = self.slot(i);
        // SAFETY: record i is published and claimed by this grant until release; `out` holds
        // rs writable bytes.
        unsafe { copy_record(src.as_ptr(), out.as_mut_ptr(), rs) }
    }

    /// Frees every claimed slot.
    #[inline]
    pub fn release(self) {}

    /// Frees every claimed slot: an MPMC claim is final, so the records past `k` cannot be
    /// handed back and are dropped too (`k` only exists for symmetry with SPSC). Claim only
    /// what you will consume (`peek_up_to`).
    #[inline]
    pub fn release_first(self, k: usize) {
        let _ = k;
    }
}

impl Drop for ReadGrant<'_> {
    fn drop(&mut self) {
        let core = &self.consumer.core;
        for i in 0..self.len as u64 {
            core.release_slot(self.start + i);
        }
        if self.len > 0 {
            if let Some(a) = &self.consumer.working {
                a.clear();
            }
        }
    }
}
