//! `RawSem`'s own post and waits: glibc's semaphore protocol over glibc's layout, checked
//! against glibc itself (each side wakes the other), under contention (no token lost or
//! invented), and against garbage written into its words (errors, never an abort or a hang).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmchan_os::{ErrorKind, RawSem, SharedMapping};

/// A fresh semaphore at the start of an anonymous shared mapping.
fn sem_in(map: &SharedMapping, value: u32) -> &RawSem {
    // SAFETY: the mapping is page-aligned, larger than a sem_t, outlives the reference, and
    // these bytes are used for nothing else.
    unsafe { RawSem::init_at(map.as_ptr().cast(), value).unwrap() }
}

/// The semaphore's first three words as a process that maps it sees them: `data` (value and
/// waiter count) and `private`.
fn words(map: &SharedMapping) -> (&AtomicU64, &std::sync::atomic::AtomicU32) {
    let base = map.as_ptr();
    // SAFETY: the mapping is page-aligned and at least 16 bytes long, and lives as long as the
    // references; the words are only accessed atomically (RawSem's fields are atomics of the
    // same sizes at the same offsets).
    unsafe {
        (
            base.cast::<AtomicU64>().as_ref(),
            NonNull::new_unchecked(base.as_ptr().add(8))
                .cast::<std::sync::atomic::AtomicU32>()
                .as_ref(),
        )
    }
}

#[test]
fn layout_is_glibcs_new_semaphore() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let _sem = sem_in(&map, 5);
    let (data, private) = words(&map);
    assert_eq!(data.load(Ordering::Relaxed), 5);
    assert_eq!(
        private.load(Ordering::Relaxed),
        libc::FUTEX_PRIVATE_FLAG as u32
    );
    assert_eq!(RawSem::SIZE, std::mem::size_of::<libc::sem_t>());
}

#[test]
fn glibc_sem_post_wakes_our_waiter_and_ours_wakes_glibcs() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let sem = sem_in(&map, 0);
    let ptr = sem.as_ptr() as usize;
    // glibc posts while we sleep.
    let poster = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: the semaphore is initialised and its mapping outlives the thread (joined
        // below); the words are honest, so glibc's checks pass.
        assert_eq!(unsafe { libc::sem_post(ptr as *mut libc::sem_t) }, 0);
    });
    assert!(sem
        .wait_until(Instant::now() + Duration::from_secs(20))
        .unwrap());
    poster.join().unwrap();
    // glibc sleeps while we post.
    let waiter = std::thread::spawn(move || {
        // SAFETY: as above.
        unsafe { libc::sem_wait(ptr as *mut libc::sem_t) }
    });
    // Post once glibc has registered itself as a waiter (the high half counts it).
    let (data, _) = words(&map);
    let deadline = Instant::now() + Duration::from_secs(20);
    while data.load(Ordering::Relaxed) >> 32 == 0 {
        assert!(Instant::now() < deadline, "glibc's waiter never registered");
        std::thread::sleep(Duration::from_millis(1));
    }
    sem.post().unwrap();
    assert_eq!(waiter.join().unwrap(), 0);
    assert_eq!(data.load(Ordering::Relaxed), 0, "value 0, no waiter left");
}

