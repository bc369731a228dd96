//! Hollow nodes, **a benchmark tool only** (`tug agent --simulate N`), like kubemark's hollow
//! kubelets and kwok: N Node objects with leases and status, whose pods are run "status only".
//! No container, sandbox, IP address or volume exists; a pod bound to a hollow node is reported
//! Running and Ready with a made-up pod IP from the node's pod CIDR, and a pod being deleted is
//! finalized at once. This lets the control plane (scheduler, controllers, API server) be
//! measured at a scale a 2-core machine could never run for real.
//!
//! What a hollow node does not do: probes, restarts, container exits (pods of Jobs never
//! complete), resource accounting, logs, exec. Nodes carry the annotation
//! [`HOLLOW_ANNOTATION`] so nobody mistakes them for real ones.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::{Node, Pod},
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::node::{self, NodeFacts, Pressure};

/// The annotation every hollow Node carries.
pub const HOLLOW_ANNOTATION: &str = "tug.dev/hollow-node";
/// The first hollow node's pod CIDR; node `i` gets the `i`-th /24 after it.
const POD_CIDR_BASE: Ipv4Addr = Ipv4Addr::new(10, 128, 0, 0);
/// The most hollow nodes one agent simulates (the /24s of 10.128.0.0/9).
pub const MAX_HOLLOW_NODES: u32 = 32_768;
/// API calls in flight at once (registrations, status patches, deletions, lease renewals).
const IN_FLIGHT: usize = 32;

/// What `tug agent --simulate N` runs.
#[derive(Debug, Clone)]
pub struct HollowConfig {
    /// The kubeconfig to reach the API server with.
    pub kubeconfig: std::path::PathBuf,
    /// Node names are `<prefix>-<i>`.
    pub name_prefix: String,
    /// How many nodes.
    pub count: u32,
    /// The InternalIP every hollow node reports.
    pub node_ip: IpAddr,
}

/// Failures starting hollow nodes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A node could not be registered.
    #[error("register hollow node {node:?}: {source}")]
    Register {
        /// The node.
        node: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// `count` is out of range.
    #[error("--simulate {0}: at most {MAX_HOLLOW_NODES} hollow nodes")]
    TooMany(u32),
}

/// The `i`-th hollow node's pod CIDR.
fn pod_cidr(i: u32) -> (Ipv4Addr, String) {
    let base = u32::from(POD_CIDR_BASE) + (i << 8);
    let net = Ipv4Addr::from(base);
    (net, format!("{net}/24"))
}

/// One hollow node's facts: a generous fixed machine (like kwok's defaults).
fn facts(config: &HollowConfig, i: u32) -> NodeFacts {
    let name = format!("{}-{i}", config.name_prefix);
    NodeFacts {
        machine_id: format!("hollow-{name}"),
        boot_id: format!("hollow-{name}"),
        name,
        ip: config.node_ip,
        pod_cidr: pod_cidr(i).1,
        runtime_version: "hollow://0.0.0".into(),
        cpus: 32,
        memory: 256 << 30,
        ephemeral_storage: 1 << 40,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        os_image: "Tug hollow node".into(),
    }
}

/// Runs `config.count` hollow nodes until `stop` is cancelled.
pub async fn run(config: HollowConfig, stop: CancellationToken) -> Result<(), Error> {
    if config.count > MAX_HOLLOW_NODES {
        return Err(Error::TooMany(config.count));
    }
    let client = tug_client::client_from_kubeconfig(&config.kubeconfig)
        .await
        .map_err(|e| Error::Kubeconfig {
            path: config.kubeconfig.clone(),
            message: format!("{e:#}"),
        })?;
    let all: Vec<NodeFacts> = (0..config.count).map(|i| facts(&config, i)).collect();
    let registered: Vec<Node> = futures::stream::iter(all.iter().cloned())
        .map(|facts| register(client.clone(), facts))
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    tracing::info!(
        count = config.count,
        prefix = config.name_prefix,
        "hollow nodes registered (benchmark tool: their pods run status-only)"
    );
    let nodes: HashMap<String, HollowNode> = all
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            (
                f.name.clone(),
                HollowNode {
                    host_ip: config.node_ip,
                    pod_net: pod_cidr(index).0,
                    next_ip: 0,
                },
            )
        })
        .collect();
    let owners = registered
        .iter()
        .map(|n| OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: n.metadata.name.clone().unwrap_or_default(),
            uid: n.metadata.uid.clone().unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    tokio::spawn(heartbeats(client.clone(), owners, stop.child_token()));
    tokio::spawn(keep_ready(
        client.clone(),
        all.iter().map(|f| (f.name.clone(), f.clone())).collect(),
        stop.child_token(),
    ));
    run_pods(client, nodes, stop).await;
    Ok(())
}

