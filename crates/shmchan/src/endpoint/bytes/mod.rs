//! Byte channels: variable-length messages up to a maximum length chosen at creation.
//!
//! A byte channel is a `Channel<Bytes>`: the same segment, ring, backings, doorbells,
//! disconnection and crash handling as a typed channel, but each slot carries a message of
//! 0 to [`max_message`](crate::Channel::max_message) bytes, and its length sits in a lane
//! beside the slots. It is what a crate
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
//! Each slot holds the message alone: `max_message` bytes (rounded up to a multiple of 8),
//! so an 8-byte message takes 8 bytes of ring and a 64-byte one a cache line. The lengths
//! live in a lane at the end of the segment's extension area: one native-endian `u32` per
//! slot, written before the message is published and read after, as the slot is. (Lengths
//! in the slots, in front of each message, made an 8-byte message's slot 16 bytes and a
//! 64-byte one's 72, straddling two lines: a byte channel ran at 0.55-0.73x a typed channel
//! of the message's size.) A receiver checks the length against the maximum before it
//! touches the bytes: a peer that writes a bad length makes the receive report `Corrupted`;
//! it cannot make the receiver read outside the slot.

use std::fmt;

use super::core::{Format, Rec, Wait};
use super::fresh::{copy_fresh_words, FRESH_WORDS_MAX};
use crate::error::OpenError;
use crate::record::RecordInfo;
use crate::segment::Segment;
use crate::wait::Failed;

mod recv;
mod send;

pub use recv::ByteRecvGuard;
pub use send::ByteSendGuard;

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
pub const DEFAULT_MAX_MESSAGE: usize = 4096;

/// The record name byte channels are created under unless
/// [`type_name`](crate::Builder::type_name) names a protocol.
const BYTES_NAME: &str = "shmchan::Bytes";

/// The record fingerprint of a byte channel: the protocol name set (or [`BYTES_NAME`]), the
/// schema version, and slots for messages of up to `max` bytes ([`DEFAULT_MAX_MESSAGE`] when
/// unset), rounded up to a multiple of 8, with a length lane.
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
        size: max.next_multiple_of(8) as u32,
        align: 8,
        lane: true,
        ..RecordInfo::of::<()>(name.unwrap_or(BYTES_NAME), schema_version)
    })
}

/// The byte-channel record format: messages with a length lane; an adopted message keeps
/// its bytes, and its image's lane entry its length.
pub(crate) const FORMAT: Format = Format {
    check: check_messages,
    // The bytes a slot's record keeps are its message: as many as its length says.
    image: message_len,
};

/// Checks that a segment's records are byte-channel slots, with a length lane.
fn check_messages(seg: &Segment) -> Result<(), OpenError> {
    let info = seg.ring().config();
    let size = info.record_size as usize;
    if info.record_align != 8
        || size % 8 != 0
        || size > MAX_MESSAGE.next_multiple_of(8)
        || info.slot_stride as usize % 8 != 0
    {
        return Err(OpenError::Corrupted {
            reason: format!(
                "ring records are {} bytes aligned to {}: not byte-channel messages",
                info.record_size, info.record_align
            ),
        });
    }
    if seg.lane().is_none() {
        return Err(OpenError::Corrupted {
            reason: "a byte channel without a length lane".into(),
        });
    }
    Ok(())
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
    /// This endpoint was attached by another process (inherited across `fork`); take a new
    /// one from the [`Channel`](crate::Channel) in this process.
    Forked,
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
            SendBytesError::Forked => f.write_str(crate::error::FORKED),
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
        Failed::Forked => SendBytesError::Forked,
    }
}

/// Writes one message into a slot, and its length into the slot's lane entry.
///
/// # Safety
///
/// `rec` is a reserved slot of a byte channel (`max` writable bytes, 8-byte aligned, ours
/// until published) with its lane entry; `msg.len() <= max`.
#[inline(always)]
unsafe fn write_message(rec: Rec, msg: &[u8]) {
    // SAFETY: the caller's contract: the slot is 8-aligned and has room for `msg.len()` bytes;
    // `msg` is caller memory, which cannot overlap the slot's (reserved, not yet handed out)
    // bytes.
    unsafe {
        write_len(rec, msg.len());
        let (src, dst) = (msg.as_ptr(), rec.ptr.as_ptr());
        if (src as usize | msg.len()) % 8 == 0 && msg.len() <= FRESH_WORDS_MAX * 8 {
            // Aligned whole words, as the caller most likely wrote them: see `fresh`
            // (`copy_message`'s wide, overlapping loads would each need two of its stores).
            // SAFETY: the words lie inside `msg` and the slot (`msg.len() <= max`), 8-aligned
            // in both (checked just above; the slot is 8-aligned); bytes are initialized.
            copy_fresh_words(src.cast(), dst.cast(), msg.len() / 8);
        } else {
            copy_message(src, dst, msg.len());
        }
    }
}

