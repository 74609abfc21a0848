//! shmchan itself: every ring kind × every doorbell, sent record by record, in batches, and
//! written/read in place (reserve/commit + peek), over anonymous shared memory inherited
//! across `fork`.
//!
//! Records are `[u64; size / 8]`, so each record size is its own type: `by_size!` picks the
//! monomorphisation for the power-of-two sizes the command accepts.

use std::time::{Duration, Instant};

use shmchan::{Backing, Channel, Doorbell, Pod, RingKind};

use super::bare::{Bare, Objs};
use super::proc::{run_group, run_pair, usage, Ctl, Side, Usage};
use super::workload::{
    fill, malformed, parse_window, verify, Aligned, LatMode, LatStats, Pinger, Window, BATCH, END,
};
use super::{Cfg, Error};

/// Every doorbell shmchan offers, in table order. A new doorbell is one more line here: its
/// contender names come from its `Display` name, and the blocking-latency section picks it up
/// when it sleeps (see [`Shm::sleeps`]).
pub const DOORBELLS: &[Doorbell] = &Doorbell::ALL;

/// Every ring kind, in table order.
pub const KINDS: &[RingKind] = &[RingKind::Spsc, RingKind::Mpmc];

/// The bytes a throughput ring may hold: capacity is `RING_BYTES / size` records, clamped to
/// `MIN_CAPACITY..=MAX_CAPACITY` (4096 records of 8 and 64 B, 1024 of 1 KiB, 16 of 64 KiB).
pub const RING_BYTES: usize = 1 << 20;
/// See [`RING_BYTES`].
pub const MAX_CAPACITY: usize = 4096;
/// See [`RING_BYTES`].
pub const MIN_CAPACITY: usize = 16;
/// The capacity of the two rings of a ping-pong.
pub const PING_CAPACITY: usize = 64;

/// The capacity of a throughput ring for `size`-byte records.
pub fn capacity_for(size: usize) -> usize {
    (RING_BYTES / size).clamp(MIN_CAPACITY, MAX_CAPACITY)
}

/// How records go through the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `send` / `recv`, one record per call (`send_ref` / `recv_into` for records larger
    /// than [`BY_REF_ABOVE`] bytes: the forms that copy a large record once).
    Unbatched,
    /// `send_batch` / `recv_batch` of [`BATCH`] records.
    Batched,
    /// Zero copy: `reserve` → write in place → `commit`; `peek` → read in place → release.
    ZeroCopy,
}

/// Records larger than this go through `send_ref`/`recv_into` in the one-per-call style.
pub const BY_REF_ABOVE: usize = 256;

/// A zeroed record on the heap (never built on the stack first).
pub(super) fn heap_record<const W: usize>() -> Box<[u64; W]> {
    vec![0u64; W]
        .into_boxed_slice()
        .try_into()
        .expect("a slice of W words")
}

/// Every style, in table order.
pub const STYLES: &[Style] = &[Style::Unbatched, Style::Batched, Style::ZeroCopy];

impl Style {
    fn suffix(self) -> &'static str {
        match self {
            Style::Unbatched => "",
            Style::Batched => "-batch",
            Style::ZeroCopy => "-zerocopy",
        }
    }

    fn about(self) -> String {
        match self {
            Style::Unbatched => format!(
                "send/recv, one record per call (send_ref/recv_into above {BY_REF_ABOVE} B)"
            ),
            Style::Batched => format!("send_batch/recv_batch of {BATCH} records"),
            Style::ZeroCopy => "reserve+commit / peek: written and read in place".to_owned(),
        }
    }
}

/// One shmchan configuration: ring kind and doorbell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shm {
    /// SPSC or MPMC.
    pub kind: RingKind,
    /// How a waiting side waits.
    pub bell: Doorbell,
}

