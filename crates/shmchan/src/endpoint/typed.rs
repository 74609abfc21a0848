//! The typed face: [`Sender<T>`] and [`Receiver<T>`] for `T: Pod`, their zero-copy guards and
//! iterators. Each method converts records (a `T` is written into, or read out of, a slot)
//! and errors; the endpoint core does the rest.

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::core::{Format, SlotRead, SlotWrite, Wait};
use super::fail;
use super::{Receiver, Sender};
use crate::error::{
    OpenError, RecvError, RecvTimeoutError, ReserveError, SendBatchError, SendError,
    SendTimeoutError, TryRecvError, TrySendError,
};
use crate::segment::Segment;
use crate::wait::Failed;

/// The typed record format: whole `T`s, the slot's record size and alignment.
pub(crate) fn format<T: Pod>() -> Format {
    Format {
        check: check_record::<T>,
        image: whole_record,
    }
}

/// Checks that `T` is what the segment's ring carries.
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

/// A typed record is all of its slot's record bytes.
///
/// # Safety
///
/// None needed (nothing is read); `unsafe` only to fit [`Format::image`].
unsafe fn whole_record(_: NonNull<u8>, record_size: usize) -> Option<usize> {
    Some(record_size)
}

/// What the core calls to put `v` into a reserved slot.
#[inline(always)]
fn write<T: Pod>(v: T) -> impl FnMut(NonNull<u8>) {
    move |slot| {
        // SAFETY: the core hands `write` a reserved slot of `record_size == size_of::<T>()`
        // bytes aligned to `record_align == align_of::<T>()` (checked in `check_record`
        // against the ring's validated config), ours to write until the ring publishes it.
        unsafe { slot.cast::<T>().as_ptr().write(v) }
    }
}

/// What the core calls to copy a record out: a published slot or an adopted record's image
/// (`size_of::<T>()` bytes either way).
#[inline(always)]
fn read<T: Pod>(record: NonNull<u8>) -> Option<T> {
    // SAFETY: the core's contract for `read`: `size_of::<T>()` readable bytes (the record
    // size `check_record` compared) aligned for T (a slot, or a 128-byte-aligned image), any
    // bits a valid T (Pod). Read by copy, so a peer scribbling on the slot later cannot affect
    // the value returned.
    Some(unsafe { record.cast::<T>().as_ptr().read() })
}

impl<T: Pod> Sender<T> {
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
        self.core
            .send(Wait::No, write(v))
            .map_err(|f| fail::try_send(f, v))
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
        self.core
            .send(Wait::Forever, write(v))
            .map_err(|f| fail::send(f, v))
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
        self.core
            .send(Wait::timeout(timeout), write(v))
            .map_err(|f| fail::send_timeout(f, v))
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
        self.core
            .send(Wait::Until(deadline), write(v))
            .map_err(|f| fail::send_timeout(f, v))
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
    pub fn send_batch(&mut self, records: &[T]) -> Result<usize, SendBatchError> {
        self.send_batch_wait(records, Wait::Forever)
    }

    /// [`send_batch`](Self::send_batch) that waits at most `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let t = Duration::from_millis(5);
    /// assert_eq!(tx.send_batch_timeout(&[1, 2, 3, 4, 5], t), Ok(4)); // as many as fit
    /// let e = tx.send_batch_timeout(&[6], t);
    /// assert_eq!(e, Err(shmchan::SendBatchError::Timeout)); // still full after 5 ms
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_batch_timeout(
        &mut self,
        records: &[T],
        timeout: Duration,
    ) -> Result<usize, SendBatchError> {
        self.send_batch_wait(records, Wait::timeout(timeout))
    }

    fn send_batch_wait(&mut self, records: &[T], wait: Wait) -> Result<usize, SendBatchError> {
        self.core
            .send_batch(wait, bytemuck::cast_slice(records))
            .map_err(fail::send_batch)
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
    /// assert_eq!(e, Err(shmchan::SendBatchError::Timeout)); // still full at the deadline
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_batch_deadline(
        &mut self,
        records: &[T],
        deadline: Instant,
    ) -> Result<usize, SendBatchError> {
        self.send_batch_wait(records, Wait::Until(deadline))
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
    pub fn try_send_batch(&mut self, records: &[T]) -> Result<usize, SendBatchError> {
        match self
            .core
            .send_batch(Wait::No, bytemuck::cast_slice(records))
        {
            Err(Failed::Timeout) => Ok(0),
            r => r.map_err(fail::send_batch),
        }
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
        self.reserve_wait(Wait::Forever)
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
        self.reserve_wait(Wait::No)
    }

    /// [`reserve`](Self::reserve) that waits at most `timeout` ([`ReserveError::Timeout`]
    /// then).
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
        self.reserve_wait(Wait::timeout(timeout))
    }

    /// [`reserve`](Self::reserve) that waits until `deadline` at most
    /// ([`ReserveError::Timeout`] then).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use shmchan::ReserveError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// tx.reserve_deadline(deadline).unwrap().commit();
    /// assert!(matches!(tx.reserve_deadline(deadline), Err(ReserveError::Timeout))); // full
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn reserve_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SendGuard<'_, T>, ReserveError> {
        self.reserve_wait(Wait::Until(deadline))
    }

