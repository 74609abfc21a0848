//! The machine-readable report (`--json`): one document, the same figures and ratios as the
//! table.
//!
//! Every row has `"status"`: `"ok"` followed by its figures, `"n/a"` followed by `"reason"`, or
//! `"error"` followed by `"error"` ([`Status`]). Ratios that cannot be formed (a reference row
//! that failed, or was not measured) are `null`, and so is any figure that is not a finite
//! number.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::bench::async_rt::{self, ASYNC_BELLS};
use crate::bench::death::DeathStats;
use crate::bench::shm::{IdleStats, SlowStats, SLOW_PER_RECORD};
use crate::bench::sys::Limits;
use crate::bench::workload::{LatStats, BATCH, BLOCKING_GAP};
use crate::bench::{bytechan, pairs, BellRow, Count, LatRow, Outcome, Results};

use super::targets::{targets, Target};
use super::{byte_ratios, lat_ratios, lat_ratios_in, mbs, tp_vs_pipe};

/// The machine-readable report.
pub fn json(r: &Results) -> String {
    serde_json::to_string_pretty(&Doc::new(r))
        .expect("the report serializes (no map has non-string keys)")
}

/// The document.
#[derive(Serialize)]
struct Doc<'a> {
    /// The document's version: 1.
    shmchan_bench: u32,
    machine: Machine<'a>,
    limits: &'a Limits,
    settings: Settings<'a>,
    loadavg: LoadAvg,
    throughput: Vec<RowDoc<'a, TpHead<'a>, TpFigures>>,
    latency: Vec<RowDoc<'a, LatHead<'a>, LatFigures<'a>>>,
    byte_channels: Vec<RowDoc<'a, ByteHead<'a>, ByteFigures>>,
    async_round_trip: Vec<RowDoc<'a, AsyncHead<'a>, AsyncFigures<'a>>>,
    idle: Vec<RowDoc<'a, BellHead<'a>, IdleFigures>>,
    slow_consumer: Vec<RowDoc<'a, BellHead<'a>, SlowFigures>>,
    death_detection: Vec<RowDoc<'a, BellHead<'a>, DeathFigures>>,
    per_record_pairs: Vec<RowDoc<'a, PairHead, PairFigures<'a>>>,
    targets: Vec<TargetDoc>,
}

/// `"machine"`.
#[derive(Serialize)]
struct Machine<'a> {
    cpu: &'a str,
    kernel: &'a str,
    cpus_online: usize,
    cpus_usable: usize,
    pinned: bool,
    producer_cpu: Option<usize>,
    consumer_cpu: Option<usize>,
}

/// `"settings"`.
#[derive(Serialize)]
struct Settings<'a> {
    duration_s: f64,
    blocking_duration_s: f64,
    idle_duration_s: f64,
    slow_duration_s: f64,
    warmup_s: f64,
    default_spin_window_us: f64,
    slow_consumer_us_per_record: f64,
    quick: bool,
    batch: usize,
    blocking_gap_us: u64,
    sizes: &'a [usize],
    byte_channel_sizes: &'static [usize],
    async_doorbells: Vec<&'static str>,
    wall_s: f64,
}

/// `"loadavg"`: 1, 5 and 15 minute load averages (`null` when unreadable).
#[derive(Serialize)]
struct LoadAvg {
    start: Option<[f64; 3]>,
    end: Option<[f64; 3]>,
}

/// One row: what identifies it (`head`), then how it ended and its figures.
#[derive(Serialize)]
struct RowDoc<'a, H, F> {
    #[serde(flatten)]
    head: H,
    #[serde(flatten)]
    status: Status<'a, F>,
}

/// How a row ended: `"status"`, then its figures, `"reason"` or `"error"`.
#[derive(Serialize)]
#[serde(tag = "status")]
enum Status<'a, F> {
    /// Measured: the figures follow.
    #[serde(rename = "ok")]
    Ok(F),
    /// The mechanism cannot carry the size here.
    #[serde(rename = "n/a")]
    Na { reason: &'a str },
    /// The measurement failed.
    #[serde(rename = "error")]
    Error { error: String },
}

impl<'a, F> Status<'a, F> {
    /// The status of `out`, with the figures `figures` makes of a measured one.
    fn of<T>(out: &'a Outcome<T>, figures: impl FnOnce(&'a T) -> F) -> Status<'a, F> {
        match out {
            Outcome::Ok(t) => Status::Ok(figures(t)),
            Outcome::Na(reason) => Status::Na { reason },
            Outcome::Err(e) => Status::Error {
                error: e.to_string(),
            },
        }
    }
}

/// A throughput cell.
#[derive(Serialize)]
struct TpHead<'a> {
    contender: &'a str,
    size: usize,
}

