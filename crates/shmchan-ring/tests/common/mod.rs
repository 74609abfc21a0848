//! Helpers shared by the loom models: a ring in a 128-aligned heap allocation, spinning
//! push/pop, and a loom-built counting semaphore standing in for a kernel doorbell.
#![allow(dead_code)] // each model uses a subset

use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
use std::ptr::NonNull;

use loom::sync::{Condvar, Mutex};
use shmchan_ring::{Layout, PopError, PushError, RawRing, RingConfig, RingKind};

/// A ring in a zeroed, 128-aligned heap allocation (created inside the model: loom's atomics
/// belong to one execution).
pub struct Heap {
    ptr: NonNull<u8>,
    alloc: AllocLayout,
    pub ring: RawRing,
}

impl Heap {
    pub fn new(kind: RingKind, capacity: u32) -> Heap {
        let cfg = RingConfig::new(kind, capacity, 8, 8);
        let len = Layout::new(&cfg).unwrap().total_len as usize;
        let alloc = AllocLayout::from_size_align(len, 128).unwrap();
        // SAFETY: non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(alloc) }).unwrap();
        // SAFETY: fresh zeroed allocation of `len` bytes, 128-aligned; it outlives the ring
        // (dropped after every thread of the model has been joined).
        let ring = unsafe { RawRing::init(ptr, len, &cfg) }.unwrap();
        Heap { ptr, alloc, ring }
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; every user has been joined.
        unsafe { dealloc(self.ptr.as_ptr(), self.alloc) }
    }
}

pub fn rec(v: u64) -> [u8; 8] {
    v.to_ne_bytes()
}

pub fn val(b: &[u8]) -> u64 {
    u64::from_ne_bytes(b.try_into().unwrap())
}

/// Runs a loom model. Models with three threads cap the preemption bound at 2 (the issue allows
/// 2..3; three threads at 3 take many minutes on 2 cores), the others take `LOOM_MAX_PREEMPTIONS`
/// as given (CI sets 3).
/// Prints how many executions were explored (visible with `--nocapture`).
pub fn model(max_preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Arc;
    let mut b = loom::model::Builder::new();
    let bound = b
        .preemption_bound
        .map_or(max_preemptions, |p| p.min(max_preemptions));
    b.preemption_bound = Some(bound);
    let runs = Arc::new(AtomicUsize::new(0));
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

/// Retries `op` until it stops reporting `Full`, yielding to loom in between.
pub fn spin_push(mut op: impl FnMut() -> Result<(), PushError>) {
    loop {
        match op() {
            Ok(()) => return,
            Err(PushError::Full) => loom::thread::yield_now(),
            Err(e) => panic!("push: {e}"),
        }
    }
}

/// Retries `op` until it stops reporting `Empty`, yielding to loom in between.
pub fn spin_pop<T>(mut op: impl FnMut() -> Result<T, PopError>) -> T {
    loop {
        match op() {
            Ok(v) => return v,
            Err(PopError::Empty) => loom::thread::yield_now(),
            Err(e) => panic!("pop: {e}"),
        }
    }
}

/// A counting semaphore (loom Mutex + Condvar): the doorbell. `post(n)` adds n tokens,
/// `wait()` blocks until it can take one. A lost wake-up leaves a waiter blocked forever, which
/// loom reports as a deadlock.
pub struct Sem {
    count: Mutex<u32>,
    cv: Condvar,
}

impl Sem {
    pub fn new() -> Sem {
        Sem {
            count: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    pub fn post(&self, n: u32) {
        if n == 0 {
            return;
        }
        *self.count.lock().unwrap() += n;
        self.cv.notify_all();
    }

    pub fn wait(&self) {
        let mut c = self.count.lock().unwrap();
        while *c == 0 {
            c = self.cv.wait(c).unwrap();
        }
        *c -= 1;
    }

    pub fn value(&self) -> u32 {
        *self.count.lock().unwrap()
    }
}

/// The blocking side of the sleep/ring protocol (`shmchan_ring::wait`): try; announce;
/// re-check; sleep on the doorbell. `attempt` returns `None` for Full/Empty.
pub fn block_on<T>(
    cell: &shmchan_ring::WaitCell,
    doorbell: &Sem,
    mut attempt: impl FnMut() -> Option<T>,
) -> T {
    loop {
        if let Some(v) = attempt() {
            return v;
        }
        cell.announce();
        if let Some(v) = attempt() {
            if !cell.withdraw() {
                doorbell.wait(); // a ringer took our count: its token is posted or about to be
            }
            return v;
        }
        doorbell.wait(); // the token is consumed on wake and the announcement is gone
    }
}

/// Doorbells of one ring: `data` wakes consumers, `room` wakes producers.
pub struct Bells {
    pub data: Sem,
    pub room: Sem,
}

impl Bells {
    pub fn new() -> Bells {
        Bells {
            data: Sem::new(),
            room: Sem::new(),
        }
    }
}

/// Blocking MPMC send: rings consumers after publishing.
pub fn mpmc_send(p: &mut shmchan_ring::MpmcProducer, v: u64, bells: &Bells) {
    // A blocking send polls (it tries again until it succeeds), as the endpoint core's do.
    p.set_linearizable(false);
    let room = p.room_cell() as *const shmchan_ring::WaitCell;
    // SAFETY: the cell lives in the ring's region, which outlives this call; the raw pointer
    // only sidesteps borrowing `p` both for the cell and, mutably, for the attempt.
    let room = unsafe { &*room };
    block_on(room, &bells.room, || match p.try_push(&rec(v)) {
        Ok(()) => Some(()),
        Err(PushError::Full) => None,
        Err(e) => panic!("push: {e}"),
    });
    bells.data.post(p.wake_consumers());
}

/// Blocking MPMC receive: rings producers after every attempt (a pop that returns Empty may
/// still have freed skipped slots).
pub fn mpmc_recv(c: &mut shmchan_ring::MpmcConsumer, bells: &Bells) -> u64 {
    // As in `mpmc_send`.
    c.set_linearizable(false);
    let data = c.data_cell() as *const shmchan_ring::WaitCell;
    // SAFETY: as in `mpmc_send`.
    let data = unsafe { &*data };
    let mut out = [0u8; 8];
    block_on(data, &bells.data, || {
        let r = c.try_pop(&mut out);
        bells.room.post(c.wake_producers());
        match r {
            Ok(()) => Some(val(&out)),
            Err(PopError::Empty) => None,
            Err(e) => panic!("pop: {e}"),
        }
    })
}
