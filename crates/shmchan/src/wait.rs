//! The blocking layer over the lock-free ring: try → spin → announce → re-check → sleep.
//!
//! The announce/re-check/sleep and publish/fence/ring handshake is the ring crate's
//! ([`shmchan_ring::WaitCell`], proven in its loom models); this module drives it for one
//! blocking call and adds deadlines, dead-peer checks and the spin window.

use std::time::{Duration, Instant};

use crate::doorbell::Slept;
use crate::segment::{Role, Segment};

/// The longest a sleeper stays in the kernel before it re-checks the ring and whether its
/// peers are alive. Bounds the time to notice a peer killed with `SIGKILL`.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// One attempt at the operation a blocking call performs.
pub(crate) enum Attempt<R> {
    /// Done.
    Ready(R),
    /// Not possible now (empty / full); worth waiting.
    NotYet,
    /// The other side is gone (after draining, for receivers).
    Gone,
    /// The ring failed validation.
    Corrupted,
}

/// Why a blocking call ended without a result.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    Timeout,
    Gone,
    Corrupted,
    /// The endpoint was attached by another process (inherited across `fork`).
    Forked,
}

fn finish<R>(a: Attempt<R>) -> Option<Result<R, Failed>> {
    match a {
        Attempt::Ready(r) => Some(Ok(r)),
        Attempt::NotYet => None,
        Attempt::Gone => Some(Err(Failed::Gone)),
        Attempt::Corrupted => Some(Err(Failed::Corrupted)),
    }
}

/// An endpoint's spin policy: the configured window, adapted to the peer. After a wait that
/// spun its whole window in vain and had to sleep (the peer is slower than the window), the
/// next [`SKIP_AFTER_SLEEP`] waits go straight to sleep — so a producer facing a slow consumer
/// parks instead of burning its window on every record — and then spinning is tried again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spin {
    pub(crate) window: Duration,
    skip: u8,
}

/// See [`Spin`].
const SKIP_AFTER_SLEEP: u8 = 16;

impl Spin {
    pub(crate) fn new(window: Duration) -> Spin {
        Spin { window, skip: 0 }
    }

    /// The spin phase of a waiter outside `block` (an async endpoint): polls `attempt` for
    /// this wait's window (nothing when the window is zero or skipped); a window spun in vain
    /// makes the next waits skip spinning, as in `block`.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn spin<R>(&mut self, mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
        let window = self.take();
        if window.is_zero() {
            return None;
        }
        let start = Instant::now();
        let mut i: u32 = 0;
        loop {
            std::hint::spin_loop();
            if let Some(r) = attempt() {
                return Some(r);
            }
            i = i.wrapping_add(1);
            if i % 64 == 0 && start.elapsed() >= window {
                self.skip = SKIP_AFTER_SLEEP;
                return None;
            }
        }
    }

    /// A wait spun its whole window in vain outside `block` (a sender waiting for the
    /// receivers to get ahead): the next waits go straight to sleep, as after a vain spin in
    /// `block`.
    pub(crate) fn spun_in_vain(&mut self) {
        self.skip = SKIP_AFTER_SLEEP;
    }

    /// Whether a wait now would spin: a window is set and no recent wait spun it in vain.
    #[inline]
    pub(crate) fn spins(&self) -> bool {
        self.skip == 0 && !self.window.is_zero()
    }

    /// The window for this wait.
    fn take(&mut self) -> Duration {
        if self.skip > 0 {
            self.skip -= 1;
            Duration::ZERO
        } else {
            self.window
        }
    }
}

/// Consecutive wake-ups that bring nothing before a wait stops trusting its doorbell. The
/// counting tokens leave at most one stale token per abandoned wait, and an MPMC waiter loses
/// a race to a sibling now and then, so a legitimate wait sees a few; a stream of them means
/// somebody writes to the doorbell object itself (a semaphore, queue or eventfd is writable
/// by whoever can reach it). Past the limit the wait polls once per time slice: it still
/// ends on time and still receives, without burning a core.
pub(crate) const MAX_EMPTY_WAKEUPS: u32 = 64;

/// How long the spin doorbell polls before it starts yielding the CPU between attempts.
const SPIN_BEFORE_YIELD: Duration = Duration::from_micros(50);

