//! The command line: one subcommand per role, each parsed into a validated configuration.
//! Values are checked by their types while parsing; what the types cannot say is checked in
//! `into_config`, and every failure is a one-line clap error naming the flag (exit code 2).

use std::{net::IpAddr, path::PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, error::ErrorKind};
use tug_apiserver::{
    Config,
    config::{DEFAULT_DATA_DIR, DEFAULT_PORT},
    pki::San,
};
use tug_scheduler::SchedulerConfiguration;
use tug_storage::Datastore;

/// Tug: a Kubernetes-compatible container orchestrator.
#[derive(Debug, Parser)]
#[command(name = "tug", version, about, propagate_version = true)]
pub struct Cli {
    /// The role to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The roles.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a control-plane node: the API server, its datastore and the scheduler.
    Server(ServerArgs),
    /// Run the scheduler alone, against an API server named by a kubeconfig.
    Scheduler(SchedulerArgs),
    /// Run a node agent: registers the node and runs its pods on containerd through CRI.
    Agent(AgentArgs),
    /// Run the controller manager alone, against an API server named by a kubeconfig.
    ControllerManager(ControllerManagerArgs),
}

/// The controller manager's flags, shared by `tug controller-manager` and `tug server`.
#[derive(Debug, Clone, Args)]
pub struct ControllerFlags {
    /// Controllers to run: `*` for all, `name` to add one, `-name` to leave one out
    /// (e.g. `*,-node-lifecycle-controller`).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,

    /// How long a node may go without a heartbeat before it is marked Unknown (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "50s")]
    pub node_monitor_grace_period: String,
}

impl ControllerFlags {
    /// The validated configuration; exits naming the flag otherwise.
    fn into_config(self, leader_elect: bool) -> tug_controllers::manager::ManagerConfig {
        if let Err(e) = tug_controllers::manager::validate(&self.controllers) {
            fail(&format!("--controllers: {e}"));
        }
        let grace = tug_scheduler::config::go_duration::parse(&self.node_monitor_grace_period)
            .unwrap_or_else(|e| fail(&format!("--node-monitor-grace-period: {e}")));
        if grace.is_zero() {
            fail("--node-monitor-grace-period: must be positive");
        }
        tug_controllers::manager::ManagerConfig {
            controllers: self.controllers,
            leader_elect,
            node_lifecycle: tug_controllers::nodelifecycle::Config {
                grace_period: grace,
                ..Default::default()
            },
        }
    }
}

/// The flags of `tug controller-manager`.
#[derive(Debug, Args)]
pub struct ControllerManagerArgs {
    /// Kubeconfig of the API server.
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,

    /// Elect a leader on the Lease kube-system/kube-controller-manager.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    #[command(flatten)]
    pub controllers: ControllerFlags,
}

impl ControllerManagerArgs {
    /// The kubeconfig path and the validated configuration.
    pub fn into_config(self) -> (PathBuf, tug_controllers::manager::ManagerConfig) {
        let config = self.controllers.into_config(self.leader_elect);
        (self.kubeconfig, config)
    }
}

/// The flags of `tug server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Directory for the cluster's state: TLS files, admin kubeconfig, embedded datastore.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// IP address the API server listens on.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// HTTPS port of the API server (0 picks a free port).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_PORT)]
    pub https_listen_port: u16,

    /// Datastore: sqlite://PATH or etcd://HOST:PORT[,HOST:PORT…] [default: sqlite://<DIR>/state.db].
    #[arg(long, value_name = "URL")]
    pub datastore: Option<Datastore>,

    /// Also write the admin kubeconfig to this file.
    #[arg(long, value_name = "PATH")]
    pub write_kubeconfig: Option<PathBuf>,

    /// Another DNS name or IP address for the serving certificate (repeatable, or comma-separated).
    #[arg(long = "tls-san", value_name = "NAME", value_delimiter = ',')]
    pub tls_sans: Vec<San>,

    /// CSV file of static bearer tokens: token,user,uid,"group1,group2".
    #[arg(long, value_name = "PATH")]
    pub token_auth_file: Option<PathBuf>,

    /// Do not run the scheduler in this process.
    #[arg(long)]
    pub disable_scheduler: bool,

    /// The scheduler's KubeSchedulerConfiguration file (profiles, plugins, leader election).
    #[arg(long, value_name = "PATH")]
    pub scheduler_config: Option<PathBuf>,

    /// Do not run the controller manager in this process.
    #[arg(long)]
    pub disable_controller_manager: bool,

    #[command(flatten)]
    pub controllers: ControllerFlags,

    /// Do not run a node agent (kubelet) in this process: a control-plane-only server.
    #[arg(long)]
    pub disable_agent: bool,

    /// The in-process agent's node name [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,

    /// The in-process agent's InternalIP [default: the source address of the default route].
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<IpAddr>,

    /// The in-process agent's pod CIDR (until node IPAM assigns one).
    #[arg(long, value_name = "CIDR", default_value = tug_kubelet::cni::DEFAULT_POD_CIDR)]
    pub pod_cidr: String,

    /// The in-process agent uses the CRI runtime on this Unix socket instead of its own containerd.
    #[arg(long, value_name = "PATH")]
    pub container_runtime_endpoint: Option<PathBuf>,

    /// A plain-HTTP registry HOST:PORT serving docker.io and registry.k8s.io images to the
    /// in-process agent (offline machines; see scripts/images.sh).
    #[arg(long, value_name = "HOST:PORT")]
    pub registry_mirror: Option<String>,
}

