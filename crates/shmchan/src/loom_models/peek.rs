//! A blocking MPMC peek under loom: its wait looks at the head slot's stamp (not at the
//! senders' cursor, see `RecvCore`'s `Retried::wait`), and a sender's publish still wakes it.

use std::sync::Arc;

use loom::thread;
use shmchan_ring as ring;

use super::{model, rec, Heap, Sem};

/// The receiver's blocking peek of one record, as the endpoint runs it: try to claim; announce
/// in the data cell; re-check with `MpmcConsumer::head_ready`; sleep until a token. Returns
/// the record.
fn blocking_peek(c: &mut ring::MpmcConsumer, data: &Sem) -> u64 {
    loop {
        if let Ok(g) = c.try_peek(1) {
            // SAFETY: a claimed slot holds 8 published bytes, ours to read until release.
            let v = unsafe { g.slot(0).cast::<u64>().as_ptr().read_unaligned() };
            g.release();
            return v;
        }
        c.data_cell().announce();
        if c.head_ready() {
            // `Segment::settle`: leave without a token, or take the one already owed.
            if !c.data_cell().withdraw() {
                data.wait();
            }
            continue;
        }
        data.wait();
    }
}

/// Two records published by a sender (the unfenced form every registered process uses: loom
/// sees its compiler fence as the `SeqCst` fence the waiter's global barrier runs on the
/// publisher's CPU, see `crate::barrier`), peeked by a receiver that sleeps when the head slot
/// is not published: it gets both, in order, and no token is left over.
///
/// Catches a wait that looks before it announces itself (the sender's look at the waiters
/// then misses it while its look misses the stamp: loom reports the receiver asleep forever),
/// and a stamp store in `publish_slot` weakened below Release (the record read through the
/// peek is then not the one published).
#[test]
fn a_publish_wakes_a_peek_waiting_on_the_head_stamp() {
    model(3, || {
        let heap = Heap::new(ring::RingKind::Mpmc, 2);
        let (mut p, mut c) = (
            heap.ring.mpmc_producer().unwrap(),
            heap.ring.mpmc_consumer().unwrap(),
        );
        let data = Arc::new(Sem::new());
        let (h, d) = (heap.clone(), data.clone());
        let sender = thread::spawn(move || {
            for v in 1..=2u64 {
                p.try_push(&rec(v)).unwrap();
                d.post(p.data_cell().take_tokens_unfenced());
            }
            drop(p);
            drop(h);
        });
        assert_eq!(blocking_peek(&mut c, &data), 1);
        assert_eq!(blocking_peek(&mut c, &data), 2);
        sender.join().unwrap();
        assert!(data.value() <= 1, "more tokens than waiters");
    });
}
