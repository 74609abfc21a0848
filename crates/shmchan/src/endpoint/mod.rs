//! Endpoints: [`Sender`] and [`Receiver`], one facade over one core.
//!
//! crossbeam-channel's shape: the public types are thin faces that convert records and
//! errors, and the untyped endpoint core ([`core`]) owns everything else once — the ring
//! handle, the endpoint-table entry, the spin policy, blocking with deadlines, waking, the
//! drain-before-`Disconnected` rule and crash adoption. Two faces sit on it: typed records
//! (`T: Pod`, [`typed`]) and byte messages ([`Bytes`], [`bytes`]). What both faces share —
//! the accessors, arming for an event loop, cloning — is written once below for every `T`.

use std::marker::PhantomData;

mod bytes;
mod core;
mod fresh;
mod lifecycle;
mod typed;

pub use self::bytes::{
    ByteRecvGuard, ByteSendGuard, Bytes, SendBytesError, DEFAULT_MAX_MESSAGE, MAX_MESSAGE,
};
#[cfg(all(test, loom))]
pub(crate) use self::core::Lane;
pub(crate) use self::core::{RecvCore, SendCore};
pub use self::lifecycle::{Departure, HowLeft, WhenPeersLeave};
pub use self::typed::{Iter, IterResults, RecvGuard, SendGuard, TryIter};

use crate::error::OpenError;
use crate::record::RecordInfo;
use crate::segment::Role;

/// What a channel carries: any [`Pod`](bytemuck::Pod) type (a typed channel), or [`Bytes`]
/// (a byte channel: messages of up to a maximum length chosen at creation).
///
/// Sealed: shmchan implements it, and it only appears in bounds such as
/// [`Channel::builder`](crate::Channel::builder)'s.
///
/// ```
/// fn capacity_of<T: shmchan::Record>() -> Result<usize, shmchan::OpenError> {
///     Ok(shmchan::Channel::<T>::builder().capacity(8).create()?.capacity())
/// }
/// assert_eq!(capacity_of::<u64>()?, 8);
/// assert_eq!(capacity_of::<shmchan::Bytes>()?, 8);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
///
/// Zero-sized types (`()`, empty structs) are refused when the program is built: a record
/// crosses processes as bytes in a slot, and a type without bytes would need a meaning of its
/// own on every path (batches are byte slices, guards are slots). For a counted signal send a
/// `u8` — one byte per pending signal, and the capacity counts them:
///
/// ```compile_fail
/// let signals = shmchan::Channel::<()>::builder().create(); // error: zero-sized record
/// ```
///
/// ```
/// let signals = shmchan::Channel::<u8>::builder().capacity(16).create()?;
/// let (mut tx, mut rx) = (signals.sender()?, signals.receiver()?);
/// tx.send(0).unwrap(); // a signal
/// assert_eq!(rx.len(), 1); // signals pending
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub trait Record: sealed::Sealed {}

impl<T: bytemuck::Pod> Record for T {}
impl Record for Bytes {}

mod sealed {
    use super::*;

    /// What the builder and the endpoint core need to know about a record type.
    pub trait Sealed {
        /// The record fingerprint for the builder's settings: the type name set (or `None`
        /// for the default), the schema version, and a record size chosen at run time (set
        /// only for records whose size is not their type's).
        fn info(
            name: Option<&str>,
            schema_version: u32,
            size: Option<usize>,
        ) -> Result<RecordInfo, OpenError>;

        /// Whether an opener with these settings accepts the channel's record size (a byte
        /// channel whose maximum message was not set adopts the creator's).
        fn any_size(size: Option<usize>) -> bool;

        /// How the endpoint core checks and keeps these records.
        fn format() -> super::core::Format;
    }

