//! `shmchan bench`: shmchan against the kernel's own IPC, every figure measured in one run.
//!
//! Each measurement forks its processes (pinned to two CPUs when there are two), runs one
//! contender between them and reports what the receiving side counted and checked:
//!
//! - **throughput** for each record size: the producer writes every word of every record, the
//!   consumer checks every word against the sequence it expects and counts, after a warm-up, the
//!   records of a timed window (records/s = its count / its elapsed time);
//! - **round trip** of an 8-byte ping-pong, timed by the pinger into an HDR histogram, in two
//!   sections: the peer answering at once ("busy", default spin window), and both sides asleep
//!   before every message ("blocking", zero spin window), where each sleeping doorbell is
//!   measured interleaved, message by message, with its bare kernel object;
//! - **byte channels** (`--only bytes`): the throughput of 64 B and 4 KiB messages through a
//!   byte channel (`Channel<Bytes>`), copying (`send`/`recv_into`) and in place
//!   (`reserve`+`commit`/`peek`), with the same workload, against the typed channel of the
//!   same record size in the same style and against a Unix socket, both measured in the same
//!   section (see [`bytechan`]);
//! - **async round trip** (`--only async`): the 8-byte ping-pong with
//!   `AsyncSender`/`AsyncReceiver` on a tokio current-thread runtime in both processes, against
//!   the blocking API on the same doorbell (POSIX mq) and on the futex doorbell, when the peer
//!   answers at once (each row alone) and when both sides sleep (the rows interleaved message
//!   by message); see [`async_rt`];
//! - **idle**: what a receiver waiting on an empty channel costs in CPU time, per doorbell;
//! - **slow consumer**: the CPU time of a producer whose consumer cannot keep up.
//!
//! Every throughput and round-trip figure of the first three sections and of the async section
//! is also shown as a ratio against the pipe measured in the same run; the byte-channel section
//! divides by its own references instead (the typed channel and the Unix socket), the async
//! section also by the blocking API on the same doorbell. The modules: [`sys`] (machine,
//! limits, names), [`proc`] (the processes), [`workload`] (what each side does), [`baseline`],
//! [`shm`], [`bare`], [`bytechan`] and [`async_rt`] (the contenders), [`report`] (table and
//! JSON).

use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use shmchan::{Doorbell, RingKind};

mod async_rt;
mod bare;
mod baseline;
mod bytechan;
mod error;
mod proc;
mod report;
mod shm;
mod sys;
mod workload;

use async_rt::{Rt, ASYNC_BELLS};
use bare::Bare;
use baseline::{Base, BASES};
use bytechan::ByteC;
pub use error::Error;
use shm::{IdleStats, Shm, SlowStats, Style, DOORBELLS, KINDS, STYLES};
use workload::{LatMode, LatStats};

/// The record sizes of a default run.
const DEFAULT_SIZES: &[usize] = &[8, 64, 1024, 65536];

/// The default timed window of a throughput or busy round-trip measurement; the other
/// sections' windows are multiples of it (see [`Cfg`]).
const DEFAULT_DURATION: Duration = Duration::from_millis(300);

/// The same with `--quick`.
const QUICK_DURATION: Duration = Duration::from_millis(30);

/// The doorbells measured at every record size and in every style in a default run (the others
/// only at the smallest size, unbatched: when both sides are busy no doorbell is rung, so they
/// differ only when somebody sleeps). `--only` reaches every combination.
const DEFAULT_TP_BELLS: &[Doorbell] = &[Doorbell::Futex, Doorbell::Spin];

/// The doorbells of the slow-consumer section in a default run: the default one, one kernel
/// object, and the spin doorbell for contrast.
const DEFAULT_SLOW_BELLS: &[Doorbell] = &[Doorbell::Futex, Doorbell::SysvSem, Doorbell::Spin];

/// Arguments of `shmchan bench`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Every measurement runs in forked processes (pinned to two CPUs when there are two).
Throughput: the producer writes every word of every record, the consumer checks every word and
counts the records of a timed window after a warm-up. Round trip: 8-byte ping-pong timed into an
HDR histogram, with the peer answering at once (busy) and with both sides asleep before every
message (blocking; each doorbell interleaved with its bare kernel object). Idle: the CPU time of
receivers waiting on empty channels. Slow consumer: the CPU time of a producer that outruns its
consumer. Throughput and round trips are also ratios against the pipe measured in the same run;
the pipe therefore runs in every such section that runs anything.

Byte channels (--only bytes): 64 B and 4 KiB messages through a byte channel (Channel<Bytes>),
copying (send/recv_into) and in place (reserve+commit/peek), same workload and processes as
throughput, against the typed channel of the same record size in the same style and a Unix
socket measured alongside (ratios: × typed, × socket). Async round trip (--only async):
the 8-byte ping-pong with AsyncSender/AsyncReceiver on a tokio current-thread runtime in both
processes, against the blocking API on the same doorbell (POSIX mq) and on the futex doorbell,
busy (each row alone) and blocking (the rows interleaved message by message); ratios: × pipe,
async / blocking. Each of these sections runs its references whenever one of its own rows
runs.

