//! The API server's field manager: server-side apply and the ownership records of every
//! other write, with upstream's layers around the ownership rules (stripping of fields
//! never tracked, per-manager identifiers and times, the cap on update entries, tracking
//! that starts at the first apply, the client-side-apply upgrade for `kubectl`).

use serde_json::{Map, Value};

use super::ApplyError;
use super::fieldpath::{FieldSet, Path};
use super::managed::{
    self, MAX_UPDATE_MANAGERS, Managed, OPERATION_APPLY, OPERATION_UPDATE, Timestamp, VersionedSet,
};
use super::schema::{ApplySchema, zero_object};
use super::typed;
use super::updater::{Conflicts, ManagerSets, Updater, drop_emptied};
use crate::gofmt;
use crate::meta::{self, GroupVersion};

/// The annotation `kubectl apply` (client-side) keeps its last configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The longest manager name upstream accepts (and derives from a User-Agent).
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The manager whose applies upgrade objects from client-side apply.
const KUBECTL: &str = "kubectl";
/// The placeholder manager upstream records an update under before renaming it.
const CURRENT_OPERATION: &str = "current-operation";
/// The manager that owns what existed before the first apply to an untracked object.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The manager name used when a request names none.
const UNKNOWN_MANAGER: &str = "unknown";
/// Upstream's limit on the total size of an object's annotations.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// A non-apply write: create, update (PUT) or patch.
#[derive(Debug, Clone, Copy)]
pub struct UpdateOptions<'a> {
    /// The `fieldManager` parameter, else [`manager_from_user_agent`]; empty is `unknown`.
    pub manager: &'a str,
    /// The group version of the request (`apps/v1`).
    pub api_version: &'a str,
    /// The subresource written (`status`, `scale`), or empty for the object itself.
    pub subresource: &'a str,
    /// The fields the resource's strategy resets for this endpoint (upstream's
    /// `GetResetFields`, e.g. `status` for the main resource of most kinds, `spec` and
    /// `metadata.labels` for `deployments/status`); never recorded as owned.
    pub reset_fields: &'a FieldSet,
    /// The time recorded for the manager when the write changes something.
    pub now: Timestamp,
}

/// A server-side apply (`PATCH` with `application/apply-patch+yaml`).
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions<'a> {
    /// The `fieldManager` parameter (required for apply by the API server).
    pub manager: &'a str,
    /// The group version of the request (`apps/v1`); the configuration must match it.
    pub api_version: &'a str,
    /// The kind served (`Deployment`); the configuration must match it.
    pub kind: &'a str,
    /// The subresource written, or empty for the object itself.
    pub subresource: &'a str,
    /// `force=true`: take contested fields instead of failing.
    pub force: bool,
    /// As [`UpdateOptions::reset_fields`].
    pub reset_fields: &'a FieldSet,
    /// The time recorded for the manager when the apply changes the object.
    pub now: Timestamp,
}

/// What both operations need besides the objects.
#[derive(Clone, Copy)]
struct Context<'a> {
    schema: &'a dyn ApplySchema,
    api_version: &'a str,
    subresource: &'a str,
    reset_fields: &'a FieldSet,
    now: Timestamp,
}

