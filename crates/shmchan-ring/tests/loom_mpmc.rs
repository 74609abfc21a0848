//! Loom models of the MPMC ring: 2 producers / 1 consumer, and 1 producer / 2 consumers with a
//! skipped slot (a grant dropped uncommitted); and the linearizable try operations: a thread's
//! `try_pop` right after its own push never reports `Empty`, even while another producer sits
//! between its claim and its publish, and a thread's `try_push` right after its own pop never
//! reports `Full` while another consumer sits between its claim and its release; and a
//! polling handle (`set_linearizable(false)`, as a blocking call's tries, which the blocking
//! helpers here use) answers from the slot alone.
//!
//! With three threads the waiting sides block on loom doorbells through the sleep/ring protocol
//! instead of spinning: a spinning pair can starve a preempted third thread forever in loom's
//! exploration (switches at a yield are free), which loom reports as "too many branches".
#![cfg(loom)]

mod common;

use common::*;
use loom::sync::Arc;
use shmchan_ring::RingKind;

#[test]
fn mpmc_two_producers_one_consumer() {
    model(2, || {
        let heap = Heap::new(RingKind::Mpmc, 2);
        let ring = heap.ring;
        let bells = Arc::new(Bells::new());
        let threads: Vec<_> = [&[1u64, 2][..], &[3][..]]
            .into_iter()
            .map(|vals| {
                let mut p = ring.mpmc_producer().unwrap();
                let bells = bells.clone();
                loom::thread::spawn(move || {
                    for &v in vals {
                        mpmc_send(&mut p, v, &bells);
                    }
                })
            })
            .collect();
        let mut c = ring.mpmc_consumer().unwrap();
        let got: Vec<u64> = (0..3).map(|_| mpmc_recv(&mut c, &bells)).collect();
        for t in threads {
            t.join().unwrap();
        }
        // Each record exactly once, each producer's in its order.
        let pos = |v| got.iter().position(|&x| x == v).unwrap();
        assert!(pos(1) < pos(2), "{got:?}");
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3]);
        assert!(ring.is_empty());
    });
}

#[test]
fn mpmc_one_producer_two_consumers_with_skip() {
    model(2, || {
        // Capacity 4: the skipped slot and both records fit, so the producer never waits for
        // room (the room direction is covered by the other models) and the model stays small.
        let heap = Heap::new(RingKind::Mpmc, 4);
        let ring = heap.ring;
        let bells = Arc::new(Bells::new());
        let mut p = ring.mpmc_producer().unwrap();
        let b = bells.clone();
        let producer = loom::thread::spawn(move || {
            // A claim dropped uncommitted: consumers must pass over the skipped slot.
            let g = p.reserve_up_to(1);
            assert_eq!(g.len(), 1); // the ring starts empty
            drop(g);
            b.data.post(p.wake_consumers());
            for v in [1u64, 2] {
                mpmc_send(&mut p, v, &b);
            }
        });
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let mut c = ring.mpmc_consumer().unwrap();
                let bells = bells.clone();
                loom::thread::spawn(move || mpmc_recv(&mut c, &bells))
            })
            .collect();
        producer.join().unwrap();
        let mut got: Vec<u64> = consumers.into_iter().map(|t| t.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert!(ring.is_empty());
    });
}

#[test]
fn mpmc_try_pop_after_own_push_is_never_empty() {
    model(2, || {
        let heap = Heap::new(RingKind::Mpmc, 4);
        let ring = heap.ring;
        let mut other = ring.mpmc_producer().unwrap();
        // Another producer: claims a position, writes, publishes. Whenever it claims before
        // us, the head slot is claimed but unpublished while our own record is published.
        let t = loom::thread::spawn(move || other.try_push(&rec(1)).unwrap());
        let (mut p, mut c) = (ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap());
        p.try_push(&rec(2)).unwrap();
        // Our record is in the ring: `Empty` here would not be linearizable.
        let mut out = [0u8; 8];
        c.try_pop(&mut out)
            .expect("a record was in the ring for the whole call");
        assert!(matches!(val(&out), 1 | 2));
        t.join().unwrap();
    });
}

#[test]
fn mpmc_try_push_after_own_pop_is_never_full() {
    model(2, || {
        let heap = Heap::new(RingKind::Mpmc, 2);
        let ring = heap.ring;
        let mut p = ring.mpmc_producer().unwrap();
        p.try_push(&rec(1)).unwrap();
        p.try_push(&rec(2)).unwrap(); // full
        let mut other = ring.mpmc_consumer().unwrap();
        // Another consumer: claims a record, reads, releases. Whenever it claims before us,
        // the tail slot still holds its record while our own pop freed a slot.
        let t = loom::thread::spawn(move || {
            let mut out = [0u8; 8];
            other.try_pop(&mut out).unwrap();
        });
        let mut c = ring.mpmc_consumer().unwrap();
        let mut out = [0u8; 8];
        c.try_pop(&mut out).unwrap();
        // We freed a slot: `Full` here would not be linearizable.
        p.try_push(&rec(3))
            .expect("the ring had room for the whole call");
        t.join().unwrap();
    });
}

#[test]
fn mpmc_polling_try_pop_answers_from_the_slot_alone() {
    // The model above with the consumer polling (`set_linearizable(false)`, as the endpoint
    // core's blocking calls do): it does not wait out the other producer's claim, so some
    // interleaving reports `Empty` although our own record is in the ring.
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static EMPTY: AtomicUsize = AtomicUsize::new(0);
    model(2, || {
        let heap = Heap::new(RingKind::Mpmc, 4);
        let ring = heap.ring;
        let mut other = ring.mpmc_producer().unwrap();
        let t = loom::thread::spawn(move || other.try_push(&rec(1)).unwrap());
        let (mut p, mut c) = (ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap());
        c.set_linearizable(false);
        p.try_push(&rec(2)).unwrap();
        let mut out = [0u8; 8];
        if c.try_pop(&mut out).is_err() {
            EMPTY.fetch_add(1, Relaxed);
        }
        t.join().unwrap();
    });
    assert!(
        EMPTY.load(Relaxed) > 0,
        "a polling try_pop waited out the claim"
    );
}
