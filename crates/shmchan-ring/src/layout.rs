//! The frozen shared layout: header, extension area, cursor lines, slots.
//!
//! Everything in the region is located by offsets from its base, never by addresses, so the same
//! bytes work at any mapping address in any process. All multi-byte fields are native-endian
//! fixed-width integers (the peers share a machine).
//!
//! ```text
//! offset                      size                 content
//! 0                           128                  RingHeader (below)
//! ext_offset = 128            ext_len              extension area for the upper layer (the ring never reads it)
//! cursors_offset              512                  4 lines of 128 bytes:
//!   +0                                               producer cursor (tail, AtomicU64)
//!   +8                                               SPSC mailbox tag (AtomicU64, see below)
//!   +16                                              SPSC mailbox words (6 AtomicU64: 48 bytes)
//!   +128                                             consumer cursor (head, AtomicU64)
//!   +136                                             SPSC consumer's mailbox copy (48 bytes)
//!   +256                                             WaitCell "data": consumers waiting for records
//!   +384                                             WaitCell "room": producers waiting for free slots
//! slots_offset                slots * stride       slots; slot i at slots_offset + i * stride
//! total_len = slots_offset + slots * stride
//! ```
//!
//! `slots` is the power of two at or above `capacity` ([`RingInfo::slots`]): position `pos`
//! (the cursors count positions from 0) lives in slot `pos & (slots - 1)`, as in crossbeam's
//! `ArrayQueue`, whose lap is a power of two too. The capacity, any value from 1 to 2^24, is
//! what the ring holds: producers never run more than `capacity` positions ahead of the
//! consumers, so a capacity that is not a power of two leaves `slots - capacity` slots unused
//! (a ring of 1,000 has 1,024 slots, 24 idle). For a power-of-two capacity the layout is byte
//! for byte what it was when capacities had to be powers of two, and a reader from that time
//! refuses any other capacity as an invalid field, which is why the layout version did not
//! change.
//!
//! `cursors_offset = round_up(ext_offset + ext_len, 128)` and `slots_offset = cursors_offset + 512`
//! for rings this crate creates; [`RawRing::open`](crate::RawRing::open) accepts any placement
//! that is aligned, ordered, non-overlapping and inside the region.
//!
//! Slots: an SPSC slot is the record, `stride = round_up(record_size, record_align)`. An MPMC slot
//! starts with an `AtomicU64` stamp and the record follows at `round_up(8, record_align)`;
//! `stride = round_up(round_up(8, align) + size, max(align, 8))`. Zero-size records are refused
//! (a typed layer maps a zero-sized type to a 1-byte record if it wants one).
//!
//! The SPSC mailbox: an SPSC producer that publishes one record of at most [`MAILBOX_MAX`]
//! bytes (whole 8-byte words, alignment at most 8) also copies it into the producer cursor's
//! line, after the cursor: the tag is set to 0 (then a Release fence), the record's words are
//! stored, the tag is set to the record's position + 1, and then the cursor is stored (Release,
//! as for every publish). A consumer that waits for the next record
//! polls that line anyway (the cursor), so when the cursor says exactly one new record it reads
//! that record there, a seqlock read (the tag, the words, an Acquire fence, the tag again),
//! instead of fetching the slot's line from the producer's cache: a round trip moves one line
//! each way, as a ring with a stamp in every slot does, while the slots stay dense for batches.
//! A tag that does not match (a batch, a producer that writes no mailbox, a record being
//! written) sends the consumer to the slot, which always holds the record: the mailbox is a
//! copy, never the only one. Rings created before the mailbox have zeroes there (tag 0 never
//! matches), so the layout version did not change.
//!
//! Header (`#[repr(C, align(128))]`, 128 bytes):
//!
//! ```text
//! 0   magic           u64        MAGIC = "SHMCHAN1" (little-endian bytes)
//! 8   layout_version  u32        LAYOUT_VERSION
//! 12  init_state      AtomicU32  0 uninit, 1 initializing, 2 ready (published with Release last)
//! 16  kind            u32        1 SPSC, 2 MPMC
//! 20  capacity        u32        1 ..= 2^24: exactly the records the ring holds
//! 24  record_size     u32        1 ..= 2^30
//! 28  record_align    u32        power of two, 1 ..= 128
//! 32  slot_stride     u32
//! 36  reserved0       u32        zero
//! 40  fingerprint     [u8; 16]   opaque to the ring; the upper layer's record type fingerprint
//! 56  ext_offset      u64
//! 64  ext_len         u64
//! 72  cursors_offset  u64
//! 80  slots_offset    u64
//! 88  total_len       u64
//! 96  reserved        [u8; 32]   zero
//! ```