/// Phase 1: poll `attempt` with a short pause between tries. A sleeping doorbell gives up after
/// `spin` (returns `None`); the spin doorbell never does, but after [`SPIN_BEFORE_YIELD`] it
/// yields between attempts and looks for dead peers every [`SLICE`].
///
/// The pause is one `spin_loop` hint: a peer that answers within a few hundred nanoseconds is
/// seen at once (this is the latency path), and the clock is read only every 64 attempts.
fn spin_phase<R>(
    seg: &Segment,
    role: Role,
    deadline: Option<Instant>,
    spin: Duration,
    sleeps: bool,
    attempt: &mut impl FnMut(bool) -> Attempt<R>,
) -> Option<Result<R, Failed>> {
    let start = Instant::now();
    let mut next_check = start + SLICE;
    let mut i: u32 = 0;
    loop {
        std::hint::spin_loop();
        if let Some(done) = finish(attempt(false)) {
            return Some(done);
        }
        i = i.wrapping_add(1);
        if i % 64 == 0 {
            if !seg.header_intact() {
                return Some(Err(Failed::Corrupted));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Some(Err(Failed::Timeout));
            }
            let spun = now - start;
            if sleeps {
                if spun >= spin {
                    return None;
                }
            } else if spun >= SPIN_BEFORE_YIELD {
                // Spinning for long: let others run, and look for dead peers now and then.
                std::thread::yield_now();
                if now >= next_check {
                    next_check = now + SLICE;
                    if let Err(f) = housekeep(seg, role) {
                        return Some(Err(f));
                    }
                    if let Some(done) = finish(attempt(true)) {
                        return Some(done);
                    }
                }
            }
        }
    }
}

/// Runs `attempt` until it completes, the deadline passes, or the peer side is gone.
///
/// `role` is the waiting side: a receiver waits in the data cell for senders, a sender in the
/// room cell for receivers.
pub(crate) fn block<R>(
    seg: &Segment,
    role: Role,
    slot: usize,
    deadline: Option<Instant>,
    spin_policy: &mut Spin,
    mut attempt: impl FnMut(bool) -> Attempt<R>,
) -> Result<R, Failed> {
    // The slow path: the cursors said empty or full. Before trusting them again, the cheap
    // check that the memory is still the channel's (see `Segment::header_intact`).
    if !seg.header_intact() {
        return Err(Failed::Corrupted);
    }
    if let Some(done) = finish(attempt(false)) {
        return done;
    }
    let sleeps = seg.sleeps();
    let spin = spin_policy.take();
    if !sleeps || !spin.is_zero() {
        if let Some(done) = spin_phase(seg, role, deadline, spin, sleeps, &mut attempt) {
            return done;
        }
    }
    // Phase 2: announce, re-check, sleep. Only a spin that ran its whole window in vain
    // re-arms the skip (a sleep during a skip does not, so spinning is tried again soon).
    if !spin.is_zero() {
        spin_policy.skip = SKIP_AFTER_SLEEP;
    }
    let mut empty_wakeups: u32 = 0;
    loop {
        if empty_wakeups >= MAX_EMPTY_WAKEUPS {
            // Tokens that never bring anything: a peer is writing to the doorbell object
            // (a semaphore, queue or eventfd anyone with access can post to). Stop listening
            // to it for this wait and look once per time slice instead.
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Failed::Timeout);
            }
            let until = deadline.map_or(now + SLICE, |d| d.min(now + SLICE));
            std::thread::sleep(until.saturating_duration_since(now));
            housekeep(seg, role)?;
            if let Some(done) = finish(attempt(true)) {
                return done;
            }
            continue;
        }
        seg.announce(role, slot);
        if let Some(done) = finish(attempt(false)) {
            seg.settle(role, slot);
            return done;
        }
        seg.note_sleep(role, slot);
        loop {
            let now = Instant::now();
            let slice_end = now + crate::barrier::slice(SLICE);
            let until = deadline.map_or(slice_end, |d| d.min(slice_end));
            match seg.sleep(role, slot, until) {
                Slept::Token => break,
                Slept::Removed => {
                    // The doorbell's kernel object is gone: the channel was removed (by its
                    // creator leaving, or `shmchan rm`). Deliver what is there, then report
                    // the disconnection; never sleep on the dead object again.
                    return match attempt(false) {
                        Attempt::Ready(r) => Ok(r),
                        Attempt::Corrupted => Err(Failed::Corrupted),
                        Attempt::NotYet | Attempt::Gone => Err(Failed::Gone),
                    };
                }
                Slept::Corrupted => {
                    // A peer overwrote the doorbell: deliver what is there (the ring itself
                    // may be intact), then report the corruption rather than sleep on garbage.
                    seg.settle(role, slot);
                    return match attempt(false) {
                        Attempt::Ready(r) => Ok(r),
                        Attempt::Gone => Err(Failed::Gone),
                        Attempt::NotYet | Attempt::Corrupted => Err(Failed::Corrupted),
                    };
                }
                slept @ (Slept::TimedOut | Slept::PeerDied) => {
                    if slept == Slept::PeerDied {
                        reap_death(seg, role, slot, deadline);
                    }
                    if let Err(f) = housekeep(seg, role) {
                        // Withdrawing touches the segment: not when its file shrank.
                        if seg.whole() {
                            seg.settle(role, slot);
                        }
                        return Err(f);
                    }
                    if let Some(done) = finish(attempt(true)) {
                        seg.settle(role, slot);
                        return done;
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        seg.settle(role, slot);
                        return Err(Failed::Timeout);
                    }
                }
            }
        }
        // Woken with our token consumed (no longer announced): try before announcing again,
        // once the memory is known to be still the channel's.
        if !seg.header_intact() {
            return Err(Failed::Corrupted);
        }
        if let Some(done) = finish(attempt(false)) {
            return done;
        }
        empty_wakeups += 1;
        // A stream of tokens that never bring a record (a hostile peer can write any permit
        // count) must not outlast the deadline.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Failed::Timeout);
        }
    }
}

