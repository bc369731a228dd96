//! Protobuf request bodies read as the JSON the same client would send: bodies captured from
//! the real kubectl against their `--dry-run=client -o json` twins, bodies built with the
//! `k8s-pb` prost structs, malformed bodies, and random bytes.

use std::fs;
use std::path::PathBuf;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authorization::v1 as authorization;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::events::v1 as events;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use prost::Message;
use serde_json::{Value, json};
use tug_api::protobuf::{self, ProtobufError};

fn fixture(name: &str) -> PathBuf {
    // Run time first: clones sharing one target directory may reuse a test binary built in
    // another clone, whose compile-time path is gone.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/fixtures/protobuf")
        .join(name)
}

/// `k8s\0` + `runtime.Unknown`, as client-go writes it (empty encoding and content type
/// included).
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = protobuf::MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// Decodes `body` and compares the object with `expected`, printing both on a difference.
fn check(body: &[u8], expected: &Value) {
    let (api_version, kind, object) = protobuf::decode(body).expect("decodes");
    assert_eq!(Some(api_version.as_str()), expected["apiVersion"].as_str());
    assert_eq!(Some(kind.as_str()), expected["kind"].as_str());
    assert!(
        &object == expected,
        "decoded:\n{}\nexpected:\n{}",
        serde_json::to_string_pretty(&object).unwrap_or_default(),
        serde_json::to_string_pretty(expected).unwrap_or_default()
    );
}

fn s(value: &str) -> Option<String> {
    Some(value.to_string())
}

fn string_map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every body kubectl 1.32 sent for these generator commands (captured with a throwaway
/// server) reads exactly as the JSON `--dry-run=client -o json` prints for the same command.
#[test]
fn kubectl_protobuf_bodies_read_as_kubectl_json() {
    let mut names: Vec<String> = fs::read_dir(fixture(""))
        .expect("fixtures directory")
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".pb"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 15, "fixtures: {names:?}");
    for name in names {
        let body = fs::read(fixture(&format!("{name}.pb"))).expect("body");
        let expected: Value = serde_json::from_slice(
            &fs::read(fixture(&format!("{name}.json"))).expect("expected JSON"),
        )
        .expect("valid JSON");
        eprintln!("fixture {name}");
        check(&body, &expected);
    }
}

#[test]
fn create_deployment_body_keeps_status_strategy_and_null_timestamps() {
    let body = fs::read(fixture("deployment.pb")).expect("body");
    let (_, _, object) = protobuf::decode(&body).expect("decodes");
    // Go writes `generateName: ""`, `minReadySeconds: 0` and a zero status to protobuf;
    // its JSON has none of them.
    assert_eq!(object["status"], json!({}));
    assert_eq!(object["spec"]["strategy"], json!({}));
    assert_eq!(object["metadata"]["creationTimestamp"], Value::Null);
    assert!(object["metadata"].get("generateName").is_none());
    assert!(object["spec"].get("minReadySeconds").is_none());
}

#[test]
fn zero_replicas_survive_because_replicas_is_a_pointer() {
    let body = fs::read(fixture("deployment-zero-replicas.pb")).expect("body");
    let (_, _, object) = protobuf::decode(&body).expect("decodes");
    assert_eq!(object["spec"]["replicas"], json!(0));
}

/// The Go wire form of an `ObjectMeta` with only a name: every value field present.
fn go_object_meta(name: &str, namespace: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

#[test]
fn secret_bytes_become_base64() {
    let secret = core::Secret {
        metadata: Some(go_object_meta("creds", "")),
        data: [
            ("blob".to_string(), vec![0u8, 1, 0xfe, 0xff]),
            ("empty".to_string(), Vec::new()),
        ]
        .into_iter()
        .collect(),
        string_data: Default::default(),
        r#type: s("Opaque"),
        immutable: Some(false),
    };
    check(
        &envelope("v1", "Secret", secret.encode_to_vec()),
        &json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "creds", "creationTimestamp": null},
            // `immutable` is a pointer: an explicit false stays.
            "immutable": false,
            "data": {"blob": "AAH+/w==", "empty": ""},
            "type": "Opaque"
        }),
    );
}

