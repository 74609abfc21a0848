//! Confused deputy: nothing outside a channel is ever touched because its segment says so.
//!
//! A segment names its doorbell objects (a semid, a msqid, POSIX names) and carries a cleanup
//! word; whoever can write the segment can write anything there. Here the victim is root (the
//! test) with a channel of its own whose doorbell objects are 0600; the attacker is this test
//! binary re-executed (`deputy_child`) that drops to `nobody` and crafts a channel — a SysV
//! segment or a file it creates — whose segment names root's objects, with the victim channel's
//! identity copied (keys and names are world-readable) and a cleanup word that says "remove at
//! the last detach". Then root runs `shmchan rm`, `rm --force`, `prune --yes`,
//! `shmchan::remove`, creation at the same key or path (which reclaims stale channels), and
//! open + drop; after each, root's objects must still be there, unchanged (same id or name,
//! owner, values, queued messages). The same-user case: an object of root's that does not carry
//! the channel's identity, named by a channel root made, is refused just the same.
//!
//! Needs root (to become `nobody`); skipped otherwise.

mod common;

use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{hex, shmchan, stderr, unique_key, KeyGuard, TempDir};
use shmchan::inspect::{inspect, Inspection};
use shmchan::{Backing, Channel, Cleanup, Doorbell, OpenError};
use shmchan_os as os;

const NOBODY: u32 = 65534;
const TYPE_NAME: &str = "deputy.test";
/// What the attacker writes into its segment: the doorbell code, descriptor and identity.
const PATCH_ENV: &str = "SHMCHAN_DEPUTY_PATCH";
/// Where the attacker makes its channel: `sysv:KEY` or `file:PATH`; with `:own:DOORBELL`, a
/// channel with real doorbell objects of its own (see `drop_removes_only_what_open_checked`).
const CHILD_ENV: &str = "SHMCHAN_DEPUTY_CHILD";

// Offsets in the ext area (crates/shmchan/src/segment/ext.rs; the layout is frozen).
const CODE: usize = 12;
const CLEANUP: usize = 140;
const DESC: usize = 152;
const DESC_LEN: usize = 128;
const ATTACHED: usize = 344;
const IDENTITY: usize = 352;
/// `Cleanup::LastDetach` as the segment stores it.
const LAST_DETACH: u32 = 2;

fn builder() -> shmchan::Builder<u64> {
    Channel::<u64>::builder()
        .type_name(TYPE_NAME)
        .open_timeout(Duration::ZERO)
}

fn is_root() -> bool {
    if os::identity::geteuid() == 0 {
        return true;
    }
    eprintln!("skipped: the confused-deputy tests need root (to become nobody)");
    false
}

// ---------------------------------------------------------------------------------------------
// The attacker

/// The attacker, when this binary is re-executed with [`CHILD_ENV`]: becomes `nobody`, creates
/// its channel and writes the patch into its segment. A no-op in a normal test run.
#[test]
fn deputy_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    nix::unistd::setgid(nix::unistd::Gid::from_raw(NOBODY)).expect("setgid");
    nix::unistd::setuid(nix::unistd::Uid::from_raw(NOBODY)).expect("setuid");
    assert_eq!(os::identity::geteuid(), NOBODY);
    let mut parts = spec.splitn(4, ':');
    let (kind, place) = (parts.next().unwrap(), parts.next().unwrap());
    let own = parts.next() == Some("own");
    let bell = parts.next().map_or(Doorbell::Futex, |d| d.parse().unwrap());
    let backing = match kind {
        "sysv" => Backing::sysv_key(place.parse().unwrap()),
        _ => Backing::file(place),
    };
    let chan = builder()
        .backing(backing)
        .doorbell(bell)
        .mode(0o666)
        .cleanup(Cleanup::Keep)
        .create()
        .expect("the attacker creates its channel");
    drop(chan);
    let mut patch = Vec::new();
    if let Ok(hex) = std::env::var(PATCH_ENV) {
        patch = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
    }
    let seg = Segment::open(kind, place);
    if !own {
        seg.write(CODE, &patch[..4]);
        seg.write(DESC, &patch[4..4 + DESC_LEN]);
        seg.write(IDENTITY, &patch[4 + DESC_LEN..]);
    }
    seg.write(CLEANUP, &LAST_DETACH.to_le_bytes());
    seg.write(ATTACHED, &(if own { 0u32 } else { 1 }).to_le_bytes());
    println!("crafted");
    std::process::exit(0);
}

