//! The pod garbage collector (upstream's `pkg/controller/podgc`), every 20 s:
//! - pods bound to a node that no longer exists (still absent after a quarantine of 40 s, and
//!   confirmed with a GET) get `DisruptionTarget` (`DeletionByPodGC`), phase `Failed`, and are
//!   deleted at once — no kubelet will ever finalize them;
//! - pods being deleted that were never scheduled are deleted at once;
//! - terminated pods (`Succeeded`/`Failed`) above the threshold (upstream's
//!   `--terminated-pod-gc-threshold`, 12500) are deleted, oldest first.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Node, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How often the collector runs.
const PERIOD: Duration = Duration::from_secs(20);
/// How long a node must stay missing before its pods are collected.
const QUARANTINE: Duration = Duration::from_secs(40);
/// Terminated pods kept before the oldest are deleted.
pub const TERMINATED_THRESHOLD: usize = 12_500;

fn force_delete(uid: &str) -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..Default::default()
    }
}

/// The terminated pods to delete so that at most `threshold` remain: the oldest first.
pub fn excess_terminated(pods: &[Pod], threshold: usize) -> Vec<&Pod> {
    let mut terminated: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
        })
        .collect();
    if terminated.len() <= threshold {
        return Vec::new();
    }
    terminated.sort_by_key(|p| {
        (
            p.metadata.creation_timestamp.clone().map(|t| t.0),
            p.name_any(),
        )
    });
    let excess = terminated.len() - threshold;
    terminated.truncate(excess);
    terminated
}

/// Runs the collector until `stop` is cancelled.
pub async fn run(client: Client, stop: CancellationToken) {
    let mut missing_since: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = collect(&client, &mut missing_since).await {
            tracing::debug!(error = %e, "pod garbage collection failed; next round retries");
        }
    }
}

async fn collect(
    client: &Client,
    missing_since: &mut HashMap<String, Instant>,
) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let all = pods.list(&ListParams::default()).await?.items;
    let existing: HashSet<String> = nodes
        .list_metadata(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|n| n.name_any())
        .collect();

    for pod in excess_terminated(&all, TERMINATED_THRESHOLD) {
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
        let uid = pod.uid().unwrap_or_default();
        if let Err(e) = api.delete(&pod.name_any(), &force_delete(&uid)).await {
            tracing::debug!(pod = pod.name_any(), error = %e, "cannot delete a terminated pod");
        }
    }

    let now = Instant::now();
    let mut still_missing = HashSet::new();
    for pod in &all {
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let uid = pod.uid().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        match node {
            None if pod.metadata.deletion_timestamp.is_some() => {
                // Never scheduled: no kubelet will finalize it.
                if let Err(e) = api.delete(&name, &force_delete(&uid)).await {
                    tracing::debug!(pod = name, error = %e, "cannot delete an unscheduled terminating pod");
                }
            }
            Some(node) if !existing.contains(&node) => {
                still_missing.insert(node.clone());
                let since = *missing_since.entry(node.clone()).or_insert(now);
                if now.duration_since(since) < QUARANTINE {
                    continue;
                }
                // Confirm with the API server: the node list may be older than the pod.
                match nodes.get_opt(&node).await {
                    Ok(None) => {}
                    _ => continue,
                }
                let patch = json!({ "status": {
                    "phase": "Failed",
                    "conditions": [{
                        "type": "DisruptionTarget", "status": "True",
                        "reason": "DeletionByPodGC",
                        "message": "PodGC: node no longer exists",
                        "lastTransitionTime": Time(Timestamp::now()),
                    }],
                } });
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    tracing::debug!(pod = name, error = %e, "cannot mark an orphaned pod failed");
                }
                match api.delete(&name, &force_delete(&uid)).await {
                    Ok(_) => tracing::info!(
                        pod = name,
                        namespace = ns,
                        node,
                        "deleted a pod whose node is gone"
                    ),
                    Err(e) => {
                        tracing::debug!(pod = name, error = %e, "cannot delete an orphaned pod")
                    }
                }
            }
            _ => {}
        }
    }
    missing_since.retain(|n, _| still_missing.contains(n));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, created: i64) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name,
                "creationTimestamp": Timestamp::from_second(created).expect("time").to_string() },
            "status": { "phase": phase },
        }))
        .expect("pod")
    }

    #[test]
    fn the_oldest_terminated_pods_go_first() {
        let pods = vec![
            pod("new-done", "Succeeded", 300),
            pod("running", "Running", 50),
            pod("old-failed", "Failed", 100),
            pod("mid-done", "Succeeded", 200),
        ];
        let names: Vec<String> = excess_terminated(&pods, 1)
            .into_iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, ["old-failed", "mid-done"]);
        assert!(excess_terminated(&pods, 3).is_empty());
    }
}
