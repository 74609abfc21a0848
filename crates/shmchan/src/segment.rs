//! The segment: a ring (from `shmchan-ring`) plus shmchan's own area in the ring's `ext`
//! region (record name, doorbell descriptor, endpoint table, counters), the create/open
//! handshake and the endpoint registry.
//!
//! This is the one module that turns mapped memory into references: everything in the shared
//! area is an atomic (a peer process may write any of it at any time), every field read from it
//! is validated before use, and values the fast path relies on (kind, capacity, record size)
//! are copied into the handle once, at open, after validation.

use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmchan_os as os;
use shmchan_ring as ring;

use crate::backing::{self, Backing, Cleanup, Mapping, Owner, Reclaim};
use crate::doorbell::{Bell, BellOwner, Created, Desc, Doorbell, Slept};
use crate::error::{os_error, OpenError};
use crate::record::{RecordInfo, MAX_TYPE_NAME};

/// How many endpoints (senders plus receivers, in all processes) one channel can have.
///
/// ```
/// use shmchan::{Channel, OpenError, MAX_ENDPOINTS};
/// let chan = Channel::<u64>::builder().mpmc().create()?;
/// let mut senders = Vec::new();
/// let err = loop {
///     match chan.sender() {
///         Ok(tx) => senders.push(tx),
///         Err(e) => break e,
///     }
/// };
/// assert!(matches!(err, OpenError::TooManyEndpoints));
/// assert_eq!(senders.len(), MAX_ENDPOINTS);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub const MAX_ENDPOINTS: usize = 64;

const EXT_MAGIC: u64 = u64::from_le_bytes(*b"SHMCHEXT");
const EXT_VERSION: u32 = 1;

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

/// Which side of the channel an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Sender = 1,
    Receiver = 2,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }

    fn index(self) -> usize {
        self as usize - 1
    }

    pub(crate) fn peer(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }
}

/// `Endpoint::pid` of a free entry.
const FREE: u32 = 0;
/// `Endpoint::pid` of an entry a reaper is freeing.
const REAPING: u32 = u32::MAX;
/// `Endpoint::pid` of a dead MPMC endpoint whose announced slots still need settling (a dead
/// consumer's records wait for a live consumer to adopt them).
const ORPHAN: u32 = u32::MAX - 1;

/// One endpoint-table entry. `pid` is the claim word (CAS from [`FREE`] to the claimer's pid);
/// the entry counts as a live endpoint only while its bit is set in the role's live mask
/// (`ExtHeader::live`). So a process killed at any step of registration leaves either a free
/// entry, a claimed entry without a live bit (freed by a reaper), or a live one (its bit cleared
/// and the entry freed by a reaper): never a count that nobody can correct.
///
/// Each entry has a 128-byte line of its own: an MPMC endpoint writes its [`ring::Working`]
/// announcement on every operation, and must not share that line with another endpoint.
#[repr(C, align(128))]
pub(crate) struct Endpoint {
    pid: AtomicU32,
    role: AtomicU32,
    /// SysV message queue doorbell: 1 while this endpoint sleeps unclaimed (the token of the
    /// targeted protocol, see `doorbell`).
    asleep: AtomicU32,
    _r: AtomicU32,
    start_time: AtomicU64,
    _r2: AtomicU64,
    /// The MPMC position this endpoint is claiming or working on (crash recovery: a survivor
    /// settles it when this endpoint's process dies; see `shmchan_ring::settle`).
    working: ring::Working,
}

/// shmchan's area inside the ring's `ext` region. Every field is atomic: the memory is shared
/// with processes we do not trust.
#[repr(C, align(128))]
pub(crate) struct ExtHeader {
    magic: AtomicU64,
    version: AtomicU32,
    doorbell: AtomicU32,
    schema_version: AtomicU32,
    name_len: AtomicU32,
    name: [AtomicU32; MAX_TYPE_NAME / 4],
    creator_pid: AtomicU32,
    cleanup: AtomicU32,
    created_unix_ns: AtomicU64,
    /// What a peer needs to reach the doorbell's kernel objects: word 0 the SysV id, bytes
    /// 8..68 and 68..128 the POSIX names (NUL-padded).
    doorbell_desc: [AtomicU64; 16],
    /// The POSIX semaphore doorbell's two `sem_t` (data, room).
    posix_sems: [SemStore; 2],
    /// Processes attached through shmchan (for `Cleanup::LastDetach` of doorbell objects).
    attached: AtomicU32,
    _pad: [AtomicU32; 7],
    /// Live endpoints per role (`[senders, receivers]`): bit i set = entry i is live.
    live: [AtomicU64; 2],
    /// Whether an endpoint of each role ever registered.
    ever: [AtomicU32; 2],
    _pad2: [AtomicU32; 6],
    /// Slow-path counters: sleeps per role and doorbell posts.
    sleeps: [AtomicU64; 2],
    posts: AtomicU64,
    endpoints: [Endpoint; MAX_ENDPOINTS],
}

