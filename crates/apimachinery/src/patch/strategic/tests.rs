//! Behaviour tests for strategic merge patch application on Pod-shaped documents.

use serde_json::{Value, json};

use super::*;

/// The slice of the Pod schema these tests need, with upstream's strategies and keys.
fn pod_schema() -> SchemaNode {
    let container = SchemaNode::new()
        .with("env", PatchMeta::merge("name"), SchemaNode::new())
        .with(
            "ports",
            PatchMeta::merge("containerPort"),
            SchemaNode::new(),
        )
        .with(
            "volumeMounts",
            PatchMeta::merge("mountPath"),
            SchemaNode::new(),
        );
    let spec = SchemaNode::new()
        .with("containers", PatchMeta::merge("name"), container.clone())
        .with("initContainers", PatchMeta::merge("name"), container)
        .with(
            "volumes",
            PatchMeta::from_extensions("merge,retainKeys", "name").unwrap_or_default(),
            SchemaNode::new(),
        )
        .with("tolerations", PatchMeta::default(), SchemaNode::new())
        .with("nodeSelector", PatchMeta::default(), SchemaNode::new());
    let metadata = SchemaNode::new()
        .with("finalizers", PatchMeta::merge(""), SchemaNode::new())
        .with(
            "ownerReferences",
            PatchMeta::merge("uid"),
            SchemaNode::new(),
        );
    SchemaNode::new()
        .with("metadata", PatchMeta::default(), metadata)
        .with("spec", PatchMeta::default(), spec)
}

fn check(original: Value, patch: Value, want: Result<Value, &str>) {
    let got = strategic_merge_patch(&original, &patch, &pod_schema()).map_err(|e| e.to_string());
    assert_eq!(got, want.map_err(str::to_owned), "patch {patch}");
}

fn two_containers() -> Value {
    json!({"spec": {"containers": [
        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "side:1"}
    ]}})
}

#[test]
fn containers_merge_by_name_and_keep_unpatched_siblings() {
    check(
        two_containers(),
        json!({"spec": {"containers": [{"name": "sidecar", "image": "side:2"}]}}),
        Ok(json!({"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "side:2"}
        ]}})),
    );
}

#[test]
fn env_merges_by_name_and_ports_by_container_port() {
    check(
        two_containers(),
        json!({"spec": {"containers": [{"name": "app",
            "env": [{"name": "A", "value": "2"}],
            "ports": [{"containerPort": 80, "name": "http"}]}]}}),
        Ok(json!({"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "2"}], "ports": [{"containerPort": 80, "name": "http"}]},
            {"name": "sidecar", "image": "side:1"}
        ]}})),
    );
}

#[test]
fn new_list_items_without_an_order_directive_go_first_as_upstream() {
    check(
        two_containers(),
        json!({"spec": {"containers": [{"name": "debug", "image": "busybox"}]}}),
        Ok(json!({"spec": {"containers": [
            {"name": "debug", "image": "busybox"},
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "side:1"}
        ]}})),
    );
}

#[test]
fn set_element_order_places_new_items_where_the_client_wants_them() {
    check(
        two_containers(),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}, {"name": "debug"}],
            "containers": [{"name": "debug", "image": "busybox"}]
        }}),
        Ok(json!({"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "side:1"},
            {"name": "debug", "image": "busybox"}
        ]}})),
    );
    check(
        json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}),
        Ok(json!({"metadata": {"finalizers": ["c", "a", "b"]}})),
    );
}

#[test]
fn patch_delete_directive_removes_list_items_by_merge_key() {
    check(
        two_containers(),
        json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}),
        Ok(json!({"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]}
        ]}})),
    );
    check(
        two_containers(),
        json!({"spec": {"containers": [{"$patch": "delete"}]}}),
        Err("map: map[$patch:delete] does not contain declared merge key: name"),
    );
}

#[test]
fn patch_replace_directive_replaces_a_list_or_a_map() {
    check(
        two_containers(),
        json!({"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}}),
        Ok(json!({"spec": {"containers": [{"name": "only", "image": "x"}]}})),
    );
    check(
        json!({"spec": {"nodeSelector": {"a": "1", "b": "2"}}}),
        json!({"spec": {"nodeSelector": {"c": "3", "$patch": "replace"}}}),
        Ok(json!({"spec": {"nodeSelector": {"c": "3"}}})),
    );
    check(
        json!({"spec": {"nodeSelector": {"a": "1"}, "x": 1}}),
        json!({"spec": {"nodeSelector": {"$patch": "delete"}}}),
        Ok(json!({"spec": {"nodeSelector": {}, "x": 1}})),
    );
    check(
        json!({"spec": {}}),
        json!({"spec": {"$patch": "bogus"}}),
        Err("unknown patch type: bogus in map: map[$patch:bogus]"),
    );
    check(
        two_containers(),
        json!({"spec": {"containers": [{"name": "x", "$patch": "merge"}]}}),
        Err("merging lists cannot yet be specified in the patch"),
    );
}

#[test]
fn null_deletes_fields_and_unmatched_nulls_vanish() {
    check(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}}),
        json!({"metadata": {"labels": {"a": null, "c": null}}, "spec": {"new": {"k": null, "v": 1}}}),
        Ok(json!({"metadata": {"labels": {"b": "2"}}, "spec": {"x": 1, "new": {"v": 1}}})),
    );
}

