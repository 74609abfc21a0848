//! shmchan: typed `send`/`recv` (`send_ref`/`recv_into` above 256 bytes) over an SPSC ring
//! (futex doorbell, and the spin doorbell), zero copy (`reserve` → write in place → `commit`;
//! `peek` → check in place → release), the MPMC ring's `send`/`recv`, and
//! `send_batch`/`recv_batch` of [`BATCH`] records.
//!
//! As `shmchan bench` does: the channel lives in anonymous shared memory made before the two
//! processes are forked (so nothing is left behind in any case), its capacity is
//! [`capacity_for`] the record size, and each side opens its endpoint in its own process.

use shmchan::{Backing, Channel, Doorbell, Pod, Receiver, Sender};

use crate::proc::Ctl;
use crate::rtt::{Echo, Pair, Ping};
use crate::stream::{Clock, Consume, Produce, Stream};
use crate::work::{by_size, capacity_for, fill, verify, with_record, BATCH, END, PING_CAPACITY};
use crate::Error;

/// How records go through the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `send` / `recv`, one record per call; `send_ref` / `recv_into` for records larger than
    /// [`BY_REF_ABOVE`] bytes (the forms that copy a large record once, not through the stack;
    /// as `shmchan bench` does).
    Copy,
    /// `send_batch` / `recv_batch` of [`BATCH`] records.
    Batch,
    /// `reserve` + `commit` / `peek`: written and read in place.
    ZeroCopy,
}

/// Records larger than this go through `send_ref` / `recv_into` in the copying style (the
/// same bound as `shmchan bench`'s).
const BY_REF_ABOVE: usize = 256;

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

    /// The stream of `size`-byte records, for the interleaved throughput.
    pub fn stream(self, size: usize) -> Result<Box<dyn Stream>, Error> {
        by_size!(size, stream_of(self))
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

/// One process's two endpoints of the ping-pong; `ZC`: zero copy (chosen once, at the type,
/// so that a round trip branches on it no more than another contender's does).
struct Ends<const ZC: bool> {
    tx: Sender<[u64; 1]>,
    rx: Receiver<[u64; 1]>,
}

impl<const ZC: bool> Ends<ZC> {
    #[inline(always)]
    fn send(&mut self, v: u64) -> Result<(), Error> {
        if ZC {
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
        if ZC {
            let r = self.rx.peek().map_err(tr("peek"))?;
            Ok(f(r[0]))
        } else {
            let r = self.rx.recv().map_err(tr("recv"))?;
            Ok(f(r[0]))
        }
    }
}

impl<const ZC: bool> Ping for Ends<ZC> {
    fn round_trip(&mut self, seq: u64) -> Result<(), Error> {
        self.send(seq)?;
        self.recv(|v| verify(&[v], seq))?
    }

    fn end(&mut self) -> Result<(), Error> {
        self.send(END)
    }
}

impl<const ZC: bool> Echo for Ends<ZC> {
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
        let tx = self.there.sender().map_err(ep("sender"))?;
        let rx = self.back.receiver().map_err(ep("receiver"))?;
        Ok(if self.zc {
            Box::new(Ends::<true> { tx, rx })
        } else {
            Box::new(Ends::<false> { tx, rx })
        })
    }

    fn echoer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Echo + 'a>, Error> {
        let tx = self.back.sender().map_err(ep("sender"))?;
        let rx = self.there.receiver().map_err(ep("receiver"))?;
        Ok(if self.zc {
            Box::new(Ends::<true> { tx, rx })
        } else {
            Box::new(Ends::<false> { tx, rx })
        })
    }
}

fn ep<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::msg(format!("open the {what}: {e}"))
}

fn tr<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::msg(format!("{what}: {e}"))
}

fn stream_of<const W: usize>(shm: Shm) -> Result<Box<dyn Stream>, Error> {
    Ok(Box::new(ShmStream::<W> {
        chan: shm.channel::<[u64; W]>(capacity_for(W * 8))?,
        style: shm.style,
    }))
}

struct ShmStream<const W: usize> {
    chan: Channel<[u64; W]>,
    style: Style,
}

impl<const W: usize> Stream for ShmStream<W> {
    fn producer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Produce + 'a>, Error> {
        Ok(Box::new(Prod::<W> {
            tx: self.chan.sender().map_err(ep("sender"))?,
            style: self.style,
            buf: match self.style {
                Style::Batch => vec![[0u64; W]; BATCH],
                _ => Vec::new(),
            },
        }))
    }

    fn consumer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Consume + 'a>, Error> {
        Ok(Box::new(Cons::<W> {
            rx: self.chan.receiver().map_err(ep("receiver"))?,
            style: self.style,
            buf: match self.style {
                Style::Batch => vec![[0u64; W]; BATCH],
                // The record a large copying receive reads into.
                Style::Copy if W * 8 > BY_REF_ABOVE => vec![[0u64; W]; 1],
                _ => Vec::new(),
            },
        }))
    }
}

struct Prod<const W: usize> {
    tx: Sender<[u64; W]>,
    style: Style,
    buf: Vec<[u64; W]>,
}

