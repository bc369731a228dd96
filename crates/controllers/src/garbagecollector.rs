//! The garbage collector (upstream's `pkg/controller/garbagecollector`): a graph of every
//! object's `ownerReferences`, kept from metadata-only watches of every resource the server
//! serves (found by discovery, refreshed so new resources join), acting as upstream does:
//!
//! - **background**: an object whose owners are all gone (absent, or present with another uid)
//!   is deleted; owners that are gone are dropped from an object that still has a live owner;
//! - **foreground**: an owner being deleted with the `foregroundDeletion` finalizer has its
//!   dependents deleted (in the foreground too when they have dependents of their own) and
//!   loses the finalizer once no dependent with `blockOwnerDeletion` is left;
//! - **orphan**: an owner being deleted with the `orphan` finalizer has its reference removed
//!   from every dependent, then loses the finalizer.
//!
//! An owner missing from the graph is verified with a GET before anything is deleted, and
//! ownership across namespaces follows upstream: a namespaced dependent's owner is looked up in
//! the dependent's namespace; a cluster-scoped dependent cannot have a namespaced owner.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::{StreamExt, stream::SelectAll};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy},
    core::PartialObjectMeta,
    discovery::{ApiResource, Discovery, Scope, verbs},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::delay_queue::DelayQueue;

/// The finalizer that deletes dependents before their owner.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer that orphans dependents.
pub const ORPHAN: &str = "orphan";
/// How often discovery is repeated to watch newly served resources.
const DISCOVERY_PERIOD: Duration = Duration::from_secs(30);
/// The wait before an item whose processing failed is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// A watched resource.
#[derive(Debug, Clone)]
struct Resource {
    ar: ApiResource,
    namespaced: bool,
}

/// One object in the graph.
#[derive(Debug, Clone)]
struct Item {
    resource: usize,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
}

impl Item {
    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }
}

/// How an owner reference resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner is gone (or another object now has its name).
    Dangling,
    /// The owner is being deleted in the foreground.
    WaitingForDependents,
}

/// What to do with an object that has owners, given each owner's state (upstream's
/// `attemptToDeleteItem` decision).
#[derive(Debug, PartialEq)]
enum Decision {
    /// Keep it as it is.
    Keep,
    /// Keep it, without the references to these owners (gone or waiting for dependents).
    DropOwners(Vec<String>),
    /// Delete it with this propagation.
    Delete(PropagationPolicy),
}

