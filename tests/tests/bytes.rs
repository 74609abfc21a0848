//! Byte channels beyond the conformance matrix: across real processes (including a producer
//! killed with SIGKILL), fingerprints against typed channels, and hostile frame lengths.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::time::Duration;

use shmchan::{Bytes, Channel, Doorbell, OpenError, RecvTimeoutError, TryRecvError};
use shmchan_tests::{byte_message, kind_name, BackingKind, ChildGuard, Place, Rec};

const CHILD: &str = env!("CARGO_BIN_EXE_shmchan-test-child");
const MAX: usize = 1000;

fn across_processes(backing: BackingKind, door: Doorbell, kind: shmchan::RingKind) {
    const N: u64 = 20_000;
    let place = Place::new(backing);
    let b = Channel::<Bytes>::builder()
        .capacity(16)
        .max_message(MAX)
        .doorbell(door)
        .backing(place.backing.clone());
    let b = if kind == shmchan::RingKind::Mpmc {
        b.mpmc()
    } else {
        b.spsc()
    };
    // Parent receives what a child sends...
    let mut rx = b.create_receiver().expect("create");
    let n = N.to_string();
    let args = [
        "bytes-produce",
        &place.spec,
        kind_name(kind),
        door.name(),
        &n,
    ];
    let child = ChildGuard::spawn(CHILD, &args);
    let mut buf = Vec::new();
    for i in 0..N {
        rx.recv_into_deadline(
            &mut buf,
            std::time::Instant::now() + Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(buf, byte_message(i, MAX), "message {i}");
    }
    child.wait_ok(Duration::from_secs(30));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
    drop(rx);
    // ...and a child receives what the parent sends (the channel is opened afresh).
    let place = Place::new(backing);
    let b = Channel::<Bytes>::builder()
        .capacity(16)
        .max_message(MAX)
        .doorbell(door)
        .backing(place.backing.clone());
    let mut tx = b.create_sender().expect("create");
    let args = [
        "bytes-consume",
        &place.spec,
        kind_name(kind),
        door.name(),
        &n,
    ];
    let child = ChildGuard::spawn(CHILD, &args);
    for i in 0..N {
        let m = byte_message(i, MAX);
        let mut g = tx.reserve(m.len()).expect("reserve");
        g.copy_from_slice(&m);
        g.commit();
    }
    let out = child.wait_ok(Duration::from_secs(30));
    assert!(out.contains(&format!("received {N}")), "{out}");
}

#[test]
fn bytes_across_processes_sysv_futex() {
    across_processes(
        BackingKind::SysvKey,
        Doorbell::Futex,
        shmchan::RingKind::Spsc,
    );
}

#[test]
fn bytes_across_processes_file_posix_mq_mpmc() {
    across_processes(
        BackingKind::File,
        Doorbell::PosixMq,
        shmchan::RingKind::Mpmc,
    );
}

#[test]
fn bytes_across_processes_sysv_sem_mpmc() {
    across_processes(
        BackingKind::SysvKey,
        Doorbell::SysvSem,
        shmchan::RingKind::Mpmc,
    );
}

/// A byte producer killed with SIGKILL mid-stream: the receiver keeps every whole message in
/// order, never a torn one, and then sees the channel disconnected.
#[test]
fn killed_byte_producer_leaves_whole_messages() {
    for kind in [shmchan::RingKind::Spsc, shmchan::RingKind::Mpmc] {
        let place = Place::new(BackingKind::File);
        let b = Channel::<Bytes>::builder()
            .capacity(8)
            .max_message(MAX)
            .backing(place.backing.clone());
        let b = if kind == shmchan::RingKind::Mpmc {
            b.mpmc()
        } else {
            b.spsc()
        };
        let mut rx = b.create_receiver().expect("create");
        let args = [
            "bytes-produce",
            &place.spec,
            kind_name(kind),
            "futex",
            "forever",
        ];
        let mut child = ChildGuard::spawn(CHILD, &args);
        assert_eq!(child.read_line(), "ready");
        let mut buf = Vec::new();
        for i in 0..2_000 {
            rx.recv_into(&mut buf).expect("recv");
            assert_eq!(buf, byte_message(i, MAX), "message {i}");
        }
        child.kill9();
        let mut i = 2_000;
        loop {
            match rx.recv_into_deadline(
                &mut buf,
                std::time::Instant::now() + Duration::from_secs(10),
            ) {
                Ok(_) => {
                    assert_eq!(buf, byte_message(i, MAX), "message {i} after the kill");
                    i += 1;
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("{kind:?}: {e} after {i} messages"),
            }
        }
    }
}

#[test]
fn byte_and_typed_channels_do_not_open_each_other() {
    let place = Place::new(BackingKind::File);
    let _bytes = Channel::<Bytes>::builder()
        .max_message(64)
        .backing(place.backing.clone())
        .create()
        .expect("create");
    let typed = Channel::<Rec>::builder()
        .backing(place.backing.clone())
        .open();
    assert!(
        matches!(typed, Err(OpenError::TypeMismatch { .. })),
        "{typed:?}"
    );
    let other_max = Channel::<Bytes>::builder()
        .max_message(128)
        .backing(place.backing.clone())
        .open();
    let Err(e) = other_max else {
        panic!("a different maximum opened")
    };
    assert!(matches!(e, OpenError::TypeMismatch { .. }), "{e}");
    let other_protocol = Channel::<Bytes>::builder()
        .type_name("my.rpc")
        .backing(place.backing.clone())
        .open();
    assert!(matches!(
        other_protocol,
        Err(OpenError::TypeMismatch { .. })
    ));
    let adopted = Channel::<Bytes>::builder()
        .backing(place.backing.clone())
        .open()
        .expect("open");
    assert_eq!(adopted.max_message(), 64);
}

/// A byte channel's slots hold the message alone, so a byte channel of 64-byte messages has
/// the record size of a `[u64; 8]`: opened as that record under the same name, it is refused
/// (its lengths live in a lane that a typed reader would ignore), and the other way round: a
/// typed channel is not opened as a byte channel even when its name and size would do.
#[test]
fn a_byte_channel_is_not_a_typed_record_of_its_slot_size() {
    let place = Place::new(BackingKind::File);
    let bytes = Channel::<Bytes>::builder()
        .type_name("proto")
        .max_message(64)
        .backing(place.backing.clone())
        .create()
        .expect("create");
    let typed = Channel::<[u64; 8]>::builder()
        .type_name("proto")
        .backing(place.backing.clone())
        .open();
    let Err(e) = typed else {
        panic!("a byte channel opened as [u64; 8]")
    };
    assert!(matches!(e, OpenError::TypeMismatch { .. }), "{e}");
    assert!(e.to_string().contains("byte messages"), "{e}");
    drop(bytes);
    shmchan::remove(&place.backing).unwrap();
    let _typed = Channel::<[u64; 8]>::builder()
        .type_name("proto")
        .backing(place.backing.clone())
        .create()
        .expect("create");
    let bytes = Channel::<Bytes>::builder()
        .type_name("proto")
        .backing(place.backing.clone())
        .open();
    assert!(
        matches!(bytes, Err(OpenError::TypeMismatch { .. })),
        "{bytes:?}"
    );
}

/// A byte channel says so in its extension area's version (2: lengths in a lane). One that
/// says 1, as a byte channel made when lengths sat in the slots did, is refused rather than
/// read with lengths that are not there; an unknown version is a version error.
#[test]
fn a_byte_channel_of_another_layout_is_refused() {
    let b = || Channel::<Bytes>::builder().capacity(4).max_message(32);
    let len = b().segment_len().unwrap();
    let layout = Layout::from_size_align(len, 128).unwrap();
    // SAFETY: a non-zero size.
    let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
    {
        // SAFETY: zeroed, 128-aligned, `len` bytes, freed after the channels below.
        let chan = unsafe { b().create_in(mem, len) }.expect("create_in");
        let (ext, _) = ext_area(mem);
        // SAFETY: the extension area's version word (at 8 in it), 4-aligned; the test plays
        // another build's creator.
        let version = unsafe { mem.as_ptr().add(ext + 8).cast::<u32>() };
        // SAFETY: as above.
        assert_eq!(unsafe { version.read() }, 2, "a byte channel's version");
        for (v, want) in [(1u32, "type"), (3, "version")] {
            // SAFETY: as above.
            unsafe { version.write(v) };
            // SAFETY: the same allocation, alive until after this channel is dropped.
            let r = unsafe { b().open_in(mem, len) };
            let Err(e) = r else {
                panic!("version {v} opened")
            };
            match want {
                "type" => assert!(matches!(e, OpenError::TypeMismatch { .. }), "{v}: {e}"),
                _ => assert!(matches!(e, OpenError::Version { found: 3, .. }), "{v}: {e}"),
            }
        }
        // SAFETY: as above.
        unsafe { version.write(2) };
        // SAFETY: as above.
        let again = unsafe { b().open_in(mem, len) }.expect("version 2 opens");
        let (mut tx, mut rx) = (chan.sender().unwrap(), again.receiver().unwrap());
        tx.send(b"still one channel").unwrap();
        assert_eq!(rx.try_recv().unwrap(), b"still one channel");
    }
    // SAFETY: allocated above with this layout; the channels are dropped.
    unsafe { dealloc(mem.as_ptr(), layout) };
}

/// The offset and length of the ring's extension area in a segment at `mem` (the ring header
/// holds them at 56 and 64).
fn ext_area(mem: NonNull<u8>) -> (usize, usize) {
    // SAFETY: the header's words, inside the caller's allocation (a segment), 8-aligned, not
    // written concurrently.
    unsafe {
        let h = mem.as_ptr().cast::<u64>();
        (h.add(7).read() as usize, h.add(8).read() as usize)
    }
}

/// Finds `needle` in `len` bytes at `base`.
fn find(base: NonNull<u8>, len: usize, needle: &[u8]) -> usize {
    // SAFETY: the test's own allocation of `len` bytes, not written concurrently.
    let hay = unsafe { std::slice::from_raw_parts(base.as_ptr(), len) };
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("the message is in the segment")
}

/// A peer that writes a bad length into the lane makes the receive report `Corrupted`;
/// nothing is read outside the slot, and the next message is delivered normally.
#[test]
fn hostile_message_length_is_reported() {
    for kind in ["spsc", "mpmc"] {
        let b = Channel::<Bytes>::builder().capacity(4).max_message(32);
        let b = if kind == "mpmc" { b.mpmc() } else { b.spsc() };
        let len = b.segment_len().unwrap();
        let layout = Layout::from_size_align(len, 128).unwrap();
        // SAFETY: a non-zero size.
        let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
        {
            // SAFETY: zeroed, 128-aligned, `len` bytes, freed after the channel below.
            let chan = unsafe { b.create_in(mem, len) }.expect("create_in");
            let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
            // The lane: the last line of the ring's extension area (4 slots of 4 bytes).
            let (ext, ext_len) = ext_area(mem);
            let lane = ext + ext_len - 128;
            for (pos, marker, how) in [(0, &b"MARKER-A"[..], "recv"), (2, &b"MARKER-B"[..], "peek")]
            {
                tx.send(marker).unwrap();
                // SAFETY: the message's lane entry, inside the allocation, 4-aligned.
                let entry = unsafe { mem.as_ptr().add(lane + pos * 4).cast::<u32>() };
                // SAFETY: as above; nothing writes it meanwhile. The test checks it is the
                // message's entry (it says the marker's length).
                let was = unsafe { entry.read() };
                assert_eq!(was, marker.len() as u32, "{kind}: the lane");
                find(mem, len, marker);
                // SAFETY: as above; the test plays the hostile peer writing a length beyond
                // the slot.
                unsafe { entry.write(1 << 20) };
                let r = if how == "recv" {
                    rx.try_recv().map(|_| ())
                } else {
                    rx.try_peek().map(|_| ())
                };
                assert_eq!(r, Err(TryRecvError::Corrupted), "{kind} {how}");
                tx.send(b"fine").unwrap();
                assert_eq!(rx.try_recv().unwrap(), b"fine", "{kind} {how}");
            }
        }
        // SAFETY: allocated above with this layout; the channel is dropped.
        unsafe { dealloc(mem.as_ptr(), layout) };
    }
}

/// Byte-channel workers killed while each holds a message in a zero-copy guard: a survivor
/// adopts both and hands them back to the ring, so each message reaches a receiver intact,
/// even though the survivor that adopted them is dropped after receiving only one.
#[test]
fn dead_byte_workers_messages_are_redelivered_whole() {
    for d in [Doorbell::Futex, Doorbell::SysvSem] {
        let place = Place::new(BackingKind::SysvKey);
        let chan = Channel::<Bytes>::builder()
            .capacity(4)
            .max_message(MAX)
            .mpmc()
            .doorbell(d)
            .backing(place.backing.clone())
            .create()
            .unwrap();
        let mut tx = chan.sender().unwrap();
        let mut workers = Vec::new();
        // Messages 1 and 2 (message 0 is empty; these have lengths 7919 % 1001 and twice that).
        for i in 1..=2u64 {
            let m = byte_message(i, MAX);
            tx.send(&m).unwrap();
            let mut w = ChildGuard::spawn(CHILD, &["bytes-peek-and-hang", &place.spec, d.name()]);
            assert_eq!(w.read_line(), format!("peeked {}", m.len()), "{d}");
            workers.push(w);
        }
        for w in workers {
            w.kill9();
        }
        let mut got = Vec::new();
        let mut a = chan.receiver().unwrap();
        got.push(a.recv_timeout(Duration::from_secs(10)).unwrap());
        drop(a);
        let mut b = chan.receiver().unwrap();
        let second = b.recv_timeout(Duration::from_secs(5));
        got.push(second.unwrap_or_else(|e| panic!("{d}: the other adopted message: {e}")));
        got.sort_by_key(Vec::len);
        let mut want = vec![byte_message(1, MAX), byte_message(2, MAX)];
        want.sort_by_key(Vec::len);
        assert!(got == want, "{d}: the adopted messages, whole");
        assert_eq!(b.try_recv(), Err(TryRecvError::Empty), "{d}");
    }
}

/// Every builder form works for byte channels as for typed ones (these were the byte
/// channel's own builder examples before the builder was written once for every record
/// kind): create or open a sender or receiver by path, open adopting the creator's maximum,
/// and reject memory that holds no channel.
#[test]
fn builder_forms_for_byte_channels() {
    use shmchan::Backing;
    use shmchan_tests::TempPath;

    let p = TempPath::new("bytes-forms");
    let file = || Backing::file(p.path());
    let mut tx = Channel::<Bytes>::builder()
        .backing(file())
        .create_sender()
        .unwrap();
    let mut rx = Channel::<Bytes>::builder()
        .backing(file())
        .open_receiver()
        .unwrap();
    tx.send(b"x").unwrap();
    assert_eq!(rx.recv().unwrap(), b"x");
    drop((tx, rx));
    shmchan::remove(&file()).unwrap();

    let mut rx = Channel::<Bytes>::builder()
        .backing(file())
        .create_receiver()
        .unwrap();
    let mut tx = Channel::<Bytes>::builder()
        .backing(file())
        .open_sender()
        .unwrap();
    tx.send(b"y").unwrap();
    assert_eq!(rx.recv().unwrap(), b"y");
    drop((tx, rx));
    shmchan::remove(&file()).unwrap();

    let created = Channel::<Bytes>::builder()
        .max_message(64)
        .backing(file())
        .create()
        .unwrap();
    let opened = Channel::<Bytes>::builder().backing(file()).open().unwrap();
    assert_eq!(opened.max_message(), 64);
    let mismatch = Channel::<Bytes>::builder()
        .max_message(32)
        .backing(file())
        .open();
    assert!(
        matches!(mismatch, Err(OpenError::TypeMismatch { .. })),
        "{mismatch:?}"
    );
    drop((created, opened));
    shmchan::remove(&file()).unwrap();

    let layout = Layout::from_size_align(4096, 128).unwrap();
    // SAFETY: a non-zero size.
    let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
    // SAFETY: `mem` is 4096 zeroed, 128-aligned bytes that outlive the attempt.
    let r = unsafe { Channel::<Bytes>::builder().open_in(mem, 4096) };
    assert!(r.is_err(), "zeroes are not a channel");
    // SAFETY: allocated above with this layout; nothing refers to it any more.
    unsafe { dealloc(mem.as_ptr(), layout) };
}

/// `recv_into` gives every length exactly, whatever room the buffer has: none, less than the
/// message, the message's words, the channel's maximum, more; and it never reallocates a
/// buffer that already has room for the message.
#[test]
fn recv_into_fills_buffers_of_every_capacity() {
    const MAX: usize = 21; // slots hold 24 bytes: the maximum reported is 24
    let chan = Channel::<Bytes>::builder()
        .max_message(MAX)
        .capacity(4)
        .create()
        .expect("create");
    let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
    let max = rx.max_message();
    assert_eq!(max % 8, 0);
    for cap in [0, 3, 8, 16, 17, max - 1, max, max + 8, 100] {
        for len in 0..=max {
            let msg: Vec<u8> = (0..len).map(|i| (i * 31 + len * 7 + cap) as u8).collect();
            tx.try_send(&msg).unwrap();
            let mut buf: Vec<u8> = Vec::with_capacity(cap);
            // Garbage the receive must not keep.
            buf.extend(std::iter::repeat_n(0xAA, cap.min(5)));
            let (ptr, had) = (buf.as_ptr(), buf.capacity());
            assert_eq!(rx.try_recv_into(&mut buf), Ok(len), "cap {cap}, len {len}");
            assert_eq!(buf, msg, "cap {cap}, len {len}");
            if had >= len {
                assert_eq!(
                    (buf.as_ptr(), buf.capacity()),
                    (ptr, had),
                    "cap {cap}, len {len}"
                );
            }
        }
    }
}
