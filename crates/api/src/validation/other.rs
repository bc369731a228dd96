//! Validation of the smaller groups: autoscaling, policy, networking, RBAC, scheduling,
//! storage, coordination and discovery.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;
use tug_apimachinery::labels::{LabelSelectorValidationOptions, validate_label_selector};
use tug_apimachinery::validation::{self as v, BadValue, ErrorList, FieldError, Path};

use super::meta::{self, NameRule};
use super::pod::protocol;
use super::util::{
    IntOrStr, arr, bool_of, dns1123_label, get, go_quote, immutable, int_of, int_ptr,
    label_selector, msgs, qualified_name, s, semantic_eq, str_list, str_map, str_of,
};

fn spec_of(obj: &Value) -> &Value {
    get(obj, "spec").unwrap_or(&Value::Null)
}

fn selector_at(obj: &Value, key: &str, p: &Path) -> ErrorList {
    match label_selector(obj, key) {
        Some(sel) => validate_label_selector(
            &sel,
            LabelSelectorValidationOptions::default(),
            &p.child(key),
        ),
        None => ErrorList::new(),
    }
}

fn path_segment(value: &str, p: &Path) -> ErrorList {
    msgs(value, p, NameRule::PathSegment.check(value, false))
}

// ---------------------------------------------------------------------------------------------
// HorizontalPodAutoscaler.

/// `ValidateHorizontalPodAutoscaler`.
pub(super) fn hpa(obj: &Value, version: &str) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(hpa_spec(obj, version));
    errs
}

