//! Busy round trips of one 8-byte record between two processes pinned to CPUs 0 and 1, per
//! way of sending and receiving, on SPSC and MPMC channels, beside the bare cache-line
//! ping-pong: what a blocking `peek`, `reserve` + `commit` or a `try_peek` loop costs on a
//! round trip against `send` / `recv`.
//!
//! Beside them, what no library can beat: shmchan's SPSC ring alone (`shmchan_ring` handles
//! in memory of this bench, no endpoint layer), and the floors of the two ring designs — a
//! bare Lamport ring, whose waiting reader polls the writer's cursor and then reads the
//! record's line (shmchan's SPSC design), and a bare ring with a stamp in each slot, whose
//! reader polls the slot itself (ringfire's, and shmchan's MPMC ring's); and that stamp ring
//! with the Lamport ring's two cursors kept as well (stored, not polled), the cost of an SPSC
//! ring whose waiting reader polls the slot but keeps its cursors for batches and lengths; and
//! the Lamport ring whose writer also copies each record into a mailbox on its cursor's line,
//! so that a waiting reader finds the record on the line it polls (shmchan's SPSC design since
//! the mailbox).
//!
//! `cargo bench -p shmchan --bench round_trip`. Every mode takes turns in one pair of
//! processes (windows of 100,000 round trips, 15 rounds), so that a VM's changes of placement
//! between its CPUs hit all modes alike; each figure is the mean round trip of a window, best
//! and median over the rounds, in ns. Compare rows of one run with each other. `-- NAMES`
//! (comma-separated) runs only the modes whose names contain one of them.
mod common;
use common::pin;

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use shmchan::{Backing, Channel, Doorbell, Receiver, Sender};

type Rec = [u64; 1];

const WINDOW: u64 = 100_000;
const ROUNDS: usize = 15;
/// The top byte of each record's value carries its mode (see `main`).
const MODE_SHIFT: u32 = 56;
const END: u64 = u64::MAX;

#[derive(Clone, Copy, PartialEq)]
enum Put {
    Send,
    Reserve,
}

#[derive(Clone, Copy, PartialEq)]
enum Get {
    Recv,
    Peek,
    TryPeek,
    TryRecv,
}

/// What carries a mode's records.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    /// A channel: MPMC or SPSC.
    Chan(bool),
    /// The bare ping-pong: one word on a line of its own each way.
    Bare,
    /// A bare Lamport ring, no library: the reader polls the writer's cursor (a line of its
    /// own), then reads the record's line (shmchan's SPSC design).
    CursorRing,
    /// A bare ring with a stamp beside each record: the reader polls the slot itself
    /// (ringfire's design, and shmchan's MPMC ring's).
    StampRing,
    /// The stamp ring that also keeps the Lamport ring's cursors: the writer stores its
    /// cursor after the stamp and the reader its own after the record, as an SPSC ring that
    /// keeps its cursors for batches and lengths would, but a waiting reader polls the stamp.
    HybridRing,
    /// The Lamport ring whose writer also copies each record into a mailbox on its cursor's
    /// line (tag, record): a waiting reader polls that line and finds the record there.
    MailboxRing,
    /// shmchan's SPSC ring alone (`shmchan_ring`, no endpoint layer): `try_push` and a loop
    /// of `try_pop`.
    Ring,
}

/// One way of making a round trip: what carries it, how each side writes and reads.
struct Mode {
    name: &'static str,
    via: Via,
    put: Put,
    get: Get,
}

