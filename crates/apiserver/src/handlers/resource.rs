//! The resource endpoints: routing a resource request (`/api/v1/namespaces/{ns}/pods/{name}/
//! {sub}`, all-namespace collections, cluster-scoped paths, the legacy `/watch/` prefix) to
//! the registry operation it asks for, with upstream's `404`/`405` answers for paths and
//! methods nothing serves, and the handlers of get, list, watch, create, update, patch,
//! delete and deletecollection.

use std::sync::Arc;

use axum::{
    extract::Request,
    http::{HeaderMap, Method, StatusCode, header},
    response::Response,
};
use serde_json::{Map, Value, json};
use tug_api::{
    Gvk,
    catalog::{self, Resource, Subresource, Verb},
    printers::{IncludeObject, TableOptions},
};
use tug_apimachinery::{
    GroupResource, Status,
    apply::{self, Timestamp, UpdateOptions},
};

use crate::{
    authn::UserInfo,
    registry::{ObjectList, RequestContext, ResourceStore, Update},
    request_info::RequestInfo,
};

use super::{
    Api, StatusResult, Warnings, body,
    negotiate::{self, Conversion, Output, Restrictions},
    patch::{self, PatchType, Patcher},
    query::{self, Query},
    response::{self, Shape},
    schemas::{TypedSchema, reset_fields},
    watch,
};

/// Subresources whose requests the registry serves; the others (`log`, `exec`, `attach`,
/// `portforward`, `proxy`, `token`, …) are answered with `405` until they are
/// built.
const REGISTRY_SUBRESOURCES: &[&str] = &["status", "scale", "binding", "eviction", "finalize"];

