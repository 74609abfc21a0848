//! Byte channels: variable-length messages up to a maximum length chosen at creation.
//!
//! A byte channel is a `Channel<Bytes>`: the same segment, ring, backings, doorbells,
//! disconnection and crash handling as a typed channel, but each slot carries a message of
//! 0 to [`max_message`](Channel::max_message) bytes, prefixed by its length. It is what a crate
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

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use shmchan_ring::{self as ring, PopError, PushError};

use crate::channel::{Builder, Channel};
use crate::endpoint::{
    both, both_c, hand_back, peek_slot, peeked, pop_attempt, Cons, Prod, RGrant, Receiver, Sender,
    WGrant,
};
use crate::error::{OpenError, RecvError, RecvTimeoutError, TryRecvError};
use crate::record::RecordInfo;
use crate::segment::{Role, Segment};
use crate::wait::{block, retry_loop, Attempt, Failed, Retried, Retry};

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
/// [`type_name`](Builder::type_name) names a protocol.
const BYTES_NAME: &str = "shmchan::Bytes";

/// The record fingerprint of a byte channel whose messages hold up to `max` bytes.
fn record(name: &str, schema_version: u32, max: usize) -> RecordInfo {
    RecordInfo {
        size: (FRAME_HEADER + max) as u32,
        align: 8,
        name: name.to_owned(),
        schema_version,
    }
}

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

