//! A record read in place: the [`SlotRead`] a peek hands its face, what the receiver holds
//! for it ([`Held`]), and its release.

use std::ptr::NonNull;

use shmchan_ring as ring;

use super::{Cons, Image, RecvCore};
use crate::barrier::Publish;
use crate::segment::Role;
use crate::table::Count;

/// What an MPMC [`SlotRead`] holds, kept in the receiver (see [`RecvCore::held`]).
///
/// An SPSC peek records nothing: its record is the ready one at the consumer's cursor
/// (`SpscConsumer::next_ready`), freed by `release_one`. Sound because nothing else frees
/// records while the guard lives (it borrows the receiver; an SPSC receiver adopts nothing),
/// and a guard leaked (`mem::forget`) unreleased leaves its record in the ring, to be read
/// again. So a release tells the two apart by the ring kind alone, without loading or storing
/// a record of the peek.
pub(super) enum Held {
    None,
    /// An MPMC claim, detached from the handle's borrow.
    Ring(ring::Detached),
    /// An adopted record's image: the guard's pointer points into it (owned here; read
    /// through this field only for its lane entry).
    Image(Image),
}

impl RecvCore {
    /// A guard was leaked (`mem::forget`) and never released its MPMC claim: it cannot be
    /// undone, so the record is released (it used to stay claimed for good and hold up every
    /// receiver behind it). A leaked SPSC guard's record stays in the ring and is read again
    /// (nothing is held for it: see [`Held`]).
    #[cold]
    pub(super) fn settle_leaked(&mut self) {
        self.release_held_general(false);
    }

    /// Releases what a [`SlotRead`] held: the ring's slot is freed and senders waiting for
    /// room are woken (at the low-water mark, or all of them when `all`); an image is dropped.
    #[inline(always)]
    fn release_held(&mut self, all: bool) {
        if self.base.plain() && !all {
            // SAFETY: plain (just above).
            let c = unsafe { self.cons.spsc_of_plain() };
            // SAFETY: the guard's record came from `next_ready` (or `next_ready_of`), and
            // nothing was freed since: the guard borrowed the receiver (see `Held`).
            unsafe { c.release_one() };
            self.low_water_as(Publish::Unfenced);
            return;
        }
        self.release_held_other(all);
    }

    /// [`release_held`](Self::release_held) on an endpoint that is not plain, or for a
    /// release that wakes every sender: out of line, so that a guard's drop glue is small
    /// enough for its callers to inline (it stayed a call otherwise).
    #[inline(never)]
    fn release_held_other(&mut self, all: bool) {
        // An SPSC record: nothing recorded to check (see `Held`).
        if let Cons::Spsc(c) = &mut self.cons {
            // SAFETY: the guard's record came from `next_ready`, and nothing was freed since:
            // the guard borrowed the receiver (see `Held`).
            unsafe { c.release_one() };
            self.after_release(all);
            return;
        }
        self.release_held_general(all);
    }

    /// [`release_held`](Self::release_held) of an MPMC claim or an adopted record's image.
    fn release_held_general(&mut self, all: bool) {
        if let Held::Ring(d) = std::mem::replace(&mut self.held, Held::None) {
            match &mut self.cons {
                Cons::Spsc(c) => c.reattach(d).release(),
                // SAFETY: `d` is this consumer's claim, detached by `peek_slot` and held
                // since.
                Cons::Mpmc(c) => unsafe { c.reattach(d) }.release(),
            }
            self.after_release(all);
        }
        // Otherwise nothing held, or an adopted record's image (dropped here).
    }

    /// After a release of ring records: wakes senders waiting for room, at the low-water
    /// mark (or all of them when `all`).
    #[inline(always)]
    fn after_release(&self, all: bool) {
        if all {
            if (self.base.seg).wake_all_after(Role::Sender, self.base.publish) {
                self.base.tally.add(Count::Posts, 1);
            }
        } else {
            // The low-water mark, as for a copying receive.
            self.low_water();
        }
    }
}

/// A record read in place: a published slot, released (with the low-water wake-up) when
/// dropped, or the image of a record adopted from a dead sibling receiver (already out of the
/// receiver's queue).
///
/// Two words, so that every layer returns it in registers: an MPMC claim or an image is kept in
/// the receiver (`RecvCore::held`), which the guard borrows for its life; an SPSC record needs
/// no record (see [`Held`]).
pub(crate) struct SlotRead<'a> {
    pub(super) rx: &'a mut RecvCore,
    pub(super) ptr: NonNull<u8>,
}

impl SlotRead<'_> {
    /// The record: `record_size` readable bytes aligned to the record alignment (a slot
    /// holding a published record that no producer reuses until this value is dropped), or
    /// an adopted record's image (as long as its lane entry says, rounded up to whole 8-byte
    /// words; 128-byte aligned).
    #[inline]
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The record's entry in the channel's length lane (see `Rec`), valid as long as the
    /// record: an adopted image's own, or the ring slot's.
    #[inline(always)]
    pub(crate) fn lane(&self) -> NonNull<u32> {
        let lane = self.rx.base.lane;
        match &self.rx.cons {
            // The peeked record is the one at the consumer's cursor (see `Held`; an SPSC
            // receiver adopts nothing).
            Cons::Spsc(c) => lane.at(c.position()),
            Cons::Mpmc(_) => match &self.rx.held {
                Held::Image(image) => image.rec().lane,
                _ => lane.of_record(self.ptr),
            },
        }
    }

    /// Releases a record that is malformed (nothing to deliver) and wakes any sender waiting
    /// for room.
    pub(crate) fn discard(self) {
        self.rx.release_held(true);
    }

    /// Releases the record: what the guard that holds this value does when it is dropped.
    ///
    /// Not a `Drop` of its own: the drop glue of a type of this crate stayed out of line in the
    /// callers' code (a call, and a fifth of the instructions of a one-thread `reserve` +
    /// `peek`), where a guard's own `Drop`, generic or `inline(always)`, is inlined. Each guard
    /// that holds a `SlotRead` calls this exactly once, in its `Drop`; one dropped without it
    /// (none is) would leave the record held until the receiver's next call settles it.
    #[inline(always)]
    pub(crate) fn release(&mut self) {
        self.rx.release_held(false);
    }
}
