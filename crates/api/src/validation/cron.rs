//! The cron schedule syntax CronJobs accept, with the error texts of the parser upstream
//! uses (`robfig/cron/v3`'s `ParseStandard`): five fields or a `@` descriptor, optionally
//! after a `TZ=`/`CRON_TZ=` prefix.

use super::tz;
use super::util::go_quote;

/// The bounds and names of one schedule field.
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Parses a schedule as `cron.ParseStandard` does; the error is its message.
pub(super) fn parse_standard(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".to_owned());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let (name, rest) = match spec.find(' ') {
            Some(i) => (&spec[eq + 1..i], &spec[i..]),
            None => (&spec[eq + 1..], ""),
        };
        if let Err(e) = load_location(name) {
            return Err(format!("provided bad location {name}: {e}"));
        }
        spec = rest.trim();
    }
    if spec.starts_with('@') {
        return descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (f, bounds) in fields.iter().zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW]) {
        for expr in f.split(',').filter(|e| !e.is_empty()) {
            range(expr, bounds)?;
        }
    }
    Ok(())
}

/// Go's `time.LoadLocation` on the names it knows.
pub(super) fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" || tz::is_known(name) {
        Ok(())
    } else {
        Err(format!("unknown time zone {name}"))
    }
}

fn descriptor(spec: &str) -> Result<(), String> {
    match spec {
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => {
            Ok(())
        }
        _ => match spec.strip_prefix("@every ") {
            Some(d) => {
                go_parse_duration(d).map_err(|e| format!("failed to parse duration {spec}: {e}"))
            }
            None => Err(format!("unrecognized descriptor: {spec}")),
        },
    }
}

/// One `start-end/step` expression of a field (robfig's `getRange`).
fn range(expr: &str, r: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = r.min;
        end = r.max;
    } else {
        start = int_or_name(low_and_high[0], r)?;
        end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], r)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = r.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < r.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            r.min
        ));
    }
    if end > r.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            r.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn int_or_name(expr: &str, r: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, n)) = r.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*n);
    }
    must_parse_int(expr)
}

fn must_parse_int(expr: &str) -> Result<u64, String> {
    let num = go_atoi(expr).map_err(|e| format!("failed to parse int from {expr}: {e}"))?;
    u64::try_from(num).map_err(|_| format!("negative number ({num}) not allowed: %!s(int={num})"))
}

/// Go's `strconv.Atoi` with its error texts.
fn go_atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            go_quote(s)
        ));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", go_quote(s)))
}

/// Go's `time.ParseDuration` syntax check, with its error texts.
fn go_parse_duration(orig: &str) -> Result<(), String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig.strip_prefix(['-', '+']).unwrap_or(orig);
    if s == "0" {
        return Ok(());
    }
    if s.is_empty() {
        return Err(invalid());
    }
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let pre = s.bytes().take_while(u8::is_ascii_digit).count();
        s = &s[pre..];
        let mut post = 0;
        if let Some(rest) = s.strip_prefix('.') {
            post = rest.bytes().take_while(u8::is_ascii_digit).count();
            s = &rest[post..];
        }
        if pre == 0 && post == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&unit) {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                go_quote(unit),
                go_quote(orig)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, want: Result<(), &str>) {
        assert_eq!(
            parse_standard(spec),
            want.map_err(str::to_owned),
            "{spec:?}"
        );
    }

    #[test]
    fn standard_schedules_and_descriptors_parse() {
        for ok in [
            "*/5 * * * *",
            "0 0 * * 0",
            "0 9-17 * * mon-fri",
            "15,45 */2 1 JAN,jul ?",
            "@hourly",
            "@every 1h30m",
            "TZ=Europe/Berlin 0 3 * * *",
        ] {
            check(ok, Ok(()));
        }
    }

    #[test]
    fn bad_schedules_report_robfig_errors() {
        check("", Err("empty spec string"));
        check("x", Err("expected exactly 5 fields, found 1: [x]"));
        check(
            "* * * *  * *",
            Err("expected exactly 5 fields, found 6: [* * * * * *]"),
        );
        check(
            "x * * * *",
            Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"),
        );
        check(
            "61 * * * *",
            Err("end of range (61) above maximum (59): 61"),
        );
        check(
            "* * 0 * *",
            Err("beginning of range (0) below minimum (1): 0"),
        );
        check(
            "5-1 * * * *",
            Err("beginning of range (5) beyond end of range (1): 5-1"),
        );
        check(
            "*/0 * * * *",
            Err("step of range should be a positive number: */0"),
        );
        check("1-2-3 * * * *", Err("too many hyphens: 1-2-3"));
        check("*/1/2 * * * *", Err("too many slashes: */1/2"));
        check("@often", Err("unrecognized descriptor: @often"));
        check(
            "@every x",
            Err("failed to parse duration @every x: time: invalid duration \"x\""),
        );
        check(
            "TZ=Nowhere/Land * * * * *",
            Err("provided bad location Nowhere/Land: unknown time zone Nowhere/Land"),
        );
    }
}
