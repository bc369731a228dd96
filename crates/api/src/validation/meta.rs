//! `metadata` validation shared by every kind: upstream's `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate` (apimachinery's, plus the core group's finalizer-name rule).

use serde_json::Value;
use tug_apimachinery::validation::{self as v, BadValue, ErrorList, FieldError, Path};

use super::util::{arr, bool_of, get, go_time, immutable, int_of, s, str_list, str_map};

/// How a kind's object names are checked (upstream's `ValidateNameFunc`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain: most kinds.
    Subdomain,
    /// A DNS-1123 label: namespaces, StatefulSets.
    Label,
    /// A DNS-1035 label: services.
    Dns1035,
    /// A path segment (no `/`, `%`, and not `.` or `..`): RBAC kinds.
    PathSegment,
}

impl NameRule {
    /// The problems with `name`; `prefix` is true for `generateName`.
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        match self {
            NameRule::Subdomain => v::name_is_dns_subdomain(name, prefix),
            NameRule::Label => v::name_is_dns_label(name, prefix),
            NameRule::Dns1035 => v::name_is_dns1035_label(name, prefix),
            NameRule::PathSegment => path_segment_name(name, prefix),
        }
    }
}

/// Upstream's `path.ValidatePathSegmentName`.
fn path_segment_name(name: &str, prefix: bool) -> Vec<String> {
    if !prefix {
        for bad in [".", ".."] {
            if name == bad {
                return vec![format!("may not be '{bad}'")];
            }
        }
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// Finalizer names the core group accepts without a domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Upstream's `validateKubeFinalizerName`.
pub(crate) fn kube_finalizer_name(name: &str, path: &Path) -> ErrorList {
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )
        .into()
    } else {
        ErrorList::new()
    }
}

