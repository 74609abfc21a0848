//! What a run measures: every contender of every section, and the plan of a run (the default
//! one, or what `--only` selects from every combination, with the references each section
//! needs). `--list` prints the same catalogue.

use std::process::ExitCode;

use shmchan::{Doorbell, RingKind};

use super::async_rt::{self, Rt, ASYNC_BELLS};
use super::bare::Bare;
use super::baseline::{Base, BASES};
use super::bytechan::{self, ByteC};
use super::pairs::{self, Side};
use super::report;
use super::shm::{Shm, Style, DOORBELLS, KINDS, STYLES};
use super::workload::LatMode;
use super::ArgError;

/// The doorbells measured at every record size and in every style in a default run (the others
/// only at the smallest size, unbatched: when both sides are busy no doorbell is rung, so they
/// differ only when somebody sleeps). `--only` reaches every combination.
const DEFAULT_TP_BELLS: &[Doorbell] = &[Doorbell::Futex, Doorbell::Spin];

/// The doorbells of the slow-consumer section in a default run: the default one, one kernel
/// object, and the spin doorbell for contrast.
const DEFAULT_SLOW_BELLS: &[Doorbell] = &[Doorbell::Futex, Doorbell::SysvSem, Doorbell::Spin];

/// A throughput contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tp {
    /// A kernel mechanism.
    Base(Base),
    /// shmchan in one style.
    Shm(Shm, Style),
}

impl Tp {
    /// The contender name.
    pub fn name(self) -> String {
        match self {
            Tp::Base(b) => b.name().to_owned(),
            Tp::Shm(s, st) => s.name(st),
        }
    }

    fn about(self) -> String {
        match self {
            Tp::Base(b) => b.about().to_owned(),
            Tp::Shm(s, st) => s.about(st),
        }
    }

    /// Whether a default run measures it at `size` (`smallest`: the smallest size of the run).
    fn in_default(self, size: usize, smallest: usize) -> bool {
        match self {
            Tp::Base(_) => true,
            Tp::Shm(s, st) => {
                DEFAULT_TP_BELLS.contains(&s.bell) || (st == Style::Unbatched && size == smallest)
            }
        }
    }
}

/// A round-trip contender (one row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lat {
    /// A kernel mechanism.
    Base(Base),
    /// shmchan (unbatched send/recv over two rings).
    Shm(Shm),
    /// A floor without a channel (or the eventfd reference).
    Bare(Bare),
}

impl Lat {
    /// The contender name.
    pub fn name(self) -> String {
        match self {
            Lat::Base(b) => b.name().to_owned(),
            Lat::Shm(s) => s.name(Style::Unbatched),
            Lat::Bare(b) => b.name().to_owned(),
        }
    }

    /// The floor a row's figures are divided by: the bare cache line when the peer answers at
    /// once; when both sides sleep, the doorbell's own bare kernel object.
    pub fn floor(self, mode: LatMode) -> Option<String> {
        match (mode, self) {
            (LatMode::Busy, _) => Some(Bare::CacheLine.name().to_owned()),
            (LatMode::Blocking, Lat::Shm(s)) => s.bare_object().map(|b| b.name().to_owned()),
            (LatMode::Blocking, Lat::Bare(b)) => Some(b.name().to_owned()),
            (LatMode::Blocking, Lat::Base(_)) => None,
        }
    }

    fn about(self, mode: LatMode) -> String {
        match self {
            Lat::Base(b) => b.about().to_owned(),
            Lat::Shm(s) => format!(
                "shmchan {} ring, {} doorbell, send/recv{}",
                s.kind,
                s.bell,
                match (mode, s.bare_object()) {
                    (LatMode::Blocking, Some(b)) =>
                        format!(", zero spin window, interleaved with {}", b.name()),
                    _ => String::new(),
                }
            ),
            Lat::Bare(b) => b.about().to_owned(),
        }
    }

    /// Whether a default run measures it.
    fn in_default(self) -> bool {
        match self {
            Lat::Shm(s) => s.kind == RingKind::Spsc || DEFAULT_TP_BELLS.contains(&s.bell),
            _ => true,
        }
    }
}

