//! `/metrics`: Prometheus metrics with upstream's names and labels —
//! `apiserver_request_total{verb,dry_run,group,version,resource,subresource,scope,component,code}`
//! and the `apiserver_request_duration_seconds` histogram with upstream's buckets — plus the
//! usual `process_*` metrics read from `/proc`. A middleware records every authorised request.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::request_info::RequestInfo;

/// Upstream's buckets of `apiserver_request_duration_seconds`.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// The labels of `apiserver_request_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    dry_run: String,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: String,
    component: String,
    code: String,
}

/// The labels of `apiserver_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    verb: String,
    dry_run: String,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: String,
    component: String,
}

fn new_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

/// The metrics of one API server.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram, fn() -> Histogram>,
    start_time: Gauge<f64, std::sync::atomic::AtomicU64>,
    resident_memory: Gauge,
    virtual_memory: Gauge,
    open_fds: Gauge,
    cpu_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Serialises scrapes (the process metrics are set, then encoded).
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            requests.clone(),
        );
        let durations =
            Family::<DurationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                new_histogram,
            );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            durations.clone(),
        );
        let start_time = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        start_time.set(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
        );
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            start_time.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            resident_memory.clone(),
        );
        let virtual_memory = Gauge::default();
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            virtual_memory.clone(),
        );
        let open_fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "Number of open file descriptors.",
            open_fds.clone(),
        );
        let cpu_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            cpu_seconds.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            start_time,
            resident_memory,
            virtual_memory,
            open_fds,
            cpu_seconds,
            scrape: Mutex::new(()),
        }
    }

    /// Records one finished request.
    fn observe(&self, request: &Observed, code: StatusCode, elapsed: Duration) {
        let labels = DurationLabels {
            verb: request.verb.clone(),
            dry_run: request.dry_run.clone(),
            group: request.group.clone(),
            version: request.version.clone(),
            resource: request.resource.clone(),
            subresource: request.subresource.clone(),
            scope: request.scope.clone(),
            component: "apiserver".to_string(),
        };
        self.requests
            .get_or_create(&RequestLabels {
                verb: labels.verb.clone(),
                dry_run: labels.dry_run.clone(),
                group: labels.group.clone(),
                version: labels.version.clone(),
                resource: labels.resource.clone(),
                subresource: labels.subresource.clone(),
                scope: labels.scope.clone(),
                component: labels.component.clone(),
                code: code.as_u16().to_string(),
            })
            .inc();
        // Watches are long-running: their duration says nothing about latency.
        if request.verb != "WATCH" {
            self.durations
                .get_or_create(&labels)
                .observe(elapsed.as_secs_f64());
        }
    }

    /// The text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let _guard = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh_process();
        let _ = &self.start_time;
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Reads the process metrics from `/proc/self`.
    fn refresh_process(&self) {
        // `statm` is in pages; Linux pages are 4 KiB on the platforms Tug runs on.
        const PAGE: i64 = 4096;
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let mut fields = statm
                .split_whitespace()
                .map(|f| f.parse::<i64>().unwrap_or(0));
            let (size, resident) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
            self.virtual_memory.set(size * PAGE);
            self.resident_memory.set(resident * PAGE);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command (which may contain spaces) in parentheses.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
            let ticks: f64 = [11, 12]
                .iter()
                .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
                .sum();
            let total = ticks / 100.0;
            let delta = total - self.cpu_seconds.get();
            if delta > 0.0 {
                self.cpu_seconds.inc_by(delta);
            }
        }
    }
}

/// What the metrics record of a request.
#[derive(Debug)]
struct Observed {
    verb: String,
    dry_run: String,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: String,
}

/// Upstream's verb for metrics (`LIST`, `WATCH`, `APPLY`, `POST`, …).
fn metric_verb(info: &RequestInfo, method: &Method, apply: bool) -> String {
    if !info.is_resource_request {
        return method.as_str().to_string();
    }
    match info.verb.as_str() {
        "get" => "GET",
        "list" => "LIST",
        "watch" => "WATCH",
        "create" => "POST",
        "update" => "PUT",
        "patch" if apply => "APPLY",
        "patch" => "PATCH",
        "delete" => "DELETE",
        "deletecollection" => "DELETECOLLECTION",
        "proxy" => "PROXY",
        other => return other.to_ascii_uppercase(),
    }
    .to_string()
}

/// Upstream's `CleanScope`.
fn metric_scope(info: &RequestInfo) -> &'static str {
    if !info.name.is_empty() || info.verb == "create" {
        "resource"
    } else if !info.namespace.is_empty() {
        "namespace"
    } else if info.is_resource_request {
        "cluster"
    } else {
        ""
    }
}

/// The middleware recording every request that reached a handler.
pub(crate) async fn record(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(info) = request.extensions().get::<RequestInfo>().cloned() else {
        return next.run(request).await;
    };
    let apply = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/apply-patch+yaml"));
    let dry_run = request
        .uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "dryRun"));
    let observed = Observed {
        verb: metric_verb(&info, request.method(), apply),
        dry_run: if dry_run { "All" } else { "" }.to_string(),
        group: info.api_group.clone(),
        version: info.api_version.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        scope: metric_scope(&info).to_string(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(&observed, response.status(), started.elapsed());
    response
}

/// `GET /metrics`.
pub(crate) fn serve(metrics: &Metrics) -> Response {
    let mut response = Response::new(Body::from(metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_with_upstreams_labels_and_buckets() {
        let metrics = Metrics::new();
        let observed = Observed {
            verb: "LIST".into(),
            dry_run: String::new(),
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
            subresource: String::new(),
            scope: "namespace".into(),
        };
        metrics.observe(&observed, StatusCode::OK, Duration::from_millis(3));
        let text = metrics.render();
        assert!(
            text.contains(r#"apiserver_request_total{verb="LIST",dry_run="",group="apps",version="v1",resource="deployments",subresource="",scope="namespace",component="apiserver",code="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"apiserver_request_duration_seconds_bucket{le="0.005",verb="LIST""#),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }

    #[test]
    fn verbs_and_scopes_follow_upstream() {
        let info = RequestInfo {
            is_resource_request: true,
            verb: "patch".into(),
            name: "web".into(),
            ..RequestInfo::default()
        };
        assert_eq!(metric_verb(&info, &Method::PATCH, true), "APPLY");
        assert_eq!(metric_scope(&info), "resource");
        let list = RequestInfo {
            is_resource_request: true,
            verb: "list".into(),
            ..RequestInfo::default()
        };
        assert_eq!(
            (
                metric_verb(&list, &Method::GET, false).as_str(),
                metric_scope(&list)
            ),
            ("LIST", "cluster")
        );
    }
}
