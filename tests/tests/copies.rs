//! The copies a send and a receive make between the caller's memory and a slot: typed records
//! of every shape the copy distinguishes (2 to 8 whole words copied word by word, others as
//! one copy), and byte messages from aligned and unaligned sources into buffers with and
//! without room for whole words. Every byte arrives, nothing beyond the message shows.

use std::fmt::Debug;
use std::time::Duration;

use shmchan::bytemuck::{self, Pod, Zeroable};
use shmchan::{Backing, Bytes, Channel};

/// A record of three fields, aligned to 8 and 16 bytes long: copied word by word.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[bytemuck(crate = "shmchan::bytemuck")]
#[repr(C)]
struct Mixed {
    a: u64,
    b: u32,
    c: u32,
}

/// Sends records made by `make` through every by-value form and `send_ref`, and receives
/// each intact.
fn round_trip<T: Pod + PartialEq + Debug>(make: impl Fn(u64) -> T) {
    let chan = Channel::<T>::builder()
        .capacity(8)
        .backing(Backing::anonymous())
        .create()
        .expect("channel");
    let (mut tx, mut rx) = (chan.sender().expect("tx"), chan.receiver().expect("rx"));
    for i in 0..40u64 {
        let v = make(i);
        match i % 4 {
            0 => tx.try_send(v).expect("try_send"),
            1 => tx.send(v).expect("send"),
            2 => tx.send_ref(&v).expect("send_ref"),
            _ => tx
                .send_timeout(v, Duration::from_secs(1))
                .expect("send_timeout"),
        }
        assert_eq!(rx.try_recv().expect("a record"), v, "record {i}");
    }
}

/// Each word distinct and every byte of it meaningful.
fn word(i: u64, k: usize) -> u64 {
    (i + 1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(k as u32 * 11)
}

fn words<const W: usize>(i: u64) -> [u64; W] {
    std::array::from_fn(|k| word(i, k))
}

/// The sizes around the word-by-word copy's bounds (2 to 8 words of 8 bytes), and records it
/// does not take (one word, nine, 4-byte and 1-byte alignment).
#[test]
fn records_of_every_copy_shape_arrive_intact() {
    round_trip(words::<1>);
    round_trip(words::<2>);
    round_trip(words::<3>);
    round_trip(words::<7>);
    round_trip(words::<8>);
    round_trip(words::<9>);
    round_trip(|i| Mixed {
        a: word(i, 0),
        b: word(i, 1) as u32,
        c: word(i, 2) as u32,
    });
    round_trip(|i| std::array::from_fn::<u32, 3, _>(|k| word(i, k) as u32));
    round_trip(|i| std::array::from_fn::<u8, 17, _>(|k| word(i, k) as u8));
}

/// `send` copies each message whole, from an aligned source (word by word when whole words)
/// or not; `recv_into` delivers it whole, into a buffer with room for whole words or without
/// (whose allocation it grows only to the message), and never beyond its length.
#[test]
fn any_message_from_any_source_into_any_buffer_arrives_exactly() {
    let chan = Channel::<Bytes>::builder()
        .max_message(61)
        .capacity(4)
        .backing(Backing::anonymous())
        .create()
        .expect("channel");
    let (mut tx, mut rx) = (chan.sender().expect("tx"), chan.receiver().expect("rx"));
    // Words, so that offset 0 is 8-aligned.
    let mut store = vec![0u64; 9];
    for len in 0..=61usize {
        for at in [0, 1, 4] {
            let bytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut store)[at..at + len];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (i * 7 + len + at) as u8;
            }
            let msg: &[u8] = bytes;
            for cap in [0, len, len.next_multiple_of(8), 64] {
                // A stale tail in the buffer's allocation must not show.
                let mut buf = vec![0xAAu8; cap];
                buf.clear();
                tx.try_send(msg).expect("send");
                assert_eq!(rx.try_recv_into(&mut buf), Ok(len));
                assert_eq!(buf, msg, "len {len}, at {at}, capacity {cap}");
            }
        }
    }
}
