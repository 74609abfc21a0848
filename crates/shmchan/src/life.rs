//! Life tokens: liveness the kernel vouches for, in any PID namespace, held in nothing that
//! can outlive its channel.
//!
//! A pid tells whether a process lives only to a process of the same PID namespace: two
//! containers that share an IPC namespace (and so `/dev/shm` and SysV objects) see different
//! pids, or none, for each other. So an endpoint also holds a *life token* for its entry
//! (`slot`) of the endpoint table, which the kernel gives up when the process dies, however
//! it dies and whatever its PID namespace. A reaper in any PID namespace reads it. The
//! endpoint table ([`crate::table`]) says which entries hold a token and how a reaper judges
//! the others. The token lives where the channel lives:
//!
//! - **A file or a memfd** (everything with a descriptor, `/dev/shm` files included): an
//!   *OFD lock* ([`os::ofd`]) on byte [`LOCK_BASE`]` + slot` of the channel's own file, taken
//!   through a description of the file that only this process holds ([`os::ofd::PrivateFd`]:
//!   reopened through `/proc/self/fd`, closed in forked children). The kernel drops the lock
//!   when the process's last descriptor of that description closes, so at its death; a thread
//!   exiting closes nothing. It is no extra object: it goes with the file (deleted with `rm`,
//!   a memfd closed by everyone), so nothing can leak. A reaper asks `F_OFD_GETLK` through the
//!   descriptor it mapped, which holds no lock. The same description holds a read lock on
//!   [`ATTACH`] for as long as the process has the channel open: the file is in use exactly
//!   while someone holds it ([`in_use`]), whatever PID namespace that process is in.
//! - **A SysV segment** (no descriptor): semaphore `slot` of the channel's *life set*, raised
//!   with `SEM_UNDO` (the kernel undoes it when the process dies; undo records are shared by
//!   its threads and not inherited by `fork`). The set is created `IPC_PRIVATE` with the
//!   segment, its id recorded in the segment, and removed wherever shmchan removes the
//!   segment; `prune_orphans` (in `crate::orphans`) removes the sets whose segment went another way (`ipcrm -m`,
//!   `Cleanup::LastDetach` after every process was killed). The set marks itself: it has
//!   [`SET_LEN`] semaphores, semaphore [`MARK_AT`] holds [`MARK`] and the next three the shmid
//!   of its segment, in 15-bit pieces. The id the segment records is untrusted: the set is used
//!   or removed only when the kernel says the segment's owner created and owns it, it has that
//!   shape and mark, and it names the very segment (by the shmid the kernel attached). A key
//!   derived from the segment's would not do: `IPC_PRIVATE` and `LastDetach` segments have no
//!   key, and any derived key can be taken by someone else's object.
//! - **Anonymous and caller-provided memory** (no name at all, shared across `fork`): no token;
//!   peers are judged by pid, start time and PID namespace (a child that moved to another PID
//!   namespace is never judged by `/proc`: it is not taken for dead).
//!
//! A token drops at the very end of its process's exit, after the kernel has torn down the
//! process's memory (a millisecond or more on a busy machine). A reaper of the same PID
//! namespace does not wait for that: a process whose every thread has entered its exit
//! (`shmchan_os::process::is_alive`) never runs its own code again, and is dead already. The
//! entry it held can then be claimed again before its token drops; the new holder waits a
//! little for the token ([`lock_token`]).
//!
//! A channel whose token cannot be set up (no `/proc/self` here, limits) works without: peers
//! of its own PID namespace are judged by `/proc`, the others are never taken for dead.
//! Registration and departure cost one `fcntl` or `semop` each (never per record); a reaper
//! pays one `F_OFD_GETLK` or `GETVAL` per live entry per housekeeping slice.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shmchan_os as os;
use shmchan_os::ofd::{self, LockKind};

use crate::doorbell::{check_owner, Unbound};
use crate::table::{Liveness, Procfs, MAX_ENDPOINTS};

/// The byte of the channel's file whose OFD lock is entry 0's token; entry `i` is at
/// `LOCK_BASE + i` (far past the end of any segment: locks past the end are allowed and touch
/// no data).
pub(crate) const LOCK_BASE: u64 = 1 << 48;
/// The byte every process that has the channel open read-locks (see [`in_use`]).
pub(crate) const ATTACH: u64 = LOCK_BASE + MAX_ENDPOINTS as u64;

/// Semaphores in a life set: one token per entry, the mark, the shmid in three pieces.
pub(crate) const SET_LEN: u16 = MAX_ENDPOINTS as u16 + 4;
/// Where the mark is.
pub(crate) const MARK_AT: u16 = MAX_ENDPOINTS as u16;
/// The mark ("SC", below `SEMVMX`).
pub(crate) const MARK: i32 = 0x5343;

