//! A live SPSC or MPMC byte channel (`Channel<Bytes>`, capacity 2-8, messages of up to 8-64
//! bytes) in a heap buffer; the input drives sends of any length (longer than the maximum
//! too), reservations written in place, resized, committed or dropped, receives by copy, into a
//! buffer and in place, the timed forms, endpoints leaving and joining, a second peer opening
//! the segment, and scribbles: where `hostile_peer` puts them, and on the messages' lengths in
//! the lane.
//! Before the first scribble results are checked against a FIFO model of the messages' bytes;
//! after it every operation must still return a value or an error, and no message may be
//! longer than the maximum. The driver lives in `tests/src/fuzz_driver.rs`, shared with
//! `tests/tests/fuzz_replay.rs`, which replays `fuzz/corpus/hostile_bytes/` on stable.
#![no_main]

#[path = "../../tests/src/fuzz_driver.rs"]
mod fuzz_driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_driver::hostile_bytes(data));
