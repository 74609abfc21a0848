//! The async round trip section: an 8-byte ping-pong between two processes whose
//! both sides use `shmchan::tokio::{AsyncSender, AsyncReceiver}` on a tokio current-thread
//! runtime, against the same ping-pong with the blocking API over the same doorbell, and the
//! blocking API over the default (futex) doorbell for reference.
//!
//! Two modes, as in the round-trip sections:
//!
//! - `busy`, the peer answers at once: each row on its own, in its own two processes (see
//!   [`jobs`]). Both kinds spin for the default window before they sleep (the async rows in
//!   their task, then on the doorbell's descriptor through the reactor, `epoll`), so this is
//!   what an async endpoint costs against a peer that answers at once.
//! - `blocking`, both sides asleep before every message (zero spin window): every row — async
//!   or not — pays for a sleep and a wake-up on each message, and the section's shmchan rows
//!   run in the same two processes, interleaved message by message (round trip `seq` belongs
//!   to row `seq % k`, see [`Pinger`]), so that they see the same machine.
//!
//! (Interleaving the busy rows would bias them: the row after an async one would find its
//! echoer past its spin window, asleep, after waiting for the async round trip's wake-up.)
//!
//! Each process builds its runtime after the fork and runs its whole side in one `block_on`,
//! also for the blocking rows: their calls are made from inside that task (they block the
//! thread, which has nothing else to do).
//!
//! Two SPSC rings of [`PING_CAPACITY`] `[u64; 1]` records per row (there and back), over
//! anonymous shared memory created before the fork. The pipe is measured on its own, as in the
//! other round-trip sections.

use std::time::{Duration, Instant};

use shmchan::tokio::{AsyncReceiver, AsyncSender};
use shmchan::{Channel, Doorbell, Receiver, Sender};

use super::proc::run_pair;
use super::shm::{Style, PING_CAPACITY};
use super::workload::{malformed, verify, LatMode, LatStats, Pinger, END};
use super::{spsc, Cfg, Error};

/// The doorbells whose async endpoints are measured: those with a descriptor to wait on. A
/// new one (`Doorbell::EventFd`) is one more line here; its rows and its blocking reference
/// follow from it.
pub const ASYNC_BELLS: &[Doorbell] = &[Doorbell::PosixMq, Doorbell::EventFd];

/// The blocking reference of every run of the section: the default doorbell.
pub const REFERENCE_BELL: Doorbell = Doorbell::Futex;

/// The name prefix of the section's own rows: `--only async` selects the whole section.
pub const PREFIX: &str = "async";

/// Both round-trip modes, in table order.
pub const MODES: &[LatMode] = &[LatMode::Busy, LatMode::Blocking];

/// How a row's two processes use their channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `Sender::send` / `Receiver::recv`.
    Blocking,
    /// `AsyncSender::send().await` / `AsyncReceiver::recv().await`.
    Async,
}

/// One shmchan row of the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rt {
    /// The doorbell of its two channels.
    pub bell: Doorbell,
    /// Blocking or async endpoints (on both sides).
    pub api: Api,
}

impl Rt {
    /// `shmchan-spsc-posix-mq` (blocking, the round-trip sections' name) or
    /// `async-spsc-posix-mq`.
    pub fn name(self) -> String {
        let blocking = spsc(self.bell).name(Style::Unbatched);
        match self.api {
            Api::Blocking => blocking,
            Api::Async => {
                let rest = blocking.strip_prefix("shmchan-").unwrap_or(&blocking);
                format!("{PREFIX}-{rest}")
            }
        }
    }

    /// One line for `--list`.
    pub fn about(self) -> String {
        match self.api {
            Api::Blocking => format!(
                "reference: shmchan SPSC ring, {} doorbell, blocking send/recv",
                self.bell
            ),
            Api::Async => format!(
                "shmchan SPSC ring, {} doorbell, AsyncSender::send / AsyncReceiver::recv on a \
                 tokio current-thread runtime in both processes",
                self.bell
            ),
        }
    }

    /// The row an async row is divided by: the blocking API on the same doorbell.
    pub fn reference(self) -> Option<Rt> {
        match self.api {
            Api::Async => Some(Rt {
                bell: self.bell,
                api: Api::Blocking,
            }),
            Api::Blocking => None,
        }
    }
}

/// The name of the async row of `bell`.
pub fn async_name(bell: Doorbell) -> String {
    Rt {
        bell,
        api: Api::Async,
    }
    .name()
}

/// The interleaved rows for the async rows of `bells`: the blocking reference doorbell, then
/// for each doorbell its blocking row and its async row.
pub fn group(bells: &[Doorbell]) -> Vec<Rt> {
    let mut v = Vec::new();
    if bells.is_empty() {
        return v;
    }
    let mut push = |r: Rt| {
        if !v.contains(&r) {
            v.push(r);
        }
    };
    push(Rt {
        bell: REFERENCE_BELL,
        api: Api::Blocking,
    });
    for &bell in bells {
        push(Rt {
            bell,
            api: Api::Blocking,
        });
        push(Rt {
            bell,
            api: Api::Async,
        });
    }
    v
}

/// How the rows of `group` are measured in `mode`: one measurement (one pair of processes)
/// per inner list, its rows interleaved. Busy: each row alone; blocking: all together.
pub fn jobs(group: &[Rt], mode: LatMode) -> Vec<Vec<Rt>> {
    match mode {
        LatMode::Busy => group.iter().map(|&r| vec![r]).collect(),
        LatMode::Blocking if group.is_empty() => Vec::new(),
        LatMode::Blocking => vec![group.to_vec()],
    }
}

