//! NodeAffinity: a pod runs only on nodes matching its `nodeSelector` and required node
//! affinity, and prefers nodes matching its weighted preferred terms.
//!
//! * **PreFilter** parses the required part once; when every required term names nodes with
//!   `matchFields` `metadata.name In`, the candidate nodes are narrowed to those names. A pod
//!   with neither selector nor required affinity (and no `addedAffinity`) skips Filter.
//! * **Filter** rejects non-matching nodes as unresolvable, checking the scheduler-enforced
//!   `addedAffinity` first.
//! * **PreScore/Score/NormalizeScore** sum the weights of the matching preferred terms (the
//!   pod's and `addedAffinity`'s) and scale them to 0–100.

use std::{collections::BTreeSet, sync::Arc};

use k8s_openapi::api::core::v1::NodeAffinity as ApiNodeAffinity;
use serde::Deserialize;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, Handle, MAX_NODE_SCORE,
    NodeInfo, NodeScore, Plugin, PodInfo, PreFilterPlugin, PreFilterResult, PreScorePlugin,
    ScorePlugin, Snapshot, Status,
    nodeaffinity::{
        OBJECT_NAME_FIELD, ParsedNodeSelector, PreferredTerms, RequiredNodeAffinity,
        pod_preferred_terms,
    },
};

use super::{helper::default_normalize_score, parse_args};

/// The plugin's name.
pub const NAME: &str = "NodeAffinity";
/// Filter: the pod's selector or required affinity does not match.
pub const ERR_REASON_POD: &str = "node(s) didn't match Node's node affinity/selector";
/// Filter: the scheduler-enforced `addedAffinity` does not match.
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";
/// PreFilter: the `metadata.name` terms name no common node.
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";

const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

/// `NodeAffinityArgs` in upstream's JSON shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    added_affinity: Option<ApiNodeAffinity>,
}

/// The plugin.
#[derive(Debug, Default)]
pub struct NodeAffinity {
    added_node_selector: Option<ParsedNodeSelector>,
    added_preferred: Option<PreferredTerms>,
}

/// The factory: validates `NodeAffinityArgs`.
pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeAffinity::from_args(args)?))
}

impl NodeAffinity {
    fn from_args(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let args: Args = parse_args(args)?;
        let _ = (&args.api_version, &args.kind);
        let Some(added) = args.added_affinity else {
            return Ok(Self::default());
        };
        if added
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .is_some_and(|sel| sel.node_selector_terms.is_empty())
        {
            return Err(
                "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term"
                    .to_owned(),
            );
        }
        let preferred = added
            .preferred_during_scheduling_ignored_during_execution
            .as_deref()
            .unwrap_or_default();
        if let Some((i, t)) = preferred
            .iter()
            .enumerate()
            .find(|(_, t)| !(1..=100).contains(&t.weight))
        {
            return Err(format!(
                "addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].weight: Invalid value: {}: must be in the range 1-100",
                t.weight
            ));
        }
        let added_node_selector = match &added.required_during_scheduling_ignored_during_execution {
            Some(sel) => Some(ParsedNodeSelector::parse_strict(sel).map_err(|e| {
                format!("addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.{e}")
            })?),
            None => None,
        };
        let added_preferred = match &added.preferred_during_scheduling_ignored_during_execution {
            Some(terms) => Some(PreferredTerms::new(terms).map_err(|e| {
                format!("addedAffinity.preferredDuringSchedulingIgnoredDuringExecution{e}")
            })?),
            None => None,
        };
        Ok(Self {
            added_node_selector,
            added_preferred,
        })
    }
}

/// What PreFilter keeps for Filter.
#[derive(Debug, Clone)]
struct PreFilterState(RequiredNodeAffinity);

