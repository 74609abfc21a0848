//! Typed endpoints: [`Sender`] and [`Receiver`], their zero-copy guards and iterators.
//!
//! Each endpoint wraps a ring handle (SPSC or MPMC, chosen at run time by the segment; the
//! branch is perfectly predicted), its registration in the segment's endpoint table, and the
//! blocking layer. The fast path is the ring's: one slot write and one cursor store for a send,
//! plus the ring's "must the doorbell ring?" check (a fence and one load; no system call unless
//! somebody sleeps).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Pod;
use shmchan_ring::{self as ring, PopError, PushError};

use crate::error::{
    OpenError, RecvError, RecvTimeoutError, ReserveError, SendError, SendTimeoutError,
    TryRecvError, TrySendError,
};
use crate::segment::{RingKind, Role, Segment};
use crate::wait::{block, retry_loop, Attempt, Failed, Retried, Retry, Spin};

pub(crate) enum Prod {
    Spsc(ring::SpscProducer),
    Mpmc(ring::MpmcProducer),
}

pub(crate) enum Cons {
    Spsc(ring::SpscConsumer),
    Mpmc(ring::MpmcConsumer),
}

macro_rules! both {
    ($v:expr, $h:ident => $e:expr) => {
        match $v {
            Prod::Spsc($h) => $e,
            Prod::Mpmc($h) => $e,
        }
    };
}

pub(crate) use both;

macro_rules! both_c {
    ($v:expr, $h:ident => $e:expr) => {
        match $v {
            Cons::Spsc($h) => $e,
            Cons::Mpmc($h) => $e,
        }
    };
}

pub(crate) use both_c;

