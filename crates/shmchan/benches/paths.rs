//! Per-record cost of the copying and zero-copy paths of a typed channel (8-byte records,
//! anonymous memory, futex doorbell), in one process, so that a change to the endpoint layer
//! can be compared before and after without the noise of two processes:
//!
//! - one thread: `try_send` or `try_reserve` + commit, then `try_recv` or `try_peek` + drop,
//!   one record at a time (the ring never holds more than one);
//! - drain: a thread on another CPU fills the ring (1024 records), then this one empties it
//!   with `try_recv` or `try_peek`, timed (the lines come from the other core's cache).
//!
//! - one thread, 8 and 64 bytes: a byte channel's `send` + `recv_into` and `reserve` + `peek`
//!   of an 8-byte and a 64-byte message beside a typed channel's of a `[u64; 1]` and a
//!   `[u64; 8]` (the byte face's own cost; toggle `paths::one_thread_8` or
//!   `paths::one_thread_64` under callgrind, rows `SPSC one thread bytes 8 B send + recv_into`
//!   and so on).
//!
//! - batches of 64, 8, 16 and 64 bytes: 64 `try_send`s, then 64 `try_recv`s (a `[u64; 1]`,
//!   `[u64; 2]` or `[u64; 8]` record, every word written, the record borrowed where it was
//!   received), so that no receive finds the ring just emptied: the shape of a stream whose
//!   receiver lets records gather before it looks. Toggle `paths::batch_sends` or `paths::batch_recvs`
//!   under callgrind for one side's instructions (rows `SPSC batches of 64, 8 B` and
//!   `64 B`; divide by 5 rounds of 1,000,000 records). The same in place (rows ending
//!   `, in place`: `try_reserve` + commit, then `try_peek` + drop; toggle
//!   `paths::batch_reserves` or `paths::batch_peeks`), and for a byte channel (rows
//!   `SPSC batches of 64, bytes 8 B` and `64 B`: `try_send` of a message of 8 or 64 bytes,
//!   then `try_recv_into`; toggle `paths::byte_sends` or `paths::byte_recvs`; in place, rows
//!   ending `, in place`: `try_reserve` + commit, then `try_peek` + drop; toggle
//!   `paths::byte_reserves` or `paths::byte_peeks`).
//!
//! `cargo bench -p shmchan --bench paths`. Figures are ns per record, the median of 5 rounds;
//! compare the rows of one run with each other. `-- WORDS` runs only the rows whose name
//! contains WORDS. On a noisy machine, count instructions instead (they repeat exactly): build
//! with `--no-run`, then
//! `valgrind --tool=callgrind --toggle-collect='paths::one_thread' target/release/deps/paths-* 'SPSC one thread send + recv'`
//! and divide `Collected` by 5,000,000 (5 rounds of 1,000,000 records).
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use shmchan::{Backing, Builder, Bytes, Channel, Doorbell, Receiver, Record, Sender};

/// A channel and its two endpoints.
type Ends<T> = (Channel<T>, Sender<T>, Receiver<T>);

/// The channel `b` describes, with capacity 1024, the futex doorbell and anonymous memory,
/// MPMC or SPSC, and its two endpoints.
fn ends<T: Record>(b: Builder<T>, mpmc: bool) -> Ends<T> {
    let b = b
        .capacity(1024)
        .doorbell(Doorbell::Futex)
        .backing(Backing::anonymous());
    let chan = if mpmc { b.mpmc() } else { b.spsc() }
        .create()
        .expect("channel");
    let (tx, rx) = (
        chan.sender().expect("sender"),
        chan.receiver().expect("receiver"),
    );
    (chan, tx, rx)
}

/// A typed channel of `[u64; W]` records (see [`ends`]) and its two endpoints.
fn pair<const W: usize>(mpmc: bool) -> Ends<[u64; W]> {
    ends(Channel::builder(), mpmc)
}

