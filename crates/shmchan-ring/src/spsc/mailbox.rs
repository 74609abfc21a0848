//! The SPSC mailbox's protocol (layout and rationale: the layout module): the producer's
//! copy of a one-record publish onto its cursor's line, and the caught-up consumer's seqlock
//! read of it into its own line.

use core::ptr::NonNull;

use crate::layout::{ProducerLine, RingInfo, RingKind, MAILBOX_MAX, MAILBOX_WORDS};
use crate::raw::Core;
use crate::sync::{fence, Ordering};

/// The mailbox words a one-record publish of `info`'s ring fills (`record_size / 8`), or 0:
/// an MPMC ring, or records larger than [`MAILBOX_MAX`], not whole words, or aligned above 8.
pub(crate) fn words(info: &RingInfo) -> usize {
    if info.kind == RingKind::Spsc {
        spsc_words(info.record_size as usize, info.record_align as usize)
    } else {
        0
    }
}

/// [`words`] of an SPSC ring whose records are `size` bytes aligned to `align`.
#[inline(always)]
const fn spsc_words(size: usize, align: usize) -> usize {
    if size <= MAILBOX_MAX && size % 8 == 0 && align <= 8 {
        size / 8
    } else {
        0
    }
}

/// Whether the ring has a mailbox (`core.mbox_words != 0`), known at compile time for a
/// sized `T`: [`words`] of a ring whose records are `T`s.
///
/// # Safety
/// A sized `T` is the ring's record: the SPSC ring's record size is `size_of::<T>()` and its
/// record alignment `align_of::<T>()` (the contract of `SpscProducer::try_push_of`).
#[inline(always)]
pub(super) unsafe fn has<T>(core: &Core) -> bool {
    if size_of::<T>() == 0 {
        return core.mbox_words != 0;
    }
    let has = spsc_words(size_of::<T>(), align_of::<T>()) != 0;
    debug_assert_eq!(has, core.mbox_words != 0);
    has
}

/// A new producer's first act: clears the tag. A predecessor that died between its
/// mailbox's tag and its cursor store left a tag naming a position it never published; if
/// the new producer published that position by a batch (which leaves the mailbox alone), a
/// caught-up consumer would take the dead one's copy. Our first publish's Release store of
/// the cursor orders this store before anything a consumer reads of ours.
pub(super) fn forget(core: &Core) {
    if core.mbox_words != 0 {
        core.producer().tag.store(0, Ordering::Relaxed);
    }
}

/// Copies the record of position `pos` (written, not yet published, at `record`) into the
/// mailbox: tag 0, the words, tag `pos + 1`. For records of a sized `T` (see
/// `SpscProducer::try_push_of`) exactly their words, inline; otherwise one or two words inline
/// (an 8-byte record's, or a byte channel's short message), more out of line.
///
/// # Safety
/// The caller is the ring's producer, `core.mbox_words != 0`, and `record` is the slot of
/// `pos`, which it wrote and has not published; a sized `T` is the ring's record.
#[inline(always)]
pub(super) unsafe fn fill<T>(core: &Core, pos: u64, record: NonNull<u8>) {
    let line = core.producer();
    let src = record.as_ptr().cast::<u64>();
    line.tag.store(0, Ordering::Relaxed);
    // SYNC(spsc-mailbox-begin): pairs with the consumer's Acquire fence in `take`: a consumer
    // that reads any of the words below sees the tag 0 (or later) on its second look, so it
    // never takes a half-written copy.
    fence(Ordering::Release);
    if size_of::<T>() != 0 {
        debug_assert_eq!(core.mbox_words, size_of::<T>() / 8);
        for i in 0..(size_of::<T>() / 8).min(MAILBOX_WORDS) {
            // SAFETY: the ring's record is a `T` of whole words (a mailbox ring's), which the
            // producer wrote and owns until it publishes (caller contract).
            line.words[i].store(unsafe { src.add(i).read_unaligned() }, Ordering::Relaxed);
        }
    } else {
        // SAFETY: a mailbox ring's record is `mbox_words` ≥ 1 whole words (`words`), which the
        // producer wrote and owns until it publishes (caller contract); records are at least
        // 1-aligned, hence the unaligned read.
        line.words[0].store(unsafe { src.read_unaligned() }, Ordering::Relaxed);
        let n = core.mbox_words;
        if n > 1 {
            if n == 2 {
                // SAFETY: as above (two words).
                line.words[1].store(unsafe { src.add(1).read_unaligned() }, Ordering::Relaxed);
            } else {
                // SAFETY: as above.
                unsafe { fill_rest(line, src, n) };
            }
        }
    }
    // Relaxed: a consumer reads the mailbox only after an Acquire load of the cursor that
    // found this record's publish (SYNC(spsc-publish), the store after this one), which orders
    // the words and this tag before its reads; the fences order the later overwrites. (Loom:
    // weakening either fence fails the SPSC models.)
    line.tag.store(pos.wrapping_add(1), Ordering::Relaxed);
}

