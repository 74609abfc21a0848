//! The table (stdout), the progress lines (stderr) and the JSON document (`--json`).
//!
//! Ratios: throughput is divided by the pipe's at the same record size (higher is better);
//! round trips are divided by the pipe's and by the row's floor (lower is better). In the
//! byte-channel section, throughput is divided by the typed channel's in the same style and by
//! the Unix socket's; in the async section, round trips are divided by the pipe's and an async
//! row by the blocking API on the same doorbell. The "Targets" section reads the figures the
//! issues ask for straight out of the same results.

use std::fmt::Write as _;

use super::shm::{IdleStats, SlowStats, Style, DOORBELLS, SLOW_PER_RECORD};
use super::workload::{LatMode, LatStats, BATCH, BLOCKING_GAP};
use super::{bytechan, spsc, BellRow, ByteRow, Count, LatRow, Outcome, Results, TpRow};
use shmchan::Doorbell;

/// `8 B`, `1 KiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// 3 significant digits with k/M/G.
fn si(x: f64) -> String {
    let (v, unit) = if x >= 1e9 {
        (x / 1e9, " G")
    } else if x >= 1e6 {
        (x / 1e6, " M")
    } else if x >= 1e3 {
        (x / 1e3, " k")
    } else {
        (x, "")
    };
    format!("{}{unit}", sig3(v))
}

fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn mbs(c: &Count, size: usize) -> f64 {
    c.rate() * size as f64 / 1e6
}

/// `153 ns`, `1.25 µs`, `12.4 ms`.
fn ns(v: u64) -> String {
    let f = v as f64;
    if f < 1e3 {
        format!("{v} ns")
    } else if f < 1e6 {
        format!("{} µs", sig3(f / 1e3))
    } else if f < 1e9 {
        format!("{} ms", sig3(f / 1e6))
    } else {
        format!("{} s", sig3(f / 1e9))
    }
}

fn ratio(r: f64) -> String {
    if !r.is_finite() {
        "—".to_owned()
    } else if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}

/// The progress line's result part for a throughput cell.
pub fn progress_tp(o: &Outcome<Count>, size: usize) -> String {
    match o {
        Outcome::Ok(c) => format!(
            "{} rec/s  {} MB/s  ({} records in {:.3} s)",
            si(c.rate()),
            sig3(mbs(c, size)),
            c.records,
            c.secs
        ),
        Outcome::Na(why) => format!("n/a ({why})"),
        Outcome::Err(e) => format!("error: {e}"),
    }
}

/// The progress line's result part for a round-trip row.
pub fn progress_lat(o: &Outcome<LatStats>) -> String {
    match o {
        Outcome::Ok(s) => format!(
            "p50 {}  p99 {}  p99.9 {}  max {}  ({} round trips)",
            ns(s.p50),
            ns(s.p99),
            ns(s.p999),
            ns(s.max),
            s.samples
        ),
        Outcome::Na(why) => format!("n/a ({why})"),
        Outcome::Err(e) => format!("error: {e}"),
    }
}

/// The progress line's result part for an idle receiver.
pub fn progress_idle(o: &Outcome<IdleStats>) -> String {
    match o {
        Outcome::Ok(s) => format!(
            "CPU {} over {:.2} s ({} of a core), {:.0} wake-ups/s",
            secs(s.user + s.sys),
            s.wall,
            pct(s.cpu_share()),
            s.nvcsw as f64 / s.wall
        ),
        Outcome::Na(why) => format!("n/a ({why})"),
        Outcome::Err(e) => format!("error: {e}"),
    }
}

/// The progress line's result part for a slow-consumer measurement.
pub fn progress_slow(o: &Outcome<SlowStats>) -> String {
    match o {
        Outcome::Ok(s) => format!(
            "consumer {} rec/s; producer CPU {} of a core (runnable {}), {:.0} sleeps/s",
            si(s.rate),
            pct(s.cpu_share()),
            s.runnable_share().map_or_else(|| "?".to_owned(), pct),
            s.nvcsw as f64 / s.wall
        ),
        Outcome::Na(why) => format!("n/a ({why})"),
        Outcome::Err(e) => format!("error: {e}"),
    }
}

/// `0.012%`, `4.5%`, `99%`.
fn pct(share: f64) -> String {
    let p = share * 100.0;
    if !p.is_finite() {
        "—".to_owned()
    } else if p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else if p >= 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.3}%")
    }
}

/// CPU seconds: `12.3 ms`, `850 µs`.
fn secs(s: f64) -> String {
    ns((s * 1e9).round().max(0.0) as u64)
}

fn tp_of<'a>(r: &'a Results, name: &str, size: usize) -> Option<&'a Count> {
    r.tp.iter()
        .find(|t| t.name == name && t.size == size)
        .and_then(|t| match &t.out {
            Outcome::Ok(c) => Some(c),
            _ => None,
        })
}

