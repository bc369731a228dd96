//! The scheduling framework: extension-point traits the plugins implement, the [`Status`] they
//! answer with, the typed [`CycleState`] of one scheduling cycle, and the cluster events a
//! plugin registers so the queue knows when an unschedulable pod may fit again.
//!
//! A plugin is one value implementing [`Plugin`]; the `as_*` methods say which extension points
//! it serves (upstream's type assertions). [`runtime::Framework`] runs the enabled plugins of a
//! profile in order.

pub mod cache;
pub mod nodeaffinity;
pub mod runtime;
pub mod types;

use std::{any::Any, collections::HashMap, fmt, sync::Arc};

use k8s_openapi::api::{
    core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod},
    policy::v1::PodDisruptionBudget,
    storage::v1::StorageClass,
};
use kube::runtime::reflector::Store;

pub use self::cache::Snapshot;
pub use self::types::{NodeInfo, PodInfo, Resource};

/// The outcome class of a plugin call (upstream's `framework.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The call succeeded.
    Success,
    /// An internal error; the pod is retried with back-off.
    Error,
    /// The pod does not fit, but preemption or a cluster change may help.
    Unschedulable,
    /// The pod does not fit and preemption cannot help.
    UnschedulableAndUnresolvable,
    /// Permit: hold the pod.
    Wait,
    /// The plugin has nothing to do for this pod (PreFilter/PreScore): its later points are skipped.
    Skip,
    /// The pod waits for something outside the scheduler (an external controller).
    Pending,
}

/// A plugin's answer: a code, reasons shown to users, and the plugin that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The outcome class.
    pub code: Code,
    /// Human-readable reasons, as they appear in `FailedScheduling` events.
    pub reasons: Vec<String>,
    /// The plugin that returned a non-success status (filled in by the framework).
    pub plugin: &'static str,
}

impl Status {
    /// Success.
    pub fn success() -> Self {
        Self::new(Code::Success, Vec::new())
    }

    /// A status with reasons.
    pub fn new(code: Code, reasons: Vec<String>) -> Self {
        Self {
            code,
            reasons,
            plugin: "",
        }
    }

    /// Unschedulable with one reason.
    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Self::new(Code::Unschedulable, vec![reason.into()])
    }

    /// UnschedulableAndUnresolvable with one reason.
    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Self::new(Code::UnschedulableAndUnresolvable, vec![reason.into()])
    }

    /// An internal error.
    pub fn error(reason: impl Into<String>) -> Self {
        Self::new(Code::Error, vec![reason.into()])
    }

    /// Skip (from PreFilter/PreScore).
    pub fn skip() -> Self {
        Self::new(Code::Skip, Vec::new())
    }

    /// Sets the plugin name.
    pub fn with_plugin(mut self, plugin: &'static str) -> Self {
        self.plugin = plugin;
        self
    }

    /// True for [`Code::Success`].
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// True for [`Code::Skip`].
    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    /// True for both unschedulable codes.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }

    /// The reasons joined for messages.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// A value a plugin keeps in the cycle state; cloned when preemption simulates removals.
pub trait StateData: Any + Send + Sync {
    /// A boxed copy.
    fn clone_data(&self) -> Box<dyn StateData>;
    /// For downcasting.
    fn as_any(&self) -> &dyn Any;
    /// For downcasting mutably.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Data shared between the extension points of one scheduling cycle, keyed by plugin-chosen
/// names and typed on read.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn StateData>>,
    /// Plugins whose PreFilter returned Skip: their Filter is not called.
    pub skip_filter: std::collections::HashSet<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score is not called.
    pub skip_score: std::collections::HashSet<&'static str>,
}

impl fmt::Debug for CycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CycleState")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        Self {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, v.as_ref().clone_data()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
        }
    }
}

impl CycleState {
    /// Stores `value` under `key`.
    pub fn write<T: StateData>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    /// Reads the value under `key` if it has type `T`.
    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key)?.as_ref().as_any().downcast_ref()
    }

    /// Reads the value under `key` mutably if it has type `T`.
    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data.get_mut(key)?.as_mut().as_any_mut().downcast_mut()
    }
}

/// A node's score from one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScore {
    /// The node.
    pub name: String,
    /// Its score (0–[`MAX_NODE_SCORE`] after normalisation).
    pub score: i64,
}

