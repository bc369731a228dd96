//! Field-path validation errors: the equivalent of upstream's `field.Error` and `field.ErrorList`.
//!
//! The `Display` output of [`FieldError`] and the aggregate message of [`ErrorList`] are
//! byte-for-byte what upstream prints, because they end up in `Status.message` and in
//! `details.causes[].message`, which clients show verbatim.

use std::fmt;

use serde_json::Value;

use crate::gofmt;

/// One step of a [`Path`]: a struct field, or a subscript (list index or map key).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Field(String),
    Subscript(String),
}

/// A path to a field inside an object, such as `spec.containers[0].name`.
///
/// The empty path is upstream's nil path and renders as `<nil>`; upstream's label
/// selector parser reports some errors against it, so the rendering matters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path {
    segments: Vec<Segment>,
}

impl Path {
    /// A path starting at the named top-level field, e.g. `Path::new("metadata")`.
    pub fn new(name: &str) -> Self {
        Self::default().child(name)
    }

    /// The path with no segments, which renders as `<nil>` like upstream's nil path.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether this is the segment-less (nil) path.
    pub fn is_none(&self) -> bool {
        self.segments.is_empty()
    }

    /// The path of a named field below this one.
    #[must_use]
    pub fn child(&self, name: &str) -> Self {
        let mut p = self.clone();
        p.segments.push(Segment::Field(name.to_owned()));
        p
    }

    /// The path of the `index`th element of the list at this path.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.segments.push(Segment::Subscript(index.to_string()));
        p
    }

    /// The path of the entry `key` of the map at this path.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.segments.push(Segment::Subscript(key.to_owned()));
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("<nil>");
        }
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Field(name) if i == 0 => f.write_str(name)?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Subscript(sub) => write!(f, "[{sub}]")?,
            }
        }
        Ok(())
    }
}

/// The kind of a [`FieldError`]; its [`reason`](ErrorType::reason) is the `details.causes[].reason` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A referenced value was not found (`FieldValueNotFound`).
    NotFound,
    /// A required value is missing (`FieldValueRequired`).
    Required,
    /// A value that must be unique is repeated (`FieldValueDuplicate`).
    Duplicate,
    /// The value is malformed or out of range (`FieldValueInvalid`).
    Invalid,
    /// The value is not one of an enumerated set (`FieldValueNotSupported`).
    NotSupported,
    /// The field may not be set in this situation (`FieldValueForbidden`).
    Forbidden,
    /// The value is too long (`FieldValueTooLong`).
    TooLong,
    /// The list has too many items (`FieldValueTooMany`).
    TooMany,
    /// Validation itself failed (`InternalError`).
    Internal,
    /// The value has the wrong type (`FieldValueTypeInvalid`).
    TypeInvalid,
}

impl ErrorType {
    /// The machine-readable cause type, e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human-readable phrase that starts the message, e.g. `Required value`.
    pub fn description(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }
}

/// The offending value carried by a [`FieldError`], rendered like Go's `%v`/`%q`/`%#v`.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// No value is shown (upstream's `omitValue`).
    Omitted,
    /// A nil value, printed as `"null"`.
    Null,
    /// A string, printed quoted.
    Str(String),
    /// An integer, printed bare.
    Int(i64),
    /// A float, printed bare in Go's shortest form.
    Float(f64),
    /// A boolean, printed bare.
    Bool(bool),
    /// A list of strings, printed like Go's `%#v` of a `[]string`.
    StrList(Vec<String>),
    /// Text printed exactly as given (for values whose Go rendering the caller knows).
    Raw(String),
}

