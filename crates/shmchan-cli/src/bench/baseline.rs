//! The kernel's own IPC as baselines: pipe, FIFO, Unix stream socket, SysV message queue, POSIX
//! message queue. One system call per record on each side: a full `write`/`read` of the record
//! for the byte streams, one `msgsnd`/`msgrcv` or `mq_send`/`mq_receive` for the queues.
//!
//! Every object is created by the supervising process before it forks and removed by it
//! afterwards, whatever happened (RAII guards); POSIX queues are unlinked as soon as they are
//! open, and FIFO paths as soon as both sides opened them, so even a `kill -9` of the bench
//! leaks as little as possible.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use shmchan_os::{Key, Mode, MqAttr, MsgFlags, MsgQueue, MsgSelect, OwnedMsgQueue, PosixMq};

use super::proc::{run_pair, Ctl};
use super::sys::{unique_name, Limits};
use super::workload::{
    bytes, bytes_mut, fill, parse_window, verify, CheckError, LatMode, LatStats, Pinger, Window,
    END,
};
use super::{Cfg, Error};

/// A kernel mechanism measured as a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// `pipe(2)`.
    Pipe,
    /// A named pipe (`mkfifo`), opened by path in each process.
    Fifo,
    /// `socketpair(AF_UNIX, SOCK_STREAM)`.
    UnixSocket,
    /// A SysV message queue (`msgsnd`/`msgrcv`).
    SysvMsgq,
    /// A POSIX message queue (`mq_send`/`mq_receive`).
    PosixMq,
}

/// Every baseline, in table order (the pipe first: every ratio is against it).
pub const BASES: &[Base] = &[
    Base::Pipe,
    Base::Fifo,
    Base::UnixSocket,
    Base::SysvMsgq,
    Base::PosixMq,
];

impl Base {
    /// The contender name.
    pub fn name(self) -> &'static str {
        match self {
            Base::Pipe => "pipe",
            Base::Fifo => "fifo",
            Base::UnixSocket => "unix-socket",
            Base::SysvMsgq => "sysv-msgq",
            Base::PosixMq => "posix-mq",
        }
    }

    /// One line for `--list`.
    pub fn about(self) -> &'static str {
        match self {
            Base::Pipe => "pipe(2), full write/read of each record (the reference of every ratio)",
            Base::Fifo => "mkfifo path opened by each process, full write/read of each record",
            Base::UnixSocket => "socketpair(AF_UNIX, SOCK_STREAM), full write/read of each record",
            Base::SysvMsgq => "SysV message queue, one msgsnd/msgrcv per record",
            Base::PosixMq => "POSIX message queue, one mq_send/mq_receive per record",
        }
    }

    /// Why this mechanism cannot carry `size`-byte records here, if it cannot.
    pub fn cannot_carry(self, size: usize, lim: &Limits) -> Option<String> {
        let size = size as u64;
        match self {
            Base::SysvMsgq => match (lim.msgmax, lim.msgmnb) {
                (Some(m), _) if size > m => Some(format!("{} > msgmax {m} B", human(size))),
                (_, Some(m)) if size > m => Some(format!("{} > msgmnb {m} B", human(size))),
                _ => None,
            },
            Base::PosixMq => match lim.mq_msgsize_max {
                Some(m) if size > m => Some(format!("{} > mq msgsize_max {m} B", human(size))),
                _ => None,
            },
            _ => None,
        }
    }
}

fn human(size: u64) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// A FIFO path, removed on drop.
struct TempFifo(PathBuf);

