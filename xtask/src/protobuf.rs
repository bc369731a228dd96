//! `cargo xtask codegen`, protobuf part: the table of protobuf field numbers that
//! `tug_api::protobuf` decodes request bodies with (`crates/api/openapi/protobuf-v1.33.json`).
//!
//! Three inputs meet here:
//!
//! - the field numbers and protobuf types, from the prost structs of the `k8s-pb` crate
//!   (generated from upstream's `generated.proto` files; located through `cargo metadata`,
//!   since the crate is a dev-dependency of `tug-api`);
//! - the JSON names and types, from the normalised OpenAPI definitions this codegen writes;
//! - the Go facts of [`crate::gofields`]: pointer, `omitempty` and inline embedding, which
//!   decide when a field the protobuf carries appears in the JSON.
//!
//! Every message reachable from a kind in the OpenAPI definitions is kept. Each of its
//! protobuf fields must match an OpenAPI property (names compared case-insensitively with
//! underscores removed: `pod_ip` ↔ `podIP`), be an inline embedding, or be absent from both
//! v1.33 sources (a field `k8s-pb` knows from a later release: listed under `skipped`);
//! anything else, and any mismatch of field numbers or types between the inputs, fails.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Map, Value, json};

use crate::gofields::{Facts, GoField};

/// The `k8s-pb` release whose sources give the field numbers.
pub const K8S_PB_VERSION: &str = "0.9.0";
/// Where the table lives, relative to the workspace root.
pub const ARTIFACT: &str = "crates/api/openapi/protobuf-v1.33.json";

/// The protobuf layout of a special message: (tag, prost name, type) per field.
type Layout = &'static [(u32, &'static str, &'static str)];

/// Messages whose JSON form is not an object of their fields, with the exact protobuf layout
/// the decoder relies on: (definition, special name, layout).
const SPECIALS: &[(&str, &str, Layout)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
        "time",
        &[(1, "seconds", "int64"), (2, "nanos", "int32")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
        "micro-time",
        &[(1, "seconds", "int64"), (2, "nanos", "int32")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.Duration",
        "duration",
        &[(1, "duration", "int64")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "fields-v1",
        &[(1, "raw", "bytes")],
    ),
    (
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
        "raw-extension",
        &[(1, "raw", "bytes")],
    ),
    (
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "int-or-string",
        &[
            (1, "r#type", "int64"),
            (2, "int_val", "int32"),
            (3, "str_val", "string"),
        ],
    ),
    (
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        "quantity",
        &[(1, "string", "string")],
    ),
];

/// A protobuf scalar type as prost names it.
const SCALARS: &[&str] = &[
    "int32", "int64", "bool", "string", "bytes", "double", "float",
];

/// The type of one prost field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A scalar (`int32`, `string`, …), possibly repeated.
    Scalar { ty: String, repeated: bool },
    /// A message, possibly repeated; the target as (package, prost struct name).
    Message {
        target: (String, String),
        repeated: bool,
    },
    /// A map with string keys; the value a scalar type or a message.
    Map {
        key: String,
        value: String,
        target: Option<(String, String)>,
    },
}

/// One prost field.
#[derive(Debug, Clone)]
struct ProtoField {
    name: String,
    tag: u32,
    kind: Kind,
}

/// One prost message.
#[derive(Debug, Clone)]
struct ProtoMessage {
    fields: Vec<ProtoField>,
}

/// A built table entry, with the fields left out and the messages the kept fields lead to.
struct Entry {
    entry: Map<String, Value>,
    skipped: Vec<Value>,
    targets: Vec<(String, String)>,
}

/// What building one message's entry needs to know about the others.
struct Known<'a> {
    defs: &'a Map<String, Value>,
    messages: &'a BTreeMap<(String, String), ProtoMessage>,
    names: &'a BTreeMap<(String, String), String>,
}

