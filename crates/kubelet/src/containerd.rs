//! The agent's own containerd: writes its configuration (own root, state, socket, CNI and
//! registry directories under the agent's data directory), starts it, waits for its socket and
//! restarts it when it dies. Used unless `--container-runtime-endpoint` names an existing runtime.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The image the CRI plugin runs as each pod's sandbox (infra) container.
pub const SANDBOX_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Where Debian's containernetworking-plugins installs the CNI reference plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// Failures of the containerd supervisor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the containerd layout could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The containerd binary could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// containerd did not create its socket in time.
    #[error("containerd did not listen on {socket} within {timeout:?} (log: {log})")]
    NotReady {
        /// The socket path.
        socket: PathBuf,
        /// How long we waited.
        timeout: Duration,
        /// containerd's log file.
        log: PathBuf,
    },
    /// containerd exited before it was ready.
    #[error("containerd exited with {status} before it was ready (log: {log})")]
    Exited {
        /// The exit status.
        status: std::process::ExitStatus,
        /// containerd's log file.
        log: PathBuf,
    },
}

/// The file layout of the agent's containerd, all under `<data-dir>/containerd`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<data-dir>/containerd`.
    pub dir: PathBuf,
    /// The CNI configuration directory the CRI plugin reads (`<data-dir>/cni/net.d`).
    pub cni_conf_dir: PathBuf,
    /// Registry hosts directory (`certs.d/<registry>/hosts.toml`), containerd's `config_path`.
    pub certs_dir: PathBuf,
}

