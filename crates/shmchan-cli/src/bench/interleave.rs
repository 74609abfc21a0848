//! A throughput pair measured in one pair of processes, slice by slice.
//!
//! Two throughput rows measured one after the other, each in processes of its own, see the
//! machine at two moments; on a 2-vCPU VM a two-process stream's rate moves by 2-10x with the
//! host's placement of the two vCPUs from one second to the next, so the ratio of the two can
//! say more about the host than about the two paths (pairs of 64 KiB rows measured so spread
//! over 0.17-4.79x in one run). Here the producer process holds a sender of both channels and
//! the consumer process a receiver of both, and the stream alternates between them in slices
//! of [`slice_len`] (a few milliseconds, in the order [`ORDER`]): each side gets half of every
//! few tens of milliseconds the pair runs, so a change of the host's mood falls on both alike,
//! as the round-trip pairs interleave their round trips one by one.
//!
//! Each slice is the throughput workload of the section, unchanged: the producer writes every
//! word of every record (`fill`), the consumer checks every word (`verify`), with the style's
//! own calls (`send`/`recv`, `send_ref`/`recv_into` above [`BY_REF_ABOVE`], `reserve`+`commit`
//! / `peek`, a byte channel's `send(&[u8])`/`recv_into` or `reserve`/`peek`). The producer
//! ends a slice with a mark record (every word from [`MARK`]) and goes on with the next
//! channel of the order; the consumer reads a channel up to its mark, then the next. It times
//! each slice from the end of the one before to its own mark, and counts its records; a side's
//! rate is its records over the sum of its slices' times, after a warm-up. The producer is at
//! most a ring ahead on each channel, and a ring holds far less than a slice, so each slice's
//! time is that channel's stream. A mark or the end marker is told from a record only where the
//! record's check failed, so the marks cost the per-record loop nothing; what it has beyond a
//! section's loop is one branch on the style (the same every time, on both sides alike) and
//! a look at the clock every few hundred records.
//!
//! The control pair (the copying row against itself at 8 and 64 B, see `pairs`) shows what
//! this resolves in each run: `shmchan bench --only shmchan-spsc-futex --sizes 8,64` prints it
//! (medians 0.99-1.01x in the runs of 2026-12-08). With the order `a b a b` instead, the first
//! side came out about 1 % ahead (a temporary build, a row against itself: medians
//! 1.00-1.02x).

use std::time::{Duration, Instant};

use shmchan::{Bytes, Channel, Receiver, Sender};

use super::bytechan::{self, ByteC};
use super::pairs::Side;
use super::proc::{run_pair, Ctl};
use super::shm::{by_size, capacity_for, heap_record, Shm, Style, BY_REF_ABOVE};
use super::workload::{bytes, fill, fill_bytes, malformed, verify, verify_bytes, Aligned, END};
use super::{Cfg, Error};

/// The first word of a slice's mark record (every word `MARK ^ i`, as `fill` writes it).
pub const MARK: u64 = END - 1;

/// The order of the slices, `a b b a` over and over: each side follows the other as often
/// as it follows itself, and opens a round as often, so that neither gains from its place.
const ORDER: [usize; 4] = [0, 1, 1, 0];

/// How long one slice lasts: a sixteenth of the timed window, between 1 and 10 ms (30 slices
/// of each side in a default run's 300 ms per side).
pub fn slice_len(cfg: &Cfg) -> Duration {
    (cfg.len / 16).clamp(Duration::from_millis(1), Duration::from_millis(10))
}

/// What the consumer's read of one record found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    /// The record with the expected sequence number, checked.
    Record,
    /// The end of a slice.
    Mark,
    /// The producer's end marker.
    End,
}

/// Which marker a record that failed its check is, if any; the check's error otherwise.
#[cold]
#[inline(never)]
fn marker_of(rec: &[u64], err: super::workload::CheckError) -> Result<Got, Error> {
    if verify(rec, MARK).is_ok() {
        Ok(Got::Mark)
    } else if verify(rec, END).is_ok() {
        Ok(Got::End)
    } else {
        Err(err.into())
    }
}

/// [`marker_of`] for a message read as bytes.
#[cold]
#[inline(never)]
fn marker_of_bytes<const W: usize>(
    rec: &[u8],
    err: super::workload::CheckError,
) -> Result<Got, Error> {
    if verify_bytes::<W>(rec, MARK).is_ok() {
        Ok(Got::Mark)
    } else if verify_bytes::<W>(rec, END).is_ok() {
        Ok(Got::End)
    } else {
        Err(err.into())
    }
}

