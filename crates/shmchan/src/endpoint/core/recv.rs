//! The receiving side of the endpoint core, with the adoption of records a dead sibling
//! receiver held (in `adopt`), the short ways (in `short`) and a peeked record's hold and
//! release (in `held`).

mod adopt;
mod held;
mod short;

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmchan_ring::{self as ring, PopError};

use super::{either, left, now, Base, Format, Handle, Lane, Rec, Wait};
use crate::barrier::Publish;
use crate::coalesce::{self, Coalesce};
use crate::endpoint::WhenPeersLeave;
use crate::error::OpenError;
use crate::segment::{senders_sleep, RingKind, Role, Segment};
use crate::table::Count;
use crate::wait::{housekeep, retry_loop, Attempt, Failed, Retried, Retry};
use adopt::{adopt, drain_adopted, hand_back, Image};
use held::Held;
pub(crate) use held::SlotRead;
use short::{plain_spsc, short_looks};

/// A consumer handle of either ring kind.
enum Cons {
    Spsc(ring::SpscConsumer),
    Mpmc(ring::MpmcConsumer),
}

impl Cons {
    /// The SPSC consumer of a plain endpoint, without matching the kind.
    ///
    /// # Safety
    /// The endpoint that holds this handle is plain (`Base::plain`; `Base::plain_here`
    /// implies it).
    #[inline(always)]
    unsafe fn spsc_of_plain(&mut self) -> &mut ring::SpscConsumer {
        match self {
            Cons::Spsc(c) => c,
            // SAFETY: an endpoint is made plain only for an SPSC handle (`Base::attach`;
            // `disarm` restores what `attach` chose), and its handle never changes kind.
            Cons::Mpmc(_) => unsafe { std::hint::unreachable_unchecked() },
        }
    }
}

impl Handle for Cons {
    const ROLE: Role = Role::Receiver;

    fn make(seg: &Segment, slot: usize) -> Result<Cons, ring::KindError> {
        match seg.kind {
            // SAFETY: `register` admitted us as the only live SPSC receiver (the live mask
            // went from empty to our bit), so this is the only SPSC consumer anywhere.
            RingKind::Spsc => unsafe { seg.ring().spsc_consumer() }.map(Cons::Spsc),
            RingKind::Mpmc => seg.ring().mpmc_consumer().map(|mut c| {
                // SAFETY: as for the sender: this endpoint's own entry, alive as long as
                // `c`.
                unsafe { c.set_working(seg.working(slot)) };
                Cons::Mpmc(c)
            }),
        }
    }

    fn is_spsc(&self) -> bool {
        matches!(self, Cons::Spsc(_))
    }
}

impl Cons {
    /// Sets how the ring answers `Empty` for one operation (as `Prod::answer_for`, for the
    /// tail and a sender's claim).
    #[inline(always)]
    fn answer_for(&mut self, wait: Wait) {
        if let Cons::Mpmc(c) = self {
            c.set_linearizable(matches!(wait, Wait::No));
        }
    }
}

/// The receiving side of an endpoint, whatever its face.
pub(crate) struct RecvCore {
    cons: Cons,
    base: Base,
    /// Records adopted from a dead sibling MPMC receiver that did not fit back into the ring
    /// (their images, see [`Format::image`]); delivered before the ring's.
    adopted: VecDeque<Image>,
    /// The record a [`SlotRead`] reads, kept here rather than in the guard so that the guard
    /// is two words (see `shmchan_ring::Detached`). Not `Held::None` only while a guard lives
    /// (or after one was leaked with `mem::forget`: the next peek releases it).
    held: Held,
    /// Whether the sender streams, so that a blocking receive looks at its cursor a little
    /// later (see `crate::coalesce`).
    coalesce: Coalesce,
}

impl RecvCore {
    /// See `crate::WhenPeersLeave`.
    pub(crate) fn set_when_peers_leave(&mut self, p: crate::endpoint::WhenPeersLeave) {
        self.base.set_when_peers_leave(Role::Receiver, p);
    }

    pub(crate) fn when_peers_leave(&self) -> crate::endpoint::WhenPeersLeave {
        self.base.when_peers_leave
    }

    /// Registers a receiver on `seg` after checking its records.
    pub(crate) fn attach(
        seg: Arc<Segment>,
        spin: Duration,
        format: Format,
    ) -> Result<RecvCore, OpenError> {
        let (cons, base) = Base::attach::<Cons>(seg, spin, format, true)?;
        Ok(RecvCore::new(cons, base))
    }

