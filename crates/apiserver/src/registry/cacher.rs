//! The watch cache of one storage prefix (upstream's `storage/cacher`): the current objects in
//! memory, a bounded window of recent changes, and the watchers it feeds.
//!
//! One datastore watch per prefix feeds it, started right after an initial list at the same
//! revision, so nothing is missed and nothing is polled: every change arrives pushed from the
//! datastore's commit path. The datastore's progress notifications (requested periodically and
//! whenever a consistent read waits) advance the cache's revision while the prefix is idle.
//!
//! Watchers get their events through bounded channels filled under the cache's lock, so that
//! registering a watcher (and computing its initial events) and dispatching a change never
//! interleave: every change reaches a watcher exactly once, in revision order. A watcher whose
//! channel is full is closed rather than allowed to hold up the others; its client re-watches
//! from its last resource version.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use serde_json::Value;
use tokio::{
    sync::{mpsc, watch},
    time::{Instant, MissedTickBehavior, Sleep},
};
use tokio_util::sync::CancellationToken;
use tug_api::catalog::Resource;
use tug_apimachinery::{
    Status,
    watch::{EventType, WatchEvent},
};
use tug_storage::{
    Event, KeyValue, RangeRequest, Revision, Store, WatchMessage, WatchRequest, prefix_end,
};

use super::{codec, fields::Attrs, fields::Predicate};

/// How the watch cache is sized and paced.
#[derive(Debug, Clone)]
pub(crate) struct CacheOptions {
    /// The window always keeps at least this many recent events, however old.
    pub window_min_events: usize,
    /// The window never keeps more than this many events.
    pub window_max_events: usize,
    /// Events beyond the minimum are kept for this long (upstream sizes its cache to ~75 s).
    pub window_duration: Duration,
    /// How many events a watcher may have queued before it is closed as too slow.
    pub watcher_buffer: usize,
    /// How often watchers that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// How often the datastore reports progress on an idle prefix.
    pub progress_interval: Duration,
    /// How long a read waits for the cache to reach a revision.
    pub fresh_timeout: Duration,
}

/// One stored object as the cache holds it: the storage version, with its resource version,
/// and the attributes selectors look at.
#[derive(Debug)]
pub(crate) struct CachedObject {
    /// The datastore key.
    pub key: String,
    /// The object (storage version) with `metadata.resourceVersion` set.
    pub value: Value,
    /// Labels and selectable fields.
    pub attrs: Attrs,
}

impl CachedObject {
    /// Decodes a stored key-value of `kind`.
    pub(crate) fn decode(
        kv: &KeyValue,
        kind: &str,
        namespaced: bool,
    ) -> Result<Self, codec::CodecError> {
        let value = codec::decode(kv)?;
        Ok(Self::new(kv.key.clone(), value, kind, namespaced))
    }

    /// Wraps an object (storage version, resource version set).
    pub(crate) fn new(key: String, value: Value, kind: &str, namespaced: bool) -> Self {
        let attrs = Attrs::of(kind, namespaced, &value);
        Self { key, value, attrs }
    }

    /// A copy carrying another resource version (deleted objects carry the deletion's).
    fn at_revision(&self, revision: Revision) -> Self {
        let mut value = self.value.clone();
        codec::set_resource_version(&mut value, revision);
        Self {
            key: self.key.clone(),
            value,
            attrs: self.attrs.clone(),
        }
    }
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Modified,
    Deleted,
}

/// One change in the window.
#[derive(Debug)]
struct CacheEvent {
    revision: Revision,
    change: Change,
    /// The new state; for a deletion, the last state with the deletion's resource version.
    object: Arc<CachedObject>,
    /// The state before the change.
    prev: Option<Arc<CachedObject>>,
    at: Instant,
}

impl CacheEvent {
    /// The event a watcher with `predicate` sees, if any: a change that moves an object into
    /// the selection is `ADDED`, out of it `DELETED` (upstream's `cacheWatcher`).
    fn for_watcher(&self, predicate: &Predicate) -> Option<(EventType, Arc<CachedObject>)> {
        let now = self.change != Change::Deleted && predicate.matches(&self.object.attrs);
        let before = self
            .prev
            .as_ref()
            .is_some_and(|p| predicate.matches(&p.attrs));
        match (now, before) {
            (true, false) => Some((EventType::Added, self.object.clone())),
            (true, true) => Some((EventType::Modified, self.object.clone())),
            (false, true) => match (&self.change, &self.prev) {
                (Change::Deleted, _) | (_, None) => Some((EventType::Deleted, self.object.clone())),
                (_, Some(prev)) => Some((
                    EventType::Deleted,
                    Arc::new(prev.at_revision(self.revision)),
                )),
            },
            (false, false) => None,
        }
    }
}

