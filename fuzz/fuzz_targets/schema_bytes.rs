//! Any bytes as the record schema a segment stores (`shmchan::schema::Shape::from_bytes`): a
//! shape or an error, never a panic; what parses round-trips. The driver lives in
//! `tests/src/fuzz_schema.rs`, shared with `tests/tests/record_identity.rs`, which replays
//! `fuzz/corpus/schema_bytes/` on stable.
#![no_main]

#[path = "../../tests/src/fuzz_schema.rs"]
mod fuzz_schema;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_schema::schema_bytes(data));
