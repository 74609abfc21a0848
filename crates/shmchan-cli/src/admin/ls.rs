//! `shmchan ls` and `shmchan stat`.

use std::process::ExitCode;

use serde::Serialize;
use shmchan::inspect::{ChannelInfo, Inspection};

use super::doc::{to_json, ChannelDoc, ErrorDoc, VERSION};
use super::found::{collect, find, Found, Place, ShmTable};
use super::name::Target;
use super::view::{self, age_s, count, human_age, iso8601, table, Census, Owners};
use super::Error;

/// Arguments of `shmchan ls`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = names_help!(),
    after_long_help = concat!(
        names_help!(),
        "

Columns: BACKING (sysv or file); NAME (key and shmid, id:SHMID when the segment has no key, or
the path); OWNER; PERMS (octal); NATTCH (SysV attachments, - for files); STATUS (dest: marked
for removal, freed at the last detach; locked); AGE (since the channel was created: 3s, 5m, 2h,
4d); KIND; RECORD (type name and schema version); SIZE (record bytes); CAP (records); FILL
(records in the ring); DOORBELL; ENDPOINTS (role, pid, alive or dead).

--json prints one document:
  {\"schema\": \"shmchan-ls\", \"version\": 1, \"channels\": [CHANNEL...],
   \"errors\": [{\"name\", \"kind\", \"error\"}...]}
",
        channel_schema!(),
        "

Exit status: 0; 1 when a name led to no channel (the others are still listed)."
    )
)]
pub struct LsArgs {
    /// What to list: SysV keys, id:SHMID, channel files, directories (their channel files, not
    /// recursive). Default: every SysV channel on this machine.
    names: Vec<String>,
    /// With names: list every SysV channel too.
    #[arg(long)]
    sysv: bool,
    /// Print one JSON document (schema in --help) instead of the table.
    #[arg(long)]
    json: bool,
}

/// The `ls --json` document.
#[derive(Serialize)]
struct LsDoc {
    /// `"shmchan-ls"`.
    schema: &'static str,
    /// [`VERSION`].
    version: u32,
    channels: Vec<ChannelDoc>,
    errors: Vec<ErrorDoc>,
}

const HEADER: [&str; 14] = [
    "BACKING",
    "NAME",
    "OWNER",
    "PERMS",
    "NATTCH",
    "STATUS",
    "AGE",
    "KIND",
    "RECORD",
    "SIZE",
    "CAP",
    "FILL",
    "DOORBELL",
    "ENDPOINTS",
];

fn row(f: &Found, owners: &mut Owners) -> Vec<String> {
    let dash = || "-".to_string();
    let mut cells = vec![
        f.place.kind().to_string(),
        f.label(),
        f.facts.uid.map_or_else(dash, |u| owners.name(u)),
        f.facts.perms().map_or_else(dash, |p| format!("{p:o}")),
        f.facts.nattch.map_or_else(dash, |n| n.to_string()),
        f.facts.status(&f.place).unwrap_or("-").to_string(),
    ];
    match &f.inspection {
        Ok(Inspection::Channel(i)) => cells.extend([
            human_age(age_s(i.created_unix_ns)),
            i.kind.to_string(),
            format!("{} v{}", i.record.name, i.record.schema_version),
            i.record.size.to_string(),
            i.capacity.to_string(),
            i.len.to_string(),
            view::doorbell(i),
            view::endpoints(i),
        ]),
        Ok(Inspection::Corrupted { reason }) => cells.push(format!("corrupted: {reason}")),
        Ok(Inspection::Foreign) => cells.push("not a shmchan channel".into()),
        Err(e) => cells.push(format!("error: {e}")),
    }
    cells
}

