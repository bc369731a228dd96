//! Selection: which fields each kind can be selected on (upstream's per-kind `GetAttrs` and
//! `AddFieldLabelConversionFunc`), and the predicate that filters lists and watches by
//! namespace, labels and fields.

use std::collections::BTreeMap;

use serde_json::Value;
use tug_api::catalog::Resource;
use tug_apimachinery::{Status, fields::FieldSelector, labels::Selector, meta};

use super::{Result, objmeta};

/// The labels and selectable fields of one object, computed once per stored version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attrs {
    /// `metadata.namespace` (empty for cluster-scoped objects).
    pub namespace: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The selectable fields, by their internal field label.
    pub fields: BTreeMap<String, String>,
}

impl Attrs {
    /// The attributes of a stored object of `kind` (in its storage version).
    pub(crate) fn of(kind: &str, namespaced: bool, obj: &Value) -> Self {
        let namespace = meta::namespace(obj).unwrap_or_default().to_owned();
        let mut fields = BTreeMap::new();
        fields.insert(
            "metadata.name".to_owned(),
            meta::name(obj).unwrap_or_default().to_owned(),
        );
        if namespaced {
            fields.insert("metadata.namespace".to_owned(), namespace.clone());
        }
        let s = |path: &[&str]| objmeta::str_at(obj, path).unwrap_or_default().to_owned();
        let int = |path: &[&str]| {
            objmeta::at(obj, path)
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string()
        };
        let boolean = |path: &[&str]| {
            objmeta::at(obj, path)
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string()
        };
        let mut add = |k: &str, v: String| {
            fields.insert(k.to_owned(), v);
        };
        match kind {
            "Pod" => {
                add("spec.nodeName", s(&["spec", "nodeName"]));
                add("spec.restartPolicy", s(&["spec", "restartPolicy"]));
                add("spec.schedulerName", s(&["spec", "schedulerName"]));
                add(
                    "spec.serviceAccountName",
                    s(&["spec", "serviceAccountName"]),
                );
                add("spec.hostNetwork", boolean(&["spec", "hostNetwork"]));
                add("status.phase", s(&["status", "phase"]));
                let pod_ip = objmeta::at(obj, &["status", "podIPs"])
                    .and_then(Value::as_array)
                    .and_then(|ips| ips.first())
                    .and_then(|ip| ip.get("ip"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| s(&["status", "podIP"]));
                add("status.podIP", pod_ip);
                add(
                    "status.nominatedNodeName",
                    s(&["status", "nominatedNodeName"]),
                );
            }
            "Event" => {
                for f in [
                    "kind",
                    "namespace",
                    "name",
                    "uid",
                    "apiVersion",
                    "resourceVersion",
                    "fieldPath",
                ] {
                    add(&format!("involvedObject.{f}"), s(&["involvedObject", f]));
                }
                add("reason", s(&["reason"]));
                add("reportingComponent", s(&["reportingComponent"]));
                let mut source = s(&["source", "component"]);
                if source.is_empty() {
                    source = s(&["reportingComponent"]);
                }
                add("source", source);
                add("type", s(&["type"]));
            }
            "Namespace" => {
                add("status.phase", s(&["status", "phase"]));
                // Upstream keeps this legacy field for compatibility.
                add("name", meta::name(obj).unwrap_or_default().to_owned());
            }
            "Node" => add("spec.unschedulable", boolean(&["spec", "unschedulable"])),
            "Secret" => add("type", s(&["type"])),
            "ReplicationController" | "ReplicaSet" => {
                add("status.replicas", int(&["status", "replicas"]));
            }
            "Job" => add("status.successful", int(&["status", "succeeded"])),
            _ => {}
        }
        Attrs {
            namespace,
            labels: meta::labels(obj),
            fields,
        }
    }
}

/// How a served resource's field labels map onto the internal ones, and what it answers for
/// the rest.
enum Conversion {
    /// Only the listed labels, unchanged; others fail with `field label not supported: x`.
    Listed(&'static [&'static str]),
    /// Only object meta; others fail with `field label "x" not supported for "Kind"`.
    MetaForKind(&'static str),
    /// Only the listed labels; others fail with `field label "x" not supported for batchv1.Job`.
    Job,
    /// events.k8s.io field names mapped onto the core Event field set.
    EventsV1,
    /// Upstream's default: only `metadata.name` and `metadata.namespace`.
    Default,
}

fn conversion(resource: &Resource) -> Conversion {
    const POD: &[&str] = &[
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ];
    const EVENT: &[&str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "metadata.namespace",
        "metadata.name",
    ];
    match (resource.group, resource.kind) {
        ("", "Pod") => Conversion::Listed(POD),
        ("", "Event") => Conversion::Listed(EVENT),
        ("", "Node") => Conversion::Listed(&["metadata.name", "spec.unschedulable"]),
        ("", "Namespace") => Conversion::Listed(&["status.phase", "metadata.name"]),
        ("", "Secret") => Conversion::Listed(&["type", "metadata.namespace", "metadata.name"]),
        ("", "PersistentVolume") => Conversion::Listed(&["metadata.name"]),
        ("", "ReplicationController") | ("apps", "ReplicaSet") => {
            Conversion::Listed(&["metadata.name", "metadata.namespace", "status.replicas"])
        }
        (
            "",
            kind @ ("Endpoints"
            | "ResourceQuota"
            | "PersistentVolumeClaim"
            | "Service"
            | "ServiceAccount"
            | "ConfigMap"),
        ) => Conversion::MetaForKind(kind),
        ("batch", "Job") => Conversion::Job,
        ("events.k8s.io", "Event") => Conversion::EventsV1,
        _ => Conversion::Default,
    }
}

/// Maps one field label of a request against `resource` onto the internal label, or explains
/// why it is not supported (upstream's messages, which differ per kind).
fn convert_label(resource: &Resource, label: &str) -> std::result::Result<String, String> {
    match conversion(resource) {
        Conversion::Listed(known) => {
            if known.contains(&label) {
                // `status.podIPs` selects on the first pod IP, like `status.podIP`.
                Ok(if label == "status.podIPs" {
                    "status.podIP".to_owned()
                } else {
                    label.to_owned()
                })
            } else if resource.kind == "Pod" && label == "spec.host" {
                // Old clients' name for spec.nodeName.
                Ok("spec.nodeName".to_owned())
            } else {
                Err(format!("field label not supported: {label}"))
            }
        }
        Conversion::MetaForKind(kind) => match label {
            "metadata.name" | "metadata.namespace" => Ok(label.to_owned()),
            _ => Err(format!(
                "field label {} not supported for {}",
                objmeta::quote(label),
                objmeta::quote(kind)
            )),
        },
        Conversion::Job => match label {
            "metadata.name" | "metadata.namespace" | "status.successful" => Ok(label.to_owned()),
            _ => Err(format!(
                "field label {} not supported for batchv1.Job",
                objmeta::quote(label)
            )),
        },
        Conversion::EventsV1 => {
            let mapped = match label {
                "reason" | "type" | "metadata.namespace" | "metadata.name" => label.to_owned(),
                "reportingController" => "reportingComponent".to_owned(),
                "deprecatedSource" => "source".to_owned(),
                _ => match label.strip_prefix("regarding.") {
                    Some(
                        f @ ("kind" | "namespace" | "name" | "uid" | "apiVersion"
                        | "resourceVersion" | "fieldPath"),
                    ) => format!("involvedObject.{f}"),
                    _ => return Err(format!("field label not supported: {label}")),
                },
            };
            Ok(mapped)
        }
        Conversion::Default => match label {
            "metadata.name" | "metadata.namespace" => Ok(label.to_owned()),
            _ => Err(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                objmeta::quote(label)
            )),
        },
    }
}

