//! Watch events as they appear on the wire (`{"type": "ADDED", "object": {...}}`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::status::Status;

/// The kind of change a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// An object was created (or is part of the initial state).
    #[serde(rename = "ADDED")]
    Added,
    /// An object changed.
    #[serde(rename = "MODIFIED")]
    Modified,
    /// An object was deleted; the object is its last state.
    #[serde(rename = "DELETED")]
    Deleted,
    /// A progress marker carrying only `metadata.resourceVersion` (and annotations).
    #[serde(rename = "BOOKMARK")]
    Bookmark,
    /// The watch failed; the object is a `Status`.
    #[serde(rename = "ERROR")]
    Error,
}

/// One watch event, serialised exactly as upstream's `metav1.WatchEvent` JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// The kind of change.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The object (a `Status` for errors).
    pub object: Value,
}

impl WatchEvent {
    /// An event of `event_type` carrying `object`.
    pub fn new(event_type: EventType, object: Value) -> Self {
        Self { event_type, object }
    }

    /// An `ERROR` event carrying a `Status` (e.g. 410 Expired for a too old resource version).
    pub fn error(status: &Status) -> Self {
        Self {
            event_type: EventType::Error,
            object: status.to_json(),
        }
    }

    /// A `BOOKMARK` event for `api_version`/`kind` at `resource_version`; with
    /// `initial_events_end` it carries the annotation that ends `sendInitialEvents`.
    pub fn bookmark(
        api_version: &str,
        kind: &str,
        resource_version: &str,
        initial_events_end: bool,
    ) -> Self {
        let mut metadata = serde_json::Map::new();
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::String(resource_version.to_owned()),
        );
        if initial_events_end {
            metadata.insert(
                "annotations".to_owned(),
                serde_json::json!({"k8s.io/initial-events-end": "true"}),
            );
        }
        let object =
            serde_json::json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
        Self {
            event_type: EventType::Bookmark,
            object,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::meta::GroupResource;

    #[test]
    fn events_serialise_with_upstream_field_names() {
        let ev = WatchEvent::new(EventType::Added, json!({"kind": "Pod"}));
        assert_eq!(
            serde_json::to_value(&ev).ok(),
            Some(json!({"type": "ADDED", "object": {"kind": "Pod"}}))
        );
        let back: WatchEvent =
            serde_json::from_value(json!({"type": "DELETED", "object": {}})).expect("valid event");
        assert_eq!(back.event_type, EventType::Deleted);
    }

    #[test]
    fn error_and_bookmark_events_carry_the_expected_objects() {
        let ev = WatchEvent::error(&Status::too_old_resource_version(1, 5));
        assert_eq!(ev.object["code"], json!(410));
        assert_eq!(ev.object["reason"], json!("Expired"));
        let bm = WatchEvent::bookmark("v1", "Pod", "42", true);
        assert_eq!(
            serde_json::to_value(&bm).ok(),
            Some(
                json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                "metadata": {"resourceVersion": "42", "annotations": {"k8s.io/initial-events-end": "true"}}}})
            )
        );
        let nf = WatchEvent::error(&Status::not_found(&GroupResource::new("", "pods"), "x"));
        assert_eq!(nf.event_type, EventType::Error);
    }
}
