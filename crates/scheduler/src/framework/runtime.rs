//! [`Framework`]: one profile's plugins instantiated and ordered per extension point, and the
//! code that runs each point (filters across nodes in parallel, scores weighted and
//! normalised) the way upstream's `frameworkruntime` does.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::core::v1::Pod;
use rayon::prelude::*;

use super::{
    Code, CycleState, Handle, NodeInfo, NodeScore, NodeToStatus, Plugin, PodInfo, PostFilterResult,
    PreFilterResult, Snapshot, Status, types::pod_priority,
};
use crate::{
    config::{PluginSet, Profile},
    plugins,
};

/// The plugins of one profile, per extension point.
pub struct Framework {
    /// The profile's scheduler name.
    pub scheduler_name: String,
    /// Percentage of nodes to find feasible before scoring, if the profile sets it.
    pub percentage_of_nodes_to_score: Option<i32>,
    pre_enqueue: Vec<Arc<dyn Plugin>>,
    queue_sort: Option<Arc<dyn Plugin>>,
    pre_filter: Vec<Arc<dyn Plugin>>,
    filter: Vec<Arc<dyn Plugin>>,
    post_filter: Vec<Arc<dyn Plugin>>,
    pre_score: Vec<Arc<dyn Plugin>>,
    score: Vec<(Arc<dyn Plugin>, i64)>,
    reserve: Vec<Arc<dyn Plugin>>,
    permit: Vec<Arc<dyn Plugin>>,
    pre_bind: Vec<Arc<dyn Plugin>>,
    bind: Vec<Arc<dyn Plugin>>,
    all: Vec<Arc<dyn Plugin>>,
}

impl std::fmt::Debug for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framework")
            .field("scheduler_name", &self.scheduler_name)
            .field("plugins", &self.all)
            .finish()
    }
}

/// Which point a plugin list is for, to pick the right `as_*` accessor.
#[derive(Debug, Clone, Copy)]
enum Point {
    PreEnqueue,
    QueueSort,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    Bind,
}

fn implements(p: &dyn Plugin, point: Point) -> bool {
    match point {
        Point::PreEnqueue => p.as_pre_enqueue().is_some(),
        Point::QueueSort => p.as_queue_sort().is_some(),
        Point::PreFilter => p.as_pre_filter().is_some(),
        Point::Filter => p.as_filter().is_some(),
        Point::PostFilter => p.as_post_filter().is_some(),
        Point::PreScore => p.as_pre_score().is_some(),
        Point::Score => p.as_score().is_some(),
        Point::Reserve => p.as_reserve().is_some(),
        Point::Permit => p.as_permit().is_some(),
        Point::PreBind => p.as_pre_bind().is_some(),
        Point::Bind => p.as_bind().is_some(),
    }
}

