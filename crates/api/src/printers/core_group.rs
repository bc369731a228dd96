//! Core-group kinds other than pods and events: replication controllers, services, endpoints,
//! nodes, namespaces, config maps, secrets, service accounts, persistent volumes and claims,
//! resource quotas and component statuses.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    ComponentStatus, ConfigMap, Endpoints, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, ReplicationController, ResourceQuota, Secret, Service, ServiceAccount,
};
use serde_json::Value;

use super::format;
use super::{Column, Ctx, Doc, Printer, Row, cells, decode, descriptions as d};

/// The annotation that named a volume's class before `storageClassName`; it still wins.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub(super) static REPLICATION_CONTROLLER: Printer = Printer {
    columns: &[
        Column::name(),
        Column::integer("Desired", d::RC_SPEC_REPLICAS),
        Column::integer("Current", d::RC_STATUS_REPLICAS),
        Column::integer("Ready", d::RC_READY),
        Column::age(),
        Column::string(
            "Containers",
            Doc::literal("Names of each container in the template."),
        )
        .wide(),
        Column::string(
            "Images",
            Doc::literal("Images referenced by each container in the template."),
        )
        .wide(),
        Column::string("Selector", d::RC_SELECTOR).wide(),
    ],
    print: print_replication_controller,
};

fn print_replication_controller(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let rc: ReplicationController = decode(object)?;
    let spec = rc.spec.unwrap_or_default();
    let status = rc.status.unwrap_or_default();
    let containers = spec
        .template
        .and_then(|t| t.spec)
        .map(|s| s.containers)
        .unwrap_or_default();
    let (names, images) = format::containers(&containers);
    Ok(Row::new(cells![
        format::name(&rc.metadata),
        spec.replicas.unwrap_or_default(),
        status.replicas,
        status.ready_replicas.unwrap_or_default(),
        format::age(cx.now, &rc.metadata),
        names,
        images,
        format::label_set(spec.selector.as_ref()),
    ]))
}

pub(super) static SERVICE: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Type", d::SVC_TYPE),
        Column::string("Cluster-IP", d::SVC_CLUSTER_IP),
        Column::string("External-IP", d::SVC_EXTERNAL_IPS),
        Column::string("Port(s)", d::SVC_PORTS),
        Column::age(),
        Column::string("Selector", d::SVC_SELECTOR).wide(),
    ],
    print: print_service,
};

fn print_service(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let svc: Service = decode(object)?;
    let spec = svc.spec.unwrap_or_default();
    let type_ = spec.type_.clone().unwrap_or_default();
    // Defaulting copies `clusterIP` into `clusterIPs`; do the same for objects that missed it.
    let cluster_ip = spec
        .cluster_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .or(spec.cluster_ip.as_ref().filter(|ip| !ip.is_empty()))
        .cloned()
        .unwrap_or_else(|| "<none>".to_owned());
    let external_ips = spec.external_ips.clone().unwrap_or_default();
    let external_ip = match type_.as_str() {
        "ClusterIP" | "NodePort" if !external_ips.is_empty() => external_ips.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_owned(),
        "LoadBalancer" => {
            let ingress = svc
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress)
                .unwrap_or_default();
            let lb_ips = format::load_balancer_ingress(
                ingress
                    .iter()
                    .map(|i| (i.ip.as_deref(), i.hostname.as_deref())),
            );
            if !external_ips.is_empty() {
                let mut all: Vec<String> = Vec::new();
                if !lb_ips.is_empty() {
                    all.extend(lb_ips.split(',').map(str::to_owned));
                }
                all.extend(external_ips);
                all.join(",")
            } else if !lb_ips.is_empty() {
                lb_ips
            } else {
                "<pending>".to_owned()
            }
        }
        "ExternalName" => spec.external_name.clone().unwrap_or_default(),
        _ => "<unknown>".to_owned(),
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or_default();
            match p.node_port {
                Some(node_port) if node_port > 0 => format!("{}:{node_port}/{protocol}", p.port),
                _ => format!("{}/{protocol}", p.port),
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let ports = if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports
    };
    Ok(Row::new(cells![
        format::name(&svc.metadata),
        type_,
        cluster_ip,
        external_ip,
        ports,
        format::age(cx.now, &svc.metadata),
        format::label_set(spec.selector.as_ref()),
    ]))
}

