//! Read coalescing: a receiver that keeps up with a streaming sender looks at the sender's
//! cursor a little later, so that it takes several records per look instead of one.
//!
//! Why: a receiver that has caught up with its sender looks at the sender's cursor (or the
//! next slot) over and over. Every look pulls that cache line to the receiver's core, and the
//! sender's next store to it must take the line back: one cross-core transfer per record,
//! which the sender waits for (its stores queue behind it). Measured across processes on a
//! 2-vCPU VM, that transfer — not the code of either side — set the rate of a stream of small
//! records. So when the receiver sees the sender streaming — a look at the cursor showed more
//! than the one record it took — its next blocking receive that has to look again first
//! pauses for about [`PAUSE`], during which the sender writes undisturbed; the look after the
//! pause finds many records, which are then taken from the receiver's cached copy of the
//! cursor without touching the sender's lines.
//!
//! A round trip (one record in flight, answered before the next is sent) never shows more
//! than one record per look, so it never pauses: the latency path is untouched. Only blocking
//! receives of an SPSC ring with room for [`MIN_CAPACITY`] records pause (a `try_recv` never
//! does), never longer than one pause per look, and not at all when the endpoint's spin window
//! is zero. A look that finds nothing ends the streaming state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a streaming receiver pauses at first before it looks at the sender's cursor
/// again: about what a sender needs to write a few cache lines of small records. The pause
/// then adapts (see [`Coalesce::after_look`]) between this and [`MAX_PAUSE`].
pub(crate) const PAUSE: Duration = Duration::from_nanos(200);

/// The longest pause: short against any wait a caller could notice.
pub(crate) const MAX_PAUSE: Duration = Duration::from_micros(4);

/// A look after a pause should find at least this many records (so the cost of the line
/// transfer it causes is spread over them); fewer lengthen the next pause.
const FEW: u64 = 8;

/// A look that finds more than this many records waited longer than it needed to: the next
/// pause is shorter.
const MANY: u64 = 32;

/// The smallest ring that coalesces: the sender must have room to keep writing while the
/// receiver pauses.
pub(crate) const MIN_CAPACITY: u64 = 64;

/// One receiver's coalescing state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Coalesce {
    /// This endpoint may pause (SPSC, room for [`MIN_CAPACITY`], a spin window).
    allowed: bool,
    /// The last look at the sender's cursor showed more than the record taken.
    streaming: bool,
    /// `spin_loop` hints in the next pause, from `min` to `max` (calibrated once per process,
    /// see [`pause_spins`]).
    spins: u32,
    min: u32,
    max: u32,
    /// A quarter of the ring: a look that finds this many waited too long, whatever
    /// [`MANY`] says.
    quarter: u64,
}

impl Coalesce {
    /// The state of a new receiver: `allowed` when it may pause at all; `capacity`, its
    /// ring's.
    pub(crate) fn new(allowed: bool, capacity: u64) -> Coalesce {
        let (min, max) = if allowed { pause_spins() } else { (0, 0) };
        Coalesce {
            allowed,
            streaming: false,
            spins: min,
            min,
            max,
            quarter: capacity / 4,
        }
    }

    /// Before a blocking take that must look at the sender's cursor (nothing is known to be
    /// ready): pauses if the sender is streaming.
    #[inline(always)]
    pub(crate) fn before_look(&self) {
        if self.streaming {
            for _ in 0..self.spins {
                std::hint::spin_loop();
            }
        }
    }

    /// After a take that looked at the sender's cursor: `more` records beyond the one taken
    /// were ready. None: not streaming (a round trip always looks like this). After a pause,
    /// too few lengthen the next pause, too many shorten it.
    #[inline(always)]
    pub(crate) fn after_look(&mut self, more: u64) {
        if !self.allowed {
            return;
        }
        if self.streaming {
            let found = more + 1;
            if found < FEW {
                self.spins = self.spins.saturating_mul(2).min(self.max);
            } else if found > MANY || found > self.quarter {
                self.spins = (self.spins / 2).max(self.min);
            }
        }
        self.streaming = more > 0;
    }

    /// Whether the last look showed the sender streaming (the next look pauses first).
    #[inline(always)]
    pub(crate) fn streaming(&self) -> bool {
        self.streaming
    }

    /// A look found nothing: the stream paused.
    #[inline(always)]
    pub(crate) fn idle(&mut self) {
        self.streaming = false;
    }
}

/// `spin_loop` hints that take about [`PAUSE`] and [`MAX_PAUSE`] on this machine (a pause
/// instruction costs from a few to over a hundred cycles, depending on the CPU): measured once
/// per process, the fastest of a few tries (a try that was preempted only reads longer).
///
/// Cached in an atomic, not a `OnceLock`: two threads that measure at once both store a
/// good answer, and a child forked while another thread was measuring does not wait for a
/// measurement that will never finish in it.
fn pause_spins() -> (u32, u32) {
    static SPINS: AtomicU64 = AtomicU64::new(0);
    // Relaxed (here and below): a cache of one value packed in the one word; nothing else is
    // published through it.
    let cached = SPINS.load(Ordering::Relaxed);
    if cached != 0 {
        return ((cached >> 32) as u32, cached as u32);
    }
    const PROBE: u32 = 1024;
    let fastest = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..PROBE {
                std::hint::spin_loop();
            }
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    let per = fastest.as_nanos().max(1) as f64 / f64::from(PROBE);
    let spins = |d: Duration| ((d.as_nanos() as f64 / per) as u32).clamp(4, 1 << 16);
    let (min, max) = (spins(PAUSE), spins(MAX_PAUSE));
    SPINS.store(u64::from(min) << 32 | u64::from(max), Ordering::Relaxed);
    (min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_look_that_showed_more_streams() {
        let mut c = Coalesce::new(true, 1024);
        c.after_look(0);
        assert!(!c.streaming);
        c.after_look(1);
        assert!(c.streaming);
        c.idle();
        assert!(!c.streaming);
        let mut never = Coalesce::new(false, 1024);
        never.after_look(5);
        assert!(!never.streaming);
    }

    #[test]
    fn the_pause_adapts_to_what_a_look_finds() {
        let mut c = Coalesce::new(true, 1024);
        let (min, max) = (c.min, c.max);
        c.after_look(1); // streaming starts; no pause was taken yet
        assert_eq!(c.spins, min);
        c.after_look(2); // a pause found 3: too few
        assert_eq!(c.spins, (min * 2).min(max));
        for _ in 0..40 {
            c.after_look(1);
        }
        assert_eq!(c.spins, max);
        c.after_look(100); // too many
        assert_eq!(c.spins, (max / 2).max(min));
        for _ in 0..40 {
            c.after_look(300);
        }
        assert_eq!(c.spins, min);
        // A small ring: a quarter of it is already too many.
        let mut small = Coalesce::new(true, 64);
        small.after_look(1);
        small.after_look(1);
        small.after_look(20);
        assert_eq!(small.spins, min);
    }
}
