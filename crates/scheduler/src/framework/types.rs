//! What the scheduler knows about nodes and pods: [`NodeInfo`] (a node, its pods and what they
//! use), [`PodInfo`] (a pod with its affinity terms parsed once), [`Resource`] (requested or
//! allocatable amounts) and the pod-request arithmetic every resource plugin shares.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use k8s_openapi::{
    api::core::v1::{Container, Node, Pod, PodAffinityTerm, ResourceRequirements},
    apimachinery::pkg::api::resource::Quantity as ApiQuantity,
};
use tug_apimachinery::{labels::Selector, quantity::Quantity};

/// CPU request assumed for scoring when a container asks for none (upstream: 100m).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory request assumed for scoring when a container asks for none (upstream: 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of every resource the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// How many pods fit (only meaningful for allocatable).
    pub allowed_pod_number: i64,
    /// Extended and hugepage resources, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a resource list (`requests`, `limits`, `allocatable`, `overhead`).
    pub fn from_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> Self {
        let mut r = Self::default();
        if let Some(list) = list {
            for (name, q) in list {
                r.set(name, q);
            }
        }
        r
    }

    fn set(&mut self, name: &str, q: &ApiQuantity) {
        let Ok(q) = Quantity::parse(&q.0) else { return };
        match name {
            "cpu" => self.milli_cpu = q.milli_value(),
            "memory" => self.memory = q.value(),
            "ephemeral-storage" => self.ephemeral_storage = q.value(),
            "pods" => self.allowed_pod_number = q.value(),
            _ if is_scalar_resource(name) => {
                self.scalar.insert(name.to_owned(), q.value());
            }
            _ => {}
        }
    }

    /// Adds `other` to these amounts.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from these amounts.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each amount to at least `other`'s.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// The amount of the named resource (`cpu` in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            _ => self.scalar.get(name).copied().unwrap_or(0),
        }
    }

    /// True when every amount is zero.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (`example.com/foo`), hugepages, prefixed native resources
/// (`kubernetes.io/…`) and attachable volumes: what upstream keeps in `ScalarResources`.
pub fn is_scalar_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || name.contains("kubernetes.io/")
        || is_extended_resource(name)
}

/// An extended resource: a fully-qualified name outside the `kubernetes.io` domain, not
/// `requests.`-prefixed.
pub fn is_extended_resource(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    !native && !name.starts_with("requests.")
}

fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let reqs = c
        .resources
        .as_ref()
        .and_then(|r: &ResourceRequirements| r.requests.as_ref());
    let mut r = Resource::from_list(reqs);
    if non_zero {
        let has = |k: &str| reqs.is_some_and(|m| m.contains_key(k));
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn is_restartable_init(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The pod's effective request as upstream computes it: the larger of (app containers plus
/// sidecars) and, for each init container, its request plus the sidecars started before it;
/// plus the pod overhead. With `non_zero`, containers without a CPU or memory request count
/// the scoring defaults instead (used by the scoring plugins).
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = &pod.spec else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut restartable = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, non_zero);
        if is_restartable_init(c) {
            reqs.add(&r);
            restartable.add(&r);
            init_max.set_max(&restartable);
        } else {
            let mut with_sidecars = r;
            with_sidecars.add(&restartable);
            init_max.set_max(&with_sidecars);
        }
    }
    reqs.set_max(&init_max);
    if let Some(overhead) = &spec.overhead {
        reqs.add(&Resource::from_list(Some(overhead)));
    }
    reqs
}

/// A pod-(anti-)affinity term with its selectors parsed.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    /// Namespaces named by the term (the pod's own when neither list nor selector is given).
    pub namespaces: HashSet<String>,
    /// Which pods the term is about.
    pub selector: Selector,
    /// The topology domain label.
    pub topology_key: String,
    /// Namespaces selected by label; `None` selects none.
    pub namespace_selector: Option<Selector>,
}

impl AffinityTerm {
    /// Parses `term` as declared by a pod in `namespace`; `None` when a selector is invalid.
    pub fn new(namespace: &str, term: &PodAffinityTerm) -> Option<Self> {
        let selector = to_selector(term.label_selector.as_ref())?;
        let namespace_selector = match &term.namespace_selector {
            Some(s) => Some(to_selector(Some(s))?),
            None => None,
        };
        let mut namespaces: HashSet<String> = term.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(namespace.to_owned());
        }
        Some(Self {
            namespaces,
            selector,
            topology_key: term.topology_key.clone(),
            namespace_selector,
        })
    }

    /// True when the term selects `pod`, whose namespace carries `ns_labels`.
    pub fn matches(&self, pod: &Pod, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let ns_ok = self.namespaces.contains(ns)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.matches(ns_labels.unwrap_or(&BTreeMap::new())));
        ns_ok && self.selector.matches(labels_of(pod))
    }
}

/// A weighted (preferred) affinity term.
#[derive(Debug, Clone)]
pub struct WeightedAffinityTerm {
    /// The term.
    pub term: AffinityTerm,
    /// Its weight, 1–100.
    pub weight: i32,
}

