//! Scheduler benchmark in the manner of upstream's `scheduler_perf`: a real `tug server`
//! (release build, embedded datastore, in-process scheduler disabled) with nodes created
//! through the API and no kubelets, and a separate `tug scheduler` process, so that the
//! scheduler's own CPU and memory can be read from `/proc`.
//!
//! `cargo bench -p tug --bench scheduler [-- --quick] [-- --only NAME]`
//!
//! Workloads (upstream's names and sizes; `--quick` divides them by 10):
//! - SchedulingBasic: 5000 nodes, 1000 initial pods, 10 000 measured pods;
//! - TopologySpreading: 5000 nodes in 10 zones, 5000 measured pods with a zone spread
//!   constraint (maxSkew 1, DoNotSchedule);
//! - PodAntiAffinity: 5000 nodes, 5000 measured pods with required anti-affinity on the
//!   hostname against each other;
//! - PodAffinity: 5000 nodes in 10 zones, 5000 measured pods with required affinity to their
//!   own group within a zone.
//!
//! Every workload starts a fresh server, then measures two batches of pods (each with its own
//! labels, so their constraints do not interfere):
//! - *live*: pods created by 16 concurrent clients while the scheduler runs (as upstream); a
//!   watch records when each pod is first seen bound. Throughput is measured pods ÷ (last
//!   binding − first create), bounded by how fast the API server accepts creates on this
//!   machine, which is reported beside it; p50/p99 of per-pod latency (create acknowledged →
//!   bound seen) come from this batch.
//! - *backlog*: the same number of pods created while the scheduler process is stopped
//!   (SIGSTOP), then it is resumed: throughput is pods ÷ (last binding − resume), the
//!   scheduler's own capacity (scheduling plus binding through the API) without the creates.
//!
//! The scheduler's CPU (cores used on average over both batches), the API server's CPU while
//! the backlog drains, and the scheduler's RSS at the end are read from `/proc`. Timings never
//! fail the run.

mod support;

use std::{
    collections::HashMap,
    path::Path,
    process::{Child, Command, ExitCode, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use support::{Server, cpu_time, rss_bytes};

/// Clients creating objects at once.
const CREATE_CLIENTS: usize = 16;
/// How long a phase may take before the run gives up (a deadline only).
const PHASE_DEADLINE: Duration = Duration::from_secs(900);
/// Zones the topology workloads spread nodes over.
const ZONES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Basic,
    TopologySpreading,
    PodAntiAffinity,
    PodAffinity,
}

#[derive(Debug, Clone, Copy)]
struct Workload {
    name: &'static str,
    kind: Kind,
    nodes: usize,
    initial_pods: usize,
    measured_pods: usize,
    /// Upstream's published floor (pods/s) on its CI machines.
    upstream_floor: f64,
    /// Tug's goal on this machine (pods/s); 0 when the issue states none.
    goal: f64,
}

const WORKLOADS: [Workload; 4] = [
    Workload {
        name: "SchedulingBasic",
        kind: Kind::Basic,
        nodes: 5000,
        initial_pods: 1000,
        measured_pods: 10_000,
        upstream_floor: 680.0,
        goal: 2000.0,
    },
    Workload {
        name: "TopologySpreading",
        kind: Kind::TopologySpreading,
        nodes: 5000,
        initial_pods: 0,
        measured_pods: 5000,
        upstream_floor: 460.0,
        goal: 1000.0,
    },
    Workload {
        name: "PodAntiAffinity",
        kind: Kind::PodAntiAffinity,
        nodes: 5000,
        initial_pods: 0,
        measured_pods: 5000,
        upstream_floor: 60.0,
        goal: 300.0,
    },
    Workload {
        name: "PodAffinity",
        kind: Kind::PodAffinity,
        nodes: 5000,
        initial_pods: 0,
        measured_pods: 5000,
        upstream_floor: 35.0,
        goal: 0.0,
    },
];

#[derive(Debug)]
struct Options {
    divisor: usize,
    only: Option<String>,
}

impl Options {
    const USAGE: &'static str =
        "usage: cargo bench -p tug --bench scheduler [-- [--quick] [--only NAME]]";

    fn parse() -> anyhow::Result<Self> {
        let mut options = Self {
            divisor: 1,
            only: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.divisor = 10,
                "--only" => options.only = Some(args.next().context("--only needs a name")?),
                "--bench" => {}
                other => bail!("unknown argument {other:?}\n{}", Self::USAGE),
            }
        }
        Ok(options)
    }
}

