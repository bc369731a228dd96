//! The static resource catalogue: every resource the API server serves, with upstream's
//! names, scope, verbs, subresources, categories and etcd key prefix.
//!
//! The values are upstream's (Kubernetes v1.33), as `kubectl api-resources` shows them and
//! as the registries declare them (`ShortNames()`, `Categories()`, `SingularName()`, the
//! storage factory's special key prefixes). The order is discovery's: groups by upstream's
//! group priority, versions within a group by preference, resources by plural name.

use crate::Gvk;

/// A Kubernetes API verb, as discovery lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// `create` (POST to the collection).
    Create,
    /// `delete` (DELETE on one object).
    Delete,
    /// `deletecollection` (DELETE on the collection).
    DeleteCollection,
    /// `get` (GET one object).
    Get,
    /// `list` (GET the collection).
    List,
    /// `patch` (PATCH one object).
    Patch,
    /// `update` (PUT one object).
    Update,
    /// `watch` (GET the collection with `watch=true`).
    Watch,
}

impl Verb {
    /// The verb's name in discovery and RBAC.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Patch => "patch",
            Verb::Update => "update",
            Verb::Watch => "watch",
        }
    }
}

/// An API group with its served versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// The group name; empty for the core group (served under `/api`).
    pub name: &'static str,
    /// The served versions, preferred first (the order discovery lists them in).
    pub versions: &'static [&'static str],
}

impl Group {
    /// The version discovery names as `preferredVersion`.
    pub fn preferred_version(&self) -> &'static str {
        self.versions.first().copied().unwrap_or("v1")
    }

    /// `group/version` for one of this group's versions (`version` alone for the core group).
    pub fn group_version(&self, version: &str) -> String {
        Gvk::new(self.name, version, "").api_version()
    }
}

/// A subresource of a resource (`pods/status`, `deployments/scale`, `pods/exec`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// The name after the slash (`status`).
    pub name: &'static str,
    /// The kind requests and responses carry when it isn't the parent's own kind
    /// (`autoscaling/v1 Scale` for `scale`, `PodExecOptions` for `exec`).
    pub kind: Option<Gvk<'static>>,
    /// The verbs the subresource supports.
    pub verbs: &'static [Verb],
}

impl Subresource {
    /// The kind the subresource responds with, given its parent.
    pub fn response_gvk(&self, parent: &Resource) -> Gvk<'static> {
        self.kind.unwrap_or_else(|| parent.gvk())
    }

    /// Whether this is a connect-style subresource (streams or proxies rather than carrying
    /// an API object: `exec`, `attach`, `portforward`, `proxy`).
    pub fn is_connect(&self) -> bool {
        self.kind.is_some_and(|k| k.kind.ends_with("Options"))
    }
}

/// Where and in which version a resource's objects are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    /// The etcd key prefix, without a trailing slash (`/registry/deployments`). Objects live
    /// at `<prefix>/<namespace>/<name>` (namespaced) or `<prefix>/<name>` (cluster-scoped).
    pub prefix: &'static str,
    /// The group of the version objects are encoded in at rest.
    pub group: &'static str,
    /// The version objects are encoded in at rest (resources served in several versions,
    /// or in several groups like events, share one storage version).
    pub version: &'static str,
}

/// One served resource: a plural name in one group-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The version.
    pub version: &'static str,
    /// The kind of its objects.
    pub kind: &'static str,
    /// The kind of its lists.
    pub list_kind: &'static str,
    /// The plural resource name used in URLs (`deployments`).
    pub plural: &'static str,
    /// The singular name (`deployment`).
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`deploy`).
    pub short_names: &'static [&'static str],
    /// Categories the resource belongs to (`all`).
    pub categories: &'static [&'static str],
    /// The verbs the resource itself supports, sorted as discovery lists them.
    pub verbs: &'static [Verb],
    /// Its subresources, sorted by name.
    pub subresources: &'static [Subresource],
    /// Where its objects are stored; `None` for virtual resources that are only created
    /// and answered (reviews, bindings, component statuses).
    pub storage: Option<Storage>,
    /// Whether DELETE answers with the deleted object rather than a `Status`.
    pub returns_deleted_object: bool,
    /// The name of the kind's OpenAPI definition (`io.k8s.api.apps.v1.Deployment`).
    pub definition: &'static str,
}

