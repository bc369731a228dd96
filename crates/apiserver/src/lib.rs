//! The Kubernetes REST API over the datastore: HTTP(S) routing, discovery, authentication, authorization, admission, the generic registry and the watch cache.
//!
//! [`ApiServer::start`] loads or creates the cluster PKI ([`pki`]), opens the datastore, starts
//! the [`registry`] (every resource's store and watch cache), writes the admin kubeconfig
//! ([`kubeconfig`]) and serves HTTPS ([`serve`]) with every request passing request-info
//! parsing ([`request_info`]), authentication ([`authn`]) and authorization ([`authz`]) before
//! its handler: the health endpoints ([`health`]), `/version` ([`version`]) and the resource
//! API of [`handlers`] (discovery, OpenAPI, resource endpoints, watches, `/metrics`), all
//! joined in the route table of `routes.rs`.
//!
//! **Architecture Invariant:** the only crate that touches the datastore; it knows nothing of the scheduler, the controllers or the kubelet.

pub mod authn;
pub mod authz;
pub mod config;
mod filters;
mod fsutil;
pub mod handlers;
pub mod health;
pub mod kubeconfig;
pub mod pki;
pub mod registry;
pub mod request_info;
mod routes;
pub mod serve;
mod server;
pub mod status;
pub mod version;

pub use config::Config;
pub use routes::ServerContext;
pub use serve::{crypto_provider, install_crypto_provider};
pub use server::{ApiServer, Error, RunningServer};
