//! SysV IPC against the real kernel: keys, shared memory, semaphore sets, message queues.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{
    assert_eintr_retried_with_remaining_time, child_sleep, create_unique, fork_child, unique_key,
    ChildEnd, TempDir,
};
use shmchan_os::{
    ftok, limits, Access, Errno, ErrorKind, Key, Mode, MsgFlags, MsgQueue, MsgSelect,
    OwnedMsgQueue, OwnedSemSet, OwnedShmId, SemFlags, SemOp, SemSet, ShmId, SEMVMX,
};

// ---------------------------------------------------------------- keys

#[test]
fn ftok_is_stable_per_path_and_proj() {
    let dir = TempDir::new();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, b"").unwrap();
    std::fs::write(&b, b"").unwrap();
    let ka = ftok(&a, b't').unwrap();
    assert_eq!(ka, ftok(&a, b't').unwrap());
    assert_ne!(ka, ftok(&a, b'u').unwrap());
    assert_ne!(ka, ftok(&b, b't').unwrap());
    assert!(!ka.is_private());
}

#[test]
fn ftok_of_missing_path_is_not_found_and_names_it() {
    let dir = TempDir::new();
    let missing = dir.path().join("does-not-exist");
    let err = ftok(&missing, b't').unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.errno(), Errno::ENOENT);
    assert_eq!(err.op(), "ftok");
    let shown = err.to_string();
    assert!(shown.starts_with("ftok(path="), "{shown}");
    assert!(shown.contains("does-not-exist"), "{shown}");
    assert!(shown.contains("ENOENT"), "{shown}");
}

