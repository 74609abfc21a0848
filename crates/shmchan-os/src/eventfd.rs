//! `eventfd`: a 64-bit counter behind a file descriptor, for waking an event loop.
//!
//! `write(n)` adds `n`; `read` returns the counter and resets it to zero (or, with
//! [`EfdFlags::SEMAPHORE`], returns 1 and decrements), blocking while it is zero. The descriptor
//! is readable for `poll`/`epoll` while the counter is non-zero, which is how a `mio`/`tokio`
//! loop waits on it. A `fork`ed child shares it (the descriptor is inherited; it is
//! close-on-exec).
//!
//! ```
//! use shmchan_os::{EfdFlags, EventFd};
//!
//! let efd = EventFd::new(0, EfdFlags::empty())?;
//! assert_eq!(efd.try_read()?, None);
//! efd.write(2)?;
//! efd.write(3)?;
//! assert_eq!(efd.read()?, 5);
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use bitflags::bitflags;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::error::{check, Error, Result};
use crate::retry::{retry_eintr, retry_eintr_untimed};

bitflags! {
    /// Flags of [`EventFd::new`]. The descriptor is always close-on-exec (`EFD_CLOEXEC`).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct EfdFlags: libc::c_int {
        /// `EFD_NONBLOCK`: `read` on zero and `write` on overflow fail with
        /// [`WouldBlock`](crate::ErrorKind::WouldBlock) instead of blocking.
        const NONBLOCK = libc::EFD_NONBLOCK;
        /// `EFD_SEMAPHORE`: `read` returns 1 and decrements, instead of taking everything.
        const SEMAPHORE = libc::EFD_SEMAPHORE;
    }
}

/// An eventfd counter; closed on drop.
///
/// ```
/// use shmchan_os::{EfdFlags, EventFd, ErrorKind};
///
/// let efd = EventFd::new(0, EfdFlags::NONBLOCK)?;
/// assert_eq!(efd.read().unwrap_err().kind(), ErrorKind::WouldBlock);
/// efd.write(1)?;
/// assert_eq!(efd.try_read()?, Some(1));
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
    flags: EfdFlags,
}

impl EventFd {
    /// `eventfd(init, flags | EFD_CLOEXEC)`.
    pub fn new(init: u32, flags: EfdFlags) -> Result<EventFd> {
        // SAFETY: eventfd takes no pointers.
        let fd = check(unsafe { libc::eventfd(init, flags.bits() | libc::EFD_CLOEXEC) })
            .map_err(|e| Error::new("eventfd", format!("initval={init}, flags={flags:?}"), e))?;
        // SAFETY: a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd, flags })
    }

    /// Adds `value` to the counter, waking readers. Blocks if the counter would overflow
    /// `u64::MAX - 1` (without [`EfdFlags::NONBLOCK`]). `EINTR` is retried. Async-signal-safe.
    pub fn write(&self, value: u64) -> Result<()> {
        retry_eintr_untimed(|| nix::unistd::write(&self.fd, &value.to_ne_bytes()))
            .map_err(|e| self.error("write", e))?;
        Ok(())
    }

    fn read_raw(&self) -> std::result::Result<u64, Errno> {
        let mut buf = [0u8; 8];
        retry_eintr_untimed(|| nix::unistd::read(&self.fd, &mut buf))?;
        Ok(u64::from_ne_bytes(buf))
    }

    /// Takes the counter (or 1 of it, with [`EfdFlags::SEMAPHORE`]), blocking while it is zero
    /// (without [`EfdFlags::NONBLOCK`]). `EINTR` is retried.
    pub fn read(&self) -> Result<u64> {
        self.read_raw().map_err(|e| self.error("read", e))
    }

