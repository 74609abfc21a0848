//! [`RawRing`]: a validated view of a ring region, and the creation and opening of regions.

use core::ptr::{addr_of_mut, NonNull};

use crate::error::{Field, KindError, LayoutError, OpenError};
use crate::layout::{
    check_record_params, min_stride, trackers_span, ConsumerLine, Cursors, HeaderSnapshot, Layout,
    ProducerLine, RingConfig, RingHeader, RingInfo, RingKind, CURSORS_LEN, HEADER_LEN,
    INIT_INITIALIZING, INIT_READY, INIT_UNINIT, LAYOUT_VERSION, LINE, MAGIC, MAILBOX_WORDS,
};
use crate::mpmc::{self, MpmcConsumer, MpmcProducer};
use crate::spsc::{SpscConsumer, SpscProducer};
use crate::sync::{self, AtomicU64, Ordering, SlotTracker, CACHE_LINE};
use crate::wait::WaitCell;

/// A validated view of a ring region: the base pointer, the region's length, and the layout
/// validated when the ring was created or opened (a local copy: never re-read from shared memory).
///
/// `RawRing` is `Copy`; handles built from it copy what they need. Nothing here borrows the
/// region: the safety contract of [`RawRing::init`] and [`RawRing::open`] says the region stays
/// mapped while any `RawRing` or handle derived from it lives.
///
/// ```
/// use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
/// use std::ptr::NonNull;
/// use shmchan_ring::{Layout, RawRing, RingConfig, RingKind};
///
/// let cfg = RingConfig::new(RingKind::Mpmc, 4, 8, 8);
/// let len = Layout::new(&cfg).unwrap().total_len as usize;
/// let mem = AllocLayout::from_size_align(len, 128).unwrap();
/// let base = NonNull::new(unsafe { alloc_zeroed(mem) }).unwrap();
/// // SAFETY: fresh zeroed allocation of `len` bytes, 128-aligned, freed after the last use.
/// let ring = unsafe { RawRing::init(base, len, &cfg) }.unwrap();
/// let mut tx = ring.mpmc_producer().unwrap();
/// let mut rx = ring.mpmc_consumer().unwrap();
/// tx.try_push(&7u64.to_ne_bytes()).unwrap();
/// tx.wake_consumers(); // nobody sleeps: returns 0 tokens, no syscall for the doorbell layer
/// let mut out = [0u8; 8];
/// rx.try_pop(&mut out).unwrap();
/// assert_eq!(u64::from_ne_bytes(out), 7);
/// drop((tx, rx));
/// unsafe { dealloc(base.as_ptr(), mem) };
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RawRing {
    base: NonNull<u8>,
    region_len: usize,
    layout: Layout,
}

// SAFETY: a RawRing is a pointer to shared memory that every process and thread accesses only
// through atomics (cursors, stamps, wait cells) and through slot accesses that the ring protocol
// hands to exactly one party at a time; it holds no thread-local state.
unsafe impl Send for RawRing {}
// SAFETY: every `&self` method reads the local layout copy or performs atomic operations on
// shared memory; none writes plain memory.
unsafe impl Sync for RawRing {}

fn check_region(base: NonNull<u8>, len: usize, needed: u64) -> Result<(), LayoutError> {
    if base.as_ptr() as usize % LINE != 0 {
        return Err(LayoutError::Misaligned {
            addr: base.as_ptr() as usize,
        });
    }
    if (len as u64) < needed {
        return Err(LayoutError::RegionTooSmall { needed, len });
    }
    Ok(())
}

fn bad(field: Field, value: u64, reason: &'static str) -> OpenError {
    OpenError::Invalid {
        field,
        value,
        reason,
    }
}

