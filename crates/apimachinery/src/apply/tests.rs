//! Behaviour tests of server-side apply and managed fields: scenarios from
//! structured-merge-diff's merge tests and the kubectl flows the API server must support.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::*;

const T0: i64 = 1_700_000_000;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix_seconds(T0 + offset)
}

/// A kind under test: its schema, where it is served and what its strategy resets.
struct Kind {
    schema: SchemaTree,
    root: &'static str,
    api_version: &'static str,
    kind: &'static str,
    reset: FieldSet,
}

impl Kind {
    fn node(&self) -> TreeNode<'_> {
        self.schema.root(self.root).expect("root type exists")
    }

    /// `body` with this kind's `apiVersion` and `kind` unless it has its own.
    fn object(&self, body: Value) -> Value {
        let mut obj = match body {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        obj.entry("apiVersion")
            .or_insert_with(|| json!(self.api_version));
        obj.entry("kind").or_insert_with(|| json!(self.kind));
        Value::Object(obj)
    }

    fn apply(
        &self,
        live: Option<&Value>,
        manager: &str,
        config: Value,
        force: bool,
        now: Timestamp,
    ) -> Result<Value, ApplyError> {
        let opts = ApplyOptions {
            manager,
            api_version: self.api_version,
            kind: self.kind,
            subresource: "",
            force,
            reset_fields: &self.reset,
            now,
        };
        apply(live, &self.object(config), &opts, &self.node())
    }

    fn update(
        &self,
        live: Option<&Value>,
        manager: &str,
        new: Value,
        subresource: &str,
        now: Timestamp,
    ) -> Value {
        let opts = UpdateOptions {
            manager,
            api_version: self.api_version,
            subresource,
            reset_fields: &self.reset,
            now,
        };
        update(live, &self.object(new), &opts, &self.node())
    }
}

