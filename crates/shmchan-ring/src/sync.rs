//! The only module that names atomics, fences, spin and prefetch hints and checked cells.
//!
//! Under `--cfg loom` every item is swapped for loom's model-checked version (tokio's
//! `tokio/src/loom/` pattern), so the whole crate runs inside loom models over heap memory.
//!
//! Loom's atomics are handles into loom's execution, not plain integers, so under loom they are
//! constructed in place by [`init_u32`]/[`init_u64`] (never reinterpreted from raw bytes) and the
//! shared structs change size; the frozen-layout assertions therefore apply to real builds only.
//!
//! [`SlotTracker`] is how loom sees slot payloads: the ring copies records through raw
//! pointers, which loom cannot observe, so each slot has a tracker (a zero-sized no-op in real
//! builds, a `loom::cell::UnsafeCell<()>` under loom) that every payload access touches. A missing
//! happens-before edge between a producer's write and a consumer's read of the same slot (or the
//! reverse, for slot reuse) then makes loom fail with a causality violation.

#[cfg(not(loom))]
pub(crate) use core::hint::spin_loop;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use core::sync::atomic::Ordering;
#[cfg(loom)]
pub(crate) use loom::hint::spin_loop;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64};

/// The publisher's half of an asymmetric fence: a compiler fence, no instruction. Sound only
/// where the other half — a barrier that makes every CPU running the publisher execute a full
/// fence, `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` across processes — is issued by every
/// waiter between its announcement and its re-check (see [`crate::wait`]).
///
/// Under loom it is a `SeqCst` fence: loom cannot interrupt a thread, so it sees the full fence
/// the heavy barrier's interrupt executes on the publisher's CPU at the publisher's program
/// point — which is what the barrier guarantees for any point the publisher is at (before the
/// interrupt, everything it did is visible to the waiter; after it, everything the waiter did
/// before the barrier is visible to it).
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn light_fence() {
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// See the real builds' `light_fence`.
#[cfg(loom)]
pub(crate) fn light_fence() {
    fence(Ordering::SeqCst);
}

/// The cache line size the prefetch hints step by (x86-64 and most other targets).
pub(crate) const CACHE_LINE: u64 = 64;

/// Whether this CPU announces `prefetchw` (CPUID 8000_0001h ECX bit 8, "PRFCHW"), asked once:
/// 0 not yet known, 1 yes, 2 no.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
static PRFCHW: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[cold]
fn detect_prfchw() -> bool {
    let max_ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    let yes =
        max_ext >= 0x8000_0001 && core::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 8) != 0;
    PRFCHW.store(
        if yes { 1 } else { 2 },
        core::sync::atomic::Ordering::Relaxed,
    );
    yes
}

/// Hints the CPU to fetch the cache line holding `p` for reading (x86-64 `prefetcht0`); a
/// no-op on other targets and under Miri and loom.
#[inline(always)]
pub(crate) fn prefetch_read(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    // SAFETY: a hint: changes no memory and never faults, whatever the address (SSE, always
    // present on x86-64).
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    let _ = p;
}

/// Hints the CPU to fetch the cache line holding `p` in a writable state (x86-64 `prefetchw`),
/// so that a later store to it does not wait for the line's ownership to move from another core.
/// Only on CPUs that announce the instruction (asked once, then one relaxed load per call); a
/// no-op on other CPUs and targets and under Miri and loom.
#[inline(always)]
pub(crate) fn prefetch_write(p: *const u8) {
    if can_prefetch_write() {
        // SAFETY: asked just above.
        unsafe { prefetch_write_unchecked(p) };
    }
}

