//! Three processes, stage → stage, over two SPSC channels in SysV shared memory.
//!
//! ```text
//! cargo run --release --example pipeline [RECORDS]
//! ```
//!
//! The first process (the source) creates both channels with `IPC_PRIVATE` and
//! `Cleanup::LastDetach`, so the kernel frees them when the last stage detaches, even if every
//! stage is killed. It re-executes itself twice, as the `transform` and `sink` stages, passing
//! each the shmids it needs.

use std::process::{Command, Stdio};
use std::time::Instant;

use shmchan::{Backing, Channel, Cleanup};

#[derive(Clone, Copy, Debug, shmchan::Pod, shmchan::Zeroable)]
#[bytemuck(crate = "shmchan::bytemuck")]
#[repr(C)]
struct Reading {
    seq: u64,
    celsius: f64,
}

#[derive(Clone, Copy, Debug, shmchan::Pod, shmchan::Zeroable)]
#[bytemuck(crate = "shmchan::bytemuck")]
#[repr(C)]
struct Converted {
    seq: u64,
    fahrenheit: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("transform") => transform(args[2].parse()?, args[3].parse()?),
        Some("sink") => sink(args[2].parse()?, args[3].parse()?),
        n => source(n.map(str::parse).transpose()?.unwrap_or(1_000_000)),
    }
}

fn source(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let raw = Channel::<Reading>::builder()
        .capacity(4096)
        .backing(Backing::sysv_private())
        .cleanup(Cleanup::LastDetach)
        .create()?;
    let cooked = Channel::<Converted>::builder()
        .capacity(4096)
        .backing(Backing::sysv_private())
        .cleanup(Cleanup::LastDetach)
        .create()?;
    let (raw_id, cooked_id) = (raw.shm_id().unwrap(), cooked.shm_id().unwrap());
    let mut tx = raw.sender()?;
    let exe = std::env::current_exe()?;
    let stage = |args: &[String]| Command::new(&exe).args(args).stdin(Stdio::null()).spawn();
    let mut transform = stage(&[
        "transform".into(),
        raw_id.to_string(),
        cooked_id.to_string(),
    ])?;
    let mut sink = stage(&["sink".into(), cooked_id.to_string(), n.to_string()])?;
    // Keep both segments attached until the stages have opened them: a LastDetach segment
    // is freed as soon as nothing is attached, and the stages may not have started yet.

    let t0 = Instant::now();
    for seq in 0..n {
        tx.send(Reading {
            seq,
            celsius: (seq % 100) as f64,
        })
        .map_err(|e| format!("source: {e}"))?;
    }
    drop(tx); // the transform drains, then sees Disconnected
    let ok = transform.wait()?.success() & sink.wait()?.success();
    drop((raw, cooked)); // detached: the kernel frees both segments now
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "source: sent {n} readings through 3 processes in {:.3} s ({:.2} M records/s end to end)",
        secs,
        n as f64 / secs / 1e6
    );
    if !ok {
        return Err("a stage failed".into());
    }
    Ok(())
}

fn transform(raw_id: i32, cooked_id: i32) -> Result<(), Box<dyn std::error::Error>> {
    let mut rx = Channel::<Reading>::builder()
        .backing(Backing::sysv_id(raw_id))
        .open_receiver()?;
    let mut tx = Channel::<Converted>::builder()
        .backing(Backing::sysv_id(cooked_id))
        .open_sender()?;
    let mut count = 0u64;
    for r in rx.iter() {
        let c = Converted {
            seq: r.seq,
            fahrenheit: r.celsius * 9.0 / 5.0 + 32.0,
        };
        tx.send(c).map_err(|e| format!("transform: {e}"))?;
        count += 1;
    }
    println!(
        "transform: converted {count} readings (pid {})",
        std::process::id()
    );
    Ok(())
}

fn sink(cooked_id: i32, expect: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut rx = Channel::<Converted>::builder()
        .backing(Backing::sysv_id(cooked_id))
        .open_receiver()?;
    let (mut count, mut sum) = (0u64, 0f64);
    for c in rx.iter() {
        if c.seq != count {
            return Err(format!("sink: expected seq {count}, got {}", c.seq).into());
        }
        count += 1;
        sum += c.fahrenheit;
    }
    let expected_sum: f64 = (0..expect)
        .map(|s| (s % 100) as f64 * 9.0 / 5.0 + 32.0)
        .sum();
    println!(
        "sink: received {count} of {expect} in order, mean {:.2} °F (expected {:.2}) (pid {})",
        sum / count.max(1) as f64,
        expected_sum / expect.max(1) as f64,
        std::process::id()
    );
    if count != expect {
        return Err("sink: records missing".into());
    }
    Ok(())
}
