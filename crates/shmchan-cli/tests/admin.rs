//! `shmchan ls`, `stat` and `rm` against real channels: a live one, one whose endpoint's
//! process died, a corrupted one, and a SysV segment that is not shmchan's (never touched).
//!
//! The process that leaves a dead endpoint behind is this test binary re-executed with
//! `SHMCHAN_ADMIN_CHILD` set (see `child_role`).

use std::process::Command;

use shmchan::{Backing, Channel, Cleanup};

mod common;
use common::{shmchan, stderr, stdout, unique_key, KeyGuard, TempDir};

/// When re-executed as a child: open a sender on the key and exit without deregistering, as a
/// process killed with SIGKILL would. A no-op in a normal test run.
#[test]
fn child_role() {
    let Ok(key) = std::env::var("SHMCHAN_ADMIN_CHILD") else {
        return;
    };
    let tx = Channel::<u64>::builder()
        .backing(Backing::sysv_key(key.parse().unwrap()))
        .type_name("admin.test")
        .schema_version(4)
        .open_sender()
        .unwrap();
    std::mem::forget(tx);
    std::process::exit(0);
}

fn leave_dead_sender(key: i32) -> u32 {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_role", "--nocapture"])
        .env("SHMCHAN_ADMIN_CHILD", key.to_string())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    pid
}

#[test]
fn ls_stat_and_rm_refusal_with_live_and_dead_endpoints() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let hex = format!("0x{:08x}", key as u32);
    let chan = Channel::<u64>::builder()
        .backing(Backing::sysv_key(key))
        .type_name("admin.test")
        .schema_version(4)
        .capacity(64)
        .create()
        .unwrap();
    let _rx = chan.receiver().unwrap();
    let dead = leave_dead_sender(key);

    let o = shmchan(&["ls"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.contains(&hex))
        .unwrap_or_else(|| panic!("{hex} not in\n{out}"));
    assert!(
        line.contains("SPSC") && line.contains("admin.test v4") && line.contains(" 64 "),
        "{line}"
    );
    assert!(
        line.contains(&format!("receiver {} alive", std::process::id())),
        "{line}"
    );
    assert!(line.contains(&format!("sender {dead} dead")), "{line}");

    let o = shmchan(&["stat", &hex]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("`admin.test` v4 (8 bytes, align 8)") && s.contains("64 records"),
        "{s}"
    );

    // rm refuses while our receiver is alive, names our pid, and leaves the segment.
    let o = shmchan(&["rm", &hex]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&std::process::id().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(shmchan_os::ShmId::open(shmchan_os::Key::new(key)).is_ok());
}

#[test]
fn rm_with_only_dead_endpoints_and_with_force() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let hex = format!("0x{:08x}", key as u32);
    let chan = Channel::<u64>::builder()
        .backing(Backing::sysv_key(key))
        .type_name("admin.test")
        .schema_version(4)
        .cleanup(Cleanup::Keep)
        .create()
        .unwrap();
    leave_dead_sender(key);
    let o = shmchan(&["rm", &hex]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(shmchan_os::ShmId::open(shmchan_os::Key::new(key)).is_err());
    drop(chan);

    let key = unique_key();
    let _g2 = KeyGuard(key);
    let hex = format!("0x{:08x}", key as u32);
    let chan = Channel::<u64>::builder()
        .backing(Backing::sysv_key(key))
        .create()
        .unwrap();
    let _tx = chan.sender().unwrap();
    assert!(!shmchan(&["rm", &hex]).status.success());
    let o = shmchan(&["rm", "--force", &hex]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(shmchan_os::ShmId::open(shmchan_os::Key::new(key)).is_err());
}

#[test]
fn corrupted_file_is_listed_with_reason_and_removable() {
    let dir = TempDir::new("corrupt");
    let good = dir.0.join("good.chan");
    let bad = dir.0.join("bad.chan");
    let other = dir.0.join("notes.txt");
    std::fs::write(&other, "not a channel").unwrap();
    drop(
        Channel::<[u8; 32]>::builder()
            .backing(Backing::file(&good))
            .create()
            .unwrap(),
    );
    drop(
        Channel::<[u8; 32]>::builder()
            .backing(Backing::file(&bad))
            .create()
            .unwrap(),
    );
    // Scribble on the capacity field (offset 20 of the ring header) of one of them: 0, which
    // no ring has (any capacity from 1 up that fits the slots is valid).
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes[20..24].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(&bad, &bytes).unwrap();

    let o = shmchan(&["ls", dir.0.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let bad_line = out.lines().find(|l| l.contains("bad.chan")).expect(&out);
    assert!(
        bad_line.contains("corrupted: ") && bad_line.contains("capacity"),
        "{bad_line}"
    );
    let good_line = out.lines().find(|l| l.contains("good.chan")).expect(&out);
    assert!(
        good_line.contains("SPSC") && good_line.contains("[u8; 32]"),
        "{good_line}"
    );
    assert!(!out.contains("notes.txt"), "{out}");

    // rm refuses a foreign file and removes the corrupted channel.
    let o = shmchan(&["rm", other.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("not a shmchan channel"));
    assert!(other.exists());
    let o = shmchan(&["rm", bad.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!bad.exists());
}

#[test]
fn foreign_sysv_segment_is_never_touched() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let hex = format!("0x{:08x}", key as u32);
    let id =
        shmchan_os::ShmId::create(shmchan_os::Key::new(key), 4096, shmchan_os::Mode::default())
            .unwrap();
    let o = shmchan(&["ls"]);
    assert!(o.status.success());
    assert!(
        !stdout(&o).contains(&hex),
        "a foreign segment is not listed"
    );
    let o = shmchan(&["rm", "--force", &hex]);
    assert!(
        !o.status.success() && stderr(&o).contains("not a shmchan channel"),
        "{}",
        stderr(&o)
    );
    assert!(id.stat().is_ok(), "still there");
    assert!(!shmchan(&["stat", &hex]).status.success());
}
