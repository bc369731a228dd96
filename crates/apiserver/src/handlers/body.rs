//! Request bodies: reading them (with upstream's size limit), decoding JSON, YAML and protobuf
//! into JSON values, checking the object's `apiVersion` and `kind` against the endpoint, and
//! field validation (`fieldValidation=Strict|Warn|Ignore`) with upstream's messages. Unknown
//! fields are always dropped before an object reaches the registry, as upstream's typed
//! decoding drops them.

use axum::body::Body;
use serde_json::{Map, Value};
use tug_api::{
    Gvk, catalog,
    schema::{self, Schema, Type},
};
use tug_apimachinery::Status;

use super::{
    StatusResult, Warnings,
    negotiate::BodyFormat,
    query::{FieldValidation, bad_request},
};

/// Upstream's `MaxRequestBodyBytes`: 3 MiB.
pub(crate) const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Not JSON (or YAML) at all.
    #[error("{0}")]
    Syntax(String),
    /// The request body cannot be read.
    #[error("reading the request body: {0}")]
    Read(String),
}

/// Reads a request body, at most [`MAX_BODY_BYTES`] (`413` beyond).
pub(crate) async fn read(body: Body) -> StatusResult<Vec<u8>> {
    match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(bytes) if bytes.len() > MAX_BODY_BYTES => Err(Box::new(
            Status::request_entity_too_large(&format!("limit is {MAX_BODY_BYTES}")),
        )),
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) => {
            // axum reports an exceeded limit as an error too.
            let message = e.to_string();
            if message.contains("length limit") {
                Err(Box::new(Status::request_entity_too_large(&format!(
                    "limit is {MAX_BODY_BYTES}"
                ))))
            } else {
                Err(bad_request(&DecodeError::Read(message).to_string()))
            }
        }
    }
}

/// Parses a JSON or YAML document into a value.
pub(crate) fn parse(bytes: &[u8], format: BodyFormat) -> Result<Value, DecodeError> {
    match format {
        BodyFormat::Json => {
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Syntax(e.to_string()))
        }
        BodyFormat::Yaml => {
            let text =
                std::str::from_utf8(bytes).map_err(|e| DecodeError::Syntax(e.to_string()))?;
            // An empty document is an empty object to upstream's YAML decoder.
            if text.trim().is_empty() {
                return Ok(Value::Object(Map::new()));
            }
            serde_norway::from_str(text).map_err(|e| {
                DecodeError::Syntax(format!("error converting YAML to JSON: yaml: {e}"))
            })
        }
        BodyFormat::Protobuf => Err(DecodeError::Syntax(
            "protobuf is decoded elsewhere".to_string(),
        )),
    }
}

/// Upstream's `summarizeData`: the start of the body, as text when it looks like JSON.
fn summarize(bytes: &[u8]) -> String {
    const MAX: usize = 30;
    match bytes.first() {
        None => "<empty>".to_string(),
        Some(b'{') => {
            let end = bytes.len().min(MAX);
            let text = String::from_utf8_lossy(&bytes[..end]);
            if bytes.len() > MAX {
                format!("{text} ...")
            } else {
                text.into_owned()
            }
        }
        Some(_) => {
            let end = bytes.len().min(MAX);
            let hex: String = bytes[..end].iter().map(|b| format!("{b:02x}")).collect();
            if bytes.len() > MAX {
                format!("{hex} ...")
            } else {
                hex
            }
        }
    }
}

/// The group, version and kind an object names, with the endpoint's filling the gaps as
/// upstream's decoder does (`gvkWithDefaults`).
fn data_gvk(object: &Value, expected: Gvk<'static>) -> (String, String, String) {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (mut group, mut version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    };
    let kind = if kind.is_empty() {
        expected.kind.to_string()
    } else {
        kind.to_string()
    };
    if version.is_empty() && group.is_empty() {
        group = expected.group.to_string();
        version = expected.version.to_string();
    }
    if version.is_empty() && group == expected.group {
        version = expected.version.to_string();
    }
    (group, version, kind)
}

/// `400`: upstream's `transformDecodeError` when the data names a kind.
fn cannot_handle(kind: &str, version: &str, expected: &str, why: &str) -> Box<Status> {
    bad_request(&format!(
        "{kind} in version {} cannot be handled as a {expected}: {why}",
        super::go_quote(version)
    ))
}

/// What [`decode_object`] needs to know about the endpoint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expect {
    /// The kind the endpoint takes.
    pub(crate) gvk: Gvk<'static>,
    /// `fieldValidation`.
    pub(crate) validation: FieldValidation,
}

