//! `memfd_create` and file seals (`F_ADD_SEALS`, `F_GET_SEALS`): anonymous memory behind a file
//! descriptor, which can be handed to an unrelated process (see [`crate::scm`]) and sealed so
//! that nobody — not even a hostile peer holding the same descriptor — can shrink it.
//!
//! A mapping of a file that is truncated under it faults (`SIGBUS`) on the lost pages. A memfd
//! sealed with [`Seals::SHRINK`] refuses every `ftruncate` to a smaller size (`EPERM`), so a
//! receiver that checks [`get_seals`] before it maps the descriptor can never be made to fault.
//! The memory is freed when the last descriptor and the last mapping are gone; there is no name
//! to remove (the name given to [`memfd_create`] is only shown in `/proc/PID/fd`).
//!
//! ```
//! use std::os::fd::AsFd;
//! use shmchan_os::memfd::{add_seals, get_seals, memfd_create, set_len, Seals};
//! use shmchan_os::{ErrorKind, SharedMapping};
//!
//! let fd = memfd_create("shmchan-doc")?;
//! set_len(fd.as_fd(), 4096)?;
//! add_seals(fd.as_fd(), Seals::SHRINK | Seals::GROW | Seals::SEAL)?;
//! assert!(get_seals(fd.as_fd())?.contains(Seals::SHRINK));
//! // Sealed: nobody can shrink it under a mapping any more.
//! assert_eq!(set_len(fd.as_fd(), 0).unwrap_err().kind(), ErrorKind::PermissionDenied);
//! let map = SharedMapping::from_fd(fd.as_fd(), 4096)?;
//! assert_eq!(map.len(), 4096);
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use bitflags::bitflags;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::MFdFlags;

use crate::error::{Error, ErrorKind, Result};

bitflags! {
    /// File seals (`F_SEAL_*`), as set by [`add_seals`] and read by [`get_seals`].
    ///
    /// ```
    /// use shmchan_os::memfd::Seals;
    /// let s = Seals::SHRINK | Seals::GROW;
    /// assert!(s.contains(Seals::SHRINK) && !s.contains(Seals::WRITE));
    /// ```
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct Seals: libc::c_int {
        /// `F_SEAL_SEAL`: no more seals can be added.
        const SEAL = libc::F_SEAL_SEAL;
        /// `F_SEAL_SHRINK`: the size can never decrease (no `SIGBUS` for mappings).
        const SHRINK = libc::F_SEAL_SHRINK;
        /// `F_SEAL_GROW`: the size can never increase.
        const GROW = libc::F_SEAL_GROW;
        /// `F_SEAL_WRITE`: the content can never change (and no writable shared mapping can
        /// be made).
        const WRITE = libc::F_SEAL_WRITE;
        /// `F_SEAL_FUTURE_WRITE`: no new writable mapping or `write`, existing ones keep
        /// working.
        const FUTURE_WRITE = libc::F_SEAL_FUTURE_WRITE;
    }
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`: a new, empty (0 bytes) anonymous file.
/// Size it with [`set_len`]. The descriptor is close-on-exec and can be sealed.
///
/// ```
/// use std::os::fd::AsFd;
/// let fd = shmchan_os::memfd::memfd_create("shmchan-doc-create")?;
/// assert_eq!(shmchan_os::memfd::len(fd.as_fd())?, 0);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn memfd_create(name: &str) -> Result<OwnedFd> {
    let args = || format!("name={name:?}, flags=MFD_CLOEXEC|MFD_ALLOW_SEALING");
    if name.contains('\0') {
        return Err(Error::new("memfd_create", args(), Errno::EINVAL)
            .with_hint("the name contains a NUL byte"));
    }
    if name.len() > 249 {
        return Err(Error::new("memfd_create", args(), Errno::EINVAL)
            .with_hint("the name is longer than the 249 bytes memfd_create accepts"));
    }
    nix::sys::memfd::memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(|e| Error::new("memfd_create", args(), e))
}

