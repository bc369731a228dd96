//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` renders, with
//! upstream's columns and cell contents for every built-in kind.
//!
//! Upstream registers one printer per kind (column definitions plus a function from an object to
//! a row); kinds without one get the default table of `Name` and `Created At`. The server always
//! prints the wide form, so rows carry every column: kubectl hides the priority-1 columns itself
//! unless asked for `-o wide`.
//!
//! Everything here is pure: the current time comes in through [`TableOptions::now`], and an
//! object that cannot be read as its kind gets a placeholder row instead of failing the table.

mod apps;
mod autoscaling;
mod batch;
mod cluster;
mod core_group;
mod descriptions;
pub mod duration;
mod event;
mod format;
mod networking;
mod pod;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::Gvk;
use descriptions::Doc;

/// The `apiVersion` of the tables built here.
const TABLE_API_VERSION: &str = "meta.k8s.io/v1";

/// What each row's `object` field carries: the `includeObject` parameter of a table request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object (`null`).
    None,
    /// A `PartialObjectMetadata` holding the object's metadata: upstream's default.
    #[default]
    Metadata,
    /// The whole object, as the request's version serves it.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter; the empty string means the default, [`IncludeObject::Metadata`].
    /// `None` for any other spelling, which upstream answers with `400 BadRequest`
    /// (`unrecognized includeObject value: "…"`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "None" => Some(Self::None),
            "" | "Metadata" => Some(Self::Metadata),
            "Object" => Some(Self::Object),
            _ => None,
        }
    }
}

/// How to build a table.
#[derive(Debug, Clone, Copy)]
pub struct TableOptions {
    /// What each row's `object` carries.
    pub include_object: IncludeObject,
    /// Leaves out the column definitions (`columnDefinitions: null`), as the `noHeaders`
    /// table option does.
    pub no_headers: bool,
    /// The current time, from which ages (`5m3s`) and `(10s ago)` are computed.
    pub now: Timestamp,
}

