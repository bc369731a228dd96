//! Node registration and heartbeats: creates (or adopts) the Node object with its capacity,
//! addresses, nodeInfo and labels, posts its conditions, and renews its Lease in
//! `kube-node-lease` every 10 s, as upstream's kubelet does.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::{Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo},
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time},
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use tokio_util::sync::CancellationToken;

use crate::cri::Cri;

/// The kubelet version the node reports.
pub const KUBELET_VERSION: &str = concat!("v1.33.0+tug-", env!("CARGO_PKG_VERSION"));
/// How often the Lease is renewed (upstream: `nodeLeaseDurationSeconds` 40 s / 4).
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
/// The Lease's duration.
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the node status is posted even when nothing changed (upstream: 5 min).
pub const STATUS_REPORT: Duration = Duration::from_secs(300);
/// Pods per node.
pub const MAX_PODS: i64 = 110;

/// Failures of node registration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{what} node {node:?}: {source}")]
    Api {
        /// What we tried.
        what: &'static str,
        /// The node name.
        node: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

/// Facts about this machine, gathered once at start.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// The node name.
    pub name: String,
    /// Its InternalIP.
    pub ip: IpAddr,
    /// Its pod CIDR (until node IPAM lands).
    pub pod_cidr: String,
    /// `containerd://1.6.20…`.
    pub runtime_version: String,
    /// Logical CPUs.
    pub cpus: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Size of the file system holding the data dir, in bytes.
    pub ephemeral_storage: i64,
    /// `uname -r`.
    pub kernel: String,
    /// PRETTY_NAME of /etc/os-release.
    pub os_image: String,
    /// /etc/machine-id.
    pub machine_id: String,
    /// /proc/sys/kernel/random/boot_id.
    pub boot_id: String,
}

impl NodeFacts {
    /// Reads the machine's facts from /proc, /etc and statvfs of `data_dir`.
    pub fn gather(
        name: String,
        ip: IpAddr,
        pod_cidr: String,
        runtime_version: String,
        data_dir: &std::path::Path,
    ) -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            .map_or(0, |kb| kb * 1024);
        let os_image = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| "Linux".into());
        Self {
            name,
            ip,
            pod_cidr,
            runtime_version,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as i64),
            memory,
            ephemeral_storage: fs_size(data_dir),
            kernel: read("/proc/sys/kernel/osrelease"),
            os_image,
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
        }
    }
}

/// Total bytes of the file system holding `path`, 0 when unknown.
fn fs_size(path: &std::path::Path) -> i64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: `statvfs` only writes into the zeroed struct we own; `c` is NUL-terminated.
    #[allow(unsafe_code, reason = "statvfs(3) has no safe wrapper in std")]
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) == 0 {
            (st.f_blocks as i64).saturating_mul(st.f_frsize as i64)
        } else {
            0
        }
    }
}

/// The Node object this agent registers.
pub fn node_object(facts: &NodeFacts) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), facts.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), go_arch().to_owned()),
        ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("beta.kubernetes.io/arch".to_owned(), go_arch().to_owned()),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(facts.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_owned(),
                "true".to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(facts.pod_cidr.clone()),
            pod_cidrs: Some(vec![facts.pod_cidr.clone()]),
            ..Default::default()
        }),
        status: None,
    }
}

/// Go's name of this architecture, as `kubernetes.io/arch` uses it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Pressure signals the conditions are computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Available memory below the eviction threshold (100Mi).
    pub memory: bool,
    /// Free space of the data dir's file system below 10%.
    pub disk: bool,
    /// Free PIDs below 10% (not measured yet: always false).
    pub pid: bool,
    /// Why the node is not ready (the container runtime or its network), if it is not.
    pub not_ready: Option<String>,
}

