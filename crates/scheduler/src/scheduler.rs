//! The scheduler itself: informers keep the [`Cache`] and the [`SchedulingQueue`] current;
//! one scheduling loop (a thread of its own, since filtering and scoring are CPU work) pops a
//! pod, runs its profile's framework against a snapshot, *assumes* the chosen node in the
//! cache and hands binding to an async task, so the next pod is scheduled while the API call
//! is in flight — as upstream's scheduling and binding cycles.
//!
//! Failures produce upstream's `FailedScheduling` event and `PodScheduled=False` condition
//! (`0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.
//! preemption: …`); preemption deletes the chosen victims and records the pod's
//! `nominatedNodeName`.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod},
    policy::v1::PodDisruptionBudget,
    storage::v1::StorageClass,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
    runtime::{
        reflector::{self, Store},
        watcher,
    },
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tug_client::events::{EventRecorder, EventType, object_reference};

use crate::{
    config::SchedulerConfiguration,
    framework::{
        ActionType, ClusterEvent, Code, CycleState, EventResource, Handle, Listers, NodeToStatus,
        PodInfo, Snapshot, Status,
        cache::Cache,
        runtime::{Framework, num_feasible_nodes_to_find},
    },
    plugins,
    queue::{QueuedPod, SchedulingQueue},
};

/// Upstream's message when the cluster has no nodes at all.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Why a pod could not be scheduled in one attempt.
#[derive(Debug)]
enum Failure {
    /// No node fits.
    Fit(Box<FitError>),
    /// Something went wrong (retried with back-off).
    Error(Status),
}

/// Upstream's `FitError`: how many nodes there were and why each was rejected.
#[derive(Debug, Default)]
pub struct FitError {
    /// Nodes in the snapshot.
    pub num_all_nodes: usize,
    /// The PreFilter rejection, if PreFilter rejected the pod.
    pub pre_filter: Option<Status>,
    /// Per-node Filter rejections.
    pub statuses: NodeToStatus,
    /// What PostFilter (preemption) said.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// The message of the `FailedScheduling` event and the `PodScheduled` condition.
    pub fn message(&self) -> String {
        if self.num_all_nodes == 0 && self.pre_filter.is_none() {
            return NO_NODES_AVAILABLE.to_owned();
        }
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        if let Some(pf) = &self.pre_filter {
            msg.push_str(&format!(" {}.", pf.message().trim_end_matches('.')));
        }
        let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
        for status in self.statuses.values() {
            for reason in &status.reasons {
                *histogram.entry(reason).or_default() += 1;
            }
        }
        if !histogram.is_empty() {
            let mut parts: Vec<String> = histogram
                .into_iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            parts.sort();
            msg.push_str(&format!(" {}.", parts.join(", ")));
        }
        if let Some(post) = self.post_filter_msg.as_deref().filter(|m| !m.is_empty()) {
            let post = post.trim_end_matches('.');
            if post.starts_with("preemption: ") {
                msg.push_str(&format!(" {post}."));
            } else {
                msg.push_str(&format!(" preemption: {post}."));
            }
        }
        msg
    }

    /// The plugins that rejected the pod: a later event they registered may make it fit.
    pub fn rejectors(&self) -> HashSet<&'static str> {
        let mut set: HashSet<&'static str> = self
            .statuses
            .values()
            .map(|s| s.plugin)
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(pf) = &self.pre_filter
            && !pf.plugin.is_empty()
        {
            set.insert(pf.plugin);
        }
        if self.num_all_nodes == 0 {
            set.insert(plugins::node_name::NAME);
        }
        set
    }
}

/// A small xorshift generator for tie-breaking between equally scored nodes.
#[derive(Debug)]
struct TieBreaker(AtomicU64);

impl TieBreaker {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Self(AtomicU64::new(seed))
    }

    fn next(&self, bound: u64) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        x % bound.max(1)
    }
}

