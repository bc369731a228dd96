//! DefaultPreemption: when no node fits a pod, find a node where evicting lower-priority pods
//! would make it fit, and the fewest, least important pods to evict there.
//!
//! The plugin only decides: it returns the nominated node and the victims; the scheduler
//! deletes the victims and records `status.nominatedNodeName`.
//!
//! Steps, as upstream's preemption evaluator:
//! 1. The pod must be eligible: its `preemptionPolicy` is not `Never`, and if it was already
//!    nominated to a node that is still worth waiting for, no lower-priority pod there may
//!    still be terminating because of an earlier preemption.
//! 2. Candidates are the nodes whose Filter status is `Unschedulable` (not
//!    `UnschedulableAndUnresolvable`, not absent). A sample of them is dry-run (at least
//!    `minCandidateNodesPercentage` % and `minCandidateNodesAbsolute` nodes, from a random
//!    offset): on copies of the node and the cycle state, every lower-priority pod is removed
//!    (running the PreFilter extensions), the pod must then pass Filter, and the victims are
//!    reprieved highest priority first (those whose PodDisruptionBudget would be violated first)
//!    as long as the pod still fits.
//! 3. The node is chosen by, in order: fewest PDB violations, lowest highest-victim priority,
//!    smallest sum of victim priorities, fewest victims, latest start time of the
//!    highest-priority victims, then the first candidate.
//!
//! When nothing works the status carries a single reason in upstream's shape,
//! `preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2
//! Preemption is not helpful for scheduling.` (a histogram of the dry-run statuses, with the
//! nodes that were not candidates counted as "Preemption is not helpful for scheduling"); the
//! scheduler appends it to the FailedScheduling message after the filter histogram.
//!
//! Deviation: the dry run filters with [`Framework::run_filter`], without the pods nominated
//! to the node (upstream's `RunFilterPluginsWithNominatedPods`), because PostFilter is not
//! given the nominator.

use std::{
    collections::{BTreeMap, HashSet},
    hash::{BuildHasher, RandomState},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use k8s_openapi::api::core::v1::Pod;
use rayon::prelude::*;
use serde::Deserialize;
use tug_apimachinery::labels::Selector;

use crate::framework::{
    Code, CycleState, Handle, Listers, NodeInfo, NodeToStatus, Plugin, PodInfo, PostFilterPlugin,
    PostFilterResult, Snapshot, Status,
    runtime::Framework,
    types::{labels_of, pod_priority, to_selector},
};

use super::parse_args;

/// The plugin's name.
pub const NAME: &str = "DefaultPreemption";
/// Dry-run status of a node without lower-priority pods.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
/// Histogram entry for the nodes that were not preemption candidates.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

/// `DefaultPreemptionArgs` in upstream's JSON shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    min_candidate_nodes_percentage: Option<i32>,
    #[serde(default)]
    min_candidate_nodes_absolute: Option<i32>,
}

/// The plugin.
#[derive(Debug)]
pub struct DefaultPreemption {
    min_candidate_nodes_percentage: i32,
    min_candidate_nodes_absolute: i32,
    listers: Listers,
}

/// The factory: defaults 10 % and 100 nodes, validated as upstream.
pub fn new(args: Option<&serde_json::Value>, h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(DefaultPreemption::from_args(args, h)?))
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

/// A PodDisruptionBudget reduced to what the victim selection needs.
#[derive(Debug)]
struct Budget {
    namespace: String,
    selector: Selector,
    disruptions_allowed: i32,
    disrupted_pods: HashSet<String>,
}

/// A node where preemption works, with its victims (most important first).
#[derive(Debug, Clone)]
struct Candidate {
    name: String,
    victims: Vec<Arc<PodInfo>>,
    num_pdb_violations: i64,
}

/// Upstream's `MoreImportantPod`: higher priority, then earlier start (a pod that has not
/// started counts as starting now).
fn more_important(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    pod_priority(b)
        .cmp(&pod_priority(a))
        .then_with(|| start_nanos(a).cmp(&start_nanos(b)))
}

fn start_nanos(p: &Pod) -> i128 {
    p.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.as_nanosecond())
        .unwrap_or_else(|| k8s_openapi::jiff::Timestamp::now().as_nanosecond())
}

/// Deleted by an earlier preemption and still terminating.
fn terminating_by_preemption(p: &Pod) -> bool {
    if p.metadata.deletion_timestamp.is_none() {
        return false;
    }
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget"))
        .is_some_and(|c| c.status == "True" && c.reason.as_deref() == Some("PreemptionByScheduler"))
}

