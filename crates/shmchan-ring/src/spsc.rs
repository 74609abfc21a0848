//! SPSC: a Lamport ring in which each endpoint caches the peer's cursor (rtrb's design,
//! `rtrb/src/lib.rs`).
//!
//! Positions are monotonically increasing `u64` (wrapping); slot index = `pos & (slots - 1)`,
//! and the producer stays at most `capacity` (≤ slots) positions ahead of the consumer.
//! The producer owns the tail cursor, the consumer the head cursor; each keeps its own cursor in
//! its handle (`tail`/`head`, written to shared memory with Release after every publish) and a
//! cached copy of the peer's cursor, reloaded with Acquire only when the cache says full (producer)
//! or empty (consumer). On the fast path an operation touches no line the peer writes.
//!
//! The mailbox: a one-record publish of a small record (at most
//! [`MAILBOX_MAX`](crate::layout::MAILBOX_MAX) bytes, whole words) also copies the record into
//! the producer cursor's line, and a consumer whose look at that cursor finds exactly one new
//! record takes it from there (a seqlock read) instead of fetching the slot's line: a waiting
//! reader's round trip then moves one cache line each way, as in a ring whose reader polls a
//! stamp in the slot, while the slots stay dense records for batches and zero copy. The slot
//! always holds the record too; the layout module says how a torn or stale mailbox is told
//! apart, and `spsc/mailbox.rs` holds the protocol's two halves.
//!
//! A reloaded peer cursor is validated: `tail - head > capacity` (wrapping) can only be written
//! by a broken or hostile peer and is reported as `Corrupted`. A peer can still make the ring
//! hand out stale or overwritten records, but every slot index is reduced below the capacity, so nothing it writes
//! leads out of the region.
//!
//! Grants: [`SpscProducer::try_reserve`] hands out slots to write in place; [`WriteGrant::commit`]
//! publishes them with one cursor store, and dropping the grant uncommitted publishes nothing.
//! [`SpscConsumer::try_peek`] hands out records to read in place; [`ReadGrant::release`] frees
//! them, and dropping the grant unreleased leaves them in the ring.

use core::fmt;
use core::ptr::NonNull;

use crate::error::{PopError, PushError};
use crate::handle::{grant_accessors, handle_accessors};
use crate::raw::{copy_record, Core};

mod mailbox;
use crate::sync::{prefetch_read, prefetch_write, Ordering, CACHE_LINE};
pub(crate) use mailbox::words as mailbox_words;

/// Copies `n` records from `src` into the slots of positions `start..start + n`.
///
/// # Safety
/// `src` is valid for reads of `n * record_size` bytes, `n ≤ capacity`, and the caller owns
/// those slots for writing.
#[inline]
unsafe fn copy_in(core: &Core, start: u64, src: *const u8, n: u64) {
    let rs = core.record_size;
    if core.stride == rs {
        // Records are contiguous: at most two memcpys (before and after the wrap point).
        for i in 0..n {
            core.tracker(start + i).write();
        }
        let first = n.min(core.lap - (start & core.mask)) as usize;
        // SAFETY: slots from `start`'s index up to the end of the slot array are `first`
        // contiguous records inside the region (Core invariant, stride == record_size); the rest
        // start at slot 0. `src` holds n records (caller contract); the caller owns the slots.
        unsafe {
            copy_record(src, core.slot(start).as_ptr(), first * rs);
            let rest = n as usize - first;
            if rest > 0 {
                copy_record(src.add(first * rs), core.slot(0).as_ptr(), rest * rs);
            }
        }
    } else {
        for i in 0..n {
            // SAFETY: record i of `src` is readable (caller contract); the caller owns the slot.
            unsafe { core.write_record(start + i, src.add(i as usize * rs)) };
        }
    }
}

