//! `apps` workloads: deployments, replica sets, stateful sets, daemon sets and controller
//! revisions.

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use serde_json::Value;

use super::format;
use super::{Column, Ctx, Doc, Printer, Row, cells, decode, descriptions as d};

const CONTAINERS: Doc = Doc::literal("Names of each container in the template.");
const IMAGES: Doc = Doc::literal("Images referenced by each container in the template.");

pub(super) static DEPLOYMENT: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Ready", Doc::literal("Number of the pod with ready state")),
        Column::string("Up-to-date", d::DEPLOY_UPDATED),
        Column::string("Available", d::DEPLOY_AVAILABLE),
        Column::age(),
        Column::string("Containers", CONTAINERS).wide(),
        Column::string("Images", IMAGES).wide(),
        Column::string("Selector", d::DEPLOY_SELECTOR).wide(),
    ],
    print: print_deployment,
};

fn print_deployment(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let deploy: Deployment = decode(object)?;
    let spec = deploy.spec.unwrap_or_default();
    let status = deploy.status.unwrap_or_default();
    let containers = spec.template.spec.map(|s| s.containers).unwrap_or_default();
    let (names, images) = format::containers(&containers);
    // Unlike the other workloads, an empty selector prints empty and a bad one `<invalid>`.
    let selector =
        format::selector_string(Some(&spec.selector)).unwrap_or_else(|_| "<invalid>".to_owned());
    Ok(Row::new(cells![
        format::name(&deploy.metadata),
        format!(
            "{}/{}",
            status.ready_replicas.unwrap_or_default(),
            spec.replicas.unwrap_or_default()
        ),
        status.updated_replicas.unwrap_or_default(),
        status.available_replicas.unwrap_or_default(),
        format::age(cx.now, &deploy.metadata),
        names,
        images,
        selector,
    ]))
}

pub(super) static REPLICA_SET: Printer = Printer {
    columns: &[
        Column::name(),
        Column::integer("Desired", d::RS_SPEC_REPLICAS),
        Column::integer("Current", d::RS_STATUS_REPLICAS),
        Column::integer("Ready", d::RS_READY),
        Column::age(),
        Column::string("Containers", CONTAINERS).wide(),
        Column::string("Images", IMAGES).wide(),
        Column::string("Selector", d::RS_SELECTOR).wide(),
    ],
    print: print_replica_set,
};

fn print_replica_set(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let rs: ReplicaSet = decode(object)?;
    let spec = rs.spec.unwrap_or_default();
    let status = rs.status.unwrap_or_default();
    let containers = spec
        .template
        .and_then(|t| t.spec)
        .map(|s| s.containers)
        .unwrap_or_default();
    let (names, images) = format::containers(&containers);
    Ok(Row::new(cells![
        format::name(&rs.metadata),
        spec.replicas.unwrap_or_default(),
        status.replicas,
        status.ready_replicas.unwrap_or_default(),
        format::age(cx.now, &rs.metadata),
        names,
        images,
        format::label_selector(Some(&spec.selector)),
    ]))
}

pub(super) static STATEFUL_SET: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Ready", Doc::literal("Number of the pod with ready state")),
        Column::age(),
        Column::string("Containers", CONTAINERS).wide(),
        Column::string("Images", IMAGES).wide(),
    ],
    print: print_stateful_set,
};

fn print_stateful_set(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let sts: StatefulSet = decode(object)?;
    let spec = sts.spec.unwrap_or_default();
    let status = sts.status.unwrap_or_default();
    let containers = spec.template.spec.map(|s| s.containers).unwrap_or_default();
    let (names, images) = format::containers(&containers);
    Ok(Row::new(cells![
        format::name(&sts.metadata),
        format!(
            "{}/{}",
            status.ready_replicas.unwrap_or_default(),
            spec.replicas.unwrap_or_default()
        ),
        format::age(cx.now, &sts.metadata),
        names,
        images,
    ]))
}

pub(super) static DAEMON_SET: Printer = Printer {
    columns: &[
        Column::name(),
        Column::integer("Desired", d::DS_DESIRED),
        Column::integer("Current", d::DS_CURRENT),
        Column::integer("Ready", d::DS_READY),
        Column::integer("Up-to-date", d::DS_UPDATED),
        Column::integer("Available", d::DS_AVAILABLE),
        Column::string("Node Selector", d::NODE_SELECTOR),
        Column::age(),
        Column::string("Containers", CONTAINERS).wide(),
        Column::string("Images", IMAGES).wide(),
        Column::string("Selector", d::DS_SELECTOR).wide(),
    ],
    print: print_daemon_set,
};

fn print_daemon_set(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let ds: DaemonSet = decode(object)?;
    let spec = ds.spec.unwrap_or_default();
    let status = ds.status.unwrap_or_default();
    let pod_spec = spec.template.spec.unwrap_or_default();
    let (names, images) = format::containers(&pod_spec.containers);
    Ok(Row::new(cells![
        format::name(&ds.metadata),
        status.desired_number_scheduled,
        status.current_number_scheduled,
        status.number_ready,
        status.updated_number_scheduled.unwrap_or_default(),
        status.number_available.unwrap_or_default(),
        format::label_set(pod_spec.node_selector.as_ref()),
        format::age(cx.now, &ds.metadata),
        names,
        images,
        format::label_selector(Some(&spec.selector)),
    ]))
}

