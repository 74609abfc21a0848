//! Read-only inspection of channel segments, for tools such as `shmchan ls` and `stat`.
//!
//! Inspection never writes and never attaches read-write: a SysV segment is attached with
//! `SHM_RDONLY` and a file is read, and the bytes are copied before they are parsed, so a
//! channel that is in use is not disturbed and a segment that is not shmchan's is never touched.

use shmchan_ring as ring;

use crate::backing::{Backing, Cleanup};
use crate::doorbell::{BellOwner, Doorbell, Vouched};
use crate::error::OpenError;
use crate::life::{judged_alive, Probe, Reader};
use crate::record::RecordInfo;
use crate::segment::{read_ext, RingKind, Role};

/// The first 8 bytes of every channel segment (the ring header's magic, little-endian).
///
/// ```
/// use shmchan::{inspect::MAGIC, Backing, Channel};
/// # let path = std::env::temp_dir().join(format!("shmchan-doc-magic-{}", std::process::id()));
/// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).create()?;
/// assert_eq!(std::fs::read(&path).unwrap()[..8], MAGIC);
/// # drop(chan); shmchan::remove(&Backing::file(&path))?;
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub const MAGIC: [u8; 8] = ring::MAGIC.to_le_bytes();

/// What inspecting a segment found.
///
/// ```
/// use shmchan::inspect::{inspect, inspect_bytes, Inspection};
/// use shmchan::{Backing, Channel};
/// # let path = std::env::temp_dir().join(format!("shmchan-doc-insp-{}", std::process::id()));
/// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).create()?;
/// assert!(matches!(inspect(&Backing::file(&path))?, Inspection::Channel(_)));
/// assert!(matches!(inspect_bytes(b"not a channel"), Inspection::Foreign));
/// # drop(chan); shmchan::remove(&Backing::file(&path))?;
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Debug)]
pub enum Inspection {
    /// A valid shmchan channel.
    Channel(Box<ChannelInfo>),
    /// It carries the shmchan magic but fails validation.
    Corrupted {
        /// Why it failed.
        reason: String,
    },
    /// Not a shmchan segment (wrong magic, or too short to tell).
    Foreign,
}

/// Everything a channel's header says, as read at one moment.
///
/// ```
/// use shmchan::inspect::{inspect, Inspection};
/// use shmchan::{Backing, Channel, RingKind};
/// # let path = std::env::temp_dir().join(format!("shmchan-doc-cinfo-{}", std::process::id()));
/// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).capacity(8).create()?;
/// chan.sender()?.send(1).unwrap();
/// let Inspection::Channel(info) = inspect(&Backing::file(&path))? else { panic!() };
/// assert_eq!((info.kind, info.capacity, info.len), (RingKind::Spsc, 8, 1));
/// assert_eq!((info.produced, info.consumed), (1, 0)); // one record in, none out yet
/// assert_eq!(info.record.size, 8);
/// # drop(chan); shmchan::remove(&Backing::file(&path))?;
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// SPSC or MPMC.
    pub kind: RingKind,
    /// Capacity in records.
    pub capacity: u32,
    /// The record fingerprint.
    pub record: RecordInfo,
    /// Distance between slots in bytes.
    pub slot_stride: u32,
    /// Bytes the channel occupies.
    pub total_len: u64,
    /// The ring layout version.
    pub layout_version: u32,
    /// Records in the ring.
    pub len: usize,
    /// Positions producers have claimed since creation (the producer cursor): its change over
    /// time is the records sent per unit of time (on MPMC, a slot passed over as skipped
    /// counts too). Whatever a peer wrote: for diagnostics.
    pub produced: u64,
    /// Positions consumers have claimed since creation (the consumer cursor): see `produced`.
    pub consumed: u64,
    /// Senders announced as asleep, waiting for room, right now.
    pub senders_waiting: u32,
    /// Receivers announced as asleep, waiting for records, right now.
    pub receivers_waiting: u32,
    /// The doorbell, or the unknown code found.
    pub doorbell: Result<Doorbell, u32>,
    /// The process that created the channel.
    pub creator_pid: u32,
    /// When it was created (nanoseconds since the Unix epoch).
    pub created_unix_ns: u64,
    /// The cleanup policy it was created with.
    pub cleanup: Option<Cleanup>,
    /// Live senders and receivers as counted in the segment.
    pub live_senders: u32,
    /// See `live_senders`.
    pub live_receivers: u32,
    /// How often senders / receivers went to sleep on the doorbell.
    pub sender_sleeps: u64,
    /// See `sender_sleeps`.
    pub receiver_sleeps: u64,
    /// How often the doorbell was rung.
    pub posts: u64,
    /// The registered endpoints.
    pub endpoints: Vec<EndpointInfo>,
    /// Processes attached through shmchan, as counted in the segment (a process killed with
    /// `SIGKILL` stays counted).
    pub attached: u32,
    /// The doorbell's kernel objects, described (`SysV message queue msqid 5`, …).
    pub doorbell_objects: String,
    pub(crate) bell: Option<BellOwner>,
    /// Who the kernel says the segment belongs to (unknown for bytes inspected without it).
    pub(crate) vouched: Vouched,
    /// The creator's PID namespace (0: unknown): whose pid `creator_pid` is.
    pub(crate) creator_pidns: u64,
    /// The life set the segment records (semid + 1; 0: none), unchecked.
    pub(crate) life_recorded: u32,
    /// That set, checked to be the segment's (SysV only): removed with it.
    pub(crate) life_set: Option<crate::life::CheckedSet>,
}

