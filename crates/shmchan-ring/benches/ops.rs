//! One thread, one push then one pop per record, 8-byte records: the work each implementation
//! does per operation when no other core touches its cache lines (`spsc-batch`: 64 records per
//! push and per pop, for what batching saves per record). Meant to be run under
//! callgrind, which counts instructions, not seconds, so the figures repeat exactly on a noisy
//! machine (unlike `throughput`, whose cross-core figures depend on the machine's state):
//!
//! ```text
//! cargo bench -p shmchan-ring --bench ops --no-run
//! B=$(ls -t target/release/deps/ops-* | grep -v '\.d$' | head -1)
//! for w in none spsc spsc-with spsc-batch rtrb mpmc mpmc-with array-queue; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null $B $w 2>&1 | grep Collected
//! done
//! ```
//!
//! Subtract the `none` run (start-up) and divide by `SHMCHAN_OPS_RECORDS` (default 1,000,000)
//! for instructions per push + pop. Without valgrind it prints the wall time per push + pop.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

use std::hint::black_box;
use std::time::Instant;

use shmchan_ring::RingKind;

mod common;
use common::HeapRing;

const CAPACITY: u32 = 4096;

/// `n` times: push one record through producer `$p` and pop it through consumer `$c` (SPSC or
/// MPMC handles), by byte slices when `$bytes`, else in place through the closure forms;
/// evaluates to the sum of the values popped.
macro_rules! push_pop {
    ($p:ident, $c:ident, $bytes:expr, $n:expr) => {{
        let (mut sum, mut out) = (0u64, [0u8; 8]);
        for v in 0..$n {
            let v = black_box(v);
            if $bytes {
                $p.try_push(&v.to_ne_bytes()).unwrap();
                $c.try_pop(&mut out).unwrap();
                sum = sum.wrapping_add(u64::from_ne_bytes(out));
            } else {
                // SAFETY: the slot holds 8 writable bytes aligned to 8.
                $p.try_push_with(|s| unsafe { s.cast::<u64>().write(v) })
                    .unwrap();
                // SAFETY: the slot holds the 8 published bytes, aligned to 8.
                let got = $c.try_pop_with(|s| unsafe { s.cast::<u64>().read() });
                sum = sum.wrapping_add(got.unwrap());
            }
        }
        sum
    }};
}

/// Our SPSC ring: `n` records pushed and popped one at a time, by byte slices when `BYTES`.
/// Each case is its own function, so the loop is compiled for that case alone (no per-record
/// test of which case runs, registers allocated for this loop only).
#[inline(never)]
fn ours_spsc<const BYTES: bool>(n: u64) -> u64 {
    let h = HeapRing::new(RingKind::Spsc, CAPACITY);
    // SAFETY: exactly one producer and one consumer.
    let (mut p, mut c) = unsafe {
        (
            h.ring.spsc_producer().unwrap(),
            h.ring.spsc_consumer().unwrap(),
        )
    };
    push_pop!(p, c, BYTES, n)
}

/// [`ours_spsc`] for our MPMC ring, one producer and one consumer handle.
#[inline(never)]
fn ours_mpmc<const BYTES: bool>(n: u64) -> u64 {
    let h = HeapRing::new(RingKind::Mpmc, CAPACITY);
    let (mut p, mut c) = (
        h.ring.mpmc_producer().unwrap(),
        h.ring.mpmc_consumer().unwrap(),
    );
    push_pop!(p, c, BYTES, n)
}

/// Our SPSC ring, 64 records per call: `push_batch` of 64 then `pop_batch` of 64 (`n` rounded
/// up to a multiple of 64; the extra records are zeros), for the per-record cost of batching.
#[inline(never)]
fn ours_spsc_batch(n: u64) -> u64 {
    const BATCH: usize = 64;
    let h = HeapRing::new(RingKind::Spsc, CAPACITY);
    // SAFETY: exactly one producer and one consumer.
    let (mut p, mut c) = unsafe {
        (
            h.ring.spsc_producer().unwrap(),
            h.ring.spsc_consumer().unwrap(),
        )
    };
    let (mut buf, mut sum) = ([0u8; 8 * BATCH], 0u64);
    for first in (0..n).step_by(BATCH) {
        for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
            let v = first + i as u64;
            chunk.copy_from_slice(&(if v < n { v } else { 0 }).to_ne_bytes());
        }
        assert_eq!(p.push_batch(black_box(&buf)), BATCH);
        assert_eq!(c.pop_batch(black_box(&mut buf)), BATCH);
        for chunk in buf.chunks_exact(8) {
            sum = sum.wrapping_add(u64::from_ne_bytes(chunk.try_into().unwrap()));
        }
    }
    sum
}

/// `rtrb`, the SPSC reference.
#[inline(never)]
fn rtrb_spsc(n: u64) -> u64 {
    let (mut p, mut c) = rtrb::RingBuffer::<u64>::new(CAPACITY as usize);
    let mut sum = 0u64;
    for v in 0..n {
        p.push(black_box(v)).unwrap();
        sum = sum.wrapping_add(c.pop().unwrap());
    }
    sum
}

/// crossbeam's `ArrayQueue`, the MPMC reference.
#[inline(never)]
fn array_queue(n: u64) -> u64 {
    let q = crossbeam_queue::ArrayQueue::<u64>::new(CAPACITY as usize);
    let mut sum = 0u64;
    for v in 0..n {
        q.push(black_box(v)).unwrap();
        sum = sum.wrapping_add(q.pop().unwrap());
    }
    sum
}

/// Pushes and pops `n` records through `case`; returns the sum of the values popped.
fn run(case: &str, n: u64) -> Option<u64> {
    Some(match case {
        "none" => 0,
        "spsc" => ours_spsc::<true>(n),
        "spsc-with" => ours_spsc::<false>(n),
        "spsc-batch" => ours_spsc_batch(n),
        "mpmc" => ours_mpmc::<true>(n),
        "mpmc-with" => ours_mpmc::<false>(n),
        "rtrb" => rtrb_spsc(n),
        "array-queue" => array_queue(n),
        _ => return None,
    })
}

#[cfg(not(loom))]
fn main() {
    let n: u64 = std::env::var("SHMCHAN_OPS_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // `cargo bench` passes `--bench`; take the first argument that is not a flag.
    let cases: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = [
        "spsc",
        "spsc-with",
        "spsc-batch",
        "rtrb",
        "mpmc",
        "mpmc-with",
        "array-queue",
    ];
    let cases: Vec<&str> = if cases.is_empty() {
        all.to_vec()
    } else {
        cases.iter().map(String::as_str).collect()
    };
    for case in cases {
        let start = Instant::now();
        let Some(sum) = run(case, n) else {
            eprintln!("unknown case {case:?}; cases: none {}", all.join(" "));
            std::process::exit(2);
        };
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        if case != "none" {
            assert_eq!(sum, n * (n - 1) / 2, "records lost or duplicated");
        }
        println!("{case:<12} {ns:>6.2} ns per push + pop");
    }
}

#[cfg(loom)]
fn main() {}
