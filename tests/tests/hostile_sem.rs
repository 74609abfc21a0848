//! The POSIX semaphore doorbell against a peer that scribbles on the two `sem_t` inside the
//! segment while a sender and a receiver (child processes) use the channel and block on them:
//! every pattern of garbage (all ones, random words, odd `private` words, values at and over
//! `SEM_VALUE_MAX`, huge waiter counts) ends each send and receive with `Ok`, a timeout or
//! `Corrupted`, never an abort, a signal or a hang; no record is invented or lost.
//!
//! The children are this test binary re-executed with their role in [`ROLE_ENV`] (see
//! `child_role`); a deadline on each only turns a hang into a failure.

use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmchan::{Backing, Channel, Doorbell, RecvTimeoutError, SendTimeoutError};
use shmchan_tests::{parse_backing, unique_key, ChildGuard, KeyGuard, Rec};

const ROLE_ENV: &str = "SHMCHAN_HOSTILE_SEM_ROLE";
/// The ring header (128 bytes) comes first and shmchan's area follows it, whose two `sem_t`
/// start at its byte 280 (both offsets are frozen and asserted in the sources).
const SEM_OFFSETS: [usize; 2] = [128 + 280, 128 + 280 + 32];
/// glibc's `private` word of a process-shared semaphore.
const SHARED: u32 = libc::FUTEX_PRIVATE_FLAG as u32;
/// How long each child sends or receives.
const RUN: Duration = Duration::from_secs(3);
const SLICE: Duration = Duration::from_millis(100);

fn fail(msg: String) -> ! {
    eprintln!("hostile_sem child: {msg}");
    std::process::exit(2);
}

