//! The registry: one generic store per served resource over the datastore, with a small
//! strategy per resource (defaulting, validation, status handling) and a watch cache.
//!
//! This module is the seam between the HTTP layer (`handlers`) and storage. The HTTP layer
//! decodes requests (JSON, YAML, protobuf), checks unknown fields, applies patches and server-side
//! apply, negotiates output (objects, lists, `Table`) and streams watches; the registry owns
//! everything about objects at rest: keys, resourceVersions, uids, generations, optimistic
//! concurrency, finalizers and graceful deletion, admission, defaulting and validation, the
//! watch cache, and the subresources that live in the object (`status`, `scale`, `binding`).
//!
//! Every error is a ready-to-send upstream [`Status`].
//!
//! How it is put together (upstream's `registry/generic/registry` and `storage/cacher`):
//!
//! - `store` (reads: keys, resource-version semantics, pagination, watches), `write`
//!   (creates and updates: `BeforeCreate`, `BeforeUpdate`, the `GuaranteedUpdate` loop) and
//!   `delete` (graceful deletion, finalizers, propagation policies, the namespace two-phase
//!   delete) are the generic store, one instance per served resource.
//! - `strategy` is the per-resource rule set; `strategies` holds the table that gives every
//!   kind its strategy, with the kinds that have real logic (pods, namespaces, jobs) in files
//!   of their own. `hooks` is the single seam where per-kind defaulting and validation from
//!   `tug_api` plug in; `validation` checks the object meta every kind shares.
//! - `cacher` is the watch cache of one storage prefix: one datastore watch, the current
//!   objects, a window of recent changes (at least 1000 and up to 75 s of them, capped at
//!   100 000), the watchers. Lists at `resourceVersion=0` and `NotOlderThan`, consistent lists
//!   (after waiting for the cache to reach the datastore's current revision, with a progress
//!   request) and all watches are served from it; gets without a resource version, `Exact`
//!   lists and paged lists read the datastore.
//! - `codec` stores objects as JSON in the storage version without `resourceVersion`;
//!   `convert` serves events.k8s.io/v1 Events and autoscaling/v1 HorizontalPodAutoscalers
//!   from the core/v1 and autoscaling/v2 objects they are stored as.
//! - `subresources` (`status`, `scale`, `finalize`, `pods/binding`), `eviction`
//!   (`pods/eviction` with disruption budgets), `admission` (NamespaceLifecycle), `fields`
//!   (selectable fields per kind), `continue_token` (upstream's token format), `objmeta`
//!   (uids, names, timestamps, JSON helpers).

mod admission;
mod cacher;
mod codec;
mod continue_token;
mod convert;
mod delete;
mod eviction;
mod fields;
mod hooks;
mod objmeta;
mod store;
mod strategies;
mod strategy;
mod subresources;
mod validation;
mod write;

use std::{collections::BTreeMap, pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tug_api::catalog::{self, Resource};
use tug_apimachinery::{
    fields::FieldSelector,
    labels::Selector,
    status::{Status, reason},
    watch::WatchEvent,
};
use tug_storage::Store;

use self::{cacher::Cacher, store::Shared, strategy::Strategy};
use crate::authn::UserInfo;

/// The result type of registry operations: errors are upstream `Status` objects.
pub type Result<T, E = Box<Status>> = std::result::Result<T, E>;

/// Who is asking, and how.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// The authenticated user (admission uses it, e.g. NodeRestriction later).
    pub user: UserInfo,
    /// The namespace from the URL; `None` for cluster-scoped resources and all-namespace
    /// requests.
    pub namespace: Option<String>,
    /// `dryRun=All`: run every step, persist nothing.
    pub dry_run: bool,
    /// The `User-Agent`, for defaults that upstream derives from it.
    pub user_agent: String,
}

/// `resourceVersion` / `resourceVersionMatch` of a get, list or watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceVersionQuery {
    /// The `resourceVersion` parameter as sent (`None` when absent; `"0"` is "any").
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`: `NotOlderThan` or `Exact`.
    pub resource_version_match: Option<String>,
}

/// The options of a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: Option<Selector>,
    /// `fieldSelector` (the registry rejects fields the kind does not support, as upstream).
    pub field_selector: Option<FieldSelector>,
    /// `limit` (0: no limit).
    pub limit: i64,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion` / `resourceVersionMatch`.
    pub version: ResourceVersionQuery,
}

