//! `tug server` as a user runs it: the real binary on a loopback port and a temporary data
//! directory, driven by the real kubectl, by kube-rs and by raw HTTPS requests.

mod support;

use std::{fs, os::unix::fs::PermissionsExt, path::Path, process::Command};

use anyhow::{Context, ensure};
use hyper::Version;
use support::{TUG, Tug, free_port, https, kubectl, ready_server, text};

/// A copy of `kubeconfig` at `path` whose user has no client certificate.
fn without_client_certificate(kubeconfig: &Path, path: &Path) -> anyhow::Result<()> {
    let mut doc: serde_json::Value = serde_norway::from_str(&fs::read_to_string(kubeconfig)?)?;
    doc["users"][0]["user"] = serde_json::json!({});
    fs::write(path, serde_norway::to_string(&doc)?)?;
    Ok(())
}

#[tokio::test]
async fn kubectl_sees_a_v1_33_server_and_its_health() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tug = ready_server(dir.path(), &[]).await?;

    let out = kubectl(&tug.kubeconfig(), &["version"])?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    ensure!(
        out.status.success(),
        "kubectl version failed: {stdout}{stderr}"
    );
    ensure!(
        stdout.contains("Server Version: v1.33.0+tug."),
        "unexpected output: {stdout}"
    );
    ensure!(
        !stderr.to_lowercase().contains("warning"),
        "kubectl warned: {stderr}"
    );

    let out = kubectl(&tug.kubeconfig(), &["get", "--raw", "/healthz"])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok");

    let mode = |path: &Path| fs::metadata(path).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(
        mode(&tug.data_dir)?,
        0o700,
        "a new data directory is private"
    );
    assert_eq!(mode(&tug.kubeconfig())?, 0o600);
    assert_eq!(mode(&tug.data_dir.join("tls/ca.key"))?, 0o600);

    let out = kubectl(&tug.kubeconfig(), &["get", "--raw", "/readyz?verbose"])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("readyz check passed\n"));

    let out = kubectl(&tug.kubeconfig(), &["get", "--raw", "/version"])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let version: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(version["major"], "1");
    assert_eq!(version["minor"], "33");
    assert_eq!(version["platform"], "linux/amd64");
    Ok(())
}

#[tokio::test]
async fn kubectl_with_a_bad_token_must_log_in() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tug = ready_server(dir.path(), &[]).await?;
    let copy = dir.path().join("no-cert.kubeconfig");
    without_client_certificate(&tug.kubeconfig(), &copy)?;

    let out = kubectl(&copy, &["--token=nope", "get", "--raw", "/api"])?;
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim_end(),
        "error: You must be logged in to the server (Unauthorized)"
    );
    Ok(())
}

#[tokio::test]
async fn static_tokens_and_an_extra_kubeconfig_work_for_kubectl() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens.csv");
    fs::write(&tokens, "s3cret,root,1,system:masters\nviewer,vic,2\n")?;
    let extra = dir.path().join("elsewhere/kubeconfig.yaml");
    let tug = ready_server(
        dir.path(),
        &[
            "--token-auth-file",
            tokens.to_str().context("utf-8 path")?,
            "--write-kubeconfig",
            extra.to_str().context("utf-8 path")?,
        ],
    )
    .await?;
    assert_eq!(fs::read(&extra)?, fs::read(tug.kubeconfig())?);

    let copy = dir.path().join("no-cert.kubeconfig");
    without_client_certificate(&tug.kubeconfig(), &copy)?;
    let out = kubectl(&copy, &["--token=s3cret", "get", "--raw", "/healthz"])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok");
    let out = kubectl(&copy, &["--token=viewer", "get", "--raw", "/api"])?;
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim_end(),
        r#"Error from server (Forbidden): forbidden: User "vic" cannot get path "/api""#
    );
    assert!(!tug.log().contains("s3cret"), "tokens must never be logged");
    Ok(())
}