/// The running scheduler's shared parts.
pub struct Scheduler {
    client: kube::Client,
    profiles: HashMap<String, Arc<Framework>>,
    cache: Mutex<Cache>,
    queue: Arc<SchedulingQueue>,
    recorder: EventRecorder,
    runtime: tokio::runtime::Handle,
    percentage_of_nodes_to_score: Option<i32>,
    next_start: AtomicUsize,
    ties: TieBreaker,
    /// Pods scheduled (bound) so far.
    pub scheduled: AtomicU64,
    /// Bindings in flight at once: kube-rs speaks HTTP/1.1, one connection per concurrent
    /// request, so an unbounded burst would open a connection per pod.
    bind_slots: Arc<tokio::sync::Semaphore>,
}

/// Concurrent binding cycles.
const CONCURRENT_BINDINGS: usize = 32;

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("profiles", &self.profiles.keys())
            .finish()
    }
}

fn spawn_reflector<K>(client: &kube::Client, cancel: &CancellationToken) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()));
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                next = stream.next() => match next {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    None => break,
                },
            }
        }
    });
    reader
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(crate::config::DEFAULT_SCHEDULER_NAME)
}

/// The node changes that matter for scheduling, as cluster events.
fn node_events(old: Option<&Node>, new: &Node) -> Vec<ClusterEvent> {
    let ev = |a| ClusterEvent::new(EventResource::Node, a);
    let Some(old) = old else {
        return vec![ev(ActionType::Add)];
    };
    let mut out = Vec::new();
    if old.metadata.labels != new.metadata.labels {
        out.push(ev(ActionType::UpdateLabel));
    }
    let alloc = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    if alloc(old) != alloc(new) {
        out.push(ev(ActionType::UpdateAllocatable));
    }
    let taints = |n: &Node| n.spec.as_ref().and_then(|s| s.taints.clone());
    if taints(old) != taints(new) {
        out.push(ev(ActionType::UpdateTaint));
    }
    let cond = |n: &Node| {
        (
            n.spec.as_ref().and_then(|s| s.unschedulable),
            n.status.as_ref().and_then(|s| {
                s.conditions.as_ref().map(|c| {
                    c.iter()
                        .map(|c| (c.type_.clone(), c.status.clone()))
                        .collect::<Vec<_>>()
                })
            }),
        )
    };
    if cond(old) != cond(new) {
        out.push(ev(ActionType::UpdateCondition));
    }
    let images = |n: &Node| n.status.as_ref().and_then(|s| s.images.clone());
    if images(old) != images(new) {
        out.push(ev(ActionType::Update));
    }
    out
}