/// Converts an API label selector to a parsed one; a missing selector selects nothing, an
/// invalid one gives `None`.
pub fn to_selector(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> Option<Selector> {
    let Some(selector) = selector else {
        return Some(Selector::Nothing);
    };
    let value = serde_json::to_value(selector).ok()?;
    Selector::from_label_selector_json(&value).ok()
}

static EMPTY_LABELS: std::sync::LazyLock<BTreeMap<String, String>> =
    std::sync::LazyLock::new(BTreeMap::new);

/// The labels of an object's metadata (empty when absent).
pub fn labels_of(pod: &Pod) -> &BTreeMap<String, String> {
    pod.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
}

/// The labels of a node (empty when absent).
pub fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    node.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
}

/// A pod with what the plugins need from it computed once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod.
    pub pod: Arc<Pod>,
    /// Required pod-affinity terms.
    pub required_affinity: Vec<AffinityTerm>,
    /// Required pod-anti-affinity terms.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Preferred pod-affinity terms.
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    /// Preferred pod-anti-affinity terms.
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    /// `pod_requests(pod, false)`.
    pub requests: Resource,
    /// `pod_requests(pod, true)`.
    pub non_zero_requests: Resource,
    /// True when an affinity term could not be parsed (the pod then fits nowhere).
    pub parse_error: bool,
}

impl PodInfo {
    /// Parses what the plugins need from `pod`.
    pub fn new(pod: Arc<Pod>) -> Self {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let mut parse_error = false;
        let mut required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let parsed = AffinityTerm::new(&ns, t);
                    parse_error |= parsed.is_none();
                    parsed
                })
                .collect()
        };
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required_affinity = required(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = required(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let mut preferred =
            |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
                terms
                    .into_iter()
                    .flatten()
                    .filter_map(|t| {
                        let parsed = AffinityTerm::new(&ns, &t.pod_affinity_term);
                        parse_error |= parsed.is_none();
                        Some(WeightedAffinityTerm {
                            term: parsed?,
                            weight: t.weight,
                        })
                    })
                    .collect::<Vec<_>>()
            };
        let preferred_affinity = preferred(pa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_anti_affinity = preferred(paa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        Self {
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            pod,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            parse_error,
        }
    }

    /// `namespace/name` of the pod.
    pub fn key(&self) -> String {
        pod_key(&self.pod)
    }

    /// The pod's UID.
    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or_default()
    }

    /// True when the pod has any (anti-)affinity term.
    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }
}

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The pod's priority (0 when unset).
pub fn pod_priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// A host port in use: protocol, host IP and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// `0.0.0.0` when the port binds every address.
    pub ip: String,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The port.
    pub port: i32,
}

impl HostPort {
    /// Two host ports conflict on the same protocol and port when either binds every address
    /// or both bind the same one.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// The host ports a pod asks for.
pub fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let containers = spec.containers.iter().chain(
        spec.init_containers
            .iter()
            .flatten()
            .filter(|c| is_restartable_init(c)),
    );
    containers
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.is_some_and(|p| p > 0))
        .map(|p| HostPort {
            ip: p
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| "0.0.0.0".to_owned()),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
            port: p.host_port.unwrap_or_default(),
        })
        .collect()
}

/// How widely an image is present, for ImageLocality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageStateSummary {
    /// Image size in bytes.
    pub size: i64,
    /// How many nodes have it.
    pub num_nodes: usize,
}

/// A node and the pods on it (assumed ones included), with totals kept in step.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// The node (`None` while only pods naming it have been seen).
    pub node: Option<Arc<Node>>,
    /// Pods on the node.
    pub pods: Vec<Arc<PodInfo>>,
    /// Pods on the node with any affinity term.
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    /// Pods on the node with required anti-affinity terms.
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    /// Host ports in use.
    pub used_ports: Vec<HostPort>,
    /// Sum of the pods' requests.
    pub requested: Resource,
    /// Sum of the pods' requests with the scoring defaults.
    pub non_zero_requested: Resource,
    /// What the node offers.
    pub allocatable: Resource,
    /// Images on the node (normalised names) and their cluster-wide spread.
    pub image_states: HashMap<String, ImageStateSummary>,
    /// Bumped on every change; the snapshot copies only what changed.
    pub generation: u64,
}

impl NodeInfo {
    /// A node with no pods.
    pub fn new(node: Arc<Node>) -> Self {
        let mut info = Self::default();
        info.set_node(node);
        info
    }

    /// The node's name ("" when unknown).
    pub fn name(&self) -> &str {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.name.as_deref())
            .unwrap_or_default()
    }

    /// The node object; panics never: a placeholder is returned for pods-only entries.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_deref()
    }

    /// Replaces the node object.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = Resource::from_list(
            node.status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref())),
        );
        self.node = Some(node);
    }

    /// Adds a pod and its usage.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod_host_ports(&pod.pod));
        if pod.has_affinity() {
            self.pods_with_affinity.push(pod.clone());
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        self.pods.push(pod);
    }

    /// Removes the pod with `uid`; false when it was not here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid() == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.pods_with_affinity.retain(|p| p.uid() != uid);
        self.pods_with_required_anti_affinity
            .retain(|p| p.uid() != uid);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for port in pod_host_ports(&pod.pod) {
            if let Some(i) = self.used_ports.iter().position(|p| *p == port) {
                self.used_ports.swap_remove(i);
            }
        }
        true
    }
}
