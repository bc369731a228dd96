//! The distributed datastore: a client of a real etcd v3 cluster.
//!
//! Every [`Store`] call maps onto one etcd request (a read that needs extra facts for its error,
//! such as the compacted revision, makes a few more). Semantics are etcd's own, so this module
//! only translates: keys are UTF-8 strings here and bytes there, our single-key transaction is an
//! etcd `Txn` with one compare, one write and a `Get` on failure.
//!
//! Things etcd 3.4 (the version Debian ships) does not give directly, and how they are made:
//!
//! - **The compacted revision.** etcd 3.4's maintenance status does not report it. The store
//!   remembers the highest compaction it has seen (its own, or one reported by etcd in a watch
//!   response) and checks it with a read at that revision; when that read fails as compacted,
//!   someone else compacted further, and a watch from revision 1 makes etcd tell the exact
//!   revision (a watch below the compacted revision is answered with `compact_revision`). The
//!   compacted revision thus needs no key of its own in the keyspace.
//! - **Ordered progress notifications.** etcd before 3.4.31/3.5.13 may answer a progress
//!   request before events it covers; the `watcher` module puts a barrier behind the answer.
//!
//! Failed reads are retried within `request_timeout` while the failure is transient (no leader
//! during an election, a member restarting). Writes are retried only when they certainly never
//! reached etcd, since repeating a write whose fate is unknown could apply it twice.

mod watcher;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, DeleteOptions, GetOptions,
    PutOptions, TxnOp as EtcdTxnOp, WatchOptions,
    proto::{PbKeyValue, PbTxnOpResponse},
};
use tokio::time::Instant;

use crate::{
    Compare, Error, KeyValue, LeaseId, RangeRequest, RangeResponse, Result, Revision, Store,
    StoreStatus, Txn, TxnOp, TxnResponse, WatchRequest, WatchStream,
};

/// The key read to learn the current revision and to probe the compacted revision. Reading an
/// absent key is the cheapest linearizable request etcd serves; this one is outside the
/// `/registry/` keyspace and never written.
const PROBE_KEY: &str = "\0tug-probe";

/// Settings of the etcd client.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `host:port` of each member (plain http on loopback or a private network).
    pub endpoints: Vec<String>,
    /// How long to wait for the first connection.
    pub connect_timeout: Duration,
    /// How long one request may take before it fails as unavailable.
    pub request_timeout: Duration,
    /// How long a watch keeps trying to re-establish a broken etcd watch (a member restarted
    /// or went away) before it ends with [`Error::Unavailable`].
    pub watch_retry_timeout: Duration,
    /// Interval of the HTTP/2 pings that detect a dead connection to a member.
    pub keep_alive_interval: Duration,
}

impl EtcdConfig {
    /// Default settings for these endpoints.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            watch_retry_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_secs(10),
        }
    }
}

/// The etcd-backed store.
#[derive(Debug, Clone)]
pub struct EtcdStore {
    shared: Arc<Shared>,
}

/// What the store and its watch tasks share.
struct Shared {
    client: Client,
    config: EtcdConfig,
    /// The endpoints as one string, for error messages.
    endpoints: String,
    /// The highest compacted revision seen so far (`0`: none).
    compacted: AtomicI64,
    /// Whether the server answers progress requests in order with watch events (etcd 3.4.31+,
    /// 3.5.13+); older servers need a barrier (see the `watcher` module).
    ordered_progress: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("endpoints", &self.endpoints)
            .field("compacted", &self.compacted.load(Ordering::Relaxed))
            .field("ordered_progress", &self.ordered_progress)
            .finish_non_exhaustive()
    }
}

/// How a request failed, before the caller adds what it knows (the revision it asked for).
#[derive(Debug)]
enum Failure {
    /// etcd: "mvcc: required revision has been compacted".
    Compacted,
    /// etcd: "mvcc: required revision is a future revision".
    FutureRevision,
    /// etcd: "requested lease not found".
    LeaseNotFound,
    /// Anything else, already in its final form.
    Other(Error),
}