pub(crate) enum WGrant<'a> {
    Spsc(ring::spsc::WriteGrant<'a>),
    Mpmc(ring::mpmc::WriteGrant<'a>),
}

pub(crate) enum RGrant<'a> {
    Spsc(ring::spsc::ReadGrant<'a>),
    Mpmc(ring::mpmc::ReadGrant<'a>),
}

/// Checks that `T` is what the segment's ring carries (the fingerprint comparison at open
/// already did; this guards the casts below against any path that skipped it).
fn check_record<T>(seg: &Segment) -> Result<(), OpenError> {
    let info = seg.ring().config();
    if info.record_size as usize != size_of::<T>()
        || info.record_align as usize != align_of::<T>()
        || info.slot_stride as usize % align_of::<T>() != 0
    {
        return Err(OpenError::Corrupted {
            reason: format!(
                "ring records are {} bytes aligned to {}, the endpoint's type is {} bytes aligned to {}",
                info.record_size,
                info.record_align,
                size_of::<T>(),
                align_of::<T>()
            ),
        });
    }
    Ok(())
}

/// Checks, before an endpoint is made, that the segment's records are what it reads and writes.
pub(crate) type Check = fn(&Segment) -> Result<(), OpenError>;

/// A [`Check`] for a handle cloned from a checked endpoint.
fn checked(_: &Segment) -> Result<(), OpenError> {
    Ok(())
}

/// The part of creating an endpoint that senders and receivers share: check the record type,
/// register in the endpoint table, and build the ring handle with `make` (undoing the
/// registration if that fails). Returns the handle and the table slot.
fn attach<H>(
    seg: &Segment,
    role: Role,
    check: Check,
    make: impl FnOnce(&Segment, usize) -> Result<H, ring::KindError>,
) -> Result<(H, usize), OpenError> {
    check(seg)?;
    let slot = seg.register(role)?;
    match make(seg, slot) {
        Ok(h) => Ok((h, slot)),
        Err(e) => {
            seg.deregister(role, slot);
            Err(OpenError::Corrupted {
                reason: e.to_string(),
            })
        }
    }
}

fn push_err<T>(e: PushError, v: T) -> TrySendError<T> {
    match e {
        PushError::Full => TrySendError::Full(v),
        _ => TrySendError::Corrupted(v),
    }
}

/// The sending endpoint of a channel.
///
/// Created by [`Builder::create_sender`](crate::Builder::create_sender),
/// [`Builder::open_sender`](crate::Builder::open_sender) or [`Channel::sender`](crate::Channel::sender).
/// Operations take `&mut self` (the endpoint caches the peer's cursor); an MPMC sender can be
/// duplicated with [`Sender::try_clone`]. Dropping it deregisters it; when the last sender is
/// gone, receivers drain what was committed and then see `Disconnected`.
///
/// ```
/// use shmchan::{Backing, Channel, TrySendError};
/// let chan = Channel::<u32>::builder().capacity(2).backing(Backing::anonymous()).create()?;
/// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send(1).unwrap();
/// assert_eq!(tx.send_batch(&[2, 3, 4]), Ok(1)); // as many as fit
/// assert_eq!(tx.try_send(5), Err(TrySendError::Full(5)));
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct Sender<T> {
    pub(crate) prod: Prod,
    pub(crate) seg: Arc<Segment>,
    pub(crate) slot: usize,
    pub(crate) spin: Spin,
    /// Announced as a sleeper by [`Sender::arm`] (an event loop polls the doorbell).
    pub(crate) armed: bool,
    _t: PhantomData<fn(T)>,
}

impl<T: Pod> Sender<T> {
    pub(crate) fn new(seg: Arc<Segment>, spin: Duration) -> Result<Sender<T>, OpenError> {
        Sender::attach(seg, spin, check_record::<T>)
    }
}

impl<T> Sender<T> {
    /// Registers a sender on `seg` after `check` accepted its records.
    pub(crate) fn attach(
        seg: Arc<Segment>,
        spin: Duration,
        check: Check,
    ) -> Result<Sender<T>, OpenError> {
        let (prod, slot) = attach(&seg, Role::Sender, check, |seg, slot| match seg.kind {
            // SAFETY: `register` admitted us as the only live SPSC sender (the live mask went
            // from empty to our bit), so this is the only SPSC producer of the ring anywhere.
            RingKind::Spsc => unsafe { seg.ring().spsc_producer() }.map(Prod::Spsc),
            RingKind::Mpmc => seg.ring().mpmc_producer().map(|mut p| {
                // SAFETY: the record is this endpoint's own table entry (registered just
                // before), which stays in the mapping the Segment keeps alive for as long as
                // `p`, and no other handle announces in it until the entry is freed after this
                // one drops.
                unsafe { p.set_working(seg.working(slot)) };
                Prod::Mpmc(p)
            }),
        })?;
        Ok(Sender {
            prod,
            seg,
            slot,
            spin: Spin::new(spin),
            armed: false,
            _t: PhantomData,
        })
    }
}

impl<T: Pod> Sender<T> {
    #[inline]
    fn push(&mut self, v: T) -> Result<(), PushError> {
        both!(&mut self.prod, p => p.try_push_with(|slot| {
            // SAFETY: the slot holds `record_size == size_of::<T>()` bytes aligned to
            // `record_align == align_of::<T>()` (checked in `check_record` against the ring's
            // validated config) and is ours to write until the ring publishes it.
            unsafe { slot.cast::<T>().as_ptr().write(v) }
        }))
    }

    /// Sends without waiting: `Full` when the ring is full, `Disconnected` when every receiver
    /// is gone. The record comes back in the error.
    ///
    /// ```
    /// # use shmchan::TrySendError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// for i in 0..4 { tx.try_send(i).unwrap(); }
    /// assert_eq!(tx.try_send(9), Err(TrySendError::Full(9))); // the record comes back
    /// drop(rx);
    /// assert_eq!(tx.try_send(9), Err(TrySendError::Disconnected(9)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_send(&mut self, v: T) -> Result<(), TrySendError<T>> {
        self.disarm();
        if self.seg.gone(Role::Receiver) {
            return Err(TrySendError::Disconnected(v));
        }
        match self.push(v) {
            Ok(()) => {
                self.wake();
                Ok(())
            }
            Err(e) => Err(push_err(e, v)),
        }
    }

    fn send_until(&mut self, v: T, deadline: Option<Instant>) -> Result<(), Failed> {
        let Sender {
            prod,
            seg,
            spin,
            slot,
            ..
        } = self;
        block(seg, Role::Sender, *slot, deadline, spin, |_| {
            if seg.gone(Role::Receiver) {
                return Attempt::Gone;
            }
            match both!(&mut *prod, p => p.try_push_with(|slot| {
                // SAFETY: as in `push`.
                unsafe { slot.cast::<T>().as_ptr().write(v) }
            })) {
                Ok(()) => Attempt::Ready(()),
                Err(PushError::Full) => Attempt::NotYet,
                Err(_) => Attempt::Corrupted,
            }
        })?;
        self.wake();
        Ok(())
    }

    /// Sends, waiting while the ring is full (spin, then sleep on the doorbell). Fails only when
    /// every receiver is gone (or the segment is corrupted); the record comes back.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// drop(rx); // the only receiver is gone
    /// assert_eq!(tx.send(2), Err(shmchan::SendError::Disconnected(2)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn send(&mut self, v: T) -> Result<(), SendError<T>> {
        match self.try_send(v) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(v)) => self.send_until(v, None).map_err(|f| match f {
                Failed::Gone => SendError::Disconnected(v),
                _ => SendError::Corrupted(v),
            }),
            Err(TrySendError::Disconnected(v)) => Err(SendError::Disconnected(v)),
            Err(TrySendError::Corrupted(v)) => Err(SendError::Corrupted(v)),
        }
    }

    /// Sends, waiting at most `timeout` for room.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// for i in 0..4 { tx.send(i).unwrap(); } // full now
    /// let e = tx.send_timeout(9, Duration::from_millis(5));
    /// assert_eq!(e, Err(shmchan::SendTimeoutError::Timeout(9)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_timeout(&mut self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(v, Instant::now() + timeout)
    }

    /// Sends, waiting until `deadline` at most for room.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// for i in 0..4 { tx.send(i).unwrap(); } // full now
    /// let e = tx.send_deadline(9, Instant::now() + Duration::from_millis(5));
    /// assert_eq!(e, Err(shmchan::SendTimeoutError::Timeout(9)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_deadline(&mut self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        match self.try_send(v) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(v)) => self.send_until(v, Some(deadline)).map_err(|f| match f {
                Failed::Timeout => SendTimeoutError::Timeout(v),
                Failed::Gone => SendTimeoutError::Disconnected(v),
                Failed::Corrupted => SendTimeoutError::Corrupted(v),
            }),
            Err(TrySendError::Disconnected(v)) => Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Corrupted(v)) => Err(SendTimeoutError::Corrupted(v)),
        }
    }

    /// Sends as many records of `records` as fit right now, with one publish for all of them;
    /// waits (like [`send`](Self::send)) only while not even one fits. Returns how many were
    /// sent (0 only for an empty slice).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(tx.send_batch(&[1, 2, 3]), Ok(3)); // one publish for all three
    /// let mut buf = [0; 4];
    /// assert_eq!(rx.recv_batch(&mut buf), Ok(3));
    /// assert_eq!(buf[..3], [1, 2, 3]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_batch(&mut self, records: &[T]) -> Result<usize, ReserveError> {
        self.send_batch_until(records, None)
    }

    /// [`send_batch`](Self::send_batch) that waits at most until `deadline`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(tx.send_batch_deadline(&[1, 2, 3, 4, 5], deadline), Ok(4)); // as many as fit
    /// let e = tx.send_batch_deadline(&[6], deadline);
    /// assert_eq!(e, Err(shmchan::ReserveError::Full)); // still full at the deadline
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_batch_deadline(
        &mut self,
        records: &[T],
        deadline: Instant,
    ) -> Result<usize, ReserveError> {
        self.send_batch_until(records, Some(deadline))
    }

    /// [`send_batch`](Self::send_batch) without waiting: `Ok(0)` when the ring is full.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(tx.try_send_batch(&[1, 2, 3, 4, 5, 6]), Ok(4)); // as many as fit
    /// assert_eq!(tx.try_send_batch(&[7]), Ok(0)); // full: nothing sent, no waiting
    /// assert_eq!(rx.len(), 4);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_send_batch(&mut self, records: &[T]) -> Result<usize, ReserveError> {
        self.disarm();
        if self.seg.gone(Role::Receiver) {
            return Err(ReserveError::Disconnected);
        }
        let bytes: &[u8] = bytemuck::cast_slice(records);
        match both!(&mut self.prod, p => p.try_push_batch(bytes)) {
            Ok(n) => {
                if n > 0 {
                    self.wake();
                }
                Ok(n)
            }
            Err(PushError::Full) => Ok(0),
            Err(_) => Err(ReserveError::Corrupted),
        }
    }

    fn send_batch_until(
        &mut self,
        records: &[T],
        deadline: Option<Instant>,
    ) -> Result<usize, ReserveError> {
        self.disarm();
        if records.is_empty() {
            return Ok(0);
        }
        let bytes: &[u8] = bytemuck::cast_slice(records);
        let Sender {
            prod,
            seg,
            spin,
            slot,
            ..
        } = self;
        let n = block(seg, Role::Sender, *slot, deadline, spin, |_| {
            if seg.gone(Role::Receiver) {
                return Attempt::Gone;
            }
            match both!(&mut *prod, p => p.try_push_batch(bytes)) {
                Ok(0) | Err(PushError::Full) => Attempt::NotYet,
                Ok(n) => Attempt::Ready(n),
                Err(_) => Attempt::Corrupted,
            }
        })
        .map_err(reserve_failed)?;
        self.wake();
        Ok(n)
    }

    /// Reserves one slot to write in place, waiting while the ring is full. The guard derefs to
    /// `&mut T` (holding whatever bytes the slot had: any bits are a valid `T`);
    /// [`SendGuard::commit`] publishes it, and dropping the guard uncommitted publishes nothing
    /// (on MPMC the claimed slot is marked skipped and receivers pass over it).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve().unwrap();
    /// *slot = 42;
    /// slot.commit();
    /// assert_eq!(rx.recv(), Ok(42));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn reserve(&mut self) -> Result<SendGuard<'_, T>, ReserveError> {
        self.reserve_until(None)
    }

    /// [`reserve`](Self::reserve) without waiting: [`ReserveError::Full`] when full.
    ///
    /// ```
    /// # use shmchan::ReserveError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.try_reserve().unwrap();
    /// *slot = 1;
    /// slot.commit();
    /// # for i in 2..=4 { tx.send(i).unwrap(); }
    /// // ... the ring is full now:
    /// assert!(matches!(tx.try_reserve(), Err(ReserveError::Full)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_reserve(&mut self) -> Result<SendGuard<'_, T>, ReserveError> {
        self.disarm();
        if self.seg.gone(Role::Receiver) {
            return Err(ReserveError::Disconnected);
        }
        let seg = &*self.seg;
        // The guard is made inside each arm, where the grant's kind is known (see `peek_slot`).
        let r = match &mut self.prod {
            Prod::Spsc(p) => p
                .try_reserve(1)
                .map(|g| SendGuard::new(WGrant::Spsc(g), seg)),
            Prod::Mpmc(p) => p
                .try_reserve(1)
                .map(|g| SendGuard::new(WGrant::Mpmc(g), seg)),
        };
        r.map_err(|e| match e {
            PushError::Full => ReserveError::Full,
            _ => ReserveError::Corrupted,
        })
    }

    /// [`reserve`](Self::reserve) that waits at most `timeout` ([`ReserveError::Full`] then).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve_timeout(Duration::from_millis(5)).unwrap();
    /// *slot = 6;
    /// slot.commit();
    /// assert_eq!(rx.recv(), Ok(6));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn reserve_timeout(&mut self, timeout: Duration) -> Result<SendGuard<'_, T>, ReserveError> {
        self.reserve_until(Some(Instant::now() + timeout))
    }

    fn reserve_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<SendGuard<'_, T>, ReserveError> {
        retry_loop(self, deadline, reserve_failed, |tx| {
            match tx.try_reserve() {
                Err(ReserveError::Full) => None,
                r => Some(r),
            }
        })
    }
}

