//! The SPSC producer: its handle and its write grants (see the module docs of `spsc`).

use core::fmt;
use core::ptr::NonNull;

use super::{copy_in, mailbox, prefetch_ahead_for_write, prefetch_run, PREFETCH_MAX_BYTES};
use crate::error::PushError;
use crate::handle::{grant_accessors, handle_accessors};
use crate::raw::{copy_record, Core};
use crate::sync::Ordering;

/// The producer end of an SPSC ring. Built by
/// [`RawRing::spsc_producer`](crate::RawRing::spsc_producer).
pub struct SpscProducer {
    core: Core,
    /// Our cursor: the next position to write (the shared tail is only ever a copy of it).
    tail: u64,
    /// The consumer's cursor as last loaded plus capacity: the first position we may not write
    /// yet. `0 ≤ limit - tail ≤ capacity` always holds (wrapping).
    limit: u64,
}

// SAFETY: the handle owns the producer role (RawRing::spsc_producer's contract) and holds only
// pointers into the shared region (see RawRing's Send impl) and plain integers.
unsafe impl Send for SpscProducer {}
// SAFETY: `&self` methods only perform atomic loads and read local integers.
unsafe impl Sync for SpscProducer {}

impl fmt::Debug for SpscProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscProducer")
            .field("tail", &self.tail)
            .field("limit", &self.limit)
            .field("ring", &self.core.ring)
            .finish()
    }
}

impl SpscProducer {
    pub(crate) fn new(core: Core) -> Self {
        // Relaxed: our own cursor, last written by a previous producer handle (a hand-over
        // between processes is ordered by the upper layer's endpoint handshake).
        let tail = core.tail().load(Ordering::Relaxed);
        mailbox::forget(&core);
        // A cache that says "full" forces a validated reload on first use.
        SpscProducer {
            core,
            tail,
            limit: tail,
        }
    }

    /// The position the next record pushed (or slot reserved one at a time) takes: this
    /// producer's cursor. Its slot is the one [`next_free`](Self::next_free) gives; an upper
    /// layer that keeps something per position beside the slots (a length, say) indexes it
    /// with this, masked by the slot count ([`RingInfo::slots`](crate::RingInfo::slots)).
    #[inline(always)]
    pub fn position(&self) -> u64 {
        self.tail
    }

    /// Reloads the consumer's cursor and validates it.
    #[inline]
    fn refresh_head(&mut self) -> Result<(), PushError> {
        // SYNC(spsc-release): pairs with the consumer's Release store in `release_to`; the
        // consumer's reads of the slots it freed happen before we overwrite them.
        let head = self.core.head().load(Ordering::Acquire);
        if self.tail.wrapping_sub(head) > self.core.capacity {
            return Err(PushError::Corrupted);
        }
        self.limit = head.wrapping_add(self.core.capacity);
        Ok(())
    }

    #[inline(always)]
    fn free(&self) -> u64 {
        self.limit.wrapping_sub(self.tail)
    }

    /// Free slots, reloading the consumer's cursor only if the cache shows fewer than `want`.
    #[inline]
    fn room_for(&mut self, want: u64) -> Result<u64, PushError> {
        let free = self.free();
        if free >= want {
            return Ok(free);
        }
        self.refresh_head()?;
        Ok(self.free())
    }

    /// Publishes every position below `new_tail`.
    #[inline(always)]
    fn publish(&mut self, new_tail: u64) {
        self.tail = new_tail;
        // SYNC(spsc-publish): pairs with the consumer's Acquire load in `refresh_tail`; our slot
        // writes happen before its reads.
        self.core.tail().store(new_tail, Ordering::Release);
    }

    /// Pushes one record by letting `write` fill the slot in place (`record_size` bytes at the
    /// pointer, aligned to `record_align`); returns what `write` returns.
    ///
    /// This is the typed layer's fast path: `write` typically does `ptr.cast::<T>().write(v)`.
    /// If `write` panics nothing is published.
    #[inline(always)]
    pub fn try_push_with<R>(
        &mut self,
        write: impl FnOnce(NonNull<u8>) -> R,
    ) -> Result<R, PushError> {
        // SAFETY: `()` is no sized record type: the ring's own sizes are used.
        unsafe { self.try_push_of::<(), R>(write) }
    }

