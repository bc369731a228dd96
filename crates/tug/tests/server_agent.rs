//! `tug server` runs a node agent in-process (unless `--disable-agent`): one command gives a
//! single-node cluster whose pods run as real containers. Needs root and containerd, like
//! node_e2e; everything is torn down by drop guards.

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use support::{
    kubectl,
    node::{Registry, Teardown, ensure_root},
    ready_server, text,
};

/// A node name and pod CIDR of its own, so the test never meets another test's bridge.
const NODE: &str = "tug-inproc-node";
const POD_CIDR: &str = "10.42.215.0/24";
/// How long any awaited state may take (a deadline, not an expectation).
const DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test]
async fn the_server_runs_pods_on_its_own_node() -> anyhow::Result<()> {
    ensure_root()?;
    let dir = tempfile::tempdir()?;
    let registry = Registry::start(&dir.path().join("images"))?;
    // Dropped after the server (declared before it): tears down the agent's sandboxes.
    let _teardown = Teardown {
        data_dir: dir.path().join("data/agent"),
        node: NODE.to_owned(),
    };
    let server = ready_server(
        dir.path(),
        &[
            "--enable-agent",
            "--node-name",
            NODE,
            "--node-ip",
            "127.0.0.1",
            "--pod-cidr",
            POD_CIDR,
            "--registry-mirror",
            &registry.addr,
        ],
    )
    .await?;
    let kubeconfig = server.kubeconfig();
    let client = support::admin_client(&kubeconfig).await?;

    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ready = nodes.get_opt(NODE).await?.is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("node {NODE} not Ready:\n{}", server.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let out = kubectl(
        &kubeconfig,
        &["run", "bb", "--image=busybox", "--", "sleep", "3600"],
    )?;
    ensure!(out.status.success(), "kubectl run: {}", text(&out.stderr));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = loop {
        let pod = pods.get("bb").await?;
        let status = pod.status.clone().unwrap_or_default();
        if status.phase.as_deref() == Some("Running") && status.pod_ip.is_some() {
            break pod;
        }
        if Instant::now() > deadline {
            bail!("pod bb not Running: {status:?}\n{}", server.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let spec = pod.spec.context("spec")?;
    assert_eq!(spec.node_name.as_deref(), Some(NODE));
    let ip = pod.status.and_then(|s| s.pod_ip).context("pod IP")?;
    ensure!(
        ip.starts_with("10.42.215."),
        "pod IP {ip} not in {POD_CIDR}"
    );

    let out = kubectl(&kubeconfig, &["get", "pod", "bb"])?;
    let table = text(&out.stdout);
    ensure!(
        table.contains("1/1") && table.contains("Running"),
        "{table}"
    );
    // Marked Unknown behind its back (as the node lifecycle controller does after missed
    // heartbeats), the agent posts Ready again at its next heartbeat.
    nodes
        .patch_status(
            NODE,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(serde_json::json!({ "status": { "conditions": [
                { "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown" },
            ] } })),
        )
        .await?;
    loop {
        let ready = nodes
            .get(NODE)
            .await?
            .status
            .and_then(|s| s.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("node {NODE} stayed Unknown:\n{}", server.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let out = kubectl(&kubeconfig, &["delete", "pod", "bb", "--grace-period=1"])?;
    ensure!(
        out.status.success(),
        "kubectl delete: {}",
        text(&out.stderr)
    );
    ensure!(
        pods.get_opt("bb").await?.is_none(),
        "kubectl delete waits until the agent finalized the pod"
    );
    drop(server);
    Ok(())
}
