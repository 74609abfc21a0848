//! The driver of the `doorbell_claims` fuzz target (`fuzz/fuzz_targets/doorbell_claims.rs`,
//! which includes this file and `fuzz_driver.rs` with `#[path]`), shared with
//! `tests/tests/fuzz_replay.rs`, which replays its corpus on stable.
//!
//! A real channel (in a heap buffer or a file; any doorbell with kernel objects, or none; any
//! cleanup) is created; then the input writes what it likes into the segment's claims about its
//! doorbell — the doorbell code, the descriptor (ids and names), the channel identity, the
//! cleanup word, the attach count and the life-token set word — with shortcuts to name
//! *victims*: kernel objects of this process that no channel made (IPC_PRIVATE sets and
//! queues, POSIX names without a channel identity), and, when running as root, objects at
//! known keys and names that carry an identity the input can copy but that belong to another
//! user. Between the writes, peers open
//! the channel, send and receive, and go; the channel is inspected and removed; the creator
//! goes. Nothing may crash or hang, and at the end every victim must be exactly as it was:
//! still there, with the same values and messages (a post, a wait or a removal would change
//! them). The channel's own objects are removed at the end whatever the input did.

use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shmchan::os;
use shmchan::{Backing, Channel, Cleanup, Doorbell};

use crate::fuzz_driver::{builder, rec, Buf, Rec};

// Offsets in the ext area (crates/shmchan/src/segment/ext.rs; the layout is frozen).
const CODE: usize = 12;
const CLEANUP: usize = 140;
const DESC: usize = 152;
const DESC_LEN: usize = 128;
const NAME_OFF: [usize; 2] = [8, 68];
const ATTACHED: usize = 344;
const IDENTITY: usize = 352;
/// The life-token set word (semid + 1; read only for SysV segments).
const LIFE_SET: usize = 364;
/// The uid the other-user victims are given.
const NOBODY: u32 = 65534;

/// The doorbells a channel is created with (byte 0, bits 1..4).
const BELLS: [Doorbell; 8] = [
    Doorbell::Futex,
    Doorbell::SysvSem,
    Doorbell::SysvMsgQueue,
    Doorbell::PosixNamedSem,
    Doorbell::PosixMq,
    Doorbell::Spin,
    Doorbell::PosixSem,
    Doorbell::SysvSem,
];

/// The doorbell codes the segment stores (futex 1, spin 2, SysV semaphore 3, POSIX semaphore
/// 4, named semaphore 5, SysV queue 6, POSIX queue 7, eventfd 8; never reused).
const CODES: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name no other run (in this or another process) uses.
fn unique(tag: &str) -> String {
    // Relaxed: a process-local counter; uniqueness needs no ordering.
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut r = [0u8; 4];
    os::identity::getrandom(&mut r).expect("getrandom");
    format!(
        "shmchan-fuzz-{tag}-{}-{n}-{:08x}",
        std::process::id(),
        u32::from_le_bytes(r)
    )
}

/// One victim: a kernel object no channel of this run may touch, and how to find it.
enum Victim {
    Sem(os::SemSet),
    Msg(os::MsgQueue),
    /// A named semaphore, or a POSIX queue (`mq`), by name.
    Named {
        name: String,
        mq: bool,
    },
}

/// The victims of a run, with the identity the other-user ones carry. Removed when dropped.
struct Victims {
    list: Vec<Victim>,
    /// The identity in the other-user victims' keys and names (0 when there are none).
    identity: u64,
}

