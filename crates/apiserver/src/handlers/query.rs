//! Query parameters: upstream's `ParameterCodec` decoding (`400 BadRequest` with its messages
//! for numbers and selectors) and the validation of the option types (`422 Invalid` on
//! `ListOptions`, `CreateOptions`, `UpdateOptions`, `PatchOptions`, `DeleteOptions`).

use std::time::Duration;

use tug_apimachinery::{
    GroupKind, Status,
    apply::FIELD_MANAGER_MAX_LENGTH,
    fields::{self, FieldSelector},
    labels::Selector,
    validation::{ErrorList, FieldError, Path},
};

use crate::registry::{DeleteOptions, ListOptions, ResourceVersionQuery, WatchOptions};

use super::{StatusResult, go_quote};

/// `fieldValidation`: what to do with unknown and duplicate fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (the server default).
    Warn,
    /// Reject the request.
    Strict,
}

/// A request's query, decoded once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes a raw query string.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Self {
            pairs: form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A string parameter; empty counts as absent, as Go's zero value does.
    fn string(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// A boolean parameter: anything but `0` and `false` (any case) is true.
    pub(crate) fn bool(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
    }

    /// An optional boolean parameter.
    fn opt_bool(&self, key: &str) -> Option<bool> {
        self.get(key).map(|_| self.bool(key))
    }

    /// An optional integer parameter; `400` with Go's message when it does not parse.
    fn int(&self, key: &str) -> StatusResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value.parse::<i64>().map(Some).map_err(|e| {
                let why = match e.kind() {
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                        "value out of range"
                    }
                    _ => "invalid syntax",
                };
                bad_request(&format!(
                    "strconv.ParseInt: parsing {}: {why}",
                    go_quote(value)
                ))
            }),
        }
    }

    /// `fieldValidation`, defaulting to `Warn` as upstream's server does.
    pub(crate) fn field_validation(&self) -> FieldValidation {
        match self.get("fieldValidation") {
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            _ => FieldValidation::Warn,
        }
    }

    /// `dryRun=All`.
    pub(crate) fn dry_run(&self) -> bool {
        !self.all("dryRun").is_empty()
    }

    /// `fieldManager`.
    pub(crate) fn field_manager(&self) -> Option<String> {
        self.string("fieldManager")
    }

    /// `force`.
    pub(crate) fn force(&self) -> Option<bool> {
        self.opt_bool("force")
    }
}

/// `400 BadRequest` with `message`.
pub(crate) fn bad_request(message: &str) -> Box<Status> {
    Box::new(Status::bad_request(message))
}

/// `422 Invalid` of an options kind (`ListOptions.meta.k8s.io "" is invalid: …`).
fn invalid_options(kind: &str, errors: &ErrorList) -> Box<Status> {
    Box::new(Status::invalid(
        &GroupKind::new("meta.k8s.io", kind),
        "",
        errors,
    ))
}

/// `dryRun`: only `All` is a value.
fn validate_dry_run(query: &Query, errors: &mut ErrorList) {
    let values = query.all("dryRun");
    if values.iter().any(|v| v != "All") {
        errors.push(FieldError::not_supported(
            &Path::new("dryRun"),
            values,
            &["All"],
        ));
    }
}

/// `fieldManager`: at most 128 bytes of printable characters.
fn validate_field_manager(manager: Option<&str>, errors: &mut ErrorList) {
    let Some(manager) = manager else {
        return;
    };
    let path = Path::new("fieldManager");
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errors.push(FieldError::too_long(&path, Some(FIELD_MANAGER_MAX_LENGTH)));
    }
    for (i, c) in manager.char_indices() {
        if c.is_control() {
            errors.push(FieldError::invalid(
                &path,
                manager,
                format!("invalid character U+{:04X} (at position {i})", u32::from(c)),
            ));
        }
    }
}

/// `fieldValidation`: empty, `Ignore`, `Strict` or `Warn`.
fn validate_field_validation(query: &Query, errors: &mut ErrorList) {
    if let Some(value) = query.get("fieldValidation")
        && !value.is_empty()
        && !matches!(value, "Ignore" | "Strict" | "Warn")
    {
        errors.push(FieldError::not_supported(
            &Path::new("fieldValidation"),
            value,
            &["Ignore", "Strict", "Warn"],
        ));
    }
}

