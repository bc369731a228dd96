//! API server benchmark: the real `tug server` (release build, embedded SQLite datastore) on a
//! loopback port, measured over HTTPS with the admin client certificate, beside the datastore
//! alone for the same writes.
//!
//! `cargo bench -p tug --bench api [-- --quick] [-- --seconds S] [-- --http1]`
//!
//! - writes: create ConfigMaps (1 KiB of data) and Pods (a small realistic spec) with 1, 16
//!   and 128 concurrent clients for a fixed time per cell (5 s; `--quick` 2 s): ops/s, p50, p99;
//! - the datastore alone (`SqliteStore`, `Txn::create` of 1 KiB values) with the same clients,
//!   and the API's overhead per write (API p50 − store p50, API ops/s ÷ store ops/s);
//! - reads: GET of one object with 1, 16 and 128 clients; LIST of 10 000 pods, whole and in
//!   pages of 500, at `resourceVersion=""` (consistent, from the datastore) and `"0"` (cache);
//! - watch fan-out: 100 watchers of the pods of one namespace, then sequential updates of one
//!   pod; delivery latency (update acknowledged → event received) and events/s delivered;
//! - the server's RSS idle right after start and with 10 000 pods stored;
//! - the upstream SLOs and Tug's goals, and whether each is met.
//!
//! Every simulated client owns one kept-alive connection: HTTP/2 by default (client-go,
//! kubectl), HTTP/1.1 keep-alive with `--http1` (kube-rs). Timings never fail the run; any
//! failed request aborts it with the server's answer and the end of the server's log.
//!
//! The LIST phase runs on a second, fresh server holding exactly the 10 000 pods, so that its
//! memory figure is not inflated by the objects the write cells created.

mod support;

use std::{
    collections::HashMap,
    fmt::Write as _,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use serde::Deserialize;
use support::{
    Server,
    client::{Connection, Protocol, Reply},
};
use tug_storage::{
    Store, Txn, TxnResponse,
    sqlite::{SqliteConfig, SqliteStore},
};

/// Concurrent clients of every throughput cell.
const CLIENTS: [usize; 3] = [1, 16, 128];
/// The concurrency the mutating-latency goal is stated at.
const GOAL_CLIENTS: usize = 16;
/// Bytes of data in each ConfigMap and each datastore value.
const VALUE_SIZE: usize = 1024;
/// Pods stored for the LIST cells and the memory figure.
const LIST_PODS: u64 = 10_000;
/// Page size of the paginated LIST.
const PAGE_LIMIT: usize = 500;
/// Clients that store the LIST pods.
const SEED_CLIENTS: usize = 16;
/// Every LIST cell runs at least this many lists, even past its time.
const MIN_LISTS: usize = 3;
/// Bound of the LIST loop and of the pages of one paginated list.
const MAX_LISTS: usize = 10_000;
/// Concurrent watchers of the fan-out cell.
const WATCHERS: usize = 100;
/// How long watchers may take to open, and to receive every event after the last update.
const WATCH_DEADLINE: Duration = Duration::from_secs(60);
/// Mutating calls p99, upstream's API call latency SLO.
const SLO_MUTATING_P99: Duration = Duration::from_secs(1);
/// LIST p99, upstream's API call latency SLO (cluster scope).
const SLO_LIST_P99: Duration = Duration::from_secs(30);
/// Tug's goal: mutating p99 at 16 clients.
const GOAL_MUTATING_P99: Duration = Duration::from_millis(25);
/// Tug's goal: idle RSS of `tug server`, in bytes (50 MB).
const GOAL_IDLE_RSS: u64 = 50_000_000;

/// The command line.
#[derive(Debug)]
struct Options {
    /// Time per throughput and LIST cell.
    cell: Duration,
    /// Updates of the watch fan-out cell.
    watch_updates: usize,
    /// The HTTP version every connection offers.
    protocol: Protocol,
}

impl Options {
    const USAGE: &'static str =
        "usage: cargo bench -p tug --bench api [-- [--quick] [--seconds S] [--http1]]";

    fn parse() -> anyhow::Result<Self> {
        let mut options = Self {
            cell: Duration::from_secs(5),
            watch_updates: 1000,
            protocol: Protocol::Http2,
        };
        let mut seconds = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {
                    options.cell = Duration::from_secs(2);
                    options.watch_updates = 200;
                }
                "--seconds" => {
                    let s: u64 = args
                        .next()
                        .and_then(|s| s.parse().ok())
                        .filter(|s| *s > 0)
                        .context("--seconds needs a positive whole number")?;
                    seconds = Some(Duration::from_secs(s));
                }
                "--http1" => options.protocol = Protocol::Http1,
                // cargo bench passes it to every bench target.
                "--bench" => {}
                other => bail!("unknown argument {other:?}\n{}", Self::USAGE),
            }
        }
        if let Some(seconds) = seconds {
            options.cell = seconds;
        }
        Ok(options)
    }
}

