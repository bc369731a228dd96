//! Per-key exponential back-off with upstream's semantics (`k8s.io/client-go/util/flowcontrol`):
//! container restarts (CrashLoopBackOff: 10 s doubling to 5 min) and image pulls
//! (ImagePullBackOff). Times are wall-clock nanoseconds since the Unix epoch, the clock CRI
//! reports container exits in, so decisions are pure functions of their inputs.

use std::{collections::HashMap, time::Duration};

/// Upstream's initial container restart back-off.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Upstream's maximal container restart back-off.
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: i64,
}

/// Back-off state per key.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL, MAX)
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Backoff {
    /// Back-off from `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// An entry untouched for twice the maximum is forgotten (the container ran long enough).
    fn expired(&self, at: i64, entry: &Entry) -> bool {
        at.saturating_sub(entry.last_update) > nanos(self.max) * 2
    }

    /// Records an attempt at `now`: the first (or first after expiry) gets the initial delay,
    /// each next one doubles it up to the maximum. Returns the new delay.
    pub fn next(&mut self, key: &str, now: i64) -> Duration {
        let backoff = match self.entries.get(key) {
            Some(entry) if !self.expired(now, entry) => (entry.backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(
            key.to_owned(),
            Entry {
                backoff,
                last_update: now,
            },
        );
        backoff
    }

    /// The current delay of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.backoff)
    }

    /// Whether an event at `event_time` (a container's exit) is still inside the back-off
    /// window at `now`: then the restart must wait.
    pub fn in_backoff_since(&self, key: &str, event_time: i64, now: i64) -> bool {
        let Some(entry) = self.entries.get(key) else {
            return false;
        };
        if self.expired(event_time, entry) {
            return false;
        }
        now.saturating_sub(event_time) < nanos(entry.backoff)
    }

    /// Whether `now` is still inside the window opened by the last [`Backoff::next`].
    pub fn in_backoff_since_update(&self, key: &str, now: i64) -> bool {
        let Some(entry) = self.entries.get(key) else {
            return false;
        };
        if self.expired(now, entry) {
            return false;
        }
        now.saturating_sub(entry.last_update) < nanos(entry.backoff)
    }

    /// Forgets every key starting with `prefix` (a pod's keys when it goes away).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn restart_delays_double_from_ten_seconds_to_five_minutes() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|i| b.next("c", i * S).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn the_first_exit_restarts_at_once_and_the_second_waits() {
        let mut b = Backoff::default();
        // First exit at t=5: no entry yet, restart now.
        assert!(!b.in_backoff_since("c", 5 * S, 5 * S));
        b.next("c", 5 * S);
        // Second exit at t=7: inside the 10 s window until t=17.
        assert!(b.in_backoff_since("c", 7 * S, 8 * S));
        assert!(b.in_backoff_since("c", 7 * S, 16 * S));
        assert!(!b.in_backoff_since("c", 7 * S, 17 * S));
    }

    #[test]
    fn a_container_that_ran_ten_minutes_starts_over_at_ten_seconds() {
        let mut b = Backoff::default();
        for i in 0..5 {
            b.next("c", i * S);
        }
        assert_eq!(b.get("c"), Some(Duration::from_secs(160)));
        assert!(!b.in_backoff_since("c", 700 * S, 701 * S));
        assert_eq!(b.next("c", 701 * S), INITIAL);
    }

    #[test]
    fn pulls_back_off_from_the_last_failure() {
        let mut b = Backoff::default();
        assert!(!b.in_backoff_since_update("img", 0));
        b.next("img", 0);
        assert!(b.in_backoff_since_update("img", 9 * S));
        assert!(!b.in_backoff_since_update("img", 10 * S));
        b.next("img", 10 * S);
        assert!(b.in_backoff_since_update("img", 29 * S));
    }

    #[test]
    fn forgetting_a_pod_clears_its_keys_only() {
        let mut b = Backoff::default();
        b.next("uid1/a", 0);
        b.next("uid2/a", 0);
        b.forget_prefix("uid1/");
        assert_eq!(b.get("uid1/a"), None);
        assert!(b.get("uid2/a").is_some());
    }
}
