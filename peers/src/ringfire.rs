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
use crate::proc::{run_pair, Ctl};
use crate::work::{
    by_size, capacity_for, fill, parse_lat, parse_rate, ping, verify, Lat, Window, END,
    PING_CAPACITY,
};
use crate::{Cfg, Error};

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

/// Records per second of `size`-byte records.
pub fn throughput(size: usize, cfg: &Cfg) -> Result<f64, Error> {
    by_size!(size, tput(cfg))
}

fn tput<const W: usize>(cfg: &Cfg) -> Result<f64, Error> {
    let path = PathBuf::from("/dev/shm").join(unique("ringfire"));
    let mut litter = Litter::new();
    litter.path(&path);
    let [_, report] = run_pair(
        ["producer", "consumer"],
        cfg.cpus,
        cfg.timing.timeout(),
        |ctl: &Ctl| {
            let mut tx = create::<W>(&path, capacity_for(W * 8))?;
            ctl.set_phase(1);
            ctl.start_line()?;
            let mut rec = [0u64; W];
            let mut seq = 0u64;
            while !ctl.stopped() {
                fill(&mut rec, seq);
                tx.push(&rec);
                seq += 1;
            }
            fill(&mut rec, END);
            tx.push(&rec);
            // The consumer drains to the end marker and detaches before the ring goes.
            ctl.wait_phase(2)?;
            Ok(String::new())
        },
        |ctl: &Ctl| {
            ctl.wait_phase(1)?;
            let mut rx = attach::<W>(&path)?;
            ctl.start_line()?;
            let mut w = Window::new(cfg.timing);
            let mut seq = 0u64;
            loop {
                let r = next(&mut rx);
                verify(&r, seq)?;
                seq += 1;
                if w.add(1) {
                    break;
                }
            }
            ctl.set_stop();
            while next(&mut rx)[0] != END {}
            drop(rx);
            ctl.set_phase(2);
            Ok(w.report())
        },
    )?;
    drop(litter);
    parse_rate(&report)
}

/// The 8-byte round trip over two rings (there and back).
pub fn latency(cfg: &Cfg) -> Result<Lat, Error> {
    let there = PathBuf::from("/dev/shm").join(unique("ringfire-ping"));
    let back = PathBuf::from("/dev/shm").join(unique("ringfire-pong"));
    let mut litter = Litter::new();
    litter.path(&there).path(&back);
    let [line, _] = run_pair(
        ["pinger", "echoer"],
        cfg.cpus,
        cfg.timing.timeout(),
        |ctl: &Ctl| {
            let mut tx = create::<1>(&there, PING_CAPACITY)?;
            ctl.set_phase(1);
            ctl.wait_phase(2)?;
            let mut rx = attach::<1>(&back)?;
            ctl.start_line()?;
            let (line, _) = ping(cfg.timing, |seq| {
                tx.push(&[seq]);
                verify(&next(&mut rx), seq)
            })?;
            tx.push(&[END]);
            ctl.wait_phase(3)?;
            Ok(line)
        },
        |ctl: &Ctl| {
            let mut tx = create::<1>(&back, PING_CAPACITY)?;
            ctl.wait_phase(1)?;
            let mut rx = attach::<1>(&there)?;
            ctl.set_phase(2);
            ctl.start_line()?;
            loop {
                let r = next(&mut rx);
                if r[0] == END {
                    break;
                }
                tx.push(&r);
            }
            drop(rx);
            ctl.set_phase(3);
            drop(tx);
            Ok(String::new())
        },
    )?;
    drop(litter);
    parse_lat(&line)
}