/// The figures of one throughput cell.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        Self {
            ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
        }
    }
}

/// The `p` quantile of sorted `latencies` (nearest rank).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1);
    sorted.get(rank).copied().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The datastore alone.

/// Creates fresh 1 KiB keys with `clients` concurrent clients for `duration`.
async fn store_creates(
    store: Arc<dyn Store>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Figures> {
    let value = Bytes::from(vec![b'x'; VALUE_SIZE]);
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (store, value) = (store.clone(), value.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let key = format!("/registry/configmaps/bench/store-{clients}-{c}-{i}");
                    let t = Instant::now();
                    match store.txn(Txn::create(key.clone(), value.clone())).await? {
                        TxnResponse::Applied { .. } => {}
                        other => bail!("datastore create of {key} rejected: {other:?}"),
                    }
                    latencies.push(t.elapsed());
                    i += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Figures::new(latencies, start.elapsed()))
}

// ---------------------------------------------------------------------------------------------
// API requests.

/// What the create cells make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ConfigMap,
    Pod,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Self::ConfigMap => "configmaps",
            Self::Pod => "pods",
        }
    }

    fn collection(self, namespace: &str) -> String {
        format!("/api/v1/namespaces/{namespace}/{}", self.resource())
    }

    /// The object named `name`, as JSON.
    fn body(self, name: &str) -> Bytes {
        let object = match self {
            Self::ConfigMap => serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"app": "bench"}},
                "data": {"payload": "x".repeat(VALUE_SIZE)},
            }),
            // What a Deployment's pod template usually holds.
            Self::Pod => serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "labels": {"app": "bench", "pod-template-hash": "5d9c7b8f6"},
                },
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "registry.k8s.io/pause:3.10",
                        "args": ["--port=8080"],
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "LOG_LEVEL", "value": "info"}],
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http"},
                            "periodSeconds": 10,
                        },
                        "livenessProbe": {
                            "tcpSocket": {"port": 8080},
                            "initialDelaySeconds": 5,
                        },
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                },
            }),
        };
        Bytes::from(object.to_string())
    }
}

/// One request of a throughput cell.
#[derive(Debug)]
enum Op {
    /// Create `<prefix>-<n>` in `namespace`.
    Create {
        kind: Kind,
        namespace: &'static str,
        prefix: String,
    },
    /// GET one object.
    Get { path: String },
}

impl Op {
    /// Sends the `n`th request of the cell; anything but success is an error.
    async fn perform(&self, conn: &mut Connection, n: u64) -> anyhow::Result<()> {
        match self {
            Self::Create {
                kind,
                namespace,
                prefix,
            } => {
                let name = format!("{prefix}-{n}");
                let body = kind.body(&name);
                conn.call(
                    "POST",
                    &kind.collection(namespace),
                    Some(("application/json", body)),
                )
                .await?
                .expect(
                    &[201],
                    format_args!("create {} {namespace}/{name}", kind.resource()),
                )?;
            }
            Self::Get { path } => {
                conn.call("GET", path, None)
                    .await?
                    .expect(&[200], format_args!("GET {path}"))?;
            }
        }
        Ok(())
    }
}

