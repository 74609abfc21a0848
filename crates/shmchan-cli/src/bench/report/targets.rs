//! The "Targets" section: the goals set for shmchan, judged on this run's figures.

use shmchan::Doorbell;

use super::{lat_of, ns, pct, ratio, tp_of};
use crate::bench::shm::{Style, DOORBELLS};
use crate::bench::workload::LatMode;
use crate::bench::{pairs, spsc, Outcome, Results};

/// The doorbell goal for an idle receiver: at most this share of a core.
const IDLE_GOAL: f64 = 0.01;
/// The doorbell goal for a producer ahead of a slow consumer: at most this share of a core
/// (a producer that spins burns a whole one).
const SLOW_GOAL: f64 = 0.10;
/// The doorbell goal for a blocking round trip: at most this times its bare object's.
const BLOCKING_GOAL: f64 = 1.2;

/// What a target is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// Records per second: against the pipe, and against the fastest kernel mechanism.
    Throughput,
    /// The busy round trip: against the bare cache line, and against the pipe.
    RoundTrip,
    /// What each doorbell costs: a peer that answers at once, both sides asleep, an idle
    /// receiver, a producer parked behind a slow consumer.
    Doorbell,
    /// One record at a time, the channel's own paths against each other and the floor: zero
    /// copy against copying, SPSC against MPMC, byte channels against typed, large records
    /// copied against zero copy, the busy round trip against the bare cache line.
    PerRecord,
}

impl Area {
    /// `throughput`, `round trip`, `doorbell`.
    pub fn name(self) -> &'static str {
        match self {
            Area::Throughput => "throughput",
            Area::RoundTrip => "round trip",
            Area::Doorbell => "doorbell",
            Area::PerRecord => "per record",
        }
    }
}

