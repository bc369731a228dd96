//! The SQLite file itself: connection settings, the schema, recognising foreign or damaged files,
//! row decoding, and turning SQLite errors into [`Error::Database`].
//!
//! # Schema (version 1)
//!
//! - `kv`: the MVCC log, one row per revision (`revision` is the rowid). A row is either a put
//!   (the key's full metadata) or a tombstone (`deleted = 1`, empty value). `prev_revision`
//!   points at the row the write replaced (the key's previous live version, `0` if none), so a
//!   watch replaying history can report previous values with one join.
//! - `current`: one row per live key pointing at its newest `kv` row, maintained in the same
//!   transaction as the log. Reads at the current revision and compare-and-swap read it instead
//!   of searching the log. Its `lease` column finds a lease's keys.
//! - `lease`: granted leases and their TTL.
//! - `meta`: the current revision (kept even when compaction deletes the rows that carried it),
//!   the compacted revision, how far compaction physically got, and the next lease id.
//!
//! The file carries `application_id` [`APPLICATION_ID`] and `user_version`
//! [`SCHEMA_VERSION`], so a SQLite database of another program is refused instead of altered.

use std::{
    fs::File,
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row};

use crate::{Error, KeyValue, LeaseId, Result, Revision};

/// The SQLite `application_id` of a Tug database: "Tug1" in ASCII.
pub(crate) const APPLICATION_ID: i32 = 0x5475_6731;

/// The schema version this code reads and writes (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// How long a connection waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL is truncated back to this size after a checkpoint resets it, so that a burst of
/// writes does not leave a large WAL file behind.
const JOURNAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

const SCHEMA: &str = "
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE kv (
    revision        INTEGER PRIMARY KEY,
    key             TEXT    NOT NULL,
    value           BLOB    NOT NULL,
    create_revision INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    lease           INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL
);
CREATE INDEX kv_by_key ON kv (key, revision, deleted);

CREATE TABLE current (
    key      TEXT    PRIMARY KEY,
    revision INTEGER NOT NULL,
    lease    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX current_by_lease ON current (lease) WHERE lease != 0;

CREATE TABLE lease (
    id     INTEGER PRIMARY KEY,
    ttl_ms INTEGER NOT NULL
);

INSERT INTO meta (name, value) VALUES
    ('revision', 0),
    ('compact_revision', 0),
    ('physical_compact_revision', 0),
    ('next_lease_id', 1);
";

/// The names of the `meta` rows.
pub(crate) mod meta {
    /// The store's current revision.
    pub(crate) const REVISION: &str = "revision";
    /// The logical compacted revision: reads below it fail.
    pub(crate) const COMPACT_REVISION: &str = "compact_revision";
    /// The revision up to which compaction has physically deleted rows.
    pub(crate) const PHYSICAL_COMPACT_REVISION: &str = "physical_compact_revision";
    /// The id the next granted lease gets.
    pub(crate) const NEXT_LEASE_ID: &str = "next_lease_id";
}

/// Builds an [`Error::Database`] for `path` from a SQLite error met while doing `context`.
pub(crate) fn db_error(path: &Path, context: &str, err: rusqlite::Error) -> Error {
    Error::Database {
        path: path.to_path_buf(),
        reason: describe(context, &err),
        source: Some(Box::new(err)),
    }
}

/// Says in a few words what a SQLite error met while doing `context` means for the file.
pub(crate) fn describe(context: &str, err: &rusqlite::Error) -> String {
    let kind = match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => "not a sqlite database".to_string(),
        Some(ErrorCode::DatabaseCorrupt) => "the database file is corrupt".to_string(),
        Some(ErrorCode::DiskFull) => "the disk is full".to_string(),
        Some(ErrorCode::CannotOpen) => "cannot open the database file".to_string(),
        Some(ErrorCode::ReadOnly) => "the database file or its directory is read-only".to_string(),
        Some(ErrorCode::PermissionDenied) => "permission denied".to_string(),
        Some(ErrorCode::SystemIoFailure) => "i/o error".to_string(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "the database is locked by another connection".to_string()
        }
        _ => match err {
            // Text that is not UTF-8 where a key belongs: the file was altered behind our back.
            rusqlite::Error::Utf8Error(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => {
                format!("the database file is corrupt ({err})")
            }
            _ => err.to_string().to_lowercase(),
        },
    };
    format!("{context}: {kind}")
}

/// Builds an [`Error::Database`] with no SQLite error behind it.
pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::Database {
        path: path.to_path_buf(),
        reason: reason.into(),
        source: None,
    }
}

