//! Finding channels: every SysV segment on the machine, the keys, shmids and files named on a
//! command line, the channel files of a directory; and what the kernel or the filesystem says
//! about the object that holds each (ipcs's columns: owner, permissions, attach count, status).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use shmchan::inspect::{inspect, list_sysv, ChannelInfo, Inspection};
use shmchan::{Backing, OpenError};

use super::name::Name;
use super::Error;

/// `SHM_DEST` in the mode of `/proc/sysvipc/shm`: marked for removal (ipcs's `dest`).
const SHM_DEST: u32 = 0o1000;
/// `SHM_LOCKED`: locked in memory (ipcs's `locked`).
const SHM_LOCKED: u32 = 0o2000;

/// One line of `/proc/sysvipc/shm`, the table `ipcs -m` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmRow {
    /// The key (0: `IPC_PRIVATE`, or marked for removal).
    pub key: i32,
    /// The shmid.
    pub shmid: i32,
    /// Permission and status bits (`SHM_DEST`, `SHM_LOCKED` above the 9 permission bits).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Attachments, in all processes.
    pub nattch: u64,
    /// The owner's uid.
    pub uid: u32,
}

/// `/proc/sysvipc/shm`, parsed by its header's column names.
#[derive(Clone, Debug, Default)]
pub struct ShmTable(Vec<ShmRow>);

impl ShmTable {
    /// Reads the table now.
    pub fn read() -> Result<ShmTable, Error> {
        let text = std::fs::read_to_string("/proc/sysvipc/shm").map_err(Error::ProcShm)?;
        Ok(ShmTable::parse(&text))
    }

    fn parse(text: &str) -> ShmTable {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(k), Some(i), Some(p), Some(s), Some(n), Some(u)) = (
            col("key"),
            col("shmid"),
            col("perms"),
            col("size"),
            col("nattch"),
            col("uid"),
        ) else {
            return ShmTable::default();
        };
        let rows = lines.filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(ShmRow {
                key: f.get(k)?.parse::<i64>().ok()? as i32,
                shmid: f.get(i)?.parse().ok()?,
                mode: u32::from_str_radix(f.get(p)?, 8).ok()?,
                size: f.get(s)?.parse().ok()?,
                nattch: f.get(n)?.parse().ok()?,
                uid: f.get(u)?.parse().ok()?,
            })
        });
        ShmTable(rows.collect())
    }

    /// The segment with this shmid.
    pub fn by_id(&self, shmid: i32) -> Option<&ShmRow> {
        self.0.iter().find(|r| r.shmid == shmid)
    }

    /// The segment with this key (never one without a key).
    pub fn by_key(&self, key: i32) -> Option<&ShmRow> {
        self.0.iter().find(|r| key != 0 && r.key == key)
    }

    /// Every segment.
    pub fn rows(&self) -> &[ShmRow] {
        &self.0
    }
}

/// Where a channel lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// A SysV segment.
    Sysv {
        /// Its key (0: none).
        key: i32,
        /// Its shmid.
        shmid: i32,
    },
    /// A file.
    File(PathBuf),
}

impl Place {
    /// The backing that reaches exactly this object (a SysV segment by its shmid, which a new
    /// segment cannot take over while this one exists).
    pub fn backing(&self) -> Backing {
        match self {
            Place::Sysv { shmid, .. } => Backing::sysv_id(*shmid),
            Place::File(p) => Backing::file(p),
        }
    }

    /// How to name it to another command: its key when it has one, else `id:SHMID`; the path.
    pub fn arg(&self) -> String {
        match self {
            Place::Sysv { key: 0, shmid } => format!("id:{shmid}"),
            Place::Sysv { key, .. } => format!("0x{:08x}", *key as u32),
            Place::File(p) => p.display().to_string(),
        }
    }

    /// `"sysv"` or `"file"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Place::Sysv { .. } => "sysv",
            Place::File(_) => "file",
        }
    }
}

