//! The generic store's write side for creates and updates (upstream's `Store.Create`,
//! `Store.Update`, `rest.BeforeCreate`, `rest.BeforeUpdate` and etcd3's `GuaranteedUpdate`):
//! namespaces, names, uids, timestamps, strategies, validation, optimistic concurrency.

use serde_json::Value;
use tug_apimachinery::{
    Status, meta,
    status::reason,
    validation::{ErrorList, FieldError, Path},
};
use tug_storage::{Revision, Txn, TxnResponse};

use super::{
    RequestContext, ResourceStore, Result, Update, Updated, admission, codec, objmeta,
    store::{EVENT_TTL, decode_error, storage_error},
    strategies,
    subresources::View,
    validation,
};

/// How often a create retries with a new random name when `generateName` collides (upstream's
/// `RetryGenerateName`).
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// How often an update retries after losing a race it may retry.
const UPDATE_ATTEMPTS: usize = 32;

/// The message of upstream's namespace mismatch.
const NAMESPACE_MISMATCH: &str =
    "the namespace of the provided object does not match the namespace sent on the request";

impl ResourceStore {
    /// Puts the request's namespace on the object (or checks it), as upstream's
    /// `EnsureObjectNamespaceMatchesRequestNamespace`; cluster-scoped objects lose theirs.
    fn ensure_namespace(&self, obj: &mut Value, namespace: Option<&str>) -> Result<()> {
        match namespace {
            Some(ns) => match meta::namespace(obj).filter(|n| !n.is_empty()) {
                None => objmeta::set_meta(obj, "namespace", Value::String(ns.to_owned())),
                Some(given) if given == ns => {}
                Some(_) => return Err(Box::new(Status::bad_request(NAMESPACE_MISMATCH))),
            },
            None => {
                objmeta::remove_meta(obj, "namespace");
            }
        }
        Ok(())
    }

    /// `422 Invalid` for this resource's kind.
    fn invalid(&self, name: &str, errs: &ErrorList) -> Box<Status> {
        Box::new(Status::invalid(&self.group_kind(), name, errs))
    }

    /// Attaches a lease to writes of Events, which expire an hour after their last write.
    async fn with_lease(&self, txn: Txn) -> Result<Txn> {
        let is_event = self
            .resource
            .storage
            .is_some_and(|s| s.prefix == "/registry/events");
        if !is_event {
            return Ok(txn);
        }
        let lease = self
            .shared
            .leases
            .lease(self.shared.store.as_ref(), EVENT_TTL)
            .await
            .map_err(|e| storage_error(&e, &self.group_resource(), "create"))?;
        Ok(txn.with_lease(lease))
    }

    /// POST: creates an object (or runs a create-style subresource).
    pub(crate) async fn create_impl(
        &self,
        ctx: &RequestContext,
        object: Value,
        name: Option<&str>,
        subresource: Option<&str>,
    ) -> Result<Value> {
        match subresource {
            None => {
                let stored = self.create_object(ctx, object).await?;
                Ok(codec::to_served(self.resource, stored))
            }
            Some("binding") if self.resource.group.is_empty() && self.resource.kind == "Pod" => {
                self.bind(ctx, object, name).await
            }
            Some("eviction") if self.resource.group.is_empty() && self.resource.kind == "Pod" => {
                self.evict(ctx, object, name).await
            }
            Some(other) => Err(Box::new(Status::method_not_supported(
                &tug_apimachinery::GroupResource::new(
                    self.resource.group,
                    &format!("{}/{other}", self.resource.plural),
                ),
                "create",
            ))),
        }
    }