/// The response being turned into a table.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// One object (a get, or one watch event): the table's `resourceVersion` is the object's.
    Object(&'a Value),
    /// A whole list object (`{"metadata": {...}, "items": [...]}`): the table takes the list's
    /// `resourceVersion`, `continue` and `remainingItemCount`.
    List(&'a Value),
}

/// Builds the `meta.k8s.io/v1` `Table` for objects of kind `gvk`: upstream's printer columns
/// when the kind has them, else the default `Name` / `Created At` table.
///
/// `gvk` is the kind of the objects (not of their list). Objects are read as the version their
/// own `apiVersion` names when a kind is served in several (events, horizontal pod autoscalers),
/// so a stored version may be passed as well as the served one. With
/// [`IncludeObject::Object`] the objects are embedded as given, so pass them in the version the
/// request asked for.
pub fn table(gvk: Gvk<'_>, input: Input<'_>, options: &TableOptions) -> Value {
    let (items, list_meta): (&[Value], Option<&Value>) = match input {
        Input::Object(object) => (std::slice::from_ref(object), None),
        Input::List(list) => (
            list.get("items")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice),
            Some(list.get("metadata").unwrap_or(&Value::Null)),
        ),
    };
    let cx = Ctx {
        now: options.now,
        gvk,
    };
    let printer = printer_for(gvk);
    let columns = printer.map_or(DEFAULT_COLUMNS, |p| p.columns);
    let rows: Vec<Value> = items
        .iter()
        .map(|object| {
            let row = match printer {
                Some(p) => {
                    (p.print)(object, &cx).unwrap_or_else(|_| placeholder_row(columns, object, &cx))
                }
                None => default_row(object),
            };
            row.into_json(embedded_object(gvk, object, options.include_object))
        })
        .collect();
    // The default convertor appends to a nil slice, so an empty list encodes as `null` there;
    // the printers allocate theirs and encode `[]`.
    let rows = if rows.is_empty() && printer.is_none() {
        Value::Null
    } else {
        Value::Array(rows)
    };
    let column_definitions = if options.no_headers {
        Value::Null
    } else {
        Value::Array(columns.iter().copied().map(Column::to_json).collect())
    };
    json!({
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": table_metadata(items, list_meta),
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

/// The table's `ListMeta`: the list's paging fields, or the single object's `resourceVersion`.
fn table_metadata(items: &[Value], list_meta: Option<&Value>) -> Value {
    let mut out = Map::new();
    match list_meta {
        Some(meta) => {
            for key in ["resourceVersion", "continue"] {
                if let Some(v) = meta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    out.insert(key.to_owned(), Value::from(v));
                }
            }
            if let Some(n) = meta.get("remainingItemCount").and_then(Value::as_i64) {
                out.insert("remainingItemCount".to_owned(), Value::from(n));
            }
        }
        None => {
            let rv = items
                .first()
                .and_then(|o| o.pointer("/metadata/resourceVersion"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            if let Some(rv) = rv {
                out.insert("resourceVersion".to_owned(), Value::from(rv));
            }
        }
    }
    Value::Object(out)
}

/// A row's `object` per `includeObject`.
fn embedded_object(gvk: Gvk<'_>, object: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": TABLE_API_VERSION,
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => {
            // Upstream converts each row's object to the request's version, which stamps its
            // kind and apiVersion even on the items of a list.
            let mut object = object.clone();
            if let Some(map) = object.as_object_mut() {
                map.entry("kind").or_insert_with(|| Value::from(gvk.kind));
                map.entry("apiVersion")
                    .or_insert_with(|| Value::from(gvk.api_version()));
            }
            object
        }
    }
}

/// The printer registered for a kind, if upstream has one.
fn printer_for(gvk: Gvk<'_>) -> Option<&'static Printer> {
    Some(match (gvk.group, gvk.kind) {
        ("", "Pod") => &pod::POD,
        ("", "PodTemplate") => &pod::POD_TEMPLATE,
        ("", "ReplicationController") => &core_group::REPLICATION_CONTROLLER,
        ("", "Service") => &core_group::SERVICE,
        ("", "Endpoints") => &core_group::ENDPOINTS,
        ("", "Node") => &core_group::NODE,
        ("", "Namespace") => &core_group::NAMESPACE,
        ("", "ConfigMap") => &core_group::CONFIG_MAP,
        ("", "Secret") => &core_group::SECRET,
        ("", "ServiceAccount") => &core_group::SERVICE_ACCOUNT,
        ("", "PersistentVolume") => &core_group::PERSISTENT_VOLUME,
        ("", "PersistentVolumeClaim") => &core_group::PERSISTENT_VOLUME_CLAIM,
        ("", "ResourceQuota") => &core_group::RESOURCE_QUOTA,
        ("", "ComponentStatus") => &core_group::COMPONENT_STATUS,
        ("" | "events.k8s.io", "Event") => &event::EVENT,
        ("apps", "Deployment") => &apps::DEPLOYMENT,
        ("apps", "ReplicaSet") => &apps::REPLICA_SET,
        ("apps", "StatefulSet") => &apps::STATEFUL_SET,
        ("apps", "DaemonSet") => &apps::DAEMON_SET,
        ("apps", "ControllerRevision") => &apps::CONTROLLER_REVISION,
        ("batch", "Job") => &batch::JOB,
        ("batch", "CronJob") => &batch::CRON_JOB,
        ("autoscaling", "HorizontalPodAutoscaler") => &autoscaling::HORIZONTAL_POD_AUTOSCALER,
        ("autoscaling", "Scale") => &autoscaling::SCALE,
        ("networking.k8s.io", "Ingress") => &networking::INGRESS,
        ("networking.k8s.io", "IngressClass") => &networking::INGRESS_CLASS,
        ("networking.k8s.io", "NetworkPolicy") => &networking::NETWORK_POLICY,
        ("discovery.k8s.io", "EndpointSlice") => &networking::ENDPOINT_SLICE,
        ("coordination.k8s.io", "Lease") => &cluster::LEASE,
        ("rbac.authorization.k8s.io", "RoleBinding") => &cluster::ROLE_BINDING,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &cluster::CLUSTER_ROLE_BINDING,
        ("policy", "PodDisruptionBudget") => &cluster::POD_DISRUPTION_BUDGET,
        ("storage.k8s.io", "StorageClass") => &cluster::STORAGE_CLASS,
        ("scheduling.k8s.io", "PriorityClass") => &cluster::PRIORITY_CLASS,
        _ => return None,
    })
}

/// What a printer sees besides the object.
#[derive(Debug, Clone, Copy)]
struct Ctx<'a> {
    now: Timestamp,
    /// The kind being printed.
    gvk: Gvk<'a>,
}

impl Ctx<'_> {
    /// The version an object is written in: its own `apiVersion`, else the printed kind's
    /// (list items may leave theirs out).
    fn api_version(&self, object: &Value) -> String {
        object
            .get("apiVersion")
            .and_then(Value::as_str)
            .map_or_else(|| self.gvk.api_version(), str::to_owned)
    }
}

/// One kind's printer: its columns and the function from an object to a row.
#[derive(Debug)]
struct Printer {
    columns: &'static [Column],
    /// Fails only when the object cannot be read as the kind.
    print: fn(&Value, &Ctx<'_>) -> Result<Row, serde_json::Error>,
}

/// A `TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Column {
    name: &'static str,
    /// The OpenAPI type of the cells: `string`, `integer`, `boolean`, `date`.
    kind: &'static str,
    /// `name` for the column holding the object's name, else empty.
    format: &'static str,
    /// Where the column's description comes from.
    description: Doc,
    /// 0 for the default columns, 1 for those kubectl shows only with `-o wide`.
    priority: u8,
}

impl Column {
    /// A string column.
    const fn string(name: &'static str, description: Doc) -> Self {
        Column {
            name,
            kind: "string",
            format: "",
            description,
            priority: 0,
        }
    }

    /// An integer column.
    const fn integer(name: &'static str, description: Doc) -> Self {
        Column {
            kind: "integer",
            ..Column::string(name, description)
        }
    }

    /// A boolean column.
    const fn boolean(name: &'static str, description: Doc) -> Self {
        Column {
            kind: "boolean",
            ..Column::string(name, description)
        }
    }

    /// The `Name` column nearly every printer starts with.
    const fn name() -> Self {
        Column {
            format: "name",
            ..Column::string("Name", descriptions::NAME)
        }
    }

    /// The `Age` column.
    const fn age() -> Self {
        Column::string("Age", descriptions::CREATION)
    }

    /// The same column shown only with `-o wide`.
    const fn wide(self) -> Self {
        Column {
            priority: 1,
            ..self
        }
    }

    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description.text(),
            "priority": self.priority,
        })
    }
}