/// One round-trip measurement: one contender, or a doorbell interleaved with its bare object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatJob {
    /// A contender on its own.
    One(Lat),
    /// A sleeping doorbell and its bare kernel object, interleaved message by message.
    Pair(Shm, Bare),
}

impl LatJob {
    /// Its rows, in table order (the bare object first, right above its doorbell).
    pub fn rows(self) -> Vec<Lat> {
        match self {
            LatJob::One(c) => vec![c],
            LatJob::Pair(s, b) => vec![Lat::Bare(b), Lat::Shm(s)],
        }
    }
}

/// The SPSC channel of a doorbell.
pub fn spsc(bell: Doorbell) -> Shm {
    Shm {
        kind: RingKind::Spsc,
        bell,
    }
}

/// Every throughput contender, in table order (pipe first).
fn all_tp() -> Vec<Tp> {
    let mut v: Vec<Tp> = BASES.iter().map(|&b| Tp::Base(b)).collect();
    for &kind in KINDS {
        for &bell in DOORBELLS {
            for &style in STYLES {
                v.push(Tp::Shm(Shm { kind, bell }, style));
            }
        }
    }
    v
}

/// Every round-trip contender of a section, in table order (pipe first).
fn all_lat(mode: LatMode) -> Vec<Lat> {
    all_lat_jobs(mode)
        .into_iter()
        .flat_map(LatJob::rows)
        .collect()
}

/// Every round-trip measurement of a section, in table order (pipe first).
fn all_lat_jobs(mode: LatMode) -> Vec<LatJob> {
    let mut v = Vec::new();
    match mode {
        LatMode::Busy => {
            v.extend(BASES.iter().map(|&b| LatJob::One(Lat::Base(b))));
            v.push(LatJob::One(Lat::Bare(Bare::CacheLine)));
            for &kind in KINDS {
                for &bell in DOORBELLS {
                    v.push(LatJob::One(Lat::Shm(Shm { kind, bell })));
                }
            }
        }
        LatMode::Blocking => {
            v.push(LatJob::One(Lat::Base(Base::Pipe)));
            if !DOORBELLS.contains(&Doorbell::EventFd) {
                // Otherwise it comes paired with the eventfd doorbell below.
                v.push(LatJob::One(Lat::Bare(Bare::EventFd)));
            }
            for &bell in DOORBELLS {
                let s = spsc(bell);
                if let Some(b) = s.bare_object() {
                    v.push(LatJob::Pair(s, b));
                }
            }
        }
    }
    v
}

/// Every contender of the idle and slow-consumer sections (one SPSC channel per doorbell).
fn all_bells() -> Vec<Shm> {
    DOORBELLS.iter().map(|&b| spsc(b)).collect()
}

fn selected(only: &[String], name: &str) -> bool {
    only.is_empty() || only.iter().any(|p| name.starts_with(p.as_str()))
}

/// Puts the pipe first in a section that runs anything.
fn with_pipe<C: Copy + PartialEq>(mut v: Vec<C>, pipe: C) -> Vec<C> {
    if !v.is_empty() && !v.contains(&pipe) {
        v.insert(0, pipe);
    }
    v
}

/// The throughput cells of a run, by size: the default plan, or what `--only` selects from
/// every combination (plus the pipe).
pub fn tp_plan(only: &[String], sizes: &[usize]) -> Vec<(usize, Tp)> {
    let smallest = sizes.iter().copied().min().unwrap_or(8);
    let mut v = Vec::new();
    for &size in sizes {
        let cells: Vec<Tp> = all_tp()
            .into_iter()
            .filter(|&c| {
                if only.is_empty() {
                    c.in_default(size, smallest)
                } else {
                    selected(only, &c.name())
                }
            })
            .collect();
        v.extend(
            with_pipe(cells, Tp::Base(Base::Pipe))
                .into_iter()
                .map(|c| (size, c)),
        );
    }
    v
}

