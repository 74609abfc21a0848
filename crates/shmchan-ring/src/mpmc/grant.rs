//! Zero-copy grants of the [MPMC ring](super): slots claimed to write or read in place.

use core::fmt;
use core::ptr::NonNull;

use super::{MpmcConsumer, MpmcProducer};
use crate::raw::copy_record;

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

    /// Number of claimed slots.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `len() == 0`.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record of claimed slot `i` (`record_size` writable bytes, aligned to
    /// `record_align`), valid until the grant is committed or dropped.
    ///
    /// # Panics
    /// If `i >= len()`.
    #[inline]
    pub fn slot(&self, i: usize) -> NonNull<u8> {
        assert!(i < self.len, "slot {i} out of a grant of {}", self.len);
        self.producer.core.record(self.start + i as u64)
    }

    /// Copies `record` into slot `i`.
    ///
    /// # Panics
    /// If `i >= len()` or `record.len() != record_size`.
    pub fn write(&mut self, i: usize, record: &[u8]) {
        let rs = self.producer.core.record_size;
        assert_eq!(record.len(), rs, "record length");
        let dst = self.slot(i);
        // SAFETY: slot i is claimed by this grant (owned for writing) and holds rs bytes;
        // `record` holds rs readable bytes.
        unsafe { copy_record(record.as_ptr(), dst.as_ptr(), rs) }
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

    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `len() == 0`.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th record (`record_size` readable bytes, aligned to `record_align`; read-only
    /// use), valid until the grant is released or dropped.
    ///
    /// # Panics
    /// If `i >= len()`.
    #[inline]
    pub fn slot(&self, i: usize) -> NonNull<u8> {
        assert!(i < self.len, "slot {i} out of a grant of {}", self.len);
        self.consumer.core.record(self.start + i as u64)
    }

    /// Copies record `i` into `out`.
    ///
    /// # Panics
    /// If `i >= len()` or `out.len() != record_size`.
    pub fn read(&self, i: usize, out: &mut [u8]) {
        let rs = self.consumer.core.record_size;
        assert_eq!(out.len(), rs, "buffer length");
        let src = self.slot(i);
        // SAFETY: record i is published and claimed by this grant until release; `out` holds
        // rs writable bytes.
        unsafe { copy_record(src.as_ptr(), out.as_mut_ptr(), rs) }
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
