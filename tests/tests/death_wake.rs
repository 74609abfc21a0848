//! A waiter on the futex doorbell hears of a peer's death at once: the peer's keeper thread
//! has the kernel mark its wake word `OWNER_DIED` and wake it (`futex_waitv`), so a `kill -9`
//! ends a blocked `recv` (or a `send` blocked on a full ring) well before the 50 ms slice
//! that every other doorbell waits for. And nothing else looks like a death: a thread that
//! exits, an endpoint moved to another thread, a peer that scribbles the wake words.
//!
//! The bound asserted, [`NOT_THE_SLICE`], is a correctness check (the wake-up came from the
//! death, not from the slice), not a speed target; `shmchan bench` has the figures. Kernels
//! without `futex_waitv` (before 5.16) print why and pass.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmchan::{Backing, Channel, Doorbell, RecvTimeoutError, RingKind};
use shmchan_tests::{parse_backing, BackingKind, ChildGuard, Place, Rec};

/// Less than the 50 ms time slice: a wake-up within it came from the death.
const NOT_THE_SLICE: Duration = Duration::from_millis(40);
/// Tries per case: the lowest must beat [`NOT_THE_SLICE`] (a loaded machine can delay one).
const TRIES: usize = 3;
/// How long after a waiter starts its peer is killed: long enough to be asleep in the kernel
/// (the spin window is microseconds), and just past the end of its second time slice, so that
/// without the wake word the death would be noticed 45 ms later (the next slice), not by luck
/// at once.
const ASLEEP: Duration = Duration::from_millis(105);
const ROLE_ENV: &str = "SHMCHAN_DEATH_WAKE_ROLE";
const SPEC_ENV: &str = "SHMCHAN_DEATH_WAKE_SPEC";

fn has_waitv() -> bool {
    if shmchan::os::futex::futex_waitv_supported().unwrap_or(false) {
        return true;
    }
    println!("skipped: this kernel has no futex_waitv (Linux 5.16+)");
    false
}

fn builder(kind: RingKind) -> shmchan::Builder<Rec> {
    let b = Channel::<Rec>::builder()
        .doorbell(Doorbell::Futex)
        .capacity(4);
    match kind {
        RingKind::Spsc => b,
        _ => b.mpmc(),
    }
}

