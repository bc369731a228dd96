//! The node lifecycle controller (upstream's `pkg/controller/nodelifecycle` with its taint
//! manager): a node whose Lease (and Ready heartbeat) has not moved for the grace period
//! (`--node-monitor-grace-period`, upstream default 50 s) gets every condition set to
//! `Unknown` ("Kubelet stopped posting node status."), its pods marked not Ready, and the
//! `node.kubernetes.io/unreachable` taints (`not-ready` when the kubelet reports Ready=False):
//! NoSchedule always, NoExecute rate-limited and not while every node is down (upstream's full
//! disruption: the control plane is probably the one cut off). Pods on a NoExecute-tainted node
//! that do not tolerate the taint are deleted at once; those that tolerate it for
//! `tolerationSeconds` are deleted when that time has passed since the taint was added, with
//! the `DisruptionTarget` condition (`DeletionByTaintManager`). A node that comes back loses
//! the taints.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{Node, NodeCondition, Pod, Taint, Toleration},
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::{WatchStreamExt, reflector, watcher},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tug_client::events::{EventRecorder, EventType, object_reference};

/// The taint of a node whose kubelet stopped reporting.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a node whose kubelet reports Ready=False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a node may go without a heartbeat before it is Unknown (upstream 50 s).
    pub grace_period: Duration,
    /// How often nodes are checked (upstream `--node-monitor-period` 5 s).
    pub monitor_period: Duration,
    /// NoExecute taints added per second (upstream `--node-eviction-rate` 0.1).
    pub eviction_rate: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(50),
            monitor_period: Duration::from_secs(5),
            eviction_rate: 0.1,
        }
    }
}

/// What the controller last saw of a node's heartbeats, and when it saw it change.
#[derive(Debug)]
struct Probe {
    lease_renew: Option<String>,
    ready_heartbeat: Option<String>,
    observed: Instant,
}