A default run measures every size and style for the futex and spin doorbells, and the other
doorbells at the smallest size, unbatched, plus both issue-9 sections; --only selects from
every combination (see --list).

Exit status: 0 when every selected measurement succeeded (n/a rows included), 2 when some row
is an error (the rest of the run still completes), 130 when interrupted.")]
pub struct BenchArgs {
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,

    /// A run of a few seconds for CI: 30 ms windows (unless --duration says otherwise).
    #[arg(long)]
    quick: bool,

    /// Only the contenders whose names start with one of these (comma-separated), from every
    /// combination, in every section that has them; see --list.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    only: Vec<String>,

    /// Record sizes for throughput, comma-separated: powers of two from 8 to 65536, with an
    /// optional K/KiB suffix (default: 8,64,1K,64K). The byte-channel section always measures
    /// 64 B and 4 KiB.
    #[arg(long, value_delimiter = ',', value_parser = parse_size, value_name = "BYTES")]
    sizes: Vec<usize>,

    /// The timed window of each throughput and busy round-trip measurement, in seconds
    /// (default 0.3; 0.03 with --quick). Blocking round trips get 5×, the slow consumer 4×,
    /// the idle receivers 10× (at least 0.2 s). Each window follows a warm-up of a fifth of it
    /// (10 ms to 200 ms).
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    duration: Option<Duration>,

    /// List the contenders and exit.
    #[arg(long)]
    list: bool,
}

/// A bench argument that makes no sense.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// `--sizes`: not a number with an optional K/KiB suffix.
    #[error("{0:?} is not a size (examples: 8, 64, 1K, 64KiB)")]
    NotASize(String),
    /// `--sizes`: the number overflows.
    #[error("{0:?} is too large")]
    TooLarge(String),
    /// `--sizes`: not a power of two from 8 to 65536.
    #[error("{0:?}: record sizes are powers of two from 8 B to 64 KiB")]
    NotARecordSize(String),
    /// `--duration`: not a number.
    #[error("{0:?} is not a number of seconds")]
    NotSeconds(String),
    /// `--duration`: out of range.
    #[error("the duration must be between 0.001 and 600 seconds")]
    DurationRange,
    /// `--only`: a prefix that names no contender (a typo would otherwise measure nothing).
    #[error("--only {0:?} matches no contender (see `shmchan bench --list`)")]
    UnknownContender(String),
}

fn parse_size(s: &str) -> Result<usize, ArgError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (num, mult) = if let Some(n) = lower
        .strip_suffix("kib")
        .or_else(|| lower.strip_suffix('k'))
    {
        (n.to_owned(), 1024)
    } else {
        (lower.strip_suffix('b').unwrap_or(&lower).to_owned(), 1)
    };
    let n: usize = num
        .trim()
        .parse()
        .map_err(|_| ArgError::NotASize(t.to_owned()))?;
    let size = n
        .checked_mul(mult)
        .ok_or_else(|| ArgError::TooLarge(t.to_owned()))?;
    if !(8..=65536).contains(&size) || !size.is_power_of_two() {
        return Err(ArgError::NotARecordSize(t.to_owned()));
    }
    Ok(size)
}

fn parse_secs(s: &str) -> Result<Duration, ArgError> {
    let v: f64 = s
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| ArgError::NotSeconds(s.to_owned()))?;
    if !(0.001..=600.0).contains(&v) {
        return Err(ArgError::DurationRange);
    }
    Ok(Duration::from_secs_f64(v))
}

/// What every measurement of a run shares.
pub struct Cfg {
    /// The CPUs of the first (producer, pinger) and second (consumer, echoer) process.
    pub cpus: [Option<usize>; 2],
    /// Warm-up before each timed window.
    pub warmup: Duration,
    /// The timed window of throughput and busy round trips.
    pub len: Duration,
    /// The timed window of blocking round trips (5 × `len`: p99 needs samples, a blocking
    /// round trip is slow, and a doorbell shares the window with its bare object).
    pub blocking: Duration,
    /// How long the idle receivers wait (10 × `len`, at least 0.2 s).
    pub idle: Duration,
    /// The slow-consumer window (4 × `len`).
    pub slow: Duration,
    /// The kernel limits, read at the start of the run.
    pub limits: sys::Limits,
}

impl Cfg {
    fn new(len: Duration, cpus: [Option<usize>; 2], limits: sys::Limits) -> Cfg {
        Cfg {
            cpus,
            warmup: (len / 5).clamp(Duration::from_millis(10), Duration::from_millis(200)),
            len,
            blocking: len * 5,
            idle: (len * 10).max(Duration::from_millis(200)),
            slow: len * 4,
            limits,
        }
    }

