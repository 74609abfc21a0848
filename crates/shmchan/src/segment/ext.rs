//! shmchan's area inside the ring's `ext` region: its frozen layout ([`ExtHeader`]), how a
//! creator fills it, and how it is read back (by an opener, and by inspection).
//!
//! Every field is an atomic: the memory is shared with processes we do not trust, which may
//! write any of it at any time. Everything read from it is a claim to check.

use std::mem::{align_of, size_of};
use std::ptr::NonNull;

use shmchan_ring as ring;

use crate::backing::Cleanup;
use crate::doorbell::{BellOwner, Desc, Doorbell, SemStore};
use std::sync::atomic::AtomicU8;

use crate::record::{RecordInfo, MAX_TYPE_NAME};
use crate::schema::{Shape, MAX_SCHEMA};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::table::{Entry, Listed, Masks, Process, Table, MAX_ENDPOINTS};

pub(super) const EXT_MAGIC: u64 = u64::from_le_bytes(*b"SHMCHEXT");
pub(super) const EXT_VERSION: u32 = 1;
/// The version of a byte channel's area: [`EXT_VERSION`]'s layout, and the messages' lengths
/// in a lane at the end of the ext area ([`lane_len`] bytes: one `u32` per slot). A reader
/// that knows only version 1 refuses such a channel instead of reading its slots as frames.
pub(super) const EXT_VERSION_LANE: u32 = 2;

/// The extension area's version for a record with a length lane (`lane`) or without.
pub(super) fn version_for(lane: bool) -> u32 {
    if lane {
        EXT_VERSION_LANE
    } else {
        EXT_VERSION
    }
}

/// shmchan's area inside the ring's `ext` region. Every field is atomic: the memory is shared
/// with processes we do not trust.
#[repr(C, align(128))]
pub(crate) struct ExtHeader {
    pub(super) magic: AtomicU64,
    pub(super) version: AtomicU32,
    pub(super) doorbell: AtomicU32,
    pub(super) schema_version: AtomicU32,
    name_len: AtomicU32,
    name: [AtomicU32; MAX_TYPE_NAME / 4],
    creator_pid: AtomicU32,
    pub(super) cleanup: AtomicU32,
    created_unix_ns: AtomicU64,
    /// What a peer needs to reach the doorbell's kernel objects: word 0 the SysV id, bytes
    /// 8..68 and 68..128 the POSIX names (NUL-padded).
    doorbell_desc: [AtomicU64; 16],
    /// The POSIX semaphore doorbell's two `sem_t` (data, room).
    pub(super) posix_sems: [SemStore; 2],
    /// Processes attached through shmchan: who leaves last (`Cleanup::WhenDrained`; and for
    /// `Cleanup::LastDetach` of doorbell objects, on backings whose attachments the kernel
    /// does not count).
    pub(super) attached: AtomicU32,
    _pad0: AtomicU32,
    /// The channel's random identity, built into its doorbell objects' keys and names
    /// (`doorbell::bind`); 0 in segments made before identities existed.
    identity: AtomicU64,
    /// The length of the record's schema (`crate::schema`), stored right after this header
    /// in the ext area; 0: the record declares no layout.
    schema_len: AtomicU32,
    /// The SysV life-token set of the channel (`crate::life`): semid + 1; 0 when it has none
    /// (every backing but SysV). A claim: checked against the segment before use.
    pub(super) life_set: AtomicU32,
    /// The creator's PID namespace (`os::process::pid_namespace`; 0: unknown): whose pid
    /// `creator_pid` is.
    creator_pidns: AtomicU64,
    /// The endpoint table's live masks and `ever` flags.
    masks: Masks,
    /// Slow-path counters: sleeps per role and doorbell posts.
    pub(super) sleeps: [AtomicU64; 2],
    pub(super) posts: AtomicU64,
    endpoints: [Entry; MAX_ENDPOINTS],
}

