//! The `meta/v1 Status` object and constructors for every API error upstream returns.
//!
//! Messages, reasons, codes and `details` mirror `k8s.io/apimachinery/pkg/api/errors`
//! and the API server's response writers, because clients branch on `reason` and
//! `code` and show `message` to users verbatim.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::meta::{GroupKind, GroupResource};
use crate::validation::ErrorList;

/// The detail upstream gives when a write lost an optimistic-concurrency race.
pub const OPTIMISTIC_LOCK_ERROR_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// `status` of a [`Status`]: whether the operation succeeded.
pub const STATUS_SUCCESS: &str = "Success";
/// `status` of a failed operation.
pub const STATUS_FAILURE: &str = "Failure";

/// Machine-readable reasons (`Status.reason`).
pub mod reason {
    /// 401.
    pub const UNAUTHORIZED: &str = "Unauthorized";
    /// 403.
    pub const FORBIDDEN: &str = "Forbidden";
    /// 404.
    pub const NOT_FOUND: &str = "NotFound";
    /// 409 on create.
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    /// 409 on update.
    pub const CONFLICT: &str = "Conflict";
    /// 410.
    pub const GONE: &str = "Gone";
    /// 422.
    pub const INVALID: &str = "Invalid";
    /// 500 with retry.
    pub const SERVER_TIMEOUT: &str = "ServerTimeout";
    /// 500 on a corrupt stored object.
    pub const STORE_READ_ERROR: &str = "StorageReadError";
    /// 504.
    pub const TIMEOUT: &str = "Timeout";
    /// 429.
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";
    /// 400.
    pub const BAD_REQUEST: &str = "BadRequest";
    /// 405.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// 406.
    pub const NOT_ACCEPTABLE: &str = "NotAcceptable";
    /// 413.
    pub const REQUEST_ENTITY_TOO_LARGE: &str = "RequestEntityTooLarge";
    /// 415.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    /// 500.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// 410 for a too old resource version.
    pub const EXPIRED: &str = "Expired";
    /// 503.
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
}

/// Cause types that are not field errors (`details.causes[].reason`).
pub mod cause {
    /// A watch or list asked for a resource version newer than the server has.
    pub const RESOURCE_VERSION_TOO_LARGE: &str = "ResourceVersionTooLarge";
    /// A server-side apply conflict with another field manager.
    pub const FIELD_MANAGER_CONFLICT: &str = "FieldManagerConflict";
    /// An unexpected response from a server.
    pub const UNEXPECTED_SERVER_RESPONSE: &str = "UnexpectedServerResponse";
}

/// `ListMeta` as it appears in a `Status` (usually empty, `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusListMeta {
    /// Deprecated self link.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    /// Resource version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// A continue token (set on an inconsistent-continue expiry).
    #[serde(default, rename = "continue", skip_serializing_if = "String::is_empty")]
    pub continue_token: String,
    /// Remaining item count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

/// One cause of a failure (`details.causes[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    /// The cause type, e.g. `FieldValueRequired`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field path, e.g. `spec.containers[0].image`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// Extra data about a failure (`details`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// The object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The API group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The kind or resource (upstream puts the resource here for most errors).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The object UID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Individual causes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Seconds the client should wait before retrying.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_after_seconds: i32,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

fn is_none_details(d: &Option<StatusDetails>) -> bool {
    d.is_none()
}

fn default_kind() -> String {
    "Status".to_owned()
}

fn default_api_version() -> String {
    "v1".to_owned()
}

/// The `meta/v1 Status` object, serialised with upstream's field names and omissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `Status`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Always `v1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Always present, usually `{}`.
    #[serde(default)]
    pub metadata: StatusListMeta,
    /// `Success` or `Failure`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// A human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// A machine-readable reason (see [`reason`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Extra data.
    #[serde(default, skip_serializing_if = "is_none_details")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i32,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            kind: default_kind(),
            api_version: default_api_version(),
            metadata: StatusListMeta::default(),
            status: String::new(),
            message: String::new(),
            reason: String::new(),
            details: None,
            code: 0,
        }
    }
}