fn decide(owners: &[(OwnerReference, OwnerState)], item: &Item, has_dependents: bool) -> Decision {
    if owners.is_empty() {
        return Decision::Keep;
    }
    let solid = owners.iter().any(|(_, s)| *s == OwnerState::Solid);
    let waiting = owners
        .iter()
        .any(|(_, s)| *s == OwnerState::WaitingForDependents);
    if solid {
        let drop: Vec<String> = owners
            .iter()
            .filter(|(_, s)| *s != OwnerState::Solid)
            .map(|(o, _)| o.uid.clone())
            .collect();
        return if drop.is_empty() {
            Decision::Keep
        } else {
            Decision::DropOwners(drop)
        };
    }
    let policy = if waiting && has_dependents {
        PropagationPolicy::Foreground
    } else if item.has_finalizer(ORPHAN) {
        PropagationPolicy::Orphan
    } else if item.has_finalizer(FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    Decision::Delete(policy)
}

/// The graph and the resources it covers.
struct Graph {
    client: Client,
    resources: Vec<Resource>,
    /// `(group, kind)` → index in `resources`.
    kinds: HashMap<(String, String), usize>,
    items: HashMap<String, Item>,
    dependents: HashMap<String, HashSet<String>>,
    /// Per resource: whether its first list has been seen, and the uids seen during a relist.
    synced: Vec<bool>,
    relisting: HashMap<usize, HashSet<String>>,
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl Graph {
    fn all_synced(&self) -> bool {
        self.synced.iter().all(|s| *s)
    }

    fn api(&self, resource: usize, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = &self.resources[resource].ar;
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Records `meta` of `resource`; returns the uids that need a look.
    fn upsert(&mut self, resource: usize, meta: &ObjectMeta) -> Vec<String> {
        let Some(uid) = meta.uid.clone() else {
            return Vec::new();
        };
        let item = Item {
            resource,
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            owners: meta.owner_references.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
        };
        if let Some(seen) = self.relisting.get_mut(&resource) {
            seen.insert(uid.clone());
        }
        let old_owners: Vec<String> = self
            .items
            .get(&uid)
            .map(|i| i.owners.iter().map(|o| o.uid.clone()).collect())
            .unwrap_or_default();
        for o in &old_owners {
            if let Some(set) = self.dependents.get_mut(o) {
                set.remove(&uid);
            }
        }
        let mut look = Vec::new();
        for o in &item.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.clone());
            // An owner not in the graph, or one being deleted, decides this object's fate.
            match self.items.get(&o.uid) {
                None => look.push(uid.clone()),
                Some(owner) if owner.deleting => look.push(uid.clone()),
                Some(_) => {}
            }
        }
        // Owners that lost this dependent may now finish a foreground deletion.
        for o in old_owners {
            if !item.owners.iter().any(|n| n.uid == o) {
                look.push(o);
            }
        }
        if item.deleting && (item.has_finalizer(FOREGROUND) || item.has_finalizer(ORPHAN)) {
            look.push(uid.clone());
        }
        // A new owner may have dependents that were waiting for it (or it was recreated).
        if let Some(deps) = self.dependents.get(&uid) {
            look.extend(deps.iter().cloned());
        }
        self.items.insert(uid, item);
        look.sort();
        look.dedup();
        look
    }

    /// Removes `uid`; returns the uids that need a look (its dependents and owners).
    fn remove(&mut self, uid: &str) -> Vec<String> {
        let Some(item) = self.items.remove(uid) else {
            return Vec::new();
        };
        let mut look: Vec<String> = self
            .dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default();
        for o in &item.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(uid);
                if set.is_empty() && !self.items.contains_key(&o.uid) {
                    self.dependents.remove(&o.uid);
                }
            }
            look.push(o.uid.clone());
        }
        if self.dependents.get(uid).is_some_and(HashSet::is_empty) {
            self.dependents.remove(uid);
        }
        look
    }

    /// The state of `owner` as seen from `item`, asking the API server when the graph does not
    /// know it.
    async fn owner_state(
        &self,
        item: &Item,
        owner: &OwnerReference,
    ) -> Result<OwnerState, kube::Error> {
        if let Some(o) = self.items.get(&owner.uid) {
            return Ok(if o.deleting && o.has_finalizer(FOREGROUND) {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Solid
            });
        }
        let key = (group_of(&owner.api_version).to_owned(), owner.kind.clone());
        let Some(&resource) = self.kinds.get(&key) else {
            // A kind the server does not serve: the owner cannot exist.
            return Ok(OwnerState::Dangling);
        };
        let namespace = if self.resources[resource].namespaced {
            match &item.namespace {
                Some(ns) => Some(ns.as_str()),
                // A cluster-scoped object cannot be owned by a namespaced one.
                None => return Ok(OwnerState::Dangling),
            }
        } else {
            None
        };
        let api = self.api(resource, namespace);
        match api.get_metadata_opt(&owner.name).await? {
            None => Ok(OwnerState::Dangling),
            Some(o) if o.metadata.uid.as_deref() != Some(owner.uid.as_str()) => {
                Ok(OwnerState::Dangling)
            }
            Some(o) => Ok(
                if o.metadata.deletion_timestamp.is_some()
                    && o.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND)
                {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                },
            ),
        }
    }

    /// Processes one object; `Ok(())` when nothing more is needed for now.
    async fn process(&self, uid: &str) -> Result<(), kube::Error> {
        let Some(item) = self.items.get(uid).cloned() else {
            return Ok(());
        };
        tracing::trace!(uid, ?item, "garbage collector: processing");
        if item.deleting {
            if item.has_finalizer(ORPHAN) {
                return self.orphan_dependents(uid, &item).await;
            }
            if item.has_finalizer(FOREGROUND) {
                return self.delete_dependents(uid, &item).await;
            }
            return Ok(());
        }
        let mut owners = Vec::with_capacity(item.owners.len());
        for o in &item.owners {
            owners.push((o.clone(), self.owner_state(&item, o).await?));
        }
        let has_dependents = self.dependents.get(uid).is_some_and(|d| !d.is_empty());
        match decide(&owners, &item, has_dependents) {
            Decision::Keep => Ok(()),
            Decision::DropOwners(drop) => {
                self.patch_meta(&item, uid, |meta| {
                    let refs: Vec<OwnerReference> = meta
                        .owner_references
                        .iter()
                        .flatten()
                        .filter(|o| !drop.contains(&o.uid))
                        .cloned()
                        .collect();
                    ("ownerReferences", json!(refs))
                })
                .await
            }
            Decision::Delete(policy) => {
                tracing::debug!(
                    object = item.name,
                    namespace = item.namespace.as_deref().unwrap_or(""),
                    ?policy,
                    "deleting an object whose owners are gone"
                );
                self.delete(&item, uid, policy).await
            }
        }
    }

    /// Deletes `item` (if it is still the object with `uid`) with `policy`; gone or replaced
    /// is fine.
    async fn delete(
        &self,
        item: &Item,
        uid: &str,
        policy: PropagationPolicy,
    ) -> Result<(), kube::Error> {
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self
            .api(item.resource, item.namespace.as_deref())
            .delete(&item.name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes the owner `uid` from every dependent, then the `orphan` finalizer.
    async fn orphan_dependents(&self, uid: &str, item: &Item) -> Result<(), kube::Error> {
        for dep_uid in self.dependents.get(uid).into_iter().flatten() {
            let Some(dep) = self.items.get(dep_uid) else {
                continue;
            };
            self.patch_meta(dep, dep_uid, |meta| {
                let refs: Vec<OwnerReference> = meta
                    .owner_references
                    .iter()
                    .flatten()
                    .filter(|o| o.uid != uid)
                    .cloned()
                    .collect();
                ("ownerReferences", json!(refs))
            })
            .await?;
        }
        self.remove_finalizer(uid, item, ORPHAN).await
    }

    /// Deletes the dependents of a foreground deletion; drops the `foregroundDeletion`
    /// finalizer once none blocks it.
    async fn delete_dependents(&self, uid: &str, item: &Item) -> Result<(), kube::Error> {
        let mut blocking = false;
        for dep_uid in self.dependents.get(uid).into_iter().flatten() {
            let Some(dep) = self.items.get(dep_uid) else {
                continue;
            };
            if dep
                .owners
                .iter()
                .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            {
                blocking = true;
            }
            if dep.deleting {
                continue;
            }
            // Dependents with a live other owner keep living (only the reference goes).
            let mut owners = Vec::with_capacity(dep.owners.len());
            for o in &dep.owners {
                let state = if o.uid == uid {
                    OwnerState::WaitingForDependents
                } else {
                    self.owner_state(dep, o).await?
                };
                owners.push((o.clone(), state));
            }
            let has_dependents = self.dependents.get(dep_uid).is_some_and(|d| !d.is_empty());
            match decide(&owners, dep, has_dependents) {
                Decision::Delete(policy) => {
                    self.delete(dep, dep_uid, policy).await?;
                }
                Decision::DropOwners(drop) => {
                    self.patch_meta(dep, dep_uid, |meta| {
                        let refs: Vec<OwnerReference> = meta
                            .owner_references
                            .iter()
                            .flatten()
                            .filter(|o| !drop.contains(&o.uid))
                            .cloned()
                            .collect();
                        ("ownerReferences", json!(refs))
                    })
                    .await?;
                }
                Decision::Keep => {}
            }
        }
        if blocking {
            // Looked at again when a dependent goes away.
            return Ok(());
        }
        self.remove_finalizer(uid, item, FOREGROUND).await
    }

    async fn remove_finalizer(
        &self,
        uid: &str,
        item: &Item,
        finalizer: &str,
    ) -> Result<(), kube::Error> {
        self.patch_meta(item, uid, |meta| {
            let left: Vec<String> = meta
                .finalizers
                .iter()
                .flatten()
                .filter(|f| *f != finalizer)
                .cloned()
                .collect();
            ("finalizers", json!(left))
        })
        .await
    }

    /// Reads the object fresh and merge-patches one metadata field, guarded by its
    /// resourceVersion (a concurrent change fails the patch with 409 and the item is retried).
    async fn patch_meta(
        &self,
        item: &Item,
        uid: &str,
        replace: impl Fn(&ObjectMeta) -> (&'static str, serde_json::Value),
    ) -> Result<(), kube::Error> {
        let api = self.api(item.resource, item.namespace.as_deref());
        let Some(current) = api.get_metadata_opt(&item.name).await? else {
            return Ok(());
        };
        if current.metadata.uid.as_deref() != Some(uid) {
            return Ok(());
        }
        let (field, value) = replace(&current.metadata);
        let patch = json!({ "metadata": {
            "resourceVersion": current.metadata.resource_version,
            field: value,
        } });
        match api
            .patch_metadata(&item.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

type MetaEvent = (
    usize,
    Result<watcher::Event<PartialObjectMeta<DynamicObject>>, watcher::Error>,
);

/// Discovers the resources the collector can manage: listable, watchable, deletable, patchable.
async fn discover(client: &Client) -> Result<Vec<Resource>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if [verbs::LIST, verbs::WATCH, verbs::DELETE, verbs::PATCH]
                .iter()
                .all(|v| caps.supports_operation(v))
            {
                out.push(Resource {
                    ar,
                    namespaced: caps.scope == Scope::Namespaced,
                });
            }
        }
    }
    Ok(out)
}

fn watch(
    client: &Client,
    index: usize,
    resource: &Resource,
) -> futures::stream::BoxStream<'static, MetaEvent> {
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), &resource.ar);
    watcher(api, watcher::Config::default())
        .default_backoff()
        .map(move |e| (index, e))
        .boxed()
}

