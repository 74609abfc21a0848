//! Crash recovery for MPMC rings: settling the slots a dead endpoint had claimed.
//!
//! In a Vyukov ring a claim cannot be undone. A producer killed between claiming position `p`
//! (the CAS of the tail) and publishing it leaves `p` *claimed, unpublished* and every consumer
//! stalls at `p`; a consumer killed between claiming `p` (the CAS of the head) and releasing it
//! leaves `p` *published, unreleased* and producers stall one lap later. The upper layer detects
//! dead processes; this module is how it then unblocks the ring.
//!
//! # Announcements
//!
//! Each endpoint owns a [`Working`] record (16 bytes, in the upper layer's memory: its endpoint
//! table entry, on the endpoint's own line) and hands it to its handle with
//! [`MpmcProducer::set_working`](crate::MpmcProducer::set_working) /
//! [`MpmcConsumer::set_working`](crate::MpmcConsumer::set_working). Without one, nothing changes.
//! With one, the handle
//!
//! ```text
//! before every claim CAS of k slots at p:  len = k (only when it changed); pos_role = p << 2 | role
//! CAS the cursor p -> p + k (Release on success)
//! ... write / read in place ...
//! after publishing (or skipping) / releasing all of them:  pos_role = 0
//! ```
//!
//! A failed claim clears the record too (a stale announcement would make settlers wait). The
//! record of a consumer spans a `ReadGrant`'s lifetime and a whole batch.
//!
//! # Settling
//!
//! - A dead **producer**: [`RawRing::settle_producer`]. For each announced position `p` below
//!   the tail whose stamp is still `free(p)`, CAS the stamp to `skipped(p)`; consumers pass over
//!   it as over a grant dropped uncommitted. A half-written record is never delivered. Then ring
//!   the consumers' doorbell (`wake_consumers`).
//! - A dead **consumer**: [`MpmcConsumer::adopt`](crate::MpmcConsumer::adopt). For each
//!   announced position `p` below the head whose stamp is still `published(p)`, CAS it to
//!   `adopted(p)` (tag 3; exactly one adopter wins), hand the record to the callback (the upper
//!   layer copies it out and delivers it: **at-least-once delivery** — the dead consumer may have
//!   acted on it already), then release the slot (`free(p + capacity)`). Skipped slots the dead
//!   consumer was passing over are released without delivery. Then ring the producers' doorbell
//!   (`wake_producers`). The adopter announces each adoption in its own `Working` first, so an
//!   adopter that dies in the callback is settled in turn: that record is then released
//!   *without* a second delivery (a double failure drops it).
//!
//! - A consumer that adopted records can hand them back to the ring
//!   ([`MpmcConsumer::push_back_with`](crate::MpmcConsumer::push_back_with)) instead of
//!   holding them in private memory. It announces that claim with the producer role in its own
//!   record, so a consumer that dies mid-push is settled like a dead producer (the record it was
//!   handing back is then lost: a double failure). [`Working::announces_producer`] tells which.
//!
//! Both are idempotent and race safely with other settlers: every transition is a CAS from a
//! stamp value that is written once in the ring's whole history (`free(p)`, `published(p)`,
//! `adopted(p)` and `skipped(p)` each name one position), so there is no ABA.
//!
//! # Why settlers need the live endpoints' records
//!
//! The announcement comes *before* the claim CAS (after it, a death in between would leave the
//! claim unannounced). So a dead endpoint's record may name a position it never got: it died
//! between announcing and its CAS, or its CAS failed, and another endpoint owns that position
//! now — possibly a live one, still writing or reading the slot. Its own record cannot tell the
//! two apart. But the real owner announced the same position before *its* successful claim, and
//! keeps it announced until it is done. So the settlers take the records of the **live**
//! endpoints (`live`, any role, the caller's own may be included, **not** the dead one) and leave
//! every position that a live endpoint of the same role announces: it is *deferred*, the dead
//! record is kept, and the caller settles again later (the live endpoint clears or replaces its
//! record within one operation unless it is stopped, which stalls the ring anyway). A position
//! no live record covers is owned by a dead endpoint or by nobody, and is safe to settle.
//!
//! # Orderings
//!
//! - `SYNC(settle-claim)`: the claim CAS of the tail/head is Release on success; a settler loads
//!   the cursor with Acquire. Every later write of a cursor is a CAS (an RMW), so the value the
//!   settler reads continues the release sequence of every claim before it: seeing the cursor past
//!   `p`, the settler sees the announcement of whoever claimed `p` (or a later value of that
//!   record). The Release also keeps a dying endpoint's announcement before its claim.
//! - `SYNC(settle-announce)`: every store to a `Working` is Release and every settler load is
//!   Acquire. A settler that reads a *later* value of a live record (a clear, or the next
//!   announcement) therefore sees the publishes/releases the endpoint did before it, and its
//!   stamp CAS fails; a torn read (new `len`, old `pos_role`) is harmless for the same reason.
//!   Adopters CAS `published → adopted` with AcqRel: Acquire for the record (the producer's
//!   `mpmc-publish`), Release so a concurrent settler that reads `adopted(p)` sees the adopter's
//!   announcement.
//! - `SYNC(mpmc-publish)` / `SYNC(mpmc-free)`: the settler's `skipped(p)` is a Release CAS (the
//!   dead producer's partial write, visible to the settler through the death, is ordered before
//!   the next lap's write via the consumer's release), and the adopter's release is the usual
//!   Release store.
//! - The death itself: the upper layer settles only after it has observed, through the kernel
//!   (`/proc`, `kill(pid, 0)`), that the process is gone. Everything the dead process did happens
//!   before that observation (loom models it as a `join`).
//!
//! # What the upper layer must guarantee
//!
//! 1. Settle (or adopt for) only endpoints whose process is dead, and keep their `Working` record
//!    untouched until a call returns [`Settled::is_done`].
//! 2. If it settles at all, every MPMC handle of that role on the ring has a `Working` (an
//!    endpoint without one is invisible to settlers), and `live` lists every live one.
//! 3. An adopter has a `Working` itself ([`SettleError::NoWorking`] otherwise).
//! 4. Ring the doorbell afterwards: `wake_consumers` after `settle_producer`, `wake_producers`
//!    after `adopt`.
//!
//! # Hostile memory
//!
//! A record with role bits naming no role or the other role, a position at or above 2^60 or a
//! length of 0 is rejected ([`SettleError::Invalid`], nothing touched); a length above the
//! capacity is clamped. Every loop is bounded by the capacity, every slot index is reduced below the capacity.