/// The longest message the segment's slots hold.
fn max_of(seg: &Segment) -> usize {
    seg.ring().config().record_size as usize - FRAME_HEADER
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

fn send_failed(f: Failed) -> SendBytesError {
    match f {
        Failed::Timeout => SendBytesError::Timeout,
        Failed::Gone => SendBytesError::Disconnected,
        Failed::Corrupted => SendBytesError::Corrupted,
    }
}

impl Channel<Bytes> {
    /// Starts building a byte channel.
    ///
    /// ```
    /// let b = shmchan::Channel::<shmchan::Bytes>::builder().max_message(1500).mpmc();
    /// # let _ = b;
    /// ```
    pub fn builder() -> Builder<Bytes> {
        Builder::new()
    }

    /// A new sending endpoint in this process (SPSC: at most one live sender).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// let mut tx = chan.sender()?;
    /// tx.send(b"hi").unwrap();
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn sender(&self) -> Result<Sender<Bytes>, OpenError> {
        Sender::attach(self.seg.clone(), self.spin, check_frames)
    }

    /// A new receiving endpoint in this process (SPSC: at most one live receiver).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<shmchan::Bytes>::builder().create()?;
    /// let mut rx = chan.receiver()?;
    /// assert!(rx.try_recv().is_err()); // empty
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn receiver(&self) -> Result<Receiver<Bytes>, OpenError> {
        Receiver::attach(self.seg.clone(), self.spin, check_frames)
    }

    /// The longest message the channel carries.
    ///
    /// ```
    /// let chan = shmchan::Channel::<shmchan::Bytes>::builder().max_message(100).create()?;
    /// assert_eq!(chan.max_message(), 104); // rounded up to a multiple of 8
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_message(&self) -> usize {
        max_of(&self.seg)
    }
}

impl Builder<Bytes> {
    /// The longest message the channel carries (default [`DEFAULT_MAX_MESSAGE`]), rounded up to
    /// a multiple of 8; at most [`MAX_MESSAGE`]. Each slot holds this many bytes plus an
    /// 8-byte frame header. When opening, an unset maximum adopts the channel's; a set one must
    /// match.
    ///
    /// ```
    /// use shmchan::{Bytes, Channel};
    /// let chan = Channel::<Bytes>::builder().max_message(1500).capacity(64).create()?;
    /// assert_eq!(chan.max_message(), 1504);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_message(mut self, len: usize) -> Self {
        self.max_message = Some(len);
        self
    }

    fn checked_max(&self) -> Result<usize, OpenError> {
        let max = self.max_message.unwrap_or(DEFAULT_MAX_MESSAGE);
        if max == 0 || max > MAX_MESSAGE {
            return Err(OpenError::InvalidConfig {
                reason: format!("maximum message length {max} is outside 1..={MAX_MESSAGE}"),
            });
        }
        Ok(max.div_ceil(8) * 8)
    }

    fn record(&self) -> Result<RecordInfo, OpenError> {
        Ok(record(
            &self.name_or(BYTES_NAME),
            self.schema_version_value(),
            self.checked_max()?,
        ))
    }

    /// Creates the byte channel's segment and returns the channel.
    ///
    /// ```
    /// let chan = shmchan::Channel::<shmchan::Bytes>::builder().capacity(8).create()?;
    /// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(b"abc").unwrap();
    /// assert_eq!(rx.recv().unwrap(), b"abc");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn create(self) -> Result<Channel<Bytes>, OpenError> {
        let seg = self.create_segment(&self.record()?)?;
        Ok(Channel::from_seg(seg, self.spin()))
    }

    /// Opens an existing byte channel; an unset maximum message length is adopted.
    ///
    /// ```
    /// use shmchan::{Backing, Bytes, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-bopen-{}", std::process::id()));
    /// let created = Channel::<Bytes>::builder().max_message(64).backing(Backing::file(&path)).create()?;
    /// let opened = Channel::<Bytes>::builder().backing(Backing::file(&path)).open()?;
    /// assert_eq!(opened.max_message(), 64);
    /// # drop((created, opened)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn open(self) -> Result<Channel<Bytes>, OpenError> {
        let any_size = self.max_message.is_none();
        let seg = self.open_segment(&self.record()?, any_size)?;
        Ok(Channel::from_seg(seg, self.spin()))
    }

    /// The number of bytes a byte channel with these settings occupies (what
    /// [`create_in`](Builder::<Bytes>::create_in) needs).
    ///
    /// ```
    /// use shmchan::{Bytes, Channel};
    /// let len = Channel::<Bytes>::builder().capacity(16).max_message(1024).segment_len()?;
    /// assert!(len >= 16 * 1032);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn segment_len(&self) -> Result<usize, OpenError> {
        let cap = self.checked_capacity()?;
        Segment::required_len(self.kind_or_default(), cap, &self.record()?)
    }

    /// Creates a byte channel in memory the caller mapped; see the typed
    /// [`create_in`](Builder::create_in) for the details.
    ///
    /// # Safety
    ///
    /// As for the typed [`create_in`](Builder::create_in): `base` is valid for reads and writes
    /// of `len` initialised bytes and 128-byte aligned (checked); the memory stays mapped at
    /// this address until the channel and every endpoint taken from it are dropped; nobody
    /// else initialises it concurrently, and other parties access it only as shmchan peers or
    /// as hostile writers (which can make operations report `Corrupted`, never cause undefined
    /// behaviour).
    ///
    /// ```
    /// use std::alloc::{alloc_zeroed, dealloc, Layout};
    /// use std::ptr::NonNull;
    /// use shmchan::{Bytes, Channel};
    ///
    /// let b = Channel::<Bytes>::builder().capacity(4).max_message(32);
    /// let layout = Layout::from_size_align(b.segment_len()?, 128).unwrap();
    /// // SAFETY: a non-zero size.
    /// let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
    /// {
    ///     // SAFETY: zeroed, 128-aligned, `layout.size()` bytes, freed after the channel.
    ///     let chan = unsafe { b.create_in(mem, layout.size()) }?;
    ///     // SAFETY: the same memory, which now holds the channel and outlives `peer`.
    ///     let peer = unsafe { Channel::<Bytes>::builder().open_in(mem, layout.size()) }?;
    ///     chan.sender()?.send(b"in place").unwrap();
    ///     assert_eq!(peer.receiver()?.recv().unwrap(), b"in place");
    /// }
    /// // SAFETY: allocated above with this layout; nothing refers to it any more.
    /// unsafe { dealloc(mem.as_ptr(), layout) };
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub unsafe fn create_in(
        mut self,
        base: NonNull<u8>,
        len: usize,
    ) -> Result<Channel<Bytes>, OpenError> {
        self.set_region(base, len);
        self.create()
    }

    /// Opens the byte channel a peer created in caller-mapped memory
    /// ([`create_in`](Builder::<Bytes>::create_in)). Everything in the memory is validated
    /// first.
    ///
    /// # Safety
    ///
    /// As for [`create_in`](Builder::<Bytes>::create_in), except that the memory holds a
    /// channel (or anything at all: garbage is reported as an error).
    ///
    /// ```
    /// # use std::alloc::{alloc_zeroed, dealloc, Layout};
    /// # use std::ptr::NonNull;
    /// use shmchan::{Bytes, Channel, OpenError};
    /// # let layout = Layout::from_size_align(4096, 128).unwrap();
    /// # let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
    /// // SAFETY: `mem` is 4096 zeroed, 128-aligned bytes that outlive the attempt.
    /// let r = unsafe { Channel::<Bytes>::builder().open_in(mem, 4096) };
    /// assert!(r.is_err()); // zeroes are not a channel
    /// # unsafe { dealloc(mem.as_ptr(), layout) };
    /// ```
    pub unsafe fn open_in(
        mut self,
        base: NonNull<u8>,
        len: usize,
    ) -> Result<Channel<Bytes>, OpenError> {
        self.set_region(base, len);
        self.open()
    }

    /// Creates the byte channel and returns its sender.
    ///
    /// ```
    /// use shmchan::{Backing, Bytes, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-bcs-{}", std::process::id()));
    /// let mut tx = Channel::<Bytes>::builder().backing(Backing::file(&path)).create_sender()?;
    /// let mut rx = Channel::<Bytes>::builder().backing(Backing::file(&path)).open_receiver()?;
    /// tx.send(b"x").unwrap();
    /// assert_eq!(rx.recv().unwrap(), b"x");
    /// # drop((tx, rx)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn create_sender(self) -> Result<Sender<Bytes>, OpenError> {
        self.create()?.sender()
    }

    /// Creates the byte channel and returns its receiver.
    ///
    /// ```
    /// use shmchan::{Backing, Bytes, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-bcr-{}", std::process::id()));
    /// let mut rx = Channel::<Bytes>::builder().backing(Backing::file(&path)).create_receiver()?;
    /// let mut tx = Channel::<Bytes>::builder().backing(Backing::file(&path)).open_sender()?;
    /// tx.send(b"y").unwrap();
    /// assert_eq!(rx.recv().unwrap(), b"y");
    /// # drop((tx, rx)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn create_receiver(self) -> Result<Receiver<Bytes>, OpenError> {
        self.create()?.receiver()
    }

    /// Opens an existing byte channel and returns a sender.
    ///
    /// ```
    /// use shmchan::{Backing, Bytes, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-bos-{}", std::process::id()));
    /// let chan = Channel::<Bytes>::builder().backing(Backing::file(&path)).create()?;
    /// let mut tx = Channel::<Bytes>::builder().backing(Backing::file(&path)).open_sender()?;
    /// tx.send(b"z").unwrap();
    /// assert_eq!(chan.receiver()?.recv().unwrap(), b"z");
    /// # drop((tx, chan)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn open_sender(self) -> Result<Sender<Bytes>, OpenError> {
        self.open()?.sender()
    }

    /// Opens an existing byte channel and returns a receiver.
    ///
    /// ```
    /// use shmchan::{Backing, Bytes, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-bor-{}", std::process::id()));
    /// let chan = Channel::<Bytes>::builder().backing(Backing::file(&path)).create()?;
    /// chan.sender()?.send(b"w").unwrap();
    /// let mut rx = Channel::<Bytes>::builder().backing(Backing::file(&path)).open_receiver()?;
    /// assert_eq!(rx.recv().unwrap(), b"w");
    /// # drop((rx, chan)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn open_receiver(self) -> Result<Receiver<Bytes>, OpenError> {
        self.open()?.receiver()
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
/// `slot` is a published slot of a byte channel (at least `FRAME_HEADER` readable bytes,
/// 8-byte aligned) that stays valid for the call.
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
        max_of(&self.seg)
    }

    fn check_len(&self, len: usize) -> Result<(), SendBytesError> {
        let max = self.max_message();
        if len > max {
            return Err(SendBytesError::TooLong { len, max });
        }
        Ok(())
    }

    fn push(prod: &mut Prod, msg: &[u8]) -> Result<(), PushError> {
        both!(prod, p => p.try_push_with(|slot| {
            // SAFETY: a reserved slot of this byte channel (frames checked at endpoint
            // creation); the caller checked `msg.len()` against the maximum.
            unsafe { write_frame(slot, msg) }
        }))
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
        self.disarm();
        self.check_len(msg.len())?;
        if self.seg.gone(Role::Receiver) {
            return Err(SendBytesError::Disconnected);
        }
        match Self::push(&mut self.prod, msg) {
            Ok(()) => {
                self.wake();
                Ok(())
            }
            Err(PushError::Full) => Err(SendBytesError::Full),
            Err(_) => Err(SendBytesError::Corrupted),
        }
    }

    fn send_until(&mut self, msg: &[u8], deadline: Option<Instant>) -> Result<(), SendBytesError> {
        match self.try_send(msg) {
            Err(SendBytesError::Full) => {}
            r => return r,
        }
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
            match Self::push(prod, msg) {
                Ok(()) => Attempt::Ready(()),
                Err(PushError::Full) => Attempt::NotYet,
                Err(_) => Attempt::Corrupted,
            }
        })
        .map_err(send_failed)?;
        self.wake();
        Ok(())
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
        self.send_until(msg, None)
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
        self.send_until(msg, Some(Instant::now() + timeout))
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
        self.send_until(msg, Some(deadline))
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
        self.reserve_until(len, None)
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
        self.disarm();
        self.check_len(len)?;
        if self.seg.gone(Role::Receiver) {
            return Err(SendBytesError::Disconnected);
        }
        let max = self.max_message();
        let seg = &*self.seg;
        let grant = match &mut self.prod {
            Prod::Spsc(p) => p.try_reserve(1).map(WGrant::Spsc),
            Prod::Mpmc(p) => p.try_reserve(1).map(WGrant::Mpmc),
        };
        match grant {
            Ok(g) => Ok(ByteSendGuard::new(g, seg, len, max)),
            Err(PushError::Full) => Err(SendBytesError::Full),
            Err(_) => Err(SendBytesError::Corrupted),
        }
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
        self.reserve_until(len, Some(Instant::now() + timeout))
    }

    fn reserve_until(
        &mut self,
        len: usize,
        deadline: Option<Instant>,
    ) -> Result<ByteSendGuard<'_>, SendBytesError> {
        retry_loop(self, deadline, send_failed, |tx| {
            match tx.try_reserve(len) {
                Err(SendBytesError::Full) => None,
                r => Some(r),
            }
        })
    }
}

