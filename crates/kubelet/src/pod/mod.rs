//! Pods on this node: a watch on the pods bound here (`spec.nodeName=<node>`) fans out to one
//! [`worker::Worker`] per pod uid (upstream's pod workers); housekeeping removes sandboxes of
//! pods the API server no longer has (deleted while the agent was down).

pub mod admit;
pub mod backoff;
pub mod env;
pub mod probe;
pub mod pull_secrets;
pub mod spec;
pub mod status;
pub mod volumes;
pub mod worker;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    runtime::{WatchStreamExt, watcher},
};
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use worker::{Context, Worker};

/// How often orphaned sandboxes are looked for.
const HOUSEKEEPING: Duration = Duration::from_secs(10);

struct Handle {
    updates: watch::Sender<Option<Pod>>,
    task: JoinHandle<()>,
}

/// Runs the pod workers until `stop` is cancelled.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.node));
    let mut events = watcher(pods, config).default_backoff().boxed();
    let mut workers: HashMap<String, Handle> = HashMap::new();
    let mut listing: HashSet<String> = HashSet::new();
    let mut synced = false;
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { break };
                match event {
                    Ok(watcher::Event::Init) => listing.clear(),
                    Ok(watcher::Event::InitApply(pod)) => {
                        if let Some(uid) = pod.metadata.uid.clone() {
                            listing.insert(uid);
                        }
                        dispatch(&ctx, &mut workers, pod, &stop);
                    }
                    Ok(watcher::Event::InitDone) => {
                        // A relist: pods absent from it were deleted while we were not
                        // watching.
                        for (uid, handle) in &workers {
                            if !listing.contains(uid) {
                                let _ = handle.updates.send(None);
                            }
                        }
                        synced = true;
                        cleanup_orphans(&ctx, &workers).await;
                    }
                    Ok(watcher::Event::Apply(pod)) => dispatch(&ctx, &mut workers, pod, &stop),
                    Ok(watcher::Event::Delete(pod)) => {
                        if let Some(handle) = pod.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                            let _ = handle.updates.send(None);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                }
            }
            _ = housekeeping.tick() => {
                workers.retain(|_, h| !h.task.is_finished());
                if synced {
                    cleanup_orphans(&ctx, &workers).await;
                }
            }
            () = stop.cancelled() => break,
        }
    }
    for (_, handle) in workers {
        handle.task.abort();
    }
}

fn dispatch(
    ctx: &Arc<Context>,
    workers: &mut HashMap<String, Handle>,
    pod: Pod,
    stop: &CancellationToken,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if let Some(handle) = workers.get(&uid)
        && !handle.task.is_finished()
    {
        let _ = handle.updates.send(Some(pod));
        return;
    }
    // A new pod (or a finished worker's pod that reappears): admit it, then start a worker.
    let mut worker = Worker::new(ctx.clone(), uid.clone());
    if admit::needs_admission(&pod) {
        let active: Vec<Pod> = workers
            .values()
            .filter(|h| !h.task.is_finished())
            .filter_map(|h| h.updates.borrow().clone())
            .filter(|p| {
                !p.status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .is_some_and(status::is_terminal)
            })
            .collect();
        if let Err(rejection) = admit::admit(&pod, &active, crate::node::MAX_PODS as usize) {
            tracing::warn!(pod = %worker::pod_key(&pod), reason = rejection.0, "pod rejected");
            worker.reject(rejection);
        }
    }
    let (tx, rx) = watch::channel(Some(pod));
    let task = tokio::spawn(worker.run(rx, stop.child_token()));
    workers.insert(uid, Handle { updates: tx, task });
}

/// Stops and removes sandboxes whose pod has no worker (the API server does not have it).
async fn cleanup_orphans(ctx: &Context, workers: &HashMap<String, Handle>) {
    let sandboxes = match ctx.cri.list_pod_sandboxes(HashMap::new()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list sandboxes");
            return;
        }
    };
    for s in sandboxes {
        let Some(uid) = s.labels.get(spec::LABEL_POD_UID) else {
            continue;
        };
        if workers.contains_key(uid) {
            continue;
        }
        tracing::info!(
            uid,
            sandbox = s.id,
            "removing the sandbox of a pod that no longer exists"
        );
        // Stop containers gracefully with their recorded grace period first.
        let grace_containers = ctx
            .cri
            .list_containers(HashMap::from([(
                spec::LABEL_POD_UID.to_owned(),
                uid.clone(),
            )]))
            .await
            .unwrap_or_default();
        for c in grace_containers {
            let grace = c
                .annotations
                .get(spec::ANNOTATION_GRACE)
                .and_then(|g| g.parse().ok())
                .unwrap_or(30);
            let _ = ctx.cri.stop_container(&c.id, grace).await;
        }
        let _ = ctx.cri.stop_pod_sandbox(&s.id).await;
        if let Err(e) = ctx.cri.remove_pod_sandbox(&s.id).await {
            tracing::warn!(sandbox = s.id, error = %e, "cannot remove an orphaned sandbox");
        }
        let _ = volumes::cleanup(&volumes::pod_dir(&ctx.pods_dir, uid));
        worker::remove_pod_cgroups(uid);
    }
}
