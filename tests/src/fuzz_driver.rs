//! Drivers of the upper crate's fuzz targets
//! (`fuzz/fuzz_targets/{open_segment,hostile_peer,hostile_bytes}.rs`, which include this file
//! with `#[path]`), shared with `tests/tests/fuzz_replay.rs`, which replays their committed
//! corpora on stable.
//!
//! - [`open_segment`]: arbitrary bytes as a whole segment: [`Builder::open_in`] gives a clean
//!   error or a channel whose endpoints (which may be refused cleanly) run a fixed script of
//!   non-blocking operations without panicking, hanging or touching memory outside the buffer.
//! - [`hostile_peer`]: a real channel created in a heap buffer; input bytes drive operations
//!   interleaved with scribbles (fuzzer-chosen values at fuzzer-chosen offsets, biased toward
//!   the ring header, the extension header and endpoint table, the cursor lines and the slot
//!   stamps). Before the first scribble every result is checked against a FIFO model; after
//!   it, operations need only return a value or an error.
//! - [`hostile_bytes`]: the same for a byte channel (`Channel<Bytes>`): sends of any length
//!   (`TooLong` past the maximum, checked even after scribbles), reservations written in place,
//!   resized, committed or dropped, receives by copy, into a buffer and in place, the timed
//!   forms; scribbles also on the messages' lengths in the lane. The model holds their bytes;
//!   after a scribble, any message received must still be at most `max_message` bytes long.
//!
//! Only the futex and spin doorbells are used (no kernel objects); timeouts are at most 1 ms.
//! The memory is a 128-aligned heap allocation of exactly the segment's length, so that
//! AddressSanitizer (nightly fuzz builds) reports any access past it.
#![allow(dead_code)]

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::time::Duration;

use shmchan::{
    Builder, ByteSendGuard, Bytes, Channel, Doorbell, OpenError, RecvTimeoutError, ReserveError,
    RingKind, SendBatchError, SendBytesError, TryRecvError, TrySendError, MAX_ENDPOINTS,
};

/// The record both targets carry.
pub type Rec = [u64; 2];

/// The fingerprint name of [`Rec`] (fixed, so that seed segments stay valid across builds).
pub const TYPE_NAME: &str = "shmchan-fuzz.Rec";

/// The builder every driver uses (the record name fixed, openers never wait for `ready`).
pub fn builder() -> Builder<Rec> {
    Channel::<Rec>::builder()
        .type_name(TYPE_NAME)
        .open_timeout(Duration::ZERO)
        .spin_window(Duration::from_micros(5))
}

/// A zeroed, 128-aligned heap buffer of exactly `len` bytes (one byte is allocated for 0).
pub struct Buf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

impl Buf {
    pub fn zeroed(len: usize) -> Buf {
        let layout = Layout::from_size_align(len.max(1), 128).expect("buffer layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout));
        Buf { ptr, len, layout }
    }

    pub fn from_bytes(bytes: &[u8]) -> Buf {
        let b = Buf::zeroed(bytes.len());
        // SAFETY: the buffer holds `bytes.len()` bytes; a fresh allocation overlaps nothing.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), b.ptr.as_ptr(), bytes.len()) };
        b
    }

    pub fn base(&self) -> NonNull<u8> {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A copy of the buffer's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        // SAFETY: `len` initialised bytes; single-threaded, nobody writes concurrently.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }.to_vec()
    }

    /// Reads `N` bytes at `off`, clamped to the buffer (zeros if it is shorter than `N`).
    fn read<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if self.len >= N {
            let off = off.min(self.len - N);
            // SAFETY: off + N <= len; single-threaded (the channel's handles are used by this
            // thread only, between our accesses).
            unsafe {
                std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), out.as_mut_ptr(), N)
            };
        }
        out
    }

    pub fn read_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.read(off))
    }

    pub fn read_u64(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.read(off))
    }

    /// Writes `bytes` at `off`, clamped to the buffer: a peer scribbling on shared memory.
    pub fn write(&self, off: usize, bytes: &[u8]) {
        if self.len >= bytes.len() {
            let off = off.min(self.len - bytes.len());
            // SAFETY: off + bytes.len() <= len. Single-threaded, and never while a guard
            // (a `&mut T` into a slot) is live: the drivers drop guards before scribbling.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    self.ptr.as_ptr().add(off),
                    bytes.len(),
                )
            };
        }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout; every channel over it is dropped
        // first (the drivers declare their channels after the buffer or drop them explicitly).
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// The record with sequence number `seq` (its second word is a check of the first).
pub fn rec(seq: u64) -> Rec {
    [
        seq,
        seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xa5a5_5a5a_0f0f_f0f0,
    ]
}

/// Opens the channel in `buf` as a peer: futex doorbell, or spin if that is what it has. Any
/// other doorbell is refused by the builder before its kernel objects are touched.
///
/// # Safety
/// `buf` outlives the returned channel and its endpoints.
pub unsafe fn open_peer(buf: &Buf) -> Result<Channel<Rec>, OpenError> {
    futex_or_spin(|bell| {
        // SAFETY: the buffer is 128-aligned, initialised, `len` bytes, and outlives the channel
        // (the caller's promise); this thread is the only one touching it.
        unsafe { builder().doorbell(bell).open_in(buf.base(), buf.len()) }
    })
}

/// `open` with the futex doorbell, then with spin when the segment says it has that one.
fn futex_or_spin<C>(open: impl Fn(Doorbell) -> Result<C, OpenError>) -> Result<C, OpenError> {
    match open(Doorbell::Futex) {
        Err(OpenError::Mismatch {
            field: "doorbell", ..
        }) => open(Doorbell::Spin),
        r => r,
    }
}

// ---------------------------------------------------------------------------------------------
// open_segment

/// Arbitrary bytes as a whole segment.
pub fn open_segment(data: &[u8]) {
    let buf = Buf::from_bytes(data);
    {
        // SAFETY: `buf` outlives this block, which drops the channel and its endpoints.
        let Ok(chan) = (unsafe { open_peer(&buf) }) else {
            return;
        };
        exercise_opened(&chan);
        // A second peer over the same memory, while the first one's endpoints are gone.
        // SAFETY: as above.
        if let Ok(again) = unsafe { open_peer(&buf) } {
            exercise_opened(&again);
        }
    }
}

