//! Loom models of the MPMC ring: 2 producers / 1 consumer, and 1 producer / 2 consumers with a
//! skipped slot (a grant dropped uncommitted).
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
