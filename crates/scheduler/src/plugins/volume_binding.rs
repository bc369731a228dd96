//! VolumeBinding: places pods with PersistentVolumeClaims where their volumes can be used,
//! and binds `WaitForFirstConsumer` claims once the node is chosen.
//!
//! * **PreFilter** looks up the pod's claims (`persistentVolumeClaim` volumes and generic
//!   ephemeral volumes). A missing or terminating claim, or an unbound claim whose class binds
//!   immediately, makes the pod unresolvable: the PV controller must act first. Pods without
//!   claims skip the plugin.
//! * **Filter** checks, per node: a bound claim's PV node affinity must match the node; each
//!   unbound `WaitForFirstConsumer` claim must either match an available PV (class, capacity,
//!   access modes, volume mode, selector, PV node affinity; smallest fit wins, as upstream) or
//!   have a class with a provisioner whose `allowedTopologies` admit the node. The decision for
//!   each feasible node is kept for Reserve.
//! * **Reserve** takes the decision for the chosen node and marks its PVs as assumed, so the
//!   next pods do not pick them before the informers catch up; **Unreserve** forgets it.
//! * **PreBind** binds static PVs by setting `spec.claimRef`, asks for provisioning by setting
//!   the `volume.kubernetes.io/selected-node` annotation on the claim, and waits (30 s at most)
//!   for every claim to be Bound.
//!
//! Not covered (upstream features behind other objects): CSI storage capacity, CSINode
//! migration and the alpha VolumeCapacityPriority scoring.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::core::v1::{
    Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
};
use kube::{Api, api::PostParams};
use tug_apimachinery::quantity::Quantity;

use crate::framework::{
    ActionType, ClusterEvent, Code, CycleState, EventResource, FilterPlugin, Handle, Listers,
    NodeInfo, Plugin, PodInfo, PreBindPlugin, PreFilterPlugin, PreFilterResult, ReservePlugin,
    Snapshot, Status, nodeaffinity::ParsedNodeSelector, types::to_selector,
};

/// The plugin's name.
pub const NAME: &str = "VolumeBinding";
/// Filter: a bound PV's node affinity excludes the node.
pub const ERR_REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
/// Filter: an unbound claim can neither use an existing PV nor be provisioned here.
pub const ERR_REASON_BIND_CONFLICT: &str =
    "node(s) didn't find available persistent volumes to bind";
/// Filter: a bound claim's PV does not exist.
pub const ERR_REASON_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
/// PreFilter: an unbound claim of an `Immediate` class.
pub const ERR_REASON_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
/// The annotation asking the provisioner to create the volume for a node.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Set on a PV bound by a controller rather than pre-bound by a user.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// Set on a claim once the PV controller completed binding.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// The legacy storage-class annotation (still honoured).
pub const ANN_BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// A provisioner name meaning "static volumes only".
pub const NOT_SUPPORTED_PROVISIONER: &str = "kubernetes.io/no-provisioner";
/// How long PreBind waits for the claims to be bound.
pub const BIND_TIMEOUT: Duration = Duration::from_secs(30);

const STATE_KEY: &str = "VolumeBinding";
const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
const WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";

/// A static binding: this PV for this claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The PV's name.
    pub pv: String,
    /// The claim.
    pub pvc: Arc<PersistentVolumeClaim>,
}

/// What must happen on one node for the pod's volumes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodVolumes {
    /// Existing PVs to bind.
    pub static_bindings: Vec<Binding>,
    /// Claims to provision on the node.
    pub dynamic_provisions: Vec<Arc<PersistentVolumeClaim>>,
}

/// The pod's claims, sorted as upstream does.
#[derive(Debug, Clone, Default)]
struct PodClaims {
    bound: Vec<Arc<PersistentVolumeClaim>>,
    unbound_delayed: Vec<Arc<PersistentVolumeClaim>>,
    /// PVs of the delayed claims' classes, by class.
    pvs_by_class: HashMap<String, Vec<Arc<PersistentVolume>>>,
}

/// Per-cycle state: the claims and the decision per feasible node (written by the parallel
/// Filter calls, hence the lock).
#[derive(Debug, Clone, Default)]
struct State {
    claims: Arc<PodClaims>,
    by_node: Arc<Mutex<HashMap<String, PodVolumes>>>,
    /// The decision Reserve took; `None` when everything was already bound.
    reserved: Option<PodVolumes>,
}

/// The plugin.
#[derive(Debug)]
pub struct VolumeBinding {
    listers: Listers,
    /// PVs chosen for a claim but not yet seen bound: PV name → claim key.
    assumed: Mutex<HashMap<String, String>>,
}

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(VolumeBinding::new(h)))
}

impl VolumeBinding {
    fn new(h: &Handle) -> Self {
        Self {
            listers: h.listers.clone(),
            assumed: Mutex::new(HashMap::new()),
        }
    }

