//! SysV semaphore sets: `semget`, `semop`, `semtimedop`, `semctl(SETVAL | GETVAL | GETNCNT |
//! GETZCNT | GETPID | IPC_STAT | IPC_SET | IPC_RMID)`.
//!
//! A set holds `nsems` counters, each in `0..=`[`SEMVMX`]. [`SemSet::op`] applies a list of
//! [`SemOp`]s atomically: all of them or none, blocking until all can proceed (unless
//! [`SemFlags::NOWAIT`]). A positive `op` adds (a "post"), a negative one waits until it can
//! subtract, zero waits until the value is zero.
//!
//! Removing a set (`IPC_RMID`) wakes every process blocked in it with `EIDRM`, reported as
//! [`ErrorKind::Removed`]; later calls on the id get `EINVAL`, also reported as `Removed`.
//!
//! [`SemFlags::UNDO`] makes the kernel revert the operation when the process exits; do not use
//! it on posts that hand a token to another process (the undo would take it back).
//!
//! ```
//! use std::time::Duration;
//! use shmchan_os::{Key, Mode, OwnedSemSet, SemFlags, SemOp};
//!
//! let set = OwnedSemSet::create(Key::PRIVATE, 1, Mode::default())?;
//! set.op(&[SemOp::post(0)])?;
//! assert_eq!(set.get_val(0)?, 1);
//! assert!(set.timed_op(&[SemOp::wait(0)], Duration::from_millis(10))?); // took it
//! assert!(!set.timed_op(&[SemOp::wait(0)], Duration::from_millis(10))?); // timed out
//! assert!(!set.op(&[SemOp::wait(0).with_flags(SemFlags::NOWAIT)])?); // would block
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::time::Duration;

use bitflags::bitflags;
use nix::errno::Errno;

use crate::error::{check, limit, Error, ErrorKind, Result};
use crate::key::{gone, removed_or, Key, Mode};
use crate::limits;
use crate::retry::{deadline_after, retry_eintr, timespec_of};

/// The largest value of a SysV semaphore on Linux (`SEMVMX`, fixed, not a sysctl).
pub const SEMVMX: i32 = 32767;

/// The largest value a semaphore of a [`SemSet`] can hold: [`SEMVMX`].
///
/// A post that would go past it fails with `ERANGE` ([`ErrorKind::LimitReached`]).
pub const fn max_val() -> i32 {
    SEMVMX
}

// glibc's `semtimedop` (libc does not bind it for glibc targets).
unsafe extern "C" {
    fn semtimedop(
        semid: libc::c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> libc::c_int;
}

/// The fourth argument of `semctl` (`union semun`, which the caller must define).
#[repr(C)]
#[derive(Clone, Copy)]
union Semun {
    val: libc::c_int,
    buf: *mut libc::semid_ds,
}

bitflags! {
    /// Flags of one [`SemOp`] (`sem_flg`).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct SemFlags: i16 {
        /// `IPC_NOWAIT`: fail instead of blocking ([`SemSet::op`] returns `Ok(false)`).
        const NOWAIT = libc::IPC_NOWAIT as i16;
        /// `SEM_UNDO`: the kernel reverts this operation when the process exits.
        const UNDO = libc::SEM_UNDO as i16;
    }
}

/// One operation of a [`SemSet::op`] call (`struct sembuf`).
///
/// ```
/// use shmchan_os::{SemFlags, SemOp};
///
/// let take_two = SemOp { num: 0, op: -2, flags: SemFlags::NOWAIT };
/// assert_eq!(SemOp::wait(0).with_flags(SemFlags::NOWAIT).op, -1);
/// assert_eq!(take_two.num, 0);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SemOp {
    /// Index of the semaphore in the set.
    pub num: u16,
    /// `> 0` adds, `< 0` waits until it can subtract, `0` waits for zero.
    pub op: i16,
    /// `NOWAIT`, `UNDO`.
    pub flags: SemFlags,
}

