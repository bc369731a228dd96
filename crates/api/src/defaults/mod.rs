//! Defaulting: upstream's `SetDefaults_*` functions and the generated `SetObjectDefaults_*`
//! recursion into nested types, for the versions Tug serves, applied to JSON objects.
//!
//! Upstream defaults every object as it is decoded, before admission and validation; the
//! registry calls [`apply_defaults`] at the same point. Values that upstream sets elsewhere are
//! deliberately absent here: Service cluster IPs, `ipFamilies` and `ipFamilyPolicy` (the
//! registry's allocators), a Pod's `serviceAccountName`, `priority`, `preemptionPolicy` and
//! default tolerations (admission plugins), a Job's generated selector (the registry's
//! strategy), and `status` of new objects other than the few phases below.
//!
//! The functions are tolerant: a field of the wrong JSON type is left alone (decoding reports
//! it), and nothing here panics.

mod core;
mod pod;
mod workloads;

use serde_json::{Map, Value};

use crate::Gvk;

/// Sets upstream's defaults on `obj`, an object of kind `gvk` in that version's JSON form.
///
/// Kinds without defaults are left untouched.
pub fn apply_defaults(gvk: Gvk<'_>, obj: &mut Value) {
    match (gvk.group, gvk.version, gvk.kind) {
        ("", "v1", "Pod") => pod::pod(obj),
        ("", "v1", "PodTemplate") => pod::template_at(obj, &["template"]),
        ("", "v1", "ReplicationController") => core::replication_controller(obj),
        ("", "v1", "Service") => core::service(obj),
        ("", "v1", "Secret") => core::secret(obj),
        ("", "v1", "Namespace") => core::namespace(obj),
        ("", "v1", "Node") => core::node(obj),
        ("", "v1", "PersistentVolume") => core::persistent_volume(obj),
        ("", "v1", "PersistentVolumeClaim") => core::persistent_volume_claim(obj),
        ("", "v1", "Endpoints") => core::endpoints(obj),
        ("", "v1", "LimitRange") => core::limit_range(obj),
        ("", "v1", "ResourceQuota") => core::resource_quota(obj),
        ("apps", "v1", "Deployment") => workloads::deployment(obj),
        ("apps", "v1", "ReplicaSet") => workloads::replica_set(obj),
        ("apps", "v1", "StatefulSet") => workloads::stateful_set(obj),
        ("apps", "v1", "DaemonSet") => workloads::daemon_set(obj),
        ("batch", "v1", "Job") => workloads::job(obj),
        ("batch", "v1", "CronJob") => workloads::cron_job(obj),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => workloads::hpa_v1(obj),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => workloads::hpa_v2(obj),
        ("networking.k8s.io", "v1", "NetworkPolicy") => core::network_policy(obj),
        ("networking.k8s.io", "v1", "IngressClass") => core::ingress_class(obj),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding" | "ClusterRoleBinding") => {
            core::role_binding(obj);
        }
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            set_default(obj, "preemptionPolicy", "PreemptLowerPriority".into());
        }
        ("storage.k8s.io", "v1", "StorageClass") => {
            set_default(obj, "reclaimPolicy", "Delete".into());
            set_default(obj, "volumeBindingMode", "Immediate".into());
        }
        ("discovery.k8s.io", "v1", "EndpointSlice") => core::endpoint_slice(obj),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers over JSON objects, following Go's notion of "unset": a pointer field is unset when
// absent or null; a string or number field also when it holds its zero value.

/// Whether `key` of `obj` is absent or `null`.
fn unset(obj: &Value, key: &str) -> bool {
    obj.get(key).is_none_or(Value::is_null)
}

/// Sets a pointer-typed field when absent or null.
fn set_default(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut()
        && map.get(key).is_none_or(Value::is_null)
    {
        map.insert(key.to_owned(), value);
    }
}

/// Sets a string field when absent, null or empty.
fn default_str(obj: &mut Value, key: &str, value: &str) {
    if let Some(map) = obj.as_object_mut() {
        let empty = match map.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if empty {
            map.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
}

/// Sets an integer (non-pointer) field when absent, null or zero.
fn default_int(obj: &mut Value, key: &str, value: i64) {
    if let Some(map) = obj.as_object_mut() {
        let zero = match map.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(_) => false,
        };
        if zero {
            map.insert(key.to_owned(), Value::from(value));
        }
    }
}

/// The existing object child `key` (not null), mutably.
fn child<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    obj.get_mut(key).filter(|v| v.is_object())
}

/// The object child `key`, created empty when absent or null; `None` when `obj` is not an
/// object or the child has another type.
fn ensure<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let map = obj.as_object_mut()?;
    let slot = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.is_object().then_some(slot)
}

/// Calls `f` on every object item of the list child `key`.
fn each(obj: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter(|i| i.is_object()) {
            f(item);
        }
    }
}

/// The object at a chain of keys, if every step exists.
fn path_mut<'a>(obj: &'a mut Value, keys: &[&str]) -> Option<&'a mut Value> {
    keys.iter().try_fold(obj, |cur, k| child(cur, k))
}

#[cfg(test)]
mod tests;
