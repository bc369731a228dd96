//! `tug-storage-writer`: writes to a datastore with many concurrent clients and prints one line
//! per acknowledged write, so that a crash test (or a person) can kill the store at any moment
//! and check afterwards that every acknowledged write survived.
//!
//! Usage: `tug-storage-writer DATASTORE [--clients N] [--round R] [--history N]
//! [--compaction-interval-ms N]`, where DATASTORE is `sqlite://PATH` or `etcd://HOST:PORT,…`.
//!
//! Output lines (stdout, flushed one by one, printed only after the store acknowledged):
//! - `C <key> <revision>`: `<key>` was created at `<revision>` and never written again;
//! - `U <key> <revision> <n>`: `<key>` was updated by compare-and-swap to the value `<n>`, and
//!   later updates of that key carry larger values.

use std::{
    io::Write,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use tug_storage::{Datastore, Store, Txn, TxnResponse, sqlite};

/// The parsed command line.
struct Args {
    datastore: Datastore,
    clients: usize,
    round: u64,
    history: Option<i64>,
    compaction_interval: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let datastore = args
        .next()
        .ok_or("usage: tug-storage-writer DATASTORE [--clients N] [--round R] [--history N] [--compaction-interval-ms N]")?
        .parse::<Datastore>()
        .map_err(|e| e.to_string())?;
    let mut parsed = Args {
        datastore,
        clients: 64,
        round: 0,
        history: None,
        compaction_interval: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("flag {flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("flag {flag}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--clients" => parsed.clients = number(&value)?.max(1) as usize,
            "--round" => parsed.round = number(&value)?,
            "--history" => parsed.history = Some(number(&value)? as i64),
            "--compaction-interval-ms" => {
                parsed.compaction_interval = Some(Duration::from_millis(number(&value)?));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(parsed)
}

async fn open(args: &Args) -> tug_storage::Result<Arc<dyn Store>> {
    match &args.datastore {
        Datastore::Sqlite(path) => {
            let mut config = sqlite::SqliteConfig::new(path);
            if let Some(history) = args.history {
                config.history_revisions = history;
                config.history_age = Duration::ZERO;
            }
            if args.compaction_interval.is_some() {
                config.compaction_interval = args.compaction_interval;
            }
            Ok(Arc::new(sqlite::SqliteStore::open(config).await?))
        }
        other => tug_storage::open(other).await,
    }
}

/// One client: alternately creates fresh keys and CAS-updates its own counter key.
async fn client(store: Arc<dyn Store>, round: u64, id: usize, out: Arc<Mutex<std::io::Stdout>>) {
    let counter = format!("/crash/{round}/counter/{id}");
    let mut mod_revision = 0;
    for i in 0u64.. {
        let is_update = i % 3 == 2;
        let key = if is_update {
            counter.clone()
        } else {
            format!("/crash/{round}/{id}/{i}")
        };
        let txn = if is_update {
            Txn::update(&key, mod_revision, i.to_string())
        } else {
            Txn::create(&key, format!("{id}:{i}"))
        };
        match store.txn(txn).await {
            Ok(TxnResponse::Applied { revision, .. }) => {
                let line = if is_update {
                    mod_revision = revision;
                    format!("U {key} {revision} {i}")
                } else {
                    format!("C {key} {revision}")
                };
                let mut out = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return;
                }
            }
            Ok(TxnResponse::Rejected { current, .. }) => {
                // Only this client writes its keys, so a rejection means the store lost a write.
                eprintln!(
                    "client {id}: write {i} of {key} rejected unexpectedly (current {current:?})"
                );
                std::process::exit(3);
            }
            Err(err) => {
                // The outcome is unknown: the write may or may not have landed. Learn the
                // counter's real mod_revision before the next compare-and-swap.
                eprintln!("client {id}: write {i} of {key} failed: {err}");
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Ok(kv) = store.get(&counter).await {
                        mod_revision = kv.map_or(0, |kv| kv.mod_revision);
                        break;
                    }
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("tug-storage-writer: {msg}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("tug-storage-writer: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let store = match open(&args).await {
            Ok(store) => store,
            Err(err) => {
                eprintln!("tug-storage-writer: {err}");
                return ExitCode::FAILURE;
            }
        };
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let tasks: Vec<_> = (0..args.clients)
            .map(|id| tokio::spawn(client(store.clone(), args.round, id, out.clone())))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        ExitCode::SUCCESS
    })
}