pub(super) static ENDPOINTS: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Endpoints", d::EP_SUBSETS),
        Column::age(),
    ],
    print: print_endpoints,
};

fn print_endpoints(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let ep: Endpoints = decode(object)?;
    Ok(Row::new(cells![
        format::name(&ep.metadata),
        format_endpoints(&ep),
        format::age(cx.now, &ep.metadata),
    ]))
}

/// The first three ready `ip:port` pairs (bare IPs for subsets without ports), then
/// ` + N more...`; `<none>` without subsets.
fn format_endpoints(ep: &Endpoints) -> String {
    let subsets = ep.subsets.as_deref().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = ss.addresses.as_deref().unwrap_or_default();
        let ports = ss.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(a.ip.clone());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(&a.ip, port.port));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// `host:port`, bracketing IPv6 addresses as Go's `net.JoinHostPort` does.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Labels that give a node a role: `node-role.kubernetes.io/<role>` (any value) and
/// `kubernetes.io/role=<role>`.
const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

pub(super) static NODE: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Status", Doc::literal("The status of the node")),
        Column::string("Roles", Doc::literal("The roles of the node")),
        Column::age(),
        Column::string("Version", d::NODE_KUBELET),
        Column::string("Internal-IP", d::NODE_ADDRESSES).wide(),
        Column::string("External-IP", d::NODE_ADDRESSES).wide(),
        Column::string("OS-Image", d::NODE_OS_IMAGE).wide(),
        Column::string("Kernel-Version", d::NODE_KERNEL).wide(),
        Column::string("Container-Runtime", d::NODE_RUNTIME).wide(),
    ],
    print: print_node,
};

fn print_node(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let node: Node = decode(object)?;
    let status = node.status.unwrap_or_default();
    // The last condition of a type wins, as in upstream's map.
    let ready = status
        .conditions
        .iter()
        .flatten()
        .rev()
        .find(|c| c.type_ == "Ready");
    let mut states = vec![match ready {
        Some(c) if c.status == "True" => "Ready".to_owned(),
        Some(c) => format!("Not{}", c.type_),
        None => "Unknown".to_owned(),
    }];
    if node.spec.and_then(|s| s.unschedulable) == Some(true) {
        states.push("SchedulingDisabled".to_owned());
    }
    let roles: BTreeSet<&str> = node
        .metadata
        .labels
        .iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix(NODE_ROLE_PREFIX) {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == NODE_ROLE_LABEL && !v.is_empty() => Some(v.as_str()),
            None => None,
        })
        .collect();
    let roles = if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |type_: &str| {
        status
            .addresses
            .iter()
            .flatten()
            .find(|a| a.type_ == type_)
            .map_or_else(|| "<none>".to_owned(), |a| a.address.clone())
    };
    let info = status.node_info.clone().unwrap_or_default();
    let or_unknown = |s: String| {
        if s.is_empty() {
            "<unknown>".to_owned()
        } else {
            s
        }
    };
    Ok(Row::new(cells![
        format::name(&node.metadata),
        states.join(","),
        roles,
        format::age(cx.now, &node.metadata),
        info.kubelet_version,
        address("InternalIP"),
        address("ExternalIP"),
        or_unknown(info.os_image),
        or_unknown(info.kernel_version),
        or_unknown(info.container_runtime_version),
    ]))
}

pub(super) static NAMESPACE: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Status", Doc::literal("The status of the namespace")),
        Column::age(),
    ],
    print: print_namespace,
};

fn print_namespace(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let ns: Namespace = decode(object)?;
    Ok(Row::new(cells![
        format::name(&ns.metadata),
        ns.status.and_then(|s| s.phase).unwrap_or_default(),
        format::age(cx.now, &ns.metadata),
    ]))
}

pub(super) static CONFIG_MAP: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Data", d::CM_DATA),
        Column::age(),
    ],
    print: print_config_map,
};