const MODES: [Mode; 17] = [
    Mode {
        name: "spsc send/recv",
        via: Via::Chan(false),
        put: Put::Send,
        get: Get::Recv,
    },
    Mode {
        name: "spsc send/try_recv loop",
        via: Via::Chan(false),
        put: Put::Send,
        get: Get::TryRecv,
    },
    Mode {
        name: "spsc send/peek",
        via: Via::Chan(false),
        put: Put::Send,
        get: Get::Peek,
    },
    Mode {
        name: "spsc reserve+commit/recv",
        via: Via::Chan(false),
        put: Put::Reserve,
        get: Get::Recv,
    },
    Mode {
        name: "spsc reserve+commit/peek",
        via: Via::Chan(false),
        put: Put::Reserve,
        get: Get::Peek,
    },
    Mode {
        name: "spsc reserve+commit/try_peek loop",
        via: Via::Chan(false),
        put: Put::Reserve,
        get: Get::TryPeek,
    },
    Mode {
        name: "mpmc send/recv",
        via: Via::Chan(true),
        put: Put::Send,
        get: Get::Recv,
    },
    Mode {
        name: "mpmc send/peek",
        via: Via::Chan(true),
        put: Put::Send,
        get: Get::Peek,
    },
    Mode {
        name: "mpmc reserve+commit/recv",
        via: Via::Chan(true),
        put: Put::Reserve,
        get: Get::Recv,
    },
    Mode {
        name: "mpmc reserve+commit/peek",
        via: Via::Chan(true),
        put: Put::Reserve,
        get: Get::Peek,
    },
    Mode {
        name: "mpmc reserve+commit/try_peek loop",
        via: Via::Chan(true),
        put: Put::Reserve,
        get: Get::TryPeek,
    },
    Mode {
        name: "bare cache-line ping-pong",
        via: Via::Bare,
        put: Put::Send,
        get: Get::Recv,
    },
    Mode {
        name: "ring alone: try_push/try_pop loop",
        via: Via::Ring,
        put: Put::Send,
        get: Get::Recv,
    },
    Mode {
        name: "floor: bare cursor ring",
        via: Via::CursorRing,
        put: Put::Send,
        get: Get::Recv,
    },
    Mode {
        name: "floor: bare stamp ring",
        via: Via::StampRing,
        put: Put::Send,
        get: Get::Recv,
    },
    Mode {
        name: "floor: stamp ring with cursors",
        via: Via::HybridRing,
        put: Put::Send,
        get: Get::Recv,
    },
    Mode {
        name: "floor: cursor ring with a mailbox",
        via: Via::MailboxRing,
        put: Put::Send,
        get: Get::Recv,
    },
];

/// Slots of each bare ring (a power of two; one record is in flight at a time).
const SLOTS: u64 = 32;

/// One direction of the bare rings, in the shared page: the cursor ring's writer cursor at
/// `base`, its reader cursor at `base + 128`, its 8-byte slots from `base + 256`; the stamp
/// ring's 16-byte slots (stamp, record) from `base + 1024`; the stamp ring with cursors: its
/// writer cursor at `base + 2048`, its reader cursor at `base + 2176`, its slots from
/// `base + 2304`; the mailbox ring: its writer cursor at `base + 3072` with the mailbox's tag
/// and record after it, its reader cursor at `base + 3200`, its slots from `base + 3328`.
struct Bare {
    /// The shared pages (mapped for as long as the process runs).
    page: *const u8,
    base: usize,
    /// Positions in the cursor ring, the stamp ring and the stamp ring with cursors.
    pos: [u64; 4],
}

impl Bare {
    fn w(&self, off: usize) -> &AtomicU64 {
        // SAFETY: `page` is mapped for as long as the process runs, zeroed (valid
        // AtomicU64s), and every offset used is 8-aligned and inside it (below 8192 + 4096).
        unsafe { &*self.page.add(off).cast::<AtomicU64>() }
    }

