//! Field selectors: `a=b`, `a==b`, `a!=b` joined by commas, with `\` escapes, as upstream.
//!
//! Only equality and inequality exist. The API server asks a parsed selector for its
//! [`requirements`](FieldSelector::requirements) to reject fields a kind does not support.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Errors from parsing or transforming field selectors; messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsError {
    /// A backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A `,` or `=` in a value without a preceding backslash (upstream prints the code point).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedRune(char),
    /// A term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Syntax {
        /// The whole selector.
        selector: String,
        /// The term that could not be split.
        term: String,
    },
    /// A transform function refused a term; the message is the function's.
    #[error("{0}")]
    Transform(String),
}

/// The operator of one field requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

impl FieldOperator {
    /// Upstream's `selection.Operator` string (`=` or `!=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equals => "=",
            Self::NotEquals => "!=",
        }
    }
}

/// One clause of a field selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name` or `spec.nodeName`.
    pub field: String,
    /// Equality or inequality.
    pub operator: FieldOperator,
    /// The (unescaped) value.
    pub value: String,
}

impl FieldRequirement {
    /// Whether `fields` satisfy this clause; a missing field counts as the empty string.
    pub fn matches<F: Fields + ?Sized>(&self, fields: &F) -> bool {
        let have = fields.field(&self.field).unwrap_or("");
        match self.operator {
            FieldOperator::Equals => have == self.value,
            FieldOperator::NotEquals => have != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.field,
            self.operator.as_str(),
            escape_value(&self.value)
        )
    }
}

/// Read access to the selectable fields of an object.
pub trait Fields {
    /// The value of `field`, if the object has it.
    fn field(&self, field: &str) -> Option<&str>;
}

impl Fields for BTreeMap<String, String> {
    fn field(&self, field: &str) -> Option<&str> {
        self.get(field).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Fields for HashMap<String, String, S> {
    fn field(&self, field: &str) -> Option<&str> {
        self.get(field).map(String::as_str)
    }
}

impl Fields for [(&str, &str)] {
    fn field(&self, field: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == field).map(|(_, v)| *v)
    }
}

/// A parsed field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSelector {
    /// Matches nothing.
    Nothing,
    /// Matches objects satisfying every requirement; none matches everything.
    Terms(Vec<FieldRequirement>),
}

impl Default for FieldSelector {
    fn default() -> Self {
        Self::everything()
    }
}

