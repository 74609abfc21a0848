//! Operating a channel: each endpoint's counters in the segment (every path that moves a
//! record counts), iterators that say why they ended when a peer corrupts the segment, and
//! the byte channel's batch receive, which allocates nothing per message — on real
//! file-backed channels, corrupted by writing to the file as a hostile peer would.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use shmchan::inspect::{inspect, EndpointInfo, Inspection};
use shmchan::{Backing, Bytes, Channel, RecvError, RingKind, TryRecvError};
use shmchan_tests::TempPath;

/// Counts the allocations of the current thread (tests run on threads of their own).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; the count is a thread-local `Cell` with a const
// initialiser and no destructor, which allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Runs `f` on a thread of its own and fails (instead of hanging) if it takes longer than
/// `limit`.
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("the operation did not end (a corrupted segment must end it)")
}

/// Zeroes the ring header's magic in the channel file, as a peer with access to it could.
fn corrupt_header(path: &Path) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[0u8; 8], 0).unwrap();
}

fn endpoints(b: &Backing) -> Vec<EndpointInfo> {
    let Inspection::Channel(i) = inspect(b).unwrap() else {
        panic!("not a channel")
    };
    i.endpoints
}

fn counts(b: &Backing, role: &str) -> (u64, u64, u64) {
    let e = endpoints(b);
    let e = e.iter().find(|e| e.role == role).expect("the endpoint");
    (e.records, e.sleeps, e.posts)
}

#[test]
fn every_way_of_moving_a_record_is_counted_by_its_endpoint() {
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let file = TempPath::new("op-counts");
        let b = Backing::file(file.path());
        let builder = Channel::<u64>::builder().backing(b.clone()).capacity(16);
        let builder = if kind == RingKind::Mpmc {
            builder.mpmc()
        } else {
            builder
        };
        let chan = builder.create().unwrap();
        let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
        assert_eq!(counts(&b, "sender"), (0, 0, 0), "{kind}");

        tx.try_send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(tx.send_batch(&[3, 4, 5]), Ok(3));
        assert_eq!(tx.try_send_batch(&[6]), Ok(1));
        let mut slot = tx.reserve().unwrap();
        *slot = 7;
        slot.commit();
        drop(tx.try_reserve().unwrap()); // not committed: not a record sent
        assert_eq!(counts(&b, "sender").0, 7, "{kind}");

        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        let mut buf = [0; 2];
        assert_eq!(rx.recv_batch(&mut buf), Ok(2));
        assert_eq!(*rx.peek().unwrap(), 5);
        assert_eq!(*rx.try_peek().unwrap(), 6);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [7]);
        assert_eq!(counts(&b, "receiver"), (7, 0, 0), "{kind}");
        // A clone is an endpoint of its own, counting from zero.
        if kind == RingKind::Mpmc {
            let mut tx2 = tx.try_clone().unwrap();
            tx2.send(8).unwrap();
            let senders: Vec<u64> = endpoints(&b)
                .iter()
                .filter(|e| e.role == "sender")
                .map(|e| e.records)
                .collect();
            assert_eq!(senders.len(), 2);
            assert!(senders.contains(&7) && senders.contains(&1), "{senders:?}");
        }
        drop((tx, rx, chan));
    }
}

#[test]
fn iter_ends_on_a_corrupted_segment_and_says_so() {
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let file = TempPath::new("op-iter");
        let path = file.path().to_owned();
        let b = Channel::<u64>::builder()
            .backing(Backing::file(&path))
            .capacity(8);
        let b = if kind == RingKind::Mpmc { b.mpmc() } else { b };
        let chan = b.create().unwrap();
        let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
        tx.send_batch(&[1, 2]).unwrap();
        let (got, error, rx) = within(Duration::from_secs(10), move || {
            let mut it = rx.iter();
            let got = [it.next(), it.next()];
            assert_eq!(it.error(), None, "running: no error yet");
            // The sender is still live: only the corruption can end the iteration.
            corrupt_header(&path);
            let end = it.next();
            assert_eq!(end, None);
            assert_eq!(it.next(), None, "ended for good");
            let error = it.error();
            (got, error, rx)
        });
        assert_eq!(got, [Some(1), Some(2)], "{kind}");
        assert_eq!(error, Some(RecvError::Corrupted), "{kind}");
        let mut rx = rx;
        let results: Vec<_> = within(Duration::from_secs(10), move || {
            let r: Vec<_> = rx.iter_results().collect();
            drop(rx);
            r
        });
        assert_eq!(
            results,
            [Err(RecvError::Corrupted)],
            "{kind}: the error, then the end"
        );
        tx.try_send(3).unwrap_err();
        drop((tx, chan));
    }
}

