//! The one error type of this crate, and the one place where a return value becomes an `Errno`.
//!
//! An [`Error`] keeps the operation (`"shmget"`), its arguments formatted as they were passed
//! (`key=0x2a01b3f4, size=4096, mode=0o600`), the [`Errno`] (also as
//! [`source()`](std::error::Error::source)), a classification ([`ErrorKind`]) and, where a kernel
//! limit is the likely cause, a hint that names the limit, its current value and its sysctl:
//!
//! ```text
//! shmget(key=0x2a01b3f4, size=4096, mode=0o600): EEXIST: File exists
//! msgsnd(msqid=3, mtype=1, len=9000, flags=0): EINVAL: message of 9000 bytes exceeds msgmax (8192; sysctl kernel.msgmax)
//! ```

use std::fmt;

use nix::errno::{Errno, ErrnoSentinel};

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, independent of the call that failed.
///
/// Match on this rather than on [`Error::errno`] where you can: several errnos map to one kind,
/// and some kinds depend on context (an `EINVAL` from an id that was removed is
/// [`Removed`](ErrorKind::Removed); an `EINVAL` for a message over `msgmax` is
/// [`TooLarge`](ErrorKind::TooLarge)).
///
/// ```
/// use shmchan_os::{ErrorKind, Key, Mode, MsgFlags, OwnedMsgQueue};
///
/// let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default())?;
/// let id = q.id();
/// drop(q); // IPC_RMID
/// match id.send(1, b"x", MsgFlags::NOWAIT) {
///     Err(e) if e.kind() == ErrorKind::Removed => {} // the peer removed it: disconnected
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No object with that key, name or path (`ENOENT`).
    NotFound,
    /// An exclusive create found the object already there (`EEXIST`).
    AlreadyExists,
    /// The caller may not use the object (`EACCES`, `EPERM`).
    PermissionDenied,
    /// The SysV object was removed: `EIDRM` while blocked in it, or `EINVAL` on an id that no
    /// longer exists.
    Removed,
    /// A non-blocking call could not proceed (`EAGAIN`) where the API reports it as an error.
    WouldBlock,
    /// A message or segment is larger than the object or a kernel limit allows (`E2BIG`,
    /// `EMSGSIZE`, `EINVAL` for a size over the limit).
    TooLarge,
    /// A system-wide or per-user limit on the number of objects or bytes is exhausted
    /// (`ENOSPC`, `EMFILE`, `ENFILE`, `ERANGE`/`EOVERFLOW` for semaphore values).
    LimitReached,
    /// An argument was rejected (`EINVAL`, `EFBIG`, `ENAMETOOLONG`, ...).
    InvalidInput,
    /// The object's state in shared memory is one that no correct use produces: a process
    /// that can write the memory overwrote it (a POSIX semaphore whose value is over
    /// `SEM_VALUE_MAX`, or whose sharing word is not a process-shared semaphore's). Reported
    /// with `EINVAL`; the call did nothing.
    Corrupted,
    /// Anything else; see [`Error::errno`].
    Other,
}

impl ErrorKind {
    /// The default classification of an errno, before the call site refines it.
    fn of(errno: Errno) -> ErrorKind {
        match errno {
            Errno::ENOENT => ErrorKind::NotFound,
            Errno::EEXIST => ErrorKind::AlreadyExists,
            Errno::EACCES | Errno::EPERM => ErrorKind::PermissionDenied,
            Errno::EIDRM => ErrorKind::Removed,
            Errno::EAGAIN => ErrorKind::WouldBlock,
            Errno::E2BIG | Errno::EMSGSIZE => ErrorKind::TooLarge,
            Errno::ENOSPC | Errno::EMFILE | Errno::ENFILE | Errno::ERANGE | Errno::EOVERFLOW => {
                ErrorKind::LimitReached
            }
            Errno::EINVAL | Errno::EFBIG | Errno::ENAMETOOLONG | Errno::EBADF => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Other,
        }
    }

