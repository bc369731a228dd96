//! A lean HTTPS client for the benchmark: one kept-alive connection per simulated client,
//! HTTP/2 (as client-go and kubectl speak) or HTTP/1.1 keep-alive (as kube-rs speaks), so that
//! the client spends as little of the shared CPUs as possible while behaving like real ones.

use std::{borrow::Cow, net::SocketAddr, sync::Arc};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response,
    body::{Bytes, Incoming},
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio_rustls::TlsConnector;

/// client-go's HTTP/2 flow-control windows (Go's `transportDefaultStreamFlow` and
/// `transportDefaultConnFlow`): large lists are not throttled by 64 KiB windows.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 1 << 30;
/// How much of an unexpected reply's body an error message quotes.
const QUOTED_BODY: usize = 600;

/// The HTTP version a connection offers by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `h2`, as client-go and kubectl.
    Http2,
    /// `http/1.1` with keep-alive, as kube-rs.
    Http1,
}

impl Protocol {
    /// How the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Http2 => "HTTP/2",
            Self::Http1 => "HTTP/1.1 keep-alive",
        }
    }
}

/// A TLS client configuration trusting `ca_pem`, presenting `identity` (certificate and key
/// PEM) if given, offering `protocol`.
pub fn tls_config(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
    protocol: Protocol,
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
    config.alpn_protocols = match protocol {
        Protocol::Http2 => vec![b"h2".to_vec()],
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
    };
    Ok(Arc::new(config))
}

/// A whole reply.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as text, for messages.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The reply itself if its status is one of `expected`, else an error naming `what` with
    /// the status and the start of the body (the server's `Status` message).
    pub fn expect(self, expected: &[u16], what: impl std::fmt::Display) -> anyhow::Result<Self> {
        if expected.contains(&self.status) {
            return Ok(self);
        }
        Err(self.error(what))
    }

    /// An error naming `what` with the status and the start of the body.
    pub fn error(&self, what: impl std::fmt::Display) -> anyhow::Error {
        let text = self.text();
        let quoted: String = text.chars().take(QUOTED_BODY).collect();
        let more = if quoted.len() < text.len() { "…" } else { "" };
        anyhow::anyhow!("{what}: HTTP {}: {quoted}{more}", self.status)
    }
}

/// One kept-alive HTTPS connection.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    sender: Sender,
}

#[derive(Debug)]
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Connection {
    /// Connects to `addr` (verified as its IP address), completes the TLS handshake and
    /// speaks the HTTP version ALPN chose.
    pub async fn open(addr: SocketAddr, tls: Arc<ClientConfig>) -> anyhow::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        // As Go's net/http: small requests are not held back by Nagle's algorithm.
        tcp.set_nodelay(true)?;
        let tls = TlsConnector::from(tls)
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr}"))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let sender = if h2 {
            let (sender, connection) =
                hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .initial_stream_window_size(STREAM_WINDOW)
                    .initial_connection_window_size(CONNECTION_WINDOW)
                    .handshake(io)
                    .await
                    .context("HTTP/2 handshake")?;
            tokio::spawn(connection);
            Sender::Http2(sender)
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .context("HTTP/1.1 handshake")?;
            tokio::spawn(connection);
            Sender::Http1(sender)
        };
        Ok(Self { addr, sender })
    }

    /// Sends `method path` with an optional `(content type, body)` and returns the response
    /// as soon as its head arrived (the body streams).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> anyhow::Result<Response<Incoming>> {
        let mut builder = Request::builder()
            .method(method)
            .header("accept", "application/json")
            .header("user-agent", "tug-api-bench");
        let content = match body {
            Some((content_type, bytes)) => {
                builder = builder.header("content-type", content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let response = match &mut self.sender {
            Sender::Http2(sender) => {
                let request = builder
                    .uri(format!("https://{}{path}", self.addr))
                    .body(Full::new(content))?;
                sender.ready().await.context("connection closed")?;
                sender.send_request(request).await
            }
            Sender::Http1(sender) => {
                let request = builder
                    .uri(path)
                    .header("host", self.addr.to_string())
                    .body(Full::new(content))?;
                sender.ready().await.context("connection closed")?;
                sender.send_request(request).await
            }
        };
        response.with_context(|| format!("{method} {path}: no response"))
    }

    /// Sends `method path` with an optional `(content type, body)` and reads the whole reply.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> anyhow::Result<Reply> {
        let response = self.send(method, path, body).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{method} {path}: reading the body"))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}