/// The manager name upstream derives from a User-Agent when a request names none: what
/// precedes the first `/`, without unprintable characters, at most 128 bytes
/// (`kubectl/v1.32.0 (linux/amd64) kubernetes/abc` gives `kubectl`).
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars() {
        if !gofmt::is_printable(c) {
            continue;
        }
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Records a non-apply write in `metadata.managedFields` and returns the object to store.
///
/// Call it where upstream's handlers do: after the body is decoded and defaulted (for a
/// patch: after the patch is applied), before mutating admission and the strategy's
/// `PrepareForCreate`/`PrepareForUpdate`, whose changes are therefore never owned.
///
/// `live` is the stored object, `None` on create (it then stands for
/// [`zero_object`]); `new` is the object as it will be stored, including any
/// `managedFields` the client sent: kept when valid and non-empty, an empty list (or one
/// empty entry) resets tracking, otherwise the live ones carry over; subresource writes
/// always keep the live ones. The manager then owns what it changed. An existing object
/// without `managedFields` stays untracked until its first apply. Like upstream's
/// `UpdateNoErrors`, this never fails: on error the live `managedFields` are kept (see
/// [`try_update`] for the error).
pub fn update(
    live: Option<&Value>,
    new: &Value,
    opts: &UpdateOptions<'_>,
    schema: &dyn ApplySchema,
) -> Value {
    match try_update(live, new, opts, schema) {
        Ok(object) => object,
        Err(_) => {
            let mut object = new.clone();
            set_managed_fields(&mut object, live.and_then(managed_fields).cloned());
            object
        }
    }
}

/// [`update`], reporting why ownership could not be computed.
pub fn try_update(
    live: Option<&Value>,
    new: &Value,
    opts: &UpdateOptions<'_>,
    schema: &dyn ApplySchema,
) -> Result<Value, ApplyError> {
    let live_entries = live.and_then(managed_fields);
    let decode_live = || managed::decode(live_entries).unwrap_or_default();
    let managed = if !opts.subresource.is_empty() {
        decode_live()
    } else {
        let new_entries = managed_fields(new);
        if managed::is_reset(new_entries) {
            Managed::default()
        } else {
            match managed::decode(new_entries) {
                Ok(m) if !m.fields.is_empty() => m,
                _ => decode_live(),
            }
        }
    };
    let mut object = new.clone();
    set_managed_fields(&mut object, None);
    let ctx = Context {
        schema,
        api_version: opts.api_version,
        subresource: opts.subresource,
        reset_fields: opts.reset_fields,
        now: opts.now,
    };
    let managed = track_update(live, &object, managed, opts.manager, &ctx)?;
    set_managed_fields(&mut object, managed::encode(&managed));
    Ok(object)
}

/// Server-side apply: merges `config` into `live` (`None` on create) for
/// `opts.manager` and returns the object to store, with `metadata.managedFields` updated,
/// or the conflicts (409) and other errors upstream reports ([`ApplyError::to_status`]).
///
/// The result is what upstream's field manager returns before defaulting: the API server
/// defaults it, then admits, prepares and validates it as for any other write. When the
/// apply changes nothing but ownership, the result is `live` with new `managedFields`
/// (and the applier's time is not updated). For `kubectl` the last-applied annotation of
/// client-side apply is kept in step, and fields it last applied are taken over without
/// conflicts.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    opts: &ApplyOptions<'_>,
    schema: &dyn ApplySchema,
) -> Result<Value, ApplyError> {
    let managed = managed::decode(live.and_then(managed_fields))
        .map_err(|e| ApplyError::Internal(format!("failed to decode managed fields: {e}")))?;

    let got = meta::gvk_of(config);
    let expected = GroupVersion::parse(opts.api_version)
        .unwrap_or_default()
        .with_kind(opts.kind);
    if got != expected {
        return Err(ApplyError::BadRequest(format!(
            "invalid object type: {got}"
        )));
    }

    let ctx = Context {
        schema,
        api_version: opts.api_version,
        subresource: opts.subresource,
        reset_fields: opts.reset_fields,
        now: opts.now,
    };
    let attempt =
        |force: bool| apply_tracked(live, config, managed.clone(), opts.manager, force, &ctx);
    let result = match attempt(opts.force) {
        Err(ApplyError::Conflicts(conflicts)) if opts.manager == KUBECTL => {
            // Upgrading from client-side apply: fields the last-applied annotation set to
            // their live values are kubectl's to take.
            match allowed_conflicts_from_last_applied(live, opts.api_version, schema) {
                Some(allowed) => {
                    let rest: Vec<_> = conflicts
                        .0
                        .into_iter()
                        .filter(|c| !allowed.has(&c.path.0))
                        .collect();
                    if rest.is_empty() {
                        attempt(true)
                    } else {
                        Err(ApplyError::Conflicts(Conflicts(rest)))
                    }
                }
                None => Err(ApplyError::Conflicts(conflicts)),
            }
        }
        other => other,
    };
    let (mut object, managed) = result?;
    if opts.manager == KUBECTL && has_last_applied(&object) {
        set_last_applied(&mut object, &build_last_applied(config));
    }
    set_managed_fields(&mut object, managed::encode(&managed));
    Ok(object)
}

