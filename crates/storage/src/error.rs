//! The errors of the datastore contract, shared by every backend.

use std::path::PathBuf;

use crate::{LeaseId, Revision};

/// A boxed error from a backend library (SQLite, the etcd client, the OS).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of the datastore.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a datastore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The requested revision is older than the compacted revision.
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision still readable.
        compacted: Revision,
    },

    /// The requested revision has not been written yet.
    #[error("required revision {requested} is a future revision (current revision {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },

    /// The lease does not exist or has expired.
    #[error("lease {0} not found")]
    LeaseNotFound(LeaseId),

    /// The request itself is malformed.
    #[error("invalid request: {0}")]
    InvalidArgument(String),

    /// The database file or directory cannot be used: unwritable, not a database, not a Tug
    /// database, corrupt, or the disk is full.
    #[error("datastore {path}: {reason}", path = path.display())]
    Database {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong, in a few words.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// The remote datastore could not be reached or answered with an error.
    #[error("etcd {endpoints}: {reason}")]
    Unavailable {
        /// The endpoints tried.
        endpoints: String,
        /// What failed.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The store has been shut down, or its writer died.
    #[error("datastore is closed")]
    Closed,
}

impl Error {
    /// Whether this is [`Error::Compacted`].
    pub fn is_compacted(&self) -> bool {
        matches!(self, Self::Compacted { .. })
    }
}
