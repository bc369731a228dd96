//! `/openapi/v2` and `/openapi/v3[/<path>]`, built once from `tug_api::openapi` (off the
//! async workers, on first use or by the warm-up task) and cached, served with upstream's
//! `ETag`, `Vary`, `Cache-Control` and `Expires` headers: a v3 request whose `hash` matches
//! is immutable for a year, one whose `hash` is stale is redirected to the current URL.
//!
//! Only JSON is produced: a client that accepts nothing but the protobuf encoding of the
//! documents gets `406`, which kubectl handles by falling back.

use std::{sync::Arc, time::SystemTime};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use tokio::sync::OnceCell;
use tug_api::openapi::V3;

use super::negotiate::parse_accept;

/// Why a document could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenApiError {
    /// The build task died.
    #[error("building the OpenAPI documents failed: {0}")]
    Build(String),
}

/// The v2 document, serialised, with its ETag.
#[derive(Debug)]
struct V2 {
    bytes: Vec<u8>,
    etag: String,
}

/// The cached documents.
#[derive(Debug, Default)]
pub(crate) struct Documents {
    v2: OnceCell<Arc<V2>>,
    v3: OnceCell<Arc<V3>>,
    /// When the documents were built (for `Last-Modified`).
    built: OnceCell<SystemTime>,
}

impl Documents {
    async fn v2(&self) -> Result<Arc<V2>, OpenApiError> {
        self.v2
            .get_or_try_init(|| async {
                let built = tokio::task::spawn_blocking(|| {
                    let doc =
                        tug_api::openapi::v2(&crate::version::VersionInfo::current().git_version);
                    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
                    let digest = ring::digest::digest(&ring::digest::SHA512, &bytes);
                    let etag = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
                    V2 { bytes, etag }
                })
                .await
                .map_err(|e| OpenApiError::Build(e.to_string()))?;
                Ok(Arc::new(built))
            })
            .await
            .cloned()
    }

    async fn v3(&self) -> Result<Arc<V3>, OpenApiError> {
        self.v3
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(tug_api::openapi::v3)
                    .await
                    .map(Arc::new)
                    .map_err(|e| OpenApiError::Build(e.to_string()))
            })
            .await
            .cloned()
    }

    async fn built(&self) -> SystemTime {
        *self.built.get_or_init(|| async { SystemTime::now() }).await
    }

    /// Builds every document now (called once in the background at start-up).
    pub(crate) async fn warm_up(&self) {
        self.built().await;
        if let Err(e) = self.v3().await {
            tracing::warn!(error = %e, "OpenAPI v3");
        }
        if let Err(e) = self.v2().await {
            tracing::warn!(error = %e, "OpenAPI v2");
        }
    }

    /// Serves `/openapi/v2`, `/openapi/v3` or `/openapi/v3/<path>`.
    pub(crate) async fn serve(
        &self,
        path: &str,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Response {
        let result = if path == "/openapi/v2" || path == "/openapi/v2/" {
            self.serve_v2(headers).await
        } else if path == "/openapi/v3" || path == "/openapi/v3/" {
            self.v3().await.map(|v3| {
                let body = serde_json::to_vec(&v3.discovery()).unwrap_or_default();
                json_response(body)
            })
        } else if let Some(rest) = path.strip_prefix("/openapi/v3/") {
            self.serve_v3_document(rest, headers, query).await
        } else {
            return not_found();
        };
        result.unwrap_or_else(|e| {
            crate::status::response(&tug_apimachinery::Status::internal_error(&e.to_string()))
        })
    }

    async fn serve_v2(&self, headers: &HeaderMap) -> Result<Response, OpenApiError> {
        if !accepts_json(headers) {
            return Ok(not_acceptable());
        }
        let v2 = self.v2().await?;
        let mut response = conditional(&v2.etag, headers, || v2.bytes.clone());
        if let Ok(value) = HeaderValue::from_str(&http_date(self.built().await)) {
            response.headers_mut().insert(header::LAST_MODIFIED, value);
        }
        Ok(response)
    }

    async fn serve_v3_document(
        &self,
        path: &str,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Response, OpenApiError> {
        let v3 = self.v3().await?;
        let Some(doc) = v3.document(path) else {
            return Ok(not_found());
        };
        if !accepts_json(headers) {
            let mut response = not_acceptable();
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
            return Ok(response);
        }
        let requested_hash = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "hash")
            .map(|(_, v)| v.into_owned())
            .filter(|h| !h.is_empty());
        if let Some(hash) = &requested_hash
            && hash != doc.hash()
        {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
            if let Ok(location) = HeaderValue::from_str(&doc.server_relative_url()) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            return Ok(response);
        }
        let mut response = conditional(doc.hash(), headers, || doc.bytes().to_vec());
        let h = response.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        if requested_hash.is_some() {
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            let expires = SystemTime::now() + std::time::Duration::from_secs(365 * 24 * 3600);
            if let Ok(value) = HeaderValue::from_str(&http_date(expires)) {
                h.insert(header::EXPIRES, value);
            }
        }
        if let Ok(value) = HeaderValue::from_str(&http_date(self.built().await)) {
            h.insert(header::LAST_MODIFIED, value);
        }
        Ok(response)
    }
}

