//! The named POSIX semaphore doorbell: two semaphores (data, room) created with `sem_open`
//! under names that carry the channel's identity (`/dev/shm/sem.shmchan-sem-PID-IDENTITY-d|r`),
//! which the segment records for peers; a peer opens and removes only semaphores bound to the
//! channel (see `bind`).

use std::time::Instant;

use shmchan_os as os;

use super::{
    bind, both_or_none, pause_until, remove_named, Bell, Desc, Kind, Reach, Site, Slept, Spec,
    Unbound, Unreached,
};

pub(super) const SPEC: Spec = Spec {
    name: "posix-named-sem",
    code: 5,
    imp: &PosixNamedSem,
};

struct PosixNamedSem;

impl Kind for PosixNamedSem {
    fn create(&self, mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        let (identity, names, sems) = both_or_none(
            TAG,
            |n| os::NamedSem::create(n, 0, mode),
            |n| {
                let _ = os::NamedSem::unlink(n);
            },
        )?;
        let desc = Desc {
            names,
            identity,
            ..Desc::default()
        };
        Ok((desc, Box::new(Sems(sems))))
    }

    fn open(&self, desc: &Desc, reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        let owner = reach.owner.user();
        // Both are checked before either is opened.
        bound(desc, 0, owner)?;
        bound(desc, 1, owner)?;
        Ok(Box::new(Sems([
            os::NamedSem::open(&desc.names[0])?,
            os::NamedSem::open(&desc.names[1])?,
        ])))
    }

    fn remove(&self, desc: &Desc, owner: Option<u32>) -> Result<(), Unbound> {
        remove_named(
            desc,
            owner,
            || self.describe(desc),
            bound,
            describe_one,
            |name| {
                let _ = os::NamedSem::unlink(name);
            },
        )
    }

    fn describe(&self, desc: &Desc) -> String {
        format!("named semaphores {} and {}", desc.names[0], desc.names[1])
    }
}

/// The name's tag (`/shmchan-sem-…`).
const TAG: &str = "sem";

/// Where glibc keeps the named semaphore `name` (`/dev/shm/sem.NAME`).
const SHM_DIR: &str = "/dev/shm";

fn describe_one(name: &str) -> String {
    format!("named semaphore {name:?}")
}

/// Checks that the semaphore of direction `dir` that `desc` names is bound to the channel: its
/// name carries the channel's identity, and its file under `/dev/shm` is a regular file (not
/// a link to someone else's) that the channel's `owner` owns (see `bind`). A sticky `/dev/shm`
/// keeps anybody but that owner (and root) from replacing it before it is opened or unlinked.
fn bound(desc: &Desc, dir: usize, owner: u32) -> Result<(), Unreached> {
    let name = &desc.names[dir];
    let unbound = |reason| Unbound {
        object: describe_one(name),
        reason,
    };
    bind::check_posix_name(name, TAG, desc.identity, dir).map_err(unbound)?;
    // The name is "/" and no other slash (checked above): this is a file in SHM_DIR.
    let file = name.strip_prefix('/').unwrap_or(name);
    let st = os::file::lstat(format!("{SHM_DIR}/sem.{file}"))?;
    if st.file_type != os::file::FileType::Regular {
        return Err(unbound("it is not a regular file under /dev/shm".into()).into());
    }
    bind::check_owner(st.uid, st.uid, owner).map_err(unbound)?;
    Ok(())
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
