//! NodeResourcesBalancedAllocation: favours nodes whose resources would be used evenly after
//! placing the pod. Each scored resource's requested/allocatable fraction (capped at 1) is
//! computed from real requests; the score is `100 × (1 − standard deviation)` of those
//! fractions. Best-effort pods (requesting none of the scored resources) skip scoring, as in
//! upstream, so they do not all pile onto one node.

use std::sync::Arc;

use serde::Deserialize;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, Handle, NodeInfo, Plugin, PodInfo,
    PreScorePlugin, ScorePlugin, Snapshot, Status,
};

use super::{
    node_resources_fit::{
        ResourceAllocationScorer, ResourceSpec, Strategy, default_resources, validate_resources,
    },
    parse_args,
};

/// The plugin's name.
pub const NAME: &str = "NodeResourcesBalancedAllocation";

const PRE_SCORE_KEY: &str = "PreScoreNodeResourcesBalancedAllocation";

/// `NodeResourcesBalancedAllocationArgs` in upstream's JSON shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    resources: Vec<ResourceSpec>,
}

/// The plugin.
#[derive(Debug)]
pub struct BalancedAllocation {
    scorer: ResourceAllocationScorer,
}

/// The factory: defaults (cpu and memory) and validates the arguments (weights must be 1).
pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(BalancedAllocation::from_args(args)?))
}

impl BalancedAllocation {
    fn from_args(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let mut args: Args = parse_args(args)?;
        let _ = (&args.api_version, &args.kind);
        if args.resources.is_empty() {
            args.resources = default_resources();
        }
        for r in &mut args.resources {
            if r.weight == 0 {
                r.weight = 1;
            }
        }
        validate_resources(&args.resources, "resources", 1)?;
        Ok(Self {
            scorer: ResourceAllocationScorer {
                resources: args.resources,
                strategy: Strategy::Balanced,
                use_requested: true,
            },
        })
    }
}

/// The pod's requests of the scored resources.
#[derive(Debug, Clone)]
struct PreScoreState(Vec<i64>);

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Pod, ActionType::Delete),
            // Upstream: Pod/UpdatePodScaleDown.
            ClusterEvent::new(EventResource::Pod, ActionType::UpdatePodSpec),
            ClusterEvent::new(EventResource::Node, ActionType::Add),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateAllocatable),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateTaint),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateLabel),
        ]
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

