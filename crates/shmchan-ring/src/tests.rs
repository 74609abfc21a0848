//! Unit tests: layout, validation, corruption handling, threaded smoke tests, model sequences
//! and the fuzz corpus replay. Miri runs all of them (the large ones shrink under `cfg(miri)`).

use std::format;
use std::string::ToString;
use std::vec;
use std::vec::Vec;

use crate::layout::{CURSORS_LEN, HEADER_LEN};
use crate::model::{open_region, record_bytes, ring_vs_model, Region};
use crate::*;

fn cfg(kind: RingKind, capacity: u32, size: u32, align: u32) -> RingConfig {
    RingConfig::new(kind, capacity, size, align)
}

fn region_for(c: &RingConfig) -> (Region, RawRing) {
    let l = Layout::new(c).unwrap();
    let region = Region::zeroed(l.total_len as usize);
    let ring = region.init(c).unwrap();
    (region, ring)
}

/// Overwrites a u64 in the region (as a hostile peer would).
fn poke_u64(region: &Region, offset: u64, v: u64) {
    for (i, b) in v.to_ne_bytes().into_iter().enumerate() {
        region.scribble(offset as usize + i, b);
    }
}

fn poke_u32(region: &Region, offset: u64, v: u32) {
    for (i, b) in v.to_ne_bytes().into_iter().enumerate() {
        region.scribble(offset as usize + i, b);
    }
}

#[test]
fn layout_offsets_and_strides() {
    let l = Layout::new(&cfg(RingKind::Spsc, 8, 8, 8)).unwrap();
    assert_eq!(
        (l.ext_offset, l.ext_len, l.cursors_offset, l.slots_offset),
        (128, 0, 128, 640)
    );
    assert_eq!(l.info.slot_stride, 8);
    assert_eq!(l.total_len, 640 + 64);
    assert_eq!(HEADER_LEN, 128);
    assert_eq!(CURSORS_LEN, 512);

    let mut c = cfg(RingKind::Mpmc, 4, 3, 1);
    c.ext_len = 200;
    let l = Layout::new(&c).unwrap();
    assert_eq!(
        (l.ext_offset, l.cursors_offset, l.slots_offset),
        (128, 384, 896)
    );
    assert_eq!(l.info.slot_stride, 16); // 8 stamp + 3 record, rounded to 8
    assert_eq!(l.info.record_offset(), 8);

    // SPSC: size rounded up to the alignment.
    assert_eq!(
        Layout::new(&cfg(RingKind::Spsc, 1, 5, 4))
            .unwrap()
            .info
            .slot_stride,
        8
    );
    assert_eq!(
        Layout::new(&cfg(RingKind::Spsc, 1, 1, 1))
            .unwrap()
            .info
            .slot_stride,
        1
    );
    // MPMC with a large alignment: the record starts at the alignment.
    let l = Layout::new(&cfg(RingKind::Mpmc, 2, 130, 128)).unwrap();
    assert_eq!((l.info.record_offset(), l.info.slot_stride), (128, 384));
}

#[test]
fn layout_rejects_bad_configs() {
    let bad = |c: RingConfig, field: Field| match Layout::new(&c) {
        Err(LayoutError::Invalid { field: f, .. }) => assert_eq!(f, field, "{c:?}"),
        other => panic!("{c:?}: {other:?}"),
    };
    bad(cfg(RingKind::Spsc, 0, 8, 8), Field::Capacity);
    bad(cfg(RingKind::Spsc, 3, 8, 8), Field::Capacity);
    bad(cfg(RingKind::Spsc, 1 << 25, 8, 8), Field::Capacity);
    bad(cfg(RingKind::Spsc, 4, 0, 8), Field::RecordSize);
    bad(cfg(RingKind::Spsc, 4, (1 << 30) + 1, 8), Field::RecordSize);
    bad(cfg(RingKind::Spsc, 4, 8, 0), Field::RecordAlign);
    bad(cfg(RingKind::Spsc, 4, 8, 3), Field::RecordAlign);
    bad(cfg(RingKind::Mpmc, 4, 8, 256), Field::RecordAlign);
    let mut c = cfg(RingKind::Spsc, 4, 8, 8);
    c.ext_len = u64::MAX - 10;
    assert!(matches!(Layout::new(&c), Err(LayoutError::Overflow { .. })));
    c.ext_len = 1 << 63;
    assert!(matches!(
        Layout::new(&c),
        Err(LayoutError::Invalid {
            field: Field::TotalLen,
            ..
        })
    ));
    // The largest legal ring still computes.
    let l = Layout::new(&cfg(RingKind::Mpmc, 1 << 24, 1 << 30, 128)).unwrap();
    assert!(l.total_len > 1 << 54);
    let msg = Layout::new(&cfg(RingKind::Spsc, 3, 8, 8))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("capacity") && msg.contains('3'), "{msg}");
}

