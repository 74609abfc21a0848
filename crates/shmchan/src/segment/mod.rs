//! The segment: a ring (from `shmchan-ring`) plus shmchan's own area in the ring's `ext`
//! region (record name, doorbell descriptor, endpoint table, counters; see `ext`), and the
//! create/open handshake that validates it.
//!
//! This is the one module that turns mapped memory into references: everything in the shared
//! area is an atomic (a peer process may write any of it at any time), every field read from it
//! is validated before use, and values the fast path relies on (kind, capacity, record size)
//! are copied into the handle once, at open, after validation. What the endpoints do with the
//! segment goes through [`Segment`]'s methods, which hand the work to the endpoint table
//! (`crate::table`) and the doorbell (`crate::doorbell`).

use std::mem::{size_of, ManuallyDrop};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use shmchan_os as os;
use shmchan_ring as ring;

use crate::backing::{self, Backing, Cleanup, Mapping, Owner, Reclaim};
use crate::doorbell::{self, Bell, BellOwner, Created, Doorbell, Vouched};
use crate::error::{os_error, OpenError};
use crate::life::Tokens;
use crate::record::RecordInfo;
use crate::sync::Ordering;
use crate::table::{Count, Counters, Liveness, Process, Procfs, Refused, Table};

mod bell;
mod ext;
mod guard;
mod kind;
mod wake;

pub(crate) use crate::table::Role;
pub(crate) use bell::senders_sleep;
use ext::{
    cleanup_of, ext_len_for, lane_of, read_schema, version_for, EXT_MAGIC, EXT_VERSION,
    EXT_VERSION_LANE,
};
pub(crate) use ext::{read_ext, ExtHeader};
use guard::{CreateGuard, LifeGuard};
pub use kind::RingKind;

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
    /// Wait up to `timeout` for a channel that does not exist yet too (otherwise only for
    /// one being initialised).
    pub wait_for_missing: bool,
}

/// A mapped, validated channel segment.
pub(crate) struct Segment {
    ring: ring::RawRing,
    ext: NonNull<ExtHeader>,
    /// A byte channel's length lane (see `ext::lane_of`), placed and checked when the
    /// segment was created or opened; `None` for a typed channel.
    lane: Option<NonNull<u32>>,
    pub(crate) kind: RingKind,
    pub(crate) capacity: u32,
    /// The doorbell, connected to its kernel objects.
    bell: Box<dyn Bell>,
    pub(crate) backing: Backing,
    owner: Owner,
    /// The doorbell's kind and kernel objects, to remove with the channel.
    bell_owner: BellOwner,
    /// Who the kernel says the channel belongs to (for the creator: its own effective uid):
    /// the owner the doorbell objects must have before they are removed.
    vouched: Vouched,
    /// The channel's life tokens as this process reaches them (`crate::life`): OFD locks on
    /// its file or memfd, or its SysV life set (checked to be the segment's); `None` without.
    life: Option<Tokens>,
    cleanup: Option<Cleanup>,
    creator_pid: u32,
    /// The pid that counted itself in `attached` (a forked child's copy must not uncount).
    attached_pid: u32,
    /// This process's keeper thread for the entries' wake words (see `wake`).
    wake: wake::Wake,
    // Last: the memory everything above points into. `Drop` unmaps it, after its last use of
    // the memory and before it decides whether it was the last process attached.
    mapping: ManuallyDrop<Mapping>,
}

