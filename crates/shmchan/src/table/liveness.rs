//! How the table tells whether the process behind an entry lives (see [`Liveness`]).

use shmchan_os as os;

use super::{Entry, Table};
use crate::sync::Ordering;

/// A process as the table records it: pid, start time (0 when unknown) and PID namespace
/// (0 when unknown). All three are the process's, shared by its threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Process {
    pub pid: u32,
    pub start: u64,
    pub pidns: u64,
}

impl Process {
    /// This process. Its start time and namespace are recorded only when the `/proc` here
    /// is its own namespace's (otherwise `/proc/<pid>` is another process, whose start time
    /// would make a peer that judges by `/proc` take this one for dead).
    pub(crate) fn me() -> Process {
        let pid = std::process::id();
        match own_pidns() {
            Some(pidns) => Process {
                pid,
                start: os::process::start_time(pid as i32)
                    .ok()
                    .flatten()
                    .unwrap_or(0),
                pidns,
            },
            None => Process {
                pid,
                start: 0,
                pidns: 0,
            },
        }
    }
}

/// This process's PID namespace when the `/proc` here is that namespace's (so that a pid
/// from it can be looked up there); cached per process (a forked child asks again: its
/// parent may have moved its children to a new namespace).
fn own_pidns() -> Option<u64> {
    use std::sync::atomic::{AtomicU64 as StdU64, Ordering::Relaxed};
    // (pid << 1 | known) and the namespace: a process-local cache, not shared memory.
    static PID: StdU64 = StdU64::new(0);
    static NS: StdU64 = StdU64::new(0);
    let pid = u64::from(std::process::id());
    if PID.load(Relaxed) == pid << 1 | 1 {
        let ns = NS.load(Relaxed);
        return (ns != 0).then_some(ns);
    }
    let ns = if os::process::procfs_is_own() {
        os::process::pid_namespace()
    } else {
        None
    };
    NS.store(ns.unwrap_or(0), Relaxed);
    PID.store(pid << 1 | 1, Relaxed);
    ns
}

/// How the table learns whether the process behind an entry lives: the kernel's life tokens
/// (`crate::life`), and `/proc` for pids of this process's own PID namespace. Loom cannot
/// model processes, so its models pass a fake one; the real one is `crate::life::Tokens`.
///
/// A life token is held by a process for its entry from its registration (an OFD lock on the
/// channel's file, or a SysV semaphore raised with `SEM_UNDO`) until it leaves (it gives the
/// token back) or dies (the kernel drops it, whatever PID namespace the process is in). An entry is judged:
/// - by its token when it holds one: dead when the token is down while the entry is
///   unchanged (the life word is the one read before the token), or, for a process of the
///   judge's PID namespace, as soon as `/proc` shows every thread of it in its exit (the
///   kernel drops the token only at the end of the exit, after it has torn down the
///   process's memory);
/// - otherwise by its pid and start time in `/proc`, only when the entry recorded the same
///   PID namespace as the judge's;
/// - otherwise never taken for dead: a peer from another PID namespace without a token (its
///   channel has no token set, or the set is in another IPC namespace) stays "alive" until it
///   leaves; if it dies, its entry stays until the channel is removed.
pub(crate) trait Liveness {
    /// Takes the life token of entry `slot` for this process; whether it holds it now.
    fn take(&self, _slot: usize) -> bool {
        false
    }
    /// Gives the life token of entry `slot` back, if this process holds it.
    fn give(&self, _slot: usize) {}
    /// Whether the life token of entry `slot` is held (`None`: cannot tell).
    fn held(&self, _slot: usize) -> Option<bool> {
        None
    }
    /// The PID namespace whose pids [`Liveness::alive`] judges (`None`: it judges none).
    fn pidns(&self) -> Option<u64>;
    /// Whether process `pid` (of the namespace [`Liveness::pidns`]) runs; with `start`, only
    /// if it started then (not a reused pid); without, judged by the pid alone (an entry
    /// still registering, or no start time known).
    fn alive(&self, pid: u32, start: Option<u64>) -> bool;
}

/// The kernel's answer from `/proc` alone (no life tokens; unreadable `/proc` counts as
/// alive).
pub(crate) struct Procfs;

impl Liveness for Procfs {
    fn pidns(&self) -> Option<u64> {
        own_pidns()
    }

    fn alive(&self, pid: u32, start: Option<u64>) -> bool {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        match start {
            // `Ok(None)`: no such process; an error (unreadable /proc) counts as alive.
            None => !matches!(os::process::start_time(pid), Ok(None)),
            Some(start) => os::process::is_alive(pid, start),
        }
    }
}

/// The life word of an entry (`Entry::life`): `NS_RECORDED` once the claimer wrote its PID
/// namespace and start time, `HOLDS_TOKEN` once it took its life token; the bits above are a
/// generation that every freeing advances (so that a reaper tells a token given back by a
/// departure, or lost by a death, from one of a later owner).
pub(crate) struct Life;

impl Life {
    pub(crate) const HOLDS_TOKEN: u32 = 1;
    pub(crate) const NS_RECORDED: u32 = 2;

    /// The word of a freed entry: flags cleared, generation advanced.
    pub(super) fn freed(word: u32) -> u32 {
        (word & !3).wrapping_add(4)
    }
}

/// The judgement of one entry, from its words and a [`Liveness`].
impl Table<'_> {
    /// Whether the process behind entry `slot` (claimed by `pid`; `ours`: live in the role
    /// the reaper looks at; `word`: its life word, read after the claim word and the masks)
    /// is dead, as far as `life` can tell (see [`Liveness`] for the rules).
    pub(super) fn dead(
        slot: usize,
        ep: &Entry,
        pid: u32,
        ours: bool,
        word: u32,
        life: &dyn Liveness,
    ) -> bool {
        if i32::try_from(pid).is_err() {
            // No process has such a pid (ORPHAN, or a scribbled claim word).
            return true;
        }
        if word & Life::HOLDS_TOKEN != 0 {
            match life.held(slot) {
                // Held: alive, unless `/proc` shows a process of this PID namespace whose
                // every thread has entered its exit already (the kernel drops the token only
                // at the end of the exit, after it has torn down the process's memory, which
                // can take a millisecond).
                Some(true) if !(ours && Self::by_pid(ep, pid, ours, word, life) == Some(true)) => {
                    return false
                }
                // Down (or going): a death, unless the holder left (or left and came back)
                // meanwhile.
                // SYNC(endpoint-life): Acquire, as the first read.
                Some(_) => return ep.life.load(Ordering::Acquire) == word,
                None => {}
            }
        }
        Self::by_pid(ep, pid, ours, word, life).unwrap_or(false)
    }

    /// Whether `/proc` says the process behind the entry is dead (`None`: it cannot tell, the
    /// entry being of another PID namespace, or of an unknown one).
    fn by_pid(ep: &Entry, pid: u32, ours: bool, word: u32, life: &dyn Liveness) -> Option<bool> {
        // SYNC(endpoint-life): NS_RECORDED seen (Acquire): the namespace and start time are
        // this claim's.
        let ns = ep.pidns.load(Ordering::Relaxed);
        if word & Life::NS_RECORDED == 0 || ns == 0 || life.pidns() != Some(ns) {
            // Another PID namespace (or unknown): its pid means nothing here.
            return None;
        }
        let start = ep.start_time.load(Ordering::Relaxed);
        // Still registering (or a host without /proc start times): judge by pid alone.
        let known = (start != 0 && ours).then_some(start);
        Some(!life.alive(pid, known))
    }
}
