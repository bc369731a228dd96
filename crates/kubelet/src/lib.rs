//! The node agent: node registration and lease, pod workers over CRI, probes, volumes, status and the kubelet HTTPS server.
//!
//! [`run`] is the entry point: it starts (or connects to) the container runtime
//! ([`containerd`], [`cri`]), writes the node's CNI configuration ([`cni`]), registers the Node
//! and keeps its Lease fresh ([`node`]), and runs one worker per pod bound to the node
//! ([`pod`]).
//!
//! **Architecture Invariant:** talks only to the API server and to the container runtime.

pub mod cni;
pub mod containerd;
pub mod cri;
pub mod hollow;
pub mod node;
pub mod pod;
pub mod teardown;

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

/// The agent's data directory unless `--data-dir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/tug-agent";
/// Below this many inotify instances per user, several containerds (each watches its CNI
/// directory) and everything else on the machine run out ("too many open files").
pub const MIN_INOTIFY_INSTANCES: u64 = 512;

/// The agent's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The kubeconfig to reach the API server with.
    pub kubeconfig: PathBuf,
    /// The agent's state: containerd, CNI, pod volumes and logs.
    pub data_dir: PathBuf,
    /// The node's name.
    pub node_name: String,
    /// An existing CRI socket; `None` starts containerd of our own.
    pub runtime_endpoint: Option<PathBuf>,
    /// The node's pod CIDR.
    pub pod_cidr: String,
    /// The node's InternalIP.
    pub node_ip: IpAddr,
    /// A plain-HTTP registry (`HOST:PORT`) that serves docker.io and registry.k8s.io images
    /// (offline machines and tests).
    pub registry_mirror: Option<String>,
    /// The cluster DNS server's address, once cluster DNS runs.
    pub cluster_dns: Option<String>,
}

/// Failures starting the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A directory under the data dir could not be created.
    #[error("cannot create {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// containerd could not be started.
    #[error(transparent)]
    Containerd(#[from] containerd::Error),
    /// The runtime could not be reached.
    #[error(transparent)]
    Cri(#[from] cri::Error),
    /// The CNI configuration could not be written.
    #[error(transparent)]
    Cni(#[from] cni::Error),
    /// The node could not be registered.
    #[error(transparent)]
    Node(#[from] node::Error),
    /// Asked to stop before start-up finished.
    #[error("stopped before the node was registered")]
    Stopped,
}

/// The address the kernel would use to leave this machine, found without sending anything
/// (a UDP `connect` only consults the routing table); loopback when there is no route.
pub fn default_node_ip() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect((Ipv4Addr::new(10, 255, 255, 254), 9))?;
        Ok(socket.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn check_inotify() {
    let path = "/proc/sys/fs/inotify/max_user_instances";
    if let Some(n) = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        && n < MIN_INOTIFY_INSTANCES
    {
        tracing::warn!(
            "fs.inotify.max_user_instances is {n}: containerd's CNI watcher and others may fail with \"too many open files\"; raise it with `sysctl -w fs.inotify.max_user_instances={MIN_INOTIFY_INSTANCES}`"
        );
    }
}

/// Runs the agent until `stop` is cancelled (or a start-up step fails).
pub async fn run(config: Config, stop: CancellationToken) -> Result<(), Error> {
    check_inotify();
    let data = &config.data_dir;
    let pods_dir = data.join("pods");
    let logs_dir = data.join("logs").join("pods");
    for dir in [data, &pods_dir, &logs_dir] {
        std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
            path: dir.clone(),
            source,
        })?;
    }

    let layout = containerd::Layout::new(data);
    let supervisor = match &config.runtime_endpoint {
        Some(_) => None,
        None => Some(
            containerd::Supervisor::start(
                layout.clone(),
                config.registry_mirror.as_deref(),
                stop.child_token(),
            )
            .await?,
        ),
    };
    let socket = match (&config.runtime_endpoint, &supervisor) {
        (Some(endpoint), _) => endpoint.clone(),
        (None, Some(s)) => s.socket(),
        (None, None) => layout.socket(),
    };
    cni::write(
        &layout.cni_conf_dir,
        &config.node_name,
        &config.pod_cidr,
        &data.join("cni").join("ipam"),
    )?;
    let runtime = cri::Cri::connect(socket).await?;
    // containerd accepts connections before its CRI plugin has initialised.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let version = loop {
        match runtime.version().await {
            Ok(v) => break v,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "container runtime not ready yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(
        runtime = version.runtime_name,
        version = version.runtime_version,
        "container runtime is up"
    );

    let kubeconfig = Kubeconfig::read_from(&config.kubeconfig).map_err(|e| Error::Kubeconfig {
        path: config.kubeconfig.clone(),
        message: e.to_string(),
    })?;
    let client_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig {
                path: config.kubeconfig.clone(),
                message: e.to_string(),
            })?;
    let client = kube::Client::try_from(client_config).map_err(|e| Error::Kubeconfig {
        path: config.kubeconfig.clone(),
        message: e.to_string(),
    })?;

    let facts = node::NodeFacts::gather(
        config.node_name.clone(),
        config.node_ip,
        config.pod_cidr.clone(),
        format!("{}://{}", version.runtime_name, version.runtime_version),
        data,
    );
    let registered = register_with_retry(&client, &facts, &runtime, &stop).await?;
    tracing::info!(node = config.node_name, ip = %config.node_ip, pod_cidr = config.pod_cidr, "node registered");
    tokio::spawn(node::heartbeat(
        client.clone(),
        runtime.clone(),
        facts.clone(),
        registered,
        stop.child_token(),
    ));

    let own_oom_score_adj = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let ctx = Arc::new(pod::worker::Context {
        client: client.clone(),
        cri: runtime,
        node: config.node_name.clone(),
        host_ips: vec![config.node_ip.to_string()],
        pods_dir,
        logs_dir,
        dns: pod::spec::Dns::from_resolv_conf(&resolv, config.cluster_dns.clone()),
        node_cpu_milli: facts.cpus * 1000,
        node_memory: facts.memory,
        own_oom_score_adj,
        events: tug_client::events::EventRecorder::new(
            client.clone(),
            "kubelet",
            Some(&config.node_name),
        ),
    });
    pod::run(ctx, stop).await;
    // Containers keep running (their shims outlive containerd); the next start adopts them.
    if let Some(supervisor) = supervisor {
        supervisor.stopped().await;
    }
    Ok(())
}

/// The API server may still be starting: retry registration for a while.
async fn register_with_retry(
    client: &kube::Client,
    facts: &node::NodeFacts,
    runtime: &cri::Cri,
    stop: &CancellationToken,
) -> Result<k8s_openapi::api::core::v1::Node, Error> {
    let mut delay = Duration::from_millis(200);
    let mut attempts = 0;
    loop {
        match node::register(client, facts, runtime).await {
            Ok(node) => return Ok(node),
            Err(e) if attempts < 30 => {
                tracing::warn!(error = %e, "cannot register the node yet; retrying");
                attempts += 1;
            }
            Err(e) => return Err(e.into()),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return Err(Error::Stopped),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
