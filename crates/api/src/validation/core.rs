//! Validation of the core group's kinds other than Pod: services, config maps, secrets,
//! namespaces, nodes, volumes and claims, endpoints, limit ranges, quotas and templates.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use base64::Engine as _;
use serde_json::Value;
use tug_apimachinery::validation::{self as v, BadValue, ErrorList, FieldError, Path};

use super::meta::{self, NameRule, kube_finalizer_name};
use super::pod::{
    self, nfs, port_num_or_name, protocol, quantity, resource_list, resource_name, taint_effect,
};
use super::util::{
    arr, bool_of, dns1123_label, dns1123_subdomain, get, go_quote, go_str_map, immutable, int_of,
    label_selector, labels, map_of, msgs, nonnegative, qualified_name, s, semantic_eq, sorted,
    str_list, str_map, str_of,
};

const MAX_SECRET_SIZE: usize = 1024 * 1024;
const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";
const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

fn spec_of(obj: &Value) -> &Value {
    get(obj, "spec").unwrap_or(&Value::Null)
}

/// `IsValidIP` errors for `ip` at `p`.
fn ip(ip: &str, p: &Path) -> ErrorList {
    if ip.parse::<IpAddr>().is_ok() {
        ErrorList::new()
    } else {
        FieldError::invalid(p, ip, INVALID_IP).into()
    }
}

// ---------------------------------------------------------------------------------------------
// PodTemplate and ReplicationController.

/// `ValidatePodTemplate`.
pub(super) fn pod_template(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(pod_template_spec_only(obj));
    errs
}

/// The `template` of a PodTemplate.
pub(super) fn pod_template_spec_only(obj: &Value) -> ErrorList {
    pod::validate_pod_template_spec(get(obj, "template"), &Path::new("template"))
}

/// `ValidateReplicationController` / `ValidateReplicationControllerUpdate`.
pub(super) fn replication_controller(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = match old {
        None => meta::validate_object_meta(obj, true, NameRule::Subdomain),
        Some(old) => meta::validate_object_meta_update(obj, old),
    };
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    errs.append(nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        &sp.child("minReadySeconds"),
    ));
    let selector = str_map(spec, "selector").unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required(&sp.child("selector"), ""));
    }
    errs.append(nonnegative(
        int_of(spec, "replicas").unwrap_or(0),
        &sp.child("replicas"),
    ));
    let tp = sp.child("template");
    match get(spec, "template") {
        None => errs.push(FieldError::required(&tp, "")),
        Some(tpl) => {
            let tpl_labels = get(tpl, "metadata").and_then(|m| str_map(m, "labels"));
            let matches = selector.iter().all(|(k, v)| {
                tpl_labels
                    .as_ref()
                    .is_some_and(|l| l.get(k).is_some_and(|x| x == v))
            });
            if !selector.is_empty() && !matches {
                errs.push(FieldError::invalid(
                    &tp.child("metadata").child("labels"),
                    BadValue::Raw(go_str_map(tpl_labels.as_ref())),
                    "`selector` does not match template `labels`",
                ));
            }
            errs.append(pod::validate_pod_template_spec(Some(tpl), &tp));
            errs.append(template_restart_always(tpl, &tp, "ReplicationController"));
        }
    }
    errs
}

