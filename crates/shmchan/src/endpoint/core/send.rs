//! The sending side of the endpoint core.

use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmchan_ring::{self as ring, PushError};

use super::{either, left, push_failed, Base, Format, Handle, Lane, Rec, Wait};
use crate::barrier::Publish;
use crate::error::OpenError;
use crate::segment::{RingKind, Role, Segment};
use crate::table::Count;
use crate::wait::{housekeep, retry_loop, Attempt, Failed, Retried, Retry};

/// A producer handle of either ring kind.
enum Prod {
    Spsc(ring::SpscProducer),
    Mpmc(ring::MpmcProducer),
}

impl Prod {
    /// The SPSC producer of a plain endpoint, without matching the kind.
    ///
    /// # Safety
    /// The endpoint that holds this handle is plain (`Base::plain`; `Base::plain_here`
    /// implies it).
    #[inline(always)]
    unsafe fn spsc_of_plain(&mut self) -> &mut ring::SpscProducer {
        match self {
            Prod::Spsc(p) => p,
            // SAFETY: an endpoint is made plain only for an SPSC handle (`Base::attach`;
            // `disarm` restores what `attach` chose), and its handle never changes kind.
            Prod::Mpmc(_) => unsafe { std::hint::unreachable_unchecked() },
        }
    }
}

impl Handle for Prod {
    const ROLE: Role = Role::Sender;

    fn make(seg: &Segment, slot: usize) -> Result<Prod, ring::KindError> {
        match seg.kind {
            // SAFETY: `register` admitted us as the only live SPSC sender (the live mask
            // went from empty to our bit), so this is the only SPSC producer of the ring
            // anywhere.
            RingKind::Spsc => unsafe { seg.ring().spsc_producer() }.map(Prod::Spsc),
            RingKind::Mpmc => seg.ring().mpmc_producer().map(|mut p| {
                // SAFETY: the record is this endpoint's own table entry (registered just
                // before), which stays in the mapping the Segment keeps alive for as long
                // as `p`, and no other handle announces in it until the entry is freed
                // after this one drops.
                unsafe { p.set_working(seg.working(slot)) };
                Prod::Mpmc(p)
            }),
        }
    }

    fn is_spsc(&self) -> bool {
        matches!(self, Prod::Spsc(_))
    }
}

/// Pushes one record through `write`, which gets the slot and its lane entry.
#[inline(always)]
fn push(prod: &mut Prod, lane: Lane, write: &mut impl FnMut(Rec)) -> Result<(), PushError> {
    match prod {
        Prod::Spsc(p) => {
            let lane = lane.at(p.position());
            p.try_push_with(|ptr| write(Rec { ptr, lane }))
        }
        Prod::Mpmc(p) => p.try_push_with(|ptr| {
            write(Rec {
                ptr,
                lane: lane.of_record(ptr),
            })
        }),
    }
}

impl Prod {
    /// Sets how the ring answers `Full` for one operation: linearizable only when that answer
    /// is final (`Wait::No`); a waiting operation polls (its tries answer from the slot
    /// alone, without loading the head or waiting out a receiver's claim: it tries again).
    #[inline(always)]
    fn answer_for(&mut self, wait: Wait) {
        if let Prod::Mpmc(p) = self {
            p.set_linearizable(matches!(wait, Wait::No));
        }
    }
}

/// The sending side of an endpoint, whatever its face.
pub(crate) struct SendCore {
    prod: Prod,
    base: Base,
    /// The slot a [`SlotWrite`] holds, kept here rather than in the guard so that the guard
    /// is two words. Not [`Held::None`] only while a guard lives (or after one was leaked with
    /// `mem::forget`: the next reservation abandons it).
    held: Held,
}

/// What an MPMC [`SlotWrite`] holds (see [`SendCore::held`]).
///
/// An SPSC reservation records nothing: its slot is the free one at the producer's cursor
/// (`SpscProducer::next_free`), published by `commit_one`. Sound because nothing else
/// publishes while the guard lives (it borrows the sender), and a guard dropped or leaked
/// (`mem::forget`) uncommitted leaves nothing to undo: the slot was never published, and the
/// next send or reservation writes it again. So a commit tells the two apart by the ring kind
/// alone, without loading or storing a record of the reservation.
enum Held {
    None,
    /// An MPMC claim, detached from the ring handle's borrow (see `shmchan_ring::Detached`).
    Grant(ring::Detached),
}

