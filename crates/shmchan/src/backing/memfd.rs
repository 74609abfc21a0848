//! The memfd backing, and the receiving half of handing a channel to an unrelated process
//! over a Unix socket.
//!
//! [`Backing::memfd`] creates the segment in a `memfd`, sizes it and seals it
//! (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`) before mapping it. `Channel::share` (a channel
//! operation) sends its descriptor — and the doorbell's descriptors, where it has some (the
//! [`Doorbell::EventFd`] doorbell's two eventfds) — in one `SCM_RIGHTS` message built by
//! [`handoff`]; the peer's [`Backing::receive`] checks what arrived and returns a [`Backing`]
//! that opens through the usual [`Builder`](crate::Builder) path. Nothing has a name, so
//! nothing is left behind: the memory goes with the last descriptor and mapping.
//!
//! The hand-off message is documented on [`Backing::receive`].

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use shmchan_os as os;

use super::{Backing, Kind, Mapping};
use crate::doorbell::{Doorbell, Handed, Vouched};
use crate::error::{os_error, OpenError};

const MAGIC: [u8; 8] = *b"SHMCMFD\0";
const VERSION: u32 = 1;
/// The length of a hand-off message's payload.
pub(crate) const PAYLOAD_LEN: usize = 32;
/// The most descriptors a hand-off carries (memfd + two eventfds).
const MAX_FDS: usize = 3;

/// The payload of a hand-off message (see [`Backing::receive`]) for a memfd of `len` bytes,
/// sent with `fds` descriptors, whose channel uses `doorbell`.
pub(crate) fn handoff(doorbell: Doorbell, fds: usize, len: u64) -> [u8; PAYLOAD_LEN] {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[..8].copy_from_slice(&MAGIC);
    payload[8..12].copy_from_slice(&VERSION.to_le_bytes());
    payload[12..16].copy_from_slice(&(fds as u32).to_le_bytes());
    payload[16..20].copy_from_slice(&doorbell.code().to_le_bytes());
    payload[24..32].copy_from_slice(&len.to_le_bytes());
    payload
}

/// What [`Backing::receive`] got: the memfd, its size, and the doorbell's descriptors.
#[derive(Clone)]
pub(crate) struct Received {
    fd: Arc<std::os::fd::OwnedFd>,
    bells: Option<Handed>,
    doorbell: Doorbell,
}

impl Received {
    /// The doorbell the sender announced and the descriptors that came for it.
    pub(crate) fn handed(&self) -> (Doorbell, Option<&Handed>) {
        (self.doorbell, self.bells.as_ref())
    }
}

impl PartialEq for Received {
    fn eq(&self, other: &Received) -> bool {
        Arc::ptr_eq(&self.fd, &other.fd)
    }
}

impl Eq for Received {}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("fd", &self.fd.as_raw_fd())
            .field("doorbell", &self.doorbell)
            .field(
                "bells",
                &self
                    .bells
                    .as_ref()
                    .map(|b| [b[0].as_raw_fd(), b[1].as_raw_fd()]),
            )
            .finish()
    }
}

impl std::fmt::Display for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "received memfd (fd {})", self.fd.as_raw_fd())
    }
}

impl Backing {
    /// A new memfd (`memfd_create`), for channels handed to unrelated processes over a Unix
    /// socket with [`Channel::share`]. Creation only; the peer opens the [`Backing`] that
    /// [`Backing::receive`] returns.
    ///
    /// The memfd is sized and then sealed against shrinking and growing (`F_SEAL_SHRINK |
    /// F_SEAL_GROW | F_SEAL_SEAL`) before it is mapped, so no process holding the descriptor
    /// can truncate it under a mapping (which would turn every access into `SIGBUS`). `name`
    /// is only a label (shown in `/proc/PID/fd` as `/memfd:NAME`); there is nothing to remove
    /// afterwards, whatever the [`Cleanup`](crate::Cleanup): the memory is freed when the last
    /// descriptor and mapping are gone, even after `kill -9`. The builder's `mode` does not
    /// apply (the descriptor is the capability).
    ///
    /// Every doorbell works; [`Doorbell::EventFd`] travels with the memfd.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use shmchan::{Backing, Channel, Doorbell};
    ///
    /// let chan = Channel::<u64>::builder()
    ///     .backing(Backing::memfd("ticks"))
    ///     .doorbell(Doorbell::EventFd)
    ///     .create()?;
    /// let (here, there) = UnixStream::pair().unwrap(); // `there` would go to another process
    /// chan.share(&here)?;
    /// let mut rx = Channel::<u64>::builder()
    ///     .backing(Backing::receive(&there)?)
    ///     .open_receiver()?;
    /// chan.sender()?.send(42).unwrap();
    /// assert_eq!(rx.recv(), Ok(42));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// [`Channel::share`]: crate::Channel::share
    pub fn memfd(name: impl Into<String>) -> Backing {
        Backing(Kind::Memfd(name.into()))
    }

