//! The receiving side's short ways (`RecvCore::recv`, `RecvCore::peek`): which endpoint may
//! take them, how many looks a take makes there, and what those looks tell the coalescing.

use shmchan_ring as ring;

use super::{Cons, RecvCore};
use crate::coalesce::Coalesce;
use crate::endpoint::core::{Base, Wait};
use crate::segment::Role;

/// The most looks a waiting take makes on the short way before it goes the general way (see
/// [`short_looks`]): about a microsecond of spinning, the span of a busy round trip.
const SHORT_LOOKS: u32 = 64;

/// The SPSC consumer of an endpoint in its plain state, whose takes may go the short ways
/// (`RecvCore::recv`, `RecvCore::peek`): this process's endpoint, plain (an SPSC one, not
/// armed, publishing unfenced: see `Base::plain_here`; an SPSC receiver holds nothing for a
/// leaked guard and adopts nothing: see [`Held`](super::Held)). Then
/// - a record it knows is ready is taken at once: that take looks at nothing the sender
///   writes, so it cannot find the ring empty and tells the coalescing nothing (nor does the
///   general way's take of such a record);
/// - otherwise the take looks [`short_looks`] times before it goes the general way.
///
/// A function of the fields rather than a method, so that the caller can still read the
/// endpoint's other fields while it holds the consumer.
#[inline(always)]
pub(super) fn plain_spsc<'a>(
    cons: &'a mut Cons,
    base: &Base,
) -> Option<&'a mut ring::SpscConsumer> {
    if !base.plain_here() {
        return None;
    }
    // SAFETY: plain (`plain_here`, just above).
    Some(unsafe { cons.spsc_of_plain() })
}

/// How many looks a take on the short way makes when the consumer knows of no ready record
/// (0: none, it goes the general way at once):
/// - the call does not wait: one look, whose answer is the general way's;
/// - or the call waits, the sender is not streaming (no pause due before the look: see
///   [`RecvCore::before_take`]) and this endpoint's waits spin: up to [`SHORT_LOOKS`] looks at
///   the sender's cursor in a tight loop, which is how the general way's wait starts (it
///   spins), without its setting out: a record that comes within them is taken at once. A
///   busy round trip's answer comes that soon; the general way, its checks and its clock
///   reads once cost a round trip half again the bare ping-pong's.
#[inline(always)]
pub(super) fn short_looks(wait: Wait, coalesce: &Coalesce, base: &Base) -> u32 {
    if matches!(wait, Wait::No) {
        1
    } else if !coalesce.streaming() && base.spin.spins() {
        SHORT_LOOKS
    } else {
        0
    }
}

impl RecvCore {
    /// After the short way took a record: what its looks tell the coalescing, as the
    /// general way's would. A take that looked at once (`left == tries`) reports how many
    /// `more` records the look showed; one that found the ring empty first ends the
    /// streaming state, as the general way's empty look does.
    #[inline(always)]
    pub(super) fn after_short_look(&mut self, tries: u32, left: u32, more: u64) {
        if tries == 1 {
            return; // a try: no look counted
        }
        if left == tries {
            self.coalesce.after_look(more);
        } else {
            self.coalesce.idle();
        }
    }

    /// A take that may not wait found the SPSC ring empty: whether that is the answer now
    /// (`Empty`), as the general way's drain rule has it when the senders have not left (an
    /// SPSC ring has nothing to pass over after an empty look). Otherwise the general way
    /// looks once more and reports the disconnection.
    #[inline(always)]
    pub(super) fn empty_now(&mut self, wait: Wait) -> bool {
        if matches!(wait, Wait::No) && !self.base.peers_left(&self.base.seg, Role::Sender) {
            self.coalesce.idle();
            return true;
        }
        false
    }
}
