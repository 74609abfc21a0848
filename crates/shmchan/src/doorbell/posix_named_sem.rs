//! The named POSIX semaphore doorbell: two semaphores (data, room) created with `sem_open`
//! under fresh names (`/dev/shm/sem.shmchan-…`), which the segment records for peers.

use std::time::Instant;

use shmchan_os as os;

use super::{both_or_none, pause_until, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unreached};

pub(super) const SPEC: Spec = Spec {
    name: "posix-named-sem",
    code: 5,
    imp: &PosixNamedSem,
};

struct PosixNamedSem;

impl Kind for PosixNamedSem {
    fn create(&self, mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        let (names, sems) = both_or_none(
            "sem",
            |n| os::NamedSem::create(n, 0, mode),
            |n| {
                let _ = os::NamedSem::unlink(n);
            },
        )?;
        let desc = Desc {
            names,
            ..Desc::default()
        };
        Ok((desc, Box::new(Sems(sems))))
    }

    fn open(&self, desc: &Desc, _reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        Ok(Box::new(Sems([
            os::NamedSem::open(&desc.names[0])?,
            os::NamedSem::open(&desc.names[1])?,
        ])))
    }

    fn remove(&self, desc: &Desc) {
        for n in &desc.names {
            let _ = os::NamedSem::unlink(n);
        }
    }

    fn describe(&self, desc: &Desc) -> String {
        format!("named semaphores {} and {}", desc.names[0], desc.names[1])
    }
}

/// The connected semaphores (data, room).
struct Sems([os::NamedSem; 2]);

impl Bell for Sems {
    fn post(&self, at: &Site<'_>, n: u32) {
        for _ in 0..n {
            let _ = self.0[at.dir()].post();
        }
    }

    fn wait(&self, at: &Site<'_>, _slot: usize, until: Instant) -> Slept {
        match self.0[at.dir()].wait_until(until) {
            Ok(true) => Slept::Token,
            Ok(false) => Slept::TimedOut,
            Err(_) => pause_until(until),
        }
    }
}
