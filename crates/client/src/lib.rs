//! What every component that talks to the API server shares: leader election on a
//! `coordination.k8s.io` Lease, a recorder of core/v1 Events with upstream's aggregation of
//! repeats, and the small time helpers both need.
//!
//! **Architecture Invariant:** talks only to the API server, through the Kubernetes REST API.

pub mod events;
pub mod leader;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

/// Now as an API `Time` (second precision on the wire).
pub fn now_time() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Now as an API `MicroTime`.
pub fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// A client for the API server named by the kubeconfig at `path` (its current context).
pub async fn client_from_kubeconfig(path: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", path.display()))?;
    kube::Client::try_from(config)
        .map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", path.display()))
}