fn lat_of<'a>(r: &'a Results, name: &str, mode: LatMode) -> Option<&'a LatStats> {
    lat_in(&r.lat, name, mode)
}

fn lat_in<'a>(rows: &'a [LatRow], name: &str, mode: LatMode) -> Option<&'a LatStats> {
    rows.iter()
        .find(|t| t.name == name && t.mode == mode)
        .and_then(|t| match &t.out {
            Outcome::Ok(s) => Some(s),
            _ => None,
        })
}

fn bell_of<T>(rows: &[BellRow<T>], bell: Doorbell) -> Option<&T> {
    rows.iter()
        .find(|t| t.bell == bell)
        .and_then(|t| match &t.out {
            Outcome::Ok(s) => Some(s),
            _ => None,
        })
}

fn tp_vs_pipe(r: &Results, row: &TpRow) -> Option<f64> {
    match &row.out {
        Outcome::Ok(c) => tp_of(r, "pipe", row.size).map(|p| c.rate() / p.rate()),
        _ => None,
    }
}

/// `(p50 / pipe's p50, p50 / floor's p50, p99 / floor's p99)`.
fn lat_ratios(r: &Results, row: &LatRow) -> (Option<f64>, Option<f64>, Option<f64>) {
    lat_ratios_in(&r.lat, row)
}

/// [`lat_ratios`] within one section's rows (the pipe and the floor are looked up there).
fn lat_ratios_in(rows: &[LatRow], row: &LatRow) -> (Option<f64>, Option<f64>, Option<f64>) {
    let Outcome::Ok(s) = &row.out else {
        return (None, None, None);
    };
    let pipe = lat_in(rows, "pipe", row.mode).map(|p| s.p50 as f64 / p.p50 as f64);
    let floor = row.floor.as_deref().and_then(|f| lat_in(rows, f, row.mode));
    (
        pipe,
        floor.map(|f| s.p50 as f64 / f.p50 as f64),
        floor.map(|f| s.p99 as f64 / f.p99 as f64),
    )
}

fn byte_rate(r: &Results, name: &str, size: usize) -> Option<f64> {
    r.bytes
        .iter()
        .find(|t| t.name == name && t.size == size)
        .and_then(|t| match &t.out {
            Outcome::Ok(c) => Some(c.rate()),
            _ => None,
        })
}

/// `(÷ the typed channel's rate in the same style, ÷ the Unix socket's)`.
fn byte_ratios(r: &Results, row: &ByteRow) -> (Option<f64>, Option<f64>) {
    let Outcome::Ok(c) = &row.out else {
        return (None, None);
    };
    let unix = bytechan::ByteC::UnixSocket.name();
    (
        byte_rate(r, &row.typed, row.size).map(|t| c.rate() / t),
        byte_rate(r, &unix, row.size).map(|u| c.rate() / u),
    )
}

/// The goal of issue 6 for an idle receiver: at most this share of a core.
const IDLE_GOAL: f64 = 0.01;
/// The goal of issue 6 for a producer ahead of a slow consumer: at most this share of a core
/// (a producer that spins burns a whole one).
const SLOW_GOAL: f64 = 0.10;
/// The goal of issue 6 for a blocking round trip: at most this times its bare object's.
const BLOCKING_GOAL: f64 = 1.2;

