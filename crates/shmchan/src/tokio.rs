//! `async` endpoints for tokio (feature `tokio`): [`AsyncReceiver`] and [`AsyncSender`].
//!
//! They wait on the doorbell's descriptor through [`tokio::io::unix::AsyncFd`] — one task per
//! channel, no thread parked per channel — so the channel needs a doorbell with a descriptor:
//! [`Doorbell::PosixMq`](crate::Doorbell::PosixMq) (any backing) or
//! [`Doorbell::EventFd`](crate::Doorbell::EventFd) (anonymous memory shared across `fork`, or a
//! memfd passed to a peer with [`Channel::share`](crate::Channel::share)). While there is work
//! the endpoints never touch the reactor: a receive that finds a record returns at once, and
//! one that finds none first spins for the channel's spin window (the builder's
//! [`spin_window`](crate::Builder::spin_window), 20 µs by default, skipped for a while after a
//! window spun in vain) before it sleeps; set it to zero for purely event-driven waits.
//!
//! A waiting task also wakes every 50 ms, like a blocking call, to notice a peer process that
//! died without saying goodbye (`SIGKILL`) and to adopt a dead sibling's records (MPMC).
//!
//! The futures are cancel safe: a record is taken from the ring only in the same
//! (synchronous) step that returns it, so dropping a `recv()` future (for example in
//! `tokio::select!` or `tokio::time::timeout`) never loses one.
//!
//! ```
//! use shmchan::tokio::{AsyncReceiver, AsyncSender};
//! use shmchan::{Backing, Channel, Doorbell};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let chan = Channel::<u64>::builder()
//!     .doorbell(Doorbell::PosixMq)
//!     .backing(Backing::anonymous())
//!     .capacity(4)
//!     .create()?;
//! let mut rx = AsyncReceiver::new(chan.receiver()?).map_err(|(_, e)| e)?;
//! let mut tx = AsyncSender::new(chan.sender()?).map_err(|(_, e)| e)?;
//! let producer = tokio::spawn(async move {
//!     for i in 0..100 {
//!         tx.send(i).await.unwrap(); // waits (without a thread) while the ring is full
//!     }
//! });
//! for i in 0..100 {
//!     assert_eq!(rx.recv().await, Ok(i));
//! }
//! producer.await.unwrap();
//! assert!(rx.recv().await.is_err()); // the sender is gone: Disconnected
//! # Ok::<(), shmchan::OpenError>(())
//! # }).unwrap();
//! ```

use std::fmt;

use ::tokio::io::unix::AsyncFd;
use bytemuck::Pod;

use crate::endpoint::{Bytes, SendBytesError};
use crate::error::{OpenError, RecvError, SendError, TryRecvError, TrySendError};
use crate::pollable::{Endpoint, Pollable};
use crate::wait::SLICE;
use crate::{Receiver, Sender};

/// Registers an endpoint's doorbell descriptor with the current tokio reactor.
fn register<E: Endpoint>(endpoint: E) -> Result<AsyncFd<Pollable<E>>, (E, OpenError)> {
    if ::tokio::runtime::Handle::try_current().is_err() {
        return Err((
            endpoint,
            OpenError::InvalidConfig {
                reason: "an async endpoint must be created inside a tokio runtime".into(),
            },
        ));
    }
    let p = Pollable::new(endpoint)?;
    // Only readability matters: a doorbell "rings" by making its descriptor readable.
    // SAFETY: the Pollable owns its descriptor (a duplicate made for it) and closes it only
    // when dropped, so it stays open and the same for the AsyncFd's whole life, and
    // `as_raw_fd` always returns that one descriptor.
    unsafe { AsyncFd::register_with_interest(p, ::tokio::io::Interest::READABLE) }.map_err(|e| {
        let (p, err) = e.into_parts();
        let reason = format!("cannot register the doorbell with the tokio reactor: {err}");
        (p.into_inner(), OpenError::InvalidConfig { reason })
    })
}

/// Waits until the descriptor is readable or one time slice passes; returns whether it was a
/// time slice (so the caller does its housekeeping).
async fn wait<E: Endpoint>(fd: &AsyncFd<Pollable<E>>) -> bool {
    match ::tokio::time::timeout(crate::barrier::slice(SLICE), fd.readable()).await {
        Ok(Ok(mut ready)) => {
            // The token is consumed by the next operation (which disarms); clear the readiness
            // so that the next wait asks the reactor again. Tokio keeps a readiness event that
            // arrives after this guard was made, so none is lost.
            ready.clear_ready();
            false
        }
        // The reactor is shutting down: wait out the slice so the caller cannot spin.
        Ok(Err(_)) => {
            ::tokio::time::sleep(SLICE).await;
            true
        }
        Err(_elapsed) => true,
    }
}

