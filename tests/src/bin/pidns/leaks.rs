//! `leaks ROUTE DIR`: nothing a channel's liveness uses outlives the channel, whichever way
//! the channel goes. Runs in a new IPC namespace of its own (so `/proc/sysvipc` shows only
//! what this run made, whatever runs in parallel), with a peer process holding endpoints, and
//! checks at the end that no SysV object is left and that no lock is held on the channel's
//! file. Prints `clean`. ROUTE:
//! - `file-rm`: a file channel in DIR, deleted with `rm` while both peers hold it; the peer
//!   is killed with SIGKILL, the creator drops it.
//! - `memfd-close`: a memfd channel handed to the peer; the peer is killed, the creator drops
//!   it (the last descriptor closes).
//! - `sysv-drop`: a SysV channel both peers drop (the last one removes it).
//! - `sysv-ipcrm`: a SysV channel removed with `ipcrm -m` while both hold it; the peer is
//!   killed, the creator drops it; its life set is left behind and `prune_orphans` removes it.
//! - `sysv-kill9`: the creator is killed holding an endpoint; the stale channel is removed as
//!   `shmchan prune` and `shmchan rm` do ([`shmchan::remove`]).
//! - `sysv-lastdetach`: a `Cleanup::LastDetach` channel whose every process is killed: the
//!   kernel frees the segment, `prune_orphans` removes the set.
//! - `sysv-reclaim`: a stale channel (its creator killed) is reclaimed by a new creator at the
//!   same key, which then drops it.

use std::io::BufRead;
use std::os::unix::net::UnixStream;

use shmchan::{Backing, Channel, Cleanup, Doorbell};
use shmchan_tests::Rec;

use super::{expect, fail, fork, pipe, reap};

