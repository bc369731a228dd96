//! The embedded datastore: an MVCC log in one SQLite file (WAL, `synchronous=FULL`).
//!
//! How it fits together:
//!
//! - **Writes** go to one writer thread (`writer`) that owns the write connection. It drains
//!   everything queued (up to [`SqliteConfig::max_batch`]), applies it in one transaction, each
//!   write at its own revision and seeing the ones before it, commits with one fsync and only
//!   then answers the callers. A write that fails on its own (an unknown lease, say) fails
//!   alone; a batch SQLite cannot commit (a full disk) fails as a whole and leaves nothing
//!   behind, in the file or in memory.
//! - **Reads** run on a small pool of read connections (`read`); in WAL mode they read a
//!   committed snapshot and never wait for the writer.
//! - **Watches** (`watch`) are pushed: after each commit the writer publishes the batch's
//!   events to an in-process fan-out. A watch from the past replays the log, then follows the
//!   live feed without gap or duplicate, and catches up from the log if it falls behind.
//! - **Compaction** (`maintenance`) deletes history in small steps between write batches, then
//!   frees pages and truncates the WAL; automatic compaction keeps both
//!   [`SqliteConfig::history_revisions`] revisions and [`SqliteConfig::history_age`] of time.
//! - **Leases** (`lease`) expire on the writer's timer; their keys are deleted by ordinary
//!   deletes that watchers see. Only the TTL is persisted: after a restart every lease gets a
//!   full TTL again, as etcd does after a leader change.
//!
//! The schema is described in `db`; the file is readable with the `sqlite3` command-line tool.
//!
//! Where this differs from etcd, on purpose:
//!
//! - a lease revocation deletes its keys in one transaction but at consecutive revisions (one
//!   per key), where etcd uses one revision for all of them;
//! - `compact` answers once the history is physically gone (etcd's `physical: true`);
//! - a tombstone exactly at the compacted revision stays until the next compaction, so a watch
//!   starting at the compacted revision still sees that delete (etcd drops it).

mod db;
mod lease;
mod maintenance;
mod read;
mod watch;
mod writer;

use std::{
    path::PathBuf,
    sync::{Arc, mpsc},
    thread::JoinHandle,
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::oneshot;

use self::{
    read::ReadPool,
    watch::Hub,
    writer::{Request, Writer, WriterConfig},
};
use crate::{
    Error, LeaseId, RangeRequest, RangeResponse, Result, Revision, Store, StoreStatus, Txn,
    TxnResponse, WatchRequest, WatchStream,
};

/// Settings of the embedded store.
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    /// The database file; its directory is created if missing.
    pub path: PathBuf,
    /// Automatic compaction keeps at least this many revisions of history.
    pub history_revisions: i64,
    /// Automatic compaction keeps at least this much time of history.
    pub history_age: Duration,
    /// How often automatic compaction runs; `None` disables it.
    pub compaction_interval: Option<Duration>,
    /// The most writes committed in one transaction (group commit).
    pub max_batch: usize,
    /// The number of read connections.
    pub read_connections: usize,
    /// The most log rows one compaction step examines; each step is one short transaction
    /// between write batches.
    pub compaction_batch: usize,
    /// Whether opening runs SQLite's `quick_check` over the whole file, so that a damaged
    /// file is refused at start rather than failing reads later. It reads the whole file once.
    pub check_integrity_on_open: bool,
}

impl SqliteConfig {
    /// Default settings for the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            history_revisions: 10_000,
            history_age: Duration::from_secs(300),
            compaction_interval: Some(Duration::from_secs(30)),
            max_batch: 1000,
            read_connections: 4,
            compaction_batch: 2000,
            check_integrity_on_open: true,
        }
    }
}

/// The embedded store. Dropping it stops its writer thread (after the batch in flight) and
/// ends every watch with [`Error::Closed`].
pub struct SqliteStore {
    path: PathBuf,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    reads: Arc<ReadPool>,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database described by `config`.
    ///
    /// Fails with [`Error::Database`] naming the file if it cannot be created or opened, is not
    /// a SQLite database, is a SQLite database of another program, is damaged, or is in use by
    /// another process.
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        let path = config.path.clone();
        let setup = config.clone();
        let (opened, lock, reads) = tokio::task::spawn_blocking(move || {
            let lock = db::lock(&setup.path)?;
            let opened = db::open_writer(&setup.path, setup.check_integrity_on_open)?;
            let reads = ReadPool::open(&setup.path, setup.read_connections)?;
            Ok::<_, Error>((opened, lock, reads))
        })
        .await
        .map_err(|e| Error::Database {
            path: path.clone(),
            reason: "opening failed".into(),
            source: Some(Box::new(e)),
        })??;

        tracing::info!(
            path = %path.display(),
            revision = opened.revision,
            compact_revision = opened.compact_revision,
            leases = opened.leases.len(),
            "opened the datastore"
        );
        let hub = Arc::new(Hub::new(opened.revision, opened.compact_revision));
        let writer = Writer::new(
            opened,
            lock,
            path.clone(),
            WriterConfig {
                max_batch: config.max_batch.max(1),
                history_revisions: config.history_revisions,
                history_age: config.history_age,
                compaction_interval: config.compaction_interval.filter(|d| !d.is_zero()),
                compaction_batch: config.compaction_batch.max(1),
                vacuum_pages: 256,
            },
            hub.clone(),
        );
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("tug-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| db::io_error(&path, "cannot start the writer thread", e))?;
        Ok(Self {
            path,
            requests: Some(tx),
            writer: Some(handle),
            reads: Arc::new(reads),
            hub,
        })
    }

    /// Runs automatic compaction now (as configured, whether or not the timer is due), then
    /// returns free pages to the file system and truncates the WAL. Returns once all of it is
    /// done.
    pub async fn run_maintenance(&self) -> Result<()> {
        self.call(Request::Maintain).await
    }

    /// Stops the writer after the batch in flight, waits for it, and closes every connection
    /// (the file and its lock are released when this returns).
    pub async fn close(mut self) -> Result<()> {
        self.requests = None;
        if let Some(handle) = self.writer.take() {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| Error::Database {
                    path: self.path.clone(),
                    reason: "closing failed".into(),
                    source: Some(Box::new(e)),
                })?
                .map_err(|_| Error::Database {
                    path: self.path.clone(),
                    reason: "the writer thread panicked".into(),
                    source: None,
                })?;
        }
        self.reads.close();
        Ok(())
    }

    /// Sends a request to the writer and waits for its answer.
    async fn call<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or(Error::Closed)?
            .send(request(tx))
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel stops the writer; waiting for it releases the database lock
        // before the drop returns, so the same file can be opened again right away.
        self.requests = None;
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the datastore writer thread panicked");
        }
        self.reads.close();
        self.hub.close();
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        self.reads
            .run(move |conn, path| read::range(conn, path, &req))
            .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.call(|tx| Request::Txn(txn, tx)).await
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        watch::start(self.hub.clone(), self.reads.clone(), req)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.call(|tx| Request::Compact(revision, tx)).await
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId> {
        self.call(|tx| Request::LeaseGrant(ttl, tx)).await
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()> {
        self.call(|tx| Request::LeaseKeepAlive(lease, tx)).await
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        self.call(|tx| Request::LeaseRevoke(lease, tx)).await
    }

    async fn status(&self) -> Result<StoreStatus> {
        self.reads.run(read::status).await
    }
}
