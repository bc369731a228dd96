//! SchedulingGates: a pod with `spec.schedulingGates` stays out of the active queue until the
//! gates are removed (the pod shows `SchedulingGated`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{
    ActionType, ClusterEvent, Code, EventResource, Handle, Plugin, PreEnqueuePlugin, Status,
};

/// The plugin's name.
pub const NAME: &str = "SchedulingGates";

/// The plugin.
#[derive(Debug, Default)]
pub struct SchedulingGates;

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(SchedulingGates))
}

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(
            EventResource::Pod,
            ActionType::UpdatePodSpec,
        )]
    }
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        Some(self)
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        let gates: Vec<&str> = pod
            .spec
            .iter()
            .flat_map(|s| s.scheduling_gates.iter().flatten())
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            Status::success()
        } else {
            Status::new(
                Code::UnschedulableAndUnresolvable,
                vec![format!(
                    "waiting for scheduling gates: [{}]",
                    gates.join(" ")
                )],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::PodBuilder;

    #[test]
    fn gated_pods_wait() {
        let p = SchedulingGates;
        assert!(p.pre_enqueue(&PodBuilder::new("a").build()).is_success());
        let gated = PodBuilder::new("b")
            .scheduling_gate("example.com/foo")
            .build();
        let s = p.pre_enqueue(&gated);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            s.reasons,
            ["waiting for scheduling gates: [example.com/foo]"]
        );
    }
}
