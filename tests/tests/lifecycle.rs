//! The lifecycle suite: programs that start in any order, stop, restart, crash and fork around
//! one channel, each a separate process (`shmchan-test-lifecycle`), over every named backing ×
//! doorbell × ring kind (`named_matrix!`).
//!
//! The rules under test, as the docs state them:
//! - `open_or_create`: exactly one process creates, the others open; all agree on the shape.
//! - A receiver drains what was committed before it sees the senders gone; a sender that
//!   attaches later makes the channel live again (`WhenPeersLeave`).
//! - A channel holding unread records is not removed by a drop; once drained, the last process
//!   to leave removes it (`Cleanup::Creator`).
//! - An endpoint is its attaching process's: a forked child's copy refuses with `Forked`.
//! - `last_departure` tells a close from a death.

use std::time::{Duration, Instant};

use shmchan::inspect::{inspect, Inspection};
use shmchan::{
    Backing, Channel, Doorbell, HowLeft, OpenError, RecvTimeoutError, RingKind, WhenPeersLeave,
};
use shmchan_tests::{kind_name, named_matrix, BackingKind, ChildGuard, Place, Rec};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-lifecycle");
const OTHER_CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");
const T: Duration = Duration::from_secs(60);

named_matrix!(
    both_orders_with_open_or_create,
    producer_restarted_into_one_consumer,
    consumer_restarted_while_producer_sends,
    producer_leaves_before_any_consumer,
);

/// A child running `role` with the common arguments.
fn spawn(role: &str, place: &Place, d: Doorbell, k: RingKind, rest: &[&str]) -> ChildGuard {
    let mut args = vec![role, &place.spec, kind_name(k), d.name()];
    args.extend_from_slice(rest);
    ChildGuard::spawn(CHILD, &args)
}

/// A small pseudo-random number (start delays), different in every call.
fn jitter(max: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (t ^ (t >> 7)).wrapping_mul(0x9e37_79b9) % max
}

/// Whether the channel at `place` is gone (for SysV: removed by the last process).
fn is_gone(place: &Place) -> bool {
    matches!(inspect(&place.backing), Err(OpenError::NotFound { .. }))
}

/// Two separate programs started in either order (10 runs, random start delays) each call
/// `open_or_create`: one creates, the other opens, and all 100 records arrive in order. With
/// SysV's default cleanup, the last one to leave removes the drained channel.
fn both_orders_with_open_or_create(b: BackingKind, d: Doorbell, k: RingKind) {
    for run in 0..10 {
        let place = Place::new(b);
        let (ds, dr) = if run % 2 == 0 {
            (jitter(30), 0)
        } else {
            (0, jitter(30))
        };
        let (ds, dr) = (ds.to_string(), dr.to_string());
        let tx = spawn("send", &place, d, k, &[&ds, "0", "100", "disconnect"]);
        let rx = spawn("recv", &place, d, k, &[&dr, "0", "100", "disconnect"]);
        assert_eq!(rx.wait_ok(T).trim(), "received 100", "run {run}");
        assert_eq!(tx.wait_ok(T).trim(), "sent 100", "run {run}");
        if b == BackingKind::SysvKey {
            assert!(
                is_gone(&place),
                "run {run}: the drained channel was left behind"
            );
        }
    }
}

/// One long-lived consumer (this process, waiting for the next producer) and a producer
/// restarted three times: every record arrives once and in order.
fn producer_restarted_into_one_consumer(b: BackingKind, d: Doorbell, k: RingKind) {
    let place = Place::new(b);
    let builder = Channel::<Rec>::builder()
        .backing(place.backing.clone())
        .doorbell(d)
        .capacity(64)
        .when_peers_leave(WhenPeersLeave::Wait);
    let builder = match k {
        RingKind::Spsc => builder.spsc(),
        _ => builder.mpmc(),
    };
    let mut rx = builder.open_or_create_receiver().unwrap();
    let mut next = 0;
    for life in 0..3 {
        let from = (life * 200).to_string();
        let tx = spawn("send", &place, d, k, &["0", &from, "200", "disconnect"]);
        while next < (life + 1) * 200 {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(r) => assert_eq!(r, Rec::new(1, next), "life {life}"),
                Err(e) => panic!("life {life}, record {next}: {e}"),
            }
            next += 1;
        }
        assert_eq!(tx.wait_ok(T).trim(), "sent 200");
        // Between lives: no sender, and the receiver waits instead of ending the stream.
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout),
            "life {life}"
        );
    }
    assert_eq!(rx.last_departure().map(|d| d.how), Some(HowLeft::Closed));
}

