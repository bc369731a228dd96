//! A small HTTPS client for tests: picks the ALPN protocols and the client certificate, then
//! speaks whatever HTTP version was negotiated. Shared by the API server's in-process tests and
//! the `tug` binary's tests.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Version, body::Bytes, header::HeaderMap};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio_rustls::TlsConnector;

/// What came back.
#[derive(Debug)]
pub struct Reply {
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The HTTP version of the response.
    pub version: Version,
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, as text.
    pub body: String,
}

/// A TLS client configuration trusting `ca_pem`, offering `alpn`, presenting `identity`
/// (certificate and key PEM) if given.
pub fn client_config(
    ca_pem: &str,
    alpn: &[&[u8]],
    identity: Option<(&str, &str)>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).context("CA PEM")?)?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).context("client cert PEM")?],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).context("client key PEM")?,
        )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// One HTTP connection over TLS, HTTP/2 or HTTP/1.1 as ALPN decided.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    alpn: Option<Vec<u8>>,
    sender: Sender,
}

#[derive(Debug)]
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Connection {
    /// Connects to `addr` (verified as its IP address) and completes the TLS handshake.
    pub async fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> anyhow::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let server_name = ServerName::IpAddress(addr.ip().into());
        let tls = TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .context("TLS handshake")?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(tls);
        let sender = if alpn.as_deref() == Some(b"h2") {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            Sender::Http2(sender)
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(connection);
            Sender::Http1(sender)
        };
        Ok(Self { addr, alpn, sender })
    }

    /// Sends `method path` with `headers` and reads the whole reply.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut builder = Request::builder().method(method);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = match &mut self.sender {
            Sender::Http2(sender) => {
                let request = builder
                    .uri(format!("https://{}{path}", self.addr))
                    .body(Empty::<Bytes>::new())?;
                sender.send_request(request).await?
            }
            Sender::Http1(sender) => {
                let request = builder
                    .uri(path)
                    .header("host", self.addr.to_string())
                    .body(Empty::<Bytes>::new())?;
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let version = response.version();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            alpn: self.alpn.clone(),
            version,
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// Sends `method path` with `headers` over a new connection to `addr` and reads the whole
/// reply.
pub async fn request(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Reply> {
    Connection::open(addr, config)
        .await?
        .send(method, path, headers)
        .await
}
