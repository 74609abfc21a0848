//! The SPSC consumer: its handle and its read grants (see the module docs of `spsc`).

use core::fmt;
use core::ptr::NonNull;

use super::{copy_out, mailbox, prefetch_ahead};
use crate::error::PopError;
use crate::handle::{grant_accessors, handle_accessors};
use crate::raw::{copy_record, Core};
use crate::sync::{prefetch_read, Ordering};

/// The consumer end of an SPSC ring. Built by
/// [`RawRing::spsc_consumer`](crate::RawRing::spsc_consumer).
pub struct SpscConsumer {
    core: Core,
    /// Our cursor: the next position to read (the shared head is only ever a copy of it).
    head: u64,
    /// The producer's cursor as last loaded; `cached_tail - head ≤ capacity` always holds.
    cached_tail: u64,
}

// SAFETY: as for SpscProducer: the handle owns the consumer role and holds pointers into the
// shared region and plain integers.
unsafe impl Send for SpscConsumer {}
// SAFETY: `&self` methods only perform atomic loads and read local integers.
unsafe impl Sync for SpscConsumer {}

impl fmt::Debug for SpscConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscConsumer")
            .field("head", &self.head)
            .field("cached_tail", &self.cached_tail)
            .field("ring", &self.core.ring)
            .finish()
    }
}

impl SpscConsumer {
    pub(crate) fn new(core: Core) -> Self {
        // Relaxed: our own cursor (see SpscProducer::new).
        let head = core.head().load(Ordering::Relaxed);
        // A cache that says "empty" forces a validated reload on first use.
        SpscConsumer {
            core,
            head,
            cached_tail: head,
        }
    }

    /// Reloads the producer's cursor and validates it.
    #[inline]
    fn refresh_tail(&mut self) -> Result<(), PopError> {
        let tail = self.load_tail();
        self.take_tail(tail)
    }

    /// The producer's cursor, as a look loads it.
    #[inline(always)]
    fn load_tail(&self) -> u64 {
        // SYNC(spsc-publish): pairs with the producer's Release store in `publish`; its slot
        // writes happen before our reads.
        self.core.tail().load(Ordering::Acquire)
    }

    /// Validates a producer cursor a look loaded and caches it.
    #[inline(always)]
    fn take_tail(&mut self, tail: u64) -> Result<(), PopError> {
        if tail.wrapping_sub(self.head) > self.core.capacity {
            return Err(PopError::Corrupted);
        }
        self.cached_tail = tail;
        Ok(())
    }

    #[inline(always)]
    fn avail(&self) -> u64 {
        self.cached_tail.wrapping_sub(self.head)
    }

    /// The records this consumer knows are ready without looking at the producer's cursor:
    /// what its last look showed, less what it took since. A pop or peek with none known
    /// looks (one load of the producer's cursor line).
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
    /// // SAFETY: the only producer and the only consumer of this ring.
    /// let (mut tx, mut rx) = unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
    /// tx.try_push(&[1; 8]).unwrap();
    /// tx.try_push(&[2; 8]).unwrap();
    /// assert_eq!(rx.known_ready(), 0); // it has not looked yet
    /// rx.try_pop(&mut [0; 8]).unwrap(); // looks: two ready, takes one
    /// assert_eq!(rx.known_ready(), 1);
    /// drop((tx, rx));
    /// unsafe { dealloc(base.as_ptr(), mem) };
    /// ```
    #[inline(always)]
    pub fn known_ready(&self) -> u64 {
        self.avail()
    }

    /// The position of the next record popped (or peeked one at a time): this consumer's
    /// cursor, whether the record is read from its slot or from the mailbox (see
    /// [`SpscProducer::position`](super::SpscProducer::position)).
    #[inline(always)]
    pub fn position(&self) -> u64 {
        self.head
    }

    /// Ready records, reloading the producer's cursor only if the cache shows fewer than `want`.
    #[inline]
    fn ready_for(&mut self, want: u64) -> Result<u64, PopError> {
        let avail = self.avail();
        if avail >= want {
            return Ok(avail);
        }
        self.refresh_tail()?;
        Ok(self.avail())
    }

    /// Frees every position below `new_head`.
    #[inline(always)]
    fn release_to(&mut self, new_head: u64) {
        self.head = new_head;
        // SYNC(spsc-release): pairs with the producer's Acquire load in `refresh_head`; our slot
        // reads happen before its overwrites.
        self.core.head().store(new_head, Ordering::Release);
    }

    /// Pops one record by letting `read` read the slot in place (`record_size` bytes at the
    /// pointer, aligned to `record_align`); returns what `read` returns. If `read` panics the
    /// record stays in the ring.
    ///
    /// To copy out a record of more than 16 bytes, copy it into memory of your own inside
    /// `read` and return `()`: a record returned as `R` comes back in a `Result<R, PopError>`,
    /// which the optimizer may split into parts it copies the record through one by one (a
    /// 64-byte record streamed across processes ran at half the rate that way).
    #[inline(always)]
    pub fn try_pop_with<R>(&mut self, read: impl FnOnce(NonNull<u8>) -> R) -> Result<R, PopError> {
        // SAFETY: `()` is no sized record type: the ring's own sizes are used.
        unsafe { self.try_pop_of::<(), R>(read) }
    }

