//! The sleep/ring protocol: how a side that must wait announces itself, and how the other side
//! decides whether the doorbell must ring. **This is the single source of truth for every
//! doorbell** (futex, SysV semaphore, POSIX semaphore, message queues): the doorbell layer only
//! sleeps and posts; the protocol lives, and is proven in loom, here.
//!
//! # The doorbell is a counting semaphore of tokens
//!
//! Each direction has a [`WaitCell`] in the ring's cursor lines: [`data_cell`] for consumers
//! waiting for records, [`room_cell`] for producers waiting for free slots. `sleepers` counts
//! announced waiters whose token has not been taken yet. A ringer takes all of them at once and
//! posts that many tokens to the doorbell; every announced waiter ends by consuming exactly one
//! token or by withdrawing its own count. So the doorbell's value never exceeds the number of
//! waiters (a SysV semaphore never nears its 32767 cap), and a ring with nobody asleep costs the
//! publisher one fence and one load: no read-modify-write, no system call.
//!
//! # Waiter (e.g. a consumer finding the ring empty)
//!
//! ```text
//! loop {
//!     if try_pop() succeeds { return it }           // fast path, optionally after a bounded spin
//!     cell.announce();                              // sleepers += 1; fence(SeqCst)
//!     if try_pop() succeeds {                       // the re-check after the announcement
//!         if !cell.withdraw() {                     // a ringer already took our token:
//!             doorbell.wait_token(no_deadline_needed) // it is posted or about to be; consume it
//!         }
//!         return it
//!     }
//!     match doorbell.wait_token(deadline) {         // sleep; the token is consumed on wake
//!         Woken => continue,                        // the announcement is gone; try again
//!         TimedOut => {
//!             if !cell.withdraw() { doorbell.wait_token(short bound) } // see below
//!             return Timeout
//!         }
//!     }
//! }
//! ```
//!
//! On timeout, a failed `withdraw` means a ringer took our count and a token is posted or about
//! to be: consume it with a short bounded wait. Abandoning it after that bound only leaves one
//! extra token, which causes one later spurious wake-up, never a lost one.
//!
//! Tokens are fungible: if waiter A withdraws the count that waiter B announced, B consumes the
//! token posted for A. Every announced waiter still wakes and re-checks.
//!
//! # Ringer (after publishing records, or after releasing slots)
//!
//! ```text
//! publish (Release store of the cursor or stamps)   // try_push / commit / pop / release ...
//! let n = cell.take_tokens();                       // fence(SeqCst); if sleepers == 0 { 0 }
//!                                                   // else { sleepers.swap(0) }
//! if n > 0 { doorbell.post(n) }
//! ```
//!
//! Call the handle helpers once per operation or batch: producers call
//! `wake_consumers()` after every push, batch push, grant commit **and grant drop** (an MPMC
//! grant dropped uncommitted publishes skipped slots that consumers must pass over); consumers
//! call `wake_producers()` after every pop, batch pop, grant release or drop, **and after an MPMC
//! pop that returned `Empty`** (passing over skipped slots frees room even then).
//!
//! # Why it cannot lose a wake-up (Dekker)
//!
//! Publisher: publish (atomic store) → `fence(SeqCst)` → load `sleepers`.
//! Waiter: `sleepers += 1` (atomic RMW) → `fence(SeqCst)` → re-check (atomic load of the cursor
//! or stamp). The two fences are totally ordered. If the waiter's fence comes first, the
//! publisher's load of `sleepers` sees the announcement (or a later value) and rings; if the
//! publisher's fence comes first, the waiter's re-check sees the record (or room). Either the
//! waiter sees the record or the publisher sees the waiter. The fences are explicit (not SeqCst
//! RMWs) because that is the C++20 rule the argument uses, and the one loom models.
//!
//! # The futex doorbell's word
//!
//! [`WaitCell::permits`] is the word of a futex-based counting semaphore that the doorbell layer
//! may use: post `n` = `permits.fetch_add(n)` then futex-wake `n`; wait = CAS-decrement when
//! `permits > 0`, else futex-wait while it is 0. The ring never touches it.
//!
//! [`data_cell`]: crate::RawRing::data_cell
//! [`room_cell`]: crate::RawRing::room_cell

use crate::sync::{fence, AtomicU32, Ordering};

/// Bound on the CAS loop in [`WaitCell::withdraw`]: each failure means another party changed
/// `sleepers`, so this is only reached under a peer that hammers the word.
const WITHDRAW_RETRIES: u32 = 1 << 16;

/// One direction's waiting word pair, on a 128-byte line of its own (see the module docs).
#[repr(C, align(128))]
#[derive(Debug)]
pub struct WaitCell {
    sleepers: AtomicU32,
    permits: AtomicU32,
}

