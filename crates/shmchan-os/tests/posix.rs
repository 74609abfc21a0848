//! POSIX semaphores (unnamed in shared memory, and named) and POSIX message queues against the
//! real kernel.

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{assert_eintr_retried_with_remaining_time, child_sleep, fork_child, MqName, SemName};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use shmchan_os::{
    limits, Errno, ErrorKind, Mode, MqAttr, NamedSem, PosixMq, RawSem, SharedMapping,
};

/// A fresh semaphore at the start of an anonymous shared mapping (destroyed by the caller).
fn sem_in(map: &SharedMapping, value: u32) -> &RawSem {
    assert!(RawSem::SIZE <= map.len());
    assert_eq!(map.as_ptr().as_ptr() as usize % RawSem::ALIGN, 0);
    // SAFETY: the mapping is page-aligned, larger than a sem_t, outlives the reference, and
    // these bytes are used for nothing else.
    unsafe { RawSem::init_at(map.as_ptr().cast(), value).unwrap() }
}

// ---------------------------------------------------------------- unnamed sem_t

#[test]
fn raw_sem_post_wait_value() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let sem = sem_in(&map, 2);
    assert_eq!(sem.value().unwrap(), 2);
    sem.wait().unwrap();
    assert!(sem.try_wait().unwrap());
    assert!(!sem.try_wait().unwrap());
    sem.post().unwrap();
    assert_eq!(sem.value().unwrap(), 1);
    // SAFETY: the same initialised semaphore, in the same live mapping.
    let again = unsafe { RawSem::from_ptr(map.as_ptr().cast()) };
    assert!(again.try_wait().unwrap());
    assert!(format!("{sem:?}").contains("RawSem"));
    // SAFETY: nobody waits on it and it is not used afterwards.
    unsafe { sem.destroy().unwrap() };
}

#[test]
fn raw_sem_init_rejects_values_over_sem_value_max() {
    let map = SharedMapping::anonymous(4096).unwrap();
    // SAFETY: as in `sem_in`.
    let err = unsafe { RawSem::init_at(map.as_ptr().cast(), u32::MAX) }.unwrap_err();
    assert_eq!(
        (err.errno(), err.kind()),
        (Errno::EINVAL, ErrorKind::InvalidInput)
    );
}

#[test]
fn raw_sem_clockwait_times_out_at_the_deadline() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let sem = sem_in(&map, 0);
    let start = Instant::now();
    assert!(!sem.wait_until(start + Duration::from_millis(50)).unwrap());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // A deadline in the past is a try.
    assert!(!sem
        .wait_until(Instant::now() - Duration::from_millis(1))
        .unwrap());
    sem.post().unwrap();
    assert!(sem
        .wait_until(Instant::now() - Duration::from_millis(1))
        .unwrap());
    assert!(!sem.wait_timeout(Duration::from_millis(1)).unwrap());
    // SAFETY: nobody waits on it and it is not used afterwards.
    unsafe { sem.destroy().unwrap() };
}

#[test]
fn raw_sem_wait_until_retries_eintr_with_the_remaining_time() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let sem = sem_in(&map, 0);
    let timeout = Duration::from_millis(300);
    assert_eintr_retried_with_remaining_time(timeout, || {
        sem.wait_until(Instant::now() + timeout).unwrap()
    });
    // SAFETY: nobody waits on it and it is not used afterwards.
    unsafe { sem.destroy().unwrap() };
}

#[test]
fn raw_sem_post_by_child_wakes_parent() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let sem = sem_in(&map, 0);
    let addr = map.as_ptr();
    let mut child = fork_child(|| {
        child_sleep(Duration::from_millis(50)); // let the parent block first
                                                // SAFETY: the mapping is shared with the parent (MAP_SHARED, inherited) and holds the
                                                // semaphore the parent initialised before fork.
        let sem = unsafe { RawSem::from_ptr(addr.cast()) };
        match sem.post() {
            Ok(()) => 0,
            Err(_) => 1,
        }
    });
    let start = Instant::now();
    assert!(sem.wait_until(start + Duration::from_secs(10)).unwrap());
    child.assert_success();
    assert_eq!(sem.value().unwrap(), 0);
    // SAFETY: the child is gone; nobody else uses it.
    unsafe { sem.destroy().unwrap() };
}

// ---------------------------------------------------------------- named sem_open