    /// Takes the counter if it is non-zero now; `None` otherwise.
    ///
    /// On a descriptor without [`EfdFlags::NONBLOCK`] this polls first; if another thread or
    /// process reads the counter between the poll and the read, the read blocks until the next
    /// write. Use `NONBLOCK` when several readers share the descriptor.
    pub fn try_read(&self) -> Result<Option<u64>> {
        if !self.flags.contains(EfdFlags::NONBLOCK) {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let ready = retry_eintr_untimed(|| nix::poll::poll(&mut fds, PollTimeout::ZERO))
                .map_err(|e| self.error("poll", e))?;
            if ready == 0 {
                return Ok(None);
            }
        }
        match self.read_raw() {
            Ok(v) => Ok(Some(v)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(self.error("read", e)),
        }
    }

    /// Takes one token (or the whole counter, without [`EfdFlags::SEMAPHORE`]), waiting until
    /// `deadline` for the counter to become non-zero; `None` when the deadline passed.
    ///
    /// Polls the descriptor (`EINTR` retried with the time that is left), then reads it. On a
    /// [`NONBLOCK`](EfdFlags::NONBLOCK) descriptor shared by several waiters, a read that finds
    /// the counter taken by another waiter (`EAGAIN`) polls again: the token went to someone
    /// else. Without `NONBLOCK` that read would block until the next write, so share only
    /// non-blocking descriptors between waiters.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shmchan_os::{EfdFlags, EventFd};
    /// let efd = EventFd::new(0, EfdFlags::SEMAPHORE | EfdFlags::NONBLOCK)?;
    /// let soon = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(efd.read_until(soon)?, None); // nothing posted: timed out
    /// efd.write(2)?;
    /// assert_eq!(efd.read_until(Instant::now())?, Some(1)); // one token at a time
    /// assert_eq!(efd.read_until(Instant::now())?, Some(1));
    /// # Ok::<(), shmchan_os::Error>(())
    /// ```
    pub fn read_until(&self, deadline: Instant) -> Result<Option<u64>> {
        loop {
            let ready = retry_eintr(Some(deadline), |left| {
                let left = left.unwrap_or_default();
                // Round up, so that a wait never ends (and spins) just before the deadline.
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
                nix::poll::poll(&mut fds, timeout).map(|n| Some(n > 0))
            })
            .map_err(|e| self.error("poll", e))?;
            if ready != Some(true) {
                if ready.is_none() || Instant::now() >= deadline {
                    return Ok(None);
                }
                continue;
            }
            match self.read_raw() {
                Ok(v) => return Ok(Some(v)),
                Err(Errno::EAGAIN) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(self.error("read", e)),
            }
        }
    }

    /// Adopts a descriptor received from elsewhere (`SCM_RIGHTS`, inheritance) after checking
    /// that it is an eventfd (its `/proc/self/fd` link is `anon_inode:[eventfd]`); the flags are
    /// read back from the kernel (`F_GETFL` for `O_NONBLOCK`, `/proc/self/fdinfo` for
    /// `EFD_SEMAPHORE`).
    ///
    /// Anything else is refused with [`InvalidInput`](crate::ErrorKind::InvalidInput) (the
    /// descriptor is closed).
    ///
    /// ```
    /// use std::os::fd::OwnedFd;
    /// use shmchan_os::{EfdFlags, EventFd};
    /// let efd = EventFd::new(0, EfdFlags::SEMAPHORE | EfdFlags::NONBLOCK)?;
    /// let again = EventFd::from_fd(OwnedFd::from(efd).try_clone().unwrap())?;
    /// assert_eq!(again.flags(), EfdFlags::SEMAPHORE | EfdFlags::NONBLOCK);
    /// let file = std::fs::File::open("/dev/null").unwrap();
    /// assert!(EventFd::from_fd(file.into()).is_err()); // not an eventfd
    /// # Ok::<(), shmchan_os::Error>(())
    /// ```
    pub fn from_fd(fd: OwnedFd) -> Result<EventFd> {
        let raw = fd.as_raw_fd();
        let args = || format!("fd={raw}");
        let link = std::fs::read_link(format!("/proc/self/fd/{raw}"))
            .map_err(|e| Error::new("readlink", args(), crate::error::errno_of_io(&e)))?;
        if link.as_os_str() != "anon_inode:[eventfd]" {
            return Err(
                Error::new("eventfd", args(), Errno::EINVAL).with_hint(format!(
                    "the descriptor is not an eventfd (it is {})",
                    link.display()
                )),
            );
        }
        let fl = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| Error::new("fcntl(F_GETFL)", args(), e))?;
        let mut flags = EfdFlags::empty();
        if fl & libc::O_NONBLOCK != 0 {
            flags |= EfdFlags::NONBLOCK;
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")).unwrap_or_default();
        if info
            .lines()
            .any(|l| l.split_whitespace().eq(["eventfd-semaphore:", "1"]))
        {
            flags |= EfdFlags::SEMAPHORE;
        }
        Ok(EventFd { fd, flags })
    }

    /// The flags it was created with.
    pub fn flags(&self) -> EfdFlags {
        self.flags
    }

    fn error(&self, op: &'static str, errno: Errno) -> Error {
        Error::new(op, format!("eventfd={}", self.fd.as_raw_fd()), errno)
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<EventFd> for OwnedFd {
    fn from(efd: EventFd) -> OwnedFd {
        efd.fd
    }
}
