//! Group/version/kind/resource identifiers and accessors for `metadata` on JSON objects.
//!
//! Objects are handled as `serde_json::Value` so that every kind, built-in or custom,
//! goes through the same code; the accessors never panic on malformed input.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// Errors from parsing identifiers or editing object metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// An `apiVersion` with more than one `/`.
    #[error("unexpected GroupVersion string: {0}")]
    InvalidGroupVersion(String),
    /// The value being edited is not a JSON object (or its `metadata` is not).
    #[error("object is not a JSON object")]
    NotAnObject,
}

/// An API group and version, e.g. `apps/v1`; the core group is the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersion {
    /// The API group (`""` for the core group).
    pub group: String,
    /// The version, e.g. `v1`.
    pub version: String,
}

impl GroupVersion {
    /// Builds a group version from its parts.
    pub fn new(group: &str, version: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
        }
    }

    /// Parses an `apiVersion` string: `v1`, `apps/v1`; the empty string and `/` give the empty value.
    pub fn parse(api_version: &str) -> Result<Self, MetaError> {
        if api_version.is_empty() || api_version == "/" {
            return Ok(Self::default());
        }
        match api_version.matches('/').count() {
            0 => Ok(Self::new("", api_version)),
            1 => {
                let (group, version) = api_version.split_once('/').unwrap_or_default();
                Ok(Self::new(group, version))
            }
            _ => Err(MetaError::InvalidGroupVersion(api_version.to_owned())),
        }
    }

    /// The `apiVersion` form: `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        self.to_string()
    }

    /// This group version with a kind.
    pub fn with_kind(&self, kind: &str) -> GroupVersionKind {
        GroupVersionKind {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: kind.to_owned(),
        }
    }

    /// This group version with a resource.
    pub fn with_resource(&self, resource: &str) -> GroupVersionResource {
        GroupVersionResource {
            group: self.group.clone(),
            version: self.version.clone(),
            resource: resource.to_owned(),
        }
    }
}

impl fmt::Display for GroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.version)
        } else {
            write!(f, "{}/{}", self.group, self.version)
        }
    }
}

/// A kind in a group version, e.g. `apps/v1, Kind=Deployment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersionKind {
    /// The API group.
    pub group: String,
    /// The version.
    pub version: String,
    /// The kind, e.g. `Deployment`.
    pub kind: String,
}

impl GroupVersionKind {
    /// Builds a GVK from its parts.
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        }
    }

    /// Builds a GVK from an object's `apiVersion` and `kind`. Like upstream, an
    /// unparsable `apiVersion` yields a GVK with only the kind set.
    pub fn from_api_version_and_kind(api_version: &str, kind: &str) -> Self {
        match GroupVersion::parse(api_version) {
            Ok(gv) => gv.with_kind(kind),
            Err(_) => Self {
                kind: kind.to_owned(),
                ..Self::default()
            },
        }
    }

    /// The group version part.
    pub fn group_version(&self) -> GroupVersion {
        GroupVersion::new(&self.group, &self.version)
    }

    /// The group kind part.
    pub fn group_kind(&self) -> GroupKind {
        GroupKind::new(&self.group, &self.kind)
    }

    /// The `apiVersion` string for this kind.
    pub fn api_version(&self) -> String {
        self.group_version().to_string()
    }
}

impl fmt::Display for GroupVersionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}, Kind={}", self.group, self.version, self.kind)
    }
}

/// A resource in a group version, e.g. `apps/v1, Resource=deployments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersionResource {
    /// The API group.
    pub group: String,
    /// The version.
    pub version: String,
    /// The plural resource name, e.g. `deployments`.
    pub resource: String,
}

impl GroupVersionResource {
    /// Builds a GVR from its parts.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// The group resource part.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.resource)
    }

    /// The group version part.
    pub fn group_version(&self) -> GroupVersion {
        GroupVersion::new(&self.group, &self.version)
    }
}

impl fmt::Display for GroupVersionResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}, Resource={}",
            self.group, self.version, self.resource
        )
    }
}

/// A resource in a group, printed as `pods` or `deployments.apps` in error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// The API group.
    pub group: String,
    /// The plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// Builds a group resource from its parts.
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// Whether both parts are empty.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty() && self.resource.is_empty()
    }

    /// Parses `resource.group` (the first `.` separates them), as upstream's `ParseGroupResource`.
    pub fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((resource, group)) => Self::new(group, resource),
            None => Self::new("", s),
        }
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// A kind in a group, printed as `Pod` or `Deployment.apps` in error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKind {
    /// The API group.
    pub group: String,
    /// The kind.
    pub kind: String,
}

impl GroupKind {
    /// Builds a group kind from its parts.
    pub fn new(group: &str, kind: &str) -> Self {
        Self {
            group: group.to_owned(),
            kind: kind.to_owned(),
        }
    }
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// The GVK an object declares through its `apiVersion` and `kind`.
pub fn gvk_of(obj: &Value) -> GroupVersionKind {
    GroupVersionKind::from_api_version_and_kind(
        str_field(obj, "apiVersion").unwrap_or(""),
        str_field(obj, "kind").unwrap_or(""),
    )
}

fn str_field<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key)?.as_str()
}