    /// Another receiver on the same channel (its records already checked).
    pub(crate) fn try_clone(&self) -> Result<RecvCore, OpenError> {
        let (cons, base) = self.base.attach_another::<Cons>()?;
        Ok(RecvCore::new(cons, base))
    }

    fn new(cons: Cons, base: Base) -> RecvCore {
        // Coalescing needs an SPSC consumer (one that caches the sender's cursor), room for
        // the sender to go on while the receiver pauses, and a spin window (an endpoint told
        // not to spin does not pause either).
        let capacity = either!(&cons, Cons, c => c.capacity()) as u64;
        let coalesce = matches!(cons, Cons::Spsc(_))
            && capacity >= coalesce::MIN_CAPACITY
            && !base.spin.window.is_zero();
        RecvCore {
            cons,
            base,
            adopted: VecDeque::new(),
            held: Held::None,
            coalesce: Coalesce::new(coalesce, capacity),
        }
    }

    pub(crate) fn seg(&self) -> &Segment {
        &self.base.seg
    }

    pub(crate) fn record_size(&self) -> usize {
        self.base.record_size
    }

    /// Receives one record, which `read` copies out: it gets the record and its lane entry
    /// (see [`Rec`]) — a slot it may read `record_size` bytes of, or an adopted record's image
    /// (as long as its lane entry says, rounded up to whole 8-byte words; aligned like a
    /// slot) — and returns `None` when the record is malformed (reported as
    /// [`Failed::Corrupted`]; the slot is released).
    ///
    /// `T` is the record's type when the face has one, `()` otherwise, as for `SendCore::send`
    /// (whose guarantee the caller gives here too).
    #[inline(always)]
    #[allow(clippy::redundant_closure)] // see the short way's `try_pop_with`
    pub(crate) fn recv<T, R>(
        &mut self,
        wait: Wait,
        mut read: impl FnMut(Rec) -> Option<R>,
    ) -> Result<R, Failed> {
        // The short way, inlined into the caller: an SPSC consumer in its plain state (see
        // `plain_spsc`), for a small record (see `SHORT_WAY_MAX`). A ring still empty after its
        // tries goes the general way, which looks again, applies the drain rule and waits.
        if size_of::<R>() > crate::endpoint::SHORT_WAY_MAX {
            return self.recv_general(wait, read);
        }
        let lane = self.base.lane;
        if let Some(c) = plain_spsc(&mut self.cons, &self.base) {
            // The record's lane entry: the one at the consumer's cursor, whether the record is
            // read from its slot or from the mailbox.
            let at = lane.at(c.position());
            // A record the consumer knows is ready (a stream's common case): no look, so
            // nothing for the coalescing and no empty answer; only a malformed record fails.
            if c.known_ready() > 0 {
                // SAFETY: a sized `T` is the ring's record (the caller's contract).
                return match unsafe {
                    c.try_pop_of::<T, _>(
                        #[inline(always)]
                        |ptr| read(Rec { ptr, lane: at }),
                    )
                } {
                    Ok(Some(v)) => {
                        self.received_plain(1);
                        Ok(v)
                    }
                    Ok(None) | Err(_) => Err(Failed::Corrupted),
                };
            }
            let tries = short_looks(wait, &self.coalesce, &self.base);
            if tries > 0 {
                let mut left = tries;
                let got = loop {
                    // A closure of our own rather than `&mut read`: the standard library's
                    // `FnOnce for &mut F` shim between them was left out of line (a byte
                    // channel's `recv_into` spent a fifth of its instructions on the call).
                    // SAFETY: as above.
                    match unsafe {
                        c.try_pop_of::<T, _>(
                            #[inline(always)]
                            |ptr| read(Rec { ptr, lane: at }),
                        )
                    } {
                        Err(PopError::Empty) if left > 1 => {
                            left -= 1;
                            std::hint::spin_loop();
                        }
                        r => break r,
                    }
                };
                let more = c.known_ready();
                match got {
                    Ok(Some(v)) => {
                        self.after_short_look(tries, left, more);
                        self.received_plain(1);
                        return Ok(v);
                    }
                    Err(PopError::Empty) if self.empty_now(wait) => return Err(Failed::Timeout),
                    Err(PopError::Empty) => {}
                    Ok(None) | Err(_) => return Err(Failed::Corrupted),
                }
            }
        }
        self.recv_general(wait, read)
    }

