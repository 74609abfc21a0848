//! The adoption of records a dead sibling MPMC receiver held (at-least-once delivery): their
//! images, copied out of the ring, handed back to it, and delivered first by the adopter
//! while they do not fit.

use std::collections::VecDeque;
use std::ptr::NonNull;

use shmchan_ring as ring;

use super::Cons;
use crate::endpoint::core::{Format, Lane, Rec};
use crate::segment::{Role, Segment};

/// An adopted record's image: the leading bytes of its slot that hold the record (see
/// [`Format::image`]), kept 128-byte aligned like a slot, so that faces read it in place
/// exactly as they read a slot.
pub(super) struct Image {
    lines: Box<[Line]>,
    /// The record's length (at most a ring's record size, 2^30), which is also the image's
    /// lane entry (what a byte face reads for the message's length; a typed face ignores it).
    len: u32,
}

/// One 128-byte line of an [`Image`] (the alignment a slot guarantees its record).
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(128))]
struct Line([u8; 128]);

impl Image {
    fn copy_of(bytes: &[u8]) -> Image {
        let mut lines = vec![Line([0; 128]); bytes.len().div_ceil(128)].into_boxed_slice();
        bytemuck::cast_slice_mut::<Line, u8>(&mut lines)[..bytes.len()].copy_from_slice(bytes);
        Image {
            lines,
            len: bytes.len() as u32,
        }
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<Line, u8>(&self.lines)[..self.len as usize]
    }

    /// The image's first byte, 128-byte aligned, valid while the image lives (a heap block
    /// that moving the `Image` does not move) for its whole lines: its length rounded up to
    /// 128 bytes (zeros after the record's bytes), so a face may read whole words past the
    /// length its lane entry gives, as it does in a slot.
    pub(super) fn ptr(&self) -> NonNull<u8> {
        NonNull::from(&*self.lines).cast()
    }

    /// The image as a face reads it: [`ptr`](Self::ptr) and its lane entry, its length,
    /// which (unlike `ptr`) is valid only while the `Image` stays where it is: the faces read
    /// it at once, while the image is borrowed.
    pub(super) fn rec(&self) -> Rec {
        Rec {
            ptr: self.ptr(),
            lane: NonNull::from(&self.len),
        }
    }
}

/// Moves adopted records into `buf` (`size` bytes each); returns how many.
pub(super) fn drain_adopted(adopted: &mut VecDeque<Image>, buf: &mut [u8], size: usize) -> usize {
    let mut n = 0;
    for dst in buf.chunks_exact_mut(size) {
        let Some(image) = adopted.pop_front() else {
            break;
        };
        dst[..image.len as usize].copy_from_slice(image.bytes());
        n += 1;
    }
    n
}

/// Adopts what dead sibling receivers (MPMC) had claimed (at-least-once delivery): their
/// records' images are copied out, their slots released, and the records handed back to the
/// ring (see [`hand_back`]).
pub(super) fn adopt(
    seg: &Segment,
    cons: &mut Cons,
    adopted: &mut VecDeque<Image>,
    (format, lane): (Format, Lane),
    size: usize,
) {
    let Cons::Mpmc(c) = cons else {
        return;
    };
    seg.settle_orphans(Some(c), |p| {
        let rec = Rec {
            ptr: p,
            lane: lane.of_record(p),
        };
        // SAFETY: `adopt` hands out a slot it holds (stamp `adopted`) of `size` bytes, with
        // its lane entry, valid until it releases the slot after this closure; `image` reads
        // only inside it and returns at most `size`.
        if let Some(n) = unsafe { (format.image)(rec, size) } {
            // SAFETY: as above: `n <= size` bytes of the held slot, copied out before release.
            adopted.push_back(Image::copy_of(unsafe {
                std::slice::from_raw_parts(p.as_ptr(), n.min(size))
            }));
        }
    });
    hand_back(seg, c, lane, adopted);
}

/// Pushes adopted records back into the ring (at the tail, announced as a producer's claim),
/// so that any receiver gets them and neither this receiver's drop nor its death can lose
/// them. Records that do not fit (the ring is full) stay in `adopted`: this receiver delivers
/// them first, and tries again at its next housekeeping and when it is dropped.
pub(super) fn hand_back(
    seg: &Segment,
    c: &mut ring::MpmcConsumer,
    lane: Lane,
    adopted: &mut VecDeque<Image>,
) {
    let has_lane = seg.lane().is_some();
    let mut n = 0;
    while let Some(image) = adopted.front() {
        let pushed = c.push_back_with(|slot| {
            // SAFETY: `push_back_with` hands out a claimed slot of `record_size` bytes; the
            // image came from a slot of this channel, so it is at most that long; caller
            // memory cannot overlap the claimed slot.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    image.ptr().as_ptr(),
                    slot.as_ptr(),
                    image.len as usize,
                )
            }
            if has_lane {
                // SAFETY: the claimed slot's lane entry (a slot of this ring: `of_record`),
                // ours until the push publishes it, as the slot is.
                unsafe { lane.of_record(slot).as_ptr().write(image.len) };
            }
        });
        if pushed.is_err() {
            break;
        }
        adopted.pop_front();
        n += 1;
    }
    if n > 0 {
        seg.wake_all(Role::Receiver);
    }
}