/// The round-trip measurements of a section. In the blocking section a selected doorbell
/// always brings its bare object along (they are measured together).
pub fn lat_plan(mode: LatMode, only: &[String]) -> Vec<LatJob> {
    let jobs: Vec<LatJob> = all_lat_jobs(mode)
        .into_iter()
        .filter_map(|j| match j {
            LatJob::One(c) => {
                let keep = if only.is_empty() {
                    c.in_default()
                } else {
                    selected(only, &c.name())
                };
                keep.then_some(j)
            }
            LatJob::Pair(s, b) => {
                if selected(only, &Lat::Shm(s).name()) {
                    Some(j)
                } else if selected(only, b.name()) {
                    Some(LatJob::One(Lat::Bare(b)))
                } else {
                    None
                }
            }
        })
        .collect();
    with_pipe(jobs, LatJob::One(Lat::Base(Base::Pipe)))
}

/// The byte-channel section: every row at every size when one of its own rows is selected
/// (the references come along), nothing otherwise.
pub fn bytes_plan(only: &[String]) -> Vec<(usize, ByteC)> {
    let own: Vec<ByteC> = bytechan::ALL
        .iter()
        .copied()
        .filter(|c| c.own() && selected(only, &c.name()))
        .collect();
    if own.is_empty() {
        return Vec::new();
    }
    let mut v = Vec::new();
    for &size in bytechan::SIZES {
        for &c in bytechan::ALL {
            if !c.own() || own.contains(&c) {
                v.push((size, c));
            }
        }
    }
    v
}

/// The async round-trip section: per mode, the pipe (measured on its own) and the
/// interleaved group of the selected async doorbells with their blocking references; nothing
/// when no async row is selected.
pub fn async_plan(only: &[String]) -> Vec<(LatMode, Vec<Rt>)> {
    let bells: Vec<Doorbell> = ASYNC_BELLS
        .iter()
        .copied()
        .filter(|&b| selected(only, &async_rt::async_name(b)))
        .collect();
    if bells.is_empty() {
        return Vec::new();
    }
    async_rt::MODES
        .iter()
        .map(|&m| (m, async_rt::group(&bells)))
        .collect()
}

/// The doorbells of the idle section: all of them by default.
pub fn idle_plan(only: &[String]) -> Vec<Shm> {
    all_bells()
        .into_iter()
        .filter(|s| selected(only, &s.name(Style::Unbatched)))
        .collect()
}

/// The doorbells of the slow-consumer section.
pub fn slow_plan(only: &[String]) -> Vec<Shm> {
    all_bells()
        .into_iter()
        .filter(|s| {
            if only.is_empty() {
                DEFAULT_SLOW_BELLS.contains(&s.bell)
            } else {
                selected(only, &s.name(Style::Unbatched))
            }
        })
        .collect()
}

