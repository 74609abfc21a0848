//! A fork-based worker pool: one anonymous MPMC job queue, N competing workers, one result
//! queue.
//!
//! ```text
//! cargo run --release --example fork_pool [WORKERS] [JOBS]
//! ```
//!
//! The parent creates both channels in anonymous shared memory *before* forking, so every
//! child inherits them. The parent is single-threaded when it forks, so the children may use
//! the channels freely (see the `Channel` docs for what a child of a multi-threaded parent may
//! do).

use std::collections::HashMap;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use shmchan::{Backing, Channel};

#[derive(Clone, Copy, Debug, shmchan::Pod, shmchan::Zeroable)]
#[bytemuck(crate = "shmchan::bytemuck")]
#[repr(C)]
struct Job {
    id: u64,
    n: u64,
}

#[derive(Clone, Copy, Debug, shmchan::Pod, shmchan::Zeroable)]
#[bytemuck(crate = "shmchan::bytemuck")]
#[repr(C)]
struct Done {
    id: u64,
    collatz_steps: u64,
    worker: u32,
    _pad: u32,
}

fn collatz(mut n: u64) -> u64 {
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let workers: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let jobs: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);

    let job_q = Channel::<Job>::builder()
        .capacity(1024)
        .backing(Backing::anonymous())
        .mpmc()
        .create()?;
    let done_q = Channel::<Done>::builder()
        .capacity(1024)
        .backing(Backing::anonymous())
        .mpmc()
        .create()?;

    let mut children = Vec::new();
    for w in 0..workers {
        // SAFETY: this program has no other threads, so the child may do anything.
        match unsafe { fork() }? {
            ForkResult::Child => {
                let code = match worker(w, &job_q, &done_q) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("worker {w}: {e}");
                        1
                    }
                };
                // SAFETY: `_exit` ends the child without running the parent's atexit handlers
                // (the worker's endpoints were dropped when `worker` returned).
                unsafe { libc::_exit(code) };
            }
            ForkResult::Parent { child } => children.push(child),
        }
    }

    let mut tx = Some(job_q.sender()?);
    let mut rx = done_q.receiver()?;
    drop((job_q, done_q)); // the endpoints keep the memory mapped
    let (mut next, mut got) = (0u64, HashMap::new());
    let mut per_worker = vec![0u64; workers as usize];
    let mut record = |d: Done| -> Result<(), String> {
        if got.insert(d.id, d.collatz_steps).is_some() {
            return Err(format!("job {} came back twice", d.id));
        }
        per_worker[d.worker as usize] += 1;
        Ok(())
    };
    let mut received = 0u64;
    // One thread feeds jobs and collects results: send what fits, then drain what came back.
    while received < jobs {
        if let Some(t) = tx.as_mut() {
            while next < jobs {
                match t.try_send(Job {
                    id: next,
                    n: next + 1,
                }) {
                    Ok(()) => next += 1,
                    Err(shmchan::TrySendError::Full(_)) => break,
                    Err(e) => return Err(e.to_string().into()),
                }
            }
            if next == jobs {
                tx = None; // no more jobs: workers drain the queue, then see Disconnected
            }
        }
        match rx.recv_timeout(std::time::Duration::from_millis(1)) {
            Ok(d) => {
                record(d)?;
                received += 1;
            }
            Err(shmchan::RecvTimeoutError::Timeout) => {}
            Err(e) => return Err(e.to_string().into()),
        }
        for d in rx.try_iter() {
            record(d)?;
            received += 1;
        }
    }
    for c in children {
        match waitpid(c, None)? {
            WaitStatus::Exited(_, 0) => {}
            s => return Err(format!("worker {c}: {s:?}").into()),
        }
    }
    let wrong = got
        .iter()
        .filter(|(&id, &steps)| collatz(id + 1) != steps)
        .count();
    let longest = got
        .iter()
        .max_by_key(|(_, &s)| s)
        .map(|(&id, &s)| (id + 1, s));
    println!(
        "fork_pool: {workers} workers finished {} of {jobs} jobs, {wrong} wrong",
        got.len()
    );
    println!("jobs per worker: {per_worker:?}");
    if let Some((n, s)) = longest {
        println!("longest Collatz chain below {}: {n} ({s} steps)", jobs + 1);
    }
    if wrong != 0 || got.len() as u64 != jobs {
        return Err("results missing or wrong".into());
    }
    Ok(())
}

fn worker(
    w: u32,
    jobs: &Channel<Job>,
    done: &Channel<Done>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rx = jobs.receiver()?;
    let mut tx = done.sender()?;
    for job in rx.iter() {
        let d = Done {
            id: job.id,
            collatz_steps: collatz(job.n),
            worker: w,
            _pad: 0,
        };
        tx.send(d).map_err(|e| e.to_string())?;
    }
    Ok(())
}
