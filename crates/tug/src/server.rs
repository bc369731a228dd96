//! The `tug server` role: the API server and its datastore, and in the same process the
//! scheduler, the controller manager and a node agent (each talking to the API server over
//! HTTPS like any client). Cluster DNS joins here when it is built.

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tug_apiserver::{ApiServer, Config};

use crate::cli::ServerOptions;

/// Runs the server role until SIGINT or SIGTERM; a second signal exits at once.
pub fn run(options: ServerOptions) -> anyhow::Result<()> {
    // One crypto provider for every TLS user in the process (kube clients included).
    tug_apiserver::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(options))
}

/// Cancels `token` on SIGINT or SIGTERM; a second signal exits the process at once.
pub fn cancel_on_signal(token: CancellationToken) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
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
    Ok(())
}

async fn serve(options: ServerOptions) -> anyhow::Result<()> {
    let config: Config = options.api;
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

    let token = server.shutdown_token();
    cancel_on_signal(token.clone())?;
    if let Some(scheduler) = options.scheduler {
        let client = tug_client::client_from_kubeconfig(server.kubeconfig_path())
            .await
            .context("cannot make a client for the in-process scheduler")?;
        let cancel = token.child_token();
        tokio::spawn(async move {
            if let Err(e) = tug_scheduler::run(client, scheduler, cancel).await {
                tracing::error!(error = %format!("{e:#}"), "the scheduler stopped");
            }
        });
    }
    if let Some(config) = options.controller_manager {
        let client = tug_client::client_from_kubeconfig(server.kubeconfig_path())
            .await
            .context("cannot make a client for the in-process controller manager")?;
        tokio::spawn(tug_controllers::manager::run(
            client,
            config,
            token.child_token(),
        ));
    }
    if let Some(mut agent) = options.agent {
        // The agent talks to this server like any client, with the admin credential until
        // node credentials exist.
        agent.kubeconfig = server.kubeconfig_path().to_path_buf();
        let cancel = token.child_token();
        tokio::spawn(async move {
            if let Err(e) = tug_kubelet::run(agent, cancel).await {
                tracing::error!(
                    error = %format!("{e:#}"),
                    "the node agent stopped; the control plane keeps running (--disable-agent runs without one)"
                );
            }
        });
    }
    server.wait().await.context("the API server failed")?;
    tracing::info!("stopped");
    Ok(())
}
