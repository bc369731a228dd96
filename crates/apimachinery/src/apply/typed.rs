//! Schema-aware walks over JSON objects: validation, the set of fields a value sets,
//! comparison, merging and removal of field sets (upstream's `typed` package).
//!
//! Every walk resolves a node's shape from the schema and, for untyped nodes, from the
//! value itself; atomic lists and maps, scalars and empty containers are leaves.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, PathElement, value_eq};
use super::schema::{ApplySchema, ListType, MapType, ScalarType, TypeKind, Untyped};
use crate::gofmt;

/// A resolved node shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape<'a> {
    Scalar(ScalarType),
    List(ListType<'a>),
    Map(MapType),
}

/// The shape of a value of `kind`: untyped values take the shape of what they hold;
/// absent and `null` untyped values count as maps, as upstream's atom deduction does.
fn deduce<'a>(kind: TypeKind<'a>, v: Option<&Value>) -> Shape<'a> {
    match kind {
        TypeKind::Scalar(s) => Shape::Scalar(s),
        TypeKind::List(l) => Shape::List(l),
        TypeKind::Map(m) => Shape::Map(m),
        TypeKind::Untyped(m) => match v {
            Some(Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
                Shape::Scalar(ScalarType::Untyped)
            }
            Some(Value::Array(_)) => Shape::List(ListType::Atomic),
            _ => Shape::Map(m),
        },
    }
}

/// The type of `key` in a map or struct; unknown keys walk as free-form values.
fn field_schema<'s>(schema: &'s dyn ApplySchema, key: &str) -> (Box<dyn ApplySchema + 's>, bool) {
    match schema.field(key) {
        Some(f) => (f.schema, f.declared),
        None => (Box::new(Untyped(MapType::Granular)), false),
    }
}

fn item_schema<'s>(schema: &'s dyn ApplySchema) -> Box<dyn ApplySchema + 's> {
    schema
        .item()
        .unwrap_or_else(|| Box::new(Untyped(MapType::Atomic)))
}

/// One problem found while walking a value, at a printed path (`.spec.replicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where, as upstream prints paths.
    pub path: String,
    /// What.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The problems of one walk, printed as upstream prints them (one line, or `errors:` and
/// one indented line per problem).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            errors => {
                f.write_str("errors:")?;
                for e in errors {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

/// The key of a list item: its key fields for list-maps, its value for sets.
pub(crate) fn list_item_key(
    list_type: ListType<'_>,
    item: &Value,
    item_schema: &dyn ApplySchema,
) -> Result<PathElement, String> {
    match list_type {
        ListType::Atomic => Err("invalid indexing of non-associative list".to_owned()),
        ListType::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".to_owned())
            }
            Value::Array(_) => {
                Err("not supported: associative list with lists as elements".to_owned())
            }
            Value::Null => Err(
                "associative list without keys has an element that's an explicit null".to_owned(),
            ),
            v => Ok(PathElement::Value(v.clone())),
        },
        ListType::Map(keys) => {
            let obj = match item {
                Value::Null => {
                    return Err("associative list with keys may not have a null element".to_owned());
                }
                Value::Object(obj) => obj,
                _ => {
                    return Err(
                        "associative list with keys may not have non-map elements".to_owned()
                    );
                }
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(v) = obj.get(key) {
                    fields.push((key.clone(), v.clone()));
                    continue;
                }
                if !matches!(item_schema.kind(), TypeKind::Map(_) | TypeKind::Untyped(_)) {
                    return Err(format!(
                        "couldn't find default value for {key}: associative list may not have non-map types"
                    ));
                }
                match item_schema.field_default(key) {
                    Some(default) if !default.is_null() => fields.push((key.clone(), default)),
                    _ => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {} (and doesn't have default value)",
                            gofmt::quote(key)
                        ));
                    }
                }
            }
            fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Ok(PathElement::Key(fields))
        }
    }
}

/// Go's `%v` of upstream's value wrapper (`&{…}`), which some messages print.
fn go_value_ptr(v: &Value) -> String {
    format!("&{{{}}}", gofmt::value(v))
}

