//! One pod's worker: reconciles the pod's desired spec with what CRI runs (sandbox, image
//! pulls, init containers in order, containers, restarts with back-off), writes the status
//! through `pods/status`, and on deletion stops everything gracefully and deletes the pod
//! object with grace period 0. All state that matters lives in CRI (labelled with the pod's
//! uid), so a restarted agent adopts running containers instead of recreating them.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use k8s_cri::v1 as cri;
use k8s_openapi::{
    api::core::v1::{ConfigMap, Container, Pod, Secret, Service},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tug_client::events::{EventRecorder, EventType, object_reference};

use super::{
    backoff::Backoff,
    env, probe,
    spec::{self, ContainerInputs, Dns},
    status::{self, Instance, Observed, RunState},
    volumes,
};
use crate::cri::Cri;

/// Everything workers share.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The container runtime.
    pub cri: Cri,
    /// The node's name.
    pub node: String,
    /// The node's IPs.
    pub host_ips: Vec<String>,
    /// `<data-dir>/pods`.
    pub pods_dir: PathBuf,
    /// `<data-dir>/logs/pods`.
    pub logs_dir: PathBuf,
    /// DNS settings for pods.
    pub dns: Dns,
    /// The node's allocatable CPU, millicores.
    pub node_cpu_milli: i64,
    /// The node's memory, bytes.
    pub node_memory: i64,
    /// This process's OOM score adjustment (a floor for containers').
    pub own_oom_score_adj: i64,
    /// Writes the pod events `kubectl describe` shows (component `kubelet`).
    pub events: EventRecorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("node", &self.node)
            .field("pods_dir", &self.pods_dir)
            .finish_non_exhaustive()
    }
}

/// How often a live pod is re-examined without an API event (upstream's PLEG relists every
/// second).
const RESYNC: Duration = Duration::from_secs(1);
/// How often configMap and secret volumes are refreshed.
const VOLUME_REFRESH: Duration = Duration::from_secs(60);
/// How often a terminal pod is re-examined.
const RESYNC_TERMINAL: Duration = Duration::from_secs(10);

