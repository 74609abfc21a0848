//! Open-file-description locks (`fcntl(F_OFD_SETLK / F_OFD_GETLK)`) and descriptors private
//! to one process.
//!
//! An OFD lock belongs to the *open file description* (what `open` creates; `dup`, `fork` and
//! `SCM_RIGHTS` share it), not to a process or a thread: the kernel drops it when the last
//! descriptor of that description closes, which a dying process does for all of its
//! descriptors whatever its PID namespace. A thread that exits closes nothing. Byte ranges
//! past the end of the file can be locked; locks are advisory and never affect reads, writes
//! or mappings. [`get_lock`] tells whether *another* description holds a lock on a range
//! (the asker's own locks never conflict with it, so ask through a description that holds
//! none).
//!
//! Because `fork` shares descriptions, a lock that must end with its process needs a
//! description nobody else holds: [`PrivateFd`] reopens a file through `/proc/self/fd`
//! (a new description of the same file), closes it in every child forked afterwards, and
//! unlocks before it closes (a child spawned without the fork handlers holds a copy until it
//! execs).
//!
//! ```
//! use shmchan_os::ofd::{self, LockKind, PrivateFd};
//! # let path = std::env::temp_dir().join(format!("shmchan-os-ofd-doc-{}", std::process::id()));
//! let file = std::fs::OpenOptions::new().read(true).write(true).create(true).open(&path)?;
//! let mine = PrivateFd::reopen(&file)?;
//! assert!(ofd::set_lock(mine.fd().unwrap(), LockKind::Write, 1 << 40, 1)?);
//! // Seen through another description (the original one):
//! assert_eq!(ofd::get_lock(&file, 1 << 40, 1)?, Some(LockKind::Write));
//! drop(mine); // closing its last descriptor drops the lock
//! assert_eq!(ofd::get_lock(&file, 1 << 40, 1)?, None);
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::errno::Errno;

use crate::error::{check, Error, ErrorKind, Result};

/// The kind of a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `F_RDLCK`: shared.
    Read,
    /// `F_WRLCK`: exclusive.
    Write,
}

fn flock(kind: libc::c_short, start: u64, len: u64) -> Result<libc::flock> {
    let start = i64::try_from(start).map_err(|_| invalid("start past i64::MAX"))?;
    let len = i64::try_from(len).map_err(|_| invalid("length past i64::MAX"))?;
    // SAFETY: `flock` is plain integers; zero is valid (l_pid must be 0 for OFD locks).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = len;
    Ok(fl)
}

fn invalid(why: &str) -> Error {
    Error::new("fcntl", why.to_string(), Errno::EINVAL).with_kind(ErrorKind::InvalidInput)
}

fn fcntl_lock(fd: BorrowedFd<'_>, cmd: libc::c_int, fl: &mut libc::flock) -> Result<()> {
    let name = if cmd == libc::F_OFD_GETLK {
        "F_OFD_GETLK"
    } else {
        "F_OFD_SETLK"
    };
    // SAFETY: F_OFD_SETLK / F_OFD_GETLK take a pointer to a `flock`, which `fl` is (live and
    // writable for the call).
    check(unsafe { libc::fcntl(fd.as_raw_fd(), cmd, fl as *mut libc::flock) }).map_err(|e| {
        Error::new(
            "fcntl",
            format!(
                "fd={}, cmd={name}, type={}, start={}, len={}",
                fd.as_raw_fd(),
                fl.l_type,
                fl.l_start,
                fl.l_len
            ),
            e,
        )
    })?;
    Ok(())
}

