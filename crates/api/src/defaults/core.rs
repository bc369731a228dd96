//! Defaults of the core group's non-pod kinds and of the small kinds of other groups
//! (networking, RBAC, discovery).

use base64::Engine as _;
use serde_json::{Value, json};

use super::pod::{pvc, resource_list, template_at, volume_sources};
use super::{child, default_str, each, ensure, path_mut, set_default, unset};

/// `SetDefaults_ReplicationController`: selector and labels from the template's labels,
/// one replica, and the template's pod defaults.
pub(super) fn replication_controller(obj: &mut Value) {
    let template_labels = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = ensure(obj, "spec") {
            let empty = spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty());
            if empty && let Some(map) = spec.as_object_mut() {
                map.insert("selector".into(), labels.clone());
            }
        }
        if let Some(meta) = ensure(obj, "metadata") {
            let empty = meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty());
            if empty && let Some(map) = meta.as_object_mut() {
                map.insert("labels".into(), labels);
            }
        }
    }
    if let Some(spec) = ensure(obj, "spec") {
        set_default(spec, "replicas", json!(1));
    }
    template_at(obj, &["spec", "template"]);
}

/// `SetDefaults_Service`. Cluster IPs and IP families are the registry's to allocate.
pub(super) fn service(obj: &mut Value) {
    let Some(spec) = ensure(obj, "spec") else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    let affinity = spec
        .get("sessionAffinity")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if affinity == "None" {
        if let Some(map) = spec.as_object_mut() {
            map.remove("sessionAffinityConfig");
        }
    } else if affinity == "ClientIP"
        && spec
            .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
            .is_none_or(Value::is_null)
        && let Some(map) = spec.as_object_mut()
    {
        map.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    default_str(spec, "type", "ClusterIP");
    each(spec, "ports", |p| {
        default_str(p, "protocol", "TCP");
        let unset_target = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if unset_target
            && let Some(port) = p.get("port").cloned()
            && let Some(map) = p.as_object_mut()
        {
            map.insert("targetPort".into(), port);
        }
    });
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
        if let Some(lb) = path_mut(obj, &["status", "loadBalancer"]) {
            each(lb, "ingress", |ing| {
                let has_ip = ing
                    .get("ip")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if has_ip {
                    set_default(ing, "ipMode", json!("VIP"));
                }
            });
        }
    }
}

/// `SetDefaults_Secret` (type `Opaque`), plus the `stringData` merge upstream's conversion to
/// the internal type performs: each entry overwrites `data` base64-encoded, and `stringData`
/// itself is never stored.
pub(super) fn secret(obj: &mut Value) {
    default_str(obj, "type", "Opaque");
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(string_data) = map.remove("stringData") else {
        return;
    };
    let Some(entries) = string_data.as_object() else {
        // A malformed stringData is decoding's concern; keep it for that error.
        map.insert("stringData".into(), string_data);
        return;
    };
    if entries.is_empty() {
        return;
    }
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Default::default()));
    if data.is_null() {
        *data = Value::Object(Default::default());
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in entries {
            if let Some(s) = v.as_str() {
                let encoded = base64::engine::general_purpose::STANDARD.encode(s);
                data.insert(k.clone(), Value::String(encoded));
            }
        }
    }
}

/// `SetDefaults_Namespace` (the `kubernetes.io/metadata.name` label) and the `Active` phase.
pub(super) fn namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !name.is_empty()
        && let Some(meta) = ensure(obj, "metadata")
        && let Some(labels) = ensure(meta, "labels").and_then(Value::as_object_mut)
    {
        labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
    }
    if let Some(status) = ensure(obj, "status") {
        default_str(status, "phase", "Active");
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub(super) fn node(obj: &mut Value) {
    let Some(status) = child(obj, "status") else {
        return;
    };
    if unset(status, "allocatable")
        && let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        set_default(status, "allocatable", capacity);
    }
    for key in ["capacity", "allocatable"] {
        if let Some(list) = status.get_mut(key) {
            resource_list(list);
        }
    }
}

