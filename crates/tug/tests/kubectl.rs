//! The API server as kubectl 1.32 and kube-rs use it: the real `tug server` binary, driven by
//! the real `/usr/bin/kubectl` through everyday commands (discovery, create, get in every
//! output format, apply in both flavours, patch, edit, watch, delete, and the errors users
//! see), and by kube-rs (list, list-watch and streaming-list watchers, server-side apply).
//!
//! Assertions compare with what kubectl prints against an upstream v1.33 API server.

mod support;

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use support::{Tug, kubectl_path, ready_server, text};

/// How long a watching kubectl may take to print an expected line (a deadline, not a wait).
const LINE_DEADLINE: Duration = Duration::from_secs(30);

/// kubectl against one server, with a private HOME (and so a private discovery cache).
struct Kubectl {
    kubeconfig: PathBuf,
    home: PathBuf,
    workdir: PathBuf,
}

impl Kubectl {
    fn new(tug: &Tug, workdir: &Path) -> anyhow::Result<Self> {
        let home = workdir.join("home");
        fs::create_dir_all(&home)?;
        Ok(Self {
            kubeconfig: tug.kubeconfig(),
            home,
            workdir: workdir.to_path_buf(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(kubectl_path());
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .current_dir(&self.workdir);
        command
    }

    /// Runs kubectl to completion.
    fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .context("run kubectl")
    }

    /// Runs kubectl with extra environment variables.
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
        let mut command = self.command(args);
        for (k, v) in env {
            command.env(k, v);
        }
        command.stdin(Stdio::null()).output().context("run kubectl")
    }

    /// Runs kubectl and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args)?;
        ensure!(
            out.status.success(),
            "kubectl {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        Ok(text(&out.stdout))
    }

    /// Runs kubectl and requires failure; returns stderr.
    fn fails(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args)?;
        ensure!(
            !out.status.success(),
            "kubectl {} succeeded but should have failed:\n{}",
            args.join(" "),
            text(&out.stdout)
        );
        Ok(text(&out.stderr))
    }

    /// Starts a long-running kubectl (a watch) whose output lines arrive on channels.
    fn spawn(&self, args: &[&str]) -> anyhow::Result<Running> {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn kubectl")?;
        let stdout = lines_of(child.stdout.take().context("stdout")?);
        let stderr = lines_of(child.stderr.take().context("stderr")?);
        Ok(Running {
            child,
            stdout,
            stderr,
        })
    }

    /// Writes a file in the work directory and returns its path as a string.
    fn file(&self, name: &str, content: &str) -> anyhow::Result<String> {
        let path = self.workdir.join(name);
        fs::write(&path, content)?;
        path.to_str().map(str::to_string).context("utf-8 path")
    }
}

/// A line reader on its own thread.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A kubectl still running; killed when dropped.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Running {
    /// Waits for a stdout line satisfying `want`; returns every line seen until then.
    fn stdout_until(&self, want: impl Fn(&str) -> bool) -> anyhow::Result<Vec<String>> {
        until(&self.stdout, want)
    }

    /// Waits for a stderr line satisfying `want`.
    fn stderr_until(&self, want: impl Fn(&str) -> bool) -> anyhow::Result<Vec<String>> {
        until(&self.stderr, want)
    }

    /// Waits for the process to end by itself.
    fn wait(mut self) -> anyhow::Result<(std::process::ExitStatus, Vec<String>)> {
        let status = self.child.wait()?;
        let lines = self.stdout.try_iter().collect();
        Ok((status, lines))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn until(rx: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool) -> anyhow::Result<Vec<String>> {
    let deadline = std::time::Instant::now() + LINE_DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = want(&line);
                seen.push(line);
                if done {
                    return Ok(seen);
                }
            }
            Err(_) => bail!("expected line not printed within {LINE_DEADLINE:?}; saw {seen:#?}"),
        }
    }
}

