//! The endpoint table: which processes hold endpoints of a channel, in which role, and whether
//! they still live. It sits in the segment header (frozen layout: [`Masks`] and
//! [`MAX_ENDPOINTS`] [`Entry`]s); [`Table`] is a view of it.
//!
//! # The entry's claim word
//!
//! An entry's `pid` moves between these states; every move is a CAS or a store by the one party
//! that holds the entry:
//!
//! ```text
//! FREE --claim (CAS)--> pid --deregister--------------> FREE
//!                        |  --reap (CAS to REAPING)--> REAPING --> FREE, or ORPHAN (MPMC,
//!                        |                                          a claim to settle)
//! ORPHAN --settled (CAS)--> FREE           ORPHAN --reap--> REAPING --> ORPHAN or FREE
//! ```
//!
//! An entry counts as a live endpoint of a role only while its bit is set in that role's live
//! mask, which a registration sets after it has claimed and filled its entry, and which a
//! departure or a reaper clears before it frees the entry. So a process killed at any step of
//! registering leaves a free entry, a claimed entry without a live bit (freed by a reaper, which
//! judges it by pid alone), or a live one (its bit cleared and the entry freed by a reaper):
//! never a count that nobody can correct. The `ever` flag of a role records that one of its
//! endpoints registered once: a role is *gone* when it has been here and no endpoint of it is
//! live now (a side that never had a peer just waits).
//!
//! A reaper judges an entry dead ([`Liveness`] has the rules): by its life token, which the
//! kernel lowers when the process dies in whatever PID namespace (`crate::life`); without
//! one, by the process's pid and start time in `/proc` (so a reused pid does not count as
//! alive), only when the entry recorded the reaper's own PID namespace; otherwise never. It
//! wins the entry with a CAS to `REAPING`, checks that the entry's life word is still the one
//! it judged (a departure and a new claim by the same pid number in between would change
//! it), clears its live bit, and only then frees it: a new owner's bit is never touched.
//!
//! "Dead" means: the process that registered the endpoint has exited (or was killed); its
//! threads do not matter (an endpoint made on a thread that exited lives on), nor do its
//! children (a forked child's copy of an endpoint is its parent's, never used).
//!
//! # Orderings
//!
//! - `SYNC(endpoint-live)`: a registration writes its entry (role, start time) and then sets its
//!   live bit with a Release RMW; a reaper loads the mask with Acquire before it reads the start
//!   time, and the loser of the SPSC gate reads the winner's claim after its failed Acquire CAS.
//!   Without it a reaper can read the previous owner's start time for a new owner, judge the new
//!   owner dead (a reused pid), and clear its bit. (The models in `crate::loom_models` that
//!   catch each weakening: `reaper_never_clears_a_new_owner`, `one_endpoint_wins_the_spsc_gate`.)
//! - `SYNC(endpoint-ever)`: `ever` is set with Release after the live bit; [`Table::gone`] loads
//!   it with Acquire and then loads the live mask again, so a first registration under way is
//!   never taken for a departure (`first_registration_is_not_a_departure`).
//! - `SYNC(endpoint-leave)`: a departure or a reaper clears the live bit with a Release RMW
//!   after the records the endpoint committed (a dead one's, through its death); a peer that
//!   sees the role gone (Acquire) and then drains the ring finds every one of them, so it never
//!   reports a disconnection while a committed record is unread
//!   (`receiver_drains_before_disconnected`, `receiver_drains_a_reaped_sender`).
//! - `SYNC(endpoint-life)`: a registration writes its PID namespace and start time and then
//!   stores the life word (`NS_RECORDED`, then `HOLDS_TOKEN` once it took its token) with
//!   Release; a reaper loads the word with Acquire before it reads them. Whoever frees an entry
//!   advances the word's generation before it gives the token back (a holder) and before its
//!   Release store of `FREE` (everyone); a reaper that reads the token down re-reads the word
//!   (the kernel's lock of the token, a file's lock list or a semaphore set, orders that read
//!   after the give), and after winning the
//!   entry checks it again (its CAS read the claim through the freer's Release): a departure,
//!   or a departure and a new claim by the same pid, is never taken for a death
//!   (`a_departure_is_never_taken_for_a_death`, `a_death_is_noticed_by_its_token`; the check
//!   after the CAS, against a second reaper and a new claim by the same pid number, has no
//!   model).
//! - `SYNC(endpoint-free)`: whoever frees an entry (departure, reaper, settler) stores `FREE`
//!   (or `ORPHAN`) with Release after its last write to the entry; a claimer's CAS and every
//!   reader of the claim word load it with Acquire. The writes it orders (the `asleep` flag, a
//!   settled `working` record) are then never ordered after a new owner's own writes. Loom does
//!   not reorder one thread's stores, so no model shows this one failing.
//! - No SeqCst: a waiter that must not miss a departure has announced itself behind a SeqCst
//!   fence before it calls `gone`, and a departing endpoint wakes its peers behind the ringer's
//!   SeqCst fence (`shmchan_ring::WaitCell`'s Dekker pair, which covers Relaxed accesses on
//!   either side); the targeted doorbell's `asleep` flags ride on the same fences
//!   (`departure_wakes_a_targeted_sleeper`).
//!
//! The segment is untrusted: every slot index is bounds-checked against the entries, every mask
//! bit is tested against an entry that exists, and a hostile peer that rewrites the table can
//! only make this channel's endpoints see wrong peers, never reach out of the table.

