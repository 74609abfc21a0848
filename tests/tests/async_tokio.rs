//! The `tokio` feature: async endpoints woken by real peer processes, on a real runtime.

use std::time::{Duration, Instant};

use shmchan::inspect::{inspect, Inspection};
use shmchan::tokio::{AsyncReceiver, AsyncSender};
use shmchan::{Bytes, Channel, Doorbell, RecvError, RingKind};
use shmchan_tests::{byte_message, kind_name, BackingKind, ChildGuard, Place, Rec};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");

fn receiver_sleeps(place: &Place) -> u64 {
    match inspect(&place.backing).expect("inspect") {
        Inspection::Channel(info) => info.receiver_sleeps,
        other => panic!("{other:?}"),
    }
}

/// An async receiver sleeps on the doorbell descriptor (no thread parked) and is woken by each
/// send of another process; then it sees the process's departure as `Disconnected`.
async fn wakes_on_sends(backing: BackingKind, kind: RingKind) {
    const N: u64 = 8;
    let place = Place::new(backing);
    let b = Channel::<Rec>::builder()
        .doorbell(Doorbell::PosixMq)
        .capacity(4)
        .backing(place.backing.clone());
    let b = if kind == RingKind::Mpmc {
        b.mpmc()
    } else {
        b.spsc()
    };
    let mut rx = AsyncReceiver::new(b.create_receiver().expect("create"))
        .map_err(|(_, e)| e)
        .expect("async receiver");
    let n = N.to_string();
    let args = [
        "trickle",
        &place.spec,
        kind_name(kind),
        "posix-mq",
        &n,
        "20",
        "rec",
    ];
    let child = ChildGuard::spawn(CHILD, &args);
    for i in 0..N {
        let r = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("woken within 10 s");
        assert_eq!(r, Ok(Rec::new(1, i)));
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await,
        Ok(Err(RecvError::Disconnected))
    );
    child.wait_ok(Duration::from_secs(10));
    let slept = receiver_sleeps(&place);
    assert!(slept >= N / 2, "the receiver slept only {slept} times");
}

#[tokio::test(flavor = "current_thread")]
async fn async_receiver_wakes_on_sends_from_another_process_sysv_spsc() {
    wakes_on_sends(BackingKind::SysvKey, RingKind::Spsc).await;
}

#[tokio::test(flavor = "current_thread")]
async fn async_receiver_wakes_on_sends_from_another_process_file_mpmc() {
    wakes_on_sends(BackingKind::File, RingKind::Mpmc).await;
}

/// Three byte channels, three producer processes, one thread: each channel is one task.
#[tokio::test(flavor = "current_thread")]
async fn one_task_per_channel_on_one_thread() {
    const N: u64 = 20;
    let mut tasks = Vec::new();
    let mut guards = Vec::new();
    for _ in 0..3 {
        let place = Place::new(BackingKind::File);
        let rx = Channel::<Bytes>::builder()
            .doorbell(Doorbell::PosixMq)
            .max_message(192)
            .capacity(4)
            .backing(place.backing.clone())
            .create_receiver()
            .expect("create");
        let mut rx = AsyncReceiver::new(rx).map_err(|(_, e)| e).expect("async");
        let n = N.to_string();
        let args = ["trickle", &place.spec, "spsc", "posix-mq", &n, "5", "bytes"];
        guards.push((ChildGuard::spawn(CHILD, &args), place));
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::new();
            for i in 0..N {
                rx.recv_into(&mut buf).await.expect("recv");
                assert_eq!(buf, byte_message(i, 192), "message {i}");
            }
            assert_eq!(rx.recv().await, Err(RecvError::Disconnected));
            std::thread::current().id()
        }));
    }
    let me = std::thread::current().id();
    for t in tasks {
        let ran_on = tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("in time")
            .expect("task");
        assert_eq!(
            ran_on, me,
            "every channel's task ran on the one runtime thread"
        );
    }
    for (child, _place) in guards {
        child.wait_ok(Duration::from_secs(10));
    }
}

/// An async sender facing a full ring waits for room that a consumer process frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_sender_waits_for_room_freed_by_another_process() {
    const N: u64 = 3_000;
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let place = Place::new(BackingKind::SysvKey);
        let b = Channel::<Bytes>::builder()
            .doorbell(Doorbell::PosixMq)
            .max_message(96)
            .capacity(2)
            .backing(place.backing.clone());
        let b = if kind == RingKind::Mpmc {
            b.mpmc()
        } else {
            b.spsc()
        };
        let mut tx = AsyncSender::new(b.create_sender().expect("create"))
            .map_err(|(_, e)| e)
            .expect("async sender");
        let n = N.to_string();
        let args = [
            "bytes-consume",
            &place.spec,
            kind_name(kind),
            "posix-mq",
            &n,
        ];
        let child = ChildGuard::spawn(CHILD, &args);
        for i in 0..N {
            tokio::time::timeout(Duration::from_secs(10), tx.send(&byte_message(i, 96)))
                .await
                .expect("room within 10 s")
                .expect("send");
        }
        let out = child.wait_ok(Duration::from_secs(30));
        assert!(out.contains(&format!("received {N}")), "{out}");
    }
}