    fn assumed(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.assumed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when the claim's class delays binding until a pod is scheduled.
    fn is_delayed(&self, pvc: &PersistentVolumeClaim) -> bool {
        let class = claim_class(pvc);
        if class.is_empty() {
            return false;
        }
        self.listers
            .storage_class(&class)
            .is_some_and(|sc| sc.volume_binding_mode.as_deref() == Some(WAIT_FOR_FIRST_CONSUMER))
    }

    /// Reads the pod's claims; `Err` is the PreFilter status.
    fn pod_claims(&self, pod: &Pod) -> Result<Option<PodClaims>, Status> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
        let mut claims = PodClaims::default();
        let mut any = false;
        let mut immediate_unbound = false;
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let (name, ephemeral) = if let Some(c) = &v.persistent_volume_claim {
                (c.claim_name.clone(), false)
            } else if v.ephemeral.is_some() {
                (format!("{pod_name}-{}", v.name), true)
            } else {
                continue;
            };
            any = true;
            let Some(pvc) = self.listers.pvc(ns, &name) else {
                let reason = if ephemeral {
                    format!(
                        "waiting for ephemeral volume controller to create the persistentvolumeclaim {name:?}"
                    )
                } else {
                    format!("persistentvolumeclaim {name:?} not found")
                };
                return Err(Status::unresolvable(reason));
            };
            if ephemeral && !owned_by(&pvc, pod) {
                return Err(Status::unresolvable(format!(
                    "PVC {ns}/{name} was not created for pod {ns}/{pod_name} (pod is not owner)"
                )));
            }
            if pvc.metadata.deletion_timestamp.is_some() {
                return Err(Status::unresolvable(format!(
                    "persistentvolumeclaim {name:?} is being deleted"
                )));
            }
            let volume_name = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .unwrap_or_default();
            if !volume_name.is_empty() {
                claims.bound.push(pvc);
            } else if self.is_delayed(&pvc) {
                claims.unbound_delayed.push(pvc);
            } else {
                immediate_unbound = true;
            }
        }
        if !any {
            return Ok(None);
        }
        if immediate_unbound {
            return Err(Status::unresolvable(ERR_REASON_UNBOUND_IMMEDIATE));
        }
        let classes: HashSet<String> = claims
            .unbound_delayed
            .iter()
            .map(|c| claim_class(c))
            .collect();
        for pv in self.listers.pvs.state() {
            let class = pv_class(&pv);
            if classes.contains(&class) {
                claims.pvs_by_class.entry(class).or_default().push(pv);
            }
        }
        // Smallest requests first, so each gets the smallest PV that fits.
        claims.unbound_delayed.sort_by_key(|c| claim_request(c));
        Ok(Some(claims))
    }

    /// Upstream's `FindPodVolumes`: the reasons the node cannot serve the claims, or what to
    /// do there.
    fn find_pod_volumes(
        &self,
        claims: &PodClaims,
        node: &Node,
    ) -> Result<PodVolumes, Vec<&'static str>> {
        let mut reasons = Vec::new();
        for pvc in &claims.bound {
            let name = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .unwrap_or_default();
            match self.listers.pv(name) {
                None => {
                    reasons.push(ERR_REASON_PV_NOT_EXIST);
                    break;
                }
                Some(pv) if !pv_node_affinity_matches(&pv, node) => {
                    reasons.push(ERR_REASON_NODE_CONFLICT);
                    break;
                }
                Some(_) => {}
            }
        }
        let mut out = PodVolumes::default();
        let node_name = node.metadata.name.as_deref().unwrap_or_default();
        let mut to_match = Vec::new();
        let mut to_provision = Vec::new();
        let mut unbound_ok = true;
        for pvc in &claims.unbound_delayed {
            match pvc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_SELECTED_NODE))
            {
                Some(selected) if selected != node_name => {
                    unbound_ok = false;
                    break;
                }
                Some(_) => to_provision.push(pvc.clone()),
                None => to_match.push(pvc.clone()),
            }
        }
        if unbound_ok {
            let assumed = self.assumed().clone();
            let mut chosen: HashSet<String> = HashSet::new();
            for pvc in to_match {
                let key = claim_key(&pvc);
                let candidates = claims
                    .pvs_by_class
                    .get(&claim_class(&pvc))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let usable = candidates.iter().filter(|pv| {
                    let name = pv.metadata.name.as_deref().unwrap_or_default();
                    !chosen.contains(name) && assumed.get(name).is_none_or(|k| *k == key)
                });
                match find_matching_volume(&pvc, usable, node) {
                    Some(pv) => {
                        let name = pv.metadata.name.clone().unwrap_or_default();
                        chosen.insert(name.clone());
                        out.static_bindings.push(Binding { pv: name, pvc });
                    }
                    None => to_provision.push(pvc),
                }
            }
            for pvc in to_provision {
                if !self.can_provision(&pvc, node) {
                    unbound_ok = false;
                    break;
                }
                out.dynamic_provisions.push(pvc);
            }
        }
        if !unbound_ok {
            reasons.push(ERR_REASON_BIND_CONFLICT);
        }
        if reasons.is_empty() {
            Ok(out)
        } else {
            Err(reasons)
        }
    }

    /// The nodes the bound claims' local PVs pin the pod to (upstream's `GetEligibleNodes`):
    /// the intersection over PVs of the hostnames their node affinity names. `None` when no
    /// bound PV is pinned to hostnames.
    fn eligible_nodes(&self, bound: &[Arc<PersistentVolumeClaim>]) -> Option<BTreeSet<String>> {
        let mut eligible: Option<BTreeSet<String>> = None;
        for pvc in bound {
            let name = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .unwrap_or_default();
            let Some(names) = self.listers.pv(name).and_then(|pv| pv_hostnames(&pv)) else {
                continue;
            };
            eligible = Some(match eligible {
                None => names,
                Some(prev) => prev.intersection(&names).cloned().collect(),
            });
        }
        eligible
    }

    /// True when the claim's class has a provisioner and its `allowedTopologies` admit `node`.
    fn can_provision(&self, pvc: &PersistentVolumeClaim, node: &Node) -> bool {
        let class = claim_class(pvc);
        let Some(sc) = self.listers.storage_class(&class) else {
            return false;
        };
        if sc.provisioner.is_empty() || sc.provisioner == NOT_SUPPORTED_PROVISIONER {
            return false;
        }
        let labels = node.metadata.labels.clone().unwrap_or_default();
        match sc.allowed_topologies.as_deref() {
            None | Some([]) => true,
            Some(terms) => terms.iter().any(|t| {
                t.match_label_expressions.iter().flatten().all(|e| {
                    labels
                        .get(&e.key)
                        .is_some_and(|v| e.values.iter().any(|x| x == v))
                })
            }),
        }
    }
}