fn service_port(name: &str, port: i32, target: IntOrString) -> core::ServicePort {
    core::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        app_protocol: None,
        port: Some(port),
        target_port: Some(target),
        node_port: Some(0),
    }
}

#[test]
fn service_target_ports_are_numbers_or_names() {
    let int = IntOrString {
        r#type: Some(0),
        int_val: Some(8080),
        str_val: s(""),
    };
    let named = IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s("http"),
    };
    let service = core::Service {
        metadata: Some(go_object_meta("web", "default")),
        spec: Some(core::ServiceSpec {
            ports: vec![
                service_port("a", 80, int),
                service_port("b", 81, named),
                // A target port Go never set: its zero IntOrString is the number 0.
                core::ServicePort {
                    target_port: None,
                    ..service_port("c", 82, IntOrString::default())
                },
            ],
            selector: string_map(&[("app", "web")]),
            cluster_ip: s(""),
            r#type: s("ClusterIP"),
            session_affinity: s(""),
            load_balancer_ip: s(""),
            external_name: s(""),
            external_traffic_policy: s(""),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            conditions: Vec::new(),
        }),
    };
    check(
        &envelope("v1", "Service", service.encode_to_vec()),
        &json!({
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
            "spec": {
                "ports": [
                    {"name": "a", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "b", "protocol": "TCP", "port": 81, "targetPort": "http"},
                    {"name": "c", "protocol": "TCP", "port": 82, "targetPort": 0}
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP"
            },
            "status": {"loadBalancer": {}}
        }),
    );
}

fn quantity(value: &str) -> Quantity {
    Quantity { string: s(value) }
}

#[test]
fn pod_quantities_times_and_pointers_read_like_json() {
    let container = core::Container {
        name: s("app"),
        image: s("nginx"),
        resources: Some(core::ResourceRequirements {
            limits: [("memory".to_string(), quantity("128Mi"))]
                .into_iter()
                .collect(),
            requests: [
                ("cpu".to_string(), quantity("100m")),
                ("memory".to_string(), Quantity { string: None }),
            ]
            .into_iter()
            .collect(),
            claims: Vec::new(),
        }),
        termination_message_path: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        tty: Some(false),
        security_context: Some(core::SecurityContext {
            run_as_user: Some(0),
            allow_privilege_escalation: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut metadata = go_object_meta("p", "default");
    metadata.creation_timestamp = Some(meta::Time {
        seconds: Some(1_704_164_645),
        nanos: Some(0),
    });
    metadata.deletion_grace_period_seconds = Some(0);
    let pod = core::Pod {
        metadata: Some(metadata),
        spec: Some(core::PodSpec {
            containers: vec![container],
            restart_policy: s(""),
            termination_grace_period_seconds: Some(30),
            active_deadline_seconds: None,
            automount_service_account_token: Some(false),
            host_network: Some(false),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            start_time: Some(meta::Time {
                seconds: Some(0),
                nanos: Some(0),
            }),
            ..Default::default()
        }),
    };
    check(
        &envelope("v1", "Pod", pod.encode_to_vec()),
        &json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": "p",
                "namespace": "default",
                "creationTimestamp": "2024-01-02T03:04:05Z",
                "deletionGracePeriodSeconds": 0
            },
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "nginx",
                    "resources": {
                        "limits": {"memory": "128Mi"},
                        "requests": {"cpu": "100m", "memory": "0"}
                    },
                    "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false}
                }],
                "terminationGracePeriodSeconds": 30,
                "automountServiceAccountToken": false
            },
            "status": {"startTime": "1970-01-01T00:00:00Z"}
        }),
    );
}

