//! Where a channel's segment lives: SysV shared memory (`sysv`), a file-backed `mmap`
//! (`file`), anonymous `MAP_SHARED` memory inherited across `fork` or memory the caller mapped
//! (`anon`), or a sealed memfd passed over a Unix socket (`memfd`).
//!
//! Each backing creates and opens its memory, reads it for inspection from outside (never
//! mapped read-write), removes it by name, and tells whether a process still uses it. What the
//! segment holds is not this module's business: the callers validate it (`crate::segment`),
//! parse it (`crate::inspect`), and decide what to remove (`crate::removal`).

use std::path::PathBuf;
use std::ptr::NonNull;

use shmchan_os as os;

use crate::doorbell::{Reach, Vouched};
use crate::error::{os_error, OpenError};
use crate::life::Probe;

mod anon;
mod file;
pub(crate) mod memfd;
mod sysv;

/// The shared memory a channel lives in, chosen in the builder.
///
/// | backing | how peers find it | lifetime |
/// |---|---|---|
/// | [`Backing::sysv_key`], [`Backing::sysv_path`] | a SysV key | until removed (see [`Cleanup`]) |
/// | [`Backing::sysv_private`], [`Backing::sysv_id`] | the shmid, handed to the peer | until removed |
/// | [`Backing::file`] | a path | the file's (it survives every process exiting) |
/// | [`Backing::anonymous`] | inherited across `fork` | until the last process unmaps it |
/// | [`Backing::memfd`], [`Backing::receive`] | its descriptor, sent over a Unix socket ([`Channel::share`](crate::Channel::share)) | until the last descriptor and mapping are gone |
///
/// ```
/// use shmchan::Backing;
/// let b = Backing::sysv_path("/tmp", b'q');
/// assert_eq!(b.to_string(), "SysV ftok(/tmp, 'q')");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backing(pub(crate) Kind);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    SysvKey(i32),
    SysvPath(PathBuf, u8),
    SysvPrivate,
    SysvId(i32),
    File(PathBuf),
    Anonymous,
    /// Memory the caller mapped (`Builder::create_in` / `open_in`).
    Region {
        addr: usize,
        len: usize,
    },
    /// A new memfd of this name (creation only).
    Memfd(String),
    /// A memfd (and maybe its doorbell's descriptors) received from a peer (opening only).
    MemfdFd(memfd::Received),
}

