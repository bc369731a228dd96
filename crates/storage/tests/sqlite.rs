//! Tests of the embedded SQLite store beyond the shared conformance suite: the file stays
//! bounded under churn, bad files and bad places are refused with clear errors, a full disk
//! fails writes cleanly, and state survives restarts.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use tug_storage::{
    Error, Event, RangeRequest, Revision, Store, Txn, TxnResponse, WatchMessage, WatchRequest,
    sqlite::{SqliteConfig, SqliteStore},
};

const MIB: u64 = 1024 * 1024;

/// How long a test waits for something that must happen.
const DEADLINE: Duration = Duration::from_secs(60);

/// Writes `key` unconditionally and returns the revision.
async fn put(store: &dyn Store, key: &str, value: impl Into<Bytes>) -> anyhow::Result<Revision> {
    match store.txn(Txn::put(key, value)).await? {
        TxnResponse::Applied { revision, .. } => Ok(revision),
        other => bail!("put of {key} rejected: {other:?}"),
    }
}

/// Asserts that `result` is an [`Error::Database`] about `path` (or a file beside it, such as
/// its lock file) whose reason contains one of `words`, and returns the reason.
fn expect_database_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    path: &Path,
    words: &[&str],
) -> anyhow::Result<String> {
    match result {
        Err(Error::Database {
            path: at, reason, ..
        }) => {
            ensure!(
                at.starts_with(path) || path.starts_with(&at) || at.parent() == path.parent(),
                "the error names {} instead of {}",
                at.display(),
                path.display()
            );
            ensure!(
                words.iter().any(|w| reason.contains(w)),
                "reason {reason:?} says none of {words:?}"
            );
            ensure!(
                reason == reason.to_lowercase() && !reason.ends_with('.'),
                "reason {reason:?} is not lower-case without a trailing period"
            );
            Ok(reason)
        }
        other => bail!(
            "expected a database error about {}, got {other:?}",
            path.display()
        ),
    }
}

/// A tmpfs mounted for the length of a test; unmounted on drop, even when the test fails.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .context("running mount (these tests need root)")?;
        ensure!(
            status.success(),
            "mount -t tmpfs -o {options} failed: {status}"
        );
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn remount(&self, options: &str) -> anyhow::Result<()> {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir)
            .status()?;
        ensure!(status.success(), "remount {options} failed: {status}");
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file open: detach the mount so nothing is left behind.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// 200 000 updates of 1 000 keys with 1 KiB values, from 64 concurrent writers, with automatic
/// compaction keeping 10 000 revisions: the file must stay bounded, instead of growing to the
/// ~270 MiB that 200 000 rows of ~1.4 KiB (three 1 KiB rows fit in a 4 KiB page) take without
/// compaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_size_stays_bounded_under_churn() -> anyhow::Result<()> {
    const KEYS: usize = 1_000;
    const UPDATES: usize = 200_000;
    const WRITERS: usize = 64;
    const HISTORY: i64 = 10_000;
    // After compaction to `HISTORY` revisions, a vacuum and a WAL truncation the file holds
    // ~10 000 log rows (the 1 000 live ones are among them) at ~1.4 KiB each ≈ 13.5 MiB, the
    // key index and the current table (< 1 MiB), and at most 10% free pages kept for reuse:
    // ≈ 16 MiB (measured: 16–16.5 MiB). 24 MiB leaves room for pages that deletes left
    // partly filled, and is still a tenth of the uncompacted size.
    const FINAL_BOUND: u64 = 24 * MIB;
    // While writing, the file also holds the rows written since the last compaction ran (a
    // tick every 100 ms, steps interleaved with batches) and a WAL of up to a few MiB. 80 MiB
    // is under a third of the uncompacted size, so a compaction that does not keep up fails.
    const PEAK_BOUND: u64 = 80 * MIB;

    let dir = tempfile::tempdir()?;
    let mut config = SqliteConfig::new(dir.path().join("state.db"));
    config.history_revisions = HISTORY;
    config.history_age = Duration::ZERO;
    config.compaction_interval = Some(Duration::from_millis(100));
    let store = Arc::new(SqliteStore::open(config).await?);

    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut peak = 0;
            let mut value = vec![0u8; 1024];
            for i in 0..UPDATES / WRITERS {
                let n = w * (UPDATES / WRITERS) + i;
                value[..8].copy_from_slice(&(n as u64).to_le_bytes());
                value[8] = w as u8;
                put(
                    store.as_ref(),
                    &format!("/churn/{:04}", n % KEYS),
                    value.clone(),
                )
                .await?;
                if i % 500 == 499 {
                    peak = peak.max(store.status().await?.db_size);
                }
            }
            anyhow::Ok(peak)
        }));
    }
    let mut peak = 0;
    for task in tasks {
        peak = peak.max(task.await??);
    }
    let wrote = started.elapsed();

    let status = store.status().await?;
    ensure!(
        status.revision == UPDATES as i64,
        "revision {}",
        status.revision
    );
    store.run_maintenance().await?;
    let after = store.status().await?;
    ensure!(
        after.compact_revision == UPDATES as i64 - HISTORY,
        "compacted to {}",
        after.compact_revision
    );
    let live = store
        .range(RangeRequest::prefix("/churn/").count_only())
        .await?;
    ensure!(live.count == KEYS as i64, "{} live keys", live.count);
    // The oldest kept revision is still readable.
    let oldest = store
        .range(
            RangeRequest::prefix("/churn/")
                .at_revision(after.compact_revision)
                .count_only(),
        )
        .await?;
    ensure!(oldest.count == KEYS as i64);

    eprintln!(
        "{UPDATES} updates in {wrote:?}; peak size {:.1} MiB, after maintenance {:.1} MiB",
        peak as f64 / MIB as f64,
        after.db_size as f64 / MIB as f64
    );
    ensure!(
        peak < PEAK_BOUND,
        "the file reached {peak} bytes while writing (bound {PEAK_BOUND})"
    );
    ensure!(
        after.db_size < FINAL_BOUND,
        "the file is {} bytes after compaction (bound {FINAL_BOUND})",
        after.db_size
    );
    Ok(())
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    let text = "these are somebody's notes, not a database\n".repeat(200);
    std::fs::write(&path, &text)?;
    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(result, &path, &["not a sqlite database"])?;
    ensure!(
        std::fs::read_to_string(&path)? == text,
        "the file was changed"
    );
    Ok(())
}

