//! Log lines that a client (or a failing dependency) can trigger, throttled
//! per reason: the first occurrence is logged at once, later ones within
//! [`WINDOW`] only counted, and every [`WINDOW`] one summary line says how
//! many were left out ("N more in the last 10 s"). A flood of refused
//! transfers or broken packets then costs a few lines a minute, not one per
//! packet; the metrics still count every one.
//!
//! Use [`warn_throttled!`](crate::warn_throttled) at the call site: it keeps
//! one [`Throttle`] per site. `app` runs [`summarise`] in the background.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// At most one line per reason in this long, plus the summary.
pub const WINDOW: Duration = Duration::from_secs(10);

/// The state of one reason: when it was last logged and how many
/// occurrences were left out since.
pub struct Throttle {
    reason: &'static str,
    /// Milliseconds since [`epoch`] of the last line logged, plus one (0:
    /// never logged).
    last_logged: AtomicU64,
    left_out: AtomicU64,
    registered: AtomicBool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn registry() -> &'static Mutex<Vec<&'static Throttle>> {
    static REGISTRY: OnceLock<Mutex<Vec<&'static Throttle>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

impl Throttle {
    pub const fn new(reason: &'static str) -> Throttle {
        Throttle {
            reason,
            last_logged: AtomicU64::new(0),
            left_out: AtomicU64::new(0),
            registered: AtomicBool::new(false),
        }
    }

    /// Whether this occurrence is logged: the first one, then the first one
    /// after each [`WINDOW`]; the others are counted for the summary.
    pub fn allow(&'static self) -> bool {
        self.allow_at(epoch().elapsed())
    }

    fn allow_at(&'static self, now: Duration) -> bool {
        if !self.registered.swap(true, Ordering::Relaxed) {
            registry()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self);
        }
        let now_ms = u64::try_from(now.as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        let last = self.last_logged.load(Ordering::Relaxed);
        let window = WINDOW.as_millis() as u64;
        if (last == 0 || now_ms.saturating_sub(last) >= window)
            && self
                .last_logged
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
        self.left_out.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// How many occurrences were left out since the last call.
    fn take_left_out(&self) -> u64 {
        self.left_out.swap(0, Ordering::Relaxed)
    }
}

/// Logs, for every reason with occurrences left out since the last call, one
/// line with their number.
pub fn summarise_now() {
    let throttles: Vec<&'static Throttle> =
        registry().lock().unwrap_or_else(|e| e.into_inner()).clone();
    for throttle in throttles {
        let count = throttle.take_left_out();
        if count > 0 {
            tracing::warn!(
                reason = throttle.reason,
                count,
                "{count} more in the last {}s: {}",
                WINDOW.as_secs(),
                throttle.reason
            );
        }
    }
}

/// Runs [`summarise_now`] every [`WINDOW`], until dropped.
pub async fn summarise() {
    let mut tick = tokio::time::interval(WINDOW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        summarise_now();
    }
}

/// `warn!` for lines a client can trigger: at most one per [`WINDOW`] per
/// call site, the rest counted into a summary line. The first argument
/// names the reason (a short fixed text, also the summary's subject); the
/// rest are `tracing::warn!`'s fields and message.
#[macro_export]
macro_rules! warn_throttled {
    ($reason:literal, $($arg:tt)+) => {{
        static THROTTLE: $crate::throttled_log::Throttle =
            $crate::throttled_log::Throttle::new($reason);
        if THROTTLE.allow() {
            tracing::warn!($($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_and_the_rest_counted() {
        static T: Throttle = Throttle::new("test reason");
        let at = |s: u64| Duration::from_millis(s);
        assert!(T.allow_at(at(0)), "the first is logged");
        for ms in 1..1000 {
            assert!(!T.allow_at(at(ms)), "then silence");
        }
        assert_eq!(T.take_left_out(), 999);
        assert!(T.allow_at(at(10_001)), "one again after the window");
        assert!(!T.allow_at(at(10_002)));
        assert_eq!(T.take_left_out(), 1);
        assert_eq!(T.take_left_out(), 0);
        assert!(
            registry()
                .lock()
                .unwrap()
                .iter()
                .any(|t| t.reason == "test reason"),
            "registered for the summary"
        );
    }
}
