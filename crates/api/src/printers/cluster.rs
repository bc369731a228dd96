//! Cluster plumbing and policy kinds: leases, role bindings, pod disruption budgets, storage
//! classes and priority classes.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::format;
use super::{Column, Ctx, Doc, Printer, Row, cells, decode, descriptions as d};

pub(super) static LEASE: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Holder", d::LEASE_HOLDER),
        Column::age(),
    ],
    print: print_lease,
};

fn print_lease(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let lease: Lease = decode(object)?;
    Ok(Row::new(cells![
        format::name(&lease.metadata),
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default(),
        format::age(cx.now, &lease.metadata),
    ]))
}

pub(super) static ROLE_BINDING: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Role", d::RB_ROLE),
        Column::age(),
        Column::string("Users", Doc::literal("Users in the roleBinding")).wide(),
        Column::string("Groups", Doc::literal("Groups in the roleBinding")).wide(),
        Column::string(
            "ServiceAccounts",
            Doc::literal("ServiceAccounts in the roleBinding"),
        )
        .wide(),
    ],
    print: print_role_binding,
};

pub(super) static CLUSTER_ROLE_BINDING: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Role", d::CRB_ROLE),
        Column::age(),
        Column::string("Users", Doc::literal("Users in the clusterRoleBinding")).wide(),
        Column::string("Groups", Doc::literal("Groups in the clusterRoleBinding")).wide(),
        Column::string(
            "ServiceAccounts",
            Doc::literal("ServiceAccounts in the clusterRoleBinding"),
        )
        .wide(),
    ],
    print: print_cluster_role_binding,
};

fn print_role_binding(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let binding: RoleBinding = decode(object)?;
    Ok(binding_row(
        &binding.metadata,
        &binding.role_ref,
        binding.subjects.as_deref(),
        cx,
    ))
}

fn print_cluster_role_binding(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let binding: ClusterRoleBinding = decode(object)?;
    Ok(binding_row(
        &binding.metadata,
        &binding.role_ref,
        binding.subjects.as_deref(),
        cx,
    ))
}

/// `Kind/name` of the role, then the subjects by kind, each list joined by `, `.
fn binding_row(
    meta: &ObjectMeta,
    role: &RoleRef,
    subjects: Option<&[Subject]>,
    cx: &Ctx<'_>,
) -> Row {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for s in subjects.unwrap_or_default() {
        match s.kind.as_str() {
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{}",
                s.namespace.as_deref().unwrap_or_default(),
                s.name
            )),
            "User" => users.push(s.name.clone()),
            "Group" => groups.push(s.name.clone()),
            _ => {}
        }
    }
    Row::new(cells![
        format::name(meta),
        format!("{}/{}", role.kind, role.name),
        format::age(cx.now, meta),
        users.join(", "),
        groups.join(", "),
        service_accounts.join(", "),
    ])
}

pub(super) static POD_DISRUPTION_BUDGET: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string(
            "Min Available",
            Doc::literal("The minimum number of pods that must be available."),
        ),
        Column::string(
            "Max Unavailable",
            Doc::literal("The maximum number of pods that may be unavailable."),
        ),
        Column::integer(
            "Allowed Disruptions",
            Doc::literal("Calculated number of pods that may be disrupted at this time."),
        ),
        Column::age(),
    ],
    print: print_pod_disruption_budget,
};

fn print_pod_disruption_budget(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let pdb: PodDisruptionBudget = decode(object)?;
    let spec = pdb.spec.unwrap_or_default();
    let or_na = |v: Option<&_>| v.map_or_else(|| "N/A".to_owned(), format::int_or_string);
    Ok(Row::new(cells![
        format::name(&pdb.metadata),
        or_na(spec.min_available.as_ref()),
        or_na(spec.max_unavailable.as_ref()),
        pdb.status.map_or(0, |s| s.disruptions_allowed),
        format::age(cx.now, &pdb.metadata),
    ]))
}

/// Annotations that mark the default storage class (`"true"`).
const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

pub(super) static STORAGE_CLASS: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Provisioner", d::SC_PROVISIONER),
        Column::string("ReclaimPolicy", d::SC_RECLAIM),
        Column::string("VolumeBindingMode", d::SC_BINDING_MODE),
        Column::string("AllowVolumeExpansion", d::SC_EXPANSION),
        Column::age(),
    ],
    print: print_storage_class,
};

