//! SysV shared memory (`shmget`): found by a key (`ftok(path, proj)` or a number) or by its
//! shmid; it persists in the kernel until removed (`IPC_RMID`; with
//! [`Cleanup::LastDetach`], at once, so that the kernel frees it at
//! the last detach).

use shmchan_os as os;

use super::{Cleanup, Kind, Mapping, Owner};
use crate::doorbell::Vouched;
use crate::error::{os_error, OpenError};
use crate::life::Probe;

/// The key of a key-named SysV backing.
///
/// Key 0 is `IPC_PRIVATE`: a segment nobody else can find by it. It is refused, pointing to
/// [`Backing::sysv_private`](crate::Backing::sysv_private), which says so. `ftok` derives a
/// key from an existing path's inode: a missing path is `NotFound`, saying so.
pub(super) fn key(kind: &Kind) -> Result<os::Key, OpenError> {
    Ok(match kind {
        Kind::SysvKey(0) => {
            return Err(OpenError::InvalidConfig {
                reason: "SysV key 0 is IPC_PRIVATE: no other process can open a channel by it; \
                         use Backing::sysv_private() and hand the shmid over (Backing::sysv_id)"
                    .into(),
            })
        }
        Kind::SysvKey(k) => os::Key::new(*k),
        Kind::SysvPath(p, proj) => os::ftok(p, *proj).map_err(|e| {
            let what = if e.kind() == os::ErrorKind::NotFound {
                format!(
                    "ftok path {} (it does not exist: ftok derives the key from an existing \
                     file's inode)",
                    p.display()
                )
            } else {
                format!("ftok path {}", p.display())
            };
            os_error(e, &what)
        })?,
        Kind::SysvPrivate => os::Key::PRIVATE,
        _ => unreachable!("sysv_key on a non-key backing"),
    })
}

/// The key to create a channel at: as [`key`], but a missing ftok path is a setting to fix
/// (create the file first), not a channel that is not there.
pub(super) fn key_to_create(kind: &Kind) -> Result<os::Key, OpenError> {
    key(kind).map_err(|e| match (kind, e) {
        (Kind::SysvPath(p, _), OpenError::NotFound { .. }) => OpenError::InvalidConfig {
            reason: format!(
                "ftok path {} does not exist: a SysV path backing derives its key from an \
                 existing file's inode (create the file first)",
                p.display()
            ),
        },
        (_, e) => e,
    })
}

/// Creates (exclusively) and attaches a segment of `len` bytes at `key`.
pub(super) fn create(
    key: os::Key,
    len: usize,
    mode: u32,
    cleanup: Cleanup,
    what: &str,
) -> Result<(Mapping, Owner), OpenError> {
    let id =
        os::ShmId::create(key, len, os::Mode::from_bits(mode)).map_err(|e| os_error(e, what))?;
    // Own the id until the mapping exists, so a failed attach leaks nothing.
    let guard = os::OwnedShmId::new(id);
    let attachment = id
        .attach(os::Access::ReadWrite)
        .map_err(|e| os_error(e, what))?;
    let owner = match cleanup {
        Cleanup::LastDetach => {
            id.remove().map_err(|e| os_error(e, what))?;
            Owner::Nothing
        }
        Cleanup::Creator | Cleanup::WhenDrained => Owner::SysvSegment(id),
        Cleanup::Keep => Owner::Nothing,
    };
    guard.into_inner();
    Ok((Mapping::Sysv { attachment, id }, owner))
}

/// Attaches an existing segment read-write.
pub(super) fn attach(id: os::ShmId, what: &str) -> Result<Mapping, OpenError> {
    let attachment = id
        .attach(os::Access::ReadWrite)
        .map_err(|e| os_error(e, what))?;
    Ok(Mapping::Sysv { attachment, id })
}

/// Attaches the segment read-only for as long as `f` reads it, and tells `f` who created it
/// (`IPC_STAT` while attached, so of the very segment read).
pub(super) fn read_with<R>(
    id: os::ShmId,
    what: &str,
    f: impl FnOnce(&[u8], Vouched, Probe<'_>) -> R,
) -> Result<R, OpenError> {
    let a = id
        .attach(os::Access::ReadOnly)
        .map_err(|e| os_error(e, what))?;
    let creator = id.stat().map_err(|e| os_error(e, what))?.cuid;
    // SAFETY: the attachment maps `len()` readable bytes and lives until the end of this
    // function; the slice is only read by `f`, and does not outlive the attachment (`f`
    // returns an owned `R`, which cannot borrow it). Other processes may write the memory
    // meanwhile; a reader that copies it may then see it inconsistent, which validation
    // reports.
    let bytes = unsafe { std::slice::from_raw_parts(a.as_ptr().as_ptr(), a.len()) };
    let probe = Probe::Shm {
        shmid: id.raw(),
        owner: creator,
    };
    Ok(f(bytes, Vouched::Uid(creator), probe))
}

/// How long [`in_use`] waits for a segment's attachments to go before it calls the segment in
/// use: a process that only looks (an inspection, `shmchan ls`, `prune_orphans` reading the
/// life set a segment records) is attached for microseconds, and must not make a reclaim that
/// runs meanwhile fail.
const LOOKER_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether processes are attached to the segment at `key` (the kernel's count is exact, even
/// after `kill -9`) for longer than [`LOOKER_GRACE`]: the last one to attach or detach, and
/// how many.
pub(super) fn in_use(key: os::Key, what: &str) -> Result<Option<(Option<u32>, String)>, OpenError> {
    let id = os::ShmId::open(key).map_err(|e| os_error(e, what))?;
    let until = std::time::Instant::now() + LOOKER_GRACE;
    let mut nap = std::time::Duration::from_micros(200);
    let st = loop {
        let st = id.stat().map_err(|e| os_error(e, what))?;
        if st.nattch == 0 {
            return Ok(None);
        }
        if std::time::Instant::now() >= until {
            break st;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(std::time::Duration::from_millis(10));
    };
    let pid = u32::try_from(st.lpid).ok().filter(|&p| p > 0);
    Ok(Some((
        pid,
        format!("{} process(es) are attached", st.nattch),
    )))
}
