//! A container's environment as upstream's kubelet builds it (`makeEnvironmentVariables`):
//! service link variables first (`enableServiceLinks`), then `envFrom`, then `env` in order, `$(VAR)` expanded against what is defined so far;
//! `valueFrom` reads configMap and secret keys, pod fields and resource fields. Pure: the
//! worker fetches the referenced objects first ([`referenced`]) and passes them in.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod, Service};
use tug_apimachinery::quantity::Quantity;

/// Why an environment cannot be built; the message becomes the container's
/// `CreateContainerConfigError` message, worded as upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A referenced (non-optional) ConfigMap does not exist.
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    /// A referenced (non-optional) Secret does not exist.
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    /// A referenced key is missing from a ConfigMap.
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey {
        /// The key.
        key: String,
        /// The namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
    },
    /// A referenced key is missing from a Secret.
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey {
        /// The key.
        key: String,
        /// The namespace.
        namespace: String,
        /// The Secret.
        name: String,
    },
    /// A fieldRef or resourceFieldRef names something we cannot resolve.
    #[error("unsupported {kind} {path:?} in env {var}")]
    Unsupported {
        /// `fieldRef` or `resourceFieldRef`.
        kind: &'static str,
        /// The path or resource.
        path: String,
        /// The variable.
        var: String,
    },
}

/// The objects and facts the environment may read. A `None` object was looked up and not
/// found.
#[derive(Debug, Default)]
pub struct Sources {
    /// ConfigMaps of the pod's namespace by name.
    pub config_maps: HashMap<String, Option<BTreeMap<String, String>>>,
    /// Secrets of the pod's namespace by name (values decoded).
    pub secrets: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    /// The pod's IPs.
    pub pod_ips: Vec<String>,
    /// The node's IPs.
    pub host_ips: Vec<String>,
    /// The node's allocatable CPU in millicores (default for unset CPU limits).
    pub node_cpu_milli: i64,
    /// The node's allocatable memory in bytes (default for unset memory limits).
    pub node_memory: i64,
    /// Service link variables ([`service_env`]), defined before everything else.
    pub services: Vec<(String, String)>,
}

