//! Crash durability: a process writing with many concurrent clients is killed with SIGKILL; after
//! a restart every write it saw acknowledged is present and the revision never goes backwards.
//!
//! The writer is the real `tug-storage-writer` program. For the embedded store the writer process
//! owns the database, so killing it is the crash. For etcd the store is the etcd server: the test
//! kills etcd (and the writer) and restarts etcd on the same data directory.

mod support;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use tug_storage::{Revision, Store, Txn, sqlite};

/// Acknowledged writes to wait for before each kill.
const ACKS_BEFORE_KILL: usize = 3000;

/// What the writer reported as acknowledged.
#[derive(Debug, Default)]
struct Acknowledged {
    /// Created keys and the revision of their creation.
    created: BTreeMap<String, Revision>,
    /// Counter keys and the highest acknowledged (revision, value).
    counters: BTreeMap<String, (Revision, u64)>,
    /// The highest acknowledged revision.
    max_revision: Revision,
}

impl Acknowledged {
    fn record(&mut self, line: &str) -> anyhow::Result<()> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["C", key, rev] => {
                let rev: Revision = rev.parse()?;
                self.max_revision = self.max_revision.max(rev);
                self.created.insert((*key).to_string(), rev);
            }
            ["U", key, rev, n] => {
                let rev: Revision = rev.parse()?;
                let n: u64 = n.parse()?;
                self.max_revision = self.max_revision.max(rev);
                let entry = self.counters.entry((*key).to_string()).or_default();
                if rev > entry.0 {
                    *entry = (rev, n);
                }
            }
            _ => bail!("writer printed an unexpected line: {line:?}"),
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.created.len() + self.counters.len()
    }

    /// Checks that `store` holds every acknowledged write and that new writes get revisions
    /// above every acknowledged one.
    async fn verify(&self, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        for (key, rev) in &self.created {
            let kv = store
                .get(key)
                .await?
                .with_context(|| format!("acknowledged create of {key} at {rev} was lost"))?;
            ensure!(
                kv.create_revision == *rev && kv.mod_revision == *rev,
                "{key}: acknowledged at {rev}, found {kv:?}"
            );
        }
        for (key, (rev, n)) in &self.counters {
            let kv = store
                .get(key)
                .await?
                .with_context(|| format!("acknowledged update of {key} at {rev} was lost"))?;
            let stored: u64 = std::str::from_utf8(&kv.value)?.parse()?;
            ensure!(
                kv.mod_revision >= *rev && stored >= *n,
                "{key}: acknowledged value {n} at {rev}, found {stored} at {}",
                kv.mod_revision
            );
        }
        let status = store.status().await?;
        ensure!(
            status.revision >= self.max_revision,
            "revision went backwards: {} < acknowledged {}",
            status.revision,
            self.max_revision
        );
        let resp = store.txn(Txn::put("/crash/after", "x")).await?;
        ensure!(
            resp.revision() > self.max_revision,
            "a new write got revision {} <= acknowledged {}",
            resp.revision(),
            self.max_revision
        );
        Ok(())
    }
}

/// Kills the child on drop, so a failing test leaves no writer behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the writer and collects its acknowledgements until `acks` arrived; returns the running
/// writer and a channel that keeps delivering lines until it dies.
fn start_writer(
    datastore: &str,
    round: u64,
    extra: &[&str],
    acked: &mut Acknowledged,
) -> anyhow::Result<(KillOnDrop, mpsc::Receiver<String>)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tug-storage-writer"))
        .arg(datastore)
        .args(["--clients", "64", "--round", &round.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting tug-storage-writer")?;
    let stdout = child.stdout.take().context("writer stdout")?;
    let child = KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let before = acked.len();
    while acked.len() < before + ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => acked.record(&line)?,
            Err(_) => bail!(
                "the writer acknowledged only {} writes before the deadline or its exit",
                acked.len() - before
            ),
        }
    }
    Ok((child, rx))
}

/// Drains whatever the writer printed before it died; those writes were acknowledged too.
fn drain(rx: mpsc::Receiver<String>, acked: &mut Acknowledged) -> anyhow::Result<()> {
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        acked.record(&line)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_acknowledged_write_across_kill_9() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    let url = format!("sqlite://{}", path.display());
    let mut acked = Acknowledged::default();
    // Several rounds on the same file, with compaction running underneath the writers.
    for round in 0..3 {
        let (mut writer, lines) = start_writer(
            &url,
            round,
            &["--history", "500", "--compaction-interval-ms", "50"],
            &mut acked,
        )?;
        writer.0.kill().context("kill -9 the writer")?;
        writer.0.wait()?;
        drain(lines, &mut acked)?;

        let store: Arc<dyn Store> =
            Arc::new(sqlite::SqliteStore::open(sqlite::SqliteConfig::new(&path)).await?);
        acked
            .verify(&store)
            .await
            .with_context(|| format!("after crash {round}"))?;
        drop(store);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_keeps_every_acknowledged_write_across_kill_9() -> anyhow::Result<()> {
    let mut etcd = support::etcd_server::EtcdServer::start().await?;
    let url = format!("etcd://{}", etcd.endpoints().join(","));
    let mut acked = Acknowledged::default();
    for round in 0..2 {
        let (writer, lines) = start_writer(&url, round, &[], &mut acked)?;
        etcd.kill9()?;
        drop(writer);
        drain(lines, &mut acked)?;
        etcd.restart().await?;

        let store = tug_storage::open(&url.parse()?).await?;
        acked
            .verify(&store)
            .await
            .with_context(|| format!("after etcd crash {round}"))?;
    }
    Ok(())
}
