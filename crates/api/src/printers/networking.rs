//! Networking kinds: ingresses, ingress classes, network policies and endpoint slices.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressRule, NetworkPolicy};
use serde_json::Value;

use super::format;
use super::{Column, Ctx, Doc, Printer, Row, cells, decode, descriptions as d};

pub(super) static INGRESS: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string(
            "Class",
            Doc::literal(
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
        ),
        Column::string(
            "Hosts",
            Doc::literal(
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
        ),
        Column::string(
            "Address",
            Doc::literal("Address is a list containing ingress points for the load-balancer"),
        ),
        Column::string(
            "Ports",
            Doc::literal("Ports of TLS configurations that open"),
        ),
        Column::age(),
    ],
    print: print_ingress,
};

/// The first three rule hosts then ` + N more...` (counting every rule, hosted or not); `*`
/// when no rule names a host.
fn format_hosts(rules: &[IngressRule]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        match rule.host.as_deref() {
            Some(host) if !more && !host.is_empty() => list.push(host),
            _ => {}
        }
    }
    if list.is_empty() {
        return "*".to_owned();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

fn print_ingress(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let ingress: Ingress = decode(object)?;
    let spec = ingress.spec.unwrap_or_default();
    let points = ingress
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .unwrap_or_default();
    let address = format::load_balancer_ingress(
        points
            .iter()
            .map(|p| (p.ip.as_deref(), p.hostname.as_deref())),
    );
    let ports = if spec.tls.as_ref().is_some_and(|tls| !tls.is_empty()) {
        "80, 443"
    } else {
        "80"
    };
    Ok(Row::new(cells![
        format::name(&ingress.metadata),
        spec.ingress_class_name
            .unwrap_or_else(|| "<none>".to_owned()),
        format_hosts(spec.rules.as_deref().unwrap_or_default()),
        address,
        ports,
        format::age(cx.now, &ingress.metadata),
    ]))
}

pub(super) static INGRESS_CLASS: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string(
            "Controller",
            Doc::literal("Controller that is responsible for handling this class"),
        ),
        Column::string(
            "Parameters",
            Doc::literal("A reference to a resource with additional parameters"),
        ),
        Column::age(),
    ],
    print: print_ingress_class,
};

fn print_ingress_class(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let class: IngressClass = decode(object)?;
    let spec = class.spec.unwrap_or_default();
    let parameters = match spec.parameters {
        None => "<none>".to_owned(),
        Some(p) => match p.api_group {
            Some(group) => format!("{}.{group}/{}", p.kind, p.name),
            None => format!("{}/{}", p.kind, p.name),
        },
    };
    Ok(Row::new(cells![
        format::name(&class.metadata),
        spec.controller.unwrap_or_default(),
        parameters,
        format::age(cx.now, &class.metadata),
    ]))
}

pub(super) static NETWORK_POLICY: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Pod-Selector", d::NP_POD_SELECTOR),
        Column::age(),
    ],
    print: print_network_policy,
};

fn print_network_policy(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let policy: NetworkPolicy = decode(object)?;
    // The pod selector is a value upstream, so a missing one selects every pod.
    let selector = policy.spec.and_then(|s| s.pod_selector).unwrap_or_default();
    Ok(Row::new(cells![
        format::name(&policy.metadata),
        format::label_selector(Some(&selector)),
        format::age(cx.now, &policy.metadata),
    ]))
}

pub(super) static ENDPOINT_SLICE: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("AddressType", d::ES_ADDRESS_TYPE),
        Column::string("Ports", d::ES_PORTS),
        Column::string("Endpoints", d::ES_ENDPOINTS),
        Column::age(),
    ],
    print: print_endpoint_slice,
};

fn print_endpoint_slice(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let slice: EndpointSlice = decode(object)?;
    // A port without a number is named, or `*` for every port.
    let ports = slice
        .ports
        .iter()
        .flatten()
        .map(|p| match (p.port, &p.name) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => "*".to_owned(),
        });
    let ports = format::list_with_more(ports, 3);
    let endpoints = format::list_with_more(
        slice
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.iter().cloned()),
        3,
    );
    Ok(Row::new(cells![
        format::name(&slice.metadata),
        slice.address_type,
        ports,
        endpoints,
        format::age(cx.now, &slice.metadata),
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
    fn ingresses_show_class_hosts_address_and_ports() {
        check(
            "networking.k8s.io",
            "Ingress",
            r"
metadata: {name: web}
spec:
  ingressClassName: nginx
  tls: [{hosts: [a.example.com]}]
  rules: [{host: a.example.com}, {}, {host: b.example.com}, {host: c.example.com}, {host: d.example.com}]
status: {loadBalancer: {ingress: [{ip: 10.0.0.9}, {hostname: lb.example.com}]}}
",
            json!([
                "web",
                "nginx",
                "a.example.com,b.example.com,c.example.com + 2 more...",
                "10.0.0.9,lb.example.com",
                "80, 443",
                "<unknown>"
            ]),
        );
        check(
            "networking.k8s.io",
            "Ingress",
            "{metadata: {name: catch-all}, spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}}",
            json!(["catch-all", "<none>", "*", "", "80", "<unknown>"]),
        );
    }

    #[test]
    fn ingress_classes_show_controller_and_parameters() {
        check(
            "networking.k8s.io",
            "IngressClass",
            "{metadata: {name: nginx}, spec: {controller: k8s.io/ingress-nginx, parameters: {apiGroup: k8s.example.com, kind: IngressParameters, name: external-lb}}}",
            json!([
                "nginx",
                "k8s.io/ingress-nginx",
                "IngressParameters.k8s.example.com/external-lb",
                "<unknown>"
            ]),
        );
        check(
            "networking.k8s.io",
            "IngressClass",
            "{metadata: {name: plain}, spec: {controller: example.com/ctl}}",
            json!(["plain", "example.com/ctl", "<none>", "<unknown>"]),
        );
    }

    #[test]
    fn network_policies_show_their_pod_selector() {
        check(
            "networking.k8s.io",
            "NetworkPolicy",
            "{metadata: {name: deny-all}, spec: {podSelector: {}}}",
            json!(["deny-all", "<none>", "<unknown>"]),
        );
        check(
            "networking.k8s.io",
            "NetworkPolicy",
            "{metadata: {name: db}, spec: {podSelector: {matchLabels: {role: db}}}}",
            json!(["db", "role=db", "<unknown>"]),
        );
    }

    #[test]
    fn endpoint_slices_list_ports_and_addresses() {
        check(
            "discovery.k8s.io",
            "EndpointSlice",
            r"
metadata: {name: web-abc12}
addressType: IPv4
ports: [{name: http, port: 80}, {name: metrics}, {}, {port: 9090}]
endpoints:
- addresses: [10.42.0.5]
- addresses: [10.42.1.7, 10.42.1.8]
- addresses: [10.42.2.9]
",
            json!([
                "web-abc12",
                "IPv4",
                "80,metrics,* + 1 more...",
                "10.42.0.5,10.42.1.7,10.42.1.8 + 1 more...",
                "<unknown>"
            ]),
        );
        check(
            "discovery.k8s.io",
            "EndpointSlice",
            "{metadata: {name: empty}, addressType: IPv6, endpoints: null}",
            json!(["empty", "IPv6", "<unset>", "<unset>", "<unknown>"]),
        );
    }
}
