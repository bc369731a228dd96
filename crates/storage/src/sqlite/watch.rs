//! Watches: the fan-out the writer publishes committed changes to, and the task that serves one
//! watch — replaying history from the log, then following live changes with no gap and no
//! duplicate.
//!
//! The switch from history to live works like this: the watcher subscribes to the live feed and
//! learns the newest published revision `P` in one step (under the hub's lock, the same lock
//! the writer publishes under), replays the log up to `P`, and from then on skips live batches
//! at or below what it has already delivered. A watcher that falls so far behind that the feed
//! drops batches it has not read ([`broadcast::error::RecvError::Lagged`]) does the same again:
//! subscribes anew and catches up from the log. No change is ever dropped silently; if the
//! history it needs has been compacted meanwhile, the stream ends with [`Error::Compacted`].

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{
    sync::{broadcast, mpsc},
    time::{Instant, Interval, MissedTickBehavior},
};

use super::read::{self, ReadPool};
use crate::{
    Error, Event, Result, Revision, WatchMessage, WatchRequest, WatchStream, key_in_range,
};

/// How many committed batches the live feed holds for a watcher that is behind; one that falls
/// further behind catches up from the log.
const FEED_CAPACITY: usize = 256;

/// How many messages a watch stream buffers for a consumer that is not reading.
const STREAM_BUFFER: usize = 64;

/// The most events one replayed message carries.
const REPLAY_EVENTS: usize = 1000;

/// The most revisions one replay query scans, so that a narrow watch over a long history does
/// not hold one read transaction for long.
const REPLAY_SPAN: Revision = 20_000;

/// The changes of one committed write batch.
#[derive(Debug)]
pub(crate) struct Published {
    /// The store's revision after the batch.
    pub(crate) revision: Revision,
    /// The changes, in revision order.
    pub(crate) events: Vec<Event>,
}

/// The in-process fan-out of committed changes.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
}

#[derive(Debug)]
struct HubState {
    /// The newest published revision.
    revision: Revision,
    /// The compacted revision.
    compact_revision: Revision,
    /// `None` once the writer has stopped.
    feed: Option<broadcast::Sender<Arc<Published>>>,
}

/// A new subscription to the live feed and where the store stood when it began.
struct Subscription {
    feed: broadcast::Receiver<Arc<Published>>,
    revision: Revision,
    compact_revision: Revision,
}

