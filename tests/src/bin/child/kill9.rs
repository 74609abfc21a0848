//! The `kill -9` matrix, one backing × doorbell × kind per call, run in this single-threaded
//! program so that it can `fork` freely (anonymous memory needs fork).
//!
//! Each round forks a producer and a consumer, kills one of them with SIGKILL after a random
//! delay, and checks:
//! - producer killed: the consumer drains and sees `Disconnected` (no hang: the parent gives
//!   it a deadline), having received 0..=L in order, exactly once, with L + 1 ≥ the number of
//!   records whose send call had returned `Ok` (counted exactly, see [`Tally`]);
//! - consumer killed (SPSC): a new consumer takes over and receives, in order and exactly
//!   once, everything from where the killed one left (never before its last counted record)
//!   to the producer's last record;
//! - every consumer that saw `Disconnected` (no sender attaches after that in a round) finds
//!   nothing in the ring 2 ms later: a record there was committed before the last sender left
//!   and the drain rule missed it.
//!
//! The round's settings are drawn from the seed too: the ring's capacity (4 to 1,024), how the
//! producer sends (`send`, `send_timeout`, `try_send`, `reserve` + `commit`, `send_batch`)
//! and how the consumer waits (`recv` or `recv_timeout`). The producer connects once the
//! consumer waits (or after 100 ms), so that its arrival meets a waiting receiver. The seed
//! is printed, and a failure names it and the round, so a round can be replayed.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult, Pid};
use shmchan::{Backing, Channel, RecvTimeoutError, TryRecvError};

use super::{builder, Rec};

/// Fails the run by panicking, so that unwinding drops the round's channel and with it the
/// doorbell's kernel objects (anonymous channels have no name a test guard could find).
fn fail(msg: String) -> ! {
    panic!("child: {msg}")
}

const N: u64 = 100_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Copy>(&mut self, of: &[T]) -> T {
        of[(self.next() % of.len() as u64) as usize]
    }
}

/// The call a round's producer sends with.
#[derive(Clone, Copy, Debug)]
enum Api {
    Send,
    SendTimeout,
    TrySend,
    /// `reserve`, then `commit`.
    Reserve,
    /// `send_batch` of this many records at a time.
    SendBatch(usize),
}

/// A round's settings.
#[derive(Clone, Copy, Debug)]
struct Round {
    capacity: usize,
    send: Api,
    /// The consumer waits with `recv` (for ever) rather than `recv_timeout`.
    forever: bool,
}

/// Counters in a page of shared memory that the roles update as they go, so that the parent
/// knows exactly, even after a SIGKILL, how many records the producer's calls returned `Ok`
/// for, and how many the first consumer received.
struct Tally(NonNull<[AtomicU64; 4]>);

impl Tally {
    fn new() -> Tally {
        // SAFETY: a fresh anonymous shared mapping (no address hint, no file); checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            fail(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        Tally(NonNull::new(p.cast()).expect("mmap"))
    }

    fn counters(&self) -> &[AtomicU64; 4] {
        // SAFETY: the page is mapped (zeroed) for as long as `self` lives, in this process
        // and in the forked children that inherit it; atomics are valid for any bits.
        unsafe { self.0.as_ref() }
    }

    /// Records whose send call returned `Ok`.
    fn sent(&self) -> &AtomicU64 {
        &self.counters()[0]
    }

    /// Records the first consumer received.
    fn received(&self) -> &AtomicU64 {
        &self.counters()[1]
    }

    /// Set when the first consumer starts receiving: the producer registers after that (or
    /// after a short wait), so that its arrival meets a receiver already waiting for it.
    fn ready(&self) -> &AtomicU64 {
        &self.counters()[2]
    }

    /// When (CLOCK_MONOTONIC, ns) the first consumer was told `Disconnected`: the detection
    /// latency of a producer's kill is this minus the moment of the kill.
    fn disconnected_at(&self) -> &AtomicU64 {
        &self.counters()[3]
    }
}

/// CLOCK_MONOTONIC in nanoseconds (the same clock in every process, unlike `Instant`).
fn mono_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

impl Drop for Tally {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer referenced.
        unsafe { libc::munmap(self.0.as_ptr().cast(), 4096) };
    }
}

fn say(fd: &OwnedFd, line: &str) {
    let _ = nix::unistd::write(fd, format!("{line}\n").as_bytes());
}

