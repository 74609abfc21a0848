//! Differential drivers shared by the unit tests and the fuzz targets in `fuzz/` (feature
//! `model`; always compiled under `cfg(test)`). Not part of the stable API.
//!
//! - [`ring_vs_model`]: operation bytes drive an SPSC or MPMC ring (pushes, pops, batches,
//!   reserve/commit, peek/release, skips, grants held across other handles' operations) and
//!   every result is checked against a `VecDeque` model.
//! - [`open_region`]: arbitrary bytes as a region (or a valid ring patched by the input, before
//!   and between operations like a hostile peer): opening gives a clean error or a ring whose
//!   operations never panic, loop forever, or touch memory outside the region.

use alloc::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec;
use core::ptr::NonNull;

use crate::{
    Layout, MpmcConsumer, MpmcProducer, PopError, PushError, RawRing, RingConfig, RingKind,
};

/// A zeroed, 128-aligned heap region.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    alloc: AllocLayout,
}

impl Region {
    /// A zero-filled region of `len` bytes (at least one line is allocated).
    pub fn zeroed(len: usize) -> Region {
        let alloc = AllocLayout::from_size_align(len.max(128), 128).expect("region layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(alloc) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| alloc::alloc::handle_alloc_error(alloc));
        Region { ptr, len, alloc }
    }

    /// A region holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Region {
        let r = Region::zeroed(bytes.len());
        // SAFETY: the region holds at least bytes.len() bytes; a fresh allocation does not
        // overlap `bytes`.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), r.ptr.as_ptr(), bytes.len()) };
        r
    }