impl Retried for Sender<Bytes> {
    type Guard<'g> = ByteSendGuard<'g>;

    fn wait(&mut self, retry: &mut Retry, deadline: Option<Instant>) -> Result<(), Failed> {
        self.wait_for_room(retry, deadline)
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
    grant: Option<WGrant<'a>>,
    seg: &'a Segment,
    slot: NonNull<u8>,
    len: usize,
    max: usize,
}

impl<'a> ByteSendGuard<'a> {
    #[inline]
    fn new(grant: WGrant<'a>, seg: &'a Segment, len: usize, max: usize) -> ByteSendGuard<'a> {
        let slot = match &grant {
            WGrant::Spsc(g) => g.slot(0),
            WGrant::Mpmc(g) => g.slot(0),
        };
        ByteSendGuard {
            grant: Some(grant),
            seg,
            slot,
            len,
            max,
        }
    }

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
    pub fn commit(mut self) {
        // SAFETY: the reserved slot is ours until published: 8-aligned, header-sized.
        unsafe {
            self.slot.cast::<u32>().as_ptr().write(self.len as u32);
            self.slot.as_ptr().add(4).cast::<u32>().write(0);
        }
        match self.grant.take() {
            Some(WGrant::Spsc(g)) => g.commit(),
            Some(WGrant::Mpmc(g)) => g.commit(),
            None => {}
        }
        self.seg.wake_all(Role::Receiver);
    }
}

