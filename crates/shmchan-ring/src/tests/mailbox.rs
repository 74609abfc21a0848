//! The SPSC mailbox on the producer cursor's line: which publishes fill it, when a consumer
//! takes a record from it, and that it is only ever a copy (a hostile or stale mailbox sends
//! the consumer to the slot, never past it).

use std::vec;
use std::vec::Vec;

use super::*;

/// The mailbox tag's offset in the region (after the producer cursor).
fn tag_offset(ring: &RawRing) -> u64 {
    ring.layout().cursors_offset + 8
}

/// A ring of `capacity` records of `size` bytes aligned to `align`, with its one producer and
/// its one consumer.
fn spsc(capacity: u32, size: u32, align: u32) -> (Region, RawRing, SpscProducer, SpscConsumer) {
    let (region, ring) = region_for(&cfg(RingKind::Spsc, capacity, size, align));
    // SAFETY: single-threaded tests: these are the ring's only producer and consumer.
    let (p, cons) = unsafe { (ring.spsc_producer().unwrap(), ring.spsc_consumer().unwrap()) };
    (region, ring, p, cons)
}

/// Reads a u64 of the region.
fn peek_u64(ring: &RawRing, offset: u64) -> u64 {
    // SAFETY: single-threaded test; the offset is 8-aligned and inside the region.
    unsafe {
        ring.base()
            .as_ptr()
            .add(offset as usize)
            .cast::<u64>()
            .read()
    }
}

/// A record of `size` bytes that tells `v` and its size apart from any other.
fn record(size: usize, v: u8) -> Vec<u8> {
    (0..size)
        .map(|i| v.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

#[test]
fn a_one_record_publish_fills_the_mailbox_and_a_caught_up_consumer_reads_it_there() {
    let (region, ring, mut p, mut cons) = spsc(4, 8, 8);
    let l = ring.layout();
    assert_eq!(peek_u64(&ring, tag_offset(&ring)), 0);
    p.try_push(&7u64.to_ne_bytes()).unwrap();
    assert_eq!(peek_u64(&ring, tag_offset(&ring)), 1);
    assert_eq!(peek_u64(&ring, tag_offset(&ring) + 8), 7);
    // The slot is overwritten behind the ring's back: a consumer that takes the record from
    // the mailbox does not see it (this is how the test knows which copy was read).
    poke_u64(&region, l.slots_offset, 99);
    let rec = cons.next_ready().unwrap();
    let copy_at = ring.base().as_ptr() as usize + l.cursors_offset as usize + 128 + 8;
    assert_eq!(rec.as_ptr() as usize, copy_at, "the consumer line's copy");
    // SAFETY: the record is ours until release_one; 8 readable bytes, 8-aligned.
    assert_eq!(unsafe { rec.cast::<u64>().read() }, 7);
    // SAFETY: next_ready returned Ok and nothing was freed since.
    unsafe { cons.release_one() };
    assert_eq!(cons.try_pop(&mut [0; 8]), Err(PopError::Empty));
}

#[test]
fn a_consumer_that_knows_more_than_one_record_reads_the_slots() {
    let (region, ring, mut p, mut cons) = spsc(4, 8, 8);
    let l = ring.layout();
    p.try_push(&1u64.to_ne_bytes()).unwrap();
    p.try_push(&2u64.to_ne_bytes()).unwrap();
    // The mailbox holds record 2 (tag 2); the look finds two records, so both come from the
    // slots: a scribbled slot shows it.
    poke_u64(&region, l.slots_offset, 11);
    poke_u64(&region, l.slots_offset + 8, 12);
    let mut out = [0u8; 8];
    cons.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 11);
    cons.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 12);
}

#[test]
fn batches_and_grants_leave_the_mailbox_alone() {
    let (_region, ring, mut p, mut cons) = spsc(8, 8, 8);
    assert_eq!(p.try_push_batch(&5u64.to_ne_bytes()), Ok(1));
    let mut g = p.try_reserve(1).unwrap();
    g.write(0, &6u64.to_ne_bytes());
    g.commit();
    assert_eq!(
        peek_u64(&ring, tag_offset(&ring)),
        0,
        "no one-record publish yet"
    );
    let mut out = [0u8; 8];
    for want in [5u64, 6] {
        cons.try_pop(&mut out).unwrap();
        assert_eq!(u64::from_ne_bytes(out), want);
    }
}

