//! The typed face: `Sender<T>` and `Receiver<T>` for `T: Pod`, their zero-copy guards and
//! iterators. Each method converts records (a `T` is written into, or read out of, a slot)
//! and errors; the endpoint core does the rest.

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::core::{Format, Rec, SlotWrite, Wait};
use super::fail;
use super::fresh::{copy_fresh_words, FRESH_WORDS_MAX};
use super::{Sender, SHORT_WAY_MAX};
use crate::error::{
    OpenError, ReserveError, SendBatchError, SendError, SendTimeoutError, TrySendError,
};
use crate::segment::Segment;
use crate::wait::Failed;

mod iter;
mod recv;

pub use iter::{Iter, IterResults, TryIter};
pub use recv::RecvGuard;

/// The typed record format: whole `T`s, the slot's record size and alignment.
pub(crate) fn format<T: Pod>() -> Format {
    Format {
        check: check_record::<T>,
        image: whole_record,
    }
}

/// Checks that `T` is what the segment's ring carries.
fn check_record<T>(seg: &Segment) -> Result<(), OpenError> {
    let info = seg.ring().config();
    if info.record_size as usize != size_of::<T>()
        || info.record_align as usize != align_of::<T>()
        || info.slot_stride as usize % align_of::<T>() != 0
    {
        return Err(OpenError::Corrupted {
            reason: format!(
                "ring records are {} bytes aligned to {}, the endpoint's type is {} bytes aligned to {}",
                info.record_size,
                info.record_align,
                size_of::<T>(),
                align_of::<T>()
            ),
        });
    }
    // The SPSC short ways compute a record's address with the size of `T` as the stride
    // (`SendCore::send`): an SPSC ring's records are back to back in every ring shmchan
    // creates, and a segment that claims slots further apart is refused here.
    if info.kind == shmchan_ring::RingKind::Spsc && info.slot_stride as usize != size_of::<T>() {
        return Err(OpenError::Corrupted {
            reason: format!(
                "SPSC ring slots are {} bytes apart for {}-byte records (back to back in a ring shmchan creates)",
                info.slot_stride,
                size_of::<T>()
            ),
        });
    }
    Ok(())
}

/// A typed record is all of its slot's record bytes.
///
/// # Safety
///
/// None needed (nothing is read); `unsafe` only to fit [`Format::image`].
unsafe fn whole_record(_: Rec, record_size: usize) -> Option<usize> {
    Some(record_size)
}

/// What the core calls to put `*v` into a reserved slot: one copy, from `v` into the slot.
/// `send_ref`'s writer, and that of a send by value the general way (out of line, where the
/// record is a place in memory anyway); the short way of a send by value writes the value
/// itself (see [`Sender::send_value`]).
#[inline(always)]
fn write_ref<T: Pod>(v: &T) -> impl FnMut(Rec) + '_ {
    move |Rec { ptr: slot, .. }| {
        // SAFETY: the core hands the writer a reserved slot of `record_size == size_of::<T>()`
        // bytes aligned to `record_align == align_of::<T>()` (checked in `check_record`
        // against the ring's validated config), ours to write until the ring publishes it;
        // `v` is a valid T, and caller memory cannot overlap a slot the core reserved for us.
        unsafe { copy_record(v, slot.cast::<T>().as_ptr()) }
    }
}

/// Copies one record from the caller's memory into a slot: a record aligned to 8 and of 2
/// to [`FRESH_WORDS_MAX`] 8-byte words as words loaded one by one (see `fresh`: the caller has most
/// likely just written it); any other record as one copy.
///
/// # Safety
///
/// As [`std::ptr::copy_nonoverlapping`]`(src, dst, 1)`.
#[inline(always)]
unsafe fn copy_record<T: Pod>(src: *const T, dst: *mut T) {
    let words = size_of::<T>() / 8;
    let by_words =
        align_of::<T>() >= 8 && size_of::<T>() % 8 == 0 && (2..=FRESH_WORDS_MAX).contains(&words);
    // SAFETY: the caller's contract; `by_words` checked the alignment and the whole words
    // that `copy_fresh_words` needs, and a Pod record's bytes are all initialized.
    unsafe {
        if by_words {
            copy_fresh_words(src.cast(), dst.cast(), words)
        } else {
            std::ptr::copy_nonoverlapping(src, dst, 1)
        }
    }
}

