//! `autoscaling`: horizontal pod autoscalers (`v2`, and `v1` mapped onto `v2`) and the `scale`
//! subresource.

use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::format::{self, quantity, quantity_or_nil};
use super::{Column, Ctx, Printer, Row, cells, decode, descriptions as d};

/// The CPU utilization `autoscaling/v1` implies when it names no target.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

pub(super) static HORIZONTAL_POD_AUTOSCALER: Printer = Printer {
    columns: &[
        Column::name(),
        Column::string("Reference", d::HPA_REFERENCE),
        Column::string("Targets", d::HPA_METRICS),
        Column::string("MinPods", d::HPA_MIN),
        Column::string("MaxPods", d::HPA_MAX),
        Column::string("Replicas", d::HPA_REPLICAS),
        Column::age(),
    ],
    print: print_horizontal_pod_autoscaler,
};

/// What the columns read, in `v2` terms.
struct HpaView {
    metadata: ObjectMeta,
    reference: String,
    metrics: Vec<v2::MetricSpec>,
    current: Vec<v2::MetricStatus>,
    min_replicas: Option<i32>,
    max_replicas: i32,
    current_replicas: i32,
}

impl From<v2::HorizontalPodAutoscaler> for HpaView {
    fn from(hpa: v2::HorizontalPodAutoscaler) -> Self {
        let spec = hpa.spec.unwrap_or_default();
        let status = hpa.status.unwrap_or_default();
        HpaView {
            metadata: hpa.metadata,
            reference: format!(
                "{}/{}",
                spec.scale_target_ref.kind, spec.scale_target_ref.name
            ),
            metrics: spec.metrics.unwrap_or_default(),
            current: status.current_metrics.unwrap_or_default(),
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            current_replicas: status.current_replicas.unwrap_or_default(),
        }
    }
}