impl DefaultPreemption {
    fn from_args(args: Option<&serde_json::Value>, h: &Handle) -> Result<Self, String> {
        let args: Args = parse_args(args)?;
        let _ = (&args.api_version, &args.kind);
        let pct = args.min_candidate_nodes_percentage.unwrap_or(10);
        let abs = args.min_candidate_nodes_absolute.unwrap_or(100);
        if !(0..=100).contains(&pct) {
            return Err(format!(
                "minCandidateNodesPercentage: Invalid value: {pct}: not in valid range [0, 100]"
            ));
        }
        if abs < 0 {
            return Err(format!(
                "minCandidateNodesAbsolute: Invalid value: {abs}: not in valid range [0, inf)"
            ));
        }
        if pct == 0 && abs == 0 {
            return Err(
                "minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time as minCandidateNodesAbsolute"
                    .to_owned(),
            );
        }
        Ok(Self {
            min_candidate_nodes_percentage: pct,
            min_candidate_nodes_absolute: abs,
            listers: h.listers.clone(),
        })
    }

    /// How many candidates to look for among `num_nodes` potential nodes.
    fn num_candidates(&self, num_nodes: usize) -> usize {
        let n = num_nodes as i64 * i64::from(self.min_candidate_nodes_percentage) / 100;
        let n = n.max(i64::from(self.min_candidate_nodes_absolute));
        (n.max(0) as usize).min(num_nodes)
    }