fn is_best_effort(requests: &[i64]) -> bool {
    requests.iter().all(|r| *r == 0)
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        let requests = self.scorer.pod_requests(pod);
        if is_best_effort(&requests) {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState(requests));
        Status::success()
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => self.scorer.score(node, &s.0),
            None => {
                let requests = self.scorer.pod_requests(pod);
                if is_best_effort(&requests) {
                    return (0, Status::success());
                }
                self.scorer.score(node, &requests)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn node(name: &str, alloc: &[(&str, &str)], pods: &[&[(&str, &str)]]) -> NodeInfo {
        let pods: Vec<Pod> = pods
            .iter()
            .enumerate()
            .map(|(i, c)| PodBuilder::new(&format!("{name}-{i}")).container(c).build())
            .collect();
        node_info(NodeBuilder::new(name).allocatable(alloc).build(), &pods)
    }

    /// Scores, or `None` when PreScore skipped.
    fn scores(pl: &BalancedAllocation, pod: PodBuilder, nodes: &[NodeInfo]) -> Option<Vec<i64>> {
        let pod = pod.info();
        let infos: Vec<Arc<NodeInfo>> = nodes.iter().cloned().map(Arc::new).collect();
        let mut state = CycleState::default();
        let s = pl.pre_score(&mut state, &pod, &infos, &Snapshot::default());
        if s.is_skip() {
            return None;
        }
        assert!(s.is_success());
        Some(infos.iter().map(|n| pl.score(&state, &pod, n).0).collect())
    }

    #[test]
    fn scores_follow_upstream_cases() {
        let pl = BalancedAllocation::from_args(None).expect("defaults are valid");
        let small = [("cpu", "4000"), ("memory", "10000")];
        let wide = [("cpu", "6000"), ("memory", "10000")];
        let big = [("cpu", "10000"), ("memory", "20000")];
        let cpu_only: &[(&str, &str)] = &[("cpu", "3000"), ("memory", "0")];
        let cpu_mem: &[(&str, &str)] = &[("cpu", "3000"), ("memory", "5000")];
        let requesting = || {
            PodBuilder::new("p")
                .container(&[("cpu", "1000"), ("memory", "2000")])
                .container(&[("cpu", "2000"), ("memory", "3000")])
        };
        type Case = (&'static str, PodBuilder, Vec<NodeInfo>, Option<Vec<i64>>);
        let cases: Vec<Case> = vec![
            (
                "nothing scheduled, nothing requested, skip",
                PodBuilder::new("p"),
                vec![node("node1", &small, &[]), node("node2", &small, &[])],
                None,
            ),
            (
                "nothing scheduled, resources requested, differently sized nodes",
                requesting(),
                vec![node("node1", &small, &[]), node("node2", &wide, &[])],
                Some(vec![87, 100]),
            ),
            (
                "resources requested, pods scheduled with resources",
                requesting(),
                vec![
                    node("node1", &big, &[cpu_only]),
                    node("node2", &big, &[cpu_mem]),
                ],
                Some(vec![82, 95]),
            ),
            (
                "resources requested, pods scheduled with resources, differently sized nodes",
                requesting(),
                vec![
                    node("node1", &big, &[cpu_only]),
                    node(
                        "node2",
                        &[("cpu", "10000"), ("memory", "50000")],
                        &[cpu_mem],
                    ),
                ],
                Some(vec![82, 80]),
            ),
            (
                "requested resources at node capacity",
                PodBuilder::new("p").container(cpu_only),
                vec![
                    node("node1", &small, &[cpu_only]),
                    node("node2", &small, &[cpu_mem]),
                ],
                Some(vec![50, 75]),
            ),
            (
                "zero node resources, pods scheduled with resources",
                requesting(),
                vec![
                    node("node1", &[], &[cpu_only]),
                    node("node2", &[], &[cpu_mem]),
                ],
                Some(vec![100, 100]),
            ),
        ];
        for (name, pod, nodes, want) in cases {
            assert_eq!(scores(&pl, pod, &nodes), want, "{name}");
        }
    }

    #[test]
    fn three_resources_use_the_standard_deviation() {
        let pl = BalancedAllocation::from_args(Some(&json!({"resources": [
            {"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}, {"name": "nvidia.com/gpu", "weight": 1}]})))
        .expect("valid args");
        let alloc = [
            ("cpu", "3500"),
            ("memory", "40000"),
            ("nvidia.com/gpu", "8"),
        ];
        let pod = PodBuilder::new("p").container(&[
            ("cpu", "3000"),
            ("memory", "5000"),
            ("nvidia.com/gpu", "1"),
        ]);
        // Fractions 3000/3500, 5000/40000, 1/8: mean 0.369, std 0.346 → 65.
        assert_eq!(
            scores(&pl, pod, &[node("node1", &alloc, &[])]),
            Some(vec![65])
        );
        // An extended resource the pod does not request is left out.
        let pod = PodBuilder::new("p").container(&[("cpu", "3000"), ("memory", "5000")]);
        assert_eq!(
            scores(&pl, pod, &[node("node1", &alloc, &[])]),
            Some(vec![63])
        );
    }

    #[test]
    fn invalid_args_are_rejected() {
        let cases = [
            (
                json!({"resources": [{"name": "cpu", "weight": 2}]}),
                "resources[0].weight: Invalid value: 2: must be 1",
            ),
            (
                json!({"resources": [{"name": "cpu", "weight": 1}, {"name": "cpu", "weight": 1}]}),
                "resources[1].name: Duplicate value: \"cpu\"",
            ),
            (json!({"bogus": true}), "unknown field `bogus`"),
        ];
        for (args, want) in cases {
            let err = BalancedAllocation::from_args(Some(&args)).expect_err("invalid args");
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn registers_upstreams_events() {
        let want: Vec<ClusterEvent> = [
            (EventResource::Pod, ActionType::Delete),
            (EventResource::Pod, ActionType::UpdatePodSpec),
            (EventResource::Node, ActionType::Add),
            (EventResource::Node, ActionType::UpdateAllocatable),
            (EventResource::Node, ActionType::UpdateTaint),
            (EventResource::Node, ActionType::UpdateLabel),
        ]
        .into_iter()
        .map(|(r, a)| ClusterEvent::new(r, a))
        .collect();
        assert_eq!(
            BalancedAllocation::from_args(None)
                .expect("defaults are valid")
                .events_to_register(),
            want
        );
    }
}
