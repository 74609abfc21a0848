//! The work every contender does, whatever carries the records: the producer writes every word
//! of every record, the consumer checks every word and counts, the pinger times round trips.
//!
//! A record is `size / 8` words; word `i` of record `seq` is `seq ^ i`, so word 0 is the
//! sequence number. The consumer checks each record against the sequence it expects: a lost,
//! duplicated, reordered or torn record fails the measurement. [`END`] in word 0 ends a stream.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shmchan::bytemuck::PodCastError;

use super::Error;

/// Word 0 of the record that ends a stream (never a real sequence number).
pub const END: u64 = u64::MAX;

/// Records per batch for the batched contenders.
pub const BATCH: usize = 64;

/// How many records the consumer counts between two looks at the clock.
const CHECK_EVERY: u64 = 256;

/// Where a producer builds a record of up to a few kilobytes before it sends it: on its stack,
/// 64-byte aligned, in every row alike.
///
/// Why: a copying stream of 64-byte records runs at about half its rate when the producer's
/// record lies at some offsets from a cache line and not at others (on the 2-vCPU AMD EPYC VM
/// of the per-record work, for typed and byte channels alike, measured with a temporary
/// switch that placed the record, not kept: a byte channel's producer with
/// its record at an 8-, 16- or 48-byte offset from a line ran at 0.54-0.60x the typed row, at
/// a 0- or 32-byte offset at 0.92-0.97x; a typed `send_ref` from an 8-byte offset at 0.6x the
/// byte row). A plain local or a heap buffer lies where the compiler or the allocator put it,
/// differently in each row, so two rows compared in one target would be compared at two
/// placements. The offset is not the whole story: a typed record copied into a 64-byte-aligned
/// stack buffer before its send (a temporary build) ran slowly at every offset from 0 to 128,
/// and a typed `send` by value no longer copies from here at all (it writes the value into the
/// slot); the byte rows and `send_ref` still copy from this record.
#[repr(C, align(64))]
pub struct Aligned<const W: usize>(pub [u64; W]);

/// Writes record `seq` into `rec` (every word).
#[inline]
pub fn fill(rec: &mut [u64], seq: u64) {
    for (i, w) in rec.iter_mut().enumerate() {
        *w = seq ^ i as u64;
    }
}

/// A record or message that is not the one the sender wrote, or cannot be read as words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// Another record than the next one in sequence (lost, duplicated or reordered).
    #[error("content check failed: expected the record with sequence number {expected}, received sequence number {received}")]
    WrongRecord {
        /// The sequence number expected.
        expected: u64,
        /// Word 0 of what arrived.
        received: u64,
    },
    /// The right record with a wrong word (torn or corrupted).
    #[error(
        "content check failed: record with sequence number {record}, word {word} is {found:#x}, expected {expected:#x}"
    )]
    WrongWord {
        /// The record's sequence number.
        record: u64,
        /// The first wrong word.
        word: usize,
        /// Its value.
        found: u64,
        /// The value written.
        expected: u64,
    },
    /// A message of another length than was sent.
    #[error("received a {received}-byte message, expected {expected}")]
    WrongLength {
        /// Its length.
        received: usize,
        /// The length sent.
        expected: usize,
    },
    /// A byte slot to be written in place that cannot be viewed as the record's words.
    #[error("a {len}-byte slot is not a run of words: {cast}")]
    SlotNotWords {
        /// The slot's length.
        len: usize,
        /// Why the cast failed (misaligned, or not the record's length).
        cast: PodCastError,
    },
}

