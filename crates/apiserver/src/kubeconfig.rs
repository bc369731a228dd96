//! Kubeconfig files for clients of this cluster (the admin kubeconfig today), written as YAML
//! with embedded certificate data, mode 0600, atomically.
//!
//! The shape follows k3s: cluster, user and context are all named `default`.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Serialize;

use crate::fsutil;

/// The name of the cluster, user and context in generated kubeconfigs.
pub const DEFAULT_NAME: &str = "default";

/// What can go wrong when writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML could not be produced.
    #[error("cannot encode kubeconfig")]
    Encode(#[source] serde_norway::Error),
    /// The file or its directory could not be written.
    #[error("cannot write kubeconfig {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// A kubeconfig that authenticates with a client certificate.
#[derive(Clone)]
pub struct Kubeconfig {
    /// The server URL, e.g. `https://127.0.0.1:6443`.
    pub server: String,
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// The client certificate, PEM.
    pub client_cert_pem: String,
    /// The client key, PEM. Secret: never log it.
    pub client_key_pem: String,
}

impl std::fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubeconfig")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Kubeconfig {
    /// The YAML text of the kubeconfig.
    pub fn to_yaml(&self) -> Result<String, Error> {
        let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        let doc = File {
            api_version: "v1",
            clusters: vec![Named {
                name: DEFAULT_NAME,
                cluster: Some(Cluster {
                    certificate_authority_data: b64(&self.ca_pem),
                    server: &self.server,
                }),
                context: None,
                user: None,
            }],
            contexts: vec![Named {
                name: DEFAULT_NAME,
                cluster: None,
                context: Some(Context {
                    cluster: DEFAULT_NAME,
                    user: DEFAULT_NAME,
                }),
                user: None,
            }],
            current_context: DEFAULT_NAME,
            kind: "Config",
            preferences: Preferences {},
            users: vec![Named {
                name: DEFAULT_NAME,
                cluster: None,
                context: None,
                user: Some(User {
                    client_certificate_data: b64(&self.client_cert_pem),
                    client_key_data: b64(&self.client_key_pem),
                }),
            }],
        };
        serde_norway::to_string(&doc).map_err(Error::Encode)
    }

    /// Writes the kubeconfig to `path` (mode 0600, atomically), creating its directory.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let write_err = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let yaml = self.to_yaml()?;
        fsutil::write_atomic(path, yaml.as_bytes(), fsutil::SECRET_MODE).map_err(write_err)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct File<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    clusters: Vec<Named<'a>>,
    contexts: Vec<Named<'a>>,
    current_context: &'a str,
    kind: &'a str,
    preferences: Preferences,
    users: Vec<Named<'a>>,
}

/// One entry of `clusters`, `contexts` or `users`; exactly one payload is set.
#[derive(Serialize)]
struct Named<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<Cluster<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Context<'a>>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster<'a> {
    certificate_authority_data: String,
    server: &'a str,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate_data: String,
    client_key_data: String,
}

#[derive(Serialize)]
struct Preferences {}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn sample() -> Kubeconfig {
        Kubeconfig {
            server: "https://127.0.0.1:6443".into(),
            ca_pem: "CA".into(),
            client_cert_pem: "CERT".into(),
            client_key_pem: "KEY".into(),
        }
    }

    #[test]
    fn the_admin_kubeconfig_has_the_k3s_shape() {
        let yaml = sample().to_yaml().expect("yaml");
        let expected = "\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";
        assert_eq!(yaml, expected);
    }

    #[test]
    fn kubeconfigs_are_written_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/admin.kubeconfig");
        sample().write(&path).expect("write");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
