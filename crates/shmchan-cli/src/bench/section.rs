//! The sections of a run and the one loop that runs them.
//!
//! A [`Section`] is a short declaration: its progress label, its jobs (one measurement each,
//! in processes of its own), the names of the rows a job yields, and how a job is measured
//! into those rows. [`Progress::run`] runs any section: it measures each job in turn, prints
//! one progress line per row, and stops the run when a row says it was interrupted (Ctrl-C).
//! [`Sections`] declares the eight sections of a run, in the order they run.

use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use shmchan::Doorbell;

use super::async_rt::{self, Rt};
use super::baseline::{self, Base};
use super::bytechan::{self, ByteC};
use super::death::{self, DeathStats};
use super::pairs::{self, Pair};
use super::plan::{self, Lat, LatJob, Tp};
use super::report;
use super::shm::{self, IdleStats, Shm, SlowStats, Style};
use super::workload::{LatMode, LatStats};
use super::{bare, sys, Cfg, Error};

/// How a measurement ended.
#[derive(Clone, Debug)]
pub enum Outcome<T> {
    /// Measured.
    Ok(T),
    /// The mechanism cannot carry this record size here (the reason names the limit).
    Na(String),
    /// It failed; the run went on. Shared: the rows of one measurement fail together.
    Err(Rc<Error>),
}

impl<T> Outcome<T> {
    /// The outcome of a measurement of one row.
    pub fn of(r: Result<T, Error>) -> Outcome<T> {
        match r {
            Ok(v) => Outcome::Ok(v),
            Err(e) => Outcome::Err(Rc::new(e)),
        }
    }

    /// The outcomes of a measurement of `rows` rows: each row's figures, or the same error for
    /// every row.
    pub fn all(r: Result<Vec<T>, Error>, rows: usize) -> Vec<Outcome<T>> {
        match r {
            Ok(v) => v.into_iter().map(Outcome::Ok).collect(),
            Err(e) => {
                let e = Rc::new(e);
                (0..rows).map(|_| Outcome::Err(Rc::clone(&e))).collect()
            }
        }
    }

    /// The figures, converted.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ok(v) => Outcome::Ok(f(v)),
            Outcome::Na(why) => Outcome::Na(why),
            Outcome::Err(e) => Outcome::Err(e),
        }
    }

    /// The error, if it failed.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Err(e) => Some(e),
            _ => None,
        }
    }
}

/// Records counted by a consumer.
#[derive(Clone, Copy, Debug)]
pub struct Count {
    /// Records in the timed window.
    pub records: u64,
    /// The window's measured length, in seconds.
    pub secs: f64,
}

impl Count {
    /// Records per second.
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
}

impl From<(u64, f64)> for Count {
    /// `(records, seconds)` as the throughput measurements return them.
    fn from((records, secs): (u64, f64)) -> Count {
        Count { records, secs }
    }
}

/// One throughput cell.
pub struct TpRow {
    /// Contender name.
    pub name: String,
    /// Record size in bytes.
    pub size: usize,
    /// The result.
    pub out: Outcome<Count>,
}

/// One round-trip row.
pub struct LatRow {
    /// Contender name.
    pub name: String,
    /// Section.
    pub mode: LatMode,
    /// The contender whose figures this row is divided by (see [`Lat::floor`]).
    pub floor: Option<String>,
    /// The result.
    pub out: Outcome<LatStats>,
}

/// One row of the byte-channel section.
pub struct ByteRow {
    /// Contender name.
    pub name: String,
    /// Message (and record) size in bytes.
    pub size: usize,
    /// The typed row of the same style it is divided by.
    pub typed: String,
    /// The result.
    pub out: Outcome<Count>,
}

/// One per-record pair (see [`pairs`]): the ratios of its rounds.
pub struct PairRow {
    /// Its name (see [`Pair::name`]).
    pub name: String,
    /// The pair.
    pub pair: Pair,
    /// The ratio `A / B` of each round.
    pub out: Outcome<Vec<f64>>,
}

/// One row of the idle or slow-consumer section: one doorbell.
pub struct BellRow<T> {
    /// Contender name.
    pub name: String,
    /// Its doorbell.
    pub bell: Doorbell,
    /// The result.
    pub out: Outcome<T>,
}

