//! Shared helpers for defaulting and validation: tolerant readers of JSON objects, Go-style
//! renderings of typed bad values, and the small validators every kind uses.
//!
//! Objects arrive as `serde_json::Value` after the HTTP layer decoded them; a field of the
//! wrong JSON type is that layer's problem, so readers here treat it as absent instead of
//! failing (and never panic).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tug_apimachinery::labels::LabelSelector;
use tug_apimachinery::validation::{
    self as v, BadValue, ErrorList, FIELD_IMMUTABLE_ERROR_MSG, FieldError, Path,
};

// ---------------------------------------------------------------------------------------------
// Readers.

/// The child `key` of an object, unless absent or `null`.
pub(crate) fn get<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// The value at a chain of object keys.
pub(crate) fn at<'a>(obj: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(obj, |cur, k| get(cur, k))
}

/// The string child `key` (`None` when absent or not a string).
pub(crate) fn str_of<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// The string child `key`, or `""` (Go's zero value).
pub(crate) fn s<'a>(obj: &'a Value, key: &str) -> &'a str {
    str_of(obj, key).unwrap_or("")
}

/// The integer child `key`.
pub(crate) fn int_of(obj: &Value, key: &str) -> Option<i64> {
    obj.get(key).and_then(Value::as_i64)
}

/// The boolean child `key`.
pub(crate) fn bool_of(obj: &Value, key: &str) -> Option<bool> {
    obj.get(key).and_then(Value::as_bool)
}

/// The list child `key`, or an empty slice.
pub(crate) fn arr<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object child `key`.
pub(crate) fn map_of<'a>(obj: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    obj.get(key).and_then(Value::as_object)
}

/// A `map[string]string` child: its string entries, sorted by key (`None` when absent).
pub(crate) fn str_map(obj: &Value, key: &str) -> Option<BTreeMap<String, String>> {
    map_of(obj, key).map(|m| {
        m.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect()
    })
}

/// The string items of a list child.
pub(crate) fn str_list(obj: &Value, key: &str) -> Vec<String> {
    arr(obj, key)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Whether a value is what Go would hold for an unset field: null, `""`, `0`, `false`, or an
/// empty (or all-unset) list or object.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(is_unset),
    }
}

/// Whether two optional values are equal the way Go's semantic equality sees the typed
/// objects they decode to: an absent field equals its zero value, and an empty list or
/// object equals none at all.
pub(crate) fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    let a = a.filter(|v| !is_unset(v));
    let b = b.filter(|v| !is_unset(v));
    match (a, b) {
        (None, None) => true,
        (Some(Value::Object(x)), Some(Value::Object(y))) => x
            .keys()
            .chain(y.keys())
            .all(|k| semantic_eq(x.get(k), y.get(k))),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| semantic_eq(Some(p), Some(q)) || (is_unset(p) && is_unset(q)))
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A `LabelSelector` read from JSON (`None` when absent or malformed).
pub(crate) fn label_selector(obj: &Value, key: &str) -> Option<LabelSelector> {
    get(obj, key).and_then(|v| serde_json::from_value(v.clone()).ok())
}

// ---------------------------------------------------------------------------------------------
// Go renderings of typed values, as `%#v` and `%q` print them in `field.Invalid` messages.

/// Go's `strconv.Quote` (one implementation for the whole project, in apimachinery).
pub(crate) fn go_quote(s: &str) -> String {
    tug_apimachinery::gofmt::quote(s)
}

/// `%#v` of a `map[string]string` (`map[string]string(nil)` when absent).
pub(crate) fn go_str_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".to_owned(),
        Some(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// `%#v` of a `[]string` (`[]string(nil)` when empty and absent).
pub(crate) fn go_str_slice(items: &[String], present: bool) -> String {
    if items.is_empty() && !present {
        return "[]string(nil)".to_owned();
    }
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// An `intstr.IntOrString` read from JSON: `Ok(int)` or `Err(string)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IntOrStr {
    /// `Type: 0`.
    Int(i64),
    /// `Type: 1`.
    Str(String),
}

impl IntOrStr {
    /// Reads one from JSON (`None` when absent or neither an integer nor a string).
    pub(crate) fn from_json(v: Option<&Value>) -> Option<Self> {
        match v? {
            Value::Number(n) => n.as_i64().map(IntOrStr::Int),
            Value::String(s) => Some(IntOrStr::Str(s.clone())),
            _ => None,
        }
    }

    /// `%#v`, e.g. `intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}`.
    pub(crate) fn go(&self) -> String {
        match self {
            IntOrStr::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
            IntOrStr::Str(s) => format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                go_quote(s)
            ),
        }
    }

    /// Upstream's `IntValue()`: the integer, or the string parsed as one (0 when it isn't).
    pub(crate) fn int_value(&self) -> i64 {
        match self {
            IntOrStr::Int(i) => *i,
            IntOrStr::Str(s) => s.parse().unwrap_or(0),
        }
    }

    /// The percentage of a valid `N%` string.
    pub(crate) fn percent(&self) -> Option<i64> {
        match self {
            IntOrStr::Str(s) if v::is_valid_percent(s).is_empty() => {
                s.trim_end_matches('%').parse().ok()
            }
            _ => None,
        }
    }

    /// Upstream's `getIntOrPercentValue`.
    pub(crate) fn int_or_percent(&self) -> i64 {
        self.percent().unwrap_or_else(|| self.int_value())
    }
}

