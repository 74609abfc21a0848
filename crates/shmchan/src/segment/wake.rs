//! This process's keeper thread for a futex-doorbell channel's mapping (see
//! `crate::table::wake`): started when the first local endpoint registers, stopped when the
//! last one leaves.
//!
//! One keeper per (process, mapping): a robust list has one `futex_offset` for all its
//! entries, and the entries (private memory) must repeat with the stride of the words they
//! name, which are at this mapping's address. A forked child's copy has no thread: its
//! endpoints get a keeper of their own. Where no thread can be spawned (limits), or the
//! kernel has no `futex_waitv`, nothing is linked and a waiter notices a death at the end of
//! its time slice, as every other doorbell does.

use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use super::Segment;
use crate::doorbell::Doorbell;

/// What the keeper mutex holds.
#[cfg(not(loom))]
type Held = Option<shmchan_os::robust::Keeper>;
#[cfg(loom)]
type Held = ();

/// The keeper of one mapping, when this process has endpoints linked in it.
pub(crate) struct Wake {
    keeper: Mutex<Held>,
    /// The fork generation when the mapping was made (`os::process::fork_generation`): a
    /// different one means this is a forked child's copy, whose mutex may have been copied
    /// while a thread of the parent held it.
    #[cfg_attr(loom, allow(dead_code))]
    forks: u64,
}

/// How long a forked child tries the inherited keeper mutex before it does without a keeper
/// for this mapping (see [`Wake::lock`]).
#[cfg_attr(loom, allow(dead_code))]
const FORKED_LOCK_WAIT: Duration = Duration::from_millis(20);

impl Wake {
    pub(super) fn new() -> Wake {
        Wake {
            keeper: Mutex::default(),
            forks: shmchan_os::process::fork_generation(),
        }
    }

    /// The keeper's lock. In the process that made the mapping, the mutex as usual. In a
    /// forked child the mutex is a copy, made at the fork: if another thread of the parent
    /// held it then, nobody will ever release it, and waiting for it would hang the child's
    /// registrations for good. So a child only tries it, for at most [`FORKED_LOCK_WAIT`]
    /// (a thread of its own holds it for no longer than a keeper's start), and otherwise does
    /// without a keeper (`None`): its deaths are then noticed at the end of a time slice.
    #[cfg_attr(loom, allow(dead_code))]
    fn lock(&self) -> Option<MutexGuard<'_, Held>> {
        if shmchan_os::process::forks() == self.forks {
            return Some(self.keeper.lock().unwrap_or_else(|p| p.into_inner()));
        }
        let until = Instant::now() + FORKED_LOCK_WAIT;
        loop {
            match self.keeper.try_lock() {
                Ok(g) => return Some(g),
                Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                Err(TryLockError::WouldBlock) if Instant::now() < until => std::thread::yield_now(),
                Err(TryLockError::WouldBlock) => return None,
            }
        }
    }
}

impl Segment {
    /// After this process registered entry `slot` (an endpoint of `role`): links its wake
    /// word into the keeper's robust list (starting the keeper), which stores the keeper's
    /// TID in it, then wakes the waiters that watch it (see [`Segment::link_wake_word`]).
    /// Never fails: without a keeper, deaths are noticed by the time slice.
    #[cfg(not(loom))]
    pub(super) fn link_wake(&self, role: crate::table::Role, slot: usize) {
        if self.link_wake_word(slot) {
            // The waiters that watch wake words look again: one of them may have looked
            // between the registration and the link.
            self.wake_all(role.peer());
            if self.kind == super::RingKind::Mpmc {
                self.wake_all(role);
            }
        }
    }

    /// The link of [`Segment::link_wake`]; whether the word is linked.
    #[cfg(not(loom))]
    fn link_wake_word(&self, slot: usize) -> bool {
        if self.doorbell() != Doorbell::Futex || !crate::table::wake::waitv() {
            return false;
        }
        let table = self.table();
        let Some((word0, stride)) = table.wake_words() else {
            return false;
        };
        let Some(mut k) = self.wake.lock() else {
            return false;
        };
        if !k.as_ref().is_some_and(|k| k.is_ours()) {
            // The endpoint registers this process for global barriers (`crate::barrier`) right
            // after; the kernel makes that wait for an RCU grace period (milliseconds) once the
            // process has a second thread. Register first, while the keeper does not exist yet
            // (cached per process: later calls are free).
            let _ = crate::barrier::Publish::for_this_process();
            // SAFETY: the words are the entries' of this mapping, which stays mapped until
            // `Segment::drop`, which calls `unlink_all` first.
            *k = unsafe { shmchan_os::robust::Keeper::spawn(word0, stride, table.len()) };
        }
        // The keeper stores its TID in the word (now, or once its thread runs).
        k.as_ref().is_some_and(|k| k.link(slot))
    }

    /// After this process's endpoint in `slot` left (the table cleared the word and the live
    /// bit): unlinks it; the last one stops the keeper. Not before: a death between the two
    /// would leave a live entry whose word the kernel no longer marks (its peers would hear
    /// of it only at their next time slice). After, a death finds the word cleared, or
    /// holding a later owner's TID, which the kernel leaves alone.
    #[cfg(not(loom))]
    pub(super) fn unlink_wake(&self, slot: usize) {
        let Some(mut k) = self.wake.lock() else {
            return;
        };
        if k.as_ref().is_some_and(|k| k.is_ours() && k.unlink(slot)) {
            *k = None;
        }
    }

    /// Whether a wake word the waiter of `role` in `slot` watches says its owner died and
    /// the entry is not reaped yet (see `Table::death_marked`).
    pub(crate) fn death_marked(&self, role: crate::table::Role, slot: usize) -> bool {
        self.table().death_marked(role, slot)
    }

    /// Before the mapping goes: nothing of it may stay linked.
    #[cfg(not(loom))]
    pub(super) fn unlink_all(&self) {
        if let Some(mut k) = self.wake.lock() {
            *k = None;
        }
    }

    #[cfg(loom)]
    pub(super) fn link_wake(&self, _role: crate::table::Role, _slot: usize) {
        let _ = (&self.wake.keeper, Doorbell::Futex);
    }

    #[cfg(loom)]
    pub(super) fn unlink_wake(&self, _slot: usize) {}

    #[cfg(loom)]
    pub(super) fn unlink_all(&self) {}
}
