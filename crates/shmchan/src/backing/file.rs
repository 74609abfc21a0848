//! A file-backed `MAP_SHARED` mapping: found by its path; it lives as long as the file, so a
//! channel's unread records survive every process exiting (`msync` on request).

use std::path::{Path, PathBuf};

use shmchan_os as os;

use super::{Cleanup, Mapping, Owner};
use crate::error::{os_error, OpenError};

/// Creates (exclusively), sizes and maps the file.
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
    let map = os::SharedMapping::create_file(path, len, os::Mode::from_bits(mode))
        .map_err(|e| os_error(e, what))?;
    let owner = match cleanup {
        Cleanup::Creator => Owner::File(PathBuf::from(path)),
        _ => Owner::Nothing,
    };
    Ok((Mapping::File { map }, owner))
}

/// Maps an existing file.
pub(super) fn open(path: &Path, what: &str) -> Result<Mapping, OpenError> {
    let map = os::SharedMapping::open_file(path).map_err(|e| os_error(e, what))?;
    Ok(Mapping::File { map })
}

/// Reads the whole file (for inspection; never mapped), and its owner's uid (`fstat` of the
/// descriptor read, so of the very file the bytes came from).
pub(super) fn read(path: &Path) -> Result<(Vec<u8>, u32), OpenError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let what = format!("file {}", path.display());
    let err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => OpenError::NotFound { what: what.clone() },
        _ => OpenError::InvalidConfig {
            reason: format!("{what}: {e}"),
        },
    };
    let mut file = std::fs::File::open(path).map_err(err)?;
    let owner = file.metadata().map_err(err)?.uid();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(err)?;
    Ok((bytes, owner))
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

/// Whether the channel's creator still maps the file: a process may hold the channel without
/// an endpoint (a `Channel` value), and the creator is the one that does. Whether it still maps
/// the file is exact (/proc/PID/maps), unlike a counter that a killed process never decrements.
pub(super) fn in_use(creator: u32, path: &Path) -> Option<(Option<u32>, String)> {
    (creator != 0 && maps_file(creator, path))
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
