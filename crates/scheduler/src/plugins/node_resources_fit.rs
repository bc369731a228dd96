//! NodeResourcesFit: a pod fits a node only when the node's allocatable minus what its pods
//! request covers the pod's request (CPU, memory, ephemeral storage, extended resources and
//! the pod count), and nodes are scored by how much would be left (`LeastAllocated`, the
//! default), how much would be used (`MostAllocated`) or a utilisation→score curve
//! (`RequestedToCapacityRatio`).
//!
//! * **PreFilter** computes the pod's request (init containers, sidecars and overhead
//!   included) once into the cycle state.
//! * **Filter** lists every insufficient resource as upstream's reasons (`Too many pods`,
//!   `Insufficient cpu`, …). When the pod asks for more than the node's allocatable outright
//!   the status is unresolvable, since evicting pods cannot help. `ignoredResources` and
//!   `ignoredResourceGroups` exempt extended resources from the check.
//! * **PreScore/Score** use the request with upstream's defaults for containers without CPU or
//!   memory requests (100m, 200 MiB), so best-effort pods still spread.
//!
//! The resource-allocation helpers here are shared with NodeResourcesBalancedAllocation.

use std::{collections::HashSet, sync::Arc};

use serde::Deserialize;

use crate::framework::{
    ActionType, ClusterEvent, Code, CycleState, EventResource, FilterPlugin, Handle,
    MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, PreFilterPlugin, PreFilterResult, PreScorePlugin,
    Resource, ScorePlugin, Snapshot, Status,
    types::{is_extended_resource, is_scalar_resource},
};

use super::parse_args;

/// The plugin's name.
pub const NAME: &str = "NodeResourcesFit";
/// Filter: the node has no room for another pod.
pub const ERR_REASON_TOO_MANY_PODS: &str = "Too many pods";

const PRE_FILTER_KEY: &str = "PreFilterNodeResourcesFit";
const PRE_SCORE_KEY: &str = "PreScoreNodeResourcesFit";

/// The scoring strategies upstream offers.
pub const LEAST_ALLOCATED: &str = "LeastAllocated";
/// Prefer the fullest nodes.
pub const MOST_ALLOCATED: &str = "MostAllocated";
/// Score utilisation through a piecewise-linear shape.
pub const REQUESTED_TO_CAPACITY_RATIO: &str = "RequestedToCapacityRatio";

/// Upstream's `MaxCustomPriorityScore`: shape scores are 0–10, scaled to 0–100.
const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;
/// Upstream's `maxUtilization`.
const MAX_UTILIZATION: i64 = 100;

/// A resource and its weight in scoring (upstream's `ResourceSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    /// The resource name (`cpu`, `memory`, `example.com/gpu`, …).
    pub name: String,
    /// Its weight; 0 in the configuration means 1.
    #[serde(default)]
    pub weight: i64,
}

/// `cpu` and `memory`, weight 1 each: the default scored resources.
pub fn default_resources() -> Vec<ResourceSpec> {
    ["cpu", "memory"]
        .into_iter()
        .map(|name| ResourceSpec {
            name: name.to_owned(),
            weight: 1,
        })
        .collect()
}

/// One point of a `RequestedToCapacityRatio` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UtilizationShapePoint {
    /// Utilisation, 0–100.
    pub utilization: i32,
    /// Score, 0–10.
    pub score: i32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestedToCapacityRatioParam {
    #[serde(default)]
    shape: Vec<UtilizationShapePoint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScoringStrategy {
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    resources: Vec<ResourceSpec>,
    #[serde(default)]
    requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

/// `NodeResourcesFitArgs` in upstream's JSON shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    ignored_resources: Vec<String>,
    #[serde(default)]
    ignored_resource_groups: Vec<String>,
    #[serde(default)]
    scoring_strategy: Option<ScoringStrategy>,
}

/// How requested and allocatable amounts become a score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Favour free nodes.
    LeastAllocated,
    /// Favour full nodes.
    MostAllocated,
    /// A broken-linear function of utilisation; points are (utilisation, score 0–100).
    RequestedToCapacityRatio(Vec<(i64, i64)>),
    /// NodeResourcesBalancedAllocation's standard-deviation score.
    Balanced,
}

/// Upstream's `resourceAllocationScorer`: which resources count, with which weights, and
/// whether node usage is counted with the non-zero defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAllocationScorer {
    /// The scored resources.
    pub resources: Vec<ResourceSpec>,
    /// The formula.
    pub strategy: Strategy,
    /// Count real requests (BalancedAllocation) instead of requests with the defaults for
    /// containers that ask for no CPU or memory.
    pub use_requested: bool,
}

impl ResourceAllocationScorer {
    /// The pod's request of each scored resource.
    pub fn pod_requests(&self, pod: &PodInfo) -> Vec<i64> {
        let req = if self.use_requested {
            &pod.requests
        } else {
            &pod.non_zero_requests
        };
        self.resources
            .iter()
            .map(|r| resource_amount(req, &r.name))
            .collect()
    }