/// A producer of one side: sends record `seq` (or a marker: `MARK`, `END`), every word
/// written.
trait Tx {
    fn send(&mut self, seq: u64) -> Result<(), Error>;
}

/// A consumer of one side: reads the next record and checks it against `seq`.
trait Rx {
    fn recv(&mut self, seq: u64) -> Result<Got, Error>;
}

/// A slice's worth of a side's producer, behind one dynamic call per slice.
trait SliceTx {
    /// Sends records until `until` (looking at the clock every `every` records) or the
    /// consumer's stop, then the mark; `true` when it stopped.
    fn slice(&mut self, until: Instant, every: u64, ctl: &Ctl) -> Result<bool, Error>;
    /// Sends the end marker.
    fn end(&mut self) -> Result<(), Error>;
}

/// A slice's worth of a side's consumer.
trait SliceRx {
    /// Reads and checks records up to the next mark (or end marker): how many, and which
    /// ended them.
    fn slice(&mut self) -> Result<(u64, Got), Error>;
}

struct Seq<T> {
    side: T,
    seq: u64,
}

impl<T: Tx> SliceTx for Seq<T> {
    fn slice(&mut self, until: Instant, every: u64, ctl: &Ctl) -> Result<bool, Error> {
        let stopped = loop {
            for _ in 0..every {
                self.side.send(self.seq)?;
                self.seq += 1;
            }
            if ctl.stopped() {
                break true;
            }
            if Instant::now() >= until {
                break false;
            }
        };
        self.side.send(MARK)?;
        Ok(stopped)
    }

    fn end(&mut self) -> Result<(), Error> {
        self.side.send(END)
    }
}

impl<T: Rx> SliceRx for Seq<T> {
    fn slice(&mut self) -> Result<(u64, Got), Error> {
        let first = self.seq;
        loop {
            match self.side.recv(self.seq)? {
                Got::Record => self.seq += 1,
                end => return Ok((self.seq - first, end)),
            }
        }
    }
}

/// A typed sender in a style.
struct TypedTx<const W: usize> {
    tx: Sender<[u64; W]>,
    style: Style,
    /// The record of a large `send_ref` (on the heap, as in the section).
    heap: Box<[u64; W]>,
}

impl<const W: usize> Tx for TypedTx<W> {
    #[inline]
    fn send(&mut self, seq: u64) -> Result<(), Error> {
        match self.style {
            Style::ZeroCopy => {
                let mut slot = self.tx.reserve().map_err(Error::transfer("reserve"))?;
                fill(&mut slot[..], seq);
                slot.commit();
            }
            _ if W * 8 > BY_REF_ABOVE => {
                fill(&mut self.heap[..], seq);
                self.tx
                    .send_ref(&self.heap)
                    .map_err(Error::transfer("send_ref"))?;
            }
            _ => {
                let mut rec = Aligned([0u64; W]);
                fill(&mut rec.0, seq);
                self.tx.send(rec.0).map_err(Error::transfer("send"))?;
            }
        }
        Ok(())
    }
}

/// A typed receiver in a style.
struct TypedRx<const W: usize> {
    rx: Receiver<[u64; W]>,
    style: Style,
    heap: Box<[u64; W]>,
}

impl<const W: usize> Rx for TypedRx<W> {
    #[inline]
    fn recv(&mut self, seq: u64) -> Result<Got, Error> {
        let recv_err = Error::transfer::<shmchan::RecvError>("recv");
        match self.style {
            Style::ZeroCopy => {
                let r = self.rx.peek().map_err(recv_err)?;
                match verify(&r[..], seq) {
                    Ok(()) => Ok(Got::Record),
                    Err(e) => marker_of(&r[..], e),
                }
            }
            _ if W * 8 > BY_REF_ABOVE => {
                self.rx.recv_into(&mut self.heap).map_err(recv_err)?;
                match verify(&self.heap[..], seq) {
                    Ok(()) => Ok(Got::Record),
                    Err(e) => marker_of(&self.heap[..], e),
                }
            }
            _ => {
                // Checked where `recv` returned it, as in the section.
                let got = self.rx.recv();
                match &got {
                    Ok(r) => match verify(r, seq) {
                        Ok(()) => Ok(Got::Record),
                        Err(e) => marker_of(r, e),
                    },
                    Err(e) => Err(recv_err(*e)),
                }
            }
        }
    }
}

/// A byte channel's sender in a style.
struct BytesTx<const W: usize> {
    tx: Sender<Bytes>,
    style: Style,
}