fn go_sharp_v(v: &Value) -> String {
    let inner = match v {
        Value::String(s) => gofmt::quote(s),
        Value::Array(_) => format!("[]interface {{}}{{{}}}", gofmt::value(v)),
        Value::Object(_) => format!("map[string]interface {{}}{{{}}}", gofmt::value(v)),
        other => gofmt::value(other),
    };
    format!("&value.valueUnstructured{{Value:{inner}}}")
}

fn validate_scalar(t: ScalarType, v: &Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let is_scalar = matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match t {
        ScalarType::Numeric if !v.is_number() => Some(format!(
            "expected numeric (int or float), got {}",
            gofmt::type_name(v)
        )),
        ScalarType::String if !v.is_string() => {
            Some(format!("expected string, got {}", go_sharp_v(v)))
        }
        ScalarType::Boolean if !v.is_boolean() => {
            Some(format!("expected boolean, got {}", go_value_ptr(v)))
        }
        ScalarType::Untyped if !is_scalar => {
            Some(format!("expected any scalar, got {}", go_value_ptr(v)))
        }
        _ => None,
    }
}

/// Checks `value` against the schema: scalar types, list keys, duplicate list keys
/// (unless `allow_duplicates`, which upstream grants live objects), undeclared fields.
pub fn validate(
    value: &Value,
    schema: &dyn ApplySchema,
    allow_duplicates: bool,
) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    validate_node(
        value,
        schema,
        allow_duplicates,
        &mut String::new(),
        &mut errors,
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}

fn validate_node(
    value: &Value,
    schema: &dyn ApplySchema,
    allow_duplicates: bool,
    path: &mut String,
    errors: &mut Vec<ValidationError>,
) {
    let error = |path: &str, message: String| ValidationError {
        path: path.to_owned(),
        message,
    };
    match deduce(schema.kind(), Some(value)) {
        Shape::Scalar(t) => {
            if let Some(message) = validate_scalar(t, value) {
                errors.push(error(path, message));
            }
        }
        Shape::List(list_type) => {
            let items = match value {
                Value::Null => return,
                Value::Array(items) => items,
                other => {
                    errors.push(error(
                        path,
                        format!("expected list, got {}", go_value_ptr(other)),
                    ));
                    return;
                }
            };
            let item_type = item_schema(schema);
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let pe = if list_type == ListType::Atomic {
                    PathElement::Index(i as i64)
                } else {
                    match list_item_key(list_type, item, &*item_type) {
                        Ok(pe) => pe,
                        Err(e) => {
                            errors.push(error(path, format!("element {i}: {e}")));
                            return;
                        }
                    }
                };
                if list_type != ListType::Atomic {
                    if seen.contains(&pe) && !allow_duplicates {
                        errors.push(error(path, format!("duplicate entries for key {pe}")));
                    }
                    seen.insert(pe.clone());
                }
                let len = path.len();
                path.push_str(&pe.to_string());
                validate_node(item, &*item_type, allow_duplicates, path, errors);
                path.truncate(len);
            }
        }
        Shape::Map(_) => {
            let map = match value {
                Value::Null => return,
                Value::Object(map) => map,
                other => {
                    errors.push(error(
                        path,
                        format!("expected map, got {}", go_value_ptr(other)),
                    ));
                    return;
                }
            };
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                match (schema.field(key), map.get(key)) {
                    (Some(field), Some(v)) => {
                        validate_node(v, &*field.schema, allow_duplicates, path, errors);
                    }
                    _ => {
                        errors.push(error(path, "field not declared in schema".to_owned()));
                        return;
                    }
                }
                path.truncate(len);
            }
        }
    }
}

/// The set of fields `value` sets (upstream's `ToFieldSet`): every scalar and atomic
/// leaf, every list item, every map key, `null` and empty-object fields; declared struct
/// fields holding non-empty values only through what is below them.
pub fn to_field_set(value: &Value, schema: &dyn ApplySchema) -> FieldSet {
    let mut set = FieldSet::new();
    field_set_node(value, schema, &mut Vec::new(), &mut set);
    set
}