impl Shm {
    /// `shmchan-spsc-futex`, then the style's suffix.
    pub fn name(self, style: Style) -> String {
        let kind = self.kind.to_string().to_lowercase();
        let bell: String = self
            .bell
            .to_string()
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("shmchan-{kind}-{bell}{}", style.suffix())
    }

    /// One line for `--list`.
    pub fn about(self, style: Style) -> String {
        format!(
            "shmchan {} ring, {} doorbell, {}",
            self.kind,
            self.bell,
            style.about()
        )
    }

    /// Whether a waiting side sleeps in the kernel on this doorbell (and so belongs in the
    /// "both sides asleep" latency section).
    pub fn sleeps(self) -> bool {
        self.bell != Doorbell::Spin
    }

    /// The bare kernel object this doorbell sleeps on, measured in the blocking section next
    /// to it (`None` for the spin doorbell).
    pub fn bare_object(self) -> Option<Bare> {
        Bare::of(self.bell)
    }

    pub(super) fn channel<T: Pod>(
        self,
        capacity: usize,
        spin: Option<Duration>,
    ) -> Result<Channel<T>, Error> {
        let b = Channel::<T>::builder()
            .capacity(capacity)
            .backing(Backing::anonymous())
            .doorbell(self.bell);
        let b = match self.kind {
            RingKind::Spsc => b.spsc(),
            RingKind::Mpmc => b.mpmc(),
            other => return Err(Error::UnknownRingKind(other)),
        };
        let b = match spin {
            Some(s) => b.spin_window(s),
            None => b,
        };
        b.create().map_err(|source| Error::Create {
            what: "the channel",
            source,
        })
    }
}

/// Calls `$f::<W>(args)` with `W = size / 8` for the record sizes the command accepts.
macro_rules! by_size {
    ($size:expr, $f:ident($($arg:expr),*)) => {
        match $size {
            8 => $f::<1>($($arg),*),
            16 => $f::<2>($($arg),*),
            32 => $f::<4>($($arg),*),
            64 => $f::<8>($($arg),*),
            128 => $f::<16>($($arg),*),
            256 => $f::<32>($($arg),*),
            512 => $f::<64>($($arg),*),
            1024 => $f::<128>($($arg),*),
            2048 => $f::<256>($($arg),*),
            4096 => $f::<512>($($arg),*),
            8192 => $f::<1024>($($arg),*),
            16384 => $f::<2048>($($arg),*),
            32768 => $f::<4096>($($arg),*),
            65536 => $f::<8192>($($arg),*),
            s => Err(Error::RecordSize(s)),
        }
    };
}
pub(super) use by_size;

/// Measures the throughput of `shm` in `style` with `size`-byte records: `(records, seconds)`
/// counted by the consumer.
pub fn throughput(shm: Shm, style: Style, size: usize, cfg: &Cfg) -> Result<(u64, f64), Error> {
    by_size!(size, tput(shm, style, cfg))
}

fn tput<const W: usize>(shm: Shm, style: Style, cfg: &Cfg) -> Result<(u64, f64), Error> {
    let chan = shm.channel::<[u64; W]>(capacity_for(W * 8), None)?;
    let [_, report] = run_pair(
        ["producer", "consumer"],
        cfg.cpus,
        cfg.timeout(cfg.len),
        |ctl| produce(&chan, style, ctl),
        |ctl| consume(&chan, style, ctl, cfg),
    )?;
    parse_window(&report)
}

