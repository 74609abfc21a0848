//! Text for people: tables, times, ages, owners, endpoints.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::unistd::{Uid, User};
use shmchan::inspect::ChannelInfo;

/// A table: a header and rows of cells, columns padded to their widest cell, two spaces
/// between columns; a row's last cell is never padded (so a short row, such as a corrupted
/// channel's reason, may run on).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(&r[..r.len().saturating_sub(1)]) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for cells in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(c);
            } else {
                let pad = width[i].saturating_sub(c.chars().count());
                line.push_str(c);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Whole seconds from `unix_ns` to now (0 for a time in the future: clocks differ).
pub fn age_s(unix_ns: u64) -> u64 {
    now_unix_ns().saturating_sub(unix_ns) / 1_000_000_000
}

/// An age in the largest whole unit, as `ps` and `ipcs` users read them: `3s`, `5m`, `2h`,
/// `4d`.
pub fn human_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// A time as UTC ISO-8601 to the second: `2024-03-01T12:34:56Z`.
pub fn iso8601(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// User names by uid, looked up once each (`getpwuid_r`); the number when there is no name.
#[derive(Default)]
pub struct Owners(HashMap<u32, String>);

impl Owners {
    /// The name of `uid`.
    pub fn name(&mut self, uid: u32) -> String {
        self.0
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map_or_else(|| uid.to_string(), |u| u.name)
            })
            .clone()
    }
}

/// `receiver 12 alive, sender 34 dead`, or `-`.
pub fn endpoints(info: &ChannelInfo) -> String {
    if info.endpoints.is_empty() {
        return "-".into();
    }
    info.endpoints
        .iter()
        .map(|e| {
            let state = if e.alive { "alive" } else { "dead" };
            format!("{} {} {state}", e.role, e.pid)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The doorbell's name, or `unknown(CODE)`.
pub fn doorbell(info: &ChannelInfo) -> String {
    match info.doorbell {
        Ok(d) => d.to_string(),
        Err(code) => format!("unknown({code})"),
    }
}

/// Registered endpoints by role and liveness, counted from the endpoint table (a process that
/// died without deregistering is dead here, though the segment still counts it live).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Census {
    /// Senders whose process is alive.
    pub live_senders: u32,
    /// Receivers whose process is alive.
    pub live_receivers: u32,
    /// Senders whose process died without deregistering.
    pub dead_senders: u32,
    /// Receivers whose process died without deregistering.
    pub dead_receivers: u32,
}

impl Census {
    /// The census of a channel's endpoint table.
    pub fn of(info: &ChannelInfo) -> Census {
        let mut c = Census::default();
        for e in &info.endpoints {
            let n = match (e.role, e.alive) {
                ("sender", true) => &mut c.live_senders,
                ("sender", false) => &mut c.dead_senders,
                (_, true) => &mut c.live_receivers,
                (_, false) => &mut c.dead_receivers,
            };
            *n += 1;
        }
        c
    }

    /// Live endpoints.
    pub fn live(&self) -> u32 {
        self.live_senders + self.live_receivers
    }

    /// Dead endpoints.
    pub fn dead(&self) -> u32 {
        self.dead_senders + self.dead_receivers
    }
}

/// `3 senders` / `1 receiver`.
pub fn count(n: u32, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_write_them() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_709_296_496_123_000_000), "2024-03-01T12:34:56Z");
        assert_eq!(human_age(3), "3s");
        assert_eq!(human_age(300), "5m");
        assert_eq!(human_age(7200 + 59), "2h");
        assert_eq!(human_age(4 * 86400 + 1), "4d");
    }

    #[test]
    fn table_pads_all_but_the_last_column() {
        let t = table(
            &["A", "BB"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into()]],
        );
        assert_eq!(t, "A    BB\nxyz  1\nq\n");
    }
}
