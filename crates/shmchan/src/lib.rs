//! Typed, zero-copy channels between Linux processes over shared memory.
//!
//! A channel is a lock-free ring of `T: Pod` records in one shared segment — SysV shared
//! memory, a file-backed `mmap`, anonymous `MAP_SHARED` memory inherited across `fork`, or a
//! sealed memfd handed to another process over a Unix socket ([`Channel::share`]) — with
//! endpoints that feel like [`std::sync::mpsc`] or crossbeam-channel. Records are written and
//! read in place: nothing is copied through the kernel and nothing is serialised. A side that
//! must wait spins briefly, then sleeps on a [`Doorbell`]; the other side rings it only when
//! somebody actually sleeps, so a busy pipeline makes no system calls.
//!
//! ```
//! use shmchan::{Backing, Channel};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, shmchan::Pod, shmchan::Zeroable)]
//! #[bytemuck(crate = "shmchan::bytemuck")] // not needed if you depend on bytemuck yourself
//! #[repr(C)]
//! struct Tick {
//!     seq: u64,
//!     price: f64,
//! }
//!
//! // One process creates the channel (here: anonymous memory, shared with forked children;
//! // `Backing::sysv_key`, `sysv_path` and `file` let unrelated processes open it by name).
//! let chan = Channel::<Tick>::builder()
//!     .capacity(1024)
//!     .backing(Backing::anonymous())
//!     .spsc()
//!     .create()?;
//! let mut tx = chan.sender()?;
//! let mut rx = chan.receiver()?;
//!
//! tx.send(Tick { seq: 1, price: 99.5 }).unwrap();
//! let mut slot = tx.reserve().unwrap(); // zero copy: write in place...
//! *slot = Tick { seq: 2, price: 100.0 };
//! slot.commit(); // ...then publish
//!
//! assert_eq!(rx.recv().unwrap().seq, 1);
//! let r = rx.peek().unwrap(); // zero-copy read; released on drop
//! assert_eq!(r.seq, 2);
//! # Ok::<(), shmchan::OpenError>(())
//! ```
//!
//! # Layers
//!
//! The ring algorithms (SPSC Lamport ring, MPMC sequence stamps) live in `shmchan-ring`, the
//! kernel wrappers in `shmchan-os`. This crate places a ring in a [`Backing`], validates what
//! it finds there (a peer that writes garbage makes operations report `Corrupted`, never
//! undefined behaviour), and hands out typed [`Sender`]s and [`Receiver`]s.
//!
//! # Waiting
//!
//! A receiver waiting on an empty ring is woken by the next send. A sender waiting on a full
//! ring is woken once half of the ring is free (a low-water mark), so a producer that outruns
//! its consumer sleeps once per half ring instead of once per record; should the receivers stop
//! receiving before that, the sender finds the room at the end of its current 50 ms time
//! slice (or at its deadline).
//!
//! # Disconnection
//!
//! When every sender is gone (dropped, or its process died), receivers drain what was committed
//! and then get `Disconnected`; when every receiver is gone, senders get `Disconnected` instead
//! of blocking. A side that never had a peer simply waits (use the `_timeout` forms). A dead
//! process is noticed from the endpoint table (pid plus start time) by a waiting side within
//! about 50 ms.
//!
//! # A process killed mid-operation (MPMC)
//!
//! - A sender killed between claiming a slot and committing it: the slot is passed over, and
//!   its half-written record is never delivered.
//! - A receiver killed while it holds records (a `peek` guard, a batch being copied): a live
//!   receiver adopts them and puts them back at the tail of the ring, where any receiver gets
//!   them. Delivery is at least once (the dead receiver may have acted on them already), and
//!   their order relative to later records is not kept. Adopted records stay in the ring, not
//!   in the adopter's memory, so dropping or killing the adopter loses none of them. Only when
//!   the ring is full does the adopter keep them; it then delivers them itself first, and
//!   tries again to put them back at its next wait and when it is dropped.
//!
//! # Records
//!
//! A record is any `#[repr(C)]` type that is [`Pod`] and [`Zeroable`]: plain data, any bits a
//! valid value, no pointers. `#[derive(Pod)]` refuses a struct with padding (the padding bytes
//! would carry uninitialised memory to another process), and its error does not name the
//! field: make the padding an explicit field, or order the fields from the largest alignment
//! to the smallest.
//!
//! ```compile_fail
//! #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable)]
//! #[bytemuck(crate = "shmchan::bytemuck")]
//! #[repr(C)]
//! struct Padded {
//!     flag: u8, // 7 bytes of padding follow: refused
//!     seq: u64,
//! }
//! ```
//!
//! ```
//! #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable)]
//! #[bytemuck(crate = "shmchan::bytemuck")]
//! #[repr(C)]
//! struct Explicit {
//!     flag: u8,
//!     _pad: [u8; 7], // the padding, spelled out
//!     seq: u64,
//! }
//! let chan = shmchan::Channel::<Explicit>::builder().create()?;
//! # let _ = chan;
//! # Ok::<(), shmchan::OpenError>(())
//! ```
//!
//! # Features
//!
//! - `derive` (default): `#[derive(Pod, Zeroable)]` re-exported from bytemuck.
//! - `tokio`: [`tokio::AsyncReceiver`](crate::tokio) and `AsyncSender`, `async fn recv()` and
//!   `send()` over `tokio::io::unix::AsyncFd` (doorbells with a descriptor: `PosixMq`,
//!   `EventFd`).
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backing;
mod channel;
mod doorbell;
pub mod duplex;
mod endpoint;
mod error;
pub mod inspect;
#[cfg(all(test, loom))]
mod loom_models;
mod pollable;
mod record;
mod removal;
mod segment;
mod sync;
mod table;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

/// The README's code blocks, compiled as doc tests (they must stay true).
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
mod wait;

pub use backing::{Backing, Cleanup};
pub use channel::{Builder, Channel, DEFAULT_CAPACITY, DEFAULT_SPIN, MAX_CAPACITY};
pub use doorbell::Doorbell;
pub use endpoint::{
    ByteRecvGuard, ByteSendGuard, Bytes, Iter, IterResults, Receiver, Record, RecvGuard,
    SendBytesError, SendGuard, Sender, TryIter, DEFAULT_MAX_MESSAGE, FRAME_HEADER, MAX_MESSAGE,
};
pub use error::{
    OpenError, RecvError, RecvTimeoutError, ReserveError, SendBatchError, SendError,
    SendTimeoutError, TryRecvError, TrySendError,
};
pub use pollable::{Endpoint, Pollable};
pub use record::{RecordInfo, MAX_TYPE_NAME};
pub use removal::remove;
pub use segment::RingKind;
pub use table::MAX_ENDPOINTS;

/// The bytemuck crate, re-exported so that `#[derive(Pod, Zeroable)]` works without a direct
/// dependency: add `#[bytemuck(crate = "shmchan::bytemuck")]` to the type.
pub use bytemuck;
pub use bytemuck::{Pod, Zeroable};
/// The kernel-wrapper crate, re-exported for its error type ([`os::Error`], kept inside
/// [`OpenError::Os`]) and for programs that want the primitives themselves.
pub use shmchan_os as os;
