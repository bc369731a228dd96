//! The strategy of every stored resource: one table, upstream's rules per kind. Kinds with real
//! logic live in their own file; the rest are [`Generic`] with the switches upstream's
//! `strategy.go` files amount to.

mod namespace;
mod pod;

use std::sync::Arc;

use serde_json::{Value, json};
use tug_api::catalog::Resource;
use tug_apimachinery::meta;

pub(crate) use namespace::{NamespaceStrategy, spec_finalizers};
pub(crate) use pod::{PodStrategy, prepare_ephemeral_containers, prepare_resize};

use super::{
    objmeta,
    strategy::{GcPolicy, Generation, Generic, Strategy},
    validation::NameRule,
};

/// The strategy for `resource`'s kind.
pub(crate) fn for_resource(resource: &Resource) -> Arc<dyn Strategy> {
    match (resource.group, resource.kind) {
        ("", "Pod") => Arc::new(PodStrategy),
        ("", "Namespace") => Arc::new(NamespaceStrategy),
        ("", "PersistentVolume") => Arc::new(PersistentVolumeStrategy),
        ("batch", "Job") => Arc::new(JobStrategy),
        (group, kind) => Arc::new(generic(group, kind)),
    }
}

/// Upstream's rules for the kinds without logic of their own.
fn generic(group: &str, kind: &str) -> Generic {
    let workload = Generic::workload;
    match (group, kind) {
        ("", "Endpoints" | "Event" | "LimitRange") | ("events.k8s.io", "Event") => Generic {
            create_on_update: true,
            ..Generic::base()
        },
        ("", "Node") => Generic {
            keep_status: true,
            ..Generic::base()
        },
        ("", "Service") => Generic {
            name_rule: NameRule::Dns1035,
            reset_status: Some(|| json!({"loadBalancer": {}})),
            keep_status: true,
            ..Generic::base()
        },
        ("", "PersistentVolumeClaim") => Generic {
            reset_status: Some(|| json!({"phase": "Pending"})),
            keep_status: true,
            ..Generic::base()
        },
        ("", "ResourceQuota") => Generic {
            reset_status: Some(|| json!({})),
            keep_status: true,
            ..Generic::base()
        },
        ("", "PodTemplate") => Generic {
            generation: Generation::Field("template"),
            ..Generic::base()
        },
        ("", "ReplicationController") => Generic {
            gc: GcPolicy::Orphan,
            ..workload(|| json!({"replicas": 0}))
        },
        ("apps", "Deployment") => Generic {
            generation: Generation::SpecOrAnnotations,
            status_keeps_labels: true,
            ..workload(|| json!({}))
        },
        ("apps", "ReplicaSet") => workload(|| json!({"replicas": 0})),
        ("apps", "StatefulSet") => Generic {
            name_rule: NameRule::Label,
            ..workload(|| json!({"replicas": 0, "availableReplicas": 0}))
        },
        ("apps", "DaemonSet") => workload(
            || json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}),
        ),
        ("autoscaling", "HorizontalPodAutoscaler") => Generic {
            generation: Generation::Untracked,
            ..workload(|| json!({"desiredReplicas": 0}))
        },
        ("batch", "CronJob") => workload(|| json!({})),
        ("networking.k8s.io", "Ingress") => workload(|| json!({"loadBalancer": {}})),
        ("networking.k8s.io", "IngressClass" | "NetworkPolicy") => Generic {
            generation: Generation::Spec,
            ..Generic::base()
        },
        ("policy", "PodDisruptionBudget") => Generic {
            unconditional_update: false,
            ..workload(
                || json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
            )
        },
        ("rbac.authorization.k8s.io", _) => Generic {
            name_rule: NameRule::PathSegment,
            create_on_update: true,
            ..Generic::base()
        },
        ("coordination.k8s.io", "Lease") => Generic {
            create_on_update: true,
            ..Generic::base()
        },
        ("discovery.k8s.io", "EndpointSlice") => Generic {
            generation: Generation::AllButMeta,
            ..Generic::base()
        },
        _ => Generic::base(),
    }
}

/// PersistentVolumes: any path-segment name; created `Pending` with the transition time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PersistentVolumeStrategy;

impl Strategy for PersistentVolumeStrategy {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        objmeta::set(
            obj,
            "status",
            json!({"phase": "Pending", "lastPhaseTransitionTime": objmeta::now_rfc3339()}),
        );
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        objmeta::copy_field(new, old, "status");
    }
}

/// The label pods of a Job carry with the Job's name, and its legacy spelling.
const JOB_NAME_LABELS: [&str; 2] = ["job-name", "batch.kubernetes.io/job-name"];
/// The label pods of a Job carry with the Job's uid, and its legacy spelling.
const CONTROLLER_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];

/// Jobs (upstream's `pkg/registry/batch/job/strategy.go`): a workload whose selector, unless
/// `manualSelector` is set, is generated from its uid.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JobStrategy;

impl JobStrategy {
    fn base() -> Generic {
        Generic::workload(|| json!({}))
    }
}

impl Strategy for JobStrategy {
    fn prepare_for_create(&self, obj: &mut Value) {
        Self::base().prepare_for_create(obj);
    }

    fn complete_create(&self, obj: &mut Value) {
        if objmeta::at(obj, &["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true) {
            return;
        }
        let name = meta::name(obj).unwrap_or_default().to_owned();
        let uid = meta::uid(obj).unwrap_or_default().to_owned();
        let spec = objmeta::child_mut(obj, "spec");
        let labels = objmeta::child_mut(
            objmeta::child_mut(objmeta::child_mut(spec, "template"), "metadata"),
            "labels",
        );
        let labels = objmeta::object_mut(labels);
        for key in JOB_NAME_LABELS {
            labels
                .entry(key.to_owned())
                .or_insert_with(|| Value::String(name.clone()));
        }
        for key in CONTROLLER_UID_LABELS {
            labels
                .entry(key.to_owned())
                .or_insert_with(|| Value::String(uid.clone()));
        }
        let match_labels = objmeta::child_mut(objmeta::child_mut(spec, "selector"), "matchLabels");
        objmeta::object_mut(match_labels)
            .entry(CONTROLLER_UID_LABELS[1].to_owned())
            .or_insert_with(|| Value::String(uid.clone()));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        Self::base().prepare_for_update(new, old);
    }
}

#[cfg(test)]
mod tests {
    use tug_api::catalog;

    use super::*;

    #[test]
    fn every_stored_resource_has_a_strategy() {
        for r in catalog::resources().iter().filter(|r| r.storage.is_some()) {
            let _ = for_resource(r);
        }
    }

    #[test]
    fn jobs_select_their_pods_by_uid_unless_told_otherwise() {
        let s = JobStrategy;
        let mut job =
            json!({"metadata": {"name": "j", "uid": "u-1"}, "spec": {"template": {"spec": {}}}});
        s.complete_create(&mut job);
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            json!("j")
        );
        let mut manual =
            json!({"metadata": {"name": "j", "uid": "u"}, "spec": {"manualSelector": true}});
        s.complete_create(&mut manual);
        assert!(manual["spec"].get("selector").is_none());
    }
}