// The layout is frozen (`EXT_VERSION`): every offset is asserted.
#[cfg(not(loom))]
const _: () = {
    use core::mem::offset_of;
    assert!(MAX_TYPE_NAME % 4 == 0);
    assert!(offset_of!(ExtHeader, version) == 8);
    assert!(offset_of!(ExtHeader, doorbell) == 12);
    assert!(offset_of!(ExtHeader, schema_version) == 16);
    assert!(offset_of!(ExtHeader, name_len) == 20);
    assert!(offset_of!(ExtHeader, name) == 24);
    assert!(offset_of!(ExtHeader, creator_pid) == 136);
    assert!(offset_of!(ExtHeader, cleanup) == 140);
    assert!(offset_of!(ExtHeader, created_unix_ns) == 144);
    assert!(offset_of!(ExtHeader, doorbell_desc) == 152);
    assert!(offset_of!(ExtHeader, posix_sems) == 280);
    assert!(offset_of!(ExtHeader, attached) == 344);
    assert!(offset_of!(ExtHeader, identity) == 352);
    assert!(offset_of!(ExtHeader, schema_len) == 360);
    assert!(offset_of!(ExtHeader, life_set) == 364);
    assert!(offset_of!(ExtHeader, creator_pidns) == 368);
    assert!(offset_of!(ExtHeader, masks) == 376);
    assert!(offset_of!(ExtHeader, sleeps) == 424);
    assert!(offset_of!(ExtHeader, posts) == 440);
    assert!(offset_of!(ExtHeader, endpoints) == 512);
    assert!(offset_of!(ExtHeader, endpoints) % 128 == 0);
    assert!(size_of::<ExtHeader>() == 8704);
    assert!(size_of::<ExtHeader>() % 128 == 0);
    assert!(size_of::<ExtHeader>() <= 16384);
};

impl ExtHeader {
    /// The endpoint table (`spsc`: the ring's kind, from the validated ring header).
    pub(crate) fn table(&self, spsc: bool) -> Table<'_> {
        Table::new(&self.masks, &self.endpoints, spsc)
    }

    /// The ext area of `r`, if it is large and aligned enough to hold an `ExtHeader`.
    pub(crate) fn of(r: &ring::RawRing) -> Result<&ExtHeader, String> {
        let (ptr, len) = r.ext();
        if len < size_of::<ExtHeader>() || ptr.as_ptr() as usize % 128 != 0 {
            return Err(format!(
                "extension area of {len} bytes is smaller than the {} shmchan needs",
                size_of::<ExtHeader>()
            ));
        }
        // SAFETY: the ring validated that the ext area lies inside its region, which stays
        // mapped while `r` (and so this borrow of it) lives (`RawRing::open`/`init` contract);
        // size and alignment were checked just above; every field is an atomic, valid for any
        // bits.
        Ok(unsafe { ptr.cast::<ExtHeader>().as_ref() })
    }

    /// Fills a new segment's area (before the ring publishes `ready`); `schema` goes into the
    /// schema area that follows the header ([`schema_area`]; `ext_len` long in all).
    pub(super) fn init(
        &self,
        doorbell: Doorbell,
        record: &RecordInfo,
        schema: &[u8],
        ext_len: usize,
        cleanup: Cleanup,
        desc: &Desc,
    ) {
        let r = Ordering::Relaxed;
        let area = schema_area(self, ext_len, schema.len() as u32).expect("sized by ext_len_for");
        for (cell, &b) in area.iter().zip(schema) {
            cell.store(b, r);
        }
        self.schema_len.store(schema.len() as u32, r);
        self.magic.store(EXT_MAGIC, r);
        self.version.store(version_for(record.lane), r);
        self.doorbell.store(doorbell.code(), r);
        self.schema_version.store(record.schema_version, r);
        let name = record.stored_name().as_bytes();
        self.name_len.store(name.len() as u32, r);
        let mut buf = [0u8; MAX_TYPE_NAME];
        buf[..name.len()].copy_from_slice(name);
        for (w, chunk) in self.name.iter().zip(buf.chunks_exact(4)) {
            w.store(u32::from_le_bytes(chunk.try_into().expect("4 bytes")), r);
        }
        self.creator_pid.store(std::process::id(), r);
        self.creator_pidns.store(Process::me().pidns, r);
        self.life_set.store(0, r);
        self.cleanup.store(cleanup_code(cleanup), r);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.created_unix_ns.store(now, r);
        self.write_desc(desc);
        self.table(true).reset();
        for a in self.sleeps.iter().chain([&self.posts]) {
            a.store(0, r);
        }
        self.attached.store(0, r);
        // Publication happens in `RawRing::init_with`, whose Release store of `ready` orders
        // all of the above before any opener's Acquire load of it.
    }

    pub(super) fn read_name(&self) -> String {
        let mut buf = [0u8; MAX_TYPE_NAME];
        for (w, chunk) in self.name.iter().zip(buf.chunks_exact_mut(4)) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        let len = (self.name_len.load(Ordering::Relaxed) as usize).min(MAX_TYPE_NAME);
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }

    fn write_desc(&self, d: &Desc) {
        self.identity.store(d.identity, Ordering::Relaxed);
        let mut bytes = [0u8; 128];
        bytes[..4].copy_from_slice(&d.id.to_le_bytes());
        for (i, name) in d.names.iter().enumerate() {
            let n = name.as_bytes();
            let n = &n[..n.len().min(NAME_MAX - 1)];
            bytes[NAME_OFF[i]..NAME_OFF[i] + n.len()].copy_from_slice(n);
        }
        for (w, chunk) in self.doorbell_desc.iter().zip(bytes.chunks_exact(8)) {
            w.store(
                u64::from_le_bytes(chunk.try_into().expect("8 bytes")),
                Ordering::Relaxed,
            );
        }
    }

    pub(super) fn read_desc(&self) -> Desc {
        let mut bytes = [0u8; 128];
        for (w, chunk) in self.doorbell_desc.iter().zip(bytes.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        let name = |i: usize| {
            let raw = &bytes[NAME_OFF[i]..NAME_OFF[i] + NAME_MAX];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        };
        Desc {
            id: i32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")),
            names: [name(0), name(1)],
            identity: self.identity.load(Ordering::Relaxed),
        }
    }
}