/// `ftruncate(fd, len)`: sets the size of a file or memfd (new bytes read as zero).
///
/// [`PermissionDenied`](ErrorKind::PermissionDenied) when a seal forbids the change
/// ([`Seals::SHRINK`], [`Seals::GROW`]).
///
/// ```
/// use std::os::fd::AsFd;
/// use shmchan_os::memfd::{len, memfd_create, set_len};
/// let fd = memfd_create("shmchan-doc-len")?;
/// set_len(fd.as_fd(), 8192)?;
/// assert_eq!(len(fd.as_fd())?, 8192);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn set_len(fd: BorrowedFd<'_>, len: u64) -> Result<()> {
    let args = || format!("fd={}, len={len}", fd.as_raw_fd());
    let size = libc::off_t::try_from(len).map_err(|_| {
        Error::new("ftruncate", args(), Errno::EFBIG).with_kind(ErrorKind::TooLarge)
    })?;
    nix::unistd::ftruncate(fd, size).map_err(|e| match e {
        Errno::EPERM => Error::new("ftruncate", args(), e)
            .with_hint("a seal (F_SEAL_SHRINK or F_SEAL_GROW) forbids this size change"),
        _ => Error::new("ftruncate", args(), e),
    })
}

/// The size of the file behind `fd` (`fstat`'s `st_size`).
///
/// ```
/// use std::os::fd::AsFd;
/// let fd = shmchan_os::memfd::memfd_create("shmchan-doc-fstat")?;
/// assert_eq!(shmchan_os::memfd::len(fd.as_fd())?, 0);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn len(fd: BorrowedFd<'_>) -> Result<u64> {
    let st = nix::sys::stat::fstat(fd)
        .map_err(|e| Error::new("fstat", format!("fd={}", fd.as_raw_fd()), e))?;
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

/// `fcntl(fd, F_ADD_SEALS, seals)`.
///
/// [`PermissionDenied`](ErrorKind::PermissionDenied) once [`Seals::SEAL`] is set;
/// [`InvalidInput`](ErrorKind::InvalidInput) when `fd` is not a memfd created with
/// `MFD_ALLOW_SEALING` (or another file that supports seals).
///
/// ```
/// use std::os::fd::AsFd;
/// use shmchan_os::memfd::{add_seals, memfd_create, Seals};
/// use shmchan_os::ErrorKind;
/// let fd = memfd_create("shmchan-doc-seal")?;
/// add_seals(fd.as_fd(), Seals::GROW | Seals::SEAL)?;
/// let again = add_seals(fd.as_fd(), Seals::SHRINK).unwrap_err(); // sealed against sealing
/// assert_eq!(again.kind(), ErrorKind::PermissionDenied);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn add_seals(fd: BorrowedFd<'_>, seals: Seals) -> Result<()> {
    let flag = SealFlag::from_bits_retain(seals.bits());
    fcntl(fd, FcntlArg::F_ADD_SEALS(flag))
        .map_err(|e| seal_error("fcntl(F_ADD_SEALS)", fd, &format!(", seals={seals:?}"), e))?;
    Ok(())
}

/// `fcntl(fd, F_GET_SEALS)`: the seals of a memfd.
///
/// A descriptor that does not support seals (a regular file on most file systems, a socket,
/// an eventfd) fails with [`InvalidInput`](ErrorKind::InvalidInput) and a hint saying so: this
/// is how a receiver tells a memfd from anything else a peer might send.
///
/// ```
/// use std::os::fd::AsFd;
/// use shmchan_os::memfd::{get_seals, memfd_create, Seals};
/// use shmchan_os::{EfdFlags, ErrorKind, EventFd};
/// let fd = memfd_create("shmchan-doc-getseals")?;
/// assert_eq!(get_seals(fd.as_fd())?, Seals::empty());
/// let not_a_memfd = EventFd::new(0, EfdFlags::empty())?;
/// assert_eq!(get_seals(not_a_memfd.as_fd()).unwrap_err().kind(), ErrorKind::InvalidInput);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn get_seals(fd: BorrowedFd<'_>) -> Result<Seals> {
    let bits = fcntl(fd, FcntlArg::F_GET_SEALS)
        .map_err(|e| seal_error("fcntl(F_GET_SEALS)", fd, "", e))?;
    Ok(Seals::from_bits_retain(bits))
}

fn seal_error(op: &'static str, fd: BorrowedFd<'_>, extra: &str, e: Errno) -> Error {
    let err = Error::new(op, format!("fd={}{extra}", fd.as_raw_fd()), e);
    match e {
        Errno::EINVAL => err.with_hint(
            "the descriptor does not support seals (not a memfd created with MFD_ALLOW_SEALING)",
        ),
        Errno::EPERM => err.with_hint("F_SEAL_SEAL is set: no more seals can be added"),
        Errno::EBUSY => err.with_hint("F_SEAL_WRITE while a writable shared mapping exists"),
        _ => err,
    }
}
