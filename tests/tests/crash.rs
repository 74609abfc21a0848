//! Dead peers and stale channels: a peer killed with SIGKILL is noticed by a blocked side
//! within the detection bound (on every doorbell), and a channel whose processes all died is
//! reclaimed on creation, while a live one is not.

use std::time::{Duration, Instant};

use shmchan::{
    Channel, Doorbell, OpenError, Receiver, RecvTimeoutError, RingKind, SendTimeoutError, Sender,
};
use shmchan_tests::{kind_name, BackingKind, ChildGuard, Place, Rec};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");

/// The time a blocked side takes to notice a killed peer, measured for every doorbell and both
/// directions. The design bound is 100 ms (a 50 ms sleep slice plus a `/proc` check); the
/// assertion allows for a loaded CI machine.
#[test]
fn blocked_side_notices_a_killed_peer() {
    let mut worst = Duration::ZERO;
    for d in Doorbell::ALL {
        // The eventfd doorbell needs a backing whose peers get its descriptors: a memfd, sent
        // to the child over a socket it inherits.
        let backing = match d {
            Doorbell::EventFd => BackingKind::Memfd,
            _ => BackingKind::SysvKey,
        };
        let spawn = |args: &[&str], chan: &Channel<Rec>| match backing {
            BackingKind::Memfd => ChildGuard::spawn_shared(CHILD, args, chan),
            _ => ChildGuard::spawn(CHILD, args),
        };
        for k in [RingKind::Spsc, RingKind::Mpmc] {
            // A receiver blocked on an empty ring; its only sender is killed.
            let place = Place::new(backing);
            let b = Channel::<Rec>::builder()
                .capacity(4)
                .doorbell(d)
                .backing(place.backing.clone());
            let b = if k == RingKind::Spsc {
                b.spsc()
            } else {
                b.mpmc()
            };
            let chan = b.create().unwrap();
            let mut rx = chan.receiver().unwrap();
            let mut child = spawn(
                &["hold", &place.spec, kind_name(k), d.name(), "sender"],
                &chan,
            );
            assert_eq!(child.read_line(), "ready");
            let killer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                let t = Instant::now();
                child.kill9();
                t
            });
            let r = rx.recv_timeout(Duration::from_secs(10));
            let killed_at = killer.join().unwrap();
            let took = killed_at.elapsed();
            assert_eq!(r, Err(RecvTimeoutError::Disconnected), "{d} {k:?}");
            worst = worst.max(took);
            assert!(took < Duration::from_secs(2), "{d} {k:?}: {took:?}");

            // A sender blocked on a full ring; its only receiver is killed.
            let place = Place::new(backing);
            let b = Channel::<Rec>::builder()
                .capacity(1)
                .doorbell(d)
                .backing(place.backing.clone());
            let b = if k == RingKind::Spsc {
                b.spsc()
            } else {
                b.mpmc()
            };
            let chan = b.create().unwrap();
            let mut tx = chan.sender().unwrap();
            let mut child = spawn(
                &["hold", &place.spec, kind_name(k), d.name(), "receiver"],
                &chan,
            );
            assert_eq!(child.read_line(), "ready");
            tx.send(Rec::new(1, 0)).unwrap();
            let killer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                let t = Instant::now();
                child.kill9();
                t
            });
            let r = tx.send_timeout(Rec::new(1, 1), Duration::from_secs(10));
            let took = killer.join().unwrap().elapsed();
            assert_eq!(
                r,
                Err(SendTimeoutError::Disconnected(Rec::new(1, 1))),
                "{d} {k:?}"
            );
            worst = worst.max(took);
            assert!(took < Duration::from_secs(2), "{d} {k:?}: {took:?}");
        }
    }
    eprintln!("worst time to notice a killed peer: {worst:?}");
}

