//! Two real processes per measurement: `fork` both sides from this (single-threaded) process, pin
//! each to its CPU, run one side in each, collect one result line from each over a pipe, and never
//! wait without a deadline.
//!
//! Each child ends with `_exit` (the parent's buffers and destructors are not its to run) after
//! its side has dropped everything it owned, so a peer's own cleanup (unlinking its files, closing
//! its nodes) runs in the child that made them. A child dies with the parent (`PR_SET_PDEATHSIG`).
//! When one side fails, the deadline passes or Ctrl-C arrives, both children are killed; the caller
//! then removes whatever files the measurement created (see [`crate::names`]).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::Error;

/// Shared between the two children of a measurement (one anonymous `MAP_SHARED` page).
#[repr(C)]
pub struct Ctl {
    ready: AtomicU32,
    stop: AtomicU32,
    phase: AtomicU32,
    go: AtomicU32,
}

/// The value of [`Ctl::open_slice`]'s counter once the consumer is done with every slice.
const FINISHED: u32 = u32::MAX;

impl Ctl {
    /// Waits until both children are set up, so that no side's warm-up includes the other's
    /// setup.
    pub fn start_line(&self) -> Result<(), Error> {
        self.ready.fetch_add(1, Ordering::AcqRel);
        self.wait_until(|c| c.ready.load(Ordering::Acquire) >= 2, "the start line")
    }

    /// The consumer is ready for slice `j` (numbered from 0): the producer may start it.
    pub fn open_slice(&self, j: u32) {
        self.go.store(j + 1, Ordering::Release);
    }

    /// The consumer is done with every slice: the producer stops.
    pub fn finish(&self) {
        self.go.store(FINISHED, Ordering::Release);
    }

    /// Waits until the consumer opens slice `j` (`true`) or finishes (`false`).
    pub fn wait_slice(&self, j: u32) -> Result<bool, Error> {
        self.wait_until(
            |c| c.go.load(Ordering::Acquire) > j,
            "the consumer's next slice",
        )?;
        Ok(self.go.load(Ordering::Acquire) != FINISHED)
    }

    /// Tells the producer that slice `j` is over (it then sends the end marker).
    pub fn end_slice(&self, j: u32) {
        self.stop.store(j + 1, Ordering::Release);
    }

    /// Whether slice `j` is over.
    #[inline]
    pub fn slice_over(&self, j: u32) -> bool {
        self.stop.load(Ordering::Relaxed) > j
    }

    /// Marks setup step `n` done (for peers whose second side may only open what the first
    /// made). Steps only go forward: a lower number than one already marked changes nothing.
    pub fn set_phase(&self, n: u32) {
        self.phase.fetch_max(n, Ordering::AcqRel);
    }

    /// Waits until the other side marked setup step `n` done.
    pub fn wait_phase(&self, n: u32) -> Result<(), Error> {
        self.wait_until(
            |c| c.phase.load(Ordering::Acquire) >= n,
            "the other side's setup",
        )
    }

    fn wait_until(&self, done: impl Fn(&Ctl) -> bool, what: &str) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            if Instant::now() > deadline {
                return Err(Error::msg(format!("{what} was not reached within 10 s")));
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}

/// One side of a measurement: what a forked child runs; its `Ok` string is its result line.
pub type Side<'a> = Box<dyn FnOnce(&Ctl) -> Result<String, Error> + 'a>;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Catches SIGINT and SIGTERM: the supervisor then kills the children, the caller cleans up and
/// the run stops with an error (instead of dying with files left behind).
pub fn catch_interrupts() {
    // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Pins the calling process to `cpu`.
pub fn pin_to(cpu: usize) -> Result<(), Error> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity get valid
    // pointers to it and its size.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "sched_setaffinity(CPU {cpu}): {}",
            std::io::Error::last_os_error()
        )))
    }
}

struct Kid {
    pid: libc::pid_t,
    out: Option<File>,
    buf: Vec<u8>,
    name: &'static str,
}