// SAFETY: `ring` and `ext` point into `mapping`, which this value owns and which stays mapped
// until its `Drop` unmaps it, after its last use; all shared state behind them is accessed through atomics only (and
// `sem_*` calls, for the in-segment semaphores). The bell is `Send + Sync` itself.
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
        cfg.doorbell.check_backing(&cfg.backing.reach())?;
        let schema = cfg
            .record
            .schema_bytes()
            .map_err(|reason| OpenError::InvalidConfig { reason })?;
        let ring_cfg = ring_config(cfg.kind, cfg.capacity, cfg.record);
        let len = Segment::required_len(cfg.kind, cfg.capacity, cfg.record)?;
        let created = Created::new(cfg.doorbell, os::Mode::new(cfg.mode))
            .map_err(|e| os_error(e, &format!("{} doorbell", cfg.doorbell)))?;
        let (mapping, owner) =
            backing::create(cfg.backing, len, cfg.mode, cfg.cleanup, cfg.reclaim)?;
        // From here on, dropping `guard` (or `created`, or `life`) removes what we created if
        // initialisation fails.
        let guard = CreateGuard(Some(owner));
        let life = LifeGuard(match (mapping.shm_id(), mapping.fd()) {
            (Some(shmid), _) => Tokens::create_set(shmid, cfg.mode),
            (None, Some(fd)) => Tokens::locks(fd),
            (None, None) => None,
        });
        let life_set = life.0.as_ref().map_or(0, Tokens::recorded);
        let mut storage = Ok(());
        let fill = |ext: NonNull<u8>, ext_len: usize| {
            debug_assert!(ext_len >= size_of::<ExtHeader>());
            // SAFETY: `Layout::new` placed the ext area, 128-aligned and `ext_len` (≥ the size
            // of ExtHeader, which we asked for) bytes long, inside the region, and `init_with`
            // zeroed it; every field of ExtHeader is an atomic, valid for any bits.
            let e = unsafe { ext.cast::<ExtHeader>().as_ref() };
            e.init(
                cfg.doorbell,
                cfg.record,
                &schema,
                ext_len,
                cfg.cleanup,
                created.desc(),
            );
            // Recorded before `ready` is published: `prune_orphans` never takes the set of a
            // channel being created for an orphan.
            e.life_set.store(life_set, Ordering::Relaxed);
            // The POSIX semaphores: initialised here, while nobody else can see the segment
            // (`ready` is published after `fill`).
            storage = created.init_storage(&e.posix_sems);
        };
        // SAFETY: the mapping is valid for `len` initialised (zero-filled) bytes, page- (so
        // 128-) aligned, stays mapped while the Segment lives (it owns it), and nobody else can
        // have it yet (IPC_EXCL / O_EXCL / anonymous), so this initialisation is exclusive.
        // `init_with` writes the ext area through `fill` before it publishes `ready`.
        let ring = unsafe { ring::RawRing::init_with(mapping.base(), len, &ring_cfg, fill) }
            .map_err(|e| OpenError::InvalidConfig {
                reason: e.to_string(),
            })?;
        storage?;
        let ext = ring.ext().0.cast::<ExtHeader>();
        // Laid out by `ring_config` for a record with a lane: always there.
        let lane = if cfg.record.lane {
            Some(lane_of(&ring).map_err(|reason| OpenError::InvalidConfig { reason })?)
        } else {
            None
        };
        let vouched = Vouched::Uid(created.owner_uid());
        let (bell, bell_owner) = created.keep();
        let owner = guard.disarm();
        let life = life.disarm();
        // SAFETY: as in `fill`.
        let e = unsafe { ext.as_ref() };
        // Relaxed: counting ourselves in publishes nothing (see `Drop`).
        e.attached.fetch_add(1, Ordering::Relaxed);
        Ok(Segment {
            ring,
            ext,
            lane,
            kind: cfg.kind,
            capacity: cfg.capacity,
            bell,
            backing: cfg.backing.clone(),
            owner,
            bell_owner,
            vouched,
            life,
            cleanup: Some(cfg.cleanup),
            creator_pid: std::process::id(),
            attached_pid: std::process::id(),
            wake: wake::Wake::new(),
            mapping: ManuallyDrop::new(mapping),
        })
    }

    pub(crate) fn open(expect: &Expect<'_>) -> Result<Segment, OpenError> {
        let deadline = Instant::now() + expect.timeout;
        let what = expect.backing.to_string();
        let mut pause = Duration::from_millis(1);
        loop {
            let mapping = match backing::open(expect.backing) {
                // Nothing there yet: its creator has not started. Poll, backing off to 10 ms
                // (no kernel object can be waited on before it exists).
                Err(OpenError::NotFound { .. })
                    if expect.wait_for_missing && Instant::now() < deadline =>
                {
                    std::thread::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(10));
                    continue;
                }
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
                    // A header of zeros after the whole timeout: nobody is creating a channel
                    // here (a creator writes the header at once); say what was found.
                    let head = mapping.len().min(ring::layout::HEADER_LEN);
                    // SAFETY: the mapping is valid for `len()` bytes (see above); read only.
                    let bytes =
                        unsafe { std::slice::from_raw_parts(mapping.base().as_ptr(), head) };
                    if bytes.iter().all(|&b| b == 0) {
                        return Err(OpenError::Foreign {
                            what: format!(
                                "{what}, whose header is all zeros (a creator that died before \
                                 writing it, or no channel at all),"
                            ),
                        });
                    }
                    return Err(OpenError::NotReady { what });
                }
                Err(ring::OpenError::BadMagic { .. }) => {
                    // What `create` and `remove` say of it too.
                    return Err(OpenError::Foreign { what });
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
        let e = ExtHeader::of(&r).map_err(corrupted)?;
        let ext = NonNull::from(e);
        if e.magic.load(Ordering::Relaxed) != EXT_MAGIC {
            return Err(corrupted("bad extension magic".into()));
        }
        let ext_version = e.version.load(Ordering::Relaxed);
        if ext_version != EXT_VERSION && ext_version != EXT_VERSION_LANE {
            return Err(OpenError::Version {
                expected: version_for(x.record.lane),
                found: ext_version,
            });
        }
        let lane = if ext_version == EXT_VERSION_LANE {
            Some(lane_of(&r).map_err(corrupted)?)
        } else {
            None
        };
        let door_code = e.doorbell.load(Ordering::Relaxed);
        let doorbell = Doorbell::from_code(door_code)
            .ok_or_else(|| corrupted(format!("unknown doorbell code {door_code}")))?;
        let shape = read_schema(&r).map_err(corrupted)?;
        if let Some(s) = &shape {
            if (s.size, s.align) != (cfg.record_size, cfg.record_align) {
                return Err(corrupted(format!(
                    "its record schema describes {} bytes with alignment {}, its ring {} with {}",
                    s.size, s.align, cfg.record_size, cfg.record_align
                )));
            }
        }
        let found = RecordInfo {
            size: cfg.record_size,
            align: cfg.record_align,
            name: e.read_name(),
            schema_version: e.schema_version.load(Ordering::Relaxed),
            shape: shape.map(Box::new),
            lane: lane.is_some(),
        };
        let mut expected = x.record.clone();
        if x.any_size {
            expected.size = cfg.record_size;
        }
        // Name, size, alignment and version always; the fields where both sides declare them
        // (`crate::schema`).
        if cfg.fingerprint != expected.fingerprint()
            || expected.lane != found.lane
            || x.record.layout_difference(&found).is_some()
        {
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
        let desc = e.read_desc();
        // The segment names the doorbell's objects; the kernel says whose the segment is. Only
        // objects bound to that owner and to the channel's identity are connected to.
        let vouched = mapping.vouched().map_err(|e| os_error(e, &what))?;
        let mut reach = x.backing.reach();
        reach.owner = vouched;
        let bell = doorbell::open(doorbell, &desc, &reach, &what)?;
        let life = match (mapping.shm_id(), mapping.fd()) {
            (Some(shmid), _) => {
                Tokens::open_set(e.life_set.load(Ordering::Relaxed), shmid, vouched.user())
            }
            (None, Some(fd)) => Tokens::locks(fd),
            (None, None) => None,
        };
        // Relaxed: as in `create`.
        e.attached.fetch_add(1, Ordering::Relaxed);
        Ok(Segment {
            ring: r,
            ext,
            lane,
            kind,
            capacity: cfg.capacity,
            bell,
            backing: x.backing.clone(),
            owner: Owner::Nothing,
            bell_owner: BellOwner {
                kind: doorbell,
                desc,
            },
            vouched,
            life,
            cleanup: cleanup_of(e.cleanup.load(Ordering::Relaxed)),
            // An opener never acts as the creator, whatever pid the segment claims: a hostile
            // segment naming our pid must not make us remove doorbell objects on drop.
            creator_pid: 0,
            attached_pid: std::process::id(),
            wake: wake::Wake::new(),
            mapping: ManuallyDrop::new(mapping),
        })
    }

    pub(crate) fn ring(&self) -> &ring::RawRing {
        &self.ring
    }

    /// A byte channel's length lane: its first entry, one `u32` per slot (`None` for a
    /// typed channel). Inside the mapping this segment owns, 4-aligned.
    pub(crate) fn lane(&self) -> Option<NonNull<u32>> {
        self.lane
    }

    fn ext(&self) -> &ExtHeader {
        // SAFETY: validated at create/open to lie inside the mapping this Segment owns,
        // aligned and large enough; all fields are atomics.
        unsafe { self.ext.as_ref() }
    }

    /// The endpoint table.
    fn table(&self) -> Table<'_> {
        self.ext().table(self.kind == RingKind::Spsc)
    }

    pub(crate) fn shm_id(&self) -> Option<i32> {
        self.mapping.shm_id()
    }

    pub(crate) fn msync(&self) -> Result<(), os::Error> {
        self.mapping.msync()
    }

    /// The slow-path check that the segment is still the one validated at create/open (once
    /// per time slice of a waiting endpoint, and on request): the backing still holds all of
    /// it (a file not truncated under the mapping: `fstat`), and the ring and extension
    /// headers still say what was validated (a file truncated and grown again reads as zeros,
    /// which no fast-path check would notice). `Err` says what changed. The length comes
    /// first: reading the header of a file that shrank would fault.
    pub(crate) fn check_intact(&self) -> Result<(), String> {
        self.mapping.check()?;
        let h = self.ring.header().snapshot();
        let l = self.ring.layout();
        let same = h.magic == ring::MAGIC
            && h.layout_version == ring::LAYOUT_VERSION
            && h.init_state == ring::layout::INIT_READY
            && h.capacity == l.info.capacity
            && h.record_size == l.info.record_size
            && h.slot_stride == l.info.slot_stride
            && h.fingerprint == l.info.fingerprint
            && h.total_len == l.total_len
            // Relaxed: a check of a constant; nothing is published through it.
            && self.ext().magic.load(Ordering::Relaxed) == EXT_MAGIC;
        if same {
            return Ok(());
        }
        Err(format!(
            "{}: its header no longer matches the one validated when it was opened (the file \
             was truncated and grown again, or the header overwritten)",
            self.backing
        ))
    }

    /// The waits' cheap check (two loads, no system call): both magics still there. A
    /// channel file truncated and grown again reads as zeros; a waiter checks this before it
    /// trusts cursors again after waiting, so that zeroed slots are not taken for records.
    #[cold]
    pub(crate) fn header_intact(&self) -> bool {
        // Relaxed: constants, checked; nothing is published through them.
        self.ring.header().snapshot().magic == ring::MAGIC
            && self.ext().magic.load(Ordering::Relaxed) == EXT_MAGIC
    }

    /// Whether the backing still holds all of the mapping (a file not truncated under it):
    /// what a departing endpoint checks before it touches the segment to leave.
    pub(crate) fn whole(&self) -> bool {
        self.mapping.check().is_ok()
    }

    /// The memfd the segment lives in (memfd backings), for `Channel::share`.
    pub(crate) fn memfd(&self) -> Option<&std::sync::Arc<std::os::fd::OwnedFd>> {
        self.mapping.memfd()
    }
}

