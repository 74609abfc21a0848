//! The endpoint core: one untyped sending side and one untyped receiving side that every face
//! of a channel shares (crossbeam-channel's `flavors/` under its `channel.rs` facade).
//!
//! [`SendCore`] and [`RecvCore`] own the ring handle (SPSC or MPMC, chosen at run time by the
//! segment; the branch is perfectly predicted), the endpoint-table entry, the spin policy, the
//! armed flag of an event loop, and — once, for every face — the try / blocking / deadline
//! forms of each operation, waking the other side, the drain-before-`Disconnected` rule, and
//! the adoption of records a dead sibling receiver held. Records are moved by closures the
//! faces pass in (`write` fills a slot, `read` copies one out) and failures are reported as
//! [`Failed`], which each face maps to its own error types.
//!
//! The fast path is the ring's: one slot write and one cursor store for a send, plus the
//! ring's "must the doorbell ring?" check (a fence and one load; no system call unless
//! somebody sleeps).

use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmchan_os as os;
use shmchan_ring::{self as ring, PushError};

use crate::barrier::Publish;
use crate::endpoint::WhenPeersLeave;
use crate::error::OpenError;
use crate::segment::{Role, Segment};
use crate::table::{Count, Counters};
use crate::wait::{Attempt, Failed, Spin};

mod recv;
mod send;

pub(crate) use recv::{RecvCore, SlotRead};
pub(crate) use send::{SendCore, SlotWrite};

/// Runs `$e` with `$h` bound to the handle inside a `Prod` or a `Cons`.
macro_rules! either {
    ($v:expr, $kind:ident, $h:ident => $e:expr) => {
        match $v {
            $kind::Spsc($h) => $e,
            $kind::Mpmc($h) => $e,
        }
    };
}

pub(crate) use either;

/// How long an operation may wait for room or for a record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all (the `try_` forms): [`Failed::Timeout`] then means full or empty right now.
    No,
    /// Until the operation completes or the other side is gone.
    Forever,
    /// Until this instant at most.
    Until(Instant),
}

impl Wait {
    /// Waiting at most `timeout` from now (for ever when that instant cannot be represented).
    pub(crate) fn timeout(timeout: Duration) -> Wait {
        Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until)
    }

    fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Until(d) => Some(d),
            Wait::No | Wait::Forever => None,
        }
    }
}

/// A record handed to a face: its bytes (a slot's record, or an adopted record's image) and
/// its entry in the channel's length lane (a byte channel's: see `crate::endpoint::bytes`).
///
/// For a face without a lane (a typed channel), `lane` points nowhere and is never used.
#[derive(Clone, Copy)]
pub(crate) struct Rec {
    pub(crate) ptr: NonNull<u8>,
    pub(crate) lane: NonNull<u32>,
}

/// Where a channel's length lane is (one `u32` per slot, in the segment; see
/// `Segment::lane`), and how a record's entry is found: by its position (an SPSC handle
/// knows it, whether the record comes from its slot or from the mailbox) or by its slot's
/// address (an MPMC claim's, which the ring does not hand out with a position).
#[derive(Clone, Copy)]
pub(crate) struct Lane {
    words: NonNull<u32>,
    /// Slots - 1.
    mask: u64,
    /// The address of slot 0's record.
    first: usize,
    /// The stride's power of two and the inverse of its odd part (mod 2^64): an exact
    /// division of a record's offset by the stride is a shift and a multiplication.
    shift: u32,
    inv: u64,
}

// SAFETY: a `Lane` only computes addresses; `words` points into the shared mapping, which the
// `Arc<Segment>` held beside every `Lane` keeps mapped, and faces access the entries as the
// ring protocol allows their slots.
unsafe impl Send for Lane {}
// SAFETY: as above.
unsafe impl Sync for Lane {}

impl Lane {
    /// The lane of `seg` (a typed channel's: none, every entry pointer dangling).
    fn of(seg: &Segment) -> Lane {
        match seg.lane() {
            Some(words) => Lane::new(words, seg.ring()),
            None => Lane::with(NonNull::dangling(), 0, 1, 1),
        }
    }