/// Decodes a create or update body into the object the registry gets: parsed, checked against
/// the endpoint's kind and version, checked for unknown and duplicate fields per
/// `fieldValidation` (errors with upstream's `strict decoding error: …`, warnings), with unknown
/// fields dropped and `apiVersion`/`kind` filled in.
pub(crate) fn decode_object(
    bytes: &[u8],
    format: BodyFormat,
    expect: Expect,
    warnings: &Warnings,
) -> StatusResult<Value> {
    let expected = expect.gvk;
    let mut object = match format {
        BodyFormat::Protobuf => decode_protobuf(bytes, expected)?,
        _ => match parse(bytes, format) {
            Ok(object) => object,
            Err(e) => {
                let why = match format {
                    BodyFormat::Json => format!("couldn't get version/kind; json parse error: {e}"),
                    _ => e.to_string(),
                };
                return Err(bad_request(&format!(
                    "the object provided is unrecognized (must be of type {}): {why} ({})",
                    expected.kind,
                    summarize(bytes)
                )));
            }
        },
    };
    if !object.is_object() {
        return Err(bad_request(&format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }} ({})",
            expected.kind,
            go_json_type(&object),
            summarize(bytes)
        )));
    }

    let (group, version, kind) = data_gvk(&object, expected);
    let data_api_version = Gvk::new(&group, &version, &kind).api_version();
    if kind != expected.kind {
        let why = if catalog::by_gvk(Gvk::new(&group, &version, &kind)).is_some() {
            format!(
                "converting ({version}.{kind}) to ({}.{}): unknown conversion",
                internal_package(expected.group),
                expected.kind
            )
        } else {
            format!(
                "no kind {} is registered for version {} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                super::go_quote(&kind),
                super::go_quote(&data_api_version)
            )
        };
        return Err(cannot_handle(&kind, &version, expected.kind, &why));
    }
    if group != expected.group || version != expected.version {
        let served = catalog::resources()
            .iter()
            .any(|r| r.group == group && r.version == version && r.kind == kind);
        if !served {
            return Err(cannot_handle(
                &kind,
                &version,
                expected.kind,
                &format!(
                    "no kind {} is registered for version {} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                    super::go_quote(&kind),
                    super::go_quote(&data_api_version)
                ),
            ));
        }
        return Err(bad_request(&format!(
            "the API version in the data ({data_api_version}) does not match the expected API version ({})",
            expected.api_version()
        )));
    }

    if expect.validation != FieldValidation::Ignore && format != BodyFormat::Protobuf {
        // Document order and duplicates come from the bytes (YAML is checked as the JSON it
        // converts to, as upstream does).
        let json_bytes;
        let checked: &[u8] = match format {
            BodyFormat::Json => bytes,
            _ => {
                json_bytes = serde_json::to_vec(&object).unwrap_or_default();
                &json_bytes
            }
        };
        let errors = schema::schema()
            .strict_errors(expected, checked)
            .unwrap_or_default();
        if !errors.is_empty() {
            match expect.validation {
                FieldValidation::Strict => {
                    return Err(cannot_handle(
                        &kind,
                        &version,
                        expected.kind,
                        &format!("strict decoding error: {}", errors.join(", ")),
                    ));
                }
                _ => warnings.add_all(errors),
            }
        }
    }
    prune_unknown(expected, &mut object);
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), Value::from(expected.api_version()));
        map.insert("kind".into(), Value::from(expected.kind));
    }
    Ok(object)
}

/// Go's name for a JSON value's type, as `encoding/json` prints it in unmarshal errors.
fn go_json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The internal package upstream names in conversion errors (`core`, `apps`, …).
fn internal_package(group: &str) -> &str {
    if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    }
}

/// Decodes a protobuf body (`application/vnd.kubernetes.protobuf`) into the JSON the same
/// client would have sent; the kind and version checks then treat it like any JSON body.
fn decode_protobuf(bytes: &[u8], expected: Gvk<'static>) -> StatusResult<Value> {
    match tug_api::protobuf::decode(bytes) {
        Ok((_, _, object)) => Ok(object),
        Err(tug_api::protobuf::ProtobufError::UnknownKind { api_version, kind }) => {
            let version = api_version
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            Err(cannot_handle(
                &kind,
                &version,
                expected.kind,
                &format!(
                    "no kind {} is registered for version {} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                    super::go_quote(&kind),
                    super::go_quote(&api_version)
                ),
            ))
        }
        Err(e) => Err(bad_request(&format!(
            "the object provided is unrecognized (must be of type {}): {e} ({})",
            expected.kind,
            summarize(bytes)
        ))),
    }
}

