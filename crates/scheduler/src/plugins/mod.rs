//! The in-tree plugins, one file each, and the one registry list that names them. A plugin's
//! factory gets its `pluginConfig` arguments (JSON) and the [`Handle`].

use std::sync::Arc;

use crate::framework::{Handle, Plugin};

pub mod default_binder;
pub mod default_preemption;
pub mod helper;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod scheduling_gates;
pub mod taint_toleration;
#[cfg(test)]
pub mod testing;
pub mod volume_binding;

/// Builds a plugin from its arguments; the error names what is wrong with them.
pub type PluginFactory =
    fn(args: Option<&serde_json::Value>, handle: &Handle) -> Result<Arc<dyn Plugin>, String>;

/// Every plugin Tug has, by name.
pub const REGISTRY: &[(&str, PluginFactory)] = &[
    (priority_sort::NAME, priority_sort::new),
    (scheduling_gates::NAME, scheduling_gates::new),
    (node_name::NAME, node_name::new),
    (node_unschedulable::NAME, node_unschedulable::new),
    (taint_toleration::NAME, taint_toleration::new),
    (node_affinity::NAME, node_affinity::new),
    (node_ports::NAME, node_ports::new),
    (node_resources_fit::NAME, node_resources_fit::new),
    (volume_binding::NAME, volume_binding::new),
    (pod_topology_spread::NAME, pod_topology_spread::new),
    (inter_pod_affinity::NAME, inter_pod_affinity::new),
    (default_preemption::NAME, default_preemption::new),
    (
        node_resources_balanced_allocation::NAME,
        node_resources_balanced_allocation::new,
    ),
    (image_locality::NAME, image_locality::new),
    (default_binder::NAME, default_binder::new),
];

/// The default profile's plugins (upstream's `multiPoint` defaults) with their score weights,
/// in upstream's order.
pub const DEFAULT_PLUGINS: &[(&str, i64)] = &[
    (scheduling_gates::NAME, 1),
    (priority_sort::NAME, 1),
    (node_unschedulable::NAME, 1),
    (node_name::NAME, 1),
    (taint_toleration::NAME, 3),
    (node_affinity::NAME, 2),
    (node_ports::NAME, 1),
    (node_resources_fit::NAME, 1),
    (volume_binding::NAME, 1),
    (pod_topology_spread::NAME, 2),
    (inter_pod_affinity::NAME, 2),
    (default_preemption::NAME, 1),
    (node_resources_balanced_allocation::NAME, 1),
    (image_locality::NAME, 1),
    (default_binder::NAME, 1),
];

/// Parses a plugin's arguments into `T` (defaults when absent), naming the bad field.
pub fn parse_args<T: serde::de::DeserializeOwned + Default>(
    args: Option<&serde_json::Value>,
) -> Result<T, String> {
    match args {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| e.to_string()),
    }
}
