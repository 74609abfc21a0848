//! Event-loop integration: a receiver's POSIX mq or eventfd doorbell descriptor, polled with
//! `poll(2)`, becomes readable when a record is sent by another process.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use shmchan::{Channel, Doorbell};
use shmchan_tests::{BackingKind, ChildGuard, Place, Rec};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");

fn readable(fd: std::os::fd::BorrowedFd<'_>, ms: u16) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(ms)).expect("poll") == 1
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
}

#[test]
fn poll_wakes_when_another_process_sends() {
    // The eventfd doorbell reaches the child with the memfd, over a socket it inherits.
    let cases = [
        (BackingKind::SysvKey, Doorbell::PosixMq),
        (BackingKind::Memfd, Doorbell::EventFd),
    ];
    for ((backing, door), kind) in cases
        .into_iter()
        .flat_map(|c| ["spsc", "mpmc"].map(|k| (c, k)))
    {
        let place = Place::new(backing);
        let b = Channel::<Rec>::builder()
            .backing(place.backing.clone())
            .doorbell(door);
        let chan = if kind == "spsc" { b.spsc() } else { b.mpmc() }
            .create()
            .unwrap();
        let mut rx = chan.receiver().unwrap();
        assert!(rx.arm(), "nothing to receive yet: arm");
        let fd = rx
            .doorbell_fd()
            .expect("the doorbell has a descriptor")
            .try_clone_to_owned()
            .unwrap();
        assert!(!readable(fd.as_fd(), 0), "not readable before a send");

        let t0 = Instant::now();
        let args = ["produce", &place.spec, kind, door.name(), "3", "9"];
        let producer = match backing {
            BackingKind::Memfd => ChildGuard::spawn_shared(CHILD, &args, &chan),
            _ => ChildGuard::spawn(CHILD, &args),
        };
        assert!(readable(fd.as_fd(), 10_000), "poll woke up");
        let woke = t0.elapsed();
        assert_eq!(rx.try_recv(), Ok(Rec::new(9, 0)));
        producer.wait_ok(Duration::from_secs(30));
        assert_eq!(rx.try_recv(), Ok(Rec::new(9, 1)));
        assert_eq!(rx.try_recv(), Ok(Rec::new(9, 2)));
        // Disarmed by the receive: the queue holds no stale token.
        assert!(!readable(fd.as_fd(), 0));
        // The sender is gone and the ring drained: arm() says there is no need to wait.
        assert!(!rx.arm());
        assert!(woke < Duration::from_secs(10), "{door}");
    }
}

#[test]
fn other_doorbells_have_no_descriptor() {
    for d in [Doorbell::Futex, Doorbell::SysvSem, Doorbell::SysvMsgQueue] {
        let chan = Channel::<u64>::builder()
            .backing(shmchan::Backing::anonymous())
            .doorbell(d)
            .create()
            .unwrap();
        assert!(chan.receiver().unwrap().doorbell_fd().is_none(), "{d}");
    }
}
