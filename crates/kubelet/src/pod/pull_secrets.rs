//! Registry credentials from a pod's `imagePullSecrets` (`kubernetes.io/dockerconfigjson` and
//! the older `kubernetes.io/dockercfg`), matched to an image's registry as upstream's
//! credential provider does, and handed to CRI's PullImage. Credentials are never logged.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_cri::v1::AuthConfig;

/// The registry host of an image reference (`docker.io` when the first path part is not a
/// host).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_owned()
        }
        _ => "docker.io".to_owned(),
    }
}

/// The host a docker config key names (`https://index.docker.io/v1/` → `index.docker.io`).
fn key_host(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    let docker = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    host == registry || (docker(&host) && docker(registry))
}

/// The credentials for `image` in the secrets' data (each: the secret's `data`), the first
/// match winning, as upstream tries pull secrets in order.
pub fn credentials(image: &str, secrets: &[BTreeMap<String, Vec<u8>>]) -> Option<AuthConfig> {
    let registry = registry_of(image);
    for data in secrets {
        let auths = if let Some(json) = data.get(".dockerconfigjson") {
            serde_json::from_slice::<serde_json::Value>(json)
                .ok()
                .and_then(|v| v.get("auths").cloned())
        } else {
            data.get(".dockercfg")
                .and_then(|json| serde_json::from_slice::<serde_json::Value>(json).ok())
        };
        let Some(serde_json::Value::Object(auths)) = auths else {
            continue;
        };
        for (key, entry) in auths {
            if !same_registry(&key, &registry) {
                continue;
            }
            let field = |name: &str| {
                entry
                    .get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (mut username, mut password) = (field("username"), field("password"));
            let auth = field("auth");
            if username.is_empty()
                && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&auth)
                && let Ok(text) = String::from_utf8(decoded)
                && let Some((u, p)) = text.split_once(':')
            {
                username = u.to_owned();
                password = p.to_owned();
            }
            return Some(AuthConfig {
                username,
                password,
                auth,
                server_address: key_host(&key),
                ..Default::default()
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(json: serde_json::Value) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            json.to_string().into_bytes(),
        )])
    }

    #[test]
    fn images_name_their_registry() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("registry.k8s.io/pause:3.10"), "registry.k8s.io");
        assert_eq!(registry_of("localhost:5000/x"), "localhost:5000");
    }

    #[test]
    fn credentials_match_the_registry_and_decode_auth() {
        let secrets = [
            secret(serde_json::json!({"auths": {"ghcr.io": {"username": "g", "password": "p"}}})),
            secret(
                serde_json::json!({"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpzZWNyZXQ="}}}),
            ),
        ];
        let docker = credentials("busybox", &secrets).expect("docker hub");
        assert_eq!(
            (docker.username.as_str(), docker.password.as_str()),
            ("user", "secret")
        );
        let ghcr = credentials("ghcr.io/o/app:1", &secrets).expect("ghcr");
        assert_eq!(ghcr.username, "g");
        assert!(credentials("quay.io/x", &secrets).is_none());
    }
}
