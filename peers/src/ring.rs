//! shmchan's SPSC ring alone, without the channel around it: `shmchan-ring`'s `try_push_with`
//! / `try_pop_with` over a region of anonymous shared memory mapped before the fork, every
//! record written and checked in full. No endpoint table, doorbell, liveness check or counters;
//! the consumer coalesces its looks at the producer's cursor as a blocking channel receiver
//! does (`shmchan`'s `coalesce` module, restated in [`Coalesce`]). Beside `shmchan-spsc` it shows
//! what the channel layer costs a stream across processes; beside ringfire, what the ring and
//! its coalescing do on their own: the ceiling of the channel's stream.
//!
//! Why the coalescing: a consumer that looks again at once whenever it has caught up keeps
//! pulling the producer's cursor line (and the slot line being written) to its core, and the
//! producer's next stores must take them back; the pair settles a few records apart and
//! trades lines for nearly every record. Measured here with a consumer that looked at once
//! (five invocations, same-run ratios to ringfire at 8 B): 0.26-0.99x; with the coalescing,
//! 0.84-1.84x over the invocations of the same session.

use std::ptr::NonNull;

use shmchan_ring::{Layout, PopError, PushError, RawRing, RingConfig, RingKind};

use crate::proc::{shared_mapping, Ctl};
use crate::stream::{Clock, Consume, Produce, Stream};
use crate::work::{by_size, capacity_for, fill, verify, with_record, END};
use crate::Error;

/// The stream of `size`-byte records, for the interleaved throughput.
pub fn stream(size: usize) -> Result<Box<dyn Stream>, Error> {
    by_size!(size, stream_of())
}

/// One mapping holding one ring.
struct Region<const W: usize> {
    base: NonNull<u8>,
    len: usize,
    ring: RawRing,
}

impl<const W: usize> Drop for Region<W> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `stream_of`; no handle outlives the Region (the
        // producer and consumer borrow it).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

fn stream_of<const W: usize>() -> Result<Box<dyn Stream>, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::msg(format!("ring: {e}"));
    let cfg = RingConfig::new(RingKind::Spsc, capacity_for(W * 8) as u32, W as u32 * 8, 8);
    let layout = Layout::new(&cfg).map_err(|e| bad(&e))?;
    let len = (layout.total_len as usize).next_multiple_of(4096);
    let base = shared_mapping(len)?;
    // SAFETY: `len` zeroed bytes, page aligned, mapped until the Region drops (which owns
    // every handle's region); nobody else initialises it.
    let ring = match unsafe { RawRing::init(base, len, &cfg) } {
        Ok(r) => r,
        Err(e) => {
            // SAFETY: the mapping just made.
            unsafe { libc::munmap(base.as_ptr().cast(), len) };
            return Err(bad(&e));
        }
    };
    Ok(Box::new(Region::<W> { base, len, ring }))
}

impl<const W: usize> Stream for Region<W> {
    fn producer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Produce + 'a>, Error> {
        // SAFETY: the only producer of this ring (the producer process makes one).
        let tx = unsafe { self.ring.spsc_producer() }.map_err(|e| Error::msg(e.to_string()))?;
        Ok(Box::new(Prod::<W> { tx, _r: self }))
    }

    fn consumer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Consume + 'a>, Error> {
        // SAFETY: the only consumer of this ring.
        let rx = unsafe { self.ring.spsc_consumer() }.map_err(|e| Error::msg(e.to_string()))?;
        Ok(Box::new(Cons::<W> {
            rx,
            co: Coalesce::new(),
            _r: self,
        }))
    }
}

struct Prod<'a, const W: usize> {
    tx: shmchan_ring::SpscProducer,
    _r: &'a Region<W>,
}

impl<const W: usize> Prod<'_, W> {
    #[inline(always)]
    fn push(&mut self, rec: &[u64; W]) -> Result<(), Error> {
        let rec = *rec;
        loop {
            // SAFETY (of the write): the slot holds W * 8 writable bytes, 8-aligned.
            match self
                .tx
                .try_push_with(|p| unsafe { p.cast::<[u64; W]>().write(rec) })
            {
                Ok(()) => return Ok(()),
                Err(PushError::Full) => std::hint::spin_loop(),
                Err(e) => return Err(Error::msg(format!("push: {e}"))),
            }
        }
    }
}