/// When the clients of a cell stop.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// No request starts after this instant.
    At(Instant),
    /// After this many requests in all.
    Count(u64),
}

/// Runs `op` from the first `clients` connections of `conns` (each client on its own
/// connection, one request at a time) until `stop`; the connections are kept for the next
/// cell.
async fn drive(
    conns: &mut Vec<Connection>,
    clients: usize,
    op: Op,
    stop: Stop,
) -> anyhow::Result<Figures> {
    ensure!(
        conns.len() >= clients,
        "{clients} clients need as many connections"
    );
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .drain(..clients)
        .map(|mut conn| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    if let Stop::At(deadline) = stop
                        && Instant::now() >= deadline
                    {
                        break;
                    }
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if let Stop::Count(total) = stop
                        && n >= total
                    {
                        break;
                    }
                    let t = Instant::now();
                    op.perform(&mut conn, n).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok((conn, latencies))
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        let (conn, mine) = task.await??;
        conns.push(conn);
        latencies.extend(mine);
    }
    Ok(Figures::new(latencies, start.elapsed()))
}

/// Opens `n` connections with `tls`.
async fn connect(
    server: &Server,
    tls: &Arc<rustls::ClientConfig>,
    n: usize,
) -> anyhow::Result<Vec<Connection>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(Connection::open(server.addr(), tls.clone()).await?);
    }
    Ok(conns)
}

/// Creates namespace `name` and its `default` ServiceAccount unless they exist.
async fn ensure_namespace(conn: &mut Connection, name: &str) -> anyhow::Result<()> {
    let ns =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    conn.call(
        "POST",
        "/api/v1/namespaces",
        Some(("application/json", Bytes::from(ns.to_string()))),
    )
    .await?
    .expect(&[201, 409], format_args!("create namespace {name}"))?;
    // Pods run as `default`; upstream's ServiceAccount admission refuses pods without it.
    let sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
    conn.call(
        "POST",
        &format!("/api/v1/namespaces/{name}/serviceaccounts"),
        Some(("application/json", Bytes::from(sa.to_string()))),
    )
    .await?
    .expect(
        &[201, 409],
        format_args!("create serviceaccount {name}/default"),
    )?;
    Ok(())
}

/// The metadata the benchmark reads from objects.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Meta {
    name: String,
    resource_version: String,
    #[serde(rename = "continue")]
    continue_token: String,
}

/// An object or a list, reduced to what the benchmark reads (other fields are skipped).
#[derive(Debug, Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    items: Vec<serde::de::IgnoredAny>,
}

fn decode(reply: &Reply, what: &str) -> anyhow::Result<Object> {
    serde_json::from_slice(&reply.body)
        .with_context(|| format!("{what}: the reply is not an object: {}", reply.text()))
}

// ---------------------------------------------------------------------------------------------
// LIST.

/// One LIST cell's request.
#[derive(Clone, Copy, Debug)]
struct ListRequest {
    /// `Some(500)` for pages of 500.
    limit: Option<usize>,
    /// `resourceVersion` of the (first) request; `""` leaves it out.
    resource_version: &'static str,
}

/// What one list returned.
#[derive(Clone, Copy, Debug)]
struct Listed {
    /// Time spent waiting for the server: request sent → body received, summed over pages
    /// (the client's decoding is not counted).
    waited: Duration,
    items: usize,
    pages: usize,
    /// Bytes of the response bodies.
    bytes: usize,
}

