//! `shmchan top`: the channels of this machine, live.
//!
//! Each frame compares two samples taken an interval apart: every channel's header is read
//! (through `shmchan::inspect`, read-only) at both, and the difference of its counters over
//! the time between gives the rates: records in and out per second from the producer and
//! consumer cursors (positions claimed since creation), sleeps and doorbell posts per second
//! from the header's counters; and under each channel one row per registered endpoint, with
//! the records, sleeps and posts per second of its own counters (in its endpoint-table entry).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use shmchan::inspect::{ChannelInfo, EndpointInfo, Inspection};

use super::doc::{to_json_line, ErrorDoc, VERSION};
use super::found::{collect, Found, Listing, Place};
use super::view::{iso8601, now_unix_ns, table, Census};
use super::Error;

/// Arguments of `shmchan top`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = names_help!(),
    after_long_help = concat!(
        names_help!(),
        "

Every interval, each channel's header is read twice, an interval apart, and shown with:
FILL (records in the ring of its capacity), IN/s and OUT/s (records sent and received per
second, from the producer and consumer cursors; on MPMC a slot passed over as skipped counts
too), SLEEPS/s (senders/receivers that went to sleep on the doorbell, per second), POSTS/s
(doorbell rings, i.e. wake-ups, per second), ENDPOINTS (live and dead). A channel created
between the two samples shows `new` instead of rates.

Under each channel, one row per registered endpoint (`sender PID` or `receiver PID`, from its
own counters): records it sent (under IN/s) or received (under OUT/s) per second, its sleeps
per second (under its side of SLEEPS/s), the doorbell posts it made (wake-ups it sent) per
second, and whether its process is alive. An endpoint registered between the two samples
shows `new`.

The screen is cleared and redrawn when standard output is a terminal; otherwise frames follow
one another. --once takes two samples one interval apart, prints one frame and exits.

--json prints one document per frame, each on one line:
  {\"schema\": \"shmchan-top\", \"version\": 1, \"time\" (UTC ISO-8601), \"time_unix_ns\",
   \"interval_s\" (time between the two samples), \"channels\": [ROW...],
   \"errors\": [{\"name\", \"kind\", \"error\"}...]}
ROW: {\"name\", \"label\", \"backing\", \"shmid\", \"path\", \"state\" (\"channel\"|\"corrupted\"|
  \"error\"), \"reason\", \"kind\", \"record\", \"capacity\", \"len\", \"fill\" (len / capacity),
  \"len_change_per_s\" (records in minus out), \"records_in_per_s\", \"records_out_per_s\",
  \"sender_sleeps_per_s\", \"receiver_sleeps_per_s\", \"posts_per_s\", \"endpoints_alive\",
  \"endpoints_dead\", \"new\" (not in the first sample: rates are null),
  \"endpoints\": [ENDPOINT...] (empty unless state is \"channel\")}
ENDPOINT: {\"slot\" (its endpoint-table entry), \"role\" (\"sender\"|\"receiver\"), \"pid\",
  \"alive\", \"records\", \"sleeps\", \"posts\" (its counters' totals since it registered:
  records sent or received, sleeps on the doorbell, doorbell posts it made),
  \"records_per_s\", \"sleeps_per_s\", \"posts_per_s\", \"new\" (same slot and pid not in the
  first sample: rates are null)}
What cannot be known is null; within a version fields are only added.

Exit status: 0; 1 when a name led to no channel (--once), or the screen cannot be written."
    )
)]
pub struct TopArgs {
    /// What to watch: SysV keys, id:SHMID, channel files, directories (their channel files, not
    /// recursive). Default: every SysV channel on this machine.
    names: Vec<String>,
    /// With names: watch every SysV channel too.
    #[arg(long)]
    sysv: bool,
    /// Print one frame (two samples one interval apart) and exit.
    #[arg(long)]
    once: bool,
    /// Seconds between samples (0.05 to 3600).
    #[arg(long, value_parser = parse_interval, default_value = "1", value_name = "SECS")]
    interval: Duration,
    /// One JSON document per frame, one per line (schema in --help), instead of the table.
    #[arg(long)]
    json: bool,
}

