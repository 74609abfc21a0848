//! The SysV message queue doorbell: targeted wake-ups. One queue, reached by its msqid; a
//! wake-up is a message whose `mtype` names the endpoint-table entry to wake (`1 + entry`), so
//! producers and consumers, and the endpoints of an MPMC channel, never take each other's.
//!
//! A waiter raises the `asleep` flag of its entry before it announces itself in the wait cell;
//! a ringer that finds sleepers claims each flagged entry of the waiting role (CAS 1→0) and
//! sends it a message; a waiter that leaves un-woken clears its own flag, or, if a ringer
//! claimed it first, consumes the message owed to it. The wait cell's count is only a hint
//! here (reset by ringers): the flag is the token. `msgrcv` has no timeout, so a per-process
//! watchdog thread ([`alarm`]) sends a waiter a message of its own at its deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shmchan_os as os;

use super::{
    bind, pause_until, removable, unvouched, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unbound,
    Unreached, SETTLE,
};

pub(super) const SPEC: Spec = Spec {
    name: "sysv-msgq",
    code: 6,
    imp: &SysvMsgQueue,
};

struct SysvMsgQueue;

impl Kind for SysvMsgQueue {
    fn create(&self, mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        // At the key of a fresh identity (never IPC_PRIVATE): the key binds the queue to the
        // channel (see `bind`).
        let (identity, q) = bind::with_fresh_identity(|identity, key| {
            os::MsgQueue::create(key, mode).map(|q| (identity, q))
        })?;
        let desc = Desc {
            id: q.raw(),
            identity,
            ..Desc::default()
        };
        Ok((desc, Box::new(Queue::new(q))))
    }

    fn open(&self, desc: &Desc, reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        Ok(Box::new(Queue::new(bound(desc, reach.owner.user())?)))
    }

    fn remove(&self, desc: &Desc, owner: Option<u32>) -> Result<(), Unbound> {
        let owner = owner.ok_or_else(|| unvouched(self.describe(desc)))?;
        if let Some(q) = removable(bound(desc, owner), || self.describe(desc))? {
            let _ = q.remove();
        }
        Ok(())
    }

    fn describe(&self, desc: &Desc) -> String {
        format!("SysV message queue msqid {}", desc.id)
    }
}

/// The queue `desc` names, if the kernel says it is bound to the channel: created at the
/// channel's key, by the channel's `owner`, and still owned by it (see `bind`).
fn bound(desc: &Desc, owner: u32) -> Result<os::MsgQueue, Unreached> {
    let q = os::MsgQueue::from_raw(desc.id);
    let st = q.stat()?;
    bind::check_sysv(st.key, st.cuid, st.uid, desc.identity, owner).map_err(|reason| Unbound {
        object: SysvMsgQueue.describe(desc),
        reason,
    })?;
    Ok(q)
}

/// The connected queue. Once the kernel says its id is gone, the id is never used again: a new
/// queue that got the same id later is not the channel's.
struct Queue {
    q: os::MsgQueue,
    removed: AtomicBool,
}

impl Queue {
    fn new(q: os::MsgQueue) -> Queue {
        Queue {
            q,
            removed: AtomicBool::new(false),
        }
    }

    fn is_removed(&self) -> bool {
        // Relaxed: a process-local latch; it publishes nothing.
        self.removed.load(Ordering::Relaxed)
    }

    /// Notes an error of the queue: whether it says the queue is gone.
    fn gone(&self, e: &os::Error) -> bool {
        let gone = e.kind() == os::ErrorKind::Removed;
        if gone {
            // Relaxed: see `is_removed`.
            self.removed.store(true, Ordering::Relaxed);
        }
        gone
    }
}

impl Bell for Queue {
    fn announce(&self, at: &Site<'_>, slot: usize) {
        at.table.set_asleep(slot, true);
        at.cell.announce();
    }

    fn post(&self, at: &Site<'_>, _n: u32) {
        let mut claimed = at.table.claim_sleepers(at.role);
        while claimed != 0 {
            let slot = claimed.trailing_zeros() as usize;
            claimed &= claimed - 1;
            if self.is_removed() {
                continue;
            }
            if let Err(e) = self
                .q
                .send(mtype(slot), &0u64.to_le_bytes(), os::MsgFlags::NOWAIT)
            {
                self.gone(&e);
            }
        }
    }

    fn wait(&self, _at: &Site<'_>, slot: usize, until: Instant) -> Slept {
        if self.is_removed() {
            return Slept::Removed;
        }
        let r = msg_wait(self.q, slot, until);
        if r == Slept::Removed {
            // Relaxed: see `is_removed`.
            self.removed.store(true, Ordering::Relaxed);
        }
        r
    }

    fn settle(&self, at: &Site<'_>, slot: usize) {
        let settle_until = Instant::now() + SETTLE;
        // The flag is the token. If a ringer claimed us, its message is on the way: take it.
        if !at.table.set_asleep(slot, false) {
            let _ = self.wait(at, slot, settle_until);
        }
    }
}