/// One write of a scenario.
enum Op {
    /// Server-side apply by a manager.
    Apply(&'static str, Value),
    /// Server-side apply with `force=true`.
    ForceApply(&'static str, Value),
    /// Server-side apply that must fail with this message, leaving the object as it was.
    ApplyFails(&'static str, Value, &'static str),
    /// Any other write of the whole object by a manager.
    Update(&'static str, Value),
}

/// Runs `ops` starting from no object, one second apart, and returns the stored object.
fn run(kind: &Kind, ops: Vec<Op>) -> Option<Value> {
    let mut live: Option<Value> = None;
    for (i, op) in ops.into_iter().enumerate() {
        let now = at(i as i64);
        match op {
            Op::Apply(manager, config) => {
                let out = kind.apply(live.as_ref(), manager, config, false, now);
                live = Some(out.unwrap_or_else(|e| panic!("op {i}: apply by {manager}: {e}")));
            }
            Op::ForceApply(manager, config) => {
                let out = kind.apply(live.as_ref(), manager, config, true, now);
                live =
                    Some(out.unwrap_or_else(|e| panic!("op {i}: force apply by {manager}: {e}")));
            }
            Op::ApplyFails(manager, config, message) => {
                let err = kind
                    .apply(live.as_ref(), manager, config, false, now)
                    .expect_err("the apply conflicts");
                assert_eq!(err.to_string(), message, "op {i}: error of {manager}");
            }
            Op::Update(manager, object) => {
                live = Some(kind.update(live.as_ref(), manager, object, "", now));
            }
        }
    }
    live
}

/// Runs `ops` and compares the stored object (without `apiVersion`, `kind` and
/// `managedFields`) and each manager's fields, keyed `manager/Operation[/subresource]`.
fn check(kind: &Kind, ops: Vec<Op>, want_object: Value, want_managed: Value) {
    let live = run(kind, ops).unwrap_or(Value::Null);
    assert_eq!(strip(&live), want_object, "object");
    assert_eq!(owners(&live), want_managed, "managed fields");
}

fn strip(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(map) = obj.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
            if meta.is_empty() {
                map.remove("metadata");
            }
        }
    }
    obj
}

fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn owners(obj: &Value) -> Value {
    let mut out = Map::new();
    for e in entries(obj) {
        let s = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut key = format!("{}/{}", s("manager"), s("operation"));
        if !s("subresource").is_empty() {
            key = format!("{key}/{}", s("subresource"));
        }
        out.insert(key, e.get("fieldsV1").cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

/// The entry of `manager`, with its `fieldsV1` as upstream writes it.
fn entry_of(obj: &Value, manager: &str) -> (Value, String) {
    let e = entries(obj)
        .into_iter()
        .find(|e| e.get("manager") == Some(&json!(manager)))
        .unwrap_or_else(|| panic!("no entry of {manager} in {obj}"));
    let fields = FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null))
        .expect("valid FieldsV1")
        .to_fields_v1_string();
    (e, fields)
}

/// A kind with structured-merge-diff's test types: the root type `root` of `types` gets
/// `apiVersion`, `kind` and a small `metadata`.
fn smd_kind(mut types: Value, root: &'static str) -> Kind {
    if let Some(list) = types.as_array_mut() {
        for t in list.iter_mut() {
            if t.get("name") != Some(&json!(root)) {
                continue;
            }
            if let Some(fields) = t.pointer_mut("/map/fields").and_then(Value::as_array_mut) {
                fields.push(json!({"name": "apiVersion", "type": {"scalar": "string"}}));
                fields.push(json!({"name": "kind", "type": {"scalar": "string"}}));
                fields.push(json!({"name": "metadata", "type": {"map": {"fields": [
                    {"name": "name", "type": {"scalar": "string"}},
                    {"name": "managedFields", "type": {"namedType": "__untyped_atomic_"}}
                ]}}}));
            }
        }
    }
    Kind {
        schema: SchemaTree::from_smd(&json!({ "types": types })).expect("valid schema"),
        root,
        api_version: "v1",
        kind: "Test",
        reset: FieldSet::new(),
    }
}

fn leaf_kind() -> Kind {
    smd_kind(
        json!([{"name": "leafFields", "map": {"fields": [
            {"name": "numeric", "type": {"scalar": "numeric"}},
            {"name": "string", "type": {"scalar": "string"}},
            {"name": "bool", "type": {"scalar": "boolean"}}
        ]}}]),
        "leafFields",
    )
}

fn set_kind() -> Kind {
    smd_kind(
        json!([{"name": "sets", "map": {"fields": [
            {"name": "list", "type": {"list": {
                "elementType": {"scalar": "string"}, "elementRelationship": "associative"}}}
        ]}}]),
        "sets",
    )
}

fn nested_kind() -> Kind {
    smd_kind(
        json!([
            {"name": "type", "map": {"fields": [
                {"name": "list", "type": {"namedType": "associativeList"}},
                {"name": "listOfLists", "type": {"namedType": "listOfLists"}},
                {"name": "struct", "type": {"namedType": "struct"}},
                {"name": "atomicMap", "type": {"map": {
                    "elementType": {"scalar": "string"}, "elementRelationship": "atomic"}}},
                {"name": "mapOfMaps", "type": {"map": {"elementType": {"map": {
                    "elementType": {"scalar": "string"}}}}}},
                {"name": "containerPorts", "type": {"list": {
                    "elementType": {"namedType": "port"},
                    "elementRelationship": "associative", "keys": ["port", "protocol"]}}},
                {"name": "free", "type": {"namedType": "__untyped_deduced_"}}
            ]}},
            {"name": "struct", "map": {"fields": [
                {"name": "name", "type": {"scalar": "string"}},
                {"name": "value", "type": {"scalar": "numeric"}}
            ]}},
            {"name": "associativeList", "list": {
                "elementType": {"namedType": "myElement"},
                "elementRelationship": "associative", "keys": ["name"]}},
            {"name": "myElement", "map": {"fields": [
                {"name": "name", "type": {"scalar": "string"}},
                {"name": "value", "type": {"scalar": "numeric"}}
            ]}},
            {"name": "listOfLists", "list": {
                "elementType": {"map": {"fields": [
                    {"name": "name", "type": {"scalar": "string"}},
                    {"name": "value", "type": {"list": {
                        "elementType": {"scalar": "string"},
                        "elementRelationship": "associative"}}}
                ]}},
                "elementRelationship": "associative", "keys": ["name"]}},
            {"name": "port", "map": {"fields": [
                {"name": "port", "type": {"scalar": "numeric"}},
                {"name": "protocol", "type": {"scalar": "string"}, "default": "TCP"},
                {"name": "name", "type": {"scalar": "string"}}
            ]}}
        ]),
        "type",
    )
}

#[test]
fn leaf_conflicts_with_an_updater_until_forced() {
    check(
        &leaf_kind(),
        vec![
            Op::Apply("default", json!({"numeric": 1, "string": "string"})),
            Op::Update(
                "controller",
                json!({"numeric": 1, "string": "controller string", "bool": true}),
            ),
            Op::ApplyFails(
                "default",
                json!({"numeric": 2, "string": "user string"}),
                r#"Apply failed with 1 conflict: conflict with "controller" using v1: .string"#,
            ),
            Op::ForceApply("default", json!({"numeric": 2, "string": "user string"})),
        ],
        json!({"numeric": 2, "string": "user string", "bool": true}),
        json!({
            "default/Apply": {"f:numeric": {}, "f:string": {}},
            "controller/Update": {"f:bool": {}}
        }),
    );
}

#[test]
fn fields_an_applier_omits_are_removed_unless_an_updater_set_them() {
    check(
        &leaf_kind(),
        vec![
            Op::Apply("default", json!({"numeric": 2})),
            Op::Update("controller", json!({"numeric": 1})),
            Op::Apply("default", json!({})),
        ],
        json!({"numeric": 1}),
        json!({"controller/Update": {"f:numeric": {}}}),
    );
    check(
        &leaf_kind(),
        vec![
            Op::Apply(
                "default",
                json!({"numeric": 1, "string": "s", "bool": false}),
            ),
            Op::Apply("default", json!({"string": "s"})),
        ],
        json!({"string": "s"}),
        json!({"default/Apply": {"f:string": {}}}),
    );
}

#[test]
fn set_items_are_owned_one_by_one_and_shared_when_equal() {
    check(
        &set_kind(),
        vec![
            Op::Apply("default", json!({"list": ["a", "c"]})),
            Op::Update("controller", json!({"list": ["a", "b", "c", "d"]})),
            Op::Apply("default", json!({"list": ["a", "b", "c"]})),
        ],
        json!({"list": ["a", "b", "c", "d"]}),
        json!({
            "default/Apply": {"f:list": {"v:\"a\"": {}, "v:\"b\"": {}, "v:\"c\"": {}}},
            "controller/Update": {"f:list": {"v:\"b\"": {}, "v:\"d\"": {}}}
        }),
    );
}

#[test]
fn reordering_a_set_changes_no_ownership_and_apply_restores_its_order() {
    check(
        &set_kind(),
        vec![
            Op::Apply("default", json!({"list": ["a", "b", "c", "d"]})),
            Op::Update("controller", json!({"list": ["a", "d", "c", "b"]})),
            Op::Apply("default", json!({"list": ["a", "b", "c", "d"]})),
        ],
        json!({"list": ["a", "b", "c", "d"]}),
        json!({
            "default/Apply": {"f:list": {"v:\"a\"": {}, "v:\"b\"": {}, "v:\"c\"": {}, "v:\"d\"": {}}}
        }),
    );
    check(
        &set_kind(),
        vec![
            Op::Apply("default", json!({"list": ["a", "b", "c", "d"]})),
            Op::Apply("default", json!({"list": ["a", "d", "c", "b"]})),
        ],
        json!({"list": ["a", "d", "c", "b"]}),
        json!({
            "default/Apply": {"f:list": {"v:\"a\"": {}, "v:\"b\"": {}, "v:\"c\"": {}, "v:\"d\"": {}}}
        }),
    );
}

#[test]
fn list_map_items_no_longer_applied_are_removed() {
    check(
        &nested_kind(),
        vec![
            Op::Apply("default", json!({"list": [{"name": "a", "value": 1}]})),
            Op::Apply("default", json!({"list": [{"name": "b", "value": 2}]})),
        ],
        json!({"list": [{"name": "b", "value": 2}]}),
        json!({"default/Apply": {"f:list": {"k:{\"name\":\"b\"}": {
            ".": {}, "f:name": {}, "f:value": {}}}}}),
    );
}

#[test]
fn multiple_appliers_keep_their_own_items_and_share_equal_values() {
    check(
        &nested_kind(),
        vec![
            Op::Apply("apply-one", json!({"list": [{"name": "a"}, {"name": "b"}]})),
            Op::Apply("apply-two", json!({"list": [{"name": "c"}]})),
            Op::Apply("apply-one", json!({"list": [{"name": "a"}]})),
        ],
        json!({"list": [{"name": "a"}, {"name": "c"}]}),
        json!({
            "apply-one/Apply": {"f:list": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}}}},
            "apply-two/Apply": {"f:list": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}}}}
        }),
    );
    let shared = json!({"f:list": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:value": {}}}});
    check(
        &nested_kind(),
        vec![
            Op::Apply("apply-one", json!({"list": [{"name": "a", "value": 0}]})),
            Op::Apply("apply-two", json!({"list": [{"name": "a", "value": 0}]})),
        ],
        json!({"list": [{"name": "a", "value": 0}]}),
        json!({"apply-one/Apply": shared, "apply-two/Apply": shared}),
    );
    check(
        &nested_kind(),
        vec![
            Op::Apply("apply-one", json!({"list": [{"name": "a", "value": 0}]})),
            Op::ApplyFails(
                "apply-two",
                json!({"list": [{"name": "a", "value": 1}]}),
                r#"Apply failed with 1 conflict: conflict with "apply-one": .list[name="a"].value"#,
            ),
        ],
        json!({"list": [{"name": "a", "value": 0}]}),
        json!({"apply-one/Apply": shared}),
    );
}

#[test]
fn removed_items_keep_the_sub_items_other_managers_own() {
    // structured-merge-diff's remove_one_keep_one_with_dangling_subitem.
    check(
        &nested_kind(),
        vec![
            Op::Apply(
                "apply-one",
                json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]}),
            ),
            Op::Apply(
                "apply-two",
                json!({"listOfLists": [{"name": "b", "value": ["d"]}]}),
            ),
            Op::Update(
                "controller",
                json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c", "d", "e"]}]}),
            ),
            Op::Apply("apply-one", json!({"listOfLists": [{"name": "a"}]})),
        ],
        json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["d", "e"]}]}),
        json!({
            "apply-one/Apply": {"f:listOfLists": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}}}},
            "apply-two/Apply": {"f:listOfLists": {"k:{\"name\":\"b\"}": {
                ".": {}, "f:name": {}, "f:value": {"v:\"d\"": {}}}}},
            "controller/Update": {"f:listOfLists": {"k:{\"name\":\"b\"}": {
                "f:value": {"v:\"e\"": {}}}}}
        }),
    );
}

