//! `shmchan bench` end to end: the built binary, short windows, a few contenders.
//!
//! Checks the shape of the table and of the JSON document, that every figure is a positive
//! number, that the pipe's ratio is exactly 1, that sizes a mechanism cannot carry are shown as
//! n/a with the limit, that the doorbell sections (blocking pairs, idle receivers, slow
//! consumer, the per-doorbell summary) and the byte-channel and async round-trip sections are
//! there, and that a run leaves no FIFO, POSIX queue, named semaphore or process of its own
//! behind.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_shmchan");

/// Runs `shmchan bench ARGS`; returns its output and its pid (the names it gives its kernel
/// objects start with `shmchan-bench-PID-`). It leads its own process group (its pid), which
/// the processes it forks inherit: see [`leftover_processes`].
fn bench(args: &[&str]) -> (Output, u32) {
    let child = Command::new(EXE)
        .arg("bench")
        .args(args)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shmchan bench");
    let pid = child.id();
    (
        child.wait_with_output().expect("wait for shmchan bench"),
        pid,
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Names of this process's leftovers: FIFOs in the temp dir, POSIX queues and named
/// semaphores (the bench's own, and those of the channels it created).
fn leftovers(pid: u32) -> Vec<String> {
    let prefixes = [
        format!("shmchan-bench-{pid}-"),
        format!("sem.shmchan-bench-{pid}-"),
        format!("shmchan-mq-{pid}-"),
        format!("sem.shmchan-sem-{pid}-"),
    ];
    let mut found = Vec::new();
    for dir in [
        std::env::temp_dir(),
        "/dev/mqueue".into(),
        "/dev/shm".into(),
    ] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                    found.push(format!("{}/{name}", dir.display()));
                }
            }
        }
    }
    found
}

/// Processes still in the process group of the bench run `pid` (its forked children inherit
/// it), after that run ended: there should be none.
fn leftover_processes(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let pgrp = rest
            .split_whitespace()
            .nth(2)
            .and_then(|x| x.parse::<u32>().ok());
        if pgrp == Some(pid) {
            found.push(stat);
        }
    }
    found
}

/// Everything a run must have cleaned up: kernel objects, files, processes.
fn assert_clean(pid: u32) {
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
    assert!(
        leftover_processes(pid).is_empty(),
        "{:?}",
        leftover_processes(pid)
    );
}

/// The first number in a table cell such as `1.25 M` or `1.00×`, scaled by its unit.
fn number(cell: &str) -> f64 {
    let cell = cell.trim().trim_end_matches('×');
    let (num, mult) = match cell.rsplit_once(' ') {
        Some((n, "k")) => (n, 1e3),
        Some((n, "M")) => (n, 1e6),
        Some((n, "G")) => (n, 1e9),
        _ => (cell, 1.0),
    };
    num.trim()
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("not a number: {cell:?}"))
        * mult
}

/// The rows of the table section whose title starts with `title`: each row's name and its
/// right-aligned cells, cut where the header's column labels end (columns are as wide as the
/// longest name, so the header says where they are).
fn section_rows(table: &str, title: &str) -> Vec<(String, Vec<String>)> {
    let mut lines = table.lines().skip_while(|l| !l.starts_with(title)).skip(1);
    // "× pipe", "× typed" and "× socket" are one label each.
    let header: Vec<char> = lines
        .next()
        .expect("a header")
        .replace("× pipe", "×_pipe")
        .replace("× typed", "×_typed")
        .replace("× socket", "×_socket")
        .chars()
        .collect();
    // Column ends: the end of each label after "contender".
    let mut ends = Vec::new();
    let mut i = "  contender".len();
    while i < header.len() {
        if header[i] != ' ' && (i + 1 == header.len() || header[i + 1] == ' ') {
            ends.push(i + 1);
        }
        i += 1;
    }
    let mut rows = Vec::new();
    for line in lines.take_while(|l| !l.trim().is_empty()) {
        let chars: Vec<char> = line.chars().collect();
        let name = line.split_whitespace().next().expect("a name").to_owned();
        let rest = line.trim_start()[name.len()..].trim();
        if rest.starts_with("n/a") || rest.starts_with("error") {
            // Not cut in columns: the whole text is one cell.
            rows.push((name, vec![rest.to_owned()]));
            continue;
        }
        let mut cells = Vec::new();
        let mut start = 2 + name.chars().count();
        for &end in &ends {
            let end = end.min(chars.len());
            cells.push(
                chars[start.min(end)..end]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_owned(),
            );
            start = end;
        }
        rows.push((name, cells));
    }
    rows
}