/// Builds an [`Error::Database`] for `path` from an operating-system error.
pub(crate) fn io_error(path: &Path, context: &str, err: std::io::Error) -> Error {
    Error::Database {
        path: path.to_path_buf(),
        reason: format!("{context}: {}", err.to_string().to_lowercase()),
        source: Some(Box::new(err)),
    }
}

/// The path of the write-ahead log of the database at `path`.
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
}

/// The path of the lock file that keeps a second process off the database at `path`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Creates the database's directory and takes the exclusive lock that makes this process the
/// database's only writer. The lock lasts as long as the returned file is open.
///
/// A second writer would hand out revisions that the first has already used, so it is refused
/// here rather than left to corrupt the log.
pub(crate) fn lock(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(dir, "cannot create the data directory", e))?;
    }
    let lock_path = lock_path(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io_error(&lock_path, "cannot create the lock file", e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(invalid(
            path,
            "the database is in use by another tug process (its lock file is held)",
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(io_error(&lock_path, "cannot lock the lock file", e))
        }
    }
}

/// What the writer needs to know about an opened database.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The write connection.
    pub(crate) conn: Connection,
    /// The current revision.
    pub(crate) revision: Revision,
    /// The logical compacted revision.
    pub(crate) compact_revision: Revision,
    /// How far compaction physically got.
    pub(crate) physical_compact_revision: Revision,
    /// The next lease id to hand out.
    pub(crate) next_lease_id: LeaseId,
    /// The persisted leases: id and TTL.
    pub(crate) leases: Vec<(LeaseId, Duration)>,
}

/// Opens the write connection of the database at `path`: creates and initialises a new
/// database, or checks that an existing one is a Tug database of a known schema version.
pub(crate) fn open_writer(path: &Path, check_integrity: bool) -> Result<Opened> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| db_error(path, "opening", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| db_error(path, "opening", e))?;

    // The first read of the header tells a database from any other file.
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| db_error(path, "reading the database header", e))?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| db_error(path, "reading the schema", e))?;

    if application_id == 0 && objects == 0 {
        initialise(&conn, path)?;
    } else if application_id != APPLICATION_ID {
        return Err(invalid(
            path,
            format!(
                "not a tug database (a sqlite database of another program, application_id {application_id:#x})"
            ),
        ));
    }
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| db_error(path, "reading the schema version", e))?;
    if version > SCHEMA_VERSION {
        return Err(invalid(
            path,
            format!(
                "schema version {version} is newer than this tug understands ({SCHEMA_VERSION})"
            ),
        ));
    }
    if version < 1 {
        return Err(invalid(
            path,
            format!("the database file is corrupt (schema version {version})"),
        ));
    }

    configure_writer(&conn, path)?;
    if check_integrity {
        quick_check(&conn, path)?;
    }
    load(conn, path)
}

/// Creates the schema of a new database in one transaction: a failure leaves an empty file,
/// which the next open initialises again.
fn initialise(conn: &Connection, path: &Path) -> Result<()> {
    // Free pages can be handed back to the file system only if this is chosen before the
    // first table exists.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(|e| db_error(path, "creating the database", e))?;
    let script = format!(
        "BEGIN IMMEDIATE;
         {SCHEMA}
         PRAGMA application_id = {APPLICATION_ID};
         PRAGMA user_version = {SCHEMA_VERSION};
         COMMIT;"
    );
    if let Err(e) = conn.execute_batch(&script) {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(db_error(path, "creating the database", e));
    }
    tracing::info!(path = %path.display(), "created a new datastore");
    Ok(())
}

/// WAL with `synchronous=FULL`: every commit is on disk before it is acknowledged.
fn configure_writer(conn: &Connection, path: &Path) -> Result<()> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| db_error(path, "switching to write-ahead logging", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(invalid(
            path,
            format!("cannot switch to write-ahead logging (journal mode stays {mode})"),
        ));
    }
    let settings = format!(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};
         PRAGMA cache_size = -16384;"
    );
    conn.execute_batch(&settings)
        .map_err(|e| db_error(path, "configuring the connection", e))?;
    stable_plans(conn, path)?;
    Ok(())
}

/// Caches prepared statements and turns on SQLite's query planner stability guarantee.
///
/// Without the guarantee SQLite re-plans (re-parses) some statements on every run whose bound
/// values changed — a lookup of one key by `key = ?` among them — which costs more than the
/// write itself. Every statement here has one right plan whatever the values.
fn stable_plans(conn: &Connection, path: &Path) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(64);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(|e| db_error(path, "configuring the connection", e))?;
    Ok(())
}

