//! The memfd backing and the eventfd doorbell between real processes: a re-exec'ed child
//! receives the channel over a Unix socket it inherited (both directions, eventfd and futex
//! doorbells); hostile hand-offs are refused with clear errors and leak no descriptor; the
//! eventfd doorbell wakes a receiver across `fork`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use shmchan::inspect::{inspect, Inspection};
use shmchan::os::memfd::{add_seals, memfd_create, set_len};
use shmchan::os::{scm, EfdFlags, EventFd, Seals, SharedMapping};
use shmchan::{Backing, Channel, Doorbell, OpenError, RecvTimeoutError};
use shmchan_tests::{unique_name, ChildGuard, Place, Rec, TempPath};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");
const LONG: Duration = Duration::from_secs(120);
const N: u64 = 20_000;

/// A re-exec'ed child that receives the channel on an inherited socket (its number in argv).
fn spawn_peer(role: &str, door: Doorbell, chan: &Channel<Rec>) -> ChildGuard {
    let (here, there) = UnixStream::pair().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&there).to_string();
    let child = ChildGuard::spawn_with_fd(
        CHILD,
        &["memfd-peer", &fd, role, "spsc", door.name(), &N.to_string()],
        &there,
    );
    drop(there);
    chan.share(&here).expect("share");
    child
}

fn memfd_channel(door: Doorbell) -> Channel<Rec> {
    Channel::<Rec>::builder()
        .backing(Backing::memfd(unique_name("peer")))
        .doorbell(door)
        .capacity(4) // small: both sides sleep on the doorbell constantly
        .spsc()
        .create()
        .expect("create")
}

fn child_consumes(door: Doorbell) {
    let chan = memfd_channel(door);
    let child = spawn_peer("receiver", door, &chan);
    let mut tx = chan.sender().unwrap();
    for seq in 0..N {
        tx.send_timeout(Rec::new(3, seq), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("send {seq}: {e}"));
    }
    drop(tx);
    assert_eq!(child.wait_ok(LONG).trim(), format!("received {N}"));
}

fn child_produces(door: Doorbell) {
    let chan = memfd_channel(door);
    let mut rx = chan.receiver().unwrap();
    let child = spawn_peer("sender", door, &chan);
    for seq in 0..N {
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("recv {seq}: {e}"));
        assert!(r.is_valid(), "torn {r:?}");
        assert_eq!(r, Rec::new(3, seq));
    }
    assert_eq!(child.wait_ok(LONG).trim(), format!("sent {N}"));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn child_consumes_memfd_eventfd() {
    child_consumes(Doorbell::EventFd);
}

#[test]
fn child_consumes_memfd_futex() {
    child_consumes(Doorbell::Futex);
}

#[test]
fn child_produces_memfd_eventfd() {
    child_produces(Doorbell::EventFd);
}

#[test]
fn child_produces_memfd_futex() {
    child_produces(Doorbell::Futex);
}

