//! `shmchan ls`, `stat`, `rm`: ipcs/ipcrm for channels.
//!
//! Everything here goes through `shmchan::inspect`, which attaches SysV segments read-only and
//! parses a copy, so looking never disturbs a running channel, and a segment without the
//! shmchan magic is never touched (not listed, and `rm` refuses it).

use std::path::PathBuf;
use std::process::ExitCode;

use shmchan::inspect::{inspect, list_sysv, ChannelInfo, Inspection};
use shmchan::{Backing, OpenError};

/// Why `ls`, `stat` or `rm` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--ftok PROJ` is neither one character nor a number from 1 to 255.
    #[error("--ftok {0}: expected one character or 1..=255")]
    BadProj(String),
    /// `id:SHMID` with a SHMID that is not a number.
    #[error("bad shmid {0:?}")]
    BadShmid(String),
    /// A SysV key that is not a number.
    #[error("bad SysV key {0:?}")]
    BadKey(String),
    /// A directory given to `ls` could not be read.
    #[error("{}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Listing, inspecting or removing failed.
    #[error("{0}")]
    Open(#[from] OpenError),
    /// `stat` of something that is not a shmchan channel.
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
}

/// Where a channel is: a SysV key (`0x2a01b3f4` or decimal), a SysV id (`id:5`), or a file path
/// (with `--ftok PROJ`, the key `ftok(path, PROJ)`).
#[derive(clap::Args, Debug)]
pub struct Target {
    /// SysV key (hex `0x…` or decimal), `id:SHMID`, or a file path.
    target: String,
    /// Treat TARGET as a path for `ftok(path, PROJ)` (PROJ: one character or a number).
    #[arg(long, value_name = "PROJ")]
    ftok: Option<String>,
}

impl Target {
    fn backing(&self) -> Result<Backing, Error> {
        let t = self.target.as_str();
        if let Some(p) = &self.ftok {
            let proj = match p.as_bytes() {
                [c] if !c.is_ascii_digit() => *c,
                _ => p.parse::<u8>().map_err(|_| Error::BadProj(p.clone()))?,
            };
            return Ok(Backing::sysv_path(t, proj));
        }
        if let Some(id) = t.strip_prefix("id:") {
            return id
                .parse()
                .map(Backing::sysv_id)
                .map_err(|_| Error::BadShmid(id.to_owned()));
        }
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return u32::from_str_radix(hex, 16)
                .map(|k| Backing::sysv_key(k as i32))
                .map_err(|_| Error::BadKey(t.to_owned()));
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            return t
                .parse::<i32>()
                .map(Backing::sysv_key)
                .map_err(|_| Error::BadKey(t.to_owned()));
        }
        Ok(Backing::file(t))
    }
}

/// Arguments of `shmchan ls`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Directories whose files to look at (not recursive); SysV segments are always listed.
    dirs: Vec<PathBuf>,
}

/// Arguments of `shmchan stat`.
#[derive(clap::Args, Debug)]
pub struct StatArgs {
    #[command(flatten)]
    target: Target,
}

/// Arguments of `shmchan rm`.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    target: Target,
    /// Remove even while live endpoints are attached (they keep working until they detach).
    #[arg(long)]
    force: bool,
}

