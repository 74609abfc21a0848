//! Process identity for dead-peer detection: a pid plus its start time (`/proc/<pid>/stat`).
//!
//! A pid alone is not an identity: after a process exits, the kernel may give its pid to a new
//! process. The pair (pid, start time in clock ticks since boot) is unique for the life of the
//! system, so a peer recorded as `(pid, start_time)` is alive exactly when
//! [`start_time`]`(pid)` still returns the same value and some thread of it can still run
//! its own code (see [`is_alive`]: a process killed with `kill -9` stops being alive as soon
//! as all its threads have entered the kernel's exit, before the kernel has torn down its
//! memory and made it a zombie).
//!
//! ```
//! use shmchan_os::process;
//!
//! let me = std::process::id() as i32;
//! let started = process::start_time(me)?.expect("we exist");
//! assert!(process::is_alive(me, started));
//! assert!(!process::is_alive(me, started + 1)); // same pid, different process
//! # Ok::<(), shmchan_os::Error>(())
//! ```
//!
//! [`_exit`] ends a process at once, for a forked child that must not run its parent's exit
//! handlers or flush its buffers (nix has `fork` but not `_exit`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use nix::errno::Errno;

use crate::error::{errno_of_io, Error, Result};

/// The fields of `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) that identify a
/// process and tell whether it still runs.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `T`, `Z` (zombie: exited, not yet reaped), `X` (dead), ...
    pub state: char,
    /// Field 9: the kernel's flags of the task (`PF_*` in `linux/sched.h`).
    pub flags: u64,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

/// `PF_EXITING` (`linux/sched.h`): the task has entered `do_exit` and never returns to its
/// own code. The kernel sets it first thing in the exit, before it releases the task's
/// memory, robust futexes, locks and descriptors; a `kill -9` sets it in every thread.
pub const PF_EXITING: u64 = 0x4;

impl ProcStat {
    /// Whether this task has finished running its own code: it is exiting, a zombie or dead.
    pub fn ended(&self) -> bool {
        self.flags & PF_EXITING != 0 || matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads and parses `/proc/<pid>/stat`; `None` when no such process exists.
///
/// The command name (field 2) may contain spaces and parentheses, so parsing starts after the
/// *last* `)`.
pub fn stat(pid: i32) -> Result<Option<ProcStat>> {
    if pid <= 0 {
        return Ok(None);
    }
    read_stat(format!("/proc/{pid}/stat"))
}

/// A failed look at `path` in `/proc` (`op`: the call): `None` when the process or thread is
/// gone (`ENOENT`, or `ESRCH` while it is being released), the error otherwise.
fn gone_or_error<T>(op: &'static str, path: &str, e: &std::io::Error) -> Result<Option<T>> {
    match errno_of_io(e) {
        Errno::ENOENT | Errno::ESRCH => Ok(None),
        errno => Err(Error::new(op, format!("path={path:?}"), errno)),
    }
}

/// Reads and parses one `stat` file of `/proc`; `None` when it does not exist.
fn read_stat(path: String) -> Result<Option<ProcStat>> {
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) => return gone_or_error("read", &path, &e),
    };
    parse_stat(&text).map(Some).ok_or_else(|| {
        Error::new("read", format!("path={path:?}"), Errno::EIO)
            .with_hint("unexpected /proc/<pid>/stat format")
    })
}

fn parse_stat(text: &[u8]) -> Option<ProcStat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // Field 3 is the first after the `)`, so field 9 is 6 further and field 22 13 after it.
    let state = fields.next()?.chars().next()?;
    let flags = fields.nth(5)?.parse().ok()?;
    let start_time = fields.nth(12)?.parse().ok()?;
    Some(ProcStat {
        state,
        flags,
        start_time,
    })
}

/// Field 22 of `/proc/<pid>/stat`: the start time of `pid` in clock ticks after boot; `None`
/// when no such process exists. A zombie still has one (see [`is_alive`]).
pub fn start_time(pid: i32) -> Result<Option<u64>> {
    Ok(stat(pid)?.map(|s| s.start_time))
}

