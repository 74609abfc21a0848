//! POSIX message queues: `mq_open`, `mq_send`/`mq_timedsend`, `mq_receive`/`mq_timedreceive`,
//! `mq_getattr`, `mq_unlink`.
//!
//! A queue holds up to `max_msgs` messages of up to `msg_size` bytes, delivered highest priority
//! first. On Linux the descriptor is a file descriptor: [`PosixMq`] implements [`AsFd`], so it
//! works with `poll`/`epoll` (readable when a message is queued, writable when there is room).
//!
//! Timed calls take a monotonic deadline ([`Instant`]); the kernel only takes `CLOCK_REALTIME`
//! absolute times here, so each attempt converts "time left" into a realtime deadline afresh.
//! `try_*` work on blocking descriptors too (a timed call with a deadline already past).
//!
//! Queue sizes are limited by `fs.mqueue.msg_max` and `fs.mqueue.msgsize_max` (for processes
//! without `CAP_SYS_RESOURCE`), the number of queues by `fs.mqueue.queues_max`, and the bytes per
//! user by `RLIMIT_MSGQUEUE`; errors name the one that applies.
//!
//! ```
//! use shmchan_os::{Mode, MqAttr, PosixMq};
//!
//! let name = format!("/shmchan-os-doc-mq-{}", std::process::id());
//! let mq = PosixMq::create(&name, MqAttr { max_msgs: 4, msg_size: 64 }, Mode::default(), false)?;
//! PosixMq::unlink(&name)?; // the name is gone; the open queue keeps working
//! mq.send(b"low", 1)?;
//! mq.send(b"high", 9)?;
//! let mut buf = [0u8; 64];
//! assert_eq!(mq.recv(&mut buf)?, (4, 9)); // highest priority first
//! assert_eq!(mq.try_recv(&mut buf)?, Some((3, 1)));
//! assert_eq!(mq.try_recv(&mut buf)?, None);
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;

use crate::error::{check, limit, Error, ErrorKind, Result};
use crate::key::Mode;
use crate::limits;
use crate::retry::{abs_timespec, retry_eintr, retry_eintr_untimed, EXPIRED};

/// The size of a queue: at most `max_msgs` messages of at most `msg_size` bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MqAttr {
    /// `mq_maxmsg`.
    pub max_msgs: usize,
    /// `mq_msgsize`.
    pub msg_size: usize,
}

/// An open POSIX message queue; closed on drop (the name stays until
/// [`unlink`](PosixMq::unlink)).
///
/// Opened read-write and close-on-exec. A handle opened before `fork` is usable in the child.
///
/// ```
/// use std::os::fd::AsFd;
/// use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
/// use shmchan_os::{Mode, MqAttr, PosixMq};
///
/// let name = format!("/shmchan-os-doc-poll-{}", std::process::id());
/// let mq = PosixMq::create(&name, MqAttr { max_msgs: 2, msg_size: 8 }, Mode::default(), false)?;
/// PosixMq::unlink(&name)?;
/// mq.send(b"ping", 0)?;
/// let mut fds = [PollFd::new(mq.as_fd(), PollFlags::POLLIN)];
/// assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 1); // readable: a message is queued
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[derive(Debug)]
pub struct PosixMq {
    fd: OwnedFd,
    name: Box<str>,
}

fn c_name(op: &'static str, args: &dyn Fn() -> String, name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| {
        Error::new(op, args(), Errno::EINVAL).with_hint("the name contains a NUL byte")
    })
}