fn print_storage_class(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let class: StorageClass = decode(object)?;
    let mut name = format::name(&class.metadata);
    let annotations = class.metadata.annotations.as_ref();
    if DEFAULT_CLASS_ANNOTATIONS
        .iter()
        .any(|a| annotations.and_then(|m| m.get(*a)).map(String::as_str) == Some("true"))
    {
        name.push_str(" (default)");
    }
    Ok(Row::new(cells![
        name,
        class.provisioner,
        class.reclaim_policy.unwrap_or_else(|| "Delete".to_owned()),
        class
            .volume_binding_mode
            .unwrap_or_else(|| "Immediate".to_owned()),
        class.allow_volume_expansion.unwrap_or_default(),
        format::age(cx.now, &class.metadata),
    ]))
}

pub(super) static PRIORITY_CLASS: Printer = Printer {
    columns: &[
        Column::name(),
        Column::integer("Value", d::PC_VALUE),
        Column::boolean("Global-Default", d::PC_GLOBAL_DEFAULT),
        Column::age(),
        Column::string("PreemptionPolicy", d::PC_PREEMPTION),
    ],
    print: print_priority_class,
};

fn print_priority_class(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let class: PriorityClass = decode(object)?;
    Ok(Row::new(cells![
        format::name(&class.metadata),
        class.value,
        class.global_default.unwrap_or_default(),
        format::age(cx.now, &class.metadata),
        class.preemption_policy.unwrap_or_default(),
    ]))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::Gvk;
    use crate::printers::test_support::print;

    fn check(group: &str, kind: &str, yaml: &str, expected: Value) {
        let (cells, _) = print(Gvk::new(group, "v1", kind), yaml);
        assert_eq!(cells, expected, "{kind}\n{yaml}");
    }

    #[test]
    fn leases_show_their_holder() {
        check(
            "coordination.k8s.io",
            "Lease",
            "{metadata: {name: node-1}, spec: {holderIdentity: node-1, leaseDurationSeconds: 40}}",
            json!(["node-1", "node-1", "<unknown>"]),
        );
        check(
            "coordination.k8s.io",
            "Lease",
            "{metadata: {name: free}}",
            json!(["free", "", "<unknown>"]),
        );
    }

    #[test]
    fn role_bindings_show_role_and_subjects_by_kind() {
        let yaml = r"
metadata: {name: admins}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects:
- {kind: User, name: alice}
- {kind: User, name: bob}
- {kind: Group, name: ops}
- {kind: ServiceAccount, name: deployer, namespace: ci}
";
        let expected = json!([
            "admins",
            "ClusterRole/admin",
            "<unknown>",
            "alice, bob",
            "ops",
            "ci/deployer"
        ]);
        check(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            yaml,
            expected.clone(),
        );
        check(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            yaml,
            expected,
        );
    }

    #[test]
    fn pod_disruption_budgets_show_limits_or_not_applicable() {
        check(
            "policy",
            "PodDisruptionBudget",
            "{metadata: {name: web}, spec: {minAvailable: 2}, status: {disruptionsAllowed: 1}}",
            json!(["web", "2", "N/A", 1, "<unknown>"]),
        );
        check(
            "policy",
            "PodDisruptionBudget",
            "{metadata: {name: db}, spec: {maxUnavailable: 25%}, status: {}}",
            json!(["db", "N/A", "25%", 0, "<unknown>"]),
        );
    }

    #[test]
    fn storage_classes_mark_the_default_and_fill_in_defaults() {
        check(
            "storage.k8s.io",
            "StorageClass",
            r"
metadata: {name: local-path, annotations: {storageclass.kubernetes.io/is-default-class: 'true'}}
provisioner: rancher.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
",
            json!([
                "local-path (default)",
                "rancher.io/local-path",
                "Delete",
                "WaitForFirstConsumer",
                true,
                "<unknown>"
            ]),
        );
        check(
            "storage.k8s.io",
            "StorageClass",
            "{metadata: {name: plain}, provisioner: example.com/p}",
            json!([
                "plain",
                "example.com/p",
                "Delete",
                "Immediate",
                false,
                "<unknown>"
            ]),
        );
    }

    #[test]
    fn priority_classes_show_value_and_default() {
        check(
            "scheduling.k8s.io",
            "PriorityClass",
            "{metadata: {name: system-node-critical}, value: 2000001000, preemptionPolicy: PreemptLowerPriority}",
            json!([
                "system-node-critical",
                2_000_001_000,
                false,
                "<unknown>",
                "PreemptLowerPriority"
            ]),
        );
    }
}