impl Resource {
    /// The kind of its objects.
    pub fn gvk(&self) -> Gvk<'static> {
        Gvk::new(self.group, self.version, self.kind)
    }

    /// The kind of its lists.
    pub fn list_gvk(&self) -> Gvk<'static> {
        Gvk::new(self.group, self.version, self.list_kind)
    }

    /// `group/version` (`v1` for the core group).
    pub fn api_version(&self) -> String {
        self.gvk().api_version()
    }

    /// `plural.group` (`deployments.apps`), or the plural alone for the core group: the
    /// name RBAC and error messages use.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether the resource supports a verb.
    pub fn has_verb(&self, verb: Verb) -> bool {
        self.verbs.contains(&verb)
    }

    /// A subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The storage key of one object: `/registry/pods/<namespace>/<name>` or
    /// `/registry/namespaces/<name>`. `None` for virtual resources, and for a namespaced
    /// resource without a namespace (or a cluster-scoped one with one).
    pub fn key(&self, namespace: Option<&str>, name: &str) -> Option<String> {
        let storage = self.storage?;
        match (self.namespaced, namespace) {
            (true, Some(ns)) => Some(format!("{}/{ns}/{name}", storage.prefix)),
            (false, None) => Some(format!("{}/{name}", storage.prefix)),
            _ => None,
        }
    }

    /// The key prefix, with a trailing slash, of the objects in one namespace (`Some(ns)`)
    /// or of all objects (`None`). `None` for virtual resources and for a namespace on a
    /// cluster-scoped resource.
    pub fn key_prefix(&self, namespace: Option<&str>) -> Option<String> {
        let storage = self.storage?;
        match (self.namespaced, namespace) {
            (true, Some(ns)) => Some(format!("{}/{ns}/", storage.prefix)),
            (false, Some(_)) => None,
            (_, None) => Some(format!("{}/", storage.prefix)),
        }
    }
}

use Verb::{Create, Delete, DeleteCollection, Get, List, Patch, Update, Watch};

/// Every verb: the usual set of a stored resource.
const ALL_VERBS: &[Verb] = &[
    Create,
    Delete,
    DeleteCollection,
    Get,
    List,
    Patch,
    Update,
    Watch,
];
/// Namespaces cannot be deleted as a collection.
const NO_DELETECOLLECTION: &[Verb] = &[Create, Delete, Get, List, Patch, Update, Watch];
/// Reviews and bindings are only created.
const CREATE_ONLY: &[Verb] = &[Create];
/// Component statuses are only read.
const GET_LIST: &[Verb] = &[Get, List];

const GET_PATCH_UPDATE: &[Verb] = &[Get, Patch, Update];
const CONNECT_VERBS: &[Verb] = &[Create, Get];
const PROXY_VERBS: &[Verb] = &[Create, Delete, Get, Patch, Update];

const fn sub(
    name: &'static str,
    kind: Option<Gvk<'static>>,
    verbs: &'static [Verb],
) -> Subresource {
    Subresource { name, kind, verbs }
}

const fn core_kind(kind: &'static str) -> Option<Gvk<'static>> {
    Some(Gvk::new("", "v1", kind))
}

const STATUS: Subresource = sub("status", None, GET_PATCH_UPDATE);
const SCALE: Subresource = sub(
    "scale",
    Some(Gvk::new("autoscaling", "v1", "Scale")),
    GET_PATCH_UPDATE,
);

const STATUS_ONLY: &[Subresource] = &[STATUS];
const SCALE_STATUS: &[Subresource] = &[SCALE, STATUS];

const POD_SUBRESOURCES: &[Subresource] = &[
    sub("attach", core_kind("PodAttachOptions"), CONNECT_VERBS),
    sub("binding", core_kind("Binding"), CREATE_ONLY),
    sub("ephemeralcontainers", None, GET_PATCH_UPDATE),
    sub(
        "eviction",
        Some(Gvk::new("policy", "v1", "Eviction")),
        CREATE_ONLY,
    ),
    sub("exec", core_kind("PodExecOptions"), CONNECT_VERBS),
    sub("log", None, &[Get]),
    sub(
        "portforward",
        core_kind("PodPortForwardOptions"),
        CONNECT_VERBS,
    ),
    sub("proxy", core_kind("PodProxyOptions"), PROXY_VERBS),
    sub("resize", None, GET_PATCH_UPDATE),
    STATUS,
];
const SERVICE_SUBRESOURCES: &[Subresource] = &[
    sub("proxy", core_kind("ServiceProxyOptions"), PROXY_VERBS),
    STATUS,
];
const NODE_SUBRESOURCES: &[Subresource] = &[
    sub("proxy", core_kind("NodeProxyOptions"), PROXY_VERBS),
    STATUS,
];
const NAMESPACE_SUBRESOURCES: &[Subresource] = &[sub("finalize", None, &[Update]), STATUS];
const SERVICEACCOUNT_SUBRESOURCES: &[Subresource] = &[sub(
    "token",
    Some(Gvk::new("authentication.k8s.io", "v1", "TokenRequest")),
    CREATE_ONLY,
)];

const ALL: &[&str] = &["all"];

/// The API groups in discovery order (upstream's group priorities: core 18000, apps 17800,
/// events 17750, authentication 17700, … discovery 16200), versions preferred first.
pub static GROUPS: &[Group] = &[
    Group {
        name: "",
        versions: &["v1"],
    },
    Group {
        name: "apps",
        versions: &["v1"],
    },
    Group {
        name: "events.k8s.io",
        versions: &["v1"],
    },
    Group {
        name: "authentication.k8s.io",
        versions: &["v1"],
    },
    Group {
        name: "authorization.k8s.io",
        versions: &["v1"],
    },
    Group {
        name: "autoscaling",
        versions: &["v2", "v1"],
    },
    Group {
        name: "batch",
        versions: &["v1"],
    },
    Group {
        name: "networking.k8s.io",
        versions: &["v1"],
    },
    Group {
        name: "policy",
        versions: &["v1"],
    },
    Group {
        name: "rbac.authorization.k8s.io",
        versions: &["v1"],
    },
    Group {
        name: "storage.k8s.io",
        versions: &["v1"],
    },
    Group {
        name: "scheduling.k8s.io",
        versions: &["v1"],
    },
    Group {
        name: "coordination.k8s.io",
        versions: &["v1"],
    },
    Group {
        name: "discovery.k8s.io",
        versions: &["v1"],
    },
];

/// A stored resource in its own group-version, with the usual verbs and defaults; the
/// table below adjusts the rest with struct update syntax.
#[allow(
    clippy::too_many_arguments,
    reason = "one row of the table: the arguments are its columns"
)]
const fn stored(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    list_kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    prefix: &'static str,
    definition: &'static str,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        list_kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: Some(Storage {
            prefix,
            group,
            version,
        }),
        returns_deleted_object: false,
        definition,
    }
}