/// The ext area's length for a record whose schema takes `schema_len` bytes: the header,
/// then the schema, then (`lane`: a byte channel's ring of `slots` slots) the length lane,
/// line-aligned, which ends the area.
pub(crate) fn ext_len_for(schema_len: usize, lane: bool, slots: u32) -> usize {
    let len = size_of::<ExtHeader>() + schema_len;
    if lane {
        len.next_multiple_of(128) + lane_len(slots)
    } else {
        len
    }
}

/// The bytes of a length lane for `slots` slots: a `u32` each, in whole lines.
pub(crate) fn lane_len(slots: u32) -> usize {
    (slots as usize * size_of::<u32>()).next_multiple_of(128)
}

/// A byte channel's length lane (its first entry: one `u32` per slot), the last
/// [`lane_len`] bytes of the ring's ext area; `Err` when the area is too short to hold it
/// after the header (a claim of the segment's, checked).
pub(crate) fn lane_of(r: &ring::RawRing) -> Result<NonNull<u32>, String> {
    let (ptr, len) = r.ext();
    let need = lane_len(r.config().slots());
    let Some(at) = len
        .checked_sub(need)
        .filter(|&at| at >= size_of::<ExtHeader>())
    else {
        return Err(format!(
            "its extension area of {len} bytes has no room for the length lane of {need} bytes \
             after the header"
        ));
    };
    if (ptr.as_ptr() as usize + at) % align_of::<u32>() != 0 {
        return Err(format!("its length lane at {at} is not aligned"));
    }
    // SAFETY: `at + need <= len`: inside the ext area, which the ring validated to lie inside
    // its region; not null (an offset into a mapping).
    Ok(unsafe { ptr.add(at) }.cast())
}

/// The `len` bytes of the schema area after `e`, if the ext area (`ext_len` bytes from `e`)
/// holds them.
fn schema_area(e: &ExtHeader, ext_len: usize, len: u32) -> Option<&[AtomicU8]> {
    let len = len as usize;
    if len > MAX_SCHEMA || ext_len.checked_sub(size_of::<ExtHeader>())? < len {
        return None;
    }
    // SAFETY: the ext area is `ext_len` bytes from `e` inside the mapping (validated by the
    // ring when it was opened or laid out) and stays mapped while `e` is borrowed; the schema
    // area starts right after the header and `len` bytes of it fit (checked above); an
    // `AtomicU8` has alignment 1 and is valid for any bits.
    Some(unsafe {
        std::slice::from_raw_parts(
            std::ptr::from_ref(e)
                .cast::<u8>()
                .add(size_of::<ExtHeader>())
                .cast::<AtomicU8>(),
            len,
        )
    })
}

