//! A file-backed `MAP_SHARED` mapping: found by its path; it lives as long as the file, so a
//! channel's unread records survive every process exiting (`msync` on request).
//!
//! A path is whatever the filesystem says it is, and the file is shared with processes we do
//! not trust:
//!
//! - every open is non-blocking (`O_NONBLOCK | O_NOCTTY`, see `shmchan_os::file`) and anything
//!   but a regular file is refused at once ([`OpenError::NotAFile`]): a FIFO is never waited
//!   on, `/dev/zero` never read;
//! - inspection reads the ring header first (128 bytes) and reads on only if it is a channel's,
//!   never past the file's length;
//! - creation reserves every block (`posix_fallocate`), so a full filesystem is `ENOSPC` at
//!   creation (the half-created file removed) rather than a `SIGBUS` when a page is first
//!   written;
//! - the descriptor stays open with the mapping, and the slow path (`Mapping::check`, once per
//!   time slice of a waiting endpoint) compares the file's length with the mapping's: a file
//!   that another process shrank is reported before a waiter touches the lost pages.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use shmchan_os as os;
use shmchan_ring as ring;

use super::{Cleanup, Mapping, Owner};
use crate::error::{os_error, OpenError};

/// How many bytes inspection reads before it knows whether a file holds a channel: the ring
/// header.
const HEADER: usize = 128;

/// Removes a file this module created if setting it up fails later.
struct Unlink<'a>(Option<&'a Path>);

impl Drop for Unlink<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Creates (exclusively), sizes with every block reserved, and maps the file.
pub(super) fn create(
    path: &Path,
    len: usize,
    mode: u32,
    cleanup: Cleanup,
    what: &str,
) -> Result<(Mapping, Owner), OpenError> {
    if cleanup == Cleanup::LastDetach {
        return Err(OpenError::InvalidConfig {
            reason: "Cleanup::LastDetach needs a SysV backing; a file has no last-detach removal"
                .into(),
        });
    }
    let fd = os::file::create_new(path, os::Mode::from_bits(mode)).map_err(|e| {
        match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) if e.kind() == os::ErrorKind::NotFound && !dir.is_dir() => {
                OpenError::InvalidConfig {
                    reason: format!(
                        "cannot create {what}: its directory {} does not exist",
                        dir.display()
                    ),
                }
            }
            _ => os_error(e, what),
        }
    })?;
    let mut created = Unlink(Some(path));
    os::file::set_len_reserved(&fd, len, what).map_err(|e| os_error(e, what))?;
    let map = os::SharedMapping::from_fd(fd.as_fd(), len).map_err(|e| os_error(e, what))?;
    created.0 = None;
    let owner = match cleanup {
        Cleanup::Creator | Cleanup::WhenDrained => Owner::File(PathBuf::from(path)),
        _ => Owner::Nothing,
    };
    Ok((Mapping::File { map, fd }, owner))
}

/// Opens `path` without blocking and refuses anything but a regular file.
fn open_regular(path: &Path, access: os::Access, what: &str) -> Result<OwnedFd, OpenError> {
    let fd = os::file::open_nonblocking(path, access).map_err(|e| match e.errno() {
        // O_RDWR on a directory.
        os::Errno::EISDIR => OpenError::NotAFile {
            what: what.to_owned(),
            found: os::file::FileType::Directory.with_article(),
        },
        _ => os_error(e, what),
    })?;
    let st = os::file::fstat(&fd).map_err(|e| os_error(e, what))?;
    if st.file_type != os::file::FileType::Regular {
        return Err(OpenError::NotAFile {
            what: what.to_owned(),
            found: st.file_type.with_article(),
        });
    }
    Ok(fd)
}

/// Maps an existing file (a regular file, at least one byte long; an empty one is "not sized
/// yet", which the opener waits out).
pub(super) fn open(path: &Path, what: &str) -> Result<Mapping, OpenError> {
    let fd = open_regular(path, os::Access::ReadWrite, what)?;
    let map = os::SharedMapping::map_file(fd.as_fd(), 1, path).map_err(|e| os_error(e, what))?;
    Ok(Mapping::File { map, fd })
}

