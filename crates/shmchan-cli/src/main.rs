//! `shmchan`: benchmark shmchan against the kernel's own IPC in one run; list, inspect, watch,
//! prune and remove the channels on this machine (ipcs/ipcrm/top for channels); and find what
//! on this machine blocks them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod bench;
mod doctor;

/// Typed, zero-copy channels between Linux processes over shared memory.
#[derive(Parser, Debug)]
#[command(name = "shmchan", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure shmchan against pipe, FIFO, Unix socket and message queues, in one run.
    Bench(bench::BenchArgs),
    /// List channels: every SysV one, or those named (keys, id:SHMID, files, directories).
    Ls(admin::ls::LsArgs),
    /// Show everything a channel's header says, and who owns and attaches it.
    Stat(admin::ls::StatArgs),
    /// Remove a channel (refused while a live endpoint is attached, unless --force).
    Rm(admin::rm::RmArgs),
    /// Watch channels live: fill, its change, sleeps and doorbell posts per second, endpoints.
    Top(admin::top::TopArgs),
    /// Remove channels that no live process uses (a dry run unless --yes).
    Prune(admin::rm::PruneArgs),
    /// Check what on this machine blocks channels: /dev/shm, IPC limits, namespace, syscalls.
    Doctor(doctor::DoctorArgs),
}

/// Why a command failed (printed as `shmchan: …`, exit status 1).
#[derive(Debug, thiserror::Error)]
enum Error {
    /// `bench` arguments that name nothing.
    #[error(transparent)]
    Bench(#[from] bench::ArgError),
    /// `ls`, `stat`, `rm`, `top`, `prune`.
    #[error(transparent)]
    Admin(#[from] admin::Error),
}

/// Lets a closed standard output end the process quietly (`shmchan ls | head -1`), as it ends
/// `ls` or `cat`: Rust starts programs with `SIGPIPE` ignored, which turns the first write
/// after the reader left into a panic. Not for `bench`, whose pipe baselines rely on `EPIPE`
/// (its `--list` calls this itself), nor for `top`, which ends on `EPIPE` with status 0.
pub(crate) fn die_quietly_on_a_closed_stdout() {
    // SAFETY: restoring the default disposition installs no handler: nothing runs in signal
    // context, and no other thread of this process depends on SIGPIPE being ignored yet.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Bench(_) | Command::Top(_)) {
        die_quietly_on_a_closed_stdout();
    }
    let r: Result<ExitCode, Error> = match cli.command {
        Command::Bench(a) => bench::run(a).map_err(Error::from),
        Command::Ls(a) => admin::ls::ls(a).map_err(Error::from),
        Command::Stat(a) => admin::ls::stat(a).map_err(Error::from),
        Command::Rm(a) => admin::rm::rm(a).map_err(Error::from),
        Command::Top(a) => admin::top::top(a).map_err(Error::from),
        Command::Prune(a) => admin::rm::prune(a).map_err(Error::from),
        Command::Doctor(a) => Ok(doctor::run(a)),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shmchan: {e}");
            ExitCode::from(1)
        }
    }
}
