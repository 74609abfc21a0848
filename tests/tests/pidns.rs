//! Peers in different PID namespaces (two containers that share an IPC namespace): neither
//! takes the other for dead while it lives, however long they wait idle, and each notices the
//! other's `kill -9` within a bound. For every backing that can be shared across them: a SysV
//! key, a file, a memfd handed over a Unix socket, anonymous memory inherited across a fork
//! into the new namespace. And an endpoint made on a thread that then exited: its process
//! still holds it.
//!
//! The new namespaces need root (`unshare(CLONE_NEWPID)`, a mount namespace for `/proc`):
//! without it, or where `unshare` is not permitted, each test prints why and passes.

use std::time::Duration;

use shmchan::{Backing, Channel, Doorbell};
use shmchan_tests::{BackingKind, ChildGuard, Place, Rec};

const PIDNS: &str = env!("CARGO_BIN_EXE_shmchan-test-pidns");
const LONG: Duration = Duration::from_secs(120);
/// The bound on noticing a `kill -9`: the waiter's housekeeping slice is 50 ms; the rest is
/// slack for a loaded machine (the figures printed are the measurement).
const NOTICE_BOUND_MS: u64 = 1_000;

fn root() -> bool {
    if shmchan::os::identity::geteuid() != 0 {
        println!("skipped: new PID namespaces need root");
        return false;
    }
    true
}

/// Runs one `run` of the program; `None` when it skipped (printed).
fn run(spec_a: &str, spec_b: &str, door: Doorbell, victim: &str, ns: &str) -> Option<u64> {
    let child = ChildGuard::spawn(PIDNS, &["run", spec_a, spec_b, door.name(), victim, ns]);
    let (status, out) = child.wait(LONG);
    if status.code() == Some(77) {
        println!("skipped: {}", out.trim());
        return None;
    }
    assert!(
        status.success(),
        "{spec_a} {door} {victim} {ns}: {status}: {out}"
    );
    let ms = out
        .trim()
        .strip_prefix("noticed ")
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    println!("{spec_a} {door} ({ns}): kill -9 of the {victim} peer noticed after {ms} ms");
    assert!(
        ms <= NOTICE_BOUND_MS,
        "the death of the {victim} peer was noticed after {ms} ms"
    );
    Some(ms)
}

/// Both victims, on two channels of `kind` (or of the spec word for memfd/anonymous).
fn both_ways(kind: BackingKind, door: Doorbell, ns: &str) {
    if !root() {
        return;
    }
    for victim in ["ns", "host"] {
        let (a, b) = (Place::new(kind), Place::new(kind));
        if run(&a.spec, &b.spec, door, victim, ns).is_none() {
            return;
        }
    }
}

#[test]
fn sysv_key_across_pid_namespaces() {
    both_ways(BackingKind::SysvKey, Doorbell::Futex, "new");
}

#[test]
fn sysv_key_sysv_sem_across_pid_namespaces() {
    both_ways(BackingKind::SysvKey, Doorbell::SysvSem, "new");
}

#[test]
fn file_across_pid_namespaces() {
    both_ways(BackingKind::File, Doorbell::Futex, "new");
}

/// The new namespace keeps the host's `/proc` (`unshare --pid --fork` without
/// `--mount-proc`): its pids must not be looked up there.
#[test]
fn file_across_pid_namespaces_without_own_proc() {
    both_ways(BackingKind::File, Doorbell::SysvMsgQueue, "new-noproc");
}

#[test]
fn memfd_across_pid_namespaces() {
    both_ways(BackingKind::Memfd, Doorbell::Futex, "new");
}

#[test]
fn memfd_eventfd_across_pid_namespaces() {
    both_ways(BackingKind::Memfd, Doorbell::EventFd, "new");
}

