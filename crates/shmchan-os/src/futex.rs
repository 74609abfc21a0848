//! Futex wait and wake on a 32-bit word in shared memory (`FUTEX_WAIT`, `FUTEX_WAKE`).
//!
//! A futex is the kernel's "sleep while this word still holds the value I saw" primitive: the
//! kernel checks the word and queues the caller atomically, so a waker that changes the word and
//! then calls [`futex_wake`] can never be missed. It never uses `FUTEX_PRIVATE_FLAG`: waiters and
//! wakers are keyed by the physical page, so they meet across processes that map the same memory
//! (`MAP_SHARED`, SysV shm), at any address.
//!
//! Wake-ups can be spurious and the value can change between wake-up and return: always re-check
//! the condition in a loop.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use shmchan_os::{futex_wait, futex_wake, FutexWait};
//!
//! let word = AtomicU32::new(0);
//! // The word is not 1: the kernel refuses to sleep.
//! assert_eq!(futex_wait(&word, 1, None)?, FutexWait::ValueChanged);
//! // It is 0 and nobody wakes us: time out.
//! assert_eq!(futex_wait(&word, 0, Some(Duration::from_millis(1)))?, FutexWait::TimedOut);
//! word.store(1, Ordering::Release);
//! assert_eq!(futex_wake(&word, u32::MAX)?, 0); // nobody was waiting
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::errno::Errno;

use crate::error::{check, Error, Result};
use crate::retry::{deadline_after, retry_eintr, timespec_of};

/// How a [`futex_wait`] ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FutexWait {
    /// A `FUTEX_WAKE` (or a spurious wake-up): re-check the word.
    Woken,
    /// The word did not hold `expected` when the call started (`EAGAIN`): no sleep happened.
    ValueChanged,
    /// The timeout passed.
    TimedOut,
}

/// `futex(word, FUTEX_WAIT, expected, timeout)`: sleeps while `word` holds `expected`, until
/// woken or until `timeout` (`None`: no timeout).
///
/// After `EINTR` it sleeps again for the time that is left (it does *not* return `Woken`: a signal
/// is not a wake-up).
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use shmchan_os::{futex_wait, futex_wake};
///
/// let flag = Arc::new(AtomicU32::new(0));
/// let waker = {
///     let flag = Arc::clone(&flag);
///     std::thread::spawn(move || {
///         flag.store(1, Ordering::Release);
///         futex_wake(&flag, 1).unwrap();
///     })
/// };
/// // The loop re-checks the word: wake-ups can be spurious, and the store may come first.
/// while flag.load(Ordering::Acquire) == 0 {
///     futex_wait(&flag, 0, Some(Duration::from_secs(10)))?;
/// }
/// waker.join().unwrap();
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<FutexWait> {
    futex_wait_at(word.as_ptr(), expected, timeout)
}

