//! Channels between real processes: re-exec'ed children of `shmchan-test-child` (and a child
//! that forks for anonymous memory). Every child is killed and reaped if the test fails, and
//! every segment and file is removed by a guard.

use std::time::Duration;

use shmchan::inspect::{inspect, Inspection};
use shmchan::{Backing, Channel, Cleanup, OpenError};
use shmchan_tests::{unique_key, BackingKind, ChildGuard, KeyGuard, Place, Rec, TempPath};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");
const MILLION: u64 = 1_000_000;
const LONG: Duration = Duration::from_secs(120);

fn million_through(backing: BackingKind, doorbell: &str, batch: usize) {
    let place = Place::new(backing);
    let _rx = Channel::<Rec>::builder()
        .capacity(4096)
        .backing(place.backing.clone())
        .doorbell(shmchan_tests::parse_doorbell(doorbell))
        .create()
        .expect("create");
    let n = MILLION.to_string();
    let consumer = ChildGuard::spawn(CHILD, &["consume", &place.spec, "spsc", doorbell, &n, "-"]);
    let producer = ChildGuard::spawn(
        CHILD,
        &[
            "produce",
            &place.spec,
            "spsc",
            doorbell,
            &n,
            "3",
            &batch.to_string(),
        ],
    );
    assert_eq!(producer.wait_ok(LONG).trim(), format!("sent {MILLION}"));
    assert_eq!(consumer.wait_ok(LONG).trim(), format!("received {MILLION}"));
}

#[test]
fn million_records_sysv_futex() {
    million_through(BackingKind::SysvKey, "futex", 1);
}

#[test]
fn million_records_sysv_futex_batched() {
    million_through(BackingKind::SysvKey, "futex", 64);
}

#[test]
fn million_records_file_futex() {
    million_through(BackingKind::File, "futex", 1);
}

#[test]
fn million_records_sysv_spin() {
    million_through(BackingKind::SysvKey, "spin", 1);
}

#[test]
fn million_records_anonymous_fork() {
    for (kind, doorbell) in [("spsc", "futex"), ("mpmc", "futex"), ("spsc", "spin")] {
        let out = ChildGuard::spawn(
            CHILD,
            &["fork-pipeline", &MILLION.to_string(), kind, doorbell],
        )
        .wait_ok(LONG);
        assert_eq!(
            out.trim(),
            format!("received {MILLION}"),
            "{kind} {doorbell}"
        );
    }
}

#[test]
fn other_record_type_is_type_mismatch() {
    let place = Place::new(BackingKind::SysvKey);
    let _chan = Channel::<Rec>::builder()
        .backing(place.backing.clone())
        .type_name("tests.Rec")
        .schema_version(3)
        .create()
        .unwrap();
    let out = ChildGuard::spawn(CHILD, &["open-other-type", &place.spec]).wait_ok(LONG);
    // The message shows both sides.
    assert!(
        out.contains("tests.Rec") && out.contains("v3") && out.contains("16 bytes"),
        "{out}"
    );
    assert!(
        out.contains("`Other` v0 (4 bytes"), // the type's name without module paths
        "{out}"
    );
}

#[test]
fn type_mismatch_in_process_shows_both_sides() {
    let place = Place::new(BackingKind::File);
    let _chan = Channel::<u64>::builder()
        .backing(place.backing.clone())
        .create()
        .unwrap();
    let e = Channel::<u32>::builder()
        .backing(place.backing.clone())
        .open_receiver()
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, OpenError::TypeMismatch { .. }), "{msg}");
    assert!(
        msg.contains("`u32` v0 (4 bytes, align 4)") && msg.contains("`u64` v0 (8 bytes, align 8)"),
        "{msg}"
    );
    // Same type, other schema version: also a mismatch.
    let e = Channel::<u64>::builder()
        .backing(place.backing.clone())
        .schema_version(2)
        .open_receiver()
        .unwrap_err();
    assert!(matches!(e, OpenError::TypeMismatch { .. }), "{e}");
}

#[test]
fn missing_key_or_path_is_not_found() {
    let key = unique_key();
    let e = Channel::<u64>::builder()
        .backing(Backing::sysv_key(key))
        .open_receiver()
        .unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
    let path = TempPath::new("missing");
    let e = Channel::<u64>::builder()
        .backing(Backing::file(path.path()))
        .open_sender()
        .unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
    let e = Channel::<u64>::builder()
        .backing(Backing::sysv_path(path.path(), b'x'))
        .open_sender()
        .unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
}

