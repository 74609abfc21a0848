//! Real processes per measurement (two, or a group): `fork` each, pin each child to its CPU, run
//! one side in each, collect one result line from each over a pipe, and never wait without a
//! deadline. [`usage`] reads a process's own CPU time for the sections that report it.
//!
//! The bench process is single-threaded, so a forked child may allocate, open files and use
//! shmchan freely. Each child ends with `_exit` (the parent's buffers and destructors are not
//! its to run). The supervisor kills both children when one fails, when the deadline passes,
//! and on Ctrl-C; a [`Kid`] that is dropped unreaped is killed and reaped, so no early return
//! leaves a process behind.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::signal::{kill, Signal};
use nix::sys::time::TimeVal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use shmchan_os::SharedMapping;

use super::{sys, Error};

/// Why the processes of a measurement did not bring back their results.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcError {
    /// SIGINT or SIGTERM arrived: the children were killed. Stops the run.
    #[error("interrupted")]
    Interrupted,
    /// Not every child reached the start line in time.
    #[error("the other side did not get ready within 10 s")]
    NotReady,
    /// A child reported an error (its message, which crossed the process boundary as text).
    #[error("{process}: {message}")]
    Failed {
        /// The child (`producer`, `pinger`, …).
        process: String,
        /// What it reported, on one line.
        message: String,
    },
    /// A child ended without reporting anything.
    #[error("the {process} process {end}")]
    Died {
        /// The child.
        process: String,
        /// How it ended.
        end: End,
    },
    /// The deadline passed; the children still running were killed.
    #[error(
        "timed out after {:.1} s ({} still running; killed)",
        after.as_secs_f64(),
        running.join(" and ")
    )]
    TimedOut {
        /// The deadline.
        after: Duration,
        /// The children that had not reported.
        running: Vec<String>,
    },
    /// A pair of processes came back with fewer than two results.
    #[error("a process result is missing")]
    MissingResult,
    /// More children than the start line can count.
    #[error("too many processes")]
    TooMany,
    /// Creating, forking or watching the children failed.
    #[error("{call}: {source}")]
    Sys {
        /// `pipe`, `fork`, `poll`.
        call: &'static str,
        /// Its errno.
        source: Errno,
    },
    /// The page the children share could not be mapped.
    #[error("{0}")]
    Os(#[from] shmchan_os::Error),
}

/// How a child that reported nothing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Killed by a signal.
    Killed(Signal),
    /// Exited with this status.
    Exited(i32),
    /// Reaped by somebody else, or unknown.
    Unknown,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Killed(sig) => write!(f, "was killed by {sig:?}"),
            End::Exited(code) => write!(f, "exited with status {code} without a result"),
            End::Unknown => f.write_str("ended without a result"),
        }
    }
}

/// Shared between the children of a measurement (one anonymous `MAP_SHARED` page).
#[repr(C)]
pub struct Ctl {
    /// How many children reached the start line.
    ready: AtomicU32,
    /// How many children the start line waits for (set before the first fork).
    parties: AtomicU32,
    /// Set by the consumer when its window is over: the producer sends the end marker.
    stop: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<Ctl>() <= 4096);

impl Ctl {
    /// Waits (yielding) until every child is set up, so that no side's warm-up includes
    /// another's setup.
    pub fn start_line(&self) -> Result<(), ProcError> {
        // Relaxed is enough: the children exchange nothing through memory here but this count;
        // their channels carry their own synchronisation. `parties` was written before fork.
        self.ready.fetch_add(1, Ordering::Relaxed);
        let parties = self.parties.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ready.load(Ordering::Relaxed) < parties {
            if Instant::now() > deadline {
                return Err(ProcError::NotReady);
            }
            std::thread::yield_now();
        }
        Ok(())
    }

    /// Tells the producer to finish.
    pub fn set_stop(&self) {
        self.stop.store(1, Ordering::Relaxed);
    }

    /// Whether the consumer asked the producer to finish.
    #[inline]
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) != 0
    }
}

/// One forked child under supervision.
struct Kid {
    name: String,
    pid: Pid,
    out: Option<File>,
    buf: Vec<u8>,
    status: Option<WaitStatus>,
}

impl Kid {
    fn kill(&self) {
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
    }

