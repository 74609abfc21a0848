//! What this crate's two-CPU benches share.

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Pins the calling thread (or process) to `cpu`. Fewer than two CPUs: it runs unpinned (the
/// figures then say little).
pub fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

/// The names the bench was asked for: its first argument that is not a flag (`cargo bench`
/// passes `--bench`), split at commas; empty when there is none (everything runs).
pub fn only() -> Vec<String> {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}
