//! SysV IPC keys (`ftok`, `IPC_PRIVATE`, numeric keys) and permission modes.
//!
//! A [`Key`] is how unrelated processes find the same SysV object: both compute it (from a path
//! with [`ftok`], or agree on a number) and call `open`. [`Key::PRIVATE`] always creates a new
//! object that only its id reaches: share the id (or `fork`) instead.

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use crate::error::{check, Error, ErrorKind, Result};

/// A SysV IPC key (`key_t`).
///
/// ```
/// use shmchan_os::Key;
///
/// assert_eq!(Key::new(0x2a01b3f4).raw(), 0x2a01b3f4);
/// assert_eq!(Key::new(0x2a01b3f4).to_string(), "0x2a01b3f4");
/// assert_eq!(Key::PRIVATE.to_string(), "IPC_PRIVATE");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Key(libc::key_t);

impl Key {
    /// `IPC_PRIVATE`: every create makes a new object, reachable only through its id.
    pub const PRIVATE: Key = Key(libc::IPC_PRIVATE);

    /// A numeric key. `Key::new(0)` is [`Key::PRIVATE`].
    pub const fn new(raw: i32) -> Key {
        Key(raw)
    }

    /// The `key_t` value.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Whether this is `IPC_PRIVATE`.
    pub const fn is_private(self) -> bool {
        self.0 == libc::IPC_PRIVATE
    }
}

impl fmt::Display for Key {
    /// `0x2a01b3f4` (as `ipcs` shows keys), or `IPC_PRIVATE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_private() {
            f.write_str("IPC_PRIVATE")
        } else {
            write!(f, "0x{:08x}", self.0 as u32)
        }
    }
}

/// `ftok(3)`: the key derived from an existing file's inode and device, and `proj`.
///
/// The same path and `proj` give the same key in every process as long as the file is not
/// replaced (a new inode gives a new key). Collisions between different paths are possible
/// (only the low bits of the inode and device are used); create objects with
/// `IPC_EXCL` (as every `create` here does) to notice them.
///
/// A path that does not exist is a [`NotFound`](ErrorKind::NotFound) error naming the path;
/// `proj == 0` is [`InvalidInput`](ErrorKind::InvalidInput).
///
/// ```
/// use shmchan_os::{ftok, ErrorKind};
///
/// let a = ftok("/", b'a')?;
/// assert_eq!(a, ftok("/", b'a')?);
/// assert_ne!(a, ftok("/", b'b')?);
///
/// let err = ftok("/no/such/file", b'a').unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert!(err.to_string().contains("/no/such/file"));
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn ftok(path: impl AsRef<Path>, proj: u8) -> Result<Key> {
    let path = path.as_ref();
    let args = || format!("path={path:?}, proj=0x{proj:02x}");
    if proj == 0 {
        return Err(Error::new("ftok", args(), Errno::EINVAL)
            .with_hint("proj must be nonzero (only its low 8 bits are used)"));
    }
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::new("ftok", args(), Errno::EINVAL).with_hint("the path contains a NUL byte")
    })?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let key = check(unsafe { libc::ftok(c_path.as_ptr(), libc::c_int::from(proj)) }).map_err(
        |errno| {
            let err = Error::new("ftok", args(), errno);
            match errno {
                Errno::ENOENT => err.with_hint(format!(
                    "{} does not exist (ftok needs an existing file: the key comes from its inode)",
                    path.display()
                )),
                _ => err,
            }
        },
    )?;
    Ok(Key(key))
}

/// Permission bits of a new IPC object or file (`0o600` by default: owner read/write).
///
/// Only the low nine bits (`0o777`) are kept.
///
/// ```
/// use shmchan_os::Mode;
///
/// assert_eq!(Mode::default(), Mode::OWNER_RW);
/// assert_eq!(Mode::new(0o640).bits(), 0o640);
/// assert_eq!(Mode::new(0o640).to_string(), "0o640");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Mode(u32);

impl Mode {
    /// `0o600`: read and write for the owner only.
    pub const OWNER_RW: Mode = Mode(0o600);
    /// `0o660`: read and write for the owner and the group.
    pub const GROUP_RW: Mode = Mode(0o660);
    /// `0o666`: read and write for everybody (before the umask, for files and POSIX objects).
    pub const ALL_RW: Mode = Mode(0o666);

    /// The mode with these permission bits (masked to `0o777`).
    pub const fn new(bits: u32) -> Mode {
        Mode(bits & 0o777)
    }

    /// Same as [`Mode::new`] (the name bitflags types use).
    pub const fn from_bits(bits: u32) -> Mode {
        Mode::new(bits)
    }

    /// The permission bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    pub(crate) const fn c_int(self) -> libc::c_int {
        self.0 as libc::c_int
    }
}

impl Default for Mode {
    fn default() -> Mode {
        Mode::OWNER_RW
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#o}", self.0)
    }
}

/// Classifies an `EINVAL` on a SysV id: [`ErrorKind::Removed`] when `probe` (an `IPC_STAT` of
/// the same id) says it no longer exists, with a hint; the error unchanged otherwise.
pub(crate) fn removed_or(err: Error, id_exists: impl FnOnce() -> bool) -> Error {
    if err.errno() == Errno::EINVAL && !id_exists() {
        err.with_kind(ErrorKind::Removed)
            .with_hint("no such id: the object was removed (or never existed)")
    } else {
        err
    }
}

/// Whether an `IPC_STAT` failure means "this id does not exist (any more)".
pub(crate) fn gone(errno: Errno) -> bool {
    matches!(errno, Errno::EINVAL | Errno::EIDRM)
}