impl Backing {
    /// SysV shared memory under a numeric key.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// let backing = Backing::sysv_key(0x5c00_0000 | std::process::id() as i32);
    /// let chan = Channel::<u64>::builder().backing(backing.clone()).create()?; // removed on drop
    /// let peer = Channel::<u64>::builder().backing(backing).open()?; // by key
    /// assert_eq!(peer.shm_id(), chan.shm_id());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn sysv_key(key: i32) -> Backing {
        Backing(Kind::SysvKey(key))
    }

    /// SysV shared memory under the key `ftok(path, proj)`; `path` must exist.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-ftok-{}", std::process::id()));
    /// # std::fs::write(&path, b"").unwrap();
    /// let backing = Backing::sysv_path(&path, b'k'); // the key is ftok(path, 'k')
    /// let chan = Channel::<u64>::builder().backing(backing.clone()).create()?;
    /// let peer = Channel::<u64>::builder().backing(backing).open()?;
    /// assert_eq!(peer.shm_id(), chan.shm_id());
    /// # drop((peer, chan)); std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn sysv_path(path: impl Into<PathBuf>, proj: u8) -> Backing {
        Backing(Kind::SysvPath(path.into(), proj))
    }

    /// A new SysV segment with `IPC_PRIVATE`: peers open it by the id that
    /// [`Sender::shm_id`](crate::Sender::shm_id) (or the receiver's, or the channel's) reports,
    /// with [`Backing::sysv_id`]. Creation only.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// let chan = Channel::<u64>::builder().backing(Backing::sysv_private()).create()?;
    /// let id = chan.shm_id().expect("a SysV segment"); // hand this to the peer
    /// let peer = Channel::<u64>::builder().backing(Backing::sysv_id(id)).open()?;
    /// assert_eq!(peer.capacity(), chan.capacity());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn sysv_private() -> Backing {
        Backing(Kind::SysvPrivate)
    }

    /// An existing SysV segment by its shmid. Opening only. Linux lets a segment that was
    /// already marked for removal ([`Cleanup::LastDetach`]) be attached by id while it exists.
    ///
    /// ```
    /// use shmchan::{Backing, Channel, Cleanup};
    /// let chan = Channel::<u64>::builder()
    ///     .backing(Backing::sysv_private())
    ///     .cleanup(Cleanup::LastDetach) // already marked for removal...
    ///     .create()?;
    /// let id = chan.shm_id().unwrap();
    /// let mut rx = Channel::<u64>::builder().backing(Backing::sysv_id(id)).open_receiver()?;
    /// chan.sender()?.send(5).unwrap(); // ...but still attachable by id
    /// assert_eq!(rx.recv(), Ok(5));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn sysv_id(shmid: i32) -> Backing {
        Backing(Kind::SysvId(shmid))
    }

    /// A file-backed `MAP_SHARED` mapping at `path`. Records committed and not yet received
    /// survive every process exiting: a receiver that opens the file later gets them.
    ///
    /// # The filesystem, and `SIGBUS`
    ///
    /// The path is opened without blocking and must be a regular file
    /// ([`OpenError::NotAFile`] for a FIFO, a device, a
    /// directory). Creation reserves every block of the file (`posix_fallocate`), so a full
    /// filesystem is an `ENOSPC` error naming the path (and the half-created file is removed)
    /// rather than a `SIGBUS` when a page is first written. An opener checks the file's length
    /// against the channel header and refuses a short file
    /// ([`OpenError::Corrupted`] naming both lengths).
    ///
    /// If another process truncates the file *while* it is mapped, touching the lost pages
    /// raises `SIGBUS`: the kernel gives a mapping no way to refuse a shrink, and shmchan does
    /// not install a signal handler behind your back. What shmchan does is notice: once per
    /// time slice a waiting endpoint compares the file's length with the mapping and the
    /// header with the one it validated, and its wait ends with `Corrupted` (then
    /// [`Sender::check`](crate::Sender::check) / [`Receiver::check`](crate::Receiver::check)
    /// say why) before it touches the lost pages; a file truncated and grown again (zeros) is
    /// caught the same way, so no zeroed slot is taken for a record by a waiter. An endpoint
    /// dropped after that leaves without touching the segment. Between two checks, a process
    /// that is sending or receiving can still touch a lost page. So protect channel files like
    /// any other shared state: mode `0o600` (the default), a directory only the participating
    /// users can write, and no log rotation or cleanup job pointed at them. Peers you do not
    /// trust get a sealed memfd ([`Backing::memfd`]), which cannot be shrunk at all.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-file-{}", std::process::id()));
    /// let mut tx = Channel::<u64>::builder().backing(Backing::file(&path)).create_sender()?;
    /// tx.send(7).unwrap();
    /// drop(tx); // the file (Cleanup::Keep) and the record outlive the sender
    /// let mut rx = Channel::<u64>::builder().backing(Backing::file(&path)).open_receiver()?;
    /// assert_eq!(rx.try_recv(), Ok(7));
    /// # drop(rx); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> Backing {
        Backing(Kind::File(path.into()))
    }

    /// Anonymous `MAP_SHARED` memory, shared with children `fork`ed after creation. Create the
    /// channel with [`Builder::create`](crate::Builder::create) before forking.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// let chan = Channel::<u64>::builder().backing(Backing::anonymous()).create()?;
    /// assert_eq!(chan.shm_id(), None); // no kernel name: shared only by `fork`
    /// assert_eq!(Backing::anonymous().to_string(), "anonymous shared memory");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn anonymous() -> Backing {
        Backing(Kind::Anonymous)
    }

    /// See [`Cleanup`].
    pub(crate) fn default_cleanup(&self) -> Cleanup {
        match self.0 {
            Kind::File(_) => Cleanup::Keep,
            Kind::SysvKey(_) | Kind::SysvPath(..) | Kind::SysvPrivate | Kind::SysvId(_) => {
                Cleanup::WhenDrained
            }
            _ => Cleanup::Creator,
        }
    }

    /// How peers find this backing, for messages.
    pub(crate) fn how(&self) -> &'static str {
        match self.0 {
            Kind::SysvKey(_) | Kind::SysvPath(..) | Kind::SysvPrivate | Kind::SysvId(_) => {
                "by its SysV key or id"
            }
            Kind::File(_) => "by its path",
            Kind::Anonymous => "by inheritance across fork",
            Kind::Region { .. } => "through memory the caller maps",
            Kind::Memfd(_) | Kind::MemfdFd(_) => "by its descriptor",
        }
    }

    /// What a doorbell needs to know of this backing: whether peers get the creator's
    /// descriptors, and what a received memfd brought.
    pub(crate) fn reach(&self) -> Reach<'_> {
        Reach {
            backing: self,
            how: self.how(),
            passes_fds: matches!(self.0, Kind::Anonymous | Kind::Memfd(_) | Kind::MemfdFd(_)),
            received: match &self.0 {
                Kind::MemfdFd(r) => Some(r.handed()),
                _ => None,
            },
            // Known only once the memory is mapped (`Mapping::vouched`).
            owner: Vouched::Unknown,
        }
    }

    /// Reads the segment's bytes from outside, without mapping it read-write (SysV: attached
    /// `SHM_RDONLY`; a file or a received memfd: read), and hands them to `f` with who the
    /// kernel says they belong to (`IPC_STAT` of the segment attached, `fstat` of the file or
    /// memfd read: the very object the bytes came from) and how its life tokens are reached
    /// (`crate::life`: the descriptor read, or the shmid attached).
    pub(crate) fn read_with<R>(
        &self,
        f: impl FnOnce(&[u8], Vouched, Probe<'_>) -> R,
    ) -> Result<R, OpenError> {
        let what = self.to_string();
        match &self.0 {
            Kind::File(p) => file::read(p).map(|(bytes, uid, fd)| {
                f(
                    &bytes,
                    Vouched::Uid(uid),
                    Probe::Fd(std::os::fd::AsFd::as_fd(&fd)),
                )
            }),
            Kind::SysvKey(_) | Kind::SysvPath(..) => {
                let key = sysv::key(&self.0)?;
                let id = os::ShmId::open(key).map_err(|e| os_error(e, &what))?;
                sysv::read_with(id, &what, f)
            }
            Kind::SysvId(id) => sysv::read_with(os::ShmId::from_raw(*id), &what, f),
            Kind::MemfdFd(r) => {
                let bytes = memfd::read(r, &what)?;
                Ok(f(&bytes, memfd::owner(r), memfd::probe(r)))
            }
            _ => Err(OpenError::InvalidConfig {
                reason: format!("{what} cannot be inspected from outside"),
            }),
        }
    }

    /// Refuses to remove a backing that has nothing to remove by name (a memfd), before anyone
    /// looks at what it holds.
    /// Whether a process can open the channel again once nobody holds it (a SysV key, path or
    /// id, a file); memory without a name (anonymous, a memfd, caller-provided memory) goes
    /// with the last process that holds it.
    pub(crate) fn reopenable(&self) -> bool {
        matches!(
            self.0,
            Kind::SysvKey(_)
                | Kind::SysvPath(..)
                | Kind::SysvPrivate
                | Kind::SysvId(_)
                | Kind::File(_)
        )
    }

    /// Whether the channel has a name that both a creator and an opener use (a SysV key or
    /// path, a file): what `open_or_create` needs.
    pub(crate) fn named(&self) -> bool {
        matches!(
            self.0,
            Kind::SysvKey(_) | Kind::SysvPath(..) | Kind::File(_)
        )
    }

    pub(crate) fn check_removable(&self) -> Result<(), OpenError> {
        match memfd::refuse_remove(self) {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }

    /// Removes the segment's kernel object by its name (the file, or the SysV segment, which
    /// the kernel frees at its last detach). Doorbell objects are the caller's.
    pub(crate) fn unlink(&self) -> Result<(), OpenError> {
        let what = self.to_string();
        match &self.0 {
            Kind::File(p) => file::unlink(p, what),
            Kind::SysvKey(_) | Kind::SysvPath(..) => {
                let key = sysv::key(&self.0)?;
                os::ShmId::open(key)
                    .and_then(|id| id.remove())
                    .map_err(|e| os_error(e, &what))
            }
            Kind::SysvId(id) => os::ShmId::from_raw(*id)
                .remove()
                .map_err(|e| os_error(e, &what)),
            Kind::SysvPrivate
            | Kind::Anonymous
            | Kind::Region { .. }
            | Kind::Memfd(_)
            | Kind::MemfdFd(_) => Err(OpenError::InvalidConfig {
                reason: format!("{what} has no name to remove it by"),
            }),
        }
    }

    /// Whether a process other than through an endpoint still uses the segment, for stale
    /// reclaiming: SysV counts attachments exactly (even after `kill -9`); a file is in use
    /// while a process holds it open through shmchan (its lock on the file, `crate::life`,
    /// in any PID namespace), or while its creator (`creator_pid`, of PID namespace
    /// `creator_pidns`) still maps it, when that is this process's PID namespace. Returns a
    /// pid that uses it (when known) and why; `what` names the backing in errors.
    pub(crate) fn in_use(
        &self,
        creator_pid: u32,
        creator_pidns: u64,
        what: &str,
    ) -> Result<Option<(Option<u32>, String)>, OpenError> {
        match &self.0 {
            Kind::SysvKey(_) | Kind::SysvPath(..) => sysv::in_use(sysv::key(&self.0)?, what),
            Kind::File(path) => Ok(file::in_use(creator_pid, creator_pidns, path)),
            _ => Ok(None),
        }
    }
}

impl std::fmt::Display for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::SysvKey(k) => write!(f, "SysV key {:#x}", *k as u32),
            Kind::SysvPath(p, proj) => {
                write!(f, "SysV ftok({}, {:?})", p.display(), char::from(*proj))
            }
            Kind::SysvPrivate => f.write_str("SysV IPC_PRIVATE"),
            Kind::SysvId(id) => write!(f, "SysV shmid {id}"),
            Kind::File(p) => write!(f, "file {}", p.display()),
            Kind::Anonymous => f.write_str("anonymous shared memory"),
            Kind::Region { addr, len } => {
                write!(f, "caller-provided memory at {addr:#x} ({len} bytes)")
            }
            Kind::Memfd(name) => write!(f, "memfd {name:?}"),
            Kind::MemfdFd(r) => write!(f, "{r}"),
        }
    }
}

