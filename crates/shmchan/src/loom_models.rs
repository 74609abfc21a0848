//! Loom models of the endpoint table's protocol (`crate::table`) and of the segment's wake-ups,
//! against live sends and receives on a real ring (`shmchan-ring`, whose atomics swap to
//! loom's with the same `cfg`).
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p shmchan --lib loom_models
//! ```
//!
//! Processes are threads here. Loom cannot model whether a process lives, so the reaper asks
//! a fake oracle ([`Alive`]) that knows which (pid, start time) pairs run; a process's death is
//! a thread that ends, and the kernel's report of it a `join`. A kernel doorbell is a loom
//! counting semaphore ([`Sem`]); a lost wake-up leaves a thread blocked on it forever, which
//! loom reports as a deadlock.
//!
//! Each model names the ordering it catches: weakening that one ordering (Release or Acquire to
//! Relaxed, or dropping the fence) makes loom find a failing execution, as recorded with each
//! model. Models with three threads cap the preemption bound at 2 (as `shmchan-ring`'s do).

use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
use std::ptr::NonNull;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use shmchan_ring as ring;

use crate::barrier::Publish;
use crate::segment::senders_sleep;
use crate::table::{Entry, Liveness, Masks, Process, Refused, Role, Table};

mod gate;
mod lane;
mod peek;
mod wake;

/// Runs a loom model with at most `max_preemptions` (or `LOOM_MAX_PREEMPTIONS`, if lower);
/// prints how many executions were explored (visible with `--nocapture`).
fn model(max_preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let mut b = loom::model::Builder::new();
    let bound = b
        .preemption_bound
        .map_or(max_preemptions, |p| p.min(max_preemptions));
    b.preemption_bound = Some(bound);
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    b.check(move || {
        counter.fetch_add(1, Relaxed);
        f();
    });
    println!(
        "loom: {} executions explored (preemption bound {bound})",
        runs.load(Relaxed)
    );
}

/// An endpoint table of `n` entries in heap memory (built inside the model: loom's atomics
/// belong to one execution).
struct Mem {
    masks: Masks,
    entries: Vec<Entry>,
    spsc: bool,
}

impl Mem {
    fn new(n: usize, spsc: bool) -> Arc<Mem> {
        Arc::new(Mem {
            masks: Masks::new(),
            entries: (0..n).map(|_| Entry::new()).collect(),
            spsc,
        })
    }

    fn table(&self) -> Table<'_> {
        Table::new(&self.masks, &self.entries, self.spsc)
    }
}

/// The fake liveness oracle: these (pid, start time) pairs run, nothing else does.
struct Alive(&'static [(u32, u64)]);

impl Liveness for Alive {
    fn pidns(&self) -> Option<u64> {
        Some(NS)
    }

    fn alive(&self, pid: u32, start: Option<u64>) -> bool {
        self.0
            .iter()
            .any(|&(p, s)| p == pid && start.is_none_or(|start| start == s))
    }
}

/// The fake oracle of a process that may be exiting: `pid` runs until `exited` is set (the
/// kernel's report of the death, which comes after everything the process did: Release when
/// it exits, Acquire here); every other process runs.
struct Dying<'a> {
    pid: u32,
    exited: &'a AtomicBool,
}

impl Liveness for Dying<'_> {
    fn pidns(&self) -> Option<u64> {
        Some(NS)
    }

    fn alive(&self, pid: u32, _start: Option<u64>) -> bool {
        // SYNC(model-exit): Acquire pairs with the dying thread's Release store.
        pid != self.pid || !self.exited.load(Ordering::Acquire)
    }
}

/// The PID namespace of the model's processes (all one).
const NS: u64 = 7;

const P1: Process = Process {
    pid: 11,
    start: 100,
    pidns: NS,
};
const P2: Process = Process {
    pid: 12,
    start: 200,
    pidns: NS,
};
const P3: Process = Process {
    pid: 13,
    start: 300,
    pidns: NS,
};

