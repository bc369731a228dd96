//! Human-readable durations as upstream's `k8s.io/apimachinery/pkg/util/duration` spells them:
//! the `AGE` column (`5m3s`, `2d`, `3y45d`) and the like.

use k8s_openapi::jiff::SignedDuration;

/// Go's `time.Duration` holds nanoseconds in an `i64`; longer spans saturate there, so they
/// do here too.
fn clamp(d: SignedDuration) -> SignedDuration {
    let max = SignedDuration::from_nanos(i64::MAX);
    let min = SignedDuration::from_nanos(i64::MIN);
    d.clamp(min, max)
}

/// A succinct duration with about two or three significant figures, as upstream's
/// `HumanDuration`: `45s`, `119s`, `5m3s`, `42m`, `3h10m`, `20h`, `2d5h`, `47d`, `3y45d`, `12y`.
///
/// Up to a second in the future reads `0s` (clock skew); further is `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    let d = clamp(d);
    // Whole units, truncated toward zero like Go's integer conversions.
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_owned();
    } else if seconds < 0 {
        return "0s".to_owned();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{h}h", hours / 24)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{dy}d", hours / 24 / 365)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// A duration in its largest whole unit, as upstream's `ShortHumanDuration`: `59s`, `5m`,
/// `23h`, `364d`, `2y`.
pub fn short_human_duration(d: SignedDuration) -> String {
    let d = clamp(d);
    let seconds = d.as_secs();
    if seconds < -1 {
        "<invalid>".to_owned()
    } else if seconds < 0 {
        "0s".to_owned()
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if seconds / 60 < 60 {
        format!("{}m", seconds / 60)
    } else if seconds / 3600 < 24 {
        format!("{}h", seconds / 3600)
    } else if seconds / 3600 < 24 * 365 {
        format!("{}d", seconds / 3600 / 24)
    } else {
        format!("{}y", seconds / 3600 / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(SignedDuration) -> String, cases: &[(i64, &str)]) {
        for &(seconds, want) in cases {
            assert_eq!(f(SignedDuration::from_secs(seconds)), want, "{seconds}s");
        }
    }

    const MIN: i64 = 60;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    const YEAR: i64 = 365 * DAY;

    #[test]
    fn human_duration_follows_upstreams_precision_steps() {
        check(
            human_duration,
            &[
                (-2, "<invalid>"),
                (-1, "0s"),
                (0, "0s"),
                (1, "1s"),
                (119, "119s"),
                (2 * MIN, "2m"),
                (5 * MIN + 3, "5m3s"),
                (9 * MIN + 59, "9m59s"),
                (10 * MIN + 30, "10m"),
                (179 * MIN, "179m"),
                (3 * HOUR, "3h"),
                (3 * HOUR + 10 * MIN + 5, "3h10m"),
                (7 * HOUR + 59 * MIN, "7h59m"),
                (8 * HOUR + 30 * MIN, "8h"),
                (47 * HOUR, "47h"),
                (2 * DAY, "2d"),
                (2 * DAY + 5 * HOUR, "2d5h"),
                (7 * DAY + 23 * HOUR, "7d23h"),
                (8 * DAY + 23 * HOUR, "8d"),
                (729 * DAY, "729d"),
                (2 * YEAR, "2y"),
                (3 * YEAR + 45 * DAY, "3y45d"),
                (8 * YEAR + 45 * DAY, "8y"),
                (500 * YEAR, "292y"),
            ],
        );
    }

    #[test]
    fn sub_second_skew_in_the_future_reads_zero_seconds() {
        assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
        assert_eq!(
            human_duration(SignedDuration::from_millis(-2000)),
            "<invalid>"
        );
        assert_eq!(human_duration(SignedDuration::from_millis(119_999)), "119s");
    }

    #[test]
    fn short_human_duration_uses_the_largest_whole_unit() {
        check(
            short_human_duration,
            &[
                (-2, "<invalid>"),
                (-1, "0s"),
                (59, "59s"),
                (60, "1m"),
                (59 * MIN + 59, "59m"),
                (23 * HOUR, "23h"),
                (364 * DAY, "364d"),
                (2 * YEAR + DAY, "2y"),
            ],
        );
    }
}
