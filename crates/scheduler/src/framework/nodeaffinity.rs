//! Node selector matching shared by NodeAffinity, PodTopologySpread and the DaemonSet
//! controller: a pod's `nodeSelector` plus its required node affinity, and weighted preferred
//! terms (upstream's `component-helpers/scheduling/corev1/nodeaffinity`).
//!
//! Terms are ORed, the requirements of one term ANDed. A term with no requirement matches no
//! node. A term that cannot be parsed (unknown operator, wrong number of values, a `Gt`/`Lt`
//! value that is not an integer, a field other than `metadata.name`) never matches, but the
//! other terms are still evaluated, as upstream's lazy-error selector does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PreferredSchedulingTerm,
};

use super::types::node_labels;

/// The only field `matchFields` may name.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

/// One parsed requirement of a term.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    Gt(String, i64),
    Lt(String, i64),
}

impl Requirement {
    fn parse(r: &NodeSelectorRequirement, field: bool) -> Result<Self, String> {
        let values = r.values.clone().unwrap_or_default();
        if r.key.is_empty() {
            return Err("key: Required value".to_owned());
        }
        if field {
            if r.key != OBJECT_NAME_FIELD {
                return Err(format!(
                    "key: Invalid value: {:?}: not a valid field selector key",
                    r.key
                ));
            }
            if !matches!(r.operator.as_str(), "In" | "NotIn") {
                return Err(format!(
                    "operator: Invalid value: {:?}: not a valid selector operator",
                    r.operator
                ));
            }
            if values.len() != 1 {
                return Err(format!(
                    "values: Invalid value: must have one element for node field selector operator {:?}",
                    r.operator
                ));
            }
        }
        let int = |values: &[String]| -> Result<i64, String> {
            match values {
                [v] => v.parse::<i64>().map_err(|_| {
                    format!("values[0]: Invalid value: {v:?}: must be an integer")
                }),
                _ => Err("values: Invalid value: must be specified single value when `operator` is 'Lt' or 'Gt'".to_owned()),
            }
        };
        let key = r.key.clone();
        match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => Err(
                "values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
                    .to_owned(),
            ),
            "In" => Ok(Self::In(key, values)),
            "NotIn" => Ok(Self::NotIn(key, values)),
            "Exists" | "DoesNotExist" if !values.is_empty() => Err(
                "values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    .to_owned(),
            ),
            "Exists" => Ok(Self::Exists(key)),
            "DoesNotExist" => Ok(Self::DoesNotExist(key)),
            "Gt" => Ok(Self::Gt(key, int(&values)?)),
            "Lt" => Ok(Self::Lt(key, int(&values)?)),
            other => Err(format!(
                "operator: Unsupported value: {other:?}: supported values: \"DoesNotExist\", \"Exists\", \"Gt\", \"In\", \"Lt\", \"NotIn\""
            )),
        }
    }

    fn matches(&self, value_of: impl Fn(&str) -> Option<String>) -> bool {
        match self {
            Self::In(k, vs) => value_of(k).is_some_and(|v| vs.contains(&v)),
            Self::NotIn(k, vs) => value_of(k).is_none_or(|v| !vs.contains(&v)),
            Self::Exists(k) => value_of(k).is_some(),
            Self::DoesNotExist(k) => value_of(k).is_none(),
            Self::Gt(k, bound) => value_of(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *bound),
            Self::Lt(k, bound) => value_of(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *bound),
        }
    }
}

/// A parsed node selector term; `None` parts mean "no requirement of that kind".
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Term {
    /// Parses a term; `Ok(None)` for an empty term (matches nothing).
    fn parse(t: &NodeSelectorTerm, path: &str) -> Result<Option<Self>, String> {
        let exprs = t.match_expressions.as_deref().unwrap_or_default();
        let fields = t.match_fields.as_deref().unwrap_or_default();
        if exprs.is_empty() && fields.is_empty() {
            return Ok(None);
        }
        let labels = exprs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Requirement::parse(r, false)
                    .map_err(|e| format!("{path}.matchExpressions[{i}].{e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let fields = fields
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Requirement::parse(r, true).map_err(|e| format!("{path}.matchFields[{i}].{e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self { labels, fields }))
    }

    fn matches(&self, node: &Node) -> bool {
        let labels = node_labels(node);
        let name = node.metadata.name.clone().unwrap_or_default();
        self.labels
            .iter()
            .all(|r| r.matches(|k| labels.get(k).cloned()))
            && self
                .fields
                .iter()
                .all(|r| r.matches(|k| (k == OBJECT_NAME_FIELD).then(|| name.clone())))
    }
}

/// A parsed `NodeSelector` (ORed terms). Terms that failed to parse are kept as errors and
/// never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedNodeSelector {
    terms: Vec<Result<Option<Term>, String>>,
}

impl ParsedNodeSelector {
    /// Parses lazily: bad terms are remembered as non-matching.
    pub fn new(selector: &NodeSelector) -> Self {
        Self {
            terms: selector
                .node_selector_terms
                .iter()
                .enumerate()
                .map(|(i, t)| Term::parse(t, &format!("nodeSelectorTerms[{i}]")))
                .collect(),
        }
    }

    /// Parses strictly: the first invalid requirement is an error naming its path.
    pub fn parse_strict(selector: &NodeSelector) -> Result<Self, String> {
        let parsed = Self::new(selector);
        if let Some(Err(e)) = parsed.terms.iter().find(|t| t.is_err()) {
            return Err(e.clone());
        }
        Ok(parsed)
    }

    /// True when any term matches `node`.
    pub fn matches(&self, node: &Node) -> bool {
        self.terms
            .iter()
            .any(|t| matches!(t, Ok(Some(term)) if term.matches(node)))
    }
}

/// A pod's `nodeSelector` and required node affinity, parsed once
/// (upstream's `RequiredNodeAffinity`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequiredNodeAffinity {
    node_selector: Option<BTreeMap<String, String>>,
    affinity: Option<ParsedNodeSelector>,
}

impl RequiredNodeAffinity {
    /// Reads the pod's `spec.nodeSelector` and
    /// `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
    pub fn of_pod(pod: &Pod) -> Self {
        let Some(spec) = pod.spec.as_ref() else {
            return Self::default();
        };
        let node_selector = spec.node_selector.clone().filter(|s| !s.is_empty());
        let affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(ParsedNodeSelector::new);
        Self {
            node_selector,
            affinity,
        }
    }

    /// True when `node` satisfies both the node selector and the required affinity.
    pub fn matches(&self, node: &Node) -> bool {
        if let Some(sel) = &self.node_selector {
            let labels = node_labels(node);
            if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                return false;
            }
        }
        self.affinity.as_ref().is_none_or(|a| a.matches(node))
    }
}

/// True when `node` satisfies the pod's `nodeSelector` and required node affinity.
pub fn node_matches_required(pod: &Pod, node: &Node) -> bool {
    RequiredNodeAffinity::of_pod(pod).matches(node)
}

/// Weighted preferred terms, parsed (upstream's `PreferredSchedulingTerms`). Terms of weight 0
/// and empty terms are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreferredTerms {
    terms: Vec<(Term, i64)>,
}