/// A list result, before the HTTP layer wraps it into a `<Kind>List` or a `Table`.
#[derive(Clone, Debug, Default)]
pub struct ObjectList {
    /// The objects, each with `apiVersion`, `kind` and `metadata.resourceVersion` set.
    pub items: Vec<Value>,
    /// `metadata.resourceVersion` of the list.
    pub resource_version: String,
    /// `metadata.continue`, when more items remain.
    pub continue_token: Option<String>,
    /// `metadata.remainingItemCount`, when known.
    pub remaining_item_count: Option<i64>,
}

/// The options of a watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// `labelSelector`.
    pub label_selector: Option<Selector>,
    /// `fieldSelector`.
    pub field_selector: Option<FieldSelector>,
    /// `resourceVersion` / `resourceVersionMatch`.
    pub version: ResourceVersionQuery,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `timeoutSeconds` (the HTTP layer also caps the watch with upstream's random
    /// 30–60 min default).
    pub timeout: Option<Duration>,
}

/// A running watch: events in order; a `410 Expired` arrives as an `ERROR` event.
pub type EventStream = Pin<Box<dyn Stream<Item = WatchEvent> + Send>>;

/// The function a PATCH (or apply) computes the new object with, from the current one
/// (`None` if the object does not exist).
pub type Transformer = Box<dyn Fn(Option<&Value>) -> Result<Value> + Send + Sync>;

/// How an update computes the new object.
pub enum Update {
    /// PUT: the object sent by the client (its `metadata.resourceVersion`, if set, is a
    /// precondition: a mismatch is `409 Conflict`).
    Replace(Value),
    /// PATCH (and server-side apply): derive the new object from the current one (`None` if
    /// the object does not exist). Called again with the fresh object after a conflict,
    /// unless the result carries a `resourceVersion` that no longer matches.
    Transform(Transformer),
}

impl std::fmt::Debug for Update {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Replace(obj) => f.debug_tuple("Replace").field(obj).finish(),
            Self::Transform(_) => f.write_str("Transform(..)"),
        }
    }
}

/// The result of an update.
#[derive(Clone, Debug)]
pub struct Updated {
    /// The object as stored (or as it would be, on dry run).
    pub object: Value,
    /// Whether the update created the object (PUT or apply of an absent object: `201`).
    pub created: bool,
}

/// The options of a delete (`DeleteOptions` body and query).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`: `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    /// `orphanDependents` (deprecated form of `Orphan`).
    pub orphan_dependents: Option<bool>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
}

/// The result of a delete.
#[derive(Clone, Debug)]
pub struct Deleted {
    /// The object: its last state if it is gone, its current state (with
    /// `deletionTimestamp`) if deletion is pending on finalizers or a grace period.
    pub object: Value,
    /// Whether the object is gone from storage.
    pub finished: bool,
}

/// How the registry paces and sizes its watch caches. The defaults follow upstream; tests
/// shorten the intervals.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// How often a watch that allows bookmarks gets one (upstream: about every minute).
    pub bookmark_interval: Duration,
    /// How often the datastore reports progress on an idle resource, so that the cache's
    /// resource version stays fresh.
    pub progress_interval: Duration,
    /// The watch window keeps at least this many recent changes per resource, however old.
    pub window_min_events: usize,
    /// The watch window keeps at most this many changes per resource.
    pub window_max_events: usize,
    /// Changes beyond the minimum stay in the window this long (upstream sizes its watch
    /// cache to about 75 seconds of history).
    pub window_duration: Duration,
    /// How many changes a watcher may have queued before it is closed as too slow.
    pub watcher_buffer: usize,
    /// How long a read with a resource version waits for the cache to catch up before it
    /// fails with `504` (or, for consistent lists, reads the datastore instead).
    pub fresh_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            bookmark_interval: Duration::from_secs(60),
            progress_interval: Duration::from_secs(5),
            window_min_events: 1_000,
            window_max_events: 100_000,
            window_duration: Duration::from_secs(75),
            watcher_buffer: 4_096,
            fresh_timeout: Duration::from_secs(3),
        }
    }
}

