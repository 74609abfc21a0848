//! The byte-channel section: shmchan's byte channels (`Channel<Bytes>`, messages of
//! up to a maximum length, each slot carrying its length) against the typed channel of the
//! same record size and against a Unix socket, at 8 B, 64 B and 4 KiB.
//!
//! Every contender runs the throughput workload of the throughput section (see
//! [`workload`](super::workload)): the producer writes every word of every message, the
//! consumer checks the message's length and every word, and counts the messages of a timed
//! window after a warm-up, in two forked processes pinned like every other measurement. The
//! rows:
//!
//! - `unix-socket`: the kernel reference, the baseline's own code
//!   ([`baseline::throughput`]);
//! - `shmchan-spsc-futex` and `shmchan-spsc-futex-zerocopy`: the typed channel of
//!   `[u64; size / 8]` records, `send`/`recv` and `reserve`+`commit`/`peek`, the throughput
//!   section's own code ([`shm::throughput`]);
//! - `bytes-spsc-futex`: a byte channel with `max_message(size)`, copying: `send(&[u8])` of
//!   a filled buffer, `recv_into(&mut Vec<u8>)` (the buffer reused), then the check;
//! - `bytes-spsc-futex-zerocopy`: the same channel written and read in place:
//!   `reserve(size)` → fill the slot → `commit()`; `peek()` → check the slot → release.
//!
//! The byte rows check a message's length, then view it as the typed rows' record,
//! `[u64; size / 8]`, to fill and check its words ([`fill_bytes`], [`verify_bytes`]): the same
//! code around the channel in both kinds of row, so that the ratio is the channels'.
//!
//! Both kinds of channel are SPSC rings over anonymous shared memory with the default doorbell
//! and spin window, and the same capacity in messages ([`capacity_for`]). A byte-channel row
//! is divided by the typed row of its style (copying or zero copy) and by the Unix socket.

use shmchan::{Backing, Bytes, Channel, Doorbell};

use super::baseline::{self, Base};
use super::proc::{run_pair, Ctl};
use super::shm::{self, by_size, capacity_for, Style};
use super::workload::{
    bytes, fill, fill_bytes, first_word, parse_window, verify_bytes, Aligned, Window, END,
};
use super::{spsc, Cfg, Error};

/// The message sizes of the section (whatever `--sizes` says: that option is the throughput
/// section's).
pub const SIZES: &[usize] = &[8, 64, 4096];

/// The doorbell of both the byte and the typed channels: the default one.
pub const BELL: Doorbell = Doorbell::Futex;

/// The name prefix of the section's own rows: `--only bytes` selects the whole section.
pub const PREFIX: &str = "bytes";

/// One row of the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteC {
    /// The Unix stream socket baseline (a reference).
    UnixSocket,
    /// The typed channel of the same record size, in a style (a reference).
    Typed(Style),
    /// The byte channel: [`Style::Unbatched`] copies (`send`/`recv_into`),
    /// [`Style::ZeroCopy`] works in place (`reserve`+`commit`/`peek`).
    Bytes(Style),
}

/// Every row, in table order (references first).
pub const ALL: &[ByteC] = &[
    ByteC::UnixSocket,
    ByteC::Typed(Style::Unbatched),
    ByteC::Typed(Style::ZeroCopy),
    ByteC::Bytes(Style::Unbatched),
    ByteC::Bytes(Style::ZeroCopy),
];

impl ByteC {
    /// The contender name.
    pub fn name(self) -> String {
        match self {
            ByteC::UnixSocket => Base::UnixSocket.name().to_owned(),
            ByteC::Typed(st) => spsc(BELL).name(st),
            ByteC::Bytes(st) => {
                let typed = spsc(BELL).name(st);
                let rest = typed.strip_prefix("shmchan-").unwrap_or(&typed);
                format!("{PREFIX}-{rest}")
            }
        }
    }

    /// One line for `--list`.
    pub fn about(self) -> String {
        match self {
            ByteC::UnixSocket => format!("reference: {}", Base::UnixSocket.about()),
            ByteC::Typed(st) => format!(
                "reference: typed [u64; size/8] records, {}",
                spsc(BELL).about(st)
            ),
            ByteC::Bytes(Style::ZeroCopy) => format!(
                "shmchan byte channel, SPSC, {BELL} doorbell, max_message = size: reserve(size) \
                 + commit / peek, written and read in place"
            ),
            ByteC::Bytes(_) => format!(
                "shmchan byte channel, SPSC, {BELL} doorbell, max_message = size: send(&[u8]) / \
                 recv_into(&mut Vec<u8>)"
            ),
        }
    }

    /// Whether it is one of the section's own rows (the others are references, measured
    /// whenever one of these is).
    pub fn own(self) -> bool {
        matches!(self, ByteC::Bytes(_))
    }

    /// The typed row a row is divided by: the typed channel in the same style (copying or
    /// zero copy); the Unix socket, which copies, against `send`/`recv`.
    pub fn typed_ref(self) -> ByteC {
        match self {
            ByteC::UnixSocket => ByteC::Typed(Style::Unbatched),
            ByteC::Typed(st) | ByteC::Bytes(st) => ByteC::Typed(st),
        }
    }
}