impl BadValue {
    fn render(&self) -> String {
        match self {
            Self::Omitted => String::new(),
            Self::Null => gofmt::quote("null"),
            Self::Str(s) => gofmt::quote(s),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => gofmt::float(*f),
            Self::Bool(b) => b.to_string(),
            Self::StrList(items) => {
                let quoted: Vec<String> = items.iter().map(|s| gofmt::quote(s)).collect();
                format!("[]string{{{}}}", quoted.join(", "))
            }
            Self::Raw(s) => s.clone(),
        }
    }
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for BadValue {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<&String> for BadValue {
    fn from(s: &String) -> Self {
        Self::Str(s.clone())
    }
}

impl From<i64> for BadValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<i32> for BadValue {
    fn from(i: i32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<u32> for BadValue {
    fn from(i: u32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<bool> for BadValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for BadValue {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}

impl From<Vec<String>> for BadValue {
    fn from(v: Vec<String>) -> Self {
        Self::StrList(v)
    }
}

impl From<&Value> for BadValue {
    /// Scalars map to their Go equivalents; lists and objects are shown as compact JSON,
    /// where upstream would print Go syntax for its typed value (a documented deviation).
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Self::Int(i),
                None => Self::Float(n.as_f64().unwrap_or_default()),
            },
            Value::String(s) => Self::Str(s.clone()),
            other => Self::Raw(other.to_string()),
        }
    }
}

/// One validation failure at a field path, like upstream's `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What went wrong.
    pub kind: ErrorType,
    /// The rendered path of the field, e.g. `spec.containers[0].name`.
    pub field: String,
    /// The offending value.
    pub bad_value: BadValue,
    /// Further explanation; may be empty.
    pub detail: String,
}

impl FieldError {
    fn new(kind: ErrorType, path: &Path, bad_value: BadValue, detail: impl Into<String>) -> Self {
        Self {
            kind,
            field: path.to_string(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// A required field is missing (`spec.containers[0].image: Required value`).
    pub fn required(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorType::Required,
            path,
            BadValue::Str(String::new()),
            detail,
        )
    }

    /// The value is invalid.
    pub fn invalid(path: &Path, value: impl Into<BadValue>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, path, value.into(), detail)
    }

    /// The value has the wrong type.
    pub fn type_invalid(
        path: &Path,
        value: impl Into<BadValue>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorType::TypeInvalid, path, value.into(), detail)
    }

    /// A referenced value was not found.
    pub fn not_found(path: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::NotFound, path, value.into(), "")
    }

    /// The value duplicates another.
    pub fn duplicate(path: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::Duplicate, path, value.into(), "")
    }

