//! The garbage collector and the namespace controller against a real `tug server`: cascading
//! deletion in the three modes (`kubectl delete --cascade=background|foreground|orphan`),
//! dangling owners, dependents with a second live owner, and namespace deletion that empties
//! 200 mixed objects, waits for a finalizer, reports conditions, and then finishes; the pod
//! garbage collector removes the pods of a deleted node.

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use support::{eventually, kubectl, ready_server, text};

/// A server running its in-process controller manager (garbage collector, namespace
/// controller) and no scheduler.
struct Cluster {
    _dir: tempfile::TempDir,
    server: support::Tug,
    client: Client,
}

async fn cluster() -> anyhow::Result<Cluster> {
    let dir = tempfile::tempdir()?;
    let server = ready_server(dir.path(), &["--disable-scheduler"]).await?;
    let client = support::admin_client(&server.kubeconfig()).await?;
    Ok(Cluster {
        _dir: dir,
        server,
        client,
    })
}

async fn config_map(
    api: &Api<ConfigMap>,
    name: &str,
    owners: &[(&ConfigMap, bool)],
) -> anyhow::Result<ConfigMap> {
    let refs: Vec<serde_json::Value> = owners
        .iter()
        .map(|(o, block)| {
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "name": o.metadata.name, "uid": o.metadata.uid,
                "blockOwnerDeletion": block,
            })
        })
        .collect();
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": name, "ownerReferences": refs },
        "data": { "k": "v" },
    }))?;
    Ok(api.create(&PostParams::default(), &cm).await?)
}

