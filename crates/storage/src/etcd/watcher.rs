//! The task behind one etcd-backed [`WatchStream`]: it translates etcd watch responses, asks
//! for progress, and re-establishes the etcd watch when its gRPC stream breaks.
//!
//! **Exactly once, in order, across reconnects.** The task remembers the revision after the
//! last one it delivered (`next`). etcd never splits one revision's events over two responses
//! (we do not ask for fragments), so a new etcd watch from `next` continues exactly where the
//! broken one stopped; events below `next` are dropped should a server repeat them. If history
//! was compacted past `next` meanwhile, etcd says so and the stream ends with
//! [`Error::Compacted`], so the caller lists again; if no member answers within
//! `watch_retry_timeout`, it ends with [`Error::Unavailable`]. Events are never skipped
//! silently.
//!
//! **Progress.** Each etcd watch is created with `progress_notify`, so etcd's own periodic
//! notifications (sent in order with the events) become [`WatchMessage::Progress`].
//! [`WatchStream::request_progress`] and `progress_interval` send etcd a `WatchProgressRequest`.
//! etcd before 3.4.31/3.5.13 answers it with its current revision *without* waiting for events
//! already queued for the watcher (etcd issues 15220, 17529), so the answer may overtake events
//! it claims to cover. On such servers the answer's revision `R` is only trusted after a
//! barrier: a second watcher on the same gRPC stream, over every key from revision `R`. Its
//! first message (the event at `R`, or a compaction notice) travels through the same queue
//! behind every event etcd had already queued for our watcher when it read `R`, so once it
//! arrives, everything up to `R` has been delivered. The barrier watcher is then cancelled. A
//! barrier that gets no answer (possible only if `R`'s events were compacted at exactly `R`)
//! gives up after a while and reports only what is certain: the last delivered revision.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use etcd_client::{
    WatchOptions, WatchRequestSender, WatchResponseStream,
    proto::{PbEvent, PbWatchResponse},
};
use futures::StreamExt;
use tokio::{sync::mpsc, time::Instant};

use super::{Failure, Kind, Shared, etcd_key, key_value, kind, unavailable_msg};
use crate::{Error, Event, Result, Revision, WatchMessage, WatchRequest, WatchStream};

/// Messages buffered between the task and the [`WatchStream`] before the task waits (and, in
/// turn, etcd holds events back for this watcher).
const CHANNEL_CAPACITY: usize = 256;

/// How long a progress barrier may take before the task gives up on it.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// etcd's event type for a deletion (`mvccpb.Event.EventType.DELETE`); a put is 0.
const DELETE: i32 = 1;

/// etcd's watch id of a progress response that answers a `WatchProgressRequest`.
const PROGRESS_RESPONSE_ID: i64 = -1;

/// Starts an etcd watch for `req` and the task that feeds the returned stream.
pub(super) async fn start(shared: Arc<Shared>, req: WatchRequest) -> Result<WatchStream> {
    let spec = Spec::new(&req)?;
    let conn = spec
        .open(&shared, req.start_revision)
        .await
        .map_err(|(e, _)| e)?;
    let next = if req.start_revision > 0 {
        req.start_revision
    } else {
        conn.created_revision + 1
    };
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let task = Task {
        shared,
        spec,
        tx,
        progress_rx,
        progress_interval: req.progress_interval,
        next,
        last_event: 0,
        idle_deadline: req.progress_interval.map(|i| Instant::now() + i),
        conn,
        progress_wanted: false,
        barrier: None,
        pending_creates: VecDeque::new(),
    };
    tokio::spawn(task.run());
    Ok(WatchStream::new(rx, progress_tx))
}

/// What is watched, in etcd's terms.
#[derive(Debug)]
struct Spec {
    /// For messages: the key as the caller gave it.
    name: String,
    key: Vec<u8>,
    range_end: Option<Vec<u8>>,
}

/// One established etcd watch: its gRPC stream and our watcher's id on it.
struct Conn {
    sender: WatchRequestSender,
    responses: WatchResponseStream,
    watch_id: i64,
    /// The store revision when etcd created the watcher.
    created_revision: Revision,
}

