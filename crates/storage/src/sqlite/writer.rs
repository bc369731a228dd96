//! The writer thread: the only owner of the write connection. It group-commits every queued
//! write in one SQLite transaction (one fsync), answers each caller only after COMMIT returned,
//! publishes the committed changes to the watch hub, expires leases on a timer and runs
//! compaction in small steps between batches.
//!
//! Everything the writer keeps in memory (the revision, the compacted revision, the lease
//! table) is changed only as a write succeeds, and restored when its batch fails, so a failed
//! batch leaves neither the file nor the memory half-written.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::{
        Arc,
        mpsc::{Receiver, RecvTimeoutError, TryRecvError},
    },
    time::{Duration, Instant},
};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{
    db::{self, Opened, db_error, meta},
    lease::{Lease, LeaseTable},
    maintenance::Maintenance,
    watch::Hub,
};
use crate::{Compare, Error, Event, KeyValue, LeaseId, Result, Revision, Txn, TxnOp, TxnResponse};

/// How long the writer waits before retrying lease expiry after a failed batch (e.g. a full
/// disk), so that a persistent failure does not spin.
const EXPIRY_RETRY: Duration = Duration::from_secs(1);

/// The most leases one batch expires; more wait for the next batch.
const EXPIRIES_PER_BATCH: usize = 256;

/// A request to the writer. Each carries the channel its answer goes back on.
#[derive(Debug)]
pub(crate) enum Request {
    /// A compare-and-swap.
    Txn(Txn, oneshot::Sender<Result<TxnResponse>>),
    /// Grants a lease with this TTL.
    LeaseGrant(Duration, oneshot::Sender<Result<LeaseId>>),
    /// Renews a lease.
    LeaseKeepAlive(LeaseId, oneshot::Sender<Result<()>>),
    /// Revokes a lease and deletes its keys.
    LeaseRevoke(LeaseId, oneshot::Sender<Result<()>>),
    /// Compacts history below this revision; answered once the rows are gone.
    Compact(Revision, oneshot::Sender<Result<()>>),
    /// Runs automatic compaction now, then frees pages and truncates the WAL; answered when done.
    Maintain(oneshot::Sender<Result<()>>),
}

/// The writer's settings.
#[derive(Clone, Debug)]
pub(crate) struct WriterConfig {
    /// The most writes one transaction commits.
    pub(crate) max_batch: usize,
    /// Automatic compaction keeps at least this many revisions.
    pub(crate) history_revisions: i64,
    /// Automatic compaction keeps at least this much time of history.
    pub(crate) history_age: Duration,
    /// How often automatic compaction runs; `None`: never.
    pub(crate) compaction_interval: Option<Duration>,
    /// The most log rows one compaction step examines.
    pub(crate) compaction_batch: usize,
    /// The most pages one vacuum step frees.
    pub(crate) vacuum_pages: usize,
}

/// One write of a batch.
enum Item {
    Txn(Txn, oneshot::Sender<Result<TxnResponse>>),
    Grant(Duration, oneshot::Sender<Result<LeaseId>>),
    Revoke(LeaseId, oneshot::Sender<Result<()>>),
    /// The expiry of a lease: a revocation nobody waits for.
    Expire(LeaseId),
    /// A compaction; automatic ones have no caller.
    Compact(Revision, Option<oneshot::Sender<Result<()>>>),
}

/// One write of a batch with its outcome, waiting for the batch to commit.
enum Done {
    Txn(oneshot::Sender<Result<TxnResponse>>, Result<TxnResponse>),
    Lease(oneshot::Sender<Result<LeaseId>>, Result<LeaseId>),
    Unit(oneshot::Sender<Result<()>>, Result<()>),
    Compact(Option<oneshot::Sender<Result<()>>>, Result<()>),
    Expire(Result<()>),
}

impl Item {
    /// The item as failed with `err` (its batch did not commit).
    fn fail(self, err: Error) -> Done {
        match self {
            Self::Txn(_, tx) => Done::Txn(tx, Err(err)),
            Self::Grant(_, tx) => Done::Lease(tx, Err(err)),
            Self::Revoke(_, tx) => Done::Unit(tx, Err(err)),
            Self::Expire(_) => Done::Expire(Err(err)),
            Self::Compact(_, tx) => Done::Compact(tx, Err(err)),
        }
    }
}

