//! Arbitrary bytes as a ring region (or a valid ring patched before opening and between
//! operations, like a hostile peer): `RawRing::open` gives a clean error or a ring whose
//! operations never panic, hang, or touch memory outside the region.
//! The driver lives in `shmchan_ring::model`; the corpus replays in the crate's unit tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shmchan_ring::model::open_region(data));