/// A fixed script of non-blocking operations on a channel opened from untrusted bytes: every
/// call returns; values are not checked (the segment may say anything).
fn exercise_opened(chan: &Channel<Rec>) {
    let cap = chan.capacity();
    let _ = (chan.kind(), chan.doorbell(), format!("{chan:?}"));
    let mut tx = chan.sender().ok();
    let mut rx = chan.receiver().ok();
    // Second endpoints: refused on SPSC, fine on MPMC.
    let tx2 = chan.sender().ok();
    let rx2 = chan.receiver().ok();
    drop((tx2, rx2));
    if let Some(tx) = tx.as_mut() {
        let _ = (tx.len(), tx.is_empty(), tx.is_full(), tx.is_disconnected());
        assert!(tx.capacity() == cap);
        for i in 0..3 {
            let _ = tx.try_send(rec(i));
        }
        let _ = tx.try_send_batch(&[rec(10), rec(11), rec(12)]);
        if let Ok(mut g) = tx.try_reserve() {
            *g = rec(20);
            g.commit();
        }
        drop(tx.try_reserve()); // dropped uncommitted (an MPMC skip)
        let _ = tx.send_timeout(rec(30), Duration::ZERO);
    }
    if let Some(rx) = rx.as_mut() {
        let _ = (rx.len(), rx.is_empty(), rx.is_disconnected());
        let _ = rx.try_recv();
        if let Ok(g) = rx.try_peek() {
            let _ = *g;
        }
        let mut out = [[0u64; 2]; 4];
        if let Ok(n) = rx.try_recv_batch(&mut out) {
            assert!(n <= out.len());
        }
        let _ = rx.recv_timeout(Duration::from_micros(20));
        let _ = rx.try_iter().take(2 * cap.min(64) + 2).count();
    }
    // The sender leaves: the receiver drains, then sees the disconnection.
    drop(tx);
    if let Some(rx) = rx.as_mut() {
        for _ in 0..3 {
            let _ = rx.try_recv();
        }
    }
    drop(rx);
}

// ---------------------------------------------------------------------------------------------
// hostile_peer

/// Offset of the live masks inside shmchan's extension header (`segment::ExtHeader`,
/// `repr(C)`); the endpoint table follows the counters after them. Its offset and entry size
/// are found on the live channel (see [`Map::find_endpoints`]), so layout changes there do not
/// silently misdirect the scribbles.
const EXT_LIVE: usize = 376;
/// Where the search for the endpoint table starts (past the masks and counters).
const EXT_COUNTERS_END: usize = 448;
/// Fields at the start of every endpoint entry: pid, role, asleep, start time.
const ENDPOINT_FIELDS: [usize; 4] = [0, 4, 8, 16];

/// Where things are in the segment, read from the ring header right after creation.
struct Map {
    ext: usize,
    /// Offset (from `ext`) and size of the endpoint table's entries.
    endpoints: usize,
    entry: usize,
    ext_len: usize,
    cursors: usize,
    slots: usize,
    stride: usize,
    cap: usize,
    mpmc: bool,
}

impl Map {
    fn read(buf: &Buf, mpmc: bool) -> Map {
        Map {
            ext: buf.read_u64(56) as usize,
            endpoints: 0,
            entry: 0,
            ext_len: buf.read_u64(64) as usize,
            cursors: buf.read_u64(72) as usize,
            slots: buf.read_u64(80) as usize,
            stride: buf.read_u32(32) as usize,
            cap: buf.read_u32(20) as usize,
            mpmc,
        }
    }

    /// Reads the map of a channel whose first sender and receiver (and no other endpoint) are
    /// live, checks the live masks and locates the endpoint table.
    fn locate(buf: &Buf, mpmc: bool, me: u32) -> Map {
        let mut map = Map::read(buf, mpmc);
        // The layout self-check: one live sender and one live receiver in the masks.
        assert!(
            buf.read_u64(map.ext + EXT_LIVE) == 1 && buf.read_u64(map.ext + EXT_LIVE + 8) == 2,
            "fuzz driver: shmchan's live masks moved; update EXT_LIVE in tests/src/fuzz_driver.rs"
        );
        map.find_endpoints(buf, me);
        map
    }

    /// The first 8-aligned word equal to `me` at or after `from` inside the ext area.
    fn find_pid(&self, buf: &Buf, from: usize, me: u32) -> Option<usize> {
        (from..self.ext_len.saturating_sub(4))
            .step_by(8)
            .find(|&o| buf.read_u32(self.ext + o) == me)
    }

    /// Locates the endpoint table from the entries the first sender and receiver took (entries
    /// 0 and 1: their pid words are `me`).
    fn find_endpoints(&mut self, buf: &Buf, me: u32) {
        let e0 = self.find_pid(buf, EXT_COUNTERS_END, me);
        let e1 = e0.and_then(|o| self.find_pid(buf, o + 8, me));
        match (e0, e1) {
            (Some(e0), Some(e1)) if (e1 - e0) * MAX_ENDPOINTS + e0 <= self.ext_len => {
                self.endpoints = e0;
                self.entry = e1 - e0;
            }
            _ => panic!(
                "fuzz driver: no endpoint table in shmchan's extension area; update \
                 tests/src/fuzz_driver.rs"
            ),
        }
    }
}

/// Reads the input byte by byte; zeros once it is exhausted.
struct Input<'a> {
    d: &'a [u8],
    i: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.i >= self.d.len()
    }

    fn u8(&mut self) -> u8 {
        let b = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        b
    }

    fn u64(&mut self, n: usize) -> u64 {
        let mut v = 0u64;
        for k in 0..n {
            v |= u64::from(self.u8()) << (8 * k);
        }
        v
    }
}

/// The FIFO model: `None` is a slot an MPMC sender reserved and dropped (a skip), which holds
/// a position until a receiver passes over it. `T` is what identifies a record: its sequence
/// number (`hostile_peer`) or a message's bytes (`hostile_bytes`).
struct Model<T = u64> {
    q: VecDeque<Option<T>>,
    cap: usize,
    next: u64,
}

impl<T: std::fmt::Debug> Model<T> {
    fn has_skips(&self) -> bool {
        self.q.iter().any(Option::is_none)
    }

    fn has_record(&self) -> bool {
        self.q.iter().any(Option::is_some)
    }