#[test]
fn atomic_maps_conflict_as_a_whole_and_force_replaces_them() {
    check(
        &nested_kind(),
        vec![
            Op::Apply("apply-one", json!({"atomicMap": {"field1": "a"}})),
            Op::ApplyFails(
                "apply-two",
                json!({"atomicMap": {"field2": "b"}}),
                r#"Apply failed with 1 conflict: conflict with "apply-one": .atomicMap"#,
            ),
            Op::ForceApply("apply-two", json!({"atomicMap": {"field2": "b"}})),
        ],
        json!({"atomicMap": {"field2": "b"}}),
        json!({"apply-two/Apply": {"f:atomicMap": {}}}),
    );
}

#[test]
fn nested_structs_keep_what_an_updater_added() {
    for config in [json!({"struct": null}), json!({"struct": {}}), json!({})] {
        check(
            &nested_kind(),
            vec![
                Op::Apply("default", json!({"struct": {"name": "a"}})),
                Op::Update("controller", json!({"struct": {"name": "a", "value": 1}})),
                Op::Apply("default", config.clone()),
            ],
            json!({"struct": {"value": 1}}),
            if config == json!({}) {
                json!({"controller/Update": {"f:struct": {"f:value": {}}}})
            } else {
                json!({
                    "default/Apply": {"f:struct": {}},
                    "controller/Update": {"f:struct": {"f:value": {}}}
                })
            },
        );
    }
    // Removing everything leaves no entry; the emptied struct is not stored as `null`
    // (upstream's typed round trip drops it too).
    check(
        &nested_kind(),
        vec![
            Op::Apply("default", json!({"struct": {"name": "a", "value": 1}})),
            Op::Apply("default", json!({})),
        ],
        json!({}),
        json!({}),
    );
}

#[test]
fn nested_maps_are_owned_per_key() {
    check(
        &nested_kind(),
        vec![
            Op::Apply("one", json!({"mapOfMaps": {"a": {"x": "1"}}})),
            Op::Apply(
                "two",
                json!({"mapOfMaps": {"a": {"y": "2"}, "b": {"z": "3"}}}),
            ),
            Op::Apply("one", json!({"mapOfMaps": {"c": {}}})),
        ],
        json!({"mapOfMaps": {"a": {"y": "2"}, "b": {"z": "3"}, "c": {}}}),
        json!({
            "one/Apply": {"f:mapOfMaps": {"f:c": {}}},
            "two/Apply": {"f:mapOfMaps": {"f:a": {".": {}, "f:y": {}}, "f:b": {".": {}, "f:z": {}}}}
        }),
    );
}

