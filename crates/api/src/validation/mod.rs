//! Per-kind validation with upstream's exact field paths and messages: the equivalent of
//! `pkg/apis/<group>/validation` plus the registry strategies' extra checks (such as the
//! immutable Deployment selector of `apps/v1`).
//!
//! Objects are validated after [`crate::defaults::apply_defaults`], as upstream validates
//! defaulted objects, and after the registry prepared them (name generated from
//! `generateName`, `uid` set, a Job's selector generated, `resourceVersion` filled in for
//! unconditional updates). Errors accumulate; their `Display` is upstream's
//! `field.Error.Error()`, which the registry joins into `The Deployment "web" is invalid: …`.
//!
//! Kinds with no spec rules here still get `metadata` validation with their upstream name
//! rule. Status subresource updates are not covered.

mod apps;
mod batch;
mod core;
mod cron;
mod meta;
mod other;
mod pod;
mod tz;
pub(crate) mod util;

use serde_json::Value;
use tug_apimachinery::validation::ErrorList;

use crate::Gvk;
pub use meta::{NameRule, validate_object_meta, validate_object_meta_update};

/// The name rule upstream applies to objects of a kind.
pub fn name_rule(gvk: Gvk<'_>) -> NameRule {
    match (gvk.group, gvk.kind) {
        ("", "Namespace") | ("apps", "StatefulSet") => NameRule::Label,
        ("", "Service") => NameRule::Dns1035,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

fn namespaced(gvk: Gvk<'_>) -> bool {
    crate::catalog::by_gvk(gvk).is_some_and(|r| r.namespaced)
}

/// Validates a new object of kind `gvk` (upstream's `Validate` of the kind's strategy).
pub fn validate_create(gvk: Gvk<'_>, obj: &Value) -> ErrorList {
    match (gvk.group, gvk.kind) {
        ("", "Pod") => pod::validate_pod(obj),
        ("", "PodTemplate") => core::pod_template(obj),
        ("", "ReplicationController") => core::replication_controller(obj, None),
        ("", "Service") => core::service(obj),
        ("", "ConfigMap") => core::config_map(obj),
        ("", "Secret") => core::secret(obj),
        ("", "Namespace") => core::namespace(obj),
        ("", "Node") => core::node(obj),
        ("", "PersistentVolume") => core::persistent_volume(obj),
        ("", "PersistentVolumeClaim") => core::persistent_volume_claim(obj),
        ("", "Endpoints") => core::endpoints(obj),
        ("", "LimitRange") => core::limit_range(obj),
        ("", "ResourceQuota") => core::resource_quota(obj),
        ("", "ServiceAccount") => core::service_account(obj),
        ("apps", "Deployment") => apps::deployment(obj, None),
        ("apps", "ReplicaSet") => apps::replica_set(obj, None),
        ("apps", "StatefulSet") => apps::stateful_set(obj),
        ("apps", "DaemonSet") => apps::daemon_set(obj, None),
        ("apps", "ControllerRevision") => apps::controller_revision(obj),
        ("batch", "Job") => batch::job(obj),
        ("batch", "CronJob") => batch::cron_job(obj, None),
        ("autoscaling", "HorizontalPodAutoscaler") => other::hpa(obj, gvk.version),
        ("policy", "PodDisruptionBudget") => other::pdb(obj),
        ("networking.k8s.io", "NetworkPolicy") => other::network_policy(obj),
        ("networking.k8s.io", "Ingress") => other::ingress(obj),
        ("networking.k8s.io", "IngressClass") => other::ingress_class(obj),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => other::role(obj, gvk.kind),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            other::role_binding(obj, gvk.kind)
        }
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class(obj),
        ("storage.k8s.io", "StorageClass") => other::storage_class(obj),
        ("coordination.k8s.io", "Lease") => other::lease(obj),
        ("discovery.k8s.io", "EndpointSlice") => other::endpoint_slice(obj),
        _ => validate_object_meta(obj, namespaced(gvk), name_rule(gvk)),
    }
}

/// Validates an update of an object of kind `gvk` from `old` to `new` (upstream's
/// `ValidateUpdate` of the kind's strategy: metadata immutability, the kind's immutable
/// fields, and the new object's own validity).
pub fn validate_update(gvk: Gvk<'_>, new: &Value, old: &Value) -> ErrorList {
    match (gvk.group, gvk.kind) {
        ("", "Pod") => pod::validate_pod_update(new, old),
        ("", "PodTemplate") => with_meta_update(new, old, core::pod_template_spec_only(new)),
        ("", "ReplicationController") => core::replication_controller(new, Some(old)),
        ("", "Service") => core::service_update(new, old),
        ("", "ConfigMap") => core::config_map_update(new, old),
        ("", "Secret") => core::secret_update(new, old),
        ("", "Namespace") => validate_object_meta_update(new, old),
        ("", "Node") => core::node_update(new, old),
        ("", "PersistentVolume") => core::persistent_volume_update(new, old),
        ("", "PersistentVolumeClaim") => core::persistent_volume_claim_update(new, old),
        ("", "Endpoints") => with_meta_update(new, old, core::endpoints_spec(new)),
        ("", "LimitRange") => with_meta_update(new, old, core::limit_range_spec(new)),
        ("", "ResourceQuota") => with_meta_update(new, old, core::resource_quota_spec(new)),
        ("apps", "Deployment") => apps::deployment(new, Some(old)),
        ("apps", "ReplicaSet") => apps::replica_set(new, Some(old)),
        ("apps", "StatefulSet") => apps::stateful_set_update(new, old),
        ("apps", "DaemonSet") => apps::daemon_set(new, Some(old)),
        ("apps", "ControllerRevision") => apps::controller_revision_update(new, old),
        ("batch", "Job") => batch::job_update(new, old),
        ("batch", "CronJob") => batch::cron_job(new, Some(old)),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            with_meta_update(new, old, other::hpa_spec(new, gvk.version))
        }
        ("policy", "PodDisruptionBudget") => with_meta_update(new, old, other::pdb_spec(new)),
        ("networking.k8s.io", "NetworkPolicy") => {
            with_meta_update(new, old, other::network_policy_spec(new))
        }
        ("networking.k8s.io", "Ingress") => with_meta_update(new, old, other::ingress_spec(new)),
        ("networking.k8s.io", "IngressClass") => other::ingress_class_update(new, old),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            with_meta_update(new, old, other::role_rules(new))
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            other::role_binding_update(new, old, gvk.kind)
        }
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class_update(new, old),
        ("storage.k8s.io", "StorageClass") => other::storage_class_update(new, old),
        ("coordination.k8s.io", "Lease") => with_meta_update(new, old, other::lease_spec(new)),
        ("discovery.k8s.io", "EndpointSlice") => other::endpoint_slice_update(new, old),
        _ => validate_object_meta_update(new, old),
    }
}

/// Metadata update errors followed by `rest`.
fn with_meta_update(new: &Value, old: &Value, rest: ErrorList) -> ErrorList {
    let mut errs = validate_object_meta_update(new, old);
    errs.append(rest);
    errs
}

#[cfg(test)]
mod tests;