pub(super) static CONTROLLER_REVISION: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Controller", Doc::literal("Controller of the object")),
        Column::string("Revision", d::CR_REVISION),
        Column::age(),
    ],
    print: print_controller_revision,
};

fn print_controller_revision(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let revision: ControllerRevision = decode(object)?;
    let controller = revision
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    let controller = match controller {
        None => "<none>".to_owned(),
        Some(owner) => {
            // `kind.group/name`, lower-cased, as upstream's `GroupKind` prints.
            let group = match owner.api_version.split('/').collect::<Vec<_>>().as_slice() {
                [_version] => "",
                [group, _version] => group,
                // An apiVersion upstream cannot parse fails its row; read the object as
                // unprintable.
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "unexpected GroupVersion string: {}",
                        owner.api_version
                    )));
                }
            };
            let group_kind = if group.is_empty() {
                owner.kind.clone()
            } else {
                format!("{}.{group}", owner.kind)
            };
            if group_kind.is_empty() {
                owner.name.clone()
            } else {
                format!("{}/{}", group_kind.to_lowercase(), owner.name)
            }
        }
    };
    Ok(Row::new(cells![
        format::name(&revision.metadata),
        controller,
        revision.revision,
        format::age(cx.now, &revision.metadata),
    ]))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::Gvk;
    use crate::printers::test_support::print;

    /// Prints one `apps/v1` object of `kind` from YAML and compares all its cells.
    fn check(kind: &str, yaml: &str, expected: Value) {
        let (cells, _) = print(Gvk::new("apps", "v1", kind), yaml);
        assert_eq!(cells, expected, "{kind}\n{yaml}");
    }

    #[test]
    fn deployments_show_ready_over_desired() {
        check(
            "Deployment",
            r"
metadata: {name: web, creationTimestamp: '2025-01-01T09:00:00Z'}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template: {spec: {containers: [{name: nginx, image: 'nginx:1.27'}, {name: sidecar, image: envoy}]}}
status: {replicas: 3, updatedReplicas: 3, readyReplicas: 2, availableReplicas: 2}
",
            json!([
                "web",
                "2/3",
                3,
                2,
                "3h",
                "nginx,sidecar",
                "nginx:1.27,envoy",
                "app=web"
            ]),
        );
        // Just created: no status yet, and an empty selector prints empty.
        check(
            "Deployment",
            "{metadata: {name: new}, spec: {replicas: 1, selector: {}, template: {spec: {containers: [{name: c, image: i}]}}}}",
            json!(["new", "0/1", 0, 0, "<unknown>", "c", "i", ""]),
        );
    }

    #[test]
    fn replica_sets_show_desired_current_ready() {
        check(
            "ReplicaSet",
            r"
metadata: {name: web-5d4f}
spec:
  replicas: 2
  selector: {matchLabels: {app: web, pod-template-hash: 5d4f}}
  template: {spec: {containers: [{name: nginx, image: nginx}]}}
status: {replicas: 2, readyReplicas: 1}
",
            json!([
                "web-5d4f",
                2,
                2,
                1,
                "<unknown>",
                "nginx",
                "nginx",
                "app=web,pod-template-hash=5d4f"
            ]),
        );
    }

    #[test]
    fn stateful_sets_show_ready_over_desired() {
        check(
            "StatefulSet",
            "{metadata: {name: db}, spec: {replicas: 3, template: {spec: {containers: [{name: pg, image: postgres}]}}}, status: {replicas: 1, readyReplicas: 1}}",
            json!(["db", "1/3", "<unknown>", "pg", "postgres"]),
        );
    }

    #[test]
    fn daemon_sets_show_counts_and_node_selector() {
        check(
            "DaemonSet",
            r"
metadata: {name: proxy}
spec:
  selector: {matchExpressions: [{key: app, operator: In, values: [proxy]}]}
  template: {spec: {nodeSelector: {kubernetes.io/os: linux}, containers: [{name: p, image: proxy}]}}
status: {desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady: 2, updatedNumberScheduled: 3, numberAvailable: 2, numberMisscheduled: 0}
",
            json!([
                "proxy",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "<unknown>",
                "p",
                "proxy",
                "app in (proxy)"
            ]),
        );
    }

    #[test]
    fn controller_revisions_name_their_controller() {
        check(
            "ControllerRevision",
            r"
metadata:
  name: db-7c9f
  ownerReferences:
  - {apiVersion: apps/v1, kind: StatefulSet, name: db, uid: u1, controller: true}
revision: 2
",
            json!(["db-7c9f", "statefulset.apps/db", 2, "<unknown>"]),
        );
        check(
            "ControllerRevision",
            "{metadata: {name: orphan}, revision: 1}",
            json!(["orphan", "<none>", 1, "<unknown>"]),
        );
    }
}
