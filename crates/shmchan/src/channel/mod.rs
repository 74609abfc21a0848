//! The `Channel` value (what a builder creates or opens, and endpoints are taken from), and
//! handing a channel to another process over a Unix socket ([`Channel::share`]).

use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use shmchan_os as os;

use crate::backing::memfd::{handoff, PAYLOAD_LEN};
use crate::doorbell::Doorbell;
use crate::endpoint::{Bytes, Record, RecvCore, SendCore};
use crate::error::OpenError;
use crate::segment::{RingKind, Role, Segment};
use crate::{Receiver, Sender, WhenPeersLeave};

mod builder;

pub use builder::{Builder, DEFAULT_CAPACITY, DEFAULT_OPEN_TIMEOUT, DEFAULT_SPIN, MAX_CAPACITY};

/// A channel of `T` records in shared memory.
///
/// Most programs never hold one: [`Builder::create_sender`] and friends return endpoints
/// directly. A `Channel` is what [`Builder::create`] returns; it owns the segment (and, for the
/// creator, its cleanup) and hands out endpoints, which is how anonymous memory is shared across
/// `fork`: create the channel, fork, and take a sender in one process and a receiver in the
/// other.
///
/// ```
/// use shmchan::{Backing, Channel};
///
/// let chan = Channel::<u64>::builder()
///     .capacity(16)
///     .backing(Backing::anonymous())
///     .create()?;
/// let mut tx = chan.sender()?;
/// let mut rx = chan.receiver()?;
/// tx.send(7).unwrap();
/// assert_eq!(rx.recv(), Ok(7));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
///
/// # Anonymous memory and `fork`
///
/// After `fork`, the child has a copy of the `Channel`; it takes its endpoint with
/// [`Channel::sender`] or [`Channel::receiver`], which registers the child's pid. If the parent
/// had other threads when it forked, the child may only call async-signal-safe functions until
/// it `exec`s or `_exit`s; taking an endpoint reads `/proc` and allocates, so fork from a
/// single-threaded parent (or re-exec) when the child is to use the channel. The segment is
/// freed when the last process unmaps it.
///
/// Endpoints do not cross `fork`: an endpoint belongs to the process that attached it (its
/// table entry, its cached ring positions), and the child's copy of one refuses every call
/// with a `Forked` error ([`SendError::Forked`](crate::SendError::Forked), …); dropping the
/// copy in the child leaves the parent's endpoint registered. The check costs one load of a
/// process-wide counter per call, which a `pthread_atfork` handler bumps in each child.
///
/// ```no_run
/// # use shmchan::{Backing, Channel};
/// let chan = Channel::<u64>::builder().backing(Backing::anonymous()).mpmc().create()?;
/// let mut rx = chan.receiver()?; // the parent's
/// // SAFETY: a single-threaded parent; the child exits with `_exit`.
/// if let nix::unistd::ForkResult::Child = unsafe { nix::unistd::fork() }.unwrap() {
///     let mut tx = chan.sender().unwrap(); // the child's own endpoint
///     tx.send(1).unwrap();
///     shmchan::os::process::_exit(0);
/// }
/// assert_eq!(rx.recv(), Ok(1));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct Channel<T> {
    pub(crate) seg: Arc<Segment>,
    pub(crate) spin: Duration,
    /// The rule the endpoints taken from it follow (see [`Builder::when_peers_leave`]).
    pub(crate) when_peers_leave: WhenPeersLeave,
    _t: PhantomData<fn(T) -> T>,
}

impl<T: Record> Channel<T> {
    /// Starts building a channel of `T`.
    ///
    /// ```
    /// let b = shmchan::Channel::<[u8; 64]>::builder().capacity(4096).mpmc();
    /// # let _ = b;
    /// ```
    pub fn builder() -> Builder<T> {
        Builder::new()
    }

    /// A new sending endpoint in this process. On an SPSC channel a second live sender is
    /// refused with [`OpenError::EndpointTaken`].
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u8>::builder().backing(shmchan::Backing::anonymous()).create()?;
    /// let _tx = chan.sender()?;
    /// assert!(matches!(chan.sender(), Err(shmchan::OpenError::EndpointTaken { .. }))); // SPSC
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn sender(&self) -> Result<Sender<T>, OpenError> {
        let mut core = SendCore::attach(self.seg.clone(), self.spin, T::format())?;
        core.set_when_peers_leave(self.when_peers_leave);
        Ok(Sender::from_core(core))
    }

    /// A new receiving endpoint in this process. On an SPSC channel a second live receiver is
    /// refused with [`OpenError::EndpointTaken`].
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u8>::builder().create()?;
    /// let _rx = chan.receiver()?;
    /// assert!(matches!(chan.receiver(), Err(shmchan::OpenError::EndpointTaken { .. }))); // SPSC
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn receiver(&self) -> Result<Receiver<T>, OpenError> {
        let mut core = RecvCore::attach(self.seg.clone(), self.spin, T::format())?;
        core.set_when_peers_leave(self.when_peers_leave);
        Ok(Receiver::from_core(core))
    }
}

impl<T> Channel<T> {
    pub(crate) fn from_seg(
        seg: Segment,
        spin: Duration,
        when_peers_leave: WhenPeersLeave,
    ) -> Channel<T> {
        Channel {
            seg: Arc::new(seg),
            spin,
            when_peers_leave,
            _t: PhantomData,
        }
    }

