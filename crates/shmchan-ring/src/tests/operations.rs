//! Ring operations: corrupted cursors and stamps, termination on garbage, grants and batches
//! across the wrap point, threaded smoke tests, prefetch steps.

use std::vec;
use std::vec::Vec;

use super::*;

#[test]
fn spsc_detects_corrupted_cursors() {
    let c = cfg(RingKind::Spsc, 4, 8, 8);
    let (region, ring) = region_for(&c);
    let l = ring.layout();
    // SAFETY: single-threaded test: one producer, one consumer.
    let (mut p, mut cons) =
        unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
    p.try_push(&[1; 8]).unwrap();
    p.try_push(&[1; 8]).unwrap();
    let mut out = [0u8; 8];
    assert_eq!(cons.try_pop(&mut out), Ok(())); // caches tail = 2
                                                // The producer cursor runs more than a lap ahead of the consumer's.
    poke_u64(&region, l.cursors_offset, 100);
    assert_eq!(cons.try_pop(&mut out), Ok(())); // from the cache: the record we pushed
    assert_eq!(cons.try_pop(&mut out), Err(PopError::Corrupted));
    assert_eq!(cons.pop_batch(&mut [0; 16]), 0);
    assert_eq!(cons.try_peek(1).unwrap_err(), PopError::Corrupted);
    assert!(cons.peek_up_to(3).is_empty());
    // The consumer cursor jumps ahead of the producer's local tail.
    poke_u64(&region, l.cursors_offset + 128, 1 << 40);
    for _ in 0..3 {
        let _ = p.try_push(&[2; 8]);
    }
    assert_eq!(p.try_push(&[2; 8]), Err(PushError::Corrupted));
    assert_eq!(p.try_push_batch(&[0; 16]), Err(PushError::Corrupted));
    assert_eq!(p.try_reserve(1).unwrap_err(), PushError::Corrupted);
    assert!(p.reserve_up_to(2).is_empty());
    assert!(ring.len() <= 4);
    // New handles validate on first use too.
    // SAFETY: the old handles are dropped first.
    let (mut p, mut cons) = unsafe {
        let _old = (p, cons);
        (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap())
    };
    assert_eq!(p.try_push(&[3; 8]), Err(PushError::Corrupted));
    assert_eq!(cons.try_pop(&mut out), Err(PopError::Corrupted));
}

#[test]
fn mpmc_detects_corrupted_stamps_and_cursors() {
    let c = cfg(RingKind::Mpmc, 4, 8, 8);
    let (region, ring) = region_for(&c);
    let l = ring.layout();
    let stamp = |i: u64| stamp_offset(&ring, i);
    let mut p = ring.mpmc_producer().unwrap();
    let mut cons = ring.mpmc_consumer().unwrap();
    let mut out = [0u8; 8];
    // adopted(0) at the head/tail: the cursor cannot be stale, so the stamp is garbage.
    poke_u64(&region, stamp(0), 3);
    assert_eq!(p.try_push(&[1; 8]), Err(PushError::Corrupted));
    assert_eq!(cons.try_pop(&mut out), Err(PopError::Corrupted));
    // A stamp from the future while the cursor does not move: stale-cursor retry cannot help.
    poke_u64(&region, stamp(0), 9 << 2);
    assert_eq!(p.try_push(&[1; 8]), Err(PushError::Corrupted));
    assert_eq!(cons.try_pop(&mut out), Err(PopError::Corrupted));
    // A stamp from the past: the slot looks occupied / not yet published.
    poke_u64(&region, stamp(0), 0);
    poke_u64(&region, l.cursors_offset, 4); // tail = 4: slot 0 should be free for 4
    assert_eq!(p.try_push(&[1; 8]), Err(PushError::Full));
    // Cursors at or beyond 2^60 are rejected.
    poke_u64(&region, l.cursors_offset, u64::MAX);
    assert_eq!(p.try_push(&[1; 8]), Err(PushError::Corrupted));
    assert_eq!(p.push_batch(&[1; 16]), 0);
    poke_u64(&region, l.cursors_offset + 128, 1 << 60);
    assert_eq!(cons.try_pop(&mut out), Err(PopError::Corrupted));
    assert_eq!(cons.try_peek(1).unwrap_err(), PopError::Corrupted);
    assert!(ring.len() <= 4);
}