impl Victims {
    fn new() -> Victims {
        let mode = os::Mode::new(0o600);
        let mut list = Vec::new();
        let set = os::SemSet::create(os::Key::PRIVATE, 2, mode).expect("victim set");
        set.set_val(0, 3).expect("SETVAL");
        list.push(Victim::Sem(set));
        let q = os::MsgQueue::create(os::Key::PRIVATE, mode).expect("victim queue");
        q.send(7, b"victim", os::MsgFlags::NOWAIT).expect("msgsnd");
        list.push(Victim::Msg(q));
        let sem = format!("/{}", unique("vsem"));
        os::NamedSem::create(&sem, 2, mode).expect("victim semaphore");
        list.push(Victim::Named {
            name: sem,
            mq: false,
        });
        let mq = format!("/{}", unique("vmq"));
        mq_with_message(&mq, mode);
        list.push(Victim::Named { name: mq, mq: true });
        let mut identity = 0;
        if os::identity::geteuid() == 0 {
            // Objects made as shmchan would make them for a channel with `identity`, then given
            // to another user: the input can copy the identity, but not the owner.
            let mut b = [0u8; 8];
            os::identity::getrandom(&mut b).expect("getrandom");
            identity = u64::from_le_bytes(b) | 0x1_0000_0001; // a key that is never 0 or -1
            let key = os::Key::new(identity as u32 as i32);
            if let Ok(set) = os::SemSet::create(key, 2, mode) {
                set.set_val(1, 4).expect("SETVAL");
                set.set_owner(NOBODY, NOBODY).expect("IPC_SET");
                list.push(Victim::Sem(set));
            }
            if let Ok(q) = os::MsgQueue::create(key, mode) {
                q.send(9, b"theirs", os::MsgFlags::NOWAIT).expect("msgsnd");
                q.set_owner(NOBODY, NOBODY).expect("IPC_SET");
                list.push(Victim::Msg(q));
            }
            for d in ["d", "r"] {
                let sem = format!("/shmchan-sem-1-{identity:016x}-{d}");
                if os::NamedSem::create(&sem, 1, mode).is_ok() {
                    let path = format!("/dev/shm/sem.{}", &sem[1..]);
                    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).expect("chown");
                    list.push(Victim::Named {
                        name: sem,
                        mq: false,
                    });
                }
                let mq = format!("/shmchan-mq-1-{identity:016x}-{d}");
                if let Some(q) = mq_with_message(&mq, mode) {
                    std::os::unix::fs::fchown(q.as_fd(), Some(NOBODY), Some(NOBODY))
                        .expect("fchown");
                    list.push(Victim::Named { name: mq, mq: true });
                }
            }
        }
        Victims { list, identity }
    }

    fn get(&self, i: u8) -> &Victim {
        &self.list[i as usize % self.list.len()]
    }

    /// What the kernel says of every victim: present, owner, values, queued messages.
    fn state(&self) -> Vec<String> {
        self.list.iter().map(Victim::state).collect()
    }
}

fn mq_with_message(name: &str, mode: os::Mode) -> Option<os::PosixMq> {
    let attr = os::MqAttr {
        max_msgs: 4,
        msg_size: 8,
    };
    let q = os::PosixMq::create(name, attr, mode, true).ok()?;
    q.send(b"v", 1).expect("mq_send");
    Some(q)
}

impl Victim {
    fn state(&self) -> String {
        match self {
            Victim::Sem(s) => match (s.stat(), s.get_val(0), s.get_val(1)) {
                (Ok(st), Ok(a), Ok(b)) => format!("sem {} {} {} {a} {b}", s.raw(), st.uid, st.key),
                r => format!("sem {}: {r:?}", s.raw()),
            },
            Victim::Msg(q) => match q.stat() {
                Ok(st) => format!("msg {} {} {} {}", q.raw(), st.uid, st.qnum, st.cbytes),
                Err(e) => format!("msg {}: {e}", q.raw()),
            },
            Victim::Named { name, mq: false } => {
                let st = os::file::lstat(format!("/dev/shm/sem.{}", &name[1..]));
                let v = os::NamedSem::open(name).and_then(|s| s.value());
                format!("{name} {:?} {v:?}", st.map(|s| (s.ino, s.uid)))
            }
            Victim::Named { name, mq: true } => match os::PosixMq::open(name, true) {
                Ok(q) => format!(
                    "{name} {:?} {:?}",
                    os::file::fstat(&q).map(|s| (s.ino, s.uid)),
                    q.cur_msgs()
                ),
                Err(e) => format!("{name}: {e}"),
            },
        }
    }

    fn id(&self) -> i32 {
        match self {
            Victim::Sem(s) => s.raw(),
            Victim::Msg(q) => q.raw(),
            Victim::Named { .. } => 0,
        }
    }

    fn name(&self) -> &str {
        match self {
            Victim::Named { name, .. } => name,
            _ => "",
        }
    }
}

impl Drop for Victims {
    fn drop(&mut self) {
        for v in &self.list {
            match v {
                Victim::Sem(s) => drop(s.remove()),
                Victim::Msg(q) => drop(q.remove()),
                Victim::Named { name, mq: false } => drop(os::NamedSem::unlink(name)),
                Victim::Named { name, mq: true } => drop(os::PosixMq::unlink(name)),
            }
        }
    }
}