/// The endpoint table, seen through the segment (`crate::table` holds the protocol).
impl Segment {
    /// Whether the `role` side is gone: some endpoint of it registered once and none is live.
    /// A waiter that must not miss the last peer's departure calls this after announcing
    /// itself (behind the announcement's SeqCst fence; see `crate::table`).
    #[inline]
    pub(crate) fn gone(&self, role: Role) -> bool {
        self.table().gone(role)
    }

    /// The live mask of `role` (see `Table::live_mask`).
    pub(crate) fn live_mask(&self, role: Role) -> &crate::sync::AtomicU64 {
        self.table().live_mask(role)
    }

    /// The last departure of `role`'s endpoints, as the table records it.
    pub(crate) fn last_left(&self, role: Role) -> Option<crate::table::Left> {
        self.table().last_left(role)
    }

    /// Registers an endpoint of `role` for this process; returns its table slot.
    pub(crate) fn register(&self, role: Role) -> Result<usize, OpenError> {
        let table = self.table();
        table
            .register(role, Process::me(), self.liveness(), &mut |r| {
                self.reap_dead(r)
            })
            .inspect(|&slot| self.link_wake(role, slot))
            .map_err(|refused| match refused {
                Refused::Full => OpenError::TooManyEndpoints,
                Refused::Taken { pid } => OpenError::EndpointTaken {
                    role: role.name(),
                    pid,
                },
            })
    }

