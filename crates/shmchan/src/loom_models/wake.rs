//! The wake word (`crate::table::wake`) under loom: register (the wake word holds the
//! keeper's TID, the token is held), wait (`WAITERS` set, then a futex wait), die (the kernel
//! marks the word `OWNER_DIED` and wakes it in `exit_mm`, and only later drops the token in
//! `exit_files` / `exit_sem`), notice, reap (by the token alone).
//!
//! The kernel is a loom thread: its robust-list step (the CAS of the word to `OWNER_DIED`,
//! `WAITERS` kept, and a wake if `WAITERS` was set), then the token's drop. The futex is a
//! mutex-guarded queue (the kernel's hash bucket: a waiter compares the word and queues under
//! its lock; a waker takes it to wake).
//!
//! Each step the protocol needs has a variant that leaves it out, and each of those must fail
//! (`should_panic`): a waiter that does not set `WAITERS` sleeps for ever (loom reports the
//! deadlock), a waiter that tries to reap once when woken finds the token still held, and a
//! waiter that takes the word for a verdict reports a death before the kernel dropped the
//! token.

use loom::sync::atomic::Ordering;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use shmchan_os::robust::{OWNER_DIED, TID_MASK, WAITERS};

use super::{holder, model, register, Liveness, Mem, Tokens, P1, P2};
use crate::sync::AtomicU32;
use crate::table::wake::Watched;
use crate::table::Role;

/// The dying sender's keeper TID.
const TID: u32 = 4242;

/// One futex word's wait queue.
struct Futex {
    wakes: Mutex<u64>,
    cv: Condvar,
}

impl Futex {
    fn new() -> Arc<Futex> {
        Arc::new(Futex {
            wakes: Mutex::new(0),
            cv: Condvar::new(),
        })
    }

    /// `FUTEX_WAIT`: under the bucket lock, sleeps while `word` holds `expected`, until woken.
    fn wait(&self, word: &AtomicU32, expected: u32) {
        let mut g = self.wakes.lock().unwrap();
        if word.load(Ordering::Relaxed) != expected {
            return;
        }
        let seen = *g;
        while *g == seen {
            g = self.cv.wait(g).unwrap();
        }
    }

    fn wake(&self) {
        *self.wakes.lock().unwrap() += 1;
        self.cv.notify_all();
    }
}

/// Which step the waiter leaves out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Weak {
    Nothing,
    /// Waits on the value it read, without setting `WAITERS` in the word.
    NoWaitersBit,
    /// Tries to reap once when it sees `OWNER_DIED`, instead of until the token is down.
    NoTokenPoll,
    /// Takes `OWNER_DIED` for a death.
    TrustWord,
}

/// The kernel at the sender's death: the robust list in `exit_mm`, then the token.
fn kernel_exit(word: &AtomicU32, futex: &Futex, tokens: &Tokens) {
    loop {
        let w = word.load(Ordering::Relaxed);
        if w & TID_MASK != TID {
            break;
        }
        let marked = (w & WAITERS) | OWNER_DIED;
        if word
            .compare_exchange(w, marked, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            if w & WAITERS != 0 {
                futex.wake();
            }
            break;
        }
    }
    tokens.die(P1.pid);
}

fn run(weak: Weak) {
    model(3, move || {
        let mem = Mem::new(2, true);
        let tokens = Tokens::new(2);
        let t = mem.table();
        let tx = t
            .register(Role::Sender, P1, &holder(&tokens, P1.pid), &mut |_| 0)
            .unwrap();
        let rx = register(t, Role::Receiver, P2).unwrap();
        t.set_wake(tx, TID);
        let futex = Futex::new();
        let kernel = {
            let (m, f, k) = (mem.clone(), futex.clone(), tokens.clone());
            thread::spawn(move || kernel_exit(m.table().wake_word(tx), &f, &k))
        };
        // The receiver's wait (the futex doorbell's `take_watching`, then `reap_death`).
        let reaped = loop {
            let (mut wait, mut died) = (None, false);
            if weak == Weak::NoWaitersBit {
                let w = t.wake_word(tx).load(Ordering::Relaxed);
                died = w & OWNER_DIED != 0;
                wait = Some((t.wake_word(tx), w));
            } else {
                let mut told = false;
                t.watch(Role::Receiver, rx, |w| {
                    told = true;
                    match w {
                        Watched::Wait(word, v) => wait = Some((word, v)),
                        Watched::Died { .. } => died = true,
                        Watched::Unlinked => {}
                    }
                });
                // A live sender's word left out (not waited on, not dead, not unlinked):
                // the real waiter would sleep on its other words until its time slice ended.
                assert!(told, "the live sender's wake word was skipped");
            }
            if died {
                if weak == Weak::TrustWord {
                    break 1;
                }
                let judge = holder(&tokens, P2.pid);
                break loop {
                    let n = t.reap_dead(Role::Sender, &judge);
                    if n > 0 || weak == Weak::NoTokenPoll || !t.death_marked(Role::Receiver, rx) {
                        break n;
                    }
                    thread::yield_now();
                };
            }
            match wait {
                Some((word, v)) => futex.wait(word, v),
                None => thread::yield_now(),
            }
        };
        assert_eq!(reaped, 1, "the dead sender was reaped by its woken peer");
        // The token only goes down: held now means held when the death was reported.
        assert_eq!(
            holder(&tokens, P2.pid).held(tx),
            Some(false),
            "a death reported before the kernel dropped the token"
        );
        // (A waiter that trusts the word reaps nothing: only its verdict is checked.)
        assert!(weak == Weak::TrustWord || t.gone(Role::Sender));
        kernel.join().unwrap();
    });
}

#[test]
fn a_death_wakes_its_waiter_at_once() {
    run(Weak::Nothing);
}

#[test]
#[should_panic]
fn without_the_waiters_bit_the_death_is_missed() {
    run(Weak::NoWaitersBit);
}

#[test]
#[should_panic(expected = "reaped by its woken peer")]
fn the_token_lags_the_wake_word() {
    run(Weak::NoTokenPoll);
}

#[test]
#[should_panic(expected = "before the kernel dropped the token")]
fn the_wake_word_is_no_verdict() {
    run(Weak::TrustWord);
}