fn endpoints(info: &ChannelInfo) -> String {
    if info.endpoints.is_empty() {
        return "-".into();
    }
    info.endpoints
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e.role,
                e.pid,
                if e.alive { "alive" } else { "dead" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn doorbell(info: &ChannelInfo) -> String {
    match info.doorbell {
        Ok(d) => d.to_string(),
        Err(code) => format!("unknown({code})"),
    }
}

fn row(backing: &str, name: &str, insp: &Inspection) -> Option<Vec<String>> {
    Some(match insp {
        Inspection::Foreign => return None,
        Inspection::Corrupted { reason } => {
            vec![backing.into(), name.into(), format!("corrupted: {reason}")]
        }
        Inspection::Channel(i) => vec![
            backing.into(),
            name.into(),
            i.kind.to_string(),
            format!("{} v{}", i.record.name, i.record.schema_version),
            i.record.size.to_string(),
            i.capacity.to_string(),
            i.len.to_string(),
            doorbell(i),
            endpoints(i),
        ],
    })
}

fn print_table(rows: &[Vec<String>]) {
    let header = [
        "BACKING",
        "NAME",
        "KIND",
        "RECORD",
        "SIZE",
        "CAP",
        "FILL",
        "DOORBELL",
        "ENDPOINTS",
    ];
    let mut width = header.map(str::len);
    for r in rows.iter().filter(|r| r.len() == header.len()) {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(&header.map(String::from));
    for r in rows {
        line(r);
    }
}

/// Runs `shmchan ls`.
pub fn ls(a: LsArgs) -> Result<ExitCode, Error> {
    let mut rows = Vec::new();
    for seg in list_sysv()? {
        let name = if seg.key == 0 {
            format!("id:{} (private)", seg.shmid)
        } else {
            format!("{:#010x} (id:{})", seg.key as u32, seg.shmid)
        };
        rows.extend(row("sysv", &name, &seg.inspection));
    }
    for dir in &a.dirs {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::ReadDir {
            dir: dir.clone(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        paths.sort();
        for p in paths {
            if !has_magic(&p) {
                continue;
            }
            match inspect(&Backing::file(&p)) {
                Ok(insp) => rows.extend(row("file", &p.display().to_string(), &insp)),
                Err(e) => rows.push(vec![
                    "file".into(),
                    p.display().to_string(),
                    format!("error: {e}"),
                ]),
            }
        }
    }
    print_table(&rows);
    Ok(ExitCode::SUCCESS)
}

/// Whether a file starts with the shmchan magic (read 8 bytes only, so `ls` over a directory of
/// large unrelated files stays cheap).
fn has_magic(p: &std::path::Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 8];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok_and(|()| buf == shmchan::inspect::MAGIC)
}

fn describe(insp: &Inspection, what: &str) -> Result<String, Error> {
    let i = match insp {
        Inspection::Foreign => {
            return Err(Error::NotAChannel {
                what: what.to_owned(),
            })
        }
        Inspection::Corrupted { reason } => return Ok(format!("{what}: corrupted: {reason}\n")),
        Inspection::Channel(i) => i,
    };
    let created = i.created_unix_ns / 1_000_000_000;
    let mut s = String::new();
    let mut kv = |k: &str, v: String| s.push_str(&format!("{k:<16}{v}\n"));
    kv("channel", what.to_string());
    kv("kind", i.kind.to_string());
    kv("record", i.record.to_string());
    kv(
        "capacity",
        format!(
            "{} records, slot stride {} bytes",
            i.capacity, i.slot_stride
        ),
    );
    kv("fill", format!("{} of {}", i.len, i.capacity));
    kv(
        "segment",
        format!("{} bytes, layout version {}", i.total_len, i.layout_version),
    );
    kv("doorbell", doorbell(i));
    kv(
        "cleanup",
        i.cleanup.map_or("unknown".into(), |c| format!("{c:?}")),
    );
    kv(
        "creator",
        format!("pid {} at unix time {created}", i.creator_pid),
    );
    kv(
        "live count",
        format!("{} senders, {} receivers", i.live_senders, i.live_receivers),
    );
    kv(
        "sleeps",
        format!(
            "senders {}, receivers {}",
            i.sender_sleeps, i.receiver_sleeps
        ),
    );
    kv("doorbell posts", i.posts.to_string());
    kv("endpoints", endpoints(i));
    Ok(s)
}

/// Runs `shmchan stat`.
pub fn stat(a: StatArgs) -> Result<ExitCode, Error> {
    let b = a.target.backing()?;
    let insp = inspect(&b)?;
    print!("{}", describe(&insp, &b.to_string())?);
    Ok(ExitCode::SUCCESS)
}

/// Runs `shmchan rm`.
pub fn rm(a: RmArgs) -> Result<ExitCode, Error> {
    let b = a.target.backing()?;
    let what = b.to_string();
    match inspect(&b)? {
        Inspection::Foreign => return Err(Error::Foreign { what }),
        Inspection::Channel(i) => {
            let pids = i.live_pids();
            if !pids.is_empty() && !a.force {
                return Err(Error::LiveEndpoints { what, pids });
            }
        }
        Inspection::Corrupted { .. } => {}
    }
    match shmchan::remove(&b) {
        Ok(()) => {
            println!("removed {what}");
            Ok(ExitCode::SUCCESS)
        }
        Err(OpenError::NotFound { .. }) => Err(Error::AlreadyGone { what }),
        Err(e) => Err(e.into()),
    }
}