impl<T: Pod> Retried for Sender<T> {
    type Guard<'g> = SendGuard<'g, T>;

    fn wait(&mut self, retry: &mut Retry, deadline: Option<Instant>) -> Result<(), Failed> {
        self.wait_for_room(retry, deadline)
    }
}

impl<T> Sender<T> {
    /// Between two tries of a blocking reserve (typed or bytes): [`Retry::before_retry`], then
    /// waits until the ring has room or every receiver is gone.
    pub(crate) fn wait_for_room(
        &mut self,
        retry: &mut Retry,
        deadline: Option<Instant>,
    ) -> Result<(), Failed> {
        retry.before_retry(&self.seg, Role::Sender, deadline)?;
        let Sender {
            prod,
            seg,
            spin,
            slot,
            ..
        } = self;
        block(seg, Role::Sender, *slot, deadline, spin, |_| {
            if seg.gone(Role::Receiver) {
                Attempt::Gone
            } else if both!(&*prod, p => p.is_full()) {
                Attempt::NotYet
            } else {
                Attempt::Ready(())
            }
        })
    }

    /// The descriptor a sender waiting for room sleeps on, for an event loop (`poll`,
    /// `epoll`, `mio`): it becomes readable when a receiver frees room for an armed sender.
    /// Only doorbells with descriptors have one ([`Doorbell::PosixMq`], [`Doorbell::EventFd`]);
    /// `None` otherwise.
    /// Use it like [`Receiver::doorbell_fd`]: [`arm`](Sender::arm) before each wait, send
    /// after it.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell};
    /// let chan = Channel::<u64>::builder().capacity(1).doorbell(Doorbell::PosixMq).create()?;
    /// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(tx.doorbell_fd().is_some());
    /// tx.send(1).unwrap(); // full now
    /// assert!(tx.arm()); // the next receive rings the sender's doorbell
    /// assert_eq!(rx.recv(), Ok(1));
    /// tx.try_send(2).unwrap(); // sending disarms
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// [`Doorbell::PosixMq`]: crate::Doorbell::PosixMq
    /// [`Doorbell::EventFd`]: crate::Doorbell::EventFd
    pub fn doorbell_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.seg.doorbell_fd(Role::Sender)
    }

    /// Announces this sender as waiting for room, so that the next receive rings the
    /// doorbell (makes [`doorbell_fd`](Sender::doorbell_fd) readable). Returns `false`,
    /// without arming, when there is no need to wait: there is room, or every receiver is
    /// gone. Any send or reservation disarms.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(!tx.arm()); // room: no need to wait
    /// tx.send(1).unwrap();
    /// assert!(tx.arm()); // full: armed
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn arm(&mut self) -> bool {
        if self.armed {
            return true;
        }
        let seg = &*self.seg;
        seg.announce(Role::Sender, self.slot);
        let ready = !both!(&self.prod, p => p.is_full()) || seg.gone(Role::Receiver);
        if ready {
            seg.settle(Role::Sender, self.slot);
            return false;
        }
        self.armed = true;
        true
    }

    /// Leaves the armed state: withdraws the announcement or consumes the token it earned.
    pub(crate) fn disarm(&mut self) {
        if std::mem::take(&mut self.armed) {
            self.seg.settle(Role::Sender, self.slot);
        }
    }

    /// One time slice's housekeeping for a waiter outside `block` (an event loop): reap dead
    /// receivers.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn housekeep(&mut self) {
        crate::wait::housekeep(&self.seg, Role::Sender);
    }

    /// Another sender of the same MPMC channel (registered as its own endpoint). SPSC channels
    /// refuse with [`OpenError::EndpointTaken`].
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().mpmc().backing(shmchan::Backing::anonymous()).create()?;
    /// let tx = chan.sender()?;
    /// let mut tx2 = tx.try_clone()?; // MPMC: any number of senders
    /// tx2.send(1).unwrap();
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_clone(&self) -> Result<Sender<T>, OpenError> {
        Sender::attach(self.seg.clone(), self.spin.window, checked)
    }

    /// Rings the doorbell if receivers sleep (one fence and a load otherwise).
    #[inline]
    pub(crate) fn wake(&self) {
        let n = both!(&self.prod, p => p.wake_consumers());
        if n > 0 {
            self.seg.post(Role::Receiver, n);
        }
    }

    /// Records in the ring right now (approximate while peers run).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2]).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn len(&self) -> usize {
        both!(&self.prod, p => p.len())
    }

    /// Whether the ring is empty right now.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(tx.is_empty());
    /// tx.send(1).unwrap();
    /// assert!(!tx.is_empty());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full right now.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3, 4]).unwrap();
    /// assert!(tx.is_full());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_full(&self) -> bool {
        both!(&self.prod, p => p.is_full())
    }

    /// How many records the ring holds.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().capacity(100).create()?;
    /// assert_eq!(chan.sender()?.capacity(), 128);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.seg.capacity as usize
    }

    /// Whether every receiver is gone (some receiver connected once, none is live now).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (tx, rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(!tx.is_disconnected());
    /// drop(rx); // the only receiver
    /// assert!(tx.is_disconnected());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.seg.gone(Role::Receiver)
    }

    /// The SysV shmid of the segment (to hand to a peer), or `None` for other backings.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().create()?; // anonymous memory
    /// assert_eq!(chan.sender()?.shm_id(), None);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn shm_id(&self) -> Option<i32> {
        self.seg.shm_id()
    }

    /// Flushes a file-backed channel to its file (`msync(MS_SYNC)`); a no-op for other
    /// backings. Committed records survive process exit without it (the page cache holds
    /// them); this makes them survive a machine crash.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-sync-{}", std::process::id()));
    /// let mut tx = Channel::<u64>::builder().backing(Backing::file(&path)).create_sender()?;
    /// tx.send(1).unwrap();
    /// tx.sync()?; // now on disk, not only in the page cache
    /// # drop(tx); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn sync(&self) -> Result<(), OpenError> {
        self.seg.msync().map_err(OpenError::Os)
    }
}

