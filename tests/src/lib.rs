//! Support code shared by shmchan's multi-process test suites: unique keys and paths,
//! cleanup guards, and re-exec of the test binary with a role argument.