#[test]
fn free_form_objects_merge_per_key_and_lists_in_them_are_atomic() {
    check(
        &nested_kind(),
        vec![
            Op::Apply("one", json!({"free": {"a": {"b": 1}, "l": [1, 2]}})),
            Op::Apply("two", json!({"free": {"a": {"c": 2}}})),
            Op::ApplyFails(
                "two",
                json!({"free": {"l": [3]}}),
                r#"Apply failed with 1 conflict: conflict with "one": .free.l"#,
            ),
        ],
        json!({"free": {"a": {"b": 1, "c": 2}, "l": [1, 2]}}),
        json!({
            "one/Apply": {"f:free": {"f:a": {".": {}, "f:b": {}}, "f:l": {}}},
            "two/Apply": {"f:free": {"f:a": {".": {}, "f:c": {}}}}
        }),
    );
}

#[test]
fn list_map_keys_take_defaults_from_the_schema() {
    let key = "k:{\"port\":80,\"protocol\":\"TCP\"}";
    check(
        &nested_kind(),
        vec![
            Op::Apply(
                "apply-one",
                json!({"containerPorts": [{"port": 80, "protocol": "TCP", "name": "foo"}]}),
            ),
            Op::ApplyFails(
                "apply-two",
                json!({"containerPorts": [{"port": 80, "name": "bar"}]}),
                r#"Apply failed with 1 conflict: conflict with "apply-one": .containerPorts[port=80,protocol="TCP"].name"#,
            ),
        ],
        json!({"containerPorts": [{"port": 80, "protocol": "TCP", "name": "foo"}]}),
        json!({"apply-one/Apply": {"f:containerPorts": {key: {
            ".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}}}}),
    );
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    check(
        &nested_kind(),
        vec![
            Op::Apply("b-applier", json!({"struct": {"name": "x"}})),
            Op::Update(
                "a-updater",
                json!({"struct": {"name": "x", "value": 1}, "list": [{"name": "k", "value": 1}]}),
            ),
            Op::ApplyFails(
                "c",
                json!({"struct": {"name": "y", "value": 2}, "list": [{"name": "k", "value": 2}]}),
                "Apply failed with 3 conflicts: conflicts with \"a-updater\" using v1:\n\
                 - .list[name=\"k\"].value\n\
                 - .struct.value\n\
                 conflicts with \"b-applier\":\n\
                 - .struct.name",
            ),
        ],
        json!({"struct": {"name": "x", "value": 1}, "list": [{"name": "k", "value": 1}]}),
        json!({
            "b-applier/Apply": {"f:struct": {"f:name": {}}},
            "a-updater/Update": {
                "f:list": {".": {}, "k:{\"name\":\"k\"}": {".": {}, "f:name": {}, "f:value": {}}},
                "f:struct": {"f:value": {}}
            }
        }),
    );
}

// ---------------------------------------------------------------------------------------
// Deployments, as kubectl and controllers write them.

fn deployment_kind() -> Kind {
    let string = json!({"scalar": "string"});
    let numeric = json!({"scalar": "numeric"});
    let strings = json!({"map": {"elementType": {"scalar": "string"}}});
    let types = json!([
        {"name": "Deployment", "map": {"fields": [
            {"name": "apiVersion", "type": string},
            {"name": "kind", "type": string},
            {"name": "metadata", "type": {"namedType": "ObjectMeta"}, "zero": {}},
            {"name": "spec", "type": {"namedType": "DeploymentSpec"}, "zero": {}},
            {"name": "status", "type": {"namedType": "DeploymentStatus"}, "zero": {}}
        ]}},
        {"name": "ObjectMeta", "map": {"fields": [
            {"name": "name", "type": string},
            {"name": "namespace", "type": string},
            {"name": "uid", "type": string},
            {"name": "resourceVersion", "type": string},
            {"name": "generation", "type": numeric},
            {"name": "creationTimestamp", "type": {"scalar": "untyped"}, "zero": null},
            {"name": "labels", "type": strings},
            {"name": "annotations", "type": strings},
            {"name": "finalizers", "type": {"list": {
                "elementType": string, "elementRelationship": "associative"}}},
            {"name": "managedFields", "type": {"list": {
                "elementType": {"namedType": "ManagedFieldsEntry"}, "elementRelationship": "atomic"}}}
        ]}},
        {"name": "ManagedFieldsEntry", "map": {"fields": [
            {"name": "manager", "type": string},
            {"name": "operation", "type": string},
            {"name": "apiVersion", "type": string},
            {"name": "time", "type": {"scalar": "untyped"}},
            {"name": "fieldsType", "type": string},
            {"name": "fieldsV1", "type": {"namedType": "__untyped_deduced_"}},
            {"name": "subresource", "type": string}
        ]}},
        {"name": "DeploymentSpec", "map": {"fields": [
            {"name": "replicas", "type": numeric},
            {"name": "minReadySeconds", "type": numeric},
            {"name": "revisionHistoryLimit", "type": numeric},
            {"name": "progressDeadlineSeconds", "type": numeric},
            {"name": "paused", "type": {"scalar": "boolean"}},
            {"name": "selector", "type": {"namedType": "LabelSelector"}, "zero": null},
            {"name": "template", "type": {"namedType": "PodTemplateSpec"}, "zero": {}},
            {"name": "strategy", "type": {"namedType": "DeploymentStrategy"}, "zero": {}}
        ]}},
        {"name": "LabelSelector", "map": {"elementRelationship": "atomic", "fields": [
            {"name": "matchLabels", "type": strings},
            {"name": "matchExpressions", "type": {"list": {
                "elementType": {"namedType": "__untyped_atomic_"}, "elementRelationship": "atomic"}}}
        ]}},
        {"name": "DeploymentStrategy", "map": {"fields": [
            {"name": "type", "type": string},
            {"name": "rollingUpdate", "type": {"namedType": "RollingUpdateDeployment"}}
        ]}},
        {"name": "RollingUpdateDeployment", "map": {"fields": [
            {"name": "maxSurge", "type": {"scalar": "untyped"}},
            {"name": "maxUnavailable", "type": {"scalar": "untyped"}}
        ]}},
        {"name": "PodTemplateSpec", "map": {"fields": [
            {"name": "metadata", "type": {"namedType": "ObjectMeta"}, "zero": {}},
            {"name": "spec", "type": {"namedType": "PodSpec"}, "zero": {}}
        ]}},
        {"name": "PodSpec", "map": {"fields": [
            {"name": "containers", "zero": null, "type": {"list": {
                "elementType": {"namedType": "Container"},
                "elementRelationship": "associative", "keys": ["name"]}}},
            {"name": "restartPolicy", "type": string},
            {"name": "dnsPolicy", "type": string},
            {"name": "schedulerName", "type": string},
            {"name": "terminationGracePeriodSeconds", "type": numeric},
            {"name": "securityContext", "type": {"map": {"fields": [
                {"name": "runAsUser", "type": numeric}]}}},
            {"name": "nodeSelector", "type": {"map": {
                "elementType": string, "elementRelationship": "atomic"}}}
        ]}},
        {"name": "Container", "map": {"fields": [
            {"name": "name", "type": string, "zero": ""},
            {"name": "image", "type": string},
            {"name": "imagePullPolicy", "type": string},
            {"name": "terminationMessagePath", "type": string},
            {"name": "terminationMessagePolicy", "type": string},
            {"name": "args", "type": {"list": {"elementType": string, "elementRelationship": "atomic"}}},
            {"name": "ports", "type": {"list": {
                "elementType": {"namedType": "ContainerPort"},
                "elementRelationship": "associative", "keys": ["containerPort", "protocol"]}}},
            {"name": "env", "type": {"list": {
                "elementType": {"namedType": "EnvVar"},
                "elementRelationship": "associative", "keys": ["name"]}}},
            {"name": "resources", "type": {"namedType": "ResourceRequirements"}, "zero": {}}
        ]}},
        {"name": "ContainerPort", "map": {"fields": [
            {"name": "containerPort", "type": numeric},
            {"name": "protocol", "type": string, "default": "TCP"},
            {"name": "name", "type": string}
        ]}},
        {"name": "EnvVar", "map": {"fields": [
            {"name": "name", "type": string},
            {"name": "value", "type": string}
        ]}},
        {"name": "ResourceRequirements", "map": {"fields": [
            {"name": "limits", "type": {"map": {"elementType": {"scalar": "untyped"}}}},
            {"name": "requests", "type": {"map": {"elementType": {"scalar": "untyped"}}}}
        ]}},
        {"name": "DeploymentStatus", "map": {"fields": [
            {"name": "replicas", "type": numeric},
            {"name": "readyReplicas", "type": numeric},
            {"name": "observedGeneration", "type": numeric}
        ]}},
        {"name": "Scale", "map": {"fields": [
            {"name": "apiVersion", "type": string},
            {"name": "kind", "type": string},
            {"name": "metadata", "type": {"namedType": "ObjectMeta"}, "zero": {}},
            {"name": "spec", "type": {"map": {"fields": [
                {"name": "replicas", "type": numeric}]}}, "zero": {}},
            {"name": "status", "type": {"map": {"fields": [
                {"name": "replicas", "type": numeric},
                {"name": "selector", "type": string}]}}, "zero": {}}
        ]}}
    ]);
    Kind {
        schema: SchemaTree::from_smd(&json!({ "types": types })).expect("valid schema"),
        root: "Deployment",
        api_version: "apps/v1",
        kind: "Deployment",
        reset: FieldSet::from_paths(&[Path::fields(&["status"])]),
    }
}

/// `kubectl create deployment nginx --image=nginx` after the server's defaulting.
fn created_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "creationTimestamp": null,
                     "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "Always"
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {},
                    "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

/// What the API server adds when it stores a created object.
fn stored(mut obj: Value) -> Value {
    if let Ok(meta) = crate::meta::metadata_mut(&mut obj) {
        meta.insert("uid".to_owned(), json!("0b5d9c1e-uid"));
        meta.insert("resourceVersion".to_owned(), json!("1"));
        meta.insert(
            "creationTimestamp".to_owned(),
            json!("2023-11-14T22:13:20Z"),
        );
    }
    obj
}

/// The configuration `kubectl apply --server-side` sends for an nginx deployment.
fn applied_deployment(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}
            }
        }
    })
}

