//! shmchan beside its peers, in one run: shmchan (SPSC `send`/`recv` with the futex and the spin
//! doorbell, zero copy, MPMC, `send_batch`), ringfire, iceoryx2 and ipmpsc, a pipe, and the bare
//! cache-line ping-pong (the floor of a round trip), and bare rings of each design (the floors
//! of a ring's round trip and one-record stream).
//!
//! ```text
//! cargo run --release --manifest-path peers/Cargo.toml -- [--sizes 8,64,65536] [--duration-ms N]
//!     [--warmup-ms N] [--runs 3] [--only NAME,...] [--cpus 0,1] [--json] [--list]
//! ```
//!
//! Every figure comes from two forked processes pinned to two CPUs (see [`proc`]); the producer
//! writes every word of every record and the consumer checks every word (see [`work`]); a wrong
//! record fails the run with the contender's name. For each contender and record size: records
//! per second counted by the consumer, every contender's stream interleaved in 20 ms slices in
//! one pair of processes (see [`stream`]); for each contender: the busy round trip of an 8-byte
//! record (the peer answers at once), p50 and p99, interleaved message by message in one pair of
//! processes (see [`rtt`]; the pipe's alone). Interleaved, every contender sees the same machine. Each figure is the median of `--runs` runs (all contenders
//! are measured in turn in each run); ratios are to ringfire's throughput and to the bare
//! ping-pong's round trip of the same invocation.

mod base;
mod floor;
mod floor_stream;
mod iceoryx;
mod ipmpsc;
mod names;
mod proc;
mod report;
mod ring;
mod ringfire;
mod rtt;
mod shm;
mod stream;
mod work;

use std::time::Duration;

use shmchan::Doorbell;

use shm::{Shm, Style};
use work::{Lat, Timing, SIZES};