/// The highest score a plugin gives after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;

/// What PreFilter may narrow the candidate nodes to (`None`: all nodes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    /// The only nodes worth filtering.
    pub node_names: Option<std::collections::BTreeSet<String>>,
}

/// Which kind of object changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventResource {
    /// A pod (scheduled or not).
    Pod,
    /// A scheduled pod (assigned to a node).
    AssignedPod,
    /// A node.
    Node,
    /// A persistent volume claim.
    PersistentVolumeClaim,
    /// A persistent volume.
    PersistentVolume,
    /// A storage class.
    StorageClass,
    /// A namespace.
    Namespace,
    /// Anything (used for the periodic flush).
    Wildcard,
}

/// How it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// Created.
    Add,
    /// Deleted.
    Delete,
    /// Labels changed.
    UpdateLabel,
    /// Allocatable changed.
    UpdateAllocatable,
    /// Taints changed.
    UpdateTaint,
    /// Conditions or `spec.unschedulable` changed.
    UpdateCondition,
    /// A pod's scheduling gates were removed or its requests shrank.
    UpdatePodSpec,
    /// Any other update.
    Update,
    /// Anything.
    All,
}

/// A cluster event: a kind of object and how it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterEvent {
    /// The object kind.
    pub resource: EventResource,
    /// The change.
    pub action: ActionType,
}

impl ClusterEvent {
    /// An event.
    pub const fn new(resource: EventResource, action: ActionType) -> Self {
        Self { resource, action }
    }

    /// True when this registered event covers `actual`.
    pub fn covers(&self, actual: &ClusterEvent) -> bool {
        let resource = self.resource == actual.resource
            || self.resource == EventResource::Wildcard
            || (self.resource == EventResource::Pod
                && actual.resource == EventResource::AssignedPod);
        let action = self.action == actual.action
            || self.action == ActionType::All
            || (self.action == ActionType::Update
                && matches!(
                    actual.action,
                    ActionType::UpdateLabel
                        | ActionType::UpdateAllocatable
                        | ActionType::UpdateTaint
                        | ActionType::UpdateCondition
                        | ActionType::UpdatePodSpec
                ));
        resource && action
    }
}

/// Read access to the cluster objects some plugins need besides nodes and pods.
#[derive(Clone)]
pub struct Listers {
    /// Namespaces (for `namespaceSelector`).
    pub namespaces: Store<Namespace>,
    /// Persistent volume claims.
    pub pvcs: Store<PersistentVolumeClaim>,
    /// Persistent volumes.
    pub pvs: Store<PersistentVolume>,
    /// Storage classes.
    pub storage_classes: Store<StorageClass>,
    /// Pod disruption budgets (preemption).
    pub pdbs: Store<PodDisruptionBudget>,
}

impl fmt::Debug for Listers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Listers")
    }
}

impl Default for Listers {
    fn default() -> Self {
        Self {
            namespaces: kube::runtime::reflector::store::Writer::default().as_reader(),
            pvcs: kube::runtime::reflector::store::Writer::default().as_reader(),
            pvs: kube::runtime::reflector::store::Writer::default().as_reader(),
            storage_classes: kube::runtime::reflector::store::Writer::default().as_reader(),
            pdbs: kube::runtime::reflector::store::Writer::default().as_reader(),
        }
    }
}

impl Listers {
    /// The labels of namespace `name`, if known.
    pub fn namespace_labels(
        &self,
        name: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        self.namespaces
            .get(&kube::runtime::reflector::ObjectRef::new(name))
            .and_then(|ns| ns.metadata.labels.clone())
    }

    /// The claim `namespace/name`, if known.
    pub fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.pvcs
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
    }

    /// The volume `name`, if known.
    pub fn pv(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.pvs
            .get(&kube::runtime::reflector::ObjectRef::new(name))
    }

    /// The storage class `name`, if known.
    pub fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.storage_classes
            .get(&kube::runtime::reflector::ObjectRef::new(name))
    }
}

/// What a plugin gets at construction: its arguments and the cluster listers.
#[derive(Debug, Clone, Default)]
pub struct Handle {
    /// Listers of non-node, non-pod objects.
    pub listers: Listers,
}

