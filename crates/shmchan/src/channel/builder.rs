//! The builder: every setting a channel is created or opened with.

use std::marker::PhantomData;
use std::time::Duration;

use super::Channel;
use crate::backing::{self, Backing, Cleanup, Reclaim};
use crate::doorbell::Doorbell;
use crate::endpoint::{Bytes, Record};
use crate::error::OpenError;
use crate::record::RecordInfo;
use crate::segment::{Expect, RingKind, Segment, SegmentConfig};
use crate::{Receiver, Sender, WhenPeersLeave};

/// The capacity a channel gets when the builder does not set one.
///
/// ```
/// let chan = shmchan::Channel::<u64>::builder().create()?; // no capacity set
/// assert_eq!(chan.capacity(), shmchan::DEFAULT_CAPACITY);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub const DEFAULT_CAPACITY: usize = 1024;

/// The largest capacity a channel can have (records).
///
/// ```
/// use shmchan::{Channel, OpenError, MAX_CAPACITY};
/// assert!(Channel::<u8>::builder().capacity(MAX_CAPACITY).segment_len().is_ok());
/// let too_big = Channel::<u8>::builder().capacity(MAX_CAPACITY + 1).segment_len();
/// assert!(matches!(too_big, Err(OpenError::InvalidConfig { .. })));
/// ```
pub const MAX_CAPACITY: usize = 1 << 24;

/// How long an opener waits for a creator that is still initialising the channel, unless
/// [`Builder::open_timeout`] says otherwise.
///
/// ```
/// assert_eq!(shmchan::DEFAULT_OPEN_TIMEOUT.as_secs(), 2);
/// ```
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// The default spin window before a waiting side sleeps on its doorbell.
///
/// ```
/// use shmchan::{Channel, DEFAULT_SPIN};
/// assert!(DEFAULT_SPIN < std::time::Duration::from_millis(1));
/// // A pipeline whose peer answers within ~100 µs may prefer to spin longer:
/// let chan = Channel::<u64>::builder().spin_window(DEFAULT_SPIN * 5).create()?;
/// # let _ = chan;
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);
/// Configures a channel, then creates it or opens an existing one.
///
/// Every setting has a default: capacity [`DEFAULT_CAPACITY`],
/// anonymous backing, futex doorbell, SPSC, the record's Rust type name with schema version 0,
/// mode `0o600`, and the backing's default [`Cleanup`]. When opening, unset kind, capacity and
/// doorbell adopt what the channel has; set ones must match.
///
/// ```no_run
/// use shmchan::{Backing, Channel, Doorbell};
///
/// #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable)]
/// #[repr(C)]
/// struct Tick { seq: u64, price: f64 }
///
/// let mut tx = Channel::<Tick>::builder()
///     .capacity(4096)
///     .backing(Backing::sysv_path("/tmp", b't'))
///     .doorbell(Doorbell::Futex)
///     .type_name("ticks.Tick")
///     .schema_version(1)
///     .spsc()
///     .create_sender()?;
/// tx.send(Tick { seq: 1, price: 10.5 }).unwrap();
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[must_use = "a builder does nothing until create_* or open_* is called"]
pub struct Builder<T> {
    capacity: Option<usize>,
    backing: Backing,
    doorbell: Option<Doorbell>,
    kind: Option<RingKind>,
    type_name: Option<String>,
    schema_version: u32,
    mode: u32,
    cleanup: Option<Cleanup>,
    /// Set: wait this long for a channel that does not exist yet too.
    open_timeout: Option<Duration>,
    spin: Duration,
    reclaim: bool,
    /// A record size chosen at run time, for records whose size is not their type's (a byte
    /// channel's slots, sized by [`Builder::<Bytes>::max_message`]).
    record_size: Option<usize>,
    when_peers_leave: WhenPeersLeave,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Builder<T> {
    pub(crate) fn new() -> Builder<T> {
        Builder {
            capacity: None,
            backing: Backing::anonymous(),
            doorbell: None,
            kind: None,
            type_name: None,
            schema_version: 0,
            mode: 0o600,
            cleanup: None,
            open_timeout: None,
            spin: DEFAULT_SPIN,
            reclaim: true,
            record_size: None,
            when_peers_leave: WhenPeersLeave::Disconnect,
            _t: PhantomData,
        }
    }

    /// Whether creating over a stale channel reclaims it (default `true`).
    ///
    /// A channel is stale when no process uses it any more — every endpoint's process died
    /// (for example killed with `SIGKILL`) and, for SysV, nothing is attached. Creating at its
    /// key or path then removes it (and its doorbell objects) and creates afresh. A live
    /// channel is never reclaimed: creation fails with [`OpenError::AlreadyExists`] naming a
    /// live pid; neither is anything that is not a shmchan channel.
    ///
    /// ```
    /// use shmchan::{Backing, Channel, OpenError};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-stale-{}", std::process::id()));
    /// let b = Backing::file(&path);
    /// drop(Channel::<u64>::builder().backing(b.clone()).create()?); // the file stays: stale
    /// let refused = Channel::<u64>::builder().backing(b.clone()).reclaim_stale(false).create();
    /// assert!(matches!(refused, Err(OpenError::AlreadyExists { .. })));
    /// let fresh = Channel::<u64>::builder().backing(b.clone()).create()?; // reclaimed
    /// # drop(fresh); shmchan::remove(&b)?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn reclaim_stale(mut self, reclaim: bool) -> Self {
        self.reclaim = reclaim;
        self
    }