/// Everything a run measured, and under which conditions.
pub struct Results {
    /// The machine.
    pub machine: sys::Machine,
    /// Settings and limits.
    pub cfg: Cfg,
    /// Record sizes measured.
    pub sizes: Vec<usize>,
    /// `--quick`.
    pub quick: bool,
    /// Throughput cells, by size, in table order.
    pub tp: Vec<TpRow>,
    /// Round-trip rows, by section, in table order.
    pub lat: Vec<LatRow>,
    /// Byte-channel rows, by size, in table order.
    pub bytes: Vec<ByteRow>,
    /// Async round-trip rows, by mode, in table order (`floor`: the blocking row an async
    /// row is divided by).
    pub aio: Vec<LatRow>,
    /// Idle receivers.
    pub idle: Vec<BellRow<IdleStats>>,
    /// Producers against a slow consumer.
    pub slow: Vec<BellRow<SlowStats>>,
    /// Death detection.
    pub death: Vec<BellRow<DeathStats>>,
    /// The per-record pairs.
    pub pairs: Vec<PairRow>,
    /// Wall time of the whole run.
    pub wall: Duration,
    /// Load averages when the run started and when it ended.
    pub load: [Option<[f64; 3]>; 2],
}

impl Results {
    /// Whether some row is an error (the exit status is then 2).
    pub fn failed(&self) -> bool {
        fn any<R: Row>(rows: &[R]) -> bool {
            rows.iter().any(|r| r.error().is_some())
        }
        any(&self.tp)
            || any(&self.lat)
            || any(&self.bytes)
            || any(&self.aio)
            || any(&self.idle)
            || any(&self.slow)
            || any(&self.death)
            || any(&self.pairs)
    }
}

/// The part of a progress line between the section label and the contender name.
#[derive(Clone, Copy, Debug)]
pub enum Column {
    /// A record or message size, right-aligned: `  8 B`, `64 KiB`.
    Size(usize),
    /// A round-trip mode, left-aligned: `busy`, `blocking`.
    Mode(LatMode),
    /// Nothing (as wide as a mode).
    Blank,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Size(s) => write!(f, "{:>6}", report::size_label(*s)),
            Column::Mode(m) => write!(f, "{:<8}", m.name()),
            Column::Blank => write!(f, "{:<8}", ""),
        }
    }
}

/// What the runner needs to know of a measured row.
pub trait Row {
    /// The contender name.
    fn name(&self) -> &str;
    /// Its progress line's column before the name.
    fn column(&self) -> Column;
    /// Its progress line's result part.
    fn progress(&self) -> String;
    /// Its error, if it failed.
    fn error(&self) -> Option<&Error>;
}

impl Row for TpRow {
    fn name(&self) -> &str {
        &self.name
    }
    fn column(&self) -> Column {
        Column::Size(self.size)
    }
    fn progress(&self) -> String {
        report::progress_tp(&self.out, self.size)
    }
    fn error(&self) -> Option<&Error> {
        self.out.error()
    }
}

impl Row for LatRow {
    fn name(&self) -> &str {
        &self.name
    }
    fn column(&self) -> Column {
        Column::Mode(self.mode)
    }
    fn progress(&self) -> String {
        report::progress_lat(&self.out)
    }
    fn error(&self) -> Option<&Error> {
        self.out.error()
    }
}

impl Row for ByteRow {
    fn name(&self) -> &str {
        &self.name
    }
    fn column(&self) -> Column {
        Column::Size(self.size)
    }
    fn progress(&self) -> String {
        report::progress_tp(&self.out, self.size)
    }
    fn error(&self) -> Option<&Error> {
        self.out.error()
    }
}

impl Row for PairRow {
    fn name(&self) -> &str {
        &self.name
    }
    fn column(&self) -> Column {
        Column::Size(self.pair.size)
    }
    fn progress(&self) -> String {
        report::progress_pair(&self.out)
    }
    fn error(&self) -> Option<&Error> {
        self.out.error()
    }
}

impl Row for BellRow<IdleStats> {
    fn name(&self) -> &str {
        &self.name
    }
    fn column(&self) -> Column {
        Column::Blank
    }
    fn progress(&self) -> String {
        report::progress_idle(&self.out)
    }
    fn error(&self) -> Option<&Error> {
        self.out.error()
    }
}

impl Row for BellRow<DeathStats> {
    fn name(&self) -> &str {
        &self.name
    }
    fn column(&self) -> Column {
        Column::Blank
    }
    fn progress(&self) -> String {
        death::progress(&self.out)
    }
    fn error(&self) -> Option<&Error> {
        self.out.error()
    }
}

