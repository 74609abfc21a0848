//! File-backed channels against the filesystem and a peer that truncates the file: a full
//! filesystem is `ENOSPC` at creation (never a `SIGBUS` later), a file truncated under a
//! waiting endpoint is reported as `Corrupted` with its cause (never a `SIGBUS`), and a file
//! truncated and grown again under a live sender and receiver is reported, with no record
//! that nobody sent and no hang.
//!
//! The peers are this test binary re-executed with their role in [`ROLE_ENV`] (see
//! `child_role`); deadlines only turn hangs into failures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shmchan::{Backing, Channel, OpenError, RecvTimeoutError, SendTimeoutError};
use shmchan_tests::{parse_backing, unique_name, ChildGuard, Rec, TempPath};

const ROLE_ENV: &str = "SHMCHAN_FILE_HOSTILE_ROLE";
const SLICE: Duration = Duration::from_millis(100);

fn fail(msg: String) -> ! {
    eprintln!("file_hostile child: {msg}");
    std::process::exit(2);
}

/// When re-executed with [`ROLE_ENV`] = `ROLE|BACKING|MILLIS`: `recv` receives for MILLIS
/// (checking that records come in order and whole), `send` sends; each stops at the first
/// `Corrupted` and prints what `check` says. A no-op in a normal test run.
#[test]
fn child_role() {
    let Ok(spec) = std::env::var(ROLE_ENV) else {
        return;
    };
    let mut parts = spec.split('|');
    let (role, backing, ms) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let end = Instant::now() + Duration::from_millis(ms.parse().unwrap());
    let builder = Channel::<Rec>::builder().backing(parse_backing(backing));
    if role == "send" {
        let mut tx = builder
            .open_sender()
            .unwrap_or_else(|e| fail(format!("open_sender: {e}")));
        println!("ready");
        let mut seq = 0u64;
        while Instant::now() < end {
            match tx.send_timeout(Rec::new(1, seq), SLICE) {
                Ok(()) => seq += 1,
                Err(SendTimeoutError::Timeout(_)) => {}
                Err(SendTimeoutError::Corrupted(_)) => {
                    let why = tx.check().err().map(|e| e.to_string());
                    println!("corrupted after {seq}: {why:?}");
                    break;
                }
                Err(e) => fail(format!("send {seq}: {e}")),
            }
            if seq % 8 == 0 {
                // Slower than the receiver: it waits (and checks) now and then.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(tx);
        println!("sent {seq}");
    } else {
        let mut rx = builder
            .open_receiver()
            .unwrap_or_else(|e| fail(format!("open_receiver: {e}")));
        println!("ready");
        let mut next = 0u64;
        while Instant::now() < end {
            // One wait for the rest of the time, not a call per slice: an endpoint checks
            // the file once per time slice while it waits, but between two calls (the next
            // call's first looks) it touches the ring unchecked, like any sending or receiving
            // process (see `Backing::file`), and a truncation that landed there would be a
            // `SIGBUS` this test does not mean to provoke (it did, under load, when the
            // truncation fell on a call boundary).
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(r) if r.is_valid() && r.producer == 1 && r.seq == next => next += 1,
                Ok(r) => fail(format!(
                    "a record nobody sent: {r:?} where seq {next} was due"
                )),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Corrupted) => {
                    let why = rx.check().err().map(|e| e.to_string());
                    println!("corrupted after {next}: {why:?}");
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => fail(format!("recv after {next}: {e}")),
            }
        }
        drop(rx);
        println!("received {next}");
    }
    std::process::exit(0);
}

fn spawn(role: &str, backing: &str, ms: u64) -> ChildGuard {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, format!("{role}|{backing}|{ms}"));
    let mut child = ChildGuard::spawn_cmd(cmd, role);
    // The test harness prints its own words first ("running 1 test", "test child_role ... ").
    let ready = (0..4).any(|_| child.read_line().trim().ends_with("ready"));
    assert!(ready, "{role} did not start");
    child
}

/// Waits for a child; asserts it exited by itself with status 0 (no signal: no `SIGBUS`).
fn exited_cleanly(child: ChildGuard, what: &str) -> String {
    let (status, out) = child.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{what}: {status}; stdout: {out}");
    out
}

fn set_len(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("truncate {}: {e}", path.display()));
}

