//! The typed receiver's iterators: blocking ([`Iter`], also `for r in &mut rx`), blocking with
//! the errors ([`IterResults`]) and non-blocking ([`TryIter`]).
//!
//! None of them ends silently and none panics: a blocking iteration ends when every sender is
//! gone and the ring is drained, or when a receive reports the segment corrupted — something
//! a peer with access to the segment can cause at will, so it must not crash the process.
//! [`Iter::error`] (and [`TryIter::error`]) say which, and [`IterResults`] yields the error
//! as its last item.

use bytemuck::Pod;

use super::super::Receiver;
use crate::error::{RecvError, TryRecvError};

/// A blocking iterator over received records ([`Receiver::iter`]): ends when every sender is
/// gone and the ring is drained, or on corruption — after which [`Iter::error`] says so. Once
/// ended it stays ended.
///
/// ```
/// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send_batch(&[1, 2]).unwrap();
/// drop(tx);
/// let mut it = rx.iter(); // blocks for records until every sender is gone
/// assert_eq!((it.next(), it.next(), it.next()), (Some(1), Some(2), None));
/// assert_eq!(it.error(), None); // ended because the senders left, not on corruption
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct Iter<'a, T> {
    rx: &'a mut Receiver<T>,
    end: Option<RecvError>,
}

impl<'a, T> Iter<'a, T> {
    pub(super) fn new(rx: &'a mut Receiver<T>) -> Iter<'a, T> {
        Iter { rx, end: None }
    }

    /// Why the iteration ended, when it was not the normal end (every sender gone, the ring
    /// drained): `Some(RecvError::Corrupted)` when a receive found the segment corrupted (a
    /// peer scribbled on it; [`Receiver::check`] may say more). `None` while it runs and
    /// after a normal end.
    ///
    /// A `for` loop over `&mut rx` consumes its iterator; to ask afterwards, loop over the
    /// iterator by reference:
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// # tx.send(1).unwrap();
    /// # drop(tx);
    /// let mut records = rx.iter();
    /// for r in &mut records {
    ///     // ...
    /// #   assert_eq!(r, 1);
    /// }
    /// if let Some(e) = records.error() {
    ///     eprintln!("stopped early: {e}");
    /// }
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn error(&self) -> Option<RecvError> {
        self.end.filter(|e| *e != RecvError::Disconnected)
    }
}

/// `for r in &mut rx`: the blocking iterator ([`Receiver::iter`]). It ends at the disconnection
/// or on corruption; where the difference matters, loop over `rx.iter()` by reference and ask
/// [`Iter::error`] afterwards, or over [`Receiver::iter_results`].
///
/// ```
/// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send_batch(&[1, 2, 3]).unwrap();
/// drop(tx);
/// let mut sum = 0;
/// for r in &mut rx {
///     sum += r;
/// }
/// assert_eq!(sum, 6);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
impl<'a, T: Pod> IntoIterator for &'a mut Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: Pod> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.end.is_some() {
            return None;
        }
        match self.rx.recv() {
            Ok(v) => Some(v),
            Err(e) => {
                self.end = Some(e);
                None
            }
        }
    }
}

impl<T: Pod> std::iter::FusedIterator for Iter<'_, T> {}

/// A blocking iterator over received records and the error that ended it
/// ([`Receiver::iter_results`]): `Ok` records until every sender is gone and the ring is
/// drained (then it ends), or until a receive fails otherwise: that error is its last item.
///
/// ```
/// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send_batch(&[1, 2]).unwrap();
/// drop(tx);
/// let got: Result<Vec<u64>, _> = rx.iter_results().collect();
/// assert_eq!(got, Ok(vec![1, 2]));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct IterResults<'a, T> {
    rx: &'a mut Receiver<T>,
    done: bool,
}

impl<'a, T> IterResults<'a, T> {
    pub(super) fn new(rx: &'a mut Receiver<T>) -> IterResults<'a, T> {
        IterResults { rx, done: false }
    }
}

impl<T: Pod> Iterator for IterResults<'_, T> {
    type Item = Result<T, RecvError>;
    fn next(&mut self) -> Option<Result<T, RecvError>> {
        if self.done {
            return None;
        }
        match self.rx.recv() {
            Ok(v) => Some(Ok(v)),
            Err(e) => {
                self.done = true;
                (e != RecvError::Disconnected).then_some(Err(e))
            }
        }
    }
}

impl<T: Pod> std::iter::FusedIterator for IterResults<'_, T> {}

/// A non-blocking iterator over the records available now ([`Receiver::try_iter`]): ends when
/// the ring is empty, every sender is gone, or on corruption — [`TryIter::error`] says when
/// it was corruption. Once ended it stays ended; call `try_iter` again to look again.
///
/// ```
/// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
/// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
/// tx.send(1).unwrap();
/// let mut it = rx.try_iter();
/// assert_eq!((it.next(), it.next()), (Some(1), None)); // None: empty right now
/// assert_eq!(it.error(), None);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub struct TryIter<'a, T> {
    rx: &'a mut Receiver<T>,
    end: Option<TryRecvError>,
}

impl<'a, T> TryIter<'a, T> {
    pub(super) fn new(rx: &'a mut Receiver<T>) -> TryIter<'a, T> {
        TryIter { rx, end: None }
    }

    /// `Some(TryRecvError::Corrupted)` when the iteration ended because a receive found the
    /// segment corrupted; `None` while it runs and after it ended on an empty ring or the
    /// disconnection.
    ///
    /// ```
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(4).create()?;
    /// # let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// let mut it = rx.try_iter();
    /// assert_eq!((it.next(), it.error()), (None, None)); // empty, not broken
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn error(&self) -> Option<TryRecvError> {
        self.end.filter(|e| *e == TryRecvError::Corrupted)
    }
}

impl<T: Pod> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.end.is_some() {
            return None;
        }
        match self.rx.try_recv() {
            Ok(v) => Some(v),
            Err(e) => {
                self.end = Some(e);
                None
            }
        }
    }
}

impl<T: Pod> std::iter::FusedIterator for TryIter<'_, T> {}
