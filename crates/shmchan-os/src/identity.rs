//! Who is asking, and identities nobody can predict: `geteuid` and `getrandom`.
//!
//! A process that acts on objects *named by someone else* (a queue name read from shared
//! memory) checks the kernel's word on who owns them ([`file::fstat`](crate::file::fstat),
//! [`file::lstat`](crate::file::lstat), the `IPC_STAT` of SysV objects) before it acts; and
//! what it creates for others to find it names with identities drawn from the kernel's random
//! number generator, which nobody can guess in advance.
//!
//! ```
//! use shmchan_os::identity::{geteuid, getrandom};
//!
//! let me = geteuid(); // 0 for root
//! # let _ = me;
//! let mut a = [0u8; 8];
//! let mut b = [0u8; 8];
//! getrandom(&mut a)?;
//! getrandom(&mut b)?;
//! assert_ne!(a, b); // 2^-64 to fail
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use nix::errno::Errno;

use crate::error::{check, Error, Result};

/// `geteuid()`: the effective uid of the calling process (it cannot fail).
pub fn geteuid() -> u32 {
    // SAFETY: geteuid takes no arguments and always succeeds.
    unsafe { libc::geteuid() }
}

/// `getrandom(buf, len, 0)`: fills `buf` from the kernel's random number generator (blocking
/// only until it is initialised, early at boot). `EINTR` and short reads are retried until the
/// buffer is full.
pub fn getrandom(buf: &mut [u8]) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a live, writable buffer of `rest.len()` bytes; the kernel writes at
        // most that many.
        match check(unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) }) {
            Ok(n) => filled += n as usize,
            Err(Errno::EINTR) => {}
            Err(e) => {
                return Err(Error::new(
                    "getrandom",
                    format!("len={}, flags=0", rest.len()),
                    e,
                ))
            }
        }
    }
    Ok(())
}