/// What the core calls to copy a record out: a published slot or an adopted record's image
/// (`size_of::<T>()` bytes either way).
#[inline(always)]
fn read<T: Pod>(Rec { ptr: record, .. }: Rec) -> Option<T> {
    // SAFETY: the core's contract for `read`: `size_of::<T>()` readable bytes (the record
    // size `check_record` compared) aligned for T (a slot, or a 128-byte-aligned image), any
    // bits a valid T (Pod). Read by copy, so a peer scribbling on the slot later cannot affect
    // the value returned.
    Some(unsafe { record.cast::<T>().as_ptr().read() })
}

impl<T: Pod> Sender<T> {
    /// Sends without waiting: `Full` when the ring is full, `Disconnected` when every receiver
    /// is gone. The record comes back in the error.
    ///
    /// ```
    /// # use shmchan::TrySendError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// for i in 0..4 { tx.try_send(i).unwrap(); }
    /// assert_eq!(tx.try_send(9), Err(TrySendError::Full(9))); // the record comes back
    /// drop(rx);
    /// assert_eq!(tx.try_send(9), Err(TrySendError::Disconnected(9)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_send(&mut self, v: T) -> Result<(), TrySendError<T>> {
        self.send_value(Wait::No, v)
            .map_err(|f| fail::try_send(f, v))
    }

    /// Sends, waiting while the ring is full (spin, then sleep on the doorbell). Fails only when
    /// every receiver is gone (or the segment is corrupted); the record comes back.
    ///
    /// On an SPSC channel with room, a record of up to 1 KiB is written into its slot as a
    /// value, in code inlined into the caller: a small record built in the call (`tx.send(Tick {
    /// seq, price })`) goes from registers into the shared memory, as a write in place through
    /// [`reserve`](Self::reserve) would, without a copy on the stack.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// drop(rx); // the only receiver is gone
    /// assert_eq!(tx.send(2), Err(shmchan::SendError::Disconnected(2)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn send(&mut self, v: T) -> Result<(), SendError<T>> {
        self.send_value(Wait::Forever, v)
            .map_err(|f| fail::send(f, v))
    }

    /// Sends a copy of `*v`, waiting while the ring is full: [`send`](Self::send) for large
    /// records. The record is copied once, from `v` into its slot; `send` takes the record
    /// by value, which for a record of kilobytes means copies through the stack on the way.
    /// (To build the record in the slot itself, use [`reserve`](Self::reserve).)
    ///
    /// ```
    /// # let chan = shmchan::Channel::<[u64; 8192]>::builder().capacity(2).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let frame = vec![[7u64; 8192]; 1]; // 64 KiB, on the heap
    /// tx.send_ref(&frame[0]).unwrap();
    /// let mut got = vec![[0u64; 8192]; 1];
    /// rx.recv_into(&mut got[0]).unwrap();
    /// assert_eq!(got[0], frame[0]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_ref(&mut self, v: &T) -> Result<(), SendError<T>> {
        self.core
            .send::<T, _>(Wait::Forever, write_ref(v))
            .map_err(|f| fail::send(f, *v))
    }

    /// Sends, waiting at most `timeout` for room.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// for i in 0..4 { tx.send(i).unwrap(); } // full now
    /// let e = tx.send_timeout(9, Duration::from_millis(5));
    /// assert_eq!(e, Err(shmchan::SendTimeoutError::Timeout(9)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_timeout(&mut self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_value(Wait::timeout(timeout), v)
            .map_err(|f| fail::send_timeout(f, v))
    }

    /// Sends, waiting until `deadline` at most for room.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// for i in 0..4 { tx.send(i).unwrap(); } // full now
    /// let e = tx.send_deadline(9, Instant::now() + Duration::from_millis(5));
    /// assert_eq!(e, Err(shmchan::SendTimeoutError::Timeout(9)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_deadline(&mut self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_value(Wait::Until(deadline), v)
            .map_err(|f| fail::send_timeout(f, v))
    }

    /// Sends as many records of `records` as fit right now, with one publish for all of them;
    /// waits (like [`send`](Self::send)) only while not even one fits. Returns how many were
    /// sent (0 only for an empty slice).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(tx.send_batch(&[1, 2, 3]), Ok(3)); // one publish for all three
    /// let mut buf = [0; 4];
    /// assert_eq!(rx.recv_batch(&mut buf), Ok(3));
    /// assert_eq!(buf[..3], [1, 2, 3]);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_batch(&mut self, records: &[T]) -> Result<usize, SendBatchError> {
        self.send_batch_wait(records, Wait::Forever)
    }

    /// [`send_batch`](Self::send_batch) that waits at most `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let t = Duration::from_millis(5);
    /// assert_eq!(tx.send_batch_timeout(&[1, 2, 3, 4, 5], t), Ok(4)); // as many as fit
    /// let e = tx.send_batch_timeout(&[6], t);
    /// assert_eq!(e, Err(shmchan::SendBatchError::Timeout)); // still full after 5 ms
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_batch_timeout(
        &mut self,
        records: &[T],
        timeout: Duration,
    ) -> Result<usize, SendBatchError> {
        self.send_batch_wait(records, Wait::timeout(timeout))
    }

    /// A send of a record by value (`send`, `try_send`, `send_timeout`, `send_deadline`).
    ///
    /// The short way writes `v` into its slot as a value, inlined into the caller, so that a
    /// record the caller builds in registers goes from them into the slot. Before, every send
    /// handed the core a reference to `v` ([`write_ref`]), which made the record a place in
    /// the caller's stack: stored there, loaded back by the copy and stored into the slot, two
    /// to three times the stores of a record written in place. A stream of 64-byte records
    /// between two processes ran at 0.52-0.96x the ring alone (the same ring without the
    /// channel layer, its records written in place), changing from one process to the next
    /// with where the stack lay; now 0.90-1.03x in every process measured (the peers
    /// comparison: three short runs of `--sizes 64`, three full ones). A send
    /// that cannot go the short way (an MPMC ring, a full ring, an endpoint that is not plain)
    /// goes the general way out of line, by reference, as before. A record larger than
    /// `SHORT_WAY_MAX` goes by reference too, through the core's `send` (its short way copies
    /// the record from `v`), as before: written as a value, it would be moved through the
    /// stack once more on the way.
    #[inline(always)]
    fn send_value(&mut self, wait: Wait, v: T) -> Result<(), Failed> {
        if size_of::<T>() > SHORT_WAY_MAX {
            return self.core.send::<T, _>(wait, write_ref(&v));
        }
        // T is the ring's record, as `send_short` requires: `Format::check` compared them
        // when this sender was made.
        match self.core.send_short::<T>(
            #[inline(always)]
            move |Rec { ptr: slot, .. }| {
                // SAFETY: as in `write_ref`: a reserved slot of `size_of::<T>()` bytes
                // aligned for T, ours to write until the ring publishes it.
                unsafe { slot.cast::<T>().as_ptr().write(v) }
            },
        ) {
            Some(done) => done,
            None => self.send_value_general(wait, v),
        }
    }

    /// [`send_value`](Self::send_value) the general way (any state, waiting).
    #[inline(never)]
    fn send_value_general(&mut self, wait: Wait, v: T) -> Result<(), Failed> {
        self.core.send_general(wait, write_ref(&v))
    }

    fn send_batch_wait(&mut self, records: &[T], wait: Wait) -> Result<usize, SendBatchError> {
        self.core
            .send_batch(wait, bytemuck::cast_slice(records))
            .map_err(fail::send_batch)
    }

    /// [`send_batch`](Self::send_batch) that waits at most until `deadline`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(tx.send_batch_deadline(&[1, 2, 3, 4, 5], deadline), Ok(4)); // as many as fit
    /// let e = tx.send_batch_deadline(&[6], deadline);
    /// assert_eq!(e, Err(shmchan::SendBatchError::Timeout)); // still full at the deadline
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_batch_deadline(
        &mut self,
        records: &[T],
        deadline: Instant,
    ) -> Result<usize, SendBatchError> {
        self.send_batch_wait(records, Wait::Until(deadline))
    }

    /// [`send_batch`](Self::send_batch) without waiting: `Ok(0)` when the ring is full.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(tx.try_send_batch(&[1, 2, 3, 4, 5, 6]), Ok(4)); // as many as fit
    /// assert_eq!(tx.try_send_batch(&[7]), Ok(0)); // full: nothing sent, no waiting
    /// assert_eq!(rx.len(), 4);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn try_send_batch(&mut self, records: &[T]) -> Result<usize, SendBatchError> {
        match self
            .core
            .send_batch(Wait::No, bytemuck::cast_slice(records))
        {
            Err(Failed::Timeout) => Ok(0),
            r => r.map_err(fail::send_batch),
        }
    }

    /// Reserves one slot to write in place, waiting while the ring is full. The guard derefs to
    /// `&mut T` (holding whatever bytes the slot had: any bits are a valid `T`);
    /// [`SendGuard::commit`] publishes it, and dropping the guard uncommitted publishes nothing
    /// (on MPMC the claimed slot is marked skipped and receivers pass over it).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).backing(shmchan::Backing::anonymous()).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve().unwrap();
    /// *slot = 42;
    /// slot.commit();
    /// assert_eq!(rx.recv(), Ok(42));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn reserve(&mut self) -> Result<SendGuard<'_, T>, ReserveError> {
        self.reserve_wait(Wait::Forever)
    }

    /// [`reserve`](Self::reserve) without waiting: [`ReserveError::Full`] when full.
    ///
    /// ```
    /// # use shmchan::ReserveError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.try_reserve().unwrap();
    /// *slot = 1;
    /// slot.commit();
    /// # for i in 2..=4 { tx.send(i).unwrap(); }
    /// // ... the ring is full now:
    /// assert!(matches!(tx.try_reserve(), Err(ReserveError::Full)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn try_reserve(&mut self) -> Result<SendGuard<'_, T>, ReserveError> {
        self.reserve_wait(Wait::No)
    }

    /// [`reserve`](Self::reserve) that waits at most `timeout` ([`ReserveError::Timeout`]
    /// then).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve_timeout(Duration::from_millis(5)).unwrap();
    /// *slot = 6;
    /// slot.commit();
    /// assert_eq!(rx.recv(), Ok(6));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn reserve_timeout(&mut self, timeout: Duration) -> Result<SendGuard<'_, T>, ReserveError> {
        self.reserve_wait(Wait::timeout(timeout))
    }

    /// [`reserve`](Self::reserve) that waits until `deadline` at most
    /// ([`ReserveError::Timeout`] then).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use shmchan::ReserveError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// tx.reserve_deadline(deadline).unwrap().commit();
    /// assert!(matches!(tx.reserve_deadline(deadline), Err(ReserveError::Timeout))); // full
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn reserve_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SendGuard<'_, T>, ReserveError> {
        self.reserve_wait(Wait::Until(deadline))
    }

    #[inline(always)]
    fn reserve_wait(&mut self, wait: Wait) -> Result<SendGuard<'_, T>, ReserveError> {
        self.core
            .reserve::<T>(wait)
            .map(SendGuard::new)
            .map_err(|f| fail::reserve(f, wait))
    }
}
/// A slot reserved by [`Sender::reserve`]: write the record in place, then
/// [`commit`](SendGuard::commit).
///
/// ```
/// # use shmchan::{Backing, Channel};
/// # let chan = Channel::<[u64; 8]>::builder().backing(Backing::anonymous()).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// let mut slot = tx.reserve().unwrap();
/// slot[0] = 42; // written in shared memory, no copy
/// slot.commit();
/// assert_eq!(rx.recv().unwrap()[0], 42);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[must_use = "dropping a SendGuard without commit() publishes nothing"]
pub struct SendGuard<'a, T> {
    slot: SlotWrite<'a>,
    _t: PhantomData<&'a mut T>,
}

impl<'a, T> SendGuard<'a, T> {
    #[inline]
    fn new(slot: SlotWrite<'a>) -> SendGuard<'a, T> {
        SendGuard {
            slot,
            _t: PhantomData,
        }
    }

    /// Publishes the record (and wakes a sleeping receiver).
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut slot = tx.reserve().unwrap();
    /// *slot = 5;
    /// assert!(rx.is_empty()); // written, not yet published
    /// slot.commit();
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    #[inline]
    pub fn commit(self) {
        self.slot.commit::<T>();
    }
}

impl<T> Deref for SendGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the reserved slot holds `size_of::<T>()` bytes aligned for T (the typed
        // format's check at endpoint creation), initialised (mapped memory), any bits valid
        // (T: Pod), and ours alone until commit; the guard borrows the sender, so it cannot
        // outlive the mapping.
        unsafe { self.slot.ptr().cast::<T>().as_ref() }
    }
}

impl<T> DerefMut for SendGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.slot.ptr().cast::<T>().as_mut() }
    }
}
