//! Record identity across programs: two separately built programs (`shmchan-test-ticks-a` and
//! `-b`, each declaring its own `#[repr(C)] struct Tick` under other crate and module paths)
//! meet on one named channel without `.type_name(..)`, in both start orders; a changed layout
//! is refused with the first differing field named; hostile schema bytes in a segment are a
//! clear `Corrupted`, never a panic.

use std::os::unix::fs::FileExt;
use std::time::Duration;

use shmchan::schema::{Difference, Shape};
use shmchan::{Backing, Channel, OpenError};
use shmchan_tests::{BackingKind, ChildGuard, Place};

const A: &str = env!("CARGO_BIN_EXE_shmchan-test-ticks-a");
const B: &str = env!("CARGO_BIN_EXE_shmchan-test-ticks-b");
const WAIT: Duration = Duration::from_secs(60);
const N: &str = "500";

/// `first` creates and receives, then `second` opens and sends; both must succeed.
fn meet(place: &Place, first: (&str, &str), second: (&str, &str)) {
    let mut server = ChildGuard::spawn(first.0, &["serve", &place.spec, first.1, N]);
    assert_eq!(server.read_line().trim(), "ready");
    let feeder = ChildGuard::spawn(second.0, &["feed", &place.spec, second.1, N]);
    assert_eq!(feeder.wait_ok(WAIT).trim(), format!("sent {N}"));
    assert!(server.wait_ok(WAIT).contains(&format!("received {N}")));
}

/// `first` creates; `second` opens and must be refused: returns (field, message).
fn refused(place: &Place, first: (&str, &str), second: (&str, &str)) -> (String, String) {
    let mut server = ChildGuard::spawn(first.0, &["serve", &place.spec, first.1, N]);
    assert_eq!(server.read_line().trim(), "ready");
    let feeder = ChildGuard::spawn(second.0, &["feed", &place.spec, second.1, N]);
    let (status, out) = feeder.wait(WAIT);
    assert_eq!(
        status.code(),
        Some(2),
        "{second:?} opened {first:?}'s channel: {out}"
    );
    let mut lines = out.lines();
    let field = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("mismatch ")
        .to_owned();
    (field, lines.next().unwrap_or("").to_owned())
}

#[test]
fn two_programs_with_the_same_derived_struct_meet_in_both_orders() {
    for kind in [BackingKind::File, BackingKind::SysvKey] {
        let place = Place::new(kind);
        meet(&place, (A, "derived"), (B, "derived"));
        let place = Place::new(kind);
        meet(&place, (B, "derived"), (A, "derived"));
    }
}

#[test]
fn two_programs_with_the_same_plain_struct_meet_by_name_without_paths() {
    let place = Place::new(BackingKind::File);
    meet(&place, (A, "plain"), (B, "plain"));
    let place = Place::new(BackingKind::SysvKey);
    meet(&place, (B, "plain"), (A, "plain"));
}

#[test]
fn a_side_without_the_derive_falls_back_to_name_size_and_alignment() {
    let place = Place::new(BackingKind::File);
    meet(&place, (A, "derived"), (B, "plain"));
    let place = Place::new(BackingKind::File);
    meet(&place, (B, "plain"), (A, "derived"));
}

#[test]
fn a_changed_layout_is_refused_with_the_first_differing_field_named() {
    let cases = [
        (
            "retyped",
            "price",
            "field `price`: expected u64 at offset 8, found f64 at offset 8",
        ),
        (
            "reordered",
            "price",
            "field `price`: expected f64 at offset 0, found f64 at offset 8",
        ),
        (
            "renamed",
            "px",
            "field `px` missing (expected f64 at offset 8; the channel has `price` there)",
        ),
        (
            "added",
            "qty",
            "field `qty` missing (expected u64 at offset 16)",
        ),
    ];
    for (variant, field, msg) in cases {
        let place = Place::new(BackingKind::File);
        let (f, m) = refused(&place, (A, "derived"), (B, variant));
        assert_eq!(f, field, "{variant}: {m}");
        assert!(m.ends_with(msg), "{variant}: {m}");
        assert!(m.starts_with("record type mismatch"), "{m}");
    }
    // The other way round: the channel's record has the field this side lacks.
    let place = Place::new(BackingKind::SysvKey);
    let (f, m) = refused(&place, (B, "added"), (A, "derived"));
    assert_eq!(f, "qty", "{m}");
    assert!(
        m.ends_with("field `qty` unexpected (the channel has u64 at offset 16)"),
        "{m}"
    );
}