impl Spec {
    fn new(req: &WatchRequest) -> Result<Self> {
        Ok(Self {
            name: req.key.clone(),
            key: etcd_key(&req.key, req.range_end.is_some())?,
            range_end: req.range_end.as_ref().map(|e| e.as_bytes().to_vec()),
        })
    }

    /// Opens a gRPC watch stream with our watcher from `start` (`0`: now) and waits for etcd to
    /// confirm it. The flag says whether trying again later may succeed.
    async fn open(
        &self,
        shared: &Shared,
        start: Revision,
    ) -> std::result::Result<Conn, (Error, bool)> {
        let what = format!("watch {:?}", self.name);
        let mut options = WatchOptions::new()
            .with_start_revision(start)
            .with_prev_key()
            .with_progress_notify();
        if let Some(end) = &self.range_end {
            options = options.with_range(end.clone());
        }
        let timeout = shared.config.request_timeout;
        let opening = async {
            let mut client = shared.client.watch_client();
            let stream = client
                .watch(self.key.clone(), Some(options))
                .await
                .map_err(|e| failed(shared, &what, e))?;
            let (sender, mut responses) = stream.split();
            match responses.message().await {
                Ok(Some(resp)) if resp.0.created && !resp.0.canceled => Ok(Conn {
                    sender,
                    responses,
                    watch_id: resp.0.watch_id,
                    created_revision: resp.0.header.map_or(0, |h| h.revision),
                }),
                Ok(Some(resp)) if resp.0.created => {
                    // etcd refused the watcher itself, e.g. an empty range: not transient.
                    let reason = resp.0.cancel_reason;
                    Err((
                        Error::InvalidArgument(format!("etcd refused {what}: {reason}")),
                        false,
                    ))
                }
                Ok(Some(resp)) => Err((
                    unavailable_msg(
                        &shared.endpoints,
                        format!("{what}: unexpected first response {:?}", resp.0),
                    ),
                    true,
                )),
                Ok(None) => Err((
                    unavailable_msg(&shared.endpoints, format!("{what}: stream closed")),
                    true,
                )),
                Err(e) => Err(failed(shared, &what, e)),
            }
        };
        match tokio::time::timeout(timeout, opening).await {
            Ok(result) => result,
            Err(_) => Err((
                unavailable_msg(
                    &shared.endpoints,
                    format!("{what}: no answer within {timeout:?}"),
                ),
                true,
            )),
        }
    }
}

fn failed(shared: &Shared, what: &str, error: etcd_client::Error) -> (Error, bool) {
    let retry = kind(&error) == Kind::Transient;
    let error = match shared.classify(what, error) {
        Failure::Other(e) => e,
        other => unavailable_msg(&shared.endpoints, format!("{what}: unexpected {other:?}")),
    };
    (error, retry)
}

/// A progress barrier in flight, see the module docs.
#[derive(Debug)]
struct Barrier {
    /// The revision the progress response reported.
    revision: Revision,
    /// The barrier watcher's id, once etcd created it.
    watch_id: Option<i64>,
    deadline: Instant,
}

/// The state of one watch.
struct Task {
    shared: Arc<Shared>,
    spec: Spec,
    tx: mpsc::Sender<Result<WatchMessage>>,
    progress_rx: mpsc::UnboundedReceiver<()>,
    progress_interval: Option<Duration>,
    /// The first revision not delivered yet: every change below it has been delivered.
    next: Revision,
    /// The revision of the last event delivered (`0`: none). Below `next`, but lower than it
    /// after a progress notification.
    last_event: Revision,
    /// When the idle timer fires (with `progress_interval`).
    idle_deadline: Option<Instant>,
    conn: Conn,
    /// A progress notification was asked for and not yet delivered.
    progress_wanted: bool,
    barrier: Option<Barrier>,
    /// Barrier watchers requested on the current stream whose creation etcd has not confirmed
    /// yet, oldest first: `true` if still wanted. etcd confirms creations in request order.
    pending_creates: VecDeque<bool>,
}

