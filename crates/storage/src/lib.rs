//! The datastore contract of Tug: an MVCC key-value store with etcd v3 semantics, and its backends.
//!
//! Every piece of cluster state lives behind the [`Store`] trait. The API server is its only user.
//! Two backends implement it:
//!
//! - [`sqlite::SqliteStore`], the embedded default: one SQLite file in WAL mode, every write
//!   fsynced, concurrent writes group-committed, watches pushed from the commit path;
//! - [`etcd::EtcdStore`], a client of a real etcd v3 cluster.
//!
//! Both pass the same conformance suite (`tests/conformance`), so the API server cannot tell them
//! apart.
//!
//! The semantics are etcd's: one global revision that every write increments; per key a
//! `create_revision`, `mod_revision` and `version`; reads at the current or a past revision;
//! single-key compare-and-swap transactions on `mod_revision`; watches that deliver every change
//! of a key range exactly once and in revision order; compaction of old history; leases.

mod error;
pub mod etcd;
pub mod sqlite;
mod watch;

use std::{fmt, path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;

pub use error::{BoxError, Error, Result};
pub use watch::{WatchMessage, WatchStream};

/// A store revision. Every write increments the store's revision by one; `0` means "none" (in a
/// compare: the key is absent; in a read: the current revision).
pub type Revision = i64;

/// The identifier of a lease. `0` means "no lease".
pub type LeaseId = i64;

/// One version of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, e.g. `/registry/pods/default/web-0`.
    pub key: String,
    /// The stored bytes.
    pub value: Bytes,
    /// The revision of the write that created the key (after its last deletion).
    pub create_revision: Revision,
    /// The revision of the last write to the key.
    pub mod_revision: Revision,
    /// The number of writes since the key was created, starting at 1.
    pub version: i64,
    /// The lease the key is attached to, `0` for none.
    pub lease: LeaseId,
}

/// A read of one key or of a key range `[key, range_end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRequest {
    /// The key, or the first key of the range.
    pub key: String,
    /// The end of the range (exclusive); `None` reads the single key `key`.
    pub range_end: Option<String>,
    /// The revision to read at; `0` reads at the current revision.
    pub revision: Revision,
    /// The maximum number of key-values to return; `0` means no limit.
    pub limit: usize,
    /// Return only the count, no key-values.
    pub count_only: bool,
}

impl RangeRequest {
    /// Reads the single key `key` at the current revision.
    pub fn key(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            range_end: None,
            revision: 0,
            limit: 0,
            count_only: false,
        }
    }

    /// Reads every key that starts with `prefix` at the current revision.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        let key = prefix.into();
        let range_end = Some(prefix_end(&key));
        Self {
            key,
            range_end,
            revision: 0,
            limit: 0,
            count_only: false,
        }
    }

    /// Reads the keys in `[start, end)` at the current revision.
    pub fn range(start: impl Into<String>, end: impl Into<String>) -> Self {
        Self {
            key: start.into(),
            range_end: Some(end.into()),
            revision: 0,
            limit: 0,
            count_only: false,
        }
    }

    /// Reads at `revision` instead of the current revision.
    #[must_use]
    pub fn at_revision(mut self, revision: Revision) -> Self {
        self.revision = revision;
        self
    }

    /// Returns at most `limit` key-values (`0`: no limit).
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Returns only the count.
    #[must_use]
    pub fn count_only(mut self) -> Self {
        self.count_only = true;
        self
    }

    /// Whether `key` falls inside this request's key or range.
    pub fn contains(&self, key: &str) -> bool {
        key_in_range(key, &self.key, self.range_end.as_deref())
    }
}

/// The answer to a [`RangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// The key-values in key order, at most `limit` of them.
    pub kvs: Vec<KeyValue>,
    /// The number of keys in the whole range, regardless of `limit`.
    pub count: i64,
    /// Whether the range held more keys than were returned.
    pub more: bool,
    /// The store's current revision when the read was served (not the revision read at).
    pub revision: Revision,
}

/// What a transaction does when its compare holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    /// Writes `value`, attached to `lease` (`0`: no lease).
    Put {
        /// The new value.
        value: Bytes,
        /// The lease to attach the key to, `0` for none.
        lease: LeaseId,
    },
    /// Deletes the key.
    Delete,
}

/// The condition a transaction checks before writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Always holds.
    Always,
    /// Holds when the key's `mod_revision` equals the given revision; `0` means the key must be
    /// absent.
    ModRevision(Revision),
}

/// A single-key compare-and-swap: if `compare` holds for `key`, apply `op`; otherwise return the
/// key's current value. This is all the API server needs for optimistic concurrency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// The key compared and written.
    pub key: String,
    /// The condition.
    pub compare: Compare,
    /// The write applied when the condition holds.
    pub op: TxnOp,
}