/// `%#v` of a `metav1.LabelSelector` (after the pointer was dereferenced).
pub(crate) fn go_label_selector(sel: &Value) -> String {
    let labels = str_map(sel, "matchLabels");
    let exprs = arr(sel, "matchExpressions");
    let exprs_go = if exprs.is_empty() {
        if get(sel, "matchExpressions").is_some() {
            "[]v1.LabelSelectorRequirement{}".to_owned()
        } else {
            "[]v1.LabelSelectorRequirement(nil)".to_owned()
        }
    } else {
        let items: Vec<String> = exprs
            .iter()
            .map(|e| {
                format!(
                    "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                    go_quote(s(e, "key")),
                    go_quote(s(e, "operator")),
                    go_str_slice(&str_list(e, "values"), get(e, "values").is_some())
                )
            })
            .collect();
        format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_str_map(labels.as_ref()),
        exprs_go
    )
}

/// `%#v` of a pointer-free `*int32`/`*int64` field: the number, or `"null"` when nil.
pub(crate) fn int_ptr(v: Option<i64>) -> BadValue {
    v.map_or(BadValue::Null, BadValue::Int)
}

/// A JSON value shown for a typed Go struct upstream would print with `%#v`. Scalars print
/// as Go prints them; structures print as compact JSON (a documented approximation).
pub(crate) fn bad(v: Option<&Value>) -> BadValue {
    match v {
        None => BadValue::Null,
        Some(v) => BadValue::from(v),
    }
}

/// Upstream renders a `metav1.Time` with its `String()`: `2006-01-02 15:04:05 +0000 UTC`.
pub(crate) fn go_time(v: Option<&Value>) -> BadValue {
    let Some(text) = v.and_then(Value::as_str) else {
        return BadValue::Null;
    };
    match text.parse::<k8s_openapi::jiff::Timestamp>() {
        Ok(ts) => BadValue::Raw(ts.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()),
        Err(_) => BadValue::Str(text.to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// Small validators shared by every kind.

/// Upstream's `ValidateImmutableField`: `Invalid ... field is immutable` when the values differ
/// semantically; `shown` is the rendering of the new value.
pub(crate) fn immutable(
    new: Option<&Value>,
    old: Option<&Value>,
    shown: BadValue,
    path: &Path,
) -> ErrorList {
    if semantic_eq(new, old) {
        ErrorList::new()
    } else {
        FieldError::invalid(path, shown, FIELD_IMMUTABLE_ERROR_MSG).into()
    }
}

/// `ValidateNonnegativeField`.
pub(crate) fn nonnegative(value: i64, path: &Path) -> ErrorList {
    v::validate_nonnegative_field(value, path)
}

/// `ValidateNonnegativeField` for an optional field.
pub(crate) fn nonnegative_opt(obj: &Value, key: &str, path: &Path) -> ErrorList {
    int_of(obj, key).map_or_else(ErrorList::new, |n| nonnegative(n, &path.child(key)))
}

/// Wraps `is_*` messages into `Invalid` errors for `value` at `path`.
pub(crate) fn msgs(value: &str, path: &Path, messages: Vec<String>) -> ErrorList {
    messages
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `ValidateDNS1123Label`.
pub(crate) fn dns1123_label(value: &str, path: &Path) -> ErrorList {
    msgs(value, path, v::is_dns1123_label(value))
}

/// `ValidateDNS1123Subdomain`.
pub(crate) fn dns1123_subdomain(value: &str, path: &Path) -> ErrorList {
    msgs(value, path, v::is_dns1123_subdomain(value))
}

/// `ValidateQualifiedName`.
pub(crate) fn qualified_name(value: &str, path: &Path) -> ErrorList {
    msgs(value, path, v::is_qualified_name(value))
}

/// Validates a label map child (`ValidateLabels`), if present.
pub(crate) fn labels(obj: &Value, key: &str, path: &Path) -> ErrorList {
    str_map(obj, key).map_or_else(ErrorList::new, |m| v::validate_labels(&m, path))
}

/// `sets.List` order for a set of names: sorted.
pub(crate) fn sorted<'a>(items: &[&'a str]) -> Vec<&'a str> {
    let mut v = items.to_vec();
    v.sort_unstable();
    v
}

/// Upstream's `LabelSelectorAsSelector` followed by `Matches`: `None` when the selector cannot
/// be built (upstream then reports it elsewhere), else whether `labels` match. A nil selector
/// matches nothing; an empty one matches everything.
pub(crate) fn selector_matches(
    sel: Option<&LabelSelector>,
    labels: &BTreeMap<String, String>,
) -> Option<bool> {
    let Some(sel) = sel else {
        return Some(false);
    };
    let built = tug_apimachinery::labels::Selector::from_label_selector(Some(sel)).ok()?;
    Some(built.matches(labels))
}

/// Whether a label selector is empty (matches everything).
pub(crate) fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.is_empty() && sel.match_expressions.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_renderings_match_percent_sharp_v() {
        let m: BTreeMap<String, String> = [("app".to_owned(), "x".to_owned())].into();
        assert_eq!(go_str_map(Some(&m)), r#"map[string]string{"app":"x"}"#);
        assert_eq!(go_str_map(None), "map[string]string(nil)");
        assert_eq!(
            IntOrStr::Int(0).go(),
            r#"intstr.IntOrString{Type:0, IntVal:0, StrVal:""}"#
        );
        assert_eq!(
            IntOrStr::Str("0%".into()).go(),
            r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}"#
        );
        assert_eq!(
            go_label_selector(&json!({"matchLabels": {"app": "y"}})),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"y"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            go_time(Some(&json!("2024-05-06T07:08:09Z"))),
            BadValue::Raw("2024-05-06 07:08:09 +0000 UTC".into())
        );
    }

    #[test]
    fn semantic_equality_ignores_empty_collections_and_nulls() {
        assert!(semantic_eq(Some(&json!({"a": []})), Some(&json!({}))));
        assert!(semantic_eq(None, Some(&json!(null))));
        assert!(!semantic_eq(Some(&json!({"a": 1})), Some(&json!({"a": 2}))));
    }
}
