//! Strategic merge patch application, following upstream's `strategicpatch` semantics.
//!
//! Which lists merge (and by which key) comes from a [`PatchSchema`], so the `api`
//! crate can back it with tables generated from the OpenAPI extensions
//! `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`.
//! Supported: merge-key list merging, primitive list merging (set semantics), the
//! `$patch: replace|delete|merge` directives, `$retainKeys`, `$setElementOrder/<field>`,
//! `$deleteFromPrimitiveList/<field>`, and `null` deleting a field.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::PatchError;
use crate::gofmt;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// How a field's value combines with the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatchStrategy {
    /// No strategy given: objects merge, lists are replaced.
    #[default]
    Default,
    /// `merge`: lists merge (by merge key for lists of objects, as sets for primitives).
    Merge,
    /// `replace`: the patch value replaces the field wholesale.
    Replace,
}

/// The patch metadata of one field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchMeta {
    /// The list or object strategy.
    pub strategy: PatchStrategy,
    /// Whether `retainKeys` is among the strategies (it only affects diffing here).
    pub retain_keys: bool,
    /// The merge key of a list of objects (e.g. `name`, `containerPort`).
    pub merge_key: Option<String>,
}

impl PatchMeta {
    /// Builds metadata from the OpenAPI extension values (`"merge,retainKeys"`, `"name"`);
    /// empty strings mean the extension is absent.
    pub fn from_extensions(strategy: &str, merge_key: &str) -> Result<Self, PatchError> {
        let strategies: Vec<&str> = if strategy.is_empty() {
            Vec::new()
        } else {
            strategy.split(',').collect()
        };
        let (retain_keys, other) = match strategies.as_slice() {
            [] => (false, ""),
            ["retainKeys"] => (true, ""),
            [one] => (false, *one),
            ["retainKeys", other] | [other, "retainKeys"] => (true, *other),
            _ => {
                return Err(PatchError::Strategic(format!(
                    "unexpected patch strategy: [{}]",
                    strategies.join(" ")
                )));
            }
        };
        let strategy = match other {
            "" => PatchStrategy::Default,
            "merge" => PatchStrategy::Merge,
            "replace" => PatchStrategy::Replace,
            unknown => {
                return Err(PatchError::Strategic(format!(
                    "unexpected patch strategy: {unknown}"
                )));
            }
        };
        Ok(Self {
            strategy,
            retain_keys,
            merge_key: (!merge_key.is_empty()).then(|| merge_key.to_owned()),
        })
    }

    /// `merge` strategy with the given merge key (use `""` for primitive lists).
    pub fn merge(merge_key: &str) -> Self {
        Self {
            strategy: PatchStrategy::Merge,
            retain_keys: false,
            merge_key: (!merge_key.is_empty()).then(|| merge_key.to_owned()),
        }
    }

    /// `replace` strategy.
    pub fn replace() -> Self {
        Self {
            strategy: PatchStrategy::Replace,
            ..Self::default()
        }
    }

    fn merge_key(&self) -> &str {
        self.merge_key.as_deref().unwrap_or("")
    }
}

/// A field's metadata and the schema of its value (for lists: of their items).
pub struct FieldPatch<'a> {
    /// The field's strategy and merge key.
    pub meta: PatchMeta,
    /// The schema of the field's value.
    pub schema: Box<dyn PatchSchema + 'a>,
}

impl std::fmt::Debug for FieldPatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldPatch")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Patch metadata for the fields of one object type.
///
/// Lookups of unknown fields return `None`, which means "no strategy": objects merge
/// and lists are replaced, exactly as for fields without extensions.
pub trait PatchSchema {
    /// The metadata and value schema of `field` of this object type. For map-typed
    /// objects (e.g. `labels`), every key resolves to the map's value type.
    fn field(&self, field: &str) -> Option<FieldPatch<'_>>;
}

/// A schema that knows no fields: every list is replaced, every object merged.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSchema;

impl PatchSchema for NoSchema {
    fn field(&self, _field: &str) -> Option<FieldPatch<'_>> {
        None
    }
}

