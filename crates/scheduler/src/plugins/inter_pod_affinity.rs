//! InterPodAffinity: required and preferred pod (anti-)affinity, for the incoming pod's terms
//! and, symmetrically, for the required anti-affinity and the preferred terms of the pods
//! already placed.
//!
//! * **PreFilter** counts, per topology pair (key, value), (a) existing pods whose required
//!   anti-affinity terms select the incoming pod (only nodes on the snapshot's
//!   required-anti-affinity list are visited), (b) existing pods matching *all* the incoming
//!   pod's required affinity terms and (c) existing pods matching each of its required
//!   anti-affinity terms (all nodes, in parallel, only when the pod has such terms). The
//!   incoming pod's `namespaceSelector`s are resolved to namespace names once, through the
//!   namespace lister. The PreFilter extensions update the counts when preemption adds or
//!   removes pods.
//! * **Filter** is then a few map lookups per node, with upstream's three reasons, and its
//!   special case for the first pod of a group with affinity to itself.
//! * **PreScore/Score/NormalizeScore** sum preferred-term weights per topology pair (incoming
//!   terms against existing pods; existing pods' preferred terms and required affinity terms,
//!   the latter weighted by `hardPodAffinityWeight`, against the incoming pod) and scale the
//!   node totals linearly into 0–100.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use k8s_openapi::api::core::v1::Pod;
use rayon::prelude::*;
use serde::Deserialize;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, Handle, Listers,
    MAX_NODE_SCORE, NodeInfo, NodeScore, Plugin, PodInfo, PreFilterExtensions, PreFilterPlugin,
    PreFilterResult, PreScorePlugin, ScorePlugin, Snapshot, Status,
    types::{AffinityTerm, WeightedAffinityTerm, node_labels},
};

use super::parse_args;

/// The plugin's name.
pub const NAME: &str = "InterPodAffinity";
/// Filter: the node's domain has no pod the incoming pod's required affinity asks for.
pub const ERR_REASON_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
/// Filter: the node's domain has a pod the incoming pod's required anti-affinity excludes.
pub const ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't match pod anti-affinity rules";
/// Filter: a pod in the node's domain has required anti-affinity to the incoming pod.
pub const ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

/// `InterPodAffinityArgs` in upstream's JSON shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    hard_pod_affinity_weight: Option<i32>,
    #[serde(default)]
    ignore_preferred_terms_of_existing_pods: bool,
}

/// The plugin.
#[derive(Debug)]
pub struct InterPodAffinity {
    hard_pod_affinity_weight: i64,
    ignore_preferred_terms_of_existing_pods: bool,
    listers: Listers,
}

/// The factory: `hardPodAffinityWeight` defaults to 1 and must be in [0, 100].
pub fn new(args: Option<&serde_json::Value>, h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(InterPodAffinity::from_args(args, h)?))
}

impl InterPodAffinity {
    fn from_args(args: Option<&serde_json::Value>, h: &Handle) -> Result<Self, String> {
        let args: Args = parse_args(args)?;
        let _ = (&args.api_version, &args.kind);
        let weight = args.hard_pod_affinity_weight.unwrap_or(1);
        if !(0..=100).contains(&weight) {
            return Err(format!(
                "hardPodAffinityWeight: Invalid value: {weight}: not in valid range [0, 100]"
            ));
        }
        Ok(Self {
            hard_pod_affinity_weight: i64::from(weight),
            ignore_preferred_terms_of_existing_pods: args.ignore_preferred_terms_of_existing_pods,
            listers: h.listers.clone(),
        })
    }

    /// Upstream's `mergeAffinityTermNamespacesIfNotEmpty`: a non-empty namespace selector is
    /// replaced by the names of the namespaces it selects now.
    fn merge_namespaces(&self, term: &mut AffinityTerm) {
        let Some(sel) = &term.namespace_selector else {
            return;
        };
        if sel.is_empty() {
            return;
        }
        for ns in self.listers.namespaces.state() {
            let empty = BTreeMap::new();
            let labels = ns.metadata.labels.as_ref().unwrap_or(&empty);
            if sel.matches(labels)
                && let Some(name) = &ns.metadata.name
            {
                term.namespaces.insert(name.clone());
            }
        }
        term.namespace_selector = None;
    }

