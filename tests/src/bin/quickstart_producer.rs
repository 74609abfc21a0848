//! The README's Quick start `producer`, as a program of its own (see `tests/lifecycle.rs`).
#![allow(missing_docs, dead_code)]

include!("../quickstart.rs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    producer()
}