use std::ptr::NonNull;

use shmchan_ring as ring;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

mod counters;
mod liveness;
pub(crate) mod wake;

pub(crate) use counters::{Count, Counters};
use liveness::Life;
pub(crate) use liveness::{Liveness, Process, Procfs};

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

    /// The role's index in the per-role arrays of the header: 0 senders, 1 receivers.
    pub(crate) fn index(self) -> usize {
        self as usize - 1
    }

    pub(crate) fn peer(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }
}

/// `Entry::pid` of a free entry.
pub(crate) const FREE: u32 = 0;
/// `Entry::pid` of an entry a reaper is freeing.
pub(crate) const REAPING: u32 = u32::MAX;
/// `Entry::pid` of a dead MPMC endpoint whose announced slots still need settling (a dead
/// consumer's records wait for a live consumer to adopt them).
pub(crate) const ORPHAN: u32 = u32::MAX - 1;

/// How many times a registration that finds the SPSC role held by an entry being freed (see
/// `Table::being_freed`) yields and tries the gate again before it reports the role taken: a
/// reaper holds an entry for a few stores, unless it is preempted meanwhile.
#[cfg(not(loom))]
const GATE_RETRIES: u32 = 10_000;
#[cfg(loom)]
const GATE_RETRIES: u32 = 16;

/// One endpoint-table entry (see the module docs for the claim word).
///
/// Each entry has a 128-byte line of its own: an MPMC endpoint writes its [`ring::Working`]
/// announcement on every operation, and must not share that line with another endpoint.
#[repr(C, align(128))]
pub(crate) struct Entry {
    pid: AtomicU32,
    role: AtomicU32,
    /// SysV message queue doorbell: 1 while this endpoint sleeps unclaimed (the token of the
    /// targeted protocol, see `doorbell::sysv_msgq`).
    asleep: AtomicU32,
    /// The life word (see [`Life`]): whether this claim recorded its PID namespace and holds
    /// a life token, and a generation that every freeing of the entry advances.
    life: AtomicU32,
    start_time: AtomicU64,
    /// The claimer's PID namespace (`os::process::pid_namespace`; 0: unknown), valid while
    /// the life word says `NS_RECORDED`.
    pidns: AtomicU64,
    /// The MPMC position this endpoint is claiming or working on (crash recovery: a survivor
    /// settles it when this endpoint's process dies; see `shmchan_ring::settle`).
    working: ring::Working,
    /// What this endpoint did, for inspection (see [`Counters`]).
    counters: Counters,
    /// The wake word (see [`wake`]): the TID of the owner's keeper thread, which the kernel
    /// marks `OWNER_DIED` at the owner's death and wakes; 0 when not linked. A wake source
    /// only: never read as a death.
    wake: AtomicU32,
}