    /// The base address.
    pub fn base(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The length given at creation.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `len() == 0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes one byte, like a peer scribbling on shared memory (offset taken modulo `len`).
    pub fn scribble(&self, offset: usize, value: u8) {
        if self.len > 0 {
            // SAFETY: offset % len < len, inside the allocation. Single-threaded: no access
            // races with it (rings in the drivers are used by this thread only).
            unsafe { self.ptr.as_ptr().add(offset % self.len).write(value) };
        }
    }

    /// Creates a ring in this region.
    pub fn init(&self, cfg: &RingConfig) -> Result<RawRing, crate::LayoutError> {
        // SAFETY: the allocation is valid for `len` initialised bytes, 128-aligned, outlives every
        // ring the drivers build from it (they drop rings before the region), and nobody else
        // touches it.
        unsafe { RawRing::init(self.ptr, self.len, cfg) }
    }

    /// Opens a ring in this region.
    pub fn open(&self) -> Result<RawRing, crate::OpenError> {
        // SAFETY: as in `init`.
        unsafe { RawRing::open(self.ptr, self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.alloc) }
    }
}

/// The bytes of record number `seq` (distinct for neighbouring `seq`s at every size).
pub fn record_bytes(seq: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = (seq >> (8 * (i % 8))) as u8 ^ ((i / 8) as u8).wrapping_mul(0x5b);
    }
}

fn expect_record(seq: u64, got: &[u8]) {
    let mut want = vec![0u8; got.len()];
    record_bytes(seq, &mut want);
    assert_eq!(got, &want[..], "record {seq} corrupted");
}

/// Input bytes, read front to back; 0 once exhausted.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    fn arg(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }
}

/// A small ring configuration chosen by three input bytes.
fn config_from(inp: &mut Input<'_>) -> RingConfig {
    let (a, b, c) = (inp.arg(), inp.arg(), inp.arg());
    let kind = if a & 1 == 0 {
        RingKind::Spsc
    } else {
        RingKind::Mpmc
    };
    // Every capacity from 1 to 16, powers of two and others (slot = position % capacity).
    let capacity = 1 + u32::from(a >> 1) % 16;
    let record_size = 1 + u32::from(b % 24);
    let record_align = 1u32 << (c % 8);
    let mut cfg = RingConfig::new(kind, capacity, record_size, record_align);
    cfg.ext_len = u64::from(c >> 3) * 24;
    cfg.fingerprint = [a ^ b ^ c; 16];
    cfg
}

/// Drives a ring with operation bytes and checks every result against a `VecDeque` model.
///
/// The first three bytes choose the configuration (kind, capacity 1–16, record size 1–24,
/// alignment 1–128, extension length); each following byte is an operation, most with an
/// argument byte. Panics on any divergence.
pub fn ring_vs_model(data: &[u8]) {
    let mut inp = Input { data };
    let cfg = config_from(&mut inp);
    let layout = Layout::new(&cfg).expect("model configs are valid");
    let region = Region::zeroed(layout.total_len as usize + 64);
    let ring = region.init(&cfg).expect("init");
    assert_eq!(ring.layout(), layout);
    let reopened = region.open().expect("a fresh ring opens");
    assert_eq!(reopened.layout(), layout);
    match cfg.kind {
        RingKind::Spsc => spsc_vs_model(&ring, &mut inp),
        RingKind::Mpmc => {
            let mut m = MpmcModel::new(u64::from(cfg.capacity));
            let (mut p0, mut p1) = (ring.mpmc_producer().unwrap(), ring.mpmc_producer().unwrap());
            let (mut c0, mut c1) = (ring.mpmc_consumer().unwrap(), ring.mpmc_consumer().unwrap());
            // One handle of each side polls (answers `Full`/`Empty` from the slot alone), one
            // is linearizable (the default). Both answer alike here: a claim in progress is
            // this thread's own grant, so the linearizable one waits it out in vain (once per
            // handle and claim: a bounded wait per grant met) and then answers as the poll does.
            p1.set_linearizable(false);
            c1.set_linearizable(false);
            let mut h = Handles {
                p: [Some(&mut p0), Some(&mut p1)],
                c: [Some(&mut c0), Some(&mut c1)],
            };
            mpmc_ops(&ring, &mut h, &mut m, &mut inp, usize::MAX, 0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SPSC

struct SpscModel {
    q: VecDeque<u64>,
    next: u64,
}

fn spsc_vs_model(ring: &RawRing, inp: &mut Input<'_>) {
    // SAFETY: this driver is the only user of the ring: one producer, one consumer.
    let (mut p, mut c) = unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
    let rs = p.record_size();
    let cap = p.capacity();
    let mut m = SpscModel {
        q: VecDeque::new(),
        next: 0,
    };
    let mut buf = vec![0u8; rs * (cap + 2)];
    while let Some(op) = inp.byte() {
        let arg = inp.arg();
        let n = usize::from(arg) % (cap + 2);
        match op % 14 {
            0 => {
                record_bytes(m.next, &mut buf[..rs]);
                let r = p.try_push(&buf[..rs]);
                if m.q.len() < cap {
                    assert_eq!(r, Ok(()));
                    m.q.push_back(m.next);
                    m.next += 1;
                } else {
                    assert_eq!(r, Err(PushError::Full));
                }
            }
            1 => {
                let r = c.try_pop(&mut buf[..rs]);
                match m.q.pop_front() {
                    Some(seq) => {
                        assert_eq!(r, Ok(()));
                        expect_record(seq, &buf[..rs]);
                    }
                    None => assert_eq!(r, Err(PopError::Empty)),
                }
            }
            2 => {
                for i in 0..n {
                    record_bytes(m.next + i as u64, &mut buf[i * rs..(i + 1) * rs]);
                }
                let want = n.min(cap - m.q.len());
                let got = if arg & 0x80 != 0 {
                    // A trailing partial record is ignored.
                    let extra = usize::from(arg & 1 == 1 && rs > 1);
                    match p.try_push_batch(&buf[..n * rs + extra]) {
                        Ok(k) => k,
                        Err(e) => {
                            assert_eq!(e, PushError::Full);
                            assert!(n > 0);
                            0
                        }
                    }
                } else {
                    p.push_batch(&buf[..n * rs])
                };
                assert_eq!(got, want);
                for _ in 0..got {
                    m.q.push_back(m.next);
                    m.next += 1;
                }
            }
            3 => {
                let got = c.pop_batch(&mut buf[..n * rs]);
                assert_eq!(got, n.min(m.q.len()));
                for i in 0..got {
                    expect_record(m.q.pop_front().unwrap(), &buf[i * rs..(i + 1) * rs]);
                }
            }
            4 | 5 => {
                let how = inp.arg();
                let free = cap - m.q.len();
                let g = if op % 14 == 4 {
                    match p.try_reserve(n) {
                        Ok(g) => {
                            assert!(n <= free);
                            g
                        }
                        Err(e) => {
                            assert_eq!(e, PushError::Full);
                            assert!(n > free);
                            continue;
                        }
                    }
                } else {
                    p.reserve_up_to(n)
                };
                let k = g.len();
                assert_eq!(k, if op % 14 == 4 { n } else { n.min(free) });
                let mut g = g;
                for i in 0..k {
                    record_bytes(m.next + i as u64, &mut buf[..rs]);
                    if how & 4 == 0 {
                        g.write(i, &buf[..rs]);
                    } else {
                        // SAFETY: slot i is reserved by the grant and holds rs writable bytes.
                        unsafe {
                            core::ptr::copy_nonoverlapping(buf.as_ptr(), g.slot(i).as_ptr(), rs)
                        };
                    }
                }
                let committed = match how % 3 {
                    0 => {
                        g.commit();
                        k
                    }
                    1 => {
                        let j = usize::from(how >> 3) % (k + 2);
                        g.commit_first(j);
                        j.min(k)
                    }
                    _ => {
                        let _dropped = g; // an SPSC grant dropped uncommitted publishes nothing
                        0
                    }
                };
                for i in 0..committed {
                    m.q.push_back(m.next + i as u64);
                }
                m.next += k as u64;
            }
            6 | 7 => {
                let how = inp.arg();
                let g = if op % 14 == 6 {
                    match c.try_peek(n) {
                        Ok(g) => {
                            assert!(n <= m.q.len());
                            g
                        }
                        Err(e) => {
                            assert_eq!(e, PopError::Empty);
                            assert!(n > m.q.len());
                            continue;
                        }
                    }
                } else {
                    c.peek_up_to(n)
                };
                let k = g.len();
                assert_eq!(k, if op % 14 == 6 { n } else { n.min(m.q.len()) });
                for i in 0..k {
                    g.read(i, &mut buf[..rs]);
                    expect_record(m.q[i], &buf[..rs]);
                    // SAFETY: record i is published and held by the grant; rs readable bytes.
                    let direct = unsafe { core::slice::from_raw_parts(g.slot(i).as_ptr(), rs) };
                    expect_record(m.q[i], direct);
                }
                let released = match how % 3 {
                    0 => {
                        g.release();
                        k
                    }
                    1 => {
                        let j = usize::from(how >> 3) % (k + 2);
                        g.release_first(j);
                        j.min(k)
                    }
                    _ => 0,
                };
                for _ in 0..released {
                    m.q.pop_front();
                }
            }
            8 => {
                assert_eq!(ring.len(), m.q.len());
                assert_eq!(p.len(), m.q.len());
                assert_eq!(c.is_empty(), m.q.is_empty());
                assert_eq!(p.is_full(), m.q.len() == cap);
            }
            9 => {
                // Handles re-read their cursor from shared memory.
                // SAFETY: the old handle is dropped first: still one producer and one consumer.
                unsafe {
                    if arg & 1 == 0 {
                        p = ring.spsc_producer().unwrap();
                    } else {
                        c = ring.spsc_consumer().unwrap();
                    }
                }
            }
            10 => {
                let bad = rs + 1 - 2 * usize::from(arg & 1 == 1 && rs > 1);
                assert_eq!(
                    p.try_push(&buf[..bad]),
                    Err(PushError::WrongLength {
                        expected: rs,
                        got: bad
                    })
                );
                assert_eq!(
                    c.try_pop(&mut buf[..bad]),
                    Err(PopError::WrongLength {
                        expected: rs,
                        got: bad
                    })
                );
            }
            11 => {
                let seq = m.next;
                let r = p.try_push_with(|slot| {
                    let mut tmp = vec![0u8; rs];
                    record_bytes(seq, &mut tmp);
                    // SAFETY: the slot holds rs writable bytes we own until publish.
                    unsafe { core::ptr::copy_nonoverlapping(tmp.as_ptr(), slot.as_ptr(), rs) };
                    seq
                });
                if m.q.len() < cap {
                    assert_eq!(r, Ok(seq));
                    m.q.push_back(seq);
                    m.next += 1;
                } else {
                    assert_eq!(r, Err(PushError::Full));
                }
            }
            12 => {
                let r = c.try_pop_with(|slot| {
                    // SAFETY: the slot holds rs published bytes we own until release.
                    unsafe { core::slice::from_raw_parts(slot.as_ptr(), rs) }.to_vec()
                });
                match m.q.pop_front() {
                    Some(seq) => expect_record(seq, &r.expect("a record")),
                    None => assert_eq!(r, Err(PopError::Empty)),
                }
            }
            _ => wait_cell_roundtrip(ring, arg),
        }
        assert_eq!(ring.len(), m.q.len());
    }
}

/// The wait-cell protocol single-threaded: announce, take, withdraw.
fn wait_cell_roundtrip(ring: &RawRing, arg: u8) {
    let cell = if arg & 1 == 0 {
        ring.data_cell()
    } else {
        ring.room_cell()
    };
    assert_eq!(cell.sleepers(), 0);
    assert_eq!(cell.take_tokens(), 0);
    cell.announce();
    cell.announce();
    if arg & 2 == 0 {
        assert!(cell.withdraw());
        assert_eq!(cell.take_tokens(), 1);
        assert!(!cell.withdraw(), "the ringer took the count");
    } else {
        assert_eq!(cell.take_tokens(), 2);
        assert!(!cell.withdraw());
    }
    assert_eq!(cell.sleepers(), 0);
    assert_eq!(
        cell.permits().load(core::sync::atomic::Ordering::Relaxed),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// MPMC

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Claimed by a producer, not published; the record it will hold.
    Pending(u64),
    Ready(u64),
    Skipped,
    /// Claimed by a consumer, not released; the record it holds.
    Claimed(u64),
    Released,
}

/// Positions from `base` (the oldest not yet released) to `tail`.
struct MpmcModel {
    cap: u64,
    base: u64,
    st: VecDeque<St>,
    tail: u64,
    head: u64,
    next: u64,
}

impl MpmcModel {
    fn new(cap: u64) -> Self {
        MpmcModel {
            cap,
            base: 0,
            st: VecDeque::new(),
            tail: 0,
            head: 0,
            next: 0,
        }
    }

    fn get(&self, pos: u64) -> St {
        if pos < self.base {
            St::Released
        } else {
            self.st[(pos - self.base) as usize]
        }
    }

    fn set(&mut self, pos: u64, s: St) {
        let i = (pos - self.base) as usize;
        self.st[i] = s;
        while self.st.front() == Some(&St::Released) {
            self.st.pop_front();
            self.base += 1;
        }
    }

    /// Whether a producer may claim `pos`: within the capacity of the head (consumers claim
    /// records out of the ring), and its slot free (the slot's record one lap of slots back —
    /// the power of two at or above the capacity — released).
    fn free_for(&self, pos: u64) -> bool {
        let lap = self.cap.next_power_of_two();
        pos < self.head + self.cap && (pos < lap || self.get(pos - lap) == St::Released)
    }

    /// Claims up to `want` free slots in a row (all or none with `exact`): (start, n).
    fn claim_push(&mut self, want: u64, exact: bool) -> Option<(u64, u64)> {
        let mut n = 0;
        while n < want && self.free_for(self.tail + n) {
            n += 1;
        }
        if n == 0 || (exact && n < want) {
            return None;
        }
        let start = self.tail;
        for i in 0..n {
            self.st.push_back(St::Pending(self.next + i));
        }
        self.tail += n;
        Some((start, n))
    }

    /// Mirrors `claim_pop`: passes over leading skipped slots, then claims a run of records.
    fn claim_pop(&mut self, want: u64, exact: bool) -> Option<(u64, u64)> {
        loop {
            let (mut skipped, mut data) = (0, 0);
            while data < want && skipped + data < self.cap {
                let q = self.head + skipped + data;
                if q >= self.tail {
                    break;
                }
                match self.get(q) {
                    St::Ready(_) => data += 1,
                    St::Skipped if data == 0 => skipped += 1,
                    _ => break,
                }
            }
            let take = if exact && data < want { 0 } else { data };
            if skipped + take == 0 {
                return None;
            }
            for i in 0..skipped {
                let h = self.head + i;
                self.set(h, St::Released);
            }
            self.head += skipped;
            if take > 0 {
                let start = self.head;
                for i in 0..take {
                    let seq = self.seq_at(start + i);
                    self.set(start + i, St::Claimed(seq));
                }
                self.head += take;
                return Some((start, take));
            }
        }
    }

    fn seq_at(&self, pos: u64) -> u64 {
        match self.get(pos) {
            St::Ready(s) | St::Pending(s) => s,
            other => panic!("no record at {pos}: {other:?}"),
        }
    }
}

struct Handles<'a> {
    p: [Option<&'a mut MpmcProducer>; 2],
    c: [Option<&'a mut MpmcConsumer>; 2],
}

/// Runs up to `budget` operations (nested holds run a few inside).
fn mpmc_ops(
    ring: &RawRing,
    h: &mut Handles<'_>,
    m: &mut MpmcModel,
    inp: &mut Input<'_>,
    budget: usize,
    depth: u32,
) {
    let cap = m.cap as usize;
    let rs = ring.config().record_size as usize;
    let mut buf = vec![0u8; rs * (cap + 2)];
    let mut done = 0;
    while done < budget {
        let Some(op) = inp.byte() else { return };
        done += 1;
        let arg = inp.arg();
        let n = usize::from(arg) % (cap + 2);
        let pi = usize::from(arg >> 7);
        let ci = usize::from((arg >> 6) & 1);
        match op % 12 {
            0 => {
                let Some(p) = h.p[pi].as_deref_mut() else {
                    continue;
                };
                let seq = m.next;
                record_bytes(seq, &mut buf[..rs]);
                let r = if arg & 0x20 == 0 {
                    p.try_push(&buf[..rs])
                } else {
                    let src = &buf[..rs];
                    p.try_push_with(|slot| {
                        // SAFETY: the claimed slot holds rs writable bytes until publish.
                        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), slot.as_ptr(), rs) }
                    })
                };
                match m.claim_push(1, true) {
                    Some((pos, _)) => {
                        assert_eq!(r, Ok(()));
                        m.set(pos, St::Ready(seq));
                        m.next += 1;
                    }
                    None => assert_eq!(r, Err(PushError::Full)),
                }
            }
            1 => {
                let Some(c) = h.c[ci].as_deref_mut() else {
                    continue;
                };
                let r = if arg & 0x20 == 0 {
                    c.try_pop(&mut buf[..rs])
                } else {
                    let dst = &mut buf[..rs];
                    c.try_pop_with(|slot| {
                        // SAFETY: the claimed slot holds rs published bytes until release.
                        unsafe {
                            core::ptr::copy_nonoverlapping(slot.as_ptr(), dst.as_mut_ptr(), rs)
                        }
                    })
                };
                match m.claim_pop(1, true) {
                    Some((pos, _)) => {
                        assert_eq!(r, Ok(()));
                        expect_record(m.seq_at_claimed(pos), &buf[..rs]);
                        m.release_claimed(pos);
                    }
                    None => assert_eq!(r, Err(PopError::Empty)),
                }
            }
            2 => {
                let Some(p) = h.p[pi].as_deref_mut() else {
                    continue;
                };
                for i in 0..n {
                    record_bytes(m.next + i as u64, &mut buf[i * rs..(i + 1) * rs]);
                }
                let got = p.push_batch(&buf[..n * rs]);
                let want = (n as u64).min(m.cap);
                let exp = if want == 0 {
                    None
                } else {
                    m.claim_push(want, false)
                };
                match exp {
                    Some((start, k)) => {
                        assert_eq!(got as u64, k);
                        for i in 0..k {
                            m.set(start + i, St::Ready(m.next + i));
                        }
                        m.next += k;
                    }
                    None => assert_eq!(got, 0),
                }
            }
            3 => {
                let Some(c) = h.c[ci].as_deref_mut() else {
                    continue;
                };
                let got = c.pop_batch(&mut buf[..n * rs]);
                let want = (n as u64).min(m.cap);
                let exp = if want == 0 {
                    None
                } else {
                    m.claim_pop(want, false)
                };
                match exp {
                    Some((start, k)) => {
                        assert_eq!(got as u64, k);
                        for i in 0..k {
                            let seq = m.seq_at_claimed(start + i);
                            expect_record(seq, &buf[i as usize * rs..(i as usize + 1) * rs]);
                            m.release_claimed(start + i);
                        }
                    }
                    None => assert_eq!(got, 0),
                }
            }
            4..=6 => {
                // Reserve on one producer; op 6 holds the grant while nested operations run
                // on the other handles.
                let how = inp.arg();
                let Some(p) = h.p[pi].take() else { continue };
                let exact = op % 12 != 5;
                let want = n as u64;
                let r = if exact {
                    p.try_reserve(n).ok()
                } else {
                    Some(p.reserve_up_to(n))
                };
                let exp = if want == 0 {
                    Some((m.tail, 0))
                } else if exact && want > m.cap {
                    None
                } else {
                    m.claim_push(want.min(m.cap), exact).or(if exact {
                        None
                    } else {
                        Some((m.tail, 0))
                    })
                };
                match (r, exp) {
                    (None, None) => {}
                    (Some(mut g), Some((start, k))) => {
                        assert_eq!(g.len() as u64, k);
                        for i in 0..k as usize {
                            record_bytes(m.next + i as u64, &mut buf[..rs]);
                            g.write(i, &buf[..rs]);
                        }
                        let seq0 = m.next;
                        m.next += k;
                        if op % 12 == 6 && depth < 2 {
                            mpmc_ops(ring, h, m, inp, usize::from(how % 8), depth + 1);
                        }
                        let committed = match how >> 6 {
                            0 | 1 => {
                                g.commit();
                                k
                            }
                            2 => {
                                let j = u64::from(how >> 3 & 7) % (k + 2);
                                g.commit_first(j as usize);
                                j.min(k)
                            }
                            _ => {
                                drop(g);
                                0
                            }
                        };
                        for i in 0..k {
                            let s = if i < committed {
                                St::Ready(seq0 + i)
                            } else {
                                St::Skipped
                            };
                            m.set(start + i, s);
                        }
                    }
                    (r, exp) => panic!(
                        "reserve({n}, exact {exact}): ring {:?}, model {exp:?}",
                        r.map(|g| g.len())
                    ),
                }
                h.p[pi] = Some(p);
            }
            7..=9 => {
                // Peek on one consumer; op 9 holds the grant across nested operations.
                let how = inp.arg();
                let Some(c) = h.c[ci].take() else { continue };
                let exact = op % 12 != 8;
                let want = n as u64;
                let r = if exact {
                    c.try_peek(n).ok()
                } else {
                    Some(c.peek_up_to(n))
                };
                let exp = if want == 0 {
                    Some((m.head, 0))
                } else if exact && want > m.cap {
                    None
                } else {
                    m.claim_pop(want.min(m.cap), exact).or(if exact {
                        None
                    } else {
                        Some((m.head, 0))
                    })
                };
                match (r, exp) {
                    (None, None) => {}
                    (Some(g), Some((start, k))) => {
                        assert_eq!(g.len() as u64, k);
                        for i in 0..k as usize {
                            g.read(i, &mut buf[..rs]);
                            expect_record(m.seq_at_claimed(start + i as u64), &buf[..rs]);
                        }
                        if op % 12 == 9 && depth < 2 {
                            mpmc_ops(ring, h, m, inp, usize::from(how % 8), depth + 1);
                        }
                        match how >> 6 {
                            0 | 1 => g.release(),
                            2 => g.release_first(usize::from(how >> 3 & 7)),
                            _ => drop(g),
                        }
                        for i in 0..k {
                            m.release_claimed(start + i);
                        }
                    }
                    (r, exp) => panic!(
                        "peek({n}, exact {exact}): ring {:?}, model {exp:?}",
                        r.map(|g| g.len())
                    ),
                }
                h.c[ci] = Some(c);
            }
            10 => {
                assert_eq!(ring.len() as u64, m.tail - m.head);
                assert_eq!(ring.is_empty(), m.tail == m.head);
                assert_eq!(ring.is_full(), m.tail - m.head == m.cap);
                let bad = rs + 1;
                buf.resize(buf.len().max(bad), 0);
                if let Some(p) = h.p[pi].as_deref_mut() {
                    assert_eq!(
                        p.try_push(&buf[..bad]),
                        Err(PushError::WrongLength {
                            expected: rs,
                            got: bad
                        })
                    );
                }
                if let Some(c) = h.c[ci].as_deref_mut() {
                    assert_eq!(
                        c.try_pop(&mut buf[..bad]),
                        Err(PopError::WrongLength {
                            expected: rs,
                            got: bad
                        })
                    );
                }
            }
            _ => wait_cell_roundtrip(ring, arg),
        }
        assert_eq!(ring.len() as u64, m.tail - m.head, "len after op {op}");
    }
}

impl MpmcModel {
    fn seq_at_claimed(&self, pos: u64) -> u64 {
        match self.get(pos) {
            St::Claimed(s) => s,
            other => panic!("position {pos} is not claimed: {other:?}"),
        }
    }

    fn release_claimed(&mut self, pos: u64) {
        assert!(matches!(self.get(pos), St::Claimed(_)));
        self.set(pos, St::Released);
    }
}

// ---------------------------------------------------------------------------------------------
// Opening arbitrary regions

/// Arbitrary bytes as a region: opening gives a clean error or a working ring, which is then
/// exercised while the input keeps scribbling on it like a hostile peer.
///
/// Byte 0 chooses the mode. Even: the rest *is* the region. Odd: a valid ring is created from
/// the next three bytes, then `k` (next byte, mod 8) patches of (u16 offset, byte) are applied
/// before opening; after that each input byte is either a patch (high bit set) or an operation.
pub fn open_region(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut inp = Input { data: rest };
    let region = if mode & 1 == 0 {
        Region::from_bytes(&rest[..rest.len().min(1 << 16)])
    } else {
        let cfg = config_from(&mut inp);
        let total = Layout::new(&cfg)
            .expect("model configs are valid")
            .total_len as usize;
        let region = Region::zeroed(total + usize::from(mode >> 4) * 8);
        region.init(&cfg).expect("init");
        for _ in 0..inp.arg() % 8 {
            patch(&region, &mut inp);
        }
        region
    };
    let ring = match region.open() {
        Ok(ring) => ring,
        Err(e) => {
            // Every error renders (and names its field and value).
            assert!(!format!("{e}").is_empty());
            return;
        }
    };
    let info = ring.config();
    assert!(info.capacity >= 1 && info.capacity <= crate::layout::MAX_CAPACITY);
    assert!(info.record_size >= 1 && info.record_align.is_power_of_two());
    assert!(ring.layout().total_len as usize <= region.len());
    let (ext, ext_len) = ring.ext();
    assert!(ext.as_ptr() as usize + ext_len <= region.base().as_ptr() as usize + region.len());
    if mode & 1 == 0 {
        // The region bytes are the input: run a fixed script on it.
        inp = Input {
            data: &[0, 3, 1, 1, 2, 9, 3, 9, 4, 2, 5, 3, 6, 2, 7, 5, 8, 0, 9, 1],
        };
    }
    let rs = info.record_size as usize;
    let mut buf = vec![0u8; rs * 4];
    let mut ops: Ops = match info.kind {
        // SAFETY: this driver is the ring's only user: one producer, one consumer.
        RingKind::Spsc => unsafe {
            Ops::Spsc(ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap())
        },
        RingKind::Mpmc => Ops::Mpmc(ring.mpmc_producer().unwrap(), ring.mpmc_consumer().unwrap()),
    };
    // The other kind's handles are refused.
    match info.kind {
        RingKind::Spsc => assert!(ring.mpmc_producer().is_err() && ring.mpmc_consumer().is_err()),
        RingKind::Mpmc => {
            // SAFETY: refused before any handle is built.
            let refused = unsafe { ring.spsc_producer().is_err() && ring.spsc_consumer().is_err() };
            assert!(refused);
        }
    }
    let mut steps = 0;
    while let Some(b) = inp.byte() {
        steps += 1;
        if steps > 256 {
            break;
        }
        if b & 0x80 != 0 {
            let (lo, v) = (inp.arg(), inp.arg());
            region.scribble(usize::from(b & 0x7f) << 8 | usize::from(lo), v);
            continue;
        }
        let arg = inp.arg();
        let n = usize::from(arg % 5);
        ops.run(b % 10, n, arg, &mut buf, rs);
        assert!(ring.len() <= ring.capacity());
        let _ = (ring.data_cell().take_tokens(), ring.room_cell().withdraw());
    }
    assert!(!format!("{:?}", ring.header()).is_empty());
}

fn patch(region: &Region, inp: &mut Input<'_>) {
    let (hi, lo, v) = (inp.arg(), inp.arg(), inp.arg());
    region.scribble(usize::from(hi) << 8 | usize::from(lo), v);
}

enum Ops {
    Spsc(crate::SpscProducer, crate::SpscConsumer),
    Mpmc(MpmcProducer, MpmcConsumer),
}

macro_rules! exercise {
    ($p:expr, $c:expr, $op:expr, $n:expr, $arg:expr, $buf:expr, $rs:expr) => {{
        let (p, c, n, buf, rs) = ($p, $c, $n, $buf, $rs);
        match $op {
            0 => {
                let _ = p.try_push(&buf[..rs]);
            }
            1 => {
                let _ = c.try_pop(&mut buf[..rs]);
            }
            2 => assert!(p.push_batch(&buf[..n.min(4) * rs]) <= n),
            3 => assert!(c.pop_batch(&mut buf[..n.min(4) * rs]) <= n),
            4 => {
                if let Ok(mut g) = p.try_reserve(n) {
                    assert_eq!(g.len(), n);
                    for i in 0..n {
                        g.write(i, &buf[..rs]);
                    }
                    if $arg & 0x40 == 0 {
                        g.commit();
                    }
                }
            }
            5 => {
                let mut g = p.reserve_up_to(n);
                assert!(g.len() <= n);
                for i in 0..g.len() {
                    g.write(i, &buf[..rs]);
                }
                let k = usize::from($arg >> 5);
                g.commit_first(k);
            }
            6 => {
                if let Ok(g) = c.try_peek(n) {
                    assert_eq!(g.len(), n);
                    for i in 0..n {
                        g.read(i, &mut buf[..rs]);
                    }
                    if $arg & 0x40 == 0 {
                        g.release();
                    }
                }
            }
            7 => {
                let g = c.peek_up_to(n);
                assert!(g.len() <= n);
                for i in 0..g.len() {
                    g.read(i, &mut buf[..rs]);
                }
                g.release_first(usize::from($arg >> 5));
            }
            8 => {
                let _ = (p.wake_consumers(), c.wake_producers());
            }
            _ => {
                let _ = (p.len(), c.is_empty(), p.is_full());
            }
        }
    }};
}

impl Ops {
    fn run(&mut self, op: u8, n: usize, arg: u8, buf: &mut [u8], rs: usize) {
        match self {
            Ops::Spsc(p, c) => exercise!(p, c, op, n, arg, buf, rs),
            Ops::Mpmc(p, c) => exercise!(p, c, op, n, arg, buf, rs),
        }
    }
}