/// A token bucket: `rate` per second, burst 1.
#[derive(Debug)]
struct Limiter {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Limiter {
    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(1.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect_ok = toleration.effect.as_deref().is_none_or(str::is_empty)
        || toleration.effect.as_deref() == Some(taint.effect.as_str());
    if !effect_ok {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When a pod on a node with `taints` (the NoExecute ones) must go: `Some(Duration::ZERO)` at
/// once, `Some(d)` `d` after the taint was added, `None` never.
pub fn eviction_delay(tolerations: &[Toleration], taints: &[Taint]) -> Option<Duration> {
    let mut min: Option<i64> = None;
    let mut forever = true;
    for taint in taints {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(Duration::ZERO);
        }
        for t in matching {
            if let Some(s) = t.toleration_seconds {
                forever = false;
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    if forever || taints.is_empty() {
        return None;
    }
    Some(Duration::from_secs(min.unwrap_or(0).max(0).unsigned_abs()))
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The conditions of a node whose kubelet stopped reporting: every one `Unknown`.
fn unknown_conditions(node: &Node, now: &Time) -> Vec<NodeCondition> {
    let existing = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for type_ in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let old = existing.iter().find(|c| c.type_ == type_);
        let (reason, message) = if old.is_some() {
            ("NodeStatusUnknown", "Kubelet stopped posting node status.")
        } else {
            (
                "NodeStatusNeverUpdated",
                "Kubelet never posted node status.",
            )
        };
        out.push(NodeCondition {
            type_: type_.to_owned(),
            status: "Unknown".to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_heartbeat_time: old.and_then(|c| c.last_heartbeat_time.clone()),
            last_transition_time: Some(
                match old {
                    Some(c) if c.status == "Unknown" => c.last_transition_time.clone(),
                    _ => None,
                }
                .unwrap_or_else(|| now.clone()),
            ),
        });
    }
    // Other condition types the kubelet posted are kept as they are.
    out.extend(existing.into_iter().filter(|c| {
        !["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"].contains(&c.type_.as_str())
    }));
    out
}

/// The node's taints with the controller's own replaced by `wanted` (keeping the time a
/// taint that stays was added).
fn with_taints(node: &Node, wanted: &[(&str, &str)], now: &Time) -> Vec<Taint> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let ours = |t: &Taint| t.key == UNREACHABLE || t.key == NOT_READY;
    let mut out: Vec<Taint> = current.iter().filter(|t| !ours(t)).cloned().collect();
    for (key, effect) in wanted {
        let kept = current
            .iter()
            .find(|t| t.key == *key && t.effect == *effect)
            .cloned();
        out.push(kept.unwrap_or_else(|| Taint {
            key: (*key).to_owned(),
            effect: (*effect).to_owned(),
            value: None,
            time_added: (*effect == "NoExecute").then(|| now.clone()),
        }));
    }
    out
}

fn taints_differ(node: &Node, taints: &[Taint]) -> bool {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let key = |t: &Taint| (t.key.clone(), t.effect.clone());
    let mut a: Vec<_> = current.iter().map(key).collect();
    let mut b: Vec<_> = taints.iter().map(key).collect();
    a.sort();
    b.sort();
    a != b
}

/// Runs the controller until `stop` is cancelled.
pub async fn run(client: Client, config: Config, stop: CancellationToken) {
    let (nodes, nodes_writer) = reflector::store::<Node>();
    let (leases, leases_writer) = reflector::store::<Lease>();
    let (pods, pods_writer) = reflector::store::<Pod>();
    let node_stream = reflector(
        nodes_writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .for_each(|_| async {});
    let lease_stream = reflector(
        leases_writer,
        watcher(
            Api::<Lease>::namespaced(client.clone(), "kube-node-lease"),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .for_each(|_| async {});
    let pod_stream = reflector(
        pods_writer,
        watcher(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields("spec.nodeName!="),
        ),
    )
    .default_backoff()
    .for_each(|_| async {});
    tokio::spawn(async move {
        tokio::join!(node_stream, lease_stream, pod_stream);
    });
    for store in [
        nodes.wait_until_ready().await,
        leases.wait_until_ready().await,
    ] {
        if store.is_err() {
            return;
        }
    }
    if pods.wait_until_ready().await.is_err() {
        return;
    }
    let events = EventRecorder::new(client.clone(), "node-controller", None);
    let mut probes: HashMap<String, Probe> = HashMap::new();
    let mut limiter = Limiter {
        rate: config.eviction_rate,
        tokens: 1.0,
        last: Instant::now(),
    };
    // Pods already handed to deletion, so a slow delete is not repeated every tick.
    let mut evicted: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(
        config
            .monitor_period
            .min(config.grace_period / 2)
            .max(Duration::from_millis(200)),
    );
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let now_time = Time(Timestamp::now());
        let all = nodes.state();
        let node_api: Api<Node> = Api::all(client.clone());
        // Pass 1: heartbeats → Unknown.
        let mut ready_status: HashMap<String, String> = HashMap::new();
        for node in &all {
            let name = node.name_any();
            let lease_renew = leases
                .get(&reflector::ObjectRef::new(&name).within("kube-node-lease"))
                .and_then(|l| {
                    l.spec
                        .as_ref()?
                        .renew_time
                        .as_ref()
                        .map(|t| t.0.to_string())
                });
            let ready = ready_condition(node);
            let ready_heartbeat = ready
                .and_then(|c| c.last_heartbeat_time.as_ref())
                .map(|t| t.0.to_string());
            let probe = probes.entry(name.clone()).or_insert(Probe {
                lease_renew: lease_renew.clone(),
                ready_heartbeat: ready_heartbeat.clone(),
                observed: now,
            });
            if probe.lease_renew != lease_renew || probe.ready_heartbeat != ready_heartbeat {
                probe.lease_renew = lease_renew;
                probe.ready_heartbeat = ready_heartbeat;
                probe.observed = now;
            }
            let mut status = ready.map_or("Unknown".to_owned(), |c| c.status.clone());
            if now.duration_since(probe.observed) > config.grace_period && status != "Unknown" {
                let conditions = unknown_conditions(node, &now_time);
                let patch = json!({ "status": { "conditions": conditions } });
                match node_api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(
                            node = name,
                            "node stopped posting status: Ready is Unknown"
                        );
                        status = "Unknown".to_owned();
                        events.record(
                            object_reference(node.as_ref()),
                            EventType::Normal,
                            "NodeNotReady",
                            format!("Node {name} status is now: NodeNotReady"),
                        );
                        mark_pods_not_ready(&client, &pods.state(), &name).await;
                    }
                    Err(e) => {
                        tracing::debug!(node = name, error = %e, "cannot mark the node Unknown")
                    }
                }
            }
            ready_status.insert(name, status);
        }
        probes.retain(|n, _| ready_status.contains_key(n));
        // Every node down: the control plane is likely the one cut off; evict nothing.
        let full_disruption =
            !ready_status.is_empty() && ready_status.values().all(|s| s != "True");
        // Pass 2: taints.
        for node in &all {
            let name = node.name_any();
            let status = ready_status.get(&name).map_or("Unknown", String::as_str);
            let key = match status {
                "True" => None,
                "False" => Some(NOT_READY),
                _ => Some(UNREACHABLE),
            };
            let mut wanted: Vec<(&str, &str)> = Vec::new();
            if let Some(key) = key {
                wanted.push((key, "NoSchedule"));
                let has_no_execute = node
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.key == key && t.effect == "NoExecute"));
                if !full_disruption && (has_no_execute || limiter.try_take()) {
                    wanted.push((key, "NoExecute"));
                }
            }
            let taints = with_taints(node, &wanted, &now_time);
            if taints_differ(node, &taints) {
                let patch = json!({ "metadata": { "resourceVersion": node.resource_version() }, "spec": { "taints": taints } });
                if let Err(e) = node_api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::debug!(node = name, error = %e, "cannot update the node's taints");
                }
            }
        }
        // Pass 3: taint-based eviction from the (possibly one tick old) taints.
        evicted.retain(|_, at| now.duration_since(*at) < Duration::from_secs(60));
        for node in &all {
            let taints: Vec<Taint> = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|t| t.effect == "NoExecute")
                .collect();
            if taints.is_empty() {
                continue;
            }
            let added = taints
                .iter()
                .filter_map(|t| t.time_added.as_ref().map(|t| t.0))
                .max()
                .unwrap_or_else(Timestamp::now);
            let name = node.name_any();
            for pod in pods.state() {
                if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(name.as_str())
                    || pod.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                let uid = pod.uid().unwrap_or_default();
                if evicted.contains_key(&uid) {
                    continue;
                }
                let tolerations = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.tolerations.clone())
                    .unwrap_or_default();
                let Some(delay) = eviction_delay(&tolerations, &taints) else {
                    continue;
                };
                let due = added.checked_add(delay).unwrap_or(added);
                if Timestamp::now() < due {
                    continue;
                }
                evicted.insert(uid, now);
                evict(&client, &events, &pod).await;
            }
        }
    }
}