mod v1 {
    #[derive(Clone, Copy, Debug, PartialEq, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Leg {
        pub px: f64,
        pub qty: u32,
        pub side: u32,
    }

    #[derive(Clone, Copy, Debug, PartialEq, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Order {
        pub id: u64,
        pub legs: [Leg; 2],
        pub first: Leg,
    }
}

mod v2 {
    #[derive(Clone, Copy, Debug, PartialEq, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Leg {
        pub px: f64,
        pub side: u32, // swapped with `qty`
        pub qty: u32,
    }

    #[derive(Clone, Copy, Debug, PartialEq, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Order {
        pub id: u64,
        pub legs: [Leg; 2],
        pub first: Leg,
    }
}

mod tuple {
    /// A `repr(transparent)` newtype and a tuple struct: fields `0`, `1`.
    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(transparent)]
    pub struct Px(pub f64);

    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Quote(pub u64, pub Px);
}

#[test]
fn nested_derived_structs_are_compared_field_by_field() {
    let shape = Shape::of::<v1::Order>();
    assert_eq!(
        shape.to_string(),
        "Order { id: u64 at 0, legs: [Leg; 2] at 8, first: Leg { px: f64 at 0, qty: u32 at 8, \
         side: u32 at 12 } at 40 }"
    );
    let place = Place::new(BackingKind::File);
    let _chan = Channel::<v1::Order>::builder()
        .backing(place.backing.clone())
        .create()
        .unwrap();
    let e = Channel::<v2::Order>::builder()
        .backing(place.backing.clone())
        .open()
        .unwrap_err();
    let d = e.type_difference().expect("a named difference");
    assert_eq!(d.field(), Some("first.side"), "{e}");
    assert!(matches!(d, Difference::Changed { .. }), "{d:?}");
    assert!(
        e.to_string()
            .ends_with("field `first.side`: expected u32 at offset 8, found u32 at offset 12"),
        "{e}"
    );
    // The same declaration opens; so does a tuple struct with a transparent newtype.
    Channel::<v1::Order>::builder()
        .backing(place.backing.clone())
        .open()
        .unwrap();
    assert_eq!(
        Shape::of::<tuple::Quote>().to_string(),
        "Quote { 0: u64 at 0, 1: Px { 0: f64 at 0 } at 8 }"
    );
}

#[test]
fn type_name_and_schema_version_stay_explicit_overrides() {
    let place = Place::new(BackingKind::File);
    let _chan = Channel::<v1::Leg>::builder()
        .backing(place.backing.clone())
        .type_name("orders.Leg")
        .schema_version(3)
        .create()
        .unwrap();
    // Same name and version, another layout: still refused, field named.
    let e = Channel::<v2::Leg>::builder()
        .backing(place.backing.clone())
        .type_name("orders.Leg")
        .schema_version(3)
        .open()
        .unwrap_err();
    assert_eq!(e.type_difference().unwrap().field(), Some("side"), "{e}");
    // Same layout, the default name: refused by name; no field differs.
    let e = Channel::<v1::Leg>::builder()
        .backing(place.backing.clone())
        .schema_version(3)
        .open()
        .unwrap_err();
    assert!(matches!(e, OpenError::TypeMismatch { .. }), "{e}");
    assert_eq!(
        e.type_difference().map(|d| d.to_string()).as_deref(),
        Some("record: expected Leg, found orders.Leg")
    );
    // Another version: refused.
    let e = Channel::<v1::Leg>::builder()
        .backing(place.backing.clone())
        .type_name("orders.Leg")
        .open()
        .unwrap_err();
    assert!(matches!(e, OpenError::TypeMismatch { .. }), "{e}");
    Channel::<v1::Leg>::builder()
        .backing(place.backing.clone())
        .type_name("orders.Leg")
        .schema_version(3)
        .open()
        .unwrap();
}

