//! The API server's configuration: everything `tug server` (or a test) decides before start.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use tug_storage::Datastore;

use crate::pki::San;

/// The default HTTPS port.
pub const DEFAULT_PORT: u16 = 6443;
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/tug";
/// The admin kubeconfig's file name inside the data directory.
pub const ADMIN_KUBECONFIG_FILE: &str = "admin.kubeconfig";
/// The TLS directory's name inside the data directory.
pub const TLS_DIR: &str = "tls";
/// The embedded datastore's file name inside the data directory.
pub const STATE_DB_FILE: &str = "state.db";

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory is empty.
    #[error("the data directory must not be empty")]
    EmptyDataDir,
    /// The data directory is relative; a server resolves it once, at start.
    #[error("the data directory {} must be an absolute path", .0.display())]
    RelativeDataDir(PathBuf),
}

/// The API server's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The address to listen on; `0.0.0.0` (all IPv4 addresses) by default.
    pub bind_address: IpAddr,
    /// The HTTPS port; `0` picks a free one (see `RunningServer::local_addr`).
    pub port: u16,
    /// Where the server keeps its state: `tls/`, `admin.kubeconfig`, the embedded datastore.
    pub data_dir: PathBuf,
    /// The datastore; by default `sqlite://<data-dir>/state.db`.
    pub datastore: Datastore,
    /// Extra subject alternative names for the serving certificate.
    pub tls_sans: Vec<San>,
    /// A CSV file of static bearer tokens (`token,user,uid,"group1,group2"`).
    pub token_auth_file: Option<PathBuf>,
    /// Another place to write the admin kubeconfig to.
    pub write_kubeconfig: Option<PathBuf>,
    /// How long shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace: Duration,
}

impl Config {
    /// The defaults for `data_dir`: all addresses, port 6443, the embedded datastore in the
    /// data directory, no extra names, no token file.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: DEFAULT_PORT,
            datastore: Datastore::Sqlite(data_dir.join(STATE_DB_FILE)),
            data_dir,
            tls_sans: Vec::new(),
            token_auth_file: None,
            write_kubeconfig: None,
            shutdown_grace: Duration::from_secs(5),
        }
    }

    /// Checks what the types cannot express.
    pub fn validate(&self) -> Result<(), Error> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::EmptyDataDir);
        }
        if self.data_dir.is_relative() {
            return Err(Error::RelativeDataDir(self.data_dir.clone()));
        }
        Ok(())
    }

    /// `<data-dir>/tls`.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join(TLS_DIR)
    }

    /// `<data-dir>/admin.kubeconfig`.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.data_dir.join(ADMIN_KUBECONFIG_FILE)
    }

    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.port)
    }
}

/// The URL local clients use to reach a server listening on `addr`: loopback when it listens
/// on all addresses, else the address itself.
pub fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, addr.port()))
}

/// Whether `path` names the same file as the admin kubeconfig of `config` (no need to write
/// it twice).
pub(crate) fn is_admin_kubeconfig(config: &Config, path: &Path) -> bool {
    path == config.admin_kubeconfig()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_put_everything_under_the_data_dir() {
        let config = Config::new("/var/lib/tug");
        assert_eq!(config.listen_addr().to_string(), "0.0.0.0:6443");
        assert_eq!(
            config.datastore,
            Datastore::Sqlite("/var/lib/tug/state.db".into())
        );
        assert_eq!(config.tls_dir(), Path::new("/var/lib/tug/tls"));
        assert_eq!(
            config.admin_kubeconfig(),
            Path::new("/var/lib/tug/admin.kubeconfig")
        );
        assert!(config.validate().is_ok());
    }

    #[test]
    fn relative_or_empty_data_dirs_are_rejected() {
        assert!(Config::new("").validate().is_err());
        assert!(Config::new("data").validate().is_err());
    }

    #[test]
    fn local_urls_use_loopback_for_wildcard_binds() {
        let url = |s: &str| local_url(s.parse().expect("addr"));
        assert_eq!(url("0.0.0.0:6443"), "https://127.0.0.1:6443");
        assert_eq!(url("[::]:6443"), "https://127.0.0.1:6443");
        assert_eq!(url("127.0.0.1:1234"), "https://127.0.0.1:1234");
        assert_eq!(url("192.0.2.1:6443"), "https://192.0.2.1:6443");
        assert_eq!(url("[::1]:6443"), "https://[::1]:6443");
    }
}
