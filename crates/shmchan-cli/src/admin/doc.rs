//! The `--json` documents of `ls`, `stat`, `rm`, `top` and `prune`.
//!
//! Every document is one JSON object whose first two fields are `"schema"` (which document:
//! `"shmchan-ls"`, `"shmchan-stat"`, `"shmchan-rm"`, `"shmchan-top"`, `"shmchan-prune"`) and
//! `"version"` (1). Within a version, fields are only ever added, never renamed, retyped or
//! removed; a field that cannot be known is `null`, never left out. Times are UTC ISO-8601
//! strings (`"2024-03-01T12:34:56Z"`) next to Unix nanoseconds; sizes are bytes.
//!
//! A channel appears as a [`ChannelDoc`] (in `ls`, `stat` and `prune`; `top` has its own
//! rows), and a name on the command line that did not lead to a channel as an [`ErrorDoc`].

use serde::Serialize;
use shmchan::inspect::{ChannelInfo, Inspection};
use shmchan::Cleanup;

use super::found::{Found, Place};
use super::view::{age_s, doorbell, iso8601, Census, Owners};
use super::Error;

/// The version of every document here.
pub const VERSION: u32 = 1;

/// One channel (or channel file that could not be read).
///
/// `backing` is `"sysv"` or `"file"`; `name` is what to give another command (`"0x2a01b3f4"`,
/// `"id:5"` for a segment without a key, or the path); `key` (`"0x2a01b3f4"`, `"0x00000000"`
/// for none) and `shmid` are `null` for files, `path` for SysV. `owner` is the user name (the
/// uid as a string when it has none), `perms` the permission bits as an octal string
/// (`"0600"`), `nattch` the SysV attach count (`null` for files), `status` ipcs's status:
/// `"dest"` (marked for removal: freed at the last detach), `"locked"`, or `null`.
/// `size_bytes` is the object's size. `state` is `"channel"` (the header fields of
/// [`HeaderDoc`] follow), `"corrupted"` (`"reason"` follows) or `"error"` (`"error"`
/// follows: it could not be read).
#[derive(Serialize)]
pub struct ChannelDoc {
    backing: &'static str,
    name: String,
    key: Option<String>,
    shmid: Option<i32>,
    path: Option<String>,
    owner: Option<String>,
    uid: Option<u32>,
    perms: Option<String>,
    nattch: Option<u64>,
    status: Option<&'static str>,
    size_bytes: Option<u64>,
    #[serde(flatten)]
    state: StateDoc,
}

/// How reading the header went: `"state"`, then what it found.
#[derive(Serialize)]
#[serde(tag = "state")]
enum StateDoc {
    /// A valid channel.
    #[serde(rename = "channel")]
    Channel(Box<HeaderDoc>),
    /// The shmchan magic, but the header fails validation.
    #[serde(rename = "corrupted")]
    Corrupted { reason: String },
    /// It could not be read.
    #[serde(rename = "error")]
    Error { error: String },
}

/// What a valid channel's header says.
///
/// `kind` is `"SPSC"` or `"MPMC"`; `record` its fingerprint; `capacity` and `len` (records
/// in the ring now) count records, `slot_stride` and `total_len` are bytes. `doorbell` is
/// its name (`"futex"`, …, or `"unknown(N)"`), `doorbell_objects` the kernel objects behind
/// it. `cleanup` is `"creator"`, `"last_detach"`, `"keep"` or `null` (unknown). `created` is
/// when the creator (`creator_pid`) made it; `age_s` whole seconds since. `endpoints` lists
/// the registered endpoints (see [`EndpointDoc`]); `census` counts them by role and
/// liveness (a process that died without deregistering counts as dead), while
/// `segment_live_senders`/`_receivers` are the segment's own counts, which still include such
/// dead processes. `sender_sleeps`, `receiver_sleeps` and `posts` are totals since creation
/// (went to sleep on the doorbell; rang it); `attached` the processes attached through shmchan
/// as the segment counts them (one killed with SIGKILL stays counted).
#[derive(Serialize)]
pub struct HeaderDoc {
    kind: String,
    record: RecordDoc,
    capacity: u32,
    len: usize,
    slot_stride: u32,
    total_len: u64,
    layout_version: u32,
    doorbell: String,
    doorbell_objects: String,
    cleanup: Option<&'static str>,
    creator_pid: u32,
    created: String,
    created_unix_ns: u64,
    age_s: u64,
    endpoints: Vec<EndpointDoc>,
    census: Census,
    segment_live_senders: u32,
    segment_live_receivers: u32,
    sender_sleeps: u64,
    receiver_sleeps: u64,
    posts: u64,
    attached: u32,
    produced: u64,
    consumed: u64,
    senders_waiting: u32,
    receivers_waiting: u32,
}

/// A record fingerprint: `name`, `schema_version`, `size` and `align` in bytes.
#[derive(Serialize)]
struct RecordDoc {
    name: String,
    schema_version: u32,
    size: u32,
    align: u32,
}