/// Offsets in a file-backed channel: the ring header gives the ext area's offset (word at 56);
/// shmchan's ext header keeps the schema length at 360 and the schema after its 8704 bytes.
const SCHEMA_LEN: u64 = 360;
const SCHEMA_AT: u64 = 8704;

/// The file of a file-backed channel's segment, open for reading and writing.
fn segment_file(place: &Place) -> std::fs::File {
    let path = place.spec.strip_prefix("file:").unwrap();
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

fn ext_offset(file: &std::fs::File) -> u64 {
    let mut w = [0u8; 8];
    file.read_exact_at(&mut w, 56).unwrap();
    u64::from_le_bytes(w)
}

#[test]
fn hostile_schema_bytes_are_a_clear_error_never_a_panic() {
    let place = Place::new(BackingKind::File);
    let chan = Channel::<v1::Order>::builder()
        .backing(place.backing.clone())
        .create()
        .unwrap();
    let file = segment_file(&place);
    let ext = ext_offset(&file);
    let mut len = [0u8; 4];
    file.read_exact_at(&mut len, ext + SCHEMA_LEN).unwrap();
    let len = u32::from_le_bytes(len);
    let mut good = vec![0u8; len as usize];
    file.read_exact_at(&mut good, ext + SCHEMA_AT).unwrap();
    assert_eq!(Shape::from_bytes(&good).unwrap(), Shape::of::<v1::Order>());
    let open = || {
        Channel::<v1::Order>::builder()
            .backing(place.backing.clone())
            .open_timeout(Duration::from_millis(50))
            .open()
    };
    let corrupted = |what: &str| match open() {
        Err(OpenError::Corrupted { reason }) => reason,
        Err(e) => panic!("{what}: expected Corrupted, got {e}"),
        Ok(_) => panic!("{what}: opened"),
    };
    // A length past the extension area.
    for claim in [len + 1, 1 << 20, u32::MAX] {
        file.write_all_at(&claim.to_le_bytes(), ext + SCHEMA_LEN)
            .unwrap();
        let r = corrupted("long");
        assert!(r.contains("record schema claims"), "{r}");
    }
    file.write_all_at(&len.to_le_bytes(), ext + SCHEMA_LEN)
        .unwrap();
    // Bytes that do not parse.
    file.write_all_at(&[9], ext + SCHEMA_AT).unwrap();
    let r = corrupted("format");
    assert!(
        r.contains("malformed record schema: unknown format 9"),
        "{r}"
    );
    // A schema that parses but describes another size than the ring's records.
    let mut other = Shape::of::<v1::Leg>();
    other.name = "Order".into();
    let b = other.to_bytes();
    file.write_all_at(&(b.len() as u32).to_le_bytes(), ext + SCHEMA_LEN)
        .unwrap();
    file.write_all_at(&b, ext + SCHEMA_AT).unwrap();
    let r = corrupted("size");
    assert!(r.contains("describes 16 bytes"), "{r}");
    // Random bytes and random lengths: an error or a value, never a panic or a hang.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bytes = good.clone();
        for _ in 0..(x % 8 + 1) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) as usize % bytes.len();
            bytes[i] = (x >> 24) as u8;
        }
        let claim = if round % 5 == 0 {
            (x >> 40) as u32 % 512
        } else {
            len
        };
        file.write_all_at(&claim.to_le_bytes(), ext + SCHEMA_LEN)
            .unwrap();
        file.write_all_at(&bytes, ext + SCHEMA_AT).unwrap();
        let _ = open();
        let _ = shmchan::inspect::inspect(&place.backing);
    }
    // Restored, it opens again.
    file.write_all_at(&len.to_le_bytes(), ext + SCHEMA_LEN)
        .unwrap();
    file.write_all_at(&good, ext + SCHEMA_AT).unwrap();
    open().unwrap();
    drop(chan);
}