/// Runs `shmchan ls`.
pub fn ls(a: LsArgs) -> Result<ExitCode, Error> {
    let listing = collect(&a.names, a.sysv)?;
    let mut owners = Owners::default();
    if a.json {
        let doc = LsDoc {
            schema: "shmchan-ls",
            version: VERSION,
            channels: listing
                .found
                .iter()
                .map(|f| ChannelDoc::of(f, &mut owners))
                .collect(),
            errors: listing
                .errors
                .iter()
                .map(|(n, e)| ErrorDoc::new(n, e))
                .collect(),
        };
        println!("{}", to_json(&doc));
    } else {
        let rows: Vec<Vec<String>> = listing.found.iter().map(|f| row(f, &mut owners)).collect();
        print!("{}", table(&HEADER, &rows));
        for (_, e) in &listing.errors {
            eprintln!("shmchan: {e}");
        }
    }
    Ok(if listing.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Arguments of `shmchan stat`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = names_help!(),
    after_long_help = concat!(
        names_help!(),
        "
  PATH --ftok PROJ the SysV key ftok(PATH, PROJ).

Endpoints are counted from the endpoint table: a process that died without deregistering is
shown dead and not counted live (the segment's own live count, which still includes it, is
shown next to it when they differ). Sleeps and doorbell posts are totals since creation.

--json prints one document:
  {\"schema\": \"shmchan-stat\", \"version\": 1, \"channel\": CHANNEL}
",
        channel_schema!()
    )
)]
pub struct StatArgs {
    #[command(flatten)]
    target: Target,
    /// Print one JSON document (schema in --help) instead of text.
    #[arg(long)]
    json: bool,
}

/// The `stat --json` document.
#[derive(Serialize)]
struct StatDoc {
    /// `"shmchan-stat"`.
    schema: &'static str,
    /// [`VERSION`].
    version: u32,
    channel: ChannelDoc,
}

fn describe(f: &Found, what: &str, owners: &mut Owners) -> String {
    let mut s = String::new();
    // A key as long as the column still gets a space before its value.
    let mut kv = |k: &str, v: String| s.push_str(&format!("{k:<15} {v}\n"));
    kv("channel", what.to_string());
    if let Place::Sysv { shmid, .. } = f.place {
        kv("shmid", format!("{shmid} (name it id:{shmid})"));
    }
    let mut object = Vec::new();
    if let Some(uid) = f.facts.uid {
        object.push(format!("owner {} (uid {uid})", owners.name(uid)));
    }
    if let Some(p) = f.facts.perms() {
        object.push(format!("perms {p:04o}"));
    }
    if let Some(n) = f.facts.nattch {
        object.push(format!("nattch {n}"));
    }
    match f.facts.status(&f.place) {
        Some(st) if f.facts.dest() => object.push(format!(
            "status {st} (marked for removal: freed at the last detach)"
        )),
        Some(st) => object.push(format!("status {st}")),
        None => {}
    }
    if !object.is_empty() {
        kv("object", object.join(", "));
    }
    match &f.inspection {
        Ok(Inspection::Channel(i)) => header_lines(i, &mut kv),
        Ok(Inspection::Corrupted { reason }) => kv("corrupted", reason.clone()),
        Ok(Inspection::Foreign) => kv("state", "not a shmchan channel".into()),
        Err(e) => kv("error", e.to_string()),
    }
    s
}

fn header_lines(i: &ChannelInfo, kv: &mut impl FnMut(&str, String)) {
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
    kv(
        "doorbell",
        format!("{} ({})", view::doorbell(i), i.doorbell_objects),
    );
    kv(
        "cleanup",
        i.cleanup.map_or("unknown".into(), |c| format!("{c:?}")),
    );
    kv(
        "created",
        format!(
            "{} ({} ago) by pid {}",
            iso8601(i.created_unix_ns),
            human_age(age_s(i.created_unix_ns)),
            i.creator_pid
        ),
    );
    let c = Census::of(i);
    let mut live = format!(
        "{}, {}",
        count(c.live_senders, "sender"),
        count(c.live_receivers, "receiver")
    );
    if (i.live_senders, i.live_receivers) != (c.live_senders, c.live_receivers) {
        live.push_str(&format!(
            " (the segment counts {} and {}, dead processes included)",
            count(i.live_senders, "sender"),
            count(i.live_receivers, "receiver")
        ));
    }
    kv("live", live);
    kv(
        "dead",
        format!(
            "{}, {}",
            count(c.dead_senders, "sender"),
            count(c.dead_receivers, "receiver")
        ),
    );
    kv("endpoints", view::endpoints(i));
    for e in &i.endpoints {
        kv(
            &format!("  {} {}", e.role, e.pid),
            format!(
                "{} records, {} sleeps, {} posts (since it registered)",
                e.records, e.sleeps, e.posts
            ),
        );
    }
    kv(
        "sleeps",
        format!(
            "senders {}, receivers {} (since creation)",
            i.sender_sleeps, i.receiver_sleeps
        ),
    );
    kv("doorbell posts", format!("{} (since creation)", i.posts));
    kv(
        "waiting now",
        format!(
            "senders {}, receivers {} (asleep on the doorbell)",
            i.senders_waiting, i.receivers_waiting
        ),
    );
    kv(
        "records",
        format!("{} in, {} out (since creation)", i.produced, i.consumed),
    );
}

/// Runs `shmchan stat`.
pub fn stat(a: StatArgs) -> Result<ExitCode, Error> {
    let name = a.target.name()?;
    let what = name.backing().to_string();
    let found = match find(&name, &ShmTable::read()?)? {
        Found {
            inspection: Ok(Inspection::Foreign),
            ..
        } => return Err(Error::NotAChannel { what }),
        Found {
            inspection: Err(e), ..
        } => return Err(e.into()),
        f => f,
    };
    let mut owners = Owners::default();
    if a.json {
        let doc = StatDoc {
            schema: "shmchan-stat",
            version: VERSION,
            channel: ChannelDoc::of(&found, &mut owners),
        };
        println!("{}", to_json(&doc));
    } else {
        print!("{}", describe(&found, &what, &mut owners));
    }
    Ok(ExitCode::SUCCESS)
}
