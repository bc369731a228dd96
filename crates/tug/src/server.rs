//! The `tug server` role: today the API server and its datastore. The scheduler, controller
//! manager, cluster DNS and an in-process agent join here as they are built.

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tug_apiserver::{ApiServer, Config};

/// Runs the server role until SIGINT or SIGTERM; a second signal exits at once.
pub fn run(config: Config) -> anyhow::Result<()> {
    // One crypto provider for every TLS user in the process (kube clients included).
    tug_apiserver::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = ApiServer::start(config)
        .await
        .context("cannot start the API server")?;
    server.ready().await;
    tracing::info!(
        url = server.url(),
        kubeconfig = %server.kubeconfig_path().display(),
        ca = server.ca_fingerprint(),
        startup_ms = server.startup_duration().as_millis() as u64,
        "tug server is ready"
    );

    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let token = server.shutdown_token();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down (signal again to exit at once)");
        token.cancel();
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        std::process::exit(130);
    });
    server.wait().await.context("the API server failed")?;
    tracing::info!("stopped");
    Ok(())
}