#[tokio::test]
async fn a_sqlite_database_of_another_program_is_refused_and_left_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "CREATE TABLE users (name TEXT PRIMARY KEY, email TEXT);
             INSERT INTO users VALUES ('ada', 'ada@example.com');",
        )?;
    }
    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(result, &path, &["not a tug database"])?;

    let conn = rusqlite::Connection::open(&path)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ensure!(
        tables == ["sqlite_autoindex_users_1", "users"],
        "tables now {tables:?}"
    );
    let users: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    ensure!(users == 1);
    Ok(())
}

#[tokio::test]
async fn a_tug_database_of_a_newer_schema_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    SqliteStore::open(SqliteConfig::new(&path))
        .await?
        .close()
        .await?;
    rusqlite::Connection::open(&path)?.execute_batch("PRAGMA user_version = 99")?;
    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(result, &path, &["schema version 99"])?;
    Ok(())
}

/// Writes a database with some content and closes it.
async fn database_with_content(path: &Path) -> anyhow::Result<()> {
    let store = SqliteStore::open(SqliteConfig::new(path)).await?;
    for i in 0..2000 {
        put(
            &store,
            &format!("/registry/pods/ns/pod-{i:05}"),
            vec![b'x'; 500],
        )
        .await?;
    }
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_corrupt_database_is_refused_at_open() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    database_with_content(&path).await?;
    let mut bytes = std::fs::read(&path)?;
    ensure!(
        bytes.len() > 64 * 1024,
        "the database is only {} bytes",
        bytes.len()
    );
    // Garbage over a run of b-tree pages in the middle of the file.
    let middle = bytes.len() / 2 / 4096 * 4096;
    bytes[middle..middle + 4 * 4096].fill(0xa5);
    std::fs::write(&path, &bytes)?;

    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(result, &path, &["corrupt"])?;

    // Without the check at open, the damage surfaces as an error of the read that meets it.
    let mut config = SqliteConfig::new(&path);
    config.check_integrity_on_open = false;
    match SqliteStore::open(config).await {
        Err(err) => {
            expect_database_error(Err::<(), _>(err), &path, &["corrupt"])?;
        }
        Ok(store) => {
            let read = store.range(RangeRequest::prefix("/registry/")).await;
            expect_database_error(read, &path, &["corrupt"])?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_truncated_or_headless_database_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    database_with_content(&path).await?;
    let bytes = std::fs::read(&path)?;

    std::fs::write(&path, &bytes[..bytes.len() / 3])?;
    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(result, &path, &["corrupt"])?;

    let mut headless = bytes.clone();
    headless[..16].fill(0);
    std::fs::write(&path, &headless)?;
    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(result, &path, &["not a sqlite database"])?;
    Ok(())
}

#[tokio::test]
async fn a_data_directory_that_cannot_be_created_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Root ignores permission bits, but not a regular file where a directory should be.
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "x")?;
    let path = file.join("data/state.db");
    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    let reason = expect_database_error(result, &file, &["cannot create the data directory"])?;
    ensure!(!reason.is_empty());
    ensure!(std::fs::read_to_string(&file)? == "x");
    Ok(())
}

