//! Claiming, publishing and releasing slots: the stamp protocol of the [MPMC ring](super),
//! written once on the ring's [`Core`]. The handles, grants and settlers of the parent module
//! call these and add only their bookkeeping (announcements, guards, counts).

use core::mem;
use core::ptr::NonNull;

use super::patience::{Local, Patience};
use super::settle::{Announcer, ROLE_CONSUMER, ROLE_PRODUCER};
use super::{
    free_stamp, full_stamp, skipped_stamp, MAX_POS, STAMP_GARBAGE, TAG_ADOPTED, TAG_FULL, TAG_MASK,
    TAG_SKIPPED,
};
use crate::error::{PopError, PushError};
use crate::raw::Core;
use crate::sync::{spin_loop, AtomicU64, Ordering};

/// Bound on claim retries: each retry means another party made progress, so a legitimate run
/// never comes near it; with static or garbage memory every loop ends well before.
const RETRIES: u32 = 1 << 12;

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
pub(super) struct Claimed {
    pub(super) pos: u64,
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
    pub(super) fn claim_push_one(
        &self,
        mut ann: Option<&mut Announcer>,
        local: &mut Local,
    ) -> Result<Claimed, PushError> {
        let tail = self.tail().load(Ordering::Relaxed);
        // `room_until` is `u64::MAX` when the capacity is the number of slots (the stamps
        // alone keep producers within it), so this is one compare of a handle field.
        if tail < MAX_POS && tail < local.room_until {
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
        self.claim_push_slow(ann, local)
    }

    #[cold]
    #[inline(never)]
    fn claim_push_slow(
        &self,
        ann: Option<&mut Announcer>,
        local: &mut Local,
    ) -> Result<Claimed, PushError> {
        self.claim_push(1, true, ann, local)
            .map(|(pos, _)| Claimed::new(self, pos))
    }

    /// Claims up to `want` (≥ 1, ≤ capacity) consecutive free slots from the tail with one CAS;
    /// with `exact`, all `want` or none. Returns the first position and the count (≥ 1).
    #[inline]
    pub(super) fn claim_push(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
        local: &mut Local,
    ) -> Result<(u64, u64), PushError> {
        // `busy`: set (to the position plus one) when the ring looked full only because a
        // consumer is between its claim and its release; then wait it out, out of line.
        let mut busy = 0;
        let mut r = self.claim_push_inner(want, exact, ann.as_deref_mut(), local, &mut busy);
        if busy != 0 && r == Err(PushError::Full) {
            r = self.claim_push_patient(want, exact, ann.as_deref_mut(), local, busy);
        }
        if r.is_err() {
            // A failed claim must not leave an announcement that makes settlers defer.
            if let Some(a) = ann {
                a.clear();
            }
        }
        r
    }

    /// [`Core::claim_push`] waiting out the consumer that holds the slot of position
    /// `busy - 1` (see "Waiting out a claim"), bounded by [`Patience`].
    #[cold]
    #[inline(never)]
    fn claim_push_patient(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
        local: &mut Local,
        mut busy: u64,
    ) -> Result<(u64, u64), PushError> {
        let mut patience = Patience::new(local);
        loop {
            // Watch only the slot (not the cursors, which the other side's claims write):
            // try again once its stamp says the claim is done. Relaxed: the try that follows
            // loads the stamp again with Acquire.
            let pos = busy - 1;
            while matches!(
                classify_push(self.stamp(pos).load(Ordering::Relaxed), pos),
                ForPush::Behind
            ) {
                if !patience.pause(pos) {
                    return Err(PushError::Full);
                }
            }
            patience.reset();
            let mut again = 0;
            let r = self.claim_push_inner(
                want,
                exact,
                ann.as_deref_mut(),
                patience.local(),
                &mut again,
            );
            if again == 0 || r != Err(PushError::Full) {
                return r;
            }
            busy = again;
        }
    }

    #[inline(always)]
    fn claim_push_inner(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
        local: &mut Local,
        busy: &mut u64,
    ) -> Result<(u64, u64), PushError> {
        let mut tail = load_pos(self.tail()).ok_or(PushError::Corrupted)?;
        for _ in 0..RETRIES {
            // The capacity first: at most `capacity` positions past the head, whatever the
            // slots say (with fewer records than slots, a free slot is not room).
            let room = self.room(tail, want, local);
            if room == 0 || (exact && room < want) {
                return Err(PushError::Full);
            }
            let mut n = 0;
            let mut ahead = false;
            let mut behind = false;
            while n < room {
                let q = tail + n;
                // SYNC(mpmc-free): pairs with the consumer's Release store in `release_slot`; its
                // read of the slot's previous record happens before our write.
                let s = self.stamp(q).load(Ordering::Acquire);
                match classify_push(s, q) {
                    ForPush::Free => n += 1,
                    ForPush::Behind => {
                        behind = true;
                        break;
                    }
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
                // The slot of `tail + n` still holds position `tail + n - lap`. If no consumer
                // has claimed that one, the ring is full (linearizable: `Full`). If one has
                // (the head is past it) and not yet released the slot, the ring is not full:
                // the caller waits that consumer out, briefly (see "Waiting out a claim").
                // A handle that polls (`linear` off) answers `Full` from the slot alone.
                if behind && local.linear && self.claimed_by_consumer(tail + n) {
                    *busy = tail + n + 1;
                }
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
    pub(super) fn publish_slot(&self, pos: u64) {
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
    pub(super) fn skip_slot(&self, pos: u64) {
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
    pub(super) fn claim_pop_one(
        &self,
        mut ann: Option<&mut Announcer>,
        local: &mut Local,
    ) -> Result<Claimed, PopError> {
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
        self.claim_pop_slow(ann, local)
    }

    /// Whether a consumer that looks now finds something at the head to take or to pass
    /// over: a record, a skipped slot, a stamp of a later lap (the head it loaded was stale,
    /// or the segment is corrupted: the take sorts out which) or a stamp that is not a stamp
    /// (the take then reports the corruption). Only a slot not yet published for this
    /// position is not ready: its publish wakes the waiters. Reads the head and the head
    /// slot's stamp, never the producers' tail, so that a waiting consumer does not pull the
    /// line producers claim on.
    #[inline(always)]
    pub(super) fn head_ready(&self) -> bool {
        // Relaxed: a hint of where to look; the stamp decides.
        let head = self.head().load(Ordering::Relaxed);
        if head >= MAX_POS {
            return true;
        }
        // SYNC(mpmc-publish): Acquire pairs with the producer's Release store in
        // `publish_slot` / `skip_slot`, as in `claim_pop_one`: a waiter that sees the stamp
        // sees the record, and its announce-then-look pairs with the producer's
        // publish-then-look at the waiters.
        let s = self.stamp(head).load(Ordering::Acquire);
        !matches!(classify_pop(s, head), ForPop::NotReady)
    }

    #[cold]
    #[inline(never)]
    fn claim_pop_slow(
        &self,
        ann: Option<&mut Announcer>,
        local: &mut Local,
    ) -> Result<Claimed, PopError> {
        self.claim_pop(1, true, ann, local)
            .map(|(pos, _)| Claimed::new(self, pos))
    }

    /// Claims up to `want` (≥ 1, ≤ capacity) consecutive published records from the head with
    /// one CAS, passing over (and freeing) skipped slots before them; with `exact`, all `want` or
    /// none. Returns the first record's position and the count (≥ 1).
    #[inline]
    pub(super) fn claim_pop(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
        local: &mut Local,
    ) -> Result<(u64, u64), PopError> {
        // As in claim_push: `busy` when a producer is between its claim and its publish.
        let mut busy = 0;
        let linear = local.linear;
        let mut r = self.claim_pop_inner(want, exact, linear, ann.as_deref_mut(), &mut busy);
        if busy != 0 && r == Err(PopError::Empty) {
            r = self.claim_pop_patient(want, exact, ann.as_deref_mut(), local, busy);
        }
        if r.is_err() {
            // As in claim_push: no stale announcement after a failed claim.
            if let Some(a) = ann {
                a.clear();
            }
        }
        r
    }

    /// [`Core::claim_pop`] waiting out the producer that claimed position `busy - 1` (see
    /// "Waiting out a claim"), bounded by [`Patience`].
    #[cold]
    #[inline(never)]
    fn claim_pop_patient(
        &self,
        want: u64,
        exact: bool,
        mut ann: Option<&mut Announcer>,
        local: &mut Local,
        mut busy: u64,
    ) -> Result<(u64, u64), PopError> {
        let mut patience = Patience::new(local);
        loop {
            // As in `claim_push_patient`: watch the slot the producer is writing.
            let pos = busy - 1;
            while matches!(
                classify_pop(self.stamp(pos).load(Ordering::Relaxed), pos),
                ForPop::NotReady
            ) {
                if !patience.pause(pos) {
                    return Err(PopError::Empty);
                }
            }
            patience.reset();
            let mut again = 0;
            let r = self.claim_pop_inner(want, exact, true, ann.as_deref_mut(), &mut again);
            if again == 0 || r != Err(PopError::Empty) {
                return r;
            }
            busy = again;
        }
    }

    #[inline(always)]
    fn claim_pop_inner(
        &self,
        want: u64,
        exact: bool,
        linear: bool,
        mut ann: Option<&mut Announcer>,
        busy: &mut u64,
    ) -> Result<(u64, u64), PopError> {
        let mut head = load_pos(self.head()).ok_or(PopError::Corrupted)?;
        for _ in 0..RETRIES {
            let (mut skipped, mut data) = (0u64, 0u64);
            let mut ahead = false;
            let mut unpublished = false;
            while data < want && skipped + data < self.capacity {
                let q = head + skipped + data;
                // SYNC(mpmc-publish): pairs with the producer's Release store in `publish_slot`
                // / `skip_slot`; its record write happens before our read.
                let s = self.stamp(q).load(Ordering::Acquire);
                match classify_pop(s, q) {
                    ForPop::Data => data += 1,
                    ForPop::Skipped if data == 0 => skipped += 1,
                    ForPop::Skipped => break,
                    ForPop::NotReady => {
                        unpublished = true;
                        break;
                    }
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
                // `head + data` is not published. If no producer has claimed it, the ring is
                // empty (linearizable: `Empty`). If one has (the tail is past it) and not yet
                // published, the ring is not empty: the caller waits that producer out,
                // briefly (see "Waiting out a claim"). Polling (`linear` off): `Empty` at once.
                if unpublished && linear && self.claimed_by_producer(head + data) {
                    *busy = head + data + 1;
                }
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

    /// How many of the `want` positions from `tail` are within the capacity: all of them
    /// while the handle's cached limit says so, else after loading the head.
    #[inline(always)]
    fn room(&self, tail: u64, want: u64, local: &mut Local) -> u64 {
        if tail.saturating_add(want) <= local.room_until {
            return want;
        }
        // Relaxed: a bound, not a data access (the stamps carry the synchronisation). A stale
        // head only under-reports room; a head past a stale tail is caught by the stamps.
        let head = self.head().load(Ordering::Relaxed);
        local.room_until = head.saturating_add(self.capacity);
        want.min(local.room_until.saturating_sub(tail))
    }

    /// Whether a producer has claimed position `pos` (the tail is past it): an unpublished
    /// slot at `pos` is then a claim in progress, not an empty ring.
    #[inline(always)]
    fn claimed_by_producer(&self, pos: u64) -> bool {
        // Relaxed: a decision, not a data access. A claim this thread made itself is seen by
        // coherence (its own CAS of the tail comes before this load), and one another thread
        // made before some synchronisation with this one is seen by happens-before.
        self.tail().load(Ordering::Relaxed) > pos
    }

    /// Whether a consumer has claimed position `pos - lap`, whose record the slot of `pos`
    /// still holds (the head is past it): the slot is then being read and will be free soon,
    /// and the ring is not full.
    #[inline(always)]
    fn claimed_by_consumer(&self, pos: u64) -> bool {
        // Relaxed: as in `claimed_by_producer`, for the head.
        pos.checked_sub(self.lap)
            .is_some_and(|prev| self.head().load(Ordering::Relaxed) > prev)
    }

    /// Frees position `pos`'s slot for the producer one lap later.
    #[inline(always)]
    pub(super) fn release_slot(&self, pos: u64) {
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
        stamp.store(free_stamp(c.pos + self.lap), Ordering::Release);
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
pub(super) struct ReleaseOnUnwind<'a> {
    pub(super) core: &'a Core,
    pub(super) pos: u64,
}

impl Drop for ReleaseOnUnwind<'_> {
    fn drop(&mut self) {
        self.core.release_slot(self.pos);
    }
}

/// The single-record push: claim, `write` in place, publish, clear the announcement.
#[inline(always)]
pub(super) fn push_one<R>(
    core: &Core,
    mut ann: Option<&mut Announcer>,
    local: &mut Local,
    write: impl FnOnce(NonNull<u8>) -> R,
) -> Result<R, PushError> {
    let c = core.claim_push_one(ann.as_deref_mut(), local)?;
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
pub(super) fn pop_one<R>(
    core: &Core,
    mut ann: Option<&mut Announcer>,
    local: &mut Local,
    read: impl FnOnce(NonNull<u8>) -> R,
) -> Result<R, PopError> {
    let c = core.claim_pop_one(ann.as_deref_mut(), local)?;
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
