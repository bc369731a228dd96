//! The patch engines' views of the served API's schema (`tug_api::schema`): strategic merge
//! patch's [`PatchSchema`] (patch strategies and merge keys) and server-side apply's
//! [`ApplySchema`] (list types and keys, map types, scalars), derived the way upstream derives
//! them from OpenAPI.

use serde_json::Value;
use tug_api::{
    Gvk,
    schema::{self, Field, Schema, Type},
};
use tug_apimachinery::{
    apply::{
        ApplySchema, FieldSet, FieldType, ListType, MapType, Path, ScalarType, TypeKind, Untyped,
    },
    patch::{FieldPatch, PatchMeta, PatchSchema, PatchStrategy},
};

/// Strategic merge patch metadata of one type (a struct or a map).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SmpSchema {
    schema: &'static Schema,
    ty: &'static Type,
}

impl SmpSchema {
    /// The schema of kind `gvk`, if the API has one (custom kinds do not: upstream refuses
    /// strategic merge patches for them).
    pub(crate) fn for_kind(gvk: Gvk<'_>) -> Option<Self> {
        let schema = schema::schema();
        schema.by_gvk(gvk).map(|def| Self {
            schema,
            ty: def.ty(),
        })
    }

    fn of(&self, ty: &'static Type) -> Self {
        // A list's patch metadata is the field's; its schema is its items'.
        let ty = match ty {
            Type::List(item) => item,
            other => other,
        };
        Self {
            schema: self.schema,
            ty,
        }
    }
}

fn patch_meta(field: &Field) -> PatchMeta {
    let declared = field.patch_strategy();
    let strategy = if declared.replace {
        PatchStrategy::Replace
    } else if declared.merge {
        PatchStrategy::Merge
    } else {
        PatchStrategy::Default
    };
    PatchMeta {
        strategy,
        retain_keys: declared.retain_keys,
        merge_key: field.patch_merge_key().map(str::to_string),
    }
}

impl PatchSchema for SmpSchema {
    fn field(&self, name: &str) -> Option<FieldPatch<'_>> {
        match self.ty {
            Type::Struct(id) => {
                let field = self.schema.get(*id).field(name)?;
                Some(FieldPatch {
                    meta: patch_meta(field),
                    schema: Box::new(self.of(field.ty())),
                })
            }
            Type::Map(value) => Some(FieldPatch {
                meta: PatchMeta::default(),
                schema: Box::new(self.of(value)),
            }),
            _ => None,
        }
    }
}

/// A type in server-side apply's terms: the type itself and, when it is a struct field, the
/// field (which carries the list type, list-map keys and map type).
#[derive(Debug)]
pub(crate) struct TypedSchema {
    schema: &'static Schema,
    ty: &'static Type,
    field: Option<&'static Field>,
    /// The keys of a map list (the declared list-map keys, or the merge key of a list that
    /// only has a merge strategy).
    keys: Vec<String>,
}

/// `RawExtension`, `FieldsV1` and other free-form values.
static ANY: Type = Type::Any;

impl TypedSchema {
    /// The schema of kind `gvk`, if the API has one.
    pub(crate) fn for_kind(gvk: Gvk<'_>) -> Option<Self> {
        let schema = schema::schema();
        schema
            .by_gvk(gvk)
            .map(|def| Self::new(schema, def.ty(), None))
    }

    fn new(schema: &'static Schema, ty: &'static Type, field: Option<&'static Field>) -> Self {
        let keys = match (ty, field) {
            (Type::List(_), Some(f)) => match f.list_type() {
                Some(schema::ListType::Map) => f.list_map_keys().to_vec(),
                Some(_) => Vec::new(),
                None if f.patch_strategy().merge => f
                    .patch_merge_key()
                    .map(|k| vec![k.to_string()])
                    .unwrap_or_default(),
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        Self {
            schema,
            ty,
            field,
            keys,
        }
    }

    fn map_type(&self) -> MapType {
        let declared = self
            .field
            .and_then(|f| self.schema.effective_map_type(f))
            .or_else(|| self.schema.struct_def(self.ty).and_then(|d| d.map_type()));
        match declared {
            Some(schema::MapType::Atomic) => MapType::Atomic,
            _ => MapType::Granular,
        }
    }
}

impl ApplySchema for TypedSchema {
    fn kind(&self) -> TypeKind<'_> {
        match self.ty {
            Type::Struct(_) | Type::Map(_) => TypeKind::Map(self.map_type()),
            Type::List(_) => {
                let list = match self.field.and_then(Field::list_type) {
                    Some(schema::ListType::Atomic) => ListType::Atomic,
                    Some(schema::ListType::Set) => ListType::Set,
                    Some(schema::ListType::Map) => ListType::Map(&self.keys),
                    None => match self.field.map(Field::patch_strategy) {
                        Some(s) if s.merge && !self.keys.is_empty() => ListType::Map(&self.keys),
                        Some(s) if s.merge => ListType::Set,
                        _ => ListType::Atomic,
                    },
                };
                TypeKind::List(list)
            }
            Type::String => {
                let untyped = self
                    .field
                    .and_then(Field::format)
                    .is_some_and(|f| f == "date-time" || f == "int-or-string");
                TypeKind::Scalar(if untyped {
                    ScalarType::Untyped
                } else {
                    ScalarType::String
                })
            }
            Type::Integer | Type::Number => TypeKind::Scalar(ScalarType::Numeric),
            Type::Boolean => TypeKind::Scalar(ScalarType::Boolean),
            Type::IntOrString | Type::Quantity => TypeKind::Scalar(ScalarType::Untyped),
            Type::Any => TypeKind::Untyped(MapType::Atomic),
        }
    }

    fn item(&self) -> Option<Box<dyn ApplySchema + '_>> {
        match self.ty {
            Type::List(item) => Some(Box::new(TypedSchema::new(self.schema, item, None))),
            Type::Any => Some(Box::new(Untyped(MapType::Atomic))),
            _ => None,
        }
    }