impl Txn {
    /// Creates `key` with `value`; fails if the key exists.
    pub fn create(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            compare: Compare::ModRevision(0),
            op: TxnOp::Put {
                value: value.into(),
                lease: 0,
            },
        }
    }

    /// Writes `value` if the key's `mod_revision` is still `expected` (`0`: absent).
    pub fn update(key: impl Into<String>, expected: Revision, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            compare: Compare::ModRevision(expected),
            op: TxnOp::Put {
                value: value.into(),
                lease: 0,
            },
        }
    }

    /// Writes `value` unconditionally.
    pub fn put(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            compare: Compare::Always,
            op: TxnOp::Put {
                value: value.into(),
                lease: 0,
            },
        }
    }

    /// Deletes the key if its `mod_revision` is still `expected`.
    pub fn delete(key: impl Into<String>, expected: Revision) -> Self {
        Self {
            key: key.into(),
            compare: Compare::ModRevision(expected),
            op: TxnOp::Delete,
        }
    }

    /// Attaches the written key to `lease`.
    #[must_use]
    pub fn with_lease(mut self, lease: LeaseId) -> Self {
        if let TxnOp::Put { lease: l, .. } = &mut self.op {
            *l = lease;
        }
        self
    }
}

/// The outcome of a [`Txn`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnResponse {
    /// The compare held and the write was applied (and is durable).
    Applied {
        /// The revision of the write. A delete of an absent key writes nothing: then this is
        /// the store's current revision.
        revision: Revision,
        /// The key's value before the write, if it existed.
        prev: Option<KeyValue>,
    },
    /// The compare failed; nothing was written.
    Rejected {
        /// The store's current revision.
        revision: Revision,
        /// The key's current value, `None` if it is absent.
        current: Option<KeyValue>,
    },
}

impl TxnResponse {
    /// Whether the write was applied.
    pub fn applied(&self) -> bool {
        matches!(self, Self::Applied { .. })
    }

    /// The revision carried by the response.
    pub fn revision(&self) -> Revision {
        match self {
            Self::Applied { revision, .. } | Self::Rejected { revision, .. } => *revision,
        }
    }
}

/// A watch of one key or of a key range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRequest {
    /// The key, or the first key of the range.
    pub key: String,
    /// The end of the range (exclusive); `None` watches the single key `key`.
    pub range_end: Option<String>,
    /// The first revision to deliver (inclusive); `0` delivers changes after the current
    /// revision. A start revision below the compacted revision fails with
    /// [`Error::Compacted`].
    pub start_revision: Revision,
    /// When set, an idle watch receives a [`WatchMessage::Progress`] at about this interval.
    pub progress_interval: Option<Duration>,
}

impl WatchRequest {
    /// Watches every key that starts with `prefix`, from `start_revision` (`0`: from now).
    pub fn prefix(prefix: impl Into<String>, start_revision: Revision) -> Self {
        let key = prefix.into();
        let range_end = Some(prefix_end(&key));
        Self {
            key,
            range_end,
            start_revision,
            progress_interval: None,
        }
    }

    /// Watches the single key `key`, from `start_revision` (`0`: from now).
    pub fn key(key: impl Into<String>, start_revision: Revision) -> Self {
        Self {
            key: key.into(),
            range_end: None,
            start_revision,
            progress_interval: None,
        }
    }

    /// Asks for progress notifications at about `interval` while the watch is idle.
    #[must_use]
    pub fn with_progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = Some(interval);
        self
    }

    /// Whether `key` falls inside this watch's key or range.
    pub fn contains(&self, key: &str) -> bool {
        key_in_range(key, &self.key, self.range_end.as_deref())
    }
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A key was created or updated; `kv.mod_revision` is the revision of the change.
    Put {
        /// The new value.
        kv: KeyValue,
        /// The previous value, if the key existed (and its history was not compacted).
        prev: Option<KeyValue>,
    },
    /// A key was deleted, by a transaction or by the expiry of its lease.
    Delete {
        /// The deleted key.
        key: String,
        /// The revision of the deletion.
        revision: Revision,
        /// The value before the deletion (if its history was not compacted).
        prev: Option<KeyValue>,
    },
}

impl Event {
    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        match self {
            Self::Put { kv, .. } => kv.mod_revision,
            Self::Delete { revision, .. } => *revision,
        }
    }

    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            Self::Put { kv, .. } => &kv.key,
            Self::Delete { key, .. } => key,
        }
    }
}

/// The store's bookkeeping figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// The current revision.
    pub revision: Revision,
    /// The revision history has been compacted up to (reads below it fail); `0` if never.
    pub compact_revision: Revision,
    /// The size of the backing database in bytes, as the backend reports it.
    pub db_size: u64,
}