/// Who removes a channel (its segment and its doorbell's kernel objects), and when.
///
/// | cleanup | removed when | unread records |
/// |---|---|---|
/// | [`WhenDrained`](Cleanup::WhenDrained) (default for SysV) | the last process leaves | keep the channel until a receiver drains it |
/// | [`Creator`](Cleanup::Creator) (default for anonymous memory, memfd) | the creator's last handle drops | destroyed with it |
/// | [`LastDetach`](Cleanup::LastDetach) (SysV) | the kernel's last detach, even after `SIGKILL` | destroyed with it |
/// | [`Keep`](Cleanup::Keep) (default for files) | never: `shmchan rm`, [`crate::remove`] | kept |
///
/// Under the defaults a channel holding committed records is never removed by an endpoint's
/// drop: a producer can send and exit before its consumer starts. `shmchan ls` shows such
/// channels (their unread records), a later creator is refused rather than discarding them
/// (the error says how many), and `shmchan rm` or `shmchan prune` remove them explicitly.
///
/// ```
/// use shmchan::inspect::{inspect, Inspection};
/// use shmchan::{Backing, Channel, Cleanup};
/// let chan = Channel::<u64>::builder()
///     .backing(Backing::sysv_private())
///     .cleanup(Cleanup::LastDetach) // the kernel frees it whatever happens to us
///     .create()?;
/// let Inspection::Channel(info) = inspect(&Backing::sysv_id(chan.shm_id().unwrap()))? else {
///     panic!("not a channel")
/// };
/// assert_eq!(info.cleanup, Some(Cleanup::LastDetach));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cleanup {
    /// The creating process removes the segment (`IPC_RMID`, or unlinks the file) when its last
    /// handle to the channel is dropped, with whatever records it still holds. Peers still
    /// attached keep working; new peers cannot open it any more. A creator killed with
    /// `SIGKILL` leaves the segment behind.
    Creator,
    /// SysV only: mark the segment `IPC_RMID` right after creating it, so the kernel frees it
    /// when the last process detaches, even if every process is killed. The key is free at
    /// once, so peers must attach by id ([`Backing::sysv_id`]) or inherit the channel across
    /// `fork`. The doorbell's objects are removed by the process whose detach is the last one,
    /// as the kernel counts attachments (`shm_nattch`, read after its own detach), and only
    /// those bound to the channel ([`OpenError::UnboundDoorbell`](crate::OpenError)).
    LastDetach,
    /// Nothing removes it: `shmchan rm`, [`crate::remove`], or deleting the file does.
    Keep,
    /// The last process to leave the channel removes it, once nothing in it is unread; a
    /// channel that still holds records stays until a receiver drains them (the receiver's
    /// process, leaving last, then removes it), or until it is removed explicitly. Processes
    /// are counted in the segment as they attach and detach: one killed with `SIGKILL` stays
    /// counted, and the channel is then left stale for the next creator to reclaim (or
    /// `shmchan prune`).
    ///
    /// ```
    /// use shmchan::{Backing, Channel, Cleanup};
    /// # let key = 0x5c00_0000 | (std::process::id() as i32 & 0xffff);
    /// let b = || Channel::<u64>::builder().backing(Backing::sysv_key(key));
    /// let mut tx = b().cleanup(Cleanup::WhenDrained).create_sender()?; // the SysV default
    /// tx.send(7).unwrap();
    /// drop(tx); // the producer leaves; its record waits
    /// let mut rx = b().open_receiver()?;
    /// assert_eq!(rx.recv(), Ok(7));
    /// drop(rx); // drained, and the last process left: removed
    /// assert!(matches!(b().open(), Err(shmchan::OpenError::NotFound { .. })));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    WhenDrained,
}

