//! POSIX semaphores: an unnamed `sem_t` placed in shared memory ([`RawSem`], `pshared = 1`) and
//! named ones ([`NamedSem`], `sem_open`).
//!
//! Both are counters with `post` (+1, wakes one waiter) and `wait` (waits for a post, −1),
//! built on a futex on the counter, so waiting and posting cost no system call unless somebody
//! actually has to sleep.
//!
//! # Posting and waiting on memory other processes write
//!
//! A semaphore in shared memory is written by every process that maps it, and glibc's
//! `sem_post` and `sem_*wait` trust its bytes: garbage there makes them abort the whole process
//! ("The futex facility returned an unexpected error code"), and one value of its `private`
//! word turns `sem_post` into a `FUTEX_WAIT` that never returns. So posting and waiting are
//! implemented here, over the same bytes and with glibc's own protocol (its `nptl/sem_post.c`
//! and `nptl/sem_waitcommon.c`, the variant for 64-bit atomics that x86_64 and aarch64 use):
//!
//! - layout (glibc's `struct new_sem`): a 64-bit `data` word holding the value in its low 32
//!   bits and the number of waiters that may sleep in its high 32 bits, then the 32-bit
//!   `private` word, which `sem_init(pshared = 1)` and `sem_open` set to `FUTEX_PRIVATE_FLAG`
//!   (glibc's "shared");
//! - post: a compare-and-swap of `data` to `data + 1` with Release, refused with `EOVERFLOW`
//!   at `SEM_VALUE_MAX`; then, if the waiter count it replaced was not 0, `FUTEX_WAKE` of one
//!   waiter on the value's 32-bit half ([`RawSem::post_and_wake`] wakes whatever the count
//!   says, for callers that know somebody sleeps);
//! - wait: a compare-and-swap of `data` to `data − 1` with Acquire while the value is not 0;
//!   otherwise register as a waiter (`data + 2³²`), `FUTEX_WAIT` on the value half while it
//!   reads 0, and take a token and unregister in one compare-and-swap (`data − 1 − 2³²`), or
//!   unregister (`data − 2³²`) at the deadline. Every change is a read-modify-write of the one
//!   word, so a post either sees the waiter registered (and wakes it) or the waiter sees the
//!   token (and takes it): no lost wake-up.
//!
//! What differs from glibc is only what it does on memory no correct use can produce: every
//! word is validated before use (value ≤ `SEM_VALUE_MAX`, `private` the shared flag), and a
//! violation is an [`ErrorKind::Corrupted`] error, never an abort; the futex calls always use
//! shared keys (never `FUTEX_PRIVATE_FLAG`, whatever `private` says) and every errno they
//! return is an error; every loop is bounded (compare-and-swap retries by a count, sleeping by
//! the deadline). On honest memory glibc's `sem_post`/`sem_clockwait` and these interoperate in
//! both directions. `sem_init` ([`RawSem::init_at`]) and `sem_destroy` stay glibc's: they run
//! while no other process uses the memory. Named semaphores are the same structure in a file
//! that `sem_open` maps, and use the same operations.
//!
//! Timed waits take a monotonic deadline ([`Instant`]) and sleep with `FUTEX_WAIT`, whose
//! timeout runs on `CLOCK_MONOTONIC`, so a wall-clock jump can neither stretch nor cut them.
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

use std::ffi::CString;
use std::fmt;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::{check, check_null, Error, ErrorKind, Result};
use crate::futex::{futex_wait_at, futex_wake_at, FutexWait};
use crate::key::Mode;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("RawSem implements glibc's semaphore for 64-bit atomics (x86_64, aarch64)");

/// glibc's `SEM_VALUE_MAX` (`INT_MAX`).
const VALUE_MAX: u32 = i32::MAX as u32;
/// One waiter in the high half of `data`.
const WAITER: u64 = 1 << 32;
/// The `private` word of a process-shared semaphore (glibc's `FUTEX_SHARED`, which is
/// `FUTEX_PRIVATE_FLAG`: glibc XORs it into the futex operation).
const SHARED: u32 = libc::FUTEX_PRIVATE_FLAG as u32;
/// Compare-and-swap attempts before a post or a take gives up on a word that keeps changing
/// (honest contention settles in a handful; a process rewriting the word in a loop does not).
const CAS_TRIES: u32 = 1 << 16;
/// Which 32-bit half of `data` holds the value (glibc's `SEM_VALUE_OFFSET`).
const VALUE_HALF: usize = if cfg!(target_endian = "big") { 1 } else { 0 };
/// The words of a `sem_t` after `data` and `private`, unused by glibc's semaphore.
const REST_WORDS: usize = (size_of::<libc::sem_t>() - 12) / 4;

