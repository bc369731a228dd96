//! The subresources that live in the object: `status` (the whole object, updated with the
//! status strategy), `scale` (an `autoscaling/v1 Scale` view of `spec.replicas`), `finalize`
//! (namespaces), `pods/ephemeralcontainers` and `pods/resize` (the pod, of which only those
//! parts change) and `pods/binding` (upstream's `BindingREST`).

use serde_json::{Value, json};
use tug_apimachinery::{
    GroupKind, GroupResource, Status,
    labels::Selector,
    meta,
    status::STATUS_FAILURE,
    validation::{ErrorList, FieldError, Path},
};
use tug_storage::{Txn, TxnResponse};

use super::{
    RequestContext, ResourceStore, Result, admission, codec, objmeta,
    store::{decode_error, storage_error},
};

/// How often a binding retries after the pod changed under it.
const BIND_ATTEMPTS: usize = 16;

/// Which face of an object a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// The object itself.
    Main,
    /// `status`: the whole object, written with the status strategy.
    Status,
    /// `scale`: an `autoscaling/v1 Scale`.
    Scale,
    /// `finalize` (namespaces): the whole object, only `spec.finalizers` and metadata change.
    Finalize,
    /// `pods/ephemeralcontainers`: the whole pod, only `spec.ephemeralContainers` changes.
    EphemeralContainers,
    /// `pods/resize`: the whole pod, only the containers' resources and resize policies change.
    Resize,
}

impl View {
    /// The view a subresource name selects, or `404` for one this resource does not have.
    pub(crate) fn of(store: &ResourceStore, subresource: Option<&str>) -> Result<Self> {
        let Some(name) = subresource else {
            return Ok(View::Main);
        };
        let resource = store.resource;
        let view = match name {
            "status" => View::Status,
            "scale" => View::Scale,
            "finalize" => View::Finalize,
            "ephemeralcontainers" => View::EphemeralContainers,
            "resize" => View::Resize,
            _ => return Err(unknown_subresource(store, name)),
        };
        if resource.subresource(name).is_none() {
            return Err(unknown_subresource(store, name));
        }
        Ok(view)
    }

    /// The object as this view shows it (`obj` is in the served version).
    pub(crate) fn present(self, store: &ResourceStore, obj: Value) -> Result<Value> {
        match self {
            View::Scale => Ok(scale_of(store, &obj)),
            _ => Ok(obj),
        }
    }

    /// The new object (served version) an update through this view asks for, given the
    /// current one.
    pub(crate) fn apply(
        self,
        store: &ResourceStore,
        input: Value,
        current: &Value,
        name: &str,
    ) -> Result<Value> {
        match self {
            View::Scale => apply_scale(store, input, current, name),
            _ => Ok(input),
        }
    }
}

fn unknown_subresource(store: &ResourceStore, name: &str) -> Box<Status> {
    Box::new(Status::not_found(
        &GroupResource::new(
            store.resource.group,
            &format!("{}/{name}", store.resource.plural),
        ),
        "",
    ))
}

/// The label selector of a scalable object, as the string a Scale carries.
fn selector_string(kind: &str, obj: &Value) -> String {
    let selector = objmeta::at(obj, &["spec", "selector"]);
    let parsed = if kind == "ReplicationController" {
        Ok(Selector::from_set(
            &selector
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        ))
    } else {
        Selector::from_label_selector_json(selector.unwrap_or(&Value::Null))
    };
    parsed.map(|s| s.to_string()).unwrap_or_default()
}

/// Upstream's `scaleFromDeployment` and friends.
fn scale_of(store: &ResourceStore, obj: &Value) -> Value {
    let mut metadata = json!({});
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = objmeta::meta_value(obj, key) {
            objmeta::set(&mut metadata, key, v.clone());
        }
    }
    // API defaulting gives every scalable kind one replica when unset.
    let replicas = objmeta::at(obj, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let mut spec = json!({});
    if replicas != 0 {
        objmeta::set(&mut spec, "replicas", json!(replicas));
    }
    let mut status = json!({
        "replicas": objmeta::at(obj, &["status", "replicas"]).and_then(Value::as_i64).unwrap_or(0)
    });
    let selector = selector_string(store.resource.kind, obj);
    if !selector.is_empty() {
        objmeta::set(&mut status, "selector", json!(selector));
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    })
}