/// One registered endpoint: `role` (`"sender"`, `"receiver"`), `pid`, `alive`; `slot`, its
/// entry in the endpoint table; and its own counters, totals since it registered: `records`
/// (sent by a sender, received by a receiver), `sleeps` (went to sleep on the doorbell) and
/// `posts` (rang the doorbell: wake-ups it sent).
#[derive(Serialize)]
pub struct EndpointDoc {
    role: &'static str,
    pid: u32,
    alive: bool,
    slot: usize,
    records: u64,
    sleeps: u64,
    posts: u64,
}

/// A name on the command line that did not lead to a channel: the `name` as given, a stable
/// `kind` (`"bad_name"`, `"not_found"`, `"not_a_channel"`, `"permission_denied"`, `"io"`,
/// `"open"`, …) and the
/// message.
#[derive(Serialize)]
pub struct ErrorDoc {
    /// The name as given.
    pub name: String,
    /// What kind of failure ([`Error::kind`]).
    pub kind: &'static str,
    /// The message.
    pub error: String,
}

impl ErrorDoc {
    /// The document of `name`'s error.
    pub fn new(name: &str, e: &Error) -> ErrorDoc {
        ErrorDoc {
            name: name.to_owned(),
            kind: e.kind(),
            error: e.to_string(),
        }
    }
}

/// `"creator"`, `"last_detach"`, `"keep"`; `None` when unknown.
pub fn cleanup_name(c: Option<Cleanup>) -> Option<&'static str> {
    match c? {
        Cleanup::Creator => Some("creator"),
        Cleanup::LastDetach => Some("last_detach"),
        Cleanup::Keep => Some("keep"),
        Cleanup::WhenDrained => Some("when_drained"),
        _ => None,
    }
}

impl HeaderDoc {
    /// The document of a channel's header.
    pub fn of(i: &ChannelInfo) -> HeaderDoc {
        HeaderDoc {
            kind: i.kind.to_string(),
            record: RecordDoc {
                name: i.record.name.clone(),
                schema_version: i.record.schema_version,
                size: i.record.size,
                align: i.record.align,
            },
            capacity: i.capacity,
            len: i.len,
            slot_stride: i.slot_stride,
            total_len: i.total_len,
            layout_version: i.layout_version,
            doorbell: doorbell(i),
            doorbell_objects: i.doorbell_objects.clone(),
            cleanup: cleanup_name(i.cleanup),
            creator_pid: i.creator_pid,
            created: iso8601(i.created_unix_ns),
            created_unix_ns: i.created_unix_ns,
            age_s: age_s(i.created_unix_ns),
            endpoints: i
                .endpoints
                .iter()
                .map(|e| EndpointDoc {
                    role: e.role,
                    pid: e.pid,
                    alive: e.alive,
                    slot: e.slot,
                    records: e.records,
                    sleeps: e.sleeps,
                    posts: e.posts,
                })
                .collect(),
            census: Census::of(i),
            segment_live_senders: i.live_senders,
            segment_live_receivers: i.live_receivers,
            sender_sleeps: i.sender_sleeps,
            receiver_sleeps: i.receiver_sleeps,
            posts: i.posts,
            attached: i.attached,
            produced: i.produced,
            consumed: i.consumed,
            senders_waiting: i.senders_waiting,
            receivers_waiting: i.receivers_waiting,
        }
    }
}

impl ChannelDoc {
    /// The document of a channel found.
    pub fn of(f: &Found, owners: &mut Owners) -> ChannelDoc {
        let (key, shmid, path) = match &f.place {
            Place::Sysv { key, shmid } => {
                (Some(format!("0x{:08x}", *key as u32)), Some(*shmid), None)
            }
            Place::File(p) => (None, None, Some(p.display().to_string())),
        };
        let state = match &f.inspection {
            Ok(Inspection::Channel(i)) => StateDoc::Channel(Box::new(HeaderDoc::of(i))),
            Ok(Inspection::Corrupted { reason }) => StateDoc::Corrupted {
                reason: reason.clone(),
            },
            Ok(Inspection::Foreign) => StateDoc::Error {
                error: "not a shmchan channel".into(),
            },
            Err(e) => StateDoc::Error {
                error: e.to_string(),
            },
        };
        ChannelDoc {
            backing: f.place.kind(),
            name: f.place.arg(),
            key,
            shmid,
            path,
            owner: f.facts.uid.map(|u| owners.name(u)),
            uid: f.facts.uid,
            perms: f.facts.perms().map(|p| format!("{p:04o}")),
            nattch: f.facts.nattch,
            status: f.facts.status(&f.place),
            size_bytes: f.facts.size,
            state,
        }
    }
}

/// A document as one pretty-printed JSON text.
pub fn to_json(doc: &impl Serialize) -> String {
    serde_json::to_string_pretty(doc).expect("the document serializes (no map has non-string keys)")
}

/// A document as one line of JSON (for `top`'s stream of samples).
pub fn to_json_line(doc: &impl Serialize) -> String {
    serde_json::to_string(doc).expect("the document serializes (no map has non-string keys)")
}