/// Runs the attacker: a channel at `place` (`sysv:KEY` or `file:PATH`) made by `nobody`, whose
/// segment names the doorbell objects `patch` describes ([`Victim::patch`]).
fn craft(place: &str, patch: Option<&[u8]>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "deputy_child", "--nocapture"])
        .env(CHILD_ENV, place);
    if let Some(p) = patch {
        cmd.env(
            PATCH_ENV,
            p.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        );
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("crafted"),
        "the attacker failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Raw access to a channel's segment: attached read-write by key, or the file.
enum Segment {
    Sysv(os::ShmAttachment),
    File(std::fs::File),
}

impl Segment {
    fn open(kind: &str, place: &str) -> Segment {
        match kind {
            "sysv" => {
                let id = os::ShmId::open(os::Key::new(place.parse().unwrap())).unwrap();
                Segment::Sysv(id.attach(os::Access::ReadWrite).unwrap())
            }
            _ => Segment::File(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(place)
                    .unwrap(),
            ),
        }
    }

    /// The ext area's offset (ring header bytes 56..64).
    fn ext(&self) -> usize {
        let mut b = [0u8; 8];
        self.read_at(56, &mut b);
        u64::from_le_bytes(b) as usize
    }

    fn read_at(&self, off: usize, buf: &mut [u8]) {
        match self {
            Segment::Sysv(a) => {
                assert!(off + buf.len() <= a.len());
                // SAFETY: in bounds of the attachment (asserted), which lives while `self`
                // does; the other processes of these tests do not write these bytes meanwhile.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        a.as_ptr().as_ptr().add(off),
                        buf.as_mut_ptr(),
                        buf.len(),
                    )
                }
            }
            Segment::File(f) => f.read_exact_at(buf, off as u64).unwrap(),
        }
    }

    /// Writes `bytes` at `off` of the ext area: a peer scribbling on the header.
    fn write(&self, off: usize, bytes: &[u8]) {
        let off = self.ext() + off;
        match self {
            Segment::Sysv(a) => {
                assert!(off + bytes.len() <= a.len());
                // SAFETY: as in `read_at`.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        a.as_ptr().as_ptr().add(off),
                        bytes.len(),
                    )
                }
            }
            Segment::File(f) => f.write_all_at(bytes, off as u64).unwrap(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The victim

/// Root's channel (a file in a root-only directory, mode 0600, kept) whose doorbell objects are
/// the victims, each given a state of its own (semaphore values, a queued message).
struct Victim {
    bell: Doorbell,
    path: PathBuf,
    _dir: TempDir,
}

impl Victim {
    fn new(bell: Doorbell) -> Victim {
        let dir = TempDir::new("deputy-victim");
        let path = dir.path("victim.chan");
        let chan = builder()
            .backing(Backing::file(&path))
            .doorbell(bell)
            .cleanup(Cleanup::Keep)
            .create()
            .unwrap();
        drop(chan);
        let v = Victim {
            bell,
            path,
            _dir: dir,
        };
        v.mark();
        v
    }

    fn segment(&self) -> Segment {
        Segment::open("file", self.path.to_str().unwrap())
    }

    /// What the victim's segment says of its doorbell: code, descriptor, identity.
    fn patch(&self) -> Vec<u8> {
        let seg = self.segment();
        let ext = seg.ext();
        let mut p = vec![0u8; 4 + DESC_LEN + 8];
        seg.read_at(ext + CODE, &mut p[..4]);
        seg.read_at(ext + DESC, &mut p[4..4 + DESC_LEN]);
        seg.read_at(ext + IDENTITY, &mut p[4 + DESC_LEN..]);
        p
    }

    fn desc(&self) -> (i32, [String; 2]) {
        let p = self.patch();
        let d = &p[4..4 + DESC_LEN];
        let name = |o: usize| {
            let raw = &d[o..o + 60];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(60);
            String::from_utf8_lossy(&raw[..end]).into_owned()
        };
        (
            i32::from_le_bytes(d[..4].try_into().unwrap()),
            [name(8), name(68)],
        )
    }

    /// Gives the objects a state an accidental post, wait or removal would change.
    fn mark(&self) {
        let (id, names) = self.desc();
        match self.bell {
            Doorbell::SysvSem => {
                let set = os::SemSet::from_raw(id);
                set.set_val(0, 3).unwrap();
                set.set_val(1, 5).unwrap();
            }
            Doorbell::SysvMsgQueue => {
                os::MsgQueue::from_raw(id)
                    .send(777, b"victim", os::MsgFlags::NOWAIT)
                    .unwrap();
            }
            Doorbell::PosixNamedSem => {
                for (n, name) in names.iter().enumerate() {
                    let s = os::NamedSem::open(name).unwrap();
                    for _ in 0..=n {
                        s.post().unwrap();
                    }
                }
            }
            Doorbell::PosixMq => {
                for name in &names {
                    os::PosixMq::open(name, true)
                        .unwrap()
                        .send(b"v", 3)
                        .unwrap();
                }
            }
            _ => unreachable!(),
        }
    }

    /// The objects as `shmchan stat` describes them.
    fn objects(&self) -> String {
        let Inspection::Channel(info) = inspect(&Backing::file(&self.path)).unwrap() else {
            panic!("the victim is a channel")
        };
        info.doorbell_objects
    }

    /// Everything the kernel says of the objects: ids or names, owners, values, queued data.
    fn state(&self) -> String {
        object_state(self.bell, self.desc())
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        // Root's own, honest channel: its objects are bound to it.
        shmchan::remove(&Backing::file(&self.path)).unwrap();
    }
}

/// What the kernel says of the objects of a doorbell of kind `bell` named by `desc`.
fn object_state(bell: Doorbell, (id, names): (i32, [String; 2])) -> String {
    match bell {
        Doorbell::SysvSem => {
            let set = os::SemSet::from_raw(id);
            match set.stat() {
                Ok(st) => format!(
                    "semid {id} key {} uid {} cuid {} mode {} values {} {}",
                    st.key,
                    st.uid,
                    st.cuid,
                    st.mode,
                    set.get_val(0).unwrap(),
                    set.get_val(1).unwrap()
                ),
                Err(e) => format!("semid {id}: {e}"),
            }
        }
        Doorbell::SysvMsgQueue => match os::MsgQueue::from_raw(id).stat() {
            Ok(st) => format!(
                "msqid {id} key {} uid {} cuid {} mode {} qnum {} cbytes {}",
                st.key, st.uid, st.cuid, st.mode, st.qnum, st.cbytes
            ),
            Err(e) => format!("msqid {id}: {e}"),
        },
        Doorbell::PosixNamedSem => names
            .iter()
            .map(|n| {
                let file = format!("/dev/shm/sem.{}", &n[1..]);
                match (std::fs::symlink_metadata(&file), os::NamedSem::open(n)) {
                    (Ok(st), Ok(s)) => format!(
                        "{n} ino {} uid {} mode {:o} value {}; ",
                        st.ino(),
                        st.uid(),
                        st.mode(),
                        s.value().unwrap()
                    ),
                    (a, b) => format!("{n}: {a:?} {b:?}; "),
                }
            })
            .collect(),
        Doorbell::PosixMq => names
            .iter()
            .map(|n| match os::PosixMq::open(n, true) {
                Ok(q) => {
                    let fd = q.as_fd().try_clone_to_owned().unwrap();
                    let st = std::fs::File::from(fd).metadata().unwrap();
                    format!(
                        "{n} ino {} uid {} mode {:o} messages {}; ",
                        st.ino(),
                        st.uid(),
                        st.mode(),
                        q.cur_msgs().unwrap()
                    )
                }
                Err(e) => format!("{n}: {e}; "),
            })
            .collect(),
        _ => unreachable!(),
    }
}

// ---------------------------------------------------------------------------------------------
// Root acting on a crafted channel

/// Root's every way of acting on the channel at `backing` (CLI name `name`), each followed by a
/// look at the victim: `before` must stay what it is. The channel must still be there after
/// each refusal, so every action meets it. `objects`: the victim objects as `shmchan stat`
/// describes them (the crafted segment must name exactly those).
fn act_on(backing: &Backing, name: &str, objects: &str, victim_state: &dyn Fn() -> String) {
    let Inspection::Channel(info) = inspect(backing).unwrap() else {
        panic!("{name} is not a channel")
    };
    assert_eq!(
        info.doorbell_objects, objects,
        "the crafted segment names the victim"
    );
    assert_eq!(info.cleanup, Some(Cleanup::LastDetach));
    let before = victim_state();
    let same = |what: &str| assert_eq!(victim_state(), before, "after {what}");
    for args in [
        vec!["rm", "--json", name],
        vec!["rm", "--force", "--json", name],
    ] {
        let o = shmchan(&args);
        assert!(
            !o.status.success(),
            "{args:?} succeeded: {}",
            common::stdout(&o)
        );
        let doc = common::doc(&o, "shmchan-rm");
        assert_eq!(doc["removed"], false, "{doc}");
        assert_eq!(
            doc["error"]["kind"],
            "unbound_doorbell",
            "{doc}\n{}",
            stderr(&o)
        );
        same(&args.join(" "));
    }
    let o = shmchan(&["prune", "--yes", "--json", name]);
    let doc = common::doc(&o, "shmchan-prune");
    let row = &doc["channels"][0];
    assert_eq!(row["action"], "failed", "{doc}");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .contains("not this channel's"),
        "{doc}"
    );
    same("prune --yes");

    match shmchan::remove(backing) {
        Err(OpenError::UnboundDoorbell { reason, .. }) => {
            assert!(
                reason.contains("uid") || reason.contains("identity"),
                "{reason}"
            )
        }
        r => panic!("shmchan::remove: expected UnboundDoorbell, got {r:?}"),
    }
    same("shmchan::remove");

    match builder().backing(backing.clone()).create() {
        Err(OpenError::AlreadyExists { reason, .. }) => {
            assert!(reason.contains("not this channel's"), "{reason}")
        }
        Err(e) => panic!("create over it: expected AlreadyExists, got {e}"),
        Ok(_) => panic!("create over it reclaimed it"),
    }
    same("create (stale reclaim)");

    match builder().backing(backing.clone()).open() {
        Err(OpenError::UnboundDoorbell { .. }) => {}
        Err(e) => panic!("open: expected UnboundDoorbell, got {e}"),
        Ok(chan) => {
            // Whatever it connected to, using it and dropping it must leave the victim.
            let (tx, rx) = (chan.sender(), chan.receiver());
            drop((tx, rx, chan));
            same("open + drop");
            panic!("open of the crafted channel succeeded");
        }
    }
    same("open + drop");
}