/// Maps a Scale onto the object: validates it, checks its uid, copies `spec.replicas` and the
/// Scale's resource version (a precondition when set).
fn apply_scale(store: &ResourceStore, scale: Value, current: &Value, name: &str) -> Result<Value> {
    if !scale.is_object() {
        return Err(Box::new(Status::bad_request(
            "expected input object type to be Scale",
        )));
    }
    let replicas = objmeta::at(&scale, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut errs = ErrorList::new();
    let scale_name = meta::name(&scale).unwrap_or_default();
    if scale_name.is_empty() {
        errs.push(FieldError::required(
            &Path::new("metadata").child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in tug_apimachinery::validation::name_is_dns_subdomain(scale_name, false) {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("name"),
                scale_name,
                msg,
            ));
        }
    }
    if replicas < 0 {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("replicas"),
            replicas,
            "must be greater than or equal to 0",
        ));
    }
    if !errs.is_empty() {
        return Err(Box::new(Status::invalid(
            &GroupKind::new("autoscaling", "Scale"),
            name,
            &errs,
        )));
    }
    if let Some(uid) = meta::uid(&scale).filter(|u| !u.is_empty()) {
        let actual = meta::uid(current).unwrap_or_default();
        if uid != actual {
            return Err(Box::new(Status::conflict(
                &GroupResource::new(
                    store.resource.group,
                    &format!("{}/scale", store.resource.plural),
                ),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            )));
        }
    }
    let mut obj = current.clone();
    objmeta::set(
        objmeta::child_mut(&mut obj, "spec"),
        "replicas",
        json!(replicas),
    );
    match codec::resource_version(&scale) {
        Some(rv) => objmeta::set_meta(&mut obj, "resourceVersion", json!(rv)),
        None => {
            objmeta::remove_meta(&mut obj, "resourceVersion");
        }
    }
    Ok(obj)
}

/// A failure upstream returns as a plain error: `500` with no reason and the error's text.
fn plain_error(message: String) -> Box<Status> {
    Box::new(Status {
        status: STATUS_FAILURE.to_owned(),
        message,
        code: 500,
        ..Status::default()
    })
}

impl ResourceStore {
    /// `POST pods/<name>/binding` (and the legacy `bindings` resource): assigns the pod to the
    /// node the Binding names and marks it `PodScheduled`.
    pub(crate) async fn bind(
        &self,
        ctx: &RequestContext,
        mut binding: Value,
        url_name: Option<&str>,
    ) -> Result<Value> {
        let gr_binding = GroupResource::new("", "pods/binding");
        let body_name = meta::name(&binding).unwrap_or_default().to_owned();
        let name = match url_name {
            Some(url) if url != body_name => {
                return Err(Box::new(Status::bad_request(
                    "name in URL does not match name in Binding object",
                )));
            }
            Some(url) => url.to_owned(),
            None => body_name,
        };
        let namespace = self.object_namespace(ctx)?;
        if let (Some(ns), Some(given)) = (namespace, meta::namespace(&binding))
            && !given.is_empty()
            && given != ns
        {
            return Err(Box::new(Status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )));
        }
        let target_kind = objmeta::str_at(&binding, &["target", "kind"]).unwrap_or_default();
        let node = objmeta::str_at(&binding, &["target", "name"])
            .unwrap_or_default()
            .to_owned();
        let mut errs = ErrorList::new();
        if !target_kind.is_empty() && target_kind != "Node" {
            errs.push(FieldError::not_supported(
                &Path::new("target").child("kind"),
                target_kind,
                &["Node", "<empty>"],
            ));
        }
        if node.is_empty() {
            errs.push(FieldError::required(&Path::new("target").child("name"), ""));
        }
        if let Some(message) = errs.aggregate_message() {
            return Err(plain_error(message));
        }
        let key = self.key(ctx, &name)?;
        // Creating a binding is a create as far as NamespaceLifecycle is concerned.
        admission::namespace_lifecycle(self, namespace, &name).await?;
        let want_uid = meta::uid(&binding)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        let want_rv = codec::resource_version(&binding).map(str::to_owned);
        let annotations = meta::annotations(&binding);
        objmeta::remove(&mut binding, "target");

