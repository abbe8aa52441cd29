//! SOA serial numbers (RFC 1982 arithmetic).

use std::cmp::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it): the clock of
/// serials here, and of TSIG's "time signed" in `xfr`.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Now as a serial: the low 32 bits of the Unix time (serial arithmetic
/// wraps, so those are the point).
pub fn now() -> u32 {
    (unix_now() & u64::from(u32::MAX)) as u32
}

/// Compares serials as RFC 1982 §3.2 defines it; `None` when the two are
/// exactly 2^31 apart, which the RFC leaves undefined.
pub fn compare(a: u32, b: u32) -> Option<Ordering> {
    const HALF: u32 = 1 << 31;
    if a == b {
        Some(Ordering::Equal)
    } else if (a < b && b - a < HALF) || (a > b && a - b > HALF) {
        Some(Ordering::Less)
    } else if (a < b && b - a > HALF) || (a > b && a - b < HALF) {
        Some(Ordering::Greater)
    } else {
        None
    }
}

/// The serial of a changed zone: `max(previous + 1, now)` in serial
/// arithmetic, so it rises on every change within a run and, as long as the
/// clock moves forward, across restarts too (a restarted server starts from
/// the Unix time, which is past any serial it handed out before unless it
/// changed more than once a second on average).
pub fn next(previous: Option<u32>, now_unix: u32) -> u32 {
    match previous {
        None => now_unix,
        Some(prev) => {
            let bumped = prev.wrapping_add(1);
            if compare(now_unix, bumped) == Some(Ordering::Greater) {
                now_unix
            } else {
                bumped
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn rfc1982_compare() {
        let table = [
            (1, 2, Some(Less)),
            (2, 1, Some(Greater)),
            (5, 5, Some(Equal)),
            (u32::MAX, 0, Some(Less)),
            (0, u32::MAX, Some(Greater)),
            (0, 1 << 31, None),
            (0, (1 << 31) - 1, Some(Less)),
            (0, (1 << 31) + 1, Some(Greater)),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), want, "compare({a}, {b})");
        }
    }

    #[test]
    fn next_serial() {
        // (previous, now, want)
        let table = [
            (None, 1_700_000_000, 1_700_000_000),
            (Some(1_700_000_000), 1_700_000_000, 1_700_000_001),
            (Some(1_700_000_000), 1_700_000_500, 1_700_000_500),
            // several changes within one second keep rising past the clock
            (Some(1_700_000_005), 1_700_000_001, 1_700_000_006),
            // clock far behind (or reset): still prev + 1
            (Some(1_700_000_000), 5, 1_700_000_001),
            // wrap-around
            (Some(u32::MAX), 3, 3),
            (Some(u32::MAX), 0, 0),
        ];
        for (prev, now, want) in table {
            let got = next(prev, now);
            assert_eq!(got, want, "next({prev:?}, {now})");
            if let Some(p) = prev {
                assert_eq!(compare(got, p), Some(Greater), "must rise: {p} -> {got}");
            }
        }
    }
}