    /// How long a measurement with this timed window may take before its processes are
    /// killed.
    pub fn timeout(&self, window: Duration) -> Duration {
        Duration::from_secs(10) + (self.warmup + window) * 4
    }

    /// The timed window of a round trip section.
    pub fn lat_len(&self, mode: LatMode) -> Duration {
        match mode {
            LatMode::Busy => self.len,
            LatMode::Blocking => self.blocking,
        }
    }
}

/// A throughput contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tp {
    /// A kernel mechanism.
    Base(Base),
    /// shmchan in one style.
    Shm(Shm, Style),
}

impl Tp {
    fn name(self) -> String {
        match self {
            Tp::Base(b) => b.name().to_owned(),
            Tp::Shm(s, st) => s.name(st),
        }
    }

    fn about(self) -> String {
        match self {
            Tp::Base(b) => b.about().to_owned(),
            Tp::Shm(s, st) => s.about(st),
        }
    }

    /// Whether a default run measures it at `size` (`smallest`: the smallest size of the run).
    fn in_default(self, size: usize, smallest: usize) -> bool {
        match self {
            Tp::Base(_) => true,
            Tp::Shm(s, st) => {
                DEFAULT_TP_BELLS.contains(&s.bell) || (st == Style::Unbatched && size == smallest)
            }
        }
    }
}

/// A round-trip contender (one row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lat {
    /// A kernel mechanism.
    Base(Base),
    /// shmchan (unbatched send/recv over two rings).
    Shm(Shm),
    /// A floor without a channel (or the eventfd reference).
    Bare(Bare),
}

impl Lat {
    fn name(self) -> String {
        match self {
            Lat::Base(b) => b.name().to_owned(),
            Lat::Shm(s) => s.name(Style::Unbatched),
            Lat::Bare(b) => b.name().to_owned(),
        }
    }

    /// The floor a row's figures are divided by: the bare cache line when the peer answers at
    /// once; when both sides sleep, the doorbell's own bare kernel object.
    fn floor(self, mode: LatMode) -> Option<String> {
        match (mode, self) {
            (LatMode::Busy, _) => Some(Bare::CacheLine.name().to_owned()),
            (LatMode::Blocking, Lat::Shm(s)) => s.bare_object().map(|b| b.name().to_owned()),
            (LatMode::Blocking, Lat::Bare(b)) => Some(b.name().to_owned()),
            (LatMode::Blocking, Lat::Base(_)) => None,
        }
    }

    fn about(self, mode: LatMode) -> String {
        match self {
            Lat::Base(b) => b.about().to_owned(),
            Lat::Shm(s) => format!(
                "shmchan {} ring, {} doorbell, send/recv{}",
                s.kind,
                s.bell,
                match (mode, s.bare_object()) {
                    (LatMode::Blocking, Some(b)) =>
                        format!(", zero spin window, interleaved with {}", b.name()),
                    _ => String::new(),
                }
            ),
            Lat::Bare(b) => b.about().to_owned(),
        }
    }

    /// Whether a default run measures it.
    fn in_default(self) -> bool {
        match self {
            Lat::Shm(s) => s.kind == RingKind::Spsc || DEFAULT_TP_BELLS.contains(&s.bell),
            _ => true,
        }
    }
}

/// One round-trip measurement: one contender, or a doorbell interleaved with its bare object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LatJob {
    One(Lat),
    Pair(Shm, Bare),
}

impl LatJob {
    /// Its rows, in table order (the bare object first, right above its doorbell).
    fn rows(self) -> Vec<Lat> {
        match self {
            LatJob::One(c) => vec![c],
            LatJob::Pair(s, b) => vec![Lat::Bare(b), Lat::Shm(s)],
        }
    }
}

fn spsc(bell: Doorbell) -> Shm {
    Shm {
        kind: RingKind::Spsc,
        bell,
    }
}

/// Every throughput contender, in table order (pipe first).
fn all_tp() -> Vec<Tp> {
    let mut v: Vec<Tp> = BASES.iter().map(|&b| Tp::Base(b)).collect();
    for &kind in KINDS {
        for &bell in DOORBELLS {
            for &style in STYLES {
                v.push(Tp::Shm(Shm { kind, bell }, style));
            }
        }
    }
    v
}

/// Every round-trip contender of a section, in table order (pipe first).
fn all_lat(mode: LatMode) -> Vec<Lat> {
    all_lat_jobs(mode)
        .into_iter()
        .flat_map(LatJob::rows)
        .collect()
}