/// kubectl's deletion messages without the namespace suffix newer kubectl versions add
/// (`configmap "x" deleted from default namespace` since 1.33/1.34, `configmap "x" deleted`
/// before), so one expectation holds for every kubectl the suite runs with.
fn deletions(out: &str) -> String {
    out.lines()
        .map(|line| match line.find(" deleted from ") {
            Some(at) if line.ends_with(" namespace") => &line[..at + " deleted".len()],
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Output without ANSI colour sequences.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The rows of a table printed by kubectl, split on whitespace.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// A server and kubectl for it, in a fresh directory.
async fn setup() -> anyhow::Result<(tempfile::TempDir, Tug, Kubectl)> {
    let dir = tempfile::tempdir()?;
    let tug = ready_server(dir.path(), &[]).await?;
    let work = dir.path().join("work");
    fs::create_dir_all(&work)?;
    let kubectl = Kubectl::new(&tug, &work)?;
    Ok((dir, tug, kubectl))
}

#[tokio::test]
async fn kubectl_discovers_resources_short_names_and_schemas() -> anyhow::Result<()> {
    let (_dir, tug, k) = setup().await?;

    let info = plain(&k.ok(&["cluster-info"])?);
    ensure!(
        info.contains(&format!(
            "Kubernetes control plane is running at https://127.0.0.1:{}",
            tug.addr().port()
        )),
        "{info}"
    );

    let version = k.ok(&["version"])?;
    ensure!(
        version.contains("Server Version: v1.33.0+tug."),
        "{version}"
    );

    let resources = k.ok(&["api-resources"])?;
    let table = rows(&resources);
    ensure!(
        table.first().map(|h| h.join(" ")).as_deref()
            == Some("NAME SHORTNAMES APIVERSION NAMESPACED KIND"),
        "{resources}"
    );
    for want in [
        &["deployments", "deploy", "apps/v1", "true", "Deployment"][..],
        &["namespaces", "ns", "v1", "false", "Namespace"],
        &["pods", "po", "v1", "true", "Pod"],
        &["secrets", "v1", "true", "Secret"],
        &[
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler",
        ],
        &["cronjobs", "cj", "batch/v1", "true", "CronJob"],
    ] {
        ensure!(
            table.iter().any(|row| row == want),
            "api-resources lacks {want:?}:\n{resources}"
        );
    }
    let namespaced = k.ok(&["api-resources", "--namespaced=false", "-o", "name"])?;
    ensure!(namespaced.lines().any(|l| l == "nodes"), "{namespaced}");
    ensure!(!namespaced.lines().any(|l| l == "pods"), "{namespaced}");

    let versions = k.ok(&["api-versions"])?;
    for want in [
        "v1",
        "apps/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "rbac.authorization.k8s.io/v1",
    ] {
        ensure!(
            versions.lines().any(|l| l == want),
            "api-versions lacks {want}:\n{versions}"
        );
    }

    let explained = k.ok(&["explain", "pod.spec.containers.resources"])?;
    for want in [
        "KIND:       Pod",
        "VERSION:    v1",
        "FIELD: resources <ResourceRequirements>",
        "limits\t<map[string]Quantity>",
    ] {
        ensure!(
            explained.contains(want),
            "explain lacks {want:?}:\n{explained}"
        );
    }

    let metrics = k.ok(&["get", "--raw", "/metrics"])?;
    ensure!(metrics.contains("apiserver_request_total{"), "{metrics}");
    Ok(())
}

const MULTI_DOC: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: front
  labels: {app: front}
spec:
  selector: {app: front}
  ports:
  - port: 80
    targetPort: http
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {app: solo}
spec:
  containers:
  - name: main
    image: busybox
    command: [sleep, '3600']
";

#[tokio::test]
async fn kubectl_creates_objects_and_reads_them_in_every_format() -> anyhow::Result<()> {
    let (_dir, _tug, k) = setup().await?;

    assert_eq!(
        k.ok(&["create", "namespace", "x"])?,
        "namespace/x created\n"
    );
    // A typed client: the body is protobuf.
    assert_eq!(
        k.ok(&[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=3"
        ])?,
        "deployment.apps/web created\n"
    );
    assert_eq!(
        k.ok(&["create", "configmap", "c", "--from-literal=a=b"])?,
        "configmap/c created\n"
    );
    assert_eq!(
        k.ok(&["create", "secret", "generic", "s", "--from-literal=k=v"])?,
        "secret/s created\n"
    );
    let multi = k.file("multi.yaml", MULTI_DOC)?;
    assert_eq!(
        k.ok(&["create", "-f", &multi])?,
        "service/front created\nconfigmap/settings created\npod/solo created\n"
    );

    let everything = k.ok(&["get", "pods,deploy,svc,cm,secret", "-A"])?;
    for want in [
        "pod/solo",
        "deployment.apps/web",
        "service/front",
        "configmap/c",
        "configmap/settings",
        "secret/s",
    ] {
        ensure!(
            everything
                .lines()
                .any(|l| l.starts_with("default") && l.contains(want)),
            "get -A lacks {want}:\n{everything}"
        );
    }
    ensure!(everything.contains("NAMESPACE"), "{everything}");

    let wide = rows(&k.ok(&["get", "deploy", "web", "-o", "wide"])?);
    ensure!(
        wide.first().map(|h| h.join(" ")).as_deref()
            == Some("NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"),
        "{wide:?}"
    );
    ensure!(
        wide.get(1).is_some_and(|r| r[0] == "web"
            && r[1] == "0/3"
            && r[5] == "busybox"
            && r[6] == "busybox"
            && r[7] == "app=web"),
        "{wide:?}"
    );

    let yaml = k.ok(&["get", "deploy", "web", "-o", "yaml"])?;
    for want in [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "replicas: 3",
        "name: web",
    ] {
        ensure!(yaml.contains(want), "yaml lacks {want}:\n{yaml}");
    }
    let json: serde_json::Value = serde_json::from_str(&k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ])?)?;
    assert_eq!(json["spec"]["replicas"], 3);
    assert_eq!(
        json["metadata"]["managedFields"][0]["manager"],
        "kubectl-create"
    );
    assert_eq!(json["metadata"]["managedFields"][0]["operation"], "Update");
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "name"])?,
        "deployment.apps/web\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ])?,
        "busybox"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas"
        ])?,
        "NAME   REPLICAS\nweb    3\n"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "-l", "app=web", "-o", "name"])?,
        "deployment.apps/web\n"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "-l", "app=nothing", "-o", "name"])?,
        ""
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=c",
            "-o",
            "name"
        ])?,
        "configmap/c\n"
    );
    let labels = k.ok(&["get", "deploy", "web", "--show-labels"])?;
    ensure!(
        labels.lines().next().is_some_and(|h| h.ends_with("LABELS")),
        "{labels}"
    );
    ensure!(labels.contains("app=web"), "{labels}");
    let secret = k.ok(&["get", "secret", "s", "-o", "jsonpath={.data.k}"])?;
    assert_eq!(secret, "dg==");

    // Paging: ten objects fetched two at a time.
    let mut docs = String::new();
    for i in 0..10 {
        docs.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: page-{i:02}\n  namespace: x\n"
        ));
    }
    let pages = k.file("pages.yaml", &docs)?;
    k.ok(&["create", "-f", &pages])?;
    let out = k.run(&[
        "get",
        "cm",
        "-n",
        "x",
        "--chunk-size=2",
        "-o",
        "name",
        "-v=6",
    ])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let names: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let want: Vec<String> = (0..10).map(|i| format!("configmap/page-{i:02}")).collect();
    assert_eq!(names, want);
    let stderr = text(&out.stderr);
    let requests = stderr
        .lines()
        .filter(|l| l.contains("/namespaces/x/configmaps?") && l.contains("limit=2"))
        .count();
    ensure!(
        requests == 5,
        "expected 5 pages of 2, saw {requests}:\n{stderr}"
    );
    ensure!(stderr.contains("continue="), "{stderr}");

    let described = k.ok(&["describe", "deployment", "web"])?;
    for want in [
        "Name:",
        "web",
        "Namespace:",
        "default",
        "Replicas:",
        "3 desired",
        "busybox",
    ] {
        ensure!(
            described.contains(want),
            "describe lacks {want:?}:\n{described}"
        );
    }

    let all = k.ok(&["get", "all"])?;
    for want in ["pod/solo", "service/front", "deployment.apps/web"] {
        ensure!(all.contains(want), "get all lacks {want}:\n{all}");
    }
    ensure!(
        !all.contains("configmap/"),
        "configmaps are not in the `all` category:\n{all}"
    );
    Ok(())
}