/// The peer program (this test binary run again with its role in the environment): opens the
/// channel, says `ready` once registered (a sender after one record sent), then waits to be
/// killed.
#[test]
fn peer() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let spec = std::env::var(SPEC_ENV).expect("spec");
    let kind = if role.ends_with("mpmc") {
        RingKind::Mpmc
    } else {
        RingKind::Spsc
    };
    let b = builder(kind).backing(parse_backing(&spec));
    let _hold: Box<dyn std::any::Any> = if role.starts_with("sender") {
        let mut tx = b.open_sender().expect("open_sender");
        tx.send(Rec::new(1, 0)).expect("send");
        Box::new(tx)
    } else {
        Box::new(b.open_receiver().expect("open_receiver"))
    };
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn spawn_peer(role: &str, spec: &str) -> ChildGuard {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.args(["--exact", "peer", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(SPEC_ENV, spec);
    let mut child = ChildGuard::spawn_cmd(cmd, role);
    while !child.read_line().ends_with("ready") {}
    child
}

/// Runs `blocked` on a thread, kills `victim` once it has blocked, and returns how long after
/// the kill it returned (`Ok`: it returned `Disconnected`).
fn time_death(victim: ChildGuard, blocked: impl FnOnce() -> Result<(), String> + Send) -> Duration {
    std::thread::scope(|s| {
        let waiter = s.spawn(move || (blocked(), Instant::now()));
        std::thread::sleep(ASLEEP);
        let t0 = Instant::now();
        victim.kill9();
        let (r, t1) = waiter.join().expect("waiter");
        r.unwrap_or_else(|e| panic!("{e}"));
        t1 - t0
    })
}

/// A receiver blocked in `recv` is told `Disconnected` at once when its sender is killed.
fn recv_woken(kind: RingKind, backing: BackingKind) {
    recv_woken_after(kind, backing, "", |_, _| {});
}

/// [`recv_woken`], with `before` run on the channel's place and the live sender just before
/// the receiver blocks (`what` names the case in the messages).
fn recv_woken_after(
    kind: RingKind,
    backing: BackingKind,
    what: &str,
    before: impl Fn(&Place, &ChildGuard),
) {
    if !has_waitv() {
        return;
    }
    let mut best = Duration::MAX;
    for _ in 0..TRIES {
        let place = Place::new(backing);
        let chan = builder(kind)
            .backing(place.backing.clone())
            .create()
            .unwrap();
        let mut rx = chan.receiver().unwrap();
        let peer = spawn_peer(&format!("sender-{kind:?}").to_lowercase(), &place.spec);
        assert_eq!(rx.recv().unwrap().seq, 0);
        before(&place, &peer);
        let took = time_death(peer, move || {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Err(RecvTimeoutError::Disconnected) => Ok(()),
                other => Err(format!("recv after the sender's death: {other:?}")),
            }
        });
        println!("{kind:?} {backing:?}{what}: recv woken {took:?} after the kill");
        best = best.min(took);
        if best < NOT_THE_SLICE {
            break;
        }
    }
    assert!(
        best < NOT_THE_SLICE,
        "the receiver noticed its sender's death{what} after {best:?}: the slice, not the \
         wake word"
    );
}

/// A sender blocked on a full ring is told `Disconnected` at once when its receiver is
/// killed.
fn send_woken(kind: RingKind, backing: BackingKind) {
    if !has_waitv() {
        return;
    }
    let mut best = Duration::MAX;
    for _ in 0..TRIES {
        let place = Place::new(backing);
        let chan = builder(kind)
            .backing(place.backing.clone())
            .create()
            .unwrap();
        let mut tx = chan.sender().unwrap();
        let peer = spawn_peer(&format!("receiver-{kind:?}").to_lowercase(), &place.spec);
        let mut seq = 0;
        while tx.try_send(Rec::new(1, seq)).is_ok() {
            seq += 1;
        }
        let took = time_death(peer, move || {
            match tx.send_timeout(Rec::new(1, seq), Duration::from_secs(10)) {
                Err(shmchan::SendTimeoutError::Disconnected(_)) => Ok(()),
                other => Err(format!(
                    "send after the receiver's death: {:?}",
                    other.err()
                )),
            }
        });
        println!("{kind:?} {backing:?}: send woken {took:?} after the kill");
        best = best.min(took);
        if best < NOT_THE_SLICE {
            break;
        }
    }
    assert!(
        best < NOT_THE_SLICE,
        "the sender noticed its receiver's death after {best:?}: the slice, not the wake word"
    );
}

#[test]
fn spsc_recv_is_woken_by_a_death() {
    recv_woken(RingKind::Spsc, BackingKind::File);
}

#[test]
fn spsc_recv_is_woken_by_a_death_sysv() {
    recv_woken(RingKind::Spsc, BackingKind::SysvKey);
}

#[test]
fn mpmc_recv_is_woken_by_a_death() {
    recv_woken(RingKind::Mpmc, BackingKind::File);
}

#[test]
fn spsc_send_is_woken_by_a_death() {
    send_woken(RingKind::Spsc, BackingKind::File);
}

#[test]
fn mpmc_send_is_woken_by_a_death() {
    send_woken(RingKind::Mpmc, BackingKind::SysvKey);
}

/// A child forked after its parent registered (so it inherited the parent's keeper, without
/// its thread) gets a keeper of its own: its death wakes the parent's waiter.
#[test]
fn a_forked_childs_endpoint_has_its_own_keeper() {
    if !has_waitv() {
        return;
    }
    let chan = builder(RingKind::Spsc)
        .backing(Backing::anonymous())
        .create()
        .unwrap();
    let mut rx = chan.receiver().unwrap();
    // SAFETY: the child only opens a sender, sends, and sleeps until killed; it never
    // returns into the test harness (it leaves with `_exit`).
    let pid = match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut tx = chan.sender().unwrap();
                tx.send(Rec::new(1, 0)).unwrap();
                std::mem::forget(tx);
                loop {
                    std::thread::sleep(Duration::from_secs(60));
                }
            }));
            // SAFETY: leave without running the harness's exit handlers.
            unsafe { libc::_exit(i32::from(r.is_err())) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    struct Reap(nix::unistd::Pid);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(self.0, None);
        }
    }
    let child = Reap(pid);
    assert_eq!(rx.recv().unwrap().seq, 0);
    let took = std::thread::scope(|s| {
        let w = s.spawn(|| (rx.recv_timeout(Duration::from_secs(10)), Instant::now()));
        std::thread::sleep(ASLEEP);
        let t0 = Instant::now();
        drop(child);
        let (r, t1) = w.join().unwrap();
        assert_eq!(r, Err(RecvTimeoutError::Disconnected));
        t1 - t0
    });
    println!("forked child's death noticed after {took:?}");
    assert!(took < NOT_THE_SLICE, "noticed after {took:?}: the slice");
}

