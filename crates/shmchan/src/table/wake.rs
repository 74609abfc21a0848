//! The wake word of an entry: how a waiter on the futex doorbell hears of a peer's death at
//! once.
//!
//! A registering endpoint links its entry's `wake` word into the robust list of a keeper
//! thread of its process (`shmchan_os::robust`) and stores the keeper's TID in it. When the
//! process dies, the kernel sets `OWNER_DIED` in the word (keeping `WAITERS`) and, if a
//! waiter had set `WAITERS`, wakes it: a waiter sleeping with `futex_waitv` on its ring's
//! permits and on its peers' wake words returns at once and reaps.
//!
//! The word is untrusted (any peer can write it): it only ever *wakes* a waiter early. Whether
//! the peer is dead is still judged by its life token or pid ([`super::Liveness`]); a forged
//! `OWNER_DIED` costs a reap that finds nobody dead, and a storm of writes ends in the wait's
//! usual time slice.
//!
//! Order: a departure unlinks the word from its keeper's list (private memory), then clears
//! it and wakes it (so a waiter stops waiting on it) before the entry is freed; a reaper that
//! frees a dead endpoint's entry clears it too. Neither trusts what it clears.

// The loom models use part of it; the futex doorbell and the keeper, which use the rest, are
// not modelled.
#![cfg_attr(loom, allow(dead_code))]

use shmchan_os::robust::{OWNER_DIED, WAITERS};

use super::{Entry, Role, Table};
use crate::sync::{futex_wake, AtomicU32, Ordering};

/// Whether waiters on this kernel can sleep on the wake words (`futex_waitv`; cached).
pub(crate) fn waitv() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| shmchan_os::futex::futex_waitv_supported().unwrap_or(false))
}

/// Clears a wake word, waking whoever waits on it (the entry is being freed).
pub(super) fn clear(word: &AtomicU32) {
    // Relaxed: a wake source only; the entry's Release store of FREE follows.
    if word.swap(0, Ordering::Relaxed) & WAITERS != 0 {
        let _ = futex_wake(word, u32::MAX);
    }
}

/// What [`Table::watch`] reports of one peer's wake word.
pub(crate) enum Watched<'a> {
    /// Wait on this word with this value (`WAITERS` is set in it).
    Wait(&'a AtomicU32, u32),
    /// The word says `OWNER_DIED`; `life` is the entry's life word (which claim it is).
    Died { slot: usize, life: u32 },
    /// A live peer whose word holds nothing yet (its keeper has not stored its TID, or it
    /// has no keeper), or a word that kept changing under the CAS: nothing to wait on for
    /// its death.
    Unlinked,
}

impl<'a> Table<'a> {
    /// Word 0's address and the stride between entries' words: for a keeper's robust list.
    pub(crate) fn wake_words(&self) -> Option<(&'a AtomicU32, usize)> {
        self.entries
            .first()
            .map(|e| (&e.wake, std::mem::size_of::<Entry>()))
    }

    /// Entry `slot`'s wake word (the loom models play the kernel on it).
    #[cfg(all(test, loom))]
    pub(crate) fn wake_word(&self, slot: usize) -> &'a AtomicU32 {
        &self.entries[slot].wake
    }

    /// How many entries the table has.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Stores the keeper's `tid` in entry `slot`'s wake word (the loom models; the real
    /// keeper writes the word itself, see `shmchan_os::robust`).
    #[cfg(all(test, loom))]
    pub(crate) fn set_wake(&self, slot: usize, tid: u32) {
        if let Some(ep) = self.entries.get(slot) {
            // Relaxed: a wake source; nothing is published through it.
            ep.wake.store(tid, Ordering::Relaxed);
        }
    }

    /// Whether a wake word that a waiter of `role` in entry `me` watches says `OWNER_DIED`
    /// (a death not reaped yet: the reaper clears the word when it frees the entry).
    pub(crate) fn death_marked(&self, role: Role, me: usize) -> bool {
        let mut marked = false;
        self.each_watched(role, me, |_, ep| {
            // Relaxed: a hint, as in `watch`.
            marked |= ep.wake.load(Ordering::Relaxed) & OWNER_DIED != 0;
        });
        marked
    }

    /// Calls `f` with each entry a waiter of `role` in entry `me` watches.
    fn each_watched(&self, role: Role, me: usize, mut f: impl FnMut(usize, &'a Entry)) {
        // Relaxed: which words to watch is a hint; the waiter re-checks the ring after waking.
        let mut mask = self.masks.live[role.peer().index()].load(Ordering::Relaxed);
        if !self.spsc {
            mask |= self.masks.live[role.index()].load(Ordering::Relaxed) & !(1u64 << me);
        }
        for (i, ep) in self.entries.iter().enumerate() {
            if mask & 1 << i != 0 {
                f(i, ep);
            }
        }
    }

    /// The wake words a waiter of `role` in entry `me` sleeps on: its live peers', and on
    /// MPMC its live siblings' (whose claimed slots can hold it up). Sets `WAITERS` in each
    /// (a CAS from the value read, so the kernel wakes the word at the owner's death); reads
    /// a word that changed under the CAS again.
    pub(crate) fn watch(&self, role: Role, me: usize, mut f: impl FnMut(Watched<'a>)) {
        self.each_watched(role, me, |i, ep| {
            // A word that changes under the CAS is looked at again: the kernel's mark at the
            // owner's death is such a change, and then it reads as a death (skipping the word
            // left the waiter asleep until its time slice ended). One that keeps changing (a
            // peer writing it) is reported as unlinked: the waiter sleeps in short parts.
            for _ in 0..WATCH_TRIES {
                let w = ep.wake.load(Ordering::Relaxed);
                if w == 0 {
                    f(Watched::Unlinked);
                    return;
                }
                if w & OWNER_DIED != 0 {
                    f(Watched::Died {
                        slot: i,
                        life: ep.life.load(Ordering::Relaxed),
                    });
                    return;
                }
                let want = w | WAITERS;
                // Relaxed: the kernel's own atomic update of the word at death is what this
                // races with; either the CAS comes first (and the kernel then wakes the word
                // we wait on) or it fails and the word is read again.
                if w == want
                    || ep
                        .wake
                        .compare_exchange(w, want, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    f(Watched::Wait(&ep.wake, want));
                    return;
                }
            }
            f(Watched::Unlinked);
        });
    }
}

/// How many times [`Table::watch`] reads a wake word that changes under its CAS.
const WATCH_TRIES: u32 = 4;
