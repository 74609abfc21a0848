//! Files that hold shared memory: opening a path without blocking on whatever it turns out to be
//! (a FIFO, a terminal, a device), telling what it is (`fstat`), reserving its blocks
//! (`posix_fallocate`) and reading it by offset (`pread`).
//!
//! Every open here adds `O_NONBLOCK | O_NOCTTY | O_CLOEXEC`: opening a FIFO that has no writer
//! (or reader) returns at once instead of blocking, a terminal never becomes the controlling
//! terminal, a file with a lease is refused instead of waited for, and the descriptor does not
//! leak into `exec`ed programs. On a regular file `O_NONBLOCK` changes nothing else. What the
//! path turned out to be is then one `fstat` away ([`FileStat::file_type`]), so a caller that
//! wants a regular file refuses anything else before it reads a byte.
//!
//! ```
//! use shmchan_os::file::{fstat, open_nonblocking, FileType};
//! use shmchan_os::Access;
//!
//! let fd = open_nonblocking("/dev/null", Access::ReadOnly)?;
//! assert_eq!(fstat(&fd)?.file_type, FileType::CharDevice);
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode as NixMode, SFlag};

use crate::error::{Error, ErrorKind, Result};
use crate::key::Mode;
use crate::shm::Access;

/// What a path names, from `st_mode`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum FileType {
    /// A regular file: the only kind that can hold a channel.
    Regular,
    /// A directory.
    Directory,
    /// A named pipe.
    Fifo,
    /// A character device (`/dev/zero`, a terminal).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket.
    Socket,
    /// A symbolic link (only seen without following it).
    Symlink,
    /// Anything else.
    Other,
}

impl FileType {
    fn of_mode(mode: u32) -> FileType {
        let fmt = SFlag::from_bits_truncate(mode as libc::mode_t & SFlag::S_IFMT.bits());
        match fmt {
            SFlag::S_IFREG => FileType::Regular,
            SFlag::S_IFDIR => FileType::Directory,
            SFlag::S_IFIFO => FileType::Fifo,
            SFlag::S_IFCHR => FileType::CharDevice,
            SFlag::S_IFBLK => FileType::BlockDevice,
            SFlag::S_IFSOCK => FileType::Socket,
            SFlag::S_IFLNK => FileType::Symlink,
            _ => FileType::Other,
        }
    }

    /// "a FIFO", "a directory", ...: for messages (`"{path} is {name}, not ..."`).
    pub fn with_article(self) -> &'static str {
        match self {
            FileType::Regular => "a regular file",
            FileType::Directory => "a directory",
            FileType::Fifo => "a FIFO",
            FileType::CharDevice => "a character device",
            FileType::BlockDevice => "a block device",
            FileType::Socket => "a socket",
            FileType::Symlink => "a symbolic link",
            FileType::Other => "a file of another type",
        }
    }
}

/// What `fstat` (or [`lstat`]) says about a file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub struct FileStat {
    /// Its type.
    pub file_type: FileType,
    /// Its length in bytes (`st_size`).
    pub size: u64,
    /// The device it lives on (`st_dev`).
    pub dev: u64,
    /// Its inode number on that device (`st_ino`).
    pub ino: u64,
    /// Its owner's uid (`st_uid`): the kernel's word on whose it is, which whoever wrote the
    /// file's content cannot forge.
    pub uid: u32,
    /// Its owner's gid (`st_gid`).
    pub gid: u32,
}

impl FileStat {
    // `st_dev`/`st_ino` are of different widths on different targets: widen explicitly.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn of(st: &libc::stat) -> FileStat {
        FileStat {
            file_type: FileType::of_mode(st.st_mode),
            size: u64::try_from(st.st_size).unwrap_or(0),
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            uid: st.st_uid,
            gid: st.st_gid,
        }
    }
}

/// `open(path, O_RDONLY or O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)`: never blocks on what
/// the path turns out to be (see the module documentation). The caller checks the type.
pub fn open_nonblocking(path: impl AsRef<Path>, access: Access) -> Result<OwnedFd> {
    let path = path.as_ref();
    let (mode, name) = match access {
        Access::ReadOnly => (OFlag::O_RDONLY, "O_RDONLY"),
        Access::ReadWrite => (OFlag::O_RDWR, "O_RDWR"),
    };
    let flags = mode | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    nix::fcntl::open(path, flags, NixMode::empty()).map_err(|e| {
        Error::new(
            "open",
            format!("path={path:?}, flags={name}|O_NONBLOCK|O_NOCTTY|O_CLOEXEC"),
            e,
        )
    })
}

