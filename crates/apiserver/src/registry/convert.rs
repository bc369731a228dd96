//! Conversions between a served version and the storage version, for the resources served in
//! a version other than the one they are stored in:
//!
//! - `events.k8s.io/v1` Events, stored as core `v1` Events (upstream's
//!   `pkg/apis/events/v1/conversion.go`: `regarding` ⇄ `involvedObject`, `note` ⇄ `message`,
//!   `deprecatedSource` ⇄ `source`, …);
//! - `autoscaling/v1` HorizontalPodAutoscalers, stored as `autoscaling/v2`
//!   (`pkg/apis/autoscaling/v1/conversion.go`: `targetCPUUtilizationPercentage` ⇄ a CPU
//!   utilization metric; everything v1 cannot express travels in the
//!   `autoscaling.alpha.kubernetes.io/*` annotations, as JSON in the v2 shape).

use serde_json::{Map, Value, json};
use tug_api::catalog::Resource;

use super::objmeta;

/// Field renames between core `v1` Events (left) and `events.k8s.io/v1` Events (right).
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// The HPA annotation carrying the metrics autoscaling/v1 cannot express.
pub(crate) const HPA_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// The HPA annotation carrying the current metrics.
pub(crate) const HPA_CURRENT_METRICS_ANNOTATION: &str =
    "autoscaling.alpha.kubernetes.io/current-metrics";
/// The HPA annotation carrying the status conditions.
pub(crate) const HPA_CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// The HPA annotation carrying the scaling behavior.
pub(crate) const HPA_BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The CPU utilization autoscaling/v1 implies when no metric is given (upstream's
/// `autoscaling.DefaultCPUUtilization`).
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// Converts a stored object into `resource`'s served version.
pub(crate) fn from_storage(resource: &Resource, obj: Value) -> Value {
    match (resource.group, resource.kind) {
        ("events.k8s.io", "Event") => core_event_to_events_v1(obj),
        ("autoscaling", "HorizontalPodAutoscaler") if resource.version == "v1" => hpa_v2_to_v1(obj),
        _ => obj,
    }
}

/// Converts an object of `resource`'s served version into the storage version.
pub(crate) fn to_storage(resource: &Resource, obj: Value) -> Value {
    match (resource.group, resource.kind) {
        ("events.k8s.io", "Event") => events_v1_to_core_event(obj),
        ("autoscaling", "HorizontalPodAutoscaler") if resource.version == "v1" => hpa_v1_to_v2(obj),
        _ => obj,
    }
}

fn rename_fields(obj: Value, renames: &[(&str, &str)], reverse: bool) -> Value {
    let Value::Object(map) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for (key, value) in map {
        let renamed = renames
            .iter()
            .find_map(|(core, events)| {
                let (from, to) = if reverse {
                    (*events, *core)
                } else {
                    (*core, *events)
                };
                (key == from).then_some(to)
            })
            .map(str::to_owned)
            .unwrap_or(key);
        out.insert(renamed, value);
    }
    Value::Object(out)
}

fn core_event_to_events_v1(obj: Value) -> Value {
    let mut out = rename_fields(obj, EVENT_RENAMES, false);
    // `eventTime` is a non-optional MicroTime in events.k8s.io/v1: Go writes `null` when unset.
    if out.get("eventTime").is_none() {
        objmeta::set(&mut out, "eventTime", Value::Null);
    }
    out
}

fn events_v1_to_core_event(obj: Value) -> Value {
    let mut out = rename_fields(obj, EVENT_RENAMES, true);
    // Non-pointer structs of the core type, always present in upstream's encoding.
    for key in ["involvedObject", "source"] {
        if out.get(key).is_none_or(Value::is_null) {
            objmeta::set(&mut out, key, json!({}));
        }
    }
    out
}

/// Whether a v2 metric is the CPU utilization metric autoscaling/v1 expresses natively.
fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && objmeta::str_at(metric, &["resource", "name"]) == Some("cpu")
        && objmeta::at(metric, &["resource", "target", "averageUtilization"]).is_some()
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let annotations = obj.get_mut("metadata")?.get_mut("annotations")?;
    let raw = annotations.as_object_mut()?.remove(key)?;
    if annotations.as_object().is_some_and(Map::is_empty) {
        objmeta::remove_meta(obj, "annotations");
    }
    serde_json::from_str(raw.as_str()?).ok()
}