    /// [`try_push_with`](Self::try_push_with) for a caller whose records are `T`s: the slot's
    /// address and the mailbox's copy are computed with the record size known at compile time
    /// instead of the ring's stride and mailbox size loaded at run time (a typed channel's
    /// 8-byte `try_send` in 52 instructions instead of 61.5, counted under callgrind). A
    /// zero-sized `T` means no such knowledge: the ring's sizes are used.
    ///
    /// # Safety
    /// Unless `T` is zero-sized, the ring's record size and slot stride are both
    /// `size_of::<T>()` and its record alignment is `align_of::<T>()` (the caller compared
    /// them with the validated config, see [`RawRing::config`](crate::RawRing::config); every
    /// SPSC ring this crate creates has its records back to back). Whether the ring has a
    /// mailbox then follows from `T` too, and is not loaded.
    #[inline(always)]
    pub unsafe fn try_push_of<T, R>(
        &mut self,
        write: impl FnOnce(NonNull<u8>) -> R,
    ) -> Result<R, PushError> {
        // SAFETY: forwarded caller contract.
        let record = unsafe { self.next_free_of::<T>() }?;
        let r = write(record);
        // SAFETY: `next_free_of` returned Ok just above, and nothing published since; `record`
        // is the slot it gave; a sized `T` is the ring's record (caller contract).
        unsafe { self.commit_one_at::<T>(record) };
        Ok(r)
    }

    /// Pushes one record (exactly `record_size` bytes).
    #[inline]
    pub fn try_push(&mut self, record: &[u8]) -> Result<(), PushError> {
        let rs = self.core.record_size;
        if record.len() != rs {
            return Err(PushError::WrongLength {
                expected: rs,
                got: record.len(),
            });
        }
        self.try_push_with(|slot| {
            // SAFETY: `record` holds rs readable bytes; the slot holds rs bytes we own for
            // writing until publish.
            unsafe { copy_record(record.as_ptr(), slot.as_ptr(), rs) }
        })
    }

    /// Pushes as many whole records of `records` (concatenated, `record_size` bytes each) as
    /// fit, with one cursor store; returns how many (0 if full, corrupted, or none given).
    #[inline]
    pub fn push_batch(&mut self, records: &[u8]) -> usize {
        self.try_push_batch(records).unwrap_or(0)
    }

    /// [`push_batch`](Self::push_batch) that tells `Full` (none fit) from `Corrupted`.
    /// Returns `Ok(0)` only when `records` holds no whole record.
    pub fn try_push_batch(&mut self, records: &[u8]) -> Result<usize, PushError> {
        let want = self.core.records_in(records.len()) as u64;
        if want == 0 {
            return Ok(0);
        }
        let n = want.min(self.room_for(want)?);
        if n == 0 {
            return Err(PushError::Full);
        }
        // SAFETY: `records` holds `want ≥ n` records; n ≤ free slots, which we own until publish.
        unsafe { copy_in(&self.core, self.tail, records.as_ptr(), n) };
        self.publish(self.tail.wrapping_add(n));
        self.prefetch_next(n);
        Ok(n as usize)
    }

    /// Asks the CPU to fetch, for writing, the free slots the next batch of `n` records will
    /// likely fill (at most [`PREFETCH_MAX_BYTES`]), so that their cache lines — last read by
    /// the consumer, one lap ago — are owned again by the time the next `push_batch` copies into
    /// them, instead of every store of that copy waiting for an ownership transfer. A pure hint:
    /// only free slots (ours to write; the consumer no longer reads them) are touched, and it
    /// changes no memory.
    #[inline]
    fn prefetch_next(&self, n: u64) {
        let stride = self.core.stride as u64;
        let k = n.min(self.free()).min(PREFETCH_MAX_BYTES / stride);
        if k == 0 {
            return;
        }
        // At most two contiguous runs of slots: up to the end of the slot array, then from 0.
        let first = k.min(self.core.lap - (self.tail & self.core.mask));
        prefetch_run(self.core.slot(self.tail), first * stride);
        if k > first {
            prefetch_run(self.core.slot(0), (k - first) * stride);
        }
    }