/// A waiting async receiver notices a peer process killed with SIGKILL (no goodbye) within a
/// few time slices.
#[tokio::test(flavor = "current_thread")]
async fn async_receiver_notices_a_killed_sender() {
    let place = Place::new(BackingKind::File);
    let rx = Channel::<Rec>::builder()
        .doorbell(Doorbell::PosixMq)
        .backing(place.backing.clone())
        .create_receiver()
        .expect("create");
    let mut rx = AsyncReceiver::new(rx).map_err(|(_, e)| e).expect("async");
    let args = ["hold", &place.spec, "spsc", "posix-mq", "sender"];
    let mut child = ChildGuard::spawn(CHILD, &args);
    assert_eq!(child.read_line(), "ready");
    let t0 = Instant::now();
    let waiting = tokio::spawn(async move { rx.recv().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    child.kill9();
    let r = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("noticed within 5 s")
        .expect("task");
    assert_eq!(r, Err(RecvError::Disconnected));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

/// A re-exec'ed peer that receives a memfd channel (EventFd doorbell) on an inherited socket.
fn eventfd_peer(role: &str, n: u64, chan: &Channel<Rec>) -> ChildGuard {
    use std::os::fd::AsRawFd;
    let (here, there) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let fd = there.as_raw_fd().to_string();
    let child = ChildGuard::spawn_with_fd(
        CHILD,
        &["memfd-peer", &fd, role, "spsc", "eventfd", &n.to_string()],
        &there,
    );
    drop(there);
    chan.share(&here).expect("share");
    child
}

fn eventfd_channel() -> Channel<Rec> {
    Channel::<Rec>::builder()
        .backing(shmchan::Backing::memfd(shmchan_tests::unique_name("async")))
        .doorbell(Doorbell::EventFd)
        .capacity(4)
        .create()
        .expect("create")
}

/// The eventfd doorbell, passed with a memfd to an unrelated process: the async receiver and
/// the async sender both wait on eventfds that the peer process rings.
#[tokio::test(flavor = "current_thread")]
async fn async_endpoints_over_memfd_and_eventfd() {
    const N: u64 = 5_000;
    let chan = eventfd_channel();
    let mut rx = AsyncReceiver::new(chan.receiver().expect("receiver"))
        .map_err(|(_, e)| e)
        .expect("async receiver");
    let child = eventfd_peer("sender", N, &chan);
    for seq in 0..N {
        let r = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("in time");
        assert_eq!(r, Ok(Rec::new(3, seq)));
    }
    assert_eq!(rx.recv().await, Err(RecvError::Disconnected));
    assert_eq!(
        child.wait_ok(Duration::from_secs(30)).trim(),
        format!("sent {N}")
    );

    let chan = eventfd_channel();
    let mut tx = AsyncSender::new(chan.sender().expect("sender"))
        .map_err(|(_, e)| e)
        .expect("async sender");
    let child = eventfd_peer("receiver", N, &chan);
    for seq in 0..N {
        tokio::time::timeout(Duration::from_secs(10), tx.send(Rec::new(3, seq)))
            .await
            .expect("in time")
            .expect("send");
    }
    drop(tx);
    assert_eq!(
        child.wait_ok(Duration::from_secs(30)).trim(),
        format!("received {N}")
    );
}

/// A flooded eventfd (somebody wrote a huge token count to it) must not make an async
/// receiver spin. (The reactor's readiness is edge-triggered: once a wake-up brought nothing,
/// the still-readable descriptor does not wake the task again until the next time slice.)
#[tokio::test(flavor = "current_thread")]
async fn a_flooded_eventfd_does_not_make_an_async_receiver_spin() {
    use std::os::fd::AsRawFd;
    let cpu = || {
        let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
            .expect("getrusage");
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        tv(u.user_time()) + tv(u.system_time())
    };
    let chan = Channel::<Rec>::builder()
        .backing(shmchan::Backing::anonymous())
        .doorbell(Doorbell::EventFd)
        .create()
        .expect("create");
    let mut tx = chan.sender().unwrap();
    let rx = chan.receiver().unwrap();
    let p = shmchan::Pollable::new(rx).map_err(|(_, e)| e).unwrap();
    let flood = (u64::MAX - 1).to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to a descriptor this test owns (a dup).
    let n = unsafe { libc::write(p.as_raw_fd(), flood.as_ptr().cast(), 8) };
    assert_eq!(n, 8);
    let mut rx = AsyncReceiver::new(p.into_inner())
        .map_err(|(_, e)| e)
        .unwrap();
    let (t0, c0) = (Instant::now(), cpu());
    assert!(tokio::time::timeout(Duration::from_millis(600), rx.recv())
        .await
        .is_err());
    let (wall, used) = (t0.elapsed(), cpu() - c0);
    assert!(
        used < wall / 2,
        "the wait burned {used:?} of CPU in {wall:?}"
    );
    tx.send(Rec::new(1, 9)).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(r, Ok(Ok(Rec::new(1, 9))));
}