/// An owned tree of patch metadata, handy for tests and hand-written tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaNode {
    /// Per field: its metadata and the schema of its value.
    pub fields: BTreeMap<String, (PatchMeta, SchemaNode)>,
}

impl SchemaNode {
    /// An empty node.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field with the given metadata and value schema.
    #[must_use]
    pub fn with(mut self, field: &str, meta: PatchMeta, schema: SchemaNode) -> Self {
        self.fields.insert(field.to_owned(), (meta, schema));
        self
    }
}

impl PatchSchema for SchemaNode {
    fn field(&self, field: &str) -> Option<FieldPatch<'_>> {
        let (meta, schema) = self.fields.get(field)?;
        Some(FieldPatch {
            meta: meta.clone(),
            schema: Box::new(schema),
        })
    }
}

impl<T: PatchSchema + ?Sized> PatchSchema for &T {
    fn field(&self, field: &str) -> Option<FieldPatch<'_>> {
        (**self).field(field)
    }
}

/// A schema read lazily from a Swagger 2.0 `definitions` map (as in `/openapi/v2` or
/// the `_definitions.json` of the published JSON schemas), following `$ref`s.
#[derive(Debug, Clone, Copy)]
pub struct OpenApiPatchSchema<'a> {
    definitions: &'a Map<String, Value>,
    schema: &'a Value,
}

impl<'a> OpenApiPatchSchema<'a> {
    /// The schema of the definition named `name` (e.g. `io.k8s.api.core.v1.Pod`).
    pub fn new(definitions: &'a Map<String, Value>, name: &str) -> Option<Self> {
        Some(Self {
            definitions,
            schema: definitions.get(name)?,
        })
    }

    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        // Bounded to survive reference cycles made only of `$ref`s.
        for _ in 0..32 {
            let Some(name) = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/definitions/"))
            else {
                break;
            };
            match self.definitions.get(name) {
                Some(target) => schema = target,
                None => break,
            }
        }
        // Some generators wrap the reference in `allOf: [{$ref}]`.
        if let Some([only]) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            return self.resolve(only);
        }
        schema
    }
}