/// How long a waiter told of a death ([`Slept::PeerDied`]) keeps trying to reap it before it
/// leaves it to the time slice: the kernel marks the wake word early in the process's exit
/// (`exit_mm`); its other threads enter their exit within microseconds (a process of this
/// PID namespace is judged dead then, see `shmchan_os::process::is_alive`), while its life
/// token drops, and `/proc` shows a zombie, only at the end of the exit, which can take a
/// millisecond or more on a busy machine. A forged mark costs at most this (once per claim:
/// the futex doorbell does not report a mark twice).
const DEATH_POLL: Duration = SLICE;
/// For this long after the mark, [`reap_death`] tries again at once (giving the CPU away
/// between tries): the rest of the process enters its exit within microseconds, and a sleep
/// would last longer than that (the kernel's timer slack alone is 50 µs).
const DEATH_SPIN: Duration = Duration::from_micros(200);
/// The first pause between two tries of [`reap_death`] after [`DEATH_SPIN`]; each pause
/// doubles, up to [`DEATH_NAP_MAX`]: a slow exit is seen within a millisecond, in a few dozen
/// tries.
const DEATH_NAP: Duration = Duration::from_micros(20);
/// See [`DEATH_NAP`].
const DEATH_NAP_MAX: Duration = Duration::from_millis(1);

