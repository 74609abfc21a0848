//! Death detection: how long after a peer's `kill -9` a blocked call returns `Disconnected`,
//! per doorbell: a receiver blocked in `recv` (its sender killed) and a sender blocked on a
//! full ring (its receiver killed).
//!
//! One measuring process (forked like every side of the bench) runs every trial of a
//! doorbell: it creates an SPSC channel (anonymous memory), forks the victim (which moves to
//! the other CPU, like the second side of every other measurement, registers the other
//! endpoint, says so over a pipe and sleeps), blocks, and a thread of its own kills the
//! victim after a random delay of 10 to 110 ms (so the kill falls anywhere in a waiter's
//! 50 ms housekeeping slice). The figure is the time from just before `kill` to the return of
//! the blocked call.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe, ForkResult, Pid};

use super::proc::run_group;
use super::section::Outcome;
use super::shm::Shm;
use super::{Cfg, Error};

/// Kills per case and doorbell; with `--quick`, [`QUICK_KILLS`].
pub const KILLS: usize = 40;
/// Kills per case with `--quick`.
pub const QUICK_KILLS: usize = 8;

/// Percentiles of one case, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pct {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Pct {
    /// Nearest-rank percentiles of `samples` (µs).
    pub fn of(mut samples: Vec<f64>) -> Pct {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[i - 1]
        };
        if samples.is_empty() {
            return Pct::default();
        }
        Pct {
            n: samples.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// A doorbell's figures: a blocked receiver, a blocked sender.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeathStats {
    pub recv: Pct,
    pub send: Pct,
}

impl DeathStats {
    /// The result line a measuring process reports.
    fn line(&self) -> String {
        let p = |p: &Pct| format!("{} {} {} {}", p.n, p.p50, p.p99, p.max);
        format!("death {} {}", p(&self.recv), p(&self.send))
    }

    fn parse(line: &str) -> Result<DeathStats, Error> {
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|s| s.parse().ok())
            .collect();
        if v.len() != 8 || !line.starts_with("death ") {
            return Err(Error::Malformed {
                from: "measuring",
                report: line.to_owned(),
            });
        }
        let p = |i: usize| Pct {
            n: v[i] as usize,
            p50: v[i + 1],
            p99: v[i + 2],
            max: v[i + 3],
        };
        Ok(DeathStats {
            recv: p(0),
            send: p(4),
        })
    }
}

/// The victim's part: registers the other endpoint, says so, and sleeps until killed.
fn victim(register: impl FnOnce() -> Box<dyn std::any::Any>, w: OwnedFd) -> ! {
    let _ep = register();
    let _ = nix::unistd::write(&w, b"r");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Forks the victim (pinned to `cpu`); returns its pid once it has registered.
fn spawn_victim(
    cpu: Option<usize>,
    register: impl FnOnce() -> Box<dyn std::any::Any>,
) -> Result<Pid, Error> {
    let (r, w) = pipe().map_err(|e| Error::Death(format!("pipe: {e}")))?;
    // SAFETY: the measuring process runs no other thread now (the killer threads of earlier
    // trials were joined; a keeper thread only parks, holding no lock the child needs).
    match unsafe { fork() }.map_err(|e| Error::Death(format!("fork: {e}")))? {
        ForkResult::Child => {
            drop(r);
            if let Some(cpu) = cpu {
                if super::sys::pin_to(cpu).is_err() {
                    shmchan_os::process::_exit(1)
                }
            }
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| victim(register, w)));
            shmchan_os::process::_exit(1)
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut b = [0u8; 1];
            match nix::unistd::read(&r, &mut b) {
                Ok(1) => Ok(child),
                _ => {
                    let _ = kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    Err(Error::Death("the victim did not register".into()))
                }
            }
        }
    }
}

