//! iceoryx2: publish-subscribe over its `ipc` service, zero copy: the publisher loans a sample
//! (`loan_uninit`), writes every word of the record in place and sends it; the subscriber
//! busy-polls `receive` (in a `spin_loop`) and checks every word in place before it releases
//! the sample. Lossless: no safe overflow, the publisher's back-pressure strategy
//! `RetryUntilDelivered`, a subscriber buffer of [`capacity_for`] the record size.
//!
//! Every measurement has its own configuration: a root directory
//! `/tmp/shmchan-peers-PID-N-iceoryx2` and a file prefix `shmchan-peers-PID-N-` for its shared
//! memory under `/dev/shm`, both removed by the parent afterwards, whatever happened (nodes of a
//! killed child leave their files behind).

use std::mem::MaybeUninit;

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;

use crate::names::{unique, Litter};
use crate::proc::Ctl;
use crate::rtt::{Echo, Pair, Ping};
use crate::stream::{Clock, Consume, Produce, Stream};
use crate::work::{by_size, capacity_for, verify, END, PING_CAPACITY};
use crate::Error;

type Pub<const W: usize> = Publisher<ipc::Service, [u64; W], ()>;
type Sub<const W: usize> = Subscriber<ipc::Service, [u64; W], ()>;

fn ix<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::msg(format!("{what}: {e:?}"))
}

/// One measurement's own corner: its configuration and what to remove afterwards.
struct Place {
    config: Config,
    _litter: Litter,
}

impl Place {
    fn new() -> Result<Place, Error> {
        let tag = unique("");
        let root = format!("/tmp/{tag}iceoryx2");
        let mut config = Config::default();
        config
            .global
            .set_root_path(&Path::new(root.as_bytes()).map_err(ix("the iceoryx2 root directory"))?);
        config.global.prefix =
            FileName::new(tag.as_bytes()).map_err(ix("the iceoryx2 file prefix"))?;
        let mut litter = Litter::new();
        litter.path(&root).shm_prefix(&tag);
        Ok(Place {
            config,
            _litter: litter,
        })
    }

    fn node(&self) -> Result<Node<ipc::Service>, Error> {
        set_log_level_from_env_or(LogLevel::Error);
        NodeBuilder::new()
            .config(&self.config)
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .map_err(ix("create the iceoryx2 node"))
    }
}

fn service_name(tag: &str) -> Result<ServiceName, Error> {
    ServiceName::new(tag).map_err(ix("the service name"))
}

/// Creates the service and its subscriber (the side that must exist before the publisher).
fn subscriber<const W: usize>(
    node: &Node<ipc::Service>,
    name: &ServiceName,
    cap: usize,
) -> Result<Sub<W>, Error> {
    let service = node
        .service_builder(name)
        .publish_subscribe::<[u64; W]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(cap)
        .history_size(0)
        .max_publishers(1)
        .max_subscribers(1)
        .create()
        .map_err(ix("create the service"))?;
    service
        .subscriber_builder()
        .buffer_size(cap)
        .create()
        .map_err(ix("create the subscriber"))
}

fn publisher<const W: usize>(
    node: &Node<ipc::Service>,
    name: &ServiceName,
) -> Result<Pub<W>, Error> {
    let service = node
        .service_builder(name)
        .publish_subscribe::<[u64; W]>()
        .open()
        .map_err(ix("open the service"))?;
    service
        .publisher_builder()
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .map_err(ix("create the publisher"))
}

/// Loans a sample, writes every word in place with `word(i)`, sends it to the one subscriber.
#[inline(always)]
fn send<const W: usize>(tx: &Pub<W>, word: impl Fn(usize) -> u64) -> Result<(), Error> {
    let mut s = tx.loan_uninit().map_err(ix("loan"))?;
    let p: &mut MaybeUninit<[u64; W]> = s.payload_mut();
    let base = p.as_mut_ptr().cast::<u64>();
    for i in 0..W {
        // SAFETY: `base` points to W writable u64 words of the loaned sample.
        unsafe { base.add(i).write(word(i)) };
    }
    // SAFETY: every word was written above.
    let s = unsafe { s.assume_init() };
    match s.send().map_err(ix("send"))? {
        1 => Ok(()),
        n => Err(Error::msg(format!(
            "a record reached {n} subscribers, not 1"
        ))),
    }
}

/// Busy-polls for the next sample and hands it to `f` in place.
#[inline(always)]
fn recv<const W: usize, R>(rx: &Sub<W>, f: impl FnOnce(&[u64; W]) -> R) -> Result<R, Error> {
    loop {
        if let Some(s) = rx.receive().map_err(ix("receive"))? {
            return Ok(f(s.payload()));
        }
        std::hint::spin_loop();
    }
}

/// The stream of `size`-byte records, for the interleaved throughput.
pub fn stream(size: usize) -> Result<Box<dyn Stream>, Error> {
    by_size!(size, stream_of())
}

