//! POSIX semaphores: an unnamed `sem_t` placed in shared memory ([`RawSem`], `pshared = 1`) and
//! named ones ([`NamedSem`], `sem_open`).
//!
//! Both are counters with `post` (+1, wakes one waiter) and `wait` (waits for a post, −1).
//! glibc implements them with a futex on the counter, so waiting and posting cost no system
//! call unless somebody actually has to sleep.
//!
//! Timed waits take a monotonic deadline ([`Instant`]) and use `sem_clockwait(CLOCK_MONOTONIC)`,
//! so a wall-clock jump cannot stretch or cut them (`sem_timedwait` would use `CLOCK_REALTIME`).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use shmchan_os::{RawSem, SharedMapping};
//!
//! // Memory shared with fork()ed children; the semaphore lives inside it.
//! let map = SharedMapping::anonymous(4096)?;
//! // SAFETY: the mapping is page-aligned, at least RawSem::SIZE bytes long, outlives `sem`,
//! // and nothing else uses these bytes.
//! let sem = unsafe { RawSem::init_at(map.as_ptr().cast(), 0)? };
//! sem.post()?;
//! assert!(sem.try_wait()?);
//! assert!(!sem.wait_until(Instant::now() + Duration::from_millis(5))?); // timed out
//! // SAFETY: no process waits on it and it is not used afterwards.
//! unsafe { sem.destroy()? };
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::cell::UnsafeCell;
use std::ffi::CString;
use std::fmt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::{check, check_null, Error, Result};
use crate::key::Mode;
use crate::retry::{abs_timespec, retry_eintr, retry_eintr_untimed};