/// Registers with no reaping (the table is large enough).
fn register(t: Table<'_>, role: Role, p: Process) -> Result<usize, Refused> {
    t.register(role, p, &Alive(&[]), &mut |_| 0)
}

/// A ring of 8-byte records in a zeroed, 128-aligned heap allocation.
struct Heap {
    ptr: NonNull<u8>,
    alloc: AllocLayout,
    ring: ring::RawRing,
}

impl Heap {
    fn new(kind: ring::RingKind, capacity: u32) -> Arc<Heap> {
        let cfg = ring::RingConfig::new(kind, capacity, 8, 8);
        let len = ring::Layout::new(&cfg).unwrap().total_len as usize;
        let alloc = AllocLayout::from_size_align(len, 128).unwrap();
        // SAFETY: a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(alloc) }).unwrap();
        // SAFETY: a fresh zeroed allocation of `len` bytes, 128-aligned, that nobody else
        // uses; it outlives the ring and every handle (freed when the last `Arc<Heap>` goes,
        // after every thread of the model that holds one has been joined).
        let ring = unsafe { ring::RawRing::init(ptr, len, &cfg) }.unwrap();
        Arc::new(Heap { ptr, alloc, ring })
    }

    /// The one producer and the one consumer of an SPSC ring.
    fn spsc(&self) -> (ring::SpscProducer, ring::SpscConsumer) {
        // SAFETY: called once per ring: one producer, one consumer.
        unsafe {
            (
                self.ring.spsc_producer().unwrap(),
                self.ring.spsc_consumer().unwrap(),
            )
        }
    }
}

// SAFETY: the region is accessed only through the ring's atomics and its handles, which the
// ring makes Send; the allocation itself is freed once, in Drop.
unsafe impl Send for Heap {}
// SAFETY: as above; `&Heap` gives out only the `Copy` ring view.
unsafe impl Sync for Heap {}

impl Drop for Heap {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; every handle has been dropped.
        unsafe { dealloc(self.ptr.as_ptr(), self.alloc) }
    }
}

/// A counting semaphore (loom Mutex + Condvar) standing in for a kernel doorbell object.
struct Sem {
    count: Mutex<u32>,
    cv: Condvar,
}