/// The mapped memory of a segment plus the kernel object behind it.
pub(crate) enum Mapping {
    Sysv {
        attachment: os::ShmAttachment,
        id: os::ShmId,
    },
    File {
        map: os::SharedMapping,
        /// Kept open for the slow-path check (`Mapping::check`).
        fd: std::os::fd::OwnedFd,
    },
    Anonymous {
        map: os::SharedMapping,
    },
    /// Caller-provided memory: not owned, never unmapped here.
    Region {
        base: NonNull<u8>,
        len: usize,
    },
    /// A sealed memfd; the descriptor is kept to pass it on (`Channel::share`).
    Memfd {
        map: os::SharedMapping,
        fd: std::sync::Arc<std::os::fd::OwnedFd>,
    },
}

impl Mapping {
    pub(crate) fn base(&self) -> NonNull<u8> {
        match self {
            Mapping::Sysv { attachment, .. } => attachment.as_ptr(),
            Mapping::File { map, .. } | Mapping::Anonymous { map } | Mapping::Memfd { map, .. } => {
                map.as_ptr()
            }
            Mapping::Region { base, .. } => *base,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Mapping::Sysv { attachment, .. } => attachment.len(),
            Mapping::File { map, .. } | Mapping::Anonymous { map } | Mapping::Memfd { map, .. } => {
                map.len()
            }
            Mapping::Region { len, .. } => *len,
        }
    }

