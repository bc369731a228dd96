//! Admission the registry applies itself: NamespaceLifecycle (upstream's
//! `plugin/namespace/lifecycle`): no new content in a namespace that does not exist (`404`) or
//! is being terminated (`403`). The namespace is read from the namespaces' watch cache, or from
//! the datastore when the cache does not have it or it was deleted moments ago.

use serde_json::Value;
use tug_apimachinery::{Status, status::StatusCause};

use super::{ResourceStore, Result, codec, objmeta};

/// The cause type upstream attaches to a refusal in a terminating namespace.
const NAMESPACE_TERMINATING_CAUSE: &str = "NamespaceTerminating";

/// Checks that `namespace` exists and is not terminating before something is created in it.
/// Namespaces themselves and cluster-scoped resources always pass.
pub(crate) async fn namespace_lifecycle(
    store: &ResourceStore,
    namespace: Option<&str>,
    name: &str,
) -> Result<()> {
    let resource = store.resource;
    if !resource.namespaced || (resource.group.is_empty() && resource.kind == "Namespace") {
        return Ok(());
    }
    let Some(namespace) = namespace else {
        return Ok(());
    };
    let shared = &store.shared;
    let key = format!("{}{namespace}", shared.namespaces.prefix());
    let cached = shared.namespaces.get(&key).0.map(|o| o.value.clone());
    let found: Option<Value> = match cached {
        Some(ns) if !shared.needs_live_lookup(namespace) => Some(ns),
        _ => match shared.store.get(&key).await {
            Ok(Some(kv)) => Some(codec::decode(&kv).map_err(|e| super::store::decode_error(&e))?),
            Ok(None) => None,
            Err(e) => {
                return Err(super::store::storage_error(
                    &e,
                    &tug_apimachinery::GroupResource::new("", "namespaces"),
                    "get",
                ));
            }
        },
    };
    let Some(ns) = found else {
        return Err(Box::new(Status::not_found(
            &tug_apimachinery::GroupResource::new("", "namespaces"),
            namespace,
        )));
    };
    if objmeta::str_at(&ns, &["status", "phase"]) == Some("Terminating") {
        let mut status = Status::forbidden(
            &store.group_resource(),
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        );
        if let Some(details) = status.details.as_mut() {
            details.causes.push(StatusCause {
                reason: NAMESPACE_TERMINATING_CAUSE.to_owned(),
                message: format!("namespace {namespace} is being terminated"),
                field: "metadata.namespace".to_owned(),
            });
        }
        return Err(Box::new(status));
    }
    Ok(())
}