impl PatchSchema for OpenApiPatchSchema<'_> {
    fn field(&self, field: &str) -> Option<FieldPatch<'_>> {
        let object = self.resolve(self.schema);
        let prop = match object.get("properties").and_then(|p| p.get(field)) {
            Some(p) => p,
            None => object
                .get("additionalProperties")
                .filter(|v| v.is_object())?,
        };
        let strategy = prop
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or("");
        let merge_key = prop
            .get("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
            .unwrap_or("");
        let meta = PatchMeta::from_extensions(strategy, merge_key).unwrap_or_default();
        let resolved = self.resolve(prop);
        let value_schema = match resolved.get("items") {
            Some(items) if resolved.get("type").and_then(Value::as_str) == Some("array") => {
                self.resolve(items)
            }
            _ => resolved,
        };
        Some(FieldPatch {
            meta,
            schema: Box::new(OpenApiPatchSchema {
                definitions: self.definitions,
                schema: value_schema,
            }),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct MergeOptions {
    /// Apply `$deleteFromPrimitiveList` and `$setElementOrder` (server side) rather
    /// than carrying them along (when merging patches together).
    merge_parallel_list: bool,
    /// Drop `null`s that have nothing to delete instead of keeping them.
    ignore_unmatched_nulls: bool,
}

/// Applies a strategic merge patch to `original`, as the API server does for
/// `application/strategic-merge-patch+json`. Both documents must be JSON objects.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    schema: &dyn PatchSchema,
) -> Result<Value, PatchError> {
    let original = as_document(original)?;
    let patch = as_document(patch)?;
    let opts = MergeOptions {
        merge_parallel_list: true,
        ignore_unmatched_nulls: true,
    };
    merge_map(original, patch, schema, opts).map(Value::Object)
}

/// Merges several strategic merge patches into one that has the effect of applying
/// them in order, keeping `null`s and parallel lists (upstream's
/// `MergeStrategicMergeMapPatchUsingLookupPatchMeta`).
pub fn merge_strategic_merge_patches(
    schema: &dyn PatchSchema,
    patches: &[Value],
) -> Result<Value, PatchError> {
    let opts = MergeOptions {
        merge_parallel_list: false,
        ignore_unmatched_nulls: false,
    };
    let mut merged = Map::new();
    for p in patches {
        merged = merge_map(merged, as_document(p)?, schema, opts)?;
    }
    Ok(Value::Object(merged))
}

fn as_document(v: &Value) -> Result<Map<String, Value>, PatchError> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(PatchError::BadJsonDoc),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

fn bad_arg(expected: &'static str, actual: &Value) -> PatchError {
    PatchError::BadArgType {
        expected,
        actual: gofmt::type_name(actual),
    }
}

fn no_merge_key(map: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: gofmt::value(&Value::Object(map.clone())),
        key: key.to_owned(),
    }
}

const MAP_TYPE: &str = "map[string]interface {}";
const SLICE_TYPE: &str = "[]interface {}";

fn field_meta<'s>(
    schema: &'s dyn PatchSchema,
    key: &str,
) -> (PatchMeta, Box<dyn PatchSchema + 's>) {
    match schema.field(key) {
        Some(f) => (f.meta, f.schema),
        None => (PatchMeta::default(), Box::new(NoSchema)),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: &dyn PatchSchema,
    opts: MergeOptions,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.remove(DIRECTIVE_MARKER);
                Ok(patch)
            }
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(PatchError::BadPatchType {
                directive: gofmt::value(directive),
                map: gofmt::value(&Value::Object(patch.clone())),
            }),
        };
    }
    apply_retain_keys_directive(&mut original, &mut patch, opts)?;
    merge_patch_into_original(&mut original, &mut patch, schema, opts)?;

    for (k, patch_v) in patch {
        let (key, is_delete_list) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            if !opts.merge_parallel_list {
                original.insert(k, patch_v);
                continue;
            }
            (extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
        } else {
            (k, false)
        };

        if patch_v.is_null() {
            original.remove(&key);
            if opts.ignore_unmatched_nulls {
                continue;
            }
        }

        let Some(original_v) = original.remove(&key) else {
            if !is_delete_list {
                insert_without_directives(&mut original, key, patch_v, opts);
            }
            continue;
        };
        if kind(&original_v) != kind(&patch_v) {
            if is_delete_list {
                original.insert(key, original_v);
            } else {
                insert_without_directives(&mut original, key, patch_v, opts);
            }
            continue;
        }
        match (original_v, patch_v) {
            (Value::Object(orig), Value::Object(p)) => {
                let (meta, sub) = field_meta(schema, &key);
                let merged = if meta.strategy == PatchStrategy::Replace {
                    p
                } else {
                    merge_map(orig, p, &*sub, opts)?
                };
                original.insert(key, Value::Object(merged));
            }
            (Value::Array(orig), Value::Array(p)) => {
                let (meta, sub) = field_meta(schema, &key);
                let merged = if meta.strategy == PatchStrategy::Merge || is_delete_list {
                    merge_slice(orig, p, &*sub, meta.merge_key(), opts, is_delete_list, &key)?
                } else {
                    p
                };
                original.insert(key, Value::Array(merged));
            }
            (_, p) => {
                if let Some(v) = remove_directives(p) {
                    original.insert(key, v);
                }
            }
        }
    }
    Ok(original)
}

fn insert_without_directives(
    target: &mut Map<String, Value>,
    key: String,
    mut value: Value,
    opts: MergeOptions,
) {
    if opts.ignore_unmatched_nulls {
        discard_null_values(&mut value);
    }
    match remove_directives(value) {
        Some(v) => {
            target.insert(key, v);
        }
        None => {
            target.remove(&key);
        }
    }
}

fn discard_null_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_null_values);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}

