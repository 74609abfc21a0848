//! The SPSC gate of `Table::register` under loom: one endpoint holds an SPSC role, a second
//! is refused naming it, and the holder of a dead one is reaped (by the newcomer or by another
//! process at the same moment) so that the newcomer gets the role.

use loom::thread;

use super::{model, register, Alive, Mem, P1, P2, P3};
use crate::table::{Refused, Role};

/// Two endpoints race for an SPSC role: exactly one wins, the other is refused naming the
/// winner's pid, and its entry is free again.
///
/// Catches `SYNC(endpoint-live)` at the gate: with the winner's Release CAS of the live mask
/// in `Table::register` weakened to Relaxed (success ordering), the loser can read the
/// winner's entry as still free and report pid 0.
#[test]
fn one_endpoint_wins_the_spsc_gate() {
    model(3, || {
        let mem = Mem::new(2, true);
        let oracle = Alive(&[(11, 100), (12, 200)]);
        let m = mem.clone();
        let a = thread::spawn(move || {
            let t = m.table();
            let oracle = Alive(&[(11, 100), (12, 200)]);
            t.register(Role::Receiver, P1, &oracle, &mut |r| {
                t.reap_dead(r, &oracle)
            })
        });
        let t = mem.table();
        let b = t.register(Role::Receiver, P2, &oracle, &mut |r| {
            t.reap_dead(r, &oracle)
        });
        let a = a.join().unwrap();
        let (winner, slot) = match (a, b) {
            (Ok(s), Err(Refused::Taken { pid })) => {
                assert_eq!(pid, P1.pid, "the loser named the wrong holder");
                (P1, s)
            }
            (Err(Refused::Taken { pid }), Ok(s)) => {
                assert_eq!(pid, P2.pid, "the loser named the wrong holder");
                (P2, s)
            }
            other => panic!("not exactly one winner: {other:?}"),
        };
        let (masks, endpoints) = mem.table().listing();
        assert_eq!(masks[Role::Receiver.index()], 1 << slot);
        assert_eq!(endpoints, [(Role::Receiver, winner.pid, winner.start)]);
        // The loser's entry is free: a third endpoint (of the other role) finds room.
        mem.table()
            .deregister(Role::Receiver, slot, winner.pid, &Alive(&[]), |_| {});
        register(mem.table(), Role::Sender, P3).unwrap();
    });
}

/// The SPSC holder of a role died; a new endpoint registers for the role while another
/// process reaps the dead holder: the registration succeeds, whichever reaper frees the entry.
///
/// Catches the gate's retry: without it (`GATE_RETRIES` 0), the newcomer's own reap passes
/// over the entry the other reaper is freeing (it reads `REAPING`), finds nothing, and the
/// newcomer is refused with the role taken by a process that is dead. Also catches
/// `Table::being_freed` reading the claim word with a plain load instead of an RMW: the load
/// may return the dead holder's pid after the other reaper claimed the entry.
#[test]
fn a_dead_holder_reaped_by_another_process_does_not_refuse_a_newcomer() {
    model(3, || {
        let mem = Mem::new(3, true);
        register(mem.table(), Role::Receiver, P1).unwrap();
        // P1 is dead: only P2 and P3 run.
        let m = mem.clone();
        let other = thread::spawn(move || {
            m.table()
                .reap_dead(Role::Receiver, &Alive(&[(12, 200), (13, 300)]))
        });
        let t = mem.table();
        let oracle = Alive(&[(12, 200), (13, 300)]);
        let r = t.register(Role::Receiver, P2, &oracle, &mut |r| {
            t.reap_dead(r, &oracle)
        });
        other.join().unwrap();
        let slot = r.expect("refused while the holder was being reaped");
        let (masks, endpoints) = mem.table().listing();
        assert_eq!(masks[Role::Receiver.index()], 1 << slot);
        assert_eq!(endpoints, [(Role::Receiver, P2.pid, P2.start)]);
    });
}