    /// How many records the ring holds: exactly `n`, from 1 to [`MAX_CAPACITY`]. A send finds
    /// the channel full when `n` records are in it. Underneath, as in crossbeam's
    /// `ArrayQueue`, the ring has a power of two of slots, the one at or above `n`: a capacity
    /// of 1,000 occupies the memory of 1,024 records (see [`segment_len`](Self::segment_len)).
    ///
    /// Capacity 0 — a rendezvous channel, whose send waits until a receive takes the record —
    /// is refused: a record crosses between processes through a slot of the shared ring, so
    /// every channel needs at least one. `capacity(1)` is the nearest: sender and receiver run
    /// at most one record apart.
    ///
    /// ```
    /// use shmchan::{Channel, OpenError};
    /// assert_eq!(Channel::<u8>::builder().capacity(3).create()?.capacity(), 3);
    /// let zero = Channel::<u8>::builder().capacity(0).create();
    /// let Err(OpenError::InvalidConfig { reason }) = zero else { panic!() };
    /// assert!(reason.contains("capacity(1)"), "{reason}");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = Some(n);
        self
    }

    /// Where the segment lives.
    ///
    /// ```
    /// use shmchan::{Backing, Channel, Cleanup};
    /// let chan = Channel::<u64>::builder()
    ///     .backing(Backing::sysv_private())
    ///     .cleanup(Cleanup::LastDetach)
    ///     .create()?;
    /// assert!(chan.shm_id().is_some()); // SysV, unlike the default anonymous memory
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn backing(mut self, backing: Backing) -> Self {
        self.backing = backing;
        self
    }

    /// How waiting sides sleep.
    ///
    /// ```
    /// use shmchan::{Channel, Doorbell};
    /// let chan = Channel::<u64>::builder().doorbell(Doorbell::PosixSem).create()?;
    /// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert_eq!(chan.doorbell(), Doorbell::PosixSem);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn doorbell(mut self, doorbell: Doorbell) -> Self {
        self.doorbell = Some(doorbell);
        self
    }

    /// One sender, one receiver (the default when creating).
    ///
    /// ```
    /// use shmchan::{Channel, OpenError, RingKind};
    /// let chan = Channel::<u64>::builder().spsc().create()?;
    /// assert_eq!(chan.kind(), RingKind::Spsc);
    /// let _tx = chan.sender()?;
    /// assert!(matches!(chan.sender(), Err(OpenError::EndpointTaken { role: "sender", .. })));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn spsc(mut self) -> Self {
        self.kind = Some(RingKind::Spsc);
        self
    }

    /// Any number of senders and receivers, in any processes.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().mpmc().create()?;
    /// let (mut a, mut b) = (chan.sender()?, chan.sender()?); // two senders
    /// let mut rx = chan.receiver()?;
    /// a.send(1).unwrap();
    /// b.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn mpmc(mut self) -> Self {
        self.kind = Some(RingKind::Mpmc);
        self
    }

    /// The stable name of the record type stored in the fingerprint (default: the type's name
    /// without module paths, [`schema::type_name_of`](crate::schema::type_name_of)). For a
    /// type with `#[derive(Schema)]` the fields are still compared ([`crate::schema`]).
    ///
    /// ```
    /// use shmchan::{Backing, Channel, OpenError};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-tname-{}", std::process::id()));
    /// let b = Backing::file(&path);
    /// let chan = Channel::<u64>::builder().backing(b.clone()).type_name("ticks.Tick").create()?;
    /// let other = Channel::<u64>::builder().backing(b.clone()).type_name("ticks.Quote").open();
    /// assert!(matches!(other, Err(OpenError::TypeMismatch { .. })));
    /// let same = Channel::<u64>::builder().backing(b.clone()).type_name("ticks.Tick").open();
    /// assert!(same.is_ok());
    /// # drop(chan); shmchan::remove(&b)?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn type_name(mut self, name: impl Into<String>) -> Self {
        self.type_name = Some(name.into());
        self
    }

    /// The record schema version stored in the fingerprint (default 0).
    ///
    /// ```
    /// use shmchan::{Backing, Channel, OpenError};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-sv-{}", std::process::id()));
    /// let b = Backing::file(&path);
    /// let chan = Channel::<u64>::builder().backing(b.clone()).schema_version(2).create()?;
    /// let old = Channel::<u64>::builder().backing(b.clone()).schema_version(1).open();
    /// assert!(matches!(old, Err(OpenError::TypeMismatch { .. })));
    /// # drop(chan); shmchan::remove(&b)?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn schema_version(mut self, v: u32) -> Self {
        self.schema_version = v;
        self
    }

    /// The permission bits of a created segment or file (default `0o600`).
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-mode-{}", std::process::id()));
    /// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).mode(0o640).create()?;
    /// let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    /// assert_eq!(mode & 0o777, 0o640);
    /// # drop(chan); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Who removes the channel, and when (default: [`Cleanup::WhenDrained`] for SysV,
    /// [`Cleanup::Keep`] for files, [`Cleanup::Creator`] for memory without a name).
    ///
    /// ```
    /// use shmchan::{Backing, Channel, Cleanup};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-clean-{}", std::process::id()));
    /// let chan = Channel::<u64>::builder()
    ///     .backing(Backing::file(&path))
    ///     .cleanup(Cleanup::Creator) // files default to Keep
    ///     .create()?;
    /// assert!(path.exists());
    /// drop(chan);
    /// assert!(!path.exists()); // the creator unlinked it
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn cleanup(mut self, cleanup: Cleanup) -> Self {
        self.cleanup = Some(cleanup);
        self
    }

    /// How long an opener waits for the channel: for one that does not exist yet (its creator
    /// has not started), and for one whose creator is still initialising it.
    ///
    /// Without it, an opener waits up to [`DEFAULT_OPEN_TIMEOUT`] for a creator that is
    /// initialising, and a channel that does not exist is [`OpenError::NotFound`] at once. With
    /// it, both wait until the timeout: programs started in any order can each
    /// [`open`](Builder::open) a channel that one of them creates (or all can use
    /// [`open_or_create`](Builder::open_or_create)).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shmchan::{Backing, Channel, OpenError};
    /// let missing = Backing::file("/nonexistent/shmchan-doc");
    /// let t = Instant::now();
    /// let r = Channel::<u64>::builder().backing(missing.clone()).open();
    /// assert!(matches!(r, Err(OpenError::NotFound { .. }))); // nothing there: at once
    /// let r = Channel::<u64>::builder()
    ///     .backing(missing)
    ///     .open_timeout(Duration::from_millis(50)) // waits for it to appear
    ///     .open();
    /// assert!(matches!(r, Err(OpenError::NotFound { .. })));
    /// assert!(t.elapsed() >= Duration::from_millis(50));
    /// ```
    ///
    /// [`OpenError::NotFound`]: crate::OpenError::NotFound
    pub fn open_timeout(mut self, t: Duration) -> Self {
        self.open_timeout = Some(t);
        self
    }

    /// How long a waiting side spins before it sleeps on the doorbell (default
    /// [`DEFAULT_SPIN`]); ignored by the spin doorbell, which never sleeps.
    ///
    /// ```
    /// use std::time::Duration;
    /// # use shmchan::RecvTimeoutError;
    /// let chan = shmchan::Channel::<u64>::builder().spin_window(Duration::ZERO).create()?;
    /// let (_tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// // Sleeps on the doorbell at once instead of spinning first:
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn spin_window(mut self, t: Duration) -> Self {
        self.spin = t;
        self
    }

    /// What the endpoints taken from this channel do once every peer has left: end the
    /// stream (the default, crossbeam-channel's rule) or wait for the next peer. Each endpoint
    /// can change it ([`Receiver::set_when_peers_leave`](crate::Receiver::set_when_peers_leave)).
    /// See [`WhenPeersLeave`].
    ///
    /// ```
    /// use shmchan::{Channel, TrySendError, WhenPeersLeave};
    /// let chan = Channel::<u64>::builder().when_peers_leave(WhenPeersLeave::Wait).create()?;
    /// let mut tx = chan.sender()?;
    /// drop(chan.receiver()?); // a consumer came and went
    /// tx.send(1).unwrap(); // kept for the next consumer
    /// assert_eq!(chan.receiver()?.recv(), Ok(1));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn when_peers_leave(mut self, rule: WhenPeersLeave) -> Self {
        self.when_peers_leave = rule;
        self
    }

    /// Creates the segment for records described by `record`.
    pub(crate) fn create_segment(&self, record: &RecordInfo) -> Result<Segment, OpenError> {
        let reclaim = |what: &str| crate::removal::reclaim_stale(&self.backing, what);
        self.create_segment_with(record, self.reclaim.then_some(&reclaim as Reclaim<'_>))
    }

    /// Creates the segment; `reclaim` removes a stale channel in the way (see
    /// `crate::removal::reclaim_stale`), `None`: never.
    fn create_segment_with(
        &self,
        record: &RecordInfo,
        reclaim: Option<Reclaim<'_>>,
    ) -> Result<Segment, OpenError> {
        let cap = self.checked_capacity()?;
        let cleanup = self
            .cleanup
            .unwrap_or_else(|| self.backing.default_cleanup());
        Segment::create(&SegmentConfig {
            backing: &self.backing,
            kind: self.kind.unwrap_or(RingKind::Spsc),
            capacity: cap,
            record,
            doorbell: self.doorbell.unwrap_or_default(),
            mode: self.mode,
            cleanup,
            reclaim,
        })
    }

    pub(crate) fn open_segment(
        &self,
        record: &RecordInfo,
        any_size: bool,
    ) -> Result<Segment, OpenError> {
        Segment::open(&self.expect(record, any_size)?)
    }

    /// What an opener expects to find, from this builder's settings.
    fn expect<'a>(
        &'a self,
        record: &'a RecordInfo,
        any_size: bool,
    ) -> Result<Expect<'a>, OpenError> {
        let capacity = match self.capacity {
            Some(_) => Some(self.checked_capacity()?),
            None => None,
        };
        Ok(Expect {
            backing: &self.backing,
            kind: self.kind,
            capacity,
            record,
            any_size,
            doorbell: self.doorbell,
            timeout: self.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT),
            wait_for_missing: self.open_timeout.is_some(),
        })
    }

    /// The capacity set (or the default), checked: exactly what the ring will hold.
    pub(crate) fn checked_capacity(&self) -> Result<u32, OpenError> {
        let cap = self.capacity.unwrap_or(DEFAULT_CAPACITY);
        if cap == 0 {
            return Err(OpenError::InvalidConfig {
                reason: "capacity 0 (a rendezvous channel) is not supported: records cross \
                    between processes through the ring's slots, so a channel needs at least \
                    one; capacity(1) is the nearest (sender and receiver at most one record \
                    apart)"
                    .into(),
            });
        }
        if cap > MAX_CAPACITY {
            return Err(OpenError::InvalidConfig {
                reason: format!("capacity {cap} is outside 1..={MAX_CAPACITY}"),
            });
        }
        Ok(cap as u32)
    }

    /// Points the builder at caller-provided memory.
    pub(crate) fn set_region(&mut self, base: std::ptr::NonNull<u8>, len: usize) {
        self.backing = Backing(backing::Kind::Region {
            addr: base.as_ptr() as usize,
            len,
        });
    }

    pub(crate) fn kind_or_default(&self) -> RingKind {
        self.kind.unwrap_or(RingKind::Spsc)
    }
}

