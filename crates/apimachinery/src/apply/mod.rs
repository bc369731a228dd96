//! Server-side apply and `metadata.managedFields`, following upstream's structured-merge-diff
//! (`fieldpath`, `typed`, `merge`) and the API server's field manager.
//!
//! The API server calls [`apply`] for `application/apply-patch+yaml` patches and [`update`]
//! for every other write (create, update, patch) so that each object records which manager
//! owns which field:
//!
//! * field paths and sets ([`Path`], [`FieldSet`]) with upstream's `FieldsV1` encoding;
//! * [`ApplySchema`], the list, map and scalar types the `api` crate derives from OpenAPI,
//!   and [`SchemaTree`], a hand-written implementation in structured-merge-diff's format;
//! * the walks over typed values ([`to_field_set`], [`compare`], [`merge`], [`validate`]);
//! * ownership: conflicts ([`Conflicts`], 409), pruning of fields an applier dropped,
//!   shared ownership of equal values, reset fields, the `before-first-apply` manager,
//!   the client-side-apply upgrade of `kubectl`, the cap on update entries, and the
//!   `scale` subresource ([`ScaleHandler`]).
//!
//! Not done (yet): converting objects between API versions for managers recorded at other
//! versions (they are compared at the request's version), reconciling sets recorded under
//! an older schema, unions.

mod fieldmanager;
mod fieldpath;
mod gojson;
mod managed;
mod scale;
mod schema;
mod typed;
mod updater;

#[cfg(test)]
mod tests;

pub use fieldmanager::{
    ApplyOptions, FIELD_MANAGER_MAX_LENGTH, LAST_APPLIED_ANNOTATION, UpdateOptions, apply,
    manager_from_user_agent, try_update, update,
};
pub use fieldpath::{FieldSet, Path, PathElement};
pub use managed::{FIELDS_V1, OPERATION_APPLY, OPERATION_UPDATE, Timestamp};
pub use scale::{SCALE_API_VERSION, ScaleHandler};
pub use schema::{
    ApplySchema, FieldType, ListType, MapType, ScalarType, SchemaTree, TreeNode, TypeKind, Untyped,
    zero_object,
};
pub use typed::{
    Comparison, ValidationError, ValidationErrors, compare, ensure_named_fields_are_members, merge,
    remove_items, to_field_set, validate,
};
pub use updater::{Conflict, Conflicts};

use crate::status::{STATUS_FAILURE, Status};

/// Errors of server-side apply and of ownership tracking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// Fields of the applied configuration are owned by other managers with other values
    /// (409 `Conflict` with one `FieldManagerConflict` cause per field).
    #[error("{}", .0.message())]
    Conflicts(Conflicts),
    /// The apply request itself is wrong (400): another kind or version than the
    /// endpoint's, or `metadata.managedFields` set.
    #[error("{0}")]
    BadRequest(String),
    /// The object does not fit the schema or ownership could not be computed; upstream
    /// answers 500 with this message and no reason.
    #[error("{0}")]
    Internal(String),
    /// A `FieldsV1` document is malformed.
    #[error("{0}")]
    InvalidFieldsV1(String),
    /// `metadata.managedFields` is malformed.
    #[error("{0}")]
    InvalidManagedFields(String),
    /// A hand-written schema document is malformed.
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
}

impl ApplyError {
    /// The `Status` upstream answers with.
    pub fn to_status(&self) -> Status {
        match self {
            Self::Conflicts(conflicts) => conflicts.to_status(),
            Self::BadRequest(message) => Status::bad_request(message),
            other => Status {
                status: STATUS_FAILURE.to_owned(),
                code: 500,
                message: other.to_string(),
                ..Status::default()
            },
        }
    }
}