fn print_config_map(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let cm: ConfigMap = decode(object)?;
    let count = cm.data.map_or(0, |m| m.len()) + cm.binary_data.map_or(0, |m| m.len());
    Ok(Row::new(cells![
        format::name(&cm.metadata),
        count,
        format::age(cx.now, &cm.metadata),
    ]))
}

pub(super) static SECRET: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Type", d::SECRET_TYPE),
        Column::string("Data", d::SECRET_DATA),
        Column::age(),
    ],
    print: print_secret,
};

fn print_secret(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let secret: Secret = decode(object)?;
    // Upstream merges `stringData` into `data` when decoding, so count the union of keys.
    let keys: BTreeSet<&str> = secret
        .data
        .iter()
        .flat_map(|m| m.keys())
        .chain(secret.string_data.iter().flat_map(|m| m.keys()))
        .map(String::as_str)
        .collect();
    Ok(Row::new(cells![
        format::name(&secret.metadata),
        secret.type_.clone().unwrap_or_default(),
        keys.len(),
        format::age(cx.now, &secret.metadata),
    ]))
}

pub(super) static SERVICE_ACCOUNT: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Secrets", d::SA_SECRETS),
        Column::age(),
    ],
    print: print_service_account,
};

fn print_service_account(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let sa: ServiceAccount = decode(object)?;
    Ok(Row::new(cells![
        format::name(&sa.metadata),
        sa.secrets.map_or(0, |s| s.len()),
        format::age(cx.now, &sa.metadata),
    ]))
}

pub(super) static PERSISTENT_VOLUME: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Capacity", d::PV_CAPACITY),
        Column::string("Access Modes", d::PV_ACCESS_MODES),
        Column::string("Reclaim Policy", d::PV_RECLAIM),
        Column::string("Status", d::PV_PHASE),
        Column::string("Claim", d::PV_CLAIM),
        Column::string("StorageClass", Doc::literal("StorageClass of the pv")),
        Column::string(
            "VolumeAttributesClass",
            Doc::literal("VolumeAttributesClass of the pv"),
        ),
        Column::string("Reason", d::PV_REASON),
        Column::age(),
        Column::string("VolumeMode", d::PV_VOLUME_MODE).wide(),
    ],
    print: print_persistent_volume,
};

fn print_persistent_volume(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let pv: PersistentVolume = decode(object)?;
    let spec = pv.spec.unwrap_or_default();
    let status = pv.status.unwrap_or_default();
    let claim = spec.claim_ref.as_ref().map_or_else(String::new, |c| {
        format!(
            "{}/{}",
            c.namespace.as_deref().unwrap_or_default(),
            c.name.as_deref().unwrap_or_default()
        )
    });
    let phase = if pv.metadata.deletion_timestamp.is_some() {
        "Terminating".to_owned()
    } else {
        status.phase.unwrap_or_default()
    };
    let class = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .cloned()
        .or(spec.storage_class_name)
        .unwrap_or_default();
    Ok(Row::new(cells![
        format::name(&pv.metadata),
        format::resource(spec.capacity.as_ref(), "storage"),
        format::access_modes(spec.access_modes.as_ref()),
        spec.persistent_volume_reclaim_policy.unwrap_or_default(),
        phase,
        claim,
        class,
        spec.volume_attributes_class_name
            .unwrap_or_else(|| "<unset>".to_owned()),
        status.reason.unwrap_or_default(),
        format::age(cx.now, &pv.metadata),
        spec.volume_mode.unwrap_or_else(|| "<unset>".to_owned()),
    ]))
}

pub(super) static PERSISTENT_VOLUME_CLAIM: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Status", d::PVC_PHASE),
        Column::string("Volume", d::PVC_VOLUME),
        Column::string("Capacity", d::PVC_CAPACITY),
        Column::string("Access Modes", d::PVC_ACCESS_MODES),
        Column::string("StorageClass", Doc::literal("StorageClass of the pvc")),
        Column::string(
            "VolumeAttributesClass",
            Doc::literal("VolumeAttributesClass of the pvc"),
        ),
        Column::age(),
        Column::string("VolumeMode", d::PVC_VOLUME_MODE).wide(),
    ],
    print: print_persistent_volume_claim,
};