impl WaitCell {
    /// Initialises both words to 0 in place.
    ///
    /// # Safety
    /// `p` is valid for writes of a `WaitCell`, aligned, and (real builds) initialised memory.
    pub(crate) unsafe fn init(p: *mut WaitCell) {
        // SAFETY: the caller guarantees `p` is valid and aligned, so are its fields.
        unsafe {
            crate::sync::init_u32(core::ptr::addr_of_mut!((*p).sleepers), 0);
            crate::sync::init_u32(core::ptr::addr_of_mut!((*p).permits), 0);
        }
    }

    /// Waiter: announces one more sleeper, then a SeqCst fence, so that the caller's re-check
    /// of the ring cannot be ordered before the announcement (see the module docs).
    #[inline]
    pub fn announce(&self) {
        // Relaxed: ordering comes from the fence right after (fence-fence Dekker rule).
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        // SeqCst fence: orders the announcement before the re-check against the ringer's
        // publish → fence → load of `sleepers` (the Dekker pair of `take_tokens`).
        fence(Ordering::SeqCst);
    }

    /// Waiter: takes back one announcement after a successful re-check (or a timeout).
    ///
    /// Returns `true` if a count was withdrawn. `false` means a ringer already took this waiter's
    /// count: a token has been (or is about to be) posted, and the caller must consume one.
    #[inline]
    pub fn withdraw(&self) -> bool {
        let mut cur = self.sleepers.load(Ordering::Relaxed);
        for _ in 0..WITHDRAW_RETRIES {
            if cur == 0 {
                return false;
            }
            // Relaxed: the count carries no data; the token it stands for is consumed from the
            // doorbell, which synchronises on its own.
            match self
                .sleepers
                .compare_exchange(cur, cur - 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
        false
    }

    /// Ringer: after publishing (records or room), returns how many tokens to post.
    ///
    /// The hot path is a fence and one load: with nobody asleep it returns 0 without a
    /// read-modify-write. Otherwise it takes every announced sleeper's count at once.
    ///
    /// A hostile peer can make the count any `u32`: a doorbell clamps what it posts to its own
    /// maximum (a SysV semaphore caps at 32767), which only costs spurious wake-ups.
    #[inline]
    pub fn take_tokens(&self) -> u32 {
        // SeqCst fence: orders the caller's publish before the load of `sleepers` (the Dekker
        // pair of `announce`).
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        // Relaxed: an RMW always reads the latest count; the fences order it against the
        // publish, and the doorbell synchronises ringer and waiter on its own.
        self.sleepers.swap(0, Ordering::Relaxed)
    }

    /// Ringer, asymmetric form: [`take_tokens`](Self::take_tokens) with a compiler fence in
    /// place of the hardware one, so that a publish with nobody asleep costs one load and no
    /// fence at all.
    ///
    /// Sound only when every waiter on this cell issues a heavy barrier after
    /// [`announce`](Self::announce) and before its re-check — one that makes the CPU running
    /// this ringer execute a full fence (`membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, with
    /// the ringer's process registered for it). The Dekker argument of the module docs then
    /// holds with the ringer's fence supplied by the barrier: if the barrier's fence on the
    /// ringer's CPU comes after the ringer's publish, the waiter's re-check sees the publish;
    /// if it comes before the ringer's load of `sleepers`, that load sees the announcement.
    /// A waiter that cannot issue the barrier must not sleep unboundedly on this cell.
    #[inline]
    pub fn take_tokens_unfenced(&self) -> u32 {
        // The publisher's half of the asymmetric fence (see above and `sync::light_fence`).
        crate::sync::light_fence();
        if self.sleepers.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        // Relaxed: as in `take_tokens`.
        self.sleepers.swap(0, Ordering::Relaxed)
    }

    /// Ringer, for a wake decided later (a low-water mark): after publishing, whether anybody
    /// sleeps, without taking their count — the fast path of [`take_tokens`](Self::take_tokens)
    /// (a fence and one load).
    #[inline]
    pub fn has_sleepers(&self) -> bool {
        // SeqCst fence: as in `take_tokens` (the Dekker pair of `announce`).
        fence(Ordering::SeqCst);
        self.sleepers.load(Ordering::Relaxed) != 0
    }

    /// [`has_sleepers`](Self::has_sleepers) with the publisher's half of the asymmetric fence,
    /// under the contract of [`take_tokens_unfenced`](Self::take_tokens_unfenced).
    #[inline]
    pub fn has_sleepers_unfenced(&self) -> bool {
        // The publisher's half of the asymmetric fence (see `take_tokens_unfenced`).
        crate::sync::light_fence();
        self.sleepers.load(Ordering::Relaxed) != 0
    }

    /// The number of announced sleepers not yet taken (diagnostics only; Relaxed).
    #[inline]
    pub fn sleepers(&self) -> u32 {
        self.sleepers.load(Ordering::Relaxed)
    }

    /// The futex doorbell's counting-semaphore word (see the module docs). The ring never
    /// touches it.
    #[inline]
    pub fn permits(&self) -> &AtomicU32 {
        &self.permits
    }
}
