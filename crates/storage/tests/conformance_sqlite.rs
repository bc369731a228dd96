//! The conformance suite against the embedded SQLite backend.

mod conformance;

use std::sync::Arc;

use tug_storage::{
    Store,
    sqlite::{SqliteConfig, SqliteStore},
};

/// A fresh store in a temporary directory; automatic compaction is off so that every case
/// decides itself what history exists.
async fn open() -> anyhow::Result<(tempfile::TempDir, Arc<dyn Store>)> {
    let dir = tempfile::tempdir()?;
    let mut config = SqliteConfig::new(dir.path().join("state.db"));
    config.compaction_interval = None;
    let store = SqliteStore::open(config).await?;
    Ok((dir, Arc::new(store)))
}

conformance_tests!(open);
