//! Which API field documents each table column. The constants only name a definition and one
//! of its fields; the text is looked up in the served OpenAPI definitions ([`crate::schema`])
//! when a table's column definitions are built. Where upstream's printers describe a column
//! with a field of an API version we do not serve, the constant names the same field of the
//! version we do serve.

use crate::schema::{Field, OBJECT_META, schema};

/// A column's description: a reference to the documentation of one field of an OpenAPI
/// definition, or a text of the printer's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Doc {
    /// The description of a field in the schema.
    Field {
        /// The definition's name, such as `io.k8s.api.core.v1.PodSpec`.
        definition: &'static str,
        /// The field's JSON name within the definition.
        field: &'static str,
    },
    /// A text given by the printer itself, for columns that show no single field.
    Literal(&'static str),
}

impl Doc {
    /// The documentation of `field` of the definition named `definition`.
    pub(super) const fn field(definition: &'static str, field: &'static str) -> Self {
        Doc::Field { definition, field }
    }

    /// A description given as is.
    pub(super) const fn literal(text: &'static str) -> Self {
        Doc::Literal(text)
    }

    /// The description: a field's from the schema (empty if the schema lacks the definition or
    /// the field), or the literal text.
    pub(super) fn text(&self) -> &'static str {
        match *self {
            Doc::Field { definition, field } => schema()
                .definition(definition)
                .and_then(|def| def.field(field))
                .map_or("", Field::description),
            Doc::Literal(text) => text,
        }
    }
}

/// Declares the column descriptions and, for the tests, the list of all of them.
macro_rules! docs {
    ($(pub(super) const $name:ident: Doc = $value:expr;)*) => {
        $(pub(super) const $name: Doc = $value;)*

        /// Every constant declared here, with its name.
        #[cfg(test)]
        const ALL: &[(&str, Doc)] = &[$((stringify!($name), $name)),*];
    };
}

