//! Pod and container specs translated into CRI configurations: sandbox (hostname, DNS, log
//! directory, port mappings, cgroup parent, namespaces, upstream's `io.kubernetes.*` labels)
//! and containers (image, command/args with `$(VAR)` expansion, env, mounts, resources as
//! cgroup values, OOM score, security context).

use std::{collections::HashMap, path::Path};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};
use tug_apimachinery::quantity::Quantity;

use super::{env, status::qos_class};

/// Label with the pod's uid on every sandbox and container (upstream's name).
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// Label with the pod's name.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// Label with the pod's namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label with the container's name.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Annotation with the container's restart count.
pub const ANNOTATION_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// Annotation with the container's `terminationMessagePath`.
pub const ANNOTATION_TERMINATION_MESSAGE_PATH: &str =
    "io.kubernetes.container.terminationMessagePath";
/// Annotation with the container's `terminationMessagePolicy`.
pub const ANNOTATION_TERMINATION_MESSAGE_POLICY: &str =
    "io.kubernetes.container.terminationMessagePolicy";
/// Annotation with the pod's termination grace period, for cleanup after a restart.
pub const ANNOTATION_GRACE: &str = "io.kubernetes.pod.terminationGracePeriod";

/// CRI namespace modes.
const NS_POD: i32 = 0;
const NS_CONTAINER: i32 = 1;
const NS_NODE: i32 = 2;

/// DNS settings of the node.
#[derive(Debug, Clone, Default)]
pub struct Dns {
    /// The cluster DNS server, when cluster DNS runs (`ClusterFirst` then uses it).
    pub cluster_dns: Option<String>,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// The host's resolv.conf name servers.
    pub host_servers: Vec<String>,
    /// The host's resolv.conf search domains.
    pub host_searches: Vec<String>,
    /// The host's resolv.conf options.
    pub host_options: Vec<String>,
}

impl Dns {
    /// The host's settings from `/etc/resolv.conf` text.
    pub fn from_resolv_conf(text: &str, cluster_dns: Option<String>) -> Self {
        let mut dns = Self {
            cluster_dns,
            cluster_domain: "cluster.local".into(),
            ..Default::default()
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => dns.host_servers.extend(words.next().map(str::to_owned)),
                Some("search") | Some("domain") => {
                    dns.host_searches = words.map(str::to_owned).collect();
                }
                Some("options") => dns.host_options.extend(words.map(str::to_owned)),
                _ => {}
            }
        }
        dns
    }

    /// The pod's DNS config per `dnsPolicy` (upstream: `ClusterFirst` without a cluster DNS
    /// falls back to `Default`).
    pub fn for_pod(&self, pod: &Pod) -> cri::DnsConfig {
        let spec = pod.spec.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
        let host_network = spec.host_network == Some(true);
        let cluster = match (policy, &self.cluster_dns) {
            ("ClusterFirst", Some(server)) if !host_network => Some(server),
            ("ClusterFirstWithHostNet", Some(server)) => Some(server),
            _ => None,
        };
        let mut config = match (policy, cluster) {
            ("None", _) => cri::DnsConfig::default(),
            (_, Some(server)) => {
                let d = &self.cluster_domain;
                let mut searches = vec![
                    format!("{namespace}.svc.{d}"),
                    format!("svc.{d}"),
                    d.clone(),
                ];
                searches.extend(self.host_searches.iter().cloned());
                cri::DnsConfig {
                    servers: vec![server.clone()],
                    searches,
                    options: vec!["ndots:5".into()],
                }
            }
            _ => cri::DnsConfig {
                servers: self.host_servers.clone(),
                searches: self.host_searches.clone(),
                options: self.host_options.clone(),
            },
        };
        if let Some(extra) = &spec.dns_config {
            for s in extra.nameservers.iter().flatten() {
                if !config.servers.contains(s) {
                    config.servers.push(s.clone());
                }
            }
            for s in extra.searches.iter().flatten() {
                if !config.searches.contains(s) {
                    config.searches.push(s.clone());
                }
            }
            for o in extra.options.iter().flatten() {
                let text = match &o.value {
                    Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                    None => o.name.clone().unwrap_or_default(),
                };
                config
                    .options
                    .retain(|x| x.split(':').next() != text.split(':').next());
                config.options.push(text);
            }
        }
        config
    }
}

