//! Discovery, built once from the catalogue: `/api` (`APIVersions`), `/apis`
//! (`APIGroupList`), `/apis/<group>` (`APIGroup`), `/api/v1` and `/apis/<group>/<version>`
//! (`APIResourceList`), and aggregated discovery (`APIGroupDiscoveryList`, `v2` and
//! `v2beta1`) on `/api` and `/apis` when the `Accept` header asks for it, with an `ETag`,
//! `Vary: Accept` and `304 Not Modified` as upstream serves it.
//!
//! kubectl resolves short names (`deploy`) and categories (`all`) through aggregated discovery.

use std::collections::BTreeMap;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use tug_api::catalog::{self, Resource, Subresource, Verb};

use super::{
    Warnings,
    negotiate::{self, Conversion, DiscoveryVersion, Output, Restrictions},
    response,
};

/// Every discovery document, serialised once.
#[derive(Debug)]
pub(crate) struct Documents {
    /// `/api`.
    api_versions: Value,
    /// `/apis`.
    group_list: Value,
    /// `/apis/<group>` by group.
    groups: BTreeMap<String, Value>,
    /// `/api/v1` and `/apis/<group>/<version>` by path without the leading slash.
    resource_lists: BTreeMap<String, Value>,
    /// Aggregated `/api` and `/apis`: (v2 body, v2beta1 body, ETag) each.
    aggregated_core: Aggregated,
    aggregated_groups: Aggregated,
}

/// An aggregated discovery document in both versions, with its ETag.
#[derive(Debug)]
struct Aggregated {
    v2: Vec<u8>,
    v2beta1: Vec<u8>,
    etag: String,
}

impl Aggregated {
    fn new(items: Vec<Value>) -> Self {
        let list = |version: &str| {
            json!({
                "kind": "APIGroupDiscoveryList",
                "apiVersion": format!("apidiscovery.k8s.io/{version}"),
                "metadata": {},
                "items": items,
            })
        };
        let v2 = serde_json::to_vec(&list("v2")).unwrap_or_default();
        let v2beta1 = serde_json::to_vec(&list("v2beta1")).unwrap_or_default();
        // Upstream's ETag: the upper-case hex SHA-512 of the document.
        let digest = ring::digest::digest(&ring::digest::SHA512, &v2);
        let etag = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Self { v2, v2beta1, etag }
    }
}

/// Upstream's `storageVersionHash`: the first 8 bytes of the SHA-256 of
/// `group/version/kind`, base64.
pub(crate) fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{group}/{version}/{kind}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

fn verbs(verbs: &[Verb]) -> Value {
    Value::from(verbs.iter().map(|v| v.as_str()).collect::<Vec<_>>())
}

/// The kind a subresource reports, with its group and version only when they differ from
/// the resource's own (as upstream's `GroupVersionKindProvider` sets them).
fn subresource_kind(resource: &Resource, sub: &Subresource) -> (String, String, String) {
    let gvk = sub.response_gvk(resource);
    if gvk.group == resource.group && gvk.version == resource.version {
        (String::new(), String::new(), gvk.kind.to_string())
    } else {
        (
            gvk.group.to_string(),
            gvk.version.to_string(),
            gvk.kind.to_string(),
        )
    }
}