docs! {
    pub(super) const NAME: Doc = Doc::field(OBJECT_META, "name");
    pub(super) const CREATION: Doc = Doc::field(OBJECT_META, "creationTimestamp");
    pub(super) const POD_IP: Doc = Doc::field("io.k8s.api.core.v1.PodStatus", "podIP");
    pub(super) const POD_NODE: Doc = Doc::field("io.k8s.api.core.v1.PodSpec", "nodeName");
    pub(super) const POD_NOMINATED: Doc =
        Doc::field("io.k8s.api.core.v1.PodStatus", "nominatedNodeName");
    pub(super) const POD_GATES: Doc = Doc::field("io.k8s.api.core.v1.PodSpec", "readinessGates");
    pub(super) const RC_SPEC_REPLICAS: Doc =
        Doc::field("io.k8s.api.core.v1.ReplicationControllerSpec", "replicas");
    pub(super) const RC_STATUS_REPLICAS: Doc =
        Doc::field("io.k8s.api.core.v1.ReplicationControllerStatus", "replicas");
    pub(super) const RC_READY: Doc =
        Doc::field("io.k8s.api.core.v1.ReplicationControllerStatus", "readyReplicas");
    pub(super) const RC_SELECTOR: Doc =
        Doc::field("io.k8s.api.core.v1.ReplicationControllerSpec", "selector");
    pub(super) const RS_SPEC_REPLICAS: Doc =
        Doc::field("io.k8s.api.apps.v1.ReplicaSetSpec", "replicas");
    pub(super) const RS_STATUS_REPLICAS: Doc =
        Doc::field("io.k8s.api.apps.v1.ReplicaSetStatus", "replicas");
    pub(super) const RS_READY: Doc =
        Doc::field("io.k8s.api.apps.v1.ReplicaSetStatus", "readyReplicas");
    pub(super) const RS_SELECTOR: Doc = Doc::field("io.k8s.api.apps.v1.ReplicaSetSpec", "selector");
    pub(super) const DS_DESIRED: Doc =
        Doc::field("io.k8s.api.apps.v1.DaemonSetStatus", "desiredNumberScheduled");
    pub(super) const DS_CURRENT: Doc =
        Doc::field("io.k8s.api.apps.v1.DaemonSetStatus", "currentNumberScheduled");
    pub(super) const DS_READY: Doc =
        Doc::field("io.k8s.api.apps.v1.DaemonSetStatus", "numberReady");
    pub(super) const DS_UPDATED: Doc =
        Doc::field("io.k8s.api.apps.v1.DaemonSetStatus", "updatedNumberScheduled");
    pub(super) const DS_AVAILABLE: Doc =
        Doc::field("io.k8s.api.apps.v1.DaemonSetStatus", "numberAvailable");
    pub(super) const NODE_SELECTOR: Doc = Doc::field("io.k8s.api.core.v1.PodSpec", "nodeSelector");
    pub(super) const DS_SELECTOR: Doc = Doc::field("io.k8s.api.apps.v1.DaemonSetSpec", "selector");
    pub(super) const JOB_SUCCEEDED: Doc = Doc::field("io.k8s.api.batch.v1.JobStatus", "succeeded");
    pub(super) const JOB_SELECTOR: Doc = Doc::field("io.k8s.api.batch.v1.JobSpec", "selector");
    pub(super) const CJ_SCHEDULE: Doc = Doc::field("io.k8s.api.batch.v1.CronJobSpec", "schedule");
    pub(super) const CJ_TIMEZONE: Doc = Doc::field("io.k8s.api.batch.v1.CronJobSpec", "timeZone");
    pub(super) const CJ_SUSPEND: Doc = Doc::field("io.k8s.api.batch.v1.CronJobSpec", "suspend");
    pub(super) const CJ_ACTIVE: Doc = Doc::field("io.k8s.api.batch.v1.CronJobStatus", "active");
    pub(super) const CJ_LAST_SCHEDULE: Doc =
        Doc::field("io.k8s.api.batch.v1.CronJobStatus", "lastScheduleTime");
    pub(super) const SVC_TYPE: Doc = Doc::field("io.k8s.api.core.v1.ServiceSpec", "type");
    pub(super) const SVC_CLUSTER_IP: Doc =
        Doc::field("io.k8s.api.core.v1.ServiceSpec", "clusterIP");
    pub(super) const SVC_EXTERNAL_IPS: Doc =
        Doc::field("io.k8s.api.core.v1.ServiceSpec", "externalIPs");
    pub(super) const SVC_PORTS: Doc = Doc::field("io.k8s.api.core.v1.ServiceSpec", "ports");
    pub(super) const SVC_SELECTOR: Doc = Doc::field("io.k8s.api.core.v1.ServiceSpec", "selector");
    pub(super) const EP_SUBSETS: Doc = Doc::field("io.k8s.api.core.v1.Endpoints", "subsets");
    pub(super) const NODE_KUBELET: Doc =
        Doc::field("io.k8s.api.core.v1.NodeSystemInfo", "kubeletVersion");
    pub(super) const NODE_ADDRESSES: Doc = Doc::field("io.k8s.api.core.v1.NodeStatus", "addresses");
    pub(super) const NODE_OS_IMAGE: Doc =
        Doc::field("io.k8s.api.core.v1.NodeSystemInfo", "osImage");
    pub(super) const NODE_KERNEL: Doc =
        Doc::field("io.k8s.api.core.v1.NodeSystemInfo", "kernelVersion");
    pub(super) const NODE_RUNTIME: Doc =
        Doc::field("io.k8s.api.core.v1.NodeSystemInfo", "containerRuntimeVersion");
    pub(super) const EV_LAST: Doc = Doc::field("io.k8s.api.core.v1.Event", "lastTimestamp");
    pub(super) const EV_TYPE: Doc = Doc::field("io.k8s.api.core.v1.Event", "type");
    pub(super) const EV_REASON: Doc = Doc::field("io.k8s.api.core.v1.Event", "reason");
    pub(super) const EV_OBJECT: Doc = Doc::field("io.k8s.api.core.v1.Event", "involvedObject");
    pub(super) const EV_SUBOBJECT: Doc =
        Doc::field("io.k8s.api.core.v1.ObjectReference", "fieldPath");
    pub(super) const EV_SOURCE: Doc = Doc::field("io.k8s.api.core.v1.Event", "source");
    pub(super) const EV_MESSAGE: Doc = Doc::field("io.k8s.api.core.v1.Event", "message");
    pub(super) const EV_FIRST: Doc = Doc::field("io.k8s.api.core.v1.Event", "firstTimestamp");
    pub(super) const EV_COUNT: Doc = Doc::field("io.k8s.api.core.v1.Event", "count");
    pub(super) const SECRET_TYPE: Doc = Doc::field("io.k8s.api.core.v1.Secret", "type");
    pub(super) const SECRET_DATA: Doc = Doc::field("io.k8s.api.core.v1.Secret", "data");
    pub(super) const SA_SECRETS: Doc = Doc::field("io.k8s.api.core.v1.ServiceAccount", "secrets");
    pub(super) const PV_CAPACITY: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeSpec", "capacity");
    pub(super) const PV_ACCESS_MODES: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeSpec", "accessModes");
    pub(super) const PV_RECLAIM: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeSpec", "persistentVolumeReclaimPolicy");
    pub(super) const PV_PHASE: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeStatus", "phase");
    pub(super) const PV_CLAIM: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeSpec", "claimRef");
    pub(super) const PV_REASON: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeStatus", "reason");
    pub(super) const PV_VOLUME_MODE: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeSpec", "volumeMode");
    pub(super) const PVC_PHASE: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "phase");
    pub(super) const PVC_VOLUME: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeClaimSpec", "volumeName");
    pub(super) const PVC_CAPACITY: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "capacity");
    pub(super) const PVC_ACCESS_MODES: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "accessModes");
    pub(super) const PVC_VOLUME_MODE: Doc =
        Doc::field("io.k8s.api.core.v1.PersistentVolumeClaimSpec", "volumeMode");
    pub(super) const DEPLOY_UPDATED: Doc =
        Doc::field("io.k8s.api.apps.v1.DeploymentStatus", "updatedReplicas");
    pub(super) const DEPLOY_AVAILABLE: Doc =
        Doc::field("io.k8s.api.apps.v1.DeploymentStatus", "availableReplicas");
    pub(super) const DEPLOY_SELECTOR: Doc =
        Doc::field("io.k8s.api.apps.v1.DeploymentSpec", "selector");
    pub(super) const HPA_REFERENCE: Doc =
        Doc::field("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "scaleTargetRef");
    pub(super) const HPA_METRICS: Doc =
        Doc::field("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics");
    pub(super) const HPA_MIN: Doc =
        Doc::field("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "minReplicas");
    pub(super) const HPA_MAX: Doc =
        Doc::field("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "maxReplicas");
    pub(super) const HPA_REPLICAS: Doc =
        Doc::field("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas");
    pub(super) const CM_DATA: Doc = Doc::field("io.k8s.api.core.v1.ConfigMap", "data");
    pub(super) const NP_POD_SELECTOR: Doc =
        Doc::field("io.k8s.api.networking.v1.NetworkPolicySpec", "podSelector");
    pub(super) const RB_ROLE: Doc = Doc::field("io.k8s.api.rbac.v1.RoleBinding", "roleRef");
    pub(super) const CRB_ROLE: Doc = Doc::field("io.k8s.api.rbac.v1.ClusterRoleBinding", "roleRef");
    pub(super) const LEASE_HOLDER: Doc =
        Doc::field("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity");
    pub(super) const SC_PROVISIONER: Doc =
        Doc::field("io.k8s.api.storage.v1.StorageClass", "provisioner");
    pub(super) const SC_RECLAIM: Doc =
        Doc::field("io.k8s.api.storage.v1.StorageClass", "reclaimPolicy");
    pub(super) const SC_BINDING_MODE: Doc =
        Doc::field("io.k8s.api.storage.v1.StorageClass", "volumeBindingMode");
    pub(super) const SC_EXPANSION: Doc =
        Doc::field("io.k8s.api.storage.v1.StorageClass", "allowVolumeExpansion");
    pub(super) const CR_REVISION: Doc =
        Doc::field("io.k8s.api.apps.v1.ControllerRevision", "revision");
    pub(super) const PC_VALUE: Doc = Doc::field("io.k8s.api.scheduling.v1.PriorityClass", "value");
    pub(super) const PC_GLOBAL_DEFAULT: Doc =
        Doc::field("io.k8s.api.scheduling.v1.PriorityClass", "globalDefault");
    pub(super) const PC_PREEMPTION: Doc =
        Doc::field("io.k8s.api.scheduling.v1.PriorityClass", "preemptionPolicy");
    pub(super) const ES_ADDRESS_TYPE: Doc =
        Doc::field("io.k8s.api.discovery.v1.EndpointSlice", "addressType");
    pub(super) const ES_PORTS: Doc = Doc::field("io.k8s.api.discovery.v1.EndpointSlice", "ports");
    pub(super) const ES_ENDPOINTS: Doc =
        Doc::field("io.k8s.api.discovery.v1.EndpointSlice", "endpoints");
    pub(super) const SCALE_SPEC_REPLICAS: Doc =
        Doc::field("io.k8s.api.autoscaling.v1.ScaleSpec", "replicas");
    pub(super) const SCALE_STATUS_REPLICAS: Doc =
        Doc::field("io.k8s.api.autoscaling.v1.ScaleStatus", "replicas");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_description_resolves_to_text() {
        assert!(!ALL.is_empty());
        for (name, doc) in ALL {
            assert!(
                !doc.text().is_empty(),
                "{name} ({doc:?}) has no description"
            );
        }
    }

    #[test]
    fn unknown_fields_and_definitions_have_no_text() {
        assert_eq!(Doc::field(OBJECT_META, "noSuchField").text(), "");
        assert_eq!(
            Doc::field("io.k8s.api.core.v1.NoSuchKind", "name").text(),
            ""
        );
        let name = schema()
            .object_meta()
            .field("name")
            .expect("ObjectMeta.name");
        assert_eq!(NAME.text(), name.description());
    }
}
