//! Busy round trips of every contender, interleaved message by message in the same two pinned
//! processes: round trip `seq` belongs to contender `seq % k`, so that every contender, the bare
//! cache-line ping-pong included, sees the same machine (on a VM whose two virtual CPUs land on
//! the host in ways that differ several times over, measurements taken one after the other do
//! not compare; these do).
//!
//! Each contender's endpoints are set up in turn in both processes ([`Pair`], setup steps
//! numbered from `10 * i`). The pinger writes the sequence number into an 8-byte record, the
//! echoer sends it straight back through the other direction, the pinger checks it and times the
//! whole trip (`Instant::now` before and after; the same cost for every contender). After the
//! warm-up and window (ended on a whole turn), the pinger sends the end marker through the
//! contender whose turn is next, the echoer stops there and marks [`DONE`], and only then does
//! the pinger drop its endpoints.

use std::time::Instant;

use hdrhistogram::Histogram;

use crate::proc::{run_pair, Ctl};
use crate::work::Lat;
use crate::{Cfg, Error};

/// The setup step the echoer marks once it has stopped.
const DONE: u32 = u32::MAX;

/// The pinger's half of one contender's ping-pong, set up in the pinger's process.
pub trait Ping {
    /// Sends `seq`, waits for it to come back, checks it.
    fn round_trip(&mut self, seq: u64) -> Result<(), Error>;
    /// Sends the end marker.
    fn end(&mut self) -> Result<(), Error>;
}

/// The echoer's half of one contender's ping-pong.
pub trait Echo {
    /// Waits for one record and sends it back; `false` for the end marker (not answered).
    fn echo(&mut self) -> Result<bool, Error>;
}

/// One contender's ping-pong, made in the parent before the fork (its shared memory, or the
/// names its files will have and their removal).
pub trait Pair {
    /// Sets up the pinger's half in the pinger process; setup steps `base + 1..base + 10`.
    fn pinger<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Ping + 'a>, Error>;
    /// Sets up the echoer's half in the echoer process; setup steps `base + 1..base + 10`.
    fn echoer<'a>(&'a self, ctl: &Ctl, base: u32) -> Result<Box<dyn Echo + 'a>, Error>;
}

/// Measures the round trips of `pairs`, interleaved; returns p50 and p99 of each, in order.
/// Errors name the contender (`names`).
pub fn interleaved(pairs: &[Box<dyn Pair>], names: &[&str], cfg: &Cfg) -> Result<Vec<Lat>, Error> {
    let k = pairs.len();
    let named = |i: usize| move |e: Error| Error::msg(format!("{}: {e}", names[i]));
    let [line, _] = run_pair(
        ["pinger", "echoer"],
        cfg.cpus,
        cfg.timing.timeout(),
        |ctl: &Ctl| {
            let mut ps = Vec::with_capacity(k);
            for (i, p) in pairs.iter().enumerate() {
                ps.push(p.pinger(ctl, 10 * i as u32).map_err(named(i))?);
            }
            ctl.start_line()?;
            let mut hs = (0..k)
                .map(|_| Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::msg(format!("histogram: {e}")))?;
            let warm_until = Instant::now() + cfg.timing.warmup;
            let mut start: Option<Instant> = None;
            let mut seq = 0u64;
            loop {
                let i = (seq % k as u64) as usize;
                let t0 = Instant::now();
                ps[i].round_trip(seq).map_err(named(i))?;
                let t1 = Instant::now();
                seq += 1;
                let whole_turn = seq.is_multiple_of(k as u64);
                match start {
                    None => {
                        if t1 >= warm_until && whole_turn {
                            start = Some(t1);
                        }
                    }
                    Some(s) => {
                        hs[i].saturating_record((t1 - t0).as_nanos() as u64);
                        if whole_turn && t1 - s >= cfg.timing.len {
                            break;
                        }
                    }
                }
            }
            // `seq` is a multiple of k: contender 0 is next.
            ps[0].end().map_err(named(0))?;
            ctl.wait_phase(DONE)?;
            drop(ps);
            let groups: Vec<String> = hs
                .iter()
                .map(|h| format!("{} {}", h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
                .collect();
            Ok(groups.join(";"))
        },
        |ctl: &Ctl| {
            let mut es = Vec::with_capacity(k);
            for (i, p) in pairs.iter().enumerate() {
                es.push(p.echoer(ctl, 10 * i as u32).map_err(named(i))?);
            }
            ctl.start_line()?;
            let mut seq = 0u64;
            loop {
                let i = (seq % k as u64) as usize;
                if !es[i].echo().map_err(named(i))? {
                    break;
                }
                seq += 1;
            }
            drop(es);
            ctl.set_phase(DONE);
            Ok(String::new())
        },
    )?;
    line.split(';').map(crate::work::parse_lat).collect()
}
