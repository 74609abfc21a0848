//! The table (stdout), the progress lines (stderr) and the JSON document (`--json`).
//!
//! Ratios: throughput is divided by the pipe's at the same record size (higher is better);
//! round trips are divided by the pipe's and by the row's floor (lower is better). In the
//! byte-channel section, throughput is divided by the typed channel's in the same style and by
//! the Unix socket's; in the async section, round trips are divided by the pipe's and an async
//! row by the blocking API on the same doorbell. The "Targets" section judges the goals set
//! for shmchan on the same results.
//!
//! This module holds the number formats, the progress lines and the lookups every view shares;
//! [`table`](mod@table), [`json`](mod@json) and [`targets`] are the views.

use shmchan::Doorbell;

use super::shm::{IdleStats, SlowStats};
use super::workload::{LatMode, LatStats};
use super::{bytechan, pairs, BellRow, ByteRow, Count, LatRow, Outcome, Results, TpRow};

mod json;
mod table;
mod targets;

pub use json::json;
pub use table::table;

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
    } else if v >= 1.0 || v <= 0.0 {
        format!("{v:.2}")
    } else {
        // Three significant figures below 1 too: a rate that small (a queue on a loaded
        // machine) must not print as zero.
        let decimals = (2.0 - v.log10().floor()).clamp(2.0, 12.0) as usize;
        format!("{v:.decimals$}")
    }
}

#[cfg(test)]
mod sig3_tests {
    #[test]
    fn small_values_keep_three_significant_figures() {
        assert_eq!(super::sig3(0.00289), "0.00289");
        assert_eq!(super::sig3(0.5), "0.500");
        assert_eq!(super::sig3(1.5), "1.50");
        assert_eq!(super::sig3(0.0), "0.00");
        assert_eq!(super::sig3(123.4), "123");
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

/// The progress line's result part for a per-record pair: the median ratio, its range, and
/// each round's.
pub fn progress_pair(o: &Outcome<Vec<f64>>) -> String {
    match o {
        Outcome::Ok(v) => format!(
            "median {}  (rounds: {})",
            ratio(pairs::median(v)),
            rounds(v)
        ),
        Outcome::Na(why) => format!("n/a ({why})"),
        Outcome::Err(e) => format!("error: {e}"),
    }
}

/// A pair's rounds, as ratios one after the other.
fn rounds(v: &[f64]) -> String {
    v.iter().map(|&x| ratio(x)).collect::<Vec<_>>().join(" ")
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
    }
}
