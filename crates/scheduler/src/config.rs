//! The scheduler's configuration file in upstream's `KubeSchedulerConfiguration` shape
//! (`kubescheduler.config.k8s.io/v1`): profiles, plugins enabled and disabled per extension
//! point or through `multiPoint`, plugin arguments and score weights, leader election and the
//! queue's back-off.

use std::{path::Path, time::Duration};

use serde::Deserialize;

/// The API version upstream's v1 configuration uses.
pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
/// The scheduler name pods get by default.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchedulerConfiguration {
    /// `kubescheduler.config.k8s.io/v1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `KubeSchedulerConfiguration`.
    #[serde(default)]
    pub kind: Option<String>,
    /// How many nodes are filtered or scored at once.
    #[serde(default = "default_parallelism")]
    pub parallelism: usize,
    /// Leader election.
    #[serde(default)]
    pub leader_election: LeaderElection,
    /// Client settings (the kubeconfig path).
    #[serde(default)]
    pub client_connection: ClientConnection,
    /// Percentage of nodes to find feasible before scoring (0: adaptive, as upstream).
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    /// Initial back-off of a pod that failed (seconds).
    #[serde(default = "one")]
    pub pod_initial_backoff_seconds: u64,
    /// Maximum back-off (seconds).
    #[serde(default = "ten")]
    pub pod_max_backoff_seconds: u64,
    /// One profile per scheduler name.
    #[serde(default)]
    pub profiles: Vec<Profile>,
    /// Fields of the upstream schema Tug accepts and ignores.
    #[serde(default)]
    pub extenders: Option<serde_json::Value>,
    /// Accepted and ignored (Tug serves no debugging handlers of its own).
    #[serde(default)]
    pub enable_profiling: Option<bool>,
    /// Accepted and ignored.
    #[serde(default)]
    pub enable_contention_profiling: Option<bool>,
    /// Accepted and ignored.
    #[serde(default)]
    pub delay_cache_until_active: Option<bool>,
}

fn default_parallelism() -> usize {
    16
}
fn one() -> u64 {
    1
}
fn ten() -> u64 {
    10
}

/// `clientConnection`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    /// Path of the kubeconfig.
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// Accepted and ignored.
    #[serde(default)]
    pub qps: Option<f64>,
    /// Accepted and ignored.
    #[serde(default)]
    pub burst: Option<i64>,
    /// Accepted and ignored.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Accepted and ignored.
    #[serde(default)]
    pub accept_content_types: Option<String>,
}

/// `leaderElection`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElection {
    /// Whether to elect a leader at all.
    #[serde(default = "yes")]
    pub leader_elect: bool,
    /// Lease duration, e.g. `15s`.
    #[serde(default = "d15", with = "go_duration")]
    pub lease_duration: Duration,
    /// Renew deadline, e.g. `10s`.
    #[serde(default = "d10", with = "go_duration")]
    pub renew_deadline: Duration,
    /// Retry period, e.g. `2s`.
    #[serde(default = "d2", with = "go_duration")]
    pub retry_period: Duration,
    /// Lock kind (only `leases`).
    #[serde(default = "leases")]
    pub resource_lock: String,
    /// Lease name.
    #[serde(default = "lease_name")]
    pub resource_name: String,
    /// Lease namespace.
    #[serde(default = "kube_system")]
    pub resource_namespace: String,
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            leader_elect: true,
            lease_duration: d15(),
            renew_deadline: d10(),
            retry_period: d2(),
            resource_lock: leases(),
            resource_name: lease_name(),
            resource_namespace: kube_system(),
        }
    }
}

fn yes() -> bool {
    true
}
fn d15() -> Duration {
    Duration::from_secs(15)
}
fn d10() -> Duration {
    Duration::from_secs(10)
}
fn d2() -> Duration {
    Duration::from_secs(2)
}
fn leases() -> String {
    "leases".into()
}
fn lease_name() -> String {
    "kube-scheduler".into()
}
fn kube_system() -> String {
    "kube-system".into()
}