/// A virtual resource: no storage, create-only unless adjusted.
const fn virtual_resource(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    definition: &'static str,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        list_kind: "",
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: CREATE_ONLY,
        subresources: &[],
        storage: None,
        returns_deleted_object: false,
        definition,
    }
}

/// Every served resource, in discovery order: groups as in [`GROUPS`], versions preferred
/// first, resources sorted by plural.
pub static RESOURCES: &[Resource] = &[
    // ---- core/v1 ----
    virtual_resource(
        "",
        "v1",
        "Binding",
        "bindings",
        "binding",
        true,
        "io.k8s.api.core.v1.Binding",
    ),
    Resource {
        list_kind: "ComponentStatusList",
        short_names: &["cs"],
        verbs: GET_LIST,
        ..virtual_resource(
            "",
            "v1",
            "ComponentStatus",
            "componentstatuses",
            "componentstatus",
            false,
            "io.k8s.api.core.v1.ComponentStatus",
        )
    },
    Resource {
        short_names: &["cm"],
        ..stored(
            "",
            "v1",
            "ConfigMap",
            "ConfigMapList",
            "configmaps",
            "configmap",
            true,
            "/registry/configmaps",
            "io.k8s.api.core.v1.ConfigMap",
        )
    },
    Resource {
        short_names: &["ep"],
        ..stored(
            "",
            "v1",
            "Endpoints",
            "EndpointsList",
            "endpoints",
            "endpoints",
            true,
            "/registry/services/endpoints",
            "io.k8s.api.core.v1.Endpoints",
        )
    },
    Resource {
        short_names: &["ev"],
        ..stored(
            "",
            "v1",
            "Event",
            "EventList",
            "events",
            "event",
            true,
            "/registry/events",
            "io.k8s.api.core.v1.Event",
        )
    },
    Resource {
        short_names: &["limits"],
        ..stored(
            "",
            "v1",
            "LimitRange",
            "LimitRangeList",
            "limitranges",
            "limitrange",
            true,
            "/registry/limitranges",
            "io.k8s.api.core.v1.LimitRange",
        )
    },
    Resource {
        short_names: &["ns"],
        verbs: NO_DELETECOLLECTION,
        subresources: NAMESPACE_SUBRESOURCES,
        ..stored(
            "",
            "v1",
            "Namespace",
            "NamespaceList",
            "namespaces",
            "namespace",
            false,
            "/registry/namespaces",
            "io.k8s.api.core.v1.Namespace",
        )
    },
    Resource {
        short_names: &["no"],
        subresources: NODE_SUBRESOURCES,
        ..stored(
            "",
            "v1",
            "Node",
            "NodeList",
            "nodes",
            "node",
            false,
            "/registry/minions",
            "io.k8s.api.core.v1.Node",
        )
    },
    Resource {
        short_names: &["pvc"],
        subresources: STATUS_ONLY,
        returns_deleted_object: true,
        ..stored(
            "",
            "v1",
            "PersistentVolumeClaim",
            "PersistentVolumeClaimList",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            true,
            "/registry/persistentvolumeclaims",
            "io.k8s.api.core.v1.PersistentVolumeClaim",
        )
    },
    Resource {
        short_names: &["pv"],
        subresources: STATUS_ONLY,
        returns_deleted_object: true,
        ..stored(
            "",
            "v1",
            "PersistentVolume",
            "PersistentVolumeList",
            "persistentvolumes",
            "persistentvolume",
            false,
            "/registry/persistentvolumes",
            "io.k8s.api.core.v1.PersistentVolume",
        )
    },
    Resource {
        short_names: &["po"],
        categories: ALL,
        subresources: POD_SUBRESOURCES,
        returns_deleted_object: true,
        ..stored(
            "",
            "v1",
            "Pod",
            "PodList",
            "pods",
            "pod",
            true,
            "/registry/pods",
            "io.k8s.api.core.v1.Pod",
        )
    },
    Resource {
        returns_deleted_object: true,
        ..stored(
            "",
            "v1",
            "PodTemplate",
            "PodTemplateList",
            "podtemplates",
            "podtemplate",
            true,
            "/registry/podtemplates",
            "io.k8s.api.core.v1.PodTemplate",
        )
    },
    Resource {
        short_names: &["rc"],
        categories: ALL,
        subresources: SCALE_STATUS,
        ..stored(
            "",
            "v1",
            "ReplicationController",
            "ReplicationControllerList",
            "replicationcontrollers",
            "replicationcontroller",
            true,
            "/registry/controllers",
            "io.k8s.api.core.v1.ReplicationController",
        )
    },
    Resource {
        short_names: &["quota"],
        subresources: STATUS_ONLY,
        returns_deleted_object: true,
        ..stored(
            "",
            "v1",
            "ResourceQuota",
            "ResourceQuotaList",
            "resourcequotas",
            "resourcequota",
            true,
            "/registry/resourcequotas",
            "io.k8s.api.core.v1.ResourceQuota",
        )
    },
    stored(
        "",
        "v1",
        "Secret",
        "SecretList",
        "secrets",
        "secret",
        true,
        "/registry/secrets",
        "io.k8s.api.core.v1.Secret",
    ),
    Resource {
        short_names: &["sa"],
        subresources: SERVICEACCOUNT_SUBRESOURCES,
        returns_deleted_object: true,
        ..stored(
            "",
            "v1",
            "ServiceAccount",
            "ServiceAccountList",
            "serviceaccounts",
            "serviceaccount",
            true,
            "/registry/serviceaccounts",
            "io.k8s.api.core.v1.ServiceAccount",
        )
    },
    Resource {
        short_names: &["svc"],
        categories: ALL,
        subresources: SERVICE_SUBRESOURCES,
        returns_deleted_object: true,
        ..stored(
            "",
            "v1",
            "Service",
            "ServiceList",
            "services",
            "service",
            true,
            "/registry/services/specs",
            "io.k8s.api.core.v1.Service",
        )
    },
    // ---- apps/v1 ----
    stored(
        "apps",
        "v1",
        "ControllerRevision",
        "ControllerRevisionList",
        "controllerrevisions",
        "controllerrevision",
        true,
        "/registry/controllerrevisions",
        "io.k8s.api.apps.v1.ControllerRevision",
    ),
    Resource {
        short_names: &["ds"],
        categories: ALL,
        subresources: STATUS_ONLY,
        ..stored(
            "apps",
            "v1",
            "DaemonSet",
            "DaemonSetList",
            "daemonsets",
            "daemonset",
            true,
            "/registry/daemonsets",
            "io.k8s.api.apps.v1.DaemonSet",
        )
    },
    Resource {
        short_names: &["deploy"],
        categories: ALL,
        subresources: SCALE_STATUS,
        ..stored(
            "apps",
            "v1",
            "Deployment",
            "DeploymentList",
            "deployments",
            "deployment",
            true,
            "/registry/deployments",
            "io.k8s.api.apps.v1.Deployment",
        )
    },
    Resource {
        short_names: &["rs"],
        categories: ALL,
        subresources: SCALE_STATUS,
        ..stored(
            "apps",
            "v1",
            "ReplicaSet",
            "ReplicaSetList",
            "replicasets",
            "replicaset",
            true,
            "/registry/replicasets",
            "io.k8s.api.apps.v1.ReplicaSet",
        )
    },
    Resource {
        short_names: &["sts"],
        categories: ALL,
        subresources: SCALE_STATUS,
        ..stored(
            "apps",
            "v1",
            "StatefulSet",
            "StatefulSetList",
            "statefulsets",
            "statefulset",
            true,
            "/registry/statefulsets",
            "io.k8s.api.apps.v1.StatefulSet",
        )
    },
    // ---- events.k8s.io/v1 (stored with core events, in the core v1 encoding) ----
    Resource {
        short_names: &["ev"],
        storage: Some(Storage {
            prefix: "/registry/events",
            group: "",
            version: "v1",
        }),
        ..stored(
            "events.k8s.io",
            "v1",
            "Event",
            "EventList",
            "events",
            "event",
            true,
            "/registry/events",
            "io.k8s.api.events.v1.Event",
        )
    },
    // ---- authentication.k8s.io/v1 ----
    virtual_resource(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        false,
        "io.k8s.api.authentication.v1.SelfSubjectReview",
    ),
    virtual_resource(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        "tokenreview",
        false,
        "io.k8s.api.authentication.v1.TokenReview",
    ),
    // ---- authorization.k8s.io/v1 ----
    virtual_resource(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        true,
        "io.k8s.api.authorization.v1.LocalSubjectAccessReview",
    ),
    virtual_resource(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        false,
        "io.k8s.api.authorization.v1.SelfSubjectAccessReview",
    ),
    virtual_resource(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        false,
        "io.k8s.api.authorization.v1.SelfSubjectRulesReview",
    ),
    virtual_resource(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        false,
        "io.k8s.api.authorization.v1.SubjectAccessReview",
    ),
    // ---- autoscaling/v2, then v1; both stored as v2 ----
    Resource {
        short_names: &["hpa"],
        categories: ALL,
        subresources: STATUS_ONLY,
        ..stored(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "HorizontalPodAutoscalerList",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            true,
            "/registry/horizontalpodautoscalers",
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        )
    },
    Resource {
        short_names: &["hpa"],
        categories: ALL,
        subresources: STATUS_ONLY,
        storage: Some(Storage {
            prefix: "/registry/horizontalpodautoscalers",
            group: "autoscaling",
            version: "v2",
        }),
        ..stored(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "HorizontalPodAutoscalerList",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            true,
            "/registry/horizontalpodautoscalers",
            "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler",
        )
    },
    // ---- batch/v1 ----
    Resource {
        short_names: &["cj"],
        categories: ALL,
        subresources: STATUS_ONLY,
        ..stored(
            "batch",
            "v1",
            "CronJob",
            "CronJobList",
            "cronjobs",
            "cronjob",
            true,
            "/registry/cronjobs",
            "io.k8s.api.batch.v1.CronJob",
        )
    },
    Resource {
        categories: ALL,
        subresources: STATUS_ONLY,
        ..stored(
            "batch",
            "v1",
            "Job",
            "JobList",
            "jobs",
            "job",
            true,
            "/registry/jobs",
            "io.k8s.api.batch.v1.Job",
        )
    },
    // ---- networking.k8s.io/v1 ----
    stored(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "IngressClassList",
        "ingressclasses",
        "ingressclass",
        false,
        "/registry/ingressclasses",
        "io.k8s.api.networking.v1.IngressClass",
    ),
    Resource {
        short_names: &["ing"],
        subresources: STATUS_ONLY,
        ..stored(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "IngressList",
            "ingresses",
            "ingress",
            true,
            "/registry/ingress",
            "io.k8s.api.networking.v1.Ingress",
        )
    },
    Resource {
        short_names: &["netpol"],
        ..stored(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "NetworkPolicyList",
            "networkpolicies",
            "networkpolicy",
            true,
            "/registry/networkpolicies",
            "io.k8s.api.networking.v1.NetworkPolicy",
        )
    },
    // ---- policy/v1 ----
    Resource {
        short_names: &["pdb"],
        subresources: STATUS_ONLY,
        ..stored(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "PodDisruptionBudgetList",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            true,
            "/registry/poddisruptionbudgets",
            "io.k8s.api.policy.v1.PodDisruptionBudget",
        )
    },
    // ---- rbac.authorization.k8s.io/v1 ----
    stored(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "ClusterRoleBindingList",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
        "/registry/clusterrolebindings",
        "io.k8s.api.rbac.v1.ClusterRoleBinding",
    ),
    stored(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "ClusterRoleList",
        "clusterroles",
        "clusterrole",
        false,
        "/registry/clusterroles",
        "io.k8s.api.rbac.v1.ClusterRole",
    ),
    stored(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "RoleBindingList",
        "rolebindings",
        "rolebinding",
        true,
        "/registry/rolebindings",
        "io.k8s.api.rbac.v1.RoleBinding",
    ),
    stored(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "RoleList",
        "roles",
        "role",
        true,
        "/registry/roles",
        "io.k8s.api.rbac.v1.Role",
    ),
    // ---- storage.k8s.io/v1 ----
    Resource {
        short_names: &["sc"],
        ..stored(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "StorageClassList",
            "storageclasses",
            "storageclass",
            false,
            "/registry/storageclasses",
            "io.k8s.api.storage.v1.StorageClass",
        )
    },
    // ---- scheduling.k8s.io/v1 ----
    Resource {
        short_names: &["pc"],
        ..stored(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "PriorityClassList",
            "priorityclasses",
            "priorityclass",
            false,
            "/registry/priorityclasses",
            "io.k8s.api.scheduling.v1.PriorityClass",
        )
    },
    // ---- coordination.k8s.io/v1 ----
    stored(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "LeaseList",
        "leases",
        "lease",
        true,
        "/registry/leases",
        "io.k8s.api.coordination.v1.Lease",
    ),
    // ---- discovery.k8s.io/v1 ----
    stored(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "EndpointSliceList",
        "endpointslices",
        "endpointslice",
        true,
        "/registry/endpointslices",
        "io.k8s.api.discovery.v1.EndpointSlice",
    ),
];

