//! The OpenAPI documents the API server serves, built from the catalogue and the schema:
//! `/openapi/v2` (swagger 2.0, every definition and path) and `/openapi/v3` (a discovery
//! document naming one OpenAPI 3.0 document per group-version).
//!
//! Clients depend on these: `kubectl explain` reads the v3 documents (schemas with
//! descriptions and `x-kubernetes-group-version-kind`), and kubectl decides whether the
//! server validates fields itself by finding the `fieldValidation` parameter on the PATCH
//! operation tagged with the kind's GVK. Paths, operation ids, actions and parameters follow
//! upstream's conventions (`listAppsV1NamespacedDeployment`, `x-kubernetes-action: list`);
//! parameter and operation descriptions are our own words.
//!
//! Building is deterministic and takes a while (a few megabytes of JSON): build once and
//! cache, as the API server does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::Gvk;
use crate::catalog::{self, Resource, Subresource, Verb};
use crate::schema::{self, Schema};

const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
const VERSION_INFO: &str = "io.k8s.apimachinery.pkg.version.Info";

/// Media types every object response comes in.
const OBJECT_MEDIA: &[&str] = &["application/json", "application/yaml"];
/// Media types of list responses, which may also be watch streams.
const LIST_MEDIA: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/yaml",
];
/// Media types of watch streams.
const WATCH_MEDIA: &[&str] = &["application/json", "application/json;stream=watch"];
/// Media types of pod logs.
const LOG_MEDIA: &[&str] = &["application/json", "application/yaml", "text/plain"];
/// Patch bodies.
const PATCH_MEDIA: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// The `/openapi/v2` document: swagger 2.0 with every definition and every path.
/// `server_version` is what `info.version` reports (upstream puts its `gitVersion` there).
pub fn v2(server_version: &str) -> Value {
    let schema = schema::schema();
    let mut paths = Map::new();
    for item in root_paths() {
        paths.insert(item.path.clone(), item.to_v2());
    }
    for (group, version) in group_versions() {
        for item in group_version_paths(group, version) {
            paths.insert(item.path.clone(), item.to_v2());
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": paths,
        "definitions": schema.raw_definitions().clone(),
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey",
            }
        },
        "security": [{"BearerToken": []}],
    })
}

/// The `/openapi/v3` documents: one per group-version (`api/v1`, `apis/apps/v1`, …) plus the
/// small discovery ones (`api`, `apis`, `apis/<group>`, `version`).
pub fn v3() -> V3 {
    let schema = schema::schema();
    let mut documents = BTreeMap::new();
    let mut add = |path: String, items: Vec<PathItem>| {
        let doc = v3_document(schema, &items);
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let hash = fnv1a_128_hex(&bytes);
        documents.insert(path.clone(), V3Document { path, bytes, hash });
    };
    for (group, version) in group_versions() {
        add(gv_path(group, version), group_version_paths(group, version));
    }
    for item in root_paths() {
        // `/api/` → `api`, `/apis/apps/` → `apis/apps`, `/version/` → `version`.
        let key = item.path.trim_matches('/').to_string();
        add(key, vec![item]);
    }
    V3 { documents }
}

/// The set of OpenAPI v3 documents.
#[derive(Debug, Clone)]
pub struct V3 {
    documents: BTreeMap<String, V3Document>,
}

impl V3 {
    /// The body of `GET /openapi/v3`: `{"paths": {"apis/apps/v1": {"serverRelativeURL":
    /// "/openapi/v3/apis/apps/v1?hash=…"}, …}}`.
    pub fn discovery(&self) -> Value {
        let paths: Map<String, Value> = self
            .documents
            .values()
            .map(|doc| {
                (
                    doc.path.clone(),
                    json!({"serverRelativeURL": doc.server_relative_url()}),
                )
            })
            .collect();
        json!({ "paths": paths })
    }

    /// The document served at `/openapi/v3/<path>` (`path` like `apis/apps/v1`).
    pub fn document(&self, path: &str) -> Option<&V3Document> {
        self.documents.get(path.trim_matches('/'))
    }

    /// Every document, sorted by path.
    pub fn documents(&self) -> impl Iterator<Item = &V3Document> {
        self.documents.values()
    }
}

/// One OpenAPI v3 document, serialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Document {
    path: String,
    bytes: Vec<u8>,
    hash: String,
}

impl V3Document {
    /// The path below `/openapi/v3/` (`apis/apps/v1`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The JSON body.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A content hash of the body (clients cache by it; serve the body with a long
    /// `Cache-Control` when the request's `hash` matches, as upstream does).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// `/openapi/v3/<path>?hash=<hash>`, as the discovery document lists it.
    pub fn server_relative_url(&self) -> String {
        format!("/openapi/v3/{}?hash={}", self.path, self.hash)
    }
}

/// Every served (group, version), in discovery order.
fn group_versions() -> Vec<(&'static str, &'static str)> {
    catalog::groups()
        .iter()
        .flat_map(|g| g.versions.iter().map(move |v| (g.name, *v)))
        .collect()
}

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The identifier of a group in operation ids: `Core`, `Apps`, `RbacAuthorization`.
fn group_ident(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalize)
        .collect()
}

/// The tag of a group-version's operations: `core_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let ident = group_ident(group);
    let mut chars = ident.chars();
    let lower: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    format!("{lower}_{version}")
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Path,
    Query,
}

/// A parameter's JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamType {
    String,
    Boolean,
    Integer,
}

impl ParamType {
    fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Boolean => "boolean",
            ParamType::Integer => "integer",
        }
    }
}

/// One operation or path parameter.
#[derive(Debug, Clone)]
struct Param {
    name: &'static str,
    location: In,
    ty: ParamType,
    description: String,
}

impl Param {
    fn query(name: &'static str, ty: ParamType, description: &str) -> Param {
        Param {
            name,
            location: In::Query,
            ty,
            description: description.to_string(),
        }
    }

