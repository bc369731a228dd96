//! Validation of the apps group: Deployments, ReplicaSets, StatefulSets, DaemonSets and
//! ControllerRevisions, including the `apps/v1` strategies' immutable selectors.

use serde_json::Value;
use tug_apimachinery::labels::{LabelSelectorValidationOptions, validate_label_selector};
use tug_apimachinery::validation::{self as v, BadValue, ErrorList, FieldError, Path};

use super::core::template_restart_always;
use super::meta::{self, NameRule};
use super::pod::validate_pod_template_spec;
use super::util::{
    IntOrStr, get, go_label_selector, go_quote, go_str_map, immutable, int_of, label_selector,
    nonnegative, nonnegative_opt, s, selector_is_empty, selector_matches, semantic_eq, str_map,
};

fn spec_of(obj: &Value) -> &Value {
    get(obj, "spec").unwrap_or(&Value::Null)
}

fn meta_for(obj: &Value, old: Option<&Value>, rule: NameRule) -> ErrorList {
    match old {
        None => meta::validate_object_meta(obj, true, rule),
        Some(old) => meta::validate_object_meta_update(obj, old),
    }
}

/// Strict selector validation plus the "empty selector" rule shared by the replica kinds.
fn required_selector(spec: &Value, sp: &Path, kind: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    match (get(spec, "selector"), label_selector(spec, "selector")) {
        (None, _) => errs.push(FieldError::required(&sp.child("selector"), "")),
        (Some(raw), parsed) => {
            let sel = parsed.unwrap_or_default();
            errs.append(validate_label_selector(
                &sel,
                LabelSelectorValidationOptions::default(),
                &sp.child("selector"),
            ));
            if selector_is_empty(&sel) {
                errs.push(FieldError::invalid(
                    &sp.child("selector"),
                    BadValue::Raw(go_label_selector(raw)),
                    format!("empty selector is invalid for {kind}"),
                ));
            }
        }
    }
    errs
}

/// The selector/template-labels match check: `None` when the selector could not be built
/// (upstream then reports `invalid label selector`).
fn template_match(spec: &Value, tp: &Path) -> Option<ErrorList> {
    let sel = label_selector(spec, "selector");
    let tpl_labels = spec
        .pointer("/template/metadata")
        .and_then(|m| str_map(m, "labels"));
    // A present but empty selector selects everything, so there is nothing to mismatch.
    if sel.as_ref().is_some_and(selector_is_empty) {
        return Some(ErrorList::new());
    }
    let matches = selector_matches(sel.as_ref(), &tpl_labels.clone().unwrap_or_default())?;
    Some(if matches {
        ErrorList::new()
    } else {
        FieldError::invalid(
            &tp.child("metadata").child("labels"),
            BadValue::Raw(go_str_map(tpl_labels.as_ref())),
            "`selector` does not match template `labels`",
        )
        .into()
    })
}

fn invalid_selector(spec: &Value, sp: &Path, detail: &str) -> FieldError {
    FieldError::invalid(
        &sp.child("selector"),
        BadValue::Raw(go_label_selector(
            get(spec, "selector").unwrap_or(&Value::Null),
        )),
        detail,
    )
}

/// `ValidatePodTemplateSpecForReplicaSet` after the selector was built.
fn replica_template(spec: &Value, sp: &Path, kind: &str) -> ErrorList {
    let tp = sp.child("template");
    let mut errs = match template_match(spec, &tp) {
        Some(e) => e,
        None => return invalid_selector(spec, sp, "invalid label selector").into(),
    };
    match get(spec, "template") {
        None => errs.push(FieldError::required(&tp, "")),
        Some(tpl) => {
            errs.append(validate_pod_template_spec(Some(tpl), &tp));
            errs.append(template_restart_always(tpl, &tp, kind));
        }
    }
    errs
}

/// Upstream's `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(v: &IntOrStr, p: &Path) -> ErrorList {
    match v {
        IntOrStr::Str(s) => v::is_valid_percent(s)
            .into_iter()
            .map(|m| FieldError::invalid(p, BadValue::Raw(v.go()), m))
            .collect(),
        IntOrStr::Int(n) => nonnegative(*n, p),
    }
}