#[test]
fn try_iter_tells_a_corrupted_segment_from_an_empty_ring() {
    let file = TempPath::new("op-tryiter");
    let chan = Channel::<u64>::builder()
        .backing(Backing::file(file.path()))
        .capacity(8)
        .create()
        .unwrap();
    let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
    tx.send(1).unwrap();
    let mut it = rx.try_iter();
    assert_eq!((it.next(), it.next(), it.error()), (Some(1), None, None));
    // The hostile peer: a producer cursor (the first word of the cursor lines, whose offset
    // the ring header holds at byte 72) far beyond anything the ring can hold.
    let bytes = std::fs::read(file.path()).unwrap();
    let cursors = u64::from_le_bytes(bytes[72..80].try_into().unwrap());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file.path())
        .unwrap();
    f.write_all_at(&(1u64 << 40).to_le_bytes(), cursors)
        .unwrap();
    let mut it = rx.try_iter();
    assert_eq!(it.next(), None);
    assert_eq!(it.error(), Some(TryRecvError::Corrupted));
    drop((tx, rx, chan));
}

/// Byte channel of `max`-byte messages in a file.
fn byte_pair(
    file: &TempPath,
    max: usize,
) -> (
    Channel<Bytes>,
    shmchan::Sender<Bytes>,
    shmchan::Receiver<Bytes>,
) {
    let chan = Channel::<Bytes>::builder()
        .backing(Backing::file(file.path()))
        .capacity(64)
        .max_message(max)
        .create()
        .unwrap();
    let (tx, rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
    (chan, tx, rx)
}

#[test]
fn byte_batch_receive_allocates_nothing_per_message() {
    let file = TempPath::new("op-bytebatch");
    let (chan, mut tx, mut rx) = byte_pair(&file, 256);
    let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; usize::from(i) * 5]).collect();
    for m in &msgs {
        tx.send(m).unwrap();
    }
    // Warm up whatever the first receive sets up.
    let mut seen: Vec<Vec<u8>> = Vec::with_capacity(64);
    assert_eq!(rx.try_recv_batch_with(1, |m| seen.push(m.to_vec())), Ok(1));
    let (mut n, mut bytes) = (0usize, 0usize);
    let before = allocations();
    let got = rx.recv_batch_with(64, |m| {
        n += 1;
        bytes += m.len();
    });
    let after = allocations();
    assert_eq!(got, Ok(39));
    assert_eq!(n, 39);
    assert_eq!(bytes, msgs[1..].iter().map(Vec::len).sum::<usize>());
    assert_eq!(
        after - before,
        0,
        "allocations during a batch of 39 messages"
    );
    assert_eq!(seen, msgs[..1]);

    // The copying receive allocates per message: what the batch form saves.
    for m in &msgs[..4] {
        tx.send(m).unwrap();
    }
    let before = allocations();
    for _ in 0..4 {
        rx.recv().unwrap();
    }
    assert!(allocations() - before >= 3, "recv() allocates its Vec");
    drop((tx, rx, chan));
}

#[test]
fn byte_batch_receive_honours_max_order_and_the_four_forms() {
    let file = TempPath::new("op-byteforms");
    let (chan, mut tx, mut rx) = byte_pair(&file, 32);
    let mut got = Vec::new();
    assert_eq!(rx.try_recv_batch_with(4, |m| got.push(m.to_vec())), Ok(0));
    let t = Duration::from_millis(5);
    assert_eq!(
        rx.recv_batch_with_timeout(4, |_| {}, t),
        Err(shmchan::RecvTimeoutError::Timeout)
    );
    for i in 0..6u8 {
        tx.send(&[i; 3]).unwrap();
    }
    assert_eq!(rx.recv_batch_with(0, |_| panic!("max 0")), Ok(0));
    assert_eq!(rx.recv_batch_with(4, |m| got.push(m.to_vec())), Ok(4));
    let deadline = std::time::Instant::now() + t;
    assert_eq!(
        rx.recv_batch_with_deadline(4, |m| got.push(m.to_vec()), deadline),
        Ok(2)
    );
    let want: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 3]).collect();
    assert_eq!(got, want);
    // Drained, then the disconnection.
    tx.send(b"last").unwrap();
    drop(tx);
    assert_eq!(rx.recv_batch_with(4, |m| assert_eq!(m, b"last")), Ok(1));
    assert_eq!(rx.recv_batch_with(4, |_| {}), Err(RecvError::Disconnected));
    drop((rx, chan));
}