impl Drop for ByteSendGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        match self.grant.take() {
            Some(WGrant::Spsc(_)) => {}
            // An MPMC claim cannot be undone: the ring publishes the slot as skipped, and a
            // receiver sleeping on it must wake to pass over it.
            Some(WGrant::Mpmc(g)) => {
                drop(g);
                self.seg.wake_all(Role::Receiver);
            }
            None => {}
        }
    }
}

impl Deref for ByteSendGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the reserved slot holds `FRAME_HEADER + max` bytes, `len <= max`, ours alone
        // until commit; the guard borrows the sender, so the mapping outlives it.
        unsafe { std::slice::from_raw_parts(self.slot.as_ptr().add(FRAME_HEADER), self.len) }
    }
}

impl DerefMut for ByteSendGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.slot.as_ptr().add(FRAME_HEADER), self.len) }
    }
}

impl fmt::Debug for ByteSendGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteSendGuard")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// What popping one frame gives: the result of the reader, or a bad length.
enum Frame<R> {
    Ok(R),
    BadLength,
}

/// Pops one frame and hands its bytes to `read`.
fn pop_frame<R>(cons: &mut Cons, max: usize, read: impl FnOnce(&[u8]) -> R) -> Result<R, PopError> {
    let r = both_c!(cons, c => c.try_pop_with(|slot| {
        // SAFETY: a published slot of this byte channel (frames checked at endpoint creation),
        // valid until `try_pop_with` releases it after this closure.
        match unsafe { frame_len(slot, max) } {
            // SAFETY: the length was checked against the slot size just above.
            Some(len) => Frame::Ok(read(unsafe { frame_bytes(slot, len) })),
            None => Frame::BadLength,
        }
    }))?;
    match r {
        Frame::Ok(v) => Ok(v),
        Frame::BadLength => Err(PopError::Corrupted),
    }
}

