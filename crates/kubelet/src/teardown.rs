//! Removes everything an agent created on this machine (k3s' `killall` for one data
//! directory): every pod sandbox through CRI (which runs CNI DEL: veths, IPs, netns, iptables
//! rules), the agent's containerd, mounts under the data directory and the node's CNI bridge.
//! Tests call it from their drop guards; operators can call it to decommission a node.

use std::{path::Path, process::Command, time::Duration};

use crate::{cni, containerd::Layout, cri::Cri};

/// Tears down the agent state under `data_dir` for `node`. Best effort: every step runs even
/// when an earlier one failed; the failures are returned as messages.
pub async fn teardown(data_dir: &Path, node: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let layout = Layout::new(data_dir);
    if layout.socket().exists() {
        match tokio::time::timeout(Duration::from_secs(5), Cri::connect(layout.socket())).await {
            Ok(Ok(cri)) => match cri.list_pod_sandboxes(Default::default()).await {
                Ok(sandboxes) => {
                    for s in sandboxes {
                        for c in cri
                            .list_containers(std::collections::HashMap::from([(
                                crate::pod::spec::LABEL_POD_UID.to_owned(),
                                s.labels
                                    .get(crate::pod::spec::LABEL_POD_UID)
                                    .cloned()
                                    .unwrap_or_default(),
                            )]))
                            .await
                            .unwrap_or_default()
                        {
                            let _ = cri.stop_container(&c.id, 0).await;
                        }
                        if let Err(e) = cri.stop_pod_sandbox(&s.id).await {
                            problems.push(format!("stop sandbox {}: {e}", s.id));
                        }
                        if let Err(e) = cri.remove_pod_sandbox(&s.id).await {
                            problems.push(format!("remove sandbox {}: {e}", s.id));
                        }
                        if let Some(uid) = s.labels.get(crate::pod::spec::LABEL_POD_UID) {
                            crate::pod::worker::remove_pod_cgroups(uid);
                        }
                    }
                }
                Err(e) => problems.push(format!("list sandboxes: {e}")),
            },
            Ok(Err(e)) => problems.push(e.to_string()),
            Err(_) => problems.push("connecting to containerd timed out".into()),
        }
    }
    // containerd itself (pid recorded by the supervisor).
    if let Some(pid) = std::fs::read_to_string(layout.dir.join("containerd.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 1)
    {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let config = layout.config_file();
        if cmdline
            .split(|b| *b == 0)
            .any(|a| a == config.as_os_str().as_encoded_bytes())
        {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
    // Mounts under the data directory, deepest first.
    let prefix = data_dir.to_string_lossy().into_owned();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mount_path))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    mounts.dedup();
    for m in mounts {
        let ok = Command::new("umount")
            .args(["-l", &m])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            problems.push(format!("umount {m} failed"));
        }
    }
    // The node's bridge.
    let bridge = cni::bridge_name(node);
    if Path::new("/sys/class/net").join(&bridge).exists() {
        let ok = Command::new("ip")
            .args(["link", "delete", &bridge])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            problems.push(format!("ip link delete {bridge} failed"));
        }
    }
    problems
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}
