//! Object-meta validation every kind shares (upstream's `ValidateObjectMeta`,
//! `ValidateObjectMetaUpdate` and the path-segment name check of `rest.BeforeCreate`), with
//! upstream's field paths and messages.

use std::collections::BTreeSet;

use serde_json::Value;
use tug_apimachinery::{
    meta,
    validation::{self as v, ErrorList, FieldError, Path},
};

use super::objmeta;

/// How a kind's `metadata.name` (and `generateName`) is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// A DNS-1123 subdomain (most kinds).
    Subdomain,
    /// A DNS-1123 label (namespaces, statefulsets).
    Label,
    /// A DNS-1035 label (services).
    Dns1035,
    /// Anything usable as a URL path segment (RBAC kinds, persistent volumes).
    PathSegment,
}

impl NameRule {
    /// The problems with `name`; `prefix` for `generateName`, where a trailing dash is fine.
    pub(crate) fn check(self, name: &str, prefix: bool) -> Vec<String> {
        match self {
            NameRule::Subdomain => v::name_is_dns_subdomain(name, prefix),
            NameRule::Label => v::name_is_dns_label(name, prefix),
            NameRule::Dns1035 => v::name_is_dns1035_label(name, prefix),
            NameRule::PathSegment => path_segment_problems(name, prefix),
        }
    }
}