/// The node status: capacity, addresses, info, and conditions with upstream's reasons.
/// `previous` carries over transition times of unchanged conditions.
pub fn node_status(
    facts: &NodeFacts,
    pressure: Pressure,
    previous: &[NodeCondition],
    now: Timestamp,
) -> NodeStatus {
    let capacity = BTreeMap::from([
        ("cpu".to_owned(), Quantity(facts.cpus.to_string())),
        (
            "memory".to_owned(),
            Quantity(format!("{}Ki", facts.memory / 1024)),
        ),
        (
            "ephemeral-storage".to_owned(),
            Quantity(format!("{}Ki", facts.ephemeral_storage / 1024)),
        ),
        ("pods".to_owned(), Quantity(MAX_PODS.to_string())),
    ]);
    let not_ready = pressure.not_ready.clone().unwrap_or_default();
    let condition = |type_: &str, bad: bool, good: (&str, &str), worse: (&str, &str)| {
        let status = if type_ == "Ready" {
            if bad { "False" } else { "True" }
        } else if bad {
            "True"
        } else {
            "False"
        };
        let (reason, message) = if bad { worse } else { good };
        let transition = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        NodeCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(transition),
        }
    };
    NodeStatus {
        capacity: Some(capacity.clone()),
        allocatable: Some(capacity),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: facts.ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: facts.name.clone(),
            },
        ]),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                pressure.memory,
                (
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                (
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                ),
            ),
            condition(
                "DiskPressure",
                pressure.disk,
                ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ),
            condition(
                "PIDPressure",
                pressure.pid,
                (
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                (
                    "KubeletHasInsufficientPID",
                    "kubelet has insufficient PID available",
                ),
            ),
            condition(
                "Ready",
                pressure.not_ready.is_some(),
                ("KubeletReady", "kubelet is posting ready status"),
                ("KubeletNotReady", &not_ready),
            ),
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: go_arch().into(),
            boot_id: facts.boot_id.clone(),
            container_runtime_version: facts.runtime_version.clone(),
            kernel_version: facts.kernel.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: facts.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: facts.os_image.clone(),
            system_uuid: facts.machine_id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Reads memory and disk pressure (upstream's hard eviction defaults: memory.available<100Mi,
/// nodefs.available<10%).
pub fn measure_pressure(data_dir: &std::path::Path) -> Pressure {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map(|kb| kb * 1024);
    let disk = fs_free_ratio(data_dir).is_some_and(|r| r < 0.10);
    Pressure {
        memory: available.is_some_and(|a| a < 100 * 1024 * 1024),
        disk,
        pid: false,
        not_ready: None,
    }
}

fn fs_free_ratio(path: &std::path::Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `statvfs` only writes into the zeroed struct we own; `c` is NUL-terminated.
    #[allow(unsafe_code, reason = "statvfs(3) has no safe wrapper in std")]
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st) == 0).then_some(st)
    }?;
    (st.f_blocks > 0).then(|| st.f_bavail as f64 / st.f_blocks as f64)
}

/// Creates the Node (or adopts an existing one with the same name) and posts its status.
pub async fn register(client: &Client, facts: &NodeFacts, cri: &Cri) -> Result<Node, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let err = |what| {
        let node = facts.name.clone();
        move |source| Error::Api { what, node, source }
    };
    let node = match nodes
        .create(&PostParams::default(), &node_object(facts))
        .await
    {
        Ok(node) => node,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // Re-registration: keep the object, refresh our labels and pod CIDR.
            let desired = node_object(facts);
            let patch = serde_json::json!({
                "metadata": { "labels": desired.metadata.labels },
                "spec": { "podCIDR": facts.pod_cidr, "podCIDRs": [facts.pod_cidr] },
            });
            nodes
                .patch(&facts.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(err("update"))?
        }
        Err(e) => return Err(err("create")(e)),
    };
    post_status(client, facts, &node, current_pressure(cri).await).await
}

/// Pressure and runtime readiness now.
async fn current_pressure(cri: &Cri) -> Pressure {
    Pressure {
        not_ready: cri.readiness_problem().await,
        ..measure_pressure(std::path::Path::new("/"))
    }
}

async fn post_status(
    client: &Client,
    facts: &NodeFacts,
    node: &Node,
    pressure: Pressure,
) -> Result<Node, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let previous = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let status = node_status(facts, pressure, &previous, Timestamp::now());
    let patch = serde_json::json!({ "status": status });
    nodes
        .patch_status(&facts.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Api {
            what: "post status of",
            node: facts.name.clone(),
            source,
        })
}

