//! `ls`, `stat` and `rm` with `--json`, ipcs's columns, names (keys, shmids, files,
//! directories) and the errors that explain them, `dest` segments, `--help` and `--version`,
//! all against real channels created here and removed by guards.
//!
//! A dead endpoint is left by this test binary re-executed as a child (`child_role`).

use std::os::unix::fs::MetadataExt;

use shmchan::inspect::{inspect, Inspection};
use shmchan::{Backing, Channel, Cleanup};

mod common;
use common::{
    builder, doc, entry, hex, leave_dead_sender, shmchan, stderr, stdout, unique_key, IdGuard,
    KeyGuard, TempDir, TYPE_NAME,
};

#[test]
fn child_role() {
    common::child_role();
}

fn shmid_of(key: i32) -> i32 {
    shmchan_os::ShmId::open(shmchan_os::Key::new(key))
        .unwrap()
        .raw()
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .unwrap()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn created_ns(b: &Backing) -> u64 {
    let Inspection::Channel(i) = inspect(b).unwrap() else {
        panic!("not a channel")
    };
    i.created_unix_ns
}

#[test]
fn ls_json_names_sysv_files_and_directories_with_ipcs_columns() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let chan = builder(key).capacity(64).create().unwrap();
    let _rx = chan.receiver().unwrap();
    let dead = leave_dead_sender(key, 3);
    let dir = TempDir::new("lsjson");
    let file = dir.path("a.chan");
    let fchan = Channel::<[u8; 24]>::builder()
        .backing(Backing::file(&file))
        .create()
        .unwrap();
    std::fs::write(dir.path("notes.txt"), "not a channel").unwrap();
    let sub = dir.path("sub");
    std::fs::create_dir(&sub).unwrap();

    let notes = dir.path("notes.txt");
    let o = shmchan(&[
        "ls",
        "--json",
        &hex(key),
        dir.arg(),
        notes.to_str().unwrap(),
        "id:x",
    ]);
    assert_eq!(o.status.code(), Some(1), "names that failed: exit 1");
    let d = doc(&o, "shmchan-ls");

    let s = entry(&d, &hex(key));
    let stat = shmchan_os::ShmId::open(shmchan_os::Key::new(key))
        .unwrap()
        .stat()
        .unwrap();
    assert_eq!(s["backing"], "sysv");
    assert_eq!(s["key"], hex(key));
    assert_eq!(s["shmid"], shmid_of(key));
    assert_eq!(s["uid"], stat.uid);
    assert_eq!(s["owner"], user_name(stat.uid));
    assert_eq!(s["perms"], format!("{:04o}", stat.mode.bits() & 0o777));
    assert!(s["nattch"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["status"], serde_json::Value::Null);
    assert_eq!(s["state"], "channel");
    assert_eq!(s["kind"], "SPSC");
    assert_eq!(s["record"]["name"], TYPE_NAME);
    assert_eq!(
        (s["capacity"].as_u64(), s["len"].as_u64()),
        (Some(64), Some(3))
    );
    // The cursors: three records in, none out; nobody waits on the doorbell.
    assert_eq!(
        (&s["produced"], &s["consumed"]),
        (&3.into(), &0.into()),
        "{s}"
    );
    assert_eq!(
        (&s["senders_waiting"], &s["receivers_waiting"]),
        (&0.into(), &0.into())
    );
    assert_eq!(s["created_unix_ns"], created_ns(&Backing::sysv_key(key)));
    let created = s["created"].as_str().unwrap();
    assert!(created.len() == 20 && &created[10..11] == "T" && created.ends_with('Z'));
    let c = &s["census"];
    assert_eq!(
        (&c["live_receivers"], &c["dead_senders"], &c["live_senders"]),
        (&1.into(), &1.into(), &0.into()),
        "{s}"
    );
    assert_eq!(
        s["segment_live_senders"], 1,
        "the segment still counts the dead sender"
    );
    let eps = s["endpoints"].as_array().unwrap();
    let find = |role: &str, pid: u32| {
        eps.iter()
            .find(|e| e["role"] == role && e["pid"] == pid)
            .unwrap_or_else(|| panic!("no {role} {pid} in {s}"))
    };
    let me = std::process::id();
    let (ds, lr) = (find("sender", dead), find("receiver", me));
    assert_eq!((&ds["alive"], &lr["alive"]), (&false.into(), &true.into()));
    // Each endpoint's own counters: the dead sender sent its 3 records before it died.
    assert_eq!(
        (&ds["records"], &lr["records"]),
        (&3.into(), &0.into()),
        "{s}"
    );
    for e in [ds, lr] {
        assert!(
            e["slot"].is_u64() && e["sleeps"].is_u64() && e["posts"].is_u64(),
            "{e}"
        );
    }

    let f = entry(&d, file.to_str().unwrap());
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(f["backing"], "file");
    assert_eq!(
        (&f["key"], &f["shmid"]),
        (&serde_json::Value::Null, &serde_json::Value::Null)
    );
    assert_eq!(f["perms"], format!("{:04o}", meta.mode() & 0o777));
    assert_eq!(f["nattch"], serde_json::Value::Null);
    assert_eq!(f["size_bytes"], meta.len());
    assert_eq!(f["record"]["size"], 24);
    assert_eq!(
        d["channels"].as_array().unwrap().len(),
        2,
        "only what was named: {d:#}"
    );

    let errors = d["errors"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (notes.to_str().unwrap(), "not_a_channel"),
            ("id:x", "bad_name")
        ]
    );
    drop(fchan);
}

