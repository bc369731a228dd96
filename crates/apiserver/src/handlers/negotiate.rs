//! Content negotiation as upstream's `negotiation` package does it: the `Accept` header picks
//! the output format (JSON or YAML) and an optional conversion (`as=Table`,
//! `as=PartialObjectMetadata[List]`, aggregated discovery), and the `Content-Type` header
//! picks the request body's decoder.
//!
//! Clauses are tried in order of quality and specificity; within a clause the first supported
//! media type that matches wins. Protobuf is never produced: a client that also accepts JSON
//! (`application/vnd.kubernetes.protobuf, */*`) gets JSON, one that accepts only protobuf gets
//! `406 NotAcceptable`.

use http::{HeaderMap, header};
use tug_apimachinery::Status;

/// The media types responses come in, in upstream's preference order.
pub(crate) const OUTPUT_MEDIA_TYPES: &[&str] = &["application/json", "application/yaml"];
/// The media types of watch streams.
pub(crate) const STREAM_MEDIA_TYPES: &[&str] = &["application/json;stream=watch"];

/// `meta.k8s.io`, the group of `Table` and `PartialObjectMetadata`.
const META_GROUP: &str = "meta.k8s.io";
/// `apidiscovery.k8s.io`, the group of aggregated discovery.
const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";

/// One clause of an `Accept` header.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Clause {
    /// The type (`application`, or `*`).
    pub(crate) ty: String,
    /// The subtype (`json`, or `*`).
    pub(crate) subtype: String,
    /// The parameters other than `q`, in order.
    pub(crate) params: Vec<(String, String)>,
    /// The quality.
    pub(crate) q: f32,
}

/// Parses an `Accept` header into clauses sorted by quality, then by specificity (a stable
/// sort, so equal clauses keep the client's order), as goautoneg does.
pub(crate) fn parse_accept(header: &str) -> Vec<Clause> {
    let mut clauses = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let range = pieces.next().unwrap_or_default().trim();
        if range.is_empty() {
            continue;
        }
        let (ty, subtype) = match range.split_once('/') {
            Some((t, s)) => (t.trim().to_string(), s.trim().to_string()),
            None if range == "*" => ("*".to_string(), "*".to_string()),
            None => continue,
        };
        let mut clause = Clause {
            ty,
            subtype,
            params: Vec::new(),
            q: 1.0,
        };
        for param in pieces {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim().trim_matches('"'));
            if key == "q" {
                clause.q = value.parse().unwrap_or(0.0);
            } else {
                clause.params.push((key.to_string(), value.to_string()));
            }
        }
        clauses.push(clause);
    }
    clauses.sort_by(|a, b| {
        b.q.partial_cmp(&a.q)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then((a.ty == "*").cmp(&(b.ty == "*")))
            .then((a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    clauses
}

/// The serialisation of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
}

impl Format {
    /// The media type.
    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Yaml => "application/yaml",
        }
    }
}

/// The version of `meta.k8s.io` a conversion targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaVersion {
    /// `meta.k8s.io/v1`.
    V1,
    /// `meta.k8s.io/v1beta1`.
    V1beta1,
}

impl MetaVersion {
    /// `meta.k8s.io/<version>`.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            MetaVersion::V1 => "meta.k8s.io/v1",
            MetaVersion::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// The version of aggregated discovery asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DiscoveryVersion {
    /// `apidiscovery.k8s.io/v2`.
    V2,
    /// `apidiscovery.k8s.io/v2beta1`.
    V2beta1,
}

impl DiscoveryVersion {
    /// The version string.
    pub(crate) fn version(self) -> &'static str {
        match self {
            DiscoveryVersion::V2 => "v2",
            DiscoveryVersion::V2beta1 => "v2beta1",
        }
    }
}

/// What the response object is turned into before it is serialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conversion {
    /// Nothing: the object as it is.
    None,
    /// A `Table` (`as=Table`).
    Table(MetaVersion),
    /// `PartialObjectMetadata` (one object).
    Partial(MetaVersion),
    /// `PartialObjectMetadataList` (a list).
    PartialList(MetaVersion),
    /// `APIGroupDiscoveryList` (aggregated discovery).
    Discovery(DiscoveryVersion),
}

/// Which conversions an endpoint offers (upstream's `EndpointRestrictions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Restrictions {
    /// No conversion (legacy discovery, OpenAPI, errors).
    Default,
    /// Resource endpoints: `Table` (JSON and YAML only) and `PartialObjectMetadata[List]`.
    Resource,
    /// The `/api` and `/apis` endpoints when aggregated discovery is asked for.
    Discovery,
}