    fn path(name: &'static str, description: String) -> Param {
        Param {
            name,
            location: In::Path,
            ty: ParamType::String,
            description,
        }
    }

    fn to_v2(&self) -> Value {
        let mut p = json!({
            "description": self.description,
            "in": if self.location == In::Path { "path" } else { "query" },
            "name": self.name,
            "type": self.ty.as_str(),
            "uniqueItems": true,
        });
        if self.location == In::Path {
            p["required"] = json!(true);
        }
        p
    }

    fn to_v3(&self) -> Value {
        let mut p = json!({
            "description": self.description,
            "in": if self.location == In::Path { "path" } else { "query" },
            "name": self.name,
            "schema": {"type": self.ty.as_str(), "uniqueItems": true},
        });
        if self.location == In::Path {
            p["required"] = json!(true);
        }
        p
    }
}

fn pretty() -> Param {
    Param::query(
        "pretty",
        ParamType::String,
        "Pretty-print the output when 'true'.",
    )
}

fn namespace_param() -> Param {
    Param::path("namespace", "The namespace of the objects.".to_string())
}

fn name_param(kind: &str) -> Param {
    Param::path("name", format!("name of the {kind}"))
}

fn dry_run() -> Param {
    Param::query(
        "dryRun",
        ParamType::String,
        "When present, the request is processed in full but nothing is persisted. The only valid value is 'All'.",
    )
}

fn field_manager() -> Param {
    Param::query(
        "fieldManager",
        ParamType::String,
        "The name of the actor making these changes: at most 128 printable characters. Required for apply patches (application/apply-patch+yaml), optional otherwise.",
    )
}

fn field_validation() -> Param {
    Param::query(
        "fieldValidation",
        ParamType::String,
        "How the server treats unknown or duplicate fields in the request body: 'Ignore' drops them silently; 'Warn' (the default) drops them and returns a warning header for each; 'Strict' fails the request with BadRequest, listing every unknown and duplicate field.",
    )
}

fn force() -> Param {
    Param::query(
        "force",
        ParamType::Boolean,
        "Apply patches only: take over fields that other managers own instead of failing with a conflict. Must be unset for other patch types.",
    )
}

fn write_params() -> Vec<Param> {
    vec![dry_run(), field_manager(), field_validation()]
}

/// The parameters of list and watch calls, sorted by name.
fn list_params() -> Vec<Param> {
    vec![
        Param::query(
            "allowWatchBookmarks",
            ParamType::Boolean,
            "Ask for BOOKMARK events, which carry only a resourceVersion; the server sends them at its discretion. Ignored unless watching.",
        ),
        continue_param(),
        field_selector(),
        label_selector(),
        limit_param(),
        resource_version(),
        resource_version_match(),
        send_initial_events(),
        timeout_seconds(),
        Param::query(
            "watch",
            ParamType::Boolean,
            "Stream add, update and delete notifications for the selected objects instead of listing them. Specify resourceVersion.",
        ),
    ]
}

fn continue_param() -> Param {
    Param::query(
        "continue",
        ParamType::String,
        "The continue token of a previous chunk of the same list query, to fetch the next chunk; all chunks come from one consistent snapshot. An expired token fails with 410 Gone. Not supported with watch.",
    )
}

fn field_selector() -> Param {
    Param::query(
        "fieldSelector",
        ParamType::String,
        "Only objects whose fields match this selector. Defaults to everything.",
    )
}

fn label_selector() -> Param {
    Param::query(
        "labelSelector",
        ParamType::String,
        "Only objects whose labels match this selector. Defaults to everything.",
    )
}

fn limit_param() -> Param {
    Param::query(
        "limit",
        ParamType::Integer,
        "The largest number of items to return. When more exist, the list metadata carries a continue token for the next chunk. Not supported with watch.",
    )
}

fn resource_version() -> Param {
    Param::query(
        "resourceVersion",
        ParamType::String,
        "Constrains which resource versions the request may be served from (see the API concepts documentation on resource versions). Defaults to unset.",
    )
}

fn resource_version_match() -> Param {
    Param::query(
        "resourceVersionMatch",
        ParamType::String,
        "How resourceVersion applies to a list: 'NotOlderThan' or 'Exact'. Recommended whenever a list sets resourceVersion. Defaults to unset.",
    )
}

fn send_initial_events() -> Param {
    Param::query(
        "sendInitialEvents",
        ParamType::Boolean,
        "With watch=true, begin the stream with synthetic ADDED events for the current state, then a BOOKMARK annotated \"k8s.io/initial-events-end\". Requires resourceVersionMatch=NotOlderThan.",
    )
}

fn timeout_seconds() -> Param {
    Param::query(
        "timeoutSeconds",
        ParamType::Integer,
        "Ends the list or watch call after this many seconds, whatever its activity.",
    )
}

/// The parameters of deleting one object, sorted by name.
fn delete_params() -> Vec<Param> {
    vec![
        dry_run(),
        grace_period(),
        ignore_store_read_error(),
        orphan_dependents(),
        propagation_policy(),
    ]
}

/// The parameters of deleting a collection, sorted by name.
fn delete_collection_params() -> Vec<Param> {
    vec![
        continue_param(),
        dry_run(),
        field_selector(),
        grace_period(),
        ignore_store_read_error(),
        label_selector(),
        limit_param(),
        orphan_dependents(),
        propagation_policy(),
        resource_version(),
        resource_version_match(),
        send_initial_events(),
        timeout_seconds(),
    ]
}

fn grace_period() -> Param {
    Param::query(
        "gracePeriodSeconds",
        ParamType::Integer,
        "Seconds to wait before the object is deleted; zero deletes at once. Defaults to the object's own grace period.",
    )
}

