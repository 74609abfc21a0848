//! The differential drivers shared with the fuzzer (`crate::model`): random and directed
//! sequences, hostile regions, and the replay (and regeneration) of the fuzz corpus.

use std::format;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::model::{open_region, record_bytes, ring_vs_model};

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
            6, 7, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1, 0, 1, 0, 2, 5, 8, 0, 3, 5, 8, 0, 4, 3,
            0, 6, 3, 0,
        ],
        // SPSC: reserve then drop (nothing published), peek then drop (records stay).
        &[6, 7, 3, 4, 2, 2, 8, 0, 0, 0, 6, 1, 2, 8, 0, 1, 0, 1, 0],
        // MPMC cap 2: hold a reservation while the other producer pushes and a consumer pops.
        &[3, 7, 3, 6, 1, 7, 0, 0x80, 1, 0, 1, 0, 10, 0, 1, 0, 1, 0],
        // MPMC cap 8: dropped grants (skips) in the middle of published records.
        &[
            15, 7, 3, 0, 0, 4, 2, 0xc0, 0, 0x80, 1, 0, 1, 0, 10, 0, 2, 8, 3, 8, 10, 0,
        ],
        // MPMC: peek held across another consumer's pops, then release out of order.
        &[15, 7, 3, 2, 4, 9, 2, 3, 1, 0x40, 1, 0x40, 10, 0, 2, 8, 3, 8],
    ];
    for case in cases {
        ring_vs_model(case);
    }
    // The same cases at capacities that are not powers of two (3, 5, 7): the slot of a
    // position is its remainder, and a ring holds exactly its capacity.
    for case in cases {
        for a in [4u8, 8, 12] {
            let mut c = case.to_vec();
            c[0] = a | (c[0] & 1);
            ring_vs_model(&c);
        }
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
