//! Container probes as upstream's prober runs them: startup, liveness and readiness probes of
//! the exec (CRI ExecSync), httpGet and tcpSocket kinds, with `initialDelaySeconds`,
//! `periodSeconds`, `timeoutSeconds` and the success/failure thresholds. Liveness and
//! readiness wait for the startup probe; a failed liveness or startup probe asks the worker to
//! kill the container (it then restarts per the pod's restart policy).

use std::{collections::HashMap, time::Duration};

use k8s_openapi::{
    api::core::v1::{Container, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

use super::status::{Instance, RunState};
use crate::cri::Cri;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `startupProbe`.
    Startup,
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Liveness => "liveness",
            Self::Readiness => "readiness",
        }
    }
}

#[derive(Debug, Clone)]
struct State {
    container_id: String,
    next_run: Instant,
    successes: i32,
    failures: i32,
    /// The probe's current verdict: `None` until the first threshold is crossed.
    result: Option<bool>,
}

/// A probe's outcome: success, or failure with upstream-style output.
type Outcome = Result<(), String>;

/// The probe state of one pod's containers.
#[derive(Debug, Default)]
pub struct Prober {
    states: HashMap<(String, Kind), State>,
}

/// A container a failed liveness or startup probe wants restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// The container name.
    pub container: String,
    /// Its CRI id.
    pub id: String,
    /// The grace period to stop it with.
    pub grace: i64,
    /// Why (upstream's event message).
    pub message: String,
}

fn probe_of(c: &Container, kind: Kind) -> Option<&Probe> {
    match kind {
        Kind::Startup => c.startup_probe.as_ref(),
        Kind::Liveness => c.liveness_probe.as_ref(),
        Kind::Readiness => c.readiness_probe.as_ref(),
    }
}

impl Prober {
    /// Whether `container` (instance `id`) counts as started: no startup probe, or it succeeded.
    pub fn started(&self, c: &Container, id: &str) -> bool {
        c.startup_probe.is_none() || self.verdict(&c.name, Kind::Startup, id) == Some(true)
    }

    /// Whether `container` counts as ready: started, and no readiness probe or it succeeded.
    pub fn ready(&self, c: &Container, id: &str) -> bool {
        self.started(c, id)
            && (c.readiness_probe.is_none()
                || self.verdict(&c.name, Kind::Readiness, id) == Some(true))
    }

    fn verdict(&self, name: &str, kind: Kind, id: &str) -> Option<bool> {
        self.states
            .get(&(name.to_owned(), kind))
            .filter(|s| s.container_id == id)
            .and_then(|s| s.result)
    }

    /// Runs the probes that are due for the running containers; returns the containers a
    /// failed liveness or startup probe condemns.
    pub async fn run(
        &mut self,
        cri: &Cri,
        containers: &[Container],
        instances: &HashMap<String, Vec<Instance>>,
        pod_ip: Option<&str>,
        pod_grace: i64,
    ) -> Vec<Kill> {
        let now = Instant::now();
        let mut kills = Vec::new();
        for c in containers {
            let Some(latest) = instances.get(&c.name).and_then(|l| l.first()) else {
                continue;
            };
            if latest.state != RunState::Running {
                continue;
            }
            for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
                let Some(probe) = probe_of(c, kind) else {
                    continue;
                };
                if kind != Kind::Startup && !self.started(c, &latest.id) {
                    continue;
                }
                let key = (c.name.clone(), kind);
                let state = self
                    .states
                    .entry(key)
                    .or_insert_with(|| fresh(latest, probe, now));
                if state.container_id != latest.id {
                    *state = fresh(latest, probe, now);
                }
                if now < state.next_run {
                    continue;
                }
                let period = probe.period_seconds.unwrap_or(10).max(1);
                state.next_run = now + Duration::from_secs(period as u64);
                let timeout = probe.timeout_seconds.unwrap_or(1).max(1);
                let outcome = run_probe(cri, c, probe, &latest.id, pod_ip, timeout).await;
                let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
                let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
                match outcome {
                    Ok(()) => {
                        state.failures = 0;
                        state.successes += 1;
                        if state.successes >= success_threshold {
                            state.result = Some(true);
                        }
                    }
                    Err(output) => {
                        state.successes = 0;
                        state.failures += 1;
                        tracing::info!(
                            container = c.name,
                            probe = kind.name(),
                            output,
                            "probe failed"
                        );
                        if state.failures >= failure_threshold {
                            state.result = Some(false);
                            if kind != Kind::Readiness {
                                let grace =
                                    probe.termination_grace_period_seconds.unwrap_or(pod_grace);
                                kills.push(Kill {
                                    container: c.name.clone(),
                                    id: latest.id.clone(),
                                    grace,
                                    message: format!(
                                        "Container {} failed {} probe, will be restarted",
                                        c.name,
                                        kind.name()
                                    ),
                                });
                                state.failures = 0;
                            }
                        }
                    }
                }
            }
        }
        kills
    }
}