fn open_error(err: Error, name: &str, attr: Option<MqAttr>) -> Error {
    if err.errno() == Errno::EACCES && name.get(1..).is_some_and(|rest| rest.contains('/')) {
        // Linux reports a second slash as EACCES.
        return err
            .with_kind(ErrorKind::InvalidInput)
            .with_hint("a queue name is \"/name\" without further slashes");
    }
    let msg_max = limits::mq_msg_max();
    let msgsize_max = limits::mq_msgsize_max();
    match err.errno() {
        Errno::EINVAL => {
            let mut over = Vec::new();
            if let Some(a) = attr {
                if msg_max.is_some_and(|m| a.max_msgs as u64 > m) {
                    over.push(format!(
                        "max_msgs {} exceeds {}",
                        a.max_msgs,
                        limit("mq msg_max", msg_max, "fs.mqueue.msg_max")
                    ));
                }
                if msgsize_max.is_some_and(|m| a.msg_size as u64 > m) {
                    over.push(format!(
                        "msg_size {} exceeds {}",
                        a.msg_size,
                        limit("mq msgsize_max", msgsize_max, "fs.mqueue.msgsize_max")
                    ));
                }
            }
            if over.is_empty() {
                err.with_hint(format!(
                    "the name must be \"/name\" without further slashes, and max_msgs and \
                     msg_size at least 1 and at most {} and {}",
                    limit("mq msg_max", msg_max, "fs.mqueue.msg_max"),
                    limit("mq msgsize_max", msgsize_max, "fs.mqueue.msgsize_max")
                ))
            } else {
                err.with_kind(ErrorKind::LimitReached)
                    .with_hint(over.join("; "))
            }
        }
        Errno::ENOSPC => err.with_hint(format!(
            "all {} exist",
            limit(
                "mq queues_max",
                limits::mq_queues_max(),
                "fs.mqueue.queues_max"
            )
        )),
        Errno::EMFILE => {
            let rl = limits::rlimit_msgqueue()
                .map_or_else(|| "unreadable".to_owned(), |v| format!("{v} bytes"));
            err.with_hint(format!(
                "this user's RLIMIT_MSGQUEUE ({rl}; ulimit -q) or the process's open-descriptor \
                 limit is exhausted (queue bytes ~ max_msgs * (msg_size + overhead), see \
                 mq msg_max/msgsize_max)"
            ))
        }
        Errno::ENOENT => err.with_hint("no queue has this name"),
        _ => err,
    }
}