/// `F_OFD_SETLK`: takes a lock on `len` bytes from `start` for `fd`'s open file description,
/// without waiting. `Ok(false)` when another description holds a conflicting lock. A
/// [`LockKind::Write`] lock needs `fd` open for writing, a read lock for reading.
pub fn set_lock(fd: impl AsFd, kind: LockKind, start: u64, len: u64) -> Result<bool> {
    let t = match kind {
        LockKind::Read => libc::F_RDLCK,
        LockKind::Write => libc::F_WRLCK,
    };
    let mut fl = flock(t as libc::c_short, start, len)?;
    match fcntl_lock(fd.as_fd(), libc::F_OFD_SETLK, &mut fl) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.errno(), Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `F_OFD_SETLK` with `F_UNLCK`: drops what `fd`'s description holds on the range (nothing
/// held is not an error).
pub fn unlock(fd: impl AsFd, start: u64, len: u64) -> Result<()> {
    let mut fl = flock(libc::F_UNLCK as libc::c_short, start, len)?;
    fcntl_lock(fd.as_fd(), libc::F_OFD_SETLK, &mut fl)
}

/// `F_OFD_GETLK`: the kind of a lock that another open file description holds on the range
/// (one that would conflict with a write lock of `fd`'s), or `None`. Locks of `fd`'s own
/// description are never reported. Works on any descriptor, whatever it was opened for.
pub fn get_lock(fd: impl AsFd, start: u64, len: u64) -> Result<Option<LockKind>> {
    let mut fl = flock(libc::F_WRLCK as libc::c_short, start, len)?;
    fcntl_lock(fd.as_fd(), libc::F_OFD_GETLK, &mut fl)?;
    Ok(match libc::c_int::from(fl.l_type) {
        libc::F_RDLCK => Some(LockKind::Read),
        libc::F_WRLCK => Some(LockKind::Write),
        _ => None,
    })
}

/// How many [`PrivateFd`]s a process can hold at once.
pub const MAX_PRIVATE_FDS: usize = 4096;

/// The registry of private descriptors: `generation << 32 | fd`, 0 when free. A forked child
/// closes every one and clears them (`atfork_child`).
static REGISTRY: [AtomicU64; MAX_PRIVATE_FDS] = [const { AtomicU64::new(0) }; MAX_PRIVATE_FDS];
/// Held while a descriptor is opened and registered, and by `fork` (prepare to parent/child):
/// a child never inherits a private descriptor that is not registered yet.
static GATE: AtomicBool = AtomicBool::new(false);
static GENERATION: AtomicU64 = AtomicU64::new(1);

fn gate_lock() {
    while GATE
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
}

fn gate_unlock() {
    GATE.store(false, Ordering::Release);
}

extern "C" fn atfork_prepare() {
    gate_lock();
}

extern "C" fn atfork_parent() {
    gate_unlock();
}

extern "C" fn atfork_child() {
    // Only this thread runs in the child: close what the parent's private descriptors became
    // here (async-signal-safe: atomics and close).
    for r in &REGISTRY {
        let w = r.swap(0, Ordering::Relaxed);
        if w != 0 {
            // SAFETY: a registered descriptor, inherited by this child, which nothing else in
            // the child owns (`PrivateFd::drop` in the child finds its entry cleared).
            unsafe { libc::close(w as u32 as i32) };
        }
    }
    gate_unlock();
}

fn install_atfork() -> Result<()> {
    static ONCE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    // SAFETY: the three handlers are `extern "C" fn()` that live for the whole program.
    let rc = *ONCE.get_or_init(|| unsafe {
        libc::pthread_atfork(
            Some(atfork_prepare),
            Some(atfork_parent),
            Some(atfork_child),
        )
    });
    if rc != 0 {
        return Err(Error::new("pthread_atfork", "", Errno::from_raw(rc)));
    }
    Ok(())
}

/// A descriptor of an open file description of its own, held by this process only: reopened
/// through `/proc/self/fd` (so neither `dup`s nor `SCM_RIGHTS` copies of the original share
/// it), `O_CLOEXEC`, and closed in every child `fork`ed while it lives (a `pthread_atfork`
/// handler). What it locks ([`set_lock`]) is therefore released exactly when this value is
/// dropped (which unlocks before it closes: a child spawned meanwhile without the fork
/// handlers, as `posix_spawn` spawns, holds a copy of the description until it execs) or
/// when the process ends, however it ends (a child caught then between its spawn and its
/// `exec` keeps the locks until it execs or exits).
#[derive(Debug)]
pub struct PrivateFd {
    /// Index in the registry, and the word it holds there.
    index: usize,
    word: u64,
    /// The process that opened it: the only one whose drop unlocks through it.
    pid: u32,
}

impl PrivateFd {
    /// Opens a new description of the file `fd` refers to, read-write (`/proc/self/fd/N`),
    /// and checks that it is the same file (device and inode). Fails when `/proc` does not
    /// show this process, the file cannot be opened read-write, or
    /// [`MAX_PRIVATE_FDS`] are held ([`ErrorKind::LimitReached`]).
    pub fn reopen(fd: impl AsFd) -> Result<PrivateFd> {
        install_atfork()?;
        let fd = fd.as_fd();
        let st = crate::file::fstat(fd)?;
        gate_lock();
        let r = Self::register(fd, st);
        gate_unlock();
        r
    }

    /// Under the gate: opens and registers.
    fn register(fd: BorrowedFd<'_>, st: crate::file::FileStat) -> Result<PrivateFd> {
        let Some(index) = REGISTRY.iter().position(|r| r.load(Ordering::Relaxed) == 0) else {
            return Err(Error::new("open", "private descriptor", Errno::EMFILE)
                .with_kind(ErrorKind::LimitReached)
                .with_hint(format!("at most {MAX_PRIVATE_FDS} per process")));
        };
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let new: OwnedFd = crate::file::open_nonblocking(&path, crate::Access::ReadWrite)?;
        let got = crate::file::fstat(&new)?;
        if (got.dev, got.ino) != (st.dev, st.ino) {
            return Err(Error::new("open", path, Errno::ENOENT)
                .with_hint("/proc/self/fd showed another file (a foreign /proc)"));
        }
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
        let word = generation.max(1) << 32 | u64::from(new.as_raw_fd() as u32);
        std::mem::forget(new);
        REGISTRY[index].store(word, Ordering::Relaxed);
        Ok(PrivateFd {
            index,
            word,
            pid: std::process::id(),
        })
    }

    /// The descriptor, or `None` in a child forked while this value lived (its copy was
    /// closed there).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        (REGISTRY[self.index].load(Ordering::Relaxed) == self.word).then(|| {
            // SAFETY: registered with our word: the descriptor is open in this process, and
            // stays so until `drop` (which needs `&mut self`, so after this borrow ends).
            unsafe { BorrowedFd::borrow_raw(self.word as u32 as i32) }
        })
    }
}

