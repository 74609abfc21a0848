//! Byte channels: variable-length messages up to a maximum length chosen at creation.
//!
//! A byte channel is a `Channel<Bytes>`: the same segment, ring, backings, doorbells,
//! disconnection and crash handling as a typed channel, but each slot carries a message of
//! 0 to [`max_message`](crate::Channel::max_message) bytes, prefixed by its length. It is what a crate
//! that embeds shmchan as its transport (an RPC layer, a log pipeline) sends: its own encoding,
//! written in place.
//!
//! ```
//! use shmchan::{Backing, Bytes, Channel};
//!
//! let chan = Channel::<Bytes>::builder()
//!     .max_message(256)
//!     .backing(Backing::anonymous())
//!     .create()?;
//! let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
//!
//! tx.send(b"hello").unwrap(); // a copy in...
//! let mut slot = tx.reserve(5).unwrap(); // ...or zero copy: write in place
//! slot.copy_from_slice(b"world");
//! slot.commit();
//!
//! assert_eq!(rx.recv().unwrap(), b"hello");
//! let msg = rx.peek().unwrap(); // zero-copy read, released on drop
//! assert_eq!(&*msg, b"world");
//! # Ok::<(), shmchan::OpenError>(())
//! ```
//!
//! # Slot layout
//!
//! Each slot is an 8-byte frame header — the message length as a little-endian `u32`, then
//! four reserved bytes — followed by `max_message` bytes (rounded up to a multiple of 8). A
//! receiver checks the length against the maximum before it touches the bytes: a peer that
//! writes a bad length makes the receive report `Corrupted`; it cannot make the receiver read
//! outside the slot.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use super::core::{Format, SlotRead, SlotWrite, Wait};
use super::fail;
use super::{Receiver, Sender};
use crate::error::{OpenError, RecvError, RecvTimeoutError, TryRecvError};
use crate::record::RecordInfo;
use crate::segment::Segment;
use crate::wait::Failed;

/// The record "type" of a byte channel: `Channel<Bytes>`, `Sender<Bytes>`, `Receiver<Bytes>`.
/// It has no values; messages are `&[u8]`.
///
/// ```
/// use shmchan::{Bytes, Channel};
/// let chan = Channel::<Bytes>::builder().max_message(64).create()?;
/// assert_eq!(chan.max_message(), 64);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Debug)]
pub enum Bytes {}

/// Bytes of frame header in front of each message: the length (`u32`, little endian) and four
/// reserved bytes, which keep the message 8-byte aligned.
pub const FRAME_HEADER: usize = 8;

/// The longest message a byte channel can be created for (16 MiB).
///
/// ```
/// use shmchan::{Bytes, Channel, OpenError, MAX_MESSAGE};
/// let too_long = Channel::<Bytes>::builder().max_message(MAX_MESSAGE + 1).segment_len();
/// assert!(matches!(too_long, Err(OpenError::InvalidConfig { .. })));
/// ```
pub const MAX_MESSAGE: usize = 1 << 24;

/// The maximum message length a byte channel gets when the builder does not set one.
///
/// ```
/// use shmchan::{Bytes, Channel, DEFAULT_MAX_MESSAGE};
/// assert_eq!(Channel::<Bytes>::builder().create()?.max_message(), DEFAULT_MAX_MESSAGE);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub const DEFAULT_MAX_MESSAGE: usize = 4096 - FRAME_HEADER;

/// The record name byte channels are created under unless
/// [`type_name`](crate::Builder::type_name) names a protocol.
const BYTES_NAME: &str = "shmchan::Bytes";

/// The record fingerprint of a byte channel: the protocol name set (or [`BYTES_NAME`]), the
/// schema version, and frames for messages of up to `max` bytes ([`DEFAULT_MAX_MESSAGE`] when
/// unset), rounded up to a multiple of 8.
pub(crate) fn record(
    name: Option<&str>,
    schema_version: u32,
    max: Option<usize>,
) -> Result<RecordInfo, OpenError> {
    let max = max.unwrap_or(DEFAULT_MAX_MESSAGE);
    if max == 0 || max > MAX_MESSAGE {
        return Err(OpenError::InvalidConfig {
            reason: format!("maximum message length {max} is outside 1..={MAX_MESSAGE}"),
        });
    }
    Ok(RecordInfo {
        size: (FRAME_HEADER + max.div_ceil(8) * 8) as u32,
        align: 8,
        name: name.unwrap_or(BYTES_NAME).to_owned(),
        schema_version,
    })
}

/// The byte-channel record format: frames; an adopted frame keeps its header and message.
pub(crate) const FORMAT: Format = Format {
    check: check_frames,
    image: frame_image,
};

