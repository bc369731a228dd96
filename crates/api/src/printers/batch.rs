//! `batch` workloads: jobs and cron jobs.

use k8s_openapi::api::batch::v1::{CronJob, Job, JobCondition};
use serde_json::Value;

use super::duration::human_duration;
use super::format::{self, instant};
use super::{Column, Ctx, Doc, Printer, Row, cells, decode, descriptions as d};

const CONTAINERS: Doc = Doc::literal("Names of each container in the template.");
const IMAGES: Doc = Doc::literal("Images referenced by each container in the template.");

pub(super) static JOB: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Status", Doc::literal("Status of the job.")),
        Column::string("Completions", d::JOB_SUCCEEDED),
        Column::string(
            "Duration",
            Doc::literal("Time required to complete the job."),
        ),
        Column::age(),
        Column::string("Containers", CONTAINERS).wide(),
        Column::string("Images", IMAGES).wide(),
        Column::string("Selector", d::JOB_SELECTOR).wide(),
    ],
    print: print_job,
};

/// Whether the first condition of `type_` is `True`.
fn has_condition(conditions: &[JobCondition], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .is_some_and(|c| c.status == "True")
}

fn print_job(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let job: Job = decode(object)?;
    let spec = job.spec.unwrap_or_default();
    let status = job.status.unwrap_or_default();
    let succeeded = status.succeeded.unwrap_or_default();
    let completions = match spec.completions {
        Some(n) => format!("{succeeded}/{n}"),
        None => match spec.parallelism.unwrap_or_default() {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = instant(status.start_time.as_ref());
    let duration = match (start, instant(status.completion_time.as_ref())) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(cx.now.duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let state = if has_condition(conditions, "Complete") {
        "Complete"
    } else if has_condition(conditions, "Failed") {
        "Failed"
    } else if job.metadata.deletion_timestamp.is_some() {
        "Terminating"
    } else if has_condition(conditions, "Suspended") {
        "Suspended"
    } else if has_condition(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let containers = spec.template.spec.map(|s| s.containers).unwrap_or_default();
    let (names, images) = format::containers(&containers);
    Ok(Row::new(cells![
        format::name(&job.metadata),
        state,
        completions,
        duration,
        format::age(cx.now, &job.metadata),
        names,
        images,
        format::label_selector(spec.selector.as_ref()),
    ]))
}

pub(super) static CRON_JOB: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Schedule", d::CJ_SCHEDULE),
        Column::string("Timezone", d::CJ_TIMEZONE),
        Column::boolean("Suspend", d::CJ_SUSPEND),
        Column::integer("Active", d::CJ_ACTIVE),
        Column::string("Last Schedule", d::CJ_LAST_SCHEDULE),
        Column::age(),
        Column::string("Containers", CONTAINERS).wide(),
        Column::string("Images", IMAGES).wide(),
        Column::string("Selector", d::JOB_SELECTOR).wide(),
    ],
    print: print_cron_job,
};

fn print_cron_job(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let cron: CronJob = decode(object)?;
    let spec = cron.spec.unwrap_or_default();
    let status = cron.status.unwrap_or_default();
    let last_schedule = match status.last_schedule_time.as_ref() {
        Some(t) => format::since(cx.now, instant(Some(t))),
        None => "<none>".to_owned(),
    };
    let job_spec = spec.job_template.spec.unwrap_or_default();
    let containers = job_spec
        .template
        .spec
        .map(|s| s.containers)
        .unwrap_or_default();
    let (names, images) = format::containers(&containers);
    Ok(Row::new(cells![
        format::name(&cron.metadata),
        spec.schedule,
        spec.time_zone.unwrap_or_else(|| "<none>".to_owned()),
        format::bool_ptr(spec.suspend),
        status.active.map_or(0, |a| a.len()),
        last_schedule,
        format::age(cx.now, &cron.metadata),
        names,
        images,
        format::label_selector(job_spec.selector.as_ref()),
    ]))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::Gvk;
    use crate::printers::test_support::print;

    /// Prints one `batch/v1` object of `kind` from YAML and compares all its cells.
    fn check(kind: &str, yaml: &str, expected: Value) {
        let (cells, _) = print(Gvk::new("batch", "v1", kind), yaml);
        assert_eq!(cells, expected, "{kind}\n{yaml}");
    }

    const TEMPLATE: &str = "template: {spec: {containers: [{name: pi, image: perl}]}}";

    #[test]
    fn jobs_show_status_completions_and_duration() {
        check(
            "Job",
            &format!(
                "
metadata: {{name: pi, creationTimestamp: '2025-01-01T11:50:00Z'}}
spec: {{completions: 3, selector: {{matchLabels: {{batch.kubernetes.io/controller-uid: u1}}}}, {TEMPLATE}}}
status:
  succeeded: 3
  startTime: '2025-01-01T11:50:00Z'
  completionTime: '2025-01-01T11:52:15Z'
  conditions: [{{type: SuccessCriteriaMet, status: 'True'}}, {{type: Complete, status: 'True'}}]
"
            ),
            json!(["pi", "Complete", "3/3", "2m15s", "10m", "pi", "perl", "batch.kubernetes.io/controller-uid=u1"]),
        );
        check(
            "Job",
            &format!(
                "{{metadata: {{name: w}}, spec: {{parallelism: 4, {TEMPLATE}}}, status: {{succeeded: 1, startTime: '2025-01-01T11:59:00Z'}}}}"
            ),
            json!([
                "w",
                "Running",
                "1/1 of 4",
                "60s",
                "<unknown>",
                "pi",
                "perl",
                "<none>"
            ]),
        );
        check(
            "Job",
            &format!("{{metadata: {{name: n}}, spec: {{{TEMPLATE}}}}}"),
            json!([
                "n",
                "Running",
                "0/1",
                "",
                "<unknown>",
                "pi",
                "perl",
                "<none>"
            ]),
        );
    }

    #[test]
    fn job_status_prefers_terminal_conditions_over_deletion() {
        let status = |extra: &str, conditions: &str| {
            let yaml = format!(
                "{{metadata: {{name: j{extra}}}, spec: {{{TEMPLATE}}}, status: {{conditions: {conditions}}}}}"
            );
            print(Gvk::new("batch", "v1", "Job"), &yaml).0[1].clone()
        };
        let deleting = ", deletionTimestamp: '2025-01-01T11:00:00Z'";
        assert_eq!(status("", "[{type: Failed, status: 'True'}]"), "Failed");
        assert_eq!(
            status(deleting, "[{type: Failed, status: 'True'}]"),
            "Failed"
        );
        assert_eq!(
            status(deleting, "[{type: Suspended, status: 'True'}]"),
            "Terminating"
        );
        assert_eq!(
            status("", "[{type: Suspended, status: 'True'}]"),
            "Suspended"
        );
        assert_eq!(
            status("", "[{type: FailureTarget, status: 'True'}]"),
            "FailureTarget"
        );
        assert_eq!(status("", "[{type: Complete, status: 'False'}]"), "Running");
    }

    #[test]
    fn cron_jobs_show_schedule_suspension_and_last_run() {
        check(
            "CronJob",
            &format!(
                "
metadata: {{name: nightly, creationTimestamp: '2024-12-25T12:00:00Z'}}
spec: {{schedule: '0 3 * * *', timeZone: Europe/Paris, suspend: false, jobTemplate: {{spec: {{{TEMPLATE}}}}}}}
status: {{active: [{{name: nightly-1}}], lastScheduleTime: '2025-01-01T03:00:00Z'}}
"
            ),
            json!(["nightly", "0 3 * * *", "Europe/Paris", "False", 1, "9h", "7d", "pi", "perl", "<none>"]),
        );
        check(
            "CronJob",
            &format!(
                "{{metadata: {{name: c}}, spec: {{schedule: '@hourly', jobTemplate: {{spec: {{{TEMPLATE}}}}}}}}}"
            ),
            json!([
                "c",
                "@hourly",
                "<none>",
                "<unset>",
                0,
                "<none>",
                "<unknown>",
                "pi",
                "perl",
                "<none>"
            ]),
        );
    }
}