    /// (allocatable, requested including the pod) of one resource on `node`; (0, 0) to leave
    /// the resource out (unknown to the node, or an extended resource the pod does not ask
    /// for).
    fn allocatable_request(&self, node: &NodeInfo, name: &str, pod_request: i64) -> (i64, i64) {
        let requested = if self.use_requested {
            &node.requested
        } else {
            &node.non_zero_requested
        };
        if pod_request == 0 && is_scalar_resource(name) {
            return (0, 0);
        }
        match name {
            "cpu" => (
                node.allocatable.milli_cpu,
                requested.milli_cpu + pod_request,
            ),
            "memory" => (node.allocatable.memory, requested.memory + pod_request),
            "ephemeral-storage" => (
                node.allocatable.ephemeral_storage,
                node.requested.ephemeral_storage + pod_request,
            ),
            _ => match node.allocatable.scalar.get(name) {
                Some(alloc) => (
                    *alloc,
                    node.requested.scalar.get(name).copied().unwrap_or(0) + pod_request,
                ),
                None => (0, 0),
            },
        }
    }

    /// The node's score for a pod requesting `pod_requests` (from [`Self::pod_requests`]).
    pub fn score(&self, node: &NodeInfo, pod_requests: &[i64]) -> (i64, Status) {
        if self.resources.is_empty() {
            return (0, Status::error("resources not found"));
        }
        let mut requested = vec![0; self.resources.len()];
        let mut allocatable = vec![0; self.resources.len()];
        for (i, r) in self.resources.iter().enumerate() {
            let pod_request = pod_requests.get(i).copied().unwrap_or(0);
            let (alloc, req) = self.allocatable_request(node, &r.name, pod_request);
            if alloc == 0 {
                continue;
            }
            allocatable[i] = alloc;
            requested[i] = req;
        }
        let score = match &self.strategy {
            Strategy::LeastAllocated => {
                self.weighted(&requested, &allocatable, least_requested_score)
            }
            Strategy::MostAllocated => {
                self.weighted(&requested, &allocatable, most_requested_score)
            }
            Strategy::RequestedToCapacityRatio(shape) => {
                self.requested_to_capacity_ratio(shape, &requested, &allocatable)
            }
            Strategy::Balanced => balanced_score(&requested, &allocatable),
        };
        (score, Status::success())
    }

    fn weighted(&self, requested: &[i64], allocatable: &[i64], f: fn(i64, i64) -> i64) -> i64 {
        let (mut total, mut weights) = (0i64, 0i64);
        for (i, r) in self.resources.iter().enumerate() {
            if allocatable[i] == 0 {
                continue;
            }
            total += f(requested[i], allocatable[i]) * r.weight;
            weights += r.weight;
        }
        if weights == 0 { 0 } else { total / weights }
    }

    fn requested_to_capacity_ratio(
        &self,
        shape: &[(i64, i64)],
        requested: &[i64],
        allocatable: &[i64],
    ) -> i64 {
        let (mut total, mut weights) = (0i64, 0i64);
        for (i, r) in self.resources.iter().enumerate() {
            if allocatable[i] == 0 {
                continue;
            }
            let utilization = if requested[i] > allocatable[i] {
                MAX_UTILIZATION
            } else {
                requested[i] * MAX_UTILIZATION / allocatable[i]
            };
            let s = broken_linear(shape, utilization);
            // Upstream leaves resources scoring 0 out of the average.
            if s > 0 {
                total += s * r.weight;
                weights += r.weight;
            }
        }
        if weights == 0 {
            0
        } else {
            (total as f64 / weights as f64).round() as i64
        }
    }
}

/// The amount of `name` in `r`, 0 for resources the scorers do not know (`pods`).
fn resource_amount(r: &Resource, name: &str) -> i64 {
    if name == "pods" { 0 } else { r.get(name) }
}

/// `(capacity - requested) / capacity` on the 0–100 scale; 0 when over capacity.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// `requested / capacity` on the 0–100 scale, capped at 100.
pub fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

/// Upstream's broken-linear function: flat before the first and after the last point,
/// integer linear interpolation between points.
pub fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, (u, s)) in shape.iter().enumerate() {
        if p <= *u {
            if i == 0 {
                return *s;
            }
            let (pu, ps) = shape[i - 1];
            if *u == pu {
                return *s;
            }
            return ps + (s - ps) * (p - pu) / (u - pu);
        }
    }
    shape.last().map_or(0, |(_, s)| *s)
}

/// NodeResourcesBalancedAllocation's score: 100 × (1 − standard deviation of the
/// requested/allocatable fractions), each fraction capped at 1.
pub fn balanced_score(requested: &[i64], allocatable: &[i64]) -> i64 {
    let fractions: Vec<f64> = requested
        .iter()
        .zip(allocatable)
        .filter(|(_, a)| **a != 0)
        .map(|(r, a)| (*r as f64 / *a as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            let var = fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64;
            var.sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// Checks a scored-resource list: weights in `1..=max_weight`, no duplicates.
pub fn validate_resources(
    resources: &[ResourceSpec],
    path: &str,
    max_weight: i64,
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for (i, r) in resources.iter().enumerate() {
        if max_weight == 1 && r.weight != 1 {
            return Err(format!(
                "{path}[{i}].weight: Invalid value: {}: must be 1",
                r.weight
            ));
        }
        if r.weight <= 0 || r.weight > max_weight {
            return Err(format!(
                "{path}[{i}].weight: Invalid value: {}: resource weight of {} not in valid range [1, {max_weight}]",
                r.weight, r.name
            ));
        }
        if !seen.insert(r.name.as_str()) {
            return Err(format!("{path}[{i}].name: Duplicate value: {:?}", r.name));
        }
    }
    Ok(())
}

/// A qualified name as upstream's `ValidateLabelName` wants: `[prefix/]name`, name at most 63
/// alphanumeric characters, `-`, `_` or `.`, starting and ending alphanumeric.
fn valid_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    name_ok && prefix.is_none_or(valid_dns_subdomain)
}

fn valid_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The plugin.
#[derive(Debug)]
pub struct Fit {
    ignored_resources: HashSet<String>,
    ignored_resource_groups: HashSet<String>,
    scorer: ResourceAllocationScorer,
}

/// The factory: defaults and validates `NodeResourcesFitArgs` as upstream does.
pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(Fit::from_args(args)?))
}

