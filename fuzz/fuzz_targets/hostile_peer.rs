//! A live SPSC or MPMC channel in a heap buffer; the input drives sends, receives, batches,
//! reserve/commit, peeks, endpoints leaving and joining, a second peer opening the segment, and
//! scribbles on the ring header, the extension header and endpoint table, the cursor lines and
//! the slot stamps. Before the first scribble results are checked against a FIFO model; after
//! it every operation must still return a value or an error. The driver lives in
//! `tests/src/fuzz_driver.rs`, shared with `tests/tests/fuzz_replay.rs`, which replays
//! `fuzz/corpus/hostile_peer/` on stable.
#![no_main]

#[path = "../../tests/src/fuzz_driver.rs"]
mod fuzz_driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_driver::hostile_peer(data));
