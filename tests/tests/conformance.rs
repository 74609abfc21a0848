//! The conformance suite: every behaviour a channel promises, written once as generic
//! functions and run over every backing × doorbell × ring kind (`matrix!`).

use std::thread;
use std::time::{Duration, Instant};

use shmchan::{
    Doorbell, RecvError, RecvTimeoutError, ReserveError, RingKind, SendBytesError, SendError,
    SendTimeoutError, TryRecvError, TrySendError,
};
use shmchan_tests::{byte_message, matrix, pair, pair_bytes, BackingKind, Rec};

matrix!(
    fifo_order,
    fifo_across_threads,
    batch,
    reserve_commit,
    reserve_dropped_publishes_nothing,
    peek_release,
    full_and_empty,
    timeouts,
    receivers_drain_then_disconnect,
    sleeping_receiver_sees_disconnect,
    senders_disconnect,
    sleeping_sender_sees_disconnect,
    iterators,
    second_endpoint,
    sender_gets_room_a_receiver_frees_and_leaves,
    bytes_fifo_every_length,
    bytes_across_threads,
    bytes_too_long_is_refused,
    bytes_reserve_commit,
    bytes_peek_release,
    bytes_timeouts,
    bytes_drain_then_disconnect,
    bytes_second_endpoint,
    timeouts_behind_held_guards,
);

fn fifo_order(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair::<Rec>(b, d, k, 8);
    assert_eq!(p.tx.capacity(), 8);
    let mut next_send = 0;
    let mut next_recv = 0;
    while next_recv < 100 {
        while next_send < 100 && p.tx.try_send(Rec::new(1, next_send)).is_ok() {
            next_send += 1;
        }
        while let Ok(r) = p.rx.try_recv() {
            assert_eq!(r, Rec::new(1, next_recv));
            next_recv += 1;
        }
    }
    assert_eq!(p.rx.try_recv(), Err(TryRecvError::Empty));
}

fn fifo_across_threads(b: BackingKind, d: Doorbell, k: RingKind) {
    // Capacity 2 makes both sides wait (and, with the futex doorbell, sleep) constantly.
    let p = pair::<Rec>(b, d, k, 2);
    let (mut tx, mut rx, _place) = (p.tx, p.rx, p.place);
    const N: u64 = 20_000;
    let t = thread::spawn(move || {
        for i in 0..N {
            tx.send(Rec::new(1, i)).unwrap();
        }
    });
    for i in 0..N {
        assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(Rec::new(1, i)));
    }
    t.join().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
}