/// The object's `metadata` map, if present.
pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

/// The object's `metadata` map, created (replacing a non-object) when missing.
pub fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, MetaError> {
    let map = obj.as_object_mut().ok_or(MetaError::NotAnObject)?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().ok_or(MetaError::NotAnObject)
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    metadata(obj)?.get(key)?.as_str()
}

fn set_meta(obj: &mut Value, key: &str, value: Option<Value>) -> Result<(), MetaError> {
    let meta = metadata_mut(obj)?;
    match value {
        Some(v) => {
            meta.insert(key.to_owned(), v);
        }
        None => {
            meta.remove(key);
        }
    }
    Ok(())
}

macro_rules! string_accessors {
    ($($(#[$doc:meta])* $get:ident, $set:ident, $key:literal;)*) => {$(
        $(#[$doc])*
        pub fn $get(obj: &Value) -> Option<&str> {
            meta_str(obj, $key)
        }

        #[doc = concat!("Sets `metadata.", $key, "`; an empty string removes it, as upstream omits empty strings.")]
        pub fn $set(obj: &mut Value, value: &str) -> Result<(), MetaError> {
            set_meta(obj, $key, (!value.is_empty()).then(|| Value::String(value.to_owned())))
        }
    )*};
}

string_accessors! {
    /// `metadata.name`.
    name, set_name, "name";
    /// `metadata.generateName`.
    generate_name, set_generate_name, "generateName";
    /// `metadata.namespace`.
    namespace, set_namespace, "namespace";
    /// `metadata.uid`.
    uid, set_uid, "uid";
    /// `metadata.resourceVersion`.
    resource_version, set_resource_version, "resourceVersion";
    /// `metadata.creationTimestamp` (RFC 3339).
    creation_timestamp, set_creation_timestamp, "creationTimestamp";
    /// `metadata.deletionTimestamp` (RFC 3339); set once graceful deletion starts.
    deletion_timestamp, set_deletion_timestamp, "deletionTimestamp";
}

/// `metadata.generation`; absent means 0 upstream.
pub fn generation(obj: &Value) -> Option<i64> {
    metadata(obj)?.get("generation")?.as_i64()
}

/// Sets `metadata.generation`; 0 removes it (upstream omits zero).
pub fn set_generation(obj: &mut Value, generation: i64) -> Result<(), MetaError> {
    set_meta(
        obj,
        "generation",
        (generation != 0).then(|| Value::from(generation)),
    )
}

/// `metadata.deletionGracePeriodSeconds`.
pub fn deletion_grace_period_seconds(obj: &Value) -> Option<i64> {
    metadata(obj)?.get("deletionGracePeriodSeconds")?.as_i64()
}

/// Sets or clears `metadata.deletionGracePeriodSeconds`.
pub fn set_deletion_grace_period_seconds(
    obj: &mut Value,
    seconds: Option<i64>,
) -> Result<(), MetaError> {
    set_meta(obj, "deletionGracePeriodSeconds", seconds.map(Value::from))
}

fn string_map(obj: &Value, key: &str) -> BTreeMap<String, String> {
    metadata(obj)
        .and_then(|m| m.get(key))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn set_string_map(
    obj: &mut Value,
    key: &str,
    map: &BTreeMap<String, String>,
) -> Result<(), MetaError> {
    let value = (!map.is_empty()).then(|| {
        Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    });
    set_meta(obj, key, value)
}

/// `metadata.labels` (non-string values are skipped).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "labels")
}

/// Replaces `metadata.labels`; an empty map removes the field.
pub fn set_labels(obj: &mut Value, labels: &BTreeMap<String, String>) -> Result<(), MetaError> {
    set_string_map(obj, "labels", labels)
}

/// One label's value.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    metadata(obj)?.get("labels")?.get(key)?.as_str()
}

/// Sets one label, creating the map when needed.
pub fn set_label(obj: &mut Value, key: &str, value: &str) -> Result<(), MetaError> {
    let mut all = labels(obj);
    all.insert(key.to_owned(), value.to_owned());
    set_labels(obj, &all)
}

/// `metadata.annotations` (non-string values are skipped).
pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "annotations")
}

/// Replaces `metadata.annotations`; an empty map removes the field.
pub fn set_annotations(
    obj: &mut Value,
    annotations: &BTreeMap<String, String>,
) -> Result<(), MetaError> {
    set_string_map(obj, "annotations", annotations)
}

/// One annotation's value.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    metadata(obj)?.get("annotations")?.get(key)?.as_str()
}

/// Sets one annotation, creating the map when needed.
pub fn set_annotation(obj: &mut Value, key: &str, value: &str) -> Result<(), MetaError> {
    let mut all = annotations(obj);
    all.insert(key.to_owned(), value.to_owned());
    set_annotations(obj, &all)
}