/// What woke the task.
enum Input {
    Response(Option<std::result::Result<etcd_client::WatchResponse, etcd_client::Error>>),
    ProgressRequested,
    Idle,
    BarrierExpired,
    Closed,
}

/// What to do after handling an input.
enum Flow {
    Continue,
    Reconnect(String),
    Stop,
}

impl Task {
    async fn run(mut self) {
        let mut progress_open = true;
        loop {
            let barrier_deadline = self.barrier.as_ref().map(|b| b.deadline);
            let idle_deadline = self.idle_deadline;
            let input = tokio::select! {
                biased;
                _ = self.tx.closed() => Input::Closed,
                resp = self.conn.responses.next() => Input::Response(resp),
                request = self.progress_rx.recv(), if progress_open => match request {
                    Some(()) => Input::ProgressRequested,
                    None => {
                        // The stream is gone; `tx.closed()` fires next.
                        progress_open = false;
                        continue;
                    }
                },
                _ = sleep_until(idle_deadline), if idle_deadline.is_some() => Input::Idle,
                _ = sleep_until(barrier_deadline), if barrier_deadline.is_some() => {
                    Input::BarrierExpired
                }
            };
            let flow = match input {
                Input::Closed => Flow::Stop,
                Input::Response(Some(Ok(resp))) => self.on_response(resp.0).await,
                Input::Response(Some(Err(e))) => Flow::Reconnect(e.to_string()),
                Input::Response(None) => Flow::Reconnect("etcd closed the stream".to_string()),
                Input::ProgressRequested => self.ask_progress().await,
                Input::Idle => {
                    self.touch();
                    self.ask_progress().await
                }
                Input::BarrierExpired => self.barrier_expired().await,
            };
            match flow {
                Flow::Continue => {}
                Flow::Stop => return,
                Flow::Reconnect(why) => {
                    if !self.reconnect(&why).await {
                        return;
                    }
                }
            }
        }
    }

    /// Handles one etcd response on the current stream.
    async fn on_response(&mut self, resp: PbWatchResponse) -> Flow {
        if resp.watch_id != self.conn.watch_id {
            return self.on_other_watcher(resp).await;
        }
        if resp.compact_revision > 0 {
            self.shared.note_compacted(resp.compact_revision);
            let error = Error::Compacted {
                requested: self.next,
                compacted: resp.compact_revision,
            };
            return self.fail(error).await;
        }
        if resp.canceled {
            return Flow::Reconnect(format!("etcd cancelled the watch: {}", resp.cancel_reason));
        }
        if resp.created {
            // Only our watcher's own creation, consumed when opening, carries its id.
            return Flow::Continue;
        }
        let revision = resp.header.map_or(0, |h| h.revision);
        if resp.events.is_empty() {
            // etcd's periodic notification for our watcher: in order with the events.
            return self.deliver_progress(revision).await;
        }
        let mut events = Vec::with_capacity(resp.events.len());
        for event in resp.events {
            let event = match convert_event(event) {
                Ok(event) => event,
                Err(e) => return self.fail(e).await,
            };
            let revision = event.revision();
            if revision <= self.last_event {
                continue; // delivered before a reconnect
            }
            if revision < self.next {
                // Covered by a progress notification already delivered: the server broke its
                // promise. End the watch rather than drop the event or deliver it out of order.
                let reason = format!(
                    "watch {:?}: etcd sent revision {revision} after reporting progress up to {}; \
                     watch again",
                    self.spec.name,
                    self.next - 1
                );
                return self
                    .fail(unavailable_msg(&self.shared.endpoints, reason))
                    .await;
            }
            events.push(event);
        }
        let Some(last) = events.last().map(Event::revision) else {
            return Flow::Continue;
        };
        if self
            .tx
            .send(Ok(WatchMessage::Events(events)))
            .await
            .is_err()
        {
            return Flow::Stop;
        }
        self.touch();
        self.last_event = last;
        self.next = last + 1;
        Flow::Continue
    }

