//! Operation bytes drive an SPSC or MPMC ring and a `VecDeque` model in lock-step: pushes,
//! pops, batches, reserve/commit (including partial commits and dropped grants, i.e. skips),
//! peek/release, grants held across other handles' operations. Any divergence panics.
//! The driver lives in `shmchan_ring::model`, shared with the crate's unit tests, which also
//! replay `fuzz/corpus/ring_vs_model/` on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shmchan_ring::model::ring_vs_model(data));
