//! Facts about upstream's Go API structs that neither the OpenAPI spec nor the `.proto`
//! files carry, and that decide how a protobuf body reads as JSON.
//!
//! Upstream's Go structs marshal every non-pointer field to protobuf, zero or not, but
//! their JSON drops zero values of `omitempty` fields and writes `null` for nil pointers
//! and collections without `omitempty`. To turn a protobuf body into the JSON the same
//! client would have sent, the protobuf table needs, per field, whether the Go field is a
//! pointer, whether its JSON tag says `omitempty`, and whether the struct is embedded
//! inline. Those facts live only in the Go sources (`k8s.io/api`, `k8s.io/apimachinery`).
//!
//! `cargo xtask codegen --go-api DIR --go-apimachinery DIR` reads checkouts of both at
//! [`GO_TAG`] and writes the committed facts file [`FACTS`]; every other run of codegen
//! reads that file, so CI needs no Go sources.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Map, Value, json};

/// The tag of `k8s.io/api` and `k8s.io/apimachinery` the facts are read from.
pub const GO_TAG: &str = "v0.33.13";
/// Where the facts file lives, relative to the workspace root.
pub const FACTS: &str = "xtask/data/go-fields-v1.33.json";

/// The apimachinery packages whose structs appear in the served API.
const APIMACHINERY_PACKAGES: &[&str] = &[
    "pkg/apis/meta/v1",
    "pkg/runtime",
    "pkg/util/intstr",
    "pkg/api/resource",
];

/// One protobuf-tagged field of a Go struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoField {
    /// The protobuf field number.
    pub tag: u32,
    /// The JSON name; empty for an inline embedded struct.
    pub json: String,
    /// Whether the Go type is a pointer.
    pub pointer: bool,
    /// Whether the JSON tag has `omitempty`.
    pub omitempty: bool,
    /// Whether the field is an embedded struct whose fields JSON inlines (`json:",inline"`).
    pub inline: bool,
}

/// The facts per OpenAPI definition name (`io.k8s.api.apps.v1.DeploymentSpec`).
pub type Facts = BTreeMap<String, Vec<GoField>>;

/// Reads the Go structs of the packages the kept definition prefixes name (`io.k8s.api.apps.v1.`
/// → `<api>/apps/v1`, `io.k8s.apimachinery.` → the apimachinery packages) and renders the
/// facts file.
pub fn extract(api: &Path, apimachinery: &Path, prefixes: &[&str]) -> Result<String> {
    let mut facts = Facts::new();
    for prefix in prefixes {
        if *prefix == "io.k8s.apimachinery." {
            for package in APIMACHINERY_PACKAGES {
                let definition_prefix =
                    format!("io.k8s.apimachinery.{}", package.replace('/', "."));
                read_package(&apimachinery.join(package), &definition_prefix, &mut facts)?;
            }
        } else {
            let package = prefix
                .strip_prefix("io.k8s.api.")
                .and_then(|p| p.strip_suffix('.'))
                .ok_or_else(|| anyhow!("unexpected definition prefix {prefix:?}"))?;
            let definition_prefix = format!("io.k8s.api.{package}");
            read_package(
                &api.join(package.replace('.', "/")),
                &definition_prefix,
                &mut facts,
            )?;
        }
    }
    ensure!(
        facts.len() > 100,
        "found only {} Go structs with protobuf tags: are the directories checkouts of k8s.io/api and k8s.io/apimachinery?",
        facts.len()
    );
    Ok(render(&facts))
}

/// Parses the committed facts file.
pub fn parse(text: &str) -> Result<Facts> {
    let root: Value = serde_json::from_str(text).context("parsing the Go facts file")?;
    let structs = root
        .get("structs")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("the Go facts file has no `structs` object"))?;
    let mut facts = Facts::new();
    for (name, fields) in structs {
        let fields = fields
            .as_array()
            .ok_or_else(|| anyhow!("{name}: fields must be an array"))?;
        let mut parsed = Vec::new();
        for field in fields {
            let flag = |key: &str| field.get(key).and_then(Value::as_bool).unwrap_or(false);
            let tag = field
                .get("tag")
                .and_then(Value::as_u64)
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| anyhow!("{name}: a field without a valid tag"))?;
            parsed.push(GoField {
                tag,
                json: field
                    .get("json")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                pointer: flag("pointer"),
                omitempty: flag("omitempty"),
                inline: flag("inline"),
            });
        }
        facts.insert(name.clone(), parsed);
    }
    Ok(facts)
}

/// Adds the protobuf-tagged structs of one Go package directory.
fn read_package(dir: &Path, definition_prefix: &str, facts: &mut Facts) -> Result<()> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            name.ends_with(".go")
                && !name.ends_with("_test.go")
                && !name.contains("generated")
                && !name.starts_with("zz_")
        })
        .collect();
    files.sort();
    for file in files {
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        for (name, fields) in
            structs(&text).with_context(|| format!("parsing {}", file.display()))?
        {
            if !fields.is_empty() {
                facts.insert(format!("{definition_prefix}.{name}"), fields);
            }
        }
    }
    Ok(())
}