use core::fmt;
use core::mem::{align_of, size_of};

use crate::error::{Field, LayoutError};
use crate::sync::{AtomicU32, AtomicU64, SlotTracker};
use crate::wait::WaitCell;

/// The magic number at offset 0 of every ring region: the bytes `SHMCHAN1`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMCHAN1");
/// The layout version this crate writes and accepts.
pub const LAYOUT_VERSION: u32 = 1;
/// The alignment unit of the layout (two x86 cache lines: adjacent-line prefetch pairs them).
pub const LINE: usize = 128;
/// The largest capacity (records) of a ring.
pub const MAX_CAPACITY: u32 = 1 << 24;
/// The largest record size (bytes).
pub const MAX_RECORD_SIZE: u32 = 1 << 30;
/// The largest record alignment.
pub const MAX_RECORD_ALIGN: u32 = 128;

/// `init_state`: nobody has started initialising the region.
pub const INIT_UNINIT: u32 = 0;
/// `init_state`: a creator is writing the region.
pub const INIT_INITIALIZING: u32 = 1;
/// `init_state`: the region is fully written and may be opened.
pub const INIT_READY: u32 = 2;

/// Our own 128-byte padding and alignment wrapper (not a dependency's, whose size varies by
/// architecture): the value starts a 128-byte line and nothing else shares it.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct CachePadded<T>(pub T);

/// The ring algorithm a region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RingKind {
    /// One producer, one consumer (Lamport ring with cached peer cursors).
    Spsc = 1,
    /// Any number of producers and consumers (per-slot sequence stamps, Vyukov).
    Mpmc = 2,
}

impl RingKind {
    /// The kind stored as `raw` in a header, if it names one.
    pub const fn from_u32(raw: u32) -> Option<RingKind> {
        match raw {
            1 => Some(RingKind::Spsc),
            2 => Some(RingKind::Mpmc),
            _ => None,
        }
    }
}

impl fmt::Display for RingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingKind::Spsc => "SPSC",
            RingKind::Mpmc => "MPMC",
        })
    }
}

/// The ring header at offset 0 of a region. Fields are private: read them through the accessors,
/// which read shared memory volatilely (a peer may scribble on it; the values a handle uses are
/// the validated copies taken at open, see [`RingInfo`]).
#[repr(C, align(128))]
pub struct RingHeader {
    pub(crate) magic: u64,
    pub(crate) layout_version: u32,
    pub(crate) init_state: AtomicU32,
    pub(crate) kind: u32,
    pub(crate) capacity: u32,
    pub(crate) record_size: u32,
    pub(crate) record_align: u32,
    pub(crate) slot_stride: u32,
    pub(crate) reserved0: u32,
    pub(crate) fingerprint: [u8; 16],
    pub(crate) ext_offset: u64,
    pub(crate) ext_len: u64,
    pub(crate) cursors_offset: u64,
    pub(crate) slots_offset: u64,
    pub(crate) total_len: u64,
    pub(crate) reserved: [u8; 32],
}

#[cfg(not(loom))]
const _: () = {
    assert!(size_of::<RingHeader>() == 128);
    assert!(align_of::<RingHeader>() == 128);
    assert!(core::mem::offset_of!(RingHeader, magic) == 0);
    assert!(core::mem::offset_of!(RingHeader, layout_version) == 8);
    assert!(core::mem::offset_of!(RingHeader, init_state) == 12);
    assert!(core::mem::offset_of!(RingHeader, kind) == 16);
    assert!(core::mem::offset_of!(RingHeader, capacity) == 20);
    assert!(core::mem::offset_of!(RingHeader, record_size) == 24);
    assert!(core::mem::offset_of!(RingHeader, record_align) == 28);
    assert!(core::mem::offset_of!(RingHeader, slot_stride) == 32);
    assert!(core::mem::offset_of!(RingHeader, reserved0) == 36);
    assert!(core::mem::offset_of!(RingHeader, fingerprint) == 40);
    assert!(core::mem::offset_of!(RingHeader, ext_offset) == 56);
    assert!(core::mem::offset_of!(RingHeader, ext_len) == 64);
    assert!(core::mem::offset_of!(RingHeader, cursors_offset) == 72);
    assert!(core::mem::offset_of!(RingHeader, slots_offset) == 80);
    assert!(core::mem::offset_of!(RingHeader, total_len) == 88);
    assert!(core::mem::offset_of!(RingHeader, reserved) == 96);
    assert!(size_of::<AtomicU32>() == 4 && size_of::<AtomicU64>() == 8);
    assert!(align_of::<AtomicU64>() == 8);
};