/// Storage for one `sem_t` (32 bytes on Linux/x86_64 and aarch64; asserted below). Only ever
/// accessed through `sem_*` calls, which are atomic.
#[repr(C, align(8))]
pub(crate) struct SemStore([AtomicU64; 4]);

const _: () = assert!(os::RawSem::SIZE <= size_of::<SemStore>());
const _: () = assert!(os::RawSem::ALIGN <= core::mem::align_of::<SemStore>());
const _: () = assert!(size_of::<Endpoint>() == 128);
const _: () = assert!(MAX_TYPE_NAME % 4 == 0);
const _: () = assert!(core::mem::offset_of!(ExtHeader, name) == 24);
const _: () = assert!(core::mem::offset_of!(ExtHeader, endpoints) % 128 == 0);
const _: () = assert!(size_of::<ExtHeader>() % 128 == 0);
const _: () = assert!(size_of::<ExtHeader>() <= 16384);

/// Everything the builder decided.
pub(crate) struct SegmentConfig<'a> {
    pub backing: &'a Backing,
    pub kind: RingKind,
    pub capacity: u32,
    pub record: &'a RecordInfo,
    pub doorbell: Doorbell,
    pub mode: u32,
    pub cleanup: Cleanup,
    /// Where a channel is in the way of creating this one: removes it if it is stale (told
    /// what is in the way; see `crate::removal::reclaim_stale`). `None`: never reclaim.
    pub reclaim: Option<Reclaim<'a>>,
}

/// What an opener expects (each `None` adopts what the segment says).
pub(crate) struct Expect<'a> {
    pub backing: &'a Backing,
    pub kind: Option<RingKind>,
    pub capacity: Option<u32>,
    pub record: &'a RecordInfo,
    /// Accept a record of any size that otherwise matches `record` (byte channels adopt the
    /// creator's maximum message length).
    pub any_size: bool,
    pub doorbell: Option<Doorbell>,
    pub timeout: Duration,
}

/// A mapped, validated channel segment.
pub(crate) struct Segment {
    ring: ring::RawRing,
    ext: NonNull<ExtHeader>,
    pub(crate) kind: RingKind,
    pub(crate) capacity: u32,
    bell: Bell,
    pub(crate) backing: Backing,
    owner: Owner,
    /// The doorbell's kernel objects, to remove with the channel.
    bell_owner: BellOwner,
    cleanup: Option<Cleanup>,
    creator_pid: u32,
    /// The pid that counted itself in `attached` (a forked child's copy must not uncount).
    attached_pid: u32,
    // Last: the memory everything above points into is unmapped after the rest is dropped.
    mapping: Mapping,
}

// SAFETY: `ring` and `ext` point into `mapping`, which this value owns and which stays mapped
// until it is dropped; all shared state behind them is accessed through atomics only.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` gives out only atomics-backed views.
unsafe impl Sync for Segment {}

impl Segment {
    /// Bytes a channel of this shape occupies.
    pub(crate) fn required_len(
        kind: RingKind,
        capacity: u32,
        record: &RecordInfo,
    ) -> Result<usize, OpenError> {
        let layout = ring::Layout::new(&ring_config(kind, capacity, record)).map_err(|e| {
            OpenError::InvalidConfig {
                reason: e.to_string(),
            }
        })?;
        usize::try_from(layout.total_len).map_err(|_| OpenError::InvalidConfig {
            reason: "segment too large for this address space".into(),
        })
    }