/// One goal set for shmchan, judged on this run's figures.
pub struct Target {
    /// What it is about.
    pub area: Area,
    /// What is judged, on which contender.
    pub what: String,
    /// The figures it is judged on, by name (the first is the main one).
    pub values: Vec<(&'static str, f64)>,
    /// The figures as the table shows them.
    pub shown: String,
    /// The goal, as the table shows it.
    pub goal: String,
    /// Whether this run met it.
    pub met: bool,
}

/// Every target this run has the figures for, in table order.
pub fn targets(r: &Results) -> Vec<Target> {
    let mut t = Vec::new();
    let futex = spsc(Doorbell::Futex);
    let spin = spsc(Doorbell::Spin);
    let vs_pipe = |name: &str, size: usize| -> Option<f64> {
        Some(tp_of(r, name, size)?.rate() / tp_of(r, "pipe", size)?.rate())
    };
    for (style, goal) in [(Style::Unbatched, 10.0), (Style::Batched, 30.0)] {
        let name = futex.name(style);
        if let Some(v) = vs_pipe(&name, 8) {
            t.push(Target {
                area: Area::Throughput,
                what: format!("{name}, 8 B records: throughput vs pipe"),
                values: vec![("vs_pipe", v)],
                shown: ratio(v),
                goal: format!(">= {goal}×"),
                met: v >= goal,
            });
        }
    }
    // The fastest kernel mechanism at 64 B, measured in this run.
    let fastest =
        r.tp.iter()
            .filter(|row| row.size == 64 && !row.name.starts_with("shmchan"))
            .filter_map(|row| match &row.out {
                Outcome::Ok(c) => Some((row.name.as_str(), c.rate())),
                _ => None,
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((kname, krate)) = fastest {
        for (style, goal) in [(Style::Unbatched, 5.0), (Style::Batched, 20.0)] {
            let name = futex.name(style);
            if let Some(c) = tp_of(r, &name, 64) {
                let v = c.rate() / krate;
                t.push(Target {
                    area: Area::Throughput,
                    what: format!(
                        "{name}, 64 B records: throughput vs the fastest kernel mechanism ({kname})"
                    ),
                    values: vec![("vs_fastest_kernel", v)],
                    shown: ratio(v),
                    goal: format!(">= {goal}×"),
                    met: v >= goal,
                });
            }
        }
    }
    let busy = LatMode::Busy;
    let spin_name = spin.name(Style::Unbatched);
    if let Some(v) = busy_p50_over(r, &spin_name, "bare-cache-line") {
        t.push(Target {
            area: Area::RoundTrip,
            what: format!("{spin_name}: round trip p50 vs bare-cache-line"),
            values: vec![("p50_vs_floor", v)],
            shown: ratio(v),
            goal: "< 2×".into(),
            met: v < 2.0,
        });
    }
    if let Some(v) = busy_p50_over(r, &spin_name, "pipe") {
        t.push(Target {
            area: Area::RoundTrip,
            what: format!("{spin_name} (busy poll): round trip p50 vs pipe"),
            values: vec![("p50_vs_pipe", v)],
            shown: ratio(v),
            goal: "<= 0.05× (1/20)".into(),
            met: v <= 0.05,
        });
    }
    // What each doorbell costs.
    for &bell in DOORBELLS {
        let name = spsc(bell).name(Style::Unbatched);
        if let (Some(s), Some(pipe)) = (lat_of(r, &name, busy), lat_of(r, "pipe", busy)) {
            let better = pipe.p50 as f64 / s.p50 as f64;
            t.push(Target {
                area: Area::Doorbell,
                what: format!("{name}, peer answers at once: round trip p50, pipe's p50 / it"),
                values: vec![("p50_ns", s.p50 as f64), ("pipe_p50_over_it", better)],
                shown: format!("{}, {}", ns(s.p50), ratio(better)),
                goal: "< 1 µs, >= 10×".into(),
                met: s.p50 < 1000 && better >= 10.0,
            });
        }
    }
    for &bell in DOORBELLS {
        let s = spsc(bell);
        let Some(floor) = s.bare_object().map(|b| b.name()) else {
            continue;
        };
        let name = s.name(Style::Unbatched);
        if let (Some(x), Some(f)) = (
            lat_of(r, &name, LatMode::Blocking),
            lat_of(r, floor, LatMode::Blocking),
        ) {
            let p50 = x.p50 as f64 / f.p50 as f64;
            let p99 = x.p99 as f64 / f.p99 as f64;
            t.push(Target {
                area: Area::Doorbell,
                what: format!("{name}, both sides asleep: round trip p50, p99 vs {floor}"),
                values: vec![("p50_vs_bare", p50), ("p99_vs_bare", p99)],
                shown: format!("{}, {}", ratio(p50), ratio(p99)),
                goal: format!("<= {BLOCKING_GOAL}× both"),
                met: p50 <= BLOCKING_GOAL && p99 <= BLOCKING_GOAL,
            });
        }
    }
    for row in &r.idle {
        let Outcome::Ok(s) = &row.out else { continue };
        if row.bell == Doorbell::Spin {
            continue; // the contrast, not a target
        }
        let v = s.cpu_share();
        t.push(Target {
            area: Area::Doorbell,
            what: format!(
                "{}, idle receiver ({:.1} s on an empty channel): CPU share of a core",
                row.name, s.wall
            ),
            values: vec![("cpu_share", v)],
            shown: pct(v),
            goal: format!("<= {}", pct(IDLE_GOAL)),
            met: v <= IDLE_GOAL,
        });
    }
    for row in &r.slow {
        let Outcome::Ok(s) = &row.out else { continue };
        if row.bell == Doorbell::Spin {
            continue;
        }
        let v = s.cpu_share();
        t.push(Target {
            area: Area::Doorbell,
            what: format!(
                "{}, consumer slower than the producer: producer CPU share (parks, not spins)",
                row.name
            ),
            values: vec![("cpu_share", v)],
            shown: pct(v),
            goal: format!("<= {}", pct(SLOW_GOAL)),
            met: v <= SLOW_GOAL,
        });
    }
    per_record(r, &mut t);
    t
}

/// The per-record targets (see [`Area::PerRecord`]): one per pair the run measured, judged on
/// the median of its interleaved rounds (see [`pairs`]).
fn per_record(r: &Results, t: &mut Vec<Target>) {
    for row in &r.pairs {
        let Outcome::Ok(v) = &row.out else { continue };
        let p = &row.pair;
        if p.goal == pairs::Goal::Control {
            continue;
        }
        let m = pairs::median(v);
        let (lo, hi) = (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max),
        );
        t.push(Target {
            area: Area::PerRecord,
            what: p.what(),
            values: vec![(p.key, m), ("lowest", lo), ("highest", hi)],
            shown: format!("{} ({}-{})", ratio(m), ratio(lo), ratio(hi)),
            goal: p.goal.to_string(),
            met: p.goal.met(m),
        });
    }
}

/// The busy round trip p50 of row `name` over that of row `base`, when both were measured.
fn busy_p50_over(r: &Results, name: &str, base: &str) -> Option<f64> {
    let (s, b) = (
        lat_of(r, name, LatMode::Busy)?,
        lat_of(r, base, LatMode::Busy)?,
    );
    Some(s.p50 as f64 / b.p50 as f64)
}
