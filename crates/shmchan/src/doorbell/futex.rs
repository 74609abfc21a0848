//! The futex doorbell (the default): a counting semaphore in the wait cell's `permits` word, in
//! the segment itself. Nothing to create or remove.
//!
//! Where the kernel has `futex_waitv` (Linux 5.16+), a waiter sleeps on the permits word and on
//! its peers' wake words at once (`crate::table::wake`): the kernel marks a dead peer's word
//! `OWNER_DIED` and wakes it, so the waiter hears of the death at once and reaps
//! ([`Slept::PeerDied`]) instead of at the end of its time slice.

use std::time::Instant;

use shmchan_os as os;

use super::{pause_until, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unreached};
use crate::sync::{futex_wait, futex_wake, AtomicU32, Ordering};
use crate::table::MAX_ENDPOINTS;
use std::sync::atomic::AtomicU32 as StdU32;
#[cfg(not(loom))]
use std::sync::atomic::Ordering as StdOrdering;

pub(super) const SPEC: Spec = Spec {
    name: "futex",
    code: 1,
    imp: &FutexKind,
};

struct FutexKind;

/// The bell: which deaths (a slot's claim, by its life word) this process's waiters were
/// already told of, so that a word left `OWNER_DIED` (a reap that has to wait for the
/// token, or a forged word) wakes nobody twice.
#[cfg_attr(loom, allow(dead_code))]
struct Futex {
    told: [StdU32; MAX_ENDPOINTS],
}

impl Futex {
    fn new() -> Box<Futex> {
        Box::new(Futex {
            told: std::array::from_fn(|_| StdU32::new(u32::MAX)),
        })
    }
}

impl Kind for FutexKind {
    fn create(&self, _mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        Ok((Desc::default(), Futex::new()))
    }

    fn open(&self, _desc: &Desc, _reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        Ok(Futex::new())
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

    #[cfg_attr(loom, allow(unused_variables))]
    fn wait(&self, at: &Site<'_>, slot: usize, until: Instant) -> Slept {
        #[cfg(not(loom))]
        if crate::table::wake::waitv() {
            return self.take_watching(at, slot, until);
        }
        take(at.cell.permits(), until)
    }
}

/// Wake-ups and changed values that bring neither a token nor a death, past which a wait
/// stops watching the wake words until its slice ends (a peer writing them in a loop).
#[cfg(not(loom))]
const MAX_STIRS: u32 = 64;

/// How long a wait sleeps while a live peer's wake word holds no TID before it returns
/// [`Slept::TimedOut`], so that its caller looks at the peers (`wait::housekeep`): a peer that
/// died before its keeper stored the TID (killed between its registration and the link) is
/// never marked by the kernel, and is found dead there.
#[cfg(not(loom))]
const REWATCH: std::time::Duration = std::time::Duration::from_millis(5);

#[cfg(not(loom))]
impl Futex {
    /// [`take`], sleeping on the peers' wake words too (`futex_waitv`).
    fn take_watching(&self, at: &Site<'_>, slot: usize, until: Instant) -> Slept {
        use crate::table::wake::Watched;
        use os::futex::FutexWaitv;
        let word = at.cell.permits();
        let mut stirs = 0;
        // The words watched in the last round, peers' and own.
        let mut watched = None;
        loop {
            if take_now(word) {
                return Slept::Token;
            }
            if Instant::now() >= until {
                return Slept::TimedOut;
            }
            if stirs >= MAX_STIRS {
                return take(word, until);
            }
            let mut words: Vec<(&AtomicU32, u32)> = vec![(word, 0)];
            let (mut died, mut unlinked) = (false, false);
            at.table.watch(at.role, slot, |w| match w {
                Watched::Wait(w, v) => words.push((w, v)),
                Watched::Unlinked => unlinked = true,
                Watched::Died { slot, life } => {
                    // Told once per claim; a word left marked is then skipped.
                    let told = self
                        .told
                        .get(slot)
                        .map(|t| t.swap(life, StdOrdering::Relaxed));
                    died |= told.is_some_and(|t| t != life);
                }
            });
            if died {
                return Slept::PeerDied;
            }
            // A peer whose word was watched is not any more: it left or was reaped, or its
            // word was cleared. A departure posts a token too, but a process killed between
            // leaving the table and the post does not: the caller looks at the peers and the
            // ring now (sleeping on the rest, it would hear of it only at the slice's end).
            if watched.is_some_and(|n| words.len() < n) {
                return Slept::TimedOut;
            }
            watched = Some(words.len());
            // A live peer whose word holds no TID yet: its keeper stores it when its thread
            // first runs, which on a busy machine can be after the registration's wake-up.
            // Sleep in short parts; at the end of each, the caller looks at the peers (one
            // that died before the link is found dead there) and the next wait watches the
            // words again.
            let part = if unlinked {
                until.min(Instant::now() + REWATCH)
            } else {
                until
            };
            if words.len() == 1 {
                return take(word, part);
            }
            match os::futex::futex_waitv(&words, Some(part)) {
                Ok(FutexWaitv::TimedOut) => return Slept::TimedOut,
                Ok(FutexWaitv::Woken(0)) => {}
                // A wake word was woken or changed: a death (seen on the next round), a
                // departure, or a peer writing it.
                Ok(_) => stirs += 1,
                Err(_) => return pause_until(until),
            }
        }
    }
}

/// More futex tokens than any legitimate ringing can leave (waiters × a margin for abandoned
/// tokens).
const MAX_PERMITS: u32 = 4 * MAX_ENDPOINTS as u32;

/// Takes a token if there is one (dropping a count no ringing can leave); whether it took one.
fn take_now(word: &AtomicU32) -> bool {
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
        if p == 0 {
            return false;
        }
        // SYNC(futex-permit): Acquire, as the load above.
        if word
            .compare_exchange_weak(p, p - 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
    }
}

/// The wait: a counting semaphore in the cell's `permits` word.
fn take(word: &AtomicU32, until: Instant) -> Slept {
    loop {
        if take_now(word) {
            return Slept::Token;
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
