//! Errors that say what is wrong: each case below used to be reported as something else (a
//! corrupted channel, a missing channel, a creator that never finished).

use std::time::Duration;

use shmchan::{Backing, Channel, OpenError};
use shmchan_tests::{KeyGuard, TempPath};

/// A file that is not a channel is "not a shmchan channel" on open, as on create and remove.
#[test]
fn a_text_file_is_not_a_channel_on_open() {
    let p = TempPath::new("errors-text");
    std::fs::write(p.path(), "myhost.example\n".repeat(400)).unwrap();
    let e = Channel::<u64>::builder()
        .backing(Backing::file(p.path()))
        .open()
        .unwrap_err();
    assert!(matches!(e, OpenError::Foreign { .. }), "{e:?}");
    assert!(e.to_string().contains("is not a shmchan channel"), "{e}");
    let r = shmchan::remove(&Backing::file(p.path())).unwrap_err();
    assert!(matches!(r, OpenError::Foreign { .. }), "{r:?}");
    assert!(p.path().exists(), "left untouched");
}

/// A file of zeros (no creator is writing it) is reported as such, not as a creator that did
/// not finish in time.
#[test]
fn a_file_of_zeros_says_its_header_is_zeros() {
    let p = TempPath::new("errors-zeros");
    std::fs::write(p.path(), vec![0u8; 1 << 20]).unwrap();
    let e = Channel::<u64>::builder()
        .backing(Backing::file(p.path()))
        .open_timeout(Duration::from_millis(20))
        .open()
        .unwrap_err();
    assert!(matches!(e, OpenError::Foreign { .. }), "{e:?}");
    assert!(e.to_string().contains("header is all zeros"), "{e}");
}

/// Creating in a directory that does not exist names the directory.
#[test]
fn creating_in_a_missing_directory_names_it() {
    let dir = TempPath::new("errors-nodir");
    let path = dir.path().join("chan");
    let e = Channel::<u64>::builder()
        .backing(Backing::file(&path))
        .create()
        .unwrap_err();
    assert!(matches!(e, OpenError::InvalidConfig { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("does not exist") && msg.contains(&dir.path().display().to_string()),
        "{msg}"
    );
}

/// `Backing::sysv_key(0)` is IPC_PRIVATE in disguise: refused, pointing to `sysv_private`.
#[test]
fn sysv_key_zero_is_refused() {
    for create in [true, false] {
        let b = Channel::<u64>::builder().backing(Backing::sysv_key(0));
        let e = if create {
            b.create().err()
        } else {
            b.open().err()
        }
        .expect("refused");
        assert!(matches!(e, OpenError::InvalidConfig { .. }), "{e:?}");
        assert!(e.to_string().contains("sysv_private"), "{e}");
    }
}

/// A SysV path backing on a path that does not exist: creating says the path must exist
/// (instead of "no channel at ftok path"); opening finds no channel, and says why.
#[test]
fn sysv_path_must_exist() {
    let p = TempPath::new("errors-ftok");
    let b = || {
        Channel::<u64>::builder()
            .backing(Backing::sysv_path(p.path(), b'e'))
            .open_timeout(Duration::from_millis(20))
    };
    let e = b().create().unwrap_err();
    assert!(matches!(e, OpenError::InvalidConfig { .. }), "{e:?}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    let e = b().open().unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    // An existing path works (and the key it gives is cleaned up).
    std::fs::write(p.path(), b"").unwrap();
    let key = shmchan::os::ftok(p.path(), b'e').unwrap();
    let _g = KeyGuard(key.raw());
    let chan = b().create().unwrap();
    drop(chan);
}
