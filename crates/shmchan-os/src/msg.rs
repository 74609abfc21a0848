//! SysV message queues: `msgget`, `msgsnd`, `msgrcv`, `msgctl(IPC_STAT | IPC_SET | IPC_RMID)`.
//!
//! A queue holds typed messages: each carries an `mtype >= 1` and up to `msgmax` bytes
//! (`sysctl kernel.msgmax`), and the queue holds up to `qbytes` bytes in total (default
//! `kernel.msgmnb`). A receiver takes the first message of a given type, of any type, or of the
//! lowest type up to a bound ([`MsgSelect`]), which is what makes targeted wake-ups possible.
//!
//! SysV has no timed `msgrcv`; this crate does not fake one with signals. Use
//! [`MsgFlags::NOWAIT`] and your own back-off, or a POSIX queue ([`crate::PosixMq`]).
//!
//! ```
//! use shmchan_os::{Key, Mode, MsgFlags, MsgSelect, OwnedMsgQueue};
//!
//! let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default())?;
//! assert!(q.send(2, b"two", MsgFlags::empty())?);
//! assert!(q.send(1, b"one", MsgFlags::empty())?);
//! let mut buf = [0u8; 16];
//! assert_eq!(q.recv(&mut buf, MsgSelect::Type(1), MsgFlags::empty())?, Some((1, 3)));
//! assert_eq!(&buf[..3], b"one");
//! assert_eq!(q.recv(&mut buf, MsgSelect::Any, MsgFlags::empty())?, Some((2, 3)));
//! assert_eq!(q.recv(&mut buf, MsgSelect::Any, MsgFlags::NOWAIT)?, None);
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::mem::{size_of, MaybeUninit};
use std::ops::Deref;

use bitflags::bitflags;
use nix::errno::Errno;

use crate::error::{check, limit, Error, ErrorKind, Result};
use crate::key::{gone, removed_or, Key, Mode};
use crate::limits;
use crate::retry::retry_eintr_untimed;

bitflags! {
    /// Flags of [`MsgQueue::send`] and [`MsgQueue::recv`].
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct MsgFlags: libc::c_int {
        /// `IPC_NOWAIT`: do not block; `send` returns `Ok(false)` when the queue is full and
        /// `recv` returns `Ok(None)` when no message matches.
        const NOWAIT = libc::IPC_NOWAIT;
        /// `MSG_NOERROR` (`recv` only): truncate a message longer than the buffer instead of
        /// failing with [`TooLarge`](ErrorKind::TooLarge).
        const NOERROR = libc::MSG_NOERROR;
    }
}

/// `IPC_NOWAIT|MSG_NOERROR`, or `0`: flags as C spells them, for error messages.
fn c_flags(flags: MsgFlags) -> String {
    let mut names: Vec<&str> = Vec::new();
    if flags.contains(MsgFlags::NOWAIT) {
        names.push("IPC_NOWAIT");
    }
    if flags.contains(MsgFlags::NOERROR) {
        names.push("MSG_NOERROR");
    }
    if names.is_empty() {
        "0".to_owned()
    } else {
        names.join("|")
    }
}

/// Which message [`MsgQueue::recv`] takes (`msgtyp`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MsgSelect {
    /// The first message of any type (`msgtyp = 0`).
    Any,
    /// The first message of exactly this type (`msgtyp > 0`).
    Type(i64),
    /// The first message of the lowest type `<= t` (`msgtyp = -t`).
    UpTo(i64),
    /// The first message of any type except this one (`MSG_EXCEPT`).
    Except(i64),
}

