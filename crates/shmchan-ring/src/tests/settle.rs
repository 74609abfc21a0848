//! Crash recovery of MPMC claims ([`crate::settle`]): settling dead producers, adopting
//! dead consumers, garbage records, and the `Working` announcements of every operation.

use std::vec::Vec;

use super::*;

fn w_ptr(w: &Working) -> core::ptr::NonNull<Working> {
    core::ptr::NonNull::from(w)
}

fn rec(v: u64) -> [u8; 8] {
    v.to_ne_bytes()
}

#[test]
fn settle_dead_producer_skips_its_half_written_claim() {
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 4, 8, 8));
    let (wa, wb) = (Working::new(), Working::new());
    let mut a = ring.mpmc_producer().unwrap();
    let mut b = ring.mpmc_producer().unwrap();
    // SAFETY: each Working outlives its handle and serves only it.
    unsafe {
        a.set_working(w_ptr(&wa));
        b.set_working(w_ptr(&wb));
    }
    let mut c = ring.mpmc_consumer().unwrap();
    let mut out = [0u8; 8];
    b.try_push(&rec(1)).unwrap(); // position 0
    assert!(wb.is_clear(), "cleared after publishing");
    let mut g = a.reserve_up_to(1); // position 1: A claims, half-writes and dies
    g.write(0, &rec(666));
    core::mem::forget(g);
    assert_eq!(
        wa.raw(),
        (1 << 2 | 1, 1),
        "announced: pos 1, producer, len 1"
    );
    b.try_push(&rec(2)).unwrap(); // position 2
    c.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 1);
    // The dead claim stalls every consumer, although position 2 is published.
    assert_eq!(c.try_pop(&mut out), Err(PopError::Empty));
    assert_eq!(c.try_pop(&mut out), Err(PopError::Empty));
    let s = ring.settle_producer(&wa, [&wb]).unwrap();
    assert_eq!((s.settled, s.freed, s.deferred), (1, 0, 0));
    assert!(wa.is_clear());
    // Idempotent: nothing left.
    assert_eq!(
        ring.settle_producer(&wa, [&wb]).unwrap(),
        Settled::default()
    );
    c.try_pop(&mut out).unwrap();
    assert_eq!(
        u64::from_ne_bytes(out),
        2,
        "the half-written record is never delivered"
    );
    assert_eq!(c.try_pop(&mut out), Err(PopError::Empty));
    // The ring laps over the settled slot normally.
    for v in 10..18 {
        b.try_push(&rec(v)).unwrap();
        c.try_pop(&mut out).unwrap();
        assert_eq!(u64::from_ne_bytes(out), v);
    }
}

#[test]
fn settle_dead_producer_batch_and_stale_records() {
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 4, 8, 8));
    let wa = Working::new();
    let mut a = ring.mpmc_producer().unwrap();
    // SAFETY: `wa` outlives `a` and serves only it.
    unsafe { a.set_working(w_ptr(&wa)) };
    let mut c = ring.mpmc_consumer().unwrap();
    let mut out = [0u8; 8];
    a.try_push(&rec(1)).unwrap();
    let g = a.try_reserve(3).unwrap(); // positions 1..4, then death
    core::mem::forget(g);
    assert_eq!(wa.raw(), (1 << 2 | 1, 3));
    let s = ring.settle_producer(&wa, []).unwrap();
    assert_eq!(s.settled, 3);
    c.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 1);
    assert_eq!(c.try_pop(&mut out), Err(PopError::Empty)); // passes over the 3 skipped slots
    assert!(ring.is_empty());
    // A record naming published positions (death after publishing, before clearing) or
    // positions nobody claimed (death before the CAS, tail never moved) settles nothing.
    wa.store_raw(4 << 2 | 1, 4); // tail is 4: nothing claimed there
    assert_eq!(ring.settle_producer(&wa, []).unwrap().settled, 0);
    assert!(wa.is_clear());
    a.push_batch(&[5; 16]);
    wa.store_raw(4 << 2 | 1, 2); // published already
    assert_eq!(ring.settle_producer(&wa, []).unwrap().settled, 0);
}