#[test]
fn ftok_proj_zero_is_invalid() {
    let err = ftok("/", 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn key_display() {
    assert_eq!(Key::new(0x2a01b3f4).to_string(), "0x2a01b3f4");
    assert_eq!(Key::new(-1).to_string(), "0xffffffff");
    assert_eq!(Key::PRIVATE.to_string(), "IPC_PRIVATE");
    assert!(Key::new(0).is_private());
}

// ---------------------------------------------------------------- shared memory

#[test]
fn shm_create_open_stat_remove() {
    let (key, owned) = create_unique(|k| OwnedShmId::create(k, 10_000, Mode::new(0o640)));
    assert_eq!(ShmId::open(key).unwrap(), owned.id());
    let st = owned.stat().unwrap();
    assert_eq!(st.key, key);
    assert_eq!(st.size, 10_000);
    assert_eq!(st.mode, Mode::new(0o640));
    assert_eq!(st.nattch, 0);
    assert_eq!(st.cpid, std::process::id() as i32);
    // SAFETY: getuid has no preconditions.
    assert_eq!(st.uid, unsafe { libc::getuid() });
    assert!(!st.marked_for_removal);

    let map = owned.attach(Access::ReadWrite).unwrap();
    assert_eq!(map.len(), 10_000);
    assert_eq!(map.id(), owned.id());
    assert_eq!(map.as_ptr().as_ptr() as usize % 4096, 0);
    let st = owned.stat().unwrap();
    assert_eq!(st.nattch, 1);
    assert_eq!(st.lpid, std::process::id() as i32);
    drop(map);
    assert_eq!(owned.stat().unwrap().nattch, 0);

    let id = owned.id();
    drop(owned); // IPC_RMID through the guard
    assert_eq!(id.stat().unwrap_err().kind(), ErrorKind::Removed);
    assert_eq!(ShmId::open(key).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn shm_create_twice_is_already_exists_with_readable_message() {
    let (key, _owned) = create_unique(|k| OwnedShmId::create(k, 4096, Mode::default()));
    let err = OwnedShmId::create(key, 4096, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.errno(), Errno::EEXIST);
    assert_eq!(
        err.to_string(),
        format!("shmget(key={key}, size=4096, mode=0o600): EEXIST: File exists")
    );
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.downcast_ref::<Errno>(), Some(&Errno::EEXIST));
}

#[test]
fn shm_open_missing_key_is_not_found() {
    let key = loop {
        let k = unique_key();
        if ShmId::open(k).is_err() {
            break k; // nobody uses it
        }
    };
    let err = ShmId::open(key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with(&format!("shmget(key={key}): ENOENT")),
        "{err}"
    );
}

#[test]
fn shm_size_zero_and_over_shmmax_are_rejected() {
    let err = OwnedShmId::create(Key::PRIVATE, 0, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    if let Some(shmmax) = limits::shmmax() {
        if shmmax < usize::MAX as u64 {
            let err = OwnedShmId::create(Key::PRIVATE, usize::MAX, Mode::default()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
            assert!(err.to_string().contains("sysctl kernel.shmmax"), "{err}");
        }
    }
}

#[test]
fn shm_rmid_right_after_create_then_attach_by_id() {
    let (key, owned) = create_unique(|k| OwnedShmId::create(k, 4096, Mode::default()));
    let first = owned.attach(Access::ReadWrite).unwrap();
    owned.remove().unwrap();
    // Marked: the kernel frees it at the last detach, so the guard must not remove it again.
    let id = owned.into_inner();
    // The key is released at once ...
    assert_eq!(ShmId::open(key).unwrap_err().kind(), ErrorKind::NotFound);
    let st = id.stat().unwrap();
    assert!(st.marked_for_removal);
    assert!(st.key.is_private());
    // ... but Linux still lets us attach by id while it exists.
    let second = id.attach(Access::ReadWrite).unwrap();
    assert_eq!(id.stat().unwrap().nattch, 2);
    // Both attachments are the same memory.
    // SAFETY: both map the same 4096-byte segment; only this thread touches it.
    unsafe {
        first.as_ptr().as_ptr().add(100).write(0x5a);
        assert_eq!(second.as_ptr().as_ptr().add(100).read(), 0x5a);
    }
    drop(first);
    drop(second);
    // The last detach freed it.
    let err = id.stat().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Removed);
    let err = id.attach(Access::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Removed);
    assert_eq!(err.errno(), Errno::EINVAL);
}

#[test]
fn shm_remove_twice_is_removed() {
    let id = ShmId::create(Key::PRIVATE, 4096, Mode::default()).unwrap();
    id.remove().unwrap();
    assert_eq!(id.remove().unwrap_err().kind(), ErrorKind::Removed);
}

#[test]
fn shm_readonly_attachment_is_read_only() {
    let owned = OwnedShmId::create(Key::PRIVATE, 4096, Mode::default()).unwrap();
    let rw = owned.attach(Access::ReadWrite).unwrap();
    let ro = owned.attach(Access::ReadOnly).unwrap();
    assert_eq!(ro.access(), Access::ReadOnly);
    // SAFETY: 4096-byte segment, only this thread uses it.
    unsafe { rw.as_ptr().as_ptr().write(9) };
    // SAFETY: as above; reading is allowed through the read-only attachment.
    assert_eq!(unsafe { ro.as_ptr().as_ptr().read() }, 9);

    // The kernel maps it without write permission ("r--s" in /proc/self/maps) ...
    let start = format!("{:x}-", ro.as_ptr().as_ptr() as usize);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|l| l.starts_with(&start))
        .expect("mapping listed");
    assert!(
        line.split_whitespace().nth(1).unwrap().starts_with("r--s"),
        "{line}"
    );

    // ... and a write through it faults: a forked child that tries dies of SIGSEGV.
    let ptr = ro.as_ptr().as_ptr() as usize;
    let mut child = fork_child(|| {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit is a plain system call; `no_core` is valid. (No core file.)
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
        // SAFETY: deliberately invalid: the page is mapped read-only, so this faults and the
        // child dies; nothing after it runs.
        unsafe { std::ptr::write_volatile(ptr as *mut u8, 1) };
        0
    });
    assert_eq!(
        child.wait(Duration::from_secs(10)),
        ChildEnd::Signaled(nix::sys::signal::Signal::SIGSEGV)
    );
    // SAFETY: as above.
    assert_eq!(unsafe { rw.as_ptr().as_ptr().read() }, 9);
}

#[test]
fn shm_child_writes_parent_reads() {
    let owned = OwnedShmId::create(Key::PRIVATE, 4096, Mode::default()).unwrap();
    let map = owned.attach(Access::ReadWrite).unwrap();
    let id = owned.id();
    let mut child = fork_child(|| {
        // The child attaches on its own, by id, writes and detaches (drop).
        let Ok(own) = id.attach(Access::ReadWrite) else {
            return 1;
        };
        let base = own.as_ptr().as_ptr();
        // SAFETY: 4096-byte segment; the parent reads only after this child exited.
        unsafe {
            for i in 0..256usize {
                base.add(8 + i).write(i as u8);
            }
            // SAFETY: offset 0 is 4-aligned (page-aligned base).
            (*base.cast::<AtomicU32>()).store(0xC0FFEE, Ordering::Release);
        }
        0
    });
    child.assert_success();
    let base = map.as_ptr().as_ptr();
    // SAFETY: the child has exited; the memory is ours alone. Offset 0 is 4-aligned.
    unsafe {
        assert_eq!(
            (*base.cast::<AtomicU32>()).load(Ordering::Acquire),
            0xC0FFEE
        );
        for i in 0..256usize {
            assert_eq!(base.add(8 + i).read(), i as u8);
        }
    }
    let st = owned.stat().unwrap();
    assert_eq!(
        st.lpid,
        child.pid(),
        "the child's shmdt was the last attach/detach"
    );
    assert_eq!(st.nattch, 1);
}

// ---------------------------------------------------------------- semaphore sets

#[test]
fn sem_create_open_values_stat() {
    let (key, set) = create_unique(|k| OwnedSemSet::create(k, 3, Mode::default()));
    assert_eq!(SemSet::open(key).unwrap(), set.id());
    let st = set.stat().unwrap();
    assert_eq!((st.key, st.nsems, st.mode), (key, 3, Mode::default()));
    set.set_val(2, 7).unwrap();
    assert_eq!(set.get_val(0).unwrap(), 0);
    assert_eq!(set.get_val(2).unwrap(), 7);
    assert_eq!(set.get_ncnt(2).unwrap(), 0);
    assert_eq!(set.get_zcnt(0).unwrap(), 0);
    set.op(&[
        SemOp::post(1),
        SemOp {
            num: 2,
            op: -3,
            flags: SemFlags::empty(),
        },
    ])
    .unwrap();
    assert_eq!(set.get_val(1).unwrap(), 1);
    assert_eq!(set.get_val(2).unwrap(), 4);
    assert_eq!(set.get_pid(1).unwrap(), std::process::id() as i32);
    assert_eq!(SemSet::max_val(), SEMVMX);
    assert_eq!(shmchan_os::sem::max_val(), 32767);
}

#[test]
fn sem_create_twice_and_open_missing() {
    let (key, _set) = create_unique(|k| OwnedSemSet::create(k, 1, Mode::default()));
    let err = OwnedSemSet::create(key, 1, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err
        .to_string()
        .starts_with(&format!("semget(key={key}, nsems=1, mode=0o600): EEXIST")));
    drop(_set);
    assert_eq!(SemSet::open(key).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn sem_nowait_and_timeout() {
    let set = OwnedSemSet::create(Key::PRIVATE, 1, Mode::default()).unwrap();
    assert!(!set
        .op(&[SemOp::wait(0).with_flags(SemFlags::NOWAIT)])
        .unwrap());
    let start = Instant::now();
    assert!(!set
        .timed_op(&[SemOp::wait(0)], Duration::from_millis(50))
        .unwrap());
    assert!(start.elapsed() >= Duration::from_millis(50));
    set.op(&[SemOp::post(0)]).unwrap();
    assert!(set
        .timed_op(&[SemOp::wait(0)], Duration::from_millis(50))
        .unwrap());
    // Wait-for-zero succeeds at once now.
    assert!(set
        .timed_op(
            &[SemOp {
                num: 0,
                op: 0,
                flags: SemFlags::empty()
            }],
            Duration::ZERO
        )
        .unwrap());
}

#[test]
fn sem_values_are_bounded_by_semvmx() {
    let set = OwnedSemSet::create(Key::PRIVATE, 1, Mode::default()).unwrap();
    let err = set.set_val(0, SEMVMX + 1).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    set.set_val(0, SEMVMX).unwrap();
    let err = set.op(&[SemOp::post(0)]).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE);
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    assert!(err.to_string().contains("SEMVMX (32767)"), "{err}");
}

#[test]
fn sem_bad_arguments() {
    let set = OwnedSemSet::create(Key::PRIVATE, 1, Mode::default()).unwrap();
    let err = set.op(&[SemOp::post(5)]).unwrap_err();
    assert_eq!(err.errno(), Errno::EFBIG);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = set.get_val(5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = OwnedSemSet::create(Key::PRIVATE, 0, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn sem_waiter_gets_removed_when_the_set_is_removed() {
    let set = SemSet::create(Key::PRIVATE, 1, Mode::default()).unwrap();
    let guard = OwnedSemSet::new(set); // removes it if the test fails before the remove below
    let waiter = std::thread::spawn(move || set.op(&[SemOp::wait(0)]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while set.get_ncnt(0).unwrap() == 0 {
        assert!(Instant::now() < deadline, "the waiter never blocked");
        std::thread::sleep(Duration::from_millis(1));
    }
    set.remove().unwrap();
    let _ = guard.into_inner(); // removed: nothing left to own
    let err = waiter.join().unwrap().unwrap_err();
    assert_eq!(err.errno(), Errno::EIDRM);
    assert_eq!(err.kind(), ErrorKind::Removed);

    // And every later call on the id is Removed too (EINVAL from the kernel).
    let err = set.op(&[SemOp::post(0)]).unwrap_err();
    assert_eq!(
        (err.errno(), err.kind()),
        (Errno::EINVAL, ErrorKind::Removed)
    );
    assert_eq!(set.get_val(0).unwrap_err().kind(), ErrorKind::Removed);
    assert_eq!(set.stat().unwrap_err().kind(), ErrorKind::Removed);
}

#[test]
fn sem_timed_op_retries_eintr_with_the_remaining_time() {
    let set = OwnedSemSet::create(Key::PRIVATE, 1, Mode::default()).unwrap();
    let timeout = Duration::from_millis(300);
    assert_eintr_retried_with_remaining_time(timeout, || {
        set.timed_op(&[SemOp::wait(0)], timeout).unwrap()
    });
}

#[test]
fn sem_undo_is_reverted_when_the_child_exits() {
    let set = OwnedSemSet::create(Key::PRIVATE, 1, Mode::default()).unwrap();
    let id = set.id();
    let mut child = fork_child(
        || match id.op(&[SemOp::post(0).with_flags(SemFlags::UNDO)]) {
            Ok(true) => 0,
            _ => 1,
        },
    );
    child.assert_success();
    assert_eq!(
        set.get_val(0).unwrap(),
        0,
        "SEM_UNDO reverted the child's post"
    );

    let mut child = fork_child(|| match id.op(&[SemOp::post(0)]) {
        Ok(true) => 0,
        _ => 1,
    });
    child.assert_success();
    assert_eq!(set.get_val(0).unwrap(), 1, "a post without SEM_UNDO stays");
}

#[test]
fn sem_post_by_child_wakes_parent() {
    let set = OwnedSemSet::create(Key::PRIVATE, 1, Mode::default()).unwrap();
    let id = set.id();
    let mut child = fork_child(|| {
        child_sleep(Duration::from_millis(50)); // let the parent block first
        match id.op(&[SemOp::post(0)]) {
            Ok(true) => 0,
            _ => 1,
        }
    });
    let start = Instant::now();
    assert!(set
        .timed_op(&[SemOp::wait(0)], Duration::from_secs(10))
        .unwrap());
    assert!(start.elapsed() < Duration::from_secs(10));
    child.assert_success();
    assert_eq!(set.get_pid(0).unwrap(), std::process::id() as i32);
}

// ---------------------------------------------------------------- message queues

#[test]
fn msg_send_recv_by_type() {
    let (key, q) = create_unique(|k| OwnedMsgQueue::create(k, Mode::default()));
    assert_eq!(MsgQueue::open(key).unwrap(), q.id());
    for (t, text) in [(3, "c"), (1, "a1"), (2, "b"), (1, "a2")] {
        assert!(q.send(t, text.as_bytes(), MsgFlags::empty()).unwrap());
    }
    let mut buf = [0u8; 64];
    let mut recv = |sel| {
        let (t, n) = q.recv(&mut buf, sel, MsgFlags::NOWAIT).unwrap().unwrap();
        (t, String::from_utf8(buf[..n].to_vec()).unwrap())
    };
    assert_eq!(recv(MsgSelect::Type(2)), (2, "b".into()));
    assert_eq!(recv(MsgSelect::UpTo(2)), (1, "a1".into())); // lowest type <= 2
    assert_eq!(recv(MsgSelect::Except(1)), (3, "c".into()));
    assert_eq!(recv(MsgSelect::Any), (1, "a2".into()));
    assert_eq!(
        q.recv(&mut buf, MsgSelect::Any, MsgFlags::NOWAIT).unwrap(),
        None
    );
}

#[test]
fn msg_create_twice_and_open_missing() {
    let (key, q) = create_unique(|k| OwnedMsgQueue::create(k, Mode::default()));
    let err = OwnedMsgQueue::create(key, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    drop(q);
    assert_eq!(MsgQueue::open(key).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn msg_stat_counts_and_pids() {
    let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default()).unwrap();
    q.send(1, &[0u8; 100], MsgFlags::empty()).unwrap();
    q.send(1, &[0u8; 50], MsgFlags::empty()).unwrap();
    let st = q.stat().unwrap();
    assert_eq!((st.qnum, st.cbytes), (2, 150));
    assert_eq!(st.lspid, std::process::id() as i32);
    assert_eq!(st.lrpid, 0);
    if let Some(mnb) = limits::msgmnb() {
        assert_eq!(st.qbytes, mnb);
    }
    let mut buf = [0u8; 100];
    q.recv(&mut buf, MsgSelect::Any, MsgFlags::empty()).unwrap();
    let st = q.stat().unwrap();
    assert_eq!((st.qnum, st.lrpid), (1, std::process::id() as i32));
}

#[test]
fn msg_full_queue_with_nowait_is_false() {
    let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default()).unwrap();
    q.set_qbytes(64).unwrap();
    assert_eq!(q.stat().unwrap().qbytes, 64);
    assert!(q.send(1, &[1u8; 64], MsgFlags::NOWAIT).unwrap());
    assert!(!q.send(1, &[2u8; 1], MsgFlags::NOWAIT).unwrap());
    assert_eq!(q.stat().unwrap().qnum, 1);
}

#[test]
fn msg_over_msgmax_is_too_large_and_names_the_limit() {
    let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default()).unwrap();
    let msgmax = limits::msgmax().expect("msgmax readable") as usize;
    let big = vec![0u8; msgmax + 1];
    let err = q.send(1, &big, MsgFlags::NOWAIT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert_eq!(err.errno(), Errno::EINVAL);
    let shown = err.to_string();
    assert!(
        shown.ends_with(&format!(
            ": EINVAL: message of {} bytes exceeds msgmax ({msgmax}; sysctl kernel.msgmax)",
            msgmax + 1
        )),
        "{shown}"
    );
    assert!(shown.starts_with(&format!(
        "msgsnd(msqid={}, mtype=1, len={}",
        q.raw(),
        msgmax + 1
    )));
    // Exactly msgmax is fine.
    assert!(q.send(1, &big[..msgmax], MsgFlags::NOWAIT).unwrap());
}

#[test]
fn msg_longer_than_buffer_is_too_large_unless_noerror() {
    let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default()).unwrap();
    q.send(5, b"0123456789", MsgFlags::empty()).unwrap();
    let mut small = [0u8; 4];
    let err = q
        .recv(&mut small, MsgSelect::Any, MsgFlags::NOWAIT)
        .unwrap_err();
    assert_eq!(
        (err.errno(), err.kind()),
        (Errno::E2BIG, ErrorKind::TooLarge)
    );
    assert_eq!(q.stat().unwrap().qnum, 1, "the message stays queued");
    let got = q
        .recv(&mut small, MsgSelect::Any, MsgFlags::NOERROR)
        .unwrap();
    assert_eq!(got, Some((5, 4)));
    assert_eq!(&small, b"0123");
    assert_eq!(q.stat().unwrap().qnum, 0);
}

#[test]
fn msg_large_messages_use_the_heap_path() {
    let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default()).unwrap();
    let data: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    q.send(9, &data, MsgFlags::empty()).unwrap();
    let mut buf = vec![0u8; 8192];
    assert_eq!(
        q.recv(&mut buf, MsgSelect::Type(9), MsgFlags::empty())
            .unwrap(),
        Some((9, 4000))
    );
    assert_eq!(&buf[..4000], &data[..]);
}

#[test]
fn msg_bad_types_are_invalid() {
    let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default()).unwrap();
    assert_eq!(
        q.send(0, b"x", MsgFlags::empty()).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let mut buf = [0u8; 8];
    let err = q
        .recv(&mut buf, MsgSelect::Type(-1), MsgFlags::NOWAIT)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn msg_receiver_gets_removed_when_the_queue_is_removed() {
    let q = MsgQueue::create(Key::PRIVATE, Mode::default()).unwrap();
    let guard = OwnedMsgQueue::new(q);
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        q.recv(&mut buf, MsgSelect::Any, MsgFlags::empty())
    });
    std::thread::sleep(Duration::from_millis(50)); // let it block (EINVAL if it did not yet)
    q.remove().unwrap();
    let _ = guard.into_inner(); // removed: nothing left to own
    let err = receiver.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Removed, "{err}");
    assert!(matches!(err.errno(), Errno::EIDRM | Errno::EINVAL));
    let err = q.send(1, b"x", MsgFlags::empty()).unwrap_err();
    assert_eq!(
        (err.errno(), err.kind()),
        (Errno::EINVAL, ErrorKind::Removed)
    );
    assert_eq!(q.stat().unwrap_err().kind(), ErrorKind::Removed);
}

#[test]
fn msg_sent_by_child_is_received_by_parent() {
    let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::default()).unwrap();
    let id = q.id();
    let mut child = fork_child(|| {
        child_sleep(Duration::from_millis(50)); // let the parent block first
        match id.send(7, b"from the child", MsgFlags::empty()) {
            Ok(true) => 0,
            _ => 1,
        }
    });
    let mut buf = [0u8; 64];
    let got = q
        .recv(&mut buf, MsgSelect::Type(7), MsgFlags::empty())
        .unwrap();
    assert_eq!(got, Some((7, 14)));
    assert_eq!(&buf[..14], b"from the child");
    child.assert_success();
    assert_eq!(q.stat().unwrap().lspid, child.pid());
}