pub(crate) fn reserve_failed(f: Failed) -> ReserveError {
    match f {
        Failed::Timeout => ReserveError::Full,
        Failed::Gone => ReserveError::Disconnected,
        Failed::Corrupted => ReserveError::Corrupted,
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.disarm();
        self.seg.deregister(Role::Sender, self.slot);
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("backing", &self.seg.backing)
            .field("kind", &self.seg.kind)
            .finish_non_exhaustive()
    }
}

/// A slot reserved by [`Sender::reserve`]: write the record in place, then
/// [`commit`](SendGuard::commit).
///
/// ```
/// # use shmchan::{Backing, Channel};
/// # let chan = Channel::<[u64; 8]>::builder().backing(Backing::anonymous()).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// let mut slot = tx.reserve().unwrap();
/// slot[0] = 42; // written in shared memory, no copy
/// slot.commit();
/// assert_eq!(rx.recv().unwrap()[0], 42);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[must_use = "dropping a SendGuard without commit() publishes nothing"]
pub struct SendGuard<'a, T> {
    grant: Option<WGrant<'a>>,
    seg: &'a Segment,
    ptr: NonNull<T>,
}

impl<'a, T> SendGuard<'a, T> {
    #[inline]
    fn new(grant: WGrant<'a>, seg: &'a Segment) -> SendGuard<'a, T> {
        let ptr = match &grant {
            WGrant::Spsc(g) => g.slot(0),
            WGrant::Mpmc(g) => g.slot(0),
        }
        .cast::<T>();
        SendGuard {
            grant: Some(grant),
            seg,
            ptr,
        }
    }

    /// Publishes the record (and wakes a sleeping receiver).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve().unwrap();
    /// *slot = 5;
    /// assert!(rx.is_empty()); // written, not yet published
    /// slot.commit();
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn commit(mut self) {
        match self.grant.take() {
            Some(WGrant::Spsc(g)) => g.commit(),
            Some(WGrant::Mpmc(g)) => g.commit(),
            None => {}
        }
        self.seg.wake_all(Role::Receiver);
    }
}

impl<T> Drop for SendGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        match self.grant.take() {
            // Uncommitted SPSC: nothing was published.
            Some(WGrant::Spsc(_)) => {}
            // Uncommitted MPMC: the claim cannot be undone; the ring publishes the slot as
            // skipped, and a receiver sleeping on it must wake to pass over it.
            Some(WGrant::Mpmc(g)) => {
                drop(g);
                self.seg.wake_all(Role::Receiver);
            }
            None => {}
        }
    }
}

impl<T> Deref for SendGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `ptr` is the reserved slot: `size_of::<T>()` bytes aligned for T (checked at
        // endpoint creation), initialised (mapped memory), any bits valid (T: Pod), and ours
        // alone until commit; the guard borrows the sender, so it cannot outlive the mapping.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for SendGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.ptr.as_mut() }
    }
}

/// The receiving endpoint of a channel.
///
/// Created by [`Builder::create_receiver`](crate::Builder::create_receiver),
/// [`Builder::open_receiver`](crate::Builder::open_receiver) or
/// [`Channel::receiver`](crate::Channel::receiver). When every sender is gone, it drains what
/// was committed and then reports `Disconnected`.
///
/// ```
/// use shmchan::{Backing, Channel, RecvError};
/// let chan = Channel::<u64>::builder().backing(Backing::anonymous()).create()?;
/// let mut rx = chan.receiver()?;
/// {
///     let mut tx = chan.sender()?;
///     tx.send_batch(&[1, 2, 3]).unwrap();
/// } // the only sender is gone
/// let mut buf = [0u64; 8];
/// assert_eq!(rx.recv_batch(&mut buf), Ok(3));
/// assert_eq!(rx.recv(), Err(RecvError::Disconnected));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct Receiver<T> {
    pub(crate) cons: Cons,
    pub(crate) seg: Arc<Segment>,
    pub(crate) slot: usize,
    pub(crate) spin: Spin,
    /// Announced as a sleeper by [`Receiver::arm`] (an event loop polls the doorbell).
    pub(crate) armed: bool,
    /// Records adopted from a dead sibling MPMC receiver, delivered before the ring's.
    pub(crate) adopted: VecDeque<T>,
    /// The same for a byte channel (`Receiver<Bytes>`): the messages' bytes.
    pub(crate) adopted_bytes: VecDeque<Vec<u8>>,
    _t: PhantomData<fn() -> T>,
}