/// One check the issues ask for, evaluated on this run's figures.
struct Target {
    issue: u32,
    what: String,
    /// The figures it is judged on, by name (the first is the main one).
    values: Vec<(&'static str, f64)>,
    shown: String,
    goal: String,
    met: bool,
}

fn targets(r: &Results) -> Vec<Target> {
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
                issue: 5,
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
                    issue: 8,
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
    if let (Some(s), Some(line)) = (
        lat_of(r, &spin_name, busy),
        lat_of(r, "bare-cache-line", busy),
    ) {
        let v = s.p50 as f64 / line.p50 as f64;
        t.push(Target {
            issue: 5,
            what: format!("{spin_name}: round trip p50 vs bare-cache-line"),
            values: vec![("p50_vs_floor", v)],
            shown: ratio(v),
            goal: "< 2×".into(),
            met: v < 2.0,
        });
    }
    if let (Some(s), Some(pipe)) = (lat_of(r, &spin_name, busy), lat_of(r, "pipe", busy)) {
        let v = s.p50 as f64 / pipe.p50 as f64;
        t.push(Target {
            issue: 8,
            what: format!("{spin_name} (busy poll): round trip p50 vs pipe"),
            values: vec![("p50_vs_pipe", v)],
            shown: ratio(v),
            goal: "<= 0.05× (1/20)".into(),
            met: v <= 0.05,
        });
    }
    // Issue 6, per doorbell.
    for &bell in DOORBELLS {
        let name = spsc(bell).name(Style::Unbatched);
        if let (Some(s), Some(pipe)) = (lat_of(r, &name, busy), lat_of(r, "pipe", busy)) {
            let better = pipe.p50 as f64 / s.p50 as f64;
            t.push(Target {
                issue: 6,
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
                issue: 6,
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
            issue: 6,
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
            issue: 6,
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
    t
}

/// Left-aligned name cells as wide as the longest name (at least the header's).
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max("contender".len())
}

/// The human-readable report.
pub fn table(r: &Results) -> String {
    let mut o = String::new();
    let m = &r.machine;
    let _ = writeln!(o, "shmchan bench");
    let _ = writeln!(o, "  CPU:      {}", m.cpu);
    let _ = writeln!(o, "  kernel:   Linux {}", m.kernel);
    let _ = writeln!(
        o,
        "  CPUs:     {} online, {} usable; {}",
        m.online,
        m.allowed.len(),
        m.pinning.describe(m)
    );
    let _ = writeln!(o, "  limits:   {}", r.cfg.limits.describe());
    let la = |l: Option<[f64; 3]>| {
        l.map_or_else(
            || "unreadable".to_owned(),
            |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"),
        )
    };
    let _ = writeln!(
        o,
        "  load:     {} at the start, {} at the end (1/5/15 min; anything else running competes \
         for the same CPUs)",
        la(r.load[0]),
        la(r.load[1])
    );
    let c = &r.cfg;
    let _ = writeln!(
        o,
        "  windows:  {:.2} s throughput and busy round trip, {:.2} s blocking round trip, {:.2} s \
         idle, {:.2} s slow consumer; each after a {:.2} s warm-up{}; whole run {:.1} s",
        c.len.as_secs_f64(),
        c.blocking.as_secs_f64(),
        c.idle.as_secs_f64(),
        c.slow.as_secs_f64(),
        c.warmup.as_secs_f64(),
        if r.quick { " (--quick)" } else { "" },
        r.wall.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "  shmchan:  anonymous MAP_SHARED rings of min({}, max({}, {} KiB / record size)) records; \
         batches of {BATCH}; default spin window {} µs",
        super::shm::MAX_CAPACITY,
        super::shm::MIN_CAPACITY,
        super::shm::RING_BYTES / 1024,
        shmchan::DEFAULT_SPIN.as_micros()
    );
    let _ = writeln!(
        o,
        "  work:     the producer writes every word of each record; the consumer checks every word \
         and counts (MB = 10^6 bytes)"
    );
    let tw = name_width(r.tp.iter().map(|t| t.name.as_str()));
    for &size in &r.sizes {
        let rows: Vec<&TpRow> = r.tp.iter().filter(|t| t.size == size).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Throughput, {} records (consumer's count / elapsed; × pipe = records/s ÷ the pipe's)",
            size_label(size)
        );
        let _ = writeln!(
            o,
            "  {:<tw$} {:>12} {:>10} {:>9}",
            "contender", "records/s", "MB/s", "× pipe"
        );
        for row in rows {
            match &row.out {
                Outcome::Ok(c) => {
                    let _ = writeln!(
                        o,
                        "  {:<tw$} {:>12} {:>10} {:>9}",
                        row.name,
                        si(c.rate()),
                        sig3(mbs(c, size)),
                        tp_vs_pipe(r, row).map_or_else(|| "—".to_owned(), ratio)
                    );
                }
                Outcome::Na(why) => {
                    let _ = writeln!(o, "  {:<tw$} n/a ({why})", row.name);
                }
                Outcome::Err(e) => {
                    let _ = writeln!(o, "  {:<tw$} error: {e}", row.name);
                }
            }
        }
    }
    let lw = name_width(r.lat.iter().map(|t| t.name.as_str()));
    for mode in [LatMode::Busy, LatMode::Blocking] {
        let rows: Vec<&LatRow> = r.lat.iter().filter(|t| t.mode == mode).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        match mode {
            LatMode::Busy => {
                let _ = writeln!(
                    o,
                    "Round trip, 8 B ping-pong, the peer answers at once (default spin window, \
                     then park; HDR histogram; floor = bare-cache-line)"
                );
            }
            LatMode::Blocking => {
                let _ = writeln!(
                    o,
                    "Round trip, 8 B ping-pong, both sides asleep before every message (each side \
                     waits {} µs before it sends, the echoer's wait is subtracted; zero spin \
                     window; each doorbell interleaved message by message with its bare kernel \
                     object, the floor, in the same two processes)",
                    BLOCKING_GAP.as_micros()
                );
            }
        }
        let _ = writeln!(
            o,
            "  {:<lw$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "contender",
            "p50",
            "p99",
            "p99.9",
            "max",
            "samples",
            "p50/pipe",
            "p50/floor",
            "p99/floor"
        );
        for row in rows {
            match &row.out {
                Outcome::Ok(s) => {
                    let (p, f50, f99) = lat_ratios(r, row);
                    let show = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), ratio);
                    let _ = writeln!(
                        o,
                        "  {:<lw$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                        row.name,
                        ns(s.p50),
                        ns(s.p99),
                        ns(s.p999),
                        ns(s.max),
                        si(s.samples as f64),
                        show(p),
                        show(f50),
                        show(f99)
                    );
                }
                Outcome::Na(why) => {
                    let _ = writeln!(o, "  {:<lw$} n/a ({why})", row.name);
                }
                Outcome::Err(e) => {
                    let _ = writeln!(o, "  {:<lw$} error: {e}", row.name);
                }
            }
        }
    }
    bytes_table(&mut o, r);
    async_table(&mut o, r);
    if !r.idle.is_empty() {
        let w = name_width(r.idle.iter().map(|t| t.name.as_str()));
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Idle receiver: recv on an empty SPSC channel (default spin window) until a record \
             comes {:.2} s later; every doorbell at once, one process each; CPU = \
             getrusage(RUSAGE_SELF) of that process over the wait",
            r.cfg.idle.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "contender", "waited", "CPU", "of a core", "user", "system", "wake-ups/s"
        );
        for row in &r.idle {
            match &row.out {
                Outcome::Ok(s) => {
                    let _ = writeln!(
                        o,
                        "  {:<w$} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}",
                        row.name,
                        format!("{:.2} s", s.wall),
                        secs(s.user + s.sys),
                        pct(s.cpu_share()),
                        secs(s.user),
                        secs(s.sys),
                        format!("{:.0}", s.nvcsw as f64 / s.wall)
                    );
                }
                Outcome::Na(why) => {
                    let _ = writeln!(o, "  {:<w$} n/a ({why})", row.name);
                }
                Outcome::Err(e) => {
                    let _ = writeln!(o, "  {:<w$} error: {e}", row.name);
                }
            }
        }
    }
    if !r.slow.is_empty() {
        let w = name_width(r.slow.iter().map(|t| t.name.as_str()));
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Slow consumer: the producer sends 8 B records as fast as it can into a {}-record SPSC \
             ring (default spin window); the consumer spends {} µs per record; over {:.2} s, the \
             producer's CPU time (getrusage), and its CPU time plus the time it waited for a CPU \
             (runnable: schedstat), per second",
            super::shm::capacity_for(8),
            SLOW_PER_RECORD.as_micros(),
            r.cfg.slow.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>14} {:>13} {:>10} {:>10} {:>12}",
            "contender", "consumer", "producer CPU", "runnable", "sleeps/s", "preempted/s"
        );
        for row in &r.slow {
            match &row.out {
                Outcome::Ok(s) => {
                    let _ = writeln!(
                        o,
                        "  {:<w$} {:>14} {:>13} {:>10} {:>10} {:>12}",
                        row.name,
                        format!("{} rec/s", si(s.rate)),
                        pct(s.cpu_share()),
                        s.runnable_share().map_or_else(|| "—".to_owned(), pct),
                        si(s.nvcsw as f64 / s.wall),
                        si(s.nivcsw as f64 / s.wall)
                    );
                }
                Outcome::Na(why) => {
                    let _ = writeln!(o, "  {:<w$} n/a ({why})", row.name);
                }
                Outcome::Err(e) => {
                    let _ = writeln!(o, "  {:<w$} error: {e}", row.name);
                }
            }
        }
    }
    doorbells(&mut o, r);
    let t = targets(r);
    if !t.is_empty() {
        let ww = t.iter().map(|x| x.what.chars().count()).max().unwrap_or(0);
        let sw = t.iter().map(|x| x.shown.chars().count()).max().unwrap_or(0);
        let gw = t.iter().map(|x| x.goal.chars().count()).max().unwrap_or(0);
        let _ = writeln!(o);
        let _ = writeln!(o, "Targets (issue: figure from the tables above, goal)");
        for x in &t {
            let _ = writeln!(
                o,
                "  #{}  {:<ww$}  {:>sw$}  {:<gw$}  {}",
                x.issue,
                x.what,
                x.shown,
                x.goal,
                if x.met { "met" } else { "NOT met" }
            );
        }
    }
    o
}

