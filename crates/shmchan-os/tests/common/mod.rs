//! Support shared by the shmchan-os integration tests: unique keys, names and paths, guards that
//! remove what a test creates (also when it panics), a fork helper, and a signal helper that
//! interrupts a blocked thread to exercise the EINTR policy.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use shmchan_os::{ErrorKind, Key, NamedSem, PosixMq, Result};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn nanos() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// pid, a per-process counter and the nanosecond clock: unique across concurrent test runs.
pub fn unique_suffix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}-{}", std::process::id(), nanos())
}

/// A key derived from pid, counter and clock; never `IPC_PRIVATE`. Collisions are possible, so
/// create through [`create_unique`], which retries on `EEXIST`.
pub fn unique_key() -> Key {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed =
        (std::process::id().rotate_left(16) ^ n.wrapping_mul(0x9e37_79b9) ^ nanos()) | 0x4000_0000; // never 0 (IPC_PRIVATE), never negative
    Key::new((mixed & 0x7fff_ffff) as i32)
}

/// Calls `create` with fresh keys until one is not taken.
pub fn create_unique<T>(mut create: impl FnMut(Key) -> Result<T>) -> (Key, T) {
    for _ in 0..100 {
        let key = unique_key();
        match create(key) {
            Ok(v) => return (key, v),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create failed: {e}"),
        }
    }
    panic!("no free key after 100 attempts");
}

/// A POSIX name (`/shmchan-os-test-<what>-<pid>-<n>-<ns>`).
pub fn unique_name(what: &str) -> String {
    format!("/shmchan-os-test-{what}-{}", unique_suffix())
}

/// Unlinks a POSIX message queue name on drop.
pub struct MqName(pub String);

impl MqName {
    pub fn new() -> MqName {
        MqName(unique_name("mq"))
    }
}

impl Drop for MqName {
    fn drop(&mut self) {
        let _ = PosixMq::unlink(&self.0);
    }
}

/// Unlinks a named semaphore on drop.
pub struct SemName(pub String);

impl SemName {
    pub fn new() -> SemName {
        SemName(unique_name("sem"))
    }
}

impl Drop for SemName {
    fn drop(&mut self) {
        let _ = NamedSem::unlink(&self.0);
    }
}

/// A fresh directory under the system temp dir, removed with its contents on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("shmchan-os-test-{}", unique_suffix()));
        std::fs::create_dir(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Held around every `fork` of the test binary (tests run on parallel threads).
static FORK_LOCK: Mutex<()> = Mutex::new(());

/// How a forked child ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled(Signal),
    /// It did not end in time and was killed.
    TimedOut,
}

/// A forked child; killed and reaped on drop if the test did not wait for it.
pub struct Child {
    pid: Pid,
    reaped: bool,
}

impl Child {
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Waits up to `timeout` for the child to end; kills it (SIGKILL) after that.
    pub fn wait(&mut self, timeout: Duration) -> ChildEnd {
        let deadline = Instant::now() + timeout;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => {
                    self.reaped = true;
                    return ChildEnd::Exited(code);
                }
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    self.reaped = true;
                    return ChildEnd::Signaled(sig);
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => panic!("waitpid({}): {e}", self.pid),
            }
            if Instant::now() >= deadline {
                self.kill_and_reap();
                return ChildEnd::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits (10 s at most) and asserts a clean `_exit(0)`.
    pub fn assert_success(&mut self) {
        assert_eq!(self.wait(Duration::from_secs(10)), ChildEnd::Exited(0));
    }

    fn kill_and_reap(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
            self.reaped = true;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Forks; the child runs `body` and `_exit`s with its return value (101 if it unwinds).
///
/// `body` runs in a copy of a multi-threaded process: it must do only async-signal-safe work
/// (system calls through shmchan-os wrappers on their allocation-free success paths, atomics,
/// `nanosleep`), and report failure through its exit code rather than by panicking.
pub fn fork_child(body: impl FnOnce() -> i32) -> Child {
    let guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the child only runs `body` (async-signal-safe by contract) and then `_exit`s; it
    // never returns into the test harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            struct ExitOnUnwind;
            impl Drop for ExitOnUnwind {
                fn drop(&mut self) {
                    // SAFETY: _exit is async-signal-safe and ends the child at once.
                    unsafe { libc::_exit(101) };
                }
            }
            let bomb = ExitOnUnwind;
            let code = body();
            std::mem::forget(bomb);
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(guard);
            Child {
                pid: child,
                reaped: false,
            }
        }
    }
}

/// `nanosleep`, for children (async-signal-safe).
pub fn child_sleep(d: Duration) {
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; a null remainder is allowed.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

/// Number of SIGUSR1 deliveries to the no-op handler (all threads).
pub static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigusr1(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Installs a counting SIGUSR1 handler *without* `SA_RESTART`, so a blocked call fails with
/// `EINTR` when the signal arrives.
pub fn install_sigusr1() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(on_sigusr1),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only increments an atomic (async-signal-safe).
        unsafe { nix::sys::signal::sigaction(Signal::SIGUSR1, &action) }.expect("sigaction");
    });
}

/// Sends SIGUSR1 to the calling thread every `period` for `duration` (from another thread).
/// Stop it (and join) with [`Interrupter::stop`] before the calling thread exits.
pub struct Interrupter {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<usize>>,
}

impl Interrupter {
    pub fn start(period: Duration, duration: Duration) -> Interrupter {
        install_sigusr1();
        // SAFETY: pthread_self has no preconditions.
        let target = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let end = Instant::now() + duration;
            let mut sent = 0;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < end {
                std::thread::sleep(period);
                // SAFETY: `target` is alive: it joins this thread (in `stop`/drop) before it
                // can exit.
                if unsafe { libc::pthread_kill(target, libc::SIGUSR1) } == 0 {
                    sent += 1;
                }
            }
            sent
        });
        Interrupter {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops and returns how many signals were sent.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Interrupter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Runs `wait` (a blocking call with `timeout`) while the current thread is interrupted by
/// signals for most of that time, and checks the EINTR policy: the call neither fails nor ends
/// early, and it is not restarted with the full timeout each time (which would last until the
/// signals stop plus a whole timeout).
pub fn assert_eintr_retried_with_remaining_time(timeout: Duration, wait: impl FnOnce() -> bool) {
    let signals_for = timeout * 3 / 4;
    let start = Instant::now();
    let interrupter = Interrupter::start(Duration::from_millis(10), signals_for);
    let completed = wait();
    let elapsed = start.elapsed();
    let sent = interrupter.stop();
    assert!(!completed, "nothing should have completed the wait");
    assert!(sent > 3, "only {sent} signals were sent");
    assert!(
        elapsed >= timeout,
        "returned early after {elapsed:?} (timeout {timeout:?})"
    );
    // A correct retry ends near `timeout`; one that restarts the whole timeout after the last
    // signal (sent near `signals_for`) ends after `signals_for + timeout` = 1.75 x timeout.
    assert!(
        elapsed < timeout * 3 / 2,
        "took {elapsed:?}: the timeout was restarted after EINTR instead of shrinking"
    );
}