use core::fmt;
use core::ptr::NonNull;

use super::claim::ReleaseOnUnwind;
use super::{adopted_stamp, free_stamp, full_stamp, skipped_stamp, MpmcConsumer, MAX_POS};
use crate::raw::{Core, RawRing};
use crate::sync::{AtomicU64, Ordering};
use crate::RingKind;

/// `pos_role` role bits of a producer's announcement.
pub(super) const ROLE_PRODUCER: u64 = 1;
/// `pos_role` role bits of a consumer's announcement.
pub(super) const ROLE_CONSUMER: u64 = 2;
const ROLE_MASK: u64 = 3;

/// What one MPMC endpoint is working on, announced before each claim (see the module docs).
///
/// `#[repr(C)]`, 16 bytes, 16-aligned, no padding: place one per endpoint in the upper layer's
/// shared memory (its endpoint table, on the endpoint's own line). All-zero bytes are a cleared
/// record (real builds), so zeroed memory needs no initialisation.
///
/// ```text
/// 0  pos_role  AtomicU64  0: nothing announced; else pos << 2 | role (1 producer, 2 consumer)
/// 8  len       AtomicU64  number of positions from pos (1 ..= capacity)
/// ```
#[repr(C, align(16))]
pub struct Working {
    pos_role: AtomicU64,
    len: AtomicU64,
}

#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::size_of::<Working>() == 16);
    assert!(core::mem::align_of::<Working>() == 16);
    assert!(core::mem::offset_of!(Working, pos_role) == 0);
    assert!(core::mem::offset_of!(Working, len) == 8);
};

impl Working {
    /// A cleared record.
    pub fn new() -> Working {
        Working {
            pos_role: AtomicU64::new(0),
            len: AtomicU64::new(0),
        }
    }

    /// Clears the record in place (e.g. when the upper layer hands a table entry to a new
    /// endpoint).
    ///
    /// # Safety
    /// `p` is valid for writes of a `Working`, aligned, and (real builds) initialised memory.
    pub unsafe fn init(p: *mut Working) {
        // SAFETY: the caller guarantees `p` is valid and aligned, so are its fields.
        unsafe {
            crate::sync::init_u64(core::ptr::addr_of_mut!((*p).pos_role), 0);
            crate::sync::init_u64(core::ptr::addr_of_mut!((*p).len), 0);
        }
    }

