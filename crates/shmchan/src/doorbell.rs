//! Doorbells: what a waiting side sleeps on, and how the other side wakes it.
//!
//! # The protocol
//!
//! The announce/re-check/sleep and publish/fence/ring handshake is `shmchan-ring`'s
//! ([`shmchan_ring::WaitCell`], proven lost-wakeup free in its loom models): a waiter announces
//! itself in the cell of its direction, re-checks the ring, and sleeps; a publisher, after a
//! `SeqCst` fence, takes the announced sleepers' tokens and posts exactly that many. Every
//! counting doorbell (futex, SysV semaphore, POSIX semaphores, POSIX message queue) is therefore
//! a counting semaphore whose value never exceeds the number of waiters (so a SysV semaphore
//! can never run into `SEMVMX`, nor a POSIX queue into `msg_max`, on a busy channel), and
//! ringing costs no system call while nobody sleeps.
//!
//! The SysV message queue doorbell wakes *targeted* endpoints: a waiter also raises the
//! `asleep` flag of its endpoint-table entry before it announces, a ringer that finds sleepers
//! claims each flagged entry of the waiting role (CAS 1→0) and sends it a message of type
//! `1 + entry`, and a waiter that leaves un-woken clears its own flag (or, if a ringer claimed
//! it first, consumes the message owed to it). Producers and consumers, and the endpoints of an
//! MPMC channel, never take each other's wake-ups. `msgrcv` has no timeout, so a per-process
//! watchdog thread ([`alarm`]) sends a waiter a message of its own at its deadline.
//!
//! The eventfd doorbell is the counting protocol over two `EFD_SEMAPHORE | EFD_NONBLOCK`
//! eventfds: a post writes `n`, a wait polls the descriptor until its deadline and reads one
//! token (another waiter may take it first: the read fails with `EAGAIN`, and the wait polls
//! again). Its objects are descriptors, not names: only processes that hold them can use it —
//! children forked from the creator (anonymous memory) and peers that received them with a
//! memfd (`Channel::share`, `Backing::receive`).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmchan_os as os;

use crate::segment::{Role, Segment};

