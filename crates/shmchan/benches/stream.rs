//! Streaming throughput of byte channels beside typed channels of the same record size,
//! interleaved: two threads pinned to CPUs 0 and 1, every row in turn for many short windows,
//! and each ratio taken between windows measured within milliseconds of each other.
//!
//! Why interleaved: on a 2-vCPU VM the rate of a two-thread stream moves by 2-10x with the
//! host's placement of the two vCPUs, from one second to the next; rows measured one after the
//! other can land in different placements. Within one placement the rate still depends on
//! which side sets the pace: the `fill` column (the ring's median fill, sampled by the
//! receiver) shows whether a row's receiver kept the ring nearly empty (the sender was the
//! slower side) or let it fill.
//!
//! The producer writes every word of each record, the consumer checks every word (as in
//! `shmchan bench`); a byte row does this on its message viewed as (or read into) the typed
//! row's `[u64; W]`, so that the work around the channel's calls is the same in both rows. Rows: typed `[u64; 1]` and `[u64; 8]`, and byte channels of 8-byte and
//! 64-byte messages (`max_message` the same), copying (`send` / `recv`, `send` / `recv_into`)
//! and in place (`reserve` / `peek`); typed `[u64; 2]` and `[u64; 9]`, 16- and 72-byte
//! records, the slots an 8- and a 64-byte message took when byte channels kept each length
//! in its slot (length word + message), kept as the figures that layout is judged by; 56-byte
//! messages, shorter than their 64-byte slots; and "lane model" rows, a typed channel of the
//! message's size plus an array of two-byte lengths beside it (see `typed_lane`): the model
//! the byte channels' length lane was built from, to measure the real one against. (Its
//! 64-byte copying row ran at 0.55x typed while a typed `send` copied its record through the
//! stack, and as slowly with the lane neither written nor read (a temporary edit of
//! `typed_lane`); since `send` writes its value into the slot, 0.93-0.98x in three runs.)
//!
//! `cargo bench -p shmchan --bench stream`. Each figure is M records/s, the median and best
//! over the windows; each ratio is the median (and range) of the per-window ratios against the
//! typed row named. `-- NAMES` (comma-separated) runs only the rows whose names contain one of
//! them (with their references).
mod common;
use common::pin;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use shmchan::{Backing, Builder, Bytes, Channel, Doorbell};

const WINDOW: u64 = 200_000;
const ROUNDS: usize = 21;
const CAPACITY: usize = 4096;
/// The consumer samples the ring's fill once every this many records.
const SAMPLE: u64 = 64;

/// The last window's mean sampled fill.
static FILL: AtomicU64 = AtomicU64::new(0);

fn fill(rec: &mut [u64], seq: u64) {
    for (i, w) in rec.iter_mut().enumerate() {
        *w = seq ^ i as u64;
    }
}

fn check(rec: &[u64], seq: u64) {
    let bad = rec
        .iter()
        .enumerate()
        .fold(0u64, |a, (i, w)| a | (w ^ seq ^ i as u64));
    assert_eq!(bad, 0, "record {seq} is not what was sent");
}

/// Runs `produce` on CPU 0 and `consume` on CPU 1; the consumer's time for `WINDOW` records.
fn two(produce: impl FnOnce() + Send, consume: impl FnOnce() + Send) -> Duration {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(0);
            start.wait();
            produce();
        });
        let c = s.spawn(|| {
            pin(1);
            start.wait();
            let t = Instant::now();
            consume();
            t.elapsed()
        });
        c.join().expect("consumer")
    })
}

/// Where a producer builds its record: 64-byte aligned, the same in every row.
///
/// A 64-byte record on the stack lies wherever the compiler put that row's locals, and the
/// rate of a copying 64-byte stream depends on it: a byte channel's producer with its record at
/// an 8-byte offset on the stack ran at 0.59-0.63x the typed row (this bench before `Aligned`,
/// 30d399f), whose record happened to lie on a line of its own; with both aligned, at
/// 0.97-1.01x. Since a typed `send` writes its value into the slot (the typed row no longer
/// copies from here), 0.59x, 0.93x and 0.93x in three runs.
#[repr(C, align(64))]
struct Aligned<const W: usize>([u64; W]);

fn typed<const W: usize>(chan: &Channel<[u64; W]>, in_place: bool) -> Duration {
    typed_with(chan, in_place, |_| {}, |_| {})
}