/// Which tokens this process holds (process memory, not shared).
pub(crate) struct Held([AtomicBool; MAX_ENDPOINTS]);

impl Held {
    fn new() -> Held {
        Held(std::array::from_fn(|_| AtomicBool::new(false)))
    }

    fn set(&self, slot: usize, v: bool) {
        if let Some(h) = self.0.get(slot) {
            h.store(v, Ordering::Relaxed);
        }
    }

    /// Clears the flag; whether it was set.
    fn take(&self, slot: usize) -> bool {
        self.0
            .get(slot)
            .is_some_and(|h| h.swap(false, Ordering::Relaxed))
    }
}

/// A channel's life tokens, as this process reaches them.
pub(crate) enum Tokens {
    /// OFD locks on the channel's file.
    Locks {
        /// This process's own description: holds [`ATTACH`] and its entries' tokens.
        mine: ofd::PrivateFd,
        /// A descriptor of the mapped file that holds no lock (asks `F_OFD_GETLK`).
        query: OwnedFd,
        held: Held,
    },
    /// The SysV life set (checked to be the segment's).
    Set { set: CheckedSet, held: Held },
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokens::Locks { .. } => f.write_str("Tokens(OFD locks)"),
            Tokens::Set { set, .. } => write!(f, "Tokens(SysV semid {})", set.set.raw()),
        }
    }
}

impl Tokens {
    /// The tokens of a channel whose file (or memfd) `fd` was mapped: a description of this
    /// process's own, which read-locks [`ATTACH`] at once. `None` when it cannot be opened
    /// (then the channel is judged without tokens here).
    pub(crate) fn locks(fd: BorrowedFd<'_>) -> Option<Tokens> {
        let mine = ofd::PrivateFd::reopen(fd).ok()?;
        let query = fd.try_clone_to_owned().ok()?;
        if !ofd::set_lock(mine.fd()?, LockKind::Read, ATTACH, 1).ok()? {
            return None;
        }
        Some(Tokens::Locks {
            mine,
            query,
            held: Held::new(),
        })
    }

    /// A new life set for the SysV segment `shmid` (`mode`: the channel's). `None` when it
    /// cannot be made (limits): the channel then works without tokens.
    pub(crate) fn create_set(shmid: i32, mode: u32) -> Option<Tokens> {
        let owned = os::OwnedSemSet::create(os::Key::PRIVATE, SET_LEN, os::Mode::new(mode)).ok()?;
        let set = owned.id();
        set.set_val(MARK_AT, MARK).ok()?;
        for (i, piece) in pieces(shmid).into_iter().enumerate() {
            set.set_val(MARK_AT + 1 + i as u16, piece).ok()?;
        }
        Some(Tokens::Set {
            set: CheckedSet {
                set: owned.into_inner(),
                shmid,
                owner: os::identity::geteuid(),
            },
            held: Held::new(),
        })
    }

    /// The life set a segment records (`recorded`: its word, semid + 1), if it is the one of
    /// segment `shmid` owned by `owner`.
    pub(crate) fn open_set(recorded: u32, shmid: i32, owner: u32) -> Option<Tokens> {
        bound_set(recorded, shmid, owner)
            .ok()
            .flatten()
            .map(|set| Tokens::Set {
                set: CheckedSet { set, shmid, owner },
                held: Held::new(),
            })
    }

    /// The word a segment records for these tokens (semid + 1 of a life set; 0: none).
    pub(crate) fn recorded(&self) -> u32 {
        match self {
            Tokens::Set { set, .. } => set.set.raw() as u32 + 1,
            Tokens::Locks { .. } => 0,
        }
    }

    /// Removes the life set, if these are a set's tokens (checked when opened, or ours).
    pub(crate) fn remove(&self) {
        if let Tokens::Set { set, .. } = self {
            set.remove();
        }
    }
}

/// A life set that was checked to be segment `shmid`'s, owned by `owner`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckedSet {
    set: os::SemSet,
    shmid: i32,
    owner: u32,
}

impl CheckedSet {
    /// Removes the set, after checking again that it is still the one (its id may have been
    /// removed and reused since it was checked).
    pub(crate) fn remove(self) {
        let owned = self
            .set
            .stat()
            .is_ok_and(|st| check_owner(st.cuid, st.uid, self.owner).is_ok());
        if owned && matches!(marked(self.set), Ok(Some(s)) if s == self.shmid) {
            let _ = self.set.remove();
        }
    }
}

