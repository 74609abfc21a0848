//! The doorbell side of the segment: waking the waiters of a role (the cells' token
//! counts, the senders' low-water mark) and the waiting operations endpoints use (announce,
//! settle, sleep, post), which hand the work to the channel's doorbell with the wait cells and
//! the endpoint table it works with.

use std::time::Instant;

use shmchan_ring as ring;

use super::Segment;
use crate::barrier::Publish;
use crate::doorbell::{Doorbell, Site, Slept};
use crate::segment::{RingKind, Role};
use crate::sync::Ordering;

/// Waking waiters.
impl Segment {
    /// The wait cell that waiters of `role` announce themselves in.
    pub(crate) fn cell(&self, role: Role) -> &ring::WaitCell {
        match role {
            Role::Receiver => self.ring.data_cell(),
            Role::Sender => self.ring.room_cell(),
        }
    }

    /// Wakes every announced waiter of `role` (they re-check, and see a disconnection): the
    /// fast path is the cell's `take_tokens` (a fence and a load); the doorbell is reached
    /// only when somebody sleeps.
    /// Returns whether it rang the doorbell.
    #[inline]
    pub(crate) fn wake_all(&self, role: Role) -> bool {
        self.wake_all_after(role, Publish::Fenced)
    }

    /// [`wake_all`](Self::wake_all) after a publish ordered by `publish` (an endpoint's
    /// record path: see `crate::barrier`).
    #[inline]
    pub(crate) fn wake_all_after(&self, role: Role, publish: Publish) -> bool {
        let n = publish.take_tokens(self.cell(role));
        if n > 0 {
            self.post(role, n);
        }
        n > 0
    }

    /// After a receive freed slots: rings the doorbell if senders sleep waiting for room, once
    /// at least half of the ring is free (the low-water mark).
    ///
    /// A sender that outruns its receiver sleeps on a full ring; waking it for every freed
    /// slot would cost it a wake-up (and a sleep) per record. Held until half the ring is
    /// free, one wake-up lets it refill half a ring. The wake-up is never lost: a receiver
    /// that keeps receiving passes the mark, a drained ring is below it, every departure
    /// wakes all, and a sender also re-checks for room at the end of each 50 ms slice (and at
    /// its deadline) — so a receiver that stops halfway delays a waiting sender by at most
    /// one slice.
    /// Returns whether it rang the doorbell.
    #[inline]
    pub(crate) fn wake_senders(&self, publish: Publish) -> bool {
        senders_sleep(self.cell(Role::Sender), publish) && self.wake_senders_slow()
    }

    #[cold]
    fn wake_senders_slow(&self) -> bool {
        if self.ring.len() > self.capacity as usize / 2 {
            return false; // still more than half full: held back
        }
        self.wake_all(Role::Sender)
    }

    /// After a receive found the ring empty: on MPMC, passing over skipped slots may have
    /// freed room, so sleeping senders must hear of it (the ring's documented contract).
    #[inline]
    pub(crate) fn after_empty(&self, publish: Publish) {
        if self.kind == RingKind::Mpmc {
            self.wake_all_after(Role::Sender, publish);
        }
    }
}

/// The fast path of [`Segment::wake_senders`] (and of `WaitCell::take_tokens`): after a
/// receive released slots, whether senders sleep on `room` — one load when nobody does,
/// behind the fence `publish` names: the Dekker pair of a sleeping sender's
/// `WaitCell::announce` (see shmchan_ring::wait and `crate::barrier`; `crate::loom_models`:
/// `low_water_mark_wakes_a_sleeping_sender`).
#[inline]
pub(crate) fn senders_sleep(room: &ring::WaitCell, publish: Publish) -> bool {
    publish.sleepers(room)
}

/// The waiting operations endpoints use: the doorbell, seen through the segment (which holds
/// the wait cells and the endpoint table the doorbell works with).
impl Segment {
    /// The channel's doorbell kind.
    pub(crate) fn doorbell(&self) -> Doorbell {
        self.bell_owner.kind
    }

    /// Whether waiters sleep (and so announce themselves) on this doorbell.
    pub(crate) fn sleeps(&self) -> bool {
        self.doorbell().sleeps()
    }

    /// The descriptor waiters of `role` sleep on, where the doorbell has one.
    pub(crate) fn doorbell_fd(&self, role: Role) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.bell.fd(role)
    }

    /// Where the doorbell works for the waiters of `role`.
    fn site(&self, role: Role) -> Site<'_> {
        Site {
            role,
            cell: self.cell(role),
            table: self.table(),
            sems: &self.ext().posix_sems,
        }
    }

    /// Announces a waiter of `role` (endpoint-table entry `slot`) before it re-checks, and
    /// issues the waiter's half of the asymmetric fence (see `crate::barrier`).
    pub(crate) fn announce(&self, role: Role, slot: usize) {
        self.bell.announce(&self.site(role), slot);
        crate::barrier::after_announce();
    }

    /// Leaves the announced state without a token (see `Bell::settle`).
    pub(crate) fn settle(&self, role: Role, slot: usize) {
        self.bell.settle(&self.site(role), slot)
    }

    /// Sleeps until a token for this waiter arrives or `until` passes.
    pub(crate) fn sleep(&self, role: Role, slot: usize, until: Instant) -> Slept {
        self.bell.wait(&self.site(role), slot, until)
    }

    /// Posts `n` tokens to the sleepers of `role` (`n` from the ring's `take_tokens`), and
    /// counts the post.
    #[cold]
    pub(crate) fn post(&self, role: Role, n: u32) {
        // Relaxed: a statistic.
        self.ext().posts.fetch_add(1, Ordering::Relaxed);
        self.bell.post(&self.site(role), n)
    }
}