/// Checks that `rec` is record `seq` (every word).
#[inline]
pub fn verify(rec: &[u64], seq: u64) -> Result<(), CheckError> {
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
fn mismatch(rec: &[u64], seq: u64) -> CheckError {
    if rec.first() != Some(&seq) {
        return CheckError::WrongRecord {
            expected: seq,
            received: rec.first().copied().unwrap_or_default(),
        };
    }
    let (word, &found) = rec
        .iter()
        .enumerate()
        .find(|(i, w)| **w != seq ^ *i as u64)
        .expect("a mismatch exists");
    CheckError::WrongWord {
        record: seq,
        word,
        found,
        expected: seq ^ word as u64,
    }
}

/// Views words as bytes (records on the wire of the byte-stream baselines).
pub fn bytes(words: &[u64]) -> &[u8] {
    shmchan::bytemuck::cast_slice(words)
}

/// Views words as bytes, writable.
pub fn bytes_mut(words: &mut [u64]) -> &mut [u8] {
    shmchan::bytemuck::cast_slice_mut(words)
}

/// [`fill`] for a record of `W` words written in place as bytes (a byte channel's reserved
/// slot, which is 8-byte aligned: slots are a multiple of 8 bytes),
/// viewed as a `[u64; W]` as the typed rows' records are, so that both kinds of row run the
/// same code around the channel.
#[inline(always)]
pub fn fill_bytes<const W: usize>(rec: &mut [u8], seq: u64) -> Result<(), CheckError> {
    let len = rec.len();
    match shmchan::bytemuck::try_from_bytes_mut::<[u64; W]>(rec) {
        Ok(words) => {
            fill(words, seq);
            Ok(())
        }
        Err(cast) => Err(CheckError::SlotNotWords { len, cast }),
    }
}

/// [`verify`] for a record of `W` words received as bytes: its length, then every word, read
/// as a `[u64; W]` (as the typed rows' records are) in place when the bytes are 8-byte
/// aligned (a byte channel's slot always is; a `Vec<u8>` from the global allocator is on
/// glibc), through a copy otherwise.
///
/// Inline, with the copy out of line: the consumer's loop of a byte row then calls nothing
/// per message, as the typed rows' loop does not (called out of line, with a length known
/// only at run time, it cost the byte rows' consumer a call, a `Result` through memory and a
/// loop over the words per message).
#[inline(always)]
pub fn verify_bytes<const W: usize>(rec: &[u8], seq: u64) -> Result<(), CheckError> {
    if rec.len() != W * 8 {
        return Err(CheckError::WrongLength {
            received: rec.len(),
            expected: W * 8,
        });
    }
    match shmchan::bytemuck::try_from_bytes::<[u64; W]>(rec) {
        Ok(words) => verify(words, seq),
        Err(_) => verify_copied(rec, seq),
    }
}

/// [`verify_bytes`] of bytes that cannot be viewed as words in place (misaligned; their
/// length, a whole number of words, was checked).
#[cold]
#[inline(never)]
fn verify_copied(rec: &[u8], seq: u64) -> Result<(), CheckError> {
    let words: Vec<u64> = rec
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
        .collect();
    verify(&words, seq)
}

/// Word 0 of a record received as bytes (the sequence number, or [`END`]).
#[inline]
pub fn first_word(rec: &[u8]) -> Option<u64> {
    rec.get(..8)
        .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
}

/// The consumer's clock: a warm-up, then a timed window; counts records as they are received.
pub struct Window {
    warm_until: Instant,
    len: Duration,
    total: u64,
    next_check: u64,
    start: Option<(Instant, u64)>,
    done: Option<(u64, Duration)>,
}

impl Window {
    /// Starts the warm-up now.
    pub fn new(warmup: Duration, len: Duration) -> Window {
        Window {
            warm_until: Instant::now() + warmup,
            len,
            total: 0,
            next_check: CHECK_EVERY,
            start: None,
            done: None,
        }
    }

    /// Counts `n` more received (and checked) records; `true` once the timed window is over.
    #[inline]
    pub fn add(&mut self, n: u64) -> bool {
        self.total += n;
        if self.total < self.next_check {
            return false;
        }
        self.look()
    }

    fn look(&mut self) -> bool {
        let now = Instant::now();
        self.next_check = self.total + CHECK_EVERY;
        match self.start {
            None => {
                if now >= self.warm_until {
                    self.start = Some((now, self.total));
                }
                false
            }
            Some((t0, c0)) => {
                let el = now - t0;
                if el >= self.len {
                    self.done = Some((self.total - c0, el));
                    true
                } else {
                    false
                }
            }
        }
    }

    /// The result line: records counted in the window and its length in ns.
    pub fn report(&self) -> String {
        let (n, el) = self.done.unwrap_or_default();
        format!("{n} {}", el.as_nanos())
    }
}

/// Parses [`Window::report`]: `(records, seconds)`.
pub fn parse_window(s: &str) -> Result<(u64, f64), Error> {
    let mut it = s.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(n)), Some(Ok(ns))) if ns > 0 => Ok((n, ns as f64 / 1e9)),
        _ => Err(malformed("consumer", s)),
    }
}

/// The error of a child's result line that does not parse.
pub fn malformed(from: &'static str, report: &str) -> Error {
    Error::Malformed {
        from,
        report: report.to_owned(),
    }
}