    /// Whether the record announces a producer's claim (Acquire). A consumer's record does so
    /// while it [pushes a record back](crate::MpmcConsumer::push_back_with): if that consumer
    /// dies, settle its record with [`settle_producer`](RawRing::settle_producer), not
    /// [`adopt`](crate::MpmcConsumer::adopt).
    pub fn announces_producer(&self) -> bool {
        // SYNC(settle-announce): pairs with the owner's Release stores in `Announcer`.
        self.pos_role.load(Ordering::Acquire) & ROLE_MASK == ROLE_PRODUCER
    }

    /// Nothing is announced (Acquire; diagnostics).
    pub fn is_clear(&self) -> bool {
        self.pos_role.load(Ordering::Acquire) == 0
    }

    /// The raw words `(pos_role, len)` (Acquire loads; diagnostics and tests).
    pub fn raw(&self) -> (u64, u64) {
        let pr = self.pos_role.load(Ordering::Acquire);
        (pr, self.len.load(Ordering::Acquire))
    }

    /// Overwrites the raw words (Release; for tests and fault injection only).
    #[doc(hidden)]
    pub fn store_raw(&self, pos_role: u64, len: u64) {
        self.len.store(len, Ordering::Release);
        self.pos_role.store(pos_role, Ordering::Release);
    }

    /// Reads the record as an announcement for `role`: `Ok(None)` if cleared, `Ok(Some((pos,
    /// len)))` with `len` clamped to `capacity`, `Err` for garbage or the other role.
    fn read(&self, role: u64, capacity: u64) -> Result<Option<(u64, u64, u64)>, SettleError> {
        // SYNC(settle-announce): pairs with the owner's Release stores in `Announcer`.
        let pr = self.pos_role.load(Ordering::Acquire);
        if pr == 0 {
            return Ok(None);
        }
        // SYNC(settle-announce): as above; a value newer than `pr`'s is harmless (module docs).
        let len = self.len.load(Ordering::Acquire);
        let pos = pr >> 2;
        if pr & ROLE_MASK != role || pos >= MAX_POS || len == 0 {
            return Err(SettleError::Invalid);
        }
        Ok(Some((pos, len.min(capacity), pr)))
    }

    /// Whether this (live) record announces `pos` for `role`. Garbage covers nothing.
    fn covers(&self, pos: u64, role: u64, capacity: u64) -> bool {
        matches!(self.read(role, capacity), Ok(Some((p, n, _))) if p <= pos && pos - p < n)
    }

    /// Clears the record if it still holds `pr` (a settler's clear; racing settlers agree).
    fn clear_if(&self, pr: u64) {
        // Release: SYNC(settle-announce), like the owner's clear. Failure: someone else cleared.
        let _ = self
            .pos_role
            .compare_exchange(pr, 0, Ordering::Release, Ordering::Relaxed);
    }
}

impl Default for Working {
    fn default() -> Self {
        Working::new()
    }
}

impl fmt::Debug for Working {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (pr, len) = self.raw();
        f.debug_struct("Working")
            .field("pos", &(pr >> 2))
            .field("role", &(pr & ROLE_MASK))
            .field("len", &len)
            .finish()
    }
}

/// A handle's writer of its [`Working`] record; caches the last `len` written.
pub(super) struct Announcer {
    w: NonNull<Working>,
    len: u64,
}

impl Announcer {
    pub(super) fn new(w: NonNull<Working>) -> Announcer {
        Announcer { w, len: u64::MAX }
    }

    #[inline(always)]
    fn w(&self) -> &Working {
        // SAFETY: `set_working`'s contract: valid while the handle lives, used by no other handle.
        unsafe { self.w.as_ref() }
    }

    /// Announces a claim attempt of `len` positions from `pos` (before the claim CAS).
    #[inline(always)]
    pub(super) fn announce(&mut self, pos: u64, len: u64, role: u64) {
        if self.len != len {
            // SYNC(settle-announce): pairs with a settler's Acquire load in `Working::read`.
            self.w().len.store(len, Ordering::Release);
            self.len = len;
        }
        // SYNC(settle-announce): as above; ordered before the claim by the CAS's Release.
        self.w().pos_role.store(pos << 2 | role, Ordering::Release);
    }

    /// Clears the announcement after the work is published or released.
    #[inline(always)]
    pub(super) fn clear(&self) {
        // SYNC(settle-announce): a settler that reads the clear sees our publishes/releases.
        self.w().pos_role.store(0, Ordering::Release);
    }
}

/// Why a [`Working`] record was not settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettleError {
    /// The record is garbage (role bits naming no role or the other role, a position at or
    /// above 2^60, or a zero length). Nothing was touched; treat the segment as corrupted.
    Invalid,
    /// The ring is not an MPMC ring.
    NotMpmc,
    /// The adopting consumer has no [`Working`] record of its own (see
    /// [`MpmcConsumer::set_working`]).
    NoWorking,
}