impl Held {
    #[inline(always)]
    fn is_some(&self) -> bool {
        !matches!(self, Held::None)
    }
}

impl SendCore {
    /// See `crate::WhenPeersLeave`.
    pub(crate) fn set_when_peers_leave(&mut self, p: crate::endpoint::WhenPeersLeave) {
        self.base.set_when_peers_leave(Role::Sender, p);
    }

    pub(crate) fn when_peers_leave(&self) -> crate::endpoint::WhenPeersLeave {
        self.base.when_peers_leave
    }

    /// Registers a sender on `seg` after checking its records.
    pub(crate) fn attach(
        seg: Arc<Segment>,
        spin: Duration,
        format: Format,
    ) -> Result<SendCore, OpenError> {
        let (prod, base) = Base::attach::<Prod>(seg, spin, format, true)?;
        Ok(SendCore {
            prod,
            base,
            held: Held::None,
        })
    }

    /// Another sender on the same channel (its records already checked).
    pub(crate) fn try_clone(&self) -> Result<SendCore, OpenError> {
        let (prod, base) = self.base.attach_another::<Prod>()?;
        Ok(SendCore {
            prod,
            base,
            held: Held::None,
        })
    }

    pub(crate) fn seg(&self) -> &Segment {
        &self.base.seg
    }

    pub(crate) fn record_size(&self) -> usize {
        self.base.record_size
    }

    /// Sends one record, which `write` puts into its slot (it may be called again, for a later
    /// slot, when a try finds the ring full). `T` is the record's type when the face has one
    /// (a typed face: the short way then computes the slot's address and the mailbox copy
    /// with its size known at compile time; see `SpscProducer::try_push_of`), `()` when it
    /// has none (the byte face).
    ///
    /// The caller guarantees that a `T` that is not zero-sized is the ring's record: its
    /// size is the record size and, on an SPSC ring, the slot stride, and its alignment the
    /// record alignment (the typed face's `Format::check` compared them).
    #[inline(always)]
    pub(crate) fn send<T, W: FnMut(Rec)>(
        &mut self,
        wait: Wait,
        mut write: W,
    ) -> Result<(), Failed> {
        // The short way, inlined into the caller: an SPSC producer in its plain state (see
        // `short_way`), for a small record (`write` holds it: see `SHORT_WAY_MAX`). A full
        // ring goes the general way, which looks again and waits.
        if size_of::<W>() > crate::endpoint::SHORT_WAY_MAX {
            return self.send_general(wait, write);
        }
        if let Some(done) = self.send_short::<T>(&mut write) {
            return done;
        }
        self.send_general(wait, write)
    }

    /// The short way of [`send`](Self::send) alone: `None` when it cannot be taken (the
    /// endpoint is not plain, or the ring is full), and the caller goes the general way
    /// ([`send_general`](Self::send_general)) with the same record; `write` was not called
    /// then. `T` as for `send`, whose guarantee the caller gives here too.
    #[inline(always)]
    pub(crate) fn send_short<T>(&mut self, write: impl FnOnce(Rec)) -> Option<Result<(), Failed>> {
        let lane = self.base.lane;
        let p = self.short_way()?;
        let lane = lane.at(p.position());
        // SAFETY: a sized `T` is the ring's record (the caller's contract).
        match unsafe {
            p.try_push_of::<T, _>(
                #[inline(always)]
                |ptr| write(Rec { ptr, lane }),
            )
        } {
            Ok(()) => {
                self.base.tally.add(Count::Records, 1);
                self.wake_as(Publish::Unfenced);
                Some(Ok(()))
            }
            Err(PushError::Full) => None,
            Err(e) => Some(Err(push_failed(e))),
        }
    }

    /// The SPSC producer, when a send or reservation may go the short way: a plain endpoint
    /// (an SPSC one, not armed, publishing unfenced: see `Base::plain_here`) of this process,
    /// with a receiver to send to (or a policy that sends on without one). What the short way
    /// does is what the general way does in that state (an SPSC sender holds nothing for a
    /// leaked guard: see [`Held`]), and its wake check is the unfenced one, as `wake` would
    /// choose.
    #[inline(always)]
    fn short_way(&mut self) -> Option<&mut ring::SpscProducer> {
        if !self.base.plain_here() || self.base.peers_left(&self.base.seg, Role::Receiver) {
            return None;
        }
        // SAFETY: plain (`plain_here`, just above).
        Some(unsafe { self.prod.spsc_of_plain() })
    }