#[test]
fn eventfd_over_fork_wakes_a_blocked_receiver() {
    let out = ChildGuard::spawn(CHILD, &["fork-wake", "eventfd"]).wait_ok(LONG);
    let ms: u64 = out
        .trim()
        .strip_prefix("woken after ")
        .and_then(|s| s.strip_suffix(" ms"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    assert!(ms >= 150, "returned after {ms} ms, before the child sent");
    assert!(ms < 10_000, "woken late: {ms} ms");
}

// ---- hand-offs built by hand (the format is documented in `shmchan::Backing::receive`) ----

fn payload(version: u32, nfds: u32, door: u32, len: u64) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[..8].copy_from_slice(b"SHMCMFD\0");
    p[8..12].copy_from_slice(&version.to_le_bytes());
    p[12..16].copy_from_slice(&nfds.to_le_bytes());
    p[16..20].copy_from_slice(&door.to_le_bytes());
    p[24..32].copy_from_slice(&len.to_le_bytes());
    p
}

/// Sends `bytes` with `fds` and returns what `Backing::receive` makes of it.
fn receive_raw(bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<Backing, OpenError> {
    let (a, b) = UnixStream::pair().unwrap();
    scm::send_fds(a.as_fd(), bytes, fds).unwrap();
    drop(a);
    Backing::receive(&b)
}

/// A sealed memfd of `len` bytes with a unique name.
fn sealed_memfd(len: u64) -> (OwnedFd, String) {
    let name = unique_name("raw");
    let fd = memfd_create(&name).unwrap();
    set_len(fd.as_fd(), len).unwrap();
    add_seals(fd.as_fd(), Seals::SHRINK | Seals::GROW | Seals::SEAL).unwrap();
    (fd, name)
}

/// How many descriptors of this process refer to the memfd called `name`.
fn open_copies(name: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with(&format!("/memfd:{name} ")))
        .count()
}

fn corrupted(r: Result<Backing, OpenError>, what: &str) -> String {
    match r {
        Err(OpenError::Corrupted { reason }) => {
            assert!(
                reason.contains(what),
                "{reason:?} does not mention {what:?}"
            );
            reason
        }
        other => panic!("expected Corrupted ({what}), got {other:?}"),
    }
}

#[test]
fn unsealed_memfd_is_refused() {
    // A memfd holding a valid channel, built by hand, without F_SEAL_SHRINK.
    let b = Channel::<u64>::builder().capacity(8);
    let len = b.segment_len().unwrap();
    let fd = memfd_create(&unique_name("unsealed")).unwrap();
    set_len(fd.as_fd(), len as u64).unwrap();
    let map = SharedMapping::from_fd(fd.as_fd(), len).unwrap();
    // SAFETY: a fresh (zeroed), page-aligned mapping of `len` bytes that outlives the channel
    // (dropped at the end of this block, before `map`).
    let chan = unsafe { b.create_in(map.as_ptr(), len) }.unwrap();
    let r = receive_raw(&payload(1, 1, 1, len as u64), &[fd.as_fd()]);
    match r {
        Err(OpenError::InvalidConfig { reason }) => {
            assert!(reason.contains("F_SEAL_SHRINK"), "{reason}");
            assert!(reason.contains("SIGBUS"), "{reason}");
        }
        other => panic!("expected the unsealed memfd to be refused, got {other:?}"),
    }
    // Sealed afterwards, the same memfd is accepted and opens.
    add_seals(fd.as_fd(), Seals::SHRINK).unwrap();
    let backing = receive_raw(&payload(1, 1, 1, len as u64), &[fd.as_fd()]).unwrap();
    let peer = Channel::<u64>::builder().backing(backing).open().unwrap();
    chan.sender().unwrap().send(11).unwrap();
    assert_eq!(peer.receiver().unwrap().recv(), Ok(11));
    drop((peer, chan));
}

#[test]
fn hostile_handoffs_are_refused() {
    let (fd, name) = sealed_memfd(4096);
    let m = fd.as_fd();
    let good = payload(1, 1, 1, 4096);

    let mut bad_magic = good;
    bad_magic[0] = b'X';
    corrupted(receive_raw(&bad_magic, &[m]), "magic");
    corrupted(receive_raw(&payload(2, 1, 1, 4096), &[m]), "version 2");
    corrupted(
        receive_raw(&payload(1, 1, 99, 4096), &[m]),
        "doorbell code 99",
    );
    // Wrong descriptor counts: fewer than announced, more than announced, none at all.
    corrupted(receive_raw(&payload(1, 2, 1, 4096), &[m]), "announces 2");
    corrupted(receive_raw(&good, &[m, m]), "2 descriptor(s) arrived");
    corrupted(receive_raw(&good, &[]), "0 descriptor(s) arrived");
    // More than any hand-off carries: refused while receiving, and all of them closed.
    corrupted(receive_raw(&good, &[m, m, m, m, m]), "expected at most 3");
    // The eventfd doorbell needs three descriptors, and they must be non-blocking
    // semaphore eventfds.
    corrupted(receive_raw(&payload(1, 1, 8, 4096), &[m]), "needs 3");
    corrupted(
        receive_raw(&payload(1, 3, 8, 4096), &[m, m, m]),
        "not an eventfd",
    );
    let blocking = EventFd::new(0, EfdFlags::empty()).unwrap();
    corrupted(
        receive_raw(
            &payload(1, 3, 8, 4096),
            &[m, blocking.as_fd(), blocking.as_fd()],
        ),
        "flags",
    );
    // Not a memfd as the memory; a size other than the announced one.
    let efd = EventFd::new(0, EfdFlags::empty()).unwrap();
    corrupted(receive_raw(&good, &[efd.as_fd()]), "not a memfd");
    corrupted(
        receive_raw(&payload(1, 1, 1, 8192), &[m]),
        "8192 bytes, the memfd holds 4096",
    );
    // A short payload, then the peer goes away.
    corrupted(receive_raw(&good[..10], &[m]), "after 10 of 32 bytes");
    // A memfd that is not a channel: received, then refused on open.
    let junk = receive_raw(&good, &[m]).unwrap();
    let r = Channel::<u64>::builder()
        .backing(junk)
        .open_timeout(Duration::from_millis(50))
        .open();
    assert!(
        matches!(
            r,
            // A header of zeros is not a channel (it was "not ready" until open said so).
            Err(OpenError::Foreign { .. } | OpenError::Corrupted { .. })
        ),
        "a zero-filled memfd opened: {r:?}"
    );
    // No descriptor of the memfd is left behind by any of the refusals.
    assert_eq!(open_copies(&name), 1, "a received descriptor leaked");
}

#[test]
fn receive_reports_a_closed_socket_and_its_timeout() {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    match Backing::receive(&b) {
        Err(OpenError::Os(e)) => {
            assert_eq!(e.kind(), shmchan::os::ErrorKind::WouldBlock, "{e}");
            assert!(e.to_string().contains("read timeout"), "{e}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(a);
    assert!(matches!(
        Backing::receive(&b),
        Err(OpenError::NotFound { what }) if what.contains("closed")
    ));
}

#[test]
fn eventfd_needs_descriptors() {
    let file = TempPath::new("efd");
    let key = Place::new(shmchan_tests::BackingKind::SysvKey);
    for backing in [
        Backing::file(file.path()),
        key.backing.clone(),
        Backing::sysv_private(),
    ] {
        match Channel::<u64>::builder()
            .backing(backing.clone())
            .doorbell(Doorbell::EventFd)
            .create()
        {
            Err(OpenError::InvalidConfig { reason }) => {
                assert!(reason.contains("eventfd"), "{reason}");
                assert!(reason.contains("descriptor"), "{reason}");
            }
            other => panic!("{backing}: expected InvalidConfig, got {other:?}"),
        }
    }
    assert!(!file.path().exists(), "a refused creation left its file");
    // Caller-provided memory: refused too.
    let b = Channel::<u64>::builder().doorbell(Doorbell::EventFd);
    let len = b.segment_len().unwrap();
    let map = SharedMapping::anonymous(len).unwrap();
    // SAFETY: a fresh zeroed mapping of `len` bytes that outlives the (refused) channel.
    let r = unsafe { b.create_in(map.as_ptr(), len) };
    assert!(matches!(r, Err(OpenError::InvalidConfig { .. })), "{r:?}");

    // A memfd channel with the eventfd doorbell, handed over without its eventfds (the
    // payload claims futex): the opener has no descriptors and says so.
    let chan = Channel::<u64>::builder()
        .backing(Backing::memfd(unique_name("nobell")))
        .doorbell(Doorbell::EventFd)
        .create()
        .unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    chan.share(&a).unwrap();
    let mut buf = [0u8; 32];
    let got = scm::recv_fds(b.as_fd(), &mut buf, 3).unwrap();
    assert_eq!((got.bytes, got.fds.len()), (32, 3));
    let len = u64::from_le_bytes(buf[24..32].try_into().unwrap());
    let stripped = receive_raw(&payload(1, 1, 1, len), &[got.fds[0].as_fd()]).unwrap();
    match Channel::<u64>::builder().backing(stripped).open() {
        Err(OpenError::InvalidConfig { reason }) => {
            assert!(reason.contains("eventfd doorbell"), "{reason}");
            assert!(reason.contains("did not come with the memfd"), "{reason}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn share_needs_a_memfd() {
    let (a, _b) = UnixStream::pair().unwrap();
    let anon = Channel::<u64>::builder()
        .doorbell(Doorbell::EventFd)
        .create()
        .unwrap();
    match anon.share(&a) {
        Err(OpenError::InvalidConfig { reason }) => assert!(reason.contains("memfd"), "{reason}"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    // A closed peer: an error, not SIGPIPE.
    let chan = Channel::<u64>::builder()
        .backing(Backing::memfd(unique_name("closed")))
        .create()
        .unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    assert!(matches!(chan.share(&a), Err(OpenError::Os(_))));
}

#[test]
fn received_channels_can_be_passed_on_inspected_not_removed() {
    let chan = Channel::<u64>::builder()
        .backing(Backing::memfd(unique_name("relay")))
        .doorbell(Doorbell::EventFd)
        .mpmc()
        .create()
        .unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    chan.share(&a).unwrap();
    let first = Backing::receive(&b).unwrap();
    let relay = Channel::<u64>::builder()
        .backing(first.clone())
        .open()
        .unwrap();
    relay.share(&a).unwrap(); // passed on by a process that only received it
    let second = Backing::receive(&b).unwrap();
    let mut rx = Channel::<u64>::builder()
        .backing(second.clone())
        .open_receiver()
        .unwrap();
    chan.sender().unwrap().send(5).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(5));

    let Inspection::Channel(info) = inspect(&second).unwrap() else {
        panic!("not a channel")
    };
    assert_eq!(info.doorbell, Ok(Doorbell::EventFd));
    assert_eq!(info.live_receivers, 1);
    assert!(matches!(
        shmchan::remove(&second),
        Err(OpenError::InvalidConfig { reason }) if reason.contains("nothing to remove")
    ));
    assert!(matches!(
        shmchan::remove(&Backing::memfd("x")),
        Err(OpenError::InvalidConfig { .. })
    ));
    // A new memfd is for creating; a received one for opening.
    assert!(matches!(
        Channel::<u64>::builder()
            .backing(Backing::memfd("x"))
            .open(),
        Err(OpenError::InvalidConfig { .. })
    ));
    assert!(matches!(
        Channel::<u64>::builder().backing(first).create(),
        Err(OpenError::InvalidConfig { .. })
    ));
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
        .expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}

/// Somebody with the doorbell's descriptor writes a huge token count to it: every wait would
/// wake at once for nothing. A waiter stops trusting such a doorbell after a few dozen empty
/// wake-ups and looks once per time slice instead: it still times out on time, and still
/// receives, without burning a core.
#[test]
fn a_flooded_eventfd_does_not_make_waiters_spin() {
    use std::os::fd::AsRawFd;
    let chan = Channel::<Rec>::builder()
        .backing(Backing::anonymous())
        .doorbell(Doorbell::EventFd)
        .create()
        .expect("create");
    let mut tx = chan.sender().unwrap();
    let rx = chan.receiver().unwrap();
    let mut rx = shmchan::Pollable::new(rx).map_err(|(_, e)| e).unwrap();
    // The hostile write: the most an eventfd holds.
    let flood = (u64::MAX - 1).to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to a descriptor this test owns (a dup).
    let n = unsafe { libc::write(rx.as_raw_fd(), flood.as_ptr().cast(), 8) };
    assert_eq!(n, 8);
    let (t0, c0) = (std::time::Instant::now(), thread_cpu());
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(600)),
        Err(RecvTimeoutError::Timeout)
    );
    let (wall, cpu) = (t0.elapsed(), thread_cpu() - c0);
    assert!(wall < Duration::from_secs(3), "timed out late: {wall:?}");
    assert!(
        cpu < wall / 2,
        "the wait burned {cpu:?} of CPU in {wall:?} of wall time"
    );
    tx.send(Rec::new(1, 7)).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Rec::new(1, 7)));
}