#[tokio::test]
async fn a_read_only_file_system_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mnt = dir.path().join("mnt");
    let fs = Tmpfs::mount(&mnt, "size=4m")?;
    let path = mnt.join("state.db");

    // A new database on a read-only file system.
    fs.remount("ro")?;
    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(result, &path, &["read-only"])?;

    // An existing database on a file system that became read-only.
    fs.remount("rw")?;
    let store = SqliteStore::open(SqliteConfig::new(&path)).await?;
    put(&store, "/a", "1").await?;
    store.close().await?;
    fs.remount("ro")?;
    let result = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(result, &path, &["read-only"])?;
    Ok(())
}

/// Fills a 2 MiB tmpfs until a write fails: the failure is a clean database error, nothing of
/// the failed write is left, the store works again once space is freed, and every acknowledged
/// write is there after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_cleanly_and_keeps_acknowledged_data() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mnt = dir.path().join("mnt");
    let _fs = Tmpfs::mount(&mnt, "size=2m")?;
    let path = mnt.join("state.db");
    // Space to give back later.
    let ballast = mnt.join("ballast");
    std::fs::write(&ballast, vec![0u8; 256 * 1024])?;

    let mut config = SqliteConfig::new(&path);
    config.compaction_interval = None;
    let store = SqliteStore::open(config.clone()).await?;
    let mut acked: Vec<(String, Revision)> = Vec::new();
    let failure = loop {
        ensure!(acked.len() < 10_000, "the disk never filled up");
        let key = format!("/full/{:05}", acked.len());
        match store.txn(Txn::put(&key, vec![b'v'; 16 * 1024])).await {
            Ok(TxnResponse::Applied { revision, .. }) => acked.push((key, revision)),
            Ok(other) => bail!("put rejected: {other:?}"),
            Err(err) => break err,
        }
    };
    let reason = expect_database_error(Err::<(), _>(failure), &path, &["disk is full"])?;
    eprintln!("after {} writes: {reason}", acked.len());
    ensure!(acked.len() > 10, "only {} writes fit", acked.len());

    // Nothing of the failed write is visible, and the revision did not move.
    let last = acked.last().map_or(0, |(_, rev)| *rev);
    ensure!(store.status().await?.revision == last);
    let count = store
        .range(RangeRequest::prefix("/full/").count_only())
        .await?;
    ensure!(
        count.count == acked.len() as i64,
        "{} keys for {} acks",
        count.count,
        acked.len()
    );

    // Once there is room again, writes succeed again.
    std::fs::remove_file(&ballast)?;
    let after = put(&store, "/full/after", "small").await?;
    ensure!(
        after == last + 1,
        "the write after recovery got {after}, expected {}",
        last + 1
    );
    store.close().await?;

    let store = SqliteStore::open(config).await?;
    for (key, rev) in &acked {
        let kv = store
            .get(key)
            .await?
            .with_context(|| format!("acknowledged {key} lost"))?;
        ensure!(
            kv.mod_revision == *rev && kv.value.len() == 16 * 1024,
            "{key}: {kv:?}"
        );
    }
    ensure!(store.get("/full/after").await?.is_some());
    ensure!(store.status().await?.revision == after);
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn revision_compaction_and_leases_survive_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = SqliteConfig::new(dir.path().join("state.db"));
    config.compaction_interval = None;

    let store = SqliteStore::open(config.clone()).await?;
    let lease = store.lease_grant(Duration::from_secs(60)).await?;
    store
        .txn(Txn::put("/leased", "x").with_lease(lease))
        .await?;
    let mut last = 0;
    for i in 0..10 {
        last = put(&store, &format!("/k/{i}"), "v").await?;
    }
    let newest_put = last;
    for i in 0..10 {
        let resp = store
            .txn(Txn::delete(format!("/k/{i}"), newest_put - 9 + i))
            .await?;
        ensure!(resp.applied(), "{resp:?}");
        last = resp.revision();
    }
    // Compaction deletes the rows that carried the newest revisions: the revision must stay.
    store.compact(last).await?;
    store.close().await?;

    let store = SqliteStore::open(config.clone()).await?;
    let status = store.status().await?;
    ensure!(
        status.revision == last && status.compact_revision == last,
        "{status:?}"
    );
    let next = put(&store, "/next", "v").await?;
    ensure!(
        next == last + 1,
        "revision after restart {next}, expected {}",
        last + 1
    );
    match store
        .range(RangeRequest::key("/k/0").at_revision(last - 1))
        .await
    {
        Err(Error::Compacted { compacted, .. }) if compacted == last => {}
        other => bail!("read below the persisted compaction: {other:?}"),
    }
    // The lease and its key are back, and the lease still works.
    let kv = store.get("/leased").await?.context("leased key lost")?;
    ensure!(kv.lease == lease);
    store.lease_keep_alive(lease).await?;
    let second = store.lease_grant(Duration::from_secs(60)).await?;
    ensure!(second != lease, "lease ids are not reused");
    store.lease_revoke(lease).await?;
    ensure!(store.get("/leased").await?.is_none());
    store.close().await?;

    let store = SqliteStore::open(config).await?;
    match store.lease_keep_alive(lease).await {
        Err(Error::LeaseNotFound(id)) if id == lease => {}
        other => bail!("a revoked lease came back: {other:?}"),
    }
    store.lease_keep_alive(second).await?;
    Ok(())
}