/// How a waiting side sleeps, chosen in the builder and recorded in the segment.
///
/// | doorbell | kernel object | note |
/// |---|---|---|
/// | [`Futex`](Doorbell::Futex) | a word in the segment | the default: fastest wake-up, nothing to clean up |
/// | [`Spin`](Doorbell::Spin) | none | never sleeps: lowest latency, burns a core while waiting |
/// | [`SysvSem`](Doorbell::SysvSem) | a SysV semaphore set (one per direction) | for peers that already manage SysV objects |
/// | [`PosixSem`](Doorbell::PosixSem) | two unnamed `sem_t` in the segment (pshared) | nothing to clean up |
/// | [`PosixNamedSem`](Doorbell::PosixNamedSem) | two named semaphores (`sem_open`) | findable by name under `/dev/shm` |
/// | [`SysvMsgQueue`](Doorbell::SysvMsgQueue) | one SysV message queue | targeted wake-ups by `mtype` |
/// | [`PosixMq`](Doorbell::PosixMq) | two POSIX message queues (one per direction) | pollable descriptor: event loops |
/// | [`EventFd`](Doorbell::EventFd) | two eventfds (one per direction) | pollable; anonymous and memfd backings only |
///
/// The segment records which doorbell a channel uses and how to reach its objects, so an
/// opener connects to them without being told; an opener that asks for another doorbell gets
/// [`OpenError::Mismatch`](crate::OpenError::Mismatch). Kernel objects are created with the
/// channel and removed with it (see [`Cleanup`](crate::Cleanup)); a SysV set or queue removed
/// under a blocked waiter makes it return `Disconnected`.
///
/// ```
/// use shmchan::Doorbell;
/// assert_eq!(Doorbell::default(), Doorbell::Futex);
/// assert_eq!(Doorbell::SysvMsgQueue.to_string(), "sysv-msgq");
/// assert_eq!("posix-mq".parse::<Doorbell>(), Ok(Doorbell::PosixMq));
/// assert_eq!("eventfd".parse::<Doorbell>(), Ok(Doorbell::EventFd));
/// assert_eq!(Doorbell::ALL.len(), 8);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Doorbell {
    /// A futex on a word in the segment (never `FUTEX_PRIVATE_FLAG`).
    #[default]
    Futex,
    /// Busy polling (`spin_loop`, with a `yield` after a bound). Never sleeps; no system call
    /// on either side. For latency-critical pairs that each own a core.
    Spin,
    /// A SysV semaphore set with one semaphore per direction (`semtimedop`; posts never use
    /// `SEM_UNDO`).
    SysvSem,
    /// Two unnamed POSIX semaphores (`sem_init` with pshared = 1) inside the segment; timed
    /// waits use `sem_clockwait(CLOCK_MONOTONIC)`.
    PosixSem,
    /// Two named POSIX semaphores (`sem_open`), for peers that want to find them by name.
    PosixNamedSem,
    /// One SysV message queue; wake-ups are messages whose `mtype` names the endpoint to wake.
    SysvMsgQueue,
    /// One POSIX message queue per direction; a receiver's queue descriptor can be polled
    /// ([`Receiver::doorbell_fd`](crate::Receiver::doorbell_fd)).
    PosixMq,
    /// Two eventfds (`EFD_SEMAPHORE | EFD_NONBLOCK`), one per direction; pollable like
    /// [`PosixMq`](Doorbell::PosixMq), cheaper, and nothing with a name to clean up.
    ///
    /// A peer reaches an eventfd only through its descriptor, so this doorbell works where the
    /// descriptors travel with the channel: [`Backing::anonymous`](crate::Backing::anonymous)
    /// (children forked after creation inherit them with the [`Channel`](crate::Channel)) and
    /// [`Backing::memfd`](crate::Backing::memfd) ([`Channel::share`](crate::Channel::share)
    /// sends them with the memfd). Creating it on a SysV, file or caller-provided backing is
    /// refused with [`OpenError::InvalidConfig`](crate::OpenError::InvalidConfig).
    ///
    /// ```
    /// use shmchan::{Backing, Channel, Doorbell, OpenError};
    /// let chan = Channel::<u64>::builder()
    ///     .backing(Backing::anonymous())
    ///     .doorbell(Doorbell::EventFd)
    ///     .create()?;
    /// let (mut tx, mut rx) = (chan.sender()?, chan.receiver()?);
    /// tx.send(5).unwrap();
    /// assert_eq!(rx.recv(), Ok(5));
    /// # let path = std::env::temp_dir().join(format!("shmchan-doc-efd-{}", std::process::id()));
    /// let on_file = Channel::<u64>::builder()
    ///     .backing(Backing::file(&path)) // peers open files by path: no descriptors for them
    ///     .doorbell(Doorbell::EventFd)
    ///     .create();
    /// assert!(matches!(on_file, Err(OpenError::InvalidConfig { .. })));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    EventFd,
}

impl Doorbell {
    /// Every doorbell, in a fixed order.
    ///
    /// ```
    /// use shmchan::Doorbell;
    /// assert!(Doorbell::ALL.contains(&Doorbell::Futex));
    /// for d in Doorbell::ALL {
    ///     assert_eq!(d.name().parse::<Doorbell>(), Ok(d)); // every name round-trips
    /// }
    /// ```
    pub const ALL: [Doorbell; 8] = [
        Doorbell::Futex,
        Doorbell::Spin,
        Doorbell::SysvSem,
        Doorbell::PosixSem,
        Doorbell::PosixNamedSem,
        Doorbell::SysvMsgQueue,
        Doorbell::PosixMq,
        Doorbell::EventFd,
    ];