/// A fork while another thread of the parent starts or stops a keeper (it holds the
/// mapping's keeper lock meanwhile, up to a few milliseconds) leaves the child a copy of a
/// lock nobody will release: the child's own registrations must not wait for it. Each child
/// opens a sender and leaves; every one must be done well within its deadline.
#[test]
fn a_fork_during_a_keeper_start_does_not_hang_the_child() {
    if !has_waitv() {
        return;
    }
    let chan = builder(RingKind::Mpmc)
        .backing(Backing::anonymous())
        .create()
        .unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Registers and leaves over and over, this process's only endpoint: each registration
        // starts this process's keeper, each departure stops it, both under the lock.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                drop(chan.sender().unwrap());
            }
        });
        for round in 0..100 {
            // SAFETY: the child opens a sender, drops it and leaves with `_exit`; it never
            // returns into the test harness.
            let pid = match unsafe { nix::unistd::fork() }.expect("fork") {
                nix::unistd::ForkResult::Child => {
                    let ok = chan.sender().is_ok();
                    // SAFETY: leave without running the harness's exit handlers.
                    unsafe { libc::_exit(i32::from(!ok)) }
                }
                nix::unistd::ForkResult::Parent { child } => child,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            let status = loop {
                match nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Ok(nix::sys::wait::WaitStatus::StillAlive) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                        let _ = nix::sys::wait::waitpid(pid, None);
                        stop.store(true, Ordering::Relaxed);
                        panic!("round {round}: the child hung opening a sender");
                    }
                    other => break other,
                }
            };
            assert_eq!(
                status,
                Ok(nix::sys::wait::WaitStatus::Exited(pid, 0)),
                "round {round}"
            );
        }
        stop.store(true, Ordering::Relaxed);
    });
}

/// A thread that exits while its process lives is no death: an endpoint made on a thread that
/// then exited keeps working from another thread, and its peer, waiting meanwhile, is never
/// told `Disconnected`.
#[test]
fn an_exiting_thread_is_no_death() {
    let place = Place::new(BackingKind::File);
    let chan = builder(RingKind::Spsc)
        .backing(place.backing.clone())
        .create()
        .unwrap();
    let mut rx = chan.receiver().unwrap();
    let mut tx = std::thread::spawn({
        let b = builder(RingKind::Spsc).backing(place.backing.clone());
        move || b.open_sender().unwrap()
    })
    .join()
    .unwrap();
    // Other threads come and go, each one registering and leaving a sibling channel's
    // endpoint (a keeper thread started and stopped).
    for _ in 0..3 {
        std::thread::spawn(|| {
            let c = builder(RingKind::Spsc).create().unwrap();
            drop(c.sender().unwrap());
        })
        .join()
        .unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(120)),
            Err(RecvTimeoutError::Timeout)
        );
    }
    std::thread::scope(|s| {
        s.spawn(|| tx.send(Rec::new(1, 7)).unwrap());
    });
    assert_eq!(rx.recv().unwrap().seq, 7);
}

/// The keeper thread's TID, read from `/proc/self/task` (its name).
fn keeper_tids() -> Vec<u32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == "shmchan-keeper").then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

/// A peer killed while its wake word holds no TID (between its registration and its
/// keeper's link, or a peer without a keeper) gets no mark from the kernel: the waiter, which
/// sleeps in short parts while such a peer lives, looks at it at the end of each and finds it
/// dead well before the time slice. Simulated by clearing the live sender's word.
#[test]
fn a_peer_whose_word_holds_no_tid_is_noticed_before_the_slice() {
    recv_woken_after(
        RingKind::Spsc,
        BackingKind::File,
        " (its word cleared)",
        |place, peer| {
            // The sender's wake word (offset 72 of a 128-byte entry) holds its keeper's TID,
            // a thread of the child.
            let tids: Vec<u32> = std::fs::read_dir(format!("/proc/{}/task", peer.pid()))
                .expect("the peer's threads")
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            let map =
                shmchan::os::SharedMapping::open_file(place.spec.strip_prefix("file:").unwrap())
                    .expect("map");
            // SAFETY: as in `scribbled_wake_words_are_no_death`.
            let words: Vec<&AtomicU32> = (0..map.len() / 128)
                .map(|i| unsafe { &*(map.as_ptr().as_ptr().add(i * 128 + 72) as *const AtomicU32) })
                .filter(|w| tids.contains(&(w.load(Ordering::Relaxed) & 0x3fff_ffff)))
                .collect();
            assert_eq!(words.len(), 1, "the sender's wake word");
            words[0].store(0, Ordering::Relaxed);
        },
    );
}

