//! The per-record pairs: the two rows a per-record target compares, measured together.
//!
//! A per-record target is a ratio of two of shmchan's own rows (zero copy against copying,
//! SPSC against MPMC, a byte channel against the typed one, `send_ref`/`recv_into` against
//! zero copy at 64 KiB, the busy round trip against the bare cache line). Measured once each,
//! minutes apart in their sections, two rows can land in different states of the machine: on
//! a 2-vCPU VM a two-process stream's rate moves by 2-10x with the host's placement of the
//! two vCPUs, from one second to the next, and such a ratio says more about the host than
//! about the two paths. So each pair is measured again here, in [`ROUNDS`] rounds, and the
//! target is judged on the median of the rounds' ratios `A / B`. A throughput round measures
//! both in one pair of processes (fresh for each round), the stream alternating between the
//! two channels in slices of a few milliseconds ([`interleave`]); a round-trip round measures
//! both in one pair of processes, their round trips interleaved one by one (as the blocking
//! section measures a doorbell with its bare object). So the two see the same machine, to the
//! millisecond or to the microsecond. (Measured one after the other, each in processes of its
//! own, the 64 KiB pairs spread over 0.17-4.79x in one run.)
//!
//! A pair is measured when the run measures both of its rows in their sections (a default
//! run measures every pair at every size of the run). At 8 and 64 B the copying row is also
//! measured against itself, a control that no target judges: its spread around 1 is what a
//! pair can tell apart in this run, which decides the ties (zero copy against copying there
//! make the same stores).

use super::bare::Bare;
use super::bytechan::{self, ByteC};
use super::interleave;
use super::plan::{Lat, LatJob, Tp};
use super::report::size_label;
use super::shm::{self, Shm, Style};
use super::workload::LatMode;
use super::{spsc, Cfg, Error};

use shmchan::{Doorbell, RingKind};

/// Rounds per pair: each an `A` and a `B` measurement, giving one ratio.
pub const ROUNDS: usize = 5;

/// The goal for a busy round trip: at most this times the bare cache line's.
pub const ROUND_TRIP_GOAL: f64 = 1.05;
/// The goal for a byte channel of messages of up to 64 bytes: at least this times the typed
/// channel's rate, in the same style.
pub const BYTES_GOAL: f64 = 0.8;
/// The goal for records of 64 KiB: `send_ref`/`recv_into` at least this times zero copy.
pub const LARGE_GOAL: f64 = 0.5;

/// One side of a pair: a row of another section, measured as that section measures it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A throughput row (records/s).
    Tp(Shm, Style),
    /// A byte-channel section row (messages/s).
    Bytes(ByteC),
    /// A busy round trip of a channel (p50, ns).
    Busy(Shm),
    /// A busy round trip of a bare floor (p50, ns).
    Bare(Bare),
}

impl Side {
    /// The row's name in its section.
    pub fn name(self) -> String {
        match self {
            Side::Tp(s, st) => s.name(st),
            Side::Bytes(c) => c.name(),
            Side::Busy(s) => s.name(Style::Unbatched),
            Side::Bare(b) => b.name().to_owned(),
        }
    }
}

/// Which way a pair's ratio has to go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// `A / B` at least this.
    AtLeast(f64),
    /// `A / B` at most this.
    AtMost(f64),
    /// None: a control, a row against itself, whose spread around 1 is the pairs' resolution
    /// in this run (no target judges it).
    Control,
}

impl Goal {
    /// Whether `v` meets it (a control has nothing to meet).
    pub fn met(self, v: f64) -> bool {
        match self {
            Goal::AtLeast(g) => v >= g,
            Goal::AtMost(g) => v <= g,
            Goal::Control => true,
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goal::AtLeast(g) => write!(f, ">= {g}×"),
            Goal::AtMost(g) => write!(f, "<= {g}×"),
            Goal::Control => f.write_str("none (control)"),
        }
    }
}

/// The sizes at which the copying row is also measured against itself (see
/// [`Goal::Control`]): those where zero copy and copying make the same stores, so that their
/// pair is a tie that only the control's spread can read.
pub const CONTROL_SIZES: &[usize] = &[8, 64];

/// Two rows whose ratio a per-record target judges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    /// The row divided.
    pub a: Side,
    /// The row it is divided by.
    pub b: Side,
    /// The record (or message) size; 8 for a round trip.
    pub size: usize,
    /// The ratio's name in the JSON targets.
    pub key: &'static str,
    /// Its goal.
    pub goal: Goal,
}

impl Pair {
    /// Its name in the progress lines: `A / B`, and `(control)` after a control's.
    pub fn name(&self) -> String {
        let control = if self.goal == Goal::Control {
            " (control)"
        } else {
            ""
        };
        format!("{} / {}{control}", self.a.name(), self.b.name())
    }

    /// What its target says, in the Targets table.
    pub fn what(&self) -> String {
        let (a, b) = (self.a.name(), self.b.name());
        let label = size_label(self.size);
        let how = format!("median of {ROUNDS} interleaved pairs");
        match (self.a, self.b) {
            (Side::Busy(_), _) => {
                format!("{a}, peer answers at once: round trip p50 vs {b} ({how})")
            }
            (Side::Bytes(_), _) => format!("{a} vs {b}, {label} messages: throughput ({how})"),
            (Side::Tp(_, Style::Unbatched), Side::Tp(_, Style::ZeroCopy)) => {
                format!("{a} (send_ref/recv_into) vs {b}, {label}: throughput ({how})")
            }
            _ => format!("{a} vs {b}, {label}: throughput ({how})"),
        }
    }