fn ignore_store_read_error() -> Param {
    Param::query(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        ParamType::Boolean,
        "Delete an object that cannot be read or decoded from storage, skipping finalizers and preconditions. Dangerous; defaults to false.",
    )
}

fn orphan_dependents() -> Param {
    Param::query(
        "orphanDependents",
        ParamType::Boolean,
        "Deprecated, use propagationPolicy: whether dependents are orphaned (adds or removes the \"orphan\" finalizer).",
    )
}

fn propagation_policy() -> Param {
    Param::query(
        "propagationPolicy",
        ParamType::String,
        "Whether and how dependents are garbage-collected: 'Orphan', 'Background' or 'Foreground'. Defaults to what the object's finalizers and the resource's default policy say.",
    )
}

/// The query parameters of a connect subresource, sorted by name.
fn connect_params(subresource: &str) -> Vec<Param> {
    let container = || {
        Param::query(
            "container",
            ParamType::String,
            "The container to connect to; may be omitted when the pod has only one.",
        )
    };
    let stream = |name: &'static str, what: &str| {
        Param::query(
            name,
            ParamType::Boolean,
            &format!("Connect the container's {what}."),
        )
    };
    match subresource {
        "exec" => vec![
            Param::query(
                "command",
                ParamType::String,
                "The command to run: repeat the parameter for each argument. Not run in a shell.",
            ),
            container(),
            stream("stderr", "standard error"),
            stream("stdin", "standard input"),
            stream("stdout", "standard output"),
            Param::query(
                "tty",
                ParamType::Boolean,
                "Allocate a terminal for the command.",
            ),
        ],
        "attach" => vec![
            container(),
            stream("stderr", "standard error"),
            stream("stdin", "standard input"),
            stream("stdout", "standard output"),
            Param::query(
                "tty",
                ParamType::Boolean,
                "The attached stream is a terminal.",
            ),
        ],
        "portforward" => vec![Param::query(
            "ports",
            ParamType::Integer,
            "The ports in the pod to forward to: repeat the parameter for each.",
        )],
        _ => Vec::new(),
    }
}

/// The query parameters of pod logs, sorted by name.
fn log_params() -> Vec<Param> {
    vec![
        Param::query(
            "container",
            ParamType::String,
            "The container whose logs to read; may be omitted when the pod has only one.",
        ),
        Param::query(
            "follow",
            ParamType::Boolean,
            "Keep the stream open and follow the log.",
        ),
        Param::query(
            "insecureSkipTLSVerifyBackend",
            ParamType::Boolean,
            "Do not verify the serving certificate of the kubelet the logs come from.",
        ),
        Param::query(
            "limitBytes",
            ParamType::Integer,
            "Stop after this many bytes of log output.",
        ),
        Param::query(
            "previous",
            ParamType::Boolean,
            "Read the logs of the previous, terminated instance of the container.",
        ),
        Param::query(
            "sinceSeconds",
            ParamType::Integer,
            "Only log lines newer than this many seconds.",
        ),
        Param::query(
            "stream",
            ParamType::String,
            "Which output to read: 'All' (the default), 'Stdout' or 'Stderr'.",
        ),
        Param::query(
            "tailLines",
            ParamType::Integer,
            "Only this many lines from the end of the log.",
        ),
        Param::query(
            "timestamps",
            ParamType::Boolean,
            "Prefix every line with its RFC 3339 timestamp.",
        ),
    ]
}

/// What an operation answers with.
#[derive(Debug, Clone)]
enum Payload {
    /// An object of this definition.
    Def(&'static str),
    /// A plain string (logs, connect streams).
    Text,
}

/// An operation's request body.
#[derive(Debug, Clone)]
struct Body {
    definition: &'static str,
    /// Patch media types instead of `*/*`.
    patch: bool,
    required: bool,
}

/// One operation of a path.
#[derive(Debug, Clone)]
struct Operation {
    method: &'static str,
    id: String,
    description: String,
    action: Option<&'static str>,
    gvk: Option<Gvk<'static>>,
    params: Vec<Param>,
    body: Option<Body>,
    /// Status codes with their descriptions; all answer with `payload`.
    codes: &'static [(u16, &'static str)],
    payload: Payload,
    media: &'static [&'static str],
    tag: String,
}

const OK: &[(u16, &str)] = &[(200, "OK")];
const OK_CREATED: &[(u16, &str)] = &[(200, "OK"), (201, "Created")];
const OK_CREATED_ACCEPTED: &[(u16, &str)] = &[(200, "OK"), (201, "Created"), (202, "Accepted")];
const OK_ACCEPTED: &[(u16, &str)] = &[(200, "OK"), (202, "Accepted")];