/// A producer keeps sending 600 records (waiting for the next consumer while none is there)
/// while the consumer is restarted twice: each consumer takes up where the last one stopped.
fn consumer_restarted_while_producer_sends(b: BackingKind, d: Doorbell, k: RingKind) {
    let place = Place::new(b);
    let tx = spawn("send", &place, d, k, &["0", "0", "600", "wait"]);
    for life in 0..3u64 {
        let from = (life * 200).to_string();
        let rx = spawn("recv", &place, d, k, &["0", &from, "200", "disconnect"]);
        assert_eq!(rx.wait_ok(T).trim(), "received 200", "life {life}");
    }
    assert_eq!(tx.wait_ok(T).trim(), "sent 600");
}

/// A producer that sends and exits before any consumer attached: its records wait in the
/// channel (the default cleanup does not destroy them), a consumer started later gets all of
/// them, and then the drained channel is removed.
fn producer_leaves_before_any_consumer(b: BackingKind, d: Doorbell, k: RingKind) {
    let place = Place::new(b);
    let tx = spawn("send", &place, d, k, &["0", "0", "50", "disconnect"]);
    assert_eq!(tx.wait_ok(T).trim(), "sent 50");
    let Inspection::Channel(info) = inspect(&place.backing).unwrap() else {
        panic!("not a channel")
    };
    assert_eq!(info.len, 50, "the records wait for a consumer");
    assert!(info.live_pids().is_empty());
    let rx = spawn("recv", &place, d, k, &["0", "0", "50", "disconnect"]);
    assert_eq!(rx.wait_ok(T).trim(), "received 50");
    if b == BackingKind::SysvKey {
        assert!(is_gone(&place), "the drained channel was left behind");
    }
}

/// `open_timeout` waits for a channel that does not exist yet: a creator that starts 300 ms
/// later is found.
#[test]
fn open_timeout_waits_for_a_channel_not_created_yet() {
    for b in [BackingKind::SysvKey, BackingKind::File] {
        let place = Place::new(b);
        let d = Doorbell::Futex;
        let tx = spawn(
            "send",
            &place,
            d,
            RingKind::Spsc,
            &["300", "0", "3", "wait"],
        );
        let t = Instant::now();
        let mut rx = Channel::<Rec>::builder()
            .backing(place.backing.clone())
            .open_timeout(Duration::from_secs(20))
            .open_receiver()
            .unwrap_or_else(|e| panic!("{b:?}: {e}"));
        assert!(t.elapsed() >= Duration::from_millis(200), "{b:?}");
        let got: Vec<u64> = rx.iter().map(|r| r.seq).collect();
        assert_eq!(got, [0, 1, 2], "{b:?}");
        tx.wait_ok(T);
    }
}

/// `open_or_create` refuses memory that no other program can name, and everyone must agree
/// on the shape: a difference is an error whoever created the channel.
#[test]
fn open_or_create_agrees_on_the_shape() {
    let e = Channel::<u64>::builder()
        .backing(Backing::anonymous())
        .open_or_create()
        .unwrap_err();
    assert!(matches!(e, OpenError::InvalidConfig { .. }), "{e}");
    let place = Place::new(BackingKind::SysvKey);
    let first = Channel::<u64>::builder()
        .backing(place.backing.clone())
        .mpmc()
        .open_or_create()
        .unwrap();
    for (what, b) in [
        ("kind", Channel::<u64>::builder().spsc()),
        ("capacity", Channel::<u64>::builder().mpmc().capacity(8)),
        (
            "doorbell",
            Channel::<u64>::builder().mpmc().doorbell(Doorbell::Spin),
        ),
        // Left unset, the kind is the default (SPSC): not what was created.
        ("default kind", Channel::<u64>::builder()),
    ] {
        let e = b
            .backing(place.backing.clone())
            .open_or_create()
            .unwrap_err();
        assert!(matches!(e, OpenError::Mismatch { .. }), "{what}: {e}");
    }
    let e = Channel::<u32>::builder()
        .backing(place.backing.clone())
        .mpmc()
        .open_or_create()
        .unwrap_err();
    assert!(matches!(e, OpenError::TypeMismatch { .. }), "{e}");
    drop(first);
}