/// An error with its message (what a child reports crosses the process boundary as text).
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// An error saying `s`.
    pub fn msg(s: String) -> Error {
        Error(s)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every measurement needs.
pub struct Cfg {
    /// The CPUs of the two processes.
    pub cpus: [Option<usize>; 2],
    /// Warm-up and window.
    pub timing: Timing,
}

/// Who carries the records.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// shmchan in one configuration.
    Shm(Shm),
    /// shmchan's SPSC ring alone (no channel around it).
    Ring,
    /// ringfire.
    Ringfire,
    /// iceoryx2.
    Iceoryx2,
    /// ipmpsc.
    Ipmpsc,
    /// A pipe.
    Pipe,
    /// The bare cache-line ping-pong (round trip only).
    Bare,
    /// A bare ring of one design, no library: the floor of that design's round trip (see
    /// [`floor`]) and, for the cursor and stamp designs, of its one-record stream (see
    /// [`floor_stream`]).
    Floor(floor::Design),
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Contender {
    /// Its name in the table and for `--only`.
    pub name: &'static str,
    /// One line for `--list` and the JSON document.
    pub about: &'static str,
    /// What it is.
    pub kind: Kind,
}

const fn shm(mpmc: bool, bell: Doorbell, style: Style) -> Kind {
    Kind::Shm(Shm { mpmc, bell, style })
}

/// Every contender, in table order.
pub const CONTENDERS: &[Contender] = &[
    Contender {
        name: "shmchan-spsc",
        about: "shmchan SPSC ring, futex doorbell, send/recv one record per call (send_ref/recv_into above 256 B)",
        kind: shm(false, Doorbell::Futex, Style::Copy),
    },
    Contender {
        name: "shmchan-spsc-spin",
        about: "shmchan SPSC ring, spin doorbell, send/recv one record per call (send_ref/recv_into above 256 B)",
        kind: shm(false, Doorbell::Spin, Style::Copy),
    },
    Contender {
        name: "shmchan-zerocopy",
        about: "shmchan SPSC ring, futex doorbell, reserve+commit / peek (in place)",
        kind: shm(false, Doorbell::Futex, Style::ZeroCopy),
    },
    Contender {
        name: "shmchan-mpmc",
        about: "shmchan MPMC ring, futex doorbell, send/recv one record per call (send_ref/recv_into above 256 B)",
        kind: shm(true, Doorbell::Futex, Style::Copy),
    },
    Contender {
        name: "shmchan-batch",
        about: "shmchan SPSC ring, futex doorbell, send_batch/recv_batch of 64 records",
        kind: shm(false, Doorbell::Futex, Style::Batch),
    },
    Contender {
        name: "shmchan-ring-alone",
        about: "shmchan's SPSC ring without the channel layer (no table, doorbell, liveness check, counters), its consumer coalescing as a channel receiver does: try_push_with / try_pop_with busy-polling; the channel stream's ceiling",
        kind: Kind::Ring,
    },
    Contender {
        name: "ringfire",
        about: "ringfire SPMC ring, lossless back-pressure, one reader busy-polling try_recv",
        kind: Kind::Ringfire,
    },
    Contender {
        name: "iceoryx2",
        about: "iceoryx2 publish-subscribe, loan+send / receive in place, busy-polling, lossless",
        kind: Kind::Iceoryx2,
    },
    Contender {
        name: "ipmpsc",
        about: "ipmpsc ring (bincode byte string), zero-copy try_recv busy-polling",
        kind: Kind::Ipmpsc,
    },
    Contender {
        name: "pipe",
        about: "a pipe: write / read of whole records",
        kind: Kind::Pipe,
    },
    Contender {
        name: "bare-pingpong",
        about: "two cache lines between the two cores: the floor of a round trip",
        kind: Kind::Bare,
    },
    Contender {
        name: "floor-cursor-ring",
        about: "a bare Lamport ring (the reader polls the writer's cursor, then reads the slot): that design's floor, round trip and one-record stream",
        kind: Kind::Floor(floor::Design::Cursor),
    },
    Contender {
        name: "floor-stamp-ring",
        about: "a bare ring with a stamp in each slot (the reader polls the slot; ringfire's design): that design's floor, round trip and one-record stream",
        kind: Kind::Floor(floor::Design::Stamp),
    },
    Contender {
        name: "floor-mailbox-ring",
        about: "a bare Lamport ring whose writer copies each record onto its cursor's line (the reader polls that line and finds the record): that design's round-trip floor",
        kind: Kind::Floor(floor::Design::Mailbox),
    },
];

impl Contender {
    /// Its stream of `size`-byte records, for the interleaved throughput; `None` when it
    /// carries no records.
    fn stream(&self, size: usize) -> Option<Result<Box<dyn stream::Stream>, Error>> {
        Some(match self.kind {
            Kind::Shm(s) => s.stream(size),
            Kind::Ring => ring::stream(size),
            Kind::Ringfire => ringfire::stream(size),
            Kind::Iceoryx2 => iceoryx::stream(size),
            Kind::Ipmpsc => ipmpsc::stream(size),
            Kind::Pipe => base::pipe_stream(size),
            Kind::Floor(d @ (floor::Design::Cursor | floor::Design::Stamp)) => {
                floor_stream::stream(d, size)
            }
            Kind::Bare | Kind::Floor(_) => return None,
        })
    }

    /// Its ping-pong, for the interleaved round trips; `None` when it has none of its own
    /// (a batch of one record is a send) or is measured alone (the pipe, whose round trips take
    /// two hundred times the others' and would leave them few samples).
    fn pair(&self) -> Option<Result<Box<dyn rtt::Pair>, Error>> {
        Some(match self.kind {
            Kind::Shm(s) if s.style == Style::Batch => return None,
            Kind::Shm(s) => s.pair(),
            Kind::Ring => return None,
            Kind::Ringfire => Ok(ringfire::pair()),
            Kind::Iceoryx2 => iceoryx::pair(),
            Kind::Ipmpsc => ipmpsc::pair(),
            Kind::Pipe => return None,
            Kind::Bare => base::bare_pair(),
            Kind::Floor(d) => floor::pair(d),
        })
    }
}

/// The command line.
struct Args {
    sizes: Vec<usize>,
    runs: usize,
    timing: Timing,
    only: Vec<&'static Contender>,
    cpus: [Option<usize>; 2],
    json: bool,
}

const USAGE: &str = "usage: shmchan-peers [--sizes 8,64,65536] [--duration-ms 500] \
[--warmup-ms 200] [--runs 3] [--only NAME,...] [--cpus 0,1] [--json] [--list]\n(record sizes: 8, 64, 256, 1024, 4096, 65536)";

fn list<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse()
                .map_err(|_| format!("{what}: {x:?} is not a number"))
        })
        .collect()
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut a = Args {
        sizes: vec![8, 64, 65536],
        runs: 3,
        timing: Timing {
            warmup: Duration::from_millis(200),
            len: Duration::from_millis(500),
        },
        only: CONTENDERS.iter().collect(),
        cpus: [Some(0), Some(1)],
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => a.sizes = list(&val()?, "--sizes")?,
            "--runs" => a.runs = list(&val()?, "--runs")?[0],
            "--duration-ms" => a.timing.len = Duration::from_millis(list(&val()?, &flag)?[0]),
            "--warmup-ms" => a.timing.warmup = Duration::from_millis(list(&val()?, &flag)?[0]),
            "--cpus" => match list::<usize>(&val()?, "--cpus")?[..] {
                [x, y] => a.cpus = [Some(x), Some(y)],
                _ => return Err("--cpus takes two CPUs".into()),
            },
            "--only" => {
                let v = val()?;
                a.only = Vec::new();
                for n in v.split(',') {
                    let c = CONTENDERS
                        .iter()
                        .find(|c| c.name == n.trim())
                        .ok_or(format!("no contender {n:?} (see --list)"))?;
                    a.only.push(c);
                }
            }
            "--json" => a.json = true,
            "--list" => {
                for c in CONTENDERS {
                    println!("{:<20} {}", c.name, c.about);
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if let Some(s) = a.sizes.iter().find(|s| !SIZES.contains(s)) {
        return Err(format!("record size {s}: one of {SIZES:?}"));
    }
    if a.runs == 0 || a.timing.len.is_zero() {
        return Err("--runs and --duration-ms must be at least 1".into());
    }
    // One CPU: no pinning (both processes share it, which says little, but runs).
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        a.cpus = [None, None];
    }
    Ok(Some(a))
}

fn main() {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => {
            eprintln!("shmchan-peers: {e}");
            std::process::exit(2);
        }
    };
    proc::catch_interrupts();
    let cfg = Cfg {
        cpus: args.cpus,
        timing: args.timing,
    };
    let mut results = report::Results::new(&args.only, &args.sizes, args.runs);
    for run in 0..args.runs {
        for (si, &size) in args.sizes.iter().enumerate() {
            // Every stream at this size, interleaved in one pair of processes.
            let mut streams = Vec::new();
            let mut who = Vec::new();
            for (ci, c) in args.only.iter().enumerate() {
                match c.stream(size) {
                    Some(Ok(s)) => {
                        streams.push(s);
                        who.push(ci);
                    }
                    Some(Err(e)) => {
                        drop(streams);
                        fail(c, &format!("{size} B: {e}"));
                    }
                    None => {}
                }
            }
            if streams.is_empty() {
                continue;
            }
            let names: Vec<&str> = who.iter().map(|&ci| args.only[ci].name).collect();
            let rates = stream::interleaved(&streams, &names, size, &cfg);
            // Their files go now, whatever happened.
            drop(streams);
            let rates = rates.unwrap_or_else(|e| {
                eprintln!("shmchan-peers: {size} B streams failed: {e}");
                std::process::exit(1);
            });
            for (&ci, v) in who.iter().zip(rates) {
                eprintln!(
                    "run {}: {:<18} {:>6} B  {:>10.3} M/s",
                    run + 1,
                    args.only[ci].name,
                    size,
                    v / 1e6
                );
                results.tput[ci][si].push(v);
            }
        }
        for (ci, c) in args.only.iter().enumerate() {
            if matches!(c.kind, Kind::Pipe) {
                let l = base::pipe_latency(&cfg)
                    .unwrap_or_else(|e| fail(c, &format!("round trip: {e}")));
                note_lat(run, c, l);
                results.lat[ci].push(l);
            }
        }
        // Every other round trip, interleaved in one pair of processes.
        let mut pairs = Vec::new();
        let mut who = Vec::new();
        for (ci, c) in args.only.iter().enumerate() {
            match c.pair() {
                Some(Ok(p)) => {
                    pairs.push(p);
                    who.push(ci);
                }
                Some(Err(e)) => {
                    drop(pairs);
                    fail(c, &format!("round trip: {e}"));
                }
                None => {}
            }
        }
        if !pairs.is_empty() {
            let names: Vec<&str> = who.iter().map(|&ci| args.only[ci].name).collect();
            let lats = rtt::interleaved(&pairs, &names, &cfg);
            // Their files go now, whatever happened.
            drop(pairs);
            let lats = lats.unwrap_or_else(|e| {
                eprintln!("shmchan-peers: round trips failed: {e}");
                std::process::exit(1);
            });
            for (&ci, l) in who.iter().zip(lats) {
                note_lat(run, args.only[ci], l);
                results.lat[ci].push(l);
            }
        }
    }
    let m = report::machine(&cfg, &args.timing, args.runs);
    if args.json {
        println!("{}", results.json(&m));
    } else {
        print!("{}", results.table(&m));
    }
}

fn note_lat(run: usize, c: &Contender, l: Lat) {
    eprintln!(
        "run {}: {:<18} round trip p50 {} ns, p99 {} ns",
        run + 1,
        c.name,
        l.p50,
        l.p99
    );
}

/// Ends the run: a contender failed (every measurement's files were already removed by then).
fn fail(c: &Contender, e: &str) -> ! {
    eprintln!("shmchan-peers: {} failed: {e}", c.name);
    std::process::exit(1);
}
