//! PATCH: the four patch types (`json-patch`, `merge-patch`, `strategic-merge-patch`,
//! `apply-patch+yaml`), parsed once per request and applied to the live object inside the
//! registry's update (so that a conflict re-runs them on the fresh object), followed by field
//! validation of the patched object, the name check and `managedFields` ownership, with
//! upstream's status codes for each failure.

use serde_json::Value;
use tug_api::{Gvk, catalog::Resource, schema};
use tug_apimachinery::{
    GroupKind, GroupResource, Status,
    apply::{self, ApplyOptions, Timestamp, UpdateOptions},
    patch::{self as engines, PatchError},
    validation::{BadValue, ErrorList, FieldError, Path},
};

use super::{
    StatusResult, Warnings, body,
    query::{FieldValidation, bad_request},
    response::generic,
    schemas::{SmpSchema, TypedSchema, reset_fields},
};

/// The patch types, in the order upstream lists them in its `415`.
pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// A patch type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchType {
    /// RFC 6902.
    Json,
    /// RFC 7396.
    Merge,
    /// Strategic merge patch.
    Strategic,
    /// Server-side apply.
    Apply,
}

impl PatchType {
    /// The patch type a `Content-Type` names.
    pub(crate) fn from_media_type(media: &str) -> Option<Self> {
        match media {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// What a patch needs to know about the request.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The resource patched.
    pub(crate) resource: &'static Resource,
    /// The kind of the endpoint (the parent's, or a subresource's like `Scale`).
    pub(crate) gvk: Gvk<'static>,
    /// The subresource (empty for the object itself).
    pub(crate) subresource: String,
    /// The object name from the URL.
    pub(crate) name: String,
    /// The namespace from the URL.
    pub(crate) namespace: Option<String>,
    /// `fieldValidation`.
    pub(crate) validation: FieldValidation,
    /// The field manager (`fieldManager`, else from the User-Agent).
    pub(crate) manager: String,
    /// `force` (apply only).
    pub(crate) force: bool,
}

/// A parsed patch, ready to be applied to live objects.
#[derive(Debug)]
pub(crate) struct Patcher {
    kind: PatchType,
    patch: Value,
    target: Target,
    /// Warnings of the last run (a conflict retry starts them afresh).
    pub(crate) warnings: Warnings,
}

impl Patcher {
    /// Parses the patch body (`400` when it cannot be read as its type says).
    pub(crate) fn new(kind: PatchType, body: &[u8], target: Target) -> StatusResult<Self> {
        let patch = match kind {
            PatchType::Apply => body::parse(body, super::negotiate::BodyFormat::Yaml)
                .map_err(|e| bad_request(&format!("error decoding YAML: {e}")))?,
            PatchType::Strategic => {
                serde_json::from_slice(body).map_err(|e| bad_request(&e.to_string()))?
            }
            PatchType::Json | PatchType::Merge => serde_json::from_slice(body)
                .map_err(|e| bad_request(&format!("error decoding patch: {e}")))?,
        };
        if kind == PatchType::Json && !patch.is_array() {
            return Err(bad_request(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
            ));
        }
        if kind == PatchType::Strategic && SmpSchema::for_kind(target.gvk).is_none() {
            return Err(Box::new(Status::unsupported_media_type(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ])));
        }
        Ok(Self {
            kind,
            patch,
            target,
            warnings: Warnings::default(),
        })
    }

    fn group_resource(&self) -> GroupResource {
        GroupResource::new(self.target.resource.group, self.target.resource.plural)
    }

    /// The new object: the patch applied to `live`, validated and with its ownership
    /// recorded. `None` (no such object) creates for apply and is `404` for the others.
    pub(crate) fn apply_to(&self, live: Option<&Value>) -> StatusResult<Value> {
        self.warnings.take();
        let t = &self.target;
        let now = Timestamp::from_unix_seconds(now_seconds());
        let api_version = t.gvk.api_version();
        let typed = TypedSchema::for_kind(t.gvk);
        let has_status = t.resource.subresource("status").is_some();
        let reset = reset_fields(has_status, &t.subresource);

        if self.kind == PatchType::Apply {
            let schema = typed.ok_or_else(|| {
                Box::new(Status::internal_error(&format!("no schema for {}", t.gvk)))
            })?;
            let options = ApplyOptions {
                manager: &t.manager,
                api_version: &api_version,
                kind: t.gvk.kind,
                subresource: &t.subresource,
                force: t.force,
                reset_fields: &reset,
                now,
            };
            let mut object = apply::apply(live, &self.patch, &options, &schema)
                .map_err(|e| Box::new(e.to_status()))?;
            body::prune_unknown(t.gvk, &mut object);
            self.check_name(&object)?;
            return Ok(object);
        }

        let Some(live) = live else {
            return Err(Box::new(Status::not_found(&self.group_resource(), &t.name)));
        };
        let mut patched = self.patch_live(live)?;
        if !patched.is_object() {
            return Err(self.invalid_patch(&patched, "json: cannot unmarshal into Go value"));
        }

        if t.validation != FieldValidation::Ignore {
            let unknown = schema::unknown_fields(t.gvk, &patched);
            if !unknown.is_empty() {
                if t.validation == FieldValidation::Strict {
                    return Err(self.invalid_patch(
                        &patched,
                        &format!("strict decoding error: {}", unknown.join(", ")),
                    ));
                }
                self.warnings.add_all(unknown);
            }
        }
        body::prune_unknown(t.gvk, &mut patched);
        if let Some(map) = patched.as_object_mut() {
            map.insert("apiVersion".into(), Value::from(api_version.clone()));
            map.insert("kind".into(), Value::from(t.gvk.kind));
        }
        self.check_name(&patched)?;

        if t.subresource != "scale"
            && let Some(schema) = typed
        {
            let options = UpdateOptions {
                manager: &t.manager,
                api_version: &api_version,
                subresource: &t.subresource,
                reset_fields: &reset,
                now,
            };
            patched = apply::update(Some(live), &patched, &options, &schema);
        }
        Ok(patched)
    }

    /// A JSON, merge or strategic merge patch applied to the live object.
    fn patch_live(&self, live: &Value) -> StatusResult<Value> {
        match self.kind {
            PatchType::Json => engines::apply_json_patch(live, &self.patch).map_err(|e| match e {
                PatchError::InvalidJsonPatch(message) => bad_request(&message),
                _ => Box::new(generic(
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request",
                )),
            }),
            PatchType::Merge => engines::apply_merge_patch(live, &self.patch)
                .map_err(|e| Box::new(unknown_error(&e.to_string()))),
            PatchType::Strategic => {
                let schema = SmpSchema::for_kind(self.target.gvk).ok_or_else(|| {
                    Box::new(Status::unsupported_media_type(&[
                        "application/json-patch+json",
                        "application/merge-patch+json",
                        "application/apply-patch+yaml",
                    ]))
                })?;
                engines::strategic_merge_patch(live, &self.patch, &schema)
                    .map_err(|e| strategic_error(&e))
            }
            PatchType::Apply => Err(Box::new(Status::internal_error(
                "an apply patch is not applied to the live object",
            ))),
        }
    }

    /// `422` with upstream's `patch: Invalid value` cause (the value is the patched object for
    /// JSON and merge patches, the patch for strategic ones, as upstream shows them).
    fn invalid_patch(&self, patched: &Value, why: &str) -> Box<Status> {
        let shown = match self.kind {
            PatchType::Strategic => go_map(&self.patch),
            _ => patched.to_string(),
        };
        let errors: ErrorList =
            FieldError::invalid(&Path::new("patch"), BadValue::Str(shown), why).into();
        Box::new(Status::invalid(&GroupKind::default(), "", &errors))
    }

    /// Upstream's `checkName`: the patched object keeps the URL's name and namespace.
    fn check_name(&self, object: &Value) -> StatusResult<()> {
        check_name(object, &self.target.name, self.target.namespace.as_deref())
    }
}

/// Upstream's `checkName` (`400` when the object's name or namespace disagrees with the URL).
pub(crate) fn check_name(object: &Value, name: &str, namespace: Option<&str>) -> StatusResult<()> {
    let meta = object.get("metadata");
    let object_name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if object_name != name {
        return Err(bad_request(&format!(
            "the name of the object ({object_name}) does not match the name on the URL ({name})"
        )));
    }
    if let Some(namespace) = namespace.filter(|n| !n.is_empty()) {
        let object_namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !object_namespace.is_empty() && object_namespace != namespace {
            return Err(bad_request(&format!(
                "the namespace of the object ({object_namespace}) does not match the namespace on the request ({namespace})"
            )));
        }
    }
    Ok(())
}

/// A non-API error as upstream reports it: `500` with reason `Unknown` (left empty) and the
/// error's text.
fn unknown_error(message: &str) -> Status {
    Status {
        status: tug_apimachinery::status::STATUS_FAILURE.to_string(),
        code: 500,
        message: message.to_string(),
        ..Status::default()
    }
}

/// Upstream's `interpretStrategicMergePatchError`.
fn strategic_error(error: &PatchError) -> Box<Status> {
    Box::new(match error {
        PatchError::BadJsonDoc
        | PatchError::BadPatchFormatForPrimitiveList
        | PatchError::BadPatchFormatForRetainKeys
        | PatchError::BadPatchFormatForSetElementOrderList => {
            Status::bad_request(&error.to_string())
        }
        PatchError::NoListOfLists => generic(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        ),
        other => unknown_error(&other.to_string()),
    })
}

/// Go's `%+v` of a decoded JSON map (`map[spec:map[replicas:3]]`), as upstream shows the patch
/// in strategic merge errors.
fn go_map(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_map(v)))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_map).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".to_string(),
        other => other.to_string(),
    }
}