impl<const W: usize> Tx for BytesTx<W> {
    #[inline]
    fn send(&mut self, seq: u64) -> Result<(), Error> {
        match self.style {
            Style::ZeroCopy => {
                let mut slot = self.tx.reserve(W * 8).map_err(Error::transfer("reserve"))?;
                fill_bytes::<W>(&mut slot, seq)?;
                slot.commit();
            }
            _ => {
                let mut rec = Aligned([0u64; W]);
                fill(&mut rec.0, seq);
                self.tx
                    .send(bytes(&rec.0))
                    .map_err(Error::transfer("send"))?;
            }
        }
        Ok(())
    }
}

/// A byte channel's receiver in a style.
struct BytesRx<const W: usize> {
    rx: Receiver<Bytes>,
    style: Style,
    buf: Vec<u8>,
}

impl<const W: usize> Rx for BytesRx<W> {
    #[inline]
    fn recv(&mut self, seq: u64) -> Result<Got, Error> {
        let recv_err = Error::transfer::<shmchan::RecvError>("recv");
        match self.style {
            Style::ZeroCopy => {
                let m = self.rx.peek().map_err(recv_err)?;
                match verify_bytes::<W>(&m, seq) {
                    Ok(()) => Ok(Got::Record),
                    Err(e) => marker_of_bytes::<W>(&m, e),
                }
            }
            _ => {
                self.rx.recv_into(&mut self.buf).map_err(recv_err)?;
                match verify_bytes::<W>(&self.buf, seq) {
                    Ok(()) => Ok(Got::Record),
                    Err(e) => marker_of_bytes::<W>(&self.buf, e),
                }
            }
        }
    }
}

/// One side's channel, created by the parent before the fork.
enum Chan<const W: usize> {
    Typed(Channel<[u64; W]>, Style),
    Bytes(Channel<Bytes>, Style),
}

impl<const W: usize> Chan<W> {
    fn new(side: Side) -> Result<Chan<W>, Error> {
        let typed = |s: Shm, st| Ok(Chan::Typed(s.channel(capacity_for(W * 8), None)?, st));
        match side {
            Side::Tp(s, st @ (Style::Unbatched | Style::ZeroCopy)) => typed(s, st),
            Side::Bytes(ByteC::Typed(st)) => typed(super::spsc(bytechan::BELL), st),
            Side::Bytes(ByteC::Bytes(st)) => Ok(Chan::Bytes(bytechan::channel(W * 8)?, st)),
            other => Err(Error::NotInterleaved(other.name())),
        }
    }

    fn producer(&self) -> Result<Box<dyn SliceTx>, Error> {
        let sender = Error::endpoint("sender");
        Ok(match self {
            Chan::Typed(c, style) => Box::new(Seq {
                side: TypedTx {
                    tx: c.sender().map_err(sender)?,
                    style: *style,
                    heap: heap_record::<W>(),
                },
                seq: 0,
            }),
            Chan::Bytes(c, style) => Box::new(Seq {
                side: BytesTx::<W> {
                    tx: c.sender().map_err(sender)?,
                    style: *style,
                },
                seq: 0,
            }),
        })
    }

    fn consumer(&self) -> Result<Box<dyn SliceRx>, Error> {
        let receiver = Error::endpoint("receiver");
        Ok(match self {
            Chan::Typed(c, style) => Box::new(Seq {
                side: TypedRx {
                    rx: c.receiver().map_err(receiver)?,
                    style: *style,
                    heap: heap_record::<W>(),
                },
                seq: 0,
            }),
            Chan::Bytes(c, style) => Box::new(Seq {
                side: BytesRx::<W> {
                    rx: c.receiver().map_err(receiver)?,
                    style: *style,
                    buf: Vec::with_capacity(W * 8),
                },
                seq: 0,
            }),
        })
    }
}

/// Measures throughput sides `a` and `b` (rows of the throughput or byte-channel section) with
/// `size`-byte records, interleaved slice by slice in one pair of processes: their rates
/// (records per second), `a`'s then `b`'s.
pub fn rates(a: Side, b: Side, size: usize, cfg: &Cfg) -> Result<(f64, f64), Error> {
    by_size!(size, rates_of(a, b, cfg))
}