    /// [`try_pop_with`](Self::try_pop_with) for a caller whose records are `T`s: the record's
    /// address and a mailbox copy are computed with the record size known at compile time
    /// (see [`SpscProducer::try_push_of`](super::SpscProducer::try_push_of)). A zero-sized `T`
    /// means no such knowledge.
    ///
    /// # Safety
    /// As for [`SpscProducer::try_push_of`](super::SpscProducer::try_push_of).
    #[inline(always)]
    pub unsafe fn try_pop_of<T, R>(
        &mut self,
        read: impl FnOnce(NonNull<u8>) -> R,
    ) -> Result<R, PopError> {
        // SAFETY: forwarded caller contract.
        let record = unsafe { self.ready_one::<T>() }?;
        let r = read(record);
        self.release_to(self.head.wrapping_add(1));
        Ok(r)
    }

    /// The one-record take's look: the position of the next record, when one is ready (the
    /// producer's cursor loaded only when none is known), with its tracker read and the
    /// prefetch ahead; nothing freed.
    ///
    /// The record's pointer is its slot's, or, when the look found exactly one new record
    /// and the mailbox holds it, the consumer line's copy of it (the waiting reader's case:
    /// the record came with the cursor's line; see the layout module).
    ///
    /// # Safety
    /// As for `try_pop_of`.
    #[inline(always)]
    unsafe fn ready_one<T>(&mut self) -> Result<NonNull<u8>, PopError> {
        let head = self.head;
        if head == self.cached_tail {
            // `refresh_tail` with the empty answer first: a look that finds nothing stores
            // nothing (a waiting take looks in a loop).
            let tail = self.load_tail();
            if tail == head {
                return Err(PopError::Empty);
            }
            self.take_tail(tail)?;
            // SAFETY: a sized `T` is the ring's record (caller contract).
            if tail == head.wrapping_add(1) && unsafe { mailbox::has::<T>(&self.core) } {
                // SAFETY: this handle is the ring's consumer, and its Acquire look found the
                // cursor at `head + 1`; the copy it may hand out before was released (the
                // record at `head - 1` was freed before this look).
                if let Some(record) = unsafe { mailbox::take::<T>(&self.core, head) } {
                    self.core.tracker(head).read();
                    return Ok(record);
                }
            }
        }
        self.core.tracker(head).read();
        prefetch_ahead(&self.core, head, self.avail(), prefetch_read);
        // SAFETY: forwarded caller contract.
        Ok(unsafe { self.core.spsc_record::<T>(head) })
    }

    /// Pops one record into `out` (exactly `record_size` bytes).
    #[inline]
    pub fn try_pop(&mut self, out: &mut [u8]) -> Result<(), PopError> {
        let rs = self.core.record_size;
        if out.len() != rs {
            return Err(PopError::WrongLength {
                expected: rs,
                got: out.len(),
            });
        }
        self.try_pop_with(|slot| {
            // SAFETY: the slot holds rs published bytes we own for reading until release; `out`
            // holds rs writable bytes.
            unsafe { copy_record(slot.as_ptr(), out.as_mut_ptr(), rs) }
        })
    }

    /// Pops as many whole records as fit in `out` and are ready, with one cursor store; returns
    /// how many (0 if empty, corrupted, or `out` holds no whole record).
    #[inline]
    pub fn pop_batch(&mut self, out: &mut [u8]) -> usize {
        self.try_pop_batch(out).unwrap_or(0)
    }

    /// [`pop_batch`](Self::pop_batch) that tells `Empty` from `Corrupted`. Returns `Ok(0)` only
    /// when `out` holds no whole record.
    pub fn try_pop_batch(&mut self, out: &mut [u8]) -> Result<usize, PopError> {
        let want = self.core.records_in(out.len()) as u64;
        if want == 0 {
            return Ok(0);
        }
        let n = want.min(self.ready_for(want)?);
        if n == 0 {
            return Err(PopError::Empty);
        }
        // SAFETY: `out` holds `want ≥ n` records; the n ready records are ours until release.
        unsafe { copy_out(&self.core, self.head, out.as_mut_ptr(), n) };
        self.release_to(self.head.wrapping_add(n));
        Ok(n as usize)
    }