#[test]
fn a_file_truncated_under_a_waiting_receiver_is_reported_not_a_sigbus() {
    let path = TempPath::new("trunc");
    let spec = format!("file:{}", path.path().display());
    let chan = Channel::<Rec>::builder()
        .backing(Backing::file(path.path()))
        .capacity(64)
        .create()
        .expect("create");
    let receiver = spawn("recv", &spec, 20_000);
    // It waits on the empty ring, asleep, waking once per time slice (50 ms) to check the
    // file and look: the truncation falls halfway between two such wakes, not on one (a wake
    // checks the file, then looks, and a truncation between the two is the race the
    // library's docs name).
    std::thread::sleep(Duration::from_millis(225));
    set_len(path.path(), 0);
    let out = exited_cleanly(receiver, "receiver");
    assert!(out.contains("corrupted after 0"), "{out}");
    assert!(out.contains("shrank to 0 bytes"), "{out}");
    // This process's handle still maps the lost pages: dropping it must not touch them.
    drop(chan);
    assert_eq!(std::fs::metadata(path.path()).unwrap().len(), 0);
}

#[test]
fn truncated_and_regrown_under_live_peers_is_reported_and_invents_nothing() {
    let path = TempPath::new("regrow");
    let spec = format!("file:{}", path.path().display());
    let chan = Channel::<Rec>::builder()
        .backing(Backing::file(path.path()))
        .capacity(64)
        .create()
        .expect("create");
    let len = std::fs::metadata(path.path()).unwrap().len();
    let receiver = spawn("recv", &spec, 5_000);
    let sender = spawn("send", &spec, 5_000);
    std::thread::sleep(Duration::from_millis(300)); // records flow
                                                    // Between two of their accesses (stopped, so that neither touches the file while it is
                                                    // short: that is a SIGBUS no check can prevent).
    let peers = [receiver.pid(), sender.pid()].map(|p| Pid::from_raw(p as i32));
    for p in peers {
        kill(p, Signal::SIGSTOP).expect("SIGSTOP");
    }
    set_len(path.path(), 0);
    set_len(path.path(), len);
    for p in peers {
        kill(p, Signal::SIGCONT).expect("SIGCONT");
    }
    let rout = exited_cleanly(receiver, "receiver");
    let sout = exited_cleanly(sender, "sender");
    println!("{}\n{}", rout.trim(), sout.trim());
    // Both sides wait now and then, and the first wait after the regrowth finds the header
    // zeroed: each reports the corruption, and the receiver never took a zeroed slot for a
    // record (it exits with status 2 on one).
    assert!(rout.contains("corrupted after"), "receiver: {rout}");
    assert!(sout.contains("corrupted after"), "sender: {sout}");
    assert!(rout.contains("no longer matches"), "{rout}");
    // Opening it again is refused: it is no channel any more.
    let again = Channel::<Rec>::builder()
        .backing(Backing::file(path.path()))
        .open_timeout(Duration::from_millis(100))
        .open();
    assert!(again.is_err(), "reopened a zeroed file");
    drop(chan);
}

/// A tmpfs mounted on a fresh directory, unmounted and removed when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    /// `None` (after saying why) where this process may not mount.
    fn mount(size: &str) -> Option<SmallFs> {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        let dir = std::env::temp_dir().join(unique_name("tmpfs"));
        std::fs::create_dir(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            println!("skipped: mount -t tmpfs failed here");
            return None;
        }
        Some(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_filesystem_is_enospc_at_creation_naming_the_path() {
    let Some(fs) = SmallFs::mount("64k") else {
        return;
    };
    let path = fs.0.join("big.chan");
    // 4096 records of 64 bytes: far more than 64 KiB.
    let r = Channel::<[u64; 8]>::builder()
        .backing(Backing::file(&path))
        .capacity(4096)
        .create();
    let err = match r {
        Err(e) => e,
        Ok(_) => panic!("created a 256 KiB channel on a 64 KiB filesystem"),
    };
    let text = err.to_string();
    assert!(
        matches!(err, OpenError::Os(ref e) if e.errno() == shmchan_os::Errno::ENOSPC),
        "{text}"
    );
    assert!(text.contains(path.to_str().unwrap()), "{text}");
    assert!(!path.exists(), "the half-created file is removed");
    // A channel that fits is created, and its every page is there to write.
    let small = Channel::<u64>::builder()
        .backing(Backing::file(&path))
        .capacity(16)
        .create()
        .expect("a small channel fits");
    let (mut tx, mut rx) = (small.sender().unwrap(), small.receiver().unwrap());
    for i in 0..64 {
        tx.send(i).unwrap();
        assert_eq!(rx.recv(), Ok(i));
    }
    drop((tx, rx, small));
    let _ = std::fs::remove_file(&path);
}