fn batch(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair::<u64>(b, d, k, 8);
    let data: Vec<u64> = (0..20).collect();
    assert_eq!(p.tx.send_batch(&data), Ok(8), "as many as fit");
    assert_eq!(p.tx.try_send_batch(&data[8..]), Ok(0), "full");
    let mut buf = [0u64; 5];
    assert_eq!(p.rx.recv_batch(&mut buf), Ok(5));
    assert_eq!(buf, [0, 1, 2, 3, 4]);
    assert_eq!(p.tx.send_batch(&data[8..]), Ok(5));
    let mut big = [0u64; 32];
    assert_eq!(p.rx.recv_batch(&mut big), Ok(8));
    assert_eq!(&big[..8], &[5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(p.rx.try_recv_batch(&mut big), Ok(0));
    assert_eq!(p.tx.send_batch(&[]), Ok(0));
}

fn reserve_commit(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair::<[u64; 4]>(b, d, k, 4);
    for i in 0..10u64 {
        let mut g = p.tx.reserve().unwrap();
        *g = [i, i + 1, i + 2, i + 3];
        g.commit();
        assert_eq!(p.rx.recv(), Ok([i, i + 1, i + 2, i + 3]));
    }
    for _ in 0..4 {
        p.tx.try_reserve().unwrap().commit();
    }
    assert_eq!(p.tx.try_reserve().err(), Some(ReserveError::Full));
    assert_eq!(
        p.tx.reserve_timeout(Duration::from_millis(20)).err(),
        Some(ReserveError::Timeout)
    );
}

fn reserve_dropped_publishes_nothing(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair::<u64>(b, d, k, 4);
    {
        let mut g = p.tx.reserve().unwrap();
        *g = 99;
        // dropped without commit
    }
    assert_eq!(p.rx.try_recv(), Err(TryRecvError::Empty));
    p.tx.send(1).unwrap();
    assert_eq!(
        p.rx.recv(),
        Ok(1),
        "the uncommitted record is never delivered"
    );
    assert_eq!(p.rx.try_recv(), Err(TryRecvError::Empty));
}

fn peek_release(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair::<u64>(b, d, k, 2);
    p.tx.send(10).unwrap();
    p.tx.send(11).unwrap();
    assert!(p.tx.is_full());
    {
        let g = p.rx.peek().unwrap();
        assert_eq!(*g, 10);
    }
    // Released on drop: there is room again, and the next record is 11.
    assert!(!p.tx.is_full());
    p.tx.send(12).unwrap();
    assert_eq!(*p.rx.try_peek().unwrap(), 11);
    assert_eq!(*p.rx.peek_timeout(Duration::from_secs(1)).unwrap(), 12);
    assert_eq!(p.rx.try_peek().err(), Some(TryRecvError::Empty));
}

fn full_and_empty(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair::<u64>(b, d, k, 4);
    assert!(p.rx.is_empty());
    assert_eq!(p.rx.try_recv(), Err(TryRecvError::Empty));
    for i in 0..4 {
        p.tx.try_send(i).unwrap();
    }
    assert!(p.tx.is_full());
    assert_eq!(p.tx.len(), 4);
    assert_eq!(
        p.tx.try_send(4),
        Err(TrySendError::Full(4)),
        "the record comes back"
    );
    assert_eq!(p.rx.try_recv(), Ok(0));
    assert_eq!(p.rx.len(), 3);
    p.tx.try_send(4).unwrap();
}

fn timeouts(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair::<u64>(b, d, k, 1);
    let t0 = Instant::now();
    assert_eq!(
        p.rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(30),
        "returned early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned late: {waited:?}");
    p.tx.send(1).unwrap();
    let t0 = Instant::now();
    assert_eq!(
        p.tx.send_timeout(2, Duration::from_millis(30)),
        Err(SendTimeoutError::Timeout(2))
    );
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert_eq!(p.rx.recv_timeout(Duration::from_millis(30)), Ok(1));
    assert_eq!(p.tx.send_timeout(2, Duration::from_millis(30)), Ok(()));
}

fn receivers_drain_then_disconnect(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair::<u64>(b, d, k, 8);
    let (mut tx, mut rx, _place) = (p.tx, p.rx, p.place);
    assert!(!rx.is_disconnected());
    tx.send_batch(&[1, 2, 3]).unwrap();
    drop(tx);
    assert!(rx.is_disconnected());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(3));
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

fn sleeping_receiver_sees_disconnect(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair::<u64>(b, d, k, 8);
    let (tx, mut rx, _place) = (p.tx, p.rx, p.place);
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        drop(tx);
    });
    let t0 = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Err(RecvTimeoutError::Disconnected)
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    t.join().unwrap();
}

fn senders_disconnect(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair::<u64>(b, d, k, 2);
    let (mut tx, rx, _place) = (p.tx, p.rx, p.place);
    tx.send(1).unwrap();
    drop(rx);
    assert!(tx.is_disconnected());
    assert_eq!(tx.try_send(2), Err(TrySendError::Disconnected(2)));
    assert_eq!(tx.send(3), Err(SendError::Disconnected(3)));
    assert_eq!(tx.reserve().err(), Some(ReserveError::Disconnected));
}

fn sleeping_sender_sees_disconnect(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair::<u64>(b, d, k, 1);
    let (mut tx, rx, _place) = (p.tx, p.rx, p.place);
    tx.send(1).unwrap();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        drop(rx);
    });
    assert_eq!(
        tx.send_timeout(2, Duration::from_secs(10)),
        Err(SendTimeoutError::Disconnected(2))
    );
    t.join().unwrap();
}