    /// Reaps the child, killing it if it has not exited within `grace`.
    fn reap(&mut self, grace: Duration) {
        if self.status.is_some() {
            return;
        }
        let deadline = Instant::now() + grace;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(st) => {
                    self.status = Some(st);
                    return;
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    // ECHILD: somebody else reaped it; nothing is left to wait for.
                    self.status = Some(WaitStatus::StillAlive);
                    return;
                }
            }
            if Instant::now() >= deadline {
                let _ = kill(self.pid, Signal::SIGKILL);
                // SIGKILL cannot be caught: a blocking wait ends promptly.
                loop {
                    match waitpid(self.pid, None) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        Ok(st) => self.status = Some(st),
                        Err(_) => self.status = Some(WaitStatus::StillAlive),
                    }
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn died(&self) -> ProcError {
        let end = match self.status {
            Some(WaitStatus::Signaled(_, sig, _)) => End::Killed(sig),
            Some(WaitStatus::Exited(_, code)) => End::Exited(code),
            _ => End::Unknown,
        };
        ProcError::Died {
            process: self.name.clone(),
            end,
        }
    }

    /// `Some(Ok(payload))`, `Some(Err(error))`, or `None` while nothing complete arrived.
    fn result(&self) -> Option<Result<String, ProcError>> {
        let text = std::str::from_utf8(&self.buf).ok()?;
        let line = text.strip_suffix('\n')?;
        if let Some(ok) = line.strip_prefix("ok ") {
            Some(Ok(ok.to_owned()))
        } else {
            line.strip_prefix("err ").map(|e| {
                Err(ProcError::Failed {
                    process: self.name.clone(),
                    message: e.to_owned(),
                })
            })
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
        self.reap(Duration::from_secs(1));
    }
}

/// Forks one child that pins itself, runs `f` and reports its result; returns its handle.
fn spawn(name: String, cpu: Option<usize>, ctl: &Ctl, f: Side<'_>) -> Result<Kid, ProcError> {
    let (r, w) = nix::unistd::pipe().map_err(|source| ProcError::Sys {
        call: "pipe",
        source,
    })?;
    let parent = nix::unistd::getpid();
    // Nothing buffered may be written twice (by parent and child).
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: this process is single-threaded (the bench runs on the main thread only), so the
    // child may do anything the parent could; it leaves only through `child_main`'s `_exit`.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(r);
            child_main(w, parent, cpu, ctl, f)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            Ok(Kid {
                name,
                pid: child,
                out: Some(File::from(r)),
                buf: Vec::new(),
                status: None,
            })
        }
        Err(source) => Err(ProcError::Sys {
            call: "fork",
            source,
        }),
    }
}

fn child_main(w: OwnedFd, parent: Pid, cpu: Option<usize>, ctl: &Ctl, f: Side<'_>) -> ! {
    // A supervisor killed with SIGKILL cannot kill us: die with it rather than spin forever.
    // (It cannot fail for a valid signal; if it did, the check below still covers a supervisor
    // that is already gone.)
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        // The supervisor died before the attribute was set.
        shmchan_os::process::_exit(1);
    }
    let res = catch_unwind(AssertUnwindSafe(|| {
        if let Some(cpu) = cpu {
            sys::pin_to(cpu)?;
        }
        f(ctl)
    }));
    let line = match res {
        Ok(Ok(s)) => format!("ok {s}\n"),
        Ok(Err(e)) => format!("err {}\n", e.to_string().replace('\n', " ")),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            format!("err panicked: {}\n", msg.replace('\n', " "))
        }
    };
    let mut out = File::from(w);
    let _ = out.write_all(line.as_bytes());
    drop(out);
    // End this forked child at once, without running the parent's exit handlers or flushing
    // its stdio buffers; `f` already dropped everything it owned.
    shmchan_os::process::_exit(0)
}

/// One side of a measurement: what a forked child runs.
pub type Side<'a> = Box<dyn FnOnce(&Ctl) -> Result<String, Error> + 'a>;

/// Runs `a` and `b` in two forked children (pinned to `cpus`), each handed the shared [`Ctl`],
/// and returns their results. Fails with the first child's error (the other child is killed
/// at once), when a child dies without a result, when `timeout` passes (both are killed), or
/// on Ctrl-C ([`ProcError::Interrupted`]).
pub fn run_pair(
    names: [&str; 2],
    cpus: [Option<usize>; 2],
    timeout: Duration,
    a: impl FnOnce(&Ctl) -> Result<String, Error>,
    b: impl FnOnce(&Ctl) -> Result<String, Error>,
) -> Result<[String; 2], ProcError> {
    let sides: Vec<(String, Option<usize>, Side<'_>)> = vec![
        (names[0].to_owned(), cpus[0], Box::new(a)),
        (names[1].to_owned(), cpus[1], Box::new(b)),
    ];
    let mut out = run_group(sides, timeout)?.into_iter();
    match (out.next(), out.next()) {
        (Some(a), Some(b)) => Ok([a, b]),
        _ => Err(ProcError::MissingResult),
    }
}

