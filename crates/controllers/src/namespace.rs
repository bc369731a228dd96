//! The namespace controller (upstream's `pkg/controller/namespace`): a namespace being deleted
//! (`Terminating`, with the `kubernetes` finalizer in `spec.finalizers`) is emptied — every
//! namespaced resource the server serves (found by discovery, custom resources included) is
//! deleted with background propagation — its status conditions report progress
//! (`NamespaceContentRemaining`, `NamespaceFinalizersRemaining`, …), and once nothing is left the
//! `kubernetes` finalizer is removed through `namespaces/{name}/finalize`, after which the API
//! server removes the namespace.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
    discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::delay_queue::DelayQueue;

/// The finalizer the namespace controller owns.
pub const FINALIZER: &str = "kubernetes";
/// How long discovery results are reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(30);
/// The first and the longest wait before a namespace with content left is looked at again.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(8);

/// What one pass over a namespace found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Remaining {
    /// `resource.group` → objects left.
    pub resources: BTreeMap<String, usize>,
    /// Finalizer → objects carrying it.
    pub finalizers: BTreeMap<String, usize>,
    /// Resources that could not be listed or deleted, with the error.
    pub failures: Vec<String>,
}

impl Remaining {
    fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.failures.is_empty()
    }

    /// The five deletion conditions with upstream's reasons and messages.
    pub fn conditions(&self, discovery_failure: Option<&str>) -> Vec<NamespaceCondition> {
        let now = tug_client::now_time();
        let condition =
            |type_: &str, status: bool, reason: &str, message: String| NamespaceCondition {
                type_: type_.to_owned(),
                status: if status { "True" } else { "False" }.to_owned(),
                reason: Some(reason.to_owned()),
                message: Some(message),
                last_transition_time: Some(now.clone()),
            };
        let discovery = match discovery_failure {
            Some(e) => condition(
                "NamespaceDeletionDiscoveryFailure",
                true,
                "DiscoveryFailed",
                format!("Discovery failed for some groups: {e}"),
            ),
            None => condition(
                "NamespaceDeletionDiscoveryFailure",
                false,
                "ResourcesDiscovered",
                "All resources successfully discovered".into(),
            ),
        };
        let parsing = condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        );
        let content = if self.failures.is_empty() {
            condition(
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            )
        } else {
            condition(
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    self.failures.len(),
                    self.failures.join(", ")
                ),
            )
        };
        let remaining = if self.resources.is_empty() {
            condition(
                "NamespaceContentRemaining",
                false,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            let list: Vec<String> = self
                .resources
                .iter()
                .map(|(r, n)| format!("{r} has {n} resource instances"))
                .collect();
            condition(
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", list.join(", ")),
            )
        };
        let finalizers = if self.finalizers.is_empty() {
            condition(
                "NamespaceFinalizersRemaining",
                false,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            )
        } else {
            let list: Vec<String> = self
                .finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            condition(
                "NamespaceFinalizersRemaining",
                true,
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    list.join(", ")
                ),
            )
        };
        vec![discovery, parsing, content, remaining, finalizers]
    }
}

/// The namespaced resources that can be listed and deleted, refreshed every [`DISCOVERY_TTL`].
struct Resources {
    client: Client,
    fetched: Option<(Instant, Vec<(ApiResource, ApiCapabilities)>)>,
}

impl Resources {
    async fn get(&mut self) -> Result<&[(ApiResource, ApiCapabilities)], kube::Error> {
        let fresh = self
            .fetched
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < DISCOVERY_TTL);
        if !fresh {
            let discovery = Discovery::new(self.client.clone()).run().await?;
            let mut all = Vec::new();
            for group in discovery.groups() {
                for (ar, caps) in group.recommended_resources() {
                    if caps.scope == Scope::Namespaced
                        && caps.supports_operation(verbs::LIST)
                        && caps.supports_operation(verbs::DELETE)
                    {
                        all.push((ar, caps));
                    }
                }
            }
            self.fetched = Some((Instant::now(), all));
        }
        Ok(self.fetched.as_ref().map_or(&[][..], |(_, r)| r.as_slice()))
    }
}

fn resource_name(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    }
}

/// Deletes every object of every namespaced resource in `ns` and reports what is left.
async fn delete_content(
    client: &Client,
    resources: &[(ApiResource, ApiCapabilities)],
    ns: &str,
) -> Remaining {
    let mut remaining = Remaining::default();
    let background = DeleteParams::background();
    for (ar, caps) in resources {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
        let listed = match api.list_metadata(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => continue,
            Err(e) => {
                remaining
                    .failures
                    .push(format!("{}: {e}", resource_name(ar)));
                continue;
            }
        };
        if listed.is_empty() {
            continue;
        }
        let pending = listed
            .iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
            .count();
        if pending > 0 {
            let result = if caps.supports_operation(verbs::DELETE_COLLECTION) {
                api.delete_collection(&background, &ListParams::default())
                    .await
                    .map(|_| ())
            } else {
                let mut result = Ok(());
                for o in listed
                    .iter()
                    .filter(|o| o.metadata.deletion_timestamp.is_none())
                {
                    match api.delete(&o.name_any(), &background).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => result = Err(e),
                    }
                }
                result
            };
            if let Err(e) = result {
                remaining
                    .failures
                    .push(format!("{}: {e}", resource_name(ar)));
            }
        }
        // What is still there after the deletes (graceful pods, finalizers).
        let left = match api.list_metadata(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(_) => listed,
        };
        if !left.is_empty() {
            remaining.resources.insert(resource_name(ar), left.len());
            for o in &left {
                for f in o.finalizers() {
                    *remaining.finalizers.entry(f.clone()).or_default() += 1;
                }
            }
        }
    }
    remaining
}

