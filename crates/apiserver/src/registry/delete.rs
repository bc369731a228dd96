//! Deletion (upstream's `Store.Delete`, `rest.BeforeDelete`, the garbage-collection finalizers
//! and the namespace registry's two-phase delete): preconditions, graceful deletion, finalizers
//! and propagation policies. Every object that leaves the datastore does so in one delete, so
//! watchers see exactly one `DELETED` event.

use serde_json::{Value, json};
use tug_apimachinery::{
    GroupKind, GroupResource, Status, meta,
    status::reason,
    validation::{ErrorList, FieldError, Path},
};
use tug_storage::{Revision, Txn, TxnResponse};

use super::{
    DeleteOptions, Deleted, ListOptions, ObjectList, RequestContext, ResourceStore, Result, codec,
    objmeta,
    store::{decode_error, storage_error},
    strategies::spec_finalizers,
    strategy::GcPolicy,
};

/// The finalizer that orphans dependents.
const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer that deletes dependents first.
const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// How often a delete retries after the object changed under it.
const DELETE_ATTEMPTS: usize = 32;

/// Namespaces that can never be deleted (upstream's immortal namespaces).
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// What `rest.BeforeDelete` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Delete without grace.
    Immediate,
    /// Graceful deletion with this many seconds (the object has been marked).
    Graceful(i64),
    /// A graceful deletion is already under way and this request does not shorten it.
    Pending,
}

