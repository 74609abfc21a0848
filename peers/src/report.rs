//! The results: medians over the runs, ratios to ringfire's throughput and to the bare
//! ping-pong's round trip, printed as a plain table or as one JSON document.

use serde_json::{json, Value};

use crate::work::{Lat, Timing};
use crate::{Cfg, Contender, Kind};

/// Every figure of the invocation, per contender (in `--only` order).
pub struct Results {
    who: Vec<&'static Contender>,
    sizes: Vec<usize>,
    runs: usize,
    /// Records per second, per contender, per size, one per run (empty: not measured).
    pub tput: Vec<Vec<Vec<f64>>>,
    /// Round trips, per contender, one per run (empty: not measured).
    pub lat: Vec<Vec<Lat>>,
}

/// The median (the mean of the middle two for an even count); `None` for no figures.
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// What the figures were measured on and how.
pub struct Machine {
    line: String,
    date: String,
    how: String,
}

/// Reads the machine line (CPU model, CPUs, kernel), today's date (UTC) and the method.
pub fn machine(cfg: &Cfg, t: &Timing, runs: usize) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_owned(), |s| s.trim().to_owned());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let pin = match cfg.cpus {
        [Some(a), Some(b)] => format!("pinned to CPUs {a} and {b}"),
        _ => "not pinned".to_owned(),
    };
    Machine {
        line: format!("{model}, {cpus} CPUs, Linux {}", kernel.trim()),
        date: today(),
        how: format!(
            "{pin}; median of {runs} run(s); {} ms window after {} ms warm-up",
            t.len.as_millis(),
            t.warmup.as_millis()
        ),
    }
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn size_name(s: usize) -> String {
    if s >= 1024 && s.is_multiple_of(1024) {
        format!("{} KiB", s / 1024)
    } else {
        format!("{s} B")
    }
}

fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1} M/s", v / 1e6)
    } else {
        format!("{:.0} k/s", v / 1e3)
    }
}

/// Why a contender has no throughput figure.
fn missing_tput(c: &Contender) -> &'static str {
    match c.kind {
        Kind::Bare => "carries no records",
        Kind::Floor(_) => "a round-trip floor only",
        _ => "not measured",
    }
}

/// Why a contender has no round trip of its own.
fn missing_lat(c: &Contender) -> &'static str {
    match c.kind {
        Kind::Shm(_) => "a batch of one record is a send",
        Kind::Ring => "a stream ceiling only",
        _ => "not measured",
    }
}