    /// A receiver got `got` (shown in the panic): returns what it must be, the next record,
    /// passing over the skips before it.
    fn pop_next(&mut self, got: &dyn std::fmt::Debug, what: &str) -> T {
        loop {
            match self.q.pop_front() {
                Some(None) => continue,
                Some(Some(v)) => return v,
                None => panic!("{what}: received {got:?} from an empty channel"),
            }
        }
    }

    /// A receive found nothing: there must be no record, and the skips were passed over.
    fn empty(&mut self, what: &str) {
        assert!(
            !self.has_record(),
            "{what}: empty, but the model holds {:?}",
            self.q
        );
        self.q.clear();
    }
}

impl Model<u64> {
    /// A receiver got `got`: it must be the next record, skips before it passed over.
    fn take(&mut self, got: &Rec, what: &str) {
        let seq = self.pop_next(got, what);
        assert_eq!(*got, rec(seq), "{what}: received out of order or torn");
    }
}

struct Peer {
    scribbled: bool,
    m: Model,
}

impl Peer {
    /// Model checks run only before the first scribble.
    fn check(&self) -> bool {
        !self.scribbled
    }

    fn sent(&mut self, r: &Result<(), TrySendError<Rec>>, what: &str) {
        let seq = self.m.next;
        match r {
            Ok(()) => {
                if self.check() {
                    assert!(
                        self.m.q.len() < self.m.cap || self.m.has_skips(),
                        "{what}: sent into a full ring"
                    );
                }
                self.m.q.push_back(Some(seq));
                self.m.next += 1;
            }
            Err(TrySendError::Full(v)) if self.check() => {
                assert_eq!(*v, rec(seq));
                assert!(
                    self.m.q.len() == self.m.cap || self.m.has_skips(),
                    "{what}: Full with {} of {} in the model",
                    self.m.q.len(),
                    self.m.cap
                );
            }
            Err(e) if self.check() => panic!("{what}: unexpected {e:?}"),
            Err(_) => {}
        }
    }

    fn received(&mut self, r: &Result<Rec, TryRecvError>, senders: bool, what: &str) {
        if !self.check() {
            return;
        }
        match r {
            Ok(v) => self.m.take(v, what),
            Err(TryRecvError::Empty) if senders => self.m.empty(what),
            Err(TryRecvError::Disconnected) if !senders => self.m.empty(what),
            Err(e) => panic!("{what}: unexpected {e:?} (senders live: {senders})"),
        }
    }
}

/// A live channel in a heap buffer; the input drives operations and scribbles.
pub fn hostile_peer(data: &[u8]) {
    let mut inp = Input { d: data, i: 0 };
    let cfg = inp.u8();
    let kind = if cfg & 1 == 0 {
        RingKind::Spsc
    } else {
        RingKind::Mpmc
    };
    let cap = 1usize << ((cfg >> 1) & 3);
    let bell = if cfg & 8 == 0 {
        Doorbell::Futex
    } else {
        Doorbell::Spin
    };
    let b = builder().capacity(cap).doorbell(bell);
    let b = if kind == RingKind::Spsc {
        b.spsc()
    } else {
        b.mpmc()
    };
    let len = b.segment_len().expect("segment length");
    let buf = Buf::zeroed(len);
    // SAFETY: zeroed, 128-aligned, `len` bytes; the channel and every endpoint are dropped at
    // the end of `run`, before `buf`.
    let chan = unsafe { b.create_in(buf.base(), buf.len()) }.expect("create_in");
    run(&buf, &chan, kind, &mut inp);
}

const HANDLES: usize = 2;

