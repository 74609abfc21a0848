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
