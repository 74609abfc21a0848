//! The receiving half of the byte face: [`Receiver<Bytes>`](crate::Receiver) and its
//! zero-copy guard.

use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use super::super::core::{Rec, SlotRead, Wait};
use super::super::{fail, Receiver};
use super::{copy_message, copy_words, message_bytes, message_len, Bytes};
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::wait::Failed;

impl Receiver<Bytes> {
    /// The longest message this channel carries.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().max_message(16).create()?;
    /// assert_eq!(chan.receiver()?.max_message(), 16);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_message(&self) -> usize {
        // The slots hold the message alone.
        self.core.record_size()
    }

    /// Receives one message into `buf` (cleared first; its allocation is reused) without
    /// waiting; returns the message's length.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut buf = Vec::with_capacity(rx.max_message());
    /// assert!(rx.try_recv_into(&mut buf).is_err()); // empty
    /// tx.send(b"abc").unwrap();
    /// assert_eq!(rx.try_recv_into(&mut buf), Ok(3));
    /// assert_eq!(buf, b"abc");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, TryRecvError> {
        self.recv_into_wait(buf, Wait::No).map_err(fail::try_recv)
    }

    /// Receives one message into `buf` (cleared first), waiting while the ring is empty;
    /// returns its length. The allocation-free form of [`recv`](Self::recv).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut buf = Vec::new();
    /// tx.send(b"one").unwrap();
    /// tx.send(b"three").unwrap();
    /// assert_eq!(rx.recv_into(&mut buf), Ok(3));
    /// assert_eq!(rx.recv_into(&mut buf), Ok(5));
    /// assert_eq!(buf, b"three");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_into_wait(buf, Wait::Forever).map_err(fail::recv)
    }

    /// [`recv_into`](Self::recv_into) that waits at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut buf = Vec::new();
    /// let t = Duration::from_millis(5);
    /// assert_eq!(rx.recv_into_timeout(&mut buf, t), Err(RecvTimeoutError::Timeout));
    /// tx.send(b"late").unwrap();
    /// assert_eq!(rx.recv_into_timeout(&mut buf, t), Ok(4));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_into_timeout(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_into_wait(buf, Wait::timeout(timeout))
            .map_err(fail::recv_timeout)
    }

    /// [`recv_into`](Self::recv_into) that waits at most until `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (_tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut buf = Vec::new();
    /// let r = rx.recv_into_deadline(&mut buf, Instant::now() + Duration::from_millis(5));
    /// assert_eq!(r, Err(RecvTimeoutError::Timeout));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_into_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_into_wait(buf, Wait::Until(deadline))
            .map_err(fail::recv_timeout)
    }

    /// Receives one message without waiting, as a new `Vec`.
    ///
    /// ```
    /// # use shmchan::TryRecvError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(b"m").unwrap();
    /// assert_eq!(rx.try_recv().unwrap(), b"m");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<Vec<u8>, TryRecvError> {
        let mut v = Vec::new();
        self.try_recv_into(&mut v).map(|_| v)
    }

    /// Receives one message, waiting while the ring is empty. After every sender is gone it
    /// drains what was committed, then reports `Disconnected`.
    ///
    /// ```
    /// # use shmchan::RecvError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(b"last words").unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv().unwrap(), b"last words");
    /// assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_into(&mut v).map(|_| v)
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (_tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_deadline(Instant::now() + timeout)
    }

    /// Receives, waiting until `deadline` at most.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(b"x").unwrap();
    /// assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_secs(1)).unwrap(), b"x");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Vec<u8>, RecvTimeoutError> {
        let mut v = Vec::new();
        self.recv_into_deadline(&mut v, deadline).map(|_| v)
    }

    /// Looks at the next message in place without waiting; the guard derefs to `&[u8]` and
    /// releases the slot when dropped.
    ///
    /// ```
    /// # use shmchan::TryRecvError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(rx.try_peek().err(), Some(TryRecvError::Empty));
    /// tx.send(b"zero copy").unwrap();
    /// assert_eq!(&*rx.try_peek().unwrap(), b"zero copy");
    /// assert!(rx.is_empty()); // released when the guard dropped
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// As with typed receivers (see [`Receiver::try_peek`](crate::Receiver::try_peek) for
    /// why), a fallback to a waiting peek in the same `match` does not compile:
    ///
    /// ```compile_fail,E0499
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// # tx.send(b"m").unwrap();
    /// let n = match rx.try_peek() {
    ///     Ok(msg) => msg.len(),
    ///     Err(_) => rx.peek_timeout(Duration::from_millis(5)).unwrap().len(),
    /// };
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// Bind the result and drop it in the `Err` arm:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// # tx.send(b"m").unwrap();
    /// let first = rx.try_peek();
    /// let msg = match first {
    ///     Ok(msg) => msg,
    ///     Err(_) => {
    ///         drop(first); // an `Err`: no guard, and the borrow ends here
    ///         rx.peek_timeout(Duration::from_millis(5)).unwrap()
    ///     }
    /// };
    /// assert_eq!(&*msg, b"m");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// or, in the 2024 edition, `if let … else`:
    ///
    /// ```edition2024
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// # tx.send(b"m").unwrap();
    /// let n = if let Ok(msg) = rx.try_peek() {
    ///     msg.len()
    /// } else {
    ///     rx.peek_timeout(Duration::from_millis(5)).unwrap().len()
    /// };
    /// assert_eq!(n, 1);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_peek(&mut self) -> Result<ByteRecvGuard<'_>, TryRecvError> {
        self.peek_wait(Wait::No).map_err(fail::try_recv)
    }

    /// Looks at the next message in place, waiting while the ring is empty.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(b"hdr:body").unwrap();
    /// let msg = rx.peek().unwrap();
    /// assert!(msg.starts_with(b"hdr:")); // parsed in shared memory
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn peek(&mut self) -> Result<ByteRecvGuard<'_>, RecvError> {
        self.peek_wait(Wait::Forever).map_err(fail::recv)
    }

    /// [`peek`](Self::peek) that waits at most `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (_tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let r = rx.peek_timeout(Duration::from_millis(5));
    /// assert_eq!(r.err(), Some(RecvTimeoutError::Timeout));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn peek_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<ByteRecvGuard<'_>, RecvTimeoutError> {
        self.peek_wait(Wait::timeout(timeout))
            .map_err(fail::recv_timeout)
    }

    /// [`peek`](Self::peek) that waits until `deadline` at most.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(rx.peek_deadline(deadline).err(), Some(RecvTimeoutError::Timeout));
    /// tx.send(b"now").unwrap();
    /// assert_eq!(&*rx.peek_deadline(deadline).unwrap(), b"now");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn peek_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<ByteRecvGuard<'_>, RecvTimeoutError> {
        self.peek_wait(Wait::Until(deadline))
            .map_err(fail::recv_timeout)
    }

    /// Receives up to `max` messages, each read in place by `f` (no allocation, no copy but
    /// what `f` makes), waiting while the ring is empty; then takes what is there right now,
    /// up to `max`. Returns how many `f` got (0 only for `max == 0`).
    ///
    /// `f` runs while the message's slot is held; each slot is released when `f` returns. A
    /// malformed message (a peer wrote a length beyond the slot) ends the batch with
    /// `Corrupted`: the messages before it went to `f`, the malformed one is dropped, and the
    /// next receive goes on after it. Like [`recv`](Self::recv), it reports `Disconnected` only
    /// once every sender is gone and everything they committed was received.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// for m in [&b"a"[..], b"bb", b"ccc"] {
    ///     tx.send(m).unwrap();
    /// }
    /// let mut total = 0;
    /// assert_eq!(rx.recv_batch_with(8, |msg| total += msg.len()), Ok(3));
    /// assert_eq!(total, 6);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_batch_with(
        &mut self,
        max: usize,
        mut f: impl FnMut(&[u8]),
    ) -> Result<usize, RecvError> {
        self.recv_batch_wait(max, Wait::Forever, &mut f)
            .map_err(fail::recv)
    }

    /// [`recv_batch_with`](Self::recv_batch_with) without waiting: `Ok(0)` when the ring is
    /// empty.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut got = Vec::new();
    /// assert_eq!(rx.try_recv_batch_with(8, |m| got.push(m.to_vec())), Ok(0)); // empty
    /// tx.send(b"x").unwrap();
    /// tx.send(b"y").unwrap();
    /// assert_eq!(rx.try_recv_batch_with(1, |m| got.push(m.to_vec())), Ok(1)); // at most 1
    /// assert_eq!(got, [b"x"]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_recv_batch_with(
        &mut self,
        max: usize,
        mut f: impl FnMut(&[u8]),
    ) -> Result<usize, TryRecvError> {
        match self.recv_batch_wait(max, Wait::No, &mut f) {
            Err(Failed::Timeout) => Ok(0),
            r => r.map_err(fail::try_recv),
        }
    }

    /// [`recv_batch_with`](Self::recv_batch_with) that waits at most `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let t = Duration::from_millis(5);
    /// assert_eq!(rx.recv_batch_with_timeout(8, |_| {}, t), Err(RecvTimeoutError::Timeout));
    /// tx.send(b"late").unwrap();
    /// assert_eq!(rx.recv_batch_with_timeout(8, |m| assert_eq!(m, b"late"), t), Ok(1));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_batch_with_timeout(
        &mut self,
        max: usize,
        mut f: impl FnMut(&[u8]),
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_batch_wait(max, Wait::timeout(timeout), &mut f)
            .map_err(fail::recv_timeout)
    }

    /// [`recv_batch_with`](Self::recv_batch_with) that waits at most until `deadline`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(rx.recv_batch_with_deadline(8, |_| {}, deadline), Err(RecvTimeoutError::Timeout));
    /// tx.send(b"now").unwrap();
    /// assert_eq!(rx.recv_batch_with_deadline(8, |_| {}, deadline), Ok(1)); // there: a past deadline is fine
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_batch_with_deadline(
        &mut self,
        max: usize,
        mut f: impl FnMut(&[u8]),
        deadline: Instant,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_batch_wait(max, Wait::Until(deadline), &mut f)
            .map_err(fail::recv_timeout)
    }

    /// The batch receives: the first message as `wait` allows, then what is there now.
    fn recv_batch_wait(
        &mut self,
        max: usize,
        wait: Wait,
        f: &mut impl FnMut(&[u8]),
    ) -> Result<usize, Failed> {
        if max == 0 {
            return Ok(0);
        }
        let lim = self.max_message();
        let mut read = |rec: Rec| {
            // SAFETY: the core's contract for `read`: a published slot of this byte channel
            // (checked at endpoint creation) or an adopted message's image, with its lane
            // entry, valid for the call; the length is checked against the maximum before the
            // bytes are touched.
            let len = unsafe { message_len(rec, lim) }?;
            // SAFETY: `len` was checked just above; the slot is held until `read` returns.
            f(unsafe { message_bytes(rec, len) });
            Some(())
        };
        self.core.recv::<(), _>(wait, &mut read)?;
        let mut n = 1;
        while n < max {
            match self.core.recv::<(), _>(Wait::No, &mut read) {
                Ok(()) => n += 1,
                // Empty now, or the senders are gone: the next receive reports it.
                Err(Failed::Timeout | Failed::Gone) => break,
                Err(e @ (Failed::Corrupted | Failed::Forked)) => return Err(e),
            }
        }
        Ok(n)
    }

    #[inline(always)]
    fn recv_into_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<usize, Failed> {
        buf.clear();
        let max = self.max_message();
        self.core.recv::<(), _>(
            wait,
            #[inline(always)]
            |rec: Rec| {
                // SAFETY: the core's contract for `read`: a published slot of this byte channel
                // (checked at endpoint creation) or an adopted message's image, with its lane
                // entry, valid for the call; the length is checked against the maximum before
                // the bytes are touched.
                let len = unsafe { message_len(rec, max) }?;
                let src = rec.ptr.as_ptr();
                // Whole words when the buffer has room for them (see `copy_words`); the
                // buffer's allocation is never grown for that. `max` is a multiple of 8 (the
                // slot's room), so a buffer of `max` bytes (the usual one: `max_message()`)
                // has room for any message's words, asked first.
                if buf.capacity() >= max || buf.capacity() >= len.next_multiple_of(8) {
                    // SAFETY: `len <= max` (checked just above) and the slot holds `max`
                    // bytes, a multiple of 8 (`check_messages`), an adopted image as many (its
                    // contract); `buf` (empty) has room for `len` rounded up to 8 (so `max`
                    // bytes suffice); a slot and a `Vec`'s buffer cannot overlap. The copy
                    // initializes the `len` bytes `set_len` counts.
                    unsafe {
                        copy_words(src, buf.as_mut_ptr(), len);
                        buf.set_len(len);
                    }
                } else {
                    buf.reserve(len);
                    // SAFETY: as above for `len` bytes, which `buf` now has room for.
                    unsafe {
                        copy_message(src, buf.as_mut_ptr(), len);
                        buf.set_len(len);
                    }
                }
                Some(len)
            },
        )
    }

    #[inline(always)]
    fn peek_wait(&mut self, wait: Wait) -> Result<ByteRecvGuard<'_>, Failed> {
        let max = self.max_message();
        let slot = self.core.peek::<()>(wait)?;
        let rec = Rec {
            ptr: slot.ptr(),
            lane: slot.lane(),
        };
        // SAFETY: a published slot of this byte channel or an adopted message's image, with
        // its lane entry, held by `slot`.
        let Some(len) = (unsafe { message_len(rec, max) }) else {
            slot.discard();
            return Err(Failed::Corrupted);
        };
        // SAFETY: the length was checked against the slot size.
        let bytes = NonNull::from(unsafe { message_bytes(rec, len) });
        Ok(ByteRecvGuard { _slot: slot, bytes })
    }
}

/// A message read in place by [`Receiver::<Bytes>::peek`]; derefs to `&[u8]` and releases the
/// slot when dropped.
///
/// ```
/// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send(b"abc").unwrap();
/// let msg = rx.peek().unwrap();
/// assert_eq!(msg.len(), 3);
/// drop(msg); // the slot is free again
/// assert!(rx.is_empty());
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct ByteRecvGuard<'a> {
    /// Holds the slot (released on drop) or the adopted message's image the bytes lie in.
    _slot: SlotRead<'a>,
    bytes: NonNull<[u8]>,
}

impl Drop for ByteRecvGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self._slot.release();
    }
}

impl Deref for ByteRecvGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the bytes lie inside a published slot (length checked against the slot
        // size) that no producer reuses until the `SlotRead` is dropped with this guard —
        // which borrows the receiver, so the mapping outlives it — or inside the adopted
        // message's image the guard owns.
        unsafe { self.bytes.as_ref() }
    }
}

impl fmt::Debug for ByteRecvGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteRecvGuard")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
