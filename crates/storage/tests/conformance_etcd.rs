//! The conformance suite against a real etcd, started by the test on loopback ports.

mod conformance;
mod support;

use std::sync::Arc;

use support::etcd_server::EtcdServer;
use tug_storage::{
    Store,
    etcd::{EtcdConfig, EtcdStore},
};

/// A fresh single-member etcd cluster and a store connected to it.
async fn open() -> anyhow::Result<(EtcdServer, Arc<dyn Store>)> {
    let server = EtcdServer::start().await?;
    let store = EtcdStore::connect(EtcdConfig::new(server.endpoints())).await?;
    Ok((server, Arc::new(store)))
}

conformance_tests!(open);