/// One crafted channel per backing (a SysV segment and a file, both `nobody`'s), each naming
/// the objects of `victim` with its identity copied; root acts on each.
fn cross_user(bell: Doorbell) {
    if !is_root() {
        return;
    }
    let victim = Victim::new(bell);
    let patch = victim.patch();
    let state = || victim.state();

    let objects = victim.objects();

    let key = unique_key();
    let _key = KeyGuard(key);
    craft(&format!("sysv:{key}"), Some(&patch));
    let id = os::ShmId::open(os::Key::new(key)).unwrap();
    assert_eq!(id.stat().unwrap().cuid, NOBODY, "nobody made the segment");
    act_on(&Backing::sysv_key(key), &hex(key), &objects, &state);

    let dir = world_dir("deputy-file");
    let path = dir.path("crafted.chan");
    craft(&format!("file:{}", path.display()), Some(&patch));
    assert_eq!(
        std::fs::metadata(&path).unwrap().uid(),
        NOBODY,
        "nobody made the file"
    );
    act_on(
        &Backing::file(&path),
        path.to_str().unwrap(),
        &objects,
        &state,
    );
}

/// A temporary directory anyone may create files in (sticky, like /tmp).
fn world_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

#[test]
fn nobody_cannot_make_root_touch_roots_sysv_semaphores() {
    cross_user(Doorbell::SysvSem);
}