    /// The create path of POST and of PUT/apply on an absent object: returns the stored
    /// object (storage version; without a resource version on dry run).
    pub(crate) async fn create_object(&self, ctx: &RequestContext, object: Value) -> Result<Value> {
        let mut obj = object;
        if !obj.is_object() {
            return Err(Box::new(Status::bad_request(
                "the object is not a JSON object",
            )));
        }
        let namespace = self.object_namespace(ctx)?;
        self.ensure_namespace(&mut obj, namespace)?;
        if codec::resource_version(&obj).is_some() {
            return Err(Box::new(Status::internal_error(
                "resourceVersion should not be set on objects to be created",
            )));
        }
        let mut obj = codec::to_storage(self.resource, obj);
        self.strategy.default(self.resource, &mut obj);

        let display_name = meta::name(&obj)
            .filter(|n| !n.is_empty())
            .or(meta::generate_name(&obj))
            .unwrap_or_default()
            .to_owned();
        admission::namespace_lifecycle(self, namespace, &display_name).await?;
        admission::pod_priority(self, &mut obj, &display_name)?;
        admission::default_toleration_seconds(self, &mut obj);

        // rest.BeforeCreate
        for key in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            objmeta::remove_meta(&mut obj, key);
        }
        self.strategy.prepare_for_create(&mut obj);
        objmeta::set_meta(&mut obj, "uid", Value::String(objmeta::new_uid()));
        objmeta::set_meta(
            &mut obj,
            "creationTimestamp",
            Value::String(objmeta::now_rfc3339()),
        );
        let generate = meta::generate_name(&obj)
            .filter(|g| !g.is_empty())
            .map(str::to_owned);
        let generated = meta::name(&obj).is_none_or(str::is_empty) && generate.is_some();
        if generated && let Some(base) = &generate {
            objmeta::set_meta(
                &mut obj,
                "name",
                Value::String(objmeta::generate_name(base)),
            );
        }
        self.strategy.complete_create(&mut obj);
        let name = meta::name(&obj).unwrap_or_default().to_owned();
        let errs = self.strategy.validate_create(self.resource, &obj);
        if !errs.is_empty() {
            return Err(self.invalid(&name, &errs));
        }
        let errs = validation::validate_common(&obj, self.resource.namespaced);
        if !errs.is_empty() {
            return Err(self.invalid(&name, &errs));
        }
        self.strategy.canonicalize(&mut obj);

