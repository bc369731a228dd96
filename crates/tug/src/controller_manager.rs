//! The `tug controller-manager` role: the controllers alone, talking to an API server through
//! a kubeconfig, leader-elected on the Lease `kube-system/kube-controller-manager`, until
//! SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tug_controllers::manager::ManagerConfig;

/// Runs the controller manager until a signal.
pub fn run((kubeconfig, config): (PathBuf, ManagerConfig)) -> anyhow::Result<()> {
    tug_apiserver::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let client = tug_client::client_from_kubeconfig(&kubeconfig).await?;
        let cancel = CancellationToken::new();
        crate::server::cancel_on_signal(cancel.clone())?;
        tracing::info!(kubeconfig = %kubeconfig.display(), "tug controller-manager starting");
        tug_controllers::manager::run(client, config, cancel).await;
        Ok(())
    })
}