    impl<T: bytemuck::Pod> Sealed for T {
        fn info(
            name: Option<&str>,
            schema_version: u32,
            _: Option<usize>,
        ) -> Result<RecordInfo, OpenError> {
            // Every builder path (create, open, segment_len, create_in) asks for the record's
            // info, so this refuses `Channel::<()>` wherever it is used, when it is built.
            const {
                assert!(
                    std::mem::size_of::<T>() != 0,
                    "a zero-sized record cannot cross processes: send a u8 as a counted signal"
                )
            };
            Ok(RecordInfo::of_record::<T>(name, schema_version))
        }

        fn any_size(_: Option<usize>) -> bool {
            false
        }

        fn format() -> super::core::Format {
            super::typed::format::<T>()
        }
    }

    impl Sealed for Bytes {
        fn info(
            name: Option<&str>,
            schema_version: u32,
            size: Option<usize>,
        ) -> Result<RecordInfo, OpenError> {
            super::bytes::record(name, schema_version, size)
        }

        fn any_size(size: Option<usize>) -> bool {
            size.is_none()
        }

        fn format() -> super::core::Format {
            super::bytes::FORMAT
        }
    }
}

/// How a core's [`Failed`](crate::wait::Failed) reads as each operation's error (a failed
/// send gives the record back).
pub(crate) mod fail {
    use super::core::Wait;
    use crate::error::{
        RecvError, RecvTimeoutError, ReserveError, SendBatchError, SendError, SendTimeoutError,
        TryRecvError, TrySendError,
    };
    use crate::wait::Failed;

    pub(crate) fn try_send<T>(f: Failed, v: T) -> TrySendError<T> {
        match f {
            Failed::Timeout => TrySendError::Full(v),
            Failed::Gone => TrySendError::Disconnected(v),
            Failed::Corrupted => TrySendError::Corrupted(v),
            Failed::Forked => TrySendError::Forked(v),
        }
    }

    /// A send that waits for ever fails only on a departure or corruption.
    pub(crate) fn send<T>(f: Failed, v: T) -> SendError<T> {
        match f {
            Failed::Gone => SendError::Disconnected(v),
            Failed::Timeout | Failed::Corrupted => SendError::Corrupted(v),
            Failed::Forked => SendError::Forked(v),
        }
    }

    pub(crate) fn send_timeout<T>(f: Failed, v: T) -> SendTimeoutError<T> {
        match f {
            Failed::Timeout => SendTimeoutError::Timeout(v),
            Failed::Gone => SendTimeoutError::Disconnected(v),
            Failed::Corrupted => SendTimeoutError::Corrupted(v),
            Failed::Forked => SendTimeoutError::Forked(v),
        }
    }

    /// A reservation: "no room" is `Full` for `try_reserve`, `Timeout` for the waiting forms.
    pub(crate) fn reserve(f: Failed, wait: Wait) -> ReserveError {
        match f {
            Failed::Timeout if matches!(wait, Wait::No) => ReserveError::Full,
            Failed::Timeout => ReserveError::Timeout,
            Failed::Gone => ReserveError::Disconnected,
            Failed::Corrupted => ReserveError::Corrupted,
            Failed::Forked => ReserveError::Forked,
        }
    }

    /// A batch send (`try_send_batch` maps "no room" to `Ok(0)` before this).
    pub(crate) fn send_batch(f: Failed) -> SendBatchError {
        match f {
            Failed::Timeout => SendBatchError::Timeout,
            Failed::Gone => SendBatchError::Disconnected,
            Failed::Corrupted => SendBatchError::Corrupted,
            Failed::Forked => SendBatchError::Forked,
        }
    }

    pub(crate) fn try_recv(f: Failed) -> TryRecvError {
        match f {
            Failed::Timeout => TryRecvError::Empty,
            Failed::Gone => TryRecvError::Disconnected,
            Failed::Corrupted => TryRecvError::Corrupted,
            Failed::Forked => TryRecvError::Forked,
        }
    }

    /// A receive that waits for ever fails only on a departure or corruption.
    pub(crate) fn recv(f: Failed) -> RecvError {
        match f {
            Failed::Gone => RecvError::Disconnected,
            Failed::Timeout | Failed::Corrupted => RecvError::Corrupted,
            Failed::Forked => RecvError::Forked,
        }
    }