/// Strips maps carrying a `$patch` directive (returning `None` when `v` itself is one).
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            Some(Value::Object(
                m.into_iter()
                    .filter_map(|(k, v)| Some((k, remove_directives(v)?)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// The field name after `prefix/`.
fn extract_key(s: &str, prefix: &str) -> Result<String, PatchError> {
    match s.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest.to_owned()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX => {
            Err(PatchError::BadPatchFormatForPrimitiveList)
        }
        _ => Err(PatchError::BadPatchFormatForSetElementOrderList),
    }
}

fn apply_retain_keys_directive(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    opts: MergeOptions,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    if !opts.merge_parallel_list {
        match original.get(RETAIN_KEYS_DIRECTIVE) {
            Some(existing) if *existing != retain => {
                return Err(PatchError::Strategic(format!(
                    "{} and {} are not deep equal: this may happen when calculating the 3-way diff patch",
                    gofmt::value(existing),
                    gofmt::value(&retain)
                )));
            }
            Some(_) => {}
            None => {
                original.insert(RETAIN_KEYS_DIRECTIVE.to_owned(), retain);
            }
        }
        return Ok(());
    }
    let Value::Array(keys) = retain else {
        return Err(PatchError::BadPatchFormatForRetainKeys);
    };
    let retained = |k: &str| keys.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(k) {
            return Err(PatchError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// Handles every `$setElementOrder/<field>` of `patch`: merges the field's list and
/// orders it as the directive says, removing both from `patch`.
fn merge_patch_into_original(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: &dyn PatchSchema,
    opts: MergeOptions,
) -> Result<(), PatchError> {
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in order_keys {
        let Some(order_v) = patch.remove(&key) else {
            continue;
        };
        if !opts.merge_parallel_list {
            match original.get(&key) {
                Some(existing) if *existing != order_v => {
                    return Err(PatchError::BadPatchFormatForSetElementOrderList);
                }
                Some(_) => {}
                None => {
                    original.insert(key.clone(), order_v.clone());
                }
            }
        }
        let Value::Array(order) = order_v else {
            return Err(bad_arg(SLICE_TYPE, &order_v));
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
        let original_list = match original.get(&field) {
            None => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(other) => return Err(bad_arg(SLICE_TYPE, other)),
        };
        let patch_list = match patch.get(&field) {
            None => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(other) => return Err(bad_arg(SLICE_TYPE, other)),
        };
        let (meta, sub) = field_meta(schema, &field);
        let merge_key = meta.merge_key().to_owned();
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or(&[]),
            &order,
            &merge_key,
        )?;

        let original_items = original_list.clone().unwrap_or_default();
        let patch_items = patch_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(v)) => v,
                _ => continue,
            },
            (Some(o), Some(p)) => {
                if meta.strategy == PatchStrategy::Merge {
                    merge_slice(o, p, &*sub, &merge_key, opts, false, &field)?
                } else {
                    p
                }
            }
            (None, None) => continue,
        };
        let (in_order, server_only) = partition_by_presence(merged, &order, &merge_key)?;
        let element_kind = slice_element_kind(&[&original_items, &patch_items])?;
        let server_order = if element_kind == Kind::Object
            && meta.strategy == PatchStrategy::Merge
            && !patch_items.is_empty()
        {
            aliased_server_order(&original_items, &patch_items, &merge_key)
        } else {
            original_items
        };
        let both = normalize_element_order(
            in_order,
            server_only,
            &order,
            &server_order,
            &merge_key,
            element_kind,
        )?;
        original.insert(field.clone(), Value::Array(both));
        patch.remove(&field);
    }
    Ok(())
}

/// The original list as upstream sees it after merging a merge-key list in place.
///
/// Upstream deletes items by shifting the original Go slice's backing array and then
/// appends new items into the freed slots, and it later orders the result by that same
/// (now rewritten) array. Reproducing this keeps our item order identical to upstream's
/// when a patch both deletes and adds items under `$setElementOrder`.
fn aliased_server_order(original: &[Value], patch: &[Value], merge_key: &str) -> Vec<Value> {
    let visible = original.len();
    let mut view = original.to_vec();
    let mut current = original.to_vec();
    let mut replaced = false;
    for p in patch {
        let Some(m) = p.as_object() else { continue };
        match m.get(DIRECTIVE_MARKER).and_then(Value::as_str) {
            Some(DELETE_DIRECTIVE) => {
                let Some(key_value) = m.get(merge_key) else {
                    continue;
                };
                while let Some(i) = current
                    .iter()
                    .position(|item| item.get(merge_key) == Some(key_value))
                {
                    current.remove(i);
                    for (j, item) in current
                        .iter()
                        .enumerate()
                        .skip(i)
                        .take(visible.saturating_sub(i))
                    {
                        view[j] = item.clone();
                    }
                }
            }
            Some(REPLACE_DIRECTIVE) => replaced = true,
            _ => {}
        }
    }
    if replaced {
        return view;
    }
    for p in patch {
        let Some(m) = p.as_object() else { continue };
        if m.contains_key(DIRECTIVE_MARKER) {
            continue;
        }
        let Some(key_value) = m.get(merge_key) else {
            continue;
        };
        if current
            .iter()
            .any(|item| item.get(merge_key) == Some(key_value))
        {
            continue;
        }
        if current.len() < visible {
            view[current.len()] = p.clone();
        }
        current.push(p.clone());
    }
    view
}

/// Checks that the patch list's items appear in the `$setElementOrder` list in the same
/// relative order (deletions aside).
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch_list.iter().collect()
    } else {
        let mut kept = Vec::new();
        for v in patch_list {
            let Value::Object(m) = v else {
                return Err(bad_arg(MAP_TYPE, v));
            };
            if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE) {
                kept.push(v);
            }
        }
        kept
    };
    let (mut pi, mut si) = (0, 0);
    while pi < non_delete.len() && si < order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(non_delete[pi], &order[si], merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= order.len() {
        return Err(PatchError::Strategic(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            gofmt::value(&Value::Array(patch_list.to_vec())),
            gofmt::value(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let l = left.as_object().ok_or_else(|| bad_arg(MAP_TYPE, left))?;
    let r = right.as_object().ok_or_else(|| bad_arg(MAP_TYPE, right))?;
    let lv = l.get(merge_key).ok_or_else(|| no_merge_key(l, merge_key))?;
    let rv = r.get(merge_key).ok_or_else(|| no_merge_key(r, merge_key))?;
    Ok(lv == rv)
}

/// The kind shared by all items of the lists; errors on mixed kinds, nested lists or no items.
fn slice_element_kind(lists: &[&[Value]]) -> Result<Kind, PatchError> {
    let mut found: Option<Kind> = None;
    for list in lists {
        for v in *list {
            let k = kind(v);
            match found {
                None => {
                    if k == Kind::Array {
                        return Err(PatchError::NoListOfLists);
                    }
                    found = Some(k);
                }
                Some(prev) if prev != k => {
                    let shown: Vec<String> = lists
                        .iter()
                        .map(|l| gofmt::value(&Value::Array(l.to_vec())))
                        .collect();
                    return Err(PatchError::Strategic(format!(
                        "list element types are not identical: [{}]",
                        shown.join(" ")
                    )));
                }
                Some(_) => {}
            }
        }
    }
    found.ok_or_else(|| PatchError::Strategic("no elements in any of the given slices".to_owned()))
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: &dyn PatchSchema,
    merge_key: &str,
    opts: MergeOptions,
    is_delete_list: bool,
    field: &str,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let element_kind = slice_element_kind(&[&original, &patch])?;
    let (server_order, patch, merged) = if element_kind != Kind::Object {
        if opts.merge_parallel_list && is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(PatchError::Strategic(format!(
                "cannot merge lists without merge key for {field}"
            )));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        let merged = merge_slice_without_special_elements(
            original.clone(),
            &patch,
            merge_key,
            schema,
            opts,
        )?;
        (original, patch, merged)
    };
    let (in_patch, server_only) = partition_by_presence(merged, &patch, merge_key)?;
    normalize_element_order(
        in_patch,
        server_only,
        &patch,
        &server_order,
        merge_key,
        element_kind,
    )
}

/// Applies `$patch: delete` and `$patch: replace` items of a merge-key list patch,
/// returning the remaining original and patch items.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = &v else {
            return Err(bad_arg(MAP_TYPE, &v));
        };
        let Some(directive) = m.get(DIRECTIVE_MARKER) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let key_value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
                for item in &original {
                    if !item.is_object() {
                        return Err(PatchError::Strategic(
                            "value for key 0 is not a map".to_owned(),
                        ));
                    }
                }
                original.retain(|item| item.get(merge_key) != Some(key_value));
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(PatchError::Strategic(
                    "merging lists cannot yet be specified in the patch".to_owned(),
                ));
            }
            _ => {
                return Err(PatchError::BadPatchType {
                    directive: gofmt::value(directive),
                    map: gofmt::value(&v),
                });
            }
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

fn find_by_merge_key(
    list: &[Value],
    merge_key: &str,
    value: &Value,
) -> Result<Option<usize>, PatchError> {
    for (i, item) in list.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(PatchError::Strategic(format!(
                "value for key {i} is not a map"
            )));
        };
        if m.get(merge_key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: &dyn PatchSchema,
    opts: MergeOptions,
) -> Result<Vec<Value>, PatchError> {
    for v in patch {
        let Value::Object(m) = v else {
            return Err(bad_arg(MAP_TYPE, v));
        };
        let key_value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
        match find_by_merge_key(&original, merge_key, key_value)? {
            Some(i) => {
                let Value::Object(existing) = std::mem::take(&mut original[i]) else {
                    return Err(PatchError::Strategic(format!(
                        "value for key {i} is not a map"
                    )));
                };
                original[i] = Value::Object(merge_map(existing, m.clone(), schema, opts)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

/// Splits `list` into the items present in `by` (by value, or by merge key) and the rest.
fn partition_by_presence(
    list: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::with_capacity(list.len());
    let mut absent = Vec::with_capacity(list.len());
    for v in list {
        let found = if merge_key.is_empty() {
            by.contains(&v)
        } else {
            let Value::Object(m) = &v else {
                return Err(bad_arg(MAP_TYPE, &v));
            };
            let key_value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
            find_by_merge_key(by, merge_key, key_value)?.is_some()
        };
        if found {
            present.push(v);
        } else {
            absent.push(v);
        }
    }
    Ok((present, absent))
}

/// The position of `v` in `list`, comparing merge-key values for lists of objects.
fn index_of(list: &[Value], v: &Value, merge_key: &str, element_kind: Kind) -> Option<usize> {
    if element_kind == Kind::Object {
        let want = v.as_object().and_then(|m| m.get(merge_key));
        list.iter()
            .position(|item| item.as_object().and_then(|m| m.get(merge_key)) == want)
    } else {
        list.iter().position(|item| item == v)
    }
}

/// Orders the merged list: patch items by the patch (or `$setElementOrder`) order,
/// server-only items by their original order, then interleaves the two so that items
/// known to the server keep their relative server order.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    element_kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, element_kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, element_kind)?;
    let mut out = Vec::with_capacity(patch.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patch.into_iter().peekable(),
    );
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key, element_kind),
                    index_of(server_order, r, merge_key, element_kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    element_kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let (mut to_sort, to_delete) = if element_kind == Kind::Object {
        for v in to_sort.iter().chain(order.iter()) {
            let Value::Object(m) = v else {
                return Err(bad_arg(MAP_TYPE, v));
            };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
        }
        to_sort.into_iter().partition::<Vec<_>, _>(|v| {
            v.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE)
        })
    } else {
        (to_sort, Vec::new())
    };
    // Upstream's comparator is only an order over items that `order` contains, which
    // is every item on the paths that reach here; otherwise keep the list as it is.
    let keys: Option<Vec<usize>> = to_sort
        .iter()
        .map(|v| index_of(order, v, merge_key, element_kind))
        .collect();
    if let Some(keys) = keys {
        let mut keyed: Vec<(usize, Value)> = keys.into_iter().zip(to_sort.drain(..)).collect();
        keyed.sort_by_key(|(k, _)| *k);
        to_sort = keyed.into_iter().map(|(_, v)| v).collect();
    }
    let mut out = to_sort;
    out.extend(to_delete);
    Ok(out)
}

#[cfg(test)]
mod tests;
