//! Safe RAII wrappers of the Linux kernel IPC primitives used by shmchan.
#![deny(unsafe_op_in_unsafe_fn)]