        for _ in 0..BIND_ATTEMPTS {
            let Some((mut pod, revision)) = self.read(&key).await? else {
                return Err(self.not_found(&name));
            };
            let uid = meta::uid(&pod).unwrap_or_default().to_owned();
            if let Some(want) = &want_uid
                && *want != uid
            {
                return Err(Box::new(Status::conflict(
                    &self.group_resource(),
                    &name,
                    &format!(
                        "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                    ),
                )));
            }
            if let Some(want) = &want_rv
                && *want != revision.to_string()
            {
                return Err(Box::new(Status::conflict(
                    &self.group_resource(),
                    &name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {revision}"
                    ),
                )));
            }
            if meta::deletion_timestamp(&pod).is_some() {
                return Err(Box::new(Status::conflict(
                    &gr_binding,
                    &name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                )));
            }
            if let Some(assigned) =
                objmeta::str_at(&pod, &["spec", "nodeName"]).filter(|n| !n.is_empty())
            {
                return Err(Box::new(Status::conflict(
                    &gr_binding,
                    &name,
                    &format!(
                        "pod {name} is already assigned to node {}",
                        objmeta::quote(assigned)
                    ),
                )));
            }
            if objmeta::at(&pod, &["spec", "schedulingGates"])
                .and_then(Value::as_array)
                .is_some_and(|g| !g.is_empty())
            {
                return Err(Box::new(Status::conflict(
                    &gr_binding,
                    &name,
                    &format!("pod {name} has non-empty .spec.schedulingGates"),
                )));
            }
            objmeta::set(
                objmeta::child_mut(&mut pod, "spec"),
                "nodeName",
                json!(node),
            );
            if !annotations.is_empty() {
                let mut all = meta::annotations(&pod);
                all.extend(annotations.clone());
                let _ = meta::set_annotations(&mut pod, &all);
            }
            set_pod_scheduled(&mut pod);
            if ctx.dry_run {
                break;
            }
            let bytes = codec::encode(&pod).map_err(|e| decode_error(&e))?;
            match self
                .shared
                .store
                .txn(Txn::update(key.clone(), revision, bytes))
                .await
            {
                Ok(TxnResponse::Applied { revision, .. }) => {
                    tracing::debug!(pod = %key, %node, revision, "bound");
                    return Ok(created_status());
                }
                Ok(TxnResponse::Rejected { .. }) => continue,
                Err(e) => return Err(storage_error(&e, &self.group_resource(), "update")),
            }
        }
        if ctx.dry_run {
            return Ok(created_status());
        }
        Err(Box::new(Status::optimistic_lock_conflict(
            &self.group_resource(),
            &name,
        )))
    }
}

/// The `Success` status a create that returns no object answers with.
fn created_status() -> Value {
    let mut status = Status::success();
    status.code = 201;
    status.to_json()
}

/// Upstream's `UpdatePodCondition` with `PodScheduled=True`.
fn set_pod_scheduled(pod: &mut Value) {
    let now = objmeta::now_rfc3339();
    let status = objmeta::child_mut(pod, "status");
    let conditions = objmeta::object_mut(status)
        .entry("conditions")
        .or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    let mut condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": now,
    });
    match list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
    {
        Some(existing) => {
            if existing.get("status").and_then(Value::as_str) == Some("True")
                && let Some(t) = existing.get("lastTransitionTime")
            {
                condition["lastTransitionTime"] = t.clone();
            }
            *existing = condition;
        }
        None => list.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_scheduled_is_added_once_and_keeps_its_transition_time() {
        let mut pod = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        set_pod_scheduled(&mut pod);
        let conditions = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[1]["type"], json!("PodScheduled"));
        assert_eq!(conditions[1]["lastProbeTime"], Value::Null);
        pod["status"]["conditions"][1]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        set_pod_scheduled(&mut pod);
        assert_eq!(
            pod["status"]["conditions"][1]["lastTransitionTime"],
            json!("2020-01-01T00:00:00Z")
        );
    }
}