/// Copies the records of positions `start..start + n` into `dst`.
///
/// # Safety
/// `dst` is valid for writes of `n * record_size` bytes, `n ≤ capacity`, and the caller owns
/// those slots for reading.
#[inline]
unsafe fn copy_out(core: &Core, start: u64, dst: *mut u8, n: u64) {
    let rs = core.record_size;
    if core.stride == rs {
        for i in 0..n {
            core.tracker(start + i).read();
        }
        let first = n.min(core.lap - (start & core.mask)) as usize;
        // SAFETY: as in `copy_in`, with source and destination swapped.
        unsafe {
            copy_record(core.slot(start).as_ptr(), dst, first * rs);
            let rest = n as usize - first;
            if rest > 0 {
                copy_record(core.slot(0).as_ptr(), dst.add(first * rs), rest * rs);
            }
        }
    } else {
        for i in 0..n {
            // SAFETY: record i of `dst` is writable (caller contract); the caller owns the slot.
            unsafe { core.read_record(start + i, dst.add(i as usize * rs)) };
        }
    }
}

/// The most bytes of slots a producer prefetches after a batch (see
/// [`SpscProducer::prefetch_next`]): a few lines, well inside any L1 cache.
const PREFETCH_MAX_BYTES: u64 = 1024;

/// Prefetches, for writing, every cache line of the `len` bytes of slots from `start` (`len`
/// bytes from `start` lie inside the slot array).
#[inline]
fn prefetch_run(start: NonNull<u8>, len: u64) {
    let mut off = 0;
    while off < len {
        prefetch_write(start.as_ptr().wrapping_add(off as usize));
        off += CACHE_LINE;
    }
}

/// The one-record paths' prefetch. At about one position per cache line of slots
/// ([`Core::prefetch_mask`]) it asks the CPU, through `prefetch`, for the slot
/// [`PREFETCH_AHEAD_BYTES`](crate::raw::PREFETCH_AHEAD_BYTES) beyond `pos`, but only if that
/// position is among the `owned` positions from `pos` on that are ours: free slots for the
/// producer, published records for the consumer. So a line the other side may still be using
/// is never pulled away from it, and near empty or near full (where a prefetch could only steal
/// a line) nothing is asked. A hint only: it changes no memory and cannot fault.
///
/// Why: crossing into a new line is where a streaming side stalls on a cross-core transfer (the
/// producer waits for ownership of a line the consumer read a lap ago; the consumer waits for a
/// line the producer wrote). Asking a few lines early overlaps those transfers with the records
/// in between. On the two-thread `throughput` bench it took our one-record rate from about
/// rtrb's to about 1.5× it.
#[inline(always)]
fn prefetch_ahead(core: &Core, pos: u64, owned: u64, prefetch: fn(*const u8)) {
    if pos & core.prefetch_mask == 0 && owned > core.prefetch_ahead {
        prefetch(core.slot(pos.wrapping_add(core.prefetch_ahead)).as_ptr());
    }
}

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
    /// `size_of::<T>()` (the caller compared them with the validated config, see
    /// [`RawRing::config`](crate::RawRing::config); every SPSC ring this crate creates has its
    /// records back to back).
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
        prefetch_ahead(&self.core, tail, self.free(), prefetch_write);
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
        if self.core.mbox_words != 0 {
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
        prefetch_ahead(&self.core, self.tail, self.free(), prefetch_write);
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
    /// (see [`SpscProducer::try_push_of`]). A zero-sized `T` means no such knowledge.
    ///
    /// # Safety
    /// As for [`SpscProducer::try_push_of`].
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
            if tail == head.wrapping_add(1) && self.core.mbox_words != 0 {
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
    /// computed for records of a sized `T` (see [`SpscProducer::try_push_of`]).
    ///
    /// # Safety
    /// As for [`SpscProducer::try_push_of`].
    #[inline]
    pub unsafe fn next_ready_of<T>(&mut self) -> Result<NonNull<u8>, PopError> {
        // SAFETY: forwarded caller contract.
        let record = unsafe { self.ready_one::<T>() }?;
        // As `grant` does: the caller reads the record after a return path.
        prefetch_read(record.as_ptr());
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