/// The datastore contract (etcd v3 semantics). Every method is safe to call concurrently.
///
/// Every write that returns `Ok` is durable: it survives a crash of the process or the machine
/// that follows.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Reads a key or a range at the current or a past revision.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// Applies a single-key compare-and-swap.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse>;

    /// Watches a key or range. Events arrive exactly once, in revision order. A watch whose
    /// start revision is compacted fails with [`Error::Compacted`], either here or as the
    /// stream's first item.
    async fn watch(&self, req: WatchRequest) -> Result<WatchStream>;

    /// Discards the history before `revision`: afterwards reads and watches below `revision`
    /// fail with [`Error::Compacted`]. Compacting at or below the compacted revision fails with
    /// [`Error::Compacted`]; above the current revision with [`Error::FutureRevision`].
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// Grants a lease that expires `ttl` after its grant or last keep-alive.
    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId>;

    /// Renews a lease; fails with [`Error::LeaseNotFound`] if it expired or never existed.
    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()>;

    /// Revokes a lease now, deleting its keys.
    async fn lease_revoke(&self, lease: LeaseId) -> Result<()>;

    /// The current revision, the compacted revision and the database size.
    async fn status(&self) -> Result<StoreStatus>;

    /// Reads the current value of one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self.range(RangeRequest::key(key)).await?;
        Ok(resp.kvs.into_iter().next())
    }
}

/// Which datastore to use, as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datastore {
    /// The embedded SQLite store in this file.
    Sqlite(PathBuf),
    /// An etcd cluster at these endpoints (`host:port`, http).
    Etcd(Vec<String>),
}

impl FromStr for Datastore {
    type Err = Error;

    /// Parses `sqlite:///path/to/state.db`, `sqlite://relative.db` or
    /// `etcd://host:port[,host:port…]`.
    fn from_str(s: &str) -> Result<Self> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "datastore {s:?}: sqlite:// needs a file path"
                )));
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if let Some(list) = s.strip_prefix("etcd://") {
            let endpoints: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(String::from)
                .collect();
            if endpoints.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "datastore {s:?}: etcd:// needs at least one host:port"
                )));
            }
            Ok(Self::Etcd(endpoints))
        } else {
            Err(Error::InvalidArgument(format!(
                "datastore {s:?}: expected sqlite://PATH or etcd://HOST:PORT[,HOST:PORT]"
            )))
        }
    }
}

/// Opens the datastore with default settings for each backend.
pub async fn open(datastore: &Datastore) -> Result<Arc<dyn Store>> {
    match datastore {
        Datastore::Sqlite(path) => {
            let store = sqlite::SqliteStore::open(sqlite::SqliteConfig::new(path)).await?;
            Ok(Arc::new(store))
        }
        Datastore::Etcd(endpoints) => {
            let store = etcd::EtcdStore::connect(etcd::EtcdConfig::new(endpoints.clone())).await?;
            Ok(Arc::new(store))
        }
    }
}

/// The smallest key greater than every key that starts with `prefix` (etcd's "range end" for a
/// prefix). An empty prefix yields `"\0"`, which etcd reads as "every key"; backends treat it so.
pub fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // Code point order equals UTF-8 byte order, so bumping the last character gives the
        // successor range end; characters with no successor are dropped, as etcd drops 0xff.
        if let Some(next) = (last as u32)
            .checked_add(1)
            .and_then(|c| char::from_u32(c).or_else(|| char::from_u32(c + 0x800)))
        {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    "\0".to_string()
}

/// Whether `key` is in `[start, end)`, or equals `start` when there is no end. An end of `"\0"`
/// means "to the end of the key space", as in etcd.
pub fn key_in_range(key: &str, start: &str, end: Option<&str>) -> bool {
    match end {
        None => key == start,
        Some("\0") => key >= start,
        Some(end) => key >= start && key < end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bumps_the_last_character() {
        assert_eq!(prefix_end("/registry/pods/"), "/registry/pods0");
        assert_eq!(prefix_end("a"), "b");
        assert_eq!(prefix_end(""), "\0");
    }

    #[test]
    fn prefix_ranges_contain_exactly_the_prefixed_keys() {
        let req = RangeRequest::prefix("/registry/pods/");
        assert!(req.contains("/registry/pods/default/a"));
        assert!(!req.contains("/registry/pods"));
        assert!(!req.contains("/registry/podsecurity/x"));
        assert!(RangeRequest::prefix("").contains("/anything"));
    }

    #[test]
    fn datastore_urls_parse_and_reject_nonsense() {
        assert_eq!(
            "sqlite:///var/lib/tug/state.db".parse::<Datastore>().ok(),
            Some(Datastore::Sqlite(PathBuf::from("/var/lib/tug/state.db")))
        );
        assert_eq!(
            "etcd://127.0.0.1:2379,127.0.0.1:2380"
                .parse::<Datastore>()
                .ok(),
            Some(Datastore::Etcd(vec![
                "127.0.0.1:2379".into(),
                "127.0.0.1:2380".into()
            ]))
        );
        assert!("mysql://x".parse::<Datastore>().is_err());
        assert!("etcd://".parse::<Datastore>().is_err());
        assert!("sqlite://".parse::<Datastore>().is_err());
    }
}
