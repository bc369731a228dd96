//! Starting and stopping the API server: PKI, datastore, registry, authenticators, listener,
//! kubeconfig, then the accept loop; a [`RunningServer`] handle to wait for readiness and shut
//! down.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tug_storage::Store;

use crate::{
    authn::{AnonymousPolicy, Authenticator, token_file::TokenFile},
    authz::AuthorizerChain,
    config::{self, Config, local_url},
    filters::Filters,
    handlers,
    health::{DatastoreCheck, Endpoints, Health, Ping, ShutdownCheck},
    kubeconfig::Kubeconfig,
    pki::{self, ClusterPki},
    registry::{Registry, RegistryError},
    request_info::RequestInfoResolver,
    routes::{self, ServerContext},
    serve,
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// The data directory cannot be created.
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The PKI could not be loaded or created.
    #[error(transparent)]
    Pki(#[from] pki::Error),
    /// The token file could not be loaded.
    #[error(transparent)]
    Authn(#[from] crate::authn::Error),
    /// The datastore could not be opened or does not answer.
    #[error("datastore {}", datastore_url(datastore))]
    Datastore {
        /// The datastore, as configured.
        datastore: tug_storage::Datastore,
        /// The storage error.
        #[source]
        source: tug_storage::Error,
    },
    /// The registry could not load the datastore's objects or create the bootstrap ones.
    #[error("starting the registry")]
    Registry(#[source] RegistryError),
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] serve::Error),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A kubeconfig could not be written.
    #[error(transparent)]
    Kubeconfig(#[from] crate::kubeconfig::Error),
    /// Health checks were wired wrongly.
    #[error(transparent)]
    Health(#[from] crate::health::Error),
    /// A start-up task panicked or was cancelled.
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// The datastore as it is written on the command line.
fn datastore_url(datastore: &tug_storage::Datastore) -> String {
    match datastore {
        tug_storage::Datastore::Sqlite(path) => format!("sqlite://{}", path.display()),
        tug_storage::Datastore::Etcd(endpoints) => format!("etcd://{}", endpoints.join(",")),
    }
}

/// The API server.
#[derive(Debug)]
pub struct ApiServer;

impl ApiServer {
    /// Starts a server: prepares the PKI and authenticators, opens the configured datastore,
    /// then serves as [`ApiServer::start_with_store`] does.
    pub async fn start(config: Config) -> Result<RunningServer, Error> {
        let started = Instant::now();
        let prepared = prepare(&config).await?;
        let store = tug_storage::open(&config.datastore)
            .await
            .map_err(|source| Error::Datastore {
                datastore: config.datastore.clone(),
                source,
            })?;
        serve_prepared(config, prepared, store, started).await
    }

    /// Starts a server on an already opened datastore (in-process tests, or a datastore shared
    /// with nothing else). Returns once the server accepts connections; [`RunningServer::ready`]
    /// then waits for the remaining start-up steps.
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<RunningServer, Error> {
        let started = Instant::now();
        let prepared = prepare(&config).await?;
        serve_prepared(config, prepared, store, started).await
    }
}

/// What start-up builds before it touches the datastore or the network.
struct Prepared {
    pki: ClusterPki,
    authenticator: Authenticator,
}

/// Validates the configuration, creates the data directory, loads or creates the PKI and
/// loads the token file: every cheap failure comes before the datastore is opened.
async fn prepare(config: &Config) -> Result<Prepared, Error> {
    config.validate()?;
    // A new data directory is private: it will hold keys and the datastore (Secrets). An
    // existing one keeps the permissions its owner gave it.
    let data_dir = &config.data_dir;
    if !data_dir.exists() {
        crate::fsutil::create_private_dir(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.clone(),
            source,
        })?;
    }

    let mut authenticator = Authenticator::new(AnonymousPolicy::default());
    if let Some(path) = &config.token_auth_file {
        let tokens = TokenFile::load(path)?;
        tracing::info!(file = %path.display(), tokens = tokens.len(), "loaded static tokens");
        authenticator = authenticator.with_token_authenticator(Arc::new(tokens));
    }

    // Key generation and file IO: off the async workers.
    let tls_dir = config.tls_dir();
    let sans = pki::serving_sans(
        pki::hostname().as_deref(),
        config.bind_address,
        &config.tls_sans,
    );
    let pki = tokio::task::spawn_blocking(move || ClusterPki::load_or_create(&tls_dir, &sans))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    if pki.ca_created {
        tracing::info!(dir = %pki.dir.display(), fingerprint = %pki.ca.fingerprint(), "created the cluster CA");
    } else {
        tracing::debug!(fingerprint = %pki.ca.fingerprint(), "loaded the cluster CA");
    }
    for (file, why) in &pki.reissued {
        tracing::info!(file = %pki.dir.join(file).display(), reason = %why, "issued certificate");
    }
    Ok(Prepared { pki, authenticator })
}

/// Checks the datastore, binds the listener, writes the kubeconfigs and starts serving.
async fn serve_prepared(
    config: Config,
    prepared: Prepared,
    store: Arc<dyn Store>,
    started: Instant,
) -> Result<RunningServer, Error> {
    let Prepared { pki, authenticator } = prepared;
    // Fail fast on a datastore that cannot answer, rather than report unready forever.
    store.status().await.map_err(|source| Error::Datastore {
        datastore: config.datastore.clone(),
        source,
    })?;
    // Every resource's watch cache holds the datastore's state before anything is served, so
    // the first list is already consistent (upstream's readiness waits on cache sync too).
    let registry = Arc::new(
        Registry::start(store.clone())
            .await
            .map_err(Error::Registry)?,
    );

    let tls = serve::tls_config(&pki)?;
    let addr = config.listen_addr();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;

    let url = local_url(local_addr);
    let kubeconfig = Kubeconfig {
        server: url.clone(),
        ca_pem: pki.ca.cert_pem().to_string(),
        client_cert_pem: pki.admin.cert_pem.clone(),
        client_key_pem: pki.admin.key_pem.clone(),
    };
    let admin_kubeconfig = config.admin_kubeconfig();
    kubeconfig.write(&admin_kubeconfig)?;
    if let Some(extra) = &config.write_kubeconfig
        && !config::is_admin_kubeconfig(&config, extra)
    {
        kubeconfig.write(extra)?;
    }

    let shutdown = CancellationToken::new();
    let mut health = Health::new();
    health.add(Arc::new(Ping), Endpoints::ALL)?;
    health.add(Arc::new(DatastoreCheck::new(store.clone())), Endpoints::ALL)?;
    health.add(
        Arc::new(ShutdownCheck::new(shutdown.clone())),
        Endpoints::READYZ,
    )?;

    let context = ServerContext {
        store: store.clone(),
        registry: registry.clone(),
        config: Arc::new(config.clone()),
    };
    let server_address = url.trim_start_matches("https://").to_string();
    let api = handlers::Api::new(registry, &server_address);
    let filters = Filters {
        resolver: RequestInfoResolver::default(),
        authenticator,
        authorizer: Arc::new(AuthorizerChain::default_chain()),
    };
    let router = routes::router(health.clone(), filters, api);
    let task = tokio::spawn(serve::serve(
        listener,
        tls,
        router,
        shutdown.clone(),
        config.shutdown_grace,
    ));

    let startup = started.elapsed();
    tracing::info!(
        %url,
        kubeconfig = %admin_kubeconfig.display(),
        startup_ms = startup.as_millis() as u64,
        "API server listening"
    );
    Ok(RunningServer {
        local_addr,
        url,
        kubeconfig: admin_kubeconfig,
        ca_fingerprint: pki.ca.fingerprint(),
        startup,
        shutdown,
        health,
        task: Some(task),
        context,
    })
}

/// A started API server. Dropping the handle stops the server (without waiting for it).
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    url: String,
    kubeconfig: PathBuf,
    ca_fingerprint: String,
    startup: Duration,
    shutdown: CancellationToken,
    health: Health,
    /// Taken by [`RunningServer::wait`].
    task: Option<JoinHandle<()>>,
    context: ServerContext,
}

impl RunningServer {
    /// The address the server listens on (with the real port if `0` was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL local clients use, e.g. `https://127.0.0.1:6443`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `sha256:<hex>` of the cluster CA certificate.
    pub fn ca_fingerprint(&self) -> &str {
        &self.ca_fingerprint
    }

    /// How long start-up took until the server accepted connections.
    pub fn startup_duration(&self) -> Duration {
        self.startup
    }

    /// The handler context (datastore, configuration).
    pub fn context(&self) -> &ServerContext {
        &self.context
    }

    /// Waits until every start-up step is done, i.e. until `/readyz` reports ready (barring a
    /// datastore failure).
    pub async fn ready(&self) {
        self.health.wait_for_gates().await;
    }

    /// A token that stops the server when cancelled (for signal handlers).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server has stopped (after its shutdown token was cancelled and
    /// connections were drained).
    pub async fn wait(mut self) -> Result<(), Error> {
        match self.task.take() {
            Some(task) => task.await.map_err(|e| Error::Task(e.to_string())),
            None => Ok(()),
        }
    }

    /// Stops accepting, drains connections for the grace period, and waits for the end.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.wait().await
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
