//! `shmchan rm` and `shmchan prune`, and the checks they share: a channel is removed only when
//! it is one (`shmchan::remove` refuses anything else too) and, unless `rm --force`, only when
//! no live process uses it.

use std::os::unix::fs::MetadataExt;
use std::process::ExitCode;

use serde::Serialize;
use shmchan::inspect::{ChannelInfo, Inspection};
use shmchan::OpenError;

use super::doc::{to_json, ErrorDoc, VERSION};
use super::found::{collect, find, Found, Place, ShmTable};
use super::name::{Name, Target};
use super::view::{self, table, Owners};
use super::Error;

/// Why a channel must not be removed, or `None` when it may be. `rm` asks only this;
/// `prune` also asks [`in_use`].
fn refusal(insp: &Inspection, what: &str, force: bool) -> Option<Error> {
    match insp {
        Inspection::Foreign => Some(Error::Foreign {
            what: what.to_owned(),
        }),
        Inspection::Channel(i) if !force && !live_pids(i).is_empty() => {
            Some(Error::LiveEndpoints {
                what: what.to_owned(),
                pids: live_pids(i),
            })
        }
        _ => None,
    }
}

/// The processes of a channel's live endpoints, each once.
fn live_pids(i: &ChannelInfo) -> Vec<u32> {
    let mut pids = i.live_pids();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// What a channel holds: unread records, and their bytes (records × record size).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Held {
    records: u64,
    bytes: u64,
}

impl Held {
    fn of(i: &ChannelInfo) -> Held {
        Held {
            records: i.len as u64,
            bytes: i.len as u64 * u64::from(i.record.size),
        }
    }
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} records, {} bytes", self.records, self.bytes)
    }
}

/// Arguments of `shmchan rm`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = names_help!(),
    after_long_help = concat!(
        names_help!(),
        "
  PATH --ftok PROJ the SysV key ftok(PATH, PROJ).

Removes the segment or file and the doorbell's kernel objects. Refuses anything that is not a
shmchan channel, and a channel with a live endpoint unless --force (its processes keep working
until they detach; a SysV segment then shows status dest until the last detach). Refuses, even
with --force, a channel whose segment names doorbell objects that are not its own (made or
owned by another user than the channel's, or without the channel's identity in their key or
name): nothing is removed then (error kind unbound_doorbell).

--json prints one document (also when the removal is refused or fails; exit status 1 then):
  {\"schema\": \"shmchan-rm\", \"version\": 1, \"name\" (as given), \"what\" (the backing
   described), \"removed\": bool, \"held\": {\"records\", \"bytes\"} | null (unread records
   it held), \"live_pids\": [..] (live endpoints' processes; non-empty with removed = forced),
   \"error\": null | {\"name\", \"kind\", \"error\"}}"
    )
)]
pub struct RmArgs {
    #[command(flatten)]
    target: Target,
    /// Remove even while live endpoints are attached (they keep working until they detach).
    #[arg(long)]
    force: bool,
    /// Print one JSON document (schema in --help) instead of text.
    #[arg(long)]
    json: bool,
}

/// The `rm --json` document.
#[derive(Serialize)]
struct RmDoc {
    /// `"shmchan-rm"`.
    schema: &'static str,
    /// [`VERSION`].
    version: u32,
    name: String,
    what: String,
    removed: bool,
    held: Option<Held>,
    live_pids: Vec<u32>,
    error: Option<ErrorDoc>,
}

/// Runs `shmchan rm`.
pub fn rm(a: RmArgs) -> Result<ExitCode, Error> {
    let given = a.target.to_string();
    let mut doc = RmDoc {
        schema: "shmchan-rm",
        version: VERSION,
        name: given.clone(),
        what: given.clone(),
        removed: false,
        held: None,
        live_pids: Vec::new(),
        error: None,
    };
    let r = remove_one(&a, &mut doc);
    if a.json {
        if let Err(e) = &r {
            doc.error = Some(ErrorDoc::new(&given, e));
        }
        println!("{}", to_json(&doc));
    } else if r.is_ok() {
        println!("removed {}", doc.what);
    }
    r.map(|()| ExitCode::SUCCESS)
}