fn field_set_node(
    value: &Value,
    schema: &dyn ApplySchema,
    path: &mut Vec<PathElement>,
    set: &mut FieldSet,
) {
    match deduce(schema.kind(), Some(value)) {
        Shape::Scalar(_) | Shape::List(ListType::Atomic) | Shape::Map(MapType::Atomic) => {
            set.insert(path);
        }
        Shape::List(list_type) => {
            let Some(items) = value.as_array() else {
                return;
            };
            let item_type = item_schema(schema);
            let keys: Vec<Option<PathElement>> = items
                .iter()
                .map(|item| list_item_key(list_type, item, &*item_type).ok())
                .collect();
            let mut seen = BTreeSet::new();
            let mut duplicates = BTreeSet::new();
            for pe in keys.iter().flatten() {
                if !seen.insert(pe) && duplicates.insert(pe) {
                    path.push(pe.clone());
                    set.insert(path);
                    path.pop();
                }
            }
            for (item, pe) in items.iter().zip(&keys) {
                let Some(pe) = pe else { continue };
                if duplicates.contains(pe) {
                    continue;
                }
                path.push(pe.clone());
                field_set_node(item, &*item_type, path, set);
                set.insert(path);
                path.pop();
            }
        }
        Shape::Map(MapType::Granular) => {
            let Some(map) = value.as_object() else {
                return;
            };
            for (key, v) in map {
                let (field_type, declared) = field_schema(schema, key);
                path.push(PathElement::Field(key.clone()));
                field_set_node(v, &*field_type, path, set);
                let empty = v.is_null() || v.as_object().is_some_and(Map::is_empty);
                if empty || !declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
    }
}

/// What changed from one object to another: leaves by value, containers by presence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Fields only in the old object.
    pub removed: FieldSet,
    /// Leaves whose value changed.
    pub modified: FieldSet,
    /// Fields only in the new object.
    pub added: FieldSet,
}

impl Comparison {
    /// Drops `fields`, and everything below them, from all three sets.
    pub fn exclude(&mut self, fields: &FieldSet) {
        if fields.is_empty() {
            return;
        }
        self.removed = self.removed.recursive_difference(fields);
        self.modified = self.modified.recursive_difference(fields);
        self.added = self.added.recursive_difference(fields);
    }
}

/// Compares two objects of the same type (upstream's `TypedValue.Compare`).
pub fn compare(lhs: &Value, rhs: &Value, schema: &dyn ApplySchema) -> Comparison {
    let mut walker = CompareWalker {
        path: Vec::new(),
        out: Comparison::default(),
    };
    walker.node(Some(lhs), Some(rhs), schema);
    walker.out
}

struct CompareWalker {
    path: Vec<PathElement>,
    out: Comparison,
}

impl CompareWalker {
    fn node(&mut self, lhs: Option<&Value>, rhs: Option<&Value>, schema: &dyn ApplySchema) {
        let kind = schema.kind();
        let (sl, sr) = (deduce(kind, lhs), deduce(kind, rhs));
        let leaf = if rhs.is_none() {
            self.handle(sl, lhs, rhs, schema)
        } else if lhs.is_none() || sl == sr {
            self.handle(sr, lhs, rhs, schema)
        } else {
            self.handle(sl, lhs, rhs, schema);
            self.handle(sr, lhs, rhs, schema)
        };
        if !leaf {
            if lhs.is_none() {
                self.out.added.insert(&self.path);
            } else if rhs.is_none() {
                self.out.removed.insert(&self.path);
            }
        }
    }

    fn leaf(&mut self, lhs: Option<&Value>, rhs: Option<&Value>) {
        match (lhs, rhs) {
            (None, _) => self.out.added.insert(&self.path),
            (_, None) => self.out.removed.insert(&self.path),
            (Some(l), Some(r)) if !value_eq(l, r) => self.out.modified.insert(&self.path),
            _ => {}
        }
    }

    /// Handles one node as `shape`; returns whether it was a leaf.
    fn handle(
        &mut self,
        shape: Shape<'_>,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        schema: &dyn ApplySchema,
    ) -> bool {
        match shape {
            Shape::Scalar(_) => {
                self.leaf(lhs, rhs);
                true
            }
            Shape::List(list_type) => {
                let l = lhs.and_then(Value::as_array);
                let r = rhs.and_then(Value::as_array);
                let empty = l.is_none_or(|l| l.is_empty()) && r.is_none_or(|r| r.is_empty());
                if list_type == ListType::Atomic || empty {
                    self.leaf(lhs, rhs);
                    return true;
                }
                self.list_items(list_type, l, r, schema);
                false
            }
            Shape::Map(map_type) => {
                let l = lhs.and_then(Value::as_object);
                let r = rhs.and_then(Value::as_object);
                let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
                if map_type == MapType::Atomic || empty {
                    self.leaf(lhs, rhs);
                    return true;
                }
                for (key, lv, rv) in zip_maps(l, r) {
                    let (field_type, _) = field_schema(schema, key);
                    self.path.push(PathElement::Field(key.to_owned()));
                    self.node(lv, rv, &*field_type);
                    self.path.pop();
                }
                false
            }
        }
    }

    fn list_items(
        &mut self,
        list_type: ListType<'_>,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        schema: &dyn ApplySchema,
    ) {
        let item_type = item_schema(schema);
        let mut order: Vec<PathElement> = Vec::new();
        let mut l_values: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        let mut r_values: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        for item in lhs.into_iter().flatten() {
            let Ok(pe) = list_item_key(list_type, item, &*item_type) else {
                continue;
            };
            let entry = l_values.entry(pe.clone()).or_default();
            if entry.is_empty() {
                order.push(pe);
            }
            entry.push(item);
        }
        for item in rhs.into_iter().flatten() {
            let Ok(pe) = list_item_key(list_type, item, &*item_type) else {
                continue;
            };
            let entry = r_values.entry(pe.clone()).or_default();
            let first = entry.is_empty();
            entry.push(item);
            if first && !l_values.contains_key(&pe) {
                order.push(pe);
            }
        }
        let none: Vec<&Value> = Vec::new();
        for pe in order {
            let l = l_values.get(&pe).unwrap_or(&none);
            let r = r_values.get(&pe).unwrap_or(&none);
            self.path.push(pe);
            match (l.len(), r.len()) {
                (0..=1, 0..=1) => {
                    self.node(l.first().copied(), r.first().copied(), &*item_type);
                }
                (2.., 2..) => {
                    let equal = l.len() == r.len() && l.iter().zip(r).all(|(a, b)| value_eq(a, b));
                    if !equal {
                        self.out.modified.insert(&self.path);
                    }
                }
                (2.., _) => {
                    if let Some(r) = r.first() {
                        self.node(None, Some(r), &*item_type);
                    }
                    self.out.removed.insert(&self.path);
                }
                (_, _) => {
                    if let Some(l) = l.first() {
                        self.node(Some(l), None, &*item_type);
                    }
                    self.out.added.insert(&self.path);
                }
            }
            self.path.pop();
        }
    }
}

/// The keys of two maps, those of `lhs` first, each with its value on either side.
fn zip_maps<'a>(
    lhs: Option<&'a Map<String, Value>>,
    rhs: Option<&'a Map<String, Value>>,
) -> Vec<(&'a str, Option<&'a Value>, Option<&'a Value>)> {
    let mut out = Vec::new();
    if let Some(l) = lhs {
        for (k, v) in l {
            out.push((k.as_str(), Some(v), rhs.and_then(|r| r.get(k))));
        }
    }
    if let Some(r) = rhs {
        for (k, v) in r {
            if lhs.is_none_or(|l| !l.contains_key(k)) {
                out.push((k.as_str(), None, Some(v)));
            }
        }
    }
    out
}