    fn ns_labels(&self, pod: &Pod) -> BTreeMap<String, String> {
        self.listers
            .namespace_labels(pod.metadata.namespace.as_deref().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// Counts per topology key and value; entries that drop to zero are removed.
#[derive(Debug, Clone, Default)]
struct TopologyCounts(HashMap<String, HashMap<String, i64>>);

impl TopologyCounts {
    fn update(&mut self, labels: &BTreeMap<String, String>, key: &str, delta: i64) {
        let Some(value) = labels.get(key) else {
            return;
        };
        // Look up before inserting: keys are allocated only for new entries.
        if !self.0.contains_key(key) {
            self.0.insert(key.to_owned(), HashMap::new());
        }
        let Some(values) = self.0.get_mut(key) else {
            return;
        };
        match values.get_mut(value.as_str()) {
            Some(count) => {
                *count += delta;
                if *count == 0 {
                    values.remove(value.as_str());
                }
            }
            None if delta != 0 => {
                values.insert(value.clone(), delta);
            }
            None => {}
        }
        if values.is_empty() {
            self.0.remove(key);
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|v| v.get(value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// True when `pod` matches every term (false without terms). The terms' namespace selectors
/// are already merged, so no namespace labels are needed.
fn matches_all(terms: &[AffinityTerm], pod: &Pod) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, None))
}

/// What PreFilter computes for Filter.
#[derive(Debug, Clone, Default)]
struct PreFilterState {
    /// The incoming pod's required terms with namespace selectors merged.
    affinity: Arc<Vec<AffinityTerm>>,
    anti_affinity: Arc<Vec<AffinityTerm>>,
    /// Labels of the incoming pod's namespace.
    ns_labels: Arc<BTreeMap<String, String>>,
    existing_anti_affinity_counts: TopologyCounts,
    affinity_counts: TopologyCounts,
    anti_affinity_counts: TopologyCounts,
}

impl PreFilterState {
    fn update_with_pod(&mut self, pod: &Pod, updated: &PodInfo, node: &NodeInfo, delta: i64) {
        let Some(n) = node.node() else { return };
        let labels = node_labels(n);
        for t in &updated.required_anti_affinity {
            if t.matches(pod, Some(&self.ns_labels)) {
                self.existing_anti_affinity_counts
                    .update(labels, &t.topology_key, delta);
            }
        }
        if matches_all(&self.affinity, &updated.pod) {
            for t in self.affinity.iter() {
                self.affinity_counts.update(labels, &t.topology_key, delta);
            }
        }
        for t in self.anti_affinity.iter() {
            if t.matches(&updated.pod, None) {
                self.anti_affinity_counts
                    .update(labels, &t.topology_key, delta);
            }
        }
    }
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Pod, ActionType::All),
            ClusterEvent::new(EventResource::Node, ActionType::Add),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateLabel),
            ClusterEvent::new(EventResource::Namespace, ActionType::Add),
            ClusterEvent::new(EventResource::Namespace, ActionType::UpdateLabel),
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

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        if pod.parse_error {
            return (
                None,
                Status::unresolvable("parsing pod: invalid pod affinity term"),
            );
        }
        let mut affinity = pod.required_affinity.clone();
        let mut anti_affinity = pod.required_anti_affinity.clone();
        for t in affinity.iter_mut().chain(anti_affinity.iter_mut()) {
            self.merge_namespaces(t);
        }
        let ns_labels = self.ns_labels(&pod.pod);

        let mut existing = TopologyCounts::default();
        for node in snapshot.have_pods_with_required_anti_affinity() {
            let Some(n) = node.node() else { continue };
            let labels = node_labels(n);
            for p in &node.pods_with_required_anti_affinity {
                for t in &p.required_anti_affinity {
                    if t.matches(&pod.pod, Some(&ns_labels)) {
                        existing.update(labels, &t.topology_key, 1);
                    }
                }
            }
        }

        let mut affinity_counts = TopologyCounts::default();
        let mut anti_affinity_counts = TopologyCounts::default();
        if !affinity.is_empty() || !anti_affinity.is_empty() {
            // Per node: pods matching all affinity terms, and pods matching each anti term.
            let per_node = |node: &Arc<NodeInfo>| -> Option<(i64, Vec<i64>)> {
                if node.pods.is_empty() {
                    return None;
                }
                node.node()?;
                let mut aff = 0;
                let mut anti = vec![0; anti_affinity.len()];
                for p in &node.pods {
                    if matches_all(&affinity, &p.pod) {
                        aff += 1;
                    }
                    for (i, t) in anti_affinity.iter().enumerate() {
                        if t.matches(&p.pod, None) {
                            anti[i] += 1;
                        }
                    }
                }
                (aff > 0 || anti.iter().any(|c| *c > 0)).then_some((aff, anti))
            };
            let nodes = snapshot.nodes();
            let found: Vec<(usize, (i64, Vec<i64>))> = if nodes.len() < 256 {
                nodes
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| per_node(n).map(|r| (i, r)))
                    .collect()
            } else {
                nodes
                    .par_iter()
                    .enumerate()
                    .with_min_len(64)
                    .filter_map(|(i, n)| per_node(n).map(|r| (i, r)))
                    .collect()
            };
            for (i, (aff, anti)) in found {
                let Some(n) = nodes[i].node() else { continue };
                let labels = node_labels(n);
                if aff > 0 {
                    for t in &affinity {
                        affinity_counts.update(labels, &t.topology_key, aff);
                    }
                }
                for (t, c) in anti_affinity.iter().zip(anti) {
                    if c > 0 {
                        anti_affinity_counts.update(labels, &t.topology_key, c);
                    }
                }
            }
        }

        if existing.is_empty() && affinity.is_empty() && anti_affinity.is_empty() {
            return (None, Status::skip());
        }
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                affinity: Arc::new(affinity),
                anti_affinity: Arc::new(anti_affinity),
                ns_labels: Arc::new(ns_labels),
                existing_anti_affinity_counts: existing,
                affinity_counts,
                anti_affinity_counts,
            },
        );
        (None, Status::success())
    }

    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}