/// Upstream's `path.ValidatePathSegmentName`: a name must not be `.` or `..` and must not
/// contain `/` or `%` (a prefix only the latter).
pub(crate) fn path_segment_problems(name: &str, prefix: bool) -> Vec<String> {
    if !prefix {
        for bad in [".", ".."] {
            if name == bad {
                return vec![format!("may not be '{bad}'")];
            }
        }
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// The finalizer names upstream accepts without a domain.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Owner kinds upstream refuses (`BannedOwners`).
const BANNED_OWNERS: &[(&str, &str)] = &[("v1", "Event")];

/// `ValidateObjectMeta` of a new object of a kind whose names follow `rule`.
pub(crate) fn validate_object_meta(obj: &Value, namespaced: bool, rule: NameRule) -> ErrorList {
    let path = Path::new("metadata");
    let mut errs = ErrorList::new();

    let generate_name = meta::generate_name(obj).unwrap_or_default();
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = meta::name(obj).unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, msg));
        }
    }

    let namespace = meta::namespace(obj).unwrap_or_default();
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for msg in v::name_is_dns_label(namespace, false) {
                errs.push(FieldError::invalid(
                    &path.child("namespace"),
                    namespace,
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }

    if let Some(generation) = meta::generation(obj) {
        errs.append(v::validate_nonnegative_field(
            generation,
            &path.child("generation"),
        ));
    }
    errs.append(v::validate_labels(
        &meta::labels(obj),
        &path.child("labels"),
    ));
    errs.append(v::validate_annotations(
        &meta::annotations(obj),
        &path.child("annotations"),
    ));
    errs.append(validate_owner_references(
        meta::owner_references(obj),
        &path.child("ownerReferences"),
    ));
    errs.append(validate_finalizers(
        &meta::finalizers(obj),
        &path.child("finalizers"),
    ));
    errs
}

fn validate_owner_references(refs: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let api_version = s("apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if s("kind").is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                s("kind"),
                "must not be empty",
            ));
        }
        if s("name").is_empty() {
            errs.push(FieldError::invalid(
                &path.child("name"),
                s("name"),
                "must not be empty",
            ));
        }
        if s("uid").is_empty() {
            errs.push(FieldError::invalid(
                &path.child("uid"),
                s("uid"),
                "must not be empty",
            ));
        }
        if BANNED_OWNERS.contains(&(api_version, s("kind"))) {
            errs.push(FieldError::invalid(
                path,
                r,
                format!(
                    "/{api_version}, Kind={} is disallowed from being an owner",
                    s("kind")
                ),
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", s("kind"), s("name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    &Value::Array(refs.to_vec()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

fn validate_finalizers(finalizers: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for f in finalizers {
        let problems = v::validate_finalizer_name(f, path);
        if problems.is_empty() && !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            errs.push(FieldError::invalid(
                path,
                f.as_str(),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
        errs.append(problems);
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            finalizers.to_vec(),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// The common name check `rest.BeforeCreate` runs after the kind's own validation: names must
/// be usable as URL path segments, and the namespace must suit the scope.
pub(crate) fn validate_common(obj: &Value, namespaced: bool) -> ErrorList {
    validate_object_meta(obj, namespaced, NameRule::PathSegment)
}

/// `ValidateObjectMetaUpdate`: identity and deletion fields are immutable, the generation never
/// goes down, no finalizer may be added once deletion has started.
pub(crate) fn validate_object_meta_update(new: &Value, old: &Value) -> ErrorList {
    let path = Path::new("metadata");
    let mut errs = ErrorList::new();
    if meta::deletion_timestamp(old).is_some() {
        let old_finalizers: BTreeSet<String> = meta::finalizers(old).into_iter().collect();
        let extra: BTreeSet<String> = meta::finalizers(new)
            .into_iter()
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        if !extra.is_empty() {
            let quoted: Vec<String> = extra.iter().map(|f| objmeta::quote(f)).collect();
            errs.push(FieldError::forbidden(
                &path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    let new_generation = meta::generation(new).unwrap_or(0);
    if new_generation < meta::generation(old).unwrap_or(0) {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            new_generation,
            "must not be decremented",
        ));
    }
    for key in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let a = objmeta::meta_value(new, key).filter(|v| !v.is_null());
        let b = objmeta::meta_value(old, key).filter(|v| !v.is_null());
        if a != b {
            let bad = a.cloned().unwrap_or(Value::Null);
            errs.push(FieldError::invalid(
                &path.child(key),
                &bad,
                v::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn names_are_checked_with_the_kinds_rule() {
        let bad = json!({"metadata": {"name": "Web_1", "namespace": "default"}});
        let errs = validate_object_meta(&bad, true, NameRule::Subdomain);
        assert_eq!(errs.len(), 1);
        assert!(messages(&errs)[0].starts_with(
            "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain"
        ));
        let rbac = json!({"metadata": {"name": "system:controller:x"}});
        assert!(validate_object_meta(&rbac, false, NameRule::PathSegment).is_empty());
        let slash = json!({"metadata": {"name": "a/b"}});
        assert_eq!(
            messages(&validate_common(&slash, false)),
            ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]
        );
    }

    #[test]
    fn missing_names_namespaces_and_scope_mismatches_are_reported() {
        let errs = validate_object_meta(&json!({"metadata": {}}), true, NameRule::Subdomain);
        assert_eq!(
            messages(&errs),
            [
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value"
            ]
        );
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "n", "namespace": "x"}}),
            false,
            NameRule::Label,
        );
        assert_eq!(
            messages(&errs),
            ["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn finalizers_must_be_qualified_or_standard_and_not_contradict() {
        let obj = json!({"metadata": {"name": "a", "finalizers": ["kubernetes", "example.com/x", "bogus", "orphan", "foregroundDeletion"]}});
        let errs = messages(&validate_object_meta(&obj, false, NameRule::Subdomain));
        assert_eq!(
            errs,
            [
                "metadata.finalizers: Invalid value: \"bogus\": name is neither a standard finalizer name nor is it fully qualified",
                "metadata.finalizers: Invalid value: []string{\"kubernetes\", \"example.com/x\", \"bogus\", \"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"
            ]
        );
    }

    #[test]
    fn identity_fields_are_immutable_and_finalizers_frozen_while_deleting() {
        let old = json!({"metadata": {"name": "a", "uid": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x"]}});
        let new = json!({"metadata": {"name": "a", "uid": "2", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x", "b.io/y"]}});
        assert_eq!(
            messages(&validate_object_meta_update(&new, &old)),
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}",
                "metadata.uid: Invalid value: \"2\": field is immutable"
            ]
        );
    }
}