/// Forks; the child runs `f` with the write end of a fresh pipe and `_exit`s.
fn spawn(f: impl FnOnce(&OwnedFd) -> i32) -> (Pid, OwnedFd) {
    let (r, w) = pipe().expect("pipe");
    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(r);
            let code =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&w))).unwrap_or(101);
            // SAFETY: leave without running the parent's exit handlers.
            unsafe { libc::_exit(code) };
        }
        ForkResult::Parent { child } => (child, r),
    }
}

/// Reads everything until EOF (the writer exited) or `deadline`; `None` on timeout.
fn read_all(fd: &OwnedFd, deadline: Instant) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let ms = left.as_millis().min(1000) as u16;
        if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) == 0 {
            continue;
        }
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => fail(format!("read pipe {}: {e}", fd.as_raw_fd())),
        }
    }
}

fn last_num(text: &str, tag: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(tag))
        .filter_map(|v| v.trim().parse().ok())
        .next_back()
}

fn reap(pid: Pid) -> WaitStatus {
    waitpid(pid, None).expect("waitpid")
}

/// Forks a role; for a memfd channel, the child receives it over a fresh socket pair (as an
/// unrelated process would) instead of using the inherited `Channel`.
fn spawn_role(
    chan: &Channel<Rec>,
    spec: &str,
    f: impl FnOnce(Option<&UnixStream>, &OwnedFd) -> i32,
) -> (Pid, OwnedFd) {
    if spec != "memfd" {
        return spawn(|w| f(None, w));
    }
    let (here, there) = UnixStream::pair().expect("socketpair");
    let r = spawn(|w| f(Some(&there), w));
    drop(there);
    if let Err(e) = chan.share(&here) {
        fail(format!("share: {e}"));
    }
    r
}

/// The backing a forked role opens (never used for anonymous memory).
fn role_backing(spec: &str, sock: Option<&UnixStream>) -> Backing {
    match sock {
        Some(s) => Backing::receive(s).expect("receive"),
        None => super::parse_backing(spec),
    }
}

/// The roles' common arguments.
struct Env<'a> {
    chan: &'a Channel<Rec>,
    spec: &'a str,
    kind: &'a str,
    door: &'a str,
    round: Round,
    tally: &'a Tally,
}

/// Why a producer stopped early.
enum Stop {
    /// Every receiver is gone (killed and reaped before a new one came): a correct outcome
    /// for the survivor; everything before `seq` was committed.
    Disconnected(u64),
    Error(String),
}

/// Sends records `seq..` (one, or one batch) the round's way; returns how many were sent.
fn send_some(tx: &mut shmchan::Sender<Rec>, how: Api, seq: u64) -> Result<u64, Stop> {
    let rec = Rec::new(1, seq);
    let err = |e: &dyn std::fmt::Display| Stop::Error(format!("send {seq}: {e}"));
    match how {
        Api::Send => match tx.send(rec) {
            Ok(()) => Ok(1),
            Err(shmchan::SendError::Disconnected(_)) => Err(Stop::Disconnected(seq)),
            Err(e) => Err(err(&e)),
        },
        Api::SendTimeout => match tx.send_timeout(rec, Duration::from_secs(20)) {
            Ok(()) => Ok(1),
            Err(shmchan::SendTimeoutError::Disconnected(_)) => Err(Stop::Disconnected(seq)),
            Err(e) => Err(err(&e)),
        },
        Api::TrySend => loop {
            match tx.try_send(rec) {
                Ok(()) => return Ok(1),
                Err(shmchan::TrySendError::Full(_)) => std::thread::yield_now(),
                Err(shmchan::TrySendError::Disconnected(_)) => return Err(Stop::Disconnected(seq)),
                Err(e) => return Err(err(&e)),
            }
        },
        Api::Reserve => match tx.reserve() {
            Ok(mut slot) => {
                *slot = rec;
                slot.commit();
                Ok(1)
            }
            Err(shmchan::ReserveError::Disconnected) => Err(Stop::Disconnected(seq)),
            Err(e) => Err(err(&e)),
        },
        Api::SendBatch(k) => {
            let recs: Vec<Rec> = (seq..(seq + k as u64).min(N))
                .map(|s| Rec::new(1, s))
                .collect();
            match tx.send_batch(&recs) {
                Ok(n) => Ok(n as u64),
                Err(shmchan::SendBatchError::Disconnected) => Err(Stop::Disconnected(seq)),
                Err(e) => Err(err(&e)),
            }
        }
    }
}