fn remove_one(a: &RmArgs, doc: &mut RmDoc) -> Result<(), Error> {
    let name = a.target.name()?;
    let backing = name.backing();
    let what = backing.to_string();
    doc.what = what.clone();
    let found = find(&name, &ShmTable::read()?)?;
    let insp = found.inspection?;
    if let Inspection::Channel(i) = &insp {
        doc.held = Some(Held::of(i));
        doc.live_pids = live_pids(i);
    }
    if let Some(no) = refusal(&insp, &what, a.force) {
        return Err(no);
    }
    match shmchan::remove(&backing) {
        Ok(()) => {
            doc.removed = true;
            Ok(())
        }
        Err(OpenError::NotFound { .. }) => Err(Error::AlreadyGone { what }),
        Err(e) => Err(e.into()),
    }
}

/// Arguments of `shmchan prune`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = names_help!(),
    after_long_help = concat!(
        names_help!(),
        "

A channel is pruned only when no live process can be using it: it is a shmchan channel (never
anything else), no registered endpoint's process is alive, and nothing maps it (a SysV segment
with nattch 0; a file that no /proc/PID/maps this user can read maps). Segments marked for
removal (status dest) are freed by the kernel at their last detach and are left alone, as are
corrupted channels (their endpoints cannot be known: check with `shmchan stat`, remove with
`shmchan rm`). Each channel is checked again right before it is removed.

--json prints one document:
  {\"schema\": \"shmchan-prune\", \"version\": 1, \"dry_run\": bool,
   \"channels\": [{CHANNEL fields, \"held\": {\"records\", \"bytes\"} | null,
                  \"action\": \"would_remove\"|\"removed\"|\"kept\"|\"failed\"|\"gone\",
                  \"reason\": string | null}...],
   \"errors\": [{\"name\", \"kind\", \"error\"}...],
   \"life_sets\": [{\"semid\", \"shmid\"}...]}
  (CHANNEL fields: as in `shmchan ls --help`. life_sets: this user's SysV life-token sets whose
  segment is gone, e.g. after `ipcrm -m`; looked for without names or with --sysv.)

Exit status: 0; 1 when a removal failed or a name led to no channel."
    )
)]
pub struct PruneArgs {
    /// Where to look: SysV keys, id:SHMID, channel files, directories (their channel files, not
    /// recursive). Default: every SysV channel on this machine.
    names: Vec<String>,
    /// With names: look at every SysV channel too.
    #[arg(long)]
    sysv: bool,
    /// Remove them (without it, only say what would be removed).
    #[arg(long)]
    yes: bool,
    /// Print one JSON document (schema in --help) instead of the table.
    #[arg(long)]
    json: bool,
}

/// What prune does with one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    /// Nobody can be using it.
    Prune,
    /// Left alone, and why.
    Keep(String),
}

/// Whether a channel may be pruned (see `PruneArgs`'s help).
fn verdict(f: &Found) -> Verdict {
    let insp = match &f.inspection {
        Ok(Inspection::Corrupted { reason }) => {
            return Verdict::Keep(format!(
                "corrupted ({reason}): its endpoints cannot be known; `shmchan rm {}` removes it",
                f.place.arg()
            ))
        }
        Ok(insp) => insp,
        Err(e) => return Verdict::Keep(format!("could not be read: {e}")),
    };
    match refusal(insp, &f.place.arg(), false) {
        Some(Error::LiveEndpoints { pids, .. }) => {
            Verdict::Keep(format!("live endpoint: {}", pid_list(&pids)))
        }
        Some(no) => Verdict::Keep(no.to_string()),
        None => in_use(f).map_or(Verdict::Prune, Verdict::Keep),
    }
}

/// Whether `prune --yes` would remove this channel now (no live endpoint, nothing attached or
/// mapping it, a valid channel).
pub fn prunable(f: &Found) -> bool {
    verdict(f) == Verdict::Prune
}