const API_V1: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels: {app: api}
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: app
        image: busybox
      - name: sidecar
        image: busybox
";

#[tokio::test]
async fn kubectl_applies_patches_and_edits() -> anyhow::Result<()> {
    let (_dir, _tug, k) = setup().await?;

    let file = k.file("api.yaml", API_V1)?;
    assert_eq!(
        k.ok(&["apply", "-f", &file])?,
        "deployment.apps/api created\n"
    );
    assert_eq!(
        k.ok(&["apply", "-f", &file])?,
        "deployment.apps/api unchanged\n"
    );

    // A container added outside the file survives the next apply (strategic merge).
    assert_eq!(
        k.ok(&[
            "patch",
            "deployment",
            "api",
            "--type=strategic",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"extra","image":"busybox"}]}}}}"#,
        ])?,
        "deployment.apps/api patched\n"
    );
    k.file(
        "api.yaml",
        &API_V1.replace("replicas: 2", "replicas: 3").replace(
            "image: busybox\n      - name: sidecar",
            "image: busybox:1.36\n      - name: sidecar",
        ),
    )?;
    assert_eq!(
        k.ok(&["apply", "-f", &file])?,
        "deployment.apps/api configured\n"
    );
    let containers = k.ok(&[
        "get",
        "deploy",
        "api",
        "-o",
        "jsonpath={range .spec.template.spec.containers[*]}{.name}={.image} {end}",
    ])?;
    let mut containers: Vec<&str> = containers.split_whitespace().collect();
    containers.sort_unstable();
    assert_eq!(
        containers,
        ["app=busybox:1.36", "extra=busybox", "sidecar=busybox"]
    );
    assert_eq!(
        k.ok(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"])?,
        "3"
    );

    // diff: a dry-run server-side apply compared with the live object.
    k.file("api.yaml", &API_V1.replace("replicas: 2", "replicas: 4"))?;
    let diff = k.run(&["diff", "-f", &file])?;
    assert_eq!(
        diff.status.code(),
        Some(1),
        "diff exits 1 when there are differences: {}",
        text(&diff.stderr)
    );
    let shown = text(&diff.stdout);
    ensure!(
        shown.contains("-  replicas: 3") && shown.contains("+  replicas: 4"),
        "{shown}"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"])?,
        "3",
        "diff changes nothing"
    );

    // Server-side apply with two managers.
    let ssa = k.file(
        "ssa.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n",
    )?;
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", &ssa])?,
        "configmap/ssa serverside-applied\n"
    );
    let other = k.file(
        "ssa2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"2\"\n",
    )?;
    let conflict = k.fails(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        &other,
    ])?;
    ensure!(
        conflict.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.a"#),
        "{conflict}"
    );
    assert_eq!(
        k.ok(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            &other
        ])?,
        "configmap/ssa serverside-applied\n"
    );
    assert_eq!(
        k.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.a}"])?,
        "2"
    );
    let managers = k.ok(&[
        "get",
        "cm",
        "ssa",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ])?;
    ensure!(
        managers.split_whitespace().any(|m| m == "other"),
        "{managers}"
    );

    // Patches of every type, labels and annotations.
    assert_eq!(
        k.ok(&[
            "patch",
            "deployment",
            "api",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":4}}"#
        ])?,
        "deployment.apps/api patched\n"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "deployment",
            "api",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":5}]"#
        ])?,
        "deployment.apps/api patched\n"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"])?,
        "5"
    );
    assert_eq!(
        k.ok(&["label", "deployment", "api", "tier=backend"])?,
        "deployment.apps/api labeled\n"
    );
    assert_eq!(
        k.ok(&["annotate", "deployment", "api", "note=one"])?,
        "deployment.apps/api annotated\n"
    );
    let refused = k.fails(&["annotate", "deployment", "api", "note=two"])?;
    ensure!(refused.contains("--overwrite is false"), "{refused}");
    assert_eq!(
        k.ok(&["annotate", "--overwrite", "deployment", "api", "note=two"])?,
        "deployment.apps/api annotated\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "api",
            "-o",
            "jsonpath={.metadata.labels.tier} {.metadata.annotations.note}"
        ])?,
        "backend two"
    );

    assert_eq!(
        k.ok(&["scale", "deployment", "api", "--replicas=6"])?,
        "deployment.apps/api scaled\n"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"])?,
        "6"
    );
    assert_eq!(
        k.ok(&["set", "image", "deployment/api", "app=busybox:1.37"])?,
        "deployment.apps/api image updated\n"
    );

    // edit: the "editor" is a script changing the replicas.
    let editor = k.workdir.join("editor.sh");
    fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/replicas: 6/replicas: 7/' \"$1\"\n",
    )?;
    fs::set_permissions(&editor, fs::Permissions::from_mode(0o755))?;
    let editor = editor.to_str().context("utf-8 path")?;
    let edited = k.run_env(
        &["edit", "deployment", "api"],
        &[("EDITOR", editor), ("KUBE_EDITOR", editor)],
    )?;
    ensure!(edited.status.success(), "{}", text(&edited.stderr));
    assert_eq!(text(&edited.stdout), "deployment.apps/api edited\n");
    assert_eq!(
        k.ok(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"])?,
        "7"
    );

    // replace: the whole object back with another image.
    let live = k.ok(&["get", "deploy", "api", "-o", "yaml"])?;
    let replaced = k.file(
        "replace.yaml",
        &live.replace("busybox:1.37", "busybox:1.38"),
    )?;
    assert_eq!(
        k.ok(&["replace", "-f", &replaced])?,
        "deployment.apps/api replaced\n"
    );
    let image = k.ok(&[
        "get",
        "deploy",
        "api",
        "-o",
        r#"jsonpath={.spec.template.spec.containers[?(@.name=="app")].image}"#,
    ])?;
    assert_eq!(image, "busybox:1.38");
    Ok(())
}