#[test]
fn kubectl_create_deployment_records_upstreams_fields_v1_byte_for_byte() {
    let kind = deployment_kind();
    let obj = kind.update(None, "kubectl-create", created_deployment(), "", at(0));
    let (entry, fields) = entry_of(&obj, "kubectl-create");
    // Captured from a real API server (kubernetes v1.2x) for the same object.
    assert_eq!(
        fields,
        r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}"#
    );
    let mut entry = entry;
    if let Some(map) = entry.as_object_mut() {
        map.remove("fieldsV1");
    }
    assert_eq!(
        entry,
        json!({"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1",
               "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1"})
    );
    // The object itself is stored unchanged.
    assert_eq!(strip(&obj), strip(&created_deployment()));
}

#[test]
fn a_second_applier_conflicts_on_replicas_until_it_forces() {
    let kind = deployment_kind();
    let live = stored(
        kind.apply(None, "manager-a", applied_deployment(3), false, at(0))
            .expect("create by apply"),
    );
    let (_, fields) = entry_of(&live, "manager-a");
    assert_eq!(
        fields,
        r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#
    );

    let scale_to_5 = json!({"metadata": {"name": "nginx", "namespace": "default"},
                            "spec": {"replicas": 5}});
    let err = kind
        .apply(Some(&live), "manager-b", scale_to_5.clone(), false, at(1))
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "manager-a": .spec.replicas"#
    );
    assert_eq!(
        err.to_status().to_json(),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Apply failed with 1 conflict: conflict with \"manager-a\": .spec.replicas",
            "reason": "Conflict",
            "details": {"causes": [{"reason": "FieldManagerConflict",
                                    "message": "conflict with \"manager-a\"",
                                    "field": ".spec.replicas"}]},
            "code": 409
        })
    );

    // The same value is no conflict: both own it.
    let same = kind
        .apply(
            Some(&live),
            "manager-b",
            json!({"spec": {"replicas": 3}}),
            false,
            at(1),
        )
        .expect("equal values are shared");
    assert_eq!(
        entry_of(&same, "manager-b").1,
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    assert!(
        entry_of(&same, "manager-a")
            .1
            .contains(r#""f:replicas":{}"#)
    );

    let forced = kind
        .apply(Some(&live), "manager-b", scale_to_5, true, at(2))
        .expect("force takes the field");
    assert_eq!(forced.pointer("/spec/replicas"), Some(&json!(5)));
    assert_eq!(
        entry_of(&forced, "manager-b").1,
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    assert!(!entry_of(&forced, "manager-a").1.contains("f:replicas"));
    // Appliers sort before updaters, then by time.
    let managers: Vec<Value> = entries(&forced)
        .iter()
        .map(|e| e.get("manager").cloned().unwrap_or_default())
        .collect();
    assert_eq!(managers, [json!("manager-a"), json!("manager-b")]);
}

#[test]
fn conflicts_with_client_side_apply_name_its_version() {
    let kind = deployment_kind();
    let mut created = created_deployment();
    created["spec"]["replicas"] = json!(2);
    let live = stored(kind.update(None, "kubectl-client-side-apply", created, "", at(0)));
    let err = kind
        .apply(
            Some(&live),
            "manager-b",
            applied_deployment(4),
            false,
            at(1),
        )
        .expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let causes = err
        .to_status()
        .details
        .map(|d| d.causes)
        .unwrap_or_default();
    assert_eq!(causes.len(), 2);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(
        causes[0].message,
        r#"conflict with "kubectl-client-side-apply" using apps/v1"#
    );
    assert_eq!(causes[0].field, ".spec.replicas");
}

#[test]
fn reapplying_without_a_label_removes_it_unless_someone_else_owns_it() {
    let kind = deployment_kind();
    let mut config = applied_deployment(3);
    config["metadata"]["labels"]["tier"] = json!("web");
    let live = stored(
        kind.apply(None, "manager-a", config, false, at(0))
            .expect("create"),
    );

    let reapplied = kind
        .apply(
            Some(&live),
            "manager-a",
            applied_deployment(3),
            false,
            at(1),
        )
        .expect("re-apply");
    assert_eq!(
        reapplied.pointer("/metadata/labels"),
        Some(&json!({"app": "nginx"}))
    );

    // Dropping every label leaves no `labels: null` behind.
    let mut bare = applied_deployment(3);
    if let Some(meta) = bare["metadata"].as_object_mut() {
        meta.remove("labels");
    }
    let unlabelled = kind
        .apply(Some(&live), "manager-a", bare, false, at(1))
        .expect("re-apply");
    assert_eq!(unlabelled.pointer("/metadata/labels"), None);

    // A label someone else set too stays.
    let shared = kind
        .apply(
            Some(&live),
            "labeller",
            json!({"metadata": {"name": "nginx", "labels": {"tier": "web"}}}),
            false,
            at(1),
        )
        .expect("shared label");
    let kept = kind
        .apply(
            Some(&shared),
            "manager-a",
            applied_deployment(3),
            false,
            at(2),
        )
        .expect("re-apply");
    assert_eq!(
        kept.pointer("/metadata/labels"),
        Some(&json!({"app": "nginx", "tier": "web"}))
    );
}

#[test]
fn kubectl_scale_then_reapply_conflicts_with_the_scale_subresource() {
    let kind = deployment_kind();
    let live = stored(
        kind.apply(None, "manager-a", applied_deployment(3), false, at(0))
            .expect("create"),
    );

    // `kubectl scale --replicas=5` writes deployments/scale.
    let mappings = BTreeMap::from([(
        "apps/v1".to_owned(),
        Some(Path::fields(&["spec", "replicas"])),
    )]);
    let handler = ScaleHandler::new(live.pointer("/metadata/managedFields"), "apps/v1", mappings);
    let scale_entries = handler.to_subresource().expect("decodable");
    assert_eq!(
        scale_entries,
        Some(json!([{"manager": "manager-a", "operation": "Apply",
                     "apiVersion": "autoscaling/v1", "time": "2023-11-14T22:13:20Z",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]))
    );
    let old_scale = json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "nginx", "namespace": "default", "uid": "0b5d9c1e-uid",
                     "managedFields": scale_entries},
        "spec": {"replicas": 3}, "status": {"replicas": 3, "selector": "app=nginx"}
    });
    let mut new_scale = old_scale.clone();
    new_scale["spec"]["replicas"] = json!(5);
    let scale_schema = kind.schema.root("Scale").expect("Scale type");
    let no_reset = FieldSet::new();
    let scaled = update(
        Some(&old_scale),
        &new_scale,
        &UpdateOptions {
            manager: "kubectl-scale",
            api_version: "autoscaling/v1",
            subresource: "scale",
            reset_fields: &no_reset,
            now: at(1),
        },
        &scale_schema,
    );
    let parent_entries = handler
        .to_parent(scaled.pointer("/metadata/managedFields"))
        .expect("decodable");
    let mut live = live;
    live["spec"]["replicas"] = json!(5);
    live["metadata"]["managedFields"] = parent_entries.unwrap_or(Value::Null);
    assert_eq!(
        owners(&live)["kubectl-scale/Update/scale"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(!entry_of(&live, "manager-a").1.contains("f:replicas"));

    let err = kind
        .apply(
            Some(&live),
            "manager-a",
            applied_deployment(3),
            false,
            at(2),
        )
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-scale" with subresource "scale" using apps/v1: .spec.replicas"#
    );

    // A main-resource edit conflicts the same way.
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(7);
    let edited = kind.update(Some(&live), "kubectl-edit", edited, "", at(3));
    let err = kind
        .apply(
            Some(&edited),
            "manager-a",
            applied_deployment(3),
            false,
            at(4),
        )
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas"#
    );
}