/// The API groups in discovery order.
pub fn groups() -> &'static [Group] {
    GROUPS
}

/// A group by name (`""` for core).
pub fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name == name)
}

/// Every served resource, in discovery order.
pub fn resources() -> &'static [Resource] {
    RESOURCES
}

/// The resources of one group-version, sorted by plural.
pub fn resources_in<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// The resource served at `group/version/plural`.
pub fn by_gvr(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource whose objects have this kind.
pub fn by_gvk(gvk: Gvk<'_>) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == gvk.group && r.version == gvk.version && r.kind == gvk.kind)
}

/// The resource a short name denotes, as kubectl resolves it: the first match in discovery
/// order, so `ev` is core events and `hpa` is `autoscaling/v2`.
pub fn by_short_name(short_name: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.short_names.contains(&short_name))
}

/// The resources in a category (`all`), in discovery order, each plural once (its
/// preferred version).
pub fn in_category(category: &str) -> Vec<&'static Resource> {
    let mut found: Vec<&'static Resource> = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.categories.contains(&category))
    {
        if !found
            .iter()
            .any(|f| f.group == r.group && f.plural == r.plural)
        {
            found.push(r);
        }
    }
    found
}

/// Resolves a name as kubectl does for `kubectl get NAME`: a plural, singular or short
/// name, optionally qualified with a group (`deployments.apps`, `deploy.apps`) or a
/// version and group (`deployments.v1.apps`). Returns the preferred version's entry; the
/// first match in discovery order wins.
pub fn resolve(name: &str) -> Option<&'static Resource> {
    let name = name.to_ascii_lowercase();
    let matches_name =
        |r: &Resource, n: &str| r.plural == n || r.singular == n || r.short_names.contains(&n);
    if let Some(found) = RESOURCES.iter().find(|r| matches_name(r, &name)) {
        return Some(found);
    }
    let (resource, qualifier) = name.split_once('.')?;
    RESOURCES.iter().find(|r| {
        matches_name(r, resource)
            && (qualifier == r.group
                || qualifier
                    .split_once('.')
                    .is_some_and(|(v, g)| v == r.version && g == r.group))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One expectation about a catalogue entry, as `kubectl api-resources` shows it.
    struct Expect {
        short: &'static str,
        plural: &'static str,
        api_version: &'static str,
        kind: &'static str,
        namespaced: bool,
        categories: &'static [&'static str],
    }

    const fn e(
        short: &'static str,
        plural: &'static str,
        api_version: &'static str,
        kind: &'static str,
        namespaced: bool,
        categories: &'static [&'static str],
    ) -> Expect {
        Expect {
            short,
            plural,
            api_version,
            kind,
            namespaced,
            categories,
        }
    }

    fn check(expect: &Expect) {
        let r = by_short_name(expect.short)
            .unwrap_or_else(|| panic!("short name {:?} is not in the catalogue", expect.short));
        assert_eq!(r.plural, expect.plural, "{}", expect.short);
        assert_eq!(r.api_version(), expect.api_version, "{}", expect.short);
        assert_eq!(r.kind, expect.kind, "{}", expect.short);
        assert_eq!(r.namespaced, expect.namespaced, "{}", expect.short);
        assert_eq!(r.categories, expect.categories, "{}", expect.short);
    }

    #[test]
    fn short_names_resolve_like_kubectl_api_resources() {
        let none: &[&str] = &[];
        for expect in [
            e("deploy", "deployments", "apps/v1", "Deployment", true, ALL),
            e("cm", "configmaps", "v1", "ConfigMap", true, none),
            e("svc", "services", "v1", "Service", true, ALL),
            e("ns", "namespaces", "v1", "Namespace", false, none),
            e("no", "nodes", "v1", "Node", false, none),
            e("po", "pods", "v1", "Pod", true, ALL),
            e("rs", "replicasets", "apps/v1", "ReplicaSet", true, ALL),
            e("sts", "statefulsets", "apps/v1", "StatefulSet", true, ALL),
            e("ds", "daemonsets", "apps/v1", "DaemonSet", true, ALL),
            e("cj", "cronjobs", "batch/v1", "CronJob", true, ALL),
            e(
                "pvc",
                "persistentvolumeclaims",
                "v1",
                "PersistentVolumeClaim",
                true,
                none,
            ),
            e(
                "pv",
                "persistentvolumes",
                "v1",
                "PersistentVolume",
                false,
                none,
            ),
            e("sa", "serviceaccounts", "v1", "ServiceAccount", true, none),
            e("ep", "endpoints", "v1", "Endpoints", true, none),
            e("ev", "events", "v1", "Event", true, none),
            e(
                "hpa",
                "horizontalpodautoscalers",
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                true,
                ALL,
            ),
            e(
                "pdb",
                "poddisruptionbudgets",
                "policy/v1",
                "PodDisruptionBudget",
                true,
                none,
            ),
            e(
                "netpol",
                "networkpolicies",
                "networking.k8s.io/v1",
                "NetworkPolicy",
                true,
                none,
            ),
            e(
                "ing",
                "ingresses",
                "networking.k8s.io/v1",
                "Ingress",
                true,
                none,
            ),
            e(
                "pc",
                "priorityclasses",
                "scheduling.k8s.io/v1",
                "PriorityClass",
                false,
                none,
            ),
            e(
                "sc",
                "storageclasses",
                "storage.k8s.io/v1",
                "StorageClass",
                false,
                none,
            ),
            e("limits", "limitranges", "v1", "LimitRange", true, none),
            e("quota", "resourcequotas", "v1", "ResourceQuota", true, none),
            e(
                "rc",
                "replicationcontrollers",
                "v1",
                "ReplicationController",
                true,
                ALL,
            ),
            e(
                "cs",
                "componentstatuses",
                "v1",
                "ComponentStatus",
                false,
                none,
            ),
        ] {
            check(&expect);
        }
        // certificatesigningrequests (csr) are not served.
        assert!(by_short_name("csr").is_none());
    }

    #[test]
    fn category_all_matches_kubectl_get_all() {
        let all: Vec<String> = in_category("all")
            .iter()
            .map(|r| r.group_resource())
            .collect();
        assert_eq!(
            all,
            [
                "pods",
                "replicationcontrollers",
                "services",
                "daemonsets.apps",
                "deployments.apps",
                "replicasets.apps",
                "statefulsets.apps",
                "horizontalpodautoscalers.autoscaling",
                "cronjobs.batch",
                "jobs.batch",
            ]
        );
    }

    #[test]
    fn storage_keys_follow_upstream_etcd_paths() {
        let key = |group: &str, plural: &str, ns: Option<&str>, name: &str| {
            let r = RESOURCES
                .iter()
                .find(|r| r.group == group && r.plural == plural)
                .expect("resource exists");
            r.key(ns, name)
        };
        assert_eq!(
            key("apps", "deployments", Some("default"), "web").as_deref(),
            Some("/registry/deployments/default/web")
        );
        assert_eq!(
            key("", "services", Some("default"), "kubernetes").as_deref(),
            Some("/registry/services/specs/default/kubernetes")
        );
        assert_eq!(
            key("", "endpoints", Some("default"), "kubernetes").as_deref(),
            Some("/registry/services/endpoints/default/kubernetes")
        );
        assert_eq!(
            key("", "nodes", None, "n1").as_deref(),
            Some("/registry/minions/n1")
        );
        assert_eq!(
            key("", "replicationcontrollers", Some("a"), "b").as_deref(),
            Some("/registry/controllers/a/b")
        );
        assert_eq!(
            key("networking.k8s.io", "ingresses", Some("a"), "b").as_deref(),
            Some("/registry/ingress/a/b")
        );
        assert_eq!(
            key("networking.k8s.io", "ingressclasses", None, "nginx").as_deref(),
            Some("/registry/ingressclasses/nginx")
        );
        assert_eq!(
            key("rbac.authorization.k8s.io", "clusterroles", None, "admin").as_deref(),
            Some("/registry/clusterroles/admin")
        );
        assert_eq!(
            key(
                "coordination.k8s.io",
                "leases",
                Some("kube-node-lease"),
                "n1"
            )
            .as_deref(),
            Some("/registry/leases/kube-node-lease/n1")
        );
        // Namespace/scope mismatches and virtual resources have no key.
        assert_eq!(key("", "pods", None, "x"), None);
        assert_eq!(key("", "namespaces", Some("x"), "y"), None);
        assert_eq!(
            key("authorization.k8s.io", "subjectaccessreviews", None, "x"),
            None
        );
        // Both event APIs and both HPA versions share one keyspace.
        let prefixes = |plural: &str| {
            RESOURCES
                .iter()
                .filter(|r| r.plural == plural)
                .map(|r| r.key_prefix(Some("ns")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            prefixes("events"),
            [
                Some("/registry/events/ns/".to_string()),
                Some("/registry/events/ns/".to_string())
            ]
        );
        assert_eq!(
            prefixes("horizontalpodautoscalers"),
            [
                Some("/registry/horizontalpodautoscalers/ns/".to_string()),
                Some("/registry/horizontalpodautoscalers/ns/".to_string())
            ]
        );
    }

    #[test]
    fn resources_are_in_discovery_order() {
        let position = |r: &Resource| {
            let g = GROUPS
                .iter()
                .position(|g| g.name == r.group)
                .expect("every resource's group is listed");
            let v = GROUPS[g]
                .versions
                .iter()
                .position(|v| *v == r.version)
                .expect("every resource's version is listed");
            (g, v, r.plural)
        };
        for pair in RESOURCES.windows(2) {
            assert!(
                position(&pair[0]) < position(&pair[1]),
                "{} must come before {}",
                pair[0].group_resource(),
                pair[1].group_resource()
            );
        }
        for group in GROUPS {
            for version in group.versions {
                assert!(
                    resources_in(group.name, version).next().is_some(),
                    "{}/{version} serves nothing",
                    group.name
                );
            }
        }
    }

    #[test]
    fn verbs_and_subresources_are_sorted_like_discovery() {
        for r in RESOURCES {
            assert!(
                r.verbs.windows(2).all(|w| w[0].as_str() < w[1].as_str()),
                "{}",
                r.plural
            );
            assert!(
                r.subresources.windows(2).all(|w| w[0].name < w[1].name),
                "{}",
                r.plural
            );
            for s in r.subresources {
                assert!(s.verbs.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
            }
            assert_eq!(r.singular, r.kind.to_ascii_lowercase(), "{}", r.plural);
            assert_eq!(
                r.storage.is_none(),
                r.list_kind.is_empty() || r.plural == "componentstatuses"
            );
        }
    }

    #[test]
    fn pods_have_upstream_subresources() {
        let pods = by_gvr("", "v1", "pods").expect("pods");
        let names: Vec<&str> = pods.subresources.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "resize",
                "status"
            ]
        );
        let eviction = pods.subresource("eviction").expect("eviction");
        assert_eq!(
            eviction.response_gvk(pods),
            Gvk::new("policy", "v1", "Eviction")
        );
        assert_eq!(
            pods.subresource("status").map(|s| s.response_gvk(pods)),
            Some(Gvk::new("", "v1", "Pod"))
        );
        assert!(
            pods.subresource("exec")
                .is_some_and(Subresource::is_connect)
        );
        let deploy = by_gvk(Gvk::new("apps", "v1", "Deployment")).expect("deployments");
        assert_eq!(
            deploy.subresource("scale").map(|s| s.response_gvk(deploy)),
            Some(Gvk::new("autoscaling", "v1", "Scale"))
        );
    }

    #[test]
    fn lookups_by_gvr_gvk_and_name_agree() {
        let hpa_v1 = by_gvr("autoscaling", "v1", "horizontalpodautoscalers").expect("hpa v1");
        assert_eq!(
            hpa_v1.definition,
            "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"
        );
        assert_eq!(
            group("autoscaling").map(Group::preferred_version),
            Some("v2")
        );
        assert_eq!(
            resolve("deploy").map(Resource::group_resource).as_deref(),
            Some("deployments.apps")
        );
        assert_eq!(
            resolve("Deployments.apps").map(|r| r.kind),
            Some("Deployment")
        );
        assert_eq!(resolve("hpa.v1.autoscaling").map(|r| r.version), Some("v1"));
        assert_eq!(
            resolve("events.events.k8s.io").map(|r| r.group),
            Some("events.k8s.io")
        );
        assert_eq!(resolve("ev").map(|r| r.group), Some(""));
        assert!(resolve("widgets").is_none());
        let sar = by_gvk(Gvk::new(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
        ))
        .expect("lsar");
        assert!(sar.namespaced);
        assert_eq!(sar.verbs, [Verb::Create]);
    }
}