impl SemOp {
    /// `+1` on semaphore `num`.
    pub const fn post(num: u16) -> SemOp {
        SemOp {
            num,
            op: 1,
            flags: SemFlags::empty(),
        }
    }

    /// `-1` on semaphore `num` (waits for a post).
    pub const fn wait(num: u16) -> SemOp {
        SemOp {
            num,
            op: -1,
            flags: SemFlags::empty(),
        }
    }

    /// The same operation with `flags`.
    pub const fn with_flags(self, flags: SemFlags) -> SemOp {
        SemOp { flags, ..self }
    }

    fn sembuf(self) -> libc::sembuf {
        libc::sembuf {
            sem_num: self.num,
            sem_op: self.op,
            sem_flg: self.flags.bits(),
        }
    }
}

/// `IPC_STAT` of a semaphore set.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SemStat {
    /// The key it was created with.
    pub key: Key,
    /// Number of semaphores in the set.
    pub nsems: u64,
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
    /// Last `semop` time (seconds since the epoch, 0 if never).
    pub otime: i64,
    /// Last change time (seconds since the epoch).
    pub ctime: i64,
}

/// The id of a SysV semaphore set (`semid`).
///
/// A plain `Copy` id, valid in every process until the set is removed; own it with
/// [`OwnedSemSet`] to remove it on drop.
///
/// ```
/// use shmchan_os::{Key, Mode, OwnedSemSet, SemOp, SemSet};
///
/// // Two semaphores: one per direction of a channel.
/// let owned = OwnedSemSet::create(Key::PRIVATE, 2, Mode::default())?;
/// let set: SemSet = owned.id(); // Copy: hand it to threads, or its raw id to processes
/// set.op(&[SemOp::post(1)])?;
/// assert_eq!((set.get_val(0)?, set.get_val(1)?), (0, 1));
/// set.op(&[SemOp::wait(1)])?;
/// assert_eq!(set.get_ncnt(1)?, 0);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SemSet(i32);