fn missing_state() -> Status {
    Status::error(format!(
        "reading {PRE_FILTER_KEY:?} from cycleState: not found"
    ))
}

impl PreFilterExtensions for InterPodAffinity {
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_add: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                s.update_with_pod(&pod.pod, pod_to_add, node, 1);
                Status::success()
            }
            None => missing_state(),
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
                s.update_with_pod(&pod.pod, pod_to_remove, node, -1);
                Status::success()
            }
            None => missing_state(),
        }
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return missing_state();
        };
        let labels = node_labels(n);

        // Required affinity: every term's domain must hold a matching pod.
        let mut pods_exist = true;
        for t in s.affinity.iter() {
            let Some(value) = labels.get(&t.topology_key) else {
                return Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH);
            };
            if s.affinity_counts.get(&t.topology_key, value) <= 0 {
                pods_exist = false;
            }
        }
        // The first pod of a group with affinity to itself may go anywhere.
        let first_of_group = s.affinity_counts.is_empty() && matches_all(&s.affinity, &pod.pod);
        if !pods_exist && !first_of_group {
            return Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH);
        }

        if !s.anti_affinity_counts.is_empty() {
            for t in s.anti_affinity.iter() {
                if let Some(value) = labels.get(&t.topology_key)
                    && s.anti_affinity_counts.get(&t.topology_key, value) > 0
                {
                    return Status::unschedulable(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH);
                }
            }
        }

        // Walk the (few) topology keys with counts rather than every node label.
        if s.existing_anti_affinity_counts.0.iter().any(|(k, values)| {
            labels
                .get(k)
                .and_then(|v| values.get(v))
                .is_some_and(|c| *c > 0)
        }) {
            return Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH);
        }
        Status::success()
    }
}

// ---------------------------------------------------------------------------------------------
// Scoring.

/// What PreScore computes: the score each topology pair contributes.
#[derive(Debug, Clone, Default)]
struct PreScoreState {
    topology_score: HashMap<String, HashMap<String, i64>>,
}

type ScoreMap = HashMap<String, HashMap<String, i64>>;

fn add_score(map: &mut ScoreMap, labels: &BTreeMap<String, String>, key: &str, delta: i64) {
    if let Some(value) = labels.get(key) {
        *map.entry(key.to_owned())
            .or_default()
            .entry(value.clone())
            .or_default() += delta;
    }
}