    /// [`send`](Self::send) the general way: either ring kind, any state, waiting.
    #[inline(never)]
    pub(crate) fn send_general(
        &mut self,
        wait: Wait,
        mut write: impl FnMut(Rec),
    ) -> Result<(), Failed> {
        self.base.here()?;
        self.base.disarm(Role::Sender);
        if self.held.is_some() {
            // A guard was leaked (`mem::forget`): its slot is given up first, so that an MPMC
            // claim never holds up the records sent after it.
            self.abandon_held();
        }
        self.prod.answer_for(wait);
        if self.base.peers_left(&self.base.seg, Role::Receiver) {
            return Err(Failed::Gone);
        }
        match push(&mut self.prod, self.base.lane, &mut write) {
            Ok(()) => {
                self.base.tally.add(Count::Records, 1);
                self.wake();
                Ok(())
            }
            Err(PushError::Full) if !matches!(wait, Wait::No) => self.send_slow(wait, write),
            Err(e) => Err(push_failed(e)),
        }
    }

    #[inline(never)]
    fn send_slow(&mut self, wait: Wait, mut write: impl FnMut(Rec)) -> Result<(), Failed> {
        self.let_receivers_ahead(wait.deadline());
        let lane = self.base.lane;
        self.wait_for(wait.deadline(), |p| push(p, lane, &mut write).map(Some))?;
        self.base.tally.add(Count::Records, 1);
        self.wake();
        Ok(())
    }

    /// Before a sender that found the ring full waits for room: lets the receivers get ahead
    /// by [`resume_room`] free slots (at least a few cache lines) before it writes again, as
    /// long as they keep receiving, for at most this endpoint's spin window.
    ///
    /// Why: a sender that resumed at the first free slot would write into the line a receiver
    /// is reading — the slot it just freed shares a line with the records it reads next — and
    /// the two cores would trade that line once per record (on a full ring of 8-byte records,
    /// about a fifth of the rate with a few lines between them). Nothing waits longer than
    /// it would otherwise for room that exists: a receiver that stops receiving (its position
    /// still for [`STILL_SPINS`] looks) ends the pause at once, and `wait_for`, which follows,
    /// takes any room. It spins only when this endpoint's waits spin (see `Spin::spins`).
    fn let_receivers_ahead(&mut self, deadline: Option<Instant>) {
        let cap = either!(&self.prod, Prod, p => p.capacity());
        let want = resume_room(cap, self.base.record_size);
        // Not when this endpoint's waits have stopped spinning (a receiver slower than the
        // spin window: the sender parks at once, as `block` would have it).
        let window = self.base.spin.window;
        if want <= 1 || !self.base.spin.spins() {
            return;
        }
        let end = Instant::now() + window;
        let end = deadline.map_or(end, |d| d.min(end));
        let mut last = usize::MAX;
        let mut still = 0u32;
        let mut i = 0u32;
        loop {
            // Looks spaced out: each look pulls the line of the receivers' position, which
            // their next release must take back.
            for _ in 0..LOOK_EVERY {
                std::hint::spin_loop();
            }
            let len = either!(&self.prod, Prod, p => p.len());
            if cap.saturating_sub(len) >= want {
                return;
            }
            if len == last {
                still += 1;
                if still >= STILL_SPINS {
                    return;
                }
            } else {
                (last, still) = (len, 0);
            }
            i = i.wrapping_add(1);
            if i % 8 == 0 && Instant::now() >= end {
                // The receivers keep receiving, but slower than the window: this sender parks
                // from now on (until the low-water mark wakes it with half a ring of room),
                // instead of trading every record with them.
                self.base.spin.spun_in_vain();
                return;
            }
        }
    }

    /// Waits until `push` succeeds (`Ok(Some(_))`; `Ok(None)` or `Full` is "not yet") or
    /// every receiver is gone.
    fn wait_for<R>(
        &mut self,
        deadline: Option<Instant>,
        mut push: impl FnMut(&mut Prod) -> Result<Option<R>, PushError>,
    ) -> Result<R, Failed> {
        let SendCore { prod, base, .. } = self;
        let policy = base.when_peers_leave;
        base.block(Role::Sender, deadline, |seg, _| {
            if left(seg, Role::Receiver, policy) {
                return Attempt::Gone;
            }
            match push(prod) {
                Ok(Some(r)) => Attempt::Ready(r),
                Ok(None) | Err(PushError::Full) => Attempt::NotYet,
                Err(_) => Attempt::Corrupted,
            }
        })
    }