/// The negotiated output of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Output {
    /// The serialisation.
    pub(crate) format: Format,
    /// The conversion.
    pub(crate) conversion: Conversion,
    /// Whether JSON is indented.
    pub(crate) pretty: bool,
}

impl Output {
    /// Plain JSON.
    pub(crate) const JSON: Output = Output {
        format: Format::Json,
        conversion: Conversion::None,
        pretty: false,
    };
}

/// The conversion a clause's `as`, `g` and `v` parameters name, if the endpoint allows it for
/// `format`. `Err(())` when the clause cannot be satisfied.
fn conversion(
    params: &[(String, String)],
    format: Format,
    restrictions: Restrictions,
) -> Result<Conversion, ()> {
    let (mut kind, mut group, mut version) = (None, None, None);
    for (key, value) in params {
        match key.as_str() {
            "as" => kind = Some(value.as_str()),
            "g" => group = Some(value.as_str()),
            "v" => version = Some(value.as_str()),
            _ => {}
        }
    }
    if kind.is_none() && group.is_none() && version.is_none() {
        return match restrictions {
            Restrictions::Discovery => Err(()),
            _ => Ok(Conversion::None),
        };
    }
    let (kind, group, version) = (
        kind.unwrap_or_default(),
        group.unwrap_or_default(),
        version.unwrap_or_default(),
    );
    match restrictions {
        Restrictions::Default => Err(()),
        Restrictions::Discovery => {
            let version = match version {
                "v2" => DiscoveryVersion::V2,
                "v2beta1" => DiscoveryVersion::V2beta1,
                _ => return Err(()),
            };
            if group == DISCOVERY_GROUP && kind == "APIGroupDiscoveryList" {
                Ok(Conversion::Discovery(version))
            } else {
                Err(())
            }
        }
        Restrictions::Resource => {
            let version = match (group, version) {
                (META_GROUP, "v1") => MetaVersion::V1,
                (META_GROUP, "v1beta1") => MetaVersion::V1beta1,
                _ => return Err(()),
            };
            match kind {
                // Tables are only offered as JSON and YAML.
                "Table" if matches!(format, Format::Json | Format::Yaml) => {
                    Ok(Conversion::Table(version))
                }
                "PartialObjectMetadata" => Ok(Conversion::Partial(version)),
                "PartialObjectMetadataList" => Ok(Conversion::PartialList(version)),
                _ => Err(()),
            }
        }
    }
}

/// Negotiates the output of a response from an `Accept` header (`None` or empty: JSON).
/// `streaming`: the response is a watch stream, which YAML cannot carry. `None` when nothing
/// acceptable is on offer.
pub(crate) fn negotiate(
    accept: Option<&str>,
    restrictions: Restrictions,
    streaming: bool,
) -> Option<Output> {
    let accept = accept.map(str::trim).unwrap_or_default();
    let formats: &[Format] = if streaming {
        &[Format::Json]
    } else {
        &[Format::Json, Format::Yaml]
    };
    if accept.is_empty() {
        return (restrictions != Restrictions::Discovery).then_some(Output::JSON);
    }
    for clause in parse_accept(accept) {
        for &format in formats {
            let (ty, subtype) = match format {
                Format::Json => ("application", "json"),
                Format::Yaml => ("application", "yaml"),
            };
            let matches = (clause.ty == ty && (clause.subtype == subtype || clause.subtype == "*"))
                || (clause.ty == "*" && clause.subtype == "*");
            if !matches {
                continue;
            }
            // `stream=watch` is only meaningful (and only allowed) for JSON.
            let stream_ok = clause
                .params
                .iter()
                .filter(|(k, _)| k == "stream")
                .all(|(_, v)| v.is_empty() || (v == "watch" && format == Format::Json));
            if !stream_ok {
                continue;
            }
            if let Ok(conversion) = conversion(&clause.params, format, restrictions) {
                let pretty = clause.params.iter().any(|(k, v)| k == "pretty" && v == "1");
                return Some(Output {
                    format,
                    conversion,
                    pretty,
                });
            }
        }
    }
    None
}

/// Negotiates the output of a request, honouring `pretty` in the query and the
/// browser-and-curl rule for indentation; `406 NotAcceptable` when nothing fits.
pub(crate) fn output(
    headers: &HeaderMap,
    query: Option<&str>,
    restrictions: Restrictions,
    streaming: bool,
) -> Result<Output, Box<Status>> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let mut output = negotiate(accept, restrictions, streaming).ok_or_else(|| {
        let supported = if streaming {
            STREAM_MEDIA_TYPES
        } else {
            OUTPUT_MEDIA_TYPES
        };
        Box::new(Status::not_acceptable(supported))
    })?;
    output.pretty |= is_pretty(headers, query);
    Ok(output)
}