impl<T: Record> Builder<T> {
    fn record(&self) -> Result<RecordInfo, OpenError> {
        T::info(
            self.type_name.as_deref(),
            self.schema_version,
            self.record_size,
        )
    }

    /// Creates the segment and returns the channel, from which endpoints are taken.
    ///
    /// ```
    /// let chan = shmchan::Channel::<u64>::builder().capacity(8).create()?;
    /// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv(), Ok(1));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn create(self) -> Result<Channel<T>, OpenError> {
        let seg = self.create_segment(&self.record()?)?;
        Ok(Channel::from_seg(seg, self.spin, self.when_peers_leave))
    }

    /// Opens an existing channel (waiting up to the open timeout for its creator to finish).
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-open-{}", std::process::id()));
    /// use shmchan::{Backing, Channel};
    /// let created = Channel::<u32>::builder().backing(Backing::file(&path)).create()?;
    /// // Another process (here: the same one) opens it by path; unset settings are adopted.
    /// let opened = Channel::<u32>::builder().backing(Backing::file(&path)).open()?;
    /// assert_eq!(opened.capacity(), created.capacity());
    /// # drop((created, opened)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn open(self) -> Result<Channel<T>, OpenError> {
        let seg = self.open_segment(&self.record()?, T::any_size(self.record_size))?;
        Ok(Channel::from_seg(seg, self.spin, self.when_peers_leave))
    }

    /// The number of bytes a channel with these settings occupies: how much memory
    /// [`create_in`](Builder::create_in) needs.
    ///
    /// ```
    /// let len = shmchan::Channel::<u64>::builder().capacity(1024).segment_len()?;
    /// assert!(len >= 1024 * 8);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn segment_len(&self) -> Result<usize, OpenError> {
        let cap = self.checked_capacity()?;
        Segment::required_len(self.kind_or_default(), cap, &self.record()?)
    }

    /// Creates a channel in memory the caller mapped (for crates that manage their own shared
    /// memory, and for fuzzing). The builder's backing is ignored; [`Cleanup`] applies only to
    /// the doorbell's kernel objects. Peers open it with [`open_in`](Builder::open_in) over the
    /// same memory.
    ///
    /// # Safety
    ///
    /// - `base` is valid for reads and writes of `len` bytes, which are initialised (for
    ///   example a fresh `mmap`, or zeroed heap memory), and 128-byte aligned (checked: an
    ///   error, not undefined behaviour, if not);
    /// - the memory stays mapped, at this address, until the returned channel and every
    ///   endpoint taken from it are dropped;
    /// - nobody else initialises it concurrently, and any other party accesses it only as a
    ///   shmchan peer (through [`open_in`](Builder::open_in), in this or another process) or
    ///   as a hostile writer — which can make operations report `Corrupted` but cannot cause
    ///   undefined behaviour here.
    ///
    /// ```
    /// use std::alloc::{alloc_zeroed, dealloc, Layout};
    /// use std::ptr::NonNull;
    /// use shmchan::Channel;
    ///
    /// let b = Channel::<u32>::builder().capacity(8);
    /// let layout = Layout::from_size_align(b.segment_len()?, 128).unwrap();
    /// // SAFETY: a non-zero size.
    /// let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
    /// {
    ///     // SAFETY: zeroed, 128-aligned, `layout.size()` bytes, freed only after the channel
    ///     // and its endpoints are dropped (end of this block).
    ///     let chan = unsafe { b.create_in(mem, layout.size()) }?;
    ///     let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    ///     tx.send(7).unwrap();
    ///     assert_eq!(rx.recv(), Ok(7));
    /// }
    /// // SAFETY: allocated above with this layout; nothing refers to it any more.
    /// unsafe { dealloc(mem.as_ptr(), layout) };
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub unsafe fn create_in(
        mut self,
        base: std::ptr::NonNull<u8>,
        len: usize,
    ) -> Result<Channel<T>, OpenError> {
        self.set_region(base, len);
        self.create()
    }

    /// Opens the channel a peer created in memory the caller mapped
    /// ([`create_in`](Builder::create_in)). Everything in the memory is validated first.
    ///
    /// # Safety
    ///
    /// As for [`create_in`](Builder::create_in), except that the memory holds a channel (or
    /// anything at all: garbage is reported as an error) instead of being initialised here.
    ///
    /// ```
    /// # use std::alloc::{alloc_zeroed, dealloc, Layout};
    /// # use std::ptr::NonNull;
    /// use shmchan::Channel;
    /// # let len = Channel::<u32>::builder().capacity(8).segment_len()?;
    /// # let layout = Layout::from_size_align(len, 128).unwrap();
    /// # let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
    /// # {
    /// // SAFETY: `mem` is zeroed, 128-aligned, `len` bytes, and outlives both channels.
    /// let created = unsafe { Channel::<u32>::builder().capacity(8).create_in(mem, len) }?;
    /// // SAFETY: as above; the memory now holds the channel created there.
    /// let opened = unsafe { Channel::<u32>::builder().open_in(mem, len) }?;
    /// created.sender()?.send(3).unwrap();
    /// assert_eq!(opened.receiver()?.recv(), Ok(3));
    /// # }
    /// # unsafe { dealloc(mem.as_ptr(), layout) };
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub unsafe fn open_in(
        mut self,
        base: std::ptr::NonNull<u8>,
        len: usize,
    ) -> Result<Channel<T>, OpenError> {
        self.set_region(base, len);
        self.open()
    }

    /// Creates the channel and returns its sender; the segment lives as long as the sender
    /// (see [`Cleanup`]).
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-cs-{}", std::process::id()));
    /// let mut tx = Channel::<u64>::builder().backing(Backing::file(&path)).create_sender()?;
    /// let mut rx = Channel::<u64>::builder().backing(Backing::file(&path)).open_receiver()?;
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv(), Ok(1));
    /// # drop((tx, rx)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn create_sender(self) -> Result<Sender<T>, OpenError> {
        self.create()?.sender()
    }

    /// Creates the channel and returns its receiver.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-cr-{}", std::process::id()));
    /// let mut rx = Channel::<u64>::builder().backing(Backing::file(&path)).create_receiver()?;
    /// let mut tx = Channel::<u64>::builder().backing(Backing::file(&path)).open_sender()?;
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.recv(), Ok(2));
    /// # drop((tx, rx)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn create_receiver(self) -> Result<Receiver<T>, OpenError> {
        self.create()?.receiver()
    }

    /// Opens an existing channel and returns a sender.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-os-{}", std::process::id()));
    /// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).mpmc().create()?;
    /// let mut tx = Channel::<u64>::builder().backing(Backing::file(&path)).open_sender()?;
    /// tx.send(3).unwrap(); // the kind (MPMC) and capacity were adopted from the channel
    /// assert_eq!(chan.receiver()?.recv(), Ok(3));
    /// # drop((tx, chan)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn open_sender(self) -> Result<Sender<T>, OpenError> {
        self.open()?.sender()
    }

    /// Opens an existing channel and returns a receiver.
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-or-{}", std::process::id()));
    /// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).create()?;
    /// chan.sender()?.send(4).unwrap();
    /// let mut rx = Channel::<u64>::builder().backing(Backing::file(&path)).open_receiver()?;
    /// assert_eq!(rx.recv(), Ok(4));
    /// # drop((rx, chan)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn open_receiver(self) -> Result<Receiver<T>, OpenError> {
        self.open()?.receiver()
    }

    /// Opens the channel if it exists, creates it if not: for programs that share a named
    /// channel (a SysV key or path, a file) and start in any order. Race-free: when several
    /// processes call it at once, exactly one creates the channel and the others open it.
    ///
    /// Everyone must agree on the channel: the record type, and the ring kind, capacity and
    /// doorbell — each as set on this builder or its default (an opener does not adopt
    /// whatever it finds, so that the result does not depend on who came first). A
    /// difference is the usual error ([`OpenError::TypeMismatch`], [`OpenError::Mismatch`]).
    /// A channel already there is opened even when no process uses it any more (it may hold
    /// records for us). Settings that only a creator uses (cleanup, mode) take effect when
    /// this call creates.
    ///
    /// Memory without a name (anonymous, memfd, caller-provided) cannot be opened by
    /// another program: refused with [`OpenError::InvalidConfig`].
    ///
    /// ```
    /// use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-ooc-{}", std::process::id()));
    /// let jobs = |b: Backing| Channel::<u64>::builder().backing(b).capacity(64);
    /// let a = jobs(Backing::file(&path)).open_or_create()?; // creates
    /// let b = jobs(Backing::file(&path)).open_or_create()?; // opens
    /// b.sender()?.send(7).unwrap();
    /// assert_eq!(a.receiver()?.recv(), Ok(7));
    /// // Disagreeing on the shape is an error, whoever came first:
    /// assert!(jobs(Backing::file(&path)).capacity(128).open_or_create().is_err());
    /// # drop((a, b)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ///
    /// [`OpenError::TypeMismatch`]: crate::OpenError::TypeMismatch
    /// [`OpenError::Mismatch`]: crate::OpenError::Mismatch
    /// [`OpenError::InvalidConfig`]: crate::OpenError::InvalidConfig
    pub fn open_or_create(mut self) -> Result<Channel<T>, OpenError> {
        if !self.backing.named() {
            return Err(OpenError::InvalidConfig {
                reason: format!(
                    "open_or_create needs a channel other programs can name (a SysV key or \
                     path, or a file); {} is reached {}",
                    self.backing,
                    self.backing.how()
                ),
            });
        }
        // Everyone compares against the same shape, defaults included.
        self.kind = Some(self.kind_or_default());
        self.capacity = Some(self.capacity.unwrap_or(DEFAULT_CAPACITY));
        self.doorbell = Some(self.doorbell.unwrap_or_default());
        let record = self.record()?;
        let deadline =
            std::time::Instant::now() + self.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT);
        let missing = |e: &OpenError| matches!(e, OpenError::NotFound { .. });
        loop {
            let opened = Segment::open(&Expect {
                wait_for_missing: false,
                ..self.expect(&record, false)?
            });
            match opened {
                Err(e) if missing(&e) => {}
                r => return r.map(|seg| Channel::from_seg(seg, self.spin, self.when_peers_leave)),
            }
            // Nothing there: create it, exclusively. Losing that race to another process
            // means its channel is there now: open it (unless it was removed again meanwhile).
            match self.create_segment_with(&record, None) {
                Err(OpenError::AlreadyExists { .. }) if std::time::Instant::now() < deadline => {}
                r => return r.map(|seg| Channel::from_seg(seg, self.spin, self.when_peers_leave)),
            }
        }
    }

    /// [`open_or_create`](Builder::open_or_create), then a sender.
    ///
    /// ```
    /// # use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-oocs-{}", std::process::id()));
    /// let mut tx = Channel::<u64>::builder().backing(Backing::file(&path)).open_or_create_sender()?;
    /// tx.send(1).unwrap();
    /// # drop(tx); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn open_or_create_sender(self) -> Result<Sender<T>, OpenError> {
        self.open_or_create()?.sender()
    }

    /// [`open_or_create`](Builder::open_or_create), then a receiver.
    ///
    /// ```
    /// # use shmchan::{Backing, Channel};
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-oocr-{}", std::process::id()));
    /// let rx = Channel::<u64>::builder().backing(Backing::file(&path)).open_or_create_receiver()?;
    /// # drop(rx); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn open_or_create_receiver(self) -> Result<Receiver<T>, OpenError> {
        self.open_or_create()?.receiver()
    }
}

