//! ipmpsc: its shared ring of serialized messages (bincode; a process-shared mutex and condition
//! variable guard the cursors). The fastest path it offers is used: the producer serializes the
//! record as one byte string (a length, then a straight copy of its words into the ring), the
//! consumer busy-polls `try_recv` through a zero-copy context and checks every word in place
//! (the context's drop moves the read cursor). The sender waits on the condition variable when
//! the ring is full: lossless.
//!
//! The ring is a file under `/dev/shm` with a unique name, made (and its mutex and condition
//! initialised) by the parent before the fork, opened by each side, and removed by the parent
//! afterwards whatever happened. Its size holds [`capacity_for`] records of the size measured.

use std::path::{Path, PathBuf};

use ipmpsc::{Receiver, Sender, SharedRingBuffer};
use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::names::{unique, Litter};
use crate::proc::Ctl;
use crate::rtt::{Echo, Pair, Ping};
use crate::stream::{Clock, Consume, Produce, Stream};
use crate::work::{
    by_size, capacity_for, fill, first_word, verify_bytes, with_record, END, PING_CAPACITY,
};
use crate::Error;

/// A record on the way out: serialized as one byte string of its words.
struct Out<'a>(&'a [u64]);

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(shmchan::bytemuck::cast_slice(self.0))
    }
}

/// A record as received: its bytes, in the ring.
struct In<'a>(&'a [u8]);

impl<'de> Deserialize<'de> for In<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = In<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a record's bytes")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<In<'de>, E> {
                Ok(In(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

fn ip(what: &'static str) -> impl Fn(ipmpsc::Error) -> Error {
    move |e| Error::msg(format!("{what}: {e}"))
}

/// Makes the ring file for `records` records of `size` bytes; returns its path as a string.
fn make(path: &Path, records: usize, size: usize) -> Result<String, Error> {
    let s = path
        .to_str()
        .ok_or_else(|| Error::msg("a ring path that is not UTF-8".to_owned()))?
        .to_owned();
    // Each message: its 4-byte size, the 8-byte length of the byte string, the bytes.
    let bytes = u32::try_from(records * (size + 16))
        .map_err(|_| Error::msg("a ring over 4 GiB".to_owned()))?;
    SharedRingBuffer::create(&s, bytes).map_err(ip("create the ring"))?;
    Ok(s)
}

fn open(path: &str) -> Result<SharedRingBuffer, Error> {
    SharedRingBuffer::open(path).map_err(ip("open the ring"))
}

/// Busy-polls for the next message and hands its bytes to `f` in place.
#[inline(always)]
fn recv<R>(rx: &mut Receiver, f: impl FnOnce(&[u8]) -> R) -> Result<R, Error> {
    loop {
        let mut ctx = rx.zero_copy_context();
        if let Some(m) = ctx.try_recv::<In<'_>>().map_err(ip("try_recv"))? {
            return Ok(f(m.0));
        }
        std::hint::spin_loop();
    }
}

/// The stream of `size`-byte records, for the interleaved throughput.
pub fn stream(size: usize) -> Result<Box<dyn Stream>, Error> {
    by_size!(size, stream_of())
}

fn stream_of<const W: usize>() -> Result<Box<dyn Stream>, Error> {
    let path = PathBuf::from("/dev/shm").join(unique("ipmpsc"));
    let mut litter = Litter::new();
    litter.path(&path);
    Ok(Box::new(IpStream::<W> {
        path: make(&path, capacity_for(W * 8), W * 8)?,
        _litter: litter,
    }))
}

struct IpStream<const W: usize> {
    path: String,
    _litter: Litter,
}

impl<const W: usize> Stream for IpStream<W> {
    fn producer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Produce + 'a>, Error> {
        Ok(Box::new(Prod::<W> {
            tx: Sender::new(open(&self.path)?),
            _w: std::marker::PhantomData,
        }))
    }

    fn consumer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Consume + 'a>, Error> {
        Ok(Box::new(Cons::<W>(Receiver::new(open(&self.path)?))))
    }
}

struct Prod<const W: usize> {
    tx: Sender,
    _w: std::marker::PhantomData<[u64; W]>,
}

impl<const W: usize> Produce for Prod<W> {
    fn slice(&mut self, ctl: &Ctl, j: u32, seq: &mut u64) -> Result<(), Error> {
        with_record::<W, _>(|rec| {
            while !ctl.slice_over(j) {
                fill(rec, *seq);
                self.tx.send(&Out(rec)).map_err(ip("send"))?;
                *seq += 1;
            }
            fill(rec, END);
            self.tx.send(&Out(rec)).map_err(ip("send"))
        })
    }
}

struct Cons<const W: usize>(Receiver);

impl<const W: usize> Consume for Cons<W> {
    fn slice(&mut self, seq: &mut u64, clock: &mut Clock) -> Result<u64, Error> {
        let mut n = 0;
        loop {
            recv(&mut self.0, |b| verify_bytes(b, W, *seq))??;
            *seq += 1;
            n += 1;
            if clock.add(1) {
                return Ok(n);
            }
        }
    }

    fn drain(&mut self, seq: &mut u64) -> Result<(), Error> {
        loop {
            let s = *seq;
            let end = recv(&mut self.0, |b| {
                if first_word(b) == END {
                    Ok(true)
                } else {
                    verify_bytes(b, W, s).map(|()| false)
                }
            })??;
            if end {
                return Ok(());
            }
            *seq += 1;
        }
    }
}

/// The 8-byte ping-pong over two rings (there and back), made here.
pub fn pair() -> Result<Box<dyn Pair>, Error> {
    let there = PathBuf::from("/dev/shm").join(unique("ipmpsc-ping"));
    let back = PathBuf::from("/dev/shm").join(unique("ipmpsc-pong"));
    let mut litter = Litter::new();
    litter.path(&there).path(&back);
    Ok(Box::new(IpPair {
        there: make(&there, PING_CAPACITY, 8)?,
        back: make(&back, PING_CAPACITY, 8)?,
        _litter: litter,
    }))
}

struct IpPair {
    there: String,
    back: String,
    _litter: Litter,
}

struct Ends {
    tx: Sender,
    rx: Receiver,
}

impl Ping for Ends {
    fn round_trip(&mut self, seq: u64) -> Result<(), Error> {
        self.tx.send(&Out(&[seq])).map_err(ip("send"))?;
        recv(&mut self.rx, |m| verify_bytes(m, 1, seq))?
    }

    fn end(&mut self) -> Result<(), Error> {
        self.tx.send(&Out(&[END])).map_err(ip("send"))
    }
}

impl Echo for Ends {
    fn echo(&mut self) -> Result<bool, Error> {
        let v = recv(&mut self.rx, first_word)?;
        if v == END {
            return Ok(false);
        }
        self.tx.send(&Out(&[v])).map_err(ip("send"))?;
        Ok(true)
    }
}

impl Pair for IpPair {
    fn pinger<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Ping + 'a>, Error> {
        Ok(Box::new(Ends {
            tx: Sender::new(open(&self.there)?),
            rx: Receiver::new(open(&self.back)?),
        }))
    }

    fn echoer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Echo + 'a>, Error> {
        Ok(Box::new(Ends {
            tx: Sender::new(open(&self.back)?),
            rx: Receiver::new(open(&self.there)?),
        }))
    }
}