fn finalizers(meta: &Value, path: &Path) -> ErrorList {
    let names = str_list(meta, "finalizers");
    let mut errs = ErrorList::new();
    for f in &names {
        errs.append(v::validate_finalizer_name(f, path));
    }
    if names.iter().any(|f| f == "orphan") && names.iter().any(|f| f == "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            names.clone(),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

fn core_finalizers(meta: &Value, path: &Path) -> ErrorList {
    str_list(meta, "finalizers")
        .iter()
        .flat_map(|f| kube_finalizer_name(f, path))
        .collect()
}

fn owner_references(meta: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut first_controller: Option<String> = None;
    for r in arr(meta, "ownerReferences") {
        let api_version = s(r, "apiVersion");
        let kind = s(r, "kind");
        // schema.FromAPIVersionAndKind: an unparsable group/version yields an empty version.
        let version = match api_version.matches('/').count() {
            0 => api_version,
            1 => api_version.split_once('/').map_or("", |(_, v)| v),
            _ => "",
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                kind,
                "must not be empty",
            ));
        }
        if s(r, "name").is_empty() {
            errs.push(FieldError::invalid(
                &path.child("name"),
                "",
                "must not be empty",
            ));
        }
        if s(r, "uid").is_empty() {
            errs.push(FieldError::invalid(
                &path.child("uid"),
                "",
                "must not be empty",
            ));
        }
        if api_version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                BadValue::from(r),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if bool_of(r, "controller") == Some(true) {
            let current = format!("{kind}/{}", s(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    BadValue::from(get(meta, "ownerReferences").unwrap_or(&Value::Null)),
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

fn managed_fields(meta: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, f) in arr(meta, "managedFields").iter().enumerate() {
        let p = path.index(i);
        let op = s(f, "operation");
        if op != "Apply" && op != "Update" {
            errs.push(FieldError::invalid(
                &p.child("operation"),
                op,
                "must be `Apply` or `Update`",
            ));
        }
        let ft = s(f, "fieldsType");
        if !ft.is_empty() && ft != "FieldsV1" {
            errs.push(FieldError::invalid(
                &p.child("fieldsType"),
                ft,
                "must be `FieldsV1`",
            ));
        }
        if s(f, "subresource").len() > 256 {
            errs.push(FieldError::too_long(&p.child("subresource"), Some(256)));
        }
    }
    errs
}

/// Labels, annotations, owner references, finalizers and managed fields: the checks that
/// apply both on create and on update.
fn common(meta: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(l) = str_map(meta, "labels") {
        errs.append(v::validate_labels(&l, &path.child("labels")));
    }
    if let Some(a) = str_map(meta, "annotations") {
        errs.append(v::validate_annotations(&a, &path.child("annotations")));
    }
    errs.append(owner_references(meta, &path.child("ownerReferences")));
    errs.append(finalizers(meta, &path.child("finalizers")));
    errs.append(managed_fields(meta, &path.child("managedFields")));
    errs
}

/// Upstream's `ValidateObjectMeta` (core flavour) for the `metadata` of a new object.
///
/// The registry assigns a name from `generateName` before validating, as upstream's
/// `BeforeCreate` does; a still-empty name is `Required`.
pub fn validate_object_meta(obj: &Value, namespaced: bool, rule: NameRule) -> ErrorList {
    let path = Path::new("metadata");
    let empty = Value::Object(Default::default());
    let meta = get(obj, "metadata").unwrap_or(&empty);
    let mut errs = ErrorList::new();
    let generate_name = s(meta, "generateName");
    if !generate_name.is_empty() {
        for m in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                generate_name,
                m,
            ));
        }
    }
    let name = s(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for m in rule.check(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, m));
        }
    }
    let namespace = s(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for m in v::name_is_dns_label(namespace, false) {
                errs.push(FieldError::invalid(&path.child("namespace"), namespace, m));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = int_of(meta, "generation") {
        errs.append(v::validate_nonnegative_field(g, &path.child("generation")));
    }
    errs.append(common(meta, &path));
    errs.append(core_finalizers(meta, &path.child("finalizers")));
    errs
}

/// Upstream's `ValidateObjectMetaUpdate` (core flavour).
///
/// Expects the registry to have filled in `resourceVersion` for unconditional updates,
/// as upstream's store does before validating.
pub fn validate_object_meta_update(new: &Value, old: &Value) -> ErrorList {
    let path = Path::new("metadata");
    let empty = Value::Object(Default::default());
    let meta = get(new, "metadata").unwrap_or(&empty);
    let old_meta = get(old, "metadata").unwrap_or(&empty);
    let mut errs = ErrorList::new();

    if get(old_meta, "deletionTimestamp").is_some() {
        let old_f = str_list(old_meta, "finalizers");
        let extra: Vec<String> = str_list(meta, "finalizers")
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let mut sorted = extra;
            sorted.sort();
            sorted.dedup();
            let quoted: Vec<String> = sorted.iter().map(|s| super::util::go_quote(s)).collect();
            errs.push(FieldError::forbidden(
                &path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    let rv = s(meta, "resourceVersion");
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("resourceVersion"),
            rv,
            "must be specified for an update",
        ));
    }
    let gen_new = int_of(meta, "generation").unwrap_or(0);
    if gen_new < int_of(old_meta, "generation").unwrap_or(0) {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            gen_new,
            "must not be decremented",
        ));
    }
    for key in ["name", "namespace", "uid"] {
        errs.append(immutable(
            get(meta, key),
            get(old_meta, key),
            BadValue::Str(s(meta, key).to_owned()),
            &path.child(key),
        ));
    }
    for key in ["creationTimestamp", "deletionTimestamp"] {
        errs.append(immutable(
            get(meta, key),
            get(old_meta, key),
            go_time(get(meta, key)),
            &path.child(key),
        ));
    }
    errs.append(immutable(
        get(meta, "deletionGracePeriodSeconds"),
        get(old_meta, "deletionGracePeriodSeconds"),
        super::util::int_ptr(int_of(meta, "deletionGracePeriodSeconds")),
        &path.child("deletionGracePeriodSeconds"),
    ));
    errs.append(common(meta, &path));
    errs.append(core_finalizers(meta, &path.child("finalizers")));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(errs: ErrorList, want: &[&str]) {
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn names_follow_the_kind_rule() {
        check(
            validate_object_meta(
                &json!({"metadata": {"name": "Web", "namespace": "default"}}),
                true,
                NameRule::Subdomain,
            ),
            &[
                "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ],
        );
        check(
            validate_object_meta(
                &json!({"metadata": {"name": "a.b"}}),
                false,
                NameRule::Label,
            ),
            &["metadata.name: Invalid value: \"a.b\": must not contain dots"],
        );
        check(
            validate_object_meta(
                &json!({"metadata": {"name": "a/b"}}),
                false,
                NameRule::PathSegment,
            ),
            &["metadata.name: Invalid value: \"a/b\": may not contain '/'"],
        );
    }

    #[test]
    fn namespace_presence_follows_scope() {
        check(
            validate_object_meta(
                &json!({"metadata": {"name": "a"}}),
                true,
                NameRule::Subdomain,
            ),
            &["metadata.namespace: Required value"],
        );
        check(
            validate_object_meta(
                &json!({"metadata": {"name": "a", "namespace": "x"}}),
                false,
                NameRule::Subdomain,
            ),
            &["metadata.namespace: Forbidden: not allowed on this type"],
        );
        check(
            validate_object_meta(&json!({"metadata": {}}), false, NameRule::Subdomain),
            &["metadata.name: Required value: name or generateName is required"],
        );
    }

    #[test]
    fn finalizers_need_a_domain_unless_standard() {
        check(
            validate_object_meta(
                &json!({"metadata": {"name": "a", "finalizers": ["foo", "kubernetes", "example.com/x"]}}),
                false,
                NameRule::Subdomain,
            ),
            &[
                "metadata.finalizers: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified",
            ],
        );
    }

    #[test]
    fn identity_fields_are_immutable_on_update() {
        let old = json!({"metadata": {"name": "a", "namespace": "ns", "uid": "1", "resourceVersion": "5",
            "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let new = json!({"metadata": {"name": "a", "namespace": "ns", "uid": "2", "resourceVersion": "5",
            "creationTimestamp": "2024-01-02T00:00:00Z"}});
        check(
            validate_object_meta_update(&new, &old),
            &[
                "metadata.uid: Invalid value: \"2\": field is immutable",
                "metadata.creationTimestamp: Invalid value: 2024-01-02 00:00:00 +0000 UTC: field is immutable",
            ],
        );
        let no_rv = json!({"metadata": {"name": "a", "namespace": "ns", "uid": "1",
            "creationTimestamp": "2024-01-01T00:00:00Z"}});
        check(
            validate_object_meta_update(&no_rv, &old),
            &["metadata.resourceVersion: Invalid value: \"\": must be specified for an update"],
        );
    }

    #[test]
    fn owner_references_need_identity_and_one_controller() {
        let obj = json!({"metadata": {"name": "a", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "1", "controller": true},
            {"apiVersion": "", "kind": "", "name": "", "uid": ""}
        ]}});
        check(
            validate_object_meta(&obj, false, NameRule::Subdomain),
            &[
                "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
            ],
        );
    }
}