#[test]
fn nobody_cannot_make_root_touch_roots_sysv_message_queue() {
    cross_user(Doorbell::SysvMsgQueue);
}

#[test]
fn nobody_cannot_make_root_touch_roots_named_semaphores() {
    cross_user(Doorbell::PosixNamedSem);
}

#[test]
fn nobody_cannot_make_root_touch_roots_posix_queues() {
    cross_user(Doorbell::PosixMq);
}

// ---------------------------------------------------------------------------------------------
// Same user, no identity

/// Root's own objects of kind `bell` that no channel made (IPC_PRIVATE, or names without a
/// channel identity), removed when dropped.
struct Stray {
    bell: Doorbell,
    id: i32,
    names: [String; 2],
}

impl Stray {
    fn new(bell: Doorbell) -> Stray {
        let mode = os::Mode::new(0o600);
        let tag = format!("{}-{:x}", std::process::id(), unique_key());
        let names = [
            format!("/shmchan-t-stray-{tag}-d"),
            format!("/shmchan-t-stray-{tag}-r"),
        ];
        let mut id = 0;
        match bell {
            Doorbell::SysvSem => {
                let set = os::SemSet::create(os::Key::PRIVATE, 2, mode).unwrap();
                set.set_val(0, 4).unwrap();
                id = set.raw();
            }
            Doorbell::SysvMsgQueue => {
                let q = os::MsgQueue::create(os::Key::PRIVATE, mode).unwrap();
                q.send(5, b"stray", os::MsgFlags::NOWAIT).unwrap();
                id = q.raw();
            }
            Doorbell::PosixNamedSem => {
                for n in &names {
                    os::NamedSem::create(n, 2, mode).unwrap();
                }
            }
            Doorbell::PosixMq => {
                let attr = os::MqAttr {
                    max_msgs: 4,
                    msg_size: 8,
                };
                for n in &names {
                    os::PosixMq::create(n, attr, mode, true)
                        .unwrap()
                        .send(b"s", 1)
                        .unwrap();
                }
            }
            _ => unreachable!(),
        }
        Stray { bell, id, names }
    }

