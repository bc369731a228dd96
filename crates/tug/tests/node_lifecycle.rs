//! The node lifecycle controller against a real `tug server` with hollow nodes (`tug agent
//! --simulate`), with short settings: a node whose agent is paused (SIGSTOP) goes Unknown
//! after the grace period, gets the `unreachable` taints, its pods are marked not Ready and
//! evicted per their tolerations (at once with `tolerationSeconds: 0`, after `tolerationSeconds`,
//! or never); the healthy
//! node is left alone; resumed (SIGCONT), the node is Ready again and loses the taints.

mod support;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::json;
use support::{TUG, eventually, ready_server};
use tug_controllers::nodelifecycle::UNREACHABLE;

/// How long any awaited state may take (a deadline, not an expectation).
const DEADLINE: Duration = Duration::from_secs(60);

struct Hollow(Child);

impl Hollow {
    fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill {sig}");
        Ok(())
    }
}

impl Drop for Hollow {
    fn drop(&mut self) {
        let _ = self.signal("-CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hollow(kubeconfig: &std::path::Path, prefix: &str) -> anyhow::Result<Hollow> {
    Ok(Hollow(
        Command::new(TUG)
            .args(["agent", "--simulate", "1", "--node-name", prefix])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--node-ip", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn tug agent --simulate")?,
    ))
}

fn ready(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

fn pod(name: &str, node: &str, tolerations: serde_json::Value) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "nodeName": node,
            "tolerations": tolerations,
            "containers": [{ "name": "c", "image": "busybox" }],
        },
    }))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_is_tainted_and_its_pods_evicted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The in-process node lifecycle controller, with a short grace period.
    let server = ready_server(
        dir.path(),
        &["--disable-scheduler", "--node-monitor-grace-period", "3s"],
    )
    .await?;
    let kubeconfig = server.kubeconfig();
    let client = support::admin_client(&kubeconfig).await?;
    let lost = hollow(&kubeconfig, "lost")?;
    let _healthy = hollow(&kubeconfig, "healthy")?;
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("two Ready nodes", || async {
        let list = nodes.list(&ListParams::default()).await?;
        Ok((list.items.iter().filter(|n| ready(n) == "True").count() == 2).then_some(()))
    })
    .await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let short = json!([{ "key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3 }]);
    for p in [
        pod(
            "intolerant",
            "lost-0",
            json!([{ "key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0 }]),
        )?,
        pod("short", "lost-0", short)?,
        pod(
            "forever",
            "lost-0",
            json!([{ "key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute" }]),
        )?,
        pod("defaulted", "lost-0", json!([]))?,
        pod("elsewhere", "healthy-0", json!([]))?,
    ] {
        pods.create(&PostParams::default(), &p).await?;
    }
    // The admission default: 300 s for not-ready and unreachable.
    let defaulted = pods.get("defaulted").await?;
    let tolerations = defaulted
        .spec
        .and_then(|s| s.tolerations)
        .unwrap_or_default();
    ensure!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some(UNREACHABLE) && t.toleration_seconds == Some(300)),
        "{tolerations:?}"
    );
    eventually("pods Running", || async {
        let list = pods.list(&ListParams::default()).await?;
        Ok(list
            .items
            .iter()
            .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .then_some(()))
    })
    .await?;

    lost.signal("-STOP")?;
    let node = eventually("lost-0 Unknown and tainted", || async {
        let n = nodes.get("lost-0").await?;
        let tainted = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|t| {
                t.iter()
                    .any(|t| t.key == UNREACHABLE && t.effect == "NoExecute")
            });
        Ok((ready(&n) == "Unknown" && tainted).then_some(n))
    })
    .await?;
    let condition = node
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"))
        .context("Ready")?;
    assert_eq!(condition.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        condition.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );

    // Evicted at once; the paused agent cannot finalize, so the pod is left Terminating.
    let terminating = |name: &'static str| {
        let pods = pods.clone();
        async move {
            let p = pods.get(name).await?;
            Ok::<_, anyhow::Error>(p.metadata.deletion_timestamp.is_some().then_some(p))
        }
    };
    let intolerant = eventually("intolerant evicted", || terminating("intolerant")).await?;
    let conditions = intolerant
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    ensure!(
        conditions.iter().any(|c| c.type_ == "DisruptionTarget"
            && c.reason.as_deref() == Some("DeletionByTaintManager")),
        "{conditions:?}"
    );
    ensure!(
        conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False"),
        "pods of a lost node are marked not ready: {conditions:?}"
    );
    let short_started = Instant::now();
    let short = pods.get("short").await?;
    ensure!(
        short.metadata.deletion_timestamp.is_none(),
        "tolerationSeconds 3 must delay the eviction"
    );
    eventually("short evicted after its toleration", || {
        terminating("short")
    })
    .await?;
    ensure!(short_started.elapsed() < DEADLINE);
    for name in ["forever", "defaulted", "elsewhere"] {
        let p = pods.get(name).await?;
        ensure!(
            p.metadata.deletion_timestamp.is_none(),
            "{name} must not be evicted"
        );
    }
    let healthy = nodes.get("healthy-0").await?;
    ensure!(ready(&healthy) == "True");
    ensure!(
        healthy
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .is_empty()
    );

    // Back: Ready again, taints gone.
    lost.signal("-CONT")?;
    eventually("lost-0 Ready and untainted", || async {
        let n = nodes.get("lost-0").await?;
        let untainted = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_none_or(|t| t.iter().all(|t| t.key != UNREACHABLE));
        Ok((ready(&n) == "True" && untainted).then_some(()))
    })
    .await?;
    Ok(())
}
