//! The upper crate's fuzz targets on stable: replays the committed corpora of `open_segment`,
//! `hostile_peer`, `hostile_bytes` and `doorbell_claims` (`fuzz/corpus/<target>/`) through the
//! drivers the targets use (`shmchan_tests::fuzz_driver`, `shmchan_tests::fuzz_claims`), runs
//! the hostile-peer drivers' FIFO models over random scribble-free inputs and the doorbell
//! claims over random inputs, and (ignored) regenerates the hand-written seeds:
//! `cargo test -p shmchan-tests --test fuzz_replay -- --ignored write_seed_corpus` (and
//! `write_hostile_bytes_seeds`, `write_doorbell_claims_seeds`).

use std::path::{Path, PathBuf};

use shmchan::{Doorbell, RingKind};
use shmchan_tests::fuzz_claims::doorbell_claims;
use shmchan_tests::fuzz_driver::{
    builder, hostile_bytes, hostile_peer, open_segment, rec, Buf, Rec,
};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The inputs of `fuzz/known-failures`: committed regressions whose fix has not landed.
fn known_failures() -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    std::fs::read_to_string(fuzz.join("known-failures"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| fuzz.join(l))
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus(target);
    let skip: Vec<String> = known_failures()
        .iter()
        .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| !skip.iter().any(|s| p.ends_with(s)))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    for f in files {
        eprintln!("replaying {}", f.display());
        run(&std::fs::read(&f).unwrap());
    }
}

#[test]
fn replay_open_segment() {
    replay("open_segment", open_segment);
}

#[test]
fn replay_hostile_peer() {
    replay("hostile_peer", hostile_peer);
}

#[test]
fn replay_hostile_bytes() {
    replay("hostile_bytes", hostile_bytes);
}

#[test]
fn replay_doorbell_claims() {
    replay("doorbell_claims", doorbell_claims);
}