    /// A response that is not for our watcher: a progress response, or one of a barrier.
    async fn on_other_watcher(&mut self, resp: PbWatchResponse) -> Flow {
        let revision = resp.header.map_or(0, |h| h.revision);
        if resp.watch_id == PROGRESS_RESPONSE_ID && !resp.created && resp.events.is_empty() {
            return self.on_progress_response(revision).await;
        }
        if resp.created {
            let wanted = self.pending_creates.pop_front().unwrap_or(false);
            match &mut self.barrier {
                Some(barrier) if wanted && barrier.watch_id.is_none() && !resp.canceled => {
                    barrier.watch_id = Some(resp.watch_id);
                }
                Some(_) if wanted && resp.canceled => {
                    // etcd refused the barrier watcher: report only what is certain.
                    self.barrier = None;
                    return self.deliver_progress(self.next - 1).await;
                }
                _ if !resp.canceled => return self.cancel_watcher(resp.watch_id).await,
                _ => {}
            }
            return Flow::Continue;
        }
        let is_barrier = self
            .barrier
            .as_ref()
            .is_some_and(|b| b.watch_id == Some(resp.watch_id));
        if !is_barrier {
            // Leftovers of barriers cancelled before.
            return Flow::Continue;
        }
        let Some(barrier) = self.barrier.take() else {
            return Flow::Continue;
        };
        if !resp.canceled && matches!(self.cancel_watcher(resp.watch_id).await, Flow::Stop) {
            return Flow::Stop;
        }
        if resp.canceled && resp.compact_revision == 0 {
            // etcd dropped the barrier watcher without a word: report only what is certain.
            return self.deliver_progress(self.next - 1).await;
        }
        // The barrier's first message (an event or a compaction notice) came through the queue
        // behind every event etcd had queued for our watcher when it reported the revision.
        self.deliver_progress(barrier.revision).await
    }

    /// etcd answered a `WatchProgressRequest` with its current revision.
    async fn on_progress_response(&mut self, revision: Revision) -> Flow {
        if self.shared.ordered_progress || revision < self.next {
            // Trusted as is, or covered by what was delivered already.
            return self.deliver_progress(revision).await;
        }
        if self.barrier.is_some() {
            // The barrier in flight answers this request too.
            return Flow::Continue;
        }
        let mut options = WatchOptions::new().with_start_revision(revision);
        options = options.with_range(vec![0]);
        if let Err(e) = self.conn.sender.watch(vec![0], Some(options)).await {
            return Flow::Reconnect(e.to_string());
        }
        self.pending_creates.push_back(true);
        self.barrier = Some(Barrier {
            revision,
            watch_id: None,
            deadline: Instant::now() + BARRIER_TIMEOUT,
        });
        Flow::Continue
    }

    async fn barrier_expired(&mut self) -> Flow {
        let Some(barrier) = self.barrier.take() else {
            return Flow::Continue;
        };
        tracing::debug!(
            revision = barrier.revision,
            "etcd progress barrier got no answer"
        );
        match barrier.watch_id {
            Some(id) => {
                if let Flow::Stop = self.cancel_watcher(id).await {
                    return Flow::Stop;
                }
            }
            None => {
                // Not created yet: cancel it when etcd confirms it.
                if let Some(last) = self.pending_creates.back_mut() {
                    *last = false;
                }
            }
        }
        self.deliver_progress(self.next - 1).await
    }

    /// Asks etcd for a progress notification (answered in [`Task::on_progress_response`]).
    async fn ask_progress(&mut self) -> Flow {
        self.progress_wanted = true;
        match self.conn.sender.request_progress().await {
            Ok(()) => Flow::Continue,
            Err(e) => Flow::Reconnect(e.to_string()),
        }
    }

    /// Delivers a progress notification: every change up to `revision` (or up to the last
    /// delivered one, if that is later) has been delivered.
    async fn deliver_progress(&mut self, revision: Revision) -> Flow {
        let revision = revision.max(self.next - 1);
        self.next = revision + 1;
        self.progress_wanted = false;
        if self
            .tx
            .send(Ok(WatchMessage::Progress(revision)))
            .await
            .is_err()
        {
            return Flow::Stop;
        }
        self.touch();
        Flow::Continue
    }