    /// Receives a channel that a peer sent with [`Channel::share`] on `sock`, and returns a
    /// backing to open it with ([`Builder::open`](crate::Builder::open), `open_sender`,
    /// `open_receiver`; the record type, kind and doorbell are checked there as for any
    /// channel). The backing holds the received descriptors; clone it to open more endpoints,
    /// drop it when done (open channels keep what they need).
    ///
    /// Blocks until the message arrives. For a timeout, set one on the socket first
    /// ([`UnixStream::set_read_timeout`]); when it passes, the error is
    /// [`OpenError::Os`] of kind [`WouldBlock`](crate::os::ErrorKind::WouldBlock).
    ///
    /// Everything received is checked before it is used, and refused with a clear error (every
    /// descriptor that arrived is closed):
    /// - the peer closed the socket: [`OpenError::NotFound`];
    /// - a payload that is not a hand-off (magic, version, length), more descriptors than
    ///   announced or than the doorbell needs, fewer, a memory descriptor that is not a memfd,
    ///   doorbell descriptors that are not non-blocking semaphore eventfds, or a size that
    ///   differs from the announced one: [`OpenError::Corrupted`];
    /// - a memfd that is not sealed against shrinking (a peer could truncate it under our
    ///   mapping): [`OpenError::InvalidConfig`].
    ///
    /// # The hand-off message
    ///
    /// One `sendmsg` on a stream socket: 32 bytes of payload, integers little-endian, with the
    /// descriptors attached (so that other programs can hand channels to shmchan, or take them):
    ///
    /// | bytes | field | value |
    /// |---|---|---|
    /// | 0..8 | magic | `b"SHMCMFD\0"` |
    /// | 8..12 | version | 1 |
    /// | 12..16 | number of descriptors | 1, or 3 with the eventfd doorbell |
    /// | 16..20 | doorbell | its code in the segment header: futex 1, spin 2, sysv-sem 3, posix-sem 4, posix-named-sem 5, sysv-msgq 6, posix-mq 7, eventfd 8 |
    /// | 20..24 | reserved | 0 |
    /// | 24..32 | segment length | the memfd's size in bytes |
    ///
    /// Descriptors, in order: the memfd, then the eventfd receivers wait on (data), then the
    /// one senders wait on (room). The segment inside is validated on open like any other.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use shmchan::{Backing, OpenError};
    ///
    /// let (mut a, b) = UnixStream::pair().unwrap();
    /// b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    /// assert!(matches!(Backing::receive(&b), Err(OpenError::Os(_)))); // timed out
    /// a.write_all(&[0u8; 32]).unwrap(); // not a hand-off
    /// assert!(matches!(Backing::receive(&b), Err(OpenError::Corrupted { .. })));
    /// drop(a);
    /// assert!(matches!(Backing::receive(&b), Err(OpenError::NotFound { .. }))); // closed
    /// ```
    ///
    /// [`Channel::share`]: crate::Channel::share
    pub fn receive(sock: &UnixStream) -> Result<Backing, OpenError> {
        let what = format!("Unix socket fd {}", sock.as_raw_fd());
        let bad = |reason: String| OpenError::Corrupted {
            reason: format!("bad channel hand-off on {what}: {reason}"),
        };
        let recv_err = |e: os::Error| match e.kind() {
            os::ErrorKind::TooLarge => bad(e.to_string()),
            _ => OpenError::Os(e),
        };
        let mut buf = [0u8; PAYLOAD_LEN];
        let first = os::scm::recv_fds(sock.as_fd(), &mut buf, MAX_FDS).map_err(recv_err)?;
        if first.bytes == 0 {
            return Err(OpenError::NotFound {
                what: format!("{what}: the peer closed it without sending a channel"),
            });
        }
        let fds = first.fds;
        let mut filled = first.bytes;
        while filled < PAYLOAD_LEN {
            // The rest of a payload split by the stream (descriptors come only with the first
            // byte: any here are an error, and are closed).
            let more = os::scm::recv_fds(sock.as_fd(), &mut buf[filled..], 0).map_err(recv_err)?;
            if more.bytes == 0 {
                return Err(bad(format!(
                    "the peer closed the socket after {filled} of {PAYLOAD_LEN} bytes"
                )));
            }
            filled += more.bytes;
        }
        let word = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
        if buf[..8] != MAGIC {
            return Err(bad(format!(
                "not a shmchan hand-off (magic {:02x?})",
                &buf[..8]
            )));
        }
        let version = word(8);
        if version != VERSION {
            return Err(bad(format!(
                "hand-off version {version}; this build speaks version {VERSION}"
            )));
        }
        let announced = word(12) as usize;
        let code = word(16);
        let len = u64::from_le_bytes(buf[24..32].try_into().expect("8 bytes"));
        let doorbell = Doorbell::from_code(code)
            .ok_or_else(|| bad(format!("unknown doorbell code {code}")))?;
        let needed = 1 + doorbell.handoff_fds();
        if announced != fds.len() || announced != needed {
            return Err(bad(format!(
                "{} descriptor(s) arrived, the message announces {announced}, and the {doorbell} doorbell needs {needed}",
                fds.len()
            )));
        }
        let mut fds = fds.into_iter();
        let fd = fds.next().expect("counted above");
        let have = check_memfd(fd.as_fd(), &what)?;
        if have != len {
            return Err(bad(format!(
                "the peer announced a segment of {len} bytes, the memfd holds {have}"
            )));
        }
        let bells = doorbell.receive_fds(&mut fds).map_err(bad)?;
        Ok(Backing(Kind::MemfdFd(Received {
            fd: Arc::new(fd),
            bells,
            doorbell,
        })))
    }
}