impl Fit {
    fn from_args(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let args: Args = parse_args(args)?;
        let _ = (&args.api_version, &args.kind);
        for (i, r) in args.ignored_resources.iter().enumerate() {
            if !valid_qualified_name(r) {
                return Err(format!(
                    "ignoredResources[{i}]: Invalid value: {r:?}: must be a qualified name"
                ));
            }
        }
        for (i, g) in args.ignored_resource_groups.iter().enumerate() {
            if g.contains('/') {
                return Err(format!(
                    "ignoredResourceGroups[{i}]: Invalid value: {g:?}: resource group name can't contain '/'"
                ));
            }
            if !valid_dns_subdomain(g) {
                return Err(format!(
                    "ignoredResourceGroups[{i}]: Invalid value: {g:?}: must be a DNS-1123 subdomain"
                ));
            }
        }
        let mut strategy = args.scoring_strategy.unwrap_or_else(|| ScoringStrategy {
            type_: LEAST_ALLOCATED.to_owned(),
            ..Default::default()
        });
        // Upstream's v1 defaulting: no resources means cpu and memory; weight 0 means 1.
        if strategy.resources.is_empty() {
            strategy.resources = default_resources();
        }
        for r in &mut strategy.resources {
            if r.weight == 0 {
                r.weight = 1;
            }
        }
        validate_resources(
            &strategy.resources,
            "scoringStrategy.resources",
            MAX_NODE_SCORE,
        )?;
        let kind = match strategy.type_.as_str() {
            LEAST_ALLOCATED => Strategy::LeastAllocated,
            MOST_ALLOCATED => Strategy::MostAllocated,
            REQUESTED_TO_CAPACITY_RATIO => {
                let Some(param) = &strategy.requested_to_capacity_ratio else {
                    return Err(
                        "scoringStrategy.requestedToCapacityRatio: Required value: requestedToCapacityRatio must be set for the RequestedToCapacityRatio strategy"
                            .to_owned(),
                    );
                };
                Strategy::RequestedToCapacityRatio(validate_shape(&param.shape)?)
            }
            other => {
                return Err(format!(
                    "scoringStrategy.type: Unsupported value: {other:?}: supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
                ));
            }
        };
        Ok(Self {
            ignored_resources: args.ignored_resources.into_iter().collect(),
            ignored_resource_groups: args.ignored_resource_groups.into_iter().collect(),
            scorer: ResourceAllocationScorer {
                resources: strategy.resources,
                strategy: kind,
                use_requested: false,
            },
        })
    }
}

/// Validates a shape and scales its scores to 0–100.
fn validate_shape(shape: &[UtilizationShapePoint]) -> Result<Vec<(i64, i64)>, String> {
    let path = "scoringStrategy.requestedToCapacityRatio.shape";
    if shape.is_empty() {
        return Err(format!(
            "{path}: Required value: at least one point must be specified"
        ));
    }
    for (i, p) in shape.iter().enumerate() {
        if i > 0 && shape[i - 1].utilization >= p.utilization {
            return Err(format!(
                "{path}[{i}].utilization: Invalid value: {}: utilization values must be sorted in increasing order",
                p.utilization
            ));
        }
        if !(0..=MAX_UTILIZATION as i32).contains(&p.utilization) {
            return Err(format!(
                "{path}[{i}].utilization: Invalid value: {}: utilization values must not be less than 0 or greater than 100",
                p.utilization
            ));
        }
        if !(0..=MAX_CUSTOM_PRIORITY_SCORE as i32).contains(&p.score) {
            return Err(format!(
                "{path}[{i}].score: Invalid value: {}: score values must not be less than 0 or greater than 10",
                p.score
            ));
        }
    }
    Ok(shape
        .iter()
        .map(|p| {
            (
                i64::from(p.utilization),
                i64::from(p.score) * (MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE),
            )
        })
        .collect())
}

/// One resource the pod needs more of than the node has free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientResource {
    /// The resource.
    pub name: String,
    /// The reason shown to users.
    pub reason: String,
    /// The pod's request.
    pub requested: i64,
    /// What the node's pods use.
    pub used: i64,
    /// The node's allocatable.
    pub capacity: i64,
    /// True when the request exceeds the allocatable itself (no eviction can help).
    pub unresolvable: bool,
}

impl Fit {
    fn ignored(&self, name: &str) -> bool {
        if !is_extended_resource(name) {
            return false;
        }
        let group = name.split('/').next().unwrap_or_default();
        self.ignored_resources.contains(name) || self.ignored_resource_groups.contains(group)
    }

