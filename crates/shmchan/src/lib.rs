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
//! # Lifecycle
//!
//! Programs that share a named channel (a SysV key or path, a file) can start in any order:
//! each calls [`Builder::open_or_create`] (exactly one creates), or opens with an
//! [`open_timeout`](Builder::open_timeout), which waits for a channel not created yet. What
//! each side sees as peers come and go:
//!
//! | event | receivers see | senders see |
//! |---|---|---|
//! | no peer has attached yet | wait (nothing is disconnected) | send while there is room, then wait |
//! | the last sender leaves (drop, or its process dies) | everything committed, then `Disconnected` ([`WhenPeersLeave::Disconnect`], the default) or they wait for the next sender ([`WhenPeersLeave::Wait`]) | — |
//! | the last receiver leaves | — | `Disconnected`, the record comes back (`Disconnect`), or send while there is room, then wait for the next receiver (`Wait`) |
//! | a peer attaches later | the channel is live again: a waiting receiver gets the new records, one that saw `Disconnected` gets them on its next call | the same for senders |
//! | every process has left | the channel (default [`Cleanup`]) is removed if it holds nothing unread; records still in it wait for the next receiver | — |
//! | an endpoint is used in a forked child | `Forked` on every call there (its parent's endpoint keeps working) | the same |
//!
//! Which peer left, and whether it closed its endpoint or its process died:
//! [`Receiver::last_departure`]. A dead process is noticed from the endpoint table (pid plus
//! start time) by a waiting side within about 50 ms.
//!
//! An endpoint belongs to the process that attached it. To hand a channel to a child, give it
//! the channel, not an endpoint: after `fork`, the child takes its own from the [`Channel`]
//! (or opens the channel by name after `exec`); see [`Channel`]'s section on `fork`.
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
//! A channel stores its record's identity, and a peer that opens it with another is refused
//! with [`OpenError::TypeMismatch`]. The identity is the type's name without module paths
//! (`my_app::feed::Tick` and `other::Tick` are both `Tick`), its size and alignment, and a
//! [schema version](Builder::schema_version); so two separately built programs that declare
//! the same struct connect. Add [`#[derive(Schema)]`](derive@Schema) and the fields become
//! part of it too — names, offsets, sizes and types, nested derived structs field by field —
//! and a difference is refused with the first differing field named
//! ([`OpenError::type_difference`]). A side without the derive is compared by name, size and
//! alignment only ([`schema`] explains why); [`Builder::type_name`] sets the name explicitly.
//!
//! ```
//! # use shmchan::{Backing, Channel};
//! mod producer {
//!     #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
//!     #[bytemuck(crate = "shmchan::bytemuck")]
//!     #[repr(C)]
//!     pub struct Tick { pub seq: u64, pub price: f64 }
//! }
//! mod consumer {
//!     #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
//!     #[bytemuck(crate = "shmchan::bytemuck")]
//!     #[repr(C)]
//!     pub struct Tick { pub seq: u64, pub price: u64 } // price changed type
//! }
//! # let path = std::env::temp_dir().join(format!("shmchan-doc-rec-{}", std::process::id()));
//! let chan = Channel::<producer::Tick>::builder().backing(Backing::file(&path)).create()?;
//! let err = Channel::<consumer::Tick>::builder().backing(Backing::file(&path)).open_receiver();
//! let err = err.unwrap_err().to_string();
//! assert!(err.ends_with("field `price`: expected u64 at offset 8, found f64 at offset 8"));
//! # drop(chan); shmchan::remove(&Backing::file(&path))?;
//! # Ok::<(), shmchan::OpenError>(())
//! ```
//!
//! # Features
//!
//! - `derive` (default): `#[derive(Pod, Zeroable)]` re-exported from bytemuck, and
//!   [`#[derive(Schema)]`](derive@Schema) from `shmchan-derive`.
//! - `tokio`: [`tokio::AsyncReceiver`](crate::tokio) and `AsyncSender`, `async fn recv()` and
//!   `send()` over `tokio::io::unix::AsyncFd` (doorbells with a descriptor: `PosixMq`,
//!   `EventFd`).
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backing;
mod barrier;
mod channel;
mod coalesce;
mod doorbell;
pub mod duplex;
mod endpoint;
mod error;
pub mod inspect;
mod life;
#[cfg(all(test, loom))]
mod loom_models;
mod orphans;
mod pollable;
mod record;
mod removal;
pub mod schema;
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
pub use channel::{
    Builder, Channel, DEFAULT_CAPACITY, DEFAULT_OPEN_TIMEOUT, DEFAULT_SPIN, MAX_CAPACITY,
};
pub use doorbell::Doorbell;
pub use endpoint::{
    ByteRecvGuard, ByteSendGuard, Bytes, Departure, HowLeft, Iter, IterResults, Receiver, Record,
    RecvGuard, SendBytesError, SendGuard, Sender, TryIter, WhenPeersLeave, DEFAULT_MAX_MESSAGE,
    MAX_MESSAGE,
};
pub use error::{
    OpenError, RecvError, RecvTimeoutError, ReserveError, SendBatchError, SendError,
    SendTimeoutError, TryRecvError, TrySendError,
};
pub use orphans::{prune_orphans, OrphanSet};
pub use pollable::{Endpoint, Pollable};
pub use record::{RecordInfo, MAX_TYPE_NAME};
pub use removal::remove;
pub use segment::RingKind;
pub use table::MAX_ENDPOINTS;

/// The bytemuck crate, re-exported so that `#[derive(Pod, Zeroable)]` works without a direct
/// dependency: add `#[bytemuck(crate = "shmchan::bytemuck")]` to the type.
pub use bytemuck;
pub use bytemuck::{Pod, Zeroable};
/// `#[derive(Schema)]`: the record's fields (names, offsets, sizes, types) become part of its
/// identity, so that another program's channel with another layout is refused with the first
/// differing field named (see [`schema`] and the crate's "Records" section).
///
/// Needs `#[repr(C)]` or `#[repr(transparent)]`, and refuses enums, unions and generic
/// structs, each with a compile error that says why:
///
/// ```compile_fail
/// #[derive(Clone, Copy, shmchan::Schema)]
/// struct NotReprC { seq: u64 } // error: needs `#[repr(C)]` or `#[repr(transparent)]`
/// ```
///
/// ```compile_fail
/// #[derive(Clone, Copy, shmchan::Schema)]
/// #[repr(u8)]
/// enum Side { Buy, Sell } // error: describes structs only
/// ```
///
/// ```compile_fail
/// #[derive(Clone, Copy, shmchan::Schema)]
/// #[repr(C)]
/// union Word { a: u32, b: f32 } // error: describes structs only
/// ```
///
/// The generated code registers the layout when the program starts (a static in
/// `.init_array`, as the `ctor` and `inventory` crates do), so a crate with
/// `#![forbid(unsafe_code)]` cannot use it; a dynamic library that declares records must stay
/// loaded while channels use them.
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use shmchan_derive::Schema;

/// What the code `#[derive(Schema)]` generates refers to; not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::schema::registry::Registration;
}

// The derive's generated code names `::shmchan`, also inside this crate's own tests.
extern crate self as shmchan;
/// The kernel-wrapper crate, re-exported for its error type ([`os::Error`], kept inside
/// [`OpenError::Os`]) and for programs that want the primitives themselves.
pub use shmchan_os as os;