/// Finds the `k8s-pb` sources with `cargo metadata` (which downloads them if needed).
pub fn locate_k8s_pb(workspace: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .output()
        .context("running `cargo metadata`")?;
    ensure!(
        output.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("parsing `cargo metadata` output")?;
    let packages = metadata
        .get("packages")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("`cargo metadata` listed no packages"))?;
    let package = packages
        .iter()
        .find(|p| {
            p.get("name").and_then(Value::as_str) == Some("k8s-pb")
                && p.get("version").and_then(Value::as_str) == Some(K8S_PB_VERSION)
        })
        .ok_or_else(|| {
            anyhow!(
                "k8s-pb {K8S_PB_VERSION} is not in the workspace's dependency graph (tug-api has it as a dev-dependency)"
            )
        })?;
    let manifest = package
        .get("manifest_path")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("k8s-pb has no manifest_path in `cargo metadata`"))?;
    let src = Path::new(manifest)
        .parent()
        .map(|dir| dir.join("src"))
        .ok_or_else(|| anyhow!("odd manifest path {manifest:?}"))?;
    ensure!(
        src.is_dir(),
        "k8s-pb sources not found at {}",
        src.display()
    );
    Ok(src)
}

/// Produces the table's exact text from the normalised OpenAPI artifact (as JSON), the
/// `k8s-pb` sources and the Go facts.
pub fn generate(openapi: &Value, k8s_pb_src: &Path, facts: &Facts) -> Result<String> {
    let defs = openapi
        .get("definitions")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("the OpenAPI artifact has no definitions"))?;

    // Parse the prost module of every package that has definitions.
    let packages: BTreeSet<&str> = defs
        .keys()
        .filter_map(|name| name.rsplit_once('.').map(|(package, _)| package))
        .collect();
    let mut messages: BTreeMap<(String, String), ProtoMessage> = BTreeMap::new();
    for package in &packages {
        let relative = package
            .strip_prefix("io.k8s.")
            .ok_or_else(|| anyhow!("unexpected package {package:?}"))?
            .replace('.', "/");
        let file = k8s_pb_src.join(relative).join("mod.rs");
        if !file.is_file() {
            // Packages without protobuf (`pkg.version`) have no module.
            continue;
        }
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        for (name, message) in
            parse_module(&text, package).with_context(|| format!("parsing {}", file.display()))?
        {
            messages.insert((package.to_string(), name), message);
        }
    }

    // Name every message by its definition.
    let mut names: BTreeMap<(String, String), String> = BTreeMap::new();
    for (package, rust_name) in messages.keys() {
        let matching: Vec<&String> = defs
            .keys()
            .filter(|def| {
                def.rsplit_once('.')
                    .is_some_and(|(p, short)| p == package && short.eq_ignore_ascii_case(rust_name))
            })
            .collect();
        match matching.as_slice() {
            [def] => {
                names.insert((package.clone(), rust_name.clone()), (*def).clone());
            }
            [] => {
                // Helper messages without a definition are named after the struct.
                names.insert(
                    (package.clone(), rust_name.clone()),
                    format!("{package}.{rust_name}"),
                );
            }
            many => bail!("{package}.{rust_name} matches several definitions: {many:?}"),
        }
    }

    // Roots: every kind; then everything they reach.
    let mut queue: VecDeque<(String, String)> = messages
        .keys()
        .filter(|key| {
            defs.get(&names[*key])
                .is_some_and(|def| def.get("x-kubernetes-group-version-kind").is_some())
        })
        .cloned()
        .collect();
    ensure!(!queue.is_empty(), "no kinds have protobuf messages");
    // Walk the kept fields only: a field from a later release may lead to messages v1.33
    // doesn't have.
    let name_of = |target: &(String, String)| names[target].clone();
    let mut reachable = BTreeSet::new();
    let mut inline_hosts: BTreeMap<String, String> = BTreeMap::new();
    let mut table = Map::new();
    let mut skipped = Map::new();
    while let Some(key) = queue.pop_front() {
        if !reachable.insert(key.clone()) {
            continue;
        }
        let message = messages
            .get(&key)
            .ok_or_else(|| anyhow!("message {}.{} is referenced but missing", key.0, key.1))?;
        let name = &names[&key];
        let proto_name = format!(
            "k8s.io.{}.{}",
            key.0.strip_prefix("io.k8s.").unwrap_or(&key.0),
            key.1
        );
        let mut entry =
            if let Some((_, special, layout)) = SPECIALS.iter().find(|(def, _, _)| def == name) {
                special_entry(name, special, layout, message)?
            } else if !defs.contains_key(name) && !inline_hosts.contains_key(name) {
                list_wrapper_entry(name, message)?
            } else {
                // An inline embedding without a definition of its own (`VolumeSource`) takes its
                // JSON names from the definition it is inlined into.
                let schema = if defs.contains_key(name) {
                    name.clone()
                } else {
                    inline_hosts[name].clone()
                };
                let context = Known {
                    defs,
                    messages: &messages,
                    names: &names,
                };
                let Entry {
                    entry,
                    skipped: skipped_here,
                    targets,
                } = message_entry(name, &schema, message, facts.get(name), &context)?;
                for field in &message.fields {
                    let inline = facts
                        .get(name)
                        .is_some_and(|go| go.iter().any(|f| f.tag == field.tag && f.inline));
                    if let (true, Kind::Message { target, .. }) = (inline, &field.kind) {
                        inline_hosts.insert(name_of(target), schema.clone());
                    }
                }
                if !skipped_here.is_empty() {
                    skipped.insert(name.clone(), Value::Array(skipped_here));
                }
                for target in targets {
                    ensure!(
                        messages.contains_key(&target),
                        "{name}: message {}.{} not found in k8s-pb",
                        target.0,
                        target.1
                    );
                    queue.push_back(target);
                }
                entry
            };
        entry.insert("proto".into(), json!(proto_name));
        table.insert(name.clone(), Value::Object(entry));
    }

    // Kinds: every group-version-kind of a kept message, in the group-versions whose own
    // packages are kept (meta types like `DeleteOptions` list every group there is).
    let gvks_of = |name: &String| {
        defs.get(name)
            .and_then(|def| def.get("x-kubernetes-group-version-kind"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|gvk| {
                let part = |key: &str| {
                    gvk.get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let api_version = if part("group").is_empty() {
                    part("version")
                } else {
                    format!("{}/{}", part("group"), part("version"))
                };
                (api_version, part("kind"))
            })
            .collect::<Vec<_>>()
    };
    let served: BTreeSet<String> = table
        .keys()
        .filter(|name| name.starts_with("io.k8s.api."))
        .flat_map(|name| {
            gvks_of(name)
                .into_iter()
                .map(|(api_version, _)| api_version)
        })
        .collect();
    let mut kinds: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for name in table.keys() {
        for (api_version, kind) in gvks_of(name) {
            if !served.contains(&api_version) {
                continue;
            }
            let previous = kinds
                .entry(api_version.clone())
                .or_default()
                .insert(kind.clone(), name.clone());
            ensure!(
                previous.is_none_or(|p| &p == name),
                "{api_version} {kind} names two definitions"
            );
        }
    }

    let root = json!({
        "kinds": kinds,
        "messages": table,
        "skipped": skipped,
        "x-tug-source": {
            "generator": "cargo xtask codegen (do not edit by hand)",
            "k8s-pb": K8S_PB_VERSION,
            "openapi": crate::codegen::ARTIFACT,
            "go-fields": crate::gofields::FACTS,
        },
    });
    Ok(crate::codegen::render_json(&root, 4))
}

/// The table entry of an ordinary message.
fn message_entry(
    name: &str,
    schema_name: &str,
    message: &ProtoMessage,
    go: Option<&Vec<GoField>>,
    context: &Known<'_>,
) -> Result<Entry> {
    let defs = context.defs;
    let name_of = |target: &(String, String)| context.names[target].clone();
    let name_of: &dyn Fn(&(String, String)) -> String = &name_of;
    let def = &defs[schema_name];
    let hosted = schema_name != name;
    let empty = Map::new();
    let properties = def
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let go = go.ok_or_else(|| anyhow!("{name}: no Go struct facts for this message"))?;
    let mut fields = Vec::new();
    let mut skipped = Vec::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    let mut targets = Vec::new();
    for field in &message.fields {
        let at = format!("{name}.{}", field.name);
        let fact = go.iter().find(|f| f.tag == field.tag);
        let wanted = normalise(&field.name);
        let property = properties
            .iter()
            .find(|(prop, _)| normalise(prop) == wanted);
        let mut out = Map::new();
        out.insert("tag".into(), json!(field.tag));
        match (fact, property) {
            (None, None) => {
                // Known to k8s-pb (a later release) but not to v1.33.
                skipped.push(json!(format!("{} (tag {})", field.name, field.tag)));
                continue;
            }
            (Some(fact), None) if fact.inline => {
                let Kind::Message {
                    target,
                    repeated: false,
                } = &field.kind
                else {
                    bail!("{at}: an inline field must be a single message");
                };
                let target_name = name_of(target);
                out.insert("inline".into(), json!(true));
                out.insert("json".into(), json!(lower_camel(&field.name)));
                out.insert("type".into(), json!("message"));
                out.insert("message".into(), json!(target_name));
                out.insert("emit".into(), json!("always"));
                // Its fields' properties appear in this definition.
                let inlined = context
                    .messages
                    .get(target)
                    .ok_or_else(|| anyhow!("{at}: {target_name} not found in k8s-pb"))?;
                for inner in &inlined.fields {
                    let wanted = normalise(&inner.name);
                    if let Some(prop) = properties.keys().find(|p| normalise(p) == wanted) {
                        covered.insert(prop.clone());
                    }
                }
            }
            (Some(_), None) => bail!(
                "{at} (tag {}) matches no OpenAPI property of {name}",
                field.tag
            ),
            (None, Some((prop, _))) => bail!(
                "{at}: OpenAPI has {prop:?} but the Go facts have no field {}",
                field.tag
            ),
            (Some(fact), Some((prop, schema))) => {
                ensure!(
                    !fact.inline && &fact.json == prop,
                    "{at}: Go names field {} {:?}, OpenAPI {prop:?}",
                    field.tag,
                    fact.json
                );
                covered.insert(prop.clone());
                out.insert("json".into(), json!(prop));
                describe_kind(defs, &field.kind, schema, &at, name_of, &mut out)?;
                out.insert("emit".into(), json!(emit(&field.kind, fact)));
            }
        }
        match &field.kind {
            Kind::Message { target, .. }
            | Kind::Map {
                target: Some(target),
                ..
            } => targets.push(target.clone()),
            _ => {}
        }
        fields.push(Value::Object(out));
    }
    for fact in go {
        ensure!(
            message.fields.iter().any(|f| f.tag == fact.tag),
            "{name}: Go field {} ({:?}) is missing from k8s-pb",
            fact.tag,
            fact.json
        );
    }
    for prop in properties.keys().filter(|_| !hosted) {
        ensure!(
            covered.contains(prop) || prop == "apiVersion" || prop == "kind",
            "{name}: OpenAPI property {prop:?} has no protobuf field"
        );
    }
    let mut entry = Map::new();
    entry.insert("fields".into(), Value::Array(fields));
    Ok(Entry {
        entry,
        skipped,
        targets,
    })
}

/// When a field appears in the JSON, given its Go facts (see `tug_api::protobuf`).
fn emit(kind: &Kind, fact: &GoField) -> &'static str {
    let collection = matches!(
        kind,
        Kind::Map { .. }
            | Kind::Scalar { repeated: true, .. }
            | Kind::Message { repeated: true, .. }
    ) || matches!(kind, Kind::Scalar { ty, .. } if ty == "bytes");
    match (collection, fact.pointer, fact.omitempty, kind) {
        (_, true, true, _) => "if-set",
        (_, true, false, _) => "if-set-else-null",
        (true, false, true, _) => "if-nonzero",
        (true, false, false, _) => "if-set-else-null",
        // Go's JSON never omits a struct, whatever the tag says.
        (false, false, _, Kind::Message { .. }) => "always",
        (false, false, true, _) => "if-nonzero",
        (false, false, false, _) => "always",
    }
}