fn rates_of<const W: usize>(a: Side, b: Side, cfg: &Cfg) -> Result<(f64, f64), Error> {
    let chans = [Chan::<W>::new(a)?, Chan::<W>::new(b)?];
    let slice = slice_len(cfg);
    // Both sides' windows, and a warm-up of each.
    let timeout = cfg.timeout(cfg.len * 2 + cfg.warmup);
    let [_, report] = run_pair(
        ["producer", "consumer"],
        cfg.cpus,
        timeout,
        |ctl| produce(&chans, slice, W * 8, ctl),
        |ctl| consume(&chans, cfg, ctl),
    )?;
    let mut it = report.split_whitespace().map(str::parse::<u64>);
    let mut next = || match it.next() {
        Some(Ok(v)) => Ok(v),
        _ => Err(malformed("consumer", &report)),
    };
    let (na, ta, nb, tb) = (next()?, next()?, next()?, next()?);
    if ta == 0 || tb == 0 {
        return Err(malformed("consumer", &report));
    }
    Ok((na as f64 * 1e9 / ta as f64, nb as f64 * 1e9 / tb as f64))
}

/// Records between two looks at the clock: about a microsecond's worth or more, at least 4.
fn check_every(size: usize) -> u64 {
    (16384 / size.max(1)).clamp(4, 256) as u64
}

fn produce<const W: usize>(
    chans: &[Chan<W>; 2],
    slice: Duration,
    size: usize,
    ctl: &Ctl,
) -> Result<String, Error> {
    let mut sides = [chans[0].producer()?, chans[1].producer()?];
    let every = check_every(size);
    ctl.start_line()?;
    let mut k = 0;
    loop {
        let stopped = sides[ORDER[k % ORDER.len()]].slice(Instant::now() + slice, every, ctl)?;
        k += 1;
        if stopped {
            break;
        }
    }
    for s in sides.iter_mut() {
        s.end()?;
    }
    Ok(k.to_string())
}

fn consume<const W: usize>(chans: &[Chan<W>; 2], cfg: &Cfg, ctl: &Ctl) -> Result<String, Error> {
    let mut sides = [chans[0].consumer()?, chans[1].consumer()?];
    ctl.start_line()?;
    let warm_until = Instant::now() + cfg.warmup;
    // Per side: records and nanoseconds of its timed slices.
    let mut count = [(0u64, 0u64); 2];
    let mut k = 0;
    let mut last = Instant::now();
    loop {
        let i = ORDER[k % ORDER.len()];
        k += 1;
        let (n, got) = sides[i].slice()?;
        if got != Got::Mark {
            return Err(Error::Interleave(
                "the end marker before the consumer stopped",
            ));
        }
        let now = Instant::now();
        if last >= warm_until {
            count[i].0 += n;
            count[i].1 += (now - last).as_nanos() as u64;
        }
        last = now;
        // Stops after a whole round of the order, so that both sides had as many slices,
        // each as often first.
        let window = cfg.len.as_nanos() as u64;
        if k % ORDER.len() == 0 && count[0].1 >= window && count[1].1 >= window {
            break;
        }
    }
    ctl.set_stop();
    // Drain, in the order: slices up to the producer's end marker on one side, then the other
    // side's end marker (the producer sends both after its last mark).
    let ended = loop {
        let i = ORDER[k % ORDER.len()];
        k += 1;
        if sides[i].slice()?.1 == Got::End {
            break i;
        }
    };
    match sides[ended ^ 1].slice()? {
        (_, Got::End) => {}
        _ => {
            return Err(Error::Interleave(
                "records after the other side's end marker",
            ))
        }
    }
    Ok(format!(
        "{} {} {} {}",
        count[0].0, count[0].1, count[1].0, count[1].1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_looks() {
        assert_eq!(check_every(8), 256);
        assert_eq!(check_every(1024), 16);
        assert_eq!(check_every(65536), 4);
    }

    #[test]
    fn marks_are_told_from_records_only_where_the_check_fails() {
        let mut rec = [0u64; 4];
        for (word, got) in [(MARK, Got::Mark), (END, Got::End)] {
            fill(&mut rec, word);
            let err = verify(&rec, 7).unwrap_err();
            assert_eq!(marker_of(&rec, err.clone()).unwrap(), got);
            assert_eq!(marker_of_bytes::<4>(bytes(&rec), err).unwrap(), got);
        }
        // A wrong record is an error, a half-written mark too.
        fill(&mut rec, 9);
        let err = verify(&rec, 7).unwrap_err();
        assert!(marker_of(&rec, err.clone()).is_err());
        fill(&mut rec, MARK);
        rec[3] = 0;
        assert!(marker_of(&rec, err).is_err());
        // Every slice order gives each side as many slices, each as often first.
        assert_eq!(ORDER.iter().filter(|&&i| i == 0).count(), ORDER.len() / 2);
        assert_eq!(ORDER[0], ORDER[ORDER.len() - 1]);
    }
}