/// Runs SQLite's `quick_check` (b-tree structure, page and record format) over the whole file.
fn quick_check(conn: &Connection, path: &Path) -> Result<()> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| db_error(path, "checking the database", e))?;
    let problems: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(|e| db_error(path, "checking the database", e))?;
    match problems.first() {
        Some(first) if problems.len() == 1 && first == "ok" => Ok(()),
        Some(first) => Err(invalid(
            path,
            format!(
                "the database file is corrupt ({} problems, first: {first})",
                problems.len()
            ),
        )),
        None => Err(invalid(
            path,
            "the database file is corrupt (integrity check gave no answer)",
        )),
    }
}

/// Reads the bookkeeping the writer keeps in memory.
fn load(conn: Connection, path: &Path) -> Result<Opened> {
    let err = |e| db_error(path, "reading the datastore's bookkeeping", e);
    let revision = read_meta(&conn, path, meta::REVISION)?;
    let compact_revision = read_meta(&conn, path, meta::COMPACT_REVISION)?;
    let physical_compact_revision = read_meta(&conn, path, meta::PHYSICAL_COMPACT_REVISION)?;
    let next_lease_id = read_meta(&conn, path, meta::NEXT_LEASE_ID)?;
    // The revision is written in the same transaction as the log, so the log can never be
    // ahead of it; if it is, the file was altered and handing out revisions again would
    // collide with existing rows.
    let newest: Option<Revision> = conn
        .query_row("SELECT max(revision) FROM kv", [], |row| row.get(0))
        .map_err(err)?;
    if newest.unwrap_or(0) > revision || compact_revision > revision {
        return Err(invalid(
            path,
            format!(
                "the database file is corrupt (the log reaches revision {}, the bookkeeping says {revision})",
                newest.unwrap_or(0).max(compact_revision)
            ),
        ));
    }
    let mut leases = Vec::new();
    {
        let mut stmt = conn
            .prepare("SELECT id, ttl_ms FROM lease ORDER BY id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
            .map_err(err)?;
        for row in rows {
            let (id, ttl_ms) = row.map_err(err)?;
            leases.push((
                id,
                Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
            ));
        }
    }
    Ok(Opened {
        conn,
        revision,
        compact_revision,
        physical_compact_revision,
        next_lease_id,
        leases,
    })
}

/// Reads one `meta` row; a missing row means the file is damaged.
pub(crate) fn read_meta(conn: &Connection, path: &Path, name: &str) -> Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name], |row| row.get(0)).optional())
        .map_err(|e| db_error(path, "reading the datastore's bookkeeping", e))?
        .ok_or_else(|| {
            invalid(
                path,
                format!("the database file is corrupt (bookkeeping entry {name:?} is missing)"),
            )
        })
}

/// Opens one read connection. It never writes (`query_only`), and in WAL mode it reads a
/// snapshot without waiting for the writer.
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| db_error(path, "opening a read connection", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|()| conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -8192;"))
        .map_err(|e| db_error(path, "opening a read connection", e))?;
    stable_plans(&conn, path)?;
    Ok(conn)
}

/// The columns [`key_value`] decodes, in order, for a `kv` table aliased `kv`.
pub(crate) const KV_COLUMNS: &str =
    "kv.key, kv.value, kv.create_revision, kv.revision, kv.version, kv.lease";

/// Decodes the [`KV_COLUMNS`] starting at column `at`.
pub(crate) fn key_value(row: &Row<'_>, at: usize) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: row.get(at)?,
        value: Bytes::from(row.get::<_, Vec<u8>>(at + 1)?),
        create_revision: row.get(at + 2)?,
        mod_revision: row.get(at + 3)?,
        version: row.get(at + 4)?,
        lease: row.get(at + 5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_gets_the_schema_and_reopens() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nested/state.db");
        let _lock = lock(&path)?;
        let opened = open_writer(&path, true)?;
        assert_eq!(opened.revision, 0);
        assert_eq!(opened.next_lease_id, 1);
        drop(opened);
        let again = open_writer(&path, true)?;
        let id: i32 = again
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))?;
        assert_eq!(id, APPLICATION_ID);
        let vacuum: i32 = again
            .conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
        assert_eq!(vacuum, 2, "auto_vacuum is incremental");
        Ok(())
    }

    #[test]
    fn a_second_lock_on_the_same_database_is_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.db");
        let first = lock(&path)?;
        match lock(&path) {
            Err(Error::Database { reason, .. }) => assert!(reason.contains("in use"), "{reason}"),
            other => panic!("second lock: {other:?}"),
        }
        drop(first);
        lock(&path)?;
        Ok(())
    }

    #[test]
    fn errors_name_the_file_and_say_what_is_wrong() {
        let err = db_error(
            Path::new("/data/state.db"),
            "committing",
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                None,
            ),
        );
        assert_eq!(
            err.to_string(),
            "datastore /data/state.db: committing: the disk is full"
        );
    }
}
