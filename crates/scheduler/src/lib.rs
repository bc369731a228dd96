//! The scheduler: queue, framework with extension points, one file per plugin.
//!
//! **Architecture Invariant:** talks only to the API server, through the Kubernetes REST API.

pub mod config;
pub mod framework;
pub mod plugins;
pub mod queue;
pub mod scheduler;

pub use self::{config::SchedulerConfiguration, scheduler::run};