/// Lists every pod of the cluster as `request` says, following `continue` tokens.
async fn list_pods(conn: &mut Connection, request: ListRequest) -> anyhow::Result<Listed> {
    let mut waited = Duration::ZERO;
    let mut items = 0;
    let mut bytes = 0;
    let mut token = String::new();
    for page in 0..MAX_LISTS {
        let mut query = Vec::new();
        if let Some(limit) = request.limit {
            query.push(format!("limit={limit}"));
        }
        if !token.is_empty() {
            query.push(format!("continue={}", query_escape(&token)));
        } else if !request.resource_version.is_empty() {
            query.push(format!("resourceVersion={}", request.resource_version));
        }
        let path = if query.is_empty() {
            "/api/v1/pods".to_string()
        } else {
            format!("/api/v1/pods?{}", query.join("&"))
        };
        let t = Instant::now();
        let reply = conn
            .call("GET", &path, None)
            .await?
            .expect(&[200], format_args!("LIST {path} (page {})", page + 1))?;
        waited += t.elapsed();
        bytes += reply.body.len();
        let list = decode(&reply, &path)?;
        items += list.items.len();
        token = list.metadata.continue_token;
        if token.is_empty() {
            return Ok(Listed {
                waited,
                items,
                pages: page + 1,
                bytes,
            });
        }
        ensure!(
            request.limit.is_some(),
            "LIST {path} without a limit returned a continue token"
        );
    }
    bail!("LIST {request:?} did not end after {MAX_LISTS} pages")
}

/// The figures of one LIST cell.
#[derive(Clone, Copy, Debug)]
struct ListFigures {
    request: ListRequest,
    lists: usize,
    p50: Duration,
    p99: Duration,
    /// Pages and response bytes of the last list.
    pages: usize,
    bytes: usize,
}

/// Lists for `duration` (at least [`MIN_LISTS`] times); every list must return `expected`
/// items.
async fn list_cell(
    conn: &mut Connection,
    request: ListRequest,
    expected: usize,
    duration: Duration,
) -> anyhow::Result<ListFigures> {
    let start = Instant::now();
    let mut latencies = Vec::new();
    let (mut pages, mut bytes) = (0, 0);
    while latencies.len() < MAX_LISTS && (latencies.len() < MIN_LISTS || start.elapsed() < duration)
    {
        let listed = list_pods(conn, request).await?;
        ensure!(
            listed.items == expected,
            "LIST {request:?} returned {} pods, expected {expected}",
            listed.items
        );
        latencies.push(listed.waited);
        (pages, bytes) = (listed.pages, listed.bytes);
    }
    latencies.sort_unstable();
    Ok(ListFigures {
        request,
        lists: latencies.len(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        pages,
        bytes,
    })
}

/// Percent-encodes a query parameter value.
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Watch fan-out.

/// Namespace and pod of the watch cell.
const WATCH_NAMESPACE: &str = "watch";
const WATCHED_POD: &str = "watched";

/// The figures of the watch cell.
#[derive(Clone, Copy, Debug, Default)]
struct WatchFigures {
    updates: usize,
    events: usize,
    events_per_sec: f64,
    p50: Duration,
    p99: Duration,
    /// Events that arrived before their update was acknowledged (counted as 0 latency).
    before_ack: usize,
}

/// One event line of a watch stream, reduced to what the benchmark reads.
#[derive(Debug, Deserialize)]
struct WatchLine {
    #[serde(rename = "type")]
    event_type: String,
    object: Object,
}

/// Reads `expected` MODIFIED events of the watched pod from `body`, with the instant each
/// arrived.
async fn receive(
    mut body: Incoming,
    expected: usize,
    watcher: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let mut seen = Vec::with_capacity(expected);
    let mut buffer: Vec<u8> = Vec::new();
    while seen.len() < expected {
        let frame = body
            .frame()
            .await
            .with_context(|| {
                format!(
                    "watcher {watcher}: the stream ended after {} of {expected} events",
                    seen.len()
                )
            })?
            .with_context(|| format!("watcher {watcher}: reading the stream"))?;
        let at = Instant::now();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let text = || String::from_utf8_lossy(&line).into_owned();
            let event: WatchLine = serde_json::from_slice(&line)
                .with_context(|| format!("watcher {watcher}: not a watch event: {}", text()))?;
            ensure!(
                event.event_type == "MODIFIED" && event.object.metadata.name == WATCHED_POD,
                "watcher {watcher}: unexpected event: {}",
                text()
            );
            seen.push((event.object.metadata.resource_version, at));
        }
    }
    Ok(seen)
}