/// Sets `Ready=False` on the pods of a node that stopped reporting (upstream's
/// `MarkPodsNotReady`).
async fn mark_pods_not_ready(client: &Client, pods: &[std::sync::Arc<Pod>], node: &str) {
    for pod in pods {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        if ready.is_none_or(|c| c.status == "False") {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
        let patch = json!({ "status": { "conditions": [{
            "type": "Ready", "status": "False",
            "lastTransitionTime": Time(Timestamp::now()),
        }] } });
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            tracing::debug!(pod = pod.name_any(), error = %e, "cannot mark the pod not ready");
        }
    }
}

/// Deletes a pod for a NoExecute taint, with the `DisruptionTarget` condition first.
async fn evict(client: &Client, events: &EventRecorder, pod: &Pod) {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let patch = json!({ "status": { "conditions": [{
        "type": "DisruptionTarget", "status": "True",
        "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": Time(Timestamp::now()),
    }] } });
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        tracing::debug!(pod = name, error = %e, "cannot add the DisruptionTarget condition");
    }
    events.record(
        object_reference(pod),
        EventType::Normal,
        "TaintManagerEviction",
        format!("Marking for deletion Pod {ns}/{name}"),
    );
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => tracing::info!(pod = name, namespace = ns, "evicted for a NoExecute taint"),
        Err(e) => tracing::debug!(pod = name, error = %e, "cannot evict the pod"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn toleration(key: &str, op: &str, effect: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.into()),
            operator: Some(op.into()),
            effect: (!effect.is_empty()).then(|| effect.into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn eviction_delays_follow_tolerations() {
        let taints = [taint(UNREACHABLE, "NoExecute")];
        assert_eq!(eviction_delay(&[], &taints), Some(Duration::ZERO));
        assert_eq!(
            eviction_delay(
                &[toleration(UNREACHABLE, "Exists", "NoExecute", Some(300))],
                &taints
            ),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            eviction_delay(
                &[toleration(UNREACHABLE, "Exists", "NoExecute", None)],
                &taints
            ),
            None
        );
        assert_eq!(
            eviction_delay(&[toleration("", "Exists", "", None)], &taints),
            None,
            "a wildcard toleration tolerates everything forever"
        );
        assert_eq!(
            eviction_delay(
                &[
                    toleration(UNREACHABLE, "Exists", "NoExecute", Some(300)),
                    toleration("", "Exists", "NoExecute", Some(5)),
                ],
                &taints
            ),
            Some(Duration::from_secs(5)),
            "the shortest matching toleration wins"
        );
        assert_eq!(
            eviction_delay(
                &[toleration(NOT_READY, "Exists", "NoExecute", Some(300))],
                &taints
            ),
            Some(Duration::ZERO),
            "a toleration of another taint does not help"
        );
    }

    #[test]
    fn equal_tolerations_compare_values() {
        let mut t = taint("dedicated", "NoExecute");
        t.value = Some("gpu".into());
        let mut tol = toleration("dedicated", "Equal", "NoExecute", None);
        tol.value = Some("gpu".into());
        assert!(tolerates(&tol, &t));
        tol.value = Some("cpu".into());
        assert!(!tolerates(&tol, &t));
    }

    #[test]
    fn unknown_conditions_keep_heartbeats_and_say_why() {
        let node: Node = serde_json::from_value(json!({
            "metadata": { "name": "n" },
            "status": { "conditions": [
                { "type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                  "lastTransitionTime": "2026-01-01T00:00:00Z" },
            ] },
        }))
        .expect("node");
        let now = Time(Timestamp::from_second(1_800_000_000).expect("time"));
        let c = unknown_conditions(&node, &now);
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|c| c.status == "Unknown"));
        assert_eq!(c[0].reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            c[0].message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert!(c[0].last_heartbeat_time.is_some());
        assert_eq!(c[1].reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(c[0].last_transition_time, Some(now));
    }

    #[test]
    fn taints_keep_foreign_ones_and_time_added() {
        let earlier = Time(Timestamp::from_second(1_700_000_000).expect("time"));
        let node: Node = serde_json::from_value(json!({
            "metadata": { "name": "n" },
            "spec": { "taints": [
                { "key": "dedicated", "effect": "NoSchedule" },
                { "key": UNREACHABLE, "effect": "NoExecute", "timeAdded": earlier },
                { "key": NOT_READY, "effect": "NoSchedule" },
            ] },
        }))
        .expect("node");
        let now = Time(Timestamp::from_second(1_800_000_000).expect("time"));
        let t = with_taints(
            &node,
            &[(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")],
            &now,
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].key, "dedicated");
        assert_eq!(t[2].time_added, Some(earlier));
        assert!(taints_differ(&node, &t));
        assert!(with_taints(&node, &[], &now).len() == 1);
    }
}
