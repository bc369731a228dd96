//! The per-resource rules the generic store applies (upstream's `RESTCreateStrategy`,
//! `RESTUpdateStrategy`, `RESTDeleteStrategy` and status strategies): what a create or update
//! may set, when `metadata.generation` moves, how names are validated, whether a PUT may
//! create, whether deletion is graceful. Objects are in their storage version.
//!
//! [`Generic`] covers most kinds with a few switches; kinds with real logic have their own
//! type under `strategies/`. The table that picks one per resource is
//! `strategies::for_resource`.

use std::fmt;

use serde_json::{Value, json};
use tug_api::catalog::Resource;
use tug_apimachinery::{meta, validation::ErrorList};

use super::{hooks, objmeta, validation::NameRule};

/// What deleting an object does to its dependents when the request does not say
/// (upstream's `DefaultGarbageCollectionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GcPolicy {
    /// Dependents are deleted in the background (most kinds).
    Background,
    /// Dependents are orphaned (core v1 ReplicationControllers, for compatibility).
    Orphan,
}

/// The rules of one resource. Every method has upstream's default behaviour.
pub(crate) trait Strategy: Send + Sync + fmt::Debug {
    /// How `metadata.name` is validated.
    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    /// Applies defaults to a decoded object (create, update and patch results alike).
    fn default(&self, resource: &Resource, obj: &mut Value) {
        hooks::default(resource, obj);
    }

    /// Clears what a create may not set (status) and initialises `generation`.
    fn prepare_for_create(&self, obj: &mut Value) {
        let _ = obj;
    }

    /// Runs once uid, creation time and name are set, before validation (Jobs derive their
    /// selector from the uid here).
    fn complete_create(&self, obj: &mut Value) {
        let _ = obj;
    }

    /// Keeps what an update of the main resource may not change (status) and bumps
    /// `generation` when the spec changes. `new` arrives with the old generation.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let _ = (new, old);
    }

    /// Keeps what a `status` update may not change: the spec.
    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        objmeta::copy_field(new, old, "spec");
    }

    /// Keeps what a `finalize` update may not change (namespaces only).
    fn prepare_for_finalize(&self, new: &mut Value, old: &Value) {
        objmeta::copy_field(new, old, "status");
    }

    /// Validates a new object.
    fn validate_create(&self, resource: &Resource, obj: &Value) -> ErrorList {
        hooks::validate_create(resource, self.name_rule(), obj)
    }

    /// Validates an update of the main resource.
    fn validate_update(&self, resource: &Resource, new: &Value, old: &Value) -> ErrorList {
        hooks::validate_update(resource, self.name_rule(), new, old)
    }

    /// Validates a `status` (or `finalize`) update.
    fn validate_status_update(&self, resource: &Resource, new: &Value, old: &Value) -> ErrorList {
        hooks::validate_status_update(resource, self.name_rule(), new, old)
    }

    /// Normalises a validated object (namespaces get their name label here).
    fn canonicalize(&self, obj: &mut Value) {
        let _ = obj;
    }

    /// Whether a PUT of an absent object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Whether a PUT without `metadata.resourceVersion` overwrites whatever is stored.
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    /// Graceful deletion (`CheckGracefulDelete`): the grace period to wait, given the one the
    /// request asked for, or `None` when the kind is deleted without grace.
    fn check_graceful_delete(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let _ = (obj, requested);
        None
    }

    /// What happens to dependents by default.
    fn default_gc_policy(&self) -> GcPolicy {
        GcPolicy::Background
    }

    /// Whether an update that leaves a deleting object without finalizers deletes it.
    fn should_delete_during_update(&self, new: &Value, old: &Value) -> bool {
        default_should_delete_during_update(new, old)
    }
}

/// Upstream's `ShouldDeleteDuringUpdate`: the new object has no finalizers left, the stored
/// one is being deleted and has no grace period pending.
pub(crate) fn default_should_delete_during_update(new: &Value, old: &Value) -> bool {
    meta::finalizers(new).is_empty()
        && meta::deletion_timestamp(old).is_some()
        && meta::deletion_grace_period_seconds(old).unwrap_or(0) == 0
}

/// When `metadata.generation` moves on update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generation {
    /// The kind does not track generations.
    Untracked,
    /// Starts at 1; bumps when `spec` changes.
    Spec,
    /// Starts at 1; bumps when `spec` or the annotations change (Deployments, whose
    /// annotations are copied to their ReplicaSets).
    SpecOrAnnotations,
    /// Starts at 1; bumps when this top-level field changes (PodTemplate's `template`).
    Field(&'static str),
    /// Starts at 1; bumps when anything but metadata, or the labels, change (EndpointSlices).
    AllButMeta,
}

impl Generation {
    /// Sets the generation of a new object.
    pub(crate) fn on_create(self, obj: &mut Value) {
        if self != Generation::Untracked {
            objmeta::set_meta(obj, "generation", json!(1));
        }
    }