impl TempFifo {
    fn new() -> Result<TempFifo, Error> {
        let path = std::env::temp_dir().join(unique_name("fifo"));
        match nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
            Ok(()) => Ok(TempFifo(path)),
            Err(source) => Err(Error::Mkfifo { path, source }),
        }
    }

    fn open(&self, write: bool) -> Result<File, Error> {
        OpenOptions::new()
            .read(!write)
            .write(write)
            .open(&self.0)
            .map_err(|source| Error::OpenFifo {
                path: self.0.clone(),
                source,
            })
    }

    fn unlink(&self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Drop for TempFifo {
    fn drop(&mut self) {
        self.unlink();
    }
}

/// A POSIX queue opened and at once unlinked: nothing to remove later, whatever happens.
pub(super) fn anonymous_mq(size: usize, lim: &Limits) -> Result<PosixMq, Error> {
    let name = format!("/{}", unique_name("mq"));
    let max_msgs = lim.mq_msg_max.unwrap_or(10).clamp(1, 64) as usize;
    let mq = PosixMq::create(
        &name,
        MqAttr {
            max_msgs,
            msg_size: size,
        },
        Mode::OWNER_RW,
        false,
    )?;
    PosixMq::unlink(&name)?;
    Ok(mq)
}

fn pipe_files() -> Result<(File, File), Error> {
    let (r, w) = nix::unistd::pipe().map_err(|source| Error::Sys {
        call: "pipe",
        source,
    })?;
    Ok((File::from(r), File::from(w)))
}

fn socket_files() -> Result<(File, File), Error> {
    let (a, b) = UnixStream::pair().map_err(|source| Error::Io {
        op: "socketpair",
        source,
    })?;
    Ok((File::from(OwnedFd::from(a)), File::from(OwnedFd::from(b))))
}

/// What one side sends with.
enum Tx<'a> {
    Fd(&'a File),
    Msgq(MsgQueue, i64),
    Mq(&'a PosixMq),
}

impl Tx<'_> {
    #[inline]
    fn send(&self, rec: &[u8]) -> Result<(), Error> {
        match self {
            Tx::Fd(f) => {
                let mut f: &File = f;
                f.write_all(rec).map_err(|source| Error::Io {
                    op: "write",
                    source,
                })
            }
            Tx::Msgq(q, t) => Ok(q.send(*t, rec, MsgFlags::empty()).map(drop)?),
            Tx::Mq(q) => Ok(q.send(rec, 0)?),
        }
    }
}

/// What one side receives with.
enum Rx<'a> {
    Fd(&'a File),
    Msgq(MsgQueue, i64),
    Mq(&'a PosixMq),
}

impl Rx<'_> {
    /// Receives exactly one record of `buf.len()` bytes.
    #[inline]
    fn recv(&self, buf: &mut [u8]) -> Result<(), Error> {
        let want = buf.len();
        let got = match self {
            Rx::Fd(f) => {
                let mut f: &File = f;
                return f.read_exact(buf).map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => Error::PeerClosed,
                    _ => Error::Io {
                        op: "read",
                        source: e,
                    },
                });
            }
            Rx::Msgq(q, t) => q
                .recv(buf, MsgSelect::Type(*t), MsgFlags::empty())?
                .map_or(0, |(_, len)| len),
            Rx::Mq(q) => q.recv(buf)?.0,
        };
        if got == want {
            Ok(())
        } else {
            Err(CheckError::WrongLength {
                received: got,
                expected: want,
            }
            .into())
        }
    }
}

fn produce(tx: &Tx<'_>, size: usize, ctl: &Ctl) -> Result<String, Error> {
    let mut rec = vec![0u64; size / 8];
    ctl.start_line()?;
    let mut seq = 0u64;
    while !ctl.stopped() {
        fill(&mut rec, seq);
        tx.send(bytes(&rec))?;
        seq += 1;
    }
    fill(&mut rec, END);
    tx.send(bytes(&rec))?;
    Ok(seq.to_string())
}

fn consume(rx: &Rx<'_>, size: usize, ctl: &Ctl, cfg: &Cfg) -> Result<String, Error> {
    let mut rec = vec![0u64; size / 8];
    ctl.start_line()?;
    let mut w = Window::new(cfg.warmup, cfg.len);
    let mut seq = 0u64;
    loop {
        rx.recv(bytes_mut(&mut rec))?;
        verify(&rec, seq)?;
        seq += 1;
        if w.add(1) {
            break;
        }
    }
    ctl.set_stop();
    loop {
        rx.recv(bytes_mut(&mut rec))?;
        if rec[0] == END {
            break;
        }
    }
    Ok(w.report())
}

fn ping(tx: &Tx<'_>, rx: &Rx<'_>, mode: LatMode, ctl: &Ctl, cfg: &Cfg) -> Result<String, Error> {
    let (mut out, mut inb) = ([0u64; 1], [0u64; 1]);
    ctl.start_line()?;
    let mut p = Pinger::new(mode, cfg.warmup, cfg.lat_len(mode), 1)?;
    p.run(|seq| {
        out[0] = seq;
        tx.send(bytes(&out))?;
        rx.recv(bytes_mut(&mut inb))?;
        Ok(verify(&inb, seq)?)
    })?;
    out[0] = END;
    tx.send(bytes(&out))?;
    Ok(p.report())
}

fn echo(tx: &Tx<'_>, rx: &Rx<'_>, mode: LatMode, ctl: &Ctl) -> Result<String, Error> {
    let mut b = [0u64; 1];
    ctl.start_line()?;
    loop {
        rx.recv(bytes_mut(&mut b))?;
        if b[0] == END {
            return Ok("done".into());
        }
        mode.hold();
        tx.send(bytes(&b))?;
    }
}