/// Where the channel lives: a heap buffer or a file (removed when dropped).
enum Home {
    Heap(Buf),
    File(PathBuf),
}

impl Home {
    fn write(&self, ext: usize, off: usize, bytes: &[u8]) {
        match self {
            Home::Heap(buf) => buf.write(ext + off, bytes),
            Home::File(p) => {
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(p) {
                    let _ = f.write_all_at(bytes, (ext + off) as u64);
                }
            }
        }
    }

    fn read(&self, ext: usize, off: usize, len: usize) -> Vec<u8> {
        match self {
            Home::Heap(buf) => buf.to_vec()[ext + off..ext + off + len].to_vec(),
            Home::File(p) => {
                let mut out = vec![0u8; len];
                if let Ok(f) = std::fs::File::open(p) {
                    let _ = f.read_exact_at(&mut out, (ext + off) as u64);
                }
                out
            }
        }
    }

    /// Opens a peer over the channel (`None` when it is refused).
    fn open(&self) -> Option<Channel<Rec>> {
        match self {
            // SAFETY: the buffer outlives every channel over it: `doorbell_claims` drops the
            // peers and the creator before the home.
            Home::Heap(buf) => unsafe { builder().open_in(buf.base(), buf.len()) }.ok(),
            Home::File(p) => builder().backing(Backing::file(p)).open().ok(),
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Home::File(p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes the channel's own doorbell objects (of its doorbell kind, as its creator described
/// them before any write) when dropped, whatever the input made of the segment.
struct Own(Doorbell, Vec<u8>);

impl Drop for Own {
    fn drop(&mut self) {
        let d = &self.1;
        let id = i32::from_le_bytes(d[..4].try_into().expect("4 bytes"));
        let name = |off: usize| {
            let raw = &d[off..off + 60];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        };
        match self.0 {
            Doorbell::SysvSem => drop(os::SemSet::from_raw(id).remove()),
            Doorbell::SysvMsgQueue => drop(os::MsgQueue::from_raw(id).remove()),
            Doorbell::PosixNamedSem => NAME_OFF.into_iter().for_each(|o| {
                let _ = os::NamedSem::unlink(&name(o));
            }),
            Doorbell::PosixMq => NAME_OFF.into_iter().for_each(|o| {
                let _ = os::PosixMq::unlink(&name(o));
            }),
            _ => {}
        }
    }
}

/// The operations' bytes, read front to back; past the end, zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take(&mut self, n: usize) -> Vec<u8> {
        let (a, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        let mut v = a.to_vec();
        v.resize(n, 0);
        v
    }
}

/// A short script on a peer: what a process that opens a channel does.
fn exercise(chan: &Channel<Rec>) {
    let mut tx = chan.sender().ok();
    let mut rx = chan.receiver().ok();
    if let Some(tx) = tx.as_mut() {
        let _ = tx.try_send(rec(1));
        let _ = tx.send_timeout(rec(2), Duration::from_micros(50));
    }
    if let Some(rx) = rx.as_mut() {
        let _ = rx.try_recv();
        let _ = rx.recv_timeout(Duration::from_micros(50));
    }
    drop((tx, rx));
}

/// The input: byte 0 = heap/file (bit 0), doorbell (bits 1..4, `BELLS`), MPMC (bit 4),
/// cleanup (bits 5..7: creator, last detach, keep); then operations (mod 16), each with its
/// arguments:
///
/// 0 code(u32) · 1 cleanup(u32) · 2 attached(u32) · 3 identity(u64) · 4 descriptor bytes
/// (offset, n < 32, n bytes) · 5 a victim's id into the descriptor (victim) · 6 a victim's
/// name into a name slot (victim, slot) · 7 the other-user victims' identity · 8 the creator's
/// own descriptor and identity back · 9 a peer opens (and runs a short script) · 10 the oldest
/// peer goes · 11 inspect and `shmchan::remove` (file) · 12 the creator goes · 13 a small
/// cleanup word (0..4) · 14 a doorbell code that exists (index into `CODES`) · 15 nothing.
pub fn doorbell_claims(data: &[u8]) {
    let Some((&cfg, ops)) = data.split_first() else {
        return;
    };
    let victims = Victims::new();
    let before = victims.state();
    let on_file = cfg & 1 == 1;
    let bell = BELLS[(cfg >> 1) as usize & 7];
    let mpmc = cfg & 0x10 != 0;
    let cleanup = match (cfg >> 5) % 3 {
        0 => Cleanup::Creator,
        1 if !on_file => Cleanup::LastDetach,
        _ => Cleanup::Keep,
    };
    let b = builder().capacity(4).doorbell(bell).cleanup(cleanup);
    let b = if mpmc { b.mpmc() } else { b.spsc() };
    let home = if on_file {
        Home::File(std::env::temp_dir().join(unique("claims")))
    } else {
        Home::Heap(Buf::zeroed(b.segment_len().expect("segment length")))
    };
    let created = match &home {
        // SAFETY: zeroed, 128-aligned, `len` bytes; every channel over it is dropped before
        // `home` (the creator and the peers are dropped at the end of this function, in order).
        Home::Heap(buf) => unsafe { b.create_in(buf.base(), buf.len()) },
        Home::File(p) => b.backing(Backing::file(p)).create(),
    };
    let Ok(creator) = created else {
        return; // out of kernel objects, say: nothing was made
    };
    let ext = match &home {
        Home::Heap(buf) => buf.read_u64(56) as usize,
        Home::File(_) => u64::from_le_bytes(home.read(0, 56, 8).try_into().expect("8")) as usize,
    };
    let own_desc = home.read(ext, DESC, DESC_LEN);
    let own_identity = home.read(ext, IDENTITY, 8);
    let _own = Own(bell, own_desc.clone());
    let mut creator = Some(creator);
    let mut peers: Vec<Channel<Rec>> = Vec::new();
    let mut input = Input(ops);
    for _ in 0..64 {
        if input.0.is_empty() {
            break;
        }
        match input.take(1)[0] % 16 {
            0 => home.write(ext, CODE, &input.take(4)),
            1 => home.write(ext, CLEANUP, &input.take(4)),
            2 => home.write(ext, ATTACHED, &input.take(4)),
            3 => home.write(ext, IDENTITY, &input.take(8)),
            4 => {
                let a = input.take(2);
                let bytes = input.take(a[1] as usize % 32);
                let off = (a[0] as usize % DESC_LEN).min(DESC_LEN - bytes.len());
                home.write(ext, DESC + off, &bytes);
            }
            5 => home.write(ext, DESC, &victims.get(input.take(1)[0]).id().to_le_bytes()),
            6 => {
                let a = input.take(2);
                let mut name = victims.get(a[0]).name().as_bytes().to_vec();
                name.resize(60, 0);
                home.write(ext, DESC + NAME_OFF[a[1] as usize & 1], &name);
            }
            7 => home.write(ext, IDENTITY, &victims.identity.to_le_bytes()),
            8 => {
                home.write(ext, DESC, &own_desc);
                home.write(ext, IDENTITY, &own_identity);
            }
            9 => {
                if let Some(p) = home.open() {
                    exercise(&p);
                    if peers.len() < 2 {
                        peers.push(p);
                    }
                }
            }
            10 if !peers.is_empty() => {
                peers.remove(0);
            }
            11 => {
                if let Home::File(p) = &home {
                    let _ = shmchan::inspect::inspect(&Backing::file(p));
                    if shmchan::remove(&Backing::file(p)).is_ok() {
                        break; // the channel is gone (its own objects with it)
                    }
                }
            }
            12 => drop(creator.take()),
            13 => home.write(ext, CLEANUP, &u32::from(input.take(1)[0] % 4).to_le_bytes()),
            14 => {
                let i = input.take(1)[0] as usize % CODES.len();
                home.write(ext, CODE, &CODES[i].to_le_bytes());
            }
            15 => {
                let id = victims.get(input.take(1)[0]).id();
                home.write(ext, LIFE_SET, &(id as u32).wrapping_add(1).to_le_bytes());
            }
            _ => {}
        }
    }
    drop(peers);
    drop(creator);
    if let Home::File(p) = &home {
        let _ = shmchan::remove(&Backing::file(p));
    }
    assert_eq!(
        victims.state(),
        before,
        "a channel acted on a doorbell object that is not its own"
    );
}
