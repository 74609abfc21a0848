//! Error types, one small enum per operation (crossbeam-channel's shape).
//!
//! A failed send gives the record back. Every enum is `#[non_exhaustive]` so later versions
//! (crash safety, more doorbells) can add cases without breaking users.

use core::fmt;

use crate::record::RecordInfo;

/// Why a channel could not be created or opened.
///
/// ```
/// use shmchan::{Channel, OpenError};
/// let err = Channel::<u64>::builder().capacity(0).create().unwrap_err();
/// assert!(matches!(err, OpenError::InvalidConfig { .. }));
/// assert!(err.to_string().starts_with("invalid channel settings"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The key, id or path names no channel.
    NotFound {
        /// What was looked up (`SysV key 0x…`, `file /tmp/x`, …).
        what: String,
    },
    /// Something already exists under this key or path (creation uses `O_EXCL`/`IPC_EXCL`)
    /// and it was not reclaimed: a live channel (`live_pid` names a process using it), or
    /// something that is not a stale shmchan channel (`reason` says what).
    AlreadyExists {
        /// What already exists.
        what: String,
        /// A live process attached to it, when known.
        live_pid: Option<u32>,
        /// Why it was not reclaimed.
        reason: String,
    },
    /// The kernel refused access (mode bits, `SHM_RDONLY`, file permissions).
    PermissionDenied {
        /// What could not be accessed.
        what: String,
        /// The refused system call.
        source: shmchan_os::Error,
    },
    /// The channel carries another record type than the one asked for: another name, size,
    /// alignment or schema version, or — when both sides' types derive
    /// [`Schema`](derive@crate::Schema) — another field layout.
    /// [`type_difference`](OpenError::type_difference) names the first field that differs,
    /// and the message ends with it.
    TypeMismatch {
        /// The fingerprint of the caller's record type.
        expected: RecordInfo,
        /// The fingerprint stored in the segment.
        found: RecordInfo,
    },
    /// The segment was written by an incompatible version of shmchan.
    Version {
        /// The layout version this build understands.
        expected: u32,
        /// The version found in the segment.
        found: u32,
    },
    /// The channel is of another ring kind (SPSC vs MPMC) or doorbell than the one asked for.
    Mismatch {
        /// The field that differs (`ring kind`, `doorbell`).
        field: &'static str,
        /// What the caller asked for.
        expected: String,
        /// What the segment holds.
        found: String,
    },
    /// The segment failed validation: it is not (or no longer) a well-formed shmchan channel.
    Corrupted {
        /// What was wrong.
        reason: String,
    },
    /// The channel's segment names a doorbell object (a SysV semaphore set or message queue,
    /// a named semaphore, a POSIX queue) that is not bound to the channel: the kernel says
    /// another user made or owns it, or its key or name does not carry the channel's identity.
    /// Whoever can write a segment can write any name there, so shmchan never opens, posts
    /// to, waits on or removes such an object; it was left untouched (and so was the channel,
    /// when this refuses a removal).
    ///
    /// ```
    /// use shmchan::OpenError;
    /// let e = OpenError::UnboundDoorbell {
    ///     what: "SysV key 0x2a".into(),
    ///     object: "SysV semaphore set semid 5".into(),
    ///     reason: "it belongs to uid 0, not to the channel's owner uid 65534".into(),
    /// };
    /// assert!(e.to_string().contains("not this channel's"));
    /// ```
    UnboundDoorbell {
        /// The channel (its backing).
        what: String,
        /// The object its segment names.
        object: String,
        /// Why the object is not the channel's.
        reason: String,
    },
    /// The key, id or path holds something that is not a shmchan channel; it was not touched.
    Foreign {
        /// What was looked at.
        what: String,
    },
    /// The path names something that is not a regular file (a FIFO, a device, a directory):
    /// it cannot hold a channel, and it was neither read nor waited on.
    NotAFile {
        /// What was looked at (`file /tmp/x`).
        what: String,
        /// What it is instead (`"a FIFO"`, `"a character device"`, ...).
        found: &'static str,
    },
    /// The creator did not finish initialising the segment within the open timeout.
    NotReady {
        /// What was waited for.
        what: String,
    },
    /// An SPSC channel already has a live endpoint of this role.
    EndpointTaken {
        /// `"sender"` or `"receiver"`.
        role: &'static str,
        /// The process holding it.
        pid: u32,
    },
    /// The endpoint table is full (see [`crate::MAX_ENDPOINTS`]).
    TooManyEndpoints,
    /// The builder's settings are not usable (for example a capacity of 0).
    InvalidConfig {
        /// What is wrong with them.
        reason: String,
    },
    /// Any other failure of a system call.
    Os(shmchan_os::Error),
}