impl<const W: usize> Produce for Prod<'_, W> {
    fn slice(&mut self, ctl: &Ctl, j: u32, seq: &mut u64) -> Result<(), Error> {
        with_record::<W, _>(|rec| {
            while !ctl.slice_over(j) {
                fill(rec, *seq);
                self.push(rec)?;
                *seq += 1;
            }
            fill(rec, END);
            self.push(rec)
        })
    }
}

struct Cons<'a, const W: usize> {
    rx: shmchan_ring::SpscConsumer,
    co: Coalesce,
    _r: &'a Region<W>,
}

impl<const W: usize> Cons<'_, W> {
    /// Takes the next record into `out`. Copied out of its slot in the closure, as the
    /// channel's copying receive does: a record returned through `try_pop_with`'s
    /// `Result<[u64; W], PopError>` was moved through parts the optimizer split the `Result`
    /// into, some misaligned, and ran at about half the rate at 64 bytes.
    #[inline(always)]
    fn next(&mut self, out: &mut [u64; W]) -> Result<(), Error> {
        let looks = self.rx.known_ready() == 0;
        if looks {
            self.co.before_look();
        }
        let mut first = true;
        loop {
            // SAFETY (of the copy): the slot holds a whole record, 8-aligned; `out` is ours.
            match self.rx.try_pop_with(|p| unsafe {
                std::ptr::copy_nonoverlapping(p.cast::<[u64; W]>().as_ptr(), out, 1)
            }) {
                Ok(()) => {
                    if looks && first {
                        self.co.after_look(self.rx.known_ready());
                    }
                    return Ok(());
                }
                Err(PopError::Empty) => {
                    self.co.streaming = false;
                    first = false;
                    std::hint::spin_loop();
                }
                Err(e) => return Err(Error::msg(format!("pop: {e}"))),
            }
        }
    }
}

/// The channel receiver's read coalescing (see `shmchan`'s `coalesce` module): once a look
/// showed more than the record it took, the next look waits first, from about 200 ns up to
/// 4 µs, lengthened when a look after a pause finds fewer than 8 records and shortened when it
/// finds more than 32; a look that finds nothing ends the streaming state.
struct Coalesce {
    streaming: bool,
    spins: u32,
    min: u32,
    max: u32,
}

impl Coalesce {
    fn new() -> Coalesce {
        // `spin_loop` hints per nanosecond on this machine, the fastest of a few tries.
        const PROBE: u32 = 1024;
        let fastest = (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..PROBE {
                    std::hint::spin_loop();
                }
                t.elapsed()
            })
            .min()
            .unwrap_or_default();
        let per = fastest.as_nanos().max(1) as f64 / f64::from(PROBE);
        let spins = |ns: f64| ((ns / per) as u32).clamp(4, 1 << 16);
        let (min, max) = (spins(200.0), spins(4000.0));
        Coalesce {
            streaming: false,
            spins: min,
            min,
            max,
        }
    }

    #[inline(always)]
    fn before_look(&self) {
        if self.streaming {
            for _ in 0..self.spins {
                std::hint::spin_loop();
            }
        }
    }

    #[inline(always)]
    fn after_look(&mut self, more: u64) {
        if self.streaming {
            let found = more + 1;
            if found < 8 {
                self.spins = (self.spins * 2).min(self.max);
            } else if found > 32 {
                self.spins = (self.spins / 2).max(self.min);
            }
        }
        self.streaming = more > 0;
    }
}

impl<const W: usize> Consume for Cons<'_, W> {
    fn slice(&mut self, seq: &mut u64, clock: &mut Clock) -> Result<u64, Error> {
        let mut n = 0;
        let mut r = [0u64; W];
        loop {
            self.next(&mut r)?;
            verify(&r, *seq)?;
            *seq += 1;
            n += 1;
            if clock.add(1) {
                return Ok(n);
            }
        }
    }

    fn drain(&mut self, seq: &mut u64) -> Result<(), Error> {
        let mut r = [0u64; W];
        loop {
            self.next(&mut r)?;
            if r[0] == END {
                return Ok(());
            }
            verify(&r, *seq)?;
            *seq += 1;
        }
    }
}