/// Removes the fields the schema of `gvk` does not know, recursively (what upstream's typed
/// decoding does to them). Kinds without a schema keep everything.
pub(crate) fn prune_unknown(gvk: Gvk<'_>, object: &mut Value) {
    let schema = schema::schema();
    if let Some(def) = schema.by_gvk(gvk) {
        prune(schema, def.ty(), object);
    }
}

fn prune(schema: &Schema, ty: &Type, value: &mut Value) {
    match (ty, value) {
        (Type::Struct(id), Value::Object(map)) => {
            let def = schema.get(*id);
            map.retain(|key, _| def.field(key).is_some());
            for (key, child) in map.iter_mut() {
                if let Some(field) = def.field(key) {
                    prune(schema, field.ty(), child);
                }
            }
        }
        (Type::Map(inner), Value::Object(map)) => {
            for child in map.values_mut() {
                prune(schema, inner, child);
            }
        }
        (Type::List(inner), Value::Array(items)) => {
            for child in items {
                prune(schema, inner, child);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const POD: Gvk<'static> = Gvk::new("", "v1", "Pod");

    fn decode(body: &str, validation: FieldValidation) -> (StatusResult<Value>, Vec<String>) {
        let warnings = Warnings::default();
        let result = decode_object(
            body.as_bytes(),
            BodyFormat::Json,
            Expect {
                gvk: POD,
                validation,
            },
            &warnings,
        );
        (result, warnings.take())
    }

    fn error(result: StatusResult<Value>) -> String {
        match result {
            Ok(v) => panic!("expected an error, got {v}"),
            Err(status) => format!("{} {}", status.code, status.message),
        }
    }

    #[test]
    fn kubectl_create_bodies_with_nulls_and_empty_status_are_clean() {
        let body = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","creationTimestamp":null},"spec":{"containers":[{"name":"c","image":"busybox","resources":{}}]},"status":{}}"#;
        let (result, warnings) = decode(body, FieldValidation::Strict);
        let object = result.expect("decodes");
        assert_eq!(object["metadata"]["name"], "p");
        assert!(warnings.is_empty());
    }

    #[test]
    fn strict_validation_rejects_unknown_fields_with_upstreams_message() {
        let body = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"foo":1,"containers":[]},"bar":2}"#;
        assert_eq!(
            error(decode(body, FieldValidation::Strict).0),
            r#"400 Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo", unknown field "bar""#
        );
        let (result, warnings) = decode(body, FieldValidation::Warn);
        let object = result.expect("warn decodes");
        assert_eq!(
            warnings,
            [r#"unknown field "spec.foo""#, r#"unknown field "bar""#]
        );
        assert_eq!(object.get("bar"), None, "unknown fields are dropped");
        assert_eq!(object["spec"].get("foo"), None);
        let (result, warnings) = decode(body, FieldValidation::Ignore);
        assert!(result.is_ok() && warnings.is_empty());
    }

    #[test]
    fn kinds_and_versions_must_match_the_endpoint() {
        assert_eq!(
            error(
                decode(
                    r#"{"apiVersion":"v1","kind":"Service"}"#,
                    FieldValidation::Warn
                )
                .0
            ),
            r#"400 Service in version "v1" cannot be handled as a Pod: converting (v1.Service) to (core.Pod): unknown conversion"#
        );
        assert_eq!(
            error(decode(r#"{"apiVersion":"v2","kind":"Pod"}"#, FieldValidation::Warn).0),
            r#"400 Pod in version "v2" cannot be handled as a Pod: no kind "Pod" is registered for version "v2" in scheme "pkg/api/legacyscheme/scheme.go:30""#
        );
        let object = decode(r#"{"metadata":{"name":"x"}}"#, FieldValidation::Strict)
            .0
            .expect("defaults");
        assert_eq!(object["apiVersion"], "v1");
        assert_eq!(object["kind"], "Pod");
    }

    #[test]
    fn broken_json_is_unrecognized() {
        let message = error(decode("{\"apiVersion\":", FieldValidation::Warn).0);
        assert!(
            message.starts_with("400 the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: "),
            "{message}"
        );
        assert!(message.ends_with(r#"({"apiVersion":)"#), "{message}");
    }

    #[test]
    fn pruning_keeps_known_fields_and_map_keys() {
        let mut pod = json!({"metadata": {"labels": {"any.key/x": "1"}, "bogus": 1},
                             "spec": {"containers": [{"name": "c", "nope": true}]}});
        prune_unknown(POD, &mut pod);
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"any.key/x": "1"}}, "spec": {"containers": [{"name": "c"}]}})
        );
    }
}
