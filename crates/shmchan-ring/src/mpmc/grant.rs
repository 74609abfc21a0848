//! Zero-copy grants of the [MPMC ring](super): slots claimed to write or read in place.

use core::fmt;

use super::{MpmcConsumer, MpmcProducer};
use crate::handle::grant_accessors;

/// Slots claimed by an [`MpmcProducer`], written in place and published by
/// [`commit`](Self::commit). The claim cannot be undone: dropping the grant uncommitted
/// publishes its slots as *skipped*, and consumers pass over them.
pub struct WriteGrant<'a> {
    producer: &'a mut MpmcProducer,
    start: u64,
    len: usize,
}

impl fmt::Debug for WriteGrant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteGrant")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl MpmcProducer {
    /// The grant that [`WriteGrant::detach`] made `d` of.
    ///
    /// # Safety
    /// `d` came from a grant of this producer, and has not been reattached since: its slots
    /// are claimed by this producer and not yet published.
    #[inline]
    pub unsafe fn reattach(&mut self, d: crate::Detached) -> WriteGrant<'_> {
        WriteGrant {
            producer: self,
            start: d.start,
            len: d.len,
        }
    }
}

impl MpmcConsumer {
    /// The grant that [`ReadGrant::detach`] made `d` of.
    ///
    /// # Safety
    /// `d` came from a grant of this consumer, and has not been reattached since: its
    /// records are claimed by this consumer and not yet released.
    #[inline]
    pub unsafe fn reattach(&mut self, d: crate::Detached) -> ReadGrant<'_> {
        ReadGrant {
            consumer: self,
            start: d.start,
            len: d.len,
        }
    }
}

impl<'a> WriteGrant<'a> {
    /// The grant of the `len` slots from `start` that `producer` just claimed.
    #[inline]
    pub(super) fn new(producer: &'a mut MpmcProducer, start: u64, len: u64) -> Self {
        for i in 0..len {
            producer.core.tracker(start + i).write();
        }
        WriteGrant {
            producer,
            start,
            len: len as usize,
        }
    }

    grant_accessors!(write, held: "claimed", handle: producer, start: start);

    /// Ends the borrow and keeps the claim (see [`crate::Detached`]):
    /// [`MpmcProducer::reattach`] gives the grant back.
    #[inline]
    pub fn detach(self) -> crate::Detached {
        let d = crate::Detached {
            start: self.start,
            len: self.len,
        };
        // The claim lives on in `d`: no skip on drop.
        core::mem::forget(self);
        d
    }

    /// Publishes every claimed slot.
    #[inline]
    pub fn commit(self) {
        let n = self.len;
        self.commit_first(n);
    }

    /// Publishes the first `k` slots (clamped to `len()`) and the rest as skipped.
    #[inline]
    pub fn commit_first(mut self, k: usize) {
        self.finish(k);
    }

    fn finish(&mut self, k: usize) {
        let core = &self.producer.core;
        for i in 0..self.len {
            let pos = self.start + i as u64;
            if i < k {
                core.publish_slot(pos);
            } else {
                core.skip_slot(pos);
            }
        }
        if let Some(a) = &self.producer.working {
            a.clear();
        }
        self.len = 0;
    }
}

impl Drop for WriteGrant<'_> {
    fn drop(&mut self) {
        if self.len > 0 {
            self.finish(0);
        }
    }
}

/// Records claimed by an [`MpmcConsumer`] to read in place. The claim is final: releasing or
/// dropping the grant frees every slot it holds.
pub struct ReadGrant<'a> {
    consumer: &'a mut MpmcConsumer,
    start: u64,
    len: usize,
}

impl fmt::Debug for ReadGrant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadGrant")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> ReadGrant<'a> {
    /// The grant of the `len` records from `start` that `consumer` just claimed.
    #[inline]
    pub(super) fn new(consumer: &'a mut MpmcConsumer, start: u64, len: u64) -> Self {
        for i in 0..len {
            consumer.core.tracker(start + i).read();
        }
        ReadGrant {
            consumer,
            start,
            len: len as usize,
        }
    }

    grant_accessors!(read, handle: consumer, start: start);

    /// Ends the borrow and keeps the claim (see [`crate::Detached`]):
    /// [`MpmcConsumer::reattach`] gives the grant back.
    #[inline]
    pub fn detach(self) -> crate::Detached {
        let d = crate::Detached {
            start: self.start,
            len: self.len,
        };
        // The claim lives on in `d`: no release on drop.
        core::mem::forget(self);
        d
    }

    /// Frees every claimed slot.
    #[inline]
    pub fn release(self) {}

    /// Frees every claimed slot: an MPMC claim is final, so the records past `k` cannot be
    /// handed back and are dropped too (`k` only exists for symmetry with SPSC). Claim only
    /// what you will consume (`peek_up_to`).
    #[inline]
    pub fn release_first(self, k: usize) {
        let _ = k;
    }
}

impl Drop for ReadGrant<'_> {
    fn drop(&mut self) {
        let core = &self.consumer.core;
        for i in 0..self.len as u64 {
            core.release_slot(self.start + i);
        }
        if self.len > 0 {
            if let Some(a) = &self.consumer.working {
                a.clear();
            }
        }
    }
}