/// A row before its object is attached.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    cells: Vec<Value>,
    /// `TableRowCondition`s (only pods set them, to mark completed rows).
    conditions: Vec<Value>,
}

impl Row {
    fn new(cells: Vec<Value>) -> Self {
        Row {
            cells,
            conditions: Vec::new(),
        }
    }

    fn into_json(self, object: Value) -> Value {
        let mut row = Map::new();
        row.insert("cells".to_owned(), Value::Array(self.cells));
        if !self.conditions.is_empty() {
            row.insert("conditions".to_owned(), Value::Array(self.conditions));
        }
        row.insert("object".to_owned(), object);
        Value::Object(row)
    }
}

/// Cells from values of mixed types: strings, integers and booleans as upstream types them.
macro_rules! cells {
    ($($cell:expr),* $(,)?) => {
        vec![$(::serde_json::Value::from($cell)),*]
    };
}
use cells;

/// Reads an object as a k8s-openapi type. The types fill missing required fields with zero
/// values, as upstream's decoding does, so this fails only on values of the wrong shape.
fn decode<'a, T: serde::Deserialize<'a>>(object: &'a Value) -> Result<T, serde_json::Error> {
    T::deserialize(object)
}

/// The columns of the default table.
const DEFAULT_COLUMNS: &[Column] = &[
    Column::name(),
    Column {
        kind: "date",
        ..Column::string("Created At", descriptions::CREATION)
    },
];