fn produce<const W: usize>(
    chan: &Channel<[u64; W]>,
    style: Style,
    ctl: &Ctl,
) -> Result<String, Error> {
    let mut tx = chan.sender().map_err(Error::endpoint("sender"))?;
    ctl.start_line()?;
    let mut seq = 0u64;
    match style {
        Style::Unbatched if W * 8 > BY_REF_ABOVE => {
            // On the heap: a large record is copied once, from here into its slot.
            let mut rec = heap_record::<W>();
            while !ctl.stopped() {
                fill(&mut rec[..], seq);
                tx.send_ref(&rec).map_err(Error::transfer("send_ref"))?;
                seq += 1;
            }
        }
        Style::Unbatched => {
            let mut rec = Aligned([0u64; W]);
            while !ctl.stopped() {
                fill(&mut rec.0, seq);
                tx.send(rec.0).map_err(Error::transfer("send"))?;
                seq += 1;
            }
        }
        Style::Batched => {
            // Up to 4 MiB: not for the stack.
            let mut buf: Vec<[u64; W]> = std::iter::repeat_n([0u64; W], BATCH).collect();
            while !ctl.stopped() {
                for (i, r) in buf.iter_mut().enumerate() {
                    fill(r, seq + i as u64);
                }
                let mut off = 0;
                while off < BATCH {
                    off += tx
                        .send_batch(&buf[off..])
                        .map_err(Error::transfer("send_batch"))?;
                }
                seq += BATCH as u64;
            }
        }
        Style::ZeroCopy => {
            while !ctl.stopped() {
                let mut slot = tx.reserve().map_err(Error::transfer("reserve"))?;
                fill(&mut slot[..], seq);
                slot.commit();
                seq += 1;
            }
        }
    }
    let mut end = [0u64; W];
    fill(&mut end, END);
    tx.send(end).map_err(Error::transfer("send"))?;
    Ok(seq.to_string())
}

fn consume<const W: usize>(
    chan: &Channel<[u64; W]>,
    style: Style,
    ctl: &Ctl,
    cfg: &Cfg,
) -> Result<String, Error> {
    let mut rx = chan.receiver().map_err(Error::endpoint("receiver"))?;
    let mut buf = match style {
        Style::Batched => std::iter::repeat_n([0u64; W], BATCH).collect(),
        _ => Vec::new(),
    };
    ctl.start_line()?;
    let mut w = Window::new(cfg.warmup, cfg.len);
    let mut seq = 0u64;
    let recv_err = Error::transfer::<shmchan::RecvError>("recv");
    match style {
        Style::Unbatched if W * 8 > BY_REF_ABOVE => {
            let mut rec = heap_record::<W>();
            loop {
                rx.recv_into(&mut rec).map_err(recv_err)?;
                verify(&rec[..], seq)?;
                seq += 1;
                if w.add(1) {
                    break;
                }
            }
        }
        Style::Unbatched => loop {
            // Checked where `recv` returned it: moving a large record out of the `Result`
            // would add a copy that is the bench's, not shmchan's.
            let got = rx.recv();
            match &got {
                Ok(r) => verify(r, seq)?,
                Err(e) => return Err(recv_err(*e)),
            }
            seq += 1;
            if w.add(1) {
                break;
            }
        },
        Style::Batched => loop {
            let n = rx.recv_batch(&mut buf).map_err(recv_err)?;
            for r in &buf[..n] {
                verify(r, seq)?;
                seq += 1;
            }
            if w.add(n as u64) {
                break;
            }
        },
        Style::ZeroCopy => loop {
            let r = rx.peek().map_err(recv_err)?;
            verify(&r[..], seq)?;
            drop(r);
            seq += 1;
            if w.add(1) {
                break;
            }
        },
    }
    ctl.set_stop();
    // Drain until the producer's end marker, in the same style.
    loop {
        let end = match style {
            Style::Unbatched => match &rx.recv() {
                Ok(r) => r[0] == END,
                Err(e) => return Err(recv_err(*e)),
            },
            Style::Batched => {
                let n = rx.recv_batch(&mut buf).map_err(recv_err)?;
                buf[..n].iter().any(|r| r[0] == END)
            }
            Style::ZeroCopy => rx.peek().map_err(recv_err)?[0] == END,
        };
        if end {
            break;
        }
    }
    Ok(w.report())
}