    pub(crate) fn shm_id(&self) -> Option<i32> {
        match self {
            Mapping::Sysv { id, .. } => Some(id.raw()),
            _ => None,
        }
    }

    /// What a process other than the creator removes when the channel's removal falls to it
    /// (see `Cleanup::Creator`): the SysV segment it is attached to, or the file it mapped
    /// while `backing`'s path still names it. Nothing for memory without a name.
    pub(crate) fn remover(&self, backing: &Backing) -> Owner {
        match (self, &backing.0) {
            (Mapping::Sysv { id, .. }, _) => Owner::SysvSegment(*id),
            (Mapping::File { fd, .. }, Kind::File(path)) => match os::file::fstat(fd) {
                Ok(st) => Owner::FileIfSame {
                    path: path.clone(),
                    dev: st.dev,
                    ino: st.ino,
                },
                Err(_) => Owner::Nothing,
            },
            _ => Owner::Nothing,
        }
    }

    /// The descriptor of the mapped file or memfd (what life-token locks are taken on).
    pub(crate) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match self {
            Mapping::File { fd, .. } => Some(fd.as_fd()),
            Mapping::Memfd { fd, .. } => Some(fd.as_fd()),
            _ => None,
        }
    }

    /// The memfd behind the mapping, for `Channel::share`.
    pub(crate) fn memfd(&self) -> Option<&std::sync::Arc<std::os::fd::OwnedFd>> {
        match self {
            Mapping::Memfd { fd, .. } => Some(fd),
            _ => None,
        }
    }

    /// The slow-path check that the memory is still all there: `Err` (why) once a mapped file
    /// is shorter than the mapping (another process truncated it). Other backings cannot
    /// shrink under a mapping.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            Mapping::File { map, fd } => file::check(fd, map.len()),
            _ => Ok(()),
        }
    }

    pub(crate) fn msync(&self) -> Result<(), os::Error> {
        match self {
            Mapping::File { map, .. } => map.msync(os::MsyncMode::Sync),
            _ => Ok(()),
        }
    }

    /// Who the kernel says this memory belongs to: the SysV segment's creator (`IPC_STAT`
    /// `cuid`: `uid` can be handed to anyone, `cuid` cannot), the owner of the file or memfd
    /// (`fstat` of the descriptor that was mapped); nobody for anonymous and caller-provided
    /// memory.
    pub(crate) fn vouched(&self) -> Result<Vouched, os::Error> {
        Ok(match self {
            Mapping::Sysv { id, .. } => Vouched::Uid(id.stat()?.cuid),
            Mapping::File { fd, .. } => Vouched::Uid(os::file::fstat(fd)?.uid),
            Mapping::Memfd { fd, .. } => Vouched::Uid(os::file::fstat(&**fd)?.uid),
            Mapping::Anonymous { .. } | Mapping::Region { .. } => Vouched::Unknown,
        })
    }
}

