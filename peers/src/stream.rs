//! Throughput of every contender at one record size, interleaved in time slices in the same two
//! pinned processes: the consumer takes [`SLICE`] of contender 0's stream, then of contender 1's,
//! and so on round and round, so that every contender sees the same machine (on a VM whose two
//! virtual CPUs land on the host in ways that differ several times over, streams measured one
//! after the other do not compare; these do).
//!
//! Slice `j` belongs to contender `j % k`. The consumer opens it ([`Ctl::open_slice`]: the
//! producer waits for this, so no record is written ahead of the clock), receives and checks
//! records for [`SLICE`], counting them and timing the slice, then ends it
//! ([`Ctl::end_slice`]); the producer sends that contender's end marker, and the consumer drains
//! to it, checking every record it drains (not counted). Each contender's sequence runs on from
//! slice to slice. Slices that start in the warm-up are not counted; the window ends on a whole
//! turn once `k` times the window length has passed. A contender's rate is its records counted
//! over its slices' time.

use std::time::{Duration, Instant};

use crate::proc::{run_pair, Ctl};
use crate::{Cfg, Error};

/// The length of one slice of one contender's stream.
pub const SLICE: Duration = Duration::from_millis(20);

/// The producer's half of one contender's stream, set up in the producer's process.
pub trait Produce {
    /// Writes records `*seq`, `*seq + 1`, ... (every word) until slice `j` is over, then the
    /// end marker.
    fn slice(&mut self, ctl: &Ctl, j: u32, seq: &mut u64) -> Result<(), Error>;
}

/// The consumer's half of one contender's stream.
pub trait Consume {
    /// Receives and checks records `*seq`, ... until `clock` says the slice is over; returns
    /// how many.
    fn slice(&mut self, seq: &mut u64, clock: &mut Clock) -> Result<u64, Error>;
    /// Receives and checks records up to the end marker.
    fn drain(&mut self, seq: &mut u64) -> Result<(), Error>;
}

/// One contender's stream, made in the parent before the fork.
pub trait Stream {
    /// Sets up the producer's half in the producer process; setup steps `base + 1..base + 10`.
    fn producer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Produce + 'a>, Error>;
    /// Sets up the consumer's half in the consumer process; setup steps `base + 1..base + 10`.
    fn consumer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Consume + 'a>, Error>;
}

/// The consumer's clock within a slice: looks at the time every `every` records.
pub struct Clock {
    until: Instant,
    every: u64,
    next: u64,
    n: u64,
}

impl Clock {
    fn new(len: Duration, size: usize) -> Clock {
        let every = (16_384 / size as u64).clamp(1, 256);
        Clock {
            until: Instant::now() + len,
            every,
            next: every,
            n: 0,
        }
    }

    /// Counts `c` more records; `true` once the slice is over.
    #[inline]
    pub fn add(&mut self, c: u64) -> bool {
        self.n += c;
        if self.n < self.next {
            return false;
        }
        self.next = self.n + self.every;
        Instant::now() >= self.until
    }
}

/// Measures the throughput of `streams` (records of `size` bytes), interleaved; returns the
/// records per second of each, in order. Errors name the contender (`names`).
pub fn interleaved(
    streams: &[Box<dyn Stream + '_>],
    names: &[&str],
    size: usize,
    cfg: &Cfg,
) -> Result<Vec<f64>, Error> {
    let k = streams.len();
    let named = |i: usize| move |e: Error| Error::msg(format!("{}: {e}", names[i]));
    let turns_len = cfg.timing.len * k as u32;
    let timeout = cfg.timing.warmup + turns_len + Duration::from_secs(30);
    let [_, report] = run_pair(
        ["producer", "consumer"],
        cfg.cpus,
        timeout,
        |ctl: &Ctl| {
            let mut ps = Vec::with_capacity(k);
            for (i, s) in streams.iter().enumerate() {
                ps.push(s.producer(ctl, 10 * i as u32).map_err(named(i))?);
            }
            ctl.start_line()?;
            let mut seqs = vec![0u64; k];
            let mut j = 0u32;
            while ctl.wait_slice(j)? {
                let i = j as usize % k;
                ps[i].slice(ctl, j, &mut seqs[i]).map_err(named(i))?;
                j += 1;
            }
            drop(ps);
            Ok(String::new())
        },
        |ctl: &Ctl| {
            let mut cs = Vec::with_capacity(k);
            for (i, s) in streams.iter().enumerate() {
                cs.push(s.consumer(ctl, 10 * i as u32).map_err(named(i))?);
            }
            ctl.start_line()?;
            let warm_until = Instant::now() + cfg.timing.warmup;
            let mut seqs = vec![0u64; k];
            let mut counted = vec![(0u64, Duration::ZERO); k];
            let mut start: Option<Instant> = None;
            let mut j = 0u32;
            loop {
                let i = j as usize % k;
                ctl.open_slice(j);
                let t0 = Instant::now();
                let mut clock = Clock::new(SLICE, size);
                let n = cs[i].slice(&mut seqs[i], &mut clock).map_err(named(i))?;
                let t1 = Instant::now();
                ctl.end_slice(j);
                cs[i].drain(&mut seqs[i]).map_err(named(i))?;
                if start.is_some() {
                    counted[i].0 += n;
                    counted[i].1 += t1 - t0;
                }
                j += 1;
                if (j as usize).is_multiple_of(k) {
                    match start {
                        None if t1 >= warm_until => start = Some(Instant::now()),
                        Some(s) if t1 - s >= turns_len => break,
                        _ => {}
                    }
                }
            }
            ctl.finish();
            drop(cs);
            let rates: Vec<String> = counted
                .iter()
                .map(|(n, t)| format!("{}", *n as f64 / t.as_secs_f64().max(1e-9)))
                .collect();
            Ok(rates.join(";"))
        },
    )?;
    report
        .split(';')
        .map(crate::work::parse_rate)
        .collect::<Result<Vec<f64>, Error>>()
}