impl RawRing {
    /// Creates a ring in the region: writes every header field, cursor, wait cell and stamp,
    /// zeroes the extension area, and publishes `init_state = 2` (ready) with Release last.
    ///
    /// # Safety
    /// - `base` is valid for reads and writes of `len` bytes, and those bytes are initialised
    ///   (fresh mappings are zero-filled; heap memory must be allocated zeroed or written first);
    /// - the region stays mapped while any `RawRing` or handle derived from it lives;
    /// - nobody else initialises the region concurrently, and no handle to a previous ring in it
    ///   is still in use.
    ///
    /// `base` must be 128-byte aligned and `len` at least [`Layout::total_len`]; both are
    /// checked and reported as errors before anything is written.
    pub unsafe fn init(
        base: NonNull<u8>,
        len: usize,
        cfg: &RingConfig,
    ) -> Result<RawRing, LayoutError> {
        // SAFETY: forwarded caller contract.
        unsafe { Self::init_with(base, len, cfg, |_, _| {}) }
    }

    /// [`init`](Self::init), calling `fill_ext(ext_ptr, ext_len)` to write the (zeroed)
    /// extension area — doorbell descriptor, endpoint table, ... — before the ring is published
    /// as ready, so that an opener that sees "ready" also sees the extension area.
    ///
    /// # Safety
    /// As for [`init`](Self::init).
    pub unsafe fn init_with(
        base: NonNull<u8>,
        len: usize,
        cfg: &RingConfig,
        fill_ext: impl FnOnce(NonNull<u8>, usize),
    ) -> Result<RawRing, LayoutError> {
        let layout = Layout::new(cfg)?;
        check_region(base, len, layout.total_len)?;
        let ring = RawRing {
            base,
            region_len: len,
            layout,
        };
        let hdr = base.as_ptr().cast::<RingHeader>();
        let cursors = ring.at(layout.cursors_offset).cast::<Cursors>().as_ptr();
        // SAFETY: the region is valid for reads and writes of `len` ≥ total_len initialised
        // bytes and 128-aligned (checked above; caller contract), so the header (offset 0), the
        // ext area, the cursor lines, the stamps and the trackers — all inside total_len, at
        // offsets Layout::new aligned for their types — are valid for writes. Nobody else writes
        // the region concurrently (caller contract).
        unsafe {
            sync::init_u32(addr_of_mut!((*hdr).init_state), INIT_INITIALIZING);
            RingHeader::write_fields(hdr, &layout);
            ring.at(layout.ext_offset)
                .write_bytes(0, layout.ext_len as usize);
            sync::init_u64(addr_of_mut!((*cursors).producer.0.tail), 0);
            sync::init_u64(addr_of_mut!((*cursors).producer.0.tag), 0);
            for i in 0..MAILBOX_WORDS {
                sync::init_u64(addr_of_mut!((*cursors).producer.0.words[i]), 0);
            }
            sync::init_u64(addr_of_mut!((*cursors).consumer.0.head), 0);
            addr_of_mut!((*cursors).consumer.0.copy).write(Default::default());
            WaitCell::init(addr_of_mut!((*cursors).data));
            WaitCell::init(addr_of_mut!((*cursors).room));
            let core = ring.core();
            if layout.info.kind == RingKind::Mpmc {
                for i in 0..u64::from(layout.info.slots()) {
                    // Slot i starts at slots_offset + i * stride, 8-aligned (stride is a
                    // multiple of 8 for MPMC and slots_offset is 128-aligned).
                    let stamp = core.slot(i).as_ptr().cast::<AtomicU64>();
                    sync::init_u64(stamp, mpmc::free_stamp(i));
                }
            }
            sync::init_trackers(core.trackers, layout.info.slots() as usize);
        }
        fill_ext(ring.ext().0, ring.ext().1);
        // SYNC(init-ready): publishes every write above to openers (Acquire in `open`).
        ring.header()
            .init_state_atomic()
            .store(INIT_READY, Ordering::Release);
        Ok(ring)
    }