fn node_json(i: usize) -> serde_json::Value {
    let name = format!("node-{i}");
    json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": format!("zone-{}", i % ZONES),
        }},
        "status": {
            "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

fn pod_json(kind: Kind, name: &str, group: usize, batch: &str) -> serde_json::Value {
    let app = format!("bench-{batch}");
    let group = format!("{batch}-g{group}");
    let mut pod = json!({
        "metadata": {"name": name, "labels": {"app": app, "group": group}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]},
    });
    let spec = &mut pod["spec"];
    match kind {
        Kind::Basic => {}
        Kind::TopologySpreading => {
            spec["topologySpreadConstraints"] = json!([{
                "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": app}}}]);
        }
        Kind::PodAntiAffinity => {
            spec["affinity"] = json!({"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": app}},
                    "topologyKey": "kubernetes.io/hostname"}]}});
        }
        Kind::PodAffinity => {
            spec["affinity"] = json!({"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"group": group}},
                    "topologyKey": "topology.kubernetes.io/zone"}]}});
        }
    }
    pod
}

/// Creates `count` objects from `make(i)` with [`CREATE_CLIENTS`] clients; returns, per
/// index, when its create was acknowledged.
async fn create_all<K>(
    api: Api<K>,
    count: usize,
    make: impl Fn(usize) -> serde_json::Value + Send + Sync + 'static,
) -> anyhow::Result<Vec<Instant>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    K: Send + Sync + 'static,
{
    let make = Arc::new(make);
    let done = Arc::new(Mutex::new(vec![Instant::now(); count]));
    let mut tasks = Vec::new();
    for client in 0..CREATE_CLIENTS {
        let api = api.clone();
        let make = make.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = client;
            while i < count {
                let object: K = serde_json::from_value(make(i))?;
                api.create(&PostParams::default(), &object)
                    .await
                    .with_context(|| format!("create #{i}"))?;
                if let Ok(mut d) = done.lock() {
                    d[i] = Instant::now();
                }
                i += CREATE_CLIENTS;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let times = done.lock().map(|d| d.clone()).unwrap_or_default();
    Ok(times)
}

/// Watches the namespace's pods and records when each name is first seen bound.
fn watch_bindings(
    client: Client,
) -> (
    Arc<Mutex<HashMap<String, Instant>>>,
    tokio::task::JoinHandle<()>,
) {
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = bound.clone();
    let task = tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(client, "bench");
        let stream = watcher(api, watcher::Config::default()).applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let Ok(pod) = event else { continue };
            if pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some()
                && let (Some(name), Ok(mut map)) = (pod.metadata.name, seen.lock())
            {
                map.entry(name).or_insert_with(Instant::now);
            }
        }
    });
    (bound, task)
}

