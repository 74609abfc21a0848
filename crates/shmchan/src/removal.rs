//! Removing a channel by its name, and reclaiming a stale one that is in the way of a new one.
//!
//! Both read what the segment says (its doorbell objects, its endpoints) before they remove
//! anything, so they sit above inspection; what each backing removes, and how it tells that a
//! process still uses it, is the backing's (`Backing::unlink`, `Backing::in_use`).

use crate::backing::Backing;
use crate::error::OpenError;
use crate::inspect::{inspect, Inspection};

/// Removes the channel at a SysV key/id or a file path (its segment and, with the kernel
/// doorbells, their objects). Processes still attached keep working; nobody can open it any
/// more. Something that does not carry the shmchan magic is refused with
/// [`OpenError::Foreign`] and left untouched; a corrupted channel is removed (its doorbell
/// objects are not: nothing in it can be trusted to name them).
///
/// The doorbell objects the segment names are removed only when they are bound to the channel:
/// the kernel says the channel's owner (the creator of the SysV segment, the owner of the
/// file) made and owns them, and their keys or names carry the channel's identity. If one of
/// them is there but not the channel's, nothing at all is removed and the error is
/// [`OpenError::UnboundDoorbell`]: a segment crafted by one user never makes another user's
/// process (root's `shmchan rm`) remove someone else's objects.
///
/// This does not look at live endpoints: `shmchan rm` refuses while one is alive unless
/// `--force`; use [`crate::inspect::inspect`] for that check.
///
/// ```
/// # use shmchan::{remove, Backing, OpenError};
/// let r = remove(&Backing::file("/nonexistent/shmchan-doc"));
/// assert!(matches!(r, Err(OpenError::NotFound { .. })));
/// ```
pub fn remove(backing: &Backing) -> Result<(), OpenError> {
    backing.check_removable()?;
    let mut life_set = None;
    match inspect(backing)? {
        Inspection::Foreign => {
            return Err(OpenError::Foreign {
                what: backing.to_string(),
            })
        }
        Inspection::Channel(info) => {
            if let Some(b) = &info.bell {
                // Only objects bound to the channel; if one is not, nothing is removed (see
                // `doorbell::bind`).
                b.remove(info.vouched.remover())
                    .map_err(|u| u.into_error(&backing.to_string()))?;
            }
            // The SysV life-token set, checked by inspection to be this segment's
            // (`crate::life`); it goes once the segment is gone.
            life_set = info.life_set;
        }
        Inspection::Corrupted { .. } => {}
    }
    backing.unlink()?;
    if let Some(set) = life_set {
        set.remove();
    }
    Ok(())
}

/// Removes the stale channel at `backing` (`what` is in the way of creating a new one there),
/// or explains why not: a channel is stale when no process uses it — no endpoint in its table
/// is alive, and the backing says nobody else holds it (for SysV, the kernel's attach count is
/// 0, exact even after `kill -9`; for a file, its creator is gone or no longer maps it).
/// A stale channel that still holds unread records is not reclaimed: the refusal says how many
/// (they are for whoever opens it; `shmchan rm` discards them). Anything that is not a shmchan
/// channel is never touched.
pub(crate) fn reclaim_stale(backing: &Backing, what: &str) -> Result<(), OpenError> {
    let refuse = |live_pid: Option<u32>, reason: String| OpenError::AlreadyExists {
        what: what.to_owned(),
        live_pid,
        reason,
    };
    let info = match inspect(backing)? {
        Inspection::Foreign => return Err(refuse(None, "it is not a shmchan channel".into())),
        Inspection::Corrupted { reason } => {
            return Err(refuse(
                None,
                format!(
                    "it is a corrupted shmchan channel ({reason}); remove it with `shmchan rm`"
                ),
            ))
        }
        Inspection::Channel(info) => info,
    };
    if let Some(pid) = info.live_pids().first() {
        return Err(refuse(Some(*pid), "a live endpoint uses it".into()));
    }
    if info.len > 0 {
        // Committed records are never discarded to make room: whoever wants them opens it.
        return Err(refuse(
            None,
            format!(
                "it holds {} unread record{} ({} bytes); open it to receive them, or remove it \
                 with `shmchan rm`",
                info.len,
                if info.len == 1 { "" } else { "s" },
                info.len as u64 * u64::from(info.record.size),
            ),
        ));
    }
    if let Some((pid, reason)) = backing.in_use(info.creator_pid, info.creator_pidns, what)? {
        return Err(refuse(pid, reason));
    }
    remove(backing).map_err(|e| match e {
        OpenError::UnboundDoorbell { .. } => refuse(None, format!("{e}; not reclaimed")),
        e => e,
    })
}
