//! Pods and pod templates: the `READY 1/2`, `STATUS` and `RESTARTS 3 (5m ago)` logic of
//! `kubectl get pods`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition, PodTemplate};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{self, instant};
use super::{Column, Ctx, Doc, Printer, Row, cells, decode, descriptions as d};

/// The reason the scheduler gives a pod held back by scheduling gates.
const SCHEDULING_GATED: &str = "SchedulingGated";
/// The status reason the node lifecycle controller gives pods of an unreachable node.
const NODE_UNREACHABLE: &str = "NodeLost";

pub(super) static POD: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string(
            "Ready",
            Doc::literal("The aggregate readiness state of this pod for accepting traffic."),
        ),
        Column::string(
            "Status",
            Doc::literal("The aggregate status of the containers in this pod."),
        ),
        Column::string(
            "Restarts",
            Doc::literal(
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
        ),
        Column::age(),
        Column::string("IP", d::POD_IP).wide(),
        Column::string("Node", d::POD_NODE).wide(),
        Column::string("Nominated Node", d::POD_NOMINATED).wide(),
        Column::string("Readiness Gates", d::POD_GATES).wide(),
    ],
    print: print_pod,
};

pub(super) static POD_TEMPLATE: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string(
            "Containers",
            Doc::literal("Names of each container in the template."),
        ),
        Column::string(
            "Images",
            Doc::literal("Images referenced by each container in the template."),
        ),
        Column::string(
            "Pod Labels",
            Doc::literal("The labels for the pod template."),
        ),
    ],
    print: print_pod_template,
};

/// Whether an init container is a sidecar (`restartPolicy: Always`); an unknown one is not.
fn is_sidecar(container: Option<&&Container>) -> bool {
    container.and_then(|c| c.restart_policy.as_deref()) == Some("Always")
}

/// When a container last terminated, if it ever did.
fn last_termination(status: &ContainerStatus) -> Option<Timestamp> {
    let terminated = status.last_state.as_ref()?.terminated.as_ref()?;
    instant(terminated.finished_at.as_ref())
}

/// Whether a condition of `type_` is present with status `True`; only the first of that type
/// counts.
fn condition_true(conditions: &[PodCondition], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .is_some_and(|c| c.status == "True")
}