/// Every round-trip measurement of a section, in table order (pipe first).
fn all_lat_jobs(mode: LatMode) -> Vec<LatJob> {
    let mut v = Vec::new();
    match mode {
        LatMode::Busy => {
            v.extend(BASES.iter().map(|&b| LatJob::One(Lat::Base(b))));
            v.push(LatJob::One(Lat::Bare(Bare::CacheLine)));
            for &kind in KINDS {
                for &bell in DOORBELLS {
                    v.push(LatJob::One(Lat::Shm(Shm { kind, bell })));
                }
            }
        }
        LatMode::Blocking => {
            v.push(LatJob::One(Lat::Base(Base::Pipe)));
            if !DOORBELLS.contains(&Doorbell::EventFd) {
                // Otherwise it comes paired with the eventfd doorbell below.
                v.push(LatJob::One(Lat::Bare(Bare::EventFd)));
            }
            for &bell in DOORBELLS {
                let s = spsc(bell);
                if let Some(b) = s.bare_object() {
                    v.push(LatJob::Pair(s, b));
                }
            }
        }
    }
    v
}

/// Every contender of the idle and slow-consumer sections (one SPSC channel per doorbell).
fn all_bells() -> Vec<Shm> {
    DOORBELLS.iter().map(|&b| spsc(b)).collect()
}

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
    fn of(r: Result<T, Error>) -> Outcome<T> {
        match r {
            Ok(v) => Outcome::Ok(v),
            Err(e) => Outcome::Err(Rc::new(e)),
        }
    }

    /// The outcomes of a measurement of `rows` rows: each row's figures, or the same error for
    /// every row.
    fn all(r: Result<Vec<T>, Error>, rows: usize) -> Vec<Outcome<T>> {
        match r {
            Ok(v) => v.into_iter().map(Outcome::Ok).collect(),
            Err(e) => {
                let e = Rc::new(e);
                (0..rows).map(|_| Outcome::Err(Rc::clone(&e))).collect()
            }
        }
    }

    /// The figures, converted.
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ok(v) => Outcome::Ok(f(v)),
            Outcome::Na(why) => Outcome::Na(why),
            Outcome::Err(e) => Outcome::Err(e),
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
    /// The contender whose figures this row is divided by (see `Lat::floor`).
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
    /// Wall time of the whole run.
    pub wall: Duration,
    /// Load averages when the run started and when it ended.
    pub load: [Option<[f64; 3]>; 2],
}

fn selected(only: &[String], name: &str) -> bool {
    only.is_empty() || only.iter().any(|p| name.starts_with(p.as_str()))
}

/// Puts the pipe first in a section that runs anything.
fn with_pipe<C: Copy + PartialEq>(mut v: Vec<C>, pipe: C) -> Vec<C> {
    if !v.is_empty() && !v.contains(&pipe) {
        v.insert(0, pipe);
    }
    v
}

/// The throughput cells of a run, by size: the default plan, or what `--only` selects from
/// every combination (plus the pipe).
fn tp_plan(only: &[String], sizes: &[usize]) -> Vec<(usize, Tp)> {
    let smallest = sizes.iter().copied().min().unwrap_or(8);
    let mut v = Vec::new();
    for &size in sizes {
        let cells: Vec<Tp> = all_tp()
            .into_iter()
            .filter(|&c| {
                if only.is_empty() {
                    c.in_default(size, smallest)
                } else {
                    selected(only, &c.name())
                }
            })
            .collect();
        v.extend(
            with_pipe(cells, Tp::Base(Base::Pipe))
                .into_iter()
                .map(|c| (size, c)),
        );
    }
    v
}

/// The round-trip measurements of a section. In the blocking section a selected doorbell
/// always brings its bare object along (they are measured together).
fn lat_plan(mode: LatMode, only: &[String]) -> Vec<LatJob> {
    let jobs: Vec<LatJob> = all_lat_jobs(mode)
        .into_iter()
        .filter_map(|j| match j {
            LatJob::One(c) => {
                let keep = if only.is_empty() {
                    c.in_default()
                } else {
                    selected(only, &c.name())
                };
                keep.then_some(j)
            }
            LatJob::Pair(s, b) => {
                if selected(only, &Lat::Shm(s).name()) {
                    Some(j)
                } else if selected(only, b.name()) {
                    Some(LatJob::One(Lat::Bare(b)))
                } else {
                    None
                }
            }
        })
        .collect();
    with_pipe(jobs, LatJob::One(Lat::Base(Base::Pipe)))
}

/// The byte-channel section: every row at every size when one of its own rows is selected
/// (the references come along), nothing otherwise.
fn bytes_plan(only: &[String]) -> Vec<(usize, ByteC)> {
    let own: Vec<ByteC> = bytechan::ALL
        .iter()
        .copied()
        .filter(|c| c.own() && selected(only, &c.name()))
        .collect();
    if own.is_empty() {
        return Vec::new();
    }
    let mut v = Vec::new();
    for &size in bytechan::SIZES {
        for &c in bytechan::ALL {
            if !c.own() || own.contains(&c) {
                v.push((size, c));
            }
        }
    }
    v
}