impl RegistryOptions {
    fn cache_options(&self) -> cacher::CacheOptions {
        cacher::CacheOptions {
            window_min_events: self.window_min_events,
            window_max_events: self.window_max_events.max(1),
            window_duration: self.window_duration,
            watcher_buffer: self.watcher_buffer,
            bookmark_interval: self.bookmark_interval,
            progress_interval: self.progress_interval,
            fresh_timeout: self.fresh_timeout,
        }
    }
}

/// The namespaces every cluster has, created by [`Registry::start`].
pub const BOOTSTRAP_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Every served resource's store, built from the catalogue. Dropping it stops the watch
/// caches (and ends their watches).
#[derive(Debug)]
pub struct Registry {
    stores: BTreeMap<(&'static str, &'static str, &'static str), Arc<ResourceStore>>,
    shutdown: CancellationToken,
}

impl Registry {
    /// Builds a store for every stored resource of the catalogue over `store`, starts their
    /// watch caches, and ensures the namespaces `default`, `kube-system`, `kube-public` and
    /// `kube-node-lease` exist. Returns once every watch cache has its initial state.
    pub async fn start(store: Arc<dyn Store>) -> Result<Self, RegistryError> {
        Self::start_with_options(store, RegistryOptions::default()).await
    }

    /// [`Registry::start`] with explicit options.
    pub async fn start_with_options(
        store: Arc<dyn Store>,
        options: RegistryOptions,
    ) -> Result<Self, RegistryError> {
        let shutdown = CancellationToken::new();
        let mut prefixes: BTreeMap<&'static str, &'static Resource> = BTreeMap::new();
        for resource in catalog::resources() {
            if let Some(storage) = resource.storage {
                prefixes.entry(storage.prefix).or_insert(resource);
            }
        }
        let starts = prefixes.iter().map(|(prefix, resource)| {
            let store = store.clone();
            let options = options.cache_options();
            let shutdown = shutdown.clone();
            async move {
                let cacher = Cacher::start(
                    store,
                    format!("{prefix}/"),
                    resource.kind,
                    resource.namespaced,
                    options,
                    shutdown,
                )
                .await
                .map_err(|source| RegistryError::Load {
                    resource: resource.group_resource(),
                    source,
                })?;
                Ok::<_, RegistryError>((*prefix, cacher))
            }
        });
        let mut cachers: BTreeMap<&'static str, Arc<Cacher>> = BTreeMap::new();
        for started in futures::future::join_all(starts).await {
            match started {
                Ok((prefix, cacher)) => {
                    cachers.insert(prefix, cacher);
                }
                Err(e) => {
                    shutdown.cancel();
                    return Err(e);
                }
            }
        }
        let Some(namespaces) = cachers.get("/registry/namespaces").cloned() else {
            shutdown.cancel();
            return Err(RegistryError::Bootstrap {
                object: "namespaces".to_owned(),
                message: "the catalogue does not store namespaces".to_owned(),
            });
        };
        let priority_classes = cachers.get("/registry/priorityclasses").cloned();
        let shared = Arc::new(Shared::new(store, namespaces, priority_classes));
        let mut stores = BTreeMap::new();
        for resource in catalog::resources() {
            let Some(storage) = resource.storage else {
                continue;
            };
            let Some(cacher) = cachers.get(storage.prefix).cloned() else {
                continue;
            };
            stores.insert(
                (resource.group, resource.version, resource.plural),
                Arc::new(ResourceStore {
                    resource,
                    strategy: strategies::for_resource(resource),
                    cacher,
                    shared: shared.clone(),
                }),
            );
        }
        let registry = Self { stores, shutdown };
        registry.bootstrap().await?;
        Ok(registry)
    }

