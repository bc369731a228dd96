//! Validation of the batch group: Jobs and CronJobs (schedule syntax and time zones
//! included).

use std::collections::HashSet;

use serde_json::Value;
use tug_apimachinery::labels::{LabelSelectorValidationOptions, validate_label_selector};
use tug_apimachinery::validation::{self as v, BadValue, ErrorList, FieldError, Path};

use super::cron;
use super::meta::{self, NameRule};
use super::pod::{container_names, validate_pod_template_spec};
use super::util::{
    arr, bool_of, get, go_label_selector, go_str_map, immutable, int_of, int_ptr, label_selector,
    nonnegative, qualified_name, s, selector_matches, semantic_eq, str_map, str_of,
};

const MAX_PARALLELISM_INDEXED: i64 = 100_000;
const MAX_FAILED_INDEXES: i64 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i64 = 100_000;
const PARALLELISM_LIMIT_HIGH_COMPLETIONS: i64 = 10_000;
const MAX_FAILED_INDEXES_HIGH_COMPLETIONS: i64 = 10_000;
const MAX_POD_FAILURE_POLICY_RULES: usize = 20;

fn spec_of(obj: &Value) -> &Value {
    get(obj, "spec").unwrap_or(&Value::Null)
}

/// `ValidateJob`. Expects the registry to have generated the selector and its labels unless
/// `manualSelector` is true, as upstream's strategy does in `PrepareForCreate`.
pub(super) fn job(obj: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta(obj, true, NameRule::Subdomain);
    errs.append(generated_selector(obj));
    errs.append(job_spec_with_selector(spec_of(obj), &Path::new("spec")));
    let spec = spec_of(obj);
    if s(spec, "completionMode") == "Indexed"
        && let Some(c) = int_of(spec, "completions")
        && c > 0
    {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let hostname = format!("{name}-{}", c - 1);
        if !v::is_dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("name"),
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    errs
}

/// Upstream's `validateGeneratedSelector` (with the `batch.kubernetes.io/` labels required).
fn generated_selector(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = spec_of(obj);
    if bool_of(spec, "manualSelector") == Some(true) || get(spec, "selector").is_none() {
        return errs;
    }
    let meta = get(obj, "metadata").unwrap_or(&Value::Null);
    let uid = s(meta, "uid");
    let name = s(meta, "name");
    if uid.is_empty() {
        errs.push(FieldError::required(
            &Path::new("metadata").child("uid"),
            "",
        ));
    }
    let tp = Path::new("spec").child("template").child("metadata");
    let tpl_labels = spec
        .pointer("/template/metadata")
        .and_then(|m| str_map(m, "labels"))
        .unwrap_or_default();
    for (label, want) in [
        ("controller-uid", uid),
        ("job-name", name),
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
    ] {
        match tpl_labels.get(label) {
            None => errs.push(FieldError::required(&tp.child("labels").key(label), want)),
            Some(got) if got != want => errs.push(FieldError::invalid(
                &tp.child("labels").key(label),
                BadValue::Raw(go_str_map(Some(&tpl_labels))),
                format!("must be '{want}'"),
            )),
            Some(_) => {}
        }
    }
    let expected = [
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if selector_matches(label_selector(spec, "selector").as_ref(), &expected) == Some(false) {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("selector"),
            BadValue::Raw(go_label_selector(
                get(spec, "selector").unwrap_or(&Value::Null),
            )),
            "`selector` not auto-generated",
        ));
    }
    errs
}

/// `ValidateJobSpec`: the spec, a required selector, and the selector/labels match.
fn job_spec_with_selector(spec: &Value, sp: &Path) -> ErrorList {
    let mut errs = job_spec(spec, sp);
    match label_selector(spec, "selector") {
        None => errs.push(FieldError::required(&sp.child("selector"), "")),
        Some(sel) => errs.append(validate_label_selector(
            &sel,
            LabelSelectorValidationOptions::default(),
            &sp.child("selector"),
        )),
    }
    let tpl_labels = spec
        .pointer("/template/metadata")
        .and_then(|m| str_map(m, "labels"));
    let matches = selector_matches(
        label_selector(spec, "selector").as_ref(),
        &tpl_labels.clone().unwrap_or_default(),
    );
    if matches == Some(false) {
        errs.push(FieldError::invalid(
            &sp.child("template").child("metadata").child("labels"),
            BadValue::Raw(go_str_map(tpl_labels.as_ref())),
            "`selector` does not match template `labels`",
        ));
    }
    errs
}

