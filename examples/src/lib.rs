//! Runnable examples of shmchan live in this package's `examples/` directory.
