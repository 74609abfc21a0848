//! `shmchan ls`, `stat`, `rm`, `top` and `prune`: ipcs/ipcrm for channels.
//!
//! Everything here goes through `shmchan::inspect`, which attaches SysV segments read-only and
//! parses a copy, so looking never disturbs a running channel, and a segment without the
//! shmchan magic is never touched (not listed, and `rm` and `prune` refuse it). What the kernel
//! says about the object that holds a channel (owner, permissions, attach count, `dest`) comes
//! from `/proc/sysvipc/shm`, as `ipcs` reads it, or from the file's metadata.
//!
//! The modules: [`name`] (how a command line names a channel), [`found`] (finding channels and
//! the facts around them), [`view`] (text: tables, times, endpoints), [`doc`] (the `--json`
//! documents), then one module per command: [`ls`] (`ls` and `stat`), [`rm`] (`rm` and
//! `prune`), [`top`].

use std::path::PathBuf;

use shmchan::OpenError;

/// How a command line names a channel, for the `--help` of every command that takes names.
macro_rules! names_help {
    () => {
        "Naming a channel:
  0x2a01b3f4, 42   a SysV key, in hex (0x...) or decimal: the number the creator gave shmget,
                   ipcs's KEY column. Bare numbers are always keys.
  id:294960        a SysV shmid: the kernel's id of one segment, ipcs's SHMID column. The only
                   name left once a segment has no key (IPC_PRIVATE, or marked for removal:
                   status dest).
  PATH             a file channel (any argument that is not a number; ./42 names a file 42)."
    };
}

/// The `--json` form of one channel in `ls`, `stat` and `prune` ([`doc::ChannelDoc`]).
macro_rules! channel_schema {
    () => {
        "CHANNEL: {\"backing\": \"sysv\"|\"file\", \"name\" (to give other commands), \"key\"
  (\"0x2a01b3f4\"), \"shmid\", \"path\", \"owner\", \"uid\", \"perms\" (octal, \"0600\"),
  \"nattch\", \"status\" (\"dest\"|\"locked\"|null), \"size_bytes\",
  \"state\": \"channel\"|\"corrupted\"|\"error\", then:
  channel: \"kind\", \"record\" {\"name\", \"schema_version\", \"size\", \"align\"},
    \"capacity\", \"len\" (records in the ring), \"slot_stride\", \"total_len\",
    \"layout_version\", \"doorbell\", \"doorbell_objects\", \"cleanup\"
    (\"creator\"|\"last_detach\"|\"keep\"|null), \"creator_pid\", \"created\" (UTC ISO-8601),
    \"created_unix_ns\", \"age_s\", \"endpoints\" [{\"role\", \"pid\", \"alive\", \"slot\"
    (endpoint-table entry), \"records\", \"sleeps\", \"posts\" (its own counters since it
    registered: records sent or received, sleeps on the doorbell, doorbell posts made)}],
    \"census\" {\"live_senders\", \"live_receivers\", \"dead_senders\", \"dead_receivers\"},
    \"segment_live_senders\", \"segment_live_receivers\" (the segment's own counts, dead
    processes included), \"sender_sleeps\", \"receiver_sleeps\", \"posts\" (totals since
    creation), \"attached\", \"produced\", \"consumed\" (positions producers and consumers
    claimed since creation: the producer and consumer cursors), \"senders_waiting\",
    \"receivers_waiting\" (announced as asleep on the doorbell right now);
  corrupted: \"reason\";  error: \"error\".
Within a version fields are only added; what cannot be known is null."
    };
}

pub mod doc;
pub mod found;
pub mod ls;
pub mod name;
pub mod rm;
pub mod top;
pub mod view;