    /// Writes `v` into ring `r`: 0 the cursor ring, 1 the stamp ring, 2 the stamp ring with
    /// cursors, 3 the cursor ring with a mailbox.
    fn write(&mut self, r: usize, v: u64) {
        let p = self.pos[r];
        let i = (p % SLOTS) as usize;
        match r {
            0 => {
                self.w(self.base + 256 + i * 8).store(v, Ordering::Relaxed);
                self.w(self.base).store(p + 1, Ordering::Release);
            }
            3 => {
                // The slot, then the mailbox (tag cleared, record, tag), then the cursor: the
                // cursor at base + 3072, the tag at + 3080, the record at + 3088.
                self.w(self.base + 3328 + i * 8).store(v, Ordering::Relaxed);
                self.w(self.base + 3080).store(0, Ordering::Relaxed);
                std::sync::atomic::fence(Ordering::Release);
                self.w(self.base + 3088).store(v, Ordering::Relaxed);
                self.w(self.base + 3080).store(p + 1, Ordering::Relaxed);
                self.w(self.base + 3072).store(p + 1, Ordering::Release);
            }
            _ => {
                let slots = if r == 1 { 1024 } else { 2304 };
                self.w(self.base + slots + i * 16 + 8)
                    .store(v, Ordering::Relaxed);
                self.w(self.base + slots + i * 16)
                    .store(p + 1, Ordering::Release);
                if r == 2 {
                    self.w(self.base + 2048).store(p + 1, Ordering::Release);
                }
            }
        }
        self.pos[r] = p + 1;
    }

    /// Reads the next record of ring `r` (as `write`'s).
    fn read(&mut self, r: usize) -> u64 {
        let p = self.pos[r];
        let (i, want) = ((p % SLOTS) as usize, p + 1);
        if r == 3 {
            while self.w(self.base + 3072).load(Ordering::Acquire) != want {
                spin_loop();
            }
            // As the ring's mailbox: the tag Relaxed behind the cursor's Acquire.
            let v = if self.w(self.base + 3080).load(Ordering::Relaxed) == want {
                let v = self.w(self.base + 3088).load(Ordering::Relaxed);
                std::sync::atomic::fence(Ordering::Acquire);
                if self.w(self.base + 3080).load(Ordering::Relaxed) == want {
                    v
                } else {
                    self.w(self.base + 3328 + i * 8).load(Ordering::Relaxed)
                }
            } else {
                self.w(self.base + 3328 + i * 8).load(Ordering::Relaxed)
            };
            self.w(self.base + 3200).store(want, Ordering::Release);
            self.pos[r] = want;
            return v;
        }
        let (signal, record, head) = match r {
            0 => (self.base, self.base + 256 + i * 8, Some(self.base + 128)),
            1 => (
                self.base + 1024 + i * 16,
                self.base + 1024 + i * 16 + 8,
                None,
            ),
            _ => (
                self.base + 2304 + i * 16,
                self.base + 2304 + i * 16 + 8,
                Some(self.base + 2176),
            ),
        };
        while self.w(signal).load(Ordering::Acquire) != want {
            spin_loop();
        }
        let v = self.w(record).load(Ordering::Relaxed);
        if let Some(head) = head {
            self.w(head).store(want, Ordering::Release);
        }
        self.pos[r] = want;
        v
    }
}

/// One side's ends: the channels it writes to and reads from, of each kind, and the bare
/// words (its own and the other side's) in a shared page.
struct Side<'a> {
    tx: [Sender<Rec>; 2],
    rx: [Receiver<Rec>; 2],
    out: &'a AtomicU64,
    inp: &'a AtomicU64,
    last: u64,
    /// The bare rings it writes and reads.
    ring_out: Bare,
    ring_in: Bare,
    /// The ring-alone pair it writes and reads.
    raw_out: shmchan_ring::SpscProducer,
    raw_in: shmchan_ring::SpscConsumer,
}

