//! The receiving half of the typed face: [`Receiver<T>`](crate::Receiver) and its zero-copy
//! guard.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::super::core::{Rec, SlotRead, Wait};
use super::super::{fail, Receiver, SHORT_WAY_MAX};
use super::iter::{Iter, IterResults, TryIter};
use super::read;
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::wait::Failed;

impl<T: Pod> Receiver<T> {
    /// The copying receives' take: the record copied once, from its slot into the value
    /// returned. Up to [`SHORT_WAY_MAX`] bytes through a `MaybeUninit` that the core's read
    /// fills in place: a record returned through the read's `Option` and the core's `Result`
    /// was moved twice more on the way, which made a 64-byte `recv` across processes half as
    /// fast as `recv_into` (33 against 65 M/s on a 2-vCPU Intel Xeon VM). The `Result` the
    /// caller gets is built here, with its own error (`fail`): a `Result<T, Failed>` mapped
    /// afterwards was one more move of the record. Larger records keep the read by value,
    /// which the core takes out of line (see `SHORT_WAY_MAX`).
    #[inline(always)]
    fn take<E>(&mut self, wait: Wait, fail: fn(Failed) -> E) -> Result<T, E> {
        if size_of::<T>() > SHORT_WAY_MAX {
            return self.core.recv::<T, _>(wait, read::<T>).map_err(fail);
        }
        let mut out = MaybeUninit::<T>::uninit();
        let dst = out.as_mut_ptr();
        match self.core.recv::<T, _>(wait, |Rec { ptr: record, .. }| {
            // SAFETY: as in `read`: `size_of::<T>()` readable bytes aligned for T, any bits a
            // valid T; `dst` is this call's own `out`, which cannot overlap a slot or an image.
            unsafe { std::ptr::copy_nonoverlapping(record.cast::<T>().as_ptr(), dst, 1) };
            Some(())
        }) {
            // SAFETY: the read above ran (the core returned Ok only after it) and wrote a whole T.
            Ok(()) => Ok(unsafe { out.assume_init() }),
            Err(f) => Err(fail(f)),
        }
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
        self.take(Wait::No, fail::try_recv)
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
        self.take(Wait::Forever, fail::recv)
    }