    /// Free slots this producer knows of without looking at the consumer's cursor (what its
    /// last look showed, less what it wrote since): a lower bound of the free room.
    ///
    /// ```
    /// use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
    /// use std::ptr::NonNull;
    /// use shmchan_ring::{Layout, RawRing, RingConfig, RingKind};
    ///
    /// let cfg = RingConfig::new(RingKind::Spsc, 4, 8, 8);
    /// let len = Layout::new(&cfg).unwrap().total_len as usize;
    /// let mem = AllocLayout::from_size_align(len, 128).unwrap();
    /// let base = NonNull::new(unsafe { alloc_zeroed(mem) }).unwrap();
    /// // SAFETY: fresh zeroed allocation of `len` bytes, 128-aligned, freed after the last use.
    /// let ring = unsafe { RawRing::init(base, len, &cfg) }.unwrap();
    /// // SAFETY: the only producer of this ring.
    /// let mut tx = unsafe { ring.spsc_producer().unwrap() };
    /// tx.try_push(&[1; 8]).unwrap();
    /// assert_eq!(tx.known_room(), 3); // it looked once, for the first push
    /// drop(tx);
    /// unsafe { dealloc(base.as_ptr(), mem) };
    /// ```
    #[inline(always)]
    pub fn known_room(&self) -> u64 {
        self.free()
    }

