//! SysV shared memory: `shmget`, `shmat`, `shmdt`, `shmctl(IPC_STAT | IPC_RMID)`.
//!
//! A segment is a kernel object named by an id ([`ShmId`], `Copy`) and found by a [`Key`]. It
//! persists until removed, even when no process has it attached, so whoever creates one decides
//! who removes it: [`OwnedShmId`] removes it on drop. [`ShmId::remove`] (`IPC_RMID`) destroys an
//! unattached segment at once; an attached one is only *marked*: its key is released at once,
//! the memory when the last process detaches, and until then Linux still lets processes attach
//! by id. Attaching and then marking right after creation therefore gives a segment that cannot
//! leak, even after `kill -9`.
//!
//! ```
//! use shmchan_os::{Access, ErrorKind, Key, Mode, ShmId};
//!
//! let id = ShmId::create(Key::PRIVATE, 4096, Mode::default())?;
//! let first = id.attach(Access::ReadWrite)?;
//! id.remove()?; // attached, so only marked: freed at the last detach
//! let second = id.attach(Access::ReadWrite)?; // Linux still allows attaching by id
//! let stat = id.stat()?;
//! assert!(stat.marked_for_removal);
//! assert_eq!(stat.nattch, 2);
//! drop((first, second)); // last detach: the segment is gone
//! assert_eq!(id.stat().unwrap_err().kind(), ErrorKind::Removed);
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr::{self, NonNull};

use nix::errno::Errno;

use crate::error::{check, limit, Error, ErrorKind, Result};
use crate::key::{gone, removed_or, Key, Mode};
use crate::limits;

/// `SHM_DEST`: the mode bit the kernel sets on a segment marked by `IPC_RMID`.
const SHM_DEST: u32 = 0o1000;

/// The id of a SysV shared memory segment (`shmid`).
///
/// A plain `Copy` id, valid in every process until the segment is removed; own it with
/// [`OwnedShmId`] to remove it on drop.
///
/// ```
/// use shmchan_os::{Access, Key, Mode, OwnedShmId, ShmId};
///
/// let owned = OwnedShmId::create(Key::PRIVATE, 4096, Mode::default())?;
/// // Any process that knows the id (or the key) attaches the same memory.
/// let same = ShmId::from_raw(owned.raw());
/// let writer = owned.attach(Access::ReadWrite)?;
/// let reader = same.attach(Access::ReadOnly)?;
/// assert_eq!(owned.stat()?.nattch, 2);
/// // SAFETY: both attachments map the same 4096 bytes; only this thread uses them.
/// unsafe { writer.as_ptr().as_ptr().write(1) };
/// // SAFETY: as above.
/// assert_eq!(unsafe { reader.as_ptr().as_ptr().read() }, 1);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ShmId(i32);

/// How to attach a segment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Access {
    /// Readable and writable.
    ReadWrite,
    /// `SHM_RDONLY`: a write through the attachment faults (`SIGSEGV`).
    ReadOnly,
}

/// `IPC_STAT` of a segment.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ShmStat {
    /// The key it was created with ([`Key::PRIVATE`] once marked for removal).
    pub key: Key,
    /// Size in bytes, as requested at creation.
    pub size: usize,
    /// Number of current attachments, in all processes.
    pub nattch: u64,
    /// Creator's pid.
    pub cpid: i32,
    /// Pid of the last `shmat`/`shmdt`.
    pub lpid: i32,
    /// Permission bits.
    pub mode: Mode,
    /// `IPC_RMID` was called: it disappears at the last detach.
    pub marked_for_removal: bool,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's gid.
    pub gid: u32,
    /// Creator's uid.
    pub cuid: u32,
    /// Creator's gid.
    pub cgid: u32,
    /// Last attach time (seconds since the epoch, 0 if never).
    pub atime: i64,
    /// Last detach time (seconds since the epoch, 0 if never).
    pub dtime: i64,
    /// Last change time (seconds since the epoch).
    pub ctime: i64,
}