/// What a watcher's channel carries.
#[derive(Debug)]
pub(crate) enum Live {
    /// A change.
    Event(EventType, Arc<CachedObject>),
    /// Every change up to this revision has been delivered.
    Bookmark(Revision),
}

struct Watcher {
    predicate: Arc<Predicate>,
    tx: mpsc::Sender<Live>,
    /// Changes at or below this revision are not for this watcher.
    after: Revision,
    bookmarks: bool,
    next_bookmark: Instant,
}

impl Watcher {
    /// Queues a change; `false` when the watcher is gone or too slow and must be dropped.
    fn send(&mut self, event: &CacheEvent) -> bool {
        if event.revision <= self.after {
            return true;
        }
        match event.for_watcher(&self.predicate) {
            Some((event_type, object)) => self.tx.try_send(Live::Event(event_type, object)).is_ok(),
            None => !self.tx.is_closed(),
        }
    }
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    window: VecDeque<Arc<CacheEvent>>,
    /// Every change after this revision is in the window.
    window_start: Revision,
    /// Every change up to this revision has been applied.
    revision: Revision,
    watchers: HashMap<u64, Watcher>,
    next_watcher: u64,
}

/// Where a new watcher starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// With the current state as `ADDED` events, optionally followed by the
    /// `k8s.io/initial-events-end` bookmark.
    State {
        /// Send the initial-events-end bookmark.
        end_bookmark: bool,
    },
    /// With the changes after this revision (`410 Expired` if the window no longer has them).
    After(Revision),
}

/// A registered watcher: its initial events and the channel of the rest.
pub(crate) struct Registration {
    initial: VecDeque<(EventType, Arc<CachedObject>)>,
    end_bookmark: Option<Revision>,
    rx: mpsc::Receiver<Live>,
}

/// The watch cache of one storage prefix.
pub(crate) struct Cacher {
    prefix: String,
    kind: &'static str,
    namespaced: bool,
    options: CacheOptions,
    state: Mutex<State>,
    revision: watch::Sender<Revision>,
    progress: mpsc::UnboundedSender<()>,
}

impl fmt::Debug for Cacher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cacher")
            .field("prefix", &self.prefix)
            .field("revision", &*self.revision.borrow())
            .finish_non_exhaustive()
    }
}

/// How many keys one page of the initial list reads.
const LIST_PAGE: usize = 1000;

/// Lists every object under `prefix` at one revision, page by page.
async fn list_all(
    store: &dyn Store,
    prefix: &str,
    kind: &str,
    namespaced: bool,
) -> tug_storage::Result<(BTreeMap<String, Arc<CachedObject>>, Revision)> {
    let end = prefix_end(prefix);
    let mut objects = BTreeMap::new();
    let mut start = prefix.to_owned();
    let mut revision = 0;
    loop {
        let resp = store
            .range(
                RangeRequest::range(start.clone(), end.clone())
                    .at_revision(revision)
                    .with_limit(LIST_PAGE),
            )
            .await?;
        if revision == 0 {
            revision = resp.revision;
        }
        for kv in &resp.kvs {
            match CachedObject::decode(kv, kind, namespaced) {
                Ok(obj) => {
                    objects.insert(kv.key.clone(), Arc::new(obj));
                }
                Err(error) => tracing::error!(key = %kv.key, %error, "skipping undecodable object"),
            }
        }
        match (resp.more, resp.kvs.last()) {
            (true, Some(last)) => start = format!("{}\0", last.key),
            _ => return Ok((objects, revision)),
        }
    }
}