    /// Opens a ring that a creator initialised, validating every header field before any use:
    /// magic, version, init state, kind, capacity, record size and alignment, stride, and every
    /// offset and length (no overflow, no overlap, aligned, inside `len`). Never panics and never
    /// causes undefined behaviour, whatever the region holds.
    ///
    /// Returns [`OpenError::NotReady`] while `init_state` is 0 or 1: retry until a deadline.
    ///
    /// # Safety
    /// - `base` is valid for reads and writes of `len` initialised bytes;
    /// - the region stays mapped while any `RawRing` or handle derived from it lives;
    /// - other parties access the region only as ring peers (through this crate, or as a hostile
    ///   peer in another process, which can make operations report `Corrupted` but cannot cause
    ///   undefined behaviour here).
    pub unsafe fn open(base: NonNull<u8>, len: usize) -> Result<RawRing, OpenError> {
        check_region(base, len, HEADER_LEN as u64)?;
        // SAFETY: the region holds at least HEADER_LEN initialised bytes at a 128-aligned base
        // (checked; caller contract), which is a valid RingHeader: all of its fields are plain
        // integers or atomics, for which every bit pattern is valid.
        let hdr = unsafe { base.cast::<RingHeader>().as_ref() };
        // SYNC(init-ready): pairs with the creator's Release store; everything below reads what
        // the creator wrote before it.
        let state = hdr.init_state_atomic().load(Ordering::Acquire);
        if state == INIT_UNINIT || state == INIT_INITIALIZING {
            return Err(OpenError::NotReady { init_state: state });
        }
        let h = hdr.snapshot();
        if h.magic != MAGIC {
            return Err(OpenError::BadMagic { found: h.magic });
        }
        if state != INIT_READY {
            return Err(bad(Field::InitState, state.into(), "not 0, 1 or 2"));
        }
        if h.layout_version != LAYOUT_VERSION {
            return Err(OpenError::UnsupportedVersion {
                found: h.layout_version,
            });
        }
        let layout = validate(&h, len)?;
        Ok(RawRing {
            base,
            region_len: len,
            layout,
        })
    }

    /// Reads the header of a region without validating it (for `ls`/`stat` tools showing a
    /// region that fails to open).
    ///
    /// # Safety
    /// `base` is valid for reads of `len` initialised bytes for the duration of the call.
    pub unsafe fn read_header(base: NonNull<u8>, len: usize) -> Result<HeaderSnapshot, OpenError> {
        check_region(base, len, HEADER_LEN as u64)?;
        // SAFETY: as in `open`: HEADER_LEN initialised bytes at a 128-aligned address are a valid
        // RingHeader.
        Ok(unsafe { base.cast::<RingHeader>().as_ref() }.snapshot())
    }

    /// The validated parameters (a local copy).
    #[inline]
    pub fn config(&self) -> RingInfo {
        self.layout.info
    }

    /// The validated layout (a local copy).
    #[inline]
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// SPSC or MPMC.
    #[inline]
    pub fn kind(&self) -> RingKind {
        self.layout.info.kind
    }