impl<const W: usize> Produce for Prod<W> {
    fn slice(&mut self, ctl: &Ctl, j: u32, seq: &mut u64) -> Result<(), Error> {
        match self.style {
            Style::Copy => with_record::<W, _>(|rec| {
                while !ctl.slice_over(j) {
                    fill(rec, *seq);
                    if W * 8 > BY_REF_ABOVE {
                        self.tx.send_ref(rec).map_err(tr("send_ref"))?;
                    } else {
                        self.tx.send(*rec).map_err(tr("send"))?;
                    }
                    *seq += 1;
                }
                Ok::<(), Error>(())
            })?,
            Style::Batch => {
                while !ctl.slice_over(j) {
                    for (i, r) in self.buf.iter_mut().enumerate() {
                        fill(r, *seq + i as u64);
                    }
                    let mut off = 0;
                    while off < BATCH {
                        off += self
                            .tx
                            .send_batch(&self.buf[off..])
                            .map_err(tr("send_batch"))?;
                    }
                    *seq += BATCH as u64;
                }
            }
            Style::ZeroCopy => {
                while !ctl.slice_over(j) {
                    let mut slot = self.tx.reserve().map_err(tr("reserve"))?;
                    fill(&mut slot[..], *seq);
                    slot.commit();
                    *seq += 1;
                }
            }
        }
        let mut end = [0u64; W];
        fill(&mut end, END);
        self.tx.send(end).map_err(tr("send"))
    }
}

struct Cons<const W: usize> {
    rx: Receiver<[u64; W]>,
    style: Style,
    buf: Vec<[u64; W]>,
}

impl<const W: usize> Cons<W> {
    /// Receives the next record or batch and checks each record against `*seq` on; the number
    /// received and whether the end marker came (where a record was expected).
    #[inline(always)]
    fn next(&mut self, seq: &mut u64) -> Result<(u64, bool), Error> {
        match self.style {
            Style::Copy if W * 8 > BY_REF_ABOVE => {
                let r = self.recv_large()?;
                if r[0] == END {
                    return Ok((0, true));
                }
                verify(r, *seq)?;
                *seq += 1;
                Ok((1, false))
            }
            Style::Copy => {
                // Checked where `recv` returned it: moving a large record out of the `Result`
                // would add a copy that is the bench's, not shmchan's.
                match &self.rx.recv() {
                    Ok(r) if r[0] == END => Ok((0, true)),
                    Ok(r) => {
                        verify(r, *seq)?;
                        *seq += 1;
                        Ok((1, false))
                    }
                    Err(e) => Err(tr("recv")(e)),
                }
            }
            Style::Batch => {
                let n = self
                    .rx
                    .recv_batch(&mut self.buf)
                    .map_err(tr("recv_batch"))?;
                for (i, r) in self.buf[..n].iter().enumerate() {
                    if r[0] == END && i + 1 == n {
                        return Ok((i as u64, true));
                    }
                    verify(r, *seq)?;
                    *seq += 1;
                }
                Ok((n as u64, false))
            }
            Style::ZeroCopy => {
                let r = self.rx.peek().map_err(tr("peek"))?;
                if r[0] == END {
                    return Ok((0, true));
                }
                verify(&r[..], *seq)?;
                *seq += 1;
                Ok((1, false))
            }
        }
    }

    /// Receives a record of more than [`BY_REF_ABOVE`] bytes into this consumer's own record
    /// (`recv_into`: copied once, not through the stack) and lends it.
    #[inline(always)]
    fn recv_large(&mut self) -> Result<&[u64; W], Error> {
        let r = &mut self.buf[0];
        self.rx.recv_into(r).map_err(tr("recv_into"))?;
        Ok(r)
    }

    /// A slice of one-record receives, in a loop of the shape every other contender's consumer
    /// has (receive, check, count): the style is matched once per slice, not per record, and
    /// the end marker is not looked for (it would fail the check, naming this contender).
    #[inline(always)]
    fn slice_one_by_one<const ZERO_COPY: bool>(
        &mut self,
        seq: &mut u64,
        clock: &mut Clock,
    ) -> Result<u64, Error> {
        let mut n = 0;
        loop {
            if ZERO_COPY {
                let r = self.rx.peek().map_err(tr("peek"))?;
                verify(&r[..], *seq)?;
            } else if W * 8 > BY_REF_ABOVE {
                verify(self.recv_large()?, *seq)?;
            } else {
                // Checked where `recv` returned it, as in `next`.
                match &self.rx.recv() {
                    Ok(r) => verify(r, *seq)?,
                    Err(e) => return Err(tr("recv")(e)),
                }
            }
            *seq += 1;
            n += 1;
            if clock.add(1) {
                return Ok(n);
            }
        }
    }
}

impl<const W: usize> Consume for Cons<W> {
    fn slice(&mut self, seq: &mut u64, clock: &mut Clock) -> Result<u64, Error> {
        match self.style {
            Style::Copy => return self.slice_one_by_one::<false>(seq, clock),
            Style::ZeroCopy => return self.slice_one_by_one::<true>(seq, clock),
            Style::Batch => {}
        }
        let mut total = 0;
        loop {
            let (n, end) = self.next(seq)?;
            if end {
                return Err(Error::msg(
                    "the end marker before the slice was over".into(),
                ));
            }
            total += n;
            if clock.add(n) {
                return Ok(total);
            }
        }
    }

    fn drain(&mut self, seq: &mut u64) -> Result<(), Error> {
        while !self.next(seq)?.1 {}
        Ok(())
    }
}