fn fresh(latest: &Instance, probe: &Probe, now: Instant) -> State {
    let delay = probe.initial_delay_seconds.unwrap_or(0).max(0) as i64;
    // The delay counts from the container's start.
    let started_ns = latest.started_at;
    let now_ns = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    )
    .unwrap_or(i64::MAX);
    let elapsed = Duration::from_nanos(u64::try_from(now_ns - started_ns).unwrap_or(0));
    let wait = Duration::from_secs(delay as u64).saturating_sub(elapsed);
    State {
        container_id: latest.id.clone(),
        next_run: now + wait,
        successes: 0,
        failures: 0,
        result: None,
    }
}

/// The port a probe names: a number, or a named container port.
fn port(c: &Container, port: &IntOrString) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port {name:?} in container {:?}", c.name))?,
        },
    };
    u16::try_from(number).map_err(|_| format!("invalid port number: {number}"))
}

async fn run_probe(
    cri: &Cri,
    c: &Container,
    probe: &Probe,
    id: &str,
    pod_ip: Option<&str>,
    timeout: i32,
) -> Outcome {
    let limit = Duration::from_secs(timeout as u64);
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match cri.exec_sync(id, cmd, i64::from(timeout)).await {
            Ok((0, _)) => Ok(()),
            Ok((code, output)) => Err(format!(
                "command exited with {code}: {}",
                String::from_utf8_lossy(&output).trim()
            )),
            Err(e) => Err(e.to_string()),
        };
    }
    if let Some(http) = &probe.http_get {
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .or_else(|| pod_ip.map(str::to_owned))
            .ok_or("the pod has no IP yet")?;
        let port = port(c, &http.port)?;
        if http.scheme.as_deref() == Some("HTTPS") {
            return Err("HTTPS probes are not supported by this agent yet".into());
        }
        let path = http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
        );
        for h in http.http_headers.iter().flatten() {
            request.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        request.push_str("\r\n");
        let exchange = async {
            let mut stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.write_all(request.as_bytes()).await?;
            let mut head = vec![0u8; 64];
            let n = stream.read(&mut head).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
        };
        return match tokio::time::timeout(limit, exchange).await {
            Err(_) => Err(format!(
                "Get \"http://{host}:{port}{path}\": context deadline exceeded"
            )),
            Ok(Err(e)) => Err(format!("Get \"http://{host}:{port}{path}\": {e}")),
            Ok(Ok(head)) => {
                let code = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse::<u16>().ok())
                    .unwrap_or(0);
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("HTTP probe failed with statuscode: {code}"))
                }
            }
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .or_else(|| pod_ip.map(str::to_owned))
            .ok_or("the pod has no IP yet")?;
        let port = port(c, &tcp.port)?;
        return match tokio::time::timeout(limit, TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Err(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    Err("gRPC probes are not supported by this agent yet".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_ports_resolve_through_the_container_ports() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .expect("container");
        assert_eq!(port(&c, &IntOrString::String("http".into())), Ok(8080));
        assert_eq!(port(&c, &IntOrString::Int(81)), Ok(81));
        assert!(port(&c, &IntOrString::String("nope".into())).is_err());
    }

    #[test]
    fn containers_without_probes_are_started_and_ready() {
        let c: Container = serde_json::from_value(serde_json::json!({"name": "c"})).expect("c");
        let p = Prober::default();
        assert!(p.started(&c, "id") && p.ready(&c, "id"));
        let probed: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "readinessProbe": {"exec": {"command": ["true"]}}
        }))
        .expect("c");
        assert!(p.started(&probed, "id"));
        assert!(
            !p.ready(&probed, "id"),
            "not ready before the first success"
        );
    }
}