/// A default-table row: the name and the creation time in RFC 3339 (UTC, whole seconds; an
/// unset time prints as Go's zero time).
fn default_row(object: &Value) -> Row {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let created = object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok());
    Row::new(cells![name, format::rfc3339(created)])
}

/// The row of an object its printer could not read: its name and age where the columns have
/// them, `<unknown>` elsewhere, so that one odd object does not fail a whole list.
fn placeholder_row(columns: &[Column], object: &Value, cx: &Ctx<'_>) -> Row {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let created = object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok());
    Row::new(
        columns
            .iter()
            .map(|c| match (c.format, c.name) {
                ("name", _) => Value::from(name),
                (_, "Age") => Value::from(format::since(cx.now, created)),
                _ => Value::from("<unknown>"),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        test_support::NOW.parse().expect("valid time")
    }

    fn options(include_object: IncludeObject) -> TableOptions {
        TableOptions {
            include_object,
            no_headers: false,
            now: now(),
        }
    }

    /// One column as `(name, type, format, priority)`.
    type ColumnShape = (&'static str, &'static str, &'static str, u8);

    /// Checks a kind's column definitions against upstream's names, types, formats and
    /// priorities.
    fn check_columns(gvk: Gvk<'_>, expected: &[ColumnShape]) {
        let columns = printer_for(gvk).map_or(DEFAULT_COLUMNS, |p| p.columns);
        let got: Vec<ColumnShape> = columns
            .iter()
            .map(|c| (c.name, c.kind, c.format, c.priority))
            .collect();
        assert_eq!(got, expected, "columns of {gvk}");
        assert!(
            columns.iter().all(|c| !c.description.text().is_empty()),
            "descriptions of {gvk}"
        );
    }

    const NAME: ColumnShape = ("Name", "string", "name", 0);
    const AGE: ColumnShape = ("Age", "string", "", 0);
    const fn s(name: &'static str) -> ColumnShape {
        (name, "string", "", 0)
    }
    const fn i(name: &'static str) -> ColumnShape {
        (name, "integer", "", 0)
    }
    const fn w(name: &'static str) -> ColumnShape {
        (name, "string", "", 1)
    }
    const CONTAINERS_IMAGES: [ColumnShape; 2] = [w("Containers"), w("Images")];

    #[test]
    fn column_definitions_match_upstream_for_every_printed_kind() {
        let g = Gvk::new;
        check_columns(
            g("", "v1", "Pod"),
            &[
                NAME,
                s("Ready"),
                s("Status"),
                s("Restarts"),
                AGE,
                w("IP"),
                w("Node"),
                w("Nominated Node"),
                w("Readiness Gates"),
            ],
        );
        check_columns(
            g("", "v1", "PodTemplate"),
            &[NAME, s("Containers"), s("Images"), s("Pod Labels")],
        );
        let [c, im] = CONTAINERS_IMAGES;
        check_columns(
            g("", "v1", "ReplicationController"),
            &[
                NAME,
                i("Desired"),
                i("Current"),
                i("Ready"),
                AGE,
                c,
                im,
                w("Selector"),
            ],
        );
        check_columns(
            g("apps", "v1", "ReplicaSet"),
            &[
                NAME,
                i("Desired"),
                i("Current"),
                i("Ready"),
                AGE,
                c,
                im,
                w("Selector"),
            ],
        );
        check_columns(
            g("apps", "v1", "Deployment"),
            &[
                NAME,
                s("Ready"),
                s("Up-to-date"),
                s("Available"),
                AGE,
                c,
                im,
                w("Selector"),
            ],
        );
        check_columns(
            g("apps", "v1", "StatefulSet"),
            &[NAME, s("Ready"), AGE, c, im],
        );
        check_columns(
            g("apps", "v1", "DaemonSet"),
            &[
                NAME,
                i("Desired"),
                i("Current"),
                i("Ready"),
                i("Up-to-date"),
                i("Available"),
                s("Node Selector"),
                AGE,
                c,
                im,
                w("Selector"),
            ],
        );
        check_columns(
            g("apps", "v1", "ControllerRevision"),
            &[NAME, s("Controller"), s("Revision"), AGE],
        );
        check_columns(
            g("batch", "v1", "Job"),
            &[
                NAME,
                s("Status"),
                s("Completions"),
                s("Duration"),
                AGE,
                c,
                im,
                w("Selector"),
            ],
        );
        check_columns(
            g("batch", "v1", "CronJob"),
            &[
                NAME,
                s("Schedule"),
                s("Timezone"),
                ("Suspend", "boolean", "", 0),
                i("Active"),
                s("Last Schedule"),
                AGE,
                c,
                im,
                w("Selector"),
            ],
        );
        check_columns(
            g("", "v1", "Service"),
            &[
                NAME,
                s("Type"),
                s("Cluster-IP"),
                s("External-IP"),
                s("Port(s)"),
                AGE,
                w("Selector"),
            ],
        );
        check_columns(
            g("networking.k8s.io", "v1", "Ingress"),
            &[NAME, s("Class"), s("Hosts"), s("Address"), s("Ports"), AGE],
        );
        check_columns(
            g("networking.k8s.io", "v1", "IngressClass"),
            &[NAME, s("Controller"), s("Parameters"), AGE],
        );
        check_columns(
            g("networking.k8s.io", "v1", "NetworkPolicy"),
            &[NAME, s("Pod-Selector"), AGE],
        );
        check_columns(g("", "v1", "Endpoints"), &[NAME, s("Endpoints"), AGE]);
        check_columns(
            g("discovery.k8s.io", "v1", "EndpointSlice"),
            &[NAME, s("AddressType"), s("Ports"), s("Endpoints"), AGE],
        );
        check_columns(
            g("", "v1", "Node"),
            &[
                NAME,
                s("Status"),
                s("Roles"),
                AGE,
                s("Version"),
                w("Internal-IP"),
                w("External-IP"),
                w("OS-Image"),
                w("Kernel-Version"),
                w("Container-Runtime"),
            ],
        );
        let event_columns = [
            s("Last Seen"),
            s("Type"),
            s("Reason"),
            s("Object"),
            w("Subobject"),
            w("Source"),
            s("Message"),
            w("First Seen"),
            w("Count"),
            ("Name", "string", "name", 1),
        ];
        check_columns(g("", "v1", "Event"), &event_columns);
        check_columns(g("events.k8s.io", "v1", "Event"), &event_columns);
        check_columns(g("", "v1", "Namespace"), &[NAME, s("Status"), AGE]);
        check_columns(g("", "v1", "Secret"), &[NAME, s("Type"), s("Data"), AGE]);
        check_columns(g("", "v1", "ConfigMap"), &[NAME, s("Data"), AGE]);
        check_columns(g("", "v1", "ServiceAccount"), &[NAME, s("Secrets"), AGE]);
        check_columns(
            g("", "v1", "PersistentVolume"),
            &[
                NAME,
                s("Capacity"),
                s("Access Modes"),
                s("Reclaim Policy"),
                s("Status"),
                s("Claim"),
                s("StorageClass"),
                s("VolumeAttributesClass"),
                s("Reason"),
                AGE,
                w("VolumeMode"),
            ],
        );
        check_columns(
            g("", "v1", "PersistentVolumeClaim"),
            &[
                NAME,
                s("Status"),
                s("Volume"),
                s("Capacity"),
                s("Access Modes"),
                s("StorageClass"),
                s("VolumeAttributesClass"),
                AGE,
                w("VolumeMode"),
            ],
        );
        check_columns(
            g("", "v1", "ResourceQuota"),
            &[NAME, s("Request"), s("Limit"), AGE],
        );
        check_columns(
            g("", "v1", "ComponentStatus"),
            &[NAME, s("Status"), s("Message"), s("Error")],
        );
        let hpa_columns = [
            NAME,
            s("Reference"),
            s("Targets"),
            s("MinPods"),
            s("MaxPods"),
            s("Replicas"),
            AGE,
        ];
        check_columns(
            g("autoscaling", "v2", "HorizontalPodAutoscaler"),
            &hpa_columns,
        );
        check_columns(
            g("autoscaling", "v1", "HorizontalPodAutoscaler"),
            &hpa_columns,
        );
        check_columns(
            g("autoscaling", "v1", "Scale"),
            &[("Name", "string", "", 0), i("Desired"), i("Available"), AGE],
        );
        check_columns(
            g("policy", "v1", "PodDisruptionBudget"),
            &[
                NAME,
                s("Min Available"),
                s("Max Unavailable"),
                i("Allowed Disruptions"),
                AGE,
            ],
        );
        check_columns(
            g("coordination.k8s.io", "v1", "Lease"),
            &[NAME, s("Holder"), AGE],
        );
        for kind in ["RoleBinding", "ClusterRoleBinding"] {
            check_columns(
                g("rbac.authorization.k8s.io", "v1", kind),
                &[
                    NAME,
                    s("Role"),
                    AGE,
                    w("Users"),
                    w("Groups"),
                    w("ServiceAccounts"),
                ],
            );
        }
        check_columns(
            g("storage.k8s.io", "v1", "StorageClass"),
            &[
                NAME,
                s("Provisioner"),
                s("ReclaimPolicy"),
                s("VolumeBindingMode"),
                s("AllowVolumeExpansion"),
                AGE,
            ],
        );
        check_columns(
            g("scheduling.k8s.io", "v1", "PriorityClass"),
            &[
                NAME,
                i("Value"),
                ("Global-Default", "boolean", "", 0),
                AGE,
                s("PreemptionPolicy"),
            ],
        );
    }

    #[test]
    fn kinds_without_a_printer_get_name_and_created_at() {
        let created_at = ("Created At", "date", "", 0);
        for (group, kind) in [
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("", "LimitRange"),
        ] {
            check_columns(Gvk::new(group, "v1", kind), &[NAME, created_at]);
        }
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "reader", "namespace": "default", "resourceVersion": "42",
                         "creationTimestamp": "2024-03-01T10:20:30Z"},
        });
        let gvk = Gvk::new("rbac.authorization.k8s.io", "v1", "Role");
        let t = table(gvk, Input::Object(&role), &options(IncludeObject::None));
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["reader", "2024-03-01T10:20:30Z"])
        );
        assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
        let definitions = &t["columnDefinitions"];
        assert_eq!(definitions[1]["description"], descriptions::CREATION.text());
        // Fractional seconds are dropped and a missing time prints as Go's zero time.
        let limits = json!({"metadata": {"name": "limits"}});
        let t = table(
            Gvk::new("", "v1", "LimitRange"),
            Input::Object(&limits),
            &options(IncludeObject::None),
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["limits", "0001-01-01T00:00:00Z"])
        );
    }

    #[test]
    fn tables_have_upstreams_envelope_and_column_definition_fields() {
        let ns = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "default", "resourceVersion": "7",
                         "creationTimestamp": "2025-01-01T11:00:00Z"},
            "status": {"phase": "Active"},
        });
        let t = table(
            Gvk::new("", "v1", "Namespace"),
            Input::Object(&ns),
            &options(IncludeObject::None),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({"resourceVersion": "7"}));
        assert_eq!(
            t["columnDefinitions"][0],
            json!({"name": "Name", "type": "string", "format": "name",
                   "description": descriptions::NAME.text(), "priority": 0}),
        );
        assert_eq!(
            t["rows"],
            json!([{"cells": ["default", "Active", "60m"], "object": null}]),
        );
    }

    #[test]
    fn include_object_metadata_embeds_partial_object_metadata() {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "ns", "labels": {"a": "b"}},
            "data": {"k": "v"},
        });
        let t = table(
            Gvk::new("", "v1", "ConfigMap"),
            Input::Object(&cm),
            &options(IncludeObject::Metadata),
        );
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": {"name": "cfg", "namespace": "ns", "labels": {"a": "b"}}}),
        );
        assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
        assert_eq!(IncludeObject::parse("metadata"), None);
    }

    #[test]
    fn include_object_object_embeds_list_items_with_their_kind() {
        let list = json!({
            "apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "99", "continue": "abc", "remainingItemCount": 3},
            "items": [{"metadata": {"name": "one"}, "data": {"a": "1", "b": "2"}}],
        });
        let t = table(
            Gvk::new("", "v1", "ConfigMap"),
            Input::List(&list),
            &options(IncludeObject::Object),
        );
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "99", "continue": "abc", "remainingItemCount": 3}),
        );
        assert_eq!(t["rows"][0]["cells"], json!(["one", 2, "<unknown>"]));
        assert_eq!(
            t["rows"][0]["object"],
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "one"}, "data": {"a": "1", "b": "2"}}),
        );
    }

    #[test]
    fn empty_lists_encode_rows_as_upstream_does() {
        let list = json!({"metadata": {"resourceVersion": "5"}, "items": []});
        let opts = options(IncludeObject::Metadata);
        let printed = table(Gvk::new("", "v1", "Pod"), Input::List(&list), &opts);
        assert_eq!(printed["rows"], json!([]));
        let default = table(Gvk::new("", "v1", "LimitRange"), Input::List(&list), &opts);
        assert_eq!(default["rows"], Value::Null);
        assert_eq!(default["metadata"], json!({"resourceVersion": "5"}));
    }

    #[test]
    fn no_headers_leaves_out_column_definitions() {
        let list = json!({"metadata": {}, "items": []});
        let opts = TableOptions {
            no_headers: true,
            ..options(IncludeObject::None)
        };
        let t = table(Gvk::new("", "v1", "Pod"), Input::List(&list), &opts);
        assert_eq!(t["columnDefinitions"], Value::Null);
        assert_eq!(t["metadata"], json!({}));
    }

    #[test]
    fn an_unreadable_object_gets_a_placeholder_row_without_failing_the_list() {
        let list = json!({"metadata": {}, "items": [
            {"metadata": {"name": "bad", "creationTimestamp": "2025-01-01T11:59:00Z"},
             "spec": {"containers": "not-a-list"}},
            {"metadata": {"name": "good"}, "spec": {"containers": [{"name": "c"}]},
             "status": {"phase": "Pending"}},
        ]});
        let t = table(
            Gvk::new("", "v1", "Pod"),
            Input::List(&list),
            &options(IncludeObject::None),
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "bad",
                "<unknown>",
                "<unknown>",
                "<unknown>",
                "60s",
                "<unknown>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]),
        );
        assert_eq!(t["rows"][1]["cells"][2], "Pending");
    }
}

/// Helpers shared by the printers' tests.
#[cfg(test)]
mod test_support {
    use super::*;

    /// The fixed "now" of every printer test.
    pub(super) const NOW: &str = "2025-01-01T12:00:00Z";

    /// Prints one object given as YAML and returns its row's cells (all columns: the server
    /// always prints wide) and conditions.
    pub(super) fn print(gvk: Gvk<'_>, yaml: &str) -> (Value, Value) {
        let object: Value = serde_norway::from_str(yaml).expect("fixture is valid YAML");
        let options = TableOptions {
            include_object: IncludeObject::None,
            no_headers: false,
            now: NOW.parse().expect("valid time"),
        };
        let t = table(gvk, Input::Object(&object), &options);
        let row = &t["rows"][0];
        let columns = t["columnDefinitions"].as_array().map_or(0, Vec::len);
        assert_eq!(
            row["cells"].as_array().map(Vec::len),
            Some(columns),
            "one cell per column"
        );
        (
            row["cells"].clone(),
            row.get("conditions").cloned().unwrap_or(Value::Null),
        )
    }
}