// glibc >= 2.30 (libc does not bind it for glibc targets).
unsafe extern "C" {
    fn sem_clockwait(
        sem: *mut libc::sem_t,
        clockid: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// An unnamed POSIX semaphore (`sem_t`), meant to live in memory shared between processes.
///
/// It is never created by value: [`init_at`](RawSem::init_at) initialises one in place (in a
/// mapping), and [`from_ptr`](RawSem::from_ptr) gives another process access to it. Its layout
/// is exactly `sem_t` ([`SIZE`](RawSem::SIZE) bytes, [`ALIGN`](RawSem::ALIGN)-aligned), so it can
/// be a field of a `#[repr(C)]` shared header.
///
/// It is neither `Copy` nor `Clone`: a copied `sem_t` is not a semaphore (waiters sleep on the
/// original's address).
///
/// ```compile_fail,E0507
/// use shmchan_os::RawSem;
///
/// fn copy_out(sem: &RawSem) -> RawSem {
///     *sem // error: cannot move out of a shared reference
/// }
/// ```
#[repr(transparent)]
pub struct RawSem(UnsafeCell<libc::sem_t>);

// SAFETY: a sem_t is designed to be used concurrently by threads and (pshared = 1) processes;
// every access goes through the sem_* functions, which synchronise internally.
unsafe impl Sync for RawSem {}
// SAFETY: as for Sync; a sem_t holds no thread-affine state.
unsafe impl Send for RawSem {}

impl RawSem {
    /// `size_of::<sem_t>()`: the bytes to reserve for one semaphore.
    pub const SIZE: usize = std::mem::size_of::<libc::sem_t>();
    /// `align_of::<sem_t>()`: the alignment its place needs.
    pub const ALIGN: usize = std::mem::align_of::<libc::sem_t>();

    /// `sem_init(ptr, pshared = 1, value)`: initialises a semaphore in place and returns it.
    ///
    /// `value` must be at most `SEM_VALUE_MAX` (`i32::MAX`) ([`InvalidInput`](crate::ErrorKind::InvalidInput)
    /// otherwise).
    ///
    /// # Safety
    ///
    /// - `ptr` is valid for reads and writes of [`SIZE`](RawSem::SIZE) bytes, aligned to
    ///   [`ALIGN`](RawSem::ALIGN), and stays mapped for `'a`;
    /// - for other processes to use it, the memory is shared with them (`MAP_SHARED`, SysV shm);
    /// - no thread or process uses the semaphore at `ptr` during this call (in particular it is
    ///   not an initialised semaphore that somebody waits on), and other processes reach it only
    ///   after this call returns, through some synchronisation (e.g. a Release "ready" flag).
    pub unsafe fn init_at<'a>(ptr: NonNull<RawSem>, value: u32) -> Result<&'a RawSem> {
        let raw = ptr.as_ptr().cast::<libc::sem_t>();
        // SAFETY: the caller guarantees `raw` is valid, aligned and not in use.
        check(unsafe { libc::sem_init(raw, 1, value) }).map_err(|e| {
            Error::new(
                "sem_init",
                format!("sem={raw:p}, pshared=1, value={value}"),
                e,
            )
        })?;
        // SAFETY: initialised just above; the caller guarantees it stays mapped for 'a.
        Ok(unsafe { ptr.as_ref() })
    }

    /// The semaphore at `ptr`, initialised by [`init_at`](RawSem::init_at) (in this or another
    /// process).
    ///
    /// # Safety
    ///
    /// `ptr` points to a semaphore that [`init_at`](RawSem::init_at) initialised (and that has
    /// not been destroyed), in memory that stays mapped for `'a`.
    pub unsafe fn from_ptr<'a>(ptr: NonNull<RawSem>) -> &'a RawSem {
        // SAFETY: the caller guarantees the pointee is an initialised sem_t mapped for 'a.
        unsafe { ptr.as_ref() }
    }

    /// The `sem_t *` for direct `libc` calls.
    pub fn as_ptr(&self) -> *mut libc::sem_t {
        self.0.get()
    }

    /// `sem_post`: +1, waking one waiter. `EOVERFLOW` past `SEM_VALUE_MAX` is
    /// [`LimitReached`](crate::ErrorKind::LimitReached). Async-signal-safe.
    pub fn post(&self) -> Result<()> {
        // SAFETY: `self` is an initialised semaphore (guaranteed by init_at/from_ptr).
        check(unsafe { libc::sem_post(self.as_ptr()) })
            .map_err(|e| Error::new("sem_post", format!("sem={:p}", self.as_ptr()), e))?;
        Ok(())
    }

    /// `sem_wait`: waits for a post and takes it. `EINTR` is retried.
    pub fn wait(&self) -> Result<()> {
        retry_eintr_untimed(|| {
            // SAFETY: `self` is an initialised semaphore.
            check(unsafe { libc::sem_wait(self.as_ptr()) })
        })
        .map_err(|e| Error::new("sem_wait", format!("sem={:p}", self.as_ptr()), e))?;
        Ok(())
    }

    /// `sem_trywait`: takes a post if there is one (`true`), without waiting.
    pub fn try_wait(&self) -> Result<bool> {
        let taken = retry_eintr_untimed(|| {
            // SAFETY: `self` is an initialised semaphore.
            match check(unsafe { libc::sem_trywait(self.as_ptr()) }) {
                Ok(_) => Ok(true),
                Err(Errno::EAGAIN) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| Error::new("sem_trywait", format!("sem={:p}", self.as_ptr()), e))?;
        Ok(taken)
    }

    /// `sem_clockwait(CLOCK_MONOTONIC)`: waits for a post until `deadline`; `false` when it
    /// passed first. `EINTR` is retried until the deadline.
    pub fn wait_until(&self, deadline: Instant) -> Result<bool> {
        let taken = retry_eintr(Some(deadline), |left| {
            let left = left.unwrap_or(Duration::ZERO);
            let abs = abs_timespec(libc::CLOCK_MONOTONIC, left)?;
            // SAFETY: `self` is an initialised semaphore; `abs` is a valid timespec.
            match check(unsafe { sem_clockwait(self.as_ptr(), libc::CLOCK_MONOTONIC, &abs) }) {
                Ok(_) => Ok(Some(())),
                Err(Errno::ETIMEDOUT) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| {
            Error::new(
                "sem_clockwait",
                format!("sem={:p}, clock=CLOCK_MONOTONIC", self.as_ptr()),
                e,
            )
        })?;
        Ok(taken.is_some())
    }

    /// [`wait_until`](RawSem::wait_until) `timeout` from now.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        match crate::retry::deadline_after(timeout) {
            Some(deadline) => self.wait_until(deadline),
            None => self.wait().map(|()| true),
        }
    }

    /// `sem_getvalue`: the current count (0 when there are waiters).
    pub fn value(&self) -> Result<u32> {
        let mut v: libc::c_int = 0;
        // SAFETY: `self` is an initialised semaphore; `v` is a writable int.
        check(unsafe { libc::sem_getvalue(self.as_ptr(), &mut v) })
            .map_err(|e| Error::new("sem_getvalue", format!("sem={:p}", self.as_ptr()), e))?;
        Ok(v.max(0).unsigned_abs())
    }

    /// `sem_destroy`.
    ///
    /// # Safety
    ///
    /// No thread or process waits on the semaphore, and none uses it afterwards (until it is
    /// initialised again with [`init_at`](RawSem::init_at)).
    pub unsafe fn destroy(&self) -> Result<()> {
        // SAFETY: the caller guarantees nobody uses the semaphore any more.
        check(unsafe { libc::sem_destroy(self.as_ptr()) })
            .map_err(|e| Error::new("sem_destroy", format!("sem={:p}", self.as_ptr()), e))?;
        Ok(())
    }
}

impl fmt::Debug for RawSem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSem")
            .field("addr", &self.as_ptr())
            .field("value", &self.value().ok())
            .finish()
    }
}

/// A named POSIX semaphore (`sem_open`), closed on drop (the name stays until
/// [`unlink`](NamedSem::unlink)).
///
/// Names look like `/name` (one leading slash, no other); glibc keeps them in `/dev/shm` as
/// `sem.name`. A handle opened before `fork` is usable in the child.
///
/// ```
/// use shmchan_os::{Mode, NamedSem};
///
/// let name = format!("/shmchan-os-doc-{}", std::process::id());
/// let sem = NamedSem::create(&name, 1, Mode::default())?;
/// NamedSem::unlink(&name)?; // the name is gone; open handles keep working
/// assert!(sem.try_wait()?);
/// assert!(!sem.try_wait()?);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub struct NamedSem {
    sem: NonNull<RawSem>,
    name: Box<str>,
}

// SAFETY: the handle points to a sem_t mapped by sem_open for the life of the handle; sem_*
// functions may be called from any thread, and sem_close from any thread.
unsafe impl Send for NamedSem {}
// SAFETY: as for Send; `&NamedSem` only allows sem_* calls, which synchronise internally.
unsafe impl Sync for NamedSem {}

fn c_name(op: &'static str, args: &dyn Fn() -> String, name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| {
        Error::new(op, args(), Errno::EINVAL).with_hint("the name contains a NUL byte")
    })
}