impl Framework {
    /// Builds a profile's framework: the default plugins, changed by the profile's
    /// `multiPoint` and per-point sets, with their `pluginConfig` arguments.
    pub fn new(profile: &Profile, handle: &Handle) -> anyhow::Result<Self> {
        // multiPoint: defaults, minus disabled, plus enabled (weights overridden).
        let mut multi: Vec<(String, i64)> = plugins::DEFAULT_PLUGINS
            .iter()
            .map(|(n, w)| ((*n).to_owned(), *w))
            .collect();
        apply_set(&mut multi, &profile.plugins.multi_point);

        let mut instances: HashMap<String, Arc<dyn Plugin>> = HashMap::new();
        let mut instantiate = |name: &str| -> anyhow::Result<Arc<dyn Plugin>> {
            if let Some(p) = instances.get(name) {
                return Ok(p.clone());
            }
            let factory = plugins::REGISTRY
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "profile {:?}: plugin {name:?} does not exist",
                        profile.scheduler_name
                    )
                })?;
            let args = profile
                .plugin_config
                .iter()
                .find(|c| c.name == name)
                .map(|c| &c.args);
            let plugin = factory(args, handle).map_err(|e| {
                anyhow::anyhow!(
                    "profile {:?}: pluginConfig {name}: {e}",
                    profile.scheduler_name
                )
            })?;
            instances.insert(name.to_owned(), plugin.clone());
            Ok(plugin)
        };

        let p = &profile.plugins;
        let mut lists: Vec<Vec<(Arc<dyn Plugin>, i64)>> = Vec::new();
        for (point, set) in [
            (Point::PreEnqueue, &p.pre_enqueue),
            (Point::QueueSort, &p.queue_sort),
            (Point::PreFilter, &p.pre_filter),
            (Point::Filter, &p.filter),
            (Point::PostFilter, &p.post_filter),
            (Point::PreScore, &p.pre_score),
            (Point::Score, &p.score),
            (Point::Reserve, &p.reserve),
            (Point::Permit, &p.permit),
            (Point::PreBind, &p.pre_bind),
            (Point::Bind, &p.bind),
        ] {
            // Specific enabled plugins first (upstream gives them precedence), then the
            // multiPoint ones that implement the point and are not disabled here.
            let disabled_all = set.disabled.iter().any(|d| d.name == "*");
            let mut names: Vec<(String, i64)> = Vec::new();
            for e in &set.enabled {
                let plugin = instantiate(&e.name)?;
                if !implements(plugin.as_ref(), point) {
                    anyhow::bail!(
                        "profile {:?}: plugin {:?} does not extend {point:?}",
                        profile.scheduler_name,
                        e.name
                    );
                }
                names.retain(|(n, _)| n != &e.name);
                names.push((e.name.clone(), e.weight.filter(|w| *w > 0).unwrap_or(1)));
            }
            if !disabled_all {
                for (name, weight) in &multi {
                    if set.disabled.iter().any(|d| &d.name == name)
                        || names.iter().any(|(n, _)| n == name)
                    {
                        continue;
                    }
                    let plugin = instantiate(name)?;
                    if implements(plugin.as_ref(), point) {
                        names.push((name.clone(), *weight));
                    }
                }
            }
            let mut list = Vec::new();
            for (name, weight) in names {
                list.push((instantiate(&name)?, weight));
            }
            lists.push(list);
        }
        let plain = |l: Vec<(Arc<dyn Plugin>, i64)>| l.into_iter().map(|(p, _)| p).collect();
        let mut it = lists.into_iter();
        let mut next = || it.next().unwrap_or_default();
        let pre_enqueue = plain(next());
        let queue_sort_list: Vec<Arc<dyn Plugin>> = plain(next());
        if queue_sort_list.len() != 1 {
            anyhow::bail!(
                "profile {:?}: exactly one queueSort plugin must be enabled, found {}",
                profile.scheduler_name,
                queue_sort_list.len()
            );
        }
        let fw = Self {
            scheduler_name: profile.scheduler_name.clone(),
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
            pre_enqueue,
            queue_sort: queue_sort_list.into_iter().next(),
            pre_filter: plain(next()),
            filter: plain(next()),
            post_filter: plain(next()),
            pre_score: plain(next()),
            score: next(),
            reserve: plain(next()),
            permit: plain(next()),
            pre_bind: plain(next()),
            bind: plain(next()),
            all: instances.into_values().collect(),
        };
        if fw.bind.is_empty() {
            anyhow::bail!(
                "profile {:?}: at least one bind plugin is needed",
                profile.scheduler_name
            );
        }
        Ok(fw)
    }

    /// Every instantiated plugin.
    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.all
    }

    /// Names of the plugins enabled at each point, for logs and tests.
    pub fn enabled(&self) -> HashMap<&'static str, Vec<&'static str>> {
        let names = |l: &[Arc<dyn Plugin>]| l.iter().map(|p| p.name()).collect::<Vec<_>>();
        HashMap::from([
            ("preEnqueue", names(&self.pre_enqueue)),
            ("preFilter", names(&self.pre_filter)),
            ("filter", names(&self.filter)),
            ("postFilter", names(&self.post_filter)),
            ("preScore", names(&self.pre_score)),
            (
                "score",
                self.score.iter().map(|(p, _)| p.name()).collect::<Vec<_>>(),
            ),
            ("reserve", names(&self.reserve)),
            ("permit", names(&self.permit)),
            ("preBind", names(&self.pre_bind)),
            ("bind", names(&self.bind)),
        ])
    }

    /// The weight of a score plugin, if enabled.
    pub fn score_weight(&self, name: &str) -> Option<i64> {
        self.score
            .iter()
            .find(|(p, _)| p.name() == name)
            .map(|(_, w)| *w)
    }

    /// PreEnqueue: the first rejection, or success.
    pub fn run_pre_enqueue(&self, pod: &Pod) -> Status {
        for p in &self.pre_enqueue {
            if let Some(pe) = p.as_pre_enqueue() {
                let s = pe.pre_enqueue(pod);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// QueueSort's order.
    pub fn less(&self, a: &super::QueuedPodRef<'_>, b: &super::QueuedPodRef<'_>) -> bool {
        match self.queue_sort.as_ref().and_then(|p| p.as_queue_sort()) {
            Some(qs) => qs.less(a, b),
            None => a.timestamp < b.timestamp,
        }
    }

    /// PreFilter: every plugin; node sets intersect; the first rejection stops.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let mut result: Option<BTreeSet<String>> = None;
        let mut contributors: Vec<&'static str> = Vec::new();
        for p in &self.pre_filter {
            let Some(pf) = p.as_pre_filter() else {
                continue;
            };
            let (r, s) = pf.pre_filter(state, pod, snapshot);
            if s.is_skip() {
                state.skip_filter.insert(p.name());
                continue;
            }
            if !s.is_success() {
                let code = if s.code == Code::Error {
                    Code::Error
                } else {
                    s.code
                };
                return (None, Status::new(code, s.reasons).with_plugin(p.name()));
            }
            if let Some(names) = r.and_then(|r| r.node_names) {
                contributors.push(p.name());
                result = Some(match result {
                    None => names,
                    Some(prev) => prev.intersection(&names).cloned().collect(),
                });
                if result.as_ref().is_some_and(|r| r.is_empty()) {
                    return (
                        None,
                        Status::unresolvable(format!(
                            "node(s) didn't satisfy plugin(s) [{}] simultaneously",
                            contributors.join(" ")
                        ))
                        .with_plugin(p.name()),
                    );
                }
            }
        }
        (
            result.map(|names| PreFilterResult {
                node_names: Some(names),
            }),
            Status::success(),
        )
    }

    /// Runs the PreFilter extensions after `added` is put on `node` (preemption, nominated
    /// pods).
    pub fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            if let Some(ext) = p.as_pre_filter().and_then(|pf| pf.extensions()) {
                let s = ext.add_pod(state, pod, added, node);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Runs the PreFilter extensions after `removed` is taken off `node`.
    pub fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            if let Some(ext) = p.as_pre_filter().and_then(|pf| pf.extensions()) {
                let s = ext.remove_pod(state, pod, removed, node);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Filter on one node: the first failing plugin's status, or success.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in &self.filter {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            if let Some(f) = p.as_filter() {
                let s = f.filter(state, pod, node);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Filter with the pods nominated to `node` at the pod's priority or higher counted as
    /// already there (upstream's two passes: the pod must fit with and without them).
    pub fn run_filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &[Arc<PodInfo>],
    ) -> Status {
        let priority = pod_priority(&pod.pod);
        let relevant: Vec<&Arc<PodInfo>> = nominated
            .iter()
            .filter(|n| n.uid() != pod.uid() && pod_priority(&n.pod) >= priority)
            .collect();
        if relevant.is_empty() {
            return self.run_filter(state, pod, node);
        }
        let mut state_with = state.clone();
        let mut node_with = node.clone();
        for n in relevant {
            node_with.add_pod(n.clone());
            let s = self.run_pre_filter_add_pod(&mut state_with, pod, n, &node_with);
            if !s.is_success() {
                return s;
            }
        }
        let s = self.run_filter(&state_with, pod, &node_with);
        if !s.is_success() {
            return s;
        }
        self.run_filter(state, pod, node)
    }

    /// Filters `nodes` (starting at `start`, wrapping) in parallel until `want` feasible
    /// nodes are found. Returns the feasible nodes, the statuses of the rejected ones and how
    /// many nodes were looked at.
    pub fn find_feasible(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        start: usize,
        want: usize,
        nominated: &HashMap<String, Vec<Arc<PodInfo>>>,
    ) -> (Vec<Arc<NodeInfo>>, NodeToStatus, usize) {
        let n = nodes.len();
        if n == 0 {
            return (Vec::new(), NodeToStatus::new(), 0);
        }
        let found = AtomicUsize::new(0);
        // The filters this cycle runs, looked up once rather than per node.
        let active: Vec<(&'static str, &dyn super::FilterPlugin)> = self
            .filter
            .iter()
            .filter(|p| !state.skip_filter.contains(p.name()))
            .filter_map(|p| Some((p.name(), p.as_filter()?)))
            .collect();
        let filter = |node: &NodeInfo| -> Status {
            for (name, f) in &active {
                let s = f.filter(state, pod, node);
                if !s.is_success() {
                    return s.with_plugin(name);
                }
            }
            Status::success()
        };
        let check = |i: usize| -> Option<(usize, Result<(), Status>)> {
            if found.load(Ordering::Relaxed) >= want {
                return None;
            }
            let idx = (start + i) % n;
            let node = &nodes[idx];
            let nominated_here = if nominated.is_empty() {
                None
            } else {
                nominated.get(node.name())
            };
            let s = match nominated_here {
                Some(nom) => self.run_filter_with_nominated(state, pod, node, nom),
                None => filter(node),
            };
            if s.is_success() {
                let before = found.fetch_add(1, Ordering::Relaxed);
                if before >= want {
                    return None;
                }
                Some((i, Ok(())))
            } else {
                Some((i, Err(s)))
            }
        };
        // Small clusters: the thread hand-off costs more than the filters.
        let results: Vec<(usize, Result<(), Status>)> = if self.filter.is_empty() {
            (0..n.min(want)).map(|i| (i, Ok(()))).collect()
        } else if n < 64 {
            (0..n).filter_map(check).collect()
        } else {
            (0..n)
                .into_par_iter()
                .with_min_len(32)
                .filter_map(check)
                .collect()
        };
        let mut feasible: Vec<(usize, Arc<NodeInfo>)> = Vec::new();
        let mut statuses = NodeToStatus::new();
        let mut processed = 0;
        for (i, r) in results {
            processed = processed.max(i + 1);
            let node = &nodes[(start + i) % n];
            match r {
                Ok(()) => feasible.push((i, node.clone())),
                Err(s) => {
                    statuses.insert(node.name().to_owned(), s);
                }
            }
        }
        feasible.sort_by_key(|(i, _)| *i);
        feasible.truncate(want);
        (
            feasible.into_iter().map(|(_, n)| n).collect(),
            statuses,
            processed,
        )
    }

    /// PostFilter: the first plugin that finds a way wins.
    pub fn run_post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let mut reasons = Vec::new();
        for p in &self.post_filter {
            if let Some(pf) = p.as_post_filter() {
                let (r, s) = pf.post_filter(self, state, pod, snapshot, statuses);
                if s.is_success() {
                    return (r, s);
                }
                if s.code == Code::Error {
                    return (None, s.with_plugin(p.name()));
                }
                reasons.extend(s.reasons);
            }
        }
        (None, Status::new(Code::Unschedulable, reasons))
    }

    /// True when a PostFilter plugin is enabled.
    pub fn has_post_filter(&self) -> bool {
        !self.post_filter.is_empty()
    }

    /// PreScore, then Score on every node, NormalizeScore and weights: the total per node.
    pub fn run_scoring(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Result<Vec<NodeScore>, Status> {
        for p in &self.pre_score {
            if let Some(ps) = p.as_pre_score() {
                let s = ps.pre_score(state, pod, nodes, snapshot);
                if s.is_skip() {
                    state.skip_score.insert(p.name());
                } else if !s.is_success() {
                    return Err(s.with_plugin(p.name()));
                }
            }
        }
        let state_ref: &CycleState = state;
        let active: Vec<(&'static str, &dyn super::ScorePlugin, i64)> = self
            .score
            .iter()
            .filter(|(p, _)| !state_ref.skip_score.contains(p.name()))
            .filter_map(|(p, w)| Some((p.name(), p.as_score()?, *w)))
            .collect();
        let mut totals: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name().to_owned(),
                score: 0,
            })
            .collect();
        let width = active.len();
        if width == 0 {
            return Ok(totals);
        }
        // One pass over the nodes computes every plugin's raw score (one parallel section per
        // cycle, as upstream parallelizes over nodes); normalisation then runs per plugin.
        let mut raw = vec![0i64; nodes.len() * width];
        let score_node = |(row, node): (&mut [i64], &Arc<NodeInfo>)| -> Result<(), Status> {
            for (slot, (name, sp, _)) in row.iter_mut().zip(&active) {
                *slot = score_one(*sp, state_ref, pod, node, name)?;
            }
            Ok(())
        };
        if nodes.len() < 64 {
            raw.chunks_mut(width).zip(nodes).try_for_each(score_node)?;
        } else {
            raw.par_chunks_mut(width)
                .zip(nodes.par_iter())
                .with_min_len(32)
                .try_for_each(score_node)?;
        }
        let mut scratch = totals.clone();
        for (j, (name, sp, weight)) in active.iter().enumerate() {
            for (i, s) in scratch.iter_mut().enumerate() {
                s.score = raw[i * width + j];
            }
            let s = sp.normalize(state_ref, pod, &mut scratch);
            if !s.is_success() {
                return Err(s.with_plugin(name));
            }
            for (t, s) in totals.iter_mut().zip(&scratch) {
                if !(0..=super::MAX_NODE_SCORE).contains(&s.score) {
                    return Err(Status::error(format!(
                        "plugin {name:?} returns an invalid score {}, it should in the range of [0, 100] after normalizing",
                        s.score
                    )));
                }
                t.score += s.score * weight;
            }
        }
        Ok(totals)
    }

    /// Reserve on every plugin; on failure, everything is unreserved.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.reserve {
            if let Some(r) = p.as_reserve() {
                let s = r.reserve(state, pod, node);
                if !s.is_success() {
                    self.run_unreserve(state, pod, node);
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Unreserve, in reverse order.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            if let Some(r) = p.as_reserve() {
                r.unreserve(state, pod, node);
            }
        }
    }

    /// Permit: rejections win; otherwise the longest wait asked for (zero: go ahead).
    pub fn run_permit(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> (Status, Duration) {
        let mut wait = Duration::ZERO;
        for p in &self.permit {
            if let Some(pm) = p.as_permit() {
                let (s, timeout) = pm.permit(state, pod, node);
                match s.code {
                    Code::Success => {}
                    Code::Wait => wait = wait.max(timeout.min(Duration::from_secs(15 * 60))),
                    _ => return (s.with_plugin(p.name()), Duration::ZERO),
                }
            }
        }
        let code = if wait.is_zero() {
            Code::Success
        } else {
            Code::Wait
        };
        (Status::new(code, Vec::new()), wait)
    }

    /// PreBind on every plugin, in order.
    pub async fn run_pre_bind(
        &self,
        client: &kube::Client,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Status {
        for p in &self.pre_bind {
            if let Some(pb) = p.as_pre_bind() {
                let s = pb.pre_bind(client, state, pod, node).await;
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Bind: the first plugin that does not skip.
    pub async fn run_bind(
        &self,
        client: &kube::Client,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Status {
        for p in &self.bind {
            if let Some(b) = p.as_bind() {
                let s = b.bind(client, state, pod, node).await;
                if s.is_skip() {
                    continue;
                }
                return s.with_plugin(p.name());
            }
        }
        Status::error("no bind plugin bound the pod")
    }
}

fn score_one(
    sp: &dyn super::ScorePlugin,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    name: &'static str,
) -> Result<i64, Status> {
    let (score, s) = sp.score(state, pod, node);
    if s.is_success() {
        Ok(score)
    } else {
        Err(s.with_plugin(name))
    }
}

fn apply_set(list: &mut Vec<(String, i64)>, set: &PluginSet) {
    if set.disabled.iter().any(|d| d.name == "*") {
        list.clear();
    } else {
        list.retain(|(n, _)| !set.disabled.iter().any(|d| &d.name == n));
    }
    for e in &set.enabled {
        let weight = e.weight.filter(|w| *w > 0);
        match list.iter_mut().find(|(n, _)| n == &e.name) {
            Some(entry) => {
                if let Some(w) = weight {
                    entry.1 = w;
                }
            }
            None => list.push((e.name.clone(), weight.unwrap_or(1))),
        }
    }
}

/// How many feasible nodes to look for before scoring (upstream's adaptive percentage: 50%
/// minus one per 125 nodes, at least 5%, and never fewer than 100 nodes).
pub fn num_feasible_nodes_to_find(percentage: Option<i32>, num_all_nodes: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    const MIN_PERCENTAGE: i64 = 5;
    if num_all_nodes < MIN_FEASIBLE {
        return num_all_nodes;
    }
    let mut pct = i64::from(percentage.unwrap_or(0));
    if pct >= 100 {
        return num_all_nodes;
    }
    if pct == 0 {
        pct = 50 - (num_all_nodes as i64) / 125;
        if pct < MIN_PERCENTAGE {
            pct = MIN_PERCENTAGE;
        }
    }
    let n = (num_all_nodes as i64 * pct / 100) as usize;
    n.max(MIN_FEASIBLE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchedulerConfiguration;

    fn framework(yaml: &str) -> anyhow::Result<Framework> {
        let config = SchedulerConfiguration::parse(yaml)?;
        Framework::new(&config.profiles[0], &Handle::default())
    }

    #[test]
    fn the_default_profile_has_upstreams_plugins_per_point() {
        // VolumeBinding scores only behind the StorageCapacityScoring gate (alpha, off in
        // 1.33), so it is not a score plugin here.
        let fw = framework("{}").expect("default profile");
        let enabled = fw.enabled();
        assert_eq!(
            enabled["filter"],
            [
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity",
            ]
        );
        assert_eq!(
            enabled["score"],
            [
                "TaintToleration",
                "NodeAffinity",
                "NodeResourcesFit",
                "PodTopologySpread",
                "InterPodAffinity",
                "NodeResourcesBalancedAllocation",
                "ImageLocality",
            ]
        );
        assert_eq!(enabled["postFilter"], ["DefaultPreemption"]);
        assert_eq!(enabled["bind"], ["DefaultBinder"]);
        assert_eq!(enabled["preEnqueue"], ["SchedulingGates"]);
        assert_eq!(fw.score_weight("TaintToleration"), Some(3));
        assert_eq!(fw.score_weight("PodTopologySpread"), Some(2));
        assert_eq!(fw.score_weight("ImageLocality"), Some(1));
    }

    #[test]
    fn profiles_disable_enable_and_reweight_plugins() {
        let fw = framework(
            r#"
profiles:
- schedulerName: custom
  plugins:
    multiPoint:
      disabled: [{name: DefaultPreemption}]
    score:
      disabled: [{name: ImageLocality}, {name: NodeResourcesBalancedAllocation}]
      enabled: [{name: NodeResourcesFit, weight: 5}]
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated}}
"#,
        )
        .expect("valid profile");
        let enabled = fw.enabled();
        assert!(enabled["postFilter"].is_empty());
        assert_eq!(enabled["score"][0], "NodeResourcesFit");
        assert!(!enabled["score"].contains(&"ImageLocality"));
        assert!(enabled["filter"].contains(&"NodeResourcesFit"));
        assert_eq!(fw.score_weight("NodeResourcesFit"), Some(5));
        assert_eq!(fw.scheduler_name, "custom");
    }

    #[test]
    fn bad_profiles_are_errors_naming_the_plugin() {
        let err = |yaml: &str| framework(yaml).expect_err("invalid").to_string();
        assert!(
            err("profiles:\n- plugins:\n    filter:\n      enabled: [{name: Nope}]\n")
                .contains("\"Nope\" does not exist")
        );
        assert!(
            err("profiles:\n- plugins:\n    bind:\n      disabled: [{name: '*'}]\n")
                .contains("bind plugin")
        );
        assert!(
            err("profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {type: Bogus}}\n")
                .contains("NodeResourcesFit")
        );
    }

    #[test]
    fn feasible_node_count_follows_upstream() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(None, 10_000), 500);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
        assert_eq!(num_feasible_nodes_to_find(Some(1), 5000), 100);
    }
}
