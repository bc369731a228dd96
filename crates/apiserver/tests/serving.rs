//! The API server's HTTPS front door, in process: TLS and ALPN, authentication by client
//! certificate, bearer token or nothing, authorization, health and version.

mod support;

use std::{fs, sync::Arc};

use hyper::Version;
use support::https::{self, Reply};
use tug_apiserver::{
    RunningServer,
    pki::{ClusterCa, LeafSpec},
};

const UNAUTHORIZED: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;

/// A client of `server` trusting its CA, with optional ALPN and identity.
struct Client {
    server_addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

impl Client {
    fn new(
        server: &RunningServer,
        alpn: &[&[u8]],
        identity: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        let ca = fs::read_to_string(server.context().config.tls_dir().join("ca.crt"))?;
        Ok(Self {
            server_addr: server.local_addr(),
            config: https::client_config(&ca, alpn, identity)?,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        https::request(self.server_addr, self.config.clone(), "GET", path, &[]).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<Reply> {
        https::request(self.server_addr, self.config.clone(), "GET", path, headers).await
    }
}

/// The cluster CA of a running server, to issue test identities.
fn cluster_ca(server: &RunningServer) -> anyhow::Result<ClusterCa> {
    Ok(ClusterCa::load_or_create(&server.context().config.tls_dir())?.0)
}

#[tokio::test]
async fn anonymous_requests_reach_health_and_version_and_nothing_else() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let anonymous = Client::new(&server, &[b"h2", b"http/1.1"], None)?;

    let version = anonymous.get("/version").await?;
    assert_eq!(version.status, 200);
    assert_eq!(version.headers["content-type"], "application/json");
    let info: serde_json::Value = serde_json::from_str(&version.body)?;
    assert_eq!(info["major"], "1");
    assert_eq!(info["minor"], "33");

    for path in ["/healthz", "/livez", "/readyz", "/healthz/ping"] {
        let reply = anonymous.get(path).await?;
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"), "{path}");
    }
    let verbose = anonymous.get("/readyz?verbose").await?;
    assert_eq!(
        verbose.body,
        "[+]ping ok\n[+]etcd ok\n[+]shutdown ok\nreadyz check passed\n"
    );

    for path in [
        "/api",
        "/apis",
        "/",
        "/api/v1/namespaces/default/pods",
        "/metrics",
    ] {
        let reply = anonymous.get(path).await?;
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(reply.body, UNAUTHORIZED, "{path}");
        assert_eq!(reply.headers["content-type"], "application/json");
    }
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_bad_bearer_token_is_unauthorized_even_on_health_paths() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let client = Client::new(&server, &[], None)?;
    for path in ["/healthz", "/version", "/api"] {
        let reply = client
            .get_with(path, &[("authorization", "Bearer nope")])
            .await?;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (401, UNAUTHORIZED),
            "{path}"
        );
    }
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn alpn_negotiates_http2_and_http1_is_served_too() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    for (alpn, protocol, version) in [
        (
            &[&b"h2"[..], b"http/1.1"][..],
            Some(&b"h2"[..]),
            Version::HTTP_2,
        ),
        (
            &[&b"http/1.1"[..]][..],
            Some(&b"http/1.1"[..]),
            Version::HTTP_11,
        ),
        (&[][..], None, Version::HTTP_11),
    ] {
        let reply = Client::new(&server, alpn, None)?.get("/version").await?;
        assert_eq!(reply.alpn.as_deref(), protocol);
        assert_eq!((reply.version, reply.status), (version, 200));
    }
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn client_certificates_name_the_user_and_every_organisation_is_a_group() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let ca = cluster_ca(&server)?;

    let bob = ca.issue(&LeafSpec::client("bob", &["dev"]))?;
    let bob = Client::new(&server, &[b"h2"], Some((&bob.cert_pem, &bob.key_pem)))?;
    let reply = bob.get("/api").await?;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"bob\" cannot get path \"/api\"","reason":"Forbidden","details":{},"code":403}"#
    );
    let reply = bob.get("/api/v1/namespaces/default/pods/web").await?;
    assert_eq!(reply.status, 403);
    let status: serde_json::Value = serde_json::from_str(&reply.body)?;
    assert_eq!(
        status["message"],
        r#"pods "web" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(bob.get("/version").await?.status, 200);

    // system:masters as the second organisation still makes an administrator.
    let carol = ca.issue(&LeafSpec::client("carol", &["dev", "system:masters"]))?;
    let carol = Client::new(&server, &[b"h2"], Some((&carol.cert_pem, &carol.key_pem)))?;
    let reply = carol.get("/api").await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let versions: serde_json::Value = serde_json::from_str(&reply.body)?;
    assert_eq!(versions["kind"], "APIVersions");
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_admin_kubeconfig_identity_is_a_cluster_administrator() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let tls = server.context().config.tls_dir();
    let cert = fs::read_to_string(tls.join("admin.crt"))?;
    let key = fs::read_to_string(tls.join("admin.key"))?;
    let admin = Client::new(&server, &[b"h2"], Some((&cert, &key)))?;
    let namespaces = admin.get("/api/v1/namespaces").await?;
    assert_eq!(namespaces.status, 200, "{}", namespaces.body);
    let list: serde_json::Value = serde_json::from_str(&namespaces.body)?;
    assert_eq!(list["kind"], "NamespaceList");
    let kubeconfig = fs::read_to_string(server.kubeconfig_path())?;
    assert!(kubeconfig.contains(&format!("server: {}", server.url())));
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_fails_the_handshake() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let stranger =
        ClusterCa::generate()?.issue(&LeafSpec::client("system:admin", &["system:masters"]))?;
    let client = Client::new(&server, &[], Some((&stranger.cert_pem, &stranger.key_pem)))?;
    assert!(client.get("/version").await.is_err());
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn token_file_users_are_authenticated_and_authorized_by_group() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens.csv");
    fs::write(
        &tokens,
        "admin-token,root,1,\"ops,system:masters\"\nuser-token,dave,2\n",
    )?;
    let mut config = support::config(&dir.path().join("data"));
    config.token_auth_file = Some(tokens);
    let (server, _) = support::start(config).await?;
    let client = Client::new(&server, &[b"h2"], None)?;

    let admin = client
        .get_with("/api", &[("authorization", "Bearer admin-token")])
        .await?;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let dave = client
        .get_with(
            "/api/v1/namespaces/default/pods",
            &[("authorization", "Bearer user-token")],
        )
        .await?;
    assert_eq!(dave.status, 403);
    let status: serde_json::Value = serde_json::from_str(&dave.body)?;
    assert_eq!(
        status["message"],
        r#"pods is forbidden: User "dave" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(status["details"], serde_json::json!({"kind": "pods"}));
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn readiness_reports_a_datastore_outage_without_the_reason() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, store) = support::start(support::config(dir.path())).await?;
    let client = Client::new(&server, &[], None)?;
    store.set_down(true);
    let reply = client.get("/readyz").await?;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.body,
        "[+]ping ok\n[-]etcd failed: reason withheld\n[+]shutdown ok\nreadyz check failed\n"
    );
    store.set_down(false);
    assert_eq!(client.get("/readyz").await?.status, 200);
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let addr = server.local_addr();
    server.shutdown().await?;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    Ok(())
}