fn print_pod(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let pod: Pod = decode(object)?;
    let spec = pod.spec.unwrap_or_default();
    let status = pod.status.unwrap_or_default();
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();
    let init_statuses = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    let container_statuses = status.container_statuses.as_deref().unwrap_or_default();

    let phase = status.phase.clone().unwrap_or_default();
    let mut reason = match status.reason.as_deref() {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => phase.clone(),
    };
    if conditions
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some(SCHEDULING_GATED))
    {
        reason = SCHEDULING_GATED.to_owned();
    }

    // Later specs of a duplicated name win, as in upstream's map.
    let init_by_name: BTreeMap<&str, &Container> = init_containers
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let total = spec.containers.len()
        + init_containers
            .iter()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"))
            .count();
    let mut ready = 0;
    let mut restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut sidecar_restarts: i64 = 0;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let mut initializing = false;
    for (i, cs) in init_statuses.iter().enumerate() {
        restarts += i64::from(cs.restart_count);
        last_restart = last_restart.max(last_termination(cs));
        let sidecar = is_sidecar(init_by_name.get(cs.name.as_str()));
        if sidecar {
            sidecar_restarts += i64::from(cs.restart_count);
            last_sidecar_restart = last_sidecar_restart.max(last_termination(cs));
        }
        let state = cs.state.clone().unwrap_or_default();
        let waiting_reason = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty());
        match (&state.terminated, waiting_reason) {
            (Some(t), _) if t.exit_code == 0 => continue,
            _ if sidecar && cs.started == Some(true) => {
                if cs.ready {
                    ready += 1;
                }
                continue;
            }
            (Some(t), _) => {
                reason = match t.reason.as_deref() {
                    Some(r) if !r.is_empty() => format!("Init:{r}"),
                    _ => match t.signal {
                        Some(signal) if signal != 0 => format!("Init:Signal:{signal}"),
                        _ => format!("Init:ExitCode:{}", t.exit_code),
                    },
                };
            }
            (None, Some(r)) if r != "PodInitializing" => reason = format!("Init:{r}"),
            _ => reason = format!("Init:{i}/{}", init_containers.len()),
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        // Only sidecars keep running next to the main containers, so only their restarts
        // still count once the pod is initialized.
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in container_statuses.iter().rev() {
            restarts += i64::from(cs.restart_count);
            last_restart = last_restart.max(last_termination(cs));
            let state = cs.state.clone().unwrap_or_default();
            let waiting_reason = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.as_deref())
                .filter(|r| !r.is_empty());
            if let Some(r) = waiting_reason {
                reason = r.to_owned();
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.as_deref() {
                    Some(r) if !r.is_empty() => r.to_owned(),
                    _ => match t.signal {
                        Some(signal) if signal != 0 => format!("Signal:{signal}"),
                        _ => format!("ExitCode:{}", t.exit_code),
                    },
                };
            } else if cs.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true_any(conditions, "Ready") {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }

    if pod.metadata.deletion_timestamp.is_some() {
        if status.reason.as_deref() == Some(NODE_UNREACHABLE) {
            reason = "Unknown".to_owned();
        } else if phase != "Failed" && phase != "Succeeded" {
            reason = "Terminating".to_owned();
        }
    }

    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", format::since(cx.now, Some(t))),
        _ => restarts.to_string(),
    };

    let or_none = |s: Option<&str>| match s {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "<none>".to_owned(),
    };
    let ip = or_none(
        status
            .pod_ips
            .as_ref()
            .and_then(|ips| ips.first())
            .map(|ip| ip.ip.as_str()),
    );
    let node = or_none(spec.node_name.as_deref());
    let nominated = or_none(status.nominated_node_name.as_deref());
    let gates = spec.readiness_gates.as_deref().unwrap_or_default();
    let readiness_gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let passed = gates
            .iter()
            .filter(|g| condition_true(conditions, &g.condition_type))
            .count();
        format!("{passed}/{}", gates.len())
    };

    let mut row = Row::new(cells![
        format::name(&pod.metadata),
        format!("{ready}/{total}"),
        reason,
        restarts,
        format::age(cx.now, &pod.metadata),
        ip,
        node,
        nominated,
        readiness_gates,
    ]);
    match phase.as_str() {
        "Succeeded" => row.conditions.push(json!({
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        })),
        "Failed" => row.conditions.push(json!({
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed.",
        })),
        _ => {}
    }
    Ok(row)
}

