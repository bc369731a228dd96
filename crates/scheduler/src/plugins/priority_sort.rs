//! PrioritySort: the active queue pops higher `spec.priority` first, then the pod queued
//! earliest.

use std::sync::Arc;

use crate::framework::{Handle, Plugin, QueueSortPlugin, QueuedPodRef, types::pod_priority};

/// The plugin's name.
pub const NAME: &str = "PrioritySort";

/// The plugin.
#[derive(Debug, Default)]
pub struct PrioritySort;

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(PrioritySort))
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &QueuedPodRef<'_>, b: &QueuedPodRef<'_>) -> bool {
        let (pa, pb) = (pod_priority(a.pod), pod_priority(b.pod));
        pa > pb || (pa == pb && a.timestamp < b.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::PodBuilder;

    #[test]
    fn higher_priority_then_older_first() {
        let high = PodBuilder::new("high").priority(10).build();
        let low = PodBuilder::new("low").priority(1).build();
        let q = |pod, timestamp| QueuedPodRef { pod, timestamp };
        let p = PrioritySort;
        assert!(p.less(&q(&high, 2), &q(&low, 1)));
        assert!(!p.less(&q(&low, 1), &q(&high, 2)));
        assert!(p.less(&q(&low, 1), &q(&low, 2)));
    }
}
