//! The health endpoints `/healthz`, `/livez` and `/readyz`, answered like upstream's: `ok`,
//! or with `?verbose` one `[+]name ok` line per check and `<endpoint> check passed`; a failure
//! is a 500 listing every check (`[-]name failed: reason withheld`; the reason goes to the log
//! only). `?exclude=name` skips a check, `/<endpoint>/<name>` runs one.
//!
//! Checks are registered per endpoint when the server is wired; [`ReadinessGate`]s let later
//! start-up work (watch caches, bootstrap objects) hold `/readyz` back until it is done.

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{
    Router,
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::Response,
    routing::any,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tug_storage::Store;

/// How long the datastore check waits for an answer.
const DATASTORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The errors of this module (failed checks are reported as text, not as errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A check name is registered twice for the same endpoint.
    #[error("health check {0:?} registered twice")]
    Duplicate(String),
}

/// One named health check.
#[async_trait]
pub trait HealthCheck: Send + Sync + fmt::Debug {
    /// The name shown in verbose output and used in `/<endpoint>/<name>` and `?exclude=`.
    fn name(&self) -> &str;
    /// `Err(reason)` if unhealthy; the reason is logged, never sent to clients.
    async fn check(&self) -> Result<(), String>;
}

/// Always healthy: proves the server answers.
#[derive(Clone, Copy, Debug)]
pub struct Ping;

#[async_trait]
impl HealthCheck for Ping {
    fn name(&self) -> &str {
        "ping"
    }

    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Healthy while the datastore answers a status request (named `etcd`, as upstream's check
/// is, whatever the backend).
#[derive(Clone, Debug)]
pub struct DatastoreCheck {
    store: Arc<dyn Store>,
}

impl DatastoreCheck {
    /// Checks `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl HealthCheck for DatastoreCheck {
    fn name(&self) -> &str {
        "etcd"
    }

    async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(DATASTORE_TIMEOUT, self.store.status()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("datastore: {e}")),
            Err(_) => Err(format!(
                "datastore did not answer within {DATASTORE_TIMEOUT:?}"
            )),
        }
    }
}

/// Unhealthy once shutdown has begun, so that load balancers stop sending requests while
/// in-flight ones finish (readyz only).
#[derive(Clone, Debug)]
pub struct ShutdownCheck {
    token: CancellationToken,
}

impl ShutdownCheck {
    /// Fails once `token` is cancelled.
    pub fn new(token: CancellationToken) -> Self {
        Self { token }
    }
}

#[async_trait]
impl HealthCheck for ShutdownCheck {
    fn name(&self) -> &str {
        "shutdown"
    }

    async fn check(&self) -> Result<(), String> {
        if self.token.is_cancelled() {
            Err("process is shutting down".into())
        } else {
            Ok(())
        }
    }
}

/// A start-up step that `/readyz` (and `/healthz`) wait for, shown as
/// `poststarthook/<name>`. Clone it to hand the opening side to the task doing the work.
#[derive(Clone, Debug)]
pub struct ReadinessGate {
    name: String,
    open: Arc<watch::Sender<bool>>,
}

impl ReadinessGate {
    /// A closed gate.
    pub fn new(name: &str) -> Self {
        Self {
            name: format!("poststarthook/{name}"),
            open: Arc::new(watch::channel(false).0),
        }
    }

    /// Opens the gate: the step is done.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        let mut rx = self.open.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|open| *open).await;
    }
}

#[async_trait]
impl HealthCheck for ReadinessGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<(), String> {
        if *self.open.borrow() {
            Ok(())
        } else {
            Err("not finished".into())
        }
    }
}

/// Which endpoints a check belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// `/healthz` (the deprecated combined endpoint).
    pub healthz: bool,
    /// `/livez`: failing means "restart me".
    pub livez: bool,
    /// `/readyz`: failing means "do not send me traffic".
    pub readyz: bool,
}

impl Endpoints {
    /// All three endpoints.
    pub const ALL: Self = Self {
        healthz: true,
        livez: true,
        readyz: true,
    };
    /// `/readyz` only.
    pub const READYZ: Self = Self {
        healthz: false,
        livez: false,
        readyz: true,
    };
    /// `/healthz` and `/readyz`: start-up steps that do not make the process dead.
    pub const STARTUP: Self = Self {
        healthz: true,
        livez: false,
        readyz: true,
    };
}