/// Adopts what dead sibling receivers (MPMC) had claimed, as owned messages, and hands them
/// back to the ring (see [`hand_back`]).
fn adopt_frames(seg: &Segment, cons: &mut Cons, max: usize, adopted: &mut VecDeque<Vec<u8>>) {
    if let Cons::Mpmc(c) = cons {
        seg.settle_orphans(Some(c), |p| {
            // SAFETY: `adopt` hands out a slot it holds, valid until it releases it after
            // this closure; the length is checked before the bytes are read. A frame with a
            // bad length is dropped (there is nothing to deliver).
            if let Some(len) = unsafe { frame_len(p, max) } {
                // SAFETY: checked just above.
                adopted.push_back(unsafe { frame_bytes(p, len) }.to_vec());
            }
        });
        hand_back_frames(seg, c, adopted);
    }
}

/// [`hand_back`] for byte messages (each at most the channel's maximum: it came from one of
/// its slots).
pub(crate) fn hand_back_frames(
    seg: &Segment,
    c: &mut ring::MpmcConsumer,
    adopted: &mut VecDeque<Vec<u8>>,
) {
    hand_back(seg, c, adopted, |slot, m| {
        // SAFETY: `push_back_with` hands out a claimed, 8-aligned slot with room for the header
        // and the channel's maximum message, which `m` (read from such a slot) does not exceed.
        unsafe { write_frame(slot, m) }
    });
}

fn recv_failed(f: Failed) -> RecvError {
    match f {
        Failed::Gone => RecvError::Disconnected,
        _ => RecvError::Corrupted,
    }
}

fn recv_timeout_failed(f: Failed) -> RecvTimeoutError {
    match f {
        Failed::Timeout => RecvTimeoutError::Timeout,
        Failed::Gone => RecvTimeoutError::Disconnected,
        Failed::Corrupted => RecvTimeoutError::Corrupted,
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
        max_of(&self.seg)
    }

    /// One time slice's housekeeping for a waiter outside `block` (an event loop): reap dead
    /// peers and adopt what dead sibling receivers held.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn housekeep(&mut self) {
        crate::wait::housekeep(&self.seg, Role::Receiver);
        let max = self.max_message();
        adopt_frames(&self.seg, &mut self.cons, max, &mut self.adopted_bytes);
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
        self.disarm();
        buf.clear();
        if let Some(m) = self.adopted_bytes.pop_front() {
            buf.extend_from_slice(&m);
            return Ok(m.len());
        }
        let max = self.max_message();
        let seg = &*self.seg;
        let cons = &mut self.cons;
        let mut copy = |m: &[u8]| {
            buf.clear();
            buf.extend_from_slice(m);
            m.len()
        };
        let first = pop_frame(cons, max, &mut copy);
        match pop_attempt(first, seg, || pop_frame(cons, max, &mut copy)) {
            Attempt::Ready(n) => {
                self.wake();
                Ok(n)
            }
            Attempt::NotYet => Err(TryRecvError::Empty),
            Attempt::Gone => Err(TryRecvError::Disconnected),
            Attempt::Corrupted => Err(TryRecvError::Corrupted),
        }
    }

    fn recv_into_until(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<usize, Failed> {
        match self.try_recv_into(buf) {
            Ok(n) => return Ok(n),
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => return Err(Failed::Gone),
            Err(_) => return Err(Failed::Corrupted),
        }
        let max = self.max_message();
        let Receiver {
            cons,
            seg,
            spin,
            slot,
            adopted_bytes,
            ..
        } = self;
        let n = block(seg, Role::Receiver, *slot, deadline, spin, |housekeeping| {
            if housekeeping {
                adopt_frames(seg, cons, max, adopted_bytes);
            }
            if let Some(m) = adopted_bytes.pop_front() {
                buf.clear();
                buf.extend_from_slice(&m);
                return Attempt::Ready(m.len());
            }
            let mut copy = |m: &[u8]| {
                buf.clear();
                buf.extend_from_slice(m);
                m.len()
            };
            let first = pop_frame(cons, max, &mut copy);
            pop_attempt(first, seg, || pop_frame(cons, max, &mut copy))
        })?;
        self.wake();
        Ok(n)
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
        self.recv_into_until(buf, None).map_err(recv_failed)
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
        self.recv_into_until(buf, Some(deadline))
            .map_err(recv_timeout_failed)
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
        self.disarm();
        let seg = &*self.seg;
        let max = max_of(seg);
        if !self.adopted_bytes.is_empty() {
            return Ok(ByteRecvGuard::adopted(&mut self.adopted_bytes, seg));
        }
        peek_slot(&mut self.cons, seg)
            .and_then(|g| ByteRecvGuard::new(g, seg, max).ok_or(TryRecvError::Corrupted))
    }

    fn peek_until(&mut self, deadline: Option<Instant>) -> Result<ByteRecvGuard<'_>, Failed> {
        retry_loop(self, deadline, |f| f, |rx| peeked(rx.try_peek()))
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
        self.peek_until(None).map_err(recv_failed)
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
        self.peek_until(Some(Instant::now() + timeout))
            .map_err(recv_timeout_failed)
    }
}