/// One pass over namespace `name`: `Ok(true)` when it is done (gone, not being deleted, or
/// finalized), `Ok(false)` when content is left and it must be looked at again.
async fn sync(client: &Client, resources: &mut Resources, name: &str) -> Result<bool, kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = namespaces.get_opt(name).await? else {
        return Ok(true);
    };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(true);
    }
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(true);
    }
    let (remaining, discovery_failure) = match resources.get().await {
        Ok(list) => {
            let list = list.to_vec();
            (delete_content(client, &list, name).await, None)
        }
        Err(e) => (Remaining::default(), Some(e.to_string())),
    };
    let conditions = remaining.conditions(discovery_failure.as_deref());
    if status_changed(&ns, &conditions) {
        let patch = json!({ "status": { "phase": "Terminating", "conditions": conditions } });
        if let Err(e) = namespaces
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(namespace = name, error = %e, "cannot update the namespace status");
        }
    }
    if discovery_failure.is_some() || !remaining.is_empty() {
        return Ok(false);
    }
    // Empty: remove our finalizer; the API server deletes the namespace when none is left.
    let mut ns = namespaces.get(name).await?;
    if let Some(spec) = ns.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    let body = serde_json::to_vec(&ns).map_err(kube::Error::SerdeError)?;
    let request = http::Request::put(format!("/api/v1/namespaces/{name}/finalize"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(kube::Error::HttpError)?;
    match client.request::<Namespace>(request).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e),
    }
    tracing::info!(namespace = name, "namespace emptied and finalized");
    Ok(true)
}

/// Whether `conditions` differ from the namespace's (ignoring transition times).
fn status_changed(ns: &Namespace, conditions: &[NamespaceCondition]) -> bool {
    let key = |c: &NamespaceCondition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
        )
    };
    let old: BTreeSet<_> = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(key)
        .collect();
    let new: BTreeSet<_> = conditions.iter().map(key).collect();
    old != new
}

/// Runs the namespace controller until `stop` is cancelled.
pub async fn run(client: Client, stop: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut events = watcher(namespaces, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut resources = Resources {
        client: client.clone(),
        fetched: None,
    };
    let mut queue = DelayQueue::default();
    let mut retries: HashMap<String, Duration> = HashMap::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = events.next() => match event {
                Some(Ok(ns)) => {
                    if ns.metadata.deletion_timestamp.is_some() {
                        queue.add(ns.name_any(), Duration::ZERO);
                    }
                }
                Some(Err(e)) => tracing::debug!(error = %e, "namespace watch error"),
                None => return,
            },
            Some(name) = queue.next() => {
                match sync(&client, &mut resources, &name).await {
                    Ok(true) => { retries.remove(&name); }
                    result => {
                        if let Err(e) = result {
                            tracing::warn!(namespace = name, error = %e, "cannot finish deleting the namespace");
                        }
                        let delay = retries.get(&name).map_or(RETRY_MIN, |d| (*d * 2).min(RETRY_MAX));
                        retries.insert(name.clone(), delay);
                        queue.add(name, delay);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_say_what_is_left() {
        let mut remaining = Remaining::default();
        remaining.resources.insert("pods".into(), 2);
        remaining.finalizers.insert("example.com/keep".into(), 1);
        let conditions = remaining.conditions(None);
        let get = |t: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == t)
                .map(|c| (c.status.as_str(), c.message.clone().unwrap_or_default()))
                .expect("condition")
        };
        assert_eq!(
            get("NamespaceContentRemaining"),
            (
                "True",
                "Some resources are remaining: pods has 2 resource instances".into()
            )
        );
        assert_eq!(
            get("NamespaceFinalizersRemaining"),
            (
                "True",
                "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances".into()
            )
        );
        assert_eq!(get("NamespaceDeletionContentFailure").0, "False");
        assert_eq!(get("NamespaceDeletionDiscoveryFailure").0, "False");
        assert_eq!(conditions.len(), 5);
    }

    #[test]
    fn an_empty_namespace_reports_all_false() {
        let conditions = Remaining::default().conditions(None);
        assert!(conditions.iter().all(|c| c.status == "False"));
        let ns = Namespace::default();
        assert!(status_changed(&ns, &conditions));
    }
}