fn producer(env: &Env<'_>, sock: Option<&UnixStream>, w: &OwnedFd) -> i32 {
    let t0 = Instant::now();
    while env.tally.ready().load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_millis(100)
    {
        std::thread::yield_now();
    }
    let mut tx = if env.spec == "anonymous" {
        env.chan.sender().expect("sender")
    } else {
        builder(env.kind, env.door)
            .backing(role_backing(env.spec, sock))
            .open_sender()
            .expect("open_sender")
    };
    let mut seq = 0;
    while seq < N {
        match send_some(&mut tx, env.round.send, seq) {
            Ok(n) => {
                seq += n;
                // Right after the call returned: a kill before this store only undercounts.
                env.tally.sent().store(seq, Ordering::SeqCst);
            }
            Err(Stop::Disconnected(at)) => {
                say(w, &format!("disc {at}"));
                return 0;
            }
            Err(Stop::Error(e)) => {
                say(w, &format!("error {e}"));
                return 1;
            }
        }
    }
    say(w, "done");
    0
}

/// Receives until `Disconnected`, checking order (SPSC) or that the set is one gap-free range
/// (MPMC: a record adopted from a killed consumer arrives out of order). `first` is the first
/// consumer of the round: it keeps the shared count of what it received.
fn consumer(env: &Env<'_>, first_consumer: bool, sock: Option<&UnixStream>, w: &OwnedFd) -> i32 {
    let mut rx = if env.spec == "anonymous" {
        env.chan.receiver().expect("receiver")
    } else {
        builder(env.kind, env.door)
            .backing(role_backing(env.spec, sock))
            .open_receiver()
            .expect("open_receiver")
    };
    let (mut first, mut next, mut count) = (None, 0u64, 0u64);
    let mpmc = env.kind == "mpmc";
    let mut seen = std::collections::BTreeSet::new();
    if first_consumer {
        env.tally.ready().store(1, Ordering::SeqCst);
    }
    loop {
        let r = if env.round.forever {
            rx.recv().map_err(|e| match e {
                shmchan::RecvError::Disconnected => RecvTimeoutError::Disconnected,
                shmchan::RecvError::Corrupted => RecvTimeoutError::Corrupted,
                _ => RecvTimeoutError::Forked,
            })
        } else {
            rx.recv_timeout(Duration::from_secs(20))
        };
        match r {
            Ok(r) => {
                if !r.is_valid() {
                    say(w, &format!("error torn {r:?}"));
                    return 1;
                }
                if mpmc {
                    if !seen.insert(r.seq) {
                        say(w, &format!("error duplicate {}", r.seq));
                        return 1;
                    }
                } else {
                    if first.is_none() {
                        first = Some(r.seq);
                        next = r.seq;
                    }
                    if r.seq != next {
                        say(w, &format!("error expected {next} got {}", r.seq));
                        return 1;
                    }
                    next += 1;
                }
                count += 1;
                if first_consumer {
                    env.tally.received().store(count, Ordering::SeqCst);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if first_consumer {
                    env.tally
                        .disconnected_at()
                        .store(mono_ns(), Ordering::SeqCst);
                }
                break;
            }
            Err(e) => {
                say(w, &format!("error recv after {count}: {e}"));
                return 1;
            }
        }
    }
    // No sender attaches after the last one left in a round: anything in the ring now was
    // committed before it left, and `Disconnected` was reported over it.
    std::thread::sleep(Duration::from_millis(2));
    match rx.try_recv() {
        Err(TryRecvError::Disconnected) => {}
        Ok(r) => {
            say(
                w,
                &format!("error Disconnected after {count} records, then try_recv got {r:?}"),
            );
            return 1;
        }
        Err(e) => {
            say(w, &format!("error try_recv after Disconnected: {e}"));
            return 1;
        }
    }
    if mpmc {
        if let (Some(&f), Some(&l)) = (seen.first(), seen.last()) {
            if l - f + 1 != count {
                say(w, &format!("error gap: {count} records in {f}..={l}"));
                return 1;
            }
            first = Some(f);
            next = l + 1;
        }
    }
    match first {
        Some(f) => say(w, &format!("end {f} {} {count}", next - 1)),
        None => say(w, "end none"),
    }
    0
}

/// (first, last) from a consumer's `end` line; `None` for a consumer that got nothing.
fn end_of(text: &str, what: &str, at: &str) -> Option<(u64, u64)> {
    if let Some(e) = text.lines().find(|l| l.starts_with("error")) {
        fail(format!("{at}: {what}: {e}"));
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("end"))
        .unwrap_or_else(|| fail(format!("{at}: {what} did not finish: {text:?}")));
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    (v.len() == 3).then(|| {
        assert_eq!(v[2], v[1] - v[0] + 1);
        (v[0], v[1])
    })
}

/// Producer killed: the consumer must drain everything the producer's calls returned `Ok`
/// for, then report `Disconnected`. Returns whether a send had returned (else nothing is
/// checked), with the detection latency (µs from the kill to the consumer's `Disconnected`;
/// `None` when the producer had finished and left before it was killed).
fn producer_killed(
    env: &Env<'_>,
    at: &str,
    (ppid, pfd): (Pid, OwnedFd),
    (cpid, cfd): (Pid, OwnedFd),
) -> Option<Option<f64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = mono_ns();
    let _ = kill(ppid, Signal::SIGKILL);
    // The dead producer is reaped only once the consumer has reported: reaping a process
    // costs its parent up to a few milliseconds of CPU (the kernel prunes the `/proc`
    // entries of the dead process), and the parent, woken by the death, would take that
    // time from the consumer being measured (seen with the scheduler's trace on two CPUs).
    // Its pipe ends at its exit all the same.
    let ptext = read_all(&pfd, deadline).unwrap_or_default();
    if let Some(e) = ptext.lines().find(|l| l.starts_with("error")) {
        fail(format!("{at}: producer: {e}"));
    }
    let sent = env.tally.sent().load(Ordering::SeqCst);
    if sent == 0 {
        // Killed before a send returned, maybe before it even registered: then no sender
        // ever connected and the consumer rightly keeps waiting.
        let _ = kill(cpid, Signal::SIGKILL);
        reap(cpid);
        reap(ppid);
        return None;
    }
    let ctext = read_all(&cfd, deadline).unwrap_or_else(|| {
        let _ = kill(cpid, Signal::SIGKILL);
        fail(format!("{at}: consumer hung after the producer was killed"))
    });
    reap(cpid);
    reap(ppid);
    match end_of(&ctext, "consumer", at) {
        Some((0, last)) if last + 1 >= sent => {}
        got => fail(format!(
            "{at}: the producer's calls returned Ok for {sent} records, the consumer got {got:?} \
             (first, last) before Disconnected"
        )),
    }
    let told = env.tally.disconnected_at().load(Ordering::SeqCst);
    if std::env::var_os("SHMCHAN_KILL9_EACH").is_some() {
        // One line per kill, on CLOCK_MONOTONIC (the clock of `trace_clock mono`), for a
        // scheduler trace to say where each detection's time went.
        println!("kill9 each: producer {ppid} killed {killed_at} told {told}");
    }
    Some((told > killed_at).then(|| (told - killed_at) as f64 / 1e3))
}

