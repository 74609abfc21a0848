//! [`open_region`](super::open_region): arbitrary bytes as a region, or a valid ring patched
//! by the input like a hostile peer (the differential driver's other half, in `super`).

use alloc::format;
use alloc::vec;

use super::{config_from, Input, Region};
use crate::{Layout, MpmcConsumer, MpmcProducer, RingKind};

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