/// The async round-trip section: per mode, the pipe (measured on its own) and the
/// interleaved group of the selected async doorbells with their blocking references; nothing
/// when no async row is selected.
fn async_plan(only: &[String]) -> Vec<(LatMode, Vec<Rt>)> {
    let bells: Vec<Doorbell> = ASYNC_BELLS
        .iter()
        .copied()
        .filter(|&b| selected(only, &async_rt::async_name(b)))
        .collect();
    if bells.is_empty() {
        return Vec::new();
    }
    async_rt::MODES
        .iter()
        .map(|&m| (m, async_rt::group(&bells)))
        .collect()
}

/// The doorbells of the idle section: all of them by default.
fn idle_plan(only: &[String]) -> Vec<Shm> {
    all_bells()
        .into_iter()
        .filter(|s| selected(only, &s.name(Style::Unbatched)))
        .collect()
}

/// The doorbells of the slow-consumer section.
fn slow_plan(only: &[String]) -> Vec<Shm> {
    all_bells()
        .into_iter()
        .filter(|s| {
            if only.is_empty() {
                DEFAULT_SLOW_BELLS.contains(&s.bell)
            } else {
                selected(only, &s.name(Style::Unbatched))
            }
        })
        .collect()
}

fn list() -> ExitCode {
    let row = |name: String, about: String, default: &str| {
        println!("  {name:<38} {default:<11} {about}");
    };
    println!("  {:<38} {:<11} about", "contender", "default run");
    println!("  (1st size: only at the smallest record size of the run, 8 B by default)");
    println!("throughput (every record size):");
    for c in all_tp() {
        let d = match c {
            Tp::Shm(s, st) if !DEFAULT_TP_BELLS.contains(&s.bell) => {
                if st == Style::Unbatched {
                    "1st size"
                } else {
                    "no"
                }
            }
            _ => "yes",
        };
        row(c.name(), c.about(), d);
    }
    for mode in [LatMode::Busy, LatMode::Blocking] {
        println!("round trip, {} section:", mode.name());
        for c in all_lat(mode) {
            row(
                c.name(),
                c.about(mode),
                if c.in_default() { "yes" } else { "no" },
            );
        }
    }
    println!(
        "byte channels ({} and {} messages; --only {}; references run with any row):",
        report::size_label(bytechan::SIZES[0]),
        report::size_label(bytechan::SIZES[bytechan::SIZES.len() - 1]),
        bytechan::PREFIX
    );
    for &c in bytechan::ALL {
        row(c.name(), c.about(), "yes");
    }
    println!(
        "async round trip (8 B ping-pong, busy and blocking; --only {}; references run with \
         any row):",
        async_rt::PREFIX
    );
    row(
        Base::Pipe.name().to_owned(),
        "reference: measured on its own, as in the round-trip sections".to_owned(),
        "yes",
    );
    for r in async_rt::group(ASYNC_BELLS) {
        row(r.name(), r.about(), "yes");
    }
    println!("idle receiver (CPU time while waiting on an empty channel):");
    for s in all_bells() {
        row(
            s.name(Style::Unbatched),
            format!("shmchan SPSC ring, {} doorbell, recv", s.bell),
            "yes",
        );
    }
    println!("slow consumer (the producer's CPU time):");
    for s in all_bells() {
        row(
            s.name(Style::Unbatched),
            format!("shmchan SPSC ring, {} doorbell, send/recv", s.bell),
            if DEFAULT_SLOW_BELLS.contains(&s.bell) {
                "yes"
            } else {
                "no"
            },
        );
    }
    ExitCode::SUCCESS
}

