//! Loom models of crash recovery (`shmchan_ring::settle`): a producer or consumer "dies" (its
//! thread ends holding a claim), the settler joins it (the upper layer observing the death
//! through the kernel) and settles its `Working` record while the survivors keep running.
//!
//! - `settle_claimed_producer`: A claims a slot, half-writes it and dies; B publishes two
//!   records (the second reuses A's slot one lap later); the consumer gets exactly B's records.
//! - `settle_announced_producer`: A announces position 0 and dies before its claim CAS; B claims
//!   position 0 concurrently. The settler must not skip B's live slot (it defers while B's own
//!   announcement covers it): this is the `settle-claim` ordering.
//! - `adopt_dead_consumer`: D peeks a record and dies; the producer waits for room; the adopter
//!   gets D's record exactly once and the producer proceeds.
#![cfg(loom)]

mod common;

use std::ptr::NonNull;

use common::*;
use loom::sync::Arc;
use shmchan_ring::{RawRing, RingKind, Working};

/// Settles `dead` until nothing is deferred (a live producer's announcement clears within one
/// of its operations), then rings the consumers.
fn settle_until_done(ring: &RawRing, dead: &Working, live: &Working, bells: &Bells) {
    loop {
        let s = ring.settle_producer(dead, [live]).unwrap();
        if s.is_done() {
            break;
        }
        loom::thread::yield_now();
    }
    bells.data.post(ring.data_cell().take_tokens());
}

#[test]
fn settle_claimed_producer() {
    model(3, || {
        let heap = Heap::new(RingKind::Mpmc, 2);
        let ring = heap.ring;
        let bells = Arc::new(Bells::new());
        let (wa, wb) = (Arc::new(Working::new()), Arc::new(Working::new()));
        let mut a = ring.mpmc_producer().unwrap();
        let mut b = ring.mpmc_producer().unwrap();
        // SAFETY: each record lives in an Arc held until after the threads are joined, and
        // serves one handle.
        unsafe {
            a.set_working(NonNull::from(&*wa));
            b.set_working(NonNull::from(&*wb));
        }
        let dying = loom::thread::spawn(move || {
            let mut g = a.reserve_up_to(1);
            if !g.is_empty() {
                g.write(0, &rec(666));
                std::mem::forget(g); // dies holding the claim
            }
        });
        let bb = bells.clone();
        let survivor = loom::thread::spawn(move || {
            for v in [1u64, 2] {
                mpmc_send(&mut b, v, &bb);
            }
        });
        dying.join().unwrap();
        settle_until_done(&ring, &wa, &wb, &bells);
        let mut c = ring.mpmc_consumer().unwrap();
        let got: Vec<u64> = (0..2).map(|_| mpmc_recv(&mut c, &bells)).collect();
        survivor.join().unwrap();
        assert_eq!(got, [1, 2]);
        assert!(wa.is_clear() && wb.is_clear());
        assert!(ring.is_empty());
    });
}

#[test]
fn settle_announced_producer() {
    model(3, || {
        let heap = Heap::new(RingKind::Mpmc, 2);
        let ring = heap.ring;
        let bells = Arc::new(Bells::new());
        let (wa, wb) = (Arc::new(Working::new()), Arc::new(Working::new()));
        let mut b = ring.mpmc_producer().unwrap();
        // SAFETY: as above.
        unsafe { b.set_working(NonNull::from(&*wb)) };
        let wa2 = wa.clone();
        // A announced a claim of position 0 (pos 0 << 2 | producer, len 1) and died before
        // its CAS: position 0 is not A's.
        let dying = loom::thread::spawn(move || wa2.store_raw(1, 1));
        let bb = bells.clone();
        let survivor = loom::thread::spawn(move || {
            for v in [1u64, 2] {
                mpmc_send(&mut b, v, &bb);
            }
        });
        dying.join().unwrap();
        settle_until_done(&ring, &wa, &wb, &bells);
        let mut c = ring.mpmc_consumer().unwrap();
        let got: Vec<u64> = (0..2).map(|_| mpmc_recv(&mut c, &bells)).collect();
        survivor.join().unwrap();
        assert_eq!(got, [1, 2]);
        assert!(ring.is_empty());
    });
}

#[test]
fn adopt_dead_consumer() {
    model(3, || {
        let heap = Heap::new(RingKind::Mpmc, 2);
        let ring = heap.ring;
        let bells = Arc::new(Bells::new());
        let (wd, wc) = (Arc::new(Working::new()), Arc::new(Working::new()));
        let mut p = ring.mpmc_producer().unwrap();
        p.try_push(&rec(1)).unwrap();
        let mut d = ring.mpmc_consumer().unwrap();
        let mut c = ring.mpmc_consumer().unwrap();
        // SAFETY: as above.
        unsafe {
            d.set_working(NonNull::from(&*wd));
            c.set_working(NonNull::from(&*wc));
        }
        let dying = loom::thread::spawn(move || {
            let g = d.peek_up_to(1);
            assert_eq!(g.len(), 1); // record 1: nobody else consumes before the adoption
            std::mem::forget(g); // dies holding it in a zero-copy guard
        });
        let bp = bells.clone();
        let producer = loom::thread::spawn(move || {
            for v in [2u64, 3] {
                mpmc_send(&mut p, v, &bp); // 3 reuses record 1's slot: waits for the adoption
            }
        });
        dying.join().unwrap();
        let mut adopted = Vec::new();
        let s = c
            .adopt(&wd, [&*wc], |r| adopted.push(val(&read8(r))))
            .unwrap();
        assert!(s.is_done());
        bells.room.post(c.wake_producers());
        assert_eq!(adopted, [1]);
        let got: Vec<u64> = (0..2).map(|_| mpmc_recv(&mut c, &bells)).collect();
        producer.join().unwrap();
        assert_eq!(got, [2, 3]);
        assert!(wd.is_clear() && wc.is_clear());
        assert!(ring.is_empty());
    });
}

fn read8(r: NonNull<u8>) -> [u8; 8] {
    // SAFETY: the adopt callback gets record_size (8) readable bytes.
    unsafe { r.cast::<[u8; 8]>().read() }
}