impl Row for BellRow<SlowStats> {
    fn name(&self) -> &str {
        &self.name
    }
    fn column(&self) -> Column {
        Column::Blank
    }
    fn progress(&self) -> String {
        report::progress_slow(&self.out)
    }
    fn error(&self) -> Option<&Error> {
        self.out.error()
    }
}

/// One section of a run.
pub struct Section<J, R> {
    /// The section in its progress lines: `throughput`, `round trip`, … (12 columns at most).
    label: &'static str,
    /// Its measurements, in table order.
    jobs: Vec<J>,
    /// The names of the rows a job yields, in table order (known before anything runs, for
    /// the count and the alignment of the progress lines).
    names: fn(&J) -> Vec<String>,
    /// Measures a job: the rows it yields, in that order.
    measure: fn(&J, &Cfg) -> Vec<R>,
}

impl<J, R> Section<J, R> {
    /// The names of every row of the section.
    fn row_names(&self) -> impl Iterator<Item = String> + '_ {
        self.jobs.iter().flat_map(self.names)
    }
}

/// The run was interrupted (Ctrl-C, SIGTERM): the children of the measurement were killed and
/// its kernel objects removed.
#[derive(Debug)]
pub struct Interrupted;

/// The progress lines of a run (stderr): `[ 12/144] throughput     8 B  pipe  485 k rec/s …`.
struct Progress {
    /// Rows reported so far.
    done: usize,
    /// Rows of the whole run.
    total: usize,
    /// The width of the name column: the longest name of the run (20 at least).
    width: usize,
}