    /// The lane at `words` (one entry per slot of `r`) of the ring `r`.
    pub(crate) fn new(words: NonNull<u32>, r: &ring::RawRing) -> Lane {
        let info = r.config();
        let first = r.base().as_ptr() as usize
            + r.layout().slots_offset as usize
            + info.record_offset() as usize;
        Lane::with(
            words,
            first,
            u64::from(info.slot_stride),
            u64::from(info.slots()),
        )
    }

    /// The lane at `words` of a ring of `slots` slots (a power of two) every `stride` bytes
    /// (not 0), slot 0's record at `first`.
    fn with(words: NonNull<u32>, first: usize, stride: u64, slots: u64) -> Lane {
        let shift = stride.trailing_zeros();
        Lane {
            words,
            mask: slots - 1,
            first,
            shift,
            inv: inverse(stride >> shift),
        }
    }

    /// The entry of position `pos` (masked: always inside the lane).
    #[inline(always)]
    pub(crate) fn at(self, pos: u64) -> NonNull<u32> {
        // SAFETY: `pos & mask` is below the slot count, the lane's length in entries (its
        // placement was checked when the segment was created or opened); for no lane, the mask
        // is 0 and the offset too.
        unsafe { self.words.add((pos & self.mask) as usize) }
    }

    /// The entry of the slot whose record is at `rec` (a record of this channel's ring:
    /// `first + i * stride`; anything else still gives an entry inside the lane).
    #[inline(always)]
    pub(crate) fn of_record(self, rec: NonNull<u8>) -> NonNull<u32> {
        let off = (rec.as_ptr() as usize).wrapping_sub(self.first) as u64;
        self.at((off >> self.shift).wrapping_mul(self.inv))
    }
}