/// Writes a message's length into its slot's lane entry.
///
/// # Safety
///
/// `rec` is a reserved slot of a byte channel with its lane entry (ours until the slot is
/// published); `len` fits in a `u32` (it is at most the channel's maximum).
#[inline(always)]
pub(crate) unsafe fn write_len(rec: Rec, len: usize) {
    // SAFETY: the caller's contract: the entry is 4-aligned, inside the lane, and ours.
    unsafe { rec.lane.as_ptr().write(len as u32) };
}

/// Copies a message of `len` bytes: inline for up to [`INLINE_COPY_MAX`] bytes (a few
/// overlapping loads and stores, as the C library's `memcpy` does for short sizes, without its
/// call and size dispatch, which were about a third of the instructions of an 8-byte message's
/// `send` + `recv_into`), `memcpy` beyond.
///
/// # Safety
///
/// As [`std::ptr::copy_nonoverlapping`]`(src, dst, len)`.
#[inline(always)]
pub(crate) unsafe fn copy_message(src: *const u8, dst: *mut u8, len: usize) {
    use std::ptr::{read_unaligned as rd, write_unaligned as wr};
    // SAFETY: every access below lies inside `src[..len]` or `dst[..len]` (the two overlapping
    // pieces of each size cover the range from both ends), valid by the caller's contract;
    // unaligned reads and writes accept any address.
    unsafe {
        if len > INLINE_COPY_MAX {
            std::ptr::copy_nonoverlapping(src, dst, len);
        } else if len > 32 {
            // 33 to 64 bytes: the first and the last 32; 65 to 128: the first and the last
            // 64 (the pieces overlap in the middle). No loop, which the compiler would turn
            // back into a `memcpy` call.
            let c32 = |at: usize| {
                let (a, b) = (
                    rd(src.add(at).cast::<u128>()),
                    rd(src.add(at + 16).cast::<u128>()),
                );
                wr(dst.add(at).cast::<u128>(), a);
                wr(dst.add(at + 16).cast::<u128>(), b);
            };
            c32(0);
            if len > 64 {
                c32(32);
                c32(len - 64);
            }
            c32(len - 32);
        } else if len >= 16 {
            let (a, b) = (rd(src.cast::<u128>()), rd(src.add(len - 16).cast::<u128>()));
            wr(dst.cast::<u128>(), a);
            wr(dst.add(len - 16).cast::<u128>(), b);
        } else if len >= 8 {
            let (a, b) = (rd(src.cast::<u64>()), rd(src.add(len - 8).cast::<u64>()));
            wr(dst.cast::<u64>(), a);
            wr(dst.add(len - 8).cast::<u64>(), b);
        } else if len >= 4 {
            let (a, b) = (rd(src.cast::<u32>()), rd(src.add(len - 4).cast::<u32>()));
            wr(dst.cast::<u32>(), a);
            wr(dst.add(len - 4).cast::<u32>(), b);
        } else if len > 0 {
            *dst = *src;
            *dst.add(len / 2) = *src.add(len / 2);
            *dst.add(len - 1) = *src.add(len - 1);
        }
    }
}

/// The longest message [`copy_message`] and [`copy_words`] copy inline.
const INLINE_COPY_MAX: usize = 128;