/// Docker-link style variables for services (upstream's `FromServices`): for each service
/// with a cluster IP, `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT[_<PORT>]` and
/// `<NAME>_PORT…`, names upper-cased with `-` as `_`.
pub fn service_env(services: &[Service]) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    let mut sorted: Vec<&Service> = services.iter().collect();
    sorted.sort_by_key(|s| s.metadata.name.clone());
    for service in sorted {
        let Some(spec) = &service.spec else { continue };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = service
            .metadata
            .name
            .clone()
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "_");
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        vars.push((format!("{name}_SERVICE_HOST"), ip.clone()));
        vars.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                vars.push((
                    format!(
                        "{name}_SERVICE_PORT_{}",
                        port_name.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let url = |p: &k8s_openapi::api::core::v1::ServicePort| {
            let proto = p
                .protocol
                .clone()
                .unwrap_or_else(|| "TCP".into())
                .to_lowercase();
            format!("{proto}://{ip}:{}", p.port)
        };
        vars.push((format!("{name}_PORT"), url(first)));
        for p in &ports {
            let proto = p
                .protocol
                .clone()
                .unwrap_or_else(|| "TCP".into())
                .to_uppercase();
            let prefix = format!("{name}_PORT_{}_{proto}", p.port);
            vars.push((prefix.clone(), url(p)));
            vars.push((format!("{prefix}_PROTO"), proto.to_lowercase()));
            vars.push((format!("{prefix}_PORT"), p.port.to_string()));
            vars.push((format!("{prefix}_ADDR"), ip.clone()));
        }
    }
    vars
}

/// The ConfigMaps and Secrets `container`'s environment refers to.
pub fn referenced(container: &Container) -> (Vec<String>, Vec<String>) {
    let mut config_maps = Vec::new();
    let mut secrets = Vec::new();
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            config_maps.push(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(r) = &from.config_map_key_ref {
            config_maps.push(r.name.clone());
        }
        if let Some(r) = &from.secret_key_ref {
            secrets.push(r.name.clone());
        }
    }
    config_maps.sort();
    config_maps.dedup();
    secrets.sort();
    secrets.dedup();
    (config_maps, secrets)
}

/// Expands `$(VAR)` references in `input` from `vars`; `$$` is a literal `$`; unknown
/// references stay as written (upstream's `expansion.Expand`).
pub fn expand(input: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match vars(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment, in order.
pub fn resolve(
    pod: &Pod,
    container: &Container,
    sources: &Sources,
) -> Result<Vec<(String, String)>, Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, name: String, value: String| {
        if let Some(existing) = vars.iter_mut().find(|(n, _)| *n == name) {
            existing.1 = value;
        } else {
            vars.push((name, value));
        }
    };
    for (name, value) in &sources.services {
        set(&mut vars, name.clone(), value.clone());
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match sources.config_maps.get(&r.name).cloned().flatten() {
                Some(data) => {
                    for (k, v) in data {
                        set(&mut vars, format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(Error::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &from.secret_ref {
            match sources.secrets.get(&r.name).cloned().flatten() {
                Some(data) => {
                    for (k, v) in data {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(Error::SecretNotFound(r.name.clone())),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => {
                let defined = vars.clone();
                let lookup = move |name: &str| {
                    defined
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                };
                Some(expand(var.value.as_deref().unwrap_or(""), &lookup))
            }
            Some(from) => {
                if let Some(r) = &from.config_map_key_ref {
                    match sources.config_maps.get(&r.name).cloned().flatten() {
                        Some(data) => match data.get(&r.key) {
                            Some(v) => Some(v.clone()),
                            None if r.optional == Some(true) => None,
                            None => {
                                return Err(Error::ConfigMapKey {
                                    key: r.key.clone(),
                                    namespace: namespace.clone(),
                                    name: r.name.clone(),
                                });
                            }
                        },
                        None if r.optional == Some(true) => None,
                        None => return Err(Error::ConfigMapNotFound(r.name.clone())),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match sources.secrets.get(&r.name).cloned().flatten() {
                        Some(data) => match data.get(&r.key) {
                            Some(v) => Some(String::from_utf8_lossy(v).into_owned()),
                            None if r.optional == Some(true) => None,
                            None => {
                                return Err(Error::SecretKey {
                                    key: r.key.clone(),
                                    namespace: namespace.clone(),
                                    name: r.name.clone(),
                                });
                            }
                        },
                        None if r.optional == Some(true) => None,
                        None => return Err(Error::SecretNotFound(r.name.clone())),
                    }
                } else if let Some(r) = &from.field_ref {
                    Some(field_value(pod, &r.field_path, sources).ok_or_else(|| {
                        Error::Unsupported {
                            kind: "fieldRef",
                            path: r.field_path.clone(),
                            var: var.name.clone(),
                        }
                    })?)
                } else if let Some(r) = &from.resource_field_ref {
                    let target = match r.container_name.as_deref() {
                        Some(name) if !name.is_empty() => pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.containers.iter().find(|c| c.name == name))
                            .unwrap_or(container),
                        _ => container,
                    };
                    let divisor = r.divisor.as_ref().map(|d| d.0.as_str());
                    Some(
                        resource_value(target, &r.resource, divisor, sources).ok_or_else(|| {
                            Error::Unsupported {
                                kind: "resourceFieldRef",
                                path: r.resource.clone(),
                                var: var.name.clone(),
                            }
                        })?,
                    )
                } else {
                    None
                }
            }
        };
        if let Some(value) = value {
            set(&mut vars, var.name.clone(), value);
        }
    }
    Ok(vars)
}

/// The value of a downward-API field path (`metadata.labels['k']` and friends).
pub fn field_value(pod: &Pod, path: &str, sources: &Sources) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_owned)
    };
    if let Some(key) = subscript("metadata.labels['") {
        return Some(
            meta.labels
                .as_ref()
                .and_then(|l| l.get(&key).cloned())
                .unwrap_or_default(),
        );
    }
    if let Some(key) = subscript("metadata.annotations['") {
        return Some(
            meta.annotations
                .as_ref()
                .and_then(|l| l.get(&key).cloned())
                .unwrap_or_default(),
        );
    }
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" => sources.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => sources.pod_ips.join(","),
        "status.hostIP" => sources.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => sources.host_ips.join(","),
        _ => return None,
    })
}

/// A resourceFieldRef's value: limits fall back to the node's allocatable, rounded up to
/// whole divisors (`1` by default).
pub fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    sources: &Sources,
) -> Option<String> {
    let resources = container.resources.as_ref();
    let (map, name) = resource.split_once('.')?;
    let list = match map {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return None,
    };
    let declared = list
        .and_then(|l| l.get(name))
        .and_then(|q| Quantity::parse(&q.0).ok());
    let divisor = Quantity::parse(divisor.unwrap_or("1")).ok()?;
    match name {
        "cpu" => {
            let milli = match declared {
                Some(q) => q.milli_value(),
                None if map == "limits" => sources.node_cpu_milli,
                None => 0,
            };
            let d = divisor.milli_value().max(1);
            Some(
                ((milli + d - 1) / d)
                    .max(i64::from(map == "requests" || milli > 0))
                    .to_string(),
            )
        }
        "memory" | "ephemeral-storage" => {
            let bytes = match declared {
                Some(q) => q.value(),
                None if map == "limits" && name == "memory" => sources.node_memory,
                None => 0,
            };
            let d = divisor.value().max(1);
            Some(((bytes + d - 1) / d).to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: serde_json::Value) -> Pod {
        serde_json::from_value(yaml).expect("pod")
    }

    fn check(pod: &Pod, sources: &Sources) -> Result<Vec<(String, String)>, Error> {
        let spec = pod.spec.as_ref().expect("spec");
        resolve(pod, &spec.containers[0], sources)
    }

    fn web(env: serde_json::Value) -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "prod", "uid": "u1", "labels": {"app": "w"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox", "env": env,
                "resources": {"limits": {"memory": "64Mi"}}}]}
        }))
    }

    #[test]
    fn literals_expand_earlier_variables_and_keep_unknown_ones() {
        let p = web(serde_json::json!([
            {"name": "A", "value": "x"},
            {"name": "B", "value": "$(A)-$(NOPE)-$$(A)"},
        ]));
        let env = check(&p, &Sources::default()).expect("env");
        assert_eq!(env[1], ("B".into(), "x-$(NOPE)-$(A)".into()));
    }

    #[test]
    fn field_and_resource_refs_read_the_pod_and_node() {
        let p = web(serde_json::json!([
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ]));
        let sources = Sources {
            pod_ips: vec!["10.42.0.5".into()],
            node_cpu_milli: 2000,
            ..Default::default()
        };
        let env = check(&p, &sources).expect("env");
        let values: Vec<&str> = env.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["web", "w", "10.42.0.5", "64", "2"]);
    }

    #[test]
    fn missing_config_is_an_error_worded_as_upstream() {
        let p = web(serde_json::json!([
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
        ]));
        let err = check(&p, &Sources::default()).expect_err("missing");
        assert_eq!(err.to_string(), "configmap \"cfg\" not found");
        let sources = Sources {
            config_maps: HashMap::from([("cfg".into(), Some(BTreeMap::new()))]),
            ..Default::default()
        };
        let err = check(&p, &sources).expect_err("missing key");
        assert_eq!(err.to_string(), "couldn't find key k in ConfigMap prod/cfg");
    }

    #[test]
    fn optional_references_are_skipped_and_secrets_decoded() {
        let p = web(serde_json::json!([
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": true}}},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
        ]));
        let sources = Sources {
            secrets: HashMap::from([(
                "s".into(),
                Some(BTreeMap::from([("pw".into(), b"hunter2".to_vec())])),
            )]),
            ..Default::default()
        };
        let env = check(&p, &sources).expect("env");
        assert_eq!(env, [("S".to_owned(), "hunter2".to_owned())]);
    }

    #[test]
    fn services_become_docker_link_variables() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "my-db"},
            "spec": {"clusterIP": "10.43.0.12", "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}
        }))
        .expect("service");
        let vars: BTreeMap<String, String> = service_env(&[service]).into_iter().collect();
        assert_eq!(vars["MY_DB_SERVICE_HOST"], "10.43.0.12");
        assert_eq!(vars["MY_DB_SERVICE_PORT"], "5432");
        assert_eq!(vars["MY_DB_SERVICE_PORT_SQL"], "5432");
        assert_eq!(vars["MY_DB_PORT"], "tcp://10.43.0.12:5432");
        assert_eq!(vars["MY_DB_PORT_5432_TCP_ADDR"], "10.43.0.12");
        assert_eq!(vars["MY_DB_PORT_5432_TCP_PROTO"], "tcp");
    }

    #[test]
    fn env_from_comes_first_with_its_prefix_and_env_overrides_it() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", "envFrom": [{"prefix": "P_", "configMapRef": {"name": "cfg"}}],
                "env": [{"name": "P_a", "value": "override"}]}]}
        }));
        let sources = Sources {
            config_maps: HashMap::from([(
                "cfg".into(),
                Some(BTreeMap::from([
                    ("a".into(), "1".into()),
                    ("b".into(), "2".into()),
                ])),
            )]),
            ..Default::default()
        };
        let env = check(&p, &sources).expect("env");
        assert_eq!(
            env,
            [
                ("P_a".to_owned(), "override".to_owned()),
                ("P_b".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(referenced(&p.spec.expect("spec").containers[0]).0, ["cfg"]);
    }
}