#[test]
fn settle_defers_positions_a_live_producer_announces() {
    // A died after announcing position 0 but before its claim CAS; B claimed 0 and is still
    // writing it. A's record alone cannot tell: B's announcement must protect B's slot.
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 4, 8, 8));
    let (wa, wb) = (Working::new(), Working::new());
    wa.store_raw(1, 1); // pos 0, producer, len 1: announced, never claimed
    let mut b = ring.mpmc_producer().unwrap();
    // SAFETY: `wb` outlives `b` and serves only it.
    unsafe { b.set_working(w_ptr(&wb)) };
    let mut c = ring.mpmc_consumer().unwrap();
    let mut out = [0u8; 8];
    let mut g = b.reserve_up_to(1);
    let s = ring.settle_producer(&wa, [&wb]).unwrap();
    assert_eq!((s.settled, s.deferred, s.is_done()), (0, 1, false));
    assert!(!wa.is_clear(), "kept until settled");
    g.write(0, &rec(7));
    g.commit();
    let s = ring.settle_producer(&wa, [&wb]).unwrap();
    assert_eq!((s.settled, s.deferred), (0, 0));
    assert!(wa.is_clear());
    c.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 7, "B's record survives");
    // Without B's record the settler would have skipped B's live slot: show the hazard.
    let mut g = b.reserve_up_to(1); // position 1
    wa.store_raw(1 << 2 | 1, 1);
    assert_eq!(ring.settle_producer(&wa, []).unwrap().settled, 1); // wrongly settled
    g.write(0, &rec(8));
    g.commit(); // overwrites the skipped stamp: the record appears after all (and a consumer
                // that passed over the slot in between would have lost it)
}

#[test]
fn adopt_dead_consumer_delivers_its_peeked_record_once() {
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 2, 8, 8));
    let (wd, wa) = (Working::new(), Working::new());
    let mut p = ring.mpmc_producer().unwrap();
    let mut dying = ring.mpmc_consumer().unwrap();
    let mut adopter = ring.mpmc_consumer().unwrap();
    // SAFETY: each Working outlives its handle and serves only it.
    unsafe {
        dying.set_working(w_ptr(&wd));
        adopter.set_working(w_ptr(&wa));
    }
    let mut out = [0u8; 8];
    p.try_push(&rec(1)).unwrap();
    p.try_push(&rec(2)).unwrap();
    let g = dying.peek_up_to(1); // position 0, held in a zero-copy guard, then death
    assert_eq!(g.len(), 1);
    core::mem::forget(g);
    assert_eq!(wd.raw(), (2, 1), "announced: pos 0, consumer, len 1");
    adopter.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 2);
    assert!(wa.is_clear());
    // After wrapping around, producers stall at the unreleased slot (position 2 is slot 0).
    assert_eq!(p.try_push(&rec(3)), Err(PushError::Full));
    let mut got = Vec::new();
    let plain = ring.mpmc_consumer().unwrap();
    let mut plain2 = plain.clone();
    assert_eq!(
        plain2.adopt(&wd, [], |_| unreachable!()).unwrap_err(),
        SettleError::NoWorking
    );
    let s = adopter
        .adopt(&wd, [&wa], |rec| {
            // SAFETY: the callback gets record_size readable bytes.
            got.push(unsafe { rec.cast::<u64>().read() });
        })
        .unwrap();
    assert_eq!((s.settled, s.freed, s.deferred), (1, 0, 0));
    assert_eq!(got, [1]);
    assert!(wd.is_clear() && wa.is_clear());
    // Idempotent, and exactly once: a second adopter gets nothing.
    let s = adopter.adopt(&wd, [], |_| unreachable!()).unwrap();
    assert_eq!(s, Settled::default());
    wd.store_raw(2, 1); // the same dead record again (a racing settler's stale view)
    let s = adopter.adopt(&wd, [], |_| unreachable!()).unwrap();
    assert_eq!(s, Settled::default());
    // Producers proceed.
    p.try_push(&rec(3)).unwrap();
    p.try_push(&rec(4)).unwrap();
    adopter.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 3);
    adopter.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 4);
}

#[test]
fn adopted_records_are_pushed_back_as_a_producer_claim() {
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 2, 8, 8));
    let (wd, wa) = (Working::new(), Working::new());
    let mut p = ring.mpmc_producer().unwrap();
    let mut dying = ring.mpmc_consumer().unwrap();
    let mut adopter = ring.mpmc_consumer().unwrap();
    // SAFETY: each Working outlives its handle and serves only it.
    unsafe {
        dying.set_working(w_ptr(&wd));
        adopter.set_working(w_ptr(&wa));
    }
    let mut out = [0u8; 8];
    p.try_push(&rec(1)).unwrap();
    p.try_push(&rec(2)).unwrap();
    let g = dying.peek_up_to(2); // positions 0 and 1, then death
    core::mem::forget(g);
    let mut got = Vec::new();
    let s = adopter
        .adopt(&wd, [&wa], |r| {
            // SAFETY: the callback gets record_size readable bytes.
            got.push(unsafe { r.cast::<u64>().read() })
        })
        .unwrap();
    assert_eq!((s.settled, got.as_slice()), (2, &[1, 2][..]));
    // Hand them back: each push is announced in the adopter's own record as a producer's
    // claim (a death there is settled with settle_producer).
    for &v in &got {
        adopter
            .push_back_with(|slot| {
                assert_eq!(wa.raw().0 & 3, 1, "announced with the producer role");
                assert!(wa.announces_producer());
                // SAFETY: the claimed slot holds 8 writable bytes aligned to 8.
                unsafe { slot.cast::<u64>().write(v) }
            })
            .unwrap();
        assert!(wa.is_clear(), "cleared after publishing");
    }
    // Full now (two records, capacity 2): a hand-back is refused, nothing is overwritten.
    assert_eq!(
        adopter.push_back_with(|_| unreachable!()),
        Err(PushError::Full)
    );
    assert!(wa.is_clear(), "a refused hand-back leaves no announcement");
    // Any consumer gets them, and the adopter consumes normally afterwards (its announcement
    // length cache is shared with the consumer path).
    let mut plain = ring.mpmc_consumer().unwrap();
    plain.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 1);
    let g = adopter.peek_up_to(1);
    assert_eq!(
        wa.raw(),
        (3 << 2 | 2, 1),
        "consumer claim of position 3, len 1"
    );
    g.release();
    p.try_push(&rec(3)).unwrap();
    adopter.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 3);
    assert!(ring.is_empty());
}