/// Like [`run_pair`] for any number of children, each `(name, cpu, side)`; the start line
/// waits for all of them. Returns their results in order.
pub fn run_group(
    sides: Vec<(String, Option<usize>, Side<'_>)>,
    timeout: Duration,
) -> Result<Vec<String>, ProcError> {
    let page = SharedMapping::anonymous(4096)?;
    // SAFETY: the mapping is 4096 zeroed, page-aligned bytes (>= size and alignment of `Ctl`,
    // checked above); all-zero is a valid `Ctl` (atomics); it is only accessed through
    // atomics, and it outlives `ctl` (dropped at the end of this function, after the children
    // are reaped).
    let ctl: &Ctl = unsafe { &*page.as_ptr().as_ptr().cast::<Ctl>() };
    let parties = u32::try_from(sides.len()).map_err(|_| ProcError::TooMany)?;
    ctl.parties.store(parties, Ordering::Relaxed);
    let mut kids = Vec::with_capacity(sides.len());
    for (name, cpu, f) in sides {
        kids.push(spawn(name, cpu, ctl, f)?);
    }
    let r = supervise(&mut kids, timeout);
    for k in &mut kids {
        k.reap(Duration::from_secs(2));
    }
    r?;
    kids.iter()
        .map(|k| match k.result() {
            Some(r) => r,
            None => Err(k.died()),
        })
        .collect()
}

/// A process's CPU time and context switches so far (`getrusage(RUSAGE_SELF)`: every thread
/// of the calling process).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User CPU time.
    pub user: Duration,
    /// System CPU time.
    pub sys: Duration,
    /// Voluntary context switches (the process blocked: a sleep on a doorbell, a yield).
    pub nvcsw: u64,
    /// Involuntary context switches (preempted).
    pub nivcsw: u64,
    /// Time its threads were runnable but waited for a CPU (`/proc/self/task/*/schedstat`,
    /// field 2; `None` without schedstats). Threads that already exited are not counted.
    pub runq: Option<Duration>,
}

/// The run-queue wait of every thread of the calling process (see [`Usage::runq`]).
fn runq_wait() -> Option<Duration> {
    let mut total = 0u64;
    for e in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let text = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
        total += text.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// The calling process's [`Usage`] now.
pub fn usage() -> Usage {
    let tv = |t: TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    // RUSAGE_SELF cannot fail (the buffer is nix's own); if it did, the counts stay zero.
    let Ok(ru) = getrusage(UsageWho::RUSAGE_SELF) else {
        return Usage {
            runq: runq_wait(),
            ..Usage::default()
        };
    };
    Usage {
        user: tv(ru.user_time()),
        sys: tv(ru.system_time()),
        nvcsw: ru.voluntary_context_switches().max(0) as u64,
        nivcsw: ru.involuntary_context_switches().max(0) as u64,
        runq: runq_wait(),
    }
}

impl Usage {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
            nvcsw: self.nvcsw.saturating_sub(earlier.nvcsw),
            nivcsw: self.nivcsw.saturating_sub(earlier.nivcsw),
            runq: match (self.runq, earlier.runq) {
                (Some(a), Some(b)) => Some(a.saturating_sub(b)),
                _ => None,
            },
        }
    }

    /// User plus system time.
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

