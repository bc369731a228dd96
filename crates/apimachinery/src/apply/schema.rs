//! The schema server-side apply follows: how each field is owned (as a whole, per key, per
//! list item) and which list items are the same item, as upstream derives it from OpenAPI.
//!
//! The `api` crate implements [`ApplySchema`] from the OpenAPI extensions the way upstream's
//! `schemaconv` does:
//!
//! * `x-kubernetes-list-type: atomic|set|map` with `x-kubernetes-list-map-keys`; a list
//!   without a list type but with `x-kubernetes-patch-strategy: merge` (or
//!   `merge,retainKeys`) is a map keyed by `x-kubernetes-patch-merge-key`, or a set without
//!   one; every other list is atomic;
//! * `x-kubernetes-map-type: atomic|granular` on a definition or on a property that refers to
//!   one (selectors, object references);
//! * `properties` make a struct (unknown fields are errors), `additionalProperties` a map,
//!   an object with neither is free-form ([`Untyped`] with [`MapType::Granular`]);
//! * `IntOrString`, `Quantity`, `Time`, `date-time` and `int-or-string` strings are
//!   [`ScalarType::Untyped`]; `RawExtension` is [`Untyped`] with [`MapType::Atomic`].
//!
//! [`SchemaTree`] is a hand-written implementation that reads structured-merge-diff's own
//! schema format, for tests and small tables.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ApplyError;

/// The kind of a scalar, for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    /// An integer or a float.
    Numeric,
    /// A string.
    String,
    /// A boolean.
    Boolean,
    /// Any scalar (`IntOrString`, `Quantity`, `Time`).
    Untyped,
}

/// How a list is owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType<'a> {
    /// Replaced and owned as a whole.
    Atomic,
    /// A set of scalars, each owned on its own (`v:` elements).
    Set,
    /// Items identified by these key fields, each owned on its own (`k:` elements).
    Map(&'a [String]),
}

/// How a map or struct is owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// Each key owned on its own (the default).
    Granular,
    /// Replaced and owned as a whole.
    Atomic,
}

impl ScalarType {
    /// Upstream's scalar for an OpenAPI `type` and `format`: strings with any format but
    /// `byte` (`date-time`, `int-or-string`, …) accept any scalar.
    pub fn from_openapi(ty: &str, format: &str) -> Self {
        match (ty, format) {
            ("integer" | "number", _) => Self::Numeric,
            ("boolean", _) => Self::Boolean,
            ("string", "" | "byte") => Self::String,
            _ => Self::Untyped,
        }
    }
}

impl<'a> ListType<'a> {
    /// Upstream's list type from a property's extensions: `x-kubernetes-list-type`
    /// (with `x-kubernetes-list-map-keys`), else `x-kubernetes-patch-strategy` `merge`
    /// (or `merge,retainKeys`) keyed by `x-kubernetes-patch-merge-key` (a set without
    /// one), else atomic.
    pub fn from_openapi(
        list_type: Option<&str>,
        list_map_keys: &'a [String],
        patch_strategy: Option<&str>,
        patch_merge_key: Option<&'a String>,
    ) -> Self {
        match (list_type, patch_strategy) {
            (Some("set"), _) => Self::Set,
            (Some("map"), _) => Self::Map(list_map_keys),
            (Some(_), _) => Self::Atomic,
            (None, Some("merge" | "merge,retainKeys")) => match patch_merge_key {
                Some(key) => Self::Map(std::slice::from_ref(key)),
                None => Self::Set,
            },
            (None, _) => Self::Atomic,
        }
    }
}

impl MapType {
    /// `x-kubernetes-map-type`: `atomic` or `granular`; `None` when unset (or unknown).
    pub fn from_openapi(map_type: Option<&str>) -> Option<Self> {
        match map_type {
            Some("atomic") => Some(Self::Atomic),
            Some("granular") => Some(Self::Granular),
            _ => None,
        }
    }
}

/// The kind of values a type describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind<'a> {
    /// A scalar; owned as a whole.
    Scalar(ScalarType),
    /// A list.
    List(ListType<'a>),
    /// A struct (declared fields) or a map (any key, see [`ApplySchema::field`]).
    Map(MapType),
    /// Any JSON: scalars and lists are owned whole, objects as the map type says.
    Untyped(MapType),
}