fn parse_interval(s: &str) -> Result<Duration, Error> {
    let v: f64 = s
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| Error::BadInterval(s.to_owned()))?;
    if !(0.05..=3600.0).contains(&v) {
        return Err(Error::BadInterval(s.to_owned()));
    }
    Ok(Duration::from_secs_f64(v))
}

/// One look at every channel.
struct Sample {
    at: Instant,
    listing: Listing,
}

impl Sample {
    fn take(a: &TopArgs) -> Result<Sample, Error> {
        let listing = collect(&a.names, a.sysv)?;
        Ok(Sample {
            at: Instant::now(),
            listing,
        })
    }
}

/// The same channel in two samples: same place, same creation time.
type Identity = (Place, u64);

fn identity(f: &Found) -> Option<Identity> {
    f.info().map(|i| (f.place.clone(), i.created_unix_ns))
}

/// What reading a channel's header gave (`"state"` in the JSON document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum State {
    /// A valid channel: the figures follow.
    Channel,
    /// The shmchan magic, but the header fails validation (`"reason"` says how).
    Corrupted,
    /// It could not be read (`"reason"` says why).
    Error,
}

impl State {
    /// As the JSON document spells it.
    fn name(self) -> &'static str {
        match self {
            State::Channel => "channel",
            State::Corrupted => "corrupted",
            State::Error => "error",
        }
    }
}

/// One channel of a frame.
#[derive(Serialize)]
struct Row {
    name: String,
    label: String,
    backing: &'static str,
    shmid: Option<i32>,
    path: Option<String>,
    state: State,
    reason: Option<String>,
    kind: Option<String>,
    record: Option<String>,
    capacity: Option<u32>,
    len: Option<usize>,
    fill: Option<f64>,
    len_change_per_s: Option<f64>,
    records_in_per_s: Option<f64>,
    records_out_per_s: Option<f64>,
    sender_sleeps_per_s: Option<f64>,
    receiver_sleeps_per_s: Option<f64>,
    posts_per_s: Option<f64>,
    endpoints_alive: Option<u32>,
    endpoints_dead: Option<u32>,
    new: bool,
    endpoints: Vec<EndpointRow>,
}

/// One endpoint of a channel in a frame: its counters and their rates.
#[derive(Serialize)]
struct EndpointRow {
    slot: usize,
    role: &'static str,
    pid: u32,
    alive: bool,
    records: u64,
    sleeps: u64,
    posts: u64,
    records_per_s: Option<f64>,
    sleeps_per_s: Option<f64>,
    posts_per_s: Option<f64>,
    new: bool,
}

impl EndpointRow {
    /// `e` now, with rates against the same endpoint (slot and pid) in `before`, if there.
    fn new(e: &EndpointInfo, before: Option<&ChannelInfo>, secs: f64) -> EndpointRow {
        let b = before.and_then(|b| {
            b.endpoints
                .iter()
                .find(|o| (o.slot, o.pid, o.role) == (e.slot, e.pid, e.role))
        });
        EndpointRow {
            slot: e.slot,
            role: e.role,
            pid: e.pid,
            alive: e.alive,
            records: e.records,
            sleeps: e.sleeps,
            posts: e.posts,
            records_per_s: b.and_then(|b| rate(b.records, e.records, secs)),
            sleeps_per_s: b.and_then(|b| rate(b.sleeps, e.sleeps, secs)),
            posts_per_s: b.and_then(|b| rate(b.posts, e.posts, secs)),
            new: b.is_none(),
        }
    }