/// Durations written the Go way (`15s`, `1m30s`, `500ms`).
pub mod go_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Parses a Go duration string.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let mut total = 0f64;
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(format!("invalid duration {s:?}"));
        }
        if rest == "0" {
            return Ok(Duration::ZERO);
        }
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
            let value: f64 = rest[..num_end]
                .parse()
                .map_err(|_| format!("invalid duration {s:?}"))?;
            rest = &rest[num_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let factor = match &rest[..unit_end] {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                unit => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
            };
            total += value * factor;
            rest = &rest[unit_end..];
        }
        Ok(Duration::from_secs_f64(total))
    }

    /// Serde adapter.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One scheduling profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// Pods with this `spec.schedulerName` use the profile.
    #[serde(default = "default_name")]
    pub scheduler_name: String,
    /// Overrides the global percentage for this profile.
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    /// Plugins per extension point.
    #[serde(default)]
    pub plugins: Plugins,
    /// Plugin arguments.
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

fn default_name() -> String {
    DEFAULT_SCHEDULER_NAME.into()
}

/// Plugins enabled and disabled per extension point.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plugins {
    /// Every extension point the plugin implements.
    #[serde(default)]
    pub multi_point: PluginSet,
    /// PreEnqueue.
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    /// QueueSort.
    #[serde(default)]
    pub queue_sort: PluginSet,
    /// PreFilter.
    #[serde(default)]
    pub pre_filter: PluginSet,
    /// Filter.
    #[serde(default)]
    pub filter: PluginSet,
    /// PostFilter.
    #[serde(default)]
    pub post_filter: PluginSet,
    /// PreScore.
    #[serde(default)]
    pub pre_score: PluginSet,
    /// Score.
    #[serde(default)]
    pub score: PluginSet,
    /// Reserve.
    #[serde(default)]
    pub reserve: PluginSet,
    /// Permit.
    #[serde(default)]
    pub permit: PluginSet,
    /// PreBind.
    #[serde(default)]
    pub pre_bind: PluginSet,
    /// Bind.
    #[serde(default)]
    pub bind: PluginSet,
    /// PostBind (accepted; Tug has no PostBind plugins).
    #[serde(default)]
    pub post_bind: PluginSet,
}

/// Enabled and disabled plugins of one point.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginSet {
    /// Enabled, in order.
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    /// Disabled (`*` disables every default).
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

/// A plugin named in a set, with its score weight.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginRef {
    /// The plugin name.
    pub name: String,
    /// Score weight (0: the default).
    #[serde(default)]
    pub weight: Option<i64>,
}

/// Arguments of one plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin.
    pub name: String,
    /// Its arguments (`NodeResourcesFitArgs` …), passed to the plugin as JSON.
    #[serde(default)]
    pub args: serde_json::Value,
}

impl Default for SchedulerConfiguration {
    fn default() -> Self {
        Self {
            api_version: Some(API_VERSION.into()),
            kind: Some("KubeSchedulerConfiguration".into()),
            parallelism: default_parallelism(),
            leader_election: LeaderElection::default(),
            client_connection: ClientConnection::default(),
            percentage_of_nodes_to_score: None,
            pod_initial_backoff_seconds: 1,
            pod_max_backoff_seconds: 10,
            profiles: Vec::new(),
            extenders: None,
            enable_profiling: None,
            enable_contention_profiling: None,
            delay_cache_until_active: None,
        }
    }
}