/// `MpmcConsumer::head_ready` (what a blocking peek waits on): ready for a record, a skipped
/// slot, a later lap's stamp and garbage (a take must look, and reports the corruption), not
/// for a slot not yet published; the one-slot `try_peek` / `try_reserve` (the inline claims)
/// report the same corruption as the general ones.
#[test]
fn mpmc_head_ready_waits_only_for_an_unpublished_slot() {
    let c = cfg(RingKind::Mpmc, 4, 8, 8);
    let (region, ring) = region_for(&c);
    let stamp = |i: u64| stamp_offset(&ring, i);
    let mut p = ring.mpmc_producer().unwrap();
    let mut cons = ring.mpmc_consumer().unwrap();
    assert!(!cons.head_ready(), "an empty ring");
    // A producer's claim not yet published: the tail moved, the stamp did not.
    let g = p.try_reserve(1).unwrap();
    let d = g.detach();
    assert!(!ring.is_empty());
    assert!(!cons.head_ready(), "a claim in progress is not ready");
    // SAFETY: `d` is this producer's claim, detached above.
    unsafe { p.reattach(d) }.commit();
    assert!(cons.head_ready(), "a published record");
    let g = cons.try_peek(1).unwrap();
    assert_eq!(g.len(), 1);
    g.release();
    assert!(!cons.head_ready(), "taken");
    // Skipped: a claim given up.
    drop(p.try_reserve(1).unwrap());
    assert!(cons.head_ready(), "a skipped slot to pass over");
    assert_eq!(cons.try_peek(1).unwrap_err(), PopError::Empty);
    assert!(!cons.head_ready());
    // At the head (position 2): adopted for this position, a later lap's record, garbage
    // (bits no position has): ready, and the take reports the corruption (the head does not
    // move, so it cannot be stale).
    for bad in [2 << 2 | 3, 6 << 2 | 1, u64::MAX] {
        poke_u64(&region, stamp(2), bad);
        assert!(cons.head_ready(), "stamp {bad:#x}");
        assert_eq!(cons.try_peek(1).unwrap_err(), PopError::Corrupted);
        assert_eq!(p.try_reserve(1).unwrap_err(), PushError::Corrupted);
    }
}

#[test]
fn operations_terminate_on_static_garbage() {
    // Every byte pattern in the cursor and slot area: operations finish with some result.
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        for fill in [0x00u8, 0x01, 0x04, 0x05, 0x06, 0x7f, 0x80, 0xfe, 0xff] {
            let c = cfg(kind, 8, 8, 8);
            let (region, ring) = region_for(&c);
            let l = ring.layout();
            for i in l.cursors_offset as usize..region.len() {
                if i % 128 < 64 || i >= l.slots_offset as usize {
                    region.scribble(i, fill);
                }
            }
            let ring = region.open().unwrap();
            let mut out = [0u8; 8];
            match kind {
                RingKind::Spsc => {
                    // SAFETY: single-threaded: one producer, one consumer.
                    let (mut p, mut cons) =
                        unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
                    for _ in 0..20 {
                        let _ = p.try_push(&[0; 8]);
                        let _ = cons.try_pop(&mut out);
                        let _ = p.push_batch(&[0; 64]);
                        let _ = cons.pop_batch(&mut [0; 64]);
                    }
                }
                RingKind::Mpmc => {
                    let mut p = ring.mpmc_producer().unwrap();
                    let mut cons = ring.mpmc_consumer().unwrap();
                    for _ in 0..20 {
                        let _ = p.try_push(&[0; 8]);
                        let _ = cons.try_pop(&mut out);
                        let _ = p.push_batch(&[0; 64]);
                        let _ = cons.pop_batch(&mut [0; 64]);
                        drop(p.reserve_up_to(3));
                        drop(cons.peek_up_to(3));
                    }
                }
            }
            assert!(ring.len() <= 8);
        }
    }
}

#[test]
fn mpmc_capacity_one_is_unambiguous() {
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 1, 8, 8));
    let mut p = ring.mpmc_producer().unwrap();
    let mut c = ring.mpmc_consumer().unwrap();
    let mut out = [0u8; 8];
    for i in 0..10u64 {
        p.try_push(&i.to_ne_bytes()).unwrap();
        assert_eq!(p.try_push(&i.to_ne_bytes()), Err(PushError::Full));
        c.try_pop(&mut out).unwrap();
        assert_eq!(u64::from_ne_bytes(out), i);
        assert_eq!(c.try_pop(&mut out), Err(PopError::Empty));
    }
}