/// Measures the 8-byte ping-pong round trip of `shm` over two rings (there and back).
///
/// In [`LatMode::Blocking`] the rings have a zero spin window, so every wait sleeps at once;
/// with `bare`, its object (a doorbell's kernel object, or the busy-polled cache line) is
/// measured in the same two processes, interleaved message by message with the channel (even
/// round trips bare, odd ones the channel), so that both see the same machine. Returns the
/// channel's statistics, then the bare object's.
pub fn latency(
    shm: Shm,
    mode: LatMode,
    bare: Option<Bare>,
    cfg: &Cfg,
) -> Result<(LatStats, Option<LatStats>), Error> {
    let spin = match mode {
        LatMode::Busy => None,
        LatMode::Blocking => Some(Duration::ZERO),
    };
    let there = shm.channel::<[u64; 1]>(PING_CAPACITY, spin)?;
    let back = shm.channel::<[u64; 1]>(PING_CAPACITY, spin)?;
    let objs = match bare {
        Some(b) => Some(Objs::new(b, &cfg.limits)?),
        None => None,
    };
    let objs = objs.as_ref();
    // Round trip `seq` is the bare object's when this is true.
    let bare_turn = |seq: u64| objs.is_some() && seq % 2 == 0;
    let len = cfg.lat_len(mode);
    let [report, _] = run_pair(
        ["pinger", "echoer"],
        cfg.cpus,
        cfg.timeout(len),
        |ctl| {
            let mut tx = there.sender().map_err(Error::endpoint("sender"))?;
            let mut rx = back.receiver().map_err(Error::endpoint("receiver"))?;
            ctl.start_line()?;
            let k = if objs.is_some() { 2 } else { 1 };
            let mut p = Pinger::new(mode, cfg.warmup, len, k)?;
            let next = p.run(|seq| match objs {
                Some(o) if bare_turn(seq) => o.round_trip(),
                _ => {
                    tx.send([seq]).map_err(Error::transfer("send"))?;
                    let r = rx.recv().map_err(Error::transfer("recv"))?;
                    Ok(verify(&r, seq)?)
                }
            })?;
            // The echoer waits on whichever comes next.
            match objs {
                Some(o) if bare_turn(next) => o.end()?,
                _ => tx.send([END]).map_err(Error::transfer("send"))?,
            }
            Ok(p.report())
        },
        |ctl| {
            let mut rx = there.receiver().map_err(Error::endpoint("receiver"))?;
            let mut tx = back.sender().map_err(Error::endpoint("sender"))?;
            ctl.start_line()?;
            let mut seq = 0u64;
            loop {
                match objs {
                    Some(o) if bare_turn(seq) => {
                        if !o.echo(mode)? {
                            return Ok("done".to_owned());
                        }
                    }
                    _ => {
                        let r = rx.recv().map_err(Error::transfer("recv"))?;
                        if r[0] == END {
                            return Ok("done".to_owned());
                        }
                        mode.hold();
                        tx.send(r).map_err(Error::transfer("send"))?;
                    }
                }
                seq += 1;
            }
        },
    )?;
    let mut stats = LatStats::parse_all(&report)?.into_iter();
    match (objs.is_some(), stats.next(), stats.next()) {
        (false, Some(chan), None) => Ok((chan, None)),
        (true, Some(bare), Some(chan)) => Ok((chan, Some(bare))),
        _ => Err(malformed("pinger", &report)),
    }
}

/// What an idle receiver cost while it waited.
#[derive(Clone, Copy, Debug)]
pub struct IdleStats {
    /// How long it waited, in seconds.
    pub wall: f64,
    /// User CPU seconds over the wait.
    pub user: f64,
    /// System CPU seconds over the wait.
    pub sys: f64,
    /// Voluntary context switches over the wait (each sleep that ended).
    pub nvcsw: u64,
}

impl IdleStats {
    /// CPU seconds per second of waiting (1 = a whole core).
    pub fn cpu_share(&self) -> f64 {
        (self.user + self.sys) / self.wall
    }

