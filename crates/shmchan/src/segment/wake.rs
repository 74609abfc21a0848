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

use std::sync::Mutex;

use super::Segment;
use crate::doorbell::Doorbell;

/// The keeper of one mapping, when this process has endpoints linked in it.
#[derive(Default)]
pub(crate) struct Wake {
    #[cfg(not(loom))]
    keeper: Mutex<Option<shmchan_os::robust::Keeper>>,
    #[cfg(loom)]
    keeper: Mutex<()>,
}

impl Segment {
    /// After this process registered entry `slot`: links its wake word into the keeper's
    /// robust list (starting the keeper), which stores the keeper's TID in it. Never fails:
    /// without a keeper, deaths are noticed by the time slice.
    #[cfg(not(loom))]
    pub(super) fn link_wake(&self, slot: usize) {
        if self.doorbell() != Doorbell::Futex || !crate::table::wake::waitv() {
            return;
        }
        let table = self.table();
        let Some((word0, stride)) = table.wake_words() else {
            return;
        };
        let mut k = self.wake.keeper.lock().unwrap_or_else(|p| p.into_inner());
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
        if let Some(k) = k.as_ref() {
            // The keeper stores its TID in the word (now, or once its thread runs).
            k.link(slot);
        }
    }

    /// Before this process's endpoint in `slot` leaves (the table then clears the word):
    /// unlinks it; the last one stops the keeper.
    #[cfg(not(loom))]
    pub(super) fn unlink_wake(&self, slot: usize) {
        let mut k = self.wake.keeper.lock().unwrap_or_else(|p| p.into_inner());
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
        let mut k = self.wake.keeper.lock().unwrap_or_else(|p| p.into_inner());
        *k = None;
    }

    #[cfg(loom)]
    pub(super) fn link_wake(&self, _slot: usize) {
        let _ = (&self.wake.keeper, Doorbell::Futex);
    }

    #[cfg(loom)]
    pub(super) fn unlink_wake(&self, _slot: usize) {}

    #[cfg(loom)]
    pub(super) fn unlink_all(&self) {}
}
