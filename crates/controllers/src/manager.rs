//! The controller manager: one descriptor list of the controllers, upstream's `--controllers`
//! selection (`*` for the default set, `name` to add one, `-name` to leave one out), and
//! leader election on the Lease `kube-system/kube-controller-manager` — the controllers run
//! only while this process leads, and stop when it loses the Lease.

use futures::future::BoxFuture;
use kube::Client;
use tokio_util::sync::CancellationToken;
use tug_client::leader::{self, LeaderElectionConfig};

use crate::nodelifecycle;

/// What every controller gets when it starts.
#[derive(Clone)]
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The manager's settings.
    pub config: ManagerConfig,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One controller: its name (as `--controllers` spells it) and how to start it.
#[derive(Debug)]
pub struct Descriptor {
    /// Upstream's name, e.g. `garbage-collector-controller`.
    pub name: &'static str,
    /// Runs the controller until the token is cancelled.
    pub start: fn(Context, CancellationToken) -> BoxFuture<'static, ()>,
}

/// Every controller, in start order.
pub const CONTROLLERS: &[Descriptor] = &[
    Descriptor {
        name: "garbage-collector-controller",
        start: |ctx, stop| Box::pin(crate::garbagecollector::run(ctx.client, stop)),
    },
    Descriptor {
        name: "namespace-controller",
        start: |ctx, stop| Box::pin(crate::namespace::run(ctx.client, stop)),
    },
    Descriptor {
        name: "node-lifecycle-controller",
        start: |ctx, stop| {
            Box::pin(nodelifecycle::run(
                ctx.client,
                ctx.config.node_lifecycle,
                stop,
            ))
        },
    },
    Descriptor {
        name: "pod-garbage-collector-controller",
        start: |ctx, stop| Box::pin(crate::podgc::run(ctx.client, stop)),
    },
];

/// The manager's settings.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Upstream's `--controllers` list (default `["*"]`).
    pub controllers: Vec<String>,
    /// Elect a leader before running the controllers.
    pub leader_elect: bool,
    /// The node lifecycle controller's settings.
    pub node_lifecycle: nodelifecycle::Config,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            controllers: vec!["*".into()],
            leader_elect: true,
            node_lifecycle: nodelifecycle::Config::default(),
        }
    }
}

/// Checks a `--controllers` list: every name must be `*`, a known controller, or `-` and one.
pub fn validate(selection: &[String]) -> Result<(), String> {
    for entry in selection {
        let name = entry.strip_prefix('-').unwrap_or(entry);
        if entry != "*" && !CONTROLLERS.iter().any(|c| c.name == name) {
            let known: Vec<&str> = CONTROLLERS.iter().map(|c| c.name).collect();
            return Err(format!(
                "{entry:?} is not in the list of known controllers: {}",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// Whether `name` runs under `selection` (upstream's `IsControllerEnabled`): an explicit
/// `-name` disables, an explicit `name` enables, otherwise `*` enables.
pub fn enabled(selection: &[String], name: &str) -> bool {
    let mut star = false;
    for entry in selection {
        if entry == name {
            return true;
        }
        if entry.strip_prefix('-') == Some(name) {
            return false;
        }
        star |= entry == "*";
    }
    star
}

/// Runs the enabled controllers (while leading, when electing) until `stop` is cancelled.
pub async fn run(client: Client, config: ManagerConfig, stop: CancellationToken) {
    let ctx = Context {
        client: client.clone(),
        config: config.clone(),
    };
    let start_all = |token: CancellationToken| {
        for d in CONTROLLERS {
            if enabled(&config.controllers, d.name) {
                tracing::info!(controller = d.name, "starting controller");
                tokio::spawn((d.start)(ctx.clone(), token.child_token()));
            }
        }
    };
    if !config.leader_elect {
        start_all(stop.clone());
        stop.cancelled().await;
        return;
    }
    let mut leading = leader::run(
        client,
        LeaderElectionConfig::new("kube-system", "kube-controller-manager"),
        stop.child_token(),
    );
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
        }
        let term = stop.child_token();
        start_all(term.clone());
        tokio::select! {
            () = stop.cancelled() => {}
            r = leading.wait_for(|l| !*l) => {
                if r.is_ok() {
                    tracing::warn!("lost the controller manager lease: controllers stopped");
                }
            }
        }
        term.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn selection_follows_upstream() {
        assert!(enabled(&sel(&["*"]), "namespace-controller"));
        assert!(!enabled(
            &sel(&["*", "-namespace-controller"]),
            "namespace-controller"
        ));
        assert!(enabled(
            &sel(&["namespace-controller"]),
            "namespace-controller"
        ));
        assert!(!enabled(
            &sel(&["namespace-controller"]),
            "garbage-collector-controller"
        ));
        assert!(!enabled(&sel(&[]), "namespace-controller"));
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(validate(&sel(&["*", "-namespace-controller"])).is_ok());
        let err = validate(&sel(&["nope"])).expect_err("unknown");
        assert!(err.starts_with("\"nope\" is not in the list of known controllers"));
    }
}
