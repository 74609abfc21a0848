//! The bounded wait of an MPMC try operation for a live peer's claim (see the module docs of
//! [`mpmc`](super), "Waiting out a claim"), and what each handle keeps for its claims. The
//! stamp protocol that uses it is in `claim`.

use crate::raw::Core;
use crate::sync::spin_loop;

/// Pause hints of [`Patience`], one between two looks at the slot, before it starts yielding:
/// a few microseconds, which covers a claimer that is running (it publishes within tens of
/// nanoseconds; looking after every hint sees it at once, as the blocking layer's own spin
/// does). Under loom a pause is one yield (see `QUIET_STEPS`).
#[cfg_attr(loom, allow(dead_code))]
const SPIN_STEPS: u32 = 128;

/// How long a try operation waits out a live peer's claim (see the module docs of
/// [`mpmc`](super), "Waiting out a claim"), when built with `std`: 10 ms from its first
/// pause. Long enough for a claimer that was preempted to run again on a loaded machine (the
/// yields hand it this CPU; with 4 threads hammering a channel on 2 busy cores, 1 ms was not
/// always enough); short enough that a claimer that will not finish soon — stopped, dead and
/// not yet settled, or holding a grant — costs a try operation no more than that, once per
/// handle and claim.
#[cfg(all(any(feature = "std", test), not(loom)))]
#[cfg_attr(any(miri, fuzzing), allow(dead_code))]
pub const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// Without `std` (no clock, no yield), and under Miri (whose clock advances with the
/// instructions it interprets), the bound is a count: after the spin steps, this many more
/// steps of 64 pause hints each (about 16,500 hints in all: tens of microseconds to a
/// millisecond, depending on the CPU's pause).
#[cfg(all(any(miri, not(any(feature = "std", test))), not(loom), not(fuzzing)))]
const QUIET_STEPS: u32 = 256;

/// Under a fuzzer (`cfg(fuzzing)`, set by cargo-fuzz) the harness meets claims of its own
/// grants, which no wait can see finish: the spin steps alone, so that a run tests inputs, not
/// the clock (the wait's bound is checked by the unit and loom tests).
#[cfg(all(fuzzing, not(loom)))]
const QUIET_STEPS: u32 = 0;

/// Under loom a pause is a yield to the other threads, after which the claimer runs (a yield
/// is not a preemption); one keeps the models small.
#[cfg(loom)]
const QUIET_STEPS: u32 = 1;

/// What each MPMC handle keeps for its claims (nothing another handle needs).
pub(super) struct Local {
    /// The last position whose claim outlasted a whole wait, plus one (0: none); see
    /// [`Patience`].
    pub(super) stalled: u64,
    /// Positions below this are within the capacity (the head last seen plus the capacity),
    /// so a producer claims them without loading the head. `u64::MAX` when the capacity is the
    /// number of slots: a free stamp then proves the room.
    pub(super) room_until: u64,
    /// Whether `Empty`/`Full` are linearizable: a try that finds its slot not ready looks at
    /// the other side's cursor and waits out a live claim (see "Waiting out a claim"). When
    /// not, it answers from the slot alone: the poll of a caller that tries again anyway.
    pub(super) linear: bool,
}

impl Local {
    pub(super) fn new(core: &Core) -> Local {
        Local {
            stalled: 0,
            linear: true,
            room_until: if core.capacity == core.lap {
                u64::MAX
            } else {
                0
            },
        }
    }
}

/// The bounded wait of a try operation for a live peer's claim: [`SPIN_STEPS`] pause hints,
/// one between two looks at the slot, then yields (with `std`) until [`CLAIM_WAIT`] has
/// passed.
///
/// `stalled` is the handle's memory of the last position whose claim outlasted a whole wait
/// (plus one; 0 for none): a handle waits for a given claim once, and later calls that meet
/// the same claim report `Full`/`Empty` at once, so a claimer that will not finish soon (a
/// dead one not yet settled, a stopped one, a grant held) costs each handle one wait, not one
/// per call.
pub(super) struct Patience<'a> {
    step: u32,
    stalled: &'a mut Local,
    #[cfg(all(any(feature = "std", test), not(loom), not(miri), not(fuzzing)))]
    start: Option<std::time::Instant>,
}

impl<'a> Patience<'a> {
    #[inline(always)]
    pub(super) fn new(stalled: &'a mut Local) -> Patience<'a> {
        Patience {
            step: 0,
            stalled,
            #[cfg(all(any(feature = "std", test), not(loom), not(miri), not(fuzzing)))]
            start: None,
        }
    }

    /// Pauses once before the caller looks again at the slot of position `pos`, which a live
    /// peer has claimed; `false` (without pausing) once the bound has passed, or at once if
    /// this handle already waited a whole bound for that claim: the caller then reports
    /// `Full`/`Empty`.
    #[cold]
    #[inline(never)]
    pub(super) fn pause(&mut self, pos: u64) -> bool {
        if self.stalled.stalled == pos.wrapping_add(1) {
            return false;
        }
        let more = self.pause_once();
        if !more {
            self.stalled.stalled = pos.wrapping_add(1);
        }
        more
    }

    /// A new wait (the claim waited for finished; the caller meets another): the bound
    /// starts again. Each wait is for a different position, so this cannot go on for ever
    /// within one call (the cursors bound how many claims there can be).
    pub(super) fn reset(&mut self) {
        self.step = 0;
        #[cfg(all(any(feature = "std", test), not(loom), not(miri), not(fuzzing)))]
        {
            self.start = None;
        }
    }

    /// The handle's state, for the tries between pauses.
    pub(super) fn local(&mut self) -> &mut Local {
        self.stalled
    }

    fn pause_once(&mut self) -> bool {
        #[cfg(loom)]
        {
            if self.step >= QUIET_STEPS {
                return false;
            }
            self.step += 1;
            spin_loop();
            true
        }
        #[cfg(not(loom))]
        {
            if self.step < SPIN_STEPS {
                spin_loop();
                self.step += 1;
                return true;
            }
            #[cfg(all(any(feature = "std", test), not(miri), not(fuzzing)))]
            {
                let now = std::time::Instant::now();
                let start = *self.start.get_or_insert(now);
                if now.duration_since(start) >= CLAIM_WAIT {
                    return false;
                }
                std::thread::yield_now();
                true
            }
            #[cfg(any(miri, fuzzing, not(any(feature = "std", test))))]
            {
                if self.step >= SPIN_STEPS + QUIET_STEPS {
                    return false;
                }
                for _ in 0..64 {
                    spin_loop();
                }
                self.step += 1;
                true
            }
        }
    }
}
