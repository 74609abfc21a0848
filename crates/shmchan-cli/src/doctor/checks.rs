//! The checks of `shmchan doctor`, one function each, in the order they are shown.

use nix::errno::Errno;
use nix::sys::statvfs::statvfs;
use nix::unistd::{access, sysconf, AccessFlags, SysconfVar};
use shmchan::os::futex::futex_waitv_supported;
use shmchan::os::limits;
use shmchan::os::membarrier::{membarrier_query, MembarrierCmd};

use super::{Finding, Status};
use crate::admin::found::{collect, ShmTable};
use crate::admin::rm::prunable;

/// Every check, in order.
pub fn all() -> Vec<Finding> {
    let mut out = vec![dev_shm()];
    out.extend(sysv_shm());
    out.push(sem());
    out.extend(msg());
    out.extend(mqueue());
    out.push(ipc_namespace());
    out.push(futex_waitv());
    out.push(membarrier());
    out.push(channels());
    out
}

/// Ok below 90 % of the limit, warn from 90 %, fail at the limit.
fn level(used: u64, limit: u64) -> Status {
    if used >= limit {
        Status::Fail
    } else if used.saturating_mul(10) >= limit.saturating_mul(9) {
        Status::Warn
    } else {
        Status::Ok
    }
}

/// `64.0 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else if v >= 1e6 {
        "unlimited".into()
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The mount point and file system type of every mount (`/proc/self/mounts`).
fn mounts() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().skip(1);
            Some((f.next()?.to_owned(), f.next()?.to_owned()))
        })
        .collect()
}

/// A `/proc/sysvipc/*` table: its rows, and the sum of one column over them.
fn sysvipc(table: &str, column: Option<&str>) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}")).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let col = column.and_then(|c| header.iter().position(|h| *h == c));
    let (mut rows, mut sum) = (0, 0u64);
    for l in lines.filter(|l| !l.trim().is_empty()) {
        rows += 1;
        if let Some(c) = col {
            let v: u64 = l
                .split_whitespace()
                .nth(c)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            sum = sum.saturating_add(v);
        }
    }
    Some((rows, sum))
}

fn dev_shm() -> Finding {
    const FIX_SIZE: &str =
        "mount -o remount,size=1G /dev/shm (in a container: docker run --shm-size=1g)";
    let fstype = mounts()
        .into_iter()
        .find(|(m, _)| m == "/dev/shm")
        .map(|(_, t)| t);
    let st = match statvfs("/dev/shm") {
        Ok(st) => st,
        Err(e) => {
            return Finding::new(
                "dev_shm",
                Status::Fail,
                format!(
                    "/dev/shm: {e}: named POSIX semaphores (posix-named doorbell) cannot exist"
                ),
            )
            .fix("mkdir -p /dev/shm && mount -t tmpfs -o mode=1777,size=1G tmpfs /dev/shm")
        }
    };
    let frag = st.fragment_size() as u64;
    let size = st.blocks() as u64 * frag;
    let free = st.blocks_available() as u64 * frag;
    let used = size.saturating_sub(st.blocks_free() as u64 * frag);
    let writable = access("/dev/shm", AccessFlags::W_OK).is_ok();
    let kind = fstype.as_deref().unwrap_or("not a mount point");
    let mut summary = format!("{kind}, {} of {} free", bytes(free), bytes(size));
    let status = if free < 1 << 20 {
        summary.push_str(": full, named POSIX semaphores and file channels there fail");
        Status::Fail
    } else if !writable {
        summary.push_str("; this user cannot create files there (posix-named doorbell)");
        Status::Warn
    } else if free.saturating_mul(10) < size {
        summary.push_str("; less than 10 % free");
        Status::Warn
    } else {
        Status::Ok
    };
    let fix = if writable {
        FIX_SIZE
    } else {
        "chmod 1777 /dev/shm"
    };
    Finding::new("dev_shm", status, summary)
        .usage(Some(used), Some(size), "bytes")
        .fix(fix)
}