impl Kid {
    fn kill(&self) {
        // SAFETY: plain kill(2) of our own, not yet reaped child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }

    fn reap(&mut self) {
        let mut st = 0;
        // SAFETY: waitpid(2) on our own child.
        unsafe { libc::waitpid(self.pid, &mut st, 0) };
    }

    fn result(&self) -> Option<Result<String, Error>> {
        let line = std::str::from_utf8(&self.buf).ok()?.strip_suffix('\n')?;
        if let Some(ok) = line.strip_prefix("ok ") {
            Some(Ok(ok.to_owned()))
        } else {
            line.strip_prefix("err ")
                .map(|e| Err(Error::msg(format!("{}: {e}", self.name))))
        }
    }
}

fn spawn(name: &'static str, cpu: Option<usize>, ctl: &Ctl, f: Side<'_>) -> Result<Kid, Error> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::msg(format!(
            "pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: both descriptors are new and owned here only.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let parent = std::process::id() as libc::pid_t;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: this process is single-threaded (no peer runs in the parent), so the child may do
    // anything the parent could; it leaves only through `_exit` below.
    match unsafe { libc::fork() } {
        -1 => Err(Error::msg(format!(
            "fork: {}",
            std::io::Error::last_os_error()
        ))),
        0 => {
            drop(r);
            // SAFETY: prctl/getppid/_exit are plain system calls.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            let res = catch_unwind(AssertUnwindSafe(|| {
                if let Some(cpu) = cpu {
                    pin_to(cpu)?;
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
            let mut w = w;
            let _ = w.write_all(line.as_bytes());
            drop(w);
            // SAFETY: ends this forked child without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        pid => {
            drop(w);
            Ok(Kid {
                pid,
                out: Some(r),
                buf: Vec::new(),
                name,
            })
        }
    }
}

/// One zeroed page of anonymous shared memory, which forked children share with their parent
/// (unmap it with `libc::munmap(page, 4096)`).
pub fn shared_page() -> Result<*mut libc::c_void, Error> {
    shared_mapping(4096).map(|p| p.as_ptr().cast())
}

/// `len` zeroed bytes of anonymous shared memory, page aligned, which forked children share
/// with their parent (unmap them with `libc::munmap(p, len)`).
pub fn shared_mapping(len: usize) -> Result<NonNull<u8>, Error> {
    // SAFETY: a fresh anonymous shared mapping; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(Error::msg(format!(
            "mmap: {}",
            std::io::Error::last_os_error()
        )));
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| Error::msg("mmap: null".into()))
}

/// Runs `a` and `b` in two forked children pinned to `cpus` and returns their result lines.
/// Fails with the first child's error (the other is killed at once), when a child dies without a
/// result, when `timeout` passes, or on Ctrl-C.
pub fn run_pair(
    names: [&'static str; 2],
    cpus: [Option<usize>; 2],
    timeout: Duration,
    a: impl FnOnce(&Ctl) -> Result<String, Error>,
    b: impl FnOnce(&Ctl) -> Result<String, Error>,
) -> Result<[String; 2], Error> {
    let page = shared_page()?;
    // SAFETY: the page is zeroed, page-aligned and larger than `Ctl` (atomics, all-zero valid);
    // it is unmapped only after both children are reaped.
    let ctl: &Ctl = unsafe { &*page.cast::<Ctl>() };
    let r = (|| {
        let mut kids = vec![spawn(names[0], cpus[0], ctl, Box::new(a))?];
        match spawn(names[1], cpus[1], ctl, Box::new(b)) {
            Ok(k) => kids.push(k),
            Err(e) => {
                kids[0].kill();
                kids[0].reap();
                return Err(e);
            }
        }
        let r = supervise(&mut kids, timeout);
        kids.iter().for_each(Kid::kill);
        kids.iter_mut().for_each(Kid::reap);
        r?;
        let x = kids[0].result().unwrap_or_else(|| Err(died(&kids[0])));
        let y = kids[1].result().unwrap_or_else(|| Err(died(&kids[1])));
        Ok([x?, y?])
    })();
    // SAFETY: the mapping made above; no child uses it any more.
    unsafe { libc::munmap(page, 4096) };
    r
}

fn died(k: &Kid) -> Error {
    Error::msg(format!("the {} process ended without a result", k.name))
}

fn supervise(kids: &mut [Kid], timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let open: Vec<usize> = (0..kids.len()).filter(|&i| kids[i].out.is_some()).collect();
        if open.is_empty() {
            return Ok(());
        }
        if interrupted() {
            return Err(Error::msg("interrupted".to_owned()));
        }
        if Instant::now() >= deadline {
            let running: Vec<&str> = open.iter().map(|&i| kids[i].name).collect();
            return Err(Error::msg(format!(
                "timed out after {:.1} s ({} still running; killed)",
                timeout.as_secs_f64(),
                running.join(" and ")
            )));
        }
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|&i| libc::pollfd {
                fd: kids[i].out.as_ref().map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        for (j, &i) in open.iter().enumerate() {
            if fds[j].revents == 0 {
                continue;
            }
            let mut chunk = [0u8; 4096];
            let n = kids[i].out.as_mut().map_or(Ok(0), |f| f.read(&mut chunk));
            match n {
                Ok(n) if n > 0 => kids[i].buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => {
                    // End of file: the child reported, or died.
                    kids[i].out = None;
                    match kids[i].result() {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e),
                        None => return Err(died(&kids[i])),
                    }
                }
            }
        }
    }
}