fn iterators(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair::<u64>(b, d, k, 16);
    let (mut tx, mut rx, _place) = (p.tx, p.rx, p.place);
    tx.send_batch(&[1, 2, 3]).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(rx.try_iter().count(), 0);
    let t = thread::spawn(move || {
        for i in 0..100 {
            tx.send(i).unwrap();
        }
    });
    assert_eq!(rx.iter().collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    t.join().unwrap();
}

fn second_endpoint(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair::<u64>(b, d, k, 4);
    match k {
        RingKind::Spsc => {
            let e = p.tx.try_clone().unwrap_err();
            assert!(
                matches!(e, shmchan::OpenError::EndpointTaken { role: "sender", pid } if pid == std::process::id()),
                "{e}"
            );
            assert!(p.rx.try_clone().is_err());
        }
        _ => {
            let mut tx2 = p.tx.try_clone().unwrap();
            let mut rx2 = p.rx.try_clone().unwrap();
            tx2.send(5).unwrap();
            assert_eq!(rx2.recv(), Ok(5));
            drop(tx2);
            assert!(!p.rx.is_disconnected(), "one sender is still live");
        }
    }
}

/// A sender asleep on a full ring is woken once half the ring is free (the low-water mark);
/// when the receiver frees less and stops receiving, the sender still finds the room within a
/// time slice, long before its deadline.
fn sender_gets_room_a_receiver_frees_and_leaves(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair::<u64>(b, d, k, 8);
    let (mut tx, mut rx, _place) = (p.tx, p.rx, p.place);
    for i in 0..8 {
        tx.send(i).unwrap();
    }
    let t = thread::spawn(move || {
        let t0 = Instant::now();
        let r = tx.send_timeout(8, Duration::from_secs(10));
        (r, t0.elapsed(), tx)
    });
    thread::sleep(Duration::from_millis(30)); // the sender is asleep by now
    assert_eq!(rx.recv(), Ok(0)); // one slot free: below the mark, no wake-up
    let (r, waited, tx) = t.join().unwrap();
    assert_eq!(r, Ok(()));
    assert!(
        waited < Duration::from_secs(2),
        "the sender waited {waited:?}"
    );
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
}

// ---- Byte channels: the same promises for variable-length messages. ----

fn bytes_fifo_every_length(b: BackingKind, d: Doorbell, k: RingKind) {
    const MAX: usize = 40;
    let mut p = pair_bytes(b, d, k, 4, MAX);
    assert_eq!((p.tx.max_message(), p.rx.max_message()), (MAX, MAX));
    let (mut sent, mut got) = (0u64, 0u64);
    let mut buf = Vec::new();
    while got < 300 {
        while sent < 300 && p.tx.try_send(&byte_message(sent, MAX)).is_ok() {
            sent += 1;
        }
        while let Ok(n) = p.rx.try_recv_into(&mut buf) {
            assert_eq!(n, buf.len());
            assert_eq!(buf, byte_message(got, MAX), "message {got}");
            got += 1;
        }
    }
    assert_eq!(p.rx.try_recv(), Err(TryRecvError::Empty));
}

fn bytes_across_threads(b: BackingKind, d: Doorbell, k: RingKind) {
    const MAX: usize = 300;
    const N: u64 = 5_000;
    let p = pair_bytes(b, d, k, 2, MAX);
    let (mut tx, mut rx, _place) = (p.tx, p.rx, p.place);
    let t = thread::spawn(move || {
        for i in 0..N {
            if i % 2 == 0 {
                tx.send(&byte_message(i, MAX)).unwrap();
            } else {
                let m = byte_message(i, MAX);
                let mut g = tx.reserve(m.len()).unwrap();
                g.copy_from_slice(&m);
                g.commit();
            }
        }
    });
    for i in 0..N {
        let want = byte_message(i, MAX);
        if i % 3 == 0 {
            assert_eq!(&*rx.peek().unwrap(), &want[..], "message {i}");
        } else {
            assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), want);
        }
    }
    t.join().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
}

