//! Support code shared by shmchan's multi-process and conformance suites: unique keys and
//! paths, cleanup guards that run even when a test fails, the record type the suites send,
//! backings described as strings (so a re-exec'ed child can be told where to connect; a memfd
//! travels over a Unix socket the child inherits), and child-process handles that never outlive
//! their test.
#![allow(missing_docs)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmchan::{Backing, Doorbell, RingKind};

pub mod fuzz_claims;
pub mod fuzz_driver;
pub mod fuzz_schema;
pub mod ticks;

/// The record the suites send: a sequence number, the sending producer, and a check word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, shmchan::Pod, shmchan::Zeroable)]
#[bytemuck(crate = "shmchan::bytemuck")]
#[repr(C)]
pub struct Rec {
    pub seq: u64,
    pub producer: u32,
    pub check: u32,
}

impl Rec {
    pub fn new(producer: u32, seq: u64) -> Rec {
        Rec {
            seq,
            producer,
            check: Self::check_of(producer, seq),
        }
    }

    fn check_of(producer: u32, seq: u64) -> u32 {
        (seq as u32).wrapping_mul(0x9e37_79b9) ^ producer.rotate_left(7) ^ 0xa5a5_5a5a
    }

    /// Whether the check word matches (the record was not torn or half-written).
    pub fn is_valid(&self) -> bool {
        self.check == Self::check_of(self.producer, self.seq)
    }
}

/// A record of another type, used to provoke `TypeMismatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, shmchan::Pod, shmchan::Zeroable)]
#[bytemuck(crate = "shmchan::bytemuck")]
#[repr(C)]
pub struct Other {
    pub a: u32,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A name no other test (in this or another process) uses: `shmchan-t-<tag>-<pid>-<n>-<ns>`.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "shmchan-t-{tag}-{}-{n}-{:x}",
        std::process::id(),
        nanos() & 0xffff_ffff
    )
}

/// A SysV key unlikely to collide (creation uses IPC_EXCL, so a collision is an error, never
/// a shared segment). The top bit is clear and the key is never 0 (IPC_PRIVATE).
pub fn unique_key() -> i32 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u64;
    let mut h =
        nanos() ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 32;
    let k = (h as u32 & 0x7fff_ffff) as i32;
    if k == 0 {
        1
    } else {
        k
    }
}

/// Where the suites put their files (each under a unique name, removed by a guard).
pub fn test_dir() -> PathBuf {
    std::env::temp_dir()
}