impl Results {
    /// Room for `runs` runs of `who` at `sizes`.
    pub fn new(who: &[&'static Contender], sizes: &[usize], runs: usize) -> Results {
        Results {
            who: who.to_vec(),
            sizes: sizes.to_vec(),
            runs,
            tput: vec![vec![Vec::new(); sizes.len()]; who.len()],
            lat: vec![Vec::new(); who.len()],
        }
    }

    fn index(&self, k: fn(&Kind) -> bool) -> Option<usize> {
        self.who.iter().position(|c| k(&c.kind))
    }

    fn tput_median(&self, ci: usize, si: usize) -> Option<f64> {
        median(&self.tput[ci][si])
    }

    fn lat_median(&self, ci: usize) -> Option<Lat> {
        let v = &self.lat[ci];
        Some(Lat {
            p50: median(&v.iter().map(|l| l.p50).collect::<Vec<_>>())?,
            p99: median(&v.iter().map(|l| l.p99).collect::<Vec<_>>())?,
        })
    }

    fn ringfire(&self, si: usize) -> Option<f64> {
        self.tput_median(self.index(|k| matches!(k, Kind::Ringfire))?, si)
    }

    fn bare(&self) -> Option<Lat> {
        self.lat_median(self.index(|k| matches!(k, Kind::Bare))?)
    }

    /// The plain table.
    pub fn table(&self, m: &Machine) -> String {
        let mut head = vec!["contender".to_owned()];
        head.extend(
            self.sizes
                .iter()
                .map(|&s| format!("{} (× ringfire)", size_name(s))),
        );
        head.push("RTT 8 B p50 (× bare)".to_owned());
        head.push("p99 (× bare)".to_owned());
        let mut rows = vec![head];
        let bare = self.bare();
        let mut notes: Vec<String> = Vec::new();
        for (ci, c) in self.who.iter().enumerate() {
            let mut row = vec![c.name.to_owned()];
            for si in 0..self.sizes.len() {
                row.push(match (self.tput_median(ci, si), self.ringfire(si)) {
                    (Some(v), Some(r)) => format!("{} ({:.2}×)", rate(v), v / r),
                    (Some(v), None) => rate(v),
                    (None, _) => {
                        notes.push(format!("{}: {}", c.name, missing_tput(c)));
                        "n/a".to_owned()
                    }
                });
            }
            match self.lat_median(ci) {
                Some(l) => {
                    let x = |v: f64, b: Option<f64>| match b {
                        Some(b) => format!("{v:.0} ns ({:.2}×)", v / b),
                        None => format!("{v:.0} ns"),
                    };
                    row.push(x(l.p50, bare.map(|b| b.p50)));
                    row.push(x(l.p99, bare.map(|b| b.p99)));
                }
                None => {
                    notes.push(format!("{} round trip: {}", c.name, missing_lat(c)));
                    row.push("n/a".to_owned());
                    row.push("n/a".to_owned());
                }
            }
            rows.push(row);
        }
        let cols = rows[0].len();
        let width: Vec<usize> = (0..cols)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = format!(
            "shmchan beside its peers, {}: {}\n{}; records/s counted by the consumer, every word \
             checked; busy round trips of one 8-byte record, interleaved (the pipe's alone)\n\n",
            m.date, m.line, m.how
        );
        for (ri, r) in rows.iter().enumerate() {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let pad = width[i] - s.chars().count();
                    if i == 0 {
                        format!("{s}{}", " ".repeat(pad))
                    } else {
                        format!("{}{s}", " ".repeat(pad))
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
            if ri == 0 {
                out.push_str(&"-".repeat(width.iter().sum::<usize>() + 2 * (cols - 1)));
                out.push('\n');
            }
        }
        notes.dedup();
        for n in notes {
            out.push_str(&format!("n/a: {n}\n"));
        }
        out
    }

    /// The JSON document.
    pub fn json(&self, m: &Machine) -> Value {
        let bare = self.bare();
        let contenders: Vec<Value> = self
            .who
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let tput: Vec<Value> = self
                    .sizes
                    .iter()
                    .enumerate()
                    .map(|(si, &size)| match self.tput_median(ci, si) {
                        Some(v) => json!({
                            "size_bytes": size,
                            "records_per_s": v,
                            "runs": self.tput[ci][si],
                            "vs_ringfire": self.ringfire(si).map(|r| v / r),
                        }),
                        None => json!({ "size_bytes": size, "na": missing_tput(c) }),
                    })
                    .collect();
                let rtt = match self.lat_median(ci) {
                    Some(l) => json!({
                        "p50_ns": l.p50,
                        "p99_ns": l.p99,
                        "p50_vs_bare": bare.map(|b| l.p50 / b.p50),
                        "p99_vs_bare": bare.map(|b| l.p99 / b.p99),
                        "runs": self.lat[ci].iter().map(|l| json!({"p50_ns": l.p50, "p99_ns": l.p99})).collect::<Vec<_>>(),
                    }),
                    None => json!({ "na": missing_lat(c) }),
                };
                json!({
                    "name": c.name,
                    "about": c.about,
                    "throughput": tput,
                    "round_trip_8b": rtt,
                })
            })
            .collect();
        json!({
            "date": m.date,
            "machine": m.line,
            "method": m.how,
            "runs": self.runs,
            "contenders": contenders,
        })
    }
}
