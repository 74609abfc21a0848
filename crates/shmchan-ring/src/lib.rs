//! Lock-free ring algorithms over a raw memory region: the layer of shmchan that knows the
//! shared layout and the atomics, and nothing about processes, kernels or types.
//!
//! A ring lives in one region given as a base pointer and a length, described by offsets only
//! ([`layout`]), so the same code runs over shared memory in production and over the heap under
//! loom, Miri and the fuzzer. Records are untyped: `record_size` bytes aligned to
//! `record_align`; the typed layer above casts slot pointers to its `Pod` type.
//!
//! - [`RawRing::init`] writes a new ring and publishes it ready; [`RawRing::open`] validates an
//!   existing one (any bytes: a clean error or a working ring, never a panic or UB).
//! - [`spsc`]: one producer, one consumer (Lamport ring, cached peer cursors; rtrb's design).
//! - [`mpmc`]: any number of each (Vyukov per-slot stamps; crossbeam's `ArrayQueue`).
//! - Both have `try_push`/`try_pop`, batches with one publish per batch, and zero-copy grants
//!   (`try_reserve` → write in place → `commit`; `try_peek` → read in place → `release`).
//! - [`settle`] (part of [`mpmc`], re-exported here): crash recovery for MPMC: endpoints announce
//!   their claims in a [`Working`] record; a survivor skips a dead producer's claims and adopts a
//!   dead consumer's records.
//! - [`wait`]: the sleep/ring protocol the doorbells implement (announce, re-check, sleep;
//!   publish, fence, take tokens, ring) — the single source of truth for it.
//!
//! Every loop is bounded and every index from shared memory is reduced below the capacity: a peer that writes
//! garbage can make operations report `Corrupted` (or `Full`/`Empty`), never loop forever or
//! touch memory outside the region.
//!
//! Verification: loom models (`tests/loom_*.rs`, `--cfg loom`: the private `sync` module swaps
//! in loom's atomics and gives every slot a loom-checked access tracker, so a missing
//! Release/Acquire edge on a payload fails the model), deterministic model tests against a
//! `VecDeque` shared with the fuzzer (`model`, feature `model`), cargo-fuzz targets in `fuzz/`
//! (`ring_vs_model`, `open_region`), and Miri over the unit, model and doc tests.
//!
//! Synchronisation comments name their pair: `SYNC(tag)` marks both ends of each Release store /
//! Acquire load pair (`spsc-publish`, `spsc-release`, `mpmc-publish`, `mpmc-free`,
//! `init-ready`, `settle-claim`, `settle-announce`).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

#[cfg(any(test, feature = "model"))]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

mod detached;
mod error;
mod handle;
pub mod layout;
pub mod mpmc;
mod raw;
pub mod spsc;
mod sync;
pub mod wait;

#[cfg(all(any(test, feature = "model"), not(loom)))]
#[doc(hidden)]
pub mod model;

pub use detached::Detached;
pub use error::{Field, KindError, LayoutError, OpenError, PopError, PushError};
pub use layout::{
    HeaderSnapshot, Layout, RingConfig, RingHeader, RingInfo, RingKind, LAYOUT_VERSION, MAGIC,
};
pub use mpmc::{settle, MpmcConsumer, MpmcProducer};
pub use raw::RawRing;
pub use settle::{SettleError, Settled, Working};
pub use spsc::{SpscConsumer, SpscProducer};
pub use wait::WaitCell;

#[cfg(all(test, not(loom)))]
mod tests;
