//! The sending half of the byte face: [`Sender<Bytes>`](crate::Sender) and its zero-copy
//! guard.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use super::super::core::Rec;
use super::super::core::{SlotWrite, Wait};
use super::super::Sender;
use super::{send_failed, write_len, write_message, Bytes, SendBytesError};

impl Sender<Bytes> {
    /// The longest message this channel carries.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().max_message(16).create()?;
    /// assert_eq!(chan.sender()?.max_message(), 16);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_message(&self) -> usize {
        // The slots hold the message alone.
        self.core.record_size()
    }

    /// Refuses a message longer than the maximum. Inline, its refusal out of line: compiled
    /// out of line as a whole (as a caller's crate compiled it), it was a call that returned
    /// its `Result` through memory on every send and reservation.
    #[inline(always)]
    fn check_len(&mut self, len: usize) -> Result<(), SendBytesError> {
        let max = self.max_message();
        if len > max {
            return Err(self.too_long(len, max));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn too_long(&mut self, len: usize, max: usize) -> SendBytesError {
        // Every send and reservation disarms, this one too.
        self.core.disarm();
        SendBytesError::TooLong { len, max }
    }

    /// Sends a copy of `msg` without waiting: [`SendBytesError::Full`] when the ring is full.
    ///
    /// ```
    /// use shmchan::{Bytes, Channel, SendBytesError};
    /// let chan = Channel::<Bytes>::builder().capacity(1).create()?;
    /// let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.try_send(b"one").unwrap();
    /// assert_eq!(tx.try_send(b"two"), Err(SendBytesError::Full));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendBytesError> {
        self.send_wait(msg, Wait::No)
    }

    /// Sends a copy of `msg`, waiting while the ring is full. Fails when `msg` is longer than
    /// [`max_message`](Self::max_message), when every receiver is gone, or on corruption.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(b"").unwrap(); // empty messages are messages too
    /// tx.send(&[7u8; 100]).unwrap();
    /// assert_eq!(rx.recv().unwrap(), b"");
    /// assert_eq!(rx.recv().unwrap(), [7u8; 100]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendBytesError> {
        self.send_wait(msg, Wait::Forever)
    }

    /// Sends, waiting at most `timeout` for room ([`SendBytesError::Timeout`] then).
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmchan::{Bytes, Channel, SendBytesError};
    /// # let chan = Channel::<Bytes>::builder().capacity(1).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(b"a").unwrap(); // full now
    /// assert_eq!(tx.send_timeout(b"b", Duration::from_millis(5)), Err(SendBytesError::Timeout));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendBytesError> {
        self.send_wait(msg, Wait::timeout(timeout))
    }

    /// Sends, waiting until `deadline` at most for room.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().capacity(1).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(b"a").unwrap();
    /// assert!(tx.send_deadline(b"b", Instant::now() + Duration::from_millis(5)).is_err());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendBytesError> {
        self.send_wait(msg, Wait::Until(deadline))
    }

    /// Reserves a slot for a message of `len` bytes, waiting while the ring is full. The guard
    /// derefs to `&mut [u8]` of `len` bytes (holding whatever the slot had before), can be
    /// resized with [`ByteSendGuard::set_len`], and publishes on
    /// [`commit`](ByteSendGuard::commit); dropped uncommitted, it publishes nothing.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve(4).unwrap();
    /// slot.copy_from_slice(&42u32.to_le_bytes()); // encoded in place, no copy
    /// slot.commit();
    /// assert_eq!(rx.recv().unwrap(), 42u32.to_le_bytes());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<ByteSendGuard<'_>, SendBytesError> {
        self.reserve_wait(len, Wait::Forever)
    }

    /// [`reserve`](Self::reserve) without waiting: [`SendBytesError::Full`] when full.
    ///
    /// ```
    /// # use shmchan::SendBytesError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().capacity(1).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.try_reserve(3).unwrap().commit();
    /// assert!(matches!(tx.try_reserve(3), Err(SendBytesError::Full)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<ByteSendGuard<'_>, SendBytesError> {
        self.reserve_wait(len, Wait::No)
    }

    /// [`reserve`](Self::reserve) that waits at most `timeout` ([`SendBytesError::Timeout`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve_timeout(2, Duration::from_millis(5)).unwrap();
    /// slot.copy_from_slice(b"ok");
    /// slot.commit();
    /// assert_eq!(rx.recv().unwrap(), b"ok");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<ByteSendGuard<'_>, SendBytesError> {
        self.reserve_wait(len, Wait::timeout(timeout))
    }

    /// [`reserve`](Self::reserve) that waits until `deadline` at most
    /// ([`SendBytesError::Timeout`] then).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use shmchan::SendBytesError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().capacity(1).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// tx.reserve_deadline(2, deadline).unwrap().commit();
    /// assert!(matches!(tx.reserve_deadline(2, deadline), Err(SendBytesError::Timeout)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn reserve_deadline(
        &mut self,
        len: usize,
        deadline: Instant,
    ) -> Result<ByteSendGuard<'_>, SendBytesError> {
        self.reserve_wait(len, Wait::Until(deadline))
    }

    #[inline(always)]
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), SendBytesError> {
        self.check_len(msg.len())?;
        self.core
            .send::<(), _>(wait, |rec| {
                // SAFETY: a reserved slot of this byte channel with its lane entry (checked at
                // endpoint creation); `check_len` checked the message against the maximum.
                unsafe { write_message(rec, msg) }
            })
            .map_err(|f| send_failed(f, wait))
    }

    #[inline(always)]
    fn reserve_wait(
        &mut self,
        len: usize,
        wait: Wait,
    ) -> Result<ByteSendGuard<'_>, SendBytesError> {
        self.check_len(len)?;
        let max = self.max_message();
        match self.core.reserve::<()>(wait) {
            Ok(slot) => Ok(ByteSendGuard { slot, len, max }),
            Err(f) => Err(send_failed(f, wait)),
        }
    }
}

