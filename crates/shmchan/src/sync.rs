//! The only module that names the atomics of the shared segment, and the futex calls on them.
//!
//! Under `--cfg loom` every item is swapped for loom's model-checked version (the pattern of
//! `shmchan-ring`'s `sync`, itself tokio's `tokio/src/loom/`), so the endpoint table's protocol
//! (`crate::table`) runs inside loom models over heap memory (`crate::loom_models`). The ring's
//! own types (`shmchan_ring::WaitCell`, `Working`) swap with the same `cfg`.
//!
//! Loom's atomics are handles into loom's execution, not plain integers: under loom the shared
//! structs change size, so the frozen-layout assertions apply to real builds only, and the
//! models construct their tables by value (never by reinterpreting mapped bytes). The real
//! segment code still compiles under loom, but only the models run there.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};
#[cfg(loom)]
pub(crate) use std::sync::atomic::Ordering;

/// `FUTEX_WAIT` on a shared word (see [`shmchan_os::futex_wait`]).
#[cfg(not(loom))]
pub(crate) use shmchan_os::futex_wait;
/// `FUTEX_WAKE` on a shared word (see [`shmchan_os::futex_wake`]).
#[cfg(not(loom))]
pub(crate) use shmchan_os::futex_wake;

/// Loom has no futex: a wait is a yield (the caller re-checks the word, as after a spurious
/// wake-up). The futex doorbell is not modelled here; the protocol it serves is
/// (`shmchan_ring::wait`'s loom models use a loom semaphore instead).
#[cfg(loom)]
pub(crate) fn futex_wait(
    _word: &AtomicU32,
    _expected: u32,
    _timeout: Option<std::time::Duration>,
) -> Result<shmchan_os::FutexWait, shmchan_os::Error> {
    loom::thread::yield_now();
    Ok(shmchan_os::FutexWait::Woken)
}

/// Loom has no futex: waiters re-check the word after each yield, so a wake is a no-op.
#[cfg(loom)]
pub(crate) fn futex_wake(_word: &AtomicU32, _n: u32) -> Result<u32, shmchan_os::Error> {
    Ok(0)
}

/// Lets other threads run (under loom, lets the model schedule another thread).
#[cfg(not(loom))]
pub(crate) fn yield_now() {
    std::thread::yield_now();
}

/// Lets other threads run (under loom, lets the model schedule another thread).
#[cfg(loom)]
pub(crate) fn yield_now() {
    loom::thread::yield_now();
}