/// The apply below the client-side-apply layers.
fn apply_tracked(
    live: Option<&Value>,
    config: &Value,
    mut managed: Managed,
    manager: &str,
    force: bool,
    ctx: &Context<'_>,
) -> Result<(Value, Managed), ApplyError> {
    let live_obj = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    if managed.fields.is_empty() && live.is_some() {
        // Tracking starts now: what exists already belongs to `before-first-apply`.
        let zero = zero_object(ctx.schema);
        let id = managed::identifier(
            BEFORE_FIRST_APPLY,
            OPERATION_UPDATE,
            ctx.api_version,
            ctx.subresource,
        );
        record_update(&zero, &live_obj, &mut managed, &id, ctx).map_err(|e| {
            ApplyError::Internal(format!("failed to create manager for existing fields: {e}"))
        })?;
        managed::cap_update_managers(&mut managed, MAX_UPDATE_MANAGERS);
    }
    let id = managed::identifier(or_unknown(manager), OPERATION_APPLY, "", ctx.subresource);

    let patch_version = GroupVersion::parse(
        config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let version = GroupVersion::parse(ctx.api_version).unwrap_or_default();
    if patch_version != version {
        return Err(ApplyError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {patch_version}, expected: {version}"
        )));
    }
    if managed_fields(config).is_some_and(Value::is_array) {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".to_owned(),
        ));
    }
    typed::validate(config, ctx.schema, false).map_err(|e| {
        ApplyError::Internal(format!(
            "failed to create typed patch object ({}): {e}",
            gvk_nn(config)
        ))
    })?;
    typed::validate(&live_obj, ctx.schema, true).map_err(|e| {
        ApplyError::Internal(format!(
            "failed to create typed live object ({}): {e}",
            gvk_nn(&live_obj)
        ))
    })?;

    let updater = Updater {
        schema: ctx.schema,
        ignored: ctx.reset_fields,
    };
    let mut fields = managed.fields.clone();
    let (new_obj, emptied) =
        updater.apply(&live_obj, config, ctx.api_version, &mut fields, &id, force)?;
    strip_untracked(&mut fields, &id);
    managed.fields = fields;
    let object = match new_obj {
        Some(mut object) => {
            drop_emptied(&mut object, &emptied);
            managed.times.insert(id, Some(ctx.now));
            object
        }
        None => live_obj,
    };
    Ok((object, managed))
}

/// An update through upstream's layers: untracked objects stay untracked, the manager's
/// entry absorbs what it changed, old update entries are capped.
fn track_update(
    live: Option<&Value>,
    new: &Value,
    mut managed: Managed,
    manager: &str,
    ctx: &Context<'_>,
) -> Result<Managed, ApplyError> {
    if managed.fields.is_empty() && live.and_then(meta::uid).is_some_and(|uid| !uid.is_empty()) {
        // An existing object without managedFields (or a reset): upstream does not start
        // tracking on update.
        return Ok(managed);
    }
    let id = managed::identifier(
        or_unknown(manager),
        OPERATION_UPDATE,
        ctx.api_version,
        ctx.subresource,
    );
    let zero;
    let live_obj = match live {
        Some(l) => l,
        None => {
            zero = zero_object(ctx.schema);
            &zero
        }
    };
    record_update(live_obj, new, &mut managed, &id, ctx)?;
    managed::cap_update_managers(&mut managed, MAX_UPDATE_MANAGERS);
    Ok(managed)
}