/// Upstream's `validateJobSpec`.
fn job_spec(spec: &Value, sp: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        if let Some(n) = int_of(spec, key) {
            errs.append(nonnegative(n, &sp.child(key)));
        }
    }
    let max_failed = int_of(spec, "maxFailedIndexes");
    let per_index = int_of(spec, "backoffLimitPerIndex");
    let completions = int_of(spec, "completions");
    let parallelism = int_of(spec, "parallelism");
    if let Some(m) = max_failed {
        errs.append(nonnegative(m, &sp.child("maxFailedIndexes")));
        if per_index.is_none() {
            errs.push(FieldError::required(
                &sp.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    let mode = str_of(spec, "completionMode");
    if let Some(mode) = mode {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                &sp.child("completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" {
            if completions.is_none() {
                errs.push(FieldError::required(
                    &sp.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = parallelism
                && p > MAX_PARALLELISM_INDEXED
            {
                errs.push(FieldError::invalid(
                    &sp.child("parallelism"),
                    p,
                    format!(
                        "must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"
                    ),
                ));
            }
            if let (Some(c), Some(m)) = (completions, max_failed)
                && m > c
            {
                errs.push(FieldError::invalid(
                    &sp.child("maxFailedIndexes"),
                    m,
                    "must be less than or equal to completions",
                ));
            }
            if let Some(m) = max_failed
                && m > MAX_FAILED_INDEXES
            {
                errs.push(FieldError::invalid(
                    &sp.child("maxFailedIndexes"),
                    m,
                    format!("must be less than or equal to {MAX_FAILED_INDEXES}"),
                ));
            }
            if completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT) && per_index.is_some() {
                if max_failed.is_none() {
                    errs.push(FieldError::required(
                        &sp.child("maxFailedIndexes"),
                        format!(
                            "must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"
                        ),
                    ));
                }
                if let Some(p) = parallelism
                    && p > PARALLELISM_LIMIT_HIGH_COMPLETIONS
                {
                    errs.push(FieldError::invalid(
                        &sp.child("parallelism"),
                        p,
                        format!(
                            "must be less than or equal to {PARALLELISM_LIMIT_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
                        ),
                    ));
                }
                if let Some(m) = max_failed
                    && m > MAX_FAILED_INDEXES_HIGH_COMPLETIONS
                {
                    errs.push(FieldError::invalid(
                        &sp.child("maxFailedIndexes"),
                        m,
                        format!(
                            "must be less than or equal to {MAX_FAILED_INDEXES_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
                        ),
                    ));
                }
            }
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        if let Some(b) = per_index {
            errs.push(FieldError::invalid(
                &sp.child("backoffLimitPerIndex"),
                b,
                "requires indexed completion mode",
            ));
        }
        if let Some(m) = max_failed {
            errs.push(FieldError::invalid(
                &sp.child("maxFailedIndexes"),
                m,
                "requires indexed completion mode",
            ));
        }
    }
    let tspec = spec.pointer("/template/spec").unwrap_or(&Value::Null);
    let has_pfp = get(spec, "podFailurePolicy").is_some();
    if let Some(pfp) = get(spec, "podFailurePolicy") {
        errs.append(pod_failure_policy(
            pfp,
            per_index.is_some(),
            &container_names(tspec),
            &sp.child("podFailurePolicy"),
        ));
    }
    if let Some(policy) = str_of(spec, "podReplacementPolicy") {
        let pp = sp.child("podReplacementPolicy");
        if has_pfp {
            if policy != "Failed" {
                errs.push(FieldError::not_supported(&pp, policy, &["Failed"]));
            }
        } else if policy != "Failed" && policy != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                &pp,
                policy,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    errs.append(validate_pod_template_spec(
        get(spec, "template"),
        &sp.child("template"),
    ));
    let rp = s(tspec, "restartPolicy");
    let rpp = sp.child("template").child("spec").child("restartPolicy");
    if rp == "Always" || rp.is_empty() {
        errs.push(FieldError::required(
            &rpp,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(&rpp, rp, &["OnFailure", "Never"]));
    } else if has_pfp && rp != "Never" {
        errs.push(FieldError::invalid(
            &rpp,
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs
}

fn pod_failure_policy(pfp: &Value, per_index: bool, containers: &[String], p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules = arr(pfp, "rules");
    let rp = p.child("rules");
    if rules.len() > MAX_POD_FAILURE_POLICY_RULES {
        errs.push(FieldError::too_many(
            &rp,
            Some(rules.len()),
            Some(MAX_POD_FAILURE_POLICY_RULES),
        ));
    }
    let actions = ["Count", "FailIndex", "FailJob", "Ignore"];
    for (i, rule) in rules.iter().enumerate() {
        let rulep = rp.index(i);
        let action = s(rule, "action");
        if action.is_empty() {
            errs.push(FieldError::required(
                &rulep.child("action"),
                "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
            ));
        } else if action == "FailIndex" {
            if !per_index {
                errs.push(FieldError::invalid(
                    &rulep.child("action"),
                    action,
                    "requires the backoffLimitPerIndex to be set",
                ));
            }
        } else if !actions.contains(&action) {
            errs.push(FieldError::not_supported(
                &rulep.child("action"),
                action,
                &actions,
            ));
        }
        let on_exit = get(rule, "onExitCodes");
        let on_conditions = arr(rule, "onPodConditions");
        if let Some(oe) = on_exit {
            let op = rulep.child("onExitCodes");
            let operator = s(oe, "operator");
            if operator.is_empty() {
                errs.push(FieldError::required(
                    &op.child("operator"),
                    "valid values: [\"In\" \"NotIn\"]",
                ));
            } else if operator != "In" && operator != "NotIn" {
                errs.push(FieldError::not_supported(
                    &op.child("operator"),
                    operator,
                    &["In", "NotIn"],
                ));
            }
            if let Some(c) = str_of(oe, "containerName")
                && !containers.iter().any(|n| n == c)
            {
                errs.push(FieldError::invalid(
                    &op.child("containerName"),
                    c,
                    "must be one of the container or initContainer names in the pod template",
                ));
            }
            let values: Vec<i64> = arr(oe, "values").iter().filter_map(Value::as_i64).collect();
            let vp = op.child("values");
            if values.is_empty() {
                errs.push(FieldError::invalid(
                    &vp,
                    BadValue::Raw("[]int32(nil)".to_owned()),
                    "at least one value is required",
                ));
            } else if values.len() > 255 {
                errs.push(FieldError::too_many(&vp, Some(values.len()), Some(255)));
            }
            let mut seen = HashSet::new();
            for (j, value) in values.iter().enumerate() {
                if operator == "In" && *value == 0 {
                    errs.push(FieldError::invalid(
                        &vp.index(j),
                        *value,
                        "must not be 0 for the In operator",
                    ));
                }
                if !seen.insert(*value) {
                    errs.push(FieldError::duplicate(&vp.index(j), *value));
                }
            }
            if values.windows(2).any(|w| w[0] > w[1]) {
                let shown: Vec<String> = values.iter().map(i64::to_string).collect();
                errs.push(FieldError::invalid(
                    &vp,
                    BadValue::Raw(format!("[]int32{{{}}}", shown.join(", "))),
                    "must be ordered",
                ));
            }
        }
        for (j, pattern) in on_conditions.iter().enumerate() {
            let pp = rulep.child("onPodConditions").index(j);
            errs.append(qualified_name(s(pattern, "type"), &pp.child("type")));
            let status = s(pattern, "status");
            if status.is_empty() {
                errs.push(FieldError::required(
                    &pp.child("status"),
                    "valid values: [\"False\" \"True\" \"Unknown\"]",
                ));
            } else if !["False", "True", "Unknown"].contains(&status) {
                errs.push(FieldError::not_supported(
                    &pp.child("status"),
                    status,
                    &["False", "True", "Unknown"],
                ));
            }
        }
        if on_exit.is_some() && !on_conditions.is_empty() {
            errs.push(FieldError::invalid(
                &rulep,
                BadValue::Omitted,
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ));
        }
        if on_exit.is_none() && on_conditions.is_empty() {
            errs.push(FieldError::invalid(
                &rulep,
                BadValue::Omitted,
                "specifying one of OnExitCodes and OnPodConditions is required",
            ));
        }
    }
    errs
}

/// `ValidateJobUpdate`: selector, completions (except elastic indexed jobs), completion mode,
/// pod failure policy and most of the template are immutable.
pub(super) fn job_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = meta::validate_object_meta_update(new, old);
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let sp = Path::new("spec");
    errs.append(job_spec_with_selector(spec, &sp));
    // ElasticIndexedJob is on in v1.33: indexed jobs may change completions with parallelism.
    let indexed = s(spec, "completionMode") == "Indexed";
    let completions = int_of(spec, "completions");
    if !semantic_eq(get(spec, "completions"), get(old_spec, "completions")) {
        if !indexed {
            errs.push(FieldError::invalid(
                &sp.child("completions"),
                int_ptr(completions),
                v::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        } else if let Some(c) = completions
            && Some(c) != int_of(spec, "parallelism")
        {
            errs.push(FieldError::invalid(
                &sp.child("completions"),
                c,
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    errs.append(immutable(
        get(spec, "selector"),
        get(old_spec, "selector"),
        get(spec, "selector").map_or(BadValue::Null, |s| BadValue::Raw(go_label_selector(s))),
        &sp.child("selector"),
    ));
    // Mutable scheduling directives: a suspended job that never started may change its
    // template's node affinity, node selector, tolerations, labels, annotations and gates.
    let never_started = get(new, "status").is_none_or(|st| get(st, "startTime").is_none());
    let mutable_scheduling = bool_of(spec, "suspend") == Some(true) && never_started;
    let mut new_tpl = get(spec, "template").cloned().unwrap_or(Value::Null);
    let mut old_tpl = get(old_spec, "template").cloned().unwrap_or(Value::Null);
    if mutable_scheduling {
        for tpl in [&mut new_tpl, &mut old_tpl] {
            if let Some(m) = tpl.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
            if let Some(m) = tpl.get_mut("spec").and_then(Value::as_object_mut) {
                m.remove("nodeSelector");
                m.remove("tolerations");
                m.remove("schedulingGates");
                if let Some(aff) = m.get_mut("affinity").and_then(Value::as_object_mut) {
                    aff.remove("nodeAffinity");
                }
            }
        }
    }
    if !semantic_eq(Some(&new_tpl), Some(&old_tpl)) {
        errs.push(FieldError::invalid(
            &sp.child("template"),
            super::util::bad(get(spec, "template")),
            v::FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    for key in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex"] {
        errs.append(immutable(
            get(spec, key),
            get(old_spec, key),
            super::util::bad(get(spec, key)),
            &sp.child(key),
        ));
    }
    errs
}

/// `ValidateCronJobCreate` / `ValidateCronJobUpdate`.
pub(super) fn cron_job(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = match old {
        None => meta::validate_object_meta(obj, true, NameRule::Subdomain),
        Some(old) => meta::validate_object_meta_update(obj, old),
    };
    let spec = spec_of(obj);
    let old_spec = old.map(spec_of);
    let sp = Path::new("spec");
    let schedule = s(spec, "schedule");
    let time_zone = str_of(spec, "timeZone");
    if schedule.is_empty() {
        errs.push(FieldError::required(&sp.child("schedule"), ""));
    } else {
        let allow_tz = old_spec.is_some_and(|o| s(o, "schedule").contains("TZ"));
        if let Err(e) = cron::parse_standard(schedule) {
            errs.push(FieldError::invalid(&sp.child("schedule"), schedule, e));
        }
        if allow_tz && schedule.contains("TZ") && time_zone.is_some() {
            errs.push(FieldError::invalid(
                &sp.child("schedule"),
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                &sp.child("schedule"),
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(sds) = int_of(spec, "startingDeadlineSeconds") {
        errs.append(nonnegative(sds, &sp.child("startingDeadlineSeconds")));
    }
    if old_spec.is_none_or(|o| str_of(o, "timeZone") != time_zone) {
        errs.append(validate_time_zone(time_zone, &sp.child("timeZone")));
    }
    match s(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(&sp.child("concurrencyPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            &sp.child("concurrencyPolicy"),
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jtp = sp.child("jobTemplate");
    let job_spec_v = spec.pointer("/jobTemplate/spec").unwrap_or(&Value::Null);
    errs.append(job_spec(job_spec_v, &jtp.child("spec")));
    if let Some(sel) = get(job_spec_v, "selector") {
        errs.push(FieldError::invalid(
            &jtp.child("spec").child("selector"),
            BadValue::Raw(go_label_selector(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if bool_of(job_spec_v, "manualSelector") == Some(true) {
        errs.push(FieldError::not_supported(
            &jtp.child("spec").child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    for key in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        if let Some(n) = int_of(spec, key) {
            errs.append(nonnegative(n, &sp.child(key)));
        }
    }
    if old.is_none() {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.len() > v::DNS1035_LABEL_MAX_LENGTH - 11 {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("name"),
                name,
                "must be no more than 52 characters",
            ));
        }
    }
    errs
}

/// Upstream's `validateTimeZone`.
fn validate_time_zone(tz: Option<&str>, p: &Path) -> ErrorList {
    let Some(tz) = tz else {
        return ErrorList::new();
    };
    if tz.is_empty() {
        return FieldError::invalid(p, tz, "timeZone must be nil or non-empty string").into();
    }
    for part in tz.split('/') {
        let valid_chars = (1..=14).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
        if part == "." || part == ".." || part.starts_with('-') || !valid_chars {
            return FieldError::invalid(p, tz, format!("unknown time zone {tz}")).into();
        }
    }
    let mut errs = ErrorList::new();
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            p,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = cron::load_location(tz) {
        errs.push(FieldError::invalid(p, tz, e));
    }
    errs
}
