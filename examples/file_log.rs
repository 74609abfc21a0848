//! A file-backed channel outlives its processes: a producer writes log records and exits, a
//! restarted producer appends more, and a consumer started later receives everything that was
//! committed, in order. Each step opens the log or creates it (`open_or_create`), so the steps
//! can run in any order.
//!
//! ```text
//! cargo run --example file_log               # runs the three steps, one after the other
//! cargo run --example file_log -- produce PATH FROM N
//! cargo run --example file_log -- consume PATH
//! ```

use std::process::Command;

use shmchan::{Backing, Channel, RecvTimeoutError, WhenPeersLeave};

#[derive(Clone, Copy, Debug, shmchan::Pod, shmchan::Zeroable)]
#[bytemuck(crate = "shmchan::bytemuck")]
#[repr(C)]
struct LogLine {
    seq: u64,
    level: u32,
    len: u32,
    text: [u8; 48],
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("produce") => produce(&args[2], args[3].parse()?, args[4].parse()?),
        Some("consume") => consume(&args[2]),
        _ => {
            let path =
                std::env::temp_dir().join(format!("shmchan-file-log-{}", std::process::id()));
            let path_s = path.to_str().ok_or("temp path is not UTF-8")?.to_owned();
            let exe = std::env::current_exe()?;
            let run = |a: &[&str]| Command::new(&exe).args(a).status();
            let result = (|| -> Result<(), Box<dyn std::error::Error>> {
                for from in ["0", "500"] {
                    if !run(&["produce", &path_s, from, "500"])?.success() {
                        return Err("producer failed".into());
                    }
                }
                println!(
                    "file_log: both producers have exited; {} stays behind",
                    path.display()
                );
                if !run(&["consume", &path_s])?.success() {
                    return Err("consumer failed".into());
                }
                Ok(())
            })();
            let _ = std::fs::remove_file(&path);
            result
        }
    }
}

/// The log: every step asks for the same shape.
fn log(path: &str) -> shmchan::Builder<LogLine> {
    Channel::<LogLine>::builder()
        .capacity(1024)
        .backing(Backing::file(path))
}

fn produce(path: &str, from: u64, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    // Files are kept by default (Cleanup::Keep): the log exists to outlive this process. A
    // producer waits for the next consumer when none is there (it fills the log, then waits),
    // rather than taking a consumer that came and went for the end of the log.
    let mut tx = log(path)
        .when_peers_leave(WhenPeersLeave::Wait)
        .open_or_create_sender()?;
    for seq in from..from + n {
        let msg = format!("request {seq} served");
        let mut slot = tx.reserve().map_err(|e| e.to_string())?; // written in place
        slot.seq = seq;
        slot.level = if seq % 100 == 0 { 2 } else { 1 };
        slot.len = msg.len() as u32;
        slot.text = [0; 48];
        slot.text[..msg.len()].copy_from_slice(msg.as_bytes());
        slot.commit();
    }
    tx.sync()?; // msync: the records are on disk, not only in the page cache
    println!(
        "producer (pid {}): committed records {from}..{} to {path} and exits",
        std::process::id(),
        from + n
    );
    Ok(())
}

fn consume(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    // The default rule: once the producers have left, the consumer drains the log and ends.
    let mut rx = log(path).open_or_create_receiver()?;
    let (mut count, mut warnings) = (0u64, 0u64);
    let mut last = None;
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(5)) {
            Ok(line) => {
                if line.seq != count {
                    return Err(format!("expected record {count}, got {}", line.seq).into());
                }
                count += 1;
                warnings += u64::from(line.level == 2);
                last = Some(line);
            }
            // The producers are long gone: everything they committed has been received.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => return Err(e.to_string().into()),
        }
    }
    let text = last.map(|l| String::from_utf8_lossy(&l.text[..l.len as usize]).into_owned());
    println!(
        "consumer (pid {}): received {count} records ({warnings} warnings) from {path}; last: {:?}",
        std::process::id(),
        text.unwrap_or_default()
    );
    Ok(())
}