/// `open(path, O_RDWR | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC, mode)`: a new, empty file.
/// [`AlreadyExists`](ErrorKind::AlreadyExists) when the path exists (whatever it is).
pub fn create_new(path: impl AsRef<Path>, mode: Mode) -> Result<OwnedFd> {
    let path = path.as_ref();
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    nix::fcntl::open(path, flags, NixMode::from_bits_truncate(mode.bits())).map_err(|e| {
        Error::new(
            "open",
            format!("path={path:?}, flags=O_RDWR|O_CREAT|O_EXCL|O_NOCTTY|O_CLOEXEC, mode={mode}"),
            e,
        )
    })
}

/// `fstat`: the type, length, identity (device, inode) and owner of an open file.
pub fn fstat(fd: impl AsFd) -> Result<FileStat> {
    let fd = fd.as_fd();
    let st = nix::sys::stat::fstat(fd).map_err(|e| {
        Error::new(
            "fstat",
            format!("fd={}", std::os::fd::AsRawFd::as_raw_fd(&fd)),
            e,
        )
    })?;
    Ok(FileStat::of(&st))
}

/// `lstat(path)`: what [`fstat`] says, by path, of the link itself when `path` is a symbolic
/// link ([`FileType::Symlink`]). Opens nothing, so it never blocks on what the path is.
/// [`NotFound`](ErrorKind::NotFound) when nothing is there.
///
/// ```
/// use shmchan_os::file::{lstat, FileType};
///
/// assert_eq!(lstat("/dev/null")?.file_type, FileType::CharDevice);
/// assert_eq!(lstat("/dev/null")?.uid, 0);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn lstat(path: impl AsRef<Path>) -> Result<FileStat> {
    let path = path.as_ref();
    let st = nix::sys::stat::lstat(path)
        .map_err(|e| Error::new("lstat", format!("path={path:?}"), e))?;
    Ok(FileStat::of(&st))
}

/// `ftruncate(fd, len)` then `posix_fallocate(fd, 0, len)`: sizes a file to `len` zero bytes
/// with every block reserved, so that writing it through a mapping can never meet a full
/// filesystem (which the kernel reports to a mapping as `SIGBUS`). A filesystem without room
/// is [`LimitReached`](ErrorKind::LimitReached) (`ENOSPC`, the hint names the size); `what`
/// names the file in errors.
pub fn set_len_reserved(fd: impl AsFd, len: usize, what: &str) -> Result<()> {
    let fd = fd.as_fd();
    let args = || format!("{what}, len={len}");
    let size = libc::off_t::try_from(len).map_err(|_| {
        Error::new("ftruncate", args(), Errno::EFBIG).with_kind(ErrorKind::TooLarge)
    })?;
    nix::unistd::ftruncate(fd, size).map_err(|e| Error::new("ftruncate", args(), e))?;
    nix::fcntl::posix_fallocate(fd, 0, size).map_err(|e| {
        let err = Error::new("posix_fallocate", args(), e);
        match e {
            Errno::ENOSPC => err.with_hint(format!(
                "no space left on the filesystem for the file's {len} bytes"
            )),
            _ => err,
        }
    })
}

/// Reads up to `buf.len()` bytes at `offset` (`pread`, retried after `EINTR` and after a
/// short read until end of file); returns how many were read.
pub fn read_at(fd: impl AsFd, buf: &mut [u8], offset: u64) -> Result<usize> {
    let fd = fd.as_fd();
    let mut done = 0;
    while done < buf.len() {
        let at = offset.saturating_add(done as u64);
        let off = libc::off_t::try_from(at)
            .map_err(|_| Error::new("pread", format!("offset={at}"), Errno::EINVAL))?;
        match nix::sys::uio::pread(fd, &mut buf[done..], off) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) => {
                return Err(Error::new(
                    "pread",
                    format!("len={}, offset={at}", buf.len() - done),
                    e,
                ))
            }
        }
    }
    Ok(done)
}
