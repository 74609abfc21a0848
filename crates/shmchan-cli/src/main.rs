//! `shmchan`: benchmark shmchan against the kernel's own IPC in one run, and list, inspect and
//! remove the channels on this machine (ipcs/ipcrm for channels).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod bench;

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
    /// List the shmchan channels on this machine.
    Ls(admin::LsArgs),
    /// Show everything a channel's header says.
    Stat(admin::StatArgs),
    /// Remove a channel (refused while a live endpoint is attached, unless --force).
    Rm(admin::RmArgs),
}

/// Why a command failed (printed as `shmchan: …`, exit status 1).
#[derive(Debug, thiserror::Error)]
enum Error {
    /// `bench` arguments that name nothing.
    #[error(transparent)]
    Bench(#[from] bench::ArgError),
    /// `ls`, `stat`, `rm`.
    #[error(transparent)]
    Admin(#[from] admin::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r: Result<ExitCode, Error> = match cli.command {
        Command::Bench(a) => bench::run(a).map_err(Error::from),
        Command::Ls(a) => admin::ls(a).map_err(Error::from),
        Command::Stat(a) => admin::stat(a).map_err(Error::from),
        Command::Rm(a) => admin::rm(a).map_err(Error::from),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shmchan: {e}");
            ExitCode::from(1)
        }
    }
}
