//! The pod status as upstream's kubelet generates it (`generateAPIPodStatus`, `getPhase`,
//! `pkg/kubelet/status/generate.go`), from what CRI reports plus the worker's waiting reasons.
//! Pure: no IO, so every rule is unit-tested.

use std::collections::HashMap;

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
        ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodSpec,
        PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};

/// The runtime state of one container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// The runtime does not know.
    Unknown,
}

/// One container instance (one attempt) as CRI reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The CRI container id.
    pub id: String,
    /// The attempt (restart count when it was created).
    pub attempt: u32,
    /// Its state.
    pub state: RunState,
    /// Nanoseconds since the epoch (0: unknown).
    pub created_at: i64,
    /// Nanoseconds since the epoch (0: not started).
    pub started_at: i64,
    /// Nanoseconds since the epoch (0: not finished).
    pub finished_at: i64,
    /// Exit code when exited.
    pub exit_code: i32,
    /// The runtime's reason (`Completed`, `Error`, `OOMKilled`, `StartError`…).
    pub reason: String,
    /// The runtime's message.
    pub message: String,
    /// The image reference (digest) it runs.
    pub image_ref: String,
    /// The image name as the runtime normalised it (`docker.io/library/busybox:latest`).
    pub image: String,
}

/// What the worker observed of a pod.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Whether a ready sandbox exists.
    pub sandbox_ready: bool,
    /// The sandbox's IPs (first is primary).
    pub pod_ips: Vec<String>,
    /// Instances per container name, newest attempt first.
    pub containers: HashMap<String, Vec<Instance>>,
    /// Waiting reasons and messages the worker recorded (ErrImagePull, CrashLoopBackOff…).
    pub waiting: HashMap<String, (String, String)>,
    /// The node's IPs.
    pub host_ips: Vec<String>,
    /// Running containers their readiness (or startup) probe does not call ready.
    pub unready: std::collections::HashSet<String>,
    /// Running containers whose startup probe has not succeeded yet.
    pub not_started: std::collections::HashSet<String>,
}

fn time(nanos: i64) -> Option<Time> {
    (nanos > 0)
        .then(|| Timestamp::from_nanosecond(i128::from(nanos)).ok())
        .flatten()
        .map(Time)
}

fn terminated(i: &Instance) -> ContainerStateTerminated {
    let reason = if !i.reason.is_empty() {
        i.reason.clone()
    } else if i.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        container_id: Some(format!("containerd://{}", i.id)),
        exit_code: i.exit_code,
        reason: Some(reason),
        message: (!i.message.is_empty()).then(|| i.message.clone()),
        started_at: time(i.started_at),
        finished_at: time(i.finished_at),
        signal: None,
    }
}

/// The status of one container; `initializing` says the pod's init containers have not
/// all completed (regular containers then wait with `PodInitializing`).
pub fn container_status(
    container: &Container,
    instances: &[Instance],
    waiting: Option<&(String, String)>,
    initializing: bool,
) -> ContainerStatus {
    let latest = instances.first();
    let previous = instances.get(1);
    let last_state = |i: Option<&Instance>| {
        i.filter(|i| i.state == RunState::Exited)
            .map(|i| ContainerState {
                terminated: Some(terminated(i)),
                ..Default::default()
            })
            .unwrap_or_default()
    };
    let waiting_state = |reason: &str, message: Option<&str>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }),
        ..Default::default()
    };
    let (state, last) = match (latest, waiting) {
        (Some(i), _) if i.state == RunState::Running => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: time(i.started_at),
                }),
                ..Default::default()
            },
            last_state(previous),
        ),
        (latest, Some((reason, message))) => {
            (waiting_state(reason, Some(message)), last_state(latest))
        }
        (Some(i), None) if i.state == RunState::Exited => (
            ContainerState {
                terminated: Some(terminated(i)),
                ..Default::default()
            },
            last_state(previous),
        ),
        (latest, None) => {
            let reason = if initializing {
                "PodInitializing"
            } else {
                "ContainerCreating"
            };
            (
                waiting_state(reason, None),
                last_state(latest.filter(|i| i.state == RunState::Exited).or(previous)),
            )
        }
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: container.name.clone(),
        image: latest
            .map(|i| i.image.clone())
            .filter(|i| !i.is_empty())
            .or_else(|| container.image.clone())
            .unwrap_or_default(),
        image_id: latest.map(|i| i.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|i| format!("containerd://{}", i.id)),
        restart_count: latest.map_or(0, |i| i32::try_from(i.attempt).unwrap_or(i32::MAX)),
        ready: running,
        started: Some(running),
        state: Some(state),
        last_state: Some(last),
        ..Default::default()
    }
}

