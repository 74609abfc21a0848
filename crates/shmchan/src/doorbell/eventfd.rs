//! The eventfd doorbell: two `EFD_SEMAPHORE | EFD_NONBLOCK` eventfds (data, room). A post
//! writes `n`; a wait polls the descriptor until its deadline and reads one token (another
//! waiter may take it first: the read fails with `EAGAIN`, and the wait polls again).
//!
//! Its objects are descriptors, not names, so no segment can describe them: only processes
//! that hold them can use it — children forked from the creator (anonymous memory) and peers
//! that received them with a memfd (`Channel::share` sends them after the memfd;
//! `Backing::receive` checks them here). Creating it on a backing whose peers find it by name
//! is refused.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use shmchan_os as os;

use super::{dir, pause_until, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unreached};
use crate::error::OpenError;
use crate::table::Role;

pub(super) const SPEC: Spec = Spec {
    name: "eventfd",
    code: 8,
    imp: &EventFd,
};

/// The descriptors a doorbell hands over with a memfd (data, room): the eventfd doorbell's
/// pair, shared with the received backing that brought them.
pub(crate) type Handed = [Arc<os::EventFd>; 2];

/// The flags both eventfds are created with, and that a received one must have.
fn flags() -> os::EfdFlags {
    os::EfdFlags::SEMAPHORE | os::EfdFlags::NONBLOCK
}

struct EventFd;

impl Kind for EventFd {
    fn create(&self, _mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        let new = || os::EventFd::new(0, flags()).map(Arc::new);
        Ok((Desc::default(), Box::new(Fds([new()?, new()?]))))
    }

    fn open(&self, _desc: &Desc, reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        let what = reach.backing;
        match reach.received {
            Some((_, Some(fds))) => Ok(Box::new(Fds(fds.clone()))),
            Some((announced, None)) => Err(Unreached::Refused(OpenError::InvalidConfig {
                reason: format!(
                    "{what} uses the eventfd doorbell, but its descriptors did not come with the memfd (the sender announced the {announced} doorbell)"
                ),
            })),
            None => Err(Unreached::Refused(OpenError::InvalidConfig {
                reason: format!(
                    "{what} uses the eventfd doorbell, whose descriptors reach only processes that inherit the channel across fork or receive it over a Unix socket (Channel::share, Backing::receive); opening it {} cannot reach them",
                    reach.how
                ),
            })),
        }
    }

    fn describe(&self, _desc: &Desc) -> String {
        "two eventfds (descriptors held by the processes using the channel)".into()
    }

    fn refuse(&self, reach: &Reach<'_>) -> Option<String> {
        (!reach.passes_fds).then(|| {
            format!(
                "the eventfd doorbell cannot be used with {}: peers find it {}, and an eventfd is reached only through its descriptor; use Backing::anonymous() (inherited across fork) or Backing::memfd (sent with Channel::share)",
                reach.backing, reach.how
            )
        })
    }

    fn handoff_fds(&self) -> usize {
        2
    }

    fn receive(&self, fds: &mut dyn Iterator<Item = OwnedFd>) -> Result<Option<Handed>, String> {
        let mut efd = |i: usize| -> Result<Arc<os::EventFd>, String> {
            let fd = fds
                .next()
                .ok_or_else(|| format!("doorbell descriptor {i} is missing"))?;
            let e =
                os::EventFd::from_fd(fd).map_err(|e| format!("doorbell descriptor {i}: {e}"))?;
            if !e.flags().contains(flags()) {
                return Err(format!(
                    "doorbell descriptor {i} is an eventfd with flags {:?}, not {:?}",
                    e.flags(),
                    flags()
                ));
            }
            Ok(Arc::new(e))
        };
        Ok(Some([efd(0)?, efd(1)?]))
    }
}

/// The connected eventfds (data, room).
struct Fds(Handed);

impl Bell for Fds {
    fn post(&self, at: &Site<'_>, n: u32) {
        // Non-blocking: a counter that would overflow (only a hostile peer gets near
        // u64::MAX) refuses the write instead of blocking the ringer.
        let _ = self.0[at.dir()].write(u64::from(n));
    }

    fn wait(&self, at: &Site<'_>, _slot: usize, until: Instant) -> Slept {
        match self.0[at.dir()].read_until(until) {
            Ok(Some(_)) => Slept::Token,
            Ok(None) => Slept::TimedOut,
            Err(_) => pause_until(until),
        }
    }

    fn fd(&self, role: Role) -> Option<BorrowedFd<'_>> {
        Some(self.0[dir(role)].as_fd())
    }
}