/// A slot reserved by [`Sender::<Bytes>::reserve`]: write the message in place, then
/// [`commit`](ByteSendGuard::commit).
///
/// ```
/// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().max_message(64).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// // Encode without knowing the length first: reserve the maximum, then set the length.
/// let mut slot = tx.reserve(tx.max_message()).unwrap();
/// let n = {
///     let mut w = &mut slot[..];
///     std::io::Write::write(&mut w, b"encoded").unwrap()
/// };
/// slot.set_len(n).unwrap();
/// slot.commit();
/// assert_eq!(rx.recv().unwrap(), b"encoded");
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[must_use = "dropping a ByteSendGuard without commit() publishes nothing"]
pub struct ByteSendGuard<'a> {
    slot: SlotWrite<'a>,
    len: usize,
    max: usize,
}

impl ByteSendGuard<'_> {
    /// Changes the message's length (up to the channel's maximum). Bytes beyond the old
    /// length hold whatever the slot had before.
    ///
    /// ```
    /// use shmchan::SendBytesError;
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().max_message(8).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve(8).unwrap();
    /// slot[..2].copy_from_slice(b"hi");
    /// assert_eq!(slot.set_len(9), Err(SendBytesError::TooLong { len: 9, max: 8 }));
    /// slot.set_len(2).unwrap();
    /// slot.commit();
    /// assert_eq!(rx.recv().unwrap(), b"hi");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn set_len(&mut self, len: usize) -> Result<(), SendBytesError> {
        if len > self.max {
            return Err(SendBytesError::TooLong { len, max: self.max });
        }
        self.len = len;
        Ok(())
    }

    /// Publishes the message (and wakes a sleeping receiver).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve(1).unwrap();
    /// slot[0] = 9;
    /// assert!(rx.is_empty()); // written, not yet published
    /// slot.commit();
    /// assert_eq!(rx.try_recv().unwrap(), [9]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline(always)]
    pub fn commit(self) {
        let rec = Rec {
            ptr: self.slot.ptr(),
            lane: self.slot.lane(),
        };
        // SAFETY: the reserved slot and its lane entry are ours until published; `len` is at
        // most the maximum (`set_len`, `reserve`).
        unsafe { write_len(rec, self.len) };
        self.slot.commit::<()>();
    }
}

impl Deref for ByteSendGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the reserved slot holds `max` bytes, `len <= max`, ours alone until commit;
        // the guard borrows the sender, so the mapping outlives it.
        unsafe { std::slice::from_raw_parts(self.slot.ptr().as_ptr(), self.len) }
    }
}

impl DerefMut for ByteSendGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.slot.ptr().as_ptr(), self.len) }
    }
}

impl fmt::Debug for ByteSendGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteSendGuard")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}
