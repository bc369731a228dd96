//! Field paths and sets of them, in the `FieldsV1` encoding of `metadata.managedFields`.
//!
//! A [`FieldSet`] is a trie: at each level, *members* are the paths that end there and
//! *children* lead further down. Its `FieldsV1` form is a JSON object per level whose keys
//! are serialised path elements (`f:name`, `k:{"name":"x"}`, `v:"a"`, `i:0`) and where `"."`
//! marks a child that is a member too. Elements sort as upstream sorts them (fields, then
//! keys, then values, then indices), which fixes the byte order of the encoding.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use super::ApplyError;
use super::gojson::{self, Escapes};
use crate::gofmt;

/// A JSON number as upstream's value model holds it: `int64` when it fits, `float64` otherwise.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num(n: &serde_json::Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or_default()),
    }
}

fn float_cmp(l: f64, r: f64) -> Ordering {
    l.partial_cmp(&r).unwrap_or(Ordering::Equal)
}

/// Upstream's total order on values: numbers (ints and floats compared numerically),
/// then strings, booleans, lists, maps and finally `null`.
pub(crate) fn value_cmp(lhs: &Value, rhs: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (lhs, rhs) {
        (Value::Number(l), Value::Number(r)) => match (num(l), num(r)) {
            (Num::Int(l), Num::Int(r)) => l.cmp(&r),
            (Num::Int(l), Num::Float(r)) => float_cmp(l as f64, r),
            (Num::Float(l), Num::Int(r)) => float_cmp(l, r as f64),
            (Num::Float(l), Num::Float(r)) => float_cmp(l, r),
        },
        (Value::String(l), Value::String(r)) => l.as_bytes().cmp(r.as_bytes()),
        (Value::Bool(l), Value::Bool(r)) => l.cmp(r),
        (Value::Array(l), Value::Array(r)) => {
            for (a, b) in l.iter().zip(r) {
                let c = value_cmp(a, b);
                if c != Ordering::Equal {
                    return c;
                }
            }
            l.len().cmp(&r.len())
        }
        (Value::Object(l), Value::Object(r)) => map_cmp(l, r),
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(lhs).cmp(&rank(rhs)),
    }
}

/// Maps compare key by key in lexical order over the union of their keys.
fn map_cmp(lhs: &Map<String, Value>, rhs: &Map<String, Value>) -> Ordering {
    let keys: BTreeSet<&String> = lhs.keys().chain(rhs.keys()).collect();
    for (i, key) in keys.into_iter().enumerate() {
        let c = if i == lhs.len() {
            Ordering::Less
        } else if i == rhs.len() {
            Ordering::Greater
        } else {
            match (lhs.get(key), rhs.get(key)) {
                (None, _) => Ordering::Greater,
                (_, None) => Ordering::Less,
                (Some(l), Some(r)) => value_cmp(l, r),
            }
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

/// Upstream's value equality: numbers compare numerically across ints and floats,
/// containers element by element.
pub(crate) fn value_eq(lhs: &Value, rhs: &Value) -> bool {
    match (lhs, rhs) {
        (Value::Number(l), Value::Number(r)) => match (num(l), num(r)) {
            (Num::Int(l), Num::Int(r)) => l == r,
            (Num::Int(l), Num::Float(r)) => l as f64 == r,
            (Num::Float(l), Num::Int(r)) => l == r as f64,
            (Num::Float(l), Num::Float(r)) => l == r,
        },
        (Value::String(l), Value::String(r)) => l == r,
        (Value::Bool(l), Value::Bool(r)) => l == r,
        (Value::Null, Value::Null) => true,
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(a, b)| value_eq(a, b))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter()
                    .all(|(k, a)| r.get(k).is_some_and(|b| value_eq(a, b)))
        }
        _ => false,
    }
}

/// A value as upstream prints it inside a path (`"x"`, `80`, `true`, `[a,b]`).
fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match num(n) {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => gofmt::float(f),
        },
        Value::String(s) => gofmt::quote(s),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(value_to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| {
                    format!(
                        "{k}={}",
                        map.get(k).map(value_to_string).unwrap_or_default()
                    )
                })
                .collect()
        }
    }
}

/// One step of a field path.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a struct or a key of a map: `f:<name>`, printed `.name`.
    Field(String),
    /// An item of a list-map by its key fields, sorted by name: `k:{"name":"x"}`,
    /// printed `[name="x"]`.
    Key(Vec<(String, Value)>),
    /// An item of a set by its value: `v:<json>`, printed `[=value]`.
    Value(Value),
    /// An item of a list by position: `i:<n>`, printed `[n]`. Only ever read from
    /// old `managedFields`; typed walks never produce it.
    Index(i64),
}

