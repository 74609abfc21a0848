//! Life tokens: liveness the kernel vouches for, in any PID namespace.
//!
//! A pid tells whether a process lives only to a process of the same PID namespace: two
//! containers that share an IPC namespace (and so `/dev/shm` and SysV objects) see different
//! pids, or none, for each other. So every endpoint also holds a *life token*: semaphore
//! `slot` of the channel's life set, a SysV semaphore set of [`MAX_ENDPOINTS`] semaphores,
//! raised by one with `SEM_UNDO` when the endpoint registers and lowered with `SEM_UNDO` when
//! it leaves. When the process dies, however it dies, the kernel undoes what it still holds,
//! and the token reads 0: a reaper in any PID namespace (of the same IPC namespace) reads it
//! with `GETVAL`. The endpoint table ([`crate::table`]) says which entries hold a token and
//! how a reaper judges the others.
//!
//! Why a SysV semaphore with `SEM_UNDO`:
//! - the kernel vouches for the death whatever the PID namespaces, and the set is reachable
//!   on every backing (a SysV segment, a file, a memfd, anonymous memory: all that is needed
//!   is the IPC namespace that peers share anyway);
//! - undo records belong to the process and are shared by its threads (`CLONE_SYSVSEM`): an
//!   endpoint moved to another thread, or a thread that exits while the process lives, keeps
//!   its token. A forked child does not inherit them (nor the endpoint: its copy is its
//!   parent's, never used);
//! - OFD locks need a file that every backing would have to carry (SysV and anonymous
//!   memory have none); robust futexes belong to a thread (an endpoint would die with the
//!   thread that made it) and let a segment aim the kernel's robust-list walk at memory.
//!
//! Registration and departure cost one `semop` each (attach and drop, never per record); a
//! reaper pays one `GETVAL` per live entry per housekeeping slice.
//!
//! The set is a kernel object that an untrusted segment names (by the identity it states), so
//! it is bound to the channel like the doorbell objects are (`doorbell::bind`): created
//! `IPC_CREAT | IPC_EXCL` at the key of the channel's identity ([`life_key`], the identity's
//! high 32 bits), and used or removed only when the kernel says the channel's owner created
//! and owns it and it has [`MAX_ENDPOINTS`] semaphores. It goes with the channel on every
//! path that removes the doorbell objects. A channel whose set cannot be made or found
//! (limits, another IPC namespace) works without tokens: peers of its own PID namespace are
//! judged by `/proc`, the others are never taken for dead.

use std::sync::atomic::{AtomicBool, Ordering};

use shmchan_os as os;

use crate::doorbell::{check_owner, life_key, Unbound};
use crate::table::{Liveness, Procfs, MAX_ENDPOINTS};

/// A channel's life set, checked to be the channel's, and which tokens this process holds.
pub(crate) struct LifeSet {
    set: os::SemSet,
    /// Semaphore `i` raised by this process for entry `i` (process memory, not shared).
    held: [AtomicBool; MAX_ENDPOINTS],
}

impl std::fmt::Debug for LifeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LifeSet(semid {})", self.set.raw())
    }
}

impl LifeSet {
    fn new(set: os::SemSet) -> LifeSet {
        LifeSet {
            set,
            held: std::array::from_fn(|_| AtomicBool::new(false)),
        }
    }

    /// Creates the life set of a new channel with `identity` (`mode`: the channel's). `None`
    /// when it cannot (limits, the key taken by another object): the channel then works
    /// without tokens.
    pub(crate) fn create(identity: u64, mode: u32) -> Option<LifeSet> {
        let key = life_key(identity)?;
        let set = os::SemSet::create(key, MAX_ENDPOINTS as u16, os::Mode::new(mode)).ok()?;
        Some(LifeSet::new(set))
    }

    /// The life set of the channel with `identity`, if it is there and bound to the channel
    /// (`owner`: the uid its objects must belong to).
    pub(crate) fn open(identity: u64, owner: u32) -> Option<LifeSet> {
        bound(identity, owner).ok().flatten().map(LifeSet::new)
    }

    /// Removes the set (its creator, from its own record).
    pub(crate) fn remove(&self) {
        let _ = self.set.remove();
    }
}

impl Liveness for LifeSet {
    fn take(&self, slot: usize) -> bool {
        let Ok(num) = u16::try_from(slot) else {
            return false;
        };
        let up = os::SemOp::post(num).with_flags(os::SemFlags::UNDO | os::SemFlags::NOWAIT);
        let took = matches!(self.set.op(&[up]), Ok(true));
        if let Some(h) = self.held.get(slot) {
            h.store(took, Ordering::Relaxed);
        }
        took
    }

    fn give(&self, slot: usize) {
        let Some(h) = self.held.get(slot) else {
            return;
        };
        if h.swap(false, Ordering::Relaxed) {
            let down = os::SemOp {
                num: slot as u16,
                op: -1,
                flags: os::SemFlags::UNDO | os::SemFlags::NOWAIT,
            };
            // A failure (the set removed, or reset by its owner) leaves nothing to give back.
            let _ = self.set.op(&[down]);
        }
    }