    /// Creates the namespaces and priority classes every cluster has, unless they exist.
    async fn bootstrap(&self) -> Result<(), RegistryError> {
        let mut objects: Vec<(&str, &str, &str, Value)> = BOOTSTRAP_NAMESPACES
            .iter()
            .map(|name| {
                (
                    "",
                    "v1",
                    "namespaces",
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
                )
            })
            .collect();
        for (name, value) in admission::SYSTEM_PRIORITY_CLASSES {
            objects.push((
                "scheduling.k8s.io",
                "v1",
                "priorityclasses",
                json!({
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": value,
                    "description": "Used for system critical pods that must not be moved from their current node.",
                }),
            ));
        }
        let ctx = RequestContext::default();
        for (group, version, plural, object) in objects {
            let Some(store) = self.get(group, version, plural) else {
                continue;
            };
            let name = objmeta::str_at(&object, &["metadata", "name"])
                .unwrap_or_default()
                .to_owned();
            match store.create(&ctx, object, None, None).await {
                Ok(_) => tracing::info!(resource = plural, %name, "created bootstrap object"),
                Err(status) if status.reason == reason::ALREADY_EXISTS => {}
                Err(status) => {
                    return Err(RegistryError::Bootstrap {
                        object: format!("{plural} {name:?}"),
                        message: status.message,
                    });
                }
            }
        }
        Ok(())
    }

    /// The store serving `group`/`version`/`plural`, if it is served.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<ResourceStore>> {
        self.stores
            .iter()
            .find(|((g, v, p), _)| *g == group && *v == version && *p == plural)
            .map(|(_, store)| store)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The datastore failed while loading the initial state.
    #[error("loading {resource} from the datastore: {source}")]
    Load {
        /// The resource being loaded.
        resource: String,
        /// The datastore error.
        #[source]
        source: tug_storage::Error,
    },
    /// Creating a bootstrap object failed.
    #[error("creating {object}: {message}")]
    Bootstrap {
        /// The object, e.g. `namespaces "default"`.
        object: String,
        /// Why.
        message: String,
    },
}

/// The store of one resource (in one group-version), with its subresources.
#[derive(Debug)]
pub struct ResourceStore {
    resource: &'static Resource,
    strategy: Arc<dyn Strategy>,
    cacher: Arc<Cacher>,
    shared: Arc<Shared>,
}

impl ResourceStore {
    /// The catalogue entry this store serves.
    pub fn resource(&self) -> &'static Resource {
        self.resource
    }

    /// GET one object (`subresource` `None`, `status` or `scale`).
    pub async fn get(
        &self,
        ctx: &RequestContext,
        name: &str,
        subresource: Option<&str>,
        version: &ResourceVersionQuery,
    ) -> Result<Value> {
        self.get_impl(ctx, name, subresource, version).await
    }

    /// LIST objects (in `ctx.namespace`, or everywhere when it is `None`).
    pub async fn list(&self, ctx: &RequestContext, options: &ListOptions) -> Result<ObjectList> {
        self.list_impl(ctx, options).await
    }

    /// WATCH objects (in `ctx.namespace`, or everywhere).
    pub async fn watch(&self, ctx: &RequestContext, options: &WatchOptions) -> Result<EventStream> {
        self.watch_impl(ctx, options).await
    }

    /// CREATE an object already decoded and checked for unknown fields by the HTTP layer
    /// (`subresource`: `None`, or `binding`/`eviction` style creates on a named object).
    pub async fn create(
        &self,
        ctx: &RequestContext,
        object: Value,
        name: Option<&str>,
        subresource: Option<&str>,
    ) -> Result<Value> {
        self.create_impl(ctx, object, name, subresource).await
    }

    /// UPDATE (PUT or PATCH) an object or its `status`/`scale` subresource.
    pub async fn update(
        &self,
        ctx: &RequestContext,
        name: &str,
        subresource: Option<&str>,
        update: Update,
    ) -> Result<Updated> {
        self.update_impl(ctx, name, subresource, update).await
    }

    /// DELETE one object.
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted> {
        self.delete_impl(ctx, name, options).await
    }

    /// DELETE every object a list would return; answers with the deleted objects.
    pub async fn delete_collection(
        &self,
        ctx: &RequestContext,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<ObjectList> {
        self.delete_collection_impl(ctx, list, options).await
    }
}