/// One thread, one record at a time; ns per record.
#[inline(never)]
fn one_thread(mpmc: bool, reserve: bool, peek: bool, n: u64) -> f64 {
    let (_chan, mut tx, mut rx) = pair::<1>(mpmc);
    let t = Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        if reserve {
            let mut g = tx.try_reserve().expect("room");
            g[0] = i;
            g.commit();
        } else {
            tx.try_send([i]).expect("room");
        }
        if peek {
            let g = rx.try_peek().expect("a record");
            sum = sum.wrapping_add(g[0]);
        } else {
            sum = sum.wrapping_add(rx.try_recv().expect("a record")[0]);
        }
    }
    assert_eq!(sum, n * (n - 1) / 2, "records lost");
    t.elapsed().as_nanos() as f64 / n as f64
}

/// One thread, one 8-byte message at a time through a byte channel (`send` + `recv_into`, or
/// `reserve` + commit / `peek`), or one `[u64; 1]` record through a typed channel (`send` +
/// `recv`); ns per message.
#[inline(never)]
fn one_thread_8(bytes: bool, in_place: bool, n: u64) -> f64 {
    one_thread_sized::<1>(bytes, in_place, n)
}

/// [`one_thread_8`] with 64-byte messages and `[u64; 8]` records.
#[inline(never)]
fn one_thread_64(bytes: bool, in_place: bool, n: u64) -> f64 {
    one_thread_sized::<8>(bytes, in_place, n)
}

/// An SPSC byte channel for messages of up to `max` bytes (see [`ends`]) and its two
/// endpoints.
fn byte_pair(max: usize) -> Ends<Bytes> {
    ends(Channel::<Bytes>::builder().max_message(max), false)
}

/// The body of [`one_thread_8`] and [`one_thread_64`]: messages of `W` words (the first one
/// carries the sequence number) or `[u64; W]` records, for the byte face's cost beside the
/// typed one's.
#[inline(always)]
fn one_thread_sized<const W: usize>(bytes: bool, in_place: bool, n: u64) -> f64 {
    let size = W * 8;
    let mut sum = 0u64;
    let t;
    if bytes {
        let (_chan, mut tx, mut rx) = byte_pair(size);
        let mut buf = Vec::with_capacity(size);
        let mut msg = vec![0u8; size];
        t = Instant::now();
        for i in 0..n {
            if in_place {
                let mut g = tx.try_reserve(size).expect("room");
                g[..8].copy_from_slice(&i.to_ne_bytes());
                g.commit();
                let m = rx.try_peek().expect("a message");
                sum = sum.wrapping_add(u64::from_ne_bytes(m[..8].try_into().unwrap()));
            } else {
                msg[..8].copy_from_slice(&i.to_ne_bytes());
                tx.try_send(&msg).expect("room");
                rx.try_recv_into(&mut buf).expect("a message");
                sum = sum.wrapping_add(u64::from_ne_bytes(buf[..8].try_into().unwrap()));
            }
        }
    } else {
        let (_chan, mut tx, mut rx) = pair::<W>(false);
        t = Instant::now();
        for i in 0..n {
            if in_place {
                let mut g = tx.try_reserve().expect("room");
                g[0] = i;
                g.commit();
                sum = sum.wrapping_add(rx.try_peek().expect("a record")[0]);
            } else {
                tx.try_send([i; W]).expect("room");
                sum = sum.wrapping_add(rx.try_recv().expect("a record")[0]);
            }
        }
    }
    assert_eq!(sum, n * (n - 1) / 2, "records lost");
    t.elapsed().as_nanos() as f64 / n as f64
}

/// One thread, records sent 64 at a time and then received 64 at a time (copying, or in
/// place: `try_reserve` + commit, `try_peek` + drop); ns per record.
#[inline(never)]
fn batches<const W: usize>(zero_copy: bool, n: u64) -> f64 {
    let (_chan, mut tx, mut rx) = pair::<W>(false);
    let t = Instant::now();
    let mut sum = 0u64;
    for b in 0..n / 64 {
        if zero_copy {
            batch_reserves(&mut tx, b * 64);
            sum = sum.wrapping_add(batch_peeks(&mut rx));
        } else {
            batch_sends(&mut tx, b * 64);
            sum = sum.wrapping_add(batch_recvs(&mut rx));
        }
    }
    let n = n / 64 * 64;
    assert_eq!(sum, n * (n - 1) / 2, "records lost");
    t.elapsed().as_nanos() as f64 / n as f64
}

