//! Shared memory mappings (`mmap` with `MAP_SHARED`): anonymous (shared with `fork`ed children),
//! of a file (shared by path, persistent), or of any descriptor (a `memfd` received from a peer).
//!
//! A [`SharedMapping`] owns the mapping and unmaps it on drop. It hands out only a raw pointer:
//! other processes write the same memory, so access is the caller's `unsafe` business (atomics,
//! or data the protocol declares stable). For a file, the mapping keeps working after the
//! descriptor is closed and after the file is unlinked; a file *truncated* under a mapping makes
//! access past its new end fault with `SIGBUS`, which is why [`SharedMapping::open_file`] takes the
//! length from `fstat` at open and refuses empty files.
//!
//! ```
//! use shmchan_os::SharedMapping;
//!
//! let map = SharedMapping::anonymous(4096)?;
//! // SAFETY: 4096 writable bytes; nobody else uses them yet.
//! unsafe { map.as_ptr().as_ptr().write_bytes(0xAB, map.len()) };
//! # Ok::<(), shmchan_os::Error>(())
//! ```

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, MsFlags, ProtFlags};

use crate::error::{Error, Result};
use crate::key::Mode;

/// How [`SharedMapping::msync`] writes dirty pages back to the file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MsyncMode {
    /// `MS_SYNC`: return when the pages are written.
    Sync,
    /// `MS_ASYNC`: schedule the write-back and return.
    Async,
}

/// A `MAP_SHARED`, read-write mapping; unmapped on drop.
///
/// ```
/// use std::os::fd::AsFd;
/// use shmchan_os::SharedMapping;
///
/// // Any read-write descriptor: here a temporary file, sized first.
/// let path = std::env::temp_dir().join(format!("shmchan-os-doc-fd-{}", std::process::id()));
/// let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
/// std::fs::remove_file(&path).unwrap(); // the mapping needs the inode, not the name
/// file.set_len(4096).unwrap();
/// let map = SharedMapping::from_fd(file.as_fd(), 4096)?;
/// drop(file); // the mapping outlives the descriptor
/// assert_eq!(map.len(), 4096);
/// # Ok::<(), shmchan_os::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is process-wide memory, valid from any thread; the handle hands out only
// raw pointers, so moving or sharing it grants no unsynchronised access by itself.
unsafe impl Send for SharedMapping {}
// SAFETY: as for Send: `&SharedMapping` exposes only the address and the length.
unsafe impl Sync for SharedMapping {}

fn nonzero(op: &'static str, args: &dyn Fn() -> String, len: usize) -> Result<NonZeroUsize> {
    NonZeroUsize::new(len).ok_or_else(|| {
        Error::new(op, args(), Errno::EINVAL).with_hint("a mapping must be at least 1 byte long")
    })
}

/// Removes a file this module created if setting it up fails later.
struct CreatedFile<'a>(Option<&'a Path>);