/// Upstream's `isPrettyPrint`: `pretty=<bool>` in the query decides; without it, curl, wget
/// and browsers get indented JSON.
fn is_pretty(headers: &HeaderMap, query: Option<&str>) -> bool {
    if let Some(query) = query
        && query.contains("pretty")
        && let Some((_, value)) =
            form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "pretty")
        && !value.is_empty()
    {
        return parse_go_bool(&value).unwrap_or(false);
    }
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    agent.starts_with("curl") || agent.starts_with("Wget") || agent.starts_with("Mozilla/5.0")
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The format of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFormat {
    /// `application/json` (also an absent `Content-Type`).
    Json,
    /// `application/yaml`.
    Yaml,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
}

/// The media types request bodies may come in.
pub(crate) fn input_media_types() -> &'static [&'static str] {
    &[
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ]
}

/// The media type of a `Content-Type` header without its parameters (`application/json;
/// charset=utf-8` is `application/json`), lower-cased.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or_default().trim();
    (!media.is_empty()).then(|| media.to_ascii_lowercase())
}

/// The decoder of a request body (upstream's `NegotiateInputSerializer`): `415` for anything
/// but JSON, YAML and protobuf.
pub(crate) fn body_format(headers: &HeaderMap) -> Result<BodyFormat, Box<Status>> {
    match content_type(headers).as_deref() {
        None | Some("application/json") => Ok(BodyFormat::Json),
        Some("application/yaml") => Ok(BodyFormat::Yaml),
        Some("application/vnd.kubernetes.protobuf") => Ok(BodyFormat::Protobuf),
        Some(_) => Err(Box::new(
            Status::unsupported_media_type(input_media_types()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(accept: &str, restrictions: Restrictions, want: Option<(Format, Conversion)>) {
        let got = negotiate(Some(accept), restrictions, false).map(|o| (o.format, o.conversion));
        assert_eq!(got, want, "{accept}");
    }

    #[test]
    fn kubectl_table_requests_get_tables_in_v1() {
        check(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            Restrictions::Resource,
            Some((Format::Json, Conversion::Table(MetaVersion::V1))),
        );
        check(
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
            Restrictions::Resource,
            Some((Format::Json, Conversion::Table(MetaVersion::V1beta1))),
        );
    }

    #[test]
    fn protobuf_first_falls_back_to_json_and_protobuf_alone_is_not_acceptable() {
        for accept in [
            "application/vnd.kubernetes.protobuf, */*",
            "application/vnd.kubernetes.protobuf,application/json",
            "*/*",
            "application/*",
        ] {
            check(
                accept,
                Restrictions::Resource,
                Some((Format::Json, Conversion::None)),
            );
        }
        check(
            "application/vnd.kubernetes.protobuf",
            Restrictions::Resource,
            None,
        );
        check("text/html", Restrictions::Resource, None);
        check(
            "application/yaml",
            Restrictions::Resource,
            Some((Format::Yaml, Conversion::None)),
        );
    }

    #[test]
    fn unknown_conversions_and_tables_on_plain_endpoints_are_skipped() {
        check(
            "application/json;as=Table;g=meta.k8s.io;v=v1",
            Restrictions::Default,
            None,
        );
        check(
            "application/json;as=Foo;g=meta.k8s.io;v=v1, application/json",
            Restrictions::Resource,
            Some((Format::Json, Conversion::None)),
        );
        check(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            Restrictions::Resource,
            Some((Format::Json, Conversion::PartialList(MetaVersion::V1))),
        );
    }

    #[test]
    fn aggregated_discovery_is_chosen_only_when_asked_for() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        check(
            kubectl,
            Restrictions::Discovery,
            Some((Format::Json, Conversion::Discovery(DiscoveryVersion::V2))),
        );
        check("application/json", Restrictions::Discovery, None);
        assert_eq!(negotiate(None, Restrictions::Discovery, false), None);
    }

    #[test]
    fn quality_orders_clauses_before_position() {
        check(
            "application/yaml;q=0.5, application/json",
            Restrictions::Resource,
            Some((Format::Json, Conversion::None)),
        );
        let clauses = parse_accept("*/*;q=0.8, application/json;q=0.8, text/plain");
        let order: Vec<_> = clauses.iter().map(|c| c.subtype.as_str()).collect();
        assert_eq!(order, ["plain", "json", "*"]);
    }

    #[test]
    fn watch_streams_are_json_only() {
        assert_eq!(
            negotiate(Some("application/yaml"), Restrictions::Resource, true),
            None
        );
        assert_eq!(
            negotiate(
                Some("application/json;stream=watch"),
                Restrictions::Resource,
                true
            )
            .map(|o| o.format),
            Some(Format::Json)
        );
    }
}