impl Progress {
    /// Runs every job of `section` and reports each of its rows as it comes; stops at the
    /// first row that was interrupted.
    fn run<J, R: Row>(
        &mut self,
        section: &Section<J, R>,
        cfg: &Cfg,
    ) -> Result<Vec<R>, Interrupted> {
        let mut rows = Vec::new();
        for job in &section.jobs {
            for row in (section.measure)(job, cfg) {
                self.done += 1;
                eprintln!(
                    "[{:>3}/{}] {:<12}{}  {:<width$} {}",
                    self.done,
                    self.total,
                    section.label,
                    row.column(),
                    row.name(),
                    row.progress(),
                    width = self.width
                );
                if row
                    .error()
                    .is_some_and(|e| e.is_interrupted() || sys::interrupted())
                {
                    eprintln!(
                        "shmchan bench: interrupted; children killed, kernel objects removed"
                    );
                    return Err(Interrupted);
                }
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

/// The rows of a run, by section.
pub struct Rows {
    /// Throughput cells.
    pub tp: Vec<TpRow>,
    /// Round-trip rows, busy then blocking.
    pub lat: Vec<LatRow>,
    /// Byte-channel rows.
    pub bytes: Vec<ByteRow>,
    /// Async round-trip rows.
    pub aio: Vec<LatRow>,
    /// Idle receivers.
    pub idle: Vec<BellRow<IdleStats>>,
    /// Producers against a slow consumer.
    pub slow: Vec<BellRow<SlowStats>>,
    /// Death detection.
    pub death: Vec<BellRow<DeathStats>>,
    /// The per-record pairs.
    pub pairs: Vec<PairRow>,
}

/// The eight sections of a run, in the order they run.
pub struct Sections {
    tp: Section<(usize, Tp), TpRow>,
    lat: Section<(LatMode, LatJob), LatRow>,
    bytes: Section<(usize, ByteC), ByteRow>,
    aio: Section<AsyncJob, LatRow>,
    idle: Section<Vec<Shm>, BellRow<IdleStats>>,
    slow: Section<Shm, BellRow<SlowStats>>,
    death: Section<Shm, BellRow<DeathStats>>,
    pairs: Section<Pair, PairRow>,
}

impl Sections {
    /// The sections of a run of `sizes` that measures what `only` selects (everything a
    /// default run measures when empty).
    pub fn new(only: &[String], sizes: &[usize]) -> Sections {
        let (tp, lat, bytes) = (
            throughput(only, sizes),
            round_trip(only),
            byte_channels(only),
        );
        let pairs = per_record_pairs(sizes, &tp, &lat, &bytes);
        Sections {
            tp,
            lat,
            bytes,
            aio: async_round_trip(only),
            idle: idle(only),
            slow: slow_consumer(only),
            death: death_detection(only),
            pairs,
        }
    }

    /// The names of every row of the run, in order.
    fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.tp
            .row_names()
            .chain(self.lat.row_names())
            .chain(self.bytes.row_names())
            .chain(self.aio.row_names())
            .chain(self.idle.row_names())
            .chain(self.slow.row_names())
            .chain(self.death.row_names())
            .chain(self.pairs.row_names())
    }

    /// How many rows the run measures.
    pub fn total(&self) -> usize {
        self.names().count()
    }

    /// Runs every section.
    pub fn run(&self, cfg: &Cfg) -> Result<Rows, Interrupted> {
        let width = self.names().map(|n| n.chars().count()).max().unwrap_or(0);
        let mut p = Progress {
            done: 0,
            total: self.total(),
            width: width.max(20),
        };
        Ok(Rows {
            tp: p.run(&self.tp, cfg)?,
            lat: p.run(&self.lat, cfg)?,
            bytes: p.run(&self.bytes, cfg)?,
            aio: p.run(&self.aio, cfg)?,
            idle: p.run(&self.idle, cfg)?,
            slow: p.run(&self.slow, cfg)?,
            death: p.run(&self.death, cfg)?,
            pairs: p.run(&self.pairs, cfg)?,
        })
    }
}

/// Throughput: one cell per record size and contender; n/a where a kernel mechanism cannot
/// carry the size.
fn throughput(only: &[String], sizes: &[usize]) -> Section<(usize, Tp), TpRow> {
    Section {
        label: "throughput",
        jobs: plan::tp_plan(only, sizes),
        names: |&(_, c)| vec![c.name()],
        measure: |&(size, c), cfg| {
            let out = match c {
                Tp::Base(b) => match b.cannot_carry(size, &cfg.limits) {
                    Some(why) => Outcome::Na(why),
                    None => Outcome::of(baseline::throughput(b, size, cfg)),
                },
                Tp::Shm(s, st) => Outcome::of(shm::throughput(s, st, size, cfg)),
            };
            let name = c.name();
            let out = out.map(Count::from);
            vec![TpRow { name, size, out }]
        },
    }
}

/// Round trips, busy then blocking; in the blocking section a sleeping doorbell and its bare
/// object are one measurement of two rows.
fn round_trip(only: &[String]) -> Section<(LatMode, LatJob), LatRow> {
    Section {
        label: "round trip",
        jobs: [LatMode::Busy, LatMode::Blocking]
            .into_iter()
            .flat_map(|m| plan::lat_plan(m, only).into_iter().map(move |j| (m, j)))
            .collect(),
        names: |&(_, job)| job.rows().into_iter().map(Lat::name).collect(),
        measure: |&(mode, job), cfg| {
            let outs = match job {
                LatJob::One(c) => vec![Outcome::of(match c {
                    Lat::Base(b) => baseline::latency(b, mode, cfg),
                    Lat::Shm(s) => shm::latency(s, mode, None, cfg).map(|r| r.0),
                    Lat::Bare(b) => bare::latency(b, cfg),
                })],
                LatJob::Pair(s, b) => Outcome::all(
                    match shm::latency(s, mode, Some(b), cfg) {
                        Ok((chan, Some(bare))) => Ok(vec![bare, chan]),
                        Ok((_, None)) => Err(Error::NoBareFigures),
                        Err(e) => Err(e),
                    },
                    2,
                ),
            };
            job.rows()
                .into_iter()
                .zip(outs)
                .map(|(c, out)| LatRow {
                    name: c.name(),
                    mode,
                    floor: c.floor(mode),
                    out,
                })
                .collect()
        },
    }
}

/// Byte channels: every row at each message size, divided by the typed row of its style.
fn byte_channels(only: &[String]) -> Section<(usize, ByteC), ByteRow> {
    Section {
        label: "bytes",
        jobs: plan::bytes_plan(only),
        names: |&(_, c)| vec![c.name()],
        measure: |&(size, c), cfg| {
            vec![ByteRow {
                name: c.name(),
                size,
                typed: c.typed_ref().name(),
                out: Outcome::of(bytechan::throughput(c, size, cfg)).map(Count::from),
            }]
        },
    }
}

/// One measurement of the async round-trip section.
enum AsyncJob {
    /// The pipe, on its own, as in the other round-trip sections.
    Pipe(LatMode),
    /// Rows of the group, interleaved in one pair of processes (see [`async_rt::jobs`]).
    Group(LatMode, Vec<Rt>),
}

/// Async round trips, busy then blocking: per mode the pipe, then the async rows with their
/// blocking references.
fn async_round_trip(only: &[String]) -> Section<AsyncJob, LatRow> {
    Section {
        label: "async rt",
        jobs: plan::async_plan(only)
            .into_iter()
            .flat_map(|(mode, group)| {
                let groups = async_rt::jobs(&group, mode).into_iter();
                std::iter::once(AsyncJob::Pipe(mode))
                    .chain(groups.map(move |g| AsyncJob::Group(mode, g)))
            })
            .collect(),
        names: |job| match job {
            AsyncJob::Pipe(_) => vec![Base::Pipe.name().to_owned()],
            AsyncJob::Group(_, rows) => rows.iter().map(|r| r.name()).collect(),
        },
        measure: |job, cfg| match job {
            &AsyncJob::Pipe(mode) => vec![LatRow {
                name: Base::Pipe.name().to_owned(),
                mode,
                floor: None,
                out: Outcome::of(baseline::latency(Base::Pipe, mode, cfg)),
            }],
            AsyncJob::Group(mode, rows) => {
                let outs = Outcome::all(async_rt::latency(rows, *mode, cfg), rows.len());
                rows.iter()
                    .zip(outs)
                    .map(|(r, out)| LatRow {
                        name: r.name(),
                        mode: *mode,
                        floor: r.reference().map(Rt::name),
                        out,
                    })
                    .collect()
            }
        },
    }
}

/// Idle receivers: every selected doorbell in one measurement, one receiver process each.
fn idle(only: &[String]) -> Section<Vec<Shm>, BellRow<IdleStats>> {
    let bells = plan::idle_plan(only);
    Section {
        label: "idle",
        jobs: if bells.is_empty() {
            vec![]
        } else {
            vec![bells]
        },
        names: |bells| bells.iter().map(|s| s.name(Style::Unbatched)).collect(),
        measure: |bells, cfg| {
            let outs = Outcome::all(shm::idle(bells, cfg), bells.len());
            bells
                .iter()
                .zip(outs)
                .map(|(s, out)| BellRow {
                    name: s.name(Style::Unbatched),
                    bell: s.bell,
                    out,
                })
                .collect()
        },
    }
}

/// Slow consumer: one measurement per doorbell.
fn slow_consumer(only: &[String]) -> Section<Shm, BellRow<SlowStats>> {
    Section {
        label: "slow cons.",
        jobs: plan::slow_plan(only),
        names: |s| vec![s.name(Style::Unbatched)],
        measure: |&s, cfg| {
            vec![BellRow {
                name: s.name(Style::Unbatched),
                bell: s.bell,
                out: Outcome::of(shm::slow(s, cfg)),
            }]
        },
    }
}

/// Death detection: one measuring process per doorbell (see [`death`]).
fn death_detection(only: &[String]) -> Section<Shm, BellRow<DeathStats>> {
    Section {
        label: "death",
        jobs: plan::idle_plan(only),
        names: |s| vec![s.name(Style::Unbatched)],
        measure: |&s, cfg| {
            vec![BellRow {
                name: s.name(Style::Unbatched),
                bell: s.bell,
                out: Outcome::of(death::measure(s, death::kills(cfg), cfg)),
            }]
        },
    }
}

/// The per-record pairs (see [`pairs`]): those whose two rows the sections `tp`, `lat` and
/// `bytes` measure.
fn per_record_pairs(
    sizes: &[usize],
    tp: &Section<(usize, Tp), TpRow>,
    lat: &Section<(LatMode, LatJob), LatRow>,
    bytes: &Section<(usize, ByteC), ByteRow>,
) -> Section<Pair, PairRow> {
    let busy: Vec<LatJob> = lat
        .jobs
        .iter()
        .filter(|(mode, _)| *mode == LatMode::Busy)
        .map(|&(_, job)| job)
        .collect();
    Section {
        label: "pairs",
        jobs: pairs::plan(sizes, &tp.jobs, &busy, &bytes.jobs),
        names: |p| vec![p.name()],
        measure: |p, cfg| {
            vec![PairRow {
                name: p.name(),
                pair: *p,
                out: Outcome::of(p.measure(cfg)),
            }]
        },
    }
}