impl Done {
    /// Replaces a success with `err` (the batch failed after this write was applied).
    fn fail(self, err: Error) -> Self {
        match self {
            Self::Txn(tx, _) => Self::Txn(tx, Err(err)),
            Self::Lease(tx, _) => Self::Lease(tx, Err(err)),
            Self::Unit(tx, _) => Self::Unit(tx, Err(err)),
            Self::Compact(tx, _) => Self::Compact(tx, Err(err)),
            Self::Expire(_) => Self::Expire(Err(err)),
        }
    }
}

/// Why a write failed.
enum Fail {
    /// The request itself is refused (unknown lease, compacted revision …); nothing was
    /// written.
    Request(Error),
    /// SQLite failed.
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for Fail {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sql(err)
    }
}

/// The outcome of one write inside the batch transaction.
enum Isolated<T> {
    Ok(T),
    /// This write failed; the transaction and the batch's other writes live on.
    Failed(Error),
    /// SQLite rolled the whole transaction back.
    Aborted(rusqlite::Error),
}

/// What a failed batch restores.
enum Undo {
    Granted(LeaseId),
    Revoked(LeaseId, Lease),
}

/// One error handed to every caller of a failed batch (each gets its own [`Error`] sharing one
/// source).
struct SharedError {
    path: PathBuf,
    reason: String,
    source: Arc<rusqlite::Error>,
}

impl SharedError {
    fn new(path: &Path, context: &str, err: rusqlite::Error) -> Self {
        Self {
            path: path.to_path_buf(),
            reason: db::describe(context, &err),
            source: Arc::new(err),
        }
    }

    fn error(&self) -> Error {
        Error::Database {
            path: self.path.clone(),
            reason: self.reason.clone(),
            source: Some(Box::new(self.source.clone())),
        }
    }
}