    /// The short name used in tables and on command lines.
    ///
    /// ```
    /// use shmchan::Doorbell;
    /// const NAME: &str = Doorbell::PosixNamedSem.name(); // usable in const context
    /// assert_eq!(NAME, "posix-named-sem");
    /// assert_eq!(Doorbell::Futex.name(), Doorbell::Futex.to_string());
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Doorbell::Futex => "futex",
            Doorbell::Spin => "spin",
            Doorbell::SysvSem => "sysv-sem",
            Doorbell::PosixSem => "posix-sem",
            Doorbell::PosixNamedSem => "posix-named-sem",
            Doorbell::SysvMsgQueue => "sysv-msgq",
            Doorbell::PosixMq => "posix-mq",
            Doorbell::EventFd => "eventfd",
        }
    }

    pub(crate) fn code(self) -> u32 {
        match self {
            Doorbell::Futex => 1,
            Doorbell::Spin => 2,
            Doorbell::SysvSem => 3,
            Doorbell::PosixSem => 4,
            Doorbell::PosixNamedSem => 5,
            Doorbell::SysvMsgQueue => 6,
            Doorbell::PosixMq => 7,
            Doorbell::EventFd => 8,
        }
    }

    pub(crate) fn from_code(code: u32) -> Option<Doorbell> {
        Doorbell::ALL.into_iter().find(|d| d.code() == code)
    }
}

impl std::fmt::Display for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Doorbell {
    type Err = String;
    fn from_str(s: &str) -> Result<Doorbell, String> {
        Doorbell::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Doorbell::ALL.iter().map(|d| d.name()).collect();
                format!("unknown doorbell {s:?} (one of: {})", names.join(", "))
            })
    }
}

/// The result of one sleep on a doorbell.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slept {
    /// A token was consumed: the announcement is gone; try again.
    Token,
    /// The time ran out; the waiter is still announced.
    TimedOut,
    /// The doorbell object was removed under the waiter (SysV `EIDRM`): the channel is gone.
    Removed,
}

/// Direction index: 0 = data (receivers wait), 1 = room (senders wait).
pub(crate) fn dir(role: Role) -> usize {
    match role {
        Role::Receiver => 0,
        Role::Sender => 1,
    }
}

/// What a peer needs to reach the doorbell's kernel objects; stored in the segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Desc {
    /// SysV semid or msqid.
    pub id: i32,
    /// POSIX names, per direction.
    pub names: [String; 2],
}

/// The doorbell's kernel objects, connected.
enum Objs {
    None,
    SysvSem(os::SemSet),
    /// Two `sem_t` inside the segment (valid while the mapping lives: the Segment owns both).
    PosixSem([NonNull<os::RawSem>; 2]),
    PosixNamed([os::NamedSem; 2]),
    SysvMsg(os::MsgQueue),
    PosixMq([os::PosixMq; 2]),
    /// Shared with a received backing (`memfd::Received`), which holds them too.
    EventFd([std::sync::Arc<os::EventFd>; 2]),
}

/// A doorbell connected to its kernel objects.
pub(crate) struct Bell {
    kind: Doorbell,
    objs: Objs,
}

// SAFETY: the `PosixSem` pointers point into the segment mapping, which the owning Segment
// keeps mapped for the Bell's whole life; `sem_t` is made for concurrent use by any thread of
// any process. The other objects are ids and descriptors.
unsafe impl Send for Bell {}
// SAFETY: as above; every operation is a system call on a shared kernel object.
unsafe impl Sync for Bell {}

impl std::fmt::Debug for Bell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bell")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

static NAME_SEQ: AtomicU32 = AtomicU32::new(0);

fn unique_posix_name(tag: &str, d: usize) -> String {
    let n = NAME_SEQ.fetch_add(1, Ordering::Relaxed);
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "/shmchan-{tag}-{}-{n}-{ns:08x}-{}",
        std::process::id(),
        ["d", "r"][d]
    )
}

/// Kernel objects created for a new channel, not yet connected to the segment. Dropping it
/// removes them (a failed creation leaks nothing); [`Created::keep`] hands them over.
pub(crate) struct Created {
    kind: Doorbell,
    desc: Desc,
    objs: Option<Objs>,
}

