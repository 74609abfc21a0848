//! What the four ring handles ([`SpscProducer`](crate::SpscProducer),
//! [`SpscConsumer`](crate::SpscConsumer), [`MpmcProducer`](crate::MpmcProducer),
//! [`MpmcConsumer`](crate::MpmcConsumer)) have in common, and what their four grants have:
//! written once here, expanded into each type's own `impl` block.
//!
//! Macros, because nothing plainer keeps these methods what they are: inherent methods of four
//! distinct public types, callable without importing anything. A trait with provided methods
//! would need a `use` at every call site; one generic handle type would turn the four public
//! types into aliases of it; and one generic grant type cannot have the `Drop` that only the
//! MPMC grants may have (an SPSC grant with a `Drop` impl would hold its handle borrowed to the
//! end of its scope). The bodies are a few lines over [`Core`](crate::raw::Core) and
//! [`RawRing`](crate::RawRing), which hold the logic.

/// Expands to the accessors every ring handle has, plus its doorbell method: `$wake` (whose
/// documentation is the doc comment given before it) takes the tokens of the wait cell
/// `$cell`. The handle has a `core: Core` field.
macro_rules! handle_accessors {
    ($(#[$wake_doc:meta])* $wake:ident: $cell:ident) => {
        $(#[$wake_doc])*
        #[inline]
        pub fn $wake(&self) -> u32 {
            self.core.ring.$cell().take_tokens()
        }

        /// The cell consumers waiting for records announce themselves on.
        #[inline]
        pub fn data_cell(&self) -> &$crate::WaitCell {
            self.core.ring.data_cell()
        }

        /// The cell producers waiting for room announce themselves on.
        #[inline]
        pub fn room_cell(&self) -> &$crate::WaitCell {
            self.core.ring.room_cell()
        }

        /// The ring.
        #[inline]
        pub fn ring(&self) -> &$crate::RawRing {
            &self.core.ring
        }

        /// Capacity in records.
        #[inline]
        pub fn capacity(&self) -> usize {
            self.core.capacity as usize
        }

        /// Record size in bytes.
        #[inline]
        pub fn record_size(&self) -> usize {
            self.core.record_size
        }

        /// Records in the ring: positions producers have claimed and consumers have not
        /// (approximate; see [`RawRing::len`](crate::RawRing::len)).
        #[inline]
        pub fn len(&self) -> usize {
            self.core.ring.len()
        }

        /// `len() == 0` (approximate).
        #[inline]
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// `len() == capacity()` (approximate).
        #[inline]
        pub fn is_full(&self) -> bool {
            self.len() == self.capacity()
        }
    };
}
pub(crate) use handle_accessors;

/// Expands to the accessors of a grant: `len`, `is_empty`, `slot` and, for a write grant,
/// `write` or, for a read grant, `read`.
///
/// The grant has fields `len: usize` and `$handle` (the `&mut` handle it borrows); `start` is
/// the path from `self` to its first position; `held` ("reserved", "claimed") words a write
/// grant's docs.
macro_rules! grant_accessors {
    (write, held: $held:literal, handle: $handle:ident, start: $($start:ident).+) => {
        #[doc = concat!("Number of ", $held, " slots.")]
        #[inline]
        pub fn len(&self) -> usize {
            self.len
        }

        $crate::handle::grant_accessors!(@slot $handle, $($start).+,
            concat!("The record of ", $held, " slot `i` (`record_size` writable bytes, aligned \
                to `record_align`), valid until the grant is committed or dropped."));

        /// Copies `record` into slot `i`.
        ///
        /// # Panics
        /// If `i >= len()` or `record.len() != record_size`.
        pub fn write(&mut self, i: usize, record: &[u8]) {
            let rs = self.$handle.core.record_size;
            assert_eq!(record.len(), rs, "record length");
            let dst = self.slot(i);
            // SAFETY: slot i belongs to this grant (owned for writing until the grant is
            // committed or dropped) and holds rs bytes; `record` holds rs readable bytes.
            unsafe { $crate::raw::copy_record(record.as_ptr(), dst.as_ptr(), rs) }
        }
    };
    (read, handle: $handle:ident, start: $($start:ident).+) => {
        /// Number of records.
        #[inline]
        pub fn len(&self) -> usize {
            self.len
        }

        $crate::handle::grant_accessors!(@slot $handle, $($start).+,
            "The `i`-th record (`record_size` readable bytes, aligned to `record_align`; \
            read-only use), valid until the grant is released or dropped.");

        /// Copies record `i` into `out`.
        ///
        /// # Panics
        /// If `i >= len()` or `out.len() != record_size`.
        pub fn read(&self, i: usize, out: &mut [u8]) {
            let rs = self.$handle.core.record_size;
            assert_eq!(out.len(), rs, "buffer length");
            let src = self.slot(i);
            // SAFETY: record i is published and belongs to this grant (ours for reading until
            // the grant is released or dropped); `out` holds rs writable bytes.
            unsafe { $crate::raw::copy_record(src.as_ptr(), out.as_mut_ptr(), rs) }
        }
    };
    (@slot $handle:ident, $($start:ident).+, $slot_doc:expr) => {
        /// `len() == 0`.
        #[inline]
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }

        #[doc = $slot_doc]
        ///
        /// # Panics
        /// If `i >= len()`.
        #[inline]
        pub fn slot(&self, i: usize) -> ::core::ptr::NonNull<u8> {
            assert!(i < self.len, "slot {i} out of a grant of {}", self.len);
            self.$handle
                .core
                .record(self.$($start).+.wrapping_add(i as u64))
        }
    };
}
pub(crate) use grant_accessors;