/// Opens [`WATCHERS`] watches of the pods of one namespace, each on its own connection, then
/// sends `updates` sequential merge patches of one pod and waits until every watcher received
/// every update.
async fn watch_fanout(
    server: &Server,
    tls: &Arc<rustls::ClientConfig>,
    updates: usize,
) -> anyhow::Result<WatchFigures> {
    let mut writer = Connection::open(server.addr(), tls.clone()).await?;
    ensure_namespace(&mut writer, WATCH_NAMESPACE).await?;
    let created = writer
        .call(
            "POST",
            &Kind::Pod.collection(WATCH_NAMESPACE),
            Some(("application/json", Kind::Pod.body(WATCHED_POD))),
        )
        .await?
        .expect(
            &[201],
            format_args!("create pods {WATCH_NAMESPACE}/{WATCHED_POD}"),
        )?;
    let from = decode(&created, "create the watched pod")?
        .metadata
        .resource_version;

    let path = format!(
        "/api/v1/namespaces/{WATCH_NAMESPACE}/pods?watch=true&resourceVersion={from}&timeoutSeconds=1800"
    );
    let mut watchers = Vec::with_capacity(WATCHERS);
    for watcher in 0..WATCHERS {
        let mut conn = Connection::open(server.addr(), tls.clone()).await?;
        // The response head means the watch is established: updates sent from now on are
        // delivered live, not replayed.
        let response = tokio::time::timeout(WATCH_DEADLINE, conn.send("GET", &path, None))
            .await
            .with_context(|| {
                format!("watcher {watcher}: no response head within {WATCH_DEADLINE:?}")
            })??;
        let status = response.status().as_u16();
        let body = response.into_body();
        if status != 200 {
            let body = body.collect().await?.to_bytes();
            return Err(Reply { status, body }.error(format_args!("watch {path}")));
        }
        watchers.push(tokio::spawn(async move {
            let _conn = conn;
            receive(body, updates, watcher).await
        }));
    }

    let mut acks = HashMap::with_capacity(updates);
    let patch_path = format!("/api/v1/namespaces/{WATCH_NAMESPACE}/pods/{WATCHED_POD}");
    let first_sent = Instant::now();
    for seq in 0..updates {
        let patch = serde_json::json!({"metadata": {"annotations": {"bench.tug.dev/seq": seq.to_string()}}});
        let reply = writer
            .call(
                "PATCH",
                &patch_path,
                Some((
                    "application/merge-patch+json",
                    Bytes::from(patch.to_string()),
                )),
            )
            .await?
            .expect(&[200], format_args!("patch {patch_path} (update {seq})"))?;
        let acked = Instant::now();
        let rv = decode(&reply, "patch the watched pod")?
            .metadata
            .resource_version;
        ensure!(
            acks.insert(rv.clone(), acked).is_none(),
            "two updates acknowledged with resourceVersion {rv}"
        );
    }

    let mut latencies = Vec::with_capacity(updates * WATCHERS);
    let mut last_received = first_sent;
    let mut before_ack = 0;
    for (watcher, task) in watchers.into_iter().enumerate() {
        let events = tokio::time::timeout(WATCH_DEADLINE, task)
            .await
            .with_context(|| {
                format!(
                    "watcher {watcher} did not receive all {updates} events within {WATCH_DEADLINE:?} of the last update"
                )
            })???;
        for (rv, at) in events {
            let acked = acks.get(&rv).with_context(|| {
                format!("watcher {watcher}: an event with resourceVersion {rv} no update made")
            })?;
            if at < *acked {
                before_ack += 1;
            }
            latencies.push(at.saturating_duration_since(*acked));
            last_received = last_received.max(at);
        }
    }
    latencies.sort_unstable();
    Ok(WatchFigures {
        updates,
        events: latencies.len(),
        events_per_sec: latencies.len() as f64
            / last_received.duration_since(first_sent).as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        before_ack,
    })
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Everything the report shows.
#[derive(Debug, Default)]
struct Results {
    startup: Duration,
    store: Vec<(usize, Figures)>,
    creates: Vec<(Kind, usize, Figures)>,
    gets: Vec<(usize, Figures)>,
    watch: WatchFigures,
    seed: Figures,
    listed_pods: usize,
    lists: Vec<ListFigures>,
    idle_rss: u64,
    rss_10k: u64,
    rss_after_lists: u64,
}

/// Adds the end of the server's log to a failure (a panic or an error the server logged
/// explains most failed requests).
fn with_log(result: anyhow::Result<()>, server: &mut Server) -> anyhow::Result<()> {
    result.map_err(|e| match server.check_alive() {
        Err(exited) => anyhow::anyhow!("{e:#}\n{exited:#}"),
        Ok(()) => anyhow::anyhow!(
            "{e:#}\nthe server's log ends with:\n{}",
            server.log_tail(30)
        ),
    })
}

/// The datastore alone, before any server runs (so that nothing else uses the CPUs).
async fn datastore_phase(results: &mut Results, options: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("bench.db")))
        .await
        .context("open the datastore")?;
    let store: Arc<dyn Store> = Arc::new(store);
    for clients in CLIENTS {
        eprintln!("datastore: create with {clients} clients");
        let figures = store_creates(store.clone(), clients, options.cell).await?;
        results.store.push((clients, figures));
    }
    Ok(())
}

