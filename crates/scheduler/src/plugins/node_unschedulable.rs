//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take no new pods unless the pod
//! tolerates the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use std::sync::Arc;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, Handle, NodeInfo, Plugin,
    PodInfo, Status,
};

/// The plugin's name.
pub const NAME: &str = "NodeUnschedulable";
/// Upstream's reason.
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// The taint a cordoned node implies.
pub const TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

/// The plugin.
#[derive(Debug, Default)]
pub struct NodeUnschedulable;

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeUnschedulable))
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Node, ActionType::Add),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateTaint),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateCondition),
        ]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::unresolvable("node not found");
        };
        let unschedulable = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
        if !unschedulable {
            return Status::success();
        }
        let taint = k8s_openapi::api::core::v1::Taint {
            key: TAINT_KEY.to_owned(),
            effect: "NoSchedule".to_owned(),
            value: None,
            time_added: None,
        };
        let tolerated = pod.pod.spec.as_ref().is_some_and(|s| {
            crate::plugins::taint_toleration::tolerations_tolerate(
                s.tolerations.as_deref().unwrap_or_default(),
                &taint,
            )
        });
        if tolerated {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_UNSCHEDULABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};

    #[test]
    fn cordoned_nodes_reject_unless_tolerated() {
        let state = CycleState::default();
        let cordoned = node_info(NodeBuilder::new("n").unschedulable().build(), &[]);
        let open = node_info(NodeBuilder::new("n").build(), &[]);
        let plain = PodInfo::new(Arc::new(PodBuilder::new("p").build()));
        let tolerant = PodInfo::new(Arc::new(
            PodBuilder::new("p")
                .toleration(TAINT_KEY, "Exists", "", "NoSchedule")
                .build(),
        ));
        assert!(NodeUnschedulable.filter(&state, &plain, &open).is_success());
        let s = NodeUnschedulable.filter(&state, &plain, &cordoned);
        assert_eq!(s.reasons, [ERR_REASON_UNSCHEDULABLE]);
        assert!(
            NodeUnschedulable
                .filter(&state, &tolerant, &cordoned)
                .is_success()
        );
    }
}
