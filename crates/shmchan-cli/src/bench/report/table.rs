//! The human-readable report (stdout): a header that names the machine and the settings, one
//! table per section, the per-doorbell summary and the targets.

use std::fmt::Write as _;

use shmchan::Doorbell;

use super::targets::targets;
use super::{
    bell_of, byte_ratios, lat_of, lat_ratios, lat_ratios_in, mbs, ns, pct, ratio, rounds, secs, si,
    sig3, size_label, tp_vs_pipe,
};
use crate::bench::shm::{self, Style, DOORBELLS, SLOW_PER_RECORD};
use crate::bench::workload::{LatMode, BATCH, BLOCKING_GAP};
use crate::bench::{
    bytechan, death, interleave, pairs, spsc, ByteRow, LatRow, Outcome, Results, TpRow,
};

/// The figures of a measured row; for any other, writes its line (`n/a (…)` or `error: …`
/// after the name, in a name column `w` wide) and returns `None`.
fn measured<'a, T>(o: &mut String, w: usize, name: &str, out: &'a Outcome<T>) -> Option<&'a T> {
    match out {
        Outcome::Ok(t) => return Some(t),
        Outcome::Na(why) => writeln!(o, "  {name:<w$} n/a ({why})"),
        Outcome::Err(e) => writeln!(o, "  {name:<w$} error: {e}"),
    }
    .ok()?;
    None
}

/// Left-aligned name cells as wide as the longest name (at least the header's).
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max("contender".len())
}

