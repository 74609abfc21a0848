//! The POSIX semaphore doorbell: two unnamed `sem_t` (data, room) inside the segment itself,
//! initialised by the creator (`sem_init`, pshared) before the segment is published. Nothing to
//! remove.
//!
//! Every process that maps the segment can write the semaphores' words, so posts and waits go
//! through `shmchan_os::RawSem`'s own implementation of glibc's protocol, which validates them
//! (glibc's `sem_post` would abort the process, or block for ever, on garbage): a post on a
//! corrupted semaphore fails and is dropped (the waiter re-checks at the end of its time
//! slice), and a wait on one reports [`Slept::Corrupted`]. A glibc program posting to the
//! channel's semaphores with `sem_post` still interoperates.

use std::ptr::NonNull;
use std::time::Instant;

use shmchan_os as os;

use super::{pause_until, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unreached};
use crate::sync::AtomicU64;
use crate::table::MAX_ENDPOINTS;

pub(super) const SPEC: Spec = Spec {
    name: "posix-sem",
    code: 4,
    imp: &PosixSem,
};

/// Storage for one `sem_t` in the segment header (32 bytes on Linux/x86_64 and aarch64;
/// asserted below). Only ever accessed through `os::RawSem`, whose every access is atomic.
#[repr(C, align(8))]
pub(crate) struct SemStore([AtomicU64; 4]);

#[cfg(not(loom))]
const _: () = assert!(os::RawSem::SIZE <= core::mem::size_of::<SemStore>());
#[cfg(not(loom))]
const _: () = assert!(os::RawSem::ALIGN <= core::mem::align_of::<SemStore>());

/// The `sem_t` in `store`.
fn sem_ptr(store: &SemStore) -> NonNull<os::RawSem> {
    NonNull::from(store).cast::<os::RawSem>()
}

struct PosixSem;

impl Kind for PosixSem {
    fn create(&self, _mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        Ok((Desc::default(), Box::new(PosixSem)))
    }

    fn init_storage(&self, sems: &[SemStore; 2]) -> Result<(), os::Error> {
        let mut result = Ok(());
        for s in sems {
            // SAFETY: the storage is SemStore-sized and -aligned (asserted to fit a sem_t),
            // inside the mapping, not yet visible to any other process (the segment's `ready`
            // is published after this), and initialised exactly once (the creator calls this
            // once, while it fills the new segment).
            if let Err(err) = unsafe { os::RawSem::init_at(sem_ptr(s), 0) } {
                result = Err(err);
            }
        }
        result
    }

    fn open(&self, _desc: &Desc, _reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        Ok(Box::new(PosixSem))
    }

    fn describe(&self, _desc: &Desc) -> String {
        "two unnamed semaphores in the segment".into()
    }
}

impl PosixSem {
    fn sem<'a>(at: &Site<'a>) -> &'a os::RawSem {
        // SAFETY: `at.sems` borrows the segment's storage, which stays mapped for 'a (the
        // segment owns its mapping), and this bell exists only on a segment created with the
        // POSIX semaphore doorbell, whose creator initialised both semaphores (`init_storage`)
        // before publishing it.
        unsafe { os::RawSem::from_ptr(sem_ptr(&at.sems[at.dir()])) }
    }
}

impl Bell for PosixSem {
    fn post(&self, at: &Site<'_>, n: u32) {
        // The wait cell said `n` sleep: wake them whatever the semaphore's own waiter count
        // (which a peer may have overwritten) says. At most one token per possible waiter: `n`
        // comes from the segment too.
        let _ = PosixSem::sem(at).post_and_wake(n.min(MAX_ENDPOINTS as u32));
    }

    fn wait(&self, at: &Site<'_>, _slot: usize, until: Instant) -> Slept {
        match PosixSem::sem(at).wait_until(until) {
            Ok(true) => Slept::Token,
            Ok(false) => Slept::TimedOut,
            Err(e) if e.kind() == os::ErrorKind::Corrupted => Slept::Corrupted,
            Err(_) => pause_until(until),
        }
    }
}
