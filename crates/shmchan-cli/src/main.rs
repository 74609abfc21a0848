//! The `shmchan` command (work in progress: see the issue tracker).

fn main() {
    eprintln!("shmchan: no subcommands yet");
    std::process::exit(2);
}