/// The endpoint inherited across `fork` refuses every call in the child, its drop there does
/// not unregister the parent's, and an endpoint the child takes itself works.
#[test]
fn an_endpoint_used_across_fork_says_so() {
    for k in ["spsc", "mpmc"] {
        let out = ChildGuard::spawn(CHILD, &["fork-misuse", k]).wait_ok(T);
        assert_eq!(out.trim(), "ok", "{k}");
    }
}

/// A receiver whose sender was killed learns that it died (and which process); one whose
/// sender was dropped learns that it closed.
#[test]
fn crash_and_close_are_told_apart() {
    for b in [BackingKind::SysvKey, BackingKind::File] {
        let place = Place::new(b);
        let mut rx = Channel::<Rec>::builder()
            .backing(place.backing.clone())
            .capacity(64) // as the child asks
            .when_peers_leave(WhenPeersLeave::Disconnect)
            .open_or_create_receiver()
            .unwrap();
        // Killed.
        let mut holder = ChildGuard::spawn(
            OTHER_CHILD,
            &["hold", &place.spec, "spsc", "futex", "sender"],
        );
        assert_eq!(holder.read_line(), "ready");
        let pid = holder.pid();
        holder.kill9();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(RecvTimeoutError::Disconnected)
        );
        let d = rx.last_departure().expect("a departure");
        assert_eq!((d.pid, d.how), (pid, HowLeft::Died), "{b:?}: {d}");
        assert!(d.to_string().contains("died"), "{d}");
        // Closed.
        let tx = spawn(
            "send",
            &place,
            Doorbell::Futex,
            RingKind::Spsc,
            &["0", "0", "1", "disconnect"],
        );
        let pid = tx.pid();
        assert_eq!(tx.wait_ok(T).trim(), "sent 1");
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(Rec::new(1, 0)));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(RecvTimeoutError::Disconnected)
        );
        let d = rx.last_departure().expect("a departure");
        assert_eq!((d.pid, d.how), (pid, HowLeft::Closed), "{b:?}: {d}");
    }
}

/// Disconnection is an event, not a state: after the senders have left, a sender that
/// attaches later makes the channel live again, for a receiver following either rule; and a
/// sender whose receivers left keeps its records for the next receiver when it waits for one.
#[test]
fn a_later_peer_makes_the_channel_live_again() {
    let place = Place::new(BackingKind::File);
    let b = || Channel::<u64>::builder().backing(place.backing.clone());
    let chan = b().create().unwrap();
    let mut rx = chan.receiver().unwrap();
    b().open_sender().unwrap().send(1).unwrap(); // sends, and leaves
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(shmchan::RecvError::Disconnected));
    let mut tx = b().open_sender().unwrap();
    assert!(!rx.is_disconnected());
    tx.send(2).unwrap();
    assert_eq!(rx.recv(), Ok(2));
    drop(tx);
    // The receiver leaves too; a restarted producer that waits for the next consumer is not
    // told `Disconnected`, and its records reach the consumer that comes.
    drop(rx);
    let mut tx = b()
        .when_peers_leave(WhenPeersLeave::Wait)
        .open_sender()
        .unwrap();
    assert!(tx.is_disconnected(), "no receiver is live");
    tx.send(3).unwrap();
    let mut rx = b().open_receiver().unwrap();
    assert_eq!(rx.recv(), Ok(3));
    // Following the default rule instead, the producer is told the receivers left.
    drop((rx, tx));
    let mut tx = b().open_sender().unwrap();
    assert_eq!(tx.send(4), Err(shmchan::SendError::Disconnected(4)));
}