impl Created {
    pub(crate) fn new(kind: Doorbell, mode: os::Mode) -> Result<Created, os::Error> {
        let mut desc = Desc::default();
        let objs = match kind {
            Doorbell::Futex | Doorbell::Spin | Doorbell::PosixSem => Objs::None,
            Doorbell::SysvSem => {
                let set = os::SemSet::create(os::Key::PRIVATE, 2, mode)?;
                desc.id = set.raw();
                Objs::SysvSem(set)
            }
            Doorbell::SysvMsgQueue => {
                let q = os::MsgQueue::create(os::Key::PRIVATE, mode)?;
                desc.id = q.raw();
                Objs::SysvMsg(q)
            }
            Doorbell::PosixNamedSem => {
                let n0 = unique_posix_name("sem", 0);
                let n1 = unique_posix_name("sem", 1);
                let s0 = os::NamedSem::create(&n0, 0, mode)?;
                let s1 = match os::NamedSem::create(&n1, 0, mode) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = os::NamedSem::unlink(&n0);
                        return Err(e);
                    }
                };
                desc.names = [n0, n1];
                Objs::PosixNamed([s0, s1])
            }
            Doorbell::PosixMq => {
                let max = os::limits::mq_msg_max().unwrap_or(10).clamp(1, 64) as usize;
                let attr = os::MqAttr {
                    max_msgs: max,
                    msg_size: 8,
                };
                let n0 = unique_posix_name("mq", 0);
                let n1 = unique_posix_name("mq", 1);
                let q0 = os::PosixMq::create(&n0, attr, mode, false)?;
                let q1 = match os::PosixMq::create(&n1, attr, mode, false) {
                    Ok(q) => q,
                    Err(e) => {
                        let _ = os::PosixMq::unlink(&n0);
                        return Err(e);
                    }
                };
                desc.names = [n0, n1];
                Objs::PosixMq([q0, q1])
            }
            Doorbell::EventFd => {
                let flags = os::EfdFlags::SEMAPHORE | os::EfdFlags::NONBLOCK;
                let new = || os::EventFd::new(0, flags).map(std::sync::Arc::new);
                Objs::EventFd([new()?, new()?])
            }
        };
        Ok(Created {
            kind,
            desc,
            objs: Some(objs),
        })
    }

    pub(crate) fn desc(&self) -> &Desc {
        &self.desc
    }

    /// Connects the created objects; `sems` are the in-segment semaphores (already
    /// initialised) for [`Doorbell::PosixSem`].
    pub(crate) fn keep(mut self, sems: [NonNull<os::RawSem>; 2]) -> (Bell, BellOwner) {
        let objs = match self.objs.take().expect("objects") {
            Objs::None if self.kind == Doorbell::PosixSem => Objs::PosixSem(sems),
            o => o,
        };
        let owner = BellOwner {
            kind: self.kind,
            desc: self.desc.clone(),
        };
        (
            Bell {
                kind: self.kind,
                objs,
            },
            owner,
        )
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.objs.is_some() {
            BellOwner {
                kind: self.kind,
                desc: self.desc.clone(),
            }
            .remove();
        }
    }
}

/// What removing a channel's doorbell objects takes.
#[derive(Clone, Debug)]
pub(crate) struct BellOwner {
    pub kind: Doorbell,
    pub desc: Desc,
}

impl BellOwner {
    /// Removes the kernel objects (ignoring "already gone").
    pub(crate) fn remove(&self) {
        match self.kind {
            Doorbell::SysvSem => {
                let _ = os::SemSet::from_raw(self.desc.id).remove();
            }
            Doorbell::SysvMsgQueue => {
                let _ = os::MsgQueue::from_raw(self.desc.id).remove();
            }
            Doorbell::PosixNamedSem => {
                for n in &self.desc.names {
                    let _ = os::NamedSem::unlink(n);
                }
            }
            Doorbell::PosixMq => {
                for n in &self.desc.names {
                    let _ = os::PosixMq::unlink(n);
                }
            }
            // Descriptors close with the last process that holds them.
            Doorbell::Futex | Doorbell::Spin | Doorbell::PosixSem | Doorbell::EventFd => {}
        }
    }

