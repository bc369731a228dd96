//! Pod volumes on the node: emptyDir, hostPath, configMap, secret and downwardAPI, prepared under
//! `<data-dir>/pods/<uid>/volumes/<plugin>/<name>` (upstream's layout) before the containers
//! start, and turned into CRI mounts for each container's `volumeMounts`.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, Volume};

/// Why a volume cannot be prepared; the message becomes the container's
/// `CreateContainerConfigError` (or the pod event) text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A directory or file could not be written.
    #[error("volume {volume:?}: cannot write {path}: {source}")]
    Io {
        /// The volume.
        volume: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A referenced (non-optional) ConfigMap does not exist.
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    /// A referenced (non-optional) Secret does not exist.
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    /// A volumeMount names no volume of the pod.
    #[error("container {container:?}: volumeMount {volume:?} names no volume of the pod")]
    UnknownVolume {
        /// The container.
        container: String,
        /// The volume name.
        volume: String,
    },
    /// A volume type this agent does not handle yet.
    #[error("volume {0:?}: this volume type is not supported yet")]
    Unsupported(String),
    /// A subPath escapes its volume.
    #[error(
        "container {container:?}: subPath {sub_path:?} must be a relative path inside the volume"
    )]
    BadSubPath {
        /// The container.
        container: String,
        /// The subPath.
        sub_path: String,
    },
}

/// Data of the ConfigMaps and Secrets the pod's volumes use (`None`: not found).
#[derive(Debug, Default)]
pub struct VolumeSources {
    /// ConfigMaps by name.
    pub config_maps: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

/// The ConfigMaps and Secrets the pod's volumes refer to.
pub fn referenced(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(cm) = &v.config_map {
            cms.push(cm.name.clone());
        }
        if let Some(s) = &v.secret
            && let Some(name) = &s.secret_name
        {
            secrets.push(name.clone());
        }
    }
    (cms, secrets)
}

/// `<pods_dir>/<uid>`.
pub fn pod_dir(pods_dir: &Path, uid: &str) -> PathBuf {
    pods_dir.join(uid)
}

fn plugin_dir(volume: &Volume) -> Option<&'static str> {
    if volume.empty_dir.is_some() {
        Some("kubernetes.io~empty-dir")
    } else if volume.config_map.is_some() {
        Some("kubernetes.io~configmap")
    } else if volume.secret.is_some() {
        Some("kubernetes.io~secret")
    } else if volume.downward_api.is_some() {
        Some("kubernetes.io~downward-api")
    } else {
        None
    }
}

/// The host path backing a volume.
pub fn host_path(pod_dir: &Path, volume: &Volume) -> Option<PathBuf> {
    if let Some(hp) = &volume.host_path {
        return Some(PathBuf::from(&hp.path));
    }
    plugin_dir(volume).map(|p| pod_dir.join("volumes").join(p).join(&volume.name))
}

fn io(volume: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let volume = volume.to_owned();
    let path = path.to_path_buf();
    move |source| Error::Io {
        volume,
        path,
        source,
    }
}

/// Creates every volume of the pod (idempotent; configMap and secret contents are rewritten
/// when they changed).
pub fn prepare(pod_dir: &Path, pod: &Pod, sources: &VolumeSources) -> Result<(), Error> {
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let name = &volume.name;
        if let Some(hp) = &volume.host_path {
            let path = Path::new(&hp.path);
            match hp.type_.as_deref() {
                Some("DirectoryOrCreate") => {
                    std::fs::create_dir_all(path).map_err(io(name, path))?;
                }
                Some("FileOrCreate") if !path.exists() => {
                    std::fs::write(path, b"").map_err(io(name, path))?;
                }
                _ => {}
            }
            continue;
        }
        let Some(dir) = host_path(pod_dir, volume) else {
            return Err(Error::Unsupported(name.clone()));
        };
        std::fs::create_dir_all(&dir).map_err(io(name, &dir))?;
        if let Some(empty) = &volume.empty_dir {
            if empty.medium.as_deref() == Some("Memory") && !is_mount_point(&dir) {
                mount_tmpfs(name, &dir, empty.size_limit.as_ref().map(|q| q.0.as_str()))?;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .map_err(io(name, &dir))?;
            continue;
        }
        if let Some(downward) = &volume.downward_api {
            let data = downward_api_files(pod, downward).map_err(|e| Error::Io {
                volume: name.clone(),
                path: dir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            })?;
            write_projection(
                name,
                &dir,
                &data,
                None,
                downward.default_mode.unwrap_or(0o644),
            )?;
            continue;
        }
        let (data, items, mode, optional) = if let Some(cm) = &volume.config_map {
            match sources.config_maps.get(&cm.name).cloned().flatten() {
                Some(d) => (d, cm.items.clone(), cm.default_mode, cm.optional),
                None if cm.optional == Some(true) => {
                    (BTreeMap::new(), None, cm.default_mode, cm.optional)
                }
                None => return Err(Error::ConfigMapNotFound(cm.name.clone())),
            }
        } else if let Some(s) = &volume.secret {
            let secret = s.secret_name.clone().unwrap_or_default();
            match sources.secrets.get(&secret).cloned().flatten() {
                Some(d) => (d, s.items.clone(), s.default_mode, s.optional),
                None if s.optional == Some(true) => {
                    (BTreeMap::new(), None, s.default_mode, s.optional)
                }
                None => return Err(Error::SecretNotFound(secret)),
            }
        } else {
            continue;
        };
        let _ = optional;
        write_projection(name, &dir, &data, items.as_deref(), mode.unwrap_or(0o644))?;
    }
    Ok(())
}