#[test]
fn init_checks_region() {
    let c = cfg(RingKind::Spsc, 4, 8, 8);
    let need = Layout::new(&c).unwrap().total_len as usize;
    let region = Region::zeroed(need + 256);
    // SAFETY: the region is valid for need + 256 bytes; the misaligned base is refused before
    // anything is written.
    let r = unsafe { RawRing::init(region.base().add(8), need, &c) };
    assert!(matches!(r, Err(LayoutError::Misaligned { .. })));
    // SAFETY: as above; the short length is refused before anything is written.
    let r = unsafe { RawRing::init(region.base(), need - 1, &c) };
    assert_eq!(
        r.unwrap_err(),
        LayoutError::RegionTooSmall {
            needed: need as u64,
            len: need - 1
        }
    );
    // SAFETY: the region is valid for need + 256 bytes.
    assert!(unsafe { RawRing::open(region.base().add(8), need) }.is_err());
}

#[test]
fn init_then_open_roundtrip_and_ext() {
    let mut c = cfg(RingKind::Mpmc, 8, 12, 4);
    c.ext_len = 100;
    c.fingerprint = *b"0123456789abcdef";
    let l = Layout::new(&c).unwrap();
    let region = Region::zeroed(l.total_len as usize);
    for i in 0..region.len() {
        region.scribble(i, 0xa5);
    }
    let mut seen = 0;
    // SAFETY: the region is valid for its length and nobody else uses it.
    let ring = unsafe {
        RawRing::init_with(region.base(), region.len(), &c, |p, n| {
            // The ext area is zeroed before the callback.
            assert!((0..n).all(|i| p.add(i).read() == 0));
            p.write(42);
            seen = n;
        })
    }
    .unwrap();
    assert_eq!(seen, 100);
    let opened = region.open().unwrap();
    assert_eq!(opened.layout(), ring.layout());
    assert_eq!(opened.config().fingerprint, *b"0123456789abcdef");
    let (ext, n) = opened.ext();
    assert_eq!(n, 100);
    // SAFETY: the ext area lies inside the region.
    assert_eq!(unsafe { ext.read() }, 42);
    let h = opened.header().snapshot();
    assert_eq!(
        (h.magic, h.init_state, h.kind, h.capacity),
        (MAGIC, 2, 2, 8)
    );
    // SAFETY: the region is valid for its length.
    let raw = unsafe { RawRing::read_header(region.base(), region.len()) };
    assert_eq!(raw.unwrap(), h);
    assert!(format!("{:?}", opened.header()).contains("capacity: 8"));
    assert_eq!(opened.kind(), RingKind::Mpmc);
    assert_eq!(opened.capacity(), 8);
    assert!(opened.region_len() >= opened.layout().total_len as usize);
}