    /// Its row under the channel's, in the channel table's columns.
    fn cells(&self) -> Vec<String> {
        let opt = |v: Option<f64>| {
            if self.new {
                "new".to_string()
            } else {
                v.map_or_else(|| "-".into(), per_s)
            }
        };
        let sender = self.role == "sender";
        let (records, sleeps) = (opt(self.records_per_s), opt(self.sleeps_per_s));
        vec![
            format!("  {} {}", self.role, self.pid),
            String::new(),
            String::new(),
            String::new(),
            if sender {
                records.clone()
            } else {
                String::new()
            },
            if sender { String::new() } else { records },
            if sender {
                format!("{sleeps}/")
            } else {
                format!("/{sleeps}")
            },
            opt(self.posts_per_s),
            if self.alive { "alive" } else { "dead" }.into(),
        ]
    }
}

/// Per second from a counter's two readings (`None` when it went backwards).
fn rate(before: u64, after: u64, secs: f64) -> Option<f64> {
    after.checked_sub(before).map(|d| d as f64 / secs)
}

impl Row {
    fn new(f: &Found, before: Option<&ChannelInfo>, secs: f64) -> Row {
        let (shmid, path) = match &f.place {
            Place::Sysv { shmid, .. } => (Some(*shmid), None),
            Place::File(p) => (None, Some(p.display().to_string())),
        };
        let mut row = Row {
            name: f.place.arg(),
            label: f.label(),
            backing: f.place.kind(),
            shmid,
            path,
            state: State::Channel,
            reason: None,
            kind: None,
            record: None,
            capacity: None,
            len: None,
            fill: None,
            len_change_per_s: None,
            records_in_per_s: None,
            records_out_per_s: None,
            sender_sleeps_per_s: None,
            receiver_sleeps_per_s: None,
            posts_per_s: None,
            endpoints_alive: None,
            endpoints_dead: None,
            new: before.is_none(),
            endpoints: Vec::new(),
        };
        let i = match &f.inspection {
            Ok(Inspection::Channel(i)) => i,
            Ok(Inspection::Corrupted { reason }) => {
                row.state = State::Corrupted;
                row.reason = Some(reason.clone());
                return row;
            }
            Ok(Inspection::Foreign) => {
                row.state = State::Error;
                row.reason = Some("not a shmchan channel".into());
                return row;
            }
            Err(e) => {
                row.state = State::Error;
                row.reason = Some(e.to_string());
                return row;
            }
        };
        let census = Census::of(i);
        row.kind = Some(i.kind.to_string());
        row.record = Some(format!("{} v{}", i.record.name, i.record.schema_version));
        row.capacity = Some(i.capacity);
        row.len = Some(i.len);
        row.fill = (i.capacity > 0).then(|| i.len as f64 / f64::from(i.capacity));
        row.endpoints_alive = Some(census.live());
        row.endpoints_dead = Some(census.dead());
        row.endpoints = i
            .endpoints
            .iter()
            .map(|e| EndpointRow::new(e, before, secs))
            .collect();
        if let Some(b) = before {
            row.len_change_per_s = Some((i.len as f64 - b.len as f64) / secs);
            row.records_in_per_s = rate(b.produced, i.produced, secs);
            row.records_out_per_s = rate(b.consumed, i.consumed, secs);
            row.sender_sleeps_per_s = rate(b.sender_sleeps, i.sender_sleeps, secs);
            row.receiver_sleeps_per_s = rate(b.receiver_sleeps, i.receiver_sleeps, secs);
            row.posts_per_s = rate(b.posts, i.posts, secs);
        }
        row
    }
}

/// One frame: the second sample, with rates against the first.
#[derive(Serialize)]
struct Frame {
    /// `"shmchan-top"`.
    schema: &'static str,
    /// [`VERSION`].
    version: u32,
    time: String,
    time_unix_ns: u64,
    interval_s: f64,
    channels: Vec<Row>,
    errors: Vec<ErrorDoc>,
}

