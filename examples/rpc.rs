//! Request/response between processes: one server process answers several client processes,
//! each over its own duplex (a request and a response byte channel, `shmchan::duplex`).
//!
//! Each client sends arithmetic requests — some one call at a time, some pipelined four deep —
//! and checks that every answer is its own: the response names the client and the request
//! number, carries the right sum, and comes back under the request's correlation id.
//!
//! ```text
//! cargo run --release --example rpc              # a server and 4 clients, 20000 calls each
//! cargo run --release --example rpc -- 8 5000    # 8 clients, 5000 calls each
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmchan::duplex::{CallError, Client, Server};
use shmchan::{Backing, Bytes, Channel};

/// A request: which client, which call, and two numbers to add.
const REQ_LEN: usize = 24;
/// A response: the client and call echoed, and the sum.
const RESP_LEN: usize = 16;

fn encode_req(client: u32, call: u32, a: u64, b: u64) -> [u8; REQ_LEN] {
    let mut m = [0u8; REQ_LEN];
    m[0..4].copy_from_slice(&client.to_le_bytes());
    m[4..8].copy_from_slice(&call.to_le_bytes());
    m[8..16].copy_from_slice(&a.to_le_bytes());
    m[16..24].copy_from_slice(&b.to_le_bytes());
    m
}

fn u32_at(m: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(m[at..at + 4].try_into().unwrap_or_default())
}

fn u64_at(m: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(m[at..at + 8].try_into().unwrap_or_default())
}

/// The server's handler: answers in place (no copy of either message).
fn handle(req: &[u8], resp: &mut [u8]) -> usize {
    if req.len() != REQ_LEN || resp.len() < RESP_LEN {
        return 0; // an empty answer: the client reports the malformed request
    }
    resp[0..8].copy_from_slice(&req[0..8]);
    let sum = u64_at(req, 8).wrapping_add(u64_at(req, 16));
    resp[8..16].copy_from_slice(&sum.to_le_bytes());
    RESP_LEN
}

fn paths(dir: &Path, client: u32) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("client-{client}.req")),
        dir.join(format!("client-{client}.resp")),
    )
}

/// Checks one response against the request it answers.
fn check(client: u32, call: u32, a: u64, b: u64, resp: &[u8]) -> Result<(), String> {
    if resp.len() != RESP_LEN
        || u32_at(resp, 0) != client
        || u32_at(resp, 4) != call
        || u64_at(resp, 8) != a.wrapping_add(b)
    {
        return Err(format!(
            "client {client} call {call}: wrong answer {resp:?}"
        ));
    }
    Ok(())
}

fn client(dir: &Path, me: u32, calls: u32) -> Result<(), Box<dyn std::error::Error>> {
    let (req, resp) = paths(dir, me);
    let tx = Channel::<Bytes>::builder()
        .backing(Backing::file(&req))
        .open_sender()?;
    let rx = Channel::<Bytes>::builder()
        .backing(Backing::file(&resp))
        .open_receiver()?;
    let mut c = Client::new(tx, rx);
    let timeout = Duration::from_secs(10);
    let t0 = Instant::now();
    let mut call = 0u32;
    // First half: one call at a time.
    while call < calls / 2 {
        let (a, b) = (u64::from(me) << 32 | u64::from(call), u64::from(call) * 3);
        let answer = c.call(&encode_req(me, call, a, b), timeout)?;
        check(me, call, a, b, &answer)?;
        call += 1;
    }
    // Second half: pipelined, four requests in flight, matched by correlation id.
    while call < calls {
        let n = (calls - call).min(4);
        let mut sent = Vec::new();
        for k in call..call + n {
            let (a, b) = (u64::from(k), u64::from(me));
            sent.push((c.send_request(&encode_req(me, k, a, b))?, k, a, b));
        }
        for &(id, k, a, b) in &sent {
            let (got, answer) = c.recv_response(timeout)?;
            if got != id {
                return Err(format!("client {me}: response id {got}, expected {id}").into());
            }
            check(me, k, a, b, &answer)?;
        }
        call += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "client {me}: {calls} answers, all its own ({:.0} calls/s)",
        f64::from(calls) / secs
    );
    Ok(())
}

fn server(clients: u32, calls: u32) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("shmchan-rpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        // One duplex per client: the server creates both channels, each client opens them.
        let mut servers = Vec::new();
        for i in 0..clients {
            let (req, resp) = paths(&dir, i);
            let rx = Channel::<Bytes>::builder()
                .max_message(64)
                .capacity(64)
                .backing(Backing::file(&req))
                .create_receiver()?;
            let tx = Channel::<Bytes>::builder()
                .max_message(64)
                .capacity(64)
                .backing(Backing::file(&resp))
                .create_sender()?;
            servers.push(Server::new(rx, tx));
        }
        let exe = std::env::current_exe()?;
        let dir_s = dir.to_str().ok_or("temp path is not UTF-8")?;
        let t0 = Instant::now();
        let mut children = Vec::new();
        for i in 0..clients {
            children.push(
                Command::new(&exe)
                    .args(["client", dir_s, &i.to_string(), &calls.to_string()])
                    .stdout(Stdio::inherit())
                    .spawn()?,
            );
        }
        // One thread per client; each serves until its client disconnects (or, should a
        // client die before it connected, until every client process has exited).
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut failed = 0;
        let served: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = servers
                .into_iter()
                .map(|mut srv| {
                    let stop = &stop;
                    s.spawn(move || {
                        let mut n = 0u64;
                        loop {
                            match srv.serve_one_timeout(Duration::from_millis(200), handle) {
                                Ok(()) => n += 1,
                                Err(CallError::Timeout)
                                    if !stop.load(std::sync::atomic::Ordering::Relaxed) => {}
                                Err(CallError::Disconnected | CallError::Timeout) => return n,
                                Err(e) => {
                                    eprintln!("server: {e}");
                                    return n;
                                }
                            }
                        }
                    })
                })
                .collect();
            for c in &mut children {
                if !c.wait().is_ok_and(|st| st.success()) {
                    failed += 1;
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        let secs = t0.elapsed().as_secs_f64();
        let total: u64 = served.iter().sum();
        println!(
            "rpc: the server answered {total} requests from {clients} client processes in {secs:.2} s \
             ({:.0} calls/s); per client: {served:?}",
            total as f64 / secs
        );
        if failed > 0 {
            return Err(format!("{failed} client(s) failed").into());
        }
        if served.iter().any(|&n| n != u64::from(calls)) {
            return Err("a client was not served every call".into());
        }
        println!("rpc: every client got its own answers");
        Ok(())
    })();
    for i in 0..clients {
        let (req, resp) = paths(&dir, i);
        let _ = shmchan::remove(&Backing::file(req));
        let _ = shmchan::remove(&Backing::file(resp));
    }
    let _ = std::fs::remove_dir(&dir);
    result
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        let (dir, me, calls) = (PathBuf::from(&args[2]), args[3].parse()?, args[4].parse()?);
        return client(&dir, me, calls);
    }
    let clients = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let calls = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    server(clients, calls)
}