impl PosixMq {
    /// `mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC [| O_NONBLOCK], mode, attr)`.
    ///
    /// With `nonblock`, [`send`](PosixMq::send)/[`recv`](PosixMq::recv) fail with
    /// [`WouldBlock`](ErrorKind::WouldBlock) instead of blocking, and the timed calls do not
    /// wait (they return `false`/`None` at once); the `try_*` calls behave the same either way.
    /// A blocking descriptor is what you want unless an event loop polls it.
    pub fn create(name: &str, attr: MqAttr, mode: Mode, nonblock: bool) -> Result<PosixMq> {
        let args = || {
            format!(
                "name={name:?}, oflag=O_RDWR|O_CREAT|O_EXCL{}, mode={mode}, max_msgs={}, msg_size={}",
                if nonblock { "|O_NONBLOCK" } else { "" },
                attr.max_msgs,
                attr.msg_size
            )
        };
        let c = c_name("mq_open", &args, name)?;
        // SAFETY: mq_attr is plain integers; zero is valid.
        let mut ma: libc::mq_attr = unsafe { MaybeUninit::zeroed().assume_init() };
        ma.mq_maxmsg = attr.max_msgs.try_into().unwrap_or(libc::c_long::MAX);
        ma.mq_msgsize = attr.msg_size.try_into().unwrap_or(libc::c_long::MAX);
        let mut oflag = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
        if nonblock {
            oflag |= libc::O_NONBLOCK;
        }
        // SAFETY: `c` is a valid C string; with O_CREAT mq_open reads a mode_t and a
        // `struct mq_attr *` from the variadic arguments, passed with those types; `ma` outlives
        // the call.
        let fd = check(unsafe {
            libc::mq_open(
                c.as_ptr(),
                oflag,
                mode.bits() as libc::mode_t,
                &ma as *const libc::mq_attr,
            )
        })
        .map_err(|e| open_error(Error::new("mq_open", args(), e), name, Some(attr)))?;
        // SAFETY: on Linux an mqd_t is a file descriptor, freshly opened and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PosixMq {
            fd,
            name: name.into(),
        })
    }

    /// `mq_open(name, O_RDWR | O_CLOEXEC [| O_NONBLOCK])`: the existing queue with this name.
    ///
    /// [`NotFound`](ErrorKind::NotFound) when there is none.
    pub fn open(name: &str, nonblock: bool) -> Result<PosixMq> {
        let args = || {
            format!(
                "name={name:?}, oflag=O_RDWR{}",
                if nonblock { "|O_NONBLOCK" } else { "" }
            )
        };
        let c = c_name("mq_open", &args, name)?;
        let mut oflag = libc::O_RDWR | libc::O_CLOEXEC;
        if nonblock {
            oflag |= libc::O_NONBLOCK;
        }
        // SAFETY: `c` is a valid C string; without O_CREAT no variadic argument is read.
        let fd = check(unsafe { libc::mq_open(c.as_ptr(), oflag) })
            .map_err(|e| open_error(Error::new("mq_open", args(), e), name, None))?;
        // SAFETY: on Linux an mqd_t is a file descriptor, freshly opened and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PosixMq {
            fd,
            name: name.into(),
        })
    }

    /// `mq_unlink(name)`: removes the name; open descriptors keep working until closed.
    pub fn unlink(name: &str) -> Result<()> {
        let args = || format!("name={name:?}");
        let c = c_name("mq_unlink", &args, name)?;
        // SAFETY: `c` is a valid C string.
        check(unsafe { libc::mq_unlink(c.as_ptr()) })
            .map_err(|e| open_error(Error::new("mq_unlink", args(), e), name, None))?;
        Ok(())
    }

    /// The name it was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn getattr(&self) -> std::result::Result<libc::mq_attr, Errno> {
        // SAFETY: mq_attr is plain integers; zero is valid.
        let mut ma: libc::mq_attr = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `fd` is an open queue descriptor; `ma` is writable.
        check(unsafe { libc::mq_getattr(self.fd.as_raw_fd(), &mut ma) })?;
        Ok(ma)
    }

    /// `mq_getattr`: the queue's size.
    pub fn attr(&self) -> Result<MqAttr> {
        let ma = self
            .getattr()
            .map_err(|e| self.error("mq_getattr", String::new(), e))?;
        Ok(MqAttr {
            max_msgs: ma.mq_maxmsg.try_into().unwrap_or(0),
            msg_size: ma.mq_msgsize.try_into().unwrap_or(0),
        })
    }

    /// `mq_getattr`: how many messages are queued now.
    pub fn cur_msgs(&self) -> Result<usize> {
        let ma = self
            .getattr()
            .map_err(|e| self.error("mq_getattr", String::new(), e))?;
        Ok(ma.mq_curmsgs.try_into().unwrap_or(0))
    }

    fn error(&self, op: &'static str, extra: String, errno: Errno) -> Error {
        let args = format!("mqdes={} ({:?}){extra}", self.fd.as_raw_fd(), self.name);
        let err = Error::new(op, args, errno);
        let msg_size = || self.getattr().map_or(0, |a| a.mq_msgsize);
        match errno {
            Errno::EMSGSIZE if op.contains("send") => err.with_hint(format!(
                "the message exceeds the queue's msg_size ({})",
                msg_size()
            )),
            Errno::EMSGSIZE => err.with_hint(format!(
                "the buffer is smaller than the queue's msg_size ({})",
                msg_size()
            )),
            _ => err,
        }
    }

    /// One send attempt with an absolute `CLOCK_REALTIME` deadline (`None`: `mq_send`).
    fn send_raw(
        &self,
        data: &[u8],
        prio: u32,
        abs: Option<&libc::timespec>,
    ) -> std::result::Result<(), Errno> {
        let fd = self.fd.as_raw_fd();
        let ret = match abs {
            // SAFETY: `data` is valid for `data.len()` bytes; the kernel only reads it.
            None => unsafe { libc::mq_send(fd, data.as_ptr().cast(), data.len(), prio) },
            // SAFETY: as above; `ts` is a valid timespec that outlives the call.
            Some(ts) => unsafe {
                libc::mq_timedsend(fd, data.as_ptr().cast(), data.len(), prio, ts)
            },
        };
        check(ret).map(drop)
    }

    /// `mq_send`: queues `data` with priority `prio`, blocking while the queue is full.
    ///
    /// On a `nonblock` queue a full queue is [`WouldBlock`](ErrorKind::WouldBlock). A message
    /// over `msg_size` is [`TooLarge`](ErrorKind::TooLarge). `EINTR` is retried. Async-signal-safe
    /// when it succeeds.
    pub fn send(&self, data: &[u8], prio: u32) -> Result<()> {
        retry_eintr_untimed(|| self.send_raw(data, prio, None))
            .map_err(|e| self.error("mq_send", format!(", len={}, prio={prio}", data.len()), e))
    }

    /// Queues `data` if there is room now (`true`), without waiting.
    pub fn try_send(&self, data: &[u8], prio: u32) -> Result<bool> {
        retry_eintr_untimed(|| match self.send_raw(data, prio, Some(&EXPIRED)) {
            Ok(()) => Ok(true),
            Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Ok(false),
            Err(e) => Err(e),
        })
        .map_err(|e| {
            self.error(
                "mq_timedsend",
                format!(", len={}, prio={prio}, abs=0", data.len()),
                e,
            )
        })
    }

    /// `mq_timedsend`: queues `data`, waiting for room until `deadline`; `false` when it passed
    /// first. `EINTR` is retried until the deadline.
    pub fn send_until(&self, data: &[u8], prio: u32, deadline: Instant) -> Result<bool> {
        let sent = retry_eintr(Some(deadline), |left| {
            let abs = abs_timespec(libc::CLOCK_REALTIME, left.unwrap_or_default())?;
            match self.send_raw(data, prio, Some(&abs)) {
                Ok(()) => Ok(Some(())),
                Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| {
            self.error(
                "mq_timedsend",
                format!(", len={}, prio={prio}", data.len()),
                e,
            )
        })?;
        Ok(sent.is_some())
    }

    /// One receive attempt with an absolute `CLOCK_REALTIME` deadline (`None`: `mq_receive`).
    fn recv_raw(
        &self,
        buf: &mut [u8],
        abs: Option<&libc::timespec>,
    ) -> std::result::Result<(usize, u32), Errno> {
        let fd = self.fd.as_raw_fd();
        let mut prio = 0u32;
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        let ret = match abs {
            // SAFETY: `buf` is writable for `len` bytes; `prio` is a writable u32.
            None => unsafe { libc::mq_receive(fd, ptr, len, &mut prio) },
            // SAFETY: as above; `ts` is a valid timespec that outlives the call.
            Some(ts) => unsafe { libc::mq_timedreceive(fd, ptr, len, &mut prio, ts) },
        };
        let n = check(ret)?;
        Ok((n as usize, prio))
    }

    /// `mq_receive`: takes the oldest message of the highest priority into `buf`, blocking
    /// while the queue is empty. Returns `(len, prio)`.
    ///
    /// `buf` must hold `msg_size` bytes ([`TooLarge`](ErrorKind::TooLarge) otherwise). On a
    /// `nonblock` queue an empty queue is [`WouldBlock`](ErrorKind::WouldBlock). `EINTR` is
    /// retried.
    pub fn recv(&self, buf: &mut [u8]) -> Result<(usize, u32)> {
        let len = buf.len();
        retry_eintr_untimed(|| self.recv_raw(buf, None))
            .map_err(|e| self.error("mq_receive", format!(", len={len}"), e))
    }

    /// Takes a message if there is one now, without waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<(usize, u32)>> {
        let len = buf.len();
        retry_eintr_untimed(|| match self.recv_raw(buf, Some(&EXPIRED)) {
            Ok(got) => Ok(Some(got)),
            Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e),
        })
        .map_err(|e| self.error("mq_timedreceive", format!(", len={len}, abs=0"), e))
    }

    /// `mq_timedreceive`: takes a message, waiting until `deadline`; `None` when it passed
    /// first. `EINTR` is retried until the deadline.
    pub fn recv_until(&self, buf: &mut [u8], deadline: Instant) -> Result<Option<(usize, u32)>> {
        let len = buf.len();
        retry_eintr(Some(deadline), |left| {
            let abs = abs_timespec(libc::CLOCK_REALTIME, left.unwrap_or_default())?;
            match self.recv_raw(buf, Some(&abs)) {
                Ok(got) => Ok(Some(got)),
                Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.error("mq_timedreceive", format!(", len={len}"), e))
    }
}

impl AsFd for PosixMq {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PosixMq {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