fn gr_details(resource: &GroupResource, name: &str) -> StatusDetails {
    StatusDetails {
        group: resource.group.clone(),
        kind: resource.resource.clone(),
        name: name.to_owned(),
        ..StatusDetails::default()
    }
}

/// Who asked for what, for the authorizer's 403 message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForbiddenAttributes {
    /// The user name.
    pub user: String,
    /// The verb (`get`, `list`, `create`, …).
    pub verb: String,
    /// Whether this is a resource request (otherwise a non-resource path).
    pub resource_request: bool,
    /// The API group.
    pub api_group: String,
    /// The resource.
    pub resource: String,
    /// The subresource, if any.
    pub subresource: String,
    /// The namespace, if any.
    pub namespace: String,
    /// The object name, if any.
    pub name: String,
    /// The request path (non-resource requests).
    pub path: String,
}

impl ForbiddenAttributes {
    /// The authorizer's sentence: `User "u" cannot get resource "pods" in API group "" in the namespace "default"`.
    pub fn message(&self) -> String {
        let q = crate::gofmt::quote;
        if !self.resource_request {
            return format!(
                "User {} cannot {} path {}",
                q(&self.user),
                self.verb,
                q(&self.path)
            );
        }
        let mut resource = self.resource.clone();
        if !self.subresource.is_empty() {
            resource = format!("{resource}/{}", self.subresource);
        }
        if self.namespace.is_empty() {
            format!(
                "User {} cannot {} resource {} in API group {} at the cluster scope",
                q(&self.user),
                self.verb,
                q(&resource),
                q(&self.api_group)
            )
        } else {
            format!(
                "User {} cannot {} resource {} in API group {} in the namespace {}",
                q(&self.user),
                self.verb,
                q(&resource),
                q(&self.api_group),
                q(&self.namespace)
            )
        }
    }
}

