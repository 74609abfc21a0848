//! Safe RAII wrappers of the Linux kernel IPC primitives used by shmchan.
//!
//! This is the only crate of the workspace that calls `libc`; it uses `nix` where `nix` already
//! has the call (mmap, files, poll) and follows `nix`'s conventions (its `CONVENTIONS.md`):
//!
//! - **one function per system call**, named after it, with the kernel object as a small `Copy`
//!   id ([`ShmId`], [`SemSet`], [`MsgQueue`]) or an owning handle ([`PosixMq`], [`NamedSem`],
//!   [`SharedMapping`], [`EventFd`], [`ShmAttachment`]);
//! - **flags as bitflags newtypes** ([`SemFlags`], [`MsgFlags`], [`EfdFlags`]) and **exclusive
//!   choices as enums** ([`Access`], [`MsgSelect`], [`MsyncMode`]);
//! - **RAII owners**: mappings and attachments are unmapped/detached on drop, descriptors and named
//!   semaphores closed; SysV ids are plain ids (they outlive processes by design) and get an
//!   explicit owning guard ([`OwnedShmId`], [`OwnedSemSet`], [`OwnedMsgQueue`]) that removes the
//!   object on drop unless ownership is given up with `into_inner`;
//! - **errno through one helper** and one [`Error`] type that keeps the operation, its formatted
//!   arguments and the [`Errno`], classifies it ([`ErrorKind`]) and names the kernel limit (and its
//!   sysctl) when one is the likely cause. The limits are readable through [`limits`];
//! - **one EINTR policy**: every blocking call retries after `EINTR` with the time that is left
//!   (never the original timeout), so `EINTR` never reaches the caller;
//! - **timeouts are not errors**: timed waits return `bool`, `Option` or a small enum.
//!
//! Descriptors travel to unrelated processes over Unix sockets ([`scm`]): a sealed
//! [`memfd`](memfd::memfd_create) is how shared memory reaches a peer that has no name to open.
//!
//! Everything here shares memory or wakes processes *across* `fork`/`exec`: nothing uses
//! `FUTEX_PRIVATE_FLAG`, POSIX semaphores are initialised with `pshared = 1`, and mappings are
//! `MAP_SHARED`.
//!
//! Linux with glibc only (`semtimedop` is a glibc symbol, and [`RawSem`] implements glibc's
//! semaphore layout).
//!
//! # Example
//!
//! ```
//! use shmchan_os::{Access, Key, Mode, OwnedShmId};
//!
//! # fn main() -> shmchan_os::Result<()> {
//! // A private segment, removed when `owned` is dropped (even on panic).
//! let owned = OwnedShmId::create(Key::PRIVATE, 4096, Mode::default())?;
//! let map = owned.attach(Access::ReadWrite)?;
//! assert_eq!(map.len(), 4096);
//! // SAFETY: the attachment is 4096 bytes long, writable, and only this thread uses it.
//! unsafe { map.as_ptr().as_ptr().write(42) };
//! assert_eq!(owned.stat()?.nattch, 1);
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

#[cfg(not(target_os = "linux"))]
compile_error!("shmchan-os supports Linux only");

pub mod error;
pub mod eventfd;
pub mod file;
pub mod futex;
pub mod identity;
pub mod key;
pub mod limits;
pub mod membarrier;
pub mod memfd;
pub mod mmap;
pub mod msg;
pub mod ofd;
pub mod posix_mq;
pub mod posix_sem;
pub mod process;
mod retry;
pub mod robust;
pub mod scm;
pub mod sem;
pub mod shm;

pub use error::{Error, ErrorKind, Result};
pub use eventfd::{EfdFlags, EventFd};
pub use futex::{futex_wait, futex_wake, FutexWait};
pub use key::{ftok, Key, Mode};
pub use memfd::Seals;
pub use mmap::{MsyncMode, SharedMapping};
pub use msg::{MsgFlags, MsgQueue, MsgSelect, MsgStat, OwnedMsgQueue};
pub use nix::errno::Errno;
pub use posix_mq::{MqAttr, PosixMq};
pub use posix_sem::{NamedSem, RawSem};
pub use sem::{OwnedSemSet, SemFlags, SemOp, SemSet, SemStat, SEMVMX};
pub use shm::{Access, OwnedShmId, ShmAttachment, ShmId, ShmStat};