/// `IPC_STAT` of a message queue.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MsgStat {
    /// The key it was created with.
    pub key: Key,
    /// Number of messages in the queue.
    pub qnum: u64,
    /// Capacity in bytes (of message text).
    pub qbytes: u64,
    /// Bytes of message text in the queue now.
    pub cbytes: u64,
    /// Pid of the last `msgsnd`.
    pub lspid: i32,
    /// Pid of the last `msgrcv`.
    pub lrpid: i32,
    /// Permission bits.
    pub mode: Mode,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's gid.
    pub gid: u32,
    /// Creator's uid.
    pub cuid: u32,
    /// Creator's gid.
    pub cgid: u32,
    /// Last `msgsnd` time (seconds since the epoch, 0 if never).
    pub stime: i64,
    /// Last `msgrcv` time (seconds since the epoch, 0 if never).
    pub rtime: i64,
    /// Last change time (seconds since the epoch).
    pub ctime: i64,
}

/// Room for `struct msgbuf { long mtype; char mtext[]; }`: on the stack for short messages (so
/// a forked child can send and receive without allocating), on the heap otherwise.
struct MsgBuf {
    small: [libc::c_long; 64],
    large: Vec<libc::c_long>,
    text_len: usize,
}

const LONG: usize = size_of::<libc::c_long>();

impl MsgBuf {
    fn new(text_len: usize) -> MsgBuf {
        let words = 1 + text_len.div_ceil(LONG);
        let mut buf = MsgBuf {
            small: [0; 64],
            large: Vec::new(),
            text_len,
        };
        if words > buf.small.len() {
            buf.large = vec![0; words];
        }
        buf
    }

    fn words(&mut self) -> &mut [libc::c_long] {
        if self.large.is_empty() {
            &mut self.small
        } else {
            &mut self.large
        }
    }

    fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.words().as_mut_ptr().cast()
    }

    fn mtype(&mut self) -> &mut libc::c_long {
        &mut self.words()[0]
    }

    fn text(&mut self) -> &mut [u8] {
        let len = self.text_len;
        let words = &mut self.words()[1..];
        // SAFETY: `words` is a live, exclusively borrowed run of c_longs at least `len` bytes
        // long (`new` sized it); u8 has no alignment or validity requirements.
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
    }
}

/// The id of a SysV message queue (`msqid`).
///
/// A plain `Copy` id, valid in every process until the queue is removed; own it with
/// [`OwnedMsgQueue`] to remove it on drop.
///
/// ```
/// use shmchan_os::{Key, Mode, MsgFlags, OwnedMsgQueue};
///
/// let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default())?;
/// q.send(1, &[0u8; 100], MsgFlags::empty())?;
/// let st = q.stat()?;
/// assert_eq!((st.qnum, st.cbytes), (1, 100));
/// assert_eq!(st.lspid, std::process::id() as i32);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MsgQueue(i32);