/// Adds `type`, `repeated`, `message`, `key`, `value` to a field entry after checking the
/// protobuf type against the OpenAPI schema.
fn describe_kind(
    defs: &Map<String, Value>,
    kind: &Kind,
    schema: &Value,
    at: &str,
    name_of: &dyn Fn(&(String, String)) -> String,
    out: &mut Map<String, Value>,
) -> Result<()> {
    match kind {
        Kind::Scalar { ty, repeated } => {
            let item = if *repeated {
                ensure!(
                    schema_type(schema) == Some("array"),
                    "{at}: repeated {ty} but OpenAPI has {schema}"
                );
                schema.get("items").unwrap_or(&Value::Null)
            } else {
                schema
            };
            check_scalar(ty, item, at)?;
            out.insert("type".into(), json!(ty));
            if *repeated {
                out.insert("repeated".into(), json!(true));
            }
        }
        Kind::Message { target, repeated } => {
            let item = if *repeated {
                ensure!(
                    schema_type(schema) == Some("array"),
                    "{at}: repeated message but OpenAPI has {schema}"
                );
                schema.get("items").unwrap_or(&Value::Null)
            } else {
                schema
            };
            let target_name = name_of(target);
            if defs.contains_key(&target_name) || item.get("$ref").is_some() {
                check_ref(&target_name, item, at)?;
            } else {
                // A list wrapper (`Verbs`): an array in JSON.
                ensure!(
                    schema_type(item) == Some("array"),
                    "{at}: message {target_name} but OpenAPI has {item}"
                );
            }
            out.insert("type".into(), json!("message"));
            out.insert("message".into(), json!(target_name));
            if *repeated {
                out.insert("repeated".into(), json!(true));
            }
        }
        Kind::Map { key, value, target } => {
            ensure!(
                schema_type(schema) == Some("object") && key == "string",
                "{at}: map<{key}, {value}> but OpenAPI has {schema}"
            );
            let values = schema
                .get("additionalProperties")
                .ok_or_else(|| anyhow!("{at}: a map without additionalProperties in OpenAPI"))?;
            out.insert("type".into(), json!("map"));
            out.insert("key".into(), json!(key));
            match target {
                Some(target) => {
                    let target_name = name_of(target);
                    if values.get("$ref").is_some() {
                        check_ref(&target_name, values, at)?;
                    } else {
                        // A list wrapper (`ExtraValue`): an array of strings in JSON.
                        ensure!(
                            schema_type(values) == Some("array"),
                            "{at}: map of {target_name} but OpenAPI has {values}"
                        );
                    }
                    out.insert("value".into(), json!("message"));
                    out.insert("message".into(), json!(target_name));
                }
                None => {
                    check_scalar(value, values, at)?;
                    out.insert("value".into(), json!(value));
                }
            }
        }
    }
    Ok(())
}

