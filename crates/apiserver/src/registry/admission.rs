//! Admission the registry applies itself:
//! - NamespaceLifecycle (upstream's `plugin/namespace/lifecycle`): no new content in a
//!   namespace that does not exist (`404`) or is being terminated (`403`). The namespace is
//!   read from the namespaces' watch cache, or from the datastore when the cache does not have
//!   it or it was deleted moments ago.
//! - Priority (upstream's `plugin/pkg/admission/priority`): a new Pod gets `spec.priority` and
//!   `spec.preemptionPolicy` from its PriorityClass, or from the global default class.
//! - DefaultTolerationSeconds (upstream's `plugin/pkg/admission/defaulttolerationseconds`): a
//!   new Pod tolerates the `not-ready` and `unreachable` NoExecute taints for 300 s unless it
//!   already tolerates them, so the node lifecycle controller evicts it 5 min after its node
//!   is lost.

use serde_json::Value;
use tug_apimachinery::{Status, status::StatusCause};

use super::{ResourceStore, Result, codec, objmeta};

/// The cause type upstream attaches to a refusal in a terminating namespace.
const NAMESPACE_TERMINATING_CAUSE: &str = "NamespaceTerminating";

/// Checks that `namespace` exists and is not terminating before something is created in it.
/// Namespaces themselves and cluster-scoped resources always pass.
pub(crate) async fn namespace_lifecycle(
    store: &ResourceStore,
    namespace: Option<&str>,
    name: &str,
) -> Result<()> {
    let resource = store.resource;
    if !resource.namespaced || (resource.group.is_empty() && resource.kind == "Namespace") {
        return Ok(());
    }
    let Some(namespace) = namespace else {
        return Ok(());
    };
    let shared = &store.shared;
    let key = format!("{}{namespace}", shared.namespaces.prefix());
    let cached = shared.namespaces.get(&key).0.map(|o| o.value.clone());
    let found: Option<Value> = match cached {
        Some(ns) if !shared.needs_live_lookup(namespace) => Some(ns),
        _ => match shared.store.get(&key).await {
            Ok(Some(kv)) => Some(codec::decode(&kv).map_err(|e| super::store::decode_error(&e))?),
            Ok(None) => None,
            Err(e) => {
                return Err(super::store::storage_error(
                    &e,
                    &tug_apimachinery::GroupResource::new("", "namespaces"),
                    "get",
                ));
            }
        },
    };
    let Some(ns) = found else {
        return Err(Box::new(Status::not_found(
            &tug_apimachinery::GroupResource::new("", "namespaces"),
            namespace,
        )));
    };
    if objmeta::str_at(&ns, &["status", "phase"]) == Some("Terminating") {
        let mut status = Status::forbidden(
            &store.group_resource(),
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        );
        if let Some(details) = status.details.as_mut() {
            details.causes.push(StatusCause {
                reason: NAMESPACE_TERMINATING_CAUSE.to_owned(),
                message: format!("namespace {namespace} is being terminated"),
                field: "metadata.namespace".to_owned(),
            });
        }
        return Err(Box::new(status));
    }
    Ok(())
}

/// The priority classes every cluster has (upstream creates them at API server start).
pub(crate) const SYSTEM_PRIORITY_CLASSES: [(&str, i64); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// Priority admission of a Pod being created: resolves `spec.priorityClassName` (or the global
/// default class) to `spec.priority` and `spec.preemptionPolicy`. A missing class, or a
/// priority or policy in the spec that differs from the class's, is `403 Forbidden` as
/// upstream.
pub(crate) fn pod_priority(store: &ResourceStore, obj: &mut Value, name: &str) -> Result<()> {
    let resource = store.resource;
    if !(resource.group.is_empty() && resource.kind == "Pod") {
        return Ok(());
    }
    let Some(cache) = &store.shared.priority_classes else {
        return Ok(());
    };
    let forbidden =
        |detail: String| Box::new(Status::forbidden(&store.group_resource(), name, &detail));
    let class_name = objmeta::str_at(obj, &["spec", "priorityClassName"])
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let class: Option<Value> = match &class_name {
        Some(class_name) => {
            let key = format!("{}{class_name}", cache.prefix());
            match cache.get(&key).0 {
                Some(c) => Some(c.value.clone()),
                None => {
                    return Err(forbidden(format!(
                        "no PriorityClass with name {class_name} was found"
                    )));
                }
            }
        }
        None => {
            let everything = super::fields::Predicate::default();
            let (classes, _) = cache.list(cache.prefix(), &everything);
            classes
                .iter()
                .map(|c| &c.value)
                .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
                .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
                .cloned()
        }
    };
    let value = class
        .as_ref()
        .and_then(|c| c.get("value").and_then(Value::as_i64))
        .unwrap_or(0);
    let policy = class
        .as_ref()
        .and_then(|c| c.get("preemptionPolicy").and_then(Value::as_str))
        .unwrap_or("PreemptLowerPriority")
        .to_owned();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != value
    {
        return Err(forbidden(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
        )));
    }
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
        && given != policy
    {
        return Err(forbidden(format!(
            "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
        )));
    }
    if let Some(class) = &class
        && class_name.is_none()
        && let Some(n) = objmeta::str_at(class, &["metadata", "name"])
    {
        spec.insert("priorityClassName".to_owned(), Value::String(n.to_owned()));
    }
    spec.insert("priority".to_owned(), Value::from(value));
    spec.insert("preemptionPolicy".to_owned(), Value::String(policy));
    Ok(())
}

/// The taints DefaultTolerationSeconds adds tolerations for, and for how long.
const DEFAULT_TOLERATED_TAINTS: [&str; 2] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Adds upstream's default `not-ready`/`unreachable` NoExecute tolerations to a new Pod.
pub(crate) fn default_toleration_seconds(store: &ResourceStore, obj: &mut Value) {
    let resource = store.resource;
    if !(resource.group.is_empty() && resource.kind == "Pod") {
        return;
    }
    add_default_tolerations(obj);
}

fn add_default_tolerations(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if tolerations.is_null() {
        *tolerations = Value::Array(Vec::new());
    }
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in DEFAULT_TOLERATED_TAINTS {
        let tolerated = list.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        });
        if !tolerated {
            list.push(serde_json::json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
}

#[cfg(test)]
mod default_toleration_tests {
    use serde_json::json;

    use super::add_default_tolerations;

    #[test]
    fn adds_both_tolerations_unless_present() {
        let mut pod = json!({ "spec": { "containers": [] } });
        add_default_tolerations(&mut pod);
        let t = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["key"], "node.kubernetes.io/not-ready");
        assert_eq!(t[1]["tolerationSeconds"], 300);

        let mut pod = json!({ "spec": { "tolerations": [
            { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5 },
        ] } });
        add_default_tolerations(&mut pod);
        let t = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 5);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");

        // A wildcard toleration (no key, no effect) tolerates everything.
        let mut pod = json!({ "spec": { "tolerations": [{ "operator": "Exists" }] } });
        add_default_tolerations(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(1));
    }
}
