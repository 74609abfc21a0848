//! A real channel (heap buffer or file; any doorbell; any cleanup) whose segment's claims about
//! its doorbell — code, descriptor (ids and names), identity, cleanup word, attach count — the
//! input rewrites, between peers opening, using and dropping it, inspection, removal, and the
//! creator leaving. Never a crash or a hang, and never an action on a kernel object that is
//! not bound to the channel: victims (objects without the channel's identity, or another
//! user's) must be exactly as they were. The driver lives in `tests/src/fuzz_claims.rs`,
//! shared with `tests/tests/fuzz_replay.rs`, which replays `fuzz/corpus/doorbell_claims/` on
//! stable.
#![no_main]

#[path = "../../tests/src/fuzz_driver.rs"]
mod fuzz_driver;

#[path = "../../tests/src/fuzz_claims.rs"]
mod fuzz_claims;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_claims::doorbell_claims(data));