fn now_nanos() -> i64 {
    i64::try_from(Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// A pod's worker state.
#[derive(Debug)]
pub struct Worker {
    ctx: Arc<Context>,
    uid: String,
    restarts: Backoff,
    pulls: Backoff,
    sandbox_failures: Backoff,
    waiting: HashMap<String, (String, String)>,
    last_status: Option<serde_json::Value>,
    prober: probe::Prober,
    /// When the volumes were last prepared, for which pod version, and their error.
    volumes: Option<(tokio::time::Instant, Option<String>, Option<String>)>,
    /// Set when node admission rejected the pod: it fails instead of starting.
    rejected: Option<super::admit::Rejection>,
}

/// What one sync concluded.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Look again after this long (or on an API event).
    After(Duration),
}

impl Worker {
    /// A worker for the pod with `uid`.
    pub fn new(ctx: Arc<Context>, uid: String) -> Self {
        Self {
            ctx,
            uid,
            restarts: Backoff::default(),
            pulls: Backoff::default(),
            sandbox_failures: Backoff::default(),
            waiting: HashMap::new(),
            last_status: None,
            prober: probe::Prober::default(),
            volumes: None,
            rejected: None,
        }
    }

    /// Marks the pod rejected by node admission: its first sync fails it.
    pub fn reject(&mut self, rejection: super::admit::Rejection) {
        self.rejected = Some(rejection);
    }

    /// Runs until the pod is gone: `updates` carries the latest object, `None` once the API
    /// server deleted it.
    pub async fn run(mut self, mut updates: watch::Receiver<Option<Pod>>, stop: CancellationToken) {
        loop {
            let pod = updates.borrow_and_update().clone();
            let wait = match pod {
                None => {
                    // Deleted from the API without us (force deletion): stop it now.
                    self.kill_all(None).await;
                    return;
                }
                Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                    if self.terminate(&pod).await {
                        return;
                    }
                    RESYNC
                }
                Some(pod) => match self.sync(&pod).await {
                    Ok(Next::After(d)) => d,
                    Err(e) => {
                        tracing::warn!(pod = %pod_key(&pod), error = %e, "pod sync failed");
                        RESYNC
                    }
                },
            };
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Records an event about `pod` (about one of its containers when `container` is given,
    /// with upstream's `spec.containers{name}` field path).
    fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        kind: EventType,
        reason: &str,
        message: String,
    ) {
        let mut object = object_reference(pod);
        if let Some(name) = container {
            let init = pod
                .spec
                .as_ref()
                .and_then(|s| s.init_containers.as_ref())
                .is_some_and(|i| i.iter().any(|c| c.name == name));
            object.field_path = Some(if init {
                format!("spec.initContainers{{{name}}}")
            } else {
                format!("spec.containers{{{name}}}")
            });
        }
        self.ctx.events.record(object, kind, reason, message);
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(spec::LABEL_POD_UID.to_owned(), self.uid.clone())])
    }

    fn pod_dir(&self) -> PathBuf {
        volumes::pod_dir(&self.ctx.pods_dir, &self.uid)
    }

    /// The pod's sandboxes (newest first) and its container instances by name (newest first).
    async fn observe(
        &self,
    ) -> Result<(Vec<cri::PodSandbox>, HashMap<String, Vec<Instance>>), crate::cri::Error> {
        let mut sandboxes = self.ctx.cri.list_pod_sandboxes(self.labels()).await?;
        sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let containers = self.ctx.cri.list_containers(self.labels()).await?;
        let mut by_name: HashMap<String, Vec<Instance>> = HashMap::new();
        for c in containers {
            let name = c
                .labels
                .get(spec::LABEL_CONTAINER_NAME)
                .cloned()
                .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
                .unwrap_or_default();
            let status = match self.ctx.cri.container_status(&c.id).await {
                Ok(s) => s,
                Err(e) if e.code() == Some(tonic::Code::NotFound) => continue,
                Err(e) => return Err(e),
            };
            by_name.entry(name).or_default().push(instance(&c, &status));
        }
        for list in by_name.values_mut() {
            list.sort_by_key(|i| std::cmp::Reverse((i.attempt, i.created_at)));
        }
        Ok((sandboxes, by_name))
    }

    async fn sync(&mut self, pod: &Pod) -> Result<Next, SyncError> {
        let spec = pod.spec.clone().unwrap_or_default();
        let api_phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        if let Some((reason, message)) = self.rejected.clone()
            && !api_phase.as_deref().is_some_and(status::is_terminal)
        {
            self.event(pod, None, EventType::Warning, &reason, message.clone());
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            let patch = serde_json::json!({
                "status": {"phase": "Failed", "reason": reason, "message": message}
            });
            api.patch_status(
                pod.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| SyncError::Api(format!("reject pod {}", pod_key(pod)), e))?;
            return Ok(Next::After(RESYNC_TERMINAL));
        }
        if api_phase.as_deref().is_some_and(status::is_terminal) {
            // Terminal: release the sandbox, keep the record.
            let (sandboxes, _) = self.observe().await?;
            for s in sandboxes
                .iter()
                .filter(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
            {
                let _ = self.ctx.cri.stop_pod_sandbox(&s.id).await;
            }
            return Ok(Next::After(RESYNC_TERMINAL));
        }
        let (sandboxes, mut containers) = self.observe().await?;
        let restart_policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let ready = sandboxes
            .iter()
            .find(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
            .cloned();
        let sandbox_attempt = sandboxes
            .iter()
            .filter_map(|s| s.metadata.as_ref().map(|m| m.attempt))
            .max()
            .map_or(0, |a| a + 1);

        let (sandbox_id, sandbox_config) = match ready {
            Some(s) => {
                let attempt = s.metadata.as_ref().map_or(0, |m| m.attempt);
                (
                    s.id,
                    spec::sandbox_config(pod, attempt, &self.ctx.logs_dir, &self.ctx.dns),
                )
            }
            None if restart_policy == "Never" && !containers.is_empty() => {
                // A Never pod whose sandbox died is not recreated: report what we have.
                let observed = self.observed(false, vec![], containers);
                self.write_status(pod, &observed).await?;
                return Ok(Next::After(RESYNC_TERMINAL));
            }
            None => {
                let now = now_nanos();
                if self
                    .sandbox_failures
                    .in_backoff_since_update(&self.uid, now)
                {
                    self.write_status(pod, &self.observed(false, vec![], containers))
                        .await?;
                    return Ok(Next::After(RESYNC));
                }
                // Old sandboxes (dead, or from before a restart) go with their containers.
                for s in &sandboxes {
                    let _ = self.ctx.cri.stop_pod_sandbox(&s.id).await;
                    let _ = self.ctx.cri.remove_pod_sandbox(&s.id).await;
                }
                let config =
                    spec::sandbox_config(pod, sandbox_attempt, &self.ctx.logs_dir, &self.ctx.dns);
                if let Err(e) = std::fs::create_dir_all(&config.log_directory) {
                    return Err(SyncError::Io(format!(
                        "cannot create {}: {e}",
                        config.log_directory
                    )));
                }
                match self.ctx.cri.run_pod_sandbox(config.clone()).await {
                    Ok(id) => {
                        tracing::info!(pod = %pod_key(pod), sandbox = id, "sandbox started");
                        // The old sandbox's containers went with it: they count as exited,
                        // so the new ones continue their attempt numbers (restart counts),
                        // as upstream's kubelet does.
                        for instance in containers.values_mut().flatten() {
                            if instance.state != RunState::Exited {
                                instance.state = RunState::Exited;
                                instance.finished_at = now;
                                if instance.exit_code == 0 {
                                    instance.exit_code = 137;
                                }
                            }
                        }
                        (id, config)
                    }
                    Err(e) => {
                        self.sandbox_failures.next(&self.uid, now);
                        tracing::warn!(pod = %pod_key(pod), error = %e, "cannot create the pod sandbox");
                        self.event(
                            pod,
                            None,
                            EventType::Warning,
                            "FailedCreatePodSandBox",
                            format!("Failed to create pod sandbox: {e}"),
                        );
                        self.write_status(pod, &self.observed(false, vec![], containers))
                            .await?;
                        return Ok(Next::After(RESYNC));
                    }
                }
            }
        };
        let sandbox = self.ctx.cri.pod_sandbox_status(&sandbox_id).await?;
        let mut pod_ips: Vec<String> = Vec::new();
        if let Some(net) = &sandbox.network {
            if !net.ip.is_empty() {
                pod_ips.push(net.ip.clone());
            }
            pod_ips.extend(net.additional_ips.iter().map(|p| p.ip.clone()));
        }

        // Volumes and the managed /etc/hosts, before any container starts.
        // configMap and secret contents are re-read at most once a minute (upstream's sync
        // period), or sooner while a volume is failing or the pod changed.
        let pod_dir = self.pod_dir();
        let generation = pod.metadata.resource_version.clone();
        let due = match &self.volumes {
            Some((at, version, result)) => {
                result.is_some() || *version != generation || at.elapsed() >= VOLUME_REFRESH
            }
            None => true,
        };
        if due {
            let volume_sources = self.volume_sources(pod).await?;
            let result = volumes::prepare(&pod_dir, pod, &volume_sources)
                .err()
                .map(|e| e.to_string());
            self.volumes = Some((tokio::time::Instant::now(), generation, result));
        }
        let config_error = self.volumes.as_ref().and_then(|(_, _, r)| r.clone());
        let hosts = pod_dir.join("etc-hosts");
        let hosts_text = spec::etc_hosts(pod, pod_ips.first().map(String::as_str));
        if std::fs::read_to_string(&hosts).ok().as_deref() != Some(hosts_text.as_str()) {
            std::fs::create_dir_all(&pod_dir)
                .and_then(|()| std::fs::write(&hosts, &hosts_text))
                .map_err(|e| SyncError::Io(format!("cannot write {}: {e}", hosts.display())))?;
        }

        let now = now_nanos();
        let mut started_any = false;
        // Init containers, in order: at most one runs at a time.
        let mut initialized = true;
        for c in spec.init_containers.iter().flatten() {
            let latest = containers.get(&c.name).and_then(|l| l.first()).cloned();
            if c.restart_policy.as_deref() == Some("Always") {
                // A sidecar: once running it lets the next init container start, and it is
                // restarted whenever it exits, whatever the pod's restart policy.
                match latest {
                    Some(i) if i.state == RunState::Running => {
                        self.waiting.remove(&c.name);
                        continue;
                    }
                    Some(i) if i.state == RunState::Exited => {
                        self.restart(
                            pod,
                            c,
                            &i,
                            now,
                            &sandbox_id,
                            &sandbox_config,
                            &pod_ips,
                            config_error.as_deref(),
                        )
                        .await?;
                    }
                    other => {
                        let attempt = other.map_or(0, |i| i.attempt + 1);
                        self.start(
                            pod,
                            c,
                            attempt,
                            &sandbox_id,
                            &sandbox_config,
                            &pod_ips,
                            config_error.as_deref(),
                        )
                        .await?;
                    }
                }
                started_any = true;
                initialized = false;
                break;
            }
            match latest {
                Some(i) if i.state == RunState::Exited && i.exit_code == 0 => continue,
                Some(i) if i.state == RunState::Running => {
                    self.waiting.remove(&c.name);
                    initialized = false;
                    break;
                }
                Some(i) if i.state == RunState::Exited => {
                    initialized = false;
                    if restart_policy != "Never" {
                        self.restart(
                            pod,
                            c,
                            &i,
                            now,
                            &sandbox_id,
                            &sandbox_config,
                            &pod_ips,
                            config_error.as_deref(),
                        )
                        .await?;
                        started_any = true;
                    }
                    break;
                }
                other => {
                    initialized = false;
                    let attempt = other.map_or(0, |i| i.attempt + 1);
                    self.start(
                        pod,
                        c,
                        attempt,
                        &sandbox_id,
                        &sandbox_config,
                        &pod_ips,
                        config_error.as_deref(),
                    )
                    .await?;
                    started_any = true;
                    break;
                }
            }
        }
        if initialized {
            for c in &spec.containers {
                let latest = containers.get(&c.name).and_then(|l| l.first()).cloned();
                match latest {
                    Some(i) if i.state == RunState::Running => {
                        self.waiting.remove(&c.name);
                    }
                    Some(i) if i.state == RunState::Exited => {
                        let restart = restart_policy == "Always"
                            || (restart_policy == "OnFailure" && i.exit_code != 0);
                        if restart {
                            self.restart(
                                pod,
                                c,
                                &i,
                                now,
                                &sandbox_id,
                                &sandbox_config,
                                &pod_ips,
                                config_error.as_deref(),
                            )
                            .await?;
                            started_any = true;
                        } else {
                            self.waiting.remove(&c.name);
                        }
                    }
                    other => {
                        let attempt = other.map_or(0, |i| i.attempt + 1);
                        self.start(
                            pod,
                            c,
                            attempt,
                            &sandbox_id,
                            &sandbox_config,
                            &pod_ips,
                            config_error.as_deref(),
                        )
                        .await?;
                        started_any = true;
                    }
                }
            }
        }
        if started_any {
            // Read back what we started, for the status.
            containers = self.observe().await?.1;
        }
        // Keep the newest two instances per container (the current one and the last
        // termination), as upstream's container GC does.
        for list in containers.values_mut() {
            for old in list.iter().skip(2) {
                let _ = self.ctx.cri.remove_container(&old.id).await;
            }
            list.truncate(2);
        }
        // Probes of the running containers; failed liveness/startup probes kill them (the
        // next sync restarts them per the restart policy).
        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
        let kills = self
            .prober
            .run(
                &self.ctx.cri,
                &spec.containers,
                &containers,
                pod_ips.first().map(String::as_str),
                grace,
            )
            .await;
        for kill in kills {
            tracing::info!(pod = %pod_key(pod), container = kill.container, "{}", kill.message);
            self.event(
                pod,
                Some(&kill.container),
                EventType::Normal,
                "Killing",
                kill.message.clone(),
            );
            if let Err(e) = self.ctx.cri.stop_container(&kill.id, kill.grace).await {
                tracing::warn!(pod = %pod_key(pod), container = kill.container, error = %e, "cannot stop the container");
            }
        }
        let mut observed = self.observed(true, pod_ips, containers);
        for c in &spec.containers {
            let Some(latest) = observed.containers.get(&c.name).and_then(|l| l.first()) else {
                continue;
            };
            if latest.state != RunState::Running {
                continue;
            }
            if !self.prober.ready(c, &latest.id) {
                observed.unready.insert(c.name.clone());
            }
            if !self.prober.started(c, &latest.id) {
                observed.not_started.insert(c.name.clone());
            }
        }
        let written = self.write_status(pod, &observed).await?;
        if status::is_terminal(&written) {
            tracing::info!(pod = %pod_key(pod), phase = written, "pod finished; stopping its sandbox");
            let _ = self.ctx.cri.stop_pod_sandbox(&sandbox_id).await;
            return Ok(Next::After(RESYNC_TERMINAL));
        }
        Ok(Next::After(RESYNC))
    }

    fn observed(
        &self,
        sandbox_ready: bool,
        pod_ips: Vec<String>,
        containers: HashMap<String, Vec<Instance>>,
    ) -> Observed {
        Observed {
            sandbox_ready,
            pod_ips,
            containers,
            waiting: self.waiting.clone(),
            host_ips: self.ctx.host_ips.clone(),
            ..Default::default()
        }
    }

    /// Restarts an exited container unless its back-off window is still open.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per kind of container; a struct would only rename them"
    )]
    async fn restart(
        &mut self,
        pod: &Pod,
        c: &Container,
        last: &Instance,
        now: i64,
        sandbox_id: &str,
        sandbox_config: &cri::PodSandboxConfig,
        pod_ips: &[String],
        config_error: Option<&str>,
    ) -> Result<(), SyncError> {
        let key = format!("{}/{}", self.uid, c.name);
        let finished = if last.finished_at > 0 {
            last.finished_at
        } else {
            now
        };
        if self.restarts.in_backoff_since(&key, finished, now) {
            let delay = self.restarts.get(&key).unwrap_or_default();
            if self
                .waiting
                .get(&c.name)
                .is_none_or(|(r, _)| r != "CrashLoopBackOff")
            {
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Warning,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {} in pod {}_{}({})",
                        c.name,
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        self.uid
                    ),
                );
            }
            self.waiting.insert(
                c.name.clone(),
                (
                    "CrashLoopBackOff".into(),
                    format!(
                        "back-off {} restarting failed container={} pod={}_{}({})",
                        go_duration(delay),
                        c.name,
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        self.uid
                    ),
                ),
            );
            return Ok(());
        }
        self.restarts.next(&key, now);
        self.start(
            pod,
            c,
            last.attempt + 1,
            sandbox_id,
            sandbox_config,
            pod_ips,
            config_error,
        )
        .await
    }

    /// Pulls the image if needed, builds the config and creates and starts the container;
    /// failures become the container's waiting reason, as upstream reports them.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per kind of container; a struct would only rename them"
    )]
    async fn start(
        &mut self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        sandbox_id: &str,
        sandbox_config: &cri::PodSandboxConfig,
        pod_ips: &[String],
        config_error: Option<&str>,
    ) -> Result<(), SyncError> {
        let image = c.image.clone().unwrap_or_default();
        if let Err((reason, message)) = self.ensure_image(pod, c, &image, sandbox_config).await {
            if reason == "ImagePullBackOff" {
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Normal,
                    "BackOff",
                    message.clone(),
                );
            } else {
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Warning,
                    "Failed",
                    format!("Error: {reason}"),
                );
            }
            self.waiting.insert(c.name.clone(), (reason, message));
            return Ok(());
        }
        if let Some(message) = config_error {
            self.event(
                pod,
                Some(&c.name),
                EventType::Warning,
                "Failed",
                format!("Error: {message}"),
            );
            self.waiting.insert(
                c.name.clone(),
                ("CreateContainerConfigError".into(), message.to_owned()),
            );
            return Ok(());
        }
        let sources = match self.env_sources(pod, c, pod_ips).await {
            Ok(s) => s,
            Err(e) => return Err(e),
        };
        let env = match env::resolve(pod, c, &sources) {
            Ok(env) => env,
            Err(e) => {
                self.waiting.insert(
                    c.name.clone(),
                    ("CreateContainerConfigError".into(), e.to_string()),
                );
                return Ok(());
            }
        };
        let pod_dir = self.pod_dir();
        let mut mounts = match volumes::mounts(&pod_dir, pod, c) {
            Ok(m) => m,
            Err(e) => {
                self.waiting.insert(
                    c.name.clone(),
                    ("CreateContainerConfigError".into(), e.to_string()),
                );
                return Ok(());
            }
        };
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
        if let Some(path) = spec::termination_message_path(c)
            && !mounts.iter().any(|m| m.container_path == path)
        {
            let file = pod_dir
                .join("containers")
                .join(&c.name)
                .join(attempt.to_string());
            let created = file
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&file, b""));
            if let Err(e) = created {
                return Err(SyncError::Io(format!(
                    "cannot create {}: {e}",
                    file.display()
                )));
            }
            mounts.push(cri::Mount {
                container_path: path,
                host_path: file.to_string_lossy().into_owned(),
                ..Default::default()
            });
        }
        if !host_network && !mounts.iter().any(|m| m.container_path == "/etc/hosts") {
            mounts.push(cri::Mount {
                container_path: "/etc/hosts".into(),
                host_path: pod_dir.join("etc-hosts").to_string_lossy().into_owned(),
                ..Default::default()
            });
        }
        let config = spec::container_config(
            pod,
            c,
            ContainerInputs {
                attempt,
                env: &env,
                mounts,
                node_memory: self.ctx.node_memory,
                min_oom_score_adj: self.ctx.own_oom_score_adj,
            },
        );
        let id = match self
            .ctx
            .cri
            .create_container(sandbox_id, config, sandbox_config.clone())
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.waiting.insert(
                    c.name.clone(),
                    ("CreateContainerError".into(), e.to_string()),
                );
                return Ok(());
            }
        };
        self.event(
            pod,
            Some(&c.name),
            EventType::Normal,
            "Created",
            format!("Created container: {}", c.name),
        );
        if let Err(e) = self.ctx.cri.start_container(&id).await {
            self.event(
                pod,
                Some(&c.name),
                EventType::Warning,
                "Failed",
                format!("Error: {e}"),
            );
            self.waiting
                .insert(c.name.clone(), ("RunContainerError".into(), e.to_string()));
            return Ok(());
        }
        tracing::info!(pod = %pod_key(pod), container = c.name, id, attempt, "container started");
        self.event(
            pod,
            Some(&c.name),
            EventType::Normal,
            "Started",
            format!("Started container {}", c.name),
        );
        self.waiting.remove(&c.name);
        Ok(())
    }

    /// Pulls per `imagePullPolicy`; `Err((reason, message))` as upstream's image manager.
    async fn ensure_image(
        &mut self,
        pod: &Pod,
        c: &Container,
        image: &str,
        sandbox_config: &cri::PodSandboxConfig,
    ) -> Result<(), (String, String)> {
        if image.is_empty() {
            return Err(("InvalidImageName".into(), "Failed to apply default image tag \"\": couldn't parse image name \"\": invalid reference format".into()));
        }
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| default_pull_policy(image).into());
        let present = match self.ctx.cri.image_status(image).await {
            Ok(p) => p.is_some(),
            Err(e) => return Err(("ErrImagePull".into(), e.to_string())),
        };
        match policy.as_str() {
            "Never" if !present => {
                return Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image {image:?} is not present with pull policy of Never"),
                ));
            }
            "Never" | "IfNotPresent" if present => {
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Normal,
                    "Pulled",
                    format!("Container image {image:?} already present on machine"),
                );
                return Ok(());
            }
            _ => {}
        }
        let key = format!("{}/{image}", self.uid);
        let now = now_nanos();
        if self.pulls.in_backoff_since_update(&key, now) {
            return Err((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image {image:?}"),
            ));
        }
        self.event(
            pod,
            Some(&c.name),
            EventType::Normal,
            "Pulling",
            format!("Pulling image {image:?}"),
        );
        let auth = self.pull_credentials(pod, image).await;
        let started = std::time::Instant::now();
        match self
            .ctx
            .cri
            .pull_image(image, auth, Some(sandbox_config.clone()))
            .await
        {
            Ok(_) => {
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Normal,
                    "Pulled",
                    format!(
                        "Successfully pulled image {image:?} in {:?}",
                        started.elapsed()
                    ),
                );
                Ok(())
            }
            Err(e) => {
                self.pulls.next(&key, now);
                let message = match &e {
                    crate::cri::Error::Call { status, .. } => status.message().to_owned(),
                    other => other.to_string(),
                };
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Warning,
                    "Failed",
                    format!("Failed to pull image {image:?}: {message}"),
                );
                Err(("ErrImagePull".into(), message))
            }
        }
    }

    async fn env_sources(
        &self,
        pod: &Pod,
        c: &Container,
        pod_ips: &[String],
    ) -> Result<env::Sources, SyncError> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let (cms, secrets) = env::referenced(c);
        let services = if pod.spec.as_ref().and_then(|s| s.enable_service_links) != Some(false) {
            self.service_env(&namespace).await?
        } else {
            Vec::new()
        };
        let mut sources = env::Sources {
            services,
            pod_ips: pod_ips.to_vec(),
            host_ips: self.ctx.host_ips.clone(),
            node_cpu_milli: self.ctx.node_cpu_milli,
            node_memory: self.ctx.node_memory,
            ..Default::default()
        };
        for name in cms {
            let data = self.config_map(&namespace, &name).await?.map(|d| {
                d.into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                    .collect()
            });
            sources.config_maps.insert(name, data);
        }
        for name in secrets {
            let data = self.secret(&namespace, &name).await?;
            sources.secrets.insert(name, data);
        }
        Ok(sources)
    }

    /// Credentials for `image` from the pod's `imagePullSecrets` (missing secrets are skipped,
    /// as upstream does, and the pull then runs anonymously).
    async fn pull_credentials(&self, pod: &Pod, image: &str) -> Option<cri::AuthConfig> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let mut secrets = Vec::new();
        for reference in pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten())
        {
            match self.secret(&namespace, &reference.name).await {
                Ok(Some(data)) => secrets.push(data),
                Ok(None) => tracing::warn!(
                    pod = %pod_key(pod),
                    secret = reference.name,
                    "image pull secret not found; pulling without it"
                ),
                Err(e) => {
                    tracing::warn!(pod = %pod_key(pod), error = %e, "cannot read an image pull secret")
                }
            }
        }
        super::pull_secrets::credentials(image, &secrets)
    }

    /// Service link variables: the namespace's services, plus the `kubernetes` service of
    /// `default` (as upstream's kubelet adds for every namespace).
    async fn service_env(&self, namespace: &str) -> Result<Vec<(String, String)>, SyncError> {
        let api: Api<Service> = Api::namespaced(self.ctx.client.clone(), namespace);
        let mut services = api
            .list(&Default::default())
            .await
            .map_err(|e| SyncError::Api(format!("list services in {namespace}"), e))?
            .items;
        if namespace != "default" {
            let default: Api<Service> = Api::namespaced(self.ctx.client.clone(), "default");
            if let Some(kubernetes) = default
                .get_opt("kubernetes")
                .await
                .map_err(|e| SyncError::Api("get service default/kubernetes".into(), e))?
            {
                services.retain(|s| s.metadata.name.as_deref() != Some("kubernetes"));
                services.push(kubernetes);
            }
        }
        Ok(env::service_env(&services))
    }

    async fn volume_sources(&self, pod: &Pod) -> Result<volumes::VolumeSources, SyncError> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let (cms, secrets) = volumes::referenced(pod);
        let mut sources = volumes::VolumeSources::default();
        for name in cms {
            let data = self.config_map(&namespace, &name).await?;
            sources.config_maps.insert(name, data);
        }
        for name in secrets {
            let data = self.secret(&namespace, &name).await?;
            sources.secrets.insert(name, data);
        }
        Ok(sources)
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, SyncError> {
        let api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), namespace);
        let cm = api
            .get_opt(name)
            .await
            .map_err(|e| SyncError::Api(format!("get configmap {namespace}/{name}"), e))?;
        Ok(cm.map(|cm| {
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            data.extend(
                cm.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            data
        }))
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, SyncError> {
        let api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), namespace);
        let s = api
            .get_opt(name)
            .await
            .map_err(|e| SyncError::Api(format!("get secret {namespace}/{name}"), e))?;
        Ok(s.map(|s| {
            let mut data: BTreeMap<String, Vec<u8>> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            data.extend(
                s.string_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes())),
            );
            data
        }))
    }

    /// Computes and writes the status when it changed; returns the phase written.
    async fn write_status(&mut self, pod: &Pod, observed: &Observed) -> Result<String, SyncError> {
        let status = status::pod_status(pod, observed, Timestamp::now());
        let phase = status.phase.clone().unwrap_or_default();
        let value = serde_json::to_value(&status)
            .map_err(|e| SyncError::Io(format!("cannot encode the pod status: {e}")))?;
        let current = pod
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok());
        if self.last_status.as_ref() == Some(&value) && current.as_ref() == Some(&value) {
            return Ok(phase);
        }
        if current.as_ref() == Some(&value) {
            self.last_status = Some(value);
            return Ok(phase);
        }
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = pod.metadata.name.clone().unwrap_or_default();
        let patch = serde_json::json!({ "metadata": { "uid": self.uid }, "status": value });
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| SyncError::Api(format!("update status of pod {}", pod_key(pod)), e))?;
        self.last_status = Some(value);
        Ok(phase)
    }

    /// Graceful termination of a pod being deleted; `true` once the object is gone.
    async fn terminate(&mut self, pod: &Pod) -> bool {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        tracing::info!(pod = %pod_key(pod), grace, "terminating pod");
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            self.event(
                pod,
                Some(&c.name),
                EventType::Normal,
                "Killing",
                format!("Stopping container {}", c.name),
            );
        }
        if !self.kill_all(Some(grace)).await {
            return false;
        }
        // Final status: every container terminated.
        if let Ok((_, containers)) = self.observe().await {
            let observed = self.observed(false, vec![], containers);
            self.waiting.clear();
            let _ = self.write_status(pod, &observed).await;
        }
        if let Err(e) = self.remove_all_by_uid().await {
            tracing::warn!(pod = %pod_key(pod), error = %e, "cannot remove the pod's sandbox");
            return false;
        }
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)
            .await
        {
            Ok(_) => true,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => true,
            Err(e) => {
                tracing::warn!(pod = %pod_key(pod), error = %e, "cannot delete the pod object");
                false
            }
        }
    }

    /// Stops every container (in parallel, SIGTERM then SIGKILL after `grace`, or each
    /// container's recorded grace period), then the sandboxes. `true` when all stopped.
    async fn kill_all(&mut self, grace: Option<i64>) -> bool {
        let containers = match self.ctx.cri.list_containers(self.labels()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(uid = self.uid, error = %e, "cannot list the pod's containers");
                return false;
            }
        };
        let stops = containers
            .iter()
            .filter(|c| {
                c.state == cri::ContainerState::ContainerRunning as i32
                    || c.state == cri::ContainerState::ContainerCreated as i32
            })
            .map(|c| {
                let timeout = grace
                    .or_else(|| {
                        c.annotations
                            .get(spec::ANNOTATION_GRACE)
                            .and_then(|g| g.parse().ok())
                    })
                    .unwrap_or(30)
                    .max(0);
                let cri = self.ctx.cri.clone();
                let id = c.id.clone();
                async move { cri.stop_container(&id, timeout).await }
            });
        let mut ok = true;
        for r in futures::future::join_all(stops).await {
            if let Err(e) = r
                && e.code() != Some(tonic::Code::NotFound)
            {
                tracing::warn!(uid = self.uid, error = %e, "cannot stop a container");
                ok = false;
            }
        }
        if grace.is_none() {
            // The pod is gone from the API: remove everything now.
            let _ = self.remove_all_by_uid().await;
        }
        ok
    }

    async fn remove_all_by_uid(&mut self) -> Result<(), crate::cri::Error> {
        for s in self.ctx.cri.list_pod_sandboxes(self.labels()).await? {
            self.ctx.cri.stop_pod_sandbox(&s.id).await?;
            self.ctx.cri.remove_pod_sandbox(&s.id).await?;
        }
        if let Err(e) = volumes::cleanup(&self.pod_dir()) {
            tracing::warn!(uid = self.uid, error = %e, "cannot remove the pod directory");
        }
        remove_pod_cgroups(&self.uid);
        self.restarts.forget_prefix(&self.uid);
        self.pulls.forget_prefix(&self.uid);
        Ok(())
    }
}

