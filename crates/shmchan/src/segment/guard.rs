//! Guards that undo a creation that fails half-way.

use crate::backing::Owner;
use crate::life::Tokens;

/// Removes a new channel's life set if creation fails half-way.
pub(super) struct LifeGuard(pub(super) Option<Tokens>);

impl LifeGuard {
    pub(super) fn disarm(mut self) -> Option<Tokens> {
        self.0.take()
    }
}

impl Drop for LifeGuard {
    fn drop(&mut self) {
        if let Some(l) = self.0.take() {
            l.remove();
        }
    }
}

/// Runs the owner's cleanup if creation fails half-way.
pub(super) struct CreateGuard(pub(super) Option<Owner>);

impl CreateGuard {
    pub(super) fn disarm(mut self) -> Owner {
        self.0.take().unwrap_or(Owner::Nothing)
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if let Some(o) = self.0.take() {
            o.run();
        }
    }
}