fn stream_of<const W: usize>() -> Result<Box<dyn Stream>, Error> {
    Ok(Box::new(IxStream::<W> {
        place: Place::new()?,
        name: unique("stream"),
    }))
}

struct IxStream<const W: usize> {
    place: Place,
    name: String,
}

/// The port first: it goes before its node.
struct Prod<const W: usize> {
    tx: Pub<W>,
    _node: Node<ipc::Service>,
}

struct Cons<const W: usize> {
    rx: Sub<W>,
    _node: Node<ipc::Service>,
}

impl<const W: usize> Stream for IxStream<W> {
    fn producer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Produce + 'a>, Error> {
        ctl.wait_phase(base + 1)?;
        let node = self.place.node()?;
        let tx = publisher::<W>(&node, &service_name(&self.name)?)?;
        ctl.set_phase(base + 2);
        ctl.wait_phase(base + 3)?;
        tx.update_connections().map_err(ix("connect"))?;
        Ok(Box::new(Prod { tx, _node: node }))
    }

    fn consumer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Consume + 'a>, Error> {
        let node = self.place.node()?;
        let rx = subscriber::<W>(&node, &service_name(&self.name)?, capacity_for(W * 8))?;
        ctl.set_phase(base + 1);
        ctl.wait_phase(base + 2)?;
        rx.update_connections().map_err(ix("connect"))?;
        ctl.set_phase(base + 3);
        Ok(Box::new(Cons { rx, _node: node }))
    }
}

impl<const W: usize> Produce for Prod<W> {
    fn slice(&mut self, ctl: &Ctl, j: u32, seq: &mut u64) -> Result<(), Error> {
        while !ctl.slice_over(j) {
            let s = *seq;
            send(&self.tx, |i| s ^ i as u64)?;
            *seq += 1;
        }
        send(&self.tx, |i| END ^ i as u64)
    }
}

impl<const W: usize> Consume for Cons<W> {
    fn slice(&mut self, seq: &mut u64, clock: &mut Clock) -> Result<u64, Error> {
        let mut n = 0;
        loop {
            let s = *seq;
            recv(&self.rx, |r| verify(r, s))??;
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
            let end = recv(&self.rx, |r| {
                if r[0] == END {
                    Ok(true)
                } else {
                    verify(r, s).map(|()| false)
                }
            })??;
            if end {
                return Ok(());
            }
            *seq += 1;
        }
    }
}

/// The 8-byte ping-pong over two services (there and back).
pub fn pair() -> Result<Box<dyn Pair>, Error> {
    Ok(Box::new(IxPair {
        place: Place::new()?,
        there: unique("ping"),
        back: unique("pong"),
    }))
}

struct IxPair {
    place: Place,
    there: String,
    back: String,
}

/// Ports first: they go before their node.
struct Ends {
    tx: Pub<1>,
    rx: Sub<1>,
    _node: Node<ipc::Service>,
}

impl Ping for Ends {
    fn round_trip(&mut self, seq: u64) -> Result<(), Error> {
        send(&self.tx, |_| seq)?;
        recv(&self.rx, |r| verify(r, seq))?
    }

    fn end(&mut self) -> Result<(), Error> {
        send(&self.tx, |_| END)
    }
}

impl Echo for Ends {
    fn echo(&mut self) -> Result<bool, Error> {
        let v = recv(&self.rx, |r| r[0])?;
        if v == END {
            return Ok(false);
        }
        send(&self.tx, |_| v)?;
        Ok(true)
    }
}

impl Pair for IxPair {
    fn pinger<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Ping + 'a>, Error> {
        let node = self.place.node()?;
        let rx = subscriber::<1>(&node, &service_name(&self.back)?, PING_CAPACITY)?;
        ctl.set_phase(base + 1);
        ctl.wait_phase(base + 2)?;
        let tx = publisher::<1>(&node, &service_name(&self.there)?)?;
        ctl.set_phase(base + 3);
        ctl.wait_phase(base + 4)?;
        rx.update_connections().map_err(ix("connect"))?;
        tx.update_connections().map_err(ix("connect"))?;
        Ok(Box::new(Ends {
            tx,
            rx,
            _node: node,
        }))
    }

    fn echoer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Echo + 'a>, Error> {
        let node = self.place.node()?;
        let rx = subscriber::<1>(&node, &service_name(&self.there)?, PING_CAPACITY)?;
        ctl.wait_phase(base + 1)?;
        let tx = publisher::<1>(&node, &service_name(&self.back)?)?;
        ctl.set_phase(base + 2);
        ctl.wait_phase(base + 3)?;
        rx.update_connections().map_err(ix("connect"))?;
        tx.update_connections().map_err(ix("connect"))?;
        ctl.set_phase(base + 4);
        Ok(Box::new(Ends {
            tx,
            rx,
            _node: node,
        }))
    }
}
