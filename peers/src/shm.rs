//! shmchan: typed `send`/`recv` over an SPSC ring (futex doorbell, and the spin doorbell),
//! zero copy (`reserve` → write in place → `commit`; `peek` → check in place → release), the
//! MPMC ring's `send`/`recv`, and `send_batch`/`recv_batch` of [`BATCH`] records.
//!
//! As `shmchan bench` does: the channel lives in anonymous shared memory made before the two
//! processes are forked (so nothing is left behind in any case), its capacity is
//! [`capacity_for`] the record size, and each side opens its endpoint in its own process.

use shmchan::{Backing, Channel, Doorbell, Pod, Receiver, Sender};

use crate::proc::{run_pair, Ctl};
use crate::rtt::{Echo, Pair, Ping};
use crate::work::{by_size, capacity_for, fill, parse_rate, verify, BATCH, END, PING_CAPACITY};
use crate::{Cfg, Error};

/// How records go through the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `send` / `recv`, one record per call.
    Copy,
    /// `send_batch` / `recv_batch` of [`BATCH`] records.
    Batch,
    /// `reserve` + `commit` / `peek`: written and read in place.
    ZeroCopy,
}

/// One shmchan contender.
#[derive(Clone, Copy, Debug)]
pub struct Shm {
    /// MPMC ring rather than SPSC.
    pub mpmc: bool,
    /// Its doorbell.
    pub bell: Doorbell,
    /// How records go through it.
    pub style: Style,
}

impl Shm {
    fn channel<T: Pod>(self, capacity: usize) -> Result<Channel<T>, Error> {
        let b = Channel::<T>::builder()
            .capacity(capacity)
            .backing(Backing::anonymous())
            .doorbell(self.bell);
        let b = if self.mpmc { b.mpmc() } else { b.spsc() };
        b.create().map_err(|e| Error::msg(format!("create: {e}")))
    }

    /// Records per second of `size`-byte records.
    pub fn throughput(self, size: usize, cfg: &Cfg) -> Result<f64, Error> {
        by_size!(size, tput(self, cfg))
    }

    /// The 8-byte ping-pong over two channels (there and back).
    pub fn pair(self) -> Result<Box<dyn Pair>, Error> {
        Ok(Box::new(ShmPair {
            there: self.channel::<[u64; 1]>(PING_CAPACITY)?,
            back: self.channel::<[u64; 1]>(PING_CAPACITY)?,
            zc: self.style == Style::ZeroCopy,
        }))
    }
}

struct ShmPair {
    there: Channel<[u64; 1]>,
    back: Channel<[u64; 1]>,
    zc: bool,
}

struct Ends {
    tx: Sender<[u64; 1]>,
    rx: Receiver<[u64; 1]>,
    zc: bool,
}

impl Ends {
    #[inline(always)]
    fn send(&mut self, v: u64) -> Result<(), Error> {
        if self.zc {
            let mut s = self.tx.reserve().map_err(tr("reserve"))?;
            s[0] = v;
            s.commit();
            Ok(())
        } else {
            self.tx.send([v]).map_err(tr("send"))
        }
    }

    /// Receives one record and hands its word to `f`, in place for zero copy.
    #[inline(always)]
    fn recv<R>(&mut self, f: impl FnOnce(u64) -> R) -> Result<R, Error> {
        if self.zc {
            let r = self.rx.peek().map_err(tr("peek"))?;
            Ok(f(r[0]))
        } else {
            let r = self.rx.recv().map_err(tr("recv"))?;
            Ok(f(r[0]))
        }
    }
}

impl Ping for Ends {
    fn round_trip(&mut self, seq: u64) -> Result<(), Error> {
        self.send(seq)?;
        self.recv(|v| verify(&[v], seq))?
    }

    fn end(&mut self) -> Result<(), Error> {
        self.send(END)
    }
}

impl Echo for Ends {
    fn echo(&mut self) -> Result<bool, Error> {
        let v = self.recv(|v| v)?;
        if v == END {
            return Ok(false);
        }
        self.send(v)?;
        Ok(true)
    }
}