/// Writes, GETs and the watch fan-out on a fresh server.
async fn api_phase(
    server: &Server,
    results: &mut Results,
    options: &Options,
) -> anyhow::Result<()> {
    let tls = server.admin_tls(options.protocol)?;
    let mut conns = connect(server, &tls, CLIENTS[CLIENTS.len() - 1]).await?;
    ensure_namespace(&mut conns[0], "bench").await?;
    for kind in [Kind::ConfigMap, Kind::Pod] {
        for clients in CLIENTS {
            eprintln!("API: create {} with {clients} clients", kind.resource());
            let op = Op::Create {
                kind,
                namespace: "bench",
                prefix: format!("{}-{clients}", kind.resource()),
            };
            let stop = Stop::At(Instant::now() + options.cell);
            let figures = drive(&mut conns, clients, op, stop).await?;
            results.creates.push((kind, clients, figures));
        }
    }
    Op::Create {
        kind: Kind::Pod,
        namespace: "bench",
        prefix: "get-target".into(),
    }
    .perform(&mut conns[0], 0)
    .await?;
    for clients in CLIENTS {
        eprintln!("API: get one pod with {clients} clients");
        let op = Op::Get {
            path: "/api/v1/namespaces/bench/pods/get-target-0".into(),
        };
        let stop = Stop::At(Instant::now() + options.cell);
        results
            .gets
            .push((clients, drive(&mut conns, clients, op, stop).await?));
    }
    drop(conns);
    eprintln!(
        "API: watch fan-out, {WATCHERS} watchers, {} updates",
        options.watch_updates
    );
    results.watch = watch_fanout(server, &tls, options.watch_updates).await?;
    Ok(())
}

/// 10 000 pods on a fresh server: memory, then LISTs.
async fn list_phase(
    server: &Server,
    results: &mut Results,
    options: &Options,
) -> anyhow::Result<()> {
    let tls = server.admin_tls(options.protocol)?;
    let mut conns = connect(server, &tls, SEED_CLIENTS).await?;
    ensure_namespace(&mut conns[0], "list").await?;
    let before = list_pods(
        &mut conns[0],
        ListRequest {
            limit: None,
            resource_version: "",
        },
    )
    .await?
    .items;
    eprintln!("LIST: storing {LIST_PODS} pods with {SEED_CLIENTS} clients");
    let op = Op::Create {
        kind: Kind::Pod,
        namespace: "list",
        prefix: "pod".into(),
    };
    results.seed = drive(&mut conns, SEED_CLIENTS, op, Stop::Count(LIST_PODS)).await?;
    results.rss_10k = server.rss_bytes()?;
    results.listed_pods = before + LIST_PODS as usize;
    let conn = &mut conns[0];
    for limit in [None, Some(PAGE_LIMIT)] {
        for resource_version in ["", "0"] {
            let request = ListRequest {
                limit,
                resource_version,
            };
            eprintln!("LIST: {}", describe_list(request));
            let figures = list_cell(conn, request, results.listed_pods, options.cell).await?;
            results.lists.push(figures);
        }
    }
    results.rss_after_lists = server.rss_bytes()?;
    Ok(())
}