    /// A one-line description of the objects, for `shmchan stat`.
    pub(crate) fn describe(&self) -> String {
        match self.kind {
            Doorbell::SysvSem => format!("SysV semaphore set semid {}", self.desc.id),
            Doorbell::SysvMsgQueue => format!("SysV message queue msqid {}", self.desc.id),
            Doorbell::PosixNamedSem => format!(
                "named semaphores {} and {}",
                self.desc.names[0], self.desc.names[1]
            ),
            Doorbell::PosixMq => format!(
                "POSIX message queues {} and {}",
                self.desc.names[0], self.desc.names[1]
            ),
            Doorbell::PosixSem => "two unnamed semaphores in the segment".into(),
            Doorbell::Futex => "a futex word in the segment".into(),
            Doorbell::Spin => "none".into(),
            Doorbell::EventFd => {
                "two eventfds (descriptors held by the processes using the channel)".into()
            }
        }
    }
}

impl Bell {
    /// Connects to the objects a segment describes (opening side). The eventfd doorbell's
    /// descriptors, which no segment can describe, come with [`Bell::with_eventfds`].
    pub(crate) fn open(
        kind: Doorbell,
        desc: &Desc,
        sems: [NonNull<os::RawSem>; 2],
    ) -> Result<Bell, os::Error> {
        let objs = match kind {
            Doorbell::Futex | Doorbell::Spin => Objs::None,
            Doorbell::PosixSem => Objs::PosixSem(sems),
            Doorbell::SysvSem => {
                let set = os::SemSet::from_raw(desc.id);
                set.stat()?;
                Objs::SysvSem(set)
            }
            Doorbell::SysvMsgQueue => {
                let q = os::MsgQueue::from_raw(desc.id);
                q.stat()?;
                Objs::SysvMsg(q)
            }
            Doorbell::PosixNamedSem => Objs::PosixNamed([
                os::NamedSem::open(&desc.names[0])?,
                os::NamedSem::open(&desc.names[1])?,
            ]),
            Doorbell::PosixMq => Objs::PosixMq([
                os::PosixMq::open(&desc.names[0], false)?,
                os::PosixMq::open(&desc.names[1], false)?,
            ]),
            // Connected by `with_eventfds` (`memfd::bell_fds` refuses to open without them).
            Doorbell::EventFd => Objs::None,
        };
        Ok(Bell { kind, objs })
    }

    /// Connects the eventfd doorbell to its descriptors (from `memfd::bell_fds`; `None` for the
    /// other doorbells, which are left as they are).
    pub(crate) fn with_eventfds(mut self, efds: Option<[std::sync::Arc<os::EventFd>; 2]>) -> Bell {
        if let (Doorbell::EventFd, Some(e)) = (self.kind, efds) {
            self.objs = Objs::EventFd(e);
        }
        self
    }

    pub(crate) fn kind(&self) -> Doorbell {
        self.kind
    }

    /// Whether waiters sleep (and so announce themselves) on this doorbell.
    pub(crate) fn sleeps(&self) -> bool {
        !matches!(self.kind, Doorbell::Spin)
    }

    fn targeted(&self) -> bool {
        matches!(self.objs, Objs::SysvMsg(_))
    }