/// `validateHorizontalPodAutoscalerSpec` (v2 fields; v1's CPU target is checked as v1 has it).
pub(super) fn hpa_spec(obj: &Value, version: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let min = int_of(spec, "minReplicas");
    let max = int_of(spec, "maxReplicas").unwrap_or(0);
    if let Some(m) = min
        && m < 1
    {
        errs.push(FieldError::invalid(
            &sp.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if let Some(m) = min
        && max < m
    {
        errs.push(FieldError::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let rp = sp.child("scaleTargetRef");
    let target = get(spec, "scaleTargetRef").unwrap_or(&Value::Null);
    for key in ["kind", "name"] {
        let value = s(target, key);
        if value.is_empty() {
            errs.push(FieldError::required(&rp.child(key), ""));
        } else {
            errs.append(path_segment(value, &rp.child(key)));
        }
    }
    if version == "v1" {
        if let Some(t) = int_of(spec, "targetCPUUtilizationPercentage")
            && t < 1
        {
            errs.push(FieldError::invalid(
                &sp.child("metrics")
                    .index(0)
                    .child("resource")
                    .child("target")
                    .child("averageUtilization"),
                t,
                "must be greater than 0",
            ));
        }
        return errs;
    }
    for (i, metric) in arr(spec, "metrics").iter().enumerate() {
        errs.append(hpa_metric(metric, &sp.child("metrics").index(i)));
    }
    if let Some(b) = get(spec, "behavior") {
        let bp = sp.child("behavior");
        for key in ["scaleUp", "scaleDown"] {
            if let Some(rules) = get(b, key) {
                errs.append(scaling_rules(rules, &bp.child(key)));
            }
        }
    }
    errs
}

fn hpa_metric(metric: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let types = [
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    let ty = s(metric, "type");
    let key = match ty {
        "" => {
            errs.push(FieldError::required(
                &p.child("type"),
                "must specify a metric source type",
            ));
            return errs;
        }
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        "External" => "external",
        other => {
            errs.push(FieldError::not_supported(&p.child("type"), other, &types));
            return errs;
        }
    };
    let Some(src) = get(metric, key) else {
        errs.push(FieldError::required(
            &p.child(key),
            "must populate information for the given metric source",
        ));
        return errs;
    };
    let sp = p.child(key);
    if matches!(key, "resource" | "containerResource") {
        if s(src, "name").is_empty() {
            errs.push(FieldError::required(&sp.child("name"), ""));
        }
        if key == "containerResource" && s(src, "container").is_empty() {
            errs.push(FieldError::required(&sp.child("container"), ""));
        }
    } else if s(get(src, "metric").unwrap_or(&Value::Null), "name").is_empty() {
        errs.push(FieldError::required(
            &sp.child("metric").child("name"),
            "must specify a metric name",
        ));
    }
    if let Some(target) = get(src, "target") {
        let tp = sp.child("target");
        match s(target, "type") {
            "" => errs.push(FieldError::required(
                &tp.child("type"),
                "must specify a metric target type",
            )),
            "Utilization" | "Value" | "AverageValue" => {}
            other => errs.push(FieldError::not_supported(
                &tp.child("type"),
                other,
                &["AverageValue", "Utilization", "Value"],
            )),
        }
        if let Some(u) = int_of(target, "averageUtilization")
            && u < 1
        {
            errs.push(FieldError::invalid(
                &tp.child("averageUtilization"),
                u,
                "must be greater than 0",
            ));
        }
    } else {
        errs.push(FieldError::required(
            &sp.child("target"),
            "must specify a metric target",
        ));
    }
    errs
}

fn scaling_rules(rules: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(sp) = str_of(rules, "selectPolicy")
        && !["Disabled", "Max", "Min"].contains(&sp)
    {
        errs.push(FieldError::not_supported(
            &p.child("selectPolicy"),
            sp,
            &["Disabled", "Max", "Min"],
        ));
    }
    if let Some(w) = int_of(rules, "stabilizationWindowSeconds") {
        if w < 0 {
            errs.push(FieldError::invalid(
                &p.child("stabilizationWindowSeconds"),
                w,
                "must be greater than or equal to zero",
            ));
        } else if w > 3600 {
            errs.push(FieldError::invalid(
                &p.child("stabilizationWindowSeconds"),
                w,
                "must be less than or equal to 3600",
            ));
        }
    }
    let policies = arr(rules, "policies");
    if policies.is_empty() && s(rules, "selectPolicy") != "Disabled" {
        errs.push(FieldError::required(
            &p.child("policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, policy) in policies.iter().enumerate() {
        let pp = p.child("policies").index(i);
        let ty = s(policy, "type");
        if ty != "Pods" && ty != "Percent" {
            errs.push(FieldError::invalid(
                &pp.child("type"),
                ty,
                "must be either Pods or Percent",
            ));
        }
        let value = int_of(policy, "value").unwrap_or(0);
        if value <= 0 {
            errs.push(FieldError::invalid(
                &pp.child("value"),
                value,
                "must be greater than zero",
            ));
        }
        let period = int_of(policy, "periodSeconds").unwrap_or(0);
        if period <= 0 {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                period,
                "must be greater than zero",
            ));
        } else if period > 1800 {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                period,
                "must be less than or equal to 1800",
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// PodDisruptionBudget.

/// `ValidatePodDisruptionBudget`.
pub(super) fn pdb(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(pdb_spec(obj));
    errs
}

/// `ValidatePodDisruptionBudgetSpec`.
pub(super) fn pdb_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let min = IntOrStr::from_json(get(spec, "minAvailable"));
    let max = IntOrStr::from_json(get(spec, "maxUnavailable"));
    if min.is_some() && max.is_some() {
        errs.push(FieldError::invalid(
            &sp,
            BadValue::from(spec),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (key, value) in [("minAvailable", &min), ("maxUnavailable", &max)] {
        if let Some(val) = value {
            let p = sp.child(key);
            match val {
                IntOrStr::Str(text) => {
                    for m in v::is_valid_percent(text) {
                        errs.push(FieldError::invalid(&p, BadValue::Raw(val.go()), m));
                    }
                }
                IntOrStr::Int(n) => errs.append(v::validate_nonnegative_field(*n, &p)),
            }
            if val.percent().is_some_and(|n| n > 100) {
                errs.push(FieldError::invalid(
                    &p,
                    BadValue::Raw(val.go()),
                    "must not be greater than 100%",
                ));
            }
        }
    }
    errs.append(selector_at(spec, "selector", &sp));
    if let Some(policy) = str_of(spec, "unhealthyPodEvictionPolicy")
        && policy != "AlwaysAllow"
        && policy != "IfHealthyBudget"
    {
        errs.push(FieldError::not_supported(
            &sp.child("unhealthyPodEvictionPolicy"),
            policy,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Networking.

fn is_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = text.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

const INVALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// `ValidateNetworkPolicy`.
pub(super) fn network_policy(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(network_policy_spec(obj));
    errs
}

/// `ValidateNetworkPolicySpec`.
pub(super) fn network_policy_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    errs.append(selector_at(spec, "podSelector", &sp));
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in arr(spec, dir).iter().enumerate() {
            let rp = sp.child(dir).index(i);
            for (j, port) in arr(rule, "ports").iter().enumerate() {
                errs.append(network_policy_port(port, &rp.child("ports").index(j)));
            }
            for (j, peer) in arr(rule, peers).iter().enumerate() {
                errs.append(network_policy_peer(peer, &rp.child(peers).index(j)));
            }
        }
    }
    let types = str_list(spec, "policyTypes");
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            &sp.child("policyTypes"),
            BadValue::Raw(format!("&{}", super::util::go_str_slice(&types, true))),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                &sp.child("policyTypes").index(i),
                t.as_str(),
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

fn network_policy_port(port: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(proto) = str_of(port, "protocol")
        && !["TCP", "UDP", "SCTP"].contains(&proto)
    {
        errs.push(FieldError::not_supported(
            &p.child("protocol"),
            proto,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    let end = int_of(port, "endPort");
    match IntOrStr::from_json(get(port, "port")) {
        Some(IntOrStr::Int(n)) => {
            for m in v::is_valid_port_num(n) {
                errs.push(FieldError::invalid(&p.child("port"), n, m));
            }
            if let Some(e) = end {
                if e < n {
                    errs.push(FieldError::invalid(
                        &p.child("endPort"),
                        n,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in v::is_valid_port_num(e) {
                    errs.push(FieldError::invalid(&p.child("endPort"), e, m));
                }
            }
        }
        Some(IntOrStr::Str(name)) => {
            if let Some(e) = end {
                errs.push(FieldError::invalid(
                    &p.child("endPort"),
                    e,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            errs.append(msgs(&name, &p.child("port"), v::is_valid_port_name(&name)));
        }
        None => {
            if let Some(e) = end {
                errs.push(FieldError::invalid(
                    &p.child("endPort"),
                    e,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    errs
}

fn network_policy_peer(peer: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut count = 0;
    for key in ["podSelector", "namespaceSelector"] {
        if get(peer, key).is_some() {
            count += 1;
            errs.append(selector_at(peer, key, p));
        }
    }
    let ip_block = get(peer, "ipBlock");
    if let Some(block) = ip_block {
        count += 1;
        let bp = p.child("ipBlock");
        let cidr = s(block, "cidr");
        if cidr.is_empty() {
            errs.push(FieldError::required(&bp.child("cidr"), ""));
        } else {
            match is_cidr(cidr) {
                None => errs.push(FieldError::invalid(&bp.child("cidr"), cidr, INVALID_CIDR)),
                Some(outer) => {
                    for (i, except) in str_list(block, "except").iter().enumerate() {
                        let ep = bp.child("except").index(i);
                        match is_cidr(except) {
                            None => {
                                errs.push(FieldError::invalid(&ep, except.as_str(), INVALID_CIDR))
                            }
                            Some(inner) => {
                                if !strict_subset(inner, outer) {
                                    errs.push(FieldError::invalid(
                                        &ep,
                                        except.as_str(),
                                        "must be a strict subset of `cidr`",
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if count == 0 {
        errs.push(FieldError::required(p, "must specify a peer"));
    } else if count > 1 && ip_block.is_some() {
        errs.push(FieldError::forbidden(
            p,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

fn strict_subset(inner: (IpAddr, u8), outer: (IpAddr, u8)) -> bool {
    fn bits(ip: IpAddr) -> (u128, u32) {
        match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    }
    let ((ia, iw), (oa, ow)) = (bits(inner.0), bits(outer.0));
    if iw != ow || inner.1 <= outer.1 {
        return false;
    }
    let shift = ow - u32::from(outer.1);
    let mask = if shift >= 128 { 0 } else { !0u128 << shift };
    (ia & mask) == (oa & mask)
}

/// `ValidateIngressCreate`.
pub(super) fn ingress(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(ingress_spec(obj));
    let class_annotation = get(obj, "metadata")
        .and_then(|m| str_map(m, "annotations"))
        .and_then(|a| a.get("kubernetes.io/ingress.class").cloned());
    if let (Some(ann), Some(class)) = (class_annotation, str_of(spec_of(obj), "ingressClassName"))
        && ann != class
    {
        errs.push(FieldError::invalid(
            &Path::new("annotations").child("kubernetes.io/ingress.class"),
            ann,
            "must match `ingressClassName` when both are specified",
        ));
    }
    errs
}

/// `ValidateIngressSpec`.
pub(super) fn ingress_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let rules = arr(spec, "rules");
    let default_backend = get(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        errs.push(FieldError::invalid(
            &sp,
            BadValue::Raw("[]networking.IngressRule(nil)".to_owned()),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        errs.append(ingress_backend(b, &sp.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = sp.child("rules").index(i);
        let host = s(rule, "host");
        if !host.is_empty() {
            if host.parse::<IpAddr>().is_ok() {
                errs.push(FieldError::invalid(
                    &rp.child("host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let problems = if host.contains('*') {
                v::is_wildcard_dns1123_subdomain(host)
            } else {
                v::is_dns1123_subdomain(host)
            };
            errs.append(msgs(host, &rp.child("host"), problems));
        }
        if let Some(http) = get(rule, "http") {
            let hp = rp.child("http");
            let paths = arr(http, "paths");
            if paths.is_empty() {
                errs.push(FieldError::required(&hp.child("paths"), ""));
            }
            for (j, path) in paths.iter().enumerate() {
                errs.append(ingress_path(path, &hp.child("paths").index(j)));
            }
        }
    }
    for (i, tls) in arr(spec, "tls").iter().enumerate() {
        for (j, host) in str_list(tls, "hosts").iter().enumerate() {
            let p = sp.child("tls").index(i).child("hosts").index(j);
            let problems = if host.contains('*') {
                v::is_wildcard_dns1123_subdomain(host)
            } else {
                v::is_dns1123_subdomain(host)
            };
            errs.append(msgs(host, &p, problems));
        }
    }
    if let Some(class) = str_of(spec, "ingressClassName") {
        errs.append(msgs(
            class,
            &sp.child("ingressClassName"),
            v::name_is_dns_subdomain(class, false),
        ));
    }
    errs
}

fn ingress_path(path: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(path_type) = str_of(path, "pathType") else {
        return FieldError::required(&p.child("pathType"), "pathType must be specified").into();
    };
    let text = s(path, "path");
    match path_type {
        "Exact" | "Prefix" => {
            if !text.starts_with('/') {
                errs.push(FieldError::invalid(
                    &p.child("path"),
                    text,
                    "must be an absolute path",
                ));
            }
            if !text.is_empty() {
                for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                    if text.contains(seq) {
                        errs.push(FieldError::invalid(
                            &p.child("path"),
                            text,
                            format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in ["/..", "/."] {
                    if text.ends_with(suffix) {
                        errs.push(FieldError::invalid(
                            &p.child("path"),
                            text,
                            format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !text.is_empty() && !text.starts_with('/') {
                errs.push(FieldError::invalid(
                    &p.child("path"),
                    text,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &p.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs.append(ingress_backend(
        get(path, "backend").unwrap_or(&Value::Null),
        &p.child("backend"),
    ));
    errs
}

fn ingress_backend(b: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match (get(b, "resource"), get(b, "service")) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            p,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            let rp = p.child("resource");
            for key in ["kind", "name"] {
                let value = s(r, key);
                if value.is_empty() {
                    errs.push(FieldError::required(&rp.child(key), ""));
                } else {
                    errs.append(path_segment(value, &rp.child(key)));
                }
            }
        }
        (None, Some(svc)) => {
            let sp = p.child("service");
            let name = s(svc, "name");
            if name.is_empty() {
                errs.push(FieldError::required(&sp.child("name"), ""));
            } else {
                errs.append(msgs(
                    name,
                    &sp.child("name"),
                    v::name_is_dns1035_label(name, false),
                ));
            }
            let port = get(svc, "port").unwrap_or(&Value::Null);
            let pname = s(port, "name");
            let pnum = int_of(port, "number").unwrap_or(0);
            match (pname.is_empty(), pnum == 0) {
                (false, false) => errs.push(FieldError::invalid(
                    p,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, true) => errs.append(msgs(
                    pname,
                    &sp.child("port").child("name"),
                    v::is_valid_port_name(pname),
                )),
                (true, false) => {
                    for m in v::is_valid_port_num(pnum) {
                        errs.push(FieldError::invalid(
                            &sp.child("port").child("number"),
                            pnum,
                            m,
                        ));
                    }
                }
                (true, true) => {
                    errs.push(FieldError::required(p, "port name or number is required"));
                }
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            p,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}

/// `ValidateIngressClass`.
pub(super) fn ingress_class(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, false, NameRule::Subdomain);
    let spec = spec_of(obj);
    let cp = Path::new("spec").child("controller");
    let controller = s(spec, "controller");
    if controller.len() > 250 {
        errs.push(FieldError::too_long(&cp, Some(250)));
    }
    if controller.is_empty() {
        errs.push(FieldError::required(&cp, ""));
    } else {
        match controller.split_once('/') {
            Some((host, path)) if !host.is_empty() && !path.is_empty() => {
                errs.append(msgs(host, &cp, v::is_dns1123_subdomain(host)));
                let valid = path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c));
                if !valid {
                    errs.push(FieldError::invalid(
                        &cp,
                        path,
                        v::regex_error("Invalid path", "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+", &[]),
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                &cp,
                controller,
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
        }
    }
    if let Some(params) = get(spec, "parameters") {
        let pp = Path::new("spec").child("parameters");
        for key in ["kind", "name"] {
            let value = s(params, key);
            if value.is_empty() {
                errs.push(FieldError::required(&pp.child(key), ""));
            } else {
                errs.append(path_segment(value, &pp.child(key)));
            }
        }
        match str_of(params, "scope") {
            Some("Namespace") => {
                if s(params, "namespace").is_empty() {
                    errs.push(FieldError::required(
                        &pp.child("namespace"),
                        "`parameters.scope` is set to 'Namespace'",
                    ));
                }
            }
            Some("Cluster") => {
                if get(params, "namespace").is_some() {
                    errs.push(FieldError::forbidden(
                        &pp.child("namespace"),
                        "`parameters.scope` is set to 'Cluster'",
                    ));
                }
            }
            Some(other) => errs.push(FieldError::not_supported(
                &pp.child("scope"),
                other,
                &["Cluster", "Namespace"],
            )),
            None => errs.push(FieldError::required(&pp.child("scope"), "")),
        }
    }
    errs
}

/// `ValidateIngressClassUpdate`: the controller is immutable.
pub(super) fn ingress_class_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(ingress_class(new));
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    errs.append(immutable(
        get(spec, "controller"),
        get(old_spec, "controller"),
        BadValue::Str(s(spec, "controller").to_owned()),
        &Path::new("spec").child("controller"),
    ));
    errs
}

// ---------------------------------------------------------------------------------------------
// RBAC.

/// `ValidateRole` / `ValidateClusterRole`.
pub(super) fn role(obj: &Value, kind: &str) -> ErrorList {
    let namespaced = kind == "Role";
    let mut errs = meta::validate_object_meta(obj, namespaced, NameRule::PathSegment);
    errs.append(role_rules(obj));
    errs
}

/// The rules (and a ClusterRole's aggregation rule) of a role.
pub(super) fn role_rules(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let namespaced = s(obj, "kind") != "ClusterRole";
    for (i, rule) in arr(obj, "rules").iter().enumerate() {
        let p = Path::new("rules").index(i);
        if arr(rule, "verbs").is_empty() {
            errs.push(FieldError::required(
                &p.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = str_list(rule, "nonResourceURLs");
        if !urls.is_empty() {
            let shown = BadValue::Raw(super::util::go_str_slice(&urls, true));
            if namespaced {
                errs.push(FieldError::invalid(
                    &p.child("nonResourceURLs"),
                    shown.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !arr(rule, "apiGroups").is_empty()
                || !arr(rule, "resources").is_empty()
                || !arr(rule, "resourceNames").is_empty()
            {
                errs.push(FieldError::invalid(
                    &p.child("nonResourceURLs"),
                    shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(rule, "apiGroups").is_empty() {
            errs.push(FieldError::required(
                &p.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(rule, "resources").is_empty() {
            errs.push(FieldError::required(
                &p.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    if let Some(agg) = get(obj, "aggregationRule") {
        let ap = Path::new("aggregationRule").child("clusterRoleSelectors");
        let selectors = arr(agg, "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(FieldError::required(
                &ap,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            if let Ok(sel) = serde_json::from_value(sel.clone()) {
                errs.append(validate_label_selector(
                    &sel,
                    LabelSelectorValidationOptions::default(),
                    &ap.index(i),
                ));
            }
        }
    }
    errs
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`.
pub(super) fn role_binding(obj: &Value, kind: &str) -> ErrorList {
    let namespaced = kind == "RoleBinding";
    let mut errs = meta::validate_object_meta(obj, namespaced, NameRule::PathSegment);
    errs.append(role_binding_body(obj, namespaced));
    errs
}

fn role_binding_body(obj: &Value, namespaced: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let rr = get(obj, "roleRef").unwrap_or(&Value::Null);
    let rp = Path::new("roleRef");
    let group = s(rr, "apiGroup");
    if group != "rbac.authorization.k8s.io" {
        errs.push(FieldError::not_supported(
            &rp.child("apiGroup"),
            group,
            &["rbac.authorization.k8s.io"],
        ));
    }
    let kind = s(rr, "kind");
    if namespaced {
        if kind != "Role" && kind != "ClusterRole" {
            errs.push(FieldError::not_supported(
                &rp.child("kind"),
                kind,
                &["Role", "ClusterRole"],
            ));
        }
    } else if kind != "ClusterRole" {
        errs.push(FieldError::not_supported(
            &rp.child("kind"),
            kind,
            &["ClusterRole"],
        ));
    }
    let name = s(rr, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&rp.child("name"), ""));
    } else {
        errs.append(path_segment(name, &rp.child("name")));
    }
    for (i, subject) in arr(obj, "subjects").iter().enumerate() {
        let p = Path::new("subjects").index(i);
        let name = s(subject, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        let group = s(subject, "apiGroup");
        match s(subject, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    errs.append(msgs(
                        name,
                        &p.child("name"),
                        v::name_is_dns_subdomain(name, false),
                    ));
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        &p.child("apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if !namespaced && s(subject, "namespace").is_empty() {
                    errs.push(FieldError::required(&p.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != "rbac.authorization.k8s.io" {
                    errs.push(FieldError::not_supported(
                        &p.child("apiGroup"),
                        group,
                        &["rbac.authorization.k8s.io"],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

/// `ValidateRoleBindingUpdate` / `ValidateClusterRoleBindingUpdate`: the role reference is
/// immutable.
pub(super) fn role_binding_update(new: &Value, old: &Value, kind: &str) -> ErrorList {
    let mut errs = role_binding(new, kind);
    errs.append(meta::validate_object_meta_update(new, old));
    if !semantic_eq(get(new, "roleRef"), get(old, "roleRef")) {
        let rr = get(new, "roleRef").unwrap_or(&Value::Null);
        errs.push(FieldError::invalid(
            &Path::new("roleRef"),
            BadValue::Raw(format!(
                "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                go_quote(s(rr, "apiGroup")),
                go_quote(s(rr, "kind")),
                go_quote(s(rr, "name"))
            )),
            "cannot change roleRef",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// PriorityClass, StorageClass, Lease, EndpointSlice.

const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;

/// `ValidatePriorityClass`.
pub(super) fn priority_class(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, false, NameRule::Subdomain);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = int_of(obj, "value").unwrap_or(0);
    let global_default = bool_of(obj, "globalDefault").unwrap_or(false);
    if name.starts_with("system-") {
        let known = [
            ("system-cluster-critical", 2_000_000_000),
            ("system-node-critical", 2_000_001_000),
        ];
        let problem = match known.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((n, v)) if *v != value => Some(format!("value of {n} PriorityClass must be {v}")),
            Some((n, _)) if global_default => {
                Some(format!("globalDefault of {n} PriorityClass must be false"))
            }
            Some(_) => None,
        };
        if let Some(e) = problem {
            errs.push(FieldError::forbidden(
                &Path::new("metadata").child("name"),
                format!(
                    "priority class names with 'system-' prefix are reserved for system use only. error: {e}"
                ),
            ));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        errs.push(FieldError::forbidden(
            &Path::new("value"),
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"),
        ));
    }
    if let Some(pp) = str_of(obj, "preemptionPolicy")
        && pp != "PreemptLowerPriority"
        && pp != "Never"
    {
        errs.push(FieldError::not_supported(
            &Path::new("preemptionPolicy"),
            pp,
            &["PreemptLowerPriority", "Never"],
        ));
    }
    errs
}

/// `ValidatePriorityClassUpdate`: value and preemption policy are immutable.
pub(super) fn priority_class_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    if int_of(new, "value") != int_of(old, "value") {
        errs.push(FieldError::forbidden(
            &Path::new("value"),
            "may not be changed in an update.",
        ));
    }
    errs.append(immutable(
        get(new, "preemptionPolicy"),
        get(old, "preemptionPolicy"),
        str_of(new, "preemptionPolicy").map_or(BadValue::Null, BadValue::from),
        &Path::new("preemptionPolicy"),
    ));
    errs
}

/// `ValidateStorageClass`.
pub(super) fn storage_class(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, false, NameRule::Subdomain);
    let provisioner = s(obj, "provisioner");
    let pp = Path::new("provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required(&pp, ""));
    } else {
        errs.append(qualified_name(&provisioner.to_lowercase(), &pp));
    }
    if let Some(params) = str_map(obj, "parameters") {
        let p = Path::new("parameters");
        if params.len() > 512 {
            errs.push(FieldError::too_long(&p, Some(512)));
        } else {
            for k in params.keys() {
                if k.is_empty() {
                    errs.push(FieldError::invalid(&p, "", "field can not be empty."));
                }
            }
            let total: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();
            if total > 256 * 1024 {
                errs.push(FieldError::too_long(&p, Some(256 * 1024)));
            }
        }
    }
    if let Some(rp) = str_of(obj, "reclaimPolicy")
        && !rp.is_empty()
        && rp != "Delete"
        && rp != "Retain"
    {
        errs.push(FieldError::not_supported(
            &Path::new("reclaimPolicy"),
            rp,
            &["Delete", "Retain"],
        ));
    }
    match str_of(obj, "volumeBindingMode") {
        None => errs.push(FieldError::required(&Path::new("volumeBindingMode"), "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(other) => errs.push(FieldError::not_supported(
            &Path::new("volumeBindingMode"),
            other,
            &["Immediate", "WaitForFirstConsumer"],
        )),
    }
    errs
}

/// `ValidateStorageClassUpdate`: parameters, provisioner, reclaim policy and binding mode
/// are immutable.
pub(super) fn storage_class_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(storage_class(new));
    if !semantic_eq(get(new, "parameters"), get(old, "parameters")) {
        errs.push(FieldError::forbidden(
            &Path::new("parameters"),
            "updates to parameters are forbidden.",
        ));
    }
    if s(new, "provisioner") != s(old, "provisioner") {
        errs.push(FieldError::forbidden(
            &Path::new("provisioner"),
            "updates to provisioner are forbidden.",
        ));
    }
    if s(new, "reclaimPolicy") != s(old, "reclaimPolicy") {
        errs.push(FieldError::forbidden(
            &Path::new("reclaimPolicy"),
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    errs.append(immutable(
        get(new, "volumeBindingMode"),
        get(old, "volumeBindingMode"),
        str_of(new, "volumeBindingMode").map_or(BadValue::Null, BadValue::from),
        &Path::new("volumeBindingMode"),
    ));
    errs
}

/// `ValidateLease`.
pub(super) fn lease(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(lease_spec(obj));
    errs
}

/// `ValidateLeaseSpec`.
pub(super) fn lease_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    if let Some(d) = int_of(spec, "leaseDurationSeconds")
        && d <= 0
    {
        errs.push(FieldError::invalid(
            &sp.child("leaseDurationSeconds"),
            int_ptr(Some(d)),
            "must be greater than 0",
        ));
    }
    if let Some(t) = int_of(spec, "leaseTransitions")
        && t < 0
    {
        errs.push(FieldError::invalid(
            &sp.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(strategy) = str_of(spec, "strategy")
        && strategy != "OldestEmulationVersion"
    {
        errs.push(FieldError::not_supported(
            &sp.child("strategy"),
            strategy,
            &["OldestEmulationVersion"],
        ));
    }
    if str_of(spec, "preferredHolder").is_some_and(|h| !h.is_empty())
        && str_of(spec, "strategy").is_none_or(str::is_empty)
    {
        errs.push(FieldError::forbidden(
            &sp.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

/// `ValidateEndpointSliceCreate`.
pub(super) fn endpoint_slice(obj: &Value) -> ErrorList {
    let p = Path::new("addressType");
    match s(obj, "addressType") {
        "" => return FieldError::required(&p, "").into(),
        "FQDN" | "IPv4" | "IPv6" => {}
        other => {
            return FieldError::not_supported(&p, other, &["FQDN", "IPv4", "IPv6"]).into();
        }
    }
    endpoint_slice_body(obj)
}

fn endpoint_slice_body(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    let address_type = s(obj, "addressType");
    for (i, ep) in arr(obj, "endpoints").iter().enumerate() {
        let p = Path::new("endpoints").index(i);
        let ap = p.child("addresses");
        let addresses = str_list(ep, "addresses");
        if addresses.is_empty() {
            errs.push(FieldError::required(&ap, "must contain at least 1 address"));
        } else if addresses.len() > 100 {
            errs.push(FieldError::too_many(&ap, Some(addresses.len()), Some(100)));
        }
        for (j, addr) in addresses.iter().enumerate() {
            let ok = match address_type {
                "IPv4" => addr.parse::<Ipv4Addr>().is_ok(),
                "IPv6" => addr.parse::<std::net::Ipv6Addr>().is_ok(),
                "FQDN" => v::is_dns1123_subdomain(addr).is_empty(),
                _ => true,
            };
            if !ok {
                let detail = match address_type {
                    "IPv4" => "must be a valid IPv4 address",
                    "IPv6" => "must be a valid IPv6 address",
                    _ => "should be a domain with at least two segments separated by dots",
                };
                errs.push(FieldError::invalid(&ap.index(j), addr.as_str(), detail));
            }
        }
        if let Some(node) = str_of(ep, "nodeName") {
            errs.append(msgs(
                node,
                &p.child("nodeName"),
                v::name_is_dns_subdomain(node, false),
            ));
        }
        if let Some(host) = str_of(ep, "hostname") {
            errs.append(dns1123_label(host, &p.child("hostname")));
        }
    }
    let ports = arr(obj, "ports");
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = Path::new("ports").index(i);
        let name = s(port, "name");
        if !name.is_empty() {
            errs.append(dns1123_label(name, &p.child("name")));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        }
        match str_of(port, "protocol") {
            None => errs.push(FieldError::required(&p.child("protocol"), "")),
            Some(proto) => errs.append(protocol(proto, &p.child("protocol"))),
        }
        if let Some(ap) = str_of(port, "appProtocol") {
            errs.append(qualified_name(ap, &p.child("appProtocol")));
        }
        if let Some(n) = int_of(port, "port") {
            for m in v::is_valid_port_num(n) {
                errs.push(FieldError::invalid(&p.child("port"), n, m));
            }
        }
    }
    errs
}

/// `ValidateEndpointSliceUpdate`: the address type is immutable.
pub(super) fn endpoint_slice_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = endpoint_slice_body(new);
    errs.append(meta::validate_object_meta_update(new, old));
    errs.append(immutable(
        get(new, "addressType"),
        get(old, "addressType"),
        BadValue::Str(s(new, "addressType").to_owned()),
        &Path::new("addressType"),
    ));
    errs
}