macro_rules! volatile_getters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            #[inline]
            pub fn $name(&self) -> $ty {
                // SAFETY: `self` is a valid reference, so the field is readable; a volatile read
                // because a peer process may write the shared header at any time.
                unsafe { core::ptr::addr_of!(self.$name).read_volatile() }
            }
        )*
    };
}

impl RingHeader {
    volatile_getters! {
        /// The magic number ([`MAGIC`] in a valid region).
        magic: u64;
        /// The layout version ([`LAYOUT_VERSION`] in a valid region).
        layout_version: u32;
        /// The raw ring kind (see [`RingKind::from_u32`]).
        kind: u32;
        /// Capacity in records.
        capacity: u32;
        /// Record size in bytes.
        record_size: u32;
        /// Record alignment in bytes.
        record_align: u32;
        /// Distance between consecutive slots in bytes.
        slot_stride: u32;
        /// The upper layer's record fingerprint (opaque to the ring).
        fingerprint: [u8; 16];
        /// Offset of the extension area.
        ext_offset: u64;
        /// Length of the extension area.
        ext_len: u64;
        /// Offset of the cursor lines.
        cursors_offset: u64;
        /// Offset of slot 0.
        slots_offset: u64;
        /// Total length of the ring's part of the region.
        total_len: u64;
    }

    /// The initialisation state ([`INIT_UNINIT`], [`INIT_INITIALIZING`], [`INIT_READY`]), read
    /// with Relaxed ordering (for display; [`RawRing::open`](crate::RawRing::open) uses Acquire).
    #[inline]
    pub fn init_state(&self) -> u32 {
        self.init_state.load(crate::sync::Ordering::Relaxed)
    }

    pub(crate) fn init_state_atomic(&self) -> &AtomicU32 {
        &self.init_state
    }

    /// A copy of every field (each read once), e.g. for `ls`/`stat` tools.
    pub fn snapshot(&self) -> HeaderSnapshot {
        HeaderSnapshot {
            magic: self.magic(),
            layout_version: self.layout_version(),
            init_state: self.init_state(),
            kind: self.kind(),
            capacity: self.capacity(),
            record_size: self.record_size(),
            record_align: self.record_align(),
            slot_stride: self.slot_stride(),
            fingerprint: self.fingerprint(),
            ext_offset: self.ext_offset(),
            ext_len: self.ext_len(),
            cursors_offset: self.cursors_offset(),
            slots_offset: self.slots_offset(),
            total_len: self.total_len(),
        }
    }

    /// Writes every field except `init_state` (the creator sets that first and last).
    ///
    /// # Safety
    /// `hdr` is valid for writes of a `RingHeader` and nobody else writes it concurrently.
    pub(crate) unsafe fn write_fields(hdr: *mut RingHeader, l: &Layout) {
        use core::ptr::addr_of_mut;
        let i = &l.info;
        // SAFETY: the caller guarantees `hdr` is valid for writes; each write targets one field
        // of it. Plain writes: openers read these only after observing INIT_READY (Acquire).
        unsafe {
            addr_of_mut!((*hdr).magic).write(MAGIC);
            addr_of_mut!((*hdr).layout_version).write(LAYOUT_VERSION);
            addr_of_mut!((*hdr).kind).write(i.kind as u32);
            addr_of_mut!((*hdr).capacity).write(i.capacity);
            addr_of_mut!((*hdr).record_size).write(i.record_size);
            addr_of_mut!((*hdr).record_align).write(i.record_align);
            addr_of_mut!((*hdr).slot_stride).write(i.slot_stride);
            addr_of_mut!((*hdr).reserved0).write(0);
            addr_of_mut!((*hdr).fingerprint).write(i.fingerprint);
            addr_of_mut!((*hdr).ext_offset).write(l.ext_offset);
            addr_of_mut!((*hdr).ext_len).write(l.ext_len);
            addr_of_mut!((*hdr).cursors_offset).write(l.cursors_offset);
            addr_of_mut!((*hdr).slots_offset).write(l.slots_offset);
            addr_of_mut!((*hdr).total_len).write(l.total_len);
            addr_of_mut!((*hdr).reserved).write([0; 32]);
        }
    }
}