/// The claim's storage class (`spec.storageClassName`, else the beta annotation).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> String {
    if let Some(c) = pvc.spec.as_ref().and_then(|s| s.storage_class_name.clone()) {
        return c;
    }
    pvc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_BETA_STORAGE_CLASS).cloned())
        .unwrap_or_default()
}

/// The PV's storage class.
pub fn pv_class(pv: &PersistentVolume) -> String {
    if let Some(c) = pv.spec.as_ref().and_then(|s| s.storage_class_name.clone()) {
        return c;
    }
    pv.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_BETA_STORAGE_CLASS).cloned())
        .unwrap_or_default()
}

fn claim_key(pvc: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        pvc.metadata.namespace.as_deref().unwrap_or_default(),
        pvc.metadata.name.as_deref().unwrap_or_default()
    )
}

fn owned_by(pvc: &PersistentVolumeClaim, pod: &Pod) -> bool {
    pvc.metadata.owner_references.iter().flatten().any(|o| {
        o.controller == Some(true) && o.kind == "Pod" && Some(&o.uid) == pod.metadata.uid.as_ref()
    })
}

fn parse_quantity(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Quantity {
    q.and_then(|q| Quantity::parse(&q.0).ok())
        .unwrap_or_else(Quantity::zero)
}

fn claim_request(pvc: &PersistentVolumeClaim) -> Quantity {
    parse_quantity(
        pvc.spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage")),
    )
}

fn pv_capacity(pv: &PersistentVolume) -> Quantity {
    parse_quantity(
        pv.spec
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage")),
    )
}

/// True when the PV has no required node affinity or its terms match the node's labels (as
/// upstream's `CheckNodeAffinity`, which sees only labels).
pub fn pv_node_affinity_matches(pv: &PersistentVolume, node: &Node) -> bool {
    let Some(required) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    let labels_only = Node {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            labels: node.metadata.labels.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    ParsedNodeSelector::new(required).matches(&labels_only)
}

/// The hostnames a PV's required node affinity pins it to, when every term names hosts with
/// `kubernetes.io/hostname In` (upstream's `GetLocalPersistentVolumeNodeNames`; a term
/// without such a requirement leaves the PV unpinned here, which is the safe reading). Node
/// names are taken to equal their hostname labels, as upstream does.
fn pv_hostnames(pv: &PersistentVolume) -> Option<BTreeSet<String>> {
    let terms = &pv
        .spec
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required
        .as_ref()?
        .node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut out = BTreeSet::new();
    for term in terms {
        let mut names: Option<BTreeSet<String>> = None;
        for e in term.match_expressions.iter().flatten() {
            if e.key == LABEL_HOSTNAME && e.operator == "In" {
                let values: BTreeSet<String> = e.values.iter().flatten().cloned().collect();
                names = Some(match names {
                    None => values,
                    Some(prev) => prev.intersection(&values).cloned().collect(),
                });
            }
        }
        out.extend(names?);
    }
    Some(out)
}

fn pv_bound_to(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name == pvc.metadata.name
        && r.namespace == pvc.metadata.namespace
        && (r.uid.is_none() || r.uid == pvc.metadata.uid)
}

/// Upstream's `FindMatchingVolume` for the scheduler: a PV pre-bound to the claim wins (if its
/// node affinity allows the node); otherwise the smallest available, unclaimed PV of the class
/// with enough capacity, the claim's access modes and volume mode, matching the claim's
/// selector and the node.
pub fn find_matching_volume<'a>(
    pvc: &PersistentVolumeClaim,
    pvs: impl IntoIterator<Item = &'a Arc<PersistentVolume>>,
    node: &Node,
) -> Option<Arc<PersistentVolume>> {
    let spec = pvc.spec.as_ref();
    let requested = claim_request(pvc);
    let class = claim_class(pvc);
    let mode = |m: Option<&String>| m.map_or("Filesystem", String::as_str).to_owned();
    let claim_mode = mode(spec.and_then(|s| s.volume_mode.as_ref()));
    let claim_modes: Vec<String> = spec
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default();
    let selector = match spec.and_then(|s| s.selector.as_ref()) {
        Some(s) => Some(to_selector(Some(s))?),
        None => None,
    };
    let mut best: Option<(Quantity, Arc<PersistentVolume>)> = None;
    for pv in pvs {
        let Some(pv_spec) = pv.spec.as_ref() else {
            continue;
        };
        if pv_spec.claim_ref.is_some() && !pv_bound_to(pv, pvc) {
            continue;
        }
        let capacity = pv_capacity(pv);
        if capacity < requested {
            continue;
        }
        if mode(pv_spec.volume_mode.as_ref()) != claim_mode {
            continue;
        }
        if pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let affinity_ok = pv_node_affinity_matches(pv, node);
        if pv_bound_to(pv, pvc) {
            return affinity_ok.then(|| pv.clone());
        }
        // Tug may run without a PV controller marking volumes Available: no phase counts too.
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
        if !matches!(phase, None | Some("Available")) {
            continue;
        }
        if let Some(sel) = &selector {
            let empty = BTreeMap::new();
            if !sel.matches(pv.metadata.labels.as_ref().unwrap_or(&empty)) {
                continue;
            }
        }
        if pv_class(pv) != class || !affinity_ok {
            continue;
        }
        let pv_modes = pv_spec.access_modes.clone().unwrap_or_default();
        if !claim_modes.iter().all(|m| pv_modes.contains(m)) {
            continue;
        }
        if best.as_ref().is_none_or(|(q, _)| *q > capacity) {
            best = Some((capacity, pv.clone()));
        }
    }
    best.map(|(_, pv)| pv)
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        use ActionType::{Add, Update, UpdateLabel, UpdateTaint};
        use EventResource::{Node, PersistentVolume, PersistentVolumeClaim, StorageClass};
        vec![
            ClusterEvent::new(StorageClass, Add),
            ClusterEvent::new(StorageClass, Update),
            ClusterEvent::new(PersistentVolumeClaim, Add),
            ClusterEvent::new(PersistentVolumeClaim, Update),
            ClusterEvent::new(PersistentVolume, Add),
            ClusterEvent::new(PersistentVolume, Update),
            ClusterEvent::new(Node, Add),
            ClusterEvent::new(Node, UpdateLabel),
            ClusterEvent::new(Node, UpdateTaint),
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for VolumeBinding {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        match self.pod_claims(&pod.pod) {
            Err(s) => (None, s),
            // Reserve and PreBind read a missing state as "nothing to bind".
            Ok(None) => (None, Status::skip()),
            Ok(Some(claims)) => {
                let eligible = self.eligible_nodes(&claims.bound);
                state.write(
                    STATE_KEY,
                    State {
                        claims: Arc::new(claims),
                        ..Default::default()
                    },
                );
                (
                    eligible.map(|names| PreFilterResult {
                        node_names: Some(names),
                    }),
                    Status::success(),
                )
            }
        }
    }
}

impl FilterPlugin for VolumeBinding {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        let Some(s) = state.read::<State>(STATE_KEY) else {
            return Status::error(format!("reading {STATE_KEY:?} from cycle state: not found"));
        };
        match self.find_pod_volumes(&s.claims, n) {
            Ok(volumes) => {
                s.by_node
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(node.name().to_owned(), volumes);
                Status::success()
            }
            Err(reasons) => Status::new(
                Code::UnschedulableAndUnresolvable,
                reasons.into_iter().map(str::to_owned).collect(),
            ),
        }
    }
}

impl ReservePlugin for VolumeBinding {
    fn reserve(&self, state: &mut CycleState, _pod: &PodInfo, node: &str) -> Status {
        let Some(s) = state.read_mut::<State>(STATE_KEY) else {
            return Status::success();
        };
        let decision = s
            .by_node
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(node)
            .cloned();
        let decision =
            decision.filter(|d| !d.static_bindings.is_empty() || !d.dynamic_provisions.is_empty());
        if let Some(d) = &decision {
            let mut assumed = self.assumed();
            for b in &d.static_bindings {
                assumed.insert(b.pv.clone(), claim_key(&b.pvc));
            }
        }
        s.reserved = decision;
        Status::success()
    }

    fn unreserve(&self, state: &mut CycleState, _pod: &PodInfo, _node: &str) {
        let Some(s) = state.read_mut::<State>(STATE_KEY) else {
            return;
        };
        if let Some(d) = s.reserved.take() {
            let mut assumed = self.assumed();
            for b in &d.static_bindings {
                assumed.remove(&b.pv);
            }
        }
    }
}

#[async_trait::async_trait]
impl PreBindPlugin for VolumeBinding {
    async fn pre_bind(
        &self,
        client: &kube::Client,
        state: &CycleState,
        _pod: &PodInfo,
        node: &str,
    ) -> Status {
        let Some(decision) = state
            .read::<State>(STATE_KEY)
            .and_then(|s| s.reserved.clone())
        else {
            return Status::success();
        };
        let result = bind_pod_volumes(client, &decision, node).await;
        {
            let mut assumed = self.assumed();
            for b in &decision.static_bindings {
                assumed.remove(&b.pv);
            }
        }
        match result {
            Ok(()) => Status::success(),
            Err(e) => Status::error(e),
        }
    }
}

/// Writes the bindings and waits for the claims to be bound.
async fn bind_pod_volumes(
    client: &kube::Client,
    decision: &PodVolumes,
    node: &str,
) -> Result<(), String> {
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for b in &decision.static_bindings {
        let mut pv = pvs
            .get(&b.pv)
            .await
            .map_err(|e| format!("binding volumes: getting persistentvolume {:?}: {e}", b.pv))?;
        let spec = pv.spec.get_or_insert_with(Default::default);
        if spec.claim_ref.is_some() && !pv_bound_to(&pv, &b.pvc) {
            return Err(format!(
                "binding volumes: persistentvolume {:?} is already claimed",
                b.pv
            ));
        }
        let spec = pv.spec.get_or_insert_with(Default::default);
        spec.claim_ref = Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: b.pvc.metadata.namespace.clone(),
            name: b.pvc.metadata.name.clone(),
            uid: b.pvc.metadata.uid.clone(),
            resource_version: b.pvc.metadata.resource_version.clone(),
            ..Default::default()
        });
        pv.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        pvs.replace(&b.pv, &PostParams::default(), &pv)
            .await
            .map_err(|e| format!("binding volumes: updating persistentvolume {:?}: {e}", b.pv))?;
    }
    for pvc in &decision.dynamic_provisions {
        let ns = pvc.metadata.namespace.as_deref().unwrap_or("default");
        let name = pvc.metadata.name.clone().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let mut current = api
            .get(&name)
            .await
            .map_err(|e| format!("binding volumes: getting persistentvolumeclaim {name:?}: {e}"))?;
        current
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANN_SELECTED_NODE.into(), node.to_owned());
        api.replace(&name, &PostParams::default(), &current)
            .await
            .map_err(|e| {
                format!("binding volumes: updating persistentvolumeclaim {name:?}: {e}")
            })?;
    }
    let claims = decision
        .static_bindings
        .iter()
        .map(|b| &b.pvc)
        .chain(&decision.dynamic_provisions);
    let deadline = tokio::time::Instant::now() + BIND_TIMEOUT;
    for pvc in claims {
        let ns = pvc.metadata.namespace.as_deref().unwrap_or("default");
        let name = pvc.metadata.name.clone().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        loop {
            let current = api.get(&name).await.map_err(|e| {
                format!("binding volumes: getting persistentvolumeclaim {name:?}: {e}")
            })?;
            if claim_is_bound(&current) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "binding volumes: timed out waiting for persistentvolumeclaim {ns}/{name} to be bound"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// True when the claim is Bound (phase) or fully bound by the PV controller.
fn claim_is_bound(pvc: &PersistentVolumeClaim) -> bool {
    let phase_bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let fully = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|v| !v.is_empty())
        && pvc
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(ANN_BIND_COMPLETED));
    phase_bound || fully
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, node_info};
    use k8s_openapi::api::storage::v1::StorageClass;
    use kube::runtime::{reflector::store::Writer, watcher::Event};
    use serde_json::json;

    fn pvc(name: &str, class: &str, size: &str, volume: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {
                "storageClassName": class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
                "volumeName": volume,
            }
        }))
        .expect("valid pvc")
    }

    fn pv(name: &str, class: &str, size: &str, host: Option<&str>) -> PersistentVolume {
        let mut v = json!({
            "metadata": {"name": name},
            "spec": {
                "storageClassName": class,
                "accessModes": ["ReadWriteOnce"],
                "capacity": {"storage": size},
            },
            "status": {"phase": "Available"},
        });
        if let Some(h) = host {
            v["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [h]}]}]}});
        }
        serde_json::from_value(v).expect("valid pv")
    }

    /// Marks `pv` as bound to claim `claim` in `default`.
    fn bound(mut pv: PersistentVolume, claim: &str) -> PersistentVolume {
        if let Some(s) = pv.spec.as_mut() {
            s.claim_ref = Some(ObjectReference {
                name: Some(claim.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{claim}")),
                ..Default::default()
            });
        }
        pv.status = None;
        pv
    }

    fn class(name: &str, mode: &str, provisioner: &str) -> StorageClass {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "provisioner": provisioner,
            "volumeBindingMode": mode,
        }))
        .expect("valid storage class")
    }

    fn handle(
        pvcs: Vec<PersistentVolumeClaim>,
        pvs: Vec<PersistentVolume>,
        classes: Vec<StorageClass>,
    ) -> Handle {
        let mut h = Handle::default();
        let mut w = Writer::<PersistentVolumeClaim>::default();
        h.listers.pvcs = w.as_reader();
        for o in pvcs {
            w.apply_watcher_event(&Event::Apply(o));
        }
        let mut w = Writer::<PersistentVolume>::default();
        h.listers.pvs = w.as_reader();
        for o in pvs {
            w.apply_watcher_event(&Event::Apply(o));
        }
        let mut w = Writer::<StorageClass>::default();
        h.listers.storage_classes = w.as_reader();
        for o in classes {
            w.apply_watcher_event(&Event::Apply(o));
        }
        h
    }

    fn pod_with_claims(claims: &[&str]) -> PodInfo {
        let volumes: Vec<serde_json::Value> = claims
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        PodBuilder::new("pod-a")
            .spec_json(json!({"volumes": volumes}))
            .info()
    }

    fn classes() -> Vec<StorageClass> {
        vec![
            class("wait", WAIT_FOR_FIRST_CONSUMER, NOT_SUPPORTED_PROVISIONER),
            class(
                "wait-provisioned",
                WAIT_FOR_FIRST_CONSUMER,
                "example.com/csi",
            ),
            class("immediate", "Immediate", "example.com/csi"),
        ]
    }

    /// Runs PreFilter and Filter on node1 and node2; returns the PreFilter status or the two
    /// Filter statuses, and the state.
    fn run(pl: &VolumeBinding, pod: &PodInfo) -> Result<(Status, Status, CycleState), Status> {
        let mut state = CycleState::default();
        let (_, s) = pl.pre_filter(&mut state, pod, &Snapshot::default());
        if !s.is_success() {
            return Err(s);
        }
        let node = |n: &str| node_info(NodeBuilder::new(n).build(), &[]);
        let s1 = pl.filter(&state, pod, &node("node1"));
        let s2 = pl.filter(&state, pod, &node("node2"));
        Ok((s1, s2, state))
    }

    #[test]
    fn bound_local_pvs_narrow_the_candidate_nodes() {
        let pl = VolumeBinding::new(&handle(
            vec![
                pvc("on-node1", "wait", "1Gi", "pv-node1"),
                pvc("anywhere", "wait", "1Gi", "pv-anywhere"),
                pvc("on-node2", "wait", "1Gi", "pv-node2"),
            ],
            vec![
                bound(pv("pv-node1", "wait", "1Gi", Some("node1")), "on-node1"),
                bound(pv("pv-anywhere", "wait", "1Gi", None), "anywhere"),
                bound(pv("pv-node2", "wait", "1Gi", Some("node2")), "on-node2"),
            ],
            classes(),
        ));
        let names = |claims: &[&str]| {
            let mut state = CycleState::default();
            let (r, s) = pl.pre_filter(&mut state, &pod_with_claims(claims), &Snapshot::default());
            assert!(s.is_success());
            r.and_then(|r| r.node_names)
                .map(|n| n.into_iter().collect::<Vec<_>>())
        };
        assert_eq!(
            names(&["on-node1", "anywhere"]),
            Some(vec!["node1".to_owned()])
        );
        assert_eq!(names(&["anywhere"]), None);
        assert_eq!(names(&["on-node1", "on-node2"]), Some(vec![]));
    }

    #[test]
    fn pods_without_claims_skip() {
        let pl = VolumeBinding::new(&handle(vec![], vec![], classes()));
        let s = run(&pl, &PodBuilder::new("p").info()).expect_err("skipped");
        assert!(s.is_skip());
    }

    #[test]
    fn pre_filter_rejections_follow_upstream() {
        let h = handle(
            vec![
                pvc("unbound-immediate", "immediate", "1Gi", ""),
                pvc("unbound-no-class", "", "1Gi", ""),
            ],
            vec![],
            classes(),
        );
        let pl = VolumeBinding::new(&h);
        let cases = [
            ("missing", "persistentvolumeclaim \"missing\" not found"),
            ("unbound-immediate", ERR_REASON_UNBOUND_IMMEDIATE),
            ("unbound-no-class", ERR_REASON_UNBOUND_IMMEDIATE),
        ];
        for (claim, reason) in cases {
            let s = run(&pl, &pod_with_claims(&[claim])).expect_err("rejected");
            assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{claim}");
            assert_eq!(s.reasons, [reason], "{claim}");
        }
    }

    #[test]
    fn filter_follows_upstream_cases() {
        let h = handle(
            vec![
                pvc("bound-node1", "wait", "1Gi", "pv-node1"),
                pvc("bound-anywhere", "wait", "1Gi", "pv-anywhere"),
                pvc("bound-missing-pv", "wait", "1Gi", "pv-gone"),
                pvc("wait-small", "wait", "1Gi", ""),
                pvc("wait-huge", "wait", "100Gi", ""),
                pvc("wait-provision", "wait-provisioned", "1Gi", ""),
            ],
            vec![
                bound(pv("pv-node1", "wait", "1Gi", Some("node1")), "bound-node1"),
                bound(pv("pv-anywhere", "wait", "1Gi", None), "bound-anywhere"),
                pv("local-node2-5g", "wait", "5Gi", Some("node2")),
                pv("local-node2-2g", "wait", "2Gi", Some("node2")),
            ],
            classes(),
        );
        let pl = VolumeBinding::new(&h);
        let ok = || Status::success();
        let rej = |r: &str| Status::unresolvable(r);
        let cases = [
            (
                "bound pvc, PV node affinity matches only node1",
                vec!["bound-node1"],
                ok(),
                rej(ERR_REASON_NODE_CONFLICT),
            ),
            (
                "bound pvc without node affinity",
                vec!["bound-anywhere"],
                ok(),
                ok(),
            ),
            (
                "bound pvc whose pv does not exist",
                vec!["bound-missing-pv"],
                rej(ERR_REASON_PV_NOT_EXIST),
                rej(ERR_REASON_PV_NOT_EXIST),
            ),
            (
                "unbound pvc matches a local PV only on node2",
                vec!["wait-small"],
                rej(ERR_REASON_BIND_CONFLICT),
                ok(),
            ),
            (
                "unbound pvc larger than every PV and no provisioner",
                vec!["wait-huge"],
                rej(ERR_REASON_BIND_CONFLICT),
                rej(ERR_REASON_BIND_CONFLICT),
            ),
            (
                "unbound pvc with a provisioner fits everywhere",
                vec!["wait-provision"],
                ok(),
                ok(),
            ),
            (
                "bound and unbound pvcs: both conditions must hold",
                vec!["bound-node1", "wait-small"],
                rej(ERR_REASON_BIND_CONFLICT),
                rej(ERR_REASON_NODE_CONFLICT),
            ),
        ];
        for (name, claims, want1, want2) in cases {
            let (s1, s2, _) = run(&pl, &pod_with_claims(&claims)).expect("pre-filter passes");
            assert_eq!((s1, s2), (want1, want2), "{name}");
        }
    }

    #[test]
    fn reserve_picks_the_smallest_fitting_pv_and_assumes_it() {
        let h = handle(
            vec![pvc("a", "wait", "1Gi", ""), pvc("b", "wait", "1Gi", "")],
            vec![
                pv("local-5g", "wait", "5Gi", Some("node2")),
                pv("local-2g", "wait", "2Gi", Some("node2")),
            ],
            classes(),
        );
        let pl = VolumeBinding::new(&h);
        let pod = pod_with_claims(&["a"]);
        let (_, s2, mut state) = run(&pl, &pod).expect("pre-filter passes");
        assert!(s2.is_success());
        assert!(pl.reserve(&mut state, &pod, "node2").is_success());
        let reserved = state
            .read::<State>(STATE_KEY)
            .and_then(|s| s.reserved.clone())
            .expect("a decision");
        assert_eq!(reserved.static_bindings.len(), 1);
        assert_eq!(reserved.static_bindings[0].pv, "local-2g");

        // Another claim no longer sees the assumed PV.
        let other = pod_with_claims(&["b"]);
        let (_, _, mut other_state) = run(&pl, &other).expect("pre-filter passes");
        assert!(pl.reserve(&mut other_state, &other, "node2").is_success());
        let chosen = other_state
            .read::<State>(STATE_KEY)
            .and_then(|s| s.reserved.clone())
            .expect("a decision");
        assert_eq!(chosen.static_bindings[0].pv, "local-5g");

        // Unreserve releases it.
        pl.unreserve(&mut state, &pod, "node2");
        pl.unreserve(&mut other_state, &other, "node2");
        assert!(pl.assumed().is_empty());
    }

    #[test]
    fn two_claims_of_one_pod_get_different_pvs() {
        let h = handle(
            vec![pvc("a", "wait", "1Gi", ""), pvc("b", "wait", "1Gi", "")],
            vec![pv("only", "wait", "5Gi", Some("node2"))],
            classes(),
        );
        let pl = VolumeBinding::new(&h);
        let (_, s2, _) = run(&pl, &pod_with_claims(&["a", "b"])).expect("pre-filter passes");
        assert_eq!(s2, Status::unresolvable(ERR_REASON_BIND_CONFLICT));
    }

    #[test]
    fn matching_honours_access_modes_selector_and_prebinding() {
        let node = NodeBuilder::new("node1").build();
        let claim = pvc("c", "wait", "1Gi", "");
        let mut rwx = pv("rwx-only", "wait", "1Gi", None);
        if let Some(s) = rwx.spec.as_mut() {
            s.access_modes = Some(vec!["ReadWriteMany".into()]);
        }
        let mut prebound = pv("prebound", "other-class", "10Gi", None);
        if let Some(s) = prebound.spec.as_mut() {
            s.claim_ref = Some(ObjectReference {
                name: Some("c".into()),
                namespace: Some("default".into()),
                ..Default::default()
            });
        }
        let mut claimed = pv("claimed", "wait", "1Gi", None);
        if let Some(s) = claimed.spec.as_mut() {
            s.claim_ref = Some(ObjectReference {
                name: Some("someone-else".into()),
                namespace: Some("default".into()),
                ..Default::default()
            });
        }
        let pvs = [rwx, claimed].map(Arc::new);
        assert!(find_matching_volume(&claim, &pvs, &node).is_none());
        let with_prebound = [
            Arc::new(prebound),
            Arc::new(pv("plain", "wait", "1Gi", None)),
        ];
        let chosen = find_matching_volume(&claim, &with_prebound, &node).expect("a match");
        assert_eq!(chosen.metadata.name.as_deref(), Some("prebound"));
    }

    #[test]
    fn selected_node_annotation_pins_provisioning() {
        let mut claim = pvc("p", "wait-provisioned", "1Gi", "");
        claim.metadata.annotations = Some(BTreeMap::from([(
            ANN_SELECTED_NODE.to_owned(),
            "node2".to_owned(),
        )]));
        let pl = VolumeBinding::new(&handle(vec![claim], vec![], classes()));
        let (s1, s2, _) = run(&pl, &pod_with_claims(&["p"])).expect("pre-filter passes");
        assert_eq!(s1, Status::unresolvable(ERR_REASON_BIND_CONFLICT));
        assert!(s2.is_success());
    }

    #[test]
    fn bound_claims_need_no_prebind() {
        let pl = VolumeBinding::new(&handle(
            vec![pvc("bound-anywhere", "wait", "1Gi", "pv-anywhere")],
            vec![pv("pv-anywhere", "wait", "1Gi", None)],
            classes(),
        ));
        let pod = pod_with_claims(&["bound-anywhere"]);
        let (s1, _, mut state) = run(&pl, &pod).expect("pre-filter passes");
        assert!(s1.is_success());
        assert!(pl.reserve(&mut state, &pod, "node1").is_success());
        assert!(
            state
                .read::<State>(STATE_KEY)
                .is_some_and(|s| s.reserved.is_none())
        );
    }

    #[test]
    fn registers_upstreams_events() {
        let want: Vec<ClusterEvent> = [
            (EventResource::StorageClass, ActionType::Add),
            (EventResource::StorageClass, ActionType::Update),
            (EventResource::PersistentVolumeClaim, ActionType::Add),
            (EventResource::PersistentVolumeClaim, ActionType::Update),
            (EventResource::PersistentVolume, ActionType::Add),
            (EventResource::PersistentVolume, ActionType::Update),
            (EventResource::Node, ActionType::Add),
            (EventResource::Node, ActionType::UpdateLabel),
            (EventResource::Node, ActionType::UpdateTaint),
        ]
        .into_iter()
        .map(|(r, a)| ClusterEvent::new(r, a))
        .collect();
        assert_eq!(
            VolumeBinding::new(&Handle::default()).events_to_register(),
            want
        );
    }
}