impl Operation {
    fn to_v2(&self) -> Value {
        let mut params: Vec<Value> = Vec::new();
        if let Some(body) = &self.body {
            params.push(json!({
                "in": "body",
                "name": "body",
                "required": body.required,
                "schema": {"$ref": format!("#/definitions/{}", body.definition)},
            }));
        }
        params.extend(self.params.iter().map(Param::to_v2));
        let consumes: Vec<&str> = match &self.body {
            Some(Body { patch: true, .. }) => PATCH_MEDIA.to_vec(),
            _ => vec!["*/*"],
        };
        let schema = match self.payload {
            Payload::Def(def) => json!({"$ref": format!("#/definitions/{def}")}),
            Payload::Text => json!({"type": "string"}),
        };
        let mut responses = Map::new();
        for (code, description) in self.codes {
            responses.insert(
                code.to_string(),
                json!({"description": description, "schema": schema}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut op = json!({
            "consumes": consumes,
            "description": self.description,
            "operationId": self.id,
            "produces": self.media,
            "responses": responses,
            "schemes": ["https"],
            "tags": [self.tag],
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        self.extensions(&mut op);
        op
    }

    fn to_v3(&self) -> Value {
        let schema = match self.payload {
            Payload::Def(def) => json!({"$ref": format!("#/components/schemas/{def}")}),
            Payload::Text => json!({"type": "string"}),
        };
        let content: Map<String, Value> = self
            .media
            .iter()
            .map(|m| (m.to_string(), json!({ "schema": schema })))
            .collect();
        let mut responses = Map::new();
        for (code, description) in self.codes {
            responses.insert(
                code.to_string(),
                json!({"content": content, "description": description}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut op = json!({
            "description": self.description,
            "operationId": self.id,
            "responses": responses,
            "tags": [self.tag],
        });
        if !self.params.is_empty() {
            op["parameters"] = self.params.iter().map(Param::to_v3).collect();
        }
        if let Some(body) = &self.body {
            let body_schema =
                json!({"schema": {"$ref": format!("#/components/schemas/{}", body.definition)}});
            let media: Vec<&str> = if body.patch {
                PATCH_MEDIA.to_vec()
            } else {
                vec!["*/*"]
            };
            let body_content: Map<String, Value> = media
                .into_iter()
                .map(|m| (m.to_string(), body_schema.clone()))
                .collect();
            let mut request = json!({ "content": body_content });
            if body.required {
                request["required"] = json!(true);
            }
            op["requestBody"] = request;
        }
        self.extensions(&mut op);
        op
    }

    fn extensions(&self, op: &mut Value) {
        if let Some(action) = self.action {
            op["x-kubernetes-action"] = json!(action);
        }
        if let Some(gvk) = self.gvk {
            op["x-kubernetes-group-version-kind"] =
                json!({"group": gvk.group, "kind": gvk.kind, "version": gvk.version});
        }
    }

    /// The definitions the operation names.
    fn definitions(&self) -> impl Iterator<Item = &'static str> {
        let payload = match self.payload {
            Payload::Def(def) => Some(def),
            Payload::Text => None,
        };
        payload
            .into_iter()
            .chain(self.body.as_ref().map(|b| b.definition))
    }
}

/// One path with its operations.
#[derive(Debug, Clone)]
struct PathItem {
    path: String,
    params: Vec<Param>,
    ops: Vec<Operation>,
}

impl PathItem {
    fn to_v2(&self) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.to_string(), op.to_v2());
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                self.params.iter().map(Param::to_v2).collect(),
            );
        }
        Value::Object(item)
    }

    fn to_v3(&self) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.to_string(), op.to_v3());
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                self.params.iter().map(Param::to_v3).collect(),
            );
        }
        Value::Object(item)
    }
}

/// The discovery paths: `/api/`, `/apis/`, `/apis/<group>/`, `/version/`.
fn root_paths() -> Vec<PathItem> {
    let get = |id: &str, description: &str, def: &'static str, tag: &str| Operation {
        method: "get",
        id: id.to_string(),
        description: description.to_string(),
        action: None,
        gvk: None,
        params: Vec::new(),
        body: None,
        codes: OK,
        payload: Payload::Def(def),
        media: OBJECT_MEDIA,
        tag: tag.to_string(),
    };
    let mut items = vec![
        PathItem {
            path: "/api/".into(),
            params: Vec::new(),
            ops: vec![get(
                "getCoreAPIVersions",
                "get available API versions",
                API_VERSIONS,
                "core",
            )],
        },
        PathItem {
            path: "/apis/".into(),
            params: Vec::new(),
            ops: vec![get(
                "getAPIVersions",
                "get available API versions",
                API_GROUP_LIST,
                "apis",
            )],
        },
    ];
    for group in catalog::groups().iter().filter(|g| !g.name.is_empty()) {
        let ident = group_ident(group.name);
        let group_tag = tag(group.name, "").trim_end_matches('_').to_string();
        items.push(PathItem {
            path: format!("/apis/{}/", group.name),
            params: Vec::new(),
            ops: vec![get(
                &format!("get{ident}APIGroup"),
                "get information of a group",
                API_GROUP,
                &group_tag,
            )],
        });
    }
    items.push(PathItem {
        path: "/version/".into(),
        params: Vec::new(),
        ops: vec![Operation {
            media: &["application/json"],
            ..get(
                "getCodeVersion",
                "get the version information for this server",
                VERSION_INFO,
                "version",
            )
        }],
    });
    items
}

/// Every path of one group-version.
fn group_version_paths(group: &str, version: &str) -> Vec<PathItem> {
    let prefix = format!("/{}", gv_path(group, version));
    let gv_ident = format!("{}{}", group_ident(group), capitalize(version));
    let tag = tag(group, version);
    let mut items = vec![PathItem {
        path: format!("{prefix}/"),
        params: Vec::new(),
        ops: vec![Operation {
            method: "get",
            id: format!("get{gv_ident}APIResources"),
            description: "get available resources".into(),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            codes: OK,
            payload: Payload::Def(API_RESOURCE_LIST),
            media: OBJECT_MEDIA,
            tag: tag.clone(),
        }],
    }];
    for resource in catalog::resources_in(group, version) {
        ResourcePaths {
            resource,
            prefix: &prefix,
            gv_ident: &gv_ident,
            tag: &tag,
        }
        .push_into(&mut items);
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items
}

/// Builds the paths of one resource.
struct ResourcePaths<'a> {
    resource: &'static Resource,
    prefix: &'a str,
    gv_ident: &'a str,
    tag: &'a str,
}