fn run(buf: &Buf, chan: &Channel<Rec>, kind: RingKind, inp: &mut Input<'_>) {
    let cap = chan.capacity();
    let me = std::process::id();
    let mut tx: [Option<shmchan::Sender<Rec>>; HANDLES] = [chan.sender().ok(), None];
    let mut rx: [Option<shmchan::Receiver<Rec>>; HANDLES] = [chan.receiver().ok(), None];
    assert!(tx[0].is_some() && rx[0].is_some());
    let map = Map::locate(buf, kind == RingKind::Mpmc, me);
    assert_eq!(map.cap, cap);
    let mut p = Peer {
        scribbled: false,
        m: Model {
            q: VecDeque::new(),
            cap,
            next: 0,
        },
    };
    let mpmc = kind == RingKind::Mpmc;
    let mut ops = 0;
    while !inp.done() && ops < 512 {
        ops += 1;
        let op = inp.u8();
        let h = usize::from(op >> 7); // which handle of a role
        let senders = tx.iter().any(Option::is_some);
        let receivers = rx.iter().any(Option::is_some);
        match op % 16 {
            0 | 1 => {
                let Some(t) = tx[h].as_mut() else { continue };
                let r = t.try_send(rec(p.m.next));
                if !receivers && p.check() {
                    assert!(matches!(r, Err(TrySendError::Disconnected(_))), "{r:?}");
                    continue;
                }
                p.sent(&r, "try_send");
            }
            2 => {
                let Some(t) = tx[h].as_mut() else { continue };
                let wait = Duration::from_micros(u64::from(inp.u8() % 5) * 250);
                let r = t.send_timeout(rec(p.m.next), wait).map_err(|e| match e {
                    shmchan::SendTimeoutError::Timeout(v) => TrySendError::Full(v),
                    shmchan::SendTimeoutError::Disconnected(v) => TrySendError::Disconnected(v),
                    shmchan::SendTimeoutError::Corrupted(v) => TrySendError::Corrupted(v),
                    _ => TrySendError::Corrupted(rec(0)),
                });
                if !receivers && p.check() {
                    assert!(matches!(r, Err(TrySendError::Disconnected(_))), "{r:?}");
                    continue;
                }
                p.sent(&r, "send_timeout");
            }
            3 => {
                let Some(t) = tx[h].as_mut() else { continue };
                let k = usize::from(inp.u8() % 6);
                let batch: Vec<Rec> = (0..k as u64).map(|i| rec(p.m.next + i)).collect();
                let r = t.try_send_batch(&batch);
                if !p.check() {
                    continue;
                }
                if !receivers {
                    assert_eq!(r, Err(SendBatchError::Disconnected));
                    continue;
                }
                let n = r.unwrap_or_else(|e| panic!("try_send_batch: {e:?}"));
                let free = cap - p.m.q.len();
                assert!(n <= k);
                if !p.m.has_skips() {
                    assert_eq!(n, k.min(free), "try_send_batch of {k} with {free} free");
                } else {
                    assert!(n >= k.min(free), "try_send_batch of {k} with {free} free");
                }
                for _ in 0..n {
                    p.m.q.push_back(Some(p.m.next));
                    p.m.next += 1;
                }
            }
            4 | 5 => {
                let commit = op % 16 == 4;
                let Some(t) = tx[h].as_mut() else { continue };
                let seq = p.m.next;
                match t.try_reserve() {
                    Ok(mut g) => {
                        if p.check() {
                            assert!(
                                receivers && (p.m.q.len() < cap || p.m.has_skips()),
                                "reserved in a full ring"
                            );
                        }
                        *g = rec(seq);
                        if commit {
                            g.commit();
                            p.m.q.push_back(Some(seq));
                            p.m.next += 1;
                        } else if mpmc {
                            // Dropped uncommitted: an MPMC skip holds the position.
                            drop(g);
                            p.m.q.push_back(None);
                        } else {
                            // Dropped uncommitted on SPSC: nothing was published.
                            drop(g);
                        }
                    }
                    Err(e) => {
                        if p.check() {
                            match e {
                                ReserveError::Disconnected => assert!(!receivers),
                                ReserveError::Full => assert!(
                                    receivers && (p.m.q.len() == cap || p.m.has_skips()),
                                    "try_reserve: Full with {} of {cap}",
                                    p.m.q.len()
                                ),
                                e => panic!("try_reserve: {e:?}"),
                            }
                        }
                    }
                }
            }
            6 | 7 => {
                let Some(r) = rx[h].as_mut() else { continue };
                let got = r.try_recv();
                p.received(&got, senders, "try_recv");
            }
            8 => {
                let Some(r) = rx[h].as_mut() else { continue };
                let wait = Duration::from_micros(u64::from(inp.u8() % 5) * 250);
                let got = r.recv_timeout(wait).map_err(|e| match e {
                    shmchan::RecvTimeoutError::Timeout => TryRecvError::Empty,
                    shmchan::RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
                    _ => TryRecvError::Corrupted,
                });
                p.received(&got, senders, "recv_timeout");
            }
            9 => {
                let Some(r) = rx[h].as_mut() else { continue };
                let k = usize::from(inp.u8() % 6);
                let mut out = vec![[0u64; 2]; k];
                let got = r.try_recv_batch(&mut out);
                if !p.check() {
                    if let Ok(n) = got {
                        assert!(n <= k, "try_recv_batch: {n} records into {k}");
                    }
                    continue;
                }
                match got {
                    Ok(n) => {
                        assert!(n <= k);
                        for v in &out[..n] {
                            p.m.take(v, "try_recv_batch");
                        }
                        if n == 0 && k > 0 {
                            assert!(senders, "try_recv_batch: Ok(0) with no sender");
                            p.m.empty("try_recv_batch");
                        }
                    }
                    Err(TryRecvError::Disconnected) if !senders && k > 0 => {
                        p.m.empty("try_recv_batch")
                    }
                    Err(e) => panic!("try_recv_batch: {e:?} (senders live: {senders})"),
                }
            }
            10 => {
                let Some(r) = rx[h].as_mut() else { continue };
                let got = r.try_peek().map(|g| *g); // the guard drops: the slot is released
                p.received(&got, senders, "try_peek");
            }
            11 => {
                // Queries.
                for t in tx.iter().flatten() {
                    let (n, full) = (t.len(), t.is_full());
                    assert!(t.capacity() == cap);
                    if p.check() && !p.m.has_skips() {
                        assert_eq!(n, p.m.q.len(), "Sender::len");
                        assert_eq!(full, p.m.q.len() == cap, "Sender::is_full");
                        assert_eq!(t.is_disconnected(), !receivers);
                    }
                }
                for r in rx.iter().flatten() {
                    let (n, empty) = (r.len(), r.is_empty());
                    if p.check() && !p.m.has_skips() {
                        assert_eq!(n, p.m.q.len(), "Receiver::len");
                        assert_eq!(empty, p.m.q.is_empty(), "Receiver::is_empty");
                        assert_eq!(r.is_disconnected(), !senders);
                    }
                }
            }
            12 => {
                // An endpoint leaves, or a new one joins (SPSC: only into a free role).
                let role = inp.u8();
                let (slots_live, free) = if role & 1 == 0 {
                    (senders, tx[h].is_none())
                } else {
                    (receivers, rx[h].is_none())
                };
                if !free {
                    if role & 1 == 0 {
                        tx[h] = None;
                    } else {
                        rx[h] = None;
                    }
                    continue;
                }
                let taken = if role & 1 == 0 {
                    chan.sender().map(|t| tx[h] = Some(t))
                } else {
                    chan.receiver().map(|r| rx[h] = Some(r))
                };
                if p.check() {
                    if mpmc || !slots_live {
                        assert!(taken.is_ok(), "endpoint refused: {taken:?}");
                    } else {
                        assert!(
                            matches!(taken, Err(OpenError::EndpointTaken { .. })),
                            "{taken:?}"
                        );
                    }
                }
            }
            13 => {
                // A second peer opens the segment and uses one endpoint once.
                // SAFETY: `buf` outlives `other` and its endpoints (dropped in this arm).
                let other = unsafe { open_peer(buf) };
                if p.check() {
                    assert!(other.is_ok(), "reopen: {:?}", other.err());
                }
                let Ok(other) = other else { continue };
                if inp.u8() & 1 == 0 {
                    let t = other.sender();
                    if p.check() && !mpmc && senders {
                        assert!(matches!(t, Err(OpenError::EndpointTaken { .. })), "{t:?}");
                    }
                    if let Ok(mut t) = t {
                        let r = t.try_send(rec(p.m.next));
                        if p.check() && !receivers {
                            // No receiver: refused, the record handed back (as for our own
                            // sender, and as `hostile_bytes` checks its peer).
                            let want = rec(p.m.next);
                            assert!(
                                matches!(r, Err(TrySendError::Disconnected(v)) if v == want),
                                "peer try_send without receivers: {r:?}"
                            );
                        } else {
                            p.sent(&r, "peer try_send");
                        }
                    }
                } else {
                    let r = other.receiver();
                    if p.check() && !mpmc && receivers {
                        assert!(matches!(r, Err(OpenError::EndpointTaken { .. })), "{r:?}");
                    }
                    if let Ok(mut r) = r {
                        let got = r.try_recv();
                        p.received(&got, senders, "peer try_recv");
                    }
                }
            }
            _ => {
                scribble(buf, &map, inp, me);
                p.scribbled = true;
            }
        }
    }
    // Everything leaves; the channel (in the caller) and then the buffer go last.
    drop(tx);
    drop(rx);
}