impl ShmId {
    /// `shmget(key, size, IPC_CREAT | IPC_EXCL | mode)`: a new segment of `size` bytes, zeroed.
    ///
    /// Fails with [`AlreadyExists`](ErrorKind::AlreadyExists) when the key is taken;
    /// [`TooLarge`](ErrorKind::TooLarge) over `shmmax`; [`LimitReached`](ErrorKind::LimitReached)
    /// when `shmmni` or `shmall` is exhausted (the error names both and their sysctls).
    ///
    /// ```
    /// use shmchan_os::{Key, Mode, OwnedShmId, ShmId};
    ///
    /// let owned = OwnedShmId::new(ShmId::create(Key::PRIVATE, 8192, Mode::new(0o600))?);
    /// let stat = owned.stat()?;
    /// assert_eq!((stat.size, stat.mode.bits()), (8192, 0o600));
    /// # Ok::<(), shmchan_os::Error>(())
    /// ```
    pub fn create(key: Key, size: usize, mode: Mode) -> Result<ShmId> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode.c_int();
        // SAFETY: shmget takes no pointers.
        let id = check(unsafe { libc::shmget(key.raw(), size, flags) })
            .map_err(|e| shmget_error(key, Some((size, mode)), e))?;
        Ok(ShmId(id))
    }

    /// `shmget(key, 0, 0)`: the existing segment with this key.
    ///
    /// [`NotFound`](ErrorKind::NotFound) when there is none.
    pub fn open(key: Key) -> Result<ShmId> {
        // SAFETY: shmget takes no pointers.
        let id = check(unsafe { libc::shmget(key.raw(), 0, 0) })
            .map_err(|e| shmget_error(key, None, e))?;
        Ok(ShmId(id))
    }

    /// The segment with this id (nothing is checked until it is used).
    pub const fn from_raw(id: i32) -> ShmId {
        ShmId(id)
    }

    /// The `shmid`.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// `shmctl(IPC_STAT)`. [`Removed`](ErrorKind::Removed) once the segment is gone.
    // The kernel's counters are `unsigned long` (u32 on 32-bit targets): widen explicitly.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat(self) -> Result<ShmStat> {
        let ds = self.ipc_stat().map_err(|e| {
            let err = Error::new("shmctl", format!("shmid={}, cmd=IPC_STAT", self.0), e);
            if gone(e) {
                err.with_kind(ErrorKind::Removed)
                    .with_hint("no such id: the segment was removed (or never existed)")
            } else {
                err
            }
        })?;
        let perm = &ds.shm_perm;
        Ok(ShmStat {
            key: Key::new(perm.__key),
            size: ds.shm_segsz,
            nattch: ds.shm_nattch as u64,
            cpid: ds.shm_cpid,
            lpid: ds.shm_lpid,
            mode: Mode::new(perm.mode.into()),
            marked_for_removal: u32::from(perm.mode) & SHM_DEST != 0,
            uid: perm.uid,
            gid: perm.gid,
            cuid: perm.cuid,
            cgid: perm.cgid,
            atime: ds.shm_atime,
            dtime: ds.shm_dtime,
            ctime: ds.shm_ctime,
        })
    }

    fn ipc_stat(self) -> std::result::Result<libc::shmid_ds, Errno> {
        let mut ds = MaybeUninit::<libc::shmid_ds>::zeroed();
        // SAFETY: `ds` is a writable shmid_ds; IPC_STAT writes only into it.
        check(unsafe { libc::shmctl(self.0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
        // SAFETY: zero is a valid shmid_ds (plain integers) and IPC_STAT filled it in.
        Ok(unsafe { ds.assume_init() })
    }

    /// `shmctl(IPC_RMID)`: removes the segment, at once if nobody has it attached; otherwise it
    /// is marked: its key is free at once, the memory is freed at the last detach, and
    /// attachments (including new ones by id) keep working until then.
    pub fn remove(self) -> Result<()> {
        // SAFETY: IPC_RMID ignores the buffer argument.
        check(unsafe { libc::shmctl(self.0, libc::IPC_RMID, ptr::null_mut()) }).map_err(|e| {
            removed_or(
                Error::new("shmctl", format!("shmid={}, cmd=IPC_RMID", self.0), e),
                || self.ipc_stat().is_ok(),
            )
        })?;
        Ok(())
    }

    /// `shmat(id, NULL, flags)`: maps the segment into this process; detached on drop.
    ///
    /// The length comes from `IPC_STAT`. A removed id is [`Removed`](ErrorKind::Removed).
    pub fn attach(self, access: Access) -> Result<ShmAttachment> {
        let flags = match access {
            Access::ReadWrite => 0,
            Access::ReadOnly => libc::SHM_RDONLY,
        };
        // SAFETY: a null address lets the kernel choose where to map; no memory is touched.
        let addr = check(unsafe { libc::shmat(self.0, ptr::null(), flags) }).map_err(|e| {
            let err = Error::new("shmat", format!("shmid={}, access={access:?}", self.0), e);
            removed_or(err, || self.ipc_stat().is_ok())
        })?;
        let ptr = NonNull::new(addr.cast::<u8>()).expect("shmat returned NULL on success");
        // Owned from here on: an early return below detaches it.
        let mut attachment = ShmAttachment {
            id: self,
            ptr,
            len: 0,
            access,
        };
        // The id stays valid while we are attached, even if it is marked for removal.
        attachment.len = self.stat()?.size;
        Ok(attachment)
    }
}

fn shmget_error(key: Key, create: Option<(usize, Mode)>, errno: Errno) -> Error {
    let args = match create {
        Some((size, mode)) => format!("key={key}, size={size}, mode={mode}"),
        None => format!("key={key}"),
    };
    let err = Error::new("shmget", args, errno);
    let size = create.map_or(0, |(s, _)| s);
    match errno {
        Errno::EINVAL if size == 0 => err.with_hint("size must be at least 1 byte"),
        Errno::EINVAL if limits::shmmax().is_some_and(|m| size as u64 > m) => {
            err.with_kind(ErrorKind::TooLarge).with_hint(format!(
                "segment of {size} bytes exceeds {}",
                limit("shmmax", limits::shmmax(), "kernel.shmmax")
            ))
        }
        Errno::ENOSPC => err.with_hint(format!(
            "all {} are in use, or {size} more bytes would exceed {}",
            limit("shmmni ids", limits::shmmni(), "kernel.shmmni"),
            limit("shmall pages", limits::shmall(), "kernel.shmall")
        )),
        Errno::ENOENT => err.with_hint("no segment has this key"),
        _ => err,
    }
}

/// A segment attached to this process (`shmat`); detached (`shmdt`) on drop.
///
/// It hands out only a raw pointer: the memory is shared with other processes, so reading or
/// writing it is the caller's `unsafe` business (atomics, or data the protocol says is stable).
///
/// It cannot be cloned: a copy would `shmdt` the same address twice. Attach again instead.
///
/// ```compile_fail,E0599
/// use shmchan_os::{Access, Key, Mode, OwnedShmId};
///
/// let owned = OwnedShmId::create(Key::PRIVATE, 4096, Mode::default()).unwrap();
/// let a = owned.attach(Access::ReadWrite).unwrap();
/// let b = a.clone(); // error: ShmAttachment is not Clone
/// ```
#[derive(Debug)]
pub struct ShmAttachment {
    id: ShmId,
    ptr: NonNull<u8>,
    len: usize,
    access: Access,
}

// SAFETY: the attachment is a mapping of shared memory, usable from any thread; it hands out
// only raw pointers, so sending or sharing the handle gives no unsynchronised access by itself.
unsafe impl Send for ShmAttachment {}
// SAFETY: as for Send: `&ShmAttachment` only exposes the address, length and id.
unsafe impl Sync for ShmAttachment {}

impl ShmAttachment {
    /// The first byte of the mapping (page-aligned).
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The segment size in bytes (from `IPC_STAT` at attach time).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a segment is at least one byte long.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segment this attachment maps.
    pub fn id(&self) -> ShmId {
        self.id
    }

    /// How it was attached.
    pub fn access(&self) -> Access {
        self.access
    }
}

impl Drop for ShmAttachment {
    fn drop(&mut self) {
        // SAFETY: `ptr` is the address shmat returned and it was not detached before (this
        // value owns the attachment). Nothing useful can be done if shmdt fails.
        let _ = unsafe { libc::shmdt(self.ptr.as_ptr().cast()) };
    }
}

/// A segment id that removes the segment (`IPC_RMID`) when dropped, unless given up with
/// [`into_inner`](OwnedShmId::into_inner).
///
/// ```
/// use shmchan_os::{Key, Mode, OwnedShmId};
///
/// let owned = OwnedShmId::create(Key::PRIVATE, 4096, Mode::default())?;
/// let id = owned.id();
/// drop(owned); // IPC_RMID; nobody was attached, so it is gone
/// assert!(id.stat().is_err());
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[derive(Debug)]
pub struct OwnedShmId(ShmId);

impl OwnedShmId {
    /// Takes ownership of `id`: it is removed when this guard is dropped.
    pub fn new(id: ShmId) -> OwnedShmId {
        OwnedShmId(id)
    }

    /// [`ShmId::create`], owned.
    pub fn create(key: Key, size: usize, mode: Mode) -> Result<OwnedShmId> {
        ShmId::create(key, size, mode).map(OwnedShmId)
    }

    /// The id (still owned by this guard).
    pub fn id(&self) -> ShmId {
        self.0
    }

    /// Gives up ownership: the segment is no longer removed on drop.
    pub fn into_inner(self) -> ShmId {
        let id = self.0;
        std::mem::forget(self);
        id
    }

    /// Same as [`into_inner`](OwnedShmId::into_inner).
    pub fn leak(self) -> ShmId {
        self.into_inner()
    }
}

impl Deref for OwnedShmId {
    type Target = ShmId;
    fn deref(&self) -> &ShmId {
        &self.0
    }
}

impl Drop for OwnedShmId {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}