/// The shmid in three 15-bit pieces (semaphore values stay below `SEMVMX`).
fn pieces(shmid: i32) -> [i32; 3] {
    let v = shmid as u32 as u64;
    [
        (v & 0x7fff) as i32,
        (v >> 15 & 0x7fff) as i32,
        (v >> 30 & 0x7fff) as i32,
    ]
}

/// Whether `set` is a life set, and of which shmid (read from the kernel: the set's shape and
/// mark).
pub(crate) fn marked(set: os::SemSet) -> Result<Option<i32>, os::Error> {
    let st = set.stat()?;
    if st.key != os::Key::PRIVATE || st.nsems != u64::from(SET_LEN) {
        return Ok(None);
    }
    if set.get_val(MARK_AT)? != MARK {
        return Ok(None);
    }
    let mut v = 0u64;
    for i in 0..3u16 {
        v |= (set.get_val(MARK_AT + 1 + i)? as u64 & 0x7fff) << (15 * i);
    }
    Ok(i32::try_from(v).ok())
}

/// The set recorded as `recorded` (semid + 1; 0: none) if it is the life set of segment
/// `shmid` owned by `owner` (`Ok(None)`: none recorded, or gone), or why it is not.
fn bound_set(recorded: u32, shmid: i32, owner: u32) -> Result<Option<os::SemSet>, Unbound> {
    let Some(id) = recorded.checked_sub(1).and_then(|r| i32::try_from(r).ok()) else {
        return Ok(None);
    };
    let set = os::SemSet::from_raw(id);
    let object = || format!("SysV semaphore set semid {id} (life tokens)");
    let cannot = |e: os::Error| Unbound {
        object: object(),
        reason: format!("it cannot be checked ({e})"),
    };
    let gone = |e: &os::Error| matches!(e.kind(), os::ErrorKind::NotFound | os::ErrorKind::Removed);
    let st = match set.stat() {
        Ok(st) => st,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    check_owner(st.cuid, st.uid, owner).map_err(|reason| Unbound {
        object: object(),
        reason,
    })?;
    match marked(set) {
        Ok(Some(s)) if s == shmid => Ok(Some(set)),
        Ok(_) => Err(Unbound {
            object: object(),
            reason: format!("it is not the life set of shmid {shmid}"),
        }),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(cannot(e)),
    }
}

impl Liveness for Tokens {
    fn take(&self, slot: usize) -> bool {
        let Ok(num) = u16::try_from(slot) else {
            return false;
        };
        let (took, held) = match self {
            Tokens::Locks { mine, held, .. } => {
                (mine.fd().is_some_and(|fd| lock_token(fd, slot)), held)
            }
            Tokens::Set { set, held } => {
                let set = set.set;
                let up = os::SemOp::post(num).with_flags(os::SemFlags::UNDO | os::SemFlags::NOWAIT);
                (matches!(set.op(&[up]), Ok(true)), held)
            }
        };
        held.set(slot, took);
        took
    }

    fn give(&self, slot: usize) {
        match self {
            Tokens::Locks { mine, held, .. } => {
                if held.take(slot) {
                    if let Some(fd) = mine.fd() {
                        let _ = ofd::unlock(fd, LOCK_BASE + slot as u64, 1);
                    }
                }
            }
            Tokens::Set { set, held } => {
                let set = set.set;
                if held.take(slot) {
                    let down = os::SemOp {
                        num: slot as u16,
                        op: -1,
                        flags: os::SemFlags::UNDO | os::SemFlags::NOWAIT,
                    };
                    // A failure (the set removed) leaves nothing to give back.
                    let _ = set.op(&[down]);
                }
            }
        }
    }

    fn held(&self, slot: usize) -> Option<bool> {
        match self {
            Tokens::Locks { query, .. } => lock_held(query.as_fd(), slot),
            Tokens::Set { set, .. } => {
                let num = u16::try_from(slot).ok().filter(|&n| n < MARK_AT)?;
                set.set.get_val(num).ok().map(|v| v > 0)
            }
        }
    }

    fn pidns(&self) -> Option<u64> {
        Procfs.pidns()
    }

    fn alive(&self, pid: u32, start: Option<u64>) -> bool {
        Procfs.alive(pid, start)
    }
}

/// How long [`lock_token`] waits for a dying process to let go of the token.
const TOKEN_WAIT: Duration = Duration::from_millis(20);

/// Takes entry `slot`'s token lock through `fd`; whether it holds it now. The entry was just
/// claimed, so another holder is a process reaped as soon as all its threads entered their
/// exit (`crate::table`), whose descriptors the kernel closes at the end of the exit: waits
/// for that, with short pauses, for at most [`TOKEN_WAIT`] (then the entry goes without a
/// token).
fn lock_token(fd: BorrowedFd<'_>, slot: usize) -> bool {
    let start = Instant::now();
    let mut nap = Duration::from_micros(50);
    loop {
        match ofd::set_lock(fd, LockKind::Write, LOCK_BASE + slot as u64, 1) {
            Ok(true) => return true,
            Ok(false) if start.elapsed() < TOKEN_WAIT => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(2));
            }
            _ => return false,
        }
    }
}