    /// [`recv`](Self::recv) the general way: either ring kind, any state, waiting.
    #[inline(never)]
    fn recv_general<R>(
        &mut self,
        wait: Wait,
        mut read: impl FnMut(Rec) -> Option<R>,
    ) -> Result<R, Failed> {
        self.base.here()?;
        if !matches!(self.held, Held::None) {
            self.settle_leaked();
        }
        self.cons.answer_for(wait);
        let lane = self.base.lane;
        // The fast path: nothing adopted, not armed, a record in the ring.
        if self.adopted.is_empty() && !self.base.armed {
            let looks = self.before_take(wait);
            match pop(&mut self.cons, lane, &mut read) {
                Ok(v) => {
                    if looks {
                        self.after_look(0);
                    }
                    self.received(1);
                    return Ok(v);
                }
                // The general path below tries again (with the drain rule) and waits.
                Err(PopError::Empty) => self.coalesce.idle(),
                Err(_) => return Err(Failed::Corrupted),
            }
        }
        let (policy, publish) = (self.base.when_peers_leave, self.base.publish);
        let take = |seg: &Segment, cons: &mut Cons, adopted: &mut VecDeque<Image>| {
            if let Some(image) = adopted.pop_front() {
                return match read(image.rec()) {
                    Some(v) => Attempt::Ready(v),
                    None => Attempt::Corrupted,
                };
            }
            let first = pop(cons, lane, &mut read);
            pop_attempt(first, seg, (policy, publish), || pop(cons, lane, &mut read))
        };
        let v = self.take(wait, take)?;
        self.base.tally.add(Count::Records, 1);
        Ok(v)
    }

    /// Receives up to `buf.len() / record_size` whole records into `buf` with one release for
    /// all of them, waiting only while none is there. Returns how many.
    pub(crate) fn recv_batch(&mut self, wait: Wait, buf: &mut [u8]) -> Result<usize, Failed> {
        self.base.here()?;
        if !matches!(self.held, Held::None) {
            self.settle_leaked();
        }
        let size = self.base.record_size;
        self.cons.answer_for(wait);
        if buf.len() < size {
            self.base.disarm(Role::Receiver);
            return Ok(0);
        }
        let (policy, publish) = (self.base.when_peers_leave, self.base.publish);
        let take = |seg: &Segment, cons: &mut Cons, adopted: &mut VecDeque<Image>| {
            if !adopted.is_empty() {
                return Attempt::Ready(drain_adopted(adopted, buf, size));
            }
            let mut pop_batch = || match either!(&mut *cons, Cons, c => c.try_pop_batch(&mut *buf))
            {
                Ok(0) => Err(PopError::Empty),
                r => r,
            };
            let first = pop_batch();
            pop_attempt(first, seg, (policy, publish), pop_batch)
        };
        let n = self.take(wait, take)?;
        self.base.tally.add(Count::Records, n as u64);
        Ok(n)
    }

    /// One receive: disarms, tries `take` once, and when that finds nothing and `wait` allows,
    /// waits with it (see [`RecvCore::wait_for`]). Wakes senders waiting for room after taking
    /// from the ring.
    #[inline]
    fn take<R>(
        &mut self,
        wait: Wait,
        mut take: impl FnMut(&Segment, &mut Cons, &mut VecDeque<Image>) -> Attempt<R>,
    ) -> Result<R, Failed> {
        self.base.disarm(Role::Receiver);
        let adopted_first = !self.adopted.is_empty();
        let v = match take(&self.base.seg, &mut self.cons, &mut self.adopted) {
            // From this process's own queue: nothing was freed in the ring.
            Attempt::Ready(v) if adopted_first => return Ok(v),
            Attempt::NotYet if !matches!(wait, Wait::No) => self.wait_for(wait.deadline(), take)?,
            a => now(a)?,
        };
        if self.base.seg.wake_senders(self.base.publish) {
            self.base.tally.add(Count::Posts, 1);
        }
        Ok(v)
    }

    /// Waits until `take` gets something or every sender is gone (it then drains or reports
    /// the disconnection). At each time slice's housekeeping it first adopts what dead sibling
    /// receivers held.
    #[inline(never)]
    fn wait_for<R>(
        &mut self,
        deadline: Option<Instant>,
        mut take: impl FnMut(&Segment, &mut Cons, &mut VecDeque<Image>) -> Attempt<R>,
    ) -> Result<R, Failed> {
        let RecvCore {
            cons,
            base,
            adopted,
            ..
        } = self;
        let (format, size, lane) = (base.format, base.record_size, base.lane);
        base.block(Role::Receiver, deadline, |seg, hk| {
            if hk {
                adopt(seg, cons, adopted, (format, lane), size);
            }
            take(seg, cons, adopted)
        })
    }