    /// The value is not one of `valid`; the detail lists them quoted, in the given order.
    pub fn not_supported<S: AsRef<str>>(
        path: &Path,
        value: impl Into<BadValue>,
        valid: &[S],
    ) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| gofmt::quote(v.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, path, value.into(), detail)
    }

    /// The field may not be set here.
    pub fn forbidden(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorType::Forbidden,
            path,
            BadValue::Str(String::new()),
            detail,
        )
    }

    /// The value is longer than `max_length` bytes (`None`: no known limit).
    pub fn too_long(path: &Path, max_length: Option<usize>) -> Self {
        let detail = match max_length {
            Some(max) => format!("may not be more than {max} bytes"),
            None => "value is too long".to_owned(),
        };
        Self::new(
            ErrorType::TooLong,
            path,
            BadValue::Str("<value omitted>".to_owned()),
            detail,
        )
    }

    /// The list has `actual` items where at most `max` are allowed (`None`: unknown).
    pub fn too_many(path: &Path, actual: Option<usize>, max: Option<usize>) -> Self {
        let detail = match max {
            Some(max) => format!("must have at most {max} items"),
            None => "has too many items".to_owned(),
        };
        let value = match actual {
            Some(n) => BadValue::Int(i64::try_from(n).unwrap_or(i64::MAX)),
            None => BadValue::Omitted,
        };
        Self::new(ErrorType::TooMany, path, value, detail)
    }

    /// Validation could not be performed.
    pub fn internal(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, path, BadValue::Null, detail)
    }

    /// The message without the field path, as used in `details.causes[].message`.
    pub fn body(&self) -> String {
        let mut s = match (self.kind, &self.bad_value) {
            (
                ErrorType::Required
                | ErrorType::Forbidden
                | ErrorType::TooLong
                | ErrorType::Internal,
                _,
            )
            | (_, BadValue::Omitted) => self.kind.description().to_owned(),
            (_, value) => format!("{}: {}", self.kind.description(), value.render()),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// An accumulated list of [`FieldError`]s, like upstream's `field.ErrorList`.
///
/// Validation appends every problem it finds rather than stopping at the first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorList(Vec<FieldError>);

impl ErrorList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one error.
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// Appends every error of `other`.
    pub fn append(&mut self, other: ErrorList) {
        self.0.extend(other.0);
    }

    /// Whether there are no errors.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// The errors in the order they were found.
    pub fn as_slice(&self) -> &[FieldError] {
        &self.0
    }

    /// The combined message upstream's `ToAggregate().Error()` prints: `None` for an
    /// empty list, the single message for one distinct error, otherwise the distinct
    /// messages joined by `, ` inside brackets.
    pub fn aggregate_message(&self) -> Option<String> {
        let mut seen: Vec<String> = Vec::new();
        for e in &self.0 {
            let msg = e.to_string();
            if !seen.contains(&msg) {
                seen.push(msg);
            }
        }
        match seen.len() {
            0 => None,
            1 => seen.pop(),
            _ => Some(format!("[{}]", seen.join(", "))),
        }
    }
}

impl From<Vec<FieldError>> for ErrorList {
    fn from(v: Vec<FieldError>) -> Self {
        Self(v)
    }
}

impl From<FieldError> for ErrorList {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

impl FromIterator<FieldError> for ErrorList {
    fn from_iter<I: IntoIterator<Item = FieldError>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Extend<FieldError> for ErrorList {
    fn extend<I: IntoIterator<Item = FieldError>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for ErrorList {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ErrorList {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for ErrorList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.aggregate_message().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: FieldError, want: &str) {
        assert_eq!(err.to_string(), want);
    }

    #[test]
    fn paths_render_fields_indices_and_keys() {
        let spec = Path::new("spec");
        assert_eq!(
            spec.child("containers").index(0).child("name").to_string(),
            "spec.containers[0].name"
        );
        assert_eq!(
            Path::new("metadata").child("labels").key("app").to_string(),
            "metadata.labels[app]"
        );
        assert_eq!(Path::none().to_string(), "<nil>");
        assert_eq!(Path::none().child("key").to_string(), "key");
        assert_eq!(Path::none().key("k").to_string(), "[k]");
    }

    #[test]
    fn error_strings_match_upstream() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        check(
            FieldError::required(&p, ""),
            "spec.containers[0].image: Required value",
        );
        check(
            FieldError::required(&p, "must be set"),
            "spec.containers[0].image: Required value: must be set",
        );
        check(
            FieldError::invalid(&Path::new("metadata").child("name"), "Foo", "bad name"),
            r#"metadata.name: Invalid value: "Foo": bad name"#,
        );
        check(
            FieldError::invalid(&Path::new("spec").child("replicas"), -1i64, "must be >= 0"),
            "spec.replicas: Invalid value: -1: must be >= 0",
        );
        check(
            FieldError::invalid(&Path::new("x"), true, ""),
            "x: Invalid value: true",
        );
        check(
            FieldError::invalid(&Path::new("x"), BadValue::Null, ""),
            r#"x: Invalid value: "null""#,
        );
        check(
            FieldError::invalid(&Path::new("x"), 0.5f64, "d"),
            "x: Invalid value: 0.5: d",
        );
        check(
            FieldError::invalid(&Path::new("v"), vec!["a".to_owned(), "b".to_owned()], "d"),
            r#"v: Invalid value: []string{"a", "b"}: d"#,
        );
        check(
            FieldError::not_supported(
                &Path::new("spec").child("restartPolicy"),
                "Sometimes",
                &["Always", "OnFailure", "Never"],
            ),
            r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
        );
        check(
            FieldError::forbidden(&Path::new("spec"), "may not be set"),
            "spec: Forbidden: may not be set",
        );
        check(
            FieldError::too_long(&Path::new("metadata").child("annotations"), Some(262144)),
            "metadata.annotations: Too long: may not be more than 262144 bytes",
        );
        check(
            FieldError::too_long(&Path::new("a"), None),
            "a: Too long: value is too long",
        );
        check(
            FieldError::too_many(&Path::new("a"), Some(5), Some(4)),
            "a: Too many: 5: must have at most 4 items",
        );
        check(
            FieldError::too_many(&Path::new("a"), None, None),
            "a: Too many: has too many items",
        );
        check(
            FieldError::internal(&Path::new("a"), "boom"),
            "a: Internal error: boom",
        );
        check(
            FieldError::duplicate(&Path::new("a").index(1), "x"),
            r#"a[1]: Duplicate value: "x""#,
        );
        check(
            FieldError::not_found(&Path::new("a"), "x"),
            r#"a: Not found: "x""#,
        );
        check(
            FieldError::type_invalid(&Path::new("a"), "x", "must be int"),
            r#"a: Invalid value: "x": must be int"#,
        );
    }

    #[test]
    fn aggregate_message_dedupes_and_brackets_several_errors() {
        let a = FieldError::required(&Path::new("a"), "");
        let b = FieldError::required(&Path::new("b"), "");
        assert_eq!(ErrorList::new().aggregate_message(), None);
        assert_eq!(
            ErrorList::from(vec![a.clone()])
                .aggregate_message()
                .as_deref(),
            Some("a: Required value")
        );
        assert_eq!(
            ErrorList::from(vec![a.clone(), a.clone()])
                .aggregate_message()
                .as_deref(),
            Some("a: Required value")
        );
        assert_eq!(
            ErrorList::from(vec![a.clone(), b, a])
                .aggregate_message()
                .as_deref(),
            Some("[a: Required value, b: Required value]")
        );
    }

    #[test]
    fn cause_reasons_are_upstream_cause_types() {
        assert_eq!(ErrorType::Required.reason(), "FieldValueRequired");
        assert_eq!(ErrorType::Internal.reason(), "InternalError");
        assert_eq!(ErrorType::TypeInvalid.description(), "Invalid value");
    }
}