/// The `type` of a schema.
fn schema_type(schema: &Value) -> Option<&str> {
    schema.get("type").and_then(Value::as_str)
}

/// Checks that a scalar protobuf type fits the OpenAPI schema.
fn check_scalar(ty: &str, schema: &Value, at: &str) -> Result<()> {
    let format = schema.get("format").and_then(Value::as_str);
    let ok = match (ty, schema_type(schema)) {
        ("string", Some("string")) => format != Some("byte"),
        ("bytes", Some("string")) => format == Some("byte"),
        ("int32", Some("integer")) => format.is_none_or(|f| f == "int32"),
        ("int64", Some("integer")) => format.is_none_or(|f| f == "int64"),
        ("bool", Some("boolean")) => true,
        ("double" | "float", Some("number")) => true,
        _ => false,
    };
    ensure!(ok, "{at}: protobuf {ty} but OpenAPI has {schema}");
    Ok(())
}

/// Checks that the schema refers to the definition a message field names.
fn check_ref(target: &str, schema: &Value, at: &str) -> Result<()> {
    let reference = schema.get("$ref").and_then(Value::as_str);
    ensure!(
        reference == Some(&format!("#/definitions/{target}")),
        "{at}: protobuf message {target} but OpenAPI has {schema}"
    );
    Ok(())
}