/// A plugin: a name, the events that may make a pod it rejected schedulable, and the extension
/// points it serves.
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's name as in the configuration (`NodeResourcesFit`).
    fn name(&self) -> &'static str;

    /// Cluster events after which a pod this plugin rejected is worth retrying.
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }

    /// PreEnqueue: may keep a pod out of the active queue (scheduling gates).
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        None
    }
    /// QueueSort: orders the active queue.
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        None
    }
    /// PreFilter.
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    /// Filter.
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    /// PostFilter (preemption).
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    /// PreScore.
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    /// Score (with NormalizeScore).
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    /// Reserve/Unreserve.
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    /// Permit.
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    /// PreBind.
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        None
    }
    /// Bind.
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
}

impl fmt::Debug for dyn Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// PreEnqueue: checked before a pod enters the active queue.
pub trait PreEnqueuePlugin: Send + Sync {
    /// Success lets the pod in; anything else parks it until an event.
    fn pre_enqueue(&self, pod: &Pod) -> Status;
}

/// QueueSort: the order of the active queue.
pub trait QueueSortPlugin: Send + Sync {
    /// True when `a` should be scheduled before `b`.
    fn less(&self, a: &QueuedPodRef<'_>, b: &QueuedPodRef<'_>) -> bool;
}

/// What QueueSort sees of a queued pod.
#[derive(Debug, Clone, Copy)]
pub struct QueuedPodRef<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// When it was (re)added to the queue, in ns since an arbitrary epoch.
    pub timestamp: u128,
}

/// PreFilter: computes per-pod state once; may narrow nodes or reject the pod outright.
pub trait PreFilterPlugin: Send + Sync {
    /// Runs once per cycle.
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status);

    /// Incremental updates of this plugin's state when preemption removes or adds pods.
    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        None
    }
}

/// Keeps PreFilter state right while preemption simulates adding and removing pods.
pub trait PreFilterExtensions: Send + Sync {
    /// `pod_to_add` is now on `node`.
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_add: &PodInfo,
        node: &NodeInfo,
    ) -> Status;
    /// `pod_to_remove` is no longer on `node`.
    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_remove: &PodInfo,
        node: &NodeInfo,
    ) -> Status;
}

/// Filter: can the pod run on this node?
pub trait FilterPlugin: Send + Sync {
    /// Called for each candidate node, possibly in parallel.
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// The statuses of the nodes that failed filtering, by node name.
pub type NodeToStatus = HashMap<String, Status>;

/// What PostFilter asks for: a node to nominate and the victims to evict from it.
#[derive(Debug, Clone, Default)]
pub struct PostFilterResult {
    /// The node the pod should go to once the victims are gone.
    pub nominated_node_name: String,
    /// Pods to delete.
    pub victims: Vec<Arc<Pod>>,
}

/// PostFilter: runs when no node fits (preemption).
pub trait PostFilterPlugin: Send + Sync {
    /// Finds a way to make the pod fit, or says why there is none.
    fn post_filter(
        &self,
        framework: &runtime::Framework,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status);
}

/// PreScore: computes scoring state once per cycle from the feasible nodes.
pub trait PreScorePlugin: Send + Sync {
    /// Runs once per cycle after filtering.
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status;
}

/// Score: ranks the feasible nodes.
pub trait ScorePlugin: Send + Sync {
    /// The score of one node.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status);

    /// Rescales all scores into 0–[`MAX_NODE_SCORE`]; the default leaves them.
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [NodeScore]) -> Status {
        Status::success()
    }
}

/// Reserve: claims node-local resources for the pod before binding.
pub trait ReservePlugin: Send + Sync {
    /// Reserves; a failure unreserves every plugin.
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    /// Undoes [`ReservePlugin::reserve`]; must be idempotent.
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Permit: approves, denies or delays binding.
pub trait PermitPlugin: Send + Sync {
    /// Success, Unschedulable, or Wait with a timeout.
    fn permit(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> (Status, std::time::Duration);
}

/// Something the binding cycle may call through the API.
#[async_trait::async_trait]
pub trait PreBindPlugin: Send + Sync {
    /// Prepares the binding (e.g. binds volumes).
    async fn pre_bind(
        &self,
        client: &kube::Client,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Status;
}

/// Bind: tells the API server where the pod goes.
#[async_trait::async_trait]
pub trait BindPlugin: Send + Sync {
    /// Binds, or returns Skip to let the next bind plugin do it.
    async fn bind(
        &self,
        client: &kube::Client,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Status;
}