    /// Sends as many whole records of `records` (a multiple of the record size) as fit, with
    /// one publish; waits only while not even one fits. Returns how many were sent; an empty
    /// slice sends nothing at once (after the disconnection check when not waiting).
    pub(crate) fn send_batch(&mut self, wait: Wait, records: &[u8]) -> Result<usize, Failed> {
        self.base.here()?;
        self.base.disarm(Role::Sender);
        if self.held.is_some() {
            self.abandon_held();
        }
        self.prod.answer_for(wait);
        if matches!(wait, Wait::No) {
            if self.base.peers_left(&self.base.seg, Role::Receiver) {
                return Err(Failed::Gone);
            }
            return match either!(&mut self.prod, Prod, p => p.try_push_batch(records)) {
                Ok(n) => {
                    if n > 0 {
                        self.base.tally.add(Count::Records, n as u64);
                        self.wake();
                    }
                    Ok(n)
                }
                Err(e) => Err(push_failed(e)),
            };
        }
        if records.is_empty() {
            return Ok(0);
        }
        let n = self.wait_for(wait.deadline(), |p| {
            either!(p, Prod, p => p.try_push_batch(records)).map(|n| (n > 0).then_some(n))
        })?;
        self.base.tally.add(Count::Records, n as u64);
        self.wake();
        Ok(n)
    }

