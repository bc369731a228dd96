//! `tug agent --simulate N`, the benchmark tool: hollow nodes register with leases and a Ready
//! status, their pods (scheduled by the real scheduler) are reported Running with made-up IPs
//! from each node's pod CIDR, and deleted pods are finalized. Bad flags are refused.

mod support;

use std::{
    collections::HashSet,
    process::{Child, Command, Stdio},
};

use anyhow::{Context, ensure};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Node, Pod},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::json;
use support::{TUG, eventually, kubectl, ready_server, text};

/// The `tug agent --simulate` process, killed when dropped.
struct Hollow(Child);

impl Drop for Hollow {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn hollow_nodes_run_pods_status_only() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tug = ready_server(dir.path(), &[]).await?;
    let kubeconfig = tug.kubeconfig();
    let client = support::admin_client(&kubeconfig).await?;
    let log = std::fs::File::create(dir.path().join("hollow.log"))?;
    let _hollow = Hollow(
        Command::new(TUG)
            .args(["agent", "--simulate", "3", "--node-name", "hn"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--node-ip", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn tug agent --simulate")?,
    );

    // Three Ready nodes with distinct pod CIDRs and the hollow annotation, and their leases.
    let nodes: Api<Node> = Api::all(client.clone());
    let ready = eventually("3 Ready hollow nodes", || async {
        let list = nodes.list(&ListParams::default()).await?;
        let ready: Vec<Node> = list
            .items
            .into_iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .collect();
        Ok((ready.len() == 3).then_some(ready))
    })
    .await?;
    let mut names: Vec<String> = ready
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["hn-0", "hn-1", "hn-2"]);
    let cidrs: HashSet<String> = ready
        .iter()
        .filter_map(|n| n.spec.as_ref()?.pod_cidr.clone())
        .collect();
    assert_eq!(cidrs.len(), 3, "{cidrs:?}");
    for n in &ready {
        let annotations = n.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.get("tug.dev/hollow-node").map(String::as_str),
            Some("true")
        );
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    eventually("a lease per hollow node", || async {
        let list = leases.list(&ListParams::default()).await?;
        Ok((list.items.len() >= 3).then_some(()))
    })
    .await?;

    // Pods are scheduled by the real scheduler and reported Running with a pod IP.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..6 {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": format!("p{i}") },
            "spec": {
                "initContainers": [{ "name": "init", "image": "busybox" }],
                "containers": [{ "name": "c", "image": "busybox" }],
            },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
    }
    let running = eventually("6 Running pods", || async {
        let list = pods.list(&ListParams::default()).await?;
        let running: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        Ok((running.len() == 6).then_some(running))
    })
    .await?;
    let mut ips = HashSet::new();
    for pod in &running {
        let status = pod.status.clone().unwrap_or_default();
        let ip = status.pod_ip.clone().context("podIP")?;
        ensure!(
            ip.starts_with("10.128."),
            "pod IP {ip} outside the hollow range"
        );
        ips.insert(ip);
        let conditions = status.conditions.unwrap_or_default();
        for t in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            ensure!(
                conditions
                    .iter()
                    .any(|c| c.type_ == t && c.status == "True"),
                "{t} not True: {conditions:?}"
            );
        }
        let cs = status.container_statuses.unwrap_or_default();
        ensure!(cs.len() == 1 && cs[0].ready, "{cs:?}");
    }
    assert_eq!(ips.len(), 6, "pod IPs must be distinct: {ips:?}");
    let out = kubectl(&kubeconfig, &["get", "pods", "-o", "wide"])?;
    let table = text(&out.stdout);
    ensure!(out.status.success(), "{}", text(&out.stderr));
    ensure!(
        table
            .lines()
            .skip(1)
            .all(|l| l.contains("1/1") && l.contains("Running")),
        "{table}"
    );

    // A deleted pod is finalized by its hollow node, well within its grace period.
    pods.delete("p0", &DeleteParams::default()).await?;
    eventually("p0 gone", || async {
        Ok(pods.get_opt("p0").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[test]
fn bad_simulate_flags_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("none.kubeconfig");
    for (args, expected) in [
        (vec!["--simulate", "0"], "--simulate 0"),
        (vec!["--simulate", "40000"], "--simulate 40000"),
        (
            vec!["--simulate", "2", "--node-name", "Bad_Name"],
            "--node-name \"Bad_Name\"",
        ),
    ] {
        let out = Command::new(TUG)
            .arg("agent")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(&args)
            .output()?;
        ensure!(!out.status.success(), "{args:?} accepted");
        let stderr = text(&out.stderr);
        ensure!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    Ok(())
}
