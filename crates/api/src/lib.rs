//! The resource catalogue: per kind its scope, plural, short names, categories and subresources; defaulting, validation, printer columns and OpenAPI.
//!
//! **Architecture Invariant:** knows nothing of storage or HTTP.
