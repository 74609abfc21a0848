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

/// The by-value sends' ways: on an SPSC ring with room, the short way writes the value into
/// its slot itself; a full ring the sender waits on and an MPMC ring take the general way,
/// which copies it from a reference, as does a record above the 1 KiB the value's short way
/// takes. Every record arrives intact and in order either way, and a `try_send` that finds the
/// ring full gives back the record it was given.
#[test]
fn records_sent_by_value_either_way_arrive_intact() {
    for mpmc in [false, true] {
        either_way(mpmc, words::<1>);
        either_way(mpmc, words::<8>);
        either_way(mpmc, words::<129>); // 1032 bytes: above the short way's 1 KiB
        either_way(mpmc, |i| Mixed {
            a: word(i, 0),
            b: word(i, 1) as u32,
            c: word(i, 2) as u32,
        });
        either_way(mpmc, |i| {
            std::array::from_fn::<u8, 17, _>(|k| word(i, k) as u8)
        });
    }
}

fn either_way<T: Pod + PartialEq + Debug + Send>(mpmc: bool, make: impl Fn(u64) -> T + Sync) {
    const N: u64 = 300;
    let wait = Duration::from_secs(10);
    let b = Channel::<T>::builder()
        .capacity(2)
        .backing(Backing::anonymous());
    let chan = if mpmc { b.mpmc() } else { b.spsc() }
        .create()
        .expect("channel");
    let (mut tx, rx) = (chan.sender().expect("tx"), chan.receiver().expect("rx"));
    let make = &make;
    // Neither side panics inside the scope: a receiver that stopped while the sender waits on
    // a full ring would leave the scope waiting for the sender for ever.
    let (sent, got) = std::thread::scope(|s| {
        let sender = s.spawn(move || -> Result<(), String> {
            for i in 0..N {
                let v = make(i);
                let r = match i % 4 {
                    0 => tx.send(v).map_err(|e| format!("send: {e:?}")),
                    1 => tx
                        .send_timeout(v, wait)
                        .map_err(|e| format!("send_timeout: {e:?}")),
                    2 => tx
                        .send_deadline(v, std::time::Instant::now() + wait)
                        .map_err(|e| format!("send_deadline: {e:?}")),
                    _ => loop {
                        match tx.try_send(v) {
                            Ok(()) => break Ok(()),
                            Err(shmchan::TrySendError::Full(back)) if back == v => {
                                std::thread::yield_now()
                            }
                            Err(e) => break Err(format!("try_send: {e:?}")),
                        }
                    },
                };
                r.map_err(|e| format!("record {i}: {e}"))?;
            }
            Ok(())
        });
        let mut rx = rx;
        let mut got = Vec::new();
        for i in 0..N {
            if i % 8 == 0 {
                // Let the ring fill, so that the sends after it wait (the general way).
                std::thread::sleep(Duration::from_millis(1));
            }
            match rx.recv_timeout(wait) {
                Ok(v) => got.push(v),
                Err(_) => break,
            }
        }
        // A sender still waiting now fails (no receiver) instead of waiting for ever.
        drop(rx);
        (sender.join().expect("sender thread"), got)
    });
    sent.unwrap_or_else(|e| panic!("mpmc: {mpmc}: {e}"));
    assert_eq!(got.len() as u64, N, "records received (mpmc: {mpmc})");
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, make(i as u64), "record {i} (mpmc: {mpmc})");
    }
}