    pub(crate) fn recv_timeout(f: Failed) -> RecvTimeoutError {
        match f {
            Failed::Timeout => RecvTimeoutError::Timeout,
            Failed::Gone => RecvTimeoutError::Disconnected,
            Failed::Corrupted => RecvTimeoutError::Corrupted,
            Failed::Forked => RecvTimeoutError::Forked,
        }
    }
}

/// The largest record (in bytes; as the closure that carries it in or out) that a `send` or a
/// copying receive takes the short way for (see `core::SendCore::send`): inlined into the
/// caller, a larger record was moved through the stack once more on the way (a 64 KiB
/// record's `send`/`recv` ran at about 0.6x the rate it has the general way, out of line).
pub(crate) const SHORT_WAY_MAX: usize = 1024;

/// The sending endpoint of a channel.
///
/// Created by [`Builder::create_sender`](crate::Builder::create_sender),
/// [`Builder::open_sender`](crate::Builder::open_sender) or [`Channel::sender`](crate::Channel::sender).
/// Operations take `&mut self` (the endpoint caches the peer's cursor); an MPMC sender can be
/// duplicated with [`Sender::try_clone`]. Dropping it deregisters it; when the last sender is
/// gone, receivers drain what was committed and then see `Disconnected`.
///
/// ```
/// use shmchan::{Backing, Channel, TrySendError};
/// let chan = Channel::<u32>::builder().capacity(2).backing(Backing::anonymous()).create()?;
/// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send(1).unwrap();
/// assert_eq!(tx.send_batch(&[2, 3, 4]), Ok(1)); // as many as fit
/// assert_eq!(tx.try_send(5), Err(TrySendError::Full(5)));
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct Sender<T> {
    pub(crate) core: SendCore,
    _t: PhantomData<fn(T)>,
}

