//! Memory without a name: anonymous `MAP_SHARED` memory, shared with children forked after
//! creation and freed when the last process unmaps it; and memory the caller mapped itself
//! (`Builder::create_in` / `open_in`), never unmapped here.

use std::ptr::NonNull;

use shmchan_os as os;

use super::{Mapping, Owner};
use crate::error::{os_error, OpenError};

/// Maps `len` bytes of anonymous shared memory.
pub(super) fn create(len: usize, what: &str) -> Result<(Mapping, Owner), OpenError> {
    let map = os::SharedMapping::anonymous(len).map_err(|e| os_error(e, what))?;
    Ok((Mapping::Anonymous { map }, Owner::Nothing))
}

/// The caller's memory at `addr`.
pub(super) fn region(addr: usize, len: usize) -> Result<Mapping, OpenError> {
    let base = NonNull::new(addr as *mut u8).ok_or_else(|| OpenError::InvalidConfig {
        reason: "caller-provided memory at a null address".into(),
    })?;
    Ok(Mapping::Region { base, len })
}
