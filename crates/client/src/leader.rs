//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does
//! it: a candidate takes the Lease when it is free or its holder has not renewed it within
//! `leaseDurationSeconds`, renews it every retry period, and gives leadership up when it has
//! not renewed within the renew deadline. Every write is a compare-and-swap on the Lease's
//! resourceVersion, so two candidates never both believe they lead.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api,
    api::{PostParams, entry::Entry},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Timing and identity of a candidate.
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    /// Namespace of the Lease (`kube-system`).
    pub namespace: String,
    /// Name of the Lease (`kube-scheduler`).
    pub name: String,
    /// This candidate's identity (`hostname_uuid` upstream).
    pub identity: String,
    /// How long a Lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    pub renew_deadline: Duration,
    /// How often candidates retry and the leader renews.
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// Upstream's defaults (15 s / 10 s / 2 s) for the Lease `namespace/name`, with a unique
    /// identity made of the host name and a random suffix.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// `hostname_<random hex>`, like upstream's `hostname_uuid`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    let suffix = match random {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(_) => format!("{}", std::process::id()),
    };
    format!("{host}_{suffix}")
}

/// Runs the election until `cancel` fires. The returned receiver says whether this candidate
/// leads right now; on cancellation a leader releases the Lease so another takes over at once.
pub fn run(
    client: kube::Client,
    config: LeaderElectionConfig,
    cancel: CancellationToken,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let mut last_renew = tokio::time::Instant::now();
        loop {
            let leading = *tx.borrow();
            let attempt = tokio::time::timeout(
                config.renew_deadline.min(config.retry_period * 2),
                try_acquire_or_renew(&api, &config),
            )
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
            match attempt {
                Ok(true) => {
                    last_renew = tokio::time::Instant::now();
                    if !leading {
                        tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
                        tx.send_replace(true);
                    }
                }
                Ok(false) => {
                    if leading {
                        tracing::warn!(lease = %config.name, "lost the lease to another candidate");
                        tx.send_replace(false);
                    }
                }
                Err(e) => {
                    tracing::debug!(lease = %config.name, error = %e, "lease attempt failed");
                    if leading && last_renew.elapsed() > config.renew_deadline {
                        tracing::warn!(lease = %config.name, "could not renew within the deadline; stepping down");
                        tx.send_replace(false);
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(config.retry_period) => {}
            }
        }
        if *tx.borrow() {
            tx.send_replace(false);
            if let Err(e) = release(&api, &config).await {
                tracing::debug!(lease = %config.name, error = %e, "could not release the lease");
            }
        }
    });
    rx
}

fn lease_expired(spec: &LeaseSpec, now: k8s_openapi::jiff::Timestamp) -> bool {
    let Some(renew) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let expiry = renew
        .0
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(duration));
    match expiry {
        Ok(e) => e < now,
        Err(_) => true,
    }
}

/// One attempt: true when this candidate holds the Lease afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaderElectionConfig,
) -> anyhow::Result<bool> {
    let now = crate::now_micro();
    let seconds = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    match api.entry(&config.name).await? {
        Entry::Vacant(vacant) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            match vacant.insert(lease).commit(&PostParams::default()).await {
                Ok(()) => Ok(true),
                Err(kube::api::entry::CommitError::Save(kube::Error::Api(e))) if e.code == 409 => {
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        }
        Entry::Occupied(mut occupied) => {
            let spec = occupied.get().spec.clone().unwrap_or_default();
            let holder = spec.holder_identity.as_deref().unwrap_or_default();
            let mine = holder == config.identity;
            if !mine && !holder.is_empty() && !lease_expired(&spec, now.0) {
                return Ok(false);
            }
            occupied.get_mut().spec = Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: if mine {
                    spec.acquire_time.clone()
                } else {
                    Some(now.clone())
                },
                renew_time: Some(now),
                lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + i32::from(!mine)),
                ..spec
            });
            match occupied.commit(&PostParams::default()).await {
                Ok(()) => Ok(true),
                Err(kube::api::entry::CommitError::Save(kube::Error::Api(e))) if e.code == 409 => {
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Gives the Lease up: clears the holder so another candidate need not wait for expiry.
async fn release(api: &Api<Lease>, config: &LeaderElectionConfig) -> anyhow::Result<()> {
    if let Entry::Occupied(mut occupied) = api.entry(&config.name).await? {
        let spec = occupied.get().spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return Ok(());
        }
        occupied.get_mut().spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            renew_time: Some(crate::now_micro()),
            ..spec
        });
        occupied.commit(&PostParams::default()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::MicroTime, jiff::Timestamp};

    #[test]
    fn expiry_counts_from_the_last_renewal() {
        let now = Timestamp::now();
        let at = |secs_ago: i64| {
            Some(MicroTime(
                now.checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(secs_ago))
                    .expect("in range"),
            ))
        };
        let spec = |renewed: i64| LeaseSpec {
            renew_time: at(renewed),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(!lease_expired(&spec(5), now));
        assert!(lease_expired(&spec(20), now));
        assert!(lease_expired(&LeaseSpec::default(), now));
    }

    #[test]
    fn identities_differ() {
        assert_ne!(default_identity(), default_identity());
    }
}