impl Scheduler {
    /// Builds the profiles and starts the informers (they run until `cancel`). Scheduling
    /// starts with [`Scheduler::run`].
    pub async fn new(
        client: kube::Client,
        config: &SchedulerConfiguration,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let mut config = config.clone();
        config.finish()?;
        let listers = Listers {
            namespaces: spawn_reflector::<Namespace>(&client, cancel),
            pvcs: spawn_reflector::<PersistentVolumeClaim>(&client, cancel),
            pvs: spawn_reflector::<PersistentVolume>(&client, cancel),
            storage_classes: spawn_reflector::<StorageClass>(&client, cancel),
            pdbs: spawn_reflector::<PodDisruptionBudget>(&client, cancel),
        };
        let handle = Handle { listers };
        let mut profiles = HashMap::new();
        let mut events: HashMap<&'static str, Vec<ClusterEvent>> = HashMap::new();
        for profile in &config.profiles {
            let fw = Framework::new(profile, &handle)?;
            for p in fw.plugins() {
                let registered = p.events_to_register();
                if !registered.is_empty() {
                    events.insert(p.name(), registered);
                }
            }
            profiles.insert(profile.scheduler_name.clone(), Arc::new(fw));
        }
        let queue = Arc::new(SchedulingQueue::new(
            config.initial_backoff(),
            config.max_backoff(),
            events,
        ));
        let recorder = EventRecorder::new(
            client.clone(),
            config
                .profiles
                .first()
                .map_or(crate::config::DEFAULT_SCHEDULER_NAME, |p| {
                    p.scheduler_name.as_str()
                }),
            None,
        );
        Ok(Arc::new(Self {
            client,
            profiles,
            cache: Mutex::new(Cache::new()),
            queue,
            recorder,
            runtime: tokio::runtime::Handle::current(),
            percentage_of_nodes_to_score: config.percentage_of_nodes_to_score,
            next_start: AtomicUsize::new(0),
            ties: TieBreaker::new(),
            scheduled: AtomicU64::new(0),
            bind_slots: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_BINDINGS)),
        }))
    }

    /// Runs the informers and, while `leader` says so, the scheduling loop, until `cancel`.
    pub async fn run(
        self: Arc<Self>,
        leader: watch::Receiver<bool>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let (synced_tx, mut synced_rx) = watch::channel(0u8);
        let nodes = tokio::spawn(self.clone().watch_nodes(cancel.clone(), synced_tx.clone()));
        let pods = tokio::spawn(self.clone().watch_pods(cancel.clone(), synced_tx));
        // Both informers listed once before the first pod is scheduled.
        while *synced_rx.borrow() < 2 {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                changed = synced_rx.changed() => if changed.is_err() { break },
            }
        }
        tracing::info!(profiles = ?self.profiles.keys().collect::<Vec<_>>(), "scheduler caches synced");
        let stop = CancellationToken::new();
        let this = self.clone();
        let loop_stop = stop.clone();
        let leader_rx = leader;
        let thread = std::thread::Builder::new()
            .name("scheduling-loop".into())
            .spawn(move || this.scheduling_loop(leader_rx, loop_stop))?;
        cancel.cancelled().await;
        stop.cancel();
        self.queue.close();
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        nodes.abort();
        pods.abort();
        Ok(())
    }

    async fn watch_nodes(self: Arc<Self>, cancel: CancellationToken, synced: watch::Sender<u8>) {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut known: HashMap<String, Arc<Node>> = HashMap::new();
        let mut seen_in_init: HashSet<String> = HashSet::new();
        let mut reported = false;
        let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = stream.next() => e,
            };
            let Some(event) = event else { return };
            match event {
                Ok(watcher::Event::Init) => seen_in_init.clear(),
                Ok(watcher::Event::InitApply(node) | watcher::Event::Apply(node)) => {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    seen_in_init.insert(name.clone());
                    let node = Arc::new(node);
                    let events = node_events(known.get(&name).map(|n| n.as_ref()), &node);
                    self.lock_cache().set_node(node.clone());
                    known.insert(name, node);
                    for e in events {
                        self.queue.on_event(e);
                    }
                }
                Ok(watcher::Event::Delete(node)) => {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    known.remove(&name);
                    self.lock_cache().remove_node(&name);
                    self.queue
                        .on_event(ClusterEvent::new(EventResource::Node, ActionType::Delete));
                }
                Ok(watcher::Event::InitDone) => {
                    let gone: Vec<String> = known
                        .keys()
                        .filter(|n| !seen_in_init.contains(*n))
                        .cloned()
                        .collect();
                    for name in gone {
                        known.remove(&name);
                        self.lock_cache().remove_node(&name);
                    }
                    if !reported {
                        reported = true;
                        synced.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "node watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn watch_pods(self: Arc<Self>, cancel: CancellationToken, synced: watch::Sender<u8>) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut known: HashSet<String> = HashSet::new();
        let mut seen_in_init: HashSet<String> = HashSet::new();
        let mut reported = false;
        let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = stream.next() => e,
            };
            let Some(event) = event else { return };
            match event {
                Ok(watcher::Event::Init) => seen_in_init.clear(),
                Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod)) => {
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    seen_in_init.insert(uid.clone());
                    known.insert(uid);
                    self.on_pod(Arc::new(pod));
                }
                Ok(watcher::Event::Delete(pod)) => {
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    known.remove(&uid);
                    self.on_pod_deleted(&uid);
                }
                Ok(watcher::Event::InitDone) => {
                    let gone: Vec<String> = known
                        .iter()
                        .filter(|u| !seen_in_init.contains(*u))
                        .cloned()
                        .collect();
                    for uid in gone {
                        known.remove(&uid);
                        self.on_pod_deleted(&uid);
                    }
                    if !reported {
                        reported = true;
                        synced.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_pod(&self, pod: Arc<Pod>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if node_name(&pod).is_some() {
            self.queue.delete(&uid);
            if is_terminal(&pod) {
                let had = {
                    let mut cache = self.lock_cache();
                    let had = cache.has_pod(&uid);
                    cache.remove_pod(&uid);
                    had
                };
                if had {
                    self.queue.on_event(ClusterEvent::new(
                        EventResource::AssignedPod,
                        ActionType::Delete,
                    ));
                }
                return;
            }
            let action = {
                let mut cache = self.lock_cache();
                let new = !cache.has_pod(&uid) || cache.is_assumed(&uid);
                cache.set_pod(pod);
                if new {
                    ActionType::Add
                } else {
                    ActionType::Update
                }
            };
            self.queue
                .on_event(ClusterEvent::new(EventResource::AssignedPod, action));
            return;
        }
        let Some(fw) = self.profiles.get(scheduler_name(&pod)) else {
            return;
        };
        if pod.metadata.deletion_timestamp.is_some() || is_terminal(&pod) {
            self.queue.delete(&uid);
            return;
        }
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        if let Some(node) = &nominated {
            self.queue
                .nominate(Arc::new(PodInfo::new(pod.clone())), Some(node));
        }
        let gate = fw.run_pre_enqueue(&pod);
        let gated_by = (!gate.is_success()).then_some(gate.plugin);
        self.queue.update(pod, gated_by);
    }

    fn on_pod_deleted(&self, uid: &str) {
        self.queue.delete(uid);
        let had = {
            let mut cache = self.lock_cache();
            let had = cache.has_pod(uid);
            cache.remove_pod(uid);
            had
        };
        if had {
            self.queue.on_event(ClusterEvent::new(
                EventResource::AssignedPod,
                ActionType::Delete,
            ));
        }
    }

    fn scheduling_loop(
        self: Arc<Self>,
        mut leader: watch::Receiver<bool>,
        stop: CancellationToken,
    ) {
        let mut snapshot = Snapshot::default();
        loop {
            if stop.is_cancelled() {
                return;
            }
            if !*leader.borrow_and_update() {
                // Wait for leadership without holding the queue.
                let waited = self.runtime.block_on(async {
                    tokio::select! {
                        _ = stop.cancelled() => false,
                        r = leader.wait_for(|l| *l) => r.is_ok(),
                    }
                });
                if !waited {
                    return;
                }
                continue;
            }
            let Some(popped) = self.queue.pop() else {
                return;
            };
            self.schedule_one(popped, &mut snapshot);
        }
    }

    fn schedule_one(self: &Arc<Self>, popped: QueuedPod, snapshot: &mut Snapshot) {
        let pod = popped.pod.clone();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let Some(fw) = self.profiles.get(scheduler_name(&pod)).cloned() else {
            self.queue.done(&uid);
            return;
        };
        if pod.metadata.deletion_timestamp.is_some() || self.lock_cache().has_pod(&uid) {
            self.queue.done(&uid);
            return;
        }
        let info = Arc::new(PodInfo::new(pod.clone()));
        self.lock_cache().update_snapshot(snapshot);
        let mut state = CycleState::default();
        match self.schedule_pod(&fw, &mut state, &info, snapshot) {
            Ok(node) => self.assume_and_bind(fw, state, popped, info, node),
            Err(Failure::Fit(mut fit)) => {
                if fw.has_post_filter() && fit.pre_filter.is_none() && fit.num_all_nodes > 0 {
                    let (result, status) =
                        fw.run_post_filter(&state, &info, snapshot, &fit.statuses);
                    match result.filter(|_| status.is_success()) {
                        Some(r) if !r.nominated_node_name.is_empty() => {
                            self.queue
                                .nominate(info.clone(), Some(&r.nominated_node_name));
                            self.preempt(&pod, &fw.scheduler_name, r);
                        }
                        _ => fit.post_filter_msg = Some(status.message()),
                    }
                }
                let message = fit.message();
                tracing::debug!(pod = %info.key(), %message, "unschedulable");
                self.queue.requeue_failed(&popped, fit.rejectors(), false);
                self.report_failure(pod, "Unschedulable", message);
            }
            Err(Failure::Error(status)) => {
                let message = status.message();
                tracing::warn!(pod = %info.key(), %message, "scheduling error");
                self.queue.requeue_failed(&popped, HashSet::new(), true);
                self.report_failure(pod, "SchedulerError", message);
            }
        }
    }

    /// Finds the best node for `pod` (upstream's `schedulePod`).
    fn schedule_pod(
        &self,
        fw: &Framework,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<String, Failure> {
        if snapshot.is_empty() {
            return Err(Failure::Fit(Box::default()));
        }
        let (pre, status) = fw.run_pre_filter(state, pod, snapshot);
        if !status.is_success() {
            if status.code == Code::Error {
                return Err(Failure::Error(status));
            }
            return Err(Failure::Fit(Box::new(FitError {
                num_all_nodes: snapshot.len(),
                pre_filter: Some(status),
                ..Default::default()
            })));
        }
        let nominated = self.queue.nominated();
        // A pod nominated by an earlier preemption tries its node first.
        if let Some(nn) = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            && let Some(node) = snapshot.get(nn)
        {
            let noms = nominated.get(nn).map(Vec::as_slice).unwrap_or(&[]);
            if fw
                .run_filter_with_nominated(state, pod, node, noms)
                .is_success()
            {
                return Ok(nn.to_owned());
            }
        }
        let narrowed: Vec<Arc<crate::framework::NodeInfo>>;
        let nodes: &[Arc<crate::framework::NodeInfo>] = match pre.and_then(|p| p.node_names) {
            Some(names) => {
                narrowed = names
                    .iter()
                    .filter_map(|n| snapshot.get(n).cloned())
                    .collect();
                &narrowed
            }
            None => snapshot.nodes(),
        };
        let want = num_feasible_nodes_to_find(
            fw.percentage_of_nodes_to_score
                .or(self.percentage_of_nodes_to_score),
            nodes.len(),
        );
        let start = if nodes.is_empty() {
            0
        } else {
            self.next_start.load(Ordering::Relaxed) % nodes.len()
        };
        let (feasible, statuses, processed) =
            fw.find_feasible(state, pod, nodes, start, want, &nominated);
        if !nodes.is_empty() {
            self.next_start
                .store((start + processed) % nodes.len(), Ordering::Relaxed);
        }
        if feasible.is_empty() {
            return Err(Failure::Fit(Box::new(FitError {
                num_all_nodes: snapshot.len(),
                statuses,
                ..Default::default()
            })));
        }
        if feasible.len() == 1 {
            return Ok(feasible[0].name().to_owned());
        }
        let scores = fw
            .run_scoring(state, pod, &feasible, snapshot)
            .map_err(Failure::Error)?;
        let mut best = i64::MIN;
        let mut chosen = String::new();
        let mut ties = 0u64;
        for s in &scores {
            if s.score > best {
                best = s.score;
                chosen.clone_from(&s.name);
                ties = 1;
            } else if s.score == best {
                ties += 1;
                if self.ties.next(ties) == 0 {
                    chosen.clone_from(&s.name);
                }
            }
        }
        Ok(chosen)
    }

    fn assume_and_bind(
        self: &Arc<Self>,
        fw: Arc<Framework>,
        mut state: CycleState,
        popped: QueuedPod,
        info: Arc<PodInfo>,
        node: String,
    ) {
        let uid = info.uid().to_owned();
        // The cache counts the pod on the node at once; the informer's bound copy replaces
        // this one when the binding is seen.
        self.lock_cache().assume(info.clone(), &node);
        let status = fw.run_reserve(&mut state, &info, &node);
        if !status.is_success() {
            self.lock_cache().forget(&uid);
            self.queue.requeue_failed(&popped, HashSet::new(), true);
            self.report_failure(info.pod.clone(), "SchedulerError", status.message());
            return;
        }
        let (permit, wait) = fw.run_permit(&mut state, &info, &node);
        if permit.is_rejected() || permit.code == Code::Error {
            fw.run_unreserve(&mut state, &info, &node);
            self.lock_cache().forget(&uid);
            let error = permit.code == Code::Error;
            self.queue.requeue_failed(
                &popped,
                HashSet::from([permit.plugin])
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect(),
                error,
            );
            self.report_failure(info.pod.clone(), "Unschedulable", permit.message());
            return;
        }
        self.queue.nominate(info.clone(), None);
        let this = self.clone();
        self.runtime.spawn(async move {
            let Ok(_slot) = this.bind_slots.clone().acquire_owned().await else {
                return;
            };
            let mut status = Status::success();
            if !wait.is_zero() {
                // No in-tree plugin allows a waiting pod later, so a wait ends in its timeout
                // exactly as upstream's does when nobody allows it.
                tokio::time::sleep(wait).await;
                status = Status::unschedulable("rejected due to timeout after waiting at permit");
            }
            if status.is_success() {
                status = fw.run_pre_bind(&this.client, &state, &info, &node).await;
            }
            if status.is_success() {
                status = fw.run_bind(&this.client, &state, &info, &node).await;
            }
            if status.is_success() {
                this.queue.done(&uid);
                this.scheduled.fetch_add(1, Ordering::Relaxed);
                let pod = &info.pod;
                this.recorder.record(
                    object_reference(pod.as_ref()),
                    EventType::Normal,
                    "Scheduled",
                    format!(
                        "Successfully assigned {}/{} to {node}",
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        pod.metadata.name.as_deref().unwrap_or_default()
                    ),
                );
                return;
            }
            let mut state = state;
            fw.run_unreserve(&mut state, &info, &node);
            this.lock_cache().forget(&uid);
            this.queue.requeue_failed(&popped, HashSet::new(), true);
            let message = if status.plugin == plugins::default_binder::NAME {
                format!("Binding rejected: {}", status.message())
            } else {
                status.message()
            };
            tracing::debug!(pod = %info.key(), %message, "binding failed");
            this.report_failure(info.pod.clone(), "SchedulerError", message);
        });
    }

    /// Deletes the victims (marking them `DisruptionTarget`) and records the nomination.
    fn preempt(&self, pod: &Arc<Pod>, scheduler: &str, result: crate::framework::PostFilterResult) {
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        let pod = pod.clone();
        let scheduler = scheduler.to_owned();
        self.runtime.spawn(async move {
            let node = result.nominated_node_name.clone();
            for victim in &result.victims {
                let ns = victim.metadata.namespace.as_deref().unwrap_or("default");
                let name = victim.metadata.name.as_deref().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client.clone(), ns);
                let condition = serde_json::json!({"status": {"conditions": [{
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "PreemptionByScheduler",
                    "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
                    "lastTransitionTime": tug_client::now_time(),
                }]}});
                if let Err(e) = api
                    .patch_status(name, &PatchParams::default(), &Patch::Strategic(&condition))
                    .await
                {
                    tracing::debug!(victim = %name, error = %e, "could not mark the victim");
                }
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        tracing::warn!(victim = %name, error = %e, "could not preempt");
                        continue;
                    }
                }
                recorder.record(
                    object_reference(victim.as_ref()),
                    EventType::Normal,
                    "Preempted",
                    format!(
                        "Preempted by pod {} on node {node}",
                        pod.metadata.uid.as_deref().unwrap_or_default()
                    ),
                );
            }
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client, ns);
            let patch = serde_json::json!({"status": {"nominatedNodeName": node}});
            if let Err(e) = api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "could not record the nominated node");
            }
        });
    }

    /// Records `FailedScheduling` and sets `PodScheduled=False` when it changed.
    fn report_failure(&self, pod: Arc<Pod>, reason: &'static str, message: String) {
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        self.runtime.spawn(async move {
            recorder.record(
                object_reference(pod.as_ref()),
                EventType::Warning,
                "FailedScheduling",
                message.clone(),
            );
            let current = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
            let unchanged = current.is_some_and(|c| {
                c.status == "False"
                    && c.reason.as_deref() == Some(reason)
                    && c.message.as_deref() == Some(message.as_str())
            });
            if unchanged {
                return;
            }
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client, ns);
            let patch = serde_json::json!({"status": {"conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": reason,
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": tug_client::now_time(),
            }]}});
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(e) => {
                    tracing::debug!(pod = %name, error = %e, "could not update the condition")
                }
            }
        });
    }

    /// Pods in the queue's (active, backoff, unschedulable) sets.
    pub fn queue_lengths(&self) -> (usize, usize, usize) {
        self.queue.lengths()
    }
}

