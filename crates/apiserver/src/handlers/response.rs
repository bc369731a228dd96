//! Writing responses: the negotiated conversion (`Table`, `PartialObjectMetadata[List]`), JSON
//! (compact with a trailing newline as Go's encoder writes it, or indented) or YAML, warning
//! headers, and errors as `Status` objects.

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde_json::{Value, json};
use tug_api::{
    Gvk,
    printers::{self, IncludeObject, Input, TableOptions},
};
use tug_apimachinery::Status;

use super::{
    StatusResult, Warnings,
    negotiate::{Conversion, Format, MetaVersion, Output},
    query::{Query, bad_request},
};

/// Whether a response body is one object or a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One object (a get, a write, one watch event).
    Object,
    /// A `<Kind>List`.
    List,
}

/// The `includeObject` of a table request; `400` for values upstream does not know.
pub(crate) fn include_object(query: &Query) -> StatusResult<IncludeObject> {
    let value = query.get("includeObject").unwrap_or_default();
    IncludeObject::parse(value).ok_or_else(|| {
        bad_request(&format!(
            "Unable to convert to Table as requested: includeObject: Unsupported value: {}: supported values: \"Metadata\", \"None\", \"Object\"",
            super::go_quote(value)
        ))
    })
}

/// The current time, as the printers take it (ages in tables are computed from it).
pub(crate) fn now() -> k8s_openapi::jiff::Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let nanos = i32::try_from(since.subsec_nanos()).unwrap_or(0);
    k8s_openapi::jiff::Timestamp::new(seconds, nanos)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// `PartialObjectMetadata` of an object.
pub(crate) fn partial(object: &Value, version: MetaVersion) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": version.api_version(),
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// `406` for a conversion that does not fit the response's shape.
fn not_acceptable(message: &str) -> Box<Status> {
    let mut status = Status::not_acceptable(&[]);
    status.message = message.to_string();
    Box::new(status)
}

/// Applies the negotiated conversion to a response body. `gvk` is the kind of the objects
/// (for a list, of its items); `Status` objects are never converted.
pub(crate) fn convert(
    value: Value,
    shape: Shape,
    output: &Output,
    gvk: Gvk<'_>,
    table: Option<TableOptions>,
) -> StatusResult<Value> {
    if value.get("kind").and_then(Value::as_str) == Some("Status") {
        return Ok(value);
    }
    match output.conversion {
        Conversion::None | Conversion::Discovery(_) => Ok(value),
        Conversion::Table(version) => {
            let options = table.unwrap_or(TableOptions {
                include_object: IncludeObject::Metadata,
                no_headers: false,
                now: now(),
            });
            let input = match shape {
                Shape::Object => Input::Object(&value),
                Shape::List => Input::List(&value),
            };
            let mut table = printers::table(gvk, input, &options);
            if version == MetaVersion::V1beta1 {
                retag_table(&mut table, version);
            }
            Ok(table)
        }
        Conversion::Partial(version) => match shape {
            Shape::Object => Ok(partial(&value, version)),
            Shape::List => Err(not_acceptable(&format!(
                "you requested PartialObjectMetadata, but the requested object is a list (*{}.{})",
                go_package(gvk.group),
                list_kind(&value)
            ))),
        },
        Conversion::PartialList(version) => match shape {
            Shape::List => {
                let items: Vec<Value> = value
                    .get("items")
                    .and_then(Value::as_array)
                    .map(|items| items.iter().map(|i| partial(i, version)).collect())
                    .unwrap_or_default();
                Ok(json!({
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": version.api_version(),
                    "metadata": value.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    "items": items,
                }))
            }
            Shape::Object => Err(not_acceptable(&format!(
                "you requested PartialObjectMetadataList, but the requested object is not a list (*{}.{})",
                go_package(gvk.group),
                gvk.kind
            ))),
        },
    }
}

/// The Go package upstream's `%T` shows for objects of a group (`core`, `apps`).
fn go_package(group: &str) -> &str {
    if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    }
}

fn list_kind(list: &Value) -> &str {
    list.get("kind").and_then(Value::as_str).unwrap_or("List")
}

/// Moves a `meta.k8s.io/v1` table (and the partial objects in its rows) to another version.
fn retag_table(table: &mut Value, version: MetaVersion) {
    let api_version = Value::from(version.api_version());
    table["apiVersion"] = api_version.clone();
    if let Some(rows) = table.get_mut("rows").and_then(Value::as_array_mut) {
        for row in rows {
            if let Some(object) = row.get_mut("object")
                && object.get("kind").and_then(Value::as_str) == Some("PartialObjectMetadata")
            {
                object["apiVersion"] = api_version.clone();
            }
        }
    }
}