impl Layout {
    /// The layout under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("containerd");
        Self {
            certs_dir: dir.join("certs.d"),
            cni_conf_dir: data_dir.join("cni").join("net.d"),
            dir,
        }
    }

    /// containerd's gRPC socket (the CRI endpoint).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The configuration file we write.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// containerd's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// The configuration file's text (containerd 1.6, config version 2).
    pub fn config_toml(&self) -> String {
        let q = |p: &Path| toml_string(&p.to_string_lossy());
        format!(
            r#"# Written by tug agent at every start; edits are overwritten.
version = 2
root = {root}
state = {state}
oom_score = 0

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox}
  # This process may lack CAP_SYS_RESOURCE: never ask for a lower OOM score than our own.
  restrict_oom_score_adj = true
  # A port of its own per containerd (the default 10010 collides between agents).
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {cni_bin}
    conf_dir = {cni_conf}
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = {certs}
"#,
            root = q(&self.dir.join("root")),
            state = q(&self.dir.join("state")),
            socket = q(&self.socket()),
            ttrpc = q(&self.dir.join("containerd.sock.ttrpc")),
            sandbox = toml_string(SANDBOX_IMAGE),
            cni_bin = toml_string(CNI_BIN_DIR),
            cni_conf = q(&self.cni_conf_dir),
            certs = q(&self.certs_dir),
        )
    }

    /// Writes the configuration and the directories it names; with `mirror`
    /// (`HOST:PORT` of a plain-HTTP registry), points `docker.io` and `registry.k8s.io` at it.
    pub fn write(&self, mirror: Option<&str>) -> Result<(), Error> {
        for dir in [&self.dir, &self.cni_conf_dir, &self.certs_dir] {
            create_dir(dir)?;
        }
        write_file(&self.config_file(), &self.config_toml())?;
        for registry in ["docker.io", "registry.k8s.io"] {
            let dir = self.certs_dir.join(registry);
            let file = dir.join("hosts.toml");
            match mirror {
                Some(mirror) => {
                    create_dir(&dir)?;
                    write_file(&file, &hosts_toml(mirror))?;
                }
                None => {
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
        Ok(())
    }
}

/// A `hosts.toml` that sends pulls and resolves to the plain-HTTP registry at `mirror`.
pub fn hosts_toml(mirror: &str) -> String {
    let url = format!("http://{mirror}");
    format!(
        "server = {server}\n\n[host.{server}]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n",
        server = toml_string(&url)
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn create_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// How long containerd may take to create its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A supervised containerd: started by [`Supervisor::start`], restarted when it dies, stopped
/// (SIGTERM) when the token is cancelled. Its containers keep running across restarts (the
/// runc shims outlive containerd).
#[derive(Debug)]
pub struct Supervisor {
    layout: Layout,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Writes the configuration, starts containerd and waits until its socket accepts
    /// connections; then keeps it running in a background task until `stop` is cancelled.
    pub async fn start(
        layout: Layout,
        mirror: Option<&str>,
        stop: CancellationToken,
    ) -> Result<Self, Error> {
        layout.write(mirror)?;
        let child = spawn(&layout).await?;
        let watched = layout.clone();
        let task = tokio::spawn(async move { supervise(watched, child, stop).await });
        Ok(Self { layout, task })
    }

    /// Waits until containerd has stopped (after the token was cancelled).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }

    /// The CRI endpoint (containerd's socket).
    pub fn socket(&self) -> PathBuf {
        self.layout.socket()
    }
}

/// Stops a containerd a previous agent process left running (it was killed with SIGKILL): it
/// holds the metadata database's lock, so a new one would wait forever. Its containers keep
/// running. Only a process whose command line names our config file is signalled.
async fn stop_stale(layout: &Layout) {
    let pid_file = layout.dir.join("containerd.pid");
    let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 1)
    else {
        return;
    };
    let ours = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let config = layout.config_file();
            args.first().is_some_and(|a| a.ends_with(b"containerd"))
                && args
                    .iter()
                    .any(|a| *a == config.as_os_str().as_encoded_bytes())
        })
    };
    if !ours(pid) {
        return;
    }
    tracing::warn!(pid, "stopping the containerd a previous agent left running");
    for (signal, wait) in [(libc::SIGTERM, 100), (libc::SIGKILL, 50)] {
        // SAFETY: kill(2) on a pid whose command line we just checked is our containerd.
        #[allow(unsafe_code, reason = "kill(2) has no safe wrapper in std or tokio")]
        unsafe {
            libc::kill(pid, signal);
        }
        for _ in 0..wait {
            if !ours(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn spawn(layout: &Layout) -> Result<Child, Error> {
    stop_stale(layout).await;
    let socket = layout.socket();
    let _ = std::fs::remove_file(&socket);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.log_file())
        .map_err(|source| Error::Write {
            path: layout.log_file(),
            source,
        })?;
    let log_err = log.try_clone().map_err(|source| Error::Write {
        path: layout.log_file(),
        source,
    })?;
    let mut child = Command::new("containerd")
        .arg("--config")
        .arg(layout.config_file())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(false)
        .spawn()
        .map_err(|source| Error::Spawn {
            binary: "containerd".into(),
            source,
        })?;
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Exited {
                status,
                log: layout.log_file(),
            });
        }
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            if let Some(pid) = child.id() {
                let pid_file = layout.dir.join("containerd.pid");
                if let Err(e) = std::fs::write(&pid_file, pid.to_string()) {
                    tracing::warn!(path = %pid_file.display(), error = %e, "cannot record containerd's pid");
                }
            }
            tracing::info!(socket = %socket.display(), pid = child.id(), "containerd is up");
            return Ok(child);
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.start_kill();
            return Err(Error::NotReady {
                socket,
                timeout: READY_TIMEOUT,
                log: layout.log_file(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn supervise(layout: Layout, mut child: Child, stop: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    loop {
        tokio::select! {
            status = child.wait() => {
                tracing::warn!(?status, log = %layout.log_file().display(), "containerd exited; restarting it");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return,
                }
                match spawn(&layout).await {
                    Ok(next) => { child = next; backoff = Duration::from_secs(1); }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot restart containerd");
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            () = stop.cancelled() => {
                terminate(&mut child).await;
                return;
            }
        }
    }
}

/// SIGTERM, then SIGKILL after 10 s.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id()
        && let Ok(pid) = i32::try_from(pid)
    {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        #[allow(unsafe_code, reason = "kill(2) has no safe wrapper in std or tokio")]
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_restricts_oom_scores_and_keeps_everything_under_the_data_dir() {
        let layout = Layout::new(Path::new("/var/lib/tug-agent"));
        let toml = layout.config_toml();
        assert!(toml.contains("restrict_oom_score_adj = true"));
        assert!(toml.contains("root = \"/var/lib/tug-agent/containerd/root\""));
        assert!(toml.contains("address = \"/var/lib/tug-agent/containerd/containerd.sock\""));
        assert!(toml.contains("conf_dir = \"/var/lib/tug-agent/cni/net.d\""));
        assert!(toml.contains("config_path = \"/var/lib/tug-agent/containerd/certs.d\""));
        assert!(toml.contains("sandbox_image = \"registry.k8s.io/pause:3.10\""));
    }

    #[test]
    fn mirrors_are_plain_http_hosts_for_pull_and_resolve() {
        assert_eq!(
            hosts_toml("127.0.0.1:5000"),
            "server = \"http://127.0.0.1:5000\"\n\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"
        );
    }

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
