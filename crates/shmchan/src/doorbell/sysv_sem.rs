//! The SysV semaphore doorbell: one set of two semaphores (data, room), reached by its semid.
//! Posts never use `SEM_UNDO`, and post at most `i16::MAX` at once (the counting protocol keeps
//! the value at the number of waiters, far below `SEMVMX`).

use std::time::Instant;

use shmchan_os as os;

use super::{pause_until, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unreached};

pub(super) const SPEC: Spec = Spec {
    name: "sysv-sem",
    code: 3,
    imp: &SysvSem,
};

struct SysvSem;

impl Kind for SysvSem {
    fn create(&self, mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        let set = os::SemSet::create(os::Key::PRIVATE, 2, mode)?;
        let desc = Desc {
            id: set.raw(),
            ..Desc::default()
        };
        Ok((desc, Box::new(Set(set))))
    }

    fn open(&self, desc: &Desc, _reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        let set = os::SemSet::from_raw(desc.id);
        set.stat()?;
        Ok(Box::new(Set(set)))
    }

    fn remove(&self, desc: &Desc) {
        let _ = os::SemSet::from_raw(desc.id).remove();
    }

    fn describe(&self, desc: &Desc) -> String {
        format!("SysV semaphore set semid {}", desc.id)
    }
}

/// The connected set.
struct Set(os::SemSet);

impl Bell for Set {
    fn post(&self, at: &Site<'_>, n: u32) {
        let op = os::SemOp {
            num: at.dir() as u16,
            op: n.min(i16::MAX as u32) as i16,
            flags: os::SemFlags::empty(),
        };
        let _ = self.0.op(&[op]);
    }

    fn wait(&self, at: &Site<'_>, _slot: usize, until: Instant) -> Slept {
        let left = until.saturating_duration_since(Instant::now());
        match self.0.timed_op(&[os::SemOp::wait(at.dir() as u16)], left) {
            Ok(true) => Slept::Token,
            Ok(false) => Slept::TimedOut,
            Err(e) if e.kind() == os::ErrorKind::Removed => Slept::Removed,
            Err(_) => pause_until(until),
        }
    }
}
