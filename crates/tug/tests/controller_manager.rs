//! `tug controller-manager` as its own process: two of them elect one leader on the Lease
//! `kube-system/kube-controller-manager`, the leader's controllers work (a namespace is
//! emptied and removed), a `kill -9` of the leader hands over to the other, and bad flags are
//! refused with one line naming the flag.

mod support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, ensure};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{ConfigMap, Namespace},
};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde_json::json;
use support::{TUG, eventually, ready_server, text};

struct Manager(Child);

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn manager(kubeconfig: &std::path::Path) -> anyhow::Result<Manager> {
    Ok(Manager(
        Command::new(TUG)
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn tug controller-manager")?,
    ))
}

async fn namespace_round_trip(client: &Client, name: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    namespaces.create(&PostParams::default(), &ns).await?;
    let cm: ConfigMap = serde_json::from_value(json!({ "metadata": { "name": "c" } }))?;
    Api::<ConfigMap>::namespaced(client.clone(), name)
        .create(&PostParams::default(), &cm)
        .await?;
    namespaces.delete(name, &DeleteParams::default()).await?;
    eventually(&format!("namespace {name} removed"), || async {
        Ok(namespaces.get_opt(name).await?.is_none().then_some(()))
    })
    .await
}

#[tokio::test]
async fn two_managers_elect_one_leader_and_hand_over() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ready_server(
        dir.path(),
        &["--disable-scheduler", "--disable-controller-manager"],
    )
    .await?;
    let kubeconfig = server.kubeconfig();
    let client = support::admin_client(&kubeconfig).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let holder = || async {
        Ok::<_, anyhow::Error>(
            leases
                .get_opt("kube-controller-manager")
                .await?
                .and_then(|l| l.spec?.holder_identity)
                .filter(|h| !h.is_empty()),
        )
    };
    // The first manager leads; a second one waits.
    let first = manager(&kubeconfig)?;
    let first_id = eventually("a leader", holder).await?;
    let _second = manager(&kubeconfig)?;
    namespace_round_trip(&client, "one").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(
        holder().await?.as_deref() == Some(first_id.as_str()),
        "the first manager keeps the lease while it lives"
    );

    // kill -9 of the leader: the other takes over once the lease expires (15 s).
    drop(first);
    eventually("the second manager leads", || async {
        Ok(holder().await?.filter(|h| *h != first_id))
    })
    .await?;
    namespace_round_trip(&client, "two").await?;
    Ok(())
}

#[test]
fn bad_controller_flags_fail_naming_the_flag() -> anyhow::Result<()> {
    for (args, flag) in [
        (&["--controllers", "nope"][..], "--controllers"),
        (
            &["--node-monitor-grace-period", "soon"][..],
            "--node-monitor-grace-period",
        ),
    ] {
        let out = Command::new(TUG)
            .args(["controller-manager", "--kubeconfig", "/nonexistent"])
            .args(args)
            .output()?;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(flag),
            "{args:?}: {stderr}"
        );
    }
    Ok(())
}