/// Whether no process is attached to the SysV segment `shm_id` any more, as the kernel counts
/// (`shm_nattch`, exact even after `kill -9`): asked by a process after its own detach, so the
/// one whose detach was the last sees 0 (or the segment gone: one marked for removal is freed
/// at its last detach).
pub(crate) fn nobody_attached(shm_id: i32) -> bool {
    match os::ShmId::from_raw(shm_id).stat() {
        Ok(st) => st.nattch == 0,
        Err(e) => e.kind() == os::ErrorKind::Removed,
    }
}

/// What the creating process removes when its last handle goes.
pub(crate) enum Owner {
    Nothing,
    SysvSegment(os::ShmId),
    File(PathBuf),
    /// A file a process other than its creator removes: only while the path still names the
    /// file it mapped (device and inode), never a file put there since.
    FileIfSame {
        path: PathBuf,
        dev: u64,
        ino: u64,
    },
}

impl Owner {
    pub(crate) fn run(&self) {
        // Errors are ignored on purpose: the object may already be gone (`shmchan rm`, a
        // peer's `remove`), and a destructor has nobody to report to.
        match self {
            Owner::Nothing => {}
            Owner::SysvSegment(id) => {
                let _ = id.remove();
            }
            Owner::File(path) => {
                let _ = std::fs::remove_file(path);
            }
            Owner::FileIfSame { path, dev, ino } => {
                if os::file::lstat(path).is_ok_and(|st| st.dev == *dev && st.ino == *ino) {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// Removes the stale channel that is in the way of a new one (told what is in the way), or
/// refuses (see `crate::removal::reclaim_stale`).
pub(crate) type Reclaim<'a> = &'a dyn Fn(&str) -> Result<(), OpenError>;

/// Creates the backing memory of `len` bytes. Where a channel is in the way and `reclaim` is
/// given, `reclaim` (told what is in the way) removes it if it is stale, and creation is tried
/// once more. Returns the mapping and what the creator owns.
pub(crate) fn create(
    backing: &Backing,
    len: usize,
    mode: u32,
    cleanup: Cleanup,
    reclaim: Option<Reclaim<'_>>,
) -> Result<(Mapping, Owner), OpenError> {
    match (create_once(backing, len, mode, cleanup), reclaim) {
        (Err(OpenError::AlreadyExists { what, .. }), Some(reclaim)) => {
            reclaim(&what)?;
            create_once(backing, len, mode, cleanup)
        }
        (r, _) => r,
    }
}

fn create_once(
    backing: &Backing,
    len: usize,
    mode: u32,
    cleanup: Cleanup,
) -> Result<(Mapping, Owner), OpenError> {
    let what = backing.to_string();
    match &backing.0 {
        Kind::SysvKey(_) | Kind::SysvPath(..) | Kind::SysvPrivate => {
            sysv::create(sysv::key_to_create(&backing.0)?, len, mode, cleanup, &what)
        }
        Kind::SysvId(_) => Err(OpenError::InvalidConfig {
            reason: "Backing::sysv_id opens an existing segment; create with sysv_key, sysv_path or sysv_private".into(),
        }),
        Kind::File(path) => file::create(path, len, mode, cleanup, &what),
        Kind::Anonymous => anon::create(len, &what),
        Kind::Region { addr, len: have } => {
            if *have < len {
                return Err(OpenError::InvalidConfig {
                    reason: format!("{what} is smaller than the {len} bytes the channel needs"),
                });
            }
            Ok((anon::region(*addr, *have)?, Owner::Nothing))
        }
        // Nothing to remove by name: the memory goes with the last descriptor and mapping.
        Kind::Memfd(name) => Ok((memfd::create(name, len)?, Owner::Nothing)),
        Kind::MemfdFd(_) => Err(OpenError::InvalidConfig {
            reason: format!(
                "{what} already holds a channel: open it (Builder::open); create new channels with Backing::memfd"
            ),
        }),
    }
}

/// Opens the backing memory of an existing channel. The caller validates its content.
pub(crate) fn open(backing: &Backing) -> Result<Mapping, OpenError> {
    let what = backing.to_string();
    match &backing.0 {
        Kind::SysvKey(_) | Kind::SysvPath(..) => {
            let key = sysv::key(&backing.0)?;
            let id = os::ShmId::open(key).map_err(|e| os_error(e, &what))?;
            sysv::attach(id, &what)
        }
        Kind::SysvId(raw) => sysv::attach(os::ShmId::from_raw(*raw), &what),
        Kind::SysvPrivate => Err(OpenError::InvalidConfig {
            reason: "an IPC_PRIVATE segment is opened by its id: use Backing::sysv_id".into(),
        }),
        Kind::File(path) => file::open(path, &what),
        Kind::Anonymous => Err(OpenError::InvalidConfig {
            reason: "anonymous memory cannot be opened; create a Channel before fork and take endpoints from it".into(),
        }),
        Kind::Region { addr, len } => anon::region(*addr, *len),
        Kind::Memfd(_) => Err(OpenError::InvalidConfig {
            reason: format!(
                "{what} is a new memfd, for creating; a peer opens the channel through the Backing that Backing::receive returns"
            ),
        }),
        Kind::MemfdFd(r) => memfd::open(r, &what),
    }
}
