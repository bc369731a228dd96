//! Label selectors: upstream's string syntax, matching, the `LabelSelector` JSON shape and validation.
//!
//! The parser follows upstream's lexer and grammar (`a=b`, `a==b`, `a!=b`,
//! `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`), including its error
//! messages and its habit of sorting requirements by key, so that the canonical
//! string a client sees back is the one upstream would print.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::gofmt::quote;
use crate::validation::{self, BadValue, ErrorList, FieldError, Path};

/// Errors from parsing or building label selectors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabelsError {
    /// The selector string does not follow the grammar; the message is upstream's.
    #[error("{0}")]
    Syntax(String),
    /// A requirement failed validation (bad key, bad value, wrong number of values).
    #[error("{0}")]
    Invalid(ErrorList),
    /// A `LabelSelector` expression used an operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{} is not a valid label selector operator", quote(.0))]
    InvalidOperator(String),
    /// A selector string used `>`/`<`, which the `LabelSelector` shape cannot express.
    #[error("{} isn't supported in label selectors", quote(.0))]
    UnsupportedOperator(String),
    /// A `LabelSelector` uses expressions that the plain `map[string]string` form cannot hold.
    #[error("{0}")]
    NotConvertible(String),
}

/// A selector operator; [`as_str`](Operator::as_str) gives upstream's `selection.Operator` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// `in`
    In,
    /// `notin`
    NotIn,
    /// A bare key.
    Exists,
    /// `!key`
    DoesNotExist,
    /// `>` (integer comparison)
    GreaterThan,
    /// `<` (integer comparison)
    LessThan,
}

impl Operator {
    /// Upstream's string for this operator (`=`, `==`, `!=`, `in`, `notin`, `exists`, `!`, `gt`, `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equals => "=",
            Self::DoubleEquals => "==",
            Self::NotEquals => "!=",
            Self::In => "in",
            Self::NotIn => "notin",
            Self::Exists => "exists",
            Self::DoesNotExist => "!",
            Self::GreaterThan => "gt",
            Self::LessThan => "lt",
        }
    }
}

/// Read access to a set of labels, so selectors can match any map type.
pub trait Labels {
    /// The value of `key`, if the label is present.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for serde_json::Map<String, Value> {
    /// Non-string values count as absent.
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }
}

