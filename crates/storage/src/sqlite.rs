//! The embedded datastore: an MVCC log in one SQLite file (WAL, `synchronous=FULL`).

use std::{path::PathBuf, time::Duration};

use async_trait::async_trait;

use crate::{
    LeaseId, RangeRequest, RangeResponse, Result, Revision, Store, StoreStatus, Txn, TxnResponse,
    WatchRequest, WatchStream,
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
}

impl SqliteConfig {
    /// Default settings for the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            history_revisions: 10_000,
            history_age: Duration::from_secs(300),
            compaction_interval: Some(Duration::from_secs(30)),
        }
    }
}

/// The embedded store.
#[derive(Debug)]
pub struct SqliteStore {}

impl SqliteStore {
    /// Opens (creating if needed) the database described by `config`.
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        let _ = config;
        todo!("sqlite backend")
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        todo!("{req:?}")
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        todo!("{txn:?}")
    }
    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        todo!("{req:?}")
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        todo!("{revision}")
    }
    async fn lease_grant(&self, ttl: std::time::Duration) -> Result<LeaseId> {
        todo!("{ttl:?}")
    }
    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()> {
        todo!("{lease}")
    }
    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        todo!("{lease}")
    }
    async fn status(&self) -> Result<StoreStatus> {
        todo!()
    }
}