/// An unnamed POSIX semaphore (`sem_t`), meant to live in memory shared between processes.
///
/// It is never created by value: [`init_at`](RawSem::init_at) initialises one in place (in a
/// mapping), and [`from_ptr`](RawSem::from_ptr) gives another process access to it. Its layout
/// is exactly `sem_t` ([`SIZE`](RawSem::SIZE) bytes, [`ALIGN`](RawSem::ALIGN)-aligned), so it can
/// be a field of a `#[repr(C)]` shared header. Every word is an atomic, and every operation
/// validates what it reads (see the [module documentation](self)): another process that writes
/// garbage into it makes operations fail with [`ErrorKind::Corrupted`], nothing worse.
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
#[repr(C)]
pub struct RawSem {
    /// The value (low half) and the waiter count (high half).
    data: AtomicU64,
    /// [`SHARED`] for a process-shared semaphore.
    private: AtomicU32,
    _rest: [AtomicU32; REST_WORDS],
}

// The layout is glibc's `sem_t` on this target.
const _: () = assert!(size_of::<RawSem>() == size_of::<libc::sem_t>());
const _: () = assert!(align_of::<RawSem>() >= align_of::<libc::sem_t>());

impl RawSem {
    /// `size_of::<sem_t>()`: the bytes to reserve for one semaphore.
    pub const SIZE: usize = size_of::<RawSem>();
    /// The alignment its place needs (at least `sem_t`'s).
    pub const ALIGN: usize = align_of::<RawSem>();