#[test]
fn stale_channel_is_reclaimed_live_one_is_not() {
    for backing in [BackingKind::SysvKey, BackingKind::File] {
        for d in [Doorbell::Futex, Doorbell::SysvSem, Doorbell::PosixMq] {
            let place = Place::new(backing);
            // A process creates the channel, sends, and dies without cleaning up.
            let out = ChildGuard::spawn(CHILD, &["abandon", &place.spec, "spsc", d.name()])
                .wait_ok(Duration::from_secs(30));
            assert_eq!(out.trim(), "abandoned");
            let info = match shmchan::inspect::inspect(&place.backing).unwrap() {
                shmchan::inspect::Inspection::Channel(i) => i,
                other => panic!("{other:?}"),
            };
            assert_eq!(info.len, 3);
            assert!(info.live_pids().is_empty());

            // Its records are not discarded to make room: creating is refused, with the count.
            let e = Channel::<Rec>::builder()
                .doorbell(d)
                .backing(place.backing.clone())
                .create()
                .unwrap_err();
            assert!(
                matches!(e, OpenError::AlreadyExists { live_pid: None, .. })
                    && e.to_string().contains("holds 3 unread records"),
                "{backing:?} {d}: {e}"
            );
            // A receiver gets them.
            let mut rx = Channel::<Rec>::builder()
                .doorbell(d)
                .backing(place.backing.clone())
                .open_receiver()
                .unwrap();
            let got: Vec<u64> = rx.iter().map(|r| r.seq).collect();
            assert_eq!(got, [0, 1, 2], "{backing:?} {d}");
            drop(rx);

            // Drained and stale: creating again reclaims it (and its doorbell objects) and
            // starts empty.
            let chan = Channel::<Rec>::builder()
                .doorbell(d)
                .backing(place.backing.clone())
                .create()
                .unwrap_or_else(|e| panic!("{backing:?} {d}: {e}"));
            let rx = chan.receiver().unwrap();
            assert_eq!(rx.len(), 0, "a fresh channel");

            // While a live process holds an endpoint, creation fails and names it.
            let mut holder =
                ChildGuard::spawn(CHILD, &["hold", &place.spec, "spsc", d.name(), "sender"]);
            assert_eq!(holder.read_line(), "ready");
            drop(rx);
            let e = Channel::<Rec>::builder()
                .doorbell(d)
                .backing(place.backing.clone())
                .reclaim_stale(true)
                .create()
                .unwrap_err();
            match &e {
                OpenError::AlreadyExists {
                    live_pid: Some(pid),
                    ..
                } => {
                    assert!(*pid == holder.pid() || *pid == std::process::id(), "{e}")
                }
                _ => panic!("{backing:?} {d}: {e}"),
            }
            holder.kill9();
            drop(chan);
        }
    }
}

#[test]
fn reclaim_can_be_turned_off() {
    let place = Place::new(BackingKind::SysvKey);
    ChildGuard::spawn(CHILD, &["abandon", &place.spec, "spsc", "futex"])
        .wait_ok(Duration::from_secs(30));
    let e = Channel::<Rec>::builder()
        .backing(place.backing.clone())
        .reclaim_stale(false)
        .create()
        .unwrap_err();
    assert!(matches!(e, OpenError::AlreadyExists { .. }), "{e}");
}

/// A process that only looks at a stale SysV channel (an inspection, `prune_orphans`) is
/// attached for an instant: a reclaim that runs meanwhile waits for it instead of calling the
/// channel in use. One that stays attached keeps it.
#[test]
fn a_looker_attached_for_an_instant_does_not_stop_a_reclaim() {
    let place = Place::new(BackingKind::SysvKey);
    let stale = || {
        drop(
            Channel::<Rec>::builder()
                .backing(place.backing.clone())
                .cleanup(shmchan::Cleanup::Keep)
                .create()
                .unwrap(),
        )
    };
    let key = match &place.spec.split_once(':') {
        Some((_, k)) => shmchan_os::Key::new(k.parse().unwrap()),
        None => unreachable!(),
    };
    let look = |hold: Duration| {
        let id = shmchan_os::ShmId::open(key).unwrap();
        let (attached, was) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let a = id.attach(shmchan_os::Access::ReadOnly).unwrap();
            attached.send(()).unwrap();
            std::thread::sleep(hold);
            drop(a);
        });
        was.recv().unwrap();
        t
    };

    stale();
    let looker = look(Duration::from_millis(20));
    let chan = Channel::<Rec>::builder()
        .backing(place.backing.clone())
        .cleanup(shmchan::Cleanup::Keep)
        .create();
    looker.join().unwrap();
    assert!(chan.is_ok(), "{:?}", chan.err());
    drop(chan);

    let looker = look(Duration::from_millis(500));
    let e = Channel::<Rec>::builder()
        .backing(place.backing.clone())
        .create()
        .unwrap_err();
    looker.join().unwrap();
    assert!(
        matches!(e, OpenError::AlreadyExists { .. }) && e.to_string().contains("attached"),
        "{e}"
    );
}

