//! `cargo xtask codegen`: turns upstream's OpenAPI definitions into the normalised artifact
//! that `crates/api` compiles in (`crates/api/openapi/v1.33.json`).
//!
//! The source is the JSON-schema form of the Kubernetes v1.33 OpenAPI spec that the PyPI
//! package `kubernetes-validate` ships. That form differs from upstream's swagger in a few
//! mechanical ways, which this step undoes so that the artifact reads like upstream's
//! `definitions`:
//!
//! - `type: ["X", "null"]` becomes `type: "X"` (the package makes optional fields nullable);
//! - `$ref: "#/$defs/N"` becomes `$ref: "#/definitions/N"`;
//! - the `enum` the package adds to every `apiVersion` and `kind` property is dropped;
//! - `IntOrString` and `Quantity`, which the package spells as `oneOf`, become the string
//!   schemas upstream serves (`format: int-or-string` for the former).
//!
//! Only the definitions of the served group-versions and of apimachinery are kept (plus
//! anything they reference), keys are sorted, and the output is pretty-printed so that diffs
//! stay readable. Any keyword this step does not know makes it fail loudly, so that a new
//! package version cannot change the artifact's meaning silently.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Map, Value, json};

use crate::{gofields, protobuf};

/// The PyPI requirement that ships the spec.
const PACKAGE: &str = "kubernetes-validate==1.37.0";
/// The member of the package's wheel that holds the v1.33 definitions.
const MEMBER: &str = "kubernetes_validate/kubernetes-json-schema/v1.33.0-local/_definitions.json";
/// The Kubernetes version the definitions describe.
const KUBERNETES_VERSION: &str = "v1.33.0";
/// Where the artifact lives, relative to the workspace root.
pub const ARTIFACT: &str = "crates/api/openapi/v1.33.json";

/// Definition-name prefixes kept in the artifact: every served group-version, plus the
/// apimachinery types (meta/v1, runtime, intstr, resource, version).
pub const KEPT_PREFIXES: &[&str] = &[
    "io.k8s.apimachinery.",
    "io.k8s.api.core.v1.",
    "io.k8s.api.apps.v1.",
    "io.k8s.api.authentication.v1.",
    "io.k8s.api.authorization.v1.",
    "io.k8s.api.autoscaling.v1.",
    "io.k8s.api.autoscaling.v2.",
    "io.k8s.api.batch.v1.",
    "io.k8s.api.coordination.v1.",
    "io.k8s.api.discovery.v1.",
    "io.k8s.api.events.v1.",
    "io.k8s.api.networking.v1.",
    "io.k8s.api.policy.v1.",
    "io.k8s.api.rbac.v1.",
    "io.k8s.api.scheduling.v1.",
    "io.k8s.api.storage.v1.",
];

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Where the Go sources for the Go field facts are, when they are to be re-read.
#[derive(Debug, Clone, Copy)]
pub struct GoSources<'a> {
    /// A checkout of `k8s.io/api` at [`crate::gofields::GO_TAG`].
    pub api: &'a Path,
    /// A checkout of `k8s.io/apimachinery` at the same tag.
    pub apimachinery: &'a Path,
}

/// Runs the task: regenerate the artifacts (the OpenAPI definitions, then the protobuf
/// table, and with `go` the Go field facts it reads), or with `check` compare them with the
/// committed ones.
pub fn run(check: bool, definitions: Option<&Path>, go: Option<GoSources<'_>>) -> Result<()> {
    let source = match definitions {
        Some(path) => fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => download()?,
    };
    let root = workspace_root();
    let generated = generate(&source)?;
    let mut artifacts = vec![(ARTIFACT, generated.clone())];

    let facts_text = match go {
        Some(go) => {
            let text = gofields::extract(go.api, go.apimachinery, KEPT_PREFIXES)?;
            artifacts.push((gofields::FACTS, text.clone()));
            text
        }
        None => fs::read_to_string(root.join(gofields::FACTS))
            .with_context(|| format!("reading {}", gofields::FACTS))?,
    };
    let facts = gofields::parse(&facts_text)?;
    let openapi: Value = serde_json::from_str(&generated)?;
    let k8s_pb = protobuf::locate_k8s_pb(&root)?;
    artifacts.push((
        protobuf::ARTIFACT,
        protobuf::generate(&openapi, &k8s_pb, &facts)?,
    ));

    for (relative, generated) in artifacts {
        let path = root.join(relative);
        if check {
            let committed = fs::read_to_string(&path).unwrap_or_default();
            if committed != generated {
                bail!(
                    "{relative} is out of date with its sources; run `cargo xtask codegen` and commit the result"
                );
            }
            eprintln!("codegen: {relative} is up to date");
        } else {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            fs::write(&path, &generated).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("codegen: wrote {relative} ({} bytes)", generated.len());
        }
    }
    Ok(())
}

/// The workspace root (the parent of this crate's directory). `cargo run` sets
/// `CARGO_MANIFEST_DIR` at run time too; that one wins over the compile-time value, which may
/// name another clone when several share one target directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.clone(), Path::to_path_buf)
}

