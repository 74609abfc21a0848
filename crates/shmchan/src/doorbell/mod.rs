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
//! watchdog thread (`sysv_msgq::alarm`) sends a waiter a message of its own at its deadline.
//!
//! The eventfd doorbell is the counting protocol over two `EFD_SEMAPHORE | EFD_NONBLOCK`
//! eventfds: a post writes `n`, a wait polls the descriptor until its deadline and reads one
//! token (another waiter may take it first: the read fails with `EAGAIN`, and the wait polls
//! again). Its objects are descriptors, not names: only processes that hold them can use it —
//! children forked from the creator (anonymous memory) and peers that received them with a
//! memfd (`Channel::share`, `Backing::receive`).
//!
//! # Binding
//!
//! The segment names the kernel objects; whoever can write the segment can name anything. So
//! every kind that has named objects creates them bound to the channel (its random identity in
//! their keys and names) and checks, before it opens, posts to, waits on or removes one, that
//! the kernel says the channel's owner made and owns it ([`bind`]). A segment crafted by one
//! user binds only that user's own objects, whoever acts on it (root's `shmchan rm` included).
//!
//! # Kinds
//!
//! Each kind is one file of this folder: a `Spec` (its name and its code in the segment) whose
//! [`Kind`] creates, reaches, describes and removes its kernel objects, and the [`Bell`] it
//! connects to them, which posts and waits. The rest of shmchan never looks at which kind it
//! has: it calls these two traits. The ringer's fast path (`Segment::wake_all`) is the wait
//! cell's `take_tokens` — a fence and one load — and reaches the `Bell` (a dynamic call) only
//! when somebody sleeps.
//!
//! A new kind is a new file here, a line in the `doorbells!` list below (its public variant
//! and documentation), and the kernel wrappers it needs in `shmchan-os`.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use shmchan_os as os;
use shmchan_ring as ring;

use crate::error::{os_error, OpenError};
use crate::table::{Role, Table};

mod bind;
mod eventfd;
mod futex;
mod posix_mq;
mod posix_named_sem;
mod posix_sem;
mod spin;
mod sysv_msgq;
mod sysv_sem;

pub(crate) use bind::{check_owner, Unbound, Vouched};
pub(crate) use eventfd::Handed;
pub(crate) use posix_sem::SemStore;