impl SemSet {
    /// `semget(key, nsems, IPC_CREAT | IPC_EXCL | mode)`: a new set, every value 0.
    ///
    /// [`AlreadyExists`](ErrorKind::AlreadyExists) when the key is taken;
    /// [`LimitReached`](ErrorKind::LimitReached) when `semmni`/`semmns` are exhausted or `nsems`
    /// is over `semmsl` (the error names the limit and its sysctl).
    pub fn create(key: Key, nsems: u16, mode: Mode) -> Result<SemSet> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode.c_int();
        // SAFETY: semget takes no pointers.
        let id = check(unsafe { libc::semget(key.raw(), nsems.into(), flags) })
            .map_err(|e| semget_error(key, Some((nsems, mode)), e))?;
        Ok(SemSet(id))
    }

    /// `semget(key, 0, 0)`: the existing set with this key.
    pub fn open(key: Key) -> Result<SemSet> {
        // SAFETY: semget takes no pointers.
        let id = check(unsafe { libc::semget(key.raw(), 0, 0) })
            .map_err(|e| semget_error(key, None, e))?;
        Ok(SemSet(id))
    }

    /// The set with this id (nothing is checked until it is used).
    pub const fn from_raw(id: i32) -> SemSet {
        SemSet(id)
    }

    /// The `semid`.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The largest value a semaphore can hold ([`SEMVMX`]).
    pub const fn max_val() -> i32 {
        SEMVMX
    }

    /// `semctl(num, cmd, arg)`, with errors classified.
    fn ctl(self, num: u16, cmd: libc::c_int, name: &str, arg: Semun) -> Result<libc::c_int> {
        // SAFETY: `arg` is the union semctl expects; for the commands used here its pointer
        // member (IPC_STAT) points to a live, writable semid_ds owned by the caller.
        check(unsafe { libc::semctl(self.0, num.into(), cmd, arg) }).map_err(|e| {
            let mut args = format!("semid={}, semnum={num}, cmd={name}", self.0);
            if cmd == libc::SETVAL {
                // SAFETY: SETVAL is always called with the `val` member.
                let _ = write!(args, ", val={}", unsafe { arg.val });
            }
            let err = Error::new("semctl", args, e);
            match e {
                Errno::ERANGE => err
                    .with_kind(ErrorKind::InvalidInput)
                    .with_hint(format!("value must be in 0..={SEMVMX} (SEMVMX)")),
                Errno::EINVAL => {
                    let err = removed_or(err, || self.ipc_stat().is_ok());
                    if err.kind() == ErrorKind::InvalidInput {
                        err.with_hint("semaphore number out of range for this set")
                    } else {
                        err
                    }
                }
                _ => err,
            }
        })
    }

    /// `semctl(SETVAL)`: sets semaphore `num` to `value` (`0..=SEMVMX`), waking waiters.
    pub fn set_val(self, num: u16, value: i32) -> Result<()> {
        self.ctl(num, libc::SETVAL, "SETVAL", Semun { val: value })?;
        Ok(())
    }

    /// `semctl(GETVAL)`: the value of semaphore `num`.
    pub fn get_val(self, num: u16) -> Result<i32> {
        self.ctl(num, libc::GETVAL, "GETVAL", Semun { val: 0 })
    }

    /// `semctl(GETNCNT)`: how many processes (threads) wait for semaphore `num` to increase.
    pub fn get_ncnt(self, num: u16) -> Result<u32> {
        let n = self.ctl(num, libc::GETNCNT, "GETNCNT", Semun { val: 0 })?;
        Ok(n.unsigned_abs())
    }

    /// `semctl(GETZCNT)`: how many wait for semaphore `num` to become zero.
    pub fn get_zcnt(self, num: u16) -> Result<u32> {
        let n = self.ctl(num, libc::GETZCNT, "GETZCNT", Semun { val: 0 })?;
        Ok(n.unsigned_abs())
    }

    /// `semctl(GETPID)`: the pid of the last process that operated on semaphore `num`.
    pub fn get_pid(self, num: u16) -> Result<i32> {
        self.ctl(num, libc::GETPID, "GETPID", Semun { val: 0 })
    }

    fn ipc_stat(self) -> std::result::Result<libc::semid_ds, Errno> {
        let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
        let arg = Semun {
            buf: ds.as_mut_ptr(),
        };
        // SAFETY: IPC_STAT writes a semid_ds through `arg.buf`, which points to `ds`.
        check(unsafe { libc::semctl(self.0, 0, libc::IPC_STAT, arg) })?;
        // SAFETY: zero is a valid semid_ds (plain integers) and IPC_STAT filled it in.
        Ok(unsafe { ds.assume_init() })
    }

    /// `semctl(IPC_STAT)`. [`Removed`](ErrorKind::Removed) once the set is gone.
    // The kernel's counters are `unsigned long` (u32 on 32-bit targets): widen explicitly.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat(self) -> Result<SemStat> {
        let ds = self.ipc_stat().map_err(|e| {
            let err = Error::new("semctl", format!("semid={}, cmd=IPC_STAT", self.0), e);
            if gone(e) {
                err.with_kind(ErrorKind::Removed)
                    .with_hint("no such id: the set was removed (or never existed)")
            } else {
                err
            }
        })?;
        let perm = &ds.sem_perm;
        Ok(SemStat {
            key: Key::new(perm.__key),
            nsems: ds.sem_nsems as u64,
            mode: Mode::new(perm.mode.into()),
            uid: perm.uid,
            gid: perm.gid,
            cuid: perm.cuid,
            cgid: perm.cgid,
            otime: ds.sem_otime,
            ctime: ds.sem_ctime,
        })
    }

    /// `semctl(IPC_SET)` of `sem_perm.uid` and `sem_perm.gid`: gives the set to another owner
    /// (its creator, `cuid`, stays). Allowed to the owner, the creator and privileged
    /// processes.
    ///
    /// ```
    /// use shmchan_os::{Key, Mode, OwnedSemSet};
    ///
    /// let set = OwnedSemSet::create(Key::PRIVATE, 1, Mode::default())?;
    /// let st = set.stat()?;
    /// set.set_owner(st.uid, st.gid)?; // to whom it belongs already: always allowed
    /// assert_eq!(set.stat()?.cuid, st.cuid);
    /// # Ok::<(), shmchan_os::Error>(())
    /// ```
    pub fn set_owner(self, uid: u32, gid: u32) -> Result<()> {
        let args = format!("semid={}, cmd=IPC_SET, uid={uid}, gid={gid}", self.0);
        let mut ds = self
            .ipc_stat()
            .map_err(|e| Error::new("semctl", args.clone(), e))?;
        ds.sem_perm.uid = uid;
        ds.sem_perm.gid = gid;
        let arg = Semun { buf: &mut ds };
        // SAFETY: IPC_SET reads a semid_ds through `arg.buf`, which points to `ds`, a valid
        // semid_ds from IPC_STAT that outlives the call.
        check(unsafe { libc::semctl(self.0, 0, libc::IPC_SET, arg) })
            .map_err(|e| removed_or(Error::new("semctl", args, e), || self.ipc_stat().is_ok()))?;
        Ok(())
    }

    /// `semctl(IPC_RMID)`: removes the set now; blocked waiters fail with
    /// [`Removed`](ErrorKind::Removed).
    pub fn remove(self) -> Result<()> {
        let arg = Semun { val: 0 };
        // SAFETY: IPC_RMID ignores the argument.
        check(unsafe { libc::semctl(self.0, 0, libc::IPC_RMID, arg) }).map_err(|e| {
            removed_or(
                Error::new("semctl", format!("semid={}, cmd=IPC_RMID", self.0), e),
                || self.ipc_stat().is_ok(),
            )
        })?;
        Ok(())
    }

    /// `semop`: applies `ops` atomically, blocking until all can proceed.
    ///
    /// Returns `Ok(true)` when applied, `Ok(false)` when an operation with
    /// [`SemFlags::NOWAIT`] would have blocked. `EINTR` is retried. A set removed while (or
    /// before) waiting is [`Removed`](ErrorKind::Removed).
    pub fn op(self, ops: &[SemOp]) -> Result<bool> {
        self.semop(ops, None)
    }

    /// `semtimedop`: like [`op`](SemSet::op), giving up after `timeout`.
    ///
    /// Returns `Ok(false)` on timeout (or when a `NOWAIT` operation would block). After
    /// `EINTR` it waits again for the time that is left.
    pub fn timed_op(self, ops: &[SemOp], timeout: Duration) -> Result<bool> {
        match deadline_after(timeout) {
            Some(deadline) => self.semop(ops, Some(deadline)),
            None => self.semop(ops, None),
        }
    }

    fn semop(self, ops: &[SemOp], deadline: Option<std::time::Instant>) -> Result<bool> {
        // A stack copy for the common short lists: no allocation, so a forked child may call it.
        const ZERO: libc::sembuf = libc::sembuf {
            sem_num: 0,
            sem_op: 0,
            sem_flg: 0,
        };
        let mut small = [ZERO; 8];
        let mut large = Vec::new();
        let bufs: &mut [libc::sembuf] = if ops.len() <= small.len() {
            &mut small[..ops.len()]
        } else {
            large.resize(ops.len(), ZERO);
            &mut large
        };
        for (b, o) in bufs.iter_mut().zip(ops) {
            *b = o.sembuf();
        }
        let done = retry_eintr(deadline, |remaining| {
            let ret = match remaining {
                // SAFETY: `bufs` is a valid array of `bufs.len()` sembufs, which the kernel
                // only reads.
                None => unsafe { libc::semop(self.0, bufs.as_mut_ptr(), bufs.len()) },
                Some(left) => {
                    let ts = timespec_of(left);
                    // SAFETY: as above; `ts` is a valid timespec that outlives the call.
                    unsafe { semtimedop(self.0, bufs.as_mut_ptr(), bufs.len(), &ts) }
                }
            };
            match check(ret) {
                Ok(_) => Ok(Some(())),
                Err(Errno::EAGAIN) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.semop_error(ops, deadline.is_some(), e))?;
        Ok(done.is_some())
    }

    fn semop_error(self, ops: &[SemOp], timed: bool, errno: Errno) -> Error {
        let mut args = format!("semid={}, ops=[", self.0);
        for (i, o) in ops.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(args, "{sep}{}:{:+}", o.num, o.op);
            if o.flags.contains(SemFlags::NOWAIT) {
                args.push_str(":IPC_NOWAIT");
            }
            if o.flags.contains(SemFlags::UNDO) {
                args.push_str(":SEM_UNDO");
            }
        }
        args.push(']');
        let err = Error::new(if timed { "semtimedop" } else { "semop" }, args, errno);
        match errno {
            Errno::EIDRM => err.with_hint("the set was removed while waiting"),
            Errno::ERANGE => err.with_hint(format!("a value would exceed SEMVMX ({SEMVMX})")),
            Errno::E2BIG => err.with_kind(ErrorKind::LimitReached).with_hint(format!(
                "{} operations exceed {}",
                ops.len(),
                limit(
                    "semopm",
                    limits::sem().map(|l| l.semopm),
                    "kernel.sem (3rd field)"
                )
            )),
            Errno::EFBIG => err.with_hint("semaphore number out of range for this set"),
            Errno::EINVAL if ops.is_empty() => err.with_hint("no operations"),
            Errno::EINVAL => removed_or(err, || self.ipc_stat().is_ok()),
            _ => err,
        }
    }
}

