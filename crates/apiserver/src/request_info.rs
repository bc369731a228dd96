//! What a request asks for, derived from its method, path and query alone (upstream's
//! `RequestInfo`): the Kubernetes verb, API group and version, namespace, resource,
//! subresource and name. Authorization and, later, the registry use it.
//!
//! Resource paths look like `/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}` or
//! `/apis/{group}/{version}/…`, optionally with the legacy `watch/` or `proxy/` verb segment
//! after the version; everything else (`/healthz`, `/version`, `/apis`, `/api/v1`) is a
//! non-resource request whose verb is the lower-case HTTP method.

use http::Method;
use tug_apimachinery::{fields::FieldSelector, labels};

/// What can go wrong while deriving a [`RequestInfo`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A legacy verb segment (`watch`, `proxy`) with nothing after it.
    #[error("unable to determine kind and namespace from url {path}")]
    MissingKind {
        /// The request path.
        path: String,
    },
}

/// The verb of a `GET` on a collection.
pub const VERB_LIST: &str = "list";
/// The verb of a `GET …?watch=true` or `GET …/watch/…`.
pub const VERB_WATCH: &str = "watch";

/// Path segments after the version that are verbs rather than resources (legacy forms).
const SPECIAL_VERBS: &[&str] = &["proxy", "watch"];
/// Special verbs whose trailing segments are a proxied path, not a subresource.
const SPECIAL_VERBS_NO_SUBRESOURCES: &[&str] = &["proxy"];
/// Subresources of a namespace: `/namespaces/{ns}/status` is not a resource called `status`.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// What a request asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the request is for an API resource (or subresource).
    pub is_resource_request: bool,
    /// The URL path, percent-decoded.
    pub path: String,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, `proxy`) of a resource request; the lower-case HTTP method of a
    /// non-resource request.
    pub verb: String,
    /// `api` or `apis` (empty for non-resource requests).
    pub api_prefix: String,
    /// The API group, empty for the core group.
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The namespace, empty for cluster-scoped requests and requests across all namespaces.
    pub namespace: String,
    /// The resource (plural name), e.g. `pods`.
    pub resource: String,
    /// The subresource, e.g. `status`.
    pub subresource: String,
    /// The object name, if the path (or a `metadata.name=` field selector on a list or
    /// watch) names one.
    pub name: String,
    /// The path segments from the resource on: `{resource}/{name}/{subresource}/…`.
    pub parts: Vec<String>,
}

/// Derives [`RequestInfo`]s; knows which path prefixes hold APIs.
#[derive(Clone, Debug)]
pub struct RequestInfoResolver {
    /// Prefixes under which resources are served (without slashes).
    api_prefixes: Vec<String>,
    /// Prefixes whose APIs have no group segment (the core group).
    groupless_api_prefixes: Vec<String>,
}

impl Default for RequestInfoResolver {
    /// Kubernetes' layout: `/api` (core group, no group segment) and `/apis/{group}`.
    fn default() -> Self {
        Self {
            api_prefixes: vec!["api".into(), "apis".into()],
            groupless_api_prefixes: vec!["api".into()],
        }
    }
}