async fn gone(api: &Api<ConfigMap>, name: &str) -> anyhow::Result<()> {
    eventually(&format!("{name} deleted"), || async {
        Ok(api.get_opt(name).await?.is_none().then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascading_deletion_in_three_modes() -> anyhow::Result<()> {
    let c = cluster().await?;
    let kubeconfig = c.server.kubeconfig();
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");

    // Background: the owner goes at once, its dependents after it.
    let owner = config_map(&cms, "bg-owner", &[]).await?;
    for i in 0..3 {
        config_map(&cms, &format!("bg-dep-{i}"), &[(&owner, true)]).await?;
    }
    let out = kubectl(
        &kubeconfig,
        &["delete", "configmap", "bg-owner", "--cascade=background"],
    )?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    for i in 0..3 {
        gone(&cms, &format!("bg-dep-{i}")).await?;
    }

    // Foreground: the owner waits (foregroundDeletion) until its blocking dependents are gone.
    let owner = config_map(&cms, "fg-owner", &[]).await?;
    let child = config_map(&cms, "fg-child", &[(&owner, true)]).await?;
    config_map(&cms, "fg-grandchild", &[(&child, true)]).await?;
    // A finalizer on the grandchild holds the whole chain, so the wait can be observed.
    cms.patch(
        "fg-grandchild",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": ["example.com/hold"] } })),
    )
    .await?;
    cms.delete("fg-owner", &DeleteParams::foreground()).await?;
    let held = eventually("grandchild being deleted", || async {
        let g = cms.get("fg-grandchild").await?;
        Ok(g.metadata.deletion_timestamp.is_some().then_some(g))
    })
    .await?;
    ensure!(held.metadata.deletion_timestamp.is_some());
    let o = cms.get("fg-owner").await?;
    ensure!(
        o.metadata.deletion_timestamp.is_some()
            && o.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "foregroundDeletion"),
        "owner waits for its dependents: {:?}",
        o.metadata
    );
    cms.patch(
        "fg-grandchild",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await?;
    for name in ["fg-grandchild", "fg-child", "fg-owner"] {
        gone(&cms, name).await?;
    }

    // Orphan: the dependents stay, without the reference.
    let owner = config_map(&cms, "or-owner", &[]).await?;
    config_map(&cms, "or-dep", &[(&owner, true)]).await?;
    let out = kubectl(
        &kubeconfig,
        &["delete", "configmap", "or-owner", "--cascade=orphan"],
    )?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    gone(&cms, "or-owner").await?;
    let dep = eventually("or-dep orphaned", || async {
        let d = cms.get("or-dep").await?;
        Ok(d.metadata
            .owner_references
            .as_ref()
            .is_none_or(Vec::is_empty)
            .then_some(d))
    })
    .await?;
    ensure!(dep.metadata.deletion_timestamp.is_none());

    // A dependent with a second, live owner only loses the reference to the deleted one.
    let a = config_map(&cms, "two-a", &[]).await?;
    let b = config_map(&cms, "two-b", &[]).await?;
    config_map(&cms, "two-dep", &[(&a, false), (&b, false)]).await?;
    cms.delete("two-a", &DeleteParams::background()).await?;
    let dep = eventually("two-dep keeps only two-b", || async {
        let d = cms.get("two-dep").await?;
        let refs = d.metadata.owner_references.clone().unwrap_or_default();
        Ok((refs.len() == 1).then_some(refs))
    })
    .await?;
    assert_eq!(dep[0].name, "two-b");

    // A dependent whose owner never existed (or lives in another namespace) is collected.
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "default");
    let orphan: Secret = serde_json::from_value(json!({
        "metadata": { "name": "dangling", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "never-was",
            "uid": "00000000-0000-0000-0000-000000000001",
        }] },
    }))?;
    secrets.create(&PostParams::default(), &orphan).await?;
    eventually("dangling secret collected", || async {
        Ok(secrets.get_opt("dangling").await?.is_none().then_some(()))
    })
    .await?;
    // Objects without owners are never touched.
    ensure!(cms.get_opt("two-b").await?.is_some());
    ensure!(cms.get_opt("or-dep").await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_removes_its_content_then_itself() -> anyhow::Result<()> {
    let c = cluster().await?;
    let kubeconfig = c.server.kubeconfig();
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": "doomed" } }))?;
    namespaces.create(&PostParams::default(), &ns).await?;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "doomed");
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "doomed");
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.client.clone(), "doomed");
    for i in 0..100 {
        let cm: ConfigMap =
            serde_json::from_value(json!({ "metadata": { "name": format!("cm-{i}") } }))?;
        cms.create(&PostParams::default(), &cm).await?;
    }
    for i in 0..80 {
        let s: Secret =
            serde_json::from_value(json!({ "metadata": { "name": format!("s-{i}") } }))?;
        secrets.create(&PostParams::default(), &s).await?;
    }
    for i in 0..20 {
        let p = serde_json::from_value(json!({
            "metadata": { "name": format!("p-{i}") },
            "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
        }))?;
        pods.create(&PostParams::default(), &p).await?;
    }
    // One object with a finalizer keeps the namespace Terminating until it is released.
    let held: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "held", "finalizers": ["example.com/hold"] },
    }))?;
    cms.create(&PostParams::default(), &held).await?;

    let out = kubectl(
        &kubeconfig,
        &["delete", "namespace", "doomed", "--wait=false"],
    )?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    // Deleting it again is harmless.
    let again = kubectl(
        &kubeconfig,
        &["delete", "namespace", "doomed", "--wait=false"],
    )?;
    ensure!(
        !text(&again.stderr).contains("panic"),
        "{}",
        text(&again.stderr)
    );
    let conditions = eventually("finalizer reported", || async {
        let ns = namespaces.get("doomed").await?;
        let status = ns.status.clone().unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let waiting = conditions.iter().any(|c| {
            c.type_ == "NamespaceFinalizersRemaining"
                && c.status == "True"
                && c.message.as_deref().is_some_and(|m| {
                    m == "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
                })
        });
        Ok(waiting.then_some((status.phase, conditions)))
    })
    .await?;
    assert_eq!(conditions.0.as_deref(), Some("Terminating"));
    let remaining = conditions
        .1
        .iter()
        .find(|c| c.type_ == "NamespaceContentRemaining")
        .context("NamespaceContentRemaining")?;
    assert_eq!(
        remaining.message.as_deref(),
        Some("Some resources are remaining: configmaps has 1 resource instances")
    );
    ensure!(cms.list(&Default::default()).await?.items.len() == 1);
    ensure!(secrets.list(&Default::default()).await?.items.is_empty());
    ensure!(pods.list(&Default::default()).await?.items.is_empty());
    // A new object may not be created in a terminating namespace.
    let late: ConfigMap = serde_json::from_value(json!({ "metadata": { "name": "late" } }))?;
    let err = cms
        .create(&PostParams::default(), &late)
        .await
        .err()
        .context("create in a terminating namespace must fail")?;
    ensure!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await?;
    eventually("namespace gone", || async {
        Ok(namespaces.get_opt("doomed").await?.is_none().then_some(()))
    })
    .await?;
    // kubectl's own wait works too.
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": "quick" } }))?;
    namespaces.create(&PostParams::default(), &ns).await?;
    let out = kubectl(
        &kubeconfig,
        &["delete", "namespace", "quick", "--timeout=60s"],
    )?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    ensure!(namespaces.get_opt("quick").await?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_a_deleted_node_are_collected() -> anyhow::Result<()> {
    let c = cluster().await?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(c.client.clone());
    let node = serde_json::from_value(json!({ "metadata": { "name": "ghost" } }))?;
    nodes.create(&PostParams::default(), &node).await?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.client.clone(), "default");
    let pod = serde_json::from_value(json!({
        "metadata": { "name": "stranded" },
        "spec": { "nodeName": "ghost", "containers": [{ "name": "c", "image": "busybox" }] },
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    nodes.delete("ghost", &DeleteParams::default()).await?;
    // Quarantine (40 s) plus up to two 20 s rounds.
    let deadline = Instant::now() + Duration::from_secs(120);
    while pods.get_opt("stranded").await?.is_some() {
        if Instant::now() > deadline {
            bail!("the pod of a deleted node was not collected");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