    fn line(&self) -> String {
        format!("{} {} {} {}", self.wall, self.user, self.sys, self.nvcsw)
    }

    fn parse(s: &str) -> Result<IdleStats, Error> {
        let v: Vec<&str> = s.split_whitespace().collect();
        let bad = || malformed("receiver", s);
        let f = |i: usize| v.get(i).and_then(|x| x.parse::<f64>().ok()).ok_or_else(bad);
        Ok(IdleStats {
            wall: f(0)?,
            user: f(1)?,
            sys: f(2)?,
            nvcsw: v.get(3).and_then(|x| x.parse().ok()).ok_or_else(bad)?,
        })
    }
}

/// Measures what a receiver waiting on an empty channel costs: one SPSC channel per doorbell
/// (default spin window), one receiver process each, all waiting at once in `recv` while one
/// sender process sleeps through `cfg.idle` and then sends each of them one record. Each
/// receiver reports its own CPU time (`getrusage(RUSAGE_SELF)`, every thread) from just before
/// `recv` to just after it returned.
pub fn idle(shms: &[Shm], cfg: &Cfg) -> Result<Vec<IdleStats>, Error> {
    let chans = shms
        .iter()
        .map(|s| s.channel::<[u64; 1]>(PING_CAPACITY, None))
        .collect::<Result<Vec<_>, _>>()?;
    let chans = &chans;
    let mut sides: Vec<(String, Option<usize>, Side<'_>)> = Vec::new();
    // The sender sleeps through the window, so the spinning receiver may share its CPU; the
    // sleeping receivers share the other one.
    sides.push((
        "sender".into(),
        cfg.cpus[0],
        Box::new(move |ctl: &Ctl| {
            let mut txs = chans
                .iter()
                .map(|c| c.sender().map_err(Error::endpoint("sender")))
                .collect::<Result<Vec<_>, _>>()?;
            ctl.start_line()?;
            std::thread::sleep(cfg.idle);
            for tx in &mut txs {
                tx.send([1]).map_err(Error::transfer("send"))?;
            }
            Ok("sent".to_owned())
        }),
    ));
    for (i, s) in shms.iter().enumerate() {
        let cpu = if s.sleeps() { cfg.cpus[1] } else { cfg.cpus[0] };
        sides.push((
            format!("{} receiver", s.bell),
            cpu,
            Box::new(move |ctl: &Ctl| {
                let mut rx = chans[i].receiver().map_err(Error::endpoint("receiver"))?;
                ctl.start_line()?;
                let (u0, t0) = (usage(), Instant::now());
                let r = rx.recv();
                let (u1, t1) = (usage(), Instant::now());
                match r {
                    Ok(r) => verify(&r, 1)?,
                    Err(e) => return Err(Error::transfer("recv")(e)),
                }
                let u = u1.since(&u0);
                Ok(IdleStats {
                    wall: (t1 - t0).as_secs_f64(),
                    user: u.user.as_secs_f64(),
                    sys: u.sys.as_secs_f64(),
                    nvcsw: u.nvcsw,
                }
                .line())
            }),
        ));
    }
    let reports = run_group(sides, cfg.timeout(cfg.idle))?;
    reports[1..].iter().map(|r| IdleStats::parse(r)).collect()
}

/// How a producer faring against a slow consumer behaved.
#[derive(Clone, Copy, Debug)]
pub struct SlowStats {
    /// Records per second the consumer took (its count / its window).
    pub rate: f64,
    /// The producer's timed window, in seconds.
    pub wall: f64,
    /// The producer's CPU seconds in that window (user + system).
    pub cpu: f64,
    /// The producer's voluntary context switches in that window (its sleeps and yields).
    pub nvcsw: u64,
    /// The producer's involuntary context switches (preemptions).
    pub nivcsw: u64,
    /// Seconds the producer was runnable but waited for a CPU (taken by other processes);
    /// `None` without schedstats.
    pub runq: Option<f64>,
}

impl SlowStats {
    /// The producer's CPU seconds per second (1 = a whole core).
    pub fn cpu_share(&self) -> f64 {
        self.cpu / self.wall
    }

    /// The share of the window the producer wanted a CPU (ran, or was runnable and waited):
    /// about 1 for a producer that spins, whatever else competes for its CPU.
    pub fn runnable_share(&self) -> Option<f64> {
        self.runq.map(|w| (self.cpu + w) / self.wall)
    }
}

/// The consumer's time per record in the slow-consumer measurement (≈ 50 k records/s).
pub const SLOW_PER_RECORD: Duration = Duration::from_micros(20);

/// Measures a producer that sends 8-byte records into a 4096-record SPSC ring as fast as it
/// can while the consumer busies itself [`SLOW_PER_RECORD`] per record: the ring is full, and
/// the producer should sleep on the doorbell rather than spin. The producer times its own CPU
/// (`getrusage(RUSAGE_SELF)`) over a window that starts after the warm-up.
pub fn slow(shm: Shm, cfg: &Cfg) -> Result<SlowStats, Error> {
    let chan = shm.channel::<[u64; 1]>(capacity_for(8), None)?;
    let [prod, cons] = run_pair(
        ["producer", "consumer"],
        cfg.cpus,
        cfg.timeout(cfg.slow),
        |ctl| {
            let mut tx = chan.sender().map_err(Error::endpoint("sender"))?;
            ctl.start_line()?;
            let warm_until = Instant::now() + cfg.warmup;
            let mut from: Option<(Instant, Usage)> = None;
            let mut seq = 0u64;
            while !ctl.stopped() {
                if from.is_none() && Instant::now() >= warm_until {
                    from = Some((Instant::now(), usage()));
                }
                tx.send([seq]).map_err(Error::transfer("send"))?;
                seq += 1;
            }
            let (u, t) = (usage(), Instant::now());
            tx.send([END]).map_err(Error::transfer("send"))?;
            let (t0, u0) = from.ok_or(Error::WindowBeforeWarmup)?;
            let d = u.since(&u0);
            Ok(format!(
                "{} {} {} {} {}",
                (t - t0).as_secs_f64(),
                d.cpu().as_secs_f64(),
                d.nvcsw,
                d.nivcsw,
                d.runq.map_or(-1.0, |w| w.as_secs_f64())
            ))
        },
        |ctl| {
            let mut rx = chan.receiver().map_err(Error::endpoint("receiver"))?;
            ctl.start_line()?;
            let mut w = Window::new(cfg.warmup, cfg.slow);
            let mut seq = 0u64;
            let mut next = Instant::now();
            loop {
                let r = rx.recv().map_err(Error::transfer("recv"))?;
                verify(&r, seq)?;
                seq += 1;
                // The record's "work": a fixed schedule (a late record does not pile up debt).
                let now = Instant::now();
                next = (next + SLOW_PER_RECORD).max(now);
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
                if w.add(1) {
                    break;
                }
            }
            ctl.set_stop();
            loop {
                if rx.recv().map_err(Error::transfer("recv"))?[0] == END {
                    break;
                }
            }
            Ok(w.report())
        },
    )?;
    let (records, secs) = parse_window(&cons)?;
    let v: Vec<&str> = prod.split_whitespace().collect();
    let bad = || malformed("producer", &prod);
    let f = |i: usize| v.get(i).and_then(|x| x.parse::<f64>().ok()).ok_or_else(bad);
    let n = |i: usize| v.get(i).and_then(|x| x.parse::<u64>().ok()).ok_or_else(bad);
    Ok(SlowStats {
        rate: records as f64 / secs,
        wall: f(0)?,
        cpu: f(1)?,
        nvcsw: n(2)?,
        nivcsw: n(3)?,
        runq: Some(f(4)?).filter(|w| *w >= 0.0),
    })
}