/// The type of one key of a struct or map.
pub struct FieldType<'a> {
    /// The value's type.
    pub schema: Box<dyn ApplySchema + 'a>,
    /// Whether the key is a declared struct field (rather than a key of a map).
    pub declared: bool,
}

impl std::fmt::Debug for FieldType<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldType")
            .field("kind", &self.schema.kind())
            .field("declared", &self.declared)
            .finish()
    }
}

/// One type of the schema of a kind; the root is the kind itself (`Deployment`).
pub trait ApplySchema {
    /// What values of this type are and how they are owned.
    fn kind(&self) -> TypeKind<'_>;

    /// The item type of a list.
    fn item(&self) -> Option<Box<dyn ApplySchema + '_>>;

    /// The type of `name` in a struct or map: a declared field, else the map's value type
    /// (`declared: false`); `None` when the key is not allowed (unknown struct field).
    fn field(&self, name: &str) -> Option<FieldType<'_>>;

    /// The OpenAPI `default` of a declared field. Upstream uses it for list-map keys that
    /// an item omits (`protocol: TCP` of container and service ports).
    fn field_default(&self, _name: &str) -> Option<Value> {
        None
    }

    /// The fields present in the Go zero value of this struct, with their value there:
    /// `{}` for non-pointer structs (whose own zero fields are filled in recursively),
    /// `null` for pointers, slices and maps without `omitempty` and for `metav1.Time`.
    /// Upstream's OpenAPI v3 marks the non-pointer structs with `default: {}`. Used by
    /// [`zero_object`], which stands for the empty object upstream compares a created
    /// object with; without it created objects record `.` for those structs.
    fn zero_fields(&self) -> Vec<(String, Value)> {
        Vec::new()
    }
}

impl<T: ApplySchema + ?Sized> ApplySchema for &T {
    fn kind(&self) -> TypeKind<'_> {
        (**self).kind()
    }
    fn item(&self) -> Option<Box<dyn ApplySchema + '_>> {
        (**self).item()
    }
    fn field(&self, name: &str) -> Option<FieldType<'_>> {
        (**self).field(name)
    }
    fn field_default(&self, name: &str) -> Option<Value> {
        (**self).field_default(name)
    }
    fn zero_fields(&self) -> Vec<(String, Value)> {
        (**self).zero_fields()
    }
}

/// Upstream's untyped types: [`MapType::Granular`] is `__untyped_deduced_` (free-form
/// objects), [`MapType::Atomic`] is `__untyped_atomic_` (`RawExtension`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Untyped(pub MapType);

impl ApplySchema for Untyped {
    fn kind(&self) -> TypeKind<'_> {
        TypeKind::Untyped(self.0)
    }
    fn item(&self) -> Option<Box<dyn ApplySchema + '_>> {
        Some(Box::new(Untyped(MapType::Atomic)))
    }
    fn field(&self, _name: &str) -> Option<FieldType<'_>> {
        Some(FieldType {
            schema: Box::new(*self),
            declared: false,
        })
    }
}

/// The Go zero value of the type, as upstream's `New()` object serialises
/// (see [`ApplySchema::zero_fields`]).
pub fn zero_object(schema: &dyn ApplySchema) -> Value {
    let mut map = Map::new();
    for (name, value) in schema.zero_fields() {
        let value = match (&value, schema.field(&name)) {
            (Value::Object(m), Some(field)) if m.is_empty() => zero_object(&*field.schema),
            _ => value,
        };
        map.insert(name, value);
    }
    Value::Object(map)
}

