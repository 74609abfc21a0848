//! `membarrier(2)`: which process-wide memory barriers this kernel offers.
//!
//! Only the query is wrapped: `MEMBARRIER_CMD_QUERY` changes nothing and returns the commands
//! the kernel supports, so tools can report them.
//!
//! ```
//! use shmchan_os::membarrier::{membarrier_query, MembarrierCmd};
//!
//! // `None`: the kernel has no membarrier (built without CONFIG_MEMBARRIER).
//! if let Some(cmds) = membarrier_query()? {
//!     let _private = cmds.contains(MembarrierCmd::PRIVATE_EXPEDITED);
//! }
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

use crate::error::{check, Error, Result};

/// `MEMBARRIER_CMD_QUERY`.
const MEMBARRIER_CMD_QUERY: libc::c_int = 0;

bitflags::bitflags! {
    /// The `membarrier` commands (values of `enum membarrier_cmd`, linux/membarrier.h).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    pub struct MembarrierCmd: u32 {
        /// `MEMBARRIER_CMD_GLOBAL`: a barrier on every running thread of the system.
        const GLOBAL = 1 << 0;
        /// `MEMBARRIER_CMD_GLOBAL_EXPEDITED`.
        const GLOBAL_EXPEDITED = 1 << 1;
        /// `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`.
        const REGISTER_GLOBAL_EXPEDITED = 1 << 2;
        /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED`: a barrier on this process's running threads.
        const PRIVATE_EXPEDITED = 1 << 3;
        /// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`.
        const REGISTER_PRIVATE_EXPEDITED = 1 << 4;
        /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE`.
        const PRIVATE_EXPEDITED_SYNC_CORE = 1 << 5;
        /// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE`.
        const REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 6;
        /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ`.
        const PRIVATE_EXPEDITED_RSEQ = 1 << 7;
        /// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ`.
        const REGISTER_PRIVATE_EXPEDITED_RSEQ = 1 << 8;
        /// `MEMBARRIER_CMD_GET_REGISTRATIONS`.
        const GET_REGISTRATIONS = 1 << 9;
        // Commands of newer kernels are kept as they come.
        const _ = !0;
    }
}

/// `membarrier(MEMBARRIER_CMD_QUERY, 0, 0)`: the commands this kernel supports, or `None`
/// when it has no `membarrier` (`ENOSYS`). Any other errno (a seccomp filter's `EPERM`) is
/// the error.
///
/// ```
/// let cmds = shmchan_os::membarrier::membarrier_query()?;
/// # let _ = cmds;
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn membarrier_query() -> Result<Option<MembarrierCmd>> {
    // SAFETY: MEMBARRIER_CMD_QUERY takes no pointer and changes nothing; it returns a bitmask.
    let ret = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0u32, 0) };
    match check(ret) {
        Ok(mask) => Ok(Some(MembarrierCmd::from_bits_retain(mask as u32))),
        Err(Errno::ENOSYS) => Ok(None),
        Err(e) => Err(Error::new(
            "membarrier",
            "cmd=MEMBARRIER_CMD_QUERY, flags=0",
            e,
        )),
    }
}

/// `MEMBARRIER_CMD_GLOBAL_EXPEDITED`.
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
/// `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`.
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

/// This process's registration for global expedited barriers: 0 not asked yet, otherwise
/// `(fork generation + 1) << 1 | registered`. Asked again in a forked child (a different
/// generation), so a child never trusts its parent's registration.
static GLOBAL_REGISTRATION: AtomicU64 = AtomicU64::new(0);

/// Registers this process for `MEMBARRIER_CMD_GLOBAL_EXPEDITED` barriers (once per process
/// and per fork generation; later calls are one load) and returns whether it is registered.
///
/// A registered process is one whose running threads take part in every global expedited
/// barrier any process issues ([`global_barrier`]): the kernel interrupts each CPU running
/// one of its threads and executes a full memory barrier there. That is what lets a
/// registered process publish with only a compiler fence where it would otherwise need a
/// hardware one: the side that needs the ordering pays for it with [`global_barrier`]
/// instead (the asymmetric fence of liburcu and folly's `asymmetricHeavyBarrier`).
///
/// `false` when the kernel lacks the command (before Linux 4.16, or built without
/// `CONFIG_MEMBARRIER`) or a seccomp filter refuses it.
///
/// ```
/// if shmchan_os::membarrier::register_global() {
///     shmchan_os::membarrier::global_barrier()?;
/// }
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn register_global() -> bool {
    let generation = crate::process::fork_generation();
    let tag = (generation.wrapping_add(1)) << 1;
    // Relaxed: a cache of what the kernel answered; asking twice is harmless.
    let seen = GLOBAL_REGISTRATION.load(Ordering::Relaxed);
    if seen & !1 == tag {
        return seen & 1 == 1;
    }
    // SAFETY: MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED takes no pointer; it sets a flag on
    // this process's memory map (idempotent).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
            0u32,
            0,
        )
    };
    let ok = ret == 0;
    GLOBAL_REGISTRATION.store(tag | ok as u64, Ordering::Relaxed);
    ok
}

/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0)`: returns once every CPU that runs a
/// thread of a registered process (see [`register_global`]) has executed a full memory
/// barrier, and this thread too. A few microseconds (inter-processor interrupts); an error
/// when the kernel lacks the command or a seccomp filter refuses it.
///
/// ```
/// if shmchan_os::membarrier::register_global() {
///     shmchan_os::membarrier::global_barrier()?;
/// }
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn global_barrier() -> Result<()> {
    // SAFETY: MEMBARRIER_CMD_GLOBAL_EXPEDITED takes no pointer and changes no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_GLOBAL_EXPEDITED,
            0u32,
            0,
        )
    };
    check(ret).map(drop).map_err(|e| {
        Error::new(
            "membarrier",
            "cmd=MEMBARRIER_CMD_GLOBAL_EXPEDITED, flags=0",
            e,
        )
    })
}

#[cfg(test)]
mod global_tests {
    use super::*;

    #[test]
    fn registration_is_cached_and_the_barrier_follows_it() {
        let first = register_global();
        assert_eq!(register_global(), first);
        if first {
            global_barrier().unwrap();
        } else {
            eprintln!("membarrier global expedited unavailable here: nothing to check");
        }
    }
}