/// Why `ls`, `stat`, `rm`, `top` or `prune` failed, or why one of their arguments did.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--ftok PROJ` is neither one character nor a number from 1 to 255.
    #[error("--ftok {0}: expected one character or 1..=255")]
    BadProj(String),
    /// `id:SHMID` with a SHMID that is not a number.
    #[error("{0:?} is not a shmid: write id: and the number of ipcs's SHMID column (id:294960)")]
    BadShmid(String),
    /// A SysV key that is not a number.
    #[error(
        "{0:?} is not a SysV key: write it in hex (0x2a01b3f4) or decimal (42); \
         for a file of that name, write ./{0}"
    )]
    BadKey(String),
    /// No SysV segment has this key.
    #[error("{}", no_such_key(*key, *id_exists))]
    NoSuchKey {
        /// The key.
        key: i32,
        /// Whether a segment has this number as its shmid (the likely intent).
        id_exists: bool,
    },
    /// No SysV segment has this shmid.
    #[error("no SysV segment has shmid {0} (`ipcs -m` lists them)")]
    NoSuchId(i32),
    /// A path that names nothing (or nothing readable).
    #[error("{}: {source}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `/proc/sysvipc/shm` could not be read.
    #[error("cannot read /proc/sysvipc/shm: {0}")]
    ProcShm(#[source] std::io::Error),
    /// Listing, inspecting or removing failed.
    #[error("{0}")]
    Open(#[from] OpenError),
    /// `stat` (or `ls`, `top`, `prune`) of something that is not a shmchan channel.
    #[error("{what} is not a shmchan channel")]
    NotAChannel {
        /// The backing, as given.
        what: String,
    },
    /// `rm` of something that is not a shmchan channel: refused, never touched.
    #[error("{what} is not a shmchan channel; left untouched")]
    Foreign {
        /// The backing, as given.
        what: String,
    },
    /// `rm` without `--force` of a channel that live processes use.
    #[error(
        "{what} has live endpoints (pid {}); use --force to remove it anyway",
        pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )]
    LiveEndpoints {
        /// The channel.
        what: String,
        /// The live processes.
        pids: Vec<u32>,
    },
    /// `rm` of a channel that somebody removed in the meantime.
    #[error("{what}: already gone")]
    AlreadyGone {
        /// The channel.
        what: String,
    },
    /// `top --interval`: not a number of seconds in range.
    #[error("--interval {0:?}: expected seconds from 0.05 to 3600 (examples: 1, 0.5, 2s)")]
    BadInterval(String),
    /// Writing to the terminal failed (`top`).
    #[error("writing the screen: {0}")]
    Screen(#[source] std::io::Error),
}

fn no_such_key(key: i32, id_exists: bool) -> String {
    if key == 0 {
        return "key 0 is IPC_PRIVATE, which names no segment: name a segment without a key by \
                its shmid (id:N)"
            .into();
    }
    let mut s = format!(
        "no SysV segment has key 0x{:08x} ({key} in decimal)",
        key as u32
    );
    if id_exists {
        s.push_str(&format!(
            "; a segment has shmid {key}: numbers name keys, write id:{key} to name a shmid"
        ));
    }
    s
}

impl Error {
    /// A stable, machine-readable name of the error, for the `"kind"` of `--json` documents.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadProj(_) | Error::BadShmid(_) | Error::BadKey(_) | Error::BadInterval(_) => {
                "bad_name"
            }
            Error::NoSuchKey { .. } | Error::NoSuchId(_) => "not_found",
            Error::Open(OpenError::NotFound { .. }) => "not_found",
            Error::Open(OpenError::Foreign { .. } | OpenError::NotAFile { .. }) => "not_a_channel",
            Error::Open(OpenError::PermissionDenied { .. }) => "permission_denied",
            Error::Open(OpenError::UnboundDoorbell { .. }) => "unbound_doorbell",
            Error::Path { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                "not_found"
            }
            Error::Path { .. } => "io",
            Error::ProcShm(_) | Error::Screen(_) => "io",
            Error::Open(_) => "open",
            Error::NotAChannel { .. } | Error::Foreign { .. } => "not_a_channel",
            Error::LiveEndpoints { .. } => "live_endpoints",
            Error::AlreadyGone { .. } => "already_gone",
        }
    }
}
