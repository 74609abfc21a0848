//! The only module that names the atomics of the shared segment.
//!
//! Under `--cfg loom` every item is swapped for loom's model-checked version (the pattern of
//! `shmchan-ring`'s `sync`, itself tokio's `tokio/src/loom/`), so that the endpoint table's
//! protocol (`crate::table`) can run inside loom models over heap memory. The ring's own types
//! (`shmchan_ring::WaitCell`, `Working`) swap with the same `cfg`.
//!
//! Loom's atomics are handles into loom's execution, not plain integers: under loom the shared
//! structs change size, so the frozen-layout assertions apply to real builds only, and the
//! models construct their tables by value (never by reinterpreting mapped bytes). The real
//! segment code still compiles under loom, but only the models run there.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64};
#[cfg(loom)]
pub(crate) use std::sync::atomic::Ordering;