    /// Ends the watch with `error` as its last item.
    async fn fail(&mut self, error: Error) -> Flow {
        let _ = self.tx.send(Err(error)).await;
        Flow::Stop
    }

    /// Restarts the idle timer after a delivery.
    fn touch(&mut self) {
        self.idle_deadline = self.progress_interval.map(|i| Instant::now() + i);
    }

    async fn cancel_watcher(&mut self, id: i64) -> Flow {
        match self.conn.sender.cancel(id).await {
            Ok(()) => Flow::Continue,
            Err(e) => Flow::Reconnect(e.to_string()),
        }
    }

    /// Re-establishes the etcd watch from `next` after its stream broke. Returns `false` when
    /// the watch has ended (an error was delivered, or nobody listens any more).
    async fn reconnect(&mut self, why: &str) -> bool {
        tracing::warn!(
            watch = %self.spec.name,
            resume = self.next,
            reason = why,
            "etcd watch stream broke, re-establishing it"
        );
        let since = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let error = match self.spec.open(&self.shared, self.next).await {
                Ok(conn) => {
                    self.conn = conn;
                    self.barrier = None;
                    self.pending_creates.clear();
                    if self.progress_wanted {
                        return !matches!(self.ask_progress().await, Flow::Stop);
                    }
                    return true;
                }
                Err((error, true)) if since.elapsed() < self.shared.config.watch_retry_timeout => {
                    error
                }
                Err((error, _)) => {
                    let error = match error {
                        Error::Unavailable { reason, .. } => unavailable_msg(
                            &self.shared.endpoints,
                            format!(
                                "watch {:?} broke at revision {} and could not be resumed: {reason}",
                                self.spec.name, self.next
                            ),
                        ),
                        other => other,
                    };
                    let _ = self.tx.send(Err(error)).await;
                    return false;
                }
            };
            tracing::debug!(%error, "re-establishing the etcd watch failed, retrying");
            tokio::select! {
                _ = self.tx.closed() => return false,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Converts one etcd event.
fn convert_event(event: PbEvent) -> Result<Event> {
    let Some(kv) = event.kv else {
        return Err(Error::Unavailable {
            endpoints: String::new(),
            reason: "etcd sent a watch event without a key".to_string(),
            source: None,
        });
    };
    let prev = event.prev_kv.map(key_value).transpose()?;
    match event.r#type {
        DELETE => Ok(Event::Delete {
            revision: kv.mod_revision,
            key: key_value(kv)?.key,
            prev,
        }),
        0 => Ok(Event::Put {
            kv: key_value(kv)?,
            prev,
        }),
        other => Err(Error::Unavailable {
            endpoints: String::new(),
            reason: format!("etcd sent a watch event of unknown type {other}"),
            source: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use etcd_client::proto::PbKeyValue;

    use super::*;

    fn kv(key: &str, rev: Revision) -> PbKeyValue {
        PbKeyValue {
            key: key.as_bytes().to_vec(),
            create_revision: 1,
            mod_revision: rev,
            version: 1,
            value: b"v".to_vec(),
            lease: 0,
        }
    }

    #[test]
    fn puts_and_deletes_convert_with_their_previous_values() {
        let put = convert_event(PbEvent {
            r#type: 0,
            kv: Some(kv("/a", 5)),
            prev_kv: Some(kv("/a", 4)),
        });
        assert!(matches!(
            put,
            Ok(Event::Put { kv, prev: Some(prev) }) if kv.mod_revision == 5 && prev.mod_revision == 4
        ));
        let delete = convert_event(PbEvent {
            r#type: DELETE,
            kv: Some(kv("/a", 6)),
            prev_kv: None,
        });
        assert!(matches!(
            delete,
            Ok(Event::Delete { key, revision: 6, prev: None }) if key == "/a"
        ));
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        let unknown = convert_event(PbEvent {
            r#type: 7,
            kv: Some(kv("/a", 5)),
            prev_kv: None,
        });
        assert!(unknown.is_err());
        let keyless = convert_event(PbEvent {
            r#type: 0,
            kv: None,
            prev_kv: None,
        });
        assert!(keyless.is_err());
    }
}
