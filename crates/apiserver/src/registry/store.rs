//! The generic store's read side (upstream's `registry/generic/registry/store.go` with the
//! `cacher` and `etcd3` read paths): keys, resource-version semantics for get, list and watch,
//! pagination with continue tokens, and what every operation shares.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::stream;
use serde_json::Value;
use tug_apimachinery::{
    GroupKind, GroupResource, Status,
    validation::{ErrorList, FieldError, Path},
    watch::WatchEvent,
};
use tug_storage::{LeaseId, RangeRequest, Revision, Store, prefix_end};

use super::{
    EventStream, ListOptions, ObjectList, RequestContext, ResourceStore, ResourceVersionQuery,
    Result, WatchOptions,
    cacher::{CacheWatch, CachedObject, Cacher, Start},
    codec, continue_token,
    fields::Predicate,
    subresources, validation,
};

/// How long Events live in the datastore after their last write (upstream's `--event-ttl`).
pub(crate) const EVENT_TTL: Duration = Duration::from_secs(3600);

/// How long one granted lease is reused for further Event writes (upstream's lease manager
/// reuses leases for a minute).
const LEASE_REUSE: Duration = Duration::from_secs(60);

/// How long admission reads a namespace from the datastore rather than the cache after it was
/// deleted (upstream's `forceLiveLookupTTL`).
const LIVE_LOOKUP: Duration = Duration::from_secs(30);

/// The most keys one storage read of a list fetches (upstream's `maxLimit`).
const MAX_FETCH: usize = 10_000;

/// What every store of a registry shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The datastore.
    pub store: Arc<dyn Store>,
    /// The namespaces' watch cache, for admission.
    pub namespaces: Arc<Cacher>,
    /// The priority classes' watch cache, for Priority admission.
    pub priority_classes: Option<Arc<Cacher>>,
    /// Leases for Events.
    pub leases: LeaseManager,
    /// Namespaces deleted recently: admission reads them from the datastore.
    recently_deleted: Mutex<HashMap<String, Instant>>,
}

impl Shared {
    /// Shared state over a datastore.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        namespaces: Arc<Cacher>,
        priority_classes: Option<Arc<Cacher>>,
    ) -> Self {
        Self {
            store,
            namespaces,
            priority_classes,
            leases: LeaseManager::default(),
            recently_deleted: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that a namespace is being deleted.
    pub(crate) fn namespace_deleted(&self, name: &str) {
        let mut map = self
            .recently_deleted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, at| at.elapsed() < LIVE_LOOKUP);
        map.insert(name.to_owned(), Instant::now());
    }

    /// Whether a namespace was deleted recently enough that the cache may lag behind.
    pub(crate) fn needs_live_lookup(&self, name: &str) -> bool {
        self.recently_deleted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .is_some_and(|at| at.elapsed() < LIVE_LOOKUP)
    }
}

/// Hands out datastore leases for Events, reusing one lease for a minute of writes.
#[derive(Debug, Default)]
pub(crate) struct LeaseManager {
    current: tokio::sync::Mutex<Option<(LeaseId, Instant)>>,
}

impl LeaseManager {
    /// A lease that keeps a key for at least `ttl`.
    pub(crate) async fn lease(
        &self,
        store: &dyn Store,
        ttl: Duration,
    ) -> tug_storage::Result<LeaseId> {
        let mut current = self.current.lock().await;
        if let Some((id, granted)) = *current
            && granted.elapsed() < LEASE_REUSE
        {
            return Ok(id);
        }
        let id = store.lease_grant(ttl + LEASE_REUSE).await?;
        *current = Some((id, Instant::now()));
        Ok(id)
    }
}

/// A parsed `resourceVersion` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rv {
    /// Absent or empty: the newest state (a consistent read).
    Unset,
    /// `0`: any state the server has.
    Any,
    /// A revision.
    At(Revision),
}

impl Rv {
    /// Parses the parameter; garbage is a `400 BadRequest`.
    pub(crate) fn parse(rv: Option<&str>) -> Result<Self> {
        match rv {
            None | Some("") => Ok(Rv::Unset),
            Some("0") => Ok(Rv::Any),
            Some(s) => match s.parse::<u64>() {
                Ok(n) => Ok(Rv::At(i64::try_from(n).unwrap_or(i64::MAX))),
                Err(_) => {
                    let q = super::objmeta::quote(s);
                    Err(Box::new(Status::bad_request(&format!(
                        "invalid resource version: resourceVersion: Invalid value: {q}: strconv.ParseUint: parsing {q}: invalid syntax"
                    ))))
                }
            },
        }
    }
}

