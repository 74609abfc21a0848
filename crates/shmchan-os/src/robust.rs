//! A robust-futex keeper: a thread whose robust list (`set_robust_list(2)`) names words in
//! shared memory, so that the kernel marks them `FUTEX_OWNER_DIED` and wakes their waiters
//! when this process dies, however it dies and whatever its PID namespace.
//!
//! At a thread's exit (the process's death, `exec`), the kernel walks that thread's list: for
//! each entry it reads the 32-bit word at `entry + futex_offset`, and if its low 30 bits
//! ([`TID_MASK`]) are the thread's TID it sets [`OWNER_DIED`] (keeping [`WAITERS`]) and, if
//! [`WAITERS`] was set, wakes one waiter of the word (a shared `FUTEX_WAKE`).
//!
//! - **One thread that never exits while anything is linked**: the list belongs to a thread,
//!   and a thread that exits while its process lives must never look like a death. A
//!   [`Keeper`] spawns its own thread, which registers its list and parks until the keeper is
//!   dropped. It never locks a glibc robust mutex, so replacing glibc's registration for this
//!   one thread loses nothing (it puts glibc's back before it exits).
//! - **The entries live in this process's private memory**, never in the shared words'
//!   mapping: the kernel follows their `next` pointers at death, and pointers a peer could
//!   write would let it make the kernel set bits anywhere in the dying process. The list has
//!   one `futex_offset` for all entries, so the private entries repeat with the words' stride:
//!   entry `i` is at `buf + stride·i` and its word at `words + stride·i`.
//! - Linking and unlinking go through `list_op_pending` (a death in the middle still handles
//!   the entry once) under a mutex (threads of one process). A linked word gets the keeper's
//!   TID under the same mutex: from [`Keeper::link`] once the thread runs, from the thread
//!   itself for the words linked before (spawning waits for the new thread only briefly).
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use shmchan_os::robust::Keeper;
//!
//! #[repr(C, align(64))]
//! struct Line(AtomicU32);
//! let words: Vec<Line> = (0..4).map(|_| Line(AtomicU32::new(0))).collect();
//! // SAFETY: four 64-byte lines that outlive the keeper (dropped first, below).
//! if let Some(keeper) = unsafe { Keeper::spawn(&words[0].0, 64, 4) } {
//!     assert!(keeper.link(2));
//!     // The keeper's TID reaches the word once its thread has run: what the kernel checks.
//!     while keeper.tid() == 0 {
//!         std::thread::yield_now();
//!     }
//!     assert_eq!(words[2].0.load(Ordering::Relaxed), keeper.tid());
//!     assert!(keeper.unlink(2)); // the list is empty again
//!     drop(keeper);
//! }
//! ```

use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The bits of a robust word that hold the owner's TID.
pub const TID_MASK: u32 = 0x3fff_ffff;
/// Set by the kernel when the owner died.
pub const OWNER_DIED: u32 = 0x4000_0000;
/// Set by a waiter: the kernel wakes the word at the owner's death only when it is set.
pub const WAITERS: u32 = 0x8000_0000;

/// The kernel's `struct robust_list_head`.
#[repr(C)]
struct Head {
    /// `list.next`: the first entry, or the head itself when the list is empty.
    next: AtomicUsize,
    futex_offset: AtomicIsize,
    list_op_pending: AtomicUsize,
}

struct Inner {
    head: Head,
    /// The private entries (one `next` pointer every `stride` bytes).
    buf: Box<[AtomicUsize]>,
    /// Word 0's address; word `i` is `stride·i` bytes further.
    words: usize,
    stride: usize,
    count: usize,
    /// Which entries are linked (bit i: entry i), and the keeper's TID once its list is
    /// registered (0 before): the list's mutex.
    state: Mutex<State>,
    stop: AtomicBool,
}

struct State {
    linked: u128,
    tid: u32,
}

impl Inner {
    fn head_addr(&self) -> usize {
        &self.head.next as *const AtomicUsize as usize
    }