    /// The descriptor that waiters of `role` sleep on, where the doorbell has one (POSIX mq,
    /// eventfd): readable while a token for them is posted. Receivers wait for data (index 0),
    /// senders for room (index 1).
    pub(crate) fn fd(&self, role: Role) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match &self.objs {
            Objs::PosixMq(q) => Some(q[dir(role)].as_fd()),
            Objs::EventFd(e) => Some(e[dir(role)].as_fd()),
            _ => None,
        }
    }

    /// Announces a waiter of `role` (endpoint-table entry `slot`) before it re-checks.
    pub(crate) fn announce(&self, seg: &Segment, role: Role, slot: usize) {
        if self.targeted() {
            seg.set_asleep(slot, true);
        }
        seg.cell(role).announce();
    }

    /// Wakes the sleepers of `role` after a publish (or a release, or a departure): the fast
    /// path is the ring's `take_tokens` (a fence and a load); a system call happens only when
    /// somebody sleeps.
    #[inline]
    pub(crate) fn ring(&self, seg: &Segment, role: Role) {
        let n = seg.cell(role).take_tokens();
        if n > 0 {
            self.post(seg, role, n);
        }
    }

    /// Posts `n` tokens to the sleepers of `role` (`n` from `take_tokens`).
    #[cold]
    pub(crate) fn post(&self, seg: &Segment, role: Role, n: u32) {
        seg.note_post();
        let cell = seg.cell(role);
        let d = dir(role);
        // Errors are not reported: a post that fails (the object was removed, a queue is full)
        // leaves the waiter to notice at the end of its time slice, where it re-checks.
        match &self.objs {
            Objs::None => {
                if self.kind == Doorbell::Futex {
                    // SYNC(futex-permit): Release pairs with the Acquire CAS in `futex_take`;
                    // the tokens are the futex word itself, so a sleeper that has not reached
                    // futex_wait yet sees the new value and does not sleep.
                    cell.permits().fetch_add(n, Ordering::Release);
                    let _ = os::futex_wake(cell.permits(), n);
                }
            }
            Objs::SysvSem(set) => {
                let op = os::SemOp {
                    num: d as u16,
                    op: n.min(i16::MAX as u32) as i16,
                    flags: os::SemFlags::empty(),
                };
                let _ = set.op(&[op]);
            }
            Objs::PosixSem(sems) => {
                // SAFETY: the pointer is valid while the segment is mapped (see `Objs`).
                let s = unsafe { os::RawSem::from_ptr(sems[d]) };
                for _ in 0..n {
                    let _ = s.post();
                }
            }
            Objs::PosixNamed(sems) => {
                for _ in 0..n {
                    let _ = sems[d].post();
                }
            }
            Objs::PosixMq(qs) => {
                for _ in 0..n {
                    if !matches!(qs[d].try_send(&[0u8], 0), Ok(true)) {
                        break;
                    }
                }
            }
            Objs::SysvMsg(q) => {
                for slot in seg.claim_sleepers(role) {
                    let _ = q.send(mtype(slot), &0u64.to_le_bytes(), os::MsgFlags::NOWAIT);
                }
            }
            Objs::EventFd(e) => {
                // Non-blocking: a counter that would overflow (only a hostile peer gets near
                // u64::MAX) refuses the write instead of blocking the ringer.
                let _ = e[d].write(u64::from(n));
            }
        }
    }

    /// Sleeps until a token for this waiter arrives or `until` passes.
    pub(crate) fn wait(&self, seg: &Segment, role: Role, slot: usize, until: Instant) -> Slept {
        let d = dir(role);
        let gone = |e: &os::Error| e.kind() == os::ErrorKind::Removed;
        match &self.objs {
            Objs::None => match self.kind {
                Doorbell::Futex => futex_take(seg.cell(role).permits(), until),
                // Spin waiters never announce, so they never hold a token.
                _ => Slept::TimedOut,
            },
            Objs::SysvSem(set) => {
                let left = until.saturating_duration_since(Instant::now());
                match set.timed_op(&[os::SemOp::wait(d as u16)], left) {
                    Ok(true) => Slept::Token,
                    Ok(false) => Slept::TimedOut,
                    Err(e) if gone(&e) => Slept::Removed,
                    Err(_) => pause_until(until),
                }
            }
            Objs::PosixSem(sems) => {
                // SAFETY: the pointer is valid while the segment is mapped (see `Objs`).
                let s = unsafe { os::RawSem::from_ptr(sems[d]) };
                match s.wait_until(until) {
                    Ok(true) => Slept::Token,
                    Ok(false) => Slept::TimedOut,
                    Err(_) => pause_until(until),
                }
            }
            Objs::PosixNamed(sems) => match sems[d].wait_until(until) {
                Ok(true) => Slept::Token,
                Ok(false) => Slept::TimedOut,
                Err(_) => pause_until(until),
            },
            Objs::PosixMq(qs) => {
                let mut buf = [0u8; 8];
                match qs[d].recv_until(&mut buf, until) {
                    Ok(Some(_)) => Slept::Token,
                    Ok(None) => Slept::TimedOut,
                    Err(_) => pause_until(until),
                }
            }
            Objs::SysvMsg(q) => msg_wait(*q, slot, until),
            Objs::EventFd(e) => match e[d].read_until(until) {
                Ok(Some(_)) => Slept::Token,
                Ok(None) => Slept::TimedOut,
                Err(_) => pause_until(until),
            },
        }
    }

    /// Leaves the announced state without having consumed a token: withdraw the announcement,
    /// or consume the token a ringer already took for this waiter (bounded: an abandoned token
    /// only causes one later spurious wake-up, never a lost one).
    pub(crate) fn settle(&self, seg: &Segment, role: Role, slot: usize) {
        let settle_until = Instant::now() + SETTLE;
        if self.targeted() {
            // Targeted: the announcement count is only a hint, reset by ringers; the flag is
            // the token. If a ringer claimed us, its message is on the way: take it.
            if !seg.set_asleep(slot, false) {
                let _ = self.wait(seg, role, slot, settle_until);
            }
        } else if !seg.cell(role).withdraw() {
            let _ = self.wait(seg, role, slot, settle_until);
        }
    }
}