#[test]
fn ls_of_a_file_lists_that_file() {
    let dir = TempDir::new("lsfile");
    let file = dir.path("one.chan");
    let chan = Channel::<u64>::builder()
        .backing(Backing::file(&file))
        .type_name(TYPE_NAME)
        .create()
        .unwrap();
    let o = shmchan(&["ls", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the file:\n{out}");
    for col in ["OWNER", "PERMS", "NATTCH", "STATUS", "AGE"] {
        assert!(lines[0].contains(col), "{}", lines[0]);
    }
    assert!(lines[1].starts_with("file") && lines[1].contains(file.to_str().unwrap()));
    assert!(
        lines[1].contains(&format!("{TYPE_NAME} v0")),
        "{}",
        lines[1]
    );
    drop(chan);
}

#[test]
fn a_segment_removed_while_attached_shows_dest() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let chan = builder(key).cleanup(Cleanup::Keep).create().unwrap();
    let id = chan.shm_id().unwrap();
    let _gid = IdGuard(id);
    let _tx = chan.sender().unwrap();
    let o = shmchan(&["rm", "--force", &hex(key)]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = shmchan(&["ls", &format!("id:{id}")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out.lines().nth(1).unwrap();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[..2], ["sysv", &format!("id:{id}")], "{line}");
    assert_eq!(cells[5], "dest", "STATUS, like ipcs: {line}");
    assert!(!line.contains("private"), "{line}");

    let d = doc(
        &shmchan(&["ls", "--json", &format!("id:{id}")]),
        "shmchan-ls",
    );
    let e = entry(&d, &format!("id:{id}"));
    assert_eq!(
        (&e["status"], &e["key"]),
        (&"dest".into(), &"0x00000000".into())
    );
}

#[test]
fn stat_shows_times_and_counts_dead_endpoints_as_dead() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let chan = builder(key).capacity(16).create().unwrap();
    let dead = leave_dead_sender(key, 2);
    let _rx = chan.receiver().unwrap();
    let o = shmchan(&["stat", &hex(key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("no {k} in\n{s}"))[16..]
            .to_string()
    };
    assert!(field("live").starts_with("0 senders, 1 receiver"), "{s}");
    assert!(field("dead").starts_with("1 sender, 0 receivers"), "{s}");
    assert!(
        field("endpoints").contains(&format!("sender {dead} dead")),
        "{s}"
    );
    let created = field("created");
    assert!(
        created.as_bytes()[10] == b'T'
            && created[19..].starts_with("Z (")
            && created.contains(" ago) by pid "),
        "UTC ISO-8601 and an age: {created}"
    );
    assert!(field("shmid").starts_with(&format!("{} (name it id:", shmid_of(key))));

    let d = doc(
        &shmchan(&["stat", "--json", &format!("id:{}", shmid_of(key))]),
        "shmchan-stat",
    );
    let c = &d["channel"];
    assert_eq!((&c["name"], &c["len"]), (&hex(key).into(), &2.into()));
    assert_eq!(c["census"]["dead_senders"], 1);
    assert_eq!(c["census"]["live_senders"], 0);
}

#[test]
fn a_shmid_given_as_a_key_is_explained() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let _chan = builder(key).create().unwrap();
    let id = shmid_of(key);
    assert!(
        shmchan_os::ShmId::open(shmchan_os::Key::new(id)).is_err(),
        "no segment has the shmid as its key (else pick another)"
    );
    let o = shmchan(&["stat", &id.to_string()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("write id:{id}")) && e.contains("numbers name keys"),
        "{e}"
    );
    assert!(shmchan(&["stat", &format!("id:{id}")]).status.success());
    let o = shmchan(&["stat", "id:nope"]);
    assert!(stderr(&o).contains("SHMID column"), "{}", stderr(&o));
    let help = stdout(&shmchan(&["stat", "--help"]));
    assert!(
        help.contains("id:294960") && help.contains("a SysV shmid"),
        "{help}"
    );
    assert!(help.contains("hex (0x...) or decimal"), "{help}");
}

#[test]
fn rm_json_reports_refusal_and_what_was_held() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let chan = builder(key).cleanup(Cleanup::Keep).create().unwrap();
    leave_dead_sender(key, 5);
    let rx = chan.receiver().unwrap();

    let o = shmchan(&["rm", "--json", &hex(key)]);
    assert_eq!(o.status.code(), Some(1));
    let d = doc(&o, "shmchan-rm");
    assert_eq!(d["removed"], false);
    assert_eq!(d["error"]["kind"], "live_endpoints");
    assert_eq!(d["live_pids"], serde_json::json!([std::process::id()]));
    assert!(shmchan_os::ShmId::open(shmchan_os::Key::new(key)).is_ok());

    drop((rx, chan));
    let o = shmchan(&["rm", "--json", &hex(key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = doc(&o, "shmchan-rm");
    assert_eq!(d["removed"], true);
    assert_eq!(d["held"], serde_json::json!({"records": 5, "bytes": 40}));
    assert!(shmchan_os::ShmId::open(shmchan_os::Key::new(key)).is_err());

    let d = doc(&shmchan(&["rm", "--json", &hex(key)]), "shmchan-rm");
    assert_eq!(
        (&d["removed"], &d["error"]["kind"]),
        (&false.into(), &"not_found".into())
    );
}

#[test]
fn help_lists_every_command_and_version_prints() {
    let o = shmchan(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("shmchan {}", env!("CARGO_PKG_VERSION"))
    );
    let help = stdout(&shmchan(&["--help"]));
    for cmd in ["bench", "ls", "stat", "rm", "top", "prune", "doctor"] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{cmd} ")))
            .unwrap_or_else(|| panic!("{cmd} not in\n{help}"));
        assert!(line.split_whitespace().count() > 3, "a description: {line}");
    }
    for (cmd, schema) in [
        ("ls", "shmchan-ls"),
        ("rm", "shmchan-rm"),
        ("top", "shmchan-top"),
    ] {
        let h = stdout(&shmchan(&[cmd, "--help"]));
        assert!(
            h.contains(schema) && h.contains("\"version\": 1"),
            "{cmd}: {h}"
        );
    }
}
