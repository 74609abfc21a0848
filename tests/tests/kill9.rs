//! The `kill -9` matrix: every backing × doorbell × ring kind, a producer or a consumer killed
//! with SIGKILL at a random moment, several rounds each (see `kill9` in the child program for
//! the checks). The seed is printed and can be fixed with `SHMCHAN_KILL9_SEED`; the number of
//! rounds is `SHMCHAN_KILL9_ROUNDS` (default 3).

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
}