/// A [`Receiver`] with `async fn recv`, for tokio.
///
/// ```
/// # use shmchan::{Bytes, Channel, Doorbell, tokio::AsyncReceiver};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let chan = Channel::<Bytes>::builder().doorbell(Doorbell::PosixMq).create()?;
/// let mut tx = chan.sender()?;
/// let mut rx = AsyncReceiver::new(chan.receiver()?).map_err(|(_, e)| e)?;
/// tx.send(b"async").unwrap();
/// assert_eq!(rx.recv().await.unwrap(), b"async");
/// # Ok::<(), shmchan::OpenError>(())
/// # }).unwrap();
/// ```
pub struct AsyncReceiver<T> {
    fd: AsyncFd<Pollable<Receiver<T>>>,
}

impl<T> AsyncReceiver<T> {
    /// Registers the receiver's doorbell with the current tokio runtime. Fails, giving the
    /// receiver back, outside a runtime or when the doorbell has no descriptor.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncReceiver};
    /// let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let outside = AsyncReceiver::new(chan.receiver()?); // no runtime here
    /// assert!(outside.is_err());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[allow(clippy::result_large_err)] // gives the endpoint back; a one-off setup call
    pub fn new(rx: Receiver<T>) -> Result<AsyncReceiver<T>, (Receiver<T>, OpenError)> {
        Ok(AsyncReceiver { fd: register(rx)? })
    }

    /// The receiver, for its other operations (`try_recv`, `len`, ...).
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncReceiver};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let rx = AsyncReceiver::new(chan.receiver()?).map_err(|(_, e)| e)?;
    /// assert!(rx.get_ref().is_empty());
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub fn get_ref(&self) -> &Receiver<T> {
        self.fd.get_ref()
    }

    /// The receiver, mutably.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncReceiver};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let mut rx = AsyncReceiver::new(chan.receiver()?).map_err(|(_, e)| e)?;
    /// assert!(rx.get_mut().try_recv().is_err()); // empty
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub fn get_mut(&mut self) -> &mut Receiver<T> {
        self.fd.get_mut()
    }

    /// Deregisters from the reactor and gives the receiver back.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncReceiver};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let rx = AsyncReceiver::new(chan.receiver()?).map_err(|(_, e)| e)?;
    /// let rx: shmchan::Receiver<u64> = rx.into_inner();
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub fn into_inner(self) -> Receiver<T> {
        self.fd.into_inner().into_inner()
    }
}

impl<T> AsyncReceiver<T> {
    /// The receive loop every record kind shares: try, spin, arm, wait, housekeep.
    async fn recv_with<R>(
        &mut self,
        mut try_recv: impl FnMut(&mut Receiver<T>) -> Result<R, TryRecvError>,
    ) -> Result<R, RecvError> {
        loop {
            match try_recv(self.get_mut()) {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Err(RecvError::Disconnected),
                Err(_) => return Err(RecvError::Corrupted),
            }
            // Spin for the endpoint's window first (the builder's `spin_window`; zero for a
            // pure event-driven wait): a peer that answers within microseconds is seen without
            // a trip through the kernel and the reactor.
            let core = &mut self.get_mut().core;
            if core.spin_for_data() {
                continue;
            }
            // Announce, re-check (arm returns false when a record or a departure is already
            // visible), then sleep on the descriptor until rung or a time slice passes.
            if core.arm() {
                core.note_sleep();
                if wait(&self.fd).await {
                    self.get_mut().core.housekeep();
                }
            }
        }
    }
}

impl<T: Pod> AsyncReceiver<T> {
    /// Receives a record, waiting (without blocking the thread) while the ring is empty.
    /// After every sender is gone it drains what was committed, then reports
    /// `Disconnected`.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncReceiver};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let mut tx = chan.sender()?;
    /// let mut rx = AsyncReceiver::new(chan.receiver()?).map_err(|(_, e)| e)?;
    /// tx.send(5).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv().await, Ok(5));
    /// assert_eq!(rx.recv().await, Err(shmchan::RecvError::Disconnected));
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_with(Receiver::<T>::try_recv).await
    }
}

impl AsyncReceiver<Bytes> {
    /// Receives a message, waiting (without blocking the thread) while the ring is empty.
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, Doorbell, tokio::AsyncReceiver};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<Bytes>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// # let mut tx = chan.sender()?;
    /// let mut rx = AsyncReceiver::new(chan.receiver()?).map_err(|(_, e)| e)?;
    /// tx.send(b"m").unwrap();
    /// assert_eq!(rx.recv().await.unwrap(), b"m");
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub async fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_into(&mut v).await.map(|_| v)
    }

    /// Receives a message into `buf` (cleared first; its allocation is reused); returns its
    /// length.
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, Doorbell, tokio::AsyncReceiver};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<Bytes>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// # let mut tx = chan.sender()?;
    /// let mut rx = AsyncReceiver::new(chan.receiver()?).map_err(|(_, e)| e)?;
    /// let mut buf = Vec::new();
    /// tx.send(b"abc").unwrap();
    /// assert_eq!(rx.recv_into(&mut buf).await, Ok(3));
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_with(|rx| rx.try_recv_into(buf)).await
    }
}

impl<T> fmt::Debug for AsyncReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncReceiver")
            .field("receiver", self.get_ref())
            .finish()
    }
}

