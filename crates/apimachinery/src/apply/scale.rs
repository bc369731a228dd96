//! Ownership across the `scale` subresource: the replicas field of the parent object is
//! `.spec.replicas` of its `autoscaling/v1` `Scale`, and whoever writes `/scale` owns it in
//! the parent (upstream's `ScaleHandler`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::ApplyError;
use super::fieldpath::{FieldSet, Path};
use super::managed::{self, Managed, VersionedSet};

/// The group version of `Scale` objects.
pub const SCALE_API_VERSION: &str = "autoscaling/v1";

/// Converts `managedFields` between a parent object and its `Scale`.
#[derive(Debug, Clone)]
pub struct ScaleHandler<'a> {
    parent_entries: Option<&'a Value>,
    group_version: String,
    mappings: BTreeMap<String, Option<Path>>,
}

impl<'a> ScaleHandler<'a> {
    /// A handler for a parent whose `managedFields` are `parent_entries`, served at
    /// `group_version`, with its replicas path per API version (`apps/v1` →
    /// `.spec.replicas`; `None` for versions without one).
    pub fn new(
        parent_entries: Option<&'a Value>,
        group_version: &str,
        mappings: BTreeMap<String, Option<Path>>,
    ) -> Self {
        Self {
            parent_entries,
            group_version: group_version.to_owned(),
            mappings,
        }
    }

    /// The `managedFields` for the `Scale`: the parent's managers that own the replicas,
    /// now owning `.spec.replicas` at `autoscaling/v1`; `None` when there are none.
    pub fn to_subresource(&self) -> Result<Option<Value>, ApplyError> {
        let parent = managed::decode(self.parent_entries)?;
        let replicas = FieldSet::from_paths([&scale_replicas()]);
        let mut out = Managed::default();
        for (manager, vs) in &parent.fields {
            let Some(Some(path)) = self.mappings.get(&vs.api_version) else {
                continue;
            };
            if vs.set.has(&path.0) {
                out.fields.insert(
                    manager.clone(),
                    VersionedSet {
                        set: replicas.clone(),
                        api_version: SCALE_API_VERSION.to_owned(),
                        applied: vs.applied,
                    },
                );
                out.times.insert(
                    manager.clone(),
                    parent.times.get(manager).copied().flatten(),
                );
            }
        }
        Ok(managed::encode(&out))
    }

    /// The parent's `managedFields` after a write of the `Scale` whose `managedFields`
    /// are now `scale_entries`: managers that no longer own the scale's replicas lose the
    /// parent's, new owners gain them; `None` when no entry is left.
    pub fn to_parent(&self, scale_entries: Option<&Value>) -> Result<Option<Value>, ApplyError> {
        let parent = managed::decode(self.parent_entries)?;
        let mut scale = managed::decode(scale_entries)?;
        let mut out = Managed::default();
        for (manager, vs) in &parent.fields {
            let Some(path) = self.mappings.get(&vs.api_version) else {
                continue;
            };
            let time = parent.times.get(manager).copied().flatten();
            match path {
                Some(path) if vs.set.has(&path.0) => {
                    if scale.fields.remove(manager).is_some() {
                        out.fields.insert(manager.clone(), vs.clone());
                        out.times.insert(manager.clone(), time);
                    } else {
                        // The scale write took the replicas from this manager.
                        let set = vs.set.difference(&FieldSet::from_paths([path]));
                        if !set.is_empty() {
                            out.fields
                                .insert(manager.clone(), VersionedSet { set, ..vs.clone() });
                            out.times.insert(manager.clone(), time);
                        }
                    }
                }
                _ => {
                    out.fields.insert(manager.clone(), vs.clone());
                    out.times.insert(manager.clone(), time);
                }
            }
        }
        let parent_path = self.mappings.get(&self.group_version).cloned().flatten();
        for (manager, vs) in scale.fields {
            if !vs.set.has(&scale_replicas().0) {
                continue;
            }
            let set = parent_path
                .as_ref()
                .map(|p| FieldSet::from_paths([p]))
                .unwrap_or_default();
            out.times.insert(
                manager.clone(),
                parent.times.get(&manager).copied().flatten(),
            );
            out.fields.insert(
                manager,
                VersionedSet {
                    set,
                    api_version: self.group_version.clone(),
                    applied: vs.applied,
                },
            );
        }
        Ok(managed::encode(&out))
    }
}

fn scale_replicas() -> Path {
    Path::fields(&["spec", "replicas"])
}