/// The byte-channel section (issue 9), one table per message size.
fn bytes_table(o: &mut String, r: &Results) {
    let w = name_width(r.bytes.iter().map(|t| t.name.as_str()));
    let show = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), ratio);
    for &size in bytechan::SIZES {
        let rows: Vec<&ByteRow> = r.bytes.iter().filter(|t| t.size == size).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Byte channels, {} messages (issue 9; consumer's count / elapsed; × typed = records/s \
             ÷ the typed channel's of the same record size in the same style: send/recv for the \
             copying rows, reserve+commit/peek for the zero-copy ones; × socket = ÷ the Unix \
             socket's)",
            size_label(size)
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>12} {:>10} {:>9} {:>9}",
            "contender", "records/s", "MB/s", "× typed", "× socket"
        );
        for row in rows {
            match &row.out {
                Outcome::Ok(c) => {
                    let (t, u) = byte_ratios(r, row);
                    let _ = writeln!(
                        o,
                        "  {:<w$} {:>12} {:>10} {:>9} {:>9}",
                        row.name,
                        si(c.rate()),
                        sig3(mbs(c, size)),
                        show(t),
                        show(u)
                    );
                }
                Outcome::Na(why) => {
                    let _ = writeln!(o, "  {:<w$} n/a ({why})", row.name);
                }
                Outcome::Err(e) => {
                    let _ = writeln!(o, "  {:<w$} error: {e}", row.name);
                }
            }
        }
    }
}