#[test]
fn adopt_batches_skips_dead_adopters_and_defers_live_claims() {
    let (r, ring) = region_for(&cfg(RingKind::Mpmc, 4, 8, 8));
    let l = ring.layout();
    let stamp = |i: u64| stamp_offset(&ring, i);
    let head = l.cursors_offset + 128;
    let (wd, wa, wl) = (Working::new(), Working::new(), Working::new());
    let mut p = ring.mpmc_producer().unwrap();
    let mut dying = ring.mpmc_consumer().unwrap();
    let mut adopter = ring.mpmc_consumer().unwrap();
    let mut live = ring.mpmc_consumer().unwrap();
    // SAFETY: each Working outlives its handle and serves only it.
    unsafe {
        dying.set_working(w_ptr(&wd));
        adopter.set_working(w_ptr(&wa));
        live.set_working(w_ptr(&wl));
    }
    drop(p.reserve_up_to(1)); // position 0 skipped
    p.push_batch(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]); // positions 1, 2
    let g = dying.peek_up_to(2); // passes over 0, claims 1 and 2, then death
    assert_eq!(g.len(), 2);
    core::mem::forget(g);
    assert_eq!(
        wd.raw(),
        (2, 3),
        "pos 0, consumer, len 3 (skipped slot included)"
    );
    // A live consumer that announced position 1 (a stale pre-claim announcement) defers it.
    wl.store_raw(1 << 2 | 2, 1);
    let mut got = Vec::new();
    let s = adopter
        // SAFETY: the callback gets record_size (8) readable bytes.
        .adopt(&wd, [&wl], |r| got.push(unsafe { r.cast::<u8>().read() }))
        .unwrap();
    assert_eq!((s.settled, s.deferred), (1, 1));
    assert_eq!(got, [2]);
    assert!(!wd.is_clear());
    wl.store_raw(0, 0);
    let s = adopter
        // SAFETY: the callback gets record_size (8) readable bytes.
        .adopt(&wd, [&wl], |r| got.push(unsafe { r.cast::<u8>().read() }))
        .unwrap();
    assert_eq!((s.settled, s.deferred), (1, 0));
    assert_eq!(got, [2, 1]);
    assert!(wd.is_clear());
    // A dead consumer that died between its claim and releasing skipped slots, and a dead
    // adopter that died in the callback: both released without delivery.
    drop(p.reserve_up_to(1)); // position 3 skipped
    poke_u64(&r, head, 4); // a consumer's claim CAS of position 3...
    wd.store_raw(3 << 2 | 2, 1); // ...announced, then death before releasing it
    let s = adopter.adopt(&wd, [], |_| unreachable!()).unwrap();
    assert_eq!((s.settled, s.freed), (0, 1));
    p.try_push(&rec(9)).unwrap(); // position 4
    poke_u64(&r, stamp(0), 4 << 2 | 3); // adopted(4)...
    poke_u64(&r, head, 5);
    wa.store_raw(4 << 2 | 2, 1); // ...by an adopter that announced it and died
    let mut adopter2 = ring.mpmc_consumer().unwrap();
    let w2 = Working::new();
    // SAFETY: `w2` outlives `adopter2` and serves only it.
    unsafe { adopter2.set_working(w_ptr(&w2)) };
    let s = adopter2.adopt(&wa, [&w2], |_| unreachable!()).unwrap();
    assert_eq!((s.settled, s.freed), (0, 1));
    assert!(ring.is_empty());
    assert_eq!(p.push_batch(&[3; 32]), 4, "every slot is free again");
}

