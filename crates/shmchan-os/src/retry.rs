//! The EINTR policy (one helper for every blocking call) and the clock conversions it needs.
//!
//! A blocking call interrupted by a signal handler fails with `EINTR` even under `SA_RESTART`
//! for `semop`, `msgrcv`, `sem_wait`, `futex`, the timed `mq_*` calls (see `signal(7)`). We never
//! let it reach the caller: [`retry_eintr`] calls again, and for a timed call it passes the time
//! that is *left* until the caller's deadline, so a stream of signals cannot stretch a timeout.
//! When the deadline has passed by the time a call is interrupted, the wait counts as timed out.
//!
//! Deadlines are [`Instant`]s (monotonic). Calls that take a relative timeout (`semtimedop`,
//! `FUTEX_WAIT`) get the remaining [`Duration`]; calls that take an absolute time get
//! "now on their clock + remaining", computed afresh on every attempt: `sem_clockwait` with
//! `CLOCK_MONOTONIC`, and `mq_timedsend`/`mq_timedreceive`, which only know `CLOCK_REALTIME`
//! (a wall-clock jump during one attempt can lengthen or shorten that attempt, never the
//! monotonic deadline as a whole).

use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::check;

/// Runs one blocking system call until it completes, retrying after `EINTR`.
///
/// `attempt` gets the time left until `deadline` (`None`: no deadline, wait forever) and
/// returns `Ok(Some(v))` when the call completed, `Ok(None)` when it timed out (whatever errno
/// its call uses for that), or the errno. `EINTR` is retried with the remaining time; an
/// `EINTR` after the deadline is a timeout.
pub(crate) fn retry_eintr<T>(
    deadline: Option<Instant>,
    mut attempt: impl FnMut(Option<Duration>) -> Result<Option<T>, Errno>,
) -> Result<Option<T>, Errno> {
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match attempt(remaining) {
            Err(Errno::EINTR) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(None);
                }
            }
            done => return done,
        }
    }
}

/// [`retry_eintr`] for a call without a timeout.
pub(crate) fn retry_eintr_untimed<T>(
    mut attempt: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    let done = retry_eintr(None, |_| attempt().map(Some))?;
    Ok(done.expect("an untimed call cannot time out"))
}

/// The deadline `timeout` from now; `None` (wait forever) when that is not representable.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A `timespec` for a relative duration, saturating at `time_t::MAX` seconds.
pub(crate) fn timespec_of(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos().into(),
    }
}

/// The absolute time `remaining` from now on `clock`, for calls that take an absolute deadline.
pub(crate) fn abs_timespec(
    clock: libc::clockid_t,
    remaining: Duration,
) -> Result<libc::timespec, Errno> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; clock_gettime writes only into it.
    check(unsafe { libc::clock_gettime(clock, &mut now) })?;
    let rel = timespec_of(remaining);
    let mut sec = now.tv_sec.saturating_add(rel.tv_sec);
    let mut nsec = now.tv_nsec + rel.tv_nsec;
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    Ok(libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    })
}

/// An absolute time that has already passed, for "try" calls through the timed variants.
pub(crate) const EXPIRED: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn eintr_is_retried_with_less_time() {
        let calls = Cell::new(0);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let out = retry_eintr(Some(deadline), |left| {
            seen.push(left.unwrap());
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                std::thread::sleep(Duration::from_millis(2));
                Err(Errno::EINTR)
            } else {
                Ok(Some(7))
            }
        });
        assert_eq!(out, Ok(Some(7)));
        assert_eq!(seen.len(), 3);
        assert!(seen[0] > seen[1] && seen[1] > seen[2]);
    }

    #[test]
    fn eintr_after_deadline_is_a_timeout() {
        let deadline = Instant::now();
        let out: Result<Option<()>, Errno> = retry_eintr(Some(deadline), |_| Err(Errno::EINTR));
        assert_eq!(out, Ok(None));
    }

    #[test]
    fn untimed_retries_until_done() {
        let mut n = 0;
        let out = retry_eintr_untimed(|| {
            n += 1;
            if n < 5 {
                Err(Errno::EINTR)
            } else {
                Ok(n)
            }
        });
        assert_eq!(out, Ok(5));
    }

    #[test]
    fn abs_timespec_normalises() {
        let ts = abs_timespec(libc::CLOCK_MONOTONIC, Duration::new(1, 999_999_999)).unwrap();
        assert!(ts.tv_nsec < 1_000_000_000);
        let huge = abs_timespec(libc::CLOCK_REALTIME, Duration::MAX).unwrap();
        assert_eq!(huge.tv_sec, libc::time_t::MAX);
    }
}