/// The committed regressions that still fail (see `fuzz/known-failures`); run it to check a
/// fix, then delete the input's line there.
#[test]
#[ignore = "inputs of fuzz/known-failures: shmchan bugs not fixed yet (they hang or panic)"]
fn replay_known_failures() {
    for f in known_failures() {
        eprintln!("replaying {}", f.display());
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if f.components().any(|c| c.as_os_str() == "open_segment") {
            open_segment(&data);
        } else if f.components().any(|c| c.as_os_str() == "hostile_bytes") {
            hostile_bytes(&data);
        } else if f.components().any(|c| c.as_os_str() == "doorbell_claims") {
            doorbell_claims(&data);
        } else {
            hostile_peer(&data);
        }
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random inputs without scribbles (op bytes 14 and 15 mod 16): every result is checked
/// against the FIFO model.
#[test]
fn hostile_peer_model_without_scribbles() {
    let mut rng = XorShift(0x005e_ed0f_f0cc_1a55);
    for _ in 0..200 {
        let mut data = vec![rng.next() as u8];
        for _ in 0..96 {
            let mut b = rng.next() as u8;
            if b % 16 >= 14 {
                b -= 2;
            }
            data.push(b);
        }
        hostile_peer(&data);
    }
}

/// Random inputs without scribbles (op bytes 14 and 15 mod 16): every result of the byte
/// channel is checked against the model of the messages' bytes.
#[test]
fn hostile_bytes_model_without_scribbles() {
    let mut rng = XorShift(0x0b17_e5c4_a22e_15f0);
    for _ in 0..300 {
        let mut data = vec![rng.next() as u8];
        for _ in 0..160 {
            let mut b = rng.next() as u8;
            if b % 16 >= 14 {
                b -= 4;
            }
            data.push(b);
        }
        hostile_bytes(&data);
    }
}

/// Random claims: every doorbell, backing and cleanup (byte 0), then random operations biased
/// toward naming the victims (ops 5, 6, 7, 14) and acting (9 to 12).
#[test]
fn doorbell_claims_random() {
    let mut rng = XorShift(0x0dd0_0be1_1c1a_1135);
    for i in 0..96u8 {
        let mut data = vec![i];
        for _ in 0..24 {
            let r = rng.next();
            let op = [5, 6, 7, 14, 9, 10, 11, 12, 13, 2, 3, 4, 8, 0, 1, 9][r as usize % 16];
            data.push(op);
            data.extend_from_slice(&r.to_le_bytes()[1..4]);
        }
        doorbell_claims(&data);
    }
}

#[test]
fn open_segment_directed() {
    open_segment(&[]);
    open_segment(&[0]);
    open_segment(&[0; 4096]);
    for (kind, cap, bell) in configs() {
        let seg = segment(kind, cap, bell, true);
        open_segment(&seg);
        open_segment(&seg[..seg.len() - 1]);
    }
}

fn configs() -> [(RingKind, usize, Doorbell); 4] {
    [
        (RingKind::Spsc, 4, Doorbell::Futex),
        (RingKind::Mpmc, 4, Doorbell::Futex),
        (RingKind::Spsc, 1, Doorbell::Spin),
        (RingKind::Mpmc, 8, Doorbell::Spin),
    ]
}

/// A real segment's bytes: a channel created in a buffer, a few records sent and one received;
/// with `live`, dumped while its endpoints are registered (this process's pid in the table).
fn segment(kind: RingKind, cap: usize, bell: Doorbell, live: bool) -> Vec<u8> {
    let b = builder().capacity(cap).doorbell(bell);
    let b = match kind {
        RingKind::Spsc => b.spsc(),
        _ => b.mpmc(),
    };
    let buf = Buf::zeroed(b.segment_len().unwrap());
    // SAFETY: zeroed, 128-aligned, `len` bytes; the channel is dropped at the end of this
    // block, before `buf`.
    let chan = unsafe { b.create_in(buf.base(), buf.len()) }.unwrap();
    let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
    let n = tx.try_send_batch(&[rec(0), rec(1), rec(2)]).unwrap();
    assert_eq!(n, 3.min(cap));
    assert_eq!(rx.try_recv(), Ok::<Rec, _>(rec(0)));
    if live {
        return buf.to_vec();
    }
    drop((tx, rx));
    buf.to_vec()
}

/// Writes the seed corpora of both targets.
#[test]
#[ignore = "regenerates fuzz/corpus seeds"]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            data.len() <= 16384,
            "{name}: longer than .ci/fuzz's -max_len"
        );
        std::fs::write(dir.join(name), data).unwrap();
    };
    // open_segment: real segments, then patched copies of one of them.
    for (kind, cap, bell) in configs() {
        for live in [false, true] {
            let state = if live { "live" } else { "idle" };
            let name = format!("valid-{kind}-{cap}-{bell}-{state}").to_lowercase();
            write("open_segment", &name, &segment(kind, cap, bell, live));
        }
    }
    let base = segment(RingKind::Mpmc, 4, Doorbell::Futex, true);
    let ext = u64::from_ne_bytes(base[56..64].try_into().unwrap()) as usize;
    let cursors = u64::from_ne_bytes(base[72..80].try_into().unwrap()) as usize;
    let patch = |name: &str, off: usize, bytes: &[u8]| {
        let mut s = base.clone();
        s[off..off + bytes.len()].copy_from_slice(bytes);
        write("open_segment", &format!("patched-{name}"), &s);
    };
    patch("magic", 0, b"X");
    patch("initializing", 12, &1u32.to_ne_bytes());
    patch("capacity", 20, &8u32.to_ne_bytes());
    patch("record-size", 24, &8u32.to_ne_bytes());
    patch("stride", 32, &16u32.to_ne_bytes());
    patch("slots-offset", 80, &u64::MAX.to_ne_bytes());
    patch("total-len", 88, &(base.len() as u64 + 8).to_ne_bytes());
    patch("ext-magic", ext, b"Y");
    patch("doorbell-sysv-sem", ext + 12, &3u32.to_ne_bytes());
    patch("doorbell-spin", ext + 12, &2u32.to_ne_bytes());
    patch("live-masks", ext + 376, &u64::MAX.to_ne_bytes());
    patch("tail-cursor", cursors, &1000u64.to_ne_bytes());
    patch("head-cursor", cursors + 128, &u64::MAX.to_ne_bytes());
    // A hostile permit count in the data wait cell: recv_timeout must still time out (found by
    // this target: every futex wait returned a token at once and the deadline was never seen).
    let mut s = segment(RingKind::Spsc, 4, Doorbell::Futex, false);
    let permits = u64::from_ne_bytes(s[72..80].try_into().unwrap()) as usize + 256 + 4;
    s[permits..permits + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
    write("open_segment", "regress-futex-permits-recv-timeout", &s);
    write("open_segment", "truncated", &base[..base.len() - 1]);
    write("open_segment", "header-only", &base[..128]);
    write("open_segment", "zeros", &[0; 256]);

    // hostile_peer: byte 0 = kind | log2 capacity << 1 | spin << 3; then ops (mod 16):
    // 0/1 try_send, 2 send_timeout, 3 try_send_batch, 4 reserve+commit, 5 reserve+drop,
    // 6/7 try_recv, 8 recv_timeout, 9 try_recv_batch, 10 try_peek, 11 queries,
    // 12 endpoint leaves/joins, 13 second peer, 14/15 scribble (sel, 2-byte offset, value).
    // Bit 7 of an op picks the second handle of its role.
    let ops: &[u8] = &[
        0, 0, 3, 4, 11, 6, 10, 9, 3, 5, 1, 11, 12, 0, 6, 7, 12, 0, 9, 5, 4, 8, 0, 13, 0, 13, 1, 12,
        1, 6, 12, 1, 0x8c, 0, 0x80, 0x86, 11, 2, 1, 0, 0, 0, 0, 11,
    ];
    for cfg in [0x04u8, 0x05, 0x0b, 0x00, 0x07] {
        let mut d = vec![cfg];
        d.extend_from_slice(ops);
        write("hostile_peer", &format!("model-{cfg:02x}"), &d);
        // Then scribbles on each region (sel % 8) with each value mode (sel >> 3 % 5).
        for region in 0..8u8 {
            let mut s = d.clone();
            for mode in 0..5u8 {
                s.extend_from_slice(&[14, region | mode << 3, 0x31 + region, mode]);
                s.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
                s.extend_from_slice(&[0, 6, 3, 4, 9, 5, 10, 11, 13, 0, 12, 0, 12, 1, 2, 1, 8, 1]);
            }
            write("hostile_peer", &format!("scribble-{cfg:02x}-r{region}"), &s);
        }
    }
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for s in 0..8 {
        let data: Vec<u8> = (0..300).map(|_| rng.next() as u8).collect();
        write("hostile_peer", &format!("random-{s}"), &data);
    }
}