/// The structs of one Go file with their protobuf-tagged fields.
fn structs(text: &str) -> Result<Vec<(String, Vec<GoField>)>> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<GoField>)> = None;
    for (number, line) in text.lines().enumerate() {
        let at = || format!("line {}", number + 1);
        if let Some((name, fields)) = current.as_mut() {
            if line == "}" {
                out.extend(current.take());
                continue;
            }
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with("//") {
                continue;
            }
            ensure!(
                !trimmed.contains("struct {"),
                "{}: nested struct in {name} is not supported",
                at()
            );
            if let Some(field) = field(trimmed).with_context(|| format!("{}: {name}", at()))? {
                fields.push(field);
            }
        } else if let Some(name) = line
            .strip_prefix("type ")
            .and_then(|rest| rest.strip_suffix(" struct {"))
        {
            current = Some((name.trim().to_string(), Vec::new()));
        }
    }
    ensure!(current.is_none(), "unterminated struct");
    Ok(out)
}

/// One field line (`Name Type \`json:"…" protobuf:"…"\``), or `None` when it has no
/// protobuf tag.
fn field(line: &str) -> Result<Option<GoField>> {
    let Some((decl, rest)) = line.split_once('`') else {
        return Ok(None);
    };
    let tags = rest
        .split_once('`')
        .map(|(tags, _)| tags)
        .ok_or_else(|| anyhow!("unterminated struct tag in {line:?}"))?;
    let Some(protobuf) = tag_value(tags, "protobuf") else {
        return Ok(None);
    };
    if protobuf == "-" {
        return Ok(None);
    }
    let tag: u32 = protobuf
        .split(',')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("no field number in protobuf tag {protobuf:?}"))?;
    let tokens: Vec<&str> = decl.split_whitespace().collect();
    let go_type = match tokens.as_slice() {
        [_, ty] => *ty,
        [ty] => *ty,
        _ => bail!("unexpected field declaration {decl:?}"),
    };
    let json = tag_value(tags, "json").unwrap_or_default();
    let mut parts = json.split(',');
    let json_name = parts.next().unwrap_or_default().to_string();
    let options: Vec<&str> = parts.collect();
    let inline = options.contains(&"inline");
    ensure!(
        !inline || json_name.is_empty(),
        "inline field with a JSON name in {line:?}"
    );
    // Fields without a JSON name (`json:"-"`, or no tag) belong to types with a JSON form of
    // their own (`Time`, `RawExtension`, `IntOrString`); they are kept with an empty name.
    let json_name = if json_name == "-" {
        String::new()
    } else {
        json_name
    };
    Ok(Some(GoField {
        tag,
        json: json_name,
        pointer: go_type.starts_with('*'),
        omitempty: options.contains(&"omitempty"),
        inline,
    }))
}

/// The value of `key:"value"` in a Go struct tag.
fn tag_value<'a>(tags: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("{key}:\"");
    let start = tags.find(&needle)? + needle.len();
    let end = tags[start..].find('"')?;
    Some(&tags[start..start + end])
}

/// The facts file's text: one line per field, so that diffs stay readable.
fn render(facts: &Facts) -> String {
    let mut structs = Map::new();
    for (name, fields) in facts {
        let fields = fields
            .iter()
            .map(|f| {
                let mut field = Map::new();
                field.insert("tag".into(), json!(f.tag));
                if f.inline {
                    field.insert("inline".into(), json!(true));
                } else {
                    field.insert("json".into(), json!(f.json));
                }
                if f.pointer {
                    field.insert("pointer".into(), json!(true));
                }
                if f.omitempty {
                    field.insert("omitempty".into(), json!(true));
                }
                Value::Object(field)
            })
            .collect();
        structs.insert(name.clone(), Value::Array(fields));
    }
    let root = json!({
        "structs": structs,
        "x-tug-source": {
            "generator": "cargo xtask codegen --go-api DIR --go-apimachinery DIR (do not edit by hand)",
            "k8s.io/api": GO_TAG,
            "k8s.io/apimachinery": GO_TAG,
        },
    });
    crate::codegen::render_json(&root, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_omitempty_and_inline_fields_are_recognised() {
        let source = "package v1\n\ntype Thing struct {\n\tmetav1.TypeMeta `json:\",inline\"`\n\t// +optional\n\tReplicas *int32 `json:\"replicas,omitempty\" protobuf:\"varint,1,opt,name=replicas\"`\n\tSelector *metav1.LabelSelector `json:\"selector\" protobuf:\"bytes,2,opt,name=selector\"`\n\tVolumeSource `json:\",inline\" protobuf:\"bytes,3,opt,name=volumeSource\"`\n\tName string `json:\"name\" protobuf:\"bytes,4,opt,name=name\"`\n\tInternal string `json:\"-\"`\n}\n\ntype Empty struct{}\n";
        let parsed = structs(source).expect("parses");
        assert_eq!(parsed.len(), 1);
        let (name, fields) = &parsed[0];
        assert_eq!(name, "Thing");
        let summary: Vec<(u32, &str, bool, bool, bool)> = fields
            .iter()
            .map(|f| (f.tag, f.json.as_str(), f.pointer, f.omitempty, f.inline))
            .collect();
        assert_eq!(
            summary,
            [
                (1, "replicas", true, true, false),
                (2, "selector", true, false, false),
                (3, "", false, false, true),
                (4, "name", false, false, false),
            ]
        );
        let mut facts = Facts::new();
        facts.insert("io.k8s.api.core.v1.Thing".into(), fields.clone());
        assert_eq!(parse(&render(&facts)).expect("round trips"), facts);
    }
}
