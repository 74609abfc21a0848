//! `stat`, `rm` and `ls` on paths that are not channel files: a FIFO (whose plain `open`
//! blocks until a writer comes), `/dev/zero` (endless to read), a directory; and a channel file
//! that the user running the command may not read. Each command runs the real binary under a
//! deadline, so a regression that blocks fails instead of hanging the suite.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shmchan::{Backing, Channel};

mod common;
use common::{stderr, TempDir, BIN};

/// Runs `shmchan ARGS` (as `uid`, when given), killing it if it has not exited within a
/// deadline that only a blocked command reaches.
fn run(args: &[&str], uid: Option<u32>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(id) = uid {
        cmd.uid(id).gid(id);
    }
    let mut child = cmd.spawn().expect("run shmchan");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "`shmchan {}` still running after 30 s (blocked); stderr: {}",
                args.join(" "),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn mkfifo(path: &std::path::Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

#[test]
fn fifo_and_dev_zero_are_refused_at_once_never_read() {
    let dir = TempDir::new("odd");
    let fifo = dir.path("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    for (path, what) in [
        (fifo, "is a FIFO, not a channel file"),
        ("/dev/zero", "is a character device, not a channel file"),
        (dir.arg(), "is a directory, not a channel file"),
    ] {
        for cmd in ["stat", "rm"] {
            let o = run(&[cmd, path], None);
            assert!(!o.status.success(), "{cmd} {path}");
            assert!(stderr(&o).contains(what), "{cmd} {path}: {}", stderr(&o));
        }
        let o = run(&["rm", "--json", path], None);
        assert!(!o.status.success());
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (&v["error"]["kind"], &v["removed"]),
            (&"not_a_channel".into(), &false.into()),
            "{v}"
        );
    }
    for path in [fifo, "/dev/zero"] {
        let o = run(&["ls", path], None);
        assert!(!o.status.success(), "ls {path}");
        assert!(stderr(&o).contains("not a channel file"), "{}", stderr(&o));
    }
    // A directory is listed by its channel files; the FIFO in it is skipped, not opened.
    let o = run(&["ls", dir.arg()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::path::Path::new(fifo).exists(),
        "rm left the FIFO alone"
    );
}

/// Runs `f` on a thread and waits for it at most a deadline that only a blocked call reaches
/// (the blocked thread is left behind; the test fails).
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} still blocked after 30 s"))
}

#[test]
fn the_library_never_blocks_on_a_fifo_either() {
    let dir = TempDir::new("odd-lib");
    let fifo = dir.path("fifo");
    mkfifo(&fifo);
    let f = fifo.clone();
    let open = within_deadline("Builder::open on a FIFO", move || {
        Channel::<u64>::builder()
            .backing(Backing::file(&f))
            .open_timeout(Duration::from_secs(30))
            .open()
            .map(|_| ())
    });
    match open {
        Err(e @ shmchan::OpenError::NotAFile { .. }) => {
            assert!(e.to_string().contains("is a FIFO"), "{e}")
        }
        other => panic!("expected NotAFile, got {other:?}"),
    }
    let f = fifo.clone();
    let removed = within_deadline("remove on a FIFO", move || {
        shmchan::remove(&Backing::file(&f))
    });
    assert!(
        matches!(removed, Err(shmchan::OpenError::NotAFile { .. })),
        "{removed:?}"
    );
    assert!(fifo.exists());
}

#[test]
fn an_unreadable_channel_file_is_a_permission_error() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: dropping to another user needs root");
        return;
    }
    let dir = TempDir::new("perm");
    // The directory may be traversed by anyone; the channel file (mode 0600) read only by us.
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let file = dir.path("c.chan");
    let _chan = Channel::<u64>::builder()
        .backing(Backing::file(&file))
        .create()
        .unwrap();
    let path = file.to_str().unwrap();
    let nobody = 65534;
    for args in [vec!["stat", path], vec!["rm", path]] {
        let o = run(&args, Some(nobody));
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("permission denied"), "{args:?}: {err}");
        assert!(!err.contains("invalid channel settings"), "{args:?}: {err}");
    }
    let o = run(&["ls", "--json", path], Some(nobody));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = &v["channels"][0];
    assert_eq!(row["state"], "error", "{v}");
    assert!(
        row["error"]
            .as_str()
            .unwrap()
            .contains("permission denied on file"),
        "{v}"
    );
    assert!(file.exists(), "nobody's rm removed nothing");
}