    /// A descriptor naming these objects, as a segment would hold it.
    fn desc_bytes(&self) -> [u8; DESC_LEN] {
        let mut d = [0u8; DESC_LEN];
        d[..4].copy_from_slice(&self.id.to_le_bytes());
        for (n, off) in self.names.iter().zip([8, 68]) {
            d[off..off + n.len()].copy_from_slice(n.as_bytes());
        }
        d
    }

    fn state(&self) -> String {
        object_state(self.bell, (self.id, self.names.clone()))
    }

    /// The objects as `shmchan stat` describes them.
    fn objects(&self) -> String {
        match self.bell {
            Doorbell::SysvSem => format!("SysV semaphore set semid {}", self.id),
            Doorbell::SysvMsgQueue => format!("SysV message queue msqid {}", self.id),
            Doorbell::PosixNamedSem => {
                format!("named semaphores {} and {}", self.names[0], self.names[1])
            }
            _ => format!(
                "POSIX message queues {} and {}",
                self.names[0], self.names[1]
            ),
        }
    }
}

impl Drop for Stray {
    fn drop(&mut self) {
        match self.bell {
            Doorbell::SysvSem => drop(os::SemSet::from_raw(self.id).remove()),
            Doorbell::SysvMsgQueue => drop(os::MsgQueue::from_raw(self.id).remove()),
            Doorbell::PosixNamedSem => self.names.iter().for_each(|n| {
                let _ = os::NamedSem::unlink(n);
            }),
            _ => self.names.iter().for_each(|n| {
                let _ = os::PosixMq::unlink(n);
            }),
        }
    }
}

/// Root makes a channel of its own (a SysV segment), then writes into it the descriptor of
/// root objects that carry no channel identity: refused, like another user's.
fn same_user(bell: Doorbell) {
    let stray = Stray::new(bell);
    let key = unique_key();
    let _key = KeyGuard(key);
    let backing = Backing::sysv_key(key);
    drop(
        builder()
            .backing(backing.clone())
            .doorbell(bell)
            .cleanup(Cleanup::Keep)
            .create()
            .unwrap(),
    );
    // The channel's own objects, named by its segment until it is overwritten.
    let seg = Segment::open("sysv", &key.to_string());
    let own = {
        let mut d = [0u8; DESC_LEN];
        seg.read_at(seg.ext() + DESC, &mut d);
        d
    };
    let _own = StrayDesc(bell, own);
    seg.write(DESC, &stray.desc_bytes());
    seg.write(CLEANUP, &LAST_DETACH.to_le_bytes());
    drop(seg); // not attached while root acts: prune would see it in use
    act_on(&backing, &hex(key), &stray.objects(), &|| stray.state());
    // Its own objects back in place: removed with it.
    Segment::open("sysv", &key.to_string()).write(DESC, &own);
    shmchan::remove(&backing).unwrap();
}

#[test]
fn objects_without_the_channel_identity_are_refused_sysv_sem() {
    same_user(Doorbell::SysvSem);
}

#[test]
fn objects_without_the_channel_identity_are_refused_sysv_msgq() {
    same_user(Doorbell::SysvMsgQueue);
}

