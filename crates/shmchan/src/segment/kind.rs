//! The ring kind as the public API names it.

use shmchan_ring as ring;

/// SPSC or MPMC, as stored in the ring header.
///
/// ```
/// use shmchan::{Channel, RingKind};
/// let chan = Channel::<u64>::builder().mpmc().create()?;
/// assert_eq!(chan.kind(), RingKind::Mpmc);
/// assert_eq!(RingKind::Spsc.to_string(), "SPSC");
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RingKind {
    /// One sender and one receiver (Lamport ring).
    Spsc,
    /// Any number of senders and receivers (per-slot sequence stamps).
    Mpmc,
}

impl RingKind {
    pub(crate) fn to_ring(self) -> ring::RingKind {
        match self {
            RingKind::Spsc => ring::RingKind::Spsc,
            RingKind::Mpmc => ring::RingKind::Mpmc,
        }
    }

    pub(crate) fn from_ring(kind: ring::RingKind) -> RingKind {
        match kind {
            ring::RingKind::Spsc => RingKind::Spsc,
            _ => RingKind::Mpmc,
        }
    }
}

impl std::fmt::Display for RingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RingKind::Spsc => "SPSC",
            RingKind::Mpmc => "MPMC",
        })
    }
}