/// What the kernel or the filesystem says about the object that holds a channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The owner's uid.
    pub uid: Option<u32>,
    /// Permission bits and, for SysV, the status bits above them.
    pub mode: Option<u32>,
    /// SysV attachments (files have none to count).
    pub nattch: Option<u64>,
    /// Size in bytes.
    pub size: Option<u64>,
}

impl Facts {
    fn of_row(r: &ShmRow) -> Facts {
        Facts {
            uid: Some(r.uid),
            mode: Some(r.mode),
            nattch: Some(r.nattch),
            size: Some(r.size),
        }
    }

    fn of_file(m: &std::fs::Metadata) -> Facts {
        Facts {
            uid: Some(m.uid()),
            mode: Some(m.mode() & 0o7777),
            nattch: None,
            size: Some(m.len()),
        }
    }

    /// The permission bits (`0o600`).
    pub fn perms(&self) -> Option<u32> {
        self.mode.map(|m| m & 0o777)
    }

    /// Whether the segment is marked for removal (`IPC_RMID` while attached).
    pub fn dest(&self) -> bool {
        self.mode.is_some_and(|m| m & SHM_DEST != 0)
    }

    /// ipcs's status column: `dest` (marked for removal), `locked`, or nothing.
    pub fn status(&self, place: &Place) -> Option<&'static str> {
        match (place, self.mode) {
            (Place::Sysv { .. }, Some(m)) if m & SHM_DEST != 0 => Some("dest"),
            (Place::Sysv { .. }, Some(m)) if m & SHM_LOCKED != 0 => Some("locked"),
            _ => None,
        }
    }
}

/// A channel found, with the facts about its object and what inspecting it gave.
#[derive(Debug)]
pub struct Found {
    /// Where it is.
    pub place: Place,
    /// What the kernel or the filesystem says about it.
    pub facts: Facts,
    /// What its header says (or why it could not be read).
    pub inspection: Result<Inspection, OpenError>,
}

impl Found {
    /// Its header, when it is a valid channel.
    pub fn info(&self) -> Option<&ChannelInfo> {
        match &self.inspection {
            Ok(Inspection::Channel(i)) => Some(i),
            _ => None,
        }
    }

    /// A label for tables: `0x2a01b3f4 (id:5)`, `id:5 (private)`, `id:5` (marked for removal:
    /// the status column says `dest`), or the path.
    pub fn label(&self) -> String {
        match &self.place {
            Place::Sysv { key: 0, shmid } if self.facts.dest() => format!("id:{shmid}"),
            Place::Sysv { key: 0, shmid } => format!("id:{shmid} (private)"),
            Place::Sysv { key, shmid } => format!("0x{:08x} (id:{shmid})", *key as u32),
            Place::File(p) => p.display().to_string(),
        }
    }
}

/// Channels found, and the names on the command line that did not lead to one.
#[derive(Debug, Default)]
pub struct Listing {
    /// The channels (and channel files that could not be read), in the order found.
    pub found: Vec<Found>,
    /// Each name that failed, as given, and why.
    pub errors: Vec<(String, Error)>,
}

impl Listing {
    fn push(&mut self, seen: &mut HashSet<Place>, f: Found) {
        if seen.insert(f.place.clone()) {
            self.found.push(f);
        }
    }
}

/// The channels `names` name (keys, shmids, files, and the channel files of directories), plus
/// every SysV channel on the machine when `names` is empty or `all_sysv` is set.
pub fn collect(names: &[String], all_sysv: bool) -> Result<Listing, Error> {
    let table = ShmTable::read()?;
    let mut out = Listing::default();
    let mut seen = HashSet::new();
    if names.is_empty() || all_sysv {
        for seg in list_sysv()? {
            if matches!(seg.inspection, Inspection::Foreign) {
                continue;
            }
            let mut facts = table
                .by_id(seg.shmid)
                .map(Facts::of_row)
                .unwrap_or_default();
            facts.nattch = Some(seg.nattch);
            facts.size = Some(seg.size);
            let place = Place::Sysv {
                key: seg.key,
                shmid: seg.shmid,
            };
            let inspection = Ok(seg.inspection);
            out.push(
                &mut seen,
                Found {
                    place,
                    facts,
                    inspection,
                },
            );
        }
    }
    for arg in names {
        let r = Name::parse(arg).and_then(|name| match &name {
            Name::Path(p) if p.is_dir() => channel_files(p),
            _ => find(&name, &table).and_then(|f| match f.inspection {
                Ok(Inspection::Foreign) => Err(Error::NotAChannel { what: arg.clone() }),
                _ => Ok(vec![f]),
            }),
        });
        match r {
            Ok(found) => found.into_iter().for_each(|f| out.push(&mut seen, f)),
            Err(e) => out.errors.push((arg.clone(), e)),
        }
    }
    Ok(out)
}