    fn entry(&self, i: usize) -> &AtomicUsize {
        &self.buf[i * self.stride / size_of::<usize>()]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `tid` in word `i`, which is linked (the caller holds the lock).
    fn mark(&self, i: usize, tid: u32) {
        let word = (self.words + i * self.stride) as *const AtomicU32;
        // SAFETY: word `i` is linked, so it is mapped (the contract of `Keeper::spawn`) and,
        // as an `AtomicU32` the caller handed over, aligned; it is written atomically only.
        unsafe { (*word).store(tid, Ordering::Relaxed) };
    }
}

/// A keeper thread and its robust list (see the module docs). Dropping it empties the list
/// and lets the thread exit.
pub struct Keeper {
    inner: Arc<Inner>,
    thread: std::thread::Thread,
    /// The process that spawned the thread (a forked child has no such thread).
    pid: u32,
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keeper(tid {})", self.tid())
    }
}

impl Keeper {
    /// Spawns a keeper for `count` (at most 128) words, the first at `word0`, the others
    /// `stride` bytes apart (a multiple of 8). `None` when the thread cannot be spawned or the
    /// kernel has no robust lists: the caller does without.
    ///
    /// # Safety
    ///
    /// The words must stay mapped while any of them is linked (the kernel writes to a linked
    /// word at this process's death if it holds the keeper's TID).
    pub unsafe fn spawn(word0: &AtomicU32, stride: usize, count: usize) -> Option<Keeper> {
        if count == 0 || count > 128 || stride == 0 || stride % size_of::<usize>() != 0 {
            return None;
        }
        let buf: Box<[AtomicUsize]> = (0..count * stride / size_of::<usize>())
            .map(|_| AtomicUsize::new(0))
            .collect();
        let inner = Arc::new(Inner {
            head: Head {
                next: AtomicUsize::new(0),
                futex_offset: AtomicIsize::new(0),
                list_op_pending: AtomicUsize::new(0),
            },
            buf,
            words: word0.as_ptr() as usize,
            stride,
            count,
            state: Mutex::new(State { linked: 0, tid: 0 }),
            stop: AtomicBool::new(false),
        });
        let head = inner.head_addr();
        inner.head.next.store(head, Ordering::Relaxed);
        let offset = inner.words.wrapping_sub(inner.entry(0).as_ptr() as usize);
        inner
            .head
            .futex_offset
            .store(offset as isize, Ordering::Relaxed);
        let theirs = Arc::clone(&inner);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("shmchan-keeper".into())
            .stack_size(64 * 1024)
            .spawn(move || keep(theirs, tx))
            .ok()?;
        let thread = handle.thread().clone();
        // Detached: it exits on its own once told to.
        drop(handle);
        // Waited for, but not long: a process killed before its keeper registered its list
        // has nothing for the kernel to mark. A busy machine may take milliseconds to run the
        // new thread; then the caller goes on, and the thread stores its TID in the words
        // linked by then when it runs.
        let _ = rx.recv_timeout(READY_WAIT);
        Some(Keeper {
            inner,
            thread,
            pid: std::process::id(),
        })
    }

    /// The keeper thread's TID (in this process's PID namespace), what a linked word holds
    /// for the kernel to mark it; 0 until the thread has registered its list.
    pub fn tid(&self) -> u32 {
        self.inner.lock().tid
    }

    /// Whether the keeper's thread runs in this process (not a copy inherited by `fork`).
    pub fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Links word `i` and stores the keeper's TID in it (now, or when the thread has
    /// registered its list). `false` for an index out of range or in a forked child (whose
    /// copy has no thread).
    pub fn link(&self, i: usize) -> bool {
        if i >= self.inner.count || !self.is_ours() {
            return false;
        }
        let inner = &*self.inner;
        let mut st = inner.lock();
        if st.linked & 1 << i == 0 {
            let e = inner.entry(i);
            let addr = e.as_ptr() as usize;
            // A death from here on handles the entry through `list_op_pending` if the head
            // does not reach it yet; every store leaves a list the kernel can walk.
            inner.head.list_op_pending.store(addr, Ordering::SeqCst);
            e.store(inner.head.next.load(Ordering::Relaxed), Ordering::SeqCst);
            inner.head.next.store(addr, Ordering::SeqCst);
            inner.head.list_op_pending.store(0, Ordering::SeqCst);
            st.linked |= 1 << i;
            if st.tid != 0 {
                inner.mark(i, st.tid);
            }
        }
        true
    }