impl ResourcePaths<'_> {
    fn scope(&self) -> &'static str {
        if self.resource.namespaced {
            "Namespaced"
        } else {
            ""
        }
    }

    fn op(
        &self,
        method: &'static str,
        id: String,
        description: String,
        action: &'static str,
        payload: Payload,
        codes: &'static [(u16, &'static str)],
    ) -> Operation {
        Operation {
            method,
            id,
            description,
            action: Some(action),
            gvk: Some(self.resource.gvk()),
            params: Vec::new(),
            body: None,
            codes,
            payload,
            media: OBJECT_MEDIA,
            tag: self.tag.to_string(),
        }
    }

    /// `<prefix>/namespaces/{namespace}/<plural>` or `<prefix>/<plural>`.
    fn collection(&self, watch: bool) -> String {
        let watch = if watch { "/watch" } else { "" };
        let r = self.resource;
        if r.namespaced {
            format!(
                "{}{watch}/namespaces/{{namespace}}/{}",
                self.prefix, r.plural
            )
        } else {
            format!("{}{watch}/{}", self.prefix, r.plural)
        }
    }

    fn scope_params(&self) -> Vec<Param> {
        if self.resource.namespaced {
            vec![namespace_param()]
        } else {
            Vec::new()
        }
    }

    fn item_params(&self) -> Vec<Param> {
        let mut params = vec![name_param(self.resource.kind)];
        params.extend(self.scope_params());
        params
    }

    fn push_into(&self, items: &mut Vec<PathItem>) {
        let r = self.resource;
        let (gv, scope, kind) = (self.gv_ident, self.scope(), r.kind);
        let object = || Payload::Def(r.definition);
        let list_def = list_definition(r);

        // The collection: list, create, deletecollection.
        let mut ops = Vec::new();
        if r.has_verb(Verb::List)
            && let Some(list_def) = list_def
        {
            ops.push(Operation {
                params: list_params(),
                media: LIST_MEDIA,
                ..self.op(
                    "get",
                    format!("list{gv}{scope}{kind}"),
                    format!("list or watch objects of kind {kind}"),
                    "list",
                    Payload::Def(list_def),
                    OK,
                )
            });
        }
        if r.has_verb(Verb::Create) {
            ops.push(Operation {
                params: write_params(),
                body: Some(Body {
                    definition: r.definition,
                    patch: false,
                    required: true,
                }),
                ..self.op(
                    "post",
                    format!("create{gv}{scope}{kind}"),
                    format!("create a {kind}"),
                    "post",
                    object(),
                    OK_CREATED_ACCEPTED,
                )
            });
        }
        if r.has_verb(Verb::DeleteCollection) {
            ops.push(Operation {
                params: delete_collection_params(),
                body: Some(Body {
                    definition: DELETE_OPTIONS,
                    patch: false,
                    required: false,
                }),
                ..self.op(
                    "delete",
                    format!("delete{gv}Collection{scope}{kind}"),
                    format!("delete a collection of {kind}"),
                    "deletecollection",
                    Payload::Def(STATUS),
                    OK,
                )
            });
        }
        if !ops.is_empty() {
            let mut params = self.scope_params();
            params.push(pretty());
            items.push(PathItem {
                path: self.collection(false),
                params,
                ops,
            });
        }

        // One object: read, replace, patch, delete.
        let item_path = format!("{}/{{name}}", self.collection(false));
        let mut ops = Vec::new();
        if r.has_verb(Verb::Get) {
            ops.push(self.op(
                "get",
                format!("read{gv}{scope}{kind}"),
                format!("read the specified {kind}"),
                "get",
                object(),
                OK,
            ));
        }
        if r.has_verb(Verb::Update) {
            ops.push(self.replace_op(
                format!("replace{gv}{scope}{kind}"),
                format!("replace the specified {kind}"),
                r.definition,
                r.gvk(),
            ));
        }
        if r.has_verb(Verb::Patch) {
            ops.push(self.patch_op(
                format!("patch{gv}{scope}{kind}"),
                format!("partially update the specified {kind}"),
                r.definition,
                r.gvk(),
            ));
        }
        if r.has_verb(Verb::Delete) {
            let payload = if r.returns_deleted_object {
                object()
            } else {
                Payload::Def(STATUS)
            };
            ops.push(Operation {
                params: delete_params(),
                body: Some(Body {
                    definition: DELETE_OPTIONS,
                    patch: false,
                    required: false,
                }),
                ..self.op(
                    "delete",
                    format!("delete{gv}{scope}{kind}"),
                    format!("delete a {kind}"),
                    "delete",
                    payload,
                    OK_ACCEPTED,
                )
            });
        }
        if !ops.is_empty() {
            let mut params = self.item_params();
            params.push(pretty());
            items.push(PathItem {
                path: item_path.clone(),
                params,
                ops,
            });
        }

        // Lists across namespaces and the deprecated watch paths.
        if let Some(list_def) = list_def.filter(|_| r.has_verb(Verb::List)) {
            let with_list_params = |mut params: Vec<Param>| {
                params.extend(list_params());
                params.push(pretty());
                params.sort_by(|a, b| a.name.cmp(b.name));
                params
            };
            if r.namespaced {
                items.push(PathItem {
                    path: format!("{}/{}", self.prefix, r.plural),
                    params: with_list_params(Vec::new()),
                    ops: vec![Operation {
                        media: LIST_MEDIA,
                        ..self.op(
                            "get",
                            format!("list{gv}{kind}ForAllNamespaces"),
                            format!("list or watch objects of kind {kind}"),
                            "list",
                            Payload::Def(list_def),
                            OK,
                        )
                    }],
                });
            }
            if r.has_verb(Verb::Watch) {
                let watch = |id: String, description: String, action: &'static str| Operation {
                    media: WATCH_MEDIA,
                    ..self.op(
                        "get",
                        id,
                        description,
                        action,
                        Payload::Def(WATCH_EVENT),
                        OK,
                    )
                };
                items.push(PathItem {
                    path: self.collection(true),
                    params: with_list_params(self.scope_params()),
                    ops: vec![watch(
                        format!("watch{gv}{scope}{kind}List"),
                        format!("watch changes to a list of {kind} (deprecated: list with watch=true instead)"),
                        "watchlist",
                    )],
                });
                items.push(PathItem {
                    path: format!("{}/{{name}}", self.collection(true)),
                    params: with_list_params(self.item_params()),
                    ops: vec![watch(
                        format!("watch{gv}{scope}{kind}"),
                        format!("watch changes to one {kind} (deprecated: list with watch=true and a fieldSelector on metadata.name instead)"),
                        "watch",
                    )],
                });
                if r.namespaced {
                    items.push(PathItem {
                        path: format!("{}/watch/{}", self.prefix, r.plural),
                        params: with_list_params(Vec::new()),
                        ops: vec![watch(
                            format!("watch{gv}{kind}ListForAllNamespaces"),
                            format!("watch changes to a list of {kind} (deprecated: list with watch=true instead)"),
                            "watchlist",
                        )],
                    });
                }
            }
        }

        for sub in r.subresources {
            self.push_subresource(sub, &item_path, items);
        }
    }

    fn replace_op(
        &self,
        id: String,
        description: String,
        definition: &'static str,
        gvk: Gvk<'static>,
    ) -> Operation {
        Operation {
            params: write_params(),
            body: Some(Body {
                definition,
                patch: false,
                required: true,
            }),
            gvk: Some(gvk),
            ..self.op(
                "put",
                id,
                description,
                "put",
                Payload::Def(definition),
                OK_CREATED,
            )
        }
    }

    fn patch_op(
        &self,
        id: String,
        description: String,
        definition: &'static str,
        gvk: Gvk<'static>,
    ) -> Operation {
        let mut params = write_params();
        params.push(force());
        Operation {
            params,
            body: Some(Body {
                definition: PATCH,
                patch: true,
                required: true,
            }),
            gvk: Some(gvk),
            ..self.op(
                "patch",
                id,
                description,
                "patch",
                Payload::Def(definition),
                OK_CREATED,
            )
        }
    }

    fn push_subresource(&self, sub: &Subresource, item_path: &str, items: &mut Vec<PathItem>) {
        let r = self.resource;
        let (gv, scope, kind) = (self.gv_ident, self.scope(), r.kind);
        let suffix = capitalize(sub.name);
        let gvk = sub.response_gvk(r);
        let path = format!("{item_path}/{}", sub.name);
        let mut path_params = self.item_params();

        if sub.is_connect() {
            let methods: &[(&str, &str)] = if sub.name == "proxy" {
                &[
                    ("delete", "Delete"),
                    ("get", "Get"),
                    ("head", "Head"),
                    ("options", "Options"),
                    ("patch", "Patch"),
                    ("post", "Post"),
                    ("put", "Put"),
                ]
            } else {
                &[("get", "Get"), ("post", "Post")]
            };
            let connect = |method: &'static str, verb: &str, with_path: &str| Operation {
                gvk: Some(gvk),
                media: &["*/*"],
                ..self.op(
                    method,
                    format!("connect{gv}{verb}{scope}{kind}{suffix}{with_path}"),
                    format!(
                        "connect {} requests to {} of {kind}",
                        verb.to_ascii_uppercase(),
                        sub.name
                    ),
                    "connect",
                    Payload::Text,
                    OK,
                )
            };
            if sub.name == "proxy" {
                let mut params = path_params.clone();
                params.push(Param::query(
                    "path",
                    ParamType::String,
                    &format!("The path to proxy the request to on the {kind}."),
                ));
                items.push(PathItem {
                    path: path.clone(),
                    params,
                    ops: methods.iter().map(|(m, v)| connect(m, v, "")).collect(),
                });
                let mut params = path_params;
                params.push(Param::path(
                    "path",
                    format!("The path to proxy the request to on the {kind}."),
                ));
                items.push(PathItem {
                    path: format!("{path}/{{path}}"),
                    params,
                    ops: methods
                        .iter()
                        .map(|(m, v)| connect(m, v, "WithPath"))
                        .collect(),
                });
            } else {
                path_params.extend(connect_params(sub.name));
                path_params.sort_by(|a, b| a.name.cmp(b.name));
                items.push(PathItem {
                    path,
                    params: path_params,
                    ops: methods.iter().map(|(m, v)| connect(m, v, "")).collect(),
                });
            }
            return;
        }

        if sub.name == "log" {
            path_params.extend(log_params());
            path_params.push(pretty());
            path_params.sort_by(|a, b| a.name.cmp(b.name));
            items.push(PathItem {
                path,
                params: path_params,
                ops: vec![Operation {
                    media: LOG_MEDIA,
                    ..self.op(
                        "get",
                        format!("read{gv}{scope}{kind}Log"),
                        format!("read the log of the specified {kind}"),
                        "get",
                        Payload::Text,
                        OK,
                    )
                }],
            });
            return;
        }

        let Some(definition) = definition_of(gvk) else {
            return;
        };
        let mut ops = Vec::new();
        if sub.verbs.contains(&Verb::Create) {
            ops.push(Operation {
                params: write_params(),
                body: Some(Body {
                    definition,
                    patch: false,
                    required: true,
                }),
                gvk: Some(gvk),
                ..self.op(
                    "post",
                    format!("create{gv}{scope}{kind}{suffix}"),
                    format!("create {} of a {kind}", sub.name),
                    "post",
                    Payload::Def(definition),
                    OK_CREATED_ACCEPTED,
                )
            });
        }
        if sub.verbs.contains(&Verb::Get) {
            ops.push(Operation {
                gvk: Some(gvk),
                ..self.op(
                    "get",
                    format!("read{gv}{scope}{kind}{suffix}"),
                    format!("read {} of the specified {kind}", sub.name),
                    "get",
                    Payload::Def(definition),
                    OK,
                )
            });
        }
        if sub.verbs.contains(&Verb::Update) {
            ops.push(self.replace_op(
                format!("replace{gv}{scope}{kind}{suffix}"),
                format!("replace {} of the specified {kind}", sub.name),
                definition,
                gvk,
            ));
        }
        if sub.verbs.contains(&Verb::Patch) {
            ops.push(self.patch_op(
                format!("patch{gv}{scope}{kind}{suffix}"),
                format!("partially update {} of the specified {kind}", sub.name),
                definition,
                gvk,
            ));
        }
        path_params.push(pretty());
        items.push(PathItem {
            path,
            params: path_params,
            ops,
        });
    }
}

