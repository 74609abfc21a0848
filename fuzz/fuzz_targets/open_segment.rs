//! Arbitrary bytes as a whole channel segment (copied into a 128-aligned heap buffer of exactly
//! their length): `Builder::open_in` gives a clean error or a channel whose endpoints (which may
//! be refused cleanly) run non-blocking operations without panicking, hanging, or touching
//! memory outside the buffer. The driver lives in `tests/src/fuzz_driver.rs`, shared with
//! `tests/tests/fuzz_replay.rs`, which replays `fuzz/corpus/open_segment/` on stable.
#![no_main]

#[path = "../../tests/src/fuzz_driver.rs"]
mod fuzz_driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_driver::open_segment(data));