fn process_terms(
    map: &mut ScoreMap,
    terms: &[WeightedAffinityTerm],
    pod: &Pod,
    ns_labels: Option<&BTreeMap<String, String>>,
    labels: &BTreeMap<String, String>,
    sign: i64,
) {
    for t in terms {
        if t.term.matches(pod, ns_labels) {
            add_score(
                map,
                labels,
                &t.term.topology_key,
                i64::from(t.weight) * sign,
            );
        }
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        if nodes.is_empty() {
            return Status::skip();
        }
        let has_constraints =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if self.ignore_preferred_terms_of_existing_pods && !has_constraints {
            return Status::skip();
        }
        let all = if has_constraints {
            snapshot.nodes()
        } else {
            snapshot.have_pods_with_affinity()
        };
        let mut preferred = pod.preferred_affinity.clone();
        let mut preferred_anti = pod.preferred_anti_affinity.clone();
        for t in preferred.iter_mut().chain(preferred_anti.iter_mut()) {
            self.merge_namespaces(&mut t.term);
        }
        let ns_labels = self.ns_labels(&pod.pod);
        let hard_weight = self.hard_pod_affinity_weight;

        let per_node = |node: &Arc<NodeInfo>| -> Option<ScoreMap> {
            let n = node.node()?;
            let labels = node_labels(n);
            if labels.is_empty() {
                return None;
            }
            let pods = if has_constraints {
                &node.pods
            } else {
                &node.pods_with_affinity
            };
            let mut map = ScoreMap::new();
            for existing in pods {
                process_terms(&mut map, &preferred, &existing.pod, None, labels, 1);
                process_terms(&mut map, &preferred_anti, &existing.pod, None, labels, -1);
                if hard_weight > 0 {
                    for t in &existing.required_affinity {
                        if t.matches(&pod.pod, Some(&ns_labels)) {
                            add_score(&mut map, labels, &t.topology_key, hard_weight);
                        }
                    }
                }
                process_terms(
                    &mut map,
                    &existing.preferred_affinity,
                    &pod.pod,
                    Some(&ns_labels),
                    labels,
                    1,
                );
                process_terms(
                    &mut map,
                    &existing.preferred_anti_affinity,
                    &pod.pod,
                    Some(&ns_labels),
                    labels,
                    -1,
                );
            }
            (!map.is_empty()).then_some(map)
        };
        let maps: Vec<ScoreMap> = if all.len() < 256 {
            all.iter().filter_map(per_node).collect()
        } else {
            all.par_iter()
                .with_min_len(64)
                .filter_map(per_node)
                .collect()
        };
        let mut topology_score = ScoreMap::new();
        for m in maps {
            for (k, values) in m {
                let entry = topology_score.entry(k).or_default();
                for (v, s) in values {
                    *entry.entry(v).or_default() += s;
                }
            }
        }
        if topology_score.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState { topology_score });
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
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
        let labels = node_labels(n);
        let score = s
            .topology_score
            .iter()
            .filter_map(|(k, values)| values.get(labels.get(k)?))
            .sum();
        (score, Status::success())
    }

    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Status::success();
        };
        if s.topology_score.is_empty() {
            return Status::success();
        }
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let diff = max - min;
        for sc in scores.iter_mut() {
            sc.score = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((sc.score - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};
    use k8s_openapi::api::core::v1::Namespace;
    use kube::runtime::{reflector::store::Writer, watcher::Event};
    use serde_json::{Value, json};

    fn term(key: &str, op: &str, values: &[&str], topology: &str) -> Value {
        json!({
            "labelSelector": {"matchExpressions": [{"key": key, "operator": op, "values": values}]},
            "topologyKey": topology,
        })
    }

    fn required(kind: &str, terms: Vec<Value>) -> Value {
        json!({ kind: { "requiredDuringSchedulingIgnoredDuringExecution": terms } })
    }

    fn preferred(kind: &str, terms: Vec<(i32, Value)>) -> Value {
        let terms: Vec<Value> = terms
            .into_iter()
            .map(|(w, t)| json!({"weight": w, "podAffinityTerm": t}))
            .collect();
        json!({ kind: { "preferredDuringSchedulingIgnoredDuringExecution": terms } })
    }

    fn merged(parts: Vec<Value>) -> Value {
        let mut out = serde_json::Map::new();
        for p in parts {
            if let Value::Object(m) = p {
                for (k, v) in m {
                    match out.get_mut(&k) {
                        Some(Value::Object(existing)) => {
                            if let Value::Object(v) = v {
                                existing.extend(v);
                            }
                        }
                        _ => {
                            out.insert(k, v);
                        }
                    }
                }
            }
        }
        Value::Object(out)
    }

    fn handle_with_namespaces(nss: &[(&str, &[(&str, &str)])]) -> Handle {
        let mut writer: Writer<Namespace> = Writer::default();
        let reader = writer.as_reader();
        for (name, labels) in nss {
            let ns = Namespace {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some((*name).into()),
                    labels: Some(
                        labels
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                            .collect(),
                    ),
                    ..Default::default()
                },
                ..Default::default()
            };
            writer.apply_watcher_event(&Event::Apply(ns));
        }
        let mut h = Handle::default();
        h.listers.namespaces = reader;
        h
    }

    fn plugin(h: &Handle) -> InterPodAffinity {
        InterPodAffinity::from_args(None, h).expect("defaults are valid")
    }

    fn region_node(name: &str, region: &str) -> NodeBuilder {
        NodeBuilder::new(name)
            .label("region", region)
            .label("zone", &format!("{region}-z"))
    }

    /// Runs PreFilter and Filter on every node; PreFilter's Skip means every node passes.
    fn filter_all(
        pl: &InterPodAffinity,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> BTreeMap<String, Status> {
        let mut state = CycleState::default();
        let (_, s) = pl.pre_filter(&mut state, pod, snap);
        snap.nodes()
            .iter()
            .map(|n| {
                let st = if s.is_skip() {
                    Status::success()
                } else {
                    pl.filter(&state, pod, n)
                };
                (n.name().to_owned(), st)
            })
            .collect()
    }

    #[test]
    fn single_node_filter_table() {
        let h = handle_with_namespaces(&[("ns1", &[("team", "a")]), ("ns2", &[("team", "b")])]);
        let pl = plugin(&h);
        let existing = |b: PodBuilder| b.label("service", "securityscan").build();
        let s1 = term("service", "In", &["securityscan", "value2"], "region");
        struct Case {
            name: &'static str,
            pod: PodInfo,
            pods: Vec<Pod>,
            want: Option<Status>,
        }
        let cases = vec![
            Case {
                name: "A pod that has no required pod affinity scheduling rules can schedule onto a node with no existing pods",
                pod: PodBuilder::new("p").info(),
                pods: vec![],
                want: None,
            },
            Case {
                name: "satisfies with requiredDuringSchedulingIgnoredDuringExecution in PodAffinity using In operator that matches the existing pod",
                pod: PodBuilder::new("p")
                    .affinity_json(required("podAffinity", vec![s1.clone()]))
                    .info(),
                pods: vec![existing(PodBuilder::new("e"))],
                want: None,
            },
            Case {
                name: "satisfies the pod with requiredDuringSchedulingIgnoredDuringExecution in PodAffinity using not in operator in labelSelector that matches the existing pod",
                pod: PodBuilder::new("p")
                    .affinity_json(required(
                        "podAffinity",
                        vec![term(
                            "service",
                            "NotIn",
                            &["securityscan3", "value3"],
                            "region",
                        )],
                    ))
                    .info(),
                pods: vec![existing(PodBuilder::new("e"))],
                want: None,
            },
            Case {
                name: "Does not satisfy the PodAffinity with labelSelector because of diff Namespace",
                pod: PodBuilder::new("p")
                    .affinity_json(required(
                        "podAffinity",
                        vec![{
                            let mut t = s1.clone();
                            t["namespaces"] = json!(["DiffNameSpace"]);
                            t
                        }],
                    ))
                    .info(),
                pods: vec![existing(PodBuilder::new("e"))],
                want: Some(Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)),
            },
            Case {
                name: "Doesn't satisfy the PodAffinity because of unmatching labelSelector with the existing pod",
                pod: PodBuilder::new("p")
                    .affinity_json(required(
                        "podAffinity",
                        vec![term(
                            "service",
                            "In",
                            &["antivirusscan", "value2"],
                            "region",
                        )],
                    ))
                    .info(),
                pods: vec![existing(PodBuilder::new("e"))],
                want: Some(Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)),
            },
            Case {
                name: "satisfies the PodAffinity with namespaceSelector",
                pod: PodBuilder::new("p")
                    .affinity_json(required(
                        "podAffinity",
                        vec![{
                            let mut t = s1.clone();
                            t["namespaceSelector"] = json!({"matchLabels": {"team": "a"}});
                            t
                        }],
                    ))
                    .info(),
                pods: vec![existing(PodBuilder::new("e").namespace("ns1"))],
                want: None,
            },
            Case {
                name: "Doesn't satisfy the PodAffinity because namespaceSelector selects another namespace",
                pod: PodBuilder::new("p")
                    .affinity_json(required(
                        "podAffinity",
                        vec![{
                            let mut t = s1.clone();
                            t["namespaceSelector"] = json!({"matchLabels": {"team": "b"}});
                            t
                        }],
                    ))
                    .info(),
                pods: vec![existing(PodBuilder::new("e").namespace("ns1"))],
                want: Some(Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)),
            },
            Case {
                name: "satisfies the PodAntiAffinity with existing pod but doesn't match the label selector",
                pod: PodBuilder::new("p")
                    .affinity_json(required(
                        "podAntiAffinity",
                        vec![term("service", "In", &["antivirusscan"], "zone")],
                    ))
                    .info(),
                pods: vec![existing(PodBuilder::new("e"))],
                want: None,
            },
            Case {
                name: "Doesn't satisfy the PodAntiAffinity because of matching labelSelector with the existing pod",
                pod: PodBuilder::new("p")
                    .affinity_json(required(
                        "podAntiAffinity",
                        vec![term("service", "In", &["securityscan"], "zone")],
                    ))
                    .info(),
                pods: vec![existing(PodBuilder::new("e"))],
                want: Some(Status::unschedulable(
                    ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
                )),
            },
            Case {
                name: "satisfies the PodAffinity but doesn't satisfy PodAntiAffinity symmetry with the existing pod",
                pod: PodBuilder::new("p")
                    .label("service", "securityscan")
                    .affinity_json(required("podAffinity", vec![s1.clone()]))
                    .info(),
                pods: vec![
                    PodBuilder::new("e")
                        .label("service", "securityscan")
                        .affinity_json(required(
                            "podAntiAffinity",
                            vec![term("service", "In", &["securityscan"], "zone")],
                        ))
                        .build(),
                ],
                want: Some(Status::unschedulable(
                    ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
                )),
            },
            Case {
                name: "Existing anti-affinity on a topology key the node lacks does not apply",
                pod: PodBuilder::new("p").label("service", "securityscan").info(),
                pods: vec![
                    PodBuilder::new("e")
                        .affinity_json(required(
                            "podAntiAffinity",
                            vec![term("service", "In", &["securityscan"], "rack")],
                        ))
                        .build(),
                ],
                want: None,
            },
            Case {
                name: "pod matches its own Label in PodAffinity and that matches the existing pod Labels",
                pod: PodBuilder::new("p")
                    .label("service", "securityscan")
                    .affinity_json(required(
                        "podAffinity",
                        vec![term("service", "In", &["securityscan"], "region")],
                    ))
                    .info(),
                pods: vec![],
                want: None,
            },
            Case {
                name: "pod with affinity to others but no matching pod anywhere",
                pod: PodBuilder::new("p")
                    .label("service", "other")
                    .affinity_json(required(
                        "podAffinity",
                        vec![term("service", "In", &["securityscan"], "region")],
                    ))
                    .info(),
                pods: vec![],
                want: Some(Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)),
            },
            Case {
                name: "affinity term on a topology key the node lacks",
                pod: PodBuilder::new("p")
                    .label("service", "securityscan")
                    .affinity_json(required(
                        "podAffinity",
                        vec![term("service", "In", &["securityscan"], "rack")],
                    ))
                    .info(),
                pods: vec![existing(PodBuilder::new("e"))],
                want: Some(Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)),
            },
            Case {
                name: "satisfies both affinity and anti-affinity terms",
                pod: PodBuilder::new("p")
                    .affinity_json(merged(vec![
                        required("podAffinity", vec![s1.clone()]),
                        required(
                            "podAntiAffinity",
                            vec![term("service", "In", &["antivirusscan"], "zone")],
                        ),
                    ]))
                    .info(),
                pods: vec![existing(PodBuilder::new("e"))],
                want: None,
            },
        ];
        for c in cases {
            let snap =
                Snapshot::from_nodes([node_info(region_node("node1", "r1").build(), &c.pods)]);
            let got = filter_all(&pl, &c.pod, &snap).remove("node1");
            let want = c.want.unwrap_or_else(Status::success);
            assert_eq!(got, Some(want), "{}", c.name);
        }
    }

    #[test]
    fn multiple_nodes_share_topology_domains() {
        let pl = plugin(&Handle::default());
        let snap = Snapshot::from_nodes([
            node_info(
                region_node("machine1", "r1").build(),
                &[PodBuilder::new("e").label("foo", "bar").build()],
            ),
            node_info(region_node("machine2", "r1").build(), &[]),
            node_info(region_node("machine3", "r2").build(), &[]),
        ]);
        // "A pod can be scheduled onto all the nodes that have the same topology key & label
        // value with one of them has an existing pod that matches the affinity rules"
        let pod = PodBuilder::new("p")
            .affinity_json(required(
                "podAffinity",
                vec![term("foo", "In", &["bar"], "region")],
            ))
            .info();
        let got = filter_all(&pl, &pod, &snap);
        assert!(got["machine1"].is_success());
        assert!(got["machine2"].is_success());
        assert_eq!(
            got["machine3"],
            Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)
        );
        // Anti-affinity by region keeps the pod out of r1 entirely.
        let pod = PodBuilder::new("p")
            .affinity_json(required(
                "podAntiAffinity",
                vec![term("foo", "In", &["bar"], "region")],
            ))
            .info();
        let got = filter_all(&pl, &pod, &snap);
        assert!(got["machine1"].is_rejected() && got["machine2"].is_rejected());
        assert!(got["machine3"].is_success());
    }

    #[test]
    fn add_and_remove_pod() {
        let pl = plugin(&Handle::default());
        let victim = PodBuilder::new("v").label("foo", "bar").build();
        let snap = Snapshot::from_nodes([node_info(
            region_node("n1", "r1").build(),
            std::slice::from_ref(&victim),
        )]);
        let pod = PodBuilder::new("p")
            .affinity_json(required(
                "podAntiAffinity",
                vec![term("foo", "In", &["bar"], "region")],
            ))
            .info();
        let mut state = CycleState::default();
        assert!(pl.pre_filter(&mut state, &pod, &snap).1.is_success());
        let node = snap.get("n1").expect("n1");
        assert!(pl.filter(&state, &pod, node).is_rejected());
        let vi = PodInfo::new(Arc::new(victim));
        assert!(pl.remove_pod(&mut state, &pod, &vi, node).is_success());
        assert!(pl.filter(&state, &pod, node).is_success());
        assert!(pl.add_pod(&mut state, &pod, &vi, node).is_success());
        assert!(pl.filter(&state, &pod, node).is_rejected());
        // An added pod with anti-affinity to the incoming pod counts as existing.
        let mut state = CycleState::default();
        let plain = PodBuilder::new("q").label("app", "x").info();
        let snap = Snapshot::from_nodes([node_info(region_node("n1", "r1").build(), &[])]);
        // Without any terms PreFilter skips; write an empty state to exercise the extensions.
        assert!(pl.pre_filter(&mut state, &plain, &snap).1.is_skip());
        state.write(PRE_FILTER_KEY, PreFilterState::default());
        let hater = PodBuilder::new("h")
            .affinity_json(required(
                "podAntiAffinity",
                vec![term("app", "In", &["x"], "zone")],
            ))
            .info();
        let node = snap.get("n1").expect("n1");
        assert!(pl.add_pod(&mut state, &plain, &hater, node).is_success());
        assert_eq!(
            pl.filter(&state, &plain, node),
            Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH)
        );
    }

    fn scores(pl: &InterPodAffinity, pod: &PodInfo, snap: &Snapshot) -> Vec<i64> {
        let mut state = CycleState::default();
        let s = pl.pre_score(&mut state, pod, snap.nodes(), snap);
        if s.is_skip() {
            return vec![0; snap.len()];
        }
        let mut list: Vec<NodeScore> = snap
            .nodes()
            .iter()
            .map(|n| NodeScore {
                name: n.name().to_owned(),
                score: pl.score(&state, pod, n).0,
            })
            .collect();
        assert!(pl.normalize(&state, pod, &mut list).is_success());
        list.into_iter().map(|s| s.score).collect()
    }

    #[test]
    fn score_table() {
        let pl = plugin(&Handle::default());
        let nodes = |pods: [&[Pod]; 3]| {
            Snapshot::from_nodes([
                node_info(
                    NodeBuilder::new("machine1")
                        .label("region", "China")
                        .build(),
                    pods[0],
                ),
                node_info(
                    NodeBuilder::new("machine2")
                        .label("region", "India")
                        .build(),
                    pods[1],
                ),
                node_info(
                    NodeBuilder::new("machine3")
                        .label("region", "China")
                        .build(),
                    pods[2],
                ),
            ])
        };
        let s1 = PodBuilder::new("e1").label("security", "S1").build();
        let s2 = PodBuilder::new("e2").label("security", "S2").build();
        let aff = |kind: &str, w: i32| {
            PodBuilder::new("p")
                .label("security", "S1")
                .affinity_json(preferred(
                    kind,
                    vec![(w, term("security", "In", &["S1"], "region"))],
                ))
                .info()
        };

        // "all machines are same priority as Affinity is nil"
        assert_eq!(
            scores(&pl, &PodBuilder::new("p").info(), &nodes([&[], &[], &[]])),
            [0, 0, 0]
        );
        // "Affinity: pod that matches topology key & pods in nodes will get high score
        // comparing to others which doesn't match either pods in nodes or in topology key"
        assert_eq!(
            scores(
                &pl,
                &aff("podAffinity", 5),
                &nodes([std::slice::from_ref(&s1), std::slice::from_ref(&s2), &[]])
            ),
            [100, 0, 100]
        );
        // "Anti Affinity: pod that does not match existing pods in node will get high score"
        assert_eq!(
            scores(
                &pl,
                &aff("podAntiAffinity", 5),
                &nodes([std::slice::from_ref(&s1), std::slice::from_ref(&s2), &[]])
            ),
            [0, 100, 0]
        );
        // "Affinity symmetry: considered only the preferredDuringSchedulingIgnoredDuringExecution
        // in pod affinity symmetry"
        let existing_pref = PodBuilder::new("e")
            .affinity_json(preferred(
                "podAffinity",
                vec![(5, term("security", "In", &["S1"], "region"))],
            ))
            .build();
        assert_eq!(
            scores(
                &pl,
                &PodBuilder::new("p").label("security", "S1").info(),
                &nodes([&[], std::slice::from_ref(&existing_pref), &[]])
            ),
            [0, 100, 0]
        );
        // "Affinity symmetry: considered RequiredDuringSchedulingIgnoredDuringExecution in pod
        // affinity symmetry" (hardPodAffinityWeight 1)
        let existing_req = PodBuilder::new("e")
            .affinity_json(required(
                "podAffinity",
                vec![term("security", "In", &["S1"], "region")],
            ))
            .build();
        let snap = nodes([std::slice::from_ref(&existing_req), &[], &[]]);
        let incoming = PodBuilder::new("p").label("security", "S1").info();
        assert_eq!(scores(&pl, &incoming, &snap), [100, 0, 100]);
        // hardPodAffinityWeight 0 turns it off.
        let off = InterPodAffinity::from_args(
            Some(&json!({"hardPodAffinityWeight": 0})),
            &Handle::default(),
        )
        .expect("valid");
        assert_eq!(scores(&off, &incoming, &snap), [0, 0, 0]);
        // ignorePreferredTermsOfExistingPods skips scoring for a pod without preferred terms.
        let ignore = InterPodAffinity::from_args(
            Some(&json!({"ignorePreferredTermsOfExistingPods": true})),
            &Handle::default(),
        )
        .expect("valid");
        assert_eq!(
            scores(
                &ignore,
                &incoming,
                &nodes([&[], std::slice::from_ref(&existing_pref), &[]])
            ),
            [0, 0, 0]
        );
        // Mixed weights: affinity 8 to S1, anti 2 to S2: raw China 8, India -2 → 100, 0.
        let mixed = PodBuilder::new("p")
            .affinity_json(merged(vec![
                preferred(
                    "podAffinity",
                    vec![(8, term("security", "In", &["S1"], "region"))],
                ),
                preferred(
                    "podAntiAffinity",
                    vec![(2, term("security", "In", &["S2"], "region"))],
                ),
            ]))
            .info();
        assert_eq!(
            scores(
                &pl,
                &mixed,
                &nodes([std::slice::from_ref(&s1), std::slice::from_ref(&s2), &[]])
            ),
            [100, 0, 100]
        );
    }

    #[test]
    fn args_validation() {
        for bad in [
            json!({"hardPodAffinityWeight": -1}),
            json!({"hardPodAffinityWeight": 101}),
            json!({"bogus": true}),
        ] {
            assert!(InterPodAffinity::from_args(Some(&bad), &Handle::default()).is_err());
        }
        let pl = InterPodAffinity::from_args(None, &Handle::default()).expect("valid");
        assert_eq!(pl.hard_pod_affinity_weight, 1);
    }
}