/// Why a channel without a live endpoint is still in use, if it is: marked for removal,
/// attached, or mapped.
///
/// Inspection (`shmchan ls`, `top`, another `prune`) attaches SysV segments for a moment, read
/// only; every shmchan endpoint and channel handle attaches read-write. So a segment whose
/// attachments are all read-only mappings is not in use: the maps are read first, then the
/// attach count again, and the segment is in use unless every attachment counted was seen and
/// none of them is writable.
fn in_use(f: &Found) -> Option<String> {
    let shmid = match &f.place {
        Place::Sysv { .. } if f.facts.dest() => {
            return Some("marked for removal (dest): the kernel frees it at the last detach".into())
        }
        Place::Sysv { shmid, .. } => *shmid,
        Place::File(p) => {
            let Ok(m) = std::fs::metadata(p) else {
                return None;
            };
            let dev = format!(
                "{:02x}:{:02x}",
                nix::sys::stat::major(m.dev()),
                nix::sys::stat::minor(m.dev())
            );
            let ino = m.ino().to_string();
            let pids = mappers(|d, i, _| d == dev && i == ino);
            let pids: Vec<u32> = pids.into_iter().map(|(pid, _)| pid).collect();
            return (!pids.is_empty()).then(|| format!("mapped by {}", pid_list(&pids)));
        }
    };
    if f.facts.nattch == Some(0) {
        return None;
    }
    let ino = shmid.to_string();
    let maps = mappers(|_, i, path| i == ino && path.starts_with("/SYSV"));
    let writers: Vec<u32> = maps.iter().filter(|m| m.1).map(|m| m.0).collect();
    let nattch = ShmTable::read()
        .ok()
        .and_then(|t| t.by_id(shmid).map(|r| r.nattch));
    match nattch {
        Some(0) => None,
        Some(n) if writers.is_empty() && n <= maps.len() as u64 => None,
        Some(n) if !writers.is_empty() => Some(format!(
            "attached read-write by {} (nattch {n}) without a live endpoint",
            pid_list(&writers)
        )),
        Some(n) => Some(format!(
            "attached (nattch {n}) by processes whose maps this user cannot read"
        )),
        None => Some("its attach count cannot be read".into()),
    }
}

fn pid_list(pids: &[u32]) -> String {
    let mut pids = pids.to_vec();
    pids.sort_unstable();
    pids.dedup();
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    format!("pid {}", list.join(", "))
}

/// The processes with a mapping for which `matches(device, inode, path)` holds, each with
/// whether that mapping is writable, among those whose `/proc/PID/maps` this process may read.
fn mappers(matches: impl Fn(&str, &str, &str) -> bool) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(maps) = std::fs::read_to_string(e.path().join("maps")) else {
            continue;
        };
        for l in maps.lines() {
            // address perms offset dev inode path
            let f: Vec<&str> = l.splitn(6, ' ').collect();
            let [_, perms, _, dev, ino, rest] = f[..] else {
                continue;
            };
            if matches(dev, ino, rest.trim_start()) {
                out.push((pid, perms.as_bytes().get(1) == Some(&b'w')));
            }
        }
    }
    out
}

/// What prune did, or would do, with one channel (`"action"` in the JSON document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    /// A dry run found nobody using it.
    WouldRemove,
    /// Removed.
    Removed,
    /// Left alone (the reason says why).
    Kept,
    /// Removing it failed (the reason says why).
    Failed,
    /// Somebody removed it between the listing and the removal.
    Gone,
}

impl Action {
    /// As the table shows it.
    fn text(self) -> &'static str {
        match self {
            Action::WouldRemove => "would remove",
            Action::Removed => "removed",
            Action::Kept => "kept",
            Action::Failed => "failed",
            Action::Gone => "gone",
        }
    }
}

/// What prune did with one channel.
#[derive(Serialize)]
struct PruneRow {
    #[serde(flatten)]
    channel: super::doc::ChannelDoc,
    held: Option<Held>,
    action: Action,
    reason: Option<String>,
}

/// The `prune --json` document.
#[derive(Serialize)]
struct PruneDoc {
    /// `"shmchan-prune"`.
    schema: &'static str,
    /// [`VERSION`].
    version: u32,
    dry_run: bool,
    channels: Vec<PruneRow>,
    errors: Vec<ErrorDoc>,
    /// Life-token sets whose segment is gone: removed (or, in a dry run, to be removed).
    life_sets: Vec<OrphanDoc>,
}

/// An orphaned life-token set in the `prune --json` document.
#[derive(Serialize)]
struct OrphanDoc {
    semid: i32,
    shmid: i32,
}