impl MsgQueue {
    /// `msgget(key, IPC_CREAT | IPC_EXCL | mode)`: a new, empty queue.
    ///
    /// [`AlreadyExists`](ErrorKind::AlreadyExists) when the key is taken;
    /// [`LimitReached`](ErrorKind::LimitReached) when `msgmni` queues exist.
    pub fn create(key: Key, mode: Mode) -> Result<MsgQueue> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode.c_int();
        // SAFETY: msgget takes no pointers.
        let id = check(unsafe { libc::msgget(key.raw(), flags) })
            .map_err(|e| msgget_error(key, Some(mode), e))?;
        Ok(MsgQueue(id))
    }

    /// `msgget(key, 0)`: the existing queue with this key.
    pub fn open(key: Key) -> Result<MsgQueue> {
        // SAFETY: msgget takes no pointers.
        let id =
            check(unsafe { libc::msgget(key.raw(), 0) }).map_err(|e| msgget_error(key, None, e))?;
        Ok(MsgQueue(id))
    }

    /// The queue with this id (nothing is checked until it is used).
    pub const fn from_raw(id: i32) -> MsgQueue {
        MsgQueue(id)
    }

    /// The `msqid`.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// `msgsnd`: queues `data` with type `mtype` (`>= 1`), blocking while the queue is full.
    ///
    /// Returns `Ok(false)` when the queue is full and `flags` has [`MsgFlags::NOWAIT`].
    /// A message over `msgmax` is [`TooLarge`](ErrorKind::TooLarge) (the error names the limit);
    /// a removed queue is [`Removed`](ErrorKind::Removed). `EINTR` is retried.
    pub fn send(self, mtype: i64, data: &[u8], flags: MsgFlags) -> Result<bool> {
        let args = || {
            format!(
                "msqid={}, mtype={mtype}, len={}, flags={}",
                self.0,
                data.len(),
                c_flags(flags)
            )
        };
        let Some(c_mtype) = libc::c_long::try_from(mtype).ok().filter(|t| *t >= 1) else {
            return Err(Error::new("msgsnd", args(), Errno::EINVAL)
                .with_hint("mtype must be at least 1 (and fit a C long)"));
        };
        let mut buf = MsgBuf::new(data.len());
        *buf.mtype() = c_mtype;
        buf.text().copy_from_slice(data);
        let ptr = buf.as_mut_ptr();
        let sent = retry_eintr_untimed(|| {
            // SAFETY: `ptr` points to an mtype followed by `data.len()` bytes of text (MsgBuf);
            // the kernel only reads it.
            match check(unsafe { libc::msgsnd(self.0, ptr, data.len(), flags.bits()) }) {
                Ok(_) => Ok(true),
                Err(Errno::EAGAIN) if flags.contains(MsgFlags::NOWAIT) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| {
            let err = Error::new("msgsnd", args(), e);
            match e {
                Errno::EINVAL if limits::msgmax().is_some_and(|m| data.len() as u64 > m) => {
                    err.with_kind(ErrorKind::TooLarge).with_hint(format!(
                        "message of {} bytes exceeds {}",
                        data.len(),
                        limit("msgmax", limits::msgmax(), "kernel.msgmax")
                    ))
                }
                Errno::EIDRM => err.with_hint("the queue was removed while waiting"),
                Errno::EINVAL => removed_or(err, || self.ipc_stat().is_ok()),
                _ => err,
            }
        })?;
        Ok(sent)
    }

    /// `msgrcv`: takes the first message that `select` matches into `buf`, blocking until there
    /// is one.
    ///
    /// Returns `Some((mtype, len))`, or `None` when `flags` has [`MsgFlags::NOWAIT`] and no
    /// message matches. A matching message longer than `buf` stays queued and is
    /// [`TooLarge`](ErrorKind::TooLarge), unless `flags` has [`MsgFlags::NOERROR`] (then it is
    /// truncated). A queue removed while waiting is [`Removed`](ErrorKind::Removed). `EINTR` is
    /// retried.
    pub fn recv(
        self,
        buf: &mut [u8],
        select: MsgSelect,
        flags: MsgFlags,
    ) -> Result<Option<(i64, usize)>> {
        let args = || {
            format!(
                "msqid={}, len={}, select={select:?}, flags={}",
                self.0,
                buf.len(),
                c_flags(flags)
            )
        };
        let (msgtyp, extra) = match select {
            MsgSelect::Any => (Some(0), 0),
            MsgSelect::Type(t) => (libc::c_long::try_from(t).ok().filter(|t| *t > 0), 0),
            MsgSelect::UpTo(t) => (
                libc::c_long::try_from(t)
                    .ok()
                    .filter(|t| *t > 0)
                    .map(|t| -t),
                0,
            ),
            MsgSelect::Except(t) => (
                libc::c_long::try_from(t).ok().filter(|t| *t > 0),
                libc::MSG_EXCEPT,
            ),
        };
        let Some(msgtyp) = msgtyp else {
            return Err(Error::new("msgrcv", args(), Errno::EINVAL)
                .with_hint("a message type must be at least 1 (and fit a C long)"));
        };
        let mut msg = MsgBuf::new(buf.len());
        let ptr = msg.as_mut_ptr();
        let cap = buf.len();
        let got = retry_eintr_untimed(|| {
            // SAFETY: `ptr` points to an mtype followed by `cap` writable bytes (MsgBuf); the
            // kernel writes at most that much.
            let ret = unsafe { libc::msgrcv(self.0, ptr, cap, msgtyp, flags.bits() | extra) };
            match check(ret) {
                Ok(n) => Ok(Some(n as usize)),
                Err(Errno::ENOMSG) if flags.contains(MsgFlags::NOWAIT) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| {
            let err = Error::new("msgrcv", args(), e);
            match e {
                Errno::E2BIG => err.with_hint(format!(
                    "the message is longer than the {cap}-byte buffer (it stays queued; \
                     MsgFlags::NOERROR truncates)"
                )),
                Errno::EIDRM => err.with_hint("the queue was removed while waiting"),
                Errno::EINVAL => removed_or(err, || self.ipc_stat().is_ok()),
                _ => err,
            }
        })?;
        let Some(len) = got else { return Ok(None) };
        #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
        let mtype = i64::from(*msg.mtype());
        buf[..len].copy_from_slice(&msg.text()[..len]);
        Ok(Some((mtype, len)))
    }

    fn ipc_stat(self) -> std::result::Result<libc::msqid_ds, Errno> {
        let mut ds = MaybeUninit::<libc::msqid_ds>::zeroed();
        // SAFETY: `ds` is a writable msqid_ds; IPC_STAT writes only into it.
        check(unsafe { libc::msgctl(self.0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
        // SAFETY: zero is a valid msqid_ds (plain integers) and IPC_STAT filled it in.
        Ok(unsafe { ds.assume_init() })
    }

    /// `msgctl(IPC_STAT)`. [`Removed`](ErrorKind::Removed) once the queue is gone.
    // The kernel's counters are `unsigned long` (u32 on 32-bit targets): widen explicitly.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat(self) -> Result<MsgStat> {
        let ds = self
            .ipc_stat()
            .map_err(|e| self.stat_error("IPC_STAT", e))?;
        let perm = &ds.msg_perm;
        Ok(MsgStat {
            key: Key::new(perm.__key),
            qnum: ds.msg_qnum as u64,
            qbytes: ds.msg_qbytes as u64,
            cbytes: ds.__msg_cbytes as u64,
            lspid: ds.msg_lspid,
            lrpid: ds.msg_lrpid,
            mode: Mode::new(perm.mode.into()),
            uid: perm.uid,
            gid: perm.gid,
            cuid: perm.cuid,
            cgid: perm.cgid,
            stime: ds.msg_stime,
            rtime: ds.msg_rtime,
            ctime: ds.msg_ctime,
        })
    }

    fn stat_error(self, cmd: &str, e: Errno) -> Error {
        let err = Error::new("msgctl", format!("msqid={}, cmd={cmd}", self.0), e);
        if gone(e) {
            err.with_kind(ErrorKind::Removed)
                .with_hint("no such id: the queue was removed (or never existed)")
        } else {
            err
        }
    }

    /// `msgctl(IPC_SET)` of `msg_qbytes`: the queue's capacity in bytes. Lowering is always
    /// allowed to the owner; raising it above `msgmnb` needs `CAP_SYS_RESOURCE`.
    pub fn set_qbytes(self, qbytes: u64) -> Result<()> {
        let mut ds = self
            .ipc_stat()
            .map_err(|e| self.stat_error("IPC_STAT", e))?;
        ds.msg_qbytes = qbytes as libc::msglen_t;
        // SAFETY: `ds` is a valid msqid_ds from IPC_STAT; IPC_SET only reads it.
        check(unsafe { libc::msgctl(self.0, libc::IPC_SET, &mut ds) }).map_err(|e| {
            let err = Error::new(
                "msgctl",
                format!("msqid={}, cmd=IPC_SET, qbytes={qbytes}", self.0),
                e,
            );
            match e {
                Errno::EPERM => err.with_hint(format!(
                    "raising qbytes above {} needs CAP_SYS_RESOURCE",
                    limit("msgmnb", limits::msgmnb(), "kernel.msgmnb")
                )),
                _ => removed_or(err, || self.ipc_stat().is_ok()),
            }
        })?;
        Ok(())
    }

    /// `msgctl(IPC_SET)` of `msg_perm.uid` and `msg_perm.gid`: gives the queue to another owner
    /// (its creator, `cuid`, stays). Allowed to the owner, the creator and privileged
    /// processes.
    ///
    /// ```
    /// use shmchan_os::{Key, Mode, OwnedMsgQueue};
    ///
    /// let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default())?;
    /// let st = q.stat()?;
    /// q.set_owner(st.uid, st.gid)?; // to whom it belongs already: always allowed
    /// assert_eq!(q.stat()?.cuid, st.cuid);
    /// # Ok::<(), shmchan_os::Error>(())
    /// ```
    pub fn set_owner(self, uid: u32, gid: u32) -> Result<()> {
        let args = || format!("msqid={}, cmd=IPC_SET, uid={uid}, gid={gid}", self.0);
        let mut ds = self
            .ipc_stat()
            .map_err(|e| self.stat_error("IPC_STAT", e))?;
        ds.msg_perm.uid = uid;
        ds.msg_perm.gid = gid;
        // SAFETY: `ds` is a valid msqid_ds from IPC_STAT; IPC_SET only reads it.
        check(unsafe { libc::msgctl(self.0, libc::IPC_SET, &mut ds) })
            .map_err(|e| removed_or(Error::new("msgctl", args(), e), || self.ipc_stat().is_ok()))?;
        Ok(())
    }

    /// `msgctl(IPC_RMID)`: removes the queue and its messages now; blocked senders and
    /// receivers fail with [`Removed`](ErrorKind::Removed).
    pub fn remove(self) -> Result<()> {
        // SAFETY: IPC_RMID ignores the buffer argument.
        check(unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) }).map_err(
            |e| {
                removed_or(
                    Error::new("msgctl", format!("msqid={}, cmd=IPC_RMID", self.0), e),
                    || self.ipc_stat().is_ok(),
                )
            },
        )?;
        Ok(())
    }
}

fn msgget_error(key: Key, create: Option<Mode>, errno: Errno) -> Error {
    let args = match create {
        Some(mode) => format!("key={key}, mode={mode}"),
        None => format!("key={key}"),
    };
    let err = Error::new("msgget", args, errno);
    match errno {
        Errno::ENOSPC => err.with_hint(format!(
            "all {} are in use",
            limit("msgmni queues", limits::msgmni(), "kernel.msgmni")
        )),
        Errno::ENOENT => err.with_hint("no message queue has this key"),
        _ => err,
    }
}

/// A message queue that is removed (`IPC_RMID`) when dropped, unless given up with
/// [`into_inner`](OwnedMsgQueue::into_inner).
#[derive(Debug)]
pub struct OwnedMsgQueue(MsgQueue);

impl OwnedMsgQueue {
    /// Takes ownership of `queue`: it is removed when this guard is dropped.
    pub fn new(queue: MsgQueue) -> OwnedMsgQueue {
        OwnedMsgQueue(queue)
    }

    /// [`MsgQueue::create`], owned.
    pub fn create(key: Key, mode: Mode) -> Result<OwnedMsgQueue> {
        MsgQueue::create(key, mode).map(OwnedMsgQueue)
    }

    /// The queue (still owned by this guard).
    pub fn id(&self) -> MsgQueue {
        self.0
    }

    /// Gives up ownership: the queue is no longer removed on drop.
    pub fn into_inner(self) -> MsgQueue {
        let queue = self.0;
        std::mem::forget(self);
        queue
    }

    /// Same as [`into_inner`](OwnedMsgQueue::into_inner).
    pub fn leak(self) -> MsgQueue {
        self.into_inner()
    }
}

impl Deref for OwnedMsgQueue {
    type Target = MsgQueue;
    fn deref(&self) -> &MsgQueue {
        &self.0
    }
}

impl Drop for OwnedMsgQueue {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}