impl ChannelInfo {
    /// Pids of registered endpoints whose process is still alive.
    ///
    /// ```
    /// use shmchan::inspect::{inspect, Inspection};
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-pids-{}", std::process::id()));
    /// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).create()?;
    /// let _tx = chan.sender()?;
    /// let Inspection::Channel(info) = inspect(&Backing::file(&path))? else { panic!() };
    /// assert_eq!(info.live_pids(), [std::process::id()]);
    /// # drop((_tx, chan)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn live_pids(&self) -> Vec<u32> {
        self.endpoints
            .iter()
            .filter(|e| e.alive)
            .map(|e| e.pid)
            .collect()
    }
}

/// One registered endpoint, with what it did since it registered.
///
/// Each endpoint counts in its own entry of the segment's endpoint table: `records` it sent
/// (committed, by copy, batch or reservation) or received (including records read in place
/// by a peek), `sleeps` (how often it went to sleep on the doorbell, waiting for room or for
/// records) and `posts` (how often it rang the doorbell to wake the other side or its
/// siblings). Counting costs the endpoint a plain store to its own cache line per operation
/// (no atomic read-modify-write, no fence); a reader sees each count as of the endpoint's last
/// operation. The counts restart at 0 when an entry is reused; like everything read from a
/// segment, they are whatever the processes with access wrote.
///
/// ```
/// use shmchan::inspect::{inspect, Inspection};
/// use shmchan::{Backing, Channel};
/// # let path = std::env::temp_dir().join(format!("shmchan-doc-ep-{}", std::process::id()));
/// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).create()?;
/// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send_batch(&[1, 2, 3]).unwrap();
/// assert_eq!(rx.recv(), Ok(1));
/// let Inspection::Channel(info) = inspect(&Backing::file(&path))? else { panic!() };
/// let s = info.endpoints.iter().find(|e| e.role == "sender").unwrap();
/// let r = info.endpoints.iter().find(|e| e.role == "receiver").unwrap();
/// assert_eq!((s.pid, s.alive), (std::process::id(), true));
/// assert_eq!((s.records, r.records), (3, 1));
/// assert_eq!((r.sleeps, r.posts), (0, 0)); // it never had to wait, nor to wake anyone
/// # drop((tx, rx, chan)); shmchan::remove(&Backing::file(&path))?;
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointInfo {
    /// `"sender"` or `"receiver"`.
    pub role: &'static str,
    /// Its process.
    pub pid: u32,
    /// Whether that process is alive, as far as can be told: its life token is still held
    /// (whatever its PID namespace), or, without a token, its pid and start time match in
    /// `/proc` (a process of this PID namespace). An endpoint of another PID namespace
    /// without a token counts as alive.
    pub alive: bool,
    /// Its entry in the endpoint table (0 to [`MAX_ENDPOINTS`](crate::MAX_ENDPOINTS) - 1):
    /// with `pid`, what tells the same endpoint apart in two inspections.
    pub slot: usize,
    /// Records it sent (a sender) or received (a receiver) since it registered.
    pub records: u64,
    /// Times it went to sleep on the doorbell.
    pub sleeps: u64,
    /// Times it rang the doorbell (wake-ups it sent).
    pub posts: u64,
}