#[test]
fn mpmc_skipped_slots_are_passed_over() {
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 4, 8, 8));
    let mut p = ring.mpmc_producer().unwrap();
    let mut p2 = ring.mpmc_producer().unwrap();
    let mut c = ring.mpmc_consumer().unwrap();
    let mut out = [0u8; 8];
    p.try_push(&1u64.to_ne_bytes()).unwrap();
    let g = p.try_reserve(2).unwrap(); // positions 1, 2
    p2.try_push(&4u64.to_ne_bytes()).unwrap(); // position 3
    assert!(ring.is_full());
    c.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 1);
    assert_eq!(c.try_pop(&mut out), Err(PopError::Empty)); // 1 is claimed, not published
    drop(g); // publishes 1 and 2 as skipped
    c.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 4);
    assert!(ring.is_empty());
    // The skipped slots were freed: a full lap fits again.
    assert_eq!(p.push_batch(&[7; 32]), 4);
}

#[test]
fn grants_span_the_wrap_point() {
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let (_r, ring) = region_for(&cfg(kind, 4, 8, 8));
        let mut out = [0u8; 32];
        type Push = std::boxed::Box<dyn FnMut(usize, u64)>;
        type Pop = std::boxed::Box<dyn FnMut(usize) -> Vec<u64>>;
        let (mut push, mut pop): (Push, Pop) = match kind {
            RingKind::Spsc => {
                // SAFETY: single-threaded: one producer, one consumer.
                let (mut p, mut c) =
                    unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
                (
                    std::boxed::Box::new(move |n, first| {
                        let mut g = p.try_reserve(n).unwrap();
                        for i in 0..n {
                            g.write(i, &(first + i as u64).to_ne_bytes());
                        }
                        g.commit();
                    }),
                    std::boxed::Box::new(move |n| {
                        let g = c.try_peek(n).unwrap();
                        let v = (0..n)
                            .map(|i| {
                                let mut b = [0u8; 8];
                                g.read(i, &mut b);
                                u64::from_ne_bytes(b)
                            })
                            .collect();
                        g.release();
                        v
                    }),
                )
            }
            RingKind::Mpmc => {
                let (mut p, mut c) = (ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap());
                (
                    std::boxed::Box::new(move |n, first| {
                        let mut g = p.try_reserve(n).unwrap();
                        for i in 0..n {
                            g.write(i, &(first + i as u64).to_ne_bytes());
                        }
                        g.commit();
                    }),
                    std::boxed::Box::new(move |n| {
                        let g = c.try_peek(n).unwrap();
                        let v = (0..n)
                            .map(|i| {
                                let mut b = [0u8; 8];
                                g.read(i, &mut b);
                                u64::from_ne_bytes(b)
                            })
                            .collect();
                        g.release();
                        v
                    }),
                )
            }
        };
        push(3, 0);
        assert_eq!(pop(3), [0, 1, 2]);
        push(4, 10); // positions 3..7: slots 3, 0, 1, 2
        assert_eq!(pop(4), [10, 11, 12, 13]);
        let _ = &mut out;
    }
}

#[test]
fn spsc_batches_wrap() {
    let (_r, ring) = region_for(&cfg(RingKind::Spsc, 8, 4, 4));
    // SAFETY: single-threaded: one producer, one consumer.
    let (mut p, mut c) = unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
    let mut next = 0u32;
    let mut expect = 0u32;
    for round in 0..50 {
        let k = 1 + round % 7;
        let recs: Vec<u8> = (0..k).flat_map(|i| (next + i).to_ne_bytes()).collect();
        let n = p.push_batch(&recs) as u32;
        next += n;
        let mut out = vec![0u8; 4 * (1 + round as usize % 5)];
        let m = c.pop_batch(&mut out);
        for i in 0..m {
            assert_eq!(
                u32::from_ne_bytes(out[4 * i..4 * i + 4].try_into().unwrap()),
                expect
            );
            expect += 1;
        }
    }
    assert!(next > 100);
}

/// Threaded smoke tests (the proofs are the loom models; these run the real atomics).
#[cfg(not(miri))]
const STRESS_N: u64 = 200_000;
#[cfg(miri)]
const STRESS_N: u64 = 200;

