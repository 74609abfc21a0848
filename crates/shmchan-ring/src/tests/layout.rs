//! Layout computation, `init`/`open` validation of every header field, kind checks and
//! error messages.

use std::format;
use std::string::ToString;

use super::*;
use crate::layout::{CURSORS_LEN, HEADER_LEN};

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
    // Any capacity: the slots are the power of two at or above it.
    let l = Layout::new(&cfg(RingKind::Mpmc, 3, 8, 8)).unwrap();
    assert_eq!((l.info.capacity, l.info.slots()), (3, 4));
    assert_eq!(l.total_len, l.slots_offset + 4 * 16);
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
    let msg = Layout::new(&cfg(RingKind::Spsc, 1 << 25, 8, 8))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("capacity") && msg.contains("33554432"),
        "{msg}"
    );
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
    field(20, 0, false, Field::Capacity);
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
