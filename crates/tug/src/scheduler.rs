//! The `tug scheduler` role: the scheduler alone, talking to an API server through a
//! kubeconfig, until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tug_scheduler::SchedulerConfiguration;

/// Runs the scheduler until a signal.
pub fn run((kubeconfig, config): (PathBuf, SchedulerConfiguration)) -> anyhow::Result<()> {
    tug_apiserver::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let client = tug_client::client_from_kubeconfig(&kubeconfig).await?;
        let cancel = CancellationToken::new();
        crate::server::cancel_on_signal(cancel.clone())?;
        tracing::info!(kubeconfig = %kubeconfig.display(), "tug scheduler starting");
        tug_scheduler::run(client, config, cancel).await
    })
}