/// A map field as upstream's downward API writes it: sorted `key="value"` lines.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The files of a downwardAPI volume: path → content.
pub fn downward_api_files(
    pod: &Pod,
    volume: &k8s_openapi::api::core::v1::DownwardAPIVolumeSource,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    for item in volume.items.iter().flatten() {
        let value = if let Some(field) = &item.field_ref {
            match field.field_path.as_str() {
                "metadata.labels" => format_map(pod.metadata.labels.as_ref()),
                "metadata.annotations" => format_map(pod.metadata.annotations.as_ref()),
                path => super::env::field_value(pod, path, &super::env::Sources::default())
                    .ok_or_else(|| {
                        format!("unsupported fieldRef {path:?} in item {:?}", item.path)
                    })?,
            }
        } else if let Some(r) = &item.resource_field_ref {
            let spec = pod.spec.as_ref();
            let container = spec
                .and_then(|s| {
                    s.containers
                        .iter()
                        .find(|c| Some(c.name.as_str()) == r.container_name.as_deref())
                })
                .ok_or_else(|| {
                    format!("item {:?}: no container {:?}", item.path, r.container_name)
                })?;
            super::env::resource_value(
                container,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                &super::env::Sources::default(),
            )
            .ok_or_else(|| {
                format!(
                    "unsupported resource {:?} in item {:?}",
                    r.resource, item.path
                )
            })?
        } else {
            continue;
        };
        files.insert(item.path.clone(), value.into_bytes());
    }
    Ok(files)
}

/// Writes `data` (or the selected `items`) as files into `dir`.
fn write_projection(
    volume: &str,
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
) -> Result<(), Error> {
    let files: Vec<(String, &Vec<u8>, i32)> = match items {
        Some(items) => items
            .iter()
            .filter_map(|i| {
                data.get(&i.key)
                    .map(|v| (i.path.clone(), v, i.mode.unwrap_or(default_mode)))
            })
            .collect(),
        None => data
            .iter()
            .map(|(k, v)| (k.clone(), v, default_mode))
            .collect(),
    };
    for (rel, content, mode) in files {
        if rel.starts_with('/') || rel.split('/').any(|p| p == "..") {
            continue;
        }
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(volume, parent))?;
        }
        if std::fs::read(&path).ok().as_ref() != Some(content) {
            let tmp = path.with_extension("tug-tmp");
            std::fs::write(&tmp, content).map_err(io(volume, &tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(volume, &path))?;
        }
        let mode = u32::try_from(mode).unwrap_or(0o644) & 0o7777;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io(volume, &path))?;
    }
    Ok(())
}

/// The CRI mounts for `container`'s volumeMounts.
pub fn mounts(pod_dir: &Path, pod: &Pod, container: &Container) -> Result<Vec<cri::Mount>, Error> {
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let volume =
            volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| Error::UnknownVolume {
                    container: container.name.clone(),
                    volume: m.name.clone(),
                })?;
        let mut host =
            host_path(pod_dir, volume).ok_or_else(|| Error::Unsupported(m.name.clone()))?;
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if sub.starts_with('/') || sub.split('/').any(|p| p == "..") {
                return Err(Error::BadSubPath {
                    container: container.name.clone(),
                    sub_path: sub.to_owned(),
                });
            }
            host = host.join(sub);
            if !host.exists() {
                std::fs::create_dir_all(&host).map_err(io(&m.name, &host))?;
            }
        }
        let read_only = m.read_only.unwrap_or(false)
            || volume.config_map.is_some()
            || volume.secret.is_some()
            || volume.downward_api.is_some();
        out.push(cri::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: read_only,
            propagation: match m.mount_propagation.as_deref() {
                Some("HostToContainer") => cri::MountPropagation::PropagationHostToContainer as i32,
                Some("Bidirectional") => cri::MountPropagation::PropagationBidirectional as i32,
                _ => cri::MountPropagation::PropagationPrivate as i32,
            },
            ..Default::default()
        });
    }
    Ok(out)
}