/// Downloads the package's wheel with pip into a temporary directory and reads the one
/// member out of it (a wheel is a zip archive; Python's `zipfile` reads it, so nothing beyond
/// the Python that pip needs anyway is required).
fn download() -> Result<Vec<u8>> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
        ])
        .arg("--dest")
        .arg(dir.path())
        .arg(PACKAGE)
        .status()
        .context("running `python3 -m pip download` (is pip installed?)")?;
    ensure!(
        status.success(),
        "`pip download {PACKAGE}` failed with {status}"
    );
    let wheel = fs::read_dir(dir.path())?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .ok_or_else(|| anyhow!("`pip download {PACKAGE}` produced no wheel"))?;
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(&wheel)
        .arg(MEMBER)
        .output()
        .context("running python3 to read the wheel")?;
    ensure!(
        output.status.success(),
        "reading {MEMBER} from {} failed: {}",
        wheel.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(output.stdout)
}

/// Produces the artifact's exact text from the package's `_definitions.json`.
fn generate(source: &[u8]) -> Result<String> {
    let root: Value = serde_json::from_slice(source).context("parsing the definitions as JSON")?;
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("the definitions file has no `$defs` object"))?;

    let mut kept = BTreeMap::new();
    for name in closure(defs)? {
        let def = &defs[&name];
        let normalised = match name.as_str() {
            INT_OR_STRING => int_or_string(def)?,
            QUANTITY => quantity(def)?,
            _ => normalise_schema(def, &name)?,
        };
        kept.insert(name, normalised);
    }

    let artifact = json!({
        "definitions": Value::Object(kept.into_iter().collect()),
        "x-tug-source": {
            "generator": "cargo xtask codegen (do not edit by hand)",
            "kubernetes": KUBERNETES_VERSION,
            "package": PACKAGE,
            "file": MEMBER,
        },
    });
    let mut text = serde_json::to_string_pretty(&sorted(artifact))?;
    text.push('\n');
    Ok(text)
}

/// The names of the kept definitions and of everything they reference, transitively.
fn closure(defs: &Map<String, Value>) -> Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<String> = defs
        .keys()
        .filter(|name| KEPT_PREFIXES.iter().any(|prefix| name.starts_with(prefix)))
        .cloned()
        .collect();
    ensure!(
        !queue.is_empty(),
        "no served definitions found in the definitions file"
    );
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let def = defs
            .get(&name)
            .ok_or_else(|| anyhow!("definition {name:?} is referenced but missing"))?;
        let mut refs = Vec::new();
        collect_refs(def, &mut refs);
        for target in refs {
            let target = target
                .strip_prefix("#/$defs/")
                .ok_or_else(|| anyhow!("{name}: unexpected reference {target:?}"))?;
            if !seen.contains(target) {
                queue.push_back(target.to_string());
            }
        }
    }
    Ok(seen)
}

/// Every `$ref` string below `value`.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// Normalises one schema (a definition or a property, item or map-value schema). `at` names
/// the place for error messages.
fn normalise_schema(schema: &Value, at: &str) -> Result<Value> {
    let map = schema
        .as_object()
        .ok_or_else(|| anyhow!("{at}: a schema must be an object"))?;
    let mut out = Map::new();
    for (key, value) in map {
        let normalised = match key.as_str() {
            "type" => Value::String(plain_type(value, at)?),
            "$ref" => {
                let target = value
                    .as_str()
                    .and_then(|t| t.strip_prefix("#/$defs/"))
                    .ok_or_else(|| anyhow!("{at}: unexpected $ref {value}"))?;
                Value::String(format!("#/definitions/{target}"))
            }
            "properties" => {
                let props = value
                    .as_object()
                    .ok_or_else(|| anyhow!("{at}: properties must be an object"))?;
                let mut normalised = Map::new();
                for (name, prop) in props {
                    let mut prop = normalise_schema(prop, &format!("{at}.{name}"))?;
                    if name == "apiVersion" || name == "kind" {
                        // The package pins these to the definition's own GVK; upstream doesn't.
                        if let Some(obj) = prop.as_object_mut() {
                            obj.remove("enum");
                        }
                    }
                    normalised.insert(name.clone(), prop);
                }
                Value::Object(normalised)
            }
            "items" => normalise_schema(value, &format!("{at}[]"))?,
            "additionalProperties" => match value {
                Value::Bool(_) => value.clone(),
                _ => normalise_schema(value, &format!("{at}{{}}"))?,
            },
            "enum" if at.ends_with(".apiVersion") || at.ends_with(".kind") => value.clone(),
            "description" | "format" | "required" => value.clone(),
            other if other.starts_with("x-kubernetes-") => value.clone(),
            other => bail!("{at}: unknown schema keyword {other:?}; update xtask codegen"),
        };
        out.insert(key.clone(), normalised);
    }
    Ok(Value::Object(out))
}

/// `"X"` or `["X", "null"]` → `"X"`.
fn plain_type(value: &Value, at: &str) -> Result<String> {
    match value {
        Value::String(ty) => Ok(ty.clone()),
        Value::Array(types) => match types.as_slice() {
            [Value::String(ty), Value::String(null)] if null == "null" => Ok(ty.clone()),
            _ => bail!("{at}: unexpected type list {value}"),
        },
        _ => bail!("{at}: unexpected type {value}"),
    }
}