/// Anonymous memory has no life token (no descriptor, no name): a child that moved to another
/// PID namespace is judged by nobody's `/proc`, so it is never taken for dead (idle waits and
/// records both ways pass) and its death is not noticed either (documented).
#[test]
fn anonymous_across_pid_namespaces() {
    if !root() {
        return;
    }
    let (a, b) = (
        Place::new(BackingKind::Anonymous),
        Place::new(BackingKind::Anonymous),
    );
    let child = ChildGuard::spawn(
        PIDNS,
        &[
            "run",
            &a.spec,
            &b.spec,
            Doorbell::Futex.name(),
            "none",
            "new",
        ],
    );
    let (status, out) = child.wait(LONG);
    if status.code() == Some(77) {
        println!("skipped: {}", out.trim());
        return;
    }
    assert!(status.success(), "{status}: {out}");
    assert_eq!(out.trim(), "exchanged");
}

/// A sender made on a thread that then exits, used from another: a receiver in another
/// process (in this PID namespace, and in a new one) waits idle longer than the housekeeping
/// slice without taking it for dead, then gets every record and the disconnection.
#[test]
fn an_endpoint_outlives_the_thread_that_made_it() {
    for ns in ["same", "new"] {
        if ns == "new" && !root() {
            return;
        }
        let place = Place::new(BackingKind::File);
        let chan = Channel::<Rec>::builder()
            .backing(place.backing.clone())
            .doorbell(Doorbell::Futex)
            .spsc()
            .create()
            .unwrap();
        let b: Backing = place.backing.clone();
        let mut tx = std::thread::spawn(move || {
            Channel::<Rec>::builder()
                .backing(b)
                .spsc()
                .open_sender()
                .unwrap()
        })
        .join()
        .unwrap();
        let n = 50;
        let mut child = ChildGuard::spawn(
            PIDNS,
            &["receive", &place.spec, "futex", ns, &n.to_string()],
        );
        let line = child.read_line();
        if line.trim().starts_with("skip") {
            println!("skipped: {}", line.trim());
            return;
        }
        assert_eq!(line.trim(), "ready");
        // Longer than the receiver's idle wait: it must see us alive throughout.
        std::thread::sleep(Duration::from_millis(3_500));
        // And a thread that exits while we wait changes nothing either.
        std::thread::spawn(|| ()).join().unwrap();
        for seq in 0..n {
            tx.send_timeout(Rec::new(1, seq), Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("{ns}: send {seq}: {e}"));
        }
        drop(tx);
        assert_eq!(child.wait_ok(LONG).trim(), format!("received {n}"), "{ns}");
        drop(chan);
    }
}

/// Nothing a channel's liveness uses outlives the channel, whichever way it goes: a file
/// deleted with `rm` (in the test directory and in `/dev/shm`), a memfd closed by everyone,
/// a SysV channel dropped, removed with `ipcrm -m`, stale after `kill -9` (removed as `shmchan
/// prune` does), freed by the kernel after `kill -9` (`Cleanup::LastDetach`), or reclaimed by
/// a new creator. Each route runs in an IPC namespace of its own (root), so the check that
/// `/proc/sysvipc` is empty afterwards holds whatever runs in parallel.
#[test]
fn no_kernel_object_outlives_its_channel() {
    if !root() {
        return;
    }
    /// The test's directory, removed with whatever a failed route left in it.
    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = Dir(shmchan_tests::TempPath::new("leaks").0.clone());
    std::fs::create_dir_all(&dir.0).unwrap();
    let shm = std::path::Path::new("/dev/shm");
    let mut routes = vec![
        ("file-rm", dir.0.clone()),
        ("memfd-close", dir.0.clone()),
        ("sysv-drop", dir.0.clone()),
        ("sysv-ipcrm", dir.0.clone()),
        ("sysv-kill9", dir.0.clone()),
        ("sysv-lastdetach", dir.0.clone()),
        ("sysv-reclaim", dir.0.clone()),
    ];
    if shm.is_dir() {
        routes.push(("file-rm", shm.to_path_buf()));
    }
    for (route, d) in routes {
        let child = ChildGuard::spawn(PIDNS, &["leaks", route, d.to_str().unwrap()]);
        let (status, out) = child.wait(LONG);
        if status.code() == Some(77) {
            println!("skipped: {}", out.trim());
            return;
        }
        assert!(
            status.success(),
            "{route} in {}: {status}: {out}",
            d.display()
        );
        assert_eq!(out.trim(), "clean", "{route}");
    }
}