#[test]
fn settle_rejects_garbage_records() {
    let (r, ring) = region_for(&cfg(RingKind::Mpmc, 4, 8, 8));
    let w = Working::new();
    let mut c = ring.mpmc_consumer().unwrap();
    let wc = Working::new();
    // SAFETY: `wc` outlives `c` and serves only it.
    unsafe { c.set_working(w_ptr(&wc)) };
    let bad = [
        (4, 1),           // role 0 with a position
        (4 << 2 | 3, 1),  // role 3
        (1 << 2 | 2, 1),  // a consumer's record given to settle_producer
        (!3 | 1, 1),      // position ≥ 2^60
        (1 << 62 | 1, 1), // position 2^60
        (1 << 2 | 1, 0),  // zero length
    ];
    for (pr, len) in bad {
        w.store_raw(pr, len);
        assert_eq!(
            ring.settle_producer(&w, []),
            Err(SettleError::Invalid),
            "{pr:#x}"
        );
        assert_eq!(w.raw(), (pr, len), "garbage is left alone");
        // The consumer side rejects everything except role 2 records (one case is valid there).
        if pr & 3 != 2 || len == 0 || pr >> 2 >= 1 << 60 {
            assert!(c.adopt(&w, [], |_| unreachable!()).is_err());
        }
    }
    // A huge length is clamped to the capacity; garbage in live records covers nothing.
    let junk = Working::new();
    junk.store_raw(u64::MAX, u64::MAX);
    w.store_raw(1, u64::MAX);
    poke_u64(&r, l_tail(&ring), 1 << 40); // and a tail far away
    let s = ring.settle_producer(&w, [&junk]).unwrap();
    assert_eq!(s.deferred, 0);
    w.store_raw(2, u64::MAX);
    assert!(c.adopt(&w, [&junk], |_| ()).is_ok());
    // Only MPMC rings are settled.
    let (_r2, spsc) = region_for(&cfg(RingKind::Spsc, 4, 8, 8));
    w.store_raw(1, 1);
    assert_eq!(spsc.settle_producer(&w, []), Err(SettleError::NotMpmc));
}

fn l_tail(ring: &RawRing) -> u64 {
    ring.layout().cursors_offset
}

#[test]
fn mpmc_adopted_and_high_stamp_bits() {
    let c = cfg(RingKind::Mpmc, 4, 8, 8);
    let (region, ring) = region_for(&c);
    let l = ring.layout();
    let stamp = |i: u64| stamp_offset(&ring, i);
    let mut p = ring.mpmc_producer().unwrap();
    let mut cons = ring.mpmc_consumer().unwrap();
    let mut out = [0u8; 8];
    // adopted(0) one lap behind the tail: the slot is not free yet.
    poke_u64(&region, stamp(0), 3);
    poke_u64(&region, l.cursors_offset, 4);
    assert_eq!(p.try_push(&[1; 8]), Err(PushError::Full));
    // Stamps with bit 62 or 63 set name no position.
    for bad in [1 << 62, 1 << 63 | 4 << 2] {
        poke_u64(&region, stamp(0), bad);
        assert_eq!(p.try_push(&[1; 8]), Err(PushError::Corrupted));
        assert_eq!(cons.try_pop(&mut out), Err(PopError::Corrupted));
    }
}

#[test]
fn working_is_cleared_by_every_operation() {
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 2, 8, 8));
    let (wp, wc) = (Working::new(), Working::new());
    let mut p = ring.mpmc_producer().unwrap();
    let mut c = ring.mpmc_consumer().unwrap();
    // SAFETY: each Working outlives its handle and serves only it.
    unsafe {
        p.set_working(w_ptr(&wp));
        c.set_working(w_ptr(&wc));
    }
    let mut out = [0u8; 16];
    assert_eq!(c.try_pop(&mut out[..8]), Err(PopError::Empty));
    assert!(wc.is_clear());
    assert_eq!(p.push_batch(&[1; 16]), 2);
    assert!(wp.is_clear());
    assert_eq!(p.try_push(&[1; 8]), Err(PushError::Full));
    assert!(wp.is_clear(), "a failed claim leaves no announcement");
    let g = c.peek_up_to(2);
    assert_eq!(wc.raw(), (2, 2));
    drop(g);
    assert!(wc.is_clear());
    let mut g = p.try_reserve(1).unwrap();
    assert_eq!(wp.raw(), (2 << 2 | 1, 1));
    g.write(0, &[2; 8]);
    g.commit();
    assert!(wp.is_clear());
    assert_eq!(c.pop_batch(&mut out), 1);
    assert!(wc.is_clear());
    // Clones do not share the record.
    let mut p2 = p.clone();
    p2.try_push(&[3; 8]).unwrap();
    assert!(wp.is_clear());
}
