//! Datastore benchmark: the same workloads against the embedded SQLite store and a local etcd,
//! in one run, side by side.
//!
//! `cargo bench -p tug-storage --bench storage [-- --seconds S]`
//!
//! Workloads: 1 KiB values, creates of fresh keys and compare-and-swap updates of existing keys,
//! with 1, 16 and 128 concurrent clients. Each cell runs for a fixed time and reports ops/s and
//! p50/p99 latency; the table ends with the embedded/etcd throughput ratio and the RSS of each
//! store's process. Every write is durable (fsynced) in both stores.

#[path = "../tests/support/etcd_server.rs"]
#[allow(
    dead_code,
    reason = "the benchmark uses only part of the test launcher"
)]
mod etcd_server;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use tug_storage::{
    Store, Txn, TxnResponse,
    etcd::{EtcdConfig, EtcdStore},
    sqlite::{SqliteConfig, SqliteStore},
};

const CLIENTS: [usize; 3] = [1, 16, 128];
const VALUE_SIZE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Create,
    CasUpdate,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::CasUpdate => "cas-update",
        }
    }
}

/// The figures of one cell of the table.
#[derive(Debug)]
struct Figures {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `workload` with `clients` concurrent clients for `duration`.
async fn run(
    store: Arc<dyn Store>,
    workload: Workload,
    clients: usize,
    duration: Duration,
    tag: &str,
) -> anyhow::Result<Figures> {
    let value = bytes::Bytes::from(vec![b'x'; VALUE_SIZE]);
    // CAS updates need keys to exist first.
    let mut revisions = vec![0; clients];
    if workload == Workload::CasUpdate {
        for (c, rev) in revisions.iter_mut().enumerate() {
            let resp = store
                .txn(Txn::put(format!("/bench/{tag}/cas/{c}"), value.clone()))
                .await?;
            *rev = resp.revision();
        }
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = revisions
        .into_iter()
        .enumerate()
        .map(|(c, mut mod_revision)| {
            let store = store.clone();
            let value = value.clone();
            let tag = tag.to_string();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let txn = match workload {
                        Workload::Create => {
                            Txn::create(format!("/bench/{tag}/create/{c}/{i}"), value.clone())
                        }
                        Workload::CasUpdate => Txn::update(
                            format!("/bench/{tag}/cas/{c}"),
                            mod_revision,
                            value.clone(),
                        ),
                    };
                    let t = Instant::now();
                    match store.txn(txn).await? {
                        TxnResponse::Applied { revision, .. } => mod_revision = revision,
                        other => anyhow::bail!("benchmark write rejected: {other:?}"),
                    }
                    latencies.push(t.elapsed());
                    i += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let idx = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(idx).copied().unwrap_or_default()
    };
    Ok(Figures {
        ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

/// The resident set size of a process in MiB, from `/proc/<pid>/status`.
fn rss_mib(pid: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    Ok(kb / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut seconds = 3u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args
                .next()
                .and_then(|s| s.parse().ok())
                .context("--seconds needs a number")?;
        }
    }
    let duration = Duration::from_secs(seconds);

    let dir = tempfile::tempdir()?;
    let embedded: Arc<dyn Store> =
        Arc::new(SqliteStore::open(SqliteConfig::new(dir.path().join("bench.db"))).await?);
    let etcd = etcd_server::EtcdServer::start().await?;
    let remote: Arc<dyn Store> =
        Arc::new(EtcdStore::connect(EtcdConfig::new(etcd.endpoints())).await?);

    println!(
        "# datastore benchmark: {VALUE_SIZE} B values, {seconds} s per cell, every write fsynced"
    );
    println!();
    println!(
        "| workload | clients | embedded ops/s | p50 ms | p99 ms | etcd ops/s | p50 ms | p99 ms | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for workload in [Workload::Create, Workload::CasUpdate] {
        for clients in CLIENTS {
            let tag = format!("{}-{clients}", workload.name());
            let e = run(embedded.clone(), workload, clients, duration, &tag).await?;
            let r = run(remote.clone(), workload, clients, duration, &tag).await?;
            println!(
                "| {} | {clients} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2}x |",
                workload.name(),
                e.ops_per_sec,
                ms(e.p50),
                ms(e.p99),
                r.ops_per_sec,
                ms(r.p50),
                ms(r.p99),
                e.ops_per_sec / r.ops_per_sec
            );
        }
    }
    println!();
    println!(
        "RSS after the run: benchmark process with the embedded store {:.1} MiB; etcd {:.1} MiB",
        rss_mib("self")?,
        rss_mib(&etcd.pid().to_string())?
    );
    let status = embedded.status().await?;
    println!(
        "embedded store: revision {}, database {:.1} MiB",
        status.revision,
        status.db_size as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}
