//! The `tug agent` role: the node agent (kubelet) alone, talking to an API server through a
//! kubeconfig, until SIGINT or SIGTERM. Pods keep running when it stops; the next start adopts
//! them.
//!
//! `tug server` runs the same agent in-process unless `--disable-agent`.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// Runs the agent until a signal.
pub fn run(config: tug_kubelet::Config) -> anyhow::Result<()> {
    tug_apiserver::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        crate::server::cancel_on_signal(cancel.clone())?;
        tracing::info!(
            node = config.node_name,
            data_dir = %config.data_dir.display(),
            kubeconfig = %config.kubeconfig.display(),
            "tug agent starting"
        );
        tug_kubelet::run(config, cancel)
            .await
            .context("the node agent failed")
    })
}

/// Runs hollow nodes (`--simulate N`, a benchmark tool) until a signal.
pub fn run_hollow(config: tug_kubelet::hollow::HollowConfig) -> anyhow::Result<()> {
    tug_apiserver::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        crate::server::cancel_on_signal(cancel.clone())?;
        tracing::warn!(
            count = config.count,
            "tug agent --simulate: hollow nodes for benchmarks, their pods run no containers"
        );
        tug_kubelet::hollow::run(config, cancel)
            .await
            .context("the hollow nodes failed")
    })
}