/// Gives the fields changed from `live` to `new` to the manager `id`, stamping its time
/// if it changed anything.
fn record_update(
    live: &Value,
    new: &Value,
    managed: &mut Managed,
    id: &str,
    ctx: &Context<'_>,
) -> Result<(), ApplyError> {
    typed::validate(new, ctx.schema, true).map_err(|e| {
        ApplyError::Internal(format!(
            "failed to convert new object ({}) to smd typed: {e}",
            gvk_nn(new)
        ))
    })?;
    typed::validate(live, ctx.schema, true).map_err(|e| {
        ApplyError::Internal(format!(
            "failed to convert live object ({}) to smd typed: {e}",
            gvk_nn(live)
        ))
    })?;
    let updater = Updater {
        schema: ctx.schema,
        ignored: ctx.reset_fields,
    };
    // Recorded under a placeholder so that the manager's own earlier entry is treated
    // like anyone else's, then merged back into it.
    let mut fields: ManagerSets = managed.fields.clone();
    updater.update(live, new, ctx.api_version, &mut fields, CURRENT_OPERATION);
    strip_untracked(&mut fields, CURRENT_OPERATION);
    if let Some(current) = fields.remove(CURRENT_OPERATION) {
        let merged = match fields.get(id) {
            Some(previous) => VersionedSet {
                set: current.set.union(&previous.set),
                ..current
            },
            None => current,
        };
        fields.insert(id.to_owned(), merged);
        managed.times.insert(id.to_owned(), Some(ctx.now));
    }
    managed.fields = fields;
    Ok(())
}

/// Fields upstream never records as owned: type and identity metadata the server sets.
fn untracked_fields() -> FieldSet {
    let mut set = FieldSet::new();
    for path in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ] {
        set.insert(&Path::fields(path).0);
    }
    set
}

fn strip_untracked(fields: &mut ManagerSets, id: &str) {
    if let Some(vs) = fields.get_mut(id) {
        vs.set = vs.set.difference(&untracked_fields());
        if vs.set.is_empty() {
            fields.remove(id);
        }
    }
}

fn or_unknown(manager: &str) -> &str {
    if manager.is_empty() {
        UNKNOWN_MANAGER
    } else {
        manager
    }
}

/// `namespace/name; group/version, Kind=Kind`, as upstream names objects in errors.
fn gvk_nn(obj: &Value) -> String {
    format!(
        "{}/{}; {}",
        meta::namespace(obj).unwrap_or_default(),
        meta::name(obj).unwrap_or_default(),
        meta::gvk_of(obj)
    )
}

fn managed_fields(obj: &Value) -> Option<&Value> {
    meta::metadata(obj)?.get("managedFields")
}

fn set_managed_fields(obj: &mut Value, entries: Option<Value>) {
    match entries {
        Some(entries) => {
            if let Ok(meta) = meta::metadata_mut(obj) {
                meta.insert("managedFields".to_owned(), entries);
            }
        }
        None => {
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
    }
}

fn last_applied(obj: &Value) -> Option<&str> {
    meta::metadata(obj)?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
}

fn has_last_applied(obj: &Value) -> bool {
    last_applied(obj).is_some_and(|s| !s.is_empty())
}

/// The applied configuration without the annotation, as upstream's unstructured encoder
/// writes it (sorted keys, trailing newline).
fn build_last_applied(config: &Value) -> String {
    let mut copy = config.clone();
    if let Some(annotations) = copy
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    let mut out = super::gojson::value(&copy, super::gojson::Escapes::Std);
    out.push('\n');
    out
}

fn set_last_applied(obj: &mut Value, value: &str) {
    let Ok(meta) = meta::metadata_mut(obj) else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    let Some(map) = annotations.as_object_mut() else {
        return;
    };
    map.insert(
        LAST_APPLIED_ANNOTATION.to_owned(),
        Value::String(value.to_owned()),
    );
    let size: usize = map
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        map.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// The fields whose last client-side-applied value is still live: `kubectl` may take
/// them from other managers when it switches to server-side apply.
fn allowed_conflicts_from_last_applied(
    live: Option<&Value>,
    api_version: &str,
    schema: &dyn ApplySchema,
) -> Option<FieldSet> {
    let live = live?;
    let text = last_applied(live).filter(|s| !s.is_empty())?;
    let last: Value = serde_json::from_str(text).ok()?;
    last.get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(api_version) {
        return None;
    }
    typed::validate(live, schema, false).ok()?;
    typed::validate(&last, schema, false).ok()?;
    let set = typed::to_field_set(&last, schema);
    let comparison = typed::compare(&last, live, schema);
    Some(
        set.difference(&comparison.modified)
            .difference(&comparison.added)
            .difference(&comparison.removed),
    )
}