    /// Reserves one slot to write in place (see [`SlotWrite`]); `T` as for
    /// [`send`](Self::send), whose guarantee the caller gives here too.
    #[inline(always)]
    pub(crate) fn reserve<T>(&mut self, wait: Wait) -> Result<SlotWrite<'_>, Failed> {
        // The short way, as `send`'s.
        if let Some(p) = self.short_way() {
            // SAFETY: a sized `T` is the ring's record (the caller's contract).
            match unsafe { p.next_free_of::<T>() } {
                Ok(ptr) => return Ok(SlotWrite { tx: self, ptr }),
                Err(PushError::Full) => {}
                Err(e) => return Err(push_failed(e)),
            }
        }
        self.reserve_general(wait)
    }

    /// [`reserve`](Self::reserve) the general way.
    #[inline]
    fn reserve_general(&mut self, wait: Wait) -> Result<SlotWrite<'_>, Failed> {
        // One try, when it cannot find the ring full (an SPSC producer that knows of a free
        // slot); whatever else it returns is final.
        if matches!(wait, Wait::No) || matches!(&self.prod, Prod::Spsc(p) if p.known_room() > 0) {
            return self.try_reserve(wait);
        }
        self.reserve_slow(wait)
    }

    #[inline(never)]
    fn reserve_slow(&mut self, wait: Wait) -> Result<SlotWrite<'_>, Failed> {
        retry_loop(self, wait.deadline(), |tx| tx.try_reserve(wait))
    }

    #[inline]
    fn try_reserve(&mut self, wait: Wait) -> Result<SlotWrite<'_>, Failed> {
        self.base.here()?;
        self.base.disarm(Role::Sender);
        if self.held.is_some() {
            // A guard was leaked (`mem::forget`): its slot is given up now.
            self.abandon_held();
        }
        self.prod.answer_for(wait);
        if self.base.peers_left(&self.base.seg, Role::Receiver) {
            return Err(Failed::Gone);
        }
        let ptr = match &mut self.prod {
            // Recorded nowhere (see `Held`).
            Prod::Spsc(p) => p.next_free(),
            Prod::Mpmc(p) => p.try_reserve(1).map(|g| {
                let ptr = g.slot(0);
                self.held = Held::Grant(g.detach());
                ptr
            }),
        }
        .map_err(push_failed)?;
        Ok(SlotWrite { tx: self, ptr })
    }

    /// Publishes the reserved slot (see [`SlotWrite::commit`]).
    ///
    /// # Safety
    /// A [`SlotWrite`] of this sender lived until now (and is consumed by the caller), and
    /// `ptr` is its slot; a `T` that is not zero-sized is the ring's record (as for `send`).
    #[inline(always)]
    unsafe fn commit_reserved<T>(&mut self, ptr: NonNull<u8>) {
        if self.base.plain() {
            // SAFETY: plain (just above).
            let p = unsafe { self.prod.spsc_of_plain() };
            // SAFETY: the guard's slot `ptr` came from `next_free_of::<T>` or `next_free`, and
            // nothing published since (the guard borrowed the sender: see `Held`); `T` as the
            // caller guarantees.
            unsafe { p.commit_one_of::<T>(ptr) };
            self.base.tally.add(Count::Records, 1);
            self.wake_as(Publish::Unfenced);
            return;
        }
        match &mut self.prod {
            // SAFETY: the guard's slot `ptr` came from `next_free_of::<T>` or `next_free`,
            // and nothing published since: the guard borrowed the sender (see `Held`); `T` as
            // the caller guarantees.
            Prod::Spsc(p) => unsafe { p.commit_one_of::<T>(ptr) },
            Prod::Mpmc(p) => match std::mem::replace(&mut self.held, Held::None) {
                // SAFETY: `d` is this producer's claim, detached by `try_reserve` and held
                // since.
                Held::Grant(d) => unsafe { p.reattach(d) }.commit(),
                Held::None => return,
            },
        }
        self.committed();
    }

    /// After a reservation was published: counts it and wakes sleeping receivers.
    #[inline(always)]
    fn committed(&self) {
        self.base.tally.add(Count::Records, 1);
        self.wake();
    }

    /// Gives up the held MPMC claim: it cannot be undone, so the ring publishes the slot as
    /// skipped, and a receiver sleeping on it must wake to pass over it. (An SPSC reservation
    /// holds nothing: see [`Held`].)
    #[cold]
    fn abandon_held(&mut self) {
        let Held::Grant(d) = std::mem::replace(&mut self.held, Held::None) else {
            return; // nothing held
        };
        if let Prod::Mpmc(p) = &mut self.prod {
            // SAFETY: as in `commit_reserved`.
            drop(unsafe { p.reattach(d) });
            if (self.base.seg).wake_all_after(Role::Receiver, self.base.publish) {
                self.base.tally.add(Count::Posts, 1);
            }
        }
    }

    /// Leaves the armed state (every send and reservation does, even one refused early).
    pub(crate) fn disarm(&mut self) {
        self.base.disarm(Role::Sender);
    }

    /// Rings the doorbell if receivers sleep (one fence and a load otherwise).
    #[inline]
    fn wake(&self) {
        self.wake_as(self.base.publish);
    }

    /// [`wake`](Self::wake) with the publish ordering given: the short way's is known to be
    /// this endpoint's (`Publish::Unfenced`, see `Base::plain_here`) without loading it.
    #[inline(always)]
    fn wake_as(&self, publish: Publish) {
        debug_assert_eq!(publish, self.base.publish);
        let n = publish.take_tokens(self.base.near.cell());
        if n > 0 {
            self.base.seg.post(Role::Receiver, n);
            self.base.tally.add(Count::Posts, 1);
        }
    }

    /// Counts a sleep of an event loop's wait.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn note_sleep(&self) {
        self.base.note_sleep(Role::Sender);
    }

    /// See [`Sender::arm`](crate::Sender::arm).
    pub(crate) fn arm(&mut self) -> bool {
        let full = either!(&self.prod, Prod, p => p.is_full());
        let policy = self.base.when_peers_leave;
        // A forked child's copy is ready at once: its next call reports the misuse.
        self.base.here().is_err()
            || self.base.arm(Role::Sender, |seg| {
                !full || left(seg, Role::Receiver, policy)
            })
    }

    /// One time slice's housekeeping for a waiter outside `block` (an event loop): reap dead
    /// receivers.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn housekeep(&mut self) {
        // An event loop acts on what the next try finds; a segment that is no longer whole
        // is reported by `check`.
        let _ = housekeep(&self.base.seg, Role::Sender);
    }

    /// The spin phase of a waiter outside `block` (an event loop): whether room (or a
    /// departure) appeared within this wait's spin window.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn spin_for_room(&mut self) -> bool {
        let mut spin = self.base.spin;
        let ready = spin.spin(|| {
            (!self.is_full() || self.base.peers_left(&self.base.seg, Role::Receiver)).then_some(())
        });
        self.base.spin = spin;
        ready.is_some()
    }

    pub(crate) fn len(&self) -> usize {
        either!(&self.prod, Prod, p => p.len())
    }

    pub(crate) fn is_full(&self) -> bool {
        either!(&self.prod, Prod, p => p.is_full())
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.base.seg.gone(Role::Receiver)
    }
}