/// Runs a scheduler with `config` until `cancel`: informers, leader election on the
/// configured Lease (unless disabled), and the scheduling loop while leading.
pub async fn run(
    client: kube::Client,
    config: SchedulerConfiguration,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let scheduler = Scheduler::new(client.clone(), &config, &cancel).await?;
    let le = &config.leader_election;
    let (_always, leader) = if le.leader_elect {
        let mut elect = tug_client::leader::LeaderElectionConfig::new(
            &le.resource_namespace,
            &le.resource_name,
        );
        elect.lease_duration = le.lease_duration;
        elect.renew_deadline = le.renew_deadline;
        elect.retry_period = le.retry_period;
        (None, tug_client::leader::run(client, elect, cancel.clone()))
    } else {
        let (tx, rx) = watch::channel(true);
        (Some(tx), rx)
    };
    scheduler.run(leader, cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_error_message_matches_upstream() {
        let mut statuses = NodeToStatus::new();
        statuses.insert(
            "a".into(),
            Status::unschedulable("Insufficient cpu").with_plugin("NodeResourcesFit"),
        );
        for n in ["b", "c"] {
            statuses.insert(
                n.into(),
                Status::unresolvable("node(s) had untolerated taint {key: value}")
                    .with_plugin("TaintToleration"),
            );
        }
        let fit = FitError {
            num_all_nodes: 3,
            statuses,
            post_filter_msg: Some(
                "0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
                    .into(),
            ),
            ..Default::default()
        };
        assert_eq!(
            fit.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            fit.rejectors(),
            HashSet::from(["NodeResourcesFit", "TaintToleration"])
        );
    }

    #[test]
    fn no_nodes_and_pre_filter_messages() {
        assert_eq!(FitError::default().message(), NO_NODES_AVAILABLE);
        let fit = FitError {
            num_all_nodes: 2,
            pre_filter: Some(Status::unresolvable(
                "persistentvolumeclaim \"data\" not found",
            )),
            ..Default::default()
        };
        assert_eq!(
            fit.message(),
            "0/2 nodes are available: persistentvolumeclaim \"data\" not found."
        );
    }
}