impl RequestInfoResolver {
    /// Derives the request info of `method path?query`. `path` may be percent-encoded (as on
    /// the wire); `query` is the raw query string without `?`. On error the request cannot be
    /// served (upstream answers 500).
    pub fn resolve(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
    ) -> Result<RequestInfo, Error> {
        let path = percent_decode(path);
        let mut info = RequestInfo {
            verb: method.as_str().to_ascii_lowercase(),
            ..RequestInfo::default()
        };

        let segments: Vec<&str> = {
            let trimmed = path.trim_matches('/');
            if trimmed.is_empty() {
                Vec::new()
            } else {
                trimmed.split('/').collect()
            }
        };
        let non_resource = |mut info: RequestInfo, path: String| {
            info.path = path;
            Ok(info)
        };
        if segments.len() < 3 || !self.api_prefixes.iter().any(|p| p == segments[0]) {
            return non_resource(info, path);
        }
        let mut rest = &segments[..];
        let prefix = rest[0];
        rest = &rest[1..];
        let mut api_group = "";
        if !self.groupless_api_prefixes.iter().any(|p| p == prefix) {
            // The prefix is consumed already: a grouped API needs group, version and resource.
            if rest.len() < 3 {
                return non_resource(info, path);
            }
            api_group = rest[0];
            rest = &rest[1..];
        }
        info.is_resource_request = true;
        info.api_prefix = prefix.to_string();
        info.api_group = api_group.to_string();
        info.api_version = rest[0].to_string();
        rest = &rest[1..];

        if SPECIAL_VERBS.contains(&rest[0]) {
            if rest.len() < 2 {
                return Err(Error::MissingKind { path });
            }
            info.verb = rest[0].to_string();
            rest = &rest[1..];
        } else {
            info.verb = match *method {
                Method::POST => "create",
                Method::GET | Method::HEAD => "get",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "",
            }
            .to_string();
        }

        // `/namespaces/{ns}/{resource}/…` is relative to the resource; `/namespaces/{ns}` and
        // `/namespaces/{ns}/status` are about the namespace object itself.
        if rest[0] == "namespaces" && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        info.parts = rest.iter().map(|s| s.to_string()).collect();

        if info.parts.len() >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.contains(&info.verb.as_str()) {
            info.subresource = info.parts[2].clone();
        }
        if info.parts.len() >= 2 {
            info.name = info.parts[1].clone();
        }
        if let Some(resource) = info.parts.first() {
            info.resource = resource.clone();
        }

        if info.name.is_empty() && info.verb == "get" {
            let list = ListQuery::parse(query.unwrap_or(""));
            info.verb = if list.watch { VERB_WATCH } else { VERB_LIST }.to_string();
            if let Some(name) = list.name.filter(|n| is_valid_path_segment_name(n)) {
                info.name = name;
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".to_string();
        }
        info.path = path;
        Ok(info)
    }
}

/// The parts of a list's query that change the request info.
#[derive(Debug, Default)]
struct ListQuery {
    watch: bool,
    /// The name a `metadata.name=` field selector pins.
    name: Option<String>,
}

impl ListQuery {
    /// Reads `watch` and `fieldSelector`. Like upstream, a query that does not decode as list
    /// options (a malformed selector or number) loses the field selector but keeps `watch`.
    fn parse(query: &str) -> Self {
        let mut watch = None;
        let mut field_selector = None;
        let mut valid = true;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                // Any value but `0` and `false` (in any case) means true, even an empty one.
                "watch" if watch.is_none() => {
                    watch = Some(!(value == "0" || value.eq_ignore_ascii_case("false")));
                }
                "fieldSelector" if field_selector.is_none() => {
                    field_selector = Some(value.into_owned());
                }
                "labelSelector" => valid &= labels::Selector::parse(&value).is_ok(),
                "limit" | "timeoutSeconds" => valid &= value.parse::<i64>().is_ok(),
                _ => {}
            }
        }
        let selector = field_selector.and_then(|s| FieldSelector::parse(&s).ok());
        let name = match selector {
            Some(selector) if valid => selector
                .requires_exact_match("metadata.name")
                .map(str::to_string),
            _ => None,
        };
        Self {
            watch: watch.unwrap_or(false),
            name,
        }
    }
}

/// Whether `name` can be a path segment: not `.` or `..`, no `/` or `%`.
fn is_valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains(['/', '%'])
}