    /// Receives into `out`, waiting while the ring is empty: [`recv`](Self::recv) for large
    /// records. The record is copied once, from its slot into `out`; `recv` returns the
    /// record by value, which for a record of kilobytes means copies through the stack on
    /// the way. (To read it in its slot, use [`peek`](Self::peek).) On an error `out` is
    /// unchanged.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<[u64; 8192]>::builder().capacity(2).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut frame = vec![[0u64; 8192]; 1]; // 64 KiB, on the heap
    /// frame[0][1] = 5;
    /// tx.send_ref(&frame[0]).unwrap();
    /// drop(tx);
    /// rx.recv_into(&mut frame[0]).unwrap();
    /// assert_eq!(frame[0][1], 5);
    /// assert_eq!(rx.recv_into(&mut frame[0]), Err(shmchan::RecvError::Disconnected));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_into(&mut self, out: &mut T) -> Result<(), RecvError> {
        self.core
            .recv::<T, _>(Wait::Forever, |Rec { ptr: record, .. }| {
                // SAFETY: as in `read`: `size_of::<T>()` readable bytes aligned for T, any bits
                // a valid T; `out` is caller memory, which cannot overlap a slot or an image.
                unsafe { std::ptr::copy_nonoverlapping(record.cast::<T>().as_ptr(), out, 1) };
                Some(())
            })
            .map_err(fail::recv)
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
        self.take(Wait::timeout(timeout), fail::recv_timeout)
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
        self.take(Wait::Until(deadline), fail::recv_timeout)
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
    #[inline]
    pub fn peek(&mut self) -> Result<RecvGuard<'_, T>, RecvError> {
        self.core
            .peek::<T>(Wait::Forever)
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
            .peek::<T>(Wait::timeout(timeout))
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
            .peek::<T>(Wait::Until(deadline))
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
    ///
    /// # Falling back to a waiting peek
    ///
    /// A guard releases its slot when it is dropped, so it borrows the receiver until then.
    /// Written as one `match`, a `try_peek` that falls back to a waiting peek does not
    /// compile (E0499, "cannot borrow `rx` as mutable more than once at a time"):
    ///
    /// ```compile_fail,E0499
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// # tx.send(1).unwrap();
    /// let v = match rx.try_peek() {
    ///     Ok(r) => *r,
    ///     Err(_) => *rx.peek_timeout(Duration::from_millis(5)).unwrap(),
    /// };
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// The `Result` that `try_peek` returns is a temporary that lives to the end of the
    /// `match`, and the borrow checker counts its drop there as a use of the borrow in every
    /// arm — also in `Err`, which holds no guard: it does not follow which variant a value
    /// holds when it drops it. No sound guard avoids this on stable Rust: a guard whose drop
    /// did not count as a use of the receiver would let the receiver receive, move or drop
    /// while the guard still holds a slot (the guard would then release a slot of an
    /// endpoint that moved on, or that is gone). Bind the result and drop it in the `Err`
    /// arm, which ends the borrow:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// # tx.send(1).unwrap();
    /// let first = rx.try_peek();
    /// let r = match first {
    ///     Ok(r) => r,
    ///     Err(_) => {
    ///         drop(first); // an `Err`: no guard, and the borrow ends here
    ///         // ... whatever is worth doing before waiting ...
    ///         rx.peek_timeout(Duration::from_millis(5)).unwrap()
    ///     }
    /// };
    /// assert_eq!(*r, 1);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// In the 2024 edition `if let … else` drops its scrutinee before the `else` block, so
    /// this works as written:
    ///
    /// ```edition2024
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// # tx.send(1).unwrap();
    /// let v = if let Ok(r) = rx.try_peek() {
    ///     *r
    /// } else {
    ///     *rx.peek_timeout(Duration::from_millis(5)).unwrap()
    /// };
    /// assert_eq!(v, 1);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// (When nothing needs doing in between, [`peek_timeout`](Self::peek_timeout) alone is
    /// the same thing: it tries at once, and waits only when the ring is empty.)
    #[inline]
    pub fn try_peek(&mut self) -> Result<RecvGuard<'_, T>, TryRecvError> {
        self.core
            .try_peek::<T>()
            .map(RecvGuard::new)
            .map_err(fail::try_recv)
    }

    /// A blocking iterator: yields records until every sender is gone and the ring is drained,
    /// or until a receive finds the segment corrupted. It never panics (a peer that scribbles
    /// on the segment must not crash this process) and never ends silently:
    /// [`Iter::error`] tells a corruption from the normal end. [`iter_results`](Self::iter_results)
    /// yields the error instead.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3]).unwrap();
    /// drop(tx);
    /// let mut it = rx.iter();
    /// assert_eq!(it.by_ref().sum::<u64>(), 6); // ends at the disconnection...
    /// assert_eq!(it.error(), None); // ...not on corruption
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter::new(self)
    }

    /// A blocking iterator of results: `Ok` records until every sender is gone and the ring is
    /// drained (then it ends, as [`iter`](Self::iter) does), or `Err` with the reason a
    /// receive failed otherwise ([`RecvError::Corrupted`]), as its last item.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3]).unwrap();
    /// drop(tx);
    /// let mut sum = 0;
    /// for r in rx.iter_results() {
    ///     sum += r?; // a corrupted segment ends the loop with its error
    /// }
    /// assert_eq!(sum, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter_results(&mut self) -> IterResults<'_, T> {
        IterResults::new(self)
    }

    /// A non-blocking iterator over the records available now; [`TryIter::error`] says
    /// whether it ended on corruption rather than on an empty ring or the disconnection.
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
        TryIter::new(self)
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

impl<T> Drop for RecvGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.slot.release();
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