/// `--list`: every contender of every section, and whether a default run measures it.
pub fn list() -> ExitCode {
    crate::die_quietly_on_a_closed_stdout();
    let row = |name: String, about: String, default: &str| {
        println!("  {name:<38} {default:<11} {about}");
    };
    println!("  {:<38} {:<11} about", "contender", "default run");
    println!("  (1st size: only at the smallest record size of the run, 8 B by default)");
    println!("throughput (every record size):");
    for c in all_tp() {
        let d = match c {
            Tp::Shm(s, st) if !DEFAULT_TP_BELLS.contains(&s.bell) => {
                if st == Style::Unbatched {
                    "1st size"
                } else {
                    "no"
                }
            }
            _ => "yes",
        };
        row(c.name(), c.about(), d);
    }
    for mode in [LatMode::Busy, LatMode::Blocking] {
        println!("round trip, {} section:", mode.name());
        for c in all_lat(mode) {
            row(
                c.name(),
                c.about(mode),
                if c.in_default() { "yes" } else { "no" },
            );
        }
    }
    println!(
        "byte channels ({} messages; --only {}; references run with any row):",
        bytechan::SIZES
            .iter()
            .map(|&s| report::size_label(s))
            .collect::<Vec<_>>()
            .join(", "),
        bytechan::PREFIX
    );
    for &c in bytechan::ALL {
        row(c.name(), c.about(), "yes");
    }
    println!(
        "async round trip (8 B ping-pong, busy and blocking; --only {}; references run with \
         any row):",
        async_rt::PREFIX
    );
    row(
        Base::Pipe.name().to_owned(),
        "reference: measured on its own, as in the round-trip sections".to_owned(),
        "yes",
    );
    for r in async_rt::group(ASYNC_BELLS) {
        row(r.name(), r.about(), "yes");
    }
    println!("idle receiver (CPU time while waiting on an empty channel):");
    for s in all_bells() {
        row(
            s.name(Style::Unbatched),
            format!("shmchan SPSC ring, {} doorbell, recv", s.bell),
            "yes",
        );
    }
    println!("slow consumer (the producer's CPU time):");
    for s in all_bells() {
        row(
            s.name(Style::Unbatched),
            format!("shmchan SPSC ring, {} doorbell, send/recv", s.bell),
            if DEFAULT_SLOW_BELLS.contains(&s.bell) {
                "yes"
            } else {
                "no"
            },
        );
    }
    println!(
        "per-record pairs (the two rows of a per-record target together in one pair of \
         processes, {} rounds; run when both rows run):",
        pairs::ROUNDS
    );
    let byte_sizes = bytechan::SIZES
        .iter()
        .filter(|&&s| s <= 64)
        .map(|&s| report::size_label(s))
        .collect::<Vec<_>>()
        .join(" and ");
    let mut listed = Vec::new();
    for p in pairs::all(&[65536]) {
        let name = p.name();
        if listed.contains(&name) {
            continue; // a byte pair at its next size
        }
        let at = match (p.a, p.b) {
            (Side::Busy(_), _) => {
                "8 B round trips, alternating in one pair of processes".to_owned()
            }
            (Side::Bytes(_), _) => format!("{byte_sizes} messages"),
            (Side::Tp(_, Style::Unbatched), Side::Tp(_, Style::ZeroCopy)) => "64 KiB".to_owned(),
            _ => "every record size of the run".to_owned(),
        };
        row(
            name.clone(),
            format!("{}: {at}; goal {}", p.key, p.goal),
            "yes",
        );
        listed.push(name);
    }
    ExitCode::SUCCESS
}

