//! A byte channel's length lane under loom: each message's length is written into the lane
//! entry of its position before the ring publishes the slot, and read after the receiver's
//! claim, exactly as the slot is (`Lane`, as the endpoint core finds an entry: by the SPSC
//! handle's position, the mailbox included, or by an MPMC claim's slot address).
//!
//! The lane entries are loom cells here (one per slot, found through the real `Lane` by the
//! entry's index), so loom checks every access to them against the ring's orderings.

use loom::cell::UnsafeCell;
use loom::thread;
use shmchan_ring as ring;

use super::{model, Heap};
use crate::endpoint::Lane;
use std::ptr::NonNull;
use std::sync::Arc;

/// The lane of a heap ring: the `u32` words `Lane` points into (their addresses give the
/// entry's index), and a loom cell per entry standing for its contents.
struct Lengths {
    words: Box<[u32]>,
    cells: Vec<UnsafeCell<u32>>,
}

impl Lengths {
    fn new(slots: usize) -> Arc<Lengths> {
        Arc::new(Lengths {
            words: vec![0; slots].into_boxed_slice(),
            cells: (0..slots).map(|_| UnsafeCell::new(u32::MAX)).collect(),
        })
    }

    fn lane(&self, r: &ring::RawRing) -> Lane {
        Lane::new(NonNull::from(&self.words[0]), r)
    }

    /// The cell of the entry `Lane` gave.
    fn cell(&self, entry: NonNull<u32>) -> &UnsafeCell<u32> {
        let i = (entry.as_ptr() as usize - self.words.as_ptr() as usize) / 4;
        &self.cells[i]
    }
}

// SAFETY: `words` is never written after construction (only its addresses are used); the
// cells are loom's, which check their own accesses.
unsafe impl Send for Lengths {}
// SAFETY: as above.
unsafe impl Sync for Lengths {}

/// Message `v`'s length.
fn len_of(v: u64) -> u32 {
    v as u32 * 7 + 1
}

/// Writes message `v`: its word into the slot and its length into the slot's entry.
fn write(entry: &UnsafeCell<u32>, slot: NonNull<u8>, v: u64) {
    entry.with_mut(|e| {
        // SAFETY: the entry of the slot being written, ours until the push publishes it
        // (what loom checks).
        unsafe { *e = len_of(v) }
    });
    // SAFETY: a reserved slot of 8 bytes.
    unsafe { slot.cast::<u64>().as_ptr().write_unaligned(v) };
}

/// Reads a message: its length from the entry, its word from the record.
fn read(entry: &UnsafeCell<u32>, rec: NonNull<u8>) -> (u32, u64) {
    // SAFETY: the entry and the record (slot or mailbox copy) of the position read, published
    // (what loom checks).
    unsafe {
        (
            entry.with(|e| *e),
            rec.cast::<u64>().as_ptr().read_unaligned(),
        )
    }
}

/// Sends messages 1 to 3, each by `push` (`false`: the ring was full; tried again).
fn send_all(mut push: impl FnMut(u64) -> bool) {
    for v in 1..=3u64 {
        while !push(v) {
            thread::yield_now();
        }
    }
}

/// Receives three messages by `pop` (`None`: empty; tried again): 1 to 3, with their lengths.
fn receive_all(mut pop: impl FnMut() -> Option<(u32, u64)>) {
    for v in 1..=3u64 {
        let got = loop {
            if let Some(got) = pop() {
                break got;
            }
            thread::yield_now();
        };
        assert_eq!(got, (len_of(v), v));
    }
}

/// Three messages through an SPSC ring of two slots (so the second lap reuses the first
/// entry): each is received with the length written for it.
///
/// Catches the publish weakened below Release (`SpscProducer::publish`: the receiver reads
/// a length that is not its message's) and the release below Release
/// (`SpscConsumer::release_to`: the sender's next-lap write of the entry races with the
/// receiver's read).
#[test]
fn spsc_lengths_travel_with_their_messages() {
    model(3, || {
        let heap = Heap::new(ring::RingKind::Spsc, 2);
        let lengths = Lengths::new(2);
        let lane = lengths.lane(&heap.ring);
        let (mut p, mut c) = heap.spsc();
        let (h, l) = (heap.clone(), lengths.clone());
        let sender = thread::spawn(move || {
            send_all(|v| {
                let entry = l.cell(lane.at(p.position()));
                p.try_push_with(|slot| write(entry, slot, v)).is_ok()
            });
            drop(p);
            drop(h);
        });
        receive_all(|| {
            let entry = lengths.cell(lane.at(c.position()));
            c.try_pop_with(|rec| read(entry, rec)).ok()
        });
        sender.join().unwrap();
    });
}

/// As [`spsc_lengths_travel_with_their_messages`] on an MPMC ring, whose entries are found by
/// the claimed slot's address.
///
/// Catches the stamp's publish weakened below Release (`publish_claimed`) and its release
/// (`release_claimed`), as the SPSC model does the cursors'.
#[test]
fn mpmc_lengths_travel_with_their_messages() {
    model(3, || {
        let heap = Heap::new(ring::RingKind::Mpmc, 2);
        let lengths = Lengths::new(2);
        let lane = lengths.lane(&heap.ring);
        let (mut p, mut c) = (
            heap.ring.mpmc_producer().unwrap(),
            heap.ring.mpmc_consumer().unwrap(),
        );
        let (h, l) = (heap.clone(), lengths.clone());
        let sender = thread::spawn(move || {
            send_all(|v| {
                p.try_push_with(|slot| write(l.cell(lane.of_record(slot)), slot, v))
                    .is_ok()
            });
            drop(p);
            drop(h);
        });
        receive_all(|| {
            c.try_pop_with(|rec| read(lengths.cell(lane.of_record(rec)), rec))
                .ok()
        });
        sender.join().unwrap();
    });
}