/// The labels identifying a pod's sandbox and containers.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    HashMap::from([
        (
            LABEL_POD_UID.to_owned(),
            pod.metadata.uid.clone().unwrap_or_default(),
        ),
        (
            LABEL_POD_NAME.to_owned(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        (
            LABEL_POD_NAMESPACE.to_owned(),
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
    ])
}

/// The pod's hostname (`spec.hostname` or the pod name, at most 63 characters).
pub fn hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    let name = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    let mut h: String = name.chars().take(63).collect();
    while h.ends_with(['-', '.']) {
        h.pop();
    }
    h
}

/// The pod's cgroup parent for the cgroupfs driver (upstream's layout by QoS class).
pub fn cgroup_parent(pod: &Pod) -> String {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    match qos_class(&spec) {
        "Guaranteed" => format!("/kubepods/pod{uid}"),
        "Burstable" => format!("/kubepods/burstable/pod{uid}"),
        _ => format!("/kubepods/besteffort/pod{uid}"),
    }
}

/// The pod's log directory (`<logs>/<namespace>_<name>_<uid>`, as `/var/log/pods`).
pub fn log_directory(logs_dir: &Path, pod: &Pod) -> String {
    let m = &pod.metadata;
    logs_dir
        .join(format!(
            "{}_{}_{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default()
        ))
        .to_string_lossy()
        .into_owned()
}

/// The sandbox configuration.
pub fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    logs_dir: &Path,
    dns: &Dns,
) -> cri::PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut labels = pod_labels(pod);
    for (k, v) in pod.metadata.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let annotations: HashMap<String, String> = pod
        .metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| cri::PortMapping {
            protocol: protocol(p.protocol.as_deref()),
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let security = spec.security_context.clone().unwrap_or_default();
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname: if spec.host_network == Some(true) {
            String::new()
        } else {
            hostname(pod)
        },
        log_directory: log_directory(logs_dir, pod),
        dns_config: Some(dns.for_pod(pod)),
        port_mappings,
        labels,
        annotations,
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent(pod),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: security.run_as_user.map(|value| cri::Int64Value { value }),
                run_as_group: security.run_as_group.map(|value| cri::Int64Value { value }),
                supplemental_groups: security.supplemental_groups.clone().unwrap_or_default(),
                ..Default::default()
            }),
            sysctls: security
                .sysctls
                .iter()
                .flatten()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
            ..Default::default()
        }),
        windows: None,
    }
}

fn protocol(p: Option<&str>) -> i32 {
    match p {
        Some("UDP") => cri::Protocol::Udp as i32,
        Some("SCTP") => cri::Protocol::Sctp as i32,
        _ => cri::Protocol::Tcp as i32,
    }
}

fn namespace_options(pod: &Pod) -> cri::NamespaceOption {
    let spec = pod.spec.clone().unwrap_or_default();
    cri::NamespaceOption {
        network: if spec.host_network == Some(true) {
            NS_NODE
        } else {
            NS_POD
        },
        pid: if spec.host_pid == Some(true) {
            NS_NODE
        } else if spec.share_process_namespace == Some(true) {
            NS_POD
        } else {
            NS_CONTAINER
        },
        ipc: if spec.host_ipc == Some(true) {
            NS_NODE
        } else {
            NS_POD
        },
        ..Default::default()
    }
}

fn quantity(container: &Container, list: &str, name: &str) -> Option<Quantity> {
    let r = container.resources.as_ref()?;
    let map = if list == "limits" {
        r.limits.as_ref()
    } else {
        r.requests.as_ref()
    }?;
    Quantity::parse(&map.get(name)?.0).ok()
}