/// Serialises a body as negotiated.
pub(crate) fn encode(value: &Value, format: Format, pretty: bool) -> Vec<u8> {
    match format {
        Format::Json if pretty => serde_json::to_vec_pretty(value).unwrap_or_default(),
        Format::Json => {
            let mut bytes = serde_json::to_vec(value).unwrap_or_default();
            bytes.push(b'\n');
            bytes
        }
        Format::Yaml => serde_norway::to_string(value)
            .map(String::into_bytes)
            .unwrap_or_default(),
    }
}

/// A response carrying `value` with `code`, serialised as `output` says (no conversion is
/// applied here), with the request's warnings.
pub(crate) fn object(
    code: StatusCode,
    value: &Value,
    output: &Output,
    warnings: &Warnings,
) -> Response {
    let mut response = Response::new(Body::from(encode(value, output.format, output.pretty)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(output.format.media_type()),
    );
    warnings.write(&mut response);
    response
}

/// An error response: the `Status` as JSON with its code, with the request's warnings.
pub(crate) fn error(status: &Status, warnings: &Warnings) -> Response {
    let mut response = crate::status::response(status);
    warnings.write(&mut response);
    response
}

/// Upstream's response to paths under a served group-version that match no route:
/// `404 NotFound` with the generic message.
pub(crate) fn route_not_found() -> Response {
    crate::status::response(&generic(
        404,
        "NotFound",
        "the server could not find the requested resource",
    ))
}

/// Upstream's response to a method a route does not serve: `405 MethodNotAllowed`.
pub(crate) fn method_not_allowed() -> Response {
    crate::status::response(&generic(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
    ))
}

/// A `Status` as upstream's `NewGenericServerResponse` builds it without a resource.
pub(crate) fn generic(code: i32, reason: &str, message: &str) -> Status {
    Status {
        status: tug_apimachinery::status::STATUS_FAILURE.to_string(),
        code,
        reason: reason.to_string(),
        message: message.to_string(),
        details: Some(Default::default()),
        ..Status::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: Gvk<'static> = Gvk::new("", "v1", "Pod");

    fn output(conversion: Conversion) -> Output {
        Output {
            format: Format::Json,
            conversion,
            pretty: false,
        }
    }

    #[test]
    fn partial_lists_keep_list_metadata_and_tag_each_item() {
        let list = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
                          "items": [{"metadata": {"name": "a"}, "spec": {}}]});
        let converted = convert(
            list,
            Shape::List,
            &output(Conversion::PartialList(MetaVersion::V1)),
            POD,
            None,
        )
        .expect("converts");
        assert_eq!(
            converted,
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                   "metadata": {"resourceVersion": "7"},
                   "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "a"}}]})
        );
    }

    #[test]
    fn a_partial_list_of_one_object_is_not_acceptable() {
        let err = convert(
            json!({"metadata": {}}),
            Shape::Object,
            &output(Conversion::PartialList(MetaVersion::V1)),
            POD,
            None,
        )
        .expect_err("406");
        assert_eq!(err.code, 406);
        assert_eq!(
            err.message,
            "you requested PartialObjectMetadataList, but the requested object is not a list (*core.Pod)"
        );
    }

    #[test]
    fn statuses_are_never_converted_and_v1beta1_tables_are_retagged() {
        let status = Status::success().to_json();
        assert_eq!(
            convert(
                status.clone(),
                Shape::Object,
                &output(Conversion::Table(MetaVersion::V1)),
                POD,
                None
            )
            .expect("passes"),
            status
        );
        let table = convert(
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "resourceVersion": "3"}}),
            Shape::Object,
            &output(Conversion::Table(MetaVersion::V1beta1)),
            POD,
            None,
        )
        .expect("table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(
            table["rows"][0]["object"]["apiVersion"],
            "meta.k8s.io/v1beta1"
        );
    }

    #[test]
    fn compact_json_ends_with_a_newline_like_gos_encoder() {
        assert_eq!(
            encode(&json!({"a": 1}), Format::Json, false),
            b"{\"a\":1}\n"
        );
        assert_eq!(
            encode(&json!({"a": 1}), Format::Json, true),
            b"{\n  \"a\": 1\n}"
        );
    }
}