/// Validates the options of a create or update (`CreateOptions` / `UpdateOptions`).
pub(crate) fn validate_write(query: &Query, kind: &str) -> StatusResult<()> {
    let mut errors = ErrorList::new();
    validate_field_manager(query.field_manager().as_deref(), &mut errors);
    validate_dry_run(query, &mut errors);
    validate_field_validation(query, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid_options(kind, &errors))
    }
}

/// Validates `PatchOptions`: `force` only for apply, `fieldManager` required for apply.
pub(crate) fn validate_patch(query: &Query, apply: bool) -> StatusResult<()> {
    let mut errors = ErrorList::new();
    if !apply {
        if query.force().is_some() {
            errors.push(FieldError::forbidden(
                &Path::new("force"),
                "may not be specified for non-apply patch",
            ));
        }
    } else if query.field_manager().is_none() {
        errors.push(FieldError::required(
            &Path::new("fieldManager"),
            "is required for apply patch",
        ));
    }
    validate_field_manager(query.field_manager().as_deref(), &mut errors);
    validate_dry_run(query, &mut errors);
    validate_field_validation(query, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid_options("PatchOptions", &errors))
    }
}

/// The list-or-watch options of a collection GET (or DELETE), decoded and validated.
#[derive(Clone, Debug, Default)]
pub(crate) struct Collection {
    /// `watch`.
    pub(crate) watch: bool,
    /// The selectors, limit, continue and resource version.
    pub(crate) list: ListOptions,
    /// `allowWatchBookmarks`.
    pub(crate) allow_bookmarks: bool,
    /// `sendInitialEvents`.
    pub(crate) send_initial_events: Option<bool>,
    /// `timeoutSeconds`.
    pub(crate) timeout: Option<Duration>,
}

impl Collection {
    /// The watch options of these options.
    pub(crate) fn watch_options(&self) -> WatchOptions {
        WatchOptions {
            label_selector: self.list.label_selector.clone(),
            field_selector: self.list.field_selector.clone(),
            version: self.list.version.clone(),
            allow_bookmarks: self.allow_bookmarks,
            send_initial_events: self.send_initial_events,
            timeout: self.timeout,
        }
    }
}

/// Decodes and validates list options. `name` is an object name from the legacy
/// `/watch/…/{name}` path, which becomes a `metadata.name` field selector.
pub(crate) fn collection(
    query: &Query,
    forced_watch: bool,
    name: Option<&str>,
) -> StatusResult<Collection> {
    let label_selector = match query.string("labelSelector") {
        Some(s) => Some(Selector::parse(&s).map_err(|e| bad_request(&e.to_string()))?),
        None => None,
    };
    let field_text = match (name, query.string("fieldSelector")) {
        (Some(name), Some(s)) => Some(format!("metadata.name={},{s}", fields::escape_value(name))),
        (Some(name), None) => Some(format!("metadata.name={}", fields::escape_value(name))),
        (None, s) => s,
    };
    let field_selector = match field_text {
        Some(s) => Some(FieldSelector::parse(&s).map_err(|e| bad_request(&e.to_string()))?),
        None => None,
    };
    let limit = query.int("limit")?.unwrap_or(0);
    let timeout = query
        .int("timeoutSeconds")?
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
    let options = Collection {
        watch: forced_watch || query.bool("watch"),
        list: ListOptions {
            label_selector,
            field_selector,
            limit,
            continue_token: query.string("continue"),
            version: ResourceVersionQuery {
                resource_version: query.get("resourceVersion").map(str::to_string),
                resource_version_match: query.string("resourceVersionMatch"),
            },
        },
        allow_bookmarks: query.bool("allowWatchBookmarks"),
        send_initial_events: query.opt_bool("sendInitialEvents"),
        timeout,
    };
    validate_list(&options)?;
    Ok(options)
}

