//! Passing file descriptors over a Unix socket (`SCM_RIGHTS`) together with a few bytes of
//! payload: how a memfd (and the eventfds of its doorbell) reach an unrelated process.
//!
//! [`send_fds`] is one `sendmsg` carrying the payload and the descriptors; [`recv_fds`] is one
//! `recvmsg` that installs the received descriptors close-on-exec (`MSG_CMSG_CLOEXEC`) and
//! hands them out as [`OwnedFd`]s, so none can leak. A peer that sends more descriptors than
//! the receiver expects is an error, never a leak: every descriptor that did arrive is closed
//! before the error is returned.
//!
//! On a stream socket the descriptors travel with the first byte of the payload; the kernel
//! never merges the bytes of two messages that carry descriptors into one read, but it may
//! return fewer bytes than were sent (read the rest with `read`).
//!
//! Timeouts are the socket's: set `SO_RCVTIMEO` ([`UnixStream::set_read_timeout`]); a receive
//! that times out fails with [`WouldBlock`](crate::ErrorKind::WouldBlock).
//!
//! [`UnixStream::set_read_timeout`]: std::os::unix::net::UnixStream::set_read_timeout
//!
//! ```
//! use std::os::fd::AsFd;
//! use std::os::unix::net::UnixStream;
//! use shmchan_os::scm::{recv_fds, send_fds};
//! use shmchan_os::{EfdFlags, EventFd};
//!
//! let (a, b) = UnixStream::pair().unwrap();
//! let efd = EventFd::new(0, EfdFlags::empty())?;
//! send_fds(a.as_fd(), b"hello", &[efd.as_fd()])?;
//! let mut buf = [0u8; 16];
//! let got = recv_fds(b.as_fd(), &mut buf, 1)?;
//! assert_eq!(&buf[..got.bytes], b"hello");
//! assert_eq!(got.fds.len(), 1); // a new descriptor for the same eventfd
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::io::IoSlice;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

use crate::error::{check, Error, ErrorKind, Result};
use crate::retry::retry_eintr_untimed;

/// The most descriptors one message can carry on Linux (`SCM_MAX_FD`).
///
/// ```
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
/// use shmchan_os::scm::{send_fds, MAX_FDS};
/// let (a, _b) = UnixStream::pair().unwrap();
/// let too_many = vec![a.as_fd(); MAX_FDS + 1];
/// assert!(send_fds(a.as_fd(), b"x", &too_many).is_err()); // refused before the call
/// ```
pub const MAX_FDS: usize = 253;

/// What [`recv_fds`] received.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
/// let (a, b) = UnixStream::pair().unwrap();
/// shmchan_os::scm::send_fds(a.as_fd(), b"x", &[])?;
/// let got = shmchan_os::scm::recv_fds(b.as_fd(), &mut [0u8; 4], 2)?;
/// assert_eq!((got.bytes, got.fds.len()), (1, 0));
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Received {
    /// Payload bytes written to the buffer (0: the peer closed the socket).
    pub bytes: usize,
    /// The descriptors that came with them, close-on-exec, in the order they were sent.
    pub fds: Vec<OwnedFd>,
}

/// `sendmsg(sock, payload, SCM_RIGHTS(fds), MSG_NOSIGNAL)`: sends `payload` (at least one byte)
/// and duplicates of `fds` to the peer. Returns how many payload bytes were sent (a stream
/// socket may send fewer; send the rest with `write`, without descriptors). `EINTR` is
/// retried; a closed peer is an error (`EPIPE`), never `SIGPIPE`.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
/// let (a, b) = UnixStream::pair().unwrap();
/// drop(b);
/// let err = shmchan_os::scm::send_fds(a.as_fd(), b"x", &[a.as_fd()]).unwrap_err();
/// assert_eq!(err.errno(), shmchan_os::Errno::EPIPE);
/// ```
pub fn send_fds(sock: BorrowedFd<'_>, payload: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let args = || {
        format!(
            "sock={}, len={}, fds={raw:?}, flags=MSG_NOSIGNAL",
            sock.as_raw_fd(),
            payload.len()
        )
    };
    if payload.is_empty() {
        return Err(Error::new("sendmsg", args(), Errno::EINVAL)
            .with_hint("descriptors need at least one byte of payload to travel with"));
    }
    if raw.len() > MAX_FDS {
        return Err(Error::new("sendmsg", args(), Errno::EINVAL)
            .with_kind(ErrorKind::TooLarge)
            .with_hint(format!(
                "{} descriptors exceed the {MAX_FDS} one message can carry (SCM_MAX_FD)",
                raw.len()
            )));
    }
    let iov = [IoSlice::new(payload)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() {
        &[]
    } else {
        &[ControlMessage::ScmRights(&raw)]
    };
    retry_eintr_untimed(|| {
        sendmsg::<UnixAddr>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
    })
    .map_err(|e| Error::new("sendmsg", args(), e))
}