fn print_persistent_volume_claim(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let pvc: PersistentVolumeClaim = decode(object)?;
    let spec = pvc.spec.unwrap_or_default();
    let status = pvc.status.unwrap_or_default();
    let phase = if pvc.metadata.deletion_timestamp.is_some() {
        "Terminating".to_owned()
    } else {
        status.phase.unwrap_or_default()
    };
    let volume = spec.volume_name.unwrap_or_default();
    // Capacity and access modes are those of the bound volume, so only once bound.
    let (capacity, access_modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            format::resource(status.capacity.as_ref(), "storage"),
            format::access_modes(status.access_modes.as_ref()),
        )
    };
    let class = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .cloned()
        .or(spec.storage_class_name)
        .unwrap_or_default();
    Ok(Row::new(cells![
        format::name(&pvc.metadata),
        phase,
        volume,
        capacity,
        access_modes,
        class,
        spec.volume_attributes_class_name
            .unwrap_or_else(|| "<unset>".to_owned()),
        format::age(cx.now, &pvc.metadata),
        spec.volume_mode.unwrap_or_else(|| "<unset>".to_owned()),
    ]))
}

pub(super) static RESOURCE_QUOTA: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string(
            "Request",
            Doc::literal(
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
        ),
        Column::string(
            "Limit",
            Doc::literal(
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
        ),
        Column::age(),
    ],
    print: print_resource_quota,
};

fn print_resource_quota(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let quota: ResourceQuota = decode(object)?;
    let status = quota.status.unwrap_or_default();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    // The hard map is sorted by resource name, as upstream sorts it.
    for (resource, hard) in status.hard.iter().flatten() {
        let used = format::resource(status.used.as_ref(), resource);
        let entry = format!("{resource}: {used}/{}", format::quantity(hard));
        let is_limit = matches!(resource.split_once('.'), Some(("limits", _)));
        if is_limit {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    Ok(Row::new(cells![
        format::name(&quota.metadata),
        requests.join(", "),
        limits.join(", "),
        format::age(cx.now, &quota.metadata),
    ]))
}

pub(super) static COMPONENT_STATUS: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Status", Doc::literal("Status of the component conditions")),
        Column::string(
            "Message",
            Doc::literal("Message of the component conditions"),
        ),
        Column::string("Error", Doc::literal("Error of the component conditions")),
    ],
    print: print_component_status,
};