    /// Capacity in records.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.layout.info.capacity as usize
    }

    /// The region's base address.
    #[inline]
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The region's length as given to `init`/`open` (≥ `layout().total_len`).
    #[inline]
    pub fn region_len(&self) -> usize {
        self.region_len
    }

    /// The extension area reserved for the upper layer: its address and length. The ring never
    /// reads or writes it after `init`.
    #[inline]
    pub fn ext(&self) -> (NonNull<u8>, usize) {
        (
            self.at(self.layout.ext_offset),
            self.layout.ext_len as usize,
        )
    }

    /// The header, read-only (its accessors read shared memory volatilely).
    #[inline]
    pub fn header(&self) -> &RingHeader {
        // SAFETY: the region starts with HEADER_LEN valid bytes (validated at init/open) and stays
        // mapped while `self` lives (init/open contract); every bit pattern is a valid header.
        unsafe { self.base.cast::<RingHeader>().as_ref() }
    }

    /// Records in the ring: `tail - head` from two loads, clamped to `0..=capacity`.
    /// Approximate while other parties run, and meaningless (but in range) if a peer wrote
    /// garbage.
    #[inline]
    pub fn len(&self) -> usize {
        let c = self.cursors();
        // Relaxed: a snapshot; head first so that a concurrent pop cannot make tail < head.
        let head = c.consumer.0.head.load(Ordering::Relaxed);
        let tail = c.producer.0.tail.load(Ordering::Relaxed);
        clamp_len(
            tail.wrapping_sub(head),
            u64::from(self.layout.info.capacity),
        )
    }

    /// The two cursors, `(producer, consumer)`: how many positions producers and consumers
    /// have claimed since the ring was created (so their change over time is the records in
    /// and out per unit of time; on MPMC a position passed over as skipped counts too).
    /// Relaxed snapshots, for diagnostics; whatever a peer wrote.
    ///
    /// ```
    /// # use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
    /// # use std::ptr::NonNull;
    /// # use shmchan_ring::{Layout, RawRing, RingConfig, RingKind};
    /// # let cfg = RingConfig::new(RingKind::Mpmc, 4, 8, 8);
    /// # let len = Layout::new(&cfg).unwrap().total_len as usize;
    /// # let mem = AllocLayout::from_size_align(len, 128).unwrap();
    /// # let base = NonNull::new(unsafe { alloc_zeroed(mem) }).unwrap();
    /// // SAFETY: fresh zeroed allocation of `len` bytes, 128-aligned, freed after the last use.
    /// let ring = unsafe { RawRing::init(base, len, &cfg) }.unwrap();
    /// let (mut tx, mut rx) = (ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap());
    /// tx.try_push(&[0; 8]).unwrap();
    /// tx.try_push(&[0; 8]).unwrap();
    /// rx.try_pop(&mut [0; 8]).unwrap();
    /// assert_eq!(ring.positions(), (2, 1)); // two records in, one out
    /// # drop((tx, rx));
    /// # unsafe { dealloc(base.as_ptr(), mem) };
    /// ```
    #[inline]
    pub fn positions(&self) -> (u64, u64) {
        let c = self.cursors();
        // Relaxed: a snapshot for diagnostics.
        let head = c.consumer.0.head.load(Ordering::Relaxed);
        (c.producer.0.tail.load(Ordering::Relaxed), head)
    }

    /// `len() == 0` (approximate under concurrency).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len() == capacity()` (approximate under concurrency).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The cell on which consumers waiting for records announce themselves.
    #[inline]
    pub fn data_cell(&self) -> &WaitCell {
        &self.cursors().data
    }

    /// The cell on which producers waiting for free slots announce themselves.
    #[inline]
    pub fn room_cell(&self) -> &WaitCell {
        &self.cursors().room
    }

    /// The SPSC producer handle.
    ///
    /// # Safety
    /// At most one SPSC producer handle is live for this ring across all processes (the upper
    /// layer enforces it, e.g. through its endpoint table): two would write the same slots and
    /// race on the producer cursor.
    pub unsafe fn spsc_producer(&self) -> Result<SpscProducer, KindError> {
        self.expect(RingKind::Spsc)?;
        Ok(SpscProducer::new(self.core()))
    }

    /// The SPSC consumer handle.
    ///
    /// # Safety
    /// At most one SPSC consumer handle is live for this ring across all processes.
    pub unsafe fn spsc_consumer(&self) -> Result<SpscConsumer, KindError> {
        self.expect(RingKind::Spsc)?;
        Ok(SpscConsumer::new(self.core()))
    }

    /// An MPMC producer handle (any number may exist).
    pub fn mpmc_producer(&self) -> Result<MpmcProducer, KindError> {
        self.expect(RingKind::Mpmc)?;
        Ok(MpmcProducer::new(self.core()))
    }

    /// An MPMC consumer handle (any number may exist).
    pub fn mpmc_consumer(&self) -> Result<MpmcConsumer, KindError> {
        self.expect(RingKind::Mpmc)?;
        Ok(MpmcConsumer::new(self.core()))
    }

    fn expect(&self, kind: RingKind) -> Result<(), KindError> {
        if self.layout.info.kind == kind {
            Ok(())
        } else {
            Err(KindError {
                expected: kind,
                found: self.layout.info.kind,
            })
        }
    }

    /// The address at `offset` (an offset validated to lie inside the region).
    #[inline]
    fn at(&self, offset: u64) -> NonNull<u8> {
        // SAFETY: callers pass offsets of the validated layout, all ≤ total_len ≤ region_len, so
        // the result stays inside (or one past) the region and cannot be null.
        unsafe { self.base.add(offset as usize) }
    }

    #[inline]
    fn cursors(&self) -> &Cursors {
        // SAFETY: the cursor lines lie inside the region at a 128-aligned validated offset,
        // initialised by the creator (every bit pattern of atomics is valid), and the region
        // stays mapped while `self` lives (init/open contract).
        unsafe {
            self.at(self.layout.cursors_offset)
                .cast::<Cursors>()
                .as_ref()
        }
    }

    /// What a handle needs, precomputed.
    pub(crate) fn core(&self) -> Core {
        let info = self.layout.info;
        let cursors = self.at(self.layout.cursors_offset).cast::<Cursors>();
        // SAFETY: `cursors` points at the validated cursor lines inside the region; projecting to
        // a field of an in-bounds struct stays in bounds and non-null.
        let producer =
            unsafe { NonNull::new_unchecked(addr_of_mut!((*cursors.as_ptr()).producer.0)) };
        // SAFETY: as above.
        let consumer =
            unsafe { NonNull::new_unchecked(addr_of_mut!((*cursors.as_ptr()).consumer.0)) };
        let (prefetch_mask, prefetch_ahead) = prefetch_params(u64::from(info.slot_stride));
        Core {
            ring: *self,
            producer,
            consumer,
            mbox_words: crate::spsc::mailbox_words(&info),
            slots: self.at(self.layout.slots_offset),
            trackers: self.at(self.layout.trackers_offset()).cast::<SlotTracker>(),
            mask: u64::from(info.slots()) - 1,
            capacity: u64::from(info.capacity),
            lap: u64::from(info.slots()),
            stride: info.slot_stride as usize,
            record_size: info.record_size as usize,
            record_shift: if info.record_size.is_power_of_two() {
                info.record_size.trailing_zeros()
            } else {
                NOT_POW2
            },
            record_offset: info.record_offset() as usize,
            prefetch_mask,
            prefetch_ahead,
            write_prefetch_ahead: if crate::sync::can_prefetch_write() {
                prefetch_ahead
            } else {
                u64::MAX
            },
        }
    }
}