/// Whether entry `slot`'s token lock is held, asked through `fd` (a description holding no
/// lock; `None`: cannot tell).
fn lock_held(fd: BorrowedFd<'_>, slot: usize) -> Option<bool> {
    if slot >= MAX_ENDPOINTS {
        return None;
    }
    ofd::get_lock(fd, LOCK_BASE + slot as u64, 1)
        .ok()
        .map(|l| l.is_some())
}

/// Whether some process has the channel file `fd` refers to open through shmchan (holds
/// [`ATTACH`]), as the kernel says, in any PID namespace (`None`: cannot tell).
pub(crate) fn in_use(fd: BorrowedFd<'_>) -> Option<bool> {
    ofd::get_lock(fd, ATTACH, 1).ok().map(|l| l.is_some())
}

/// How inspection reaches a channel's tokens: the descriptor it read (a file, a memfd), or
/// the shmid it attached (with the owner the kernel reports).
#[derive(Clone, Copy)]
pub(crate) enum Probe<'a> {
    Nothing,
    Fd(BorrowedFd<'a>),
    Shm { shmid: i32, owner: u32 },
}

/// What inspection reads of tokens (read-only: never takes or gives).
pub(crate) enum Reader<'a> {
    Nothing,
    Fd(BorrowedFd<'a>),
    Set(CheckedSet),
}

impl Reader<'_> {
    /// The reader for a channel whose segment records `recorded` as its life set.
    pub(crate) fn new(probe: Probe<'_>, recorded: u32) -> Reader<'_> {
        match probe {
            Probe::Nothing => Reader::Nothing,
            Probe::Fd(fd) => Reader::Fd(fd),
            Probe::Shm { shmid, owner } => match bound_set(recorded, shmid, owner) {
                Ok(Some(set)) => Reader::Set(CheckedSet { set, shmid, owner }),
                _ => Reader::Nothing,
            },
        }
    }

    /// The checked life set, to remove with the segment.
    pub(crate) fn set(&self) -> Option<CheckedSet> {
        match self {
            Reader::Set(s) => Some(*s),
            _ => None,
        }
    }

    fn held(&self, slot: usize) -> Option<bool> {
        match self {
            Reader::Nothing => None,
            Reader::Fd(fd) => lock_held(*fd, slot),
            Reader::Set(set) => {
                let num = u16::try_from(slot).ok().filter(|&n| n < MARK_AT)?;
                set.set.get_val(num).ok().map(|v| v > 0)
            }
        }
    }
}

/// What inspection says of an endpoint (read-only): alive unless its token is down, or
/// (without a token) `/proc` says so for a pid of this PID namespace.
pub(crate) fn judged_alive(
    tokens: &Reader<'_>,
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
        if let Some(held) = tokens.held(slot) {
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
    fn pieces_round_trip() {
        for id in [0, 1, 0x7fff, 0x8000, 0x3fff_ffff, i32::MAX] {
            let p = pieces(id);
            assert!(p.iter().all(|&v| (0..=os::SEMVMX).contains(&v)));
            let back = p
                .iter()
                .enumerate()
                .fold(0u64, |a, (i, &v)| a | (v as u64) << (15 * i));
            assert_eq!(back, id as u64);
        }
    }

    #[test]
    fn a_token_lock_held_elsewhere_is_waited_for_then_given_up() {
        let path = std::env::temp_dir().join(format!("shmchan-life-lock-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        // Unlinked at once: nothing is left behind, whatever happens below.
        std::fs::remove_file(&path).unwrap();
        let (a, b) = (
            ofd::PrivateFd::reopen(file.as_fd()).unwrap(),
            ofd::PrivateFd::reopen(file.as_fd()).unwrap(),
        );
        let (a, b) = (a.fd().unwrap(), b.fd().unwrap());
        assert!(lock_token(a, 3));
        // Held by another description: tried for TOKEN_WAIT, then given up.
        let t = Instant::now();
        assert!(!lock_token(b, 3));
        assert!(t.elapsed() >= TOKEN_WAIT);
        // Another entry's byte is free.
        assert!(lock_token(b, 4));
        // Let go (before the first try or during the pauses): taken.
        std::thread::scope(|s| {
            s.spawn(|| ofd::unlock(a, LOCK_BASE + 3, 1).unwrap());
            assert!(lock_token(b, 3));
        });
        assert!(!lock_token(a, 3), "b holds it now");
    }
}
