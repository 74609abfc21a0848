//! Process identity, error values and kernel limits.

mod common;

use std::time::Duration;

use common::{child_sleep, fork_child, ChildEnd};
use shmchan_os::{limits, process, Errno, ErrorKind, Key, Mode, OwnedShmId};

#[test]
fn start_time_of_self_and_of_a_missing_pid() {
    let me = std::process::id() as i32;
    let t = process::start_time(me).unwrap().unwrap();
    assert_eq!(process::start_time(me).unwrap(), Some(t));
    assert!(process::is_alive(me, t));
    assert!(!process::is_alive(me, t.wrapping_add(1)));
    let st = process::stat(me).unwrap().unwrap();
    assert_eq!(st.start_time, t);
    assert!(matches!(st.state, 'R' | 'S'), "{st:?}");
    // pid_max is at most 2^22: this pid cannot exist.
    assert_eq!(process::start_time(i32::MAX).unwrap(), None);
    assert_eq!(process::start_time(0).unwrap(), None);
    assert_eq!(process::start_time(-5).unwrap(), None);
    assert!(!process::is_alive(i32::MAX, t));
}

#[test]
fn child_is_alive_then_zombie_then_gone() {
    let mut child = fork_child(|| {
        child_sleep(Duration::from_secs(10));
        0
    });
    let pid = child.pid();
    let started = process::start_time(pid).unwrap().unwrap();
    assert!(process::is_alive(pid, started));
    // Kill it but do not reap it yet: a zombie still has /proc/<pid>/stat, and is dead.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while process::stat(pid).unwrap().is_some_and(|s| s.state != 'Z') {
        assert!(
            std::time::Instant::now() < deadline,
            "never became a zombie"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(!process::is_alive(pid, started), "a zombie is not alive");
    assert_eq!(
        child.wait(Duration::from_secs(10)),
        ChildEnd::Signaled(nix::sys::signal::SIGKILL)
    );
    assert_eq!(process::start_time(pid).unwrap(), None);
    assert!(!process::is_alive(pid, started));
}

/// A process whose main thread has exited on its own while another thread runs is alive,
/// though `/proc/<pid>/stat` shows its main thread as a zombie; once killed it is not.
#[test]
fn a_zombie_main_thread_with_a_running_thread_is_alive() {
    extern "C" fn sleeper(_: *mut libc::c_void) -> *mut libc::c_void {
        child_sleep(Duration::from_secs(20));
        std::ptr::null_mut()
    }
    let mut child = fork_child(|| {
        let mut t: libc::pthread_t = 0;
        // SAFETY: a thread that only sleeps; then the raw `exit` system call ends the calling
        // (main) thread alone, without unwinding anything.
        unsafe {
            if libc::pthread_create(&mut t, std::ptr::null(), sleeper, std::ptr::null_mut()) != 0 {
                return 2;
            }
            libc::syscall(libc::SYS_exit, 0);
        }
        3
    });
    let pid = child.pid();
    let started = process::start_time(pid).unwrap().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while process::stat(pid).unwrap().is_some_and(|s| s.state != 'Z') {
        assert!(
            std::time::Instant::now() < deadline,
            "the main thread never exited"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        process::is_alive(pid, started),
        "its other thread runs: {:?}",
        process::stat(pid)
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    assert_eq!(
        child.wait(Duration::from_secs(10)),
        ChildEnd::Signaled(nix::sys::signal::SIGKILL)
    );
    assert!(!process::is_alive(pid, started));
}

#[test]
fn error_exposes_its_parts_and_converts_to_io() {
    let err = OwnedShmId::create(Key::PRIVATE, 0, Mode::new(0o600)).unwrap_err();
    assert_eq!(err.op(), "shmget");
    assert_eq!(err.args(), "key=IPC_PRIVATE, size=0, mode=0o600");
    assert_eq!(err.errno(), Errno::EINVAL);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.hint(), Some("size must be at least 1 byte"));
    assert_eq!(
        err.to_string(),
        "shmget(key=IPC_PRIVATE, size=0, mode=0o600): EINVAL: size must be at least 1 byte"
    );
    let io: std::io::Error = err.clone().into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    assert!(io.to_string().starts_with("shmget("));
    let inner = io
        .get_ref()
        .unwrap()
        .downcast_ref::<shmchan_os::Error>()
        .unwrap();
    assert_eq!(inner.errno(), Errno::EINVAL);
}

#[test]
fn limits_are_read_from_proc() {
    let msgmax = limits::msgmax().unwrap();
    let text = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    assert_eq!(msgmax, text.trim().parse::<u64>().unwrap());
    assert!(limits::msgmnb().unwrap() >= 1);
    assert!(limits::msgmni().is_some());
    assert!(limits::shmmax().is_some());
    assert!(limits::shmall().is_some());
    let sem = limits::sem().unwrap();
    assert!(sem.semmni > 0 && sem.semmns > 0);
    assert!(limits::mq_msgsize_max().unwrap() > 0);
    assert!(limits::mq_queues_max().is_some());
}

/// The kernel release as (major, minor), from `/proc/sys/kernel/osrelease`.
fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = rel
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[test]
fn futex_waitv_probe_agrees_with_the_kernel_release() {
    // Linux 5.16 added futex_waitv; a seccomp filter may still forbid it (an error).
    match shmchan_os::futex::futex_waitv_supported() {
        Ok(has) => assert_eq!(has, kernel_version() >= (5, 16), "{:?}", kernel_version()),
        Err(e) => assert_eq!(e.errno(), Errno::EPERM, "{e}"),
    }
}

#[test]
fn membarrier_query_agrees_with_the_kernel_release() {
    use shmchan_os::membarrier::{membarrier_query, MembarrierCmd};
    // Linux 4.14 added the private expedited command (4.3 the call itself).
    match membarrier_query() {
        Ok(Some(cmds)) => assert_eq!(
            cmds.contains(MembarrierCmd::PRIVATE_EXPEDITED),
            kernel_version() >= (4, 14),
            "{cmds:?}"
        ),
        Ok(None) => assert!(kernel_version() < (4, 3)),
        Err(e) => assert_eq!(e.errno(), Errno::EPERM, "{e}"),
    }
}