/// Upstream's `IsNotMoreThan100Percent`.
fn not_more_than_100_percent(v: &IntOrStr, p: &Path) -> ErrorList {
    match v.percent() {
        Some(n) if n > 100 => {
            FieldError::invalid(p, BadValue::Raw(v.go()), "must not be greater than 100%").into()
        }
        _ => ErrorList::new(),
    }
}

fn selector_immutable(new: &Value, old: &Value) -> ErrorList {
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let shown =
        get(spec, "selector").map_or(BadValue::Null, |s| BadValue::Raw(go_label_selector(s)));
    immutable(
        get(spec, "selector"),
        get(old_spec, "selector"),
        shown,
        &Path::new("spec").child("selector"),
    )
}

// ---------------------------------------------------------------------------------------------
// Deployment.

/// `ValidateDeployment` / `ValidateDeploymentUpdate` (with apps/v1's immutable selector).
pub(super) fn deployment(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = meta_for(obj, old, NameRule::Subdomain);
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    errs.append(nonnegative(
        int_of(spec, "replicas").unwrap_or(0),
        &sp.child("replicas"),
    ));
    errs.append(required_selector(spec, &sp, "deployment"));
    errs.append(replica_template(spec, &sp, "ReplicaSet"));
    errs.append(deployment_strategy(spec, &sp.child("strategy")));
    let min_ready = int_of(spec, "minReadySeconds").unwrap_or(0);
    errs.append(nonnegative(min_ready, &sp.child("minReadySeconds")));
    errs.append(nonnegative_opt(spec, "revisionHistoryLimit", &sp));
    if let Some(pds) = int_of(spec, "progressDeadlineSeconds") {
        errs.append(nonnegative(pds, &sp.child("progressDeadlineSeconds")));
        if pds <= min_ready {
            errs.push(FieldError::invalid(
                &sp.child("progressDeadlineSeconds"),
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    if let Some(old) = old {
        errs.append(selector_immutable(obj, old));
    }
    errs
}

fn deployment_strategy(spec: &Value, p: &Path) -> ErrorList {
    let null = Value::Null;
    let strategy = get(spec, "strategy").unwrap_or(&null);
    let ru = get(strategy, "rollingUpdate");
    match s(strategy, "type") {
        "Recreate" => {
            if ru.is_some() {
                return FieldError::forbidden(
                    &p.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                )
                .into();
            }
            ErrorList::new()
        }
        "RollingUpdate" => match ru {
            None => FieldError::required(
                &p.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )
            .into(),
            Some(ru) => rolling_update_deployment(ru, &p.child("rollingUpdate")),
        },
        other => FieldError::not_supported(
            p,
            BadValue::Raw(format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}",
                go_quote(other)
            )),
            &["Recreate", "RollingUpdate"],
        )
        .into(),
    }
}

/// `ValidateRollingUpdateDeployment`.
fn rolling_update_deployment(ru: &Value, p: &Path) -> ErrorList {
    let unavailable = IntOrStr::from_json(get(ru, "maxUnavailable")).unwrap_or(IntOrStr::Int(0));
    let surge = IntOrStr::from_json(get(ru, "maxSurge")).unwrap_or(IntOrStr::Int(0));
    let mut errs = positive_int_or_percent(&unavailable, &p.child("maxUnavailable"));
    errs.append(positive_int_or_percent(&surge, &p.child("maxSurge")));
    if unavailable.int_or_percent() == 0 && surge.int_or_percent() == 0 {
        errs.push(FieldError::invalid(
            &p.child("maxUnavailable"),
            BadValue::Raw(unavailable.go()),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errs.append(not_more_than_100_percent(
        &unavailable,
        &p.child("maxUnavailable"),
    ));
    errs
}

// ---------------------------------------------------------------------------------------------
// ReplicaSet.

/// `ValidateReplicaSet` / `ValidateReplicaSetUpdate` (with apps/v1's immutable selector).
pub(super) fn replica_set(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = meta_for(obj, old, NameRule::Subdomain);
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    errs.append(nonnegative(
        int_of(spec, "replicas").unwrap_or(0),
        &sp.child("replicas"),
    ));
    errs.append(nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        &sp.child("minReadySeconds"),
    ));
    errs.append(required_selector(spec, &sp, "deployment"));
    errs.append(replica_template(spec, &sp, "ReplicaSet"));
    if let Some(old) = old {
        errs.append(selector_immutable(obj, old));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// DaemonSet.

/// `ValidateDaemonSet` / `ValidateDaemonSetUpdate` (with apps/v1's immutable selector).
pub(super) fn daemon_set(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = meta_for(obj, old, NameRule::Subdomain);
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let tp = sp.child("template");
    let sel = label_selector(spec, "selector").unwrap_or_default();
    errs.append(validate_label_selector(
        &sel,
        LabelSelectorValidationOptions::default(),
        &sp.child("selector"),
    ));
    if let Some(m) = template_match(spec, &tp) {
        errs.append(m);
    }
    if let Some(raw) = get(spec, "selector")
        && selector_is_empty(&sel)
    {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            BadValue::Raw(go_label_selector(raw)),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.append(validate_pod_template_spec(get(spec, "template"), &tp));
    let tspec = spec.pointer("/template/spec").unwrap_or(&Value::Null);
    let rp = s(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if let Some(ads) = int_of(tspec, "activeDeadlineSeconds") {
        errs.push(FieldError::invalid(
            &tp.child("spec").child("activeDeadlineSeconds"),
            ads,
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.append(nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        &sp.child("minReadySeconds"),
    ));
    errs.append(nonnegative(
        int_of(spec, "templateGeneration").unwrap_or(0),
        &sp.child("templateGeneration"),
    ));
    errs.append(daemon_set_strategy(spec, &sp.child("updateStrategy")));
    errs.append(nonnegative_opt(spec, "revisionHistoryLimit", &sp));
    if let Some(old) = old {
        errs.append(selector_immutable(obj, old));
    }
    errs
}

fn daemon_set_strategy(spec: &Value, p: &Path) -> ErrorList {
    let null = Value::Null;
    let strategy = get(spec, "updateStrategy").unwrap_or(&null);
    match s(strategy, "type") {
        "OnDelete" => ErrorList::new(),
        "RollingUpdate" => match get(strategy, "rollingUpdate") {
            None => FieldError::required(&p.child("rollingUpdate"), "").into(),
            Some(ru) => rolling_update_daemon_set(ru, &p.child("rollingUpdate")),
        },
        other => FieldError::not_supported(
            p,
            BadValue::Raw(format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                go_quote(other)
            )),
            &["RollingUpdate", "OnDelete"],
        )
        .into(),
    }
}

/// `ValidateRollingUpdateDaemonSet`.
fn rolling_update_daemon_set(ru: &Value, p: &Path) -> ErrorList {
    let unavailable = IntOrStr::from_json(get(ru, "maxUnavailable")).unwrap_or(IntOrStr::Int(0));
    let surge = IntOrStr::from_json(get(ru, "maxSurge")).unwrap_or(IntOrStr::Int(0));
    let mut errs = positive_int_or_percent(&unavailable, &p.child("maxUnavailable"));
    errs.append(positive_int_or_percent(&surge, &p.child("maxSurge")));
    errs.append(not_more_than_100_percent(
        &unavailable,
        &p.child("maxUnavailable"),
    ));
    errs.append(not_more_than_100_percent(&surge, &p.child("maxSurge")));
    let has_unavailable = unavailable.int_or_percent() != 0;
    let has_surge = surge.int_or_percent() != 0;
    if has_unavailable && has_surge {
        errs.push(FieldError::invalid(
            &p.child("maxSurge"),
            BadValue::Raw(surge.go()),
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        errs.push(FieldError::required(
            &p.child("maxUnavailable"),
            "cannot be 0 when maxSurge is 0",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// StatefulSet.

/// `ValidateStatefulSet`.
pub(super) fn stateful_set(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Label);
    errs.append(stateful_set_spec(obj));
    errs
}

fn stateful_set_spec(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    match s(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            &sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let null = Value::Null;
    let strategy = get(spec, "updateStrategy").unwrap_or(&null);
    let ru = get(strategy, "rollingUpdate");
    match s(strategy, "type") {
        "" => errs.push(FieldError::required(&sp.child("updateStrategy"), "")),
        "OnDelete" => {
            if let Some(ru) = ru {
                errs.push(FieldError::invalid(
                    &sp.child("updateStrategy").child("rollingUpdate"),
                    BadValue::from(ru),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = ru {
                let p = sp.child("updateStrategy").child("rollingUpdate");
                errs.append(nonnegative(
                    int_of(ru, "partition").unwrap_or(0),
                    &p.child("partition"),
                ));
                if let Some(mu) = IntOrStr::from_json(get(ru, "maxUnavailable")) {
                    let mp = p.child("maxUnavailable");
                    errs.append(positive_int_or_percent(&mu, &mp));
                    if mu.int_or_percent() == 0 {
                        errs.push(FieldError::invalid(
                            &mp,
                            BadValue::Raw(mu.go()),
                            "cannot be 0",
                        ));
                    }
                    errs.append(not_more_than_100_percent(&mu, &mp));
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            &sp.child("updateStrategy"),
            BadValue::from(strategy),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = get(spec, "persistentVolumeClaimRetentionPolicy") {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for key in ["whenDeleted", "whenScaled"] {
            let value = s(policy, key);
            if value != "Retain" && value != "Delete" {
                errs.push(FieldError::not_supported(
                    &pp.child(key),
                    value,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    errs.append(nonnegative(
        int_of(spec, "replicas").unwrap_or(0),
        &sp.child("replicas"),
    ));
    errs.append(nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        &sp.child("minReadySeconds"),
    ));
    if let Some(start) = spec.pointer("/ordinals/start").and_then(Value::as_i64) {
        errs.append(nonnegative(start, &sp.child("ordinals.start")));
    }
    errs.append(required_selector(spec, &sp, "statefulset"));
    let tp = sp.child("template");
    match template_match(spec, &tp) {
        None => errs.push(invalid_selector(spec, &sp, "")),
        Some(m) => {
            errs.append(m);
            let meta = spec.pointer("/template/metadata").unwrap_or(&Value::Null);
            if let Some(l) = str_map(meta, "labels") {
                errs.append(v::validate_labels(&l, &tp.child("labels")));
            }
            if let Some(a) = str_map(meta, "annotations") {
                errs.append(v::validate_annotations(&a, &tp.child("annotations")));
            }
        }
    }
    let tspec = spec.pointer("/template/spec").unwrap_or(&Value::Null);
    let rp = s(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

/// `ValidateStatefulSetUpdate`: only a few spec fields may change (v1.33's list).
pub(super) fn stateful_set_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(stateful_set_spec(new));
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let mut munged = spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for key in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            match get(old_spec, key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
    }
    if !semantic_eq(Some(&munged), Some(old_spec)) {
        errs.push(FieldError::forbidden(
            &Path::new("spec"),
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// ControllerRevision.

/// `ValidateControllerRevision`.
pub(super) fn controller_revision(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    if get(obj, "data").is_none() {
        errs.push(FieldError::required(
            &Path::new("data"),
            "data is mandatory",
        ));
    }
    errs.append(nonnegative(
        int_of(obj, "revision").unwrap_or(0),
        &Path::new("revision"),
    ));
    errs
}

/// `ValidateControllerRevisionUpdate`: the data is immutable.
pub(super) fn controller_revision_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.append(controller_revision(new));
    errs.append(immutable(
        get(new, "data"),
        get(old, "data"),
        super::util::bad(get(new, "data")),
        &Path::new("data"),
    ));
    errs
}
