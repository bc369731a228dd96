//! Pod, pod spec and pod template validation: upstream's `ValidatePodSpec`,
//! `ValidatePodTemplateSpec`, `ValidatePodCreate` and `ValidatePodUpdate`, on JSON.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;
use tug_apimachinery::Quantity;
use tug_apimachinery::validation::{self as v, BadValue, ErrorList, FieldError, Path};

use super::meta::{self, NameRule};
use super::util::{
    IntOrStr, arr, at, bool_of, dns1123_label, get, int_of, labels, map_of, msgs, nonnegative,
    qualified_name, s, semantic_eq, sorted, str_map, str_of,
};

const FILE_MODE_ERROR_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const SUPPORTED_PORT_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// The volume sources upstream knows, in the order `validateVolumeSource` checks them.
const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// A Pod on create: upstream's `ValidatePodCreate`.
pub(crate) fn validate_pod(obj: &Value) -> ErrorList {
    let spec_path = Path::new("spec");
    let mut errs = pod_metadata_and_spec(obj);
    let spec = get(obj, "spec").unwrap_or(&Value::Null);
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !s(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(FieldError::forbidden(
            &spec_path.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

fn pod_metadata_and_spec(obj: &Value) -> ErrorList {
    let spec_path = Path::new("spec");
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    let spec = get(obj, "spec").unwrap_or(&Value::Null);
    errs.append(validate_pod_spec(spec, get(obj, "metadata"), &spec_path));
    if s(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in arr(spec, "volumes").iter().enumerate() {
            let Some(projected) = get(vol, "projected") else {
                continue;
            };
            for (si, src) in arr(projected, "sources").iter().enumerate() {
                if get(src, "serviceAccountToken").is_some() {
                    errs.push(FieldError::forbidden(
                        &spec_path
                            .child("volumes")
                            .index(vi)
                            .child("projected")
                            .child("sources")
                            .index(si)
                            .child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for key in ["containers", "initContainers"] {
        for (i, c) in arr(spec, key).iter().enumerate() {
            let image = s(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &spec_path.child(key).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// A Pod on update: upstream's `ValidatePodUpdate`.
pub(crate) fn validate_pod_update(new: &Value, old: &Value) -> ErrorList {
    let spec_path = Path::new("spec");
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(pod_metadata_and_spec(new));
    let null = Value::Null;
    let spec = get(new, "spec").unwrap_or(&null);
    let old_spec = get(old, "spec").unwrap_or(&null);

    for key in ["containers", "initContainers"] {
        let (new_c, old_c) = (arr(spec, key), arr(old_spec, key));
        let p = spec_path.child(key);
        if new_c.len() != old_c.len() {
            errs.push(FieldError::forbidden(
                &p,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in new_c.iter().enumerate() {
            let image = s(c, "image");
            if image.is_empty() {
                errs.push(FieldError::required(&p.index(i).child("image"), ""));
            }
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &p.index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    let ads_path = spec_path.child("activeDeadlineSeconds");
    match (
        int_of(spec, "activeDeadlineSeconds"),
        int_of(old_spec, "activeDeadlineSeconds"),
    ) {
        (Some(n), old_ads) => {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(FieldError::invalid(
                    &ads_path,
                    n,
                    v::inclusive_range_error(0, i64::from(i32::MAX)),
                ));
                return errs;
            }
            if old_ads.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    &ads_path,
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &ads_path,
            BadValue::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    errs.append(only_added_tolerations(
        arr(spec, "tolerations"),
        arr(old_spec, "tolerations"),
        &spec_path.child("tolerations"),
    ));
    let old_gates: Vec<String> = arr(old_spec, "schedulingGates")
        .iter()
        .map(|g| s(g, "name").to_owned())
        .collect();
    for g in arr(spec, "schedulingGates") {
        let name = s(g, "name");
        if !old_gates.iter().any(|o| o == name) {
            errs.push(FieldError::forbidden(
                &spec_path.child("schedulingGates"),
                format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }

    if semantic_eq(Some(spec), Some(old_spec)) {
        return errs;
    }
    // Copy the fields an update may change from the new spec onto the old one's values and
    // compare what is left.
    let mut munged = spec.clone();
    for key in ["containers", "initContainers"] {
        if let Some(list) = munged.get_mut(key).and_then(Value::as_array_mut) {
            for (i, c) in list.iter_mut().enumerate() {
                let old_image = arr(old_spec, key)
                    .get(i)
                    .and_then(|o| get(o, "image"))
                    .cloned();
                if let Some(obj) = c.as_object_mut() {
                    match old_image {
                        Some(img) => obj.insert("image".into(), img),
                        None => obj.remove("image"),
                    };
                }
            }
        }
    }
    if let Some(obj) = munged.as_object_mut() {
        for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match get(old_spec, key) {
                Some(v) => obj.insert(key.into(), v.clone()),
                None => obj.remove(key),
            };
        }
        let old_grace = int_of(old_spec, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && int_of(spec, "terminationGracePeriodSeconds") == Some(1)
            && let Some(g) = get(old_spec, "terminationGracePeriodSeconds")
        {
            obj.insert("terminationGracePeriodSeconds".into(), g.clone());
        }
        if !old_gates.is_empty() {
            // Gated pods may gain node selector entries and node affinity.
            let old_sel = str_map(old_spec, "nodeSelector").unwrap_or_default();
            let new_sel = str_map(spec, "nodeSelector").unwrap_or_default();
            if old_sel.iter().all(|(k, v)| new_sel.get(k) == Some(v)) {
                match get(old_spec, "nodeSelector") {
                    Some(v) => obj.insert("nodeSelector".into(), v.clone()),
                    None => obj.remove("nodeSelector"),
                };
            }
        }
    }
    if !semantic_eq(Some(&munged), Some(old_spec)) {
        errs.push(FieldError::forbidden(
            &spec_path,
            format!("{POD_UPDATE_FORBIDDEN}\n{}", spec_diff(old_spec, &munged)),
        ));
    }
    errs
}

/// A short rendering of what differs between two pod specs, in the spirit of upstream's
/// `cmp.Diff` (which prints Go structs and cannot be reproduced byte for byte).
fn spec_diff(old: &Value, new: &Value) -> String {
    let mut lines = vec!["  core.PodSpec{".to_owned()];
    diff_into(old, new, "", &mut lines);
    lines.push("  }".to_owned());
    lines.join("\n")
}

fn diff_into(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    if semantic_eq(Some(old), Some(new)) {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_into(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &p,
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_into(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {
            out.push(format!("- \t{path}: {old}"));
            out.push(format!("+ \t{path}: {new}"));
        }
    }
}

fn only_added_tolerations(new: &[Value], old: &[Value], path: &Path) -> ErrorList {
    for o in old {
        let found = new.iter().any(|n| {
            let mut clone = o.clone();
            if let Some(obj) = clone.as_object_mut() {
                match get(n, "tolerationSeconds") {
                    Some(ts) => obj.insert("tolerationSeconds".into(), ts.clone()),
                    None => obj.remove("tolerationSeconds"),
                };
            }
            semantic_eq(Some(&clone), Some(n))
        });
        if !found {
            return FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )
            .into();
        }
    }
    tolerations(new, path)
}

/// A pod template (`spec.template` of workloads): upstream's `ValidatePodTemplateSpec`.
pub(crate) fn validate_pod_template_spec(tpl: Option<&Value>, path: &Path) -> ErrorList {
    let null = Value::Null;
    let tpl = tpl.unwrap_or(&null);
    let meta = get(tpl, "metadata").unwrap_or(&null);
    let mut errs = labels(meta, "labels", &path.child("labels"));
    if let Some(a) = str_map(meta, "annotations") {
        errs.append(v::validate_annotations(&a, &path.child("annotations")));
    }
    let spec = get(tpl, "spec").unwrap_or(&null);
    errs.append(validate_pod_spec(spec, None, &path.child("spec")));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// A pod spec: upstream's `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(spec: &Value, pod_meta: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if get(spec, "terminationGracePeriodSeconds").is_none() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let (volumes, vol_errs) =
        validate_volumes(arr(spec, "volumes"), pod_meta, &path.child("volumes"));
    errs.append(vol_errs);
    let restart_policy = s(spec, "restartPolicy");
    errs.append(containers(
        arr(spec, "containers"),
        &volumes,
        &path.child("containers"),
    ));
    errs.append(init_containers(
        arr(spec, "initContainers"),
        arr(spec, "containers"),
        &volumes,
        &path.child("initContainers"),
    ));
    if bool_of(spec, "hostNetwork") == Some(true) {
        for key in ["containers", "initContainers"] {
            for (ci, c) in arr(spec, key).iter().enumerate() {
                for (pi, port) in arr(c, "ports").iter().enumerate() {
                    let host = int_of(port, "hostPort").unwrap_or(0);
                    if host != int_of(port, "containerPort").unwrap_or(0) {
                        errs.push(FieldError::invalid(
                            &path
                                .child(key)
                                .index(ci)
                                .child("ports")
                                .index(pi)
                                .child("hostPort"),
                            host,
                            "must match `containerPort` when `hostNetwork` is true",
                        ));
                    }
                }
            }
        }
    }
    errs.append(restart_policy_of(
        restart_policy,
        &path.child("restartPolicy"),
    ));
    let dns = s(spec, "dnsPolicy");
    match dns {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(&path.child("dnsPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            &path.child("dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.append(labels(spec, "nodeSelector", &path.child("nodeSelector")));
    if let Some(sc) = get(spec, "securityContext") {
        errs.append(pod_security_context(sc, &path.child("securityContext")));
    }
    if dns == "None" && get(spec, "dnsConfig").is_none() {
        errs.push(FieldError::required(
            &path.child("dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    let mut gate_names = HashSet::new();
    for (i, gate) in arr(spec, "schedulingGates").iter().enumerate() {
        let name = s(gate, "name");
        errs.append(qualified_name(
            name,
            &path.child("schedulingGates").index(i),
        ));
        if !gate_names.insert(name) {
            errs.push(FieldError::duplicate(
                &path.child("schedulingGates").index(i),
                name,
            ));
        }
    }
    for (key, rule) in [
        ("serviceAccountName", NameRule::Subdomain),
        ("nodeName", NameRule::Subdomain),
        ("priorityClassName", NameRule::Subdomain),
    ] {
        let value = s(spec, key);
        if !value.is_empty() {
            errs.append(msgs(value, &path.child(key), rule.check(value, false)));
        }
    }
    if let Some(n) = int_of(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&n)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            n,
            v::inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for key in ["hostname", "subdomain"] {
        let value = s(spec, key);
        if !value.is_empty() {
            errs.append(dns1123_label(value, &path.child(key)));
        }
    }
    errs.append(tolerations(
        arr(spec, "tolerations"),
        &path.child("tolerations"),
    ));
    if let Some(rc) = str_of(spec, "runtimeClassName") {
        errs.append(msgs(
            rc,
            &path.child("runtimeClassName"),
            v::name_is_dns_subdomain(rc, false),
        ));
    }
    if let Some(pp) = str_of(spec, "preemptionPolicy")
        && pp != "PreemptLowerPriority"
        && pp != "Never"
    {
        errs.push(FieldError::not_supported(
            &path.child("preemptionPolicy"),
            pp,
            &["PreemptLowerPriority", "Never"],
        ));
    }
    if let Some(overhead) = get(spec, "overhead") {
        errs.append(resource_list(overhead, &path.child("overhead"), false));
    }
    if let Some(os) = get(spec, "os") {
        let name = s(os, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&path.child("os").child("name"), ""));
        } else if name != "linux" && name != "windows" {
            errs.push(FieldError::not_supported(
                &path.child("os").child("name"),
                name,
                &["linux", "windows"],
            ));
        }
    }
    errs
}

fn restart_policy_of(policy: &str, path: &Path) -> ErrorList {
    match policy {
        "Always" | "OnFailure" | "Never" => ErrorList::new(),
        "" => FieldError::required(path, "").into(),
        other => FieldError::not_supported(path, other, &["Always", "OnFailure", "Never"]).into(),
    }
}

fn pod_security_context(sc: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(id) = int_of(sc, key) {
            errs.append(msgs_int(id, &path.child(key), v::is_valid_user_id(id)));
        }
    }
    for (i, g) in arr(sc, "supplementalGroups").iter().enumerate() {
        if let Some(id) = g.as_i64() {
            errs.append(msgs_int(
                id,
                &path.child("supplementalGroups").index(i),
                v::is_valid_group_id(id),
            ));
        }
    }
    if let Some(p) = str_of(sc, "fsGroupChangePolicy")
        && p != "OnRootMismatch"
        && p != "Always"
    {
        errs.push(FieldError::not_supported(
            &path.child("fsGroupChangePolicy"),
            p,
            &["OnRootMismatch", "Always"],
        ));
    }
    for (i, sysctl) in arr(sc, "sysctls").iter().enumerate() {
        let name = s(sysctl, "name");
        if name.is_empty() {
            errs.push(FieldError::required(
                &path.child("sysctls").index(i).child("name"),
                "",
            ));
        }
    }
    errs
}

fn msgs_int(value: i64, path: &Path, messages: Vec<String>) -> ErrorList {
    messages
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `ValidateTolerations`.
pub(crate) fn tolerations(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in list.iter().enumerate() {
        let p = path.index(i);
        let key = s(t, "key");
        let op = s(t, "operator");
        let effect = s(t, "effect");
        if !key.is_empty() {
            errs.append(v::validate_label_name(key, &p.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let value = s(t, "value");
                let problems = v::is_valid_label_value(value);
                if !problems.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        problems.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !s(t, "value").is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        BadValue::from(t),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.append(taint_effect(effect, &p.child("effect")));
        }
    }
    errs
}

/// `validateTaintEffect` for a non-empty effect.
pub(crate) fn taint_effect(effect: &str, path: &Path) -> ErrorList {
    match effect {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => ErrorList::new(),
        other => FieldError::not_supported(
            path,
            other,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        )
        .into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Volumes.

/// `ValidateVolumes`: returns the names of the valid volumes with their source kind.
fn validate_volumes(
    volumes: &[Value],
    pod_meta: Option<&Value>,
    path: &Path,
) -> (BTreeMap<String, String>, ErrorList) {
    let _ = pod_meta;
    let mut errs = ErrorList::new();
    let mut names = BTreeMap::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name = s(vol, "name");
        let (kind, mut el) = volume_source(vol, &p);
        if name.is_empty() {
            el.push(FieldError::required(&p.child("name"), ""));
        } else {
            el.append(dns1123_label(name, &p.child("name")));
        }
        if names.contains_key(name) {
            el.push(FieldError::duplicate(&p.child("name"), name));
        }
        if el.is_empty() {
            names.insert(name.to_owned(), kind.unwrap_or_default().to_owned());
        } else {
            errs.append(el);
        }
    }
    (names, errs)
}

/// `validateVolumeSource` for a pod volume (`path` is the volume's path).
fn volume_source(vol: &Value, path: &Path) -> (Option<&'static str>, ErrorList) {
    let mut errs = ErrorList::new();
    let mut found: Option<&'static str> = None;
    for &kind in VOLUME_SOURCES {
        let Some(src) = get(vol, kind) else {
            continue;
        };
        let p = path.child(kind);
        if found.is_some() {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        found = Some(kind);
        errs.append(one_volume_source(kind, src, &p));
    }
    if found.is_none() {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    (found, errs)
}

fn one_volume_source(kind: &str, src: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match kind {
        "emptyDir" => {
            if let Some(q) = get(src, "sizeLimit").and_then(quantity)
                && q.signum() < 0
            {
                errs.push(FieldError::forbidden(
                    &p.child("sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => {
            let hp = s(src, "path");
            if hp.is_empty() {
                errs.push(FieldError::required(&p.child("path"), ""));
                return errs;
            }
            errs.append(no_backsteps(hp, &p.child("path")));
            if let Some(t) = str_of(src, "type")
                && !HOST_PATH_TYPES.contains(&t)
            {
                errs.push(FieldError::not_supported(
                    &p.child("type"),
                    t,
                    HOST_PATH_TYPES,
                ));
            }
        }
        "secret" => {
            if s(src, "secretName").is_empty() {
                errs.push(FieldError::required(&p.child("secretName"), ""));
            }
            errs.append(file_mode(src, "defaultMode", p));
            errs.append(key_to_paths(src, &p.child("items")));
        }
        "configMap" => {
            if s(src, "name").is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            }
            errs.append(file_mode(src, "defaultMode", p));
            errs.append(key_to_paths(src, &p.child("items")));
        }
        "persistentVolumeClaim" if s(src, "claimName").is_empty() => {
            errs.push(FieldError::required(&p.child("claimName"), ""));
        }
        "nfs" => errs.append(nfs(src, p)),
        "downwardAPI" => {
            errs.append(file_mode(src, "defaultMode", p));
            for (i, item) in arr(src, "items").iter().enumerate() {
                errs.append(downward_api_file(item, &p.child("items").index(i)));
            }
        }
        "projected" => errs.append(projected(src, p)),
        "ephemeral" if get(src, "volumeClaimTemplate").is_none() => {
            errs.push(FieldError::required(&p.child("volumeClaimTemplate"), ""));
        }
        "csi" if s(src, "driver").is_empty() => {
            errs.push(FieldError::required(&p.child("driver"), ""));
        }
        "iscsi" => {
            if s(src, "targetPortal").is_empty() {
                errs.push(FieldError::required(&p.child("targetPortal"), ""));
            }
            if s(src, "iqn").is_empty() {
                errs.push(FieldError::required(&p.child("iqn"), ""));
            }
        }
        _ => {}
    }
    errs
}

/// `validateNFSVolumeSource` (shared with persistent volumes).
pub(crate) fn nfs(src: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if s(src, "server").is_empty() {
        errs.push(FieldError::required(&p.child("server"), ""));
    }
    let path = s(src, "path");
    if path.is_empty() {
        errs.push(FieldError::required(&p.child("path"), ""));
    }
    if !path.starts_with('/') {
        errs.push(FieldError::invalid(
            &p.child("path"),
            path,
            "must be an absolute path",
        ));
    }
    errs
}

fn file_mode(src: &Value, key: &str, p: &Path) -> ErrorList {
    match int_of(src, key) {
        Some(m) if !(0..=0o777).contains(&m) => {
            FieldError::invalid(&p.child(key), m, FILE_MODE_ERROR_MSG).into()
        }
        _ => ErrorList::new(),
    }
}

fn key_to_paths(src: &Value, items_path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, kp) in arr(src, "items").iter().enumerate() {
        let p = items_path.index(i);
        if s(kp, "key").is_empty() {
            errs.push(FieldError::required(&p.child("key"), ""));
        }
        let target = s(kp, "path");
        if target.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        }
        errs.append(local_non_reserved_path(target, &p.child("path")));
        errs.append(file_mode(kp, "mode", &p));
    }
    errs
}

fn downward_api_file(item: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let target = s(item, "path");
    if target.is_empty() {
        errs.push(FieldError::required(&p.child("path"), ""));
    }
    errs.append(local_non_reserved_path(target, &p.child("path")));
    if let Some(fr) = get(item, "fieldRef") {
        errs.append(object_field_selector(
            fr,
            VOLUME_FIELD_PATHS,
            &p.child("fieldRef"),
        ));
        if get(item, "resourceFieldRef").is_some() {
            errs.push(FieldError::invalid(
                p,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if get(item, "resourceFieldRef").is_none() {
        errs.push(FieldError::required(
            p,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    errs.append(file_mode(item, "mode", p));
    errs
}

fn projected(src: &Value, p: &Path) -> ErrorList {
    let mut errs = file_mode(src, "defaultMode", p);
    let mut all_paths: HashSet<String> = HashSet::new();
    for (i, source) in arr(src, "sources").iter().enumerate() {
        let sp = p.child("sources").index(i);
        let mut count = 0;
        for kind in [
            "secret",
            "configMap",
            "downwardAPI",
            "serviceAccountToken",
            "clusterTrustBundle",
        ] {
            let Some(proj) = get(source, kind) else {
                continue;
            };
            count += 1;
            let kp = sp.child(kind);
            if count > 1 {
                errs.push(FieldError::forbidden(
                    &kp,
                    "may not specify more than 1 volume type per source",
                ));
                continue;
            }
            match kind {
                "secret" | "configMap" => {
                    if s(proj, "name").is_empty() {
                        errs.push(FieldError::required(&kp.child("name"), ""));
                    }
                    errs.append(key_to_paths(proj, &kp.child("items")));
                    for (j, item) in arr(proj, "items").iter().enumerate() {
                        let target = s(item, "path").to_owned();
                        if !all_paths.insert(target.clone()) {
                            errs.push(FieldError::invalid(
                                &kp.child("items").index(j).child("path"),
                                target,
                                "conflicting duplicate paths",
                            ));
                        }
                    }
                }
                "downwardAPI" => {
                    for (j, item) in arr(proj, "items").iter().enumerate() {
                        errs.append(downward_api_file(item, &kp.child("items").index(j)));
                    }
                }
                "serviceAccountToken" => {
                    if let Some(exp) = int_of(proj, "expirationSeconds") {
                        if exp < 10 * 60 {
                            errs.push(FieldError::invalid(
                                &kp.child("expirationSeconds"),
                                exp,
                                "may not specify a duration less than 10 minutes",
                            ));
                        }
                        if exp > 1 << 32 {
                            errs.push(FieldError::invalid(
                                &kp.child("expirationSeconds"),
                                exp,
                                "may not specify a duration larger than 2^32 seconds",
                            ));
                        }
                    }
                    let target = s(proj, "path");
                    if target.is_empty() {
                        errs.push(FieldError::required(&kp.child("path"), ""));
                    }
                }
                _ => {}
            }
        }
    }
    errs
}

fn no_backsteps(target: &str, p: &Path) -> ErrorList {
    if target.split('/').any(|part| part == "..") {
        FieldError::invalid(p, target, "must not contain '..'").into()
    } else {
        ErrorList::new()
    }
}

fn local_descending_path(target: &str, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(p, target, "must be a relative path"));
    }
    errs.append(no_backsteps(target, p));
    errs
}

fn local_non_reserved_path(target: &str, p: &Path) -> ErrorList {
    let mut errs = local_descending_path(target, p);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(p, target, "must not start with '..'"));
    }
    errs
}

fn object_field_selector(fr: &Value, expressions: &[&str], p: &Path) -> ErrorList {
    let api_version = s(fr, "apiVersion");
    if api_version.is_empty() {
        return FieldError::required(&p.child("apiVersion"), "").into();
    }
    let field_path = s(fr, "fieldPath");
    if field_path.is_empty() {
        return FieldError::required(&p.child("fieldPath"), "").into();
    }
    if api_version != "v1" {
        return FieldError::invalid(
            &p.child("fieldPath"),
            field_path,
            format!("error converting fieldPath: unsupported pod version: {api_version}"),
        )
        .into();
    }
    if let Some((base, rest)) = field_path.split_once('[')
        && let Some(subscript) = rest.strip_suffix(']')
    {
        let subscript = subscript.trim_matches('\'');
        return match base {
            "metadata.annotations" => qualified_name(&subscript.to_lowercase(), p),
            "metadata.labels" => qualified_name(subscript, p),
            other => FieldError::invalid(p, other, "does not support subscript").into(),
        };
    }
    if !expressions.contains(&field_path) {
        return FieldError::not_supported(&p.child("fieldPath"), field_path, &sorted(expressions))
            .into();
    }
    ErrorList::new()
}

// ---------------------------------------------------------------------------------------------
// Containers.

fn containers(list: &[Value], volumes: &BTreeMap<String, String>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if list.is_empty() {
        return FieldError::required(path, "").into();
    }
    let mut names = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        errs.append(container_common(c, volumes, &p));
        let name = s(c, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        }
        if let Some(lc) = get(c, "lifecycle") {
            errs.append(lifecycle(lc, &p.child("lifecycle")));
        }
        errs.append(probe_of(c, "livenessProbe", &p, ProbeKind::Liveness));
        errs.append(probe_of(c, "readinessProbe", &p, ProbeKind::Readiness));
        errs.append(probe_of(c, "startupProbe", &p, ProbeKind::Startup));
        if get(c, "restartPolicy").is_some() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.append(host_port_conflicts(list, path));
    errs
}

fn init_containers(
    list: &[Value],
    regular: &[Value],
    volumes: &BTreeMap<String, String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: HashSet<&str> = regular.iter().map(|c| s(c, "name")).collect();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        errs.append(container_common(c, volumes, &p));
        let mut restart_always = false;
        if let Some(rp) = get(c, "restartPolicy") {
            let rp = rp.as_str().unwrap_or("");
            if rp == "Always" {
                restart_always = true;
            } else {
                errs.push(FieldError::not_supported(
                    &p.child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
        }
        let name = s(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        errs.append(host_port_conflicts(std::slice::from_ref(c), path));
        if restart_always {
            if let Some(lc) = get(c, "lifecycle") {
                errs.append(lifecycle(lc, &p.child("lifecycle")));
            }
            errs.append(probe_of(c, "livenessProbe", &p, ProbeKind::Liveness));
            errs.append(probe_of(c, "readinessProbe", &p, ProbeKind::Readiness));
            errs.append(probe_of(c, "startupProbe", &p, ProbeKind::Startup));
        } else {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if get(c, key).is_some() {
                    errs.push(FieldError::forbidden(
                        &p.child(key),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
        if !arr(c, "resizePolicy").is_empty() {
            errs.push(FieldError::invalid(
                &p.child("resizePolicy"),
                BadValue::from(get(c, "resizePolicy").unwrap_or(&Value::Null)),
                "must not be set for init containers",
            ));
        }
    }
    errs
}

fn host_port_conflicts(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = HashSet::new();
    for (ci, c) in list.iter().enumerate() {
        for (pi, port) in arr(c, "ports").iter().enumerate() {
            let host = int_of(port, "hostPort").unwrap_or(0);
            if host == 0 {
                continue;
            }
            let key = format!("{}/{}/{host}", s(port, "hostIP"), s(port, "protocol"));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

/// `validateContainerCommon`.
fn container_common(c: &Value, volumes: &BTreeMap<String, String>, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = s(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&p.child("name"), ""));
    } else {
        errs.append(dns1123_label(name, &p.child("name")));
    }
    if s(c, "image").is_empty() {
        errs.push(FieldError::required(&p.child("image"), ""));
    }
    match s(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            &p.child("terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            &p.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.append(container_ports(arr(c, "ports"), &p.child("ports")));
    errs.append(env(arr(c, "env"), &p.child("env")));
    errs.append(env_from(arr(c, "envFrom"), &p.child("envFrom")));
    errs.append(volume_mounts(c, volumes, &p.child("volumeMounts")));
    match s(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(&p.child("imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            &p.child("imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(res) = get(c, "resources") {
        errs.append(resource_requirements(res, &p.child("resources")));
    }
    for (i, rp) in arr(c, "resizePolicy").iter().enumerate() {
        let rpp = p.child("resizePolicy").index(i);
        let res = s(rp, "resourceName");
        if res != "cpu" && res != "memory" {
            errs.push(FieldError::not_supported(
                &rpp.child("resourceName"),
                res,
                &["cpu", "memory"],
            ));
        }
        let policy = s(rp, "restartPolicy");
        if policy != "NotRequired" && policy != "RestartContainer" {
            errs.push(FieldError::not_supported(
                &rpp.child("restartPolicy"),
                policy,
                &["NotRequired", "RestartContainer"],
            ));
        }
    }
    errs
}

fn container_ports(ports: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = s(port, "name");
        if !name.is_empty() {
            let problems = v::is_valid_port_name(name);
            if !problems.is_empty() {
                errs.append(msgs(name, &p.child("name"), problems));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        match int_of(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(&p.child("containerPort"), "")),
            n => errs.append(msgs_int(
                n,
                &p.child("containerPort"),
                v::is_valid_port_num(n),
            )),
        }
        let host = int_of(port, "hostPort").unwrap_or(0);
        if host != 0 {
            errs.append(msgs_int(
                host,
                &p.child("hostPort"),
                v::is_valid_port_num(host),
            ));
        }
        errs.append(protocol(s(port, "protocol"), &p.child("protocol")));
    }
    errs
}

/// A port protocol: required, and one of `SCTP`, `TCP`, `UDP`.
pub(crate) fn protocol(proto: &str, p: &Path) -> ErrorList {
    if proto.is_empty() {
        FieldError::required(p, "").into()
    } else if !SUPPORTED_PORT_PROTOCOLS.contains(&proto) {
        FieldError::not_supported(p, proto, SUPPORTED_PORT_PROTOCOLS).into()
    } else {
        ErrorList::new()
    }
}

/// `ValidatePortNumOrName` for an `IntOrString` port (absent is the integer 0).
pub(crate) fn port_num_or_name(port: Option<&Value>, p: &Path) -> ErrorList {
    match IntOrStr::from_json(port).unwrap_or(IntOrStr::Int(0)) {
        IntOrStr::Int(n) => msgs_int(n, p, v::is_valid_port_num(n)),
        IntOrStr::Str(name) => msgs(&name, p, v::is_valid_port_name(&name)),
    }
}

fn env(vars: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        let name = s(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        // RelaxedEnvironmentVariableValidation is on by default in v1.33.
        errs.append(msgs(
            name,
            &p.child("name"),
            v::is_relaxed_env_var_name(name),
        ));
        let Some(from) = get(ev, "valueFrom") else {
            continue;
        };
        let fp = p.child("valueFrom");
        let mut sources = 0;
        if let Some(fr) = get(from, "fieldRef") {
            sources += 1;
            errs.append(object_field_selector(
                fr,
                ENV_FIELD_PATHS,
                &fp.child("fieldRef"),
            ));
        }
        if let Some(rf) = get(from, "resourceFieldRef") {
            sources += 1;
            let resource = s(rf, "resource");
            if resource.is_empty() {
                errs.push(FieldError::required(
                    &fp.child("resourceFieldRef").child("resource"),
                    "",
                ));
            }
        }
        for key in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(r) = get(from, key) {
                sources += 1;
                let rp = fp.child(key);
                if s(r, "name").is_empty() {
                    errs.push(FieldError::required(&rp.child("name"), ""));
                }
                let k = s(r, "key");
                if k.is_empty() {
                    errs.push(FieldError::required(&rp.child("key"), ""));
                } else {
                    errs.append(msgs(k, &rp.child("key"), v::is_config_map_key(k)));
                }
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(ev, "value").is_empty() {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn env_from(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ef) in list.iter().enumerate() {
        let p = path.index(i);
        let prefix = s(ef, "prefix");
        if !prefix.is_empty() {
            errs.append(msgs(
                prefix,
                &p.child("prefix"),
                v::is_relaxed_env_var_name(prefix),
            ));
        }
        let mut sources = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = get(ef, key) {
                sources += 1;
                let name = s(r, "name");
                if name.is_empty() {
                    errs.push(FieldError::required(&p.child(key).child("name"), ""));
                } else {
                    errs.append(msgs(
                        name,
                        &p.child(key).child("name"),
                        v::name_is_dns_subdomain(name, false),
                    ));
                }
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                &p,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &p,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn volume_mounts(c: &Value, volumes: &BTreeMap<String, String>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut mount_points = HashSet::new();
    let devices: Vec<(&str, &str)> = arr(c, "volumeDevices")
        .iter()
        .map(|d| (s(d, "name"), s(d, "devicePath")))
        .collect();
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let p = path.index(i);
        let name = s(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !volumes.contains_key(name) {
            errs.push(FieldError::not_found(&p.child("name"), name));
        }
        let mount_path = s(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        if devices.iter().any(|(n, _)| *n == name) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.iter().any(|(_, d)| *d == mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = s(m, "subPath");
        if !sub_path.is_empty() {
            errs.append(local_descending_path(sub_path, &path.child("subPath")));
        }
        let sub_expr = s(m, "subPathExpr");
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.append(local_descending_path(sub_expr, &path.child("subPathExpr")));
        }
        if let Some(prop) = str_of(m, "mountPropagation") {
            let valid = ["HostToContainer", "Bidirectional", "None"];
            if !valid.contains(&prop) {
                errs.push(FieldError::not_supported(
                    &path.child("mountPropagation"),
                    prop,
                    &valid,
                ));
            } else if prop == "Bidirectional"
                && at(c, &["securityContext", "privileged"]).and_then(Value::as_bool) != Some(true)
            {
                errs.push(FieldError::forbidden(
                    &path.child("mountPropagation"),
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
    }
    errs
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn probe_of(c: &Value, key: &str, p: &Path, kind: ProbeKind) -> ErrorList {
    let Some(probe) = get(c, key) else {
        return ErrorList::new();
    };
    let p = p.child(key);
    let mut errs = handler(probe, &p, true);
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.append(nonnegative(
            int_of(probe, field).unwrap_or(0),
            &p.child(field),
        ));
    }
    if let Some(t) = int_of(probe, "terminationGracePeriodSeconds")
        && t <= 0
    {
        errs.push(FieldError::invalid(
            &p.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    match kind {
        ProbeKind::Readiness => {
            if let Some(t) = int_of(probe, "terminationGracePeriodSeconds") {
                errs.push(FieldError::invalid(
                    &p.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
        ProbeKind::Liveness | ProbeKind::Startup => {
            let st = int_of(probe, "successThreshold").unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(
                    &p.child("successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        }
    }
    errs
}

fn lifecycle(lc: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in ["postStart", "preStop"] {
        if let Some(h) = get(lc, key) {
            errs.append(handler(h, &p.child(key), false));
        }
    }
    errs
}

/// `validateHandler` for probes (`probe` true: gRPC allowed) and lifecycle hooks.
fn handler(h: &Value, p: &Path, probe: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut count = 0;
    let kinds: &[&str] = if probe {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    } else {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    };
    for &kind in kinds {
        let Some(action) = get(h, kind) else {
            continue;
        };
        let kp = p.child(kind);
        if count > 0 {
            errs.push(FieldError::forbidden(
                &kp,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        count += 1;
        match kind {
            "exec" if arr(action, "command").is_empty() => {
                errs.push(FieldError::required(&kp.child("command"), ""));
            }
            "httpGet" => {
                if s(action, "path").is_empty() {
                    errs.push(FieldError::required(&kp.child("path"), ""));
                }
                errs.append(port_num_or_name(get(action, "port"), &kp.child("port")));
                let scheme = s(action, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(FieldError::not_supported(
                        &kp.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
                for header in arr(action, "httpHeaders") {
                    let name = s(header, "name");
                    errs.append(msgs(
                        name,
                        &kp.child("httpHeaders"),
                        v::is_http_header_name(name),
                    ));
                }
            }
            "tcpSocket" => {
                errs.append(port_num_or_name(get(action, "port"), &kp.child("port")));
            }
            "grpc" => {
                let port = int_of(action, "port").unwrap_or(0);
                errs.append(msgs_int(
                    port,
                    &kp.child("port"),
                    v::is_valid_port_num(port),
                ));
            }
            "sleep" => {
                let secs = int_of(action, "seconds").unwrap_or(0);
                if secs < 0 {
                    errs.push(FieldError::invalid(
                        &kp.child("seconds"),
                        secs,
                        "must be non-negative integer",
                    ));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(p, "must specify a handler type"));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Resources.

/// A quantity from JSON (strings, or numbers as upstream's decoder accepts them).
pub(crate) fn quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended(name: &str) -> bool {
    if is_native(name) || name.starts_with("requests.") {
        return false;
    }
    v::is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepages(name)
}

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

/// `validateResourceName`.
pub(crate) fn resource_name(name: &str, p: &Path) -> ErrorList {
    let errs = msgs(name, p, v::is_qualified_name(name));
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !STANDARD_RESOURCES.contains(&name) && !is_hugepages(name) {
        return FieldError::invalid(
            p,
            name,
            "must be a standard resource type or fully qualified",
        )
        .into();
    }
    errs
}

fn container_resource_name(name: &str, p: &Path) -> ErrorList {
    let mut errs = resource_name(name, p);
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages(name) {
            errs.push(FieldError::invalid(
                p,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(FieldError::invalid(
            p,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// `ValidateResourceQuantityValue`.
fn quantity_value(name: &str, q: &Quantity, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if q.signum() < 0 {
        errs.push(FieldError::invalid(
            p,
            q.to_string(),
            v::IS_NEGATIVE_ERROR_MSG,
        ));
    }
    if is_extended(name) && q.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            p,
            BadValue::Raw(go_quantity(q)),
            "must be an integer",
        ));
    }
    errs
}

/// `%#v` of a `resource.Quantity` value, approximated by its canonical form.
fn go_quantity(q: &Quantity) -> String {
    format!(
        "resource.Quantity{{s:{}}}",
        super::util::go_quote(&q.to_string())
    )
}

/// A `ResourceList` of a pod-level field (overhead): names and non-negative values.
pub(crate) fn resource_list(list: &Value, p: &Path, container: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(m) = list.as_object() {
        let keys: BTreeSet<&String> = m.keys().collect();
        for k in keys {
            let kp = p.key(k);
            errs.append(if container {
                container_resource_name(k, &kp)
            } else {
                resource_name(k, &kp)
            });
            if let Some(q) = m.get(k.as_str()).and_then(quantity) {
                errs.append(quantity_value(k, &q, &kp));
            }
        }
    }
    errs
}

/// `ValidateContainerResourceRequirements`.
fn resource_requirements(res: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let lim_path = p.child("limits");
    let req_path = p.child("requests");
    let limits = map_of(res, "limits");
    let requests = map_of(res, "requests");
    let (mut lim_cpu_mem, mut req_cpu_mem, mut lim_huge, mut req_huge) =
        (false, false, false, false);
    if let Some(limits) = limits {
        let keys: BTreeSet<&String> = limits.keys().collect();
        for k in keys {
            let kp = lim_path.key(k);
            errs.append(container_resource_name(k, &kp));
            if let Some(q) = limits.get(k.as_str()).and_then(quantity) {
                errs.append(quantity_value(k, &q, &kp));
            }
            lim_huge |= is_hugepages(k);
            lim_cpu_mem |= k == "cpu" || k == "memory";
        }
    }
    if let Some(requests) = requests {
        let keys: BTreeSet<&String> = requests.keys().collect();
        for k in keys {
            let kp = req_path.key(k);
            errs.append(container_resource_name(k, &kp));
            let q = requests.get(k.as_str()).and_then(quantity);
            if let Some(q) = &q {
                errs.append(quantity_value(k, q, &kp));
            }
            match limits.and_then(|l| l.get(k.as_str())).and_then(quantity) {
                Some(limit) => {
                    if let Some(q) = &q {
                        if q != &limit && !overcommit_allowed(k) {
                            errs.push(FieldError::invalid(
                                &req_path,
                                q.to_string(),
                                format!("must be equal to {k} limit of {limit}"),
                            ));
                        } else if q > &limit {
                            errs.push(FieldError::invalid(
                                &req_path,
                                q.to_string(),
                                format!("must be less than or equal to {k} limit of {limit}"),
                            ));
                        }
                    }
                }
                None => {
                    if !overcommit_allowed(k) {
                        errs.push(FieldError::required(
                            &lim_path,
                            "Limit must be set for non overcommitable resources",
                        ));
                    }
                }
            }
            req_huge |= is_hugepages(k);
            req_cpu_mem |= k == "cpu" || k == "memory";
        }
    }
    if !lim_cpu_mem && !req_cpu_mem && (lim_huge || req_huge) {
        errs.push(FieldError::forbidden(p, "HugePages require cpu or memory"));
    }
    let mut claims = HashSet::new();
    for (i, claim) in arr(res, "claims").iter().enumerate() {
        let name = s(claim, "name");
        let cp = p.child("claims").index(i);
        if name.is_empty() {
            errs.push(FieldError::required(&cp, ""));
        } else if !claims.insert(name) {
            errs.push(FieldError::duplicate(&cp, name));
        }
    }
    errs
}

/// Names of the containers and init containers of a pod template spec, for references.
pub(crate) fn container_names(spec: &Value) -> Vec<String> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|k| arr(spec, k))
        .map(|c| s(c, "name").to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::{Gvk, validation::validate_create, validation::validate_update};
    use serde_json::json;

    const POD: Gvk<'static> = Gvk::new("", "v1", "Pod");

    fn pod(spec: Value) -> Value {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"}, "spec": spec});
        apply_defaults(POD, &mut p);
        p
    }

    fn check(obj: &Value, want: &[&str]) {
        let got: Vec<String> = validate_create(POD, obj)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_defaulted_minimal_pod_is_valid() {
        check(
            &pod(json!({"containers": [{"name": "c", "image": "busybox"}]})),
            &[],
        );
    }

    #[test]
    fn containers_are_required_and_named_uniquely() {
        check(
            &pod(json!({"containers": []})),
            &["spec.containers: Required value"],
        );
        check(
            &pod(json!({"containers": [
                {"name": "c", "image": "a"}, {"name": "c", "image": "b"}, {"name": "Bad_Name"}]})),
            &[
                "spec.containers[1].name: Duplicate value: \"c\"",
                "spec.containers[2].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "spec.containers[2].image: Required value",
            ],
        );
    }

    #[test]
    fn ports_mounts_and_resources_are_checked() {
        check(
            &pod(json!({"containers": [{"name": "c", "image": "a",
                "ports": [{"containerPort": 70000}, {"containerPort": 80, "protocol": "XTP"}],
                "volumeMounts": [{"name": "missing", "mountPath": "/x"}],
                "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}}]})),
            &[
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"XTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            ],
        );
    }

    #[test]
    fn restart_policy_and_volumes_are_checked() {
        check(
            &pod(json!({"restartPolicy": "Sometimes",
                "volumes": [{"name": "v"}, {"name": "v"}, {"name": "s", "secret": {}}],
                "containers": [{"name": "c", "image": "a"}]})),
            &[
                "spec.volumes[1].name: Duplicate value: \"v\"",
                "spec.volumes[2].secret.secretName: Required value",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        );
    }

    #[test]
    fn pod_updates_may_only_change_images_and_a_few_fields() {
        let mut old = pod(json!({"containers": [{"name": "c", "image": "a"}]}));
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("b");
        new["spec"]["activeDeadlineSeconds"] = json!(30);
        assert!(validate_update(POD, &new, &old).is_empty());
        new["spec"]["restartPolicy"] = json!("Never");
        let errs = validate_update(POD, &new, &old);
        assert_eq!(errs.len(), 1);
        let msg = errs.as_slice()[0].to_string();
        assert!(
            msg.starts_with(&format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN}\n")),
            "{msg}"
        );
        assert!(msg.contains("restartPolicy"), "{msg}");
        let mut fewer = old.clone();
        fewer["spec"]["containers"] = json!([]);
        assert_eq!(
            validate_update(POD, &fewer, &old)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "spec.containers: Required value",
                "spec.containers: Forbidden: pod updates may not add or remove containers"
            ]
        );
    }

    #[test]
    fn tolerations_follow_upstream_rules() {
        check(
            &pod(json!({"containers": [{"name": "c", "image": "a"}],
                "tolerations": [{"operator": "Equal", "value": "x"},
                                {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]})),
            &[
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            ],
        );
    }
}