    /// The SysV shmid of the segment, to hand to a peer ([`Backing::sysv_id`]); `None` for
    /// other backings.
    ///
    /// ```
    /// use shmchan::{Backing, Channel, Cleanup};
    /// let anon = Channel::<u8>::builder().backing(Backing::anonymous()).create()?;
    /// assert_eq!(anon.shm_id(), None);
    /// let sysv = Channel::<u8>::builder()
    ///     .backing(Backing::sysv_private())
    ///     .cleanup(Cleanup::LastDetach)
    ///     .create()?;
    /// assert!(sysv.shm_id().is_some_and(|id| id >= 0));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// [`Backing::sysv_id`]: crate::Backing::sysv_id
    pub fn shm_id(&self) -> Option<i32> {
        self.seg.shm_id()
    }

    /// SPSC or MPMC.
    ///
    /// ```
    /// use shmchan::{Channel, RingKind};
    /// assert_eq!(Channel::<u8>::builder().create()?.kind(), RingKind::Spsc); // the default
    /// assert_eq!(Channel::<u8>::builder().mpmc().create()?.kind(), RingKind::Mpmc);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn kind(&self) -> RingKind {
        self.seg.kind
    }

    /// How many records the ring holds: exactly the capacity it was built with.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u8>::builder().capacity(1000).create()?;
    /// assert_eq!(chan.capacity(), 1000);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.seg.capacity as usize
    }

    /// The doorbell the channel was created with.
    ///
    /// ```
    /// use shmchan::{Channel, Doorbell};
    /// assert_eq!(Channel::<u8>::builder().create()?.doorbell(), Doorbell::Futex); // the default
    /// let chan = Channel::<u8>::builder().doorbell(Doorbell::Spin).create()?;
    /// assert_eq!(chan.doorbell(), Doorbell::Spin);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn doorbell(&self) -> Doorbell {
        self.seg.doorbell()
    }
}

impl Channel<Bytes> {
    /// The longest message the byte channel carries.
    ///
    /// ```
    /// let chan = shmchan::Channel::<shmchan::Bytes>::builder().max_message(100).create()?;
    /// assert_eq!(chan.max_message(), 104); // rounded up to a multiple of 8
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_message(&self) -> usize {
        // A byte channel's slots hold the message alone (its length is in the lane).
        self.seg.ring().config().record_size as usize
    }
}

impl<T> std::fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("backing", &self.seg.backing)
            .field("kind", &self.seg.kind)
            .field("capacity", &self.seg.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Channel<T> {
    /// Sends this channel to the process at the other end of `sock`, which opens it with
    /// [`Backing::receive`]: the memfd's descriptor (and the [`Doorbell::EventFd`] doorbell's
    /// two eventfds) in one `SCM_RIGHTS` message (its format is in [`Backing::receive`]).
    ///
    /// Only memfd-backed channels can be shared: created with [`Backing::memfd`], or opened
    /// from a received backing (so a channel can be passed on). Others are refused with
    /// [`OpenError::InvalidConfig`]: peers reach them by key, id or path, or by `fork`. A peer
    /// that closed its end is an [`OpenError::Os`] (`EPIPE`; no `SIGPIPE` is raised).
    ///
    /// Sharing hands over the memory, not an endpoint: the peer takes its own sender or
    /// receiver, which the SPSC gate and the endpoint table count as usual.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use shmchan::{Backing, Channel, OpenError};
    ///
    /// let (a, b) = UnixStream::pair().unwrap();
    /// let chan = Channel::<u32>::builder().backing(Backing::memfd("jobs")).mpmc().create()?;
    /// chan.share(&a)?;
    /// let peer = Channel::<u32>::builder().backing(Backing::receive(&b)?).open()?;
    /// peer.sender()?.send(9).unwrap();
    /// assert_eq!(chan.receiver()?.recv(), Ok(9));
    ///
    /// let anon = Channel::<u32>::builder().backing(Backing::anonymous()).create()?;
    /// assert!(matches!(anon.share(&a), Err(OpenError::InvalidConfig { .. })));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// [`Backing::receive`]: crate::Backing::receive
    /// [`Backing::memfd`]: crate::Backing::memfd
    pub fn share(&self, sock: &UnixStream) -> Result<(), OpenError> {
        let seg = &self.seg;
        let Some(fd) = seg.memfd() else {
            return Err(OpenError::InvalidConfig {
                reason: format!(
                    "only memfd-backed channels (Backing::memfd) can be shared over a Unix socket; {} is reached {}",
                    seg.backing,
                    seg.backing.how()
                ),
            });
        };
        let doorbell = seg.doorbell();
        let mut fds = vec![fd.as_fd()];
        if doorbell.handoff_fds() > 0 {
            for role in [Role::Receiver, Role::Sender] {
                fds.push(
                    seg.doorbell_fd(role)
                        .ok_or_else(|| OpenError::InvalidConfig {
                            reason: "the eventfd doorbell has no descriptors in this process"
                                .into(),
                        })?,
                );
            }
        }
        let len = os::memfd::len(fd.as_fd())?;
        let payload = handoff(doorbell, fds.len(), len);
        let mut sent = os::scm::send_fds(sock.as_fd(), &payload, &fds)?;
        while sent < PAYLOAD_LEN {
            // A stream may take the payload in parts; descriptors went with the first one.
            sent += os::scm::send_fds(sock.as_fd(), &payload[sent..], &[])?;
        }
        Ok(())
    }
}