impl fmt::Display for SettleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SettleError::Invalid => "working record is corrupted",
            SettleError::NotMpmc => "only MPMC rings are settled",
            SettleError::NoWorking => "the adopting consumer has no working record",
        })
    }
}

impl core::error::Error for SettleError {}

/// What a settle call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settled {
    /// Producer: slots skipped. Consumer: records handed to the callback and released.
    pub settled: usize,
    /// Consumer: slots released without delivery (skipped slots the dead consumer was passing
    /// over, records of a dead adopter).
    pub freed: usize,
    /// Positions left alone because a live endpoint announces them: call again later. The dead
    /// record is kept until a call defers nothing.
    pub deferred: usize,
}

impl Settled {
    /// Nothing was deferred: the dead record is cleared and fully settled.
    pub fn is_done(&self) -> bool {
        self.deferred == 0
    }
}

fn live_covers<'a, I>(live: &I, pos: u64, role: u64, capacity: u64) -> bool
where
    I: IntoIterator<Item = &'a Working> + Clone,
{
    live.clone()
        .into_iter()
        .any(|w| w.covers(pos, role, capacity))
}

impl RawRing {
    /// Settles a dead MPMC producer's claims: each position announced in `dead` that is below
    /// the tail and still claimed but unpublished becomes *skipped* (consumers pass over it; its
    /// half-written record is never delivered). `live`: the [`Working`] records of the live
    /// endpoints (any role; not `dead`'s); a position one of them announces is deferred. Clears `dead` when
    /// nothing was deferred. Then call `wake_consumers` (see [`crate::settle`]).
    ///
    /// ```
    /// # use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
    /// # use std::ptr::NonNull;
    /// use shmchan_ring::{settle::Working, Layout, RawRing, RingConfig, RingKind};
    /// # let cfg = RingConfig::new(RingKind::Mpmc, 4, 8, 8);
    /// # let len = Layout::new(&cfg).unwrap().total_len as usize;
    /// # let mem = AllocLayout::from_size_align(len, 128).unwrap();
    /// # let base = NonNull::new(unsafe { alloc_zeroed(mem) }).unwrap();
    /// # // SAFETY: fresh zeroed allocation, 128-aligned, freed at the end.
    /// # let ring = unsafe { RawRing::init(base, len, &cfg) }.unwrap();
    /// let w = Box::new(Working::new()); // in real use: the endpoint's table entry
    /// let mut dying = ring.mpmc_producer().unwrap();
    /// // SAFETY: `w` outlives `dying` and no other handle uses it.
    /// unsafe { dying.set_working(NonNull::from(&*w)) };
    /// let mut g = dying.reserve_up_to(1);
    /// g.write(0, &1u64.to_ne_bytes());
    /// std::mem::forget(g); // its process "dies" before committing
    /// let (mut tx, mut rx) = (ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap());
    /// tx.try_push(&2u64.to_ne_bytes()).unwrap(); // another producer publishes after it...
    /// let mut out = [0u8; 8];
    /// assert!(rx.try_pop(&mut out).is_err()); // ...but consumers stall at the dead claim
    /// let done = ring.settle_producer(&w, []).unwrap(); // no live endpoint announces anything
    /// assert_eq!((done.settled, done.is_done()), (1, true));
    /// rx.wake_producers(); // (the doorbell layer would post the returned tokens)
    /// rx.try_pop(&mut out).unwrap();
    /// assert_eq!(u64::from_ne_bytes(out), 2); // the half-written record was skipped
    /// assert!(w.is_clear());
    /// # drop((dying, tx, rx));
    /// # unsafe { dealloc(base.as_ptr(), mem) };
    /// ```
    pub fn settle_producer<'a, I>(&self, dead: &Working, live: I) -> Result<Settled, SettleError>
    where
        I: IntoIterator<Item = &'a Working> + Clone,
    {
        if self.kind() != RingKind::Mpmc {
            return Err(SettleError::NotMpmc);
        }
        let core = self.core();
        let Some((p0, n, pr)) = dead.read(ROLE_PRODUCER, core.capacity)? else {
            return Ok(Settled::default());
        };
        // SYNC(settle-claim): pairs with the claim CAS's Release: we see the announcement of
        // every producer that claimed below this tail.
        let tail = core.tail().load(Ordering::Acquire);
        let mut out = Settled::default();
        for p in p0..p0 + n {
            if p >= tail {
                break;
            }
            settle_one_producer(&core, p, &live, &mut out);
        }
        if out.is_done() {
            dead.clear_if(pr);
        }
        Ok(out)
    }
}