/// A schema in structured-merge-diff's own format (`types: [{name, map|list|scalar}]`,
/// type references by `namedType` or inline, `elementRelationship`, `keys`, field
/// `default`s), plus a Tug extension: a field's `zero` value (see
/// [`ApplySchema::zero_fields`]).
#[derive(Debug, Clone, Default)]
pub struct SchemaTree {
    types: BTreeMap<String, Atom>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Document {
    #[serde(default)]
    types: Vec<TypeDef>,
}

#[derive(Debug, Clone, Deserialize)]
struct TypeDef {
    name: String,
    #[serde(flatten)]
    atom: Atom,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Atom {
    #[serde(default)]
    scalar: Option<String>,
    #[serde(default)]
    list: Option<Box<ListDef>>,
    #[serde(default)]
    map: Option<Box<MapDef>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct TypeRef {
    #[serde(default, rename = "namedType")]
    named_type: Option<String>,
    #[serde(default, rename = "elementRelationship")]
    element_relationship: Option<String>,
    #[serde(flatten)]
    inlined: Atom,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct MapDef {
    #[serde(default)]
    fields: Vec<StructField>,
    #[serde(default, rename = "elementType")]
    element_type: Option<TypeRef>,
    #[serde(default, rename = "elementRelationship")]
    element_relationship: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct StructField {
    name: String,
    #[serde(rename = "type")]
    ty: TypeRef,
    #[serde(default)]
    default: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    zero: Option<Value>,
}

/// Keeps an explicit `null` (a zero value of `null`) apart from an absent key.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ListDef {
    #[serde(default, rename = "elementType")]
    element_type: Option<TypeRef>,
    #[serde(default, rename = "elementRelationship")]
    element_relationship: Option<String>,
    #[serde(default)]
    keys: Vec<String>,
}

const UNTYPED_ATOMIC: &str = "__untyped_atomic_";
const UNTYPED_DEDUCED: &str = "__untyped_deduced_";

impl SchemaTree {
    /// Parses a schema document in structured-merge-diff's format.
    pub fn from_smd(document: &Value) -> Result<Self, ApplyError> {
        let doc: Document = serde_json::from_value(document.clone())
            .map_err(|e| ApplyError::InvalidSchema(e.to_string()))?;
        let mut types = BTreeMap::new();
        for def in doc.types {
            types.insert(def.name, def.atom);
        }
        Ok(Self { types })
    }

    /// The named type `name` (the root of a kind, e.g. `io.k8s.api.apps.v1.Deployment`).
    pub fn root<'a>(&'a self, name: &str) -> Option<TreeNode<'a>> {
        let atom = self.types.get(name)?;
        Some(TreeNode {
            tree: self,
            atom: NodeAtom::Tree(atom),
            relationship: None,
        })
    }

    fn resolve<'a>(&'a self, tr: &'a TypeRef) -> Box<dyn ApplySchema + 'a> {
        let relationship = tr.element_relationship.as_deref();
        let atom = match tr.named_type.as_deref() {
            Some(UNTYPED_ATOMIC) if !self.types.contains_key(UNTYPED_ATOMIC) => {
                return Box::new(Untyped(MapType::Atomic));
            }
            Some(UNTYPED_DEDUCED) if !self.types.contains_key(UNTYPED_DEDUCED) => {
                return Box::new(Untyped(MapType::Granular));
            }
            Some(name) => match self.types.get(name) {
                Some(atom) => NodeAtom::Tree(atom),
                None => NodeAtom::Missing,
            },
            None => NodeAtom::Tree(&tr.inlined),
        };
        Box::new(TreeNode {
            tree: self,
            atom,
            relationship,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum NodeAtom<'a> {
    Tree(&'a Atom),
    Missing,
}

/// A type of a [`SchemaTree`].
#[derive(Debug, Clone, Copy)]
pub struct TreeNode<'a> {
    tree: &'a SchemaTree,
    atom: NodeAtom<'a>,
    relationship: Option<&'a str>,
}

impl TreeNode<'_> {
    fn map_def(&self) -> Option<&MapDef> {
        match self.atom {
            NodeAtom::Tree(atom) => atom.map.as_deref(),
            NodeAtom::Missing => None,
        }
    }

    fn struct_field(&self, name: &str) -> Option<&StructField> {
        self.map_def()?.fields.iter().find(|f| f.name == name)
    }
}

fn map_type(relationship: Option<&str>) -> MapType {
    match relationship {
        Some("atomic") => MapType::Atomic,
        _ => MapType::Granular,
    }
}

impl ApplySchema for TreeNode<'_> {
    fn kind(&self) -> TypeKind<'_> {
        let NodeAtom::Tree(atom) = self.atom else {
            return TypeKind::Untyped(MapType::Granular);
        };
        let map_rel = || {
            map_type(
                self.relationship.or(atom
                    .map
                    .as_ref()
                    .and_then(|m| m.element_relationship.as_deref())),
            )
        };
        match (&atom.scalar, &atom.list, &atom.map) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => TypeKind::Untyped(map_rel()),
            (Some(scalar), None, None) => TypeKind::Scalar(match scalar.as_str() {
                "numeric" => ScalarType::Numeric,
                "string" => ScalarType::String,
                "boolean" => ScalarType::Boolean,
                _ => ScalarType::Untyped,
            }),
            (None, Some(list), _) => {
                let rel = self.relationship.or(list.element_relationship.as_deref());
                TypeKind::List(match rel {
                    Some("associative") if list.keys.is_empty() => ListType::Set,
                    Some("associative") => ListType::Map(&list.keys),
                    _ => ListType::Atomic,
                })
            }
            (None, None, Some(_)) => TypeKind::Map(map_rel()),
            (None, None, None) => TypeKind::Untyped(MapType::Granular),
        }
    }

