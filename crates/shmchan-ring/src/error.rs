//! Small error types, one per operation family.

use core::fmt;

use crate::layout::RingKind;

/// A header field or layout quantity named by an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `init_state`.
    InitState,
    /// `kind`.
    Kind,
    /// `capacity`.
    Capacity,
    /// `record_size`.
    RecordSize,
    /// `record_align`.
    RecordAlign,
    /// `slot_stride`.
    SlotStride,
    /// `ext_offset`.
    ExtOffset,
    /// `ext_len`.
    ExtLen,
    /// `cursors_offset`.
    CursorsOffset,
    /// `slots_offset`.
    SlotsOffset,
    /// `total_len`.
    TotalLen,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::InitState => "init_state",
            Field::Kind => "kind",
            Field::Capacity => "capacity",
            Field::RecordSize => "record_size",
            Field::RecordAlign => "record_align",
            Field::SlotStride => "slot_stride",
            Field::ExtOffset => "ext_offset",
            Field::ExtLen => "ext_len",
            Field::CursorsOffset => "cursors_offset",
            Field::SlotsOffset => "slots_offset",
            Field::TotalLen => "total_len",
        })
    }
}

/// Why a ring cannot be laid out or created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// A parameter is out of range.
    Invalid {
        /// Which parameter.
        field: Field,
        /// Its value.
        value: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Computing the layout overflowed (the request is absurdly large).
    Overflow {
        /// The quantity that overflowed.
        field: Field,
    },
    /// The region is shorter than the layout's `total_len`.
    RegionTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes given.
        len: usize,
    },
    /// The region's base is not 128-byte aligned.
    Misaligned {
        /// The base address.
        addr: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::Invalid {
                field,
                value,
                reason,
            } => {
                write!(f, "invalid ring {field} {value}: {reason}")
            }
            LayoutError::Overflow { field } => write!(f, "ring layout overflows at {field}"),
            LayoutError::RegionTooSmall { needed, len } => {
                write!(
                    f,
                    "region of {len} bytes is too small for the ring ({needed} bytes needed)"
                )
            }
            LayoutError::Misaligned { addr } => {
                write!(f, "region base {addr:#x} is not 128-byte aligned")
            }
        }
    }
}

impl core::error::Error for LayoutError {}

/// Why an existing region cannot be opened as a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// The region is shorter than the header, or than the header's `total_len`.
    RegionTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes given.
        len: usize,
    },
    /// The region's base is not 128-byte aligned.
    Misaligned {
        /// The base address.
        addr: usize,
    },
    /// `init_state` is 0 (uninit) or 1 (initializing): retry until a deadline.
    NotReady {
        /// The state read.
        init_state: u32,
    },
    /// The magic number is not [`MAGIC`](crate::MAGIC): not a shmchan ring.
    BadMagic {
        /// The value found.
        found: u64,
    },
    /// The layout version is not [`LAYOUT_VERSION`](crate::LAYOUT_VERSION).
    UnsupportedVersion {
        /// The value found.
        found: u32,
    },
    /// A header field is invalid or inconsistent.
    Invalid {
        /// Which field.
        field: Field,
        /// Its value.
        value: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OpenError::RegionTooSmall { needed, len } => {
                write!(
                    f,
                    "region of {len} bytes is too small for the ring ({needed} bytes needed)"
                )
            }
            OpenError::Misaligned { addr } => {
                write!(f, "region base {addr:#x} is not 128-byte aligned")
            }
            OpenError::NotReady { init_state } => {
                write!(f, "ring is not initialised yet (init_state {init_state})")
            }
            OpenError::BadMagic { found } => {
                write!(
                    f,
                    "not a shmchan ring: magic 0x{found:016x}, expected 0x{:016x}",
                    crate::MAGIC
                )
            }
            OpenError::UnsupportedVersion { found } => write!(
                f,
                "unsupported ring layout version {found} (this build reads {})",
                crate::LAYOUT_VERSION
            ),
            OpenError::Invalid {
                field,
                value,
                reason,
            } => {
                write!(f, "corrupted ring header: {field} = {value}: {reason}")
            }
        }
    }
}

impl core::error::Error for OpenError {}

impl From<LayoutError> for OpenError {
    fn from(e: LayoutError) -> Self {
        match e {
            LayoutError::Invalid {
                field,
                value,
                reason,
            } => OpenError::Invalid {
                field,
                value,
                reason,
            },
            LayoutError::Overflow { field } => OpenError::Invalid {
                field,
                value: u64::MAX,
                reason: "layout overflows",
            },
            LayoutError::RegionTooSmall { needed, len } => {
                OpenError::RegionTooSmall { needed, len }
            }
            LayoutError::Misaligned { addr } => OpenError::Misaligned { addr },
        }
    }
}

/// A handle was requested for the other kind of ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindError {
    /// The kind the handle needs.
    pub expected: RingKind,
    /// The ring's kind.
    pub found: RingKind,
}

impl fmt::Display for KindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrong ring kind: expected {}, the ring is {}",
            self.expected, self.found
        )
    }
}

impl core::error::Error for KindError {}

/// Why a push (or reservation) did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// No room (for the requested number of records).
    Full,
    /// The shared cursors or stamps are inconsistent: a peer wrote garbage.
    Corrupted,
    /// The record's length is not the ring's record size.
    WrongLength {
        /// The ring's record size.
        expected: usize,
        /// The length given.
        got: usize,
    },
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PushError::Full => f.write_str("ring is full"),
            PushError::Corrupted => f.write_str("ring is corrupted"),
            PushError::WrongLength { expected, got } => {
                write!(
                    f,
                    "record of {got} bytes, the ring's records are {expected} bytes"
                )
            }
        }
    }
}

impl core::error::Error for PushError {}

/// Why a pop (or peek) did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PopError {
    /// No record (or fewer than requested) is ready.
    Empty,
    /// The shared cursors or stamps are inconsistent: a peer wrote garbage.
    Corrupted,
    /// The output buffer's length is not the ring's record size.
    WrongLength {
        /// The ring's record size.
        expected: usize,
        /// The length given.
        got: usize,
    },
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PopError::Empty => f.write_str("ring is empty"),
            PopError::Corrupted => f.write_str("ring is corrupted"),
            PopError::WrongLength { expected, got } => {
                write!(
                    f,
                    "buffer of {got} bytes, the ring's records are {expected} bytes"
                )
            }
        }
    }
}

impl core::error::Error for PopError {}