/// Removes the pod's (empty) cgroup directories runc left under `/kubepods` (cgroup v1: one
/// per hierarchy; v2: one).
pub fn remove_pod_cgroups(uid: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = hierarchies.flatten().map(|e| e.path()).collect();
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    for root in roots {
        for qos in ["", "burstable", "besteffort"] {
            let dir = root.join("kubepods").join(qos).join(format!("pod{uid}"));
            if dir.is_dir() {
                // Children first (container cgroups runc did not remove).
                if let Ok(children) = std::fs::read_dir(&dir) {
                    for child in children.flatten() {
                        if child.path().is_dir() {
                            let _ = std::fs::remove_dir(child.path());
                        }
                    }
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

/// Upstream's default pull policy: Always for `:latest` or untagged images, else IfNotPresent.
pub fn default_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// A Go-style duration (`10s`, `1m20s`, `5m0s`) as upstream's messages print it.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
    }
}

fn instance(c: &cri::Container, s: &cri::ContainerStatus) -> Instance {
    let state = match cri::ContainerState::try_from(s.state) {
        Ok(cri::ContainerState::ContainerCreated) => RunState::Created,
        Ok(cri::ContainerState::ContainerRunning) => RunState::Running,
        Ok(cri::ContainerState::ContainerExited) => RunState::Exited,
        _ => RunState::Unknown,
    };
    Instance {
        id: c.id.clone(),
        attempt: c.metadata.as_ref().map_or(0, |m| m.attempt),
        state,
        created_at: s.created_at,
        started_at: s.started_at,
        finished_at: s.finished_at,
        exit_code: s.exit_code,
        reason: s.reason.clone(),
        message: if state == RunState::Exited {
            let own = spec::termination_message(s);
            if own.is_empty() {
                s.message.clone()
            } else {
                own
            }
        } else {
            s.message.clone()
        },
        image: s
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .filter(|i| !i.starts_with("sha256:"))
            .unwrap_or_default(),
        image_ref: if s.image_ref.is_empty() {
            c.image_ref.clone()
        } else {
            s.image_ref.clone()
        },
    }
}

/// `namespace/name` for logs.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Why a sync stopped early (it is retried at the next tick).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The runtime failed.
    #[error(transparent)]
    Cri(#[from] crate::cri::Error),
    /// An API call failed.
    #[error("{0}: {1}")]
    Api(String, #[source] kube::Error),
    /// A local file operation failed.
    #[error("{0}")]
    Io(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_and_untagged_images_are_always_pulled() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("registry:5000/busybox"), "Always");
        assert_eq!(
            default_pull_policy("registry:5000/busybox:1.36"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