/// Creates the Node (adopting an existing one) and posts a Ready status.
async fn register(client: Client, facts: NodeFacts) -> Result<Node, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut object = node::node_object(&facts);
    object
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(HOLLOW_ANNOTATION.into(), "true".into());
    let err = |source| Error::Register {
        node: facts.name.clone(),
        source,
    };
    let existing = match nodes.create(&PostParams::default(), &object).await {
        Ok(node) => node,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            nodes.get(&facts.name).await.map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    let previous = existing
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let status = node::node_status(&facts, Pressure::default(), &previous, Timestamp::now());
    nodes
        .patch_status(
            &facts.name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .map_err(err)
}

/// Posts a Ready status again whenever a hollow node is seen not Ready (the node lifecycle
/// controller marks a node Unknown when its heartbeats stop, e.g. while this process was
/// paused), as a real kubelet does when its posted status differs from the API server's.
async fn keep_ready(client: Client, facts: HashMap<String, NodeFacts>, stop: CancellationToken) {
    let nodes: Api<Node> = Api::all(client);
    let mut events = watcher(nodes.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    loop {
        let node = tokio::select! {
            () = stop.cancelled() => return,
            event = events.next() => match event {
                Some(Ok(node)) => node,
                Some(Err(_)) => continue,
                None => return,
            },
        };
        let Some(f) = node.metadata.name.as_ref().and_then(|n| facts.get(n)) else {
            continue;
        };
        let conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            continue;
        }
        let status = node::node_status(f, Pressure::default(), &conditions, Timestamp::now());
        if let Err(e) = nodes
            .patch_status(
                &f.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
        {
            tracing::debug!(node = f.name, error = %e, "cannot post the hollow node's status");
        }
    }
}

/// Renews every hollow node's Lease each [`node::LEASE_RENEW`], spread over the period.
async fn heartbeats(client: Client, owners: Vec<OwnerReference>, stop: CancellationToken) {
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let mut held: HashMap<String, Lease> = HashMap::new();
    let mut tick = tokio::time::interval(node::LEASE_RENEW);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let work: Vec<(OwnerReference, Option<Lease>)> = owners
            .iter()
            .map(|o| (o.clone(), held.get(&o.name).cloned()))
            .collect();
        let renewed: Vec<(String, Option<Lease>)> = futures::stream::iter(work)
            .map(|(owner, lease)| {
                let leases = leases.clone();
                async move {
                    let result = renew(&leases, &owner, lease).await;
                    if let Err(e) = &result {
                        tracing::debug!(node = owner.name, error = %e, "hollow lease renewal failed");
                    }
                    (owner.name, result.ok())
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (name, lease) in renewed {
            match lease {
                Some(lease) => held.insert(name, lease),
                None => held.remove(&name),
            };
        }
    }
}

/// One renewal: a replace of the Lease we hold (one request), or get-or-create when we hold
/// none or lost a conflict.
async fn renew(
    leases: &Api<Lease>,
    owner: &OwnerReference,
    held: Option<Lease>,
) -> Result<Lease, kube::Error> {
    let now = MicroTime(Timestamp::now());
    let mut lease = match held {
        Some(lease) => lease,
        None => match leases.get_opt(&owner.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(owner.name.clone()),
                        namespace: Some("kube-node-lease".into()),
                        owner_references: Some(vec![owner.clone()]),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(owner.name.clone()),
                        lease_duration_seconds: Some(node::LEASE_DURATION_SECONDS),
                        renew_time: Some(now),
                        ..Default::default()
                    }),
                };
                return leases.create(&PostParams::default(), &lease).await;
            }
        },
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.renew_time = Some(now);
    spec.holder_identity = Some(owner.name.clone());
    spec.lease_duration_seconds = Some(node::LEASE_DURATION_SECONDS);
    leases
        .replace(&owner.name, &PostParams::default(), &lease)
        .await
}

/// A hollow node's pod address book.
#[derive(Debug)]
struct HollowNode {
    host_ip: IpAddr,
    pod_net: Ipv4Addr,
    next_ip: u32,
}

impl HollowNode {
    /// The next made-up pod IP: .2 to .254 of the node's /24, round robin.
    fn next_pod_ip(&mut self) -> Ipv4Addr {
        let ip = Ipv4Addr::from(u32::from(self.pod_net) + 2 + self.next_ip);
        self.next_ip = (self.next_ip + 1) % 253;
        ip
    }
}

/// Watches all pods and acts on those bound to a hollow node.
async fn run_pods(client: Client, mut nodes: HashMap<String, HollowNode>, stop: CancellationToken) {
    let pods: Api<Pod> = Api::all(client);
    let mut events = watcher(pods.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    // Pods already reported Running (or being finalized), so our own writes are not repeated.
    let mut done: HashSet<String> = HashSet::new();
    loop {
        let pod = tokio::select! {
            event = events.next() => match event {
                Some(Ok(pod)) => pod,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "hollow pod watch error");
                    continue;
                }
                None => return,
            },
            () = stop.cancelled() => return,
        };
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| nodes.get_mut(n))
        else {
            continue;
        };
        let (Some(name), Some(ns), Some(uid)) = (
            pod.metadata.name.clone(),
            pod.metadata.namespace.clone(),
            pod.metadata.uid.clone(),
        ) else {
            continue;
        };
        let api: Api<Pod> = Api::namespaced(pods.clone().into_client(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            if !done.insert(format!("delete/{uid}")) {
                continue;
            }
            let permit = limit.clone().acquire_owned().await;
            tokio::spawn(async move {
                let _permit = permit;
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                if let Err(e) = api.delete(&name, &params).await {
                    tracing::debug!(pod = name, error = %e, "hollow pod finalize failed");
                }
            });
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Running" | "Succeeded" | "Failed")) || !done.insert(uid) {
            continue;
        }
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let pod_ip = if host_network {
            node.host_ip
        } else {
            IpAddr::V4(node.next_pod_ip())
        };
        let patch = running_status(&pod, node.host_ip, pod_ip, Timestamp::now());
        let permit = limit.clone().acquire_owned().await;
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                tracing::debug!(pod = name, error = %e, "hollow pod status failed");
            }
        });
    }
}

