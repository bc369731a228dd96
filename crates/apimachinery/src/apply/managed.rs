//! `metadata.managedFields` in memory: manager identifiers, versioned field sets and their
//! times, decoded from and encoded to the API form exactly as upstream does.
//!
//! A manager is identified by its name, operation, subresource and, for updates only, the
//! API version (appliers keep one entry across versions); the identifier is the JSON of
//! those fields, as upstream builds it, so that maps of managers sort as upstream's do.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::ApplyError;
use super::fieldpath::FieldSet;
use super::gojson::{self, Escapes};
use crate::gofmt;

/// `operation` of entries written by server-side apply.
pub const OPERATION_APPLY: &str = "Apply";
/// `operation` of entries written by every other write.
pub const OPERATION_UPDATE: &str = "Update";
/// The only `fieldsType` there is.
pub const FIELDS_V1: &str = "FieldsV1";

/// A point in time with whole seconds, as `metav1.Time` serialises (RFC 3339, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The time `seconds` after the Unix epoch.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (`2024-01-02T03:04:05Z`, fractions and offsets allowed), as Go's
    /// `time.RFC3339` layout does; fractions of a second are dropped.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = b.get(range)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        if second > 60 {
            return None;
        }
        let mut rest = &s[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            rest = &frac[n..];
        }
        let offset = match rest {
            "Z" => 0,
            _ => {
                let rb = rest.as_bytes();
                if rb.len() != 6 || rb[3] != b':' {
                    return None;
                }
                let sign = match rb[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let h: i64 = rest.get(1..3)?.parse().ok()?;
                let m: i64 = rest.get(4..6)?.parse().ok()?;
                sign * (h * 3600 + m * 60)
            }
        };
        let days = days_from_civil(year, month, day);
        Some(Self(
            days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        ))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The identifier of a manager: the JSON of its name, operation, API version (updates
/// only) and subresource, as upstream's `BuildManagerIdentifier` writes it.
pub(crate) fn identifier(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut field = |out: &mut String, name: &str, value: &str| {
        if value.is_empty() {
            return;
        }
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        gojson::write_string(out, value, Escapes::Std);
    };
    field(&mut out, "manager", manager);
    field(&mut out, "operation", operation);
    if operation != OPERATION_APPLY {
        field(&mut out, "apiVersion", api_version);
    }
    field(&mut out, "subresource", subresource);
    out.push('}');
    out
}

/// The parts of an identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManagerInfo {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub subresource: String,
}

impl ManagerInfo {
    pub(crate) fn parse(identifier: &str) -> Option<Self> {
        let Value::Object(map) = serde_json::from_str::<Value>(identifier).ok()? else {
            return None;
        };
        let get = |k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Some(Self {
            manager: get("manager"),
            operation: get("operation"),
            api_version: get("apiVersion"),
            subresource: get("subresource"),
        })
    }
}

/// How upstream names a manager in conflict messages: `"name"`, `"name" with subresource
/// "status"`, and for updates ` using apps/v1`.
pub(crate) fn print_manager(identifier: &str) -> String {
    let Some(info) = ManagerInfo::parse(identifier) else {
        return gofmt::quote(identifier);
    };
    let mut out = gofmt::quote(&info.manager);
    if !info.subresource.is_empty() {
        out = format!("{out} with subresource {}", gofmt::quote(&info.subresource));
    }
    if info.operation == OPERATION_UPDATE {
        out = format!("{out} using {}", info.api_version);
    }
    out
}

/// The fields one manager owns, at the API version it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionedSet {
    pub set: FieldSet,
    pub api_version: String,
    pub applied: bool,
}

/// Decoded `managedFields`: per manager identifier its fields and its time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Managed {
    pub fields: BTreeMap<String, VersionedSet>,
    /// Present for every decoded entry (`None` when it had no time) and for every manager
    /// whose operation changed the object.
    pub times: BTreeMap<String, Option<Timestamp>>,
}

/// One `ManagedFieldsEntry`, as far as the field manager reads it.
#[derive(Debug, Clone, Default)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<Timestamp>,
    fields_type: String,
    fields_v1: Option<Value>,
    subresource: String,
}