/// The seconds since the epoch, now.
pub(crate) fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tug_api::catalog;

    use super::*;

    fn target(validation: FieldValidation) -> Target {
        let resource = catalog::by_gvr("apps", "v1", "deployments").expect("deployments");
        Target {
            resource,
            gvk: resource.gvk(),
            subresource: String::new(),
            name: "web".into(),
            namespace: Some("default".into()),
            validation,
            manager: "kubectl-patch".into(),
            force: false,
        }
    }

    fn live() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "default", "resourceVersion": "5"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "nginx"}]}}}})
    }

    fn patcher(kind: PatchType, body: &str, validation: FieldValidation) -> Patcher {
        Patcher::new(kind, body.as_bytes(), target(validation)).expect("parses")
    }

    #[test]
    fn patches_of_each_type_apply_and_record_the_manager() {
        let merged = patcher(
            PatchType::Merge,
            r#"{"spec":{"replicas":3}}"#,
            FieldValidation::Strict,
        )
        .apply_to(Some(&live()))
        .expect("merge");
        assert_eq!(merged["spec"]["replicas"], 3);
        let managers: Vec<&str> = merged["metadata"]["managedFields"]
            .as_array()
            .map(|m| m.iter().filter_map(|e| e["manager"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(managers, ["kubectl-patch"]);

        let json_patched = patcher(
            PatchType::Json,
            r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
            FieldValidation::Strict,
        )
        .apply_to(Some(&live()))
        .expect("json");
        assert_eq!(json_patched["spec"]["replicas"], 4);

        let smp = patcher(
            PatchType::Strategic,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"busybox:2"}]}}}}"#,
            FieldValidation::Strict,
        )
        .apply_to(Some(&live()))
        .expect("smp");
        assert_eq!(
            smp["spec"]["template"]["spec"]["containers"][1]["image"], "nginx",
            "strategic merge keeps the other container"
        );
    }

    #[test]
    fn unknown_fields_after_patching_follow_field_validation() {
        let body = r#"{"spec":{"foo":1}}"#;
        let err = patcher(PatchType::Merge, body, FieldValidation::Strict)
            .apply_to(Some(&live()))
            .expect_err("strict");
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .ends_with(r#": strict decoding error: unknown field "spec.foo""#),
            "{}",
            err.message
        );
        let warned = patcher(PatchType::Merge, body, FieldValidation::Warn);
        let object = warned.apply_to(Some(&live())).expect("warn");
        assert_eq!(warned.warnings.take(), [r#"unknown field "spec.foo""#]);
        assert_eq!(object["spec"].get("foo"), None);
    }

    #[test]
    fn failures_map_to_upstreams_codes() {
        let missing = patcher(PatchType::Merge, "{}", FieldValidation::Warn)
            .apply_to(None)
            .expect_err("404");
        assert_eq!(
            (missing.code, missing.message.as_str()),
            (404, r#"deployments.apps "web" not found"#)
        );
        let failed = patcher(
            PatchType::Json,
            r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
            FieldValidation::Warn,
        )
        .apply_to(Some(&live()))
        .expect_err("422");
        assert_eq!(
            (failed.code, failed.reason.as_str(), failed.message.as_str()),
            (
                422,
                "Invalid",
                "the server rejected our request due to an error in our request"
            )
        );
        let renamed = patcher(
            PatchType::Merge,
            r#"{"metadata":{"name":"other"}}"#,
            FieldValidation::Warn,
        )
        .apply_to(Some(&live()))
        .expect_err("400");
        assert_eq!(
            renamed.message,
            "the name of the object (other) does not match the name on the URL (web)"
        );
        let broken =
            Patcher::new(PatchType::Merge, b"{", target(FieldValidation::Warn)).expect_err("400");
        assert_eq!(broken.code, 400);
    }

    #[test]
    fn go_maps_print_like_fmt() {
        assert_eq!(
            go_map(&json!({"spec": {"replicas": 3, "b": [1, "x"]}})),
            "map[spec:map[b:[1 x] replicas:3]]"
        );
    }
}