/// Declares the public [`Doorbell`] enum, [`Doorbell::ALL`] and the dispatch to each kind's
/// [`Spec`] from one list of `Variant = module`.
macro_rules! doorbells {
    ($( $(#[$attr:meta])* $variant:ident = $module:ident, )*) => {
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
        /// The segment records which doorbell a channel uses and how to reach its objects, so
        /// an opener connects to them without being told; an opener that asks for another
        /// doorbell gets [`OpenError::Mismatch`]. Kernel objects are created with the channel
        /// and removed with it (see [`Cleanup`](crate::Cleanup)); a SysV set or queue removed
        /// under a blocked waiter makes it return `Disconnected`. Their keys and names carry the
        /// channel's random identity, and nothing is opened, posted to, waited on or removed
        /// unless the kernel says the channel's owner made and owns it
        /// ([`OpenError::UnboundDoorbell`]).
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
            $( $(#[$attr])* $variant, )*
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
            pub const ALL: [Doorbell; [$(Doorbell::$variant),*].len()] = [$(Doorbell::$variant),*];

            /// The kind's file: its name, code and implementation.
            const fn spec(self) -> &'static Spec {
                match self {
                    $( Doorbell::$variant => &$module::SPEC, )*
                }
            }
        }
    };
}

doorbells! {
    /// A futex on a word in the segment (never `FUTEX_PRIVATE_FLAG`).
    #[default]
    Futex = futex,
    /// Busy polling (`spin_loop`, with a `yield` after a bound). Never sleeps; no system call
    /// on either side. For latency-critical pairs that each own a core.
    Spin = spin,
    /// A SysV semaphore set with one semaphore per direction (`semtimedop`; posts never use
    /// `SEM_UNDO`).
    SysvSem = sysv_sem,
    /// Two unnamed POSIX semaphores (`sem_init` with pshared = 1) inside the segment; timed
    /// waits use `sem_clockwait(CLOCK_MONOTONIC)`.
    PosixSem = posix_sem,
    /// Two named POSIX semaphores (`sem_open`), for peers that want to find them by name.
    PosixNamedSem = posix_named_sem,
    /// One SysV message queue; wake-ups are messages whose `mtype` names the endpoint to wake.
    SysvMsgQueue = sysv_msgq,
    /// One POSIX message queue per direction; a receiver's queue descriptor can be polled
    /// ([`Receiver::doorbell_fd`](crate::Receiver::doorbell_fd)).
    PosixMq = posix_mq,
    /// Two eventfds (`EFD_SEMAPHORE | EFD_NONBLOCK`), one per direction; pollable like
    /// [`PosixMq`](Doorbell::PosixMq), cheaper, and nothing with a name to clean up.
    ///
    /// A peer reaches an eventfd only through its descriptor, so this doorbell works where the
    /// descriptors travel with the channel: [`Backing::anonymous`](crate::Backing::anonymous)
    /// (children forked after creation inherit them with the [`Channel`](crate::Channel)) and
    /// [`Backing::memfd`](crate::Backing::memfd) ([`Channel::share`](crate::Channel::share)
    /// sends them with the memfd). Creating it on a SysV, file or caller-provided backing is
    /// refused with [`OpenError::InvalidConfig`].
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
    EventFd = eventfd,
}

/// What the rest of shmchan knows of a kind, from its file.
pub(crate) struct Spec {
    /// The short name ([`Doorbell::name`]).
    name: &'static str,
    /// The code stored in the segment header and in a memfd hand-off (never reused).
    code: u32,
    /// The kind's code.
    imp: &'static dyn Kind,
}

impl Doorbell {
    /// The short name used in tables and on command lines.
    ///
    /// ```
    /// use shmchan::Doorbell;
    /// const NAME: &str = Doorbell::PosixNamedSem.name(); // usable in const context
    /// assert_eq!(NAME, "posix-named-sem");
    /// assert_eq!(Doorbell::Futex.name(), Doorbell::Futex.to_string());
    /// ```
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    pub(crate) fn code(self) -> u32 {
        self.spec().code
    }

    pub(crate) fn from_code(code: u32) -> Option<Doorbell> {
        Doorbell::ALL.into_iter().find(|d| d.code() == code)
    }

    fn imp(self) -> &'static dyn Kind {
        self.spec().imp
    }

    /// Whether waiters sleep (and so announce themselves) on this doorbell.
    pub(crate) fn sleeps(self) -> bool {
        self.imp().sleeps()
    }

    /// How many descriptors travel with a memfd hand-off (`Channel::share`), after the memfd.
    pub(crate) fn handoff_fds(self) -> usize {
        self.imp().handoff_fds()
    }

    /// Checks the descriptors that came with a received memfd ([`Doorbell::handoff_fds`] of
    /// them) and keeps them for opening; the error says what is wrong with them.
    pub(crate) fn receive_fds(
        self,
        fds: &mut dyn Iterator<Item = OwnedFd>,
    ) -> Result<Option<Handed>, String> {
        self.imp().receive(fds)
    }

    /// Refuses this doorbell on a backing whose peers could not reach its objects.
    pub(crate) fn check_backing(self, reach: &Reach<'_>) -> Result<(), OpenError> {
        match self.imp().refuse(reach) {
            None => Ok(()),
            Some(reason) => Err(OpenError::InvalidConfig { reason }),
        }
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

/// One doorbell kind: how it creates, reaches, describes and removes its kernel objects.
trait Kind: Sync {
    /// Creates the objects of a new channel: what peers need to reach them, and the creator's
    /// bell.
    fn create(&self, mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error>;
    /// Connects an opener to the objects `desc` names (`reach`: what its backing brought), after
    /// checking that they are bound to the channel (`reach.owner`; see [`bind`]).
    fn open(&self, desc: &Desc, reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached>;
    /// Prepares what the kind keeps inside a new segment, before the segment is published.
    fn init_storage(&self, _sems: &[SemStore; 2]) -> Result<(), os::Error> {
        Ok(())
    }
    /// Removes the objects `desc` names that are bound to the channel (`owner`: the uid the
    /// kernel says the channel belongs to; `None`: nobody vouches, so nothing named by the
    /// segment may be removed). Checks every object first and removes none if one of them is
    /// there but not the channel's ([`bind`]); objects already gone are skipped.
    fn remove(&self, _desc: &Desc, _owner: Option<u32>) -> Result<(), Unbound> {
        Ok(())
    }
    /// A one-line description of the objects, for `shmchan stat`.
    fn describe(&self, desc: &Desc) -> String;
    /// Why this kind cannot be created on the backing `reach` describes, if it cannot.
    fn refuse(&self, _reach: &Reach<'_>) -> Option<String> {
        None
    }
    /// Whether waiters sleep (and so announce themselves).
    fn sleeps(&self) -> bool {
        true
    }
    /// How many descriptors travel with a memfd hand-off.
    fn handoff_fds(&self) -> usize {
        0
    }
    /// Checks and keeps the descriptors of a memfd hand-off (`handoff_fds` of them).
    fn receive(&self, _fds: &mut dyn Iterator<Item = OwnedFd>) -> Result<Option<Handed>, String> {
        Ok(None)
    }
}

/// A doorbell connected to its kernel objects: what waiters and ringers call (the slow path:
/// the ringer reaches it only when `WaitCell::take_tokens` found sleepers).
pub(crate) trait Bell: Send + Sync {
    /// Announces a waiter (endpoint-table entry `slot`) before it re-checks.
    fn announce(&self, at: &Site<'_>, _slot: usize) {
        at.cell.announce();
    }
    /// Posts `n` tokens to the sleepers (`n` from the cell's `take_tokens`). Errors are not
    /// reported: a post that fails (the object was removed, a queue is full) leaves the waiter
    /// to notice at the end of its time slice, where it re-checks.
    fn post(&self, at: &Site<'_>, n: u32);
    /// Sleeps until a token for this waiter arrives or `until` passes.
    fn wait(&self, at: &Site<'_>, slot: usize, until: Instant) -> Slept;
    /// Leaves the announced state without having consumed a token: withdraw the announcement,
    /// or consume the token a ringer already took for this waiter (bounded: an abandoned token
    /// only causes one later spurious wake-up, never a lost one).
    fn settle(&self, at: &Site<'_>, slot: usize) {
        let settle_until = Instant::now() + SETTLE;
        if !at.cell.withdraw() {
            let _ = self.wait(at, slot, settle_until);
        }
    }
    /// The descriptor that waiters of `role` sleep on, where the doorbell has one (POSIX mq,
    /// eventfd): readable while a token for them is posted.
    fn fd(&self, _role: Role) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// Where in the segment a doorbell works for the waiters of one role.
pub(crate) struct Site<'a> {
    pub role: Role,
    /// The wait cell of the role's direction.
    pub cell: &'a ring::WaitCell,
    /// The endpoint table (the targeted doorbell's `asleep` flags).
    pub table: Table<'a>,
    /// The in-segment semaphores (the POSIX semaphore doorbell's objects).
    pub sems: &'a [SemStore; 2],
}

impl Site<'_> {
    /// The direction of this site's role ([`dir`]).
    fn dir(&self) -> usize {
        dir(self.role)
    }
}

/// Direction index of the waiters of `role`: 0 = data (receivers wait), 1 = room (senders
/// wait). Objects that come in pairs are in this order.
fn dir(role: Role) -> usize {
    match role {
        Role::Receiver => 0,
        Role::Sender => 1,
    }
}

/// What a doorbell needs to know of the backing it is used with.
pub(crate) struct Reach<'a> {
    /// The backing, for messages.
    pub backing: &'a dyn std::fmt::Display,
    /// How peers find the backing ("by its path"), for messages.
    pub how: &'static str,
    /// Whether peers get the creator's descriptors (inherited across fork, or sent with a
    /// memfd).
    pub passes_fds: bool,
    /// A received memfd: the doorbell its sender announced and the descriptors that came.
    pub received: Option<(Doorbell, Option<&'a Handed>)>,
    /// Who the kernel says the channel's memory belongs to: the owner its doorbell objects
    /// must have (set by an opener from its mapping; see [`bind`]).
    pub owner: Vouched,
}

/// Why an opener could not connect to a segment's doorbell objects.
enum Unreached {
    /// The kernel refused (the objects are gone, or not ours to use).
    Os(os::Error),
    /// The backing cannot bring what the doorbell needs.
    Refused(OpenError),
    /// An object is there but not the channel's ([`bind`]); it was left alone.
    Unbound(Unbound),
}

impl From<Unbound> for Unreached {
    fn from(u: Unbound) -> Unreached {
        Unreached::Unbound(u)
    }
}

impl From<os::Error> for Unreached {
    fn from(e: os::Error) -> Unreached {
        Unreached::Os(e)
    }
}

/// Connects an opener to the doorbell objects a segment describes; `what` names the backing.
pub(crate) fn open(
    kind: Doorbell,
    desc: &Desc,
    reach: &Reach<'_>,
    what: &str,
) -> Result<Box<dyn Bell>, OpenError> {
    kind.imp().open(desc, reach).map_err(|e| match e {
        Unreached::Refused(e) => e,
        Unreached::Unbound(u) => u.into_error(what),
        Unreached::Os(err) => match err.kind() {
            os::ErrorKind::NotFound | os::ErrorKind::Removed | os::ErrorKind::InvalidInput => {
                OpenError::NotFound {
                    what: format!("{what}: its {kind} doorbell objects ({err})"),
                }
            }
            _ => os_error(err, &format!("{what}: {kind} doorbell")),
        },
    })
}

/// What removal makes of one object's check (a kind's `open`-time check, `checked`): `Some`
/// when it is there and bound (remove it), `None` when it is gone (nothing to protect, nothing
/// to remove), an error when it is there but not the channel's or cannot be checked.
fn removable<T>(
    checked: Result<T, Unreached>,
    object: impl FnOnce() -> String,
) -> Result<Option<T>, Unbound> {
    match checked {
        Ok(t) => Ok(Some(t)),
        Err(Unreached::Os(e))
            if matches!(e.kind(), os::ErrorKind::NotFound | os::ErrorKind::Removed) =>
        {
            Ok(None)
        }
        Err(Unreached::Os(e)) => Err(Unbound {
            object: object(),
            reason: format!("it cannot be checked ({e})"),
        }),
        Err(Unreached::Unbound(u)) => Err(u),
        Err(Unreached::Refused(e)) => Err(Unbound {
            object: object(),
            reason: e.to_string(),
        }),
    }
}

/// Removal for a kind with one named object per direction (POSIX queues, named semaphores):
/// every named object is checked with `bound` first (an empty name names nothing), and only
/// when all pass are the ones still there removed with `unlink`.
fn remove_named<T>(
    desc: &Desc,
    owner: Option<u32>,
    what: impl FnOnce() -> String,
    bound: impl Fn(&Desc, usize, u32) -> Result<T, Unreached>,
    describe_one: impl Fn(&str) -> String,
    unlink: impl Fn(&str),
) -> Result<(), Unbound> {
    let owner = owner.ok_or_else(|| unvouched(what()))?;
    let check = |dir: usize| {
        if desc.names[dir].is_empty() {
            return Ok(None);
        }
        removable(bound(desc, dir, owner), || describe_one(&desc.names[dir]))
    };
    let there = [check(0)?, check(1)?];
    for (name, there) in desc.names.iter().zip(there) {
        if there.is_some() {
            unlink(name);
        }
    }
    Ok(())
}

/// The refusal of a removal that nobody vouches for (`owner` is `None`; see [`bind::Vouched`]).
fn unvouched(object: String) -> Unbound {
    Unbound {
        object,
        reason: "the kernel cannot say whose the channel's memory is, so only the process that \
                 created its doorbell objects removes them"
            .into(),
    }
}

/// The result of one sleep on a doorbell.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slept {
    /// A token was consumed: the announcement is gone; try again.
    Token,
    /// The time ran out (the futex doorbell also returns at the end of a shorter part while
    /// a live peer's wake word holds no TID, for its caller to look at the peers); the waiter
    /// is still announced.
    TimedOut,
    /// A peer's wake word says its process died (futex doorbell): reap now. The waiter is
    /// still announced.
    PeerDied,
    /// The doorbell object was removed under the waiter (SysV `EIDRM`): the channel is gone.
    Removed,
    /// The doorbell's state in the segment is invalid (a process overwrote an in-segment
    /// semaphore): the channel is corrupted. The waiter is still announced.
    Corrupted,
}

/// What a peer needs to reach the doorbell's kernel objects; stored in the segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Desc {
    /// SysV semid or msqid.
    pub id: i32,
    /// POSIX names, per direction.
    pub names: [String; 2],
    /// The channel's identity, built into the objects' keys and names ([`bind`]); 0: none.
    pub identity: u64,
}

/// Kernel objects created for a new channel, not yet handed to its segment. Dropping it
/// removes them (a failed creation leaks nothing); [`Created::keep`] hands them over.
pub(crate) struct Created {
    owner: BellOwner,
    bell: Option<Box<dyn Bell>>,
    euid: u32,
}

impl Created {
    pub(crate) fn new(kind: Doorbell, mode: os::Mode) -> Result<Created, os::Error> {
        let (mut desc, bell) = kind.imp().create(mode)?;
        if desc.identity == 0 {
            // A kind without objects still gives the channel an identity.
            desc.identity = bind::fresh_identity()?.0;
        }
        Ok(Created {
            owner: BellOwner { kind, desc },
            bell: Some(bell),
            euid: os::identity::geteuid(),
        })
    }

    /// The uid the created objects belong to (the creator's effective uid when it made them):
    /// what the creator checks them against before it removes them.
    pub(crate) fn owner_uid(&self) -> u32 {
        self.euid
    }

    pub(crate) fn desc(&self) -> &Desc {
        &self.owner.desc
    }

    /// Prepares what the doorbell keeps inside the new segment (the POSIX semaphores), before
    /// the segment is published.
    pub(crate) fn init_storage(&self, sems: &[SemStore; 2]) -> Result<(), os::Error> {
        self.owner.kind.imp().init_storage(sems)
    }

    /// Hands the objects over: the bell to use, and what removing them takes.
    pub(crate) fn keep(mut self) -> (Box<dyn Bell>, BellOwner) {
        let bell = self.bell.take().expect("kept once");
        (bell, self.owner.clone())
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.bell.take().is_some() {
            let _ = self.owner.remove(Some(self.euid));
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
    /// Removes the kernel objects that are bound to the channel (ignoring "already gone"), or
    /// none of them, saying why, if one is there but not the channel's (`owner`: the uid the
    /// kernel says the channel belongs to; `None` refuses every object; see [`bind`]).
    pub(crate) fn remove(&self, owner: Option<u32>) -> Result<(), Unbound> {
        self.kind.imp().remove(&self.desc, owner)
    }

    /// A one-line description of the objects, for `shmchan stat`.
    pub(crate) fn describe(&self) -> String {
        self.kind.imp().describe(&self.desc)
    }
}

/// How long a leaving waiter waits for a token that a ringer already took for it.
const SETTLE: Duration = Duration::from_millis(100);

/// A failing wait must not turn into a busy loop: sleep out a short pause (bounded by `until`)
/// and report the slice as over; the caller re-checks.
fn pause_until(until: Instant) -> Slept {
    let left = until.saturating_duration_since(Instant::now());
    std::thread::sleep(left.min(Duration::from_millis(5)));
    Slept::TimedOut
}

/// Creates the two named objects of a kind that has one per direction, under the names of a
/// fresh channel identity (`bind::posix_name`; a new identity when a name is taken): the
/// second's failure removes the first (`unlink`). Returns the identity, the names and the
/// objects.
fn both_or_none<O>(
    tag: &str,
    create: impl Fn(&str) -> Result<O, os::Error>,
    unlink: impl Fn(&str),
) -> Result<(u64, [String; 2], [O; 2]), os::Error> {
    bind::with_fresh_identity(|identity, _key| {
        let n0 = bind::posix_name(tag, identity, 0);
        let n1 = bind::posix_name(tag, identity, 1);
        let o0 = create(&n0)?;
        let o1 = match create(&n1) {
            Ok(o) => o,
            Err(e) => {
                unlink(&n0);
                return Err(e);
            }
        };
        Ok((identity, [n0, n1], [o0, o1]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique() {
        for (i, a) in Doorbell::ALL.into_iter().enumerate() {
            for b in &Doorbell::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
                assert_ne!(a.name(), b.name());
            }
            assert_eq!(Doorbell::from_code(a.code()), Some(a));
        }
    }
}
