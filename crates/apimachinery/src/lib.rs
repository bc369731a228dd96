//! The pure machinery of the Kubernetes API: object meta helpers, label and field selectors, quantities, field-path errors, `Status`, GVK/GVR, watch events, the patch engines and server-side apply with `managedFields` tracking.
//!
//! **Architecture Invariant:** no IO and no async runtime here; everything is a pure function of its inputs.

pub mod apply;
pub mod fields;
pub mod gofmt;
pub mod labels;
pub mod meta;
pub mod patch;
pub mod quantity;
pub mod status;
pub mod validation;
pub mod watch;

pub use meta::{GroupKind, GroupResource, GroupVersion, GroupVersionKind, GroupVersionResource};
pub use quantity::Quantity;
pub use status::Status;
