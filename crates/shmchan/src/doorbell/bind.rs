//! Binding a channel's doorbell objects to the channel, so that nothing outside the channel is
//! ever removed, posted to or waited on because a segment says so.
//!
//! A segment names its doorbell objects (a semid, a msqid, POSIX names), and whoever can write
//! the segment can write any name there: a channel crafted by one user could name another
//! user's semaphore set, and a process with more rights (root running `shmchan rm`, a service
//! opening the channel) would then act on it. So every name read from a segment is a *claim*,
//! and two things must vouch for it before the object is used or removed:
//!
//! - **The kernel, for the owner.** The channel's memory has an owner the kernel reports and
//!   nobody can forge ([`Vouched`]): the creator uid of a SysV segment (`IPC_STAT`
//!   `shm_perm.cuid`), the owner of a channel file or memfd (`fstat` of the descriptor that was
//!   mapped or read). An object is bound to the channel only if the kernel says that same uid
//!   made it and owns it: a SysV set or queue's `cuid` and `uid` (`IPC_STAT`), a named
//!   semaphore's file under `/dev/shm` (`stat`), a POSIX queue's descriptor (`fstat`). A segment
//!   crafted by `nobody` is `nobody`'s, so it can only ever bind `nobody`'s objects.
//! - **The channel's identity, for the object.** The creator draws a random 64-bit identity
//!   (`getrandom`; [`fresh_identity`]), stores it in the segment, and builds it into every object
//!   it creates: the SysV key of its set or queue (created `IPC_CREAT | IPC_EXCL` at
//!   [`sysv_key`], never `IPC_PRIVATE`) and the POSIX names ([`posix_name`]). An object whose
//!   key or name does not carry the identity the segment states is not the channel's. Keys and
//!   names are world-readable (`/proc/sysvipc`, `/dev/shm`, `/dev/mqueue`), so the identity is
//!   not a secret: it stops garbage and same-user accidents (a stale id reused by another
//!   object), and the owner check stops everything across users.
//!
//! A channel whose memory has no owner the kernel can report (anonymous memory, memory the
//! caller mapped: [`Vouched::Unknown`]) binds only objects of the caller's own effective uid,
//! and its objects are removed only by the process that created them (which keeps their names
//! in its own memory, not in the segment).

use shmchan_os as os;

use crate::error::OpenError;

/// Who the kernel says a channel's memory belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vouched {
    /// This uid: the creator of the SysV segment, the owner of the file or memfd.
    Uid(u32),
    /// Nobody vouches (anonymous or caller-provided memory).
    Unknown,
}

impl Vouched {
    /// The uid that doorbell objects must belong to before they are *used* (posted to, waited
    /// on): the vouched owner, or else the caller's own effective uid.
    pub(crate) fn user(self) -> u32 {
        match self {
            Vouched::Uid(uid) => uid,
            Vouched::Unknown => os::identity::geteuid(),
        }
    }

    /// The uid that doorbell objects must belong to before they are *removed*: only a vouched
    /// owner (for memory nobody vouches for, only its creating process removes, from its own
    /// record of what it created).
    pub(crate) fn remover(self) -> Option<u32> {
        match self {
            Vouched::Uid(uid) => Some(uid),
            Vouched::Unknown => None,
        }
    }
}

/// Why a doorbell object a segment names is not bound to the channel (it is left alone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unbound {
    /// The object, described (`SysV semaphore set semid 5`).
    pub object: String,
    /// Why it is not the channel's.
    pub reason: String,
}

impl Unbound {
    /// The error that refuses the channel at `what` (its backing) for this object.
    pub(crate) fn into_error(self, what: &str) -> OpenError {
        OpenError::UnboundDoorbell {
            what: what.to_owned(),
            object: self.object,
            reason: self.reason,
        }
    }
}

/// How often creation draws a new identity when its key or name is taken.
const CREATE_TRIES: usize = 16;

/// A fresh channel identity: 64 random bits whose low 32 bits (the SysV key, [`sysv_key`]) are
/// neither 0 (`IPC_PRIVATE`) nor -1; and that key.
pub(crate) fn fresh_identity() -> Result<(u64, os::Key), os::Error> {
    loop {
        let mut b = [0u8; 8];
        os::identity::getrandom(&mut b)?;
        let id = u64::from_le_bytes(b);
        if let Some(key) = sysv_key(id) {
            return Ok((id, key));
        }
    }
}

/// Runs `create` with fresh identities (and their keys) until it does not fail with "already
/// exists" (a key or name collision), a few times at most.
pub(crate) fn with_fresh_identity<T>(
    mut create: impl FnMut(u64, os::Key) -> Result<T, os::Error>,
) -> Result<T, os::Error> {
    let mut tries = 0;
    loop {
        let (identity, key) = fresh_identity()?;
        match create(identity, key) {
            Err(e) if e.kind() == os::ErrorKind::AlreadyExists && tries + 1 < CREATE_TRIES => {
                tries += 1;
            }
            r => return r,
        }
    }
}

/// The SysV key that the objects of the channel with `identity` are created at: its low 32
/// bits, unless those are 0 (`IPC_PRIVATE`, which every private object has) or -1.
pub(crate) fn sysv_key(identity: u64) -> Option<os::Key> {
    let k = identity as u32 as i32;
    (k != 0 && k != -1).then(|| os::Key::new(k))
}

