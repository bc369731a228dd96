//! Events, of both `v1` and `events.k8s.io/v1`: `LAST SEEN  TYPE  REASON  OBJECT  MESSAGE`.
//!
//! Upstream stores both as one internal kind and prints that, so an `events.k8s.io/v1` event is
//! first mapped onto the core fields (`regarding` is the involved object, `note` the message,
//! the `deprecated*` fields the source, timestamps and count).

use k8s_openapi::api::core::v1::{self as corev1, ObjectReference};
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::format::{self, instant, micro_instant};
use super::{Column, Ctx, Printer, Row, cells, decode, descriptions as d};

pub(super) static EVENT: Printer = Printer {
    columns: &[
        Column::string("Last Seen", d::EV_LAST),
        Column::string("Type", d::EV_TYPE),
        Column::string("Reason", d::EV_REASON),
        Column::string("Object", d::EV_OBJECT),
        Column::string("Subobject", d::EV_SUBOBJECT).wide(),
        Column::string("Source", d::EV_SOURCE).wide(),
        Column::string("Message", d::EV_MESSAGE),
        Column::string("First Seen", d::EV_FIRST).wide(),
        Column::string("Count", d::EV_COUNT).wide(),
        Column::name().wide(),
    ],
    print: print_event,
};

/// The fields the columns read, in the core event's terms.
#[derive(Debug, Default)]
struct EventView {
    metadata: ObjectMeta,
    type_: String,
    reason: String,
    message: String,
    involved: ObjectReference,
    source_component: String,
    source_host: String,
    reporting_controller: String,
    reporting_instance: String,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    event_time: Option<Timestamp>,
    count: i32,
    /// The series' count and last observation, for events that recur.
    series: Option<(i32, Option<Timestamp>)>,
}

impl From<corev1::Event> for EventView {
    fn from(e: corev1::Event) -> Self {
        let source = e.source.unwrap_or_default();
        EventView {
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            involved: e.involved_object,
            source_component: source.component.unwrap_or_default(),
            source_host: source.host.unwrap_or_default(),
            reporting_controller: e.reporting_component.unwrap_or_default(),
            reporting_instance: e.reporting_instance.unwrap_or_default(),
            first: instant(e.first_timestamp.as_ref()),
            last: instant(e.last_timestamp.as_ref()),
            event_time: micro_instant(e.event_time.as_ref()),
            count: e.count.unwrap_or_default(),
            series: e.series.map(|s| {
                (
                    s.count.unwrap_or_default(),
                    micro_instant(s.last_observed_time.as_ref()),
                )
            }),
            metadata: e.metadata,
        }
    }
}

impl From<events::Event> for EventView {
    fn from(e: events::Event) -> Self {
        let source = e.deprecated_source.unwrap_or_default();
        EventView {
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.note.unwrap_or_default(),
            involved: e.regarding.unwrap_or_default(),
            source_component: source.component.unwrap_or_default(),
            source_host: source.host.unwrap_or_default(),
            reporting_controller: e.reporting_controller.unwrap_or_default(),
            reporting_instance: e.reporting_instance.unwrap_or_default(),
            first: instant(e.deprecated_first_timestamp.as_ref()),
            last: instant(e.deprecated_last_timestamp.as_ref()),
            event_time: micro_instant(e.event_time.as_ref()),
            count: e.deprecated_count.unwrap_or_default(),
            series: e
                .series
                .map(|s| (s.count, micro_instant(Some(&s.last_observed_time)))),
            metadata: e.metadata,
        }
    }
}

fn print_event(object: &Value, cx: &Ctx<'_>) -> Result<Row, serde_json::Error> {
    let event: EventView = match cx.api_version(object).as_str() {
        "events.k8s.io/v1" => decode::<events::Event>(object)?.into(),
        _ => decode::<corev1::Event>(object)?.into(),
    };
    let first = match event.first {
        Some(t) => format::since(cx.now, Some(t)),
        None => format::since(cx.now, event.event_time),
    };
    let mut last = match event.last {
        Some(t) => format::since(cx.now, Some(t)),
        None => first.clone(),
    };
    let count = match event.series {
        Some((count, observed)) => {
            last = format::since(cx.now, observed);
            count
        }
        // Singleton events of the new API have no count.
        None if event.count == 0 => 1,
        None => event.count,
    };
    let kind = event
        .involved
        .kind
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    let target = match event.involved.name.as_deref() {
        Some(name) if !name.is_empty() => format!("{kind}/{name}"),
        _ => kind,
    };
    let component = non_empty_or(&event.source_component, &event.reporting_controller);
    let instance = non_empty_or(&event.source_host, &event.reporting_instance);
    let source = if instance.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {instance}")
    };
    Ok(Row::new(cells![
        last,
        event.type_,
        event.reason,
        target,
        event.involved.field_path.unwrap_or_default(),
        source,
        event.message.trim(),
        first,
        count,
        format::name(&event.metadata),
    ]))
}