    /// Reserves exactly `n` slots to write in place (`Full` if fewer are free, including when
    /// `n > capacity`). `n == 0` gives an empty grant.
    #[inline]
    pub fn try_reserve(&mut self, n: usize) -> Result<WriteGrant<'_>, PushError> {
        let want = n as u64;
        if want > self.core.capacity {
            return Err(PushError::Full);
        }
        if self.room_for(want)? < want {
            return Err(PushError::Full);
        }
        Ok(self.grant(n))
    }

    /// Reserves up to `n` slots (as many as are free; 0 if full or corrupted).
    #[inline]
    pub fn reserve_up_to(&mut self, n: usize) -> WriteGrant<'_> {
        let want = (n as u64).min(self.core.capacity);
        let k = self.room_for(want).map_or(0, |free| free.min(want));
        self.grant(k as usize)
    }

    /// The grant that [`WriteGrant::detach`] made `d` of. A `d` that is not this producer's
    /// latest reservation (its position is not the next to write, or it holds more slots
    /// than are free) gives an empty grant: committing it publishes nothing.
    #[inline]
    pub fn reattach(&mut self, d: crate::Detached) -> WriteGrant<'_> {
        let len = if d.start == self.tail && d.len as u64 <= self.free() {
            d.len
        } else {
            0
        };
        WriteGrant {
            producer: self,
            len,
        }
    }

    /// The next slot to write, when one is free: its record's pointer (`record_size` writable
    /// bytes, aligned to `record_align`), for a caller that writes the record in place and
    /// then publishes it with [`commit_one`](Self::commit_one) — the one-record form of
    /// [`try_reserve`](Self::try_reserve)`(1)` for a layer that keeps track of its
    /// reservation itself. Nothing is held: the slot is the one at this producer's cursor,
    /// free until this producer publishes it.
    #[inline]
    pub fn next_free(&mut self) -> Result<NonNull<u8>, PushError> {
        // SAFETY: `()` is no sized record type.
        unsafe { self.next_free_of::<()>() }
    }

    /// [`next_free`](Self::next_free) with the record's address computed for records of a
    /// sized `T` (see [`try_push_of`](Self::try_push_of)).
    ///
    /// # Safety
    /// As for `try_push_of`.
    #[inline(always)]
    pub unsafe fn next_free_of<T>(&mut self) -> Result<NonNull<u8>, PushError> {
        if self.tail == self.limit {
            self.refresh_head()?;
            if self.free() == 0 {
                return Err(PushError::Full);
            }
        }
        let tail = self.tail;
        self.core.tracker(tail).write();
        prefetch_ahead_for_write(&self.core, tail, self.free());
        // SAFETY: forwarded caller contract.
        Ok(unsafe { self.core.spsc_record::<T>(tail) })
    }

    /// Publishes the slot [`next_free`](Self::next_free) gave.
    ///
    /// # Safety
    /// `next_free` returned `Ok` since this producer last published (by any call), so the
    /// slot at its cursor is free.
    #[inline]
    pub unsafe fn commit_one(&mut self) {
        let record = self.core.record(self.tail);
        // SAFETY: forwarded caller contract; `record` is the slot at the cursor.
        unsafe { self.commit_one_at::<()>(record) }
    }

    /// [`commit_one`](Self::commit_one) for a caller whose records are `T`s (see
    /// [`try_push_of`](Self::try_push_of)) and that has the record's pointer at hand: the
    /// mailbox copy with the record size known at compile time.
    ///
    /// # Safety
    /// As for `commit_one`, as for `try_push_of`, and `record` is the pointer that
    /// [`next_free_of`](Self::next_free_of)`::<T>` (or [`next_free`](Self::next_free)) gave.
    #[inline(always)]
    pub unsafe fn commit_one_of<T>(&mut self, record: NonNull<u8>) {
        // SAFETY: forwarded caller contract.
        unsafe { self.commit_one_at::<T>(record) }
    }

    /// [`commit_one`](Self::commit_one) for a caller that has the record's pointer at hand.
    ///
    /// # Safety
    /// As for `commit_one`, and `record` is `self.core.spsc_record::<T>(self.tail)`, whose
    /// contract holds.
    #[inline(always)]
    unsafe fn commit_one_at<T>(&mut self, record: NonNull<u8>) {
        debug_assert!(self.tail != self.limit);
        let tail = self.tail;
        self.core.tracker(tail).write();
        // SAFETY: a sized `T` is the ring's record (caller contract).
        if unsafe { mailbox::has::<T>(&self.core) } {
            // SAFETY: this handle is the ring's producer, and `record` is the slot of `tail`,
            // written and not yet published (caller contract).
            unsafe { mailbox::fill::<T>(&self.core, tail, record) };
        }
        self.publish(tail.wrapping_add(1));
    }

    #[inline]
    fn grant(&mut self, len: usize) -> WriteGrant<'_> {
        for i in 0..len as u64 {
            self.core.tracker(self.tail.wrapping_add(i)).write();
        }
        // As the one-record push does: the grant's slots are ours, and so is what `free` counts.
        prefetch_ahead_for_write(&self.core, self.tail, self.free());
        WriteGrant {
            producer: self,
            len,
        }
    }

    handle_accessors! {
        /// Rings the consumers' doorbell: returns how many tokens the doorbell layer must post
        /// (`data_cell().take_tokens()`; see [`crate::wait`]). Call once after every publish.
        wake_consumers: data_cell
    }
}

/// Slots reserved by an [`SpscProducer`], written in place and published by
/// [`commit`](Self::commit). Dropping the grant uncommitted publishes nothing.
pub struct WriteGrant<'a> {
    producer: &'a mut SpscProducer,
    len: usize,
}

impl fmt::Debug for WriteGrant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteGrant")
            .field("start", &self.producer.tail)
            .field("len", &self.len)
            .finish()
    }
}

impl WriteGrant<'_> {
    grant_accessors!(write, held: "reserved", handle: producer, start: producer.tail);

    /// Ends the borrow and keeps the reservation (see [`crate::Detached`]):
    /// [`SpscProducer::reattach`] gives the grant back.
    #[inline]
    pub fn detach(self) -> crate::Detached {
        crate::Detached {
            start: self.producer.tail,
            len: self.len,
        }
    }

    /// Publishes every reserved slot (one cursor store).
    #[inline]
    pub fn commit(self) {
        let n = self.len;
        self.commit_first(n);
    }

    /// Publishes the first `k` slots (clamped to `len()`); the rest stay unpublished and free.
    #[inline]
    pub fn commit_first(self, k: usize) {
        let k = k.min(self.len) as u64;
        let p = self.producer;
        for i in 0..k {
            p.core.tracker(p.tail.wrapping_add(i)).write();
        }
        p.publish(p.tail.wrapping_add(k));
    }
}