    /// Measures its [`ROUNDS`] rounds: the ratio `A / B` of each.
    pub fn measure(&self, cfg: &Cfg) -> Result<Vec<f64>, Error> {
        (0..ROUNDS)
            .map(|_| match (self.a, self.b) {
                (Side::Busy(s), Side::Bare(b)) => {
                    match shm::latency(s, LatMode::Busy, Some(b), cfg)? {
                        (chan, Some(bare)) => Ok(chan.p50 as f64 / bare.p50 as f64),
                        (_, None) => Err(Error::NoBareFigures),
                    }
                }
                (a, b) => {
                    let (ra, rb) = interleave::rates(a, b, self.size, cfg)?;
                    Ok(ra / rb)
                }
            })
            .collect()
    }
}

/// The median of `v` (not empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Every pair a run could measure: per size of the run, zero copy against copying and SPSC
/// against MPMC (the futex doorbell), and at 64 KiB `send_ref`/`recv_into` against zero copy;
/// per byte-section size of up to 64 B, each byte row against its typed row; the busy round
/// trip against the bare cache line.
pub fn all(sizes: &[usize]) -> Vec<Pair> {
    let futex = spsc(Doorbell::Futex);
    let mpmc = Shm {
        kind: RingKind::Mpmc,
        bell: Doorbell::Futex,
    };
    let (copying, zero_copy) = (
        Side::Tp(futex, Style::Unbatched),
        Side::Tp(futex, Style::ZeroCopy),
    );
    let mut v = Vec::new();
    for &size in sizes {
        let pair = |a, b, key, goal| Pair {
            a,
            b,
            size,
            key,
            goal,
        };
        if CONTROL_SIZES.contains(&size) {
            v.push(pair(copying, copying, "control", Goal::Control));
        }
        v.push(pair(
            zero_copy,
            copying,
            "zero_copy_vs_copying",
            Goal::AtLeast(1.0),
        ));
        v.push(pair(
            copying,
            Side::Tp(mpmc, Style::Unbatched),
            "spsc_vs_mpmc",
            Goal::AtLeast(1.0),
        ));
        if size == 65536 {
            v.push(pair(
                copying,
                zero_copy,
                "copying_vs_zero_copy",
                Goal::AtLeast(LARGE_GOAL),
            ));
        }
    }
    for &size in bytechan::SIZES.iter().filter(|&&s| s <= 64) {
        for &c in bytechan::ALL.iter().filter(|c| c.own()) {
            v.push(Pair {
                a: Side::Bytes(c),
                b: Side::Bytes(c.typed_ref()),
                size,
                key: "vs_typed",
                goal: Goal::AtLeast(BYTES_GOAL),
            });
        }
    }
    v.push(Pair {
        a: Side::Busy(futex),
        b: Side::Bare(Bare::CacheLine),
        size: 8,
        key: "p50_vs_floor",
        goal: Goal::AtMost(ROUND_TRIP_GOAL),
    });
    v
}

/// The pairs whose two rows the run measures in their sections: `tp` (the throughput plan),
/// `busy` (the busy round-trip plan), `bytes` (the byte-channel plan).
pub fn plan(
    sizes: &[usize],
    tp: &[(usize, Tp)],
    busy: &[LatJob],
    bytes: &[(usize, ByteC)],
) -> Vec<Pair> {
    let planned = |side: Side, size: usize| match side {
        Side::Tp(s, st) => tp.contains(&(size, Tp::Shm(s, st))),
        Side::Bytes(c) => bytes.contains(&(size, c)),
        Side::Busy(s) => busy.iter().any(|j| j.rows().contains(&Lat::Shm(s))),
        Side::Bare(b) => busy.iter().any(|j| j.rows().contains(&Lat::Bare(b))),
    };
    all(sizes)
        .into_iter()
        .filter(|p| planned(p.a, p.size) && planned(p.b, p.size))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn every_pair_of_a_default_run_at_each_size() {
        let v = all(&[8, 64, 65536]);
        let at =
            |size: usize, key: &str| v.iter().filter(|p| p.size == size && p.key == key).count();
        assert_eq!(at(8, "zero_copy_vs_copying"), 1);
        assert_eq!(
            (at(8, "control"), at(64, "control"), at(65536, "control")),
            (1, 1, 0)
        );
        assert!(Goal::Control.met(0.5) && Goal::Control.to_string().contains("control"));
        assert_eq!(at(65536, "spsc_vs_mpmc"), 1);
        assert_eq!(at(65536, "copying_vs_zero_copy"), 1);
        assert_eq!(at(8, "copying_vs_zero_copy"), 0);
        assert_eq!(at(64, "vs_typed"), 2);
        assert_eq!(at(8, "p50_vs_floor"), 1);
        assert!(Goal::AtMost(1.05).met(1.0) && !Goal::AtMost(1.05).met(1.1));
        assert!(Goal::AtLeast(0.8).met(0.8) && !Goal::AtLeast(0.8).met(0.7));
    }
}
