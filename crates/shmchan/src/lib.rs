//! Typed, zero-copy channels between Linux processes over shared memory.
#![deny(unsafe_op_in_unsafe_fn)]
