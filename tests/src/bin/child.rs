//! The child program of shmchan's multi-process suites. Each role opens a channel the test
//! created, does one job, and reports on stdout; a non-zero exit status means failure.
//!
//! Roles:
//! - `produce BACKING KIND DOORBELL N ID [BATCH]`: send N records `Rec::new(ID, 0..N)`.
//! - `consume BACKING KIND DOORBELL EXPECT OUT`: receive until disconnected (or EXPECT records
//!   when EXPECT is a number); check each record; with one producer check order; write the
//!   (producer, seq) pairs to OUT (a path, or `-` for none); print `received COUNT`.
//! - `bytes-produce BACKING KIND DOORBELL N`: open a byte channel and send messages
//!   `byte_message(0..N, max)` (N = `forever` sends until killed or disconnected).
//! - `bytes-consume BACKING KIND DOORBELL N`: open a byte channel, receive N messages and check
//!   each against `byte_message`; print `received N`.
//! - `trickle BACKING KIND DOORBELL N GAP_MS rec|bytes`: open a sender and send N records
//!   (`Rec::new(1, i)`) or messages (`byte_message(i, max)`), sleeping GAP_MS before each, so
//!   that the receiver has to sleep and be woken every time.
//! - `bytes-peek-and-hang BACKING DOORBELL`: open an MPMC byte channel, hold one message in a
//!   zero-copy guard, print `peeked LEN`, and sleep until killed.
//! - `open-other-type BACKING`: open with a different record type; expect `TypeMismatch`.
//! - `open-as-nobody BACKING`: drop to uid/gid 65534 and open; expect `PermissionDenied`.
//! - `hold BACKING KIND DOORBELL ROLE`: open a `sender` or `receiver`, print `ready`, and
//!   sleep until killed.
//! - `abandon BACKING KIND DOORBELL`: create the channel with a sender, send 3 records, and
//!   exit without running destructors (as if killed): a stale channel.
//! - `kill9 BACKING KIND DOORBELL SEED ROUNDS`: the `kill -9` matrix for one combination (see
//!   `kill9::run`); BACKING is a spec or `anonymous`.
//! - `fork-pipeline N KIND DOORBELL [CAPACITY]`: anonymous channel, fork; the child sends N
//!   records, the parent receives and checks them.
//! - `fork-wake DOORBELL`: anonymous channel; the parent blocks in `recv` (asleep on the
//!   doorbell) until a forked child sends one record 200 ms later.
//! - `memfd-peer SOCKFD ROLE KIND DOORBELL N`: receive a memfd channel on the inherited Unix
//!   socket SOCKFD, open it as `sender` (send N records) or `receiver` (receive and check N
//!   records, then expect `Disconnected`), and print `sent N` / `received N`.
//!
//! BACKING `memfd` means: receive the channel on the socket named by `SHMCHAN_TEST_SOCK`.
#![allow(missing_docs)]

use std::io::Write;
use std::time::Duration;

use shmchan::{Backing, Channel, OpenError, RecvError};
use shmchan_tests::{parse_backing, parse_doorbell, parse_kind, Other, Rec};

fn builder(kind: &str, doorbell: &str) -> shmchan::Builder<Rec> {
    let b = Channel::<Rec>::builder().doorbell(parse_doorbell(doorbell));
    match parse_kind(kind) {
        shmchan::RingKind::Spsc => b.spsc(),
        _ => b.mpmc(),
    }
}

fn fail(msg: String) -> ! {
    eprintln!("child: {msg}");
    std::process::exit(1);
}

fn produce(tx: &mut shmchan::Sender<Rec>, n: u64, id: u32, batch: usize) {
    if batch <= 1 {
        for seq in 0..n {
            if let Err(e) = tx.send(Rec::new(id, seq)) {
                fail(format!("send {seq}: {e}"));
            }
        }
    } else {
        let mut buf = Vec::with_capacity(batch);
        let mut seq = 0;
        while seq < n {
            buf.clear();
            buf.extend((seq..n.min(seq + batch as u64)).map(|s| Rec::new(id, s)));
            let mut off = 0;
            while off < buf.len() {
                match tx.send_batch(&buf[off..]) {
                    Ok(k) => off += k,
                    Err(e) => fail(format!("send_batch at {seq}: {e}")),
                }
            }
            seq += buf.len() as u64;
        }
    }
}

