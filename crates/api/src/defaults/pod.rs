//! Pod and pod-template defaults: `SetDefaults_Pod`, `SetDefaults_PodSpec`, containers,
//! probes, volumes and resource lists, wherever a pod spec is embedded.

use serde_json::{Value, json};
use tug_apimachinery::Quantity;

use super::{child, default_int, default_str, each, ensure, path_mut, set_default};

/// `SetObjectDefaults_Pod`: the Pod-only defaults, then the pod spec's.
pub(super) fn pod(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        for key in ["containers", "initContainers"] {
            each(spec, key, requests_from_limits);
        }
        set_default(spec, "enableServiceLinks", Value::Bool(true));
        if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            for key in ["containers", "initContainers"] {
                each(spec, key, |c| {
                    each(c, "ports", |p| {
                        let container_port = p.get("containerPort").cloned();
                        if let Some(cp) = container_port {
                            default_int_to(p, "hostPort", cp);
                        }
                    });
                });
            }
        }
        pod_spec(spec);
    }
}

/// Sets an integer field to a JSON value when it is absent, null or zero.
fn default_int_to(obj: &mut Value, key: &str, value: Value) {
    let zero = obj
        .get(key)
        .is_none_or(|v| v.is_null() || v.as_i64() == Some(0));
    if zero && let Some(map) = obj.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

/// If limits are set but requests are not, requests default to the limits (Pods only).
fn requests_from_limits(c: &mut Value) {
    let Some(limits) = c
        .get("resources")
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let Some(resources) = child(c, "resources") else {
        return;
    };
    let Some(requests) = ensure(resources, "requests").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// The pod template at a chain of keys (`spec.template`), defaulted as a `PodTemplateSpec`.
pub(super) fn template_at(obj: &mut Value, keys: &[&str]) {
    if let Some(tpl) = path_mut(obj, keys) {
        template(tpl);
    }
}

/// A `PodTemplateSpec`: only its pod spec has defaults.
pub(super) fn template(tpl: &mut Value) {
    if let Some(spec) = child(tpl, "spec") {
        pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and the generated recursion into its parts.
pub(super) fn pod_spec(spec: &mut Value) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    each(spec, "volumes", volume);
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        each(spec, key, container);
    }
    if let Some(overhead) = spec.get_mut("overhead") {
        resource_list(overhead);
    }
    if let Some(res) = child(spec, "resources") {
        for key in ["limits", "requests"] {
            if let Some(list) = res.get_mut(key) {
                resource_list(list);
            }
        }
    }
}

/// `SetDefaults_ResourceList`: every quantity rounded up to milli-units, printed canonically.
pub(super) fn resource_list(list: &mut Value) {
    let Some(map) = list.as_object_mut() else {
        return;
    };
    for value in map.values_mut() {
        let parsed = match value {
            Value::String(s) => Quantity::parse(s).ok(),
            Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
            _ => None,
        };
        if let Some(mut q) = parsed {
            q.round_up(-3);
            *value = Value::String(q.to_string());
        }
    }
}

/// `SetDefaults_Container` plus ports, env, resources, probes and lifecycle hooks.
fn container(c: &mut Value) {
    if c.get("imagePullPolicy")
        .is_none_or(|p| p.is_null() || p.as_str() == Some(""))
    {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if image_tag_is_latest(image) {
            "Always"
        } else {
            "IfNotPresent"
        };
        default_str(c, "imagePullPolicy", policy);
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    each(c, "ports", |p| default_str(p, "protocol", "TCP"));
    each(c, "env", |e| {
        if let Some(fr) = path_mut(e, &["valueFrom", "fieldRef"]) {
            default_str(fr, "apiVersion", "v1");
        }
    });
    if let Some(res) = child(c, "resources") {
        for key in ["limits", "requests"] {
            if let Some(list) = res.get_mut(key) {
                resource_list(list);
            }
        }
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, key) {
            probe(p);
        }
    }
    if let Some(lc) = child(c, "lifecycle") {
        for key in ["postStart", "preStop"] {
            if let Some(h) = child(lc, key) {
                handler(h);
            }
        }
    }
}

fn probe(p: &mut Value) {
    default_int(p, "timeoutSeconds", 1);
    default_int(p, "periodSeconds", 10);
    default_int(p, "successThreshold", 1);
    default_int(p, "failureThreshold", 3);
    handler(p);
}

/// The actions of a probe or lifecycle hook.
fn handler(h: &mut Value) {
    if let Some(get) = child(h, "httpGet") {
        default_str(get, "path", "/");
        default_str(get, "scheme", "HTTP");
    }
    if let Some(grpc) = child(h, "grpc") {
        set_default(grpc, "service", json!(""));
    }
}

/// Whether upstream's `parsers.ParseImageName` yields the tag `latest`: no tag and no
/// digest. Names it cannot parse yield no tag (so `IfNotPresent`).
pub(super) fn image_tag_is_latest(image: &str) -> bool {
    if image.is_empty() || image.trim() != image || image.chars().any(char::is_whitespace) {
        return false;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if name.is_empty() {
        return false;
    }
    // The tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    // Repository paths must be lower case (the registry host may not be).
    let repo_path = match name.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => name,
    };
    let repo_path = repo_path.split(':').next().unwrap_or(repo_path);
    if repo_path.chars().any(|c| c.is_ascii_uppercase()) {
        return false;
    }
    match (tag, digest) {
        (Some(t), _) => t == "latest",
        (None, Some(_)) => false,
        (None, None) => true,
    }
}

/// The volume sources of a pod (or persistent volume) and their defaults.
pub(super) fn volume(vol: &mut Value) {
    let Some(map) = vol.as_object() else {
        return;
    };
    let has_source = map.iter().any(|(k, v)| k != "name" && !v.is_null());
    if !has_source {
        set_default(vol, "emptyDir", json!({}));
    }
    volume_sources(vol);
}

/// Defaults of each volume source type, shared by pod volumes and persistent volumes.
pub(super) fn volume_sources(vol: &mut Value) {
    if let Some(hp) = child(vol, "hostPath") {
        set_default(hp, "type", json!(""));
    }
    for key in ["secret", "configMap"] {
        if let Some(src) = child(vol, key) {
            set_default(src, "defaultMode", json!(420));
        }
    }
    if let Some(dapi) = child(vol, "downwardAPI") {
        set_default(dapi, "defaultMode", json!(420));
        each(dapi, "items", field_ref_version);
    }
    if let Some(proj) = child(vol, "projected") {
        set_default(proj, "defaultMode", json!(420));
        each(proj, "sources", |src| {
            if let Some(d) = child(src, "downwardAPI") {
                each(d, "items", field_ref_version);
            }
            if let Some(t) = child(src, "serviceAccountToken") {
                set_default(t, "expirationSeconds", json!(3600));
            }
        });
    }
    if let Some(iscsi) = child(vol, "iscsi") {
        default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = child(vol, "rbd") {
        default_str(rbd, "pool", "rbd");
        default_str(rbd, "user", "admin");
        default_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(az) = child(vol, "azureDisk") {
        set_default(az, "cachingMode", json!("ReadWrite"));
        set_default(az, "fsType", json!("ext4"));
        set_default(az, "readOnly", json!(false));
        set_default(az, "kind", json!("Shared"));
    }
    if let Some(sio) = child(vol, "scaleIO") {
        default_str(sio, "storageMode", "ThinProvisioned");
        default_str(sio, "fsType", "xfs");
    }
    if let Some(spec) = path_mut(vol, &["ephemeral", "volumeClaimTemplate", "spec"]) {
        pvc_spec(spec);
    }
}

fn field_ref_version(item: &mut Value) {
    if let Some(fr) = child(item, "fieldRef") {
        default_str(fr, "apiVersion", "v1");
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec` and its resource lists.
pub(super) fn pvc_spec(spec: &mut Value) {
    set_default(spec, "volumeMode", json!("Filesystem"));
    if let Some(res) = child(spec, "resources") {
        for key in ["limits", "requests"] {
            if let Some(list) = res.get_mut(key) {
                resource_list(list);
            }
        }
    }
}

/// A whole `PersistentVolumeClaim` (also the StatefulSet's claim templates): the spec's
/// defaults and `status.phase: Pending`.
pub(super) fn pvc(obj: &mut Value) {
    if let Some(spec) = ensure(obj, "spec") {
        pvc_spec(spec);
    }
    if let Some(status) = ensure(obj, "status") {
        default_str(status, "phase", "Pending");
        for key in ["capacity", "allocatedResources"] {
            if let Some(list) = status.get_mut(key) {
                resource_list(list);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_the_tag() {
        for (image, latest) in [
            ("busybox", true),
            ("busybox:latest", true),
            ("busybox:1.36", false),
            ("registry.local:5000/busybox", true),
            ("registry.local:5000/busybox:1", false),
            ("busybox@sha256:0123", false),
            ("Busybox", false),
            ("", false),
        ] {
            assert_eq!(image_tag_is_latest(image), latest, "{image}");
        }
    }

    #[test]
    fn resource_lists_round_up_to_milli_units_and_print_canonically() {
        let mut list = json!({"cpu": "0.5", "memory": "1024Mi", "x": "0.0001", "n": 2});
        resource_list(&mut list);
        assert_eq!(
            list,
            json!({"cpu": "500m", "memory": "1Gi", "x": "1m", "n": "2"})
        );
    }
}