/// The checks of each endpoint, and the gates readiness waits for.
#[derive(Clone, Debug, Default)]
pub struct Health {
    healthz: Vec<Arc<dyn HealthCheck>>,
    livez: Vec<Arc<dyn HealthCheck>>,
    readyz: Vec<Arc<dyn HealthCheck>>,
    gates: Vec<ReadinessGate>,
}

impl Health {
    /// No checks at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `check` for `endpoints`.
    pub fn add(&mut self, check: Arc<dyn HealthCheck>, endpoints: Endpoints) -> Result<(), Error> {
        for (wanted, list) in [
            (endpoints.healthz, &mut self.healthz),
            (endpoints.livez, &mut self.livez),
            (endpoints.readyz, &mut self.readyz),
        ] {
            if !wanted {
                continue;
            }
            if list.iter().any(|c| c.name() == check.name()) {
                return Err(Error::Duplicate(check.name().to_string()));
            }
            list.push(check.clone());
        }
        Ok(())
    }

    /// Registers a closed [`ReadinessGate`] named `poststarthook/<name>` on `/healthz` and
    /// `/readyz` and returns it; open it when the step is done.
    pub fn gate(&mut self, name: &str) -> Result<ReadinessGate, Error> {
        let gate = ReadinessGate::new(name);
        self.add(Arc::new(gate.clone()), Endpoints::STARTUP)?;
        self.gates.push(gate.clone());
        Ok(gate)
    }

    /// Waits until every gate is open.
    pub async fn wait_for_gates(&self) {
        for gate in &self.gates {
            gate.wait().await;
        }
    }

    /// The routes of the three endpoints. Authentication and authorization wrap them like
    /// every other route.
    pub fn router(self) -> Router {
        let health = Arc::new(self);
        let mut router = Router::new();
        for endpoint in [Endpoint::Healthz, Endpoint::Livez, Endpoint::Readyz] {
            let root = format!("/{}", endpoint.name());
            router = router
                .route(
                    &root,
                    any(
                        move |State(h): State<Arc<Health>>, RawQuery(q): RawQuery| async move {
                            h.root(endpoint, q.as_deref()).await
                        },
                    ),
                )
                .route(
                    &format!("{root}/{{*check}}"),
                    any(
                        move |State(h): State<Arc<Health>>, Path(name): Path<String>| async move {
                            h.single(endpoint, &name).await
                        },
                    ),
                );
        }
        router.with_state(health)
    }

    fn checks(&self, endpoint: Endpoint) -> &[Arc<dyn HealthCheck>] {
        match endpoint {
            Endpoint::Healthz => &self.healthz,
            Endpoint::Livez => &self.livez,
            Endpoint::Readyz => &self.readyz,
        }
    }

    /// `/<endpoint>`: every check.
    async fn root(&self, endpoint: Endpoint, query: Option<&str>) -> Response {
        let mut verbose = false;
        let mut excluded: Vec<String> = Vec::new();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "verbose" => verbose = true,
                "exclude" => excluded.push(value.into_owned()),
                _ => {}
            }
        }
        excluded.sort();
        excluded.dedup();

        let mut output = String::new();
        let mut failed = Vec::new();
        for check in self.checks(endpoint) {
            let name = check.name();
            if let Some(i) = excluded.iter().position(|e| e == name) {
                excluded.remove(i);
                output.push_str(&format!("[+]{name} excluded: ok\n"));
                continue;
            }
            match check.check().await {
                Ok(()) => output.push_str(&format!("[+]{name} ok\n")),
                Err(reason) => {
                    // The endpoint is public: the reason stays in the log.
                    output.push_str(&format!("[-]{name} failed: reason withheld\n"));
                    failed.push(format!("{name}: {reason}"));
                }
            }
        }
        if !excluded.is_empty() {
            let quoted: Vec<String> = excluded.iter().map(|e| format!("{e:?}")).collect();
            output.push_str(&format!(
                "warn: some health checks cannot be excluded: no matches for {}\n",
                quoted.join(", ")
            ));
        }
        let name = endpoint.name();
        if !failed.is_empty() {
            tracing::info!(endpoint = name, failed = %failed.join("; "), "health check failed");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{output}{name} check failed\n"),
            );
        }
        if verbose {
            text(StatusCode::OK, format!("{output}{name} check passed\n"))
        } else {
            text(StatusCode::OK, "ok".into())
        }
    }

    /// `/<endpoint>/<name>`: one check.
    async fn single(&self, endpoint: Endpoint, name: &str) -> Response {
        let Some(check) = self.checks(endpoint).iter().find(|c| c.name() == name) else {
            return text(StatusCode::NOT_FOUND, "404 page not found\n".into());
        };
        match check.check().await {
            Ok(()) => text(StatusCode::OK, "ok".into()),
            Err(reason) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal server error: {reason}\n"),
            ),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Healthz,
    Livez,
    Readyz,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Self::Healthz => "healthz",
            Self::Livez => "livez",
            Self::Readyz => "readyz",
        }
    }
}