fn sysv_shm() -> Vec<Finding> {
    let page = sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let table = ShmTable::read().ok();
    let segments = table.as_ref().map(|t| t.rows().len() as u64);
    let pages = table
        .as_ref()
        .map(|t| t.rows().iter().map(|r| r.size.div_ceil(page)).sum::<u64>());
    let mut out = Vec::new();
    out.push(match limits::shmmax() {
        None => Finding::new("kernel.shmmax", Status::Warn, "unreadable (no /proc?)"),
        Some(max) => {
            let status = match max {
                0..0x10_0000 => Status::Fail,
                0x10_0000..0x400_0000 => Status::Warn,
                _ => Status::Ok,
            };
            Finding::new(
                "kernel.shmmax",
                status,
                format!(
                    "the largest SysV segment, so the largest SysV channel: {}",
                    bytes(max)
                ),
            )
            .usage(None, Some(max), "bytes")
            .fix("sysctl -w kernel.shmmax=18446744073692774399")
        }
    });
    out.push(match (limits::shmall(), pages) {
        (Some(all), Some(used)) => Finding::new(
            "kernel.shmall",
            level(used, all),
            format!(
                "SysV shared memory in use: {} of {} ({used} of {all} pages)",
                bytes(used * page),
                bytes(all.saturating_mul(page))
            ),
        )
        .usage(Some(used), Some(all), "pages")
        .fix("sysctl -w kernel.shmall=18446744073692774399"),
        _ => Finding::new("kernel.shmall", Status::Warn, "unreadable (no /proc?)"),
    });
    out.push(match (limits::shmmni(), segments) {
        (Some(mni), Some(used)) => Finding::new(
            "kernel.shmmni",
            level(used, mni),
            format!("SysV segments in use: {used} of {mni}"),
        )
        .usage(Some(used), Some(mni), "segments")
        .fix("sysctl -w kernel.shmmni=32768 (and `shmchan prune`)"),
        _ => Finding::new("kernel.shmmni", Status::Warn, "unreadable (no /proc?)"),
    });
    let forced = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").ok();
    out.push(match forced.as_deref().map(str::trim) {
        Some("0") => Finding::new(
            "kernel.shm_rmid_forced",
            Status::Ok,
            "0: a SysV channel stays until it is removed",
        ),
        Some(v) => Finding::new(
            "kernel.shm_rmid_forced",
            Status::Warn,
            format!(
                "{v}: the kernel removes a SysV segment when its last process detaches, so a \
                 SysV channel does not outlive its processes"
            ),
        )
        .fix("sysctl -w kernel.shm_rmid_forced=0"),
        None => Finding::new(
            "kernel.shm_rmid_forced",
            Status::Warn,
            "unreadable (no /proc?)",
        ),
    });
    out
}

fn sem() -> Finding {
    const FIX: &str = "sysctl -w kernel.sem='32000 1024000000 500 32000'";
    let Some(l) = limits::sem() else {
        return Finding::new("kernel.sem", Status::Warn, "unreadable (no /proc?)");
    };
    let (sets, sems) = sysvipc("sem", Some("nsems")).unwrap_or((0, 0));
    let mut status = level(sets, l.semmni).max(level(sems, l.semmns));
    let mut summary = format!(
        "SysV semaphore sets in use: {sets} of {} (semmni), semaphores {sems} of {} (semmns)",
        l.semmni, l.semmns
    );
    if l.semmsl < 2 || l.semopm < 1 {
        status = Status::Fail;
        summary.push_str(&format!(
            "; semmsl {} / semopm {}: the sysv-sem doorbell needs sets of 2",
            l.semmsl, l.semopm
        ));
    }
    Finding::new("kernel.sem", status, summary)
        .usage(Some(sets), Some(l.semmni), "sets")
        .fix(FIX)
}