/// Skips position `p` if it is still claimed, unpublished and no live producer announces it.
fn settle_one_producer<'a, I>(core: &Core, p: u64, live: &I, out: &mut Settled)
where
    I: IntoIterator<Item = &'a Working> + Clone,
{
    // Acquire (SYNC(mpmc-publish)): a plain early-out; the CAS below decides.
    if core.stamp(p).load(Ordering::Acquire) != free_stamp(p) {
        return;
    }
    if live_covers(live, p, ROLE_PRODUCER, core.capacity) {
        out.deferred += 1;
        return;
    }
    // SYNC(mpmc-publish): Release, like `skip_slot`: the dead producer's partial write (seen by
    // us through its death) is ordered before the next lap's write via the consumer's release.
    let ok = core
        .stamp(p)
        .compare_exchange(
            free_stamp(p),
            skipped_stamp(p),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .is_ok();
    if ok {
        out.settled += 1;
    }
}

impl MpmcConsumer {
    /// Adopts a dead MPMC consumer's claims: each position announced in `dead` that is below the
    /// head and still published but unreleased is claimed by this consumer (exactly one adopter
    /// wins each slot), handed to `f` (`record_size` bytes, read in place: copy it out and
    /// deliver it — **at-least-once delivery**), and released for the producers. Skipped slots
    /// the dead consumer held are released, and a record whose adopter died is released without
    /// delivery. `live`: the [`Working`] records of the live endpoints (any role, this one's may
    /// be included; not `dead`'s); a position one of them announces is deferred. Clears `dead` when nothing was deferred. Then call
    /// `wake_producers` (see [`crate::settle`]). This consumer must have a `Working` of its own.
    ///
    /// If `f` panics its record is released (lost) and the panic propagates.
    pub fn adopt<'a, I>(
        &mut self,
        dead: &Working,
        live: I,
        mut f: impl FnMut(NonNull<u8>),
    ) -> Result<Settled, SettleError>
    where
        I: IntoIterator<Item = &'a Working> + Clone,
    {
        if self.working.is_none() {
            return Err(SettleError::NoWorking);
        }
        let core = self.core;
        let Some((p0, n, pr)) = dead.read(ROLE_CONSUMER, core.capacity)? else {
            return Ok(Settled::default());
        };
        // SYNC(settle-claim): pairs with the claim CAS's Release (see settle_producer).
        let head = core.head().load(Ordering::Acquire);
        let mut out = Settled::default();
        for p in p0..p0 + n {
            if p >= head {
                break;
            }
            // SYNC(mpmc-publish) / SYNC(settle-announce): Acquire, pairs with the producer's
            // publish and with an adopter's AcqRel CAS (its announcement is then visible).
            let s = core.stamp(p).load(Ordering::Acquire);
            if s != full_stamp(p) && s != adopted_stamp(p) && s != skipped_stamp(p) {
                continue; // released already (or garbage: not ours to touch)
            }
            if live_covers(&live, p, ROLE_CONSUMER, core.capacity) {
                out.deferred += 1;
                continue;
            }
            if s != full_stamp(p) {
                // Skipped, or adopted by an adopter that is dead (a live one would announce it):
                // release without delivery. Release: SYNC(mpmc-free), the dead reader's reads
                // happen before the next lap's write.
                if core
                    .stamp(p)
                    .compare_exchange(
                        s,
                        free_stamp(p + core.lap),
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    out.freed += 1;
                }
                continue;
            }
            if let Some(a) = self.working.as_mut() {
                a.announce(p, 1, ROLE_CONSUMER);
            }
            // AcqRel: Acquire pairs with the producer's publish (SYNC(mpmc-publish)); Release
            // publishes our announcement to settlers that read `adopted(p)`
            // (SYNC(settle-announce)).
            if core
                .stamp(p)
                .compare_exchange(
                    full_stamp(p),
                    adopted_stamp(p),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                continue; // another adopter won it
            }
            core.tracker(p).read();
            let guard = ReleaseOnUnwind {
                core: &core,
                pos: p,
            };
            f(core.record(p));
            core::mem::forget(guard);
            core.release_slot(p);
            out.settled += 1;
        }
        if let Some(a) = &self.working {
            a.clear();
        }
        if out.is_done() {
            dead.clear_if(pr);
        }
        Ok(out)
    }
}
