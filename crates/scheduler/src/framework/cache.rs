//! The scheduler cache: every node with the pods on it, including pods the scheduler has
//! *assumed* onto a node while their binding is still in flight, and the [`Snapshot`] each
//! scheduling cycle reads. Updating the snapshot copies only the nodes changed since the last
//! cycle (copy-on-write `Arc`s), so a cycle costs O(changed nodes), not O(cluster).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use k8s_openapi::api::core::v1::{Node, Pod};

use super::types::{ImageStateSummary, NodeInfo, PodInfo};

/// A consistent view of the cluster for one scheduling cycle.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    with_affinity: Vec<Arc<NodeInfo>>,
    with_required_anti_affinity: Vec<Arc<NodeInfo>>,
}

impl Snapshot {
    /// A snapshot of exactly these nodes (tests and benchmarks).
    pub fn from_nodes(nodes: impl IntoIterator<Item = NodeInfo>) -> Self {
        let mut s = Self::default();
        for n in nodes {
            let name = n.name().to_owned();
            s.index.insert(name, s.nodes.len());
            s.nodes.push(Arc::new(n));
        }
        s.refresh_lists();
        s
    }

    fn refresh_lists(&mut self) {
        self.with_affinity = self
            .nodes
            .iter()
            .filter(|n| !n.pods_with_affinity.is_empty())
            .cloned()
            .collect();
        self.with_required_anti_affinity = self
            .nodes
            .iter()
            .filter(|n| !n.pods_with_required_anti_affinity.is_empty())
            .cloned()
            .collect();
    }

    /// Every node.
    pub fn nodes(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }

    /// The node named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// Nodes with at least one pod that has an affinity term.
    pub fn have_pods_with_affinity(&self) -> &[Arc<NodeInfo>] {
        &self.with_affinity
    }

    /// Nodes with at least one pod that has a required anti-affinity term.
    pub fn have_pods_with_required_anti_affinity(&self) -> &[Arc<NodeInfo>] {
        &self.with_required_anti_affinity
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True without nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[derive(Debug)]
struct PodState {
    info: Arc<PodInfo>,
    node: String,
    assumed: bool,
}

/// Nodes and pods as the scheduler believes them to be.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: HashMap<String, Arc<NodeInfo>>,
    pods: HashMap<String, PodState>,
    /// image name → nodes that have it, with its size.
    images: HashMap<String, (i64, HashSet<String>)>,
    generation: u64,
    dirty: HashSet<String>,
}

fn node_images(node: &Node) -> Vec<(String, i64)> {
    node.status
        .iter()
        .flat_map(|s| s.images.iter().flatten())
        .flat_map(|img| {
            let size = img.size_bytes.unwrap_or(0);
            img.names
                .iter()
                .flatten()
                .map(move |n| (normalized_image_name(n), size))
        })
        .collect()
}

/// `busybox` → `busybox:latest`; names with a tag or digest stay as they are.
pub fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn touch(&mut self, name: &str) -> &mut NodeInfo {
        self.generation += 1;
        let generation = self.generation;
        self.dirty.insert(name.to_owned());
        let entry = self.nodes.entry(name.to_owned()).or_default();
        let info = Arc::make_mut(entry);
        info.generation = generation;
        info
    }