impl Retried for Receiver<Bytes> {
    type Guard<'g> = ByteRecvGuard<'g>;

    fn wait(&mut self, retry: &mut Retry, deadline: Option<Instant>) -> Result<(), Failed> {
        let max = self.max_message();
        self.wait_for_data(retry, deadline, |seg, cons, _, adopted_bytes| {
            adopt_frames(seg, cons, max, adopted_bytes)
        })
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
    grant: Option<RGrant<'a>>,
    seg: &'a Segment,
    bytes: NonNull<[u8]>,
    adopted: Option<&'a mut VecDeque<Vec<u8>>>,
}

impl<'a> ByteRecvGuard<'a> {
    /// A guard over a peeked slot, or `None` (the slot released) when its length is bad.
    #[inline]
    fn new(grant: RGrant<'a>, seg: &'a Segment, max: usize) -> Option<ByteRecvGuard<'a>> {
        let slot = match &grant {
            RGrant::Spsc(g) => g.slot(0),
            RGrant::Mpmc(g) => g.slot(0),
        };
        // SAFETY: a published slot of this byte channel, held by `grant`.
        let Some(len) = (unsafe { frame_len(slot, max) }) else {
            match grant {
                RGrant::Spsc(g) => g.release(),
                RGrant::Mpmc(g) => g.release(),
            }
            seg.wake_all(Role::Sender);
            return None;
        };
        // SAFETY: the length was checked against the slot size.
        let bytes = NonNull::from(unsafe { frame_bytes(slot, len) });
        Some(ByteRecvGuard {
            grant: Some(grant),
            seg,
            bytes,
            adopted: None,
        })
    }

    fn adopted(adopted: &'a mut VecDeque<Vec<u8>>, seg: &'a Segment) -> ByteRecvGuard<'a> {
        let bytes = NonNull::from(adopted.front().map(Vec::as_slice).unwrap_or_default());
        ByteRecvGuard {
            grant: None,
            seg,
            bytes,
            adopted: Some(adopted),
        }
    }
}

impl Deref for ByteRecvGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `bytes` lies inside a published slot (length checked against the slot
        // size) that no producer reuses until this guard releases it — the guard borrows the
        // receiver, so the mapping outlives it — or is the front of the adopted queue, which
        // the guard borrows mutably.
        unsafe { self.bytes.as_ref() }
    }
}

impl Drop for ByteRecvGuard<'_> {
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
        // The low-water mark, as for a copying receive.
        self.seg.wake_senders();
    }
}

impl fmt::Debug for ByteRecvGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteRecvGuard")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
