//! The distributed datastore: a client of a real etcd v3 cluster.

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    LeaseId, RangeRequest, RangeResponse, Result, Revision, Store, StoreStatus, Txn, TxnResponse,
    WatchRequest, WatchStream,
};

/// Settings of the etcd client.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `host:port` of each member (plain http on loopback or a private network).
    pub endpoints: Vec<String>,
    /// How long to wait for the first connection.
    pub connect_timeout: Duration,
    /// How long one request may take before it fails as unavailable.
    pub request_timeout: Duration,
}

impl EtcdConfig {
    /// Default settings for these endpoints.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The etcd-backed store.
#[derive(Debug)]
pub struct EtcdStore {}

impl EtcdStore {
    /// Connects to the cluster described by `config`.
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        let _ = config;
        todo!("etcd backend")
    }
}

#[async_trait]
impl Store for EtcdStore {
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