impl OpenError {
    /// For [`TypeMismatch`](OpenError::TypeMismatch) between two record types that both
    /// derive [`Schema`](derive@crate::Schema): the first field that differs (`None` for any
    /// other error, or when the layouts agree and only the name, version or a side without the
    /// derive differs).
    ///
    /// ```
    /// use shmchan::{Backing, Channel, schema::Difference};
    /// mod v1 {
    ///     #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    ///     #[bytemuck(crate = "shmchan::bytemuck")]
    ///     #[repr(C)]
    ///     pub struct Tick { pub seq: u64, pub price: f64 }
    /// }
    /// mod v2 {
    ///     #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    ///     #[bytemuck(crate = "shmchan::bytemuck")]
    ///     #[repr(C)]
    ///     pub struct Tick { pub seq: u64, pub price: u64 }
    /// }
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-td-{}", std::process::id()));
    /// let chan = Channel::<v1::Tick>::builder().backing(Backing::file(&path)).create()?;
    /// let err = Channel::<v2::Tick>::builder().backing(Backing::file(&path)).open().unwrap_err();
    /// assert_eq!(err.type_difference().and_then(|d| d.field().map(str::to_owned)).as_deref(),
    ///            Some("price"));
    /// assert!(err.to_string().ends_with(
    ///     "field `price`: expected u64 at offset 8, found f64 at offset 8"));
    /// # drop(chan); shmchan::remove(&Backing::file(&path))?;
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn type_difference(&self) -> Option<crate::schema::Difference> {
        match self {
            OpenError::TypeMismatch { expected, found } => expected.layout_difference(found),
            _ => None,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotFound { what } => write!(f, "no channel at {what}"),
            OpenError::AlreadyExists {
                what,
                live_pid,
                reason,
            } => {
                write!(f, "{what} already exists: {reason}")?;
                if let Some(pid) = live_pid {
                    write!(f, " (live pid {pid})")?;
                }
                Ok(())
            }
            OpenError::PermissionDenied { what, source } => {
                write!(f, "permission denied on {what}: {source}")
            }
            OpenError::TypeMismatch { expected, found } => {
                write!(
                    f,
                    "record type mismatch: this side uses {expected}, the channel carries {found}"
                )?;
                match self.type_difference() {
                    Some(d) => write!(f, "; {d}"),
                    None => Ok(()),
                }
            }
            OpenError::Version { expected, found } => write!(
                f,
                "layout version mismatch: this build understands version {expected}, the segment has version {found}"
            ),
            OpenError::Mismatch {
                field,
                expected,
                found,
            } => write!(
                f,
                "{field} mismatch: this side asked for {expected}, the channel uses {found}"
            ),
            OpenError::Corrupted { reason } => write!(f, "corrupted channel segment: {reason}"),
            OpenError::UnboundDoorbell {
                what,
                object,
                reason,
            } => write!(
                f,
                "{what}: its doorbell names {object}, which is not this channel's: {reason}; left untouched"
            ),
            OpenError::Foreign { what } => {
                write!(f, "{what} is not a shmchan channel (left untouched)")
            }
            OpenError::NotAFile { what, found } => {
                write!(f, "{what} is {found}, not a channel file")
            }
            OpenError::NotReady { what } => write!(
                f,
                "{what} was not initialised by its creator within the open timeout"
            ),
            OpenError::EndpointTaken { role, pid } => write!(
                f,
                "this SPSC channel already has a live {role} (pid {pid})"
            ),
            OpenError::TooManyEndpoints => write!(
                f,
                "the channel's endpoint table is full ({} endpoints)",
                crate::MAX_ENDPOINTS
            ),
            OpenError::InvalidConfig { reason } => write!(f, "invalid channel settings: {reason}"),
            OpenError::Os(e) => write!(f, "{e}"),
        }
    }
}

impl From<shmchan_os::Error> for OpenError {
    fn from(e: shmchan_os::Error) -> OpenError {
        OpenError::Os(e)
    }
}

