//! Lock-free ring algorithms over a raw memory region.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
