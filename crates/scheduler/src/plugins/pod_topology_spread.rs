//! PodTopologySpread: spreads matching pods evenly across topology domains (zones, hosts…).
//!
//! * **PreFilter** turns the pod's `DoNotSchedule` constraints (or the `List` default
//!   constraints when the pod has none) into per-constraint domain counts: for every node that
//!   carries all the constraints' topology keys and passes the constraint's node inclusion
//!   policies (`nodeAffinityPolicy`, default `Honor`: the pod's nodeSelector and required node
//!   affinity; `nodeTaintsPolicy`, default `Ignore`), the matching pods of the pod's namespace
//!   (terminating ones excluded) are counted into the node's domain. The two smallest domains
//!   per constraint are tracked as upstream's "critical paths", so Filter is O(constraints) per
//!   node. The PreFilter extensions keep the counts right while preemption adds and removes pods.
//! * **Filter** rejects a node whose domain would exceed `maxSkew` over the global minimum
//!   (taken as 0 while fewer than `minDomains` domains exist), and a node lacking a topology key
//!   as unresolvable.
//! * **PreScore/Score/NormalizeScore** rank nodes for `ScheduleAnyway` constraints, or for the
//!   default constraints (`defaultingType: System`: hostname maxSkew 3 and zone maxSkew 5).
//!
//! Deviation from upstream: the default constraints' selector is upstream's union of the
//! selectors of the Services, ReplicationControllers, ReplicaSets and StatefulSets selecting
//! the pod, which needs listers Tug's handle does not have. Here a pod "belongs" to a workload
//! when it has an owner reference of kind ReplicaSet, StatefulSet or ReplicationController, and
//! the selector is the pod's own labels (identical for pods of one template). Pods selected only
//! by a Service get no default spreading.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};
use rayon::prelude::*;
use serde::Deserialize;
use tug_apimachinery::labels::Selector;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, Handle, MAX_NODE_SCORE,
    NodeInfo, NodeScore, Plugin, PodInfo, PreFilterExtensions, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin, Snapshot, Status,
    nodeaffinity::RequiredNodeAffinity,
    types::{labels_of, node_labels, to_selector},
};

use super::parse_args;

/// The plugin's name.
pub const NAME: &str = "PodTopologySpread";
/// Filter: placing the pod here would exceed a constraint's maxSkew.
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
/// Filter: the node lacks a constraint's topology key.
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";
const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";

/// `PodTopologySpreadArgs` in upstream's JSON shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    default_constraints: Vec<TopologySpreadConstraint>,
    /// `System` (the default) or `List`.
    #[serde(default)]
    defaulting_type: Option<String>,
}

/// A constraint with its selector parsed and defaults applied.
#[derive(Debug, Clone)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Selector,
    min_domains: i64,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    /// True when `node` counts for this constraint under its node inclusion policies.
    fn includes(&self, required: &RequiredNodeAffinity, pod: &Pod, node: &Node) -> bool {
        (!self.honor_node_affinity || required.matches(node))
            && (!self.honor_node_taints || tolerates_do_not_schedule_taints(pod, node))
    }
}

/// The plugin.
#[derive(Debug)]
pub struct PodTopologySpread {
    /// Default constraints (pod-independent part; the selector is filled per pod).
    default_constraints: Vec<TopologySpreadConstraint>,
    /// `defaultingType: System`.
    system_defaulted: bool,
}

fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    [(LABEL_HOSTNAME, 3), (LABEL_ZONE, 5)]
        .into_iter()
        .map(|(key, skew)| TopologySpreadConstraint {
            topology_key: key.to_owned(),
            max_skew: skew,
            when_unsatisfiable: SCHEDULE_ANYWAY.to_owned(),
            ..Default::default()
        })
        .collect()
}

/// The factory: validates `PodTopologySpreadArgs` as upstream does.
pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(PodTopologySpread::from_args(args)?))
}

impl PodTopologySpread {
    fn from_args(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let args: Args = parse_args(args)?;
        let _ = (&args.api_version, &args.kind);
        let system = match args.defaulting_type.as_deref() {
            None | Some("") | Some("System") => true,
            Some("List") => false,
            Some(other) => {
                return Err(format!(
                    "defaultingType: Unsupported value: {other:?}: supported values: \"List\", \"System\""
                ));
            }
        };
        if system && !args.default_constraints.is_empty() {
            return Err(
                "defaultConstraints: Invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty"
                    .to_owned(),
            );
        }
        let mut seen = HashSet::new();
        for (i, c) in args.default_constraints.iter().enumerate() {
            let path = format!("defaultConstraints[{i}]");
            if c.max_skew <= 0 {
                return Err(format!(
                    "{path}.maxSkew: Invalid value: {}: must be greater than zero",
                    c.max_skew
                ));
            }
            if c.topology_key.is_empty() {
                return Err(format!(
                    "{path}.topologyKey: Required value: can not be empty"
                ));
            }
            if c.when_unsatisfiable != DO_NOT_SCHEDULE && c.when_unsatisfiable != SCHEDULE_ANYWAY {
                return Err(format!(
                    "{path}.whenUnsatisfiable: Unsupported value: {:?}: supported values: \"DoNotSchedule\", \"ScheduleAnyway\"",
                    c.when_unsatisfiable
                ));
            }
            if !seen.insert((c.topology_key.clone(), c.when_unsatisfiable.clone())) {
                return Err(format!(
                    "{path}: Duplicate value: {{{:?}, {:?}}}",
                    c.topology_key, c.when_unsatisfiable
                ));
            }
            if c.label_selector.is_some() {
                return Err(format!(
                    "{path}.labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod"
                ));
            }
        }
        let default_constraints = if system {
            system_default_constraints()
        } else {
            args.default_constraints
        };
        Ok(Self {
            default_constraints,
            system_defaulted: system,
        })
    }