/// The flags of `tug scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Kubeconfig of the API server to schedule for.
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,

    /// A KubeSchedulerConfiguration file (profiles, plugins, leader election).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Elect a leader on the Lease kube-system/kube-scheduler (overrides the file).
    #[arg(long, value_name = "BOOL")]
    pub leader_elect: Option<bool>,
}

/// The flags of `tug agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Kubeconfig of the API server (until node credentials exist, an admin one).
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,

    /// Directory for the agent's state: containerd, CNI configuration, pod volumes and logs.
    #[arg(long, value_name = "DIR", default_value = tug_kubelet::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// The node's name [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,

    /// Use the CRI runtime listening on this Unix socket instead of starting containerd.
    #[arg(long, value_name = "PATH")]
    pub container_runtime_endpoint: Option<PathBuf>,

    /// The node's pod CIDR (until node IPAM assigns one).
    #[arg(long, value_name = "CIDR", default_value = tug_kubelet::cni::DEFAULT_POD_CIDR)]
    pub pod_cidr: String,

    /// The node's InternalIP [default: the source address of the default route, else 127.0.0.1].
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<IpAddr>,

    /// A plain-HTTP registry HOST:PORT that serves docker.io and registry.k8s.io images
    /// (offline machines and tests; see scripts/images.sh).
    #[arg(long, value_name = "HOST:PORT")]
    pub registry_mirror: Option<String>,

    /// The cluster DNS server pods with dnsPolicy ClusterFirst use [default: the host's resolvers].
    #[arg(long, value_name = "IP")]
    pub cluster_dns: Option<IpAddr>,

    /// BENCHMARK TOOL: register N hollow nodes named <node-name>-0…N-1 whose pods are only
    /// reported Running (no containers), like kubemark/kwok. Starts no containerd.
    #[arg(long, value_name = "N")]
    pub simulate: Option<u32>,
}

/// Exits with a usage error unless `name` can be a Node's name.
fn check_node_name(name: &str) {
    if name.is_empty()
        || name.len() > 253
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        fail(&format!(
            "--node-name {name:?}: must be a lower-case DNS subdomain"
        ));
    }
}

impl AgentArgs {
    /// The hollow nodes' configuration when `--simulate N` is given.
    pub fn hollow_config(&self) -> Option<tug_kubelet::hollow::HollowConfig> {
        let count = self.simulate?;
        if count == 0 || count > tug_kubelet::hollow::MAX_HOLLOW_NODES {
            fail(&format!(
                "--simulate {count}: expected 1 to {} nodes",
                tug_kubelet::hollow::MAX_HOLLOW_NODES
            ));
        }
        let name_prefix = self
            .node_name
            .clone()
            .unwrap_or_else(|| "hollow-node".into());
        check_node_name(&name_prefix);
        Some(tug_kubelet::hollow::HollowConfig {
            kubeconfig: self.kubeconfig.clone(),
            name_prefix,
            count,
            node_ip: self.node_ip.unwrap_or_else(tug_kubelet::default_node_ip),
        })
    }