impl fmt::Debug for RingHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(), f)
    }
}

/// A plain copy of a header's fields, as read at one moment (unvalidated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // the fields mirror RingHeader's accessors
pub struct HeaderSnapshot {
    pub magic: u64,
    pub layout_version: u32,
    pub init_state: u32,
    pub kind: u32,
    pub capacity: u32,
    pub record_size: u32,
    pub record_align: u32,
    pub slot_stride: u32,
    pub fingerprint: [u8; 16],
    pub ext_offset: u64,
    pub ext_len: u64,
    pub cursors_offset: u64,
    pub slots_offset: u64,
    pub total_len: u64,
}

/// The largest record (bytes) an SPSC producer also copies into the mailbox on its cursor's
/// line (see the module docs).
pub const MAILBOX_MAX: usize = 48;
/// The mailbox's words.
pub(crate) const MAILBOX_WORDS: usize = MAILBOX_MAX / 8;

/// The producer's line: its cursor, and for SPSC rings the mailbox (module docs).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ProducerLine {
    /// Producer cursor (tail): the next position a producer will claim.
    pub(crate) tail: AtomicU64,
    /// The position + 1 of the record in `words`; 0 while they are being written.
    pub(crate) tag: AtomicU64,
    /// The last one-record publish's record (its first `record_size` bytes).
    pub(crate) words: [AtomicU64; MAILBOX_WORDS],
}

/// The consumer's line: its cursor, and for SPSC rings where the consumer copies a record it
/// read from the mailbox (plain memory: only the consumer role writes or reads it).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ConsumerLine {
    /// Consumer cursor (head): the next position a consumer will claim.
    pub(crate) head: AtomicU64,
    /// The SPSC consumer's copy of the record it last took from the mailbox.
    pub(crate) copy: core::cell::UnsafeCell<[u64; MAILBOX_WORDS]>,
}

/// The four cursor lines: each shared word on a 128-byte line of its own, so the producer's
/// and the consumer's writes never contend for a line.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Cursors {
    /// Producer cursor (tail) and the SPSC mailbox.
    pub(crate) producer: CachePadded<ProducerLine>,
    /// Consumer cursor (head) and the SPSC consumer's copy of a mailbox record.
    pub(crate) consumer: CachePadded<ConsumerLine>,
    /// Consumers waiting for records announce themselves here.
    pub(crate) data: WaitCell,
    /// Producers waiting for free slots announce themselves here.
    pub(crate) room: WaitCell,
}

/// Length of the header (128 in real builds).
pub const HEADER_LEN: usize = size_of::<RingHeader>();
/// Length of the cursor lines (512 in real builds).
pub const CURSORS_LEN: usize = size_of::<Cursors>();
/// Size of an MPMC slot's stamp.
pub const STAMP_LEN: usize = 8;

#[cfg(not(loom))]
const _: () = {
    assert!(size_of::<CachePadded<AtomicU64>>() == LINE);
    assert!(align_of::<CachePadded<AtomicU64>>() == LINE);
    assert!(size_of::<WaitCell>() == LINE);
    assert!(align_of::<WaitCell>() == LINE);
    assert!(CURSORS_LEN == 4 * LINE);
    assert!(core::mem::offset_of!(Cursors, producer) == 0);
    assert!(core::mem::offset_of!(ProducerLine, tag) == 8);
    assert!(core::mem::offset_of!(ProducerLine, words) == 16);
    // The cursor, the tag and the words share one 64-byte line.
    assert!(size_of::<ProducerLine>() == 64);
    assert!(core::mem::offset_of!(ConsumerLine, copy) == 8);
    assert!(size_of::<ConsumerLine>() == 56);
    assert!(core::mem::offset_of!(Cursors, consumer) == LINE);
    assert!(core::mem::offset_of!(Cursors, data) == 2 * LINE);
    assert!(core::mem::offset_of!(Cursors, room) == 3 * LINE);
    assert!(HEADER_LEN == LINE);
    assert!(size_of::<SlotTracker>() == 0);
};
const _: () = {
    assert!(align_of::<Cursors>() == LINE);
    assert!(HEADER_LEN % LINE == 0 && CURSORS_LEN % LINE == 0);
    assert!(align_of::<SlotTracker>() <= LINE);
};

