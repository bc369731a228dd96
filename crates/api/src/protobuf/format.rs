//! The JSON spellings of apimachinery's time types, as Go writes them: RFC 3339 in UTC for
//! `Time` (whole seconds) and `MicroTime` (six fractional digits), and Go's
//! `time.Duration` string for `Duration`.

/// Seconds from Go's zero time (January 1 of year 1, UTC) to the Unix epoch, negated: a
/// `Time` at this instant is Go's zero value, which JSON writes as `null`.
pub(crate) const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// A UTC date and time, normalised from Unix seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

/// Normalises (seconds, nanos) as Go's `time.Unix` does (nanos outside `0..1e9` carry into
/// the seconds) and converts to a UTC calendar date; `None` outside the years 0–9999, which
/// RFC 3339 cannot spell.
pub(crate) fn civil(seconds: i64, nanos: i64) -> Option<Civil> {
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let secs = total.div_euclid(1_000_000_000);
    let nanos = u32::try_from(total.rem_euclid(1_000_000_000)).ok()?;
    let days = secs.div_euclid(86_400);
    let in_day = u32::try_from(secs.rem_euclid(86_400)).ok()?;
    // Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).ok()?;
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).ok()?;
    let year = yoe + era * 400 + i128::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(Civil {
        year: i64::try_from(year).ok()?,
        month,
        day,
        hour: in_day / 3600,
        minute: in_day / 60 % 60,
        second: in_day % 60,
        nanos,
    })
}

impl Civil {
    fn date_time(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2024-01-02T03:04:05Z`: `meta.v1.Time` (fractions are dropped, as Go's RFC 3339
    /// layout drops them).
    pub(crate) fn rfc3339(&self) -> String {
        format!("{}Z", self.date_time())
    }

    /// `2024-01-02T03:04:05.123456Z`: `meta.v1.MicroTime` (truncated to microseconds).
    pub(crate) fn rfc3339_micro(&self) -> String {
        format!("{}.{:06}Z", self.date_time(), self.nanos / 1000)
    }
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(crate) fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let negative = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Below one second: the largest unit that keeps an integer part.
        let (scale, unit) = match u {
            0..1_000 => (1, "ns"),
            1_000..1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        out.push_str(&with_fraction(u / scale, u % scale, scale));
        out.push_str(unit);
    } else {
        let seconds = u / 1_000_000_000;
        let fraction = u % 1_000_000_000;
        let (hours, minutes, secs) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || minutes > 0 {
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&with_fraction(secs, fraction, 1_000_000_000));
        out.push('s');
    }
    if negative {
        out.insert(0, '-');
    }
    out
}

/// `whole.fraction` with the fraction's trailing zeros (and a bare dot) dropped; `scale` is
/// the fraction's denominator, a power of ten.
fn with_fraction(whole: u64, fraction: u64, scale: u64) -> String {
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let text = format!("{fraction:0digits$}");
    format!("{whole}.{}", text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: i64, nanos: i64) -> Option<String> {
        civil(seconds, nanos).map(|c| c.rfc3339())
    }

    #[test]
    fn times_spell_like_go_rfc3339_in_utc() {
        assert_eq!(time(0, 0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            time(1_704_164_645, 999_999_999).as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        // 2000-02-29, a leap day in a century leap year.
        assert_eq!(
            time(951_782_400, 0).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(time(-1, 0).as_deref(), Some("1969-12-31T23:59:59Z"));
        // Nanos outside 0..1e9 carry, as with Go's time.Unix.
        assert_eq!(time(10, -1).as_deref(), Some("1970-01-01T00:00:09Z"));
        assert_eq!(
            time(GO_ZERO_UNIX, 0).as_deref(),
            Some("0001-01-01T00:00:00Z")
        );
        assert_eq!(time(253_402_300_800, 0), None, "year 10000");
        assert_eq!(time(i64::MIN, i64::MIN), None);
    }

    #[test]
    fn micro_times_keep_six_digits() {
        let civil = civil(1_704_164_645, 123_456_789).expect("in range");
        assert_eq!(civil.rfc3339_micro(), "2024-01-02T03:04:05.123456Z");
        let civil = civil_or_panic(1_704_164_645, 0);
        assert_eq!(civil.rfc3339_micro(), "2024-01-02T03:04:05.000000Z");
    }

    fn civil_or_panic(seconds: i64, nanos: i64) -> Civil {
        civil(seconds, nanos).expect("in range")
    }

    #[test]
    fn durations_spell_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1), "1ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(1_000_000_000), "1s");
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(-90_000_000_000), "-1m30s");
        assert_eq!(go_duration(i64::MIN), "-2562047h47m16.854775808s");
    }
}