impl Drop for PrivateFd {
    fn drop(&mut self) {
        if REGISTRY[self.index]
            .compare_exchange(self.word, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: ours (registered with our word) and no longer registered: nothing else
            // closes or uses it.
            let fd = unsafe { OwnedFd::from_raw_fd(self.word as u32 as i32) };
            // A child started without the fork handlers (`posix_spawn`, which `Command`
            // uses, `vfork`, a bare `clone`) holds a copy of the description until it execs
            // or exits: closing ours alone would leave the locks to that copy. Dropped first,
            // they end here, whatever another thread is spawning meanwhile. Only by the
            // process that opened it: such a child that ran this drop (its copy of the value
            // still registered) would otherwise take its parent's locks away.
            if std::process::id() == self.pid {
                let _ = unlock(&fd, 0, 0);
            }
            drop(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test's file, removed when dropped (a failing test's too).
    struct Temp(std::path::PathBuf);

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn temp(tag: &str) -> (Temp, std::fs::File) {
        let p = std::env::temp_dir().join(format!("shmchan-os-ofd-{tag}-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        (Temp(p), f)
    }

    #[test]
    fn locks_past_the_end_on_tmpfs_and_memfd() {
        let memfd = crate::memfd::memfd_create("ofd-test").unwrap();
        let shm = std::path::Path::new("/dev/shm");
        let (p, f) = if shm.is_dir() {
            let p = shm.join(format!("shmchan-os-ofd-{}", std::process::id()));
            let f = std::fs::File::create(&p).unwrap();
            (Temp(p), f)
        } else {
            temp("tmpfs")
        };
        for fd in [memfd.as_fd(), f.as_fd()] {
            let a = PrivateFd::reopen(fd).unwrap();
            let b = PrivateFd::reopen(fd).unwrap();
            let at = (1u64 << 48) + 3;
            assert!(set_lock(a.fd().unwrap(), LockKind::Write, at, 1).unwrap());
            // Another description is refused, the holder sees nothing of its own.
            assert!(!set_lock(b.fd().unwrap(), LockKind::Write, at, 1).unwrap());
            assert_eq!(get_lock(fd, at, 1).unwrap(), Some(LockKind::Write));
            assert_eq!(get_lock(a.fd().unwrap(), at, 1).unwrap(), None);
            unlock(a.fd().unwrap(), at, 1).unwrap();
            assert_eq!(get_lock(fd, at, 1).unwrap(), None);
            assert!(set_lock(a.fd().unwrap(), LockKind::Read, at, 1).unwrap());
            assert!(set_lock(b.fd().unwrap(), LockKind::Read, at, 1).unwrap());
            drop(a);
            assert_eq!(get_lock(fd, at, 1).unwrap(), Some(LockKind::Read));
            drop(b);
            assert_eq!(get_lock(fd, at, 1).unwrap(), None);
        }
        drop(f);
        drop(p);
    }

    #[test]
    fn a_lock_outlives_the_thread_that_took_it() {
        let (p, f) = temp("thread");
        let a = std::sync::Arc::new(PrivateFd::reopen(&f).unwrap());
        let a2 = a.clone();
        std::thread::spawn(move || {
            assert!(set_lock(a2.fd().unwrap(), LockKind::Write, 7, 1).unwrap());
        })
        .join()
        .unwrap();
        assert_eq!(get_lock(&f, 7, 1).unwrap(), Some(LockKind::Write));
        drop(a);
        assert_eq!(get_lock(&f, 7, 1).unwrap(), None);
        drop(p);
    }

    #[test]
    fn a_forked_child_holds_no_private_descriptor() {
        let (p, f) = temp("fork");
        let a = PrivateFd::reopen(&f).unwrap();
        assert!(set_lock(a.fd().unwrap(), LockKind::Write, 9, 1).unwrap());
        // Child to parent, then parent to child.
        let (r1, w1) = nix::unistd::pipe().unwrap();
        let (r2, w2) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only calls async-signal-safe functions (atomic loads, write, read,
        // _exit) before it exits.
        match unsafe { libc::fork() } {
            0 => {
                let b = [u8::from(a.fd().is_none())];
                // SAFETY: `w1` is open; `b` is one readable byte.
                unsafe { libc::write(w1.as_raw_fd(), b.as_ptr().cast(), 1) };
                // Live until the parent has checked the lock (or dropped its end, failing).
                // SAFETY: the child's copy of `w2`, never used here again.
                unsafe { libc::close(w2.as_raw_fd()) };
                let mut buf = [0u8; 1];
                // SAFETY: `r2` is open; `buf` is one writable byte.
                unsafe { libc::read(r2.as_raw_fd(), buf.as_mut_ptr().cast(), 1) };
                crate::process::_exit(0)
            }
            pid if pid > 0 => {
                let mut b = [0u8; 1];
                nix::unistd::read(&r1, &mut b).unwrap();
                assert_eq!(b[0], 1, "the child still saw the private descriptor");
                drop(a);
                // The child lives (blocked on the pipe) and inherited no copy: the lock is gone.
                assert_eq!(get_lock(&f, 9, 1).unwrap(), None);
                nix::unistd::write(&w2, &[0]).unwrap();
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
            _ => panic!("fork failed"),
        }
        drop(p);
    }

    /// A child started without the fork handlers (a bare `clone`, as `posix_spawn` starts
    /// one before its `exec`) still holds a copy of the private description: dropping the
    /// value releases the locks all the same.
    #[test]
    fn a_lock_ends_with_its_value_while_a_spawned_child_holds_a_copy() {
        let (p, f) = temp("spawn");
        let a = PrivateFd::reopen(&f).unwrap();
        assert!(set_lock(a.fd().unwrap(), LockKind::Read, 11, 1).unwrap());
        let (r1, w1) = nix::unistd::pipe().unwrap();
        let (r2, w2) = nix::unistd::pipe().unwrap();
        // SAFETY: `clone` with only SIGCHLD is `fork` without its handlers; the child only
        // calls async-signal-safe functions (write, close, read, _exit) before it exits.
        let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
        match pid {
            0 => {
                // SAFETY: the child's copies of the pipes' ends, each used once.
                unsafe {
                    libc::write(w1.as_raw_fd(), [1u8].as_ptr().cast(), 1);
                    libc::close(w2.as_raw_fd());
                    let mut buf = [0u8; 1];
                    libc::read(r2.as_raw_fd(), buf.as_mut_ptr().cast(), 1);
                }
                crate::process::_exit(0)
            }
            pid if pid > 0 => {
                let mut b = [0u8; 1];
                nix::unistd::read(&r1, &mut b).unwrap();
                // The child lives (blocked on the pipe) with its copy of the description.
                drop(a);
                let seen = get_lock(&f, 11, 1).unwrap();
                nix::unistd::write(&w2, &[0]).unwrap();
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
                assert_eq!(seen, None, "the spawned child's copy kept the lock");
            }
            _ => panic!("clone failed"),
        }
        drop(p);
    }

    /// A child started without the fork handlers that drops its copy of the value (whose
    /// registry entry it still has) closes its descriptor and leaves the parent's locks alone.
    #[test]
    fn a_spawned_childs_drop_leaves_the_parents_locks() {
        let (p, f) = temp("child-drop");
        let a = PrivateFd::reopen(&f).unwrap();
        assert!(set_lock(a.fd().unwrap(), LockKind::Read, 13, 1).unwrap());
        let (r1, w1) = nix::unistd::pipe().unwrap();
        // SAFETY: as in the test above; the child's drop calls getpid, atomics and close.
        let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
        match pid {
            0 => {
                drop(a);
                // SAFETY: the child's copy of the pipe's write end; one readable byte.
                unsafe { libc::write(w1.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
                crate::process::_exit(0)
            }
            pid if pid > 0 => {
                let mut b = [0u8; 1];
                nix::unistd::read(&r1, &mut b).unwrap();
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
                assert_eq!(
                    get_lock(&f, 13, 1).unwrap(),
                    Some(LockKind::Read),
                    "the child's drop took the parent's lock"
                );
                drop(a);
                assert_eq!(get_lock(&f, 13, 1).unwrap(), None);
            }
            _ => panic!("clone failed"),
        }
        drop(p);
    }
}
