//! The kernel's IPC limits, read from `/proc/sys/kernel/*`, `/proc/sys/fs/mqueue/*` and
//! `getrlimit(RLIMIT_MSGQUEUE)`.
//!
//! Every function returns `None` when the value cannot be read (no `/proc`, an unexpected
//! format). The values belong to the caller's IPC namespace and can change at any time
//! (`sysctl -w`), so read them when you need them. Errors of this crate quote them in their
//! hints.
//!
//! ```
//! use shmchan_os::limits;
//!
//! if let Some(msgmax) = limits::msgmax() {
//!     assert!(msgmax > 0);
//! }
//! ```

fn read_u64s(path: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace().map(|s| s.parse().ok()).collect()
}

fn read_u64(path: &str) -> Option<u64> {
    match read_u64s(path)?.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

/// `kernel.msgmax`: the largest SysV message, in bytes.
pub fn msgmax() -> Option<u64> {
    read_u64("/proc/sys/kernel/msgmax")
}

/// `kernel.msgmnb`: the default capacity of a new SysV message queue, in bytes.
pub fn msgmnb() -> Option<u64> {
    read_u64("/proc/sys/kernel/msgmnb")
}

/// `kernel.msgmni`: the most SysV message queues in the system.
pub fn msgmni() -> Option<u64> {
    read_u64("/proc/sys/kernel/msgmni")
}

/// `kernel.shmmax`: the largest SysV shared memory segment, in bytes.
pub fn shmmax() -> Option<u64> {
    read_u64("/proc/sys/kernel/shmmax")
}

/// `kernel.shmall`: the most SysV shared memory in the system, in pages.
pub fn shmall() -> Option<u64> {
    read_u64("/proc/sys/kernel/shmall")
}

/// `kernel.shmmni`: the most SysV shared memory segments in the system.
pub fn shmmni() -> Option<u64> {
    read_u64("/proc/sys/kernel/shmmni")
}

/// The four SysV semaphore limits of `kernel.sem`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SemLimits {
    /// The most semaphores in one set.
    pub semmsl: u64,
    /// The most semaphores in the system.
    pub semmns: u64,
    /// The most operations in one `semop` call.
    pub semopm: u64,
    /// The most semaphore sets in the system.
    pub semmni: u64,
}

/// `kernel.sem`: `semmsl semmns semopm semmni`.
pub fn sem() -> Option<SemLimits> {
    match read_u64s("/proc/sys/kernel/sem")?.as_slice() {
        [semmsl, semmns, semopm, semmni] => Some(SemLimits {
            semmsl: *semmsl,
            semmns: *semmns,
            semopm: *semopm,
            semmni: *semmni,
        }),
        _ => None,
    }
}

/// `fs.mqueue.msg_max`: the most messages a POSIX queue may hold (`mq_maxmsg` ceiling for
/// processes without `CAP_SYS_RESOURCE`).
pub fn mq_msg_max() -> Option<u64> {
    read_u64("/proc/sys/fs/mqueue/msg_max")
}

/// `fs.mqueue.msgsize_max`: the largest POSIX message (`mq_msgsize` ceiling for processes
/// without `CAP_SYS_RESOURCE`).
pub fn mq_msgsize_max() -> Option<u64> {
    read_u64("/proc/sys/fs/mqueue/msgsize_max")
}

/// `fs.mqueue.queues_max`: the most POSIX message queues in the system.
pub fn mq_queues_max() -> Option<u64> {
    read_u64("/proc/sys/fs/mqueue/queues_max")
}

/// The soft `RLIMIT_MSGQUEUE` of this process: bytes of POSIX queues its user may create.
pub fn rlimit_msgqueue() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit; getrlimit writes only into it.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut lim) };
    crate::error::check(ret).ok()?;
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_are_readable_here() {
        assert!(super::msgmax().is_some());
        assert!(super::shmmni().is_some());
        let sem = super::sem().unwrap();
        assert!(sem.semmsl > 0 && sem.semopm > 0);
        assert!(super::mq_msg_max().is_some());
        assert!(super::rlimit_msgqueue().is_some());
    }
}
