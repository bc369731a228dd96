//! Acceptance tests of the scheduler (issue 5) against a real `tug server` with nodes created
//! through the API (no kubelets): resource fit, taints, node affinity, anti-affinity,
//! topology spread, preemption, `FailedScheduling` messages and recovery when a node is added,
//! scheduler names, events shown by `kubectl describe`, and leader election between two
//! `tug scheduler` processes.

mod support;

use std::{
    collections::{BTreeMap, HashSet},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Event, Node, Pod},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
    runtime::wait::await_condition,
};
use serde_json::json;
use support::{Tug, free_port, kubectl, ready_server, text};

/// How long a pod may take to be scheduled before a test gives up (a deadline only).
const DEADLINE: Duration = Duration::from_secs(30);

async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

async fn setup(extra: &[&str]) -> anyhow::Result<(tempfile::TempDir, Tug, Client)> {
    let dir = tempfile::tempdir()?;
    let tug = ready_server(dir.path(), extra).await?;
    let client = client(&tug.kubeconfig()).await?;
    Ok((dir, tug, client))
}

/// Creates a node with `cpu` cores, 8 GiB and 110 pods, labels and taints.
async fn node(
    client: &Client,
    name: &str,
    cpu: &str,
    labels: &[(&str, &str)],
    taints: serde_json::Value,
) -> anyhow::Result<()> {
    let mut all: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.insert("kubernetes.io/hostname".into(), name.into());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": all},
        "spec": {"taints": taints},
        "status": {
            "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await?;
    Ok(())
}

/// Creates a pod from `spec` (merged into a one-container pod requesting `cpu`).
async fn pod(
    client: &Client,
    name: &str,
    cpu: &str,
    labels: &[(&str, &str)],
    extra_spec: serde_json::Value,
) -> anyhow::Result<()> {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let mut spec = json!({
        "containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": cpu}}}],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))?;
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await?;
    Ok(())
}

/// Waits until the pod is bound; returns its node.
async fn bound(client: &Client, name: &str) -> anyhow::Result<String> {
    let api = Api::<Pod>::namespaced(client.clone(), "default");
    let cond = await_condition(api, name, |p: Option<&Pod>| {
        p.and_then(|p| p.spec.as_ref()?.node_name.as_ref())
            .is_some()
    });
    let pod = tokio::time::timeout(DEADLINE, cond)
        .await
        .with_context(|| format!("pod {name} not bound within {DEADLINE:?}"))??
        .context("pod gone")?;
    pod.spec
        .and_then(|s| s.node_name)
        .context("bound pod has a node")
}

/// Waits until the pod's `PodScheduled` condition is False; returns its message.
async fn unschedulable(client: &Client, name: &str) -> anyhow::Result<String> {
    let api = Api::<Pod>::namespaced(client.clone(), "default");
    let message = |p: &Pod| {
        p.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .and_then(|c| c.message.clone())
    };
    let cond = await_condition(api, name, |p: Option<&Pod>| p.and_then(message).is_some());
    let pod = tokio::time::timeout(DEADLINE, cond)
        .await
        .with_context(|| format!("pod {name} not marked unschedulable within {DEADLINE:?}"))??
        .context("pod gone")?;
    message(&pod).context("condition has a message")
}

#[tokio::test]
async fn scheduler_places_pods_by_resources_taints_and_node_affinity() -> anyhow::Result<()> {
    let (_dir, tug, c) = setup(&[]).await?;
    node(&c, "small", "1", &[("zone", "a")], json!([])).await?;
    node(&c, "big", "4", &[("zone", "b")], json!([])).await?;
    node(
        &c,
        "tainted",
        "8",
        &[("zone", "c")],
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    )
    .await?;

    // Resource fit: 2 CPUs fit only on big (tainted is bigger but not tolerated).
    pod(&c, "needs-two", "2", &[], json!({})).await?;
    assert_eq!(bound(&c, "needs-two").await?, "big");

    // Toleration: 6 CPUs fit only on the tainted node, which this pod tolerates.
    pod(
        &c,
        "tolerant",
        "6",
        &[],
        json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                "effect": "NoSchedule"}]}),
    )
    .await?;
    assert_eq!(bound(&c, "tolerant").await?, "tainted");

    // Required node affinity and nodeSelector.
    pod(
        &c,
        "zone-a",
        "100m",
        &[],
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}),
    )
    .await?;
    assert_eq!(bound(&c, "zone-a").await?, "small");
    pod(
        &c,
        "selector-b",
        "100m",
        &[],
        json!({"nodeSelector": {"zone": "b"}}),
    )
    .await?;
    assert_eq!(bound(&c, "selector-b").await?, "big");

    // Pods for another scheduler are left alone.
    pod(
        &c,
        "other",
        "100m",
        &[],
        json!({"schedulerName": "someone-else"}),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = Api::<Pod>::namespaced(c.clone(), "default")
        .get("other")
        .await?;
    ensure!(
        other
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_none(),
        "a pod for another scheduler was bound"
    );
    ensure!(
        other
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_none(),
        "a pod for another scheduler got conditions"
    );

    // kubectl describe shows the scheduler's events.
    let out = kubectl(&tug.kubeconfig(), &["describe", "pod", "needs-two"])?;
    let described = text(&out.stdout);
    ensure!(
        described.contains("Scheduled")
            && described.contains("default-scheduler")
            && described.contains("Successfully assigned default/needs-two to big"),
        "describe lacks the Scheduled event:\n{described}"
    );
    let bound_cond = Api::<Pod>::namespaced(c.clone(), "default")
        .get("needs-two")
        .await?
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    ensure!(
        bound_cond
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True"),
        "PodScheduled=True missing: {bound_cond:?}"
    );
    Ok(())
}