/// The async round-trip section (issue 9), one table per mode.
fn async_table(o: &mut String, r: &Results) {
    let w = name_width(r.aio.iter().map(|t| t.name.as_str()));
    let show = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), ratio);
    for mode in [LatMode::Busy, LatMode::Blocking] {
        let rows: Vec<&LatRow> = r.aio.iter().filter(|t| t.mode == mode).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        let how = match mode {
            LatMode::Busy => "the peer answers at once (each row alone; default spin window, \
                              then blocking rows park in the kernel, async rows wait in the \
                              reactor)"
                .to_owned(),
            LatMode::Blocking => format!(
                "both sides asleep before every message (each side waits {} µs before it sends, \
                 the echoer's wait is subtracted; zero spin window; the shmchan rows interleaved \
                 message by message in the same two processes)",
                BLOCKING_GAP.as_micros()
            ),
        };
        let _ = writeln!(
            o,
            "Async round trip, 8 B ping-pong, {how}; issue 9: async = AsyncSender/AsyncReceiver \
             on a tokio current-thread runtime in both processes; /blocking = the async row ÷ \
             the blocking API on the same doorbell"
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
            "contender",
            "p50",
            "p99",
            "p99.9",
            "max",
            "samples",
            "p50/pipe",
            "p50/blocking",
            "p99/blocking"
        );
        for row in rows {
            match &row.out {
                Outcome::Ok(s) => {
                    let (p, f50, f99) = lat_ratios_in(&r.aio, row);
                    let _ = writeln!(
                        o,
                        "  {:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
                        row.name,
                        ns(s.p50),
                        ns(s.p99),
                        ns(s.p999),
                        ns(s.max),
                        si(s.samples as f64),
                        show(p),
                        show(f50),
                        show(f99)
                    );
                }
                Outcome::Na(why) => {
                    let _ = writeln!(o, "  {:<w$} n/a ({why})", row.name);
                }
                Outcome::Err(e) => {
                    let _ = writeln!(o, "  {:<w$} error: {e}", row.name);
                }
            }
        }
    }
}

/// The per-doorbell summary of issue 6: one row per doorbell, from the sections above.
fn doorbells(o: &mut String, r: &Results) {
    struct Row {
        bell: Doorbell,
        cells: [String; 6],
    }
    let dash = || "—".to_owned();
    let mut rows = Vec::new();
    for &bell in DOORBELLS {
        let s = spsc(bell);
        let name = s.name(Style::Unbatched);
        let busy = lat_of(r, &name, LatMode::Busy);
        let pipe = lat_of(r, "pipe", LatMode::Busy);
        let blk = lat_of(r, &name, LatMode::Blocking);
        let bare = s
            .bare_object()
            .and_then(|b| lat_of(r, b.name(), LatMode::Blocking));
        let idle = bell_of(&r.idle, bell);
        let slow = bell_of(&r.slow, bell);
        if busy.is_none() && blk.is_none() && idle.is_none() && slow.is_none() {
            continue;
        }
        let with_ratio = |x: u64, f: Option<u64>| match f {
            Some(f) => format!("{} ({})", ns(x), ratio(x as f64 / f as f64)),
            None => ns(x),
        };
        rows.push(Row {
            bell,
            cells: [
                busy.map_or_else(dash, |b| ns(b.p50)),
                match (busy, pipe) {
                    (Some(b), Some(p)) => ratio(p.p50 as f64 / b.p50 as f64),
                    _ => dash(),
                },
                blk.map_or_else(dash, |x| with_ratio(x.p50, bare.map(|f| f.p50))),
                blk.map_or_else(dash, |x| with_ratio(x.p99, bare.map(|f| f.p99))),
                idle.map_or_else(dash, |x| pct(x.cpu_share())),
                slow.map_or_else(dash, |x| pct(x.cpu_share())),
            ],
        });
    }
    if rows.is_empty() {
        return;
    }
    let heads = [
        "busy p50",
        "pipe/busy",
        "blocking p50 (/bare)",
        "blocking p99 (/bare)",
        "idle CPU",
        "slow-cons. CPU",
    ];
    let mut widths = heads.map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(&row.cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let bw = DOORBELLS
        .iter()
        .map(|b| b.name().len())
        .max()
        .unwrap_or(0)
        .max("doorbell".len());
    let line = |first: &str, cells: &[String]| {
        let mut l = format!("  {first:<bw$}");
        for (c, w) in cells.iter().zip(widths) {
            let pad = w.saturating_sub(c.chars().count());
            l.push_str("  ");
            l.push_str(&" ".repeat(pad));
            l.push_str(c);
        }
        l
    };
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Doorbells (issue 6; SPSC, 8 B; from the sections above): busy = peer answers at once; \
         blocking = both asleep, ratio to the bare object; idle = receiver's CPU share; \
         slow-cons. = producer's CPU share"
    );
    let _ = writeln!(o, "{}", line("doorbell", &heads.map(str::to_owned)));
    for row in &rows {
        let _ = writeln!(o, "{}", line(row.bell.name(), &row.cells));
    }
}

