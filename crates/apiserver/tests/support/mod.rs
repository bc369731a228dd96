//! Helpers for the in-process tests: a datastore that can be switched off (the real embedded
//! SQLite store underneath, since the registry loads from it at start-up) and a server started
//! on a free loopback port in a temporary data directory.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

pub mod https;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use tug_apiserver::{ApiServer, Config, RunningServer};
use tug_storage::{
    Error, LeaseId, RangeRequest, RangeResponse, Result, Revision, Store, StoreStatus, Txn,
    TxnResponse, WatchRequest, WatchStream,
};

/// A datastore whose status checks can be made to fail; everything else goes to the embedded
/// SQLite store it wraps.
#[derive(Debug)]
pub struct StubStore {
    inner: Arc<dyn Store>,
    down: AtomicBool,
    /// Holds the SQLite files; removed with the store.
    _dir: tempfile::TempDir,
}

impl StubStore {
    /// Makes every request fail (`true`) or status requests succeed again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for StubStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        self.inner.range(req).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.inner.txn(txn).await
    }
    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        self.inner.watch(req).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId> {
        self.inner.lease_grant(ttl).await
    }
    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()> {
        self.inner.lease_keep_alive(lease).await
    }
    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        self.inner.lease_revoke(lease).await
    }
    async fn status(&self) -> Result<StoreStatus> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Closed)
        } else {
            self.inner.status().await
        }
    }
}

/// A configuration for a server on 127.0.0.1, any free port, data in `data_dir`.
pub fn config(data_dir: &Path) -> Config {
    let mut config = Config::new(data_dir);
    config.bind_address = [127, 0, 0, 1].into();
    config.port = 0;
    config.shutdown_grace = Duration::from_secs(1);
    config
}

/// Starts a server with `config` on a [`StubStore`] (over SQLite in a directory of its own,
/// so that the server's start-up sees the data directory as the test made it) and waits until
/// it is ready.
pub async fn start(config: Config) -> anyhow::Result<(RunningServer, Arc<StubStore>)> {
    tug_apiserver::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let inner =
        tug_storage::open(&tug_storage::Datastore::Sqlite(dir.path().join("state.db"))).await?;
    let store = Arc::new(StubStore {
        inner,
        down: AtomicBool::new(false),
        _dir: dir,
    });
    let server = ApiServer::start_with_store(config, store.clone()).await?;
    tokio::time::timeout(Duration::from_secs(10), server.ready()).await?;
    Ok((server, store))
}