impl Cacher {
    /// Loads `prefix` (with a trailing slash) and starts following it. Objects are of `kind`.
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        prefix: String,
        kind: &'static str,
        namespaced: bool,
        options: CacheOptions,
        shutdown: CancellationToken,
    ) -> tug_storage::Result<Arc<Self>> {
        let (objects, revision) = list_all(store.as_ref(), &prefix, kind, namespaced).await?;
        tracing::debug!(%prefix, objects = objects.len(), revision, "watch cache loaded");
        let (progress, progress_rx) = mpsc::unbounded_channel();
        let (revision_tx, _) = watch::channel(revision);
        let cacher = Arc::new(Self {
            prefix,
            kind,
            namespaced,
            options,
            state: Mutex::new(State {
                objects,
                window: VecDeque::new(),
                window_start: revision,
                revision,
                watchers: HashMap::new(),
                next_watcher: 0,
            }),
            revision: revision_tx,
            progress,
        });
        tokio::spawn(feed(cacher.clone(), store, progress_rx, shutdown));
        Ok(cacher)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key prefix this cache holds.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every change up to this revision is in the cache.
    pub(crate) fn revision(&self) -> Revision {
        self.lock().revision
    }

    /// Waits until the cache has applied every change up to `revision`, asking the datastore
    /// for a progress report so that an idle prefix catches up too. `false` on timeout.
    pub(crate) async fn wait_fresh(&self, revision: Revision) -> bool {
        let mut rx = self.revision.subscribe();
        if *rx.borrow_and_update() >= revision {
            return true;
        }
        let _ = self.progress.send(());
        let wait = async {
            loop {
                if rx.changed().await.is_err() {
                    return false;
                }
                if *rx.borrow_and_update() >= revision {
                    return true;
                }
            }
        };
        tokio::time::timeout(self.options.fresh_timeout, wait)
            .await
            .unwrap_or(false)
    }

    /// One object and the cache's revision.
    pub(crate) fn get(&self, key: &str) -> (Option<Arc<CachedObject>>, Revision) {
        let state = self.lock();
        (state.objects.get(key).cloned(), state.revision)
    }

    /// The objects under `prefix` (in key order) that `predicate` selects, and the revision
    /// they are current at.
    pub(crate) fn list(
        &self,
        prefix: &str,
        predicate: &Predicate,
    ) -> (Vec<Arc<CachedObject>>, Revision) {
        let end = prefix_end(prefix);
        let state = self.lock();
        let items = state
            .objects
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Excluded(end.as_str()),
            ))
            .filter(|(_, o)| predicate.matches(&o.attrs))
            .map(|(_, o)| o.clone())
            .collect();
        (items, state.revision)
    }

    /// Registers a watcher; the registration carries its initial events. A start revision the
    /// window no longer covers is `410 Expired` (`too old resource version: X (Y)`).
    pub(crate) fn register(
        &self,
        predicate: Arc<Predicate>,
        start: Start,
        bookmarks: bool,
    ) -> Result<Registration, Box<Status>> {
        let mut state = self.lock();
        let (initial, after, end_bookmark) = match start {
            Start::State { end_bookmark } => {
                let initial: VecDeque<_> = state
                    .objects
                    .values()
                    .filter(|o| predicate.matches(&o.attrs))
                    .map(|o| (EventType::Added, o.clone()))
                    .collect();
                (
                    initial,
                    state.revision,
                    end_bookmark.then_some(state.revision),
                )
            }
            Start::After(revision) => {
                if revision < state.window_start {
                    return Err(Box::new(Status::too_old_resource_version(
                        u64::try_from(revision).unwrap_or(0),
                        u64::try_from(state.window_start).unwrap_or(0),
                    )));
                }
                let initial: VecDeque<_> = state
                    .window
                    .iter()
                    .filter(|e| e.revision > revision)
                    .filter_map(|e| e.for_watcher(&predicate))
                    .collect();
                (initial, state.revision.max(revision), None)
            }
        };
        let (tx, rx) = mpsc::channel(self.options.watcher_buffer.max(1));
        let id = state.next_watcher;
        state.next_watcher += 1;
        state.watchers.insert(
            id,
            Watcher {
                predicate,
                tx,
                after,
                bookmarks,
                next_bookmark: Instant::now() + self.options.bookmark_interval,
            },
        );
        Ok(Registration {
            initial,
            end_bookmark,
            rx,
        })
    }

    /// Applies a batch of datastore changes and hands them to the watchers.
    fn apply(&self, events: Vec<Event>) {
        // Decode before taking the lock: JSON work must not hold up readers and watchers.
        let decoded: Vec<(Revision, String, Option<Arc<CachedObject>>)> = events
            .into_iter()
            .map(|event| match event {
                Event::Put { kv, .. } => {
                    let obj = match CachedObject::decode(&kv, self.kind, self.namespaced) {
                        Ok(obj) => Some(Arc::new(obj)),
                        Err(error) => {
                            tracing::error!(key = %kv.key, %error, "dropping undecodable object from the watch cache");
                            None
                        }
                    };
                    (kv.mod_revision, kv.key, obj)
                }
                Event::Delete { key, revision, .. } => (revision, key, None),
            })
            .collect();
        let now = Instant::now();
        let mut state = self.lock();
        for (revision, key, obj) in decoded {
            if revision <= state.revision {
                continue;
            }
            // A put that cannot be decoded counts as the object's disappearance.
            let cache_event = match obj {
                Some(obj) => {
                    let prev = state.objects.insert(key, obj.clone());
                    Some(CacheEvent {
                        revision,
                        change: if prev.is_some() {
                            Change::Modified
                        } else {
                            Change::Added
                        },
                        object: obj,
                        prev,
                        at: now,
                    })
                }
                None => state.objects.remove(&key).map(|prev| CacheEvent {
                    revision,
                    change: Change::Deleted,
                    object: Arc::new(prev.at_revision(revision)),
                    prev: Some(prev),
                    at: now,
                }),
            };
            state.revision = revision;
            if let Some(cache_event) = cache_event {
                let cache_event = Arc::new(cache_event);
                state.watchers.retain(|id, w| {
                    let keep = w.send(&cache_event);
                    if !keep {
                        tracing::debug!(prefix = %self.prefix, watcher = id, "closing a watcher that fell behind");
                    }
                    keep
                });
                state.window.push_back(cache_event);
            }
        }
        self.trim(&mut state, now);
        let revision = state.revision;
        drop(state);
        self.publish(revision);
    }

    /// Wakes readers waiting for the cache to reach a revision.
    fn publish(&self, revision: Revision) {
        self.revision.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
    }

    /// Notes that every change up to `revision` has been delivered.
    fn progress(&self, revision: Revision) {
        let mut state = self.lock();
        if revision > state.revision {
            state.revision = revision;
        }
        let revision = state.revision;
        drop(state);
        self.publish(revision);
    }

    /// Drops events the window no longer needs.
    fn trim(&self, state: &mut State, now: Instant) {
        while let Some(front) = state.window.front() {
            let len = state.window.len();
            let too_many = len > self.options.window_max_events;
            let too_old = len > self.options.window_min_events
                && now.duration_since(front.at) > self.options.window_duration;
            if !(too_many || too_old) {
                break;
            }
            state.window_start = front.revision;
            state.window.pop_front();
        }
    }

    /// Periodic work: bookmarks for watchers that are due, forgetting closed watchers, and
    /// trimming the window by age.
    fn tick(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        let revision = state.revision;
        state.watchers.retain(|_, w| {
            if w.tx.is_closed() {
                return false;
            }
            if w.bookmarks && now >= w.next_bookmark && revision > w.after {
                w.next_bookmark = now + self.options.bookmark_interval;
                return w.tx.try_send(Live::Bookmark(revision)).is_ok();
            }
            true
        });
        self.trim(&mut state, now);
    }

    /// Replaces the whole state after the datastore lost history the cache needed: every
    /// watcher is closed (its client re-watches and, if too far behind, relists).
    fn replace(&self, objects: BTreeMap<String, Arc<CachedObject>>, revision: Revision) {
        let mut state = self.lock();
        state.watchers.clear();
        state.objects = objects;
        state.window.clear();
        state.window_start = revision;
        state.revision = state.revision.max(revision);
        let revision = state.revision;
        drop(state);
        self.revision.send_replace(revision);
    }

    /// Closes every watcher.
    fn close_watchers(&self) {
        self.lock().watchers.clear();
    }
}