/// The table entry of a special message, after checking its layout.
fn special_entry(
    name: &str,
    special: &str,
    layout: &[(u32, &str, &str)],
    message: &ProtoMessage,
) -> Result<Map<String, Value>> {
    let actual: Vec<(u32, &str, String)> = message
        .fields
        .iter()
        .map(|f| {
            let ty = match &f.kind {
                Kind::Scalar {
                    ty,
                    repeated: false,
                } => ty.clone(),
                other => format!("{other:?}"),
            };
            (f.tag, f.name.as_str(), ty)
        })
        .collect();
    let expected: Vec<(u32, &str, String)> = layout
        .iter()
        .map(|(tag, field, ty)| (*tag, *field, ty.to_string()))
        .collect();
    ensure!(
        actual == expected,
        "{name}: the decoder expects the layout {expected:?}, k8s-pb has {actual:?}"
    );
    let fields = layout
        .iter()
        .map(|(tag, field, ty)| json!({"tag": tag, "json": lower_camel(field), "type": ty, "emit": "if-set"}))
        .collect();
    let mut entry = Map::new();
    entry.insert("special".into(), json!(special));
    entry.insert("fields".into(), Value::Array(fields));
    Ok(entry)
}

/// The table entry of a helper message that JSON writes as a plain list (`ExtraValue`:
/// `repeated string items = 1`).
fn list_wrapper_entry(name: &str, message: &ProtoMessage) -> Result<Map<String, Value>> {
    let [field] = message.fields.as_slice() else {
        bail!("{name} has no OpenAPI definition and is not a list wrapper");
    };
    let Kind::Scalar { ty, repeated: true } = &field.kind else {
        bail!("{name} has no OpenAPI definition and is not a list wrapper");
    };
    ensure!(
        field.tag == 1 && field.name == "items",
        "{name} has no OpenAPI definition and is not a list wrapper"
    );
    let mut entry = Map::new();
    entry.insert("special".into(), json!("list"));
    entry.insert(
        "fields".into(),
        json!([{"tag": 1, "json": "items", "type": ty, "repeated": true, "emit": "if-set"}]),
    );
    Ok(entry)
}