#[test]
fn byte_batch_receive_reports_a_malformed_message_and_goes_on_after_it() {
    let file = TempPath::new("op-bytebad");
    let (chan, mut tx, mut rx) = byte_pair(&file, 32);
    tx.send(b"good-1").unwrap();
    tx.send(b"MARKER-BAD").unwrap();
    tx.send(b"good-2").unwrap();
    // The hostile peer: a length beyond the slot in the second message's lane entry (the
    // lane ends the ring's extension area: one u32 per slot, in whole 128-byte lines; the
    // ring header holds the capacity at 20 and the area's offset and length at 56 and 64).
    let bytes = std::fs::read(file.path()).unwrap();
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let slots =
        (u32::from_ne_bytes(bytes[20..24].try_into().unwrap()) as usize).next_power_of_two();
    let entry = word(56) + word(64) - (slots * 4).next_multiple_of(128) + 4;
    assert_eq!(
        bytes[entry..entry + 4],
        10u32.to_ne_bytes(),
        "the lane entry"
    );
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file.path())
        .unwrap();
    f.write_all_at(&(1u32 << 20).to_ne_bytes(), entry as u64)
        .unwrap();
    let mut got = Vec::new();
    assert_eq!(
        rx.recv_batch_with(8, |m| got.push(m.to_vec())),
        Err(RecvError::Corrupted)
    );
    assert_eq!(
        got,
        [b"good-1".to_vec()],
        "the messages before it were delivered"
    );
    assert_eq!(
        rx.recv_batch_with(8, |m| got.push(m.to_vec())),
        Ok(1),
        "the next receive goes on after it"
    );
    assert_eq!(got[1], b"good-2");
    drop((tx, rx, chan));
}

/// A guard leaked with `mem::forget` loses nothing and holds nothing up: an uncommitted slot
/// publishes nothing (on MPMC it is passed over, where it used to stay claimed for good and
/// stall every receiver behind it), and a peeked record is read again on SPSC and released on
/// MPMC (whose claim cannot be undone).
#[test]
fn a_leaked_guard_holds_nothing_up() {
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let builder = Channel::<u64>::builder();
        let builder = match kind {
            RingKind::Spsc => builder.spsc(),
            _ => builder.mpmc(),
        };
        let chan = builder
            .capacity(4)
            .backing(Backing::anonymous())
            .create()
            .unwrap();
        let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
        let mut slot = tx.reserve().unwrap();
        *slot = 99;
        std::mem::forget(slot);
        for v in 1..=3 {
            tx.send(v).unwrap();
        }
        // The leaked slot was never committed: 1, 2, 3 arrive, 99 never does.
        let got: Vec<u64> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, [1, 2, 3], "{kind:?}");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{kind:?}");

        tx.send(7).unwrap();
        tx.send(8).unwrap();
        let r = rx.peek().unwrap();
        assert_eq!(*r, 7);
        std::mem::forget(r);
        let next = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        match kind {
            RingKind::Spsc => {
                assert_eq!(next, 7, "SPSC: the leaked peek's record is read again");
                assert_eq!(rx.recv().unwrap(), 8);
            }
            _ => assert_eq!(next, 8, "MPMC: the leaked peek's record is released"),
        }
        // The ring is whole: it fills to capacity and drains again.
        for v in 0..4 {
            tx.try_send(v)
                .unwrap_or_else(|e| panic!("{kind:?}: {e:?} at {v}, len {}", tx.len()));
        }
        for v in 0..4 {
            assert_eq!(rx.try_recv(), Ok(v), "{kind:?}");
        }
    }
}

/// `send_ref` and `recv_into` move a large record with one copy each and behave as `send` and
/// `recv` do at the edges: the record comes back when every receiver is gone, and `out` is
/// left as it was when every sender is gone.
#[test]
fn send_ref_and_recv_into_carry_large_records() {
    type Frame = [u64; 8192];
    let chan = Channel::<Frame>::builder()
        .capacity(2)
        .backing(Backing::anonymous())
        .create()
        .unwrap();
    let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
    let mut frames = vec![[0u64; 8192]; 2];
    for (i, w) in frames[0].iter_mut().enumerate() {
        *w = i as u64 * 3;
    }
    tx.send_ref(&frames[0]).unwrap();
    rx.recv_into(&mut frames[1]).unwrap();
    assert_eq!(frames[0], frames[1]);
    drop(tx);
    frames[1][0] = 42;
    assert_eq!(rx.recv_into(&mut frames[1]), Err(RecvError::Disconnected));
    assert_eq!(frames[1][0], 42, "out untouched on an error");
    let mut tx = chan.sender().unwrap();
    drop(rx);
    let back = tx.send_ref(&frames[0]).unwrap_err().into_inner();
    assert_eq!(back, frames[0]);
}