fn supervise(kids: &mut [Kid], timeout: Duration) -> Result<(), ProcError> {
    let deadline = Instant::now() + timeout;
    let mut first_error: Option<ProcError> = None;
    loop {
        let open: Vec<usize> = (0..kids.len()).filter(|&i| kids[i].out.is_some()).collect();
        if open.is_empty() {
            return match first_error {
                Some(e) => Err(e),
                None => Ok(()),
            };
        }
        if sys::interrupted() {
            kids.iter().for_each(Kid::kill);
            return Err(ProcError::Interrupted);
        }
        let now = Instant::now();
        if now >= deadline {
            kids.iter().for_each(Kid::kill);
            let running: Vec<String> = open.iter().map(|&i| kids[i].name.clone()).collect();
            return Err(first_error.unwrap_or(ProcError::TimedOut {
                after: timeout,
                running,
            }));
        }
        let slice = (deadline - now).min(Duration::from_millis(100));
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = open
                .iter()
                .map(|&i| {
                    let f = kids[i].out.as_ref().expect("open kids have a pipe");
                    PollFd::new(f.as_fd(), PollFlags::POLLIN)
                })
                .collect();
            let t = PollTimeout::try_from(slice).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, t) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(source) => {
                    kids.iter().for_each(Kid::kill);
                    return Err(ProcError::Sys {
                        call: "poll",
                        source,
                    });
                }
            }
            fds.iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        for (j, &i) in open.iter().enumerate() {
            if !ready[j] {
                continue;
            }
            let mut chunk = [0u8; 4096];
            let n = match kids[i].out.as_mut().expect("open").read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n > 0 {
                kids[i].buf.extend_from_slice(&chunk[..n]);
                continue;
            }
            // End of file: the child reported (or died).
            kids[i].out = None;
            let failed = match kids[i].result() {
                Some(Ok(_)) => None,
                Some(Err(e)) => Some(e),
                None => {
                    kids[i].reap(Duration::from_secs(1));
                    Some(kids[i].died())
                }
            };
            if let Some(e) = failed {
                if first_error.is_none() {
                    first_error = Some(e);
                }
                // The peer may now wait forever for this side: end it.
                kids.iter().for_each(Kid::kill);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The test harness is multi-threaded; the children here only sleep, allocate (glibc's
    //! `fork` leaves malloc usable in the child) and write to their result pipe.

    use super::*;

    fn forever(_: &Ctl) -> Result<String, Error> {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    #[test]
    fn both_results_come_back() {
        let r = run_pair(
            ["a", "b"],
            [None, None],
            Duration::from_secs(10),
            |c| {
                c.start_line()?;
                c.set_stop();
                Ok("1".into())
            },
            |c| {
                c.start_line()?;
                while !c.stopped() {
                    std::hint::spin_loop();
                }
                Ok("2 and more".into())
            },
        );
        assert_eq!(r.unwrap(), ["1".to_owned(), "2 and more".to_owned()]);
    }

    #[test]
    fn a_group_starts_together_and_reports_in_order() {
        let sides: Vec<(String, Option<usize>, Side<'_>)> = (0..3)
            .map(|i| {
                let f: Side<'_> = Box::new(move |c: &Ctl| {
                    c.start_line()?;
                    let u = usage();
                    Ok(format!("{i} {}", u.runq.is_some()))
                });
                (format!("p{i}"), None, f)
            })
            .collect();
        let r = run_group(sides, Duration::from_secs(10)).unwrap();
        assert_eq!(r.len(), 3);
        for (i, line) in r.iter().enumerate() {
            assert!(line.starts_with(&format!("{i} ")), "{r:?}");
        }
        let a = usage();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(usage().since(&a).cpu() > Duration::ZERO);
    }

    #[test]
    fn an_error_ends_the_peer_at_once() {
        let t = Instant::now();
        let r = run_pair(
            ["a", "b"],
            [None, None],
            Duration::from_secs(20),
            |_| {
                Err(Error::Io {
                    op: "write",
                    source: std::io::Error::other("boom\nsecond line"),
                })
            },
            forever,
        );
        // The child's error comes back as its text, on one line.
        let e = r.unwrap_err();
        assert!(matches!(e, ProcError::Failed { .. }), "{e:?}");
        assert_eq!(e.to_string(), "a: write: boom second line");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_hang_is_killed_at_the_deadline() {
        let t = Instant::now();
        let r = run_pair(
            ["a", "b"],
            [None, None],
            Duration::from_millis(300),
            forever,
            forever,
        );
        let e = r.unwrap_err();
        assert!(matches!(e, ProcError::TimedOut { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("timed out") && e.contains("a and b"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_panic_and_a_crash_are_reported() {
        let r = run_pair(
            ["a", "b"],
            [None, None],
            Duration::from_secs(20),
            |_| panic!("oops"),
            forever,
        );
        assert_eq!(r.unwrap_err().to_string(), "a: panicked: oops");
        let r = run_pair(
            ["a", "b"],
            [None, None],
            Duration::from_secs(20),
            forever,
            |_| std::process::abort(),
        );
        let e = r.unwrap_err();
        assert!(matches!(e, ProcError::Died { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("b process was killed by SIGABRT"), "{e}");
    }
}