fn semget_error(key: Key, create: Option<(u16, Mode)>, errno: Errno) -> Error {
    let args = match create {
        Some((nsems, mode)) => format!("key={key}, nsems={nsems}, mode={mode}"),
        None => format!("key={key}"),
    };
    let err = Error::new("semget", args, errno);
    let sem = limits::sem();
    match errno {
        Errno::ENOSPC => err.with_hint(format!(
            "all {} are in use, or the semaphores would exceed {}",
            limit(
                "semmni sets",
                sem.map(|l| l.semmni),
                "kernel.sem (4th field)"
            ),
            limit(
                "semmns semaphores",
                sem.map(|l| l.semmns),
                "kernel.sem (2nd field)"
            ),
        )),
        Errno::EINVAL if create.is_some() => {
            let nsems = create.map_or(0, |(n, _)| n);
            if nsems == 0 {
                err.with_hint("nsems must be at least 1")
            } else {
                err.with_kind(ErrorKind::LimitReached).with_hint(format!(
                    "{nsems} semaphores exceed {}",
                    limit("semmsl", sem.map(|l| l.semmsl), "kernel.sem (1st field)")
                ))
            }
        }
        Errno::ENOENT => err.with_hint("no semaphore set has this key"),
        _ => err,
    }
}

/// A semaphore set that is removed (`IPC_RMID`) when dropped, unless given up with
/// [`into_inner`](OwnedSemSet::into_inner).
#[derive(Debug)]
pub struct OwnedSemSet(SemSet);

impl OwnedSemSet {
    /// Takes ownership of `set`: it is removed when this guard is dropped.
    pub fn new(set: SemSet) -> OwnedSemSet {
        OwnedSemSet(set)
    }

    /// [`SemSet::create`], owned.
    pub fn create(key: Key, nsems: u16, mode: Mode) -> Result<OwnedSemSet> {
        SemSet::create(key, nsems, mode).map(OwnedSemSet)
    }

    /// The set (still owned by this guard).
    pub fn id(&self) -> SemSet {
        self.0
    }

    /// Gives up ownership: the set is no longer removed on drop.
    pub fn into_inner(self) -> SemSet {
        let set = self.0;
        std::mem::forget(self);
        set
    }

    /// Same as [`into_inner`](OwnedSemSet::into_inner).
    pub fn leak(self) -> SemSet {
        self.into_inner()
    }
}

impl Deref for OwnedSemSet {
    type Target = SemSet;
    fn deref(&self) -> &SemSet {
        &self.0
    }
}

impl Drop for OwnedSemSet {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}
