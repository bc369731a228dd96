//! TaintToleration: a pod may not land on a node with a `NoSchedule` or `NoExecute` taint it
//! does not tolerate (unresolvable: preemption cannot remove taints), and prefers nodes with
//! fewer untolerated `PreferNoSchedule` taints (fewest gets 100, most gets 0). Evicting running
//! pods for `NoExecute` taints is the node lifecycle controller's job, not the scheduler's.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, Handle, MAX_NODE_SCORE,
    NodeInfo, NodeScore, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Snapshot, Status,
};

use super::helper::default_normalize_score;

/// The plugin's name.
pub const NAME: &str = "TaintToleration";

const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";
const NO_SCHEDULE: &str = "NoSchedule";
const NO_EXECUTE: &str = "NoExecute";
const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";

/// Filter's reason for `taint` (upstream's exact shape).
pub fn untolerated_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or_default()
    )
}

/// True when `toleration` tolerates `taint` (upstream's `Toleration.ToleratesTaint`): an empty
/// effect or key matches any, operator `Exists` matches any value, `Equal` (or empty) needs
/// equal values.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        "Exists" => true,
        _ => false,
    }
}

/// True when any of `tolerations` tolerates `taint`.
pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// The first taint with an effect accepted by `filter` that no toleration tolerates.
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations_tolerate(tolerations, t))
}

/// The plugin.
#[derive(Debug, Default)]
pub struct TaintToleration;

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(TaintToleration))
}