        for attempt in 0..GENERATE_NAME_ATTEMPTS {
            let name = meta::name(&obj).unwrap_or_default().to_owned();
            let key = self
                .resource
                .key(namespace, &name)
                .ok_or_else(|| Box::new(Status::internal_error("resource has no storage")))?;
            let taken = if ctx.dry_run {
                self.read(&key).await?.is_some()
            } else {
                let bytes = codec::encode(&obj).map_err(|e| decode_error(&e))?;
                let txn = self.with_lease(Txn::create(key.clone(), bytes)).await?;
                match self.shared.store.txn(txn).await {
                    Ok(TxnResponse::Applied { revision, .. }) => {
                        codec::set_resource_version(&mut obj, revision);
                        tracing::debug!(resource = %self.group_resource(), %key, revision, "created");
                        false
                    }
                    Ok(TxnResponse::Rejected { .. }) => true,
                    Err(e) => return Err(storage_error(&e, &self.group_resource(), "create")),
                }
            };
            if !taken {
                return Ok(obj);
            }
            match &generate {
                Some(base) if generated && attempt + 1 < GENERATE_NAME_ATTEMPTS => {
                    objmeta::set_meta(
                        &mut obj,
                        "name",
                        Value::String(objmeta::generate_name(base)),
                    );
                }
                Some(_) if generated => {
                    return Err(Box::new(Status::generate_name_conflict(
                        &self.group_resource(),
                        &name,
                        1,
                    )));
                }
                _ => {
                    return Err(Box::new(Status::already_exists(
                        &self.group_resource(),
                        &name,
                    )));
                }
            }
        }
        Err(Box::new(Status::already_exists(
            &self.group_resource(),
            meta::name(&obj).unwrap_or_default(),
        )))
    }

    /// PUT/PATCH of the object or one of its subresources: optimistic concurrency on the
    /// stored revision, retried for patches and unconditional updates, a `409 Conflict` for a
    /// stale `resourceVersion`; a missing object is created when the kind (or apply) allows.
    pub(crate) async fn update_impl(
        &self,
        ctx: &RequestContext,
        name: &str,
        subresource: Option<&str>,
        update: Update,
    ) -> Result<Updated> {
        let view = View::of(self, subresource)?;
        let key = self.key(ctx, name)?;
        let namespace = self.object_namespace(ctx)?;
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.read(&key).await?;
            let presented = match &current {
                Some((obj, _)) => {
                    Some(view.present(self, codec::to_served(self.resource, obj.clone()))?)
                }
                None => None,
            };
            let input = match &update {
                Update::Replace(obj) => obj.clone(),
                Update::Transform(transform) => transform(presented.as_ref())?,
            };
            let Some((old, old_revision)) = current else {
                if view != View::Main {
                    return Err(self.not_found(name));
                }
                let may_create = matches!(update, Update::Transform(_))
                    || self.strategy.allow_create_on_update();
                if !may_create {
                    return Err(self.not_found(name));
                }
                let mut input = input;
                check_name(&mut input, name)?;
                match self.create_object(ctx, input).await {
                    Ok(stored) => {
                        return Ok(Updated {
                            object: codec::to_served(self.resource, stored),
                            created: true,
                        });
                    }
                    // Created by someone else meanwhile: update it instead.
                    Err(status) if status.reason == reason::ALREADY_EXISTS => continue,
                    Err(status) => return Err(status),
                }
            };

            let served_old = codec::to_served(self.resource, old.clone());
            let mut new = view.apply(self, input, &served_old, name)?;
            if matches!(update, Update::Replace(_)) {
                check_name(&mut new, name)?;
                if let Some(uid) = meta::uid(&new).filter(|u| !u.is_empty())
                    && Some(uid) != meta::uid(&old)
                {
                    return Err(Box::new(Status::conflict(
                        &self.group_resource(),
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta::uid(&old).unwrap_or_default()
                        ),
                    )));
                }
            }
            self.ensure_namespace(&mut new, namespace)?;
            let conditional = match codec::resource_version(&new) {
                Some(rv) => {
                    if rv != old_revision.to_string() {
                        return Err(Box::new(Status::optimistic_lock_conflict(
                            &self.group_resource(),
                            name,
                        )));
                    }
                    true
                }
                None => {
                    if !self.strategy.allow_unconditional_update() {
                        let errs: ErrorList = FieldError::invalid(
                            &Path::new("metadata").child("resourceVersion"),
                            0,
                            "must be specified for an update",
                        )
                        .into();
                        return Err(Box::new(Status::invalid(
                            &tug_apimachinery::GroupKind::new(
                                self.resource.group,
                                self.resource.plural,
                            ),
                            name,
                            &errs,
                        )));
                    }
                    codec::set_resource_version(&mut new, old_revision);
                    false
                }
            };
            let mut new = codec::to_storage(self.resource, new);
            self.strategy.default(self.resource, &mut new);
            self.before_update(view, &mut new, &old)?;

            let outcome = self
                .write_update(ctx, &key, view, new, &old, old_revision)
                .await?;
            match outcome {
                Some(object) => {
                    return Ok(Updated {
                        object: view.present(self, codec::to_served(self.resource, object))?,
                        created: false,
                    });
                }
                None if conditional && matches!(update, Update::Replace(_)) => {
                    return Err(Box::new(Status::optimistic_lock_conflict(
                        &self.group_resource(),
                        name,
                    )));
                }
                None => {}
            }
        }
        Err(Box::new(Status::optimistic_lock_conflict(
            &self.group_resource(),
            name,
        )))
    }

    /// `rest.BeforeUpdate`: what the request may not change is taken from the stored object,
    /// the strategy prepares, then everything is validated.
    fn before_update(&self, view: View, new: &mut Value, old: &Value) -> Result<()> {
        objmeta::copy_meta(new, old, "generation");
        match view {
            View::Status => self.strategy.prepare_for_status_update(new, old),
            View::Finalize => self.strategy.prepare_for_finalize(new, old),
            View::Main | View::Scale => self.strategy.prepare_for_update(new, old),
            View::EphemeralContainers => strategies::prepare_ephemeral_containers(new, old),
            View::Resize => strategies::prepare_resize(new, old),
        }
        if meta::uid(new).is_none_or(str::is_empty) {
            objmeta::copy_meta(new, old, "uid");
        }
        for key in ["creationTimestamp", "deletionTimestamp"] {
            if objmeta::meta_value(old, key).is_some_and(|v| !v.is_null()) {
                objmeta::copy_meta(new, old, key);
            }
        }
        if objmeta::meta_value(old, "deletionGracePeriodSeconds").is_some()
            && objmeta::meta_value(new, "deletionGracePeriodSeconds").is_none()
        {
            objmeta::copy_meta(new, old, "deletionGracePeriodSeconds");
        }
        let name = meta::name(new).unwrap_or_default().to_owned();
        let mut errs = validation::validate_object_meta_update(new, old);
        errs.append(match view {
            // Subresources that change one part of the object are not held to the main
            // resource's update rules (a pod's spec is otherwise immutable).
            View::Status | View::Finalize | View::EphemeralContainers | View::Resize => self
                .strategy
                .validate_status_update(self.resource, new, old),
            View::Main | View::Scale => self.strategy.validate_update(self.resource, new, old),
        });
        if !errs.is_empty() {
            return Err(self.invalid(&name, &errs));
        }
        self.strategy.canonicalize(new);
        Ok(())
    }

    /// Writes an update (or the deletion an update of the last finalizer triggers) if the
    /// object is still at `old_revision`: the stored result, or `None` when it changed
    /// meanwhile. A no-op update writes nothing and answers with the stored object.
    async fn write_update(
        &self,
        ctx: &RequestContext,
        key: &str,
        view: View,
        mut new: Value,
        old: &Value,
        old_revision: Revision,
    ) -> Result<Option<Value>> {
        let delete = view != View::Scale && self.strategy.should_delete_during_update(&new, old);
        if delete {
            if ctx.dry_run {
                return Ok(Some(new));
            }
            return match self.shared.store.txn(Txn::delete(key, old_revision)).await {
                Ok(TxnResponse::Applied { revision, .. }) => {
                    tracing::debug!(resource = %self.group_resource(), %key, revision, "deleted after its last finalizer was removed");
                    codec::set_resource_version(&mut new, revision);
                    Ok(Some(new))
                }
                Ok(TxnResponse::Rejected { .. }) => Ok(None),
                Err(e) => Err(storage_error(&e, &self.group_resource(), "update")),
            };
        }
        let mut unchanged_new = new.clone();
        let mut unchanged_old = old.clone();
        objmeta::remove_meta(&mut unchanged_new, "resourceVersion");
        objmeta::remove_meta(&mut unchanged_old, "resourceVersion");
        if unchanged_new == unchanged_old {
            return Ok(Some(old.clone()));
        }
        if ctx.dry_run {
            codec::set_resource_version(&mut new, old_revision);
            return Ok(Some(new));
        }
        let bytes = codec::encode(&new).map_err(|e| decode_error(&e))?;
        let txn = self
            .with_lease(Txn::update(key, old_revision, bytes))
            .await?;
        match self.shared.store.txn(txn).await {
            Ok(TxnResponse::Applied { revision, .. }) => {
                codec::set_resource_version(&mut new, revision);
                tracing::debug!(resource = %self.group_resource(), %key, revision, "updated");
                Ok(Some(new))
            }
            Ok(TxnResponse::Rejected { .. }) => Ok(None),
            Err(e) => Err(storage_error(&e, &self.group_resource(), "update")),
        }
    }
}

/// Upstream's name check on PUT: the body names the object of the URL (an empty body name
/// is taken to mean it).
fn check_name(obj: &mut Value, name: &str) -> Result<()> {
    match meta::name(obj).filter(|n| !n.is_empty()) {
        None => {
            objmeta::set_meta(obj, "name", Value::String(name.to_owned()));
            Ok(())
        }
        Some(given) if given == name => Ok(()),
        Some(given) => Err(Box::new(Status::bad_request(&format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )))),
    }
}