/// Checks that `fd` is a memfd sealed against shrinking and not empty; returns its size.
fn check_memfd(fd: BorrowedFd<'_>, what: &str) -> Result<u64, OpenError> {
    let seals = os::memfd::get_seals(fd).map_err(|e| OpenError::Corrupted {
        reason: format!("{what}: the descriptor sent as the channel's memory is not a memfd ({e})"),
    })?;
    if !seals.contains(os::Seals::SHRINK) {
        return Err(OpenError::InvalidConfig {
            reason: format!(
                "{what}: the memfd is not sealed against shrinking (F_SEAL_SHRINK; its seals are {seals:?}), so a peer could truncate it under the mapping and turn accesses into SIGBUS; refused (Backing::memfd seals what it creates)"
            ),
        });
    }
    let len = os::memfd::len(fd)?;
    if len == 0 {
        return Err(OpenError::Corrupted {
            reason: format!("{what}: the memfd is empty (0 bytes)"),
        });
    }
    Ok(len)
}

/// Creates, sizes, seals and maps a new memfd of `len` bytes.
pub(super) fn create(name: &str, len: usize) -> Result<Mapping, OpenError> {
    let what = format!("memfd {name:?}");
    let err = |e: os::Error| os_error(e, &what);
    let fd = os::memfd::memfd_create(name).map_err(err)?;
    os::memfd::set_len(fd.as_fd(), len as u64).map_err(err)?;
    // Sealed before it is mapped or shared: from here on nobody can change its size.
    os::memfd::add_seals(
        fd.as_fd(),
        os::Seals::SHRINK | os::Seals::GROW | os::Seals::SEAL,
    )
    .map_err(err)?;
    let map = os::SharedMapping::from_fd(fd.as_fd(), len).map_err(err)?;
    Ok(Mapping::Memfd {
        map,
        fd: Arc::new(fd),
    })
}

/// Maps a received memfd after checking its seals and size (the ring then checks the header
/// against the mapped length).
pub(super) fn open(r: &Received, what: &str) -> Result<Mapping, OpenError> {
    let len = check_memfd(r.fd.as_fd(), what)?;
    let len = usize::try_from(len).map_err(|_| OpenError::Corrupted {
        reason: format!("{what}: {len} bytes do not fit this address space"),
    })?;
    let map = os::SharedMapping::from_fd(r.fd.as_fd(), len).map_err(|e| os_error(e, what))?;
    Ok(Mapping::Memfd {
        map,
        fd: r.fd.clone(),
    })
}

/// Reads a received memfd for inspection (with `pread`, never mapped).
pub(super) fn read(r: &Received, what: &str) -> Result<Vec<u8>, OpenError> {
    use std::os::unix::fs::FileExt;
    /// More than any channel this build creates needs to be inspected; a larger (sparse,
    /// hostile) memfd is read only this far, and then fails validation as too short.
    const MAX_READ: u64 = 1 << 30;
    let len = check_memfd(r.fd.as_fd(), what)?;
    let file = std::fs::File::from(r.fd.try_clone().map_err(|e| OpenError::InvalidConfig {
        reason: format!("{what}: cannot duplicate the descriptor: {e}"),
    })?);
    let mut bytes = vec![0u8; len.min(MAX_READ) as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| OpenError::InvalidConfig {
            reason: format!("{what}: cannot read it: {e}"),
        })?;
    Ok(bytes)
}

/// Who the kernel says a received memfd belongs to (`fstat`: the uid that created it).
pub(super) fn owner(r: &Received) -> Vouched {
    os::file::fstat(r.fd.as_fd()).map_or(Vouched::Unknown, |st| Vouched::Uid(st.uid))
}

/// How inspection reaches a received memfd's life tokens: through its descriptor, which holds
/// no lock (tokens are taken on descriptions of their own, `crate::life`).
pub(super) fn probe(r: &Received) -> crate::life::Probe<'_> {
    crate::life::Probe::Fd(r.fd.as_fd())
}

/// `remove` on a memfd backing: there is nothing to remove.
pub(super) fn refuse_remove(backing: &Backing) -> Option<OpenError> {
    matches!(backing.0, Kind::Memfd(_) | Kind::MemfdFd(_)).then(|| OpenError::InvalidConfig {
        reason: format!(
            "{backing} has nothing to remove: a memfd's memory goes with its last descriptor and mapping, and its doorbell objects with its creator (see Cleanup)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_doorbell_codes() {
        // The table in `Backing::receive` lists the codes in `Doorbell::ALL` order, from 1.
        for (i, d) in Doorbell::ALL.into_iter().enumerate() {
            assert_eq!(d.code() as usize, i + 1, "{d}");
        }
        assert_eq!(&MAGIC, b"SHMCMFD\0");
    }
}