#[test]
fn existing_key_is_already_exists() {
    let place = Place::new(BackingKind::SysvKey);
    let _a = Channel::<u64>::builder()
        .backing(place.backing.clone())
        .create()
        .unwrap();
    let e = Channel::<u64>::builder()
        .backing(place.backing.clone())
        .create()
        .unwrap_err();
    assert!(matches!(e, OpenError::AlreadyExists { .. }), "{e}");
}

#[test]
fn no_permission_is_permission_denied() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to drop to another uid");
        return;
    }
    for kind in [BackingKind::SysvKey, BackingKind::File] {
        let place = Place::new(kind);
        let _chan = Channel::<Rec>::builder()
            .backing(place.backing.clone())
            .mode(0o600)
            .create()
            .unwrap();
        let out = ChildGuard::spawn(CHILD, &["open-as-nobody", &place.spec]).wait_ok(LONG);
        assert!(out.contains("permission denied"), "{out}");
    }
}

#[test]
fn mpmc_three_producers_three_consumers_exactly_once() {
    const N: u64 = 100_000;
    let place = Place::new(BackingKind::SysvKey);
    let chan = Channel::<Rec>::builder()
        .capacity(256)
        .backing(place.backing.clone())
        .mpmc()
        .create()
        .unwrap();
    // Hold a sender until every producer is done, so consumers see "disconnected" only then.
    let hold = chan.sender().unwrap();
    let outs: Vec<TempPath> = (0..3).map(|_| TempPath::new("mpmc-out")).collect();
    let consumers: Vec<ChildGuard> = outs
        .iter()
        .map(|o| {
            let o = o.path().to_str().unwrap().to_owned();
            ChildGuard::spawn(CHILD, &["consume", &place.spec, "mpmc", "futex", "-", &o])
        })
        .collect();
    let producers: Vec<ChildGuard> = (0..3)
        .map(|id| {
            ChildGuard::spawn(
                CHILD,
                &[
                    "produce",
                    &place.spec,
                    "mpmc",
                    "futex",
                    &N.to_string(),
                    &id.to_string(),
                ],
            )
        })
        .collect();
    for p in producers {
        p.wait_ok(LONG);
    }
    drop(hold);
    let mut total = 0;
    for c in consumers {
        total += c
            .wait_ok(LONG)
            .trim()
            .strip_prefix("received ")
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    assert_eq!(total, 3 * N);
    let mut seen = vec![vec![false; N as usize]; 3];
    for o in &outs {
        let bytes = std::fs::read(o.path()).unwrap();
        for rec in bytes.chunks_exact(12) {
            let p = u32::from_le_bytes(rec[..4].try_into().unwrap()) as usize;
            let s = u64::from_le_bytes(rec[4..].try_into().unwrap()) as usize;
            assert!(!seen[p][s], "producer {p} seq {s} delivered twice");
            seen[p][s] = true;
        }
    }
    assert!(
        seen.iter().all(|v| v.iter().all(|&b| b)),
        "every record delivered"
    );
}

#[test]
fn file_records_survive_every_process_exiting() {
    let path = TempPath::new("survive");
    let spec = format!("file:{}", path.path().display());
    {
        let _c = Channel::<Rec>::builder()
            .capacity(64)
            .backing(Backing::file(path.path()))
            .create()
            .unwrap();
    } // the creator is gone; the file stays (Cleanup::Keep is the file default)
    ChildGuard::spawn(CHILD, &["produce", &spec, "spsc", "futex", "50", "1"]).wait_ok(LONG);
    // Nobody is attached now. A consumer started later receives all 50, then Disconnected.
    let out =
        ChildGuard::spawn(CHILD, &["consume", &spec, "spsc", "futex", "-", "-"]).wait_ok(LONG);
    assert_eq!(out.trim(), "received 50");
}

#[test]
fn sysv_last_detach_leaks_nothing_and_opens_by_id() {
    let key = unique_key();
    let _guard = KeyGuard(key);
    let tx = Channel::<Rec>::builder()
        .backing(Backing::sysv_key(key))
        .cleanup(Cleanup::LastDetach)
        .create_sender()
        .unwrap();
    let id = tx.shm_id().unwrap();
    // The key is free at once; the segment is reachable by id while attached.
    let e = Channel::<Rec>::builder()
        .backing(Backing::sysv_key(key))
        .open_receiver()
        .unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
    let spec = format!("sysv-id:{id}");
    let consumer = ChildGuard::spawn(CHILD, &["consume", &spec, "spsc", "futex", "10", "-"]);
    let mut tx = tx;
    for i in 0..10 {
        tx.send(Rec::new(1, i)).unwrap();
    }
    assert_eq!(consumer.wait_ok(LONG).trim(), "received 10");
    drop(tx);
    // Last detach happened: the id is gone.
    assert!(shmchan_os::ShmId::from_raw(id).stat().is_err());
}

/// Writes the segment's own count of attached processes (a peer may write anything there).
fn forge_attached(shmid: i32, count: u32) {
    let a = shmchan_os::ShmId::from_raw(shmid)
        .attach(shmchan_os::Access::ReadWrite)
        .unwrap();
    let base = a.as_ptr().as_ptr();
    // SAFETY: the attachment maps the whole segment (a channel: its ring header's bytes 56..64
    // hold the ext area's offset, validated by the creator, and the ext area is 8704 bytes);
    // unaligned reads and writes of plain bytes; nobody else uses the channel meanwhile.
    unsafe {
        let ext = base.add(56).cast::<u64>().read_unaligned() as usize;
        assert!(ext + 348 <= a.len());
        base.add(ext + 344).cast::<u32>().write_unaligned(count);
    }
}

/// `Cleanup::LastDetach` on SysV: the kernel's attach count says who detaches last and removes
/// the doorbell's objects, not the segment's own count, which any peer may write (and which a
/// process killed with SIGKILL never decrements).
#[test]
fn sysv_last_detach_follows_the_kernels_count() {
    let key = unique_key();
    let _guard = KeyGuard(key);
    let first = Channel::<Rec>::builder()
        .backing(Backing::sysv_key(key))
        .doorbell(shmchan::Doorbell::SysvSem)
        .cleanup(Cleanup::LastDetach)
        .create()
        .unwrap();
    let shmid = first.shm_id().unwrap();
    let second = Channel::<Rec>::builder()
        .backing(Backing::sysv_id(shmid))
        .open()
        .unwrap();
    let Inspection::Channel(info) = inspect(&Backing::sysv_id(shmid)).unwrap() else {
        panic!("not a channel")
    };
    let semid: i32 = info
        .doorbell_objects
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let sem = shmchan_os::SemSet::from_raw(semid);
    let _sem_guard = shmchan_os::OwnedSemSet::new(sem);
    // The segment says the first to leave is the last: the kernel knows the second is still
    // attached, so the objects stay.
    forge_attached(shmid, 1);
    drop(first);
    assert!(sem.stat().is_ok(), "removed while the second was attached");
    // The segment says others are still there (dead ones, say): the kernel knows none is.
    forge_attached(shmid, 7);
    drop(second);
    assert!(sem.stat().is_err(), "left behind by the last detach");
    assert!(shmchan_os::ShmId::from_raw(shmid).stat().is_err());
}

#[test]
fn sysv_creator_removes_on_drop() {
    let place = Place::new(BackingKind::SysvKey);
    let tx = Channel::<u64>::builder()
        .backing(place.backing.clone())
        .create_sender()
        .unwrap();
    let id = tx.shm_id().unwrap();
    assert!(shmchan_os::ShmId::from_raw(id).stat().is_ok());
    drop(tx);
    assert!(shmchan_os::ShmId::from_raw(id).stat().is_err());
}

#[test]
fn truncated_file_is_refused_with_both_lengths() {
    let place = Place::new(BackingKind::File);
    let path = match &place.spec {
        s if s.starts_with("file:") => s[5..].to_owned(),
        _ => unreachable!(),
    };
    drop(
        Channel::<Rec>::builder()
            .capacity(1024)
            .backing(place.backing.clone())
            .create()
            .unwrap(),
    );
    let full = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(full / 2)
        .unwrap();
    let e = Channel::<Rec>::builder()
        .backing(place.backing.clone())
        .open_receiver()
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, OpenError::Corrupted { .. }), "{msg}");
    assert!(msg.contains(&(full / 2).to_string()), "{msg}");
}
