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

use bitflags::bitflags;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::error::{check, Error, Result};
use crate::retry::retry_eintr_untimed;

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