fn mtype(slot: usize) -> i64 {
    1 + slot as i64
}

/// The wait: `msgrcv` of this endpoint's type, with the watchdog's alarm standing in for the
/// timeout `msgrcv` lacks.
fn msg_wait(q: os::MsgQueue, slot: usize, until: Instant) -> Slept {
    let alarm = alarm::arm(q, mtype(slot), until);
    let r = loop {
        let mut buf = [0u8; 8];
        match q.recv(
            &mut buf,
            os::MsgSelect::Type(mtype(slot)),
            os::MsgFlags::NOERROR,
        ) {
            Ok(Some(_)) => match u64::from_le_bytes(buf) {
                0 => break Slept::Token,
                s if s == alarm.seq() => break Slept::TimedOut,
                // A stale alarm of an earlier wait of this entry: ignore it.
                _ => {}
            },
            Ok(None) => {}
            Err(e) if e.kind() == os::ErrorKind::Removed => break Slept::Removed,
            Err(_) => break pause_until(until),
        }
        if Instant::now() >= until + Duration::from_millis(50) {
            // The alarm should have come; never wait unboundedly on it.
            break Slept::TimedOut;
        }
    };
    drop(alarm);
    r
}

mod alarm {
    //! The per-process watchdog that gives `msgrcv` a timeout: a waiter registers its deadline,
    //! and at that time the watchdog thread sends it a message of its own type whose payload is
    //! the registration's sequence number (never 0, which is a real wake-up). A waiter that was
    //! woken earlier cancels its alarm; one that fires anyway is recognised as stale by its
    //! number and ignored.
    //!
    //! Fork safety: the state records the pid that created it. A forked child (which inherits
    //! the memory but not the thread, and maybe a locked mutex) never touches the parent's
    //! state: it leaks it and starts its own.

    use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::time::Instant;

    use shmchan_os as os;

    struct Entry {
        at: Instant,
        q: os::MsgQueue,
        mtype: i64,
        seq: u64,
    }

    struct State {
        pid: u32,
        entries: Mutex<Vec<Entry>>,
        cv: Condvar,
    }

    static STATE: AtomicPtr<State> = AtomicPtr::new(std::ptr::null_mut());
    static SEQ: AtomicU64 = AtomicU64::new(1);

    fn state() -> &'static State {
        let pid = std::process::id();
        loop {
            // SYNC(alarm-state): Acquire pairs with the AcqRel CAS below that installs a state:
            // its fields are initialised before we use them.
            let p = STATE.load(Ordering::Acquire);
            // SAFETY: STATE only ever holds pointers from `Box::leak`, never freed.
            if let Some(s) = unsafe { p.as_ref() } {
                if s.pid == pid {
                    return s;
                }
            }
            let fresh: &'static State = Box::leak(Box::new(State {
                pid,
                entries: Mutex::new(Vec::new()),
                cv: Condvar::new(),
            }));
            let fresh_ptr = fresh as *const State as *mut State;
            // SYNC(alarm-state): Release publishes the fresh state; Acquire (both outcomes)
            // reads one installed by another thread.
            if STATE
                .compare_exchange(p, fresh_ptr, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                std::thread::Builder::new()
                    .name("shmchan-alarm".into())
                    .spawn(move || run(fresh))
                    .expect("spawn the shmchan alarm thread");
                return fresh;
            }
            // Another thread installed one first; `fresh` is leaked unused (once per race).
        }
    }

    fn run(s: &'static State) {
        let mut g = s.entries.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            g.retain(|e| {
                if e.at <= now {
                    let _ =
                        e.q.send(e.mtype, &e.seq.to_le_bytes(), os::MsgFlags::NOWAIT);
                    false
                } else {
                    true
                }
            });
            g = match g.iter().map(|e| e.at).min() {
                Some(at) => {
                    s.cv.wait_timeout(g, at.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => s.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// A registered alarm; dropping it cancels it.
    pub(super) struct Alarm {
        seq: u64,
    }

    impl Alarm {
        pub(super) fn seq(&self) -> u64 {
            self.seq
        }
    }

    /// Registers an alarm: at `at`, a message of `mtype` carrying [`Alarm::seq`] is sent to `q`.
    pub(super) fn arm(q: os::MsgQueue, mtype: i64, at: Instant) -> Alarm {
        // Unique across processes too: pid in the high half (a stale alarm left in the queue
        // by a dead process is never mistaken for a live one's).
        // Relaxed: a counter; uniqueness needs no ordering.
        let seq = (u64::from(std::process::id()) << 32)
            | (SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff);
        let seq = seq.max(1);
        let s = state();
        s.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Entry { at, q, mtype, seq });
        s.cv.notify_one();
        Alarm { seq }
    }

    impl Drop for Alarm {
        fn drop(&mut self) {
            let s = state();
            s.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|e| e.seq != self.seq);
        }
    }
}
