//! The per-endpoint counters (records, sleeps, doorbell posts, kept by each endpoint in its
//! endpoint-table entry) as `stat --json` and `top` show them, against real channels created
//! here and removed by guards.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shmchan::inspect::{inspect, Inspection};
use shmchan::{Backing, Channel, Doorbell};

mod common;
use common::{doc, shmchan, stderr, stdout, TempDir};

/// The endpoint of `role` in a channel document's `endpoints`.
fn endpoint<'a>(ch: &'a serde_json::Value, role: &str) -> &'a serde_json::Value {
    ch["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == role)
        .unwrap_or_else(|| panic!("no {role} in {ch:#}"))
}

fn stat_json(path: &str) -> serde_json::Value {
    let o = shmchan(&["stat", "--json", path]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = doc(&o, "shmchan-stat");
    d["channel"].clone()
}

#[test]
fn stat_json_shows_each_endpoints_records_sleeps_and_posts() {
    let dir = TempDir::new("counters");
    let file = dir.path("c.chan");
    let b = Backing::file(&file);
    let chan = Channel::<u64>::builder()
        .backing(b.clone())
        .capacity(8)
        .doorbell(Doorbell::Futex)
        .spin_window(Duration::ZERO)
        .create()
        .unwrap();
    let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
    tx.send_batch(&[1, 2, 3]).unwrap();
    tx.send(4).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    let path = file.to_str().unwrap();

    let c = stat_json(path);
    let (s, r) = (endpoint(&c, "sender"), endpoint(&c, "receiver"));
    assert_eq!(s["pid"], std::process::id());
    assert_eq!(
        (&s["records"], &r["records"]),
        (&4.into(), &1.into()),
        "{c:#}"
    );
    for e in [s, r] {
        assert_eq!((&e["sleeps"], &e["posts"]), (&0.into(), &0.into()), "{c:#}");
        assert_ne!(e["slot"], serde_json::Value::Null);
        assert_eq!(e["alive"], true);
    }

    // The receiver drains the ring and sleeps (no spin window); the sender's next record
    // rings the doorbell for it. Wait for the counted sleep, not the announcement alone: a
    // record sent between the receiver's announcement and its re-check is taken without
    // sleeping (and rightly not counted).
    assert_eq!(rx.try_recv_batch(&mut [0; 8]), Ok(3));
    let asleep = std::thread::spawn(move || {
        let v = rx.recv();
        (rx, v)
    });
    while !matches!(inspect(&b).unwrap(), Inspection::Channel(i) if i.receiver_sleeps == 1) {
        std::thread::sleep(Duration::from_millis(1));
    }
    tx.send(5).unwrap();
    let (rx, v) = asleep.join().unwrap();
    assert_eq!(v, Ok(5));

    let c = stat_json(path);
    let (s, r) = (endpoint(&c, "sender"), endpoint(&c, "receiver"));
    assert_eq!(
        (&s["records"], &r["records"]),
        (&5.into(), &5.into()),
        "{c:#}"
    );
    assert!(
        r["sleeps"].as_u64().unwrap() >= 1,
        "the receiver slept: {c:#}"
    );
    assert!(
        s["posts"].as_u64().unwrap() >= 1,
        "the sender woke it: {c:#}"
    );
    assert_eq!(s["sleeps"], 0, "{c:#}");

    // The text form lists them too.
    let o = shmchan(&["stat", path]);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with(&format!("sender {}", std::process::id()))
        })
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("5 records, 0 sleeps"), "{line}");
    drop((tx, rx, chan));
}

#[test]
fn top_shows_a_row_per_endpoint_with_its_rates() {
    let dir = TempDir::new("topeps");
    let file = dir.path("t.chan");
    let chan = Channel::<u64>::builder()
        .backing(Backing::file(&file))
        .capacity(16)
        .create()
        .unwrap();
    let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
    // Records flow for as long as `top` samples.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let sender = std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            tx.send(i).unwrap();
            i += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(tx);
    });
    let receiver = std::thread::spawn(move || while rx.recv().is_ok() {});
    let path = file.to_str().unwrap();
    let o = shmchan(&["top", "--once", "--json", "--interval", "0.3", path]);
    let text = shmchan(&["top", "--once", "--interval", "0.1", path]);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    receiver.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let d = doc(&o, "shmchan-top");
    let c = &d["channels"][0];
    assert_eq!(c["endpoints"].as_array().unwrap().len(), 2, "{c:#}");
    for role in ["sender", "receiver"] {
        let e = endpoint(c, role);
        assert_eq!(
            (&e["pid"], &e["alive"]),
            (&std::process::id().into(), &true.into())
        );
        assert_eq!(e["new"], false, "{e}");
        assert!(e["records"].as_u64().unwrap() > 0, "{e}");
        assert!(
            e["records_per_s"].as_f64().unwrap() > 0.0,
            "{role} moved records: {e}"
        );
        for k in ["sleeps", "posts"] {
            assert!(e[k].is_u64(), "{k}: {e}");
            assert!(
                e[&format!("{k}_per_s")].as_f64().unwrap() >= 0.0,
                "{k}: {e}"
            );
        }
    }

    assert!(text.status.success(), "{}", stderr(&text));
    let out = stdout(&text);
    let me = std::process::id();
    for role in ["sender", "receiver"] {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("  {role} {me}")))
            .unwrap_or_else(|| panic!("no {role} row:\n{out}"));
        assert!(row.ends_with("alive"), "{row}");
    }
    drop(chan);
}