/// Whether [`prefetch_write_unchecked`] may run: this CPU announces `prefetchw` (asked once).
/// Always under Miri and loom, where the hint is a no-op and the callers' paths run as on a CPU
/// that has it; never on other targets, where it is a no-op too.
#[inline(always)]
pub(crate) fn can_prefetch_write() -> bool {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    {
        let known = PRFCHW.load(core::sync::atomic::Ordering::Relaxed);
        known == 1 || (known == 0 && detect_prfchw())
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    {
        cfg!(any(miri, loom))
    }
}

/// [`prefetch_write`] without its check of the CPU, for a caller that asked
/// [`can_prefetch_write`] once and keeps the answer (the one-record push: see
/// `Core::write_prefetch_ahead`), so that the hint costs no load of a global per record.
///
/// # Safety
/// [`can_prefetch_write`] returned `true` in this process.
#[inline(always)]
pub(crate) unsafe fn prefetch_write_unchecked(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    // SAFETY: the CPU announced `prefetchw` (the caller's contract). It is a hint: it changes
    // no register, flag or memory content and never faults, whatever the address. Inline asm
    // rather than `_mm_prefetch::<_MM_HINT_ET0>`, because without the `prfchw` target feature
    // that intrinsic lowers to a plain read prefetch, which leaves the store to wait for
    // ownership anyway.
    unsafe {
        core::arch::asm!(
            "prefetchw [{p}]",
            p = in(reg) p,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    let _ = p;
}

/// Per-slot access tracker: zero-sized and free in real builds.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct SlotTracker;

#[cfg(not(loom))]
impl SlotTracker {
    /// Records a read of the slot's payload (no-op outside loom).
    #[inline(always)]
    pub(crate) fn read(&self) {}
    /// Records a write of the slot's payload (no-op outside loom).
    #[inline(always)]
    pub(crate) fn write(&self) {}
}

/// Per-slot access tracker: a loom-checked cell whose accesses stand for payload accesses.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct SlotTracker(loom::cell::UnsafeCell<()>);

#[cfg(loom)]
impl SlotTracker {
    /// Records a read of the slot's payload: loom checks it happens after the last write.
    pub(crate) fn read(&self) {
        self.0.with(|_| ());
    }
    /// Records a write of the slot's payload: loom checks it happens after every earlier access.
    pub(crate) fn write(&self) {
        self.0.with_mut(|_| ());
    }
}

/// Initialises the atomic at `p` to `v`.
///
/// Real builds store through the atomic (an opener may already be polling the region);
/// loom builds construct loom's object in place.
///
/// # Safety
/// `p` is valid for writes of an `AtomicU32`, aligned, and (real builds) its bytes are
/// initialised memory.
#[inline]
pub(crate) unsafe fn init_u32(p: *mut AtomicU32, v: u32) {
    #[cfg(not(loom))]
    // SAFETY: the caller guarantees `p` is aligned, valid and initialised; a shared reference to
    // an atomic permits concurrent access.
    unsafe {
        (*p).store(v, Ordering::Relaxed);
    }
    #[cfg(loom)]
    // SAFETY: the caller guarantees `p` is aligned and valid for writes.
    unsafe {
        p.write(AtomicU32::new(v));
    }
}

/// Initialises the atomic at `p` to `v` (see [`init_u32`]).
///
/// # Safety
/// As for [`init_u32`].
#[inline]
pub(crate) unsafe fn init_u64(p: *mut AtomicU64, v: u64) {
    #[cfg(not(loom))]
    // SAFETY: the caller guarantees `p` is aligned, valid and initialised; a shared reference to
    // an atomic permits concurrent access.
    unsafe {
        (*p).store(v, Ordering::Relaxed);
    }
    #[cfg(loom)]
    // SAFETY: the caller guarantees `p` is aligned and valid for writes.
    unsafe {
        p.write(AtomicU64::new(v));
    }
}

/// Initialises `n` slot trackers from `p` (nothing to do for the zero-sized real tracker).
///
/// # Safety
/// `p` is valid for writes of `n` `SlotTracker`s and aligned.
#[inline]
pub(crate) unsafe fn init_trackers(p: core::ptr::NonNull<SlotTracker>, n: usize) {
    #[cfg(not(loom))]
    let _ = (p, n);
    #[cfg(loom)]
    for i in 0..n {
        // SAFETY: the caller guarantees `p` is aligned and valid for writes of n trackers.
        unsafe { p.add(i).write(SlotTracker(loom::cell::UnsafeCell::new(()))) };
    }
}

/// The tracker of slot `i` among those at `p`.
///
/// # Safety
/// (loom builds) `p` points at `i + 1` or more trackers initialised by [`init_trackers`] that
/// outlive `'a`.
#[inline(always)]
pub(crate) unsafe fn tracker_at<'a>(
    p: core::ptr::NonNull<SlotTracker>,
    i: usize,
) -> &'a SlotTracker {
    #[cfg(not(loom))]
    {
        let _ = (p, i);
        &SlotTracker
    }
    #[cfg(loom)]
    // SAFETY: the caller guarantees tracker i is initialised and lives for 'a.
    unsafe {
        p.add(i).as_ref()
    }
}
