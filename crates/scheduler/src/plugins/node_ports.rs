//! NodePorts: a pod asking for host ports fits only on nodes where none of those ports
//! (same protocol and port, on the same or the wildcard address) is already taken. PreFilter
//! collects the pod's host ports once and skips Filter for pods without any.

use std::sync::Arc;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, Handle, NodeInfo, Plugin,
    PodInfo, PreFilterPlugin, PreFilterResult, Snapshot, Status,
    types::{HostPort, pod_host_ports},
};

/// The plugin's name.
pub const NAME: &str = "NodePorts";
/// Upstream's reason.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

const PRE_FILTER_KEY: &str = "PreFilterNodePorts";

/// The pod's host ports.
#[derive(Debug, Clone)]
struct PreFilterState(Vec<HostPort>);

/// The plugin.
#[derive(Debug, Default)]
pub struct NodePorts;

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodePorts))
}

/// True when none of `wanted` conflicts with a port in use on `node`.
pub fn fits_ports(wanted: &[HostPort], node: &NodeInfo) -> bool {
    !wanted
        .iter()
        .any(|w| node.used_ports.iter().any(|u| u.conflicts(w)))
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            // Container ports are immutable, so only deletions free ports.
            ClusterEvent::new(EventResource::Pod, ActionType::Delete),
            ClusterEvent::new(EventResource::Node, ActionType::Add),
            ClusterEvent::new(EventResource::Node, ActionType::Update),
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodePorts {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let ports = pod_host_ports(&pod.pod);
        if ports.is_empty() {
            return (None, Status::skip());
        }
        state.write(PRE_FILTER_KEY, PreFilterState(ports));
        (None, Status::success())
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let computed;
        let wanted = match state.read::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => &s.0,
            None => {
                computed = pod_host_ports(&pod.pod);
                &computed
            }
        };
        if fits_ports(wanted, node) {
            Status::success()
        } else {
            Status::unschedulable(ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};

    type Port<'a> = (&'a str, &'a str, i32);

    fn pod(name: &str, ports: &[Port<'_>]) -> PodBuilder {
        let mut b = PodBuilder::new(name);
        for (proto, ip, port) in ports {
            b = b.host_port(*port, proto, ip);
        }
        b
    }

    #[test]
    fn filter_follows_upstream_cases() {
        let cases: Vec<(&str, Vec<Port<'_>>, Vec<Port<'_>>, bool)> = vec![
            ("nothing running", vec![], vec![], true),
            (
                "other port",
                vec![("UDP", "127.0.0.1", 8080)],
                vec![("UDP", "127.0.0.1", 9090)],
                true,
            ),
            (
                "same udp port",
                vec![("UDP", "127.0.0.1", 8080)],
                vec![("UDP", "127.0.0.1", 8080)],
                false,
            ),
            (
                "same tcp port",
                vec![("TCP", "127.0.0.1", 8080)],
                vec![("TCP", "127.0.0.1", 8080)],
                false,
            ),
            (
                "different host ip",
                vec![("TCP", "127.0.0.1", 8080)],
                vec![("TCP", "127.0.0.2", 8080)],
                true,
            ),
            (
                "different protocol",
                vec![("UDP", "127.0.0.1", 8080)],
                vec![("TCP", "127.0.0.1", 8080)],
                true,
            ),
            (
                "second udp port conflict",
                vec![("UDP", "127.0.0.1", 8000), ("UDP", "127.0.0.1", 8080)],
                vec![("UDP", "127.0.0.1", 8080)],
                false,
            ),
            (
                "first tcp port conflict",
                vec![("TCP", "127.0.0.1", 8001), ("UDP", "127.0.0.1", 8080)],
                vec![("TCP", "127.0.0.1", 8001), ("UDP", "127.0.0.1", 8081)],
                false,
            ),
            (
                "first tcp port conflict due to 0.0.0.0 hostIP",
                vec![("TCP", "0.0.0.0", 8001)],
                vec![("TCP", "127.0.0.1", 8001)],
                false,
            ),
            (
                "TCP hostPort conflict due to 0.0.0.0 hostIP",
                vec![("TCP", "10.0.10.10", 8001), ("TCP", "0.0.0.0", 8001)],
                vec![("TCP", "127.0.0.1", 8001)],
                false,
            ),
            (
                "second tcp port conflict to 0.0.0.0 hostIP",
                vec![("TCP", "127.0.0.1", 8001)],
                vec![("TCP", "0.0.0.0", 8001)],
                false,
            ),
            (
                "second different protocol",
                vec![("UDP", "127.0.0.1", 8001)],
                vec![("TCP", "0.0.0.0", 8001)],
                true,
            ),
            (
                "UDP hostPort conflict due to 0.0.0.0 hostIP",
                vec![("UDP", "127.0.0.1", 8001)],
                vec![("TCP", "0.0.0.0", 8001), ("UDP", "0.0.0.0", 8001)],
                false,
            ),
            (
                "empty host ip binds every address",
                vec![("TCP", "", 8001)],
                vec![("TCP", "127.0.0.1", 8001)],
                false,
            ),
        ];
        for (name, wanted, existing, fits) in cases {
            let p = pod("p", &wanted).info();
            let node = node_info(
                NodeBuilder::new("n").build(),
                &[pod("existing", &existing).build()],
            );
            let mut state = CycleState::default();
            let (_, s) = NodePorts.pre_filter(&mut state, &p, &Snapshot::default());
            if wanted.is_empty() {
                assert!(s.is_skip(), "{name}");
                continue;
            }
            assert!(s.is_success(), "{name}");
            let s = NodePorts.filter(&state, &p, &node);
            if fits {
                assert!(s.is_success(), "{name}: {s:?}");
            } else {
                assert_eq!(s.code, Code::Unschedulable, "{name}");
                assert_eq!(s.reasons, [ERR_REASON], "{name}");
            }
        }
    }

    #[test]
    fn registers_upstreams_events() {
        let want: Vec<ClusterEvent> = [
            (EventResource::Pod, ActionType::Delete),
            (EventResource::Node, ActionType::Add),
            (EventResource::Node, ActionType::Update),
        ]
        .into_iter()
        .map(|(r, a)| ClusterEvent::new(r, a))
        .collect();
        assert_eq!(NodePorts.events_to_register(), want);
    }
}
