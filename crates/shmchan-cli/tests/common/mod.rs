//! What the admin and ops tests share: running the built binary, unique keys, and guards that
//! remove what a test created even when it fails.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_shmchan");

/// Runs `shmchan ARGS`.
pub fn shmchan(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run shmchan")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A SysV key nobody else is likely to use: pid, time and a counter mixed.
pub fn unique_key() -> i32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9);
    ((std::process::id().wrapping_mul(2_654_435_761) ^ ns ^ n) & 0x7fff_fff0) as i32 | 1
}

/// Removes the segment at a key when dropped, whatever the test did.
pub struct KeyGuard(pub i32);
impl Drop for KeyGuard {
    fn drop(&mut self) {
        // Through shmchan first, which removes the channel's life-token set with it; then
        // whatever is still there, and the life set it leaves.
        let _ = shmchan::remove(&shmchan::Backing::sysv_key(self.0));
        if let Ok(id) = shmchan_os::ShmId::open(shmchan_os::Key::new(self.0)) {
            let _ = id.remove();
            // A segment shmchan would not remove (a crafted one) leaves its life set.
            let _ = shmchan::prune_orphans(true);
        }
    }
}

/// Removes the segment with a shmid when dropped (a segment whose key is already gone).
pub struct IdGuard(pub i32);
impl Drop for IdGuard {
    fn drop(&mut self) {
        // As `KeyGuard`.
        let _ = shmchan::remove(&shmchan::Backing::sysv_id(self.0));
        if shmchan_os::ShmId::from_raw(self.0).remove().is_ok() {
            let _ = shmchan::prune_orphans(true);
        }
    }
}

/// A temp dir removed when dropped.
pub struct TempDir(pub std::path::PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "shmchan-cli-{tag}-{}-{}",
            std::process::id(),
            unique_key()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The record type name of the channels the child opens.
pub const TYPE_NAME: &str = "ops.test";

/// A SysV channel of `u64` named [`TYPE_NAME`], as the tests create them.
pub fn builder(key: i32) -> shmchan::Builder<u64> {
    shmchan::Channel::<u64>::builder()
        .backing(shmchan::Backing::sysv_key(key))
        .type_name(TYPE_NAME)
}

/// The body of each test binary's `child_role` test: when re-executed with
/// `SHMCHAN_CLI_CHILD=KEY:N`, open a sender on the key, send N records and exit without
/// deregistering, as a process killed with SIGKILL would. A no-op in a normal test run.
pub fn child_role() {
    let Ok(spec) = std::env::var("SHMCHAN_CLI_CHILD") else {
        return;
    };
    let (key, n) = spec.split_once(':').unwrap();
    let mut tx = builder(key.parse().unwrap()).open_sender().unwrap();
    for i in 0..n.parse::<u64>().unwrap() {
        tx.try_send(i).unwrap();
    }
    std::mem::forget(tx);
    std::process::exit(0);
}

/// Leaves a dead sender (that sent `records` records) on the channel at `key`; returns its pid.
pub fn leave_dead_sender(key: i32, records: u64) -> u32 {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_role", "--nocapture"])
        .env("SHMCHAN_CLI_CHILD", format!("{key}:{records}"))
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    pid
}

/// Parses a JSON document and checks its schema and version.
pub fn doc(o: &Output, schema: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)));
    assert_eq!(v["schema"], schema, "{v}");
    assert_eq!(v["version"], 1, "{v}");
    v
}

/// The entry of `channels` whose `name` is `name`.
pub fn entry<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

/// The SysV key as the CLI names it.
pub fn hex(key: i32) -> String {
    format!("0x{:08x}", key as u32)
}