/// `d` clamped to `0..=capacity`: a wrapped negative difference (a torn snapshot, or garbage)
/// reads as 0, anything above capacity as capacity.
#[inline]
pub(crate) fn clamp_len(d: u64, capacity: u64) -> usize {
    if (d as i64) < 0 {
        0
    } else {
        d.min(capacity) as usize
    }
}

/// Validates a snapshot's kind, record parameters, stride and placement against `len`.
fn validate(h: &HeaderSnapshot, len: usize) -> Result<Layout, OpenError> {
    let kind = RingKind::from_u32(h.kind).ok_or(bad(
        Field::Kind,
        h.kind.into(),
        "not 1 (SPSC) or 2 (MPMC)",
    ))?;
    check_record_params(h.capacity, h.record_size, h.record_align)?;
    let (min, unit) = min_stride(kind, h.record_size, h.record_align);
    let stride = u64::from(h.slot_stride);
    if h.slot_stride < min {
        return Err(bad(
            Field::SlotStride,
            stride,
            "smaller than the kind's slot needs",
        ));
    }
    if h.slot_stride % unit != 0 {
        return Err(bad(
            Field::SlotStride,
            stride,
            "not a multiple of the slot alignment",
        ));
    }
    let line = LINE as u64;
    if h.ext_offset < HEADER_LEN as u64 {
        return Err(bad(Field::ExtOffset, h.ext_offset, "overlaps the header"));
    }
    if h.ext_offset % line != 0 {
        return Err(bad(Field::ExtOffset, h.ext_offset, "not 128-byte aligned"));
    }
    let ext_end = h.ext_offset.checked_add(h.ext_len);
    let ext_end = ext_end.ok_or(bad(Field::ExtLen, h.ext_len, "overflows"))?;
    if h.cursors_offset % line != 0 {
        return Err(bad(
            Field::CursorsOffset,
            h.cursors_offset,
            "not 128-byte aligned",
        ));
    }
    if h.cursors_offset < ext_end {
        return Err(bad(
            Field::CursorsOffset,
            h.cursors_offset,
            "overlaps the extension area",
        ));
    }
    let cursors_end = h.cursors_offset.checked_add(CURSORS_LEN as u64);
    let cursors_end =
        cursors_end.ok_or(bad(Field::CursorsOffset, h.cursors_offset, "overflows"))?;
    if h.slots_offset % line != 0 {
        return Err(bad(
            Field::SlotsOffset,
            h.slots_offset,
            "not 128-byte aligned",
        ));
    }
    if h.slots_offset < cursors_end {
        return Err(bad(
            Field::SlotsOffset,
            h.slots_offset,
            "overlaps the cursor lines",
        ));
    }
    // capacity ≤ 2^24 and stride < 2^32: the product fits in u64.
    let slots = h.capacity.next_power_of_two();
    let slots_len = u64::from(slots) * stride;
    let slots_end = h.slots_offset.checked_add(slots_len);
    let slots_end = slots_end.ok_or(bad(Field::SlotsOffset, h.slots_offset, "overflows"))?;
    let end = trackers_span(slots_end, slots).map(|(_, end)| end);
    let end = end.ok_or(bad(Field::TotalLen, h.total_len, "overflows"))?;
    if h.total_len < end {
        return Err(bad(
            Field::TotalLen,
            h.total_len,
            "shorter than the slots it must hold",
        ));
    }
    if h.total_len > len as u64 {
        return Err(OpenError::RegionTooSmall {
            needed: h.total_len,
            len,
        });
    }
    Ok(Layout {
        info: RingInfo {
            kind,
            capacity: h.capacity,
            record_size: h.record_size,
            record_align: h.record_align,
            slot_stride: h.slot_stride,
            fingerprint: h.fingerprint,
        },
        ext_offset: h.ext_offset,
        ext_len: h.ext_len,
        cursors_offset: h.cursors_offset,
        slots_offset: h.slots_offset,
        total_len: h.total_len,
    })
}

