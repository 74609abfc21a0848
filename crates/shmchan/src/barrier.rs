//! The asymmetric fence between a publisher and the waiters it may have to wake.
//!
//! Every publish (a record sent, a slot freed) ends with "does anybody sleep?": one load of the
//! waiters' count. That load must not be ordered before the publish, or a waiter that announced
//! itself and re-checked in between would sleep through the record (the Dekker pair of
//! `shmchan_ring::wait`). The plain answer is a hardware fence on every publish — on x86-64 an
//! `mfence`, which waits for the store buffer to drain, and with it for the cache line the
//! consumer just read to come back: most of the cost of a one-record send across two cores.
//!
//! So the cost moves to the side that is about to sleep anyway. A process that registers for
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` ([`Publish::for_this_process`]) publishes with
//! a compiler fence only ([`Publish::Unfenced`]); every waiter, after announcing itself and
//! before re-checking, issues that barrier ([`after_announce`]), which makes each CPU running a
//! thread of a registered process execute a full fence. Whatever point a publisher is at when
//! its CPU takes that fence, either its publish is visible to the waiter's re-check or its
//! load of the count sees the announcement (`shmchan_ring::WaitCell::take_tokens_unfenced`).
//! A publisher that is not running at that moment passed through a context switch, a full
//! fence of its own.
//!
//! Where the kernel or a seccomp filter refuses `membarrier`, nothing is lost: a process that
//! cannot register publishes with the hardware fence ([`Publish::Fenced`]), and a waiter that
//! cannot issue the barrier sleeps in short slices ([`slice()`]), so a wake-up a registered
//! publisher skipped costs it at most one slice of latency, never a record.
//!
//! How loom sees it: `shmchan_ring`'s `light_fence` is a `SeqCst` fence under loom (the fence
//! the barrier's interrupt runs on the publisher's CPU), and [`after_announce`] adds nothing
//! there (the announcement's own `SeqCst` fence is the waiter's half). The models of the
//! protocol (`crate::loom_models`, `shmchan_ring`'s `loom_wait`) fail when either half is
//! removed.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use shmchan_os as os;
use shmchan_ring::WaitCell;

/// How a publisher orders its publish before its look at the waiters' count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Publish {
    /// A hardware `SeqCst` fence (this process is not registered for global barriers).
    Fenced,
    /// A compiler fence: waiters issue the global barrier for us.
    Unfenced,
}

impl Publish {
    /// What a publisher of this process may use: [`Publish::Unfenced`] once the process is
    /// registered for global expedited barriers (asked once per process and per fork).
    pub(crate) fn for_this_process() -> Publish {
        if os::membarrier::register_global() {
            Publish::Unfenced
        } else {
            Publish::Fenced
        }
    }

    /// After a publish: how many tokens to post to `cell`'s sleepers (see
    /// `shmchan_ring::WaitCell::take_tokens`).
    #[inline(always)]
    pub(crate) fn take_tokens(self, cell: &WaitCell) -> u32 {
        match self {
            Publish::Fenced => cell.take_tokens(),
            Publish::Unfenced => cell.take_tokens_unfenced(),
        }
    }

    /// After a publish: whether anybody sleeps on `cell` (the fast path of a wake that is
    /// decided later, as the senders' low-water mark is).
    #[inline(always)]
    pub(crate) fn sleepers(self, cell: &WaitCell) -> bool {
        match self {
            Publish::Fenced => cell.has_sleepers(),
            Publish::Unfenced => cell.has_sleepers_unfenced(),
        }
    }
}

/// Whether this process can issue the global barrier: 0 not known yet, 1 yes, 2 no.
static BARRIER: AtomicU8 = AtomicU8::new(0);

/// The waiter's half: after announcing itself and before re-checking, makes every CPU that
/// runs an unfenced publisher execute a full fence. Returns `false` when the barrier cannot
/// be issued in this process (then it waits in short slices: see [`slice()`]).
pub(crate) fn after_announce() -> bool {
    #[cfg(loom)]
    {
        true
    }
    #[cfg(not(loom))]
    {
        // Relaxed: a cache of what the kernel answered.
        if BARRIER.load(Ordering::Relaxed) == 2 {
            return false;
        }
        let ok = os::membarrier::global_barrier().is_ok();
        BARRIER.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
        ok
    }
}

/// The longest a sleeper stays in the kernel before it re-checks: `normal` (the blocking
/// layer's time slice), or 1 ms in a process that cannot issue the global barrier (a
/// registered publisher elsewhere may have skipped its wake-up; the re-check bounds what that
/// costs).
pub(crate) fn slice(normal: Duration) -> Duration {
    // Relaxed: see `after_announce`.
    if BARRIER.load(Ordering::Relaxed) == 2 {
        UNBARRIERED_SLICE.min(normal)
    } else {
        normal
    }
}

/// See [`slice()`].
const UNBARRIERED_SLICE: Duration = Duration::from_millis(1);
