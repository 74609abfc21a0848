//! The program of the PID-namespace suite (`tests/tests/pidns.rs`): two peers of one pair of
//! channels, one in this PID namespace and one in a new one, as two containers that share an
//! IPC namespace would be.
//!
//! `run SPEC_A SPEC_B DOORBELL VICTIM NS`: creates channel A at SPEC_A and channel B at SPEC_B
//! (`sysv-key:K`, `file:PATH`, `memfd` or `anonymous`), then forks two peers:
//! - *host*, in this PID namespace: sender on A, receiver on B;
//! - *ns*, in a new PID namespace (`unshare(CLONE_NEWPID)`, then fork: it is pid 1 there).
//!   With NS `new` it also gets a mount namespace with its own `/proc` (what a container
//!   has: the host's pids are not there); with `new-noproc` it keeps the host's `/proc`.
//!   Receiver on A, sender on B.
//!
//! Each peer reaches the channels as a separate program would: by key or path, over a Unix
//! socket (memfd), or by inheritance across the fork (anonymous). Each prints `ready`, waits
//! idle on its receiver for [`IDLE`] (a peer taken for dead would end the wait with
//! `Disconnected`), sends [`N`] records and receives the other's [`N`], prints `exchanged`,
//! and then waits on its receiver again. This program then kills VICTIM (`host` or `ns`) with
//! SIGKILL and waits for the other to print `disconnected`; it prints `noticed MS` (the time
//! from the kill to that line) and exits 0. VICTIM `none` (anonymous memory, which has no
//! life token: a peer in another PID namespace can neither be judged nor taken for dead)
//! ends both peers after the exchange and prints `exchanged`.
//!
//! `receive SPEC DOORBELL NS N`: a receiver of the channel at SPEC (`sysv-key:K`, `file:PATH`),
//! in this PID namespace (NS `same`) or a new one with its own `/proc` (NS `new`): prints
//! `ready`, waits idle for [`IDLE`] (its sender must not be taken for dead), receives N records
//! `Rec::new(1, 0..N)`, expects `Disconnected` and prints `received N`.
//!
//! `leaks ROUTE DIR`: see `leaks.rs`.
//!
//! When the new namespaces cannot be made (not root, or `unshare` not permitted), it prints
//! `skip: REASON` and exits with status 77.
#![allow(missing_docs)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use shmchan::{Backing, Channel, Doorbell, RecvTimeoutError};
use shmchan_tests::{parse_doorbell, Rec};

/// How long each peer waits idle: far longer than the 50 ms housekeeping slice.
const IDLE: Duration = Duration::from_secs(3);
/// Records each peer sends (fewer than the capacity: nobody blocks on a full ring).
const N: u64 = 100;
const CAPACITY: usize = 256;

fn fail(msg: String) -> ! {
    eprintln!("pidns: {msg}");
    std::process::exit(1);
}

/// How a peer reaches a channel.
enum Reach {
    /// Open it by key or path.
    Spec(Backing),
    /// Receive it over a socket pair of its own (memfd): the ends of peer 0 and of peer 1.
    Socket([UnixStream; 2]),
    /// Use the creator's handle, inherited across the fork (anonymous).
    Inherited,
}

struct Side {
    chan: Channel<Rec>,
    reach: Reach,
    /// The creator's ends of the memfd socket pairs, one per peer.
    share: Vec<UnixStream>,
}

fn backing(spec: &str) -> Backing {
    match spec {
        "memfd" => Backing::memfd("shmchan-pidns"),
        "anonymous" => Backing::anonymous(),
        s => shmchan_tests::parse_backing(s),
    }
}

fn create(spec: &str, door: Doorbell) -> Side {
    let chan = Channel::<Rec>::builder()
        .backing(backing(spec))
        .doorbell(door)
        .capacity(CAPACITY)
        .spsc()
        .create()
        .unwrap_or_else(|e| fail(format!("create {spec}: {e}")));
    let (reach, share) = match spec {
        "memfd" => {
            let (h0, p0) = UnixStream::pair().expect("socketpair");
            let (h1, p1) = UnixStream::pair().expect("socketpair");
            (Reach::Socket([p0, p1]), vec![h0, h1])
        }
        "anonymous" => (Reach::Inherited, Vec::new()),
        s => (Reach::Spec(backing(s)), Vec::new()),
    };
    Side { chan, reach, share }
}