impl Frame {
    fn new(before: &Sample, after: &Sample) -> Frame {
        let secs = after
            .at
            .duration_since(before.at)
            .as_secs_f64()
            .max(f64::MIN_POSITIVE);
        let earlier: HashMap<Identity, &ChannelInfo> = before
            .listing
            .found
            .iter()
            .filter_map(|f| Some((identity(f)?, f.info()?)))
            .collect();
        let channels = after
            .listing
            .found
            .iter()
            .map(|f| {
                let b = identity(f).and_then(|id| earlier.get(&id).copied());
                Row::new(f, b, secs)
            })
            .collect();
        let now = now_unix_ns();
        Frame {
            schema: "shmchan-top",
            version: VERSION,
            time: iso8601(now),
            time_unix_ns: now,
            interval_s: secs,
            channels,
            errors: after
                .listing
                .errors
                .iter()
                .map(|(n, e)| ErrorDoc::new(n, e))
                .collect(),
        }
    }

    fn text(&self, live: bool) -> String {
        let mut out = format!(
            "shmchan top  {}  {} channel(s), samples {:.2} s apart{}\n",
            self.time,
            self.channels.len(),
            self.interval_s,
            if live { "  (Ctrl-C quits)" } else { "" }
        );
        let header = [
            "CHANNEL",
            "KIND",
            "RECORD",
            "FILL",
            "IN/s",
            "OUT/s",
            "SLEEPS/s S/R",
            "POSTS/s",
            "ENDPOINTS",
        ];
        let rows: Vec<Vec<String>> = self
            .channels
            .iter()
            .flat_map(|c| std::iter::once(c.cells()).chain(c.endpoints.iter().map(|e| e.cells())))
            .collect();
        out.push_str(&table(&header, &rows));
        for e in &self.errors {
            out.push_str(&format!("shmchan: {}\n", e.error));
        }
        out
    }
}

/// A per-second figure: `12`, `3.5`, `0.25`.
fn per_s(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

impl Row {
    fn cells(&self) -> Vec<String> {
        let mut c = vec![self.label.clone()];
        if self.state != State::Channel {
            let why = self.reason.as_deref().unwrap_or("");
            c.push(format!("{}: {why}", self.state.name()));
            return c;
        }
        let opt = |v: Option<f64>| v.map_or_else(|| "-".into(), per_s);
        let new = |s: String| if self.new { "new".to_string() } else { s };
        c.extend([
            self.kind.clone().unwrap_or_default(),
            self.record.clone().unwrap_or_default(),
            format!(
                "{}/{} {:.0}%",
                self.len.unwrap_or(0),
                self.capacity.unwrap_or(0),
                self.fill.unwrap_or(0.0) * 100.0
            ),
            new(opt(self.records_in_per_s)),
            new(opt(self.records_out_per_s)),
            new(format!(
                "{}/{}",
                opt(self.sender_sleeps_per_s),
                opt(self.receiver_sleeps_per_s)
            )),
            new(opt(self.posts_per_s)),
            format!(
                "{} alive, {} dead",
                self.endpoints_alive.unwrap_or(0),
                self.endpoints_dead.unwrap_or(0)
            ),
        ]);
        c
    }
}

/// Writes one frame; a closed pipe (`top --json | head -1`) ends the run quietly.
fn show(out: &mut impl Write, text: &str) -> Result<bool, Error> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Screen(e)),
    }
}

/// Runs `shmchan top`.
pub fn top(a: TopArgs) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    let clear = !a.json && !a.once && std::io::stdout().is_terminal();
    let mut before = Sample::take(&a)?;
    loop {
        std::thread::sleep(a.interval);
        let after = Sample::take(&a)?;
        let frame = Frame::new(&before, &after);
        let text = if a.json {
            to_json_line(&frame) + "\n"
        } else if clear {
            format!("\x1b[H\x1b[2J{}", frame.text(true))
        } else {
            frame.text(!a.once) + if a.once { "" } else { "\n" }
        };
        if !show(&mut out, &text)? {
            return Ok(ExitCode::SUCCESS);
        }
        if a.once {
            return Ok(if frame.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        before = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("1").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_interval("0.5s").unwrap(), Duration::from_millis(500));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("soon").is_err());
    }

    #[test]
    fn rates_never_go_negative() {
        assert_eq!(rate(10, 30, 2.0), Some(10.0));
        assert_eq!(rate(30, 10, 2.0), None);
    }
}
