//! The pure machinery of the Kubernetes API: object meta helpers, label and field selectors, quantities, field-path errors, `Status`, GVK/GVR, watch events and the patch engines.
//!
//! **Architecture Invariant:** no IO and no async runtime here; everything is a pure function of its inputs.