#[test]
fn config_maps_keep_text_and_binary_data() {
    let config_map = core::ConfigMap {
        metadata: Some(go_object_meta("cm", "")),
        immutable: None,
        data: string_map(&[("k", "v"), ("empty", "")]),
        binary_data: [("b".to_string(), b"hi".to_vec())].into_iter().collect(),
    };
    check(
        &envelope("v1", "ConfigMap", config_map.encode_to_vec()),
        &json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "cm", "creationTimestamp": null},
            "data": {"k": "v", "empty": ""},
            "binaryData": {"b": "aGk="}
        }),
    );
}

#[test]
fn job_completions_zero_is_kept() {
    let job = batch::Job {
        metadata: Some(go_object_meta("j", "")),
        spec: Some(batch::JobSpec {
            parallelism: Some(2),
            completions: Some(0),
            backoff_limit: None,
            template: Some(core::PodTemplateSpec {
                metadata: Some(go_object_meta("", "")),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s("c"),
                        image: s("busybox"),
                        ..Default::default()
                    }],
                    restart_policy: s("Never"),
                    ..Default::default()
                }),
            }),
            suspend: Some(false),
            ..Default::default()
        }),
        status: Some(batch::JobStatus {
            active: Some(0),
            succeeded: Some(0),
            failed: Some(0),
            ready: None,
            ..Default::default()
        }),
    };
    check(
        &envelope("batch/v1", "Job", job.encode_to_vec()),
        &json!({
            "kind": "Job",
            "apiVersion": "batch/v1",
            "metadata": {"name": "j", "creationTimestamp": null},
            "spec": {
                "parallelism": 2,
                "completions": 0,
                "template": {
                    "metadata": {"creationTimestamp": null},
                    "spec": {
                        "containers": [{"name": "c", "image": "busybox", "resources": {}}],
                        "restartPolicy": "Never"
                    }
                },
                "suspend": false
            },
            "status": {}
        }),
    );
}

#[test]
fn managed_fields_micro_times_and_raw_extensions_embed_json() {
    let mut metadata = go_object_meta("rev", "default");
    metadata.managed_fields = vec![meta::ManagedFieldsEntry {
        manager: s("kubectl"),
        operation: s("Update"),
        api_version: s("apps/v1"),
        time: Some(meta::Time {
            seconds: Some(1_704_164_645),
            nanos: Some(5),
        }),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(br#"{"f:data":{}}"#.to_vec()),
        }),
        subresource: s(""),
    }];
    let inner = apps::ControllerRevision {
        metadata: Some(go_object_meta("inner", "")),
        data: Some(RawExtension {
            raw: Some(br#"{"a":1}"#.to_vec()),
        }),
        revision: Some(1),
    };
    let revision = apps::ControllerRevision {
        metadata: Some(metadata),
        // An object embedded in protobuf is decoded too.
        data: Some(RawExtension {
            raw: Some(envelope(
                "apps/v1",
                "ControllerRevision",
                inner.encode_to_vec(),
            )),
        }),
        revision: Some(2),
    };
    check(
        &envelope("apps/v1", "ControllerRevision", revision.encode_to_vec()),
        &json!({
            "kind": "ControllerRevision",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": "rev",
                "namespace": "default",
                "creationTimestamp": null,
                "managedFields": [{
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": "2024-01-02T03:04:05Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}}
                }]
            },
            "data": {
                "kind": "ControllerRevision",
                "apiVersion": "apps/v1",
                "metadata": {"name": "inner", "creationTimestamp": null},
                "data": {"a": 1},
                "revision": 1
            },
            "revision": 2
        }),
    );

    let event = events::Event {
        metadata: Some(go_object_meta("e", "default")),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_704_164_645),
            nanos: Some(123_456_789),
        }),
        reporting_controller: s("c"),
        reporting_instance: s("i"),
        action: s("A"),
        reason: s("R"),
        r#type: s("Normal"),
        deprecated_count: Some(0),
        ..Default::default()
    };
    check(
        &envelope("events.k8s.io/v1", "Event", event.encode_to_vec()),
        &json!({
            "kind": "Event",
            "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "e", "namespace": "default", "creationTimestamp": null},
            "eventTime": "2024-01-02T03:04:05.123456Z",
            "reportingController": "c",
            "reportingInstance": "i",
            "action": "A",
            "reason": "R",
            // Struct-typed fields: Go's JSON writes them even with `omitempty`.
            "regarding": {},
            "deprecatedSource": {},
            "deprecatedFirstTimestamp": null,
            "deprecatedLastTimestamp": null,
            "type": "Normal"
        }),
    );
}