#[tokio::test]
async fn kubectl_watches_print_later_changes() -> anyhow::Result<()> {
    let (_dir, _tug, k) = setup().await?;
    k.ok(&["create", "configmap", "w", "--from-literal=a=1"])?;

    let watch = k.spawn(&[
        "get",
        "configmap",
        "w",
        "-w",
        "-o",
        "jsonpath={.data.a}{\"\\n\"}",
    ])?;
    watch.stdout_until(|l| l == "1")?;
    k.ok(&[
        "patch",
        "configmap",
        "w",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ])?;
    watch.stdout_until(|l| l == "2")?;
    drop(watch);

    // The table form: a later change prints a new row.
    let table = k.spawn(&["get", "configmap", "w", "-w"])?;
    let first = table.stdout_until(|l| l.starts_with("w "))?;
    ensure!(first[0].starts_with("NAME"), "{first:?}");
    k.ok(&[
        "patch",
        "configmap",
        "w",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"3"}}"#,
    ])?;
    let later =
        table.stdout_until(|l| l.starts_with("w ") && l.split_whitespace().nth(1) == Some("2"))?;
    ensure!(!later.is_empty(), "{later:?}");
    drop(table);

    // --watch-only: nothing for what exists, then the new object.
    let only = k.spawn(&[
        "get",
        "configmap",
        "-w",
        "--watch-only",
        "-o",
        "name",
        "-v=6",
    ])?;
    only.stderr_until(|l| l.contains("watch=true") && l.contains("200 OK"))?;
    k.ok(&["create", "configmap", "late"])?;
    let seen = only.stdout_until(|l| l == "configmap/late")?;
    ensure!(!seen.contains(&"configmap/w".to_string()), "{seen:?}");
    Ok(())
}