/// Records counted, their rate, and the ratio a throughput row is shown with.
#[derive(Serialize)]
struct TpFigures {
    records: u64,
    elapsed_s: f64,
    records_per_s: f64,
    mb_per_s: f64,
    vs_pipe: Option<f64>,
}

/// A round-trip row.
#[derive(Serialize)]
struct LatHead<'a> {
    contender: &'a str,
    mode: &'static str,
    size: usize,
    floor: Option<&'a str>,
}

/// The statistics of a round-trip row and its ratios.
#[derive(Serialize)]
struct LatFigures<'a> {
    #[serde(flatten)]
    stats: &'a LatStats,
    p50_vs_pipe: Option<f64>,
    p50_vs_floor: Option<f64>,
    p99_vs_floor: Option<f64>,
}

/// A byte-channel row.
#[derive(Serialize)]
struct ByteHead<'a> {
    contender: &'a str,
    size: usize,
    typed_reference: &'a str,
}

/// A byte-channel row's count and its ratios.
#[derive(Serialize)]
struct ByteFigures {
    records: u64,
    elapsed_s: f64,
    records_per_s: f64,
    mb_per_s: f64,
    vs_typed: Option<f64>,
    vs_unix_socket: Option<f64>,
}

/// A per-record pair: row `a` divided by row `b`.
#[derive(Serialize)]
struct PairHead {
    a: String,
    b: String,
    size: usize,
    ratio: &'static str,
}

/// A pair's ratio per round, and their median.
#[derive(Serialize)]
struct PairFigures<'a> {
    rounds: &'a [f64],
    median: f64,
}

/// An async round-trip row.
#[derive(Serialize)]
struct AsyncHead<'a> {
    contender: &'a str,
    mode: &'static str,
    /// `async`, `blocking` (shmchan's blocking API) or `kernel` (the pipe).
    api: &'static str,
    size: usize,
    blocking_reference: Option<&'a str>,
}

/// The statistics of an async round-trip row and its ratios.
#[derive(Serialize)]
struct AsyncFigures<'a> {
    #[serde(flatten)]
    stats: &'a LatStats,
    p50_vs_pipe: Option<f64>,
    p50_vs_blocking: Option<f64>,
    p99_vs_blocking: Option<f64>,
}

/// An idle-receiver or slow-consumer row.
#[derive(Serialize)]
struct BellHead<'a> {
    contender: &'a str,
    doorbell: &'static str,
}

/// What an idle receiver cost.
#[derive(Serialize)]
struct IdleFigures {
    wait_s: f64,
    cpu_s: f64,
    user_s: f64,
    sys_s: f64,
    cpu_share: f64,
    voluntary_switches: u64,
}

/// What a producer ahead of a slow consumer cost.
#[derive(Serialize)]
struct SlowFigures {
    consumer_records_per_s: f64,
    producer_window_s: f64,
    producer_cpu_s: f64,
    producer_cpu_share: f64,
    producer_voluntary_switches: u64,
    producer_involuntary_switches: u64,
    producer_runqueue_wait_s: Option<f64>,
    producer_runnable_share: Option<f64>,
}

/// Death detection: time from a peer's kill -9 to `Disconnected`, in microseconds.
#[derive(Serialize)]
struct DeathFigures {
    kills: usize,
    recv_p50_us: f64,
    recv_p99_us: f64,
    recv_max_us: f64,
    send_p50_us: f64,
    send_p99_us: f64,
    send_max_us: f64,
}

/// A target and its verdict.
#[derive(Serialize)]
struct TargetDoc {
    /// What the target is about: `throughput`, `round trip`, `doorbell`.
    area: &'static str,
    what: String,
    /// The main figure (the first of `values`).
    value: Option<f64>,
    values: Values,
    shown: String,
    goal: String,
    met: bool,
}