    /// Every resource `request` lacks on `node` (upstream's `fitsRequest`).
    pub fn insufficient_resources(
        &self,
        request: &Resource,
        node: &NodeInfo,
    ) -> Vec<InsufficientResource> {
        let mut out = Vec::new();
        let pods = node.pods.len() as i64;
        if pods + 1 > node.allocatable.allowed_pod_number {
            out.push(InsufficientResource {
                name: "pods".to_owned(),
                reason: ERR_REASON_TOO_MANY_PODS.to_owned(),
                requested: 1,
                used: pods,
                capacity: node.allocatable.allowed_pod_number,
                unresolvable: false,
            });
        }
        if request.is_zero() {
            return out;
        }
        let mut check = |name: &str, want: i64, used: i64, capacity: i64| {
            if want > 0 && want > capacity - used {
                out.push(InsufficientResource {
                    name: name.to_owned(),
                    reason: format!("Insufficient {name}"),
                    requested: want,
                    used,
                    capacity,
                    unresolvable: want > capacity,
                });
            }
        };
        check(
            "cpu",
            request.milli_cpu,
            node.requested.milli_cpu,
            node.allocatable.milli_cpu,
        );
        check(
            "memory",
            request.memory,
            node.requested.memory,
            node.allocatable.memory,
        );
        check(
            "ephemeral-storage",
            request.ephemeral_storage,
            node.requested.ephemeral_storage,
            node.allocatable.ephemeral_storage,
        );
        for (name, want) in &request.scalar {
            if *want == 0 || self.ignored(name) {
                continue;
            }
            check(
                name,
                *want,
                node.requested.scalar.get(name).copied().unwrap_or(0),
                node.allocatable.scalar.get(name).copied().unwrap_or(0),
            );
        }
        out
    }
}

/// The pod's request, computed once per cycle.
#[derive(Debug, Clone)]
struct PreFilterState(Resource);

/// The pod's request of each scored resource.
#[derive(Debug, Clone)]
struct PreScoreState(Vec<i64>);

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Pod, ActionType::Delete),
            // Upstream: Pod/UpdatePodScaleDown (a running pod's requests shrank).
            ClusterEvent::new(EventResource::Pod, ActionType::UpdatePodSpec),
            ClusterEvent::new(EventResource::Node, ActionType::Add),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateAllocatable),
            ClusterEvent::new(EventResource::Node, ActionType::UpdateTaint),
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

impl PreFilterPlugin for Fit {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        state.write(PRE_FILTER_KEY, PreFilterState(pod.requests.clone()));
        (None, Status::success())
    }
}

impl FilterPlugin for Fit {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let request = state
            .read::<PreFilterState>(PRE_FILTER_KEY)
            .map_or(&pod.requests, |s| &s.0);
        let insufficient = self.insufficient_resources(request, node);
        if insufficient.is_empty() {
            return Status::success();
        }
        let code = if insufficient.iter().any(|r| r.unresolvable) {
            Code::UnschedulableAndUnresolvable
        } else {
            Code::Unschedulable
        };
        Status::new(code, insufficient.into_iter().map(|r| r.reason).collect())
    }
}

impl PreScorePlugin for Fit {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        state.write(PRE_SCORE_KEY, PreScoreState(self.scorer.pod_requests(pod)));
        Status::success()
    }
}