/// Blocks in `blocked` while a thread kills `victim` after `delay`; returns the time from the
/// kill to the return (µs), or what the call returned instead of `Disconnected`.
fn timed(
    victim: Pid,
    delay: Duration,
    blocked: impl FnOnce() -> Result<(), String>,
) -> Result<f64, Error> {
    let killer = std::thread::spawn(move || {
        std::thread::sleep(delay);
        let t0 = Instant::now();
        let _ = kill(victim, Signal::SIGKILL);
        t0
    });
    let r = blocked();
    let t1 = Instant::now();
    let t0 = killer
        .join()
        .map_err(|_| Error::Death("killer thread".into()))?;
    let _ = waitpid(victim, None);
    r.map_err(Error::Death)?;
    Ok(t1.saturating_duration_since(t0).as_secs_f64() * 1e6)
}

/// One doorbell's trials (in the measuring process; the victims on `cpu`).
fn trials(s: Shm, kills: usize, cpu: Option<usize>) -> Result<DeathStats, Error> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(std::process::id());
    let mut delay = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_micros(10_000 + seed % 100_000)
    };
    let (mut recv, mut send) = (Vec::new(), Vec::new());
    for _ in 0..kills {
        let chan = s.channel::<[u64; 1]>(4, None)?;
        let mut rx = chan.receiver().map_err(Error::endpoint("receiver"))?;
        let c = &chan;
        let pid = spawn_victim(cpu, || Box::new(c.sender().expect("sender")))?;
        recv.push(timed(pid, delay(), || {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Err(shmchan::RecvTimeoutError::Disconnected) => Ok(()),
                other => Err(format!("recv after the sender's kill: {other:?}")),
            }
        })?);
        drop((rx, chan));
        let chan = s.channel::<[u64; 1]>(4, None)?;
        let mut tx = chan.sender().map_err(Error::endpoint("sender"))?;
        let c = &chan;
        let pid = spawn_victim(cpu, || Box::new(c.receiver().expect("receiver")))?;
        while tx.try_send([1]).is_ok() {}
        send.push(timed(pid, delay(), || {
            match tx.send_timeout([2], Duration::from_secs(5)) {
                Err(shmchan::SendTimeoutError::Disconnected(_)) => Ok(()),
                other => Err(format!("send after the receiver's kill: {:?}", other.err())),
            }
        })?);
    }
    Ok(DeathStats {
        recv: Pct::of(recv),
        send: Pct::of(send),
    })
}

/// Kills per case for a run with these settings.
pub fn kills(cfg: &Cfg) -> usize {
    if cfg.len < Duration::from_millis(100) {
        QUICK_KILLS
    } else {
        KILLS
    }
}

/// The progress line's result part.
pub fn progress(o: &Outcome<DeathStats>) -> String {
    match o {
        Outcome::Ok(s) => format!(
            "recv p50/p99/max {} / {} / {}; send {} / {} / {} ({} kills each)",
            ms(s.recv.p50),
            ms(s.recv.p99),
            ms(s.recv.max),
            ms(s.send.p50),
            ms(s.send.p99),
            ms(s.send.max),
            s.recv.n
        ),
        Outcome::Na(why) => format!("n/a ({why})"),
        Outcome::Err(e) => format!("error: {e}"),
    }
}

/// Microseconds as milliseconds, 2 decimals.
pub fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

/// Measures one doorbell: `kills` kills per case, in a forked measuring process.
pub fn measure(s: Shm, kills: usize, cfg: &Cfg) -> Result<DeathStats, Error> {
    let victims = cfg.cpus[1];
    let side: super::proc::Side<'_> = Box::new(move |ctl| {
        ctl.start_line()?;
        trials(s, kills, victims).map(|d| d.line())
    });
    let timeout = Duration::from_secs(30) + Duration::from_millis(400) * kills as u32;
    let out = run_group(vec![("measuring".into(), cfg.cpus[0], side)], timeout)?;
    DeathStats::parse(out.first().map_or("", String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_the_line_round_trip() {
        let p = Pct::of((1..=100).map(f64::from).collect());
        assert_eq!((p.n, p.p50, p.p99, p.max), (100, 50.0, 99.0, 100.0));
        let d = DeathStats {
            recv: p,
            send: Pct::of(vec![3.5]),
        };
        assert_eq!(DeathStats::parse(&d.line()).unwrap(), d);
    }
}
