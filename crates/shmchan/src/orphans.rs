//! Life-token sets left behind by segments removed some other way (`ipcrm -m`, or the kernel
//! freeing a `LastDetach` segment whose processes were all killed): found and removed here, in
//! a module of their own because finding them reads both the sets (`crate::life`) and the
//! segments they name (`crate::inspect`).

use shmchan_os as os;

use crate::life::{marked, SET_LEN};

/// A life set that [`prune_orphans`] found: its semid and the shmid it names.
///
/// ```
/// for o in shmchan::prune_orphans(false)? {
///     println!("semid {} outlived shmid {}", o.semid, o.shmid);
/// }
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrphanSet {
    /// The semaphore set.
    pub semid: i32,
    /// The segment it was made for, which is gone (or now records another set).
    pub shmid: i32,
}

/// Finds the SysV life-token sets (see the crate's README on liveness) whose segment is gone —
/// removed by something other than shmchan (`ipcrm -m`), or freed by the kernel after every
/// process using it was killed — and removes them when `remove` is set. Only sets that carry
/// the mark (their shape and values), whose segment no longer exists or records another set,
/// and that the calling user created and owns (root: anyone's) are touched. Nothing read from
/// a segment decides what is removed, except that a segment recording the set keeps it.
///
/// ```
/// // A dry run lists what it would remove.
/// let found = shmchan::prune_orphans(false)?;
/// assert!(found.iter().all(|o| o.semid >= 0));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub fn prune_orphans(remove: bool) -> Result<Vec<OrphanSet>, crate::OpenError> {
    let text = std::fs::read_to_string("/proc/sysvipc/sem").map_err(|e| {
        crate::OpenError::InvalidConfig {
            reason: format!("cannot read /proc/sysvipc/sem: {e}"),
        }
    })?;
    let me = os::identity::geteuid();
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(semid), Some(nsems)) = (
            f.get(1).and_then(|s| s.parse::<i32>().ok()),
            f.get(3).and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        if nsems != u64::from(SET_LEN) {
            continue;
        }
        let set = os::SemSet::from_raw(semid);
        let Ok(st) = set.stat() else { continue };
        // Root prunes every user's orphans (a channel removed by root, or crafted, leaves
        // another user's set); anyone else only its own.
        if me != 0 && (st.cuid != me || st.uid != me) {
            continue;
        }
        let Ok(Some(shmid)) = marked(set) else {
            continue;
        };
        if !segment_gone(shmid, semid) {
            continue;
        }
        if remove {
            let _ = set.remove();
        }
        out.push(OrphanSet { semid, shmid });
    }
    Ok(out)
}

/// Whether segment `shmid` is gone, or is a channel that records another life set than
/// `semid` (anything else, or a segment that cannot be read, keeps the set: a channel being
/// created records its set before it is published).
fn segment_gone(shmid: i32, semid: i32) -> bool {
    match os::ShmId::from_raw(shmid).stat() {
        Err(e) => matches!(e.kind(), os::ErrorKind::NotFound | os::ErrorKind::Removed),
        Ok(_) => matches!(
            crate::inspect::recorded_life_set(shmid),
            Some(r) if r != semid as u32 + 1
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::life::Tokens;
    use crate::table::{Liveness, MAX_ENDPOINTS};

    #[test]
    fn a_set_token_is_per_process_and_outlives_its_thread() {
        let shm = os::OwnedShmId::create(os::Key::PRIVATE, 4096, os::Mode::new(0o600)).unwrap();
        let shmid = shm.id().raw();
        let life = std::sync::Arc::new(Tokens::create_set(shmid, 0o600).expect("a life set"));
        let recorded = life.recorded();
        let l = life.clone();
        // Taken on a thread that then exits: still held.
        std::thread::spawn(move || assert!(l.take(3)))
            .join()
            .unwrap();
        assert_eq!(life.held(3), Some(true));
        assert_eq!(life.held(4), Some(false));
        assert_eq!(life.held(MAX_ENDPOINTS), None);
        let l = life.clone();
        std::thread::spawn(move || l.give(3)).join().unwrap();
        assert_eq!(life.held(3), Some(false));
        life.give(3);
        assert_eq!(life.held(3), Some(false));
        // Bound to its segment and owner only.
        let me = os::identity::geteuid();
        assert!(Tokens::open_set(recorded, shmid, me).is_some());
        assert!(Tokens::open_set(recorded, shmid, me + 1).is_none());
        assert!(Tokens::open_set(recorded, shmid + 1, me).is_none());
        assert!(Tokens::open_set(0, shmid, me).is_none());
        // A set that is not a life set (another shape) is refused.
        let other = os::OwnedSemSet::create(os::Key::PRIVATE, 2, os::Mode::new(0o600)).unwrap();
        assert!(Tokens::open_set(other.id().raw() as u32 + 1, shmid, me).is_none());
        // Not an orphan while its segment lives (and records nothing: not a channel).
        assert!(!prune_orphans(false)
            .unwrap()
            .iter()
            .any(|o| o.semid + 1 == recorded as i32));
        drop(shm);
        let found = prune_orphans(true).unwrap();
        assert!(found.contains(&OrphanSet {
            semid: recorded as i32 - 1,
            shmid
        }));
        assert!(Tokens::open_set(recorded, shmid, me).is_none());
        assert_eq!(life.held(3), None);
    }
}