#[test]
fn a_system_limit_is_named_in_the_error() {
    let out = ChildGuard::spawn(CHILD, &["limit-mq"]).wait_ok(Duration::from_secs(30));
    assert!(
        out.contains("RLIMIT_MSGQUEUE") || out.contains("queues_max"),
        "{out}"
    );
    assert!(out.contains("mq_open"), "{out}");
}

/// A SysV-backed MPMC channel of `capacity` records with doorbell `d` (the place removes it).
fn sysv_mpmc(capacity: usize, d: Doorbell) -> (Place, Channel<Rec>) {
    let place = Place::new(BackingKind::SysvKey);
    let chan = Channel::<Rec>::builder()
        .capacity(capacity)
        .mpmc()
        .doorbell(d)
        .backing(place.backing.clone())
        .create()
        .unwrap();
    (place, chan)
}

/// Sends `Rec::new(id, i)` for each `i` in `seqs` and receives each back at once: the ring
/// laps without stalling.
fn goes_round(
    tx: &mut Sender<Rec>,
    rx: &mut Receiver<Rec>,
    id: u32,
    seqs: std::ops::RangeInclusive<u64>,
    d: Doorbell,
) {
    for i in seqs {
        tx.send_timeout(Rec::new(id, i), Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok(Rec::new(id, i)),
            "{d}"
        );
    }
}

/// An MPMC worker killed while it holds a record in a zero-copy receive guard: the record is
/// delivered to another receiver (at-least-once), and the ring does not stall.
#[test]
fn dead_workers_claimed_record_is_redelivered() {
    for d in [Doorbell::Futex, Doorbell::SysvMsgQueue, Doorbell::Spin] {
        let (place, chan) = sysv_mpmc(4, d);
        let mut tx = chan.sender().unwrap();
        tx.send(Rec::new(1, 0)).unwrap();
        let mut worker = ChildGuard::spawn(CHILD, &["peek-and-hang", &place.spec, d.name()]);
        assert_eq!(worker.read_line(), "peeked 0");
        let mut rx = chan.receiver().unwrap();
        assert!(
            rx.try_recv().is_err(),
            "the record is claimed by the worker"
        );
        let t0 = Instant::now();
        worker.kill9();
        let r = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(r, Ok(Rec::new(1, 0)), "{d}: redelivered to the survivor");
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(2), "{d}: {took:?}");
        // The slot was released: the ring goes round again without stalling.
        goes_round(&mut tx, &mut rx, 1, 1..=12, d);
    }
}

/// Two MPMC workers killed while each holds a record: a survivor adopts both in one pass. It
/// hands them back to the ring instead of keeping them in its own memory, so when it is dropped
/// after receiving one of them, the other is not lost: another receiver gets it.
#[test]
fn adopted_records_outlive_the_adopter() {
    for d in [Doorbell::Futex, Doorbell::PosixSem] {
        let (place, chan) = sysv_mpmc(4, d);
        let mut tx = chan.sender().unwrap();
        let mut workers = Vec::new();
        for seq in 0..2 {
            tx.send(Rec::new(3, seq)).unwrap();
            let mut w = ChildGuard::spawn(CHILD, &["peek-and-hang", &place.spec, d.name()]);
            assert_eq!(w.read_line(), format!("peeked {seq}"));
            workers.push(w);
        }
        for w in workers {
            w.kill9(); // and reaped: both are dead before the survivor looks
        }
        let mut a = chan.receiver().unwrap();
        let first = a.recv_timeout(Duration::from_secs(10));
        let first = first.unwrap_or_else(|e| panic!("{d}: first adopted record: {e}"));
        drop(a);
        let mut b = chan.receiver().unwrap();
        let second = b.recv_timeout(Duration::from_secs(5));
        let second = second.unwrap_or_else(|e| panic!("{d}: the other adopted record: {e}"));
        let mut seqs = [first.seq, second.seq];
        seqs.sort_unstable();
        assert_eq!(seqs, [0, 1], "{d}");
        assert!(b.try_recv().is_err(), "{d}: each delivered once here");
        // The ring goes round again.
        goes_round(&mut tx, &mut b, 3, 2..=9, d);
    }
}