/// The inverse of an odd `a` modulo 2^64 (Newton's iteration: each step doubles the bits that
/// are right, from the 3 of `a` itself).
fn inverse(a: u64) -> u64 {
    debug_assert!(a % 2 == 1);
    let mut x = a;
    for _ in 0..5 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

/// What a face tells the core about its records.
#[derive(Clone, Copy)]
pub struct Format {
    /// Checks, before an endpoint is made, that the segment's records are what the face reads
    /// and writes (the fingerprint comparison at open already did; this guards the face's
    /// casts against any path that skipped it).
    pub(crate) check: fn(&Segment) -> Result<(), OpenError>,
    /// How many leading bytes of a slot's record are the record (the rest is unused room):
    /// what an adopted record keeps, and the length its image's lane entry says. `None` for a
    /// malformed record, which is dropped.
    ///
    /// The caller guarantees that the record is a slot it holds, with `record_size` (the
    /// second argument) readable bytes, 8-byte aligned, and its lane entry.
    pub(crate) image: unsafe fn(Rec, usize) -> Option<usize>,
}

/// A ring handle of one side, made for an endpoint registered in the table.
trait Handle: Sized {
    /// The side the handle is on.
    const ROLE: Role;

    /// Builds the handle for the endpoint registered in table entry `slot`.
    fn make(seg: &Segment, slot: usize) -> Result<Self, ring::KindError>;

    /// Whether the handle is an SPSC one (the only kind the short ways take).
    fn is_spsc(&self) -> bool;
}

/// What senders and receivers share: the segment, the endpoint's table entry, its spin policy,
/// the event loop's armed flag, and its record format.
struct Base {
    seg: Arc<Segment>,
    slot: usize,
    spin: Spin,
    /// Announced as a sleeper by `arm` (an event loop polls the doorbell).
    armed: bool,
    /// The fork generation ([`forks`](Self::forks)) while the record path may go the short
    /// way, [`NOT_PLAIN`] otherwise (see [`Base::plain_here`]): the handle is an SPSC one, this
    /// process publishes unfenced, and the endpoint is not armed. One word for the three and
    /// the fork check, so that the short way compares once.
    plain_forks: u64,
    /// Whether the endpoint is plain whenever it is not armed.
    plain_unarmed: bool,
    format: Format,
    record_size: usize,
    /// The channel's length lane (see [`Lane`]).
    lane: Lane,
    /// The process's fork generation when this endpoint attached (see [`Base::here`]).
    forks: u64,
    /// What calls do once every peer has left (set with [`Base::set_when_peers_leave`], which
    /// also points [`Near::peer_live`] at the right word).
    when_peers_leave: WhenPeersLeave,
    /// This endpoint's counters in its table entry.
    tally: Tally,
    /// What the record path looks at in the segment, at hand (see [`Near`]).
    near: Near,
    /// How this endpoint's publishes are ordered before its look at the peers' sleepers
    /// (chosen for the process when it attached; see `crate::barrier`).
    publish: Publish,
}

/// [`Base::plain_forks`] of an endpoint that is not plain: no fork generation (a count of
/// forks from 0) ever reaches it.
const NOT_PLAIN: u64 = u64::MAX;

/// An endpoint's [`Counters`] (in its own table entry), reached without going through the
/// segment on the record path.
#[derive(Clone, Copy)]
pub(crate) struct Tally(NonNull<Counters>);

// SAFETY: the pointee is atomics in the shared mapping, which the `Arc<Segment>` held next to
// every `Tally` keeps mapped; atomics may be used from any thread.
unsafe impl Send for Tally {}
// SAFETY: as above.
unsafe impl Sync for Tally {}

impl Tally {
    /// Adds `n` to one of the endpoint's counts (a Relaxed load and store, see
    /// [`Counters::add`]).
    #[inline(always)]
    pub(crate) fn add(self, c: Count, n: u64) {
        // SAFETY: points into the mapping that the endpoint's `Arc<Segment>` keeps alive for
        // as long as the endpoint (and any guard borrowing it) lives; atomics, valid for any
        // bits.
        unsafe { self.0.as_ref() }.add(c, n)
    }
}

/// What an endpoint's record path looks at in the segment, reached without going through the
/// segment (its table view, its ring, the role's match): the word that says at one load that
/// the other side is not gone, and the wait cell this endpoint rings after it publishes (a
/// sender: the receivers' data cell) or frees slots (a receiver: the senders' room cell).
#[derive(Clone, Copy)]
struct Near {
    /// The other side's live mask when this endpoint reports that side's departure
    /// ([`WhenPeersLeave::Disconnect`]); otherwise [`NEVER_GONE`], which is never zero (a
    /// departure changes nothing for such an endpoint, so its short way need not look at the
    /// mask, nor compare the policy). [`Base::peers_left`] still compares the policy: this
    /// choice of word saves the short way a comparison, it decides nothing.
    peer_live: NonNull<crate::sync::AtomicU64>,
    cell: NonNull<ring::WaitCell>,
}

/// The word [`Near::peer_live`] points at for an endpoint that does not report its peers'
/// departure: a live mask that always has a bit set. Never written. (Not under loom, whose
/// atomics live in a model's execution: there the word stays the live mask, and
/// [`Base::peers_left`]'s policy comparison decides alone.)
#[cfg(not(loom))]
static NEVER_GONE: crate::sync::AtomicU64 = crate::sync::AtomicU64::new(1);

// SAFETY: the pointees are atomics in the shared mapping, which the `Arc<Segment>` held next
// to every `Near` keeps mapped; atomics may be used from any thread.
unsafe impl Send for Near {}
// SAFETY: as above.
unsafe impl Sync for Near {}

impl Near {
    fn new(seg: &Segment, role: Role) -> Near {
        Near {
            peer_live: NonNull::from(seg.live_mask(role.peer())),
            cell: NonNull::from(seg.cell(role.peer())),
        }
    }

    /// The wait cell this endpoint rings.
    #[inline(always)]
    fn cell(&self) -> &ring::WaitCell {
        // SAFETY: points into the mapping that the endpoint's `Arc<Segment>` keeps alive for
        // as long as the endpoint (and any guard borrowing it) lives.
        unsafe { self.cell.as_ref() }
    }

    /// Whether some endpoint of the other side is live (the first load of `Segment::gone`),
    /// or the endpoint does not report that side's departure (see [`Near::peer_live`]).
    #[inline(always)]
    fn peer_live(&self) -> bool {
        // SAFETY: as in `cell`.
        let live = unsafe { self.peer_live.as_ref() };
        // SYNC(endpoint-leave): as the first load of `Table::gone`.
        live.load(crate::sync::Ordering::Acquire) != 0
    }
}

impl Base {
    /// Registers an endpoint on `seg` (after the format's check, when asked) and builds its
    /// ring handle, undoing the registration if that fails.
    fn attach<H: Handle>(
        seg: Arc<Segment>,
        spin: Duration,
        format: Format,
        check: bool,
    ) -> Result<(H, Base), OpenError> {
        if check {
            (format.check)(&seg)?;
        }
        // Before registering: a fork from here on is counted, so the child's copy of this
        // endpoint knows it is not its own.
        let forks = os::process::fork_generation();
        let slot = seg.register(H::ROLE)?;
        let h = H::make(&seg, slot).map_err(|e| {
            seg.deregister(H::ROLE, slot);
            OpenError::Corrupted {
                reason: e.to_string(),
            }
        })?;
        let record_size = seg.ring().config().record_size as usize;
        let tally = Tally(NonNull::from(seg.counters(slot)));
        let near = Near::new(&seg, H::ROLE);
        let lane = Lane::of(&seg);
        let publish = Publish::for_this_process();
        let plain = h.is_spsc() && publish == Publish::Unfenced;
        let mut base = Base {
            seg,
            slot,
            spin: Spin::new(spin),
            armed: false,
            plain_forks: if plain { forks } else { NOT_PLAIN },
            plain_unarmed: plain,
            format,
            record_size,
            lane,
            forks,
            when_peers_leave: WhenPeersLeave::Disconnect,
            tally,
            near,
            publish,
        };
        base.set_when_peers_leave(H::ROLE, WhenPeersLeave::default());
        Ok((h, base))
    }

    /// Another endpoint of the same side on the same channel (its records already checked),
    /// with the same settings.
    fn attach_another<H: Handle>(&self) -> Result<(H, Base), OpenError> {
        let (h, mut base) = Base::attach(self.seg.clone(), self.spin.window, self.format, false)?;
        base.set_when_peers_leave(H::ROLE, self.when_peers_leave);
        Ok((h, base))
    }

    /// Sets what calls of this endpoint (on the `role` side) do once every peer has left.
    fn set_when_peers_leave(&mut self, role: Role, p: WhenPeersLeave) {
        self.when_peers_leave = p;
        #[cfg(not(loom))]
        {
            self.near.peer_live = match p {
                WhenPeersLeave::Disconnect => NonNull::from(self.seg.live_mask(role.peer())),
                _ => NonNull::from(&NEVER_GONE),
            };
        }
        #[cfg(loom)]
        let _ = role;
    }

    /// Whether the record path may go the short way, as far as the endpoint's state says: an
    /// SPSC handle, unfenced publishes (the short way's wake check is the unfenced one), not
    /// armed, and used by the process that attached it (as [`here`](Self::here)). One load of
    /// the fork generation and one comparison. A send's caller still checks the peers.
    #[inline(always)]
    fn plain_here(&self) -> bool {
        os::process::forks() == self.plain_forks
    }

    /// Whether the endpoint is plain (an SPSC handle, unfenced publishes, not armed), in
    /// whichever process: what a zero-copy guard's commit or release asks (the fork check was
    /// its reservation's or peek's, and the guard borrows the endpoint, so nothing arms it
    /// meanwhile). Then the guard's slot is the SPSC handle's, published or freed with the
    /// unfenced wake check.
    #[inline(always)]
    fn plain(&self) -> bool {
        self.plain_forks != NOT_PLAIN
    }

    /// Whether this endpoint is used by the process that attached it: an endpoint inherited
    /// across `fork` is its parent's (the table entry, the cached cursors, the MPMC claim
    /// announcements), and using it in the child would corrupt the channel. One load of a
    /// process-wide counter that a `pthread_atfork` child handler bumps; no system call.
    #[inline]
    fn here(&self) -> Result<(), Failed> {
        if os::process::forks() == self.forks {
            Ok(())
        } else {
            Err(Failed::Forked)
        }
    }

    /// Whether calls should report the `peer` side's departure now: it is gone, and this
    /// endpoint ends its stream then ([`WhenPeersLeave::Disconnect`]).
    #[inline(always)]
    fn peers_left(&self, seg: &Segment, peer: Role) -> bool {
        debug_assert!(
            self.when_peers_leave != WhenPeersLeave::Disconnect
                || std::ptr::eq(seg.live_mask(peer), self.near.peer_live.as_ptr())
        );
        !self.near.peer_live()
            && self.when_peers_leave == WhenPeersLeave::Disconnect
            && seg.gone(peer)
    }

    /// Runs one blocking wait of this endpoint (see [`crate::wait::block`]); `attempt` gets
    /// the segment and whether this try follows a time slice's housekeeping.
    fn block<R>(
        &mut self,
        role: Role,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(&Segment, bool) -> Attempt<R>,
    ) -> Result<R, Failed> {
        let Base {
            seg, slot, spin, ..
        } = self;
        let seg = &**seg;
        crate::wait::block(seg, role, *slot, deadline, spin, |hk| attempt(seg, hk))
    }

    /// Announces this endpoint as a sleeper unless `ready` (checked after the announcement)
    /// says there is no need to wait.
    fn arm(&mut self, role: Role, ready: impl FnOnce(&Segment) -> bool) -> bool {
        if self.armed {
            return true;
        }
        let seg = &*self.seg;
        seg.announce(role, self.slot);
        if ready(seg) {
            seg.settle(role, self.slot);
            return false;
        }
        self.armed = true;
        self.plain_forks = NOT_PLAIN;
        true
    }

    /// Counts a sleep outside `block` (an event loop's wait on the doorbell).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    fn note_sleep(&self, role: Role) {
        self.seg.note_sleep(role, self.slot);
    }

    /// Leaves the armed state: withdraws the announcement or consumes the token it earned.
    #[inline]
    fn disarm(&mut self, role: Role) {
        if std::mem::take(&mut self.armed) {
            if self.plain_unarmed {
                self.plain_forks = self.forks;
            }
            self.seg.settle(role, self.slot);
        }
    }

    /// Leaves the channel: disarms and frees the table entry (which wakes the other side).
    /// Not when the channel file shrank under the mapping: touching it would fault.
    fn leave(&mut self, role: Role) {
        // A forked child's copy of its parent's endpoint: the entry is the parent's.
        if !self.seg.whole() || self.here().is_err() {
            return;
        }
        self.disarm(role);
        self.seg.deregister(role, self.slot);
    }
}