fn decode_entry(v: &Value) -> Result<Entry, String> {
    let Value::Object(map) = v else {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type v1.ManagedFieldsEntry",
            json_kind(v)
        ));
    };
    let string = |key: &str| -> Result<String, String> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!(
                "json: cannot unmarshal {} into Go struct field ManagedFieldsEntry.{key} of type string",
                json_kind(other)
            )),
        }
    };
    let time = match map.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            Timestamp::parse_rfc3339(s)
                .ok_or_else(|| format!("parsing time {} as RFC 3339", gofmt::quote(s)))?,
        ),
        Some(other) => {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field ManagedFieldsEntry.time of type string",
                json_kind(other)
            ));
        }
    };
    Ok(Entry {
        manager: string("manager")?,
        operation: string("operation")?,
        api_version: string("apiVersion")?,
        time,
        fields_type: string("fieldsType")?,
        fields_v1: map.get("fieldsV1").filter(|v| !v.is_null()).cloned(),
        subresource: string("subresource")?,
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a request's `managedFields` asks for a reset: an empty list, or a list of one
/// empty entry.
pub(crate) fn is_reset(entries: Option<&Value>) -> bool {
    match entries {
        Some(Value::Array(items)) => match items.as_slice() {
            [] => true,
            [only] => only
                .as_object()
                .is_some_and(|m| m.values().all(|v| v.is_null() || v.as_str() == Some(""))),
            _ => false,
        },
        _ => false,
    }
}

/// Decodes `managedFields` (absent or `null` is empty), validating entries as upstream's
/// `DecodeManagedFields` does.
pub(crate) fn decode(entries: Option<&Value>) -> Result<Managed, ApplyError> {
    let bad = ApplyError::InvalidManagedFields;
    let items = match entries {
        None | Some(Value::Null) => return Ok(Managed::default()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(bad(format!(
                "json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.managedFields of type []v1.ManagedFieldsEntry",
                json_kind(other)
            )));
        }
    };
    let mut managed = Managed::default();
    for (i, item) in items.iter().enumerate() {
        let entry = decode_entry(item).map_err(bad)?;
        if entry.operation != OPERATION_APPLY && entry.operation != OPERATION_UPDATE {
            return Err(bad("operation must be `Apply` or `Update`".to_owned()));
        }
        if entry.api_version.is_empty() {
            return Err(bad("apiVersion must not be empty".to_owned()));
        }
        match entry.fields_type.as_str() {
            FIELDS_V1 => {}
            "" => {
                return Err(bad(format!(
                    "missing fieldsType in managed fields entry {i}"
                )));
            }
            other => {
                return Err(bad(format!(
                    "invalid fieldsType {} in managed fields entry {i}",
                    gofmt::quote(other)
                )));
            }
        }
        let id = identifier(
            &entry.manager,
            &entry.operation,
            &entry.api_version,
            &entry.subresource,
        );
        let set = match &entry.fields_v1 {
            Some(v) => FieldSet::from_fields_v1(v).map_err(|e| {
                bad(format!(
                    "error decoding versioned set: error decoding set: {e}"
                ))
            })?,
            None => FieldSet::new(),
        };
        managed.fields.insert(
            id.clone(),
            VersionedSet {
                set,
                api_version: entry.api_version,
                applied: entry.operation == OPERATION_APPLY,
            },
        );
        managed.times.insert(id, entry.time);
    }
    Ok(managed)
}

/// Encodes managers back into `managedFields` entries, sorted as upstream sorts them
/// (operation, time, manager, API version, subresource); `None` when there are none.
pub(crate) fn encode(managed: &Managed) -> Option<Value> {
    if managed.fields.is_empty() {
        return None;
    }
    let mut entries: Vec<Entry> = managed
        .fields
        .iter()
        .map(|(id, vs)| {
            let info = ManagerInfo::parse(id).unwrap_or_default();
            Entry {
                manager: info.manager,
                operation: if vs.applied {
                    OPERATION_APPLY.to_owned()
                } else {
                    info.operation
                },
                api_version: vs.api_version.clone(),
                time: managed.times.get(id).copied().flatten(),
                fields_type: FIELDS_V1.to_owned(),
                fields_v1: Some(vs.set.to_fields_v1()),
                subresource: info.subresource,
            }
        })
        .collect();
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| {
                let secs = |e: &Entry| e.time.map_or(0, Timestamp::unix_seconds);
                secs(p).cmp(&secs(q))
            })
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    Some(Value::Array(entries.into_iter().map(entry_value).collect()))
}

/// An entry in upstream's field order, empty fields left out.
fn entry_value(e: Entry) -> Value {
    fn put(map: &mut Map<String, Value>, k: &str, v: &str) {
        if !v.is_empty() {
            map.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    }
    let mut map = Map::new();
    put(&mut map, "manager", &e.manager);
    put(&mut map, "operation", &e.operation);
    put(&mut map, "apiVersion", &e.api_version);
    if let Some(t) = e.time {
        put(&mut map, "time", &t.to_string());
    }
    put(&mut map, "fieldsType", &e.fields_type);
    if let Some(fields) = e.fields_v1 {
        map.insert("fieldsV1".to_owned(), fields);
    }
    put(&mut map, "subresource", &e.subresource);
    Value::Object(map)
}

/// Upstream keeps at most this many update entries, merging the oldest.
pub(crate) const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager name of the buckets that old update entries are merged into.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Merges the oldest update entries into one `ancient-changes` bucket per API version until
/// at most `max` update entries remain (upstream's `capUpdateManagers`).
pub(crate) fn cap_update_managers(managed: &mut Managed, max: usize) {
    let mut updaters: Vec<String> = managed
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= max {
        return;
    }
    let secs = |m: &Managed, id: &str| {
        m.times
            .get(id)
            .copied()
            .flatten()
            .map_or(0, Timestamp::unix_seconds)
    };
    updaters.sort_by(|a, b| {
        secs(managed, a)
            .cmp(&secs(managed, b))
            .then_with(|| a.cmp(b))
    });
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for id in updaters {
        if length <= max {
            break;
        }
        let Some(vs) = managed.fields.get(&id).cloned() else {
            continue;
        };
        let time = managed.times.get(&id).copied().flatten();
        let bucket = identifier(ANCIENT_CHANGES, OPERATION_UPDATE, &vs.api_version, "");
        match first_of_version.get(&vs.api_version) {
            Some(first) => {
                if !managed.fields.contains_key(&bucket)
                    && let Some(first_set) = managed.fields.remove(first)
                {
                    managed.fields.insert(bucket.clone(), first_set);
                }
                let merged = match managed.fields.get(&bucket) {
                    Some(existing) => vs.set.union(&existing.set),
                    None => vs.set.clone(),
                };
                managed.fields.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: merged,
                        api_version: vs.api_version.clone(),
                        applied: vs.applied,
                    },
                );
                managed.fields.remove(&id);
                length -= 1;
                managed.times.insert(bucket, time);
            }
            None => {
                first_of_version.insert(vs.api_version.clone(), id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_rfc3339() {
        let check = |s: &str, secs: i64, printed: &str| {
            let t = Timestamp::parse_rfc3339(s);
            assert_eq!(t.map(Timestamp::unix_seconds), Some(secs), "{s}");
            assert_eq!(t.map(|t| t.to_string()).as_deref(), Some(printed), "{s}");
        };
        check("1970-01-01T00:00:00Z", 0, "1970-01-01T00:00:00Z");
        check(
            "2024-02-29T12:34:56Z",
            1_709_210_096,
            "2024-02-29T12:34:56Z",
        );
        check(
            "2024-02-29T14:34:56.123+02:00",
            1_709_210_096,
            "2024-02-29T12:34:56Z",
        );
        assert_eq!(Timestamp::parse_rfc3339("2024-02-29 12:34:56Z"), None);
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn identifiers_leave_out_the_version_of_appliers() {
        assert_eq!(
            identifier("kubectl", "Apply", "apps/v1", ""),
            r#"{"manager":"kubectl","operation":"Apply"}"#
        );
        assert_eq!(
            identifier("kubectl", "Update", "apps/v1", "scale"),
            r#"{"manager":"kubectl","operation":"Update","apiVersion":"apps/v1","subresource":"scale"}"#
        );
        assert_eq!(
            print_manager(&identifier("kubectl", "Update", "apps/v1", "scale")),
            r#""kubectl" with subresource "scale" using apps/v1"#
        );
        assert_eq!(print_manager(&identifier("a", "Apply", "v1", "")), r#""a""#);
    }
}