/// Receives until disconnected (or `expect` records), checking every record.
fn consume(rx: &mut shmchan::Receiver<Rec>, expect: Option<u64>, single: bool) -> Vec<(u32, u64)> {
    let mut got = Vec::new();
    let mut next = std::collections::HashMap::<u32, u64>::new();
    loop {
        if expect.is_some_and(|e| got.len() as u64 >= e) {
            break;
        }
        let r = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(r) => r,
            Err(shmchan::RecvTimeoutError::Disconnected) => break,
            Err(e) => fail(format!("recv after {} records: {e}", got.len())),
        };
        if !r.is_valid() {
            fail(format!("torn record {r:?}"));
        }
        if single {
            let n = next.entry(r.producer).or_insert(0);
            if r.seq != *n {
                fail(format!(
                    "out of order: producer {} seq {} expected {}",
                    r.producer, r.seq, n
                ));
            }
            *n += 1;
        }
        got.push((r.producer, r.seq));
    }
    got
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| -> &str {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| fail(format!("missing argument {i}")))
    };
    match a(0) {
        "produce" => {
            let mut tx = builder(a(2), a(3))
                .backing(parse_backing(a(1)))
                .open_sender()
                .unwrap_or_else(|e| fail(format!("open_sender: {e}")));
            let n: u64 = a(4).parse().expect("N");
            let id: u32 = a(5).parse().expect("ID");
            let batch: usize = args.get(6).map(|s| s.parse().expect("BATCH")).unwrap_or(1);
            produce(&mut tx, n, id, batch);
            println!("sent {n}");
        }
        "consume" => {
            let mut rx = builder(a(2), a(3))
                .backing(parse_backing(a(1)))
                .open_receiver()
                .unwrap_or_else(|e| fail(format!("open_receiver: {e}")));
            let expect = a(4).parse::<u64>().ok();
            let single = a(2) == "spsc";
            let got = consume(&mut rx, expect, single);
            if a(5) != "-" {
                let mut bytes = Vec::with_capacity(got.len() * 12);
                for (p, s) in &got {
                    bytes.extend_from_slice(&p.to_le_bytes());
                    bytes.extend_from_slice(&s.to_le_bytes());
                }
                std::fs::write(a(5), bytes)
                    .unwrap_or_else(|e| fail(format!("write {}: {e}", a(5))));
            }
            println!("received {}", got.len());
        }
        "bytes-produce" => {
            let mut tx = Channel::<shmchan::Bytes>::builder()
                .doorbell(parse_doorbell(a(3)))
                .backing(parse_backing(a(1)))
                .open_sender()
                .unwrap_or_else(|e| fail(format!("open_sender: {e}")));
            let _ = parse_kind(a(2));
            let max = tx.max_message();
            let n = if a(4) == "forever" {
                u64::MAX
            } else {
                a(4).parse().expect("N")
            };
            println!("ready");
            let _ = std::io::stdout().flush();
            for i in 0..n {
                match tx.send(&shmchan_tests::byte_message(i, max)) {
                    Ok(()) => {}
                    Err(shmchan::SendBytesError::Disconnected) if n == u64::MAX => break,
                    Err(e) => fail(format!("send {i}: {e}")),
                }
            }
        }
        "trickle" => {
            let backing = parse_backing(a(1));
            let _ = parse_kind(a(2));
            let door = parse_doorbell(a(3));
            let n: u64 = a(4).parse().expect("N");
            let gap = Duration::from_millis(a(5).parse().expect("GAP_MS"));
            if a(6) == "bytes" {
                let mut tx = Channel::<shmchan::Bytes>::builder()
                    .doorbell(door)
                    .backing(backing)
                    .open_sender()
                    .unwrap_or_else(|e| fail(format!("open_sender: {e}")));
                let max = tx.max_message();
                for i in 0..n {
                    std::thread::sleep(gap);
                    if let Err(e) = tx.send(&shmchan_tests::byte_message(i, max)) {
                        fail(format!("send {i}: {e}"));
                    }
                }
            } else {
                let mut tx = Channel::<Rec>::builder()
                    .doorbell(door)
                    .backing(backing)
                    .open_sender()
                    .unwrap_or_else(|e| fail(format!("open_sender: {e}")));
                for i in 0..n {
                    std::thread::sleep(gap);
                    if let Err(e) = tx.send(Rec::new(1, i)) {
                        fail(format!("send {i}: {e}"));
                    }
                }
            }
        }
        "bytes-consume" => {
            let mut rx = Channel::<shmchan::Bytes>::builder()
                .doorbell(parse_doorbell(a(3)))
                .backing(parse_backing(a(1)))
                .open_receiver()
                .unwrap_or_else(|e| fail(format!("open_receiver: {e}")));
            let _ = parse_kind(a(2));
            let max = rx.max_message();
            let n: u64 = a(4).parse().expect("N");
            let mut buf = Vec::new();
            for i in 0..n {
                if let Err(e) = rx.recv_into_deadline(
                    &mut buf,
                    std::time::Instant::now() + Duration::from_secs(30),
                ) {
                    fail(format!("recv {i}: {e}"));
                }
                if buf != shmchan_tests::byte_message(i, max) {
                    fail(format!("message {i} differs: {} bytes", buf.len()));
                }
            }
            println!("received {n}");
        }
        "bytes-peek-and-hang" => {
            // A byte channel's `peek-and-hang`: hold one message in a zero-copy guard until
            // killed; print its length.
            let mut rx = Channel::<shmchan::Bytes>::builder()
                .mpmc()
                .doorbell(parse_doorbell(a(2)))
                .backing(parse_backing(a(1)))
                .open_receiver()
                .unwrap_or_else(|e| fail(format!("open_receiver: {e}")));
            let g = rx
                .peek_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| fail(format!("peek: {e}")));
            println!("peeked {}", g.len());
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs(600));
            drop(g);
        }
        "hold" => {
            let b = builder(a(2), a(3)).backing(parse_backing(a(1)));
            let held: Box<dyn std::any::Any> = match a(4) {
                "sender" => Box::new(
                    b.open_sender()
                        .unwrap_or_else(|e| fail(format!("open_sender: {e}"))),
                ),
                _ => Box::new(
                    b.open_receiver()
                        .unwrap_or_else(|e| fail(format!("open_receiver: {e}"))),
                ),
            };
            println!("ready");
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs(600));
            drop(held);
        }
        "peek-and-hang" => {
            // Claim a record in a zero-copy receive guard and stay (to be killed) holding it.
            let mut rx = builder("mpmc", a(2))
                .backing(parse_backing(a(1)))
                .open_receiver()
                .unwrap_or_else(|e| fail(format!("open_receiver: {e}")));
            let g = rx
                .peek_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| fail(format!("peek: {e}")));
            println!("peeked {}", g.seq);
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs(600));
            drop(g);
        }
        "reserve-and-hang" => {
            // Claim a slot, write half a record, and stay (to be killed) without committing.
            let mut tx = builder("mpmc", a(2))
                .backing(parse_backing(a(1)))
                .open_sender()
                .unwrap_or_else(|e| fail(format!("open_sender: {e}")));
            let mut g = tx
                .reserve()
                .unwrap_or_else(|e| fail(format!("reserve: {e}")));
            g.seq = 666;
            println!("reserved");
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs(600));
            g.commit();
        }
        "abandon" => {
            let mut tx = builder(a(2), a(3))
                .backing(parse_backing(a(1)))
                .create_sender()
                .unwrap_or_else(|e| fail(format!("create_sender: {e}")));
            for i in 0..3 {
                tx.send(Rec::new(5, i))
                    .unwrap_or_else(|e| fail(format!("send: {e}")));
            }
            println!("abandoned");
            let _ = std::io::stdout().flush();
            std::process::exit(0); // no destructors: the channel and its endpoint stay behind
        }
        "limit-mq" => {
            // A POSIX mq doorbell with this user's message-queue budget at 0: the error must
            // name the limit.
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MSGQUEUE, 0, 0)
                .expect("setrlimit");
            match builder("spsc", "posix-mq")
                .backing(Backing::anonymous())
                .create()
            {
                Err(e) => println!("{e}"),
                Ok(_) => fail("created a POSIX mq doorbell with RLIMIT_MSGQUEUE = 0".into()),
            }
        }
        "open-other-type" => {
            match Channel::<Other>::builder()
                .backing(parse_backing(a(1)))
                .open_receiver()
            {
                Err(e @ OpenError::TypeMismatch { .. }) => println!("{e}"),
                Err(e) => fail(format!("expected TypeMismatch, got {e}")),
                Ok(_) => fail("expected TypeMismatch, opened fine".into()),
            }
        }
        "open-as-nobody" => {
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534)).expect("setgid");
            nix::unistd::setuid(nix::unistd::Uid::from_raw(65534)).expect("setuid");
            match Channel::<Rec>::builder()
                .backing(parse_backing(a(1)))
                .open_receiver()
            {
                Err(e @ OpenError::PermissionDenied { .. }) => println!("{e}"),
                Err(e) => fail(format!("expected PermissionDenied, got {e}")),
                Ok(_) => fail("expected PermissionDenied, opened fine".into()),
            }
        }
        "fork-pipeline" => {
            let n: u64 = a(1).parse().expect("N");
            let cap: usize = args
                .get(4)
                .map(|s| s.parse().expect("CAPACITY"))
                .unwrap_or(1024);
            let chan = builder(a(2), a(3))
                .capacity(cap)
                .backing(Backing::anonymous())
                .create()
                .unwrap_or_else(|e| fail(format!("create: {e}")));
            // This program is single-threaded, so the forked child may use the channel freely.
            // SAFETY: no other thread exists; the child only uses this process's own state.
            match unsafe { nix::unistd::fork() }.expect("fork") {
                nix::unistd::ForkResult::Child => {
                    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut tx = chan.sender().expect("sender");
                        produce(&mut tx, n, 7, 1);
                    }))
                    .map_or(1, |_| 0);
                    // SAFETY: `_exit` skips the parent's atexit handlers and stdio buffers.
                    unsafe { libc::_exit(code) };
                }
                nix::unistd::ForkResult::Parent { child } => {
                    let mut rx = chan.receiver().expect("receiver");
                    let got = consume(&mut rx, Some(n), true);
                    match rx.recv_timeout(Duration::from_secs(10)) {
                        Err(shmchan::RecvTimeoutError::Disconnected) => {}
                        other => fail(format!(
                            "expected Disconnected after {n} records, got {other:?}"
                        )),
                    }
                    let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                    if !matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)) {
                        fail(format!("producer child: {status:?}"));
                    }
                    println!("received {}", got.len());
                }
            }
        }
        "memfd-peer" => {
            let sock = shmchan_tests::socket_from_fd(a(1).parse().expect("SOCKFD"));
            let backing = Backing::receive(&sock).unwrap_or_else(|e| fail(format!("receive: {e}")));
            let b = builder(a(3), a(4)).backing(backing);
            let n: u64 = a(5).parse().expect("N");
            match a(2) {
                "sender" => {
                    let mut tx = b
                        .open_sender()
                        .unwrap_or_else(|e| fail(format!("open_sender: {e}")));
                    produce(&mut tx, n, 3, 1);
                    println!("sent {n}");
                }
                _ => {
                    let mut rx = b
                        .open_receiver()
                        .unwrap_or_else(|e| fail(format!("open_receiver: {e}")));
                    let got = consume(&mut rx, Some(n), true);
                    if got.len() as u64 != n || got.iter().any(|&(p, _)| p != 3) {
                        fail(format!(
                            "got {} records, expected {n} from producer 3",
                            got.len()
                        ));
                    }
                    match rx.recv_timeout(Duration::from_secs(10)) {
                        Err(shmchan::RecvTimeoutError::Disconnected) => {}
                        other => fail(format!("expected Disconnected, got {other:?}")),
                    }
                    println!("received {n}");
                }
            }
        }
        "fork-wake" => {
            let chan = builder("spsc", a(1))
                .backing(Backing::anonymous())
                .create()
                .unwrap_or_else(|e| fail(format!("create: {e}")));
            let mut rx = chan.receiver().expect("receiver");
            // This program is single-threaded, so the forked child may use the channel freely.
            // SAFETY: no other thread exists; the child only uses this process's own state.
            match unsafe { nix::unistd::fork() }.expect("fork") {
                nix::unistd::ForkResult::Child => {
                    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut tx = chan.sender().expect("sender");
                        std::thread::sleep(Duration::from_millis(200));
                        tx.send(Rec::new(9, 1)).expect("send");
                    }))
                    .map_or(1, |_| 0);
                    // SAFETY: `_exit` skips the parent's atexit handlers and stdio buffers.
                    unsafe { libc::_exit(code) };
                }
                nix::unistd::ForkResult::Parent { child } => {
                    let t0 = std::time::Instant::now();
                    match rx.recv_timeout(Duration::from_secs(20)) {
                        Ok(r) if r == Rec::new(9, 1) => {}
                        other => fail(format!("expected the child's record, got {other:?}")),
                    }
                    let waited = t0.elapsed();
                    let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                    if !matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)) {
                        fail(format!("sending child: {status:?}"));
                    }
                    println!("woken after {} ms", waited.as_millis());
                }
            }
        }
        "kill9" => kill9::run(
            a(1),
            a(2),
            a(3),
            a(4).parse().expect("SEED"),
            a(5).parse().expect("ROUNDS"),
        ),
        other => fail(format!("unknown role {other:?}")),
    }
    let _ = std::io::stdout().flush();
    let _ = RecvError::Disconnected;
}

#[path = "child/kill9.rs"]
mod kill9;