    /// The pod's constraints with `action`, or the default ones when it declares none.
    fn constraints(&self, pod: &Pod, action: &str) -> Result<Vec<Constraint>, String> {
        let own = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if !own.is_empty() {
            return parse_constraints(own, labels_of(pod), action);
        }
        let mut constraints = parse_constraints(&self.default_constraints, labels_of(pod), action)?;
        if constraints.is_empty() {
            return Ok(constraints);
        }
        let Some(selector) = default_selector(pod) else {
            return Ok(Vec::new());
        };
        for c in &mut constraints {
            c.selector = selector.clone();
        }
        Ok(constraints)
    }
}

/// The selector default constraints use for `pod` (see the module docs for the approximation).
fn default_selector(pod: &Pod) -> Option<Selector> {
    let owned = pod.metadata.owner_references.iter().flatten().any(|o| {
        matches!(
            o.kind.as_str(),
            "ReplicaSet" | "StatefulSet" | "ReplicationController"
        )
    });
    let labels = labels_of(pod);
    (owned && !labels.is_empty()).then(|| Selector::from_set(labels))
}

fn parse_constraints(
    constraints: &[TopologySpreadConstraint],
    pod_labels: &BTreeMap<String, String>,
    action: &str,
) -> Result<Vec<Constraint>, String> {
    let mut out = Vec::new();
    for c in constraints
        .iter()
        .filter(|c| c.when_unsatisfiable == action)
    {
        let mut selector = to_selector(c.label_selector.as_ref()).ok_or_else(|| {
            format!(
                "invalid label selector for topology key {:?}",
                c.topology_key
            )
        })?;
        let match_labels: BTreeMap<String, String> = c
            .match_label_keys
            .iter()
            .flatten()
            .filter_map(|k| pod_labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        if !match_labels.is_empty() {
            selector = Selector::from_set(&match_labels)
                .with_requirements(selector.requirements().iter().cloned());
        }
        out.push(Constraint {
            max_skew: i64::from(c.max_skew),
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: i64::from(c.min_domains.unwrap_or(1)),
            honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        });
    }
    Ok(out)
}

/// True when the node carries every constraint's topology key.
fn node_has_all_keys(labels: &BTreeMap<String, String>, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// Pods on `node` in namespace `ns`, not terminating, selected by `selector`.
fn count_matching(node: &NodeInfo, selector: &Selector, ns: &str) -> i64 {
    node.pods
        .iter()
        .filter(|p| {
            p.pod.metadata.deletion_timestamp.is_none()
                && p.pod.metadata.namespace.as_deref().unwrap_or_default() == ns
                && selector.matches(labels_of(&p.pod))
        })
        .count() as i64
}

// ---------------------------------------------------------------------------------------------
// Taint helpers (nodeTaintsPolicy: Honor).

/// Every NoSchedule/NoExecute taint of the node is tolerated by the pod.
fn tolerates_do_not_schedule_taints(pod: &Pod, node: &Node) -> bool {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|taint| crate::plugins::taint_toleration::tolerations_tolerate(tolerations, taint))
}

// ---------------------------------------------------------------------------------------------
// PreFilter state.

/// One of the two smallest domains of a constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CriticalPath {
    value: String,
    count: i64,
}

/// Upstream's `criticalPaths`: the two domains with the fewest matching pods, kept
/// incrementally (exact after PreFilter; the second entry may go stale on updates, as
/// upstream's does).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CriticalPaths([CriticalPath; 2]);

impl Default for CriticalPaths {
    fn default() -> Self {
        let empty = CriticalPath {
            value: String::new(),
            count: i64::from(i32::MAX),
        };
        Self([empty.clone(), empty])
    }
}

impl CriticalPaths {
    fn update(&mut self, value: &str, count: i64) {
        let p = &mut self.0;
        let existing = if p[0].value == value {
            Some(0)
        } else if p[1].value == value {
            Some(1)
        } else {
            None
        };
        match existing {
            Some(i) => {
                p[i].count = count;
                if p[0].count > p[1].count {
                    p.swap(0, 1);
                }
            }
            None if count < p[0].count => {
                p[1] = p[0].clone();
                p[0] = CriticalPath {
                    value: value.to_owned(),
                    count,
                };
            }
            None if count < p[1].count => {
                p[1] = CriticalPath {
                    value: value.to_owned(),
                    count,
                };
            }
            None => {}
        }
    }
}