/// [`futex_wait`] on the 32-bit word at `uaddr`, for words that are part of a larger atomic
/// (the value half of a POSIX semaphore's 64-bit word), which no `&AtomicU32` may alias.
///
/// Memory-safe for any address: the kernel only reads the word, and an address that is not
/// mapped or not 4-byte aligned fails with `EFAULT` / `EINVAL`.
pub(crate) fn futex_wait_at(
    uaddr: *const u32,
    expected: u32,
    timeout: Option<Duration>,
) -> Result<FutexWait> {
    let deadline = timeout.and_then(deadline_after);
    let outcome = retry_eintr(deadline, |left| {
        // `timeout` longer than an Instant can hold: no deadline, wait forever.
        let ts = left.map(timespec_of);
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: FUTEX_WAIT only reads the word at `uaddr` (inside the kernel, which fails
        // with EFAULT/EINVAL on a bad address rather than touching memory) and writes nothing;
        // `ts_ptr` is null or points to `ts`, which outlives the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_futex,
                uaddr,
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        match check(ret) {
            Ok(_) => Ok(Some(FutexWait::Woken)),
            Err(Errno::EAGAIN) => Ok(Some(FutexWait::ValueChanged)),
            Err(Errno::ETIMEDOUT) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .map_err(|e| {
        Error::new(
            "futex",
            format!("uaddr={uaddr:p}, op=FUTEX_WAIT, val={expected}, timeout={timeout:?}"),
            e,
        )
    })?;
    Ok(outcome.unwrap_or(FutexWait::TimedOut))
}

/// `futex(word, FUTEX_WAKE, n)`: wakes up to `n` waiters on `word` (`u32::MAX`: all), in any
/// process that maps it. Returns how many were woken. Async-signal-safe.
///
/// ```
/// use std::sync::atomic::AtomicU32;
///
/// let word = AtomicU32::new(0);
/// assert_eq!(shmchan_os::futex_wake(&word, 1)?, 0); // nobody sleeps on it
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn futex_wake(word: &AtomicU32, n: u32) -> Result<u32> {
    futex_wake_at(word.as_ptr(), n)
}

/// [`futex_wake`] on the 32-bit word at `uaddr` (see [`futex_wait_at`]). Memory-safe for any
/// address: FUTEX_WAKE does not access the word at all.
pub(crate) fn futex_wake_at(uaddr: *const u32, n: u32) -> Result<u32> {
    let count = libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
    // SAFETY: FUTEX_WAKE only uses `uaddr` as a key; it reads and writes no memory.
    let ret = unsafe { libc::syscall(libc::SYS_futex, uaddr, libc::FUTEX_WAKE, count) };
    let woken = check(ret).map_err(|e| {
        Error::new(
            "futex",
            format!("uaddr={uaddr:p}, op=FUTEX_WAKE, val={n}"),
            e,
        )
    })?;
    Ok(u32::try_from(woken).unwrap_or(0))
}

/// Whether this kernel has `futex_waitv` (Linux 5.16+), which waits on several futex words at
/// once.
///
/// Probes with a call that can never sleep: no waiters (`nr_futexes = 0`), which a kernel that
/// has the call refuses with `EINVAL` and one that does not with `ENOSYS`. Any other errno (a
/// seccomp filter's `EPERM`, say) is returned as the error.
///
/// ```
/// // Either answer is fine here; an error means a filter forbids the call.
/// let _has_waitv: bool = shmchan_os::futex::futex_waitv_supported().unwrap_or(false);
/// ```
pub fn futex_waitv_supported() -> Result<bool> {
    // SAFETY: no waiter array is passed (null, count 0) and no timeout (null): the kernel
    // validates the count before it touches any pointer and rejects it with EINVAL; nothing
    // is read or written in this process.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            std::ptr::null::<u8>(),
            0u32,
            0u32,
            std::ptr::null::<libc::timespec>(),
            libc::CLOCK_MONOTONIC,
        )
    };
    match check(ret) {
        Err(Errno::EINVAL) | Ok(_) => Ok(true),
        Err(Errno::ENOSYS) => Ok(false),
        Err(e) => Err(Error::new(
            "futex_waitv",
            "waiters=NULL, nr_futexes=0, flags=0, timeout=NULL, clockid=CLOCK_MONOTONIC",
            e,
        )),
    }
}

/// The most words one [`futex_waitv`] call waits on (the kernel's `FUTEX_WAITV_MAX`).
pub const FUTEX_WAITV_MAX: usize = 128;

/// How a [`futex_waitv`] ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FutexWaitv {
    /// Woken through the word at this index (or spuriously): re-check the words.
    Woken(usize),
    /// Some word did not hold its expected value when the call started: no sleep happened.
    ValueChanged,
    /// The deadline passed.
    TimedOut,
}

/// One entry of the kernel's `futex_waitv` array (`struct futex_waitv`).
#[repr(C)]
struct WaitvEntry {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `FUTEX2_SIZE_U32`: a 32-bit word. No `FUTEX2_PRIVATE`: shared, keyed by the physical page.
const FUTEX2_SIZE_U32: u32 = 0x02;

/// `futex_waitv(words, ...)` (Linux 5.16+): sleeps while every word holds its expected value,
/// until one of them is woken with `FUTEX_WAKE` (or spuriously) or `deadline` passes (`None`:
/// no deadline). Shared futexes: wakers in other processes that map the words reach it.
///
/// At most [`FUTEX_WAITV_MAX`] words (more: `EINVAL`). After `EINTR` it sleeps again until
/// the same deadline. Ask [`futex_waitv_supported`] first: without the call it fails with
/// `ENOSYS`.
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use std::time::{Duration, Instant};
/// use shmchan_os::futex::{futex_waitv, futex_waitv_supported, FutexWaitv};
///
/// if futex_waitv_supported().unwrap_or(false) {
///     let (a, b) = (AtomicU32::new(0), AtomicU32::new(7));
///     // `b` is not 8: no sleep.
///     assert_eq!(futex_waitv(&[(&a, 0), (&b, 8)], None)?, FutexWaitv::ValueChanged);
///     let soon = Instant::now() + Duration::from_millis(1);
///     assert_eq!(futex_waitv(&[(&a, 0), (&b, 7)], Some(soon))?, FutexWaitv::TimedOut);
/// }
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn futex_waitv(
    words: &[(&AtomicU32, u32)],
    deadline: Option<std::time::Instant>,
) -> Result<FutexWaitv> {
    let entries: Vec<WaitvEntry> = words
        .iter()
        .map(|(w, v)| WaitvEntry {
            val: u64::from(*v),
            uaddr: w.as_ptr() as usize as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        })
        .collect();
    // The kernel takes an absolute CLOCK_MONOTONIC time; `Instant` is that clock.
    let abs = deadline.map(|d| {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let left = d.saturating_duration_since(std::time::Instant::now());
        let ns = now.tv_nsec as u64 + u64::from(left.subsec_nanos());
        libc::timespec {
            tv_sec: now.tv_sec
                + left.as_secs() as libc::time_t
                + (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        }
    });
    let ts_ptr = abs
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    loop {
        // SAFETY: `entries` holds `len` initialised `struct futex_waitv`s whose addresses are
        // live, aligned `AtomicU32`s (borrowed for the call); the kernel only reads them and
        // the words. `ts_ptr` is null or points to `abs`, which outlives the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_futex_waitv,
                entries.as_ptr(),
                entries.len() as u32,
                0u32,
                ts_ptr,
                libc::CLOCK_MONOTONIC,
            )
        };
        return match check(ret) {
            Ok(i) => Ok(FutexWaitv::Woken(usize::try_from(i).unwrap_or(0))),
            Err(Errno::EAGAIN) => Ok(FutexWaitv::ValueChanged),
            Err(Errno::ETIMEDOUT) => Ok(FutexWaitv::TimedOut),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(Error::new(
                "futex_waitv",
                format!("nr_futexes={}, deadline={deadline:?}", entries.len()),
                e,
            )),
        };
    }
}