/// The departure rule set on a live endpoint takes effect at its next call, either way and
/// back, on both ring kinds and for a clone of it: a sender whose receivers left is told so
/// under `Disconnect`, sends on under `Wait`, and is told so again once switched back (the
/// sending short way looks at the receivers only under `Disconnect`).
#[test]
fn switching_the_departure_rule_takes_effect_at_the_next_call() {
    use shmchan::TrySendError::Disconnected;
    for k in [RingKind::Spsc, RingKind::Mpmc] {
        let b = Channel::<u64>::builder()
            .capacity(8)
            .backing(Backing::anonymous());
        let chan = match k {
            RingKind::Spsc => b.spsc(),
            _ => b.mpmc(),
        }
        .create()
        .unwrap();
        let (mut tx, rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
        tx.try_send(1).unwrap();
        drop(rx);
        assert_eq!(tx.try_send(2), Err(Disconnected(2)), "{k:?}");
        tx.set_when_peers_leave(WhenPeersLeave::Wait);
        assert_eq!(tx.try_send(2), Ok(()), "{k:?}");
        tx.set_when_peers_leave(WhenPeersLeave::Disconnect);
        assert_eq!(tx.try_send(3), Err(Disconnected(3)), "{k:?}");
        if k == RingKind::Mpmc {
            // A clone follows the rule of the sender it was cloned from.
            tx.set_when_peers_leave(WhenPeersLeave::Wait);
            let mut tx2 = tx.try_clone().unwrap();
            assert_eq!(tx2.when_peers_leave(), WhenPeersLeave::Wait);
            assert_eq!(tx2.try_send(3), Ok(()), "{k:?}");
            tx2.set_when_peers_leave(WhenPeersLeave::Disconnect);
            assert_eq!(tx2.try_send(4), Err(Disconnected(4)), "{k:?}");
            tx.set_when_peers_leave(WhenPeersLeave::Disconnect);
        }
        // A receiver that comes back makes the channel live again, under either rule.
        let mut rx = chan.receiver().unwrap();
        assert_eq!(tx.try_send(4), Ok(()), "{k:?}");
        let mut got = Vec::new();
        while let Ok(v) = rx.try_recv() {
            got.push(v);
        }
        let want: &[u64] = if k == RingKind::Mpmc {
            &[1, 2, 3, 4]
        } else {
            &[1, 2, 4]
        };
        assert_eq!(got, want, "{k:?}");
    }
}

/// The README's Quick start, built as two separate programs, started in either order: the
/// consumer prints the producer's records. The programs are the README's code (checked below).
#[test]
fn readme_quick_start_runs_as_two_programs_in_either_order() {
    let producer = env!("CARGO_BIN_EXE_shmchan-test-quickstart-producer");
    let consumer = env!("CARGO_BIN_EXE_shmchan-test-quickstart-consumer");
    for consumer_first in [false, true] {
        let place = Place::new(BackingKind::SysvKey);
        let key = place.spec.trim_start_matches("sysv-key:").to_owned();
        let run = |exe: &str| {
            let mut cmd = std::process::Command::new(exe);
            cmd.env("TICKS_KEY", &key);
            ChildGuard::spawn_cmd(cmd, exe)
        };
        let (out, done) = if consumer_first {
            let c = run(consumer);
            std::thread::sleep(Duration::from_millis(100));
            let p = run(producer);
            (c.wait_ok(T), p.wait_ok(T))
        } else {
            let p = run(producer);
            let done = p.wait_ok(T); // the producer has exited before the consumer starts
            (run(consumer).wait_ok(T), done)
        };
        assert_eq!(out.trim(), "1 100", "consumer first: {consumer_first}");
        assert_eq!(done, "");
        assert!(is_gone(&place), "the drained channel was left behind");
    }
}

#[test]
fn the_quick_start_programs_are_the_readme() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("## Quick start\n\n```rust,no_run\n")
        .expect("a Quick start")
        + "## Quick start\n\n```rust,no_run\n".len();
    let block = &readme[start..];
    let block = &block[..block.find("```\n").unwrap()];
    let programs = include_str!("../src/quickstart.rs");
    let code = programs.split_once("\n\n").unwrap().1;
    assert_eq!(
        block, code,
        "tests/src/quickstart.rs must be the README's Quick start"
    );
}