#[test]
fn open_validates_every_field() {
    let c = cfg(RingKind::Mpmc, 8, 8, 8);
    let fresh = || region_for(&c).0;
    let expect = |r: Result<RawRing, OpenError>, want: &dyn Fn(&OpenError) -> bool| {
        let e = r.unwrap_err();
        assert!(want(&e), "{e:?}");
        assert!(!e.to_string().is_empty());
    };
    // Not initialised / initialising: retryable.
    let zero = Region::zeroed(4096);
    expect(zero.open(), &|e| {
        *e == OpenError::NotReady { init_state: 0 }
    });
    let r = fresh();
    poke_u32(&r, 12, 1);
    expect(r.open(), &|e| *e == OpenError::NotReady { init_state: 1 });
    let r = fresh();
    poke_u32(&r, 12, 7);
    expect(r.open(), &|e| {
        matches!(
            e,
            OpenError::Invalid {
                field: Field::InitState,
                value: 7,
                ..
            }
        )
    });
    let r = fresh();
    poke_u64(&r, 0, 1234);
    expect(r.open(), &|e| *e == OpenError::BadMagic { found: 1234 });
    let r = fresh();
    poke_u32(&r, 8, 9);
    expect(r.open(), &|e| {
        *e == OpenError::UnsupportedVersion { found: 9 }
    });

    let field_is = |off: u64, v: u64, wide: bool, f: Field, reported: u64| {
        let r = fresh();
        if wide {
            poke_u64(&r, off, v);
        } else {
            poke_u32(&r, off, v as u32);
        }
        match r.open() {
            Err(OpenError::Invalid { field, value, .. }) => {
                assert_eq!((field, value), (f, reported), "offset {off}");
            }
            Err(OpenError::RegionTooSmall { .. }) if f == Field::TotalLen => {}
            other => panic!("offset {off} = {v}: {other:?}"),
        }
    };
    let field = |off: u64, v: u64, wide: bool, f: Field| field_is(off, v, wide, f, v);
    field(16, 3, false, Field::Kind);
    field(20, 6, false, Field::Capacity);
    field(20, 1 << 25, false, Field::Capacity);
    field(24, 0, false, Field::RecordSize);
    field(28, 3, false, Field::RecordAlign);
    field(28, 256, false, Field::RecordAlign);
    field(32, 8, false, Field::SlotStride); // MPMC needs 16
    field(32, 20, false, Field::SlotStride); // not a multiple of 8
    field(56, 0, true, Field::ExtOffset);
    field(56, 129, true, Field::ExtOffset);
    field(64, u64::MAX, true, Field::ExtLen);
    field_is(64, 1, true, Field::CursorsOffset, 128); // ext now overlaps the cursors
    field(72, 0, true, Field::CursorsOffset);
    field(72, 130, true, Field::CursorsOffset);
    field(72, !127, true, Field::CursorsOffset);
    field(80, 256, true, Field::SlotsOffset);
    field(80, 641, true, Field::SlotsOffset);
    field(80, !127, true, Field::SlotsOffset);
    field(88, 100, true, Field::TotalLen);
    // A total_len beyond the region.
    let r = fresh();
    poke_u64(&r, 88, 1 << 40);
    expect(
        r.open(),
        &|e| matches!(e, OpenError::RegionTooSmall { needed, .. } if *needed == 1 << 40),
    );
    // A region shorter than the header.
    let tiny = Region::zeroed(64);
    expect(tiny.open(), &|e| {
        matches!(e, OpenError::RegionTooSmall { .. })
    });
    // A larger, aligned stride is accepted (forward compatible).
    let r = Region::zeroed(640 + 8 * 32);
    r.init(&c).unwrap();
    poke_u32(&r, 32, 32);
    poke_u64(&r, 88, 640 + 8 * 32);
    let ring = r.open().unwrap();
    assert_eq!(ring.config().slot_stride, 32);
    let mut p = ring.mpmc_producer().unwrap();
    let mut cons = ring.mpmc_consumer().unwrap();
    p.try_push(&[5; 8]).unwrap();
    let mut out = [0u8; 8];
    cons.try_pop(&mut out).unwrap();
    assert_eq!(out, [5; 8]);
}

#[test]
fn wrong_kind_handles_are_refused() {
    let (_r, spsc) = region_for(&cfg(RingKind::Spsc, 4, 8, 8));
    let e = spsc.mpmc_producer().unwrap_err();
    assert_eq!(
        e,
        KindError {
            expected: RingKind::Mpmc,
            found: RingKind::Spsc
        }
    );
    assert!(e.to_string().contains("SPSC"));
    assert!(spsc.mpmc_consumer().is_err());
    let (_r2, mpmc) = region_for(&cfg(RingKind::Mpmc, 4, 8, 8));
    // SAFETY: refused before a handle exists.
    unsafe {
        assert!(mpmc.spsc_producer().is_err());
        assert!(mpmc.spsc_consumer().is_err());
    }
}

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
    let stamp = |i: u64| l.slots_offset + i * u64::from(l.info.slot_stride);
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

#[test]
fn error_messages_name_field_and_value() {
    let e = OpenError::Invalid {
        field: Field::SlotStride,
        value: 12,
        reason: "x",
    };
    assert_eq!(e.to_string(), "corrupted ring header: slot_stride = 12: x");
    assert!(OpenError::BadMagic { found: 1 }
        .to_string()
        .contains("0x0000000000000001"));
    assert!(PushError::WrongLength {
        expected: 8,
        got: 9
    }
    .to_string()
    .contains('9'));
    assert_eq!(PopError::Empty.to_string(), "ring is empty");
    let e: OpenError = LayoutError::Overflow {
        field: Field::ExtLen,
    }
    .into();
    assert!(e.to_string().contains("ext_len"));
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

// --- model sequences ---------------------------------------------------------------------------

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(not(miri))]
const SEQUENCES: u64 = 300;
#[cfg(miri)]
const SEQUENCES: u64 = 6;

#[test]
fn model_sequences_spsc_and_mpmc() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for s in 0..SEQUENCES {
        let len = 3 + (rng.next() % 400) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        data[0] = (data[0] & !1) | (s & 1) as u8; // alternate SPSC / MPMC
        ring_vs_model(&data);
    }
}