/// One scribble: region, offset and value come from the input.
fn scribble(buf: &Buf, map: &Map, inp: &mut Input<'_>, me: u32) {
    let sel = inp.u8();
    let x = inp.u64(2) as usize;
    let off = match sel % 8 {
        // The ring header (magic, state, kind, capacity, sizes, offsets).
        0 => x % 128,
        // shmchan's extension header before the masks (magic, version, doorbell, name, ...).
        1 => map.ext + x % EXT_LIVE,
        // Live masks, `ever` flags, sleep counters.
        2 => map.ext + EXT_LIVE + (x % 9) * 8,
        // The endpoint table, mostly the entries in use.
        3 => {
            let entry = if x & 0x100 == 0 {
                x % 4
            } else {
                x % MAX_ENDPOINTS
            };
            let field = match (x >> 9) % 6 {
                f @ 0..=3 => ENDPOINT_FIELDS[f],
                // Anything else in the entry (the crash-recovery announcement among it).
                _ => 24 + ((x >> 12) % (map.entry / 8).max(1)) * 8,
            };
            map.ext + map.endpoints + entry * map.entry + field.min(map.entry.saturating_sub(8))
        }
        // The cursor lines and wait cells.
        4 | 5 => map.cursors + (x % 4) * 128 + ((x >> 2) % 4) * 8,
        // Slots: the MPMC stamps, or SPSC record words.
        6 => {
            let word = if map.mpmc { 0 } else { ((x >> 8) % 2) * 8 };
            map.slots + (x % map.cap) * map.stride + word
        }
        _ => x % buf.len(),
    };
    match (sel >> 3) % 5 {
        0 => buf.write(off, &[inp.u8()]),
        1 => buf.write(off & !3, &(inp.u64(4) as u32).to_ne_bytes()),
        2 => buf.write(off & !7, &inp.u64(8).to_ne_bytes()),
        // Nudge a word: cursors and stamps one lap or a few positions off.
        3 => {
            let d = inp.u8() as i8;
            let delta = if d & 1 == 0 {
                i64::from(d >> 1)
            } else {
                i64::from(d >> 1) * map.cap as i64
            };
            let v = buf.read_u64(off & !7).wrapping_add(delta as u64);
            buf.write(off & !7, &v.to_ne_bytes());
        }
        _ => {
            const SPECIAL: [u64; 8] = [0, 1, 2, u64::MAX, 1 << 63, u32::MAX as u64, 1 << 31, 0];
            let i = usize::from(inp.u8());
            let v = if i % 9 == 8 {
                u64::from(me)
            } else {
                SPECIAL[i % 9]
            };
            if i & 0x80 == 0 {
                buf.write(off & !7, &v.to_ne_bytes());
            } else {
                buf.write(off & !3, &(v as u32).to_ne_bytes());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// hostile_bytes

/// The builder of the byte-channel driver (openers never wait for `ready`).
pub fn bytes_builder() -> Builder<Bytes> {
    Channel::<Bytes>::builder()
        .open_timeout(Duration::ZERO)
        .spin_window(Duration::from_micros(5))
}

/// Opens the byte channel in `buf` as a peer (futex doorbell, or spin if that is what it has),
/// with the maximum message length `max` or, if `None`, the channel's.
///
/// # Safety
/// `buf` outlives the returned channel and its endpoints.
pub unsafe fn open_bytes_peer(buf: &Buf, max: Option<usize>) -> Result<Channel<Bytes>, OpenError> {
    futex_or_spin(|bell| {
        let b = bytes_builder().doorbell(bell);
        let b = match max {
            Some(m) => b.max_message(m),
            None => b,
        };
        // SAFETY: the buffer is 128-aligned, initialised, `len` bytes, and outlives the channel
        // (the caller's promise); this thread is the only one touching it.
        unsafe { b.open_in(buf.base(), buf.len()) }
    })
}

/// Offset of a message in a slot: SPSC slots are the message, MPMC slots put it after the
/// 8-byte sequence stamp. [`check_message_layout`] checks it on a real channel.
fn message_offset(mpmc: bool) -> usize {
    if mpmc {
        8
    } else {
        0
    }
}

/// Offset of slot `i`'s length in the lane: the lane ends the ext area, one `u32` per slot,
/// in whole 128-byte lines. [`check_message_layout`] checks it on a real channel.
fn lane_entry(map: &Map, i: usize) -> usize {
    let slots = map.cap.next_power_of_two();
    map.ext + map.ext_len - (slots * 4).next_multiple_of(128) + i * 4
}

/// Checks [`message_offset`] and [`lane_entry`] on a throwaway channel of `kind`, once per
/// process: a layout change must not silently misdirect the length scribbles.
fn check_message_layout(kind: RingKind) {
    static CHECKED: [std::sync::Once; 2] = [std::sync::Once::new(), std::sync::Once::new()];
    let mpmc = kind == RingKind::Mpmc;
    CHECKED[usize::from(mpmc)].call_once(|| {
        let b = bytes_builder()
            .capacity(2)
            .max_message(16)
            .doorbell(Doorbell::Spin);
        let b = if mpmc { b.mpmc() } else { b.spsc() };
        let buf = Buf::zeroed(b.segment_len().expect("segment length"));
        {
            // SAFETY: zeroed, 128-aligned, `len` bytes; the channel is dropped at the end of
            // this block, before `buf`.
            let chan = unsafe { b.create_in(buf.base(), buf.len()) }.expect("create_in");
            let (mut tx, _rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
            tx.try_send(b"lane").unwrap();
            tx.try_send(b"frame").unwrap();
            let map = Map::read(&buf, mpmc);
            let at = map.slots + map.stride + message_offset(mpmc);
            assert!(
                buf.read_u32(lane_entry(&map, 1)) == 5 && buf.to_vec()[at..][..5] == *b"frame",
                "fuzz driver: byte-channel messages or lengths moved; update message_offset \
                 or lane_entry in tests/src/fuzz_driver.rs"
            );
        }
    });
}

/// Message number `seq` of `len` bytes (content derived from both, so that a torn, truncated,
/// stale or reordered message is detected).
pub fn message(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (seq as u8).wrapping_mul(37) ^ (j as u8).wrapping_mul(11) ^ 0x5a)
        .collect()
}

/// A message length from one input byte: 0, `max`, `max + 1`, or anything in `0..=max + 8`.
fn pick_len(b: u8, max: usize) -> usize {
    match b & 7 {
        0 => 0,
        1 => max,
        2 => max + 1,
        _ => usize::from(b >> 3) % (max + 9),
    }
}

/// A reservation length: as [`pick_len`], and lengths that a `u32` lane entry would wrap.
fn pick_reserve_len(b: u8, max: usize) -> usize {
    match b {
        0xff => usize::MAX,
        0xfe => u32::MAX as usize + 1,
        0xfd => u32::MAX as usize,
        _ => pick_len(b, max),
    }
}

/// A wait of 0 to 1 ms.
fn pick_wait(b: u8) -> Duration {
    Duration::from_micros(u64::from(b % 5) * 250)
}

struct BytePeer {
    scribbled: bool,
    max: usize,
    m: Model<Vec<u8>>,
}

impl BytePeer {
    /// Model checks run only before the first scribble.
    fn check(&self) -> bool {
        !self.scribbled
    }

    /// A send of `msg` (or a reservation of its length) returned `r`; a full ring is
    /// `Full` (a timed form's `Timeout` is mapped to it by the caller).
    fn sent(&mut self, r: Result<(), SendBytesError>, msg: Vec<u8>, receivers: bool, what: &str) {
        let (len, max) = (msg.len(), self.max);
        if len > max {
            // Checked locally against the length fixed at attach: whatever the peer wrote.
            assert_eq!(r, Err(SendBytesError::TooLong { len, max }), "{what}");
            return;
        }
        if self.check() && !receivers {
            assert_eq!(r, Err(SendBytesError::Disconnected), "{what}");
            return;
        }
        match r {
            Ok(()) => {
                if self.check() {
                    assert!(
                        self.m.q.len() < self.m.cap || self.m.has_skips(),
                        "{what}: sent into a full ring"
                    );
                }
                self.m.q.push_back(Some(msg));
                self.m.next += 1;
            }
            Err(SendBytesError::Full) if self.check() => assert!(
                self.m.q.len() == self.m.cap || self.m.has_skips(),
                "{what}: Full with {} of {} in the model",
                self.m.q.len(),
                self.m.cap
            ),
            Err(e) if self.check() => panic!("{what}: unexpected {e:?}"),
            Err(_) => {}
        }
    }

    /// A receive returned `r` (a timed form's `Timeout` mapped to `Empty` by the caller).
    fn received(&mut self, r: Result<&[u8], TryRecvError>, senders: bool, what: &str) {
        if let Ok(m) = r {
            // Whatever the peer wrote in the lane entry.
            assert!(
                m.len() <= self.max,
                "{what}: a message of {} bytes from a channel of at most {}",
                m.len(),
                self.max
            );
        }
        if !self.check() {
            return;
        }
        match r {
            Ok(m) => {
                let want = self.m.pop_next(&m, what);
                assert!(
                    m == want.as_slice(),
                    "{what}: received {m:?}, expected {want:?} (out of order, torn or stale)"
                );
            }
            Err(TryRecvError::Empty) if senders => self.m.empty(what),
            Err(TryRecvError::Disconnected) if !senders => self.m.empty(what),
            Err(e) => panic!("{what}: unexpected {e:?} (senders live: {senders})"),
        }
    }

    /// A reservation of `len` bytes returned `r`; on success the message is written (all
    /// `len` bytes), maybe resized, and committed or dropped.
    #[allow(clippy::too_many_arguments)]
    fn reserved(
        &mut self,
        r: Result<ByteSendGuard<'_>, SendBytesError>,
        len: usize,
        set_len: Option<usize>,
        commit: bool,
        receivers: bool,
        mpmc: bool,
        what: &str,
    ) {
        let max = self.max;
        let mut g = match r {
            Ok(g) => g,
            Err(e) if len > max => {
                // Checked locally against the length fixed at attach: whatever the peer wrote.
                assert_eq!(e, SendBytesError::TooLong { len, max }, "{what}");
                return;
            }
            Err(e) => return self.sent(Err(e), vec![0; len], receivers, what),
        };
        assert!(len <= max, "{what}: reserved {len} bytes of at most {max}");
        assert_eq!(g.len(), len, "{what}: the guard's length");
        if self.check() {
            assert!(
                receivers && (self.m.q.len() < self.m.cap || self.m.has_skips()),
                "{what}: reserved in a full ring"
            );
        }
        let content = message(self.m.next, len);
        g.copy_from_slice(&content);
        let mut n = len;
        if let Some(l) = set_len {
            match g.set_len(l) {
                Ok(()) => {
                    assert!(l <= max, "{what}: set_len({l}) with a maximum of {max}");
                    n = l;
                }
                Err(e) => {
                    assert_eq!(
                        e,
                        SendBytesError::TooLong { len: l, max },
                        "{what}: set_len"
                    );
                }
            }
            assert_eq!(g.len(), n, "{what}: the guard's length after set_len");
        }
        // What we wrote is still there; past it (grown by set_len) the slot's old bytes.
        let k = n.min(len);
        assert_eq!(g[..k], content[..k], "{what}: the guard's bytes");
        let msg = g.to_vec();
        if commit {
            g.commit();
            self.m.q.push_back(Some(msg));
            self.m.next += 1;
        } else {
            drop(g);
            if mpmc {
                // Dropped uncommitted: an MPMC skip holds the position.
                self.m.q.push_back(None);
            }
        }
    }
}

/// A live byte channel in a heap buffer; the input drives operations and scribbles.
///
/// Byte 0 is the configuration: bit 0 MPMC, bits 1-2 the capacity (2, 4, 8, 2), bit 3 the spin
/// doorbell (else futex), bits 4-6 the maximum message length (8 to 64 in steps of 8), bit 7
/// asks for 5 bytes less (the builder rounds it up). Then operations, one byte each (mod 16,
/// bit 7 picks the second handle of a role), some followed by argument bytes:
/// 0/1 `try_send`(len), 2 `send_timeout`(len, wait), 3 `try_reserve`(len, mode[, set_len]) then
/// commit, 4 the same then drop (mode bit 1: `set_len`), 5/6 `try_recv`, 7 `try_recv_into`,
/// 8 `try_peek`, 9 `recv_timeout`(wait), 10 queries, 11 endpoint leaves/joins(role),
/// 12 second peer(how, len), 13 timed forms(which, wait[, len]), 14 scribble as `hostile_peer`
/// does, 15 scribble a length in the lane(sel[, value]).
pub fn hostile_bytes(data: &[u8]) {
    let mut inp = Input { d: data, i: 0 };
    let cfg = inp.u8();
    let kind = if cfg & 1 == 0 {
        RingKind::Spsc
    } else {
        RingKind::Mpmc
    };
    let cap = [2, 4, 8, 2][usize::from((cfg >> 1) & 3)];
    let bell = if cfg & 8 == 0 {
        Doorbell::Futex
    } else {
        Doorbell::Spin
    };
    let max = 8 * (1 + usize::from((cfg >> 4) & 7));
    let asked = if cfg & 0x80 != 0 { max - 5 } else { max };
    let b = bytes_builder()
        .capacity(cap)
        .max_message(asked)
        .doorbell(bell);
    let b = if kind == RingKind::Spsc {
        b.spsc()
    } else {
        b.mpmc()
    };
    check_message_layout(kind);
    let len = b.segment_len().expect("segment length");
    let buf = Buf::zeroed(len);
    // SAFETY: zeroed, 128-aligned, `len` bytes; the channel and every endpoint are dropped at
    // the end of `run_bytes` and of this function, before `buf`.
    let chan = unsafe { b.create_in(buf.base(), buf.len()) }.expect("create_in");
    assert_eq!(
        chan.max_message(),
        max,
        "max_message({asked}) rounds up to {max}"
    );
    run_bytes(&buf, &chan, kind, &mut inp);
}

fn run_bytes(buf: &Buf, chan: &Channel<Bytes>, kind: RingKind, inp: &mut Input<'_>) {
    let (cap, max) = (chan.capacity(), chan.max_message());
    let me = std::process::id();
    let mut tx: [Option<shmchan::Sender<Bytes>>; HANDLES] = [chan.sender().ok(), None];
    let mut rx: [Option<shmchan::Receiver<Bytes>>; HANDLES] = [chan.receiver().ok(), None];
    assert!(tx[0].is_some() && rx[0].is_some());
    let mpmc = kind == RingKind::Mpmc;
    let map = Map::locate(buf, mpmc, me);
    assert_eq!(map.cap, cap);
    assert!(
        message_offset(mpmc) + max <= map.stride,
        "a message outgrows its slot"
    );
    let mut p = BytePeer {
        scribbled: false,
        max,
        m: Model {
            q: VecDeque::new(),
            cap,
            next: 0,
        },
    };
    // try_recv_into's buffer: reused, and starts with junk that must be cleared.
    let mut into = vec![0xee; 3];
    let mut ops = 0;
    while !inp.done() && ops < 512 {
        ops += 1;
        let op = inp.u8();
        let h = usize::from(op >> 7); // which handle of a role
        let senders = tx.iter().any(Option::is_some);
        let receivers = rx.iter().any(Option::is_some);
        match op % 16 {
            0..=2 => {
                let len = pick_len(inp.u8(), max);
                let wait = if op % 16 == 2 {
                    Some(pick_wait(inp.u8()))
                } else {
                    None
                };
                let Some(t) = tx[h].as_mut() else { continue };
                let msg = message(p.m.next, len);
                let r = match wait {
                    None => t.try_send(&msg),
                    Some(w) => match t.send_timeout(&msg, w) {
                        Err(SendBytesError::Timeout) => Err(SendBytesError::Full),
                        Err(SendBytesError::Full) => panic!("send_timeout: Full"),
                        r => r,
                    },
                };
                p.sent(r, msg, receivers, "send");
            }
            3 | 4 => {
                let len = pick_reserve_len(inp.u8(), max);
                let mode = inp.u8();
                let set_len = (mode & 2 != 0).then(|| pick_len(inp.u8(), max));
                let Some(t) = tx[h].as_mut() else { continue };
                let r = t.try_reserve(len);
                p.reserved(
                    r,
                    len,
                    set_len,
                    op % 16 == 3,
                    receivers,
                    mpmc,
                    "try_reserve",
                );
            }
            5 | 6 => {
                let Some(r) = rx[h].as_mut() else { continue };
                let got = r.try_recv();
                p.received(view(&got), senders, "try_recv");
            }
            7 => {
                let Some(r) = rx[h].as_mut() else { continue };
                let got = r.try_recv_into(&mut into);
                match got {
                    Ok(n) => assert_eq!(n, into.len(), "try_recv_into: the returned length"),
                    Err(_) => assert!(into.is_empty(), "try_recv_into: not cleared"),
                }
                p.received(got.map(|_| &into[..]), senders, "try_recv_into");
                into.push(0xee);
            }
            8 => {
                let Some(r) = rx[h].as_mut() else { continue };
                // Read in place; the guard drops at the end of the statement, releasing the slot.
                let got = r.try_peek().map(|g| g.to_vec());
                p.received(view(&got), senders, "try_peek");
            }
            9 => {
                let wait = pick_wait(inp.u8());
                let Some(r) = rx[h].as_mut() else { continue };
                let got = r.recv_timeout(wait).map_err(recv_timeout_err);
                p.received(view(&got), senders, "recv_timeout");
            }
            10 => {
                // Queries.
                for t in tx.iter().flatten() {
                    let (n, full, empty) = (t.len(), t.is_full(), t.is_empty());
                    assert!(t.capacity() == cap && t.max_message() == max);
                    assert!(n <= cap, "Sender::len {n} of {cap}");
                    if p.check() && !p.m.has_skips() {
                        assert_eq!(n, p.m.q.len(), "Sender::len");
                        assert_eq!(full, n == cap, "Sender::is_full");
                        assert_eq!(empty, n == 0, "Sender::is_empty");
                        assert_eq!(t.is_disconnected(), !receivers);
                    }
                }
                for r in rx.iter().flatten() {
                    let (n, empty) = (r.len(), r.is_empty());
                    assert!(r.capacity() == cap && r.max_message() == max);
                    assert!(n <= cap, "Receiver::len {n} of {cap}");
                    if p.check() && !p.m.has_skips() {
                        assert_eq!(n, p.m.q.len(), "Receiver::len");
                        assert_eq!(empty, p.m.q.is_empty(), "Receiver::is_empty");
                        assert_eq!(r.is_disconnected(), !senders);
                    }
                }
            }
            11 => {
                // An endpoint leaves, or a new one joins (SPSC: only into a free role).
                let sender = inp.u8() & 1 == 0;
                let (role_live, free) = if sender {
                    (senders, tx[h].is_none())
                } else {
                    (receivers, rx[h].is_none())
                };
                if !free {
                    if sender {
                        tx[h] = None;
                    } else {
                        rx[h] = None;
                    }
                    continue;
                }
                let taken = if sender {
                    chan.sender().map(|t| tx[h] = Some(t))
                } else {
                    chan.receiver().map(|r| rx[h] = Some(r))
                };
                if p.check() {
                    if mpmc || !role_live {
                        assert!(taken.is_ok(), "endpoint refused: {taken:?}");
                    } else {
                        assert!(
                            matches!(taken, Err(OpenError::EndpointTaken { .. })),
                            "{taken:?}"
                        );
                    }
                }
            }
            12 => {
                // A second peer opens the segment (adopting the maximum, naming it, or naming
                // a wrong one) and uses one endpoint once.
                let how = inp.u8();
                let len = pick_len(inp.u8(), max);
                let named = match how % 3 {
                    0 => None,
                    1 => Some(max),
                    _ => Some(max + 8),
                };
                // SAFETY: `buf` outlives `other` and its endpoints (dropped in this arm).
                let other = unsafe { open_bytes_peer(buf, named) };
                if p.check() {
                    if named == Some(max + 8) {
                        assert!(other.is_err(), "opened with the wrong max_message");
                    } else {
                        assert!(other.is_ok(), "reopen: {:?}", other.err());
                    }
                }
                let Ok(other) = other else { continue };
                // After a scribble the peer may adopt another maximum from the ring header;
                // its endpoints are then checked against that one.
                let peer_max = other.max_message();
                if p.check() {
                    assert_eq!(peer_max, max, "the peer's max_message");
                }
                let own_max = std::mem::replace(&mut p.max, peer_max);
                if how & 0x80 == 0 {
                    let t = other.sender();
                    if p.check() && !mpmc && senders {
                        assert!(matches!(t, Err(OpenError::EndpointTaken { .. })), "{t:?}");
                    }
                    if let Ok(mut t) = t {
                        let msg = message(p.m.next, len);
                        let r = t.try_send(&msg);
                        p.sent(r, msg, receivers, "peer try_send");
                    }
                } else {
                    let r = other.receiver();
                    if p.check() && !mpmc && receivers {
                        assert!(matches!(r, Err(OpenError::EndpointTaken { .. })), "{r:?}");
                    }
                    if let Ok(mut r) = r {
                        let got = r.try_recv();
                        p.received(view(&got), senders, "peer try_recv");
                    }
                }
                p.max = own_max;
            }
            13 => {
                // The timed forms, waiting at most 1 ms.
                let which = inp.u8();
                let wait = pick_wait(inp.u8());
                match which % 3 {
                    0 => {
                        let Some(r) = rx[h].as_mut() else { continue };
                        let got = r.peek_timeout(wait).map(|g| g.to_vec());
                        let got = got.map_err(recv_timeout_err);
                        p.received(view(&got), senders, "peek_timeout");
                    }
                    1 => {
                        let Some(r) = rx[h].as_mut() else { continue };
                        let deadline = std::time::Instant::now() + wait;
                        let got = r.recv_into_deadline(&mut into, deadline);
                        if let Ok(n) = got {
                            assert_eq!(n, into.len(), "recv_into_deadline: the returned length");
                        }
                        let got = got.map(|_| &into[..]).map_err(recv_timeout_err);
                        p.received(got, senders, "recv_into_deadline");
                    }
                    _ => {
                        let len = pick_reserve_len(inp.u8(), max);
                        let Some(t) = tx[h].as_mut() else { continue };
                        let r = t.reserve_timeout(len, wait).map_err(|e| match e {
                            SendBytesError::Timeout => SendBytesError::Full,
                            SendBytesError::Full => panic!("reserve_timeout: Full"),
                            e => e,
                        });
                        p.reserved(r, len, None, true, receivers, mpmc, "reserve_timeout");
                    }
                }
            }
            14 => {
                scribble(buf, &map, inp, me);
                p.scribbled = true;
            }
            _ => {
                scribble_len(buf, &map, inp, max);
                p.scribbled = true;
            }
        }
    }
    // Before any scribble, what is left must drain in order.
    if let Some(r) = rx.iter_mut().flatten().next() {
        let senders = tx.iter().any(Option::is_some);
        for _ in 0..=cap {
            let got = r.try_recv();
            let done = got.is_err();
            p.received(view(&got), senders, "final try_recv");
            if done {
                break;
            }
        }
    }
    // Everything leaves; the channel (in the caller) and then the buffer go last.
    drop(tx);
    drop(rx);
}

/// A timed receive's error as the non-waiting one the model checks (`Timeout` is `Empty`).
fn recv_timeout_err(e: RecvTimeoutError) -> TryRecvError {
    match e {
        RecvTimeoutError::Timeout => TryRecvError::Empty,
        RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
        _ => TryRecvError::Corrupted,
    }
}

/// A scribble on a message's length: the lane entry of slot `sel % slots` (0, `max - 1`,
/// `max`, `max + 1`, `u32::MAX`, `1 << 31`, the slot stride, or random), or with bit 6 the
/// entry one past the lane's last slot (the lane's padding, never read; nothing when the
/// lane fills its lines and the cursors follow).
fn scribble_len(buf: &Buf, map: &Map, inp: &mut Input<'_>, max: usize) {
    let sel = inp.u8();
    let slots = map.cap.next_power_of_two();
    let i = if sel & 0x40 == 0 {
        usize::from(sel & 7) % slots
    } else {
        slots
    };
    let v = match (sel >> 3) & 7 {
        0 => 0,
        1 => max as u32 - 1,
        2 => max as u32,
        3 => max as u32 + 1,
        4 => u32::MAX,
        5 => 1 << 31,
        6 => map.stride as u32,
        _ => inp.u64(4) as u32,
    };
    let at = lane_entry(map, i);
    if at + 4 <= map.cursors {
        buf.write(at, &v.to_ne_bytes());
    }
}

/// A received message as the model checks it.
fn view(r: &Result<Vec<u8>, TryRecvError>) -> Result<&[u8], TryRecvError> {
    r.as_deref().map_err(|e| *e)
}