fn put_annotation(obj: &mut Value, key: &str, value: &Value) {
    let annotations = objmeta::child_mut(objmeta::child_mut(obj, "metadata"), "annotations");
    objmeta::set(annotations, key, Value::String(value.to_string()));
}

fn hpa_v2_to_v1(v2: Value) -> Value {
    let mut out = json!({});
    for key in ["apiVersion", "kind", "metadata"] {
        objmeta::copy_field(&mut out, &v2, key);
    }
    // Round-trip annotations the client may have sent are ours to produce.
    for key in [
        HPA_METRICS_ANNOTATION,
        HPA_CURRENT_METRICS_ANNOTATION,
        HPA_CONDITIONS_ANNOTATION,
        HPA_BEHAVIOR_ANNOTATION,
    ] {
        take_annotation(&mut out, key);
    }

    let spec_in = v2.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut spec = json!({});
    for key in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        objmeta::copy_field(&mut spec, &spec_in, key);
    }
    let metrics: &[Value] = spec_in
        .get("metrics")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut others = Vec::new();
    for metric in metrics {
        if is_cpu_utilization(metric) {
            if let Some(target) = objmeta::at(metric, &["resource", "target", "averageUtilization"])
            {
                objmeta::set(&mut spec, "targetCPUUtilizationPercentage", target.clone());
            }
        } else {
            others.push(metric.clone());
        }
    }
    if !others.is_empty() {
        put_annotation(&mut out, HPA_METRICS_ANNOTATION, &Value::Array(others));
    }
    if let Some(behavior) = spec_in.get("behavior").filter(|b| !b.is_null()) {
        put_annotation(&mut out, HPA_BEHAVIOR_ANNOTATION, behavior);
    }
    objmeta::set(&mut out, "spec", spec);

    if let Some(status_in) = v2.get("status") {
        let mut status = json!({});
        for key in ["observedGeneration", "lastScaleTime"] {
            objmeta::copy_field(&mut status, status_in, key);
        }
        for key in ["currentReplicas", "desiredReplicas"] {
            let value = status_in.get(key).cloned().unwrap_or_else(|| json!(0));
            objmeta::set(&mut status, key, value);
        }
        let current: &[Value] = status_in
            .get("currentMetrics")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        for metric in current {
            if metric.get("type").and_then(Value::as_str) == Some("Resource")
                && objmeta::str_at(metric, &["resource", "name"]) == Some("cpu")
                && let Some(utilization) =
                    objmeta::at(metric, &["resource", "current", "averageUtilization"])
            {
                objmeta::set(
                    &mut status,
                    "currentCPUUtilizationPercentage",
                    utilization.clone(),
                );
            }
        }
        if !current.is_empty() {
            put_annotation(
                &mut out,
                HPA_CURRENT_METRICS_ANNOTATION,
                &Value::Array(current.to_vec()),
            );
        }
        if let Some(conditions) = status_in
            .get("conditions")
            .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
        {
            put_annotation(&mut out, HPA_CONDITIONS_ANNOTATION, conditions);
        }
        objmeta::set(&mut out, "status", status);
    }
    out
}