/// Decodes `%XX` escapes in a URL path (`+` stays `+`); invalid escapes are kept as they are
/// and invalid UTF-8 is replaced, so this never fails.
fn percent_decode(path: &str) -> String {
    if !path.contains('%') {
        return path.to_string();
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One expected resolution: method, URL, then verb, prefix, group, version, namespace,
    /// resource, subresource, name and parts.
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    );

    fn resolve(method: &str, url: &str) -> Result<RequestInfo, Error> {
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        };
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        RequestInfoResolver::default().resolve(&method, path, query)
    }

    fn check(cases: &[Case]) {
        for &(method, url, verb, prefix, group, version, ns, resource, sub, name, parts) in cases {
            let info = resolve(method, url).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            let got = (
                info.is_resource_request,
                info.verb.as_str(),
                info.api_prefix.as_str(),
                info.api_group.as_str(),
                info.api_version.as_str(),
                info.namespace.as_str(),
                info.resource.as_str(),
                info.subresource.as_str(),
                info.name.as_str(),
                info.parts.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            let want = (
                true,
                verb,
                prefix,
                group,
                version,
                ns,
                resource,
                sub,
                name,
                parts.to_vec(),
            );
            assert_eq!(got, want, "{method} {url}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn resource_paths_resolve_like_upstream() {
        check(&[
            ("GET", "/api/v1/namespaces", "list", "api", "", "v1", "", "namespaces", "", "", &["namespaces"]),
            ("GET", "/api/v1/namespaces/other", "get", "api", "", "v1", "other", "namespaces", "", "other", &["namespaces", "other"]),
            ("GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "", "", &["pods"]),
            ("GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
            ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
            ("GET", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", &["pods"]),
            ("HEAD", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", &["pods"]),
            ("PATCH", "/api/v1/namespaces/new-namespace", "patch", "api", "", "v1", "new-namespace", "namespaces", "", "new-namespace", &["namespaces", "new-namespace"]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn legacy_verb_segments_and_the_watch_parameter_pick_watch_or_proxy() {
        check(&[
            ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
            ("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo", "subpath", "not", "a", "subresource"]),
            ("GET", "/api/v1/watch/pods", "watch", "api", "", "v1", "", "pods", "", "", &["pods"]),
            ("GET", "/api/v1/pods?watch=true", "watch", "api", "", "v1", "", "pods", "", "", &["pods"]),
            ("GET", "/api/v1/pods?watch=false", "list", "api", "", "v1", "", "pods", "", "", &["pods"]),
            ("GET", "/api/v1/pods?watch=FALSE", "list", "api", "", "v1", "", "pods", "", "", &["pods"]),
            ("GET", "/api/v1/pods?watch=", "watch", "api", "", "v1", "", "pods", "", "", &["pods"]),
            ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "api", "", "v1", "other", "pods", "", "", &["pods"]),
            ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "api", "", "v1", "other", "pods", "", "", &["pods"]),
            ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "api", "", "v1", "other", "pods", "", "", &["pods"]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn subresources_are_the_third_part_and_namespaces_have_their_own() {
        check(&[
            ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "api", "", "v1", "other", "pods", "status", "foo", &["pods", "foo", "status"]),
            ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "api", "", "v1", "other", "pods", "proxy", "foo", &["pods", "foo", "proxy", "subpath"]),
            ("PUT", "/api/v1/namespaces/other/finalize", "update", "api", "", "v1", "other", "namespaces", "finalize", "other", &["namespaces", "other", "finalize"]),
            ("PUT", "/api/v1/namespaces/other/status", "update", "api", "", "v1", "other", "namespaces", "status", "other", &["namespaces", "other", "status"]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn methods_map_to_verbs_and_deletes_without_a_name_are_deletecollection() {
        check(&[
            ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
            ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
            ("POST", "/api/v1/namespaces/other/pods", "create", "api", "", "v1", "other", "pods", "", "", &["pods"]),
            ("PUT", "/api/v1/namespaces/other/pods/foo", "update", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
            ("OPTIONS", "/api/v1/namespaces/other/pods/foo", "", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
            ("DELETE", "/api/v1/nodes", "deletecollection", "api", "", "v1", "", "nodes", "", "", &["nodes"]),
            ("DELETE", "/api/v1/namespaces", "deletecollection", "api", "", "v1", "", "namespaces", "", "", &["namespaces"]),
            ("DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "api", "", "v1", "other", "pods", "", "", &["pods"]),
            ("DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "apis", "extensions", "v1", "other", "pods", "", "", &["pods"]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn groups_and_versions_come_from_the_path() {
        check(&[
            ("POST", "/apis/extensions/v1/namespaces/other/pods", "create", "apis", "extensions", "v1", "other", "pods", "", "", &["pods"]),
            ("POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "apis", "extensions", "v1beta3", "other", "pods", "", "", &["pods"]),
            ("GET", "/apis/apps/v1/namespaces/default/deployments/web/scale", "get", "apis", "apps", "v1", "default", "deployments", "scale", "web", &["deployments", "web", "scale"]),
            ("GET", "/apis/batch/v1/job", "list", "apis", "batch", "v1", "", "job", "", "", &["job"]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a_metadata_name_field_selector_names_the_object_of_a_list_or_watch() {
        check(&[
            ("GET", "/apis/group/version/resource", "list", "apis", "group", "version", "", "resource", "", "", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1", "list", "apis", "group", "version", "", "resource", "", "name1", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=metadata.name%3D%3Dname1", "list", "apis", "group", "version", "", "resource", "", "name1", &["resource"]),
            ("GET", "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1", "watch", "apis", "group", "version", "", "resource", "", "name1", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=foo=bar", "list", "apis", "group", "version", "", "resource", "", "", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=metadata.name!=name1", "list", "apis", "group", "version", "", "resource", "", "", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo", "list", "apis", "group", "version", "", "resource", "", "", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true", "watch", "apis", "group", "version", "", "resource", "", "", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false", "list", "apis", "group", "version", "", "resource", "", "", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1&limit=x", "list", "apis", "group", "version", "", "resource", "", "", &["resource"]),
            ("GET", "/apis/group/version/resource?fieldSelector=metadata.name=..", "list", "apis", "group", "version", "", "resource", "", "", &["resource"]),
            ("DELETE", "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name=a", "deletecollection", "api", "", "v1", "ns", "pods", "", "", &["pods"]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn percent_escapes_in_the_path_are_decoded() {
        check(&[(
            "GET", "/api/v1/namespaces/other/pods/a%2Db", "get", "api", "", "v1", "other", "pods", "", "a-b", &["pods", "a-b"],
        )]);
        let info = resolve("GET", "/api/v1/namespaces/other/pods/a%zz").expect("resolve");
        assert_eq!(info.name, "a%zz");
    }

    #[test]
    fn short_or_foreign_paths_are_non_resource_requests_with_the_http_verb() {
        for url in [
            "",
            "/",
            "/api",
            "/api/v1",
            "/api/version/",
            "/apis",
            "/apis/group/version/",
            "/apis/extensions/v1beta1",
            "/apis/version/resource",
            "/badprefix/version/resource",
            "/not-api/version/resource",
            "/healthz",
            "/version",
        ] {
            let info = resolve("GET", url).expect("resolve");
            assert!(!info.is_resource_request, "{url}");
            assert_eq!(info.verb, "get", "{url}");
            assert_eq!(info.path, url, "{url}");
        }
        let info = resolve("POST", "/healthz").expect("resolve");
        assert_eq!(info.verb, "post");
    }

    #[test]
    fn other_grouped_and_core_paths_are_resource_requests() {
        for url in [
            "/api/version/resource",
            "/apis/group/version/resource/name/subresource",
            "/api/version/resource/name/subresource",
            "/apis/batch/v1/job/foo",
            "/apis/batch/v1/job/foo/scale",
        ] {
            assert!(
                resolve("GET", url).expect("resolve").is_resource_request,
                "{url}"
            );
        }
    }

    #[test]
    fn a_bare_legacy_verb_segment_is_an_error() {
        assert_eq!(
            resolve("GET", "/api/v1/watch"),
            Err(Error::MissingKind {
                path: "/api/v1/watch".into()
            })
        );
    }
}