    fn field(&self, name: &str) -> Option<FieldType<'_>> {
        match self.ty {
            Type::Struct(id) => {
                let field = self.schema.get(*id).field(name)?;
                Some(FieldType {
                    schema: Box::new(TypedSchema::new(self.schema, field.ty(), Some(field))),
                    declared: true,
                })
            }
            Type::Map(value) => Some(FieldType {
                schema: Box::new(TypedSchema::new(self.schema, value, None)),
                declared: false,
            }),
            Type::Any => Some(FieldType {
                schema: Box::new(TypedSchema::new(self.schema, &ANY, None)),
                declared: false,
            }),
            _ => None,
        }
    }

    fn field_default(&self, name: &str) -> Option<Value> {
        // The only default upstream's apply relies on: ports' `protocol` (a list-map key).
        match self.ty {
            Type::Struct(id)
                if name == "protocol" && self.schema.get(*id).field(name).is_some() =>
            {
                Some(Value::from("TCP"))
            }
            _ => None,
        }
    }
}

/// The fields a write to `subresource` may not set, as upstream's strategies reset them: the
/// main resource does not own `status` when there is a status subresource, the status
/// subresource owns nothing but `status`.
pub(crate) fn reset_fields(has_status: bool, subresource: &str) -> FieldSet {
    let paths: Vec<Path> = match subresource {
        "" if has_status => vec![Path::fields(&["status"])],
        "status" => vec![Path::fields(&["spec"]), Path::fields(&["metadata"])],
        _ => Vec::new(),
    };
    FieldSet::from_paths(paths.iter())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tug_apimachinery::patch::strategic_merge_patch;

    use super::*;

    const DEPLOYMENT: Gvk<'static> = Gvk::new("apps", "v1", "Deployment");

    #[test]
    fn strategic_merge_keeps_other_containers_by_name() {
        let schema = SmpSchema::for_kind(DEPLOYMENT).expect("schema");
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "busybox"}, {"name": "b", "image": "nginx"}]}},
            "selector": {"matchLabels": {"app": "x"}}}, "metadata": {"labels": {"a": "1"}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "busybox:2"}]}}},
            "metadata": {"labels": {"b": "2"}}});
        let patched = strategic_merge_patch(&live, &patch, &schema).expect("patched");
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "busybox:2"}, {"name": "b", "image": "nginx"}])
        );
        assert_eq!(patched["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn apply_sees_containers_as_a_map_list_and_selectors_as_atomic() {
        let root = TypedSchema::for_kind(DEPLOYMENT).expect("schema");
        let spec = root.field("spec").expect("spec");
        let selector = spec.schema.field("selector").expect("selector");
        assert_eq!(selector.schema.kind(), TypeKind::Map(MapType::Atomic));
        let template = spec.schema.field("template").expect("template");
        let pod_spec = template.schema.field("spec").expect("pod spec");
        let containers = pod_spec.schema.field("containers").expect("containers");
        assert_eq!(
            containers.schema.kind(),
            TypeKind::List(ListType::Map(&["name".to_string()]))
        );
        let item = containers.schema.item().expect("item");
        let ports = item.field("ports").expect("ports");
        let port = ports.schema.item().expect("port");
        assert_eq!(port.field_default("protocol"), Some(json!("TCP")));
        let metadata = root.field("metadata").expect("metadata");
        let labels = metadata.schema.field("labels").expect("labels");
        assert_eq!(labels.schema.kind(), TypeKind::Map(MapType::Granular));
        assert!(root.field("nope").is_none());
    }
}