/// The throughput rows of a section by name: [records/s, MB/s, ratio]; n/a and error rows are
/// left out.
fn tp_rows(table: &str, title: &str) -> BTreeMap<String, [f64; 3]> {
    section_rows(table, title)
        .into_iter()
        .filter(|(_, c)| !c.iter().any(|x| x.contains("n/a") || x.contains("error")))
        .map(|(n, c)| (n, [number(&c[0]), number(&c[1]), number(&c[2])]))
        .collect()
}

#[test]
fn quick_table_has_positive_figures_and_pipe_is_one() {
    let (out, pid) = bench(&[
        "--quick",
        "--only",
        "shmchan-spsc-futex,posix-mq,bare-cache-line",
        "--sizes",
        "8",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");

    for header in [
        "CPU:",
        "kernel:",
        "CPUs:",
        "limits:",
        "msgmax",
        "msgsize_max",
    ] {
        assert!(stdout.contains(header), "no {header:?} in\n{stdout}");
    }
    assert!(stdout.contains("Throughput, 8 B records"), "{stdout}");
    assert!(stdout.contains("Round trip, 8 B ping-pong, the peer answers at once"));
    assert!(stdout.contains("both sides asleep"));

    // The throughput rows of the 8 B section.
    let rows = tp_rows(&stdout, "Throughput, 8 B");
    let names: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "pipe",
            "posix-mq",
            "shmchan-spsc-futex",
            "shmchan-spsc-futex-batch",
            "shmchan-spsc-futex-zerocopy"
        ],
        "{stdout}"
    );
    for (name, [rate, mbs, ratio]) in &rows {
        assert!(
            *rate > 0.0 && *mbs > 0.0 && *ratio > 0.0,
            "{name}: {stdout}"
        );
    }
    assert_eq!(rows["pipe"][2], 1.0);

    // The blocking section: the doorbell right below its bare object, ratios against it.
    let blocking = section_rows(&stdout, "Round trip, 8 B ping-pong, both sides asleep");
    let names: Vec<&str> = blocking.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["pipe", "bare-futex", "shmchan-spsc-futex"],
        "{stdout}"
    );
    assert_eq!(blocking[1].1[6], "1.00×", "{stdout}");
    assert!(number(&blocking[2].1[6]) > 0.0, "{stdout}");

    // One progress line per row: 5 throughput + busy (pipe, posix-mq, bare line, shmchan) +
    // blocking (pipe, bare-futex, shmchan) + idle + slow consumer + death detection + the three
    // pairs all of whose rows ran (the copying row against itself, zero copy / copying, the
    // channel / the bare line).
    let progress = stderr.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(progress, 5 + 4 + 3 + 1 + 1 + 1 + 3, "{stderr}");
    // The pairs' table: a median and five rounds each, every ratio positive.
    let pairs: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Per record, interleaved pairs"))
        .skip(2)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(pairs.len(), 3, "{stdout}");
    for (line, name) in pairs.iter().zip([
        "shmchan-spsc-futex / shmchan-spsc-futex (control)",
        "shmchan-spsc-futex-zerocopy / shmchan-spsc-futex",
        "shmchan-spsc-futex / bare-cache-line",
    ]) {
        assert!(line.trim_start().starts_with(name), "{line}");
        let ratios: Vec<f64> = line
            .split_whitespace()
            .filter(|w| w.ends_with('×'))
            .map(number)
            .collect();
        assert_eq!(ratios.len(), 1 + 5, "{line}");
        assert!(ratios.iter().all(|&r| r > 0.0 && r.is_finite()), "{line}");
    }
    assert!(stdout.contains("Death detection"), "{stdout}");
    assert!(stdout.contains("Idle receiver"), "{stdout}");
    assert!(stdout.contains("Slow consumer"), "{stdout}");
    assert!(stdout.contains("Doorbells (SPSC, 8 B"), "{stdout}");
    // The per-record targets this selection has the rows for.
    for what in [
        "per record  shmchan-spsc-futex-zerocopy vs shmchan-spsc-futex, 8 B: throughput",
        "per record  shmchan-spsc-futex, peer answers at once: round trip p50 vs bare-cache-line",
    ] {
        assert!(stdout.contains(what), "no {what:?} in\n{stdout}");
    }
    // The control is no target.
    assert!(!stdout.contains("per record  shmchan-spsc-futex vs shmchan-spsc-futex"));
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
}