/// The definition of a resource's list kind.
fn list_definition(resource: &Resource) -> Option<&'static str> {
    if resource.list_kind.is_empty() {
        return None;
    }
    definition_of(resource.list_gvk())
}

/// The definition name of a kind, as a `'static` string out of the schema.
fn definition_of(gvk: Gvk<'_>) -> Option<&'static str> {
    schema::schema().by_gvk(gvk).map(|def| def.name())
}

/// One OpenAPI 3.0 document with the given paths and every schema they reach.
fn v3_document(schema: &Schema, items: &[PathItem]) -> Value {
    let roots: BTreeSet<&str> = items
        .iter()
        .flat_map(|item| item.ops.iter())
        .flat_map(Operation::definitions)
        .collect();
    let raw = schema.raw_definitions();
    let mut included = BTreeSet::new();
    let mut queue: Vec<String> = roots.into_iter().map(str::to_string).collect();
    while let Some(name) = queue.pop() {
        if !included.insert(name.clone()) {
            continue;
        }
        if let Some(def) = raw.get(&name) {
            let mut refs = Vec::new();
            collect_refs(def, &mut refs);
            queue.extend(refs.into_iter().filter(|r| !included.contains(r)));
        }
    }
    let schemas: Map<String, Value> = included
        .into_iter()
        .filter_map(|name| {
            let def = raw.get(&name)?;
            let converted = v3_union_scalar(&name, def).unwrap_or_else(|| v3_schema(def));
            Some((name, converted))
        })
        .collect();
    let paths: Map<String, Value> = items
        .iter()
        .map(|item| (item.path.clone(), item.to_v3()))
        .collect();
    json!({
        "components": {"schemas": schemas},
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "openapi": "3.0.0",
        "paths": paths,
    })
}

/// The definition names a swagger schema references.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix("#/definitions/") {
                            out.push(name.to_string());
                        }
                    }
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// A swagger schema in OpenAPI 3 form: references point into `#/components/schemas/`, and a
/// reference with sibling keywords (a description) is wrapped in `allOf`, since OpenAPI 3.0
/// ignores a `$ref`'s siblings.
fn v3_schema(schema: &Value) -> Value {
    let Some(map) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "$ref" => match value
                .as_str()
                .and_then(|t| t.strip_prefix("#/definitions/"))
            {
                Some(name) => json!(format!("#/components/schemas/{name}")),
                None => value.clone(),
            },
            "properties" => match value.as_object() {
                Some(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, prop)| (name.clone(), v3_schema(prop)))
                        .collect(),
                ),
                None => value.clone(),
            },
            "items" | "additionalProperties" if value.is_object() => v3_schema(value),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if out.len() > 1
        && let Some(reference) = out.remove("$ref")
    {
        out.insert("allOf".into(), json!([{ "$ref": reference }]));
    }
    Value::Object(out)
}