/// When re-executed with [`ROLE_ENV`] = `send|BACKING` or `recv|BACKING`: send (or receive)
/// for [`RUN`], each operation with a short timeout, and print what happened. A no-op in a
/// normal test run.
#[test]
fn child_role() {
    let Ok(spec) = std::env::var(ROLE_ENV) else {
        return;
    };
    let (role, backing) = spec.split_once('|').expect("ROLE|BACKING");
    let builder = Channel::<Rec>::builder()
        .backing(parse_backing(backing))
        .doorbell(Doorbell::PosixSem);
    let end = Instant::now() + RUN;
    let (mut timeouts, mut corrupted) = (0u64, 0u64);
    if role == "send" {
        let mut tx = builder
            .open_sender()
            .unwrap_or_else(|e| fail(format!("open_sender: {e}")));
        println!("ready");
        let mut seq = 0u64;
        while Instant::now() < end {
            match tx.send_timeout(Rec::new(1, seq), SLICE) {
                Ok(()) => seq += 1,
                Err(SendTimeoutError::Timeout(_)) => timeouts += 1,
                Err(SendTimeoutError::Corrupted(_)) => corrupted += 1,
                Err(SendTimeoutError::Disconnected(_)) => break,
                Err(e) => fail(format!("send {seq}: {e}")),
            }
        }
        drop(tx);
        println!("sent {seq} timeouts {timeouts} corrupted {corrupted}");
    } else {
        let mut rx = builder
            .open_receiver()
            .unwrap_or_else(|e| fail(format!("open_receiver: {e}")));
        println!("ready");
        let mut next = 0u64;
        while Instant::now() < end {
            match rx.recv_timeout(SLICE) {
                Ok(r) if r.is_valid() && r.producer == 1 && r.seq == next => {
                    next += 1;
                    if next % 16 == 0 {
                        // Fall behind now and then, so that the sender blocks too.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                Ok(r) => fail(format!("record {r:?} where seq {next} was due")),
                Err(RecvTimeoutError::Timeout) => timeouts += 1,
                Err(RecvTimeoutError::Corrupted) => corrupted += 1,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => fail(format!("recv after {next}: {e}")),
            }
        }
        drop(rx);
        println!("received {next} timeouts {timeouts} corrupted {corrupted}");
    }
    std::process::exit(0);
}

fn spawn(role: &str, backing: &str) -> ChildGuard {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, format!("{role}|{backing}"));
    let mut child = ChildGuard::spawn_cmd(cmd, role);
    // The test harness prints its own words first ("running 1 test", "test child_role ... ").
    let ready = (0..4).any(|_| child.read_line().trim().ends_with("ready"));
    assert!(ready, "{role} did not start");
    child
}

/// Garbage for the two words a peer can reach in each `sem_t`: (data, private).
fn garbage() -> Vec<(u64, u32)> {
    let mut g = vec![
        (u64::MAX, u32::MAX),
        (0, 0),
        (0, 1),
        (1, 129),
        (0, 0x8000_0001),
        (0x7fff_ffff, SHARED),
        (0x8000_0000, SHARED),
        (0xffff_ffff, SHARED),
        (0xffff_ffff_0000_0000, SHARED),
        (0xffff_ffff_0000_0002, SHARED),
        (0x0000_0001_0000_0000, 0),
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let private = match x % 3 {
            0 => SHARED,
            1 => (x >> 32) as u32 | 1,
            _ => (x >> 40) as u32,
        };
        g.push((x, private));
    }
    g
}

/// The count a child printed after `word` (`sent 12 ...`).
fn count(out: &str, word: &str) -> u64 {
    let line = out
        .lines()
        .find_map(|l| l.find(word).map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no `{word}` line in {out:?}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn garbage_in_the_semaphores_never_aborts_hangs_or_invents_records() {
    let key = unique_key();
    let _guard = KeyGuard(key);
    let spec = format!("sysv-key:{key}");
    let chan = Channel::<Rec>::builder()
        .backing(Backing::sysv_key(key))
        .doorbell(Doorbell::PosixSem)
        .capacity(4)
        .create()
        .expect("create");
    let seg = shmchan_os::ShmId::open(shmchan_os::Key::new(key))
        .and_then(|id| id.attach(shmchan_os::Access::ReadWrite))
        .expect("attach as the hostile peer");
    let word = |off: usize| {
        assert!(off + 16 <= seg.len());
        // SAFETY: inside the attachment (checked), 8-aligned (the offsets are multiples of
        // 8 from a page-aligned base), alive until `seg` drops at the end of the test; the
        // words are only accessed atomically, by every process.
        unsafe {
            let p = seg.as_ptr().as_ptr().add(off);
            (&*p.cast::<AtomicU64>(), &*p.add(8).cast::<AtomicU32>())
        }
    };
    for off in SEM_OFFSETS {
        let (data, private) = word(off);
        assert_eq!(
            (
                data.load(Ordering::Relaxed),
                private.load(Ordering::Relaxed)
            ),
            (0, SHARED),
            "the semaphores moved: update SEM_OFFSETS"
        );
    }
    let receiver = spawn("recv", &spec);
    let sender = spawn("send", &spec);
    for (d, p) in garbage() {
        for off in SEM_OFFSETS {
            let (data, private) = word(off);
            data.store(d, Ordering::Relaxed);
            private.store(p, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
        for off in SEM_OFFSETS {
            let (data, private) = word(off);
            data.store(0, Ordering::Relaxed);
            private.store(SHARED, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (rs, rout) = receiver.wait(Duration::from_secs(60));
    let (ss, sout) = sender.wait(Duration::from_secs(60));
    assert_eq!(rs.code(), Some(0), "receiver: {rs}; stdout: {rout}");
    assert_eq!(ss.code(), Some(0), "sender: {ss}; stdout: {sout}");
    let (sent, received) = (count(&sout, "sent"), count(&rout, "received"));
    println!("{}\n{}", sout.trim(), rout.trim());
    assert!(received <= sent, "received {received} of {sent} sent");
    // What is left in the ring is exactly the rest, in order: nothing invented, nothing lost.
    let mut rx = chan.receiver().expect("drain");
    for seq in received..sent {
        let r = rx.try_recv().unwrap_or_else(|e| panic!("seq {seq}: {e}"));
        assert!(
            r.is_valid() && r.seq == seq,
            "{r:?} where seq {seq} was due"
        );
    }
    assert!(rx.try_recv().is_err(), "a record nobody sent");
}
