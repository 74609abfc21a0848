//! The floors: what two processes can do with no channel at all.
//!
//! - `bare-cache-line`: one word of one cache line of a shared mapping, ping-ponged by busy
//!   polling. No channel can beat it; the busy round trips are judged against it.
//! - `bare-futex`, `bare-sysv-sem`, `bare-posix-sem`, `bare-posix-named-sem`, `bare-sysv-msgq`,
//!   `bare-posix-mq`, `eventfd`: the kernel object behind each sleeping doorbell, used directly, one per
//!   direction (or one message type per direction), through the same `shmchan_os` wrappers the
//!   doorbells use. Measured with both sides asleep before every message, interleaved message
//!   by message with the doorbell built on it (see `shm::latency`).
//! - the pipe is the reference with no doorbell of its own (see `baseline`).
//!
//! A blocking round trip is `post(there)` then `wait(back)`; the echoer does `wait(there)`,
//! its hold, then `post(back)`. The pinger ends the run by raising the page's end flag and
//! posting once more.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shmchan::Doorbell;
use shmchan_os::{
    futex_wait, futex_wake, EfdFlags, EventFd, Key, Mode, MsgFlags, MsgSelect, NamedSem,
    OwnedMsgQueue, OwnedSemSet, PosixMq, RawSem, SemOp, SharedMapping,
};

use super::baseline::anonymous_mq;
use super::proc::run_pair;
use super::sys::{unique_name, Limits};
use super::workload::{LatMode, LatStats, Pinger};
use super::{Cfg, Error};

/// A bare floor measured next to the channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bare {
    /// Busy-polled cache line.
    CacheLine,
    /// A futex on a shared word, used as a counting semaphore (like the futex doorbell).
    Futex,
    /// A SysV semaphore set of two (`semop`).
    SysvSem,
    /// Two unnamed POSIX semaphores in a shared mapping (`sem_wait`/`sem_post`).
    PosixSem,
    /// Two named POSIX semaphores (`sem_open`).
    PosixNamedSem,
    /// One SysV message queue, one message type per direction.
    SysvMsgq,
    /// Two POSIX message queues.
    PosixMq,
    /// Two eventfds (the eventfd doorbell's object; the name predates the doorbell).
    EventFd,
}

impl Bare {
    /// The contender name.
    pub fn name(self) -> &'static str {
        match self {
            Bare::CacheLine => "bare-cache-line",
            Bare::Futex => "bare-futex",
            Bare::SysvSem => "bare-sysv-sem",
            Bare::PosixSem => "bare-posix-sem",
            Bare::PosixNamedSem => "bare-posix-named-sem",
            Bare::SysvMsgq => "bare-sysv-msgq",
            Bare::PosixMq => "bare-posix-mq",
            Bare::EventFd => "eventfd",
        }
    }

    /// One line for `--list`.
    pub fn about(self) -> &'static str {
        match self {
            Bare::CacheLine => {
                "latency floor: one cache line of a shared mapping, ping-ponged by busy polling"
            }
            Bare::Futex => "the futex doorbell's object: FUTEX_WAIT/FUTEX_WAKE on a shared word",
            Bare::SysvSem => "the sysv-sem doorbell's object: semop on a SysV semaphore set",
            Bare::PosixSem => {
                "the posix-sem doorbell's object: sem_wait/sem_post, unnamed, in shared memory"
            }
            Bare::PosixNamedSem => {
                "the posix-named-sem doorbell's object: sem_wait/sem_post on sem_open semaphores"
            }
            Bare::SysvMsgq => {
                "the sysv-msgq doorbell's object: msgsnd/msgrcv, one message type per direction"
            }
            Bare::PosixMq => "the posix-mq doorbell's object: mq_send/mq_receive, two queues",
            Bare::EventFd => "the eventfd doorbell's object: write/read of two eventfd counters",
        }
    }

    /// The latency section this floor belongs to.
    pub fn mode(self) -> LatMode {
        match self {
            Bare::CacheLine => LatMode::Busy,
            _ => LatMode::Blocking,
        }
    }

    /// The bare kernel object a doorbell sleeps on (`None` for the spin doorbell).
    pub fn of(bell: Doorbell) -> Option<Bare> {
        match bell {
            Doorbell::Futex => Some(Bare::Futex),
            Doorbell::SysvSem => Some(Bare::SysvSem),
            Doorbell::PosixSem => Some(Bare::PosixSem),
            Doorbell::PosixNamedSem => Some(Bare::PosixNamedSem),
            Doorbell::SysvMsgQueue => Some(Bare::SysvMsgq),
            Doorbell::PosixMq => Some(Bare::PosixMq),
            Doorbell::EventFd => Some(Bare::EventFd),
            _ => None,
        }
    }
}

