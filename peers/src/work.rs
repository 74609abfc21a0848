//! The work every contender does, whatever carries the records (the same method as `shmchan
//! bench`): the producer writes every word of every record, the consumer checks every word
//! against the sequence it expects and counts (see [`crate::stream`] for the timing); the pinger
//! times round trips of one 8-byte record that the echoer sends straight back.
//!
//! A record is `[u64; W]` (`#[repr(C)]`, plain old data), `W` = size / 8; word `i` of record
//! `seq` is `seq ^ i`, so word 0 is the sequence number. A lost, duplicated, reordered or torn
//! record fails the measurement with the contender's name. [`END`] in word 0 ends a stream.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::Error;

/// Word 0 of the record that ends a stream (never a real sequence number).
pub const END: u64 = u64::MAX;

/// Records per batch for the batched contender.
pub const BATCH: usize = 64;

/// The bytes a throughput ring may hold: capacity is `RING_BYTES / size` records, a power of two
/// clamped to 16..=4096 (4096 records of 8 and 64 B, 16 of 64 KiB), the same for every peer.
pub const RING_BYTES: usize = 1 << 20;

/// The capacity in records of every throughput ring for `size`-byte records.
pub fn capacity_for(size: usize) -> usize {
    (RING_BYTES / size).clamp(16, 4096)
}

/// The capacity of the rings of a ping-pong.
pub const PING_CAPACITY: usize = 64;

/// Records up to this size are built in a 64-byte-aligned local by every producer (see
/// [`with_record`]); larger ones on the heap.
const LOCAL_RECORD_MAX: usize = 4096;

/// A record on a line of its own.
#[repr(C, align(64))]
struct Aligned<const W: usize>([u64; W]);

/// Runs `f` with the zeroed record a producer builds its records in: for records of up to
/// [`LOCAL_RECORD_MAX`] bytes a 64-byte-aligned local, for larger ones a heap buffer, the same
/// for every contender.
///
/// Why: a copying stream of 64-byte records runs at about half its rate when the producer's
/// record lies at some offsets from a cache line and not at others (`shmchan bench`'s
/// workload module has the measurements). A record kept in each contender's own struct or
/// vector lies wherever that contender's allocation put it, so two contenders would be
/// compared at two placements.
#[inline(always)]
pub fn with_record<const W: usize, R>(f: impl FnOnce(&mut [u64; W]) -> R) -> R {
    if W * 8 <= LOCAL_RECORD_MAX {
        let mut rec = Aligned([0u64; W]);
        f(&mut rec.0)
    } else {
        // On the heap without passing through the stack.
        let mut rec: Box<[u64; W]> = vec![0u64; W]
            .into_boxed_slice()
            .try_into()
            .expect("W words");
        f(&mut rec)
    }
}

/// Writes record `seq` into `rec` (every word).
#[inline]
pub fn fill(rec: &mut [u64], seq: u64) {
    for (i, w) in rec.iter_mut().enumerate() {
        *w = seq ^ i as u64;
    }
}

/// Checks that `rec` is record `seq` (every word).
#[inline]
pub fn verify(rec: &[u64], seq: u64) -> Result<(), Error> {
    let bad = rec
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, w)| acc | (w ^ seq ^ i as u64));
    if bad == 0 {
        Ok(())
    } else {
        Err(mismatch(rec, seq))
    }
}

#[cold]
fn mismatch(rec: &[u64], seq: u64) -> Error {
    if rec.first() != Some(&seq) {
        return Error::msg(format!(
            "content check failed: expected the record with sequence number {seq}, received sequence number {}",
            rec.first().copied().unwrap_or_default()
        ));
    }
    let (word, found) = rec
        .iter()
        .enumerate()
        .find(|(i, w)| **w != seq ^ *i as u64)
        .map_or((0, 0), |(i, w)| (i, *w));
    Error::msg(format!(
        "content check failed: record with sequence number {seq}, word {word} is {found:#x}, expected {:#x}",
        seq ^ word as u64
    ))
}

/// [`verify`] for a record received as bytes at any alignment (a serialized message).
#[inline]
pub fn verify_bytes(rec: &[u8], words: usize, seq: u64) -> Result<(), Error> {
    if rec.len() != words * 8 {
        return Err(Error::msg(format!(
            "content check failed: a {}-byte message, expected {}",
            rec.len(),
            words * 8
        )));
    }
    let mut bad = 0u64;
    for (i, c) in rec.chunks_exact(8).enumerate() {
        let w = u64::from_ne_bytes(c.try_into().expect("8 bytes"));
        bad |= w ^ seq ^ i as u64;
    }
    if bad == 0 {
        return Ok(());
    }
    let w: Vec<u64> = rec
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
        .collect();
    Err(mismatch(&w, seq))
}

/// Word 0 of a record received as bytes.
#[inline]
pub fn first_word(rec: &[u8]) -> u64 {
    rec.get(..8)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
}

/// How long to warm up and to measure.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The warm-up before the timed window.
    pub warmup: Duration,
    /// The timed window.
    pub len: Duration,
}

impl Timing {
    /// The deadline for a whole measurement (setup, warm-up, window, drain).
    pub fn timeout(&self) -> Duration {
        self.warmup + self.len + Duration::from_secs(20)
    }
}

/// Parses a consumer's rate (records per second).
pub fn parse_rate(s: &str) -> Result<f64, Error> {
    s.trim()
        .parse()
        .map_err(|_| Error::msg(format!("malformed consumer report {s:?}")))
}

/// Round-trip percentiles, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lat {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Times round trips `rt(seq)` (seq = 0, 1, ...) for `t.len` after `t.warmup` and returns the
/// result line (p50 and p99 in ns), then the next unused sequence number.
pub fn ping(
    t: Timing,
    mut rt: impl FnMut(u64) -> Result<(), Error>,
) -> Result<(String, u64), Error> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| Error::msg(format!("histogram: {e}")))?;
    let warm_until = Instant::now() + t.warmup;
    let mut start = None;
    let mut seq = 0u64;
    loop {
        let t0 = Instant::now();
        rt(seq)?;
        let t1 = Instant::now();
        seq += 1;
        match start {
            None if t1 >= warm_until => start = Some(t1),
            None => {}
            Some(s) => {
                h.saturating_record((t1 - t0).as_nanos() as u64);
                if t1 - s >= t.len {
                    break;
                }
            }
        }
    }
    let line = format!("{} {}", h.value_at_quantile(0.5), h.value_at_quantile(0.99));
    Ok((line, seq))
}

/// Parses the line of [`ping`].
pub fn parse_lat(s: &str) -> Result<Lat, Error> {
    let v: Vec<f64> = s
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v[..] {
        [p50, p99] => Ok(Lat { p50, p99 }),
        _ => Err(Error::msg(format!("malformed pinger report {s:?}"))),
    }
}

/// Calls `$f::<W>(args)` with `W = size / 8` for the record sizes the command accepts.
macro_rules! by_size {
    ($size:expr, $f:ident($($arg:expr),*)) => {
        match $size {
            8 => $f::<1>($($arg),*),
            64 => $f::<8>($($arg),*),
            256 => $f::<32>($($arg),*),
            1024 => $f::<128>($($arg),*),
            4096 => $f::<512>($($arg),*),
            65536 => $f::<8192>($($arg),*),
            s => Err($crate::Error::msg(format!("unsupported record size {s}"))),
        }
    };
}
pub(crate) use by_size;

/// The record sizes [`by_size`] accepts.
pub const SIZES: &[usize] = &[8, 64, 256, 1024, 4096, 65536];