impl Builder<Bytes> {
    /// The longest message the byte channel carries (default
    /// [`DEFAULT_MAX_MESSAGE`](crate::DEFAULT_MAX_MESSAGE)), rounded up to a multiple of 8; at
    /// most [`MAX_MESSAGE`](crate::MAX_MESSAGE). Each slot holds this many bytes, and the
    /// segment a 4-byte length per slot beside them. When opening, an unset maximum adopts
    /// the channel's; a set one must match.
    ///
    /// ```
    /// use shmchan::{Backing, Bytes, Channel};
    /// let chan = Channel::<Bytes>::builder().max_message(1500).capacity(64).create()?;
    /// assert_eq!(chan.max_message(), 1504);
    /// let len = Channel::<Bytes>::builder().capacity(16).max_message(1024).segment_len()?;
    /// assert!(len >= 16 * (1024 + 4));
    ///
    /// // An opener that does not set the maximum adopts the creator's.
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-bopen-{}", std::process::id()));
    /// let created = Channel::<Bytes>::builder().max_message(64).backing(Backing::file(&path)).create()?;
    /// let opened = Channel::<Bytes>::builder().backing(Backing::file(&path)).open()?;
    /// assert_eq!(opened.max_message(), 64);
    /// # drop((created, opened)); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_message(mut self, len: usize) -> Self {
        self.record_size = Some(len);
        self
    }
}