/// How a ping-pong treats the answering side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatMode {
    /// The next ping goes out as soon as the pong is in: a peer that answers at once.
    Busy,
    /// Both sides asleep before every message: each side waits [`BLOCKING_GAP`] (busy, so
    /// its own CPU stays awake) before it sends, so that the other side, which spins for at
    /// most a few microseconds before it sleeps, is surely asleep. The pinger's gap lies
    /// outside the timed round trip; the echoer's hold lies inside it and is subtracted.
    /// Sleeping doorbells run with a zero spin window.
    Blocking,
}

/// The wait before each send in [`LatMode::Blocking`].
pub const BLOCKING_GAP: Duration = Duration::from_micros(25);

impl LatMode {
    /// The echoer's hold, called as soon as the ping arrived: in [`LatMode::Blocking`], waits
    /// [`BLOCKING_GAP`] before the pong may go out.
    #[inline]
    pub fn hold(self) {
        // The clock is read only when there is something to hold: a busy echoer reads none,
        // as the bare cache-line echoer it is compared with reads none.
        if self == LatMode::Blocking {
            let until = Instant::now() + BLOCKING_GAP;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }

    /// What the echoer's hold adds to a round trip.
    fn held(self) -> Duration {
        match self {
            LatMode::Busy => Duration::ZERO,
            LatMode::Blocking => BLOCKING_GAP,
        }
    }

    /// `busy` / `blocking`.
    pub fn name(self) -> &'static str {
        match self {
            LatMode::Busy => "busy",
            LatMode::Blocking => "blocking",
        }
    }
}

/// Round-trip statistics in nanoseconds (named with their unit in the JSON report).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct LatStats {
    /// Round trips timed.
    pub samples: u64,
    /// Median.
    #[serde(rename = "p50_ns")]
    pub p50: u64,
    /// 99th percentile.
    #[serde(rename = "p99_ns")]
    pub p99: u64,
    /// 99.9th percentile.
    #[serde(rename = "p999_ns")]
    pub p999: u64,
    /// Slowest.
    #[serde(rename = "max_ns")]
    pub max: u64,
    /// Mean.
    #[serde(rename = "mean_ns")]
    pub mean: f64,
}

impl LatStats {
    /// Parses one statistics group of [`Pinger::report`].
    pub fn parse(s: &str) -> Result<LatStats, Error> {
        let v: Vec<&str> = s.split_whitespace().collect();
        let bad = || malformed("pinger", s);
        if v.len() != 6 {
            return Err(bad());
        }
        let u = |i: usize| v[i].parse::<u64>().map_err(|_| bad());
        Ok(LatStats {
            samples: u(0)?,
            p50: u(1)?,
            p99: u(2)?,
            p999: u(3)?,
            max: u(4)?,
            mean: v[5].parse().map_err(|_| bad())?,
        })
    }

    /// Parses every group of [`Pinger::report`] (one per interleaved contender).
    pub fn parse_all(s: &str) -> Result<Vec<LatStats>, Error> {
        s.split(';').map(LatStats::parse).collect()
    }
}

/// The pinger's clock and histograms: a warm-up, then a timed window of round trips.
///
/// With `k` contenders interleaved, round trip `seq` belongs to contender `seq % k` and goes
/// into its histogram: contenders measured message by message in turn, in the same two
/// processes, see the same machine (the same load from elsewhere, the same CPU frequency).
pub struct Pinger {
    hists: Vec<Histogram<u64>>,
    mode: LatMode,
    warm_until: Instant,
    len: Duration,
    start: Option<Instant>,
}