/// Merges `rhs` into `lhs` (upstream's `TypedValue.Merge`): leaves take the right-hand
/// value, maps merge per key, associative lists merge per item keeping an order that
/// respects both sides. Fails on duplicate keys in `rhs` and on items without keys.
pub fn merge(
    lhs: &Value,
    rhs: &Value,
    schema: &dyn ApplySchema,
) -> Result<Value, ValidationErrors> {
    let mut walker = MergeWalker {
        path: String::new(),
        errors: Vec::new(),
    };
    let out = walker.node(Some(lhs), Some(rhs), schema);
    if walker.errors.is_empty() {
        Ok(out.unwrap_or(Value::Null))
    } else {
        Err(ValidationErrors(walker.errors))
    }
}

struct MergeWalker {
    path: String,
    errors: Vec<ValidationError>,
}

static NULL: Value = Value::Null;

impl MergeWalker {
    fn node(
        &mut self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        schema: &dyn ApplySchema,
    ) -> Option<Value> {
        let kind = schema.kind();
        let (sl, sr) = (deduce(kind, lhs), deduce(kind, rhs));
        if rhs.is_none() {
            self.handle(sl, lhs, rhs, schema)
        } else if lhs.is_none() || sl == sr {
            self.handle(sr, lhs, rhs, schema)
        } else {
            let _ = self.handle(sl, lhs, rhs, schema);
            self.handle(sr, lhs, rhs, schema)
        }
    }