/// The `APIResource` entries of one group-version, sorted by name as upstream sorts paths.
fn api_resources(group: &str, version: &str) -> Vec<Value> {
    let mut entries: Vec<(String, Value)> = Vec::new();
    for r in catalog::resources_in(group, version) {
        let mut entry = Map::new();
        entry.insert("name".into(), r.plural.into());
        entry.insert("singularName".into(), r.singular.into());
        entry.insert("namespaced".into(), r.namespaced.into());
        entry.insert("kind".into(), r.kind.into());
        entry.insert("verbs".into(), verbs(r.verbs));
        if !r.short_names.is_empty() {
            entry.insert("shortNames".into(), Value::from(r.short_names.to_vec()));
        }
        if !r.categories.is_empty() {
            entry.insert("categories".into(), Value::from(r.categories.to_vec()));
        }
        if let Some(storage) = r.storage {
            entry.insert(
                "storageVersionHash".into(),
                storage_version_hash(storage.group, storage.version, r.kind).into(),
            );
        }
        entries.push((r.plural.to_string(), Value::Object(entry)));
        for sub in r.subresources {
            let name = format!("{}/{}", r.plural, sub.name);
            let (g, v, kind) = subresource_kind(r, sub);
            let mut entry = Map::new();
            entry.insert("name".into(), name.clone().into());
            entry.insert("singularName".into(), "".into());
            entry.insert("namespaced".into(), r.namespaced.into());
            if !g.is_empty() {
                entry.insert("group".into(), g.into());
            }
            if !v.is_empty() {
                entry.insert("version".into(), v.into());
            }
            entry.insert("kind".into(), kind.into());
            entry.insert("verbs".into(), verbs(sub.verbs));
            entries.push((name, Value::Object(entry)));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().map(|(_, v)| v).collect()
}

/// The aggregated `APIResourceDiscovery` entries of one group-version.
fn discovery_resources(group: &str, version: &str) -> Vec<Value> {
    let mut resources: Vec<&Resource> = catalog::resources_in(group, version).collect();
    resources.sort_by_key(|r| r.plural);
    resources
        .into_iter()
        .map(|r| {
            let mut entry = Map::new();
            entry.insert("resource".into(), r.plural.into());
            entry.insert(
                "responseKind".into(),
                json!({"group": "", "version": "", "kind": r.kind}),
            );
            entry.insert(
                "scope".into(),
                if r.namespaced {
                    "Namespaced"
                } else {
                    "Cluster"
                }
                .into(),
            );
            entry.insert("singularResource".into(), r.singular.into());
            entry.insert("verbs".into(), verbs(r.verbs));
            if !r.short_names.is_empty() {
                entry.insert("shortNames".into(), Value::from(r.short_names.to_vec()));
            }
            if !r.categories.is_empty() {
                entry.insert("categories".into(), Value::from(r.categories.to_vec()));
            }
            if !r.subresources.is_empty() {
                let subs: Vec<Value> = r
                    .subresources
                    .iter()
                    .map(|sub| {
                        let (g, v, kind) = subresource_kind(r, sub);
                        json!({
                            "subresource": sub.name,
                            "responseKind": {"group": g, "version": v, "kind": kind},
                            "verbs": verbs(sub.verbs),
                        })
                    })
                    .collect();
                entry.insert("subresources".into(), Value::from(subs));
            }
            Value::Object(entry)
        })
        .collect()
}

/// One `APIGroupDiscovery` item.
fn discovery_group(group: &catalog::Group) -> Value {
    let versions: Vec<Value> = group
        .versions
        .iter()
        .map(|v| {
            json!({
                "version": v,
                "resources": discovery_resources(group.name, v),
                "freshness": "Current",
            })
        })
        .collect();
    let mut metadata = Map::new();
    if !group.name.is_empty() {
        metadata.insert("name".into(), group.name.into());
    }
    metadata.insert("creationTimestamp".into(), Value::Null);
    json!({"metadata": metadata, "versions": versions})
}

/// `APIGroup` of a named group (without `kind`/`apiVersion`).
fn api_group(group: &catalog::Group) -> Map<String, Value> {
    let versions: Vec<Value> = group
        .versions
        .iter()
        .map(|v| json!({"groupVersion": group.group_version(v), "version": v}))
        .collect();
    let preferred = group.preferred_version();
    let mut map = Map::new();
    map.insert("name".into(), group.name.into());
    map.insert("versions".into(), Value::from(versions));
    map.insert(
        "preferredVersion".into(),
        json!({"groupVersion": group.group_version(preferred), "version": preferred}),
    );
    map
}

impl Documents {
    /// Builds every document. `server_address` is the `host:port` clients reach this server
    /// at (`serverAddressByClientCIDRs`).
    pub(crate) fn new(server_address: &str) -> Self {
        let cidrs = json!([{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]);
        let named: Vec<&catalog::Group> = catalog::groups()
            .iter()
            .filter(|g| !g.name.is_empty())
            .collect();
        let core_versions: Vec<&str> = catalog::group("")
            .map(|g| g.versions.to_vec())
            .unwrap_or_default();

        let api_versions = json!({
            "kind": "APIVersions",
            "versions": core_versions,
            "serverAddressByClientCIDRs": cidrs,
        });
        let group_list = json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": named.iter().map(|g| {
                let mut map = api_group(g);
                map.insert("serverAddressByClientCIDRs".into(), cidrs.clone());
                Value::Object(map)
            }).collect::<Vec<_>>(),
        });
        let mut groups = BTreeMap::new();
        for g in &named {
            let mut map = Map::new();
            map.insert("kind".into(), "APIGroup".into());
            map.insert("apiVersion".into(), "v1".into());
            map.extend(api_group(g));
            groups.insert(g.name.to_string(), Value::Object(map));
        }
        let mut resource_lists = BTreeMap::new();
        for g in catalog::groups() {
            for v in g.versions {
                let group_version = g.group_version(v);
                let path = if g.name.is_empty() {
                    format!("api/{v}")
                } else {
                    format!("apis/{}/{v}", g.name)
                };
                resource_lists.insert(
                    path,
                    json!({
                        "kind": "APIResourceList",
                        "apiVersion": "v1",
                        "groupVersion": group_version,
                        "resources": api_resources(g.name, v),
                    }),
                );
            }
        }
        let aggregated_core = Aggregated::new(
            catalog::group("")
                .map(|g| vec![discovery_group(g)])
                .unwrap_or_default(),
        );
        let aggregated_groups = Aggregated::new(named.iter().map(|g| discovery_group(g)).collect());
        Self {
            api_versions,
            group_list,
            groups,
            resource_lists,
            aggregated_core,
            aggregated_groups,
        }
    }

    /// Serves a discovery path (`/api`, `/apis/apps/v1`, …); `None` if it is not one.
    pub(crate) fn serve(
        &self,
        path: &str,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Option<Response> {
        let trimmed = path.trim_matches('/');
        let segments: Vec<&str> = trimmed.split('/').collect();
        match segments.as_slice() {
            ["api"] => Some(self.root(headers, query, &self.api_versions, &self.aggregated_core)),
            ["apis"] => Some(self.root(headers, query, &self.group_list, &self.aggregated_groups)),
            ["apis", group] => self
                .groups
                .get(*group)
                .map(|doc| plain(doc, headers, query)),
            ["api", _] | ["apis", _, _] => self
                .resource_lists
                .get(trimmed)
                .map(|doc| plain(doc, headers, query)),
            _ => None,
        }
    }

    /// `/api` or `/apis`: aggregated when asked for, else the legacy document.
    fn root(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        legacy: &Value,
        aggregated: &Aggregated,
    ) -> Response {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        match negotiate::negotiate(accept, Restrictions::Discovery, false) {
            Some(Output {
                conversion: Conversion::Discovery(version),
                ..
            }) => serve_aggregated(aggregated, version, headers),
            _ => plain(legacy, headers, query),
        }
    }
}

