//! A real node end to end: `tug server`, test images in a registry on loopback
//! (scripts/images.sh), and `tug agent` with its own containerd running real pods through CRI.
//! Needs root, containerd, runc, the CNI plugins and the image tools (scripts/deps.sh).
//! Everything it creates (registry, agent, containerd, sandboxes with their netns, veths and
//! iptables rules, mounts, the CNI bridge) is removed by drop guards, also when it fails.

mod support;

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use support::{
    node::{Registry, Teardown, ensure_root},
    ready_server,
};
use tug_kubelet::{cri::Cri, pod::spec::LABEL_POD_UID};

/// A distinct node name and pod CIDR, so the test never meets a real agent's bridge.
const NODE: &str = "tug-e2e-node";
const POD_CIDR: &str = "10.42.213.0/24";
/// How long any awaited state may take (a deadline, not an expectation).
const DEADLINE: Duration = Duration::from_secs(120);

/// A running `tug agent`; dropping it kills it and tears down everything it made.
struct Agent {
    child: Option<Child>,
    _teardown: Teardown,
    data_dir: PathBuf,
    kubeconfig: PathBuf,
    mirror: String,
    log: PathBuf,
}

impl Agent {
    fn start(data_dir: &Path, kubeconfig: &Path, mirror: &str) -> anyhow::Result<Self> {
        let mut agent = Self {
            child: None,
            _teardown: Teardown {
                data_dir: data_dir.to_path_buf(),
                node: NODE.to_owned(),
            },
            data_dir: data_dir.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
            mirror: mirror.to_owned(),
            log: data_dir.with_extension("log"),
        };
        agent.spawn()?;
        Ok(agent)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(support::TUG)
            .arg("agent")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--node-name", NODE, "--pod-cidr", POD_CIDR])
            .args(["--node-ip", "127.0.0.1"])
            .args(["--registry-mirror", &self.mirror])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn tug agent")?;
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`: containerd and the containers stay behind, as after a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn socket(&self) -> PathBuf {
        self.data_dir.join("containerd/containerd.sock")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Killed first; then the `_teardown` field removes what it made.
        self.kill();
    }
}

async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    tug_apiserver::install_crypto_provider();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

/// Polls `check` until it returns `Some`, failing with `what` and the last value after the
/// deadline.
async fn wait_for<T, F, Fut>(what: &str, agent: &Agent, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Result<T, String>>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        let last = match check().await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(state)) => state,
            Err(e) => format!("error: {e:#}"),
        };
        if Instant::now() > deadline {
            bail!(
                "timed out waiting for {what}; last: {last}\nagent log:\n{}",
                agent.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pod(name: &str, spec: serde_json::Value) -> anyhow::Result<Pod> {
    let mut spec = spec;
    spec["nodeName"] = serde_json::json!(NODE);
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))?)
}

fn container_state(pod: &Pod) -> (String, i32, Option<String>) {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.first());
    let Some(status) = status else {
        return ("no status".into(), 0, None);
    };
    let state = status.state.clone().unwrap_or_default();
    let reason = if let Some(w) = state.waiting {
        w.reason.unwrap_or_default()
    } else if let Some(t) = state.terminated {
        format!("terminated:{}", t.reason.unwrap_or_default())
    } else if state.running.is_some() {
        "running".into()
    } else {
        "unknown".into()
    };
    (reason, status.restart_count, status.container_id.clone())
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn pods_run_restart_fail_and_terminate_on_a_real_node() -> anyhow::Result<()> {
    ensure_root()?;
    let dir = tempfile::tempdir()?;
    let registry = Registry::start(&dir.path().join("images"))?;
    let server = ready_server(dir.path(), &[]).await?;
    let client = client(&server.kubeconfig()).await?;
    let mut agent = Agent::start(
        &dir.path().join("agent"),
        &server.kubeconfig(),
        &registry.addr,
    )?;

    // The node registers and is Ready, with upstream's labels and node info.
    let nodes: Api<Node> = Api::all(client.clone());
    let node = wait_for("the node to be Ready", &agent, || async {
        let Some(node) = nodes.get_opt(NODE).await? else {
            return Ok(Err("no node".into()));
        };
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        Ok(if ready {
            Ok(node)
        } else {
            Err(format!("{:?}", node.status))
        })
    })
    .await?;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("kubernetes.io/hostname").map(String::as_str),
        Some(NODE)
    );
    assert_eq!(
        labels.get("kubernetes.io/os").map(String::as_str),
        Some("linux")
    );
    let info = node.status.and_then(|s| s.node_info).context("node info")?;
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{info:?}"
    );
    assert!(info.kubelet_version.starts_with("v1.33.0+tug"), "{info:?}");
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-node-lease");
    wait_for("the node lease", &agent, || async {
        Ok(leases
            .get_opt(NODE)
            .await?
            .map(|_| ())
            .ok_or("no lease".to_owned()))
    })
    .await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let signals = dir.path().join("signals");
    for p in [
        pod(
            "sleeper",
            serde_json::json!({"containers": [{"name": "c", "image": "busybox",
                "command": ["sh", "-c", "echo started $(POD); exec sleep 3600"],
                "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}),
        )?,
        pod(
            "crasher",
            serde_json::json!({"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 1"]}]}),
        )?,
        pod(
            "bad-image",
            serde_json::json!({"containers": [{"name": "c", "image": "tug/no-such-image:1.0"}]}),
        )?,
        pod(
            "job",
            serde_json::json!({"restartPolicy": "Never", "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
                "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo all-done > /dev/termination-log"]}]}),
        )?,
        pod(
            "server",
            serde_json::json!({"terminationGracePeriodSeconds": 20,
                "volumes": [{"name": "signals", "hostPath": {"path": signals.to_string_lossy(), "type": "DirectoryOrCreate"}}],
                "containers": [{"name": "s", "image": "tug/test-server:1.0",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 1},
                    "env": [{"name": "SIGNAL_LOG", "value": "/signals/log"}],
                    "volumeMounts": [{"name": "signals", "mountPath": "/signals"}]}]}),
        )?,
        pod(
            "unready",
            serde_json::json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}}]}),
        )?,
        pod(
            "unhealthy",
            serde_json::json!({"terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}}]}),
        )?,
        pod(
            "limited",
            serde_json::json!({"initContainers": [{"name": "sidecar", "image": "busybox", "restartPolicy": "Always", "command": ["sleep", "3600"]}],
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}}]}),
        )?,
        pod(
            "oom",
            serde_json::json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
                "command": ["sh", "-c", "head -c 200m /dev/zero | tail"],
                "resources": {"limits": {"memory": "32Mi"}}}]}),
        )?,
    ] {
        pods.create(&PostParams::default(), &p).await?;
    }

    // A busybox pod runs, with a pod IP from the node's CIDR.
    let sleeper = wait_for("sleeper Running", &agent, || async {
        let p = pods.get("sleeper").await?;
        Ok(if phase(&p) == "Running" {
            Ok(p)
        } else {
            Err(format!("{:?}", p.status))
        })
    })
    .await?;
    let ip = sleeper
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .context("sleeper has no pod IP")?;
    assert!(
        ip.starts_with("10.42.213."),
        "pod IP {ip} outside {POD_CIDR}"
    );
    let (state, restarts, sleeper_id) = container_state(&sleeper);
    assert_eq!((state.as_str(), restarts), ("running", 0));
    let sleeper_id = sleeper_id.context("container id")?;
    assert!(sleeper_id.starts_with("containerd://"), "{sleeper_id}");

    // The container is what CRI runs, labelled with the pod's uid, and its log is there.
    let cri = Cri::connect(agent.socket()).await?;
    let uid = sleeper.metadata.uid.clone().context("uid")?;
    let containers = cri
        .list_containers(HashMap::from([(LABEL_POD_UID.to_owned(), uid.clone())]))
        .await?;
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(
        format!("containerd://{}", containers[0].id),
        sleeper_id,
        "the status names the CRI container"
    );
    let status = cri.container_status(&containers[0].id).await?;
    let log = wait_for("the sleeper's log line", &agent, || async {
        let text = fs::read_to_string(&status.log_path).unwrap_or_default();
        Ok(if text.contains("started sleeper") {
            Ok(text)
        } else {
            Err(text)
        })
    })
    .await?;
    assert!(log.contains("stdout"), "CRI log format: {log}");

    // Events as `kubectl describe` shows them, from the kubelet.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    wait_for("the sleeper's kubelet events", &agent, || async {
        let mut reasons: Vec<String> = events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("sleeper"))
            .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("kubelet"))
            .filter_map(|e| e.reason)
            .collect();
        reasons.sort();
        reasons.dedup();
        Ok(if reasons == ["Created", "Pulled", "Pulling", "Started"] {
            Ok(())
        } else {
            Err(format!("{reasons:?}"))
        })
    })
    .await?;

    // A crashing container backs off with growing restart counts.
    wait_for("crasher in CrashLoopBackOff", &agent, || async {
        let p = pods.get("crasher").await?;
        let (state, restarts, _) = container_state(&p);
        Ok(if state == "CrashLoopBackOff" && restarts >= 1 {
            Ok(())
        } else {
            Err(format!("{state} {restarts}"))
        })
    })
    .await?;
    wait_for("crasher restarted again", &agent, || async {
        let p = pods.get("crasher").await?;
        let (state, restarts, _) = container_state(&p);
        Ok(if restarts >= 2 {
            Ok(())
        } else {
            Err(format!("{state} {restarts}"))
        })
    })
    .await?;

    // An image that does not exist: ErrImagePull, then ImagePullBackOff.
    wait_for("bad-image in ImagePullBackOff", &agent, || async {
        let p = pods.get("bad-image").await?;
        let (state, _, _) = container_state(&p);
        Ok(if state == "ImagePullBackOff" {
            Ok(())
        } else {
            Err(state)
        })
    })
    .await?;

    // A Never pod that exits 0 after its init container ends Succeeded/Completed.
    let job = wait_for("job Succeeded", &agent, || async {
        let p = pods.get("job").await?;
        Ok(if phase(&p) == "Succeeded" {
            Ok(p)
        } else {
            Err(format!("{:?}", p.status))
        })
    })
    .await?;
    assert_eq!(container_state(&job).0, "terminated:Completed");
    let message = job
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.first())
        .and_then(|s| s.state.clone())
        .and_then(|s| s.terminated)
        .and_then(|t| t.message);
    assert_eq!(
        message.as_deref(),
        Some("all-done\n"),
        "the termination message"
    );

    // Deleting the test server sends it SIGTERM, and the pod object goes away.
    fn ready(p: &Pod) -> bool {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True")
    }
    // Probes: an httpGet readiness probe makes the test server Ready; a failing exec
    // readiness probe keeps a running pod unready; a failing liveness probe restarts.
    wait_for(
        "server Ready through its HTTP readiness probe",
        &agent,
        || async {
            let p = pods.get("server").await?;
            Ok(if ready(&p) {
                Ok(())
            } else {
                Err(format!("{:?}", p.status))
            })
        },
    )
    .await?;
    wait_for("unready Running", &agent, || async {
        let p = pods.get("unready").await?;
        Ok(if phase(&p) == "Running" {
            Ok(p)
        } else {
            Err(phase(&p))
        })
    })
    .await?;
    wait_for(
        "unhealthy restarted by its liveness probe",
        &agent,
        || async {
            let p = pods.get("unhealthy").await?;
            let (state, restarts, _) = container_state(&p);
            Ok(if restarts >= 1 {
                Ok(())
            } else {
                Err(format!("{state} {restarts}"))
            })
        },
    )
    .await?;
    let unready = pods.get("unready").await?;
    ensure!(
        !ready(&unready),
        "a failing readiness probe: {:?}",
        unready.status
    );
    pods.delete("server", &DeleteParams::default()).await?;
    wait_for("server deleted", &agent, || async {
        Ok(match pods.get_opt("server").await? {
            None => Ok(()),
            Some(p) => Err(format!("{:?}", p.metadata.deletion_timestamp)),
        })
    })
    .await?;
    let recorded = fs::read_to_string(signals.join("log")).unwrap_or_default();
    assert_eq!(
        recorded.trim(),
        "SIGTERM",
        "signals the test server recorded"
    );

    // Two containers share an emptyDir; configMap volumes, secret env and a missing
    // configMap (CreateContainerConfigError with upstream's message).
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "default");
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "app-config"}, "data": {"greeting": "hello"}}))?,
        )
        .await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "app-secret"}, "stringData": {"token": "s3cr3t"}}))?,
        )
        .await?;
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "my-db"},
                "spec": {"clusterIP": "10.43.0.50", "ports": [{"name": "sql", "port": 5432}]}}))?,
        )
        .await?;
    pods.create(
        &PostParams::default(),
        &pod(
            "shared",
            serde_json::json!({
                "volumes": [{"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                            {"name": "cfg", "configMap": {"name": "app-config"}}],
                "containers": [
                    {"name": "writer", "image": "busybox",
                     "command": ["sh", "-c", "echo from-writer > /data/f; exec sleep 3600"],
                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                    {"name": "reader", "image": "busybox",
                     "command": ["sh", "-c", "until [ -f /data/f ]; do sleep 0.1; done; cat /data/f /etc/app/greeting; echo token=$TOKEN db=$MY_DB_SERVICE_HOST:$MY_DB_SERVICE_PORT_SQL; exec sleep 3600"],
                     "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "token"}}}],
                     "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/app"}]}]}),
        )?,
    )
    .await?;
    pods.create(
        &PostParams::default(),
        &pod(
            "no-config",
            serde_json::json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}}]}]}),
        )?,
    )
    .await?;
    let shared = wait_for("shared Running", &agent, || async {
        let p = pods.get("shared").await?;
        Ok(if phase(&p) == "Running" {
            Ok(p)
        } else {
            Err(format!("{:?}", p.status))
        })
    })
    .await?;
    let shared_uid = shared.metadata.uid.clone().context("uid")?;
    let reader = cri
        .list_containers(HashMap::from([
            (LABEL_POD_UID.to_owned(), shared_uid),
            (
                "io.kubernetes.container.name".to_owned(),
                "reader".to_owned(),
            ),
        ]))
        .await?;
    let reader = reader.first().context("no reader container")?;
    let reader_log = cri.container_status(&reader.id).await?.log_path;
    wait_for("the reader's output", &agent, || async {
        let text = fs::read_to_string(&reader_log).unwrap_or_default();
        Ok(
            if text.contains("from-writer")
                && text.contains("hello")
                && text.contains("token=s3cr3t db=10.43.0.50:5432")
            {
                Ok(())
            } else {
                Err(text)
            },
        )
    })
    .await?;
    let tmpfs_mounted = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("kubernetes.io~empty-dir/data") && l.contains(" tmpfs "))
    };
    ensure!(tmpfs_mounted(), "a memory-backed emptyDir is a tmpfs");
    wait_for(
        "no-config in CreateContainerConfigError",
        &agent,
        || async {
            let p = pods.get("no-config").await?;
            let waiting = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|s| s.first())
                .and_then(|s| s.state.clone())
                .and_then(|s| s.waiting);
            Ok(match waiting {
                Some(w)
                    if w.reason.as_deref() == Some("CreateContainerConfigError")
                        && w.message.as_deref() == Some("configmap \"missing\" not found") =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            })
        },
    )
    .await?;

    // Limits are visible in the container's cgroup; exceeding memory is OOMKilled. A
    // sidecar (an init container with restartPolicy Always) runs beside the container.
    let limited = wait_for("limited Running", &agent, || async {
        let p = pods.get("limited").await?;
        Ok(if phase(&p) == "Running" {
            Ok(p)
        } else {
            Err(format!("{:?}", p.status))
        })
    })
    .await?;
    let sidecar = limited
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_ref())
        .and_then(|s| s.first())
        .and_then(|s| s.state.clone())
        .and_then(|s| s.running);
    ensure!(sidecar.is_some(), "the sidecar runs: {:?}", limited.status);
    let limited_uid = limited.metadata.uid.clone().context("uid")?;
    let (_, _, limited_id) = container_state(&limited);
    let limited_id = limited_id.context("id")?.replace("containerd://", "");
    let cgroup = |controller: &str, file: &str| {
        ["", "burstable/", "besteffort/"].iter().find_map(|qos| {
            fs::read_to_string(format!(
                "/sys/fs/cgroup/{controller}/kubepods/{qos}pod{limited_uid}/{limited_id}/{file}"
            ))
            .ok()
        })
    };
    assert_eq!(
        cgroup("memory", "memory.limit_in_bytes")
            .as_deref()
            .map(str::trim),
        Some("67108864"),
        "memory limit in the container's cgroup"
    );
    assert_eq!(
        cgroup("cpu", "cpu.cfs_quota_us").as_deref().map(str::trim),
        Some("20000"),
        "CPU quota in the container's cgroup"
    );
    let oom = wait_for("oom Failed", &agent, || async {
        let p = pods.get("oom").await?;
        Ok(if phase(&p) == "Failed" {
            Ok(p)
        } else {
            Err(format!("{:?}", p.status))
        })
    })
    .await?;
    assert_eq!(container_state(&oom).0, "terminated:OOMKilled");

    // Node admission: a second pod asking for a taken host port fails with NodePorts.
    let with_port = |name: &str| {
        pod(
            name,
            serde_json::json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "ports": [{"containerPort": 80, "hostPort": 18080}]}]}),
        )
    };
    pods.create(&PostParams::default(), &with_port("port-a")?)
        .await?;
    wait_for("port-a Running", &agent, || async {
        let p = pods.get("port-a").await?;
        Ok(if phase(&p) == "Running" {
            Ok(())
        } else {
            Err(phase(&p))
        })
    })
    .await?;
    pods.create(&PostParams::default(), &with_port("port-b")?)
        .await?;
    let rejected = wait_for("port-b rejected", &agent, || async {
        let p = pods.get("port-b").await?;
        Ok(if phase(&p) == "Failed" {
            Ok(p)
        } else {
            Err(format!("{:?}", p.status))
        })
    })
    .await?;
    assert_eq!(
        rejected.status.and_then(|s| s.reason).as_deref(),
        Some("NodePorts")
    );

    // kill -9 of the agent and a restart: running containers are adopted, not recreated.
    agent.kill();
    // A pod force-deleted while the agent is down is cleaned up when it comes back.
    let crasher_uid = pods.get("crasher").await?.metadata.uid.context("uid")?;
    pods.delete("crasher", &DeleteParams::default().grace_period(0))
        .await?;
    agent.spawn()?;
    pods.create(
        &PostParams::default(),
        &pod(
            "after-restart",
            serde_json::json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}),
        )?,
    )
    .await?;
    wait_for("a new pod Running after the restart", &agent, || async {
        let p = pods.get("after-restart").await?;
        Ok(if phase(&p) == "Running" {
            Ok(())
        } else {
            Err(phase(&p))
        })
    })
    .await?;
    let sleeper = pods.get("sleeper").await?;
    let (state, restarts, id) = container_state(&sleeper);
    assert_eq!(
        (state.as_str(), restarts, id.as_deref()),
        ("running", 0, Some(sleeper_id.as_str())),
        "the sleeper kept its container across the agent restart"
    );
    let cri = Cri::connect(agent.socket()).await?;
    let containers = cri
        .list_containers(HashMap::from([(LABEL_POD_UID.to_owned(), uid)]))
        .await?;
    assert_eq!(containers.len(), 1, "no second container: {containers:?}");
    wait_for(
        "the force-deleted pod's sandbox removed",
        &agent,
        || async {
            let left = cri
                .list_pod_sandboxes(HashMap::from([(
                    LABEL_POD_UID.to_owned(),
                    crasher_uid.clone(),
                )]))
                .await?;
            Ok(if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{} sandboxes", left.len()))
            })
        },
    )
    .await?;

    // Deleting every pod removes their sandboxes.
    for name in [
        "sleeper",
        "bad-image",
        "job",
        "after-restart",
        "shared",
        "no-config",
        "unready",
        "unhealthy",
        "limited",
        "oom",
        "port-a",
        "port-b",
    ] {
        pods.delete(name, &DeleteParams::default().grace_period(1))
            .await?;
    }
    wait_for("all pods gone", &agent, || async {
        let left = pods.list(&Default::default()).await?.items.len();
        Ok(if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} pods left"))
        })
    })
    .await?;
    let sandboxes = cri.list_pod_sandboxes(HashMap::new()).await?;
    assert!(sandboxes.is_empty(), "sandboxes left: {sandboxes:?}");
    ensure!(
        !tmpfs_mounted(),
        "the memory-backed emptyDir is unmounted with its pod"
    );
    drop(agent);
    drop(server);
    drop(registry);
    Ok(())
}
