//! Reads: a small pool of read connections (WAL readers never wait for the writer) and the
//! queries they run — ranges at the current or a past revision, history replay for watches, and
//! the store's status.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::Semaphore;

use super::db::{self, KV_COLUMNS, db_error, key_value, meta};
use crate::{Error, Event, RangeRequest, RangeResponse, Result, Revision, StoreStatus};

/// A fixed set of read connections, lent out one per blocking task.
#[derive(Debug)]
pub(crate) struct ReadPool {
    path: PathBuf,
    conns: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// Opens `size` read connections to the database at `path`.
    pub(crate) fn open(path: &Path, size: usize) -> Result<Self> {
        let size = size.max(1);
        let conns = (0..size)
            .map(|_| db::open_reader(path))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            conns: Mutex::new(conns),
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    /// Runs `f` on a read connection in a blocking task.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Path) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let Some(mut conn) = pool.lock().pop() else {
                // The semaphore hands out as many permits as there are connections, so this
                // only happens after `close`.
                return Err(Error::Closed);
            };
            let result = f(&mut conn, &pool.path);
            pool.lock().push(conn);
            result
        })
        .await
        .map_err(|e| Error::Database {
            path: self.path.clone(),
            reason: "a read task failed".into(),
            source: Some(Box::new(e)),
        })?
    }

    /// Closes every connection; later reads fail with [`Error::Closed`].
    pub(crate) fn close(&self) {
        self.permits.close();
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which keys a request covers, in the form the SQL needs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bounds<'a> {
    /// Exactly this key.
    Key(&'a str),
    /// `[start, end)`.
    Range(&'a str, &'a str),
    /// Every key from `start` on (a range end of `"\0"`).
    From(&'a str),
}

impl<'a> Bounds<'a> {
    /// The bounds of `key` / `range_end` as the API gives them.
    pub(crate) fn new(key: &'a str, range_end: Option<&'a str>) -> Self {
        match range_end {
            None => Self::Key(key),
            Some("\0") => Self::From(key),
            Some(end) => Self::Range(key, end),
        }
    }

    /// The condition on `column`, with the bounds bound to parameters `?1` and `?2`.
    fn condition(self, column: &str) -> String {
        match self {
            Self::Key(_) => format!("{column} = ?1"),
            Self::Range(..) => format!("{column} >= ?1 AND {column} < ?2"),
            Self::From(_) => format!("{column} >= ?1"),
        }
    }

    /// The parameters `?1` and `?2` (an unused `?2` is bound to the start key again; statements
    /// that use it must have a parameter numbered above 2, so that SQLite counts it).
    fn params(self) -> (&'a str, &'a str) {
        match self {
            Self::Key(k) | Self::From(k) => (k, k),
            Self::Range(start, end) => (start, end),
        }
    }
}

/// The current and the compacted revision, read inside `tx`'s snapshot.
fn revisions(tx: &Transaction<'_>, path: &Path) -> Result<(Revision, Revision)> {
    Ok((
        db::read_meta(tx, path, meta::REVISION)?,
        db::read_meta(tx, path, meta::COMPACT_REVISION)?,
    ))
}

fn begin<'c>(conn: &'c mut Connection, path: &Path) -> Result<Transaction<'c>> {
    conn.transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(|e| db_error(path, "starting a read", e))
}

/// Serves a [`RangeRequest`] from one consistent snapshot.
pub(crate) fn range(
    conn: &mut Connection,
    path: &Path,
    req: &RangeRequest,
) -> Result<RangeResponse> {
    if req.revision < 0 {
        return Err(Error::InvalidArgument(format!(
            "range revision {} is negative",
            req.revision
        )));
    }
    let tx = begin(conn, path)?;
    let (current, compacted) = revisions(&tx, path)?;
    if req.revision > current {
        return Err(Error::FutureRevision {
            requested: req.revision,
            current,
        });
    }
    if req.revision > 0 && req.revision < compacted {
        return Err(Error::Compacted {
            requested: req.revision,
            compacted,
        });
    }
    let bounds = Bounds::new(&req.key, req.range_end.as_deref());
    let err = |e| db_error(path, "reading a range", e);
    let mut resp = if req.revision == 0 || req.revision == current {
        range_current(&tx, bounds, req).map_err(err)?
    } else {
        range_past(&tx, bounds, req).map_err(err)?
    };
    resp.revision = current;
    Ok(resp)
}

/// `LIMIT` for SQL: `-1` is no limit.
fn sql_limit(limit: usize) -> i64 {
    if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX)
    }
}

/// Reads the live keys from the `current` table.
fn range_current(
    tx: &Transaction<'_>,
    bounds: Bounds<'_>,
    req: &RangeRequest,
) -> rusqlite::Result<RangeResponse> {
    let (p1, p2) = bounds.params();
    let cond = bounds.condition("current.key");
    let mut count_stmt =
        tx.prepare_cached(&format!("SELECT count(*) FROM current WHERE {cond}"))?;
    let count: i64 = match bounds {
        Bounds::Range(..) => count_stmt.query_row(params![p1, p2], |row| row.get(0))?,
        Bounds::Key(_) | Bounds::From(_) => count_stmt.query_row(params![p1], |row| row.get(0))?,
    };
    let mut kvs = Vec::new();
    if !req.count_only && count > 0 {
        // CROSS JOIN keeps `current` as the outer loop: a range scan of the key index with one
        // rowid lookup per key.
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {KV_COLUMNS} FROM current CROSS JOIN kv ON kv.revision = current.revision
             WHERE {cond} ORDER BY current.key LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![p1, p2, sql_limit(req.limit)], |row| {
            key_value(row, 0)
        })?;
        for row in rows {
            kvs.push(row?);
        }
    }
    Ok(RangeResponse {
        more: !req.count_only && usize::try_from(count).unwrap_or(0) > kvs.len(),
        kvs,
        count,
        revision: 0,
    })
}