/// The types a `oneOf` definition allows, with `null` stripped.
fn one_of_types(def: &Value, at: &str) -> Result<Vec<String>> {
    let alternatives = def
        .get("oneOf")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{at}: expected a oneOf definition"))?;
    alternatives
        .iter()
        .map(|alt| {
            let ty = alt
                .get("type")
                .ok_or_else(|| anyhow!("{at}: oneOf alternative without a type"))?;
            plain_type(ty, at)
        })
        .collect()
}

/// Upstream's form of `IntOrString`.
fn int_or_string(def: &Value) -> Result<Value> {
    let types = one_of_types(def, INT_OR_STRING)?;
    ensure!(
        types == ["string", "integer"],
        "{INT_OR_STRING}: unexpected alternatives {types:?}"
    );
    Ok(json!({
        "description": "A value that holds either a 32-bit integer or a string, and is written as whichever it holds: for example a port number or a port name, or a count or a percentage.",
        "format": "int-or-string",
        "type": "string",
    }))
}

/// Upstream's form of `Quantity`.
fn quantity(def: &Value) -> Result<Value> {
    let types = one_of_types(def, QUANTITY)?;
    ensure!(
        types == ["string", "number"],
        "{QUANTITY}: unexpected alternatives {types:?}"
    );
    Ok(json!({
        "description": "A fixed-point decimal number with an optional suffix: SI (m, k, M, G, T, P, E), binary (Ki, Mi, Gi, Ti, Pi, Ei) or a decimal exponent (e3). It is written as a string such as \"100m\", \"1.5\" or \"128Mi\"; plain JSON numbers are accepted on input.",
        "type": "string",
    }))
}

/// Renders JSON with sorted keys, indented like `to_string_pretty` down to `depth` levels and
/// written on one line below that, so that large tables stay readable and diff line by line.
pub fn render_json(value: &Value, depth: usize) -> String {
    fn write(value: &Value, depth: usize, indent: usize, out: &mut String) {
        let pad = |n: usize| "  ".repeat(n);
        match value {
            Value::Object(map) if depth > 0 && !map.is_empty() => {
                out.push_str("{\n");
                for (i, (key, child)) in map.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push_str(": ");
                    write(child, depth - 1, indent + 1, out);
                    out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push('}');
            }
            Value::Array(items) if depth > 0 && !items.is_empty() => {
                out.push_str("[\n");
                for (i, child) in items.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    write(child, depth - 1, indent + 1, out);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(&sorted(value.clone()), depth, 0, &mut out);
    out.push('\n');
    out
}

/// A copy of `value` whose objects have their keys in sorted order, whatever map type
/// `serde_json` was built with.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let entries: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_types_refs_and_kind_enums_are_normalised() {
        let source = json!({"$defs": {
            "io.k8s.api.core.v1.Thing": {
                "properties": {
                    "apiVersion": {"type": ["string", "null"], "enum": ["v1"]},
                    "spec": {"$ref": "#/$defs/io.k8s.api.core.v1.ThingSpec", "description": "d"},
                    "items": {"type": ["array", "null"], "items": {"type": ["string", "null"]},
                              "x-kubernetes-list-type": "set"}
                },
                "required": ["spec"],
                "type": ["object", "null"]
            },
            "io.k8s.api.core.v1.ThingSpec": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            "io.k8s.api.flowcontrol.v1.Unrelated": {"type": "object"},
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]},
            "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": ["string", "null"]}, {"type": ["number", "null"]}]}
        }});
        let text = generate(source.to_string().as_bytes()).expect("generates");
        let out: Value = serde_json::from_str(&text).expect("valid json");
        let defs = &out["definitions"];
        assert!(defs.get("io.k8s.api.flowcontrol.v1.Unrelated").is_none());
        let thing = &defs["io.k8s.api.core.v1.Thing"];
        assert_eq!(thing["type"], "object");
        assert_eq!(thing["properties"]["apiVersion"], json!({"type": "string"}));
        assert_eq!(
            thing["properties"]["spec"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.ThingSpec"
        );
        assert_eq!(thing["properties"]["items"]["items"]["type"], "string");
        assert_eq!(
            defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
            "int-or-string"
        );
        assert_eq!(
            defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"],
            "string"
        );
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn unknown_keywords_are_refused() {
        let source = json!({"$defs": {
            "io.k8s.api.core.v1.Thing": {"type": "object", "pattern": "x"}
        }});
        let err = generate(source.to_string().as_bytes()).expect_err("refuses");
        assert!(err.to_string().contains("pattern"), "{err}");
    }

    #[test]
    fn dangling_references_are_refused() {
        let source = json!({"$defs": {
            "io.k8s.api.core.v1.Thing": {"$ref": "#/$defs/io.k8s.api.core.v1.Gone"}
        }});
        let err = generate(source.to_string().as_bytes()).expect_err("refuses");
        assert!(err.to_string().contains("Gone"), "{err}");
    }
}