    /// Adds or replaces a node.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let old: Vec<(String, i64)> = self
            .nodes
            .get(&name)
            .and_then(|n| n.node.as_ref())
            .map(|n| node_images(n))
            .unwrap_or_default();
        for (img, _) in old {
            if let Some((_, set)) = self.images.get_mut(&img) {
                set.remove(&name);
            }
        }
        for (img, size) in node_images(&node) {
            let e = self.images.entry(img).or_insert((size, HashSet::new()));
            e.0 = size;
            e.1.insert(name.clone());
        }
        self.touch(&name).set_node(node);
    }

    /// Removes a node (its pods stay until they are deleted, as upstream).
    pub fn remove_node(&mut self, name: &str) {
        for (_, set) in self.images.values_mut() {
            set.remove(name);
        }
        let has_pods = self.nodes.get(name).is_some_and(|n| !n.pods.is_empty());
        if has_pods {
            self.touch(name).node = None;
        } else {
            self.nodes.remove(name);
            self.dirty.insert(name.to_owned());
        }
    }

    /// True when the node is known.
    pub fn has_node(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|n| n.node.is_some())
    }

    /// How many nodes are known.
    pub fn node_count(&self) -> usize {
        self.nodes.values().filter(|n| n.node.is_some()).count()
    }

    /// Puts `pod` on `node` before the API server has confirmed it.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        let uid = pod.uid().to_owned();
        self.touch(node).add_pod(pod.clone());
        self.pods.insert(
            uid,
            PodState {
                info: pod,
                node: node.to_owned(),
                assumed: true,
            },
        );
    }

    /// Takes back an assumption (binding failed).
    pub fn forget(&mut self, uid: &str) {
        if let Some(state) = self.pods.get(uid)
            && state.assumed
        {
            let node = state.node.clone();
            self.pods.remove(uid);
            self.remove_from_node(&node, uid);
        }
    }

    fn remove_from_node(&mut self, node: &str, uid: &str) {
        self.touch(node).remove_pod(uid);
        if let Some(n) = self.nodes.get(node)
            && n.node.is_none()
            && n.pods.is_empty()
        {
            self.nodes.remove(node);
        }
    }

    /// Records a pod that is on a node (added or updated by the informer); confirms an
    /// assumption.
    pub fn set_pod(&mut self, pod: Arc<Pod>) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            return;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(old) = self.pods.get(&uid) {
            let old_node = old.node.clone();
            let unchanged = !old.assumed
                && old_node == node
                && old.info.pod.metadata.resource_version == pod.metadata.resource_version;
            if unchanged {
                return;
            }
            self.remove_from_node(&old_node, &uid);
        }
        let info = Arc::new(PodInfo::new(pod));
        self.touch(&node).add_pod(info.clone());
        self.pods.insert(
            uid,
            PodState {
                info,
                node,
                assumed: false,
            },
        );
    }

    /// Forgets a pod that was deleted or finished.
    pub fn remove_pod(&mut self, uid: &str) {
        if let Some(state) = self.pods.remove(uid) {
            self.remove_from_node(&state.node, uid);
        }
    }

    /// True when the pod is in the cache (assumed or confirmed).
    pub fn has_pod(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// True when the pod is assumed and not yet confirmed.
    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|p| p.assumed)
    }

    /// Brings `snapshot` up to date, copying only the nodes that changed.
    pub fn update_snapshot(&mut self, snapshot: &mut Snapshot) {
        if self.dirty.is_empty() {
            return;
        }
        for name in std::mem::take(&mut self.dirty) {
            let current = self.nodes.get(&name).filter(|n| n.node.is_some());
            match (current, snapshot.index.get(&name).copied()) {
                (Some(info), Some(i)) => {
                    snapshot.nodes[i] = self.with_images(info);
                }
                (Some(info), None) => {
                    snapshot.index.insert(name.clone(), snapshot.nodes.len());
                    snapshot.nodes.push(self.with_images(info));
                }
                (None, Some(i)) => {
                    snapshot.index.remove(&name);
                    snapshot.nodes.swap_remove(i);
                    if let Some(moved) = snapshot.nodes.get(i) {
                        snapshot.index.insert(moved.name().to_owned(), i);
                    }
                }
                (None, None) => {}
            }
        }
        snapshot.refresh_lists();
    }

    fn with_images(&self, info: &Arc<NodeInfo>) -> Arc<NodeInfo> {
        let Some(node) = &info.node else {
            return info.clone();
        };
        let images = node_images(node);
        if images.is_empty() {
            return info.clone();
        }
        let mut copy = (**info).clone();
        copy.image_states = images
            .into_iter()
            .map(|(name, size)| {
                let num_nodes = self.images.get(&name).map_or(1, |(_, s)| s.len());
                (name, ImageStateSummary { size, num_nodes })
            })
            .collect();
        Arc::new(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn pod(uid: &str, node: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(uid.into()),
                namespace: Some("default".into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                node_name: Some(node.into()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn snapshot_follows_nodes_and_assumed_pods() {
        let mut cache = Cache::new();
        let mut snap = Snapshot::default();
        cache.set_node(node("a"));
        cache.set_node(node("b"));
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.len(), 2);

        let p = Arc::new(PodInfo::new(pod("u1", "a")));
        cache.assume(p, "a");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("a").map(|n| n.pods.len()), Some(1));
        assert!(cache.is_assumed("u1"));

        // The informer confirms it; then it is deleted.
        cache.set_pod(pod("u1", "a"));
        assert!(!cache.is_assumed("u1"));
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("a").map(|n| n.pods.len()), Some(1));
        cache.remove_pod("u1");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("a").map(|n| n.pods.len()), Some(0));

        cache.remove_node("a");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.len(), 1);
        assert!(snap.get("b").is_some());
    }

    #[test]
    fn forgetting_an_assumption_frees_the_node() {
        let mut cache = Cache::new();
        let mut snap = Snapshot::default();
        cache.set_node(node("a"));
        cache.assume(Arc::new(PodInfo::new(pod("u1", "a"))), "a");
        cache.forget("u1");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("a").map(|n| n.pods.len()), Some(0));
        assert!(!cache.has_pod("u1"));
    }
}