/// The phase from the container statuses (upstream's `getPhase`).
pub fn phase(
    spec: &PodSpec,
    init: &[ContainerStatus],
    containers: &[ContainerStatus],
) -> &'static str {
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let find = |list: &[ContainerStatus], name: &str| list.iter().find(|s| s.name == name).cloned();
    let mut pending_init = 0;
    let mut failed_init = 0;
    for c in spec.init_containers.iter().flatten() {
        if c.restart_policy.as_deref() == Some("Always") {
            // Sidecars: started is enough (not run yet by this agent: pending).
            if find(init, &c.name)
                .and_then(|s| s.state)
                .is_none_or(|s| s.running.is_none())
            {
                pending_init += 1;
            }
            continue;
        }
        let Some(status) = find(init, &c.name) else {
            pending_init += 1;
            continue;
        };
        let state = status.state.unwrap_or_default();
        let last = status.last_state.unwrap_or_default();
        if state.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = state.terminated {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if state.waiting.is_some() {
            match last.terminated {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for c in &spec.containers {
        let Some(status) = find(containers, &c.name) else {
            unknown += 1;
            continue;
        };
        let state = status.state.unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if status.last_state.unwrap_or_default().terminated.is_some() {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }
    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || failed_init > 0 || waiting > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if restart_policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// Whether a phase is terminal: the kubelet never leaves it.
pub fn is_terminal(phase: &str) -> bool {
    matches!(phase, "Succeeded" | "Failed")
}

/// The QoS class (upstream's `GetPodQOS`): Guaranteed when every container has CPU and
/// memory limits equal to its requests, BestEffort when none sets any, else Burstable.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.as_ref();
        let requests = r.and_then(|r| r.requests.clone()).unwrap_or_default();
        let limits = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        for name in ["cpu", "memory"] {
            let limit = limits.get(name);
            // A request defaults to the limit when unset.
            let request = requests.get(name).or(limit);
            if request.is_some() || limit.is_some() {
                any = true;
            }
            match (request, limit) {
                (Some(rq), Some(l)) if same_quantity(&rq.0, &l.0) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn same_quantity(a: &str, b: &str) -> bool {
    use tug_apimachinery::quantity::Quantity;
    match (Quantity::parse(a), Quantity::parse(b)) {
        (Ok(a), Ok(b)) => a.milli_value() == b.milli_value(),
        _ => a == b,
    }
}

/// The pod's full status. `previous` is the status the API server holds (for transition
/// times, the scheduler's conditions and the start time); `now` stamps what changes.
pub fn pod_status(pod: &Pod, observed: &Observed, now: Timestamp) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let previous = pod.status.clone().unwrap_or_default();
    let empty = Vec::new();
    let instances = |name: &str| {
        observed
            .containers
            .get(name)
            .map_or(empty.as_slice(), Vec::as_slice)
    };

    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_status(c, instances(&c.name), observed.waiting.get(&c.name), true))
        .collect();
    let initialized_names: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() != Some("Always"))
        .filter(|c| {
            !init_statuses.iter().any(|s| {
                s.name == c.name
                    && s.state
                        .as_ref()
                        .and_then(|st| st.terminated.as_ref())
                        .is_some_and(|t| t.exit_code == 0)
            })
        })
        .map(|c| c.name.clone())
        .collect();
    let initialized = initialized_names.is_empty();
    let mut statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            container_status(
                c,
                instances(&c.name),
                observed.waiting.get(&c.name),
                !initialized,
            )
        })
        .collect();
    for s in &mut statuses {
        if observed.unready.contains(&s.name) {
            s.ready = false;
        }
        if observed.not_started.contains(&s.name) {
            s.started = Some(false);
        }
    }
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    let mut phase = phase(&spec, &init_statuses, &statuses);
    // Terminal phases are final.
    if let Some(old) = previous.phase.as_deref()
        && is_terminal(old)
    {
        phase = if old == "Succeeded" {
            "Succeeded"
        } else {
            "Failed"
        };
    }

    let unready: Vec<String> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.clone())
        .collect();
    let old_conditions = previous.conditions.clone().unwrap_or_default();
    let condition = |type_: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let transition = old_conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        PodCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
            message,
            last_transition_time: Some(transition),
            last_probe_time: None,
            observed_generation: None,
        }
    };
    let completed = phase == "Succeeded";
    let ready_condition = |type_: &str| {
        if completed {
            condition(type_, false, Some("PodCompleted"), None)
        } else if unready.is_empty() {
            condition(type_, true, None, None)
        } else {
            condition(
                type_,
                false,
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        }
    };
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            observed.sandbox_ready && !is_terminal(phase),
            None,
            None,
        ),
        if initialized {
            condition(
                "Initialized",
                true,
                completed
                    .then_some("PodCompleted")
                    .filter(|_| spec.init_containers.as_ref().is_some_and(|i| !i.is_empty())),
                None,
            )
        } else {
            condition(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                Some(format!(
                    "containers with incomplete status: [{}]",
                    initialized_names.join(" ")
                )),
            )
        },
        ready_condition("Ready"),
        ready_condition("ContainersReady"),
    ];
    match old_conditions.iter().find(|c| c.type_ == "PodScheduled") {
        Some(scheduled) => conditions.push(scheduled.clone()),
        None => conditions.push(condition("PodScheduled", true, None, None)),
    }
    // Keep conditions other components own (readiness gates, DisruptionTarget…).
    for c in &old_conditions {
        if !conditions.iter().any(|n| n.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }

    let pod_ips = if observed.pod_ips.is_empty() {
        previous.pod_ips.clone().unwrap_or_default()
    } else {
        observed
            .pod_ips
            .iter()
            .map(|ip| PodIP { ip: ip.clone() })
            .collect()
    };
    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions),
        host_ip: observed.host_ips.first().cloned(),
        host_ips: Some(
            observed
                .host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect(),
        ),
        pod_ip: pod_ips.first().map(|p| p.ip.clone()),
        pod_ips: (!pod_ips.is_empty()).then_some(pod_ips),
        start_time: previous.start_time.clone().or(Some(Time(now))),
        qos_class: Some(qos_class(&spec).to_owned()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ..previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": spec,
        }))
        .expect("pod")
    }

    fn instance(attempt: u32, state: RunState, exit_code: i32) -> Instance {
        Instance {
            id: format!("id{attempt}"),
            attempt,
            state,
            created_at: 1_000_000_000,
            started_at: 2_000_000_000,
            finished_at: if state == RunState::Exited {
                3_000_000_000
            } else {
                0
            },
            exit_code,
            reason: String::new(),
            message: String::new(),
            image_ref: "docker.io/library/busybox@sha256:abc".into(),
            image: "docker.io/library/busybox:latest".into(),
        }
    }

    fn check(pod: &Pod, observed: &Observed) -> PodStatus {
        pod_status(pod, observed, Timestamp::UNIX_EPOCH)
    }

    fn observed(containers: &[(&str, Vec<Instance>)]) -> Observed {
        Observed {
            sandbox_ready: true,
            pod_ips: vec!["10.42.0.7".into()],
            host_ips: vec!["192.168.1.2".into()],
            containers: containers
                .iter()
                .map(|(n, i)| ((*n).to_owned(), i.clone()))
                .collect(),
            waiting: HashMap::new(),
            ..Default::default()
        }
    }

    fn condition(status: &PodStatus, type_: &str) -> (String, Option<String>) {
        let c = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .expect("condition");
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_running_container_makes_a_ready_running_pod() {
        let p = pod(serde_json::json!({"containers": [{"name": "c", "image": "busybox"}]}));
        let s = check(
            &p,
            &observed(&[("c", vec![instance(0, RunState::Running, 0)])]),
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.7"));
        assert_eq!(s.host_ip.as_deref(), Some("192.168.1.2"));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(condition(&s, "Ready"), ("True".into(), None));
        assert_eq!(condition(&s, "PodScheduled"), ("True".into(), None));
        assert_eq!(
            condition(&s, "PodReadyToStartContainers"),
            ("True".into(), None)
        );
        let c = &s.container_statuses.expect("statuses")[0];
        assert!(c.ready);
        assert_eq!(c.container_id.as_deref(), Some("containerd://id0"));
        assert_eq!(c.image_id, "docker.io/library/busybox@sha256:abc");
        assert_eq!(c.image, "docker.io/library/busybox:latest");
    }

    #[test]
    fn a_pod_without_containers_yet_is_pending_and_creating() {
        let p = pod(serde_json::json!({"containers": [{"name": "c", "image": "busybox"}]}));
        let mut o = observed(&[]);
        o.sandbox_ready = false;
        o.pod_ips.clear();
        let s = check(&p, &o);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let c = &s.container_statuses.expect("statuses")[0];
        let waiting = c.state.clone().and_then(|s| s.waiting).expect("waiting");
        assert_eq!(waiting.reason.as_deref(), Some("ContainerCreating"));
        assert_eq!(
            condition(&check(&p, &o), "Ready"),
            ("False".into(), Some("ContainersNotReady".into()))
        );
    }

    #[test]
    fn crash_loop_back_off_keeps_the_pod_running_with_the_last_exit() {
        let p = pod(serde_json::json!({"containers": [{"name": "c", "image": "busybox"}]}));
        let mut o = observed(&[("c", vec![instance(3, RunState::Exited, 1)])]);
        o.waiting.insert(
            "c".into(),
            (
                "CrashLoopBackOff".into(),
                "back-off 40s restarting failed container=c pod=p_default(u)".into(),
            ),
        );
        let s = check(&p, &o);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let c = &s.container_statuses.expect("statuses")[0];
        assert_eq!(c.restart_count, 3);
        let state = c.state.clone().expect("state");
        assert_eq!(
            state.waiting.and_then(|w| w.reason).as_deref(),
            Some("CrashLoopBackOff")
        );
        let last = c
            .last_state
            .clone()
            .and_then(|s| s.terminated)
            .expect("last");
        assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    }

    #[test]
    fn never_pods_end_succeeded_or_failed() {
        let spec = serde_json::json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]});
        let ok = check(
            &pod(spec.clone()),
            &observed(&[("c", vec![instance(0, RunState::Exited, 0)])]),
        );
        assert_eq!(ok.phase.as_deref(), Some("Succeeded"));
        let term = ok.container_statuses.clone().expect("s")[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .expect("terminated");
        assert_eq!(term.reason.as_deref(), Some("Completed"));
        assert_eq!(
            condition(&ok, "Ready"),
            ("False".into(), Some("PodCompleted".into()))
        );
        let bad = check(
            &pod(spec),
            &observed(&[("c", vec![instance(0, RunState::Exited, 2)])]),
        );
        assert_eq!(bad.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn a_failing_readiness_probe_makes_a_running_pod_unready() {
        let p = pod(serde_json::json!({"containers": [{"name": "c", "image": "busybox"}]}));
        let mut o = observed(&[("c", vec![instance(0, RunState::Running, 0)])]);
        o.unready.insert("c".into());
        let s = check(&p, &o);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(
            condition(&s, "Ready"),
            ("False".into(), Some("ContainersNotReady".into()))
        );
        assert!(!s.container_statuses.expect("s")[0].ready);
    }

    #[test]
    fn on_failure_pods_succeed_when_all_exit_zero() {
        let spec = serde_json::json!({"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]});
        let s = check(
            &pod(spec),
            &observed(&[("c", vec![instance(0, RunState::Exited, 0)])]),
        );
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn init_containers_gate_the_pod() {
        let spec = serde_json::json!({
            "initContainers": [{"name": "i1", "image": "busybox"}, {"name": "i2", "image": "busybox"}],
            "containers": [{"name": "c", "image": "busybox"}]});
        let s = check(
            &pod(spec.clone()),
            &observed(&[("i1", vec![instance(0, RunState::Running, 0)])]),
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(
            condition(&s, "Initialized"),
            ("False".into(), Some("ContainersNotInitialized".into()))
        );
        let msg = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Initialized")
            .and_then(|c| c.message.clone());
        assert_eq!(
            msg.as_deref(),
            Some("containers with incomplete status: [i1 i2]")
        );
        let c = &s.container_statuses.expect("s")[0];
        assert_eq!(
            c.state
                .clone()
                .and_then(|s| s.waiting)
                .and_then(|w| w.reason)
                .as_deref(),
            Some("PodInitializing")
        );
        let done = check(
            &pod(spec),
            &observed(&[
                ("i1", vec![instance(0, RunState::Exited, 0)]),
                ("i2", vec![instance(0, RunState::Exited, 0)]),
                ("c", vec![instance(0, RunState::Running, 0)]),
            ]),
        );
        assert_eq!(done.phase.as_deref(), Some("Running"));
        assert_eq!(condition(&done, "Initialized"), ("True".into(), None));
    }

    #[test]
    fn a_failed_init_container_fails_a_never_pod() {
        let spec = serde_json::json!({"restartPolicy": "Never",
            "initContainers": [{"name": "i", "image": "busybox"}],
            "containers": [{"name": "c", "image": "busybox"}]});
        let s = check(
            &pod(spec),
            &observed(&[("i", vec![instance(0, RunState::Exited, 1)])]),
        );
        assert_eq!(s.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn terminal_phases_are_final_and_transition_times_are_kept() {
        let mut p = pod(
            serde_json::json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}),
        );
        let first = check(
            &p,
            &observed(&[("c", vec![instance(0, RunState::Exited, 0)])]),
        );
        p.status = Some(first.clone());
        let later = pod_status(&p, &observed(&[]), Timestamp::from_second(100).expect("t"));
        assert_eq!(later.phase.as_deref(), Some("Succeeded"));
        assert_eq!(later.start_time, first.start_time);
    }

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        let spec = |res: serde_json::Value| -> PodSpec {
            serde_json::from_value(
                serde_json::json!({"containers": [{"name": "c", "resources": res}]}),
            )
            .expect("spec")
        };
        assert_eq!(qos_class(&spec(serde_json::json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&spec(
                serde_json::json!({"limits": {"cpu": "1", "memory": "1Gi"}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(serde_json::json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
    }
}
