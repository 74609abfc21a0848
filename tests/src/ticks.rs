//! The two programs of the record-identity suite (`src/bin/ticks_a.rs`, `src/bin/ticks_b.rs`):
//! separately built binaries, each declaring its own `#[repr(C)] struct Tick` in its own
//! module, that meet on one named channel without `.type_name(..)`. This is their shared
//! driver; the record types stay in the binaries, so each program's types carry its own crate
//! and module path.
//!
//! `PROGRAM ROLE BACKING VARIANT N`:
//! - `serve`: create the channel (capacity 64), print `ready`, receive and check N records,
//!   print `received N`.
//! - `feed`: open the channel, send N records, print `sent N`. If the open is refused with
//!   `TypeMismatch`, print `mismatch FIELD` (the first differing field, `-` if none is named)
//!   and the error on the next line, and exit with status 2.

use std::io::Write;
use std::time::Duration;

use shmchan::{Channel, OpenError};

/// A record variant both programs can build and check.
pub trait Tick: shmchan::Pod {
    /// The record for sequence number `seq`.
    fn make(seq: u64) -> Self;
    /// Its sequence number, if the record is the one `make` builds for it.
    fn check(&self) -> Option<u64>;
}

/// The price every variant carries for `seq` (as `f64` or as its bits).
pub fn price(seq: u64) -> f64 {
    100.0 + seq as f64 / 4.0
}

fn fail(msg: String) -> ! {
    eprintln!("ticks: {msg}");
    std::process::exit(1);
}

/// Runs one role (arguments after the variant was dispatched on: ROLE BACKING N).
pub fn run<T: Tick>(role: &str, backing: &str, n: u64) {
    let backing = crate::parse_backing(backing);
    let builder = Channel::<T>::builder()
        .backing(backing)
        .capacity(64)
        .open_timeout(Duration::from_secs(10));
    match role {
        "serve" => {
            let chan = builder
                .create()
                .unwrap_or_else(|e| fail(format!("create: {e}")));
            let mut rx = chan
                .receiver()
                .unwrap_or_else(|e| fail(format!("receiver: {e}")));
            println!("ready");
            let _ = std::io::stdout().flush();
            for i in 0..n {
                let r = rx
                    .recv_timeout(Duration::from_secs(20))
                    .unwrap_or_else(|e| fail(format!("recv {i}: {e}")));
                if r.check() != Some(i) {
                    fail(format!("record {i} is not the one sent"));
                }
            }
            println!("received {n}");
        }
        "feed" => {
            let mut tx = match builder.open_sender() {
                Ok(tx) => tx,
                Err(e @ OpenError::TypeMismatch { .. }) => {
                    let d = e.type_difference();
                    println!(
                        "mismatch {}",
                        d.as_ref().and_then(|d| d.field()).unwrap_or("-")
                    );
                    println!("{e}");
                    let _ = std::io::stdout().flush();
                    std::process::exit(2);
                }
                Err(e) => fail(format!("open: {e}")),
            };
            for i in 0..n {
                tx.send_timeout(T::make(i), Duration::from_secs(20))
                    .unwrap_or_else(|e| fail(format!("send {i}: {e}")));
            }
            println!("sent {n}");
        }
        _ => fail(format!("unknown role {role}")),
    }
}

/// `main` of both programs: `ROLE BACKING VARIANT N`, with `dispatch` running [`run`] for the
/// variant's record type.
pub fn main(dispatch: fn(&str, &str, &str, u64) -> bool) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [role, backing, variant, n] = &args[..] else {
        fail(format!("usage: ROLE BACKING VARIANT N, got {args:?}"));
    };
    let n = n.parse().unwrap_or_else(|_| fail(format!("N: {n}")));
    if !dispatch(role, backing, variant, n) {
        fail(format!("unknown variant {variant}"));
    }
}