/// The channel as peer `who` (0 or 1) reaches it (`None`: the inherited handle).
fn reach(side: &Side, who: usize, door: Doorbell) -> Option<Channel<Rec>> {
    let b = match &side.reach {
        Reach::Inherited => return None,
        Reach::Spec(b) => b.clone(),
        Reach::Socket(s) => {
            Backing::receive(&s[who]).unwrap_or_else(|e| fail(format!("receive: {e}")))
        }
    };
    Channel::<Rec>::builder()
        .backing(b)
        .doorbell(door)
        .spsc()
        .open()
        .map_or_else(|e| fail(format!("open: {e}")), Some)
}

/// One peer: sender on `tx_side`, receiver on `rx_side`; reports on `out`.
fn peer(tx_side: &Side, rx_side: &Side, who: usize, door: Doorbell, mut out: File) {
    let (tc, rc) = (reach(tx_side, who, door), reach(rx_side, who, door));
    let mut tx = tc
        .as_ref()
        .unwrap_or(&tx_side.chan)
        .sender()
        .unwrap_or_else(|e| fail(format!("sender: {e}")));
    let mut rx = rc
        .as_ref()
        .unwrap_or(&rx_side.chan)
        .receiver()
        .unwrap_or_else(|e| fail(format!("receiver: {e}")));
    let say = |out: &mut File, line: &str| {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .expect("report");
    };
    say(&mut out, "ready");
    // Idle: nothing comes until the other side is done idling too (its first record may).
    let mut next = 0;
    match rx.recv_timeout(IDLE) {
        Err(RecvTimeoutError::Timeout) => {}
        Ok(r) if r == Rec::new(2, 0) => next = 1,
        other => fail(format!("idle wait of {IDLE:?} ended with {other:?}")),
    }
    for seq in 0..N {
        tx.send_timeout(Rec::new(2, seq), Duration::from_secs(30))
            .unwrap_or_else(|e| fail(format!("send {seq}: {e}")));
    }
    for seq in next..N {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(r) if r == Rec::new(2, seq) => {}
            other => fail(format!("record {seq}: {other:?}")),
        }
    }
    say(&mut out, "exchanged");
    match rx.recv_timeout(Duration::from_secs(60)) {
        Err(RecvTimeoutError::Disconnected) => say(&mut out, "disconnected"),
        other => fail(format!(
            "after the exchange: {other:?}, not a disconnection"
        )),
    }
    drop((tx, rx, tc, rc));
}

/// A pipe: the read end as a line reader, the write end as a file.
fn pipe() -> (BufReader<File>, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and nothing else owns them.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (BufReader::new(File::from(r)), File::from(w))
}

/// Forks; the child runs `f` and exits (status 0) without running its parent's destructors
/// (this program is single-threaded: the child may allocate and use channels).
fn fork(f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the process is single-threaded, so the child may allocate and use channels.
    match unsafe { libc::fork() } {
        -1 => fail(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            f();
            shmchan_os::process::_exit(0)
        }
        pid => pid,
    }
}

/// In the new namespaces' first process: dies with its parent, and (NS `new`) mounts a
/// `/proc` of its own PID namespace.
fn enter(own_proc: bool) {
    // SAFETY: plain system calls with valid constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if own_proc {
            let none = std::ptr::null();
            let root = c"/".as_ptr();
            let proc_ = c"proc".as_ptr();
            let at = c"/proc".as_ptr();
            if libc::mount(
                none,
                root,
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                none.cast(),
            ) != 0
                || libc::mount(
                    proc_,
                    at,
                    proc_,
                    libc::MS_NOSUID | libc::MS_NODEV,
                    none.cast(),
                ) != 0
            {
                fail(format!("mount /proc: {}", std::io::Error::last_os_error()));
            }
        }
    }
}

fn expect(r: &mut BufReader<File>, who: &str, want: &str) {
    let mut line = String::new();
    r.read_line(&mut line)
        .unwrap_or_else(|e| fail(format!("{who}: {e}")));
    if line.trim() != want {
        fail(format!("{who} said {:?}, expected {want:?}", line.trim()));
    }
}

fn reap(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer; `pid` is our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    status
}