impl Hub {
    /// A hub for a store at `revision`, compacted at `compact_revision`.
    pub(crate) fn new(revision: Revision, compact_revision: Revision) -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Self {
            state: Mutex::new(HubState {
                revision,
                compact_revision,
                feed: Some(feed),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a committed batch. Called by the writer after COMMIT and before it answers
    /// the batch's callers, so a caller that saw its write acknowledged and then asks a watch
    /// for progress gets a revision at least as new as its write.
    pub(crate) fn publish(
        &self,
        revision: Revision,
        compact_revision: Revision,
        events: Vec<Event>,
    ) {
        let mut state = self.lock();
        state.revision = revision;
        state.compact_revision = compact_revision;
        if !events.is_empty()
            && let Some(feed) = &state.feed
        {
            // An error only means that nobody is watching.
            let _ = feed.send(Arc::new(Published { revision, events }));
        }
    }

    /// Ends the feed: every watcher's stream ends with [`Error::Closed`].
    pub(crate) fn close(&self) {
        self.lock().feed = None;
    }

    fn subscribe(&self) -> Result<Subscription> {
        let state = self.lock();
        let feed = state.feed.as_ref().ok_or(Error::Closed)?.subscribe();
        Ok(Subscription {
            feed,
            revision: state.revision,
            compact_revision: state.compact_revision,
        })
    }
}

/// Starts serving `req` in a task of its own.
pub(crate) fn start(hub: Arc<Hub>, reads: Arc<ReadPool>, req: WatchRequest) -> Result<WatchStream> {
    if req.start_revision < 0 {
        return Err(Error::InvalidArgument(format!(
            "watch start revision {} is negative",
            req.start_revision
        )));
    }
    let sub = hub.subscribe()?;
    if req.start_revision != 0 && req.start_revision < sub.compact_revision {
        return Err(Error::Compacted {
            requested: req.start_revision,
            compacted: sub.compact_revision,
        });
    }
    let (start, seen) = if req.start_revision == 0 {
        (sub.revision + 1, sub.revision)
    } else {
        (
            req.start_revision,
            (req.start_revision - 1).min(sub.revision),
        )
    };
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let watcher = Watcher {
        interval: req.progress_interval.filter(|d| !d.is_zero()),
        req,
        start,
        seen,
        hub,
        reads,
        tx,
        progress: progress_rx,
        sent_since_tick: false,
    };
    tokio::spawn(watcher.run(sub.feed, sub.revision));
    Ok(WatchStream::new(rx, progress_tx))
}

/// Why a watcher stops.
enum Stop {
    /// The consumer dropped the stream.
    Dropped,
    /// The watch ends with this error as its last item.
    Failed(Error),
}

/// What woke the watcher up.
enum Wake {
    Dropped,
    Live(std::result::Result<Arc<Published>, broadcast::error::RecvError>),
    ProgressRequested,
    Tick,
}

/// The state of one watch.
struct Watcher {
    req: WatchRequest,
    interval: Option<Duration>,
    /// The first revision to deliver.
    start: Revision,
    /// Every change up to this revision has been delivered (or was before `start`).
    seen: Revision,
    hub: Arc<Hub>,
    reads: Arc<ReadPool>,
    tx: mpsc::Sender<Result<WatchMessage>>,
    progress: mpsc::UnboundedReceiver<()>,
    /// Whether events went out since the last progress tick.
    sent_since_tick: bool,
}

impl Watcher {
    async fn run(mut self, feed: broadcast::Receiver<Arc<Published>>, upto: Revision) {
        match self.serve(feed, upto).await {
            Ok(()) | Err(Stop::Dropped) => {}
            Err(Stop::Failed(err)) => {
                tracing::debug!(key = %self.req.key, error = %err, "watch ended");
                let _ = self.tx.send(Err(err)).await;
            }
        }
    }

    async fn serve(
        &mut self,
        mut feed: broadcast::Receiver<Arc<Published>>,
        upto: Revision,
    ) -> Result<(), Stop> {
        self.catch_up(upto).await?;
        let mut ticker = self.interval.map(|every| {
            let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticker
        });
        loop {
            let wake = tokio::select! {
                () = self.tx.closed() => Wake::Dropped,
                live = feed.recv() => Wake::Live(live),
                request = self.progress.recv() => match request {
                    Some(()) => Wake::ProgressRequested,
                    None => Wake::Dropped,
                },
                () = tick(ticker.as_mut()) => Wake::Tick,
            };
            match wake {
                Wake::Dropped => return Err(Stop::Dropped),
                Wake::Live(live) => self.on_live(&mut feed, live).await?,
                Wake::ProgressRequested => {
                    // Deliver whatever is already published first, so that the answer is as
                    // new as the newest write acknowledged before the request.
                    loop {
                        match feed.try_recv() {
                            Ok(batch) => self.deliver(&batch).await?,
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                feed = self.resubscribe().await?;
                            }
                            Err(broadcast::error::TryRecvError::Closed) => {
                                return Err(Stop::Failed(Error::Closed));
                            }
                        }
                    }
                    self.send(WatchMessage::Progress(self.seen)).await?;
                }
                Wake::Tick => {
                    if !self.sent_since_tick {
                        self.send(WatchMessage::Progress(self.seen)).await?;
                    }
                    self.sent_since_tick = false;
                }
            }
        }
    }

    async fn on_live(
        &mut self,
        feed: &mut broadcast::Receiver<Arc<Published>>,
        live: std::result::Result<Arc<Published>, broadcast::error::RecvError>,
    ) -> Result<(), Stop> {
        match live {
            Ok(batch) => self.deliver(&batch).await,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(key = %self.req.key, missed, "watch fell behind, catching up from the log");
                *feed = self.resubscribe().await?;
                Ok(())
            }
            Err(broadcast::error::RecvError::Closed) => Err(Stop::Failed(Error::Closed)),
        }
    }

    /// Subscribes to the feed anew and replays from the log what the old subscription lost.
    async fn resubscribe(&mut self) -> Result<broadcast::Receiver<Arc<Published>>, Stop> {
        let sub = self.hub.subscribe().map_err(Stop::Failed)?;
        self.catch_up(sub.revision).await?;
        Ok(sub.feed)
    }

    /// Sends the in-range changes of a live batch that were not delivered yet.
    async fn deliver(&mut self, batch: &Published) -> Result<(), Stop> {
        if batch.revision <= self.seen {
            return Ok(());
        }
        let seen = self.seen;
        let events: Vec<Event> = batch
            .events
            .iter()
            .filter(|e| {
                let rev = e.revision();
                rev > seen && rev >= self.start && self.contains(e.key())
            })
            .cloned()
            .collect();
        self.seen = batch.revision;
        if !events.is_empty() {
            self.send(WatchMessage::Events(events)).await?;
        }
        Ok(())
    }

    /// Replays the log from where this watch stands up to `upto`, in bounded slices.
    async fn catch_up(&mut self, upto: Revision) -> Result<(), Stop> {
        loop {
            let from = self.start.max(self.seen + 1);
            if from > upto {
                self.seen = self.seen.max(upto);
                return Ok(());
            }
            if self.tx.is_closed() {
                return Err(Stop::Dropped);
            }
            let to = upto.min(from.saturating_add(REPLAY_SPAN - 1));
            let key = self.req.key.clone();
            let range_end = self.req.range_end.clone();
            let slice = self
                .reads
                .run(move |conn, path| {
                    read::replay(
                        conn,
                        path,
                        &key,
                        range_end.as_deref(),
                        from,
                        to,
                        REPLAY_EVENTS,
                    )
                })
                .await
                .map_err(Stop::Failed)?;
            self.seen = slice.through;
            if !slice.events.is_empty() {
                self.send(WatchMessage::Events(slice.events)).await?;
            }
        }
    }

    fn contains(&self, key: &str) -> bool {
        key_in_range(key, &self.req.key, self.req.range_end.as_deref())
    }

    async fn send(&mut self, msg: WatchMessage) -> Result<(), Stop> {
        if matches!(msg, WatchMessage::Events(_)) {
            self.sent_since_tick = true;
        }
        self.tx.send(Ok(msg)).await.map_err(|_| Stop::Dropped)
    }
}

/// The next tick of an optional interval; never, without one.
async fn tick(ticker: Option<&mut Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::writer::tests as w;

    impl Hub {
        /// How many watchers are subscribed to the live feed.
        fn watchers(&self) -> usize {
            self.lock()
                .feed
                .as_ref()
                .map_or(0, broadcast::Sender::receiver_count)
        }
    }

    #[tokio::test]
    async fn dropping_the_stream_stops_the_watcher_and_closing_the_hub_ends_the_stream()
    -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let writer = w::writer(dir.path(), 100)?;
        let reads = Arc::new(ReadPool::open(&writer.path, 1)?);
        let hub = Arc::new(Hub::new(0, 0));

        let stream = start(hub.clone(), reads.clone(), WatchRequest::prefix("/a/", 0))?;
        assert_eq!(hub.watchers(), 1);
        drop(stream);
        let deadline = Instant::now() + Duration::from_secs(10);
        while hub.watchers() > 0 {
            assert!(
                Instant::now() < deadline,
                "the watcher task outlived its stream"
            );
            tokio::task::yield_now().await;
        }

        let mut stream = start(hub.clone(), reads, WatchRequest::prefix("/a/", 0))?;
        hub.publish(
            1,
            0,
            vec![crate::Event::Delete {
                key: "/a/x".into(),
                revision: 1,
                prev: None,
            }],
        );
        hub.close();
        match stream.recv().await {
            Some(Ok(WatchMessage::Events(events))) => assert_eq!(events.len(), 1),
            other => panic!("expected the published event first, got {other:?}"),
        }
        assert!(matches!(stream.recv().await, Some(Err(Error::Closed))));
        assert!(stream.recv().await.is_none());
        Ok(())
    }
}