/// How long a leaving waiter waits for a token that a ringer already took for it.
const SETTLE: Duration = Duration::from_millis(100);

fn mtype(slot: usize) -> i64 {
    1 + slot as i64
}

/// A failing wait must not turn into a busy loop: sleep out a short pause (bounded by `until`)
/// and report the slice as over; the caller re-checks.
fn pause_until(until: Instant) -> Slept {
    let left = until.saturating_duration_since(Instant::now());
    std::thread::sleep(left.min(Duration::from_millis(5)));
    Slept::TimedOut
}

/// More futex tokens than any legitimate ringing can leave (waiters × a margin for abandoned
/// tokens).
const MAX_PERMITS: u32 = 4 * crate::table::MAX_ENDPOINTS as u32;

/// The futex doorbell's wait: a counting semaphore in the cell's `permits` word.
fn futex_take(word: &AtomicU32, until: Instant) -> Slept {
    loop {
        // SYNC(futex-permit): Acquire pairs with the Release fetch_add in `post`.
        let p = word.load(Ordering::Acquire);
        if p > MAX_PERMITS {
            // Ringers post at most one token per announced waiter, and there are at most
            // MAX_ENDPOINTS waiters: a larger count was written by a hostile or corrupted peer.
            // Drop it (the waiters re-check the ring on every wake anyway).
            let _ = word.compare_exchange(p, 0, Ordering::Relaxed, Ordering::Relaxed);
            continue;
        }
        if p > 0 {
            if word
                .compare_exchange_weak(p, p - 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Slept::Token;
            }
            continue;
        }
        let now = Instant::now();
        if now >= until {
            return Slept::TimedOut;
        }
        if os::futex_wait(word, 0, Some(until - now)).is_err() {
            // EFAULT/EINVAL cannot happen on a mapped, aligned word; do not spin if they did.
            return pause_until(until);
        }
    }
}

/// The SysV message queue doorbell's wait: `msgrcv` of this endpoint's type, with the
/// watchdog's alarm standing in for the timeout `msgrcv` lacks.
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

pub(crate) mod alarm {
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
    pub(crate) struct Alarm {
        seq: u64,
    }

    impl Alarm {
        pub(crate) fn seq(&self) -> u64 {
            self.seq
        }
    }

    /// Registers an alarm: at `at`, a message of `mtype` carrying [`Alarm::seq`] is sent to `q`.
    pub(crate) fn arm(q: os::MsgQueue, mtype: i64, at: Instant) -> Alarm {
        // Unique across processes too: pid in the high half (a stale alarm left in the queue
        // by a dead process is never mistaken for a live one's).
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