/// Resources whose strategy lets a PUT create a missing object (upstream's
/// `AllowCreateOnUpdate`).
const CREATE_ON_UPDATE: &[(&str, &str)] = &[
    ("", "endpoints"),
    ("", "events"),
    ("", "limitranges"),
    ("events.k8s.io", "events"),
    ("coordination.k8s.io", "leases"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
];

/// Whether `group`/`version` is served under the request's prefix.
fn served_group_version(info: &RequestInfo) -> bool {
    let core = info.api_prefix == "api";
    if core != info.api_group.is_empty() {
        return false;
    }
    catalog::group(&info.api_group).is_some_and(|g| g.versions.contains(&info.api_version.as_str()))
}

/// The answer to a path nothing serves: upstream's JSON `404` under a served group-version,
/// Go's plain-text `404` elsewhere.
pub(crate) fn not_found_for_path(path: &str) -> Response {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let served = match segments.as_slice() {
        ["api", version, ..] => catalog::group("").is_some_and(|g| g.versions.contains(version)),
        ["apis", group, version, ..] => catalog::group(group)
            .is_some_and(|g| !g.name.is_empty() && g.versions.contains(version)),
        _ => false,
    };
    if served {
        response::route_not_found()
    } else {
        text_not_found()
    }
}

fn text_not_found() -> Response {
    let mut response = Response::new(axum::body::Body::from("404 page not found\n"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// What a resource request is about.
struct Call {
    resource: &'static Resource,
    store: Arc<ResourceStore>,
    namespace: Option<String>,
    user: UserInfo,
    user_agent: String,
    headers: HeaderMap,
    raw_query: Option<String>,
    query: Query,
    warnings: Warnings,
}

impl Call {
    fn context(&self, dry_run: bool) -> RequestContext {
        RequestContext {
            user: self.user.clone(),
            namespace: self.namespace.clone(),
            dry_run,
            user_agent: self.user_agent.clone(),
        }
    }

    fn group_resource(&self) -> GroupResource {
        GroupResource::new(self.resource.group, self.resource.plural)
    }

    fn output(&self, streaming: bool) -> StatusResult<Output> {
        negotiate::output(
            &self.headers,
            self.raw_query.as_deref(),
            Restrictions::Resource,
            streaming,
        )
    }

    /// The table options of a `Table` response (validating `includeObject`).
    fn table_options(&self, output: &Output) -> StatusResult<Option<TableOptions>> {
        match output.conversion {
            Conversion::Table(_) => Ok(Some(TableOptions {
                include_object: response::include_object(&self.query)?,
                no_headers: false,
                now: response::now(),
            })),
            _ => Ok(None),
        }
    }

    fn manager(&self) -> String {
        self.query
            .field_manager()
            .unwrap_or_else(|| apply::manager_from_user_agent(&self.user_agent))
    }

    fn respond(&self, code: StatusCode, value: &Value, output: &Output) -> Response {
        response::object(code, value, output, &self.warnings)
    }

    fn fail(&self, status: &Status) -> Response {
        response::error(status, &self.warnings)
    }
}

/// The operation a request asks for.
enum Operation {
    Get {
        name: String,
        sub: Option<&'static Subresource>,
    },
    List {
        watch_name: Option<String>,
        forced_watch: bool,
    },
    Create {
        name: Option<String>,
        sub: Option<&'static Subresource>,
    },
    Update {
        name: String,
        sub: Option<&'static Subresource>,
    },
    Patch {
        name: String,
        sub: Option<&'static Subresource>,
    },
    Delete {
        name: String,
    },
    DeleteCollection,
}

/// Routes a resource request (its path already understood by the request filter).
pub(crate) async fn serve(api: &Api, info: RequestInfo, request: Request) -> Response {
    if !served_group_version(&info) {
        return text_not_found();
    }
    if info.verb == "proxy" {
        return response::route_not_found();
    }
    let Some(resource) = catalog::by_gvr(&info.api_group, &info.api_version, &info.resource) else {
        return response::route_not_found();
    };
    let parts = &info.parts;
    let namespace = if resource.namespaced {
        (!info.namespace.is_empty()).then(|| info.namespace.clone())
    } else {
        let names_itself =
            resource.group.is_empty() && resource.plural == "namespaces" && parts.len() >= 2;
        if !info.namespace.is_empty() && !names_itself {
            return response::route_not_found();
        }
        None
    };
    let method = request.method().clone();
    let operation = match route(resource, parts, &method, &info.verb, namespace.is_some()) {
        Ok(op) => op,
        Err(refusal) => return refusal.response(),
    };

    let Some(store) = api
        .registry
        .get(resource.group, resource.version, resource.plural)
        .cloned()
    else {
        // Virtual resources (reviews, component statuses) are not served yet.
        return response::error(
            &Status::method_not_supported(
                &GroupResource::new(resource.group, resource.plural),
                &info.verb,
            ),
            &Warnings::default(),
        );
    };
    let (parts_head, body) = request.into_parts();
    let user = parts_head
        .extensions
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_default();
    let user_agent = parts_head
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let raw_query = parts_head.uri.query().map(str::to_string);
    let call = Call {
        resource,
        store,
        namespace,
        user,
        user_agent,
        query: Query::parse(raw_query.as_deref()),
        raw_query,
        headers: parts_head.headers,
        warnings: Warnings::default(),
    };
    let result = match operation {
        Operation::Get { name, sub } => get(&call, &name, sub).await,
        Operation::List {
            watch_name,
            forced_watch,
        } => list(&call, watch_name.as_deref(), forced_watch).await,
        Operation::Create { name, sub } => create(&call, name.as_deref(), sub, body).await,
        Operation::Update { name, sub } => update(&call, &name, sub, body).await,
        Operation::Patch { name, sub } => patch_object(&call, &name, sub, body).await,
        Operation::Delete { name } => delete(&call, &name, body).await,
        Operation::DeleteCollection => delete_collection(&call, body).await,
    };
    result.unwrap_or_else(|status| call.fail(&status))
}

/// Maps a path shape and method to an operation, or to upstream's `404`/`405`.
fn route(
    resource: &'static Resource,
    parts: &[String],
    method: &Method,
    verb: &str,
    has_namespace: bool,
) -> Result<Operation, Refusal> {
    let namespaced_path_ok = !resource.namespaced || has_namespace;
    let allowed = |ok: bool, op: Operation| {
        if ok {
            Ok(op)
        } else {
            Err(Refusal::MethodNotAllowed)
        }
    };
    match parts.len() {
        1 => match *method {
            Method::GET => {
                let watching = verb == "watch";
                let needed = if watching { Verb::Watch } else { Verb::List };
                allowed(
                    resource.has_verb(needed),
                    Operation::List {
                        watch_name: None,
                        forced_watch: watching,
                    },
                )
            }
            Method::POST => allowed(
                namespaced_path_ok && resource.has_verb(Verb::Create),
                Operation::Create {
                    name: None,
                    sub: None,
                },
            ),
            Method::DELETE => allowed(
                namespaced_path_ok && resource.has_verb(Verb::DeleteCollection),
                Operation::DeleteCollection,
            ),
            _ => Err(Refusal::MethodNotAllowed),
        },
        2 => {
            let object_verbs = [Verb::Get, Verb::Update, Verb::Patch, Verb::Delete];
            if !namespaced_path_ok || !object_verbs.iter().any(|v| resource.has_verb(*v)) {
                return Err(Refusal::NotFound);
            }
            let name = parts[1].clone();
            match *method {
                Method::GET if verb == "watch" => allowed(
                    resource.has_verb(Verb::Watch),
                    Operation::List {
                        watch_name: Some(name),
                        forced_watch: true,
                    },
                ),
                Method::GET => allowed(
                    resource.has_verb(Verb::Get),
                    Operation::Get { name, sub: None },
                ),
                Method::PUT => allowed(
                    resource.has_verb(Verb::Update),
                    Operation::Update { name, sub: None },
                ),
                Method::PATCH => allowed(
                    resource.has_verb(Verb::Patch),
                    Operation::Patch { name, sub: None },
                ),
                Method::DELETE => {
                    allowed(resource.has_verb(Verb::Delete), Operation::Delete { name })
                }
                _ => Err(Refusal::MethodNotAllowed),
            }
        }
        3 => {
            if !namespaced_path_ok {
                return Err(Refusal::NotFound);
            }
            let Some(sub) = resource.subresource(&parts[2]) else {
                return Err(Refusal::NotFound);
            };
            let name = parts[1].clone();
            let (needed, op) = match *method {
                Method::GET => (
                    Verb::Get,
                    Operation::Get {
                        name,
                        sub: Some(sub),
                    },
                ),
                Method::PUT => (
                    Verb::Update,
                    Operation::Update {
                        name,
                        sub: Some(sub),
                    },
                ),
                Method::PATCH => (
                    Verb::Patch,
                    Operation::Patch {
                        name,
                        sub: Some(sub),
                    },
                ),
                Method::POST => (
                    Verb::Create,
                    Operation::Create {
                        name: Some(name),
                        sub: Some(sub),
                    },
                ),
                _ => return Err(Refusal::MethodNotAllowed),
            };
            if !sub.verbs.contains(&needed) {
                return Err(Refusal::MethodNotAllowed);
            }
            if !REGISTRY_SUBRESOURCES.contains(&sub.name) {
                return Err(not_served(resource, sub, needed));
            }
            Ok(op)
        }
        _ => match parts.get(2).and_then(|s| resource.subresource(s)) {
            // Proxy subresources take a path; none is served yet.
            Some(sub) if sub.name == "proxy" => Err(not_served(resource, sub, Verb::Get)),
            _ => Err(Refusal::NotFound),
        },
    }
}

/// `405` for a subresource the catalogue lists but this server does not serve yet.
fn not_served(resource: &Resource, sub: &Subresource, verb: Verb) -> Refusal {
    Refusal::NotServed(Box::new(Status::method_not_supported(
        &GroupResource::new(resource.group, &format!("{}/{}", resource.plural, sub.name)),
        verb.as_str(),
    )))
}

/// Why a request has no operation.
enum Refusal {
    /// No route: upstream's generic `404`.
    NotFound,
    /// A route without this method: upstream's generic `405`.
    MethodNotAllowed,
    /// A subresource not served yet.
    NotServed(Box<Status>),
}

impl Refusal {
    fn response(&self) -> Response {
        match self {
            Refusal::NotFound => response::route_not_found(),
            Refusal::MethodNotAllowed => response::method_not_allowed(),
            Refusal::NotServed(status) => response::error(status, &Warnings::default()),
        }
    }
}

/// The kind a request on `sub` (or the object itself) carries.
fn kind_of(resource: &Resource, sub: Option<&Subresource>) -> Gvk<'static> {
    sub.map_or_else(|| resource.gvk(), |s| s.response_gvk(resource))
}

async fn get(call: &Call, name: &str, sub: Option<&'static Subresource>) -> StatusResult<Response> {
    let output = call.output(false)?;
    let table = call.table_options(&output)?;
    let object = call
        .store
        .get(
            &call.context(false),
            name,
            sub.map(|s| s.name),
            &query::get_version(&call.query),
        )
        .await?;
    let value = response::convert(
        object,
        Shape::Object,
        &output,
        kind_of(call.resource, sub),
        table,
    )?;
    Ok(call.respond(StatusCode::OK, &value, &output))
}

/// A registry list as upstream's `<Kind>List`.
fn list_body(resource: &Resource, list: ObjectList, strip_type_meta: bool) -> Value {
    let mut metadata = Map::new();
    if !list.resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), list.resource_version.into());
    }
    if let Some(token) = list.continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), token.into());
    }
    if let Some(count) = list.remaining_item_count {
        metadata.insert("remainingItemCount".into(), count.into());
    }
    let items: Vec<Value> = list
        .items
        .into_iter()
        .map(|mut item| {
            // Upstream's list items carry no type meta of their own.
            if strip_type_meta && let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    json!({
        "kind": resource.list_kind,
        "apiVersion": resource.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

async fn list(call: &Call, watch_name: Option<&str>, forced_watch: bool) -> StatusResult<Response> {
    let options = query::collection(&call.query, forced_watch, watch_name)?;
    if options.watch {
        let output = call.output(true)?;
        let include = match call.table_options(&output)? {
            Some(table) => table.include_object,
            None => IncludeObject::Metadata,
        };
        let events = call
            .store
            .watch(&call.context(false), &options.watch_options())
            .await?;
        return Ok(watch::respond(
            events,
            output,
            call.resource.gvk(),
            include,
            watch::timeout(options.timeout),
        ));
    }
    let output = call.output(false)?;
    let table = call.table_options(&output)?;
    let list = call.store.list(&call.context(false), &options.list).await?;
    let body = list_body(call.resource, list, output.conversion == Conversion::None);
    let value = response::convert(body, Shape::List, &output, call.resource.gvk(), table)?;
    Ok(call.respond(StatusCode::OK, &value, &output))
}

/// Upstream's `EnsureObjectNamespaceMatchesRequestNamespace` (cluster-scoped objects lose any
/// namespace they carry).
fn ensure_namespace(object: &mut Value, namespace: Option<&str>) -> StatusResult<()> {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        if let (Some(ns), Some(map)) = (namespace, object.as_object_mut()) {
            map.insert("metadata".into(), json!({"namespace": ns}));
        }
        return Ok(());
    };
    let current = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match namespace {
        None => {
            meta.remove("namespace");
            Ok(())
        }
        Some(ns) if current == ns => Ok(()),
        Some(ns) if current.is_empty() => {
            meta.insert("namespace".into(), ns.into());
            Ok(())
        }
        Some(_) => Err(query::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

/// Decodes a create or update body for `gvk`.
async fn decode(call: &Call, body: axum::body::Body, gvk: Gvk<'static>) -> StatusResult<Value> {
    let format = negotiate::body_format(&call.headers)?;
    let bytes = body::read(body).await?;
    body::decode_object(
        &bytes,
        format,
        body::Expect {
            gvk,
            validation: call.query.field_validation(),
        },
        &call.warnings,
    )
}

/// The ownership options of a non-apply write.
fn now() -> Timestamp {
    Timestamp::from_unix_seconds(patch::now_seconds())
}

async fn create(
    call: &Call,
    name: Option<&str>,
    sub: Option<&'static Subresource>,
    body: axum::body::Body,
) -> StatusResult<Response> {
    let output = call.output(false)?;
    query::validate_write(&call.query, "CreateOptions")?;
    let gvk = kind_of(call.resource, sub);
    let mut object = decode(call, body, gvk).await?;
    let namespace = if call.resource.namespaced {
        call.namespace.as_deref()
    } else {
        None
    };
    ensure_namespace(&mut object, namespace)?;
    if sub.is_none()
        && let Some(schema) = TypedSchema::for_kind(gvk)
    {
        let reset = reset_fields(call.resource.subresource("status").is_some(), "");
        let manager = call.manager();
        let api_version = gvk.api_version();
        object = apply::update(
            None,
            &object,
            &UpdateOptions {
                manager: &manager,
                api_version: &api_version,
                subresource: "",
                reset_fields: &reset,
                now: now(),
            },
            &schema,
        );
    }
    let mut created = call
        .store
        .create(
            &call.context(call.query.dry_run()),
            object,
            name,
            sub.map(|s| s.name),
        )
        .await?;
    if created.get("kind").and_then(Value::as_str) == Some("Status")
        && created.get("code").and_then(Value::as_i64).unwrap_or(0) == 0
        && let Some(map) = created.as_object_mut()
    {
        map.insert("code".into(), 201.into());
    }
    let value = response::convert(
        created,
        Shape::Object,
        &output,
        gvk,
        call.table_options(&output)?,
    )?;
    Ok(call.respond(StatusCode::CREATED, &value, &output))
}

async fn update(
    call: &Call,
    name: &str,
    sub: Option<&'static Subresource>,
    body: axum::body::Body,
) -> StatusResult<Response> {
    let output = call.output(false)?;
    query::validate_write(&call.query, "UpdateOptions")?;
    let gvk = kind_of(call.resource, sub);
    let mut object = decode(call, body, gvk).await?;
    patch::check_name(&object, name, call.namespace.as_deref())?;
    let namespace = if call.resource.namespaced {
        call.namespace.as_deref()
    } else {
        None
    };
    if gvk == call.resource.gvk() {
        ensure_namespace(&mut object, namespace)?;
    }

    let subresource = sub.map(|s| s.name).unwrap_or_default().to_string();
    let track = subresource != "scale";
    let schema_gvk = gvk;
    let manager = call.manager();
    let has_status = call.resource.subresource("status").is_some();
    let creatable =
        sub.is_none() && CREATE_ON_UPDATE.contains(&(call.resource.group, call.resource.plural));
    let group_resource = call.group_resource();
    let object_name = name.to_string();
    let transform = move |live: Option<&Value>| -> StatusResult<Value> {
        if live.is_none() && !creatable {
            return Err(Box::new(Status::not_found(&group_resource, &object_name)));
        }
        let Some(schema) = TypedSchema::for_kind(schema_gvk).filter(|_| track) else {
            return Ok(object.clone());
        };
        let reset = reset_fields(has_status, &subresource);
        let api_version = schema_gvk.api_version();
        Ok(apply::update(
            live,
            &object,
            &UpdateOptions {
                manager: &manager,
                api_version: &api_version,
                subresource: &subresource,
                reset_fields: &reset,
                now: now(),
            },
            &schema,
        ))
    };
    let updated = call
        .store
        .update(
            &call.context(call.query.dry_run()),
            name,
            sub.map(|s| s.name),
            Update::Transform(Box::new(transform)),
        )
        .await?;
    let code = if updated.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let value = response::convert(
        updated.object,
        Shape::Object,
        &output,
        gvk,
        call.table_options(&output)?,
    )?;
    Ok(call.respond(code, &value, &output))
}

async fn patch_object(
    call: &Call,
    name: &str,
    sub: Option<&'static Subresource>,
    body: axum::body::Body,
) -> StatusResult<Response> {
    let media = negotiate::content_type(&call.headers).unwrap_or_default();
    let Some(kind) = PatchType::from_media_type(&media) else {
        return Err(Box::new(Status::unsupported_media_type(patch::PATCH_TYPES)));
    };
    let output = call.output(false)?;
    query::validate_patch(&call.query, kind == PatchType::Apply)?;
    let bytes = body::read(body).await?;
    let gvk = kind_of(call.resource, sub);
    let patcher = Arc::new(Patcher::new(
        kind,
        &bytes,
        patch::Target {
            resource: call.resource,
            gvk,
            subresource: sub.map(|s| s.name).unwrap_or_default().to_string(),
            name: name.to_string(),
            namespace: call.namespace.clone(),
            validation: call.query.field_validation(),
            manager: call.manager(),
            force: call.query.force().unwrap_or(false),
        },
    )?);
    let runner = patcher.clone();
    let result = call
        .store
        .update(
            &call.context(call.query.dry_run()),
            name,
            sub.map(|s| s.name),
            Update::Transform(Box::new(move |live| runner.apply_to(live))),
        )
        .await;
    call.warnings.add_all(patcher.warnings.take());
    let updated = result?;
    let code = if updated.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let value = response::convert(
        updated.object,
        Shape::Object,
        &output,
        gvk,
        call.table_options(&output)?,
    )?;
    Ok(call.respond(code, &value, &output))
}

/// A `DeleteOptions` body, if the request has one.
async fn delete_body(call: &Call, body: axum::body::Body) -> StatusResult<Option<Value>> {
    let bytes = body::read(body).await?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let format = match negotiate::body_format(&call.headers)? {
        negotiate::BodyFormat::Protobuf => {
            return tug_api::protobuf::decode(&bytes)
                .map(|(_, _, options)| Some(options))
                .map_err(|e| query::bad_request(&e.to_string()));
        }
        other => other,
    };
    body::parse(&bytes, format)
        .map(Some)
        .map_err(|e| query::bad_request(&e.to_string()))
}

async fn delete(call: &Call, name: &str, body: axum::body::Body) -> StatusResult<Response> {
    let output = call.output(false)?;
    let body = delete_body(call, body).await?;
    let options = query::delete_options(&call.query, body.as_ref())?;
    let dry_run = query::delete_dry_run(&call.query, body.as_ref());
    let deleted = call
        .store
        .delete(&call.context(dry_run), name, &options)
        .await?;
    let code = if !deleted.finished && options.orphan_dependents == Some(false) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let result = if deleted.finished && !call.resource.returns_deleted_object {
        let uid = deleted
            .object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = deleted
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or(name);
        let mut details = Map::new();
        details.insert("name".into(), name.into());
        if !call.resource.group.is_empty() {
            details.insert("group".into(), call.resource.group.into());
        }
        details.insert("kind".into(), call.resource.plural.into());
        if !uid.is_empty() {
            details.insert("uid".into(), uid.into());
        }
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
    } else {
        deleted.object
    };
    let value = response::convert(
        result,
        Shape::Object,
        &output,
        call.resource.gvk(),
        call.table_options(&output)?,
    )?;
    Ok(call.respond(code, &value, &output))
}

async fn delete_collection(call: &Call, body: axum::body::Body) -> StatusResult<Response> {
    let output = call.output(false)?;
    let list_options = query::collection(&call.query, false, None)?;
    let body = delete_body(call, body).await?;
    let options = query::delete_options(&call.query, body.as_ref())?;
    let dry_run = query::delete_dry_run(&call.query, body.as_ref());
    let list = call
        .store
        .delete_collection(&call.context(dry_run), &list_options.list, &options)
        .await?;
    let body = list_body(call.resource, list, output.conversion == Conversion::None);
    let value = response::convert(
        body,
        Shape::List,
        &output,
        call.resource.gvk(),
        call.table_options(&output)?,
    )?;
    Ok(call.respond(StatusCode::OK, &value, &output))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(group: &str, plural: &str) -> &'static Resource {
        let version = catalog::group(group)
            .map(|g| g.preferred_version())
            .unwrap_or("v1");
        catalog::by_gvr(group, version, plural).expect("resource")
    }

    fn parts(path: &[&str]) -> Vec<String> {
        path.iter().map(|s| s.to_string()).collect()
    }

    fn status_of(result: Result<Operation, Refusal>) -> u16 {
        match result {
            Ok(_) => 200,
            Err(refusal) => refusal.response().status().as_u16(),
        }
    }

    #[test]
    fn paths_and_methods_route_like_upstreams_installer() {
        let pods = resource("", "pods");
        let check = |p: &[&str], method: Method, verb: &str, ns: bool| {
            status_of(route(pods, &parts(p), &method, verb, ns))
        };
        assert_eq!(
            check(&["pods"], Method::GET, "list", false),
            200,
            "all namespaces"
        );
        assert_eq!(
            check(&["pods"], Method::POST, "create", false),
            405,
            "no create across namespaces"
        );
        assert_eq!(
            check(&["pods"], Method::DELETE, "deletecollection", false),
            405
        );
        assert_eq!(check(&["pods", "x"], Method::GET, "get", false), 404);
        assert_eq!(check(&["pods", "x"], Method::POST, "create", true), 405);
        assert_eq!(
            check(&["pods", "x", "status"], Method::PUT, "update", true),
            200
        );
        assert_eq!(
            check(&["pods", "x", "status"], Method::DELETE, "delete", true),
            405
        );
        assert_eq!(check(&["pods", "x", "nope"], Method::GET, "get", true), 404);
        assert_eq!(check(&["pods", "x", "log"], Method::GET, "get", true), 405);
        assert_eq!(
            check(&["pods", "x", "binding"], Method::POST, "create", true),
            200
        );
        let namespaces = resource("", "namespaces");
        assert_eq!(
            status_of(route(
                namespaces,
                &parts(&["namespaces"]),
                &Method::DELETE,
                "deletecollection",
                false
            )),
            405
        );
        let bindings = resource("", "bindings");
        assert_eq!(
            status_of(route(
                bindings,
                &parts(&["bindings", "x"]),
                &Method::GET,
                "get",
                true
            )),
            404
        );
    }

    #[test]
    fn object_namespaces_are_filled_checked_or_dropped() {
        let mut object = json!({"metadata": {"name": "x"}});
        ensure_namespace(&mut object, Some("ns")).expect("filled");
        assert_eq!(object["metadata"]["namespace"], "ns");
        let mut other = json!({"metadata": {"name": "x", "namespace": "other"}});
        let err = ensure_namespace(&mut other, Some("ns")).expect_err("mismatch");
        assert_eq!(
            err.message,
            "the namespace of the provided object does not match the namespace sent on the request"
        );
        ensure_namespace(&mut other, None).expect("cluster-scoped");
        assert_eq!(other["metadata"].get("namespace"), None);
    }

    #[test]
    fn lists_have_upstreams_shape() {
        let list = ObjectList {
            items: vec![json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a"}})],
            resource_version: "9".into(),
            continue_token: Some("next".into()),
            remaining_item_count: Some(4),
        };
        assert_eq!(
            list_body(resource("", "pods"), list, true),
            json!({"kind": "PodList", "apiVersion": "v1",
                   "metadata": {"resourceVersion": "9", "continue": "next", "remainingItemCount": 4},
                   "items": [{"metadata": {"name": "a"}}]})
        );
    }

    #[test]
    fn paths_outside_served_group_versions_get_plain_404s() {
        assert_eq!(
            not_found_for_path("/apis/nope.example/v1/things").headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            not_found_for_path("/api/v1/things").headers()[header::CONTENT_TYPE],
            "application/json"
        );
    }
}