/// Copies a message of `len` bytes as whole 8-byte words: `len` rounded up to a multiple of 8
/// (the bytes past the message are copied too), with the moves a copy of a `[u64; N]` makes
/// (16 bytes at a time from the start, then 8), none overlapping another; `memcpy` beyond
/// [`INLINE_COPY_MAX`].
///
/// Why, for a receive into the caller's buffer: [`copy_message`]'s overlapping pieces
/// (a 56-byte message is copied as 0..32 and 24..56) leave stores that a later wide load of
/// the buffer straddles, and a load that needs two stores cannot be forwarded from them: it
/// waits for both to reach the cache. A caller that read a 56-byte message as a `[u64; 7]`
/// ran at 0.57-0.70x the rate of a 64-byte one (`stream` bench, receiver-bound).
///
/// # Safety
///
/// `src` is readable and `dst` writable for `len.next_multiple_of(8)` bytes, and the two do
/// not overlap.
#[inline(always)]
pub(crate) unsafe fn copy_words(src: *const u8, dst: *mut u8, len: usize) {
    /// Copies `N` words.
    ///
    /// # Safety
    ///
    /// `src` readable and `dst` writable for `8 * N` bytes, not overlapping.
    #[inline(always)]
    unsafe fn w<const N: usize>(src: *const u8, dst: *mut u8) {
        // SAFETY: the caller's contract; unaligned accesses accept any address.
        unsafe {
            let v = src.cast::<[u64; N]>().read_unaligned();
            dst.cast::<[u64; N]>().write_unaligned(v);
        }
    }
    // SAFETY: each arm copies `8 * words` bytes, `len.next_multiple_of(8)` exactly: the
    // caller's contract.
    unsafe {
        match len.div_ceil(8) {
            0 => {}
            1 => w::<1>(src, dst),
            2 => w::<2>(src, dst),
            3 => w::<3>(src, dst),
            4 => w::<4>(src, dst),
            5 => w::<5>(src, dst),
            6 => w::<6>(src, dst),
            7 => w::<7>(src, dst),
            8 => w::<8>(src, dst),
            9 => w::<9>(src, dst),
            10 => w::<10>(src, dst),
            11 => w::<11>(src, dst),
            12 => w::<12>(src, dst),
            13 => w::<13>(src, dst),
            14 => w::<14>(src, dst),
            15 => w::<15>(src, dst),
            16 => w::<16>(src, dst),
            _ => std::ptr::copy_nonoverlapping(src, dst, len),
        }
    }
}

/// Reads a message's length from its lane entry, checked against the slot size `max` (the
/// longest message: a byte channel's slots hold the message alone). Also the format's
/// `image`: what a slot's record keeps is its message.
///
/// # Safety
///
/// `rec` is a published (or held) slot of a byte channel, or an adopted message's image,
/// with its lane entry, valid for the call.
#[inline(always)]
unsafe fn message_len(rec: Rec, max: usize) -> Option<usize> {
    // SAFETY: the caller's contract; any bits are a valid u32.
    let len = unsafe { rec.lane.as_ptr().read() } as usize;
    (len <= max).then_some(len)
}

/// The bytes of a checked message.
///
/// # Safety
///
/// As for [`message_len`], and `len` came from it for this record, which stays valid (and is
/// not written by us) for `'a`.
#[inline(always)]
unsafe fn message_bytes<'a>(rec: Rec, len: usize) -> &'a [u8] {
    // SAFETY: the caller's contract: `len <= max`, so the bytes lie inside the slot (or the
    // image).
    unsafe { std::slice::from_raw_parts(rec.ptr.as_ptr(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length up to and past the inline bound: the message and the bytes up to the next
    /// whole word are copied, nothing beyond.
    #[test]
    fn copy_words_copies_the_message_in_whole_words() {
        let src: Vec<u8> = (0..400u32).map(|i| (i * 13 + 5) as u8).collect();
        for len in 0..=INLINE_COPY_MAX + 40 {
            let words = len.next_multiple_of(8);
            let mut dst = vec![0xEEu8; words + 16];
            // SAFETY: `src` has 400 > 168 + 8 readable bytes, `dst` `words + 16` writable
            // ones; the vectors do not overlap.
            unsafe { copy_words(src.as_ptr(), dst.as_mut_ptr(), len) };
            let copied = if len > INLINE_COPY_MAX { len } else { words };
            assert_eq!(&dst[..copied], &src[..copied], "len {len}");
            assert!(dst[copied..].iter().all(|&b| b == 0xEE), "after, len {len}");
        }
    }

    /// Every length the inline copy handles, and a few beyond, at every source and
    /// destination offset in a word: exactly the message is copied, nothing around it.
    #[test]
    fn copy_message_copies_exactly_the_message() {
        let src: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..=INLINE_COPY_MAX + 40 {
            for (so, dof) in [(0, 0), (1, 0), (0, 3), (5, 7), (8, 1)] {
                let mut dst = vec![0xEEu8; len + 32];
                // SAFETY: `src[so..so + len]` and `dst[dof..dof + len]` are in bounds (400 >
                // 168 + 8, dst has 32 spare bytes) and the two vectors do not overlap.
                unsafe { copy_message(src.as_ptr().add(so), dst.as_mut_ptr().add(dof), len) };
                assert_eq!(&dst[dof..dof + len], &src[so..so + len], "len {len}");
                assert!(dst[..dof].iter().all(|&b| b == 0xEE), "before, len {len}");
                assert!(
                    dst[dof + len..].iter().all(|&b| b == 0xEE),
                    "after, len {len}"
                );
            }
        }
    }
}
