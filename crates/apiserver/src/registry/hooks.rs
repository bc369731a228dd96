//! The seam where per-kind defaulting and validation plug into the registry.
//!
//! Every strategy's `default`, `validate_create`, `validate_update` and
//! `validate_status_update` end up here (see `strategy::Strategy`); the rules themselves live in
//! the `api` crate (`tug_api::defaults`, `tug_api::validation`), which knows every kind. Objects
//! reach these hooks in their storage version.

use serde_json::Value;
use tug_api::{Gvk, catalog::Resource};
use tug_apimachinery::validation::ErrorList;

use super::validation::{self, NameRule};

/// The kind of `resource`'s objects in their storage version (events.k8s.io Events are stored
/// as core Events, autoscaling/v1 HPAs as autoscaling/v2).
fn storage_gvk(resource: &Resource) -> Gvk<'static> {
    match resource.storage {
        Some(storage) => Gvk::new(storage.group, storage.version, resource.kind),
        None => resource.gvk(),
    }
}

/// Applies upstream's defaults for `resource`'s kind to an object in the storage version.
pub(crate) fn default(resource: &Resource, obj: &mut Value) {
    tug_api::defaults::apply_defaults(storage_gvk(resource), obj);
}

/// Validates a new object of `resource`'s kind (upstream's `strategy.Validate`): the
/// registry's name rule for the object's metadata, then the kind's own rules.
pub(crate) fn validate_create(resource: &Resource, rule: NameRule, obj: &Value) -> ErrorList {
    let gvk = storage_gvk(resource);
    let mut errs = validation::validate_object_meta(obj, resource.namespaced, rule);
    // The api crate validates metadata too, with its own name rule; keep only its errors
    // outside `metadata` so that each problem is reported once.
    errs.append(without_metadata(tug_api::validation::validate_create(
        gvk, obj,
    )));
    errs
}

/// Validates an update of an object of `resource`'s kind (upstream's `strategy.ValidateUpdate`;
/// the registry checks metadata immutability itself before calling this).
pub(crate) fn validate_update(
    resource: &Resource,
    rule: NameRule,
    new: &Value,
    old: &Value,
) -> ErrorList {
    let mut errs = validation::validate_object_meta(new, resource.namespaced, rule);
    errs.append(without_metadata(tug_api::validation::validate_update(
        storage_gvk(resource),
        new,
        old,
    )));
    errs
}

/// Validates a `status` update (upstream's status strategy `ValidateUpdate`): metadata only,
/// as the api crate does not validate status yet.
pub(crate) fn validate_status_update(
    resource: &Resource,
    rule: NameRule,
    new: &Value,
    old: &Value,
) -> ErrorList {
    let _ = old;
    validation::validate_object_meta(new, resource.namespaced, rule)
}

/// `errs` without the errors about `metadata`, which the registry reports itself.
fn without_metadata(errs: ErrorList) -> ErrorList {
    errs.into_iter()
        .filter(|e| !e.field.starts_with("metadata"))
        .collect()
}