/// A plain-text response with upstream's headers.
fn text(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    #[derive(Debug)]
    struct Failing;

    #[async_trait]
    impl HealthCheck for Failing {
        fn name(&self) -> &str {
            "etcd"
        }

        async fn check(&self) -> Result<(), String> {
            Err("connection refused".into())
        }
    }

    async fn get(router: &Router, uri: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, String::from_utf8(body.to_vec()).expect("utf8"))
    }

    fn healthy() -> (Router, ReadinessGate, CancellationToken) {
        let token = CancellationToken::new();
        let mut health = Health::new();
        health.add(Arc::new(Ping), Endpoints::ALL).expect("add");
        health
            .add(
                Arc::new(ShutdownCheck::new(token.clone())),
                Endpoints::READYZ,
            )
            .expect("add");
        let gate = health.gate("start-tug").expect("gate");
        (health.router(), gate, token)
    }

    #[tokio::test]
    async fn healthy_endpoints_say_ok_or_list_their_checks() {
        let (router, gate, _) = healthy();
        gate.open();
        assert_eq!(get(&router, "/livez").await, (StatusCode::OK, "ok".into()));
        assert_eq!(
            get(&router, "/readyz?verbose").await,
            (
                StatusCode::OK,
                "[+]ping ok\n[+]shutdown ok\n[+]poststarthook/start-tug ok\nreadyz check passed\n"
                    .into()
            )
        );
        assert_eq!(
            get(&router, "/healthz?verbose=1").await,
            (
                StatusCode::OK,
                "[+]ping ok\n[+]poststarthook/start-tug ok\nhealthz check passed\n".into()
            )
        );
        assert_eq!(
            get(&router, "/livez/ping").await,
            (StatusCode::OK, "ok".into())
        );
    }

    #[tokio::test]
    async fn readiness_waits_for_gates_and_fails_during_shutdown() {
        let (router, gate, token) = healthy();
        assert_eq!(
            get(&router, "/readyz").await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "[+]ping ok\n[+]shutdown ok\n[-]poststarthook/start-tug failed: reason withheld\nreadyz check failed\n"
                    .into()
            )
        );
        assert_eq!(get(&router, "/livez").await.0, StatusCode::OK);
        gate.open();
        assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);
        token.cancel();
        let (status, body) = get(&router, "/readyz").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body.contains("[-]shutdown failed: reason withheld\n"),
            "{body}"
        );
        assert_eq!(get(&router, "/livez").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn failures_withhold_the_reason_but_single_checks_show_it() {
        let mut health = Health::new();
        health.add(Arc::new(Ping), Endpoints::ALL).expect("add");
        health.add(Arc::new(Failing), Endpoints::ALL).expect("add");
        let router = health.router();
        let (status, body) = get(&router, "/healthz").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            "[+]ping ok\n[-]etcd failed: reason withheld\nhealthz check failed\n"
        );
        assert_eq!(
            get(&router, "/healthz/etcd").await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error: connection refused\n".into()
            )
        );
        assert_eq!(
            get(&router, "/healthz?exclude=etcd&exclude=nope&verbose").await,
            (
                StatusCode::OK,
                "[+]ping ok\n[+]etcd excluded: ok\nwarn: some health checks cannot be excluded: no matches for \"nope\"\nhealthz check passed\n"
                    .into()
            )
        );
        assert_eq!(get(&router, "/healthz/nope").await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_check_name_can_be_registered_once_per_endpoint() {
        let mut health = Health::new();
        health.add(Arc::new(Ping), Endpoints::ALL).expect("add");
        assert!(health.add(Arc::new(Ping), Endpoints::READYZ).is_err());
    }
}