/// Renews the Lease every 10 s and posts the node status when pressure changes or every
/// 5 min, until `stop` is cancelled. Failures are logged and retried at the next tick.
pub async fn heartbeat(
    client: Client,
    cri: Cri,
    facts: NodeFacts,
    node: Node,
    stop: CancellationToken,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let mut last_pressure = current_pressure(&cri).await;
    let mut last_report = tokio::time::Instant::now();
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: facts.name.clone(),
        uid: node.metadata.uid.clone().unwrap_or_default(),
        ..Default::default()
    };
    let mut node = node;
    let mut tick = tokio::time::interval(LEASE_RENEW);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        if let Err(e) = renew_lease(&leases, &facts.name, &owner).await {
            tracing::warn!(node = facts.name, error = %e, "cannot renew the node lease");
        }
        let pressure = current_pressure(&cri).await;
        // The node lifecycle controller may have marked the node Unknown (heartbeats missed
        // while this agent was down or cut off): post again when the API server's Ready
        // differs from ours, as upstream's kubelet compares with the node it reads.
        let expected = if pressure.not_ready.is_some() {
            "False"
        } else {
            "True"
        };
        let mut stale = false;
        if let Ok(current) = Api::<Node>::all(client.clone()).get(&facts.name).await {
            stale = ready_status(&current) != Some(expected);
            node = current;
        }
        if stale || pressure != last_pressure || last_report.elapsed() >= STATUS_REPORT {
            if pressure.not_ready != last_pressure.not_ready {
                tracing::warn!(problem = ?pressure.not_ready, "node readiness changed");
            }
            match post_status(&client, &facts, &node, pressure.clone()).await {
                Ok(updated) => {
                    node = updated;
                    last_pressure = pressure;
                    last_report = tokio::time::Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "cannot post the node status"),
            }
        }
    }
}

/// The status of the node's Ready condition.
fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

async fn renew_lease(
    leases: &Api<Lease>,
    node: &str,
    owner: &OwnerReference,
) -> Result<(), kube::Error> {
    let now = MicroTime(Timestamp::now());
    match leases.get_opt(node).await? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.renew_time = Some(now);
            spec.holder_identity = Some(node.to_owned());
            spec.lease_duration_seconds = Some(LEASE_DURATION_SECONDS);
            leases.replace(node, &PostParams::default(), &lease).await?;
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.to_owned()),
                    namespace: Some("kube-node-lease".into()),
                    owner_references: Some(vec![owner.clone()]),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.to_owned()),
                    lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "n1".into(),
            ip: "10.0.0.5".parse().expect("ip"),
            pod_cidr: "10.42.0.0/24".into(),
            runtime_version: "containerd://1.6.20".into(),
            cpus: 2,
            memory: 4 * 1024 * 1024 * 1024,
            ephemeral_storage: 10 * 1024 * 1024 * 1024,
            kernel: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            machine_id: "m".into(),
            boot_id: "b".into(),
        }
    }

    #[test]
    fn a_healthy_node_posts_upstream_reasons() {
        let status = node_status(&facts(), Pressure::default(), &[], Timestamp::UNIX_EPOCH);
        let conditions = status.conditions.expect("conditions");
        let get = |t: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == t)
                .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
        };
        assert_eq!(get("Ready"), Some(("True".into(), "KubeletReady".into())));
        assert_eq!(
            get("MemoryPressure"),
            Some(("False".into(), "KubeletHasSufficientMemory".into()))
        );
        assert_eq!(
            get("DiskPressure"),
            Some(("False".into(), "KubeletHasNoDiskPressure".into()))
        );
        assert_eq!(
            get("PIDPressure"),
            Some(("False".into(), "KubeletHasSufficientPID".into()))
        );
        let capacity = status.capacity.expect("capacity");
        assert_eq!(capacity["pods"].0, "110");
        assert_eq!(capacity["memory"].0, "4194304Ki");
    }

    #[test]
    fn transition_times_survive_unchanged_conditions() {
        let first = node_status(&facts(), Pressure::default(), &[], Timestamp::UNIX_EPOCH);
        let later = Timestamp::from_second(1000).expect("time");
        let pressure = Pressure {
            memory: true,
            ..Default::default()
        };
        let down = Pressure {
            not_ready: Some("container runtime is down: x".into()),
            ..Default::default()
        };
        let status = node_status(&facts(), down, &[], Timestamp::UNIX_EPOCH);
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .expect("ready");
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_deref(),
                ready.message.as_deref()
            ),
            (
                "False",
                Some("KubeletNotReady"),
                Some("container runtime is down: x")
            )
        );
        let second = node_status(
            &facts(),
            pressure,
            &first.conditions.unwrap_or_default(),
            later,
        );
        for c in second.conditions.unwrap_or_default() {
            let expected = if c.type_ == "MemoryPressure" {
                later
            } else {
                Timestamp::UNIX_EPOCH
            };
            assert_eq!(c.last_transition_time, Some(Time(expected)), "{}", c.type_);
        }
    }
}