#[repr(C, align(128))]
#[derive(Clone, Copy)]
struct Line([u8; 128]);

/// Inspects a segment's bytes (a copy is parsed; `bytes` is only read).
///
/// ```
/// use shmchan::inspect::{inspect_bytes, Inspection};
/// assert!(matches!(inspect_bytes(&[0u8; 4096]), Inspection::Foreign));
/// ```
pub fn inspect_bytes(bytes: &[u8]) -> Inspection {
    inspect_as(bytes, Vouched::Unknown, Probe::Nothing)
}

/// [`inspect_bytes`], for memory the kernel says `vouched` owns, whose life tokens
/// (`crate::life`) `probe` reaches: they tell which endpoints live.
fn inspect_as(bytes: &[u8], vouched: Vouched, probe: Probe<'_>) -> Inspection {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Inspection::Foreign;
    }
    let mut copy = vec![Line([0; 128]); bytes.len().div_ceil(128)];
    let len = bytes.len();
    // SAFETY: `copy` holds at least `len` bytes (whole lines), is 128-aligned (Line's
    // alignment), and we own it; the source is a plain slice that does not overlap it.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy.as_mut_ptr().cast::<u8>(), len) };
    let base = std::ptr::NonNull::new(copy.as_mut_ptr().cast::<u8>()).expect("vec pointer");
    // SAFETY: `base` is valid for reads and writes of `len` initialised bytes, 128-aligned, and
    // lives (in `copy`) until the end of this function, after the last use of the ring handle;
    // nobody else accesses the copy.
    let r = match unsafe { ring::RawRing::open(base, len) } {
        Ok(r) => r,
        Err(e) => {
            return Inspection::Corrupted {
                reason: e.to_string(),
            }
        }
    };
    let ext = match read_ext(&r) {
        Ok(x) => x,
        Err(reason) => return Inspection::Corrupted { reason },
    };
    let cfg = r.config();
    let hdr = r.header().snapshot();
    let tokens = Reader::new(probe, ext.life_set);
    let endpoints = ext
        .endpoints
        .iter()
        .map(|e| EndpointInfo {
            role: e.role.name(),
            pid: e.pid,
            alive: judged_alive(&tokens, e.slot, e.pid, e.start, e.pidns, e.token),
            slot: e.slot,
            records: e.records,
            sleeps: e.sleeps,
            posts: e.posts,
        })
        .collect();
    Inspection::Channel(Box::new(ChannelInfo {
        kind: RingKind::from_ring(cfg.kind),
        capacity: cfg.capacity,
        record: RecordInfo {
            size: cfg.record_size,
            align: cfg.record_align,
            name: ext.record_name,
            schema_version: ext.schema_version,
            shape: ext.record_shape.map(Box::new),
            lane: ext.lane,
        },
        slot_stride: cfg.slot_stride,
        total_len: hdr.total_len,
        layout_version: hdr.layout_version,
        len: r.len(),
        produced: r.positions().0,
        consumed: r.positions().1,
        senders_waiting: r.room_cell().sleepers(),
        receivers_waiting: r.data_cell().sleepers(),
        doorbell: ext.doorbell,
        creator_pid: ext.creator_pid,
        created_unix_ns: ext.created_unix_ns,
        cleanup: ext.cleanup,
        live_senders: ext.live[Role::Sender as usize - 1],
        live_receivers: ext.live[Role::Receiver as usize - 1],
        sender_sleeps: ext.sleeps[Role::Sender as usize - 1],
        receiver_sleeps: ext.sleeps[Role::Receiver as usize - 1],
        posts: ext.posts,
        endpoints,
        attached: ext.attached,
        doorbell_objects: ext
            .bell
            .as_ref()
            .map_or_else(|| "unknown".into(), |b| b.describe()),
        bell: ext.bell,
        vouched,
        creator_pidns: ext.creator_pidns,
        life_recorded: ext.life_set,
        life_set: tokens.set(),
    }))
}