/// A watcher that does not read while thousands of separate commits happen falls behind the
/// live feed; it must catch up from the log and deliver every event exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_far_behind_loses_nothing() -> anyhow::Result<()> {
    const WRITES: i64 = 3000;
    let dir = tempfile::tempdir()?;
    let mut config = SqliteConfig::new(dir.path().join("state.db"));
    config.compaction_interval = None;
    let store = SqliteStore::open(config).await?;
    let first = put(&store, "/lag/start", "0").await?;
    let mut watch = store.watch(WatchRequest::prefix("/lag/", first)).await?;
    // One write per commit: far more batches than the live feed holds.
    for i in 1..=WRITES {
        put(&store, &format!("/lag/{}", i % 10), i.to_string()).await?;
    }
    let mut expected = first;
    while expected < first + WRITES {
        let msg = tokio::time::timeout(DEADLINE, watch.next())
            .await
            .context("watch stalled")?
            .context("watch ended")??;
        if let WatchMessage::Events(events) = msg {
            for event in events {
                ensure!(
                    event.revision() == expected,
                    "got revision {} where {expected} was due",
                    event.revision()
                );
                if event.revision() > first {
                    let Event::Put { kv, prev } = &event else {
                        bail!("unexpected {event:?}");
                    };
                    ensure!(kv.value == (event.revision() - first).to_string());
                    ensure!(
                        prev.is_some() || event.revision() - first <= 10,
                        "missing prev"
                    );
                }
                expected += 1;
            }
        }
    }
    // Nothing more is due: the next message answers a progress request, at the newest write.
    watch.request_progress();
    let msg = tokio::time::timeout(DEADLINE, watch.next())
        .await
        .context("no progress")?
        .context("watch ended")??;
    match msg {
        WatchMessage::Progress(rev) => ensure!(rev == first + WRITES, "progress at {rev}"),
        WatchMessage::Events(events) => bail!("extra events {events:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_second_store_on_the_same_file_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    let first = SqliteStore::open(SqliteConfig::new(&path)).await?;
    let second = SqliteStore::open(SqliteConfig::new(&path)).await;
    expect_database_error(second, &path, &["in use"])?;
    drop(first);
    // Dropping the store releases the file at once.
    SqliteStore::open(SqliteConfig::new(&path)).await?;
    Ok(())
}