/// Reads the keys as they were at `req.revision` from the log: per key the newest row at or
/// before the revision, unless that row is a tombstone.
fn range_past(
    tx: &Transaction<'_>,
    bounds: Bounds<'_>,
    req: &RangeRequest,
) -> rusqlite::Result<RangeResponse> {
    let (p1, p2) = bounds.params();
    // First pass over the covering index (key, revision, deleted) only: which keys are live at
    // the revision and which row holds each. With max(), SQLite takes the bare `deleted` column
    // from the row that has the maximum.
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT max(revision), deleted FROM kv WHERE {} AND revision <= ?3
         GROUP BY key ORDER BY key",
        bounds.condition("key")
    ))?;
    let rows = stmt.query_map(params![p1, p2, req.revision], |row| {
        Ok((row.get::<_, Revision>(0)?, row.get::<_, bool>(1)?))
    })?;
    let mut count: i64 = 0;
    let mut wanted = Vec::new();
    for row in rows {
        let (revision, deleted) = row?;
        if deleted {
            continue;
        }
        count += 1;
        if !req.count_only && (req.limit == 0 || wanted.len() < req.limit) {
            wanted.push(revision);
        }
    }
    let mut fetch = tx.prepare_cached(&format!(
        "SELECT {KV_COLUMNS} FROM kv WHERE kv.revision = ?1"
    ))?;
    let mut kvs = Vec::with_capacity(wanted.len());
    for revision in wanted {
        if let Some(kv) = fetch
            .query_row([revision], |row| key_value(row, 0))
            .optional()?
        {
            kvs.push(kv);
        }
    }
    Ok(RangeResponse {
        more: !req.count_only && usize::try_from(count).unwrap_or(0) > kvs.len(),
        kvs,
        count,
        revision: 0,
    })
}

/// A slice of history read for a watch.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// The changes in range, in revision order.
    pub(crate) events: Vec<Event>,
    /// Every revision up to here has been scanned.
    pub(crate) through: Revision,
}

/// Reads the changes to keys in `bounds` with revisions in `[from, to]`, at most `max_events`
/// of them, with their previous values. Fails with [`Error::Compacted`] if `from` is below the
/// compacted revision (rows at or above it are never removed by compaction).
pub(crate) fn replay(
    conn: &mut Connection,
    path: &Path,
    key: &str,
    range_end: Option<&str>,
    from: Revision,
    to: Revision,
    max_events: usize,
) -> Result<Replayed> {
    let tx = begin(conn, path)?;
    let (_, compacted) = revisions(&tx, path)?;
    if from < compacted {
        return Err(Error::Compacted {
            requested: from,
            compacted,
        });
    }
    let bounds = Bounds::new(key, range_end);
    let (p1, p2) = bounds.params();
    let err = |e| db_error(path, "replaying history for a watch", e);
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {KV_COLUMNS}, kv.deleted,
                    p.key, p.value, p.create_revision, p.revision, p.version, p.lease
             FROM kv LEFT JOIN kv AS p ON p.revision = kv.prev_revision AND kv.prev_revision != 0
             WHERE kv.revision >= ?3 AND kv.revision <= ?4 AND {}
             ORDER BY kv.revision LIMIT ?5",
            bounds.condition("kv.key")
        ))
        .map_err(err)?;
    let rows = stmt
        .query_map(params![p1, p2, from, to, sql_limit(max_events)], |row| {
            let kv = key_value(row, 0)?;
            let deleted: bool = row.get(6)?;
            let prev = match row.get::<_, Option<Revision>>(10)? {
                Some(_) => Some(key_value(row, 7)?),
                None => None,
            };
            Ok(if deleted {
                Event::Delete {
                    key: kv.key,
                    revision: kv.mod_revision,
                    prev,
                }
            } else {
                Event::Put { kv, prev }
            })
        })
        .map_err(err)?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row.map_err(err)?);
    }
    let through = if max_events > 0 && events.len() >= max_events {
        events.last().map_or(to, Event::revision)
    } else {
        to
    };
    Ok(Replayed { events, through })
}

/// The store's revision, compacted revision and size on disk (database plus WAL).
pub(crate) fn status(conn: &mut Connection, path: &Path) -> Result<StoreStatus> {
    let tx = begin(conn, path)?;
    let (revision, compact_revision) = revisions(&tx, path)?;
    drop(tx);
    Ok(StoreStatus {
        revision,
        compact_revision,
        db_size: disk_size(path),
    })
}

/// The bytes the database and its WAL take on disk.
pub(crate) fn disk_size(path: &Path) -> u64 {
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    len(path) + len(&db::wal_path(path))
}