    /// Takes the next record to read in place (see [`SlotRead`]); `T` as for
    /// [`recv`](Self::recv), whose guarantee the caller gives here too.
    #[inline(always)]
    pub(crate) fn peek<T>(&mut self, wait: Wait) -> Result<SlotRead<'_>, Failed> {
        // The short ways, as `recv`'s.
        if let Some(c) = plain_spsc(&mut self.cons, &self.base) {
            if c.known_ready() > 0 {
                // SAFETY: a sized `T` is the ring's record (the caller's contract).
                return match unsafe { c.next_ready_of::<T>() } {
                    Ok(ptr) => {
                        self.base.tally.add(Count::Records, 1);
                        // Recorded nowhere (see `Held`).
                        Ok(SlotRead { rx: self, ptr })
                    }
                    Err(_) => Err(Failed::Corrupted),
                };
            }
            let tries = short_looks(wait, &self.coalesce, &self.base);
            if tries > 0 {
                let mut left = tries;
                let got = loop {
                    // SAFETY: as above.
                    match unsafe { c.next_ready_of::<T>() } {
                        Err(PopError::Empty) if left > 1 => {
                            left -= 1;
                            std::hint::spin_loop();
                        }
                        r => break r,
                    }
                };
                // The peeked record is still counted as ready (it is released later).
                let more = c.known_ready().saturating_sub(1);
                match got {
                    Ok(ptr) => {
                        self.after_short_look(tries, left, more);
                        self.base.tally.add(Count::Records, 1);
                        // Recorded nowhere (see `Held`).
                        return Ok(SlotRead { rx: self, ptr });
                    }
                    Err(PopError::Empty) if self.empty_now(wait) => return Err(Failed::Timeout),
                    Err(PopError::Empty) => {}
                    Err(_) => return Err(Failed::Corrupted),
                }
            }
        }
        self.peek_general(wait)
    }

    /// [`peek`](Self::peek) the general way.
    #[inline]
    fn peek_general(&mut self, wait: Wait) -> Result<SlotRead<'_>, Failed> {
        // One try, when it cannot find the ring empty (an SPSC consumer that knows of a ready
        // record); whatever else it returns is final.
        if matches!(wait, Wait::No) || matches!(&self.cons, Cons::Spsc(c) if c.known_ready() > 0) {
            return self.peek_once(wait);
        }
        self.peek_slow(wait)
    }

    /// After records were taken from the ring: counts them and wakes senders waiting for
    /// room (at the low-water mark).
    #[inline(always)]
    fn received(&self, n: u64) {
        self.base.tally.add(Count::Records, n);
        self.low_water();
    }

    /// [`received`](Self::received) on a short way, whose publish ordering is known to be
    /// `Publish::Unfenced` (see `Base::plain_here`) without loading it.
    #[inline(always)]
    fn received_plain(&self, n: u64) {
        self.base.tally.add(Count::Records, n);
        self.low_water_as(Publish::Unfenced);
    }

    /// Wakes senders waiting for room if the low-water mark says so: a waking sender per freed
    /// slot would cost it a wake-up and a sleep per record. The fast path of
    /// `Segment::wake_senders` on the cell at hand: the check alone (a fence and a load).
    #[inline(always)]
    fn low_water(&self) {
        self.low_water_as(self.base.publish);
    }

    /// [`low_water`](Self::low_water) with the publish ordering given (this endpoint's).
    #[inline(always)]
    fn low_water_as(&self, publish: Publish) {
        debug_assert_eq!(publish, self.base.publish);
        if senders_sleep(self.base.near.cell(), publish) {
            wake_senders(&self.base, publish);
        }
    }

    #[inline(never)]
    fn peek_slow(&mut self, wait: Wait) -> Result<SlotRead<'_>, Failed> {
        retry_loop(self, wait.deadline(), |rx| rx.peek_once(wait))
    }

    #[inline(always)]
    pub(crate) fn try_peek<T>(&mut self) -> Result<SlotRead<'_>, Failed> {
        self.peek::<T>(Wait::No)
    }

    #[inline]
    fn peek_once(&mut self, wait: Wait) -> Result<SlotRead<'_>, Failed> {
        self.base.here()?;
        self.base.disarm(Role::Receiver);
        if !matches!(self.held, Held::None) {
            self.settle_leaked();
        }
        self.cons.answer_for(wait);
        let tally = self.base.tally;
        if let Some(image) = self.adopted.pop_front() {
            tally.add(Count::Records, 1);
            let ptr = image.ptr();
            self.held = Held::Image(image);
            return Ok(SlotRead { rx: self, ptr });
        }
        let looks = self.before_take(wait);
        match peek_slot(&mut self.cons) {
            Ok((ptr, held)) => {
                if looks {
                    // The peeked record is still counted as ready (it is released later).
                    self.after_look(1);
                }
                tally.add(Count::Records, 1);
                self.held = held;
                Ok(SlotRead { rx: self, ptr })
            }
            Err(PopError::Empty) => {
                self.coalesce.idle();
                self.peek_empty()
            }
            Err(_) => Err(Failed::Corrupted),
        }
    }

    /// Before a take from the ring that may wait: whether it will look at the sender's
    /// cursor (an SPSC consumer that knows of no ready record); if so, pauses while the
    /// sender streams (see `crate::coalesce`). A take that may not wait (`try_recv`,
    /// `try_peek`) neither pauses nor counts.
    #[inline(always)]
    fn before_take(&self, wait: Wait) -> bool {
        let looks = !matches!(wait, Wait::No)
            && matches!(&self.cons, Cons::Spsc(c) if c.known_ready() == 0);
        if looks {
            self.coalesce.before_look();
        }
        looks
    }

    /// After a take that looked at the sender's cursor: tells the coalescing how many more
    /// records than the one taken the look showed (`still_counted`: how many taken records
    /// the consumer still counts as ready).
    #[inline(always)]
    fn after_look(&mut self, still_counted: u64) {
        if let Cons::Spsc(c) = &self.cons {
            self.coalesce
                .after_look(c.known_ready().saturating_sub(still_counted));
        }
    }

    /// A peek found the ring empty: the drain protocol of [`pop_attempt`] (on an empty ring
    /// whose senders are all gone, peek once more before reporting the disconnection).
    #[cold]
    fn peek_empty(&mut self) -> Result<SlotRead<'_>, Failed> {
        let (seg, publish) = (&*self.base.seg, self.base.publish);
        let policy = self.base.when_peers_leave;
        let cons = &mut self.cons;
        let (ptr, held) = now(pop_attempt(
            Err(PopError::Empty),
            seg,
            (policy, publish),
            || peek_slot(cons),
        ))?;
        self.base.tally.add(Count::Records, 1);
        self.held = held;
        Ok(SlotRead { rx: self, ptr })
    }

    /// Counts a sleep of an event loop's wait.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn note_sleep(&self) {
        self.base.note_sleep(Role::Receiver);
    }

    /// See [`Receiver::arm`](crate::Receiver::arm).
    pub(crate) fn arm(&mut self) -> bool {
        let empty = self.is_empty();
        let policy = self.base.when_peers_leave;
        // A forked child's copy is ready at once: its next call reports the misuse.
        self.base.here().is_err()
            || self.base.arm(Role::Receiver, |seg| {
                !empty || left(seg, Role::Sender, policy)
            })
    }

    /// One time slice's housekeeping for a waiter outside `block` (an event loop): reap dead
    /// peers and adopt what dead sibling receivers held.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn housekeep(&mut self) {
        let b = &self.base;
        // An event loop acts on what the next try finds; a segment that is no longer whole
        // is reported by `check`.
        let _ = housekeep(&b.seg, Role::Receiver);
        adopt(
            &b.seg,
            &mut self.cons,
            &mut self.adopted,
            (b.format, b.lane),
            b.record_size,
        );
    }

    /// The spin phase of a waiter outside `block` (an event loop): whether a record (or a
    /// departure) appeared within this wait's spin window.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn spin_for_data(&mut self) -> bool {
        let mut spin = self.base.spin;
        let ready = spin.spin(|| {
            (!self.is_empty() || self.base.peers_left(&self.base.seg, Role::Sender)).then_some(())
        });
        self.base.spin = spin;
        ready.is_some()
    }

    /// Records waiting for this receiver: the ring's (approximate while peers run) plus the
    /// adopted ones.
    pub(crate) fn len(&self) -> usize {
        either!(&self.cons, Cons, c => c.len()) + self.adopted.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.adopted.is_empty() && either!(&self.cons, Cons, c => c.is_empty())
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.base.seg.gone(Role::Sender)
    }
}