#[tokio::test]
async fn kubectl_deletes_by_name_label_file_and_force_and_waits() -> anyhow::Result<()> {
    let (_dir, _tug, k) = setup().await?;

    k.ok(&["create", "configmap", "d1"])?;
    assert_eq!(
        deletions(&k.ok(&["delete", "configmap", "d1"])?),
        "configmap \"d1\" deleted\n"
    );

    let grouped = k.file(
        "grouped.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: g1\n  labels: {group: g}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: g2\n  labels: {group: g}\n",
    )?;
    k.ok(&["create", "-f", &grouped])?;
    assert_eq!(
        deletions(&k.ok(&["delete", "configmap", "-l", "group=g"])?),
        "configmap \"g1\" deleted\nconfigmap \"g2\" deleted\n"
    );
    assert_eq!(
        k.ok(&["get", "configmap", "-l", "group=g", "-o", "name"])?,
        ""
    );

    let pod = k.file(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
    )?;
    k.ok(&["create", "-f", &pod])?;
    let forced = k.run(&["delete", "pod", "p", "--grace-period=0", "--force"])?;
    ensure!(forced.status.success(), "{}", text(&forced.stderr));
    assert_eq!(
        deletions(&text(&forced.stdout)),
        "pod \"p\" force deleted\n"
    );
    ensure!(
        text(&forced.stderr).contains("Immediate deletion does not wait for confirmation"),
        "{}",
        text(&forced.stderr)
    );
    k.fails(&["get", "pod", "p"])?;

    let from_file = k.file(
        "ff.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromfile\n",
    )?;
    k.ok(&["create", "-f", &from_file])?;
    assert_eq!(
        deletions(&k.ok(&["delete", "-f", &from_file])?),
        "configmap \"fromfile\" deleted\n"
    );

    k.ok(&["create", "configmap", "wd"])?;
    let wait = k.spawn(&[
        "wait",
        "--for=delete",
        "configmap/wd",
        "--timeout=60s",
        "-v=6",
    ])?;
    wait.stderr_until(|l| l.contains("watch=true") && l.contains("200 OK"))?;
    k.ok(&["delete", "configmap", "wd", "--wait=false"])?;
    let (status, lines) = wait.wait()?;
    ensure!(status.success(), "wait failed: {lines:?}");
    assert_eq!(lines, ["configmap/wd condition met"]);
    Ok(())
}