/// The human-readable report.
pub fn table(r: &Results) -> String {
    let mut o = String::new();
    let m = &r.machine;
    let _ = writeln!(o, "shmchan bench");
    let _ = writeln!(o, "  CPU:      {}", m.cpu);
    let _ = writeln!(o, "  kernel:   Linux {}", m.kernel);
    let _ = writeln!(
        o,
        "  CPUs:     {} online, {} usable; {}",
        m.online,
        m.allowed.len(),
        m.pinning.describe(m)
    );
    let _ = writeln!(o, "  limits:   {}", r.cfg.limits.describe());
    let la = |l: Option<[f64; 3]>| {
        l.map_or_else(
            || "unreadable".to_owned(),
            |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"),
        )
    };
    let _ = writeln!(
        o,
        "  load:     {} at the start, {} at the end (1/5/15 min; anything else running competes \
         for the same CPUs)",
        la(r.load[0]),
        la(r.load[1])
    );
    let c = &r.cfg;
    let _ = writeln!(
        o,
        "  windows:  {:.2} s throughput and busy round trip, {:.2} s blocking round trip, {:.2} s \
         idle, {:.2} s slow consumer; each after a {:.2} s warm-up{}; whole run {:.1} s",
        c.len.as_secs_f64(),
        c.blocking.as_secs_f64(),
        c.idle.as_secs_f64(),
        c.slow.as_secs_f64(),
        c.warmup.as_secs_f64(),
        if r.quick { " (--quick)" } else { "" },
        r.wall.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "  shmchan:  anonymous MAP_SHARED rings of min({}, max({}, {} KiB / record size)) records; \
         batches of {BATCH}; default spin window {} µs",
        shm::MAX_CAPACITY,
        shm::MIN_CAPACITY,
        shm::RING_BYTES / 1024,
        shmchan::DEFAULT_SPIN.as_micros()
    );
    let _ = writeln!(
        o,
        "  work:     the producer writes every word of each record; the consumer checks every word \
         and counts (MB = 10^6 bytes)"
    );
    let tw = name_width(r.tp.iter().map(|t| t.name.as_str()));
    for &size in &r.sizes {
        let rows: Vec<&TpRow> = r.tp.iter().filter(|t| t.size == size).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Throughput, {} records (consumer's count / elapsed; × pipe = records/s ÷ the pipe's)",
            size_label(size)
        );
        let _ = writeln!(
            o,
            "  {:<tw$} {:>12} {:>10} {:>9}",
            "contender", "records/s", "MB/s", "× pipe"
        );
        for row in rows {
            let Some(c) = measured(&mut o, tw, &row.name, &row.out) else {
                continue;
            };
            let _ = writeln!(
                o,
                "  {:<tw$} {:>12} {:>10} {:>9}",
                row.name,
                si(c.rate()),
                sig3(mbs(c, size)),
                tp_vs_pipe(r, row).map_or_else(|| "—".to_owned(), ratio)
            );
        }
    }
    let lw = name_width(r.lat.iter().map(|t| t.name.as_str()));
    for mode in [LatMode::Busy, LatMode::Blocking] {
        let rows: Vec<&LatRow> = r.lat.iter().filter(|t| t.mode == mode).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        match mode {
            LatMode::Busy => {
                let _ = writeln!(
                    o,
                    "Round trip, 8 B ping-pong, the peer answers at once (default spin window, \
                     then park; HDR histogram; floor = bare-cache-line)"
                );
            }
            LatMode::Blocking => {
                let _ = writeln!(
                    o,
                    "Round trip, 8 B ping-pong, both sides asleep before every message (each side \
                     waits {} µs before it sends, the echoer's wait is subtracted; zero spin \
                     window; each doorbell interleaved message by message with its bare kernel \
                     object, the floor, in the same two processes)",
                    BLOCKING_GAP.as_micros()
                );
            }
        }
        let _ = writeln!(
            o,
            "  {:<lw$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "contender",
            "p50",
            "p99",
            "p99.9",
            "max",
            "samples",
            "p50/pipe",
            "p50/floor",
            "p99/floor"
        );
        for row in rows {
            let Some(s) = measured(&mut o, lw, &row.name, &row.out) else {
                continue;
            };
            let (p, f50, f99) = lat_ratios(r, row);
            let show = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), ratio);
            let _ = writeln!(
                o,
                "  {:<lw$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                row.name,
                ns(s.p50),
                ns(s.p99),
                ns(s.p999),
                ns(s.max),
                si(s.samples as f64),
                show(p),
                show(f50),
                show(f99)
            );
        }
    }
    bytes_table(&mut o, r);
    async_table(&mut o, r);
    if !r.idle.is_empty() {
        let w = name_width(r.idle.iter().map(|t| t.name.as_str()));
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Idle receiver: recv on an empty SPSC channel (default spin window) until a record \
             comes {:.2} s later; every doorbell at once, one process each; CPU = \
             getrusage(RUSAGE_SELF) of that process over the wait",
            r.cfg.idle.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "contender", "waited", "CPU", "of a core", "user", "system", "wake-ups/s"
        );
        for row in &r.idle {
            let Some(s) = measured(&mut o, w, &row.name, &row.out) else {
                continue;
            };
            let _ = writeln!(
                o,
                "  {:<w$} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}",
                row.name,
                format!("{:.2} s", s.wall),
                secs(s.user + s.sys),
                pct(s.cpu_share()),
                secs(s.user),
                secs(s.sys),
                format!("{:.0}", s.nvcsw as f64 / s.wall)
            );
        }
    }
    if !r.slow.is_empty() {
        let w = name_width(r.slow.iter().map(|t| t.name.as_str()));
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Slow consumer: the producer sends 8 B records as fast as it can into a {}-record SPSC \
             ring (default spin window); the consumer spends {} µs per record; over {:.2} s, the \
             producer's CPU time (getrusage), and its CPU time plus the time it waited for a CPU \
             (runnable: schedstat), per second",
            shm::capacity_for(8),
            SLOW_PER_RECORD.as_micros(),
            r.cfg.slow.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>14} {:>13} {:>10} {:>10} {:>12}",
            "contender", "consumer", "producer CPU", "runnable", "sleeps/s", "preempted/s"
        );
        for row in &r.slow {
            let Some(s) = measured(&mut o, w, &row.name, &row.out) else {
                continue;
            };
            let _ = writeln!(
                o,
                "  {:<w$} {:>14} {:>13} {:>10} {:>10} {:>12}",
                row.name,
                format!("{} rec/s", si(s.rate)),
                pct(s.cpu_share()),
                s.runnable_share().map_or_else(|| "—".to_owned(), pct),
                si(s.nvcsw as f64 / s.wall),
                si(s.nivcsw as f64 / s.wall)
            );
        }
    }
    if !r.death.is_empty() {
        let w = name_width(r.death.iter().map(|t| t.name.as_str()));
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Death detection: from a peer's kill -9 (at a random moment, 10 to 110 ms into the \
             wait) to Disconnected, for a receiver blocked in recv and a sender blocked on a full \
             ring (SPSC, anonymous memory; {} kills each)",
            r.death
                .iter()
                .find_map(|d| match &d.out {
                    Outcome::Ok(s) => Some(s.recv.n),
                    _ => None,
                })
                .unwrap_or(0)
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
            "contender", "recv p50", "p99", "max", "send p50", "p99", "max"
        );
        for row in &r.death {
            let Some(s) = measured(&mut o, w, &row.name, &row.out) else {
                continue;
            };
            let _ = writeln!(
                o,
                "  {:<w$} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
                row.name,
                death::ms(s.recv.p50),
                death::ms(s.recv.p99),
                death::ms(s.recv.max),
                death::ms(s.send.p50),
                death::ms(s.send.p99),
                death::ms(s.send.max)
            );
        }
    }
    pairs_table(&mut o, r);
    doorbells(&mut o, r);
    let t = targets(r);
    if !t.is_empty() {
        let aw = t.iter().map(|x| x.area.name().len()).max().unwrap_or(0);
        let ww = t.iter().map(|x| x.what.chars().count()).max().unwrap_or(0);
        let sw = t.iter().map(|x| x.shown.chars().count()).max().unwrap_or(0);
        let gw = t.iter().map(|x| x.goal.chars().count()).max().unwrap_or(0);
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Targets (area: figure from the tables above, goal; per record: the pairs' \
             medians, their range)"
        );
        for x in &t {
            let _ = writeln!(
                o,
                "  {:<aw$}  {:<ww$}  {:>sw$}  {:<gw$}  {}",
                x.area.name(),
                x.what,
                x.shown,
                x.goal,
                if x.met { "met" } else { "NOT met" }
            );
        }
    }
    o
}