impl PathElement {
    /// A field element.
    pub fn field(name: &str) -> Self {
        Self::Field(name.to_owned())
    }

    /// A key element from `(field, value)` pairs, sorted by field name as upstream keeps them.
    pub fn key<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        let mut fields: Vec<(String, Value)> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Self::Key(fields)
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Field(_) => 0,
            Self::Key(_) => 1,
            Self::Value(_) => 2,
            Self::Index(_) => 3,
        }
    }

    /// The element as a `FieldsV1` key, before JSON quoting.
    pub fn serialize(&self) -> String {
        match self {
            Self::Field(name) => format!("f:{name}"),
            Self::Key(fields) => {
                let mut out = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    gojson::write_string(&mut out, name, Escapes::Jsoniter);
                    out.push(':');
                    gojson::write_value(&mut out, value, Escapes::Jsoniter);
                }
                out.push('}');
                out
            }
            Self::Value(value) => format!("v:{}", gojson::value(value, Escapes::Jsoniter)),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key; `Ok(None)` for element types this version does not know,
    /// which upstream skips.
    pub fn deserialize(s: &str) -> Result<Option<Self>, ApplyError> {
        let bad = |detail: String| ApplyError::InvalidFieldsV1(detail);
        let bytes = s.as_bytes();
        if bytes.len() < 2 {
            return Err(bad("key must be 2 characters long:".to_owned()));
        }
        if bytes[1] != b':' {
            return Err(bad(format!("missing colon: {s}")));
        }
        let rest = &s[2..];
        let element = match bytes[0] {
            b'f' => Self::Field(rest.to_owned()),
            b'v' => Self::Value(serde_json::from_str(rest).map_err(|e| bad(e.to_string()))?),
            b'k' => {
                let map: Map<String, Value> =
                    serde_json::from_str(rest).map_err(|e| bad(e.to_string()))?;
                let mut fields: Vec<(String, Value)> = map.into_iter().collect();
                fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                Self::Key(fields)
            }
            b'i' => Self::Index(rest.parse().map_err(|_| {
                bad(format!(
                    "strconv.Atoi: parsing {}: invalid syntax",
                    gofmt::quote(rest)
                ))
            })?),
            _ => return Ok(None),
        };
        Ok(Some(element))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Field(l), Self::Field(r)) => l.as_bytes().cmp(r.as_bytes()),
            (Self::Key(l), Self::Key(r)) => {
                for ((ln, lv), (rn, rv)) in l.iter().zip(r) {
                    let c = ln
                        .as_bytes()
                        .cmp(rn.as_bytes())
                        .then_with(|| value_cmp(lv, rv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                l.len().cmp(&r.len())
            }
            (Self::Value(l), Self::Value(r)) => value_cmp(l, r),
            (Self::Index(l), Self::Index(r)) => l.cmp(r),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_to_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            Self::Value(v) => write!(f, "[={}]", value_to_string(v)),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object root, printed as upstream prints it
/// (`.spec.template.spec.containers[name="nginx"].image`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names, e.g. `Path::fields(&["spec", "replicas"])`.
    pub fn fields(names: &[&str]) -> Self {
        Self(names.iter().map(|n| PathElement::field(n)).collect())
    }

    /// This path with `element` appended.
    #[must_use]
    pub fn child(&self, element: PathElement) -> Self {
        let mut out = self.clone();
        out.0.push(element);
        out
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A set of field paths (upstream's `fieldpath.Set`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of the given paths.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut set = Self::new();
        for p in paths {
            set.insert(&p.0);
        }
        set
    }

    /// Adds a path; the empty path is ignored.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((last, prefix)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for pe in prefix {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.members.insert(last.clone());
    }

    /// Whether the set holds `path` itself (not merely paths below it).
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((last, prefix)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for pe in prefix {
            match node.children.get(pe) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    /// Whether the set holds no path at all.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// The paths below `pe`, relative to it.
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub(crate) fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    pub(crate) fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    pub(crate) fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    pub(crate) fn set_child(&mut self, pe: PathElement, child: FieldSet) {
        self.children.insert(pe, child);
    }

    /// Every path, members of a level before the levels below it, each in sorted order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(Path(p));
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Paths in either set.
    #[must_use]
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Adds every path of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_with(child),
                None => {
                    self.children.insert(pe.clone(), child.clone());
                }
            }
        }
    }

    /// Paths in both sets.
    #[must_use]
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Paths of this set that are not paths of `other`; a member of `other` does not
    /// remove the paths below it (see [`FieldSet::recursive_difference`]).
    #[must_use]
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            match other.children.get(pe) {
                Some(theirs) => {
                    let rest = child.difference(theirs);
                    if !rest.is_empty() {
                        children.insert(pe.clone(), rest);
                    }
                }
                None => {
                    children.insert(pe.clone(), child.clone());
                }
            }
        }
        FieldSet { members, children }
    }

    /// Like [`FieldSet::difference`], but a member of `other` also removes every path
    /// below it.
    #[must_use]
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            match other.children.get(pe) {
                Some(theirs) => {
                    let rest = child.recursive_difference(theirs);
                    if !rest.is_empty() {
                        children.insert(pe.clone(), rest);
                    }
                }
                None => {
                    children.insert(pe.clone(), child.clone());
                }
            }
        }
        FieldSet { members, children }
    }

    /// The `FieldsV1` JSON text, byte for byte as upstream writes it.
    pub fn to_fields_v1_string(&self) -> String {
        let mut out = String::new();
        self.emit(false, &mut out);
        out
    }

    fn emit(&self, include_self: bool, out: &mut String) {
        out.push('{');
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
        };
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            sep(out);
            out.push_str("\".\":{}");
        }
        for (pe, kind) in self.levels() {
            sep(out);
            gojson::write_string(out, &pe.serialize(), Escapes::Jsoniter);
            out.push(':');
            match kind {
                Level::Member => out.push_str("{}"),
                Level::Child(child, is_member) => child.emit(is_member, out),
            }
        }
        out.push('}');
    }

    /// The `FieldsV1` object. Keys are inserted in upstream's order, which a map that
    /// keeps insertion order preserves; [`FieldSet::to_fields_v1_string`] is exact always.
    pub fn to_fields_v1(&self) -> Value {
        self.to_value(false)
    }

    fn to_value(&self, include_self: bool) -> Value {
        let mut map = Map::new();
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            map.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (pe, kind) in self.levels() {
            let v = match kind {
                Level::Member => Value::Object(Map::new()),
                Level::Child(child, is_member) => child.to_value(is_member),
            };
            map.insert(pe.serialize(), v);
        }
        Value::Object(map)
    }

    /// Members and children of this level merged in order.
    fn levels(&self) -> Vec<(&PathElement, Level<'_>)> {
        let mut out = Vec::with_capacity(self.members.len() + self.children.len());
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            match (members.peek(), children.peek()) {
                (Some(m), Some((c, _))) => match (*m).cmp(*c) {
                    Ordering::Less => {
                        out.push((*m, Level::Member));
                        members.next();
                    }
                    Ordering::Greater => {
                        if let Some((c, set)) = children.next() {
                            out.push((c, Level::Child(set, false)));
                        }
                    }
                    Ordering::Equal => {
                        members.next();
                        if let Some((c, set)) = children.next() {
                            out.push((c, Level::Child(set, true)));
                        }
                    }
                },
                (Some(m), None) => {
                    out.push((*m, Level::Member));
                    members.next();
                }
                (None, Some(_)) => {
                    if let Some((c, set)) = children.next() {
                        out.push((c, Level::Child(set, false)));
                    }
                }
                (None, None) => break,
            }
        }
        out
    }

    /// Parses a `FieldsV1` object (`null` is the empty set).
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, ApplyError> {
        Ok(read_level(v)?.0.unwrap_or_default())
    }

    /// Parses `FieldsV1` JSON text.
    pub fn from_fields_v1_str(s: &str) -> Result<FieldSet, ApplyError> {
        let v: Value =
            serde_json::from_str(s).map_err(|e| ApplyError::InvalidFieldsV1(e.to_string()))?;
        Self::from_fields_v1(&v)
    }
}