    fn reserve_wait(&mut self, wait: Wait) -> Result<SendGuard<'_, T>, ReserveError> {
        self.core
            .reserve(wait)
            .map(SendGuard::new)
            .map_err(|f| fail::reserve(f, wait))
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
    slot: SlotWrite<'a>,
    _t: PhantomData<&'a mut T>,
}

impl<'a, T> SendGuard<'a, T> {
    #[inline]
    fn new(slot: SlotWrite<'a>) -> SendGuard<'a, T> {
        SendGuard {
            slot,
            _t: PhantomData,
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
    pub fn commit(self) {
        self.slot.commit();
    }
}

impl<T> Deref for SendGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the reserved slot holds `size_of::<T>()` bytes aligned for T (the typed
        // format's check at endpoint creation), initialised (mapped memory), any bits valid
        // (T: Pod), and ours alone until commit; the guard borrows the sender, so it cannot
        // outlive the mapping.
        unsafe { self.slot.ptr().cast::<T>().as_ref() }
    }
}

impl<T> DerefMut for SendGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.slot.ptr().cast::<T>().as_mut() }
    }
}

impl<T: Pod> Receiver<T> {
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
        self.core.recv(Wait::No, read::<T>).map_err(fail::try_recv)
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
        self.core.recv(Wait::Forever, read::<T>).map_err(fail::recv)
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
        self.core
            .recv(Wait::timeout(timeout), read::<T>)
            .map_err(fail::recv_timeout)
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
        self.core
            .recv(Wait::Until(deadline), read::<T>)
            .map_err(fail::recv_timeout)
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
        self.core
            .recv_batch(Wait::Forever, bytemuck::cast_slice_mut(buf))
            .map_err(fail::recv)
    }

    /// [`recv_batch`](Self::recv_batch) that waits at most `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut buf = [0; 4];
    /// let t = Duration::from_millis(5);
    /// assert_eq!(rx.recv_batch_timeout(&mut buf, t), Err(RecvTimeoutError::Timeout));
    /// tx.send_batch(&[1, 2]).unwrap();
    /// assert_eq!(rx.recv_batch_timeout(&mut buf, t), Ok(2));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_batch_timeout(
        &mut self,
        buf: &mut [T],
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        self.core
            .recv_batch(Wait::timeout(timeout), bytemuck::cast_slice_mut(buf))
            .map_err(fail::recv_timeout)
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
        self.core
            .recv_batch(Wait::Until(deadline), bytemuck::cast_slice_mut(buf))
            .map_err(fail::recv_timeout)
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
        match self
            .core
            .recv_batch(Wait::No, bytemuck::cast_slice_mut(buf))
        {
            Err(Failed::Timeout) => Ok(0),
            r => r.map_err(fail::try_recv),
        }
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
        self.core
            .peek(Wait::Forever)
            .map(RecvGuard::new)
            .map_err(fail::recv)
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
        self.core
            .peek(Wait::timeout(timeout))
            .map(RecvGuard::new)
            .map_err(fail::recv_timeout)
    }

    /// [`peek`](Self::peek) that waits until `deadline` at most.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert!(matches!(rx.peek_deadline(deadline), Err(RecvTimeoutError::Timeout)));
    /// tx.send(4).unwrap();
    /// assert_eq!(*rx.peek_deadline(deadline).unwrap(), 4); // there: a past deadline is fine
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn peek_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<RecvGuard<'_, T>, RecvTimeoutError> {
        self.core
            .peek(Wait::Until(deadline))
            .map(RecvGuard::new)
            .map_err(fail::recv_timeout)
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
        self.core
            .try_peek()
            .map(RecvGuard::new)
            .map_err(fail::try_recv)
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
    slot: SlotRead<'a>,
    _t: PhantomData<&'a T>,
}

impl<'a, T> RecvGuard<'a, T> {
    #[inline]
    fn new(slot: SlotRead<'a>) -> RecvGuard<'a, T> {
        RecvGuard {
            slot,
            _t: PhantomData,
        }
    }
}

impl<T> Deref for RecvGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `size_of::<T>()` bytes aligned for T (the typed format's check at endpoint
        // creation; an adopted record's image is 128-byte aligned and a whole record), any
        // bits valid (T: Pod): a published slot that no producer reuses until the `SlotRead`
        // drops with this guard — which borrows the receiver, so the mapping outlives it — or
        // an image the guard owns.
        unsafe { self.slot.ptr().cast::<T>().as_ref() }
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

/// `for r in &mut rx`: the blocking iterator ([`Receiver::iter`]).
///
/// ```
/// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send_batch(&[1, 2, 3]).unwrap();
/// drop(tx);
/// let mut sum = 0;
/// for r in &mut rx {
///     sum += r;
/// }
/// assert_eq!(sum, 6);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
impl<'a, T: Pod> IntoIterator for &'a mut Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
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