/// Maps an `os::Error` to the `OpenError` a user expects for `what`.
pub(crate) fn os_error(e: shmchan_os::Error, what: &str) -> OpenError {
    use shmchan_os::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::Removed => OpenError::NotFound {
            what: what.to_owned(),
        },
        ErrorKind::AlreadyExists => OpenError::AlreadyExists {
            what: what.to_owned(),
            live_pid: None,
            reason: "created exclusively".into(),
        },
        ErrorKind::PermissionDenied => OpenError::PermissionDenied {
            what: what.to_owned(),
            source: e,
        },
        _ => OpenError::Os(e),
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::PermissionDenied { source, .. } => Some(source),
            OpenError::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// What every `Forked` error says.
pub(crate) const FORKED: &str = "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process";

macro_rules! record_error {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $msg:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(PartialEq, Eq, Clone, Copy)]
        #[non_exhaustive]
        pub enum $name<T> {
            $($(#[$vm])* $var(T),)*
        }
        impl<T> $name<T> {
            /// Gives back the record that was not sent.
            ///
            /// ```
            /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
            /// # let mut tx = chan.sender()?;
            /// tx.send(1).unwrap(); // full now
            /// let err = tx.try_send(5).unwrap_err();
            /// assert_eq!(err.into_inner(), 5); // nothing is lost
            /// # Ok::<(), shmchan::OpenError>(())
            /// ```
            pub fn into_inner(self) -> T {
                match self { $($name::$var(t) => t,)* }
            }
        }
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $($name::$var(_) => f.write_str(concat!(stringify!($name), "::", stringify!($var), "(..)")),)* }
            }
        }
        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $($name::$var(_) => f.write_str($msg),)* }
            }
        }
        impl<T> std::error::Error for $name<T> {}
    };
}

record_error!(
    /// Why [`Sender::send`](crate::Sender::send) failed; the record comes back.
    ///
    /// ```
    /// use shmchan::SendError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// drop(rx);
    /// let err = tx.send(1).unwrap_err();
    /// assert_eq!(err, SendError::Disconnected(1));
    /// assert_eq!(err.to_string(), "sending on a disconnected channel");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    SendError {
        /// Every receiver is gone.
        Disconnected => "sending on a disconnected channel",
        /// The segment no longer passes validation (a peer scribbled on it).
        Corrupted => "sending on a corrupted channel",
        /// This endpoint was attached by another process: it was inherited across `fork`, and
        /// only the process that attached an endpoint may use it (take a new one from the
        /// [`Channel`](crate::Channel) in this process).
        Forked => "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process",
    }
);

record_error!(
    /// Why [`Sender::try_send`](crate::Sender::try_send) failed; the record comes back.
    ///
    /// ```
    /// use shmchan::TrySendError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// assert_eq!(TrySendError::Full(2).to_string(), "sending on a full channel");
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    TrySendError {
        /// The ring is full right now.
        Full => "sending on a full channel",
        /// Every receiver is gone.
        Disconnected => "sending on a disconnected channel",
        /// The segment no longer passes validation.
        Corrupted => "sending on a corrupted channel",
        /// This endpoint was attached by another process: it was inherited across `fork`, and
        /// only the process that attached an endpoint may use it (take a new one from the
        /// [`Channel`](crate::Channel) in this process).
        Forked => "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process",
    }
);

record_error!(
    /// Why [`Sender::send_timeout`](crate::Sender::send_timeout) failed; the record comes back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmchan::SendTimeoutError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (mut tx, _rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// let err = tx.send_timeout(2, Duration::from_millis(5)).unwrap_err();
    /// assert!(matches!(err, SendTimeoutError::Timeout(2)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    SendTimeoutError {
        /// The ring stayed full until the deadline.
        Timeout => "timed out sending on a full channel",
        /// Every receiver is gone.
        Disconnected => "sending on a disconnected channel",
        /// The segment no longer passes validation.
        Corrupted => "sending on a corrupted channel",
        /// This endpoint was attached by another process: it was inherited across `fork`, and
        /// only the process that attached an endpoint may use it (take a new one from the
        /// [`Channel`](crate::Channel) in this process).
        Forked => "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process",
    }
);

/// The receive errors (and the other fieldless ones) are eight bytes, aligned as a `u64`, not
/// one: a record returned in `Result<T, E>` and the error beside it then each take whole
/// words, and the optimizer, which splits such a `Result` into its parts, keeps the record's
/// part aligned. With a one-byte error at offset 1 it split off bytes 2.. as a part aligned to 2,
/// and every 64-byte record a caller received and then borrowed (`let r = rx.recv()?;
/// check(&r)`) was copied through that misaligned part, 16-byte stores split across cache
/// lines that the next loads could not forward from: about half the rate of a 64-byte stream
/// across processes (a 2-vCPU Intel Xeon VM).
macro_rules! plain_error {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $msg:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, PartialEq, Eq, Clone, Copy)]
        #[repr(u64)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $var,)*
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $($name::$var => f.write_str($msg),)* }
            }
        }
        impl std::error::Error for $name {}
    };
}

plain_error!(
    /// Why a blocking receive or reservation failed.
    ///
    /// ```
    /// use shmchan::RecvError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// drop(tx);
    /// assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    /// assert!(RecvError::Disconnected.to_string().ends_with("disconnected channel"));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    RecvError {
        /// Every sender is gone and everything they committed was received.
        Disconnected => "receiving on an empty and disconnected channel",
        /// The segment no longer passes validation.
        Corrupted => "receiving on a corrupted channel",
        /// This endpoint was attached by another process: it was inherited across `fork`, and
        /// only the process that attached an endpoint may use it (take a new one from the
        /// [`Channel`](crate::Channel) in this process).
        Forked => "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process",
    }
);