/// [`Core::record_shift`] of a record size that is not a power of two.
const NOT_POW2: u32 = u32::MAX;

/// Pointers and constants a handle needs, computed once from a validated [`RawRing`].
///
/// Invariants (established by `init`/`open` validation, relied on by every accessor): the
/// cursor lines, `capacity` slots of `stride` bytes from `slots`, and `capacity` trackers from
/// `trackers` lie inside the region, which stays mapped while the handle lives;
/// `1 ≤ capacity ≤ lap ≤ 2^24`, `lap` (the number of slots) is the power of two at or above
/// the capacity and `mask = lap - 1`; `record_offset + record_size ≤ stride`; for MPMC,
/// `stride` is a multiple of 8 and `slots` is 128-aligned, so every stamp is aligned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Core {
    pub(crate) ring: RawRing,
    /// The producer's line: its cursor and the SPSC mailbox.
    producer: NonNull<ProducerLine>,
    /// The consumer's line: its cursor and the SPSC consumer's copy of a mailbox record.
    consumer: NonNull<ConsumerLine>,
    /// The mailbox words a one-record SPSC publish fills, or 0 (`spsc::mailbox_words`).
    pub(crate) mbox_words: usize,
    slots: NonNull<u8>,
    trackers: NonNull<SlotTracker>,
    pub(crate) mask: u64,
    /// Records the ring holds at most: what producers are limited to (≤ `lap`).
    pub(crate) capacity: u64,
    /// Slots: the power of two at or above `capacity`. Position `pos` lives in slot
    /// `pos & (lap - 1)`, and an MPMC slot released by the consumer of `pos` is free for the
    /// producer of `pos + lap`.
    pub(crate) lap: u64,
    pub(crate) stride: usize,
    pub(crate) record_size: usize,
    /// `log2(record_size)` if it is a power of two, else [`NOT_POW2`]: batch calls count the
    /// records in a buffer with a shift instead of a division.
    record_shift: u32,
    pub(crate) record_offset: usize,
    /// The one-record paths prefetch ahead at positions with `pos & prefetch_mask == 0`: about
    /// once per cache line of slots (every position when a slot is a line or more).
    pub(crate) prefetch_mask: u64,
    /// How many positions ahead they prefetch: [`PREFETCH_AHEAD_BYTES`] of slots, at least 1.
    pub(crate) prefetch_ahead: u64,
    /// The push's bound for the same test: [`prefetch_ahead`](Self::prefetch_ahead) on a CPU
    /// that has `prefetchw`, else `u64::MAX`, which no count of free slots exceeds (the push
    /// then asks nothing, as a checked `prefetch_write` would do nothing). Asked once here, so
    /// that the push's hint costs no check of the CPU per record (five instructions of a
    /// 64-byte push's, callgrind).
    pub(crate) write_prefetch_ahead: u64,
}