#[test]
fn updates_take_changed_fields_from_appliers_and_drop_emptied_entries() {
    let kind = deployment_kind();
    let live = stored(
        kind.apply(
            None,
            "manager-a",
            json!({"metadata": {"name": "nginx"}, "spec": {"replicas": 3}}),
            false,
            at(0),
        )
        .expect("create"),
    );
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(4);
    let edited = kind.update(Some(&live), "kubectl-edit", edited, "", at(1));
    assert_eq!(
        owners(&edited),
        json!({"kubectl-edit/Update": {"f:spec": {"f:replicas": {}}}})
    );
    // An update that changes nothing records nothing and keeps times.
    let again = kind.update(Some(&edited), "kubectl-edit", edited.clone(), "", at(9));
    assert_eq!(again, edited);
}

#[test]
fn status_writes_record_only_status_fields_under_the_subresource() {
    let kind = deployment_kind();
    let live = stored(kind.update(None, "kubectl-create", created_deployment(), "", at(0)));
    let mut new = live.clone();
    new["status"] = json!({"replicas": 1, "observedGeneration": 1});
    new["spec"]["replicas"] = json!(9);
    // A client cannot rewrite ownership through a subresource.
    new["metadata"]["managedFields"] = json!([]);
    let status_kind = Kind {
        reset: FieldSet::from_paths(&[
            Path::fields(&["spec"]),
            Path::fields(&["metadata", "labels"]),
        ]),
        ..deployment_kind()
    };
    let written = status_kind.update(Some(&live), "kube-controller-manager", new, "status", at(1));
    let entries = entries(&written);
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[1],
        json!({"manager": "kube-controller-manager", "operation": "Update",
               "apiVersion": "apps/v1", "time": "2023-11-14T22:13:21Z",
               "fieldsType": "FieldsV1",
               "fieldsV1": {"f:status": {"f:observedGeneration": {}, "f:replicas": {}}},
               "subresource": "status"})
    );
}