impl Labels for [(&str, &str)] {
    fn label(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// One clause of a selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds and validates a requirement the way upstream's `NewRequirement` does,
    /// reporting errors against the nil path (so fields read `key`, `values[0][k]`).
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, LabelsError> {
        Self::new_at(key, operator, values, &Path::none())
    }

    /// Like [`Requirement::new`], reporting errors below `path`.
    pub fn new_at(
        key: &str,
        operator: Operator,
        values: Vec<String>,
        path: &Path,
    ) -> Result<Self, LabelsError> {
        let mut errs = ErrorList::new();
        if let Some(e) = validate_label_key(key, &path.child("key")) {
            errs.push(e);
        }
        let values_path = path.child("values");
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    // Upstream's callers pass a nil slice here, which Go prints as `[]string(nil)`.
                    let shown = BadValue::Raw("[]string(nil)".to_owned());
                    errs.push(FieldError::invalid(
                        &values_path,
                        shown,
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values.clone(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values.clone(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values.clone(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            &values_path.index(i),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let problems = validation::is_valid_label_value(v);
            if !problems.is_empty() {
                errs.push(FieldError::invalid(
                    &values_path.index(i).key(key),
                    v.as_str(),
                    problems.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Self {
                key: key.to_owned(),
                operator,
                values,
            })
        } else {
            Err(LabelsError::Invalid(errs))
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, in the order given.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.label(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::NotIn | Operator::NotEquals => {
                value.is_none_or(|v| !self.values.iter().any(|x| x == v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        if let [only] = self.values.as_slice() {
            f.write_str(only)?;
        } else {
            let mut sorted = self.values.clone();
            sorted.sort();
            f.write_str(&sorted.join(","))?;
        }
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

fn validate_label_key(key: &str, path: &Path) -> Option<FieldError> {
    let problems = validation::is_qualified_name(key);
    (!problems.is_empty()).then(|| FieldError::invalid(path, key, problems.join("; ")))
}

/// A parsed label selector: a conjunction of requirements, or upstream's "nothing".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Matches nothing (a nil `LabelSelector`); prints as the empty string.
    Nothing,
    /// Matches labels satisfying every requirement; no requirements matches everything.
    Requirements(Vec<Requirement>),
}

impl Default for Selector {
    fn default() -> Self {
        Self::everything()
    }
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::Requirements(Vec::new())
    }

    /// Parses upstream's selector syntax. Requirements come back sorted by key.
    pub fn parse(selector: &str) -> Result<Self, LabelsError> {
        Self::parse_at(selector, &Path::none())
    }

    /// Like [`Selector::parse`], reporting validation errors below `path`.
    pub fn parse_at(selector: &str, path: &Path) -> Result<Self, LabelsError> {
        let mut reqs = Parser::new(selector, path.clone()).parse()?;
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self::Requirements(reqs))
    }

    /// A selector requiring every label of `set` to have exactly that value.
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        Self::Requirements(
            set.iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    operator: Operator::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
        )
    }

    /// Like [`Selector::from_set`], but validating keys and values.
    pub fn from_validated_set(set: &BTreeMap<String, String>) -> Result<Self, LabelsError> {
        let reqs = set
            .iter()
            .map(|(k, v)| Requirement::new(k, Operator::Equals, vec![v.clone()]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Requirements(reqs))
    }

    /// Converts the `LabelSelector` JSON shape, as upstream's `LabelSelectorAsSelector`:
    /// `None` selects nothing, an empty selector selects everything.
    pub fn from_label_selector(selector: Option<&LabelSelector>) -> Result<Self, LabelsError> {
        let Some(ls) = selector else {
            return Ok(Self::Nothing);
        };
        if ls.match_labels.is_empty() && ls.match_expressions.is_empty() {
            return Ok(Self::everything());
        }
        let mut reqs = Vec::with_capacity(ls.match_labels.len() + ls.match_expressions.len());
        for (k, v) in &ls.match_labels {
            reqs.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for expr in &ls.match_expressions {
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(LabelsError::InvalidOperator(other.to_owned())),
            };
            reqs.push(Requirement::new(&expr.key, op, expr.values.clone())?);
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self::Requirements(reqs))
    }

    /// Converts a `LabelSelector` JSON value (`null` selects nothing).
    pub fn from_label_selector_json(value: &Value) -> Result<Self, LabelsError> {
        if value.is_null() {
            return Ok(Self::Nothing);
        }
        let ls: LabelSelector = serde_json::from_value(value.clone())
            .map_err(|e| LabelsError::Syntax(format!("invalid label selector: {e}")))?;
        Self::from_label_selector(Some(&ls))
    }

    /// Whether `labels` satisfy the selector.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Self::Nothing => false,
            Self::Requirements(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    /// Whether the selector places no constraint (matches everything).
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Requirements(r) if r.is_empty())
    }

    /// The requirements; empty for [`Selector::Nothing`].
    pub fn requirements(&self) -> &[Requirement] {
        match self {
            Self::Nothing => &[],
            Self::Requirements(r) => r,
        }
    }

    /// The value `label` must have for a match, when the selector pins it to one value.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements().iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [only]) => Some(only),
            _ => None,
        }
    }

    /// Adds requirements, keeping them sorted by key.
    #[must_use]
    pub fn with_requirements(self, more: impl IntoIterator<Item = Requirement>) -> Self {
        match self {
            Self::Nothing => Self::Nothing,
            Self::Requirements(mut reqs) => {
                reqs.extend(more);
                reqs.sort_by(|a, b| a.key.cmp(&b.key));
                Self::Requirements(reqs)
            }
        }
    }

    /// Converts to the `LabelSelector` shape, as upstream's `ParseToLabelSelector` does
    /// (equality goes to `matchLabels`, sets to `matchExpressions`; `>`/`<` are refused).
    pub fn to_label_selector(&self) -> Result<LabelSelector, LabelsError> {
        let mut out = LabelSelector::default();
        for r in self.requirements() {
            let op = match r.operator {
                Operator::Equals | Operator::DoubleEquals => {
                    let [only] = r.values.as_slice() else {
                        return Err(LabelsError::NotConvertible(
                            "equals operator must have exactly one value".to_owned(),
                        ));
                    };
                    out.match_labels.insert(r.key.clone(), only.clone());
                    continue;
                }
                Operator::In => "In",
                Operator::NotIn => "NotIn",
                Operator::Exists => "Exists",
                Operator::DoesNotExist => "DoesNotExist",
                Operator::GreaterThan | Operator::LessThan => {
                    return Err(LabelsError::UnsupportedOperator(
                        r.operator.as_str().to_owned(),
                    ));
                }
                Operator::NotEquals => {
                    return Err(LabelsError::InvalidOperator(r.operator.as_str().to_owned()));
                }
            };
            let values: BTreeSet<String> = r.values.iter().cloned().collect();
            out.match_expressions.push(LabelSelectorRequirement {
                key: r.key.clone(),
                operator: op.to_owned(),
                values: values.into_iter().collect(),
            });
        }
        Ok(out)
    }
}

impl fmt::Display for Selector {
    /// The canonical string: requirements joined by `,`; empty for everything and nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Selector {
    type Err = LabelsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The `meta/v1 LabelSelector` JSON shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Exact-match labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based expressions.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    /// The label key.
    #[serde(default)]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default)]
    pub operator: String,
    /// The values (for `In`/`NotIn`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub values: Vec<String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl LabelSelector {
    /// The plain `map[string]string` form, as upstream's `LabelSelectorAsMap`
    /// (single-valued `In` expressions fold into it; anything else is refused).
    pub fn as_map(&self) -> Result<BTreeMap<String, String>, LabelsError> {
        let mut out = self.match_labels.clone();
        for e in &self.match_expressions {
            match e.operator.as_str() {
                "In" => match e.values.as_slice() {
                    [only] => {
                        out.insert(e.key.clone(), only.clone());
                    }
                    _ => {
                        return Err(LabelsError::NotConvertible(format!(
                            "operator {} without a single value cannot be converted into the old label selector format",
                            quote(&e.operator)
                        )));
                    }
                },
                "NotIn" | "Exists" | "DoesNotExist" => {
                    return Err(LabelsError::NotConvertible(format!(
                        "operator {} cannot be converted into the old label selector format",
                        quote(&e.operator)
                    )));
                }
                other => {
                    return Err(LabelsError::NotConvertible(format!(
                        "{} is not a valid selector operator",
                        quote(other)
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Options relaxing [`validate_label_selector`], as upstream's `LabelSelectorValidationOptions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelSelectorValidationOptions {
    /// Accept values that are not valid label values (kept for old stored objects).
    pub allow_invalid_label_value_in_selector: bool,
    /// Accept operators other than the four known ones.
    pub allow_unknown_operator_in_requirement: bool,
}

/// Validates a `LabelSelector` at `path` (e.g. `spec.selector`) with upstream's errors.
pub fn validate_label_selector(
    selector: &LabelSelector,
    opts: LabelSelectorValidationOptions,
    path: &Path,
) -> ErrorList {
    let mut errs = validation::validate_labels(&selector.match_labels, &path.child("matchLabels"));
    for (i, expr) in selector.match_expressions.iter().enumerate() {
        let p = path.child("matchExpressions").index(i);
        match expr.operator.as_str() {
            "In" | "NotIn" => {
                if expr.values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !expr.values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => {
                if !opts.allow_unknown_operator_in_requirement {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        other,
                        "not a valid selector operator",
                    ));
                }
            }
        }
        errs.append(validation::validate_label_name(&expr.key, &p.child("key")));
        if !opts.allow_invalid_label_value_in_selector {
            for (j, v) in expr.values.iter().enumerate() {
                for m in validation::is_valid_label_value(v) {
                    errs.push(FieldError::invalid(
                        &p.child("values").index(j),
                        v.as_str(),
                        m,
                    ));
                }
            }
        }
    }
    errs
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// A byte lexer; like upstream's, a NUL byte reads as the end of input.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(ch) {
            self.scan_special()
        } else {
            self.scan_identifier()
        }
    }

    fn scan_identifier(&mut self) -> (Token, String) {
        let start = self.pos;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
        }
        let end = if self.s.get(self.pos.wrapping_sub(1)) == Some(&0) {
            self.pos - 1
        } else {
            self.pos
        };
        let bytes = &self.s[start..end.max(start)];
        let lit = String::from_utf8_lossy(bytes).into_owned();
        (keyword(bytes).unwrap_or(Token::Identifier), lit)
    }

    fn scan_special(&mut self) -> (Token, String) {
        let mut buffer: Vec<u8> = Vec::new();
        let mut last: Option<(Token, String)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) {
                buffer.push(ch);
                if let Some(tok) = keyword(&buffer) {
                    last = Some((tok, String::from_utf8_lossy(&buffer).into_owned()));
                } else if last.is_some() {
                    self.unread();
                    break;
                }
            } else {
                self.unread();
                break;
            }
        }
        last.unwrap_or_else(|| {
            (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&buffer)
                ),
            )
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
    path: Path,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn new(selector: &str, path: Path) -> Self {
        let mut lexer = Lexer {
            s: selector.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            let end = item.0 == Token::EndOfString;
            items.push(item);
            if end {
                break;
            }
        }
        Self {
            items,
            position: 0,
            path,
        }
    }

    fn adjust(tok: Token, ctx: Context) -> Token {
        match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => tok,
        }
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        match self.items.get(self.position) {
            Some((tok, lit)) => (Self::adjust(*tok, ctx), lit.clone()),
            None => (Token::EndOfString, String::new()),
        }
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let item = self.lookahead(ctx);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, LabelsError> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self.parse_requirement().map_err(|e| {
                        LabelsError::Syntax(format!("unable to parse requirement: {e}"))
                    })?;
                    reqs.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(reqs),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(LabelsError::Syntax(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(LabelsError::Syntax(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::EndOfString => return Ok(reqs),
                _ => {
                    return Err(LabelsError::Syntax(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, LabelsError> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = op {
            return Requirement::new_at(&key, op, Vec::new(), &self.path);
        }
        let op = self.parse_operator()?;
        let values: BTreeSet<String> = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new_at(&key, op, values.into_iter().collect(), &self.path)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), LabelsError> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(LabelsError::Syntax(format!(
                "found '{lit}', expected: identifier"
            )));
        }
        if let Some(e) = validate_label_key(&lit, &self.path) {
            return Err(LabelsError::Invalid(e.into()));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, LabelsError> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(LabelsError::Syntax(format!(
                    "found '{lit}', expected: {BINARY_OPERATORS}"
                )));
            }
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, LabelsError> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(LabelsError::Syntax(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (closing, _) = self.consume(Context::Values);
                if closing != Token::ClosedPar {
                    // Upstream reports the token seen before the list here, not the offending one.
                    return Err(LabelsError::Syntax(format!("found '{lit}', expected: ')'")));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(LabelsError::Syntax(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, LabelsError> {
        let mut set = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (t2, l2) = self.lookahead(Context::Values);
                    match t2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => {
                            return Err(LabelsError::Syntax(format!(
                                "found '{l2}', expected: ',' or ')'"
                            )));
                        }
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (t2, _) = self.lookahead(Context::Values);
                    if t2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if t2 == Token::Comma {
                        self.consume(Context::Values);
                        set.insert(String::new());
                    }
                }
                _ => {
                    return Err(LabelsError::Syntax(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, LabelsError> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(BTreeSet::from([lit]))
        } else {
            Err(LabelsError::Syntax(format!(
                "found '{lit}', expected: identifier"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A selector, a set of key/value pairs, and whether the selector should match them.
    type MatchCase = (&'static str, &'static [(&'static str, &'static str)], bool);

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Parses `input` and checks its canonical string (or its error message).
    fn check(input: &str, want: Result<&str, &str>) {
        let got = Selector::parse(input)
            .map(|s| s.to_string())
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            want.map(str::to_owned).map_err(str::to_owned),
            "selector {input:?}"
        );
    }

    #[test]
    fn valid_selectors_print_canonically_sorted_by_key() {
        check("", Ok(""));
        check("x=a", Ok("x=a"));
        check("x=a,y=b,z=c", Ok("x=a,y=b,z=c"));
        check("z=c,x=a,y=b", Ok("x=a,y=b,z=c"));
        check(
            "x==a==b",
            Err("found '==', expected: ',' or 'end of string'"),
        );
        check("x = a", Ok("x=a"));
        check(" x == a ", Ok("x==a"));
        check("x!=a", Ok("x!=a"));
        check("x>1", Ok("x>1"));
        check("x<7", Ok("x<7"));
        check("x in (b,a)", Ok("x in (a,b)"));
        check("x notin ( a )", Ok("x notin (a)"));
        check("x in (a,)", Ok("x in (,a)"));
        check("x in ()", Ok("x in ()"));
        check("x in (,,a)", Ok("x in (,a)"));
        check("x", Ok("x"));
        check("!x", Ok("!x"));
        check("! x", Ok("!x"));
        check("x=", Ok("x="));
        check("x=,z= ", Ok("x=,z="));
        check("x,y", Ok("x,y"));
        check("y,x", Ok("x,y"));
        check("x=a,!y,z in (c)", Ok("x=a,!y,z in (c)"));
        check("in=notin", Ok("in=notin"));
        check("x in (in,notin)", Ok("x in (in,notin)"));
        check("example.com/app=web", Ok("example.com/app=web"));
    }

    #[test]
    fn malformed_selectors_report_upstream_messages() {
        check(
            "x=a||y=b",
            Err(
                "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
        );
        check("x,,y", Err("found ',', expected: identifier after ','"));
        check(
            ",x",
            Err("found ',', expected: !, identifier, or 'end of string'"),
        );
        check(
            "x in a",
            Err("unable to parse requirement: found 'a' expected: '('"),
        );
        check(
            "x in (a",
            Err("unable to parse requirement: found '', expected: ',' or ')'"),
        );
        check(
            "x (",
            Err("unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"),
        );
        check(
            "x>a",
            Err(
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
        );
        check("x=a b", Err("found 'b', expected: ',' or 'end of string'"));
        check(
            "!",
            Err("unable to parse requirement: found '', expected: identifier"),
        );
        check(
            "a b",
            Err("unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        );
        check(
            "-x=a",
            Err(
                "unable to parse requirement: <nil>: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ),
        );
    }

    #[test]
    fn selectors_match_label_sets() {
        let cases: &[MatchCase] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("notin=in", &[("notin", "in")], true),
            ("x", &[("x", "z")], true),
            ("!x", &[("y", "z")], true),
            ("x>1", &[("x", "2")], true),
            ("x<1", &[("x", "0")], true),
            ("x=z", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x", &[("y", "z")], false),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "0")], false),
            ("x<1", &[("x", "2")], false),
            ("x>1", &[("x", "a")], false),
            ("x in (a,b)", &[("x", "b")], true),
            ("x notin (a,b)", &[("x", "c")], true),
            ("x notin (a,b)", &[], true),
            ("x in (a,b)", &[], false),
        ];
        for (sel, set, want) in cases {
            let s = Selector::parse(sel).expect("valid selector");
            assert_eq!(s.matches(&labels(set)), *want, "{sel} against {set:?}");
        }
        assert!(!Selector::Nothing.matches(&labels(&[])));
    }

    #[test]
    fn label_selector_objects_convert_with_upstream_semantics() {
        assert_eq!(Selector::from_label_selector(None), Ok(Selector::Nothing));
        assert_eq!(
            Selector::from_label_selector_json(&json!({})),
            Ok(Selector::everything())
        );
        let s = Selector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "DoesNotExist"}
            ]
        }))
        .expect("valid");
        assert_eq!(s.to_string(), "app=web,!env,tier in (a,b)");
        assert_eq!(
            Selector::from_label_selector_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})
            )
            .map_err(|e| e.to_string()),
            Err("\"Foo\" is not a valid label selector operator".to_owned())
        );
        assert_eq!(
            Selector::from_label_selector_json(&json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}))
                .map_err(|e| e.to_string()),
            Err("values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty".to_owned())
        );
        let back = Selector::parse("a=b,c in (x,y),!d")
            .and_then(|s| s.to_label_selector())
            .expect("convertible");
        assert_eq!(
            serde_json::to_value(back).expect("serialisable"),
            json!({"matchLabels": {"a": "b"}, "matchExpressions": [
                {"key": "c", "operator": "In", "values": ["x", "y"]},
                {"key": "d", "operator": "DoesNotExist"}]})
        );
        assert_eq!(
            Selector::parse("a>1")
                .and_then(|s| s.to_label_selector())
                .map_err(|e| e.to_string()),
            Err("\"gt\" isn't supported in label selectors".to_owned())
        );
    }

    #[test]
    fn label_selector_validation_reports_field_paths() {
        let ls: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "-bad"},
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Near"}
            ]
        }))
        .expect("shape");
        let errs = validate_label_selector(
            &ls,
            LabelSelectorValidationOptions::default(),
            &Path::new("spec").child("selector"),
        );
        let got: Vec<String> = errs
            .iter()
            .map(|e| format!("{}: {}", e.field, e.kind.reason()))
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.selector.matchLabels: FieldValueInvalid",
                "spec.selector.matchExpressions[0].values: FieldValueRequired",
                "spec.selector.matchExpressions[1].values: FieldValueForbidden",
                "spec.selector.matchExpressions[2].operator: FieldValueInvalid",
            ]
        );
        assert_eq!(
            errs.as_slice()[1].to_string(),
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
    }

    #[test]
    fn added_requirements_stay_sorted_and_nothing_stays_nothing() {
        let extra = Requirement::new("a", Operator::Exists, Vec::new()).expect("valid");
        let s = Selector::parse("c=d")
            .expect("valid")
            .with_requirements([extra.clone()]);
        assert_eq!(s.to_string(), "a,c=d");
        assert_eq!(
            Selector::Nothing.with_requirements([extra]),
            Selector::Nothing
        );
    }

    #[test]
    fn helpers_find_exact_matches_and_fold_to_maps() {
        let s = Selector::parse("a=b,c in (d),e in (f,g)").expect("valid");
        assert_eq!(s.requires_exact_match("a"), Some("b"));
        assert_eq!(s.requires_exact_match("c"), Some("d"));
        assert_eq!(s.requires_exact_match("e"), None);
        let ls: LabelSelector = serde_json::from_value(json!({"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "In", "values": ["d"]}]})).expect("shape");
        assert_eq!(ls.as_map(), Ok(labels(&[("a", "b"), ("c", "d")])));
        let set = labels(&[("b", "2"), ("a", "1")]);
        assert_eq!(Selector::from_set(&set).to_string(), "a=1,b=2");
        assert!(Selector::from_validated_set(&labels(&[("a", "-")])).is_err());
    }
}