/// What a creator asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// SPSC or MPMC.
    pub kind: RingKind,
    /// Capacity in records, 1 ..= [`MAX_CAPACITY`]: exactly what the ring holds (any value;
    /// the ring has [`RingInfo::slots`] slots, the power of two at or above it).
    pub capacity: u32,
    /// Record size in bytes: 1 ..= [`MAX_RECORD_SIZE`].
    pub record_size: u32,
    /// Record alignment: a power of two ≤ [`MAX_RECORD_ALIGN`].
    pub record_align: u32,
    /// Opaque 16 bytes stored in the header (the upper layer's record fingerprint).
    pub fingerprint: [u8; 16],
    /// Bytes reserved for the upper layer right after the header (128-aligned).
    pub ext_len: u64,
}

impl RingConfig {
    /// A config with a zero fingerprint and no extension area.
    pub const fn new(kind: RingKind, capacity: u32, record_size: u32, record_align: u32) -> Self {
        RingConfig {
            kind,
            capacity,
            record_size,
            record_align,
            fingerprint: [0; 16],
            ext_len: 0,
        }
    }
}

/// The validated parameters of a ring (a handle's local copy; never re-read from shared memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingInfo {
    /// SPSC or MPMC.
    pub kind: RingKind,
    /// Capacity in records: exactly what the ring holds.
    pub capacity: u32,
    /// Record size in bytes.
    pub record_size: u32,
    /// Record alignment in bytes.
    pub record_align: u32,
    /// Distance between slots in bytes.
    pub slot_stride: u32,
    /// The upper layer's fingerprint, as stored in the header.
    pub fingerprint: [u8; 16],
}

impl RingInfo {
    /// The number of slots: the power of two at or above the capacity (see the module docs).
    ///
    /// ```
    /// use shmchan_ring::{Layout, RingConfig, RingKind};
    /// let info = Layout::new(&RingConfig::new(RingKind::Mpmc, 1000, 8, 8)).unwrap().info;
    /// assert_eq!((info.capacity, info.slots()), (1000, 1024));
    /// ```
    #[inline]
    pub const fn slots(&self) -> u32 {
        self.capacity.next_power_of_two()
    }

    /// Offset of the record within its slot: 0 for SPSC, after the stamp for MPMC.
    #[inline]
    pub const fn record_offset(&self) -> u32 {
        match self.kind {
            RingKind::Spsc => 0,
            RingKind::Mpmc => max_u32(STAMP_LEN as u32, self.record_align),
        }
    }
}

/// Every offset and length of a ring region, computed by [`Layout::new`] or validated by
/// [`RawRing::open`](crate::RawRing::open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Layout {
    /// The ring's parameters.
    pub info: RingInfo,
    /// Offset of the extension area (128-aligned).
    pub ext_offset: u64,
    /// Length of the extension area.
    pub ext_len: u64,
    /// Offset of the cursor lines (128-aligned).
    pub cursors_offset: u64,
    /// Offset of slot 0 (128-aligned).
    pub slots_offset: u64,
    /// Bytes the ring occupies from the region's base: map at least this much.
    pub total_len: u64,
}

const fn max_u32(a: u32, b: u32) -> u32 {
    if a > b {
        a
    } else {
        b
    }
}