/// The writer: the write connection and the state only it changes.
pub(crate) struct Writer {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) config: WriterConfig,
    /// The current revision.
    pub(super) revision: Revision,
    /// The logical compacted revision.
    pub(super) compact_revision: Revision,
    next_lease_id: LeaseId,
    leases: LeaseTable,
    hub: Arc<Hub>,
    pub(super) maintenance: Maintenance,
    /// When set, lease expiry waits until then (the last attempt failed).
    expiry_retry_at: Option<Instant>,
    /// When automatic compaction runs next.
    next_auto_compaction: Option<Instant>,
    /// Holds the database's lock file until the writer ends.
    _lock: File,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("revision", &self.revision)
            .field("compact_revision", &self.compact_revision)
            .field("leases", &self.leases.len())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer for an opened database. Leases get a full TTL from now (see [`super::lease`]).
    pub(crate) fn new(
        opened: Opened,
        lock: File,
        path: PathBuf,
        config: WriterConfig,
        hub: Arc<Hub>,
    ) -> Self {
        let now = Instant::now();
        let mut leases = LeaseTable::default();
        for (id, ttl) in &opened.leases {
            leases.grant(*id, *ttl, now);
        }
        let mut maintenance = Maintenance::new(now, opened.revision);
        if opened.physical_compact_revision < opened.compact_revision {
            // A compaction was cut short by a stop or crash: finish it.
            maintenance.compact_to(opened.compact_revision);
        }
        Self {
            conn: opened.conn,
            path,
            next_auto_compaction: config.compaction_interval.map(|every| now + every),
            config,
            revision: opened.revision,
            compact_revision: opened.compact_revision,
            next_lease_id: opened.next_lease_id,
            leases,
            hub,
            maintenance,
            expiry_retry_at: None,
            _lock: lock,
        }
    }

    /// Serves requests until every sender is gone, then closes the watch hub.
    pub(crate) fn run(mut self, requests: Receiver<Request>) {
        loop {
            let now = Instant::now();
            let first = if self.maintenance.ready(now) {
                // Compaction work is pending: take what is queued, but do not wait for it.
                match requests.try_recv() {
                    Ok(req) => Some(req),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else if let Some(at) = self.next_wakeup() {
                match requests.recv_timeout(at.saturating_duration_since(now)) {
                    Ok(req) => Some(req),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match requests.recv() {
                    Ok(req) => Some(req),
                    Err(_) => break,
                }
            };

            let mut items = Vec::new();
            if let Some(first) = first {
                self.take(first, &mut items);
                while items.len() < self.config.max_batch {
                    match requests.try_recv() {
                        Ok(req) => self.take(req, &mut items),
                        Err(_) => break,
                    }
                }
            }
            let now = Instant::now();
            self.auto_compaction(now, &mut items);
            let expiring = self.expiring(now);
            if !expiring.is_empty() || !items.is_empty() {
                let mut batch: Vec<Item> = expiring.iter().map(|id| Item::Expire(*id)).collect();
                batch.append(&mut items);
                self.run_batch(batch);
                self.rearm_failed_expiries(&expiring);
            }
            if self.maintenance.ready(Instant::now()) {
                self.maintenance_step();
            }
        }
        tracing::debug!(path = %self.path.display(), revision = self.revision, "datastore writer stopped");
        self.hub.close();
    }

    /// The earliest moment a timer needs the writer.
    fn next_wakeup(&mut self) -> Option<Instant> {
        let expiry = self
            .leases
            .next_deadline()
            .map(|at| self.expiry_retry_at.map_or(at, |retry| retry.max(at)));
        [
            expiry,
            self.next_auto_compaction,
            self.maintenance.retry_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sorts a request into the batch, or answers it at once if it writes nothing.
    fn take(&mut self, req: Request, items: &mut Vec<Item>) {
        match req {
            Request::Txn(txn, tx) => items.push(Item::Txn(txn, tx)),
            Request::LeaseGrant(ttl, tx) => items.push(Item::Grant(ttl, tx)),
            Request::LeaseRevoke(id, tx) => items.push(Item::Revoke(id, tx)),
            Request::Compact(rev, tx) => items.push(Item::Compact(rev, Some(tx))),
            Request::LeaseKeepAlive(id, tx) => {
                // Only the deadline in memory changes (see `lease`), so nothing waits for a
                // commit.
                let result = if self.leases.keep_alive(id, Instant::now()) {
                    Ok(())
                } else {
                    Err(Error::LeaseNotFound(id))
                };
                let _ = tx.send(result);
            }
            Request::Maintain(tx) => {
                let target = self.maintenance.auto_target(
                    Instant::now(),
                    self.revision,
                    self.config.history_revisions,
                    self.config.history_age,
                );
                if target > self.compact_revision {
                    items.push(Item::Compact(target, None));
                }
                self.maintenance.full_pass(tx);
            }
        }
    }

    /// Adds an automatic compaction to the batch when its timer is due.
    fn auto_compaction(&mut self, now: Instant, items: &mut Vec<Item>) {
        let (Some(at), Some(every)) = (self.next_auto_compaction, self.config.compaction_interval)
        else {
            return;
        };
        if now < at {
            return;
        }
        self.next_auto_compaction = Some(now + every);
        let target = self.maintenance.auto_target(
            now,
            self.revision,
            self.config.history_revisions,
            self.config.history_age,
        );
        if target > self.compact_revision {
            tracing::debug!(target, revision = self.revision, "automatic compaction");
            items.push(Item::Compact(target, None));
        }
    }

    /// The leases that expired, unless a failed expiry is waiting for its retry.
    fn expiring(&mut self, now: Instant) -> Vec<LeaseId> {
        if self.expiry_retry_at.is_some_and(|at| now < at) {
            return Vec::new();
        }
        self.expiry_retry_at = None;
        let mut expired = self.leases.take_expired(now);
        if expired.len() > EXPIRIES_PER_BATCH {
            for id in expired.split_off(EXPIRIES_PER_BATCH) {
                self.leases.requeue(id);
            }
        }
        expired
    }

    /// Re-arms the timers of expired leases whose revocation did not commit.
    fn rearm_failed_expiries(&mut self, expiring: &[LeaseId]) {
        let now = Instant::now();
        for id in expiring {
            if self.leases.contains(*id) && !self.leases.is_live(*id, now) {
                self.leases.requeue(*id);
                self.expiry_retry_at = Some(now + EXPIRY_RETRY);
            }
        }
    }

    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Applies `items` in one transaction, in order, each at its own revision; commits once;
    /// then publishes the changes and answers every caller.
    fn run_batch(&mut self, items: Vec<Item>) {
        let now = Instant::now();
        let before = (self.revision, self.compact_revision, self.next_lease_id);
        let count = items.len();
        let mut undo = Vec::new();
        let mut events = Vec::new();
        let mut done = Vec::with_capacity(count);

        if let Err(err) = self.exec("BEGIN IMMEDIATE") {
            let shared = SharedError::new(&self.path, "starting a write transaction", err);
            self.answer(items.into_iter().map(|i| i.fail(shared.error())).collect());
            return;
        }
        let mut items = items.into_iter();
        let mut aborted = None;
        for item in items.by_ref() {
            match self.apply(item, now, &mut events, &mut undo) {
                (d, None) => done.push(d),
                (d, Some(err)) => {
                    done.push(d);
                    aborted = Some(err);
                    break;
                }
            }
        }
        let committed = match aborted {
            Some(err) => Err(SharedError::new(&self.path, "writing a batch", err)),
            None => self
                .write_bookkeeping(before)
                .and_then(|()| self.exec("COMMIT"))
                .map_err(|err| SharedError::new(&self.path, "committing a batch", err)),
        };
        if let Err(shared) = committed {
            if !self.conn.is_autocommit() {
                let _ = self.exec("ROLLBACK");
            }
            (self.revision, self.compact_revision, self.next_lease_id) = before;
            for u in undo.into_iter().rev() {
                match u {
                    Undo::Granted(id) => {
                        self.leases.remove(id);
                    }
                    Undo::Revoked(id, lease) => self.leases.restore(id, lease),
                }
            }
            tracing::warn!(
                path = %self.path.display(),
                writes = count,
                error = %shared.error(),
                "a write batch failed and was rolled back"
            );
            let mut failed: Vec<Done> = done.into_iter().map(|d| d.fail(shared.error())).collect();
            failed.extend(items.map(|i| i.fail(shared.error())));
            self.answer(failed);
            return;
        }

        tracing::trace!(
            writes = count,
            revision = self.revision,
            "committed a write batch"
        );
        if self.compact_revision > before.1 {
            self.maintenance.compact_to(self.compact_revision);
        }
        if self.revision != before.0 || self.compact_revision != before.1 {
            self.hub
                .publish(self.revision, self.compact_revision, events);
        }
        self.answer(done);
    }

    /// Persists the revision counters that changed in this batch.
    fn write_bookkeeping(&self, before: (Revision, Revision, LeaseId)) -> rusqlite::Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?;
        for (name, old, new) in [
            (meta::REVISION, before.0, self.revision),
            (meta::COMPACT_REVISION, before.1, self.compact_revision),
            (meta::NEXT_LEASE_ID, before.2, self.next_lease_id),
        ] {
            if old != new {
                stmt.execute(params![name, new])?;
            }
        }
        Ok(())
    }

    /// Answers the callers of a batch; successful compactions answer once their rows are gone.
    fn answer(&mut self, done: Vec<Done>) {
        for d in done {
            // A caller that gave up waiting dropped its receiver; nothing to do then.
            match d {
                Done::Txn(tx, r) => {
                    let _ = tx.send(r);
                }
                Done::Lease(tx, r) => {
                    let _ = tx.send(r);
                }
                Done::Unit(tx, r) => {
                    let _ = tx.send(r);
                }
                Done::Compact(Some(tx), Ok(())) => self.maintenance.wait(tx),
                Done::Compact(Some(tx), Err(e)) => {
                    let _ = tx.send(Err(e));
                }
                Done::Compact(None, Err(e)) | Done::Expire(Err(e)) => {
                    tracing::warn!(error = %e, "automatic compaction or lease expiry failed");
                }
                Done::Compact(None, Ok(())) | Done::Expire(Ok(())) => {}
            }
        }
    }

    /// Applies one item inside a savepoint. The second value is set when SQLite rolled back
    /// the whole transaction.
    fn apply(
        &mut self,
        item: Item,
        now: Instant,
        events: &mut Vec<Event>,
        undo: &mut Vec<Undo>,
    ) -> (Done, Option<rusqlite::Error>) {
        fn split<T>(r: Isolated<T>) -> (Result<T>, Option<rusqlite::Error>) {
            match r {
                Isolated::Ok(v) => (Ok(v), None),
                Isolated::Failed(e) => (Err(e), None),
                // A placeholder: `run_batch` fails every write of an aborted batch with the
                // SQLite error.
                Isolated::Aborted(e) => (Err(Error::Closed), Some(e)),
            }
        }
        match item {
            Item::Txn(txn, tx) => {
                let (r, abort) = split(self.isolated(|w| w.apply_txn(&txn, now, events)));
                (Done::Txn(tx, r), abort)
            }
            Item::Grant(ttl, tx) => {
                let (r, abort) = split(self.isolated(|w| w.apply_grant(ttl, now, undo)));
                (Done::Lease(tx, r), abort)
            }
            Item::Revoke(id, tx) => {
                let (r, abort) = split(self.isolated(|w| w.apply_revoke(id, events, undo)));
                (Done::Unit(tx, r), abort)
            }
            Item::Expire(id) => {
                if !self.leases.contains(id) || self.leases.is_live(id, now) {
                    // Revoked or renewed since its timer fired.
                    return (Done::Expire(Ok(())), None);
                }
                tracing::debug!(lease = id, "lease expired");
                let (r, abort) = split(self.isolated(|w| w.apply_revoke(id, events, undo)));
                (Done::Expire(r), abort)
            }
            Item::Compact(rev, tx) => {
                let (r, abort) = split(self.isolated(|w| w.apply_compact(rev)));
                (Done::Compact(tx, r), abort)
            }
        }
    }

    /// Runs `f` inside a savepoint, so that a write SQLite refuses is undone alone.
    ///
    /// `f` changes the writer's memory only after all of its SQL succeeded.
    fn isolated<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Fail>) -> Isolated<T> {
        if let Err(e) = self.exec("SAVEPOINT item") {
            return Isolated::Aborted(e);
        }
        match f(self) {
            Ok(v) => match self.exec("RELEASE item") {
                Ok(()) => Isolated::Ok(v),
                Err(e) => Isolated::Aborted(e),
            },
            Err(Fail::Request(err)) => match self.exec("RELEASE item") {
                Ok(()) => Isolated::Failed(err),
                Err(e) => Isolated::Aborted(e),
            },
            Err(Fail::Sql(err)) => {
                if self.conn.is_autocommit() {
                    return Isolated::Aborted(err);
                }
                match self
                    .exec("ROLLBACK TO item")
                    .and_then(|()| self.exec("RELEASE item"))
                {
                    Ok(()) => Isolated::Failed(db_error(&self.path, "applying a write", err)),
                    Err(_) => Isolated::Aborted(err),
                }
            }
        }
    }

    /// The live version of `key`, as the batch has left it so far.
    fn current(&self, key: &str) -> rusqlite::Result<Option<KeyValue>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {} FROM current CROSS JOIN kv ON kv.revision = current.revision
                 WHERE current.key = ?1",
                db::KV_COLUMNS
            ))?
            .query_row([key], |row| db::key_value(row, 0))
            .optional()
    }

    fn insert_row(
        &self,
        kv: &KeyValue,
        deleted: bool,
        prev_revision: Revision,
    ) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO kv (revision, key, value, create_revision, version, lease, deleted,
                                 prev_revision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                kv.mod_revision,
                kv.key,
                &kv.value[..],
                kv.create_revision,
                kv.version,
                kv.lease,
                deleted,
                prev_revision
            ])?;
        Ok(())
    }

    /// Writes the tombstone of `prev.key` at `revision` and drops the key from `current`.
    fn delete_key(&self, prev: &KeyValue, revision: Revision) -> rusqlite::Result<()> {
        let tombstone = KeyValue {
            key: prev.key.clone(),
            value: bytes::Bytes::new(),
            create_revision: 0,
            mod_revision: revision,
            version: 0,
            lease: 0,
        };
        self.insert_row(&tombstone, true, prev.mod_revision)?;
        self.conn
            .prepare_cached("DELETE FROM current WHERE key = ?1")?
            .execute([&prev.key])?;
        Ok(())
    }

    fn apply_txn(
        &mut self,
        txn: &Txn,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<TxnResponse, Fail> {
        if txn.key.is_empty() {
            return Err(Fail::Request(Error::InvalidArgument(
                "a transaction needs a key".into(),
            )));
        }
        let current = self.current(&txn.key)?;
        let holds = match txn.compare {
            Compare::Always => true,
            Compare::ModRevision(0) => current.is_none(),
            Compare::ModRevision(rev) => current.as_ref().is_some_and(|c| c.mod_revision == rev),
        };
        if !holds {
            return Ok(TxnResponse::Rejected {
                revision: self.revision,
                current,
            });
        }
        match &txn.op {
            TxnOp::Put { value, lease } => {
                if *lease != 0 && !self.leases.is_live(*lease, now) {
                    return Err(Fail::Request(Error::LeaseNotFound(*lease)));
                }
                let revision = self.revision + 1;
                let kv = KeyValue {
                    key: txn.key.clone(),
                    value: value.clone(),
                    create_revision: current.as_ref().map_or(revision, |c| c.create_revision),
                    mod_revision: revision,
                    version: current.as_ref().map_or(1, |c| c.version + 1),
                    lease: *lease,
                };
                self.insert_row(&kv, false, current.as_ref().map_or(0, |c| c.mod_revision))?;
                self.conn
                    .prepare_cached(
                        "INSERT INTO current (key, revision, lease) VALUES (?1, ?2, ?3)
                         ON CONFLICT (key) DO UPDATE
                         SET revision = excluded.revision, lease = excluded.lease",
                    )?
                    .execute(params![kv.key, revision, lease])?;
                self.revision = revision;
                events.push(Event::Put {
                    kv,
                    prev: current.clone(),
                });
                Ok(TxnResponse::Applied {
                    revision,
                    prev: current,
                })
            }
            TxnOp::Delete => {
                let Some(prev) = current else {
                    // Deleting an absent key writes nothing.
                    return Ok(TxnResponse::Applied {
                        revision: self.revision,
                        prev: None,
                    });
                };
                let revision = self.revision + 1;
                self.delete_key(&prev, revision)?;
                self.revision = revision;
                events.push(Event::Delete {
                    key: prev.key.clone(),
                    revision,
                    prev: Some(prev.clone()),
                });
                Ok(TxnResponse::Applied {
                    revision,
                    prev: Some(prev),
                })
            }
        }
    }

    fn apply_grant(
        &mut self,
        ttl: Duration,
        now: Instant,
        undo: &mut Vec<Undo>,
    ) -> Result<LeaseId, Fail> {
        if ttl.is_zero() {
            return Err(Fail::Request(Error::InvalidArgument(
                "a lease needs a positive ttl".into(),
            )));
        }
        let id = self.next_lease_id;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        self.conn
            .prepare_cached("INSERT INTO lease (id, ttl_ms) VALUES (?1, ?2)")?
            .execute(params![id, ttl_ms])?;
        self.next_lease_id = id + 1;
        self.leases.grant(id, ttl, now);
        undo.push(Undo::Granted(id));
        Ok(id)
    }

    /// Deletes the lease and every key attached to it, each delete at its own revision.
    fn apply_revoke(
        &mut self,
        id: LeaseId,
        events: &mut Vec<Event>,
        undo: &mut Vec<Undo>,
    ) -> Result<(), Fail> {
        if !self.leases.contains(id) {
            return Err(Fail::Request(Error::LeaseNotFound(id)));
        }
        let keys: Vec<String> = self
            .conn
            // `lease != 0` lets SQLite use the partial index without looking at the bound value.
            .prepare_cached("SELECT key FROM current WHERE lease = ?1 AND lease != 0 ORDER BY key")?
            .query_map([id], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut revision = self.revision;
        let mut deleted = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(prev) = self.current(&key)? else {
                continue;
            };
            revision += 1;
            self.delete_key(&prev, revision)?;
            deleted.push(Event::Delete {
                key,
                revision,
                prev: Some(prev),
            });
        }
        self.conn
            .prepare_cached("DELETE FROM lease WHERE id = ?1")?
            .execute([id])?;
        self.revision = revision;
        events.append(&mut deleted);
        if let Some(lease) = self.leases.remove(id) {
            undo.push(Undo::Revoked(id, lease));
        }
        Ok(())
    }

    /// Moves the compacted revision (persisted with the batch); the rows go in later steps.
    fn apply_compact(&mut self, revision: Revision) -> Result<(), Fail> {
        if revision <= self.compact_revision {
            return Err(Fail::Request(Error::Compacted {
                requested: revision,
                compacted: self.compact_revision,
            }));
        }
        if revision > self.revision {
            return Err(Fail::Request(Error::FutureRevision {
                requested: revision,
                current: self.revision,
            }));
        }
        self.compact_revision = revision;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::{RangeRequest, sqlite::read};

    /// A writer on a fresh database in `dir`, as the store would start it.
    pub(in crate::sqlite) fn writer(dir: &Path, compaction_batch: usize) -> anyhow::Result<Writer> {
        let path = dir.join("state.db");
        let lock = db::lock(&path)?;
        let opened = db::open_writer(&path, true)?;
        let hub = Arc::new(Hub::new(opened.revision, opened.compact_revision));
        let config = WriterConfig {
            max_batch: 1000,
            history_revisions: 0,
            history_age: Duration::ZERO,
            compaction_interval: None,
            compaction_batch,
            vacuum_pages: 256,
        };
        Ok(Writer::new(opened, lock, path, config, hub))
    }

    fn txn(txn: Txn) -> (Item, oneshot::Receiver<Result<TxnResponse>>) {
        let (tx, rx) = oneshot::channel();
        (Item::Txn(txn, tx), rx)
    }

    fn answer<T>(mut rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        rx.try_recv().unwrap_or(Err(Error::Closed))
    }

    /// Applies `txns` as one batch and returns their answers in order.
    pub(in crate::sqlite) fn batch(w: &mut Writer, txns: Vec<Txn>) -> Vec<Result<TxnResponse>> {
        let (items, rxs): (Vec<_>, Vec<_>) = txns.into_iter().map(txn).unzip();
        w.run_batch(items);
        rxs.into_iter().map(answer).collect()
    }

    #[test]
    fn writes_of_one_batch_get_consecutive_revisions_and_see_each_other() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut w = writer(dir.path(), 100)?;
        let answers = batch(
            &mut w,
            vec![
                Txn::create("a", "1"),
                Txn::create("a", "again"),
                Txn::update("a", 1, "2"),
                Txn::put("b", "1"),
            ],
        );
        assert!(matches!(
            answers[0],
            Ok(TxnResponse::Applied { revision: 1, .. })
        ));
        match &answers[1] {
            Ok(TxnResponse::Rejected {
                revision: 1,
                current: Some(kv),
            }) => assert_eq!(kv.value, "1"),
            other => panic!("second create: {other:?}"),
        }
        match &answers[2] {
            Ok(TxnResponse::Applied {
                revision: 2,
                prev: Some(prev),
            }) => assert_eq!(prev.value, "1"),
            other => panic!("update: {other:?}"),
        }
        assert!(matches!(
            answers[3],
            Ok(TxnResponse::Applied { revision: 3, .. })
        ));
        assert_eq!(db::read_meta(&w.conn, &w.path, meta::REVISION)?, 3);
        Ok(())
    }

    #[test]
    fn a_refused_write_does_not_fail_the_rest_of_its_batch() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut w = writer(dir.path(), 100)?;
        // A write SQLite itself refuses (here: a trigger) is undone alone, like one with an
        // unknown lease.
        w.conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON kv WHEN NEW.key = 'refused'
             BEGIN SELECT RAISE(ABORT, 'refused by test'); END;",
        )?;
        let answers = batch(
            &mut w,
            vec![
                Txn::put("a", "1"),
                Txn::put("leased", "x").with_lease(42),
                Txn::put("refused", "x"),
                Txn::put("b", "2"),
            ],
        );
        assert!(matches!(
            answers[0],
            Ok(TxnResponse::Applied { revision: 1, .. })
        ));
        assert!(
            matches!(answers[1], Err(Error::LeaseNotFound(42))),
            "{:?}",
            answers[1]
        );
        assert!(
            matches!(answers[2], Err(Error::Database { .. })),
            "{:?}",
            answers[2]
        );
        assert!(matches!(
            answers[3],
            Ok(TxnResponse::Applied { revision: 2, .. })
        ));
        let rows: i64 = w
            .conn
            .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
        assert_eq!(rows, 2, "nothing of the refused writes is left behind");
        Ok(())
    }

    #[test]
    fn a_batch_sqlite_rolls_back_fails_whole_and_leaves_no_trace() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut w = writer(dir.path(), 100)?;
        assert!(batch(&mut w, vec![Txn::put("before", "1")])[0].is_ok());
        let (grant, granted) = {
            let (tx, rx) = oneshot::channel();
            (Item::Grant(Duration::from_secs(60), tx), rx)
        };
        // RAISE(ROLLBACK) ends the whole transaction, as a full disk can.
        w.conn.execute_batch(
            "CREATE TEMP TRIGGER doom BEFORE INSERT ON kv WHEN NEW.key = 'doom'
             BEGIN SELECT RAISE(ROLLBACK, 'rolled back by test'); END;",
        )?;
        let (a, a_rx) = txn(Txn::put("a", "1"));
        let (doom, doom_rx) = txn(Txn::put("doom", "x"));
        let (b, b_rx) = txn(Txn::put("b", "1"));
        w.run_batch(vec![grant, a, doom, b]);
        for (what, result) in [
            ("a", answer(a_rx).map(|_| ())),
            ("doom", answer(doom_rx).map(|_| ())),
            ("b", answer(b_rx).map(|_| ())),
            ("grant", answer(granted).map(|_| ())),
        ] {
            match result {
                Err(Error::Database { reason, .. }) => {
                    assert!(reason.starts_with("writing a batch"), "{what}: {reason}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(w.revision, 1, "the revision is restored");
        assert_eq!(w.next_lease_id, 1, "the lease id is restored");
        assert_eq!(w.leases.len(), 0, "the granted lease is forgotten");

        w.conn.execute_batch("DROP TRIGGER doom")?;
        match &batch(&mut w, vec![Txn::put("after", "1")])[0] {
            Ok(TxnResponse::Applied { revision: 2, .. }) => {}
            other => panic!("the writer works on after a failed batch: {other:?}"),
        }
        let mut reader = db::open_reader(&w.path)?;
        let all = read::range(&mut reader, &w.path, &RangeRequest::range("", "\0"))?;
        let keys: Vec<&str> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["after", "before"]);
        Ok(())
    }

    #[test]
    fn revoking_a_lease_deletes_its_keys_and_only_those() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut w = writer(dir.path(), 100)?;
        let (tx, rx) = oneshot::channel();
        w.run_batch(vec![Item::Grant(Duration::from_secs(60), tx)]);
        let lease = answer(rx)?;
        let answers = batch(
            &mut w,
            vec![
                Txn::put("/l/a", "1").with_lease(lease),
                Txn::put("/l/b", "1").with_lease(lease),
                Txn::put("/l/c", "1").with_lease(lease),
                Txn::put("/l/c", "detached"),
                Txn::put("/l/d", "1"),
            ],
        );
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        let (tx, rx) = oneshot::channel();
        w.run_batch(vec![Item::Revoke(lease, tx)]);
        answer(rx)?;
        let mut reader = db::open_reader(&w.path)?;
        let left = read::range(&mut reader, &w.path, &RangeRequest::prefix("/l/"))?;
        let keys: Vec<&str> = left.kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["/l/c", "/l/d"]);
        assert_eq!(w.revision, 7, "two deletes, one revision each");
        let (tx, rx) = oneshot::channel();
        w.run_batch(vec![Item::Revoke(lease, tx)]);
        assert!(matches!(answer(rx), Err(Error::LeaseNotFound(_))));
        Ok(())
    }
}