/// Checks that a segment's records are byte-channel frames.
fn check_frames(seg: &Segment) -> Result<(), OpenError> {
    let info = seg.ring().config();
    let size = info.record_size as usize;
    if info.record_align != 8
        || size < FRAME_HEADER
        || size % 8 != 0
        || size - FRAME_HEADER > MAX_MESSAGE
        || info.slot_stride as usize % 8 != 0
    {
        return Err(OpenError::Corrupted {
            reason: format!(
                "ring records are {} bytes aligned to {}: not byte-channel frames",
                info.record_size, info.record_align
            ),
        });
    }
    Ok(())
}

/// The bytes of a slot's frame worth keeping: its header and message.
///
/// # Safety
///
/// `slot` is a held slot of a byte channel with `record_size` readable bytes, 8-byte aligned.
unsafe fn frame_image(slot: NonNull<u8>, record_size: usize) -> Option<usize> {
    let max = record_size.checked_sub(FRAME_HEADER)?;
    // SAFETY: the caller's contract.
    unsafe { frame_len(slot, max) }.map(|len| FRAME_HEADER + len)
}

/// The longest message a channel's slots hold (its record size less the frame header).
fn max_of(record_size: usize) -> usize {
    record_size - FRAME_HEADER
}

/// Why sending (or reserving) a message failed. Nothing was sent; the caller still has the
/// message.
///
/// ```
/// use shmchan::{Bytes, Channel, SendBytesError};
/// let chan = Channel::<Bytes>::builder().max_message(8).create()?;
/// let mut tx = chan.sender()?;
/// let err = tx.try_send(&[0u8; 9]).unwrap_err();
/// assert_eq!(err, SendBytesError::TooLong { len: 9, max: 8 });
/// assert_eq!(err.to_string(), "a message of 9 bytes exceeds the channel's maximum of 8 bytes");
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum SendBytesError {
    /// The message is longer than the channel's slots (nothing is ever truncated).
    TooLong {
        /// The message's length.
        len: usize,
        /// The channel's maximum message length.
        max: usize,
    },
    /// The ring is full right now (the non-waiting forms).
    Full,
    /// The ring stayed full until the deadline (the timed forms).
    Timeout,
    /// Every receiver is gone.
    Disconnected,
    /// The segment no longer passes validation (a peer scribbled on it).
    Corrupted,
}

impl fmt::Display for SendBytesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendBytesError::TooLong { len, max } => write!(
                f,
                "a message of {len} bytes exceeds the channel's maximum of {max} bytes"
            ),
            SendBytesError::Full => f.write_str("sending on a full channel"),
            SendBytesError::Timeout => f.write_str("timed out sending on a full channel"),
            SendBytesError::Disconnected => f.write_str("sending on a disconnected channel"),
            SendBytesError::Corrupted => f.write_str("sending on a corrupted channel"),
        }
    }
}

impl std::error::Error for SendBytesError {}

/// How a core's [`Failed`] reads as a byte send's error: "no room" is `Full` for the forms
/// that do not wait, `Timeout` for those that do.
fn send_failed(f: Failed, wait: Wait) -> SendBytesError {
    match f {
        Failed::Timeout if matches!(wait, Wait::No) => SendBytesError::Full,
        Failed::Timeout => SendBytesError::Timeout,
        Failed::Gone => SendBytesError::Disconnected,
        Failed::Corrupted => SendBytesError::Corrupted,
    }
}

/// Writes one frame (length, reserved word, message) into a slot.
///
/// # Safety
///
/// `slot` is a reserved slot of a byte channel: `FRAME_HEADER + max` writable bytes, 8-byte
/// aligned, ours until published; `msg.len() <= max`.
unsafe fn write_frame(slot: NonNull<u8>, msg: &[u8]) {
    // SAFETY: the caller's contract: the slot is 8-aligned and has room for the header and
    // `msg.len()` bytes after it; `msg` is caller memory, which cannot overlap the slot's
    // (reserved, not yet handed out) bytes.
    unsafe {
        slot.cast::<u32>().as_ptr().write(msg.len() as u32);
        slot.as_ptr().add(4).cast::<u32>().write(0);
        std::ptr::copy_nonoverlapping(msg.as_ptr(), slot.as_ptr().add(FRAME_HEADER), msg.len());
    }
}

/// Reads a frame's length, checked against the slot size.
///
/// # Safety
///
/// `slot` is a published slot of a byte channel, or an adopted frame's image (at least
/// `FRAME_HEADER` readable bytes, 8-byte aligned), that stays valid for the call.
unsafe fn frame_len(slot: NonNull<u8>, max: usize) -> Option<usize> {
    // SAFETY: the caller's contract; any bits are a valid u32.
    let len = unsafe { slot.cast::<u32>().as_ptr().read() } as usize;
    (len <= max).then_some(len)
}

