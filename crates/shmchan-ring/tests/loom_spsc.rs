//! Loom models of the SPSC ring: push/pop, batches, reserve/commit and peek/release.
//! Payload accesses are tracked per slot, so a missing Release/Acquire edge fails the model.
#![cfg(loom)]

mod common;

use common::*;
use shmchan_ring::{PopError, RingKind};

#[test]
fn spsc_push_pop() {
    model(3, || {
        let heap = Heap::new(RingKind::Spsc, 2);
        let ring = heap.ring;
        // SAFETY: exactly one producer (moved to the thread) and one consumer.
        let (mut p, mut c) =
            unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
        let t = loom::thread::spawn(move || {
            for v in 1..=3 {
                spin_push(|| p.try_push(&rec(v)));
            }
        });
        let mut out = [0u8; 8];
        for v in 1..=3 {
            spin_pop(|| c.try_pop(&mut out));
            assert_eq!(val(&out), v);
        }
        t.join().unwrap();
        assert_eq!(c.try_pop(&mut out), Err(PopError::Empty));
    });
}

#[test]
fn spsc_batches() {
    model(3, || {
        let heap = Heap::new(RingKind::Spsc, 2);
        let ring = heap.ring;
        // SAFETY: one producer, one consumer.
        let (mut p, mut c) =
            unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
        let t = loom::thread::spawn(move || {
            let recs: Vec<u8> = (1..=3u64).flat_map(u64::to_ne_bytes).collect();
            let mut sent = 0;
            while sent < 3 {
                let n = p.push_batch(&recs[sent * 8..]);
                if n == 0 {
                    loom::thread::yield_now();
                }
                sent += n;
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while got.len() < 3 {
            let n = c.pop_batch(&mut buf);
            if n == 0 {
                loom::thread::yield_now();
            }
            got.extend((0..n).map(|i| val(&buf[8 * i..8 * i + 8])));
        }
        t.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}

#[test]
fn spsc_reserve_commit_peek_release() {
    model(3, || {
        let heap = Heap::new(RingKind::Spsc, 2);
        let ring = heap.ring;
        // SAFETY: one producer, one consumer.
        let (mut p, mut c) =
            unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
        let t = loom::thread::spawn(move || {
            // Two records in place with one publish, then a third after the consumer frees room.
            let mut g = loop {
                match p.try_reserve(2) {
                    Ok(g) => break g,
                    Err(_) => loom::thread::yield_now(),
                }
            };
            g.write(0, &rec(1));
            g.write(1, &rec(2));
            g.commit();
            loop {
                let mut g = p.reserve_up_to(1);
                if g.len() == 1 {
                    g.write(0, &rec(3));
                    g.commit();
                    break;
                }
                loom::thread::yield_now();
            }
        });
        let mut got = Vec::new();
        let mut out = [0u8; 8];
        while got.len() < 3 {
            let g = c.peek_up_to(2);
            for i in 0..g.len() {
                g.read(i, &mut out);
                got.push(val(&out));
            }
            if g.is_empty() {
                loom::thread::yield_now();
            }
            g.release();
        }
        t.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}

#[test]
fn spsc_next_free_commit_one_next_ready_release_one() {
    // The one-record zero-copy forms (the endpoint layer's short way): a record written in
    // place through `next_free`'s pointer is published by `commit_one`; `next_ready` hands it
    // out and `release_one` frees its slot for the next lap.
    model(3, || {
        let heap = Heap::new(RingKind::Spsc, 2);
        let ring = heap.ring;
        // SAFETY: one producer, one consumer.
        let (mut p, mut c) =
            unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
        let t = loom::thread::spawn(move || {
            for v in 1..=3u64 {
                let slot = loop {
                    match p.next_free() {
                        Ok(s) => break s,
                        Err(_) => loom::thread::yield_now(),
                    }
                };
                // SAFETY: `next_free` gave an 8-byte, 8-aligned free slot; `commit_one` follows
                // with nothing published in between.
                unsafe {
                    slot.cast::<u64>().as_ptr().write(v);
                    p.commit_one();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            match c.next_ready() {
                Ok(r) => {
                    // SAFETY: a ready 8-byte, 8-aligned record, freed right after with nothing
                    // freed in between.
                    unsafe {
                        got.push(r.cast::<u64>().as_ptr().read());
                        c.release_one();
                    }
                }
                Err(_) => loom::thread::yield_now(),
            }
        }
        t.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}

#[test]
fn spsc_push_pop_of_sized_records() {
    // The typed one-record forms (`try_push_of` / `try_pop_of`: the slot's address and the
    // mailbox copy computed with the record size known at compile time) keep the orderings of
    // the untyped ones: a missing edge fails here as in `spsc_push_pop`.
    model(3, || {
        let heap = Heap::new(RingKind::Spsc, 2);
        let ring = heap.ring;
        // SAFETY: exactly one producer (moved to the thread) and one consumer.
        let (mut p, mut c) =
            unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
        let t = loom::thread::spawn(move || {
            for v in 1..=3u64 {
                // SAFETY: the heap ring's records are 8-byte `u64`s, back to back; the slot
                // holds 8 writable bytes, 8-aligned.
                spin_push(|| unsafe {
                    p.try_push_of::<u64, _>(|slot| slot.cast::<u64>().as_ptr().write(v))
                });
            }
        });
        for v in 1..=3u64 {
            // SAFETY: as above; the record holds 8 readable bytes, 8-aligned.
            let got =
                spin_pop(|| unsafe { c.try_pop_of::<u64, _>(|r| r.cast::<u64>().as_ptr().read()) });
            assert_eq!(got, v);
        }
        t.join().unwrap();
    });
}