/// The OpenAPI 3 form upstream gives the scalar unions: `Quantity` and `IntOrString` are
/// `oneOf` a string and a number rather than one type, so that clients which name types
/// (`kubectl explain` prints `<map[string]Quantity>`, `<IntOrString>`) see the union by name.
fn v3_union_scalar(name: &str, def: &Value) -> Option<Value> {
    let (alternatives, format) = match name {
        "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
            (json!([{"type": "string"}, {"type": "number"}]), None)
        }
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => (
            json!([{"type": "integer"}, {"type": "string"}]),
            Some("int-or-string"),
        ),
        _ => return None,
    };
    let mut out = Map::new();
    if let Some(description) = def.get("description") {
        out.insert("description".into(), description.clone());
    }
    if let Some(format) = format {
        out.insert("format".into(), json!(format));
    }
    out.insert("oneOf".into(), alternatives);
    Some(Value::Object(out))
}

/// A 128-bit FNV-1a hash in upper-case hex: a stable content hash for cache-busting URLs.
fn fnv1a_128_hex(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let hash = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("{hash:032X}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::LazyLock;

    use super::*;

    static V3_DOCS: LazyLock<V3> = LazyLock::new(v3);
    static V2_DOC: LazyLock<Value> = LazyLock::new(|| v2("v1.33.0"));

    fn doc(path: &str) -> Value {
        let document = V3_DOCS
            .document(path)
            .unwrap_or_else(|| panic!("no v3 document {path}"));
        serde_json::from_slice(document.bytes()).expect("documents are JSON")
    }

    /// Follows a schema's `$ref` (directly or through `allOf`) inside a v3 document.
    fn deref<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
        let reference = schema
            .get("$ref")
            .or_else(|| schema.pointer("/allOf/0/$ref"))
            .and_then(Value::as_str);
        match reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
            Some(name) => &document["components"]["schemas"][name],
            None => schema,
        }
    }

    #[test]
    fn discovery_names_every_group_version_with_a_hash() {
        let discovery = V3_DOCS.discovery();
        let paths = discovery["paths"].as_object().expect("paths");
        for key in [
            "api/v1",
            "apis/apps/v1",
            "apis/autoscaling/v2",
            "apis/autoscaling/v1",
            "apis/discovery.k8s.io/v1",
            "version",
        ] {
            let url = paths[key]["serverRelativeURL"].as_str().expect("url");
            assert!(
                url.starts_with(&format!("/openapi/v3/{key}?hash=")),
                "{url}"
            );
        }
        let again = v3();
        assert_eq!(
            again.documents().map(V3Document::hash).collect::<Vec<_>>(),
            V3_DOCS
                .documents()
                .map(V3Document::hash)
                .collect::<Vec<_>>(),
            "documents are deterministic"
        );
    }

    #[test]
    fn apps_v1_has_deployment_with_gvk_and_field_validation_on_patch() {
        let apps = doc("apis/apps/v1");
        assert_eq!(apps["openapi"], "3.0.0");
        let deployment = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let patch =
            &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["dryRun", "fieldManager", "fieldValidation", "force"]
        );
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object()
        );
        let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
            ["patch"];
        assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
        assert!(apps["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    }

    #[test]
    fn every_write_operation_offers_field_validation() {
        for document in V3_DOCS.documents() {
            let value: Value = serde_json::from_slice(document.bytes()).expect("json");
            for (path, item) in value["paths"].as_object().expect("paths") {
                for method in ["post", "put", "patch"] {
                    let Some(op) = item.get(method) else { continue };
                    if op["x-kubernetes-action"] == "connect" {
                        continue;
                    }
                    let has = op["parameters"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"));
                    assert!(has, "{method} {path} lacks fieldValidation");
                }
            }
        }
    }

    #[test]
    fn explain_can_walk_pod_spec_containers_resources() {
        let core = doc("api/v1");
        let schemas = core["components"]["schemas"].as_object().expect("schemas");
        let pod = schemas
            .values()
            .find(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|gvks| {
                        gvks.contains(&json!({"group": "", "kind": "Pod", "version": "v1"}))
                    })
            })
            .expect("a schema tagged with the Pod GVK");
        let spec = deref(&core, &pod["properties"]["spec"]);
        let containers = &spec["properties"]["containers"];
        assert_eq!(containers["type"], "array");
        let container = deref(&core, &containers["items"]);
        let resources_field = &container["properties"]["resources"];
        assert!(
            resources_field["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert!(
            resources_field["allOf"].is_array(),
            "a described reference is wrapped in allOf"
        );
        let resources = deref(&core, resources_field);
        assert!(
            resources["description"]
                .as_str()
                .is_some_and(|d| d.contains("resource requirements"))
        );
        assert!(resources["properties"]["limits"]["additionalProperties"].is_object());
    }

    #[test]
    fn v3_documents_are_self_contained() {
        for document in V3_DOCS.documents() {
            let value: Value = serde_json::from_slice(document.bytes()).expect("json");
            let text = String::from_utf8_lossy(document.bytes());
            assert!(!text.contains("#/definitions/"), "{}", document.path());
            let schemas = value["components"]["schemas"].as_object().expect("schemas");
            let mut refs = Vec::new();
            collect_v3_refs(&value, &mut refs);
            for name in refs {
                assert!(
                    schemas.contains_key(&name),
                    "{}: dangling {name}",
                    document.path()
                );
            }
        }
    }

    fn collect_v3_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if let ("$ref", Some(target)) = (key.as_str(), child.as_str()) {
                        if let Some(name) = target.strip_prefix("#/components/schemas/") {
                            out.push(name.to_string());
                        }
                    } else {
                        collect_v3_refs(child, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| collect_v3_refs(i, out)),
            _ => {}
        }
    }

    #[test]
    fn v2_has_every_definition_and_unique_operation_ids() {
        let v2 = &*V2_DOC;
        assert_eq!(v2["swagger"], "2.0");
        assert_eq!(v2["info"]["version"], "v1.33.0");
        let definitions = v2["definitions"].as_object().expect("definitions");
        assert_eq!(definitions.len(), schema::schema().raw_definitions().len());
        let mut ids = HashSet::new();
        for (path, item) in v2["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                let id = op["operationId"].as_str().expect("operation id");
                assert!(
                    ids.insert(id.to_string()),
                    "{method} {path}: duplicate id {id}"
                );
            }
        }
        for id in [
            "listCoreV1NamespacedPod",
            "listCoreV1PodForAllNamespaces",
            "createCoreV1NamespacedPodBinding",
            "createCoreV1NamespacedPodEviction",
            "readCoreV1NamespacedPodLog",
            "connectCoreV1PostNamespacedPodExec",
            "connectCoreV1GetNamespacedPodProxyWithPath",
            "createCoreV1NamespacedServiceAccountToken",
            "replaceCoreV1NamespaceFinalize",
            "readCoreV1NodeStatus",
            "watchCoreV1NamespaceList",
            "deleteAppsV1CollectionNamespacedDeployment",
            "patchAppsV1NamespacedStatefulSetScale",
            "createAuthorizationV1NamespacedLocalSubjectAccessReview",
            "createAuthenticationV1TokenReview",
            "listRbacAuthorizationV1ClusterRole",
            "watchRbacAuthorizationV1RoleBindingListForAllNamespaces",
            "listCoreV1ComponentStatus",
            "getAppsAPIGroup",
            "getCoreV1APIResources",
        ] {
            assert!(ids.contains(id), "missing operation {id}");
        }
        assert!(!ids.contains("deleteCoreV1CollectionNamespace"));
        assert!(!ids.contains("watchCoreV1ComponentStatusList"));
        let pods_delete = &v2["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"];
        assert_eq!(
            pods_delete["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.Pod"
        );
        let deploy_create =
            &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
        let body = deploy_create["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["in"] == "body"))
            .expect("body parameter");
        assert_eq!(
            body["schema"]["$ref"],
            "#/definitions/io.k8s.api.apps.v1.Deployment"
        );
    }

    #[test]
    fn operation_identifiers_follow_upstream_naming() {
        assert_eq!(group_ident(""), "Core");
        assert_eq!(
            group_ident("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_ident("apps"), "Apps");
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(fnv1a_128_hex(b"").len(), 32);
    }
}