/// How far ahead of its cursor a one-record SPSC push or pop prefetches (see
/// `spsc::prefetch_ahead`): eight lines, far enough to cover a cross-core transfer at a few
/// nanoseconds per record, near enough to stay well inside L1.
pub(crate) const PREFETCH_AHEAD_BYTES: u64 = 512;

/// `(prefetch_mask, prefetch_ahead)` for slots of `stride` bytes (see [`Core`]). With a mask of
/// `2^k - 1` where `2^k` slots fit in a line, successive prefetches are at most a line apart,
/// so none is skipped.
pub(crate) fn prefetch_params(stride: u64) -> (u64, u64) {
    let stride = stride.max(1);
    let per_line = (CACHE_LINE / stride).max(1);
    let mask = (1u64 << per_line.ilog2()) - 1;
    (mask, (PREFETCH_AHEAD_BYTES / stride).max(1))
}

impl Core {
    /// The number of whole records in `len` bytes.
    #[inline(always)]
    pub(crate) fn records_in(&self, len: usize) -> usize {
        if self.record_shift != NOT_POW2 {
            len >> self.record_shift
        } else {
            len / self.record_size
        }
    }

    /// The producer's line: its cursor and the SPSC mailbox.
    #[inline(always)]
    pub(crate) fn producer(&self) -> &ProducerLine {
        // SAFETY: Core invariant: the cursor lines are inside the mapped region; atomics accept
        // any bit pattern and concurrent access.
        unsafe { self.producer.as_ref() }
    }

    /// The producer cursor (tail).
    #[inline(always)]
    pub(crate) fn tail(&self) -> &AtomicU64 {
        &self.producer().tail
    }

    /// The consumer cursor (head).
    #[inline(always)]
    pub(crate) fn head(&self) -> &AtomicU64 {
        // SAFETY: as for `producer`; the line's `copy` is never referenced, only pointed at.
        unsafe { &(*self.consumer.as_ptr()).head }
    }

    /// The SPSC consumer's copy of a mailbox record: `MAILBOX_WORDS` words in the consumer's
    /// line (plain memory, the consumer role's alone).
    #[inline(always)]
    pub(crate) fn copy(&self) -> NonNull<u64> {
        // SAFETY: a field of the consumer line, inside the region (Core invariant): not null.
        unsafe { NonNull::new_unchecked(addr_of_mut!((*self.consumer.as_ptr()).copy).cast()) }
    }

    /// The start of the slot for position `pos` (masked: always in bounds).
    #[inline(always)]
    pub(crate) fn slot(&self, pos: u64) -> NonNull<u8> {
        // SAFETY: Core invariant: (pos & mask) < lap, so the offset is below lap * stride and
        // the slot lies inside the region.
        unsafe { self.slots.add((pos & self.mask) as usize * self.stride) }
    }

    /// The record of position `pos` (masked: always in bounds).
    #[inline(always)]
    pub(crate) fn record(&self, pos: u64) -> NonNull<u8> {
        // SAFETY: Core invariant: record_offset + record_size ≤ stride, inside the slot.
        unsafe { self.slot(pos).add(self.record_offset) }
    }

    /// The SPSC record of position `pos`: for records of a sized `T` (not zero-sized; see
    /// `spsc::SpscProducer::try_push_of`) with the stride taken as `size_of::<T>()`, known at
    /// compile time; otherwise the slot of `pos` at the ring's stride. Either way without the
    /// record offset, which an SPSC ring's layout makes 0 ([`RingInfo::record_offset`]): one
    /// addition fewer per record than [`record`](Self::record).
    ///
    /// # Safety
    /// The ring is SPSC (only its handles call this). For a sized `T`: its record size and
    /// stride are both `size_of::<T>()`: the address is then [`record`](Self::record)'s.
    #[inline(always)]
    pub(crate) unsafe fn spsc_record<T>(&self, pos: u64) -> NonNull<u8> {
        debug_assert_eq!(self.record_offset, 0);
        if size_of::<T>() == 0 {
            return self.slot(pos);
        }
        debug_assert_eq!(self.stride, size_of::<T>());
        // SAFETY: (pos & mask) < lap and the stride is size_of::<T>() (caller contract): the
        // slot of `pos`, inside the region (Core invariant).
        unsafe { self.slots.add((pos & self.mask) as usize * size_of::<T>()) }
    }

