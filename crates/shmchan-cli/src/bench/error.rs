//! Why a measurement failed.
//!
//! A failed measurement does not end the run: its rows show the error (`error: …` in the
//! table, `"status": "error"` in the JSON document) and the exit status becomes 2. Only
//! [`ProcError::Interrupted`] stops the run, and it is recognised by its variant, never by its
//! text ([`Error::is_interrupted`]).
//!
//! Errors in a forked child cross back to the supervisor as one line of text (see
//! [`proc`](super::proc)); there they become [`ProcError::Failed`], which keeps the child's
//! name and message.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;
use shmchan::{OpenError, RingKind};

use super::proc::ProcError;
use super::workload::CheckError;

/// Why a measurement failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Its processes failed, timed out, or the run was interrupted.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// A record or message arrived other than it was sent.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// A kernel object could not be created or used (a `shmchan_os` call failed).
    #[error("{0}")]
    Os(#[from] shmchan_os::Error),
    /// A system call made through `nix` failed.
    #[error("{call}: {source}")]
    Sys {
        /// The call (`pipe`).
        call: &'static str,
        /// Its errno.
        source: Errno,
    },
    /// An I/O call on a descriptor failed.
    #[error("{op}: {source}")]
    Io {
        /// The call (`write`, `read`, `socketpair`).
        op: &'static str,
        /// What it returned.
        source: io::Error,
    },
    /// A FIFO could not be created.
    #[error("mkfifo {}: {source}", path.display())]
    Mkfifo {
        /// Its path.
        path: PathBuf,
        /// The errno of `mkfifo`.
        source: Errno,
    },
    /// A FIFO could not be opened.
    #[error("open {}: {source}", path.display())]
    OpenFifo {
        /// Its path.
        path: PathBuf,
        /// What `open` returned.
        source: io::Error,
    },
    /// A byte stream ended in the middle of a record.
    #[error("read: the peer closed")]
    PeerClosed,
    /// The process could not be pinned: the CPU number does not fit a `cpu_set_t`.
    #[error("CPU {cpu} is not in a cpu_set_t: {source}")]
    CpuSet {
        /// The CPU.
        cpu: usize,
        /// Why it does not fit.
        source: Errno,
    },
    /// The process could not be pinned: `sched_setaffinity` failed.
    #[error("sched_setaffinity(CPU {cpu}): {source}")]
    Pin {
        /// The CPU.
        cpu: usize,
        /// The errno of `sched_setaffinity`.
        source: Errno,
    },
    /// A shmchan channel could not be created.
    #[error("creating {what}: {source}")]
    Create {
        /// `the channel` or `the byte channel`.
        what: &'static str,
        /// Why.
        source: OpenError,
    },
    /// An endpoint could not be taken from a channel (or wrapped for async use).
    #[error("{op}: {source}")]
    Endpoint {
        /// `sender`, `receiver`, `async sender`, `async receiver`.
        op: &'static str,
        /// Why.
        source: OpenError,
    },
    /// Sending or receiving on a shmchan endpoint failed.
    #[error("{op}: {source}")]
    Transfer {
        /// `send`, `send_batch`, `reserve`, `recv`, `async send`, `async recv`.
        op: &'static str,
        /// The endpoint's error (each operation has its own type).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A ring kind this bench has no contender for.
    #[error("the bench does not know ring kind {0}")]
    UnknownRingKind(RingKind),
    /// A record size with no record type here (only powers of two from 8 to 65536).
    #[error("unsupported record size {0}")]
    RecordSize(usize),
    /// A byte-channel message size that is not a whole number of words.
    #[error("unsupported message size {0}")]
    MessageSize(usize),
    /// A byte channel that holds other messages than it was asked for.
    #[error("asked for {asked}-byte messages, the channel holds {holds}")]
    MaxMessage {
        /// The message size asked for.
        asked: usize,
        /// The channel's `max_message`.
        holds: usize,
    },
    /// A child's result line did not parse.
    #[error("malformed {from} report {report:?}")]
    Malformed {
        /// The side that wrote it (`consumer`, `pinger`, `receiver`, `producer`).
        from: &'static str,
        /// The line.
        report: String,
    },
    /// A death-detection trial went wrong (the victim, the kill, the blocked call's result).
    #[error("death detection: {0}")]
    Death(String),
    /// The pinger's histograms could not be created.
    #[error("histogram: {0}")]
    Histogram(#[source] hdrhistogram::CreationError),
    /// A child's tokio runtime could not be built.
    #[error("building the tokio runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The slow-consumer window ended before the producer's warm-up did.
    #[error("the window ended before the warm-up")]
    WindowBeforeWarmup,
    /// A doorbell measured with its bare object came back without the bare figures.
    #[error("no bare figures")]
    NoBareFigures,
    /// A row that the interleaved throughput pairs do not measure (a batched or socket row).
    #[error("{0} cannot be measured interleaved with another row")]
    NotInterleaved(String),
    /// The slices of an interleaved pair came out of order.
    #[error("interleaved pair: {0}")]
    Interleave(&'static str),
}

impl Error {
    /// Whether the run was interrupted (Ctrl-C, SIGTERM) during the measurement.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Error::Proc(ProcError::Interrupted))
    }

    /// A `map_err` for taking an endpoint: `chan.sender().map_err(Error::endpoint("sender"))`.
    pub fn endpoint(op: &'static str) -> impl Fn(OpenError) -> Error + Copy {
        move |source| Error::Endpoint { op, source }
    }

    /// A `map_err` for an endpoint operation: `tx.send(r).map_err(Error::transfer("send"))`.
    pub fn transfer<E>(op: &'static str) -> impl Fn(E) -> Error + Copy
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |e| Error::Transfer {
            op,
            source: Box::new(e),
        }
    }
}