/// A legacy discovery document, negotiated as JSON or YAML.
fn plain(doc: &Value, headers: &HeaderMap, query: Option<&str>) -> Response {
    match negotiate::output(headers, query, Restrictions::Default, false) {
        Ok(output) => response::object(StatusCode::OK, doc, &output, &Warnings::default()),
        Err(status) => crate::status::response(&status),
    }
}

/// Aggregated discovery with upstream's caching headers.
fn serve_aggregated(doc: &Aggregated, version: DiscoveryVersion, headers: &HeaderMap) -> Response {
    let quoted = format!("\"{}\"", doc.etag);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == quoted);
    let mut response = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let body = match version {
            DiscoveryVersion::V2 => doc.v2.clone(),
            DiscoveryVersion::V2beta1 => doc.v2beta1.clone(),
        };
        let mut r = Response::new(Body::from(body));
        let content_type = format!(
            "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList",
            version.version()
        );
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        r
    };
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&quoted) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_str(accept).expect("header"),
        );
        h
    }

    #[test]
    fn storage_version_hashes_are_upstreams() {
        assert_eq!(storage_version_hash("", "v1", "Pod"), "xPOwRZ+Yhw8=");
        assert_eq!(
            storage_version_hash("apps", "v1", "Deployment"),
            "8aSe+NMegvE="
        );
    }

    #[tokio::test]
    async fn legacy_documents_list_versions_groups_and_resources() {
        let docs = Documents::new("127.0.0.1:6443");
        let api = body(docs.serve("/api", &HeaderMap::new(), None).expect("api")).await;
        assert_eq!(api["kind"], "APIVersions");
        assert_eq!(api["versions"], json!(["v1"]));
        assert_eq!(
            api["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:6443"
        );
        let apis = body(docs.serve("/apis", &HeaderMap::new(), None).expect("apis")).await;
        assert_eq!(apis["groups"][0]["name"], "apps");
        assert_eq!(
            apis["groups"][0]["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
        let v1 = body(docs.serve("/api/v1", &HeaderMap::new(), None).expect("v1")).await;
        let resources = v1["resources"].as_array().expect("resources");
        let pods = resources
            .iter()
            .find(|r| r["name"] == "pods")
            .expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(pods["storageVersionHash"], "xPOwRZ+Yhw8=");
        let status = resources
            .iter()
            .find(|r| r["name"] == "pods/status")
            .expect("status");
        assert_eq!(status["kind"], "Pod");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        let eviction = resources
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .expect("eviction");
        assert_eq!(
            (eviction["group"].as_str(), eviction["version"].as_str()),
            (Some("policy"), Some("v1"))
        );
        let names: Vec<&str> = resources
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "resources are sorted by name");
        let scale = body(
            docs.serve("/apis/apps/v1", &HeaderMap::new(), None)
                .expect("apps"),
        )
        .await;
        let entry = scale["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "deployments/scale"))
            .cloned()
            .expect("scale");
        assert_eq!(entry["group"], "autoscaling");
        assert!(docs.serve("/apis/nope", &HeaderMap::new(), None).is_none());
        assert!(
            docs.serve("/apis/apps/v9", &HeaderMap::new(), None)
                .is_none()
        );
    }

    #[tokio::test]
    async fn aggregated_discovery_echoes_the_media_type_and_honours_etags() {
        let docs = Documents::new("127.0.0.1:6443");
        let accept =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        let response = docs.serve("/apis", &headers(accept), None).expect("apis");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        assert_eq!(response.headers()[header::VARY], "Accept");
        let etag = response.headers()[header::ETAG].clone();
        let doc = body(response).await;
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        let apps = &doc["items"][0];
        assert_eq!(apps["metadata"]["name"], "apps");
        let deployments = apps["versions"][0]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["resource"] == "deployments"))
            .cloned()
            .expect("deployments");
        assert_eq!(deployments["shortNames"], json!(["deploy"]));
        assert_eq!(deployments["scope"], "Namespaced");
        assert_eq!(
            deployments["responseKind"],
            json!({"group": "", "version": "", "kind": "Deployment"})
        );
        assert_eq!(deployments["subresources"][0]["subresource"], "scale");

        let mut again = headers(accept);
        again.insert(header::IF_NONE_MATCH, etag);
        let response = docs.serve("/apis", &again, None).expect("apis");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);

        let core = docs
            .serve(
                "/api",
                &headers(
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                ),
                None,
            )
            .expect("api");
        assert_eq!(
            core.headers()[header::CONTENT_TYPE],
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        );
        let core = body(core).await;
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(
            core["items"][0]["metadata"],
            json!({"creationTimestamp": null})
        );
    }
}
