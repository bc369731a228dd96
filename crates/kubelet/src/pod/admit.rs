//! Node-side admission of a newly bound pod, as upstream's kubelet re-checks the scheduler's
//! decision: the node's pod capacity and host ports. A rejected pod fails with upstream's reason
//! instead of starting.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Pod;

/// Why a pod was rejected: `(reason, message)` for its status.
pub type Rejection = (String, String);

/// The host ports (protocol, IP, port) a pod asks for.
fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    pod.spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| {
            (
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                p.host_port.unwrap_or(0),
            )
        })
        .collect()
}

/// Checks `pod` against the pods already active on the node.
pub fn admit(pod: &Pod, active: &[Pod], max_pods: usize) -> Result<(), Rejection> {
    if active.len() >= max_pods {
        return Err((
            "OutOfpods".into(),
            format!(
                "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {max_pods}",
                active.len()
            ),
        ));
    }
    let used: HashSet<(String, String, i32)> = active.iter().flat_map(host_ports).collect();
    let conflict = host_ports(pod).into_iter().any(|(proto, ip, port)| {
        used.iter().any(|(p, i, n)| {
            *p == proto && *n == port && (*i == ip || i == "0.0.0.0" || ip == "0.0.0.0")
        })
    });
    if conflict {
        return Err((
            "NodePorts".into(),
            "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports".into(),
        ));
    }
    Ok(())
}

/// Whether this agent has already admitted the pod before (it has container statuses we
/// wrote): then it is not checked again, e.g. after an agent restart.
pub fn needs_admission(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.container_statuses.as_ref()).is_none()
        && status
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|p| p == "Pending")
        && pod.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, host_port: Option<i32>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": host_port}]}]}
        }))
        .expect("pod")
    }

    #[test]
    fn a_taken_host_port_rejects_the_pod_with_node_ports() {
        let active = [pod("a", Some(8080))];
        let (reason, _) = admit(&pod("b", Some(8080)), &active, 110).expect_err("conflict");
        assert_eq!(reason, "NodePorts");
        admit(&pod("c", Some(8081)), &active, 110).expect("free port");
        admit(&pod("d", None), &active, 110).expect("no host port");
    }

    #[test]
    fn a_full_node_rejects_the_pod_with_out_of_pods() {
        let active = [pod("a", None)];
        let (reason, message) = admit(&pod("b", None), &active, 1).expect_err("full");
        assert_eq!(reason, "OutOfpods");
        assert!(message.contains("used: 1, capacity: 1"), "{message}");
    }
}