/// Mount points under `dir` (itself included), deepest first.
fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " ").replace("\\134", "\\"))
        .filter(|p| *p == prefix || p.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points.dedup();
    points
}

fn is_mount_point(dir: &Path) -> bool {
    mount_points_under(dir).iter().any(|p| p == dir)
}

/// Mounts a tmpfs for an `emptyDir` with `medium: Memory` (size: its `sizeLimit`, else the
/// kernel's default of half the memory).
fn mount_tmpfs(volume: &str, dir: &Path, size_limit: Option<&str>) -> Result<(), Error> {
    let mut options = "mode=0777".to_owned();
    if let Some(limit) = size_limit
        && let Ok(q) = tug_apimachinery::quantity::Quantity::parse(limit)
        && q.value() > 0
    {
        options.push_str(&format!(",size={}", q.value()));
    }
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
        .arg(dir)
        .output()
        .map_err(io(volume, dir))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Io {
            volume: volume.to_owned(),
            path: dir.to_path_buf(),
            source: std::io::Error::other(format!(
                "mount tmpfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        })
    }
}

/// Removes the pod's directory (volumes included; hostPath volumes live elsewhere), unmounting
/// memory-backed volumes first.
pub fn cleanup(pod_dir: &Path) -> std::io::Result<()> {
    for point in mount_points_under(pod_dir) {
        let status = std::process::Command::new("umount").arg(&point).status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "umount {} failed",
                point.display()
            )));
        }
    }
    match std::fs::remove_dir_all(pod_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "p", "uid": "u"}, "spec": spec}),
        )
        .expect("pod")
    }

    #[test]
    fn empty_dirs_and_config_maps_are_laid_out_as_upstream_and_mounted() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = pod(serde_json::json!({
            "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "app"}}],
            "containers": [{"name": "c", "volumeMounts": [
                {"name": "scratch", "mountPath": "/data"},
                {"name": "cfg", "mountPath": "/etc/app"}]}]
        }));
        let sources = VolumeSources {
            config_maps: BTreeMap::from([(
                "app".into(),
                Some(BTreeMap::from([("a.conf".into(), b"x=1".to_vec())])),
            )]),
            ..Default::default()
        };
        prepare(dir.path(), &p, &sources).expect("prepare");
        let cm = dir
            .path()
            .join("volumes/kubernetes.io~configmap/cfg/a.conf");
        assert_eq!(std::fs::read(cm).expect("file"), b"x=1");
        let spec = p.spec.clone().expect("spec");
        let m = mounts(dir.path(), &p, &spec.containers[0]).expect("mounts");
        assert_eq!(m[0].container_path, "/data");
        assert!(
            m[0].host_path
                .ends_with("volumes/kubernetes.io~empty-dir/scratch")
        );
        assert!(m[1].readonly);
    }

    #[test]
    fn a_missing_config_map_is_an_error_unless_optional() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = pod(
            serde_json::json!({"volumes": [{"name": "v", "configMap": {"name": "gone"}}], "containers": []}),
        );
        let err = prepare(dir.path(), &p, &VolumeSources::default()).expect_err("missing");
        assert_eq!(err.to_string(), "configmap \"gone\" not found");
        let p = pod(
            serde_json::json!({"volumes": [{"name": "v", "configMap": {"name": "gone", "optional": true}}], "containers": []}),
        );
        prepare(dir.path(), &p, &VolumeSources::default()).expect("optional");
    }

    #[test]
    fn downward_api_volumes_write_fields_and_label_maps() {
        let dir = tempfile::tempdir().expect("tmp");
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"b": "2", "a": "1"}},
            "spec": {"volumes": [{"name": "info", "downwardAPI": {"items": [
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}}],
                "containers": [{"name": "c", "resources": {"limits": {"memory": "32Mi"}}}]}
        }))
        .expect("pod");
        prepare(dir.path(), &p, &VolumeSources::default()).expect("prepare");
        let read = |f: &str| {
            std::fs::read_to_string(
                dir.path()
                    .join("volumes/kubernetes.io~downward-api/info")
                    .join(f),
            )
            .expect("file")
        };
        assert_eq!(read("name"), "p");
        assert_eq!(read("labels"), "a=\"1\"\nb=\"2\"");
        assert_eq!(read("mem"), "32");
    }

    #[test]
    fn sub_paths_cannot_escape_the_volume() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = pod(
            serde_json::json!({"volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/x", "subPath": "../../etc"}]}]}),
        );
        let spec = p.spec.clone().expect("spec");
        assert!(matches!(
            mounts(dir.path(), &p, &spec.containers[0]),
            Err(Error::BadSubPath { .. })
        ));
    }
}