    /// Removes this process's endpoint in `slot` and wakes the peers' waiters so that they
    /// notice a disconnection.
    pub(crate) fn deregister(&self, role: Role, slot: usize) {
        self.table()
            .deregister(role, slot, std::process::id(), self.liveness(), |peer| {
                self.wake_all(peer);
            });
        // Only now: a death before the entry stopped being live must still mark its word.
        self.unlink_wake(slot);
    }

    /// Frees the entries whose process is dead (pid and start time, so a reused pid does not
    /// count as alive): live endpoints of `role`, and entries of any role whose owner died in
    /// the middle of registering. Returns how many live endpoints of `role` were reaped. On
    /// MPMC, then settles what dead producers held.
    pub(crate) fn reap_dead(&self, role: Role) -> u32 {
        let reaped = self.table().reap_dead(role, self.liveness());
        if self.kind == RingKind::Mpmc {
            self.settle_orphans(None, |_| {});
        }
        reaped
    }

    /// How the table judges its entries: the life tokens, or `/proc` alone without them.
    fn liveness(&self) -> &dyn Liveness {
        self.life.as_ref().map_or(&Procfs, |l| l as &dyn Liveness)
    }

    /// The announcement record of entry `slot`, for an MPMC handle (`set_working`).
    pub(crate) fn working(&self, slot: usize) -> NonNull<ring::Working> {
        NonNull::from(self.table().working(slot))
    }

