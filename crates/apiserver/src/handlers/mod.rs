//! The HTTP layer of the resource API: discovery, OpenAPI, the resource endpoints (get, list,
//! watch, create, update, patch, delete, deletecollection and the object subresources) over
//! the registry, and `/metrics`, behaving as upstream's `endpoints/handlers` do for kubectl,
//! client-go and kube-rs.
//!
//! Every route sits behind the request filter (request info, authentication, authorization);
//! the handlers find the [`RequestInfo`](crate::request_info::RequestInfo) and the user in the
//! request's extensions.

mod body;
mod discovery;
pub(crate) mod metrics;
mod negotiate;
mod openapi;
mod patch;
mod query;
mod resource;
mod response;
mod schemas;
mod watch;

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, Method},
    response::Response,
    routing::{any, get},
};

use crate::registry::Registry;

pub(crate) use metrics::Metrics;

/// The result of a step that fails with a ready-to-send `Status`.
pub(crate) type StatusResult<T> = Result<T, Box<tug_apimachinery::Status>>;

/// What the handlers share: the registry, the prebuilt discovery and OpenAPI documents and
/// the metrics.
#[derive(Debug)]
pub struct Api {
    registry: Arc<Registry>,
    discovery: discovery::Documents,
    openapi: openapi::Documents,
    metrics: Arc<Metrics>,
}

impl Api {
    /// The handlers' state over `registry`; `server_address` (`host:port`) is what discovery
    /// tells clients to connect to. Starts building the OpenAPI documents in the background.
    pub fn new(registry: Arc<Registry>, server_address: &str) -> Arc<Self> {
        let api = Arc::new(Self {
            registry,
            discovery: discovery::Documents::new(server_address),
            openapi: openapi::Documents::default(),
            metrics: Arc::new(Metrics::new()),
        });
        let warm = api.clone();
        tokio::spawn(async move { warm.openapi.warm_up().await });
        api
    }

    /// The metrics, for the recording middleware.
    pub(crate) fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }
}

/// The routes of the resource API.
pub(crate) fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api", any(api_entry))
        .route("/api/", any(api_entry))
        .route("/api/{*rest}", any(api_entry))
        .route("/apis", any(api_entry))
        .route("/apis/", any(api_entry))
        .route("/apis/{*rest}", any(api_entry))
        .route("/openapi/v2", get(openapi_entry))
        .route("/openapi/v3", get(openapi_entry))
        .route("/openapi/v3/", get(openapi_entry))
        .route("/openapi/v3/{*rest}", get(openapi_entry))
        .route("/metrics", get(metrics_entry))
        .with_state(api)
}

/// `/api…` and `/apis…`: discovery for non-resource paths, the registry for resources.
async fn api_entry(State(api): State<Arc<Api>>, request: Request) -> Response {
    let info = request
        .extensions()
        .get::<crate::request_info::RequestInfo>()
        .cloned()
        .unwrap_or_default();
    if info.is_resource_request {
        return resource::serve(&api, info, request).await;
    }
    let path = request.uri().path().to_string();
    if let Some(response) = (request.method() == Method::GET)
        .then(|| {
            api.discovery
                .serve(&path, request.headers(), request.uri().query())
        })
        .flatten()
    {
        return response;
    }
    if api
        .discovery
        .serve(&path, &Default::default(), None)
        .is_some()
    {
        // A discovery path with another method than GET.
        return response::method_not_allowed();
    }
    resource::not_found_for_path(&path)
}

async fn openapi_entry(State(api): State<Arc<Api>>, request: Request) -> Response {
    api.openapi
        .serve(
            request.uri().path(),
            request.headers(),
            request.uri().query(),
        )
        .await
}

async fn metrics_entry(State(api): State<Arc<Api>>) -> Response {
    metrics::serve(&api.metrics)
}

/// Headers every response carries, as upstream's outermost filters add them: an `Audit-Id`
/// (the client's `Audit-ID` if it sent one, else a fresh UUID) and, unless the handler chose
/// otherwise, `Cache-Control: no-cache, private`.
pub(crate) async fn common_headers(request: Request, next: axum::middleware::Next) -> Response {
    let audit_id = request
        .headers()
        .get("audit-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(uuid_v4);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&audit_id) {
        headers.insert("audit-id", value);
    }
    if !headers.contains_key(axum::http::header::CACHE_CONTROL) {
        headers.insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
    }
    response
}

/// A random (version 4) UUID.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    // The system's random source failing leaves zeros: the ID is still well-formed.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The warnings of one request, sent as `Warning: 299 - "…"` headers (kubectl prints them as
/// `Warning: …`). Cheap to clone; clones share the list.
#[derive(Clone, Debug, Default)]
pub(crate) struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a warning (once).
    pub(crate) fn add(&self, warning: String) {
        let mut list = self.lock();
        if !list.contains(&warning) {
            list.push(warning);
        }
    }

    /// Adds several warnings.
    pub(crate) fn add_all(&self, warnings: impl IntoIterator<Item = String>) {
        for warning in warnings {
            self.add(warning);
        }
    }

    /// Takes the warnings out.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lock())
    }

    /// Writes the warnings as headers (upstream's RFC 7234 form, agent `-`).
    pub(crate) fn write(&self, response: &mut Response) {
        for warning in self.lock().iter() {
            if let Ok(value) = HeaderValue::from_str(&warning_header(warning)) {
                response.headers_mut().append("warning", value);
            }
        }
    }
}

/// `299 - "<text>"` with `"` and `\` escaped and unprintable characters dropped.
fn warning_header(text: &str) -> String {
    let mut out = String::from("299 - \"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if c.is_control() {
            continue;
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string as Go's `%q` does (the messages clients print are built with it).
pub(crate) fn go_quote(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_quoted_as_rfc_7234_warning_values() {
        assert_eq!(
            warning_header(r#"unknown field "spec.foo""#),
            r#"299 - "unknown field \"spec.foo\"""#
        );
        let warnings = Warnings::default();
        warnings.add("a".into());
        warnings.add("a".into());
        let mut response = Response::new(axum::body::Body::empty());
        warnings.write(&mut response);
        assert_eq!(response.headers().get_all("warning").iter().count(), 1);
    }

    #[test]
    fn audit_ids_are_version_4_uuids() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, uuid_v4());
    }

    #[test]
    fn go_quoting_escapes_quotes_and_controls() {
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
    }
}