    /// Upstream's `PodEligibleToPreemptOthers`; the error is the reason.
    fn eligible(
        &self,
        pod: &Pod,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> Result<(), &'static str> {
        if pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref())
            == Some("Never")
        {
            return Err("not eligible due to preemptionPolicy=Never.");
        }
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or_default();
        if nominated.is_empty() {
            return Ok(());
        }
        // Absent nodes count as UnschedulableAndUnresolvable: preempting again is fine then.
        match statuses.get(nominated) {
            None => return Ok(()),
            Some(s) if s.code == Code::UnschedulableAndUnresolvable => return Ok(()),
            Some(_) => {}
        }
        if let Some(node) = snapshot.get(nominated) {
            let priority = pod_priority(pod);
            if node
                .pods
                .iter()
                .any(|p| pod_priority(&p.pod) < priority && terminating_by_preemption(&p.pod))
            {
                return Err("not eligible due to a terminating pod on the nominated node.");
            }
        }
        Ok(())
    }

    fn budgets(&self) -> Vec<Budget> {
        self.listers
            .pdbs
            .state()
            .iter()
            .filter_map(|pdb| {
                let selector = to_selector(pdb.spec.as_ref().and_then(|s| s.selector.as_ref()))?;
                let status = pdb.status.as_ref();
                Some(Budget {
                    namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
                    selector,
                    disruptions_allowed: status.map_or(0, |s| s.disruptions_allowed),
                    disrupted_pods: status
                        .and_then(|s| s.disrupted_pods.as_ref())
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// Splits `pods` (kept in order) into those whose eviction would push a budget below zero and
/// the rest, spending the budgets in that order.
fn split_by_pdb_violation(
    pods: Vec<Arc<PodInfo>>,
    budgets: &[Budget],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = budgets.iter().map(|b| b.disruptions_allowed).collect();
    let mut violating = Vec::new();
    let mut others = Vec::new();
    for p in pods {
        let labels = labels_of(&p.pod);
        let mut violated = false;
        if !labels.is_empty() {
            let ns = p.pod.metadata.namespace.as_deref().unwrap_or_default();
            let name = p.pod.metadata.name.as_deref().unwrap_or_default();
            for (i, b) in budgets.iter().enumerate() {
                if b.namespace != ns || b.selector.is_empty() || !b.selector.matches(labels) {
                    continue;
                }
                if b.disrupted_pods.contains(name) {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(p);
        } else {
            others.push(p);
        }
    }
    (violating, others)
}

/// Upstream's `SelectVictimsOnNode` on copies of the node and the state.
fn select_victims_on_node(
    fw: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    budgets: &[Budget],
) -> Result<(Vec<Arc<PodInfo>>, i64), Status> {
    let mut state = state.clone();
    let mut node = node.clone();
    let priority = pod_priority(&pod.pod);
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| pod_priority(&p.pod) < priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    for p in &potential {
        node.remove_pod(p.uid());
        let s = fw.run_pre_filter_remove_pod(&mut state, pod, p, &node);
        if !s.is_success() {
            return Err(Status::error(s.message()));
        }
    }
    let s = fw.run_filter(&state, pod, &node);
    if !s.is_success() {
        return Err(s);
    }
    potential.sort_by(|a, b| more_important(&a.pod, &b.pod));
    let (violating, others) = split_by_pdb_violation(potential, budgets);
    let mixed = !violating.is_empty() && !others.is_empty();
    let mut victims = Vec::new();
    let mut violations = 0;
    for (is_violating, list) in [(true, violating), (false, others)] {
        for p in list {
            node.add_pod(p.clone());
            let s = fw.run_pre_filter_add_pod(&mut state, pod, &p, &node);
            if !s.is_success() {
                return Err(Status::error(s.message()));
            }
            if fw.run_filter(&state, pod, &node).is_success() {
                continue;
            }
            node.remove_pod(p.uid());
            let s = fw.run_pre_filter_remove_pod(&mut state, pod, &p, &node);
            if !s.is_success() {
                return Err(Status::error(s.message()));
            }
            if is_violating {
                violations += 1;
            }
            victims.push(p);
        }
    }
    if mixed {
        victims.sort_by(|a, b| more_important(&a.pod, &b.pod));
    }
    Ok((victims, violations))
}

/// Upstream's `pickOneNodeForPreemption` over the default criteria.
fn pick_one(candidates: &[Candidate]) -> Option<&Candidate> {
    type Criterion = fn(&Candidate) -> i128;
    let criteria: [Criterion; 5] = [
        |c| -i128::from(c.num_pdb_violations),
        |c| -i128::from(c.victims.first().map_or(0, |p| pod_priority(&p.pod))),
        |c| {
            -c.victims
                .iter()
                .map(|p| i128::from(pod_priority(&p.pod)) + i128::from(i32::MAX) + 1)
                .sum::<i128>()
        },
        |c| -(c.victims.len() as i128),
        |c| earliest_start_of_highest_priority(&c.victims).unwrap_or(i128::MIN),
    ];
    let mut remaining: Vec<&Candidate> = candidates.iter().collect();
    for f in criteria {
        if remaining.len() <= 1 {
            break;
        }
        let best = remaining.iter().map(|c| f(c)).max()?;
        remaining.retain(|c| f(c) == best);
    }
    remaining.first().copied()
}

/// Upstream's `GetEarliestPodStartTime`: the earliest start among the highest-priority victims.
fn earliest_start_of_highest_priority(victims: &[Arc<PodInfo>]) -> Option<i128> {
    let top = victims.iter().map(|p| pod_priority(&p.pod)).max()?;
    victims
        .iter()
        .filter(|p| pod_priority(&p.pod) == top)
        .map(|p| start_nanos(&p.pod))
        .min()
}

/// The FitError-shaped message of a failed preemption.
fn no_candidates_message(num_all_nodes: usize, statuses: &NodeToStatus) -> String {
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses.values() {
        for r in &s.reasons {
            *histogram.entry(r.as_str()).or_default() += 1;
        }
    }
    let absent = num_all_nodes.saturating_sub(statuses.len());
    if absent > 0 {
        *histogram.entry(NOT_HELPFUL).or_default() += absent;
    }
    let mut parts: Vec<String> = histogram
        .into_iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    parts.sort();
    let mut msg = format!("0/{num_all_nodes} nodes are available:");
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    msg
}

fn random_offset(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (RandomState::new().hash_one(std::time::SystemTime::now()) % n as u64) as usize
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        framework: &Framework,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let fail = |msg: String| Status::unschedulable(format!("preemption: {msg}"));
        if let Err(msg) = self.eligible(&pod.pod, snapshot, statuses) {
            return (None, fail(msg.to_owned()));
        }
        let all = snapshot.nodes();
        if all.is_empty() {
            return (None, Status::error("preemption: no nodes available"));
        }
        let potential: Vec<&Arc<NodeInfo>> = all
            .iter()
            .filter(|n| {
                statuses
                    .get(n.name())
                    .is_some_and(|s| s.code != Code::UnschedulableAndUnresolvable)
            })
            .collect();
        if potential.is_empty() {
            return (
                None,
                fail(no_candidates_message(all.len(), &NodeToStatus::new())),
            );
        }
        let budgets = self.budgets();
        let want = self.num_candidates(potential.len());
        let offset = if want >= potential.len() {
            0
        } else {
            random_offset(potential.len())
        };

        // Dry run, in parallel on large clusters, stopping once enough candidates are found.
        let stop = AtomicBool::new(false);
        let non_violating = AtomicUsize::new(0);
        let total = AtomicUsize::new(0);
        let check = |i: usize| -> Option<(usize, Result<Candidate, Status>)> {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let node = potential[(offset + i) % potential.len()];
            let r = select_victims_on_node(framework, state, pod, node, &budgets).and_then(
                |(victims, violations)| {
                    if victims.is_empty() {
                        return Err(Status::error(format!(
                            "expected at least one victim pod on node {:?}",
                            node.name()
                        )));
                    }
                    Ok(Candidate {
                        name: node.name().to_owned(),
                        victims,
                        num_pdb_violations: violations,
                    })
                },
            );
            if let Ok(c) = &r {
                if c.num_pdb_violations == 0 {
                    non_violating.fetch_add(1, Ordering::Relaxed);
                }
                let t = total.fetch_add(1, Ordering::Relaxed) + 1;
                if non_violating.load(Ordering::Relaxed) > 0 && t >= want {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            Some((i, r))
        };
        let mut results: Vec<(usize, Result<Candidate, Status>)> = if potential.len() < 64 {
            (0..potential.len()).map_while(check).collect()
        } else {
            (0..potential.len())
                .into_par_iter()
                .with_min_len(8)
                .filter_map(check)
                .collect()
        };
        results.sort_by_key(|(i, _)| *i);

        let mut good = Vec::new();
        let mut violating = Vec::new();
        let mut node_statuses = NodeToStatus::new();
        let mut errors = Vec::new();
        for (i, r) in results {
            match r {
                Ok(c) => {
                    if c.num_pdb_violations == 0 {
                        good.push(c);
                    } else {
                        violating.push(c);
                    }
                    if !good.is_empty() && good.len() + violating.len() >= want {
                        break;
                    }
                }
                Err(s) => {
                    if s.code == Code::Error {
                        errors.push(s.message());
                    }
                    let name = potential[(offset + i) % potential.len()].name().to_owned();
                    node_statuses.insert(name, s);
                }
            }
        }
        good.extend(violating);
        let candidates = good;
        if candidates.is_empty() {
            if !errors.is_empty() {
                return (None, Status::error(errors.join(", ")));
            }
            return (None, fail(no_candidates_message(all.len(), &node_statuses)));
        }
        let Some(best) = pick_one(&candidates) else {
            return (None, fail("no candidate node for preemption".to_owned()));
        };
        (
            Some(PostFilterResult {
                nominated_node_name: best.name.clone(),
                victims: best.victims.iter().map(|p| p.pod.clone()).collect(),
            }),
            Status::success(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Profile,
        plugins::testing::{NodeBuilder, PodBuilder, node_info},
    };
    use k8s_openapi::{
        api::{core::v1::PodCondition, policy::v1::PodDisruptionBudget},
        apimachinery::pkg::apis::meta::v1::Time,
    };
    use kube::runtime::{reflector::store::Writer, watcher::Event};
    use serde_json::json;

    const HOST: &str = "kubernetes.io/hostname";

    fn node(name: &str) -> NodeBuilder {
        NodeBuilder::new(name).allocatable(&[("cpu", "100"), ("memory", "100Gi"), ("pods", "110")])
    }

    /// A pod that may not share a host with `app=x` pods.
    fn preemptor(priority: i32) -> PodBuilder {
        PodBuilder::new("preemptor")
            .priority(priority)
            .affinity_json(
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "x"}},
                    "topologyKey": HOST,
                }]}}),
            )
    }

    fn blocker(name: &str, priority: i32) -> PodBuilder {
        PodBuilder::new(name).label("app", "x").priority(priority)
    }

    fn started(b: PodBuilder, secs: i64) -> PodBuilder {
        let mut p = b.build();
        p.status.get_or_insert_with(Default::default).start_time = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(secs).expect("valid time"),
        ));
        PodBuilder(p)
    }

    fn pdb(name: &str, app: &str, allowed: i32) -> PodDisruptionBudget {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"pdb": app}}},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1},
        }))
        .expect("valid PDB")
    }

    fn handle(pdbs: Vec<PodDisruptionBudget>) -> Handle {
        let mut writer: Writer<PodDisruptionBudget> = Writer::default();
        let reader = writer.as_reader();
        for p in pdbs {
            writer.apply_watcher_event(&Event::Apply(p));
        }
        let mut h = Handle::default();
        h.listers.pdbs = reader;
        h
    }

    struct Outcome {
        result: Option<PostFilterResult>,
        status: Status,
    }

    impl Outcome {
        fn node(&self) -> Option<&str> {
            self.result.as_ref().map(|r| r.nominated_node_name.as_str())
        }
        fn victims(&self) -> Vec<String> {
            let mut v: Vec<String> = self
                .result
                .iter()
                .flat_map(|r| r.victims.iter())
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
            v.sort();
            v
        }
    }

    /// Runs PreFilter and Filter through the default framework, then preemption.
    fn preempt(pod: PodBuilder, nodes: Vec<(NodeBuilder, Vec<PodBuilder>)>, h: &Handle) -> Outcome {
        preempt_with(pod, nodes, h, None)
    }

    fn preempt_with(
        pod: PodBuilder,
        nodes: Vec<(NodeBuilder, Vec<PodBuilder>)>,
        h: &Handle,
        args: Option<serde_json::Value>,
    ) -> Outcome {
        let fw = Framework::new(&Profile::default(), h).expect("default profile builds");
        let snap = Snapshot::from_nodes(nodes.into_iter().map(|(n, pods)| {
            let pods: Vec<Pod> = pods.into_iter().map(PodBuilder::build).collect();
            node_info(n.build(), &pods)
        }));
        let pod = pod.info();
        let mut state = CycleState::default();
        let (_, s) = fw.run_pre_filter(&mut state, &pod, &snap);
        assert!(s.is_success(), "{s:?}");
        let statuses: NodeToStatus = snap
            .nodes()
            .iter()
            .filter_map(|n| {
                let s = fw.run_filter(&state, &pod, n);
                (!s.is_success()).then(|| (n.name().to_owned(), s))
            })
            .collect();
        let pl = DefaultPreemption::from_args(args.as_ref(), h).expect("valid args");
        let (result, status) = pl.post_filter(&fw, &state, &pod, &snap, &statuses);
        Outcome { result, status }
    }

    #[test]
    fn lower_priority_victim_is_chosen() {
        let out = preempt(
            preemptor(10),
            vec![
                (node("node1"), vec![blocker("low", 1)]),
                (node("node2"), vec![blocker("high", 20)]),
            ],
            &Handle::default(),
        );
        assert!(out.status.is_success(), "{:?}", out.status);
        assert_eq!(out.node(), Some("node1"));
        assert_eq!(out.victims(), ["low"]);
    }

    #[test]
    fn pods_that_do_not_block_are_reprieved() {
        let out = preempt(
            preemptor(10),
            vec![(
                node("node1"),
                vec![
                    blocker("low", 1),
                    PodBuilder::new("bystander").label("app", "y").priority(1),
                ],
            )],
            &Handle::default(),
        );
        assert_eq!(out.node(), Some("node1"));
        assert_eq!(out.victims(), ["low"]);
    }

    #[test]
    fn equal_priority_pods_are_never_preempted() {
        let out = preempt(
            preemptor(10),
            vec![(node("node1"), vec![blocker("same", 10)])],
            &Handle::default(),
        );
        assert!(out.result.is_none());
        assert_eq!(
            out.status,
            Status::unschedulable(
                "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
            )
        );
    }

    #[test]
    fn preemption_policy_never() {
        let pod = preemptor(10).spec_json(json!({"preemptionPolicy": "Never"}));
        let out = preempt(
            pod,
            vec![(node("node1"), vec![blocker("low", 1)])],
            &Handle::default(),
        );
        assert!(out.result.is_none());
        assert_eq!(
            out.status,
            Status::unschedulable("preemption: not eligible due to preemptionPolicy=Never.")
        );
    }

    #[test]
    fn message_counts_unresolvable_nodes_as_not_helpful() {
        let out = preempt(
            preemptor(10),
            vec![
                (node("node1"), vec![blocker("same", 10)]),
                (node("node2").unschedulable(), vec![]),
                (node("node3").unschedulable(), vec![]),
            ],
            &Handle::default(),
        );
        assert!(out.result.is_none());
        assert_eq!(out.status.code, Code::Unschedulable);
        assert_eq!(
            out.status.message(),
            "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn candidate_selection_criteria() {
        let h = Handle::default();
        // "a node with lower-priority victims is preferred"
        let out = preempt(
            preemptor(10),
            vec![
                (node("node1"), vec![blocker("p5", 5)]),
                (node("node2"), vec![blocker("p1", 1)]),
            ],
            &h,
        );
        assert_eq!(out.node(), Some("node2"));
        // "the smallest sum of priorities wins when the highest priorities tie"
        let out = preempt(
            preemptor(10),
            vec![
                (node("node1"), vec![blocker("a3", 3), blocker("a2", 2)]),
                (node("node2"), vec![blocker("b3", 3), blocker("b1", 1)]),
            ],
            &h,
        );
        assert_eq!(out.node(), Some("node2"));
        assert_eq!(out.victims(), ["b1", "b3"]);
        // "fewest victims when sums tie" is reached only with equal sums: with negative
        // priorities the MaxInt32 offset keeps fewer victims better.
        let out = preempt(
            preemptor(10),
            vec![
                (node("node1"), vec![blocker("a1", -5), blocker("a2", -5)]),
                (node("node2"), vec![blocker("b1", -5)]),
            ],
            &h,
        );
        assert_eq!(out.node(), Some("node2"));
        // "the latest start time of the highest-priority victims wins"
        let out = preempt(
            preemptor(10),
            vec![
                (node("node1"), vec![started(blocker("old", 1), 1_000)]),
                (node("node2"), vec![started(blocker("new", 1), 2_000)]),
            ],
            &h,
        );
        assert_eq!(out.node(), Some("node2"));
        // "ties go to the first candidate"
        let out = preempt(
            preemptor(10),
            vec![
                (node("node1"), vec![started(blocker("a", 1), 1_000)]),
                (node("node2"), vec![started(blocker("b", 1), 1_000)]),
            ],
            &h,
        );
        assert_eq!(out.node(), Some("node1"));
    }

    #[test]
    fn pdb_is_respected_where_possible() {
        let h = handle(vec![pdb("budget", "guarded", 0)]);
        // node1's victim is guarded by a PDB allowing no disruption; node2's victim has a
        // higher priority but no budget: fewer PDB violations wins first.
        let out = preempt(
            preemptor(10),
            vec![
                (
                    node("node1"),
                    vec![blocker("guarded", 1).label("pdb", "guarded")],
                ),
                (node("node2"), vec![blocker("free", 5)]),
            ],
            &h,
        );
        assert_eq!(out.node(), Some("node2"));
        assert_eq!(out.victims(), ["free"]);
        // Only the guarded node: it is still used (violating the budget).
        let out = preempt(
            preemptor(10),
            vec![(
                node("node1"),
                vec![blocker("guarded", 1).label("pdb", "guarded")],
            )],
            &h,
        );
        assert_eq!(out.node(), Some("node1"));
        // A budget that still allows a disruption is not violated.
        let h = handle(vec![pdb("budget", "guarded", 1)]);
        let out = preempt(
            preemptor(10),
            vec![
                (
                    node("node1"),
                    vec![blocker("guarded", 1).label("pdb", "guarded")],
                ),
                (node("node2"), vec![blocker("free", 5)]),
            ],
            &h,
        );
        assert_eq!(out.node(), Some("node1"));
    }

    #[test]
    fn pdb_violating_victims_are_reprieved_first() {
        let budgets = vec![Budget {
            namespace: "default".into(),
            selector: Selector::from_set(&BTreeMap::from([("pdb".to_owned(), "g".to_owned())])),
            disruptions_allowed: 1,
            disrupted_pods: HashSet::from(["already".to_owned()]),
        }];
        let info = |b: PodBuilder| Arc::new(b.info());
        let pods = vec![
            info(PodBuilder::new("a").label("pdb", "g")),
            info(PodBuilder::new("already").label("pdb", "g")),
            info(PodBuilder::new("b").label("pdb", "g")),
            info(PodBuilder::new("c").label("other", "x")),
        ];
        let (violating, others) = split_by_pdb_violation(pods, &budgets);
        let names = |v: &[Arc<PodInfo>]| v.iter().map(|p| p.key()).collect::<Vec<_>>();
        assert_eq!(names(&violating), ["default/b"]);
        assert_eq!(
            names(&others),
            ["default/a", "default/already", "default/c"]
        );
    }

    #[test]
    fn nominated_node_with_terminating_victim_is_not_preempted_again() {
        let mut victim = blocker("victim", 1).build();
        victim.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        victim
            .status
            .get_or_insert_with(Default::default)
            .conditions = Some(vec![PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("PreemptionByScheduler".into()),
            ..Default::default()
        }]);
        let mut pod = preemptor(10).build();
        pod.status
            .get_or_insert_with(Default::default)
            .nominated_node_name = Some("node1".into());
        let out = preempt(
            PodBuilder(pod),
            vec![(node("node1"), vec![PodBuilder(victim)])],
            &Handle::default(),
        );
        assert!(out.result.is_none());
        assert_eq!(
            out.status,
            Status::unschedulable(
                "preemption: not eligible due to a terminating pod on the nominated node."
            )
        );
    }

    #[test]
    fn topology_spread_victims_use_the_prefilter_extensions() {
        // maxSkew 1 on hostname: node1 has three low-priority matching pods, node2 one
        // high-priority pod (node2 fits already; only node1 failed and is a candidate).
        let spread = |b: PodBuilder| {
            b.label("app", "s")
                .spec_json(json!({"topologySpreadConstraints": [{
                    "maxSkew": 1,
                    "topologyKey": HOST,
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app": "s"}},
                }]}))
        };
        let s = |n: &str, p: i32| PodBuilder::new(n).label("app", "s").priority(p);
        let out = preempt(
            spread(PodBuilder::new("preemptor").priority(10)),
            vec![
                (node("node1"), vec![s("a", 1), s("b", 2), s("c", 3)]),
                (node("node2"), vec![s("d", 20)]),
            ],
            &Handle::default(),
        );
        // node1: 3 pods vs min 1 → needs count 1 (1 + 1 - 1 <= 1): two victims, the lowest.
        assert_eq!(out.node(), Some("node1"));
        assert_eq!(out.victims(), ["a", "b"]);
    }

    #[test]
    fn resource_victims_through_the_default_plugins() {
        // NodeResourcesFit rejects both nodes for cpu; node1's low-priority pod is enough.
        let small = |n: &str| {
            NodeBuilder::new(n).allocatable(&[("cpu", "1"), ("memory", "1Gi"), ("pods", "10")])
        };
        let pod = PodBuilder::new("preemptor")
            .priority(100)
            .container(&[("cpu", "1")]);
        let user = |n: &str, p: i32| PodBuilder::new(n).priority(p).container(&[("cpu", "600m")]);
        let out = preempt(
            pod,
            vec![
                (small("node1"), vec![user("low", 1)]),
                (small("node2"), vec![user("high", 1000)]),
            ],
            &Handle::default(),
        );
        assert!(out.status.is_success(), "{:?}", out.status);
        assert_eq!(out.node(), Some("node1"));
        assert_eq!(out.victims(), ["low"]);
    }

    #[test]
    fn num_candidates_and_args() {
        let h = Handle::default();
        let pl = |v: serde_json::Value| DefaultPreemption::from_args(Some(&v), &h);
        let d = DefaultPreemption::from_args(None, &h).expect("defaults");
        assert_eq!(d.num_candidates(10), 10);
        assert_eq!(d.num_candidates(5000), 500);
        assert_eq!(d.num_candidates(500), 100);
        let p = pl(json!({"minCandidateNodesPercentage": 40, "minCandidateNodesAbsolute": 5}))
            .expect("valid");
        assert_eq!(p.num_candidates(100), 40);
        assert_eq!(p.num_candidates(10), 5);
        assert_eq!(p.num_candidates(3), 3);
        for bad in [
            json!({"minCandidateNodesPercentage": 101}),
            json!({"minCandidateNodesPercentage": -1}),
            json!({"minCandidateNodesAbsolute": -1}),
            json!({"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0}),
            json!({"other": 1}),
        ] {
            assert!(pl(bad.clone()).is_err(), "{bad}");
        }
        // Few candidates wanted: the dry run stops after the first good one.
        let out = preempt_with(
            preemptor(10),
            vec![
                (node("node1"), vec![blocker("a", 1)]),
                (node("node2"), vec![blocker("b", 1)]),
            ],
            &h,
            Some(json!({"minCandidateNodesPercentage": 1, "minCandidateNodesAbsolute": 1})),
        );
        assert_eq!(out.victims().len(), 1);
    }
}