/// Reads the file for inspection (never mapped): the ring header first, and the rest (up to
/// the length the header claims, never past the file's end) only if the header is a
/// channel's. Also returns the file's owner (`fstat` of the descriptor read, so of the very
/// file the bytes came from), and that descriptor (which asks for its life-token locks).
pub(super) fn read(path: &Path) -> Result<(Vec<u8>, u32, OwnedFd), OpenError> {
    let what = format!("file {}", path.display());
    let fd = open_regular(path, os::Access::ReadOnly, &what)?;
    let st = os::file::fstat(&fd).map_err(|e| os_error(e, &what))?;
    let (size, owner) = (st.size, st.uid);
    let read = |len: usize| -> Result<Vec<u8>, OpenError> {
        let mut buf = vec![0u8; len];
        let n = os::file::read_at(&fd, &mut buf, 0).map_err(|e| os_error(e, &what))?;
        buf.truncate(n);
        Ok(buf)
    };
    let head = read(usize::try_from(size).unwrap_or(HEADER).min(HEADER))?;
    let bytes = match claimed_len(&head) {
        Some(total) => read(usize::try_from(total.min(size)).unwrap_or(usize::MAX))?,
        None => head,
    };
    Ok((bytes, owner, fd))
}

/// The length a channel's ring header (the first 128 bytes of `head`) claims for the whole
/// segment, when `head` carries the ring's magic: how much more inspection reads. `None` for
/// anything else (inspection then stops at the header: it is not a channel).
fn claimed_len(head: &[u8]) -> Option<u64> {
    #[repr(C, align(128))]
    struct Line([u8; HEADER]);
    if head.len() < HEADER || head[..8] != ring::MAGIC.to_le_bytes() {
        return None;
    }
    let mut line = Line([0; HEADER]);
    line.0.copy_from_slice(&head[..HEADER]);
    let base = std::ptr::NonNull::from(&mut line).cast::<u8>();
    // SAFETY: `line` is HEADER (128) initialised bytes, 128-aligned, alive for the whole call.
    let hdr = unsafe { ring::RawRing::read_header(base, HEADER) }.ok()?;
    Some(hdr.total_len)
}

/// Removes the file.
pub(super) fn unlink(path: &Path, what: String) -> Result<(), OpenError> {
    std::fs::remove_file(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => OpenError::NotFound { what },
        _ => OpenError::InvalidConfig {
            reason: format!("cannot remove {what}: {e}"),
        },
    })
}

/// The slow-path check of a mapped file: `Err` (why) once the file is shorter than the
/// mapping, whose pages past the new end fault with `SIGBUS` when touched.
pub(super) fn check(fd: &OwnedFd, mapped: usize) -> Result<(), String> {
    let st =
        os::file::fstat(fd).map_err(|e| format!("the channel's file cannot be checked: {e}"))?;
    if st.size < mapped as u64 {
        return Err(format!(
            "the channel's file shrank to {} bytes under a mapping of {mapped}: another process \
             truncated it",
            st.size
        ));
    }
    Ok(())
}

/// Whether a process holds the channel: a process may hold it without an endpoint (a
/// `Channel` value). Every process that has it open through shmchan read-locks a byte of the
/// file (`crate::life::ATTACH`), which the kernel drops when it exits, in whatever PID
/// namespace: exact, unlike a counter that a killed process never decrements. A creator that
/// could not take that lock is looked up in /proc/PID/maps, only when its PID namespace
/// (`creator_ns`) is this process's (a pid of another namespace names another process here).
pub(super) fn in_use(creator: u32, creator_ns: u64, path: &Path) -> Option<(Option<u32>, String)> {
    use crate::table::{Liveness, Procfs};
    let what = format!("file {}", path.display());
    if let Ok(fd) = open_regular(path, os::Access::ReadOnly, &what) {
        if crate::life::in_use(fd.as_fd()) == Some(true) {
            return Some((None, "a process has it open (its lock on the file)".into()));
        }
    }
    let same_ns = creator_ns != 0 && Procfs.pidns() == Some(creator_ns);
    (creator != 0 && same_ns && maps_file(creator, path))
        .then(|| (Some(creator), "its creating process still maps it".into()))
}

/// Whether process `pid` has `path` mapped (its device and inode appear in /proc/PID/maps).
fn maps_file(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return false;
    };
    // Each line: "addr perms offset major:minor inode path" (device numbers in hex).
    let (major, minor) = (dev_major(meta.dev()), dev_minor(meta.dev()));
    maps.lines().any(|l| {
        let mut f = l.split_whitespace().skip(3);
        let (Some(dev), Some(ino)) = (f.next(), f.next()) else {
            return false;
        };
        let mut d = dev.split(':');
        let parse = |s: Option<&str>| s.and_then(|x| u64::from_str_radix(x, 16).ok());
        ino.parse::<u64>().ok() == Some(meta.ino())
            && parse(d.next()) == Some(major)
            && parse(d.next()) == Some(minor)
    })
}

/// glibc's `major()` / `minor()` of a `dev_t`.
fn dev_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)
}

fn dev_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)
}