/// The name of the POSIX object of direction `dir` (0 data, 1 room) of the channel with
/// `identity`: `/shmchan-TAG-PID-IDENTITY-d|r` (the pid only helps a reader find a process's
/// leftovers; the identity is what binds).
pub(crate) fn posix_name(tag: &str, identity: u64, dir: usize) -> String {
    format!(
        "/shmchan-{tag}-{}-{identity:016x}-{}",
        std::process::id(),
        DIR_LETTER[dir & 1]
    )
}

const DIR_LETTER: [char; 2] = ['d', 'r'];

/// Checks that `name` is a name [`posix_name`] gives for `tag`, `identity` and `dir` (any pid):
/// it then also has no slash after the first and no `..`, whatever the segment said.
pub(crate) fn check_posix_name(
    name: &str,
    tag: &str,
    identity: u64,
    dir: usize,
) -> Result<(), String> {
    if identity == 0 {
        return Err(
            "the channel states no identity (a segment made by an older shmchan, or overwritten)"
                .into(),
        );
    }
    let suffix = format!("-{identity:016x}-{}", DIR_LETTER[dir & 1]);
    let pid = name
        .strip_prefix("/shmchan-")
        .and_then(|n| n.strip_prefix(tag))
        .and_then(|n| n.strip_prefix('-'))
        .and_then(|n| n.strip_suffix(suffix.as_str()));
    match pid {
        Some(p) if !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(())
        }
        _ => Err(format!(
            "its name does not carry the channel's identity {identity:016x}"
        )),
    }
}

/// Checks a SysV object's `IPC_STAT` facts against the channel: created at the channel's key,
/// and created and owned by the channel's owner.
pub(crate) fn check_sysv(
    key: os::Key,
    cuid: u32,
    uid: u32,
    identity: u64,
    owner: u32,
) -> Result<(), String> {
    match sysv_key(identity) {
        None => {
            return Err(format!(
                "the channel states no usable identity ({identity:#x}: its key would be {})",
                os::Key::new(identity as u32 as i32)
            ))
        }
        Some(k) if k != key => {
            return Err(format!(
                "its key is {key}, not {k}, the key of the channel's identity (another object: \
                 the channel's own was removed and its id reused, or the segment was overwritten)"
            ))
        }
        Some(_) => {}
    }
    check_owner(cuid, uid, owner)
}

/// Checks that an object was created by (`creator`) and belongs to (`uid`) the channel's owner.
pub(crate) fn check_owner(creator: u32, uid: u32, owner: u32) -> Result<(), String> {
    if creator != owner || uid != owner {
        let whose = if creator == uid {
            format!("uid {uid}")
        } else {
            format!("uid {uid} (created by uid {creator})")
        };
        return Err(format!(
            "it belongs to {whose}, not to the channel's owner uid {owner}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_identity() {
        let id = 0x0123_4567_89ab_cdef;
        let n = posix_name("sem", id, 0);
        assert!(n.ends_with("-0123456789abcdef-d"), "{n}");
        assert!(n.len() < 60);
        assert_eq!(check_posix_name(&n, "sem", id, 0), Ok(()));
        assert!(check_posix_name(&n, "sem", id, 1).is_err());
        assert!(check_posix_name(&n, "mq", id, 0).is_err());
        assert!(check_posix_name(&n, "sem", id ^ 1, 0).is_err());
        assert!(check_posix_name(&posix_name("mq", id, 1), "mq", id, 1).is_ok());
        for bad in [
            "/shmchan-sem--0123456789abcdef-d",
            "/shmchan-sem-1/2-0123456789abcdef-d",
            "/shmchan-sem-..-0123456789abcdef-d",
            "shmchan-sem-1-0123456789abcdef-d",
            "/shmchan-sem-12345678901-0123456789abcdef-d",
            "/victim",
            "",
        ] {
            assert!(check_posix_name(bad, "sem", id, 0).is_err(), "{bad}");
        }
        assert!(check_posix_name("/x", "sem", 0, 0)
            .unwrap_err()
            .contains("no identity"));
        // Identity 0 binds nothing, even a name made for it.
        let zero = posix_name("sem", 0, 0);
        assert!(check_posix_name(&zero, "sem", 0, 0).is_err(), "{zero}");
    }

    #[test]
    fn keys_are_never_private() {
        assert_eq!(sysv_key(0), None);
        assert_eq!(sysv_key(0xffff_ffff_0000_0000), None);
        assert_eq!(sysv_key(0x1_ffff_ffff), None);
        assert_eq!(sysv_key(0x1234_5678_0000_0042), Some(os::Key::new(0x42)));
        for _ in 0..100 {
            let (id, key) = fresh_identity().unwrap();
            assert_eq!(sysv_key(id), Some(key));
        }
    }

    #[test]
    fn sysv_facts() {
        let id = 0x77;
        let k = os::Key::new(0x77);
        assert_eq!(check_sysv(k, 5, 5, id, 5), Ok(()));
        assert!(check_sysv(k, 0, 0, id, 5).unwrap_err().contains("uid 0"));
        assert!(check_sysv(k, 5, 0, id, 5).is_err());
        assert!(check_sysv(k, 0, 5, id, 5).is_err());
        assert!(check_sysv(os::Key::PRIVATE, 5, 5, id, 5)
            .unwrap_err()
            .contains("key"));
        assert!(check_sysv(os::Key::PRIVATE, 5, 5, 0, 5).is_err());
    }
}
