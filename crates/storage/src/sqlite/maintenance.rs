//! Compaction and the upkeep of the file, run by the writer in small steps between write
//! batches so that no write waits for more than one step.
//!
//! A compaction to revision `C` first moves the compacted revision (a write in a normal batch:
//! from then on reads and watches below `C` fail), then deletes rows in steps of at most
//! `compaction_batch` log rows, in revision order, each step its own transaction:
//!
//! - a row superseded by a newer row of the same key at or below `C` (nobody can read it any
//!   more: every readable revision is at or above `C`, where the newer row hides it);
//! - a tombstone below `C` (the rows it hid are superseded by it, so they went in the same or
//!   an earlier step). A tombstone exactly at `C` stays until the next compaction, so that a
//!   watch starting at `C` still sees that delete.
//!
//! Rows at or above `C` are never deleted, which is what lets a reader at any revision
//! `>= C` read while the steps run. The steps' progress is not persisted: after a restart a
//! cut-short compaction starts over (deleting is idempotent), which `physical_compact_revision`
//! detects.
//!
//! When the rows are gone, free pages beyond a slack of 10% are handed back to the file system
//! (`auto_vacuum = INCREMENTAL`, again in steps) and the WAL is checkpointed and truncated, so
//! the file stays bounded under steady churn.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use rusqlite::{OptionalExtension, params};
use tokio::sync::oneshot;

use super::{
    db::{self, meta},
    writer::Writer,
};
use crate::{Result, Revision};

/// How long maintenance waits after a failed step before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// How long a checkpoint waits for readers of old snapshots before giving up for this round.
const CHECKPOINT_BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// Free pages kept for reuse rather than returned to the file system: a tenth of the file.
const FREE_SLACK_DIVISOR: i64 = 10;

/// The pending upkeep work and who waits for it.
#[derive(Debug)]
pub(crate) struct Maintenance {
    /// A compaction whose rows are not all deleted yet.
    job: Option<Job>,
    /// Free pages may need to be returned to the file system.
    vacuum: bool,
    /// The WAL should be checkpointed and truncated.
    checkpoint: bool,
    /// Callers answered once all of the above is done.
    waiters: Vec<oneshot::Sender<Result<()>>>,
    /// After a failed step: not before then.
    retry_at: Option<Instant>,
    /// (time, revision) samples, to find the revision that was current `history_age` ago.
    samples: VecDeque<(Instant, Revision)>,
}

#[derive(Clone, Copy, Debug)]
struct Job {
    /// The compacted revision.
    target: Revision,
    /// Rows up to here have been examined.
    cursor: Revision,
}

impl Maintenance {
    /// No work yet; the store was at `revision` at `now` (older revisions count as written
    /// then, which errs on the side of keeping history).
    pub(crate) fn new(now: Instant, revision: Revision) -> Self {
        Self {
            job: None,
            vacuum: false,
            checkpoint: false,
            waiters: Vec::new(),
            retry_at: None,
            samples: VecDeque::from([(now, revision)]),
        }
    }

    /// Schedules deleting the rows a compaction to `target` made unreadable.
    pub(crate) fn compact_to(&mut self, target: Revision) {
        match &mut self.job {
            Some(job) if job.target >= target => {}
            // Rows already examined may be superseded within the new, larger bound: start over.
            Some(job) => *job = Job { target, cursor: 0 },
            None => self.job = Some(Job { target, cursor: 0 }),
        }
    }

    /// Answers `tx` once the pending work is done.
    pub(crate) fn wait(&mut self, tx: oneshot::Sender<Result<()>>) {
        if self.has_work() {
            self.waiters.push(tx);
        } else {
            let _ = tx.send(Ok(()));
        }
    }

    /// Asks for a vacuum and a checkpoint, and answers `tx` once they (and any compaction)
    /// are done.
    pub(crate) fn full_pass(&mut self, tx: oneshot::Sender<Result<()>>) {
        self.vacuum = true;
        self.checkpoint = true;
        self.waiters.push(tx);
    }

    fn has_work(&self) -> bool {
        self.job.is_some() || self.vacuum || self.checkpoint
    }

    /// Whether a step should run now.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.has_work() && self.retry_at.is_none_or(|at| now >= at)
    }

    /// When a failed step may be retried.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| self.has_work())
    }

    /// The revision automatic compaction may compact to: `history_revisions` behind the
    /// current one and no newer than the revision that was current `history_age` ago.
    pub(crate) fn auto_target(
        &mut self,
        now: Instant,
        revision: Revision,
        history_revisions: i64,
        history_age: Duration,
    ) -> Revision {
        self.samples.push_back((now, revision));
        let by_count = revision.saturating_sub(history_revisions.max(0));
        let Some(cutoff) = now.checked_sub(history_age) else {
            return 0;
        };
        // Keep the newest sample at or before the cutoff and everything after it.
        while self.samples.len() > 1 && self.samples.get(1).is_some_and(|(t, _)| *t <= cutoff) {
            self.samples.pop_front();
        }
        let by_age = match self.samples.front() {
            Some((t, rev)) if *t <= cutoff => *rev,
            _ => 0,
        };
        by_count.min(by_age)
    }
}