/// Runs the garbage collector until `stop` is cancelled.
pub async fn run(client: Client, stop: CancellationToken) {
    let resources = loop {
        match discover(&client).await {
            Ok(r) => break r,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector: discovery failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    };
    let mut graph = Graph {
        client: client.clone(),
        resources: Vec::new(),
        kinds: HashMap::new(),
        items: HashMap::new(),
        dependents: HashMap::new(),
        synced: Vec::new(),
        relisting: HashMap::new(),
    };
    let mut streams: SelectAll<futures::stream::BoxStream<'static, MetaEvent>> = SelectAll::new();
    let add_resources = |graph: &mut Graph, streams: &mut SelectAll<_>, found: Vec<Resource>| {
        for r in found {
            let key = (r.ar.group.clone(), r.ar.kind.clone());
            if graph.kinds.contains_key(&key) {
                continue;
            }
            let index = graph.resources.len();
            streams.push(watch(&client, index, &r));
            graph.kinds.insert(key, index);
            graph.resources.push(r);
            graph.synced.push(false);
        }
    };
    add_resources(&mut graph, &mut streams, resources);
    let mut queue = DelayQueue::default();
    let mut rediscover = tokio::time::interval(DISCOVERY_PERIOD);
    rediscover.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = rediscover.tick() => {
                if let Ok(found) = discover(&client).await {
                    add_resources(&mut graph, &mut streams, found);
                }
            }
            Some((index, event)) = streams.next() => {
                let look = match event {
                    Ok(watcher::Event::Init) => {
                        graph.relisting.insert(index, HashSet::new());
                        Vec::new()
                    }
                    Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => {
                        graph.upsert(index, &o.metadata)
                    }
                    Ok(watcher::Event::InitDone) => {
                        graph.synced[index] = true;
                        let seen = graph.relisting.remove(&index).unwrap_or_default();
                        let gone: Vec<String> = graph
                            .items
                            .iter()
                            .filter(|(uid, i)| i.resource == index && !seen.contains(*uid))
                            .map(|(uid, _)| uid.clone())
                            .collect();
                        gone.iter().flat_map(|uid| graph.remove(uid)).collect()
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        o.metadata.uid.as_deref().map(|uid| graph.remove(uid)).unwrap_or_default()
                    }
                    Err(e) => {
                        tracing::debug!(resource = graph.resources[index].ar.plural, error = %e, "garbage collector watch error");
                        Vec::new()
                    }
                };
                for uid in look {
                    queue.add(uid, Duration::ZERO);
                }
            }
            Some(uid) = queue.next(), if graph.all_synced() => {
                if let Err(e) = graph.process(&uid).await {
                    tracing::debug!(uid, error = %e, "garbage collector: retrying an item");
                    queue.add(uid, RETRY);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: format!("rs-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn item(finalizers: &[&str]) -> Item {
        Item {
            resource: 0,
            namespace: Some("default".into()),
            name: "p".into(),
            owners: Vec::new(),
            deleting: false,
            finalizers: finalizers.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn decisions_follow_upstream() {
        use OwnerState::*;
        type Case = (
            Vec<(OwnerReference, OwnerState)>,
            &'static [&'static str],
            bool,
            Decision,
        );
        let cases: Vec<Case> = vec![
            (vec![], &[], false, Decision::Keep),
            (vec![(owner("a", true), Solid)], &[], false, Decision::Keep),
            (
                vec![(owner("a", true), Dangling)],
                &[],
                false,
                Decision::Delete(PropagationPolicy::Background),
            ),
            (
                vec![(owner("a", true), Solid), (owner("b", true), Dangling)],
                &[],
                false,
                Decision::DropOwners(vec!["b".into()]),
            ),
            (
                vec![(owner("a", true), WaitingForDependents)],
                &[],
                true,
                Decision::Delete(PropagationPolicy::Foreground),
            ),
            (
                vec![(owner("a", true), WaitingForDependents)],
                &[],
                false,
                Decision::Delete(PropagationPolicy::Background),
            ),
            (
                vec![(owner("a", true), Dangling)],
                &[ORPHAN],
                true,
                Decision::Delete(PropagationPolicy::Orphan),
            ),
        ];
        for (owners, finalizers, deps, expected) in cases {
            assert_eq!(
                decide(&owners, &item(finalizers), deps),
                expected,
                "{owners:?} {finalizers:?}"
            );
        }
    }

    #[test]
    fn groups_come_from_api_versions() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("example.com/v1beta1"), "example.com");
    }
}