    /// `sem_init(ptr, pshared = 1, value)`: initialises a semaphore in place and returns it.
    ///
    /// `value` must be at most `SEM_VALUE_MAX` (`i32::MAX`) ([`InvalidInput`](crate::ErrorKind::InvalidInput)
    /// otherwise). Checks that glibc laid the semaphore out as this type reads it (`Other`,
    /// `ENOTSUP`, if not).
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
        let args = || format!("sem={raw:p}, pshared=1, value={value}");
        // SAFETY: the caller guarantees `raw` is valid, aligned and not in use.
        check(unsafe { libc::sem_init(raw, 1, value) })
            .map_err(|e| Error::new("sem_init", args(), e))?;
        // SAFETY: initialised just above; the caller guarantees it stays mapped for 'a. Every
        // field is an atomic, valid for any bits.
        let sem = unsafe { ptr.as_ref() };
        // Relaxed: this thread's own writes, read back.
        let (data, private) = (
            sem.data.load(Ordering::Relaxed),
            sem.private.load(Ordering::Relaxed),
        );
        if data != u64::from(value) || private != SHARED {
            return Err(Error::new("sem_init", args(), Errno::ENOTSUP)
                .with_kind(ErrorKind::Other)
                .with_hint(format!(
                    "this libc lays a semaphore out differently (data {data:#x}, private \
                     {private:#x}) from glibc's, which RawSem implements"
                )));
        }
        Ok(sem)
    }

    /// The semaphore at `ptr`, initialised by [`init_at`](RawSem::init_at) (in this or another
    /// process).
    ///
    /// # Safety
    ///
    /// `ptr` points to a semaphore that [`init_at`](RawSem::init_at) initialised (and that has
    /// not been destroyed), in memory that stays mapped for `'a`. (What the memory holds later
    /// is not a safety matter: other processes may write anything into it.)
    pub unsafe fn from_ptr<'a>(ptr: NonNull<RawSem>) -> &'a RawSem {
        // SAFETY: the caller guarantees the pointee is mapped for 'a; every field is an
        // atomic, valid for any bits.
        unsafe { ptr.as_ref() }
    }

    /// The `sem_t *` for direct `libc` calls (which trust the bytes: see the module
    /// documentation).
    pub fn as_ptr(&self) -> *mut libc::sem_t {
        (self as *const RawSem).cast_mut().cast()
    }

    /// Posts: +1, waking one waiter (glibc's `sem_post` protocol). `EOVERFLOW` at
    /// `SEM_VALUE_MAX` is [`LimitReached`](crate::ErrorKind::LimitReached); a semaphore whose
    /// words were overwritten is [`Corrupted`](crate::ErrorKind::Corrupted), and one whose word
    /// changes under every attempt [`WouldBlock`](crate::ErrorKind::WouldBlock). Allocates
    /// nothing unless it fails.
    pub fn post(&self) -> Result<()> {
        let before = self.add(1)?;
        if before >> 32 != 0 {
            futex_wake_at(self.value_word(), 1)?;
        }
        Ok(())
    }

    /// Posts `n` tokens at once and wakes up to `n` waiters *whatever the waiter count says*:
    /// for a caller that knows somebody sleeps (a doorbell's ringer, told by its own
    /// protocol), so that a waiter count another process overwrote (say to −1, which the next
    /// waiter's registration brings to 0) cannot make it skip the wake-up. Waiters of either
    /// implementation re-check the value on every wake, so the extra `FUTEX_WAKE` is harmless.
    /// Fails as [`post`](RawSem::post) does; `n` that would carry the value past
    /// `SEM_VALUE_MAX` is `EOVERFLOW`, and nothing is posted.
    pub fn post_and_wake(&self, n: u32) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.add(n)?;
        futex_wake_at(self.value_word(), n)?;
        Ok(())
    }

    /// Adds `n` tokens (Release); returns `data` as it was before.
    fn add(&self, n: u32) -> Result<u64> {
        const OP: &str = "sem_post";
        self.check_private(OP)?;
        // Relaxed: a first guess; the compare-and-swap below decides.
        let mut d = self.data.load(Ordering::Relaxed);
        for _ in 0..CAS_TRIES {
            let v = d as u32;
            if v > VALUE_MAX {
                return Err(self.corrupted(OP, format!("value {v} over SEM_VALUE_MAX")));
            }
            if n > VALUE_MAX - v {
                return Err(Error::new(OP, self.args(), Errno::EOVERFLOW));
            }
            // SYNC(sem-token): Release: what this thread did before posting happens before
            // what the thread that takes one of these tokens (Acquire, in `take` or
            // `wait_registered`) does after. `v + n ≤ VALUE_MAX`: the sum stays in the value
            // half.
            match self.data.compare_exchange_weak(
                d,
                d + u64::from(n),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(d),
                Err(now) => d = now,
            }
        }
        Err(self.contended(OP))
    }

    /// Waits for a post and takes it. `EINTR` is retried.
    pub fn wait(&self) -> Result<()> {
        const HOUR: Duration = Duration::from_secs(3600);
        while !self.wait_until(Instant::now() + HOUR)? {}
        Ok(())
    }

    /// Takes a post if there is one (`true`), without waiting.
    pub fn try_wait(&self) -> Result<bool> {
        const OP: &str = "sem_trywait";
        self.check_private(OP)?;
        self.take(OP)
    }

    /// Waits for a post until `deadline` and takes it; `false` when the deadline passed first
    /// (a deadline in the past makes it a [`try_wait`](RawSem::try_wait)). `EINTR` is retried
    /// until the deadline.
    pub fn wait_until(&self, deadline: Instant) -> Result<bool> {
        const OP: &str = "sem_clockwait";
        self.check_private(OP)?;
        if self.take(OP)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        // Relaxed: registering needs no ordering of its own; every change of `data` is a
        // read-modify-write of this one word, so a post ordered after this one sees the waiter
        // (and wakes), and one ordered before left its token for the loop below (glibc's
        // argument, `nptl/sem_waitcommon.c`). Wrapping: the count is whatever the memory says.
        let d = self.data.fetch_add(WAITER, Ordering::Relaxed);
        let outcome = self.wait_registered(OP, d.wrapping_add(WAITER), deadline);
        if !matches!(outcome, Ok(true)) {
            // Relaxed: as above. (Taking a token unregistered us in the same step.)
            self.data.fetch_sub(WAITER, Ordering::Relaxed);
        }
        outcome
    }

    /// [`wait_until`](RawSem::wait_until) `timeout` from now.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        match crate::retry::deadline_after(timeout) {
            Some(deadline) => self.wait_until(deadline),
            None => self.wait().map(|()| true),
        }
    }

    /// The current count (`sem_getvalue`: waiters do not make it negative).
    pub fn value(&self) -> Result<u32> {
        const OP: &str = "sem_getvalue";
        self.check_private(OP)?;
        // Relaxed: a snapshot, ordering nothing.
        let v = self.data.load(Ordering::Relaxed) as u32;
        if v > VALUE_MAX {
            return Err(self.corrupted(OP, format!("value {v} over SEM_VALUE_MAX")));
        }
        Ok(v)
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
            .map_err(|e| Error::new("sem_destroy", self.args(), e))?;
        Ok(())
    }

    /// Takes a token if the value is not 0.
    fn take(&self, op: &'static str) -> Result<bool> {
        // Relaxed: a first guess; the compare-and-swap decides.
        let mut d = self.data.load(Ordering::Relaxed);
        for _ in 0..CAS_TRIES {
            let v = d as u32;
            if v > VALUE_MAX {
                return Err(self.corrupted(op, format!("value {v} over SEM_VALUE_MAX")));
            }
            if v == 0 {
                return Ok(false);
            }
            // SYNC(sem-token): Acquire pairs with the Release of the post that left the token.
            match self
                .data
                .compare_exchange_weak(d, d - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(true),
                Err(now) => d = now,
            }
        }
        Err(self.contended(op))
    }

    /// The loop of a registered waiter, `d` its latest view of `data`: `true` once it took a
    /// token (and unregistered in the same step), `false` at the deadline.
    fn wait_registered(&self, op: &'static str, mut d: u64, deadline: Instant) -> Result<bool> {
        // Bounded by the deadline, checked on every round, and by the futex's timeout.
        loop {
            let v = d as u32;
            if v > VALUE_MAX {
                return Err(self.corrupted(op, format!("value {v} over SEM_VALUE_MAX")));
            }
            if v == 0 {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(false);
                }
                // Sleeps only while the value half still reads 0 (the kernel checks and
                // queues atomically with respect to FUTEX_WAKE).
                if futex_wait_at(self.value_word(), 0, Some(deadline - now))? == FutexWait::TimedOut
                {
                    return Ok(false);
                }
                // Relaxed: a fresh guess; the compare-and-swap decides.
                d = self.data.load(Ordering::Relaxed);
                continue;
            }
            // SYNC(sem-token): Acquire, as in `take`. Wrapping: the waiter count is whatever
            // the memory says (`v ≥ 1`, so the value half does not borrow).
            match self.data.compare_exchange_weak(
                d,
                d.wrapping_sub(1 + WAITER),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(true),
                Err(now) => d = now,
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// The address of the value half of `data`: the futex word.
    fn value_word(&self) -> *const u32 {
        self.data
            .as_ptr()
            .cast::<u32>()
            .cast_const()
            .wrapping_add(VALUE_HALF)
    }

    fn check_private(&self, op: &'static str) -> Result<()> {
        // Relaxed: validated on every use; it orders nothing.
        let p = self.private.load(Ordering::Relaxed);
        if p == SHARED {
            return Ok(());
        }
        Err(self.corrupted(
            op,
            format!("its private word is {p:#x}, not a process-shared semaphore's ({SHARED:#x})"),
        ))
    }

    fn args(&self) -> String {
        format!("sem={:p}", self.as_ptr())
    }

    fn corrupted(&self, op: &'static str, what: String) -> Error {
        Error::new(op, self.args(), Errno::EINVAL)
            .with_kind(ErrorKind::Corrupted)
            .with_hint(format!(
                "the semaphore is corrupted ({what}): a process that maps it overwrote it"
            ))
    }

    fn contended(&self, op: &'static str) -> Error {
        Error::new(op, self.args(), Errno::EAGAIN).with_hint(format!(
            "the semaphore's word changed under {CAS_TRIES} attempts in a row (a process may be \
             rewriting it)"
        ))
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
