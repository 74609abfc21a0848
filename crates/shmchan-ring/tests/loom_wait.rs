//! Loom models of the sleep/ring handshake (`shmchan_ring::wait`): a loom counting semaphore
//! stands in for the kernel doorbell, blocking sides follow the protocol exactly, and loom's
//! deadlock detection proves that no wake-up is lost.
#![cfg(loom)]

mod common;

use common::*;
use shmchan_ring::{PopError, PushError, RingKind, SpscConsumer, SpscProducer};

/// The full blocking receive of the protocol: try, announce, re-check, sleep.
fn recv(c: &mut SpscConsumer, data: &Sem) -> u64 {
    let mut out = [0u8; 8];
    loop {
        match c.try_pop(&mut out) {
            Ok(()) => return val(&out),
            Err(PopError::Empty) => {}
            Err(e) => panic!("{e}"),
        }
        c.data_cell().announce();
        if c.try_pop(&mut out).is_ok() {
            if !c.data_cell().withdraw() {
                data.wait(); // a ringer took our count: its token is posted or about to be
            }
            return val(&out);
        }
        data.wait(); // sleep; on wake the token is consumed and the announcement gone
    }
}

/// The full blocking send: try, announce on the room cell, re-check, sleep.
fn send(p: &mut SpscProducer, v: u64, room: &Sem) {
    loop {
        match p.try_push(&rec(v)) {
            Ok(()) => return,
            Err(PushError::Full) => {}
            Err(e) => panic!("{e}"),
        }
        p.room_cell().announce();
        if p.try_push(&rec(v)).is_ok() {
            if !p.room_cell().withdraw() {
                room.wait();
            }
            return;
        }
        room.wait();
    }
}

/// A consumer that sleeps until two records arrive, the producer ringing with `take` (the
/// fenced or the unfenced form of `WaitCell::take_tokens`).
fn consumer_sleeps_until_records_arrive_with(take: fn(&shmchan_ring::WaitCell) -> u32) {
    model(3, move || {
        let heap = Heap::new(RingKind::Spsc, 2);
        let ring = heap.ring;
        let data = loom::sync::Arc::new(Sem::new());
        // SAFETY: one producer, one consumer.
        let (mut p, mut c) =
            unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
        let d = data.clone();
        let t = loom::thread::spawn(move || {
            for v in 1..=2 {
                p.try_push(&rec(v)).unwrap(); // capacity 2: never full here
                d.post(take(p.data_cell()));
            }
        });
        assert_eq!(recv(&mut c, &data), 1);
        assert_eq!(recv(&mut c, &data), 2);
        t.join().unwrap();
        // Tokens never outnumber waiters: at most one stale token is left behind.
        assert!(data.value() <= 1);
        assert_eq!(ring.data_cell().sleepers(), 0);
    });
}

#[test]
fn consumer_sleeps_until_records_arrive() {
    consumer_sleeps_until_records_arrive_with(shmchan_ring::WaitCell::take_tokens);
}

#[test]
fn producer_sleeps_until_room_frees() {
    model(3, || {
        let heap = Heap::new(RingKind::Spsc, 1);
        let ring = heap.ring;
        let data = loom::sync::Arc::new(Sem::new());
        let room = loom::sync::Arc::new(Sem::new());
        // SAFETY: one producer, one consumer.
        let (mut p, mut c) =
            unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
        let (d, r) = (data.clone(), room.clone());
        let t = loom::thread::spawn(move || {
            for v in 1..=3 {
                send(&mut p, v, &r); // capacity 1: every send after the first waits for room
                d.post(p.wake_consumers());
            }
        });
        for v in 1..=3 {
            assert_eq!(recv(&mut c, &data), v);
            room.post(c.wake_producers());
        }
        t.join().unwrap();
    });
}

/// The asymmetric form of the handshake (`WaitCell::take_tokens_unfenced`): the publisher
/// keeps only its compiler fence, which loom sees as the `SeqCst` fence that the waiter's
/// global barrier (`membarrier`) runs on the publisher's CPU; the waiter's half is
/// `announce`'s own fence. Removing either fence, or weakening it below `SeqCst`, makes loom
/// find the consumer asleep with a record in the ring (a deadlock).
#[test]
fn consumer_sleeps_until_records_arrive_unfenced_publisher() {
    consumer_sleeps_until_records_arrive_with(shmchan_ring::WaitCell::take_tokens_unfenced);
}