    /// Gives exactly `n` ready records to read in place (`Empty` if fewer are ready).
    /// `n == 0` gives an empty grant.
    #[inline]
    pub fn try_peek(&mut self, n: usize) -> Result<ReadGrant<'_>, PopError> {
        let want = n as u64;
        if want > self.core.capacity {
            return Err(PopError::Empty);
        }
        if self.ready_for(want)? < want {
            return Err(PopError::Empty);
        }
        Ok(self.grant(n))
    }

    /// Gives up to `n` ready records (0 if empty or corrupted).
    #[inline]
    pub fn peek_up_to(&mut self, n: usize) -> ReadGrant<'_> {
        let want = (n as u64).min(self.core.capacity);
        let k = self.ready_for(want).map_or(0, |avail| avail.min(want));
        self.grant(k as usize)
    }

    /// The grant that [`ReadGrant::detach`] made `d` of. A `d` that is not this consumer's
    /// latest peek (its position is not the next to read, or it holds more records than
    /// are ready) gives an empty grant: releasing it frees nothing.
    #[inline]
    pub fn reattach(&mut self, d: crate::Detached) -> ReadGrant<'_> {
        let len = if d.start == self.head && d.len as u64 <= self.avail() {
            d.len
        } else {
            0
        };
        ReadGrant {
            consumer: self,
            len,
        }
    }

    /// The next record, when one is ready: its pointer (`record_size` readable bytes, aligned
    /// to `record_align`), for a caller that reads it in place and then frees it with
    /// [`release_one`](Self::release_one) — the one-record form of
    /// [`try_peek`](Self::try_peek)`(1)` for a layer that keeps track of its peek itself.
    /// Nothing is held: the record is the one at this consumer's cursor, published until this
    /// consumer frees it.
    #[inline]
    pub fn next_ready(&mut self) -> Result<NonNull<u8>, PopError> {
        // SAFETY: `()` is no sized record type.
        unsafe { self.next_ready_of::<()>() }
    }

    /// [`next_ready`](Self::next_ready) with the record's address and a mailbox copy
    /// computed for records of a sized `T` (see
    /// [`SpscProducer::try_push_of`](super::SpscProducer::try_push_of)).
    ///
    /// # Safety
    /// As for [`SpscProducer::try_push_of`](super::SpscProducer::try_push_of).
    #[inline]
    pub unsafe fn next_ready_of<T>(&mut self) -> Result<NonNull<u8>, PopError> {
        let looks = self.avail() == 0;
        // SAFETY: forwarded caller contract.
        let record = unsafe { self.ready_one::<T>() }?;
        if looks {
            // As `grant` does: the caller reads the record after a return path, which is
            // long when it waited. Not for a record this consumer knew was ready (a caller
            // that reads it at once, a stream's: its line was asked for ahead, and the hint
            // would be one instruction more per record for nothing).
            prefetch_read(record.as_ptr());
        }
        Ok(record)
    }

    /// Frees the record [`next_ready`](Self::next_ready) gave.
    ///
    /// # Safety
    /// `next_ready` returned `Ok` since this consumer last freed a record (by any call), so
    /// the record at its cursor is published and not yet freed.
    #[inline]
    pub unsafe fn release_one(&mut self) {
        debug_assert!(self.head != self.cached_tail);
        self.core.tracker(self.head).read();
        self.release_to(self.head.wrapping_add(1));
    }

    #[inline]
    fn grant(&mut self, len: usize) -> ReadGrant<'_> {
        for i in 0..len as u64 {
            self.core.tracker(self.head.wrapping_add(i)).read();
        }
        if len > 0 {
            // The caller reads the records after this call returns, through a return path
            // that can be long (a blocking peek's wait): asked for now, the first record's
            // line travels while that path runs instead of after it. A cache miss less per
            // round trip of a record read in place, and on a stream whose consumer runs
            // close behind its producer, where `prefetch_ahead` has nothing to ask for.
            prefetch_read(self.core.slot(self.head).as_ptr());
        }
        // As the one-record pop does: ready records are ours to read ahead.
        prefetch_ahead(&self.core, self.head, self.avail(), prefetch_read);
        ReadGrant {
            consumer: self,
            len,
        }
    }

    handle_accessors! {
        /// Rings the producers' doorbell: returns how many tokens the doorbell layer must post
        /// (`room_cell().take_tokens()`; see [`crate::wait`]). Call once after every release.
        wake_producers: room_cell
    }
}

/// Records handed out by an [`SpscConsumer`] to read in place, freed by
/// [`release`](Self::release). Dropping the grant unreleased leaves the records in the ring.
pub struct ReadGrant<'a> {
    consumer: &'a mut SpscConsumer,
    len: usize,
}

impl fmt::Debug for ReadGrant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadGrant")
            .field("start", &self.consumer.head)
            .field("len", &self.len)
            .finish()
    }
}

impl ReadGrant<'_> {
    grant_accessors!(read, handle: consumer, start: consumer.head);

    /// Ends the borrow and keeps the records (see [`crate::Detached`]):
    /// [`SpscConsumer::reattach`] gives the grant back.
    #[inline]
    pub fn detach(self) -> crate::Detached {
        crate::Detached {
            start: self.consumer.head,
            len: self.len,
        }
    }

    /// Frees every record (one cursor store).
    #[inline]
    pub fn release(self) {
        let n = self.len;
        self.release_first(n);
    }

    /// Frees the first `k` records (clamped to `len()`); the rest stay in the ring.
    #[inline]
    pub fn release_first(self, k: usize) {
        let k = k.min(self.len) as u64;
        let c = self.consumer;
        for i in 0..k {
            c.core.tracker(c.head.wrapping_add(i)).read();
        }
        c.release_to(c.head.wrapping_add(k));
    }
}