/// An MPMC producer killed between claiming a slot and committing it: receivers skip the
/// half-written slot (never deliver it) and get the next records without stalling.
#[test]
fn dead_producers_claimed_slot_is_skipped() {
    for d in [Doorbell::Futex, Doorbell::PosixSem] {
        let (place, chan) = sysv_mpmc(4, d);
        let mut rx = chan.receiver().unwrap();
        let mut tx = chan.sender().unwrap();
        let mut producer = ChildGuard::spawn(CHILD, &["reserve-and-hang", &place.spec, d.name()]);
        assert_eq!(producer.read_line(), "reserved");
        // Our records queue up behind the dead producer's claimed slot.
        tx.send(Rec::new(2, 0)).unwrap();
        tx.send(Rec::new(2, 1)).unwrap();
        assert!(rx.try_recv().is_err(), "stuck behind the claimed slot");
        let t0 = Instant::now();
        producer.kill9();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok(Rec::new(2, 0)),
            "{d}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{d}: {:?}",
            t0.elapsed()
        );
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok(Rec::new(2, 1)),
            "{d}"
        );
        for i in 2..=10 {
            tx.send_timeout(Rec::new(2, i), Duration::from_secs(10))
                .unwrap();
            let r = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(r, Rec::new(2, i), "{d}: never the half-written record");
        }
    }
}

/// An untimed `reserve` (or `peek`) that waits behind a slot claimed by a process which then
/// dies: the waiting call reaps the dead claimer itself (its housekeeping runs once per time
/// slice even though the cursors never say "wait") and ends, here with `Disconnected`
/// because the dead process was the only peer.
#[test]
fn untimed_zero_copy_waits_end_when_the_claimer_dies() {
    use std::sync::mpsc;
    for d in [Doorbell::Futex, Doorbell::Spin] {
        // A receiver dies holding a peeked record; the sender waits to reserve its slot.
        let (place, chan) = sysv_mpmc(1, d);
        let mut tx = chan.sender().unwrap();
        tx.send(Rec::new(1, 0)).unwrap();
        let mut worker = ChildGuard::spawn(CHILD, &["peek-and-hang", &place.spec, d.name()]);
        assert_eq!(worker.read_line(), "peeked 0");
        let (done, result) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let r = tx.reserve().map(drop).map_err(|e| e.to_string());
            let _ = done.send(r);
        });
        std::thread::sleep(Duration::from_millis(100));
        worker.kill9();
        let r = result.recv_timeout(Duration::from_secs(10));
        assert!(
            matches!(&r, Ok(Err(e)) if e.contains("disconnected")),
            "{d}: reserve behind a dead claimer: {r:?}"
        );
        waiter.join().unwrap();

        // A sender dies holding a reserved slot; the receiver waits to peek it.
        let (place, chan) = sysv_mpmc(2, d);
        let mut rx = chan.receiver().unwrap();
        let mut producer = ChildGuard::spawn(CHILD, &["reserve-and-hang", &place.spec, d.name()]);
        assert_eq!(producer.read_line(), "reserved");
        let (done, result) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let r = rx.peek().map(|g| g.seq).map_err(|e| e.to_string());
            let _ = done.send(r);
        });
        std::thread::sleep(Duration::from_millis(100));
        producer.kill9();
        let r = result.recv_timeout(Duration::from_secs(10));
        assert!(
            matches!(&r, Ok(Err(e)) if e.contains("disconnected")),
            "{d}: peek behind a dead claimer: {r:?}"
        );
        waiter.join().unwrap();
    }
}
