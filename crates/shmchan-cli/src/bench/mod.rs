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
//! - **byte channels** (`--only bytes`): the throughput of 8 B, 64 B and 4 KiB messages through a
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
//! - **slow consumer**: the CPU time of a producer whose consumer cannot keep up;
//! - **death detection**: how long after a peer's `kill -9` a blocked `recv` (or a `send`
//!   blocked on a full ring) returns `Disconnected`, per doorbell (see [`death`]);
//! - **per-record pairs**: the two rows each per-record target compares (zero copy and
//!   copying, SPSC and MPMC, a byte channel and the typed one, the busy round trip and the bare
//!   cache line), measured again together, five rounds, each in one pair of processes (the
//!   throughput pairs alternating slice by slice, see [`interleave`]; the round trips one by
//!   one), for the targets to judge the median of the rounds' ratios rather than two rows
//!   measured minutes apart (see [`pairs`]).
//!
//! Every throughput and round-trip figure of the first three sections and of the async section
//! is also shown as a ratio against the pipe measured in the same run; the byte-channel section
//! divides by its own references instead (the typed channel and the Unix socket), the async
//! section also by the blocking API on the same doorbell. The modules: [`plan`] (every
//! contender, and what a run measures), [`section`] (the eight sections and the one loop that
//! runs them), [`sys`] (machine, limits, names), [`proc`] (the processes), [`workload`] (what
//! each side does), [`baseline`], [`shm`], [`bare`], [`bytechan`] and [`async_rt`] (the
//! contenders), [`pairs`] (the per-record pairs), [`report`] (table and JSON), [`error`] (why a measurement failed).

use std::process::ExitCode;
use std::time::{Duration, Instant};

mod async_rt;
mod bare;
mod baseline;
mod bytechan;
mod death;
mod error;
mod interleave;
mod pairs;
mod plan;
mod proc;
mod report;
mod section;
mod shm;
mod sys;
mod workload;

pub use error::Error;
use plan::spsc;
use section::{BellRow, ByteRow, Count, LatRow, Outcome, Results, Sections, TpRow};
use workload::LatMode;

/// The record sizes of a default run.
const DEFAULT_SIZES: &[usize] = &[8, 64, 1024, 65536];

/// The default timed window of a throughput or busy round-trip measurement; the other
/// sections' windows are multiples of it (see [`Cfg`]).
const DEFAULT_DURATION: Duration = Duration::from_millis(300);

/// The same with `--quick`.
const QUICK_DURATION: Duration = Duration::from_millis(30);

/// Arguments of `shmchan bench`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Every measurement runs in forked processes (pinned to two CPUs when there are two).
Throughput: the producer writes every word of every record, the consumer checks every word and
counts the records of a timed window after a warm-up. Round trip: 8-byte ping-pong timed into an
HDR histogram, with the peer answering at once (busy) and with both sides asleep before every
message (blocking; each doorbell interleaved with its bare kernel object). Idle: the CPU time of
receivers waiting on empty channels. Slow consumer: the CPU time of a producer that outruns its
consumer. Death detection: the time from a peer's kill -9 to Disconnected, for a receiver
blocked in recv and a sender blocked on a full ring, per doorbell. Throughput and round trips are also ratios against the pipe measured in the same run;
the pipe therefore runs in every such section that runs anything.

Byte channels (--only bytes): 8 B, 64 B and 4 KiB messages through a byte channel (Channel<Bytes>),
copying (send/recv_into) and in place (reserve+commit/peek), same workload and processes as
throughput, against the typed channel of the same record size in the same style and a Unix
socket measured alongside (ratios: × typed, × socket). Async round trip (--only async):
the 8-byte ping-pong with AsyncSender/AsyncReceiver on a tokio current-thread runtime in both
processes, against the blocking API on the same doorbell (POSIX mq) and on the futex doorbell,
busy (each row alone) and blocking (the rows interleaved message by message); ratios: × pipe,
async / blocking. Each of these sections runs its references whenever one of its own rows
runs.

A default run measures every size and style for the futex and spin doorbells, and the other
doorbells at the smallest size, unbatched, plus the byte-channel and async round-trip
sections; --only selects from every combination (see --list).

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
    /// 8 B, 64 B and 4 KiB.
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

/// Runs `shmchan bench`.
pub fn run(a: BenchArgs) -> Result<ExitCode, ArgError> {
    if a.list {
        return Ok(plan::list());
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
    plan::check_only(&a.only)?;

    let machine = sys::Machine::probe();
    let cfg = Cfg::new(len, machine.pinning.cpus(), sys::Limits::read());
    let sections = Sections::new(&a.only, &sizes);

    sys::catch_interrupts();
    let load_before = sys::loadavg();
    let started = Instant::now();
    eprintln!(
        "shmchan bench: {} measurements; windows: {:.2} s (throughput, busy round trip), \
         {:.2} s (blocking round trip), {:.2} s (idle), {:.2} s (slow consumer), each after a \
         {:.2} s warm-up; {}",
        sections.total(),
        cfg.len.as_secs_f64(),
        cfg.blocking.as_secs_f64(),
        cfg.idle.as_secs_f64(),
        cfg.slow.as_secs_f64(),
        cfg.warmup.as_secs_f64(),
        machine.pinning.describe(&machine)
    );
    let Ok(rows) = sections.run(&cfg) else {
        return Ok(ExitCode::from(130));
    };
    let results = Results {
        machine,
        cfg,
        sizes,
        quick: a.quick,
        tp: rows.tp,
        lat: rows.lat,
        bytes: rows.bytes,
        aio: rows.aio,
        idle: rows.idle,
        slow: rows.slow,
        death: rows.death,
        pairs: rows.pairs,
        wall: started.elapsed(),
        load: [load_before, sys::loadavg()],
    };
    eprintln!("shmchan bench: done in {:.1} s", results.wall.as_secs_f64());
    if a.json {
        println!("{}", report::json(&results));
    } else {
        print!("{}", report::table(&results));
    }
    Ok(if results.failed() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
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
}