/// A [`Sender`] with `async fn send`, for tokio.
///
/// ```
/// # use shmchan::{Channel, Doorbell, tokio::AsyncSender};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
/// let mut rx = chan.receiver()?;
/// let mut tx = AsyncSender::new(chan.sender()?).map_err(|(_, e)| e)?;
/// tx.send(3).await.unwrap();
/// assert_eq!(rx.recv(), Ok(3));
/// # Ok::<(), shmchan::OpenError>(())
/// # }).unwrap();
/// ```
pub struct AsyncSender<T> {
    fd: AsyncFd<Pollable<Sender<T>>>,
}

impl<T> AsyncSender<T> {
    /// Registers the sender's doorbell with the current tokio runtime. Fails, giving the
    /// sender back, outside a runtime or when the doorbell has no descriptor.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncSender};
    /// let chan = Channel::<u64>::builder().doorbell(Doorbell::Futex).create()?;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (tx, err) = AsyncSender::new(chan.sender()?).unwrap_err(); // futex: no descriptor
    /// assert!(err.to_string().contains("no descriptor"));
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[allow(clippy::result_large_err)] // gives the endpoint back; a one-off setup call
    pub fn new(tx: Sender<T>) -> Result<AsyncSender<T>, (Sender<T>, OpenError)> {
        Ok(AsyncSender { fd: register(tx)? })
    }

    /// The sender, for its other operations.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncSender};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let tx = AsyncSender::new(chan.sender()?).map_err(|(_, e)| e)?;
    /// assert_eq!(tx.get_ref().capacity(), shmchan::DEFAULT_CAPACITY);
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub fn get_ref(&self) -> &Sender<T> {
        self.fd.get_ref()
    }

    /// The sender, mutably (for `try_send`, `reserve`, ...).
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncSender};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// # let _rx = chan.receiver()?;
    /// let mut tx = AsyncSender::new(chan.sender()?).map_err(|(_, e)| e)?;
    /// tx.get_mut().try_send(1).unwrap();
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub fn get_mut(&mut self) -> &mut Sender<T> {
        self.fd.get_mut()
    }

    /// Deregisters from the reactor and gives the sender back.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, tokio::AsyncSender};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let tx = AsyncSender::new(chan.sender()?).map_err(|(_, e)| e)?;
    /// let tx: shmchan::Sender<u64> = tx.into_inner();
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub fn into_inner(self) -> Sender<T> {
        self.fd.into_inner().into_inner()
    }
}

impl<T> AsyncSender<T> {
    /// The send loop every record kind shares: try (`None` while the ring is full), spin,
    /// arm, wait, housekeep.
    async fn send_with<R>(&mut self, mut try_send: impl FnMut(&mut Sender<T>) -> Option<R>) -> R {
        loop {
            if let Some(r) = try_send(self.get_mut()) {
                return r;
            }
            let core = &mut self.get_mut().core;
            if core.spin_for_room() {
                continue;
            }
            if core.arm() {
                core.note_sleep();
                if wait(&self.fd).await {
                    self.get_mut().core.housekeep();
                }
            }
        }
    }
}

impl<T: Pod> AsyncSender<T> {
    /// Sends, waiting (without blocking the thread) while the ring is full; the record comes
    /// back when every receiver is gone.
    ///
    /// ```
    /// # use shmchan::{Channel, Doorbell, SendError, tokio::AsyncSender};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// let rx = chan.receiver()?;
    /// let mut tx = AsyncSender::new(chan.sender()?).map_err(|(_, e)| e)?;
    /// drop(rx);
    /// assert_eq!(tx.send(1).await, Err(SendError::Disconnected(1)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub async fn send(&mut self, v: T) -> Result<(), SendError<T>> {
        self.send_with(|tx| match tx.try_send(v) {
            Ok(()) => Some(Ok(())),
            Err(TrySendError::Full(_)) => None,
            Err(TrySendError::Disconnected(v)) => Some(Err(SendError::Disconnected(v))),
            Err(e) => Some(Err(SendError::Corrupted(e.into_inner()))),
        })
        .await
    }
}

impl AsyncSender<Bytes> {
    /// Sends a copy of `msg`, waiting (without blocking the thread) while the ring is full.
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, Doorbell, tokio::AsyncSender};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let chan = Channel::<Bytes>::builder().doorbell(Doorbell::PosixMq).create()?;
    /// # let mut rx = chan.receiver()?;
    /// let mut tx = AsyncSender::new(chan.sender()?).map_err(|(_, e)| e)?;
    /// tx.send(b"bytes").await.unwrap();
    /// assert_eq!(rx.recv().unwrap(), b"bytes");
    /// # Ok::<(), shmchan::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub async fn send(&mut self, msg: &[u8]) -> Result<(), SendBytesError> {
        self.send_with(|tx| match tx.try_send(msg) {
            Err(SendBytesError::Full) => None,
            r => Some(r),
        })
        .await
    }
}

impl<T> fmt::Debug for AsyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSender")
            .field("sender", self.get_ref())
            .finish()
    }
}
