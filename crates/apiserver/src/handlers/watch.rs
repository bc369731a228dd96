//! Watch responses: a chunked `application/json` stream of `{"type":…,"object":…}` lines, one
//! per event, written as soon as the registry yields it (over HTTP/1.1 and HTTP/2 alike), with
//! each object converted as negotiated (a one-row `Table` per event, headers on the first
//! only; `PartialObjectMetadata`), ending after `timeoutSeconds` or upstream's random
//! 30–60 minutes.

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use futures::StreamExt;
use tug_api::{
    Gvk,
    printers::{IncludeObject, TableOptions},
};
use tug_apimachinery::watch::{EventType, WatchEvent};

use crate::registry::EventStream;

use super::{
    negotiate::{Conversion, Output},
    response::{self, Shape},
};

/// Upstream's `minRequestTimeout`: watches without `timeoutSeconds` last between one and two
/// times this.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long a watch lasts: `timeoutSeconds`, else a random time between 30 and 60 minutes
/// (so that watches of many clients do not all end at once).
pub(crate) fn timeout(requested: Option<Duration>) -> Duration {
    if let Some(requested) = requested.filter(|d| !d.is_zero()) {
        return requested;
    }
    let mut bytes = [0u8; 4];
    let fraction =
        match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
    MIN_REQUEST_TIMEOUT.mul_f64(1.0 + fraction)
}

/// Converts one event's object as negotiated. `first` is whether this is the first object
/// converted to a table (only it carries the column definitions).
fn convert_event(
    event: WatchEvent,
    output: &Output,
    gvk: Gvk<'static>,
    include_object: IncludeObject,
    first_table: &mut bool,
) -> WatchEvent {
    let WatchEvent { event_type, object } = event;
    if event_type == EventType::Error {
        return WatchEvent { event_type, object };
    }
    let object = match output.conversion {
        Conversion::Table(_) if event_type == EventType::Bookmark => object,
        Conversion::Table(_) => {
            let options = TableOptions {
                include_object,
                no_headers: !*first_table,
                now: response::now(),
            };
            *first_table = false;
            response::convert(object.clone(), Shape::Object, output, gvk, Some(options))
                .unwrap_or(object)
        }
        Conversion::Partial(version) | Conversion::PartialList(version) => {
            response::partial(&object, version)
        }
        Conversion::None | Conversion::Discovery(_) => object,
    };
    WatchEvent { event_type, object }
}

/// One event as a line of the stream.
fn frame(event: &WatchEvent) -> Bytes {
    // The struct's field order is upstream's: `type` before `object`.
    let mut line = serde_json::to_vec(event).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    Bytes::from(line)
}

/// The streaming response of a watch.
pub(crate) fn respond(
    events: EventStream,
    output: Output,
    gvk: Gvk<'static>,
    include_object: IncludeObject,
    duration: Duration,
) -> Response {
    let mut first_table = true;
    let deadline = tokio::time::sleep(duration);
    let lines = events.take_until(deadline).map(move |event| {
        let event = convert_event(event, &output, gvk, include_object, &mut first_table);
        Ok::<_, std::convert::Infallible>(frame(&event))
    });
    let mut response = Response::new(Body::from_stream(lines));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use futures::stream;

    use serde_json::{Value, json};

    use super::*;
    use crate::handlers::negotiate::{Format, MetaVersion};

    const POD: Gvk<'static> = Gvk::new("", "v1", "Pod");

    fn pod(name: &str, rv: &str) -> Value {
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": "default", "resourceVersion": rv, "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"containers": []}, "status": {"phase": "Pending"}})
    }

    async fn lines(response: Response) -> Vec<Value> {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    #[tokio::test]
    async fn events_are_newline_delimited_json_in_upstreams_shape() {
        let events: EventStream = Box::pin(stream::iter(vec![
            WatchEvent::new(EventType::Added, pod("a", "1")),
            WatchEvent::bookmark("v1", "Pod", "2", true),
        ]));
        let response = respond(
            events,
            Output::JSON,
            POD,
            IncludeObject::Metadata,
            Duration::from_secs(5),
        );
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let lines = lines(response).await;
        assert_eq!(lines[0]["type"], "ADDED");
        assert_eq!(lines[0]["object"]["metadata"]["name"], "a");
        assert_eq!(lines[1]["type"], "BOOKMARK");
    }

    #[tokio::test]
    async fn each_line_names_the_type_before_the_object() {
        let events: EventStream = Box::pin(stream::iter(vec![WatchEvent::new(
            EventType::Deleted,
            json!({"kind": "Pod"}),
        )]));
        let response = respond(
            events,
            Output::JSON,
            POD,
            IncludeObject::Metadata,
            Duration::from_secs(5),
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        assert_eq!(
            &bytes[..],
            b"{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\"}}\n"
        );
    }

    #[tokio::test]
    async fn table_watches_carry_headers_on_the_first_event_only() {
        let events: EventStream = Box::pin(stream::iter(vec![
            WatchEvent::new(EventType::Added, pod("a", "1")),
            WatchEvent::new(EventType::Modified, pod("a", "2")),
        ]));
        let output = Output {
            format: Format::Json,
            conversion: Conversion::Table(MetaVersion::V1),
            pretty: false,
        };
        let lines = lines(respond(
            events,
            output,
            POD,
            IncludeObject::Metadata,
            Duration::from_secs(5),
        ))
        .await;
        assert_eq!(lines[0]["object"]["kind"], "Table");
        assert!(lines[0]["object"]["columnDefinitions"].is_array());
        assert!(lines[1]["object"]["columnDefinitions"].is_null());
        assert_eq!(lines[1]["object"]["rows"][0]["cells"][0], "a");
    }

    #[tokio::test]
    async fn a_watch_ends_at_its_timeout() {
        let events: EventStream = Box::pin(stream::pending());
        let response = respond(
            events,
            Output::JSON,
            POD,
            IncludeObject::Metadata,
            Duration::from_millis(50),
        );
        assert!(lines(response).await.is_empty());
    }

    #[test]
    fn default_timeouts_are_between_30_and_60_minutes() {
        let t = timeout(None);
        assert!(
            t >= MIN_REQUEST_TIMEOUT && t <= MIN_REQUEST_TIMEOUT * 2,
            "{t:?}"
        );
        assert_eq!(
            timeout(Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