    fn io_kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind as Io;
        match self {
            ErrorKind::NotFound => Io::NotFound,
            ErrorKind::AlreadyExists => Io::AlreadyExists,
            ErrorKind::PermissionDenied => Io::PermissionDenied,
            ErrorKind::Removed => Io::NotConnected,
            ErrorKind::WouldBlock => Io::WouldBlock,
            ErrorKind::TooLarge | ErrorKind::InvalidInput => Io::InvalidInput,
            ErrorKind::Corrupted => Io::InvalidData,
            ErrorKind::LimitReached | ErrorKind::Other => Io::Other,
        }
    }
}

/// A failed system call: the operation, its arguments, the [`Errno`] and what it means.
///
/// ```
/// use shmchan_os::{ErrorKind, Key, ShmId};
///
/// // A key nobody uses (0x7fff_fff3 is not special; any unused key behaves the same).
/// let err = ShmId::open(Key::new(0x7fff_fff3)).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert_eq!(err.op(), "shmget");
/// assert_eq!(err.errno(), shmchan_os::Errno::ENOENT);
/// assert!(err.to_string().starts_with("shmget(key=0x7ffffff3"));
/// ```
#[derive(Debug, Clone)]
pub struct Error {
    op: &'static str,
    args: String,
    errno: Errno,
    kind: ErrorKind,
    hint: Option<String>,
}

impl Error {
    /// A new error for `op(args)`, classified from `errno` alone.
    pub(crate) fn new(op: &'static str, args: impl Into<String>, errno: Errno) -> Error {
        Error {
            op,
            args: args.into(),
            errno,
            kind: ErrorKind::of(errno),
            hint: None,
        }
    }

    /// Replaces the errno's description in `Display` with `hint` (a limit, a likely cause).
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// Overrides the classification where the call site knows better than the errno.
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Error {
        self.kind = kind;
        self
    }

    /// The failed operation, named after the system call (`"shmget"`, `"mq_open"`, ...).
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The arguments of the failed call, formatted (`"key=0x2a01b3f4, size=4096, mode=0o600"`).
    pub fn args(&self) -> &str {
        &self.args
    }

    /// The errno the kernel (or libc) returned.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// What the error means; see [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The hint shown instead of the errno's description, if any (names the limit and sysctl).
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}): {:?}: ", self.op, self.args, self.errno)?;
        match &self.hint {
            Some(hint) => f.write_str(hint),
            None => f.write_str(self.errno.desc()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.errno)
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> std::io::Error {
        std::io::Error::new(err.kind.io_kind(), err)
    }
}

/// The errno helper: turns a C return value into `Ok(value)` or `Err(errno)`.
///
/// `S` is the return type of the call; its failure sentinel is `-1` for integers and
/// `(void*)-1` for pointers (`shmat`). Every call in this crate that reports failure through
/// `errno` goes through here, or through [`check_null`] for the calls that return `NULL`
/// (`sem_open` returns `SEM_FAILED`, which glibc defines as `NULL`).
pub(crate) fn check<S: ErrnoSentinel + PartialEq<S>>(ret: S) -> std::result::Result<S, Errno> {
    Errno::result(ret)
}

/// Like [`check`], for calls that fail with a null pointer.
pub(crate) fn check_null<T>(ret: *mut T) -> std::result::Result<std::ptr::NonNull<T>, Errno> {
    std::ptr::NonNull::new(ret).ok_or_else(Errno::last)
}

/// Converts an `io::Error` from `std` (used for `/proc` reads) into an [`Errno`].
pub(crate) fn errno_of_io(err: &std::io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}

/// The "`name` (value; sysctl path)" fragment of a limit hint.
pub(crate) fn limit(name: &str, value: Option<u64>, sysctl: &str) -> String {
    match value {
        Some(v) => format!("{name} ({v}; sysctl {sysctl})"),
        None => format!("{name} (unreadable; sysctl {sysctl})"),
    }
}