#[test]
fn spsc_threads_in_order() {
    let (_r, ring) = region_for(&cfg(RingKind::Spsc, 16, 8, 8));
    // SAFETY: one producer thread, one consumer thread.
    let (mut p, mut c) = unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut i = 0u64;
            while i < STRESS_N {
                if i % 3 == 0 {
                    let recs: Vec<u8> = (i..(i + 5).min(STRESS_N))
                        .flat_map(u64::to_ne_bytes)
                        .collect();
                    i += p.push_batch(&recs) as u64;
                } else if p.try_push(&i.to_ne_bytes()).is_ok() {
                    i += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        s.spawn(move || {
            let mut want = 0u64;
            let mut buf = [0u8; 8 * 7];
            while want < STRESS_N {
                let n = c.pop_batch(&mut buf);
                for k in 0..n {
                    assert_eq!(
                        u64::from_ne_bytes(buf[8 * k..8 * k + 8].try_into().unwrap()),
                        want
                    );
                    want += 1;
                }
                if n == 0 {
                    std::thread::yield_now();
                }
            }
        });
    });
}

#[test]
fn mpmc_threads_deliver_each_record_once() {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let (_r, ring) = region_for(&cfg(RingKind::Mpmc, 8, 8, 8));
    let producers = 2u64;
    let per = STRESS_N / 4;
    let total = producers * per;
    let seen = std::sync::Mutex::new(vec![0u8; total as usize]);
    let received = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..producers {
            let mut p = ring.mpmc_producer().unwrap();
            s.spawn(move || {
                let mut i = 0;
                let mut dropped = false;
                while i < per {
                    let v = t * per + i;
                    let sent = if i % 4 == 0 {
                        // Zero-copy; some grants are dropped once (consumers skip them) and
                        // their record sent again.
                        match p.try_reserve(1) {
                            Ok(mut g) => {
                                g.write(0, &v.to_ne_bytes());
                                if v % 3 == 0 && !dropped {
                                    dropped = true;
                                    drop(g);
                                    false
                                } else {
                                    g.commit();
                                    true
                                }
                            }
                            Err(_) => false,
                        }
                    } else {
                        p.try_push(&v.to_ne_bytes()).is_ok()
                    };
                    if sent {
                        i += 1;
                        dropped = false;
                    } else {
                        std::thread::yield_now();
                    }
                }
            });
        }
        for _ in 0..2 {
            let mut c = ring.mpmc_consumer().unwrap();
            let (seen, received) = (&seen, &received);
            s.spawn(move || {
                let mut buf = [0u8; 24];
                while received.load(Relaxed) < total {
                    let n = c.pop_batch(&mut buf);
                    if n == 0 {
                        std::thread::yield_now();
                        continue;
                    }
                    let mut seen = seen.lock().unwrap();
                    for k in 0..n {
                        let v = u64::from_ne_bytes(buf[8 * k..8 * k + 8].try_into().unwrap());
                        seen[v as usize] += 1;
                    }
                    received.fetch_add(n as u64, Relaxed);
                }
            });
        }
    });
    assert!(seen.into_inner().unwrap().iter().all(|&n| n == 1));
    assert!(ring.is_empty());
}

#[test]
fn one_record_prefetch_steps_cover_every_line() {
    use crate::raw::{prefetch_params, PREFETCH_AHEAD_BYTES};
    use crate::sync::CACHE_LINE;
    for stride in [
        1u64,
        2,
        4,
        8,
        12,
        16,
        24,
        32,
        40,
        48,
        64,
        72,
        128,
        520,
        4096,
        1 << 20,
    ] {
        let (mask, ahead) = prefetch_params(stride);
        let step = mask + 1;
        assert!(step.is_power_of_two(), "stride {stride}: step {step}");
        // Successive prefetches are at most a line apart (or one slot, for slots of a line or
        // more), so no line of slots is skipped ...
        assert!(
            step * stride <= CACHE_LINE.max(stride),
            "stride {stride}: step {step}"
        );
        // ... and at least half a line apart, so there is about one per line, not one per slot.
        assert!(
            step == 1 || 2 * step * stride > CACHE_LINE,
            "stride {stride}"
        );
        assert!(ahead >= 1 && ahead * stride <= PREFETCH_AHEAD_BYTES.max(stride));
        // The group a prefetch covers lies inside the distance it looks ahead.
        assert!(step <= ahead, "stride {stride}: step {step} ahead {ahead}");
    }
    // 8-byte records: every 8th position, 64 positions (512 bytes) ahead.
    assert_eq!(prefetch_params(8), (7, 64));
}