#[tokio::test]
async fn kubectl_prints_upstreams_errors() -> anyhow::Result<()> {
    let (dir, tug, k) = setup().await?;

    assert_eq!(
        k.fails(&["get", "pod", "nope"])?,
        "Error from server (NotFound): pods \"nope\" not found\n"
    );
    k.ok(&["create", "namespace", "twice"])?;
    assert_eq!(
        k.fails(&["create", "namespace", "twice"])?,
        "Error from server (AlreadyExists): namespaces \"twice\" already exists\n"
    );

    // 422 with causes.
    let bad = k.file(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    )?;
    let out = k.run(&["create", "-f", &bad, "-v=8"])?;
    ensure!(!out.status.success());
    let stderr = text(&out.stderr);
    ensure!(
        stderr.contains("The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"),
        "{stderr}"
    );
    ensure!(
        // kubectl logs the response body with its quotes escaped.
        stderr.contains(r#"\"reason\":\"FieldValueInvalid\""#)
            && stderr.contains(r#"\"field\":\"metadata.name\""#),
        "the 422 lists its causes: {stderr}"
    );

    // Unknown fields: strict fails, warn warns and creates.
    let unknown = k.file(
        "unknown.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: odd\nspec:\n  foo: 1\n  selector:\n    matchLabels: {app: odd}\n  template:\n    metadata:\n      labels: {app: odd}\n    spec:\n      containers:\n      - name: c\n        image: busybox\n",
    )?;
    let strict = k.fails(&["create", "-f", &unknown, "--validate=strict"])?;
    assert_eq!(
        strict,
        format!(
            "Error from server (BadRequest): error when creating \"{unknown}\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.foo\"\n"
        )
    );
    let warned = k.run(&["create", "-f", &unknown, "--validate=warn"])?;
    ensure!(warned.status.success(), "{}", text(&warned.stderr));
    assert_eq!(
        text(&warned.stderr),
        "Warning: unknown field \"spec.foo\"\n"
    );
    assert_eq!(text(&warned.stdout), "deployment.apps/odd created\n");

    // A stale resourceVersion.
    k.ok(&["create", "configmap", "c", "--from-literal=a=b"])?;
    let stale = k.file(
        "stale.yaml",
        &k.ok(&["get", "configmap", "c", "-o", "yaml"])?,
    )?;
    k.ok(&[
        "patch",
        "configmap",
        "c",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"c"}}"#,
    ])?;
    assert_eq!(
        k.fails(&["replace", "-f", &stale])?,
        format!(
            "Error from server (Conflict): error when replacing \"{stale}\": Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again\n"
        )
    );

    // Bad credentials are 401, never anonymous.
    let mut doc: serde_json::Value =
        serde_norway::from_str(&fs::read_to_string(tug.kubeconfig())?)?;
    doc["users"][0]["user"] = serde_json::json!({"token": "not-a-token"});
    let broken = dir.path().join("broken.kubeconfig");
    fs::write(&broken, serde_norway::to_string(&doc)?)?;
    let out = Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(&broken)
        .args(["get", "pods"])
        .env("HOME", &k.home)
        .output()?;
    ensure!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim_end(),
        "error: You must be logged in to the server (Unauthorized)"
    );
    Ok(())
}

