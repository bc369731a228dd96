//! Pods (upstream's `pkg/registry/core/pod/strategy.go`): status starts `Pending` with the QoS
//! class computed from the containers' resources, generation tracks the spec, status updates
//! keep spec and owner references, deletion is graceful.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tug_apimachinery::Quantity;

use crate::registry::{
    objmeta,
    strategy::{Generation, Strategy},
};

/// The grace period a pod gets when its spec does not say (upstream's v1 default).
const DEFAULT_TERMINATION_GRACE_PERIOD: i64 = 30;

/// The pod strategy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PodStrategy;

impl Strategy for PodStrategy {
    fn prepare_for_create(&self, obj: &mut Value) {
        let qos = qos_class(obj.get("spec"));
        objmeta::set(obj, "status", json!({"phase": "Pending", "qosClass": qos}));
        Generation::Spec.on_create(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        objmeta::copy_field(new, old, "status");
        Generation::Spec.on_update(new, old);
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        objmeta::copy_field(new, old, "spec");
        // The deletion timestamp is restored from the stored object by the store; old
        // kubelets corrupt owner references, so status updates never touch them.
        objmeta::remove_meta(new, "deletionTimestamp");
        objmeta::copy_meta(new, old, "ownerReferences");
        let qos_missing = objmeta::str_at(new, &["status", "qosClass"]).is_none_or(str::is_empty);
        if qos_missing && let Some(qos) = objmeta::at(old, &["status", "qosClass"]) {
            let qos = qos.clone();
            objmeta::set(objmeta::child_mut(new, "status"), "qosClass", qos);
        }
    }

    fn check_graceful_delete(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let mut period = requested.unwrap_or_else(|| {
            objmeta::at(obj, &["spec", "terminationGracePeriodSeconds"])
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_TERMINATION_GRACE_PERIOD)
        });
        // An unscheduled pod has nothing to stop; a finished one has stopped.
        if objmeta::str_at(obj, &["spec", "nodeName"]).is_none_or(str::is_empty) {
            period = 0;
        }
        if matches!(
            objmeta::str_at(obj, &["status", "phase"]),
            Some("Failed" | "Succeeded")
        ) {
            period = 0;
        }
        if period < 0 {
            period = 1;
        }
        Some(period)
    }
}

/// Upstream's `ResetObjectMetaForStatus`: a subresource update keeps the stored object's
/// deletion timestamp, generation, labels, annotations, finalizers and owner references.
fn reset_meta_for_status(new: &mut Value, old: &Value) {
    for key in [
        "deletionTimestamp",
        "generation",
        "selfLink",
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
    ] {
        objmeta::copy_meta(new, old, key);
    }
}

/// `pods/ephemeralcontainers`: everything but `spec.ephemeralContainers` stays as stored.
pub(crate) fn prepare_ephemeral_containers(new: &mut Value, old: &Value) {
    let ephemeral = objmeta::at(new, &["spec", "ephemeralContainers"]).cloned();
    objmeta::copy_field(new, old, "spec");
    objmeta::copy_field(new, old, "status");
    reset_meta_for_status(new, old);
    let spec = objmeta::child_mut(new, "spec");
    match ephemeral {
        Some(e) => objmeta::set(spec, "ephemeralContainers", e),
        None => {
            objmeta::remove(spec, "ephemeralContainers");
        }
    }
    Generation::Spec.on_update(new, old);
}

/// `pods/resize`: only the containers' `resources` and `resizePolicy` change. A request that
/// adds, removes, reorders or renames containers is passed on whole for validation to refuse.
pub(crate) fn prepare_resize(new: &mut Value, old: &Value) {
    let mut spec = old.get("spec").cloned().unwrap_or_else(|| json!({}));
    for list in ["containers", "initContainers"] {
        let wanted = objmeta::at(new, &["spec", list])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(stored) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            if wanted.is_empty() {
                continue;
            }
            return;
        };
        let same_shape = stored.len() == wanted.len()
            && stored
                .iter()
                .zip(&wanted)
                .all(|(a, b)| a.get("name") == b.get("name"));
        if !same_shape {
            return;
        }
        for (container, want) in stored.iter_mut().zip(&wanted) {
            for key in ["resources", "resizePolicy"] {
                objmeta::copy_field(container, want, key);
            }
        }
    }
    objmeta::set(new, "spec", spec);
    objmeta::copy_field(new, old, "status");
    reset_meta_for_status(new, old);
    Generation::Spec.on_update(new, old);
}

/// Upstream's `qos.GetPodQOS`: `BestEffort` without any CPU or memory requests or limits,
/// `Guaranteed` when every container limits both and requests equal limits, else `Burstable`.
/// Requests default to limits, as API defaulting does before upstream computes the class.
pub(crate) fn qos_class(spec: Option<&Value>) -> &'static str {
    const COMPUTE: [&str; 2] = ["cpu", "memory"];
    let mut requests: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = ["initContainers", "containers"]
        .into_iter()
        .filter_map(|k| spec?.get(k)?.as_array())
        .flatten();
    let positive = |v: &Value| {
        let q = match v {
            Value::String(s) => Quantity::parse(s).ok()?,
            Value::Number(n) => Quantity::parse(&n.to_string()).ok()?,
            _ => return None,
        };
        (q.signum() > 0).then_some(q)
    };
    for container in containers {
        let resources = container.get("resources");
        let container_limits = resources.and_then(|r| r.get("limits"));
        let container_requests = resources.and_then(|r| r.get("requests"));
        let mut limited = 0;
        for name in COMPUTE {
            let limit = container_limits
                .and_then(|l| l.get(name))
                .and_then(positive);
            let request = container_requests
                .and_then(|r| r.get(name))
                .and_then(positive)
                .or_else(|| limit.clone());
            if let Some(q) = request {
                requests.entry(name).or_insert_with(Quantity::zero).add(&q);
            }
            if let Some(q) = limit {
                limited += 1;
                limits.entry(name).or_insert_with(Quantity::zero).add(&q);
            }
        }
        if limited < COMPUTE.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(k, q)| limits.get(k) == Some(q))
    {
        return "Guaranteed";
    }
    "Burstable"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes_follow_upstreams_rules() {
        let spec =
            |resources: Value| json!({"containers": [{"name": "c", "resources": resources}]});
        assert_eq!(qos_class(Some(&spec(json!({})))), "BestEffort");
        assert_eq!(
            qos_class(Some(&spec(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}})
            ))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(Some(&spec(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})
            ))),
            "Burstable"
        );
        assert_eq!(
            qos_class(Some(&spec(json!({"requests": {"cpu": "100m"}})))),
            "Burstable"
        );
    }

    #[test]
    fn graceful_deletion_is_immediate_for_unscheduled_or_finished_pods() {
        let s = PodStrategy;
        let scheduled = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}});
        assert_eq!(s.check_graceful_delete(&scheduled, None), Some(10));
        assert_eq!(s.check_graceful_delete(&scheduled, Some(3)), Some(3));
        assert_eq!(s.check_graceful_delete(&scheduled, Some(-5)), Some(1));
        assert_eq!(
            s.check_graceful_delete(&json!({"spec": {}}), Some(30)),
            Some(0)
        );
        let done = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
        assert_eq!(s.check_graceful_delete(&done, None), Some(0));
    }
}