#[test]
fn exact_capacity_below_the_slots() {
    // Capacity 3 over 4 slots: three records, never four, by every path, across many laps.
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let c = cfg(kind, 3, 8, 8);
        let (_region, ring) = region_for(&c);
        assert_eq!((ring.capacity(), ring.config().slots()), (3, 4));
        let mut out = [0u8; 8 * 8];
        let push = |ring: &RawRing, rec: &[u8]| match kind {
            // SAFETY: one producer at a time in this single-threaded test.
            RingKind::Spsc => unsafe { ring.spsc_producer() }.unwrap().try_push_batch(rec),
            RingKind::Mpmc => ring.mpmc_producer().unwrap().try_push_batch(rec),
        };
        let pop = |ring: &RawRing, out: &mut [u8]| match kind {
            // SAFETY: as above, one consumer at a time.
            RingKind::Spsc => unsafe { ring.spsc_consumer() }.unwrap().try_pop_batch(out),
            RingKind::Mpmc => ring.mpmc_consumer().unwrap().try_pop_batch(out),
        };
        for lap in 0..10u8 {
            assert_eq!(push(&ring, &[lap; 8 * 5]), Ok(3), "a batch never overfills");
            assert_eq!(ring.len(), 3);
            assert!(ring.is_full());
            assert_eq!(push(&ring, &[lap; 8]), Err(PushError::Full));
            // Leave one behind, so that the next lap starts one position further on.
            assert_eq!(pop(&ring, &mut out[..16]), Ok(2));
            assert_eq!(push(&ring, &[lap; 8 * 4]), Ok(2));
            assert_eq!(pop(&ring, &mut out), Ok(3));
            assert_eq!(pop(&ring, &mut out), Err(PopError::Empty));
        }
    }
}

#[test]
fn mpmc_room_counts_from_the_consumers_claims() {
    // Capacity 3 over 4 slots: a record claimed by a consumer (a peek held) has left the ring
    // as far as producers are concerned, as in crossbeam's array flavor: its slot is not
    // reused while the peek is held, but the free fourth slot takes the next record.
    let (_region, ring) = region_for(&cfg(RingKind::Mpmc, 3, 8, 8));
    let (mut p, mut c) = (ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap());
    for i in 0..3u8 {
        p.try_push(&[i; 8]).unwrap();
    }
    let held = c.try_peek(1).unwrap();
    p.try_push(&[3; 8]).unwrap(); // position 3, slot 3
    assert_eq!(p.try_push(&[4; 8]), Err(PushError::Full)); // three in the ring: full at once
    drop(held);
    let mut out = [0u8; 8];
    for i in 1..4u8 {
        c.try_pop(&mut out).unwrap();
        assert_eq!(out, [i; 8]);
    }
}

#[test]
fn mpmc_waits_for_a_claim_once_per_handle() {
    // Capacity 4 over 4 slots, full, the oldest record held by a peek: the slot the next push
    // needs is being read, so the ring is not full; with the reader stalled (this very
    // thread), the push waits out its bound and then reports Full, and a second push of the
    // same handle reports Full without waiting again. The same for a held reservation at
    // the head and a pop.
    let (_region, ring) = region_for(&cfg(RingKind::Mpmc, 4, 8, 8));
    let (mut p, mut c) = (ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap());
    for i in 0..4u8 {
        p.try_push(&[i; 8]).unwrap();
    }
    let held = c.try_peek(1).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(p.try_push(&[9; 8]), Err(PushError::Full));
    let first = t.elapsed();
    assert!(first >= crate::mpmc::CLAIM_WAIT, "{first:?}");
    assert_eq!(p.try_push(&[9; 8]), Err(PushError::Full));
    assert_eq!(p.try_reserve(1).unwrap_err(), PushError::Full);
    drop(held);
    let mut out = [0u8; 8];
    for _ in 0..3 {
        c.try_pop(&mut out).unwrap();
    }
    let mut p2 = ring.mpmc_producer().unwrap();
    let g = p.try_reserve(1).unwrap(); // position 4: claimed, not published
    p2.try_push(&[5; 8]).unwrap(); // position 5: published behind it
    let mut c2 = ring.mpmc_consumer().unwrap();
    let t = std::time::Instant::now();
    assert_eq!(c2.try_pop(&mut out), Err(PopError::Empty));
    assert!(t.elapsed() >= crate::mpmc::CLAIM_WAIT);
    assert_eq!(c2.try_pop(&mut out), Err(PopError::Empty));
    g.commit();
    c2.try_pop(&mut out).unwrap();
    c2.try_pop(&mut out).unwrap();
    assert_eq!(out, [5; 8]);
}