/// Writes the hand-written seeds of `doorbell_claims` (see `fuzz_claims::doorbell_claims` for
/// the format): per doorbell kind with objects, the segment names the victims of that kind (as
/// root: with the other-user victims' identity too) and says "remove at the last detach", then
/// a peer opens, leaves, the channel is removed and the creator leaves; and the same after the
/// creator's own descriptor is put back (a channel that opens).
#[test]
#[ignore = "regenerates fuzz/corpus/doorbell_claims seeds"]
fn write_doorbell_claims_seeds() {
    let dir = corpus("doorbell_claims");
    std::fs::create_dir_all(&dir).unwrap();
    // Code indices (op 14) and victim indices: (sysv-sem 2; victims 0, 4), (sysv-msgq 5; 1, 5),
    // (named semaphore 4; 2 and 6/8 by name), (POSIX queue 6; 3 and 7/9 by name).
    let kinds: [(&str, u8, [u8; 2], bool); 4] = [
        ("sysv-sem", 2, [0, 4], false),
        ("sysv-msgq", 5, [1, 5], false),
        ("named-sem", 4, [2, 6], true),
        ("posix-mq", 6, [3, 7], true),
    ];
    let act: &[u8] = &[13, 2, 2, 1, 0, 0, 0, 9, 9, 10, 11, 12, 9];
    for (b, bell) in [(0u8, "futex"), (1, "sysv-sem"), (4, "posix-mq")] {
        for (home, on_file) in [("heap", 0u8), ("file", 1)] {
            for (cleanup, c) in [("creator", 0u8), ("last", 1)] {
                let cfg = on_file | b << 1 | c << 5;
                for (name, code, v, by_name) in kinds {
                    let mut d = vec![cfg, 14, code];
                    if by_name {
                        d.extend_from_slice(&[6, v[0], 0, 6, v[0], 1]);
                    } else {
                        d.extend_from_slice(&[5, v[0]]);
                    }
                    d.extend_from_slice(act);
                    // The other user's objects, with their identity copied.
                    d.extend_from_slice(&[7]);
                    if by_name {
                        d.extend_from_slice(&[6, v[1], 0, 6, v[1] + 2, 1]);
                    } else {
                        d.extend_from_slice(&[5, v[1]]);
                    }
                    d.extend_from_slice(act);
                    let file = format!("{name}-in-{bell}-{home}-{cleanup}");
                    std::fs::write(dir.join(file), &d).unwrap();
                }
                // The creator's own claims back: a channel that opens, and is removed.
                let d = [cfg, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12];
                std::fs::write(dir.join(format!("own-{bell}-{home}-{cleanup}")), d).unwrap();
            }
        }
    }
}