/// `SetDefaults_PersistentVolume`: `Pending`, `Retain`, `Filesystem`, and the volume
/// sources' defaults.
pub(super) fn persistent_volume(obj: &mut Value) {
    if let Some(spec) = ensure(obj, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        set_default(spec, "volumeMode", json!("Filesystem"));
        if let Some(list) = spec.get_mut("capacity") {
            resource_list(list);
        }
        volume_sources(spec);
    }
    if let Some(status) = ensure(obj, "status") {
        default_str(status, "phase", "Pending");
    }
}

/// `SetDefaults_PersistentVolumeClaim` and its spec's defaults.
pub(super) fn persistent_volume_claim(obj: &mut Value) {
    pvc(obj);
}

/// `SetDefaults_Endpoints`: port protocols default to TCP.
pub(super) fn endpoints(obj: &mut Value) {
    each(obj, "subsets", |subset| {
        each(subset, "ports", |p| default_str(p, "protocol", "TCP"));
    });
}

/// `SetDefaults_LimitRangeItem`: for `Container` items, the default limit comes from `max`,
/// the default request from the default limit, then from `min`.
pub(super) fn limit_range(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    each(spec, "limits", |item| {
        for key in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            if let Some(list) = item.get_mut(key) {
                resource_list(list);
            }
        }
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            return;
        }
        let list = |item: &Value, key: &str| {
            item.get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let max = list(item, "max");
        let min = list(item, "min");
        let mut default = list(item, "default");
        for (k, v) in max {
            default.entry(k).or_insert(v);
        }
        let mut default_request = list(item, "defaultRequest");
        for (k, v) in default.clone().into_iter().chain(min) {
            default_request.entry(k).or_insert(v);
        }
        // Empty maps are omitted when upstream serializes them.
        if let Some(map) = item.as_object_mut() {
            if !default.is_empty() {
                map.insert("default".into(), Value::Object(default));
            }
            if !default_request.is_empty() {
                map.insert("defaultRequest".into(), Value::Object(default_request));
            }
        }
    });
}

/// Resource quotas only round their quantities.
pub(super) fn resource_quota(obj: &mut Value) {
    if let Some(list) = path_mut(obj, &["spec", "hard"]) {
        resource_list(list);
    }
    for key in ["hard", "used"] {
        if let Some(list) = path_mut(obj, &["status", key]) {
            resource_list(list);
        }
    }
}

/// `SetDefaults_NetworkPolicy` (policy types) and `SetDefaults_NetworkPolicyPort` (TCP).
pub(super) fn network_policy(obj: &mut Value) {
    let Some(spec) = ensure(obj, "spec") else {
        return;
    };
    for dir in ["ingress", "egress"] {
        each(spec, dir, |rule| {
            each(rule, "ports", |p| set_default(p, "protocol", json!("TCP")));
        });
    }
    let no_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_types {
        let has_egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        if let Some(map) = spec.as_object_mut() {
            map.insert("policyTypes".into(), types);
        }
    }
}

/// `SetDefaults_IngressClass`: parameters without a scope are cluster-scoped.
pub(super) fn ingress_class(obj: &mut Value) {
    if let Some(params) = path_mut(obj, &["spec", "parameters"]) {
        set_default(params, "scope", json!("Cluster"));
    }
}

/// `SetDefaults_RoleBinding`/`ClusterRoleBinding` and `SetDefaults_Subject`.
pub(super) fn role_binding(obj: &mut Value) {
    if let Some(role_ref) = child(obj, "roleRef") {
        default_str(role_ref, "apiGroup", "rbac.authorization.k8s.io");
    }
    each(obj, "subjects", |subject| {
        let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind == "User" || kind == "Group" {
            default_str(subject, "apiGroup", "rbac.authorization.k8s.io");
        }
    });
}

/// `SetDefaults_EndpointPort` (discovery): empty name, TCP.
pub(super) fn endpoint_slice(obj: &mut Value) {
    each(obj, "ports", |p| {
        set_default(p, "name", json!(""));
        set_default(p, "protocol", json!("TCP"));
    });
}

/// Claim templates embedded in other objects (StatefulSet `volumeClaimTemplates`).
pub(super) fn claim_templates(spec: &mut Value) {
    each(spec, "volumeClaimTemplates", pvc);
}