fn bytes_too_long_is_refused(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair_bytes(b, d, k, 4, 64);
    let long = vec![1u8; 65];
    let err = SendBytesError::TooLong { len: 65, max: 64 };
    assert_eq!(p.tx.try_send(&long), Err(err));
    assert_eq!(p.tx.send(&long), Err(err));
    assert_eq!(p.tx.send_timeout(&long, Duration::from_millis(1)), Err(err));
    assert_eq!(p.tx.try_reserve(65).err(), Some(err));
    assert_eq!(
        p.tx.reserve(1 << 20).err(),
        Some(SendBytesError::TooLong {
            len: 1 << 20,
            max: 64
        })
    );
    assert!(p.rx.is_empty(), "nothing was sent, nothing truncated");
    let exact = vec![2u8; 64];
    p.tx.send(&exact).unwrap();
    assert_eq!(p.rx.recv().unwrap(), exact);
    assert!(err.to_string().contains("65") && err.to_string().contains("64"));
}

fn bytes_reserve_commit(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair_bytes(b, d, k, 2, 32);
    {
        let mut g = p.tx.reserve(32).unwrap();
        g[..5].copy_from_slice(b"hello");
        // dropped without commit: nothing is published
    }
    assert_eq!(p.rx.try_recv(), Err(TryRecvError::Empty));
    let mut g = p.tx.reserve(32).unwrap();
    g[..5].copy_from_slice(b"world");
    assert_eq!(
        g.set_len(33),
        Err(SendBytesError::TooLong { len: 33, max: 32 })
    );
    g.set_len(5).unwrap();
    g.commit();
    assert_eq!(p.rx.recv().unwrap(), b"world");
    p.tx.try_reserve(0).unwrap().commit();
    p.tx.try_reserve(1).unwrap().commit();
    assert_eq!(p.tx.try_reserve(1).err(), Some(SendBytesError::Full));
    assert_eq!(
        p.tx.reserve_timeout(1, Duration::from_millis(20)).err(),
        Some(SendBytesError::Timeout)
    );
    assert_eq!(p.rx.recv().unwrap(), b"");
    assert_eq!(p.rx.recv().unwrap().len(), 1);
}

fn bytes_peek_release(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair_bytes(b, d, k, 2, 16);
    p.tx.send(b"first").unwrap();
    p.tx.send(b"second").unwrap();
    assert_eq!(p.tx.try_send(b"x"), Err(SendBytesError::Full));
    {
        let g = p.rx.peek().unwrap();
        assert_eq!(&*g, b"first");
    }
    p.tx.send(b"third").unwrap(); // room again: the peek released its slot
    assert_eq!(&*p.rx.try_peek().unwrap(), b"second");
    assert_eq!(
        &*p.rx.peek_timeout(Duration::from_secs(1)).unwrap(),
        b"third"
    );
    assert_eq!(p.rx.try_peek().err(), Some(TryRecvError::Empty));
}

