//! Builders for the plugins' table-driven tests: pods and nodes in a few chained calls.
//! Each plugin's tests may add their own builder methods in a separate `impl` block of their
//! file rather than here.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::core::v1::{
        Affinity, Container, ContainerImage, ContainerPort, Node, NodeSpec, NodeStatus, Pod,
        PodSchedulingGate, PodSpec, ResourceRequirements, Taint, Toleration,
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};

use crate::framework::{NodeInfo, PodInfo};

/// Builds a pod in namespace `default` with a uid equal to its name.
#[derive(Debug, Clone)]
pub struct PodBuilder(pub Pod);

impl PodBuilder {
    /// A pod with no containers.
    pub fn new(name: &str) -> Self {
        Self(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        })
    }

    fn spec(&mut self) -> &mut PodSpec {
        self.0.spec.get_or_insert_with(Default::default)
    }

    /// Sets the namespace.
    pub fn namespace(mut self, ns: &str) -> Self {
        self.0.metadata.namespace = Some(ns.into());
        self
    }

    /// Sets the uid.
    pub fn uid(mut self, uid: &str) -> Self {
        self.0.metadata.uid = Some(uid.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }

    /// Sets `spec.priority`.
    pub fn priority(mut self, p: i32) -> Self {
        self.spec().priority = Some(p);
        self
    }

    /// Sets `spec.nodeName`.
    pub fn node_name(mut self, n: &str) -> Self {
        self.spec().node_name = Some(n.into());
        self
    }

    /// Adds a scheduling gate.
    pub fn scheduling_gate(mut self, name: &str) -> Self {
        self.spec()
            .scheduling_gates
            .get_or_insert_with(Vec::new)
            .push(PodSchedulingGate { name: name.into() });
        self
    }

    /// Adds a toleration.
    pub fn toleration(mut self, key: &str, op: &str, value: &str, effect: &str) -> Self {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        self.spec()
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: opt(key),
                operator: opt(op),
                value: opt(value),
                effect: opt(effect),
                toleration_seconds: None,
            });
        self
    }

    /// Adds a container requesting `(resource, quantity)` pairs, e.g. `[("cpu", "500m")]`.
    pub fn container(mut self, requests: &[(&str, &str)]) -> Self {
        let n = self.spec().containers.len();
        self.spec().containers.push(container(n, "app", requests));
        self
    }

    /// Adds an init container; `sidecar` makes it restartable (`restartPolicy: Always`).
    pub fn init_container(mut self, requests: &[(&str, &str)], sidecar: bool) -> Self {
        let n = self.spec().init_containers.as_ref().map_or(0, Vec::len);
        let mut c = container(n, "init", requests);
        if sidecar {
            c.restart_policy = Some("Always".into());
        }
        self.spec()
            .init_containers
            .get_or_insert_with(Vec::new)
            .push(c);
        self
    }

    /// Sets the pod overhead.
    pub fn overhead(mut self, list: &[(&str, &str)]) -> Self {
        self.spec().overhead = Some(quantities(list));
        self
    }

    /// Adds a container with an image.
    pub fn image(mut self, image: &str) -> Self {
        let n = self.spec().containers.len();
        let mut c = container(n, "app", &[]);
        c.image = Some(image.into());
        self.spec().containers.push(c);
        self
    }

    /// Adds a container with a host port (`proto` TCP/UDP, `ip` may be empty).
    pub fn host_port(mut self, port: i32, proto: &str, ip: &str) -> Self {
        let n = self.spec().containers.len();
        let mut c = container(n, "app", &[]);
        c.ports = Some(vec![ContainerPort {
            container_port: port,
            host_port: Some(port),
            protocol: Some(proto.into()),
            host_ip: (!ip.is_empty()).then(|| ip.into()),
            ..Default::default()
        }]);
        self.spec().containers.push(c);
        self
    }

    /// Adds a node selector entry.
    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.spec()
            .node_selector
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }

    /// Sets the affinity from JSON in the API's shape.
    pub fn affinity_json(mut self, json: serde_json::Value) -> Self {
        let affinity: Affinity = serde_json::from_value(json).expect("valid affinity JSON");
        self.spec().affinity = Some(affinity);
        self
    }

    /// Changes the spec through JSON merge (for fields without a builder method).
    pub fn spec_json(mut self, json: serde_json::Value) -> Self {
        let mut current = serde_json::to_value(self.spec().clone()).expect("spec serializes");
        merge(&mut current, json);
        *self.spec() = serde_json::from_value(current).expect("valid spec JSON");
        self
    }

    /// The pod.
    pub fn build(self) -> Pod {
        self.0
    }

    /// The pod as a [`PodInfo`].
    pub fn info(self) -> PodInfo {
        PodInfo::new(Arc::new(self.0))
    }
}

fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

fn quantities(list: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

fn container(n: usize, prefix: &str, requests: &[(&str, &str)]) -> Container {
    Container {
        name: format!("{prefix}{n}"),
        image: Some("busybox".into()),
        resources: (!requests.is_empty()).then(|| ResourceRequirements {
            requests: Some(quantities(requests)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds a node.
#[derive(Debug, Clone)]
pub struct NodeBuilder(pub Node);

impl NodeBuilder {
    /// A node with no allocatable resources.
    pub fn new(name: &str) -> Self {
        Self(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(BTreeMap::from([(
                    "kubernetes.io/hostname".to_owned(),
                    name.to_owned(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus::default()),
        })
    }

    /// Sets allocatable (and capacity) to `(resource, quantity)` pairs.
    pub fn allocatable(mut self, list: &[(&str, &str)]) -> Self {
        let status = self.0.status.get_or_insert_with(Default::default);
        status.allocatable = Some(quantities(list));
        status.capacity = Some(quantities(list));
        self
    }

    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }

    /// Adds a taint.
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .taints
            .get_or_insert_with(Vec::new)
            .push(Taint {
                key: key.into(),
                value: (!value.is_empty()).then(|| value.into()),
                effect: effect.into(),
                time_added: None,
            });
        self
    }

    /// Cordons the node.
    pub fn unschedulable(mut self) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .unschedulable = Some(true);
        self
    }

    /// Adds an image present on the node.
    pub fn image(mut self, name: &str, size: i64) -> Self {
        self.0
            .status
            .get_or_insert_with(Default::default)
            .images
            .get_or_insert_with(Vec::new)
            .push(ContainerImage {
                names: Some(vec![name.into()]),
                size_bytes: Some(size),
            });
        self
    }

    /// The node.
    pub fn build(self) -> Node {
        self.0
    }
}

/// A [`NodeInfo`] of `node` with `pods` on it.
pub fn node_info(node: Node, pods: &[Pod]) -> NodeInfo {
    let mut info = NodeInfo::new(Arc::new(node));
    for p in pods {
        info.add_pod(Arc::new(PodInfo::new(Arc::new(p.clone()))));
    }
    info
}
