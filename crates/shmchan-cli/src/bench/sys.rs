//! What the header says about the machine: CPU, kernel, CPUs and pinning, IPC limits; plus
//! unique names for the kernel objects a run creates and the Ctrl-C flag.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use nix::sched::{sched_getaffinity, CpuSet};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{sysconf, Pid, SysconfVar};
use shmchan_os::limits;

use super::Error;

/// The machine a run measures.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// `uname -r`.
    pub kernel: String,
    /// CPUs online.
    pub online: usize,
    /// CPUs this process may run on (its affinity mask).
    pub allowed: Vec<usize>,
    /// Where the two processes of a measurement run.
    pub pinning: Pinning,
}

/// The CPUs of the two processes of every measurement.
#[derive(Debug, Clone, Copy)]
pub struct Pinning {
    /// Producer / pinger CPU (`None`: not pinned).
    pub first: Option<usize>,
    /// Consumer / echoer CPU.
    pub second: Option<usize>,
}

impl Pinning {
    /// `[first, second]`.
    pub fn cpus(&self) -> [Option<usize>; 2] {
        [self.first, self.second]
    }

    /// One line for the header.
    pub fn describe(&self, m: &Machine) -> String {
        match (self.first, self.second) {
            (Some(a), Some(b)) => format!(
                "producer/pinger pinned to CPU {a}, consumer/echoer to CPU {b} (sched_setaffinity)"
            ),
            _ => format!(
                "NOT pinned: only {} CPU(s) available to this process, both sides share it",
                m.allowed.len()
            ),
        }
    }
}

/// The kernel IPC limits the baselines run under (read from `/proc`; `null` in the JSON
/// report when unreadable).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Limits {
    /// `kernel.msgmax`: largest SysV message.
    pub msgmax: Option<u64>,
    /// `kernel.msgmnb`: bytes a SysV queue holds.
    pub msgmnb: Option<u64>,
    /// `fs.mqueue.msg_max`: messages a POSIX queue holds.
    pub mq_msg_max: Option<u64>,
    /// `fs.mqueue.msgsize_max`: largest POSIX message.
    pub mq_msgsize_max: Option<u64>,
}

impl Limits {
    /// Reads them now.
    pub fn read() -> Limits {
        Limits {
            msgmax: limits::msgmax(),
            msgmnb: limits::msgmnb(),
            mq_msg_max: limits::mq_msg_max(),
            mq_msgsize_max: limits::mq_msgsize_max(),
        }
    }

    /// One line for the header.
    pub fn describe(&self) -> String {
        let f = |v: Option<u64>, unit: &str| match v {
            Some(v) => format!("{v}{unit}"),
            None => "unreadable".to_owned(),
        };
        format!(
            "msgmax {}, msgmnb {}, mq msg_max {}, mq msgsize_max {}",
            f(self.msgmax, " B"),
            f(self.msgmnb, " B"),
            f(self.mq_msg_max, ""),
            f(self.mq_msgsize_max, " B")
        )
    }
}

fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    for key in ["model name", "Model", "Hardware", "cpu model", "Processor"] {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(':') {
                if k.trim() == key && !v.trim().is_empty() {
                    return v.trim().to_owned();
                }
            }
        }
    }
    "unknown CPU".to_owned()
}

impl Machine {
    /// Looks at this machine and plans the pinning: the first two CPUs of our affinity mask.
    pub fn probe() -> Machine {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown kernel".to_owned());
        let online = sysconf(SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .unwrap_or(0);
        let allowed: Vec<usize> = match sched_getaffinity(Pid::from_raw(0)) {
            Ok(set) => (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect(),
            Err(_) => Vec::new(),
        };
        let pinning = match allowed.as_slice() {
            [a, b, ..] => Pinning {
                first: Some(*a),
                second: Some(*b),
            },
            _ => Pinning {
                first: None,
                second: None,
            },
        };
        Machine {
            cpu: cpu_model(),
            kernel,
            online: usize::try_from(online).unwrap_or(0),
            allowed,
            pinning,
        }
    }
}

/// Pins the calling process to one CPU.
pub fn pin_to(cpu: usize) -> Result<(), Error> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .map_err(|source| Error::CpuSet { cpu, source })?;
    nix::sched::sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(|source| Error::Pin { cpu, source })
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`): how much else wanted the CPUs.
pub fn loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other run (and no other object of this run) uses: `shmchan-bench-PID-N-tag`.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("shmchan-bench-{}-{n}-{tag}", std::process::id())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: std::ffi::c_int) {
    // Async-signal-safe: one atomic store.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Turns SIGINT/SIGTERM into a flag, so that a run that is interrupted kills its children and
/// removes its kernel objects instead of leaking them. The children inherit the handler and
/// keep running until the supervisor kills them.
pub fn catch_interrupts() {
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(), // no SA_RESTART: the supervisor's poll returns EINTR at once
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; nothing
        // else in this process installed a handler for these signals.
        let _ = unsafe { sigaction(sig, &act) };
    }
}

/// Whether SIGINT/SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