impl Retried for RecvCore {
    type Guard<'g> = SlotRead<'g>;

    /// Between two tries of a blocking peek: waits until a record is there (in the ring or
    /// adopted) or every sender is gone (the try then drains or reports the disconnection).
    fn wait(&mut self, retry: &mut Retry, deadline: Option<Instant>) -> Result<(), Failed> {
        retry.before_retry(&self.base.seg, Role::Receiver, deadline)?;
        let policy = self.base.when_peers_leave;
        self.wait_for(deadline, |seg, cons, adopted| {
            let ready = match &*cons {
                Cons::Spsc(c) => !c.is_empty(),
                // Not `is_empty`, which reads the senders' cursor: a receiver waiting in this
                // loop would keep pulling that line from the senders claiming on it.
                Cons::Mpmc(c) => c.head_ready(),
            };
            if !adopted.is_empty() || ready || left(seg, Role::Sender, policy) {
                Attempt::Ready(())
            } else {
                Attempt::NotYet
            }
        })
    }
}

impl Drop for RecvCore {
    fn drop(&mut self) {
        // A leaked guard's record (not in a forked child's copy, nor in a shrunk file).
        if matches!(self.held, Held::Ring(_)) && self.base.seg.whole() && self.base.here().is_ok() {
            self.settle_leaked();
        }
        // Adopted records not yet delivered (they did not fit back in the ring when they were
        // adopted): one more try to hand them to the other receivers.
        if let Cons::Mpmc(c) = &mut self.cons {
            if !self.adopted.is_empty() {
                hand_back(&self.base.seg, c, self.base.lane, &mut self.adopted);
            }
        }
        self.base.leave(Role::Receiver);
    }
}