    fn item(&self) -> Option<Box<dyn ApplySchema + '_>> {
        let NodeAtom::Tree(atom) = self.atom else {
            return Some(Box::new(Untyped(MapType::Atomic)));
        };
        match atom.list.as_ref().and_then(|l| l.element_type.as_ref()) {
            Some(tr) => Some(self.tree.resolve(tr)),
            None => Some(Box::new(Untyped(MapType::Atomic))),
        }
    }

    fn field(&self, name: &str) -> Option<FieldType<'_>> {
        let NodeAtom::Tree(_) = self.atom else {
            return Some(FieldType {
                schema: Box::new(Untyped(MapType::Granular)),
                declared: false,
            });
        };
        if let Some(field) = self.struct_field(name) {
            return Some(FieldType {
                schema: self.tree.resolve(&field.ty),
                declared: true,
            });
        }
        let element = self.map_def()?.element_type.as_ref()?;
        Some(FieldType {
            schema: self.tree.resolve(element),
            declared: false,
        })
    }

    fn field_default(&self, name: &str) -> Option<Value> {
        self.struct_field(name)?.default.clone()
    }

    fn zero_fields(&self) -> Vec<(String, Value)> {
        self.map_def()
            .map(|m| {
                m.fields
                    .iter()
                    .filter_map(|f| Some((f.name.clone(), f.zero.clone()?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn openapi_extensions_map_to_list_and_map_types_as_upstream() {
        let keys = vec!["containerPort".to_owned(), "protocol".to_owned()];
        let name = "name".to_owned();
        let check = |want: ListType<'_>, got: ListType<'_>| assert_eq!(got, want);
        check(
            ListType::Map(&keys),
            ListType::from_openapi(Some("map"), &keys, Some("merge"), Some(&name)),
        );
        check(
            ListType::Set,
            ListType::from_openapi(Some("set"), &[], None, None),
        );
        check(
            ListType::Atomic,
            ListType::from_openapi(Some("atomic"), &[], Some("merge"), Some(&name)),
        );
        check(
            ListType::Map(std::slice::from_ref(&name)),
            ListType::from_openapi(None, &[], Some("merge,retainKeys"), Some(&name)),
        );
        check(
            ListType::Set,
            ListType::from_openapi(None, &[], Some("merge"), None),
        );
        check(
            ListType::Atomic,
            ListType::from_openapi(None, &[], Some("retainKeys"), None),
        );
        check(
            ListType::Atomic,
            ListType::from_openapi(None, &[], None, None),
        );
        assert_eq!(MapType::from_openapi(Some("atomic")), Some(MapType::Atomic));
        assert_eq!(MapType::from_openapi(None), None);
        assert_eq!(
            ScalarType::from_openapi("string", "date-time"),
            ScalarType::Untyped
        );
        assert_eq!(
            ScalarType::from_openapi("string", "byte"),
            ScalarType::String
        );
        assert_eq!(
            ScalarType::from_openapi("integer", "int32"),
            ScalarType::Numeric
        );
    }

    #[test]
    fn zero_objects_follow_the_zero_fields_recursively() {
        let tree = SchemaTree::from_smd(&json!({"types": [
            {"name": "T", "map": {"fields": [
                {"name": "spec", "type": {"namedType": "Spec"}, "zero": {}},
                {"name": "status", "type": {"map": {"fields": []}}, "zero": {}},
                {"name": "ptr", "type": {"namedType": "Spec"}}
            ]}},
            {"name": "Spec", "map": {"fields": [
                {"name": "items", "type": {"list": {"elementType": {"scalar": "string"},
                    "elementRelationship": "atomic"}}, "zero": null},
                {"name": "n", "type": {"scalar": "numeric"}}
            ]}}
        ]}))
        .expect("valid schema");
        let root = tree.root("T").expect("root");
        assert_eq!(
            zero_object(&root),
            json!({"spec": {"items": null}, "status": {}})
        );
        assert!(SchemaTree::from_smd(&json!({"types": [{"map": {}}]})).is_err());
    }
}