/// Waits until `names` are all bound.
async fn wait_bound(
    bound: &Arc<Mutex<HashMap<String, Instant>>>,
    names: &[String],
    scheduler: &mut Child,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_DEADLINE;
    loop {
        let missing = {
            let map = bound.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            names.iter().filter(|n| !map.contains_key(*n)).count()
        };
        if missing == 0 {
            return Ok(());
        }
        if let Some(status) = scheduler.try_wait()? {
            bail!("tug scheduler exited with {status}");
        }
        ensure!(
            Instant::now() < deadline,
            "{missing} pods still unbound after {PHASE_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[derive(Debug)]
struct Row {
    workload: Workload,
    nodes: usize,
    measured: usize,
    throughput: f64,
    create_rate: f64,
    backlog_throughput: f64,
    p50: Duration,
    p99: Duration,
    cpu_cores: f64,
    server_cpu_cores: f64,
    rss: u64,
}

struct Scheduler(Child);

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_workload(dir: &Path, w: Workload, divisor: usize) -> anyhow::Result<Row> {
    let nodes = (w.nodes / divisor).max(1);
    let initial = w.initial_pods / divisor;
    let measured = w.measured_pods / divisor;
    let server = Server::start(&dir.join(w.name)).await?;
    let client = tug_client_for(&server.kubeconfig()).await?;
    eprintln!("{}: creating {nodes} nodes", w.name);
    create_all(Api::<Node>::all(client.clone()), nodes, node_json).await?;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(ns)?)
        .await?;

    let log = std::fs::File::create(dir.join(format!("{}-scheduler.log", w.name)))?;
    let mut scheduler = Scheduler(
        Command::new(support::TUG)
            .arg("scheduler")
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .args(["--leader-elect", "false"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn tug scheduler")?,
    );
    let (bound, watch) = watch_bindings(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench");

    if initial > 0 {
        eprintln!("{}: {initial} initial pods", w.name);
        let kind = w.kind;
        create_all(pods.clone(), initial, move |i| {
            pod_json(kind, &format!("init-{i}"), i % 50, "init")
        })
        .await?;
        let names: Vec<String> = (0..initial).map(|i| format!("init-{i}")).collect();
        wait_bound(&bound, &names, &mut scheduler.0).await?;
    }

    eprintln!("{}: {measured} measured pods", w.name);
    let pid = scheduler.0.id();
    let cpu_before = cpu_time(pid)?;
    let start = Instant::now();
    let kind = w.kind;
    let created = create_all(pods.clone(), measured, move |i| {
        pod_json(kind, &format!("pod-{i}"), i % 50, "live")
    })
    .await?;
    let create_rate = measured as f64 / start.elapsed().as_secs_f64();
    let names: Vec<String> = (0..measured).map(|i| format!("pod-{i}")).collect();
    wait_bound(&bound, &names, &mut scheduler.0).await?;
    let map = bound
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut last = start;
    let mut latencies: Vec<Duration> = Vec::with_capacity(measured);
    for (i, name) in names.iter().enumerate() {
        let at = map.get(name).copied().unwrap_or(start);
        last = last.max(at);
        latencies.push(at.saturating_duration_since(created[i]));
    }
    latencies.sort_unstable();
    let elapsed = last.duration_since(start);
    let live_cpu = cpu_time(pid)?.saturating_sub(cpu_before);

    eprintln!("{}: {measured} backlog pods", w.name);
    signal(pid, "-STOP")?;
    let created = create_all(pods.clone(), measured, move |i| {
        pod_json(kind, &format!("backlog-{i}"), i % 50, "backlog")
    })
    .await;
    let cpu_before = cpu_time(pid)?;
    let server_cpu_before = cpu_time(server.pid())?;
    let resumed = Instant::now();
    signal(pid, "-CONT")?;
    created?;
    let names: Vec<String> = (0..measured).map(|i| format!("backlog-{i}")).collect();
    wait_bound(&bound, &names, &mut scheduler.0).await?;
    let map = bound
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let backlog_last = names
        .iter()
        .filter_map(|n| map.get(n).copied())
        .max()
        .unwrap_or(resumed);
    let backlog_elapsed = backlog_last.saturating_duration_since(resumed);
    let cpu = live_cpu + cpu_time(pid)?.saturating_sub(cpu_before);
    let server_cpu = cpu_time(server.pid())?.saturating_sub(server_cpu_before);
    let rss = rss_bytes(pid)?;
    watch.abort();

    Ok(Row {
        workload: w,
        nodes,
        measured,
        throughput: measured as f64 / elapsed.as_secs_f64(),
        create_rate,
        backlog_throughput: measured as f64 / backlog_elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        cpu_cores: cpu.as_secs_f64() / (elapsed + backlog_elapsed).as_secs_f64(),
        server_cpu_cores: server_cpu.as_secs_f64() / backlog_elapsed.as_secs_f64(),
        rss,
    })
}

/// Sends a signal (`-STOP`, `-CONT`) to a process.
fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill {sig} {pid} failed");
    Ok(())
}

async fn tug_client_for(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

async fn run(options: Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for w in WORKLOADS {
        if options.only.as_deref().is_some_and(|o| o != w.name) {
            continue;
        }
        rows.push(run_workload(dir.path(), w, options.divisor).await?);
    }
    println!(
        "\n| workload | nodes | pods per batch | backlog pods/s | live pods/s | live create/s | live p50 ms | live p99 ms | scheduler CPU (cores) | API server CPU in backlog (cores) | scheduler RSS MiB | upstream floor | goal (backlog) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let goal = if r.workload.goal > 0.0 {
            format!(
                ">= {:.0} ({})",
                r.workload.goal,
                if r.backlog_throughput >= r.workload.goal {
                    "met"
                } else {
                    "NOT met"
                }
            )
        } else {
            "-".to_owned()
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} | {:.0} | {} |",
            r.workload.name,
            r.nodes,
            r.measured,
            r.backlog_throughput,
            r.throughput,
            r.create_rate,
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0,
            r.cpu_cores,
            r.server_cpu_cores,
            r.rss as f64 / (1024.0 * 1024.0),
            r.workload.upstream_floor,
            goal,
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scheduler benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