impl Sem {
    fn new() -> Sem {
        Sem {
            count: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    fn post(&self, n: u32) {
        if n > 0 {
            *self.count.lock().unwrap() += n;
            self.cv.notify_all();
        }
    }

    fn wait(&self) {
        let mut c = self.count.lock().unwrap();
        while *c == 0 {
            c = self.cv.wait(c).unwrap();
        }
        *c -= 1;
    }

    fn value(&self) -> u32 {
        *self.count.lock().unwrap()
    }
}

fn rec(v: u64) -> [u8; 8] {
    v.to_ne_bytes()
}

/// A receiver's non-blocking receive with the drain protocol of the endpoints (`pop_attempt`):
/// on an empty ring whose senders are gone, try once more before reporting the disconnection.
/// `Some(true)`: a record; `Some(false)`: disconnected; `None`: empty, senders live.
fn try_recv(c: &mut ring::SpscConsumer, t: Table<'_>) -> Option<bool> {
    let mut out = [0u8; 8];
    if c.try_pop(&mut out).is_ok() {
        return Some(true);
    }
    if !t.gone(Role::Sender) {
        return None;
    }
    Some(c.try_pop(&mut out).is_ok())
}

/// A receiver racing the senders' departure: two attempts (no spinning: loom never hands a
/// thread that yielded the stale value it saw before, which would hide the race), each of
/// which must not report the disconnection before the one record was received. Then, once
/// the senders are done (`join`), drains: returns how many records it got in all.
fn receive_racing(
    c: &mut ring::SpscConsumer,
    t: Table<'_>,
    join: impl FnOnce(),
    what: &str,
) -> u32 {
    let mut got = 0;
    for _ in 0..2 {
        match try_recv(c, t) {
            Some(true) => got += 1,
            Some(false) => assert_eq!(got, 1, "{what}"),
            None => {}
        }
    }
    join();
    loop {
        match try_recv(c, t) {
            Some(true) => got += 1,
            Some(false) => return got,
            None => panic!("the senders are done, yet not gone"),
        }
    }
}

/// A first registration of a role is never taken for its departure: `gone` loads `ever`, then
/// the live mask again.
///
/// Catches `SYNC(endpoint-ever)`: with the Release store of `ever` in `Table::register` (or
/// the Acquire load of it in `Table::gone`) weakened to Relaxed, the reload of the mask may
/// still read the old, empty value after `ever` read 1, and loom fails the assertion. (Before
/// `gone` reloaded the mask — one load of the mask, then one of `ever` — this failed with any
/// ordering: the registration can complete between the two loads.)
#[test]
fn first_registration_is_not_a_departure() {
    model(3, || {
        let mem = Mem::new(2, true);
        let m = mem.clone();
        let sender = thread::spawn(move || register(m.table(), Role::Sender, P1).unwrap());
        let gone = mem.table().gone(Role::Sender);
        sender.join().unwrap();
        assert!(
            !gone,
            "a sender's first registration was seen as its departure"
        );
        assert!(!mem.table().gone(Role::Sender));
    });
}

/// A receiver waits for its first sender by polling, as the spin doorbell does (every try
/// that finds the ring empty asks whether the senders are gone), while that sender registers
/// and commits a record: no try reports the disconnection, and the record arrives.
///
/// The end-to-end form of the model above, and the loss a long `kill -9` run of the spin
/// doorbell once showed: a receiver blocked in `recv` from the start got `Disconnected` with
/// nothing received, the moment its sender connected, and the sender's records then sat in
/// the ring. Fails, like the model above, with the `gone` that loaded the mask once and then
/// `ever`, and with `SYNC(endpoint-ever)` weakened.
#[test]
fn first_sender_is_never_a_disconnection() {
    model(3, || {
        let mem = Mem::new(2, true);
        let heap = Heap::new(ring::RingKind::Spsc, 2);
        register(mem.table(), Role::Receiver, P2).unwrap();
        let (mut p, mut c) = heap.spsc();
        let (m, h) = (mem.clone(), heap.clone());
        let sender = thread::spawn(move || {
            register(m.table(), Role::Sender, P1).unwrap();
            p.try_push(&rec(7)).unwrap();
            drop(p);
            drop(h);
        });
        let mut got = 0;
        for _ in 0..2 {
            match try_recv(&mut c, mem.table()) {
                Some(true) => got += 1,
                Some(false) => panic!("Disconnected while the first sender connected"),
                None => {}
            }
        }
        sender.join().unwrap();
        if got == 0 {
            assert_eq!(try_recv(&mut c, mem.table()), Some(true));
        }
    });
}

/// The last sender commits a record and leaves; the receiver drains before it reports the
/// disconnection, so it never reports `Disconnected` while a committed record is unread.
///
/// Catches `SYNC(endpoint-leave)`: with the Release clear of the live bit in
/// `Table::deregister` (or both Acquire loads of the mask in `Table::gone`) weakened to Relaxed,
/// the receiver can see the sender gone and still read the ring's stale tail: it reports the
/// disconnection with the record unread (`got == 0`).
#[test]
fn receiver_drains_before_disconnected() {
    model(3, || {
        let mem = Mem::new(2, true);
        let heap = Heap::new(ring::RingKind::Spsc, 2);
        let s = register(mem.table(), Role::Sender, P1).unwrap();
        register(mem.table(), Role::Receiver, P2).unwrap();
        let (mut p, mut c) = heap.spsc();
        let (m, h) = (mem.clone(), heap.clone());
        let sender = thread::spawn(move || {
            p.try_push(&rec(7)).unwrap();
            drop(p);
            m.table()
                .deregister(Role::Sender, s, P1.pid, &Alive(&[]), |_| {});
            drop(h);
        });
        let what = "disconnected with a committed record unread";
        let got = receive_racing(&mut c, mem.table(), || sender.join().unwrap(), what);
        assert_eq!(got, 1);
    });
}

/// A sender process dies right after committing a record, and another endpoint's
/// housekeeping (an MPMC sibling's, or any registration that finds the table full) reaps it.
/// The receiver, seeing the senders gone, must still drain the dead sender's record first.
///
/// Catches `SYNC(endpoint-leave)` on the reaper's side: with the Release clear of the live bit
/// in `Table::reap_dead` weakened to Relaxed, the receiver can see the senders gone after the
/// reaping without seeing the record the dead sender committed before it died.
#[test]
fn receiver_drains_a_reaped_sender() {
    model(3, || {
        let mem = Mem::new(3, false);
        let heap = Heap::new(ring::RingKind::Spsc, 2);
        register(mem.table(), Role::Sender, P1).unwrap();
        register(mem.table(), Role::Receiver, P2).unwrap();
        let (mut p, mut c) = heap.spsc();
        let exited = Arc::new(AtomicBool::new(false));
        let (h, x) = (heap.clone(), exited.clone());
        // P1 commits and dies.
        let dying = thread::spawn(move || {
            p.try_push(&rec(7)).unwrap();
            drop(p);
            drop(h);
            // SYNC(model-exit): Release: everything P1 did comes before its reported death.
            x.store(true, Ordering::Release);
        });
        let (m, x) = (mem.clone(), exited.clone());
        let reaper = thread::spawn(move || {
            m.table().reap_dead(
                Role::Sender,
                &Dying {
                    pid: P1.pid,
                    exited: &x,
                },
            )
        });
        let what = "disconnected with a dead sender's record unread";
        let join = || {
            dying.join().unwrap();
            reaper.join().unwrap();
            // Later housekeeping, once the death is known for sure.
            mem.table().reap_dead(
                Role::Sender,
                &Dying {
                    pid: P1.pid,
                    exited: &exited,
                },
            );
        };
        let got = receive_racing(&mut c, mem.table(), join, what);
        assert_eq!(got, 1);
    });
}

/// A reaper runs while a new endpoint registers in the entry a departed one left (whose start
/// time is still there): the new owner's live bit is never cleared.
///
/// Catches `SYNC(endpoint-live)`: with the Release RMW that sets the live bit in
/// `Table::register` (or the reaper's Acquire load of the mask in `Table::reap_dead`) weakened
/// to Relaxed, the reaper can see the new owner's pid and bit but the old owner's start time,
/// take the new owner for a dead process whose pid was reused, and reap it.
#[test]
fn reaper_never_clears_a_new_owner() {
    model(3, || {
        let mem = Mem::new(2, false);
        // P1 registered in entry 0 and left: the entry is free, its start time stale.
        let old = register(mem.table(), Role::Receiver, P1).unwrap();
        mem.table()
            .deregister(Role::Receiver, old, P1.pid, &Alive(&[]), |_| {});
        let m = mem.clone();
        let newcomer = thread::spawn(move || register(m.table(), Role::Receiver, P2).unwrap());
        // Only P2 (as it started at 200) runs.
        let reaped = mem.table().reap_dead(Role::Receiver, &Alive(&[(12, 200)]));
        let slot = newcomer.join().unwrap();
        assert_eq!(reaped, 0, "a live endpoint was reaped");
        let (masks, endpoints) = mem.table().listing();
        assert_eq!(masks[Role::Receiver.index()], 1 << slot);
        assert_eq!(endpoints, [(Role::Receiver, P2.pid, P2.start)]);
    });
}

/// A blocking send on a full ring: try; announce in the room cell; re-check; sleep. A
/// disconnection ends it. Returns whether the record went in.
fn blocking_send(
    p: &mut ring::SpscProducer,
    v: u64,
    room: &Sem,
    t: Table<'_>,
    slot: usize,
    targeted: bool,
) -> bool {
    let cell = p.room_cell() as *const ring::WaitCell;
    // SAFETY: the cell lives in the ring's region, which outlives this call; the raw pointer
    // only sidesteps borrowing `p` both for the cell and, mutably, for the attempts.
    let cell = unsafe { &*cell };
    let attempt = |p: &mut ring::SpscProducer| {
        if t.gone(Role::Receiver) {
            return Some(false);
        }
        p.try_push(&rec(v)).is_ok().then_some(true)
    };
    loop {
        if let Some(done) = attempt(p) {
            return done;
        }
        // `Segment::announce`: the targeted doorbell raises the entry's flag first.
        if targeted {
            t.set_asleep(slot, true);
        }
        cell.announce();
        if let Some(done) = attempt(p) {
            // `Segment::settle`: leave without a token, or take the one already owed.
            let owed = if targeted {
                !t.set_asleep(slot, false)
            } else {
                !cell.withdraw()
            };
            if owed {
                room.wait();
            }
            return done;
        }
        room.wait();
    }
}

/// A blocking receive: try; announce in the data cell; re-check; sleep.
fn blocking_recv(c: &mut ring::SpscConsumer, data: &Sem) -> u64 {
    let mut out = [0u8; 8];
    loop {
        if c.try_pop(&mut out).is_ok() {
            return u64::from_ne_bytes(out);
        }
        c.data_cell().announce();
        if c.try_pop(&mut out).is_ok() {
            if !c.data_cell().withdraw() {
                data.wait();
            }
            return u64::from_ne_bytes(out);
        }
        data.wait();
    }
}

/// The low-water mark: a receiver that frees room wakes a sender sleeping on a full ring (the
/// ring's capacity is 2, so the mark is passed at once).
///
/// Catches the publisher's half of the fence behind `segment::senders_sleep`
/// (`Segment::wake_senders`, through `WaitCell::has_sleepers_unfenced`, the form every
/// registered process uses: loom sees its compiler fence as the `SeqCst` fence the waiter's
/// global barrier runs on the publisher's CPU, see `crate::barrier`): without it (or with it
/// weakened to AcqRel) the receiver's load of the room cell's sleepers can miss the
/// sender's announcement while the sender's re-check misses the freed slot: the sender sleeps
/// forever (loom: deadlock).
#[test]
fn low_water_mark_wakes_a_sleeping_sender() {
    model(3, || {
        let mem = Mem::new(2, true);
        let heap = Heap::new(ring::RingKind::Spsc, 2);
        let s = register(mem.table(), Role::Sender, P1).unwrap();
        register(mem.table(), Role::Receiver, P2).unwrap();
        let (mut p, mut c) = heap.spsc();
        let (data, room) = (Arc::new(Sem::new()), Arc::new(Sem::new()));
        let (m, h, d, r) = (mem.clone(), heap.clone(), data.clone(), room.clone());
        let sender = thread::spawn(move || {
            for v in 0..3 {
                assert!(blocking_send(&mut p, v, &r, m.table(), s, false));
                d.post(p.data_cell().take_tokens_unfenced());
            }
            drop(p);
            drop(h);
        });
        for v in 0..3 {
            assert_eq!(blocking_recv(&mut c, &data), v);
            // `Segment::wake_senders`.
            if senders_sleep(heap.ring.room_cell(), Publish::Unfenced) && heap.ring.len() <= 1 {
                room.post(heap.ring.room_cell().take_tokens());
            }
        }
        sender.join().unwrap();
        assert!(room.value() <= 1, "more tokens than waiters");
    });
}

/// The last receiver leaves while a sender sleeps on a full ring, with the SysV message queue
/// doorbell's targeted wake-ups (per-entry `asleep` flags; a mailbox per entry stands in for
/// the message types): the sender wakes and sees the disconnection, and no message is left
/// over.
///
/// The table's `asleep` flags and live masks need no ordering of their own here: the wait
/// cell's SeqCst fences (the announcement's and `take_tokens`') order them. The model catches
/// a departure that wakes its peers before it clears its live bit (`Table::deregister`), or a
/// waiter that raises its flag after announcing itself (as `sysv_msgq`'s `announce` must not):
/// either makes loom find the sender asleep forever.
#[test]
fn departure_wakes_a_targeted_sleeper() {
    model(3, || {
        let mem = Mem::new(2, true);
        let heap = Heap::new(ring::RingKind::Spsc, 1);
        let s = register(mem.table(), Role::Sender, P1).unwrap();
        let r = register(mem.table(), Role::Receiver, P2).unwrap();
        let (mut p, c) = heap.spsc();
        p.try_push(&rec(1)).unwrap(); // full
        let mailbox = Arc::new([Sem::new(), Sem::new()]);
        let (m, h, mb) = (mem.clone(), heap.clone(), mailbox.clone());
        let sender = thread::spawn(move || {
            let sent = blocking_send(&mut p, 2, &mb[s], m.table(), s, true);
            drop(p);
            drop(h);
            sent
        });
        // `Segment::deregister`: leave, then wake the peers (`Segment::wake_all`, with the
        // targeted doorbell's post).
        let t = mem.table();
        t.deregister(Role::Receiver, r, P2.pid, &Alive(&[]), |peer| {
            if heap.ring.room_cell().take_tokens() > 0 {
                let mut claimed = t.claim_sleepers(peer);
                while claimed != 0 {
                    let slot = claimed.trailing_zeros() as usize;
                    claimed &= claimed - 1;
                    mailbox[slot].post(1);
                }
            }
        });
        let sent = sender.join().unwrap();
        drop(c);
        assert!(!sent, "sent into a full ring");
        assert_eq!(mailbox[s].value(), 0, "a wake-up message was left over");
    });
}

/// The kernel's life tokens (`crate::life`) as the model sees them: one counter per entry
/// behind a lock (the kernel's lock of the file's lock list for an OFD lock, of the set for a
/// SysV semaphore: an `F_OFD_GETLK` or `GETVAL` that reads a token sees what came before the
/// `F_OFD_SETLK` or `semop` that set it), and which tokens each process holds (its locks,
/// dropped when its last descriptor closes; its undo list). The judge is in another PID
/// namespace: no pid is ever looked up.
struct Tokens {
    val: Mutex<Vec<u32>>,
    /// Per process (by pid): the entries whose token it raised and has not lowered.
    undo: Mutex<Vec<(u32, usize)>>,
}

impl Tokens {
    fn new(n: usize) -> Arc<Tokens> {
        Arc::new(Tokens {
            val: Mutex::new(vec![0; n]),
            undo: Mutex::new(Vec::new()),
        })
    }

    /// The kernel's undo at the death of process `pid`: every token it still holds goes down.
    fn die(&self, pid: u32) {
        let mut undo = self.undo.lock().unwrap();
        let mut val = self.val.lock().unwrap();
        undo.retain(|&(p, slot)| {
            if p == pid {
                val[slot] -= 1;
            }
            p != pid
        });
    }
}

/// Process `pid` as a [`Liveness`] over `tokens`: takes and gives back its own tokens.
struct Holder(Arc<Tokens>, u32);

fn holder(tokens: &Arc<Tokens>, pid: u32) -> Holder {
    Holder(tokens.clone(), pid)
}

impl Liveness for Holder {
    fn take(&self, slot: usize) -> bool {
        let mut undo = self.0.undo.lock().unwrap();
        self.0.val.lock().unwrap()[slot] += 1;
        undo.push((self.1, slot));
        true
    }

    fn give(&self, slot: usize) {
        let mut undo = self.0.undo.lock().unwrap();
        if let Some(i) = undo.iter().position(|&u| u == (self.1, slot)) {
            undo.remove(i);
            self.0.val.lock().unwrap()[slot] -= 1;
        }
    }

    fn held(&self, slot: usize) -> Option<bool> {
        Some(self.0.val.lock().unwrap()[slot] > 0)
    }

    fn pidns(&self) -> Option<u64> {
        // Another PID namespace than every entry's: pids mean nothing to this judge.
        None
    }

    fn alive(&self, _pid: u32, _start: Option<u64>) -> bool {
        unreachable!("a judge of another PID namespace never looks a pid up")
    }
}

/// An endpoint leaves and registers again in the same entry (same pid) while a reaper in
/// another PID namespace judges it by its life token: the reaper may read the token down
/// between the departure and the new registration, but never reaps the live endpoint.
///
/// Catches `SYNC(endpoint-life)`: with the generation advanced after the token is given back
/// (`Table::release`), or without the reaper's second read of the life word (`Table::dead`),
/// the reaper takes the departure for a death and clears the new registration's live bit.
/// (The reaper's check after winning the entry in `Table::reap_dead` is for another race, not
/// modelled: a second reaper frees a dead entry and a process with the same pid number claims
/// it between the first reaper's judgement and its CAS.)
#[test]
fn a_departure_is_never_taken_for_a_death() {
    model(3, || {
        let mem = Mem::new(1, false);
        let tokens = Tokens::new(1);
        let p1 = holder(&tokens, P1.pid);
        let slot = mem
            .table()
            .register(Role::Receiver, P1, &p1, &mut |_| 0)
            .unwrap();
        let m = mem.clone();
        let again = thread::spawn(move || {
            let t = m.table();
            t.deregister(Role::Receiver, slot, P1.pid, &p1, |_| {});
            t.register(Role::Receiver, P1, &p1, &mut |_| 0).unwrap()
        });
        let judge = holder(&tokens, P3.pid);
        let reaped = mem.table().reap_dead(Role::Receiver, &judge);
        let slot = again.join().unwrap();
        assert_eq!(reaped, 0, "a departure was taken for a death");
        let (masks, endpoints) = mem.table().listing();
        assert_eq!(masks[Role::Receiver.index()], 1 << slot);
        assert_eq!(endpoints, [(Role::Receiver, P1.pid, P1.start)]);
    });
}

/// A sender in another PID namespace commits a record and dies; the kernel lowers its token.
/// A reaper judging by tokens alone reaps it (once the death is known), and the receiver
/// drains the record before it reports the disconnection. An endpoint without a token in
/// another namespace is never reaped.
#[test]
fn a_death_is_noticed_by_its_token() {
    model(2, || {
        let mem = Mem::new(3, false);
        let heap = Heap::new(ring::RingKind::Spsc, 2);
        let tokens = Tokens::new(3);
        mem.table()
            .register(Role::Sender, P1, &holder(&tokens, P1.pid), &mut |_| 0)
            .unwrap();
        // A receiver with no token (its channel's set was out of its reach).
        register(mem.table(), Role::Receiver, P2).unwrap();
        let (mut p, mut c) = heap.spsc();
        let (h, k) = (heap.clone(), tokens.clone());
        let dying = thread::spawn(move || {
            p.try_push(&rec(7)).unwrap();
            drop(p);
            drop(h);
            k.die(P1.pid);
        });
        let (m, k) = (mem.clone(), tokens.clone());
        let reaper = thread::spawn(move || {
            let t = m.table();
            t.reap_dead(Role::Sender, &holder(&k, P3.pid))
                + t.reap_dead(Role::Receiver, &holder(&k, P3.pid))
        });
        let what = "disconnected with a dead sender's record unread";
        let join = || {
            dying.join().unwrap();
            let early = reaper.join().unwrap();
            let t = mem.table();
            let late = t.reap_dead(Role::Sender, &holder(&tokens, P3.pid));
            assert_eq!(early + late, 1, "the dead sender was reaped once");
            assert_eq!(t.reap_dead(Role::Receiver, &holder(&tokens, P3.pid)), 0);
        };
        let got = receive_racing(&mut c, mem.table(), join, what);
        assert_eq!(got, 1);
        let (masks, _) = mem.table().listing();
        assert_eq!(masks, [0, 1 << 1], "the receiver without a token stays");
    });
}