/// Whether any condition of `type_` has status `True` (upstream's ready check scans them all).
fn condition_true_any(conditions: &[PodCondition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn print_pod_template(object: &Value, _cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let template: PodTemplate = decode(object)?;
    let spec = template.template.unwrap_or_default();
    let containers = spec.spec.map(|s| s.containers).unwrap_or_default();
    let (names, images) = format::containers(&containers);
    let labels = spec.metadata.and_then(|m| m.labels);
    Ok(Row::new(cells![
        format::name(&template.metadata),
        names,
        images,
        format::label_set(labels.as_ref()),
    ]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Gvk;
    use crate::printers::test_support::print;

    /// Prints a pod from YAML and compares all nine cells (the last four are the wide ones).
    fn check(yaml: &str, expected: serde_json::Value) {
        let (cells, _) = print(Gvk::new("", "v1", "Pod"), yaml);
        assert_eq!(cells, expected, "pod\n{yaml}");
    }

    #[test]
    fn running_pod_counts_ready_containers_and_restarts() {
        check(
            r"
metadata: {name: web, creationTimestamp: '2025-01-01T11:54:57Z'}
spec: {containers: [{name: a}, {name: b}], nodeName: node-1}
status:
  phase: Running
  podIPs: [{ip: 10.42.0.5}, {ip: 'fd00::5'}]
  containerStatuses:
  - {name: a, ready: true, restartCount: 3, state: {running: {}}}
  - {name: b, ready: false, restartCount: 3, state: {running: {}}}
",
            json!([
                "web",
                "1/2",
                "Running",
                "6",
                "5m3s",
                "10.42.0.5",
                "node-1",
                "<none>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn waiting_reason_of_the_first_container_wins() {
        check(
            r"
metadata: {name: crash}
spec: {containers: [{name: a}, {name: b}]}
status:
  phase: Running
  containerStatuses:
  - {name: a, restartCount: 5, state: {waiting: {reason: CrashLoopBackOff}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2025-01-01T11:55:00Z'}}}
  - {name: b, restartCount: 0, state: {terminated: {reason: Error, exitCode: 2}}}
",
            json!([
                "crash",
                "0/2",
                "CrashLoopBackOff",
                "5 (5m ago)",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn terminated_containers_without_reason_show_signal_or_exit_code() {
        let pod = |terminated: &str| {
            format!(
                "
metadata: {{name: p}}
spec: {{containers: [{{name: a}}]}}
status: {{phase: Running, containerStatuses: [{{name: a, restartCount: 0, state: {{terminated: {terminated}}}}}]}}
"
            )
        };
        let (cells, _) = print(
            Gvk::new("", "v1", "Pod"),
            &pod("{exitCode: 137, signal: 9}"),
        );
        assert_eq!(cells[2], "Signal:9");
        let (cells, _) = print(Gvk::new("", "v1", "Pod"), &pod("{exitCode: 3}"));
        assert_eq!(cells[2], "ExitCode:3");
    }

    #[test]
    fn init_containers_show_progress_and_failures() {
        let cases = [
            // The first init container is still running: 0 of 2 done.
            (
                "{running: {}}",
                "{waiting: {reason: PodInitializing}}",
                "Init:0/2",
            ),
            // Done with the first, the second waits on an image.
            (
                "{terminated: {exitCode: 0, reason: Completed}}",
                "{waiting: {reason: ErrImagePull}}",
                "Init:ErrImagePull",
            ),
            // Done with the first, the second is running.
            ("{terminated: {exitCode: 0}}", "{running: {}}", "Init:1/2"),
            // The first failed with a reason, or only an exit code or a signal.
            (
                "{terminated: {exitCode: 1, reason: Error}}",
                "{waiting: {}}",
                "Init:Error",
            ),
            (
                "{terminated: {exitCode: 2}}",
                "{waiting: {}}",
                "Init:ExitCode:2",
            ),
            (
                "{terminated: {exitCode: 0, signal: 15}}",
                "{running: {}}",
                "Init:1/2",
            ),
            (
                "{terminated: {exitCode: 143, signal: 15}}",
                "{waiting: {}}",
                "Init:Signal:15",
            ),
            (
                "{waiting: {reason: CrashLoopBackOff}}",
                "{waiting: {}}",
                "Init:CrashLoopBackOff",
            ),
        ];
        for (first, second, want) in cases {
            let yaml = format!(
                "
metadata: {{name: init}}
spec: {{initContainers: [{{name: i1}}, {{name: i2}}], containers: [{{name: main}}]}}
status:
  phase: Pending
  initContainerStatuses:
  - {{name: i1, restartCount: 0, state: {first}}}
  - {{name: i2, restartCount: 0, state: {second}}}
  containerStatuses:
  - {{name: main, restartCount: 0, state: {{waiting: {{reason: PodInitializing}}}}}}
"
            );
            let (cells, _) = print(Gvk::new("", "v1", "Pod"), &yaml);
            assert_eq!(cells[2], want, "{first} / {second}");
            assert_eq!(cells[1], "0/1");
        }
    }

    #[test]
    fn pod_initializing_shows_once_init_containers_are_done() {
        check(
            r"
metadata: {name: p}
spec: {initContainers: [{name: i}], containers: [{name: main}]}
status:
  phase: Pending
  initContainerStatuses: [{name: i, restartCount: 0, state: {terminated: {exitCode: 0, reason: Completed}}}]
  containerStatuses: [{name: main, restartCount: 0, state: {waiting: {reason: PodInitializing}}}]
",
            json!([
                "p",
                "0/1",
                "PodInitializing",
                "0",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn init_restarts_count_while_initializing_and_are_dropped_after() {
        // Upstream's test7: a restarting init container, restarted 10s ago.
        check(
            r"
metadata: {name: test7}
spec: {initContainers: [{name: i}], containers: [{name: c}]}
status:
  phase: podPhase
  initContainerStatuses:
  - {name: i, restartCount: 3, state: {running: {}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2025-01-01T11:59:50Z'}}}
  containerStatuses: [{name: c, restartCount: 0, state: {waiting: {}}}]
",
            json!([
                "test7",
                "0/1",
                "Init:0/1",
                "3 (10s ago)",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
        // Upstream's test11: once initialized, only the main container's restarts count.
        check(
            r"
metadata: {name: test11}
spec: {initContainers: [{name: i}], containers: [{name: c}]}
status:
  phase: Running
  initContainerStatuses:
  - {name: i, restartCount: 2, state: {terminated: {exitCode: 0}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2025-01-01T11:58:00Z'}}}
  containerStatuses:
  - {name: c, restartCount: 4, state: {running: {}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2025-01-01T11:59:40Z'}}}
",
            json!([
                "test11",
                "0/1",
                "Running",
                "4 (20s ago)",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn restarts_ago_uses_the_latest_termination_of_any_container() {
        // Upstream's test14: 6 restarts 5d ago and 3 restarts 20d ago.
        check(
            r"
metadata: {name: test14, creationTimestamp: '2024-11-01T12:00:00Z'}
spec: {containers: [{name: a}, {name: b}]}
status:
  phase: Running
  containerStatuses:
  - {name: a, ready: true, restartCount: 6, state: {running: {}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2024-12-27T12:00:00Z'}}}
  - {name: b, ready: true, restartCount: 3, state: {running: {}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2024-12-12T12:00:00Z'}}}
",
            json!([
                "test14",
                "2/2",
                "Running",
                "9 (5d ago)",
                "61d",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn sidecars_count_as_containers_and_their_restarts_survive_initialization() {
        // Upstream's restartable-init test2: 2 started sidecars and 1 running container.
        check(
            r"
metadata: {name: test2}
spec:
  initContainers: [{name: s1, restartPolicy: Always}, {name: s2, restartPolicy: Always}]
  containers: [{name: c}]
status:
  phase: Running
  conditions: [{type: Initialized, status: 'True'}]
  initContainerStatuses:
  - {name: s1, ready: false, restartCount: 3, started: true, state: {running: {}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2025-01-01T11:59:50Z'}}}
  - {name: s2, ready: false, restartCount: 0, started: true, state: {running: {}}}
  containerStatuses:
  - {name: c, ready: true, restartCount: 4, state: {running: {}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2025-01-01T11:59:40Z'}}}
",
            json!([
                "test2",
                "1/3",
                "Running",
                "7 (10s ago)",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
        // A sidecar running but not yet started holds initialization at 0 of 2.
        check(
            r"
metadata: {name: test1}
spec:
  initContainers: [{name: s1, restartPolicy: Always}, {name: s2, restartPolicy: Always}]
  containers: [{name: c}]
status:
  phase: Pending
  conditions: [{type: Initialized, status: 'False'}]
  initContainerStatuses:
  - {name: s1, restartCount: 3, started: false, state: {running: {}},
     lastState: {terminated: {exitCode: 1, finishedAt: '2025-01-01T11:59:50Z'}}}
  - {name: s2, restartCount: 0, started: false, state: {waiting: {}}}
  containerStatuses: [{name: c, restartCount: 0, state: {waiting: {}}}]
",
            json!([
                "test1",
                "0/3",
                "Init:0/2",
                "3 (10s ago)",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn completed_pods_show_completed_and_carry_a_row_condition() {
        let (cells, conditions) = print(
            Gvk::new("", "v1", "Pod"),
            r"
metadata: {name: job-x}
spec: {containers: [{name: c}]}
status:
  phase: Succeeded
  containerStatuses: [{name: c, restartCount: 0, state: {terminated: {exitCode: 0, reason: Completed}}}]
",
        );
        assert_eq!((&cells[1], &cells[2]), (&json!("0/1"), &json!("Completed")));
        assert_eq!(
            conditions,
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                    "message": "The pod has completed successfully."}]),
        );
        let (cells, conditions) = print(
            Gvk::new("", "v1", "Pod"),
            r"
metadata: {name: failed}
spec: {containers: [{name: c}]}
status:
  phase: Failed
  containerStatuses: [{name: c, restartCount: 0, state: {terminated: {exitCode: 1, reason: Error}}}]
",
        );
        assert_eq!(cells[2], "Error");
        assert_eq!(conditions[0]["reason"], "Failed");
        assert_eq!(conditions[0]["message"], "The pod failed.");
    }

    #[test]
    fn a_completed_container_next_to_a_running_one_reads_running_or_not_ready() {
        let pod = |conditions: &str| {
            format!(
                "
metadata: {{name: test6}}
spec: {{containers: [{{name: a}}, {{name: b}}]}}
status:
  phase: Running
  conditions: {conditions}
  containerStatuses:
  - {{name: a, ready: true, restartCount: 3, state: {{terminated: {{reason: Completed, exitCode: 0}}}}}}
  - {{name: b, ready: true, restartCount: 3, state: {{running: {{}}}}}}
"
            )
        };
        let (cells, _) = print(Gvk::new("", "v1", "Pod"), &pod("[]"));
        assert_eq!((&cells[1], &cells[2]), (&json!("1/2"), &json!("NotReady")));
        let (cells, _) = print(
            Gvk::new("", "v1", "Pod"),
            &pod("[{type: Ready, status: 'True'}]"),
        );
        assert_eq!(cells[2], "Running");
    }

    #[test]
    fn deletion_shows_terminating_unless_finished_or_node_lost() {
        let pod = |phase: &str, reason: &str| {
            format!(
                "
metadata: {{name: p, deletionTimestamp: '2025-01-01T11:59:50Z'}}
spec: {{containers: [{{name: c}}]}}
status: {{phase: {phase}, reason: '{reason}'}}
"
            )
        };
        let status =
            |phase, reason| print(Gvk::new("", "v1", "Pod"), &pod(phase, reason)).0[2].clone();
        assert_eq!(status("Running", ""), "Terminating");
        assert_eq!(status("Pending", ""), "Terminating");
        assert_eq!(status("Succeeded", ""), "Succeeded");
        assert_eq!(status("Running", "NodeLost"), "Unknown");
    }

    #[test]
    fn pod_reason_and_scheduling_gates_override_the_phase() {
        let (cells, _) = print(
            Gvk::new("", "v1", "Pod"),
            "{metadata: {name: e}, spec: {containers: [{name: c}]}, status: {phase: Failed, reason: Evicted}}",
        );
        assert_eq!(cells[2], "Evicted");
        check(
            r"
metadata: {name: test15}
spec: {containers: [{name: a}, {name: b}]}
status:
  phase: Pending
  conditions: [{type: PodScheduled, status: 'False', reason: SchedulingGated}]
",
            json!([
                "test15",
                "0/2",
                "SchedulingGated",
                "0",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn wide_columns_show_ip_node_nominated_node_and_readiness_gates() {
        check(
            r"
metadata: {name: test1}
spec:
  containers: [{name: a}, {name: b}]
  nodeName: test1
  readinessGates: [{conditionType: condition1}, {conditionType: condition2}, {conditionType: condition3}]
status:
  phase: podPhase
  podIPs: [{ip: 1.1.1.1}, {ip: '2001:db8::'}]
  nominatedNodeName: node1
  conditions: [{type: condition1, status: 'False'}, {type: condition2, status: 'True'}]
  containerStatuses:
  - {name: a, ready: true, restartCount: 3, state: {running: {}}}
  - {name: b, restartCount: 3}
",
            json!([
                "test1",
                "1/2",
                "podPhase",
                "6",
                "<unknown>",
                "1.1.1.1",
                "test1",
                "node1",
                "1/3"
            ]),
        );
    }

    #[test]
    fn pod_templates_list_containers_images_and_labels() {
        let (cells, _) = print(
            Gvk::new("", "v1", "PodTemplate"),
            r"
metadata: {name: tmpl}
template:
  metadata: {labels: {tier: web, app: nginx}}
  spec: {containers: [{name: nginx, image: 'nginx:1.27'}, {name: log, image: busybox}]}
",
        );
        assert_eq!(
            cells,
            json!([
                "tmpl",
                "nginx,log",
                "nginx:1.27,busybox",
                "app=nginx,tier=web"
            ])
        );
    }
}