#[tokio::test]
async fn unschedulable_pods_report_reasons_and_schedule_when_a_node_fits() -> anyhow::Result<()> {
    let (_dir, tug, c) = setup(&[]).await?;
    node(&c, "n1", "3", &[], json!([])).await?;
    node(
        &c,
        "n2",
        "8",
        &[],
        json!([{"key": "key", "value": "value", "effect": "NoSchedule"}]),
    )
    .await?;
    node(
        &c,
        "n3",
        "8",
        &[],
        json!([{"key": "key", "value": "value", "effect": "NoSchedule"}]),
    )
    .await?;
    // A pod of the same priority fills most of n1: nothing can be preempted for the next.
    pod(&c, "blocker", "2", &[], json!({})).await?;
    assert_eq!(bound(&c, "blocker").await?, "n1");
    pod(&c, "huge", "2", &[], json!({})).await?;
    let message = unschedulable(&c, "huge").await?;
    assert_eq!(
        message,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}. \
         preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
         2 Preemption is not helpful for scheduling."
    );
    let events = Api::<Event>::namespaced(c.clone(), "default")
        .list(&ListParams::default().fields("involvedObject.name=huge"))
        .await?;
    ensure!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedScheduling")
                && e.type_.as_deref() == Some("Warning")
                && e.message.as_deref() == Some(message.as_str())),
        "no FailedScheduling event: {:?}",
        events.items
    );
    let out = kubectl(&tug.kubeconfig(), &["describe", "pod", "huge"])?;
    ensure!(
        text(&out.stdout).contains("FailedScheduling"),
        "describe lacks FailedScheduling:\n{}",
        text(&out.stdout)
    );

    // A fitting node appears: the pod is retried on that event and bound.
    node(&c, "n4", "4", &[], json!([])).await?;
    assert_eq!(bound(&c, "huge").await?, "n4");
    Ok(())
}