/// A JSON value, written by hand (no serde in this crate).
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Int(u64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    fn s(v: impl Into<String>) -> J {
        J::Str(v.into())
    }

    fn opt_f(v: Option<f64>) -> J {
        v.map_or(J::Null, J::Num)
    }

    fn write(&self, o: &mut String, indent: usize) {
        match self {
            J::Null => o.push_str("null"),
            J::Bool(b) => o.push_str(if *b { "true" } else { "false" }),
            J::Num(x) if x.is_finite() => {
                let _ = write!(o, "{x}");
            }
            J::Num(_) => o.push_str("null"),
            J::Int(x) => {
                let _ = write!(o, "{x}");
            }
            J::Str(s) => {
                o.push('"');
                for c in s.chars() {
                    match c {
                        '"' => o.push_str("\\\""),
                        '\\' => o.push_str("\\\\"),
                        '\n' => o.push_str("\\n"),
                        '\r' => o.push_str("\\r"),
                        '\t' => o.push_str("\\t"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(o, "\\u{:04x}", c as u32);
                        }
                        c => o.push(c),
                    }
                }
                o.push('"');
            }
            J::Arr(v) => {
                if v.is_empty() {
                    o.push_str("[]");
                    return;
                }
                o.push('[');
                for (i, x) in v.iter().enumerate() {
                    o.push_str(if i == 0 { "\n" } else { ",\n" });
                    o.push_str(&" ".repeat(indent + 2));
                    x.write(o, indent + 2);
                }
                o.push('\n');
                o.push_str(&" ".repeat(indent));
                o.push(']');
            }
            J::Obj(v) => {
                if v.is_empty() {
                    o.push_str("{}");
                    return;
                }
                o.push('{');
                for (i, (k, x)) in v.iter().enumerate() {
                    o.push_str(if i == 0 { "\n" } else { ",\n" });
                    o.push_str(&" ".repeat(indent + 2));
                    J::s(*k).write(o, indent + 2);
                    o.push_str(": ");
                    x.write(o, indent + 2);
                }
                o.push('\n');
                o.push_str(&" ".repeat(indent));
                o.push('}');
            }
        }
    }
}

fn status<T>(o: &Outcome<T>) -> Vec<(&'static str, J)> {
    match o {
        Outcome::Ok(_) => vec![("status", J::s("ok"))],
        Outcome::Na(why) => vec![("status", J::s("n/a")), ("reason", J::s(why.clone()))],
        Outcome::Err(e) => vec![("status", J::s("error")), ("error", J::s(e.to_string()))],
    }
}

fn load(l: Option<[f64; 3]>) -> J {
    l.map_or(J::Null, |v| J::Arr(v.iter().map(|&x| J::Num(x)).collect()))
}

fn opt_u(v: Option<u64>) -> J {
    v.map_or(J::Null, J::Int)
}

