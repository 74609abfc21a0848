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
use alloc::vec;
use core::ptr::NonNull;

mod hostile;
mod mpmc;

pub use hostile::open_region;
use mpmc::{mpmc_ops, Handles, MpmcModel};

use crate::{Layout, PopError, PushError, RawRing, RingConfig, RingKind};

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