/// Removes a path when dropped (also when the test panics).
#[derive(Debug)]
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(tag: &str) -> TempPath {
        TempPath(test_dir().join(unique_name(tag)))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes whatever SysV segment holds `key` when dropped (belt and braces: the channel's own
/// cleanup normally did it already).
#[derive(Debug)]
pub struct KeyGuard(pub i32);

impl Drop for KeyGuard {
    fn drop(&mut self) {
        // Through shmchan first, which removes the channel's life-token set with it; then
        // whatever is still there, and the life set it leaves.
        let _ = shmchan::remove(&shmchan::Backing::sysv_key(self.0));
        if let Ok(id) = shmchan_os::ShmId::open(shmchan_os::Key::new(self.0)) {
            let _ = id.remove();
            // A segment shmchan would not remove (a crafted one) leaves its life set.
            let _ = shmchan::prune_orphans(true);
        }
    }
}

/// Removes a SysV segment by id when dropped.
#[derive(Debug)]
pub struct ShmIdGuard(pub i32);

impl Drop for ShmIdGuard {
    fn drop(&mut self) {
        // As `KeyGuard`.
        let _ = shmchan::remove(&shmchan::Backing::sysv_id(self.0));
        if shmchan_os::ShmId::from_raw(self.0).remove().is_ok() {
            let _ = shmchan::prune_orphans(true);
        }
    }
}

/// The backings the suites run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackingKind {
    SysvKey,
    File,
    Anonymous,
    /// A sealed memfd; peers get it over a Unix socket (`Channel::share`, `Backing::receive`).
    Memfd,
}

/// A backing with its cleanup guard: dropping it removes the channel (segment or file, and
/// the doorbell's kernel objects) if it is still there.
#[derive(Debug)]
pub struct Place {
    pub backing: Backing,
    pub spec: String,
    _key: Option<KeyGuard>,
    _path: Option<TempPath>,
}

impl Drop for Place {
    fn drop(&mut self) {
        // Runs before the fields' guards: `remove` finds the doorbell objects through the
        // segment, so it must come while the segment or file still exists.
        let _ = shmchan::remove(&self.backing);
    }
}

impl Place {
    pub fn new(kind: BackingKind) -> Place {
        match kind {
            BackingKind::SysvKey => {
                let k = unique_key();
                Place {
                    backing: Backing::sysv_key(k),
                    spec: format!("sysv-key:{k}"),
                    _key: Some(KeyGuard(k)),
                    _path: None,
                }
            }
            BackingKind::File => {
                let p = TempPath::new("file");
                Place {
                    backing: Backing::file(p.path()),
                    spec: format!("file:{}", p.path().display()),
                    _key: None,
                    _path: Some(p),
                }
            }
            BackingKind::Anonymous => Place {
                backing: Backing::anonymous(),
                spec: "anonymous".into(),
                _key: None,
                _path: None,
            },
            BackingKind::Memfd => Place {
                backing: Backing::memfd(unique_name("memfd")),
                spec: "memfd".into(),
                _key: None,
                _path: None,
            },
        }
    }
}

/// The environment variable that names the inherited Unix socket a child receives a memfd
/// channel on (see [`ChildGuard::spawn_shared`]).
pub const SOCK_ENV: &str = "SHMCHAN_TEST_SOCK";

/// The inherited socket named by [`SOCK_ENV`] (taken once: the descriptor is owned here).
pub fn inherited_socket() -> UnixStream {
    let fd: i32 = std::env::var(SOCK_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{SOCK_ENV} is not set to a descriptor number"));
    socket_from_fd(fd)
}

/// Takes ownership of an inherited socket descriptor (the test passed its number).
pub fn socket_from_fd(fd: i32) -> UnixStream {
    // Refuse numbers that are not open sockets rather than adopting someone else's descriptor.
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .unwrap_or_else(|e| panic!("descriptor {fd}: {e}"));
    assert!(
        link.to_string_lossy().starts_with("socket:"),
        "descriptor {fd} is {}, not a socket",
        link.display()
    );
    // SAFETY: the descriptor is open (checked above), was inherited for this purpose, and
    // nothing else in this process owns it.
    UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Parses a backing spec as written by [`Place`] (`sysv-key:N`, `sysv-id:N`, `file:PATH`, or
/// `memfd`: received on the socket named by [`SOCK_ENV`]).
pub fn parse_backing(spec: &str) -> Backing {
    if spec == "memfd" {
        Backing::receive(&inherited_socket()).unwrap_or_else(|e| panic!("receive: {e}"))
    } else if let Some(k) = spec.strip_prefix("sysv-key:") {
        Backing::sysv_key(k.parse().expect("key"))
    } else if let Some(id) = spec.strip_prefix("sysv-id:") {
        Backing::sysv_id(id.parse().expect("id"))
    } else if let Some(p) = spec.strip_prefix("file:") {
        Backing::file(p)
    } else {
        panic!("unknown backing spec {spec:?}")
    }
}

pub fn parse_doorbell(s: &str) -> Doorbell {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

pub fn parse_kind(s: &str) -> RingKind {
    match s {
        "spsc" => RingKind::Spsc,
        "mpmc" => RingKind::Mpmc,
        _ => panic!("unknown ring kind {s:?}"),
    }
}

pub fn kind_name(k: RingKind) -> &'static str {
    match k {
        RingKind::Spsc => "spsc",
        _ => "mpmc",
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing test never
/// leaves one behind.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Runs `exe` (the suites pass `env!("CARGO_BIN_EXE_shmchan-test-child")`) with `args`.
    pub fn spawn(exe: &str, args: &[&str]) -> ChildGuard {
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {exe}: {e}"));
        ChildGuard {
            child: Some(child),
            what: args.join(" "),
        }
    }

    /// Runs a prepared command (a re-executed test binary with its role in the environment,
    /// say) with stdout piped and stderr kept; `what` names it in failures.
    pub fn spawn_cmd(mut cmd: Command, what: &str) -> ChildGuard {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        ChildGuard {
            child: Some(child),
            what: what.to_owned(),
        }
    }

    /// Like [`spawn`](ChildGuard::spawn), with one end of a fresh socket pair inherited by the
    /// child (its number in [`SOCK_ENV`]); `chan` is shared over the other end, so the child's
    /// `parse_backing("memfd")` receives it.
    pub fn spawn_shared<T>(exe: &str, args: &[&str], chan: &shmchan::Channel<T>) -> ChildGuard {
        let (here, there) = UnixStream::pair().expect("socketpair");
        let child = ChildGuard::spawn_with_fd(exe, args, &there);
        drop(there);
        chan.share(&here).expect("share");
        child
    }

    /// Spawns `exe` with `args`, letting the child inherit `sock` (its number in [`SOCK_ENV`];
    /// every other descriptor stays close-on-exec).
    pub fn spawn_with_fd(exe: &str, args: &[&str], sock: &UnixStream) -> ChildGuard {
        let fd = sock.as_raw_fd();
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env(SOCK_ENV, fd.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: runs in the forked child before exec and only calls fcntl, which is
        // async-signal-safe; `fd` stays open in the parent until `spawn` returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {exe}: {e}"));
        ChildGuard {
            child: Some(child),
            what: args.join(" "),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Reads one line of the child's stdout (blocking; the child must print it).
    pub fn read_line(&mut self) -> String {
        let out = self
            .child
            .as_mut()
            .and_then(|c| c.stdout.as_mut())
            .expect("stdout");
        // One byte at a time: no buffer may swallow later output that `wait` should return.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while std::io::Read::read(out, &mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the child to exit, at most `timeout`; returns its status and stdout. Panics
    /// (after killing it) when it does not exit in time.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("child");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let mut out = String::new();
                if let Some(mut s) = child.stdout.take() {
                    use std::io::Read;
                    let _ = s.read_to_string(&mut out);
                }
                return (status, out);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child `{}` did not exit within {timeout:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits and asserts a zero exit status; returns stdout.
    pub fn wait_ok(self, timeout: Duration) -> String {
        let what = self.what.clone();
        let (status, out) = self.wait(timeout);
        assert!(
            status.success(),
            "child `{what}` failed: {status}; stdout: {out}"
        );
        out
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Retries `f` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A sender and a receiver of one fresh channel, with the cleanup of its backing. Fields drop
/// in order: endpoints first, then the guards.
pub struct Pair<T> {
    pub tx: shmchan::Sender<T>,
    pub rx: shmchan::Receiver<T>,
    pub place: Place,
}

/// The body shared by [`pair`] and [`pair_bytes`]: make `$builder` (already configured) on
/// `$place` and return (sender, receiver), the receiver opened as a peer of `$rec` would.
macro_rules! sender_and_receiver {
    ($rec:ty, $backing:expr, $b:expr, $place:expr) => {{
        let b = $b;
        if $backing == BackingKind::Anonymous {
            let chan = b.create().expect("create");
            (
                chan.sender().expect("sender"),
                chan.receiver().expect("receiver"),
            )
        } else if $backing == BackingKind::Memfd {
            // The receiver opens its own mapping of the memfd, received over a socket as an
            // unrelated process would.
            let chan = b.create().expect("create");
            let (here, there) = UnixStream::pair().expect("socketpair");
            chan.share(&here).expect("share");
            let rx = shmchan::Channel::<$rec>::builder()
                .backing(Backing::receive(&there).expect("receive"))
                .open_receiver()
                .expect("open_receiver");
            (chan.sender().expect("sender"), rx)
        } else {
            let tx = b.create_sender().expect("create_sender");
            let rx = shmchan::Channel::<$rec>::builder()
                .backing($place.backing.clone())
                .open_receiver()
                .expect("open_receiver");
            (tx, rx)
        }
    }};
}

/// A fresh channel on `backing` with `doorbell` and `kind`: the sender creates it (or, for
/// anonymous memory, a `Channel` gives both ends) and the receiver opens it as a peer would.
pub fn pair<T: shmchan::Pod>(
    backing: BackingKind,
    doorbell: Doorbell,
    kind: RingKind,
    capacity: usize,
) -> Pair<T> {
    let place = Place::new(backing);
    let b = shmchan::Channel::<T>::builder()
        .capacity(capacity)
        .doorbell(doorbell)
        .backing(place.backing.clone());
    let b = match kind {
        RingKind::Spsc => b.spsc(),
        _ => b.mpmc(),
    };
    let (tx, rx) = sender_and_receiver!(T, backing, b, place);
    Pair { tx, rx, place }
}

/// Generates one `#[test]` per backing × doorbell × ring kind for each listed generic test
/// function `fn name(b: BackingKind, d: Doorbell, k: RingKind)`; the tests are named
/// `name::backing::doorbell::kind` (filter with, e.g., `cargo test posix_mq`).
///
/// The eventfd doorbell is generated only for the backings whose peers can get its
/// descriptors (anonymous: inherited across fork; memfd: sent with the channel); on SysV and
/// file backings its creation is refused, which `eventfd_needs_descriptors` tests once.
#[macro_export]
macro_rules! matrix {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                $crate::matrix!(@backing $name, sysv, SysvKey, []);
                $crate::matrix!(@backing $name, file, File, []);
                $crate::matrix!(@backing $name, anon, Anonymous, [eventfd EventFd]);
                $crate::matrix!(@backing $name, memfd, Memfd, [eventfd EventFd]);
            }
        )*
    };
    (@backing $name:ident, $bmod:ident, $b:ident, [$($xmod:ident $x:ident)*]) => {
        mod $bmod {
            $($crate::matrix!(@door $name, $b, $xmod, $x);)*
            $crate::matrix!(@door $name, $b, futex, Futex);
            $crate::matrix!(@door $name, $b, spin, Spin);
            $crate::matrix!(@door $name, $b, sysv_sem, SysvSem);
            $crate::matrix!(@door $name, $b, posix_sem, PosixSem);
            $crate::matrix!(@door $name, $b, posix_named_sem, PosixNamedSem);
            $crate::matrix!(@door $name, $b, sysv_msgq, SysvMsgQueue);
            $crate::matrix!(@door $name, $b, posix_mq, PosixMq);
        }
    };
    (@door $name:ident, $b:ident, $dmod:ident, $d:ident) => {
        mod $dmod {
            #[test]
            fn spsc() {
                super::super::super::$name(
                    $crate::BackingKind::$b,
                    ::shmchan::Doorbell::$d,
                    ::shmchan::RingKind::Spsc,
                );
            }
            #[test]
            fn mpmc() {
                super::super::super::$name(
                    $crate::BackingKind::$b,
                    ::shmchan::Doorbell::$d,
                    ::shmchan::RingKind::Mpmc,
                );
            }
        }
    };
}

/// [`matrix!`] over the backings that have a name a separate program can open (SysV key,
/// file): what `open_or_create` and restarts apply to. Same naming:
/// `name::backing::doorbell::kind`.
#[macro_export]
macro_rules! named_matrix {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                $crate::matrix!(@backing $name, sysv, SysvKey, []);
                $crate::matrix!(@backing $name, file, File, []);
            }
        )*
    };
}

/// A byte-channel sender and receiver of one fresh channel (`max` bytes per message), made
/// the way [`pair`] makes typed ones.
pub struct BytePair {
    pub tx: shmchan::Sender<shmchan::Bytes>,
    pub rx: shmchan::Receiver<shmchan::Bytes>,
    pub place: Place,
}

/// [`pair`] for a byte channel: created by the sender (or a `Channel` for anonymous memory);
/// the receiver opens it as a peer would, adopting the maximum message length.
pub fn pair_bytes(
    backing: BackingKind,
    doorbell: Doorbell,
    kind: RingKind,
    capacity: usize,
    max: usize,
) -> BytePair {
    use shmchan::{Bytes, Channel};
    let place = Place::new(backing);
    let b = Channel::<Bytes>::builder()
        .capacity(capacity)
        .max_message(max)
        .doorbell(doorbell)
        .backing(place.backing.clone());
    let b = match kind {
        RingKind::Spsc => b.spsc(),
        _ => b.mpmc(),
    };
    let (tx, rx) = sender_and_receiver!(Bytes, backing, b, place);
    BytePair { tx, rx, place }
}

/// The message number `i` of the byte suites: a length that cycles through 0..=max and
/// content derived from `i`, so a torn, truncated or reordered message is detected.
pub fn byte_message(i: u64, max: usize) -> Vec<u8> {
    let len = (i as usize).wrapping_mul(7919) % (max + 1);
    (0..len)
        .map(|j| (i as u8).wrapping_mul(31).wrapping_add(j as u8))
        .collect()
}