    /// The validated configuration; exits with a usage error naming the flag otherwise.
    pub fn into_config(self) -> tug_kubelet::Config {
        let data_dir = std::path::absolute(&self.data_dir).unwrap_or_else(|e| {
            fail(&format!(
                "--data-dir {}: cannot make it absolute: {e}",
                self.data_dir.display()
            ))
        });
        let node_name = self.node_name.unwrap_or_else(tug_kubelet::hostname);
        check_node_name(&node_name);
        match self.pod_cidr.split_once('/') {
            Some((ip, bits))
                if ip.parse::<std::net::Ipv4Addr>().is_ok()
                    && bits.parse::<u8>().is_ok_and(|b| (8..=30).contains(&b)) => {}
            _ => fail(&format!(
                "--pod-cidr {:?}: expected an IPv4 CIDR such as 10.42.0.0/24",
                self.pod_cidr
            )),
        }
        if let Some(mirror) = &self.registry_mirror
            && mirror.parse::<std::net::SocketAddr>().is_err()
        {
            fail(&format!(
                "--registry-mirror {mirror:?}: expected HOST:PORT, e.g. 127.0.0.1:5000"
            ));
        }
        tug_kubelet::Config {
            kubeconfig: self.kubeconfig,
            data_dir,
            node_name,
            runtime_endpoint: self.container_runtime_endpoint,
            pod_cidr: self.pod_cidr,
            node_ip: self.node_ip.unwrap_or_else(tug_kubelet::default_node_ip),
            registry_mirror: self.registry_mirror,
            cluster_dns: self.cluster_dns.map(|ip| ip.to_string()),
        }
    }
}

/// What `tug server` runs: the API server's configuration and the in-process scheduler's.
#[derive(Debug)]
pub struct ServerOptions {
    /// The API server.
    pub api: Config,
    /// The scheduler, unless disabled.
    pub scheduler: Option<SchedulerConfiguration>,
    /// The node agent, unless disabled (its kubeconfig is the server's admin kubeconfig).
    pub agent: Option<tug_kubelet::Config>,
    /// The controller manager, unless disabled.
    pub controller_manager: Option<tug_controllers::manager::ManagerConfig>,
}

/// Reads a scheduler configuration file (or the defaults); exits naming the flag otherwise.
fn scheduler_config(flag: &str, path: Option<&std::path::Path>) -> SchedulerConfiguration {
    match path {
        Some(path) => {
            SchedulerConfiguration::load(path).unwrap_or_else(|e| fail(&format!("{flag}: {e:#}")))
        }
        None => {
            let mut config = SchedulerConfiguration::default();
            if let Err(e) = config.finish() {
                fail(&format!("{flag}: {e:#}"));
            }
            config
        }
    }
}

impl SchedulerArgs {
    /// The kubeconfig path and the validated scheduler configuration.
    pub fn into_config(self) -> (PathBuf, SchedulerConfiguration) {
        let mut config = scheduler_config("--config", self.config.as_deref());
        if let Some(elect) = self.leader_elect {
            config.leader_election.leader_elect = elect;
        }
        (self.kubeconfig, config)
    }
}

impl ServerArgs {
    /// The validated options of every component the server runs.
    pub fn into_options(self) -> ServerOptions {
        let scheduler = (!self.disable_scheduler)
            .then(|| scheduler_config("--scheduler-config", self.scheduler_config.as_deref()));
        let controllers = self.controllers.clone().into_config(true);
        let controller_manager = (!self.disable_controller_manager).then_some(controllers);
        let agent = (!self.disable_agent).then(|| {
            AgentArgs {
                kubeconfig: self.data_dir.join("admin.kubeconfig"),
                data_dir: self.data_dir.join("agent"),
                node_name: self.node_name.clone(),
                container_runtime_endpoint: self.container_runtime_endpoint.clone(),
                pod_cidr: self.pod_cidr.clone(),
                node_ip: self.node_ip,
                registry_mirror: self.registry_mirror.clone(),
                cluster_dns: None,
                simulate: None,
            }
            .into_config()
        });
        ServerOptions {
            api: self.into_config(),
            scheduler,
            agent,
            controller_manager,
        }
    }

    /// The validated configuration; exits with a usage error naming the flag otherwise.
    pub fn into_config(self) -> Config {
        if self.data_dir.as_os_str().is_empty() {
            fail("--data-dir must not be empty");
        }
        let data_dir = std::path::absolute(&self.data_dir).unwrap_or_else(|e| {
            fail(&format!(
                "--data-dir {}: cannot make it absolute: {e}",
                self.data_dir.display()
            ))
        });
        let mut config = Config::new(data_dir);
        config.bind_address = self.bind_address;
        config.port = self.https_listen_port;
        if let Some(datastore) = self.datastore {
            config.datastore = datastore;
        }
        config.tls_sans = self.tls_sans;
        config.token_auth_file = self.token_auth_file;
        config.write_kubeconfig = self.write_kubeconfig;
        if let Err(e) = config.validate() {
            fail(&e.to_string());
        }
        config
    }
}