    fn keep_rhs(lhs: Option<&Value>, rhs: Option<&Value>) -> Option<Value> {
        rhs.or(lhs).cloned()
    }

    fn handle(
        &mut self,
        shape: Shape<'_>,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        schema: &dyn ApplySchema,
    ) -> Option<Value> {
        match shape {
            Shape::Scalar(_) => Self::keep_rhs(lhs, rhs),
            Shape::List(list_type) => {
                let l = lhs.and_then(Value::as_array);
                let r = rhs.and_then(Value::as_array);
                let empty = l.is_none_or(|l| l.is_empty()) && r.is_none_or(|r| r.is_empty());
                if list_type == ListType::Atomic || empty {
                    return Self::keep_rhs(lhs, rhs);
                }
                let items = self.list_items(list_type, l, r, schema);
                (!items.is_empty()).then_some(Value::Array(items))
            }
            Shape::Map(map_type) => {
                let l = lhs.and_then(Value::as_object);
                let r = rhs.and_then(Value::as_object);
                let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
                if map_type == MapType::Atomic || empty {
                    return Self::keep_rhs(lhs, rhs);
                }
                let mut out = Map::new();
                for (key, lv, rv) in zip_maps(l, r) {
                    let (field_type, _) = field_schema(schema, key);
                    let len = self.path.len();
                    self.path.push('.');
                    self.path.push_str(key);
                    if let Some(v) = self.node(lv, rv, &*field_type) {
                        out.insert(key.to_owned(), v);
                    }
                    self.path.truncate(len);
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
        }
    }

    fn index<'v>(
        &mut self,
        list_type: ListType<'_>,
        list: Option<&'v Vec<Value>>,
        item_type: &dyn ApplySchema,
        allow_duplicates: bool,
    ) -> (
        Vec<(PathElement, &'v Value)>,
        BTreeMap<PathElement, &'v Value>,
    ) {
        let mut pes = Vec::new();
        let mut observed: BTreeMap<PathElement, &'v Value> = BTreeMap::new();
        for (i, item) in list.into_iter().flatten().enumerate() {
            let pe = match list_item_key(list_type, item, item_type) {
                Ok(pe) => pe,
                Err(e) => {
                    self.errors.push(ValidationError {
                        path: self.path.clone(),
                        message: format!("element {i}: {e}"),
                    });
                    continue;
                }
            };
            if observed.contains_key(&pe) {
                if !allow_duplicates {
                    self.errors.push(ValidationError {
                        path: self.path.clone(),
                        message: format!("duplicate entries for key {pe}"),
                    });
                    continue;
                }
                // Upstream remembers a duplicated live item as `null`.
                observed.insert(pe.clone(), &NULL);
            } else {
                observed.insert(pe.clone(), item);
            }
            pes.push((pe, item));
        }
        (pes, observed)
    }

    fn item(
        &mut self,
        pe: &PathElement,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        item_type: &dyn ApplySchema,
    ) -> Option<Value> {
        let len = self.path.len();
        self.path.push_str(&pe.to_string());
        let out = self.node(lhs, rhs, item_type);
        self.path.truncate(len);
        out
    }

    fn list_items(
        &mut self,
        list_type: ListType<'_>,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        schema: &dyn ApplySchema,
    ) -> Vec<Value> {
        let item_type = item_schema(schema);
        let errors_before = self.errors.len();
        let (rhs_pes, observed_rhs) = self.index(list_type, rhs, &*item_type, false);
        let (lhs_pes, observed_lhs) = self.index(list_type, lhs, &*item_type, true);
        if self.errors.len() != errors_before {
            return Vec::new();
        }

        let mut out = Vec::with_capacity(lhs_pes.len().max(rhs_pes.len()));
        let mut shared: VecDeque<&PathElement> = rhs_pes
            .iter()
            .map(|(pe, _)| pe)
            .filter(|pe| observed_lhs.contains_key(*pe))
            .collect();
        let mut next_shared = shared.pop_front();
        let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
        let (l_len, r_len) = (lhs_pes.len(), rhs_pes.len());
        let (mut li, mut ri) = (0, 0);
        while li < l_len || ri < r_len {
            if li < l_len && ri < r_len {
                let pe = &lhs_pes[li].0;
                if *pe == rhs_pes[ri].0 {
                    merged_rhs.insert(pe);
                    let l = observed_lhs.get(pe).copied();
                    let r = observed_rhs.get(pe).copied();
                    if let Some(v) = self.item(pe, l, r, &*item_type) {
                        out.push(v);
                    }
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < l_len {
                let (pe, item) = (&lhs_pes[li].0, lhs_pes[li].1);
                if !observed_rhs.contains_key(pe) {
                    if let Some(v) = self.item(pe, Some(item), None, &*item_type) {
                        out.push(v);
                    }
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                }
            }
            if ri < r_len {
                let pe = &rhs_pes[ri].0;
                merged_rhs.insert(pe);
                let l = observed_lhs.get(pe).copied();
                let r = observed_rhs.get(pe).copied();
                if let Some(v) = self.item(pe, l, r, &*item_type) {
                    out.push(v);
                }
                ri += 1;
                if next_shared.is_some_and(|n| n == pe) {
                    next_shared = shared.pop_front();
                }
            }
        }
        out
    }
}

/// `value` without the fields in `to_remove` (upstream's `RemoveItems`). A container
/// emptied by the removal becomes `null`, as upstream leaves it.
pub fn remove_items(value: &Value, to_remove: &FieldSet, schema: &dyn ApplySchema) -> Value {
    remove_node(value, to_remove, schema).unwrap_or(Value::Null)
}

fn remove_node(value: &Value, to_remove: &FieldSet, schema: &dyn ApplySchema) -> Option<Value> {
    match deduce(schema.kind(), Some(value)) {
        Shape::Scalar(_) => Some(value.clone()),
        Shape::List(list_type) => {
            let items = value.as_array()?;
            if items.is_empty() || list_type == ListType::Atomic {
                return None;
            }
            let item_type = item_schema(schema);
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = list_item_key(list_type, item, &*item_type) else {
                    out.push(item.clone());
                    continue;
                };
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.with_prefix(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => {
                        out.push(remove_node(item, sub, &*item_type).unwrap_or(Value::Null))
                    }
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Shape::Map(map_type) => {
            let map = value.as_object()?;
            if map.is_empty() || map_type == MapType::Atomic {
                return None;
            }
            let mut out = Map::new();
            for (key, v) in map {
                let pe = PathElement::Field(key.clone());
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.with_prefix(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => {
                        let (field_type, _) = field_schema(schema, key);
                        out.insert(
                            key.clone(),
                            remove_node(v, sub, &*field_type).unwrap_or(Value::Null),
                        );
                    }
                    None => {
                        out.insert(key.clone(), v.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
    }
}

/// `set` with every declared struct field that has paths below it made a member too
/// (upstream's `EnsureNamedFieldsAreMembers`), so that removing the set removes them.
pub fn ensure_named_fields_are_members(set: &FieldSet, schema: &dyn ApplySchema) -> FieldSet {
    ensure_node(set, Some(schema))
}

fn ensure_node(set: &FieldSet, schema: Option<&dyn ApplySchema>) -> FieldSet {
    let kind = schema.map(ApplySchema::kind);
    let is_map = matches!(kind, Some(TypeKind::Map(_) | TypeKind::Untyped(_)));
    let is_list = matches!(kind, Some(TypeKind::List(_) | TypeKind::Untyped(_)));
    let mut out = FieldSet::new();
    for m in set.members() {
        out.insert_member(m.clone());
    }
    for (pe, child) in set.children() {
        let child_type: Option<Box<dyn ApplySchema + '_>> = match (pe, schema) {
            (PathElement::Field(name), Some(s)) if is_map => {
                let (field_type, declared) = field_schema(s, name);
                if declared {
                    out.insert_member(pe.clone());
                }
                Some(field_type)
            }
            (PathElement::Key(_), Some(s)) if is_list => Some(item_schema(s)),
            _ => None,
        };
        out.set_child(pe.clone(), ensure_node(child, child_type.as_deref()));
    }
    out
}