/// The mailbox's words after the first (`fill`'s out-of-line part).
///
/// # Safety
/// `src` is valid for reads of `n ≤ MAILBOX_WORDS` words (unaligned).
#[inline(never)]
unsafe fn fill_rest(line: &ProducerLine, src: *const u64, n: usize) {
    for i in 1..n.min(MAILBOX_WORDS) {
        // SAFETY: i < n words at `src` (caller contract).
        line.words[i].store(unsafe { src.add(i).read_unaligned() }, Ordering::Relaxed);
    }
}

/// The record of position `head` from the mailbox, if the mailbox holds it untorn: copied
/// into the consumer's line (its own, beside its cursor), whose pointer is returned. That copy
/// stays where it is however the consumer's handle moves, until its next look.
///
/// For records of a sized `T` (see `SpscProducer::try_push_of`) exactly their words are copied,
/// inline.
///
/// # Safety
/// The caller is the ring's consumer, `core.mbox_words != 0`, its Acquire load of the cursor
/// just found `head + 1`, and no record it handed out from the copy is still in use; a sized
/// `T` is the ring's record.
#[inline(always)]
pub(super) unsafe fn take<T>(core: &Core, head: u64) -> Option<NonNull<u8>> {
    let line = core.producer();
    let want = head.wrapping_add(1);
    // Relaxed: the caller's Acquire load of the cursor found exactly this record's publish
    // (SYNC(spsc-publish)), so the producer's words and tag for it are visible; a tag that is
    // not `want` is a later record's (or a stale or hostile one): the slot has it.
    if want == 0 || line.tag.load(Ordering::Relaxed) != want {
        return None;
    }
    let copy = core.copy();
    if size_of::<T>() != 0 {
        for i in 0..(size_of::<T>() / 8).min(MAILBOX_WORDS) {
            // SAFETY: `copy` is the consumer line's MAILBOX_WORDS words, the consumer role's
            // alone, which the caller is; no record handed out from it is in use (caller
            // contract).
            unsafe {
                copy.as_ptr()
                    .add(i)
                    .write(line.words[i].load(Ordering::Relaxed))
            };
        }
    } else {
        // SAFETY: forwarded caller contract.
        unsafe { copy_words(core, line, copy) };
    }
    // SYNC(spsc-mailbox-begin): pairs with the producer's Release fence after it clears the
    // tag: if a word read above was a later record's, the tag read below is not `want`.
    fence(Ordering::Acquire);
    if line.tag.load(Ordering::Relaxed) != want {
        return None;
    }
    Some(copy.cast())
}

/// `take`'s copy of the mailbox's `mbox_words` words into the consumer's `copy`, for records
/// of a size known only at run time: two words inline, more out of line.
///
/// # Safety
/// As for `take`; `copy` is `core.copy()`.
#[inline(always)]
unsafe fn copy_words(core: &Core, line: &ProducerLine, copy: NonNull<u64>) {
    // SAFETY: `copy` is the consumer line's MAILBOX_WORDS (≥ 2) words (1 ≤ mbox_words ≤
    // MAILBOX_WORDS), written and read only by the consumer role, which the caller is; no
    // record handed out from it is in use (caller contract).
    unsafe {
        copy.as_ptr().write(line.words[0].load(Ordering::Relaxed));
        // Two words at least (the mailbox and the copy have six; a word beyond the record is
        // copied and never read), more out of line.
        copy.as_ptr()
            .add(1)
            .write(line.words[1].load(Ordering::Relaxed));
        let n = core.mbox_words;
        if n > 2 {
            copy_rest(line, copy.as_ptr(), n);
        }
    }
}

/// The mailbox's words after the second, into the consumer's copy (`take`'s out-of-line
/// part).
///
/// # Safety
/// `copy` is valid for writes of `n ≤ MAILBOX_WORDS` words.
#[inline(never)]
unsafe fn copy_rest(line: &ProducerLine, copy: *mut u64, n: usize) {
    for i in 2..n.min(MAILBOX_WORDS) {
        // SAFETY: i < n words at `copy` (caller contract).
        unsafe { copy.add(i).write(line.words[i].load(Ordering::Relaxed)) };
    }
}
