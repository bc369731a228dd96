//! A recorder of core/v1 Events, what `kubectl describe` shows under "Events:". Like
//! client-go's recorder it writes in the background (a component never waits on an event) and
//! folds a repeat of the same event on the same object into one Event whose `count` grows.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};

/// How long a repeat is folded into the earlier Event (upstream's aggregation window).
const REPEAT_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How many recent events are remembered for folding.
const MAX_REMEMBERED: usize = 4096;
/// Events written at once: kube-rs speaks HTTP/1.1, so each concurrent write is a connection
/// of its own; a bound keeps a burst of events from opening hundreds.
const CONCURRENT_WRITES: usize = 16;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

#[derive(Debug)]
struct Seen {
    name: String,
    count: i32,
    at: Instant,
}

/// What identifies a repeat: involved object, type, reason and message.
type RepeatKey = (String, String, String, String);

/// Records Events for one component (`default-scheduler`, `kubelet` …).
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    host: Option<String>,
    seen: Arc<Mutex<HashMap<RepeatKey, Seen>>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("component", &self.component)
            .finish()
    }
}

impl EventRecorder {
    /// A recorder writing as `component` (and, for node components, `host`).
    pub fn new(client: kube::Client, component: &str, host: Option<&str>) -> Self {
        Self {
            client,
            component: component.to_owned(),
            host: host.map(str::to_owned),
            seen: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_WRITES)),
        }
    }

    /// Records an event about `object` in the background.
    pub fn record(&self, object: ObjectReference, kind: EventType, reason: &str, message: String) {
        let this = self.clone();
        let reason = reason.to_owned();
        tokio::spawn(async move {
            let Ok(_slot) = this.slots.acquire().await else {
                return;
            };
            if let Err(e) = this.write(object, kind, &reason, message).await {
                tracing::debug!(%reason, error = %e, "could not record event");
            }
        });
    }

    /// Records an event and waits for it to be written.
    pub async fn write(
        &self,
        object: ObjectReference,
        kind: EventType,
        reason: &str,
        message: String,
    ) -> anyhow::Result<()> {
        let namespace = object
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let key = (
            object
                .uid
                .clone()
                .or_else(|| object.name.clone())
                .unwrap_or_default(),
            kind.as_str().to_owned(),
            reason.to_owned(),
            message.clone(),
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = crate::now_time();
        let repeat = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.len() > MAX_REMEMBERED {
                seen.retain(|_, s| s.at.elapsed() < REPEAT_WINDOW);
                if seen.len() > MAX_REMEMBERED {
                    seen.clear();
                }
            }
            match seen.get_mut(&key) {
                Some(s) if s.at.elapsed() < REPEAT_WINDOW => {
                    s.count += 1;
                    s.at = Instant::now();
                    Some((s.name.clone(), s.count))
                }
                _ => None,
            }
        };
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({"count": count, "lastTimestamp": now});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        let name = format!(
            "{}.{:x}",
            object.name.as_deref().unwrap_or("object"),
            k8s_openapi::jiff::Timestamp::now().as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace),
                ..Default::default()
            },
            involved_object: object,
            reason: Some(reason.to_owned()),
            message: Some(message),
            type_: Some(kind.as_str().to_owned()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            ..Default::default()
        };
        api.create(&PostParams::default(), &event).await?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.insert(
            key,
            Seen {
                name,
                count: 1,
                at: Instant::now(),
            },
        );
        Ok(())
    }
}

/// A reference to an object for `involvedObject`.
pub fn object_reference<K>(obj: &K) -> ObjectReference
where
    K: kube::Resource<DynamicType = ()>,
{
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}
