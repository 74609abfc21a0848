//! Every backing × doorbell × ring kind between real processes, with capacity 2 so that both
//! sides sleep on the doorbell constantly: no lost wake-up (nothing hangs: every wait has a
//! deadline), no record lost, duplicated or torn, and in order per producer.

use std::time::Duration;

use shmchan::{Channel, Doorbell, RingKind};
use shmchan_tests::{kind_name, matrix, BackingKind, ChildGuard, Place, Rec, TempPath};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");
const LONG: Duration = Duration::from_secs(120);
const N: u64 = 20_000;

matrix!(stress_cross_process);

fn stress_cross_process(b: BackingKind, d: Doorbell, k: RingKind) {
    let (kind, door) = (kind_name(k), d.name());
    if b == BackingKind::Anonymous {
        // Anonymous memory is shared by fork: the child program forks itself.
        let out = ChildGuard::spawn(CHILD, &["fork-pipeline", &N.to_string(), kind, door, "2"])
            .wait_ok(LONG);
        assert_eq!(out.trim(), format!("received {N}"));
        return;
    }
    let place = Place::new(b);
    let builder = Channel::<Rec>::builder()
        .capacity(2)
        .doorbell(d)
        .backing(place.backing.clone());
    let chan = match k {
        RingKind::Spsc => builder.spsc(),
        _ => builder.mpmc(),
    }
    .create()
    .expect("create");
    // A memfd reaches each child over a socket it inherits; the others are opened by name.
    let spawn = |args: &[&str]| {
        if b == BackingKind::Memfd {
            ChildGuard::spawn_shared(CHILD, args, &chan)
        } else {
            ChildGuard::spawn(CHILD, args)
        }
    };
    let n = N.to_string();
    match k {
        RingKind::Spsc => {
            let consumer = spawn(&["consume", &place.spec, kind, door, &n, "-"]);
            let producer = spawn(&["produce", &place.spec, kind, door, &n, "1"]);
            assert_eq!(producer.wait_ok(LONG).trim(), format!("sent {N}"));
            assert_eq!(consumer.wait_ok(LONG).trim(), format!("received {N}"));
        }
        _ => {
            // Two producer and two consumer processes; this process holds a sender until the
            // producers are done so that consumers see "disconnected" only at the end.
            let hold = chan.sender().unwrap();
            let half = (N / 2).to_string();
            let outs = [TempPath::new("stress"), TempPath::new("stress")];
            let consumers: Vec<_> = outs
                .iter()
                .map(|o| {
                    let o = o.path().to_str().unwrap().to_owned();
                    spawn(&["consume", &place.spec, kind, door, "-", &o])
                })
                .collect();
            let producers: Vec<_> = (0..2)
                .map(|id| spawn(&["produce", &place.spec, kind, door, &half, &id.to_string()]))
                .collect();
            for p in producers {
                p.wait_ok(LONG);
            }
            drop(hold);
            for c in consumers {
                c.wait_ok(LONG);
            }
            let mut seen = vec![vec![false; N as usize / 2]; 2];
            let mut total = 0;
            for o in &outs {
                for rec in std::fs::read(o.path()).unwrap().chunks_exact(12) {
                    let p = u32::from_le_bytes(rec[..4].try_into().unwrap()) as usize;
                    let s = u64::from_le_bytes(rec[4..].try_into().unwrap()) as usize;
                    assert!(!seen[p][s], "producer {p} seq {s} delivered twice");
                    seen[p][s] = true;
                    total += 1;
                }
            }
            assert_eq!(total, N, "every record delivered exactly once");
        }
    }
    drop(chan);
}
