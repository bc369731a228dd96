//! The HTTPS listener: TLS through rustls (ALPN `h2` and `http/1.1`, client certificates
//! requested but optional), each connection driven by hyper-util's auto builder so that
//! HTTP/2 clients and many long-lived HTTP/1.1 watches are served alike, and a graceful
//! shutdown that stops accepting, lets in-flight requests finish for a grace period, then
//! closes what is left.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::{Request, body::Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{
    authn::{UserInfo, x509},
    pki::ClusterPki,
};

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 streams per connection (upstream's default for the API server is in this range; a
/// kubelet or controller multiplexes many watches over one connection).
const MAX_CONCURRENT_STREAMS: u32 = 1000;

/// What can go wrong while setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CA certificate cannot be used as a trust anchor.
    #[error("cannot trust the cluster CA certificate")]
    TrustAnchor(#[source] rustls::Error),
    /// The client certificate verifier cannot be built.
    #[error("cannot build the client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// The serving key cannot be parsed.
    #[error("cannot parse the serving key")]
    Key(#[source] rustls_pki_types::pem::Error),
    /// rustls refused the configuration.
    #[error("invalid TLS configuration")]
    Config(#[source] rustls::Error),
}

/// What the connection a request arrived on tells about the client. Every request carries it
/// as an `Arc<ConnectionInfo>` extension (and `ConnectInfo<SocketAddr>` for axum extractors).
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The user of the verified client certificate, if the client presented one.
    pub client_certificate_user: Option<UserInfo>,
    /// The negotiated ALPN protocol (`h2`, `http/1.1`), if any.
    pub alpn: Option<Vec<u8>>,
}

/// The process-wide rustls crypto provider: `ring`, the one `kube`'s `rustls-tls` feature
/// uses, so that exactly one provider is compiled into Tug.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs [`crypto_provider`] as the process default (for clients that do not pass one
/// explicitly). Idempotent: a provider already installed is kept.
pub fn install_crypto_provider() {
    // Err only means a default is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The server's TLS configuration: the serving certificate, client certificates verified
/// against the cluster CA when presented, ALPN `h2` then `http/1.1`.
pub fn tls_config(pki: &ClusterPki) -> Result<Arc<ServerConfig>, Error> {
    let provider = crypto_provider();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca.cert_der().to_vec()))
        .map_err(Error::TrustAnchor)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(Error::Verifier)?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving.key_pem.as_bytes()).map_err(Error::Key)?;
    let chain = vec![CertificateDer::from(pki.serving.cert_der.clone())];
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(Error::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until `shutdown` is cancelled, then drains
/// connections for at most `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote_addr)) => {
                    // Taken before spawning so that a shutdown racing with the handshake still
                    // reaches this connection.
                    let watcher = graceful.watcher();
                    connections.spawn(serve_connection(
                        tcp,
                        remote_addr,
                        acceptor.clone(),
                        router.clone(),
                        watcher,
                    ));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "stopped accepting; draining connections"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            connections = connections.len(),
            "grace period over; closing remaining connections"
        );
    }
    connections.shutdown().await;
}

/// Runs one connection: TLS handshake, then HTTP/1.1 or HTTP/2 until the client leaves or
/// shutdown closes it.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    remote_addr: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    watcher: hyper_util::server::graceful::Watcher,
) {
    // Small API responses should not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%remote_addr, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote_addr, "TLS handshake timed out");
            return;
        }
    };
    let session = tls.get_ref().1;
    let client_certificate_user = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| match x509::user_from_certificate(leaf) {
            Ok(user) => user,
            Err(e) => {
                tracing::warn!(%remote_addr, error = %e, "ignoring a client certificate");
                None
            }
        });
    let info = Arc::new(ConnectionInfo {
        remote_addr,
        client_certificate_user,
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
    });

    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let extensions = request.extensions_mut();
        extensions.insert(info.clone());
        extensions.insert(ConnectInfo(remote_addr));
        router.clone().oneshot(request)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%remote_addr, error = %e, "connection ended with an error");
    }
}