/// What PreFilter computes for Filter.
#[derive(Debug, Clone, Default)]
struct PreFilterState {
    constraints: Arc<Vec<Constraint>>,
    /// The pod's nodeSelector and required node affinity.
    required: Arc<RequiredNodeAffinity>,
    /// Per constraint: domain value → matching pods.
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: the two smallest domains.
    critical: Vec<CriticalPaths>,
}

impl PreFilterState {
    fn min_match(&self, i: usize) -> i64 {
        let c = &self.constraints[i];
        if (self.counts[i].len() as i64) < c.min_domains {
            return 0;
        }
        self.critical[i].0[0].count
    }

    fn update_with_pod(&mut self, pod: &PodInfo, updated: &PodInfo, node: &NodeInfo, delta: i64) {
        let Some(n) = node.node() else { return };
        if updated.pod.metadata.namespace != pod.pod.metadata.namespace {
            return;
        }
        let labels = node_labels(n);
        if !node_has_all_keys(labels, &self.constraints) {
            return;
        }
        let pod_labels = labels_of(&updated.pod);
        for (i, c) in self.constraints.iter().enumerate() {
            if !c.selector.matches(pod_labels) || !c.includes(&self.required, &pod.pod, n) {
                continue;
            }
            let Some(value) = labels.get(&c.topology_key) else {
                continue;
            };
            let count = self.counts[i].entry(value.clone()).or_default();
            *count += delta;
            let count = *count;
            self.critical[i].update(value, count);
        }
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Pod, ActionType::All),
            ClusterEvent::new(EventResource::Node, ActionType::Add),
            ClusterEvent::new(EventResource::Node, ActionType::Delete),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateLabel),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateTaint),
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

/// Counts for one node: (constraint index, domain value, matching pods).
type NodeCounts = Vec<(usize, String, i64)>;

/// PreFilter's per-constraint domain counts over `nodes` (see the module docs).
fn domain_counts<'a>(
    constraints: &[Constraint],
    pod: &Pod,
    required: &RequiredNodeAffinity,
    nodes: &'a [Arc<NodeInfo>],
) -> Vec<HashMap<String, i64>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let k = constraints.len();
    // Per-thread maps borrowing the node labels; owned keys are made once at the end.
    let add_node = |mut acc: Vec<HashMap<&'a str, i64>>, node: &'a Arc<NodeInfo>| {
        let Some(n) = node.node() else { return acc };
        let labels = node_labels(n);
        if !node_has_all_keys(labels, constraints) {
            return acc;
        }
        let mut affinity_ok = None;
        for (i, c) in constraints.iter().enumerate() {
            if c.honor_node_affinity && !*affinity_ok.get_or_insert_with(|| required.matches(n)) {
                continue;
            }
            if c.honor_node_taints && !tolerates_do_not_schedule_taints(pod, n) {
                continue;
            }
            let Some(value) = labels.get(&c.topology_key) else {
                continue;
            };
            *acc[i].entry(value.as_str()).or_default() += count_matching(node, &c.selector, ns);
        }
        acc
    };
    let init = || vec![HashMap::new(); k];
    let maps: Vec<HashMap<&str, i64>> = if nodes.len() < 256 {
        nodes.iter().fold(init(), add_node)
    } else {
        nodes
            .par_iter()
            .with_min_len(64)
            .fold(init, add_node)
            .reduce(init, |mut a, b| {
                for (into, from) in a.iter_mut().zip(b) {
                    if into.is_empty() {
                        *into = from;
                        continue;
                    }
                    for (v, n) in from {
                        *into.entry(v).or_default() += n;
                    }
                }
                a
            })
    };
    maps.into_iter()
        .map(|m| m.into_iter().map(|(v, n)| (v.to_owned(), n)).collect())
        .collect()
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let constraints = match self.constraints(&pod.pod, DO_NOT_SCHEDULE) {
            Ok(c) => c,
            Err(e) => return (None, Status::error(e)),
        };
        if constraints.is_empty() {
            return (None, Status::skip());
        }
        let required = RequiredNodeAffinity::of_pod(&pod.pod);
        let counts = domain_counts(&constraints, &pod.pod, &required, snapshot.nodes());
        let critical = counts
            .iter()
            .map(|m| {
                let mut cp = CriticalPaths::default();
                for (v, n) in m {
                    cp.update(v, *n);
                }
                cp
            })
            .collect();
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                constraints: Arc::new(constraints),
                required: Arc::new(required),
                counts,
                critical,
            },
        );
        (None, Status::success())
    }

    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}