    /// Bumps `new`'s generation (which is the old one on entry) when the tracked part changed.
    pub(crate) fn on_update(self, new: &mut Value, old: &Value) {
        let changed = match self {
            Generation::Untracked => false,
            Generation::Spec => !objmeta::semantic_eq(new.get("spec"), old.get("spec")),
            Generation::SpecOrAnnotations => {
                !objmeta::semantic_eq(new.get("spec"), old.get("spec"))
                    || !objmeta::semantic_eq(
                        objmeta::meta_value(new, "annotations"),
                        objmeta::meta_value(old, "annotations"),
                    )
            }
            Generation::Field(field) => !objmeta::semantic_eq(new.get(field), old.get(field)),
            Generation::AllButMeta => {
                let strip = |v: &Value| {
                    let mut v = v.clone();
                    for key in ["metadata", "apiVersion", "kind"] {
                        objmeta::remove(&mut v, key);
                    }
                    v
                };
                !objmeta::semantic_eq(Some(&strip(new)), Some(&strip(old)))
                    || !objmeta::semantic_eq(
                        objmeta::meta_value(new, "labels"),
                        objmeta::meta_value(old, "labels"),
                    )
            }
        };
        if changed {
            let next = meta::generation(old).unwrap_or(0) + 1;
            objmeta::set_meta(new, "generation", json!(next));
        }
    }
}

/// A strategy assembled from switches; most kinds need nothing more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Generic {
    /// The name rule.
    pub name_rule: NameRule,
    /// The status a create starts with (`None`: the kind has no status, or keeps the one
    /// given, like Nodes).
    pub reset_status: Option<fn() -> Value>,
    /// Whether updates of the main resource keep the stored status.
    pub keep_status: bool,
    /// Generation tracking.
    pub generation: Generation,
    /// `AllowCreateOnUpdate`.
    pub create_on_update: bool,
    /// `AllowUnconditionalUpdate`.
    pub unconditional_update: bool,
    /// The default garbage-collection policy.
    pub gc: GcPolicy,
    /// Whether `status` updates also keep the labels (Deployments).
    pub status_keeps_labels: bool,
}

impl Generic {
    /// No status, no generation, subdomain names: the plainest kind.
    pub(crate) const fn base() -> Self {
        Self {
            name_rule: NameRule::Subdomain,
            reset_status: None,
            keep_status: false,
            generation: Generation::Untracked,
            create_on_update: false,
            unconditional_update: true,
            gc: GcPolicy::Background,
            status_keeps_labels: false,
        }
    }

    /// A kind with a spec and a status: status reset on create and kept on update, generation
    /// tracked on the spec.
    pub(crate) fn workload(status: fn() -> Value) -> Self {
        Self {
            reset_status: Some(status),
            keep_status: true,
            generation: Generation::Spec,
            ..Self::base()
        }
    }
}

impl Strategy for Generic {
    fn name_rule(&self) -> NameRule {
        self.name_rule
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(status) = self.reset_status {
            objmeta::set(obj, "status", status());
        }
        self.generation.on_create(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if self.keep_status {
            objmeta::copy_field(new, old, "status");
        }
        self.generation.on_update(new, old);
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        objmeta::copy_field(new, old, "spec");
        if self.status_keeps_labels {
            objmeta::copy_meta(new, old, "labels");
        }
    }

    fn allow_create_on_update(&self) -> bool {
        self.create_on_update
    }

    fn allow_unconditional_update(&self) -> bool {
        self.unconditional_update
    }

    fn default_gc_policy(&self) -> GcPolicy {
        self.gc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_starts_at_one_and_moves_only_with_the_spec() {
        let s = Generic::workload(|| json!({}));
        let mut obj =
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {"replicas": 9}});
        s.prepare_for_create(&mut obj);
        assert_eq!(obj["metadata"]["generation"], json!(1));
        assert_eq!(obj["status"], json!({}));

        let old = obj.clone();
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"a": "b"});
        relabelled["status"] = json!({"replicas": 5});
        s.prepare_for_update(&mut relabelled, &old);
        assert_eq!(relabelled["metadata"]["generation"], json!(1));
        assert_eq!(relabelled["status"], json!({}));

        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        s.prepare_for_update(&mut scaled, &old);
        assert_eq!(scaled["metadata"]["generation"], json!(2));
    }

    #[test]
    fn status_updates_keep_the_spec() {
        let s = Generic::workload(|| json!({}));
        let old = json!({"spec": {"replicas": 1}, "status": {}});
        let mut new = json!({"spec": {"replicas": 7}, "status": {"replicas": 1}});
        s.prepare_for_status_update(&mut new, &old);
        assert_eq!(
            new,
            json!({"spec": {"replicas": 1}, "status": {"replicas": 1}})
        );
    }
}