/// A peer that scribbles the wake words (a forged `OWNER_DIED`, random values, a storm of
/// `FUTEX_WAITERS` and wake-ups) makes no endpoint dead and no wait miss its deadline.
#[test]
fn scribbled_wake_words_are_no_death() {
    if !has_waitv() {
        return;
    }
    let place = Place::new(BackingKind::File);
    let chan = builder(RingKind::Spsc)
        .backing(place.backing.clone())
        .create()
        .unwrap();
    let before = keeper_tids();
    let mut rx = chan.receiver().unwrap();
    let mut tx = chan.sender().unwrap();
    let tid = *keeper_tids()
        .iter()
        .find(|t| !before.contains(t))
        .expect("a keeper thread for the new channel");
    // The hostile peer: a second mapping of the file, whose wake words (offset 72 of a
    // 128-byte entry) hold the keeper's TID.
    let map = shmchan::os::SharedMapping::open_file(place.spec.strip_prefix("file:").unwrap())
        .expect("map");
    let len = map.len();
    // SAFETY: the mapping is `len` bytes long, page-aligned, and lives until the end of the
    // test; it is read and written through atomics only.
    let words: Vec<&AtomicU32> = (0..len / 128)
        .map(|i| unsafe { &*(map.as_ptr().as_ptr().add(i * 128 + 72) as *const AtomicU32) })
        .filter(|w| w.load(Ordering::Relaxed) & 0x3fff_ffff == tid)
        .collect();
    assert_eq!(words.len(), 2, "the two endpoints' wake words");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut x: u32 = 0x9e37_79b9;
            while !stop.load(Ordering::Relaxed) {
                for w in &words {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let v = match x % 4 {
                        0 => 0x4000_0000 | tid,
                        1 => x,
                        2 => tid | 0x8000_0000,
                        _ => 0xc000_0000,
                    };
                    w.store(v, Ordering::Relaxed);
                    let _ = shmchan::os::futex_wake(w, u32::MAX);
                }
                std::thread::yield_now();
            }
        });
        // Stops the scribbler even when an assertion below fails (the scope joins it).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        for _ in 0..8 {
            let t0 = Instant::now();
            assert_eq!(
                rx.recv_timeout(Duration::from_millis(100)),
                Err(RecvTimeoutError::Timeout),
                "a scribbled wake word made the live sender look dead"
            );
            assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        }
    });
    tx.send(Rec::new(1, 1)).unwrap();
    assert_eq!(rx.recv().unwrap().seq, 1);
}

/// Across PID namespaces (root only; see `tests/tests/pidns.rs`): a futex-doorbell waiter
/// in either namespace is woken by its peer's `kill -9` in the other within the bound.
#[test]
fn pid_namespaces_futex_wake() {
    if shmchan::os::identity::geteuid() != 0 {
        println!("skipped: new PID namespaces need root");
        return;
    }
    if !has_waitv() {
        return;
    }
    const PIDNS: &str = env!("CARGO_BIN_EXE_shmchan-test-pidns");
    for kind in [BackingKind::SysvKey, BackingKind::File, BackingKind::Memfd] {
        for victim in ["ns", "host"] {
            let mut best = u64::MAX;
            for _ in 0..TRIES {
                let (a, b) = (Place::new(kind), Place::new(kind));
                let child =
                    ChildGuard::spawn(PIDNS, &["run", &a.spec, &b.spec, "futex", victim, "new"]);
                let (status, out) = child.wait(Duration::from_secs(120));
                if status.code() == Some(77) {
                    println!("skipped: {}", out.trim());
                    return;
                }
                assert!(status.success(), "{kind:?} {victim}: {status}: {out}");
                let ms: u64 = out
                    .trim()
                    .strip_prefix("noticed ")
                    .unwrap()
                    .parse()
                    .unwrap();
                println!("{kind:?}, victim {victim}: noticed after {ms} ms");
                best = best.min(ms);
                if best < NOT_THE_SLICE.as_millis() as u64 {
                    break;
                }
            }
            assert!(
                best < NOT_THE_SLICE.as_millis() as u64,
                "{kind:?}, victim {victim}: noticed after {best} ms"
            );
        }
    }
}
