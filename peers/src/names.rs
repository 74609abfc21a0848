//! Unique names for the files and shared-memory objects the peers create, and their removal.
//!
//! Every name is `shmchan-peers-PID-N-tag` (N counts up within a run), so that runs side by side
//! never meet. A [`Litter`] made in the parent before a measurement's processes are forked
//! removes, when dropped (after the children are reaped, whether the measurement succeeded,
//! failed, timed out or was interrupted), every path it names and every `/dev/shm` entry that
//! starts with one of its prefixes: what a child killed before its own cleanup left behind.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other run (and no other object of this run) uses: `shmchan-peers-PID-N-tag`.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("shmchan-peers-{}-{n}-{tag}", std::process::id())
}

/// What a measurement may leave behind, removed on drop.
#[derive(Default)]
pub struct Litter {
    paths: Vec<PathBuf>,
    shm_prefixes: Vec<String>,
}

impl Litter {
    /// Nothing yet.
    pub fn new() -> Litter {
        Litter::default()
    }

    /// A file or directory (removed recursively).
    pub fn path(&mut self, p: impl Into<PathBuf>) -> &mut Litter {
        self.paths.push(p.into());
        self
    }

    /// Every `/dev/shm` entry whose name starts with `prefix`.
    pub fn shm_prefix(&mut self, prefix: impl Into<String>) -> &mut Litter {
        self.shm_prefixes.push(prefix.into());
        self
    }
}

impl Drop for Litter {
    fn drop(&mut self) {
        for p in &self.paths {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
        if self.shm_prefixes.is_empty() {
            return;
        }
        let Ok(dir) = std::fs::read_dir("/dev/shm") else {
            return;
        };
        for e in dir.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if self
                .shm_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str()))
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
