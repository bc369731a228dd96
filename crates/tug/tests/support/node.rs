//! Support of the tests that run real nodes: the root check, the loopback image registry of
//! `scripts/images.sh`, and a guard that tears down everything an agent made on this machine.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, ensure};

/// Fails unless the test runs as root (containerd, network namespaces, iptables need it).
pub fn ensure_root() -> anyhow::Result<()> {
    let root = fs::read_to_string("/proc/self/status")?
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    ensure!(
        root,
        "this test runs real nodes and needs root (containerd, netns, iptables); run scripts/deps.sh"
    );
    // containerd's CNI watcher and friends need more inotify instances than some defaults.
    let _ = Command::new("sysctl")
        .args(["-qw", "fs.inotify.max_user_instances=1024"])
        .status();
    Ok(())
}

fn workspace_root() -> PathBuf {
    // Run time first: clones sharing one target directory may reuse a test binary built in
    // another clone, whose compile-time path is gone.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
}

/// The loopback registry scripts/images.sh started, stopped when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    pid: Option<i32>,
}

impl Registry {
    /// Builds the test images under `dir` and serves them.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let out = Command::new("bash")
            .arg(workspace_root().join("scripts/images.sh"))
            .arg(dir)
            .stderr(Stdio::piped())
            .output()
            .context("run scripts/images.sh")?;
        let pid = fs::read_to_string(dir.join("registry/pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        let registry = Self {
            addr: super::text(&out.stdout).trim().to_owned(),
            pid,
        };
        ensure!(
            out.status.success(),
            "scripts/images.sh failed: {}",
            super::text(&out.stderr)
        );
        Ok(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// Tears down (on drop) what the agent with `data_dir` made for `node`: sandboxes with their
/// network namespaces and iptables rules, containerd, mounts, the CNI bridge.
pub struct Teardown {
    /// The agent's data directory.
    pub data_dir: PathBuf,
    /// The node name.
    pub node: String,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let data_dir = self.data_dir.clone();
        let node = self.node.clone();
        // Drop may run inside the test's runtime: tear down on a thread of its own.
        let problems = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(tug_kubelet::teardown::teardown(&data_dir, &node)))
                .unwrap_or_else(|e| vec![e.to_string()])
        })
        .join()
        .unwrap_or_default();
        for p in problems {
            eprintln!("teardown: {p}");
        }
    }
}