impl SchedulerConfiguration {
    /// Reads and checks a configuration file (YAML or JSON); errors name the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses and checks a configuration.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut config: Self = serde_norway::from_str(text)?;
        if let Some(v) = &config.api_version
            && v != API_VERSION
        {
            anyhow::bail!("apiVersion {v:?} is not supported (want {API_VERSION})");
        }
        if let Some(k) = &config.kind
            && k != "KubeSchedulerConfiguration"
        {
            anyhow::bail!("kind {k:?} is not KubeSchedulerConfiguration");
        }
        config.finish()?;
        Ok(config)
    }

    /// Applies defaults and checks what serde cannot.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        if self.profiles.is_empty() {
            self.profiles.push(Profile {
                scheduler_name: DEFAULT_SCHEDULER_NAME.into(),
                ..Default::default()
            });
        }
        if self.parallelism == 0 {
            anyhow::bail!("parallelism: Invalid value: 0: should be an integer greater than 0");
        }
        if let Some(p) = self.percentage_of_nodes_to_score
            && !(0..=100).contains(&p)
        {
            anyhow::bail!(
                "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
            );
        }
        if self.pod_initial_backoff_seconds == 0 {
            anyhow::bail!("podInitialBackoffSeconds: Invalid value: 0: must be greater than 0");
        }
        if self.pod_max_backoff_seconds < self.pod_initial_backoff_seconds {
            anyhow::bail!(
                "podMaxBackoffSeconds: Invalid value: {}: must be greater than or equal to PodInitialBackoffSeconds",
                self.pod_max_backoff_seconds
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.profiles.iter().enumerate() {
            if p.scheduler_name.is_empty() {
                anyhow::bail!("profiles[{i}].schedulerName: Required value");
            }
            if !names.insert(p.scheduler_name.clone()) {
                anyhow::bail!(
                    "profiles[{i}].schedulerName: Duplicate value: {:?}",
                    p.scheduler_name
                );
            }
            if let Some(pct) = p.percentage_of_nodes_to_score
                && !(0..=100).contains(&pct)
            {
                anyhow::bail!(
                    "profiles[{i}].percentageOfNodesToScore: Invalid value: {pct}: not in valid range [0-100]"
                );
            }
        }
        if self.leader_election.resource_lock != "leases" {
            anyhow::bail!(
                "leaderElection.resourceLock: Unsupported value: {:?}: supported values: \"leases\"",
                self.leader_election.resource_lock
            );
        }
        Ok(())
    }

    /// The initial back-off.
    pub fn initial_backoff(&self) -> Duration {
        Duration::from_secs(self.pod_initial_backoff_seconds)
    }

    /// The maximum back-off.
    pub fn max_backoff(&self) -> Duration {
        Duration::from_secs(self.pod_max_backoff_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_one_default_profile() {
        let c = SchedulerConfiguration::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n",
        )
        .expect("valid");
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(c.profiles[0].scheduler_name, DEFAULT_SCHEDULER_NAME);
        assert_eq!(c.initial_backoff(), Duration::from_secs(1));
        assert_eq!(c.max_backoff(), Duration::from_secs(10));
        assert!(c.leader_election.leader_elect);
        assert_eq!(c.leader_election.lease_duration, Duration::from_secs(15));
    }

    #[test]
    fn profiles_plugins_and_args_parse() {
        let c = SchedulerConfiguration::parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
  leaseDuration: 1m30s
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  plugins:
    score:
      disabled: [{name: NodeResourcesBalancedAllocation}]
      enabled: [{name: NodeResourcesFit, weight: 5}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
        )
        .expect("valid");
        assert!(!c.leader_election.leader_elect);
        assert_eq!(c.leader_election.lease_duration, Duration::from_secs(90));
        assert_eq!(c.profiles[1].plugins.score.enabled[0].weight, Some(5));
        assert_eq!(
            c.profiles[1].plugin_config[0].args["scoringStrategy"]["type"],
            "MostAllocated"
        );
    }

    #[test]
    fn bad_configurations_name_the_field() {
        let err = |text: &str| {
            SchedulerConfiguration::parse(text)
                .expect_err("invalid")
                .to_string()
        };
        assert!(err("apiVersion: kubescheduler.config.k8s.io/v1beta1\n").contains("apiVersion"));
        assert!(err("percentageOfNodesToScore: 120\n").contains("percentageOfNodesToScore"));
        assert!(
            err("profiles:\n- schedulerName: a\n- schedulerName: a\n").contains("Duplicate value")
        );
        assert!(err("bogus: 1\n").contains("bogus"));
        assert!(err("leaderElection:\n  leaseDuration: 5x\n").contains("unit"));
    }
}