/// A target's figures by name, in order: `{"p50_vs_bare": 1.02, "p99_vs_bare": 0.98}`.
struct Values(Vec<(&'static str, f64)>);

impl Serialize for Values {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl From<Target> for TargetDoc {
    fn from(t: Target) -> TargetDoc {
        TargetDoc {
            area: t.area.name(),
            what: t.what,
            value: t.values.first().map(|v| v.1),
            values: Values(t.values),
            shown: t.shown,
            goal: t.goal,
            met: t.met,
        }
    }
}

fn tp_figures(c: &Count, size: usize, vs_pipe: Option<f64>) -> TpFigures {
    TpFigures {
        records: c.records,
        elapsed_s: c.secs,
        records_per_s: c.rate(),
        mb_per_s: mbs(c, size),
        vs_pipe,
    }
}

fn bell_rows<'a, T, F>(
    rows: &'a [BellRow<T>],
    figures: impl Fn(&T) -> F,
) -> Vec<RowDoc<'a, BellHead<'a>, F>> {
    rows.iter()
        .map(|row| RowDoc {
            head: BellHead {
                contender: &row.name,
                doorbell: row.bell.name(),
            },
            status: Status::of(&row.out, &figures),
        })
        .collect()
}

/// The `api` of an async round-trip row.
fn api(row: &LatRow) -> &'static str {
    if row.name.starts_with(async_rt::PREFIX) {
        "async"
    } else if row.name.starts_with("shmchan") {
        "blocking"
    } else {
        "kernel"
    }
}

impl<'a> Doc<'a> {
    fn new(r: &'a Results) -> Doc<'a> {
        let m = &r.machine;
        let c = &r.cfg;
        Doc {
            shmchan_bench: 1,
            machine: Machine {
                cpu: &m.cpu,
                kernel: &m.kernel,
                cpus_online: m.online,
                cpus_usable: m.allowed.len(),
                pinned: m.pinning.first.is_some(),
                producer_cpu: m.pinning.first,
                consumer_cpu: m.pinning.second,
            },
            limits: &c.limits,
            settings: Settings {
                duration_s: c.len.as_secs_f64(),
                blocking_duration_s: c.blocking.as_secs_f64(),
                idle_duration_s: c.idle.as_secs_f64(),
                slow_duration_s: c.slow.as_secs_f64(),
                warmup_s: c.warmup.as_secs_f64(),
                default_spin_window_us: shmchan::DEFAULT_SPIN.as_secs_f64() * 1e6,
                slow_consumer_us_per_record: SLOW_PER_RECORD.as_secs_f64() * 1e6,
                quick: r.quick,
                batch: BATCH,
                blocking_gap_us: BLOCKING_GAP.as_micros() as u64,
                sizes: &r.sizes,
                byte_channel_sizes: bytechan::SIZES,
                async_doorbells: ASYNC_BELLS.iter().map(|b| b.name()).collect(),
                wall_s: r.wall.as_secs_f64(),
            },
            loadavg: LoadAvg {
                start: r.load[0],
                end: r.load[1],
            },
            throughput: r
                .tp
                .iter()
                .map(|row| RowDoc {
                    head: TpHead {
                        contender: &row.name,
                        size: row.size,
                    },
                    status: Status::of(&row.out, |c| tp_figures(c, row.size, tp_vs_pipe(r, row))),
                })
                .collect(),
            latency: r
                .lat
                .iter()
                .map(|row| RowDoc {
                    head: LatHead {
                        contender: &row.name,
                        mode: row.mode.name(),
                        size: 8,
                        floor: row.floor.as_deref(),
                    },
                    status: Status::of(&row.out, |stats| {
                        let (p, f50, f99) = lat_ratios(r, row);
                        LatFigures {
                            stats,
                            p50_vs_pipe: p,
                            p50_vs_floor: f50,
                            p99_vs_floor: f99,
                        }
                    }),
                })
                .collect(),
            byte_channels: r
                .bytes
                .iter()
                .map(|row| RowDoc {
                    head: ByteHead {
                        contender: &row.name,
                        size: row.size,
                        typed_reference: &row.typed,
                    },
                    status: Status::of(&row.out, |c| {
                        let (t, u) = byte_ratios(r, row);
                        ByteFigures {
                            records: c.records,
                            elapsed_s: c.secs,
                            records_per_s: c.rate(),
                            mb_per_s: mbs(c, row.size),
                            vs_typed: t,
                            vs_unix_socket: u,
                        }
                    }),
                })
                .collect(),
            async_round_trip: r
                .aio
                .iter()
                .map(|row| RowDoc {
                    head: AsyncHead {
                        contender: &row.name,
                        mode: row.mode.name(),
                        api: api(row),
                        size: 8,
                        blocking_reference: row.floor.as_deref(),
                    },
                    status: Status::of(&row.out, |stats| {
                        let (p, f50, f99) = lat_ratios_in(&r.aio, row);
                        AsyncFigures {
                            stats,
                            p50_vs_pipe: p,
                            p50_vs_blocking: f50,
                            p99_vs_blocking: f99,
                        }
                    }),
                })
                .collect(),
            idle: bell_rows(&r.idle, |s: &IdleStats| IdleFigures {
                wait_s: s.wall,
                cpu_s: s.user + s.sys,
                user_s: s.user,
                sys_s: s.sys,
                cpu_share: s.cpu_share(),
                voluntary_switches: s.nvcsw,
            }),
            slow_consumer: bell_rows(&r.slow, |s: &SlowStats| SlowFigures {
                consumer_records_per_s: s.rate,
                producer_window_s: s.wall,
                producer_cpu_s: s.cpu,
                producer_cpu_share: s.cpu_share(),
                producer_voluntary_switches: s.nvcsw,
                producer_involuntary_switches: s.nivcsw,
                producer_runqueue_wait_s: s.runq,
                producer_runnable_share: s.runnable_share(),
            }),
            death_detection: bell_rows(&r.death, |s: &DeathStats| DeathFigures {
                kills: s.recv.n,
                recv_p50_us: s.recv.p50,
                recv_p99_us: s.recv.p99,
                recv_max_us: s.recv.max,
                send_p50_us: s.send.p50,
                send_p99_us: s.send.p99,
                send_max_us: s.send.max,
            }),
            per_record_pairs: r
                .pairs
                .iter()
                .map(|row| RowDoc {
                    head: PairHead {
                        a: row.pair.a.name(),
                        b: row.pair.b.name(),
                        size: row.pair.size,
                        ratio: row.pair.key,
                    },
                    status: Status::of(&row.out, |v: &Vec<f64>| PairFigures {
                        rounds: v,
                        median: pairs::median(v),
                    }),
                })
                .collect(),
            targets: targets(r).into_iter().map(TargetDoc::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::bench::sys::{Machine, Pinning};
    use crate::bench::workload::LatMode;
    use crate::bench::{Cfg, Error, TpRow};

    /// A run of three throughput cells (measured, n/a, failed) and one round trip.
    fn results() -> Results {
        let limits = Limits {
            msgmax: Some(8192),
            msgmnb: None,
            mq_msg_max: Some(10),
            mq_msgsize_max: Some(8192),
        };
        let tp = |name: &str, out| TpRow {
            name: name.into(),
            size: 8,
            out,
        };
        Results {
            machine: Machine {
                cpu: "a \"quoted\" CPU".into(),
                kernel: "6.1".into(),
                online: 1,
                allowed: vec![0],
                pinning: Pinning {
                    first: None,
                    second: None,
                },
            },
            cfg: Cfg::new(Duration::from_millis(30), [None, None], limits),
            sizes: vec![8],
            quick: true,
            tp: vec![
                tp(
                    "pipe",
                    Outcome::Ok(Count {
                        records: 1000,
                        secs: 0.5,
                    }),
                ),
                tp("sysv-msgq", Outcome::Na("8 B > msgmax 4 B".into())),
                tp("fifo", Outcome::Err(Rc::new(Error::NoBareFigures))),
            ],
            lat: vec![LatRow {
                name: "pipe".into(),
                mode: LatMode::Blocking,
                floor: None,
                out: Outcome::Ok(LatStats {
                    samples: 10,
                    p50: 1000,
                    p99: 2000,
                    p999: 3000,
                    max: 4000,
                    mean: 1100.5,
                }),
            }],
            bytes: vec![],
            aio: vec![],
            idle: vec![],
            slow: vec![],
            death: vec![],
            pairs: vec![],
            wall: Duration::from_secs(1),
            load: [Some([0.5, 0.25, 0.125]), None],
        }
    }

    #[test]
    fn rows_have_a_status_then_figures_reason_or_error() {
        let text = json(&results());
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["machine"]["cpu"], "a \"quoted\" CPU");
        assert_eq!(doc["machine"]["producer_cpu"], Value::Null);
        assert_eq!(doc["limits"]["msgmnb"], Value::Null);
        assert_eq!(
            doc["loadavg"]["start"],
            serde_json::json!([0.5, 0.25, 0.125])
        );
        let tp = doc["throughput"].as_array().unwrap();
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        // Keys in document order: the head, the status, then the figures.
        let first = &text[text.find("\"throughput\"").unwrap()..text.find("\"latency\"").unwrap()];
        let mut at = 0;
        for k in [
            "contender",
            "size",
            "status",
            "records",
            "elapsed_s",
            "records_per_s",
            "mb_per_s",
            "vs_pipe",
        ] {
            at += first[at..]
                .find(&format!("\"{k}\""))
                .unwrap_or_else(|| panic!("{k} out of order in {first}"));
        }
        assert_eq!(tp[0]["records_per_s"], 2000.0);
        assert_eq!(tp[0]["vs_pipe"], 1.0);
        // (serde_json's Value sorts keys.)
        assert_eq!(keys(&tp[1]), ["contender", "reason", "size", "status"]);
        assert_eq!(tp[1]["status"], "n/a");
        assert_eq!(keys(&tp[2]), ["contender", "error", "size", "status"]);
        assert_eq!(tp[2]["error"], "no bare figures");
        let lat = &doc["latency"][0];
        assert_eq!(lat["p50_ns"], 1000);
        assert_eq!(lat["mean_ns"], 1100.5);
        // No floor in the blocking section for the pipe: the ratios are null, not missing.
        assert_eq!(lat["p50_vs_floor"], Value::Null);
        assert_eq!(lat["p50_vs_pipe"], 1.0);
        assert!(doc["idle"].as_array().unwrap().is_empty());
    }
}
