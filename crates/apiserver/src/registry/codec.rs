//! Objects at rest: JSON bytes in the resource's storage version, without
//! `metadata.resourceVersion` (the datastore's `mod_revision` is the resource version, set on
//! every read and event, as upstream's etcd3 store does), and the conversion between the served
//! and the storage version at the registry's edges.

use serde_json::Value;
use tug_api::catalog::Resource;
use tug_storage::{KeyValue, Revision};

use super::{convert, objmeta};

/// Why a stored object could not be decoded or an object encoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// The stored bytes are not JSON.
    #[error("stored object at {key} is not valid JSON")]
    Json {
        /// The datastore key.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The stored JSON is not an object.
    #[error("stored object at {key} is not a JSON object")]
    NotAnObject {
        /// The datastore key.
        key: String,
    },
    /// The object could not be serialised.
    #[error("encoding the object")]
    Encode(#[source] serde_json::Error),
}

/// Decodes a stored key-value into an object in the storage version, with
/// `metadata.resourceVersion` set to the key's `mod_revision`.
pub(crate) fn decode(kv: &KeyValue) -> Result<Value, CodecError> {
    let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|source| CodecError::Json {
        key: kv.key.clone(),
        source,
    })?;
    if !obj.is_object() {
        return Err(CodecError::NotAnObject {
            key: kv.key.clone(),
        });
    }
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// Encodes an object in the storage version for the datastore: `resourceVersion` and the
/// deprecated `selfLink` are not stored.
pub(crate) fn encode(obj: &Value) -> Result<Vec<u8>, CodecError> {
    let mut stored = obj.clone();
    objmeta::remove_meta(&mut stored, "resourceVersion");
    objmeta::remove_meta(&mut stored, "selfLink");
    serde_json::to_vec(&stored).map_err(CodecError::Encode)
}

/// Sets `metadata.resourceVersion` to a revision.
pub(crate) fn set_resource_version(obj: &mut Value, revision: Revision) {
    objmeta::set_meta(obj, "resourceVersion", Value::String(revision.to_string()));
}

/// `metadata.resourceVersion`, when set and non-empty.
pub(crate) fn resource_version(obj: &Value) -> Option<&str> {
    objmeta::str_at(obj, &["metadata", "resourceVersion"]).filter(|rv| !rv.is_empty())
}

/// The `apiVersion` objects are stored with.
pub(crate) fn storage_api_version(resource: &Resource) -> String {
    match resource.storage {
        Some(storage) => tug_api::Gvk::new(storage.group, storage.version, "").api_version(),
        None => resource.api_version(),
    }
}

/// Whether the served version differs from the storage version (events.k8s.io/v1 Events,
/// autoscaling/v1 HorizontalPodAutoscalers).
fn converts(resource: &Resource) -> bool {
    resource
        .storage
        .is_some_and(|s| s.group != resource.group || s.version != resource.version)
}

/// Converts a stored object into the version `resource` serves, with that version's
/// `apiVersion` and `kind`.
pub(crate) fn to_served(resource: &Resource, mut obj: Value) -> Value {
    if converts(resource) {
        obj = convert::from_storage(resource, obj);
    }
    objmeta::set(
        &mut obj,
        "apiVersion",
        Value::String(resource.api_version()),
    );
    objmeta::set(&mut obj, "kind", Value::String(resource.kind.to_owned()));
    obj
}

/// Converts an object of the version `resource` serves into the storage version, with the
/// storage version's `apiVersion` and `kind`.
pub(crate) fn to_storage(resource: &Resource, mut obj: Value) -> Value {
    if converts(resource) {
        obj = convert::to_storage(resource, obj);
    }
    objmeta::set(
        &mut obj,
        "apiVersion",
        Value::String(storage_api_version(resource)),
    );
    objmeta::set(&mut obj, "kind", Value::String(resource.kind.to_owned()));
    obj
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kv(value: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: "/registry/pods/default/a".into(),
            value: value.to_owned().into(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            lease: 0,
        }
    }

    #[test]
    fn resource_versions_come_from_the_mod_revision_and_are_never_stored() {
        let obj = decode(&kv(r#"{"metadata":{"name":"a"}}"#, 7)).expect("decodes");
        assert_eq!(resource_version(&obj), Some("7"));
        let bytes = encode(&obj).expect("encodes");
        let back: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(back, json!({"metadata": {"name": "a"}}));
        assert!(decode(&kv("[1]", 1)).is_err());
        assert!(decode(&kv("{", 1)).is_err());
    }
}
