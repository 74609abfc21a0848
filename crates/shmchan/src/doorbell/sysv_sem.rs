//! The SysV semaphore doorbell: one set of two semaphores (data, room), reached by its semid.
//! Posts never use `SEM_UNDO`, and post at most `i16::MAX` at once (the counting protocol keeps
//! the value at the number of waiters, far below `SEMVMX`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use shmchan_os as os;

use super::{
    bind, pause_until, removable, unvouched, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unbound,
    Unreached,
};

pub(super) const SPEC: Spec = Spec {
    name: "sysv-sem",
    code: 3,
    imp: &SysvSem,
};

struct SysvSem;

impl Kind for SysvSem {
    fn create(&self, mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        // At the key of a fresh identity (never IPC_PRIVATE): the key binds the set to the
        // channel (see `bind`).
        let (identity, set) = bind::with_fresh_identity(|identity, key| {
            os::SemSet::create(key, 2, mode).map(|set| (identity, set))
        })?;
        let desc = Desc {
            id: set.raw(),
            identity,
            ..Desc::default()
        };
        Ok((desc, Box::new(Set::new(set))))
    }

    fn open(&self, desc: &Desc, reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        Ok(Box::new(Set::new(bound(desc, reach.owner.user())?)))
    }

    fn remove(&self, desc: &Desc, owner: Option<u32>) -> Result<(), Unbound> {
        let owner = owner.ok_or_else(|| unvouched(self.describe(desc)))?;
        if let Some(set) = removable(bound(desc, owner), || self.describe(desc))? {
            let _ = set.remove();
        }
        Ok(())
    }

    fn describe(&self, desc: &Desc) -> String {
        format!("SysV semaphore set semid {}", desc.id)
    }
}

/// The set `desc` names, if the kernel says it is bound to the channel: created at the
/// channel's key, by the channel's `owner`, and still owned by it (see `bind`).
fn bound(desc: &Desc, owner: u32) -> Result<os::SemSet, Unreached> {
    let set = os::SemSet::from_raw(desc.id);
    let st = set.stat()?;
    bind::check_sysv(st.key, st.cuid, st.uid, desc.identity, owner).map_err(|reason| Unbound {
        object: SysvSem.describe(desc),
        reason,
    })?;
    Ok(set)
}

/// The connected set. Once the kernel says its id is gone, the id is never used again: a new
/// set that got the same id later is not the channel's.
struct Set {
    set: os::SemSet,
    removed: AtomicBool,
}

impl Set {
    fn new(set: os::SemSet) -> Set {
        Set {
            set,
            removed: AtomicBool::new(false),
        }
    }

    /// Notes an error of the set: whether it says the set is gone.
    fn gone(&self, e: &os::Error) -> bool {
        let gone = e.kind() == os::ErrorKind::Removed;
        if gone {
            // Relaxed: a process-local latch; it publishes nothing.
            self.removed.store(true, Ordering::Relaxed);
        }
        gone
    }

    fn is_removed(&self) -> bool {
        // Relaxed: see `gone`.
        self.removed.load(Ordering::Relaxed)
    }
}

impl Bell for Set {
    fn post(&self, at: &Site<'_>, n: u32) {
        if self.is_removed() {
            return;
        }
        let op = os::SemOp {
            num: at.dir() as u16,
            op: n.min(i16::MAX as u32) as i16,
            flags: os::SemFlags::empty(),
        };
        if let Err(e) = self.set.op(&[op]) {
            self.gone(&e);
        }
    }

    fn wait(&self, at: &Site<'_>, _slot: usize, until: Instant) -> Slept {
        if self.is_removed() {
            return Slept::Removed;
        }
        let left = until.saturating_duration_since(Instant::now());
        match self.set.timed_op(&[os::SemOp::wait(at.dir() as u16)], left) {
            Ok(true) => Slept::Token,
            Ok(false) => Slept::TimedOut,
            Err(e) if self.gone(&e) => Slept::Removed,
            Err(_) => pause_until(until),
        }
    }
}