/// Checks a channel again, as it is now, and removes it if it still may be removed.
fn prune_one(place: &Place) -> (Action, Option<String>) {
    let name = match place {
        Place::Sysv { shmid, .. } => Name::Id(*shmid),
        Place::File(p) => Name::Path(p.clone()),
    };
    let now = match ShmTable::read().and_then(|t| find(&name, &t)) {
        Ok(f) => f,
        Err(Error::NoSuchId(_)) => return (Action::Gone, Some("removed meanwhile".into())),
        Err(Error::Path { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return (Action::Gone, Some("removed meanwhile".into()))
        }
        Err(e) => return (Action::Failed, Some(e.to_string())),
    };
    if let Verdict::Keep(why) = verdict(&now) {
        return (Action::Kept, Some(format!("{why} (changed since listed)")));
    }
    match shmchan::remove(&place.backing()) {
        Ok(()) => (Action::Removed, None),
        Err(OpenError::NotFound { .. }) => (Action::Gone, Some("removed meanwhile".into())),
        Err(e) => (Action::Failed, Some(e.to_string())),
    }
}

/// Runs `shmchan prune`.
pub fn prune(a: PruneArgs) -> Result<ExitCode, Error> {
    let listing = collect(&a.names, a.sysv)?;
    let mut owners = Owners::default();
    let mut rows = Vec::new();
    for f in &listing.found {
        let held = f.info().map(Held::of);
        let (action, reason) = match (verdict(f), a.yes) {
            (Verdict::Keep(why), _) => (Action::Kept, Some(why)),
            (Verdict::Prune, false) => (Action::WouldRemove, None),
            (Verdict::Prune, true) => prune_one(&f.place),
        };
        let endpoints = f.info().map_or_else(|| "-".into(), view::endpoints);
        rows.push((
            f.label(),
            endpoints,
            PruneRow {
                channel: super::doc::ChannelDoc::of(f, &mut owners),
                held,
                action,
                reason,
            },
        ));
    }
    let failed = rows.iter().any(|(.., r)| r.action == Action::Failed);
    // SysV life-token sets whose segment went some other way (`ipcrm -m`).
    let orphans = if a.names.is_empty() || a.sysv {
        shmchan::prune_orphans(a.yes).unwrap_or_default()
    } else {
        Vec::new()
    };
    if a.json {
        let doc = PruneDoc {
            schema: "shmchan-prune",
            version: VERSION,
            dry_run: !a.yes,
            channels: rows.into_iter().map(|(.., r)| r).collect(),
            errors: listing
                .errors
                .iter()
                .map(|(n, e)| ErrorDoc::new(n, e))
                .collect(),
            life_sets: orphans
                .iter()
                .map(|o| OrphanDoc {
                    semid: o.semid,
                    shmid: o.shmid,
                })
                .collect(),
        };
        println!("{}", to_json(&doc));
    } else {
        print!("{}", prune_text(&rows, a.yes));
        if !orphans.is_empty() {
            let ids: Vec<String> = orphans.iter().map(|o| o.semid.to_string()).collect();
            println!(
                "{} {} life-token set(s) whose segment is gone (semid {})",
                if a.yes { "removed" } else { "would remove" },
                orphans.len(),
                ids.join(", ")
            );
        }
        for (_, e) in &listing.errors {
            eprintln!("shmchan: {e}");
        }
    }
    Ok(if failed || !listing.errors.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn prune_text(rows: &[(String, String, PruneRow)], yes: bool) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, endpoints, r)| {
            let action = match &r.reason {
                Some(why) => format!("{}: {why}", r.action.text()),
                None => r.action.text().to_string(),
            };
            let held = r.held.map_or_else(|| "-".into(), |h| h.to_string());
            vec![label.clone(), held, endpoints.clone(), action]
        })
        .collect();
    let mut out = table(&["CHANNEL", "HELD", "ENDPOINTS", "ACTION"], &cells);
    let n = |action: Action| rows.iter().filter(|(.., r)| r.action == action).count();
    let held: u64 = rows
        .iter()
        .filter(|(.., r)| matches!(r.action, Action::Removed | Action::WouldRemove))
        .filter_map(|(.., r)| r.held.map(|h| h.records))
        .sum();
    if yes {
        out.push_str(&format!(
            "removed {} channel(s) holding {held} unread record(s); kept {}; failed {}\n",
            n(Action::Removed),
            n(Action::Kept),
            n(Action::Failed)
        ));
    } else {
        out.push_str(&format!(
            "dry run: {} channel(s) holding {held} unread record(s) would be removed, {} kept; \
             --yes removes them\n",
            n(Action::WouldRemove),
            n(Action::Kept)
        ));
    }
    out
}