impl PreferredTerms {
    /// Parses the terms; an invalid one is an error naming its index.
    pub fn new(terms: &[PreferredSchedulingTerm]) -> Result<Self, String> {
        let mut out = Vec::new();
        for (i, t) in terms.iter().enumerate() {
            if t.weight == 0 {
                continue;
            }
            if let Some(term) = Term::parse(&t.preference, &format!("[{i}].preference"))? {
                out.push((term, i64::from(t.weight)));
            }
        }
        Ok(Self { terms: out })
    }

    /// The sum of the weights of the terms `node` matches.
    pub fn score(&self, node: &Node) -> i64 {
        self.terms
            .iter()
            .filter(|(t, _)| t.matches(node))
            .map(|(_, w)| w)
            .sum()
    }

    /// True when no term is left.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// The pod's preferred node-affinity terms (`None` when it has none).
pub fn pod_preferred_terms(pod: &Pod) -> Result<Option<PreferredTerms>, String> {
    let terms = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na: &NodeAffinity| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match terms {
        Some(t) => PreferredTerms::new(t).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "labels": labels.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
            }
        }))
        .expect("valid node")
    }

    fn selector(v: serde_json::Value) -> ParsedNodeSelector {
        ParsedNodeSelector::new(&serde_json::from_value(v).expect("valid selector"))
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> serde_json::Value {
        json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]})
    }

    #[test]
    fn operators_match_as_upstream() {
        let n = node("n1", &[("foo", "bar"), ("num", "5")]);
        let cases = [
            (expr("foo", "In", &["bar", "baz"]), true),
            (expr("foo", "In", &["baz"]), false),
            (expr("foo", "NotIn", &["baz"]), true),
            (expr("missing", "NotIn", &["baz"]), true),
            (expr("foo", "NotIn", &["bar"]), false),
            (expr("foo", "Exists", &[]), true),
            (expr("missing", "Exists", &[]), false),
            (expr("missing", "DoesNotExist", &[]), true),
            (expr("foo", "DoesNotExist", &[]), false),
            (expr("num", "Gt", &["4"]), true),
            (expr("num", "Gt", &["5"]), false),
            (expr("num", "Lt", &["6"]), true),
            (expr("foo", "Gt", &["1"]), false),
            (expr("num", "Gt", &["x"]), false),
            (expr("foo", "Bogus", &["bar"]), false),
            (expr("foo", "In", &[]), false),
            (json!({"nodeSelectorTerms": [{}]}), false),
            (json!({"nodeSelectorTerms": []}), false),
            (
                json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "foo", "operator": "Bogus"}]},
                    {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
                ]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "foo", "operator": "Exists"}, {"key": "num", "operator": "Lt", "values": ["3"]}]},
                ]}),
                false,
            ),
        ];
        for (sel, want) in cases {
            assert_eq!(selector(sel.clone()).matches(&n), want, "{sel}");
        }
    }

    #[test]
    fn node_selector_and_affinity_are_anded() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [],
                "nodeSelector": {"foo": "bar"},
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    expr("zone", "In", &["a"])}},
            }
        }))
        .expect("valid pod");
        assert!(node_matches_required(
            &pod,
            &node("n", &[("foo", "bar"), ("zone", "a")])
        ));
        assert!(!node_matches_required(&pod, &node("n", &[("zone", "a")])));
        assert!(!node_matches_required(&pod, &node("n", &[("foo", "bar")])));
    }

    #[test]
    fn strict_parsing_names_the_bad_requirement() {
        let sel: NodeSelector =
            serde_json::from_value(expr("foo", "Gt", &["1", "2"])).expect("valid selector");
        let err = ParsedNodeSelector::parse_strict(&sel).expect_err("two values for Gt");
        assert!(
            err.starts_with("nodeSelectorTerms[0].matchExpressions[0].values"),
            "{err}"
        );
    }
}