impl EtcdStore {
    /// Connects to the cluster described by `config`. The connection is checked with a real
    /// request, so unreachable endpoints fail here, within `connect_timeout`, with
    /// [`Error::Unavailable`] naming them.
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        let endpoints = config.endpoints.join(",");
        if config.endpoints.is_empty() {
            return Err(Error::InvalidArgument(
                "etcd: no endpoints given".to_string(),
            ));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_keep_alive(config.keep_alive_interval, config.keep_alive_interval)
            // Requests to a member that lost its leader fail at once instead of waiting, and
            // watches on such a member are closed, so they move to a healthy one.
            .with_require_leader(true);
        let connecting = Client::connect(&config.endpoints, Some(options));
        let client = match tokio::time::timeout(config.connect_timeout, connecting).await {
            Ok(Ok(client)) => client,
            Ok(Err(
                etcd_client::Error::InvalidArgs(msg) | etcd_client::Error::EndpointError(msg),
            )) => {
                return Err(Error::InvalidArgument(format!("etcd {endpoints}: {msg}")));
            }
            Ok(Err(etcd_client::Error::InvalidUri(e))) => {
                return Err(Error::InvalidArgument(format!("etcd {endpoints}: {e}")));
            }
            Ok(Err(e)) => {
                return Err(unavailable(&endpoints, "cannot connect", Some(e)));
            }
            Err(_) => {
                return Err(unavailable_msg(
                    &endpoints,
                    format!("cannot connect within {:?}", config.connect_timeout),
                ));
            }
        };
        let version = first_answer(&client, &config, &endpoints).await?;
        let shared = Shared {
            client,
            endpoints,
            compacted: AtomicI64::new(0),
            ordered_progress: progress_is_ordered(&version),
            config,
        };
        tracing::debug!(endpoints = %shared.endpoints, %version, "connected to etcd");
        Ok(Self {
            shared: Arc::new(shared),
        })
    }
}

