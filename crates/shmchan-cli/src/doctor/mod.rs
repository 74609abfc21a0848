//! `shmchan doctor`: what on this machine blocks channels, each finding with a status and the
//! command that fixes it.
//!
//! Everything is read, nothing changed: `/dev/shm` (`statvfs`), the SysV limits
//! (`/proc/sys/kernel/shm*`, `sem`, `msg*`) against their use (`/proc/sysvipc/*`, what `ipcs`
//! counts), the POSIX message queue limits (`/proc/sys/fs/mqueue/*`, `RLIMIT_MSGQUEUE`) and
//! the `mqueue` mount, the IPC namespace against PID 1's, two system calls probed without
//! effect (`futex_waitv` with no waiters, `membarrier(MEMBARRIER_CMD_QUERY)`), and the
//! channels that nobody uses any more. The checks are in [`checks`].

use std::process::ExitCode;

use serde::Serialize;

use crate::admin::doc::{to_json, VERSION};

mod checks;

/// Arguments of `shmchan doctor`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
Checks, each ok, warn (works, with a caveat or close to a limit) or fail (something channels
need is missing or exhausted), with the command that fixes it:
  dev_shm            /dev/shm mounted, writable, its size and free space (statvfs)
  kernel.shmmax, kernel.shmall, kernel.shmmni, kernel.shm_rmid_forced
                     SysV shared memory limits and use (/proc/sysvipc/shm)
  kernel.sem         SysV semaphore limits and use (/proc/sysvipc/sem): sysv-sem doorbell
  kernel.msgmni, kernel.msgmax, kernel.msgmnb
                     SysV message queue limits and use (/proc/sysvipc/msg): sysv-msgq doorbell
  fs.mqueue, rlimit_msgqueue, mqueue_mount
                     POSIX message queue limits, the per-user byte limit, the /dev/mqueue mount:
                     posix-mq doorbell
  ipc_namespace      this process's IPC namespace against PID 1's (/proc/*/ns/ipc)
  futex_waitv, membarrier
                     whether this kernel (and its seccomp filter) allows them
  channels           SysV channels with no live endpoint and nothing attached (`shmchan prune`)

--json prints one document:
  {\"schema\": \"shmchan-doctor\", \"version\": 1, \"ok\": bool (no fail),
   \"counts\": {\"ok\", \"warn\", \"fail\"},
   \"findings\": [{\"check\", \"status\": \"ok\"|\"warn\"|\"fail\", \"summary\",
                   \"used\", \"limit\", \"unit\" (null when not a limit), \"fix\" (null when
                   nothing to do)}...]}
Within a version fields are only added.

Exit status: 0 when nothing fails, 1 otherwise.")]
pub struct DoctorArgs {
    /// Print one JSON document (schema in --help) instead of text.
    #[arg(long)]
    json: bool,
}

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing in the way.
    Ok,
    /// Works, with a caveat, or close to a limit.
    Warn,
    /// Something channels need is missing or used up.
    Fail,
}

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// What was checked (`dev_shm`, `kernel.shmmni`, …).
    pub check: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found, in one sentence.
    pub summary: String,
    /// How much of the limit is in use, when the check is a limit.
    pub used: Option<u64>,
    /// The limit.
    pub limit: Option<u64>,
    /// The unit of `used` and `limit` (`bytes`, `segments`, …).
    pub unit: Option<&'static str>,
    /// The command that fixes it (`None`: nothing to do).
    pub fix: Option<String>,
}

impl Finding {
    /// A finding with no figures and no fix.
    pub fn new(check: &'static str, status: Status, summary: impl Into<String>) -> Finding {
        Finding {
            check,
            status,
            summary: summary.into(),
            used: None,
            limit: None,
            unit: None,
            fix: None,
        }
    }

    /// With `used` of `limit` `unit`.
    pub fn usage(mut self, used: Option<u64>, limit: Option<u64>, unit: &'static str) -> Self {
        self.used = used;
        self.limit = limit;
        self.unit = Some(unit);
        self
    }

    /// With the command that fixes it (only kept when the status is not ok).
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        if self.status != Status::Ok {
            self.fix = Some(fix.into());
        }
        self
    }
}

/// `{"ok", "warn", "fail"}` counts.
#[derive(Serialize)]
struct Counts {
    ok: usize,
    warn: usize,
    fail: usize,
}

/// The `doctor --json` document.
#[derive(Serialize)]
struct Doc<'a> {
    /// `"shmchan-doctor"`.
    schema: &'static str,
    /// [`VERSION`].
    version: u32,
    ok: bool,
    counts: Counts,
    findings: &'a [Finding],
}

fn text(findings: &[Finding], counts: &Counts) -> String {
    let mut out = String::new();
    for f in findings {
        let tag = match f.status {
            Status::Ok => "[ ok ]",
            Status::Warn => "[warn]",
            Status::Fail => "[FAIL]",
        };
        out.push_str(&format!("{tag} {}: {}\n", f.check, f.summary));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("       fix: {fix}\n"));
        }
    }
    out.push_str(&format!(
        "{} ok, {} warn, {} fail\n",
        counts.ok, counts.warn, counts.fail
    ));
    out
}

/// Runs `shmchan doctor`.
pub fn run(a: DoctorArgs) -> ExitCode {
    let findings = checks::all();
    let n = |s: Status| findings.iter().filter(|f| f.status == s).count();
    let counts = Counts {
        ok: n(Status::Ok),
        warn: n(Status::Warn),
        fail: n(Status::Fail),
    };
    let ok = counts.fail == 0;
    if a.json {
        let doc = Doc {
            schema: "shmchan-doctor",
            version: VERSION,
            ok,
            counts,
            findings: &findings,
        };
        println!("{}", to_json(&doc));
    } else {
        print!("{}", text(&findings, &counts));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