/// [`inspect_bytes`], and who the kernel says the bytes belong to, and how its life tokens
/// are reached.
fn inspect_vouched(bytes: &[u8], vouched: Vouched, probe: Probe<'_>) -> Inspection {
    inspect_as(bytes, vouched, probe)
}

/// The life set that SysV segment `shmid` records (semid + 1; 0: none), if it is a channel
/// (unchecked: a claim).
pub(crate) fn recorded_life_set(shmid: i32) -> Option<u32> {
    match Backing::sysv_id(shmid).read_with(inspect_vouched) {
        Ok(Inspection::Channel(info)) => Some(info.life_recorded),
        _ => None,
    }
}

/// Inspects the channel at a SysV key or id, a file path, or in a received memfd
/// ([`Backing::receive`]; read, never mapped).
///
/// ```
/// use shmchan::inspect::{inspect, Inspection};
/// use shmchan::{Backing, Channel, OpenError};
/// # let path = std::env::temp_dir().join(format!("shmchan-doc-inspect-{}", std::process::id()));
/// let b = Backing::file(&path);
/// assert!(matches!(inspect(&b), Err(OpenError::NotFound { .. })));
/// let chan = Channel::<u64>::builder().backing(b.clone()).create()?;
/// let Inspection::Channel(info) = inspect(&b)? else { panic!() };
/// assert_eq!(info.creator_pid, std::process::id());
/// # drop(chan); shmchan::remove(&b)?;
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub fn inspect(backing: &Backing) -> Result<Inspection, OpenError> {
    backing.read_with(inspect_vouched)
}

/// A SysV shared memory segment on this machine and what inspecting it found.
///
/// ```
/// use shmchan::inspect::{list_sysv, Inspection};
/// use shmchan::{Backing, Channel, Cleanup};
/// let chan = Channel::<u64>::builder()
///     .backing(Backing::sysv_private())
///     .cleanup(Cleanup::LastDetach)
///     .create()?;
/// let id = chan.shm_id().unwrap();
/// let seg = list_sysv()?.into_iter().find(|s| s.shmid == id).expect("listed");
/// assert!(seg.nattch >= 1 && matches!(seg.inspection, Inspection::Channel(_)));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SysvSegment {
    /// Its key (0 = `IPC_PRIVATE`, or marked for removal).
    pub key: i32,
    /// Its id.
    pub shmid: i32,
    /// Its size in bytes.
    pub size: u64,
    /// Processes attached.
    pub nattch: u64,
    /// What it holds.
    pub inspection: Inspection,
}

/// Every SysV segment on this machine (from `/proc/sysvipc/shm`), inspected. Segments that
/// cannot be attached (no permission, removed meanwhile) are left out.
///
/// ```
/// use shmchan::inspect::{list_sysv, Inspection};
/// use shmchan::{Backing, Channel, Cleanup};
/// let chan = Channel::<u64>::builder()
///     .backing(Backing::sysv_private())
///     .cleanup(Cleanup::LastDetach)
///     .create()?;
/// let ours = list_sysv()?.into_iter().filter(|s| Some(s.shmid) == chan.shm_id());
/// assert!(ours.map(|s| s.inspection).all(|i| matches!(i, Inspection::Channel(_))));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub fn list_sysv() -> Result<Vec<SysvSegment>, OpenError> {
    let text =
        std::fs::read_to_string("/proc/sysvipc/shm").map_err(|e| OpenError::InvalidConfig {
            reason: format!("cannot read /proc/sysvipc/shm: {e}"),
        })?;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(key), Some(shmid), Some(size), Some(nattch)) = (
            f.first().and_then(|s| s.parse::<i64>().ok()),
            f.get(1).and_then(|s| s.parse::<i32>().ok()),
            f.get(3).and_then(|s| s.parse::<u64>().ok()),
            f.get(6).and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let Ok(inspection) = Backing::sysv_id(shmid).read_with(inspect_vouched) else {
            continue;
        };
        out.push(SysvSegment {
            key: key as i32,
            shmid,
            size,
            nattch,
            inspection,
        });
    }
    Ok(out)
}