/// How long one `FUTEX_WAIT` sleeps at most before the waiter looks again.
const FUTEX_SLICE: Duration = Duration::from_millis(100);

/// Offsets in the shared page: the end flag, the two futex words (the first is also the
/// cache line's word), the two `sem_t`.
const END_AT: usize = 0;
const FUTEX_AT: [usize; 2] = [64, 128];
const SEM_AT: [usize; 2] = [256, 320];
const _: () = assert!(RawSem::SIZE <= 64 && 64 % RawSem::ALIGN == 0);

/// The objects of one bare floor, one per direction (0 = ping, 1 = pong): kernel objects, or
/// the cache line's word. Created by the supervisor before it forks, so both children share
/// them; removed when dropped.
pub struct Objs {
    obj: Obj,
    /// The end flag, the futex words and the unnamed semaphores live here. Declared after
    /// `obj`, so it is unmapped last.
    page: SharedMapping,
}

enum Obj {
    /// One word in a line of its own: odd after a ping, even after a pong.
    CacheLine,
    Futex,
    SysvSem(OwnedSemSet),
    PosixSem,
    Named([NamedSem; 2]),
    SysvMsgq(OwnedMsgQueue),
    PosixMq([PosixMq; 2]),
    EventFd([EventFd; 2]),
}

impl Objs {
    /// Creates the objects of `bare`.
    pub fn new(bare: Bare, lim: &Limits) -> Result<Objs, Error> {
        let page = SharedMapping::anonymous(4096)?;
        let obj = match bare {
            Bare::CacheLine => Obj::CacheLine,
            Bare::Futex => Obj::Futex,
            Bare::SysvSem => Obj::SysvSem(OwnedSemSet::create(Key::PRIVATE, 2, Mode::OWNER_RW)?),
            Bare::PosixSem => {
                for at in SEM_AT {
                    let ptr = NonNull::new(page.as_ptr().as_ptr().wrapping_add(at))
                        .expect("inside a mapping")
                        .cast::<RawSem>();
                    // SAFETY: `ptr` is inside the 4096-byte page, aligned (checked above),
                    // with 64 bytes of room; nobody uses the page yet (no child exists); the
                    // page stays mapped as long as `Objs` (which owns it) lives.
                    unsafe { RawSem::init_at(ptr, 0) }?;
                }
                Obj::PosixSem
            }
            Bare::PosixNamedSem => Obj::Named([anonymous_sem()?, anonymous_sem()?]),
            Bare::SysvMsgq => Obj::SysvMsgq(OwnedMsgQueue::create(Key::PRIVATE, Mode::OWNER_RW)?),
            Bare::PosixMq => Obj::PosixMq([anonymous_mq(8, lim)?, anonymous_mq(8, lim)?]),
            Bare::EventFd => Obj::EventFd([
                EventFd::new(0, EfdFlags::empty())?,
                EventFd::new(0, EfdFlags::empty())?,
            ]),
        };
        Ok(Objs { obj, page })
    }

    fn word(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `at` is a 4-aligned offset inside the zero-initialised page, which lives as
        // long as `self`; the word is only accessed atomically, by every process.
        unsafe {
            &*self
                .page
                .as_ptr()
                .as_ptr()
                .wrapping_add(at)
                .cast::<AtomicU32>()
        }
    }

    fn sem(&self, d: usize) -> &RawSem {
        let ptr = NonNull::new(self.page.as_ptr().as_ptr().wrapping_add(SEM_AT[d]))
            .expect("inside a mapping")
            .cast::<RawSem>();
        // SAFETY: initialised by `new` (for `Obj::PosixSem`, the only caller), in the page
        // that lives as long as `self`.
        unsafe { RawSem::from_ptr(ptr) }
    }

