//! Support of the API server benchmark: the real `tug server` on a free loopback port with a
//! private data directory (killed when dropped, also on panic), its admin credentials and its
//! resident memory.

#![allow(
    dead_code,
    reason = "each benchmark uses a different subset of the helpers"
)]

pub mod client;

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use rustls::ClientConfig;

/// The `tug` binary cargo built for this benchmark (the release build under `cargo bench`).
pub const TUG: &str = env!("CARGO_BIN_EXE_tug");
/// How long a start may take before the benchmark gives up (a deadline, not an expectation).
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How often readiness is polled while the server starts.
const READY_POLL: Duration = Duration::from_millis(10);

/// A running `tug server`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    data_dir: PathBuf,
    addr: SocketAddr,
    log: PathBuf,
    /// From spawn to the first `ok` of `/readyz`.
    pub startup: Duration,
}

impl Server {
    /// Starts `tug server` on 127.0.0.1 with its data in `data_dir` (which must not exist yet)
    /// and without the in-process scheduler (the API alone is measured), and waits until
    /// `/readyz` says `ok`.
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(data_dir, &["--disable-scheduler"]).await
    }

    /// Like [`Server::start`], with `extra` flags instead of `--disable-scheduler`.
    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = data_dir.with_extension("log");
        let spawned = Instant::now();
        let child = Command::new(TUG)
            .arg("server")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--bind-address", "127.0.0.1"])
            .args(["--https-listen-port", &port.to_string()])
            // The benchmarks measure one component at a time: no node agent (and no
            // containerd), no controllers (nodes made through the API have no leases).
            .args(["--disable-agent", "--disable-controller-manager"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).context("create the server log")?)
            .spawn()
            .with_context(|| format!("cannot spawn {TUG}"))?;
        let mut server = Self {
            child,
            data_dir: data_dir.to_path_buf(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            log,
            startup: Duration::ZERO,
        };
        server.wait_ready(spawned).await?;
        server.startup = spawned.elapsed();
        Ok(server)
    }

    /// Polls `/readyz` anonymously (trusting the cluster CA once it exists) until it says
    /// `ok`, the process exits or the deadline passes.
    async fn wait_ready(&mut self, spawned: Instant) -> anyhow::Result<()> {
        let deadline = spawned + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "tug server exited with {status} before it was ready:\n{}",
                    self.log_tail(40)
                );
            }
            if let Ok(ca) = fs::read_to_string(self.data_dir.join("tls/ca.crt")) {
                let tls = client::tls_config(&ca, None, client::Protocol::Http1)?;
                if let Ok(mut conn) = client::Connection::open(self.addr, tls).await
                    && let Ok(reply) = conn.call("GET", "/readyz", None).await
                    && reply.status == 200
                    && reply.body == "ok"
                {
                    return Ok(());
                }
            }
            ensure!(
                Instant::now() < deadline,
                "tug server not ready after {START_DEADLINE:?}:\n{}",
                self.log_tail(40)
            );
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A TLS client configuration with the admin identity of the `admin.kubeconfig` the
    /// server wrote, offering `protocol` by ALPN.
    pub fn admin_tls(&self, protocol: client::Protocol) -> anyhow::Result<Arc<ClientConfig>> {
        let path = self.data_dir.join("admin.kubeconfig");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let doc: serde_json::Value = serde_norway::from_str(&text)
            .with_context(|| format!("cannot parse {}", path.display()))?;
        let field = |value: &serde_json::Value, what: &str| -> anyhow::Result<String> {
            let encoded = value
                .as_str()
                .with_context(|| format!("{} has no {what}", path.display()))?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .with_context(|| format!("{what} of {} is not base64", path.display()))?;
            String::from_utf8(decoded)
                .with_context(|| format!("{what} of {} is not PEM", path.display()))
        };
        let ca = field(
            &doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "certificate-authority-data",
        )?;
        let user = &doc["users"][0]["user"];
        let cert = field(&user["client-certificate-data"], "client-certificate-data")?;
        let key = field(&user["client-key-data"], "client-key-data")?;
        client::tls_config(&ca, Some((&cert, &key)), protocol)
    }

    /// The admin kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("admin.kubeconfig")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The resident set size of the server process in bytes (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_bytes(self.child.id())
    }
}

/// The resident set size of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))?;
    Ok(kib * 1024)
}

/// CPU time (user + system) process `pid` has used so far (`/proc/<pid>/stat`).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("odd {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {i} in {path}"))
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let total = ticks(11)? + ticks(12)?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(total * 10))
}

impl Server {
    /// The last `lines` lines of the server's log (its stderr).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Fails, with the log's tail, if the server process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "tug server exited with {status}; its log ends with:\n{}",
                self.log_tail(40)
            );
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
