//! ringfire: its single-producer ring in lossless back-pressure mode
//! (`FlowControl::LosslessBackpressure`), one registered reader that busy-polls (`try_recv` in a
//! `spin_loop`, as its `BusySpin` wait strategy does), `push(&T)` of a record written in full,
//! `try_recv` copying it out, checked in full.
//!
//! The ring is a file under `/dev/shm` with a unique name. The producer process creates it (its
//! file lock belongs to the producer), the consumer attaches once it exists, registering from
//! sequence 1 so that nothing is lapped; the producer unlinks it when dropped, and the parent
//! removes it in any case. Capacity: [`capacity_for`] the record size (a power of two).

use std::path::{Path, PathBuf};

use ringfire::{ConsumerStartMode, FlowControl, RingConsumer, RingConsumerBuilder, RingProducer};
use ringfire::{RingProducerBuilder, RingfireError};

use crate::names::{unique, Litter};
use crate::proc::Ctl;
use crate::rtt::{Echo, Pair, Ping};
use crate::stream::{Clock, Consume, Produce, Stream};
use crate::work::{by_size, capacity_for, fill, verify, with_record, END, PING_CAPACITY};
use crate::Error;

fn rf(what: &'static str) -> impl Fn(RingfireError) -> Error {
    move |e| Error::msg(format!("{what}: {e}"))
}

fn create<const W: usize>(path: &Path, cap: usize) -> Result<RingProducer<[u64; W]>, Error> {
    RingProducerBuilder::new(cap as u64)
        .flow_control(FlowControl::LosslessBackpressure)
        .build::<[u64; W], _>(path)
        .map_err(rf("create the ring"))
}

fn attach<const W: usize>(path: &Path) -> Result<RingConsumer<[u64; W]>, Error> {
    RingConsumerBuilder::<[u64; W]>::new()
        .start_mode(ConsumerStartMode::Sequence(1))
        .attach(path)
        .map_err(rf("attach to the ring"))
}

/// Busy-polls for the next record.
#[inline(always)]
fn next<const W: usize>(c: &mut RingConsumer<[u64; W]>) -> [u64; W] {
    loop {
        if let Some(r) = c.try_recv() {
            return r;
        }
        std::hint::spin_loop();
    }
}

/// The stream of `size`-byte records, for the interleaved throughput.
pub fn stream(size: usize) -> Result<Box<dyn Stream>, Error> {
    by_size!(size, stream_of())
}

fn stream_of<const W: usize>() -> Result<Box<dyn Stream>, Error> {
    let path = PathBuf::from("/dev/shm").join(unique("ringfire"));
    let mut litter = Litter::new();
    litter.path(&path);
    Ok(Box::new(RfStream::<W> {
        path,
        _litter: litter,
    }))
}

struct RfStream<const W: usize> {
    path: PathBuf,
    _litter: Litter,
}

impl<const W: usize> Stream for RfStream<W> {
    fn producer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Produce + 'a>, Error> {
        let tx = create::<W>(&self.path, capacity_for(W * 8))?;
        ctl.set_phase(base + 1);
        Ok(Box::new(Prod { tx }))
    }

    fn consumer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Consume + 'a>, Error> {
        ctl.wait_phase(base + 1)?;
        Ok(Box::new(attach::<W>(&self.path)?))
    }
}

struct Prod<const W: usize> {
    tx: RingProducer<[u64; W]>,
}

impl<const W: usize> Produce for Prod<W> {
    fn slice(&mut self, ctl: &Ctl, j: u32, seq: &mut u64) -> Result<(), Error> {
        with_record::<W, _>(|rec| {
            while !ctl.slice_over(j) {
                fill(rec, *seq);
                self.tx.push(rec);
                *seq += 1;
            }
            fill(rec, END);
            self.tx.push(rec);
            Ok(())
        })
    }
}

impl<const W: usize> Consume for RingConsumer<[u64; W]> {
    fn slice(&mut self, seq: &mut u64, clock: &mut Clock) -> Result<u64, Error> {
        let mut n = 0;
        loop {
            verify(&next(self), *seq)?;
            *seq += 1;
            n += 1;
            if clock.add(1) {
                return Ok(n);
            }
        }
    }

    fn drain(&mut self, seq: &mut u64) -> Result<(), Error> {
        loop {
            let r = next(self);
            if r[0] == END {
                return Ok(());
            }
            verify(&r, *seq)?;
            *seq += 1;
        }
    }
}

/// The 8-byte ping-pong over two rings (there and back), each made by its writer.
pub fn pair() -> Box<dyn Pair> {
    let there = PathBuf::from("/dev/shm").join(unique("ringfire-ping"));
    let back = PathBuf::from("/dev/shm").join(unique("ringfire-pong"));
    let mut litter = Litter::new();
    litter.path(&there).path(&back);
    Box::new(RfPair {
        there,
        back,
        _litter: litter,
    })
}

struct RfPair {
    there: PathBuf,
    back: PathBuf,
    _litter: Litter,
}

struct Ends {
    tx: RingProducer<[u64; 1]>,
    rx: RingConsumer<[u64; 1]>,
}

impl Ping for Ends {
    fn round_trip(&mut self, seq: u64) -> Result<(), Error> {
        self.tx.push(&[seq]);
        verify(&next(&mut self.rx), seq)
    }

    fn end(&mut self) -> Result<(), Error> {
        self.tx.push(&[END]);
        Ok(())
    }
}

impl Echo for Ends {
    fn echo(&mut self) -> Result<bool, Error> {
        let r = next(&mut self.rx);
        if r[0] == END {
            return Ok(false);
        }
        self.tx.push(&r);
        Ok(true)
    }
}

impl Pair for RfPair {
    fn pinger<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Ping + 'a>, Error> {
        let tx = create::<1>(&self.there, PING_CAPACITY)?;
        ctl.set_phase(base + 1);
        ctl.wait_phase(base + 2)?;
        let rx = attach::<1>(&self.back)?;
        Ok(Box::new(Ends { tx, rx }))
    }

    fn echoer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Echo + 'a>, Error> {
        let tx = create::<1>(&self.back, PING_CAPACITY)?;
        ctl.wait_phase(base + 1)?;
        let rx = attach::<1>(&self.there)?;
        ctl.set_phase(base + 2);
        Ok(Box::new(Ends { tx, rx }))
    }
}