/// Moves adopted records into `buf`; returns how many.
fn drain_into<T>(adopted: &mut VecDeque<T>, buf: &mut [T]) -> usize {
    let n = adopted.len().min(buf.len());
    for (dst, v) in buf.iter_mut().zip(adopted.drain(..n)) {
        *dst = v;
    }
    n
}

/// Adopts what dead sibling receivers (MPMC) had claimed (at-least-once delivery): their
/// records are copied out, their slots released, and the records handed back to the ring (see
/// [`hand_back`]).
fn adopt_orphans<T: Pod>(seg: &Segment, cons: &mut Cons, adopted: &mut VecDeque<T>) {
    if let Cons::Mpmc(c) = cons {
        seg.settle_orphans(Some(c), |p| {
            // SAFETY: `adopt` hands out a slot it holds (stamp `adopted`), with a record of
            // `size_of::<T>()` bytes aligned for T (checked in `check_record`); any bits are a
            // valid T (Pod); copied out before the slot is released.
            adopted.push_back(unsafe { p.cast::<T>().as_ptr().read() })
        });
        hand_back(seg, c, adopted, |slot, v| {
            // SAFETY: `push_back_with` hands out a claimed slot of `size_of::<T>()` bytes
            // aligned for T (checked in `check_record`).
            unsafe { slot.cast::<T>().as_ptr().write(*v) }
        });
    }
}

/// Pushes adopted records back into the ring (at the tail, announced as a producer's claim), so
/// that any receiver gets them and neither this receiver's drop nor its death can lose them.
/// Records that do not fit (the ring is full) stay in `adopted`: this receiver delivers them
/// first, and tries again at its next housekeeping and when it is dropped.
pub(crate) fn hand_back<M>(
    seg: &Segment,
    c: &mut ring::MpmcConsumer,
    adopted: &mut VecDeque<M>,
    write: impl Fn(NonNull<u8>, &M),
) {
    let mut n = 0;
    while let Some(m) = adopted.front() {
        if c.push_back_with(|slot| write(slot, m)).is_err() {
            break;
        }
        adopted.pop_front();
        n += 1;
    }
    if n > 0 {
        seg.wake_all(Role::Receiver);
    }
}

