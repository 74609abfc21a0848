//! `shmchan top --once`, `shmchan prune` and `shmchan doctor` against real channels (and this
//! machine), with their JSON documents parsed.
//!
//! Every command that could touch other channels is given names: `prune` and `top` only ever
//! look at what the test created (other tests, in this binary or another, make their own).
//! A dead endpoint is left by this test binary re-executed as a child (`child_role`).

use shmchan::{Backing, Channel, Cleanup};

mod common;
use common::{
    builder, doc, entry, hex, leave_dead_sender, shmchan, stderr, stdout, unique_key, KeyGuard,
    TempDir,
};

#[test]
fn child_role() {
    common::child_role();
}

#[test]
fn top_once_shows_fill_rates_and_endpoints() {
    let key = unique_key();
    let _g = KeyGuard(key);
    // MPMC: a live sender here and the child's (then dead) one at once.
    let chan = builder(key).capacity(32).mpmc().create().unwrap();
    let mut tx = chan.sender().unwrap();
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    leave_dead_sender(key, 2);
    let dir = TempDir::new("top");
    let file = dir.path("f.chan");
    let fchan = Channel::<[u8; 64]>::builder()
        .backing(Backing::file(&file))
        .capacity(8)
        .create()
        .unwrap();
    let bad = dir.path("g.chan");
    drop(
        Channel::<u64>::builder()
            .backing(Backing::file(&bad))
            .create()
            .unwrap(),
    );
    // Scribble on the capacity field (offset 20 of the ring header): 0, which no ring has.
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes[20..24].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(&bad, &bytes).unwrap();
    let id = format!("id:{}", chan.shm_id().unwrap());

    let o = shmchan(&[
        "top",
        "--once",
        "--json",
        "--interval",
        "0.1",
        &id,
        dir.arg(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "one frame, one line");
    let d = doc(&o, "shmchan-top");
    assert!(d["interval_s"].as_f64().unwrap() >= 0.1, "{d}");
    assert_eq!(d["channels"].as_array().unwrap().len(), 3);
    let g = entry(&d, bad.to_str().unwrap());
    assert_eq!(g["state"], "corrupted");
    assert!(g["reason"].as_str().unwrap().contains("capacity"), "{g}");
    let r = entry(&d, &hex(key));
    assert_eq!(
        (r["len"].as_u64(), r["capacity"].as_u64()),
        (Some(7), Some(32))
    );
    assert_eq!(r["fill"].as_f64(), Some(7.0 / 32.0));
    assert_eq!(
        (&r["endpoints_alive"], &r["endpoints_dead"]),
        (&1.into(), &1.into())
    );
    // Nothing happened between the samples: every rate is exactly zero.
    assert_eq!(r["new"], false);
    for k in [
        "len_change_per_s",
        "records_in_per_s",
        "records_out_per_s",
        "sender_sleeps_per_s",
        "receiver_sleeps_per_s",
        "posts_per_s",
    ] {
        assert_eq!(r[k].as_f64(), Some(0.0), "{k}: {r}");
    }
    let f = entry(&d, file.to_str().unwrap());
    assert_eq!(
        (&f["backing"], &f["len"], &f["capacity"]),
        (&"file".into(), &0.into(), &8.into())
    );

    let o = shmchan(&["top", "--once", "--interval", "0.1", &hex(key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        !out.contains('\x1b'),
        "no screen control with --once:\n{out:?}"
    );
    let line = out.lines().find(|l| l.starts_with(&hex(key))).expect(&out);
    assert!(
        line.contains("7/32 22%") && line.ends_with("1 alive, 1 dead"),
        "{line}"
    );

    let o = shmchan(&["top", "--once", "--interval", "0.1", "id:notanumber"]);
    assert_eq!(o.status.code(), Some(1), "a bad name fails --once");
    assert!(
        shmchan(&["top", "--interval", "0"]).status.code() == Some(2),
        "clap refuses"
    );
    drop((tx, chan, fchan));
}

#[test]
fn prune_removes_only_channels_nobody_uses() {
    let me = std::process::id();
    // A: only a dead sender, 2 unread records, attached read-only only (as an inspector such
    // as `shmchan top` attaches it for a moment): pruned.
    let ka = unique_key();
    let _ga = KeyGuard(ka);
    drop(builder(ka).cleanup(Cleanup::Keep).create().unwrap());
    leave_dead_sender(ka, 2);
    let id = shmchan_os::ShmId::open(shmchan_os::Key::new(ka)).unwrap();
    let _gida = common::IdGuard(id.raw());
    let inspector = id.attach(shmchan_os::Access::ReadOnly).unwrap();
    // B: a live receiver: kept.
    let kb = unique_key();
    let _gb = KeyGuard(kb);
    let b = builder(kb).create().unwrap();
    let _rx = b.receiver().unwrap();
    // C: attached (the Channel handle) but no endpoint: kept.
    let kc = unique_key();
    let _gc = KeyGuard(kc);
    let c = builder(kc).create().unwrap();
    // In a directory: D with no endpoint and nobody mapping it (pruned), E mapped by this
    // process without an endpoint (kept), and a file that is not a channel (never listed).
    let dir = TempDir::new("prune");
    let (fd, fe) = (dir.path("d.chan"), dir.path("e.chan"));
    let mut tx = Channel::<u64>::builder()
        .backing(Backing::file(&fd))
        .create()
        .unwrap()
        .sender()
        .unwrap();
    tx.send(9).unwrap();
    drop(tx);
    let e = Channel::<u64>::builder()
        .backing(Backing::file(&fe))
        .create()
        .unwrap();
    std::fs::write(dir.path("x.chan"), vec![0u8; 4096]).unwrap();
    let id_a = format!("id:{}", id.raw());
    let names = [id_a.as_str(), &hex(kb), &hex(kc), dir.arg()].map(str::to_owned);

    let mut args = vec!["prune", "--json"];
    args.extend(names.iter().map(String::as_str));
    let o = shmchan(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = doc(&o, "shmchan-prune");
    assert_eq!(d["dry_run"], true);
    let action = |d: &serde_json::Value, name: &str| entry(d, name)["action"].clone();
    let a_name = hex(ka);
    assert_eq!(action(&d, &a_name), "would_remove");
    assert_eq!(
        entry(&d, &a_name)["held"],
        serde_json::json!({"records": 2, "bytes": 16})
    );
    assert_eq!(action(&d, &hex(kb)), "kept");
    assert!(entry(&d, &hex(kb))["reason"]
        .as_str()
        .unwrap()
        .contains(&me.to_string()));
    assert_eq!(action(&d, &hex(kc)), "kept");
    assert!(entry(&d, &hex(kc))["reason"]
        .as_str()
        .unwrap()
        .contains("nattch"));
    assert_eq!(action(&d, fd.to_str().unwrap()), "would_remove");
    assert_eq!(entry(&d, fd.to_str().unwrap())["held"]["records"], 1);
    assert_eq!(action(&d, fe.to_str().unwrap()), "kept");
    let why = entry(&d, fe.to_str().unwrap())["reason"].clone();
    assert!(
        why.as_str()
            .unwrap()
            .contains(&format!("mapped by pid {me}")),
        "{why}"
    );
    assert_eq!(d["channels"].as_array().unwrap().len(), 5, "{d:#}");
    assert!(shmchan_os::ShmId::open(shmchan_os::Key::new(ka)).is_ok() && fd.exists());

    let mut text = vec!["prune"];
    text.extend(names.iter().map(String::as_str));
    let out = stdout(&shmchan(&text));
    let line = out.lines().find(|l| l.starts_with(&hex(ka))).expect(&out);
    assert!(
        line.contains("2 records, 16 bytes") && line.ends_with("would remove"),
        "{line}"
    );
    assert!(
        out.contains("dry run: 2 channel(s) holding 3 unread record(s)"),
        "{out}"
    );

    args.push("--yes");
    let o = shmchan(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = doc(&o, "shmchan-prune");
    assert_eq!(d["dry_run"], false);
    assert_eq!(action(&d, &a_name), "removed");
    assert_eq!(action(&d, fd.to_str().unwrap()), "removed");
    assert!(
        shmchan_os::ShmId::open(shmchan_os::Key::new(ka)).is_err(),
        "A is gone"
    );
    assert!(!fd.exists(), "D is gone");
    for k in [kb, kc] {
        assert!(
            shmchan_os::ShmId::open(shmchan_os::Key::new(k)).is_ok(),
            "{}",
            hex(k)
        );
    }
    assert!(fe.exists() && dir.path("x.chan").exists());
    drop((b, c, e, inspector));
}

#[test]
fn doctor_reports_every_check_and_exits_by_its_findings() {
    let o = shmchan(&["doctor", "--json"]);
    let d = doc(&o, "shmchan-doctor");
    let findings = d["findings"].as_array().unwrap();
    let checks: Vec<&str> = findings
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for c in [
        "dev_shm",
        "kernel.shmmax",
        "kernel.shmall",
        "kernel.shmmni",
        "kernel.sem",
        "kernel.msgmni",
        "kernel.msgmax",
        "kernel.msgmnb",
        "fs.mqueue",
        "rlimit_msgqueue",
        "mqueue_mount",
        "ipc_namespace",
        "futex_waitv",
        "membarrier",
        "channels",
    ] {
        assert!(checks.contains(&c), "{c} missing: {checks:?}");
    }
    let mut fails = 0;
    for f in findings {
        let status = f["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{f}");
        assert!(!f["summary"].as_str().unwrap().is_empty());
        assert_eq!(
            f["fix"].is_null(),
            status == "ok",
            "a fix exactly when not ok: {f}"
        );
        fails += usize::from(status == "fail");
    }
    assert_eq!(d["counts"]["fail"], fails);
    assert_eq!(d["ok"], fails == 0);
    assert_eq!(
        o.status.success(),
        fails == 0,
        "exit status 0 exactly when nothing fails"
    );

    // The figures are this machine's.
    let find = |c: &str| findings.iter().find(|f| f["check"] == c).unwrap();
    assert_eq!(
        find("kernel.shmmni")["limit"],
        shmchan_os::limits::shmmni().unwrap()
    );
    let waitv = shmchan_os::futex::futex_waitv_supported();
    assert_eq!(
        find("futex_waitv")["status"] == "ok",
        matches!(waitv, Ok(true))
    );
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("mqueue"));
    assert_eq!(find("mqueue_mount")["status"] == "ok", mounted);
    let ns = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let summary = find("ipc_namespace")["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(summary.starts_with(ns.to_str().unwrap()), "{summary}");

    // The text: one tagged line per finding, then the counts of those lines (a second run:
    // other tests' channels may have changed the `channels` finding meanwhile).
    let o = shmchan(&["doctor"]);
    let out = stdout(&o);
    let tagged = |tag: &str| out.lines().filter(|l| l.starts_with(tag)).count();
    let (ok, warn, fail) = (tagged("[ ok ] "), tagged("[warn] "), tagged("[FAIL] "));
    assert_eq!(ok + warn + fail, findings.len(), "{out}");
    assert!(
        out.ends_with(&format!("{ok} ok, {warn} warn, {fail} fail\n")),
        "{out}"
    );
    assert_eq!(o.status.success(), fail == 0);
}

/// A reader that leaves early (`shmchan bench --list | head -1`) ends the command quietly,
/// as it ends `ls`: no panic about a broken pipe. The pipe is shrunk to one page, so the
/// listing (about 15 KB) cannot fit in it: the command is still writing when the reader goes.
#[test]
fn a_closed_stdout_ends_listing_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};

    use nix::fcntl::{fcntl, FcntlArg};

    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    fcntl(&w, FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_shmchan"))
        .args(["bench", "--list"])
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::fs::File::from(r);
    let mut first = [0u8; 100];
    reader.read_exact(&mut first).unwrap();
    drop(reader); // the reader goes
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.status.success(), "killed by SIGPIPE, as `ls` would be");
}