fn msg() -> Vec<Finding> {
    let queues = sysvipc("msg", None).map(|(rows, _)| rows);
    let mut out = vec![match (limits::msgmni(), queues) {
        (Some(mni), Some(used)) => Finding::new(
            "kernel.msgmni",
            level(used, mni),
            format!("SysV message queues in use: {used} of {mni} (sysv-msgq doorbell: 1 each)"),
        )
        .usage(Some(used), Some(mni), "queues")
        .fix("sysctl -w kernel.msgmni=32000"),
        _ => Finding::new("kernel.msgmni", Status::Warn, "unreadable (no /proc?)"),
    }];
    for (check, value, what) in [
        (
            "kernel.msgmax",
            limits::msgmax(),
            "the largest SysV message",
        ),
        (
            "kernel.msgmnb",
            limits::msgmnb(),
            "bytes a new SysV queue holds",
        ),
    ] {
        out.push(match value {
            // The sysv-msgq doorbell sends 8-byte messages.
            Some(v) => Finding::new(
                check,
                if v < 8 { Status::Fail } else { Status::Ok },
                format!("{what}: {v} bytes (the sysv-msgq doorbell sends 8)"),
            )
            .usage(None, Some(v), "bytes")
            .fix(format!("sysctl -w {check}=16384")),
            None => Finding::new(check, Status::Warn, "unreadable (no /proc?)"),
        });
    }
    out
}

fn mqueue() -> Vec<Finding> {
    let mut out = Vec::new();
    let mount = mounts()
        .into_iter()
        .find(|(_, t)| t == "mqueue")
        .map(|(m, _)| m);
    let in_use = mount
        .as_ref()
        .and_then(|m| std::fs::read_dir(m).ok())
        .map(|d| d.count() as u64);
    let (msg_max, msgsize_max, queues_max) = (
        limits::mq_msg_max(),
        limits::mq_msgsize_max(),
        limits::mq_queues_max(),
    );
    out.push(match (msg_max, msgsize_max, queues_max) {
        (Some(mm), Some(ms), Some(qm)) => {
            let mut status = in_use.map_or(Status::Ok, |u| level(u, qm));
            let used = in_use.map_or("unknown (no mqueue mount)".into(), |u| u.to_string());
            let mut summary = format!(
                "POSIX message queues in use: {used} of {qm} (queues_max); msg_max {mm}, \
                 msgsize_max {ms}"
            );
            if mm < 1 || ms < 8 {
                status = Status::Fail;
                summary.push_str(": the posix-mq doorbell needs 8-byte messages");
            }
            Finding::new("fs.mqueue", status, summary)
                .usage(in_use, Some(qm), "queues")
                .fix("sysctl -w fs.mqueue.queues_max=1024 fs.mqueue.msg_max=64 fs.mqueue.msgsize_max=8192")
        }
        _ => Finding::new("fs.mqueue", Status::Warn, "unreadable (no /proc/sys/fs/mqueue?)"),
    });
    // The kernel counts a queue's bytes as its messages plus about 96 bytes of bookkeeping each
    // (struct msg_msg and a tree node); the posix-mq doorbell makes 2 queues of up to 64.
    let per_channel = 2 * msg_max.unwrap_or(10).clamp(1, 64) * (8 + 96);
    out.push(match limits::rlimit_msgqueue() {
        Some(lim) => {
            let fits = lim / per_channel;
            Finding::new(
                "rlimit_msgqueue",
                if fits == 0 {
                    Status::Fail
                } else if fits < 4 {
                    Status::Warn
                } else {
                    Status::Ok
                },
                format!(
                    "RLIMIT_MSGQUEUE {}: about {fits} posix-mq doorbell channels per user \
                     (about {per_channel} bytes each)",
                    bytes(lim)
                ),
            )
            .usage(None, Some(lim), "bytes")
            .fix("ulimit -q 8192000 (systemd: LimitMSGQUEUE=; /etc/security/limits.conf: msgqueue)")
        }
        None => Finding::new("rlimit_msgqueue", Status::Warn, "getrlimit failed"),
    });
    out.push(match mount {
        Some(m) => Finding::new("mqueue_mount", Status::Ok, format!("mqueue mounted on {m}")),
        None => Finding::new(
            "mqueue_mount",
            Status::Warn,
            "no mqueue file system mounted: posix-mq doorbells work, but their queues cannot be \
             listed or removed by hand",
        )
        .fix("mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue"),
    });
    out
}