/// The object a name names, with its facts, inspected (a foreign one too: the caller decides).
pub fn find(name: &Name, table: &ShmTable) -> Result<Found, Error> {
    let (place, facts) = match name {
        Name::Key(0) => {
            return Err(Error::NoSuchKey {
                key: 0,
                id_exists: false,
            })
        }
        Name::Key(k) => {
            let row = table.by_key(*k).ok_or_else(|| Error::NoSuchKey {
                key: *k,
                id_exists: table.by_id(*k).is_some(),
            })?;
            (
                Place::Sysv {
                    key: row.key,
                    shmid: row.shmid,
                },
                Facts::of_row(row),
            )
        }
        Name::Id(id) => {
            let row = table.by_id(*id).ok_or(Error::NoSuchId(*id))?;
            (
                Place::Sysv {
                    key: row.key,
                    shmid: row.shmid,
                },
                Facts::of_row(row),
            )
        }
        Name::Path(p) => {
            let m = std::fs::metadata(p).map_err(|source| Error::Path {
                path: p.clone(),
                source,
            })?;
            (Place::File(p.clone()), Facts::of_file(&m))
        }
    };
    let inspection = match inspect(&place.backing()) {
        Err(OpenError::NotFound { .. }) => {
            return Err(match name {
                Name::Key(k) => Error::NoSuchKey {
                    key: *k,
                    id_exists: false,
                },
                Name::Id(id) => Error::NoSuchId(*id),
                Name::Path(p) => Error::Path {
                    path: p.clone(),
                    source: std::io::ErrorKind::NotFound.into(),
                },
            })
        }
        // A FIFO, a device, a directory named as a file: never a channel (and never read).
        Err(e @ OpenError::NotAFile { .. }) => return Err(e.into()),
        r => r,
    };
    Ok(Found {
        place,
        facts,
        inspection,
    })
}

/// The channel files of a directory (not recursive), in name order; files without the shmchan
/// magic are skipped (inspection reads a header's worth of each to tell), and so is anything
/// that is not a regular file (inspection opens without blocking and refuses it).
pub fn channel_files(dir: &Path) -> Result<Vec<Found>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Path {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let Ok(m) = std::fs::metadata(&p) else {
            continue; // removed meanwhile
        };
        let inspection = inspect(&Backing::file(&p));
        if matches!(
            inspection,
            Ok(Inspection::Foreign) | Err(OpenError::NotAFile { .. } | OpenError::NotFound { .. })
        ) {
            continue;
        }
        out.push(Found {
            place: Place::File(p),
            facts: Facts::of_file(&m),
            inspection,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_table_parses_by_header() {
        let t = ShmTable::parse(
            "       key      shmid perms                  size  cpid  lpid nattch   uid   gid\n\
             2132818177    1081351   644                  4096 16939     0      0     0     0\n\
                      0         12  1600                  8192 16939     0      2  1000  1000\n",
        );
        let r = t.by_key(2132818177).unwrap();
        assert_eq!(
            (r.shmid, r.mode, r.size, r.nattch, r.uid),
            (1081351, 0o644, 4096, 0, 0)
        );
        let d = Facts::of_row(t.by_id(12).unwrap());
        let place = Place::Sysv { key: 0, shmid: 12 };
        assert_eq!(
            (d.perms(), d.status(&place), d.nattch),
            (Some(0o600), Some("dest"), Some(2))
        );
        assert!(t.by_key(0).is_none());
    }
}