/// One thread, messages of `W` words sent 64 at a time and then received 64 at a time with
/// `try_recv_into`, or in place (`try_reserve` + commit, then `try_peek` + drop): a byte
/// channel's [`batches`]; ns per message.
#[inline(never)]
fn byte_batches<const W: usize>(zero_copy: bool, n: u64) -> f64 {
    let (_chan, mut tx, mut rx) = byte_pair(W * 8);
    let mut buf = Vec::with_capacity(W * 8);
    let t = Instant::now();
    let mut sum = 0u64;
    for b in 0..n / 64 {
        if zero_copy {
            byte_reserves::<W>(&mut tx, b * 64);
            sum = sum.wrapping_add(byte_peeks(&mut rx));
        } else {
            byte_sends::<W>(&mut tx, b * 64);
            sum = sum.wrapping_add(byte_recvs(&mut rx, &mut buf));
        }
    }
    let n = n / 64 * 64;
    assert_eq!(sum, n * (n - 1) / 2, "records lost");
    t.elapsed().as_nanos() as f64 / n as f64
}

/// 64 `try_reserve`s of `W`-word messages `first..first + 64`, each written in place (every
/// word, through the slice the guard lends) and committed.
#[inline(never)]
fn byte_reserves<const W: usize>(tx: &mut Sender<Bytes>, first: u64) {
    for i in first..first + 64 {
        let mut g = tx.try_reserve(W * 8).expect("room");
        for (k, w) in g.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&(i ^ k as u64).to_ne_bytes());
        }
        g.commit();
    }
}

/// 64 `try_peek`s, each message read in place and released; the sum of their first words.
#[inline(never)]
fn byte_peeks(rx: &mut Receiver<Bytes>) -> u64 {
    let mut sum = 0u64;
    for _ in 0..64 {
        let g = rx.try_peek().expect("a message");
        let first = std::hint::black_box(&g[..8]);
        sum = sum.wrapping_add(u64::from_ne_bytes(first.try_into().unwrap()));
    }
    sum
}

/// 64 `try_send`s of `W`-word messages `first..first + 64`, every word written.
#[inline(never)]
fn byte_sends<const W: usize>(tx: &mut Sender<Bytes>, first: u64) {
    for i in first..first + 64 {
        let mut r = [0u64; W];
        for (k, w) in r.iter_mut().enumerate() {
            *w = i ^ k as u64;
        }
        tx.try_send(bytemuck::bytes_of(&r)).expect("room");
    }
}

/// 64 `try_recv_into`s into `buf`; the sum of the messages' first words.
#[inline(never)]
fn byte_recvs(rx: &mut Receiver<Bytes>, buf: &mut Vec<u8>) -> u64 {
    let mut sum = 0u64;
    for _ in 0..64 {
        rx.try_recv_into(buf).expect("a message");
        let first = std::hint::black_box(&buf[..8]);
        sum = sum.wrapping_add(u64::from_ne_bytes(first.try_into().unwrap()));
    }
    sum
}

/// 64 `try_send`s of records `first..first + 64`, every word written.
#[inline(never)]
fn batch_sends<const W: usize>(tx: &mut Sender<[u64; W]>, first: u64) {
    for i in first..first + 64 {
        let mut r = [0u64; W];
        for (k, w) in r.iter_mut().enumerate() {
            *w = i ^ k as u64;
        }
        tx.try_send(r).expect("room");
    }
}

/// 64 `try_reserve`s, each record written in place (every word) and committed.
#[inline(never)]
fn batch_reserves<const W: usize>(tx: &mut Sender<[u64; W]>, first: u64) {
    for i in first..first + 64 {
        let mut g = tx.try_reserve().expect("room");
        for (k, w) in g.iter_mut().enumerate() {
            *w = i ^ k as u64;
        }
        g.commit();
    }
}

/// 64 `try_peek`s, each record read in place and released (the guard dropped); the sum of
/// the records' first words.
#[inline(never)]
fn batch_peeks<const W: usize>(rx: &mut Receiver<[u64; W]>) -> u64 {
    let mut sum = 0u64;
    for _ in 0..64 {
        let g = rx.try_peek().expect("a record");
        sum = sum.wrapping_add(std::hint::black_box(&*g)[0]);
    }
    sum
}