/// `round_up(x, align)` for a power-of-two `align`, `None` on overflow.
#[inline]
pub(crate) const fn round_up(x: u64, align: u64) -> Option<u64> {
    match x.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

fn invalid(field: Field, value: u64, reason: &'static str) -> LayoutError {
    LayoutError::Invalid {
        field,
        value,
        reason,
    }
}

/// Checks capacity, size and alignment (shared by create and open).
pub(crate) fn check_record_params(
    capacity: u32,
    record_size: u32,
    record_align: u32,
) -> Result<(), LayoutError> {
    if capacity == 0 {
        return Err(invalid(Field::Capacity, 0, "zero"));
    }
    if capacity > MAX_CAPACITY {
        return Err(invalid(Field::Capacity, capacity.into(), "above 2^24"));
    }
    if record_size == 0 {
        return Err(invalid(
            Field::RecordSize,
            0,
            "zero-size records are not supported",
        ));
    }
    if record_size > MAX_RECORD_SIZE {
        return Err(invalid(Field::RecordSize, record_size.into(), "above 2^30"));
    }
    if !record_align.is_power_of_two() {
        return Err(invalid(
            Field::RecordAlign,
            record_align.into(),
            "not a power of two",
        ));
    }
    if record_align > MAX_RECORD_ALIGN {
        return Err(invalid(
            Field::RecordAlign,
            record_align.into(),
            "above 128",
        ));
    }
    Ok(())
}

/// The smallest stride for the kind and the alignment every stride must be a multiple of.
/// Requires [`check_record_params`] to have passed (no overflow possible then).
pub(crate) fn min_stride(kind: RingKind, record_size: u32, record_align: u32) -> (u32, u32) {
    let (size, align) = (u64::from(record_size), u64::from(record_align));
    let (min, unit) = match kind {
        RingKind::Spsc => (round_up(size, align), align),
        RingKind::Mpmc => {
            let unit = align.max(STAMP_LEN as u64);
            let rec_off = round_up(STAMP_LEN as u64, align).unwrap_or(u64::MAX);
            (
                rec_off.checked_add(size).and_then(|v| round_up(v, unit)),
                unit,
            )
        }
    };
    // size ≤ 2^30 and align ≤ 128: the stride fits u32 with room to spare.
    (
        min.unwrap_or(u64::MAX).min(u64::from(u32::MAX)) as u32,
        unit as u32,
    )
}

/// Bytes of loom-only slot trackers after the slots (zero in real builds) and their offset.
pub(crate) fn trackers_span(slots_end: u64, capacity: u32) -> Option<(u64, u64)> {
    let off = round_up(slots_end, align_of::<SlotTracker>() as u64)?;
    let len = (size_of::<SlotTracker>() as u64).checked_mul(u64::from(capacity))?;
    Some((off, off.checked_add(len)?))
}

impl Layout {
    /// Computes the layout of a new ring with checked arithmetic.
    ///
    /// ```
    /// use shmchan_ring::{Layout, RingConfig, RingKind};
    /// let l = Layout::new(&RingConfig::new(RingKind::Mpmc, 1024, 8, 8)).unwrap();
    /// assert_eq!(l.info.slot_stride, 16); // 8-byte stamp + 8-byte record
    /// assert_eq!(l.slots_offset, 128 + 512);
    /// assert_eq!(l.total_len, 128 + 512 + 1024 * 16);
    /// ```
    pub fn new(cfg: &RingConfig) -> Result<Layout, LayoutError> {
        check_record_params(cfg.capacity, cfg.record_size, cfg.record_align)?;
        let (slot_stride, _) = min_stride(cfg.kind, cfg.record_size, cfg.record_align);
        let ext_offset = HEADER_LEN as u64;
        let overflow = |field| LayoutError::Overflow { field };
        let ext_end = ext_offset
            .checked_add(cfg.ext_len)
            .ok_or(overflow(Field::ExtLen))?;
        let cursors_offset = round_up(ext_end, LINE as u64).ok_or(overflow(Field::ExtLen))?;
        let slots_offset = cursors_offset
            .checked_add(CURSORS_LEN as u64)
            .ok_or(overflow(Field::ExtLen))?;
        let slots = cfg.capacity.next_power_of_two();
        let slots_len = u64::from(slots) * u64::from(slot_stride);
        let slots_end = slots_offset
            .checked_add(slots_len)
            .ok_or(overflow(Field::TotalLen))?;
        let (_, total_len) = trackers_span(slots_end, slots).ok_or(overflow(Field::TotalLen))?;
        if total_len > isize::MAX as u64 {
            return Err(invalid(
                Field::TotalLen,
                total_len,
                "larger than isize::MAX",
            ));
        }
        Ok(Layout {
            info: RingInfo {
                kind: cfg.kind,
                capacity: cfg.capacity,
                record_size: cfg.record_size,
                record_align: cfg.record_align,
                slot_stride,
                fingerprint: cfg.fingerprint,
            },
            ext_offset,
            ext_len: cfg.ext_len,
            cursors_offset,
            slots_offset,
            total_len,
        })
    }

    /// Offset of the loom-only slot trackers (equal to the end of the slots in real builds).
    pub(crate) fn trackers_offset(&self) -> u64 {
        let slots_end =
            self.slots_offset + u64::from(self.info.slots()) * u64::from(self.info.slot_stride);
        // Validated when the layout was built: cannot overflow.
        trackers_span(slots_end, self.info.slots()).map_or(slots_end, |(off, _)| off)
    }
}
