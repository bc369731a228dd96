//! The controller manager: one module per controller on a shared reconcile harness.
//!
//! **Architecture Invariant:** talks only to the API server, through the Kubernetes REST API.

pub mod delay_queue;
pub mod garbagecollector;
pub mod manager;
pub mod namespace;
pub mod nodelifecycle;
pub mod podgc;