impl Pinger {
    /// Starts the warm-up now, for `k` interleaved contenders (1 when alone).
    pub fn new(mode: LatMode, warmup: Duration, len: Duration, k: usize) -> Result<Pinger, Error> {
        let hists = (0..k.max(1))
            .map(|_| Histogram::new_with_bounds(1, 60_000_000_000, 3))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Histogram)?;
        Ok(Pinger {
            hists,
            mode,
            warm_until: Instant::now() + warmup,
            len,
            start: None,
        })
    }

    /// Times round trips `rt(seq)` (seq = 0, 1, ...) until the window is over; returns the
    /// next unused sequence number.
    pub fn run(&mut self, mut rt: impl FnMut(u64) -> Result<(), Error>) -> Result<u64, Error> {
        let mut seq = 0u64;
        loop {
            self.gap();
            let t0 = Instant::now();
            rt(seq)?;
            let t1 = Instant::now();
            seq += 1;
            if self.lap(seq - 1, t0, t1) {
                return Ok(seq);
            }
        }
    }

    /// What [`run`](Pinger::run) does before each round trip: in [`LatMode::Blocking`], waits
    /// [`BLOCKING_GAP`] (busy, outside the timed round trip). For loops that cannot go through
    /// `run` (an `async` one).
    #[inline]
    pub fn gap(&self) {
        if self.mode == LatMode::Blocking {
            let until = Instant::now() + BLOCKING_GAP;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }

    /// What [`run`](Pinger::run) does after round trip `seq`, which took from `t0` to `t1`:
    /// records it (after the warm-up); `true` once the window is over (on a whole turn of
    /// the interleaved contenders), when `seq + 1` is the next unused sequence number.
    #[inline]
    pub fn lap(&mut self, seq: u64, t0: Instant, t1: Instant) -> bool {
        let k = self.hists.len() as u64;
        let h = (seq % k) as usize;
        let next = seq + 1;
        match self.start {
            None => {
                // Start on a whole turn, so that every contender gets the same share.
                if t1 >= self.warm_until && next % k == 0 {
                    self.start = Some(t1);
                }
                false
            }
            Some(s) => {
                let rt = (t1 - t0).saturating_sub(self.mode.held());
                self.hists[h].saturating_record(rt.as_nanos() as u64);
                t1 - s >= self.len && next % k == 0
            }
        }
    }

    /// The result line: one statistics group per contender, separated by `;` (see
    /// [`LatStats::parse_all`]).
    pub fn report(&self) -> String {
        let groups: Vec<String> = self
            .hists
            .iter()
            .map(|h| {
                format!(
                    "{} {} {} {} {} {}",
                    h.len(),
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.99),
                    h.value_at_quantile(0.999),
                    h.max(),
                    h.mean()
                )
            })
            .collect();
        groups.join(";")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_verify() {
        let mut r = vec![0u64; 8];
        fill(&mut r, 42);
        assert_eq!(r[0], 42);
        assert!(verify(&r, 42).is_ok());
        assert!(verify(&r, 43)
            .unwrap_err()
            .to_string()
            .contains("sequence number 43"));
        r[5] ^= 1;
        assert!(verify(&r, 42).unwrap_err().to_string().contains("word 5"));
    }

    #[test]
    fn bytes_fill_then_verify() {
        let mut r = vec![0u64; 8];
        fill_bytes::<8>(bytes_mut(&mut r), 7).unwrap();
        assert!(verify(&r, 7).is_ok());
        assert!(fill_bytes::<9>(bytes_mut(&mut r), 7)
            .unwrap_err()
            .to_string()
            .contains("64-byte slot"));
        let b = bytes(&r);
        assert!(verify_bytes::<8>(b, 7).is_ok());
        assert_eq!(first_word(b), Some(7));
        assert!(verify_bytes::<9>(b, 7)
            .unwrap_err()
            .to_string()
            .contains("64-byte message"));
        assert!(verify_bytes::<8>(b, 8)
            .unwrap_err()
            .to_string()
            .contains("sequence number 8"));
        // Misaligned bytes (one past a word boundary) are checked through a copy.
        let mut backing = [0u64; 9];
        let shifted = &mut bytes_mut(&mut backing)[1..65];
        shifted.copy_from_slice(b);
        assert!(verify_bytes::<8>(shifted, 7).is_ok());
        shifted[20] ^= 1;
        assert!(verify_bytes::<8>(shifted, 7)
            .unwrap_err()
            .to_string()
            .contains("word 2"));
    }

    #[test]
    fn window_counts_after_warmup() {
        let mut w = Window::new(Duration::ZERO, Duration::from_millis(5));
        let t = Instant::now();
        while !w.add(1) {}
        let (n, secs) = parse_window(&w.report()).unwrap();
        assert!(n > 0 && secs >= 0.005);
        assert!(t.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn interleaved_contenders_get_their_own_histograms() {
        let mut p =
            Pinger::new(LatMode::Busy, Duration::ZERO, Duration::from_millis(2), 2).unwrap();
        let next = p
            .run(|seq| {
                // Odd round trips are slower.
                let until =
                    Instant::now() + Duration::from_micros(if seq % 2 == 1 { 20 } else { 0 });
                while Instant::now() < until {}
                Ok(())
            })
            .unwrap();
        assert_eq!(next % 2, 0);
        let s = LatStats::parse_all(&p.report()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].samples, s[1].samples);
        assert!(s[1].p50 >= 20_000 && s[0].p50 < 20_000, "{s:?}");
    }
}