#[test]
fn lists_without_a_strategy_are_replaced() {
    check(
        json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}),
        json!({"spec": {"tolerations": [{"key": "c"}]}}),
        Ok(json!({"spec": {"tolerations": [{"key": "c"}]}})),
    );
    check(
        json!({"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}),
        json!({"spec": {"containers": [{"name": "a", "args": ["z"]}]}}),
        Ok(json!({"spec": {"containers": [{"name": "a", "args": ["z"]}]}})),
    );
}

#[test]
fn primitive_merge_lists_are_sets_and_support_delete_from_primitive_list() {
    check(
        json!({"metadata": {"finalizers": ["a", "b"]}}),
        json!({"metadata": {"finalizers": ["b", "c"]}}),
        Ok(json!({"metadata": {"finalizers": ["a", "b", "c"]}})),
    );
    check(
        json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}}),
        Ok(json!({"metadata": {"finalizers": ["a", "c"]}})),
    );
    check(
        json!({"metadata": {}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
        Ok(json!({"metadata": {}})),
    );
}

#[test]
fn retain_keys_clears_fields_missing_from_the_list() {
    check(
        json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}),
        json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}}),
        Ok(json!({"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]}})),
    );
    check(
        json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}),
        json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name"], "hostPath": {"path": "/x"}}]}}),
        Err("invalid patch format of retainKeys"),
    );
}

#[test]
fn directives_inside_new_values_are_stripped() {
    check(
        json!({"spec": {}}),
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "gone", "$patch": "delete"}, {"name": "kept"}]}]}}),
        Ok(json!({"spec": {"containers": [{"name": "a", "env": [{"name": "kept"}]}]}})),
    );
}

#[test]
fn malformed_documents_and_directives_are_rejected() {
    let schema = pod_schema();
    assert_eq!(
        strategic_merge_patch(&json!({}), &json!([1]), &schema),
        Err(PatchError::BadJsonDoc)
    );
    check(
        json!({"spec": {}}),
        json!({"spec": {"$setElementOrder/containers": {"a": 1}}}),
        Err("expected a []interface {}, but received a map[string]interface {}"),
    );
    check(
        json!({"metadata": {"finalizers": [["a"]]}}),
        json!({"metadata": {"finalizers": [["b"]]}}),
        Err("lists of lists are not supported"),
    );
    check(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
        json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "b"}]}}),
        Err(
            "The order in patch list:\n[map[name:b]]\n doesn't match $setElementOrder list:\n[map[name:a]]\n",
        ),
    );
}

#[test]
fn patch_meta_parses_openapi_extension_values() {
    assert_eq!(
        PatchMeta::from_extensions("merge", "name"),
        Ok(PatchMeta::merge("name"))
    );
    assert_eq!(
        PatchMeta::from_extensions("merge,retainKeys", "name"),
        Ok(PatchMeta {
            strategy: PatchStrategy::Merge,
            retain_keys: true,
            merge_key: Some("name".to_owned())
        })
    );
    assert_eq!(PatchMeta::from_extensions("", ""), Ok(PatchMeta::default()));
    assert!(PatchMeta::from_extensions("merge,replace", "").is_err());
}

#[test]
fn openapi_definitions_back_the_schema() {
    let defs = json!({
        "io.k8s.api.core.v1.Pod": {"properties": {"spec": {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec"}}},
        "io.k8s.api.core.v1.PodSpec": {"properties": {"containers": {
            "type": "array",
            "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
            "x-kubernetes-patch-merge-key": "name",
            "x-kubernetes-patch-strategy": "merge"
        }}},
        "io.k8s.api.core.v1.Container": {"properties": {"env": {
            "type": "array",
            "items": {"$ref": "#/definitions/io.k8s.api.core.v1.EnvVar"},
            "x-kubernetes-patch-merge-key": "name",
            "x-kubernetes-patch-strategy": "merge"
        }}},
        "io.k8s.api.core.v1.EnvVar": {"properties": {"name": {"type": "string"}}}
    });
    let Some(defs) = defs.as_object() else {
        unreachable!("literal object")
    };
    let Some(schema) = OpenApiPatchSchema::new(defs, "io.k8s.api.core.v1.Pod") else {
        unreachable!("definition exists")
    };
    let got = strategic_merge_patch(
        &json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}, {"name": "b"}]}}),
        &json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}),
        &schema,
    );
    assert_eq!(
        got,
        Ok(json!({"spec": {"containers": [
            {"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]},
            {"name": "b"}
        ]}}))
    );
}

#[test]
fn merging_patches_keeps_nulls_and_directives_for_later() {
    let merged = merge_strategic_merge_patches(
        &pod_schema(),
        &[
            json!({"metadata": {"labels": {"a": null}}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        ],
    );
    assert_eq!(
        merged,
        Ok(
            json!({"metadata": {"labels": {"a": null}, "$deleteFromPrimitiveList/finalizers": ["x"]}})
        )
    );
}