impl ScorePlugin for Fit {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => self.scorer.score(node, &s.0),
            None => self.scorer.score(node, &self.scorer.pod_requests(pod)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    const EXT_A: &str = "example.com/aaa";
    const EXT_B: &str = "example.com/bbb";
    const HUGEPAGE_A: &str = "hugepages-2Mi";

    /// Upstream's `makeAllocatableResources(10, 20, 32, 5, 20, 5)`.
    fn fit_node(pods: &[Pod]) -> NodeInfo {
        node_info(
            NodeBuilder::new("node")
                .allocatable(&[
                    ("cpu", "10m"),
                    ("memory", "20"),
                    ("pods", "32"),
                    (EXT_A, "5"),
                    ("ephemeral-storage", "20"),
                    (HUGEPAGE_A, "5"),
                ])
                .build(),
            pods,
        )
    }

    fn res(cpu: i64, mem: i64) -> Vec<(String, String)> {
        vec![
            ("cpu".to_owned(), format!("{cpu}m")),
            ("memory".to_owned(), mem.to_string()),
        ]
    }

    fn pod_with(containers: &[Vec<(String, String)>]) -> PodBuilder {
        let mut b = PodBuilder::new("p");
        for c in containers {
            let refs: Vec<(&str, &str)> = c.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            b = b.container(&refs);
        }
        b
    }

    fn with_init(mut b: PodBuilder, inits: &[Vec<(String, String)>], sidecar: bool) -> PodBuilder {
        for c in inits {
            let refs: Vec<(&str, &str)> = c.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            b = b.init_container(&refs, sidecar);
        }
        b
    }

    fn ext(name: &str, n: i64) -> Vec<(String, String)> {
        vec![(name.to_owned(), n.to_string())]
    }

    fn run_filter(pl: &Fit, pod: PodBuilder, node: &NodeInfo) -> Status {
        let pod = pod.info();
        let mut state = CycleState::default();
        let (_, s) = pl.pre_filter(&mut state, &pod, &Snapshot::default());
        assert!(s.is_success());
        pl.filter(&state, &pod, node)
    }

    fn fit(args: serde_json::Value) -> Fit {
        Fit::from_args(Some(&args)).expect("valid args")
    }

    #[test]
    fn filter_follows_upstream_enough_requests_cases() {
        let plain = fit(json!({}));
        let ignore_b = fit(json!({"ignoredResources": [EXT_B]}));
        let ignore_group = fit(json!({"ignoredResourceGroups": ["example.com"]}));
        let existing = |cpu, mem| vec![pod_with(&[res(cpu, mem)]).build()];
        let u = Code::Unschedulable;
        let uu = Code::UnschedulableAndUnresolvable;
        type Want = Option<(Code, Vec<&'static str>)>;
        let cases: Vec<(&str, PodBuilder, Vec<Pod>, Want, &Fit)> = vec![
            (
                "no resources requested always fits",
                PodBuilder::new("p"),
                existing(10, 20),
                None,
                &plain,
            ),
            (
                "too many resources fails",
                pod_with(&[res(1, 1)]),
                existing(10, 20),
                Some((u, vec!["Insufficient cpu", "Insufficient memory"])),
                &plain,
            ),
            (
                "too many resources fails due to init container cpu",
                with_init(pod_with(&[res(1, 1)]), &[res(3, 1)], false),
                existing(8, 19),
                Some((u, vec!["Insufficient cpu"])),
                &plain,
            ),
            (
                "too many resources fails due to highest init container cpu",
                with_init(pod_with(&[res(1, 1)]), &[res(3, 1), res(2, 1)], false),
                existing(8, 19),
                Some((u, vec!["Insufficient cpu"])),
                &plain,
            ),
            (
                "too many resources fails due to init container memory",
                with_init(pod_with(&[res(1, 1)]), &[res(1, 3)], false),
                existing(9, 19),
                Some((u, vec!["Insufficient memory"])),
                &plain,
            ),
            (
                "init container fits because it's the max, not sum, of containers and init containers",
                with_init(pod_with(&[res(1, 1)]), &[res(1, 1)], false),
                existing(9, 19),
                None,
                &plain,
            ),
            (
                "both resources fit",
                pod_with(&[res(1, 1)]),
                existing(5, 5),
                None,
                &plain,
            ),
            (
                "one resource memory fits",
                pod_with(&[res(2, 1)]),
                existing(9, 5),
                Some((u, vec!["Insufficient cpu"])),
                &plain,
            ),
            (
                "one resource cpu fits",
                pod_with(&[res(1, 2)]),
                existing(5, 19),
                Some((u, vec!["Insufficient memory"])),
                &plain,
            ),
            (
                "equal edge case",
                pod_with(&[res(5, 1)]),
                existing(5, 19),
                None,
                &plain,
            ),
            (
                "equal edge case for init container",
                with_init(pod_with(&[res(4, 1)]), &[res(5, 1)], false),
                existing(5, 19),
                None,
                &plain,
            ),
            (
                "extended resource fits",
                pod_with(&[ext(EXT_A, 1)]),
                existing(0, 0),
                None,
                &plain,
            ),
            (
                "extended resource fits for init container",
                with_init(PodBuilder::new("p"), &[ext(EXT_A, 1)], false),
                existing(0, 0),
                None,
                &plain,
            ),
            (
                "extended resource capacity enforced",
                pod_with(&[ext(EXT_A, 10)]),
                existing(0, 0),
                Some((uu, vec!["Insufficient example.com/aaa"])),
                &plain,
            ),
            (
                "extended resource capacity enforced for init container",
                with_init(PodBuilder::new("p"), &[ext(EXT_A, 10)], false),
                existing(0, 0),
                Some((uu, vec!["Insufficient example.com/aaa"])),
                &plain,
            ),
            (
                "extended resource allocatable enforced",
                pod_with(&[ext(EXT_A, 1)]),
                vec![pod_with(&[ext(EXT_A, 5)]).build()],
                Some((u, vec!["Insufficient example.com/aaa"])),
                &plain,
            ),
            (
                "extended resource allocatable enforced for multiple containers",
                pod_with(&[ext(EXT_A, 3), ext(EXT_A, 3)]),
                vec![pod_with(&[ext(EXT_A, 2)]).build()],
                Some((uu, vec!["Insufficient example.com/aaa"])),
                &plain,
            ),
            (
                "extended resource allocatable admits multiple init containers",
                with_init(PodBuilder::new("p"), &[ext(EXT_A, 3), ext(EXT_A, 3)], false),
                vec![pod_with(&[ext(EXT_A, 2)]).build()],
                None,
                &plain,
            ),
            (
                "extended resource allocatable enforced for unknown resource",
                pod_with(&[ext(EXT_B, 1)]),
                existing(0, 0),
                Some((uu, vec!["Insufficient example.com/bbb"])),
                &plain,
            ),
            (
                "hugepages resource capacity enforced",
                pod_with(&[ext(HUGEPAGE_A, 10)]),
                existing(0, 0),
                Some((uu, vec!["Insufficient hugepages-2Mi"])),
                &plain,
            ),
            (
                "hugepages resource allocatable enforced for multiple containers",
                pod_with(&[ext(HUGEPAGE_A, 3), ext(HUGEPAGE_A, 3)]),
                vec![pod_with(&[ext(HUGEPAGE_A, 2)]).build()],
                Some((uu, vec!["Insufficient hugepages-2Mi"])),
                &plain,
            ),
            (
                "skip checking ignored extended resource",
                pod_with(&[ext(EXT_B, 1)]),
                existing(0, 0),
                None,
                &ignore_b,
            ),
            (
                "resources + pod overhead fits",
                pod_with(&[res(1, 1)]).overhead(&[("cpu", "3m"), ("memory", "13")]),
                existing(5, 5),
                None,
                &plain,
            ),
            (
                "requests + overhead does not fit for memory",
                pod_with(&[res(1, 1)]).overhead(&[("cpu", "1m"), ("memory", "15")]),
                existing(5, 5),
                Some((u, vec!["Insufficient memory"])),
                &plain,
            ),
            (
                "skip checking ignored extended resource via resource groups",
                pod_with(&[ext(EXT_B, 1)]),
                existing(0, 0),
                None,
                &ignore_group,
            ),
            (
                "skip checking resource request with quantity zero",
                pod_with(&[ext(EXT_A, 0)]),
                existing(0, 0),
                None,
                &plain,
            ),
            (
                "restartable init container",
                with_init(pod_with(&[res(1, 1)]), &[res(2, 0)], true),
                existing(8, 19),
                Some((u, vec!["Insufficient cpu"])),
                &plain,
            ),
            (
                "ephemeral storage capacity enforced",
                pod_with(&[ext("ephemeral-storage", 25)]),
                existing(2, 2),
                Some((uu, vec!["Insufficient ephemeral-storage"])),
                &plain,
            ),
            (
                "request over allocatable is unresolvable",
                pod_with(&[res(11, 1)]),
                existing(0, 0),
                Some((uu, vec!["Insufficient cpu"])),
                &plain,
            ),
        ];
        for (name, pod, pods, want, pl) in cases {
            let s = run_filter(pl, pod, &fit_node(&pods));
            match want {
                None => assert!(s.is_success(), "{name}: {s:?}"),
                Some((code, reasons)) => {
                    assert_eq!(s.code, code, "{name}: {s:?}");
                    assert_eq!(s.reasons, reasons, "{name}");
                }
            }
        }
    }

    #[test]
    fn filter_follows_upstream_not_enough_pods_cases() {
        let pl = fit(json!({}));
        let node = node_info(
            NodeBuilder::new("node")
                .allocatable(&[("cpu", "10m"), ("memory", "20"), ("pods", "1")])
                .build(),
            &[pod_with(&[res(10, 20)]).build()],
        );
        let s = run_filter(&pl, PodBuilder::new("p"), &node);
        assert_eq!(
            (s.code, s.reasons),
            (Code::Unschedulable, vec!["Too many pods".to_owned()]),
            "even without specified resources, predicate fails when there's no space for additional pod"
        );
        let s = run_filter(&pl, pod_with(&[res(1, 1)]), &node);
        assert_eq!(
            s.reasons,
            ["Too many pods", "Insufficient cpu", "Insufficient memory"],
            "even if both resources fit, predicate fails when there's no space for additional pod"
        );
    }

    /// Scores `pod` on nodes `(allocatable cpu, memory)` with existing pods' containers.
    fn scores(pl: &Fit, pod: PodBuilder, nodes: &[NodeInfo]) -> Vec<i64> {
        let pod = pod.info();
        let infos: Vec<Arc<NodeInfo>> = nodes.iter().cloned().map(Arc::new).collect();
        let mut state = CycleState::default();
        assert!(
            pl.pre_score(&mut state, &pod, &infos, &Snapshot::default())
                .is_success()
        );
        infos
            .iter()
            .map(|n| {
                let (score, s) = pl.score(&state, &pod, n);
                assert!(s.is_success());
                score
            })
            .collect()
    }

    /// A node with allocatable in whole cores and bytes, and pods of one container each.
    fn node(name: &str, cpu: i64, mem: i64, pods: &[(i64, i64)]) -> NodeInfo {
        let pods: Vec<Pod> = pods
            .iter()
            .enumerate()
            .map(|(i, (c, m))| {
                PodBuilder::new(&format!("{name}-{i}"))
                    .container(&[("cpu", &c.to_string()), ("memory", &m.to_string())])
                    .build()
            })
            .collect();
        node_info(
            NodeBuilder::new(name)
                .allocatable(&[("cpu", &cpu.to_string()), ("memory", &mem.to_string())])
                .build(),
            &pods,
        )
    }

    fn requesting(containers: &[(i64, i64)]) -> PodBuilder {
        let mut b = PodBuilder::new("p");
        for (c, m) in containers {
            b = b.container(&[("cpu", &c.to_string()), ("memory", &m.to_string())]);
        }
        b
    }

    #[test]
    fn least_allocated_scores_follow_upstream() {
        let pl = fit(json!({}));
        let big = [(1000, 2000), (2000, 3000)];
        let cases: Vec<(&str, PodBuilder, Vec<NodeInfo>, Vec<i64>)> = vec![
            (
                "nothing scheduled, nothing requested",
                PodBuilder::new("p"),
                vec![
                    node("node1", 4000, 10000, &[]),
                    node("node2", 4000, 10000, &[]),
                ],
                vec![100, 100],
            ),
            (
                "nothing scheduled, resources requested, differently sized nodes",
                requesting(&big),
                vec![
                    node("node1", 4000, 10000, &[]),
                    node("node2", 6000, 10000, &[]),
                ],
                vec![37, 50],
            ),
            (
                "no resources requested, pods scheduled with resources",
                PodBuilder::new("p"),
                vec![
                    node("node1", 10000, 20000, &[(3000, 0), (3000, 0)]),
                    node("node2", 10000, 20000, &[(3000, 0), (3000, 5000)]),
                ],
                vec![70, 57],
            ),
            (
                "resources requested, pods scheduled with resources",
                requesting(&big),
                vec![
                    node("node1", 10000, 20000, &[(3000, 0)]),
                    node("node2", 10000, 20000, &[(3000, 5000)]),
                ],
                vec![57, 45],
            ),
            (
                "resources requested, pods scheduled with resources, differently sized nodes",
                requesting(&big),
                vec![
                    node("node1", 10000, 20000, &[(3000, 0)]),
                    node("node2", 10000, 50000, &[(3000, 5000)]),
                ],
                vec![57, 60],
            ),
            (
                "requested resources exceed node capacity",
                requesting(&[(3000, 0)]),
                vec![
                    node("node1", 4000, 10000, &[(3000, 0)]),
                    node("node2", 4000, 10000, &[(3000, 5000)]),
                ],
                vec![50, 25],
            ),
            (
                "zero node resources, pods scheduled with resources",
                PodBuilder::new("p"),
                vec![
                    node_info(NodeBuilder::new("node1").build(), &[]),
                    node_info(NodeBuilder::new("node2").build(), &[]),
                ],
                vec![0, 0],
            ),
        ];
        for (name, pod, nodes, want) in cases {
            assert_eq!(scores(&pl, pod, &nodes), want, "{name}");
        }
        let weighted = fit(json!({"scoringStrategy": {"type": "LeastAllocated",
            "resources": [{"name": "memory", "weight": 2}, {"name": "cpu", "weight": 1}]}}));
        assert_eq!(
            scores(
                &weighted,
                requesting(&big),
                &[
                    node("node1", 4000, 10000, &[]),
                    node("node2", 6000, 10000, &[])
                ]
            ),
            [41, 50],
            "nothing scheduled, resources requested with different weight on CPU and memory, differently sized nodes"
        );
    }

    #[test]
    fn extended_resources_are_scored_only_when_requested() {
        let pl = fit(
            json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [
            {"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}, {"name": "abc.com/xyz", "weight": 1}]}}),
        );
        let mk = |name: &str, ext: Option<&str>| {
            let mut list = vec![("cpu", "6000"), ("memory", "10000")];
            if let Some(e) = ext {
                list.push(("abc.com/xyz", e));
            }
            node_info(NodeBuilder::new(name).allocatable(&list).build(), &[])
        };
        let big = requesting(&[(1000, 2000), (2000, 3000)]);
        assert_eq!(
            scores(
                &pl,
                big.clone(),
                &[mk("node1", None), mk("node2", Some("4"))]
            ),
            [50, 50],
            "bypass extended resource if the pod does not request"
        );
        let with_ext = PodBuilder::new("p")
            .container(&[("cpu", "1000"), ("memory", "2000"), ("abc.com/xyz", "2")])
            .container(&[("cpu", "2000"), ("memory", "3000")]);
        assert_eq!(
            scores(
                &pl,
                with_ext,
                &[mk("node1", Some("4")), mk("node2", Some("10"))]
            ),
            [50, 60],
            "honor extended resource if the pod requests"
        );
    }

    #[test]
    fn most_allocated_scores_follow_upstream() {
        let pl = fit(json!({"scoringStrategy": {"type": "MostAllocated"}}));
        let big = [(1000, 2000), (2000, 3000)];
        let cases: Vec<(&str, PodBuilder, Vec<NodeInfo>, Vec<i64>)> = vec![
            (
                "nothing scheduled, nothing requested",
                PodBuilder::new("p"),
                vec![
                    node("node1", 4000, 10000, &[]),
                    node("node2", 4000, 10000, &[]),
                ],
                vec![0, 0],
            ),
            (
                "nothing scheduled, resources requested, differently sized nodes",
                requesting(&big),
                vec![
                    node("node1", 4000, 10000, &[]),
                    node("node2", 6000, 10000, &[]),
                ],
                vec![62, 50],
            ),
            (
                "no resources requested, pods scheduled with resources",
                PodBuilder::new("p"),
                vec![
                    node("node1", 10000, 20000, &[(3000, 0), (3000, 0)]),
                    node("node2", 10000, 20000, &[(3000, 0), (3000, 5000)]),
                ],
                vec![30, 42],
            ),
            (
                "resources requested, pods scheduled with resources",
                requesting(&big),
                vec![
                    node("node1", 10000, 20000, &[(3000, 0)]),
                    node("node2", 10000, 20000, &[(3000, 5000)]),
                ],
                vec![42, 55],
            ),
            (
                "resources requested with more than the node, pods scheduled with resources",
                requesting(&[(2000, 4000), (3000, 5000)]),
                vec![
                    node("node1", 4000, 10000, &[]),
                    node("node2", 10000, 8000, &[]),
                ],
                vec![95, 75],
            ),
        ];
        for (name, pod, nodes, want) in cases {
            assert_eq!(scores(&pl, pod, &nodes), want, "{name}");
        }
    }

    #[test]
    fn requested_to_capacity_ratio_scores_follow_upstream() {
        let pl = fit(
            json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]}}}),
        );
        let big = [(1000, 2000), (2000, 3000)];
        let cases: Vec<(&str, PodBuilder, Vec<NodeInfo>, Vec<i64>)> = vec![
            (
                "nothing scheduled, nothing requested (default - least requested nodes have priority)",
                PodBuilder::new("p"),
                vec![
                    node("node1", 4000, 10000, &[]),
                    node("node2", 4000, 10000, &[]),
                ],
                vec![100, 100],
            ),
            (
                "nothing scheduled, resources requested, differently sized nodes (default - least requested nodes have priority)",
                requesting(&big),
                vec![
                    node("node1", 4000, 10000, &[]),
                    node("node2", 6000, 10000, &[]),
                ],
                vec![38, 50],
            ),
            (
                "no resources requested, pods scheduled with resources (default - least requested nodes have priority)",
                PodBuilder::new("p"),
                vec![
                    node("node1", 10000, 20000, &[(3000, 0), (3000, 0)]),
                    node("node2", 10000, 20000, &[(3000, 0), (3000, 5000)]),
                ],
                vec![70, 58],
            ),
        ];
        for (name, pod, nodes, want) in cases {
            assert_eq!(scores(&pl, pod, &nodes), want, "{name}");
        }
        let most = fit(
            json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}],
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}}),
        );
        assert_eq!(
            scores(
                &most,
                requesting(&big),
                &[
                    node("node1", 4000, 10000, &[]),
                    node("node2", 6000, 10000, &[])
                ]
            ),
            [63, 50],
            "nothing scheduled, resources requested, differently sized nodes (most requested nodes have priority)"
        );
    }

    #[test]
    fn broken_linear_function_interpolates_like_upstream() {
        let shape = [(10, 1), (90, 9)];
        let cases = [
            (-10, 1),
            (0, 1),
            (9, 1),
            (10, 1),
            (15, 1),
            (20, 2),
            (89, 8),
            (90, 9),
            (99, 9),
            (100, 9),
            (110, 9),
        ];
        for (p, want) in cases {
            assert_eq!(broken_linear(&shape, p), want, "p={p}");
        }
        let shape = [(0, 2), (40, 10), (100, 0)];
        let cases = [
            (-10, 2),
            (0, 2),
            (20, 6),
            (30, 8),
            (40, 10),
            (70, 5),
            (100, 0),
            (110, 0),
        ];
        for (p, want) in cases {
            assert_eq!(broken_linear(&shape, p), want, "p={p}");
        }
    }

    #[test]
    fn invalid_args_are_rejected() {
        let cases = [
            (
                json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "memory", "weight": -1}, {"name": "cpu", "weight": 1}]}}),
                "scoringStrategy.resources[0].weight: Invalid value: -1: resource weight of memory not in valid range [1, 100]",
            ),
            (
                json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "memory", "weight": 1}, {"name": "cpu", "weight": 101}]}}),
                "scoringStrategy.resources[1].weight: Invalid value: 101: resource weight of cpu not in valid range [1, 100]",
            ),
            (
                json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 1}, {"name": "cpu", "weight": 2}]}}),
                "scoringStrategy.resources[1].name: Duplicate value: \"cpu\"",
            ),
            (
                json!({"scoringStrategy": {"type": "Bogus"}}),
                "scoringStrategy.type: Unsupported value: \"Bogus\": supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\"",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio"}}),
                "scoringStrategy.requestedToCapacityRatio: Required value",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": []}}}),
                "scoringStrategy.requestedToCapacityRatio.shape: Required value: at least one point must be specified",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [{"utilization": 10, "score": 1}, {"utilization": 10, "score": 2}]}}}),
                "scoringStrategy.requestedToCapacityRatio.shape[1].utilization: Invalid value: 10: utilization values must be sorted in increasing order",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [{"utilization": 110, "score": 1}]}}}),
                "scoringStrategy.requestedToCapacityRatio.shape[0].utilization: Invalid value: 110",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [{"utilization": 10, "score": 11}]}}}),
                "scoringStrategy.requestedToCapacityRatio.shape[0].score: Invalid value: 11",
            ),
            (
                json!({"ignoredResourceGroups": ["example.com/aaa"]}),
                "ignoredResourceGroups[0]: Invalid value: \"example.com/aaa\": resource group name can't contain '/'",
            ),
            (
                json!({"ignoredResources": ["-bad"]}),
                "ignoredResources[0]: Invalid value: \"-bad\"",
            ),
            (
                json!({"scoringStrategy": {"type": "LeastAllocated", "bogus": 1}}),
                "unknown field `bogus`",
            ),
        ];
        for (args, want) in cases {
            let err = Fit::from_args(Some(&args)).expect_err("invalid args");
            assert!(err.starts_with(want), "{err}\nwant: {want}");
        }
        let defaulted = fit(json!({"scoringStrategy": {"type": "MostAllocated",
            "resources": [{"name": "cpu"}]}}));
        assert_eq!(
            defaulted.scorer.resources[0].weight, 1,
            "weight 0 defaults to 1"
        );
        assert_eq!(fit(json!({})).scorer.resources, default_resources());
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
        assert_eq!(fit(json!({})).events_to_register(), want);
    }
}
