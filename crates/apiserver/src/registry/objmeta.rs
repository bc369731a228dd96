//! Object-meta plumbing shared by the registry: timestamps, uids, generated names, and small
//! helpers to read and edit JSON objects without panicking on malformed input.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};

/// Upstream's alphabet for random name suffixes (`k8s.io/apimachinery/pkg/util/rand`): no
/// vowels, no confusable characters.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The length of the random suffix `generateName` appends.
const SUFFIX_LENGTH: usize = 5;

/// Names are cut to this length before the suffix is appended (63 - 5), as upstream does.
const MAX_GENERATED_PREFIX: usize = 58;

/// The current time in whole seconds since the epoch.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `metav1.Time` as upstream serialises it: RFC 3339 in UTC with whole seconds.
pub(crate) fn rfc3339(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01T00:00:00Z".to_owned(),
    }
}

/// The current time as a `metav1.Time` string.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(now_unix())
}

/// Parses an RFC 3339 timestamp (`2024-01-02T03:04:05Z`, optional fraction, `Z` or an offset)
/// into whole seconds since the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> { s.get(from..to)?.parse().ok() };
    let year = i32::try_from(num(0, 4)?).ok()?;
    let month = u8::try_from(num(5, 7)?).ok()?;
    let day = u8::try_from(num(8, 10)?).ok()?;
    let hour = u8::try_from(num(11, 13)?).ok()?;
    let minute = u8::try_from(num(14, 16)?).ok()?;
    let second = u8::try_from(num(17, 19)?).ok()?;
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
    };
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let clock = time::Time::from_hms(hour, minute, second).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp()
            - offset,
    )
}

/// Fills `buf` with random bytes from the system; should the system source fail, falls back to
/// a time-and-counter mix so that uids stay unique within the process.
fn random_bytes(buf: &mut [u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    if SystemRandom::new().fill(buf).is_ok() {
        return;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    for byte in buf.iter_mut() {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *byte = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
    }
}

/// A random (version 4) UUID, as upstream gives every object.
pub(crate) fn new_uid() -> String {
    let mut b = [0u8; 16];
    random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `generateName` + five random characters from upstream's alphabet, the prefix cut to 58
/// bytes first (`names.SimpleNameGenerator`).
pub(crate) fn generate_name(base: &str) -> String {
    let mut cut = base.len().min(MAX_GENERATED_PREFIX);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut name = base[..cut].to_owned();
    let mut produced = 0;
    while produced < SUFFIX_LENGTH {
        let mut buf = [0u8; 16];
        random_bytes(&mut buf);
        for byte in buf {
            // Rejection sampling keeps the choice uniform: 243 = 9 * 27.
            if byte < 243 && produced < SUFFIX_LENGTH {
                name.push(char::from(
                    SUFFIX_ALPHABET[usize::from(byte) % SUFFIX_ALPHABET.len()],
                ));
                produced += 1;
            }
        }
    }
    name
}

/// Go's `%q` for the strings that appear in error messages (names, node names): JSON string
/// escaping matches it for everything but exotic control characters.
pub(crate) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The value at a dotted path of object keys (`["spec", "nodeName"]`).
pub(crate) fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(*k))
}

/// The string at a path, if it is one.
pub(crate) fn str_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(obj, path)?.as_str()
}

/// The object map of `obj`, replacing a non-object with an empty object.
pub(crate) fn object_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    match obj {
        Value::Object(map) => map,
        _ => unreachable!("replaced by an object above"),
    }
}

/// The child object `key` of `obj`, created (or replacing a non-object) when needed.
pub(crate) fn child_mut<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    let map = object_mut(obj);
    let child = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    child
}

/// Sets `obj[key] = value`.
pub(crate) fn set(obj: &mut Value, key: &str, value: Value) {
    object_mut(obj).insert(key.to_owned(), value);
}

/// Removes `obj[key]`, returning it.
pub(crate) fn remove(obj: &mut Value, key: &str) -> Option<Value> {
    obj.as_object_mut()?.remove(key)
}

/// Sets `metadata.<key>`, creating `metadata` when needed.
pub(crate) fn set_meta(obj: &mut Value, key: &str, value: Value) {
    set(child_mut(obj, "metadata"), key, value);
}

/// Removes `metadata.<key>`.
pub(crate) fn remove_meta(obj: &mut Value, key: &str) -> Option<Value> {
    obj.get_mut("metadata")?.as_object_mut()?.remove(key)
}

/// `metadata.<key>` as a raw value.
pub(crate) fn meta_value<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get("metadata")?.get(key)
}

/// Copies `key` from `from` into `to` (removing it from `to` when `from` lacks it).
pub(crate) fn copy_field(to: &mut Value, from: &Value, key: &str) {
    match from.get(key) {
        Some(v) => set(to, key, v.clone()),
        None => {
            remove(to, key);
        }
    }
}

/// Copies `metadata.<key>` from `from` into `to` (removing it when `from` lacks it).
pub(crate) fn copy_meta(to: &mut Value, from: &Value, key: &str) {
    match meta_value(from, key) {
        Some(v) => set_meta(to, key, v.clone()),
        None => {
            remove_meta(to, key);
        }
    }
}

/// Whether two values are equal the way upstream's semantic equality sees API objects: a
/// `null` field equals an absent one and an empty list equals an absent one (Go's nil and empty
/// slices compare equal there).
pub(crate) fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    fn normal(v: Option<&Value>) -> Option<Value> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.is_empty() => None,
            Some(Value::Array(items)) => Some(Value::Array(
                items
                    .iter()
                    .map(|i| normal(Some(i)).unwrap_or(Value::Null))
                    .collect(),
            )),
            Some(Value::Object(map)) => Some(Value::Object(
                map.iter()
                    .filter_map(|(k, v)| normal(Some(v)).map(|v| (k.clone(), v)))
                    .collect(),
            )),
            Some(other) => Some(other.clone()),
        }
    }
    normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn uids_are_version_4_uuids() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.as_bytes()[14], b'4');
        assert!(matches!(uid.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(uid, new_uid());
    }

    #[test]
    fn generated_names_use_upstreams_alphabet_and_length() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
        assert!(name[4..].bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
        let long = "x".repeat(80);
        assert_eq!(generate_name(&long).len(), 63);
    }

    #[test]
    fn semantic_equality_ignores_nulls_and_empty_lists() {
        assert!(semantic_eq(
            Some(&json!({"a": 1, "b": null, "c": []})),
            Some(&json!({"a": 1}))
        ));
        assert!(!semantic_eq(Some(&json!({"a": 1})), Some(&json!({"a": 2}))));
        assert!(semantic_eq(None, Some(&json!(null))));
    }
}