/// Checks that every `--only` prefix names a contender (a typo should not silently measure
/// nothing).
pub fn check_only(only: &[String]) -> Result<(), ArgError> {
    let names: Vec<String> = all_tp()
        .into_iter()
        .map(Tp::name)
        .chain(all_lat(LatMode::Busy).into_iter().map(Lat::name))
        .chain(all_lat(LatMode::Blocking).into_iter().map(Lat::name))
        .chain(all_bells().into_iter().map(|s| s.name(Style::Unbatched)))
        .chain(bytechan::ALL.iter().map(|c| c.name()))
        .chain(async_rt::group(ASYNC_BELLS).into_iter().map(Rt::name))
        .collect();
    match only
        .iter()
        .find(|p| !names.iter().any(|n| n.starts_with(p.as_str())))
    {
        Some(p) => Err(ArgError::UnknownContender(p.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_pipe_comes_first() {
        let names: Vec<String> = all_tp().into_iter().map(Tp::name).collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len());
        assert_eq!(names[0], "pipe");
        for m in [LatMode::Busy, LatMode::Blocking] {
            let names: Vec<String> = all_lat(m).into_iter().map(Lat::name).collect();
            assert_eq!(names[0], "pipe");
            let mut dedup = names.clone();
            dedup.sort();
            dedup.dedup();
            assert_eq!(dedup.len(), names.len());
        }
    }

    #[test]
    fn only_adds_the_pipe() {
        let only = vec!["shmchan-spsc-spin".to_owned()];
        let v: Vec<String> = tp_plan(&only, &[8])
            .into_iter()
            .map(|(_, c)| c.name())
            .collect();
        assert_eq!(
            v,
            [
                "pipe",
                "shmchan-spsc-spin",
                "shmchan-spsc-spin-batch",
                "shmchan-spsc-spin-zerocopy"
            ]
        );
        // Nothing selected in a section: not even the pipe runs there.
        assert!(lat_plan(LatMode::Blocking, &only).is_empty());
    }

    #[test]
    fn default_plan_keeps_other_doorbells_to_the_smallest_size() {
        let plan = tp_plan(&[], &[8, 64]);
        let at = |size: usize| -> Vec<String> {
            plan.iter()
                .filter(|(s, _)| *s == size)
                .map(|(_, c)| c.name())
                .collect()
        };
        let (small, big) = (at(8), at(64));
        assert!(small.contains(&"shmchan-spsc-posix-mq".to_owned()));
        assert!(small.contains(&"shmchan-mpmc-sysv-sem".to_owned()));
        assert!(!small.contains(&"shmchan-spsc-posix-mq-batch".to_owned()));
        assert!(!big.contains(&"shmchan-spsc-posix-mq".to_owned()));
        for n in [
            "shmchan-mpmc-futex-zerocopy",
            "shmchan-spsc-spin-batch",
            "pipe",
        ] {
            assert!(big.contains(&n.to_owned()), "{n}");
        }
        // --only reaches every size and style.
        let only = vec!["shmchan-spsc-sysv-sem".to_owned()];
        assert_eq!(tp_plan(&only, &[8, 64]).len(), 2 * 4);
    }

    #[test]
    fn the_byte_channel_and_async_sections_run_by_default_and_on_their_own() {
        // Default: both sections, every row.
        let b = bytes_plan(&[]);
        assert_eq!(b.len(), bytechan::SIZES.len() * bytechan::ALL.len());
        let a = async_plan(&[]);
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|(_, g)| g == &async_rt::group(ASYNC_BELLS)));
        // --only bytes: that section with its references, nothing else.
        let only = vec!["bytes".to_owned()];
        assert_eq!(bytes_plan(&only), b);
        assert!(async_plan(&only).is_empty());
        assert!(tp_plan(&only, &[8]).is_empty());
        assert!(lat_plan(LatMode::Busy, &only).is_empty());
        assert!(idle_plan(&only).is_empty() && slow_plan(&only).is_empty());
        // One byte row: the references still come along.
        let only = vec!["bytes-spsc-futex-zero".to_owned()];
        let names: Vec<String> = bytes_plan(&only)
            .into_iter()
            .filter(|(s, _)| *s == 64)
            .map(|(_, c)| c.name())
            .collect();
        assert_eq!(
            names,
            [
                "unix-socket",
                "shmchan-spsc-futex",
                "shmchan-spsc-futex-zerocopy",
                "bytes-spsc-futex-zerocopy"
            ]
        );
        // --only async: that section; a reference alone does not run it.
        let only = vec!["async".to_owned()];
        assert_eq!(async_plan(&only), a);
        assert!(bytes_plan(&only).is_empty() && tp_plan(&only, &[8]).is_empty());
        let only = vec!["unix-socket".to_owned(), "shmchan-spsc-posix-mq".to_owned()];
        assert!(bytes_plan(&only).is_empty() && async_plan(&only).is_empty());
    }

    #[test]
    fn a_blocking_doorbell_brings_its_bare_object() {
        let only = vec!["shmchan-spsc-posix-mq".to_owned()];
        assert_eq!(
            lat_plan(LatMode::Blocking, &only),
            [
                LatJob::One(Lat::Base(Base::Pipe)),
                LatJob::Pair(spsc(Doorbell::PosixMq), Bare::PosixMq)
            ]
        );
        let only = vec!["bare-sysv-sem".to_owned()];
        assert_eq!(
            lat_plan(LatMode::Blocking, &only),
            [
                LatJob::One(Lat::Base(Base::Pipe)),
                LatJob::One(Lat::Bare(Bare::SysvSem))
            ]
        );
        // Every sleeping doorbell has its bare object in a default run.
        let pairs = lat_plan(LatMode::Blocking, &[])
            .into_iter()
            .filter(|j| matches!(j, LatJob::Pair(..)))
            .count();
        assert_eq!(pairs, DOORBELLS.len() - 1);
    }
}
