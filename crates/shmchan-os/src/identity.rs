//! Who owns an object, who is asking, and identities nobody can predict: `stat`, `lstat` and
//! `fstat` (a file's or descriptor's owner, as the kernel reports it), `geteuid`, and
//! `getrandom`.
//!
//! These are what a process that acts on objects *named by someone else* (a path, a queue name
//! read from shared memory) checks before it acts: the kernel's word on who made an object
//! cannot be forged by whoever wrote its name down.
//!
//! ```
//! use std::os::fd::AsFd;
//! use shmchan_os::identity::{fstat, geteuid, getrandom, stat};
//!
//! let path = std::env::temp_dir().join(format!("shmchan-os-doc-id-{}", std::process::id()));
//! let file = std::fs::File::create(&path).unwrap();
//! let st = fstat(file.as_fd())?;
//! assert_eq!(st.uid, geteuid()); // we created it
//! assert_eq!(stat(&path)?.ino, st.ino); // the same inode, by path
//! std::fs::remove_file(&path).unwrap();
//!
//! let mut a = [0u8; 8];
//! let mut b = [0u8; 8];
//! getrandom(&mut a)?;
//! getrandom(&mut b)?;
//! assert_ne!(a, b); // 2^-64 to fail
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::error::{check, Error, Result};

/// What `stat`/`fstat` report about a file (or any descriptor: a memfd, a POSIX queue).
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileStat {
    /// The owner's uid (`st_uid`).
    pub uid: u32,
    /// The owner's gid (`st_gid`).
    pub gid: u32,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// The device that holds it (`st_dev`).
    pub dev: u64,
    /// Its inode number (`st_ino`).
    pub ino: u64,
    /// Its size in bytes (`st_size`).
    pub size: u64,
}

impl FileStat {
    // `st_dev`/`st_ino`/`st_mode` are of different widths on different targets: widen explicitly.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn of(st: &libc::stat) -> FileStat {
        FileStat {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode as u32,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: u64::try_from(st.st_size).unwrap_or(0),
        }
    }

    /// Whether it is a regular file (`S_ISREG`).
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// `fstat(fd)`: the owner, type, inode and size of an open descriptor.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<FileStat> {
    let st = nix::sys::stat::fstat(fd)
        .map_err(|e| Error::new("fstat", format!("fd={}", fd.as_raw_fd()), e))?;
    Ok(FileStat::of(&st))
}

/// `stat(path)`: like [`fstat`], by path (symbolic links followed).
///
/// [`NotFound`](crate::ErrorKind::NotFound) when nothing is there.
pub fn stat(path: impl AsRef<Path>) -> Result<FileStat> {
    let path = path.as_ref();
    let st =
        nix::sys::stat::stat(path).map_err(|e| Error::new("stat", format!("path={path:?}"), e))?;
    Ok(FileStat::of(&st))
}

/// `lstat(path)`: like [`stat`], of the link itself when `path` is a symbolic link.
pub fn lstat(path: impl AsRef<Path>) -> Result<FileStat> {
    let path = path.as_ref();
    let st = nix::sys::stat::lstat(path)
        .map_err(|e| Error::new("lstat", format!("path={path:?}"), e))?;
    Ok(FileStat::of(&st))
}

/// `geteuid()`: the effective uid of the calling process (it cannot fail).
pub fn geteuid() -> u32 {
    // SAFETY: geteuid takes no arguments and always succeeds.
    unsafe { libc::geteuid() }
}

/// `getrandom(buf, len, 0)`: fills `buf` from the kernel's random number generator (blocking
/// only until it is initialised, early at boot). `EINTR` and short reads are retried until the
/// buffer is full.
pub fn getrandom(buf: &mut [u8]) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a live, writable buffer of `rest.len()` bytes; the kernel writes at
        // most that many.
        match check(unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) }) {
            Ok(n) => filled += n as usize,
            Err(Errno::EINTR) => {}
            Err(e) => {
                return Err(Error::new(
                    "getrandom",
                    format!("len={}, flags=0", rest.len()),
                    e,
                ))
            }
        }
    }
    Ok(())
}
