//! Who owns what after one write (upstream's `merge.Updater`): an update takes the fields
//! it changed from everyone else; an apply merges the configuration, prunes the fields its
//! manager stopped applying and fails on fields other managers own with other values.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ApplyError;
use super::fieldpath::{FieldSet, Path, value_eq};
use super::managed::{VersionedSet, print_manager};
use super::schema::ApplySchema;
use super::typed::{self, Comparison};
use crate::status::{Status, StatusCause, cause};

/// One field of the applied configuration that another manager owns with another value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's identifier (the JSON of its name, operation, version and
    /// subresource, as in upstream's field manager).
    pub manager: String,
    /// The contested field.
    pub path: Path,
}

impl Conflict {
    /// The manager as upstream's messages name it: `"kubectl-client-side-apply" using apps/v1`.
    pub fn manager_display(&self) -> String {
        print_manager(&self.manager)
    }
}

/// All conflicts of an apply, ordered by manager identifier and then by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

impl Conflicts {
    pub(crate) fn from_sets(sets: &BTreeMap<String, FieldSet>) -> Self {
        let mut out = Vec::new();
        for (manager, set) in sets {
            for path in set.paths() {
                out.push(Conflict {
                    manager: manager.clone(),
                    path,
                });
            }
        }
        Self(out)
    }

    /// The contested fields.
    pub fn paths(&self) -> FieldSet {
        FieldSet::from_paths(self.0.iter().map(|c| &c.path))
    }

    /// Upstream's 409 message: `Apply failed with 1 conflict: conflict with "a": .spec.replicas`,
    /// or for several one `conflicts with "a":` line per manager followed by `- <path>` lines.
    pub fn message(&self) -> String {
        if let [only] = self.0.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                only.manager_display(),
                only.path
            );
        }
        let mut by_manager: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
        for c in &self.0 {
            by_manager
                .entry(c.manager.as_str())
                .or_default()
                .push(&c.path);
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {}:", print_manager(manager)));
            lines.extend(paths.iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }

    /// One `FieldManagerConflict` cause per conflict.
    pub fn causes(&self) -> Vec<StatusCause> {
        self.0
            .iter()
            .map(|c| StatusCause {
                reason: cause::FIELD_MANAGER_CONFLICT.to_owned(),
                message: format!("conflict with {}", c.manager_display()),
                field: c.path.to_string(),
            })
            .collect()
    }

    /// The 409 `Status` upstream answers with.
    pub fn to_status(&self) -> Status {
        Status::apply_conflict(self.causes(), &self.message())
    }
}

/// The managers' field sets, by manager identifier.
pub(crate) type ManagerSets = BTreeMap<String, VersionedSet>;

/// The ownership rules for one kind: its schema and the fields its strategy resets.
pub(crate) struct Updater<'a> {
    pub schema: &'a dyn ApplySchema,
    pub ignored: &'a FieldSet,
}