/// Lines of a `/proc/sysvipc` table after its header.
fn sysvipc(table: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/sysvipc/{table}"))
        .unwrap_or_else(|e| fail(format!("/proc/sysvipc/{table}: {e}")))
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn life_sets() -> usize {
    sysvipc("sem").len()
}

/// `/proc/locks` lines on inode `ino`.
fn locks_on(ino: u64) -> Vec<String> {
    let suffix = format!(":{ino}");
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_else(|e| fail(format!("/proc/locks: {e}")))
        .lines()
        .filter(|l| l.split_whitespace().any(|f| f.ends_with(&suffix)))
        .map(str::to_owned)
        .collect()
}

fn kill9(pid: libc::pid_t) {
    // SAFETY: our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid);
}

/// A peer that opens `b` (or receives it over `sock`), takes a receiver, reports `ready`
/// after one record, and waits to be killed.
fn peer(b: Option<Backing>, sock: Option<UnixStream>) -> (libc::pid_t, impl FnMut()) {
    let (mut r, w) = pipe();
    let pid = fork(move || {
        let mut w = w;
        let b = b.unwrap_or_else(|| {
            Backing::receive(sock.as_ref().expect("a socket"))
                .unwrap_or_else(|e| fail(format!("receive: {e}")))
        });
        let chan = Channel::<Rec>::builder()
            .backing(b)
            .open()
            .unwrap_or_else(|e| fail(format!("peer open: {e}")));
        let mut rx = chan.receiver().unwrap_or_else(|e| fail(format!("{e}")));
        let got = rx.recv();
        use std::io::Write;
        let _ = writeln!(w, "{}", if got.is_ok() { "ready" } else { "failed" });
        let _ = w.flush();
        std::thread::sleep(std::time::Duration::from_secs(600));
        drop((rx, chan));
    });
    let wait = move || expect(&mut r, "peer", "ready");
    (pid, wait)
}

fn sender_and_peer(chan: &Channel<Rec>, peer_b: Option<Backing>) -> (shmchan::Sender<Rec>, i32) {
    let (sock_here, sock_there) = UnixStream::pair().expect("socketpair");
    let (pid, mut ready) = if peer_b.is_none() {
        let p = peer(None, Some(sock_there));
        chan.share(&sock_here)
            .unwrap_or_else(|e| fail(format!("share: {e}")));
        p
    } else {
        peer(peer_b, None)
    };
    let mut tx = chan.sender().unwrap_or_else(|e| fail(format!("{e}")));
    tx.send(Rec::new(1, 0))
        .unwrap_or_else(|e| fail(format!("send: {e}")));
    ready();
    (tx, pid)
}

fn sysv(cleanup: Cleanup) -> (Backing, Channel<Rec>) {
    let b = Backing::sysv_key(shmchan_tests::unique_key());
    let chan = Channel::<Rec>::builder()
        .backing(b.clone())
        .doorbell(Doorbell::Futex)
        .cleanup(cleanup)
        .create()
        .unwrap_or_else(|e| fail(format!("create: {e}")));
    (b, chan)
}

/// In a child: creates a SysV channel at `b` (`cleanup`), takes a sender, sends one record,
/// reports `ready` and waits to be killed. Returns its pid.
fn doomed_creator(b: &Backing, cleanup: Cleanup) -> libc::pid_t {
    let (mut r, w) = pipe();
    let b = b.clone();
    let pid = fork(move || {
        let mut w = w;
        let chan = Channel::<Rec>::builder()
            .backing(b)
            .doorbell(Doorbell::Futex)
            .cleanup(cleanup)
            .create()
            .unwrap_or_else(|e| fail(format!("create: {e}")));
        let tx = chan.sender().unwrap_or_else(|e| fail(format!("{e}")));
        use std::io::Write;
        let _ = writeln!(w, "{}", chan.shm_id().unwrap_or(-1));
        let _ = w.flush();
        std::thread::sleep(std::time::Duration::from_secs(600));
        drop((tx, chan));
    });
    let mut line = String::new();
    r.read_line(&mut line)
        .unwrap_or_else(|e| fail(format!("{e}")));
    if line.trim().parse::<i32>().is_err() {
        fail(format!("the creator said {line:?}"));
    }
    pid
}

pub(super) fn leaks(route: &str, dir: &str) {
    // SAFETY: unshare takes no pointers; this process is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWIPC) } != 0 {
        let e = std::io::Error::last_os_error();
        println!("skip: unshare(CLONE_NEWIPC) is not permitted here ({e})");
        std::process::exit(77);
    }
    for t in ["shm", "sem", "msg"] {
        if !sysvipc(t).is_empty() {
            fail(format!("a new IPC namespace holds {t} objects"));
        }
    }
    let mut file_ino = None;
    match route {
        "file-rm" | "memfd-close" => {
            let path = std::path::Path::new(dir).join(shmchan_tests::unique_name("leak"));
            let memfd = route == "memfd-close";
            let b = if memfd {
                Backing::memfd("shmchan-leak")
            } else {
                Backing::file(&path)
            };
            let chan = Channel::<Rec>::builder()
                .backing(b.clone())
                .doorbell(Doorbell::Futex)
                .create()
                .unwrap_or_else(|e| fail(format!("create: {e}")));
            let (tx, pid) = sender_and_peer(&chan, (!memfd).then_some(b));
            let file = if memfd {
                memfd_path().unwrap_or_else(|| fail("no memfd in /proc/self/fd".into()))
            } else {
                path.clone()
            };
            let ino = std::fs::metadata(&file)
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .unwrap_or_else(|e| fail(format!("{e}")));
            // Both processes hold the channel and a token each: locks on the file, no set.
            let held = locks_on(ino);
            if held.len() < 4 {
                fail(format!("expected attach and token locks, found {held:?}"));
            }
            if life_sets() != 0 {
                fail("a file-backed channel made a SysV set".into());
            }
            if !memfd {
                std::fs::remove_file(&path).unwrap_or_else(|e| fail(format!("rm: {e}")));
            }
            kill9(pid);
            drop((tx, chan));
            file_ino = Some(ino);
        }
        "sysv-drop" => {
            let (b, chan) = sysv(Cleanup::WhenDrained);
            let (mut r, w) = pipe();
            let pb = b.clone();
            let pid = fork(move || {
                let mut w = w;
                let chan = Channel::<Rec>::builder().backing(pb).open().expect("open");
                let mut rx = chan.receiver().expect("receiver");
                let ok = rx.recv().is_ok();
                // Drains, then waits for the sender's departure and leaves.
                let end = rx.recv();
                use std::io::Write;
                let _ = writeln!(
                    w,
                    "{}",
                    if ok && end.is_err() {
                        "ready"
                    } else {
                        "failed"
                    }
                );
                drop((rx, chan));
            });
            let mut tx = chan.sender().expect("sender");
            tx.send(Rec::new(1, 0)).expect("send");
            if life_sets() != 1 {
                fail(format!("expected one life set, found {:?}", sysvipc("sem")));
            }
            drop((tx, chan));
            expect(&mut r, "peer", "ready");
            reap(pid);
            let _ = b;
        }
        "sysv-ipcrm" => {
            let (b, chan) = sysv(Cleanup::WhenDrained);
            let (tx, pid) = sender_and_peer(&chan, Some(b));
            shmchan::os::ShmId::from_raw(chan.shm_id().expect("shmid"))
                .remove()
                .unwrap_or_else(|e| fail(format!("ipcrm -m: {e}")));
            kill9(pid);
            drop((tx, chan));
            if life_sets() != 1 || !sysvipc("shm").is_empty() {
                fail(format!(
                    "expected the segment gone and its life set left, found {:?} {:?}",
                    sysvipc("shm"),
                    sysvipc("sem")
                ));
            }
            prune(1);
        }
        "sysv-kill9" => {
            let b = Backing::sysv_key(shmchan_tests::unique_key());
            let pid = doomed_creator(&b, Cleanup::WhenDrained);
            kill9(pid);
            if life_sets() != 1 {
                fail(format!("expected one life set, found {:?}", sysvipc("sem")));
            }
            shmchan::remove(&b).unwrap_or_else(|e| fail(format!("remove: {e}")));
            prune(0);
        }
        "sysv-lastdetach" => {
            let b = Backing::sysv_key(shmchan_tests::unique_key());
            let pid = doomed_creator(&b, Cleanup::LastDetach);
            kill9(pid);
            if !sysvipc("shm").is_empty() || life_sets() != 1 {
                fail(format!(
                    "expected the segment freed and its set left, found {:?} {:?}",
                    sysvipc("shm"),
                    sysvipc("sem")
                ));
            }
            prune(1);
        }
        "sysv-reclaim" => {
            let b = Backing::sysv_key(shmchan_tests::unique_key());
            // The killed creator's record stays unread: receive it so the channel is stale
            // and empty, as reclaiming requires.
            let pid = doomed_creator(&b, Cleanup::WhenDrained);
            kill9(pid);
            {
                let chan = Channel::<Rec>::builder()
                    .backing(b.clone())
                    .cleanup(Cleanup::Keep)
                    .open()
                    .unwrap_or_else(|e| fail(format!("open: {e}")));
                let mut rx = chan.receiver().expect("receiver");
                let _ = rx.try_recv();
            }
            let chan = Channel::<Rec>::builder()
                .backing(b.clone())
                .doorbell(Doorbell::Futex)
                .create()
                .unwrap_or_else(|e| fail(format!("reclaim: {e}")));
            if life_sets() != 1 {
                fail(format!("expected one life set, found {:?}", sysvipc("sem")));
            }
            drop(chan);
        }
        r => fail(format!("unknown ROUTE {r:?}")),
    }
    for t in ["shm", "sem", "msg"] {
        let left = sysvipc(t);
        if !left.is_empty() {
            fail(format!("left behind in /proc/sysvipc/{t}: {left:?}"));
        }
    }
    if let Some(ino) = file_ino {
        let left = locks_on(ino);
        if !left.is_empty() {
            fail(format!("locks left on the channel's file: {left:?}"));
        }
    }
    println!("clean");
}

/// `/proc/self/fd/N` of this process's channel memfd.
fn memfd_path() -> Option<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .find_map(|e| {
            let link = std::fs::read_link(e.path()).ok()?;
            link.to_str()?
                .starts_with("/memfd:shmchan-leak")
                .then(|| e.path())
        })
}

/// Runs `prune_orphans` and checks it removed `n` sets.
fn prune(n: usize) {
    let found = shmchan::prune_orphans(true).unwrap_or_else(|e| fail(format!("prune: {e}")));
    if found.len() != n {
        fail(format!(
            "prune_orphans removed {found:?}, expected {n} set(s)"
        ));
    }
}