/// HTML-escapes the characters upstream's response writer escapes in 403 messages.
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Status {
    fn failure(code: i32, reason: &str, message: String, details: Option<StatusDetails>) -> Self {
        Self {
            status: STATUS_FAILURE.to_owned(),
            code,
            reason: reason.to_owned(),
            message,
            details,
            ..Self::default()
        }
    }

    /// A `Success` status with code 200 (returned, e.g., by some deletes).
    pub fn success() -> Self {
        Self {
            status: STATUS_SUCCESS.to_owned(),
            code: 200,
            ..Self::default()
        }
    }

    /// 404: `pods "nope" not found`.
    pub fn not_found(resource: &GroupResource, name: &str) -> Self {
        let q = crate::gofmt::quote(name);
        Self::failure(
            404,
            reason::NOT_FOUND,
            format!("{resource} {q} not found"),
            Some(gr_details(resource, name)),
        )
    }

    /// 409: `pods "x" already exists`.
    pub fn already_exists(resource: &GroupResource, name: &str) -> Self {
        let q = crate::gofmt::quote(name);
        Self::failure(
            409,
            reason::ALREADY_EXISTS,
            format!("{resource} {q} already exists"),
            Some(gr_details(resource, name)),
        )
    }

    /// 409 when `generateName` could not produce a free name.
    pub fn generate_name_conflict(
        resource: &GroupResource,
        name: &str,
        retry_after_seconds: i32,
    ) -> Self {
        let q = crate::gofmt::quote(name);
        let mut details = gr_details(resource, name);
        details.retry_after_seconds = retry_after_seconds;
        Self::failure(
            409,
            reason::ALREADY_EXISTS,
            format!(
                "{resource} {q} already exists, the server was not able to generate a unique name for the object"
            ),
            Some(details),
        )
    }

    /// 409: `Operation cannot be fulfilled on pods "x": <detail>`.
    pub fn conflict(resource: &GroupResource, name: &str, detail: &str) -> Self {
        let q = crate::gofmt::quote(name);
        Self::failure(
            409,
            reason::CONFLICT,
            format!("Operation cannot be fulfilled on {resource} {q}: {detail}"),
            Some(gr_details(resource, name)),
        )
    }

    /// 409 for a stale `resourceVersion` on update, with upstream's optimistic-lock wording.
    pub fn optimistic_lock_conflict(resource: &GroupResource, name: &str) -> Self {
        Self::conflict(resource, name, OPTIMISTIC_LOCK_ERROR_MSG)
    }

    /// 409 for a server-side apply conflict with the given causes.
    pub fn apply_conflict(causes: Vec<StatusCause>, message: &str) -> Self {
        Self::failure(
            409,
            reason::CONFLICT,
            message.to_owned(),
            Some(StatusDetails {
                causes,
                ..StatusDetails::default()
            }),
        )
    }

    /// 422: `Pod "x" is invalid: [a, b]`, with one cause per field error.
    pub fn invalid(kind: &GroupKind, name: &str, errors: &ErrorList) -> Self {
        let causes = errors
            .iter()
            .map(|e| StatusCause {
                reason: e.kind.reason().to_owned(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        let q = crate::gofmt::quote(name);
        let message = match errors.aggregate_message() {
            None => format!("{kind} {q} is invalid"),
            Some(agg) => format!("{kind} {q} is invalid: {agg}"),
        };
        let details = StatusDetails {
            group: kind.group.clone(),
            kind: kind.kind.clone(),
            name: name.to_owned(),
            causes,
            ..StatusDetails::default()
        };
        Self::failure(422, reason::INVALID, message, Some(details))
    }

    /// 400 with the given message.
    pub fn bad_request(message: &str) -> Self {
        Self::failure(400, reason::BAD_REQUEST, message.to_owned(), None)
    }

    /// 401; an empty reason becomes `not authorized`. The API server's authentication
    /// filter sends the reason `Unauthorized`.
    pub fn unauthorized(message: &str) -> Self {
        let message = if message.is_empty() {
            "not authorized"
        } else {
            message
        };
        Self::failure(401, reason::UNAUTHORIZED, message.to_owned(), None)
    }

    /// 403 with an arbitrary cause: `pods "x" is forbidden: <detail>` (or without the name,
    /// or `forbidden: <detail>` when the resource is unknown).
    pub fn forbidden(resource: &GroupResource, name: &str, detail: &str) -> Self {
        let message = if resource.is_empty() {
            format!("forbidden: {detail}")
        } else if name.is_empty() {
            format!("{resource} is forbidden: {detail}")
        } else {
            format!(
                "{resource} {} is forbidden: {detail}",
                crate::gofmt::quote(name)
            )
        };
        Self::failure(
            403,
            reason::FORBIDDEN,
            message,
            Some(gr_details(resource, name)),
        )
    }

    /// 403 from the authorizer, worded exactly as upstream's response writer does;
    /// `reason` is the authorizer's explanation, appended after `: ` when non-empty.
    pub fn forbidden_by_authorizer(attributes: &ForbiddenAttributes, reason: &str) -> Self {
        let msg = sanitize(&attributes.message());
        let detail = if reason.is_empty() {
            msg
        } else {
            format!("{msg}: {reason}")
        };
        let gr = GroupResource::new(&attributes.api_group, &attributes.resource);
        Self::forbidden(&gr, &attributes.name, &detail)
    }

    /// 405: `<action> is not supported on resources of kind "pods"`.
    pub fn method_not_supported(resource: &GroupResource, action: &str) -> Self {
        let details = StatusDetails {
            group: resource.group.clone(),
            kind: resource.resource.clone(),
            ..StatusDetails::default()
        };
        Self::failure(
            405,
            reason::METHOD_NOT_ALLOWED,
            format!(
                "{action} is not supported on resources of kind {}",
                crate::gofmt::quote(&resource.to_string())
            ),
            Some(details),
        )
    }

    /// 410 with reason `Gone`.
    pub fn gone(message: &str) -> Self {
        Self::failure(410, reason::GONE, message.to_owned(), None)
    }

    /// 410 with reason `Expired` and the given message.
    pub fn resource_expired(message: &str) -> Self {
        Self::failure(410, reason::EXPIRED, message.to_owned(), None)
    }

    /// 410 from the watch cache: `too old resource version: X (Y)`, where `Y` is the
    /// oldest version the cache can still serve from, minus one.
    pub fn too_old_resource_version(requested: u64, oldest_minus_one: u64) -> Self {
        Self::resource_expired(&format!(
            "too old resource version: {requested} ({oldest_minus_one})"
        ))
    }

    /// 410 from storage when a watch starts from a compacted revision.
    pub fn watch_compacted() -> Self {
        Self::resource_expired("The resourceVersion for the provided watch is too old.")
    }

    /// 410 from storage when a list asks for a compacted revision.
    pub fn list_compacted() -> Self {
        Self::resource_expired("The resourceVersion for the provided list is too old.")
    }

    /// 410 when a continue token's revision has been compacted; `new_continue` (when
    /// given) lets the client continue inconsistently, as upstream offers.
    pub fn continue_expired(new_continue: Option<&str>) -> Self {
        match new_continue {
            None => Self::resource_expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ),
            Some(token) => {
                let mut s = Self::resource_expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                );
                s.metadata.continue_token = token.to_owned();
                s
            }
        }
    }

    /// 500 with reason `ServerTimeout`: the operation could not complete in time.
    pub fn server_timeout(
        resource: &GroupResource,
        operation: &str,
        retry_after_seconds: i32,
    ) -> Self {
        let mut details = gr_details(resource, operation);
        details.retry_after_seconds = retry_after_seconds;
        Self::failure(
            500,
            reason::SERVER_TIMEOUT,
            format!(
                "The {operation} operation against {resource} could not be completed at this time, please try again."
            ),
            Some(details),
        )
    }

    /// 504: `Timeout: <message>`.
    pub fn timeout(message: &str, retry_after_seconds: i32) -> Self {
        Self::failure(
            504,
            reason::TIMEOUT,
            format!("Timeout: {message}"),
            Some(StatusDetails {
                retry_after_seconds,
                ..StatusDetails::default()
            }),
        )
    }

    /// 504 for a `resourceVersion` newer than the store has, with upstream's cause.
    pub fn too_large_resource_version(
        minimum: u64,
        current: u64,
        retry_after_seconds: i32,
    ) -> Self {
        let mut s = Self::timeout(
            &format!("Too large resource version: {minimum}, current: {current}"),
            retry_after_seconds,
        );
        if let Some(d) = s.details.as_mut() {
            d.causes.push(StatusCause {
                reason: cause::RESOURCE_VERSION_TOO_LARGE.to_owned(),
                message: "Too large resource version".to_owned(),
                field: String::new(),
            });
        }
        s
    }

    /// 500: `Internal error occurred: <error>`, with the error as the single cause.
    pub fn internal_error(error: &str) -> Self {
        let details = StatusDetails {
            causes: vec![StatusCause {
                message: error.to_owned(),
                ..StatusCause::default()
            }],
            ..StatusDetails::default()
        };
        Self::failure(
            500,
            reason::INTERNAL_ERROR,
            format!("Internal error occurred: {error}"),
            Some(details),
        )
    }

    /// 429 from priority and fairness or max-in-flight: the message as given, with a retry hint.
    pub fn too_many_requests(message: &str, retry_after_seconds: i32) -> Self {
        Self::failure(
            429,
            reason::TOO_MANY_REQUESTS,
            message.to_owned(),
            Some(StatusDetails {
                retry_after_seconds,
                ..StatusDetails::default()
            }),
        )
    }

    /// 429: `Too many requests: <message>` (e.g. an eviction blocked by a disruption budget).
    pub fn too_many_requests_error(message: &str) -> Self {
        Self::failure(
            429,
            reason::TOO_MANY_REQUESTS,
            format!("Too many requests: {message}"),
            None,
        )
    }

    /// 503 with the given message.
    pub fn service_unavailable(message: &str) -> Self {
        Self::failure(503, reason::SERVICE_UNAVAILABLE, message.to_owned(), None)
    }

    /// 413: `Request entity too large: <message>`.
    pub fn request_entity_too_large(message: &str) -> Self {
        Self::failure(
            413,
            reason::REQUEST_ENTITY_TOO_LARGE,
            format!("Request entity too large: {message}"),
            None,
        )
    }

    /// 415 for a request body in a media type the server does not decode.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::failure(
            415,
            reason::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// 406 for an `Accept` header the server cannot satisfy.
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::failure(
            406,
            reason::NOT_ACCEPTABLE,
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// 406 when the requested conversion target (e.g. `Table`) is not offered in that media type.
    pub fn not_acceptable_conversion(target: &str, accepted: &[&str]) -> Self {
        Self::failure(
            406,
            reason::NOT_ACCEPTABLE,
            format!(
                "only the following media types are accepted when converting to {target}: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// The status as a JSON value, ready to be written as a response body.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The HTTP status code to respond with: `code`, or 500 (failure) / 200 (success)
    /// when it is unset, as upstream's `ErrorToAPIStatus` does.
    pub fn http_code(&self) -> u16 {
        if self.code > 0 {
            return u16::try_from(self.code).unwrap_or(500);
        }
        if self.status == STATUS_SUCCESS {
            200
        } else {
            500
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validation::{FieldError, Path};

    fn check(status: Status, want: serde_json::Value) {
        assert_eq!(status.to_json(), want);
    }

    fn pods() -> GroupResource {
        GroupResource::new("", "pods")
    }

    #[test]
    fn not_found_names_the_resource_and_object() {
        check(
            Status::not_found(&pods(), "nope"),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "pods \"nope\" not found", "reason": "NotFound",
                   "details": {"name": "nope", "kind": "pods"}, "code": 404}),
        );
        check(
            Status::not_found(&GroupResource::new("apps", "deployments"), "web"),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "deployments.apps \"web\" not found", "reason": "NotFound",
                   "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 404}),
        );
    }

    #[test]
    fn conflicts_and_existence_errors_use_409() {
        let s = Status::already_exists(&pods(), "x");
        assert_eq!(
            (s.code, s.reason.as_str(), s.message.as_str()),
            (409, "AlreadyExists", "pods \"x\" already exists")
        );
        let s = Status::optimistic_lock_conflict(&pods(), "x");
        assert_eq!(
            (s.code, s.reason.as_str(), s.message.as_str()),
            (
                409,
                "Conflict",
                "Operation cannot be fulfilled on pods \"x\": the object has been modified; please apply your changes to the latest version and try again"
            )
        );
        let s = Status::generate_name_conflict(&pods(), "web-abcde", 1);
        assert_eq!(
            s.message,
            "pods \"web-abcde\" already exists, the server was not able to generate a unique name for the object"
        );
        assert_eq!(s.details.map(|d| d.retry_after_seconds), Some(1));
    }

    #[test]
    fn invalid_lists_every_field_error_as_a_cause() {
        let errs: ErrorList = vec![
            FieldError::required(
                &Path::new("spec")
                    .child("containers")
                    .index(0)
                    .child("image"),
                "",
            ),
            FieldError::invalid(&Path::new("metadata").child("name"), "Foo", "bad"),
        ]
        .into();
        check(
            Status::invalid(&GroupKind::new("", "Pod"), "Foo", &errs),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Pod \"Foo\" is invalid: [spec.containers[0].image: Required value, metadata.name: Invalid value: \"Foo\": bad]",
                   "reason": "Invalid",
                   "details": {"name": "Foo", "kind": "Pod", "causes": [
                       {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"},
                       {"reason": "FieldValueInvalid", "message": "Invalid value: \"Foo\": bad", "field": "metadata.name"}]},
                   "code": 422}),
        );
        let one: ErrorList = FieldError::required(&Path::new("spec"), "").into();
        assert_eq!(
            Status::invalid(&GroupKind::new("apps", "Deployment"), "d", &one).message,
            "Deployment.apps \"d\" is invalid: spec: Required value"
        );
        assert_eq!(
            Status::invalid(&GroupKind::new("", "Pod"), "p", &ErrorList::new()).message,
            "Pod \"p\" is invalid"
        );
    }

    #[test]
    fn authorizer_denials_read_like_upstream() {
        let attrs = ForbiddenAttributes {
            user: "u".into(),
            verb: "get".into(),
            resource_request: true,
            resource: "pods".into(),
            namespace: "default".into(),
            name: "x".into(),
            ..ForbiddenAttributes::default()
        };
        let s = Status::forbidden_by_authorizer(&attrs, "");
        assert_eq!(s.code, 403);
        assert_eq!(
            s.message,
            "pods \"x\" is forbidden: User \"u\" cannot get resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let cluster = ForbiddenAttributes {
            namespace: String::new(),
            name: String::new(),
            verb: "list".into(),
            subresource: "status".into(),
            ..attrs.clone()
        };
        assert_eq!(
            Status::forbidden_by_authorizer(&cluster, "no RBAC policy matched").message,
            "pods is forbidden: User \"u\" cannot list resource \"pods/status\" in API group \"\" at the cluster scope: no RBAC policy matched"
        );
        let path = ForbiddenAttributes {
            user: "system:anonymous".into(),
            verb: "get".into(),
            path: "/api".into(),
            ..ForbiddenAttributes::default()
        };
        assert_eq!(
            Status::forbidden_by_authorizer(&path, "").message,
            "forbidden: User \"system:anonymous\" cannot get path \"/api\""
        );
    }

    #[test]
    fn simple_errors_have_upstream_codes_reasons_and_messages() {
        let cases: Vec<(Status, i32, &str, &str)> = vec![
            (Status::bad_request("bad"), 400, "BadRequest", "bad"),
            (
                Status::unauthorized("Unauthorized"),
                401,
                "Unauthorized",
                "Unauthorized",
            ),
            (
                Status::unauthorized(""),
                401,
                "Unauthorized",
                "not authorized",
            ),
            (
                Status::method_not_supported(&pods(), "deletecollection"),
                405,
                "MethodNotAllowed",
                "deletecollection is not supported on resources of kind \"pods\"",
            ),
            (Status::gone("gone"), 410, "Gone", "gone"),
            (
                Status::too_old_resource_version(5, 9),
                410,
                "Expired",
                "too old resource version: 5 (9)",
            ),
            (
                Status::watch_compacted(),
                410,
                "Expired",
                "The resourceVersion for the provided watch is too old.",
            ),
            (
                Status::timeout("request did not complete within requested timeout", 0),
                504,
                "Timeout",
                "Timeout: request did not complete within requested timeout",
            ),
            (
                Status::server_timeout(&pods(), "get", 2),
                500,
                "ServerTimeout",
                "The get operation against pods could not be completed at this time, please try again.",
            ),
            (
                Status::internal_error("boom"),
                500,
                "InternalError",
                "Internal error occurred: boom",
            ),
            (
                Status::too_many_requests("slow down", 1),
                429,
                "TooManyRequests",
                "slow down",
            ),
            (
                Status::too_many_requests_error("budget"),
                429,
                "TooManyRequests",
                "Too many requests: budget",
            ),
            (
                Status::service_unavailable("later"),
                503,
                "ServiceUnavailable",
                "later",
            ),
            (
                Status::request_entity_too_large("limit is 3145728"),
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 3145728",
            ),
            (
                Status::unsupported_media_type(&["application/json", "application/yaml"]),
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            ),
            (
                Status::not_acceptable(&["application/json"]),
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json",
            ),
        ];
        for (status, code, reason, message) in cases {
            assert_eq!(
                (status.code, status.reason.as_str(), status.message.as_str()),
                (code, reason, message)
            );
            assert_eq!(status.status, "Failure");
        }
    }

    #[test]
    fn retry_hints_and_continue_tokens_serialise_in_place() {
        check(
            Status::too_large_resource_version(10, 7, 1),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Timeout: Too large resource version: 10, current: 7", "reason": "Timeout",
                   "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1},
                   "code": 504}),
        );
        let s = Status::continue_expired(Some("tok"));
        assert_eq!(s.to_json()["metadata"], json!({"continue": "tok"}));
        check(
            Status::internal_error("x"),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Internal error occurred: x", "reason": "InternalError",
                   "details": {"causes": [{"message": "x"}]}, "code": 500}),
        );
    }

    #[test]
    fn statuses_round_trip_through_json() {
        let s = Status::not_found(&pods(), "a");
        let back: Status = serde_json::from_value(s.to_json()).expect("valid status json");
        assert_eq!(back, s);
        assert_eq!(Status::success().http_code(), 200);
        assert_eq!(
            Status {
                code: 0,
                status: STATUS_FAILURE.into(),
                ..Status::default()
            }
            .http_code(),
            500
        );
    }
}