impl Side<'_> {
    fn put(&mut self, m: &Mode, v: u64) {
        let mpmc = match m.via {
            Via::Chan(mpmc) => mpmc,
            Via::Bare => return self.out.store(v, Ordering::Release),
            Via::CursorRing => return self.ring_out.write(0, v),
            Via::StampRing => return self.ring_out.write(1, v),
            Via::HybridRing => return self.ring_out.write(2, v),
            Via::MailboxRing => return self.ring_out.write(3, v),
            Via::Ring => {
                while self.raw_out.try_push(&v.to_ne_bytes()).is_err() {
                    spin_loop();
                }
                return;
            }
        };
        // One copy of the call per endpoint (constant indices, `put_on` inlined into each):
        // an endpoint picked by a runtime index cost the round trip 30-40 ns on a 2-vCPU EPYC
        // VM (128-134 against 90 ns), which no user's fixed endpoint pays.
        if mpmc {
            put_on(&mut self.tx[1], m.put, v)
        } else {
            put_on(&mut self.tx[0], m.put, v)
        }
    }

    fn get(&mut self, m: &Mode) -> u64 {
        let mpmc = match m.via {
            Via::Chan(mpmc) => mpmc,
            Via::Bare => loop {
                let v = self.inp.load(Ordering::Acquire);
                if v != self.last {
                    self.last = v;
                    return v;
                }
                spin_loop();
            },
            Via::CursorRing => return self.ring_in.read(0),
            Via::StampRing => return self.ring_in.read(1),
            Via::HybridRing => return self.ring_in.read(2),
            Via::MailboxRing => return self.ring_in.read(3),
            Via::Ring => {
                let mut b = [0u8; 8];
                while self.raw_in.try_pop(&mut b).is_err() {
                    spin_loop();
                }
                return u64::from_ne_bytes(b);
            }
        };
        if mpmc {
            get_on(&mut self.rx[1], m.get)
        } else {
            get_on(&mut self.rx[0], m.get)
        }
    }
}

/// `put`'s channel write on one endpoint.
#[inline(always)]
fn put_on(tx: &mut Sender<Rec>, put: Put, v: u64) {
    match put {
        Put::Send => tx.send([v]).expect("send"),
        Put::Reserve => {
            let mut slot = tx.reserve().expect("reserve");
            slot[0] = v;
            slot.commit();
        }
    }
}

/// `get`'s channel read on one endpoint.
#[inline(always)]
fn get_on(rx: &mut Receiver<Rec>, get: Get) -> u64 {
    match get {
        Get::Recv => rx.recv().expect("recv")[0],
        Get::Peek => rx.peek().expect("peek")[0],
        Get::TryPeek => loop {
            if let Ok(r) = rx.try_peek() {
                break r[0];
            }
            spin_loop();
        },
        Get::TryRecv => loop {
            if let Ok(r) = rx.try_recv() {
                break r[0];
            }
            spin_loop();
        },
    }
}

fn channel(mpmc: bool) -> Channel<Rec> {
    let b = Channel::<Rec>::builder()
        .capacity(64)
        .doorbell(Doorbell::Futex)
        .backing(Backing::anonymous());
    if mpmc { b.mpmc() } else { b.spsc() }
        .create()
        .expect("channel")
}