fn print_component_status(object: &Value, _cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let cs: ComponentStatus = decode(object)?;
    let healthy = cs
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if c.status == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            c.message.clone().unwrap_or_default(),
            c.error.clone().unwrap_or_default(),
        ),
        None => ("Unknown", String::new(), String::new()),
    };
    Ok(Row::new(cells![
        format::name(&cs.metadata),
        status,
        message,
        error
    ]))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::Gvk;
    use crate::printers::test_support::print;

    /// Prints one core/v1 object of `kind` from YAML and compares all its cells.
    fn check(kind: &str, yaml: &str, expected: Value) {
        let (cells, _) = print(Gvk::new("", "v1", kind), yaml);
        assert_eq!(cells, expected, "{kind}\n{yaml}");
    }

    #[test]
    fn services_show_type_ips_and_ports() {
        check(
            "Service",
            r"
metadata: {name: web, creationTimestamp: '2024-12-30T12:00:00Z'}
spec:
  type: NodePort
  clusterIP: 10.43.0.12
  clusterIPs: [10.43.0.12]
  ports: [{port: 80, protocol: TCP, nodePort: 0}, {port: 443, protocol: TCP, nodePort: 30001}]
  selector: {app: web}
",
            json!([
                "web",
                "NodePort",
                "10.43.0.12",
                "<none>",
                "80/TCP,443:30001/TCP",
                "2d",
                "app=web"
            ]),
        );
        check(
            "Service",
            "{metadata: {name: headless}, spec: {type: ClusterIP, clusterIPs: [None]}}",
            json!([
                "headless",
                "ClusterIP",
                "None",
                "<none>",
                "<none>",
                "<unknown>",
                "<none>"
            ]),
        );
        check(
            "Service",
            "{metadata: {name: db}, spec: {type: ExternalName, externalName: db.example.com}}",
            json!([
                "db",
                "ExternalName",
                "<none>",
                "db.example.com",
                "<none>",
                "<unknown>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn load_balancers_are_pending_until_they_have_ingress_points() {
        let lb = |status: &str, external: &str| {
            format!(
                "
metadata: {{name: lb}}
spec: {{type: LoadBalancer, clusterIPs: [1.5.6.7], externalIPs: {external},
        ports: [{{port: 80, protocol: TCP}}, {{port: 8090, protocol: UDP}}]}}
status: {status}
"
            )
        };
        let external_ip = |status, external| {
            print(Gvk::new("", "v1", "Service"), &lb(status, external)).0[3].clone()
        };
        assert_eq!(external_ip("{}", "[]"), "<pending>");
        // Upstream's service4, printed wide as servers do: no 16-character clipping.
        assert_eq!(
            external_ip(
                "{loadBalancer: {ingress: [{ip: 3.4.5.6}, {ip: 2.3.4.5}, {ip: 5.6.7.8, hostname: host5678}]}}",
                "[]"
            ),
            "2.3.4.5,3.4.5.6,5.6.7.8",
        );
        assert_eq!(
            external_ip(
                "{loadBalancer: {ingress: [{hostname: lb.example.com}]}}",
                "[9.9.9.9]"
            ),
            "lb.example.com,9.9.9.9",
        );
        assert_eq!(external_ip("{}", "[9.9.9.9]"), "9.9.9.9");
    }

    #[test]
    fn endpoints_list_three_addresses_then_a_count() {
        check(
            "Endpoints",
            r"
metadata: {name: web}
subsets:
- addresses: [{ip: 10.0.0.1}, {ip: 10.0.0.2}]
  ports: [{port: 80}, {port: 443}]
- addresses: [{ip: 'fd00::1'}]
",
            json!([
                "web",
                "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...",
                "<unknown>"
            ]),
        );
        check(
            "Endpoints",
            "{metadata: {name: v6}, subsets: [{addresses: [{ip: 'fd00::1'}], ports: [{port: 53}]}]}",
            json!(["v6", "[fd00::1]:53", "<unknown>"]),
        );
        check(
            "Endpoints",
            "{metadata: {name: empty}}",
            json!(["empty", "<none>", "<unknown>"]),
        );
    }

    #[test]
    fn nodes_show_readiness_roles_and_scheduling() {
        check(
            "Node",
            r"
metadata:
  name: node-1
  creationTimestamp: '2024-12-01T12:00:00Z'
  labels: {node-role.kubernetes.io/control-plane: '', node-role.kubernetes.io/etcd: 'true', kubernetes.io/role: master}
spec: {unschedulable: true}
status:
  conditions: [{type: MemoryPressure, status: 'False'}, {type: Ready, status: 'False'}]
  addresses: [{type: InternalIP, address: 10.0.0.1}, {type: Hostname, address: node-1}]
  nodeInfo: {kubeletVersion: v1.33.1, osImage: Debian GNU/Linux 12 (bookworm), kernelVersion: 6.1.0, containerRuntimeVersion: 'containerd://1.6.20'}
",
            json!([
                "node-1",
                "NotReady,SchedulingDisabled",
                "control-plane,etcd,master",
                "31d",
                "v1.33.1",
                "10.0.0.1",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0",
                "containerd://1.6.20"
            ]),
        );
        check(
            "Node",
            "{metadata: {name: new}, status: {conditions: [{type: Ready, status: 'True'}]}}",
            json!([
                "new",
                "Ready",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]),
        );
        check(
            "Node",
            "{metadata: {name: silent}}",
            json!([
                "silent",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]),
        );
    }

    #[test]
    fn config_maps_and_secrets_count_their_keys() {
        check(
            "ConfigMap",
            "{metadata: {name: cfg}, data: {a: '1', b: '2'}, binaryData: {c: AAE=}}",
            json!(["cfg", 3, "<unknown>"]),
        );
        check(
            "Secret",
            "{metadata: {name: tls}, type: kubernetes.io/tls, data: {tls.crt: YQ==, tls.key: Yg==}}",
            json!(["tls", "kubernetes.io/tls", 2, "<unknown>"]),
        );
        check(
            "Secret",
            "{metadata: {name: s}, type: Opaque, data: {a: YQ==}, stringData: {a: x, b: y}}",
            json!(["s", "Opaque", 2, "<unknown>"]),
        );
        check(
            "ServiceAccount",
            "{metadata: {name: default}, secrets: [{name: token}]}",
            json!(["default", 1, "<unknown>"]),
        );
    }

    #[test]
    fn namespaces_show_their_phase() {
        check(
            "Namespace",
            "{metadata: {name: old, creationTimestamp: '2020-03-01T00:00:00Z'}, status: {phase: Terminating}}",
            json!(["old", "Terminating", "4y307d"]),
        );
    }

    #[test]
    fn persistent_volumes_show_claim_class_and_status() {
        check(
            "PersistentVolume",
            r"
metadata: {name: pv1, annotations: {volume.beta.kubernetes.io/storage-class: beta}}
spec:
  capacity: {storage: 1024Mi}
  accessModes: [ReadWriteMany, ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: default, name: data}
  storageClassName: fast
  volumeMode: Filesystem
status: {phase: Bound}
",
            json!([
                "pv1",
                "1Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "beta",
                "<unset>",
                "",
                "<unknown>",
                "Filesystem"
            ]),
        );
        check(
            "PersistentVolume",
            "{metadata: {name: gone, deletionTimestamp: '2025-01-01T11:00:00Z'}, spec: {}, status: {phase: Released, reason: Failed}}",
            json!([
                "gone",
                "0",
                "",
                "",
                "Terminating",
                "",
                "",
                "<unset>",
                "Failed",
                "<unknown>",
                "<unset>"
            ]),
        );
    }

    #[test]
    fn claims_show_capacity_and_modes_only_once_bound() {
        check(
            "PersistentVolumeClaim",
            r"
metadata: {name: data}
spec: {storageClassName: fast, resources: {requests: {storage: 5Gi}}, volumeAttributesClassName: gold}
status: {phase: Pending}
",
            json!([
                "data",
                "Pending",
                "",
                "",
                "",
                "fast",
                "gold",
                "<unknown>",
                "<unset>"
            ]),
        );
        check(
            "PersistentVolumeClaim",
            r"
metadata: {name: data}
spec: {volumeName: pv1, volumeMode: Block}
status: {phase: Bound, capacity: {storage: 10Gi}, accessModes: [ReadWriteOnce]}
",
            json!([
                "data",
                "Bound",
                "pv1",
                "10Gi",
                "RWO",
                "",
                "<unset>",
                "<unknown>",
                "Block"
            ]),
        );
    }

    #[test]
    fn resource_quotas_split_requests_from_limits() {
        check(
            "ResourceQuota",
            r"
metadata: {name: quota}
status:
  hard: {pods: '10', requests.cpu: '2', limits.memory: 2Gi, limits.cpu: '4'}
  used: {pods: '3', requests.cpu: 500m, limits.cpu: '1'}
",
            json!([
                "quota",
                "pods: 3/10, requests.cpu: 500m/2",
                "limits.cpu: 1/4, limits.memory: 0/2Gi",
                "<unknown>"
            ]),
        );
    }

    #[test]
    fn replication_controllers_show_counts_and_template() {
        check(
            "ReplicationController",
            r"
metadata: {name: rc}
spec:
  replicas: 3
  selector: {app: web}
  template: {spec: {containers: [{name: web, image: nginx}]}}
status: {replicas: 2, readyReplicas: 1}
",
            json!(["rc", 3, 2, 1, "<unknown>", "web", "nginx", "app=web"]),
        );
    }

    #[test]
    fn component_statuses_report_health() {
        check(
            "ComponentStatus",
            "{metadata: {name: etcd-0}, conditions: [{type: Healthy, status: 'True', message: ok}]}",
            json!(["etcd-0", "Healthy", "ok", ""]),
        );
        check(
            "ComponentStatus",
            "{metadata: {name: scheduler}, conditions: [{type: Healthy, status: 'False', error: refused}]}",
            json!(["scheduler", "Unhealthy", "", "refused"]),
        );
    }
}
