//! Throwaway etcd servers for tests and benchmarks: one member or a cluster, on loopback ports.
//!
//! Each member runs the system's `etcd` binary (Debian's `etcd-server`) as a child process with
//! its data directory in a temporary directory and free `127.0.0.1` ports for clients and peers.
//! Starting waits until the member serves a linearizable read (so it has a leader), with a
//! deadline instead of a fixed sleep. Dropping a server kills it and removes its data, also when
//! the test panics.
//!
//! Self-contained on purpose (std, tempfile, tokio, etcd-client, anyhow): test files include it
//! with `mod support;` and the benchmark with
//! `#[path = "../tests/support/etcd_server.rs"] mod etcd_server;`. Each user needs only part of
//! it, so the including `mod` item carries `#[allow(dead_code)]`.
//!
//! Set `TUG_ETCD_BIN` to use another etcd binary than the one on `PATH`.

use std::{
    env,
    fs::{self, File},
    io::{Read, Seek, SeekFrom},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// How long a member may take to start serving.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// How many times `start` retries with fresh ports when a port was taken in the meantime.
const PORT_ATTEMPTS: usize = 3;

/// One etcd member, started by the test.
#[derive(Debug)]
pub struct EtcdServer {
    /// The member name, unique within its cluster.
    name: String,
    /// The client port on 127.0.0.1.
    client_port: u16,
    /// The peer port on 127.0.0.1.
    peer_port: u16,
    /// `--initial-cluster` (all members, including this one).
    initial_cluster: String,
    /// `--initial-cluster-token`.
    cluster_token: String,
    /// Holds `data/` and `etcd.log`; removed on drop.
    dir: tempfile::TempDir,
    /// The running process, `None` after [`EtcdServer::kill9`].
    child: Option<Child>,
    /// The pid of the last started process.
    pid: u32,
}

impl EtcdServer {
    /// Starts a single-member cluster and waits until it serves.
    pub async fn start() -> anyhow::Result<Self> {
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let ports = free_ports(2)?;
            let spec = MemberSpec::new("solo", ports[0], ports[1]);
            let initial_cluster = spec.peer_entry();
            let mut server = Self::spawn(&spec, &initial_cluster, &cluster_token())?;
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e) if server.port_was_taken() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("etcd did not start")))
    }

    /// The client endpoints (`127.0.0.1:PORT`), as [`tug_storage::etcd::EtcdConfig`] takes them.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    /// This member's client endpoint, `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The member's name in its cluster.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid of the etcd process most recently started.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The data directory (kept across [`EtcdServer::restart`]).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The file etcd's output goes to (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Whether the process is running (not killed and not exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the process with SIGKILL (a crash: no shutdown, no final fsync) and reaps it.
    /// Killing a member that is not running does nothing.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on Unix.
            child
                .kill()
                .with_context(|| format!("killing etcd member {}", self.name))?;
            child
                .wait()
                .with_context(|| format!("reaping etcd member {}", self.name))?;
        }
        Ok(())
    }

    /// Starts the member again on the same data directory and ports (killing it first if it is
    /// still running) and waits until it serves. A member of a cluster needs a quorum of its
    /// peers running to serve.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9()?;
        self.launch()?;
        self.wait_ready().await
    }

    /// Starts the process without waiting for it.
    fn spawn(spec: &MemberSpec, initial_cluster: &str, token: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tug-etcd-{}-", spec.name))
            .tempdir()
            .context("creating a temporary directory for etcd")?;
        let mut server = Self {
            name: spec.name.clone(),
            client_port: spec.client_port,
            peer_port: spec.peer_port,
            initial_cluster: initial_cluster.to_string(),
            cluster_token: token.to_string(),
            dir,
            child: None,
            pid: 0,
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let binary = etcd_binary()?;
        let log_path = self.log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("opening {}", log_path.display()))?;
        let client_url = format!("http://127.0.0.1:{}", self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(&binary);
        // Settings from the environment (ETCD_*) would change what the tests run against.
        for (name, _) in env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        command
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(&self.initial_cluster)
            .arg("--initial-cluster-token")
            .arg(&self.cluster_token)
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--logger")
            .arg("zap")
            .arg("--log-outputs")
            .arg("stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.pid = child.id();
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the member answers a linearizable read, which needs an elected leader.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        let endpoint = self.endpoint();
        loop {
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "etcd member {} exited during start-up ({status}); its log ends with:\n{}",
                        self.name,
                        self.log_tail()
                    );
                }
            } else {
                bail!("etcd member {} is not running", self.name);
            }
            let last_error = match probe(&endpoint).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                bail!(
                    "etcd member {} at {endpoint} did not serve within {START_DEADLINE:?} \
                     (last error: {last_error}); its log ends with:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the last start failed because another process took one of the ports.
    fn port_was_taken(&self) -> bool {
        self.log_tail().contains("address already in use")
    }

    /// The last few KiB of the member's log.
    pub fn log_tail(&self) -> String {
        const TAIL: u64 = 4096;
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log_path()) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // The temporary directory (data and log) is removed after this, when `dir` drops.
        let _ = self.kill9();
    }
}