#[tokio::test]
async fn anti_affinity_and_topology_spread_place_replicas_apart() -> anyhow::Result<()> {
    let (_dir, _tug, c) = setup(&[]).await?;
    for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")] {
        node(
            &c,
            name,
            "8",
            &[("topology.kubernetes.io/zone", zone)],
            json!([]),
        )
        .await?;
    }
    // Required anti-affinity on the hostname: four replicas on four different nodes, the
    // fifth fits nowhere.
    let anti = json!({"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": "web"}},
            "topologyKey": "kubernetes.io/hostname"}]}}});
    let mut nodes = HashSet::new();
    for i in 0..4 {
        let name = format!("web-{i}");
        pod(&c, &name, "100m", &[("app", "web")], anti.clone()).await?;
        nodes.insert(bound(&c, &name).await?);
    }
    assert_eq!(nodes.len(), 4, "replicas share nodes: {nodes:?}");
    pod(&c, "web-4", "100m", &[("app", "web")], anti).await?;
    let message = unschedulable(&c, "web-4").await?;
    ensure!(
        message.starts_with(
            "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules."
        ),
        "{message}"
    );

    // Topology spread over zones with maxSkew 1: 4 pods split 2/2 between zones.
    let spread = json!({"topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    let mut zones: BTreeMap<char, usize> = BTreeMap::new();
    for i in 0..4 {
        let name = format!("spread-{i}");
        pod(&c, &name, "100m", &[("app", "spread")], spread.clone()).await?;
        let node = bound(&c, &name).await?;
        *zones.entry(node.chars().next().unwrap_or('?')).or_default() += 1;
    }
    assert_eq!(zones, BTreeMap::from([('a', 2), ('b', 2)]));
    Ok(())
}

#[tokio::test]
async fn a_high_priority_pod_preempts_a_low_priority_one() -> anyhow::Result<()> {
    let (dir, tug, c) = setup(&[]).await?;
    let classes = dir.path().join("classes.yaml");
    std::fs::write(
        &classes,
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n---\n\
         apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n",
    )?;
    let out = kubectl(
        &tug.kubeconfig(),
        &["create", "-f", &classes.to_string_lossy()],
    )?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    node(&c, "only", "1", &[], json!([])).await?;
    pod(
        &c,
        "victim",
        "800m",
        &[],
        json!({"priorityClassName": "low"}),
    )
    .await?;
    assert_eq!(bound(&c, "victim").await?, "only");
    let pods = Api::<Pod>::namespaced(c.clone(), "default");
    let victim = pods.get("victim").await?;
    assert_eq!(victim.spec.as_ref().and_then(|s| s.priority), Some(10));

    pod(
        &c,
        "preemptor",
        "800m",
        &[],
        json!({"priorityClassName": "high"}),
    )
    .await?;
    // The victim is evicted (marked for deletion, with a DisruptionTarget condition) and the
    // preemptor is nominated to the node.
    let evicted = await_condition(pods.clone(), "victim", |p: Option<&Pod>| {
        p.is_none_or(|p| p.metadata.deletion_timestamp.is_some())
    });
    tokio::time::timeout(DEADLINE, evicted)
        .await
        .context("victim not preempted")??;
    let nominated = await_condition(pods.clone(), "preemptor", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.nominated_node_name.as_deref()) == Some("only")
    });
    tokio::time::timeout(DEADLINE, nominated)
        .await
        .context("preemptor not nominated")??;
    // No kubelet runs here: finish the victim's termination as the kubelet would.
    match pods
        .delete("victim", &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) | Err(kube::Error::Api(_)) => {}
        Err(e) => bail!("delete victim: {e}"),
    }
    assert_eq!(bound(&c, "preemptor").await?, "only");
    let events = Api::<Event>::namespaced(c.clone(), "default")
        .list(&ListParams::default().fields("involvedObject.name=victim"))
        .await?;
    ensure!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Preempted")),
        "no Preempted event: {:?}",
        events.items
    );

    // Priority admission: an unknown class is refused with upstream's message.
    let err = pod(&c, "bad", "1m", &[], json!({"priorityClassName": "nope"}))
        .await
        .expect_err("unknown class");
    ensure!(
        err.to_string()
            .contains("no PriorityClass with name nope was found"),
        "{err}"
    );
    Ok(())
}

/// A `tug scheduler` process, killed when dropped.
struct SchedulerProcess(Child);

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn two_schedulers_elect_one_leader_and_fail_over() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut tug = Tug::start(
        &dir.path().join("data"),
        free_port()?,
        &["--disable-scheduler"],
    )?;
    tug.wait_ready().await?;
    let c = client(&tug.kubeconfig()).await?;
    let config = dir.path().join("scheduler.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n\
         leaderElection:\n  leaderElect: true\n  leaseDuration: 3s\n  renewDeadline: 2s\n  retryPeriod: 500ms\n",
    )?;
    let start = || -> anyhow::Result<SchedulerProcess> {
        Ok(SchedulerProcess(
            Command::new(support::TUG)
                .arg("scheduler")
                .arg("--kubeconfig")
                .arg(tug.kubeconfig())
                .arg("--config")
                .arg(&config)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ))
    };
    // The first scheduler is alone, so it leads; the second waits as a candidate.
    let mut first = start()?;
    node(&c, "n", "4", &[], json!([])).await?;
    pod(&c, "p1", "100m", &[], json!({})).await?;
    assert_eq!(bound(&c, "p1").await?, "n");
    let leases = Api::<Lease>::namespaced(c.clone(), "kube-system");
    let holder = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default()
    };
    let leader = holder(&leases.get("kube-scheduler").await?);
    ensure!(!leader.is_empty(), "no leader recorded");
    let _second = start()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        holder(&leases.get("kube-scheduler").await?),
        leader,
        "the second scheduler took a valid lease"
    );

    // kill -9 the leader: the candidate takes the lease once it expires, and schedules.
    Command::new("kill")
        .args(["-9", &first.0.id().to_string()])
        .status()?;
    let _ = first.0.wait();
    let took_over = await_condition(leases.clone(), "kube-scheduler", |l: Option<&Lease>| {
        l.is_some_and(|l| !holder(l).is_empty() && holder(l) != leader)
    });
    tokio::time::timeout(DEADLINE, took_over)
        .await
        .context("no fail-over")??;
    let transitions = leases
        .get("kube-scheduler")
        .await?
        .spec
        .and_then(|s| s.lease_transitions);
    assert_eq!(transitions, Some(1));
    pod(&c, "p2", "100m", &[], json!({})).await?;
    assert_eq!(bound(&c, "p2").await?, "n");
    Ok(())
}