/// Why the feed's current datastore watch ended.
enum FeedEnd {
    Shutdown,
    Compacted,
    Closed,
    Failed(tug_storage::Error),
}

/// Follows the datastore for one cache until shutdown.
async fn feed(
    cacher: Arc<Cacher>,
    store: Arc<dyn Store>,
    mut progress_rx: mpsc::UnboundedReceiver<()>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(
        cacher
            .options
            .bookmark_interval
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10)),
    );
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let from = cacher.revision() + 1;
        let request = WatchRequest::prefix(cacher.prefix.clone(), from)
            .with_progress_interval(cacher.options.progress_interval);
        let end = match store.watch(request).await {
            Err(e) if e.is_compacted() => FeedEnd::Compacted,
            Err(tug_storage::Error::Closed) => FeedEnd::Closed,
            Err(e) => FeedEnd::Failed(e),
            Ok(mut stream) => loop {
                tokio::select! {
                    () = shutdown.cancelled() => break FeedEnd::Shutdown,
                    msg = stream.recv() => match msg {
                        Some(Ok(WatchMessage::Events(events))) => cacher.apply(events),
                        Some(Ok(WatchMessage::Progress(revision))) => cacher.progress(revision),
                        Some(Err(e)) if e.is_compacted() => break FeedEnd::Compacted,
                        Some(Err(tug_storage::Error::Closed)) | None => break FeedEnd::Closed,
                        Some(Err(e)) => break FeedEnd::Failed(e),
                    },
                    Some(()) = progress_rx.recv() => {
                        // One report answers every request queued so far.
                        while progress_rx.try_recv().is_ok() {}
                        stream.request_progress();
                    }
                    _ = ticker.tick() => cacher.tick(),
                }
            },
        };
        match end {
            FeedEnd::Shutdown => break,
            FeedEnd::Closed => {
                if store.status().await.is_err() {
                    tracing::debug!(prefix = %cacher.prefix, "datastore closed, watch cache stops");
                    break;
                }
            }
            FeedEnd::Compacted => {
                tracing::warn!(prefix = %cacher.prefix, "watch cache fell behind compaction, relisting");
                match list_all(
                    store.as_ref(),
                    &cacher.prefix,
                    cacher.kind,
                    cacher.namespaced,
                )
                .await
                {
                    Ok((objects, revision)) => {
                        cacher.replace(objects, revision);
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(prefix = %cacher.prefix, %error, "relisting failed");
                    }
                }
            }
            FeedEnd::Failed(error) => {
                tracing::warn!(prefix = %cacher.prefix, %error, "datastore watch failed, restarting");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    cacher.close_watchers();
}

/// A watch served from the cache: initial events, the initial-events-end bookmark, then live
/// changes and bookmarks, converted to the served version; ends at the deadline or when the
/// cache closes the watcher.
pub(crate) struct CacheWatch {
    resource: &'static Resource,
    initial: VecDeque<(EventType, Arc<CachedObject>)>,
    end_bookmark: Option<Revision>,
    rx: mpsc::Receiver<Live>,
    deadline: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl CacheWatch {
    /// A stream over a registration, serving `resource`'s version, ending after `timeout`.
    pub(crate) fn new(
        resource: &'static Resource,
        registration: Registration,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            resource,
            initial: registration.initial,
            end_bookmark: registration.end_bookmark,
            rx: registration.rx,
            deadline: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
            done: false,
        }
    }

    fn event(&self, event_type: EventType, object: &CachedObject) -> WatchEvent {
        WatchEvent::new(
            event_type,
            codec::to_served(self.resource, object.value.clone()),
        )
    }

    fn bookmark(&self, revision: Revision, initial_events_end: bool) -> WatchEvent {
        WatchEvent::bookmark(
            &self.resource.api_version(),
            self.resource.kind,
            &revision.to_string(),
            initial_events_end,
        )
    }
}

impl Stream for CacheWatch {
    type Item = WatchEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.done = true;
            return Poll::Ready(None);
        }
        if let Some((event_type, object)) = this.initial.pop_front() {
            return Poll::Ready(Some(this.event(event_type, &object)));
        }
        if let Some(revision) = this.end_bookmark.take() {
            return Poll::Ready(Some(this.bookmark(revision, true)));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Live::Event(event_type, object))) => {
                Poll::Ready(Some(this.event(event_type, &object)))
            }
            Poll::Ready(Some(Live::Bookmark(revision))) => {
                Poll::Ready(Some(this.bookmark(revision, false)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(name: &str, labels: Value, rev: i64) -> Arc<CachedObject> {
        let mut value = json!({"metadata": {"name": name, "namespace": "ns", "labels": labels}});
        codec::set_resource_version(&mut value, rev);
        Arc::new(CachedObject::new(
            format!("/registry/pods/ns/{name}"),
            value,
            "Pod",
            true,
        ))
    }

    fn selecting(selector: &str) -> Predicate {
        Predicate {
            labels: Some(tug_apimachinery::labels::Selector::parse(selector).expect("selector")),
            ..Predicate::default()
        }
    }

    #[test]
    fn label_changes_move_objects_in_and_out_of_a_watchers_selection() {
        let before = obj("a", json!({"app": "x"}), 1);
        let after = obj("a", json!({"app": "y"}), 2);
        let modified = CacheEvent {
            revision: 2,
            change: Change::Modified,
            object: after.clone(),
            prev: Some(before.clone()),
            at: Instant::now(),
        };
        let (t, o) = modified.for_watcher(&selecting("app=x")).expect("left");
        assert_eq!(t, EventType::Deleted);
        assert_eq!(o.value["metadata"]["resourceVersion"], json!("2"));
        assert_eq!(o.value["metadata"]["labels"], json!({"app": "x"}));
        let (t, _) = modified.for_watcher(&selecting("app=y")).expect("entered");
        assert_eq!(t, EventType::Added);
        let (t, _) = modified.for_watcher(&Predicate::default()).expect("stayed");
        assert_eq!(t, EventType::Modified);
        assert!(modified.for_watcher(&selecting("app=z")).is_none());
    }
}