/// The first round-trip: a status request, retried while the cluster is not ready (not
/// listening yet, electing a leader) until `connect_timeout`. Returns the server version.
async fn first_answer(client: &Client, config: &EtcdConfig, endpoints: &str) -> Result<String> {
    let deadline = Instant::now() + config.connect_timeout;
    let mut backoff = Duration::from_millis(20);
    let mut last_error = None;
    loop {
        let mut maintenance = client.maintenance_client();
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, maintenance.status()).await {
            Ok(Ok(status)) => return Ok(status.0.version),
            Ok(Err(e)) => last_error = Some(e),
            Err(_) => {}
        }
        if Instant::now() + backoff >= deadline {
            let mut reason = format!("no answer within {:?}", config.connect_timeout);
            if let Some(e) = &last_error {
                reason = format!("{reason}: {}", describe(e));
            }
            reason.push_str(&tcp_diagnosis(&config.endpoints).await);
            return Err(Error::Unavailable {
                endpoints: endpoints.to_string(),
                reason,
                source: last_error.map(|e| Box::new(e) as crate::BoxError),
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// Why the endpoints cannot be reached over TCP, for the message of a failed connect: `": a:1
/// connection refused; b:2 ..."`, or nothing when they accept connections.
async fn tcp_diagnosis(endpoints: &[String]) -> String {
    let mut problems = Vec::new();
    for endpoint in endpoints {
        let address = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        let attempt = tokio::net::TcpStream::connect(address);
        match tokio::time::timeout(Duration::from_millis(500), attempt).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => problems.push(format!("{address}: {}", lower_first(&e.to_string()))),
            Err(_) => problems.push(format!("{address}: tcp connect timed out")),
        }
    }
    if problems.is_empty() {
        String::new()
    } else {
        format!(" ({})", problems.join("; "))
    }
}

/// Whether a server of this version answers a progress request only after every earlier event
/// of the stream (etcd issues 15220 and 17529, fixed in 3.4.31 and 3.5.13, the versions
/// Kubernetes requires before it relies on progress requests).
fn progress_is_ordered(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    match (major, minor) {
        (3, 4) => patch >= 31,
        (3, 5) => patch >= 13,
        (3, m) => m >= 6,
        (m, _) => m > 3,
    }
}

impl Shared {
    /// Runs one request with the request timeout. An idempotent request (a read) is retried
    /// while the failure is transient (no leader, a member restarting) and time is left; a
    /// write is retried only when it certainly never reached etcd.
    async fn request<T, F, Fut>(
        &self,
        what: &str,
        idempotent: bool,
        mut call: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let timeout = self.config.request_timeout;
        let deadline = Instant::now() + timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let error = match tokio::time::timeout(remaining, call()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
                Err(_) => {
                    return Err(Failure::Other(unavailable_msg(
                        &self.endpoints,
                        format!("{what}: no answer within {timeout:?}"),
                    )));
                }
            };
            let retry = if idempotent {
                is_transient(&error)
            } else {
                never_sent(&error)
            };
            if !retry || Instant::now() + backoff >= deadline {
                return Err(self.classify(what, error));
            }
            tracing::debug!(%error, what, "etcd request failed, retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Sorts an etcd error into the failures the store reports.
    fn classify(&self, what: &str, error: etcd_client::Error) -> Failure {
        match kind(&error) {
            Kind::Compacted => Failure::Compacted,
            Kind::FutureRevision => Failure::FutureRevision,
            Kind::LeaseNotFound => Failure::LeaseNotFound,
            Kind::Invalid => Failure::Other(Error::InvalidArgument(format!(
                "etcd rejected {what}: {}",
                describe(&error)
            ))),
            Kind::Transient | Kind::Other => {
                Failure::Other(unavailable(&self.endpoints, what, Some(error)))
            }
        }
    }

    /// Turns a failure of a request that names no revision or lease into an [`Error`].
    fn plain(&self, what: &str, failure: Failure) -> Error {
        match failure {
            Failure::Other(e) => e,
            other => unavailable_msg(&self.endpoints, format!("{what}: unexpected {other:?}")),
        }
    }

    /// The current revision, from a linearizable read.
    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .request("read of the current revision", true, || {
                let mut kv = self.client.kv_client();
                async move {
                    kv.get(PROBE_KEY, Some(GetOptions::new().with_count_only()))
                        .await
                }
            })
            .await
            .map_err(|f| self.plain("read of the current revision", f))?;
        Ok(header_revision(resp.0.header.as_ref()))
    }

    /// The revision etcd's history is compacted to (`0` if never), see the module docs.
    async fn compact_revision(&self) -> Result<Revision> {
        let known = self.compacted.load(Ordering::Acquire);
        let probe = known.max(1);
        let read = self
            .request("read at the compacted revision", true, || {
                let mut kv = self.client.kv_client();
                async move {
                    kv.get(
                        PROBE_KEY,
                        Some(GetOptions::new().with_count_only().with_revision(probe)),
                    )
                    .await
                }
            })
            .await;
        match read {
            // Nothing was compacted beyond what we know (compacting at 1 discards nothing, so
            // it counts as never).
            Ok(_) => Ok(known),
            Err(Failure::Compacted) => {
                let discovered = self.discover_compact_revision().await?;
                Ok(self.note_compacted(discovered))
            }
            // The cluster has fewer revisions than we remember: it is not the one we saw (its
            // data was replaced). Start over.
            Err(Failure::FutureRevision) if known > 0 => {
                self.compacted.store(0, Ordering::Release);
                Box::pin(self.compact_revision()).await
            }
            Err(f) => Err(self.plain("read at the compacted revision", f)),
        }
    }

    /// Asks etcd for its compacted revision with a watch from revision 1, which etcd answers
    /// with `compact_revision` when history below it is gone. Only called once a read showed
    /// that revision 1 is compacted, so the answer is certain to come.
    async fn discover_compact_revision(&self) -> Result<Revision> {
        let what = "watch for the compacted revision";
        let timeout = self.config.request_timeout;
        let ask = async {
            let mut client = self.client.watch_client();
            let stream = client
                .watch(PROBE_KEY, Some(WatchOptions::new().with_start_revision(1)))
                .await
                .map_err(|e| self.plain(what, self.classify(what, e)))?;
            let (_sender, mut responses) = stream.split();
            loop {
                match responses.message().await {
                    Ok(Some(resp)) if resp.0.compact_revision > 0 => {
                        return Ok(resp.0.compact_revision);
                    }
                    // The probe key has no events; a response without compact_revision means the
                    // watch started, so nothing is compacted (a compaction raced with us and lost).
                    Ok(Some(resp)) if !resp.0.events.is_empty() => return Ok(0),
                    Ok(Some(resp)) if resp.0.canceled => {
                        return Err(unavailable_msg(
                            &self.endpoints,
                            format!("{what}: canceled: {}", resp.0.cancel_reason),
                        ));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        return Err(unavailable_msg(&self.endpoints, format!("{what}: closed")));
                    }
                    Err(e) => return Err(self.plain(what, self.classify(what, e))),
                }
            }
        };
        match tokio::time::timeout(timeout, ask).await {
            Ok(result) => result,
            Err(_) => Err(unavailable_msg(
                &self.endpoints,
                format!("{what}: no answer within {timeout:?}"),
            )),
        }
    }

    /// Records a compaction seen at `revision`; returns the highest one seen.
    fn note_compacted(&self, revision: Revision) -> Revision {
        let previous = self.compacted.fetch_max(revision, Ordering::AcqRel);
        previous.max(revision)
    }

    /// The error for a request at `requested` that etcd said is compacted.
    async fn compacted_error(&self, requested: Revision) -> Error {
        match self.compact_revision().await {
            Ok(compacted) => Error::Compacted {
                requested,
                compacted,
            },
            Err(e) => e,
        }
    }

    /// The error for a request at `requested` that etcd said is in the future.
    async fn future_error(&self, requested: Revision) -> Error {
        match self.current_revision().await {
            Ok(current) => Error::FutureRevision { requested, current },
            Err(e) => e,
        }
    }

    /// Turns a failure of a request at `revision` into an [`Error`].
    async fn revision_error(&self, what: &str, revision: Revision, failure: Failure) -> Error {
        match failure {
            Failure::Compacted => self.compacted_error(revision).await,
            Failure::FutureRevision => self.future_error(revision).await,
            other => self.plain(what, other),
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let shared = &*self.shared;
        let key = etcd_key(&req.key, req.range_end.is_some())?;
        let limit = i64::try_from(req.limit).map_err(|_| {
            Error::InvalidArgument(format!("range limit {} is too large", req.limit))
        })?;
        let mut options = GetOptions::new()
            .with_revision(req.revision)
            .with_limit(limit);
        if let Some(end) = &req.range_end {
            options = options.with_range(end.as_bytes());
        }
        if req.count_only {
            options = options.with_count_only();
        }
        let what = format!("range {:?}", req.key);
        let resp = shared
            .request(&what, true, || {
                let mut kv = shared.client.kv_client();
                let key = key.clone();
                let options = options.clone();
                async move { kv.get(key, Some(options)).await }
            })
            .await;
        let resp = match resp {
            Ok(resp) => resp.0,
            Err(f) => return Err(shared.revision_error(&what, req.revision, f).await),
        };
        Ok(RangeResponse {
            revision: header_revision(resp.header.as_ref()),
            count: resp.count,
            more: resp.more,
            kvs: resp.kvs.into_iter().map(key_value).collect::<Result<_>>()?,
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        let shared = &*self.shared;
        if txn.key.is_empty() {
            return Err(Error::InvalidArgument("txn: empty key".to_string()));
        }
        let key = txn.key.as_bytes().to_vec();
        let mut request = etcd_client::Txn::new();
        if let Compare::ModRevision(expected) = txn.compare {
            // mod_revision == 0 holds exactly when the key is absent.
            request = request.when([EtcdCompare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                expected,
            )]);
        }
        let lease = match &txn.op {
            TxnOp::Put { lease, .. } => *lease,
            TxnOp::Delete => 0,
        };
        let write = match txn.op {
            TxnOp::Put { value, lease } => EtcdTxnOp::put(
                key.clone(),
                value.to_vec(),
                Some(PutOptions::new().with_lease(lease).with_prev_key()),
            ),
            TxnOp::Delete => {
                EtcdTxnOp::delete(key.clone(), Some(DeleteOptions::new().with_prev_key()))
            }
        };
        let request = request
            .and_then([write])
            .or_else([EtcdTxnOp::get(key, None)]);
        let what = format!("txn on {:?}", txn.key);
        let resp = shared
            .request(&what, false, || {
                let mut kv = shared.client.kv_client();
                let request = request.clone();
                async move { kv.txn(request).await }
            })
            .await
            .map_err(|f| match f {
                Failure::LeaseNotFound => Error::LeaseNotFound(lease),
                other => shared.plain(&what, other),
            })?
            .0;
        let revision = header_revision(resp.header.as_ref());
        let op = resp.responses.into_iter().next().and_then(|r| r.response);
        if resp.succeeded {
            let prev = match op {
                Some(PbTxnOpResponse::ResponsePut(put)) => put.prev_kv,
                Some(PbTxnOpResponse::ResponseDeleteRange(delete)) => {
                    delete.prev_kvs.into_iter().next()
                }
                other => return Err(malformed(shared, &what, &other)),
            };
            Ok(TxnResponse::Applied {
                revision,
                prev: prev.map(key_value).transpose()?,
            })
        } else {
            let current = match op {
                Some(PbTxnOpResponse::ResponseRange(range)) => range.kvs.into_iter().next(),
                other => return Err(malformed(shared, &what, &other)),
            };
            Ok(TxnResponse::Rejected {
                revision,
                current: current.map(key_value).transpose()?,
            })
        }
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        watcher::start(self.shared.clone(), req).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let shared = &*self.shared;
        let what = format!("compaction at {revision}");
        let result = shared
            .request(&what, false, || {
                let mut kv = shared.client.kv_client();
                async move {
                    kv.compact(
                        revision,
                        Some(etcd_client::CompactionOptions::new().with_physical()),
                    )
                    .await
                }
            })
            .await;
        match result {
            Ok(_) => {
                shared.note_compacted(revision);
                Ok(())
            }
            Err(f) => Err(shared.revision_error(&what, revision, f).await),
        }
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId> {
        let shared = &*self.shared;
        // etcd counts in whole seconds: round up, so a lease never lives shorter than asked.
        let seconds = i64::try_from(ttl.as_millis().div_ceil(1000))
            .map_err(|_| Error::InvalidArgument(format!("lease ttl {ttl:?} is too long")))?
            .max(1);
        let what = "lease grant";
        let resp = shared
            .request(what, false, || {
                let mut lease = shared.client.lease_client();
                async move { lease.grant(seconds, None).await }
            })
            .await
            .map_err(|f| shared.plain(what, f))?
            .0;
        if !resp.error.is_empty() {
            return Err(unavailable_msg(
                &shared.endpoints,
                format!("{what}: {}", strip_etcd_prefix(&resp.error)),
            ));
        }
        Ok(resp.id)
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()> {
        let shared = &*self.shared;
        let what = format!("keep-alive of lease {lease}");
        shared
            .request(&what, true, || {
                let mut client = shared.client.lease_client();
                // One round-trip on a keep-alive stream; etcd answers a TTL of 0 for a lease it
                // does not know, which etcd-client reports as "lease not found".
                async move { client.keep_alive(lease).await.map(drop) }
            })
            .await
            .map_err(|f| match f {
                Failure::LeaseNotFound => Error::LeaseNotFound(lease),
                other => shared.plain(&what, other),
            })
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        let shared = &*self.shared;
        let what = format!("revocation of lease {lease}");
        shared
            .request(&what, false, || {
                let mut client = shared.client.lease_client();
                async move { client.revoke(lease).await.map(drop) }
            })
            .await
            .map_err(|f| match f {
                Failure::LeaseNotFound => Error::LeaseNotFound(lease),
                other => shared.plain(&what, other),
            })
    }

    async fn status(&self) -> Result<StoreStatus> {
        let shared = &*self.shared;
        let what = "status";
        let maintenance = shared.request(what, true, || {
            let mut client = shared.client.maintenance_client();
            async move { client.status().await }
        });
        // The revision comes from a linearizable read: a follower's status may lag the leader.
        let (status, revision, compact_revision) = tokio::join!(
            maintenance,
            shared.current_revision(),
            shared.compact_revision()
        );
        let status = status.map_err(|f| shared.plain(what, f))?.0;
        Ok(StoreStatus {
            revision: revision?,
            compact_revision: compact_revision?,
            db_size: u64::try_from(status.db_size).unwrap_or(0),
        })
    }
}

/// The key to send for `key`: etcd has no empty key, and reads a range from `"\0"` (its smallest
/// key) for a range that starts at the empty key.
fn etcd_key(key: &str, is_range: bool) -> Result<Vec<u8>> {
    match (key.is_empty(), is_range) {
        (false, _) => Ok(key.as_bytes().to_vec()),
        (true, true) => Ok(vec![0]),
        (true, false) => Err(Error::InvalidArgument("empty key".to_string())),
    }
}

/// Converts an etcd key-value.
fn key_value(kv: PbKeyValue) -> Result<KeyValue> {
    let key = String::from_utf8(kv.key).map_err(|e| Error::Unavailable {
        endpoints: String::new(),
        reason: format!(
            "etcd returned the key {:?}, which is not utf-8",
            String::from_utf8_lossy(e.as_bytes())
        ),
        source: None,
    })?;
    Ok(KeyValue {
        key,
        value: Bytes::from(kv.value),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    })
}

fn header_revision(header: Option<&etcd_client::proto::PbResponseHeader>) -> Revision {
    header.map_or(0, |h| h.revision)
}

fn malformed(shared: &Shared, what: &str, op: &Option<PbTxnOpResponse>) -> Error {
    unavailable_msg(
        &shared.endpoints,
        format!("{what}: unexpected response {op:?}"),
    )
}

/// What an etcd error means here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The revision asked for is compacted.
    Compacted,
    /// The revision asked for is in the future.
    FutureRevision,
    /// The lease does not exist (any more).
    LeaseNotFound,
    /// etcd refused the request as malformed or too large.
    Invalid,
    /// The request did not reach a member that could answer (connection trouble, no leader,
    /// leader changing, member restarting); a read may be retried.
    Transient,
    /// Anything else.
    Other,
}

/// gRPC status codes (tonic's `Code` discriminants, which follow the gRPC specification).
mod grpc {
    pub(super) const CANCELLED: i32 = 1;
    pub(super) const UNKNOWN: i32 = 2;
    pub(super) const INVALID_ARGUMENT: i32 = 3;
    pub(super) const UNAVAILABLE: i32 = 14;
}

fn kind(error: &etcd_client::Error) -> Kind {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            kind_of_status(status.code() as i32, status.message())
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => Kind::Transient,
        etcd_client::Error::LeaseKeepAliveError(msg) if msg.contains("lease not found") => {
            Kind::LeaseNotFound
        }
        _ => Kind::Other,
    }
}

/// Sorts a gRPC status from etcd by its code and etcd's message.
fn kind_of_status(code: i32, message: &str) -> Kind {
    if message.contains("required revision has been compacted") {
        Kind::Compacted
    } else if message.contains("required revision is a future revision") {
        Kind::FutureRevision
    } else if message.contains("requested lease not found") {
        Kind::LeaseNotFound
    } else if code == grpc::INVALID_ARGUMENT {
        Kind::Invalid
    } else if code == grpc::UNAVAILABLE
        || code == grpc::UNKNOWN
        // The client reports a request cut off by a dropped connection (a member killed
        // mid-request) as cancelled: as transient as a refused connection. Writes are still
        // retried only when they certainly never reached etcd (`never_sent`).
        || code == grpc::CANCELLED
        || message.contains("leader changed")
    {
        Kind::Transient
    } else {
        Kind::Other
    }
}

/// Whether a failed read may be retried.
fn is_transient(error: &etcd_client::Error) -> bool {
    kind(error) == Kind::Transient
}

/// Whether a failed write certainly never reached etcd, so retrying it cannot apply it twice:
/// the connection could not be made, or the member refused it before proposing (no leader).
fn never_sent(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(status) => message_says_never_sent(status.message()),
        _ => false,
    }
}

fn message_says_never_sent(message: &str) -> bool {
    message.contains("error trying to connect")
        || message.contains("tcp connect error")
        || message.contains("Connection refused")
        || message == "etcdserver: no leader"
}

/// The message of an etcd error, without etcd-client's and etcd's prefixes, followed by its
/// causes (tonic's "tcp connect error" alone does not say that the connection was refused).
fn describe(error: &etcd_client::Error) -> String {
    let mut text = match error {
        etcd_client::Error::GRpcStatus(status) => strip_etcd_prefix(status.message()).to_string(),
        e => e.to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    lower_first(&text)
}

/// etcd's messages start with `etcdserver: `; ours name etcd already.
fn strip_etcd_prefix(message: &str) -> &str {
    message.strip_prefix("etcdserver: ").unwrap_or(message)
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// [`Error::Unavailable`] for a failed etcd request.
fn unavailable(endpoints: &str, what: &str, error: Option<etcd_client::Error>) -> Error {
    let reason = match &error {
        Some(e) => format!("{what}: {}", describe(e)),
        None => what.to_string(),
    };
    Error::Unavailable {
        endpoints: endpoints.to_string(),
        reason,
        source: error.map(|e| Box::new(e) as crate::BoxError),
    }
}

/// [`Error::Unavailable`] without an underlying error.
fn unavailable_msg(endpoints: &str, reason: String) -> Error {
    Error::Unavailable {
        endpoints: endpoints.to_string(),
        reason,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_requests_are_trusted_only_on_fixed_servers() {
        for (version, ordered) in [
            ("3.4.23", false),
            ("3.4.31", true),
            ("3.5.9", false),
            ("3.5.13", true),
            ("3.6.0", true),
            ("v3.7.2", true),
            ("4.0.0", true),
            ("3.3.27", false),
            ("garbage", false),
        ] {
            assert_eq!(progress_is_ordered(version), ordered, "{version}");
        }
    }

    #[test]
    fn empty_keys_become_etcds_smallest_key_only_for_ranges() {
        assert_eq!(etcd_key("", true).ok(), Some(vec![0]));
        assert!(etcd_key("", false).is_err());
        assert_eq!(etcd_key("/a", false).ok(), Some(b"/a".to_vec()));
    }

    #[test]
    fn key_values_convert_and_reject_non_utf8_keys() {
        let kv = PbKeyValue {
            key: b"/registry/pods/ns/a".to_vec(),
            create_revision: 3,
            mod_revision: 5,
            version: 2,
            value: b"v".to_vec(),
            lease: 7,
        };
        let converted = key_value(kv).ok();
        assert_eq!(
            converted,
            Some(KeyValue {
                key: "/registry/pods/ns/a".into(),
                value: Bytes::from_static(b"v"),
                create_revision: 3,
                mod_revision: 5,
                version: 2,
                lease: 7,
            })
        );
        let bad = PbKeyValue {
            key: vec![0xff, 0xfe],
            ..PbKeyValue::default()
        };
        assert!(key_value(bad).is_err());
    }

    #[test]
    fn etcd_errors_are_classified_by_message_and_code() {
        let cases = [
            (
                11,
                "etcdserver: mvcc: required revision has been compacted",
                Kind::Compacted,
            ),
            (
                11,
                "etcdserver: mvcc: required revision is a future revision",
                Kind::FutureRevision,
            ),
            (
                5,
                "etcdserver: requested lease not found",
                Kind::LeaseNotFound,
            ),
            (3, "etcdserver: request is too large", Kind::Invalid),
            (14, "etcdserver: no leader", Kind::Transient),
            (14, "etcdserver: request timed out", Kind::Transient),
            (14, "etcdserver: leader changed", Kind::Transient),
            (9, "etcdserver: permission denied", Kind::Other),
        ];
        for (code, message, expected) in cases {
            assert_eq!(kind_of_status(code, message), expected, "{message}");
        }
    }

    #[test]
    fn only_writes_that_never_reached_etcd_are_retried() {
        assert!(message_says_never_sent("etcdserver: no leader"));
        assert!(message_says_never_sent(
            "transport error: error trying to connect: tcp connect error: Connection refused"
        ));
        assert!(!message_says_never_sent("etcdserver: request timed out"));
        assert!(!message_says_never_sent("etcdserver: leader changed"));
    }
}
