//! The `kill -9` matrix: every backing × doorbell × ring kind, a producer or a consumer killed
//! with SIGKILL at a random moment, several rounds each (see `kill9` in the child program for
//! the checks: every record a send call returned `Ok` for is received, and nothing is left in
//! the ring once a receiver was told `Disconnected`). The seed is printed and can be fixed
//! with `SHMCHAN_KILL9_SEED`; the number of rounds is `SHMCHAN_KILL9_ROUNDS` (default 3). A
//! long run of one doorbell, in release mode:
//!
//! ```text
//! SHMCHAN_KILL9_ROUNDS=1000 cargo test --release -p shmchan-tests --test kill9 spin
//! ```
//!
//! Each run reports the detection latency of its producers' kills (from the `kill -9` to the
//! consumer's `Disconnected`: p50, p99, max; shown with `--nocapture`). The figures per
//! doorbell, from a long run of every doorbell:
//!
//! ```text
//! SHMCHAN_KILL9_ROUNDS=200 cargo test --release -p shmchan-tests --test kill9 -- --nocapture 2>&1 | grep Disconnected
//! ```
//!
//! Where each detection's time went (the dying process's exit, waiting for a CPU, against
//! the waiter's part), from the kernel's scheduler trace (root, tracefs):
//! `tests/tools/kill9-sched-trace --filter futex` (prints one line per producer kill when
//! `SHMCHAN_KILL9_EACH` is set, on CLOCK_MONOTONIC).
//!
//! With it, a stress test of a receiver that waits for its first sender (a loss the long runs
//! once found).

use std::time::Duration;

use shmchan::{Doorbell, RingKind};
use shmchan_tests::{kind_name, matrix, BackingKind, ChildGuard, Place};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");

matrix!(kill9);

fn kill9(b: BackingKind, d: Doorbell, k: RingKind) {
    let seed: u64 = std::env::var("SHMCHAN_KILL9_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let rounds = std::env::var("SHMCHAN_KILL9_ROUNDS").unwrap_or_else(|_| "3".into());
    let place = Place::new(b);
    eprintln!("kill9 {b:?} {d} {k:?}: SHMCHAN_KILL9_SEED={seed} rounds={rounds}");
    let out = ChildGuard::spawn(
        CHILD,
        &[
            "kill9",
            &place.spec,
            kind_name(k),
            d.name(),
            &seed.to_string(),
            &rounds,
        ],
    )
    .wait_ok(Duration::from_secs(300));
    assert!(out.contains("ok "), "{out}");
    // The run's figures (shown with --nocapture).
    eprintln!("kill9 {b:?} {d} {k:?}: {}", out.trim());
}

/// A receiver waiting for its first sender, polling the way the spin doorbell waits (every
/// try that finds the ring empty asks whether the senders are gone), never takes that
/// sender's arrival for a departure: it is never told `Disconnected` (by a receive or by
/// `is_disconnected`) while the sender connects, and it gets the record.
///
/// What a long `kill -9` run of the spin doorbell once found (the kill itself played no
/// part): a receiver blocked in `recv` from the start got `Disconnected` with nothing
/// received at the moment its sender registered, and the sender's records then sat in the
/// ring. The check ran between the two steps of the registration (live bit, then `ever`);
/// the loom model `first_sender_is_never_a_disconnection` shows the interleaving. Here each
/// round is a fresh channel and two threads, and the window is nanoseconds wide: a stress
/// test. With the racy check put back, every run of the default size failed (5 of 5, with 5
/// to 16 bad rounds of 10,000; on a loaded two-core machine, debug build).
#[test]
fn first_sender_is_never_a_disconnection() {
    use std::sync::atomic::{AtomicBool, Ordering};

    use shmchan::{Backing, Channel, TryRecvError};
    let rounds: u64 = std::env::var("SHMCHAN_FIRST_SENDER_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let mut wrong = Vec::new();
    for round in 0..rounds {
        let chan = Channel::<u64>::builder()
            .capacity(4)
            .doorbell(Doorbell::Spin)
            .backing(Backing::anonymous())
            .create()
            .unwrap();
        let mut rx = chan.receiver().unwrap();
        let start = std::sync::Barrier::new(2);
        // The sender stays until the receiver is done: its departure is never the answer.
        let done = AtomicBool::new(false);
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                let mut tx = chan.sender().unwrap();
                tx.send(round).unwrap();
                while !done.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
            });
            start.wait();
            // Poll the way a spin-doorbell receiver does, tightly while the sender registers.
            let mut got = None;
            for i in 1u32.. {
                if rx.is_disconnected() {
                    got = Some(Err("is_disconnected"));
                    break;
                }
                if i % 16 != 0 {
                    continue;
                }
                match rx.try_recv() {
                    Ok(v) => {
                        got = Some(Ok(v));
                        break;
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => {
                        got = Some(Err("Disconnected"));
                        break;
                    }
                    Err(_) => {
                        got = Some(Err("error"));
                        break;
                    }
                }
                if i % 1024 == 0 {
                    std::thread::yield_now();
                }
            }
            let got = got.unwrap();
            done.store(true, Ordering::Release);
            got
        });
        if got != Ok(round) {
            wrong.push((round, got));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {rounds} rounds saw the first sender's arrival as a departure: {wrong:?}",
        wrong.len()
    );
}