/// One live entry as [`Table::listed`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The entry's index in the table.
    pub slot: usize,
    pub role: Role,
    pub pid: u32,
    pub start: u64,
    /// Its PID namespace (0: unknown or not recorded).
    pub pidns: u64,
    /// Whether it holds a life token.
    pub token: bool,
    /// The endpoint's [`Counters`]: records, sleeps, posts.
    pub records: u64,
    pub sleeps: u64,
    pub posts: u64,
}

/// The table's words outside the entries (in the header, before the counters).
#[repr(C)]
pub(crate) struct Masks {
    /// Live endpoints per role (`[senders, receivers]`): bit i set = entry i is live.
    live: [AtomicU64; 2],
    /// Whether an endpoint of each role ever registered.
    ever: [AtomicU32; 2],
    /// The last departure of each role (see [`Left`]): 0 when none of its endpoints left.
    left: [AtomicU64; 2],
    _pad: [AtomicU32; 2],
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Entry>() == 128);
    assert!(offset_of!(Entry, pid) == 0);
    assert!(offset_of!(Entry, role) == 4);
    assert!(offset_of!(Entry, asleep) == 8);
    assert!(offset_of!(Entry, life) == 12);
    assert!(offset_of!(Entry, start_time) == 16);
    assert!(offset_of!(Entry, pidns) == 24);
    assert!(offset_of!(Entry, working) == 32);
    assert!(offset_of!(Entry, counters) == 48);
    assert!(offset_of!(Entry, wake) == 72);
    assert!(size_of::<Counters>() == 24);
    assert!(size_of::<Masks>() == 48);
    assert!(offset_of!(Masks, ever) == 16);
    assert!(offset_of!(Masks, left) == 24);
};

#[cfg(all(test, loom))]
impl Entry {
    /// A free entry (loom models build their tables by value).
    pub(crate) fn new() -> Entry {
        Entry {
            pid: AtomicU32::new(FREE),
            role: AtomicU32::new(0),
            asleep: AtomicU32::new(0),
            life: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            pidns: AtomicU64::new(0),
            working: ring::Working::new(),
            counters: Counters::new(),
            wake: AtomicU32::new(0),
        }
    }
}

#[cfg(all(test, loom))]
impl Masks {
    /// Empty masks (loom models build their tables by value).
    pub(crate) fn new() -> Masks {
        Masks {
            live: [AtomicU64::new(0), AtomicU64::new(0)],
            ever: [AtomicU32::new(0), AtomicU32::new(0)],
            left: [AtomicU64::new(0), AtomicU64::new(0)],
            _pad: Default::default(),
        }
    }
}

/// The last departure of a role, as the table records it (one word, so that a reader never
/// mixes two departures): how the endpoint left, its pid, and when (whole seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Left {
    pub pid: u32,
    /// `true`: its process died (a reaper found it dead); `false`: it was dropped.
    pub died: bool,
    /// Seconds since [`Left::EPOCH`] (Unix time), when the departure was recorded.
    pub at: u32,
}

impl Left {
    /// The origin of `at`: 2020-01-01T00:00:00Z. 30 bits of seconds reach 2054.
    pub(crate) const EPOCH: u64 = 1_577_836_800;

    fn now(pid: u32, died: bool) -> Left {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let at = unix.saturating_sub(Left::EPOCH).min((1 << 30) - 1) as u32;
        Left { pid, died, at }
    }