impl FieldSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::Terms(Vec::new())
    }

    /// Parses a selector. Like upstream, terms are sorted as strings before parsing and
    /// empty terms are skipped.
    pub fn parse(selector: &str) -> Result<Self, FieldsError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(FieldsError::Syntax {
                    selector: selector.to_owned(),
                    term: part.to_owned(),
                });
            };
            terms.push(FieldRequirement {
                field: lhs.to_owned(),
                operator: op,
                value: unescape_value(rhs)?,
            });
        }
        Ok(Self::Terms(terms))
    }

    /// Parses and then rewrites every term with `transform` (see [`FieldSelector::transform`]).
    pub fn parse_and_transform<F>(selector: &str, transform: F) -> Result<Self, FieldsError>
    where
        F: FnMut(&str, &str) -> Result<(String, String), String>,
    {
        Self::parse(selector)?.transform(transform)
    }

    /// Rewrites each term's field and value; a term mapped to two empty strings is dropped,
    /// as upstream does for fields that mean "no constraint".
    pub fn transform<F>(self, mut transform: F) -> Result<Self, FieldsError>
    where
        F: FnMut(&str, &str) -> Result<(String, String), String>,
    {
        match self {
            Self::Nothing => Ok(Self::Nothing),
            Self::Terms(terms) => {
                let mut out = Vec::with_capacity(terms.len());
                for t in terms {
                    let (field, value) =
                        transform(&t.field, &t.value).map_err(FieldsError::Transform)?;
                    if field.is_empty() && value.is_empty() {
                        continue;
                    }
                    out.push(FieldRequirement {
                        field,
                        value,
                        operator: t.operator,
                    });
                }
                Ok(Self::Terms(out))
            }
        }
    }

    /// A selector requiring each field of `set` to equal its value (sorted by field).
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        Self::Terms(
            set.iter()
                .map(|(k, v)| FieldRequirement {
                    field: k.clone(),
                    operator: FieldOperator::Equals,
                    value: v.clone(),
                })
                .collect(),
        )
    }

    /// `field=value`.
    pub fn one_term_equal(field: &str, value: &str) -> Self {
        Self::Terms(vec![FieldRequirement {
            field: field.to_owned(),
            operator: FieldOperator::Equals,
            value: value.to_owned(),
        }])
    }

    /// Whether `fields` satisfy every requirement.
    pub fn matches<F: Fields + ?Sized>(&self, fields: &F) -> bool {
        match self {
            Self::Nothing => false,
            Self::Terms(terms) => terms.iter().all(|t| t.matches(fields)),
        }
    }

    /// Whether the selector places no constraint.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Terms(t) if t.is_empty())
    }

    /// The requirements, for checking which fields a request selects on.
    pub fn requirements(&self) -> &[FieldRequirement] {
        match self {
            Self::Nothing => &[],
            Self::Terms(t) => t,
        }
    }

    /// The value `field` must equal, when some `=` term pins it.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements()
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.requirements().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = FieldsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Escapes `\`, `,` and `=` in a value with a backslash.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reverses [`escape_value`], refusing unknown escapes and bare `,`/`=`.
pub fn unescape_value(s: &str) -> Result<String, FieldsError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(FieldsError::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(FieldsError::UnescapedRune(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(FieldsError::InvalidEscape("\\".to_owned()));
    }
    Ok(out)
}

/// Splits on commas that are not escaped.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator, trying `!=`, `==`, `=` at each position.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, rhs));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A selector, a set of key/value pairs, and whether the selector should match them.
    type MatchCase = (&'static str, &'static [(&'static str, &'static str)], bool);

    fn check(input: &str, want: Result<&str, &str>) {
        let got = FieldSelector::parse(input)
            .map(|s| s.to_string())
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            want.map(str::to_owned).map_err(str::to_owned),
            "selector {input:?}"
        );
    }

    #[test]
    fn selectors_parse_and_print_canonically() {
        check("", Ok(""));
        check("a=b", Ok("a=b"));
        check("a==b", Ok("a=b"));
        check("a!=b", Ok("a!=b"));
        check("b=2,a=1", Ok("a=1,b=2"));
        check("a=b,", Ok("a=b"));
        check(
            "metadata.name=web-0,spec.nodeName=",
            Ok("metadata.name=web-0,spec.nodeName="),
        );
        check("a=\\,\\=\\\\", Ok("a=\\,\\=\\\\"));
        check(
            "x=a=b",
            Err("invalid field selector: unescaped character in value: 61"),
        );
        check(
            "x=a\\b",
            Err("invalid field selector: invalid escape sequence: \\b"),
        );
        check(
            "x=a\\",
            Err("invalid field selector: invalid escape sequence: \\"),
        );
        check("ab", Err("invalid selector: 'ab'; can't understand 'ab'"));
        check(
            "a=b,cd",
            Err("invalid selector: 'a=b,cd'; can't understand 'cd'"),
        );
        check("a =b", Ok("a =b"));
    }

    #[test]
    fn unescaped_values_are_matched() {
        let s = FieldSelector::parse("a=x\\,y").expect("valid");
        assert_eq!(s.requirements()[0].value, "x,y");
        assert!(s.matches([("a", "x,y")].as_slice()));
    }

    #[test]
    fn selectors_match_field_sets_with_missing_fields_as_empty() {
        let cases: &[MatchCase] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("x=", &[], true),
            ("x!=", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y", &[], true),
        ];
        for (sel, set, want) in cases {
            let s = FieldSelector::parse(sel).expect("valid");
            assert_eq!(s.matches(*set), *want, "{sel} against {set:?}");
        }
        assert!(!FieldSelector::Nothing.matches([].as_slice()));
    }

    #[test]
    fn requirements_expose_fields_for_support_checks() {
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Running").expect("valid");
        let fields: Vec<(&str, &str)> = s
            .requirements()
            .iter()
            .map(|r| (r.field.as_str(), r.operator.as_str()))
            .collect();
        assert_eq!(fields, vec![("spec.nodeName", "="), ("status.phase", "!=")]);
        assert_eq!(s.requires_exact_match("spec.nodeName"), Some("n1"));
        assert_eq!(s.requires_exact_match("status.phase"), None);
    }

    #[test]
    fn transforms_rewrite_or_drop_terms() {
        let s = FieldSelector::parse_and_transform("name=a,ignored=x", |f, v| match f {
            "name" => Ok(("metadata.name".to_owned(), v.to_owned())),
            "ignored" => Ok((String::new(), String::new())),
            other => Err(format!("field label not supported: {other}")),
        })
        .expect("transformable");
        assert_eq!(s.to_string(), "metadata.name=a");
        let err = FieldSelector::parse_and_transform("bad=1", |f, _| {
            Err(format!("field label not supported: {f}"))
        });
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("field label not supported: bad".to_owned())
        );
    }

    #[test]
    fn escaping_round_trips() {
        for v in ["plain", "a,b", "a=b", "a\\b", ""] {
            assert_eq!(unescape_value(&escape_value(v)).as_deref(), Ok(v));
        }
    }
}
