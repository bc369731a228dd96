//! `/version`: the server's version in upstream's `version.Info` shape. Tug reports the
//! Kubernetes API version it implements (1.33), so clients such as kubectl apply their version
//! skew rules to that; the build metadata (`+tug.<crate version>`) says what actually runs.
//!
//! The build can stamp `TUG_GIT_COMMIT`, `TUG_GIT_TREE_STATE` and `TUG_BUILD_DATE` through the
//! environment; the toolchain fills `goVersion` (which names `rustc`, not Go).

use axum::{
    Router,
    body::Body,
    http::{HeaderValue, header},
    response::Response,
    routing::get,
};
use serde::{Deserialize, Serialize};

/// The Kubernetes major version implemented.
pub const KUBERNETES_MAJOR: &str = "1";
/// The Kubernetes minor version implemented.
pub const KUBERNETES_MINOR: &str = "33";
/// The Kubernetes patch release whose behaviour is followed.
pub const KUBERNETES_PATCH: &str = "0";

/// Upstream's `version.Info`, serialised with its field names and order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// Major version of the binary (`1`).
    pub major: String,
    /// Minor version of the binary (`33`).
    pub minor: String,
    /// Major version of the emulated version.
    pub emulation_major: String,
    /// Minor version of the emulated version.
    pub emulation_minor: String,
    /// Major version of the minimum compatibility version.
    pub min_compatibility_major: String,
    /// Minor version of the minimum compatibility version (one below `minor`).
    pub min_compatibility_minor: String,
    /// The semantic version, e.g. `v1.33.0+tug.0.1.0`.
    pub git_version: String,
    /// The commit built, if the build recorded it.
    pub git_commit: String,
    /// `clean` or `dirty`, if the build recorded it.
    pub git_tree_state: String,
    /// RFC 3339 build time, if the build recorded it.
    pub build_date: String,
    /// The compiler version (upstream: Go's; here: rustc's).
    pub go_version: String,
    /// The compiler.
    pub compiler: String,
    /// `os/arch` in Go's names, e.g. `linux/amd64`.
    pub platform: String,
}

impl VersionInfo {
    /// The version of this build.
    pub fn current() -> Self {
        let min_compatibility_minor = KUBERNETES_MINOR
            .parse::<u32>()
            .map(|m| m.saturating_sub(1).to_string())
            .unwrap_or_default();
        Self {
            major: KUBERNETES_MAJOR.into(),
            minor: KUBERNETES_MINOR.into(),
            emulation_major: KUBERNETES_MAJOR.into(),
            emulation_minor: KUBERNETES_MINOR.into(),
            min_compatibility_major: KUBERNETES_MAJOR.into(),
            min_compatibility_minor,
            git_version: format!(
                "v{KUBERNETES_MAJOR}.{KUBERNETES_MINOR}.{KUBERNETES_PATCH}+tug.{}",
                env!("CARGO_PKG_VERSION")
            ),
            git_commit: option_env!("TUG_GIT_COMMIT").unwrap_or("").into(),
            git_tree_state: option_env!("TUG_GIT_TREE_STATE").unwrap_or("").into(),
            build_date: option_env!("TUG_BUILD_DATE")
                .unwrap_or("1970-01-01T00:00:00Z")
                .into(),
            go_version: env!("TUG_RUSTC_VERSION").into(),
            compiler: "rustc".into(),
            platform: format!("{}/{}", go_os(), go_arch()),
        }
    }

    /// The route of `/version` (and `/version/`).
    pub fn router(&self) -> Router {
        // Upstream indents this document with two spaces and adds no trailing newline.
        let body = serde_json::to_string_pretty(self).unwrap_or_default();
        let handler = move || {
            let body = body.clone();
            async move {
                let mut response = Response::new(Body::from(body));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
        };
        Router::new()
            .route("/version", get(handler.clone()))
            .route("/version/", get(handler))
    }
}

/// Go's `GOOS` for this target.
fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// Go's `GOARCH` for this target.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_info_has_upstreams_fields_in_upstreams_order() {
        let info = VersionInfo::current();
        let json = serde_json::to_string(&info).expect("json");
        let keys: Vec<&str> = json
            .trim_matches(|c| c == '{' || c == '}')
            .split(",\"")
            .filter_map(|kv| kv.trim_start_matches('"').split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "major",
                "minor",
                "emulationMajor",
                "emulationMinor",
                "minCompatibilityMajor",
                "minCompatibilityMinor",
                "gitVersion",
                "gitCommit",
                "gitTreeState",
                "buildDate",
                "goVersion",
                "compiler",
                "platform"
            ]
        );
        assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
        assert_eq!(info.min_compatibility_minor, "32");
        assert!(
            info.git_version.starts_with("v1.33.0+tug."),
            "{}",
            info.git_version
        );
    }

    #[test]
    fn git_version_is_semver_with_build_metadata() {
        let v = VersionInfo::current().git_version;
        let (core, build) = v
            .trim_start_matches('v')
            .split_once('+')
            .expect("build metadata");
        assert_eq!(core.split('.').count(), 3);
        assert!(core.split('.').all(|n| n.parse::<u64>().is_ok()));
        assert!(
            build
                .split('.')
                .all(|id| !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        );
    }
}