    /// The MPMC stamp of position `pos`'s slot.
    #[inline(always)]
    pub(crate) fn stamp(&self, pos: u64) -> &AtomicU64 {
        // SAFETY: `slot` returns the start of a slot of this ring.
        unsafe { self.stamp_at(self.slot(pos)) }
    }

    /// The MPMC stamp at the start of `slot` (a pointer [`Core::slot`] returned), for callers
    /// that already computed the slot's address.
    ///
    /// # Safety
    /// `slot` is the start of a slot of this ring (a value [`Core::slot`] returned).
    #[inline(always)]
    pub(crate) unsafe fn stamp_at(&self, slot: NonNull<u8>) -> &AtomicU64 {
        // SAFETY: Core invariant: for MPMC rings every slot starts with an 8-aligned stamp
        // inside the region; atomics accept any bit pattern. Only MPMC handles call this.
        unsafe { slot.cast::<AtomicU64>().as_ref() }
    }

    /// The record inside `slot` (a pointer [`Core::slot`] returned).
    ///
    /// # Safety
    /// As for [`Core::stamp_at`].
    #[inline(always)]
    pub(crate) unsafe fn record_at(&self, slot: NonNull<u8>) -> NonNull<u8> {
        // SAFETY: Core invariant: record_offset + record_size ≤ stride, inside the slot.
        unsafe { slot.add(self.record_offset) }
    }

    /// The loom tracker of position `pos`'s slot (zero-sized in real builds).
    #[inline(always)]
    pub(crate) fn tracker(&self, pos: u64) -> &SlotTracker {
        // SAFETY: Core invariant: `lap` trackers, initialised by the creator, follow the slots
        // inside the mapped region; the index is masked below lap.
        unsafe { sync::tracker_at(self.trackers, (pos & self.mask) as usize) }
    }

    /// Copies one record into position `pos`'s slot.
    ///
    /// # Safety
    /// `src` is valid for reads of `record_size` bytes and the caller owns the slot for writing
    /// (claimed by the ring protocol).
    #[inline(always)]
    pub(crate) unsafe fn write_record(&self, pos: u64, src: *const u8) {
        self.tracker(pos).write();
        // SAFETY: the record lies inside the region (Core invariant) and the caller owns it; src
        // is readable (caller contract); they cannot overlap since the caller's buffer is not
        // the slot it owns for writing.
        unsafe { copy_record(src, self.record(pos).as_ptr(), self.record_size) }
    }

    /// Copies position `pos`'s record out.
    ///
    /// # Safety
    /// `dst` is valid for writes of `record_size` bytes and the caller owns the slot for reading.
    #[inline(always)]
    pub(crate) unsafe fn read_record(&self, pos: u64, dst: *mut u8) {
        self.tracker(pos).read();
        // SAFETY: as in `write_record`, with the roles of source and destination swapped.
        unsafe { copy_record(self.record(pos).as_ptr(), dst, self.record_size) }
    }
}

/// `copy_nonoverlapping` with constant-size fast paths for common record sizes (the generic
/// call is an out-of-line `memcpy`).
///
/// # Safety
/// As `core::ptr::copy_nonoverlapping(src, dst, n)`.
#[inline(always)]
pub(crate) unsafe fn copy_record(src: *const u8, dst: *mut u8, n: usize) {
    use core::ptr::copy_nonoverlapping as cp;
    // SAFETY: forwarded caller contract; each arm copies exactly `n` bytes.
    unsafe {
        match n {
            1 => cp(src, dst, 1),
            2 => cp(src, dst, 2),
            4 => cp(src, dst, 4),
            8 => cp(src, dst, 8),
            16 => cp(src, dst, 16),
            32 => cp(src, dst, 32),
            _ => cp(src, dst, n),
        }
    }
}