/// `recvmsg(sock, buf, MSG_CMSG_CLOEXEC)`: receives up to `buf.len()` payload bytes and at most
/// `max_fds` descriptors. `EINTR` is retried (with the socket's whole read timeout again).
///
/// Errors, after closing every descriptor that did arrive:
/// - more than `max_fds` descriptors, or control data the kernel had to truncate
///   (`MSG_CTRUNC`): [`TooLarge`](ErrorKind::TooLarge);
/// - the socket's read timeout passed: [`WouldBlock`](ErrorKind::WouldBlock).
///
/// A peer that closed the socket gives `Ok` with 0 bytes and no descriptors.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
/// use shmchan_os::{scm, ErrorKind};
/// let (a, b) = UnixStream::pair().unwrap();
/// scm::send_fds(a.as_fd(), b"x", &[a.as_fd(), b.as_fd()])?;
/// let err = scm::recv_fds(b.as_fd(), &mut [0u8; 4], 1).unwrap_err(); // two is one too many
/// assert_eq!(err.kind(), ErrorKind::TooLarge);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
pub fn recv_fds(sock: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize) -> Result<Received> {
    let max_fds = max_fds.min(MAX_FDS);
    let buf_len = buf.len();
    let args = || {
        format!(
            "sock={}, len={buf_len}, max_fds={max_fds}, flags=MSG_CMSG_CLOEXEC",
            sock.as_raw_fd()
        )
    };
    // Room for one SCM_RIGHTS message of `max_fds` descriptors (at least one, so that a
    // surplus is seen as such), in u64 words so that the buffer is aligned for cmsghdr.
    let want = u32::try_from(max_fds.max(1) * size_of::<libc::c_int>()).unwrap_or(u32::MAX);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(want) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let control_len = control.len() * 8;
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf_len,
    };
    // SAFETY: msghdr is plain data; all-zero is a valid (empty) value that we fill in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    let (bytes, flags, fds) = {
        // nix's recvmsg refuses to iterate the control data after MSG_CTRUNC, which would leak
        // the descriptors that did arrive; so this one call goes through libc directly.
        let n = retry_eintr_untimed(|| {
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control_len as _;
            msg.msg_flags = 0;
            // SAFETY: `msg` points to one iovec describing `buf` (writable, `buf.len()` bytes)
            // and to `control` (writable, `control_len` bytes, 8-aligned); both outlive the
            // call, and the kernel writes only within them.
            check(unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) })
        })
        .map_err(|e| match e {
            Errno::EAGAIN => Error::new("recvmsg", args(), e)
                .with_hint("nothing arrived within the socket's read timeout (SO_RCVTIMEO)"),
            _ => Error::new("recvmsg", args(), e),
        })?;
        // Take ownership of every descriptor first, so that any error below closes them.
        // SAFETY: `msg` is the header the kernel just filled in; its control pointer and
        // (updated) length describe `control`, which is still alive.
        let fds = unsafe { take_fds(&msg) };
        (n as usize, msg.msg_flags, fds)
    };
    if flags & libc::MSG_CTRUNC != 0 || fds.len() > max_fds {
        let got = fds.len();
        drop(fds); // closes them
        let more = if flags & libc::MSG_CTRUNC != 0 {
            "more than that (the control data was truncated, MSG_CTRUNC)".to_owned()
        } else {
            got.to_string()
        };
        return Err(Error::new("recvmsg", args(), Errno::EMSGSIZE)
            .with_kind(ErrorKind::TooLarge)
            .with_hint(format!(
                "the peer sent {more} descriptors, expected at most {max_fds}; those that arrived were closed"
            )));
    }
    Ok(Received { bytes, fds })
}

/// Collects the descriptors of every `SCM_RIGHTS` message in `msg`'s control data.
///
/// # Safety
///
/// `msg` was filled in by a successful `recvmsg`, and the control buffer it points to is alive.
unsafe fn take_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // `size_t` on glibc, `socklen_t` on other C libraries.
    #[allow(clippy::unnecessary_cast)]
    let controllen = msg.msg_controllen as usize;
    if msg.msg_control.is_null() || controllen < size_of::<libc::cmsghdr>() {
        return fds;
    }
    // SAFETY: the caller guarantees `msg` describes a live control buffer; CMSG_FIRSTHDR
    // returns null or a header inside `msg_controllen` bytes of it.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        // SAFETY: `c` is a non-null header that CMSG_FIRSTHDR/CMSG_NXTHDR found inside the
        // control buffer (which is 8-aligned, as cmsghdr requires).
        let hdr = unsafe { c.read() };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_DATA of a header inside the buffer points inside the buffer.
            let data = unsafe { libc::CMSG_DATA(c) };
            let head = data as usize - c as usize;
            let avail = (msg.msg_control as usize + controllen).saturating_sub(data as usize);
            let payload = (hdr.cmsg_len as usize).saturating_sub(head).min(avail);
            for i in 0..payload / size_of::<libc::c_int>() {
                // SAFETY: `i` indexes within the `payload` bytes after CMSG_DATA, which lie
                // inside the control buffer; the kernel installed each of these descriptors
                // for this process and nobody else owns them yet.
                let raw = unsafe { data.cast::<libc::c_int>().add(i).read_unaligned() };
                if raw >= 0 {
                    // SAFETY: as above: a fresh descriptor that only this Vec will own.
                    fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR; returns null after the last header.
        c = unsafe { libc::CMSG_NXTHDR(msg, c) };
    }
    fds
}