fn hpa_v1_to_v2(v1: Value) -> Value {
    let mut meta_holder = json!({});
    objmeta::copy_field(&mut meta_holder, &v1, "metadata");
    let other_metrics = take_annotation(&mut meta_holder, HPA_METRICS_ANNOTATION);
    let current_metrics = take_annotation(&mut meta_holder, HPA_CURRENT_METRICS_ANNOTATION);
    let conditions = take_annotation(&mut meta_holder, HPA_CONDITIONS_ANNOTATION);
    let behavior = take_annotation(&mut meta_holder, HPA_BEHAVIOR_ANNOTATION);

    let mut out = json!({});
    for key in ["apiVersion", "kind"] {
        objmeta::copy_field(&mut out, &v1, key);
    }
    objmeta::copy_field(&mut out, &meta_holder, "metadata");

    let spec_in = v1.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut spec = json!({});
    for key in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        objmeta::copy_field(&mut spec, &spec_in, key);
    }
    let mut metrics: Vec<Value> = match other_metrics {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let cpu_target = spec_in
        .get("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
        .cloned();
    match cpu_target {
        Some(target) => metrics.push(cpu_metric(target)),
        // autoscaling/v1 implies 80% CPU when nothing else is asked for.
        None if metrics.is_empty() => metrics.push(cpu_metric(json!(DEFAULT_CPU_UTILIZATION))),
        None => {}
    }
    objmeta::set(&mut spec, "metrics", Value::Array(metrics));
    if let Some(behavior) = behavior {
        objmeta::set(&mut spec, "behavior", behavior);
    }
    objmeta::set(&mut out, "spec", spec);

    if let Some(status_in) = v1.get("status") {
        let mut status = json!({});
        for key in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            objmeta::copy_field(&mut status, status_in, key);
        }
        match current_metrics {
            Some(current @ Value::Array(_)) => objmeta::set(&mut status, "currentMetrics", current),
            _ => {
                if let Some(utilization) = status_in
                    .get("currentCPUUtilizationPercentage")
                    .filter(|v| !v.is_null())
                {
                    objmeta::set(
                        &mut status,
                        "currentMetrics",
                        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": utilization}}}]),
                    );
                }
            }
        }
        if let Some(conditions) = conditions {
            objmeta::set(&mut status, "conditions", conditions);
        }
        objmeta::set(&mut out, "status", status);
    }
    out
}

fn cpu_metric(target: Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}})
}

#[cfg(test)]
mod tests {
    use tug_api::catalog;

    use super::*;

    fn resource(group: &str, version: &str, plural: &str) -> &'static Resource {
        catalog::by_gvr(group, version, plural).expect("served resource")
    }

    #[test]
    fn events_convert_between_core_and_events_k8s_io_both_ways() {
        let events = resource("events.k8s.io", "v1", "events");
        let core = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "message": "hello",
            "reason": "Started",
            "source": {"component": "kubelet"},
            "count": 3,
            "reportingComponent": "kubelet",
            "type": "Normal"
        });
        let served = from_storage(events, core.clone());
        assert_eq!(served["regarding"], json!({"kind": "Pod", "name": "p"}));
        assert_eq!(served["note"], json!("hello"));
        assert_eq!(served["deprecatedSource"], json!({"component": "kubelet"}));
        assert_eq!(served["deprecatedCount"], json!(3));
        assert_eq!(served["reportingController"], json!("kubelet"));
        assert_eq!(served["eventTime"], Value::Null);
        let mut back = to_storage(events, served);
        objmeta::remove(&mut back, "eventTime");
        assert_eq!(back, core);
    }

    #[test]
    fn hpa_v1_target_cpu_maps_to_a_v2_utilization_metric_and_back() {
        let v1 = resource("autoscaling", "v1", "horizontalpodautoscalers");
        let stored = to_storage(
            v1,
            json!({
                "metadata": {"name": "h"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}
            }),
        );
        assert_eq!(
            stored["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        let served = from_storage(v1, stored);
        assert_eq!(served["spec"]["targetCPUUtilizationPercentage"], json!(50));
        assert!(served["metadata"].get("annotations").is_none());
    }

    #[test]
    fn hpa_metrics_v1_cannot_express_round_trip_through_annotations() {
        let v1 = resource("autoscaling", "v1", "horizontalpodautoscalers");
        let memory = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        let v2 = json!({
            "metadata": {"name": "h"},
            "spec": {"maxReplicas": 3, "metrics": [memory.clone()], "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
            "status": {"desiredReplicas": 2, "conditions": [{"type": "AbleToScale", "status": "True"}]}
        });
        let served = from_storage(v1, v2.clone());
        assert!(
            served["spec"]
                .get("targetCPUUtilizationPercentage")
                .is_none()
        );
        assert_eq!(served["status"]["currentReplicas"], json!(0));
        let annotations = &served["metadata"]["annotations"];
        assert!(annotations.get(HPA_METRICS_ANNOTATION).is_some());
        assert!(annotations.get(HPA_BEHAVIOR_ANNOTATION).is_some());
        assert!(annotations.get(HPA_CONDITIONS_ANNOTATION).is_some());
        let back = to_storage(v1, served);
        assert_eq!(back["spec"]["metrics"], json!([memory]));
        assert_eq!(back["spec"]["behavior"], v2["spec"]["behavior"]);
        assert_eq!(back["status"]["conditions"], v2["status"]["conditions"]);
        assert!(back["metadata"].get("annotations").is_none());
    }
}
