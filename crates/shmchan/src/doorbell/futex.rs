//! The futex doorbell (the default): a counting semaphore in the wait cell's `permits` word, in
//! the segment itself. Nothing to create or remove.

use std::time::Instant;

use shmchan_os as os;

use super::{pause_until, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unreached};
use crate::sync::{futex_wait, futex_wake, AtomicU32, Ordering};
use crate::table::MAX_ENDPOINTS;

pub(super) const SPEC: Spec = Spec {
    name: "futex",
    code: 1,
    imp: &Futex,
};

struct Futex;

impl Kind for Futex {
    fn create(&self, _mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        Ok((Desc::default(), Box::new(Futex)))
    }

    fn open(&self, _desc: &Desc, _reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        Ok(Box::new(Futex))
    }

    fn describe(&self, _desc: &Desc) -> String {
        "a futex word in the segment".into()
    }
}

impl Bell for Futex {
    fn post(&self, at: &Site<'_>, n: u32) {
        // SYNC(futex-permit): Release pairs with the Acquire CAS in `take`; the tokens are the
        // futex word itself, so a sleeper that has not reached futex_wait yet sees the new
        // value and does not sleep.
        at.cell.permits().fetch_add(n, Ordering::Release);
        let _ = futex_wake(at.cell.permits(), n);
    }

    fn wait(&self, at: &Site<'_>, _slot: usize, until: Instant) -> Slept {
        take(at.cell.permits(), until)
    }
}

/// More futex tokens than any legitimate ringing can leave (waiters × a margin for abandoned
/// tokens).
const MAX_PERMITS: u32 = 4 * MAX_ENDPOINTS as u32;

/// The wait: a counting semaphore in the cell's `permits` word.
fn take(word: &AtomicU32, until: Instant) -> Slept {
    loop {
        // SYNC(futex-permit): Acquire pairs with the Release fetch_add in `post`.
        let p = word.load(Ordering::Acquire);
        if p > MAX_PERMITS {
            // Ringers post at most one token per announced waiter, and there are at most
            // MAX_ENDPOINTS waiters: a larger count was written by a hostile or corrupted peer.
            // Drop it (the waiters re-check the ring on every wake anyway).
            let _ = word.compare_exchange(p, 0, Ordering::Relaxed, Ordering::Relaxed);
            continue;
        }
        if p > 0 {
            // SYNC(futex-permit): Acquire, as the load above.
            if word
                .compare_exchange_weak(p, p - 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Slept::Token;
            }
            continue;
        }
        let now = Instant::now();
        if now >= until {
            return Slept::TimedOut;
        }
        match futex_wait(word, 0, Some(until - now)) {
            // The slice is over: say so without reading the word again (the caller's
            // housekeeping first checks that the memory is still there: a channel file
            // truncated meanwhile would fault on that read).
            Ok(os::FutexWait::TimedOut) => return Slept::TimedOut,
            Ok(_) => {}
            // EFAULT/EINVAL cannot happen on a mapped, aligned word; do not spin if they did.
            Err(_) => return pause_until(until),
        }
    }
}