/// `pod_ip` → `podip`; `r#type` → `type`: the form names are compared in.
fn normalise(name: &str) -> String {
    name.trim_start_matches("r#")
        .chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// `int_val` → `intVal`; `r#type` → `type`.
fn lower_camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.trim_start_matches("r#").chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The messages of one prost module (`package` is its definition prefix,
/// `io.k8s.api.apps.v1`), by struct name.
fn parse_module(text: &str, package: &str) -> Result<Vec<(String, ProtoMessage)>> {
    let module: Vec<&str> = package
        .strip_prefix("io.k8s.")
        .unwrap_or(package)
        .split('.')
        .collect();
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((_, line)) = lines.next() {
        let Some(name) = line
            .strip_prefix("pub struct ")
            .and_then(|rest| rest.strip_suffix(" {"))
        else {
            continue;
        };
        let mut fields = Vec::new();
        let mut pending: Option<(String, u32)> = None;
        let mut declaration = String::new();
        for (number, line) in lines.by_ref() {
            if line == "}" {
                break;
            }
            let trimmed = line.trim();
            if let Some(attribute) = trimmed
                .strip_prefix("#[prost(")
                .and_then(|a| a.strip_suffix(")]"))
            {
                let tag = attribute
                    .split("tag = \"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| anyhow!("line {}: no tag in {trimmed:?}", number + 1))?;
                pending = Some((attribute.to_string(), tag));
                declaration.clear();
                continue;
            }
            let Some((attribute, tag)) = pending.as_ref() else {
                continue;
            };
            if trimmed.starts_with("///") {
                continue;
            }
            declaration.push_str(trimmed);
            let depth =
                declaration.matches('<').count() as i64 - declaration.matches('>').count() as i64;
            if !(depth == 0 && declaration.ends_with(',')) {
                continue;
            }
            let (field_name, rust_type) = declaration
                .strip_prefix("pub ")
                .and_then(|d| d.split_once(": "))
                .or_else(|| {
                    declaration
                        .strip_prefix("pub ")
                        .and_then(|d| d.split_once(':'))
                })
                .ok_or_else(|| {
                    anyhow!(
                        "line {}: unexpected declaration {declaration:?}",
                        number + 1
                    )
                })?;
            // rustfmt leaves a trailing comma in generics it wraps.
            let rust_type = rust_type.trim_end_matches(',').replace(",>", ">");
            let kind = field_kind(attribute, &rust_type, &module)
                .with_context(|| format!("{name}.{field_name}"))?;
            fields.push(ProtoField {
                name: field_name.to_string(),
                tag: *tag,
                kind,
            });
            pending = None;
            declaration.clear();
        }
        out.push((name.to_string(), ProtoMessage { fields }));
    }
    Ok(out)
}

/// The kind of a prost field from its attribute (`message, optional, tag = "1"`) and Rust
/// type.
fn field_kind(attribute: &str, rust_type: &str, module: &[&str]) -> Result<Kind> {
    let repeated = attribute.contains(", repeated");
    if let Some(rest) = attribute
        .strip_prefix("btree_map = \"")
        .or_else(|| attribute.strip_prefix("map = \""))
    {
        let spec = rest
            .split('"')
            .next()
            .ok_or_else(|| anyhow!("odd map attribute {attribute:?}"))?;
        let (key, value) = spec
            .split_once(", ")
            .ok_or_else(|| anyhow!("odd map attribute {attribute:?}"))?;
        let target = if value == "message" {
            let value_type = split_generics(rust_type)
                .get(1)
                .cloned()
                .ok_or_else(|| anyhow!("odd map type {rust_type:?}"))?;
            Some(resolve(&value_type, module)?)
        } else {
            ensure!(SCALARS.contains(&value), "unknown map value type {value:?}");
            None
        };
        return Ok(Kind::Map {
            key: key.to_string(),
            value: value.to_string(),
            target,
        });
    }
    let ty = attribute
        .split(',')
        .next()
        .map(|t| t.split(" = ").next().unwrap_or(t).trim())
        .ok_or_else(|| anyhow!("odd attribute {attribute:?}"))?;
    if ty == "message" {
        return Ok(Kind::Message {
            target: resolve(rust_type, module)?,
            repeated,
        });
    }
    ensure!(SCALARS.contains(&ty), "unknown protobuf type {ty:?}");
    Ok(Kind::Scalar {
        ty: ty.to_string(),
        repeated,
    })
}

/// The top-level generic arguments of the innermost collection type
/// (`BTreeMap<String, Quantity>` → `[String, Quantity]`).
fn split_generics(rust_type: &str) -> Vec<String> {
    let Some(open) = rust_type.find('<') else {
        return vec![rust_type.to_string()];
    };
    let inner = &rust_type[open + 1..rust_type.len().saturating_sub(1)];
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in inner.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// Resolves the message a Rust type names (`::core::option::Option<super::Foo>`) to
/// (package, struct name).
fn resolve(rust_type: &str, module: &[&str]) -> Result<(String, String)> {
    let mut path = rust_type.trim();
    for wrapper in [
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
    ] {
        if let Some(inner) = path.strip_prefix(wrapper) {
            path = inner.strip_suffix('>').unwrap_or(inner);
        }
    }
    let mut segments: Vec<&str> = module.to_vec();
    let mut parts: Vec<&str> = path.split("::").collect();
    let name = parts
        .pop()
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| anyhow!("odd message type {rust_type:?}"))?;
    for part in parts {
        match part {
            "super" => {
                segments
                    .pop()
                    .ok_or_else(|| anyhow!("{rust_type:?} leaves the crate"))?;
            }
            "crate" => segments.clear(),
            other => segments.push(other),
        }
    }
    Ok((format!("io.k8s.{}", segments.join(".")), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"
/// Doc.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ThingSpec {
    /// Replicas.
    #[prost(int32, optional, tag = "1")]
    pub replicas: ::core::option::Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub selector:
        ::core::option::Option<super::super::super::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    #[prost(btree_map = "string, message", tag = "3")]
    pub limits: ::prost::alloc::collections::BTreeMap<
        ::prost::alloc::string::String,
        super::super::super::apimachinery::pkg::api::resource::Quantity,
    >,
    #[prost(string, repeated, tag = "4")]
    pub pod_ips: ::prost::alloc::vec::Vec<::prost::alloc::string::String>,
    #[prost(message, repeated, tag = "5")]
    pub items: ::prost::alloc::vec::Vec<Item>,
    #[prost(string, optional, tag = "6")]
    pub r#type: ::core::option::Option<::prost::alloc::string::String>,
}
impl crate::Resource for ThingSpec {
    const KIND: &'static str = "x";
}
"#;

    #[test]
    fn prost_structs_parse_into_tags_and_kinds() {
        let parsed = parse_module(MODULE, "io.k8s.api.apps.v1").expect("parses");
        assert_eq!(parsed.len(), 1);
        let (name, message) = &parsed[0];
        assert_eq!(name, "ThingSpec");
        let summary: Vec<(String, u32, Kind)> = message
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.tag, f.kind.clone()))
            .collect();
        let meta = "io.k8s.apimachinery.pkg.apis.meta.v1".to_string();
        assert_eq!(
            summary,
            [
                (
                    "replicas".to_string(),
                    1,
                    Kind::Scalar {
                        ty: "int32".into(),
                        repeated: false
                    }
                ),
                (
                    "selector".to_string(),
                    2,
                    Kind::Message {
                        target: (meta, "LabelSelector".into()),
                        repeated: false
                    }
                ),
                (
                    "limits".to_string(),
                    3,
                    Kind::Map {
                        key: "string".into(),
                        value: "message".into(),
                        target: Some((
                            "io.k8s.apimachinery.pkg.api.resource".into(),
                            "Quantity".into()
                        ))
                    }
                ),
                (
                    "pod_ips".to_string(),
                    4,
                    Kind::Scalar {
                        ty: "string".into(),
                        repeated: true
                    }
                ),
                (
                    "items".to_string(),
                    5,
                    Kind::Message {
                        target: ("io.k8s.api.apps.v1".into(), "Item".into()),
                        repeated: true
                    }
                ),
                (
                    "r#type".to_string(),
                    6,
                    Kind::Scalar {
                        ty: "string".into(),
                        repeated: false
                    }
                ),
            ]
        );
    }

    /// A one-kind world: k8s-pb sources in a temporary directory, definitions, Go facts.
    fn generate_one(properties: Value, go: &[(u32, &str)]) -> Result<Value> {
        let dir = tempfile::tempdir()?;
        let module = dir.path().join("api/apps/v1");
        fs::create_dir_all(&module)?;
        fs::write(
            module.join("mod.rs"),
            "pub struct Thing {\n    #[prost(int32, optional, tag = \"1\")]\n    pub pod_ip_count: ::core::option::Option<i32>,\n    #[prost(string, optional, tag = \"2\")]\n    pub later: ::core::option::Option<::prost::alloc::string::String>,\n}\n",
        )?;
        let openapi = json!({"definitions": {"io.k8s.api.apps.v1.Thing": {
            "properties": properties,
            "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Thing"}]
        }}});
        let mut facts = Facts::new();
        facts.insert(
            "io.k8s.api.apps.v1.Thing".into(),
            go.iter()
                .map(|(tag, json)| GoField {
                    tag: *tag,
                    json: json.to_string(),
                    pointer: true,
                    omitempty: true,
                    inline: false,
                })
                .collect(),
        );
        let text = generate(&openapi, dir.path(), &facts)?;
        Ok(serde_json::from_str(&text)?)
    }

    #[test]
    fn fields_match_json_names_and_later_fields_are_skipped() {
        let table = generate_one(
            json!({"podIPCount": {"type": "integer", "format": "int32"}}),
            &[(1, "podIPCount")],
        )
        .expect("generates");
        assert_eq!(
            table["messages"]["io.k8s.api.apps.v1.Thing"]["fields"],
            json!([{"emit": "if-set", "json": "podIPCount", "tag": 1, "type": "int32"}])
        );
        assert_eq!(
            table["skipped"]["io.k8s.api.apps.v1.Thing"],
            json!(["later (tag 2)"])
        );
        assert_eq!(
            table["kinds"]["apps/v1"]["Thing"],
            "io.k8s.api.apps.v1.Thing"
        );
    }

    #[test]
    fn unmatched_fields_and_type_mismatches_fail_loudly() {
        // Go has field 2, OpenAPI has no property for it.
        let err = generate_one(
            json!({"podIPCount": {"type": "integer", "format": "int32"}}),
            &[(1, "podIPCount"), (2, "later")],
        )
        .expect_err("refuses");
        assert!(err.to_string().contains("Thing.later (tag 2)"), "{err}");
        // OpenAPI says string where protobuf says int32.
        let err = generate_one(
            json!({"podIPCount": {"type": "string"}}),
            &[(1, "podIPCount")],
        )
        .expect_err("refuses");
        assert!(err.to_string().contains("protobuf int32"), "{err}");
        // An OpenAPI property without a protobuf field.
        let err = generate_one(
            json!({"podIPCount": {"type": "integer"}, "other": {"type": "string"}}),
            &[(1, "podIPCount")],
        )
        .expect_err("refuses");
        assert!(
            err.to_string().contains("\"other\" has no protobuf field"),
            "{err}"
        );
    }

    #[test]
    fn names_compare_without_case_and_underscores() {
        assert_eq!(normalise("pod_ip"), normalise("podIP"));
        assert_eq!(normalise("r#type"), "type");
        assert_eq!(lower_camel("int_val"), "intVal");
        assert_eq!(lower_camel("r#type"), "type");
    }

    #[test]
    fn emit_follows_go_pointers_and_omitempty() {
        let fact = |pointer, omitempty| GoField {
            tag: 1,
            json: "x".into(),
            pointer,
            omitempty,
            inline: false,
        };
        let int = Kind::Scalar {
            ty: "int32".into(),
            repeated: false,
        };
        let list = Kind::Scalar {
            ty: "string".into(),
            repeated: true,
        };
        let message = Kind::Message {
            target: ("p".into(), "M".into()),
            repeated: false,
        };
        assert_eq!(emit(&int, &fact(true, true)), "if-set");
        assert_eq!(emit(&int, &fact(false, true)), "if-nonzero");
        assert_eq!(emit(&int, &fact(false, false)), "always");
        assert_eq!(emit(&list, &fact(false, true)), "if-nonzero");
        assert_eq!(emit(&list, &fact(false, false)), "if-set-else-null");
        assert_eq!(emit(&message, &fact(false, true)), "always");
        assert_eq!(emit(&message, &fact(true, false)), "if-set-else-null");
    }
}