impl PreFilterExtensions for PodTopologySpread {
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_add: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                s.update_with_pod(pod, pod_to_add, node, 1);
                Status::success()
            }
            None => Status::error(format!(
                "reading {PRE_FILTER_KEY:?} from cycleState: not found"
            )),
        }
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_remove: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                s.update_with_pod(pod, pod_to_remove, node, -1);
                Status::success()
            }
            None => Status::error(format!(
                "reading {PRE_FILTER_KEY:?} from cycleState: not found"
            )),
        }
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error(format!(
                "reading {PRE_FILTER_KEY:?} from cycleState: not found"
            ));
        };
        let labels = node_labels(n);
        let pod_labels = labels_of(&pod.pod);
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.topology_key) else {
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let self_match = i64::from(c.selector.matches(pod_labels));
            let matched = s.counts[i].get(value).copied().unwrap_or(0);
            let skew = matched + self_match - s.min_match(i);
            if skew > c.max_skew {
                return Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

// ---------------------------------------------------------------------------------------------
// Scoring.

/// What PreScore computes for Score.
#[derive(Debug, Clone, Default)]
struct PreScoreState {
    constraints: Vec<Constraint>,
    /// Feasible nodes lacking a topology key: scored 0.
    ignored: HashSet<String>,
    /// Per constraint (not hostname): domain value → matching pods.
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: ln(domains + 2).
    weights: Vec<f64>,
}

fn score_for_count(count: i64, max_skew: i64, weight: f64) -> f64 {
    count as f64 * weight + (max_skew - 1) as f64
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        let all = snapshot.nodes();
        if all.is_empty() {
            return Status::skip();
        }
        let constraints = match self.constraints(&pod.pod, SCHEDULE_ANYWAY) {
            Ok(c) => c,
            Err(e) => return Status::error(e),
        };
        if constraints.is_empty() {
            return Status::skip();
        }
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        let require_all = own || !self.system_defaulted;
        let mut s = PreScoreState {
            counts: vec![HashMap::new(); constraints.len()],
            ..Default::default()
        };
        for node in nodes {
            let Some(n) = node.node() else { continue };
            let labels = node_labels(n);
            if require_all && !node_has_all_keys(labels, &constraints) {
                s.ignored.insert(node.name().to_owned());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == LABEL_HOSTNAME {
                    continue;
                }
                let value = labels.get(&c.topology_key).cloned().unwrap_or_default();
                s.counts[i].entry(value).or_insert(0);
            }
        }
        s.weights = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let size = if c.topology_key == LABEL_HOSTNAME {
                    nodes.len() - s.ignored.len()
                } else {
                    s.counts[i].len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        let ns = pod.pod.metadata.namespace.as_deref().unwrap_or_default();
        let required = RequiredNodeAffinity::of_pod(&pod.pod);
        let per_node = |node: &Arc<NodeInfo>| -> NodeCounts {
            let Some(n) = node.node() else {
                return Vec::new();
            };
            let labels = node_labels(n);
            if require_all && !node_has_all_keys(labels, &constraints) {
                return Vec::new();
            }
            let mut out = Vec::new();
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes(&required, &pod.pod, n) {
                    continue;
                }
                let value = labels
                    .get(&c.topology_key)
                    .map(String::as_str)
                    .unwrap_or("");
                if !s.counts[i].contains_key(value) {
                    continue;
                }
                out.push((i, value.to_owned(), count_matching(node, &c.selector, ns)));
            }
            out
        };
        let found: Vec<NodeCounts> = if all.len() < 256 {
            all.iter().map(per_node).collect()
        } else {
            all.par_iter().with_min_len(64).map(per_node).collect()
        };
        for (i, value, n) in found.into_iter().flatten() {
            *s.counts[i].entry(value).or_default() += n;
        }
        s.constraints = constraints;
        state.write(PRE_SCORE_KEY, s);
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (
                0,
                Status::error(format!(
                    "reading {PRE_SCORE_KEY:?} from cycleState: not found"
                )),
            );
        };
        let Some(n) = node.node() else {
            return (0, Status::error("node not found"));
        };
        if s.ignored.contains(node.name()) {
            return (0, Status::success());
        }
        let labels = node_labels(n);
        let ns = pod.pod.metadata.namespace.as_deref().unwrap_or_default();
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == LABEL_HOSTNAME {
                count_matching(node, &c.selector, ns)
            } else {
                s.counts[i].get(value).copied().unwrap_or(0)
            };
            score += score_for_count(count, c.max_skew, s.weights[i]);
        }
        (score.round() as i64, Status::success())
    }

    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Status::success();
        };
        let mut min = i64::MAX;
        let mut max = 0;
        for sc in scores.iter() {
            if s.ignored.contains(&sc.name) {
                continue;
            }
            min = min.min(sc.score);
            max = max.max(sc.score);
        }
        for sc in scores.iter_mut() {
            if s.ignored.contains(&sc.name) {
                sc.score = 0;
            } else if max == 0 {
                sc.score = MAX_NODE_SCORE;
            } else {
                sc.score = MAX_NODE_SCORE * (max + min - sc.score) / max;
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};
    use serde_json::json;

    fn spread(key: &str, skew: i32, when: &str, selector_key: &str) -> serde_json::Value {
        json!({
            "maxSkew": skew,
            "topologyKey": key,
            "whenUnsatisfiable": when,
            "labelSelector": {"matchExpressions": [{"key": selector_key, "operator": "Exists"}]},
        })
    }

    fn with_constraints(b: PodBuilder, cs: Vec<serde_json::Value>) -> PodBuilder {
        b.spec_json(json!({ "topologySpreadConstraints": cs }))
    }

    fn zone_node(name: &str, zone: &str) -> NodeBuilder {
        NodeBuilder::new(name)
            .label("zone", zone)
            .label("node", name)
    }

    /// Nodes with pods: (node builder, pods on it).
    fn snapshot(nodes: Vec<(NodeBuilder, Vec<Pod>)>) -> Snapshot {
        Snapshot::from_nodes(nodes.into_iter().map(|(n, p)| node_info(n.build(), &p)))
    }

    fn foo_pod(name: &str) -> Pod {
        PodBuilder::new(name).label("foo", "").build()
    }

    fn plugin() -> PodTopologySpread {
        PodTopologySpread::from_args(None).expect("defaults are valid")
    }

    fn run_filter(pod: &PodInfo, snap: &Snapshot) -> BTreeMap<String, Status> {
        let pl = plugin();
        let mut state = CycleState::default();
        let (_, s) = pl.pre_filter(&mut state, pod, snap);
        assert!(s.is_success(), "{s:?}");
        snap.nodes()
            .iter()
            .map(|n| (n.name().to_owned(), pl.filter(&state, pod, n)))
            .collect()
    }

    fn feasible(statuses: &BTreeMap<String, Status>) -> Vec<&str> {
        statuses
            .iter()
            .filter(|(_, s)| s.is_success())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Upstream's standard 4-node, 2-zone layout with the given pod counts per node.
    fn four_nodes(per_node: [usize; 4]) -> Snapshot {
        let names = ["node-a", "node-b", "node-x", "node-y"];
        let zones = ["zone1", "zone1", "zone2", "zone2"];
        snapshot(
            (0..4)
                .map(|i| {
                    let pods = (0..per_node[i])
                        .map(|j| foo_pod(&format!("p-{}{j}", &names[i][5..])))
                        .collect();
                    (zone_node(names[i], zones[i]), pods)
                })
                .collect(),
        )
    }

    #[test]
    fn filter_table() {
        struct Case {
            name: &'static str,
            pod: PodInfo,
            snap: Snapshot,
            want: Vec<&'static str>,
        }
        let zone1 = |skew| {
            with_constraints(
                PodBuilder::new("p").label("foo", ""),
                vec![spread("zone", skew, DO_NOT_SCHEDULE, "foo")],
            )
        };
        let cases = vec![
            Case {
                name: "no existing pods",
                pod: zone1(1).info(),
                snap: four_nodes([0, 0, 0, 0]),
                want: vec!["node-a", "node-b", "node-x", "node-y"],
            },
            Case {
                name: "no existing pods, incoming pod doesn't match itself",
                pod: with_constraints(
                    PodBuilder::new("p"),
                    vec![spread("zone", 1, DO_NOT_SCHEDULE, "foo")],
                )
                .info(),
                snap: four_nodes([0, 0, 0, 0]),
                want: vec!["node-a", "node-b", "node-x", "node-y"],
            },
            Case {
                name: "existing pods in a different namespace do not count",
                pod: zone1(1).info(),
                snap: snapshot(vec![
                    (
                        zone_node("node-a", "zone1"),
                        vec![
                            PodBuilder::new("p-a1")
                                .namespace("ns1")
                                .label("foo", "")
                                .build(),
                        ],
                    ),
                    (zone_node("node-b", "zone1"), vec![foo_pod("p-b1")]),
                    (zone_node("node-x", "zone2"), vec![]),
                    (zone_node("node-y", "zone2"), vec![]),
                ]),
                want: vec!["node-x", "node-y"],
            },
            Case {
                name: "pods spread across zones as 3/3, all nodes fit",
                pod: zone1(1).info(),
                snap: four_nodes([1, 2, 1, 2]),
                want: vec!["node-a", "node-b", "node-x", "node-y"],
            },
            Case {
                name: "pods spread across zones as 1/2 due to absence of label 'zone' on node-b",
                pod: zone1(1).info(),
                snap: snapshot(vec![
                    (zone_node("node-a", "zone1"), vec![foo_pod("p-a1")]),
                    (
                        NodeBuilder::new("node-b").label("node", "node-b"),
                        vec![foo_pod("p-b1")],
                    ),
                    (zone_node("node-x", "zone2"), vec![foo_pod("p-x1")]),
                    (zone_node("node-y", "zone2"), vec![foo_pod("p-y1")]),
                ]),
                want: vec!["node-a"],
            },
            Case {
                name: "pod cannot be scheduled as all nodes don't have label 'rack'",
                pod: with_constraints(
                    PodBuilder::new("p").label("foo", ""),
                    vec![spread("rack", 1, DO_NOT_SCHEDULE, "foo")],
                )
                .info(),
                snap: four_nodes([0, 0, 0, 0]),
                want: vec![],
            },
            Case {
                name: "pods spread across nodes as 2/1/0/3, only node-x fits",
                pod: with_constraints(
                    PodBuilder::new("p").label("foo", ""),
                    vec![spread("node", 1, DO_NOT_SCHEDULE, "foo")],
                )
                .info(),
                snap: four_nodes([2, 1, 0, 3]),
                want: vec!["node-x"],
            },
            Case {
                name: "pods spread across nodes as 2/1/0/3, maxSkew is 2, node-b and node-x fit",
                pod: with_constraints(
                    PodBuilder::new("p").label("foo", ""),
                    vec![spread("node", 2, DO_NOT_SCHEDULE, "foo")],
                )
                .info(),
                snap: four_nodes([2, 1, 0, 3]),
                want: vec!["node-b", "node-x"],
            },
            Case {
                name: "terminating pods are excluded",
                pod: with_constraints(
                    PodBuilder::new("p").label("foo", ""),
                    vec![spread("node", 1, DO_NOT_SCHEDULE, "foo")],
                )
                .info(),
                snap: snapshot(vec![
                    (
                        zone_node("node-a", "zone1"),
                        vec![{
                            let mut p = foo_pod("p-a");
                            p.metadata.deletion_timestamp =
                                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                                ));
                            p
                        }],
                    ),
                    (zone_node("node-b", "zone1"), vec![foo_pod("p-b")]),
                ]),
                want: vec!["node-a"],
            },
            Case {
                name: "two Constraints on zone and node, spreads = [3/3, 2/1/0/3]",
                pod: with_constraints(
                    PodBuilder::new("p").label("foo", ""),
                    vec![
                        spread("zone", 1, DO_NOT_SCHEDULE, "foo"),
                        spread("node", 1, DO_NOT_SCHEDULE, "foo"),
                    ],
                )
                .info(),
                snap: four_nodes([2, 1, 0, 3]),
                want: vec!["node-x"],
            },
            Case {
                name: "two Constraints on zone and node, spreads = [3/4, 2/1/0/4]",
                pod: with_constraints(
                    PodBuilder::new("p").label("foo", ""),
                    vec![
                        spread("zone", 1, DO_NOT_SCHEDULE, "foo"),
                        spread("node", 1, DO_NOT_SCHEDULE, "foo"),
                    ],
                )
                .info(),
                snap: four_nodes([2, 1, 0, 4]),
                want: vec![],
            },
            Case {
                name: "pod's nodeSelector restricts the domains (nodeAffinityPolicy Honor)",
                pod: with_constraints(
                    PodBuilder::new("p")
                        .label("foo", "")
                        .node_selector("zone", "zone1"),
                    vec![spread("node", 1, DO_NOT_SCHEDULE, "foo")],
                )
                .info(),
                // node-x is empty but not eligible: min is taken over node-a/node-b only.
                snap: four_nodes([1, 2, 0, 0]),
                want: vec!["node-a", "node-x", "node-y"],
            },
            Case {
                name: "nodeAffinityPolicy Ignore counts every node",
                pod: with_constraints(
                    PodBuilder::new("p")
                        .label("foo", "")
                        .node_selector("zone", "zone1"),
                    vec![{
                        let mut c = spread("node", 1, DO_NOT_SCHEDULE, "foo");
                        c["nodeAffinityPolicy"] = json!("Ignore");
                        c
                    }],
                )
                .info(),
                snap: four_nodes([1, 2, 0, 0]),
                want: vec!["node-x", "node-y"],
            },
        ];
        for c in cases {
            let statuses = run_filter(&c.pod, &c.snap);
            assert_eq!(feasible(&statuses), c.want, "{}", c.name);
        }
    }

    #[test]
    fn node_taints_policy_honor_skips_untolerated_nodes() {
        let c = |policy: &str| {
            let mut c = spread("node", 1, DO_NOT_SCHEDULE, "foo");
            c["nodeTaintsPolicy"] = json!(policy);
            with_constraints(PodBuilder::new("p").label("foo", ""), vec![c]).info()
        };
        // node-b is empty but tainted: with Honor it is no domain, so the minimum is 1.
        let snap = snapshot(vec![
            (zone_node("node-a", "zone1"), vec![foo_pod("a1")]),
            (
                zone_node("node-b", "zone1").taint("k", "v", "NoSchedule"),
                vec![],
            ),
            (zone_node("node-x", "zone2"), vec![foo_pod("x1")]),
        ]);
        assert_eq!(
            feasible(&run_filter(&c("Honor"), &snap)),
            ["node-a", "node-b", "node-x"]
        );
        assert_eq!(feasible(&run_filter(&c("Ignore"), &snap)), ["node-b"]);
    }

    #[test]
    fn filter_reasons() {
        let pod = with_constraints(
            PodBuilder::new("p").label("foo", ""),
            vec![spread("zone", 1, DO_NOT_SCHEDULE, "foo")],
        )
        .info();
        let snap = snapshot(vec![
            (
                zone_node("node-a", "zone1"),
                vec![foo_pod("a1"), foo_pod("a2")],
            ),
            (zone_node("node-x", "zone2"), vec![]),
            (NodeBuilder::new("node-z"), vec![]),
        ]);
        let statuses = run_filter(&pod, &snap);
        assert_eq!(
            statuses["node-a"],
            Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH)
        );
        assert!(statuses["node-x"].is_success());
        assert_eq!(
            statuses["node-z"],
            Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH)
        );
    }

    #[test]
    fn min_domains() {
        let c = |min: i32| {
            let mut c = spread("zone", 1, DO_NOT_SCHEDULE, "foo");
            c["minDomains"] = json!(min);
            with_constraints(PodBuilder::new("p").label("foo", ""), vec![c]).info()
        };
        // 2 domains with 1/1 pods: with minDomains 3 the global minimum is 0, so skew = 2.
        let snap = snapshot(vec![
            (zone_node("node-a", "zone1"), vec![foo_pod("a1")]),
            (zone_node("node-x", "zone2"), vec![foo_pod("x1")]),
        ]);
        assert_eq!(feasible(&run_filter(&c(2), &snap)), ["node-a", "node-x"]);
        assert!(feasible(&run_filter(&c(3), &snap)).is_empty());
    }

    #[test]
    fn match_label_keys_narrow_the_selector() {
        let mut cst = spread("node", 1, DO_NOT_SCHEDULE, "foo");
        cst["matchLabelKeys"] = json!(["rev"]);
        let pod = with_constraints(
            PodBuilder::new("p").label("foo", "").label("rev", "2"),
            vec![cst],
        )
        .info();
        let rev = |n: &str, r: &str| PodBuilder::new(n).label("foo", "").label("rev", r).build();
        // node-a has two old-revision pods, which no longer count.
        let snap = snapshot(vec![
            (
                zone_node("node-a", "zone1"),
                vec![rev("a1", "1"), rev("a2", "1")],
            ),
            (zone_node("node-b", "zone1"), vec![rev("b1", "2")]),
        ]);
        assert_eq!(feasible(&run_filter(&pod, &snap)), ["node-a"]);
    }

    #[test]
    fn add_and_remove_pod_update_counts() {
        let pl = plugin();
        let pod = with_constraints(
            PodBuilder::new("p").label("foo", ""),
            vec![spread("zone", 1, DO_NOT_SCHEDULE, "foo")],
        )
        .info();
        let snap = four_nodes([1, 0, 0, 0]);
        let mut state = CycleState::default();
        assert!(pl.pre_filter(&mut state, &pod, &snap).1.is_success());
        let node_a = snap.get("node-a").expect("node-a");
        let node_x = snap.get("node-x").expect("node-x");
        assert!(pl.filter(&state, &pod, node_a).is_rejected());
        let existing = node_a.pods[0].clone();
        assert!(
            pl.remove_pod(&mut state, &pod, &existing, node_a)
                .is_success()
        );
        assert!(pl.filter(&state, &pod, node_a).is_success());
        let added = PodInfo::new(Arc::new(foo_pod("new")));
        assert!(pl.add_pod(&mut state, &pod, &added, node_x).is_success());
        assert!(pl.filter(&state, &pod, node_a).is_success());
        assert!(pl.filter(&state, &pod, node_x).is_rejected());
        // Pods of other namespaces change nothing.
        let other = PodInfo::new(Arc::new(
            PodBuilder::new("o")
                .namespace("ns1")
                .label("foo", "")
                .build(),
        ));
        assert!(pl.add_pod(&mut state, &pod, &other, node_a).is_success());
        assert!(pl.filter(&state, &pod, node_a).is_success());
    }

    #[test]
    fn pre_filter_skips_without_hard_constraints() {
        let pl = plugin();
        let mut state = CycleState::default();
        let pod = PodBuilder::new("p").info();
        assert!(
            pl.pre_filter(&mut state, &pod, &four_nodes([0; 4]))
                .1
                .is_skip()
        );
    }

    fn scores(
        pl: &PodTopologySpread,
        pod: &PodInfo,
        snap: &Snapshot,
        feasible: &[&str],
    ) -> Vec<(String, i64)> {
        let nodes: Vec<Arc<NodeInfo>> = feasible
            .iter()
            .filter_map(|n| snap.get(n).cloned())
            .collect();
        let mut state = CycleState::default();
        let s = pl.pre_score(&mut state, pod, &nodes, snap);
        if s.is_skip() {
            return Vec::new();
        }
        assert!(s.is_success(), "{s:?}");
        let mut list: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name().to_owned(),
                score: pl.score(&state, pod, n).0,
            })
            .collect();
        assert!(pl.normalize(&state, pod, &mut list).is_success());
        list.into_iter().map(|s| (s.name, s.score)).collect()
    }

    fn named(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    }

    #[test]
    fn score_table() {
        let soft = |cs: Vec<serde_json::Value>| {
            with_constraints(PodBuilder::new("p").label("foo", ""), cs).info()
        };
        let pl = plugin();
        // "one constraint on node, no existing pods"
        let snap = snapshot(vec![
            (zone_node("node-a", "zone1"), vec![]),
            (zone_node("node-b", "zone1"), vec![]),
        ]);
        assert_eq!(
            scores(
                &pl,
                &soft(vec![spread("node", 1, SCHEDULE_ANYWAY, "foo")]),
                &snap,
                &["node-a", "node-b"]
            ),
            named(&[("node-a", 100), ("node-b", 100)]),
            "one constraint on node, no existing pods"
        );
        // "one constraint on node, only one node is candidate"
        let snap = snapshot(vec![
            (
                zone_node("node-a", "zone1"),
                vec![foo_pod("a1"), foo_pod("a2")],
            ),
            (zone_node("node-b", "zone1"), vec![]),
        ]);
        assert_eq!(
            scores(
                &pl,
                &soft(vec![spread("node", 1, SCHEDULE_ANYWAY, "foo")]),
                &snap,
                &["node-a"]
            ),
            named(&[("node-a", 100)]),
            "one constraint on node, only one node is candidate"
        );
        // "one constraint on node, all 4 nodes are candidates": 4 domains, weight ln(6).
        let snap = four_nodes([6, 4, 7, 0]);
        let got = scores(
            &pl,
            &soft(vec![spread("node", 1, SCHEDULE_ANYWAY, "foo")]),
            &snap,
            &["node-a", "node-b", "node-x", "node-y"],
        );
        // raw: a=round(6*1.7918)=11, b=round(4*1.7918)=7, x=round(7*1.7918)=13, y=0.
        assert_eq!(
            got,
            named(&[
                ("node-a", 15),
                ("node-b", 46),
                ("node-x", 0),
                ("node-y", 100)
            ])
        );
        // "one constraint on zone, all nodes are candidates": zone1 has 3, zone2 has 1.
        let snap = four_nodes([1, 2, 1, 0]);
        let got = scores(
            &pl,
            &soft(vec![spread("zone", 1, SCHEDULE_ANYWAY, "foo")]),
            &snap,
            &["node-a", "node-b", "node-x", "node-y"],
        );
        // raw: zone1 = round(3*ln 4)=4, zone2 = round(1*ln 4)=1 → 100*(4+1-4)/4 = 25, 100.
        assert_eq!(
            got,
            named(&[
                ("node-a", 25),
                ("node-b", 25),
                ("node-x", 100),
                ("node-y", 100)
            ])
        );
        // "nodes lacking the topology key are ignored and score 0"
        let snap = snapshot(vec![
            (zone_node("node-a", "zone1"), vec![foo_pod("a1")]),
            (NodeBuilder::new("node-b"), vec![]),
        ]);
        assert_eq!(
            scores(
                &pl,
                &soft(vec![spread("zone", 1, SCHEDULE_ANYWAY, "foo")]),
                &snap,
                &["node-a", "node-b"]
            ),
            named(&[("node-a", 100), ("node-b", 0)])
        );
    }

    #[test]
    fn system_default_constraints_apply_to_owned_pods() {
        let pl = plugin();
        let owned = |b: PodBuilder| {
            let mut p = b.label("app", "web").build();
            p.metadata.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "rs".into(),
                    uid: "rs-uid".into(),
                    ..Default::default()
                },
            ]);
            p
        };
        // No zone labels: hostname spreading still works (requireAllTopologies is false).
        let snap = snapshot(vec![
            (
                NodeBuilder::new("node-a"),
                vec![owned(PodBuilder::new("a1")), owned(PodBuilder::new("a2"))],
            ),
            (NodeBuilder::new("node-b"), vec![]),
        ]);
        let pod = PodInfo::new(Arc::new(owned(PodBuilder::new("p"))));
        // raw: a = 2*ln(4)+2 = 4.77 → 5, b = 0+2 = 2 → 100*(5+2-5)/5 = 40, 100*(5+2-2)/5 = 100.
        assert_eq!(
            scores(&pl, &pod, &snap, &["node-a", "node-b"]),
            named(&[("node-a", 40), ("node-b", 100)])
        );
        // A pod without owner gets no default spreading.
        let bare = PodBuilder::new("q").label("app", "web").info();
        assert!(scores(&pl, &bare, &snap, &["node-a", "node-b"]).is_empty());
        // List defaulting with no constraints: nothing.
        let list =
            PodTopologySpread::from_args(Some(&json!({"defaultingType": "List"}))).expect("valid");
        assert!(scores(&list, &pod, &snap, &["node-a", "node-b"]).is_empty());
    }

    #[test]
    fn args_validation() {
        let bad = [
            json!({"defaultingType": "System", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
            json!({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
            json!({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {}}]}),
            json!({"defaultingType": "Other"}),
            json!({"unknown": 1}),
        ];
        for b in bad {
            assert!(PodTopologySpread::from_args(Some(&b)).is_err(), "{b}");
        }
        let ok = PodTopologySpread::from_args(Some(&json!({
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "PodTopologySpreadArgs",
            "defaultingType": "List",
            "defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
        })))
        .expect("valid");
        assert!(!ok.system_defaulted);
        assert_eq!(ok.default_constraints.len(), 1);
    }

    #[test]
    fn critical_paths_track_the_two_smallest() {
        let mut cp = CriticalPaths::default();
        for (v, n) in [("a", 3), ("b", 1), ("c", 2)] {
            cp.update(v, n);
        }
        assert_eq!(cp.0[0].value, "b");
        assert_eq!(cp.0[1].value, "c");
        cp.update("b", 4);
        assert_eq!(cp.0[0].value, "c");
    }
}