impl Drop for CreatedFile<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl SharedMapping {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)`: zeroed
    /// memory that `fork`ed children share (not reachable by unrelated processes).
    pub fn anonymous(len: usize) -> Result<SharedMapping> {
        let args = || format!("len={len}, flags=MAP_SHARED|MAP_ANONYMOUS");
        let length = nonzero("mmap", &args, len)?;
        // SAFETY: a fresh mapping at an address the kernel chooses; no existing memory changes.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| Error::new("mmap", args(), e))?;
        Ok(SharedMapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Creates the file at `path` (`O_CREAT | O_EXCL`, `mode`), sizes it to `len` bytes with
    /// every block reserved ([`file::set_len_reserved`](crate::file::set_len_reserved):
    /// `ftruncate` and `posix_fallocate`, zeroed) and maps it.
    ///
    /// [`AlreadyExists`](crate::ErrorKind::AlreadyExists) when the path exists;
    /// [`LimitReached`](crate::ErrorKind::LimitReached) (`ENOSPC`) when the filesystem has no room
    /// for `len` bytes — reported here, instead of as a `SIGBUS` when a page is first written.
    /// If sizing or mapping fails, the new file is removed again.
    ///
    /// ```
    /// use shmchan_os::{Mode, MsyncMode, SharedMapping};
    ///
    /// let path = std::env::temp_dir().join(format!("shmchan-os-doc-{}", std::process::id()));
    /// let map = SharedMapping::create_file(&path, 4096, Mode::default())?;
    /// // SAFETY: 4096 writable bytes that nobody else uses yet.
    /// unsafe { map.as_ptr().as_ptr().write(7) };
    /// map.msync(MsyncMode::Sync)?;
    /// drop(map);
    /// let again = SharedMapping::open_file(&path)?;
    /// // SAFETY: the file is 4096 bytes; we wrote its first byte above.
    /// assert_eq!(unsafe { again.as_ptr().as_ptr().read() }, 7);
    /// std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), shmchan_os::Error>(())
    /// ```
    pub fn create_file(path: impl AsRef<Path>, len: usize, mode: Mode) -> Result<SharedMapping> {
        let path = path.as_ref();
        let args = || format!("path={path:?}, len={len}, mode={mode}");
        nonzero("open", &args, len)?;
        let fd = crate::file::create_new(path, mode)?;
        let created = CreatedFile(Some(path));
        crate::file::set_len_reserved(&fd, len, &format!("path={path:?}"))?;
        let map = SharedMapping::from_fd(fd.as_fd(), len)?;
        std::mem::forget(created);
        Ok(map)
    }

    /// Maps the whole existing file at `path`, its length taken from `fstat`.
    ///
    /// The path is opened without blocking (`O_NONBLOCK | O_NOCTTY`, see [`crate::file`]) and
    /// anything but a regular file is refused at once ([`InvalidInput`](crate::ErrorKind::InvalidInput),
    /// naming what it is): a FIFO or a device is never waited on or read. An empty file is
    /// refused too: it is a file that was created but never sized, or truncated.
    pub fn open_file(path: impl AsRef<Path>) -> Result<SharedMapping> {
        SharedMapping::open_file_min_len(path, 1)
    }

    /// Like [`open_file`](SharedMapping::open_file), refusing files shorter than `min_len`
    /// bytes ([`InvalidInput`](crate::ErrorKind::InvalidInput), naming both lengths). Still maps the
    /// whole file.
    pub fn open_file_min_len(path: impl AsRef<Path>, min_len: usize) -> Result<SharedMapping> {
        let path = path.as_ref();
        let fd = crate::file::open_nonblocking(path, crate::shm::Access::ReadWrite)?;
        SharedMapping::map_file(fd.as_fd(), min_len, path)
    }

    /// Maps the whole regular file open read-write at `fd`, its length taken from `fstat`:
    /// the checks of [`open_file_min_len`](SharedMapping::open_file_min_len) (a regular file,
    /// not empty, at least `min_len` bytes: [`InvalidInput`](crate::ErrorKind::InvalidInput)
    /// otherwise) for a descriptor the caller opened and keeps (to `fstat` it later). `path`
    /// names the file in errors.
    pub fn map_file(fd: BorrowedFd<'_>, min_len: usize, path: &Path) -> Result<SharedMapping> {
        let args = || format!("path={path:?}");
        let st = crate::file::fstat(fd)?;
        if st.file_type != crate::file::FileType::Regular {
            return Err(Error::new("mmap", args(), Errno::EINVAL).with_hint(format!(
                "{} is {}, not a regular file",
                path.display(),
                st.file_type.with_article()
            )));
        }
        let size = usize::try_from(st.size).unwrap_or(0);
        if size == 0 {
            return Err(Error::new("mmap", args(), Errno::EINVAL)
                .with_hint("the file is 0 bytes long (created but not sized yet, or truncated)"));
        }
        if size < min_len {
            return Err(Error::new("mmap", args(), Errno::EINVAL).with_hint(format!(
                "the file is {size} bytes long, shorter than the {min_len} bytes required"
            )));
        }
        SharedMapping::from_fd(fd, size)
    }

    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`: maps the first `len` bytes
    /// of an open descriptor (a file, a `memfd`). The mapping outlives the descriptor.
    ///
    /// The descriptor must be open read-write. Accessing pages past the end of the underlying
    /// file faults (`SIGBUS`); size the file first.
    pub fn from_fd(fd: BorrowedFd<'_>, len: usize) -> Result<SharedMapping> {
        let args = || format!("fd={}, len={len}, flags=MAP_SHARED", fd.as_raw_fd());
        let length = nonzero("mmap", &args, len)?;
        // SAFETY: a fresh mapping at an address the kernel chooses; no existing memory changes.
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| Error::new("mmap", args(), e))?;
        Ok(SharedMapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The first byte of the mapping (page-aligned).
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: empty mappings are refused.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `msync`: writes dirty pages back to the file (a no-op for anonymous mappings).
    pub fn msync(&self, mode: MsyncMode) -> Result<()> {
        let flags = match mode {
            MsyncMode::Sync => MsFlags::MS_SYNC,
            MsyncMode::Async => MsFlags::MS_ASYNC,
        };
        // SAFETY: `ptr`/`len` describe exactly this live mapping.
        unsafe { nix::sys::mman::msync(self.ptr.cast(), self.len, flags) }.map_err(|e| {
            Error::new(
                "msync",
                format!("addr={:p}, len={}, mode={mode:?}", self.ptr, self.len),
                e,
            )
        })
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value owns and nobody unmapped before.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) };
    }
}