#[test]
fn a_stale_or_hostile_mailbox_sends_the_consumer_to_the_slot() {
    let (region, ring, mut p, mut cons) = spsc(4, 8, 8);
    let tag = tag_offset(&ring);
    let mut out = [0u8; 8];
    // A tag that names another position, a tag cleared mid-write, a tag at the position that
    // wraps to 0: none is taken, and the record comes from its slot.
    for (i, bad_tag) in [(0u64, 5u64), (1, 0), (2, 1)] {
        p.try_push(&(100 + i).to_ne_bytes()).unwrap();
        poke_u64(&region, tag, bad_tag);
        poke_u64(&region, tag + 8, 0xdead);
        cons.try_pop(&mut out).unwrap();
        assert_eq!(u64::from_ne_bytes(out), 100 + i);
    }
    // Garbage everywhere in the producer's line but a matching tag: the consumer takes the
    // mailbox's words (a hostile peer can write any record, as it can into a slot), and
    // nothing else goes wrong.
    p.try_push(&200u64.to_ne_bytes()).unwrap();
    for off in 16..64 {
        region.scribble((ring.layout().cursors_offset + off) as usize, 0xa5);
    }
    cons.try_pop(&mut out).unwrap();
    assert_eq!(out, [0xa5; 8]);
    assert_eq!(cons.try_pop(&mut out), Err(PopError::Empty));
}

#[test]
fn a_dead_producers_unpublished_mailbox_is_never_taken() {
    let c = cfg(RingKind::Spsc, 4, 8, 8);
    let (region, ring) = region_for(&c);
    let tag = tag_offset(&ring);
    // SAFETY: single-threaded test: one consumer.
    let mut cons = unsafe { ring.spsc_consumer().unwrap() };
    {
        // SAFETY: the only producer while it lives.
        let _dead = unsafe { ring.spsc_producer().unwrap() };
        // It dies between its mailbox and its cursor store: the mailbox names position 0
        // with its record, the cursor says nothing was published.
        poke_u64(&region, tag, 1);
        poke_u64(&region, tag + 8, 0xdead);
    }
    // SAFETY: the only producer now.
    let mut p = unsafe { ring.spsc_producer().unwrap() };
    // Its successor publishes position 0 by a batch, which leaves the mailbox alone: the
    // caught-up consumer must read the successor's record, not the dead one's copy.
    assert_eq!(p.try_push_batch(&42u64.to_ne_bytes()), Ok(1));
    let mut out = [0u8; 8];
    cons.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 42);
}

#[test]
fn records_of_every_mailbox_size_and_beyond_arrive_whole() {
    // Whole words up to the largest the mailbox takes; sizes that are not whole words, one
    // word more than it takes, and an alignment its copy does not give (16): those never use
    // it.
    let sizes = [
        (8, 1),
        (16, 8),
        (24, 4),
        (48, 8),
        (1, 1),
        (3, 1),
        (12, 4),
        (56, 8),
        (16, 16),
    ];
    for (size, align) in sizes {
        let (_region, ring, mut p, mut cons) = spsc(4, size, align);
        let size = size as usize;
        let uses_mailbox = size <= 48 && size % 8 == 0 && align <= 8;
        let mut out = vec![0u8; size];
        for v in 0..10u8 {
            p.try_push(&record(size, v)).unwrap();
            let tag = peek_u64(&ring, tag_offset(&ring));
            assert_eq!(tag, if uses_mailbox { u64::from(v) + 1 } else { 0 });
            if v % 2 == 0 {
                cons.try_pop(&mut out).unwrap();
                assert_eq!(out, record(size, v), "size {size}, record {v}");
            } else {
                let rec = cons.next_ready().unwrap();
                // SAFETY: `size` readable bytes until release_one.
                let got = unsafe { core::slice::from_raw_parts(rec.as_ptr(), size) };
                assert_eq!(got, &record(size, v)[..], "size {size}, record {v}");
                assert_eq!(rec.as_ptr() as usize % align as usize, 0);
                // SAFETY: next_ready returned Ok and nothing was freed since.
                unsafe { cons.release_one() };
            }
        }
    }
}

/// Pushes `v`'s record of `W` words with `try_push_of::<[u64; W]>` (the typed forms: the
/// address and the mailbox copy computed with the size known at compile time).
fn push_of<const W: usize>(p: &mut SpscProducer, v: u64) -> Result<(), PushError> {
    let rec: [u64; W] = core::array::from_fn(|i| v.wrapping_mul(1_000) + i as u64);
    // SAFETY: the rings below hold records of `[u64; W]`, back to back; the slot holds W
    // words, 8-aligned.
    unsafe { p.try_push_of::<[u64; W], _>(|slot| slot.cast::<[u64; W]>().as_ptr().write(rec)) }
}