#[test]
fn detached_grants_commit_and_release_once_and_only_their_own() {
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let c = cfg(kind, 4, 8, 8);
        let (_region, ring) = region_for(&c);
        let mut out = [0u8; 8];
        if kind == RingKind::Spsc {
            // SAFETY: single-threaded test: one producer, one consumer.
            let (mut p, mut cons) =
                unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
            let mut g = p.try_reserve(1).unwrap();
            g.write(0, &[7; 8]);
            let d = g.detach();
            assert_eq!(d.len(), 1);
            assert_eq!(
                cons.try_pop(&mut out),
                Err(PopError::Empty),
                "not yet published"
            );
            p.reattach(d).commit();
            assert_eq!(cons.try_peek(1).unwrap().detach().len(), 1);
            // A stale token (the position moved on) gives an empty grant.
            let stale = p.try_reserve(1).unwrap().detach();
            p.try_push(&[8; 8]).unwrap();
            assert!(p.reattach(stale).is_empty());
            let d = cons.try_peek(1).unwrap().detach();
            cons.reattach(d).release();
            assert_eq!(cons.try_pop(&mut out), Ok(()));
            assert_eq!(out, [8; 8]);
            // A token for more than is ready gives an empty grant too.
            let big = crate::Detached { start: 2, len: 3 };
            assert!(cons.reattach(big).is_empty());
        } else {
            let (mut p, mut cons) = (ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap());
            let mut g = p.try_reserve(1).unwrap();
            g.write(0, &[7; 8]);
            let d = g.detach();
            assert_eq!(
                cons.try_pop(&mut out),
                Err(PopError::Empty),
                "claimed, not published"
            );
            // SAFETY: `d` is this producer's claim, detached just before.
            unsafe { p.reattach(d) }.commit();
            let d = cons.try_peek(1).unwrap().detach();
            // SAFETY: this consumer's claim.
            unsafe { cons.reattach(d) }.release();
            // A detached claim dropped through its grant is skipped.
            let d = p.try_reserve(1).unwrap().detach();
            // SAFETY: as above.
            drop(unsafe { p.reattach(d) });
            p.try_push(&[9; 8]).unwrap();
            assert_eq!(cons.try_pop(&mut out), Ok(()));
            assert_eq!(out, [9; 8]);
        }
        assert_eq!(ring.len(), 0, "{kind:?}");
    }
}

#[test]
fn spsc_one_record_zero_copy_forms() {
    // `next_free` + `commit_one` and `next_ready` + `release_one` across the wrap point, mixed
    // with the other forms; Full and Empty where the grants would say so; a corrupted cursor
    // reported, not trusted.
    let c = cfg(RingKind::Spsc, 2, 8, 8);
    let (region, ring) = region_for(&c);
    let l = ring.layout();
    // SAFETY: single-threaded test: one producer, one consumer.
    let (mut p, mut cons) =
        unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
    assert_eq!(cons.next_ready().unwrap_err(), PopError::Empty);
    let mut out = [0u8; 8];
    for v in 1..=5u64 {
        let slot = p.next_free().unwrap();
        // SAFETY: an 8-byte, 8-aligned free slot, published right after.
        unsafe {
            slot.cast::<u64>().as_ptr().write(v);
            p.commit_one();
        }
        p.try_push(&(v + 100).to_ne_bytes()).unwrap();
        assert_eq!(p.next_free().unwrap_err(), PushError::Full);
        let r = cons.next_ready().unwrap();
        // SAFETY: a ready 8-byte, 8-aligned record, freed right after.
        unsafe {
            assert_eq!(r.cast::<u64>().as_ptr().read(), v);
            cons.release_one();
        }
        cons.try_pop(&mut out).unwrap();
        assert_eq!(u64::from_ne_bytes(out), v + 100);
        assert_eq!(cons.next_ready().unwrap_err(), PopError::Empty);
    }
    // A producer cursor more than a lap ahead of the consumer's: `Corrupted`.
    poke_u64(&region, l.cursors_offset, 1 << 40);
    assert_eq!(cons.next_ready().unwrap_err(), PopError::Corrupted);
}