#[test]
fn doorbell_sections_for_a_kernel_doorbell() {
    let (out, pid) = bench(&[
        "--quick",
        "--json",
        "--only",
        "shmchan-spsc-posix-named-sem,shmchan-spsc-spin",
        "--sizes",
        "8",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
    let doc = json::parse(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));

    // Blocking: the named-semaphore doorbell and its bare object, equally many samples.
    let lat = doc["latency"].arr();
    let blocking: Vec<&json::V> = lat
        .iter()
        .filter(|r| r["mode"].str() == "blocking")
        .collect();
    let names: Vec<&str> = blocking.iter().map(|r| r["contender"].str()).collect();
    assert_eq!(
        names,
        [
            "pipe",
            "bare-posix-named-sem",
            "shmchan-spsc-posix-named-sem"
        ],
        "{stdout}"
    );
    assert_eq!(blocking[1]["samples"].num(), blocking[2]["samples"].num());
    assert_eq!(blocking[2]["floor"].str(), "bare-posix-named-sem");
    assert!(blocking[2]["p99_vs_floor"].num() > 0.0);

    // Idle: a sleeping receiver costs (almost) nothing; the spinning one burns more (how much
    // more depends on what else competes for its CPU: it yields).
    let idle = doc["idle"].arr();
    assert_eq!(idle.len(), 2, "{stdout}");
    let share = |bell: &str| {
        let row = idle
            .iter()
            .find(|r| r["doorbell"].str() == bell)
            .unwrap_or_else(|| panic!("no idle row for {bell}: {stdout}"));
        assert_eq!(row["status"].str(), "ok", "{stdout}");
        assert!(row["wait_s"].num() >= 0.2, "{stdout}");
        row["cpu_share"].num()
    };
    let (sleeping, spinning) = (share("posix-named-sem"), share("spin"));
    assert!(sleeping < 0.05, "{stdout}");
    assert!(spinning > sleeping, "{stdout}");

    // Slow consumer: figures present and sane.
    let slow = doc["slow_consumer"].arr();
    assert_eq!(slow.len(), 2, "{stdout}");
    for row in slow {
        assert_eq!(row["status"].str(), "ok", "{stdout}");
        assert!(row["consumer_records_per_s"].num() > 0.0);
        let share = row["producer_cpu_share"].num();
        assert!(share > 0.0 && share < 1.5, "{stdout}");
    }

    // The doorbell targets, with their figures.
    let targets = doc["targets"].arr();
    let doorbell: Vec<&str> = targets
        .iter()
        .filter(|t| t["area"].str() == "doorbell")
        .map(|t| t["what"].str())
        .collect();
    for what in [
        "peer answers at once",
        "both sides asleep",
        "idle receiver",
        "slower",
    ] {
        assert!(
            doorbell.iter().any(|w| w.contains(what)),
            "{what}: {doorbell:?}"
        );
    }
    for t in targets {
        assert!(t["value"].num().is_finite(), "{stdout}");
        assert!(t.get("values").is_some() && t.get("met").is_some());
    }
}

#[test]
fn json_document_has_every_figure() {
    let (out, pid) = bench(&[
        "--quick",
        "--json",
        "--only",
        "shmchan-mpmc-spin,fifo,sysv-msgq,bare",
        "--sizes",
        "8,64K",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));

    let doc = json::parse(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    assert_eq!(doc["shmchan_bench"].num(), 1.0);
    assert!(!doc["machine"]["cpu"].str().is_empty());
    assert!(doc["machine"]["cpus_online"].num() >= 1.0);
    let m = &doc["machine"];
    if m["pinned"].boolean() {
        assert_ne!(m["producer_cpu"].num(), m["consumer_cpu"].num());
    } else {
        assert!(matches!(m["producer_cpu"], json::V::Null));
    }
    for k in ["msgmax", "msgmnb", "mq_msg_max", "mq_msgsize_max"] {
        assert!(doc["limits"].get(k).is_some(), "limits.{k}");
    }

    let tp = doc["throughput"].arr();
    // 8 B and 64 KiB × (pipe, fifo, sysv-msgq, 3 mpmc-spin styles).
    assert_eq!(tp.len(), 2 * 6, "{stdout}");
    let mut na = 0;
    for row in tp {
        let name = row["contender"].str();
        match row["status"].str() {
            "ok" => {
                for k in [
                    "records_per_s",
                    "mb_per_s",
                    "elapsed_s",
                    "records",
                    "vs_pipe",
                ] {
                    assert!(row[k].num() > 0.0, "{name}.{k} in {stdout}");
                }
                if name == "pipe" {
                    assert_eq!(row["vs_pipe"].num(), 1.0);
                }
            }
            "n/a" => {
                // Only SysV can refuse a size here, and it names the limit.
                assert_eq!(name, "sysv-msgq");
                assert_eq!(row["size"].num(), 65536.0);
                assert!(row["reason"].str().contains("msgmax"));
                na += 1;
            }
            other => panic!("{name}: status {other} in {stdout}"),
        }
    }
    assert_eq!(na, 1);

    let lat = doc["latency"].arr();
    let modes: Vec<(&str, &str)> = lat
        .iter()
        .map(|r| (r["mode"].str(), r["contender"].str()))
        .collect();
    assert!(modes.contains(&("busy", "bare-cache-line")), "{modes:?}");
    assert!(modes.contains(&("blocking", "bare-futex")), "{modes:?}");
    assert!(modes.contains(&("blocking", "bare-posix-mq")), "{modes:?}");
    // No spsc doorbell selected: the idle and slow-consumer sections are empty.
    assert!(doc["idle"].arr().is_empty() && doc["slow_consumer"].arr().is_empty());
    assert!(modes.contains(&("busy", "shmchan-mpmc-spin")), "{modes:?}");
    for row in lat {
        let name = row["contender"].str();
        assert_eq!(row["status"].str(), "ok", "{name} in {stdout}");
        for k in [
            "samples",
            "p50_ns",
            "p99_ns",
            "p999_ns",
            "max_ns",
            "p50_vs_pipe",
        ] {
            assert!(row[k].num() > 0.0, "{name}.{k}");
        }
        assert!(row["p50_ns"].num() <= row["p99_ns"].num());
        assert!(row["p99_ns"].num() <= row["max_ns"].num());
        if name == "pipe" {
            assert_eq!(row["p50_vs_pipe"].num(), 1.0);
        }
    }
}

#[test]
fn unknown_contender_and_bad_size_are_refused() {
    let (out, _) = bench(&["--quick", "--only", "carrier-pigeon"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("matches no contender"));
    let (out, _) = bench(&["--quick", "--sizes", "100"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("powers of two"));
}

#[test]
fn list_names_every_contender() {
    let (out, _) = bench(&["--list"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    for name in [
        "pipe",
        "fifo",
        "unix-socket",
        "sysv-msgq",
        "posix-mq",
        "shmchan-spsc-futex-batch",
        "shmchan-mpmc-spin-zerocopy",
        "bare-cache-line",
        "bare-futex",
        "bare-sysv-sem",
        "bare-posix-sem",
        "bare-posix-named-sem",
        "bare-sysv-msgq",
        "bare-posix-mq",
        "eventfd",
        "idle receiver",
        "slow consumer",
        "byte channels",
        "bytes-spsc-futex",
        "bytes-spsc-futex-zerocopy",
        "async round trip",
        "async-spsc-posix-mq",
        "shmchan-spsc-posix-mq",
        "per-record pairs",
        "shmchan-spsc-futex-zerocopy / shmchan-spsc-futex ",
        "shmchan-spsc-futex / shmchan-mpmc-futex ",
        "bytes-spsc-futex / shmchan-spsc-futex ",
        "shmchan-spsc-futex / bare-cache-line ",
    ] {
        assert!(s.contains(name), "{name} missing from\n{s}");
    }
}

#[test]
fn byte_channel_section_quick() {
    let (out, pid) = bench(&["--quick", "--json", "--only", "bytes"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_clean(pid);
    let doc = json::parse(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    assert_eq!(
        doc["settings"]["byte_channel_sizes"]
            .arr()
            .iter()
            .map(json::V::num)
            .collect::<Vec<_>>(),
        [8.0, 64.0, 4096.0]
    );
    // Only this section ran.
    for k in [
        "throughput",
        "latency",
        "async_round_trip",
        "idle",
        "slow_consumer",
    ] {
        assert!(doc[k].arr().is_empty(), "{k}: {stdout}");
    }
    let rows = doc["byte_channels"].arr();
    let expect = [
        ("unix-socket", "shmchan-spsc-futex"),
        ("shmchan-spsc-futex", "shmchan-spsc-futex"),
        ("shmchan-spsc-futex-zerocopy", "shmchan-spsc-futex-zerocopy"),
        ("bytes-spsc-futex", "shmchan-spsc-futex"),
        ("bytes-spsc-futex-zerocopy", "shmchan-spsc-futex-zerocopy"),
    ];
    assert_eq!(rows.len(), 3 * expect.len(), "{stdout}");
    for (i, row) in rows.iter().enumerate() {
        let (name, typed) = expect[i % expect.len()];
        let size = [8.0, 64.0, 4096.0][i / expect.len()];
        assert_eq!(row["contender"].str(), name, "{stdout}");
        assert_eq!(row["size"].num(), size);
        assert_eq!(row["typed_reference"].str(), typed);
        assert_eq!(row["status"].str(), "ok", "{name}: {stdout}");
        for k in [
            "records",
            "elapsed_s",
            "records_per_s",
            "mb_per_s",
            "vs_typed",
            "vs_unix_socket",
        ] {
            let v = row[k].num();
            assert!(v > 0.0 && v.is_finite(), "{name}.{k} in {stdout}");
        }
        let mbs = row["records_per_s"].num() * size / 1e6;
        assert!((row["mb_per_s"].num() - mbs).abs() <= 1e-6 * mbs);
        if name == "unix-socket" {
            assert_eq!(row["vs_unix_socket"].num(), 1.0);
        }
        if name.starts_with("shmchan") {
            assert_eq!(row["vs_typed"].num(), 1.0);
        }
    }
    // The per-record pairs: each byte row at 8 and 64 B against its typed row, measured
    // together (in one pair of processes, slice by slice); the targets judge their medians.
    let pairs = doc["per_record_pairs"].arr();
    assert_eq!(pairs.len(), 4, "{stdout}");
    let targets: Vec<&json::V> = doc["targets"]
        .arr()
        .iter()
        .filter(|t| t["area"].str() == "per record")
        .collect();
    assert_eq!(targets.len(), 4, "{stdout}");
    let own = rows[3..5].iter().chain(&rows[8..10]);
    for ((t, pair), row) in targets.iter().zip(pairs).zip(own) {
        assert_eq!(pair["a"].str(), row["contender"].str());
        assert_eq!(pair["b"].str(), row["typed_reference"].str());
        assert_eq!(
            (pair["size"].num(), pair["ratio"].str()),
            (row["size"].num(), "vs_typed")
        );
        assert_eq!(pair["status"].str(), "ok", "{stdout}");
        let mut rounds: Vec<f64> = pair["rounds"].arr().iter().map(json::V::num).collect();
        assert_eq!(rounds.len(), 5, "{stdout}");
        assert!(rounds.iter().all(|&r| r > 0.0 && r.is_finite()), "{stdout}");
        rounds.sort_by(f64::total_cmp);
        assert_eq!(pair["median"].num(), rounds[2], "{stdout}");
        let what = t["what"].str();
        assert!(what.starts_with(row["contender"].str()), "{what}");
        let label = format!("{} B messages", row["size"].num());
        assert!(what.contains(&label), "{what}");
        assert_eq!(t["value"].num(), rounds[2], "{stdout}");
        assert_eq!(t["met"].boolean(), rounds[2] >= 0.8, "{stdout}");
    }
    // One progress line per row and per pair.
    let progress = stderr.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(progress, rows.len() + pairs.len(), "{stderr}");
}

#[test]
fn async_round_trip_section_quick() {
    let (out, pid) = bench(&["--quick", "--json", "--only", "async"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_clean(pid);
    let doc = json::parse(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    for k in [
        "throughput",
        "latency",
        "byte_channels",
        "idle",
        "slow_consumer",
    ] {
        assert!(doc[k].arr().is_empty(), "{k}: {stdout}");
    }
    assert!(doc["settings"]["async_doorbells"]
        .arr()
        .iter()
        .any(|b| b.str() == "posix-mq"));
    let rows = doc["async_round_trip"].arr();
    let expect = [
        ("pipe", "kernel"),
        ("shmchan-spsc-futex", "blocking"),
        ("shmchan-spsc-posix-mq", "blocking"),
        ("async-spsc-posix-mq", "async"),
        ("shmchan-spsc-eventfd", "blocking"),
        ("async-spsc-eventfd", "async"),
    ];
    assert_eq!(rows.len(), 2 * expect.len(), "{stdout}");
    for (i, row) in rows.iter().enumerate() {
        let (name, api) = expect[i % expect.len()];
        let mode = if i < expect.len() { "busy" } else { "blocking" };
        assert_eq!(row["contender"].str(), name, "{stdout}");
        assert_eq!(row["mode"].str(), mode);
        assert_eq!(row["api"].str(), api);
        assert_eq!(row["status"].str(), "ok", "{name}: {stdout}");
        for k in [
            "samples",
            "p50_ns",
            "p99_ns",
            "p999_ns",
            "max_ns",
            "mean_ns",
            "p50_vs_pipe",
        ] {
            assert!(row[k].num() > 0.0, "{name}.{k} in {stdout}");
        }
        assert!(row["p50_ns"].num() <= row["p99_ns"].num());
        assert!(row["p99_ns"].num() <= row["max_ns"].num());
        if name == "pipe" {
            assert_eq!(row["p50_vs_pipe"].num(), 1.0);
        }
        if api == "async" {
            let same_bell = name.replacen("async-", "shmchan-", 1);
            assert_eq!(row["blocking_reference"].str(), same_bell);
            assert!(row["p50_vs_blocking"].num() > 0.0, "{stdout}");
            assert!(row["p99_vs_blocking"].num() > 0.0, "{stdout}");
        } else {
            assert!(matches!(row["blocking_reference"], json::V::Null));
        }
    }
    // The shmchan rows of the blocking mode were interleaved: as many round trips each.
    let group = &rows[expect.len() + 1..];
    let n = group[0]["samples"].num();
    assert!(group.iter().all(|r| r["samples"].num() == n), "{stdout}");
}

#[test]
fn byte_channel_and_async_tables() {
    let (out, pid) = bench(&["--quick", "--only", "bytes-spsc-futex-zerocopy,async"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_clean(pid);
    for (title, size) in [
        ("Byte channels, 64 B", 64.0),
        ("Byte channels, 4 KiB", 4096.0),
    ] {
        let rows = tp_rows(&stdout, title);
        let names: Vec<&str> = rows.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "bytes-spsc-futex-zerocopy",
                "shmchan-spsc-futex",
                "shmchan-spsc-futex-zerocopy",
                "unix-socket"
            ],
            "{stdout}"
        );
        for (name, [rate, mbs, vs_typed]) in &rows {
            assert!(*rate > 0.0 && *vs_typed > 0.0, "{name}: {stdout}");
            assert!(
                (mbs - rate * size / 1e6).abs() <= 0.01 * mbs,
                "{name}: {stdout}"
            );
        }
        assert_eq!(rows["shmchan-spsc-futex"][2], 1.0);
        let socket = section_rows(&stdout, title)
            .into_iter()
            .find(|(n, _)| n == "unix-socket")
            .expect("a unix-socket row");
        assert_eq!(socket.1[3], "1.00×", "{stdout}");
    }
    for title in [
        "Async round trip, 8 B ping-pong, the peer answers at once",
        "Async round trip, 8 B ping-pong, both sides asleep",
    ] {
        let rows = section_rows(&stdout, title);
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "pipe",
                "shmchan-spsc-futex",
                "shmchan-spsc-posix-mq",
                "async-spsc-posix-mq",
                "shmchan-spsc-eventfd",
                "async-spsc-eventfd"
            ],
            "{stdout}"
        );
        // p50, p99, p99.9, max, samples, p50/pipe, p50/blocking, p99/blocking.
        assert_eq!(rows[0].1[5], "1.00×", "{stdout}");
        assert_eq!(rows[1].1[6], "—", "{stdout}");
        assert!(number(&rows[3].1[6]) > 0.0, "{stdout}");
        assert!(number(&rows[3].1[7]) > 0.0, "{stdout}");
    }
}

/// A minimal JSON reader for the document above (independent of the serde code that writes it).
mod json {
    use std::collections::BTreeMap;
    use std::ops::Index;

    #[derive(Debug)]
    pub enum V {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<V>),
        Obj(BTreeMap<String, V>),
    }

    static NULL: V = V::Null;

    impl V {
        pub fn num(&self) -> f64 {
            match self {
                V::Num(x) => *x,
                other => panic!("not a number: {other:?}"),
            }
        }
        pub fn boolean(&self) -> bool {
            match self {
                V::Bool(b) => *b,
                other => panic!("not a boolean: {other:?}"),
            }
        }
        pub fn str(&self) -> &str {
            match self {
                V::Str(s) => s,
                other => panic!("not a string: {other:?}"),
            }
        }
        pub fn arr(&self) -> &[V] {
            match self {
                V::Arr(v) => v,
                other => panic!("not an array: {other:?}"),
            }
        }
        pub fn get(&self, k: &str) -> Option<&V> {
            match self {
                V::Obj(m) => m.get(k),
                _ => None,
            }
        }
    }

    impl Index<&str> for V {
        type Output = V;
        fn index(&self, k: &str) -> &V {
            self.get(k).unwrap_or(&NULL)
        }
    }

    pub fn parse(s: &str) -> Result<V, String> {
        let mut p = P {
            b: s.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing bytes at {}", p.i));
        }
        Ok(v)
    }

    struct P<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.b.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at {}", c as char, self.i))
            }
        }
        fn lit(&mut self, word: &str, v: V) -> Result<V, String> {
            if self.b[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                Ok(v)
            } else {
                Err(format!("bad literal at {}", self.i))
            }
        }
        fn value(&mut self) -> Result<V, String> {
            self.ws();
            match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut m = BTreeMap::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(V::Obj(m));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        let v = self.value()?;
                        m.insert(k, v);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(V::Obj(m));
                            }
                            _ => return Err(format!("bad object at {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut v = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(V::Arr(v));
                    }
                    loop {
                        v.push(self.value()?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(V::Arr(v));
                            }
                            _ => return Err(format!("bad array at {}", self.i)),
                        }
                    }
                }
                Some(b'"') => self.string().map(V::Str),
                Some(b't') => self.lit("true", V::Bool(true)),
                Some(b'f') => self.lit("false", V::Bool(false)),
                Some(b'n') => self.lit("null", V::Null),
                Some(_) => {
                    let start = self.i;
                    while self.i < self.b.len()
                        && matches!(
                            self.b[self.i],
                            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                        )
                    {
                        self.i += 1;
                    }
                    std::str::from_utf8(&self.b[start..self.i])
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .map(V::Num)
                        .ok_or_else(|| format!("bad number at {start}"))
                }
                None => Err("unexpected end".into()),
            }
        }
        fn string(&mut self) -> Result<String, String> {
            self.eat(b'"')?;
            let mut out = Vec::new();
            while let Some(&c) = self.b.get(self.i) {
                self.i += 1;
                match c {
                    b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                    b'\\' => {
                        let e = *self.b.get(self.i).ok_or("bad escape")?;
                        self.i += 1;
                        match e {
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'u' => {
                                let hex = std::str::from_utf8(&self.b[self.i..self.i + 4])
                                    .map_err(|e| e.to_string())?;
                                let c = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                self.i += 4;
                                let ch = char::from_u32(c).ok_or("bad \\u")?;
                                out.extend_from_slice(ch.to_string().as_bytes());
                            }
                            other => out.push(other),
                        }
                    }
                    c => out.push(c),
                }
            }
            Err("unterminated string".into())
        }
    }
}