#[test]
fn objects_without_the_channel_identity_are_refused_named_sem() {
    same_user(Doorbell::PosixNamedSem);
}

#[test]
fn objects_without_the_channel_identity_are_refused_posix_mq() {
    same_user(Doorbell::PosixMq);
}

// ---------------------------------------------------------------------------------------------
// Drop with LastDetach

/// `nobody`'s channel with real objects of its own and a cleanup word that says LastDetach: root
/// opens it (the objects are bound to it: they are `nobody`'s, like the channel), then the
/// attacker points the descriptor at root's objects, then root drops it. Root removes what it
/// checked at open (`nobody`'s objects), never what the segment says at drop time.
fn drop_after_swap(bell: Doorbell) {
    if !is_root() {
        return;
    }
    let victim = Victim::new(bell);
    let before = victim.state();
    let key = unique_key();
    let _key = KeyGuard(key);
    craft(&format!("sysv:{key}:own:{bell}"), None);
    let seg = Segment::open("sysv", &key.to_string());
    let theirs = {
        let mut d = [0u8; DESC_LEN];
        seg.read_at(seg.ext() + DESC, &mut d);
        let mut i = [0u8; 8];
        seg.read_at(seg.ext() + IDENTITY, &mut i);
        (d, i)
    };
    let _theirs_guard = StrayDesc(bell, theirs.0);
    let chan = builder()
        .backing(Backing::sysv_key(key))
        .open()
        .expect("open nobody's channel with its own objects");
    let patch = victim.patch();
    seg.write(DESC, &patch[4..4 + DESC_LEN]);
    seg.write(IDENTITY, &patch[4 + DESC_LEN..]);
    // Detached first: the kernel's attach count is what tells root that it is the last.
    drop(seg);
    drop(chan);
    assert_eq!(victim.state(), before, "after drop");
    // nobody's objects went with the channel's last detach.
    let gone = object_state(bell, desc_of(&theirs.0));
    assert!(
        !gone.contains(" uid "),
        "nobody's objects should be removed: {gone}"
    );
}

fn desc_of(d: &[u8; DESC_LEN]) -> (i32, [String; 2]) {
    let name = |o: usize| {
        let raw = &d[o..o + 60];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(60);
        String::from_utf8_lossy(&raw[..end]).into_owned()
    };
    (
        i32::from_le_bytes(d[..4].try_into().unwrap()),
        [name(8), name(68)],
    )
}

/// Removes the objects a descriptor names when dropped (the attacker's own, if a test fails
/// before the channel removes them).
struct StrayDesc(Doorbell, [u8; DESC_LEN]);

impl Drop for StrayDesc {
    fn drop(&mut self) {
        let (id, names) = desc_of(&self.1);
        match self.0 {
            Doorbell::SysvSem => drop(os::SemSet::from_raw(id).remove()),
            Doorbell::SysvMsgQueue => drop(os::MsgQueue::from_raw(id).remove()),
            Doorbell::PosixNamedSem => names.iter().for_each(|n| {
                let _ = os::NamedSem::unlink(n);
            }),
            _ => names.iter().for_each(|n| {
                let _ = os::PosixMq::unlink(n);
            }),
        }
    }
}

#[test]
fn drop_removes_only_what_open_checked() {
    for bell in [
        Doorbell::SysvSem,
        Doorbell::SysvMsgQueue,
        Doorbell::PosixNamedSem,
        Doorbell::PosixMq,
    ] {
        drop_after_swap(bell);
    }
}

/// A segment that names no object (empty names), or an object that is gone, leaves nothing to
/// protect: the channel is removed as usual.
#[test]
fn nothing_named_nothing_refused() {
    for (code, id) in [(7u32, 0i32), (5, 0), (3, i32::MAX), (6, i32::MAX)] {
        let key = unique_key();
        let _key = KeyGuard(key);
        let kept = builder()
            .backing(Backing::sysv_key(key))
            .cleanup(Cleanup::Keep);
        drop(kept.create().unwrap());
        let seg = Segment::open("sysv", &key.to_string());
        seg.write(CODE, &code.to_le_bytes());
        let mut desc = [0u8; DESC_LEN];
        desc[..4].copy_from_slice(&id.to_le_bytes());
        seg.write(DESC, &desc);
        drop(seg);
        shmchan::remove(&Backing::sysv_key(key)).unwrap_or_else(|e| panic!("code {code}: {e}"));
    }
}