/// A row's endpoints in one process.
enum Ends {
    Blocking(Sender<[u64; 1]>, Receiver<[u64; 1]>),
    Async(AsyncSender<[u64; 1]>, AsyncReceiver<[u64; 1]>),
}

impl Ends {
    /// Wraps the endpoints for `api`; inside the runtime (the async ones register with its
    /// reactor).
    fn new(api: Api, tx: Sender<[u64; 1]>, rx: Receiver<[u64; 1]>) -> Result<Ends, Error> {
        Ok(match api {
            Api::Blocking => Ends::Blocking(tx, rx),
            Api::Async => Ends::Async(
                AsyncSender::new(tx).map_err(|(_, e)| Error::endpoint("async sender")(e))?,
                AsyncReceiver::new(rx).map_err(|(_, e)| Error::endpoint("async receiver")(e))?,
            ),
        })
    }

    async fn send(&mut self, v: u64) -> Result<(), Error> {
        match self {
            Ends::Blocking(tx, _) => tx.send([v]).map_err(Error::transfer("send")),
            Ends::Async(tx, _) => tx.send([v]).await.map_err(Error::transfer("async send")),
        }
    }

    async fn recv(&mut self) -> Result<u64, Error> {
        match self {
            Ends::Blocking(_, rx) => rx.recv().map(|r| r[0]).map_err(Error::transfer("recv")),
            Ends::Async(_, rx) => rx
                .recv()
                .await
                .map(|r| r[0])
                .map_err(Error::transfer("async recv")),
        }
    }
}

/// The runtime of one process: current-thread, with the reactor and the timer (the async
/// endpoints wake every 50 ms to look for a dead peer).
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Measures the rows of `group`, interleaved in one pair of processes; their statistics in
/// the same order.
pub fn latency(group: &[Rt], mode: LatMode, cfg: &Cfg) -> Result<Vec<LatStats>, Error> {
    if group.is_empty() {
        return Ok(Vec::new());
    }
    let spin = match mode {
        LatMode::Busy => None,
        LatMode::Blocking => Some(Duration::ZERO),
    };
    // Per row: the ping ("there") and the pong ("back") channel.
    let chans: Vec<[Channel<[u64; 1]>; 2]> = group
        .iter()
        .map(|r| {
            let s = spsc(r.bell);
            Ok([
                s.channel(PING_CAPACITY, spin)?,
                s.channel(PING_CAPACITY, spin)?,
            ])
        })
        .collect::<Result<_, Error>>()?;
    let k = group.len() as u64;
    let len = cfg.lat_len(mode);
    let [report, _] = run_pair(
        ["pinger", "echoer"],
        cfg.cpus,
        cfg.timeout(len),
        |ctl| {
            runtime()?.block_on(async {
                let mut ends = Vec::with_capacity(group.len());
                for (r, [there, back]) in group.iter().zip(&chans) {
                    let tx = there.sender().map_err(Error::endpoint("sender"))?;
                    let rx = back.receiver().map_err(Error::endpoint("receiver"))?;
                    ends.push(Ends::new(r.api, tx, rx)?);
                }
                ctl.start_line()?;
                let mut p = Pinger::new(mode, cfg.warmup, len, group.len())?;
                let mut seq = 0u64;
                loop {
                    p.gap();
                    let e = &mut ends[(seq % k) as usize];
                    let t0 = Instant::now();
                    e.send(seq).await?;
                    let v = e.recv().await?;
                    let t1 = Instant::now();
                    verify(&[v], seq)?;
                    seq += 1;
                    if p.lap(seq - 1, t0, t1) {
                        break;
                    }
                }
                // The echoer waits on whichever row comes next.
                ends[(seq % k) as usize].send(END).await?;
                Ok(p.report())
            })
        },
        |ctl| {
            runtime()?.block_on(async {
                let mut ends = Vec::with_capacity(group.len());
                for (r, [there, back]) in group.iter().zip(&chans) {
                    let tx = back.sender().map_err(Error::endpoint("sender"))?;
                    let rx = there.receiver().map_err(Error::endpoint("receiver"))?;
                    ends.push(Ends::new(r.api, tx, rx)?);
                }
                ctl.start_line()?;
                let mut seq = 0u64;
                loop {
                    let e = &mut ends[(seq % k) as usize];
                    let v = e.recv().await?;
                    if v == END {
                        return Ok("done".to_owned());
                    }
                    mode.hold();
                    e.send(v).await?;
                    seq += 1;
                }
            })
        },
    )?;
    let stats = LatStats::parse_all(&report)?;
    if stats.len() != group.len() {
        return Err(malformed("pinger", &report));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_has_its_references() {
        let g: Vec<String> = group(ASYNC_BELLS).into_iter().map(Rt::name).collect();
        assert_eq!(
            g,
            [
                "shmchan-spsc-futex",
                "shmchan-spsc-posix-mq",
                "async-spsc-posix-mq",
                "shmchan-spsc-eventfd",
                "async-spsc-eventfd"
            ]
        );
        assert!(group(&[]).is_empty());
        let g = group(ASYNC_BELLS);
        assert_eq!(jobs(&g, LatMode::Busy).len(), g.len());
        assert_eq!(jobs(&g, LatMode::Blocking), vec![g]);
        let a = Rt {
            bell: Doorbell::PosixMq,
            api: Api::Async,
        };
        assert_eq!(
            a.reference().map(Rt::name).as_deref(),
            Some("shmchan-spsc-posix-mq")
        );
        assert_eq!(async_name(Doorbell::PosixMq), "async-spsc-posix-mq");
    }
}