#[inline]
pub(crate) fn pop_attempt<R>(
    r: Result<R, PopError>,
    seg: &Segment,
    retry: impl FnOnce() -> Result<R, PopError>,
) -> Attempt<R> {
    match r {
        Ok(v) => Attempt::Ready(v),
        Err(PopError::Empty) => {
            seg.after_empty();
            if seg.gone(Role::Sender) {
                // The last sender may have published right before leaving: drain first.
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

/// Peeks one slot for a `try_peek` (typed or bytes), with the drain protocol of
/// [`pop_attempt`]: on an empty ring whose senders are all gone, peeks once more before it
/// reports the disconnection.
pub(crate) fn peek_slot<'c>(cons: &'c mut Cons, seg: &Segment) -> Result<RGrant<'c>, TryRecvError> {
    let this: *mut Cons = cons;
    let peek = || {
        // SAFETY: `this` is `cons`, exclusively borrowed for the whole call and used only
        // through these reborrows. `pop_attempt` peeks a second time only after the first
        // peek failed, and a failed peek keeps no borrow, so the two are never alive at once;
        // the raw reborrow only works around NLL problem case #3.
        match unsafe { &mut *this } {
            Cons::Spsc(c) => c.try_peek(1).map(RGrant::Spsc),
            Cons::Mpmc(c) => c.try_peek(1).map(RGrant::Mpmc),
        }
    };
    match pop_attempt(peek(), seg, peek) {
        Attempt::Ready(g) => Ok(g),
        Attempt::NotYet => Err(TryRecvError::Empty),
        Attempt::Gone => Err(TryRecvError::Disconnected),
        Attempt::Corrupted => Err(TryRecvError::Corrupted),
    }
}

/// A `try_peek`'s result as a try of a blocking peek ([`retry_loop`]): `None` when empty.
pub(crate) fn peeked<G>(r: Result<G, TryRecvError>) -> Option<Result<G, Failed>> {
    match r {
        Ok(g) => Some(Ok(g)),
        Err(TryRecvError::Empty) => None,
        Err(TryRecvError::Disconnected) => Some(Err(Failed::Gone)),
        Err(_) => Some(Err(Failed::Corrupted)),
    }
}

impl<T: Pod> Receiver<T> {
    pub(crate) fn new(seg: Arc<Segment>, spin: Duration) -> Result<Receiver<T>, OpenError> {
        Receiver::attach(seg, spin, check_record::<T>)
    }
}

impl<T> Receiver<T> {
    /// Registers a receiver on `seg` after `check` accepted its records.
    pub(crate) fn attach(
        seg: Arc<Segment>,
        spin: Duration,
        check: Check,
    ) -> Result<Receiver<T>, OpenError> {
        let (cons, slot) = attach(&seg, Role::Receiver, check, |seg, slot| match seg.kind {
            // SAFETY: `register` admitted us as the only live SPSC receiver (the live mask went
            // from empty to our bit), so this is the only SPSC consumer of the ring anywhere.
            RingKind::Spsc => unsafe { seg.ring().spsc_consumer() }.map(Cons::Spsc),
            RingKind::Mpmc => seg.ring().mpmc_consumer().map(|mut c| {
                // SAFETY: as for the sender: this endpoint's own entry, alive as long as `c`.
                unsafe { c.set_working(seg.working(slot)) };
                Cons::Mpmc(c)
            }),
        })?;
        Ok(Receiver {
            cons,
            seg,
            slot,
            spin: Spin::new(spin),
            armed: false,
            adopted: VecDeque::new(),
            adopted_bytes: VecDeque::new(),
            _t: PhantomData,
        })
    }
}

impl<T: Pod> Receiver<T> {
    #[inline]
    fn pop(cons: &mut Cons) -> Result<T, PopError> {
        both_c!(cons, c => c.try_pop_with(|slot| {
            // SAFETY: the slot holds a published record of `size_of::<T>()` bytes aligned for
            // T (checked in `check_record`); any bits are a valid T (Pod). Read by copy, so a
            // peer scribbling on it later cannot affect the value we return.
            unsafe { slot.cast::<T>().as_ptr().read() }
        }))
    }

    /// One time slice's housekeeping for a waiter outside `block` (an event loop): reap dead
    /// peers and adopt what dead sibling receivers held.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn housekeep(&mut self) {
        crate::wait::housekeep(&self.seg, Role::Receiver);
        adopt_orphans(&self.seg, &mut self.cons, &mut self.adopted);
    }

    /// Receives without waiting.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(rx.try_recv(), Err(shmchan::TryRecvError::Empty));
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(3));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.disarm();
        if let Some(v) = self.adopted.pop_front() {
            return Ok(v);
        }
        let seg = &*self.seg;
        let cons = &mut self.cons;
        let first = Self::pop(cons);
        match pop_attempt(first, seg, || Self::pop(cons)) {
            Attempt::Ready(v) => {
                self.wake();
                Ok(v)
            }
            Attempt::NotYet => Err(TryRecvError::Empty),
            Attempt::Gone => Err(TryRecvError::Disconnected),
            Attempt::Corrupted => Err(TryRecvError::Corrupted),
        }
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, Failed> {
        self.disarm();
        let Receiver {
            cons,
            seg,
            spin,
            slot,
            adopted,
            ..
        } = self;
        let v = block(seg, Role::Receiver, *slot, deadline, spin, |housekeeping| {
            if housekeeping {
                adopt_orphans(seg, cons, adopted);
            }
            if let Some(v) = adopted.pop_front() {
                return Attempt::Ready(v);
            }
            let first = Self::pop(cons);
            pop_attempt(first, seg, || Self::pop(cons))
        })?;
        self.wake();
        Ok(v)
    }

    /// Receives, waiting while the ring is empty (spin, then sleep on the doorbell).
    ///
    /// ```
    /// # use shmchan::RecvError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// drop(tx); // the only sender is gone: what it committed is still delivered
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn recv(&mut self) -> Result<T, RecvError> {
        match self.try_recv() {
            Ok(v) => Ok(v),
            Err(TryRecvError::Empty) => self.recv_until(None).map_err(|f| match f {
                Failed::Gone => RecvError::Disconnected,
                _ => RecvError::Corrupted,
            }),
            Err(TryRecvError::Disconnected) => Err(RecvError::Disconnected),
            Err(TryRecvError::Corrupted) => Err(RecvError::Corrupted),
        }
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(shmchan::RecvTimeoutError::Timeout));
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Ok(3));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(Instant::now() + timeout)
    }

    /// Receives, waiting until `deadline` at most.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(rx.recv_deadline(deadline), Err(RecvTimeoutError::Timeout));
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.recv_deadline(deadline), Ok(3)); // available: a past deadline is fine
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline)).map_err(|f| match f {
            Failed::Timeout => RecvTimeoutError::Timeout,
            Failed::Gone => RecvTimeoutError::Disconnected,
            Failed::Corrupted => RecvTimeoutError::Corrupted,
        })
    }

    /// Receives up to `buf.len()` records with one release for all of them, waiting only while
    /// none is there. Returns how many (0 only for an empty buffer).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3]).unwrap();
    /// let mut buf = [0; 2];
    /// assert_eq!(rx.recv_batch(&mut buf), Ok(2)); // at most buf.len()
    /// assert_eq!(buf, [1, 2]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_batch(&mut self, buf: &mut [T]) -> Result<usize, RecvError> {
        self.recv_batch_until(buf, None).map_err(|f| match f {
            Failed::Gone => RecvError::Disconnected,
            _ => RecvError::Corrupted,
        })
    }

    /// [`recv_batch`](Self::recv_batch) that waits at most until `deadline`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut buf = [0; 4];
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(rx.recv_batch_deadline(&mut buf, deadline), Err(RecvTimeoutError::Timeout));
    /// tx.send_batch(&[1, 2]).unwrap();
    /// assert_eq!(rx.recv_batch_deadline(&mut buf, deadline), Ok(2));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_batch_deadline(
        &mut self,
        buf: &mut [T],
        deadline: Instant,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_batch_until(buf, Some(deadline))
            .map_err(|f| match f {
                Failed::Timeout => RecvTimeoutError::Timeout,
                Failed::Gone => RecvTimeoutError::Disconnected,
                Failed::Corrupted => RecvTimeoutError::Corrupted,
            })
    }

    /// [`recv_batch`](Self::recv_batch) without waiting: `Ok(0)` when empty.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut buf = [0; 4];
    /// assert_eq!(rx.try_recv_batch(&mut buf), Ok(0)); // empty: no waiting
    /// tx.send_batch(&[7, 8]).unwrap();
    /// assert_eq!(rx.try_recv_batch(&mut buf), Ok(2));
    /// assert_eq!(buf[..2], [7, 8]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_recv_batch(&mut self, buf: &mut [T]) -> Result<usize, TryRecvError> {
        self.disarm();
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.adopted.is_empty() {
            return Ok(drain_into(&mut self.adopted, buf));
        }
        let seg = &*self.seg;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf);
        let cons = &mut self.cons;
        let first = both_c!(&mut *cons, c => c.try_pop_batch(bytes));
        match first {
            Ok(0) => {}
            Ok(n) => {
                self.wake();
                return Ok(n);
            }
            Err(PopError::Empty) => {}
            Err(_) => return Err(TryRecvError::Corrupted),
        }
        seg.after_empty();
        if seg.gone(Role::Sender) {
            match both_c!(&mut *cons, c => c.try_pop_batch(bytes)) {
                Ok(0) | Err(PopError::Empty) => Err(TryRecvError::Disconnected),
                Ok(n) => {
                    self.wake();
                    Ok(n)
                }
                Err(_) => Err(TryRecvError::Corrupted),
            }
        } else {
            Ok(0)
        }
    }

    fn recv_batch_until(
        &mut self,
        buf: &mut [T],
        deadline: Option<Instant>,
    ) -> Result<usize, Failed> {
        self.disarm();
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.adopted.is_empty() {
            return Ok(drain_into(&mut self.adopted, buf));
        }
        let Receiver {
            cons,
            seg,
            spin,
            slot,
            adopted,
            ..
        } = self;
        let n = block(seg, Role::Receiver, *slot, deadline, spin, |housekeeping| {
            if housekeeping {
                adopt_orphans(seg, cons, adopted);
                if !adopted.is_empty() {
                    return Attempt::Ready(drain_into(adopted, buf));
                }
            }
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut *buf);
            let mut pop = || match both_c!(&mut *cons, c => c.try_pop_batch(&mut *bytes)) {
                Ok(0) => Err(PopError::Empty),
                r => r,
            };
            let first = pop();
            pop_attempt(first, seg, pop)
        })?;
        self.wake();
        Ok(n)
    }

    /// Waits for a record and returns a guard that reads it in place (zero copy); the slot is
    /// released when the guard is dropped.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(8).unwrap();
    /// {
    ///     let r = rx.peek().unwrap(); // reads the slot in shared memory
    ///     assert_eq!(*r, 8);
    /// } // released here
    /// assert!(rx.is_empty());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn peek(&mut self) -> Result<RecvGuard<'_, T>, RecvError> {
        self.peek_until(None).map_err(|f| match f {
            Failed::Gone => RecvError::Disconnected,
            _ => RecvError::Corrupted,
        })
    }

    /// [`peek`](Self::peek) that waits at most `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let t = Duration::from_millis(5);
    /// assert!(matches!(rx.peek_timeout(t), Err(RecvTimeoutError::Timeout)));
    /// tx.send(4).unwrap();
    /// assert_eq!(*rx.peek_timeout(t).unwrap(), 4);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn peek_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<RecvGuard<'_, T>, RecvTimeoutError> {
        self.peek_until(Some(Instant::now() + timeout))
            .map_err(|f| match f {
                Failed::Timeout => RecvTimeoutError::Timeout,
                Failed::Gone => RecvTimeoutError::Disconnected,
                Failed::Corrupted => RecvTimeoutError::Corrupted,
            })
    }

    /// [`peek`](Self::peek) without waiting.
    ///
    /// ```
    /// # use shmchan::TryRecvError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(matches!(rx.try_peek(), Err(TryRecvError::Empty)));
    /// tx.send(4).unwrap();
    /// assert_eq!(*rx.try_peek().unwrap(), 4); // the guard drops: slot released
    /// assert!(rx.is_empty());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_peek(&mut self) -> Result<RecvGuard<'_, T>, TryRecvError> {
        self.disarm();
        let seg = &*self.seg;
        if !self.adopted.is_empty() {
            return Ok(RecvGuard::adopted(&mut self.adopted, seg));
        }
        peek_slot(&mut self.cons, seg).map(|g| RecvGuard::new(g, seg))
    }

    fn peek_until(&mut self, deadline: Option<Instant>) -> Result<RecvGuard<'_, T>, Failed> {
        retry_loop(self, deadline, |f| f, |rx| peeked(rx.try_peek()))
    }

    /// A blocking iterator: yields records until every sender is gone and the ring is drained
    /// (or the segment is corrupted).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3]).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.iter().sum::<u64>(), 6); // ends at the disconnection
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the records available now.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3]).unwrap();
    /// let got: Vec<u64> = rx.try_iter().collect(); // stops when empty; tx is still live
    /// assert_eq!(got, [1, 2, 3]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_iter(&mut self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T: Pod> Retried for Receiver<T> {
    type Guard<'g> = RecvGuard<'g, T>;

    fn wait(&mut self, retry: &mut Retry, deadline: Option<Instant>) -> Result<(), Failed> {
        self.wait_for_data(retry, deadline, |seg, cons, adopted, _| {
            adopt_orphans(seg, cons, adopted)
        })
    }
}