/// The per-record pairs: each round's ratio, and their median.
/// A slice's length for the pairs' heading: `10 ms`, `1.9 ms`.
fn slice_label(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms.fract() == 0.0 {
        format!("{ms} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn pairs_table(o: &mut String, r: &Results) {
    if r.pairs.is_empty() {
        return;
    }
    let w = name_width(r.pairs.iter().map(|t| t.name.as_str()));
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Per record, interleaved pairs: {} rounds per pair (throughput: both in one pair of \
         processes, the stream alternating between them in slices of {}, A's records/s ÷ \
         B's; round trip: both in one pair of processes, their round trips alternating, A's \
         p50 ÷ B's)",
        pairs::ROUNDS,
        slice_label(interleave::slice_len(&r.cfg))
    );
    let _ = writeln!(
        o,
        "  {:<w$} {:>7} {:>8}  rounds",
        "contender A / contender B", "size", "median"
    );
    for row in &r.pairs {
        let Some(v) = measured(o, w, &row.name, &row.out) else {
            continue;
        };
        let _ = writeln!(
            o,
            "  {:<w$} {:>7} {:>8}  {}",
            row.name,
            size_label(row.pair.size),
            ratio(pairs::median(v)),
            rounds(v)
        );
    }
}

/// The byte-channel section, one table per message size.
fn bytes_table(o: &mut String, r: &Results) {
    let w = name_width(r.bytes.iter().map(|t| t.name.as_str()));
    let show = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), ratio);
    for &size in bytechan::SIZES {
        let rows: Vec<&ByteRow> = r.bytes.iter().filter(|t| t.size == size).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Byte channels, {} messages (consumer's count / elapsed; × typed = records/s \
             ÷ the typed channel's of the same record size in the same style: send/recv for the \
             copying rows, reserve+commit/peek for the zero-copy ones; × socket = ÷ the Unix \
             socket's)",
            size_label(size)
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>12} {:>10} {:>9} {:>9}",
            "contender", "records/s", "MB/s", "× typed", "× socket"
        );
        for row in rows {
            let Some(c) = measured(o, w, &row.name, &row.out) else {
                continue;
            };
            let (t, u) = byte_ratios(r, row);
            let _ = writeln!(
                o,
                "  {:<w$} {:>12} {:>10} {:>9} {:>9}",
                row.name,
                si(c.rate()),
                sig3(mbs(c, size)),
                show(t),
                show(u)
            );
        }
    }
}

