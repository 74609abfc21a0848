//! The child program of the lifecycle suite (`tests/lifecycle.rs`): processes that start, stop
//! and restart around one named channel. Each role reports on stdout; a non-zero exit status
//! means failure, with the reason on stderr.
//!
//! Roles (RULE is `disconnect` or `wait`, see `shmchan::WhenPeersLeave`):
//! - `send BACKING KIND DOORBELL DELAY_MS FROM N RULE`: sleep DELAY_MS, `open_or_create` a
//!   sender (capacity 64), send `Rec::new(1, FROM..FROM+N)`, print `sent N`, and exit
//!   normally (the sender is dropped: a close).
//! - `recv BACKING KIND DOORBELL DELAY_MS FROM N RULE`: sleep DELAY_MS, `open_or_create` a
//!   receiver, receive N records and check that they are `FROM..FROM+N` in order, print
//!   `received N`, and exit normally.
//! - `fork-misuse KIND`: an anonymous channel; the parent takes a sender and a receiver and
//!   forks. The child's inherited endpoints must refuse every call with `Forked`, dropping them
//!   must not unregister the parent's, and an endpoint the child takes itself must work. Prints
//!   `ok`.

use std::time::Duration;

use shmchan::{
    Backing, Channel, RecvTimeoutError, SendError, TryRecvError, TrySendError, WhenPeersLeave,
};
use shmchan_tests::{parse_backing, parse_doorbell, parse_kind, Rec};

fn fail(msg: String) -> ! {
    eprintln!("lifecycle child: {msg}");
    std::process::exit(1);
}

fn builder(kind: &str, doorbell: &str, rule: &str) -> shmchan::Builder<Rec> {
    let rule = match rule {
        "wait" => WhenPeersLeave::Wait,
        "disconnect" => WhenPeersLeave::Disconnect,
        r => fail(format!("unknown rule {r:?}")),
    };
    let b = Channel::<Rec>::builder()
        .capacity(64)
        .doorbell(parse_doorbell(doorbell))
        .when_peers_leave(rule);
    match parse_kind(kind) {
        shmchan::RingKind::Spsc => b.spsc(),
        _ => b.mpmc(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| -> &str {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| fail(format!("missing argument {i}")))
    };
    let num = |i: usize| -> u64 {
        a(i).parse()
            .unwrap_or_else(|e| fail(format!("argument {i}: {e}")))
    };
    match a(0) {
        "send" => {
            std::thread::sleep(Duration::from_millis(num(4)));
            let b = builder(a(2), a(3), a(7)).backing(parse_backing(a(1)));
            let mut tx = b
                .open_or_create_sender()
                .unwrap_or_else(|e| fail(format!("open_or_create_sender: {e}")));
            let (from, n) = (num(5), num(6));
            for seq in from..from + n {
                if let Err(e) = tx.send(Rec::new(1, seq)) {
                    fail(format!("send {seq}: {e}"));
                }
            }
            println!("sent {n}");
        }
        "recv" => {
            std::thread::sleep(Duration::from_millis(num(4)));
            let b = builder(a(2), a(3), a(7)).backing(parse_backing(a(1)));
            let mut rx = b
                .open_or_create_receiver()
                .unwrap_or_else(|e| fail(format!("open_or_create_receiver: {e}")));
            let (from, n) = (num(5), num(6));
            for seq in from..from + n {
                match rx.recv_timeout(Duration::from_secs(30)) {
                    Ok(r) if r == Rec::new(1, seq) => {}
                    Ok(r) => fail(format!("expected record {seq}, got {r:?}")),
                    Err(e) => fail(format!("receiving record {seq}: {e}")),
                }
            }
            println!("received {n}");
        }
        "fork-misuse" => fork_misuse(parse_kind(a(1))),
        r => fail(format!("unknown role {r:?}")),
    }
}

fn fork_misuse(kind: shmchan::RingKind) {
    let b = Channel::<u64>::builder().backing(Backing::anonymous());
    let chan = match kind {
        shmchan::RingKind::Spsc => b.spsc(),
        _ => b.mpmc(),
    }
    .create()
    .unwrap_or_else(|e| fail(format!("create: {e}")));
    let mut tx = chan.sender().unwrap();
    let mut rx = chan.receiver().unwrap();
    tx.send(1).unwrap();
    // SAFETY: this program is single-threaded; the child only runs code of this function and
    // exits with `_exit`.
    match unsafe { nix::unistd::fork() }.unwrap_or_else(|e| fail(format!("fork: {e}"))) {
        nix::unistd::ForkResult::Child => {
            let code = match fork_child(&chan, tx, rx) {
                Ok(()) => 0,
                Err(msg) => {
                    eprintln!("lifecycle child (forked): {msg}");
                    1
                }
            };
            shmchan_os::process::_exit(code);
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None)
                .unwrap_or_else(|e| fail(format!("waitpid: {e}")));
            if !matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)) {
                fail(format!("the forked child failed: {status:?}"));
            }
            // The child's drop of its copies did not unregister ours: both still work, and
            // each side still sees the other.
            if rx.is_disconnected() || tx.is_disconnected() {
                fail("the child's drop of inherited endpoints disconnected the parent's".into());
            }
            let mut got = Vec::new();
            while let Ok(v) = rx.try_recv() {
                got.push(v);
            }
            let want: &[u64] = match kind {
                // The child could not take a second SPSC sender; it sent nothing.
                shmchan::RingKind::Spsc => &[1],
                _ => &[1, 7],
            };
            if got != want {
                fail(format!("received {got:?}, expected {want:?}"));
            }
            tx.send(2).unwrap();
            if rx.recv_timeout(Duration::from_secs(5)) != Ok(2) {
                fail("the parent's endpoints stopped working after the fork".into());
            }
            drop(tx);
            if rx.recv_timeout(Duration::from_secs(5)) != Err(RecvTimeoutError::Disconnected) {
                fail("the parent's sender did not leave when dropped".into());
            }
            println!("ok");
        }
    }
}

/// What the forked child checks (see `fork-misuse`).
fn fork_child(
    chan: &Channel<u64>,
    mut tx: shmchan::Sender<u64>,
    mut rx: shmchan::Receiver<u64>,
) -> Result<(), String> {
    match tx.send(5) {
        Err(SendError::Forked(5)) => {}
        r => return Err(format!("send on an inherited sender: {r:?}")),
    }
    match tx.try_send(5) {
        Err(TrySendError::Forked(5)) => {}
        r => return Err(format!("try_send on an inherited sender: {r:?}")),
    }
    match rx.try_recv() {
        Err(TryRecvError::Forked) => {}
        r => return Err(format!("try_recv on an inherited receiver: {r:?}")),
    }
    if !tx.arm() || !rx.arm() {
        return Err("arm on an inherited endpoint must report ready (to surface the error)".into());
    }
    let e = tx.send(5).unwrap_err();
    if !e.to_string().contains("fork") {
        return Err(format!("the error does not say what happened: {e}"));
    }
    drop((tx, rx));
    // Endpoints the child takes itself are its own.
    match chan.kind() {
        shmchan::RingKind::Spsc => match chan.sender() {
            Err(shmchan::OpenError::EndpointTaken { .. }) => Ok(()),
            r => Err(format!(
                "a second SPSC sender in the child: {:?}",
                r.map(|_| ())
            )),
        },
        _ => {
            let mut own = chan.sender().map_err(|e| format!("own sender: {e}"))?;
            own.send(7).map_err(|e| format!("own sender's send: {e}"))
        }
    }
}