plain_error!(
    /// Why [`Receiver::try_recv`](crate::Receiver::try_recv) failed.
    ///
    /// ```
    /// use shmchan::TryRecvError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    TryRecvError {
        /// Nothing to receive right now.
        Empty => "receiving on an empty channel",
        /// Every sender is gone and everything they committed was received.
        Disconnected => "receiving on an empty and disconnected channel",
        /// The segment no longer passes validation.
        Corrupted => "receiving on a corrupted channel",
        /// This endpoint was attached by another process: it was inherited across `fork`, and
        /// only the process that attached an endpoint may use it (take a new one from the
        /// [`Channel`](crate::Channel) in this process).
        Forked => "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process",
    }
);

plain_error!(
    /// Why [`Receiver::recv_timeout`](crate::Receiver::recv_timeout) failed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmchan::RecvTimeoutError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (_tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    RecvTimeoutError {
        /// Nothing arrived before the deadline.
        Timeout => "timed out receiving on an empty channel",
        /// Every sender is gone and everything they committed was received.
        Disconnected => "receiving on an empty and disconnected channel",
        /// The segment no longer passes validation.
        Corrupted => "receiving on a corrupted channel",
        /// This endpoint was attached by another process: it was inherited across `fork`, and
        /// only the process that attached an endpoint may use it (take a new one from the
        /// [`Channel`](crate::Channel) in this process).
        Forked => "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process",
    }
);

plain_error!(
    /// Why [`Sender::reserve`](crate::Sender::reserve) (and its `try_`/timeout forms) failed.
    ///
    /// ```
    /// use shmchan::ReserveError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(1).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(1).unwrap();
    /// assert!(matches!(tx.try_reserve(), Err(ReserveError::Full)));
    /// drop(rx);
    /// assert!(matches!(tx.try_reserve(), Err(ReserveError::Disconnected)));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    ReserveError {
        /// The ring is full right now (`try_reserve`).
        Full => "no free slot in the channel",
        /// The ring stayed full until the deadline (`reserve_timeout`, `reserve_deadline`).
        Timeout => "timed out waiting for a free slot in the channel",
        /// Every receiver is gone.
        Disconnected => "reserving on a disconnected channel",
        /// The segment no longer passes validation.
        Corrupted => "reserving on a corrupted channel",
        /// This endpoint was attached by another process: it was inherited across `fork`, and
        /// only the process that attached an endpoint may use it (take a new one from the
        /// [`Channel`](crate::Channel) in this process).
        Forked => "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process",
    }
);

plain_error!(
    /// Why [`Sender::send_batch`](crate::Sender::send_batch) (and its timed forms, and
    /// [`try_send_batch`](crate::Sender::try_send_batch)) sent nothing. A batch that does not
    /// fit sends what fits, so "full" is not an error: `try_send_batch` returns `Ok(0)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmchan::SendBatchError;
    /// # let chan = shmchan::Channel::<u64>::builder().capacity(2).create()?;
    /// # let (mut tx, rx) = (chan.sender()?, chan.receiver()?);
    /// assert_eq!(tx.send_batch(&[1, 2, 3]), Ok(2)); // as many as fit
    /// let t = Duration::from_millis(5);
    /// assert_eq!(tx.send_batch_timeout(&[3], t), Err(SendBatchError::Timeout));
    /// drop(rx);
    /// assert_eq!(tx.send_batch(&[3]), Err(SendBatchError::Disconnected));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    SendBatchError {
        /// Not even one record fitted before the deadline (the timed forms).
        Timeout => "timed out sending a batch on a full channel",
        /// Every receiver is gone.
        Disconnected => "sending a batch on a disconnected channel",
        /// The segment no longer passes validation.
        Corrupted => "sending a batch on a corrupted channel",
        /// This endpoint was attached by another process: it was inherited across `fork`, and
        /// only the process that attached an endpoint may use it (take a new one from the
        /// [`Channel`](crate::Channel) in this process).
        Forked => "using an endpoint in a process other than the one that attached it (inherited across fork); take a new endpoint from the Channel in this process",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    /// See `plain_error!`: the receive errors are aligned as the records they come beside, so a
    /// returned record is not split off into a misaligned part.
    #[test]
    fn receive_errors_are_word_aligned() {
        assert_eq!(align_of::<RecvError>(), 8);
        assert_eq!(align_of::<TryRecvError>(), 8);
        assert_eq!(align_of::<RecvTimeoutError>(), 8);
        assert_eq!(size_of::<Result<[u64; 8], RecvError>>(), 72);
        assert_eq!(size_of::<Result<u64, TryRecvError>>(), 16);
    }
}