/// The container's cgroup resources (upstream's `calculateLinuxResources` and OOM policy),
/// with the OOM score clamped to at least `min_oom_score_adj` (this process's own score: we
/// cannot lower it without CAP_SYS_RESOURCE, as containerd's `restrict_oom_score_adj`).
pub fn linux_resources(
    pod: &Pod,
    container: &Container,
    node_memory: i64,
    min_oom_score_adj: i64,
) -> cri::LinuxContainerResources {
    let cpu_limit = quantity(container, "limits", "cpu").map(|q| q.milli_value());
    let cpu_request = quantity(container, "requests", "cpu")
        .map(|q| q.milli_value())
        .or(cpu_limit);
    let mem_limit = quantity(container, "limits", "memory").map(|q| q.value());
    let mem_request = quantity(container, "requests", "memory")
        .map(|q| q.value())
        .or(mem_limit);
    const PERIOD: i64 = 100_000;
    let shares = match cpu_request {
        Some(m) if m > 0 => (m * 1024 / 1000).max(2),
        _ => 2,
    };
    let quota = cpu_limit
        .filter(|m| *m > 0)
        .map(|m| (m * PERIOD / 1000).max(1000));
    let spec = pod.spec.clone().unwrap_or_default();
    let oom = match qos_class(&spec) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let request = mem_request.unwrap_or(0);
            let score = if node_memory > 0 {
                1000 - 1000 * request / node_memory
            } else {
                1000
            };
            score.clamp(2, 999)
        }
    };
    cri::LinuxContainerResources {
        cpu_period: if quota.is_some() { PERIOD } else { 0 },
        cpu_quota: quota.unwrap_or(0),
        cpu_shares: shares,
        memory_limit_in_bytes: mem_limit.unwrap_or(0),
        oom_score_adj: oom.max(min_oom_score_adj),
        ..Default::default()
    }
}

/// What a container config is built from besides the pod.
#[derive(Debug)]
pub struct ContainerInputs<'a> {
    /// The attempt (restart count).
    pub attempt: u32,
    /// The resolved environment.
    pub env: &'a [(String, String)],
    /// Volume mounts (and the managed /etc/hosts).
    pub mounts: Vec<cri::Mount>,
    /// The node's memory (for the OOM score of burstable pods).
    pub node_memory: i64,
    /// This process's own OOM score adjustment.
    pub min_oom_score_adj: i64,
}