/// Upstream's `ValidateListOptions`.
fn validate_list(options: &Collection) -> StatusResult<()> {
    let mut errors = ErrorList::new();
    let path = Path::new("resourceVersionMatch");
    let rv = options
        .list
        .version
        .resource_version
        .as_deref()
        .unwrap_or("");
    let matching = options
        .list
        .version
        .resource_version_match
        .as_deref()
        .unwrap_or("");
    let continuing = options.list.continue_token.is_some();
    if options.watch {
        if options.send_initial_events.is_some() && matching != "NotOlderThan" {
            errors.push(FieldError::forbidden(
                &path,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !matching.is_empty() {
            if options.send_initial_events.is_none() {
                errors.push(FieldError::forbidden(
                    &path,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if matching != "NotOlderThan" {
                errors.push(FieldError::not_supported(
                    &path,
                    matching,
                    &["NotOlderThan"],
                ));
            }
            if continuing {
                errors.push(FieldError::forbidden(
                    &path,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
    } else {
        if !matching.is_empty() {
            if rv.is_empty() {
                errors.push(FieldError::forbidden(
                    &path,
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if continuing {
                errors.push(FieldError::forbidden(
                    &path,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if matching != "Exact" && matching != "NotOlderThan" {
                errors.push(FieldError::not_supported(
                    &path,
                    matching,
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if matching == "Exact" && rv == "0" {
                errors.push(FieldError::forbidden(
                    &path,
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if options.send_initial_events.is_some() {
            errors.push(FieldError::forbidden(
                &Path::new("sendInitialEvents"),
                "sendInitialEvents is forbidden for list",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid_options("ListOptions", &errors))
    }
}

/// The `resourceVersion` of a GET.
pub(crate) fn get_version(query: &Query) -> ResourceVersionQuery {
    ResourceVersionQuery {
        resource_version: query.get("resourceVersion").map(str::to_string),
        resource_version_match: None,
    }
}

/// `DeleteOptions` from a request body (JSON or YAML, already parsed) or, without one, from
/// the query; validated as upstream does.
pub(crate) fn delete_options(
    query: &Query,
    body: Option<&serde_json::Value>,
) -> StatusResult<DeleteOptions> {
    let mut errors = ErrorList::new();
    let options = match body {
        Some(body) => {
            if !body.is_object() {
                return Err(bad_request(
                    "decoded object cannot be converted to DeleteOptions",
                ));
            }
            let int = |key: &str| body.get(key).and_then(serde_json::Value::as_i64);
            let text = |key: &str| {
                body.get(key)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            };
            let dry_run: Vec<String> = body
                .get("dryRun")
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if dry_run.iter().any(|v| v != "All") {
                errors.push(FieldError::not_supported(
                    &Path::new("dryRun"),
                    dry_run,
                    &["All"],
                ));
            }
            let preconditions = body.get("preconditions");
            let precondition = |key: &str| {
                preconditions
                    .and_then(|p| p.get(key))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            };
            DeleteOptions {
                grace_period_seconds: int("gracePeriodSeconds"),
                propagation_policy: text("propagationPolicy"),
                orphan_dependents: body
                    .get("orphanDependents")
                    .and_then(serde_json::Value::as_bool),
                precondition_uid: precondition("uid"),
                precondition_resource_version: precondition("resourceVersion"),
            }
        }
        None => {
            validate_dry_run(query, &mut errors);
            DeleteOptions {
                grace_period_seconds: query.int("gracePeriodSeconds")?,
                propagation_policy: query.string("propagationPolicy"),
                orphan_dependents: query.opt_bool("orphanDependents"),
                precondition_uid: None,
                precondition_resource_version: None,
            }
        }
    };
    let path = Path::new("propagationPolicy");
    if options.orphan_dependents.is_some() && options.propagation_policy.is_some() {
        errors.push(FieldError::invalid(
            &path,
            options.propagation_policy.clone().unwrap_or_default(),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    if let Some(policy) = &options.propagation_policy
        && !matches!(policy.as_str(), "Foreground" | "Background" | "Orphan")
    {
        errors.push(FieldError::not_supported(
            &path,
            policy.as_str(),
            &["Foreground", "Background", "Orphan", "nil"],
        ));
    }
    if errors.is_empty() {
        Ok(options)
    } else {
        Err(invalid_options("DeleteOptions", &errors))
    }
}

/// Whether the request's body or query asks for a dry run of a delete.
pub(crate) fn delete_dry_run(query: &Query, body: Option<&serde_json::Value>) -> bool {
    match body {
        Some(body) => body
            .get("dryRun")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|a| !a.is_empty()),
        None => query.dry_run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: StatusResult<impl std::fmt::Debug>) -> String {
        match result {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(status) => format!("{} {}", status.code, status.message),
        }
    }

    #[test]
    fn numbers_and_selectors_fail_with_upstreams_bad_request_messages() {
        let q = Query::parse(Some("limit=abc"));
        assert_eq!(
            message(collection(&q, false, None)),
            r#"400 strconv.ParseInt: parsing "abc": invalid syntax"#
        );
        let q = Query::parse(Some("fieldSelector=foo"));
        assert_eq!(
            message(collection(&q, false, None)),
            "400 invalid selector: 'foo'; can't understand 'foo'"
        );
        let q = Query::parse(Some("labelSelector=a%20b"));
        assert!(message(collection(&q, false, None)).starts_with("400 "));
    }

    #[test]
    fn list_option_combinations_are_validated_like_upstream() {
        let q = Query::parse(Some("resourceVersionMatch=NotOlderThan"));
        assert_eq!(
            message(collection(&q, false, None)),
            r#"422 ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"#
        );
        let q = Query::parse(Some("sendInitialEvents=true"));
        assert_eq!(
            message(collection(&q, true, None)),
            r#"422 ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"#
        );
        let q = Query::parse(Some(
            "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ));
        let options = collection(&q, false, None).expect("valid streaming list");
        assert!(options.watch && options.allow_bookmarks);
        assert_eq!(options.send_initial_events, Some(true));
    }

    #[test]
    fn a_legacy_watch_name_becomes_a_field_selector() {
        let q = Query::parse(Some("fieldSelector=spec.nodeName%3Dn1"));
        let options = collection(&q, true, Some("web")).expect("valid");
        let selector = options.list.field_selector.expect("selector");
        assert_eq!(selector.requires_exact_match("metadata.name"), Some("web"));
        assert_eq!(selector.requires_exact_match("spec.nodeName"), Some("n1"));
    }

    #[test]
    fn write_options_reject_bad_dry_run_and_field_validation_values() {
        let q = Query::parse(Some("dryRun=Some&fieldValidation=Loud"));
        assert_eq!(
            message(validate_write(&q, "CreateOptions")),
            r#"422 CreateOptions.meta.k8s.io "" is invalid: [dryRun: Unsupported value: []string{"Some"}: supported values: "All", fieldValidation: Unsupported value: "Loud": supported values: "Ignore", "Strict", "Warn"]"#
        );
        let long = "m".repeat(129);
        let q = Query::parse(Some(&format!("fieldManager={long}")));
        assert!(message(validate_write(&q, "UpdateOptions")).contains("fieldManager: Too long"));
        assert!(validate_write(&Query::parse(Some("dryRun=All")), "CreateOptions").is_ok());
    }

    #[test]
    fn apply_patches_need_a_field_manager_and_only_they_may_force() {
        let q = Query::parse(Some("force=true"));
        assert_eq!(
            message(validate_patch(&q, true)),
            r#"422 PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
        );
        assert_eq!(
            message(validate_patch(&q, false)),
            r#"422 PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch"#
        );
    }

    #[test]
    fn delete_options_come_from_the_body_or_the_query() {
        let q = Query::parse(Some("gracePeriodSeconds=0&propagationPolicy=Foreground"));
        let options = delete_options(&q, None).expect("valid");
        assert_eq!(options.grace_period_seconds, Some(0));
        assert_eq!(options.propagation_policy.as_deref(), Some("Foreground"));
        let body = serde_json::json!({"kind": "DeleteOptions", "propagationPolicy": "Sideways"});
        assert!(
            message(delete_options(&q, Some(&body))).contains("Unsupported value: \"Sideways\"")
        );
    }
}