impl<T> Sender<T> {
    pub(crate) fn from_core(core: SendCore) -> Sender<T> {
        Sender {
            core,
            _t: PhantomData,
        }
    }
}
impl<T> Sender<T> {
    /// The descriptor a sender waiting for room sleeps on, for an event loop (`poll`,
    /// `epoll`, `mio`): it becomes readable when a receiver frees room for an armed sender.
    /// Only doorbells with descriptors have one ([`Doorbell::PosixMq`], [`Doorbell::EventFd`]);
    /// `None` otherwise.
    /// Use it like [`Receiver::doorbell_fd`]: [`arm`](Sender::arm) before each wait, send
    /// after it.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell};
    /// let chan = Channel::<u64>::builder().capacity(1).doorbell(Doorbell::PosixMq).create()?;
    /// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(tx.doorbell_fd().is_some());
    /// tx.send(1).unwrap(); // full now
    /// assert!(tx.arm()); // the next receive rings the sender's doorbell
    /// assert_eq!(rx.recv(), Ok(1));
    /// tx.try_send(2).unwrap(); // sending disarms
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// [`Doorbell::PosixMq`]: crate::Doorbell::PosixMq
    /// [`Doorbell::EventFd`]: crate::Doorbell::EventFd
    pub fn doorbell_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.core.seg().doorbell_fd(Role::Sender)
    }

    /// Announces this sender as waiting for room, so that the next receive rings the
    /// doorbell (makes [`doorbell_fd`](Sender::doorbell_fd) readable). Returns `false`,
    /// without arming, when there is no need to wait: there is room, or every receiver is
    /// gone. Any send or reservation disarms.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(!tx.arm()); // room: no need to wait
    /// tx.send(1).unwrap();
    /// assert!(tx.arm()); // full: armed
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn arm(&mut self) -> bool {
        self.core.arm()
    }

    /// Another sender of the same MPMC channel (registered as its own endpoint). SPSC channels
    /// refuse with [`OpenError::EndpointTaken`].
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().mpmc().backing(shmchan::Backing::anonymous()).create()?;
    /// let tx = chan.sender()?;
    /// let mut tx2 = tx.try_clone()?; // MPMC: any number of senders
    /// tx2.send(1).unwrap();
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_clone(&self) -> Result<Sender<T>, OpenError> {
        Ok(Sender::from_core(self.core.try_clone()?))
    }

    /// Records in the ring right now (approximate while peers run).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2]).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether the ring is empty right now.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(tx.is_empty());
    /// tx.send(1).unwrap();
    /// assert!(!tx.is_empty());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full right now.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3, 4]).unwrap();
    /// assert!(tx.is_full());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.core.is_full()
    }

    /// How many records the ring holds.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().capacity(100).create()?;
    /// assert_eq!(chan.sender()?.capacity(), 100);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.core.seg().capacity as usize
    }

    /// Whether every receiver is gone (some receiver connected once, none is live now).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (tx, rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(!tx.is_disconnected());
    /// drop(rx); // the only receiver
    /// assert!(tx.is_disconnected());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.core.is_disconnected()
    }

    /// What this sender's calls do once every receiver has left: end the stream (the default)
    /// or wait for the next receiver. See [`WhenPeersLeave`] for the rule; the builder's
    /// [`when_peers_leave`](crate::Builder::when_peers_leave) sets it for every endpoint of a
    /// channel.
    ///
    /// ```
    /// use shmchan::{Channel, WhenPeersLeave};
    /// # let chan = Channel::<u64>::builder().create()?;
    /// let mut ep = chan.sender()?;
    /// assert_eq!(ep.when_peers_leave(), WhenPeersLeave::Disconnect);
    /// ep.set_when_peers_leave(WhenPeersLeave::Wait);
    /// assert_eq!(ep.when_peers_leave(), WhenPeersLeave::Wait);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn set_when_peers_leave(&mut self, rule: WhenPeersLeave) {
        self.core.set_when_peers_leave(rule);
    }

    /// The rule this sender follows once every receiver has left (see
    /// [`set_when_peers_leave`](Self::set_when_peers_leave)).
    pub fn when_peers_leave(&self) -> WhenPeersLeave {
        self.core.when_peers_leave()
    }

    /// How the last receiver to leave this channel left: closed its endpoint, or died (and when
    /// that was recorded); `None` while no receiver has left. What a `Disconnected` error does
    /// not say.
    ///
    /// ```
    /// use shmchan::HowLeft;
    /// # let chan = shmchan::Channel::<u64>::builder().create()?;
    /// let ep = chan.sender()?;
    /// assert_eq!(ep.last_departure(), None);
    /// drop(chan.receiver()?);
    /// assert_eq!(ep.last_departure().map(|d| d.how), Some(HowLeft::Closed));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn last_departure(&self) -> Option<Departure> {
        self.core
            .seg()
            .last_left(Role::Receiver)
            .map(Departure::from)
    }

    /// Checks now what a waiting endpoint checks once per time slice: that the channel's
    /// memory is still all there (a channel file not truncated under it) and that its header
    /// is still the one validated at open (a file truncated and grown again reads as zeros).
    /// After an operation reported `Corrupted`, this says why ([`OpenError::Corrupted`]).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// let tx = chan.sender()?;
    /// assert!(tx.check().is_ok());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn check(&self) -> Result<(), OpenError> {
        self.core
            .seg()
            .check_intact()
            .map_err(|reason| OpenError::Corrupted { reason })
    }

    /// The SysV shmid of the segment (to hand to a peer), or `None` for other backings.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().create()?; // anonymous memory
    /// assert_eq!(chan.sender()?.shm_id(), None);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn shm_id(&self) -> Option<i32> {
        self.core.seg().shm_id()
    }

    /// Flushes a file-backed channel to its file (`msync(MS_SYNC)`); a no-op for other
    /// backings. Committed records survive process exit without it (the page cache holds
    /// them); this makes them survive a machine crash.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-sync-{}", std::process::id()));
    /// let mut tx = Channel::<u64>::builder().backing(Backing::file(&path)).create_sender()?;
    /// tx.send(1).unwrap();
    /// tx.sync()?; // now on disk, not only in the page cache
    /// # drop(tx); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn sync(&self) -> Result<(), OpenError> {
        self.core.seg().msync().map_err(OpenError::Os)
    }
}
impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("backing", &self.core.seg().backing)
            .field("kind", &self.core.seg().kind)
            .finish_non_exhaustive()
    }
}