impl<T> Receiver<T> {
    /// Between two tries of a blocking peek (typed or bytes): [`Retry::before_retry`], then
    /// waits until a record is there (in the ring or adopted) or every sender is gone (the try
    /// then drains or reports the disconnection). At each housekeeping `adopt` adopts what dead
    /// sibling receivers held into the receiver's queue for its record kind (`adopted` for
    /// typed records, `adopted_bytes` for byte messages).
    pub(crate) fn wait_for_data(
        &mut self,
        retry: &mut Retry,
        deadline: Option<Instant>,
        mut adopt: impl FnMut(&Segment, &mut Cons, &mut VecDeque<T>, &mut VecDeque<Vec<u8>>),
    ) -> Result<(), Failed> {
        retry.before_retry(&self.seg, Role::Receiver, deadline)?;
        let Receiver {
            cons,
            seg,
            spin,
            slot,
            adopted,
            adopted_bytes,
            ..
        } = self;
        block(seg, Role::Receiver, *slot, deadline, spin, |housekeeping| {
            if housekeeping {
                adopt(seg, cons, adopted, adopted_bytes);
            }
            if !adopted.is_empty()
                || !adopted_bytes.is_empty()
                || !both_c!(&*cons, c => c.is_empty())
                || seg.gone(Role::Sender)
            {
                Attempt::Ready(())
            } else {
                Attempt::NotYet
            }
        })
    }