/// Exits with a clap usage error (exit code 2).
fn fail(message: &str) -> ! {
    Cli::command()
        .error(ErrorKind::ValueValidation, message)
        .exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tug").chain(args.iter().copied()))
    }

    fn server(args: &[&str]) -> ServerArgs {
        match parse(args).expect("valid").command {
            Command::Server(args) => args,
            other => panic!("not a server command: {other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn server_defaults_match_k3s_habits() {
        let config = server(&["server"]).into_config();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/tug"));
        assert_eq!(config.listen_addr().to_string(), "0.0.0.0:6443");
        assert_eq!(
            config.datastore,
            Datastore::Sqlite("/var/lib/tug/state.db".into())
        );
        assert!(config.tls_sans.is_empty());
    }

    #[test]
    fn server_flags_fill_the_config() {
        let config = server(&[
            "server",
            "--data-dir",
            "/tmp/x",
            "--bind-address",
            "127.0.0.1",
            "--https-listen-port",
            "7443",
            "--tls-san",
            "a.example",
            "--tls-san",
            "10.0.0.1,b.example",
            "--datastore",
            "etcd://127.0.0.1:2379",
            "--write-kubeconfig",
            "/tmp/k",
            "--token-auth-file",
            "/tmp/t.csv",
        ])
        .into_config();
        assert_eq!(config.listen_addr().to_string(), "127.0.0.1:7443");
        assert_eq!(
            config.datastore,
            Datastore::Etcd(vec!["127.0.0.1:2379".into()])
        );
        let sans: Vec<String> = config.tls_sans.iter().map(ToString::to_string).collect();
        assert_eq!(sans, ["a.example", "10.0.0.1", "b.example"]);
        assert_eq!(config.write_kubeconfig, Some(PathBuf::from("/tmp/k")));
        assert_eq!(config.token_auth_file, Some(PathBuf::from("/tmp/t.csv")));
    }

    #[test]
    fn relative_data_dirs_become_absolute_and_the_datastore_follows() {
        let config = server(&["server", "--data-dir", "state"]).into_config();
        assert!(config.data_dir.is_absolute());
        assert_eq!(
            config.datastore,
            Datastore::Sqlite(config.data_dir.join("state.db"))
        );
    }

    #[test]
    fn the_scheduler_runs_in_the_server_unless_disabled() {
        let options = server(&["server"]).into_options();
        let scheduler = options.scheduler.expect("enabled by default");
        assert_eq!(scheduler.profiles[0].scheduler_name, "default-scheduler");
        assert!(scheduler.leader_election.leader_elect);
        assert!(
            server(&["server", "--disable-scheduler"])
                .into_options()
                .scheduler
                .is_none()
        );
    }

    #[test]
    fn scheduler_flags() {
        let Command::Scheduler(args) = parse(&[
            "scheduler",
            "--kubeconfig",
            "/tmp/k",
            "--leader-elect",
            "false",
        ])
        .expect("valid")
        .command
        else {
            panic!("not the scheduler");
        };
        let (kubeconfig, config) = args.into_config();
        assert_eq!(kubeconfig, PathBuf::from("/tmp/k"));
        assert!(!config.leader_election.leader_elect);
    }

    #[test]
    fn bad_values_are_errors_naming_the_flag() {
        for (args, flag) in [
            (
                &["server", "--https-listen-port", "70000"][..],
                "--https-listen-port",
            ),
            (
                &["server", "--bind-address", "localhost"][..],
                "--bind-address",
            ),
            (&["server", "--datastore", "mysql://x"][..], "--datastore"),
            (&["server", "--tls-san", "not a name"][..], "--tls-san"),
        ] {
            let err = parse(args).expect_err("invalid");
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{args:?}");
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
    }

    fn agent(args: &[&str]) -> tug_kubelet::Config {
        match parse(args).expect("valid").command {
            Command::Agent(args) => args.into_config(),
            other => panic!("not an agent command: {other:?}"),
        }
    }

    #[test]
    fn agent_flags_fill_the_config() {
        let config = agent(&[
            "agent",
            "--kubeconfig",
            "/k",
            "--data-dir",
            "/d",
            "--node-name",
            "node-1",
            "--pod-cidr",
            "10.42.7.0/24",
            "--node-ip",
            "10.0.0.9",
            "--registry-mirror",
            "127.0.0.1:5000",
        ]);
        assert_eq!(config.kubeconfig, PathBuf::from("/k"));
        assert_eq!(config.data_dir, PathBuf::from("/d"));
        assert_eq!(config.node_name, "node-1");
        assert_eq!(config.pod_cidr, "10.42.7.0/24");
        assert_eq!(config.node_ip.to_string(), "10.0.0.9");
        assert_eq!(config.registry_mirror.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(config.runtime_endpoint, None);
        let defaults = agent(&["agent", "--kubeconfig", "/k"]);
        assert_eq!(defaults.data_dir, PathBuf::from("/var/lib/tug-agent"));
        assert_eq!(defaults.pod_cidr, "10.42.0.0/24");
    }
}
