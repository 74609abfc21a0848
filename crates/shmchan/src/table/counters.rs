//! The per-endpoint activity counters kept in each entry.

use crate::sync::{AtomicU64, Ordering};

/// An endpoint's activity counters, in its own table entry: records it sent (committed) or
/// received, how often it went to sleep on the doorbell, and how often it rang the doorbell
/// (posts: wake-ups it sent). Cleared when the endpoint registers.
///
/// Only the endpoint writes them, so a count is a Relaxed load and a Relaxed store of a word
/// on the endpoint's own line ([`Counters::add`]): no read-modify-write, no fence, no line
/// shared with a peer on the record path (the line is the entry's, which no other endpoint
/// writes while this one is live, and which on MPMC the ring's `working` announcement
/// already writes on every operation). A reader (`shmchan top`, `inspect`) sees each count
/// as of the endpoint's last operation. Whatever a peer writes here only changes what
/// inspection shows.
#[repr(C)]
pub(crate) struct Counters {
    records: AtomicU64,
    sleeps: AtomicU64,
    posts: AtomicU64,
}

/// Which of an endpoint's [`Counters`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Records,
    Sleeps,
    Posts,
}

impl Counters {
    fn word(&self, c: Count) -> &AtomicU64 {
        match c {
            Count::Records => &self.records,
            Count::Sleeps => &self.sleeps,
            Count::Posts => &self.posts,
        }
    }

    /// Adds `n` to a count. Only the endpoint that owns the entry calls this (one thread at
    /// a time: its operations take `&mut`), so a load and a store lose nothing; Relaxed: a
    /// statistic, ordered with nothing.
    #[inline(always)]
    pub(crate) fn add(&self, c: Count, n: u64) {
        let w = self.word(c);
        w.store(w.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// A count as last stored (Relaxed: a snapshot for inspection).
    pub(crate) fn get(&self, c: Count) -> u64 {
        self.word(c).load(Ordering::Relaxed)
    }

    pub(super) fn clear(&self) {
        for c in [Count::Records, Count::Sleeps, Count::Posts] {
            self.word(c).store(0, Ordering::Relaxed);
        }
    }

    #[cfg(all(test, loom))]
    pub(super) fn new() -> Counters {
        Counters {
            records: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            posts: AtomicU64::new(0),
        }
    }
}