/// Measures `c` with `size`-byte messages: `(messages, seconds)` counted by the consumer.
pub fn throughput(c: ByteC, size: usize, cfg: &Cfg) -> Result<(u64, f64), Error> {
    match c {
        ByteC::UnixSocket => baseline::throughput(Base::UnixSocket, size, cfg),
        ByteC::Typed(st) => shm::throughput(spsc(BELL), st, size, cfg),
        ByteC::Bytes(st) => bytes_tput(st, size, cfg),
    }
}

fn bytes_tput(style: Style, size: usize, cfg: &Cfg) -> Result<(u64, f64), Error> {
    if size % 8 != 0 || size < 8 {
        return Err(Error::MessageSize(size));
    }
    by_size!(size, bytes_tput_of(style, cfg))
}

fn bytes_tput_of<const W: usize>(style: Style, cfg: &Cfg) -> Result<(u64, f64), Error> {
    let chan = channel(W * 8)?;
    let [_, report] = run_pair(
        ["producer", "consumer"],
        cfg.cpus,
        cfg.timeout(cfg.len),
        |ctl| produce::<W>(&chan, style, ctl),
        |ctl| consume::<W>(&chan, style, ctl, cfg),
    )?;
    parse_window(&report)
}

/// The section's byte channel for `size`-byte messages: SPSC, anonymous memory, the
/// section's doorbell, `max_message(size)`, [`capacity_for`]`(size)` messages.
pub(super) fn channel(size: usize) -> Result<Channel<Bytes>, Error> {
    let chan = Channel::<Bytes>::builder()
        .max_message(size)
        .capacity(capacity_for(size))
        .backing(Backing::anonymous())
        .doorbell(BELL)
        .spsc()
        .create()
        .map_err(|source| Error::Create {
            what: "the byte channel",
            source,
        })?;
    if chan.max_message() != size {
        return Err(Error::MaxMessage {
            asked: size,
            holds: chan.max_message(),
        });
    }
    Ok(chan)
}

fn produce<const W: usize>(
    chan: &Channel<Bytes>,
    style: Style,
    ctl: &Ctl,
) -> Result<String, Error> {
    let mut tx = chan.sender().map_err(Error::endpoint("sender"))?;
    // At most 4 KiB (the section's largest message): on the stack, as the typed rows' record.
    let mut rec = Aligned([0u64; W]);
    let rec = &mut rec.0;
    ctl.start_line()?;
    let mut seq = 0u64;
    match style {
        Style::ZeroCopy => {
            while !ctl.stopped() {
                let mut slot = tx.reserve(W * 8).map_err(Error::transfer("reserve"))?;
                fill_bytes::<W>(&mut slot, seq)?;
                slot.commit();
                seq += 1;
            }
        }
        _ => {
            while !ctl.stopped() {
                fill(rec, seq);
                tx.send(bytes(rec)).map_err(Error::transfer("send"))?;
                seq += 1;
            }
        }
    }
    fill(rec, END);
    tx.send(bytes(rec)).map_err(Error::transfer("send"))?;
    Ok(seq.to_string())
}

fn consume<const W: usize>(
    chan: &Channel<Bytes>,
    style: Style,
    ctl: &Ctl,
    cfg: &Cfg,
) -> Result<String, Error> {
    let mut rx = chan.receiver().map_err(Error::endpoint("receiver"))?;
    let mut buf: Vec<u8> = Vec::with_capacity(W * 8);
    let recv_err = Error::transfer::<shmchan::RecvError>("recv");
    ctl.start_line()?;
    let mut w = Window::new(cfg.warmup, cfg.len);
    let mut seq = 0u64;
    match style {
        Style::ZeroCopy => loop {
            let m = rx.peek().map_err(recv_err)?;
            verify_bytes::<W>(&m, seq)?;
            drop(m);
            seq += 1;
            if w.add(1) {
                break;
            }
        },
        _ => loop {
            rx.recv_into(&mut buf).map_err(recv_err)?;
            verify_bytes::<W>(&buf, seq)?;
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
            Style::ZeroCopy => first_word(&rx.peek().map_err(recv_err)?) == Some(END),
            _ => {
                rx.recv_into(&mut buf).map_err(recv_err)?;
                first_word(&buf) == Some(END)
            }
        };
        if end {
            break;
        }
    }
    Ok(w.report())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_references() {
        let names: Vec<String> = ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "unix-socket",
                "shmchan-spsc-futex",
                "shmchan-spsc-futex-zerocopy",
                "bytes-spsc-futex",
                "bytes-spsc-futex-zerocopy"
            ]
        );
        assert_eq!(
            ByteC::Bytes(Style::ZeroCopy).typed_ref(),
            ByteC::Typed(Style::ZeroCopy)
        );
        assert_eq!(
            ByteC::Bytes(Style::Unbatched).typed_ref(),
            ByteC::Typed(Style::Unbatched)
        );
        assert!(ALL
            .iter()
            .filter(|c| c.own())
            .all(|c| c.name().starts_with(PREFIX)));
        assert!(ALL
            .iter()
            .filter(|c| !c.own())
            .all(|c| !c.name().starts_with(PREFIX)));
    }
}
