//! Shared mappings (anonymous, file, fd), futex and eventfd against the real kernel.

mod common;

use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_eintr_retried_with_remaining_time, child_sleep, fork_child, TempDir};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use shmchan_os::{
    futex_wait, futex_wake, EfdFlags, Errno, ErrorKind, EventFd, FutexWait, Mode, MsyncMode,
    SharedMapping,
};

/// The `AtomicU32` at byte `offset` of a mapping.
fn word(map: &SharedMapping, offset: usize) -> &AtomicU32 {
    assert!(offset % 4 == 0 && offset + 4 <= map.len());
    // SAFETY: in bounds and 4-aligned (page-aligned base); the mapping outlives the reference;
    // the memory is only ever accessed atomically by these tests.
    unsafe { &*map.as_ptr().as_ptr().add(offset).cast::<AtomicU32>() }
}

// ---------------------------------------------------------------- mmap

#[test]
fn anonymous_mapping_is_zeroed_and_shared_with_a_child() {
    let map = SharedMapping::anonymous(3 * 4096).unwrap();
    assert_eq!(map.len(), 3 * 4096);
    assert!(!map.is_empty());
    let base = map.as_ptr().as_ptr() as usize;
    // SAFETY: 12 KiB mapped; the child is the only writer until it exits.
    let bytes = unsafe { std::slice::from_raw_parts(base as *const u8, map.len()) };
    assert!(bytes.iter().all(|&b| b == 0));
    let mut child = fork_child(|| {
        // SAFETY: the mapping is inherited (MAP_SHARED); offsets are in bounds.
        unsafe {
            for i in 0..1000usize {
                (base as *mut u8).add(4096 + i).write((i % 256) as u8);
            }
        }
        0
    });
    child.assert_success();
    // SAFETY: as above; the child has exited.
    let bytes = unsafe { std::slice::from_raw_parts(base as *const u8, map.len()) };
    for i in 0..1000usize {
        assert_eq!(bytes[4096 + i], (i % 256) as u8);
    }
    map.msync(MsyncMode::Async).unwrap();
}

#[test]
fn zero_length_mappings_are_refused() {
    let err = SharedMapping::anonymous(0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let dir = TempDir::new();
    let err = SharedMapping::create_file(dir.path().join("z"), 0, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!dir.path().join("z").exists());
}

#[test]
fn file_mapping_persists_through_the_file() {
    let dir = TempDir::new();
    let path = dir.path().join("seg");
    let map = SharedMapping::create_file(&path, 8192, Mode::new(0o640)).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 8192);
    assert_eq!(meta.permissions().mode() & 0o777, 0o640 & !umask());
    word(&map, 4096).store(0xDEAD_BEEF, Ordering::Release);
    map.msync(MsyncMode::Sync).unwrap();
    drop(map);
    let data = std::fs::read(&path).unwrap();
    assert_eq!(&data[4096..4100], &0xDEAD_BEEFu32.to_ne_bytes());

    let again = SharedMapping::open_file(&path).unwrap();
    assert_eq!(again.len(), 8192);
    assert_eq!(word(&again, 4096).load(Ordering::Acquire), 0xDEAD_BEEF);
    let min = SharedMapping::open_file_min_len(&path, 8192).unwrap();
    assert_eq!(min.len(), 8192);
}

/// The process umask, read without changing it (tests run on parallel threads).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

#[test]
fn file_create_is_exclusive() {
    let dir = TempDir::new();
    let path = dir.path().join("taken");
    std::fs::write(&path, b"keep me").unwrap();
    let err = SharedMapping::create_file(&path, 4096, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.op(), "open");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"keep me",
        "the file was not touched"
    );
}

#[test]
fn file_create_failure_removes_the_new_file() {
    let dir = TempDir::new();
    let path = dir.path().join("too-big");
    let err = SharedMapping::create_file(&path, usize::MAX, Mode::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert!(!path.exists(), "the half-made file was removed");
}

#[test]
fn file_open_refuses_missing_empty_and_short_files() {
    let dir = TempDir::new();
    let err = SharedMapping::open_file(dir.path().join("missing")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let err = SharedMapping::open_file(&empty).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("the file is 0 bytes long"),
        "{err}"
    );

    let short = dir.path().join("short");
    std::fs::write(&short, [0u8; 100]).unwrap();
    let err = SharedMapping::open_file_min_len(&short, 4096).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("the file is 100 bytes long, shorter than the 4096 bytes"),
        "{err}"
    );
    assert_eq!(SharedMapping::open_file(&short).unwrap().len(), 100);
}

#[test]
fn fd_mapping_shares_memory_with_other_mappings_of_the_file() {
    let dir = TempDir::new();
    let path = dir.path().join("fd");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    file.set_len(4096).unwrap();
    let a = SharedMapping::from_fd(file.as_fd(), 4096).unwrap();
    drop(file); // the mapping outlives the descriptor
    let b = SharedMapping::open_file(&path).unwrap();
    word(&a, 0).store(77, Ordering::Release);
    assert_eq!(word(&b, 0).load(Ordering::Acquire), 77);
}