#[tokio::test]
async fn a_start_on_a_port_in_use_fails_naming_the_address() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (first, _) = support::start(support::config(&dir.path().join("a"))).await?;
    let mut config = support::config(&dir.path().join("b"));
    config.port = first.local_addr().port();
    let err = support::start(config).await.expect_err("port in use");
    assert!(
        err.to_string()
            .contains(&format!("cannot listen on {}", first.local_addr())),
        "{err:#}"
    );
    first.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn hundreds_of_http1_connections_stay_open_and_are_reused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let ca = fs::read_to_string(server.context().config.tls_dir().join("ca.crt"))?;
    let config = https::client_config(&ca, &[b"http/1.1"], None)?;

    // Like informers' watches: many HTTP/1.1 connections open at the same time.
    let mut connections = Vec::new();
    for _ in 0..300 {
        connections.push(https::Connection::open(server.local_addr(), config.clone()).await?);
    }
    for round in 0..2 {
        let replies = futures::future::join_all(
            connections
                .iter_mut()
                .map(|c| c.send("GET", "/healthz", &[])),
        )
        .await;
        for reply in replies {
            let reply = reply?;
            assert_eq!(
                (reply.version, reply.status),
                (Version::HTTP_11, 200),
                "round {round}"
            );
        }
    }
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_idle_connections_of_both_http_versions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let ca = fs::read_to_string(server.context().config.tls_dir().join("ca.crt"))?;
    let mut h1 = https::Connection::open(
        server.local_addr(),
        https::client_config(&ca, &[b"http/1.1"], None)?,
    )
    .await?;
    let mut h2 = https::Connection::open(
        server.local_addr(),
        https::client_config(&ca, &[b"h2"], None)?,
    )
    .await?;
    assert_eq!(h1.send("GET", "/livez", &[]).await?.status, 200);
    assert_eq!(h2.send("GET", "/livez", &[]).await?.status, 200);

    // The grace period (1 s) bounds this even if a connection lingered; the deadline only
    // turns a hang into a failure.
    tokio::time::timeout(std::time::Duration::from_secs(30), server.shutdown()).await??;
    assert!(h1.send("GET", "/livez", &[]).await.is_err());
    assert!(h2.send("GET", "/livez", &[]).await.is_err());
    Ok(())
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = support::start(support::config(dir.path())).await?;
    let addr = server.local_addr();
    drop(server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "still listening on {addr}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}