fn tolerations_of(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

fn taints_of(node: &NodeInfo) -> &[Taint] {
    node.node()
        .and_then(|n| n.spec.as_ref())
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// The pod's tolerations that can tolerate `PreferNoSchedule` taints.
#[derive(Debug, Clone)]
struct PreScoreState(Vec<Toleration>);

fn prefer_no_schedule_tolerations(pod: &PodInfo) -> Vec<Toleration> {
    tolerations_of(pod)
        .iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some(PREFER_NO_SCHEDULE)
            )
        })
        .cloned()
        .collect()
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Node, ActionType::Add),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateTaint),
            // Upstream: Pod/UpdatePodToleration (tolerations may be added to a pending pod).
            ClusterEvent::new(EventResource::Pod, ActionType::UpdatePodSpec),
        ]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if node.node().is_none() {
            return Status::error("invalid nodeInfo");
        }
        match find_untolerated_taint(taints_of(node), tolerations_of(pod), |t| {
            t.effect == NO_SCHEDULE || t.effect == NO_EXECUTE
        }) {
            None => Status::success(),
            Some(taint) => Status::unresolvable(untolerated_reason(taint)),
        }
    }
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        state.write(
            PRE_SCORE_KEY,
            PreScoreState(prefer_no_schedule_tolerations(pod)),
        );
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let computed;
        let tolerations = match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => &s.0,
            None => {
                computed = prefer_no_schedule_tolerations(pod);
                &computed
            }
        };
        let count = taints_of(node)
            .iter()
            .filter(|t| t.effect == PREFER_NO_SCHEDULE && !tolerations_tolerate(tolerations, t))
            .count();
        (count as i64, Status::success())
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};

    type Tol<'a> = (&'a str, &'a str, &'a str, &'a str);
    type TaintSpec<'a> = (&'a str, &'a str, &'a str);

    fn pod(tolerations: &[Tol<'_>]) -> PodInfo {
        let mut b = PodBuilder::new("p");
        for (k, op, v, e) in tolerations {
            b = b.toleration(k, op, v, e);
        }
        b.info()
    }

    fn node(name: &str, taints: &[TaintSpec<'_>]) -> NodeInfo {
        let mut b = NodeBuilder::new(name);
        for (k, v, e) in taints {
            b = b.taint(k, v, e);
        }
        node_info(b.build(), &[])
    }

    #[test]
    fn filter_follows_upstream_cases() {
        type Case = (
            &'static str,
            Vec<Tol<'static>>,
            Vec<TaintSpec<'static>>,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "A pod having no tolerations can't be scheduled onto a node with nonempty taints",
                vec![],
                vec![("dedicated", "user1", "NoSchedule")],
                Some("node(s) had untolerated taint {dedicated: user1}"),
            ),
            (
                "A pod which can be scheduled on a dedicated node assigned to user1 with effect NoSchedule",
                vec![("dedicated", "Equal", "user1", "NoSchedule")],
                vec![("dedicated", "user1", "NoSchedule")],
                None,
            ),
            (
                "A pod which can't be scheduled on a dedicated node assigned to user2 with effect NoSchedule",
                vec![("dedicated", "Equal", "user2", "NoSchedule")],
                vec![("dedicated", "user1", "NoSchedule")],
                Some("node(s) had untolerated taint {dedicated: user1}"),
            ),
            (
                "A pod can be scheduled onto the node, with a toleration uses operator Exists that tolerates the taints on the node",
                vec![("foo", "Exists", "", "NoSchedule")],
                vec![("foo", "bar", "NoSchedule")],
                None,
            ),
            (
                "A pod has multiple tolerations, node has multiple taints, all the taints are tolerated, pod can be scheduled onto the node",
                vec![
                    ("dedicated", "Equal", "user2", "NoSchedule"),
                    ("foo", "Exists", "", "NoSchedule"),
                ],
                vec![
                    ("dedicated", "user2", "NoSchedule"),
                    ("foo", "bar", "NoSchedule"),
                ],
                None,
            ),
            (
                "A pod has a toleration that keys and values match the taint on the node, but (non-empty) effect doesn't match, can't be scheduled onto the node",
                vec![("foo", "Equal", "bar", "PreferNoSchedule")],
                vec![("foo", "bar", "NoSchedule")],
                Some("node(s) had untolerated taint {foo: bar}"),
            ),
            (
                "The pod has a toleration that keys and values match the taint on the node, the effect of toleration is empty, and the effect of taint is NoSchedule. Pod can be scheduled onto the node",
                vec![("foo", "Equal", "bar", "")],
                vec![("foo", "bar", "NoSchedule")],
                None,
            ),
            (
                "The pod has a toleration that key and value don't match the taint on the node, but the effect of taint on node is PreferNoSchedule. Pod can be scheduled onto the node",
                vec![("dedicated", "Equal", "user2", "NoSchedule")],
                vec![("dedicated", "user1", "PreferNoSchedule")],
                None,
            ),
            (
                "The pod has no toleration, but the effect of taint on node is PreferNoSchedule. Pod can be scheduled onto the node",
                vec![],
                vec![("dedicated", "user1", "PreferNoSchedule")],
                None,
            ),
            (
                "A pod without tolerations is kept off a node with a NoExecute taint",
                vec![],
                vec![("node.kubernetes.io/not-ready", "", "NoExecute")],
                Some("node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
            ),
            (
                "An empty key with operator Exists tolerates every taint",
                vec![("", "Exists", "", "")],
                vec![("a", "b", "NoSchedule"), ("c", "", "NoExecute")],
                None,
            ),
        ];
        for (name, tols, taints, want) in cases {
            let s =
                TaintToleration.filter(&CycleState::default(), &pod(&tols), &node("n", &taints));
            match want {
                None => assert!(s.is_success(), "{name}: {s:?}"),
                Some(reason) => {
                    assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{name}");
                    assert_eq!(s.reasons, [reason], "{name}");
                }
            }
        }
    }

    #[test]
    fn score_follows_upstream_cases() {
        type Case = (
            &'static str,
            Vec<Tol<'static>>,
            Vec<Vec<TaintSpec<'static>>>,
            Vec<i64>,
        );
        let cases: Vec<Case> = vec![
            (
                "node with taints tolerated by the pod, gets a higher score than those node with intolerable taints",
                vec![("foo", "Equal", "bar", "PreferNoSchedule")],
                vec![
                    vec![("foo", "bar", "PreferNoSchedule")],
                    vec![("foo", "blah", "PreferNoSchedule")],
                ],
                vec![100, 0],
            ),
            (
                "the nodes that all of their taints are tolerated by the pod, get the same score, no matter how many tolerable taints a node has",
                vec![
                    ("cpu-type", "Equal", "arm64", "PreferNoSchedule"),
                    ("disk-type", "Equal", "ssd", "PreferNoSchedule"),
                ],
                vec![
                    vec![],
                    vec![("cpu-type", "arm64", "PreferNoSchedule")],
                    vec![
                        ("cpu-type", "arm64", "PreferNoSchedule"),
                        ("disk-type", "ssd", "PreferNoSchedule"),
                    ],
                ],
                vec![100, 100, 100],
            ),
            (
                "the more intolerable taints a node has, the lower score it gets.",
                vec![("foo", "Equal", "bar", "PreferNoSchedule")],
                vec![
                    vec![],
                    vec![("cpu-type", "arm64", "PreferNoSchedule")],
                    vec![
                        ("cpu-type", "arm64", "PreferNoSchedule"),
                        ("disk-type", "ssd", "PreferNoSchedule"),
                    ],
                ],
                vec![100, 50, 0],
            ),
            (
                "only taints and tolerations that have effect PreferNoSchedule are checked by prioritizeTaints function",
                vec![
                    ("cpu-type", "Equal", "arm64", "NoSchedule"),
                    ("disk-type", "Equal", "ssd", "NoSchedule"),
                ],
                vec![
                    vec![],
                    vec![("cpu-type", "arm64", "NoSchedule")],
                    vec![
                        ("cpu-type", "arm64", "PreferNoSchedule"),
                        ("disk-type", "ssd", "PreferNoSchedule"),
                    ],
                ],
                vec![100, 100, 0],
            ),
            (
                "Default behaviour No taints and tolerations, lands on node with no taints",
                vec![],
                vec![vec![], vec![("cpu-type", "arm64", "PreferNoSchedule")]],
                vec![100, 0],
            ),
        ];
        for (name, tols, nodes, want) in cases {
            let pod = pod(&tols);
            let infos: Vec<Arc<NodeInfo>> = nodes
                .iter()
                .enumerate()
                .map(|(i, t)| Arc::new(node(&format!("node{i}"), t)))
                .collect();
            let mut state = CycleState::default();
            let pl = TaintToleration;
            assert!(
                pl.pre_score(&mut state, &pod, &infos, &Snapshot::default())
                    .is_success()
            );
            let mut scores: Vec<NodeScore> = infos
                .iter()
                .map(|n| NodeScore {
                    name: n.name().to_owned(),
                    score: pl.score(&state, &pod, n).0,
                })
                .collect();
            assert!(pl.normalize(&state, &pod, &mut scores).is_success());
            let got: Vec<i64> = scores.iter().map(|s| s.score).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn registers_upstreams_events() {
        let want: Vec<ClusterEvent> = [
            (EventResource::Node, ActionType::Add),
            (EventResource::Node, ActionType::UpdateTaint),
            (EventResource::Pod, ActionType::UpdatePodSpec),
        ]
        .into_iter()
        .map(|(r, a)| ClusterEvent::new(r, a))
        .collect();
        assert_eq!(TaintToleration.events_to_register(), want);
    }
}