/// Rewrites a request's field selector into internal field labels; an unsupported field is a
/// `400 BadRequest`, as upstream's list handler answers.
pub(crate) fn convert_selector(
    resource: &Resource,
    selector: &FieldSelector,
) -> Result<FieldSelector> {
    selector
        .clone()
        .transform(|label, value| Ok((convert_label(resource, label)?, value.to_owned())))
        .map_err(|e| Box::new(Status::bad_request(&e.to_string())))
}

/// What a list or watch selects: a namespace (or all), labels and fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct Predicate {
    /// Only objects in this namespace.
    pub namespace: Option<String>,
    /// The label selector, if any.
    pub labels: Option<Selector>,
    /// The field selector in internal field labels, if any.
    pub fields: Option<FieldSelector>,
}

impl Predicate {
    /// Builds the predicate of a request against `resource`.
    pub(crate) fn new(
        resource: &Resource,
        namespace: Option<&str>,
        labels: Option<&Selector>,
        fields: Option<&FieldSelector>,
    ) -> Result<Self> {
        let fields = match fields {
            Some(f) if !f.is_empty() => Some(convert_selector(resource, f)?),
            _ => None,
        };
        Ok(Self {
            namespace: namespace
                .filter(|ns| resource.namespaced && !ns.is_empty())
                .map(str::to_owned),
            labels: labels.filter(|l| !l.is_empty()).cloned(),
            fields,
        })
    }

