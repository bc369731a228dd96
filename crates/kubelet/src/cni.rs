//! The node's CNI configuration: a bridge (one name per node) with host-local IPAM on the node's
//! pod CIDR, chained with portmap for `hostPort`s. containerd's CRI plugin reads it from its
//! CNI configuration directory and adds the loopback interface itself.

use std::path::{Path, PathBuf};

/// The CNI network name (also the file name's stem).
pub const NETWORK_NAME: &str = "tug-pods";
/// The default pod CIDR until node IPAM assigns one.
pub const DEFAULT_POD_CIDR: &str = "10.42.0.0/24";

/// Failures writing the CNI configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The bridge name of a node: `tug` + 8 hex digits of a hash of the node name, so that several
/// agents on one host (tests) get their own bridges, within Linux's 15-character limit.
pub fn bridge_name(node: &str) -> String {
    // FNV-1a: stable across builds and platforms (std's hasher is not).
    let mut hash: u32 = 0x811c_9dc5;
    for byte in node.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("tug{hash:08x}")
}

/// The configuration list for `node`'s pods on `pod_cidr`; IPAM state goes to `ipam_dir`.
pub fn conflist(node: &str, pod_cidr: &str, ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge_name(node),
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": pod_cidr }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": ipam_dir,
                }
            },
            { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }
        ]
    })
}

/// Writes the configuration into `conf_dir` (atomically: containerd watches the directory).
pub fn write(conf_dir: &Path, node: &str, pod_cidr: &str, ipam_dir: &Path) -> Result<(), Error> {
    let path = conf_dir.join(format!("10-{NETWORK_NAME}.conflist"));
    let tmp = conf_dir.join(format!(".10-{NETWORK_NAME}.conflist.tmp"));
    let text =
        serde_json::to_string_pretty(&conflist(node, pod_cidr, ipam_dir)).unwrap_or_default();
    let result = std::fs::create_dir_all(conf_dir)
        .and_then(|()| std::fs::create_dir_all(ipam_dir))
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, &path));
    result.map_err(|source| Error::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_are_short_stable_and_differ_per_node() {
        let a = bridge_name("node-a");
        assert!(a.len() <= 15, "{a}");
        assert_eq!(a, bridge_name("node-a"));
        assert_ne!(a, bridge_name("node-b"));
    }

    #[test]
    fn the_conflist_chains_bridge_and_portmap_on_the_pod_cidr() {
        let list = conflist("n", "10.42.3.0/24", Path::new("/d/ipam"));
        assert_eq!(list["plugins"][0]["type"], "bridge");
        assert_eq!(
            list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
        assert_eq!(list["plugins"][0]["ipam"]["dataDir"], "/d/ipam");
        assert_eq!(list["plugins"][1]["type"], "portmap");
    }
}