/// Senders sleep: wakes them if the low-water mark says so, and counts the post. Takes the
/// endpoint's `Base` whole, so that the caller's check passes one pointer it holds anyway
/// (nothing loaded for the call on the path that does not make it).
#[cold]
#[inline(never)]
fn wake_senders(base: &Base, publish: Publish) {
    if base.seg.wake_senders(publish) {
        base.tally.add(Count::Posts, 1);
    }
}

/// Peeks one record: its pointer and what the receiver holds for it (see [`Held`]).
#[inline(always)]
fn peek_slot(cons: &mut Cons) -> Result<(NonNull<u8>, Held), PopError> {
    match cons {
        // Recorded nowhere (see `Held`).
        Cons::Spsc(c) => c.next_ready().map(|p| (p, Held::None)),
        Cons::Mpmc(c) => c.try_peek(1).map(|g| (g.slot(0), Held::Ring(g.detach()))),
    }
}

/// Pops one record through `read` (`None` from it: a malformed record), which gets the
/// record and its lane entry.
#[inline(always)]
fn pop<R>(
    cons: &mut Cons,
    lane: Lane,
    read: &mut impl FnMut(Rec) -> Option<R>,
) -> Result<R, PopError> {
    let r = match cons {
        Cons::Spsc(c) => {
            let lane = lane.at(c.position());
            c.try_pop_with(|ptr| read(Rec { ptr, lane }))
        }
        Cons::Mpmc(c) => c.try_pop_with(|ptr| {
            read(Rec {
                ptr,
                lane: lane.of_record(ptr),
            })
        }),
    };
    match r {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(PopError::Corrupted),
        Err(e) => Err(e),
    }
}

/// One try of a receive: the drain protocol. On an empty ring whose senders are all gone,
/// tries once more (the last sender may have published right before leaving) before it
/// reports the disconnection.
#[inline]
fn pop_attempt<R>(
    r: Result<R, PopError>,
    seg: &Segment,
    (policy, publish): (WhenPeersLeave, Publish),
    retry: impl FnOnce() -> Result<R, PopError>,
) -> Attempt<R> {
    match r {
        Ok(v) => Attempt::Ready(v),
        Err(PopError::Empty) => {
            seg.after_empty(publish);
            if left(seg, Role::Sender, policy) {
                match retry() {
                    Ok(v) => Attempt::Ready(v),
                    Err(PopError::Empty) => Attempt::Gone,
                    Err(_) => Attempt::Corrupted,
                }
            } else {
                Attempt::NotYet
            }
        }
        Err(_) => Attempt::Corrupted,
    }
}