/// The pod template rules of replica-style controllers: `restartPolicy: Always`, no
/// `activeDeadlineSeconds`.
pub(super) fn template_restart_always(tpl: &Value, tp: &Path, kind: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let tspec = get(tpl, "spec").unwrap_or(&Value::Null);
    let rp = s(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Service.

fn cluster_ips(spec: &Value) -> Vec<String> {
    let ips = str_list(spec, "clusterIPs");
    if ips.is_empty() {
        match s(spec, "clusterIP") {
            "" => Vec::new(),
            one => vec![one.to_owned()],
        }
    } else {
        ips
    }
}

fn is_headless(spec: &Value) -> bool {
    s(spec, "type") == "ClusterIP" && cluster_ips(spec) == ["None"]
}

/// `ValidateService`.
pub(super) fn service(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Dns1035);
    errs.append(service_spec(obj));
    errs
}

fn service_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let ty = s(spec, "type");
    let ports = arr(spec, "ports");
    let headless = is_headless(spec);
    let ips = cluster_ips(spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(&sp.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            &sp.child("clusterIPs").index(0),
            "None",
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !ips.is_empty() {
                errs.push(FieldError::forbidden(
                    &sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = s(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required(&sp.child("externalName"), ""));
            } else {
                errs.append(dns1123_subdomain(cname, &sp.child("externalName")));
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = sp.child("ports").index(i);
        let name = s(port, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else if !name.is_empty() {
            errs.append(dns1123_label(name, &p.child("name")));
            if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        let num = int_of(port, "port").unwrap_or(0);
        for m in v::is_valid_port_num(num) {
            errs.push(FieldError::invalid(&p.child("port"), num, m));
        }
        errs.append(protocol(s(port, "protocol"), &p.child("protocol")));
        errs.append(port_num_or_name(
            get(port, "targetPort"),
            &p.child("targetPort"),
        ));
        if let Some(ap) = str_of(port, "appProtocol") {
            errs.append(qualified_name(ap, &p.child("appProtocol")));
        }
    }
    errs.append(labels(spec, "selector", &sp.child("selector")));
    match s(spec, "sessionAffinity") {
        "" => errs.push(FieldError::required(&sp.child("sessionAffinity"), "")),
        "ClientIP" => {
            let timeout = spec
                .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .and_then(Value::as_i64);
            match timeout {
                None => errs.push(FieldError::required(
                    &sp.child("sessionAffinityConfig")
                        .child("clientIP")
                        .child("timeoutSeconds"),
                    "",
                )),
                Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                    &sp.child("sessionAffinityConfig")
                        .child("clientIP")
                        .child("timeoutSeconds"),
                    t,
                    "must be greater than 0 and less than 86400",
                )),
                Some(_) => {}
            }
        }
        "None" => {
            if get(spec, "sessionAffinityConfig").is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    if ty != "ExternalName" {
        for (i, cip) in ips.iter().enumerate() {
            if i == 0 && cip == "None" {
                if ips.len() > 1 {
                    errs.push(FieldError::invalid(
                        &sp.child("clusterIPs"),
                        ips.clone(),
                        "'None' must be the first and only value",
                    ));
                }
                continue;
            }
            errs.append(ip(cip, &sp.child("clusterIPs").index(i)));
        }
    }
    for (i, eip) in str_list(spec, "externalIPs").iter().enumerate() {
        errs.append(ip(eip, &sp.child("externalIPs").index(i)));
    }
    match ty {
        "" => errs.push(FieldError::required(&sp.child("type"), "")),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.push(FieldError::not_supported(
            &sp.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int_of(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = int_of(port, "nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((s(port, "protocol"), np)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let key = (s(port, "protocol"), int_of(port, "port").unwrap_or(0));
        if !seen.insert(key) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i),
                BadValue::Raw(format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    go_quote(key.0),
                    key.1
                )),
            ));
        }
    }
    let etp = s(spec, "externalTrafficPolicy");
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !str_list(spec, "externalIPs").is_empty());
    if externally_accessible {
        match etp {
            "" => errs.push(FieldError::required(&sp.child("externalTrafficPolicy"), "")),
            "Cluster" | "Local" => {}
            other => errs.push(FieldError::not_supported(
                &sp.child("externalTrafficPolicy"),
                other,
                &["Cluster", "Local"],
            )),
        }
    } else if !etp.is_empty() {
        errs.push(FieldError::invalid(
            &sp.child("externalTrafficPolicy"),
            etp,
            "may only be set for externally-accessible services",
        ));
    }
    if let Some(itp) = str_of(spec, "internalTrafficPolicy")
        && itp != "Cluster"
        && itp != "Local"
    {
        errs.push(FieldError::not_supported(
            &sp.child("internalTrafficPolicy"),
            itp,
            &["Cluster", "Local"],
        ));
    }
    errs
}

/// `ValidateServiceUpdate`: primary cluster IPs may not change once set.
pub(super) fn service_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let p = Path::new("spec").child("clusterIPs");
    let external = s(spec, "type") == "ExternalName" || s(old_spec, "type") == "ExternalName";
    let both_headless = is_headless(spec) && is_headless(old_spec);
    if !(external || both_headless) {
        let (ips, old_ips) = (cluster_ips(spec), cluster_ips(old_spec));
        if ips.len() == old_ips.len() {
            for (i, o) in old_ips.iter().enumerate() {
                if ips.get(i) != Some(o) {
                    errs.push(FieldError::invalid(
                        &p.index(i),
                        ips.clone(),
                        "may not change once set",
                    ));
                }
            }
        } else if old_ips.len() > ips.len() {
            if ips.is_empty() {
                errs.push(FieldError::invalid(
                    &p.index(0),
                    ips.clone(),
                    "primary clusterIP can not be unset",
                ));
            } else if ips[0] != old_ips[0] {
                errs.push(FieldError::invalid(
                    &p.index(0),
                    ips.clone(),
                    "may not change once set",
                ));
            }
            if ips.len() == 1 && s(spec, "ipFamilyPolicy") != "SingleStack" {
                errs.push(FieldError::invalid(
                    &p.index(0),
                    ips.clone(),
                    "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !old_ips.is_empty() && ips.first() != old_ips.first() {
            errs.push(FieldError::invalid(
                &p.index(0),
                ips.clone(),
                "may not change once set",
            ));
        }
    }
    errs.append(service_spec(new));
    errs
}

// ---------------------------------------------------------------------------------------------
// ConfigMap and Secret.

/// `ValidateConfigMap`.
pub(super) fn config_map(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    let mut total = 0;
    let binary = map_of(obj, "binaryData");
    if let Some(data) = map_of(obj, "data") {
        for (k, val) in data.iter().collect::<BTreeMap<_, _>>() {
            let p = Path::new("data").key(k);
            errs.append(msgs(k, &p, v::is_config_map_key(k)));
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(FieldError::invalid(
                    &p,
                    k.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
            total += val.as_str().map_or(0, str::len);
        }
    }
    if let Some(binary) = binary {
        for (k, val) in binary.iter().collect::<BTreeMap<_, _>>() {
            errs.append(msgs(
                k,
                &Path::new("binaryData").key(k),
                v::is_config_map_key(k),
            ));
            total += decoded_len(val);
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&Path::new(""), Some(MAX_SECRET_SIZE)));
    }
    errs
}

/// The byte length of a base64 `[]byte` field (the text length when it does not decode).
fn decoded_len(v: &Value) -> usize {
    let text = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_or(text.len(), |b| b.len())
}

fn decoded(v: &Value) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str()?)
        .ok()
}

/// `ValidateConfigMapUpdate`.
pub(super) fn config_map_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(immutable_contents(new, old, &["data", "binaryData"]));
    errs.append(config_map(new));
    errs
}

fn immutable_contents(new: &Value, old: &Value, fields: &[&str]) -> ErrorList {
    let mut errs = ErrorList::new();
    if bool_of(old, "immutable") == Some(true) {
        if bool_of(new, "immutable") != Some(true) {
            errs.push(FieldError::forbidden(
                &Path::new("immutable"),
                IMMUTABLE_WHEN_SET,
            ));
        }
        for f in fields {
            if !semantic_eq(get(new, f), get(old, f)) {
                errs.push(FieldError::forbidden(&Path::new(f), IMMUTABLE_WHEN_SET));
            }
        }
    }
    errs
}

/// `ValidateSecret`. `stringData` was merged into `data` by defaulting.
pub(super) fn secret(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    let dp = Path::new("data");
    let data = map_of(obj, "data");
    let mut total = 0;
    if let Some(data) = data {
        for (k, val) in data.iter().collect::<BTreeMap<_, _>>() {
            errs.append(msgs(k, &dp.key(k), v::is_config_map_key(k)));
            total += decoded_len(val);
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&dp, Some(MAX_SECRET_SIZE)));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let value = |k: &str| data.and_then(|d| d.get(k));
    match s(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let name = get(obj, "metadata")
                .and_then(|m| str_map(m, "annotations"))
                .and_then(|a| a.get("kubernetes.io/service-account.name").cloned())
                .unwrap_or_default();
            if name.is_empty() {
                errs.push(FieldError::required(
                    &Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if s(obj, "type") == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match value(key) {
                None => errs.push(FieldError::required(&dp.key(key), "")),
                Some(v) => {
                    let bytes = decoded(v).unwrap_or_default();
                    let parsed: Result<serde_json::Map<String, Value>, _> =
                        serde_json::from_slice(&bytes);
                    if let Err(e) = parsed {
                        errs.push(FieldError::invalid(
                            &dp.key(key),
                            "<secret contents redacted>",
                            go_json_error(&e, &bytes),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(&dp.key("username"), ""));
            errs.push(FieldError::required(&dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth"
            if value("ssh-privatekey")
                .and_then(decoded)
                .is_none_or(|b| b.is_empty()) =>
        {
            errs.push(FieldError::required(&dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(FieldError::required(&dp.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// An approximation of Go's `encoding/json` error text for a malformed document.
fn go_json_error(e: &serde_json::Error, bytes: &[u8]) -> String {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return "unexpected end of JSON input".to_owned();
    }
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of JSON input".to_owned(),
        serde_json::error::Category::Data => {
            "json: cannot unmarshal value into Go value of type map[string]interface {}".to_owned()
        }
        _ => format!("invalid character in JSON: {e}"),
    }
}

/// `ValidateSecretUpdate`.
pub(super) fn secret_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(immutable(
        get(new, "type"),
        get(old, "type"),
        BadValue::Str(s(new, "type").to_owned()),
        &Path::new("type"),
    ));
    errs.append(immutable_contents(new, old, &["data"]));
    errs.append(secret(new));
    errs
}

/// `ValidateServiceAccount`.
pub(super) fn service_account(obj: &Value) -> ErrorList {
    meta::validate_object_meta(obj, true, NameRule::Subdomain)
}

// ---------------------------------------------------------------------------------------------
// Namespace and Node.

/// `ValidateNamespace`.
pub(super) fn namespace(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, false, NameRule::Label);
    let p = Path::new("spec").child("finalizers");
    for f in str_list(spec_of(obj), "finalizers") {
        errs.append(v::validate_finalizer_name(&f, &p));
        errs.append(kube_finalizer_name(&f, &p));
    }
    errs
}

/// `ValidateNode`.
pub(super) fn node(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, false, NameRule::Subdomain);
    errs.append(node_spec(obj));
    errs
}

fn node_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let mut unique: HashSet<(String, String)> = HashSet::new();
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let p = sp.child("taints").index(i);
        let key = s(t, "key");
        errs.append(v::validate_label_name(key, &p.child("key")));
        let value = s(t, "value");
        let problems = v::is_valid_label_value(value);
        if !problems.is_empty() {
            errs.push(FieldError::invalid(
                &p.child("value"),
                value,
                problems.join(";"),
            ));
        }
        let effect = s(t, "effect");
        if effect.is_empty() {
            errs.push(FieldError::required(&p.child("effect"), ""));
        } else {
            errs.append(taint_effect(effect, &p.child("effect")));
        }
        if !unique.insert((effect.to_owned(), key.to_owned())) {
            let mut dup = FieldError::duplicate(&p, BadValue::from(t));
            dup.detail = "taints must be unique by key and effect pair".to_owned();
            errs.push(dup);
        }
    }
    let cidrs = str_list(spec, "podCIDRs");
    for (i, cidr) in cidrs.iter().enumerate() {
        if !is_cidr(cidr) {
            errs.push(FieldError::invalid(
                &sp.child("podCIDRs").index(i),
                cidr.as_str(),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    if cidrs.len() > 2 {
        errs.push(FieldError::invalid(
            &sp.child("podCIDRs"),
            BadValue::Raw(super::util::go_str_slice(&cidrs, true)),
            "may specify no more than one CIDR for each IP family",
        ));
    }
    errs
}

fn is_cidr(text: &str) -> bool {
    let Some((addr, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().is_ok_and(|b| b <= max)
}

/// `ValidateNodeUpdate`: pod CIDRs and provider ID may only go from unset to set.
pub(super) fn node_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(node_spec(new));
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let old_cidrs = str_list(old_spec, "podCIDRs");
    if !old_cidrs.is_empty() && str_list(spec, "podCIDRs") != old_cidrs {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("podCIDRs"),
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_provider = s(old_spec, "providerID");
    if !old_provider.is_empty() && s(spec, "providerID") != old_provider {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Persistent volumes and claims.

fn access_modes(spec: &Value, p: &Path, required_detail: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let modes = str_list(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            &p.child("accessModes"),
            required_detail,
        ));
    }
    for m in &modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(
                &p.child("accessModes"),
                m.as_str(),
                ACCESS_MODES,
            ));
        }
    }
    if modes.iter().any(|m| m == "ReadWriteOncePod")
        && modes.iter().any(|m| m != "ReadWriteOncePod")
    {
        errs.push(FieldError::forbidden(
            &p.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

fn volume_mode(spec: &Value, p: &Path) -> ErrorList {
    match str_of(spec, "volumeMode") {
        Some(m) if !VOLUME_MODES.contains(&m) => {
            FieldError::not_supported(&p.child("volumeMode"), m, VOLUME_MODES).into()
        }
        _ => ErrorList::new(),
    }
}

const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
    "flocker",
];

/// `ValidatePersistentVolume`.
pub(super) fn persistent_volume(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, false, NameRule::Subdomain);
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    errs.append(access_modes(spec, &sp, ""));
    let capacity = map_of(spec, "capacity");
    if capacity.is_none_or(|c| c.is_empty()) {
        errs.push(FieldError::required(&sp.child("capacity"), ""));
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        errs.push(FieldError::not_supported(
            &sp.child("capacity"),
            BadValue::from(get(spec, "capacity").unwrap_or(&Value::Null)),
            &["storage"],
        ));
    }
    if let Some(capacity) = capacity {
        for (k, q) in capacity.iter().collect::<BTreeMap<_, _>>() {
            if let Some(q) = quantity(q)
                && q.signum() <= 0
            {
                errs.push(FieldError::invalid(
                    &sp.child("capacity").key(k),
                    q.to_string(),
                    "must be greater than zero",
                ));
            }
        }
    }
    let class = s(spec, "storageClassName");
    if !class.is_empty() {
        errs.append(msgs(
            class,
            &sp.child("storageClassName"),
            v::name_is_dns_subdomain(class, false),
        ));
    }
    errs.append(volume_mode(spec, &sp));
    let mut count = 0;
    for &kind in PV_SOURCES {
        let Some(src) = get(spec, kind) else {
            continue;
        };
        let p = sp.child(kind);
        if count > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        match kind {
            "hostPath" if s(src, "path").is_empty() => {
                errs.push(FieldError::required(&p.child("path"), ""));
            }
            "nfs" => errs.append(nfs(src, &p)),
            "local" => {
                let path = s(src, "path");
                if path.is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                }
            }
            "csi" => {
                if s(src, "driver").is_empty() {
                    errs.push(FieldError::required(&p.child("driver"), ""));
                }
                if s(src, "volumeHandle").is_empty() {
                    errs.push(FieldError::required(&p.child("volumeHandle"), ""));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(&sp, "must specify a volume type"));
    }
    let policy = s(spec, "persistentVolumeReclaimPolicy");
    if !["Delete", "Recycle", "Retain"].contains(&policy) {
        errs.push(FieldError::not_supported(
            &sp.child("persistentVolumeReclaimPolicy"),
            policy,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    errs
}

/// `ValidatePersistentVolumeUpdate`: the volume source and mode are immutable.
pub(super) fn persistent_volume_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(persistent_volume(new));
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let changed = PV_SOURCES
        .iter()
        .any(|k| !semantic_eq(get(spec, k), get(old_spec, k)));
    if changed {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("persistentvolumesource"),
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    errs.append(immutable(
        get(spec, "volumeMode"),
        get(old_spec, "volumeMode"),
        str_of(spec, "volumeMode").map_or(BadValue::Null, BadValue::from),
        &Path::new("volumeMode"),
    ));
    errs
}

/// `ValidatePersistentVolumeClaim`.
pub(super) fn persistent_volume_claim(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(pvc_spec(spec_of(obj), &Path::new("spec")));
    errs
}

/// `ValidatePersistentVolumeClaimSpec` (also used for StatefulSet claim templates).
pub(super) fn pvc_spec(spec: &Value, sp: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    errs.append(access_modes(spec, sp, "at least 1 access mode is required"));
    if let Some(sel) = label_selector(spec, "selector") {
        errs.append(tug_apimachinery::labels::validate_label_selector(
            &sel,
            Default::default(),
            &sp.child("selector"),
        ));
    }
    let storage_path = sp.child("resources").key("storage");
    match spec.pointer("/resources/requests/storage") {
        None | Some(Value::Null) => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => {
            if let Some(q) = quantity(q)
                && q.signum() <= 0
            {
                errs.push(FieldError::invalid(
                    &storage_path,
                    q.to_string(),
                    "must be greater than zero",
                ));
            }
        }
    }
    if let Some(class) = str_of(spec, "storageClassName")
        && !class.is_empty()
    {
        errs.append(msgs(
            class,
            &sp.child("storageClassName"),
            v::name_is_dns_subdomain(class, false),
        ));
    }
    errs.append(volume_mode(spec, sp));
    errs
}

/// `ValidatePersistentVolumeClaimUpdate`: the spec is immutable except the bound volume's
/// name (once), requested storage and the volume attributes class.
pub(super) fn persistent_volume_claim_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(persistent_volume_claim(new));
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let mut munged_old = old_spec.clone();
    let mut munged_new = spec.clone();
    if s(old_spec, "volumeName").is_empty()
        && let Some(m) = munged_old.as_object_mut()
    {
        match get(spec, "volumeName") {
            Some(v) => m.insert("volumeName".into(), v.clone()),
            None => m.remove("volumeName"),
        };
    }
    let bound = get(new, "status").is_some_and(|st| s(st, "phase") == "Bound");
    if bound
        && let Some(req) = munged_new
            .pointer_mut("/resources/requests")
            .and_then(Value::as_object_mut)
    {
        match old_spec.pointer("/resources/requests/storage") {
            Some(v) => req.insert("storage".into(), v.clone()),
            None => req.remove("storage"),
        };
    }
    for m in [&mut munged_old, &mut munged_new] {
        if let Some(m) = m.as_object_mut() {
            m.remove("volumeAttributesClassName");
        }
    }
    if !semantic_eq(Some(&munged_new), Some(&munged_old)) {
        errs.push(FieldError::forbidden(
            &Path::new("spec"),
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    let size = spec
        .pointer("/resources/requests/storage")
        .and_then(quantity);
    let old_size = old_spec
        .pointer("/resources/requests/storage")
        .and_then(quantity);
    if let (Some(n), Some(o)) = (size, old_size) {
        let capacity = old
            .pointer("/status/capacity/storage")
            .and_then(quantity)
            .unwrap_or_default();
        // RecoverVolumeExpansionFailure is on by default in v1.33.
        if n < o && n <= capacity {
            errs.push(FieldError::forbidden(
                &Path::new("spec")
                    .child("resources")
                    .child("requests")
                    .child("storage"),
                "field can not be less than status.capacity",
            ));
        }
    }
    errs.append(immutable(
        get(spec, "volumeMode"),
        get(old_spec, "volumeMode"),
        str_of(spec, "volumeMode").map_or(BadValue::Null, BadValue::from),
        &Path::new("volumeMode"),
    ));
    errs
}

// ---------------------------------------------------------------------------------------------
// Endpoints, LimitRange, ResourceQuota.

/// `ValidateEndpointsCreate`.
pub(super) fn endpoints(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(endpoints_spec(obj));
    errs
}

/// The subsets of an Endpoints object.
pub(super) fn endpoints_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ss) in arr(obj, "subsets").iter().enumerate() {
        let p = Path::new("subsets").index(i);
        if arr(ss, "addresses").is_empty() && arr(ss, "notReadyAddresses").is_empty() {
            errs.push(FieldError::required(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for key in ["addresses", "notReadyAddresses"] {
            for (j, addr) in arr(ss, key).iter().enumerate() {
                let ap = p.child(key).index(j);
                errs.append(ip(s(addr, "ip"), &ap.child("ip")));
                let host = s(addr, "hostname");
                if !host.is_empty() {
                    errs.append(dns1123_label(host, &ap.child("hostname")));
                }
                if let Some(node) = str_of(addr, "nodeName") {
                    errs.append(msgs(
                        node,
                        &ap.child("nodeName"),
                        v::name_is_dns_subdomain(node, false),
                    ));
                }
            }
        }
        let ports = arr(ss, "ports");
        for (j, port) in ports.iter().enumerate() {
            let pp = p.child("ports").index(j);
            let name = s(port, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(&pp.child("name"), ""));
            } else if !name.is_empty() {
                errs.append(dns1123_label(name, &pp.child("name")));
            }
            let num = int_of(port, "port").unwrap_or(0);
            for m in v::is_valid_port_num(num) {
                errs.push(FieldError::invalid(&pp.child("port"), num, m));
            }
            errs.append(protocol(s(port, "protocol"), &pp.child("protocol")));
            if let Some(ap) = str_of(port, "appProtocol") {
                errs.append(qualified_name(ap, &pp.child("appProtocol")));
            }
        }
    }
    errs
}

/// `ValidateLimitRange`.
pub(super) fn limit_range(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(limit_range_spec(obj));
    errs
}

/// The items of a LimitRange.
pub(super) fn limit_range_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut types = HashSet::new();
    for (i, item) in arr(spec_of(obj), "limits").iter().enumerate() {
        let p = Path::new("spec").child("limits").index(i);
        let ty = s(item, "type");
        if !types.insert(ty) {
            errs.push(FieldError::duplicate(&p.child("type"), ty));
        }
        let read = |key: &str| -> BTreeMap<String, tug_apimachinery::Quantity> {
            map_of(item, key)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| quantity(v).map(|q| (k.clone(), q)))
                        .collect()
                })
                .unwrap_or_default()
        };
        for key in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            if let Some(list) = get(item, key) {
                for k in list.as_object().into_iter().flat_map(|m| m.keys()) {
                    errs.append(resource_name(k, &p.child(key).key(k)));
                }
            }
        }
        if ty == "Pod" {
            for key in ["default", "defaultRequest"] {
                if map_of(item, key).is_some_and(|m| !m.is_empty()) {
                    errs.push(FieldError::forbidden(
                        &p.child(key),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
        }
        let (max, min, default, default_request) = (
            read("max"),
            read("min"),
            read("default"),
            read("defaultRequest"),
        );
        let keys: BTreeSet<&String> = max
            .keys()
            .chain(min.keys())
            .chain(default.keys())
            .chain(default_request.keys())
            .collect();
        for k in keys {
            let (mx, mn, d, dr) = (
                max.get(k),
                min.get(k),
                default.get(k),
                default_request.get(k),
            );
            let raw = |q: &tug_apimachinery::Quantity| BadValue::Raw(q.to_string());
            if let (Some(mn), Some(mx)) = (mn, mx)
                && mn > mx
            {
                errs.push(FieldError::invalid(
                    &p.child("min").key(k),
                    raw(mn),
                    format!("min value {mn} is greater than max value {mx}"),
                ));
            }
            if let (Some(dr), Some(mn)) = (dr, mn)
                && mn > dr
            {
                errs.push(FieldError::invalid(
                    &p.child("defaultRequest").key(k),
                    raw(dr),
                    format!("min value {mn} is greater than default request value {dr}"),
                ));
            }
            if let (Some(dr), Some(mx)) = (dr, mx)
                && dr > mx
            {
                errs.push(FieldError::invalid(
                    &p.child("defaultRequest").key(k),
                    raw(dr),
                    format!("default request value {dr} is greater than max value {mx}"),
                ));
            }
            if let (Some(dr), Some(d)) = (dr, d)
                && dr > d
            {
                errs.push(FieldError::invalid(
                    &p.child("defaultRequest").key(k),
                    raw(dr),
                    format!("default request value {dr} is greater than default limit value {d}"),
                ));
            }
            if let (Some(d), Some(mn)) = (d, mn)
                && mn > d
            {
                errs.push(FieldError::invalid(
                    &p.child("default").key(k),
                    raw(mn),
                    format!("min value {mn} is greater than default value {d}"),
                ));
            }
            if let (Some(d), Some(mx)) = (d, mx)
                && d > mx
            {
                errs.push(FieldError::invalid(
                    &p.child("default").key(k),
                    raw(mx),
                    format!("default value {d} is greater than max value {mx}"),
                ));
            }
        }
    }
    errs
}

/// `ValidateResourceQuota`.
pub(super) fn resource_quota(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(resource_quota_spec(obj));
    errs
}

/// The hard limits and scopes of a ResourceQuota.
pub(super) fn resource_quota_spec(obj: &Value) -> ErrorList {
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let mut errs = ErrorList::new();
    if let Some(hard) = get(spec, "hard") {
        errs.append(resource_list(hard, &sp.child("hard"), false));
    }
    let valid_scopes = [
        "Terminating",
        "NotTerminating",
        "BestEffort",
        "NotBestEffort",
        "PriorityClass",
        "CrossNamespacePodAffinity",
        "VolumeAttributesClass",
    ];
    for scope in str_list(spec, "scopes") {
        if !valid_scopes.contains(&scope.as_str()) {
            errs.push(FieldError::not_supported(
                &sp.child("scopes"),
                scope.as_str(),
                &sorted(&valid_scopes),
            ));
        }
    }
    errs
}