/// `u64` for the `Status` constructors that take revisions.
pub(crate) fn unsigned(revision: Revision) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

/// Upstream's `ValidateListOptions` for lists and watches (`422` on `ListOptions.meta.k8s.io`).
fn validate_list_options(
    version: &ResourceVersionQuery,
    continue_token: Option<&str>,
    watch: Option<Option<bool>>,
) -> Result<()> {
    let mut errs = ErrorList::new();
    let path = Path::new("resourceVersionMatch");
    let rv = version.resource_version.as_deref().unwrap_or("");
    let has_continue = continue_token.is_some_and(|c| !c.is_empty());
    let matching = version
        .resource_version_match
        .as_deref()
        .filter(|m| !m.is_empty());
    match watch {
        None => {
            if let Some(m) = matching {
                if rv.is_empty() {
                    errs.push(FieldError::forbidden(
                        &path,
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                if has_continue {
                    errs.push(FieldError::forbidden(
                        &path,
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
                if m != "Exact" && m != "NotOlderThan" {
                    errs.push(FieldError::not_supported(
                        &path,
                        m,
                        &["Exact", "NotOlderThan", ""],
                    ));
                }
                if m == "Exact" && rv == "0" {
                    errs.push(FieldError::forbidden(
                        &path,
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
            }
        }
        Some(send_initial_events) => {
            if send_initial_events.is_some() && matching != Some("NotOlderThan") {
                errs.push(FieldError::forbidden(
                    &path,
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if let Some(m) = matching {
                if send_initial_events.is_none() {
                    errs.push(FieldError::forbidden(
                        &path,
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if m != "NotOlderThan" {
                    errs.push(FieldError::not_supported(&path, m, &["NotOlderThan"]));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Box::new(Status::invalid(
            &GroupKind::new("meta.k8s.io", "ListOptions"),
            "",
            &errs,
        )))
    }
}

/// Maps a datastore failure to the `Status` upstream answers with: `504` for an unreachable
/// datastore, `500` for everything else. Never includes object contents.
pub(crate) fn storage_error(
    err: &tug_storage::Error,
    resource: &GroupResource,
    operation: &str,
) -> Box<Status> {
    match err {
        tug_storage::Error::FutureRevision { requested, current } => Box::new(
            Status::too_large_resource_version(unsigned(*requested), unsigned(*current), 1),
        ),
        tug_storage::Error::Compacted { .. } => Box::new(Status::resource_expired(
            "The resourceVersion for the provided list is too old.",
        )),
        tug_storage::Error::Unavailable { .. } => {
            tracing::warn!(%resource, operation, error = %err, "datastore unavailable");
            Box::new(Status::timeout(
                &format!(
                    "the {operation} operation against {resource} timed out waiting for the datastore"
                ),
                2,
            ))
        }
        _ => {
            tracing::error!(%resource, operation, error = %err, "datastore failure");
            Box::new(Status::internal_error(&err.to_string()))
        }
    }
}

/// A stored object that cannot be decoded: `500`.
pub(crate) fn decode_error(err: &codec::CodecError) -> Box<Status> {
    tracing::error!(error = %err, "corrupt object in the datastore");
    Box::new(Status::internal_error(&err.to_string()))
}

/// A watch that only reports an error.
fn error_stream(status: &Status) -> EventStream {
    Box::pin(stream::iter([WatchEvent::error(status)]))
}

impl ResourceStore {
    /// `pods`, `deployments.apps`: the name in error messages.
    pub(crate) fn group_resource(&self) -> GroupResource {
        GroupResource::new(self.resource.group, self.resource.plural)
    }

    /// `Pod`, `Deployment.apps`: the kind in `Invalid` errors.
    pub(crate) fn group_kind(&self) -> GroupKind {
        GroupKind::new(self.resource.group, self.resource.kind)
    }

    /// The namespace of a request on one object: required for namespaced resources, ignored
    /// for cluster-scoped ones.
    pub(crate) fn object_namespace<'a>(&self, ctx: &'a RequestContext) -> Result<Option<&'a str>> {
        if !self.resource.namespaced {
            return Ok(None);
        }
        match ctx.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => Ok(Some(ns)),
            _ => Err(Box::new(Status::bad_request(
                "Namespace parameter required.",
            ))),
        }
    }

    /// The namespace a list or watch is limited to, if any.
    pub(crate) fn list_namespace<'a>(&self, ctx: &'a RequestContext) -> Option<&'a str> {
        ctx.namespace
            .as_deref()
            .filter(|ns| self.resource.namespaced && !ns.is_empty())
    }

    /// The datastore key of one object (upstream's `NamespaceKeyFunc`, which also refuses names
    /// that are not path segments).
    pub(crate) fn key(&self, ctx: &RequestContext, name: &str) -> Result<String> {
        let namespace = self.object_namespace(ctx)?;
        let problems = validation::path_segment_problems(name, false);
        if name.is_empty() || !problems.is_empty() {
            return Err(Box::new(Status::bad_request(&format!(
                "Name parameter invalid: {}: {}",
                super::objmeta::quote(name),
                problems.join(";")
            ))));
        }
        self.resource
            .key(namespace, name)
            .ok_or_else(|| Box::new(Status::internal_error("resource has no storage")))
    }

    /// The key prefix a list or watch covers.
    pub(crate) fn list_prefix(&self, namespace: Option<&str>) -> String {
        self.resource
            .key_prefix(namespace)
            .unwrap_or_else(|| self.cacher.prefix().to_owned())
    }

    /// `404 NotFound` for an object of this resource.
    pub(crate) fn not_found(&self, name: &str) -> Box<Status> {
        Box::new(Status::not_found(&self.group_resource(), name))
    }

    /// Reads one object from the datastore: the object (storage version, resource version
    /// set) and its revision.
    pub(crate) async fn read(&self, key: &str) -> Result<Option<(Value, Revision)>> {
        let kv = self
            .shared
            .store
            .get(key)
            .await
            .map_err(|e| storage_error(&e, &self.group_resource(), "get"))?;
        match kv {
            None => Ok(None),
            Some(kv) => {
                let obj = codec::decode(&kv).map_err(|e| decode_error(&e))?;
                Ok(Some((obj, kv.mod_revision)))
            }
        }
    }

    /// The datastore's current revision: a read of the single key the prefix itself names,
    /// which never exists, so that neither backend scans anything.
    pub(crate) async fn current_revision(&self) -> Result<Revision> {
        let prefix = self.cacher.prefix().to_owned();
        self.shared
            .store
            .range(RangeRequest::key(prefix).count_only())
            .await
            .map(|r| r.revision)
            .map_err(|e| storage_error(&e, &self.group_resource(), "list"))
    }

    /// Waits until the cache reaches `revision`, or fails as upstream does when a requested
    /// resource version is ahead of the server.
    async fn wait_fresh(&self, revision: Revision) -> Result<()> {
        if self.cacher.wait_fresh(revision).await {
            Ok(())
        } else {
            Err(Box::new(Status::too_large_resource_version(
                unsigned(revision),
                unsigned(self.cacher.revision()),
                1,
            )))
        }
    }

    /// GET of the object (storage version) with upstream's resource-version semantics: unset
    /// reads the datastore, `0` the cache, `N` the cache once it has caught up with `N`.
    pub(crate) async fn get_stored(
        &self,
        ctx: &RequestContext,
        name: &str,
        version: &ResourceVersionQuery,
    ) -> Result<Value> {
        let key = self.key(ctx, name)?;
        match Rv::parse(version.resource_version.as_deref())? {
            Rv::Unset => match self.read(&key).await? {
                Some((obj, _)) => Ok(obj),
                None => Err(self.not_found(name)),
            },
            rv => {
                if let Rv::At(n) = rv {
                    self.wait_fresh(n).await?;
                }
                match self.cacher.get(&key).0 {
                    Some(obj) => Ok(obj.value.clone()),
                    None => Err(self.not_found(name)),
                }
            }
        }
    }

    /// GET of the object or its `status`/`scale` view, in the served version.
    pub(crate) async fn get_impl(
        &self,
        ctx: &RequestContext,
        name: &str,
        subresource: Option<&str>,
        version: &ResourceVersionQuery,
    ) -> Result<Value> {
        let view = subresources::View::of(self, subresource)?;
        let stored = self.get_stored(ctx, name, version).await?;
        view.present(self, codec::to_served(self.resource, stored))
    }

    /// LIST with upstream's semantics: continue tokens, `Exact` and paged reads come from the
    /// datastore at one revision; everything else from the cache (a consistent read waits for
    /// the cache to reach the datastore's current revision, or falls back to the datastore).
    pub(crate) async fn list_impl(
        &self,
        ctx: &RequestContext,
        options: &ListOptions,
    ) -> Result<ObjectList> {
        validate_list_options(&options.version, options.continue_token.as_deref(), None)?;
        let namespace = self.list_namespace(ctx);
        let predicate = Predicate::new(
            self.resource,
            namespace,
            options.label_selector.as_ref(),
            options.field_selector.as_ref(),
        )?;
        let prefix = self.list_prefix(namespace);
        let limit = usize::try_from(options.limit.max(0)).unwrap_or(usize::MAX);
        let rv = Rv::parse(options.version.resource_version.as_deref())?;
        let matching = options
            .version
            .resource_version_match
            .as_deref()
            .unwrap_or("");

        if let Some(token) = options.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if matches!(rv, Rv::At(_)) {
                return Err(Box::new(Status::bad_request(
                    "specifying resource version is not allowed when using continue",
                )));
            }
            let (start, revision) = continue_token::decode(&prefix, token).map_err(|e| {
                Box::new(Status::bad_request(&format!("invalid continue token: {e}")))
            })?;
            return self
                .list_storage(&prefix, start, revision.max(0), limit, &predicate, true)
                .await;
        }
        match (rv, matching) {
            (Rv::At(n), "Exact") => {
                self.list_storage(&prefix, prefix.clone(), n, limit, &predicate, false)
                    .await
            }
            (Rv::Unset, _) if limit > 0 => {
                self.list_storage(&prefix, prefix.clone(), 0, limit, &predicate, false)
                    .await
            }
            (Rv::At(n), "NotOlderThan") if limit > 0 => {
                let list = self
                    .list_storage(&prefix, prefix.clone(), 0, limit, &predicate, false)
                    .await?;
                let current: Revision = list.resource_version.parse().unwrap_or(0);
                if current < n {
                    return Err(Box::new(Status::too_large_resource_version(
                        unsigned(n),
                        unsigned(current),
                        1,
                    )));
                }
                Ok(list)
            }
            (Rv::At(n), _) if limit > 0 => {
                self.list_storage(&prefix, prefix.clone(), n, limit, &predicate, false)
                    .await
            }
            (Rv::Unset, _) => {
                let current = self.current_revision().await?;
                if self.cacher.wait_fresh(current).await {
                    Ok(self.list_cache(&prefix, &predicate))
                } else {
                    tracing::debug!(resource = %self.group_resource(), "watch cache lagging, consistent list from the datastore");
                    self.list_storage(&prefix, prefix.clone(), 0, 0, &predicate, false)
                        .await
                }
            }
            (Rv::Any, _) => Ok(self.list_cache(&prefix, &predicate)),
            (Rv::At(n), _) => {
                self.wait_fresh(n).await?;
                Ok(self.list_cache(&prefix, &predicate))
            }
        }
    }

    /// A list from the cache (limits are ignored there, as upstream's cache does).
    fn list_cache(&self, prefix: &str, predicate: &Predicate) -> ObjectList {
        let (items, revision) = self.cacher.list(prefix, predicate);
        ObjectList {
            items: items
                .iter()
                .map(|o| codec::to_served(self.resource, o.value.clone()))
                .collect(),
            resource_version: revision.to_string(),
            continue_token: None,
            remaining_item_count: None,
        }
    }

    /// A list from the datastore starting at key `start`, at `revision` (`0`: the newest),
    /// at most `limit` items (`0`: all), with a continue token when more remain.
    async fn list_storage(
        &self,
        prefix: &str,
        start: String,
        revision: Revision,
        limit: usize,
        predicate: &Predicate,
        continuing: bool,
    ) -> Result<ObjectList> {
        let end = prefix_end(prefix);
        let mut key = start.clone();
        let mut read_at = revision;
        let mut fetch = if limit > 0 { limit.min(MAX_FETCH) } else { 0 };
        let mut items = Vec::new();
        let mut last_key: Option<String> = None;
        let mut has_more;
        let mut count;
        loop {
            let resp = match self
                .shared
                .store
                .range(
                    RangeRequest::range(key.clone(), end.clone())
                        .at_revision(read_at)
                        .with_limit(fetch),
                )
                .await
            {
                Ok(resp) => resp,
                Err(e) if e.is_compacted() && continuing => {
                    let token = continue_token::encode(prefix, &start, -1);
                    return Err(Box::new(Status::continue_expired(Some(&token))));
                }
                Err(e) => return Err(storage_error(&e, &self.group_resource(), "list")),
            };
            if read_at == 0 {
                read_at = resp.revision;
            }
            has_more = resp.more;
            count = resp.count;
            for kv in &resp.kvs {
                if limit > 0 && items.len() >= limit {
                    has_more = true;
                    break;
                }
                last_key = Some(kv.key.clone());
                let obj = CachedObject::decode(kv, self.cacher_kind(), self.resource.namespaced)
                    .map_err(|e| decode_error(&e))?;
                if predicate.matches(&obj.attrs) {
                    items.push(codec::to_served(self.resource, obj.value));
                }
            }
            if !has_more || limit == 0 || items.len() >= limit {
                break;
            }
            fetch = (fetch * 2).min(MAX_FETCH);
            match &last_key {
                Some(k) => key = format!("{k}\0"),
                None => break,
            }
        }
        let (continue_token, remaining_item_count) = match (has_more, &last_key) {
            (true, Some(last)) => {
                let token = continue_token::encode(prefix, &format!("{last}\0"), read_at);
                let remaining = (!predicate.has_selectors())
                    .then(|| count - i64::try_from(limit).unwrap_or(i64::MAX))
                    .filter(|r| *r > 0);
                (Some(token), remaining)
            }
            _ => (None, None),
        };
        Ok(ObjectList {
            items,
            resource_version: read_at.to_string(),
            continue_token,
            remaining_item_count,
        })
    }

    /// The kind the objects of this resource's storage prefix are stored as.
    pub(crate) fn cacher_kind(&self) -> &'static str {
        self.resource.kind
    }

    /// WATCH from the cache with upstream's resource-version semantics. Problems found after
    /// the request was accepted (a too old resource version) arrive as an `ERROR` event.
    pub(crate) async fn watch_impl(
        &self,
        ctx: &RequestContext,
        options: &WatchOptions,
    ) -> Result<EventStream> {
        validate_list_options(&options.version, None, Some(options.send_initial_events))?;
        let namespace = self.list_namespace(ctx);
        let predicate = Arc::new(Predicate::new(
            self.resource,
            namespace,
            options.label_selector.as_ref(),
            options.field_selector.as_ref(),
        )?);
        let rv = Rv::parse(options.version.resource_version.as_deref())?;
        let bookmarks = options.allow_bookmarks;
        let start = match (options.send_initial_events, rv) {
            (Some(true), rv) => {
                let required = match rv {
                    Rv::Unset => self.current_revision().await?,
                    Rv::Any => 0,
                    Rv::At(n) => n,
                };
                if required > 0 && !self.cacher.wait_fresh(required).await {
                    return Ok(error_stream(&Status::too_large_resource_version(
                        unsigned(required),
                        unsigned(self.cacher.revision()),
                        1,
                    )));
                }
                Start::State {
                    end_bookmark: bookmarks,
                }
            }
            (Some(false), Rv::Unset) => Start::After(self.current_revision().await?),
            (Some(false), Rv::Any) => Start::After(self.cacher.revision()),
            (None, Rv::Unset | Rv::Any) => Start::State {
                end_bookmark: false,
            },
            (_, Rv::At(n)) => Start::After(n),
        };
        match self.cacher.register(predicate, start, bookmarks) {
            Ok(registration) => Ok(Box::pin(CacheWatch::new(
                self.resource,
                registration,
                options.timeout,
            ))),
            Err(status) => Ok(error_stream(&status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_parse_like_upstream() {
        assert_eq!(Rv::parse(None).ok(), Some(Rv::Unset));
        assert_eq!(Rv::parse(Some("")).ok(), Some(Rv::Unset));
        assert_eq!(Rv::parse(Some("0")).ok(), Some(Rv::Any));
        assert_eq!(Rv::parse(Some("12")).ok(), Some(Rv::At(12)));
        let err = Rv::parse(Some("abc")).expect_err("garbage");
        assert_eq!(err.code, 400);
    }

    #[test]
    fn list_options_are_validated_like_upstream() {
        let q = |rv: &str, m: &str| ResourceVersionQuery {
            resource_version: (!rv.is_empty()).then(|| rv.to_owned()),
            resource_version_match: (!m.is_empty()).then(|| m.to_owned()),
        };
        assert!(validate_list_options(&q("5", "Exact"), None, None).is_ok());
        let err = validate_list_options(&q("", "Exact"), None, None).expect_err("invalid");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        assert!(validate_list_options(&q("0", "Exact"), None, None).is_err());
        assert!(validate_list_options(&q("", ""), None, Some(Some(true))).is_err());
        assert!(validate_list_options(&q("", "NotOlderThan"), None, Some(Some(true))).is_ok());
        assert!(validate_list_options(&q("1", "NotOlderThan"), None, Some(None)).is_err());
    }
}