impl Pair for ShmPair {
    fn pinger<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Ping + 'a>, Error> {
        Ok(Box::new(Ends {
            tx: self.there.sender().map_err(ep("sender"))?,
            rx: self.back.receiver().map_err(ep("receiver"))?,
            zc: self.zc,
        }))
    }

    fn echoer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Echo + 'a>, Error> {
        Ok(Box::new(Ends {
            tx: self.back.sender().map_err(ep("sender"))?,
            rx: self.there.receiver().map_err(ep("receiver"))?,
            zc: self.zc,
        }))
    }
}

fn ep<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::msg(format!("open the {what}: {e}"))
}

fn tr<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::msg(format!("{what}: {e}"))
}

fn tput<const W: usize>(shm: Shm, cfg: &Cfg) -> Result<f64, Error> {
    let chan = shm.channel::<[u64; W]>(capacity_for(W * 8))?;
    let [_, report] = run_pair(
        ["producer", "consumer"],
        cfg.cpus,
        cfg.timing.timeout(),
        |ctl| produce(&chan, shm.style, ctl),
        |ctl| consume(&chan, shm.style, ctl, cfg),
    )?;
    parse_rate(&report)
}

fn produce<const W: usize>(
    chan: &Channel<[u64; W]>,
    style: Style,
    ctl: &Ctl,
) -> Result<String, Error> {
    let mut tx = chan.sender().map_err(ep("sender"))?;
    ctl.start_line()?;
    let mut seq = 0u64;
    match style {
        Style::Copy => {
            let mut rec = [0u64; W];
            while !ctl.stopped() {
                fill(&mut rec, seq);
                tx.send(rec).map_err(tr("send"))?;
                seq += 1;
            }
        }
        Style::Batch => {
            let mut buf: Vec<[u64; W]> = vec![[0u64; W]; BATCH];
            while !ctl.stopped() {
                for (i, r) in buf.iter_mut().enumerate() {
                    fill(r, seq + i as u64);
                }
                let mut off = 0;
                while off < BATCH {
                    off += tx.send_batch(&buf[off..]).map_err(tr("send_batch"))?;
                }
                seq += BATCH as u64;
            }
        }
        Style::ZeroCopy => {
            while !ctl.stopped() {
                let mut slot = tx.reserve().map_err(tr("reserve"))?;
                fill(&mut slot[..], seq);
                slot.commit();
                seq += 1;
            }
        }
    }
    let mut end = [0u64; W];
    fill(&mut end, END);
    tx.send(end).map_err(tr("send"))?;
    Ok(String::new())
}

fn consume<const W: usize>(
    chan: &Channel<[u64; W]>,
    style: Style,
    ctl: &Ctl,
    cfg: &Cfg,
) -> Result<String, Error> {
    let mut rx = chan.receiver().map_err(ep("receiver"))?;
    let mut buf: Vec<[u64; W]> = match style {
        Style::Batch => vec![[0u64; W]; BATCH],
        _ => Vec::new(),
    };
    ctl.start_line()?;
    let mut w = crate::work::Window::new(cfg.timing);
    let mut seq = 0u64;
    match style {
        Style::Copy => loop {
            // Checked where `recv` returned it: moving a large record out of the `Result` would
            // add a copy that is the bench's, not shmchan's.
            match &rx.recv() {
                Ok(r) => verify(r, seq)?,
                Err(e) => return Err(tr("recv")(e)),
            }
            seq += 1;
            if w.add(1) {
                break;
            }
        },
        Style::Batch => loop {
            let n = rx.recv_batch(&mut buf).map_err(tr("recv_batch"))?;
            for r in &buf[..n] {
                verify(r, seq)?;
                seq += 1;
            }
            if w.add(n as u64) {
                break;
            }
        },
        Style::ZeroCopy => loop {
            let r = rx.peek().map_err(tr("peek"))?;
            verify(&r[..], seq)?;
            drop(r);
            seq += 1;
            if w.add(1) {
                break;
            }
        },
    }
    ctl.set_stop();
    // Drain until the producer's end marker.
    loop {
        let end = match style {
            Style::Copy => match &rx.recv() {
                Ok(r) => r[0] == END,
                Err(e) => return Err(tr("recv")(e)),
            },
            Style::Batch => {
                let n = rx.recv_batch(&mut buf).map_err(tr("recv_batch"))?;
                buf[..n].iter().any(|r| r[0] == END)
            }
            Style::ZeroCopy => rx.peek().map_err(tr("peek"))?[0] == END,
        };
        if end {
            break;
        }
    }
    Ok(w.report())
}