impl Writer {
    /// Runs one bounded step of the pending upkeep.
    pub(crate) fn maintenance_step(&mut self) {
        let result = if let Some(job) = self.maintenance.job {
            self.compaction_step(job)
        } else if self.maintenance.vacuum {
            self.vacuum_step()
        } else if self.maintenance.checkpoint {
            self.checkpoint_step()
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {
                self.maintenance.retry_at = None;
                if !self.maintenance.has_work() {
                    for tx in self.maintenance.waiters.drain(..) {
                        let _ = tx.send(Ok(()));
                    }
                }
            }
            Err(err) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                let reason = db::describe("compacting", &err);
                tracing::warn!(path = %self.path.display(), %reason, "datastore maintenance failed, retrying later");
                self.maintenance.retry_at = Some(Instant::now() + RETRY);
                let shared = std::sync::Arc::new(err);
                for tx in self.maintenance.waiters.drain(..) {
                    let _ = tx.send(Err(crate::Error::Database {
                        path: self.path.clone(),
                        reason: reason.clone(),
                        source: Some(Box::new(shared.clone())),
                    }));
                }
            }
        }
    }

    /// Deletes the garbage among the next `compaction_batch` rows of the log.
    fn compaction_step(&mut self, job: Job) -> rusqlite::Result<()> {
        let offset = i64::try_from(self.config.compaction_batch.max(1) - 1).unwrap_or(0);
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let end: Option<Revision> = self
            .conn
            .prepare_cached(
                "SELECT revision FROM kv WHERE revision > ?1 AND revision <= ?2
                 ORDER BY revision LIMIT 1 OFFSET ?3",
            )?
            .query_row(params![job.cursor, job.target, offset], |row| row.get(0))
            .optional()?;
        let last = end.is_none();
        let end = end.unwrap_or(job.target);
        let deleted = self
            .conn
            .prepare_cached(
                "DELETE FROM kv WHERE revision > ?1 AND revision <= ?2 AND (
                     (deleted = 1 AND revision < ?3)
                     OR EXISTS (SELECT 1 FROM kv AS newer
                                WHERE newer.key = kv.key
                                  AND newer.revision > kv.revision
                                  AND newer.revision <= ?3))",
            )?
            .execute(params![job.cursor, end, job.target])?;
        if last {
            self.conn
                .prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?
                .execute(params![meta::PHYSICAL_COMPACT_REVISION, job.target])?;
        }
        self.conn.execute_batch("COMMIT")?;
        tracing::trace!(from = job.cursor, to = end, deleted, "compaction step");
        if last {
            tracing::debug!(revision = job.target, "compaction finished");
            self.maintenance.job = None;
            self.maintenance.vacuum = true;
            self.maintenance.checkpoint = true;
        } else if let Some(current) = &mut self.maintenance.job {
            current.cursor = end;
        }
        Ok(())
    }

    /// Returns a slice of free pages to the file system while more than the slack is free.
    fn vacuum_step(&mut self) -> rusqlite::Result<()> {
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |row| row.get(0))?;
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |row| row.get(0))?;
        if free <= 64 || free <= pages / FREE_SLACK_DIVISOR {
            self.maintenance.vacuum = false;
            return Ok(());
        }
        let excess = free - pages / FREE_SLACK_DIVISOR;
        let n = excess.min(i64::try_from(self.config.vacuum_pages).unwrap_or(256));
        self.conn
            .execute_batch(&format!("PRAGMA incremental_vacuum({n})"))?;
        let left: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |row| row.get(0))?;
        if left >= free {
            // Nothing was freed (a file without incremental auto-vacuum): stop here rather
            // than try forever.
            self.maintenance.vacuum = false;
        }
        tracing::trace!(freed = free - left, left, pages, "vacuum step");
        Ok(())
    }

    /// Copies the WAL into the database and truncates it to zero bytes.
    fn checkpoint_step(&mut self) -> rusqlite::Result<()> {
        self.maintenance.checkpoint = false;
        self.conn.busy_timeout(CHECKPOINT_BUSY_TIMEOUT)?;
        let result = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
            });
        self.conn.busy_timeout(Duration::from_secs(5))?;
        let (busy, wal_pages) = result?;
        if busy != 0 {
            // Readers of old snapshots are still there; the next compaction tries again.
            tracing::debug!(
                wal_pages,
                "wal checkpoint could not finish, readers are busy"
            );
        } else {
            tracing::debug!(
                wal_pages,
                size = super::read::disk_size(&self.path),
                "wal checkpointed and truncated"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{
        RangeRequest, Txn,
        sqlite::{db, read, writer::tests as w},
    };

    #[test]
    fn every_revision_from_the_compacted_one_on_stays_readable_between_steps() -> anyhow::Result<()>
    {
        let dir = tempfile::tempdir()?;
        // Three rows per step, so that readers see many intermediate states.
        let mut writer = w::writer(dir.path(), 3)?;
        // The state after each revision, as a model.
        let mut states: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
        let mut state = BTreeMap::new();
        for i in 0..60 {
            let key = format!("/k/{}", i % 5);
            let txn = if i % 7 == 6 {
                Txn {
                    key: key.clone(),
                    compare: crate::Compare::Always,
                    op: crate::TxnOp::Delete,
                }
            } else {
                Txn::put(key.clone(), i.to_string())
            };
            let applied = w::batch(&mut writer, vec![txn]);
            let revision = match &applied[0] {
                Ok(resp) => resp.revision(),
                Err(e) => anyhow::bail!("write {i}: {e}"),
            };
            if i % 7 == 6 {
                if state.remove(&key).is_none() {
                    continue; // deleting an absent key wrote nothing
                }
            } else {
                state.insert(key, i.to_string());
            }
            assert_eq!(revision as usize, states.len());
            states.push(state.clone());
        }
        let current = writer.revision;
        let target = current - 20;
        let (tx, mut rx) = oneshot::channel();
        writer.maintenance.wait(tx);
        assert!(rx.try_recv().is_ok(), "nothing to wait for yet");
        writer.maintenance.compact_to(target);
        writer.compact_revision = target;

        let mut reader = db::open_reader(&writer.path)?;
        let rows = |w: &Writer| -> anyhow::Result<i64> {
            Ok(w.conn
                .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?)
        };
        let before = rows(&writer)?;
        let mut steps = 0;
        while writer.maintenance.job.is_some() {
            writer.maintenance_step();
            steps += 1;
            for rev in target..=current {
                let got: BTreeMap<String, String> = read::range(
                    &mut reader,
                    &writer.path,
                    &RangeRequest::prefix("/k/").at_revision(rev),
                )?
                .kvs
                .into_iter()
                .map(|kv| (kv.key, String::from_utf8_lossy(&kv.value).into_owned()))
                .collect();
                assert_eq!(
                    got, states[rev as usize],
                    "state at {rev} after step {steps}"
                );
            }
        }
        assert!(steps > 5, "compaction ran in {steps} steps");
        let after = rows(&writer)?;
        assert!(after < before, "rows before {before}, after {after}");
        // Every row at or after the compacted revision is still there for watches.
        let replayed = read::replay(
            &mut reader,
            &writer.path,
            "/k/",
            Some("/k0"),
            target,
            current,
            0,
        )?;
        let revisions: Vec<Revision> = replayed.events.iter().map(crate::Event::revision).collect();
        assert_eq!(revisions, (target..=current).collect::<Vec<_>>());
        // At most one row per key below the compacted revision survives.
        let old: i64 = writer.conn.query_row(
            "SELECT count(*) FROM kv WHERE revision < ?1",
            [target],
            |r| r.get(0),
        )?;
        assert!(old <= 5, "{old} rows below the compacted revision");
        Ok(())
    }

    #[test]
    fn automatic_compaction_keeps_both_enough_revisions_and_enough_time() {
        let start = Instant::now();
        let mut m = Maintenance::new(start, 100);
        let age = Duration::from_secs(60);
        // Not a minute old yet: nothing may go, however many revisions there are.
        assert_eq!(
            m.auto_target(start + Duration::from_secs(30), 50_000, 1000, age),
            0
        );
        // A minute after the start, everything up to the revision current then (100) may go.
        assert_eq!(
            m.auto_target(start + Duration::from_secs(61), 60_000, 1000, age),
            100
        );
        // Ninety-one seconds in, the sample from second 30 (50 000) is a minute old.
        assert_eq!(
            m.auto_target(start + Duration::from_secs(91), 70_000, 1000, age),
            50_000
        );
        // The revision count binds when it is the tighter limit.
        assert_eq!(
            m.auto_target(start + Duration::from_secs(200), 70_500, 1000, age),
            69_500
        );
        assert!(
            m.samples.len() <= 3,
            "old samples are dropped: {:?}",
            m.samples
        );
    }

    #[test]
    fn a_larger_compaction_restarts_the_scan_and_a_smaller_one_is_absorbed() {
        let mut m = Maintenance::new(Instant::now(), 0);
        m.compact_to(10);
        if let Some(job) = &mut m.job {
            job.cursor = 5;
        }
        m.compact_to(8);
        assert!(matches!(
            m.job,
            Some(Job {
                target: 10,
                cursor: 5
            })
        ));
        m.compact_to(20);
        assert!(matches!(
            m.job,
            Some(Job {
                target: 20,
                cursor: 0
            })
        ));
    }
}