/// What PreScore keeps for Score.
#[derive(Debug, Clone)]
struct PreScoreState(Option<PreferredTerms>);

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Node, ActionType::Add),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateLabel),
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
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

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let spec = pod.pod.spec.as_ref();
        let required = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        let has_selector = spec.is_some_and(|s| s.node_selector.is_some());
        if required.is_none() && self.added_node_selector.is_none() && !has_selector {
            return (None, Status::skip());
        }
        state.write(
            PRE_FILTER_KEY,
            PreFilterState(RequiredNodeAffinity::of_pod(&pod.pod)),
        );
        let Some(required) = required else {
            return (None, Status::success());
        };
        if required.node_selector_terms.is_empty() {
            return (None, Status::success());
        }
        // Terms are ORed: narrowing is only possible when every term names its nodes.
        let mut names: BTreeSet<String> = BTreeSet::new();
        for term in &required.node_selector_terms {
            let mut term_names: Option<BTreeSet<String>> = None;
            for r in term.match_fields.iter().flatten() {
                if r.key == OBJECT_NAME_FIELD && r.operator == "In" {
                    let values: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                    term_names = Some(match term_names {
                        None => values,
                        Some(prev) => prev.intersection(&values).cloned().collect(),
                    });
                }
            }
            let Some(term_names) = term_names else {
                return (None, Status::success());
            };
            names.extend(term_names);
        }
        if names.is_empty() {
            return (None, Status::unresolvable(ERR_REASON_CONFLICT));
        }
        (
            Some(PreFilterResult {
                node_names: Some(names),
            }),
            Status::success(),
        )
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        if let Some(added) = &self.added_node_selector
            && !added.matches(n)
        {
            return Status::unresolvable(ERR_REASON_ENFORCED);
        }
        let matched = match state.read::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => s.0.matches(n),
            // PreFilter disabled: compute here.
            None => RequiredNodeAffinity::of_pod(&pod.pod).matches(n),
        };
        if matched {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        let preferred = match pod_preferred_terms(&pod.pod) {
            Ok(p) => p,
            Err(e) => return Status::error(format!("parsing pod preferred node affinity: {e}")),
        };
        if preferred.is_none() && self.added_preferred.is_none() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState(preferred));
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(n) = node.node() else {
            return (0, Status::error("node not found"));
        };
        let mut count = self.added_preferred.as_ref().map_or(0, |p| p.score(n));
        let own = match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => s.0.as_ref().map_or(0, |p| p.score(n)),
            None => match pod_preferred_terms(&pod.pod) {
                Ok(p) => p.map_or(0, |p| p.score(n)),
                Err(e) => return (0, Status::error(e)),
            },
        };
        count += own;
        (count, Status::success())
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};
    use serde_json::json;

    fn required(terms: serde_json::Value) -> serde_json::Value {
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}})
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> serde_json::Value {
        json!({"key": key, "operator": op, "values": values})
    }

    /// Runs PreFilter then Filter; returns the code and reasons.
    fn check(pl: &NodeAffinity, pod: PodBuilder, node: NodeBuilder) -> (Code, Vec<String>) {
        let pod = pod.info();
        let snap = Snapshot::default();
        let mut state = CycleState::default();
        let (_, s) = pl.pre_filter(&mut state, &pod, &snap);
        if s.is_skip() {
            return (Code::Success, Vec::new());
        }
        if !s.is_success() {
            return (s.code, s.reasons);
        }
        let s = pl.filter(&state, &pod, &node_info(node.build(), &[]));
        (s.code, s.reasons)
    }

    #[test]
    fn filter_follows_upstream_cases() {
        let pl = NodeAffinity::default();
        let fail = (
            Code::UnschedulableAndUnresolvable,
            vec![ERR_REASON_POD.to_owned()],
        );
        let ok = (Code::Success, Vec::new());
        let foo = || NodeBuilder::new("node1").label("foo", "bar");
        type Case = (&'static str, PodBuilder, NodeBuilder, (Code, Vec<String>));
        let cases: Vec<Case> = vec![
            ("no selector", PodBuilder::new("p"), NodeBuilder::new("node1"), ok.clone()),
            (
                "missing labels",
                PodBuilder::new("p").node_selector("foo", "bar"),
                NodeBuilder::new("node1"),
                fail.clone(),
            ),
            ("same labels", PodBuilder::new("p").node_selector("foo", "bar"), foo(), ok.clone()),
            (
                "node labels are superset",
                PodBuilder::new("p").node_selector("foo", "bar"),
                foo().label("baz", "blah"),
                ok.clone(),
            ),
            (
                "node labels are subset",
                PodBuilder::new("p").node_selector("foo", "bar").node_selector("baz", "blah"),
                foo(),
                fail.clone(),
            ),
            (
                "Pod with matchExpressions using In operator that matches the existing node",
                PodBuilder::new("p")
                    .affinity_json(required(json!([{"matchExpressions": [expr("foo", "In", &["bar", "value2"])]}]))),
                foo(),
                ok.clone(),
            ),
            (
                "Pod with matchExpressions using Gt operator that matches the existing node",
                PodBuilder::new("p")
                    .affinity_json(required(json!([{"matchExpressions": [expr("kernel-version", "Gt", &["0204"])]}]))),
                NodeBuilder::new("node1").label("kernel-version", "0206"),
                ok.clone(),
            ),
            (
                "Pod with matchExpressions using NotIn operator that doesn't match the existing node",
                PodBuilder::new("p")
                    .affinity_json(required(json!([{"matchExpressions": [expr("mem-type", "NotIn", &["DDR", "DDR2"])]}]))),
                NodeBuilder::new("node1").label("mem-type", "DDR3"),
                ok.clone(),
            ),
            (
                "Pod with matchExpressions using Exists operator that matches the existing node",
                PodBuilder::new("p")
                    .affinity_json(required(json!([{"matchExpressions": [{"key": "GPU", "operator": "Exists"}]}]))),
                NodeBuilder::new("node1").label("GPU", "NVIDIA-GRID-K1"),
                ok.clone(),
            ),
            (
                "Pod with affinity that don't match node's labels won't schedule onto the node",
                PodBuilder::new("p")
                    .affinity_json(required(json!([{"matchExpressions": [expr("foo", "In", &["value1", "value2"])]}]))),
                foo(),
                fail.clone(),
            ),
            (
                "Pod with empty MatchExpressions is not a valid value will match no objects and won't schedule onto the node",
                PodBuilder::new("p").affinity_json(required(json!([{"matchExpressions": []}]))),
                foo(),
                fail.clone(),
            ),
            (
                "Pod with no Affinity will schedule onto a node",
                PodBuilder::new("p"),
                foo(),
                ok.clone(),
            ),
            (
                "Pod with multiple matchExpressions ANDed that doesn't match the existing node",
                PodBuilder::new("p").affinity_json(required(json!([{"matchExpressions": [
                    {"key": "GPU", "operator": "Exists"},
                    expr("GPU", "NotIn", &["AMD", "INTER"]),
                ]}]))),
                NodeBuilder::new("node1").label("GPU", "AMD"),
                fail.clone(),
            ),
            (
                "Pod with multiple NodeSelectorTerms ORed in affinity, matches the node's labels and will schedule onto the node",
                PodBuilder::new("p").affinity_json(required(json!([
                    {"matchExpressions": [expr("foo", "In", &["bar", "value2"])]},
                    {"matchExpressions": [{"key": "diffkey", "operator": "In", "values": ["wrong", "value2"]}]},
                ]))),
                foo(),
                ok.clone(),
            ),
            (
                "Pod with an Affinity and a PodSpec.NodeSelector(the old thing that we are deprecating) both are satisfied, will schedule onto the node",
                PodBuilder::new("p")
                    .node_selector("foo", "bar")
                    .affinity_json(required(json!([{"matchExpressions": [{"key": "foo", "operator": "Exists"}]}]))),
                foo(),
                ok.clone(),
            ),
            (
                "Pod with an Affinity matches node's labels but the PodSpec.NodeSelector(the old thing that we are deprecating) is not satisfied, won't schedule onto the node",
                PodBuilder::new("p")
                    .node_selector("foo", "bar")
                    .affinity_json(required(json!([{"matchExpressions": [{"key": "foo", "operator": "Exists"}]}]))),
                NodeBuilder::new("node1").label("foo", "barrrrrr"),
                fail.clone(),
            ),
            (
                "Pod with matchFields using In operator that matches the existing node",
                PodBuilder::new("p").affinity_json(required(json!([{"matchFields": [expr("metadata.name", "In", &["node1"])]}]))),
                NodeBuilder::new("node1"),
                ok.clone(),
            ),
            (
                "Pod with matchFields using In operator that does not match the existing node",
                PodBuilder::new("p").affinity_json(required(json!([{"matchFields": [expr("metadata.name", "In", &["node1"])]}]))),
                NodeBuilder::new("node2"),
                fail.clone(),
            ),
            (
                "Pod with two terms: matchFields does not match, but matchExpressions matches",
                PodBuilder::new("p").affinity_json(required(json!([
                    {"matchFields": [expr("metadata.name", "In", &["node1"])]},
                    {"matchExpressions": [expr("foo", "In", &["bar"])]},
                ]))),
                NodeBuilder::new("node2").label("foo", "bar"),
                ok.clone(),
            ),
            (
                "Pod with one term: both matchFields and matchExpressions does not match",
                PodBuilder::new("p").affinity_json(required(json!([
                    {"matchFields": [expr("metadata.name", "In", &["node1"])], "matchExpressions": [expr("foo", "In", &["bar"])]},
                ]))),
                NodeBuilder::new("node2").label("foo", "bar"),
                fail.clone(),
            ),
            (
                "Pod with two terms: both matchFields and matchExpressions match",
                PodBuilder::new("p").affinity_json(required(json!([
                    {"matchFields": [expr("metadata.name", "In", &["node1"])]},
                    {"matchExpressions": [expr("foo", "In", &["bar"])]},
                ]))),
                NodeBuilder::new("node1").label("foo", "bar"),
                ok.clone(),
            ),
            (
                "Pod with two terms of node.Name affinity",
                PodBuilder::new("p").affinity_json(required(json!([
                    {"matchFields": [expr("metadata.name", "In", &["node1"])]},
                    {"matchFields": [expr("metadata.name", "In", &["node2"])]},
                ]))),
                NodeBuilder::new("node2"),
                ok.clone(),
            ),
            (
                "Pod with two conflicting mach field requirements",
                PodBuilder::new("p").affinity_json(required(json!([
                    {"matchFields": [
                        expr("metadata.name", "In", &["node1"]),
                        expr("metadata.name", "In", &["node2"]),
                    ]},
                ]))),
                NodeBuilder::new("node2"),
                (Code::UnschedulableAndUnresolvable, vec![ERR_REASON_CONFLICT.to_owned()]),
            ),
        ];
        for (name, pod, node, want) in cases {
            assert_eq!(check(&pl, pod, node), want, "{name}");
        }
    }

    #[test]
    fn pre_filter_narrows_to_named_nodes() {
        let pl = NodeAffinity::default();
        let snap = Snapshot::default();
        let cases = [
            (
                json!([
                    {"matchFields": [expr("metadata.name", "In", &["node1"])]},
                    {"matchFields": [expr("metadata.name", "In", &["node2"])]},
                ]),
                Some(vec!["node1", "node2"]),
            ),
            (
                json!([
                    {"matchFields": [expr("metadata.name", "In", &["node1"])]},
                    {"matchExpressions": [expr("foo", "In", &["bar"])]},
                ]),
                None,
            ),
            (
                json!([{"matchFields": [
                    expr("metadata.name", "In", &["node1", "node2"]),
                    expr("metadata.name", "In", &["node2", "node3"]),
                ]}]),
                Some(vec!["node2"]),
            ),
        ];
        for (terms, want) in cases {
            let pod = PodBuilder::new("p")
                .affinity_json(required(terms.clone()))
                .info();
            let mut state = CycleState::default();
            let (r, s) = pl.pre_filter(&mut state, &pod, &snap);
            assert!(s.is_success(), "{terms}");
            let got = r.and_then(|r| r.node_names);
            let want = want.map(|w| w.into_iter().map(String::from).collect::<BTreeSet<_>>());
            assert_eq!(got, want, "{terms}");
        }
    }

    #[test]
    fn added_affinity_is_enforced() {
        let pl = NodeAffinity::from_args(Some(&json!({
            "addedAffinity": required(json!([{"matchExpressions": [expr("zone", "In", &["foo"])]}]))["nodeAffinity"],
        })))
        .expect("valid args");
        let pod = || PodBuilder::new("p");
        assert_eq!(
            check(&pl, pod(), NodeBuilder::new("node1").label("zone", "bar")),
            (
                Code::UnschedulableAndUnresolvable,
                vec![ERR_REASON_ENFORCED.to_owned()]
            )
        );
        assert_eq!(
            check(&pl, pod(), NodeBuilder::new("node1").label("zone", "foo")),
            (Code::Success, Vec::new())
        );
        assert_eq!(
            check(
                &pl,
                pod().node_selector("foo", "bar"),
                NodeBuilder::new("node1").label("zone", "foo")
            ),
            (
                Code::UnschedulableAndUnresolvable,
                vec![ERR_REASON_POD.to_owned()]
            )
        );
    }

    #[test]
    fn invalid_args_are_rejected() {
        let cases = [
            (
                json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "foo", "operator": "Bogus"}]}]}}}),
                "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value",
            ),
            (
                json!({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [{"key": "foo", "operator": "In"}]}}]}}),
                "addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values: Required value",
            ),
            (
                json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["x"]}]}]}}}),
                "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key: Invalid value",
            ),
            (
                json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}),
                "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value",
            ),
            (
                json!({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}}]}}),
                "addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
            ),
            (json!({"bogus": 1}), "unknown field `bogus`"),
        ];
        for (args, want) in cases {
            let err = NodeAffinity::from_args(Some(&args)).expect_err("invalid args");
            assert!(err.starts_with(want), "{err}");
        }
    }

    fn preferred(terms: serde_json::Value) -> serde_json::Value {
        json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}})
    }

    fn run_score(pl: &NodeAffinity, pod: PodBuilder, nodes: &[NodeBuilder]) -> Vec<i64> {
        let pod = pod.info();
        let infos: Vec<Arc<NodeInfo>> = nodes
            .iter()
            .map(|n| Arc::new(node_info(n.clone().build(), &[])))
            .collect();
        let mut state = CycleState::default();
        let s = pl.pre_score(&mut state, &pod, &infos, &Snapshot::default());
        if s.is_skip() {
            return vec![0; nodes.len()];
        }
        let mut scores: Vec<NodeScore> = infos
            .iter()
            .map(|n| NodeScore {
                name: n.name().to_owned(),
                score: pl.score(&state, &pod, n).0,
            })
            .collect();
        assert!(pl.normalize(&state, &pod, &mut scores).is_success());
        scores.iter().map(|s| s.score).collect()
    }

    #[test]
    fn score_follows_upstream_cases() {
        let pl = NodeAffinity::default();
        let affinity1 = preferred(
            json!([{"weight": 2, "preference": {"matchExpressions": [expr("foo", "In", &["bar"])]}}]),
        );
        let affinity2 = preferred(json!([
            {"weight": 2, "preference": {"matchExpressions": [expr("foo", "In", &["bar"])]}},
            {"weight": 4, "preference": {"matchExpressions": [expr("key", "In", &["value"])]}},
            {"weight": 5, "preference": {"matchExpressions": [
                expr("foo", "In", &["bar"]),
                expr("key", "In", &["value"]),
                expr("az", "In", &["az1"]),
            ]}},
        ]));
        let label1 = NodeBuilder::new("node1").label("foo", "bar");
        let label2 = NodeBuilder::new("node2").label("key", "value");
        let label3 = NodeBuilder::new("node3").label("az", "az1");
        let label5 = NodeBuilder::new("node5")
            .label("foo", "bar")
            .label("key", "value")
            .label("az", "az1");
        let cases = [
            (
                "all nodes are same priority as NodeAffinity is nil",
                PodBuilder::new("p"),
                vec![label1.clone(), label2.clone(), label3.clone()],
                vec![0, 0, 0],
            ),
            (
                "no node matches preferred scheduling requirements in NodeAffinity of pod so all nodes' priority is zero",
                PodBuilder::new("p").affinity_json(affinity1.clone()),
                vec![label2.clone(), label3.clone()],
                vec![0, 0],
            ),
            (
                "only node1 matches the preferred scheduling requirements of pod",
                PodBuilder::new("p").affinity_json(affinity1),
                vec![label1.clone(), label2.clone(), label3.clone()],
                vec![100, 0, 0],
            ),
            (
                "all nodes matches the preferred scheduling requirements of pod but with different priorities",
                PodBuilder::new("p").affinity_json(affinity2),
                vec![label1.clone(), label5.clone(), label2.clone()],
                vec![18, 100, 36],
            ),
        ];
        for (name, pod, nodes, want) in cases {
            assert_eq!(run_score(&pl, pod, &nodes), want, "{name}");
        }

        let added = NodeAffinity::from_args(Some(&json!({"addedAffinity": preferred(json!([
            {"weight": 3, "preference": {"matchExpressions": [expr("foo", "In", &["bar"])]}},
            {"weight": 5, "preference": {"matchExpressions": [expr("key", "In", &["value"])]}},
        ]))["nodeAffinity"]})))
        .expect("valid args");
        assert_eq!(
            run_score(
                &added,
                PodBuilder::new("p").affinity_json(preferred(json!([
                    {"weight": 2, "preference": {"matchExpressions": [expr("az", "In", &["az1"])]}},
                ]))),
                &[label1, label2, label5]
            ),
            vec![30, 50, 100],
            "Added affinity"
        );
    }

    #[test]
    fn registers_upstreams_events() {
        let want: Vec<ClusterEvent> = [
            (EventResource::Node, ActionType::Add),
            (EventResource::Node, ActionType::UpdateLabel),
        ]
        .into_iter()
        .map(|(r, a)| ClusterEvent::new(r, a))
        .collect();
        assert_eq!(NodeAffinity::default().events_to_register(), want);
    }
}
