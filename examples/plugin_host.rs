//! A plugin host: an async (tokio) process hands two byte channels to a plugin process it
//! spawns, over a Unix socket, and serves the plugin's requests without parking a thread.
//!
//! - The channels live in sealed `memfd`s (`Backing::memfd`) with the `EventFd` doorbell: no
//!   name anybody could open, nothing to clean up even after `kill -9`, and descriptors a
//!   tokio reactor can wait on.
//! - The host listens on a Unix socket; the plugin connects, and the host sends it both
//!   channels (`Channel::share`, `SCM_RIGHTS`); the plugin opens them with `Backing::receive`.
//! - The plugin is a plain blocking `duplex::Client`; the host answers with
//!   `shmchan::tokio::{AsyncReceiver, AsyncSender}` in one task, while another task of the
//!   same single-threaded runtime keeps ticking.
//!
//! ```text
//! cargo run --release --example plugin_host            # 10000 requests
//! cargo run --release --example plugin_host -- 500
//! ```

use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::time::{Duration, Instant};

use shmchan::duplex::{Client, ID_LEN};
use shmchan::tokio::{AsyncReceiver, AsyncSender};
use shmchan::{Backing, Bytes, Channel, Doorbell, RecvError};

type Error = Box<dyn std::error::Error>;

/// The plugin: connects, receives the two channels, and makes `n` calls.
fn plugin(sock_path: &str, n: u64) -> Result<(), Error> {
    let sock = UnixStream::connect(sock_path)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let requests = Channel::<Bytes>::builder()
        .backing(Backing::receive(&sock)?)
        .open_sender()?;
    let responses = Channel::<Bytes>::builder()
        .backing(Backing::receive(&sock)?)
        .open_receiver()?;
    let mut host = Client::new(requests, responses);
    let t0 = Instant::now();
    for i in 0..n {
        let text = format!("plugin {} says hello #{i}", std::process::id());
        let answer = host.call(text.as_bytes(), Duration::from_secs(10))?;
        if answer != text.to_uppercase().as_bytes() {
            return Err(format!(
                "call {i}: wrong answer {:?}",
                String::from_utf8_lossy(&answer)
            )
            .into());
        }
    }
    println!(
        "plugin: {n} calls answered correctly ({:.1} µs per call)",
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    Ok(())
}

/// The host: creates the channels, spawns the plugin, hands them over, serves asynchronously.
fn host(n: u64) -> Result<(), Error> {
    let sock_path =
        std::env::temp_dir().join(format!("shmchan-plugin-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock_path);
    let listener = UnixListener::bind(&sock_path)?;
    let make = |name: &str| {
        Channel::<Bytes>::builder()
            .max_message(256)
            .capacity(64)
            .backing(Backing::memfd(name))
            .doorbell(Doorbell::EventFd)
            .create()
    };
    let (requests, responses) = (make("plugin-requests")?, make("plugin-responses")?);
    let exe = std::env::current_exe()?;
    let sock_s = sock_path.to_str().ok_or("temp path is not UTF-8")?;
    let mut child = Command::new(exe)
        .args(["plugin", sock_s, &n.to_string()])
        .spawn()?;
    // Hand both channels over, then forget the socket file: nothing else is named.
    let accepted = (|| -> Result<(), Error> {
        let (conn, _) = listener.accept()?;
        requests.share(&conn)?;
        responses.share(&conn)?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&sock_path);
    if let Err(e) = accepted {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(async {
        let mut rx = AsyncReceiver::new(requests.receiver()?).map_err(|(_, e)| e)?;
        let mut tx = AsyncSender::new(responses.sender()?).map_err(|(_, e)| e)?;
        // A second task on the same thread: the server never blocks the runtime.
        let ticker = tokio::spawn(async {
            let mut ticks = 0u32;
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ticks += 1;
                if ticks == u32::MAX {
                    return ticks;
                }
            }
        });
        let mut buf = Vec::with_capacity(256);
        let mut reply = Vec::with_capacity(256);
        let mut served = 0u64;
        loop {
            match rx.recv_into(&mut buf).await {
                Ok(_) => {}
                Err(RecvError::Disconnected) => break,
                Err(e) => return Err(Error::from(e)),
            }
            if buf.len() < ID_LEN {
                return Err("a request without its correlation id".into());
            }
            // The duplex framing: the request's 8-byte id, then the payload; answer in kind.
            reply.clear();
            reply.extend_from_slice(&buf[..ID_LEN]);
            reply.extend(buf[ID_LEN..].iter().map(u8::to_ascii_uppercase));
            tx.send(&reply).await?;
            served += 1;
        }
        ticker.abort();
        Ok::<u64, Error>(served)
    });
    let status = child.wait()?;
    let served = served?;
    println!(
        "host: served {served} requests from the plugin in one tokio task (current-thread runtime)"
    );
    if !status.success() || served != n {
        return Err(format!("plugin exit {status}, {served} of {n} requests served").into());
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("plugin") {
        return plugin(&args[2], args[3].parse()?);
    }
    host(
        args.get(1)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(10_000),
    )
}