/// Measures the throughput of `base` with `size`-byte records: `(records, seconds)` counted by
/// the consumer.
pub fn throughput(base: Base, size: usize, cfg: &Cfg) -> Result<(u64, f64), Error> {
    let names = ["producer", "consumer"];
    let (t, c) = (cfg.timeout(cfg.len), cfg.cpus);
    let [_, report] = match base {
        Base::Pipe | Base::UnixSocket => {
            let (r, w) = match base {
                Base::Pipe => pipe_files()?,
                _ => socket_files()?,
            };
            run_pair(
                names,
                c,
                t,
                |ctl| produce(&Tx::Fd(&w), size, ctl),
                |ctl| consume(&Rx::Fd(&r), size, ctl, cfg),
            )?
        }
        Base::Fifo => {
            let fifo = TempFifo::new()?;
            run_pair(
                names,
                c,
                t,
                |ctl| produce(&Tx::Fd(&fifo.open(true)?), size, ctl),
                |ctl| {
                    let f = fifo.open(false)?;
                    fifo.unlink(); // both ends are open now
                    consume(&Rx::Fd(&f), size, ctl, cfg)
                },
            )?
        }
        Base::SysvMsgq => {
            let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::OWNER_RW)?;
            let id = q.id();
            run_pair(
                names,
                c,
                t,
                |ctl| produce(&Tx::Msgq(id, 1), size, ctl),
                |ctl| consume(&Rx::Msgq(id, 1), size, ctl, cfg),
            )?
        }
        Base::PosixMq => {
            let q = anonymous_mq(size, &cfg.limits)?;
            run_pair(
                names,
                c,
                t,
                |ctl| produce(&Tx::Mq(&q), size, ctl),
                |ctl| consume(&Rx::Mq(&q), size, ctl, cfg),
            )?
        }
    };
    parse_window(&report)
}

/// Measures the 8-byte ping-pong round trip of `base`.
pub fn latency(base: Base, mode: LatMode, cfg: &Cfg) -> Result<LatStats, Error> {
    let names = ["pinger", "echoer"];
    let (t, c) = (cfg.timeout(cfg.lat_len(mode)), cfg.cpus);
    let [report, _] = match base {
        Base::Pipe => {
            let (r1, w1) = pipe_files()?;
            let (r2, w2) = pipe_files()?;
            run_pair(
                names,
                c,
                t,
                |ctl| ping(&Tx::Fd(&w1), &Rx::Fd(&r2), mode, ctl, cfg),
                |ctl| echo(&Tx::Fd(&w2), &Rx::Fd(&r1), mode, ctl),
            )?
        }
        Base::UnixSocket => {
            let (a, b) = socket_files()?;
            run_pair(
                names,
                c,
                t,
                |ctl| ping(&Tx::Fd(&a), &Rx::Fd(&a), mode, ctl, cfg),
                |ctl| echo(&Tx::Fd(&b), &Rx::Fd(&b), mode, ctl),
            )?
        }
        Base::Fifo => {
            let (there, back) = (TempFifo::new()?, TempFifo::new()?);
            run_pair(
                names,
                c,
                t,
                |ctl| {
                    // Both sides open `there` first, then `back`: the opens pair up.
                    let w = there.open(true)?;
                    let r = back.open(false)?;
                    ping(&Tx::Fd(&w), &Rx::Fd(&r), mode, ctl, cfg)
                },
                |ctl| {
                    let r = there.open(false)?;
                    let w = back.open(true)?;
                    there.unlink();
                    back.unlink();
                    echo(&Tx::Fd(&w), &Rx::Fd(&r), mode, ctl)
                },
            )?
        }
        Base::SysvMsgq => {
            let q = OwnedMsgQueue::create(Key::PRIVATE, Mode::OWNER_RW)?;
            let id = q.id();
            // One queue, two message types: 1 = ping, 2 = pong.
            run_pair(
                names,
                c,
                t,
                |ctl| ping(&Tx::Msgq(id, 1), &Rx::Msgq(id, 2), mode, ctl, cfg),
                |ctl| echo(&Tx::Msgq(id, 2), &Rx::Msgq(id, 1), mode, ctl),
            )?
        }
        Base::PosixMq => {
            let there = anonymous_mq(8, &cfg.limits)?;
            let back = anonymous_mq(8, &cfg.limits)?;
            run_pair(
                names,
                c,
                t,
                |ctl| ping(&Tx::Mq(&there), &Rx::Mq(&back), mode, ctl, cfg),
                |ctl| echo(&Tx::Mq(&back), &Rx::Mq(&there), mode, ctl),
            )?
        }
    };
    LatStats::parse(&report)
}