#[test]
fn named_sem_create_open_unlink() {
    let name = SemName::new();
    let a = NamedSem::create(&name.0, 1, Mode::default()).unwrap();
    assert_eq!(a.name(), name.0);
    // glibc keeps named semaphores in /dev/shm as sem.NAME.
    let file = format!("/dev/shm/sem.{}", &name.0[1..]);
    assert!(std::path::Path::new(&file).exists(), "{file}");
    let b = NamedSem::open(&name.0).unwrap();
    assert!(b.try_wait().unwrap());
    assert!(!a.try_wait().unwrap(), "same semaphore");
    a.post().unwrap();
    assert_eq!(b.value().unwrap(), 1);
    assert!(b.wait_timeout(Duration::from_millis(10)).unwrap());
    assert!(!b
        .wait_until(Instant::now() + Duration::from_millis(10))
        .unwrap());

    let err = NamedSem::create(&name.0, 0, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(
        err.to_string()
            .starts_with(&format!("sem_open(name={:?}", name.0)),
        "{err}"
    );

    NamedSem::unlink(&name.0).unwrap();
    assert!(!std::path::Path::new(&file).exists());
    a.post().unwrap(); // handles keep working after unlink
    b.wait().unwrap();
    assert_eq!(
        NamedSem::open(&name.0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        NamedSem::unlink(&name.0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn named_sem_bad_names() {
    let err = NamedSem::create("/bad\0name", 0, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = NamedSem::open("/no/such/dir").unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound),
        "{err}"
    );
}

#[test]
fn named_sem_post_by_child_wakes_parent() {
    let name = SemName::new();
    let sem = NamedSem::create(&name.0, 0, Mode::default()).unwrap();
    let mut child = fork_child(|| {
        child_sleep(Duration::from_millis(50)); // let the parent block first
                                                // The handle opened before fork is valid in the child (its mapping is inherited).
        match sem.post() {
            Ok(()) => 0,
            Err(_) => 1,
        }
    });
    assert!(sem.wait_timeout(Duration::from_secs(10)).unwrap());
    child.assert_success();
}

// ---------------------------------------------------------------- message queues

fn attr(max_msgs: usize, msg_size: usize) -> MqAttr {
    MqAttr { max_msgs, msg_size }
}

#[test]
fn mq_create_open_send_recv_priorities() {
    let name = MqName::new();
    let a = PosixMq::create(&name.0, attr(4, 32), Mode::default(), false).unwrap();
    assert_eq!(a.attr().unwrap(), attr(4, 32));
    assert_eq!(a.name(), name.0);
    let b = PosixMq::open(&name.0, false).unwrap();
    a.send(b"one", 1).unwrap();
    a.send(b"five", 5).unwrap();
    a.send(b"also one", 1).unwrap();
    assert_eq!(b.cur_msgs().unwrap(), 3);
    let mut buf = [0u8; 32];
    assert_eq!(b.recv(&mut buf).unwrap(), (4, 5));
    assert_eq!(&buf[..4], b"five");
    assert_eq!(b.recv(&mut buf).unwrap(), (3, 1));
    assert_eq!(b.try_recv(&mut buf).unwrap(), Some((8, 1)));
    assert_eq!(&buf[..8], b"also one");
    assert_eq!(b.try_recv(&mut buf).unwrap(), None);
}

#[test]
fn mq_create_twice_open_missing_unlink() {
    let name = MqName::new();
    let _q = PosixMq::create(&name.0, attr(2, 8), Mode::default(), false).unwrap();
    let err = PosixMq::create(&name.0, attr(2, 8), Mode::default(), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(
        err.to_string()
            .starts_with(&format!("mq_open(name={:?}", name.0)),
        "{err}"
    );
    PosixMq::unlink(&name.0).unwrap();
    assert_eq!(
        PosixMq::open(&name.0, false).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        PosixMq::unlink(&name.0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn mq_full_and_empty_with_timeouts() {
    let name = MqName::new();
    let q = PosixMq::create(&name.0, attr(2, 8), Mode::default(), false).unwrap();
    assert!(q.try_send(b"a", 0).unwrap());
    assert!(q
        .send_until(b"b", 0, Instant::now() + Duration::from_millis(10))
        .unwrap());
    assert!(!q.try_send(b"c", 0).unwrap());
    let start = Instant::now();
    assert!(!q
        .send_until(b"c", 0, start + Duration::from_millis(50))
        .unwrap());
    assert!(start.elapsed() >= Duration::from_millis(50));

    let mut buf = [0u8; 8];
    assert!(q
        .recv_until(&mut buf, Instant::now() + Duration::from_millis(10))
        .unwrap()
        .is_some());
    assert!(q.try_recv(&mut buf).unwrap().is_some());
    let start = Instant::now();
    assert_eq!(
        q.recv_until(&mut buf, start + Duration::from_millis(50))
            .unwrap(),
        None
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[test]
fn mq_recv_until_retries_eintr_with_the_remaining_time() {
    let name = MqName::new();
    let q = PosixMq::create(&name.0, attr(2, 8), Mode::default(), false).unwrap();
    let mut buf = [0u8; 8];
    let timeout = Duration::from_millis(300);
    assert_eintr_retried_with_remaining_time(timeout, || {
        q.recv_until(&mut buf, Instant::now() + timeout)
            .unwrap()
            .is_some()
    });
}

#[test]
fn mq_nonblocking_descriptor_reports_would_block() {
    let name = MqName::new();
    let q = PosixMq::create(&name.0, attr(1, 8), Mode::default(), true).unwrap();
    let mut buf = [0u8; 8];
    let err = q.recv(&mut buf).unwrap_err();
    assert_eq!(
        (err.errno(), err.kind()),
        (Errno::EAGAIN, ErrorKind::WouldBlock)
    );
    q.send(b"x", 0).unwrap();
    let err = q.send(b"y", 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(!q.try_send(b"y", 0).unwrap());
    assert_eq!(q.try_recv(&mut buf).unwrap(), Some((1, 0)));
}

#[test]
fn mq_sizes_are_checked() {
    let name = MqName::new();
    let q = PosixMq::create(&name.0, attr(2, 8), Mode::default(), false).unwrap();
    let err = q.send(&[0u8; 9], 0).unwrap_err();
    assert_eq!(
        (err.errno(), err.kind()),
        (Errno::EMSGSIZE, ErrorKind::TooLarge)
    );
    assert!(err.to_string().contains("msg_size (8)"), "{err}");
    q.send(&[0u8; 8], 0).unwrap();
    let mut small = [0u8; 7];
    let err = q.recv(&mut small).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert!(
        err.to_string()
            .contains("smaller than the queue's msg_size (8)"),
        "{err}"
    );
}

#[test]
fn mq_open_errors_name_the_limits() {
    // Beyond even the CAP_SYS_RESOURCE ceiling (HARD_MSGMAX = 65536), so root gets EINVAL too.
    let name = MqName::new();
    let err = PosixMq::create(&name.0, attr(1 << 20, 8), Mode::default(), false).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    let shown = err.to_string();
    if let Some(m) = limits::mq_msg_max() {
        assert!(
            shown.ends_with(&format!(
                ": EINVAL: max_msgs 1048576 exceeds mq msg_max ({m}; sysctl fs.mqueue.msg_max)"
            )),
            "{shown}"
        );
    }
    let size_max = limits::mq_msgsize_max().unwrap_or(8192) as usize;
    let err = PosixMq::create(&name.0, attr(1, 1 << 30), Mode::default(), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    assert!(
        err.to_string().contains(&format!(
            "msg_size 1073741824 exceeds mq msgsize_max ({size_max}; sysctl fs.mqueue.msgsize_max)"
        )),
        "{err}"
    );

    let err = PosixMq::create("/bad/name", attr(1, 8), Mode::default(), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("without further slashes"), "{err}");
    let err = PosixMq::create(&name.0, attr(0, 8), Mode::default(), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn mq_message_sent_by_child_is_received_by_parent() {
    let name = MqName::new();
    let q = PosixMq::create(&name.0, attr(4, 64), Mode::default(), false).unwrap();
    let mut child = fork_child(|| {
        child_sleep(Duration::from_millis(50)); // let the parent block first
        match q.send(b"hello from the child", 3) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    });
    let mut buf = [0u8; 64];
    let got = q
        .recv_until(&mut buf, Instant::now() + Duration::from_secs(10))
        .unwrap();
    assert_eq!(got, Some((20, 3)));
    assert_eq!(&buf[..20], b"hello from the child");
    child.assert_success();
}

#[test]
fn mq_descriptor_polled_by_parent_wakes_when_child_sends() {
    let name = MqName::new();
    let q = PosixMq::create(&name.0, attr(4, 16), Mode::default(), true).unwrap();
    let mut fds = [PollFd::new(q.as_fd(), PollFlags::POLLIN)];
    assert_eq!(
        nix::poll::poll(&mut fds, PollTimeout::ZERO).unwrap(),
        0,
        "empty: not readable"
    );
    let mut child = fork_child(|| {
        child_sleep(Duration::from_millis(50)); // let the parent block in poll first
        match q.send(b"ping", 0) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    });
    let start = Instant::now();
    let ready = loop {
        match nix::poll::poll(&mut fds, PollTimeout::from(10_000u16)) {
            Err(Errno::EINTR) => continue,
            other => break other.unwrap(),
        }
    };
    assert_eq!(ready, 1);
    assert!(fds[0].revents().unwrap().contains(PollFlags::POLLIN));
    assert!(start.elapsed() < Duration::from_secs(10));
    let mut buf = [0u8; 16];
    assert_eq!(q.try_recv(&mut buf).unwrap(), Some((4, 0)));
    child.assert_success();
}