enum Level<'a> {
    Member,
    Child(&'a FieldSet, bool),
}

/// One level of `FieldsV1`: the set below it (if any key leads further) and whether the
/// level marks a member (it has `"."`, or nothing below it).
fn read_level(v: &Value) -> Result<(Option<FieldSet>, bool), ApplyError> {
    let map = match v {
        Value::Null => return Ok((None, true)),
        Value::Object(map) => map,
        other => {
            return Err(ApplyError::InvalidFieldsV1(format!(
                "expect {{ or n, but found {}",
                other.to_string().chars().next().unwrap_or(' ')
            )));
        }
    };
    let mut is_member = false;
    let mut children: Option<FieldSet> = None;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::deserialize(key)? else {
            continue;
        };
        let (grandchildren, child_is_member) = read_level(value)?;
        if child_is_member {
            children
                .get_or_insert_with(FieldSet::new)
                .insert_member(pe.clone());
        }
        if let Some(grandchildren) = grandchildren {
            children
                .get_or_insert_with(FieldSet::new)
                .set_child(pe, grandchildren);
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(elements: Vec<PathElement>) -> Path {
        Path(elements)
    }

    fn f(name: &str) -> PathElement {
        PathElement::field(name)
    }

    fn check(fields_v1: &str, want_paths: &[&str]) {
        let set = FieldSet::from_fields_v1_str(fields_v1).expect("valid FieldsV1");
        let got: Vec<String> = set.paths().iter().map(Path::to_string).collect();
        assert_eq!(got, want_paths, "paths of {fields_v1}");
        assert_eq!(set.to_fields_v1_string(), fields_v1, "re-encoding");
        assert_eq!(
            set.to_fields_v1(),
            serde_json::from_str::<Value>(fields_v1).expect("json"),
            "value form"
        );
    }

    #[test]
    fn fields_v1_round_trips_byte_for_byte() {
        check(
            r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{}}}}}"#,
            &[
                ".metadata.labels",
                ".metadata.labels.app",
                ".spec.containers[name=\"nginx\"]",
                ".spec.containers[name=\"nginx\"].image",
                ".spec.containers[name=\"nginx\"].name",
            ],
        );
        check(
            r#"{"f:finalizers":{"v:\"a\"":{},"v:\"b\"":{}},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}},"k:{\"containerPort\":100,\"protocol\":\"TCP\"}":{}},"f:x":{"i:0":{},"i:10":{}}}"#,
            &[
                ".finalizers[=\"a\"]",
                ".finalizers[=\"b\"]",
                ".ports[containerPort=80,protocol=\"TCP\"]",
                ".ports[containerPort=100,protocol=\"TCP\"]",
                ".ports[containerPort=80,protocol=\"TCP\"].containerPort",
                ".x[0]",
                ".x[10]",
            ],
        );
    }

    #[test]
    fn keys_sort_numerically_and_fields_before_keys() {
        // Upstream orders numbers by value, not by their text, and fields first.
        let mut set = FieldSet::new();
        let key = |port: i64| PathElement::key([("containerPort", json!(port))]);
        set.insert(&[f("ports"), key(8080)]);
        set.insert(&[f("ports"), key(80)]);
        set.insert(&[f("ports"), key(100)]);
        set.insert(&[f("ports"), f("zzz")]);
        assert_eq!(
            set.to_fields_v1_string(),
            r#"{"f:ports":{"f:zzz":{},"k:{\"containerPort\":80}":{},"k:{\"containerPort\":100}":{},"k:{\"containerPort\":8080}":{}}}"#
        );
    }

    #[test]
    fn set_operations_follow_upstream() {
        let a = FieldSet::from_paths(&[
            Path::fields(&["a"]),
            Path::fields(&["b", "c"]),
            Path::fields(&["b", "d"]),
        ]);
        let b = FieldSet::from_paths(&[Path::fields(&["b"]), Path::fields(&["b", "c"])]);
        let paths =
            |s: &FieldSet| -> Vec<String> { s.paths().iter().map(Path::to_string).collect() };
        assert_eq!(paths(&a.union(&b)), [".a", ".b", ".b.c", ".b.d"]);
        assert_eq!(paths(&a.intersection(&b)), [".b.c"]);
        assert_eq!(paths(&a.difference(&b)), [".a", ".b.d"]);
        assert_eq!(paths(&a.recursive_difference(&b)), [".a"]);
        assert!(a.has(&p(vec![f("b"), f("d")]).0));
        assert!(!a.has(&[f("b")]));
        assert!(FieldSet::from_fields_v1(&json!(null)).is_ok_and(|s| s.is_empty()));
    }

    #[test]
    fn malformed_fields_v1_is_rejected_and_unknown_prefixes_skipped() {
        assert!(FieldSet::from_fields_v1_str(r#"{"x":{}}"#).is_err());
        assert!(FieldSet::from_fields_v1_str(r#"{"f:a":3}"#).is_err());
        assert!(FieldSet::from_fields_v1_str(r#"{"k:[1]":{}}"#).is_err());
        let set = FieldSet::from_fields_v1_str(r#"{"z:q":{},"f:a":{}}"#).expect("valid");
        assert_eq!(set.to_fields_v1_string(), r#"{"f:a":{}}"#);
    }
}
