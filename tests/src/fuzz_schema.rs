//! The driver of the `schema_bytes` fuzz target (`fuzz/fuzz_targets/schema_bytes.rs`, which
//! includes this file with `#[path]`), shared with `tests/tests/record_identity.rs`, which
//! replays its corpus on stable: any bytes, parsed as the record schema a segment stores, give
//! a shape or an error, never a panic; a shape that parses re-encodes to bytes that parse to
//! the same shape, which shows no difference from itself.

use shmchan::schema::Shape;

pub fn schema_bytes(data: &[u8]) {
    let Ok(shape) = Shape::from_bytes(data) else {
        return;
    };
    let again = Shape::from_bytes(&shape.to_bytes()).expect("a re-encoded schema parses");
    assert_eq!(again, shape);
    assert_eq!(shape.diff(&again), None);
    let _ = shape.to_string();
}