/// A typed channel's stream, with `sent(seq)` called before each record is sent and
/// `received(seq)` after each is received (before it is checked).
fn typed_with<const W: usize>(
    chan: &Channel<[u64; W]>,
    in_place: bool,
    sent: impl Fn(u64) + Send,
    received: impl Fn(u64) + Send,
) -> Duration {
    let (mut tx, mut rx) = (chan.sender().expect("sender"), chan.receiver().expect("rx"));
    two(
        move || {
            let mut rec = Aligned([0u64; W]);
            for seq in 0..WINDOW {
                sent(seq);
                if in_place {
                    let mut g = tx.reserve().expect("reserve");
                    fill(&mut g[..], seq);
                    g.commit();
                } else {
                    fill(&mut rec.0, seq);
                    tx.send(rec.0).expect("send");
                }
            }
        },
        move || {
            let mut sampled = 0;
            for seq in 0..WINDOW {
                if seq % SAMPLE == 0 {
                    sampled += rx.len() as u64;
                }
                if in_place {
                    let g = rx.peek().expect("peek");
                    received(seq);
                    check(&g[..], seq);
                } else {
                    let r = rx.recv().expect("recv");
                    received(seq);
                    check(&r, seq);
                }
            }
            FILL.store(sampled * SAMPLE / WINDOW, Ordering::Relaxed);
        },
    )
}

/// One cache line of a length lane: 32 two-byte lengths.
#[repr(align(64))]
struct LaneLine([std::sync::atomic::AtomicU16; 32]);

/// A model of a byte channel that keeps each message's length in a lane beside the slots
/// instead of in the slot: a typed channel of `[u64; W]` (the message, its slot exactly the
/// message's size) and an array of two-byte lengths, one per ring position, that the producer
/// writes before it publishes and the consumer reads after it received (the channel's
/// publish and receive order them). What the design would cost in memory traffic, before
/// anything of it is built.
fn typed_lane<const W: usize>(
    chan: &Channel<[u64; W]>,
    lane: &[LaneLine],
    in_place: bool,
) -> Duration {
    let mask = (lane.len() * 32 - 1) as u64;
    let at = move |seq: u64| &lane[(seq & mask) as usize / 32].0[(seq & mask) as usize % 32];
    typed_with(
        chan,
        in_place,
        move |seq| at(seq).store((W * 8) as u16, Ordering::Relaxed),
        move |seq| assert_eq!(at(seq).load(Ordering::Relaxed) as usize, W * 8),
    )
}

/// A byte channel's stream of `W`-word messages. The producer fills, and the consumer checks,
/// a `[u64; W]` as the typed rows do (the message viewed as one, or read into one), so that
/// both kinds of row do the same work around the channel's calls.
fn bytes<const W: usize>(chan: &Channel<Bytes>, in_place: bool) -> Duration {
    let (mut tx, mut rx) = (chan.sender().expect("sender"), chan.receiver().expect("rx"));
    assert_eq!(chan.max_message(), W * 8);
    two(
        move || {
            let mut rec = Aligned([0u64; W]);
            for seq in 0..WINDOW {
                if in_place {
                    let mut g = tx.reserve(W * 8).expect("reserve");
                    fill(bytemuck::from_bytes_mut::<[u64; W]>(&mut g[..]), seq);
                    g.commit();
                } else {
                    fill(&mut rec.0, seq);
                    tx.send(bytemuck::bytes_of(&rec.0)).expect("send");
                }
            }
        },
        move || {
            let mut buf = Vec::with_capacity(W * 8);
            let mut sampled = 0;
            for seq in 0..WINDOW {
                if seq % SAMPLE == 0 {
                    sampled += rx.len() as u64;
                }
                if in_place {
                    check(
                        bytemuck::from_bytes::<[u64; W]>(&rx.peek().expect("peek")),
                        seq,
                    );
                } else {
                    rx.recv_into(&mut buf).expect("recv");
                    check(&bytemuck::pod_read_unaligned::<[u64; W]>(&buf), seq);
                }
            }
            FILL.store(sampled * SAMPLE / WINDOW, Ordering::Relaxed);
        },
    )
}

/// Every row's channel: SPSC, [`CAPACITY`], futex doorbell, anonymous shared memory.
fn chan<T: shmchan::Record>(b: Builder<T>) -> Channel<T> {
    b.capacity(CAPACITY)
        .doorbell(Doorbell::Futex)
        .backing(Backing::anonymous())
        .spsc()
        .create()
        .expect("channel")
}

fn typed_chan<const W: usize>() -> Channel<[u64; W]> {
    chan(Channel::<[u64; W]>::builder())
}

fn byte_chan(max: usize) -> Channel<Bytes> {
    chan(Channel::<Bytes>::builder().max_message(max))
}

/// A row: its name, the index of the typed row it is divided by, and one window of it.
type Row<'a> = (String, usize, Box<dyn Fn() -> Duration + 'a>);