/// A cluster of etcd members, all on 127.0.0.1.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<EtcdServer>,
}

impl EtcdCluster {
    /// Starts a cluster of `size` members and waits until every member serves.
    pub async fn start(size: usize) -> anyhow::Result<Self> {
        if size == 0 {
            bail!("an etcd cluster needs at least one member");
        }
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let ports = free_ports(2 * size)?;
            let specs: Vec<MemberSpec> = (0..size)
                .map(|i| MemberSpec::new(&format!("m{i}"), ports[2 * i], ports[2 * i + 1]))
                .collect();
            let initial_cluster = specs
                .iter()
                .map(MemberSpec::peer_entry)
                .collect::<Vec<_>>()
                .join(",");
            let token = cluster_token();
            // Every member must run before any can elect a leader, so spawn all, then wait.
            let mut members = Vec::with_capacity(size);
            for spec in &specs {
                members.push(EtcdServer::spawn(spec, &initial_cluster, &token)?);
            }
            let mut cluster = Self { members };
            match cluster.wait_ready().await {
                Ok(()) => return Ok(cluster),
                Err(e) if cluster.members.iter().any(EtcdServer::port_was_taken) => {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("etcd cluster did not start")))
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        for member in &mut self.members {
            member.wait_ready().await?;
        }
        Ok(())
    }

    /// The client endpoints of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdServer::endpoint).collect()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no members (never, once started).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The `i`th member, to kill or restart it.
    pub fn member(&mut self, i: usize) -> &mut EtcdServer {
        &mut self.members[i]
    }

    /// Every member.
    pub fn members(&mut self) -> &mut [EtcdServer] {
        &mut self.members
    }
}

/// The name and ports of one member.
#[derive(Debug)]
struct MemberSpec {
    name: String,
    client_port: u16,
    peer_port: u16,
}

impl MemberSpec {
    fn new(name: &str, client_port: u16, peer_port: u16) -> Self {
        Self {
            name: name.to_string(),
            client_port,
            peer_port,
        }
    }

    /// This member's `--initial-cluster` entry.
    fn peer_entry(&self) -> String {
        format!("{}=http://127.0.0.1:{}", self.name, self.peer_port)
    }
}

/// Finds the etcd binary: `TUG_ETCD_BIN`, else `etcd` on `PATH`.
fn etcd_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = env::var_os("TUG_ETCD_BIN") {
        let path = PathBuf::from(path);
        if is_executable(&path) {
            return Ok(path);
        }
        bail!("TUG_ETCD_BIN={} is not an executable file", path.display());
    }
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|candidate| is_executable(candidate))
        .context("etcd not found; run scripts/deps.sh or apt-get install etcd-server")
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `n` distinct free TCP ports on 127.0.0.1. The listeners are held until all ports are chosen
/// so that they differ; etcd binds them moments later (and `start` retries if one was taken).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("finding free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// A cluster token unique to this process and moment, so members of different test clusters
/// never join each other.
fn cluster_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("tug-test-{}-{nanos}", std::process::id())
}

/// One readiness check: a linearizable read through `endpoint`.
async fn probe(endpoint: &str) -> Result<(), String> {
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(Duration::from_secs(2));
    let attempt = async {
        let mut client = etcd_client::Client::connect([endpoint], Some(options))
            .await
            .map_err(|e| e.to_string())?;
        client
            .get("tug-test-readiness-probe", None)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(result) => result,
        Err(_) => Err("no answer within 3s".to_string()),
    }
}