/// The free slots a sender that found the ring full waits for while the receivers keep
/// receiving (see [`SendCore::let_receivers_ahead`]): at least four cache lines of records and
/// at least [`RESUME_RECORDS`], at most half the ring; 1 (no pause) for records of 256 bytes or
/// more.
///
/// Why a count of records too: every look of a sender at the receivers' position (its pauses'
/// looks, and the one that finds the room) pulls the line of that position, which the
/// receiver's next release must take back. Waiting for four lines' worth, at 64 bytes four
/// records, it looked about every other record; a 64-byte copying stream across processes ran
/// 1.03-1.20x as fast waiting for 128 as for 32, and 32 1.03-1.12x as fast as 4 (peers
/// comparison on a 2-vCPU Intel Xeon VM, interleaved A/B through a temporary contender whose
/// ring of 4,095 records took the other rule; not kept). A full ring's sender has nothing
/// to do but wait, and 128 records are well inside the spin window at stream rates.
fn resume_room(capacity: usize, record_size: usize) -> usize {
    if record_size >= 256 {
        return 1;
    }
    (256 / record_size.max(1))
        .max(RESUME_RECORDS)
        .min((capacity / 2).max(1))
}

/// The fewest free slots a sender that found the ring full waits for (see [`resume_room`]).
const RESUME_RECORDS: usize = 128;

/// Looks at an unchanged ring after which a sender stops waiting for the receivers to get
/// ahead (they are not receiving now).
const STILL_SPINS: u32 = 8;

/// Pauses between two looks of a sender waiting for the receivers to get ahead.
const LOOK_EVERY: u32 = 16;

impl Retried for SendCore {
    type Guard<'g> = SlotWrite<'g>;

    /// Between two tries of a blocking reserve: waits until the ring has room or every
    /// receiver is gone.
    fn wait(&mut self, retry: &mut Retry, deadline: Option<Instant>) -> Result<(), Failed> {
        retry.before_retry(&self.base.seg, Role::Sender, deadline)?;
        self.let_receivers_ahead(deadline);
        self.wait_for(deadline, |p| {
            Ok((!either!(&*p, Prod, p => p.is_full())).then_some(()))
        })
    }
}

impl Drop for SendCore {
    fn drop(&mut self) {
        // A leaked guard's slot (not in a forked child's copy, nor in a shrunk file).
        if self.held.is_some() && self.base.seg.whole() && self.base.here().is_ok() {
            self.abandon_held();
        }
        self.base.leave(Role::Sender);
    }
}

/// A slot reserved for writing in place: publish it with [`SlotWrite::commit`]; dropped
/// uncommitted it publishes nothing (on MPMC the claimed slot is marked skipped, and
/// receivers pass over it).
///
/// Two words, so that every layer returns it in registers: an MPMC claim is kept in the
/// sender (`SendCore::held`), which the guard borrows for its life; an SPSC reservation needs
/// no record (see [`Held`]).
pub(crate) struct SlotWrite<'a> {
    tx: &'a mut SendCore,
    ptr: NonNull<u8>,
}

impl SlotWrite<'_> {
    /// The slot: `record_size` writable bytes aligned to the record alignment (which the
    /// face's `Format::check` compared with its records), ours until committed or dropped.
    #[inline]
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The slot's entry in the channel's length lane (see `Rec`), ours until committed or
    /// dropped as the slot is.
    #[inline(always)]
    pub(crate) fn lane(&self) -> NonNull<u32> {
        let lane = self.tx.base.lane;
        match &self.tx.prod {
            // The reserved slot is the one at the producer's cursor (see `Held`).
            Prod::Spsc(p) => lane.at(p.position()),
            Prod::Mpmc(_) => lane.of_record(self.ptr),
        }
    }

    /// Publishes the record and wakes a sleeping receiver; `T` as for `SendCore::send`,
    /// whose guarantee the caller gives.
    #[inline(always)]
    pub(crate) fn commit<T>(self) {
        // Without the guard's drop, whose only work (abandoning a slot still held) the commit
        // just made moot.
        let mut me = std::mem::ManuallyDrop::new(self);
        let ptr = me.ptr;
        // SAFETY: the guard lived until now and is consumed here; `ptr` is its slot.
        unsafe { me.tx.commit_reserved::<T>(ptr) };
    }
}

impl Drop for SlotWrite<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.tx.held.is_some() {
            self.tx.abandon_held();
        }
    }
}