/// Consumer killed (and replaced): the producer finishes or sees every receiver gone, and the
/// second consumer gets the rest, from after what the first one received.
fn consumer_killed(
    env: &Env<'_>,
    at: &str,
    (ppid, pfd): (Pid, OwnedFd),
    (cpid, cfd): (Pid, OwnedFd),
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let _ = kill(cpid, Signal::SIGKILL);
    reap(cpid);
    let ctext = read_all(&cfd, deadline).unwrap_or_default();
    let received = env.tally.received().load(Ordering::SeqCst);
    if let Some(e) = ctext.lines().find(|l| l.starts_with("error")) {
        fail(format!("{at}: consumer: {e}"));
    }
    let (c2pid, c2fd) = spawn_role(env.chan, env.spec, |s, w| consumer(env, false, s, w));
    let ptext = read_all(&pfd, deadline).unwrap_or_else(|| {
        let _ = kill(ppid, Signal::SIGKILL);
        let _ = kill(c2pid, Signal::SIGKILL);
        fail(format!(
            "{at}: producer hung after the consumer was replaced"
        ))
    });
    reap(ppid);
    if let Some(e) = ptext.lines().find(|l| l.starts_with("error")) {
        let _ = kill(c2pid, Signal::SIGKILL);
        fail(format!("{at}: producer: {e}"));
    }
    // The producer finished, or saw every receiver gone before the new consumer registered:
    // then its last record was `disc - 1`.
    let last_sent = if ptext.contains("done") {
        N - 1
    } else if let Some(d) = last_num(&ptext, "disc ") {
        d.saturating_sub(1)
    } else {
        let tail = &ptext[ptext.len().saturating_sub(200)..];
        let _ = kill(c2pid, Signal::SIGKILL);
        fail(format!("{at}: producer did not finish: ...{tail:?}"))
    };
    let c2text = read_all(&c2fd, deadline).unwrap_or_else(|| {
        let _ = kill(c2pid, Signal::SIGKILL);
        fail(format!("{at}: second consumer hung"))
    });
    reap(c2pid);
    // `None`: the first consumer took everything before it died.
    if let Some((first, last)) = end_of(&c2text, "second consumer", at) {
        // SPSC: the first consumer received 0..received (maybe more, uncounted); MPMC: it
        // may have died holding records, which the second one adopts (out of order).
        let resumed = env.kind == "mpmc" || first >= received;
        if !resumed || last != last_sent {
            fail(format!(
                "{at}: first consumer received {received}, second got {first}..={last}, \
                 last sent {last_sent}"
            ));
        }
    }
}