/// The machine-readable report.
pub fn json(r: &Results) -> String {
    let m = &r.machine;
    let lim = &r.cfg.limits;
    let pin = |c: Option<usize>| c.map_or(J::Null, |c| J::Int(c as u64));
    let tp: Vec<J> =
        r.tp.iter()
            .map(|row| {
                let mut f = vec![
                    ("contender", J::s(row.name.clone())),
                    ("size", J::Int(row.size as u64)),
                ];
                f.extend(status(&row.out));
                if let Outcome::Ok(c) = &row.out {
                    f.push(("records", J::Int(c.records)));
                    f.push(("elapsed_s", J::Num(c.secs)));
                    f.push(("records_per_s", J::Num(c.rate())));
                    f.push(("mb_per_s", J::Num(mbs(c, row.size))));
                    f.push(("vs_pipe", J::opt_f(tp_vs_pipe(r, row))));
                }
                J::Obj(f)
            })
            .collect();
    let lat: Vec<J> = r
        .lat
        .iter()
        .map(|row| {
            let mut f = vec![
                ("contender", J::s(row.name.clone())),
                ("mode", J::s(row.mode.name())),
                ("size", J::Int(8)),
                ("floor", row.floor.clone().map_or(J::Null, J::Str)),
            ];
            f.extend(status(&row.out));
            if let Outcome::Ok(s) = &row.out {
                let (p, f50, f99) = lat_ratios(r, row);
                f.push(("samples", J::Int(s.samples)));
                f.push(("p50_ns", J::Int(s.p50)));
                f.push(("p99_ns", J::Int(s.p99)));
                f.push(("p999_ns", J::Int(s.p999)));
                f.push(("max_ns", J::Int(s.max)));
                f.push(("mean_ns", J::Num(s.mean)));
                f.push(("p50_vs_pipe", J::opt_f(p)));
                f.push(("p50_vs_floor", J::opt_f(f50)));
                f.push(("p99_vs_floor", J::opt_f(f99)));
            }
            J::Obj(f)
        })
        .collect();
    let byte_rows: Vec<J> = r
        .bytes
        .iter()
        .map(|row| {
            let mut f = vec![
                ("contender", J::s(row.name.clone())),
                ("size", J::Int(row.size as u64)),
                ("typed_reference", J::s(row.typed.clone())),
            ];
            f.extend(status(&row.out));
            if let Outcome::Ok(c) = &row.out {
                let (t, u) = byte_ratios(r, row);
                f.push(("records", J::Int(c.records)));
                f.push(("elapsed_s", J::Num(c.secs)));
                f.push(("records_per_s", J::Num(c.rate())));
                f.push(("mb_per_s", J::Num(mbs(c, row.size))));
                f.push(("vs_typed", J::opt_f(t)));
                f.push(("vs_unix_socket", J::opt_f(u)));
            }
            J::Obj(f)
        })
        .collect();
    let aio: Vec<J> = r
        .aio
        .iter()
        .map(|row| {
            let api = if row.name.starts_with(super::async_rt::PREFIX) {
                "async"
            } else if row.name.starts_with("shmchan") {
                "blocking"
            } else {
                "kernel"
            };
            let mut f = vec![
                ("contender", J::s(row.name.clone())),
                ("mode", J::s(row.mode.name())),
                ("api", J::s(api)),
                ("size", J::Int(8)),
                (
                    "blocking_reference",
                    row.floor.clone().map_or(J::Null, J::Str),
                ),
            ];
            f.extend(status(&row.out));
            if let Outcome::Ok(s) = &row.out {
                let (p, f50, f99) = lat_ratios_in(&r.aio, row);
                f.push(("samples", J::Int(s.samples)));
                f.push(("p50_ns", J::Int(s.p50)));
                f.push(("p99_ns", J::Int(s.p99)));
                f.push(("p999_ns", J::Int(s.p999)));
                f.push(("max_ns", J::Int(s.max)));
                f.push(("mean_ns", J::Num(s.mean)));
                f.push(("p50_vs_pipe", J::opt_f(p)));
                f.push(("p50_vs_blocking", J::opt_f(f50)));
                f.push(("p99_vs_blocking", J::opt_f(f99)));
            }
            J::Obj(f)
        })
        .collect();
    let targets: Vec<J> = targets(r)
        .into_iter()
        .map(|t| {
            J::Obj(vec![
                ("issue", J::Int(t.issue.into())),
                ("what", J::s(t.what)),
                ("value", t.values.first().map_or(J::Null, |v| J::Num(v.1))),
                (
                    "values",
                    J::Obj(t.values.iter().map(|&(k, v)| (k, J::Num(v))).collect()),
                ),
                ("shown", J::s(t.shown)),
                ("goal", J::s(t.goal)),
                ("met", J::Bool(t.met)),
            ])
        })
        .collect();
    let idle: Vec<J> = r
        .idle
        .iter()
        .map(|row| {
            let mut f = vec![
                ("contender", J::s(row.name.clone())),
                ("doorbell", J::s(row.bell.name())),
            ];
            f.extend(status(&row.out));
            if let Outcome::Ok(s) = &row.out {
                f.push(("wait_s", J::Num(s.wall)));
                f.push(("cpu_s", J::Num(s.user + s.sys)));
                f.push(("user_s", J::Num(s.user)));
                f.push(("sys_s", J::Num(s.sys)));
                f.push(("cpu_share", J::Num(s.cpu_share())));
                f.push(("voluntary_switches", J::Int(s.nvcsw)));
            }
            J::Obj(f)
        })
        .collect();
    let slow: Vec<J> = r
        .slow
        .iter()
        .map(|row| {
            let mut f = vec![
                ("contender", J::s(row.name.clone())),
                ("doorbell", J::s(row.bell.name())),
            ];
            f.extend(status(&row.out));
            if let Outcome::Ok(s) = &row.out {
                f.push(("consumer_records_per_s", J::Num(s.rate)));
                f.push(("producer_window_s", J::Num(s.wall)));
                f.push(("producer_cpu_s", J::Num(s.cpu)));
                f.push(("producer_cpu_share", J::Num(s.cpu_share())));
                f.push(("producer_voluntary_switches", J::Int(s.nvcsw)));
                f.push(("producer_involuntary_switches", J::Int(s.nivcsw)));
                f.push(("producer_runqueue_wait_s", s.runq.map_or(J::Null, J::Num)));
                f.push(("producer_runnable_share", J::opt_f(s.runnable_share())));
            }
            J::Obj(f)
        })
        .collect();
    let doc = J::Obj(vec![
        ("shmchan_bench", J::Int(1)),
        (
            "machine",
            J::Obj(vec![
                ("cpu", J::s(m.cpu.clone())),
                ("kernel", J::s(m.kernel.clone())),
                ("cpus_online", J::Int(m.online as u64)),
                ("cpus_usable", J::Int(m.allowed.len() as u64)),
                ("pinned", J::Bool(m.pinning.first.is_some())),
                ("producer_cpu", pin(m.pinning.first)),
                ("consumer_cpu", pin(m.pinning.second)),
            ]),
        ),
        (
            "limits",
            J::Obj(vec![
                ("msgmax", opt_u(lim.msgmax)),
                ("msgmnb", opt_u(lim.msgmnb)),
                ("mq_msg_max", opt_u(lim.mq_msg_max)),
                ("mq_msgsize_max", opt_u(lim.mq_msgsize_max)),
            ]),
        ),
        (
            "settings",
            J::Obj(vec![
                ("duration_s", J::Num(r.cfg.len.as_secs_f64())),
                ("blocking_duration_s", J::Num(r.cfg.blocking.as_secs_f64())),
                ("idle_duration_s", J::Num(r.cfg.idle.as_secs_f64())),
                ("slow_duration_s", J::Num(r.cfg.slow.as_secs_f64())),
                ("warmup_s", J::Num(r.cfg.warmup.as_secs_f64())),
                (
                    "default_spin_window_us",
                    J::Num(shmchan::DEFAULT_SPIN.as_secs_f64() * 1e6),
                ),
                (
                    "slow_consumer_us_per_record",
                    J::Num(SLOW_PER_RECORD.as_secs_f64() * 1e6),
                ),
                ("quick", J::Bool(r.quick)),
                ("batch", J::Int(BATCH as u64)),
                ("blocking_gap_us", J::Int(BLOCKING_GAP.as_micros() as u64)),
                (
                    "sizes",
                    J::Arr(r.sizes.iter().map(|&s| J::Int(s as u64)).collect()),
                ),
                (
                    "byte_channel_sizes",
                    J::Arr(bytechan::SIZES.iter().map(|&s| J::Int(s as u64)).collect()),
                ),
                (
                    "async_doorbells",
                    J::Arr(
                        super::async_rt::ASYNC_BELLS
                            .iter()
                            .map(|b| J::s(b.name()))
                            .collect(),
                    ),
                ),
                ("wall_s", J::Num(r.wall.as_secs_f64())),
            ]),
        ),
        (
            "loadavg",
            J::Obj(vec![("start", load(r.load[0])), ("end", load(r.load[1]))]),
        ),
        ("throughput", J::Arr(tp)),
        ("latency", J::Arr(lat)),
        ("byte_channels", J::Arr(byte_rows)),
        ("async_round_trip", J::Arr(aio)),
        ("idle", J::Arr(idle)),
        ("slow_consumer", J::Arr(slow)),
        ("targets", J::Arr(targets)),
    ]);
    let mut o = String::new();
    doc.write(&mut o, 0);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(size_label(64), "64 B");
        assert_eq!(si(45_123_000.0), "45.1 M");
        assert_eq!(ns(153), "153 ns");
        assert_eq!(ns(12_345), "12.3 µs");
        assert_eq!(ratio(1.0), "1.00×");
        let mut o = String::new();
        J::Obj(vec![
            ("a", J::s("x\"y")),
            ("b", J::Arr(vec![J::Num(1.0), J::Null])),
        ])
        .write(&mut o, 0);
        assert_eq!(
            o,
            "{\n  \"a\": \"x\\\"y\",\n  \"b\": [\n    1,\n    null\n  ]\n}"
        );
    }
}