fn ipc_namespace() -> Finding {
    let own = std::fs::read_link("/proc/self/ns/ipc");
    let init = std::fs::read_link("/proc/1/ns/ipc");
    match (own, init) {
        (Err(e), _) => Finding::new(
            "ipc_namespace",
            Status::Warn,
            format!("/proc/self/ns/ipc: {e}"),
        ),
        (Ok(own), Err(_)) => Finding::new(
            "ipc_namespace",
            Status::Ok,
            format!(
                "{} (PID 1's is not readable here to compare)",
                own.display()
            ),
        ),
        (Ok(own), Ok(init)) if own == init => Finding::new(
            "ipc_namespace",
            Status::Ok,
            format!("{}, the same as PID 1's", own.display()),
        ),
        (Ok(own), Ok(init)) => Finding::new(
            "ipc_namespace",
            Status::Warn,
            format!(
                "{} differs from PID 1's {}: SysV keys, shmids and POSIX queues made here are \
                 invisible to processes outside this namespace",
                own.display(),
                init.display()
            ),
        )
        .fix("run both sides in one IPC namespace (docker run --ipc=host or --ipc=container:NAME; no unshare -i)"),
    }
}

fn futex_waitv() -> Finding {
    match futex_waitv_supported() {
        Ok(true) => Finding::new("futex_waitv", Status::Ok, "available (waits on many futex words at once)"),
        Ok(false) => Finding::new(
            "futex_waitv",
            Status::Warn,
            "not in this kernel (ENOSYS; Linux 5.16 added it): waiting on many channels at once \
             cannot use it",
        )
        .fix("run Linux 5.16 or later"),
        Err(e) if e.errno() == Errno::EPERM => Finding::new(
            "futex_waitv",
            Status::Warn,
            "forbidden by a seccomp filter (EPERM)",
        )
        .fix("allow futex_waitv in the container's seccomp profile (docker run --security-opt seccomp=PROFILE)"),
        Err(e) => Finding::new("futex_waitv", Status::Warn, format!("probe failed: {e}")),
    }
}

fn membarrier() -> Finding {
    match membarrier_query() {
        Ok(Some(cmds)) => {
            let names: Vec<&str> = cmds.iter_names().map(|(n, _)| n).collect();
            // What the record path's asymmetric fence uses: publishers register, sleepers
            // issue the global barrier.
            let global = MembarrierCmd::GLOBAL_EXPEDITED | MembarrierCmd::REGISTER_GLOBAL_EXPEDITED;
            let status = if cmds.contains(global) {
                Status::Ok
            } else {
                Status::Warn
            };
            Finding::new(
                "membarrier",
                status,
                format!(
                    "commands: {}{}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    },
                    if status == Status::Ok {
                        ""
                    } else {
                        " (no global expedited barrier: every publish pays a hardware fence \
                         and sleepers re-check every millisecond)"
                    }
                ),
            )
            .fix("run Linux 4.16 or later (global expedited membarrier)")
        }
        Ok(None) => Finding::new(
            "membarrier",
            Status::Warn,
            "not in this kernel (ENOSYS: built without CONFIG_MEMBARRIER)",
        )
        .fix("run a kernel built with CONFIG_MEMBARRIER=y"),
        Err(e) if e.errno() == Errno::EPERM => Finding::new(
            "membarrier",
            Status::Warn,
            "forbidden by a seccomp filter (EPERM)",
        )
        .fix("allow membarrier in the container's seccomp profile"),
        Err(e) => Finding::new("membarrier", Status::Warn, format!("probe failed: {e}")),
    }
}

fn channels() -> Finding {
    let listing = match collect(&[], false) {
        Ok(l) => l,
        Err(e) => return Finding::new("channels", Status::Warn, format!("cannot list: {e}")),
    };
    let total = listing.found.len() as u64;
    let stale: Vec<_> = listing.found.iter().filter(|f| prunable(f)).collect();
    let held: u64 = stale
        .iter()
        .filter_map(|f| f.info())
        .map(|i| i.len as u64)
        .sum();
    let status = if stale.is_empty() {
        Status::Ok
    } else {
        Status::Warn
    };
    Finding::new(
        "channels",
        status,
        format!(
            "{total} SysV channel(s), {} with no live endpoint and nothing attached (holding \
             {held} unread record(s))",
            stale.len()
        ),
    )
    .usage(Some(stale.len() as u64), Some(total), "channels")
    .fix("shmchan prune (to see them), then shmchan prune --yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_sizes() {
        assert_eq!(level(1, 10), Status::Ok);
        assert_eq!(level(9, 10), Status::Warn);
        assert_eq!(level(10, 10), Status::Fail);
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
    }
}