fn describe_list(request: ListRequest) -> String {
    let what = match request.limit {
        None => "whole list".to_string(),
        Some(limit) => format!("pages of {limit}"),
    };
    format!("{what}, resourceVersion=\"{}\"", request.resource_version)
}

async fn run(options: &Options) -> anyhow::Result<Results> {
    let mut results = Results::default();
    datastore_phase(&mut results, options).await?;

    let dir = tempfile::tempdir()?;
    eprintln!("starting {}", support::TUG);
    let mut server = Server::start(&dir.path().join("api")).await?;
    results.startup = server.startup;
    results.idle_rss = server.rss_bytes()?;
    let outcome = api_phase(&server, &mut results, options).await;
    with_log(outcome, &mut server)?;
    drop(server);

    eprintln!("starting a fresh server for the LIST phase");
    let mut server = Server::start(&dir.path().join("list")).await?;
    let outcome = list_phase(&server, &mut results, options).await;
    with_log(outcome, &mut server)?;
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// The report.

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn report(results: &Results, options: &Options) -> anyhow::Result<String> {
    let mut out = String::new();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    writeln!(
        out,
        "# API server benchmark: `tug server` (release) on 127.0.0.1, embedded SQLite, {} over TLS with the admin client certificate; {} s per cell; {cpus} CPUs shared by server and clients",
        options.protocol.name(),
        options.cell.as_secs()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Start-up: spawn to ready in {} ms. Each client owns one kept-alive connection and sends one request at a time.",
        results.startup.as_millis()
    )?;

    writeln!(out, "\n## Writes: create\n")?;
    writeln!(out, "| workload | clients | ops/s | p50 ms | p99 ms |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for (kind, clients, f) in &results.creates {
        let what = match kind {
            Kind::ConfigMap => "create ConfigMap (1 KiB data)",
            Kind::Pod => "create Pod",
        };
        writeln!(
            out,
            "| {what} | {clients} | {:.0} | {} | {} |",
            f.ops_per_sec,
            ms(f.p50),
            ms(f.p99)
        )?;
    }

    writeln!(
        out,
        "\n## Datastore alone (`SqliteStore`, `Txn::create`, 1 KiB values) and the API overhead per write\n"
    )?;
    writeln!(
        out,
        "| clients | store ops/s | store p50 ms | store p99 ms | API workload | API − store p50 ms | API ÷ store ops/s |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (clients, store) in &results.store {
        for (kind, _, api) in results.creates.iter().filter(|(_, c, _)| c == clients) {
            writeln!(
                out,
                "| {clients} | {:.0} | {} | {} | create {} | {} | {:.2} |",
                store.ops_per_sec,
                ms(store.p50),
                ms(store.p99),
                kind.resource(),
                ms(api.p50.saturating_sub(store.p50)),
                api.ops_per_sec / store.ops_per_sec
            )?;
        }
    }

    writeln!(out, "\n## Reads: GET of one pod\n")?;
    writeln!(out, "| clients | ops/s | p50 ms | p99 ms |")?;
    writeln!(out, "|---|---|---|---|")?;
    for (clients, f) in &results.gets {
        writeln!(
            out,
            "| {clients} | {:.0} | {} | {} |",
            f.ops_per_sec,
            ms(f.p50),
            ms(f.p99)
        )?;
    }

    writeln!(
        out,
        "\n## Reads: LIST of all {} pods (`/api/v1/pods`), one client\n",
        results.listed_pods
    )?;
    writeln!(
        out,
        "Time = request sent → whole body received, summed over pages (client decoding excluded). The pods were stored with {SEED_CLIENTS} clients at {:.0} pods/s (p99 {} ms).\n",
        results.seed.ops_per_sec,
        ms(results.seed.p99)
    )?;
    writeln!(
        out,
        "| request | resourceVersion | lists | p50 ms | p99 ms | pages | response MiB |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for f in &results.lists {
        let what = match f.request.limit {
            None => "whole list".to_string(),
            Some(limit) => format!("paginated, limit={limit}"),
        };
        let rv = match f.request.resource_version {
            "" => "\"\" (consistent)",
            _ => "\"0\" (cache)",
        };
        writeln!(
            out,
            "| {what} | {rv} | {} | {} | {} | {} | {} |",
            f.lists,
            ms(f.p50),
            ms(f.p99),
            f.pages,
            mib(f.bytes as u64)
        )?;
    }

    let w = &results.watch;
    writeln!(
        out,
        "\n## Watch fan-out: {WATCHERS} watchers of the pods of one namespace, {} sequential updates of one pod\n",
        w.updates
    )?;
    writeln!(
        out,
        "| watchers | updates | events delivered | events/s | delivery p50 ms | delivery p99 ms | events before the ack |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    writeln!(
        out,
        "| {WATCHERS} | {} | {} | {:.0} | {} | {} | {} |",
        w.updates,
        w.events,
        w.events_per_sec,
        ms(w.p50),
        ms(w.p99),
        w.before_ack
    )?;
    writeln!(
        out,
        "\nDelivery latency: update acknowledged → event received (an event received before the acknowledgement counts as 0)."
    )?;

    writeln!(out, "\n## Memory of the `tug server` process (VmRSS)\n")?;
    writeln!(out, "| moment | RSS MiB |")?;
    writeln!(out, "|---|---|")?;
    writeln!(
        out,
        "| idle, right after start | {} |",
        mib(results.idle_rss)
    )?;
    writeln!(
        out,
        "| {LIST_PODS} pods stored (fresh server) | {} |",
        mib(results.rss_10k)
    )?;
    writeln!(
        out,
        "| {LIST_PODS} pods stored, after the LIST cells | {} |",
        mib(results.rss_after_lists)
    )?;

    let mutating_p99 = results
        .creates
        .iter()
        .map(|(_, _, f)| f.p99)
        .max()
        .unwrap_or_default();
    let list_p99 = results
        .lists
        .iter()
        .map(|f| f.p99)
        .max()
        .unwrap_or_default();
    let goal_p99 = results
        .creates
        .iter()
        .filter(|(_, c, _)| *c == GOAL_CLIENTS)
        .map(|(_, _, f)| f.p99)
        .max()
        .unwrap_or_default();
    writeln!(out, "\n## Objectives\n")?;
    writeln!(out, "| objective | source | threshold | measured | met |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    writeln!(
        out,
        "| mutating API calls p99 (worst create cell) | upstream SLO | ≤ {} ms | {} ms | {} |",
        SLO_MUTATING_P99.as_millis(),
        ms(mutating_p99),
        met(mutating_p99 <= SLO_MUTATING_P99)
    )?;
    writeln!(
        out,
        "| LIST p99 (worst LIST cell, {} pods) | upstream SLO (cluster scope) | ≤ {} s | {} ms | {} |",
        results.listed_pods,
        SLO_LIST_P99.as_secs(),
        ms(list_p99),
        met(list_p99 <= SLO_LIST_P99)
    )?;
    writeln!(
        out,
        "| mutating p99 at {GOAL_CLIENTS} clients (ConfigMap and Pod creates) | Tug goal | < {} ms | {} ms | {} |",
        GOAL_MUTATING_P99.as_millis(),
        ms(goal_p99),
        met(goal_p99 < GOAL_MUTATING_P99)
    )?;
    writeln!(
        out,
        "| idle RSS right after start | Tug goal | < {} MB | {:.1} MB | {} |",
        GOAL_IDLE_RSS / 1_000_000,
        results.idle_rss as f64 / 1e6,
        met(results.idle_rss < GOAL_IDLE_RSS)
    )?;
    Ok(out)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let outcome = async {
        let options = Options::parse()?;
        let results = run(&options).await?;
        report(&results, &options)
    }
    .await;
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