/// The strategic-merge patch that reports `pod` Running and Ready: init containers completed
/// (sidecars running), every container running, ready and started.
fn running_status(pod: &Pod, host_ip: IpAddr, pod_ip: IpAddr, now: Timestamp) -> Value {
    let now = now.to_string();
    let spec = pod.spec.clone().unwrap_or_default();
    let image_id = |image: &str| format!("hollow://{image}");
    let container_id = |name: &str| {
        format!(
            "hollow://{}/{name}",
            pod.metadata.uid.as_deref().unwrap_or_default()
        )
    };
    let running = |c: &k8s_openapi::api::core::v1::Container| {
        let image = c.image.clone().unwrap_or_default();
        json!({
            "name": c.name, "image": image, "imageID": image_id(&image),
            "containerID": container_id(&c.name), "ready": true, "started": true,
            "restartCount": 0, "state": { "running": { "startedAt": now } },
        })
    };
    let init: Vec<Value> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            if c.restart_policy.as_deref() == Some("Always") {
                return running(c);
            }
            let image = c.image.clone().unwrap_or_default();
            json!({
                "name": c.name, "image": image, "imageID": image_id(&image),
                "containerID": container_id(&c.name), "ready": true, "started": false,
                "restartCount": 0,
                "state": { "terminated": {
                    "exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now,
                    "containerID": container_id(&c.name),
                } },
            })
        })
        .collect();
    let containers: Vec<Value> = spec.containers.iter().map(running).collect();
    let condition =
        |type_: &str| json!({ "type": type_, "status": "True", "lastTransitionTime": now });
    let mut status = json!({
        "phase": "Running",
        "hostIP": host_ip.to_string(),
        "hostIPs": [{ "ip": host_ip.to_string() }],
        "podIP": pod_ip.to_string(),
        "podIPs": [{ "ip": pod_ip.to_string() }],
        "startTime": now,
        "conditions": [
            condition("PodReadyToStartContainers"),
            condition("Initialized"),
            condition("Ready"),
            condition("ContainersReady"),
        ],
        "containerStatuses": containers,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = Value::Array(init);
    }
    json!({ "status": status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_cidrs_are_distinct_24s() {
        assert_eq!(pod_cidr(0).1, "10.128.0.0/24");
        assert_eq!(pod_cidr(1).1, "10.128.1.0/24");
        assert_eq!(pod_cidr(256).1, "10.129.0.0/24");
        assert_eq!(pod_cidr(MAX_HOLLOW_NODES - 1).1, "10.255.255.0/24");
    }

    #[test]
    fn pod_ips_cycle_inside_the_node_range() {
        let mut node = HollowNode {
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            pod_net: pod_cidr(3).0,
            next_ip: 0,
        };
        assert_eq!(node.next_pod_ip(), Ipv4Addr::new(10, 128, 3, 2));
        for _ in 0..252 {
            let ip = node.next_pod_ip();
            assert!(ip.octets()[3] >= 2 && ip.octets()[3] <= 254, "{ip}");
        }
        assert_eq!(node.next_pod_ip(), Ipv4Addr::new(10, 128, 3, 2));
    }

    #[test]
    fn running_status_reports_every_container_ready() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "p", "uid": "u1" },
            "spec": {
                "initContainers": [
                    { "name": "setup", "image": "busybox" },
                    { "name": "sidecar", "image": "busybox", "restartPolicy": "Always" },
                ],
                "containers": [{ "name": "app", "image": "nginx" }],
            },
        }))
        .expect("pod");
        let patch = running_status(
            &pod,
            "192.0.2.1".parse().expect("ip"),
            "10.128.0.2".parse().expect("ip"),
            Timestamp::UNIX_EPOCH,
        );
        let status = &patch["status"];
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "10.128.0.2");
        assert_eq!(status["hostIP"], "192.0.2.1");
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        assert!(status["containerStatuses"][0]["state"]["running"].is_object());
        assert_eq!(
            status["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert!(status["initContainerStatuses"][1]["state"]["running"].is_object());
        let types: Vec<&str> = status["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .filter_map(|c| c["type"].as_str())
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady"
            ]
        );
    }
}
