//! Grants detached from their handle's borrow.
//!
//! A grant borrows its handle mutably for as long as it lives, which is what keeps a second
//! reservation from overlapping the first. A layer that keeps the handle inside a larger
//! object and hands out its own small guard (the endpoint core does: a guard of two words is
//! returned in registers, where a guard holding the grant is moved through memory at every
//! layer) can detach the grant into a [`Detached`] — the positions it holds, no borrow — keep
//! it next to the handle, and reattach it to commit, release or drop it there.

/// The positions a detached grant holds (see the module docs): give it back to the handle it
/// came from with `reattach` to commit, release or drop it. Dropping a `Detached` without
/// reattaching it is what `mem::forget` of the grant would be: an SPSC grant leaves nothing
/// behind, an MPMC claim stays claimed until its handle's process is reaped.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "reattach it to commit, release or drop the grant"]
pub struct Detached {
    pub(crate) start: u64,
    pub(crate) len: usize,
}

impl Detached {
    /// How many slots or records the grant holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the grant holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