    /// Settles the slots that dead MPMC endpoints (orphaned entries) had claimed: a dead
    /// producer's are marked skipped; a dead consumer's records are adopted by `adopter` (a
    /// live consumer of this process) and handed to `deliver` — at-least-once delivery. Frees
    /// each entry once its record is settled; returns whether anything was settled.
    pub(crate) fn settle_orphans(
        &self,
        adopter: Option<&mut ring::MpmcConsumer>,
        deliver: impl FnMut(NonNull<u8>),
    ) -> bool {
        self.table()
            .settle_orphans(&self.ring, adopter, deliver, |r| {
                self.wake_all(r);
            })
    }

    /// Counts a sleep of the endpoint of `role` in entry `slot` (the channel's count and the
    /// endpoint's own).
    pub(crate) fn note_sleep(&self, role: Role, slot: usize) {
        // Relaxed: a statistic.
        self.ext().sleeps[role.index()].fetch_add(1, Ordering::Relaxed);
        self.counters(slot).add(Count::Sleeps, 1);
    }

    /// The activity counters of the endpoint in entry `slot` (see [`Counters`]).
    pub(crate) fn counters(&self, slot: usize) -> &Counters {
        self.table().counters(slot)
    }
}

impl Drop for Segment {
    /// Detaches, and removes the channel when its cleanup says this process is the one (see
    /// [`Cleanup`] for the rules).
    fn drop(&mut self) {
        self.unlink_all();
        let me = std::process::id();
        // A file that shrank under the mapping: touching the segment (the attach count) would
        // fault, so it is left alone.
        let whole = self.whole();
        let creator = me == self.creator_pid;
        // A forked child inherits a copy of its parent's handle: only the process that counted
        // itself uncounts, and only the creating process removes what it created.
        let ours = whole && me == self.attached_pid;
        // SYNC(attached): AcqRel: every process's Release half orders its use of the channel
        // (the records it sent, the doorbell objects) before its uncount; the one that takes
        // the count from 1 to 0 (Acquire, through the RMW chain) sees all of those.
        let counted = ours && self.ext().attached.fetch_sub(1, Ordering::AcqRel) == 1;
        // `WhenDrained`: the last process to leave sees, through the count, every record any
        // process sent: whether the ring still holds one nobody received.
        let drained = counted && self.ring.is_empty();
        // A process that attached since our uncount has counted itself (0 to 1): it leaves
        // last now, and decides then.
        // SYNC(attached): Acquire, as above.
        let joined = counted && self.ext().attached.load(Ordering::Acquire) != 0;
        let shm_id = self.mapping.shm_id();
        let remover_of_memory = if creator {
            std::mem::replace(&mut self.owner, Owner::Nothing)
        } else {
            self.mapping.remover(&self.backing)
        };
        // Memory nobody can open again: what it holds goes with the last process anyway.
        let nameless = !self.backing.reopenable();
        // SAFETY: the line above was the last access to the mapped memory through this value:
        // `ring` and `ext` are not dereferenced again (RawRing has no destructor), the bell's
        // destructor touches only its own kernel objects and descriptors, and `self.mapping` is
        // not used after it is taken here (it is ManuallyDrop: nothing drops it again).
        drop(unsafe { ManuallyDrop::take(&mut self.mapping) });
        let remover = self.vouched.remover();
        if !whole {
            // Only what we own goes.
            if creator && self.cleanup == Some(Cleanup::Creator) {
                remover_of_memory.run();
                self.remove_objects(remover);
            }
            return;
        }
        match self.cleanup {
            Some(Cleanup::Creator) if creator => {
                // Anonymous memory owns nothing: it goes with the last process.
                remover_of_memory.run();
                self.remove_objects(remover);
            }
            // The last process counted in the segment (its count orders every process's
            // records before our check of the ring), nobody joined since: ours to remove. The
            // kernel's attach count cannot decide this one: a peer that has uncounted may not
            // have detached yet, and then neither would remove the channel.
            Some(Cleanup::WhenDrained) if counted && !joined && (drained || nameless) => {
                remover_of_memory.run();
                self.remove_objects(remover);
            }
            // Where the kernel counts attachments (SysV), its count decides, read after our
            // own detach: the process whose detach is the last one sees nobody attached (a
            // peer's `shmdt` comes after its last use of the doorbell objects).
            Some(Cleanup::LastDetach)
                if ours && shm_id.map_or(counted, backing::nobody_attached) =>
            {
                self.remove_objects(remover);
            }
            _ => {}
        }
    }
}

impl Segment {
    /// Removes the doorbell objects and the life set bound to the channel (`remover`: see
    /// `Vouched::remover`; the life set was checked to be the segment's when it was opened).
    fn remove_objects(&self, remover: Option<u32>) {
        let _ = self.bell_owner.remove(remover);
        if let Some(l) = &self.life {
            l.remove();
        }
    }
}

fn ring_config(kind: RingKind, capacity: u32, record: &RecordInfo) -> ring::RingConfig {
    ring::RingConfig {
        kind: kind.to_ring(),
        capacity,
        record_size: record.size,
        record_align: record.align,
        fingerprint: record.fingerprint(),
        // A layout too large to store is refused by `create` before this is used to lay out.
        ext_len: ext_len_for(
            record.schema_bytes().map_or(0, |b| b.len()),
            record.lane,
            capacity.next_power_of_two(),
        ) as u64,
    }
}
