//! Namespaces (upstream's `pkg/registry/core/namespace/strategy.go`): created `Active` with the
//! `kubernetes` finalizer in `spec.finalizers`; only `finalize` may change those finalizers and
//! only `status` the phase; every namespace carries the `kubernetes.io/metadata.name` label.

use serde_json::{Value, json};
use tug_apimachinery::meta;

use crate::registry::{
    objmeta,
    strategy::{Strategy, default_should_delete_during_update},
    validation::NameRule,
};

/// The finalizer the namespace controller removes once a namespace is empty.
pub(crate) const KUBERNETES_FINALIZER: &str = "kubernetes";

/// The label every namespace carries with its own name.
pub(crate) const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The namespace strategy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NamespaceStrategy;

/// `spec.finalizers` of a namespace.
pub(crate) fn spec_finalizers(obj: &Value) -> Vec<String> {
    objmeta::at(obj, &["spec", "finalizers"])
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Strategy for NamespaceStrategy {
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        objmeta::set(obj, "status", json!({"phase": "Active"}));
        let mut finalizers = spec_finalizers(obj);
        if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
            finalizers.push(KUBERNETES_FINALIZER.to_owned());
        }
        objmeta::set(
            objmeta::child_mut(obj, "spec"),
            "finalizers",
            json!(finalizers),
        );
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        match objmeta::at(old, &["spec", "finalizers"]) {
            Some(f) => {
                let f = f.clone();
                objmeta::set(objmeta::child_mut(new, "spec"), "finalizers", f);
            }
            None => {
                if let Some(spec) = new.get_mut("spec") {
                    objmeta::remove(spec, "finalizers");
                }
            }
        }
        objmeta::copy_field(new, old, "status");
    }

    fn canonicalize(&self, obj: &mut Value) {
        let name = meta::name(obj).unwrap_or_default().to_owned();
        // Only fails on a non-object, which the store never hands over.
        let _ = meta::set_label(obj, NAME_LABEL, &name);
    }

    fn should_delete_during_update(&self, new: &Value, old: &Value) -> bool {
        spec_finalizers(new).is_empty() && default_should_delete_during_update(new, old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_start_active_with_the_kubernetes_finalizer_and_their_name_label() {
        let s = NamespaceStrategy;
        let mut ns = json!({"metadata": {"name": "team"}, "status": {"phase": "Terminating"}});
        s.prepare_for_create(&mut ns);
        s.canonicalize(&mut ns);
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["metadata"]["labels"][NAME_LABEL], json!("team"));
    }

    #[test]
    fn updates_cannot_change_spec_finalizers_or_status() {
        let s = NamespaceStrategy;
        let old = json!({"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let mut new = json!({"spec": {"finalizers": []}, "status": {"phase": "Terminating"}});
        s.prepare_for_update(&mut new, &old);
        assert_eq!(new, old);
    }
}