#[test]
fn clients_can_reset_or_rewrite_managed_fields_on_update() {
    let kind = deployment_kind();
    let live = stored(kind.update(None, "kubectl-create", created_deployment(), "", at(0)));

    for reset in [json!([]), json!([{}])] {
        let mut new = live.clone();
        new["metadata"]["managedFields"] = reset;
        let written = kind.update(Some(&live), "kubectl-edit", new, "", at(1));
        assert_eq!(written.pointer("/metadata/managedFields"), None);
        // Untracked objects stay untracked on update.
        let mut next = written.clone();
        next["spec"]["replicas"] = json!(2);
        let next = kind.update(Some(&written), "kubectl-edit", next, "", at(2));
        assert_eq!(next.pointer("/metadata/managedFields"), None);
    }

    // Valid managedFields from the client replace the live ones.
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([{"manager": "someone", "operation": "Update",
        "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:paused": {}}}}]);
    let written = kind.update(Some(&live), "kubectl-edit", new, "", at(1));
    assert_eq!(
        owners(&written),
        json!({"someone/Update": {"f:spec": {"f:paused": {}}}})
    );

    // Invalid ones are ignored: the live ones carry over.
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([{"manager": "someone", "operation": "Patch",
        "apiVersion": "apps/v1", "fieldsType": "FieldsV1"}]);
    let written = kind.update(Some(&live), "kubectl-edit", new, "", at(1));
    assert_eq!(
        written.pointer("/metadata/managedFields"),
        live.pointer("/metadata/managedFields")
    );
}