impl From<v1::HorizontalPodAutoscaler> for HpaView {
    /// `v1` knows only a CPU utilization target, 80% when unset.
    fn from(hpa: v1::HorizontalPodAutoscaler) -> Self {
        let spec = hpa.spec.unwrap_or_default();
        let status = hpa.status.unwrap_or_default();
        let cpu_target = spec
            .target_cpu_utilization_percentage
            .unwrap_or(DEFAULT_CPU_UTILIZATION);
        let metrics = vec![v2::MetricSpec {
            type_: "Resource".to_owned(),
            resource: Some(v2::ResourceMetricSource {
                name: "cpu".to_owned(),
                target: v2::MetricTarget {
                    type_: "Utilization".to_owned(),
                    average_utilization: Some(cpu_target),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }];
        let current = status
            .current_cpu_utilization_percentage
            .map(|cpu| v2::MetricStatus {
                type_: "Resource".to_owned(),
                resource: Some(v2::ResourceMetricStatus {
                    name: "cpu".to_owned(),
                    current: v2::MetricValueStatus {
                        average_utilization: Some(cpu),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            })
            .into_iter()
            .collect();
        HpaView {
            metadata: hpa.metadata,
            reference: format!(
                "{}/{}",
                spec.scale_target_ref.kind, spec.scale_target_ref.name
            ),
            metrics,
            current,
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            current_replicas: status.current_replicas,
        }
    }
}

fn print_horizontal_pod_autoscaler(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let hpa: HpaView = match cx.api_version(object).as_str() {
        "autoscaling/v1" => decode::<v1::HorizontalPodAutoscaler>(object)?.into(),
        _ => decode::<v2::HorizontalPodAutoscaler>(object)?.into(),
    };
    Ok(Row::new(cells![
        format::name(&hpa.metadata),
        hpa.reference,
        format_metrics(&hpa.metrics, &hpa.current),
        hpa.min_replicas
            .map_or_else(|| "<unset>".to_owned(), |n| n.to_string()),
        hpa.max_replicas,
        hpa.current_replicas,
        format::age(cx.now, &hpa.metadata),
    ]))
}

/// `current/target` per metric, paired with the status at the same index: `cpu: 45%/80%`,
/// `<unknown>/10 (avg)`; the first two then ` + N more...`; `<none>` without metrics.
fn format_metrics(specs: &[v2::MetricSpec], statuses: &[v2::MetricStatus]) -> String {
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    const MAX: usize = 2;
    let unknown = || "<unknown>".to_owned();
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let entry = match spec.type_.as_str() {
            "External" => {
                let target = spec.external.as_ref().map(|e| &e.target);
                let current = status.and_then(|s| s.external.as_ref()).map(|e| &e.current);
                value_or_average(target, current)
            }
            "Pods" => {
                let target = spec.pods.as_ref().map(|p| &p.target);
                let current = status
                    .and_then(|s| s.pods.as_ref())
                    .map_or_else(unknown, |p| {
                        quantity_or_nil(p.current.average_value.as_ref())
                    });
                format!(
                    "{current}/{}",
                    quantity_or_nil(target.and_then(|t| t.average_value.as_ref()))
                )
            }
            "Object" => {
                let target = spec.object.as_ref().map(|o| &o.target);
                let current = status.and_then(|s| s.object.as_ref()).map(|o| &o.current);
                value_or_average(target, current)
            }
            "Resource" => {
                let source = spec.resource.as_ref();
                let current = status.and_then(|s| s.resource.as_ref()).map(|r| &r.current);
                resource_entry(
                    source.map_or("", |r| r.name.as_str()),
                    source.map(|r| &r.target),
                    current,
                )
            }
            "ContainerResource" => {
                let source = spec.container_resource.as_ref();
                let current = status
                    .and_then(|s| s.container_resource.as_ref())
                    .map(|r| &r.current);
                resource_entry(
                    source.map_or("", |r| r.name.as_str()),
                    source.map(|r| &r.target),
                    current,
                )
            }
            _ => "<unknown type>".to_owned(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

/// An object or external metric: `current/target (avg)` for average targets, else
/// `current/target` of plain values.
fn value_or_average(
    target: Option<&v2::MetricTarget>,
    current: Option<&v2::MetricValueStatus>,
) -> String {
    match target.and_then(|t| t.average_value.as_ref()) {
        Some(average) => {
            let current = current
                .and_then(|c| c.average_value.as_ref())
                .map_or_else(|| "<unknown>".to_owned(), quantity);
            format!("{current}/{} (avg)", quantity(average))
        }
        None => {
            let current = current.map_or_else(
                || "<unknown>".to_owned(),
                |c| quantity_or_nil(c.value.as_ref()),
            );
            format!(
                "{current}/{}",
                quantity_or_nil(target.and_then(|t| t.value.as_ref()))
            )
        }
    }
}

/// A resource metric: `name: current/target` as average values, or as utilization percentages
/// (`<auto>` when the target names none).
fn resource_entry(
    name: &str,
    target: Option<&v2::MetricTarget>,
    current: Option<&v2::MetricValueStatus>,
) -> String {
    match target.and_then(|t| t.average_value.as_ref()) {
        Some(average) => {
            let current = current.map_or_else(
                || "<unknown>".to_owned(),
                |c| quantity_or_nil(c.average_value.as_ref()),
            );
            format!("{name}: {current}/{}", quantity(average))
        }
        None => {
            let current = current
                .and_then(|c| c.average_utilization)
                .map_or_else(|| "<unknown>".to_owned(), |u| format!("{u}%"));
            let target = target
                .and_then(|t| t.average_utilization)
                .map_or_else(|| "<auto>".to_owned(), |u| format!("{u}%"));
            format!("{name}: {current}/{target}")
        }
    }
}

pub(super) static SCALE: Printer = Printer {
    columns: &[
        // Upstream gives this one `Name` column no `name` format.
        Column::string("Name", d::NAME),
        Column::integer("Desired", d::SCALE_SPEC_REPLICAS),
        Column::integer("Available", d::SCALE_STATUS_REPLICAS),
        Column::age(),
    ],
    print: print_scale,
};

fn print_scale(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let scale: v1::Scale = decode(object)?;
    Ok(Row::new(cells![
        format::name(&scale.metadata),
        scale.spec.and_then(|s| s.replicas).unwrap_or_default(),
        scale.status.map_or(0, |s| s.replicas),
        format::age(cx.now, &scale.metadata),
    ]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Gvk;
    use crate::printers::test_support::print;

    fn targets(yaml: &str) -> serde_json::Value {
        print(
            Gvk::new("autoscaling", "v2", "HorizontalPodAutoscaler"),
            yaml,
        )
        .0[2]
            .clone()
    }

    #[test]
    fn v2_autoscalers_show_reference_targets_and_bounds() {
        let (cells, _) = print(
            Gvk::new("autoscaling", "v2", "HorizontalPodAutoscaler"),
            r"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}}
  - {type: Resource, resource: {name: memory, target: {type: AverageValue, averageValue: 512Mi}}}
status:
  currentReplicas: 3
  desiredReplicas: 3
  currentMetrics:
  - {type: Resource, resource: {name: cpu, current: {averageUtilization: 45, averageValue: 120m}}}
  - {type: Resource, resource: {name: memory, current: {averageValue: 300Mi}}}
",
        );
        assert_eq!(
            cells,
            json!([
                "web",
                "Deployment/web",
                "cpu: 45%/80%, memory: 300Mi/512Mi",
                "2",
                10,
                3,
                "<unknown>"
            ]),
        );
    }

    #[test]
    fn metrics_without_status_are_unknown_and_the_list_is_capped_at_two() {
        assert_eq!(
            targets(
                r"
metadata: {name: h}
spec:
  scaleTargetRef: {kind: Deployment, name: d}
  maxReplicas: 5
  metrics:
  - {type: Pods, pods: {metric: {name: qps}, target: {type: AverageValue, averageValue: '10'}}}
  - {type: External, external: {metric: {name: queue}, target: {type: AverageValue, averageValue: '30'}}}
  - {type: Object, object: {metric: {name: hits}, describedObject: {kind: Service, name: s}, target: {type: Value, value: 2k}}}
"
            ),
            "<unknown>/10, <unknown>/30 (avg) + 1 more...",
        );
        assert_eq!(
            targets(
                r"
metadata: {name: h}
spec:
  scaleTargetRef: {kind: Deployment, name: d}
  maxReplicas: 5
  metrics:
  - {type: Object, object: {metric: {name: hits}, describedObject: {kind: Service, name: s}, target: {type: Value, value: 2k}}}
  - {type: ContainerResource, containerResource: {name: cpu, container: app, target: {type: Utilization}}}
status:
  desiredReplicas: 1
  currentMetrics:
  - {type: Object, object: {metric: {name: hits}, describedObject: {kind: Service, name: s}, current: {value: '1500'}}}
"
            ),
            "1500/2k, cpu: <unknown>/<auto>",
        );
        assert_eq!(
            targets(
                "{metadata: {name: h}, spec: {scaleTargetRef: {kind: D, name: d}, maxReplicas: 1}}"
            ),
            "<none>",
        );
    }

    #[test]
    fn v1_autoscalers_read_as_a_cpu_utilization_target() {
        let (cells, _) = print(
            Gvk::new("autoscaling", "v1", "HorizontalPodAutoscaler"),
            r"
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 4}
status: {currentReplicas: 1, desiredReplicas: 1, currentCPUUtilizationPercentage: 12}
",
        );
        assert_eq!(
            cells,
            json!([
                "web",
                "Deployment/web",
                "cpu: 12%/80%",
                "<unset>",
                4,
                1,
                "<unknown>"
            ])
        );
    }

    #[test]
    fn list_items_without_api_version_read_as_the_printed_version() {
        let (cells, _) = print(
            Gvk::new("autoscaling", "v1", "HorizontalPodAutoscaler"),
            "{metadata: {name: web}, spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 4, targetCPUUtilizationPercentage: 50}}",
        );
        assert_eq!(cells[2], "cpu: <unknown>/50%");
    }

    #[test]
    fn scales_show_desired_and_available_replicas() {
        let (cells, _) = print(
            Gvk::new("autoscaling", "v1", "Scale"),
            "{metadata: {name: web}, spec: {replicas: 3}, status: {replicas: 2, selector: app=web}}",
        );
        assert_eq!(cells, json!(["web", 3, 2, "<unknown>"]));
    }
}
