//! ImageLocality: favours nodes that already have the pod's container images, so pods start
//! without pulling. Each present image counts its size scaled by the fraction of nodes that
//! have it (an image everywhere says little about this node); the sum is clamped between
//! 23 MiB and 1000 MiB per container and mapped linearly onto 0–100.

use std::sync::Arc;

use crate::framework::{
    CycleState, Handle, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin,
    Snapshot, Status, cache::normalized_image_name,
};

/// The plugin's name.
pub const NAME: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
/// Below this much (scaled) image data a node gets 0.
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container, above this much a node gets 100.
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

const PRE_SCORE_KEY: &str = "PreScoreImageLocality";

/// How many nodes the snapshot has, and the pod's normalised image names.
#[derive(Debug, Clone)]
struct PreScoreState {
    total_nodes: usize,
    images: Vec<String>,
    containers: usize,
}

impl PreScoreState {
    fn new(pod: &PodInfo, total_nodes: usize) -> Self {
        let spec = pod.pod.spec.as_ref();
        let containers = spec.map_or(0, |s| {
            s.containers.len() + s.init_containers.as_ref().map_or(0, Vec::len)
        });
        let images = spec
            .into_iter()
            .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
            .filter_map(|c| c.image.as_deref())
            .map(normalized_image_name)
            .collect();
        Self {
            total_nodes,
            images,
            containers,
        }
    }
}

/// The plugin.
#[derive(Debug, Default)]
pub struct ImageLocality;

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(ImageLocality))
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

/// The sum of the scaled sizes of the pod's images present on `node`.
fn sum_image_scores(node: &NodeInfo, images: &[String], total_nodes: usize) -> i64 {
    images
        .iter()
        .filter_map(|image| node.image_states.get(image))
        .map(|state| {
            let spread = state.num_nodes as f64 / total_nodes.max(1) as f64;
            (state.size as f64 * spread) as i64
        })
        .sum()
}

/// Maps the summed image score onto 0–100 between the thresholds.
fn calculate_priority(sum: i64, containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * containers as i64;
    let clamped = if sum < MIN_THRESHOLD {
        MIN_THRESHOLD
    } else {
        sum.min(max_threshold)
    };
    let range = max_threshold - MIN_THRESHOLD;
    if range <= 0 {
        return 0;
    }
    MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / range
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        state.write(PRE_SCORE_KEY, PreScoreState::new(pod, snapshot.len()));
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let computed;
        let s = match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => s,
            None => {
                // Without PreScore, the widest image spread seen is the best lower bound of
                // the node count.
                let widest = node.image_states.values().map(|s| s.num_nodes).max();
                computed = PreScoreState::new(pod, widest.unwrap_or(1));
                &computed
            }
        };
        let sum = sum_image_scores(node, &s.images, s.total_nodes);
        (calculate_priority(sum, s.containers), Status::success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::cache::Cache;
    use crate::plugins::testing::{NodeBuilder, PodBuilder};

    /// Upstream's test nodes: image names and sizes in MiB.
    fn nodes() -> Vec<NodeBuilder> {
        vec![
            NodeBuilder::new("node1")
                .image("gcr.io/40:latest", 40 * MB)
                .image("gcr.io/300:latest", 300 * MB)
                .image("gcr.io/2000:latest", 2000 * MB),
            NodeBuilder::new("node2")
                .image("gcr.io/250:latest", 250 * MB)
                .image("gcr.io/10:v1", 10 * MB),
            NodeBuilder::new("node3"),
        ]
    }

    fn run(pod: PodBuilder, nodes: Vec<NodeBuilder>) -> Vec<i64> {
        let mut cache = Cache::new();
        for n in nodes {
            cache.set_node(Arc::new(n.build()));
        }
        let mut snapshot = Snapshot::default();
        cache.update_snapshot(&mut snapshot);
        let pod = pod.info();
        let mut state = CycleState::default();
        let pl = ImageLocality;
        assert!(
            pl.pre_score(&mut state, &pod, snapshot.nodes(), &snapshot)
                .is_success()
        );
        let mut infos: Vec<&Arc<NodeInfo>> = snapshot.nodes().iter().collect();
        infos.sort_by(|a, b| a.name().cmp(b.name()));
        infos.iter().map(|n| pl.score(&state, &pod, n).0).collect()
    }

    #[test]
    fn scores_follow_upstream_cases() {
        let images = |list: &[&str]| {
            list.iter()
                .fold(PodBuilder::new("p"), |b, image| b.image(image))
        };
        let cases = [
            (
                // node1: 40 MiB × 1/3 = 13 MiB → 0; node2: 250 MiB × 1/3 = 83 MiB
                // → 100 × (83 − 23) / (2000 − 23) = 3.
                "two images spread on two nodes, prefer the larger image one",
                images(&["gcr.io/40", "gcr.io/250"]),
                vec![0, 3, 0],
            ),
            (
                // node1: (40 + 300) MiB × 1/3 = 113 MiB → 100 × 90 / 1977 = 4.
                "two images on one node, prefer this node",
                images(&["gcr.io/40", "gcr.io/300"]),
                vec![4, 0, 0],
            ),
            (
                // node1: 2000 MiB × 1/3 = 666 MiB → 100 × 643 / 1977 = 32.
                "if exceed limit, use limit",
                images(&["gcr.io/2000", "gcr.io/10:v1"]),
                vec![32, 0, 0],
            ),
            (
                "pod with no images on any node",
                images(&["gcr.io/unknown"]),
                vec![0, 0, 0],
            ),
            (
                "pod with no containers",
                PodBuilder::new("p"),
                vec![0, 0, 0],
            ),
            (
                // The tag defaults to latest: `gcr.io/300` is `gcr.io/300:latest`.
                "image names are normalised",
                images(&["gcr.io/300:latest"]),
                vec![7, 0, 0],
            ),
        ];
        for (name, pod, want) in cases {
            assert_eq!(run(pod, nodes()), want, "{name}");
        }
    }

    #[test]
    fn an_image_on_every_node_counts_in_full_everywhere() {
        let nodes = vec![
            NodeBuilder::new("node1").image("gcr.io/300:latest", 300 * MB),
            NodeBuilder::new("node2").image("gcr.io/300:latest", 300 * MB),
        ];
        // 300 MiB × 2/2 → 100 × (300 − 23) / (1000 − 23) = 28.
        assert_eq!(
            run(PodBuilder::new("p").image("gcr.io/300"), nodes),
            vec![28, 28]
        );
    }

    #[test]
    fn registers_no_events_as_a_score_only_plugin() {
        assert!(ImageLocality.events_to_register().is_empty());
    }
}