/// The async round-trip section, one table per mode.
fn async_table(o: &mut String, r: &Results) {
    let w = name_width(r.aio.iter().map(|t| t.name.as_str()));
    let show = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), ratio);
    for mode in [LatMode::Busy, LatMode::Blocking] {
        let rows: Vec<&LatRow> = r.aio.iter().filter(|t| t.mode == mode).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        let how = match mode {
            LatMode::Busy => "the peer answers at once (each row alone; default spin window, \
                              then blocking rows park in the kernel, async rows wait in the \
                              reactor)"
                .to_owned(),
            LatMode::Blocking => format!(
                "both sides asleep before every message (each side waits {} µs before it sends, \
                 the echoer's wait is subtracted; zero spin window; the shmchan rows interleaved \
                 message by message in the same two processes)",
                BLOCKING_GAP.as_micros()
            ),
        };
        let _ = writeln!(
            o,
            "Async round trip, 8 B ping-pong, {how}; async = AsyncSender/AsyncReceiver \
             on a tokio current-thread runtime in both processes; /blocking = the async row ÷ \
             the blocking API on the same doorbell"
        );
        let _ = writeln!(
            o,
            "  {:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
            "contender",
            "p50",
            "p99",
            "p99.9",
            "max",
            "samples",
            "p50/pipe",
            "p50/blocking",
            "p99/blocking"
        );
        for row in rows {
            let Some(s) = measured(o, w, &row.name, &row.out) else {
                continue;
            };
            let (p, f50, f99) = lat_ratios_in(&r.aio, row);
            let _ = writeln!(
                o,
                "  {:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
                row.name,
                ns(s.p50),
                ns(s.p99),
                ns(s.p999),
                ns(s.max),
                si(s.samples as f64),
                show(p),
                show(f50),
                show(f99)
            );
        }
    }
}

/// The per-doorbell summary: what each doorbell costs, one row per doorbell, from the sections
/// above.
fn doorbells(o: &mut String, r: &Results) {
    struct Row {
        bell: Doorbell,
        cells: [String; 6],
    }
    let dash = || "—".to_owned();
    let mut rows = Vec::new();
    for &bell in DOORBELLS {
        let s = spsc(bell);
        let name = s.name(Style::Unbatched);
        let busy = lat_of(r, &name, LatMode::Busy);
        let pipe = lat_of(r, "pipe", LatMode::Busy);
        let blk = lat_of(r, &name, LatMode::Blocking);
        let bare = s
            .bare_object()
            .and_then(|b| lat_of(r, b.name(), LatMode::Blocking));
        let idle = bell_of(&r.idle, bell);
        let slow = bell_of(&r.slow, bell);
        if busy.is_none() && blk.is_none() && idle.is_none() && slow.is_none() {
            continue;
        }
        let with_ratio = |x: u64, f: Option<u64>| match f {
            Some(f) => format!("{} ({})", ns(x), ratio(x as f64 / f as f64)),
            None => ns(x),
        };
        rows.push(Row {
            bell,
            cells: [
                busy.map_or_else(dash, |b| ns(b.p50)),
                match (busy, pipe) {
                    (Some(b), Some(p)) => ratio(p.p50 as f64 / b.p50 as f64),
                    _ => dash(),
                },
                blk.map_or_else(dash, |x| with_ratio(x.p50, bare.map(|f| f.p50))),
                blk.map_or_else(dash, |x| with_ratio(x.p99, bare.map(|f| f.p99))),
                idle.map_or_else(dash, |x| pct(x.cpu_share())),
                slow.map_or_else(dash, |x| pct(x.cpu_share())),
            ],
        });
    }
    if rows.is_empty() {
        return;
    }
    let heads = [
        "busy p50",
        "pipe/busy",
        "blocking p50 (/bare)",
        "blocking p99 (/bare)",
        "idle CPU",
        "slow-cons. CPU",
    ];
    let mut widths = heads.map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(&row.cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let bw = DOORBELLS
        .iter()
        .map(|b| b.name().len())
        .max()
        .unwrap_or(0)
        .max("doorbell".len());
    let line = |first: &str, cells: &[String]| {
        let mut l = format!("  {first:<bw$}");
        for (c, w) in cells.iter().zip(widths) {
            let pad = w.saturating_sub(c.chars().count());
            l.push_str("  ");
            l.push_str(&" ".repeat(pad));
            l.push_str(c);
        }
        l
    };
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Doorbells (SPSC, 8 B; from the sections above): busy = peer answers at once; \
         blocking = both asleep, ratio to the bare object; idle = receiver's CPU share; \
         slow-cons. = producer's CPU share"
    );
    let _ = writeln!(o, "{}", line("doorbell", &heads.map(str::to_owned)));
    for row in &rows {
        let _ = writeln!(o, "{}", line(row.bell.name(), &row.cells));
    }
}