/// Pops one record with `try_pop_of::<[u64; W]>` and returns its first word, checking the
/// rest against it.
fn pop_of<const W: usize>(c: &mut SpscConsumer) -> Result<u64, PopError> {
    // SAFETY: as in `push_of`.
    let rec = unsafe { c.try_pop_of::<[u64; W], _>(|r| r.cast::<[u64; W]>().as_ptr().read()) }?;
    let v = rec[0] / 1_000;
    for (i, w) in rec.iter().enumerate() {
        assert_eq!(*w, v * 1_000 + i as u64, "word {i} of record {v}");
    }
    Ok(v)
}

/// The typed one-record forms at one record size: mixed with the untyped forms on both
/// sides, through the mailbox (a consumer that waits for each record) and past it (records
/// that gather), across several laps of the slots.
fn typed_forms_at<const W: usize>() {
    let (_region, ring, mut p, mut c) = spsc(5, (W * 8) as u32, 8);
    let size = W * 8;
    let mut out = vec![0u8; size];
    let mut next = 0u64;
    let mut want = 0u64;
    for round in 0..12u64 {
        // One record at a time, the consumer waiting for each.
        assert_eq!(pop_of::<W>(&mut c), Err(PopError::Empty));
        push_of::<W>(&mut p, next).unwrap();
        next += 1;
        if size <= 48 {
            assert_eq!(
                peek_u64(&ring, tag_offset(&ring)),
                next,
                "the mailbox has it"
            );
        }
        assert_eq!(pop_of::<W>(&mut c), Ok(want));
        want += 1;
        // A full ring's worth that gathers, in both forms, taken in both forms.
        for k in 0..5 {
            if (round + k) % 2 == 0 {
                push_of::<W>(&mut p, next).unwrap();
            } else {
                let rec: Vec<u8> = (0..W as u64)
                    .flat_map(|i| (next * 1_000 + i).to_ne_bytes())
                    .collect();
                p.try_push(&rec).unwrap();
            }
            next += 1;
        }
        assert_eq!(push_of::<W>(&mut p, next), Err(PushError::Full));
        for k in 0..5 {
            if (round + k) % 3 == 0 {
                c.try_pop(&mut out).unwrap();
                assert_eq!(
                    u64::from_ne_bytes(out[..8].try_into().unwrap()),
                    want * 1_000
                );
            } else {
                assert_eq!(pop_of::<W>(&mut c), Ok(want));
            }
            want += 1;
        }
    }
    assert_eq!(want, next);
}

#[test]
fn the_typed_one_record_forms_carry_records_of_every_size_as_the_untyped_ones_do() {
    // Mailbox sizes (one, two, six words) and beyond it (seven, sixteen).
    typed_forms_at::<1>();
    typed_forms_at::<2>();
    typed_forms_at::<6>();
    typed_forms_at::<7>();
    typed_forms_at::<16>();
}

#[test]
fn the_typed_zero_copy_forms_write_and_read_the_slots_the_untyped_ones_do() {
    let (_region, ring, mut p, mut c) = spsc(3, 16, 8);
    let l = ring.layout();
    for v in 0..9u64 {
        // SAFETY: a ring of back-to-back 16-byte records, `[u64; 2]`.
        let slot = unsafe { p.next_free_of::<[u64; 2]>() }.unwrap();
        let expect =
            ring.base().as_ptr() as usize + l.slots_offset as usize + (v % 4) as usize * 16;
        assert_eq!(slot.as_ptr() as usize, expect, "the slot of position {v}");
        // SAFETY: the free slot holds 16 writable bytes, 8-aligned; `commit_one_of` follows
        // with the pointer `next_free_of` gave and nothing published in between.
        unsafe {
            slot.cast::<[u64; 2]>().as_ptr().write([v, !v]);
            p.commit_one_of::<[u64; 2]>(slot);
        }
        // SAFETY: as above.
        let rec = unsafe { c.next_ready_of::<[u64; 2]>() }.unwrap();
        // SAFETY: the ready record holds 16 readable bytes, 8-aligned, until release_one.
        assert_eq!(unsafe { rec.cast::<[u64; 2]>().as_ptr().read() }, [v, !v]);
        // SAFETY: next_ready_of returned Ok and nothing was freed since.
        unsafe { c.release_one() };
    }
}
