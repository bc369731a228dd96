//! NodeName: a pod that names a node in `spec.nodeName` fits only there. (The scheduler only
//! sees unassigned pods, so this matters for preemption simulations and nominated nodes.)

use std::sync::Arc;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, Handle, NodeInfo, Plugin,
    PodInfo, Status,
};

/// The plugin's name.
pub const NAME: &str = "NodeName";
/// Upstream's reason.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// The plugin.
#[derive(Debug, Default)]
pub struct NodeName;

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeName))
}

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(EventResource::Node, ActionType::Add)]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(name) if !name.is_empty() && name != node.name() => {
                Status::unresolvable(ERR_REASON)
            }
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};

    #[test]
    fn only_the_named_node_fits() {
        let node = node_info(NodeBuilder::new("n1").build(), &[]);
        let state = CycleState::default();
        let cases = [(None, true), (Some("n1"), true), (Some("n2"), false)];
        for (name, fits) in cases {
            let mut b = PodBuilder::new("p");
            if let Some(n) = name {
                b = b.node_name(n);
            }
            let pod = PodInfo::new(Arc::new(b.build()));
            let s = NodeName.filter(&state, &pod, &node);
            assert_eq!(s.is_success(), fits, "{name:?}");
            if !fits {
                assert_eq!(s.reasons, [ERR_REASON]);
            }
        }
    }
}