/// A peer's wake word says it died: reap it as soon as its life token (the only authority:
/// the word is a wake source, never a verdict) or its pid says so, trying at once for
/// [`DEATH_SPIN`], then with pauses from [`DEATH_NAP`] to [`DEATH_NAP_MAX`], for at most
/// [`DEATH_POLL`] (and never past `deadline`), or until nobody's word says so any more
/// (another waiter reaped it). A reap wakes the waiter's own side too (siblings asleep on the
/// same cell), so that they re-check.
fn reap_death(seg: &Segment, role: Role, slot: usize, deadline: Option<Instant>) {
    let start = Instant::now();
    let end = deadline.map_or(start + DEATH_POLL, |d| d.min(start + DEATH_POLL));
    let mut nap = DEATH_NAP;
    loop {
        let mut reaped = seg.reap_dead(role.peer());
        if seg.kind == crate::segment::RingKind::Mpmc {
            reaped += seg.reap_dead(role);
        }
        if reaped > 0 {
            seg.wake_all(role);
            return;
        }
        // Reaped by another waiter (it cleared the word), or the time is up.
        if !seg.death_marked(role, slot) || Instant::now() >= end {
            return;
        }
        if start.elapsed() < DEATH_SPIN {
            std::thread::yield_now();
            continue;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(DEATH_NAP_MAX);
    }
}

/// What a waiter does once per time slice: check that the segment is still whole and still
/// the one validated at open (a channel file truncated under it, or truncated and grown
/// again, ends the wait with `Corrupted` before anything touches lost pages or reads zeros as
/// cursors; see `Segment::check_intact`), then reap dead peers (and, on MPMC, dead siblings,
/// whose claimed slots may be what it waits for), settling what they held. The attempt that
/// follows is told (`attempt(true)`) so that a receiver can adopt a dead sibling's records.
pub(crate) fn housekeep(seg: &Segment, role: Role) -> Result<(), Failed> {
    seg.check_intact().map_err(|_| Failed::Corrupted)?;
    seg.reap_dead(role.peer());
    if seg.kind == crate::segment::RingKind::Mpmc {
        seg.reap_dead(role);
    }
    Ok(())
}

/// Before a blocking reserve or peek tries again. Those calls wait with [`block`] on the
/// cursors (not full / not empty) and then take the slot outside it, and the two can disagree
/// for as long as the state lasts: on MPMC a slot claimed but not finished (a sibling's held
/// reserve or peek guard, in any process, or a stamp a hostile peer wrote) counts in the
/// cursors but cannot be taken, so `block` returns at once every time. Without this the loop
/// spun past its deadline (found by the `hostile_bytes` fuzz target). Gives the deadline its
/// say and the CPU to the claimer, and once per time slice does the housekeeping `block` would
/// have done: a claimer that died is reaped and its slot settled, so the wait ends.
pub(crate) struct Retry {
    first: bool,
    next_check: Option<Instant>,
}

impl Retry {
    pub(crate) fn new() -> Retry {
        Retry {
            first: true,
            next_check: None,
        }
    }

    /// Called after each failed try (the first call does nothing: `block` waits first).
    pub(crate) fn before_retry(
        &mut self,
        seg: &Segment,
        role: Role,
        deadline: Option<Instant>,
    ) -> Result<(), Failed> {
        if std::mem::take(&mut self.first) {
            return Ok(());
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Failed::Timeout);
        }
        match self.next_check {
            None => self.next_check = Some(now + SLICE),
            Some(t) if now >= t => {
                housekeep(seg, role)?;
                self.next_check = Some(now + SLICE);
            }
            Some(_) => {}
        }
        std::thread::yield_now();
        Ok(())
    }
}

/// An endpoint core whose blocking reserve (a sender) or peek (a receiver) [`retry_loop`]
/// drives.
pub(crate) trait Retried {
    /// What a successful try gives: a guard that borrows the endpoint.
    type Guard<'g>;

    /// Between two tries: [`Retry::before_retry`], then [`block`] until the cursors say the
    /// next try can succeed (room for a sender, a record for a receiver) or the peers are gone.
    fn wait(&mut self, retry: &mut Retry, deadline: Option<Instant>) -> Result<(), Failed>;
}

/// A blocking reserve or peek: `try_once` (the non-waiting form; `Err(Failed::Timeout)`
/// while the ring is full or empty) until it gives a guard or another error, with
/// [`Retried::wait`] between tries.
pub(crate) fn retry_loop<P: Retried>(
    endpoint: &mut P,
    deadline: Option<Instant>,
    mut try_once: impl for<'g> FnMut(&'g mut P) -> Result<P::Guard<'g>, Failed>,
) -> Result<P::Guard<'_>, Failed> {
    let this: *mut P = endpoint;
    let mut retry = Retry::new();
    loop {
        // SAFETY: `this` is `endpoint`, exclusively borrowed for the whole call and used only
        // through these reborrows, one at a time. `try_once` accepts a borrow of any lifetime,
        // so it can keep nothing of it (neither in its captures nor in its error, which holds
        // no borrow) but the guard it returns: after `Err(Timeout)` this reborrow is dead
        // before the next one is made. The raw pointer only works around the borrow
        // checker's conditional-return limitation (the one Polonius is to lift), which would
        // keep the returned borrow alive across the loop.
        let me = unsafe { &mut *this };
        match try_once(me) {
            Err(Failed::Timeout) => {}
            r => return r,
        }
        // SAFETY: as above; `try_once` returned `Err(Timeout)`, so no borrow made through
        // `this` lives.
        let me = unsafe { &mut *this };
        me.wait(&mut retry, deadline)?;
    }
}