    pub(crate) fn create(cfg: &SegmentConfig<'_>) -> Result<Segment, OpenError> {
        if cfg.record.align > 128 {
            return Err(OpenError::InvalidConfig {
                reason: format!(
                    "record alignment {} exceeds the 128 bytes a slot guarantees",
                    cfg.record.align
                ),
            });
        }
        if cfg.record.size == 0 {
            return Err(OpenError::InvalidConfig {
                reason: "zero-sized records carry nothing; use a one-byte record".into(),
            });
        }
        crate::backing::memfd::check_doorbell(cfg.backing, cfg.doorbell)?;
        let ring_cfg = ring_config(cfg.kind, cfg.capacity, cfg.record);
        let len = Segment::required_len(cfg.kind, cfg.capacity, cfg.record)?;
        let created = Created::new(cfg.doorbell, os::Mode::new(cfg.mode))
            .map_err(|e| os_error(e, &format!("{} doorbell", cfg.doorbell)))?;
        let (mapping, owner) =
            backing::create(cfg.backing, len, cfg.mode, cfg.cleanup, cfg.reclaim)?;
        // From here on, dropping `guard` (or `created`) removes what we created if
        // initialisation fails.
        let guard = CreateGuard(Some(owner));
        let mut sem_err = None;
        let fill = |ext: NonNull<u8>, ext_len: usize| {
            debug_assert!(ext_len >= size_of::<ExtHeader>());
            // SAFETY: `Layout::new` placed the ext area, 128-aligned and `ext_len` (≥ the size
            // of ExtHeader, which we asked for) bytes long, inside the region, and `init_with`
            // zeroed it; every field of ExtHeader is an atomic, valid for any bits.
            let e = unsafe { ext.cast::<ExtHeader>().as_ref() };
            init_ext(e, cfg, created.desc());
            if cfg.doorbell == Doorbell::PosixSem {
                for p in sem_ptrs(e) {
                    // SAFETY: the storage is SemStore-sized and -aligned (asserted to fit a
                    // sem_t), inside the mapping, not yet visible to any other process
                    // (`ready` is published after `fill`), and initialised exactly once.
                    if let Err(err) = unsafe { os::RawSem::init_at(p, 0) } {
                        sem_err = Some(err);
                    }
                }
            }
        };
        // SAFETY: the mapping is valid for `len` initialised (zero-filled) bytes, page- (so
        // 128-) aligned, stays mapped while the Segment lives (it owns it), and nobody else can
        // have it yet (IPC_EXCL / O_EXCL / anonymous), so this initialisation is exclusive.
        // `init_with` writes the ext area through `fill` before it publishes `ready`.
        let ring = unsafe { ring::RawRing::init_with(mapping.base(), len, &ring_cfg, fill) }
            .map_err(|e| OpenError::InvalidConfig {
                reason: e.to_string(),
            })?;
        if let Some(e) = sem_err {
            return Err(OpenError::Os(e));
        }
        let ext = ring.ext().0.cast::<ExtHeader>();
        // SAFETY: as in `fill`.
        let sems = sem_ptrs(unsafe { ext.as_ref() });
        let (bell, bell_owner) = created.keep(sems);
        let owner = guard.disarm();
        // SAFETY: as in `fill`.
        unsafe { ext.as_ref() }
            .attached
            .fetch_add(1, Ordering::SeqCst);
        Ok(Segment {
            ring,
            ext,
            kind: cfg.kind,
            capacity: cfg.capacity,
            bell,
            backing: cfg.backing.clone(),
            owner,
            bell_owner,
            cleanup: Some(cfg.cleanup),
            creator_pid: std::process::id(),
            attached_pid: std::process::id(),
            mapping,
        })
    }