    /// Another receiver of the same MPMC channel (registered as its own endpoint). SPSC
    /// channels refuse with [`OpenError::EndpointTaken`].
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().mpmc().create()?;
    /// let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// let mut rx2 = rx.try_clone()?; // MPMC: any number of receivers
    /// tx.send(1).unwrap();
    /// assert_eq!(rx2.recv(), Ok(1));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_clone(&self) -> Result<Receiver<T>, OpenError> {
        Receiver::attach(self.seg.clone(), self.spin.window, checked)
    }

    /// Rings the doorbell if senders sleep waiting for room, once at least half of the ring
    /// is free ([`Segment::wake_senders`]).
    #[inline]
    pub(crate) fn wake(&self) {
        self.seg.wake_senders();
    }

    /// The descriptor a sleeping receiver waits on, for an event loop (`poll`, `epoll`,
    /// `mio`): it becomes readable when a sender rings. The [`Doorbell::PosixMq`] and
    /// [`Doorbell::EventFd`] doorbells have one; the others `None`. [`Pollable`](crate::Pollable)
    /// wraps a receiver as an [`AsFd`](std::os::fd::AsFd) type; the `tokio` feature builds
    /// `async fn recv` on it.
    ///
    /// The doorbell rings only for announced sleepers, so call [`Receiver::arm`] before each
    /// wait, and [`try_recv`](Receiver::try_recv) (or any receive) after it:
    ///
    /// ```
    /// # use shmchan::{Backing, Channel, Doorbell};
    /// # use std::os::fd::AsRawFd;
    /// # let chan = Channel::<u64>::builder().backing(Backing::anonymous())
    /// #     .doorbell(Doorbell::PosixMq).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let fd = rx.doorbell_fd().expect("a POSIX mq doorbell").as_raw_fd();
    /// if rx.arm() {
    ///     // ... register `fd` for readability with the event loop; a send (here, right away)
    ///     // makes it readable ...
    ///     tx.send(5).unwrap();
    /// }
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// # let _ = fd;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// [`Doorbell::PosixMq`]: crate::Doorbell::PosixMq
    /// [`Doorbell::EventFd`]: crate::Doorbell::EventFd
    pub fn doorbell_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.seg.doorbell_fd(Role::Receiver)
    }

    /// Announces this receiver as a sleeper so that the next send rings the doorbell (makes
    /// [`doorbell_fd`](Receiver::doorbell_fd) readable). Returns `false`, without arming, when
    /// there is no need to wait: records are available or every sender is gone. Any receive
    /// call disarms.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(rx.arm()); // empty, a sender is live: the next send rings
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1)); // receiving disarms
    /// tx.send(2).unwrap();
    /// assert!(!rx.arm()); // a record is waiting: no need to sleep
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn arm(&mut self) -> bool {
        if self.armed {
            return true;
        }
        let seg = &*self.seg;
        seg.announce(Role::Receiver, self.slot);
        let ready = !self.is_empty() || seg.gone(Role::Sender);
        if ready {
            seg.settle(Role::Receiver, self.slot);
            return false;
        }
        self.armed = true;
        true
    }

    /// Leaves the armed state: withdraws the announcement or consumes the token it earned.
    pub(crate) fn disarm(&mut self) {
        if std::mem::take(&mut self.armed) {
            self.seg.settle(Role::Receiver, self.slot);
        }
    }

    /// Records waiting for this receiver right now: the ring's (approximate while peers run)
    /// plus any adopted from a dead sibling receiver.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3]).unwrap();
    /// rx.recv().unwrap();
    /// assert_eq!(rx.len(), 2);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn len(&self) -> usize {
        both_c!(&self.cons, c => c.len()) + self.adopted.len() + self.adopted_bytes.len()
    }

    /// Whether nothing waits for this receiver right now.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(rx.is_empty());
    /// tx.send(1).unwrap();
    /// assert!(!rx.is_empty());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.adopted.is_empty()
            && self.adopted_bytes.is_empty()
            && both_c!(&self.cons, c => c.is_empty())
    }

    /// How many records the ring holds.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().capacity(100).create()?;
    /// assert_eq!(chan.receiver()?.capacity(), 128);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.seg.capacity as usize
    }

    /// Whether every sender is gone (some sender connected once, none is live now). Records
    /// may still be waiting in the ring.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// assert_eq!(rx.len(), 1); // still waiting to be received
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.seg.gone(Role::Sender)
    }

    /// The SysV shmid of the segment, or `None` for other backings.
    ///
    /// ```
    /// use shmchan::{Backing, Channel, Cleanup};
    /// let chan = Channel::<u64>::builder()
    ///     .backing(Backing::sysv_private())
    ///     .cleanup(Cleanup::LastDetach)
    ///     .create()?;
    /// assert_eq!(chan.receiver()?.shm_id(), chan.shm_id());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn shm_id(&self) -> Option<i32> {
        self.seg.shm_id()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Cons::Mpmc(c) = &mut self.cons {
            // Adopted records not yet delivered (they did not fit back in the ring when they
            // were adopted): one more try to hand them to the other receivers.
            if !self.adopted.is_empty() {
                hand_back(&self.seg, c, &mut self.adopted, |slot, v: &T| {
                    // SAFETY: as in `adopt_orphans`. `adopted` only ever holds records of a
                    // typed receiver (T: Pod, whose size and alignment the slot has; the byte
                    // copy is then the value's copy).
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            (v as *const T).cast::<u8>(),
                            slot.as_ptr(),
                            size_of::<T>(),
                        )
                    }
                });
            }
            if !self.adopted_bytes.is_empty() {
                crate::bytes::hand_back_frames(&self.seg, c, &mut self.adopted_bytes);
            }
        }
        if self.armed {
            self.seg.settle(Role::Receiver, self.slot);
        }
        self.seg.deregister(Role::Receiver, self.slot);
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("backing", &self.seg.backing)
            .field("kind", &self.seg.kind)
            .finish_non_exhaustive()
    }
}

/// A record read in place by [`Receiver::peek`]; its slot is released when the guard drops.
///
/// ```
/// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send(7).unwrap();
/// let r = rx.peek().unwrap(); // `RecvGuard<u64>` derefs to the record in shared memory
/// assert_eq!(*r, 7);
/// drop(r); // releases the slot
/// assert!(rx.is_empty());
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct RecvGuard<'a, T> {
    grant: Option<RGrant<'a>>,
    seg: &'a Segment,
    ptr: NonNull<T>,
    /// Set when the record is one adopted from a dead receiver (it lives in the receiver's
    /// queue, not in a slot): dropping the guard pops it.
    adopted: Option<&'a mut VecDeque<T>>,
}

impl<'a, T> RecvGuard<'a, T> {
    #[inline]
    fn new(grant: RGrant<'a>, seg: &'a Segment) -> RecvGuard<'a, T> {
        let ptr = match &grant {
            RGrant::Spsc(g) => g.slot(0),
            RGrant::Mpmc(g) => g.slot(0),
        }
        .cast::<T>();
        RecvGuard {
            grant: Some(grant),
            seg,
            ptr,
            adopted: None,
        }
    }

    /// A guard over the first adopted record (`adopted` is not empty).
    fn adopted(adopted: &'a mut VecDeque<T>, seg: &'a Segment) -> RecvGuard<'a, T> {
        let ptr = NonNull::from(adopted.front().expect("an adopted record"));
        RecvGuard {
            grant: None,
            seg,
            ptr,
            adopted: Some(adopted),
        }
    }
}

impl<T> Deref for RecvGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `ptr` is either a published slot of `size_of::<T>()` bytes aligned for T
        // (checked at endpoint creation), any bits valid (T: Pod), not reused by a producer
        // until this guard releases it — the guard borrows the receiver, so the mapping
        // outlives it — or the front of the adopted queue, which the guard borrows mutably and
        // nothing else touches until the guard drops.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for RecvGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(q) = self.adopted.take() {
            q.pop_front();
            return;
        }
        match self.grant.take() {
            Some(RGrant::Spsc(g)) => g.release(),
            Some(RGrant::Mpmc(g)) => g.release(),
            None => {}
        }
        // The low-water mark, as for a copying receive: waking a sleeping sender per released
        // slot would cost it a wake-up and a sleep per record.
        self.seg.wake_senders();
    }
}

/// A blocking iterator over received records ([`Receiver::iter`]).
///
/// ```
/// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send_batch(&[1, 2]).unwrap();
/// drop(tx);
/// let mut it = rx.iter(); // blocks for records until every sender is gone
/// assert_eq!((it.next(), it.next(), it.next()), (Some(1), Some(2), None));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct Iter<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T: Pod> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// A non-blocking iterator over the records available now ([`Receiver::try_iter`]).
///
/// ```
/// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send(1).unwrap();
/// let mut it = rx.try_iter();
/// assert_eq!((it.next(), it.next()), (Some(1), None)); // None: empty right now
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct TryIter<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T: Pod> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}