    fn pack(self) -> u64 {
        u64::from(self.pid) | (1 + u64::from(self.died)) << 32 | u64::from(self.at) << 34
    }

    /// `None` for "nobody left" and for a word no departure writes (a scribbled table).
    fn unpack(w: u64) -> Option<Left> {
        let died = match (w >> 32) & 3 {
            1 => false,
            2 => true,
            _ => return None,
        };
        Some(Left {
            pid: w as u32,
            died,
            at: (w >> 34) as u32,
        })
    }
}

/// Why a registration was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Every entry is taken (even after reaping the dead).
    Full,
    /// SPSC: a live endpoint of the role exists (its pid, as far as the table tells).
    Taken { pid: u32 },
}

/// A view of a channel's endpoint table.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a> {
    masks: &'a Masks,
    /// At most [`MAX_ENDPOINTS`] (one bit each in a mask).
    entries: &'a [Entry],
    /// SPSC: at most one live endpoint per role (the gate); MPMC: dead endpoints' claims are
    /// kept (`ORPHAN`) until settled.
    spsc: bool,
}

impl<'a> Table<'a> {
    pub(crate) fn new(masks: &'a Masks, entries: &'a [Entry], spsc: bool) -> Table<'a> {
        let entries = &entries[..entries.len().min(MAX_ENDPOINTS)];
        Table {
            masks,
            entries,
            spsc,
        }
    }

    /// Resets a new table (the creator, before the segment is published).
    pub(crate) fn reset(&self) {
        let r = Ordering::Relaxed;
        for a in &self.masks.live {
            a.store(0, r);
        }
        for a in &self.masks.ever {
            a.store(0, r);
        }
        for a in &self.masks.left {
            a.store(0, r);
        }
        for ep in self.entries {
            ep.pid.store(FREE, r);
            ep.role.store(0, r);
            ep.start_time.store(0, r);
            ep.asleep.store(0, r);
            ep.wake.store(0, r);
            ep.counters.clear();
        }
    }

    /// The live mask of `role` (what [`gone`](Self::gone) loads first), for an endpoint that
    /// keeps it at hand: while it is not zero, the side is not gone.
    pub(crate) fn live_mask(&self, role: Role) -> &'a AtomicU64 {
        &self.masks.live[role.index()]
    }

    /// Whether the `role` side is gone: some endpoint of it registered once and none is live.
    #[inline]
    pub(crate) fn gone(&self, role: Role) -> bool {
        let i = role.index();
        // SYNC(endpoint-leave): Acquire pairs with the Release clears in `deregister` and
        // `reap_dead`: a side that sees its peers gone sees what they committed. One load while
        // a peer lives, which is the common case.
        if self.masks.live[i].load(Ordering::Acquire) != 0 {
            return false;
        }
        // SYNC(endpoint-ever): Acquire pairs with the Release store in `register`, which
        // follows its live bit: having seen `ever`, the second load of the mask sees the bit
        // (or a later departure). The first load alone may predate a first registration whose
        // `ever` the load of `ever` already sees.
        self.masks.ever[i].load(Ordering::Acquire) != 0
            // SYNC(endpoint-leave): as the first load.
            && self.masks.live[i].load(Ordering::Acquire) == 0
    }

    /// Registers an endpoint of `role` for process `me`; returns its entry. `reap` frees the
    /// dead endpoints of a role and returns how many live ones it reaped (the segment's
    /// `reap_dead`, which also settles orphans): tried once when the table is full, and once
    /// when the SPSC gate is held.
    pub(crate) fn register(
        &self,
        role: Role,
        me: Process,
        life: &dyn Liveness,
        reap: &mut dyn FnMut(Role) -> u32,
    ) -> Result<usize, Refused> {
        let slot = match self.claim(me.pid) {
            Some(i) => i,
            None => {
                reap(Role::Sender);
                reap(Role::Receiver);
                self.claim(me.pid).ok_or(Refused::Full)?
            }
        };
        let ep = &self.entries[slot];
        ep.role.store(role as u32, Ordering::Relaxed);
        ep.start_time.store(me.start, Ordering::Relaxed);
        ep.pidns.store(me.pidns, Ordering::Relaxed);
        // Relaxed: only whoever holds the entry writes the word (the last freer advanced it).
        let generation = ep.life.load(Ordering::Relaxed) & !3;
        // SYNC(endpoint-life): Release: a reaper that sees NS_RECORDED (Acquire) judges this
        // claim's namespace and start time, never a previous owner's.
        ep.life
            .store(generation | Life::NS_RECORDED, Ordering::Release);
        // The token is taken before the live bit: a live entry that holds one never reads as
        // down while its process lives.
        if life.take(slot) {
            // SYNC(endpoint-life): Release, as above.
            ep.life.store(
                generation | Life::NS_RECORDED | Life::HOLDS_TOKEN,
                Ordering::Release,
            );
        }
        // A previous owner's record was settled before its entry was freed: clear here.
        ep.working.store_raw(0, 0);
        ep.asleep.store(0, Ordering::Relaxed);
        // Relaxed, published with the claim by the Release of the live bit below.
        ep.counters.clear();
        let bit = 1u64 << slot;
        let mask = &self.masks.live[role.index()];
        if self.spsc {
            // The SPSC gate: the live mask goes from empty to our bit, or someone else holds
            // the role. A holder whose process died is reaped and the gate tried again; so is
            // a holder that another reaper is freeing at this moment (our reap passes over an
            // entry it is reaping, and finds nothing).
            let (mut reaped, mut retries) = (false, 0);
            // SYNC(endpoint-live): Release publishes our claim, role and start time to reapers
            // and to a loser of the gate; the loser's Acquire (failure) reads the winner's.
            while let Err(held) = mask.compare_exchange(0, bit, Ordering::AcqRel, Ordering::Acquire)
            {
                if !reaped && reap(role) > 0 {
                    reaped = true;
                    continue;
                }
                if retries < GATE_RETRIES && self.being_freed(held) {
                    retries += 1;
                    crate::sync::yield_now();
                    continue;
                }
                Self::release(ep, life, slot);
                // SYNC(endpoint-free): Release after our writes to the entry (it never went
                // live).
                ep.pid.store(FREE, Ordering::Release);
                let holder = held.trailing_zeros() as usize;
                let pid = self
                    .entries
                    .get(holder)
                    .map_or(0, |h| h.pid.load(Ordering::Relaxed));
                return Err(Refused::Taken { pid });
            }
        } else {
            // SYNC(endpoint-live): Release publishes our claim, role and start time.
            mask.fetch_or(bit, Ordering::AcqRel);
        }
        // SYNC(endpoint-ever): Release, after the live bit: a `gone` that sees `ever` then
        // sees the bit.
        self.masks.ever[role.index()].store(1, Ordering::Release);
        Ok(slot)
    }

    /// Whether the SPSC holder that the gate saw (`held`, the live mask it read) is being
    /// freed: a reaper holds its entry, or has freed it (the live bit is cleared before).
    fn being_freed(&self, held: u64) -> bool {
        let Some(h) = self.entries.get(held.trailing_zeros() as usize) else {
            return false;
        };
        // SYNC(endpoint-free): an RMW reads the latest claim word (a load may read an older
        // one, and take a reaper's entry for the dead holder's); Acquire pairs with the
        // reaper's Release store of FREE, after its clear of the live bit, which the gate's
        // next CAS then reads.
        let pid = h.pid.fetch_add(0, Ordering::AcqRel);
        pid == REAPING || pid == FREE
    }

    /// Before a holder frees its entry: advances the life word, then gives the token back.
    fn release(ep: &Entry, life: &dyn Liveness, slot: usize) {
        // SYNC(endpoint-life): the generation advances before the token goes down: a reaper
        // that reads the token down (the kernel's lock of the token orders its read after our
        // give) and then the life word sees the new generation, and does not take a departure
        // (or a re-registration by the same pid) for a death.
        ep.life.store(
            Life::freed(ep.life.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        life.give(slot);
    }

    /// Claims a free entry for `pid` (CAS of its claim word).
    fn claim(&self, pid: u32) -> Option<usize> {
        self.entries.iter().position(|ep| {
            // SYNC(endpoint-free): Acquire pairs with the Release store of FREE by whoever
            // freed the entry: its last writes to the entry come before ours.
            ep.pid
                .compare_exchange(FREE, pid, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Removes the endpoint of process `me` in entry `slot`, if the entry is still its own (a
    /// scribbling peer, or a reaper that took it for dead, may have freed it): never clears
    /// someone else's bit. Then `wake`s the peers' waiters (the segment's `wake_all`), after
    /// the bit is cleared, so that they notice.
    /// The life token is given back either way (`life.give`: if this process holds it).
    pub(crate) fn deregister(
        &self,
        role: Role,
        slot: usize,
        me: u32,
        life: &dyn Liveness,
        wake: impl FnOnce(Role),
    ) {
        if let Some(ep) = self.entries.get(slot) {
            // Relaxed: only compared with our own pid, which only we store.
            if ep.pid.load(Ordering::Relaxed) == me {
                // Relaxed: a report for people, ordered before the bit clear below by its
                // Release (a peer that sees us gone sees this or a later departure).
                self.masks.left[role.index()].store(Left::now(me, false).pack(), Ordering::Relaxed);
                // SYNC(endpoint-leave): Release: the records we committed are seen by a peer
                // that sees the bit cleared (Acquire in `gone`).
                self.masks.live[role.index()].fetch_and(!(1u64 << slot), Ordering::AcqRel);
                ep.asleep.store(0, Ordering::Relaxed);
                wake::clear(&ep.wake);
                Self::release(ep, life, slot);
                // SYNC(endpoint-free): Release after our last write to the entry.
                ep.pid.store(FREE, Ordering::Release);
            } else {
                life.give(slot);
            }
        }
        // A waiter that announced itself before this wake's fence is woken; one that announces
        // later re-checks `gone` behind its own fence and sees the bit cleared.
        wake(role.peer());
    }

    /// Frees the entries whose process is dead (`alive` says so): live endpoints of `role`,
    /// and entries of any role whose owner died in the middle of registering. Returns how many
    /// live endpoints of `role` were reaped. MPMC entries that die holding a claim become
    /// `ORPHAN` (the caller settles them).
    pub(crate) fn reap_dead(&self, role: Role, life: &dyn Liveness) -> u32 {
        let mask = &self.masks.live[role.index()];
        let mut reaped = 0;
        for (i, ep) in self.entries.iter().enumerate() {
            // SYNC(endpoint-free): Acquire pairs with the Release stores of the claim word.
            let pid = ep.pid.load(Ordering::Acquire);
            if pid == FREE || pid == REAPING {
                continue;
            }
            let bit = 1u64 << i;
            // SYNC(endpoint-live): Acquire pairs with the Release RMW that set the bit in
            // `register`: seeing the bit, we see the start time written before it.
            let is_live = |m: &AtomicU64| m.load(Ordering::Acquire) & bit != 0;
            let ours = is_live(mask);
            let half_registered = !is_live(&self.masks.live[0]) && !is_live(&self.masks.live[1]);
            if !ours && !half_registered {
                continue;
            }
            // SYNC(endpoint-life): Acquire pairs with the registration's Release store of the
            // word (and, through the live bit, SYNC(endpoint-live) covers it too).
            let word = ep.life.load(Ordering::Acquire);
            if !Self::dead(i, ep, pid, ours, word, life) {
                continue;
            }
            // One reaper wins the entry; the live bit is cleared before the entry is free, so
            // a new owner's bit is never touched.
            // SYNC(endpoint-free): AcqRel: Acquire, as the load above, for the entry's
            // `working` record read below; the Release half orders nothing.
            if ep
                .pid
                .compare_exchange(pid, REAPING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // The entry was freed and claimed again by the same pid number (a process of
                // another PID namespace, or the same one) since we judged it: every freer
                // advanced the life word before its Release store of FREE, which our CAS
                // read through the claim. Not ours to reap: hand the claim back.
                if ep.life.load(Ordering::Relaxed) != word {
                    let _ =
                        ep.pid
                            .compare_exchange(REAPING, pid, Ordering::Relaxed, Ordering::Relaxed);
                    continue;
                }
                if ours {
                    // Relaxed: a report, ordered before the bit clear (as in `deregister`).
                    self.masks.left[role.index()]
                        .store(Left::now(pid, true).pack(), Ordering::Relaxed);
                }
                // SYNC(endpoint-leave): Release: what the dead endpoint committed (seen here
                // through its death) is seen by a peer that sees the bit cleared.
                if mask.fetch_and(!bit, Ordering::AcqRel) & bit != 0 {
                    reaped += 1;
                }
                ep.asleep.store(0, Ordering::Relaxed);
                wake::clear(&ep.wake);
                // Relaxed, published by the Release store of the claim word below.
                ep.life.store(Life::freed(word), Ordering::Relaxed);
                // SYNC(endpoint-free): Release after our last write to the entry.
                if !self.spsc && !ep.working.is_clear() {
                    // It died holding a claim: keep its record until the claim is settled.
                    ep.pid.store(ORPHAN, Ordering::Release);
                } else {
                    ep.pid.store(FREE, Ordering::Release);
                }
            }
        }
        reaped
    }

    /// Sets (`true`) or clears (`false`, a CAS from 1) the `asleep` flag of entry `slot`;
    /// returns whether the flag changed as asked (a failed clear means a ringer claimed it).
    pub(crate) fn set_asleep(&self, slot: usize, v: bool) -> bool {
        let Some(ep) = self.entries.get(slot) else {
            return true;
        };
        if v {
            // Relaxed: the waiter announces itself right after, behind the SeqCst fence of
            // `WaitCell::announce`; a ringer that sees the announcement behind its own fence
            // sees the flag (the fence pair covers Relaxed accesses on both sides).
            ep.asleep.store(1, Ordering::Relaxed);
            true
        } else {
            // Relaxed: a CAS against the ringer's CAS in `claim_sleepers`: exactly one of the
            // two takes the flag; the wake-up message itself goes through the kernel.
            ep.asleep
                .compare_exchange(1, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        }
    }

    /// Claims every sleeping endpoint of `role` (clears its `asleep` flag); returns their
    /// entries as a mask (bit i = entry i). The claimer owes each one a wake-up message.
    pub(crate) fn claim_sleepers(&self, role: Role) -> u64 {
        // Relaxed, like the flags below: the ringer calls this behind the SeqCst fence of
        // `WaitCell::take_tokens` (see `set_asleep`).
        let live = self.masks.live[role.index()].load(Ordering::Relaxed);
        let mut out = 0;
        for (i, ep) in self.entries.iter().enumerate() {
            if live & (1 << i) != 0
                && ep.asleep.load(Ordering::Relaxed) == 1
                && ep
                    .asleep
                    .compare_exchange(1, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                out |= 1 << i;
            }
        }
        out
    }

    /// The counters of entry `slot` (its endpoint's own; see [`Counters`]).
    pub(crate) fn counters(&self, slot: usize) -> &'a Counters {
        &self.entries[slot].counters
    }

    /// The announcement record of entry `slot`, for an MPMC handle (`set_working`).
    pub(crate) fn working(&self, slot: usize) -> &'a ring::Working {
        &self.entries[slot].working
    }

    /// Settles the slots that dead MPMC endpoints (orphaned entries) had claimed: a dead
    /// producer's are marked skipped; a dead consumer's records are adopted by `adopter` (a
    /// live consumer of this process) and handed to `deliver` — at-least-once delivery. Frees
    /// each entry once its record is settled; `wake` wakes the waiters of a role after a
    /// settle made progress for them. Returns whether anything was settled.
    pub(crate) fn settle_orphans(
        &self,
        ring: &ring::RawRing,
        mut adopter: Option<&mut ring::MpmcConsumer>,
        mut deliver: impl FnMut(NonNull<u8>),
        wake: impl Fn(Role),
    ) -> bool {
        let live = self.entries.iter().filter_map(|ep| {
            // SYNC(endpoint-free): Acquire, as every reader of the claim word.
            let pid = ep.pid.load(Ordering::Acquire);
            (pid != FREE && pid != REAPING && pid != ORPHAN).then_some(&ep.working)
        });
        let mut progress = false;
        for ep in self.entries {
            // SYNC(endpoint-free): Acquire pairs with the reaper's Release store of ORPHAN.
            if ep.pid.load(Ordering::Acquire) != ORPHAN {
                continue;
            }
            let settled = match ep.role.load(Ordering::Relaxed) {
                // A receiver that died while handing adopted records back to the ring holds a
                // producer's claim: settled like a dead sender.
                r if r == Role::Sender as u32 || ep.working.announces_producer() => {
                    let r = ring.settle_producer(&ep.working, live.clone());
                    if matches!(r, Ok(s) if s.settled + s.freed > 0) {
                        wake(Role::Receiver);
                    }
                    r
                }
                _ => match adopter.as_deref_mut() {
                    Some(c) => {
                        let r = c.adopt(&ep.working, live.clone(), &mut deliver);
                        if matches!(r, Ok(s) if s.settled + s.freed > 0) {
                            wake(Role::Sender);
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
                // SYNC(endpoint-free): AcqRel: Release after our clear of the record.
                let _ = ep
                    .pid
                    .compare_exchange(ORPHAN, FREE, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
        progress
    }

    /// The last departure of `role`'s endpoints (a claim of the segment: for reports only).
    pub(crate) fn last_left(&self, role: Role) -> Option<Left> {
        // Acquire: pairs with the Release bit clears after the store (see `deregister`).
        Left::unpack(self.masks.left[role.index()].load(Ordering::Acquire))
    }

    /// The live masks and the (role, pid, start time) of each live entry, as read now
    /// (Relaxed: a snapshot for inspection, never acted on).
    #[cfg(all(test, loom))]
    pub(crate) fn listing(&self) -> ([u64; 2], Vec<(Role, u32, u64)>) {
        let (masks, listed) = self.listed();
        (
            masks,
            listed.iter().map(|l| (l.role, l.pid, l.start)).collect(),
        )
    }

    /// The live masks and each live entry with its counters, as read now (Relaxed: a
    /// snapshot for inspection, never acted on).
    pub(crate) fn listed(&self) -> ([u64; 2], Vec<Listed>) {
        let r = Ordering::Relaxed;
        let masks = [self.masks.live[0].load(r), self.masks.live[1].load(r)];
        let endpoints = self
            .entries
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
                let c = &ep.counters;
                let word = ep.life.load(r);
                Some(Listed {
                    slot: i,
                    role,
                    pid: ep.pid.load(r),
                    start: ep.start_time.load(r),
                    pidns: if word & Life::NS_RECORDED != 0 {
                        ep.pidns.load(r)
                    } else {
                        0
                    },
                    token: word & Life::HOLDS_TOKEN != 0,
                    records: c.get(Count::Records),
                    sleeps: c.get(Count::Sleeps),
                    posts: c.get(Count::Posts),
                })
            })
            .collect();
        (masks, endpoints)
    }
}