fn bytes_timeouts(b: BackingKind, d: Doorbell, k: RingKind) {
    let mut p = pair_bytes(b, d, k, 1, 8);
    let t0 = Instant::now();
    assert_eq!(
        p.rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(30));
    p.tx.send(b"a").unwrap();
    let t0 = Instant::now();
    assert_eq!(
        p.tx.send_timeout(b"b", Duration::from_millis(30)),
        Err(SendBytesError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert_eq!(p.rx.recv_timeout(Duration::from_millis(30)).unwrap(), b"a");
    p.tx.send_timeout(b"b", Duration::from_millis(30)).unwrap();
}

fn bytes_drain_then_disconnect(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair_bytes(b, d, k, 8, 8);
    let (mut tx, mut rx, _place) = (p.tx, p.rx, p.place);
    tx.send(b"1").unwrap();
    tx.send(b"22").unwrap();
    drop(tx);
    assert!(rx.is_disconnected());
    assert_eq!(rx.recv().unwrap(), b"1");
    assert_eq!(&*rx.peek().unwrap(), b"22");
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    assert_eq!(rx.try_peek().err(), Some(TryRecvError::Disconnected));

    let p = pair_bytes(b, d, k, 1, 8);
    let (mut tx, rx, _place) = (p.tx, p.rx, p.place);
    tx.send(b"full").unwrap();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        drop(rx);
    });
    assert_eq!(
        tx.send_timeout(b"blocked", Duration::from_secs(10)),
        Err(SendBytesError::Disconnected)
    );
    t.join().unwrap();
    assert_eq!(tx.reserve(1).err(), Some(SendBytesError::Disconnected));
}

fn bytes_second_endpoint(b: BackingKind, d: Doorbell, k: RingKind) {
    let p = pair_bytes(b, d, k, 4, 8);
    match k {
        RingKind::Spsc => {
            assert!(p.tx.try_clone().is_err());
            assert!(p.rx.try_clone().is_err());
        }
        _ => {
            let mut tx2 = p.tx.try_clone().unwrap();
            let mut rx2 = p.rx.try_clone().unwrap();
            tx2.send(b"two").unwrap();
            assert_eq!(rx2.recv().unwrap(), b"two");
        }
    }
}

/// Runs `wait` (a timed call) on another thread while `held` (a guard) stays alive here, and
/// returns its result; fails, rather than hangs, when the call ignores its deadline.
fn returns_while_held<G, R: Send>(held: G, wait: impl FnOnce() -> R + Send) -> R {
    thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        s.spawn(move || {
            let _ = tx.send(wait());
        });
        let r = rx.recv_timeout(Duration::from_secs(5));
        drop(held); // a spinning waiter can finish now, so the scope ends
        r.expect("the timed call was still waiting 5 s after its 20 ms deadline")
    })
}

/// A timed reserve waiting behind a held peek guard, and a timed peek behind a held reserve
/// guard, return at their deadlines. On MPMC the cursors already count the claimed slot while
/// the slot cannot be taken yet; the waits used to spin past their deadlines (found by the
/// `hostile_bytes` fuzz target).
fn timeouts_behind_held_guards(b: BackingKind, d: Doorbell, k: RingKind) {
    let ms20 = Duration::from_millis(20);
    let mut p = pair::<u64>(b, d, k, 2);
    p.tx.send_batch(&[1, 2]).unwrap();
    let held = p.rx.try_peek().unwrap();
    let r = returns_while_held(held, || p.tx.reserve_timeout(ms20).err());
    assert_eq!(r, Some(ReserveError::Timeout));
    assert_eq!(p.rx.recv(), Ok(2));
    let held = p.tx.try_reserve().unwrap();
    let r = returns_while_held(held, || p.rx.peek_timeout(ms20).err());
    assert_eq!(r, Some(RecvTimeoutError::Timeout));
    p.tx.send(3).unwrap();
    assert_eq!(p.rx.recv_timeout(Duration::from_secs(1)), Ok(3));

    let mut p = pair_bytes(b, d, k, 2, 16);
    p.tx.send(b"one").unwrap();
    p.tx.send(b"two").unwrap();
    let held = p.rx.try_peek().unwrap();
    let r = returns_while_held(held, || p.tx.reserve_timeout(1, ms20).err());
    assert_eq!(r, Some(SendBytesError::Timeout));
    assert_eq!(p.rx.recv().unwrap(), b"two");
    let held = p.tx.try_reserve(1).unwrap();
    let r = returns_while_held(held, || p.rx.peek_timeout(ms20).err());
    assert_eq!(r, Some(RecvTimeoutError::Timeout));
    p.tx.send(b"three").unwrap();
    assert_eq!(p.rx.recv_timeout(Duration::from_secs(1)).unwrap(), b"three");
}
