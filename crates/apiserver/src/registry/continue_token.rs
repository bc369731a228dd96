//! List continuation tokens, byte-compatible with upstream's
//! (`k8s.io/apiserver/pkg/storage/continue.go`): unpadded URL-safe base64 of the JSON
//! `{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<next key, relative to the list prefix>"}`.
//!
//! The revision pins every page of a list to one snapshot; `-1` asks for the newest revision
//! (the token upstream hands out when the pinned revision has been compacted).

use base64::Engine as _;
use serde::Deserialize;
use tug_storage::Revision;

/// The only token version upstream understands.
const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// Why a continue token could not be used; the messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ContinueError {
    /// Not base64 or not JSON.
    #[error("continue key is not valid: {0}")]
    Malformed(String),
    /// A token of another version.
    #[error("continue key is not valid: server does not recognize this encoded version")]
    Version,
    /// A token with revision 0.
    #[error(
        "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
    )]
    Revision,
    /// A token without a start key.
    #[error("continue key is not valid: encoded start key empty")]
    EmptyKey,
    /// A start key that climbs out of the list prefix.
    #[error("continue key is not valid: {0}")]
    Key(String),
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    v: String,
    #[serde(default)]
    rv: Revision,
    #[serde(default)]
    start: String,
}

/// Encodes a token that continues the list of `prefix` at `next_key` (the full datastore key to
/// start from, normally the last returned key plus `\0`), pinned at `revision`.
pub(crate) fn encode(prefix: &str, next_key: &str, revision: Revision) -> String {
    let start = next_key.strip_prefix(prefix).unwrap_or(next_key);
    let json = format!(
        "{{\"v\":{},\"rv\":{revision},\"start\":{}}}",
        go_json_string(TOKEN_VERSION),
        go_json_string(start)
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a token for the list of `prefix`: the full key to continue from and the revision
/// (`-1` or less: the newest).
pub(crate) fn decode(prefix: &str, token: &str) -> Result<(String, Revision), ContinueError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| ContinueError::Malformed(e.to_string()))?;
    let token: Token =
        serde_json::from_slice(&bytes).map_err(|e| ContinueError::Malformed(e.to_string()))?;
    if token.v != TOKEN_VERSION {
        return Err(ContinueError::Version);
    }
    if token.rv == 0 {
        return Err(ContinueError::Revision);
    }
    if token.start.is_empty() {
        return Err(ContinueError::EmptyKey);
    }
    let key = if token.start.starts_with('/') {
        token.start.clone()
    } else {
        format!("/{}", token.start)
    };
    if clean_path(&key) != key {
        return Err(ContinueError::Key(token.start));
    }
    Ok((format!("{prefix}{}", &key[1..]), token.rv))
}

/// Go's `path.Clean` for absolute paths: the token's key must already be clean, so that it
/// cannot escape the list prefix with `..`.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A JSON string as Go's `encoding/json` writes it: HTML-sensitive characters and the line
/// separators escaped, control characters as `\u00XX` except `\n`, `\r`, `\t`.
fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_upstreams_encoding() {
        let token = encode(
            "/registry/pods/default/",
            "/registry/pods/default/web-1\0",
            42,
        );
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .expect("base64");
        assert_eq!(
            String::from_utf8(json).expect("utf-8"),
            r#"{"v":"meta.k8s.io/v1","rv":42,"start":"web-1\u0000"}"#
        );
        assert_eq!(
            decode("/registry/pods/default/", &token),
            Ok(("/registry/pods/default/web-1\0".to_owned(), 42))
        );
    }

    #[test]
    fn bad_tokens_are_refused_with_upstreams_reasons() {
        let enc = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let p = "/registry/pods/";
        assert_eq!(
            decode(p, &enc(r#"{"v":"x","rv":1,"start":"a"}"#)),
            Err(ContinueError::Version)
        );
        assert_eq!(
            decode(p, &enc(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#)),
            Err(ContinueError::Revision)
        );
        assert_eq!(
            decode(p, &enc(r#"{"v":"meta.k8s.io/v1","rv":1,"start":""}"#)),
            Err(ContinueError::EmptyKey)
        );
        assert!(matches!(
            decode(
                p,
                &enc(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../secrets/x"}"#)
            ),
            Err(ContinueError::Key(_))
        ));
        assert!(matches!(decode(p, "!!!"), Err(ContinueError::Malformed(_))));
        assert_eq!(
            decode(
                p,
                &enc(r#"{"v":"meta.k8s.io/v1","rv":-1,"start":"ns/a\u0000"}"#)
            ),
            Ok(("/registry/pods/ns/a\0".to_owned(), -1))
        );
    }
}