/// The receiving endpoint of a channel.
///
/// Created by [`Builder::create_receiver`](crate::Builder::create_receiver),
/// [`Builder::open_receiver`](crate::Builder::open_receiver) or
/// [`Channel::receiver`](crate::Channel::receiver). When every sender is gone, it drains what
/// was committed and then reports `Disconnected`.
///
/// ```
/// use shmchan::{Backing, Channel, RecvError};
/// let chan = Channel::<u64>::builder().backing(Backing::anonymous()).create()?;
/// let mut rx = chan.receiver()?;
/// {
///     let mut tx = chan.sender()?;
///     tx.send_batch(&[1, 2, 3]).unwrap();
/// } // the only sender is gone
/// let mut buf = [0u64; 8];
/// assert_eq!(rx.recv_batch(&mut buf), Ok(3));
/// assert_eq!(rx.recv(), Err(RecvError::Disconnected));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct Receiver<T> {
    pub(crate) core: RecvCore,
    _t: PhantomData<fn() -> T>,
}

impl<T> Receiver<T> {
    pub(crate) fn from_core(core: RecvCore) -> Receiver<T> {
        Receiver {
            core,
            _t: PhantomData,
        }
    }
}
impl<T> Receiver<T> {
    /// Another receiver of the same MPMC channel (registered as its own endpoint). SPSC
    /// channels refuse with [`OpenError::EndpointTaken`].
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().mpmc().create()?;
    /// let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// let mut rx2 = rx.try_clone()?; // MPMC: any number of receivers
    /// tx.send(1).unwrap();
    /// assert_eq!(rx2.recv(), Ok(1));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_clone(&self) -> Result<Receiver<T>, OpenError> {
        Ok(Receiver::from_core(self.core.try_clone()?))
    }

    /// The descriptor a sleeping receiver waits on, for an event loop (`poll`, `epoll`,
    /// `mio`): it becomes readable when a sender rings. The [`Doorbell::PosixMq`] and
    /// [`Doorbell::EventFd`] doorbells have one; the others `None`. [`Pollable`](crate::Pollable)
    /// wraps a receiver as an [`AsFd`](std::os::fd::AsFd) type; the `tokio` feature builds
    /// `async fn recv` on it.
    ///
    /// The doorbell rings only for announced sleepers, so call [`Receiver::arm`] before each
    /// wait, and [`try_recv`](Receiver::try_recv) (or any receive) after it:
    ///
    /// ```
    /// # use shmchan::{Backing, Channel, Doorbell};
    /// # use std::os::fd::AsRawFd;
    /// # let chan = Channel::<u64>::builder().backing(Backing::anonymous())
    /// #     .doorbell(Doorbell::PosixMq).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let fd = rx.doorbell_fd().expect("a POSIX mq doorbell").as_raw_fd();
    /// if rx.arm() {
    ///     // ... register `fd` for readability with the event loop; a send (here, right away)
    ///     // makes it readable ...
    ///     tx.send(5).unwrap();
    /// }
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// # let _ = fd;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// [`Doorbell::PosixMq`]: crate::Doorbell::PosixMq
    /// [`Doorbell::EventFd`]: crate::Doorbell::EventFd
    pub fn doorbell_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.core.seg().doorbell_fd(Role::Receiver)
    }

    /// Announces this receiver as a sleeper so that the next send rings the doorbell (makes
    /// [`doorbell_fd`](Receiver::doorbell_fd) readable). Returns `false`, without arming, when
    /// there is no need to wait: records are available or every sender is gone. Any receive
    /// call disarms.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(rx.arm()); // empty, a sender is live: the next send rings
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1)); // receiving disarms
    /// tx.send(2).unwrap();
    /// assert!(!rx.arm()); // a record is waiting: no need to sleep
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn arm(&mut self) -> bool {
        self.core.arm()
    }

    /// Records waiting for this receiver right now: the ring's (approximate while peers run)
    /// plus any adopted from a dead sibling receiver.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send_batch(&[1, 2, 3]).unwrap();
    /// rx.recv().unwrap();
    /// assert_eq!(rx.len(), 2);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether nothing waits for this receiver right now.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// assert!(rx.is_empty());
    /// tx.send(1).unwrap();
    /// assert!(!rx.is_empty());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }

    /// How many records the ring holds.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().capacity(100).create()?;
    /// assert_eq!(chan.receiver()?.capacity(), 100);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.core.seg().capacity as usize
    }

    /// Whether every sender is gone (some sender connected once, none is live now). Records
    /// may still be waiting in the ring.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// assert_eq!(rx.len(), 1); // still waiting to be received
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.core.is_disconnected()
    }

    /// What this receiver's calls do once every sender has left: end the stream (the default)
    /// or wait for the next sender. See [`WhenPeersLeave`] for the rule; the builder's
    /// [`when_peers_leave`](crate::Builder::when_peers_leave) sets it for every endpoint of a
    /// channel.
    ///
    /// ```
    /// use shmchan::{Channel, WhenPeersLeave};
    /// # let chan = Channel::<u64>::builder().create()?;
    /// let mut ep = chan.receiver()?;
    /// assert_eq!(ep.when_peers_leave(), WhenPeersLeave::Disconnect);
    /// ep.set_when_peers_leave(WhenPeersLeave::Wait);
    /// assert_eq!(ep.when_peers_leave(), WhenPeersLeave::Wait);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn set_when_peers_leave(&mut self, rule: WhenPeersLeave) {
        self.core.set_when_peers_leave(rule);
    }

    /// The rule this receiver follows once every sender has left (see
    /// [`set_when_peers_leave`](Self::set_when_peers_leave)).
    pub fn when_peers_leave(&self) -> WhenPeersLeave {
        self.core.when_peers_leave()
    }

    /// How the last sender to leave this channel left: closed its endpoint, or died (and when
    /// that was recorded); `None` while no sender has left. What a `Disconnected` error does
    /// not say.
    ///
    /// ```
    /// use shmchan::HowLeft;
    /// # let chan = shmchan::Channel::<u64>::builder().create()?;
    /// let ep = chan.receiver()?;
    /// assert_eq!(ep.last_departure(), None);
    /// drop(chan.sender()?);
    /// assert_eq!(ep.last_departure().map(|d| d.how), Some(HowLeft::Closed));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn last_departure(&self) -> Option<Departure> {
        self.core.seg().last_left(Role::Sender).map(Departure::from)
    }

    /// Checks now what a waiting endpoint checks once per time slice: that the channel's
    /// memory is still all there (a channel file not truncated under it) and that its header
    /// is still the one validated at open (a file truncated and grown again reads as zeros).
    /// After an operation reported `Corrupted`, this says why ([`OpenError::Corrupted`]).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// let rx = chan.receiver()?;
    /// assert!(rx.check().is_ok());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn check(&self) -> Result<(), OpenError> {
        self.core
            .seg()
            .check_intact()
            .map_err(|reason| OpenError::Corrupted { reason })
    }

    /// The SysV shmid of the segment, or `None` for other backings.
    ///
    /// ```
    /// use shmchan::{Backing, Channel, Cleanup};
    /// let chan = Channel::<u64>::builder()
    ///     .backing(Backing::sysv_private())
    ///     .cleanup(Cleanup::LastDetach)
    ///     .create()?;
    /// assert_eq!(chan.receiver()?.shm_id(), chan.shm_id());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn shm_id(&self) -> Option<i32> {
        self.core.seg().shm_id()
    }
}
impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("backing", &self.core.seg().backing)
            .field("kind", &self.core.seg().kind)
            .finish_non_exhaustive()
    }
}