/// The record layout the segment declares: `Ok(None)` if it declares none, `Err` if the claim
/// is out of bounds or does not parse (the bytes are another process's claim).
pub(crate) fn read_schema(r: &ring::RawRing) -> Result<Option<Shape>, String> {
    let e = ExtHeader::of(r)?;
    let len = e.schema_len.load(Ordering::Relaxed);
    if len == 0 {
        return Ok(None);
    }
    let Some(area) = schema_area(e, r.ext().1, len) else {
        return Err(format!(
            "its record schema claims {len} bytes, more than its extension area of {} bytes              holds after the header (or than the {MAX_SCHEMA} a schema may take)",
            r.ext().1
        ));
    };
    let bytes: Vec<u8> = area.iter().map(|b| b.load(Ordering::Relaxed)).collect();
    Shape::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| format!("its {e}"))
}

const NAME_OFF: [usize; 2] = [8, 68];
const NAME_MAX: usize = 60;

fn cleanup_code(c: Cleanup) -> u32 {
    match c {
        Cleanup::Creator => 1,
        Cleanup::LastDetach => 2,
        Cleanup::Keep => 3,
        Cleanup::WhenDrained => 4,
    }
}

pub(super) fn cleanup_of(code: u32) -> Option<Cleanup> {
    match code {
        1 => Some(Cleanup::Creator),
        2 => Some(Cleanup::LastDetach),
        3 => Some(Cleanup::Keep),
        4 => Some(Cleanup::WhenDrained),
        _ => None,
    }
}

/// A copy of what a segment's ext area says, for [`crate::inspect`].
pub(crate) struct ExtSnapshot {
    pub doorbell: Result<Doorbell, u32>,
    pub record_name: String,
    /// The declared record layout (`None` also when the claim does not parse).
    pub record_shape: Option<Shape>,
    /// Whether it is a byte channel with a length lane (its version says so).
    pub lane: bool,
    pub schema_version: u32,
    pub creator_pid: u32,
    /// Its PID namespace (0: unknown).
    pub creator_pidns: u64,
    /// The life set it records (semid + 1; 0: none): a claim.
    pub life_set: u32,
    pub cleanup: Option<Cleanup>,
    pub created_unix_ns: u64,
    pub live: [u32; 2],
    pub sleeps: [u64; 2],
    pub posts: u64,
    /// Each live entry, with its counters.
    pub endpoints: Vec<Listed>,
    /// The doorbell's objects (when the doorbell code is known).
    pub bell: Option<BellOwner>,
    pub attached: u32,
}

/// Reads and validates the ext area of an opened ring (read-only).
pub(crate) fn read_ext(ring: &ring::RawRing) -> Result<ExtSnapshot, String> {
    let e = ExtHeader::of(ring)?;
    let r = Ordering::Relaxed;
    if e.magic.load(r) != EXT_MAGIC {
        return Err("bad extension magic".into());
    }
    let v = e.version.load(r);
    if v != EXT_VERSION && v != EXT_VERSION_LANE {
        return Err(format!(
            "unsupported extension version {v} (this build reads {EXT_VERSION} and \
             {EXT_VERSION_LANE})"
        ));
    }
    let code = e.doorbell.load(r);
    // The SPSC gate plays no part in reading.
    let (masks, endpoints) = e.table(false).listed();
    let doorbell = Doorbell::from_code(code).ok_or(code);
    Ok(ExtSnapshot {
        bell: doorbell.ok().map(|kind| BellOwner {
            kind,
            desc: e.read_desc(),
        }),
        doorbell,
        record_name: e.read_name(),
        record_shape: read_schema(ring).ok().flatten(),
        lane: v == EXT_VERSION_LANE,
        schema_version: e.schema_version.load(r),
        creator_pid: e.creator_pid.load(r),
        creator_pidns: e.creator_pidns.load(r),
        life_set: e.life_set.load(r),
        cleanup: cleanup_of(e.cleanup.load(r)),
        created_unix_ns: e.created_unix_ns.load(r),
        live: masks.map(u64::count_ones),
        sleeps: [e.sleeps[0].load(r), e.sleeps[1].load(r)],
        posts: e.posts.load(r),
        endpoints,
        attached: e.attached.load(r),
    })
}