#[test]
fn extra_values_are_lists_and_volume_sources_inline() {
    let review = authorization::SubjectAccessReview {
        metadata: Some(go_object_meta("", "")),
        spec: Some(authorization::SubjectAccessReviewSpec {
            user: s("alice"),
            extra: [(
                "scopes".to_string(),
                authorization::ExtraValue {
                    items: vec!["a".into(), "b".into()],
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        }),
        status: Some(authorization::SubjectAccessReviewStatus {
            allowed: Some(false),
            denied: Some(false),
            reason: s(""),
            evaluation_error: s(""),
        }),
    };
    check(
        &envelope(
            "authorization.k8s.io/v1",
            "SubjectAccessReview",
            review.encode_to_vec(),
        ),
        &json!({
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"user": "alice", "extra": {"scopes": ["a", "b"]}},
            "status": {"allowed": false}
        }),
    );

    let pod = core::Pod {
        metadata: Some(go_object_meta("v", "")),
        spec: Some(core::PodSpec {
            volumes: vec![core::Volume {
                name: s("data"),
                volume_source: Some(core::VolumeSource {
                    empty_dir: Some(core::EmptyDirVolumeSource {
                        medium: s(""),
                        size_limit: Some(quantity("1Gi")),
                    }),
                    ..Default::default()
                }),
            }],
            containers: vec![core::Container {
                name: s("c"),
                image: s("i"),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    check(
        &envelope("v1", "Pod", pod.encode_to_vec()),
        &json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "v", "creationTimestamp": null},
            "spec": {
                "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
                "containers": [{"name": "c", "image": "i", "resources": {}}]
            },
            "status": {}
        }),
    );
}

#[test]
fn unknown_fields_are_skipped_and_packed_numbers_accepted() {
    let config_map = core::ConfigMap {
        metadata: Some(go_object_meta("cm", "")),
        data: string_map(&[("k", "v")]),
        ..Default::default()
    };
    let mut raw = config_map.encode_to_vec();
    // Field 99 (varint 7), field 98 (fixed64), field 97 (fixed32), field 96 (bytes).
    raw.extend([0x98, 0x06, 0x07]);
    raw.extend([0x91, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
    raw.extend([0x8d, 0x06, 1, 2, 3, 4]);
    raw.extend([0x82, 0x06, 0x02, b'h', b'i']);
    check(
        &envelope("v1", "ConfigMap", raw),
        &json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "cm", "creationTimestamp": null},
            "data": {"k": "v"}
        }),
    );

    // PodSecurityContext.supplementalGroups (4) as a packed list of 1 and 300.
    let security = [0x22, 0x03, 0x01, 0xac, 0x02];
    let value = protobuf::decode_message("io.k8s.api.core.v1.PodSecurityContext", &security)
        .expect("decodes");
    assert_eq!(value["supplementalGroups"], json!([1, 300]));
}

#[test]
fn malformed_bodies_fail_with_clear_errors() {
    let err = |body: &[u8]| protobuf::decode(body).expect_err("refused");

    assert!(matches!(
        err(b"{\"kind\":\"Pod\"}"),
        ProtobufError::BadMagic
    ));
    assert_eq!(
        err(b"k8s").to_string(),
        "protobuf body does not start with the magic bytes \"k8s\\x00\""
    );

    let unknown = err(&envelope("example.com/v1", "Widget", Vec::new()));
    assert_eq!(
        unknown.to_string(),
        "no protobuf message is known for kind \"Widget\" in \"example.com/v1\""
    );

    let good = fs::read(fixture("deployment.pb")).expect("body");
    let truncated = err(&good[..good.len() - 10]);
    assert!(
        matches!(truncated, ProtobufError::Truncated { .. }),
        "{truncated}"
    );
    assert!(
        truncated.to_string().contains("truncated at byte"),
        "{truncated}"
    );

    // spec.replicas (varint) sent as a length-delimited field.
    let spec = [0x12, 0x03, 0x0a, 0x01, 0x05];
    let wrong = err(&envelope("apps/v1", "Deployment", spec.to_vec()));
    assert_eq!(
        wrong.to_string(),
        "field spec.replicas (number 1) has wire type length-delimited, want varint, at byte 31"
    );

    let mut encoded = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("ConfigMap"),
        }),
        raw: Some(Vec::new()),
        content_encoding: s("gzip"),
        content_type: None,
    }
    .encode_to_vec();
    encoded.splice(0..0, protobuf::MAGIC);
    assert_eq!(
        err(&encoded).to_string(),
        "unsupported protobuf content encoding \"gzip\""
    );

    let bad_port = core::ServicePort {
        target_port: Some(IntOrString {
            r#type: Some(7),
            int_val: None,
            str_val: None,
        }),
        ..Default::default()
    };
    let spec = core::ServiceSpec {
        ports: vec![bad_port],
        ..Default::default()
    };
    let service = core::Service {
        spec: Some(spec),
        ..Default::default()
    };
    assert_eq!(
        err(&envelope("v1", "Service", service.encode_to_vec())).to_string(),
        "spec.ports[0].targetPort: int-or-string type 7 is neither 0 (int) nor 1 (string)"
    );

    let far_future = core::Pod {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(meta::Time {
                seconds: Some(i64::MAX),
                nanos: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(matches!(
        err(&envelope("v1", "Pod", far_future.encode_to_vec())),
        ProtobufError::TimeOutOfRange { .. }
    ));

    let bad_json = apps::ControllerRevision {
        data: Some(RawExtension {
            raw: Some(b"{nope".to_vec()),
        }),
        ..Default::default()
    };
    let embedded = err(&envelope(
        "apps/v1",
        "ControllerRevision",
        bad_json.encode_to_vec(),
    ));
    assert_eq!(embedded.to_string(), "data holds invalid embedded JSON");
}

#[test]
fn deeply_nested_raw_extensions_are_refused() {
    let mut body = envelope("apps/v1", "ControllerRevision", Vec::new());
    for _ in 0..200 {
        let outer = apps::ControllerRevision {
            data: Some(RawExtension { raw: Some(body) }),
            ..Default::default()
        };
        body = envelope("apps/v1", "ControllerRevision", outer.encode_to_vec());
    }
    assert!(matches!(
        protobuf::decode(&body),
        Err(ProtobufError::TooDeep { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes after the magic never panic.
    #[test]
    fn random_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut body = protobuf::MAGIC.to_vec();
        body.extend(bytes);
        let _ = protobuf::decode(&body);
    }

    /// Random object bytes in a valid envelope never panic, whatever kind they claim.
    #[test]
    fn random_objects_never_panic(
        kind in prop::sample::select(vec![
            ("v1", "Pod"), ("apps/v1", "Deployment"), ("v1", "Secret"), ("v1", "Service"),
            ("batch/v1", "CronJob"), ("apps/v1", "ControllerRevision"), ("v1", "Node"),
        ]),
        raw in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = protobuf::decode(&envelope(kind.0, kind.1, raw));
    }

    /// Every truncation and single-byte corruption of a real kubectl body is an error or a
    /// value, never a panic.
    #[test]
    fn corrupted_kubectl_bodies_never_panic(cut in 0usize..400, at in 0usize..400, byte in any::<u8>()) {
        let good = fs::read(fixture("deployment.pb")).expect("body");
        let mut body = good.clone();
        if at < body.len() {
            body[at] = byte;
        }
        let _ = protobuf::decode(&body);
        let _ = protobuf::decode(&good[..cut.min(good.len())]);
    }
}