#[tokio::test]
async fn kube_rs_lists_watches_and_applies() -> anyhow::Result<()> {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::{
        Api,
        api::{ListParams, Patch, PatchParams, PostParams},
        runtime::{WatchStreamExt, watcher},
    };

    tug_apiserver::install_crypto_provider();
    let (_dir, tug, _k) = setup().await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(tug.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = kube::Client::try_from(config)?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");

    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "one"}, "data": {"a": "1"}
    }))?;
    cms.create(&PostParams::default(), &cm).await?;
    let list = cms.list(&ListParams::default()).await?;
    assert!(
        list.items
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some("one"))
    );
    assert!(list.metadata.resource_version.is_some());

    let deadline = Duration::from_secs(30);
    let configs = [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
    ];
    for (i, config) in configs.into_iter().enumerate() {
        let mut stream = watcher(cms.clone(), config).applied_objects().boxed();
        // The initial state (every existing object) comes first, in name order.
        let initial = tokio::time::timeout(deadline, async {
            while let Some(cm) = stream.try_next().await? {
                if cm.metadata.name.as_deref() == Some("one") {
                    return Ok::<_, anyhow::Error>(true);
                }
            }
            Ok(false)
        })
        .await??;
        assert!(
            initial,
            "the watcher's initial state has the existing object"
        );
        let name = format!("later-{i}");
        let later: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        cms.create(&PostParams::default(), &later).await?;
        let seen = tokio::time::timeout(deadline, async {
            while let Some(cm) = stream.try_next().await? {
                if cm.metadata.name.as_deref() == Some(name.as_str()) {
                    return Ok::<_, anyhow::Error>(true);
                }
            }
            Ok(false)
        })
        .await??;
        assert!(seen, "the watcher saw the later object");
    }

    let applied = cms
        .patch(
            "ssa",
            &PatchParams::apply("kube-test"),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "ssa"}, "data": {"k": "v"}
            })),
        )
        .await?;
    assert_eq!(
        applied.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("v")
    );
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["kube-test"]);
    Ok(())
}