#[test]
fn model_directed_sequences() {
    // (config bytes, ops): SPSC cap 4, 8-byte records; MPMC cap 2 and 8.
    let cases: &[&[u8]] = &[
        // SPSC: fill, overfill, drain, batches across the wrap, reserve/peek, len checks.
        &[
            4, 7, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1, 0, 1, 0, 2, 5, 8, 0, 3, 5, 8, 0, 4, 3,
            0, 6, 3, 0,
        ],
        // SPSC: reserve then drop (nothing published), peek then drop (records stay).
        &[4, 7, 3, 4, 2, 2, 8, 0, 0, 0, 6, 1, 2, 8, 0, 1, 0, 1, 0],
        // MPMC cap 2: hold a reservation while the other producer pushes and a consumer pops.
        &[3, 7, 3, 6, 1, 7, 0, 0x80, 1, 0, 1, 0, 10, 0, 1, 0, 1, 0],
        // MPMC cap 8: dropped grants (skips) in the middle of published records.
        &[
            7, 7, 3, 0, 0, 4, 2, 0xc0, 0, 0x80, 1, 0, 1, 0, 10, 0, 2, 8, 3, 8, 10, 0,
        ],
        // MPMC: peek held across another consumer's pops, then release out of order.
        &[7, 7, 3, 2, 4, 9, 2, 3, 1, 0x40, 1, 0x40, 10, 0, 2, 8, 3, 8],
    ];
    for case in cases {
        ring_vs_model(case);
    }
}

#[test]
fn open_region_directed() {
    open_region(&[]);
    open_region(&[0]);
    open_region(&[0; 700]);
    // Patch mode: a valid ring, patches before open and between operations.
    open_region(&[1, 3, 7, 3, 0, 0, 1, 0, 0, 0x82, 0x80, 9, 1, 0, 2, 3, 3, 4]);
    open_region(&[1, 2, 7, 3, 2, 0, 20, 5, 2, 0, 20, 6]);
    open_region(&[0x31, 1, 7, 3, 1, 0, 88, 3]);
    // A valid region as raw bytes.
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let (region, _ring) = region_for(&cfg(kind, 4, 8, 8));
        // SAFETY: the region is valid for its length; no ring handle is in use.
        let bytes = unsafe { std::slice::from_raw_parts(region.base().as_ptr(), region.len()) };
        let mut data = vec![0u8];
        data.extend_from_slice(bytes);
        open_region(&data);
    }
}

#[test]
fn record_bytes_differ() {
    let (mut a, mut b) = ([0u8; 3], [0u8; 3]);
    record_bytes(1, &mut a);
    record_bytes(2, &mut b);
    assert_ne!(a, b);
}

/// Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) on stable.
#[test]
#[cfg_attr(miri, ignore = "reads the file system")]
fn replay_fuzz_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut total = 0;
    for (target, run) in [
        ("ring_vs_model", ring_vs_model as fn(&[u8])),
        ("open_region", open_region),
    ] {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds in {}", dir.display());
        for f in files {
            run(&std::fs::read(&f).unwrap());
            total += 1;
        }
    }
    assert!(total >= 2);
}

/// Writes the seed corpus: `cargo test -p shmchan-ring --lib -- --ignored write_seed_corpus`.
#[test]
#[ignore = "regenerates fuzz/corpus seeds"]
fn write_seed_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for s in 0..8u64 {
        let mut data: Vec<u8> = (0..200).map(|_| rng.next() as u8).collect();
        data[0] = (data[0] & !1) | (s & 1) as u8;
        write("ring_vs_model", &format!("seed-{s}"), &data);
    }
    write(
        "ring_vs_model",
        "directed-spsc",
        &[
            4, 7, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 2, 5, 3, 5, 4, 3, 0, 6, 3, 0,
        ],
    );
    write(
        "ring_vs_model",
        "directed-mpmc-hold",
        &[3, 7, 3, 6, 1, 7, 0, 0x80, 1, 0, 1, 0, 10, 0],
    );
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let (region, _ring) = region_for(&cfg(kind, 4, 8, 8));
        // SAFETY: the region is valid for its length; no ring handle is in use.
        let bytes = unsafe { std::slice::from_raw_parts(region.base().as_ptr(), region.len()) };
        let mut data = vec![0u8];
        data.extend_from_slice(bytes);
        write("open_region", &format!("valid-{kind}"), &data);
    }
    write("open_region", "zeros", &[0; 256]);
    write(
        "open_region",
        "patch-spsc",
        &[
            1, 2, 7, 3, 1, 0, 20, 5, 0, 1, 2, 3, 4, 5, 0x80, 0x90, 7, 6, 1,
        ],
    );
    write(
        "open_region",
        "patch-mpmc",
        &[
            1, 3, 7, 3, 2, 2, 128, 1, 2, 160, 3, 0, 1, 1, 1, 0x82, 0x80, 9, 1, 0,
        ],
    );
}

// ---- settle: crash recovery of MPMC claims (crate::settle) ----

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
    let stamp = |i: u64| l.slots_offset + i * u64::from(l.info.slot_stride);
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
    let stamp = |i: u64| l.slots_offset + i * u64::from(l.info.slot_stride);
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