    /// Wakes the waiter of direction `d` (one token).
    fn post(&self, d: usize) -> Result<(), Error> {
        match &self.obj {
            Obj::CacheLine => {
                // The ping makes the word odd, the pong even; each side writes only when the
                // word is the other side's (see `wait`), so a load and a store are enough.
                let w = self.word(FUTEX_AT[0]);
                // SYNC(bare-line): Release pairs with the waiter's Acquire load.
                w.store(w.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
            }
            Obj::Futex => {
                let w = self.word(FUTEX_AT[d]);
                // SYNC(bare-futex): Release pairs with the waiter's Acquire CAS.
                w.fetch_add(1, Ordering::Release);
                futex_wake(w, 1)?;
            }
            Obj::SysvSem(set) => {
                set.op(&[SemOp::post(d as u16)])?;
            }
            Obj::PosixSem => self.sem(d).post()?,
            Obj::Named(s) => s[d].post()?,
            Obj::SysvMsgq(q) => {
                q.send(1 + d as i64, &[0u8; 8], MsgFlags::empty())?;
            }
            Obj::PosixMq(q) => q[d].send(&[0u8; 8], 0)?,
            Obj::EventFd(e) => e[d].write(1)?,
        }
        Ok(())
    }

    /// Sleeps until direction `d` is posted, and takes the token.
    fn wait(&self, d: usize) -> Result<(), Error> {
        match &self.obj {
            Obj::CacheLine => {
                // Direction 0 (a ping) leaves the word odd, direction 1 (a pong) even.
                let w = self.word(FUTEX_AT[0]);
                // SYNC(bare-line): Acquire pairs with the poster's Release store.
                while w.load(Ordering::Acquire) % 2 != 1 - d as u32 {
                    std::hint::spin_loop();
                }
            }
            Obj::Futex => {
                let w = self.word(FUTEX_AT[d]);
                loop {
                    // SYNC(bare-futex): Acquire pairs with the poster's Release add.
                    let p = w.load(Ordering::Acquire);
                    if p > 0 {
                        if w.compare_exchange_weak(p, p - 1, Ordering::Acquire, Ordering::Relaxed)
                            .is_ok()
                        {
                            return Ok(());
                        }
                        continue;
                    }
                    futex_wait(w, 0, Some(FUTEX_SLICE))?;
                }
            }
            Obj::SysvSem(set) => {
                set.op(&[SemOp::wait(d as u16)])?;
            }
            Obj::PosixSem => self.sem(d).wait()?,
            Obj::Named(s) => s[d].wait()?,
            Obj::SysvMsgq(q) => {
                let mut buf = [0u8; 8];
                q.recv(&mut buf, MsgSelect::Type(1 + d as i64), MsgFlags::empty())?;
            }
            Obj::PosixMq(q) => {
                let mut buf = [0u8; 8];
                q[d].recv(&mut buf)?;
            }
            Obj::EventFd(e) => {
                e[d].read()?;
            }
        }
        Ok(())
    }

    /// The pinger's round trip: ping, then sleep until the pong.
    pub fn round_trip(&self) -> Result<(), Error> {
        self.post(0)?;
        self.wait(1)
    }

    /// The pinger's last message: the echoer returns `false` from [`Objs::echo`].
    pub fn end(&self) -> Result<(), Error> {
        // SYNC(bare-end): SeqCst store before the post; the echoer loads it after its wait
        // returns (the post/wait pair orders them: a futex Release/Acquire or a system call).
        self.word(END_AT).store(1, Ordering::SeqCst);
        self.post(0)
    }

    /// The echoer's turn: sleep until a ping, hold (in blocking mode), answer. `false` at the
    /// end of the run.
    pub fn echo(&self, mode: LatMode) -> Result<bool, Error> {
        self.wait(0)?;
        if self.word(END_AT).load(Ordering::SeqCst) != 0 {
            return Ok(false);
        }
        mode.hold();
        self.post(1)?;
        Ok(true)
    }
}

/// A named POSIX semaphore created and at once unlinked: the handle works on (and across
/// `fork`) without the name, so there is nothing to leak.
fn anonymous_sem() -> Result<NamedSem, Error> {
    let name = format!("/{}", unique_name("sem"));
    let sem = NamedSem::create(&name, 0, Mode::OWNER_RW)?;
    NamedSem::unlink(&name)?;
    Ok(sem)
}

/// Measures a floor's 8-byte round trip on its own (a bare kernel object whose doorbell is not
/// measured in this run, the eventfd reference, or the cache line).
pub fn latency(bare: Bare, cfg: &Cfg) -> Result<LatStats, Error> {
    let names = ["pinger", "echoer"];
    let mode = bare.mode();
    let len = cfg.lat_len(mode);
    let objs = Objs::new(bare, &cfg.limits)?;
    let [report, _] = run_pair(
        names,
        cfg.cpus,
        cfg.timeout(len),
        |ctl| {
            ctl.start_line()?;
            let mut p = Pinger::new(mode, cfg.warmup, len, 1)?;
            p.run(|_| objs.round_trip())?;
            objs.end()?;
            Ok(p.report())
        },
        |ctl| {
            ctl.start_line()?;
            while objs.echo(mode)? {}
            Ok("done".to_owned())
        },
    )?;
    LatStats::parse(&report)
}