/// `metadata.finalizers` in order (non-string entries are skipped).
pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces `metadata.finalizers`; an empty list removes the field.
pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) -> Result<(), MetaError> {
    let value = (!finalizers.is_empty()).then(|| {
        Value::Array(
            finalizers
                .iter()
                .map(|f| Value::String(f.clone()))
                .collect(),
        )
    });
    set_meta(obj, "finalizers", value)
}

/// `metadata.ownerReferences` as raw JSON entries.
pub fn owner_references(obj: &Value) -> &[Value] {
    metadata(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Replaces `metadata.ownerReferences`; an empty list removes the field.
pub fn set_owner_references(obj: &mut Value, refs: Vec<Value>) -> Result<(), MetaError> {
    set_meta(
        obj,
        "ownerReferences",
        (!refs.is_empty()).then_some(Value::Array(refs)),
    )
}

/// The owner reference marked `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    owner_references(obj)
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn api_versions_parse_into_group_and_version() {
        let check = |input: &str, group: &str, version: &str| {
            assert_eq!(
                GroupVersion::parse(input),
                Ok(GroupVersion::new(group, version)),
                "{input}"
            );
            if !input.is_empty() && input != "/" {
                assert_eq!(
                    GroupVersion::parse(input).map(|gv| gv.to_string()),
                    Ok(input.to_owned())
                );
            }
        };
        check("v1", "", "v1");
        check("apps/v1", "apps", "v1");
        check(
            "rbac.authorization.k8s.io/v1",
            "rbac.authorization.k8s.io",
            "v1",
        );
        check("", "", "");
        check("/", "", "");
        assert_eq!(
            GroupVersion::parse("a/b/c"),
            Err(MetaError::InvalidGroupVersion("a/b/c".to_owned()))
        );
        assert_eq!(
            MetaError::InvalidGroupVersion("a/b/c".to_owned()).to_string(),
            "unexpected GroupVersion string: a/b/c"
        );
    }

    #[test]
    fn identifiers_print_like_upstream() {
        assert_eq!(GroupResource::new("", "pods").to_string(), "pods");
        assert_eq!(
            GroupResource::new("apps", "deployments").to_string(),
            "deployments.apps"
        );
        assert_eq!(
            GroupResource::parse("deployments.apps"),
            GroupResource::new("apps", "deployments")
        );
        assert_eq!(GroupKind::new("", "Pod").to_string(), "Pod");
        assert_eq!(
            GroupKind::new("apps", "Deployment").to_string(),
            "Deployment.apps"
        );
        assert_eq!(
            GroupVersionKind::new("apps", "v1", "Deployment").to_string(),
            "apps/v1, Kind=Deployment"
        );
        assert_eq!(
            GroupVersionResource::new("", "v1", "pods").to_string(),
            "/v1, Resource=pods"
        );
        assert_eq!(GroupVersionKind::new("", "v1", "Pod").api_version(), "v1");
    }

    #[test]
    fn gvk_comes_from_api_version_and_kind() {
        assert_eq!(
            gvk_of(&json!({"apiVersion": "apps/v1", "kind": "Deployment"})),
            GroupVersionKind::new("apps", "v1", "Deployment")
        );
        assert_eq!(
            gvk_of(&json!({"apiVersion": "a/b/c", "kind": "X"})),
            GroupVersionKind::new("", "", "X")
        );
        assert_eq!(gvk_of(&json!("not an object")), GroupVersionKind::default());
    }

    #[test]
    fn metadata_accessors_read_and_write() {
        let mut obj = json!({"kind": "Pod"});
        assert_eq!(name(&obj), None);
        set_name(&mut obj, "web").expect("object");
        set_namespace(&mut obj, "default").expect("object");
        set_generation(&mut obj, 3).expect("object");
        set_label(&mut obj, "app", "web").expect("object");
        set_annotation(&mut obj, "a", "b").expect("object");
        set_finalizers(&mut obj, &["x/y".to_owned()]).expect("object");
        assert_eq!(name(&obj), Some("web"));
        assert_eq!(namespace(&obj), Some("default"));
        assert_eq!(generation(&obj), Some(3));
        assert_eq!(label(&obj, "app"), Some("web"));
        assert_eq!(annotation(&obj, "a"), Some("b"));
        assert_eq!(finalizers(&obj), vec!["x/y".to_owned()]);
        set_finalizers(&mut obj, &[]).expect("object");
        set_namespace(&mut obj, "").expect("object");
        assert_eq!(
            obj,
            json!({"kind": "Pod", "metadata": {"name": "web", "generation": 3, "labels": {"app": "web"}, "annotations": {"a": "b"}}})
        );
        assert_eq!(set_name(&mut json!([]), "x"), Err(MetaError::NotAnObject));
    }

    #[test]
    fn controller_ref_finds_the_controlling_owner() {
        let obj = json!({"metadata": {"ownerReferences": [
            {"kind": "A", "name": "a"},
            {"kind": "ReplicaSet", "name": "rs", "controller": true}
        ]}});
        assert_eq!(owner_references(&obj).len(), 2);
        assert_eq!(
            controller_ref(&obj).and_then(|r| r.get("name")),
            Some(&json!("rs"))
        );
    }
}