// ---------------------------------------------------------------- futex

#[test]
fn futex_value_changed_and_timeout() {
    let w = AtomicU32::new(5);
    assert_eq!(futex_wait(&w, 4, None).unwrap(), FutexWait::ValueChanged);
    let start = Instant::now();
    assert_eq!(
        futex_wait(&w, 5, Some(Duration::from_millis(50))).unwrap(),
        FutexWait::TimedOut
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(
        futex_wait(&w, 5, Some(Duration::ZERO)).unwrap(),
        FutexWait::TimedOut
    );
    assert_eq!(futex_wake(&w, 1).unwrap(), 0);
}

#[test]
fn futex_wake_ends_a_thread_wait() {
    let w = Arc::new(AtomicU32::new(0));
    let w2 = Arc::clone(&w);
    let waiter = std::thread::spawn(move || {
        while w2.load(Ordering::Acquire) == 0 {
            let r = futex_wait(&w2, 0, Some(Duration::from_secs(10))).unwrap();
            assert_ne!(r, FutexWait::TimedOut);
        }
    });
    std::thread::sleep(Duration::from_millis(30));
    w.store(1, Ordering::Release);
    futex_wake(&w, u32::MAX).unwrap();
    waiter.join().unwrap();
}

#[test]
fn futex_wait_retries_eintr_with_the_remaining_time() {
    let w = AtomicU32::new(0);
    let timeout = Duration::from_millis(300);
    assert_eintr_retried_with_remaining_time(timeout, || {
        futex_wait(&w, 0, Some(timeout)).unwrap() != FutexWait::TimedOut
    });
}

#[test]
fn futex_wake_from_child_ends_parent_wait() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let base = map.as_ptr().as_ptr() as usize;
    let mut child = fork_child(|| {
        child_sleep(Duration::from_millis(50)); // let the parent sleep first
                                                // SAFETY: inherited MAP_SHARED mapping; offset 0 is 4-aligned.
        let w = unsafe { &*(base as *const AtomicU32) };
        w.store(1, Ordering::Release);
        match futex_wake(w, 1) {
            Ok(_) => 0,
            Err(_) => 1,
        }
    });
    let w = word(&map, 0);
    let start = Instant::now();
    // Woken (or ValueChanged if the store came first; the child sleeps 50 ms so that we are
    // almost always asleep by then): both end the wait; a timeout would fail the test.
    while w.load(Ordering::Acquire) == 0 {
        let r = futex_wait(w, 0, Some(Duration::from_secs(10))).unwrap();
        assert_ne!(r, FutexWait::TimedOut, "the child's wake never arrived");
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    child.assert_success();
}

#[test]
fn futex_wake_counts_waiters_across_processes() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let base = map.as_ptr().as_ptr() as usize;
    // A child sleeps on the word; the parent wakes it and sees the count.
    let mut child = fork_child(|| {
        // SAFETY: inherited MAP_SHARED mapping; offset 0 is 4-aligned.
        let w = unsafe { &*(base as *const AtomicU32) };
        match futex_wait(w, 0, Some(Duration::from_secs(10))) {
            Ok(FutexWait::Woken) => 0,
            _ => 1,
        }
    });
    let w = word(&map, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if futex_wake(w, 1).unwrap() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the child never slept on the word"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.assert_success();
}

// ---------------------------------------------------------------- eventfd

#[test]
fn eventfd_counts_and_resets() {
    let efd = EventFd::new(3, EfdFlags::empty()).unwrap();
    assert_eq!(efd.flags(), EfdFlags::empty());
    efd.write(4).unwrap();
    assert_eq!(efd.read().unwrap(), 7);
    assert_eq!(efd.try_read().unwrap(), None);
}

#[test]
fn eventfd_semaphore_mode() {
    let efd = EventFd::new(2, EfdFlags::SEMAPHORE | EfdFlags::NONBLOCK).unwrap();
    assert_eq!(efd.read().unwrap(), 1);
    assert_eq!(efd.try_read().unwrap(), Some(1));
    assert_eq!(efd.try_read().unwrap(), None);
    let err = efd.read().unwrap_err();
    assert_eq!(
        (err.errno(), err.kind()),
        (Errno::EAGAIN, ErrorKind::WouldBlock)
    );
}

#[test]
fn eventfd_is_pollable_and_shared_with_a_child() {
    let efd = EventFd::new(0, EfdFlags::empty()).unwrap();
    let mut child = fork_child(|| {
        child_sleep(Duration::from_millis(50));
        match efd.write(42) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    });
    let mut fds = [PollFd::new(efd.as_fd(), PollFlags::POLLIN)];
    let ready = loop {
        match nix::poll::poll(&mut fds, PollTimeout::from(10_000u16)) {
            Err(Errno::EINTR) => continue,
            other => break other.unwrap(),
        }
    };
    assert_eq!(ready, 1);
    assert_eq!(efd.read().unwrap(), 42);
    child.assert_success();
}