pub(super) fn run(spec: &str, kind: &str, door: &str, seed: u64, rounds: u32) {
    let mut rng = Rng(seed.max(1));
    // Producers killed after a send returned, before; consumers killed.
    let (mut after_send, mut before_send, mut consumers) = (0, 0, 0);
    // Detection latencies of the producers' kills (µs).
    let mut noticed = Vec::new();
    eprintln!("kill9 {spec} {kind} {door}: seed {seed}, {rounds} rounds");
    for round in 0..rounds {
        let settings = Round {
            capacity: rng.pick(&[4, 16, 64, 1024]),
            send: match rng.next() % 5 {
                0 => Api::Send,
                1 => Api::SendTimeout,
                2 => Api::TrySend,
                3 => Api::Reserve,
                _ => Api::SendBatch(1 + (rng.next() % 8) as usize),
            },
            forever: rng.next() % 2 == 0,
        };
        let kill_producer = rng.next() % 2 == 0;
        let delay = Duration::from_micros(rng.next() % 20_000);
        let at = format!("seed {seed} round {round} ({settings:?}, delay {delay:?})");
        let b = builder(kind, door).capacity(settings.capacity);
        let chan = if spec == "anonymous" {
            b.backing(Backing::anonymous()).create()
        } else if spec == "memfd" {
            b.backing(Backing::memfd(format!("kill9-{round}"))).create()
        } else {
            b.backing(super::parse_backing(spec)).create()
        }
        .unwrap_or_else(|e| fail(format!("{at}: create: {e}")));
        let tally = Tally::new();
        let env = Env {
            chan: &chan,
            spec,
            kind,
            door,
            round: settings,
            tally: &tally,
        };
        let c = spawn_role(&chan, spec, |s, w| consumer(&env, true, s, w));
        let p = spawn_role(&chan, spec, |s, w| producer(&env, s, w));
        std::thread::sleep(delay);
        if kill_producer {
            if let Some(us) = producer_killed(&env, &at, p, c) {
                after_send += 1;
                noticed.extend(us);
            } else {
                before_send += 1;
            }
        } else {
            consumer_killed(&env, &at, p, c);
            consumers += 1;
        }
        drop(chan);
        // A producer killed inside its first call (a batch published, the call not yet
        // returned) leaves records that nobody is owed, and the consumer is killed with it:
        // a named channel holding unread records outlives its creator's drop (they are never
        // destroyed by one), and the next round's create would refuse it. This round is over:
        // remove it.
        if spec.starts_with("file:") || spec.starts_with("sysv-key:") {
            match shmchan::remove(&super::parse_backing(spec)) {
                Ok(()) | Err(shmchan::OpenError::NotFound { .. }) => {}
                Err(e) => fail(format!("{at}: remove: {e}")),
            }
        }
    }
    noticed.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        let i = ((q * noticed.len() as f64).ceil() as usize).clamp(1, noticed.len().max(1));
        noticed.get(i - 1).map_or(0.0, |us| us / 1e3)
    };
    println!(
        "ok {rounds} rounds: {} producers killed ({before_send} before any send returned), \
         {consumers} consumers killed; kill -9 of the producer to Disconnected ({} kills): \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        after_send + before_send,
        noticed.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