#[test]
fn contended_posts_and_waits_lose_and_invent_no_token() {
    const THREADS: u64 = 4;
    const EACH: u64 = 20_000;
    let map = SharedMapping::anonymous(4096).unwrap();
    let sem = sem_in(&map, 0);
    let addr = map.as_ptr().as_ptr() as usize;
    let taken = Arc::new(AtomicU64::new(0));
    let waiters: Vec<_> = (0..THREADS)
        .map(|_| {
            let taken = Arc::clone(&taken);
            std::thread::spawn(move || {
                // SAFETY: initialised above; the mapping outlives the threads (joined below).
                let sem = unsafe { RawSem::from_ptr(NonNull::new(addr as *mut RawSem).unwrap()) };
                for _ in 0..EACH {
                    assert!(sem
                        .wait_until(Instant::now() + Duration::from_secs(60))
                        .unwrap());
                    taken.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let posters: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(move || {
                // SAFETY: as above.
                let sem = unsafe { RawSem::from_ptr(NonNull::new(addr as *mut RawSem).unwrap()) };
                for _ in 0..EACH {
                    sem.post().unwrap();
                }
            })
        })
        .collect();
    for t in posters.into_iter().chain(waiters) {
        t.join().unwrap();
    }
    assert_eq!(taken.load(Ordering::Relaxed), THREADS * EACH);
    assert_eq!(sem.value().unwrap(), 0);
    assert!(!sem.try_wait().unwrap());
    let (data, _) = words(&map);
    assert_eq!(
        data.load(Ordering::Relaxed) >> 32,
        0,
        "every waiter unregistered"
    );
}

/// Garbage a process that maps the semaphore may write: (data, private).
fn garbage() -> Vec<(u64, u32)> {
    let shared = libc::FUTEX_PRIVATE_FLAG as u32;
    let mut g = vec![
        (u64::MAX, u32::MAX), // all ones
        (0, 0),               // private: a process-private semaphore
        (0, 1),               // private odd: glibc's post turns into FUTEX_WAIT
        (1, 129),             // ... and with a value
        (0, 0x8000_0001),
        (0x7fff_ffff, shared), // value at SEM_VALUE_MAX
        (0x8000_0000, shared), // value over it
        (0xffff_ffff, shared),
        (0xffff_ffff_0000_0000, shared), // waiters count huge, value 0
        (0xffff_ffff_0000_0003, shared), // waiters count huge, a few tokens
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let private = if x & 1 == 0 { shared } else { (x >> 40) as u32 };
        g.push((x, private));
    }
    g
}

#[test]
fn garbage_words_give_errors_never_an_abort_or_a_hang() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let sem = sem_in(&map, 0);
    let (data, private) = words(&map);
    let allowed = |k: ErrorKind| {
        matches!(
            k,
            ErrorKind::Corrupted | ErrorKind::LimitReached | ErrorKind::WouldBlock
        )
    };
    for (d, p) in garbage() {
        data.store(d, Ordering::Relaxed);
        private.store(p, Ordering::Relaxed);
        let what = format!("data {d:#x}, private {p:#x}");
        for r in [
            sem.post().map(|()| true),
            sem.try_wait(),
            sem.wait_until(Instant::now() + Duration::from_millis(2)),
            sem.value().map(|_| true),
        ] {
            if let Err(e) = r {
                assert!(allowed(e.kind()), "{what}: {e}");
            }
        }
        let value = d as u32;
        if p != libc::FUTEX_PRIVATE_FLAG as u32 || value > i32::MAX as u32 {
            let e = sem.post().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupted, "{what}: {e}");
            assert!(e.to_string().contains("corrupted"), "{e}");
        }
    }
    // At SEM_VALUE_MAX a post is EOVERFLOW, as glibc's.
    data.store(i32::MAX as u64, Ordering::Relaxed);
    private.store(libc::FUTEX_PRIVATE_FLAG as u32, Ordering::Relaxed);
    let e = sem.post().unwrap_err();
    assert_eq!(
        (e.errno(), e.kind()),
        (shmchan_os::Errno::EOVERFLOW, ErrorKind::LimitReached)
    );
}

#[test]
fn a_blocked_waiter_survives_garbage_written_while_it_sleeps() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let _sem = sem_in(&map, 0);
    let addr = map.as_ptr().as_ptr() as usize;
    let (data, private) = words(&map);
    for (d, p) in garbage() {
        data.store(0, Ordering::Relaxed);
        private.store(libc::FUTEX_PRIVATE_FLAG as u32, Ordering::Relaxed);
        let started = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&started);
        let waiter = std::thread::spawn(move || {
            // SAFETY: initialised above; the mapping outlives the thread (joined below).
            let sem = unsafe { RawSem::from_ptr(NonNull::new(addr as *mut RawSem).unwrap()) };
            s.store(true, Ordering::Relaxed);
            // A deadline only turns a hang into a failure of the join below.
            sem.wait_until(Instant::now() + Duration::from_millis(300))
        });
        while !started.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(5));
        data.store(d, Ordering::Relaxed);
        private.store(p, Ordering::Relaxed);
        // Wake it as a post would, so that it reads the garbage now.
        // SAFETY: FUTEX_WAKE on the value half of the live mapping; it accesses no memory.
        unsafe { libc::syscall(libc::SYS_futex, addr as *const u32, libc::FUTEX_WAKE, 1) };
        match waiter.join().unwrap() {
            Ok(_) => {}
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::Corrupted | ErrorKind::WouldBlock),
                "data {d:#x}, private {p:#x}: {e}"
            ),
        }
    }
}

#[test]
fn post_and_wake_wakes_a_sleeper_whatever_the_waiter_count_says() {
    let map = SharedMapping::anonymous(4096).unwrap();
    let sem = sem_in(&map, 0);
    let (data, _) = words(&map);
    // A process left the count at −1: the next waiter's registration brings it to 0, and a
    // plain post (glibc's too) would then see nobody to wake.
    data.store(0xffff_ffff_0000_0000, Ordering::Relaxed);
    let addr = map.as_ptr().as_ptr() as usize;
    let waiter = std::thread::spawn(move || {
        // SAFETY: initialised above; the mapping outlives the thread (joined below).
        let sem = unsafe { RawSem::from_ptr(NonNull::new(addr as *mut RawSem).unwrap()) };
        // A deadline only turns a lost wake-up into a failure.
        sem.wait_until(Instant::now() + Duration::from_secs(30))
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while data.load(Ordering::Relaxed) >> 32 != 0 {
        assert!(Instant::now() < deadline, "the waiter never registered");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20)); // let it reach FUTEX_WAIT
    sem.post_and_wake(1).unwrap();
    assert!(waiter.join().unwrap().unwrap(), "woken with the token");
    // Over SEM_VALUE_MAX nothing is posted.
    data.store(i32::MAX as u64 - 1, Ordering::Relaxed);
    let e = sem.post_and_wake(2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitReached);
    assert_eq!(data.load(Ordering::Relaxed), i32::MAX as u64 - 1);
    sem.post_and_wake(1).unwrap();
    assert_eq!(sem.value().unwrap(), i32::MAX as u32);
}
