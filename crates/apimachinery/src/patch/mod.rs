//! The patch engines: JSON patch (RFC 6902), JSON merge patch (RFC 7396) and strategic merge patch.
//!
//! All of them work on `serde_json::Value` documents and report failures through one
//! [`PatchError`], whose messages follow upstream's where upstream has fixed ones.

pub mod strategic;

use serde_json::Value;

pub use strategic::{
    FieldPatch, NoSchema, OpenApiPatchSchema, PatchMeta, PatchSchema, PatchStrategy, SchemaNode,
    merge_strategic_merge_patches, strategic_merge_patch,
};

/// Errors from applying patches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch or the document is not a JSON object where one is required.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// The JSON patch document is malformed (not a list of operations).
    #[error("{0}")]
    InvalidJsonPatch(String),
    /// A JSON patch operation could not be applied.
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A list contains lists, which strategic merge patch does not support.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// A `$deleteFromPrimitiveList/<field>` key or value is malformed.
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    /// A `$retainKeys` list is malformed or does not cover the patch's fields.
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    /// A `$setElementOrder/<field>` key or list is malformed.
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    /// A list item lacks the list's merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The item, printed as Go prints a map.
        map: String,
        /// The merge key.
        key: String,
    },
    /// A value has the wrong JSON type.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// The expected Go type name.
        expected: &'static str,
        /// The received Go type name.
        actual: &'static str,
    },
    /// A `$patch` directive with an unknown value.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType {
        /// The directive value.
        directive: String,
        /// The map it appeared in, printed as Go prints a map.
        map: String,
    },
    /// Any other strategic merge patch failure; the message is upstream's.
    #[error("{0}")]
    Strategic(String),
}

/// Applies an RFC 6902 JSON patch (a JSON list of operations) to `doc`.
pub fn apply_json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::InvalidJsonPatch(format!("invalid JSON patch: {e}")))?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    Ok(out)
}

/// Applies an RFC 7396 JSON merge patch: objects merge recursively, `null` deletes,
/// everything else (lists included) replaces.
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(result: Result<Value, PatchError>, want: Result<Value, &str>) {
        assert_eq!(
            result.map_err(|e| e.to_string()),
            want.map_err(str::to_owned)
        );
    }

    #[test]
    fn json_patches_apply_operations_in_order() {
        let doc =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1, "list": [1, 2]}});
        check(
            apply_json_patch(
                &doc,
                &json!([
                    {"op": "replace", "path": "/spec/replicas", "value": 3},
                    {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                    {"op": "remove", "path": "/metadata/labels/a"},
                    {"op": "add", "path": "/spec/list/-", "value": 3},
                    {"op": "test", "path": "/spec/replicas", "value": 3}
                ]),
            ),
            Ok(
                json!({"metadata": {"labels": {"b": "2"}}, "spec": {"replicas": 3, "list": [1, 2, 3]}}),
            ),
        );
        assert!(matches!(
            apply_json_patch(
                &doc,
                &json!([{"op": "test", "path": "/spec/replicas", "value": 2}])
            ),
            Err(PatchError::JsonPatchFailed(_))
        ));
        assert!(matches!(
            apply_json_patch(&doc, &json!({"op": "add"})),
            Err(PatchError::InvalidJsonPatch(_))
        ));
        assert!(matches!(
            apply_json_patch(&doc, &json!([{"op": "remove", "path": "/nope"}])),
            Err(PatchError::JsonPatchFailed(_))
        ));
    }

    #[test]
    fn merge_patches_merge_objects_and_replace_lists() {
        check(
            apply_merge_patch(
                &json!({"a": {"b": 1, "c": 2}, "l": [1, 2], "keep": true}),
                &json!({"a": {"b": null, "d": 4}, "l": [3]}),
            ),
            Ok(json!({"a": {"c": 2, "d": 4}, "l": [3], "keep": true})),
        );
        check(
            apply_merge_patch(&json!({"a": 1}), &json!("x")),
            Ok(json!("x")),
        );
    }
}
