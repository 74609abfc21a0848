//! [`Pollable`]: an endpoint with a doorbell descriptor, for event loops.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::error::OpenError;
use crate::segment::Role;
use crate::{Receiver, Sender};

mod sealed {
    /// Implemented by [`Sender`](crate::Sender) and [`Receiver`](crate::Receiver).
    pub trait Endpoint {
        /// The descriptor this endpoint sleeps on, if its doorbell has one.
        fn bell_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>>;
        /// The doorbell's name, for messages.
        fn bell_name(&self) -> &'static str;
    }
}
pub use sealed::Endpoint;

impl<T> Endpoint for Sender<T> {
    fn bell_fd(&self) -> Option<BorrowedFd<'_>> {
        self.core.seg().doorbell_fd(Role::Sender)
    }
    fn bell_name(&self) -> &'static str {
        self.core.seg().doorbell().name()
    }
}

impl<T> Endpoint for Receiver<T> {
    fn bell_fd(&self) -> Option<BorrowedFd<'_>> {
        self.core.seg().doorbell_fd(Role::Receiver)
    }
    fn bell_name(&self) -> &'static str {
        self.core.seg().doorbell().name()
    }
}

/// A [`Sender`] or [`Receiver`] whose doorbell has a descriptor ([`Doorbell::PosixMq`], or
/// [`Doorbell::EventFd`]), so that it implements [`AsFd`]: register it with `poll`, `epoll`,
/// `mio` or tokio's `AsyncFd`, and wait for readability instead of parking a thread.
///
/// It holds its own duplicate of the descriptor, so several endpoints of one channel can be
/// registered with the same epoll instance. The endpoint is reachable through `Deref`. The
/// doorbell rings only for announced waiters: call [`Receiver::arm`] (or [`Sender::arm`])
/// before each wait; when it returns `false` there is no need to wait.
///
/// ```
/// use std::os::fd::AsFd;
/// use shmchan::{Channel, Doorbell, Pollable};
/// use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
///
/// let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
/// let mut tx = chan.sender()?;
/// let mut rx = Pollable::new(chan.receiver()?).map_err(|(_, e)| e)?;
/// if rx.arm() {
///     tx.send(7).unwrap(); // (another process, in real life)
///     let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
///     poll(&mut fds, PollTimeout::from(1000u16)).unwrap();
/// }
/// assert_eq!(rx.try_recv(), Ok(7));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
///
/// [`Doorbell::PosixMq`]: crate::Doorbell::PosixMq
/// [`Doorbell::EventFd`]: crate::Doorbell::EventFd
pub struct Pollable<E> {
    endpoint: E,
    fd: OwnedFd,
}

impl<E: Endpoint> Pollable<E> {
    /// Wraps an endpoint whose doorbell has a descriptor. Without one (futex, spin,
    /// semaphores, SysV msgq) the endpoint comes back with [`OpenError::InvalidConfig`].
    ///
    /// ```
    /// use shmchan::{Channel, Doorbell, OpenError, Pollable};
    /// let chan = Channel::<u64>::builder().doorbell(Doorbell::Futex).create()?;
    /// let (rx, err) = Pollable::new(chan.receiver()?).unwrap_err();
    /// assert!(matches!(err, OpenError::InvalidConfig { .. }));
    /// drop(rx); // the endpoint came back
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn new(endpoint: E) -> Result<Pollable<E>, (E, OpenError)> {
        let dup = match endpoint.bell_fd() {
            Some(fd) => fd
                .try_clone_to_owned()
                .map_err(|e| OpenError::InvalidConfig {
                    reason: format!("cannot duplicate the doorbell's descriptor: {e}"),
                }),
            None => Err(OpenError::InvalidConfig {
                reason: format!(
                    "the {} doorbell has no descriptor to poll; create the channel with \
                     Doorbell::PosixMq or Doorbell::EventFd",
                    endpoint.bell_name()
                ),
            }),
        };
        match dup {
            Ok(fd) => Ok(Pollable { endpoint, fd }),
            Err(e) => Err((endpoint, e)),
        }
    }

    /// Gives the endpoint back.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, Pollable};
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let p = Pollable::new(chan.receiver()?).map_err(|(_, e)| e)?;
    /// let rx: shmchan::Receiver<u64> = p.into_inner();
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn into_inner(self) -> E {
        self.endpoint
    }
}

impl<E> Deref for Pollable<E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.endpoint
    }
}

impl<E> DerefMut for Pollable<E> {
    fn deref_mut(&mut self) -> &mut E {
        &mut self.endpoint
    }
}

impl<E> AsFd for Pollable<E> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl<E> AsRawFd for Pollable<E> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl<E: fmt::Debug> fmt::Debug for Pollable<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pollable")
            .field("endpoint", &self.endpoint)
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}