/// The message bytes of a checked frame.
///
/// # Safety
///
/// As for [`frame_len`], and `len` came from it for this slot, which stays valid (and is not
/// written by us) for `'a`.
unsafe fn frame_bytes<'a>(slot: NonNull<u8>, len: usize) -> &'a [u8] {
    // SAFETY: the caller's contract: `len <= max`, so the bytes lie inside the slot.
    unsafe { std::slice::from_raw_parts(slot.as_ptr().add(FRAME_HEADER), len) }
}

impl Sender<Bytes> {
    /// The longest message this channel carries.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().max_message(16).create()?;
    /// assert_eq!(chan.sender()?.max_message(), 16);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_message(&self) -> usize {
        max_of(self.core.record_size())
    }

    fn check_len(&mut self, len: usize) -> Result<(), SendBytesError> {
        let max = self.max_message();
        if len > max {
            // Every send and reservation disarms, this one too.
            self.core.disarm();
            return Err(SendBytesError::TooLong { len, max });
        }
        Ok(())
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

    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), SendBytesError> {
        self.check_len(msg.len())?;
        self.core
            .send(wait, |slot| {
                // SAFETY: a reserved slot of this byte channel (frames checked at endpoint
                // creation); `check_len` checked the message against the maximum.
                unsafe { write_frame(slot, msg) }
            })
            .map_err(|f| send_failed(f, wait))
    }

    fn reserve_wait(
        &mut self,
        len: usize,
        wait: Wait,
    ) -> Result<ByteSendGuard<'_>, SendBytesError> {
        self.check_len(len)?;
        let max = self.max_message();
        match self.core.reserve(wait) {
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
    #[inline]
    pub fn commit(self) {
        let slot = self.slot.ptr();
        // SAFETY: the reserved slot is ours until published: 8-aligned, header-sized.
        unsafe {
            slot.cast::<u32>().as_ptr().write(self.len as u32);
            slot.as_ptr().add(4).cast::<u32>().write(0);
        }
        self.slot.commit();
    }
}

impl Deref for ByteSendGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the reserved slot holds `FRAME_HEADER + max` bytes, `len <= max`, ours alone
        // until commit; the guard borrows the sender, so the mapping outlives it.
        unsafe { std::slice::from_raw_parts(self.slot.ptr().as_ptr().add(FRAME_HEADER), self.len) }
    }
}

impl DerefMut for ByteSendGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(self.slot.ptr().as_ptr().add(FRAME_HEADER), self.len)
        }
    }
}

impl fmt::Debug for ByteSendGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteSendGuard")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Receiver<Bytes> {
    /// The longest message this channel carries.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().max_message(16).create()?;
    /// assert_eq!(chan.receiver()?.max_message(), 16);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_message(&self) -> usize {
        max_of(self.core.record_size())
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
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_into_wait(buf, Wait::Forever).map_err(fail::recv)
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

    fn recv_into_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<usize, Failed> {
        buf.clear();
        let max = self.max_message();
        self.core.recv(wait, |frame| {
            // SAFETY: the core's contract for `read`: a published slot of this byte channel
            // (frames checked at endpoint creation) or an adopted frame's image, valid for the
            // call; the length is checked against the maximum before the bytes are touched.
            let len = unsafe { frame_len(frame, max) }?;
            buf.clear();
            // SAFETY: `len` was checked just above.
            buf.extend_from_slice(unsafe { frame_bytes(frame, len) });
            Some(len)
        })
    }

    fn peek_wait(&mut self, wait: Wait) -> Result<ByteRecvGuard<'_>, Failed> {
        let max = self.max_message();
        let slot = self.core.peek(wait)?;
        // SAFETY: a published slot of this byte channel or an adopted frame's image, held by
        // `slot`.
        let Some(len) = (unsafe { frame_len(slot.ptr(), max) }) else {
            slot.discard();
            return Err(Failed::Corrupted);
        };
        // SAFETY: the length was checked against the slot size.
        let bytes = NonNull::from(unsafe { frame_bytes(slot.ptr(), len) });
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
    /// Holds the slot (released on drop) or the adopted frame the message lies in.
    _slot: SlotRead<'a>,
    bytes: NonNull<[u8]>,
}

impl Deref for ByteRecvGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the bytes lie inside a published slot (length checked against the slot
        // size) that no producer reuses until the `SlotRead` is dropped with this guard —
        // which borrows the receiver, so the mapping outlives it — or inside the adopted
        // frame's image the guard owns.
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