/// Whether calls of an endpoint with this policy report the `peer` side's departure now.
#[inline]
fn left(seg: &Segment, peer: Role, policy: WhenPeersLeave) -> bool {
    policy == WhenPeersLeave::Disconnect && seg.gone(peer)
}

/// Maps a ring push error: `Full` is "not now".
fn push_failed(e: PushError) -> Failed {
    match e {
        PushError::Full => Failed::Timeout,
        _ => Failed::Corrupted,
    }
}

/// Maps the outcome of one try of a non-waiting call.
fn now<R>(a: Attempt<R>) -> Result<R, Failed> {
    match a {
        Attempt::Ready(r) => Ok(r),
        Attempt::NotYet => Err(Failed::Timeout),
        Attempt::Gone => Err(Failed::Gone),
        Attempt::Corrupted => Err(Failed::Corrupted),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn inverse_inverts_every_odd_number_tried() {
        for a in (1..20_001u64)
            .step_by(2)
            .chain([u64::MAX, u64::MAX - 2, 1 << 63 | 1])
        {
            assert_eq!(a.wrapping_mul(inverse(a)), 1, "{a}");
        }
    }

    /// Every slot's record address gives its own entry, for strides of every shape (powers
    /// of two, odd multiples of 8, and of 16, 128) and slot counts; an address that is no
    /// record's still gives an entry inside the lane.
    #[test]
    fn a_records_address_gives_its_slots_entry() {
        let mut words = [0u32; 64];
        let base = NonNull::from(&mut words[0]);
        for stride in [8u64, 16, 24, 40, 72, 128, 136, 384, 4104, 65_544] {
            for slots in [1u64, 2, 8, 64] {
                let first = 0x7000_0000usize;
                let lane = Lane::with(base, first, stride, slots);
                for i in 0..slots {
                    let rec = NonNull::new((first + (i * stride) as usize) as *mut u8).unwrap();
                    // SAFETY: inside `words` (i < slots <= 64).
                    let want = unsafe { base.add(i as usize) };
                    assert_eq!(lane.of_record(rec), want, "stride {stride}, slot {i}");
                    assert_eq!(lane.at(i + 3 * slots), want, "stride {stride}, lap 3");
                }
                let odd = NonNull::new((first + 3) as *mut u8).unwrap();
                let at = lane.of_record(odd).as_ptr() as usize - base.as_ptr() as usize;
                assert!(at / 4 < slots as usize, "stride {stride}: {at}");
            }
        }
    }
}