#[test]
fn applying_to_an_untracked_object_hands_existing_fields_to_before_first_apply() {
    let kind = deployment_kind();
    let mut live = stored(created_deployment());
    live["spec"]["replicas"] = json!(2);
    let err = kind
        .apply(
            Some(&live),
            "manager-a",
            applied_deployment(3),
            false,
            at(1),
        )
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"before-first-apply\" using apps/v1:\n\
         - .spec.replicas\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let forced = kind
        .apply(Some(&live), "manager-a", applied_deployment(3), true, at(1))
        .expect("forced");
    let (_, before) = entry_of(&forced, "before-first-apply");
    assert!(before.contains(r#""f:dnsPolicy":{}"#) && !before.contains("f:replicas"));
}

#[test]
fn kubectl_server_side_apply_takes_over_from_client_side_apply() {
    let kind = deployment_kind();
    let mut config = applied_deployment(2);
    let last_applied = super::gojson::value(&config, super::gojson::Escapes::Std) + "\n";
    config["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: last_applied});
    let live = stored(kind.update(None, "kubectl-client-side-apply", config, "", at(0)));

    // The same manifest with more replicas: the fields kubectl last applied are its own.
    let upgraded = kind
        .apply(Some(&live), "kubectl", applied_deployment(4), false, at(1))
        .expect("client-side apply upgrades without conflicts");
    assert_eq!(upgraded.pointer("/spec/replicas"), Some(&json!(4)));
    assert!(entry_of(&upgraded, "kubectl").1.contains("f:replicas"));
    let annotation = upgraded
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(annotation.contains(r#""replicas":4"#) && annotation.ends_with('\n'));

    // Another manager is still conflicted with.
    let err = kind
        .apply(Some(&live), "other", applied_deployment(4), false, at(1))
        .expect_err("conflict");
    assert!(err.to_string().contains("kubectl-client-side-apply"));

    // A field changed since the last client-side apply is not kubectl's to take.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(7);
    let scaled = kind.update(Some(&live), "kubectl-scale", scaled, "", at(2));
    let err = kind
        .apply(
            Some(&scaled),
            "kubectl",
            applied_deployment(4),
            false,
            at(3),
        )
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas"#
    );
}

#[test]
fn no_op_applies_keep_times_and_new_managers_get_entries_without_one() {
    let kind = deployment_kind();
    let live = stored(
        kind.apply(None, "manager-a", applied_deployment(3), false, at(0))
            .expect("create"),
    );
    let again = kind
        .apply(
            Some(&live),
            "manager-a",
            applied_deployment(3),
            false,
            at(5),
        )
        .expect("no-op");
    assert_eq!(again, live);
    let other = kind
        .apply(
            Some(&live),
            "manager-b",
            json!({"spec": {"replicas": 3}}),
            false,
            at(6),
        )
        .expect("shared");
    let (entry, _) = entry_of(&other, "manager-b");
    assert_eq!(entry.get("time"), None);
    assert_eq!(strip(&other), strip(&live));
}

#[test]
fn apply_rejects_bad_requests_and_objects_outside_the_schema() {
    let kind = deployment_kind();
    let check_err = |config: Value, want: &str, code: i32| {
        let err = kind
            .apply(None, "m", config, false, at(0))
            .expect_err("rejected");
        assert_eq!(err.to_string(), want);
        assert_eq!(err.to_status().code, code, "{want}");
    };
    check_err(
        json!({"kind": "ReplicaSet", "metadata": {"name": "x"}}),
        "invalid object type: apps/v1, Kind=ReplicaSet",
        400,
    );
    check_err(
        json!({"metadata": {"name": "x", "managedFields": []}}),
        "metadata.managedFields must be nil",
        400,
    );
    check_err(
        json!({"metadata": {"name": "x", "namespace": "ns"}, "spec": {"replicaz": 1}}),
        "failed to create typed patch object (ns/x; apps/v1, Kind=Deployment): .spec.replicaz: field not declared in schema",
        500,
    );
    check_err(
        json!({"metadata": {"name": "x"}, "spec": {"replicas": "3", "template": {"spec": {
            "containers": [{"name": "a"}, {"name": "a"}]}}}}),
        "failed to create typed patch object (/x; apps/v1, Kind=Deployment): errors:\n  \
         .spec.replicas: expected numeric (int or float), got string\n  \
         .spec.template.spec.containers: duplicate entries for key [name=\"a\"]",
        500,
    );
    check_err(
        json!({"metadata": {"name": "x"}, "spec": {"template": {"spec": {
            "containers": [{"name": "a", "ports": [{"protocol": "UDP"}]}]}}}}),
        "failed to create typed patch object (/x; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"a\"].ports: element 0: associative list with keys has an element that omits key field \"containerPort\" (and doesn't have default value)",
        500,
    );
}

#[test]
fn old_update_entries_are_merged_into_ancient_changes() {
    let kind = deployment_kind();
    let mut live = stored(kind.update(None, "creator", created_deployment(), "", at(0)));
    for i in 0..11 {
        let mut next = live.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("x");
        let manager = format!("writer-{i:02}");
        live = update(
            Some(&live),
            &next,
            &UpdateOptions {
                manager: &manager,
                api_version: "apps/v1",
                subresource: "",
                reset_fields: &kind.reset,
                now: at(1 + i),
            },
            &kind.node(),
        );
    }
    let managers: Vec<String> = entries(&live)
        .iter()
        .map(|e| {
            e.get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(managers.len(), 10);
    // Twelve updaters: the three oldest (creator, writer-00, writer-01) became one bucket,
    // timed as the newest of them.
    assert_eq!(managers[0], "ancient-changes");
    let (bucket, fields) = entry_of(&live, "ancient-changes");
    assert_eq!(bucket.get("time"), Some(&json!("2023-11-14T22:13:22Z")));
    assert!(fields.contains(r#""f:l0":{}"#) && fields.contains(r#""f:replicas":{}"#));
}

#[test]
fn managers_default_from_the_user_agent() {
    assert_eq!(
        manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"),
        "kubectl"
    );
    assert_eq!(
        manager_from_user_agent("kube-controller-manager/v1.33.0"),
        "kube-controller-manager"
    );
    assert_eq!(manager_from_user_agent("a\u{7}b"), "ab");
    assert_eq!(
        manager_from_user_agent(&"x".repeat(200)).len(),
        FIELD_MANAGER_MAX_LENGTH
    );
}

#[test]
fn large_lists_apply_and_update_in_reasonable_time() {
    // Regression guard against quadratic walks: thousands of list-map items, two managers.
    let kind = deployment_kind();
    let env = |n: usize, value: &str| -> Value {
        Value::Array(
            (0..n)
                .map(|i| json!({"name": format!("VAR_{i:05}"), "value": value}))
                .collect(),
        )
    };
    let config = |value: &str| {
        json!({"metadata": {"name": "big"}, "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": env(3000, value)}]}}}})
    };
    let live = stored(
        kind.apply(None, "manager-a", config("a"), false, at(0))
            .expect("create"),
    );
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["env"][1500]["value"] = json!("edited");
    let edited = kind.update(Some(&live), "kubectl-edit", edited, "", at(1));
    let err = kind
        .apply(Some(&edited), "manager-a", config("a"), false, at(2))
        .expect_err("conflict on the edited variable");
    assert!(err.to_string().ends_with(r#".env[name="VAR_01500"].value"#));
    let applied = kind
        .apply(Some(&edited), "manager-a", config("b"), true, at(3))
        .expect("forced");
    assert_eq!(
        applied.pointer("/spec/template/spec/containers/0/env/2999/value"),
        Some(&json!("b"))
    );
}