    pub(crate) fn open(expect: &Expect<'_>) -> Result<Segment, OpenError> {
        let deadline = Instant::now() + expect.timeout;
        let what = expect.backing.to_string();
        loop {
            let mapping = match backing::open(expect.backing) {
                // A file whose creator has not sized it yet reads as empty: wait for it.
                Err(OpenError::Os(e))
                    if e.kind() == os::ErrorKind::InvalidInput && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                r => r?,
            };
            // SAFETY: the mapping is valid for `len()` bytes and page-aligned, and it is kept
            // alive by the Segment below together with the ring handle. `open` validates every
            // header field before use and never writes.
            match unsafe { ring::RawRing::open(mapping.base(), mapping.len()) } {
                Ok(r) => return Segment::finish_open(r, mapping, expect),
                Err(ring::OpenError::NotReady { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(ring::OpenError::NotReady { .. }) => {
                    return Err(OpenError::NotReady { what });
                }
                Err(ring::OpenError::UnsupportedVersion { found }) => {
                    return Err(OpenError::Version {
                        expected: ring::LAYOUT_VERSION,
                        found,
                    });
                }
                Err(e) => {
                    return Err(OpenError::Corrupted {
                        reason: format!("{what}: {e}"),
                    })
                }
            }
        }
    }

    fn finish_open(
        r: ring::RawRing,
        mapping: Mapping,
        x: &Expect<'_>,
    ) -> Result<Segment, OpenError> {
        let what = x.backing.to_string();
        let corrupted = |reason: String| OpenError::Corrupted {
            reason: format!("{what}: {reason}"),
        };
        let cfg = r.config();
        let (ext_ptr, ext_len) = r.ext();
        if ext_len < size_of::<ExtHeader>() || ext_ptr.as_ptr() as usize % 128 != 0 {
            return Err(corrupted(format!(
                "extension area of {ext_len} bytes is smaller than the {} shmchan needs",
                size_of::<ExtHeader>()
            )));
        }
        let ext = ext_ptr.cast::<ExtHeader>();
        // SAFETY: the ring validated that the ext area lies inside the mapping; we checked its
        // size and alignment just above; every field is an atomic, valid for any bits.
        let e = unsafe { ext.as_ref() };
        if e.magic.load(Ordering::Relaxed) != EXT_MAGIC {
            return Err(corrupted("bad extension magic".into()));
        }
        let ext_version = e.version.load(Ordering::Relaxed);
        if ext_version != EXT_VERSION {
            return Err(OpenError::Version {
                expected: EXT_VERSION,
                found: ext_version,
            });
        }
        let door_code = e.doorbell.load(Ordering::Relaxed);
        let doorbell = Doorbell::from_code(door_code)
            .ok_or_else(|| corrupted(format!("unknown doorbell code {door_code}")))?;
        let found = RecordInfo {
            size: cfg.record_size,
            align: cfg.record_align,
            name: read_name(e),
            schema_version: e.schema_version.load(Ordering::Relaxed),
        };
        let mut expected = x.record.clone();
        if x.any_size {
            expected.size = cfg.record_size;
        }
        if cfg.fingerprint != expected.fingerprint() {
            return Err(OpenError::TypeMismatch {
                expected: x.record.clone(),
                found,
            });
        }
        let kind = RingKind::from_ring(cfg.kind);
        if let Some(k) = x.kind {
            if k != kind {
                return Err(OpenError::Mismatch {
                    field: "ring kind",
                    expected: k.to_string(),
                    found: kind.to_string(),
                });
            }
        }
        if let Some(d) = x.doorbell {
            if d != doorbell {
                return Err(OpenError::Mismatch {
                    field: "doorbell",
                    expected: d.to_string(),
                    found: doorbell.to_string(),
                });
            }
        }
        if let Some(c) = x.capacity {
            if c != cfg.capacity {
                return Err(OpenError::Mismatch {
                    field: "capacity",
                    expected: c.to_string(),
                    found: cfg.capacity.to_string(),
                });
            }
        }
        let desc = read_desc(e);
        let efds = crate::backing::memfd::bell_fds(x.backing, doorbell, &what)?;
        let bell = Bell::open(doorbell, &desc, sem_ptrs(e)).map_err(|err| match err.kind() {
            os::ErrorKind::NotFound | os::ErrorKind::Removed | os::ErrorKind::InvalidInput => {
                OpenError::NotFound {
                    what: format!("{what}: its {doorbell} doorbell objects ({err})"),
                }
            }
            _ => os_error(err, &format!("{what}: {doorbell} doorbell")),
        })?;
        let bell = bell.with_eventfds(efds);
        e.attached.fetch_add(1, Ordering::SeqCst);
        Ok(Segment {
            ring: r,
            ext,
            kind,
            capacity: cfg.capacity,
            bell,
            backing: x.backing.clone(),
            owner: Owner::Nothing,
            bell_owner: BellOwner {
                kind: doorbell,
                desc,
            },
            cleanup: cleanup_of(e.cleanup.load(Ordering::Relaxed)),
            // An opener never acts as the creator, whatever pid the segment claims: a hostile
            // segment naming our pid must not make us remove doorbell objects on drop.
            creator_pid: 0,
            attached_pid: std::process::id(),
            mapping,
        })
    }

    pub(crate) fn ring(&self) -> &ring::RawRing {
        &self.ring
    }

    pub(crate) fn ext(&self) -> &ExtHeader {
        // SAFETY: validated at create/open to lie inside the mapping this Segment owns,
        // aligned and large enough; all fields are atomics.
        unsafe { self.ext.as_ref() }
    }

    pub(crate) fn shm_id(&self) -> Option<i32> {
        self.mapping.shm_id()
    }

    pub(crate) fn msync(&self) -> Result<(), os::Error> {
        self.mapping.msync()
    }

    /// Whether the `role` side is gone: some endpoint of it registered once and none is live.
    #[inline]
    pub(crate) fn gone(&self, role: Role) -> bool {
        // SeqCst: ordered with the waiter's announcement fence (see `wait`), like the ring
        // cursors, so that a waiter cannot miss the last peer's departure.
        let e = self.ext();
        e.live[role.index()].load(Ordering::SeqCst) == 0
            && e.ever[role.index()].load(Ordering::SeqCst) != 0
    }

    /// Registers an endpoint of `role` for this process; returns its table slot.
    pub(crate) fn register(&self, role: Role) -> Result<usize, OpenError> {
        let e = self.ext();
        let me = std::process::id();
        let start = os::process::start_time(me as i32)
            .ok()
            .flatten()
            .unwrap_or(0);
        let slot = match self.claim_entry(me) {
            Some(i) => i,
            None => {
                self.reap_dead(Role::Sender);
                self.reap_dead(Role::Receiver);
                self.claim_entry(me).ok_or(OpenError::TooManyEndpoints)?
            }
        };
        let ep = &e.endpoints[slot];
        ep.role.store(role as u32, Ordering::Relaxed);
        ep.start_time.store(start, Ordering::Relaxed);
        // A previous owner's record was settled before its entry was freed: clear here.
        ep.working.store_raw(0, 0);
        ep.asleep.store(0, Ordering::Relaxed);
        let bit = 1u64 << slot;
        let mask = &e.live[role.index()];
        if self.kind == RingKind::Spsc {
            // The SPSC gate: the live mask goes from empty to our bit, or someone else holds
            // the role. A holder whose process died is reaped and the gate tried again.
            let mut reaped = false;
            // SYNC(endpoint-live): the Release half of these publishes role/start_time.
            while let Err(held) = mask.compare_exchange(0, bit, Ordering::SeqCst, Ordering::SeqCst)
            {
                if !reaped && self.reap_dead(role) > 0 {
                    reaped = true;
                    continue;
                }
                ep.pid.store(FREE, Ordering::Release);
                let holder = held.trailing_zeros() as usize;
                let pid = e
                    .endpoints
                    .get(holder)
                    .map_or(0, |h| h.pid.load(Ordering::Relaxed));
                return Err(OpenError::EndpointTaken {
                    role: role.name(),
                    pid,
                });
            }
        } else {
            mask.fetch_or(bit, Ordering::SeqCst);
        }
        e.ever[role.index()].store(1, Ordering::SeqCst);
        Ok(slot)
    }

    /// Claims a free entry for `pid` (CAS of its claim word).
    fn claim_entry(&self, pid: u32) -> Option<usize> {
        self.ext().endpoints.iter().position(|ep| {
            ep.pid
                .compare_exchange(FREE, pid, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Removes this process's endpoint in `slot` and wakes the peers' waiters so that they
    /// notice a disconnection.
    pub(crate) fn deregister(&self, role: Role, slot: usize) {
        let e = self.ext();
        if let Some(ep) = e.endpoints.get(slot) {
            // Only if the entry is still ours (a scribbling peer, or a reaper that took us for
            // dead, may have freed it): never clear someone else's bit.
            if ep.pid.load(Ordering::Acquire) == std::process::id() {
                e.live[role.index()].fetch_and(!(1u64 << slot), Ordering::SeqCst);
                ep.asleep.store(0, Ordering::Relaxed);
                ep.pid.store(FREE, Ordering::Release);
            }
        }
        self.wake_all(role.peer());
    }
    /// After a receive freed slots: rings the doorbell if senders sleep waiting for room, once
    /// at least half of the ring is free (the low-water mark).
    ///
    /// A sender that outruns its receiver sleeps on a full ring; waking it for every freed
    /// slot would cost it a wake-up (and a sleep) per record. Held until half the ring is
    /// free, one wake-up lets it refill half a ring. The wake-up is never lost: a receiver
    /// that keeps receiving passes the mark, a drained ring is below it, every departure
    /// wakes all, and a sender also re-checks for room at the end of each 50 ms slice (and at
    /// its deadline) — so a receiver that stops halfway delays a waiting sender by at most
    /// one slice.
    #[inline]
    pub(crate) fn wake_senders(&self) {
        let cell = self.cell(Role::Sender);
        // The fast path of `WaitCell::take_tokens`: a fence and one load when nobody sleeps.
        // SeqCst fence: orders the caller's release of slots before the load of `sleepers`,
        // the Dekker pair of a sleeping sender's `WaitCell::announce` (see shmchan_ring::wait).
        std::sync::atomic::fence(Ordering::SeqCst);
        if cell.sleepers() == 0 {
            return;
        }
        self.wake_senders_slow();
    }

    #[cold]
    fn wake_senders_slow(&self) {
        if self.ring.len() > self.capacity as usize / 2 {
            return; // still more than half full: held back
        }
        self.wake_all(Role::Sender);
    }

    /// Wakes every announced waiter of `role` (they re-check, and see a disconnection).
    #[inline]
    pub(crate) fn wake_all(&self, role: Role) {
        self.bell.ring(self, role);
    }

    /// After a receive found the ring empty: on MPMC, passing over skipped slots may have
    /// freed room, so sleeping senders must hear of it (the ring's documented contract).
    #[inline]
    pub(crate) fn after_empty(&self) {
        if self.kind == RingKind::Mpmc {
            self.wake_all(Role::Sender);
        }
    }

    /// Sets (`true`) or clears (`false`, a CAS from 1) the `asleep` flag of entry `slot`;
    /// returns whether the flag changed as asked (a failed clear means a ringer claimed it).
    pub(crate) fn set_asleep(&self, slot: usize, v: bool) -> bool {
        let Some(ep) = self.ext().endpoints.get(slot) else {
            return true;
        };
        if v {
            // SeqCst: ordered before the announcement, so a ringer that sees the announcement
            // (after its fence) sees the flag.
            ep.asleep.store(1, Ordering::SeqCst);
            true
        } else {
            ep.asleep
                .compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        }
    }

    /// Claims every sleeping endpoint of `role` (clears its `asleep` flag); returns their
    /// slots. The claimer owes each one a wake-up message.
    pub(crate) fn claim_sleepers(&self, role: Role) -> Vec<usize> {
        let e = self.ext();
        let live = e.live[role.index()].load(Ordering::SeqCst);
        let mut out = Vec::new();
        for (i, ep) in e.endpoints.iter().enumerate() {
            if live & (1 << i) != 0
                && ep.asleep.load(Ordering::SeqCst) == 1
                && ep
                    .asleep
                    .compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                out.push(i);
            }
        }
        out
    }

    /// The announcement record of entry `slot`, for an MPMC handle (`set_working`).
    pub(crate) fn working(&self, slot: usize) -> NonNull<ring::Working> {
        NonNull::from(&self.ext().endpoints[slot].working)
    }

    /// Settles the slots that dead MPMC endpoints (orphaned entries) had claimed: a dead
    /// producer's are marked skipped; a dead consumer's records are adopted by `adopter` (a
    /// live consumer of this process) and handed to `deliver` — at-least-once delivery. Frees
    /// each entry once its record is settled; returns whether anything was settled.
    pub(crate) fn settle_orphans(
        &self,
        mut adopter: Option<&mut ring::MpmcConsumer>,
        mut deliver: impl FnMut(NonNull<u8>),
    ) -> bool {
        let e = self.ext();
        let live = e.endpoints.iter().filter_map(|ep| {
            let pid = ep.pid.load(Ordering::Acquire);
            (pid != FREE && pid != REAPING && pid != ORPHAN).then_some(&ep.working)
        });
        let mut progress = false;
        for ep in &e.endpoints {
            if ep.pid.load(Ordering::Acquire) != ORPHAN {
                continue;
            }
            let settled = match ep.role.load(Ordering::Relaxed) {
                // A receiver that died while handing adopted records back to the ring holds a
                // producer's claim: settled like a dead sender.
                r if r == Role::Sender as u32 || ep.working.announces_producer() => {
                    let r = self.ring.settle_producer(&ep.working, live.clone());
                    if matches!(r, Ok(s) if s.settled + s.freed > 0) {
                        self.wake_all(Role::Receiver);
                    }
                    r
                }
                _ => match adopter.as_deref_mut() {
                    Some(c) => {
                        let r = c.adopt(&ep.working, live.clone(), &mut deliver);
                        if matches!(r, Ok(s) if s.settled + s.freed > 0) {
                            self.wake_all(Role::Sender);
                        }
                        r
                    }
                    None => continue,
                },
            };
            let done = match settled {
                Ok(s) => {
                    progress |= s.settled + s.freed > 0;
                    s.is_done()
                }
                // A record no settle can use (scribbled): nothing to wait for.
                Err(_) => true,
            };
            if done {
                ep.working.store_raw(0, 0);
                let _ = ep
                    .pid
                    .compare_exchange(ORPHAN, FREE, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
        progress
    }

    /// The wait cell that waiters of `role` announce themselves in.
    pub(crate) fn cell(&self, role: Role) -> &ring::WaitCell {
        match role {
            Role::Receiver => self.ring.data_cell(),
            Role::Sender => self.ring.room_cell(),
        }
    }

    pub(crate) fn note_sleep(&self, role: Role) {
        self.ext().sleeps[role.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn note_post(&self) {
        self.ext().posts.fetch_add(1, Ordering::Relaxed);
    }

    /// Frees the entries whose process is dead (pid and start time, so a reused pid does not
    /// count as alive): live endpoints of `role`, and entries of any role whose owner died in
    /// the middle of registering. Returns how many live endpoints of `role` were reaped.
    pub(crate) fn reap_dead(&self, role: Role) -> u32 {
        let e = self.ext();
        let mask = &e.live[role.index()];
        let mut reaped = 0;
        for (i, ep) in e.endpoints.iter().enumerate() {
            let pid = ep.pid.load(Ordering::Acquire);
            if pid == FREE || pid == REAPING {
                continue;
            }
            let bit = 1u64 << i;
            let is_live = |m: &AtomicU64| m.load(Ordering::SeqCst) & bit != 0;
            let ours = is_live(mask);
            let half_registered = !is_live(&e.live[0]) && !is_live(&e.live[1]);
            if !ours && !half_registered {
                continue;
            }
            // SYNC(endpoint-live): start_time was written before the live bit was set.
            let start = ep.start_time.load(Ordering::Relaxed);
            let alive = if pid > i32::MAX as u32 {
                false
            } else if start == 0 || !ours {
                // Still registering (or a host without /proc start times): judge by pid alone.
                os::process::start_time(pid as i32).ok().flatten().is_some()
            } else {
                os::process::is_alive(pid as i32, start)
            };
            if alive {
                continue;
            }
            // One reaper wins the entry; the live bit is cleared before the entry is free, so
            // a new owner's bit is never touched.
            if ep
                .pid
                .compare_exchange(pid, REAPING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                if mask.fetch_and(!bit, Ordering::SeqCst) & bit != 0 {
                    reaped += 1;
                }
                ep.asleep.store(0, Ordering::Relaxed);
                if self.kind == RingKind::Mpmc && !ep.working.is_clear() {
                    // It died holding a claim: keep its record until the claim is settled.
                    ep.pid.store(ORPHAN, Ordering::Release);
                } else {
                    ep.pid.store(FREE, Ordering::Release);
                }
            }
        }
        if self.kind == RingKind::Mpmc {
            self.settle_orphans(None, |_| {});
        }
        reaped
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let me = std::process::id();
        // A forked child inherits a copy of its parent's handle: only the process that counted
        // itself uncounts, and only the creating process removes what it created.
        let last =
            me == self.attached_pid && self.ext().attached.fetch_sub(1, Ordering::SeqCst) == 1;
        match self.cleanup {
            Some(Cleanup::Creator)
                if me == self.creator_pid && !matches!(self.owner, Owner::Nothing) =>
            {
                self.owner.run();
                self.bell_owner.remove();
            }
            Some(Cleanup::Creator) if me == self.creator_pid => {
                // Anonymous memory: the mapping goes with the last process; the doorbell
                // objects go with the creator.
                self.bell_owner.remove();
            }
            Some(Cleanup::LastDetach) if last => self.bell_owner.remove(),
            _ => {}
        }
    }
}

/// Runs the owner's cleanup if creation fails half-way.
struct CreateGuard(Option<Owner>);

impl CreateGuard {
    fn disarm(mut self) -> Owner {
        self.0.take().unwrap_or(Owner::Nothing)
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if let Some(o) = self.0.take() {
            o.run();
        }
    }
}

fn init_ext(e: &ExtHeader, cfg: &SegmentConfig<'_>, desc: &Desc) {
    let r = Ordering::Relaxed;
    e.magic.store(EXT_MAGIC, r);
    e.version.store(EXT_VERSION, r);
    e.doorbell.store(cfg.doorbell.code(), r);
    e.schema_version.store(cfg.record.schema_version, r);
    let name = cfg.record.stored_name().as_bytes();
    e.name_len.store(name.len() as u32, r);
    let mut buf = [0u8; MAX_TYPE_NAME];
    buf[..name.len()].copy_from_slice(name);
    for (w, chunk) in e.name.iter().zip(buf.chunks_exact(4)) {
        w.store(u32::from_le_bytes(chunk.try_into().expect("4 bytes")), r);
    }
    e.creator_pid.store(std::process::id(), r);
    e.cleanup.store(
        match cfg.cleanup {
            Cleanup::Creator => 1,
            Cleanup::LastDetach => 2,
            Cleanup::Keep => 3,
        },
        r,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    e.created_unix_ns.store(now, r);
    write_desc(e, desc);
    for a in &e.live {
        a.store(0, r);
    }
    for a in &e.ever {
        a.store(0, r);
    }
    for a in e.sleeps.iter().chain([&e.posts]) {
        a.store(0, r);
    }
    for ep in &e.endpoints {
        ep.pid.store(FREE, r);
        ep.role.store(0, r);
        ep.start_time.store(0, r);
        ep.asleep.store(0, r);
    }
    e.attached.store(0, r);
    // Publication happens in `RawRing::init`, whose Release store of `ready` orders all of
    // the above before any opener's Acquire load of it.
}

fn read_name(e: &ExtHeader) -> String {
    let mut buf = [0u8; MAX_TYPE_NAME];
    for (w, chunk) in e.name.iter().zip(buf.chunks_exact_mut(4)) {
        chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    let len = (e.name_len.load(Ordering::Relaxed) as usize).min(MAX_TYPE_NAME);
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// A copy of what a segment's ext area says, for [`crate::inspect`].
pub(crate) struct ExtSnapshot {
    pub doorbell: Result<Doorbell, u32>,
    pub record_name: String,
    pub schema_version: u32,
    pub creator_pid: u32,
    pub cleanup: Option<Cleanup>,
    pub created_unix_ns: u64,
    pub live: [u32; 2],
    pub sleeps: [u64; 2],
    pub posts: u64,
    /// (role, pid, start time) of each live entry.
    pub endpoints: Vec<(Role, u32, u64)>,
    /// The doorbell's objects (when the doorbell code is known).
    pub bell: Option<BellOwner>,
    pub attached: u32,
}

/// Reads and validates the ext area of an opened ring (read-only).
pub(crate) fn read_ext(r: &ring::RawRing) -> Result<ExtSnapshot, String> {
    let (ptr, len) = r.ext();
    if len < size_of::<ExtHeader>() || ptr.as_ptr() as usize % 128 != 0 {
        return Err(format!(
            "extension area of {len} bytes is smaller than the {} shmchan needs",
            size_of::<ExtHeader>()
        ));
    }
    // SAFETY: the ring validated that the ext area lies inside its region; size and alignment
    // were checked just above; every field is an atomic, valid for any bits; we only load.
    let e = unsafe { ptr.cast::<ExtHeader>().as_ref() };
    let r = Ordering::Relaxed;
    if e.magic.load(r) != EXT_MAGIC {
        return Err("bad extension magic".into());
    }
    let v = e.version.load(r);
    if v != EXT_VERSION {
        return Err(format!(
            "unsupported extension version {v} (this build reads {EXT_VERSION})"
        ));
    }
    let code = e.doorbell.load(r);
    let masks = [e.live[0].load(r), e.live[1].load(r)];
    let endpoints = e
        .endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, ep)| {
            let role = if masks[0] & (1 << i) != 0 {
                Role::Sender
            } else if masks[1] & (1 << i) != 0 {
                Role::Receiver
            } else {
                return None;
            };
            Some((role, ep.pid.load(r), ep.start_time.load(r)))
        })
        .collect();
    let doorbell = Doorbell::from_code(code).ok_or(code);
    Ok(ExtSnapshot {
        bell: doorbell.ok().map(|kind| BellOwner {
            kind,
            desc: read_desc(e),
        }),
        doorbell,
        record_name: read_name(e),
        schema_version: e.schema_version.load(r),
        creator_pid: e.creator_pid.load(r),
        cleanup: cleanup_of(e.cleanup.load(r)),
        created_unix_ns: e.created_unix_ns.load(r),
        live: masks.map(u64::count_ones),
        sleeps: [e.sleeps[0].load(r), e.sleeps[1].load(r)],
        posts: e.posts.load(r),
        endpoints,
        attached: e.attached.load(r),
    })
}

fn cleanup_of(code: u32) -> Option<Cleanup> {
    match code {
        1 => Some(Cleanup::Creator),
        2 => Some(Cleanup::LastDetach),
        3 => Some(Cleanup::Keep),
        _ => None,
    }
}

/// The two in-segment `sem_t` of the POSIX semaphore doorbell.
fn sem_ptrs(e: &ExtHeader) -> [NonNull<os::RawSem>; 2] {
    [0, 1].map(|i| NonNull::from(&e.posix_sems[i]).cast::<os::RawSem>())
}

const NAME_OFF: [usize; 2] = [8, 68];
const NAME_MAX: usize = 60;

fn write_desc(e: &ExtHeader, d: &Desc) {
    let mut bytes = [0u8; 128];
    bytes[..4].copy_from_slice(&d.id.to_le_bytes());
    for (i, name) in d.names.iter().enumerate() {
        let n = name.as_bytes();
        let n = &n[..n.len().min(NAME_MAX - 1)];
        bytes[NAME_OFF[i]..NAME_OFF[i] + n.len()].copy_from_slice(n);
    }
    for (w, chunk) in e.doorbell_desc.iter().zip(bytes.chunks_exact(8)) {
        w.store(
            u64::from_le_bytes(chunk.try_into().expect("8 bytes")),
            Ordering::Relaxed,
        );
    }
}

pub(crate) fn read_desc(e: &ExtHeader) -> Desc {
    let mut bytes = [0u8; 128];
    for (w, chunk) in e.doorbell_desc.iter().zip(bytes.chunks_exact_mut(8)) {
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
    }
}

fn ring_config(kind: RingKind, capacity: u32, record: &RecordInfo) -> ring::RingConfig {
    ring::RingConfig {
        kind: kind.to_ring(),
        capacity,
        record_size: record.size,
        record_align: record.align,
        fingerprint: record.fingerprint(),
        ext_len: size_of::<ExtHeader>() as u64,
    }
}

impl Segment {
    /// The memfd the segment lives in (memfd backings), for `Channel::share`.
    pub(crate) fn memfd(&self) -> Option<&std::sync::Arc<std::os::fd::OwnedFd>> {
        self.mapping.memfd()
    }
}

/// The waiting operations endpoints use: the doorbell, seen through the segment (which holds
/// the wait cells and the endpoint table the doorbell works with).
impl Segment {
    /// The channel's doorbell kind.
    pub(crate) fn doorbell(&self) -> Doorbell {
        self.bell.kind()
    }

    /// Whether waiters sleep (and so announce themselves) on this doorbell.
    pub(crate) fn sleeps(&self) -> bool {
        self.bell.sleeps()
    }

    /// The descriptor waiters of `role` sleep on, where the doorbell has one.
    pub(crate) fn doorbell_fd(&self, role: Role) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.bell.fd(role)
    }

    /// Announces a waiter of `role` (endpoint-table entry `slot`) before it re-checks.
    pub(crate) fn announce(&self, role: Role, slot: usize) {
        self.bell.announce(self, role, slot)
    }

    /// Leaves the announced state without a token (see `Bell::settle`).
    pub(crate) fn settle(&self, role: Role, slot: usize) {
        self.bell.settle(self, role, slot)
    }

    /// Sleeps until a token for this waiter arrives or `until` passes.
    pub(crate) fn sleep(&self, role: Role, slot: usize, until: Instant) -> Slept {
        self.bell.wait(self, role, slot, until)
    }

    /// Posts `n` tokens to the sleepers of `role` (`n` from the ring's `take_tokens`).
    pub(crate) fn post(&self, role: Role, n: u32) {
        self.bell.post(self, role, n)
    }
}