fn non_empty_or<'a>(first: &'a str, second: &'a str) -> &'a str {
    if first.is_empty() { second } else { first }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Gvk;
    use crate::printers::test_support::print;

    #[test]
    fn core_events_show_last_seen_object_and_message() {
        let (cells, _) = print(
            Gvk::new("", "v1", "Event"),
            r"
apiVersion: v1
kind: Event
metadata: {name: web.17a8}
type: Warning
reason: BackOff
message: '  Back-off restarting failed container  '
involvedObject: {kind: Pod, name: web, fieldPath: 'spec.containers{web}'}
source: {component: kubelet, host: node-1}
firstTimestamp: '2025-01-01T11:00:00Z'
lastTimestamp: '2025-01-01T11:55:00Z'
count: 7
",
        );
        assert_eq!(
            cells,
            json!([
                "5m",
                "Warning",
                "BackOff",
                "pod/web",
                "spec.containers{web}",
                "kubelet, node-1",
                "Back-off restarting failed container",
                "60m",
                7,
                "web.17a8"
            ]),
        );
    }

    #[test]
    fn new_style_events_use_event_time_series_and_reporting_controller() {
        let (cells, _) = print(
            Gvk::new("", "v1", "Event"),
            r"
metadata: {name: e1}
type: Normal
reason: Scheduled
message: assigned
involvedObject: {kind: Pod, name: web}
reportingComponent: default-scheduler
eventTime: '2025-01-01T11:59:30.123456Z'
",
        );
        assert_eq!(
            cells,
            // 29.877s ago: whole seconds truncate, as upstream's do.
            json!([
                "29s",
                "Normal",
                "Scheduled",
                "pod/web",
                "",
                "default-scheduler",
                "assigned",
                "29s",
                1,
                "e1"
            ]),
        );
        let (cells, _) = print(
            Gvk::new("", "v1", "Event"),
            r"
metadata: {name: e2}
involvedObject: {kind: Node}
eventTime: '2025-01-01T10:00:00.000000Z'
series: {count: 4, lastObservedTime: '2025-01-01T11:58:00.000000Z'}
",
        );
        assert_eq!(cells[0], "2m");
        assert_eq!(cells[3], "node");
        assert_eq!(cells[7], "120m");
        assert_eq!(cells[8], 4);
    }

    #[test]
    fn events_k8s_io_events_map_onto_the_core_columns() {
        let (cells, _) = print(
            Gvk::new("events.k8s.io", "v1", "Event"),
            r"
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: web.1}
type: Normal
reason: Pulled
note: Successfully pulled image
regarding: {kind: Pod, name: web, fieldPath: 'spec.containers{web}'}
reportingController: kubelet
reportingInstance: node-1
eventTime: '2025-01-01T11:59:00.000000Z'
deprecatedCount: 2
deprecatedFirstTimestamp: '2025-01-01T11:50:00Z'
deprecatedLastTimestamp: '2025-01-01T11:59:00Z'
",
        );
        assert_eq!(
            cells,
            json!([
                "60s",
                "Normal",
                "Pulled",
                "pod/web",
                "spec.containers{web}",
                "kubelet, node-1",
                "Successfully pulled image",
                "10m",
                2,
                "web.1"
            ]),
        );
    }

    #[test]
    fn events_without_any_time_read_unknown() {
        let (cells, _) = print(
            Gvk::new("", "v1", "Event"),
            "{metadata: {name: e}, involvedObject: {kind: Pod, name: p}}",
        );
        assert_eq!(cells[0], "<unknown>");
        assert_eq!(cells[7], "<unknown>");
    }
}
