//! Shared support of the `tug` binary's tests: the real `tug server` on a free loopback port
//! with a temporary data directory (killed when dropped), and the real kubectl run against it.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

#[path = "../../../apiserver/tests/support/https.rs"]
pub mod https;
pub mod node;

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};

/// The kubectl the tests drive: `$TUG_KUBECTL` when set (CI runs the suite again with a newer
/// kubectl that way), else the machine's `/usr/bin/kubectl`.
pub fn kubectl_path() -> String {
    std::env::var("TUG_KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".to_owned())
}
pub const TUG: &str = env!("CARGO_BIN_EXE_tug");
/// How long a start may take before the test gives up (a deadline, not an expectation).
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running `tug server`, killed when dropped (even when the test fails).
pub struct Tug {
    child: Child,
    /// The data directory.
    pub data_dir: PathBuf,
    port: u16,
    log: PathBuf,
    spawned: Instant,
}

impl Tug {
    /// Starts `tug server` on 127.0.0.1:`port` with its data in `data_dir`, plus `extra` flags.
    pub fn start(data_dir: &Path, port: u16, extra: &[&str]) -> anyhow::Result<Self> {
        let log = data_dir.with_extension(format!("{port}.log"));
        let spawned = Instant::now();
        let child = Command::new(TUG)
            .arg("server")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--bind-address", "127.0.0.1"])
            .args(["--https-listen-port", &port.to_string()])
            // No node agent unless a test asks for one (it would start containerd).
            .args((!extra.contains(&"--enable-agent")).then_some("--disable-agent"))
            .args(extra.iter().filter(|a| **a != "--enable-agent"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .context("spawn tug")?;
        Ok(Self {
            child,
            data_dir: data_dir.to_path_buf(),
            port,
            log,
            spawned,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("admin.kubeconfig")
    }

    pub fn ca_pem(&self) -> anyhow::Result<String> {
        Ok(fs::read_to_string(self.data_dir.join("tls/ca.crt"))?)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/readyz` (anonymously, trusting the cluster CA once it exists) until it says
    /// `ok`; returns the time since spawn.
    pub async fn wait_ready(&mut self) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "tug exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            if let Ok(ca) = self.ca_pem() {
                let config = https::client_config(&ca, &[], None)?;
                if let Ok(reply) = https::request(self.addr(), config, "GET", "/readyz", &[]).await
                    && reply.status == 200
                    && reply.body == "ok"
                {
                    return Ok(self.spawned.elapsed());
                }
            }
            ensure!(
                Instant::now() < deadline,
                "tug not ready after {START_DEADLINE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM failed");
        Ok(self.child.wait()?)
    }
}

impl Drop for Tug {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Starts a server in a fresh directory under `dir` and waits until it is ready.
pub async fn ready_server(dir: &Path, extra: &[&str]) -> anyhow::Result<Tug> {
    let mut tug = Tug::start(&dir.join("data"), free_port()?, extra)?;
    tug.wait_ready().await?;
    Ok(tug)
}

/// Runs the real kubectl with `kubeconfig` and a private HOME (for its caches).
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let home = kubeconfig
        .parent()
        .context("kubeconfig has a directory")?
        .join("home");
    fs::create_dir_all(&home)?;
    Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("HOME", &home)
        .stdin(Stdio::null())
        .output()
        .context("run kubectl")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How long [`eventually`] waits (a deadline, not an expectation).
pub const EVENTUALLY: Duration = Duration::from_secs(60);

/// Polls `check` every 100 ms until it yields a value; fails naming `what` after
/// [`EVENTUALLY`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what}: not reached within {EVENTUALLY:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A kube client with the credentials of `kubeconfig` (the server's admin kubeconfig).
pub async fn admin_client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig)?,
        &Default::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}
