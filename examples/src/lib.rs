//! Runnable examples of shmchan, one program each (`cargo run --example NAME` from the
//! workspace root):
//!
//! - `pipeline`: three processes, source → transform → sink, over two SPSC channels in SysV
//!   shared memory.
//! - `fork_pool`: a parent forks N workers that compete for jobs on one anonymous MPMC queue and
//!   return results on another.
//! - `file_log`: a producer writes to a file-backed channel and exits; a consumer started later
//!   receives everything that was committed.
//! - `rpc`: one server process answers several client processes over byte-channel duplexes.
//! - `plugin_host`: a tokio host hands two memfd byte channels (eventfd doorbell) to a plugin
//!   process over a Unix socket and serves it from one async task.