fn name_error(err: Error) -> Error {
    match err.errno() {
        Errno::EINVAL => err.with_hint(
            "invalid name (must be \"/name\" without further slashes) or value over SEM_VALUE_MAX",
        ),
        Errno::ENOENT => err.with_hint("no semaphore has this name"),
        _ => err,
    }
}

impl NamedSem {
    /// `sem_open(name, O_CREAT | O_EXCL, mode, value)`: a new named semaphore.
    ///
    /// [`AlreadyExists`](crate::ErrorKind::AlreadyExists) when the name is taken.
    pub fn create(name: &str, value: u32, mode: Mode) -> Result<NamedSem> {
        let args = || format!("name={name:?}, oflag=O_CREAT|O_EXCL, mode={mode}, value={value}");
        let c = c_name("sem_open", &args, name)?;
        // SAFETY: `c` is a valid C string; with O_CREAT sem_open reads a mode_t and an
        // unsigned int from the variadic arguments, which are passed with those types.
        let sem = check_null(unsafe {
            libc::sem_open(
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                mode.bits() as libc::mode_t,
                value as libc::c_uint,
            )
        })
        .map_err(|e| name_error(Error::new("sem_open", args(), e)))?;
        Ok(NamedSem {
            sem: sem.cast(),
            name: name.into(),
        })
    }

    /// `sem_open(name, 0)`: the existing semaphore with this name.
    ///
    /// [`NotFound`](crate::ErrorKind::NotFound) when there is none.
    pub fn open(name: &str) -> Result<NamedSem> {
        let args = || format!("name={name:?}, oflag=0");
        let c = c_name("sem_open", &args, name)?;
        // SAFETY: `c` is a valid C string; without O_CREAT no variadic argument is read.
        let sem = check_null(unsafe { libc::sem_open(c.as_ptr(), 0) })
            .map_err(|e| name_error(Error::new("sem_open", args(), e)))?;
        Ok(NamedSem {
            sem: sem.cast(),
            name: name.into(),
        })
    }

    /// `sem_unlink(name)`: removes the name; open handles keep working until closed.
    ///
    /// [`NotFound`](crate::ErrorKind::NotFound) when there is no such name.
    pub fn unlink(name: &str) -> Result<()> {
        let args = || format!("name={name:?}");
        let c = c_name("sem_unlink", &args, name)?;
        // SAFETY: `c` is a valid C string.
        check(unsafe { libc::sem_unlink(c.as_ptr()) })
            .map_err(|e| name_error(Error::new("sem_unlink", args(), e)))?;
        Ok(())
    }

    /// The name it was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The semaphore itself, for code that works on any [`RawSem`].
    pub fn as_raw(&self) -> &RawSem {
        // SAFETY: `sem` is the initialised sem_t sem_open mapped; it stays mapped until drop.
        unsafe { self.sem.as_ref() }
    }

    /// [`RawSem::post`].
    pub fn post(&self) -> Result<()> {
        self.as_raw().post()
    }

    /// [`RawSem::wait`].
    pub fn wait(&self) -> Result<()> {
        self.as_raw().wait()
    }

    /// [`RawSem::try_wait`].
    pub fn try_wait(&self) -> Result<bool> {
        self.as_raw().try_wait()
    }

    /// [`RawSem::wait_until`].
    pub fn wait_until(&self, deadline: Instant) -> Result<bool> {
        self.as_raw().wait_until(deadline)
    }

    /// [`RawSem::wait_timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.as_raw().wait_timeout(timeout)
    }

    /// [`RawSem::value`].
    pub fn value(&self) -> Result<u32> {
        self.as_raw().value()
    }
}

impl fmt::Debug for NamedSem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedSem")
            .field("name", &self.name)
            .field("value", &self.value().ok())
            .finish()
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: `sem` came from sem_open and is closed exactly once, here.
        let _ = unsafe { libc::sem_close(self.sem.as_ptr().cast()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_sem_t() {
        assert_eq!(RawSem::SIZE, std::mem::size_of::<RawSem>());
        assert_eq!(RawSem::ALIGN, std::mem::align_of::<RawSem>());
    }
}