    /// Unlinks word `i` (nothing if it is not linked); returns whether the list is empty.
    pub fn unlink(&self, i: usize) -> bool {
        if !self.is_ours() {
            return false;
        }
        let inner = &*self.inner;
        let mut st = inner.lock();
        if i < inner.count && st.linked & 1 << i != 0 {
            let target = inner.entry(i).as_ptr() as usize;
            // The predecessor: the head, or an entry (all ours, at most `count` steps).
            let mut prev = &inner.head.next;
            for _ in 0..=inner.count {
                let next = prev.load(Ordering::Relaxed);
                if next == target {
                    inner.head.list_op_pending.store(target, Ordering::SeqCst);
                    prev.store(inner.entry(i).load(Ordering::Relaxed), Ordering::SeqCst);
                    inner.head.list_op_pending.store(0, Ordering::SeqCst);
                    break;
                }
                if next == inner.head_addr() {
                    break;
                }
                let j = (next - inner.entry(0).as_ptr() as usize) / inner.stride;
                prev = inner.entry(j);
            }
            st.linked &= !(1 << i);
        }
        st.linked == 0
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if !self.is_ours() {
            return;
        }
        let inner = &*self.inner;
        {
            let mut st = inner.lock();
            // Nothing linked past this point: the words may be unmapped right after.
            inner.head.next.store(inner.head_addr(), Ordering::SeqCst);
            st.linked = 0;
        }
        // SYNC(keeper-stop): Release: the emptied list (above) is what the thread sees once
        // it sees `stop` (Acquire in `keep`), before it exits and the kernel walks the list.
        inner.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// How long [`Keeper::spawn`] waits for the new thread to register its list.
const READY_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

/// The keeper thread: registers the list, stores its TID in the words linked so far, parks
/// until told to stop, then gives the thread back its previous (glibc's) registration and
/// exits.
fn keep(inner: Arc<Inner>, ready: std::sync::mpsc::SyncSender<()>) {
    let mut old: *mut libc::c_void = std::ptr::null_mut();
    let mut old_len: libc::size_t = 0;
    // SAFETY: pid 0 is this thread; both out-pointers are valid to write.
    let got = unsafe { libc::syscall(libc::SYS_get_robust_list, 0, &mut old, &mut old_len) };
    // SAFETY: `inner.head` is a `struct robust_list_head` that outlives this registration:
    // this thread holds `inner` until it has put the old head back, below. The entries it
    // reaches are in `inner.buf`, this process's private memory.
    let set = unsafe {
        libc::syscall(
            libc::SYS_set_robust_list,
            &inner.head as *const Head,
            size_of::<Head>(),
        )
    };
    if set == 0 {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32 & TID_MASK;
        let mut st = inner.lock();
        st.tid = tid;
        for i in (0..inner.count).filter(|&i| st.linked & 1 << i != 0) {
            inner.mark(i, tid);
        }
    }
    let _ = ready.send(());
    // Without a list (no robust lists here) the words stay 0: nothing marks them at death.
    // SYNC(keeper-stop): Acquire pairs with the Release store in `Keeper::drop`.
    while !inner.stop.load(Ordering::Acquire) {
        std::thread::park();
    }
    if set != 0 {
        return;
    }
    // The list is empty (the keeper emptied it before `stop`). Put glibc's head back (or
    // none) before `inner` goes: the kernel reads the registered head at this thread's exit.
    let (head, len) = if got == 0 {
        (old, old_len)
    } else {
        (std::ptr::null_mut(), size_of::<Head>())
    };
    // SAFETY: `head` is glibc's own registration of this thread (its TCB, alive until the
    // thread is gone) or null, which the kernel skips at exit.
    unsafe { libc::syscall(libc::SYS_set_robust_list, head, len) };
    drop(inner);
}