/// Upstream's `ValidateDeleteOptions` (`422` on `DeleteOptions.meta.k8s.io`).
fn validate_delete_options(options: &DeleteOptions) -> Result<()> {
    let mut errs = ErrorList::new();
    let path = Path::new("propagationPolicy");
    if let Some(policy) = &options.propagation_policy {
        if options.orphan_dependents.is_some() {
            errs.push(FieldError::invalid(
                &path,
                policy.as_str(),
                "orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        if !matches!(policy.as_str(), "Foreground" | "Background" | "Orphan") {
            errs.push(FieldError::not_supported(
                &path,
                policy.as_str(),
                &["Foreground", "Background", "Orphan", "nil"],
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Box::new(Status::invalid(
            &GroupKind::new("meta.k8s.io", "DeleteOptions"),
            "",
            &errs,
        )))
    }
}

/// Whether the request (or, failing that, the object's finalizers or the kind's default) says
/// to orphan dependents (upstream's `shouldOrphanDependents`).
fn should_orphan(obj: &Value, options: &DeleteOptions, default: GcPolicy) -> bool {
    if let Some(orphan) = options.orphan_dependents {
        return orphan;
    }
    match options.propagation_policy.as_deref() {
        Some("Orphan") => return true,
        Some("Background" | "Foreground") => return false,
        _ => {}
    }
    for f in meta::finalizers(obj) {
        match f.as_str() {
            ORPHAN_FINALIZER => return true,
            FOREGROUND_FINALIZER => return false,
            _ => {}
        }
    }
    default == GcPolicy::Orphan
}

/// Whether dependents are deleted in the foreground (upstream's `shouldDeleteDependents`).
fn should_delete_dependents(obj: &Value, options: &DeleteOptions) -> bool {
    if options.orphan_dependents.is_some() {
        return false;
    }
    match options.propagation_policy.as_deref() {
        Some("Foreground") => return true,
        Some("Background" | "Orphan") => return false,
        _ => {}
    }
    for f in meta::finalizers(obj) {
        match f.as_str() {
            FOREGROUND_FINALIZER => return true,
            ORPHAN_FINALIZER => return false,
            _ => {}
        }
    }
    false
}

/// The finalizers deletion must leave on the object for the garbage collector, and whether
/// they differ from the current ones (upstream's `deletionFinalizersForGarbageCollection`).
fn gc_finalizers(obj: &Value, options: &DeleteOptions, default: GcPolicy) -> (bool, Vec<String>) {
    let current = meta::finalizers(obj);
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if should_orphan(obj, options, default) {
        wanted.push(ORPHAN_FINALIZER.to_owned());
    }
    if should_delete_dependents(obj, options) {
        wanted.push(FOREGROUND_FINALIZER.to_owned());
    }
    let mut a = current.clone();
    let mut b = wanted.clone();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    if a == b {
        (false, current)
    } else {
        (true, wanted)
    }
}

/// Marks an object that has finalizers but no graceful deletion as being deleted now, with a
/// zero grace period (upstream's `markAsDeleting`).
fn mark_as_deleting(obj: &mut Value, now: i64) {
    let deleting_since = meta::deletion_timestamp(obj).and_then(objmeta::parse_rfc3339);
    if deleting_since.is_none()
        && let Some(generation) = meta::generation(obj).filter(|g| *g > 0)
    {
        objmeta::set_meta(obj, "generation", json!(generation + 1));
    }
    if deleting_since.is_none_or(|since| since > now) {
        objmeta::set_meta(
            obj,
            "deletionTimestamp",
            Value::String(objmeta::rfc3339(now)),
        );
    }
    objmeta::set_meta(obj, "deletionGracePeriodSeconds", json!(0));
}

impl ResourceStore {
    /// The early precondition check of `rest.BeforeDelete`; its messages name the kind.
    fn check_delete_preconditions(
        &self,
        obj: &Value,
        uid: Option<&str>,
        resource_version: Option<&str>,
    ) -> Result<()> {
        let kind = GroupResource::new(self.resource.group, self.resource.kind);
        let name = meta::name(obj).unwrap_or_default();
        if let Some(uid) = uid {
            let actual = meta::uid(obj).unwrap_or_default();
            if uid != actual {
                return Err(Box::new(Status::conflict(
                    &kind,
                    name,
                    &format!(
                        "the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"
                    ),
                )));
            }
        }
        if let Some(rv) = resource_version {
            let actual = codec::resource_version(obj).unwrap_or_default();
            if rv != actual {
                return Err(Box::new(Status::conflict(
                    &kind,
                    name,
                    &format!(
                        "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"
                    ),
                )));
            }
        }
        Ok(())
    }

    /// `rest.BeforeDelete` for the graceful part: marks `obj` for graceful deletion when the
    /// kind supports it.
    fn before_delete(&self, obj: &mut Value, options: &DeleteOptions) -> Decision {
        let requested = options
            .grace_period_seconds
            .map(|g| if g < 0 { 1 } else { g });
        if meta::deletion_grace_period_seconds(obj).is_some_and(|g| g < 0) {
            objmeta::set_meta(obj, "deletionGracePeriodSeconds", json!(1));
        }
        let Some(period) = self.strategy.check_graceful_delete(obj, requested) else {
            return Decision::Immediate;
        };
        if let Some(since) = meta::deletion_timestamp(obj).map(str::to_owned) {
            let current = meta::deletion_grace_period_seconds(obj).unwrap_or(0);
            if current == 0 {
                return Decision::Immediate;
            }
            return match requested {
                Some(shorter) if shorter < current => {
                    let deadline = objmeta::parse_rfc3339(&since).unwrap_or_else(objmeta::now_unix)
                        - current
                        + shorter;
                    objmeta::set_meta(
                        obj,
                        "deletionTimestamp",
                        Value::String(objmeta::rfc3339(deadline)),
                    );
                    objmeta::set_meta(obj, "deletionGracePeriodSeconds", json!(shorter));
                    Decision::Graceful(shorter)
                }
                _ => Decision::Pending,
            };
        }
        objmeta::set_meta(
            obj,
            "deletionTimestamp",
            Value::String(objmeta::rfc3339(objmeta::now_unix() + period)),
        );
        objmeta::set_meta(obj, "deletionGracePeriodSeconds", json!(period));
        if let Some(generation) = meta::generation(obj).filter(|g| *g > 0) {
            objmeta::set_meta(obj, "generation", json!(generation + 1));
        }
        Decision::Graceful(period)
    }

    /// DELETE of one object.
    pub(crate) async fn delete_impl(
        &self,
        ctx: &RequestContext,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted> {
        validate_delete_options(options)?;
        let key = self.key(ctx, name)?;
        if self.resource.group.is_empty() && self.resource.kind == "Namespace" {
            return self.delete_namespace(ctx, &key, name, options).await;
        }
        self.delete_object(ctx, &key, name, options).await
    }

    /// Writes the marks of a graceful or finalizer-pending deletion if the object is still at
    /// `revision`; the stored result, or `None` when it changed meanwhile.
    async fn write_marks(
        &self,
        ctx: &RequestContext,
        key: &str,
        mut marked: Value,
        old: &Value,
        revision: Revision,
    ) -> Result<Option<(Value, Revision)>> {
        if marked == *old {
            return Ok(Some((marked, revision)));
        }
        if ctx.dry_run {
            return Ok(Some((marked, revision)));
        }
        let bytes = codec::encode(&marked).map_err(|e| decode_error(&e))?;
        match self
            .shared
            .store
            .txn(Txn::update(key, revision, bytes))
            .await
        {
            Ok(TxnResponse::Applied { revision, .. }) => {
                codec::set_resource_version(&mut marked, revision);
                Ok(Some((marked, revision)))
            }
            Ok(TxnResponse::Rejected { .. }) => Ok(None),
            Err(e) => Err(storage_error(&e, &self.group_resource(), "delete")),
        }
    }

    /// The generic delete (`Store.Delete`).
    async fn delete_object(
        &self,
        ctx: &RequestContext,
        key: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted> {
        let mut precondition_rv = options.precondition_resource_version.clone();
        let serve = |obj: Value| codec::to_served(self.resource, obj);
        for _ in 0..DELETE_ATTEMPTS {
            let Some((mut obj, mut revision)) = self.read(key).await? else {
                return Err(self.not_found(name));
            };
            self.check_delete_preconditions(
                &obj,
                options.precondition_uid.as_deref(),
                precondition_rv.as_deref(),
            )?;
            let mut marked = obj.clone();
            let decision = self.before_delete(&mut marked, options);
            if decision == Decision::Pending {
                return Ok(Deleted {
                    object: serve(obj),
                    finished: false,
                });
            }
            let graceful = matches!(decision, Decision::Graceful(_));
            let gc = self.strategy.default_gc_policy();
            let (update_finalizers, _) = gc_finalizers(&obj, options, gc);
            let pending_finalizers = !meta::finalizers(&obj).is_empty();
            let mut just_marked = false;
            if graceful || pending_finalizers || update_finalizers {
                let (changed, finalizers) = gc_finalizers(&marked, options, gc);
                if changed {
                    let _ = meta::set_finalizers(&mut marked, &finalizers);
                }
                let pending = !meta::finalizers(&marked).is_empty();
                let period = match decision {
                    Decision::Graceful(period) => period,
                    _ => 0,
                };
                if graceful || pending {
                    if !graceful {
                        mark_as_deleting(&mut marked, objmeta::now_unix());
                    }
                    let Some((written, at)) =
                        self.write_marks(ctx, key, marked, &obj, revision).await?
                    else {
                        continue;
                    };
                    if pending || period > 0 {
                        tracing::debug!(resource = %self.group_resource(), %key, period, "deletion pending");
                        return Ok(Deleted {
                            object: serve(written),
                            finished: false,
                        });
                    }
                    if precondition_rv.is_some() {
                        precondition_rv = Some(at.to_string());
                    }
                    obj = written;
                    revision = at;
                    just_marked = true;
                }
            }
            if ctx.dry_run {
                return Ok(Deleted {
                    object: serve(obj),
                    finished: true,
                });
            }
            match self.shared.store.txn(Txn::delete(key, revision)).await {
                Ok(TxnResponse::Applied {
                    revision: deleted_at,
                    prev,
                }) => {
                    tracing::debug!(resource = %self.group_resource(), %key, revision = deleted_at, "deleted");
                    let last = match prev {
                        Some(kv) => codec::decode(&kv).map_err(|e| decode_error(&e))?,
                        None => obj,
                    };
                    return Ok(Deleted {
                        object: serve(last),
                        finished: true,
                    });
                }
                // Someone else finished the graceless delete we started: that is success.
                Ok(TxnResponse::Rejected { current: None, .. }) if just_marked => {
                    return Ok(Deleted {
                        object: serve(obj),
                        finished: true,
                    });
                }
                Ok(TxnResponse::Rejected { current: None, .. }) => {
                    return Err(self.not_found(name));
                }
                Ok(TxnResponse::Rejected { .. }) => {}
                Err(e) => return Err(storage_error(&e, &self.group_resource(), "delete")),
            }
        }
        Err(Box::new(Status::optimistic_lock_conflict(
            &self.group_resource(),
            name,
        )))
    }

    /// The namespace registry's delete: the first request marks the namespace `Terminating`
    /// (the namespace controller empties it and removes the `kubernetes` finalizer); once
    /// `spec.finalizers` is empty a delete removes it.
    async fn delete_namespace(
        &self,
        ctx: &RequestContext,
        key: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted> {
        if IMMORTAL_NAMESPACES.contains(&name) {
            return Err(Box::new(Status::forbidden(
                &self.group_resource(),
                name,
                "this namespace may not be deleted",
            )));
        }
        for _ in 0..DELETE_ATTEMPTS {
            let Some((obj, revision)) = self.read(key).await? else {
                return Err(self.not_found(name));
            };
            let uid = meta::uid(&obj).unwrap_or_default();
            if let Some(want) = options.precondition_uid.as_deref()
                && want != uid
            {
                return Err(Box::new(Status::conflict(
                    &self.group_resource(),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                    ),
                )));
            }
            let rv = revision.to_string();
            if let Some(want) = options.precondition_resource_version.as_deref()
                && want != rv
            {
                return Err(Box::new(Status::conflict(
                    &self.group_resource(),
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
                    ),
                )));
            }
            if meta::deletion_timestamp(&obj).is_none() {
                let mut marked = obj.clone();
                objmeta::set_meta(
                    &mut marked,
                    "deletionTimestamp",
                    Value::String(objmeta::now_rfc3339()),
                );
                objmeta::set(
                    objmeta::child_mut(&mut marked, "status"),
                    "phase",
                    json!("Terminating"),
                );
                let current = meta::finalizers(&marked);
                let has = |f: &str| current.iter().any(|c| c == f);
                let orphan = match (
                    options.orphan_dependents,
                    options.propagation_policy.as_deref(),
                ) {
                    (Some(orphan), _) => orphan,
                    (None, Some(policy)) => policy == "Orphan",
                    (None, None) => has(ORPHAN_FINALIZER),
                };
                let foreground = match (
                    options.orphan_dependents,
                    options.propagation_policy.as_deref(),
                ) {
                    (Some(orphan), _) => !orphan,
                    (None, Some(policy)) => policy == "Foreground",
                    (None, None) => has(FOREGROUND_FINALIZER),
                };
                let mut finalizers: Vec<String> = current
                    .iter()
                    .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
                    .cloned()
                    .collect();
                if orphan {
                    finalizers.push(ORPHAN_FINALIZER.to_owned());
                }
                if foreground {
                    finalizers.push(FOREGROUND_FINALIZER.to_owned());
                }
                let _ = meta::set_finalizers(&mut marked, &finalizers);
                let Some((written, _)) = self.write_marks(ctx, key, marked, &obj, revision).await?
                else {
                    continue;
                };
                if !ctx.dry_run {
                    self.shared.namespace_deleted(name);
                }
                tracing::info!(namespace = %name, "namespace terminating");
                return Ok(Deleted {
                    object: codec::to_served(self.resource, written),
                    finished: false,
                });
            }
            if !spec_finalizers(&obj).is_empty() {
                return Err(Box::new(Status::conflict(
                    &self.group_resource(),
                    name,
                    "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
                )));
            }
            return self.delete_object(ctx, key, name, options).await;
        }
        Err(Box::new(Status::optimistic_lock_conflict(
            &self.group_resource(),
            name,
        )))
    }

    /// DELETE of a collection: lists, then deletes each listed object; answers with the
    /// objects as listed.
    pub(crate) async fn delete_collection_impl(
        &self,
        ctx: &RequestContext,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<ObjectList> {
        validate_delete_options(options)?;
        let listed = self.list_impl(ctx, list).await?;
        let mut deleted = Vec::with_capacity(listed.items.len());
        for item in listed.items {
            let name = meta::name(&item).unwrap_or_default().to_owned();
            let item_ctx = RequestContext {
                namespace: meta::namespace(&item)
                    .map(str::to_owned)
                    .or_else(|| ctx.namespace.clone()),
                ..ctx.clone()
            };
            match self.delete_impl(&item_ctx, &name, options).await {
                Ok(_) => deleted.push(item),
                Err(status) if status.reason == reason::NOT_FOUND => deleted.push(item),
                Err(status) => return Err(status),
            }
        }
        Ok(ObjectList {
            items: deleted,
            resource_version: listed.resource_version,
            continue_token: listed.continue_token,
            remaining_item_count: listed.remaining_item_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(policy: Option<&str>) -> DeleteOptions {
        DeleteOptions {
            propagation_policy: policy.map(str::to_owned),
            ..DeleteOptions::default()
        }
    }

    #[test]
    fn propagation_policies_choose_the_gc_finalizers() {
        let obj = json!({"metadata": {"finalizers": ["a.io/x"]}});
        assert_eq!(
            gc_finalizers(&obj, &opts(None), GcPolicy::Background),
            (false, vec!["a.io/x".to_owned()])
        );
        assert_eq!(
            gc_finalizers(&obj, &opts(Some("Orphan")), GcPolicy::Background),
            (true, vec!["a.io/x".to_owned(), "orphan".to_owned()])
        );
        assert_eq!(
            gc_finalizers(&obj, &opts(Some("Foreground")), GcPolicy::Background),
            (
                true,
                vec!["a.io/x".to_owned(), "foregroundDeletion".to_owned()]
            )
        );
        let bare = json!({"metadata": {}});
        assert_eq!(
            gc_finalizers(&bare, &opts(None), GcPolicy::Orphan),
            (true, vec!["orphan".to_owned()])
        );
    }

    #[test]
    fn delete_options_are_validated_like_upstream() {
        let err = validate_delete_options(&opts(Some("Sideways"))).expect_err("invalid");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        );
    }

    #[test]
    fn marking_as_deleting_keeps_an_earlier_timestamp_and_zeroes_the_grace() {
        let mut obj = json!({"metadata": {"generation": 2}});
        mark_as_deleting(&mut obj, 100);
        assert_eq!(obj["metadata"]["generation"], json!(3));
        assert_eq!(
            obj["metadata"]["deletionTimestamp"],
            json!(objmeta::rfc3339(100))
        );
        assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], json!(0));
        mark_as_deleting(&mut obj, 200);
        assert_eq!(obj["metadata"]["generation"], json!(3));
        assert_eq!(
            obj["metadata"]["deletionTimestamp"],
            json!(objmeta::rfc3339(100))
        );
    }
}