/// Whether the process `pid` that started at `start_time` still runs: it exists, has that start
/// time (the pid was not reused) and some thread of it can still run its own code. A process
/// whose every thread has entered the kernel's exit (`PF_EXITING`, or a zombie) is not alive:
/// after `kill -9` that is the case within microseconds, while the exit itself (tearing down
/// its memory, closing its descriptors, becoming a zombie) can take the kernel a millisecond
/// more. A zombie main thread whose other threads still run (it called `pthread_exit`) is
/// alive. Unreadable `/proc` counts as alive (a false "dead" would wrongly disconnect a
/// peer).
///
/// ```
/// use shmchan_os::process;
///
/// let me = std::process::id() as i32;
/// let started = process::start_time(me)?.unwrap();
/// assert!(process::is_alive(me, started));
/// assert!(!process::is_alive(i32::MAX, started)); // above pid_max: no such process
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    match stat(pid) {
        Ok(Some(s)) => s.start_time == start_time && (!s.ended() || some_thread_runs(pid)),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// Whether some thread of process `pid` has not entered its exit (errors: yes). The threads
/// are listed twice, around the look at each: a thread made after the first listing was made
/// by one that was not exiting yet (an exiting thread makes none), which the look then saw
/// running, or it is in the second listing.
fn some_thread_runs(pid: i32) -> bool {
    let before = match threads(pid) {
        Ok(Some(t)) => t,
        Ok(None) => return false,
        Err(_) => return true,
    };
    for &tid in &before {
        match read_stat(format!("/proc/{pid}/task/{tid}/stat")) {
            Ok(Some(s)) if !s.ended() => return true,
            // Gone (released) or ended.
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    match threads(pid) {
        Ok(Some(after)) => after.iter().any(|t| before.binary_search(t).is_err()),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// The thread ids of process `pid` (`/proc/<pid>/task`), sorted; `None` when it is gone.
fn threads(pid: i32) -> Result<Option<Vec<i32>>> {
    let path = format!("/proc/{pid}/task");
    let dir = match std::fs::read_dir(&path) {
        Ok(d) => d,
        Err(e) => return gone_or_error("opendir", &path, &e),
    };
    let mut tids = Vec::new();
    for entry in dir {
        let entry =
            entry.map_err(|e| Error::new("readdir", format!("path={path:?}"), errno_of_io(&e)))?;
        if let Some(tid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    Ok(Some(tids))
}

/// The identity of this process's PID namespace: the device and inode of
/// `/proc/self/ns/pid` (`stat`), packed as `dev << 32 | inode` (the kernel numbers namespace
/// inodes with 32 bits); `None` when `/proc` is not mounted or does not show this process.
///
/// Two processes are in the same PID namespace exactly when their identities are equal, and
/// only then can one judge the other's pid. A process's PID namespace never changes
/// (`unshare(CLONE_NEWPID)` and `setns` move only the children it makes later).
///
/// ```
/// use shmchan_os::process;
///
/// let ns = process::pid_namespace();
/// assert_eq!(ns, process::pid_namespace());
/// assert_ne!(ns, Some(0));
/// ```
pub fn pid_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/self/ns/pid").ok()?;
    let id = (m.dev() & 0xffff_ffff) << 32 | (m.ino() & 0xffff_ffff);
    (id != 0).then_some(id)
}

/// Whether the `/proc` mounted here is the one of this process's own PID namespace: it shows
/// this process under the pid `getpid` returns. Under `unshare --pid --fork` without
/// `--mount-proc`, `/proc` still shows the parent namespace, whose pids are other numbers: a
/// pid from this namespace must not be looked up there.
///
/// ```
/// // A test host mounts its own /proc.
/// assert!(shmchan_os::process::procfs_is_own());
/// ```
pub fn procfs_is_own() -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse::<u32>().ok())
        == Some(std::process::id())
}

/// `_exit(2)`: ends the calling process at once with `status`, without running `atexit`
/// handlers, flushing stdio buffers or running destructors. Async-signal-safe, so a forked
/// child of a multi-threaded process may call it.
///
/// ```no_run
/// use nix::unistd::{fork, ForkResult};
///
/// // SAFETY: the child only calls `_exit`, which is async-signal-safe.
/// if let ForkResult::Child = unsafe { fork() }? {
///     shmchan_os::process::_exit(0);
/// }
/// # Ok::<(), nix::errno::Errno>(())
/// ```
pub fn _exit(status: i32) -> ! {
    // SAFETY: `_exit` takes no pointer, cannot fail and does not return.
    unsafe { libc::_exit(status) }
}

/// Forks of this process's ancestry seen so far: 0 in a process that never forked from one
/// that counted, incremented in each child by a `pthread_atfork` handler (see
/// [`fork_generation`]).
static FORKS: AtomicU64 = AtomicU64::new(0);
static COUNTING: Once = Once::new();

extern "C" fn count_fork_in_child() {
    // Async-signal-safe: one atomic add, in the child's copy of this process.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Starts counting forks (once per process; `pthread_atfork` registers a child handler) and
/// returns this process's fork generation: a value that differs in every child made by
/// `fork(3)` from the value its parent had. An object that records the generation when it is
/// made can tell, with one load ([`forks`]), that it is being used in a forked child.
///
/// Children made by `fork(3)` (what `nix::unistd::fork` and `libc::fork` call) are counted;
/// a raw `clone` system call that bypasses libc's fork is not.
///
/// ```no_run
/// use nix::unistd::{fork, ForkResult};
/// use shmchan_os::process;
///
/// let made_in = process::fork_generation();
/// // SAFETY: the child calls only async-signal-safe functions.
/// match unsafe { fork() }? {
///     ForkResult::Child => process::_exit((process::forks() == made_in) as i32),
///     ForkResult::Parent { .. } => assert_eq!(process::forks(), made_in),
/// }
/// # Ok::<(), nix::errno::Errno>(())
/// ```
pub fn fork_generation() -> u64 {
    COUNTING.call_once(|| {
        // SAFETY: registers a handler that does one atomic add; it is never unregistered, and
        // the function lives as long as the program. `pthread_atfork` fails only on ENOMEM,
        // when forks go uncounted (nothing is unsound then, only undetected).
        unsafe {
            libc::pthread_atfork(None, None, Some(count_fork_in_child));
        }
    });
    forks()
}

/// The current fork generation (see [`fork_generation`], which must have been called once
/// before a fork for that fork to count). One relaxed load.
#[inline]
pub fn forks() -> u64 {
    FORKS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_after_the_last_paren() {
        let line =
            b"4242 (a) b) c) S 1 2 3 4 5 4194308 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.flags, 4194308);
        assert!(s.ended(), "PF_EXITING is set in 4194308");
        assert_eq!(s.start_time, 777);
    }

    #[test]
    fn short_line_is_rejected() {
        assert_eq!(parse_stat(b"1 (x) S 1 2 3"), None);
        assert_eq!(parse_stat(b"no paren"), None);
    }
}