#[tokio::test]
async fn raw_https_serves_anonymous_health_and_both_http_versions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tug = ready_server(dir.path(), &[]).await?;
    let ca = tug.ca_pem()?;

    let anonymous = https::client_config(&ca, &[b"h2", b"http/1.1"], None)?;
    let version = https::request(tug.addr(), anonymous.clone(), "GET", "/version", &[]).await?;
    assert_eq!((version.version, version.status), (Version::HTTP_2, 200));
    assert_eq!(version.alpn.as_deref(), Some(&b"h2"[..]));

    let api = https::request(tug.addr(), anonymous, "GET", "/api", &[]).await?;
    assert_eq!(api.status, 401);
    assert_eq!(api.headers["content-type"], "application/json");
    assert_eq!(
        api.body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
    );

    let http1 = https::client_config(&ca, &[b"http/1.1"], None)?;
    let version = https::request(tug.addr(), http1, "GET", "/version", &[]).await?;
    assert_eq!((version.version, version.status), (Version::HTTP_11, 200));
    Ok(())
}

#[tokio::test]
async fn kube_rs_reads_the_server_version() -> anyhow::Result<()> {
    tug_apiserver::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let tug = ready_server(dir.path(), &[]).await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(tug.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = kube::Client::try_from(config)?;
    let info = client.apiserver_version().await?;
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
    assert!(info.git_version.starts_with("v1.33.0+tug."), "{info:?}");
    assert_eq!(info.emulation_minor.as_deref(), Some("33"));
    Ok(())
}

#[tokio::test]
async fn a_warm_restart_reuses_the_ca_and_is_ready_quickly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let port = free_port()?;
    let mut first = Tug::start(&data, port, &[])?;
    let cold = first.wait_ready().await?;
    let ca_before = first.ca_pem()?;
    let old_kubeconfig = dir.path().join("old.kubeconfig");
    fs::copy(first.kubeconfig(), &old_kubeconfig)?;
    let status = first.stop()?;
    assert!(status.success(), "SIGTERM must stop tug cleanly: {status}");

    let mut second = Tug::start(&data, port, &[])?;
    let warm = second.wait_ready().await?;
    assert_eq!(
        second.ca_pem()?,
        ca_before,
        "the CA must never be regenerated"
    );
    let log = second.log();
    assert!(!log.contains("created the cluster CA"), "{log}");
    assert!(!log.contains("issued certificate"), "{log}");
    let startup = log
        .lines()
        .find(|l| l.contains("API server listening"))
        .and_then(|l| l.split("startup_ms=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("?");
    // Reported, not asserted: timing never decides a test.
    eprintln!(
        "start-up: cold {cold:?} from spawn to ready; warm {warm:?} from spawn to ready, {startup} ms inside the server"
    );

    // Credentials issued before the restart still work.
    let out = kubectl(&old_kubeconfig, &["get", "--raw", "/healthz"])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok");
    Ok(())
}

#[test]
fn bad_flags_fail_with_one_line_naming_the_flag() -> anyhow::Result<()> {
    for (args, flag) in [
        (&["--https-listen-port", "70000"][..], "--https-listen-port"),
        (&["--bind-address", "nowhere"][..], "--bind-address"),
        (&["--datastore", "mysql://db"][..], "--datastore"),
        (&["--tls-san", "bad name"][..], "--tls-san"),
    ] {
        let out = Command::new(TUG).arg("server").args(args).output()?;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(flag),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    Ok(())
}

#[test]
fn a_start_up_failure_is_one_line_naming_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no-such-tokens.csv");
    let out = Command::new(TUG)
        .arg("server")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--bind-address", "127.0.0.1", "--https-listen-port", "0"])
        .arg("--token-auth-file")
        .arg(&missing)
        .env("RUST_LOG", "off")
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("error: cannot start the API server: cannot read token file")
            && errors[0].contains(&missing.display().to_string()),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data/state.db").exists(),
        "configuration errors come before the datastore is touched"
    );
    Ok(())
}