fn main() {
    let only = common::only();
    let modes: Vec<&Mode> = MODES
        .iter()
        .filter(|m| only.is_empty() || only.iter().any(|o| m.name.contains(o.as_str())))
        .collect();
    if modes.is_empty() {
        eprintln!("no mode matches {only:?}");
        return;
    }
    // Channels there (parent to child) and back, of each kind; the bare words in shared memory
    // (offsets 0 and 128: two cache lines), and the bare rings there (from 4096) and back
    // (from 8192).
    let there = [channel(false), channel(true)];
    let back = [channel(false), channel(true)];
    // SAFETY: a fresh anonymous shared mapping of five pages, never unmapped while either
    // process runs (the child exits without unmapping; the parent's lives until it returns).
    let page = unsafe {
        nix::sys::mman::mmap_anonymous(
            None,
            std::num::NonZeroUsize::new(5 * 4096).unwrap(),
            nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
            nix::sys::mman::MapFlags::MAP_SHARED,
        )
    }
    .expect("mmap");
    // The ring-alone pair: SPSC rings of 64 8-byte records there (page 3) and back (page 4).
    let raw: Vec<shmchan_ring::RawRing> = (3..5)
        .map(|p| {
            let cfg = shmchan_ring::RingConfig::new(shmchan_ring::RingKind::Spsc, 64, 8, 8);
            // SAFETY: page `p` of the fresh zeroed shared mapping, 4096-aligned, used by this
            // ring alone and mapped for as long as either process runs.
            unsafe {
                shmchan_ring::RawRing::init(
                    std::ptr::NonNull::new(page.as_ptr().cast::<u8>().add(p * 4096)).unwrap(),
                    4096,
                    &cfg,
                )
            }
            .expect("ring")
        })
        .collect();
    let page: *const u8 = page.as_ptr().cast();
    // SAFETY: the pages are mapped, zeroed (a valid AtomicU64), and both offsets are aligned
    // and inside them.
    let word = |i: usize| unsafe { &*page.add(i * 128).cast::<AtomicU64>() };
    let bare = |base: usize| Bare {
        page,
        base,
        pos: [0, 0, 0, 0],
    };
    let side = |tx: &[Channel<Rec>; 2], rx: &[Channel<Rec>; 2], out: usize| Side {
        tx: [
            tx[0].sender().expect("sender"),
            tx[1].sender().expect("sender"),
        ],
        rx: [
            rx[0].receiver().expect("receiver"),
            rx[1].receiver().expect("receiver"),
        ],
        out: word(out),
        inp: word(1 - out),
        last: 0,
        ring_out: bare(4096 * (1 + out)),
        ring_in: bare(4096 * (2 - out)),
        // SAFETY: each process makes one producer and one consumer of each ring: the parent
        // the producer of ring 0 and the consumer of ring 1, the child the others.
        raw_out: unsafe { raw[out].spsc_producer() }.expect("producer"),
        // SAFETY: as above.
        raw_in: unsafe { raw[1 - out].spsc_consumer() }.expect("consumer"),
    };
    // SAFETY: this bench is single-threaded until here; the child only echoes and exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            pin(1);
            let mut me = side(&back, &there, 1);
            // The echo: each record comes in the way the one before it said (its top byte),
            // and goes back the way it says itself. The parent sends the first record of a
            // new mode the old mode's way, so that both ends always agree.
            let mut m = modes[0];
            loop {
                let v = me.get(m);
                if v == END {
                    // SAFETY: leave without running the parent's exit handlers or drops.
                    unsafe { nix::libc::_exit(0) };
                }
                m = &MODES[(v >> MODE_SHIFT) as usize];
                me.put(m, v);
            }
        }
        ForkResult::Parent { child } => {
            pin(0);
            let mut me = side(&there, &back, 0);
            let index = |m: &Mode| MODES.iter().position(|x| x.name == m.name).unwrap() as u64;
            let mut means: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
            let (mut seq, mut prev) = (0u64, modes[0]);
            for _ in 0..ROUNDS {
                for (k, &m) in modes.iter().enumerate() {
                    let tag = index(m) << MODE_SHIFT;
                    // Warm-up: the switch, then a thousand round trips.
                    for i in 0..1_000 {
                        seq += 1;
                        me.put(if i == 0 { prev } else { m }, seq | tag);
                        assert_eq!(me.get(m), seq | tag, "{}", m.name);
                    }
                    let t = Instant::now();
                    for _ in 0..WINDOW {
                        seq += 1;
                        me.put(m, seq | tag);
                        assert_eq!(me.get(m), seq | tag, "{}", m.name);
                    }
                    means[k].push(t.elapsed().as_nanos() as f64 / WINDOW as f64);
                    prev = m;
                }
            }
            me.put(prev, END);
            waitpid(child, None).expect("waitpid");
            println!(
                "busy round trip of one 8-byte record, CPUs 0 and 1, mean of {WINDOW} per window, \
                 {ROUNDS} rounds (ns)"
            );
            println!("  {:<36} {:>6} {:>8}", "mode", "best", "median");
            for (m, v) in modes.iter().zip(&mut means) {
                v.sort_by(f64::total_cmp);
                println!("  {:<36} {:>6.0} {:>8.0}", m.name, v[0], v[v.len() / 2]);
            }
        }
    }
}