impl Updater<'_> {
    /// Takes the changed fields away from every manager but `workflow`: conflicts unless
    /// `force`. Drops managers left with nothing.
    fn update_managers(
        &self,
        old: &Value,
        new: &Value,
        managers: &mut ManagerSets,
        workflow: &str,
        force: bool,
    ) -> Result<Comparison, Conflicts> {
        let mut comparison = typed::compare(old, new, self.schema);
        comparison.exclude(self.ignored);
        let changed = comparison.modified.union(&comparison.added);
        let mut conflicts: BTreeMap<String, FieldSet> = BTreeMap::new();
        for (manager, vs) in managers.iter() {
            if manager == workflow {
                continue;
            }
            let contested = vs.set.intersection(&changed);
            if !contested.is_empty() {
                conflicts.insert(manager.clone(), contested);
            }
        }
        if !force && !conflicts.is_empty() {
            return Err(Conflicts::from_sets(&conflicts));
        }
        for (manager, contested) in &conflicts {
            if let Some(vs) = managers.get_mut(manager) {
                vs.set = vs.set.difference(contested);
            }
        }
        if !comparison.removed.is_empty() {
            for (manager, vs) in managers.iter_mut() {
                if manager != workflow {
                    vs.set = vs.set.difference(&comparison.removed);
                }
            }
        }
        managers.retain(|_, vs| !vs.set.is_empty());
        Ok(comparison)
    }

    /// Records a non-apply write by `manager`: it owns what it changed.
    pub fn update(
        &self,
        live: &Value,
        new: &Value,
        version: &str,
        managers: &mut ManagerSets,
        manager: &str,
    ) {
        let Ok(comparison) = self.update_managers(live, new, managers, manager, true) else {
            return;
        };
        let previous = managers
            .get(manager)
            .map(|vs| vs.set.clone())
            .unwrap_or_default();
        let set = previous
            .difference(&comparison.removed)
            .union(&comparison.modified)
            .union(&comparison.added)
            .recursive_difference(self.ignored);
        if set.is_empty() {
            managers.remove(manager);
        } else {
            managers.insert(
                manager.to_owned(),
                VersionedSet {
                    set,
                    api_version: version.to_owned(),
                    applied: false,
                },
            );
        }
    }

    /// Applies `config` for `manager`. Returns the new object (`None` when it equals the
    /// live one) and the map entries that pruning emptied (to drop once ownership is known).
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        version: &str,
        managers: &mut ManagerSets,
        manager: &str,
        force: bool,
    ) -> Result<(Option<Value>, Vec<Vec<Step>>), ApplyError> {
        let merged = typed::merge(live, config, self.schema)
            .map_err(|e| ApplyError::Internal(format!("failed to merge config: {e}")))?;
        let last = managers.get(manager).cloned();
        let set = typed::to_field_set(config, self.schema).recursive_difference(self.ignored);
        managers.insert(
            manager.to_owned(),
            VersionedSet {
                set,
                api_version: version.to_owned(),
                applied: true,
            },
        );
        let (new, emptied) = self.prune(&merged, managers, last.as_ref());
        self.update_managers(live, &new, managers, manager, force)
            .map_err(ApplyError::Conflicts)?;
        if value_eq(live, &new) {
            return Ok((None, Vec::new()));
        }
        Ok((Some(new), emptied))
    }

    /// Removes what `manager` applied last time and no longer applies, unless someone
    /// (including its new configuration) owns it or it was never this manager's.
    fn prune(
        &self,
        merged: &Value,
        managers: &ManagerSets,
        last: Option<&VersionedSet>,
    ) -> (Value, Vec<Vec<Step>>) {
        let Some(last) = last.filter(|l| !l.set.is_empty()) else {
            return (merged.clone(), Vec::new());
        };
        let ensure = |set: &FieldSet| typed::ensure_named_fields_are_members(set, self.schema);
        let field_set = |v: &Value| ensure(&typed::to_field_set(v, self.schema));

        let last_set = ensure(&last.set);
        let pruned = typed::remove_items(merged, &last_set, self.schema);

        // Add back what any manager owns.
        let mut managed = FieldSet::new();
        for vs in managers.values() {
            managed.union_with(&vs.set);
        }
        let merged_set = field_set(merged);
        let keep = field_set(&pruned).union(&ensure(&managed));
        let pruned = typed::remove_items(merged, &merged_set.difference(&keep), self.schema);

        // Add back what this manager never owned ("dangling" fields).
        let drop = merged_set
            .difference(&field_set(&pruned))
            .intersection(&last_set);
        let mut emptied = Vec::new();
        let out = remove_tracking(merged, &drop, self.schema, &mut Vec::new(), &mut emptied);
        (out, emptied)
    }
}

/// A step into a JSON document: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// [`typed::remove_items`], also recording where a map entry became `null` because the
/// removal emptied it.
fn remove_tracking(
    value: &Value,
    to_remove: &FieldSet,
    schema: &dyn ApplySchema,
    at: &mut Vec<Step>,
    emptied: &mut Vec<Vec<Step>>,
) -> Value {
    let out = typed::remove_items(value, to_remove, schema);
    record_emptied(value, &out, at, emptied);
    out
}

/// Finds map entries that are `null` in `after` but were not `null` in `before`.
fn record_emptied(before: &Value, after: &Value, at: &mut Vec<Step>, emptied: &mut Vec<Vec<Step>>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, av) in a {
                let Some(bv) = b.get(k) else { continue };
                at.push(Step::Key(k.clone()));
                if av.is_null() && !bv.is_null() {
                    emptied.push(at.clone());
                } else {
                    record_emptied(bv, av, at, emptied);
                }
                at.pop();
            }
        }
        (Value::Array(b), Value::Array(a)) if a.len() == b.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                at.push(Step::Index(i));
                record_emptied(bv, av, at, emptied);
                at.pop();
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            // Items were removed: pair the survivors with the originals they came from.
            let mut bi = 0;
            for (i, av) in a.iter().enumerate() {
                while bi < b.len() && !same_item(&b[bi], av) {
                    bi += 1;
                }
                let Some(bv) = b.get(bi) else { break };
                at.push(Step::Index(i));
                record_emptied(bv, av, at, emptied);
                at.pop();
                bi += 1;
            }
        }
        _ => {}
    }
}

/// Whether `after` can be what removal left of `before` (same kind; for objects, no key
/// that `before` lacks).
fn same_item(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => a.keys().all(|k| b.contains_key(k)),
        (b, a) => std::mem::discriminant(b) == std::mem::discriminant(a) && value_eq(b, a),
    }
}

/// Deletes the recorded map entries that are still `null`.
pub(crate) fn drop_emptied(object: &mut Value, emptied: &[Vec<Step>]) {
    for path in emptied {
        drop_at(object, path);
    }
}

fn drop_at(node: &mut Value, path: &[Step]) {
    match (path, node) {
        ([Step::Key(last)], Value::Object(map)) if map.get(last).is_some_and(Value::is_null) => {
            map.remove(last);
        }
        ([Step::Key(k), rest @ ..], Value::Object(map)) => {
            if let Some(next) = map.get_mut(k) {
                drop_at(next, rest);
            }
        }
        ([Step::Index(i), rest @ ..], Value::Array(items)) => {
            if let Some(next) = items.get_mut(*i) {
                drop_at(next, rest);
            }
        }
        _ => {}
    }
}