/// The container configuration.
pub fn container_config(
    pod: &Pod,
    container: &Container,
    inputs: ContainerInputs<'_>,
) -> cri::ContainerConfig {
    let vars = inputs.env.to_vec();
    let lookup = move |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let expand_all = |list: &Option<Vec<String>>| -> Vec<String> {
        list.iter()
            .flatten()
            .map(|s| env::expand(s, &lookup))
            .collect()
    };
    let mut labels = pod_labels(pod);
    labels.insert(LABEL_CONTAINER_NAME.into(), container.name.clone());
    let spec = pod.spec.clone().unwrap_or_default();
    let annotations = HashMap::from([
        (
            ANNOTATION_RESTART_COUNT.to_owned(),
            inputs.attempt.to_string(),
        ),
        (
            ANNOTATION_GRACE.to_owned(),
            spec.termination_grace_period_seconds
                .unwrap_or(30)
                .to_string(),
        ),
        (
            ANNOTATION_TERMINATION_MESSAGE_PATH.to_owned(),
            termination_message_path(container).unwrap_or_default(),
        ),
        (
            ANNOTATION_TERMINATION_MESSAGE_POLICY.to_owned(),
            container
                .termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
    ]);
    let pod_security = spec.security_context.clone().unwrap_or_default();
    let security = container.security_context.clone().unwrap_or_default();
    let capabilities = security.capabilities.clone().map(|c| cri::Capability {
        add_capabilities: c.add.unwrap_or_default(),
        drop_capabilities: c.drop.unwrap_or_default(),
        ..Default::default()
    });
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: container.name.clone(),
            attempt: inputs.attempt,
        }),
        image: Some(cri::ImageSpec {
            image: container.image.clone().unwrap_or_default(),
            user_specified_image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&container.command),
        args: expand_all(&container.args),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: inputs
            .env
            .iter()
            .map(|(key, value)| cri::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        mounts: inputs.mounts,
        labels,
        annotations,
        log_path: format!("{}/{}.log", container.name, inputs.attempt),
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        tty: container.tty == Some(true),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(linux_resources(
                pod,
                container,
                inputs.node_memory,
                inputs.min_oom_score_adj,
            )),
            security_context: Some(cri::LinuxContainerSecurityContext {
                capabilities,
                privileged: security.privileged == Some(true),
                namespace_options: Some(namespace_options(pod)),
                run_as_user: security
                    .run_as_user
                    .or(pod_security.run_as_user)
                    .map(|value| cri::Int64Value { value }),
                run_as_group: security
                    .run_as_group
                    .or(pod_security.run_as_group)
                    .map(|value| cri::Int64Value { value }),
                readonly_rootfs: security.read_only_root_filesystem == Some(true),
                supplemental_groups: pod_security.supplemental_groups.clone().unwrap_or_default(),
                no_new_privs: security.allow_privilege_escalation == Some(false),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Where the container writes its termination message (`/dev/termination-log` by default;
/// `None` when set to the empty string).
pub fn termination_message_path(container: &Container) -> Option<String> {
    match container.termination_message_path.as_deref() {
        None => Some("/dev/termination-log".into()),
        Some("") => None,
        Some(p) => Some(p.to_owned()),
    }
}

/// The termination message of an exited container (upstream's `getTerminationMessage`): the
/// file it wrote (at most 4096 bytes), else with `FallbackToLogsOnError` and a failure the
/// tail of its log (at most 80 lines, 2048 bytes).
pub fn termination_message(status: &cri::ContainerStatus) -> String {
    let path = status
        .annotations
        .get(ANNOTATION_TERMINATION_MESSAGE_PATH)
        .filter(|p| !p.is_empty());
    if let Some(path) = path
        && let Some(mount) = status.mounts.iter().find(|m| &m.container_path == path)
        && let Ok(bytes) = std::fs::read(&mount.host_path)
        && !bytes.is_empty()
    {
        let bytes = &bytes[..bytes.len().min(4096)];
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let fallback = status
        .annotations
        .get(ANNOTATION_TERMINATION_MESSAGE_POLICY)
        .is_some_and(|p| p == "FallbackToLogsOnError");
    if fallback && status.exit_code != 0 {
        let log = std::fs::read_to_string(&status.log_path).unwrap_or_default();
        return log_tail(&log, 80, 2048);
    }
    String::new()
}

/// The last `lines` messages of a CRI log (`<time> <stream> <P|F> <text>` per line), joined,
/// keeping at most `max` bytes from the end.
pub fn log_tail(log: &str, lines: usize, max: usize) -> String {
    let texts: Vec<&str> = log
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .collect();
    let start = texts.len().saturating_sub(lines);
    let mut text = texts[start..].join("\n");
    if text.len() > max {
        let mut cut = text.len() - max;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = text[cut..].to_owned();
    }
    text
}

/// The managed `/etc/hosts` of a pod.
pub fn etc_hosts(pod: &Pod, pod_ip: Option<&str>) -> String {
    let mut text = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = pod_ip {
        text.push_str(&format!("{ip}\t{}\n", hostname(pod)));
    }
    for alias in pod
        .spec
        .iter()
        .flat_map(|s| s.host_aliases.iter().flatten())
    {
        text.push_str(&format!(
            "{}\t{}\n",
            alias.ip,
            alias.hostnames.clone().unwrap_or_default().join("\t")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "prod", "uid": "u1", "labels": {"app": "w"}},
            "spec": spec
        }))
        .expect("pod")
    }

    #[test]
    fn resources_become_cgroup_values() {
        let p = pod(
            serde_json::json!({"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}}]}),
        );
        let spec = p.spec.clone().expect("spec");
        let r = linux_resources(&p, &spec.containers[0], 1 << 30, 0);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!((r.cpu_quota, r.cpu_period), (50_000, 100_000));
        assert_eq!(r.memory_limit_in_bytes, 128 << 20);
        assert_eq!(r.oom_score_adj, 1000 - 1000 * (64 << 20) / (1 << 30));
        assert_eq!(cgroup_parent(&p), "/kubepods/burstable/podu1");
    }

    #[test]
    fn oom_scores_never_go_below_our_own() {
        let p = pod(
            serde_json::json!({"containers": [{"name": "c", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}}}]}),
        );
        let spec = p.spec.clone().expect("spec");
        assert_eq!(
            linux_resources(&p, &spec.containers[0], 1 << 32, 0).oom_score_adj,
            0
        );
        assert_eq!(
            linux_resources(&p, &spec.containers[0], 1 << 32, -1000).oom_score_adj,
            -997
        );
    }

    #[test]
    fn commands_expand_env_and_labels_name_the_pod() {
        let p = pod(
            serde_json::json!({"containers": [{"name": "c", "image": "busybox",
            "command": ["sh", "-c"], "args": ["echo $(GREETING)"]}]}),
        );
        let spec = p.spec.clone().expect("spec");
        let env = [("GREETING".to_owned(), "hi".to_owned())];
        let config = container_config(
            &p,
            &spec.containers[0],
            ContainerInputs {
                attempt: 2,
                env: &env,
                mounts: vec![],
                node_memory: 0,
                min_oom_score_adj: 0,
            },
        );
        assert_eq!(config.args, ["echo hi"]);
        assert_eq!(config.log_path, "c/2.log");
        assert_eq!(config.labels[LABEL_POD_UID], "u1");
        assert_eq!(config.labels[LABEL_CONTAINER_NAME], "c");
    }

    #[test]
    fn log_tails_keep_the_last_messages() {
        let log = "2026-01-01T00:00:00Z stdout F one\n2026-01-01T00:00:01Z stderr F two words\n";
        assert_eq!(log_tail(log, 80, 2048), "one\ntwo words");
        assert_eq!(log_tail(log, 1, 2048), "two words");
        assert_eq!(log_tail(log, 80, 5), "words");
    }

    #[test]
    fn cluster_first_falls_back_to_the_host_without_cluster_dns() {
        let p = pod(serde_json::json!({"containers": []}));
        let host = Dns::from_resolv_conf(
            "nameserver 1.1.1.1\nsearch example.org\noptions edns0\n",
            None,
        );
        let d = host.for_pod(&p);
        assert_eq!(d.servers, ["1.1.1.1"]);
        let cluster = Dns::from_resolv_conf("nameserver 1.1.1.1\n", Some("10.43.0.10".into()));
        let d = cluster.for_pod(&p);
        assert_eq!(d.servers, ["10.43.0.10"]);
        assert_eq!(d.searches[0], "prod.svc.cluster.local");
        assert_eq!(d.options, ["ndots:5"]);
    }

    #[test]
    fn sandboxes_carry_hostname_ports_and_logs() {
        let p = pod(serde_json::json!({"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}]}));
        let c = sandbox_config(&p, 0, Path::new("/logs"), &Dns::default());
        assert_eq!(c.hostname, "web");
        assert_eq!(c.log_directory, "/logs/prod_web_u1");
        assert_eq!(c.port_mappings.len(), 1);
        assert_eq!(c.labels["app"], "w");
        assert_eq!(c.labels[LABEL_POD_NAMESPACE], "prod");
    }
}