/// Writes the hand-written seeds of `hostile_bytes` (the rest of its corpus comes from fuzz
/// runs, minimised with `cargo fuzz cmin`).
#[test]
#[ignore = "regenerates fuzz/corpus/hostile_bytes seeds"]
fn write_hostile_bytes_seeds() {
    let dir = corpus("hostile_bytes");
    std::fs::create_dir_all(&dir).unwrap();
    // Byte 0 = MPMC | capacity (2, 4, 8) << 1 | spin << 3 | (max / 8 - 1) << 4 | 0x80 for an
    // unrounded max; then ops (mod 16; see `fuzz_driver::hostile_bytes`): 0/1 try_send(len),
    // 2 send_timeout(len, wait), 3 reserve+commit(len, mode[, set_len]), 4 reserve+drop,
    // 5/6 try_recv, 7 try_recv_into, 8 try_peek, 9 recv_timeout(wait), 10 queries,
    // 11 endpoint(role), 12 second peer(how, len), 13 timed(which, wait[, len]),
    // 14 scribble(sel, 2-byte offset, value), 15 frame scribble(sel[, 4-byte value]).
    let ops: &[u8] = &[
        0, 3, 1, 1, 0, 2, 3, 0x0b, 2, 0x13, 4, 0x21, 0, 10, 5, 7, 8, 9, 0, 0, 0x1b, 2, 0x09, 4, 13,
        0, 1, 13, 1, 0, 13, 2, 2, 0x0b, 10, 3, 0xff, 0, 4, 0xfe, 0, 3, 0xfd, 2, 0x0a, 3, 0x0b, 2,
        0x02, 11, 0, 11, 0, 0, 5, 12, 0, 3, 12, 1, 3, 12, 2, 3, 12, 0x80, 0, 11, 1, 11, 1, 6, 5,
        0x8b, 0, 0x85, 0x80, 0x13, 0x8c, 0x80, 0, 4, 0x13, 0, 5, 0x87, 10,
    ];
    // After each scribble: send, reserve, and every kind of receive.
    let after: &[u8] = &[
        0, 0x13, 3, 0x0b, 0, 5, 7, 8, 9, 1, 13, 0, 1, 13, 1, 1, 0, 1, 3, 1, 2, 0x01, 6, 10,
    ];
    for cfg in [0x00u8, 0x13, 0x35, 0x7d, 0xa2, 0xcb] {
        let mut d = vec![cfg];
        d.extend_from_slice(ops);
        std::fs::write(dir.join(format!("model-{cfg:02x}")), &d).unwrap();
        // Frame headers: every value (sel >> 3 & 7) in the length word, then the reserved one.
        let mut f = d.clone();
        for v in 0..8u8 {
            f.extend_from_slice(&[0, 0x0b, 0, 0x13]);
            f.extend_from_slice(&[15, v << 3 | v, 0x2a, 0, 0, 0]);
            f.extend_from_slice(after);
        }
        f.extend_from_slice(&[15, 0x41, 0xff, 0xff, 0xff, 0xff]);
        f.extend_from_slice(after);
        std::fs::write(dir.join(format!("frames-{cfg:02x}")), &f).unwrap();
    }
    // hostile_peer's regions (sel % 8) and value modes (sel >> 3 % 5) on a byte channel.
    for cfg in [0x14u8, 0x3b] {
        let mut s = vec![cfg];
        s.extend_from_slice(ops);
        for region in 0..8u8 {
            let mode = region % 5;
            s.extend_from_slice(&[0, 0x13, 14, region | mode << 3, 0x31 + region, mode]);
            s.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
            s.extend_from_slice(after);
        }
        std::fs::write(dir.join(format!("scribble-{cfg:02x}")), &s).unwrap();
    }
}