    /// Whether the predicate selects on labels or fields (not only a namespace).
    pub(crate) fn has_selectors(&self) -> bool {
        self.labels.is_some() || self.fields.is_some()
    }

    /// Whether an object with these attributes is selected.
    pub(crate) fn matches(&self, attrs: &Attrs) -> bool {
        if let Some(ns) = &self.namespace
            && attrs.namespace != *ns
        {
            return false;
        }
        if let Some(labels) = &self.labels
            && !labels.matches(&attrs.labels)
        {
            return false;
        }
        if let Some(fields) = &self.fields
            && !fields.matches(&attrs.fields)
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tug_api::catalog;

    use super::*;

    fn resource(group: &str, plural: &str) -> &'static Resource {
        catalog::resources()
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .expect("served")
    }

    fn check(group: &str, plural: &str, selector: &str, want: std::result::Result<&str, &str>) {
        let parsed = FieldSelector::parse(selector).expect("parses");
        let got = convert_selector(resource(group, plural), &parsed)
            .map(|s| s.to_string())
            .map_err(|s| s.message.clone());
        assert_eq!(
            got.as_ref().map(String::as_str).map_err(String::as_str),
            want,
            "{group}/{plural} {selector}"
        );
    }

    #[test]
    fn field_labels_are_checked_per_kind_with_upstreams_messages() {
        check("", "pods", "spec.nodeName=n1", Ok("spec.nodeName=n1"));
        check("", "pods", "spec.host=n1", Ok("spec.nodeName=n1"));
        check(
            "",
            "pods",
            "spec.bogus=1",
            Err("field label not supported: spec.bogus"),
        );
        check(
            "",
            "configmaps",
            "data.x=1",
            Err("field label \"data.x\" not supported for \"ConfigMap\""),
        );
        check(
            "apps",
            "deployments",
            "spec.replicas=1",
            Err(
                "\"spec.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            ),
        );
        check(
            "events.k8s.io",
            "events",
            "regarding.name=p,reportingController=k",
            Ok("involvedObject.name=p,reportingComponent=k"),
        );
        check("", "secrets", "type=Opaque", Ok("type=Opaque"));
        check(
            "batch",
            "jobs",
            "status.successful=1",
            Ok("status.successful=1"),
        );
    }

    #[test]
    fn pod_attributes_follow_upstreams_get_attrs() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"}},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}
        });
        let attrs = Attrs::of("Pod", true, &pod);
        assert_eq!(attrs.fields["spec.nodeName"], "n1");
        assert_eq!(attrs.fields["spec.hostNetwork"], "false");
        assert_eq!(attrs.fields["status.podIP"], "10.0.0.1");
        assert_eq!(attrs.fields["metadata.namespace"], "ns");
        let pred = Predicate::new(
            resource("", "pods"),
            Some("ns"),
            Some(&Selector::parse("app=a").expect("selector")),
            Some(&FieldSelector::parse("status.phase=Running").expect("selector")),
        )
        .expect("predicate");
        assert!(pred.matches(&attrs));
        let other =
            Predicate::new(resource("", "pods"), Some("other"), None, None).expect("predicate");
        assert!(!other.matches(&attrs));
    }
}