/// Runs `shmchan bench`.
pub fn run(a: BenchArgs) -> Result<ExitCode, ArgError> {
    if a.list {
        return Ok(list());
    }
    let len = a.duration.unwrap_or(if a.quick {
        QUICK_DURATION
    } else {
        DEFAULT_DURATION
    });
    let mut sizes = if a.sizes.is_empty() {
        DEFAULT_SIZES.to_vec()
    } else {
        a.sizes.clone()
    };
    sizes.dedup();

    // Every --only prefix must name something (a typo should not silently measure nothing).
    let names: Vec<String> = all_tp()
        .into_iter()
        .map(Tp::name)
        .chain(all_lat(LatMode::Busy).into_iter().map(Lat::name))
        .chain(all_lat(LatMode::Blocking).into_iter().map(Lat::name))
        .chain(all_bells().into_iter().map(|s| s.name(Style::Unbatched)))
        .chain(bytechan::ALL.iter().map(|c| c.name()))
        .chain(async_rt::group(ASYNC_BELLS).into_iter().map(Rt::name))
        .collect();
    for p in &a.only {
        if !names.iter().any(|n| n.starts_with(p.as_str())) {
            return Err(ArgError::UnknownContender(p.clone()));
        }
    }

    let machine = sys::Machine::probe();
    let cfg = Cfg::new(len, machine.pinning.cpus(), sys::Limits::read());
    let tp_plan = tp_plan(&a.only, &sizes);
    let lat_plan: Vec<(LatMode, Vec<LatJob>)> = [LatMode::Busy, LatMode::Blocking]
        .into_iter()
        .map(|m| (m, lat_plan(m, &a.only)))
        .collect();
    let bytes_plan = bytes_plan(&a.only);
    let async_plan = async_plan(&a.only);
    let idle_plan = idle_plan(&a.only);
    let slow_plan = slow_plan(&a.only);
    let lat_rows = |v: &[LatJob]| v.iter().map(|j| j.rows().len()).sum::<usize>();
    // The async section's rows: the pipe, then its group.
    let total = tp_plan.len()
        + lat_plan.iter().map(|(_, v)| lat_rows(v)).sum::<usize>()
        + bytes_plan.len()
        + async_plan.iter().map(|(_, g)| 1 + g.len()).sum::<usize>()
        + idle_plan.len()
        + slow_plan.len();
    // Progress lines align on the longest name of the run.
    let width = tp_plan
        .iter()
        .map(|(_, c)| c.name())
        .chain(
            lat_plan
                .iter()
                .flat_map(|(_, v)| v.iter().flat_map(|j| j.rows()))
                .map(Lat::name),
        )
        .chain(bytes_plan.iter().map(|(_, c)| c.name()))
        .chain(
            async_plan
                .iter()
                .flat_map(|(_, g)| g.iter().map(|r| r.name())),
        )
        .chain(idle_plan.iter().map(|s| s.name(Style::Unbatched)))
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(20);

    sys::catch_interrupts();
    let load_before = sys::loadavg();
    let started = Instant::now();
    eprintln!(
        "shmchan bench: {total} measurements; windows: {:.2} s (throughput, busy round trip), \
         {:.2} s (blocking round trip), {:.2} s (idle), {:.2} s (slow consumer), each after a \
         {:.2} s warm-up; {}",
        cfg.len.as_secs_f64(),
        cfg.blocking.as_secs_f64(),
        cfg.idle.as_secs_f64(),
        cfg.slow.as_secs_f64(),
        cfg.warmup.as_secs_f64(),
        machine.pinning.describe(&machine)
    );
    let mut done = 0usize;
    let mut tp = Vec::new();
    for &(size, c) in &tp_plan {
        done += 1;
        let name = c.name();
        let out = match c {
            Tp::Base(b) => match b.cannot_carry(size, &cfg.limits) {
                Some(why) => Outcome::Na(why),
                None => Outcome::of(baseline::throughput(b, size, &cfg)),
            },
            Tp::Shm(s, st) => Outcome::of(shm::throughput(s, st, size, &cfg)),
        };
        let out = out.map(|(records, secs)| Count { records, secs });
        eprintln!(
            "[{done:>3}/{total}] throughput  {:>6}  {name:<width$} {}",
            report::size_label(size),
            report::progress_tp(&out, size)
        );
        if interrupted(&out) {
            return Ok(ExitCode::from(130));
        }
        tp.push(TpRow { name, size, out });
    }
    let mut lat = Vec::new();
    for (mode, plan) in &lat_plan {
        let mode = *mode;
        for &job in plan {
            let outs: Vec<Outcome<LatStats>> = match job {
                LatJob::One(c) => vec![Outcome::of(match c {
                    Lat::Base(b) => baseline::latency(b, mode, &cfg),
                    Lat::Shm(s) => shm::latency(s, mode, None, &cfg).map(|r| r.0),
                    Lat::Bare(b) => bare::latency(b, &cfg),
                })],
                LatJob::Pair(s, b) => Outcome::all(
                    match shm::latency(s, mode, Some(b), &cfg) {
                        Ok((chan, Some(bare))) => Ok(vec![bare, chan]),
                        Ok((_, None)) => Err(Error::NoBareFigures),
                        Err(e) => Err(e),
                    },
                    2,
                ),
            };
            for (c, out) in job.rows().into_iter().zip(outs) {
                done += 1;
                let name = c.name();
                eprintln!(
                    "[{done:>3}/{total}] round trip  {:<8}  {name:<width$} {}",
                    mode.name(),
                    report::progress_lat(&out)
                );
                if interrupted(&out) {
                    return Ok(ExitCode::from(130));
                }
                lat.push(LatRow {
                    name,
                    mode,
                    floor: c.floor(mode),
                    out,
                });
            }
        }
    }
    let mut bytes = Vec::new();
    for &(size, c) in &bytes_plan {
        done += 1;
        let name = c.name();
        let out = Outcome::of(bytechan::throughput(c, size, &cfg))
            .map(|(records, secs)| Count { records, secs });
        eprintln!(
            "[{done:>3}/{total}] bytes       {:>6}  {name:<width$} {}",
            report::size_label(size),
            report::progress_tp(&out, size)
        );
        if interrupted(&out) {
            return Ok(ExitCode::from(130));
        }
        bytes.push(ByteRow {
            name,
            size,
            typed: c.typed_ref().name(),
            out,
        });
    }
    let mut aio = Vec::new();
    for (mode, group) in &async_plan {
        let mode = *mode;
        let pipe = Lat::Base(Base::Pipe);
        let mut rows: Vec<(String, Option<String>, Outcome<LatStats>)> = vec![(
            pipe.name(),
            None,
            Outcome::of(baseline::latency(Base::Pipe, mode, &cfg)),
        )];
        let stopped =
            sys::interrupted() || matches!(&rows[0].2, Outcome::Err(e) if e.is_interrupted());
        if !stopped {
            for job in async_rt::jobs(group, mode) {
                let outs = Outcome::all(async_rt::latency(&job, mode, &cfg), job.len());
                for (r, out) in job.iter().zip(outs) {
                    rows.push((r.name(), r.reference().map(Rt::name), out));
                }
                if sys::interrupted() {
                    break;
                }
            }
        }
        for (name, floor, out) in rows {
            done += 1;
            eprintln!(
                "[{done:>3}/{total}] async rt    {:<8}  {name:<width$} {}",
                mode.name(),
                report::progress_lat(&out)
            );
            if interrupted(&out) {
                return Ok(ExitCode::from(130));
            }
            aio.push(LatRow {
                name,
                mode,
                floor,
                out,
            });
        }
    }
    let mut idle = Vec::new();
    if !idle_plan.is_empty() {
        let outs = Outcome::all(shm::idle(&idle_plan, &cfg), idle_plan.len());
        for (s, out) in idle_plan.iter().zip(outs) {
            done += 1;
            let name = s.name(Style::Unbatched);
            eprintln!(
                "[{done:>3}/{total}] idle        {:<8}  {name:<width$} {}",
                "",
                report::progress_idle(&out)
            );
            if interrupted(&out) {
                return Ok(ExitCode::from(130));
            }
            idle.push(BellRow {
                name,
                bell: s.bell,
                out,
            });
        }
    }
    let mut slow = Vec::new();
    for &s in &slow_plan {
        done += 1;
        let name = s.name(Style::Unbatched);
        let out = Outcome::of(shm::slow(s, &cfg));
        eprintln!(
            "[{done:>3}/{total}] slow cons.  {:<8}  {name:<width$} {}",
            "",
            report::progress_slow(&out)
        );
        if interrupted(&out) {
            return Ok(ExitCode::from(130));
        }
        slow.push(BellRow {
            name,
            bell: s.bell,
            out,
        });
    }
    let results = Results {
        machine,
        cfg,
        sizes,
        quick: a.quick,
        tp,
        lat,
        bytes,
        aio,
        idle,
        slow,
        wall: started.elapsed(),
        load: [load_before, sys::loadavg()],
    };
    eprintln!("shmchan bench: done in {:.1} s", results.wall.as_secs_f64());
    if a.json {
        println!("{}", report::json(&results));
    } else {
        print!("{}", report::table(&results));
    }
    let failed = results.tp.iter().any(|r| matches!(r.out, Outcome::Err(_)))
        || results.lat.iter().any(|r| matches!(r.out, Outcome::Err(_)))
        || results
            .bytes
            .iter()
            .any(|r| matches!(r.out, Outcome::Err(_)))
        || results.aio.iter().any(|r| matches!(r.out, Outcome::Err(_)))
        || results
            .idle
            .iter()
            .any(|r| matches!(r.out, Outcome::Err(_)))
        || results
            .slow
            .iter()
            .any(|r| matches!(r.out, Outcome::Err(_)));
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn interrupted<T>(o: &Outcome<T>) -> bool {
    match o {
        Outcome::Err(e) if e.is_interrupted() || sys::interrupted() => {
            eprintln!("shmchan bench: interrupted; children killed, kernel objects removed");
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("8"), Ok(8));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("64b"), Ok(64));
        assert!(parse_size("100").is_err());
        assert!(parse_size("4").is_err());
        assert!(parse_size("128K").is_err());
    }

    #[test]
    fn names_are_unique_and_pipe_comes_first() {
        let names: Vec<String> = all_tp().into_iter().map(Tp::name).collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len());
        assert_eq!(names[0], "pipe");
        for m in [LatMode::Busy, LatMode::Blocking] {
            let names: Vec<String> = all_lat(m).into_iter().map(Lat::name).collect();
            assert_eq!(names[0], "pipe");
            let mut dedup = names.clone();
            dedup.sort();
            dedup.dedup();
            assert_eq!(dedup.len(), names.len());
        }
    }

    #[test]
    fn only_adds_the_pipe() {
        let only = vec!["shmchan-spsc-spin".to_owned()];
        let v: Vec<String> = tp_plan(&only, &[8])
            .into_iter()
            .map(|(_, c)| c.name())
            .collect();
        assert_eq!(
            v,
            [
                "pipe",
                "shmchan-spsc-spin",
                "shmchan-spsc-spin-batch",
                "shmchan-spsc-spin-zerocopy"
            ]
        );
        // Nothing selected in a section: not even the pipe runs there.
        assert!(lat_plan(LatMode::Blocking, &only).is_empty());
    }

    #[test]
    fn default_plan_keeps_other_doorbells_to_the_smallest_size() {
        let plan = tp_plan(&[], &[8, 64]);
        let at = |size: usize| -> Vec<String> {
            plan.iter()
                .filter(|(s, _)| *s == size)
                .map(|(_, c)| c.name())
                .collect()
        };
        let (small, big) = (at(8), at(64));
        assert!(small.contains(&"shmchan-spsc-posix-mq".to_owned()));
        assert!(small.contains(&"shmchan-mpmc-sysv-sem".to_owned()));
        assert!(!small.contains(&"shmchan-spsc-posix-mq-batch".to_owned()));
        assert!(!big.contains(&"shmchan-spsc-posix-mq".to_owned()));
        for n in [
            "shmchan-mpmc-futex-zerocopy",
            "shmchan-spsc-spin-batch",
            "pipe",
        ] {
            assert!(big.contains(&n.to_owned()), "{n}");
        }
        // --only reaches every size and style.
        let only = vec!["shmchan-spsc-sysv-sem".to_owned()];
        assert_eq!(tp_plan(&only, &[8, 64]).len(), 2 * 4);
    }

    #[test]
    fn the_issue_9_sections_run_by_default_and_on_their_own() {
        // Default: both sections, every row.
        let b = bytes_plan(&[]);
        assert_eq!(b.len(), bytechan::SIZES.len() * bytechan::ALL.len());
        let a = async_plan(&[]);
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|(_, g)| g == &async_rt::group(ASYNC_BELLS)));
        // --only bytes: that section with its references, nothing else.
        let only = vec!["bytes".to_owned()];
        assert_eq!(bytes_plan(&only), b);
        assert!(async_plan(&only).is_empty());
        assert!(tp_plan(&only, &[8]).is_empty());
        assert!(lat_plan(LatMode::Busy, &only).is_empty());
        assert!(idle_plan(&only).is_empty() && slow_plan(&only).is_empty());
        // One byte row: the references still come along.
        let only = vec!["bytes-spsc-futex-zero".to_owned()];
        let names: Vec<String> = bytes_plan(&only)
            .into_iter()
            .filter(|(s, _)| *s == 64)
            .map(|(_, c)| c.name())
            .collect();
        assert_eq!(
            names,
            [
                "unix-socket",
                "shmchan-spsc-futex",
                "shmchan-spsc-futex-zerocopy",
                "bytes-spsc-futex-zerocopy"
            ]
        );
        // --only async: that section; a reference alone does not run it.
        let only = vec!["async".to_owned()];
        assert_eq!(async_plan(&only), a);
        assert!(bytes_plan(&only).is_empty() && tp_plan(&only, &[8]).is_empty());
        let only = vec!["unix-socket".to_owned(), "shmchan-spsc-posix-mq".to_owned()];
        assert!(bytes_plan(&only).is_empty() && async_plan(&only).is_empty());
    }

    #[test]
    fn a_blocking_doorbell_brings_its_bare_object() {
        let only = vec!["shmchan-spsc-posix-mq".to_owned()];
        assert_eq!(
            lat_plan(LatMode::Blocking, &only),
            [
                LatJob::One(Lat::Base(Base::Pipe)),
                LatJob::Pair(spsc(Doorbell::PosixMq), Bare::PosixMq)
            ]
        );
        let only = vec!["bare-sysv-sem".to_owned()];
        assert_eq!(
            lat_plan(LatMode::Blocking, &only),
            [
                LatJob::One(Lat::Base(Base::Pipe)),
                LatJob::One(Lat::Bare(Bare::SysvSem))
            ]
        );
        // Every sleeping doorbell has its bare object in a default run.
        let pairs = lat_plan(LatMode::Blocking, &[])
            .into_iter()
            .filter(|j| matches!(j, LatJob::Pair(..)))
            .count();
        assert_eq!(pairs, DOORBELLS.len() - 1);
    }
}
