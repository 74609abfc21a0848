//! memfd, seals and descriptor passing (`SCM_RIGHTS`) against the real kernel: over a
//! socket pair in one process and to a forked child.

mod common;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::fork_child;
use shmchan_os::memfd::{add_seals, get_seals, len, memfd_create, set_len};
use shmchan_os::scm::{recv_fds, send_fds};
use shmchan_os::{EfdFlags, ErrorKind, EventFd, Seals, SharedMapping};

/// The `AtomicU64` at the start of a mapping.
fn word(map: &SharedMapping) -> &AtomicU64 {
    // SAFETY: at least 8 bytes mapped, page-aligned; the mapping outlives the reference; the
    // word is only ever accessed atomically.
    unsafe { &*map.as_ptr().as_ptr().cast::<AtomicU64>() }
}

/// How many of this process's descriptors point at the memfd called `name`.
fn copies(name: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with(&format!("/memfd:{name} ")))
        .count()
}

fn is_cloexec(fd: BorrowedFd<'_>) -> bool {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    flags & libc::FD_CLOEXEC != 0
}

fn unique(what: &str) -> String {
    format!("shmchan-os-test-{what}-{}", common::unique_suffix())
}

#[test]
fn memfd_seals_refuse_shrinking_and_growing() {
    let fd = memfd_create(&unique("seal")).unwrap();
    assert!(is_cloexec(fd.as_fd()));
    assert_eq!(get_seals(fd.as_fd()).unwrap(), Seals::empty());
    set_len(fd.as_fd(), 8192).unwrap();
    add_seals(fd.as_fd(), Seals::SHRINK | Seals::GROW).unwrap();
    let e = set_len(fd.as_fd(), 4096).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("F_SEAL_SHRINK"), "{e}");
    assert_eq!(
        set_len(fd.as_fd(), 16384).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(len(fd.as_fd()).unwrap(), 8192);
    add_seals(fd.as_fd(), Seals::SEAL).unwrap();
    assert_eq!(
        get_seals(fd.as_fd()).unwrap(),
        Seals::SHRINK | Seals::GROW | Seals::SEAL
    );
    assert_eq!(
        add_seals(fd.as_fd(), Seals::WRITE).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    // A file that is not a memfd has no seals to read.
    let dev_null = std::fs::File::open("/dev/null").unwrap();
    let e = get_seals(dev_null.as_fd()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("not a memfd"), "{e}");
    // Names memfd_create cannot take.
    assert_eq!(
        memfd_create("a\0b").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        memfd_create(&"x".repeat(300)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn descriptors_cross_a_socket_pair() {
    let name = unique("pair");
    let fd = memfd_create(&name).unwrap();
    set_len(fd.as_fd(), 4096).unwrap();
    let efd = EventFd::new(0, EfdFlags::SEMAPHORE | EfdFlags::NONBLOCK).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    assert_eq!(
        send_fds(a.as_fd(), b"payload", &[fd.as_fd(), efd.as_fd()]).unwrap(),
        7
    );
    let mut buf = [0u8; 64];
    let got = recv_fds(b.as_fd(), &mut buf, 2).unwrap();
    assert_eq!(&buf[..got.bytes], b"payload");
    assert_eq!(got.fds.len(), 2);
    for f in &got.fds {
        assert!(is_cloexec(f.as_fd()), "received without close-on-exec");
        assert_ne!(f.as_raw_fd(), fd.as_raw_fd());
    }
    assert_eq!(copies(&name), 2);
    // The same memory and the same counter.
    let here = SharedMapping::from_fd(fd.as_fd(), 4096).unwrap();
    let there = SharedMapping::from_fd(got.fds[0].as_fd(), 4096).unwrap();
    word(&here).store(77, Ordering::SeqCst);
    assert_eq!(word(&there).load(Ordering::SeqCst), 77);
    let efd2 = EventFd::from_fd(got.fds.into_iter().nth(1).unwrap()).unwrap();
    assert_eq!(efd2.flags(), EfdFlags::SEMAPHORE | EfdFlags::NONBLOCK);
    efd.write(2).unwrap();
    assert_eq!(efd2.try_read().unwrap(), Some(1));
    assert_eq!(efd.try_read().unwrap(), Some(1));
    assert_eq!(efd2.try_read().unwrap(), None);
    drop((here, there));
    assert_eq!(
        copies(&name),
        1,
        "the received descriptor is closed with its owner"
    );
    // A peer that closed its end.
    drop(a);
    let got = recv_fds(b.as_fd(), &mut buf, 2).unwrap();
    assert_eq!((got.bytes, got.fds.len()), (0, 0));
}

#[test]
fn surplus_descriptors_are_an_error_and_closed() {
    let name = unique("surplus");
    let fd = memfd_create(&name).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let mut buf = [0u8; 8];
    // One more than expected: fits the control buffer's padding, still refused.
    send_fds(a.as_fd(), b"x", &[fd.as_fd(), fd.as_fd()]).unwrap();
    let e = recv_fds(b.as_fd(), &mut buf, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert!(e.to_string().contains("expected at most 1"), "{e}");
    assert_eq!(copies(&name), 1, "surplus descriptors leaked");
    // Many more: the control data is truncated (MSG_CTRUNC).
    let many: Vec<BorrowedFd<'_>> = (0..16).map(|_| fd.as_fd()).collect();
    send_fds(a.as_fd(), b"y", &many).unwrap();
    let e = recv_fds(b.as_fd(), &mut buf, 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert!(e.to_string().contains("MSG_CTRUNC"), "{e}");
    assert_eq!(copies(&name), 1, "truncated descriptors leaked");
    // Descriptors where none are expected.
    send_fds(a.as_fd(), b"z", &[fd.as_fd()]).unwrap();
    assert_eq!(
        recv_fds(b.as_fd(), &mut buf, 0).unwrap_err().kind(),
        ErrorKind::TooLarge
    );
    assert_eq!(copies(&name), 1);
    // Plain bytes still arrive.
    send_fds(a.as_fd(), b"ok", &[]).unwrap();
    let got = recv_fds(b.as_fd(), &mut buf, 0).unwrap();
    assert_eq!((&buf[..got.bytes], got.fds.len()), (&b"ok"[..], 0));
}

#[test]
fn send_and_receive_errors() {
    let (a, b) = UnixStream::pair().unwrap();
    // Descriptors need a byte to travel with.
    assert_eq!(
        send_fds(a.as_fd(), b"", &[a.as_fd()]).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let t0 = Instant::now();
    let e = recv_fds(b.as_fd(), &mut [0u8; 4], 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(e.to_string().contains("SO_RCVTIMEO"), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(25));
    drop(b);
    let e = send_fds(a.as_fd(), b"x", &[a.as_fd()]).unwrap_err();
    assert_eq!(e.errno(), shmchan_os::Errno::EPIPE);
}

#[test]
fn a_forked_child_receives_a_sealed_memfd_and_writes_through_it() {
    let name = unique("fork");
    let fd = memfd_create(&name).unwrap();
    set_len(fd.as_fd(), 4096).unwrap();
    add_seals(fd.as_fd(), Seals::SHRINK | Seals::GROW | Seals::SEAL).unwrap();
    let map = SharedMapping::from_fd(fd.as_fd(), 4096).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let efd = EventFd::new(0, EfdFlags::SEMAPHORE | EfdFlags::NONBLOCK).unwrap();
    // The child gets the memfd and the eventfd only through the socket: it closes the copies
    // that `fork` gave it first. (Receiving allocates; glibc's malloc is safe in a forked child
    // of a multi-threaded process, and the child does nothing else that is not.)
    let (fd_raw, efd_raw, a_raw) = (fd.as_raw_fd(), efd.as_raw_fd(), a.as_raw_fd());
    let b_fd = b.as_fd().try_clone_to_owned().unwrap();
    let mut child = fork_child(move || {
        // SAFETY: closing this process's copies of descriptors it will not use.
        unsafe {
            libc::close(fd_raw);
            libc::close(efd_raw);
            libc::close(a_raw);
        }
        let mut buf = [0u8; 8];
        let Ok(got) = recv_fds(b_fd.as_fd(), &mut buf, 2) else {
            return 2;
        };
        if got.bytes != 4 || got.fds.len() != 2 || &buf[..4] != b"memf" {
            return 3;
        }
        let mut fds = got.fds.into_iter();
        let (mem, bell): (OwnedFd, OwnedFd) = (fds.next().unwrap(), fds.next().unwrap());
        if !get_seals(mem.as_fd()).is_ok_and(|s| s.contains(Seals::SHRINK)) {
            return 4;
        }
        let Ok(m) = SharedMapping::from_fd(mem.as_fd(), 4096) else {
            return 5;
        };
        word(&m).store(0xfeed, Ordering::SeqCst);
        let Ok(bell) = EventFd::from_fd(bell) else {
            return 6;
        };
        if bell.write(1).is_err() {
            return 7;
        }
        0
    });
    send_fds(a.as_fd(), b"memf", &[fd.as_fd(), efd.as_fd()]).unwrap();
    // The child's write is announced through the eventfd it received.
    let token = efd
        .read_until(Instant::now() + Duration::from_secs(10))
        .unwrap();
    assert_eq!(token, Some(1));
    assert_eq!(word(&map).load(Ordering::SeqCst), 0xfeed);
    child.assert_success();
}