fn run(spec_a: &str, spec_b: &str, door: Doorbell, victim: &str, ns: &str) {
    let own_proc = match ns {
        "new" => true,
        "new-noproc" => false,
        _ => fail(format!("unknown NS {ns:?}")),
    };
    let a = create(spec_a, door);
    let b = create(spec_b, door);
    let (mut host_out, host_w) = pipe();
    let host = fork(|| peer(&a, &b, 0, door, host_w));
    let flags = libc::CLONE_NEWPID | if own_proc { libc::CLONE_NEWNS } else { 0 };
    // SAFETY: unshare takes no pointers; it moves only the children made from here on.
    if unsafe { libc::unshare(flags) } != 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: our own child.
        unsafe { libc::kill(host, libc::SIGKILL) };
        reap(host);
        println!("skip: unshare(CLONE_NEWPID) is not permitted here ({e})");
        std::process::exit(77);
    }
    let (mut ns_out, ns_w) = pipe();
    let in_ns = fork(|| {
        enter(own_proc);
        peer(&b, &a, 1, door, ns_w)
    });
    // Hand the memfd channels over, each on its own socket per peer.
    for side in [&a, &b] {
        for s in &side.share {
            side.chan.share(s).expect("share");
        }
    }
    for (r, who) in [(&mut host_out, "host"), (&mut ns_out, "ns")] {
        expect(r, who, "ready");
    }
    for (r, who) in [(&mut host_out, "host"), (&mut ns_out, "ns")] {
        expect(r, who, "exchanged");
    }
    if victim == "none" {
        for pid in [host, in_ns] {
            // SAFETY: our own children.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
        }
        println!("exchanged");
        return;
    }
    let (dead, live, out) = match victim {
        "host" => (host, in_ns, &mut ns_out),
        "ns" => (in_ns, host, &mut host_out),
        v => fail(format!("unknown VICTIM {v:?}")),
    };
    let t0 = Instant::now();
    // SAFETY: our own child.
    unsafe { libc::kill(dead, libc::SIGKILL) };
    expect(out, "the survivor", "disconnected");
    let noticed = t0.elapsed();
    reap(dead);
    let status = reap(live);
    if status != 0 {
        fail(format!("the survivor exited with status {status:#x}"));
    }
    println!("noticed {}", noticed.as_millis());
}

/// The `receive` role (see the module docs).
fn receive(spec: &str, door: Doorbell, n: u64) {
    let mut rx = Channel::<Rec>::builder()
        .backing(backing(spec))
        .doorbell(door)
        .spsc()
        .open_receiver()
        .unwrap_or_else(|e| fail(format!("open: {e}")));
    println!("ready");
    match rx.recv_timeout(IDLE) {
        Err(RecvTimeoutError::Timeout) => {}
        other => fail(format!("idle wait of {IDLE:?} ended with {other:?}")),
    }
    for seq in 0..n {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(r) if r == Rec::new(1, seq) => {}
            other => fail(format!("record {seq}: {other:?}")),
        }
    }
    match rx.recv_timeout(Duration::from_secs(30)) {
        Err(RecvTimeoutError::Disconnected) => println!("received {n}"),
        other => fail(format!("after {n} records: {other:?}, not a disconnection")),
    }
}

/// Runs `f` in a new PID namespace with its own `/proc` (this process waits for it and exits
/// with its status), or here (`same`).
fn in_namespace(ns: &str, f: impl FnOnce()) {
    match ns {
        "same" => f(),
        "new" => {
            // SAFETY: unshare takes no pointers; it moves only the children made from here on.
            if unsafe { libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) } != 0 {
                let e = std::io::Error::last_os_error();
                println!("skip: unshare(CLONE_NEWPID) is not permitted here ({e})");
                std::process::exit(77);
            }
            let child = fork(|| {
                enter(true);
                f()
            });
            let status = reap(child);
            std::process::exit(if status == 0 { 0 } else { 1 });
        }
        _ => fail(format!("unknown NS {ns:?}")),
    }
}

#[path = "pidns/leaks.rs"]
mod leaks;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["run", spec_a, spec_b, door, victim, ns] => {
            run(spec_a, spec_b, parse_doorbell(door), victim, ns)
        }
        ["leaks", route, dir] => leaks::leaks(route, dir),
        ["receive", spec, door, ns, n] => {
            let n = n.parse().expect("N");
            in_namespace(ns, || receive(spec, parse_doorbell(door), n))
        }
        _ => fail(format!(
            "usage: run SPEC_A SPEC_B DOORBELL VICTIM NS | receive SPEC DOORBELL NS N | \
             leaks ROUTE DIR (got {a:?})"
        )),
    }
}