#[test]
fn an_spsc_ring_whose_slots_claim_gaps_between_records_is_refused_by_the_typed_faces() {
    // The typed faces compute an SPSC record's address with the record size as the stride:
    // a segment whose header claims slots further apart (here 16 bytes for 8-byte records,
    // its capacity halved so that every other field still adds up) is a clear `Corrupted`
    // at the endpoint, never records read from the wrong places.
    let place = Place::new(BackingKind::File);
    let _chan = Channel::<u64>::builder()
        .backing(place.backing.clone())
        .capacity(64)
        .spsc()
        .create()
        .unwrap();
    let file = segment_file(&place);
    // The ring header: capacity at 20, slot stride at 32 (u32 each).
    let word = |at: u64| {
        let mut w = [0u8; 4];
        file.read_exact_at(&mut w, at).unwrap();
        u32::from_ne_bytes(w)
    };
    assert_eq!((word(20), word(32)), (64, 8));
    file.write_all_at(&32u32.to_ne_bytes(), 20).unwrap();
    file.write_all_at(&16u32.to_ne_bytes(), 32).unwrap();
    let chan = Channel::<u64>::builder()
        .backing(place.backing.clone())
        .open_timeout(Duration::from_millis(50))
        .open()
        .expect("the ring itself is valid: its slots are inside the region");
    for (side, r) in [
        ("sender", chan.sender().map(drop)),
        ("receiver", chan.receiver().map(drop)),
    ] {
        match r {
            Err(OpenError::Corrupted { reason }) => {
                assert!(reason.contains("16 bytes apart"), "{side}: {reason}")
            }
            Err(e) => panic!("{side}: expected Corrupted, got {e}"),
            Ok(()) => panic!("{side}: made on a ring of gapped slots"),
        }
    }
}

#[test]
fn byte_channels_keep_their_own_identity() {
    let place = Place::new(BackingKind::File);
    let _chan = Channel::<shmchan::Bytes>::builder()
        .backing(place.backing.clone())
        .create()
        .unwrap();
    let e = Channel::<v1::Leg>::builder()
        .backing(place.backing.clone())
        .open()
        .unwrap_err();
    assert!(matches!(e, OpenError::TypeMismatch { .. }), "{e}");
    assert!(e.type_difference().is_none());
    let info = match shmchan::inspect::inspect(&place.backing).unwrap() {
        shmchan::inspect::Inspection::Channel(i) => i,
        _ => panic!("not a channel"),
    };
    assert_eq!(info.record.name, "shmchan::Bytes");
    assert!(info.record.shape().is_none());
    let _ = Backing::anonymous();
}

mod seeds {
    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub seq: u64,
        pub price: f64,
    }
}

fn schema_corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/schema_bytes")
}

#[test]
fn schema_bytes_corpus_replays() {
    let mut n = 0;
    for entry in std::fs::read_dir(schema_corpus()).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        shmchan_tests::fuzz_schema::schema_bytes(&data);
        n += 1;
    }
    assert!(n >= 3, "the committed seeds are missing");
}

/// Regenerates the hand-written seeds of `schema_bytes`:
/// `cargo test -p shmchan-tests --test record_identity -- --ignored write_schema_bytes_seeds`.
#[test]
#[ignore]
fn write_schema_bytes_seeds() {
    let dir = schema_corpus();
    std::fs::create_dir_all(&dir).unwrap();
    let seeds = [
        ("order", Shape::of::<v1::Order>().to_bytes()),
        ("tick", Shape::of::<seeds::Tick>().to_bytes()),
        ("tuple", Shape::of::<tuple::Quote>().to_bytes()),
        ("named", Shape::of::<[u16; 3]>().to_bytes()),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}