/// Whether the `Accept` header admits JSON (no header does).
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    parse_accept(accept).iter().any(|c| {
        (c.ty == "application" && (c.subtype == "json" || c.subtype == "*"))
            || (c.ty == "*" && c.subtype == "*")
    })
}

/// A JSON body with an `ETag`, or `304` when the client has it already.
fn conditional(etag: &str, headers: &HeaderMap, body: impl FnOnce() -> Vec<u8>) -> Response {
    let quoted = format!("\"{etag}\"");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == quoted || t.trim() == "*"));
    let mut response = if matches {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        json_response(body())
    };
    if let Ok(value) = HeaderValue::from_str(&quoted) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn not_acceptable() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_ACCEPTABLE;
    response
}

fn not_found() -> Response {
    let mut response = Response::new(Body::from("404 page not found\n"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An HTTP date (`Mon, 02 Jan 2006 15:04:05 GMT`).
pub(crate) fn http_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month_name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {month_name} {year} {hour:02}:{minute:02}:{second:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_rfc1123_in_gmt() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_136_214_245);
        assert_eq!(http_date(t), "Mon, 02 Jan 2006 15:04:05 GMT");
        assert_eq!(
            http_date(SystemTime::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn protobuf_only_clients_are_not_served_json() {
        let mut headers = HeaderMap::new();
        assert!(accepts_json(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
        );
        assert!(!accepts_json(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/com.github.proto-openapi.spec.v3@v1.0+protobuf, application/json",
            ),
        );
        assert!(accepts_json(&headers));
    }

    #[tokio::test]
    async fn v3_documents_redirect_stale_hashes_and_cache_current_ones() {
        let docs = Documents::default();
        let discovery = docs.serve("/openapi/v3", &HeaderMap::new(), None).await;
        assert_eq!(discovery.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(discovery.into_body(), usize::MAX)
            .await
            .expect("body");
        let discovery: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let url = discovery["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("url")
            .to_string();
        let (path, query) = url.split_once('?').expect("hash");
        let current = docs.serve(path, &HeaderMap::new(), Some(query)).await;
        assert_eq!(current.status(), StatusCode::OK);
        assert_eq!(
            current.headers()[header::CACHE_CONTROL],
            "public, immutable"
        );
        let etag = current.headers()[header::ETAG].clone();
        let stale = docs.serve(path, &HeaderMap::new(), Some("hash=0")).await;
        assert_eq!(stale.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(stale.headers()[header::LOCATION], url.as_str());
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        let cached = docs.serve(path, &headers, None).await;
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        let missing = docs
            .serve("/openapi/v3/apis/nope/v1", &HeaderMap::new(), None)
            .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
