//! The route table: the one place where endpoints join the server.
//!
//! Health and version, then the resource API of [`handlers`](crate::handlers): discovery
//! (`/api`, `/apis`), the registry's resource endpoints, OpenAPI and metrics. Every route sits
//! behind the same filter (request info, authentication, authorization); inside it the metrics
//! middleware records each request, outside it every response gets `Audit-Id` and
//! `Cache-Control`.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{HeaderValue, StatusCode, header},
    middleware,
    response::Response,
};
use tug_storage::Store;

use crate::{
    config::Config, filters::Filters, handlers, health::Health, registry::Registry,
    version::VersionInfo,
};

/// What handlers may use: the datastore, the registry and the configuration. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ServerContext {
    /// The datastore (only the API server touches it).
    pub store: Arc<dyn Store>,
    /// The registry: every served resource's store over the datastore.
    pub registry: Arc<Registry>,
    /// The configuration the server was started with.
    pub config: Arc<Config>,
}

/// The resource API: discovery, registry, OpenAPI, metrics.
fn api_routes(api: Arc<handlers::Api>) -> Router {
    handlers::router(api)
}

/// Every route, behind the request filter.
pub(crate) fn router(health: Health, filters: Filters, api: Arc<handlers::Api>) -> Router {
    let metrics = api.metrics();
    Router::new()
        .merge(health.router())
        .merge(VersionInfo::current().router())
        .merge(api_routes(api))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            metrics,
            handlers::metrics::record,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(filters),
            crate::filters::filter,
        ))
        .layer(middleware::from_fn(handlers::common_headers))
}

/// Paths nothing serves: Go's plain-text 404, as upstream answers outside its API groups.
async fn not_found() -> Response {
    let mut response = Response::new(Body::from("404 page not found\n"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