    fn held(&self, slot: usize) -> Option<bool> {
        let num = u16::try_from(slot).ok()?;
        self.set.get_val(num).ok().map(|v| v > 0)
    }

    fn pidns(&self) -> Option<u64> {
        Procfs.pidns()
    }

    fn alive(&self, pid: u32, start: Option<u64>) -> bool {
        Procfs.alive(pid, start)
    }
}

/// The set at the key of `identity` if it is bound to the channel (`Ok(None)`: none there),
/// or why it is not.
fn bound(identity: u64, owner: u32) -> Result<Option<os::SemSet>, Unbound> {
    let Some(key) = life_key(identity) else {
        return Ok(None);
    };
    let set = match os::SemSet::open(key) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), os::ErrorKind::NotFound | os::ErrorKind::Removed) => {
            return Ok(None)
        }
        Err(e) => {
            return Err(Unbound {
                object: format!("SysV semaphore set at key {key} (life tokens)"),
                reason: format!("it cannot be checked ({e})"),
            })
        }
    };
    let object = || format!("SysV semaphore set semid {} (life tokens)", set.raw());
    let st = match set.stat() {
        Ok(st) => st,
        Err(e) if matches!(e.kind(), os::ErrorKind::NotFound | os::ErrorKind::Removed) => {
            return Ok(None)
        }
        Err(e) => {
            return Err(Unbound {
                object: object(),
                reason: format!("it cannot be checked ({e})"),
            })
        }
    };
    check_owner(st.cuid, st.uid, owner).map_err(|reason| Unbound {
        object: object(),
        reason,
    })?;
    if st.key != key || st.nsems != MAX_ENDPOINTS as u64 {
        return Err(Unbound {
            object: object(),
            reason: format!(
                "it has {} semaphores at key {}, not {MAX_ENDPOINTS} at {key}",
                st.nsems, st.key
            ),
        });
    }
    Ok(Some(set))
}

/// Checks, before a channel with `identity` is removed, that its life set is the channel's
/// or gone (`owner`: the uid the kernel says the channel belongs to; `None`: nobody vouches,
/// and then nothing is removed, as for the doorbell objects). Returns what to remove.
pub(crate) fn removable(identity: u64, owner: Option<u32>) -> Result<Removal, Unbound> {
    match owner {
        Some(uid) => bound(identity, uid).map(Removal),
        None => Ok(Removal(None)),
    }
}

/// A checked life set to remove with its channel ([`removable`]).
#[must_use]
pub(crate) struct Removal(Option<os::SemSet>);

impl Removal {
    pub(crate) fn run(self) {
        if let Some(set) = self.0 {
            let _ = set.remove();
        }
    }
}

/// Removes the life set of the channel with `identity` if it is bound to the channel.
pub(crate) fn remove(identity: u64, owner: Option<u32>) {
    if let Ok(r) = removable(identity, owner) {
        r.run();
    }
}

/// What inspection says of an endpoint (read-only): alive unless its token is down, or
/// (without a token) `/proc` says so for a pid of this PID namespace. `set`: the channel's
/// life set, if found.
pub(crate) fn judged_alive(
    set: Option<&LifeSet>,
    slot: usize,
    pid: u32,
    start: u64,
    pidns: u64,
    token: bool,
) -> bool {
    if i32::try_from(pid).is_err() || pid == 0 {
        return false;
    }
    if token {
        if let Some(held) = set.and_then(|s| s.held(slot)) {
            return held;
        }
    }
    if pidns == 0 || Procfs.pidns() != Some(pidns) {
        return true;
    }
    Procfs.alive(pid, (start != 0).then_some(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_per_process_and_outlives_its_thread() {
        let identity = loop {
            let mut b = [0u8; 8];
            os::identity::getrandom(&mut b).unwrap();
            let id = u64::from_le_bytes(b);
            if life_key(id).is_some() {
                break id;
            }
        };
        let set = LifeSet::create(identity, 0o600).expect("a life set");
        let life = std::sync::Arc::new(set);
        let l = life.clone();
        // Taken on a thread that then exits: still held.
        std::thread::spawn(move || assert!(l.take(3)))
            .join()
            .unwrap();
        assert_eq!(life.held(3), Some(true));
        assert_eq!(life.held(4), Some(false));
        // Given back on another thread.
        let l = life.clone();
        std::thread::spawn(move || l.give(3)).join().unwrap();
        assert_eq!(life.held(3), Some(false));
        // Giving back what is not held does nothing.
        life.give(3);
        assert_eq!(life.held(3), Some(false));
        // Bound to the channel: found by its identity, for its owner only.
        let me = os::identity::geteuid();
        assert!(LifeSet::open(identity, me).is_some());
        assert!(LifeSet::open(identity, me + 1).is_none());
        assert!(removable(identity, Some(me + 1)).is_err());
        remove(identity, Some(me));
        assert!(LifeSet::open(identity, me).is_none());
        assert_eq!(life.held(3), None);
    }
}