/// A channel's two rows: copying (`send` / `copying`) and in place (`reserve` / `peek`),
/// divided by the typed rows at `reference` (copying) and `reference + 1` (in place).
/// `window(in_place)` measures one window.
fn styles<'a>(
    what: &str,
    copying: &str,
    reference: usize,
    window: impl Fn(bool) -> Duration + Clone + 'a,
) -> [Row<'a>; 2] {
    let copy = window.clone();
    [
        (
            format!("{what} send/{copying}"),
            reference,
            Box::new(move || copy(false)),
        ),
        (
            format!("{what} reserve/peek"),
            reference + 1,
            Box::new(move || window(true)),
        ),
    ]
}

fn main() {
    let only = common::only();
    let (t1, t2) = (typed_chan::<1>(), typed_chan::<2>());
    let (t8, t9) = (typed_chan::<8>(), typed_chan::<9>());
    let (b8, b64, b56) = (byte_chan(8), byte_chan(64), byte_chan(56));
    let (l1, l8) = (typed_chan::<1>(), typed_chan::<8>());
    let lane: Vec<LaneLine> = (0..CAPACITY / 32)
        .map(|_| {
            LaneLine(std::array::from_fn(|_| {
                std::sync::atomic::AtomicU16::new(0)
            }))
        })
        .collect();
    // Rows 0 and 1: typed 8 B; rows 6 and 7: typed 64 B (the references).
    let rows: Vec<Row> = [
        styles("typed 8 B", "recv", 0, |p| typed(&t1, p)),
        styles("typed 16 B", "recv", 0, |p| typed(&t2, p)),
        styles("bytes 8 B", "recv_into", 0, |p| bytes::<1>(&b8, p)),
        styles("typed 64 B", "recv", 6, |p| typed(&t8, p)),
        styles("typed 72 B", "recv", 6, |p| typed(&t9, p)),
        styles("bytes 64 B", "recv_into", 6, |p| bytes::<8>(&b64, p)),
        styles("bytes 56 B", "recv_into", 6, |p| bytes::<7>(&b56, p)),
        styles("lane model 8 B", "recv", 0, |p| typed_lane(&l1, &lane, p)),
        styles("lane model 64 B", "recv", 6, |p| typed_lane(&l8, &lane, p)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let wanted: Vec<bool> = rows
        .iter()
        .map(|r| only.is_empty() || only.iter().any(|o| r.0.contains(o.as_str())))
        .collect();
    // A row runs when wanted or when a wanted row is divided by it.
    let runs: Vec<bool> = (0..rows.len())
        .map(|k| wanted[k] || rows.iter().zip(&wanted).any(|(r, &w)| w && r.1 == k))
        .collect();
    if !runs.contains(&true) {
        eprintln!("no row matches {only:?}");
        return;
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut fills: Vec<Vec<u64>> = vec![Vec::new(); rows.len()];
    // Round 0 warms up.
    for round in 0..=ROUNDS {
        for (k, r) in rows.iter().enumerate().filter(|&(k, _)| runs[k]) {
            let d = (r.2)();
            if round > 0 {
                rates[k].push(WINDOW as f64 / d.as_secs_f64() / 1e6);
                fills[k].push(FILL.load(Ordering::Relaxed));
            }
        }
    }
    println!(
        "streaming, two threads on CPUs 0 and 1, capacity {CAPACITY}, {WINDOW} records per \
         window, {ROUNDS} rounds interleaved"
    );
    println!(
        "  {:<28} {:>8} {:>8} {:>9}  {:<22}",
        "row", "median", "best", "fill", "× typed (per window)"
    );
    for (k, r) in rows.iter().enumerate().filter(|&(k, _)| runs[k]) {
        let mut v = rates[k].clone();
        v.sort_by(f64::total_cmp);
        let mut f = fills[k].clone();
        f.sort_unstable();
        let ratio = if r.1 == k {
            String::new()
        } else {
            let mut x: Vec<f64> = rates[k]
                .iter()
                .zip(&rates[r.1])
                .map(|(a, b)| a / b)
                .collect();
            x.sort_by(f64::total_cmp);
            format!(
                "{:.2}x  (range {:.2}-{:.2}) of {}",
                x[x.len() / 2],
                x[0],
                x[x.len() - 1],
                rows[r.1].0
            )
        };
        println!(
            "  {:<28} {:>6.1} M {:>6.1} M {:>5}/{CAPACITY}  {ratio}",
            r.0,
            v[v.len() / 2],
            v[v.len() - 1],
            f[f.len() / 2]
        );
    }
}