/// 64 `try_recv`s; the sum of the records' first words. Each record is borrowed where it
/// was received (`black_box(&r)`), as a caller that checks it in a function of its own does.
#[inline(never)]
fn batch_recvs<const W: usize>(rx: &mut Receiver<[u64; W]>) -> u64 {
    let mut sum = 0u64;
    for _ in 0..64 {
        let r = rx.try_recv().expect("a record");
        sum = sum.wrapping_add(std::hint::black_box(&r)[0]);
    }
    sum
}

/// Another thread fills the ring, this one drains it; ns per drained record.
fn drain(mpmc: bool, peek: bool, rounds: u64) -> f64 {
    let (_chan, mut tx, mut rx) = pair::<1>(mpmc);
    let (go, done) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (go2, done2) = (go.clone(), done.clone());
    let mut total = Duration::ZERO;
    std::thread::scope(|s| {
        s.spawn(move || {
            for r in 0..rounds {
                for i in 0..1024 {
                    tx.try_send([r * 1024 + i]).expect("room");
                }
                go2.wait();
                done2.wait();
            }
        });
        let mut sum = 0u64;
        for _ in 0..rounds {
            go.wait();
            let t = Instant::now();
            for _ in 0..1024 {
                if peek {
                    let g = rx.try_peek().expect("a record");
                    sum = sum.wrapping_add(g[0]);
                } else {
                    sum = sum.wrapping_add(rx.try_recv().expect("a record")[0]);
                }
            }
            total += t.elapsed();
            done.wait();
        }
        let n = rounds * 1024;
        assert_eq!(sum, n * (n - 1) / 2, "records lost");
    });
    total.as_nanos() as f64 / (rounds * 1024) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench -p shmchan --bench paths -- WORDS`: only the rows whose name contains WORDS
    // (one row at a time is how to count its instructions under callgrind).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let only = only.join(" ");
    let wanted = |row: &str| only.is_empty() || row.contains(only.as_str());
    println!("ns per record, 8-byte records (64-byte rows: 64 bytes), median of 5 rounds");
    type Run = fn(bool, bool, u64) -> f64;
    for (size, run) in [(8, one_thread_8 as Run), (64, one_thread_64)] {
        for (what, bytes, in_place) in [
            ("typed", false, false),
            ("bytes", true, false),
            ("typed", false, true),
            ("bytes", true, true),
        ] {
            let ops = match (bytes, in_place) {
                (_, true) => "reserve + peek",
                (true, false) => "send + recv_into",
                (false, false) => "send + recv",
            };
            let name = format!("{what} {size} B {ops}");
            if !wanted(&format!("SPSC one thread {name}")) {
                continue;
            }
            let ns = median((0..5).map(|_| run(bytes, in_place, 1_000_000)).collect());
            println!("  SPSC one thread  {name:<28} {ns:>7.1}");
        }
    }
    for (face, size, run) in [
        ("", 8, batches::<1> as fn(bool, u64) -> f64),
        ("", 16, batches::<2>),
        ("", 64, batches::<8>),
        ("bytes ", 8, byte_batches::<1>),
        ("bytes ", 64, byte_batches::<8>),
    ] {
        for zero_copy in [false, true] {
            let how = if zero_copy { ", in place" } else { "" };
            let name = format!("SPSC batches of 64, {face}{size} B{how}");
            if wanted(&name) {
                let ns = median((0..5).map(|_| run(zero_copy, 1_000_000)).collect());
                println!("  {name:<45} {ns:>7.1}");
            }
        }
    }
    for mpmc in [false, true] {
        let kind = if mpmc { "MPMC" } else { "SPSC" };
        for (name, reserve, peek) in [
            ("send + recv", false, false),
            ("reserve + recv", true, false),
            ("send + peek", false, true),
            ("reserve + peek", true, true),
        ] {
            if !wanted(&format!("{kind} one thread {name}")) {
                continue;
            }
            let ns = median(
                (0..5)
                    .map(|_| one_thread(mpmc, reserve, peek, 1_000_000))
                    .collect(),
            );
            println!("  {kind} one thread  {name:<16} {ns:>7.1}");
        }
        for (name, peek) in [("recv", false), ("peek", true)] {
            if !wanted(&format!("{kind} drain {name}")) {
                continue;
            }
            let ns = median((0..5).map(|_| drain(mpmc, peek, 500)).collect());
            println!("  {kind} drain       {name:<16} {ns:>7.1}");
        }
    }
}
