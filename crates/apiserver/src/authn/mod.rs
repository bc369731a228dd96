//! Request authentication: who is asking.
//!
//! The chain, in upstream's order: a client certificate verified against the cluster CA
//! ([`x509`]); else a bearer token, tried against each [`TokenAuthenticator`] (the static
//! [`token_file`] today; ServiceAccount JWTs later); else, with no credentials at all, the
//! anonymous user, but only on the paths the [`AnonymousPolicy`] allows. A bearer token that no
//! authenticator accepts is always a rejection (401), never anonymous.
//!
//! Tokens never appear in logs or errors.

pub mod token_file;
pub mod x509;

use std::{collections::BTreeMap, fmt, sync::Arc};

use async_trait::async_trait;
use http::{HeaderMap, header};

/// The user of requests without credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The group of the anonymous user.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// What can go wrong while authenticating or loading an authenticator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bearer token was presented that no authenticator accepts.
    #[error("invalid bearer token")]
    InvalidToken,
    /// A token authenticator could not decide (e.g. its backing store failed).
    #[error("token authentication failed: {0}")]
    Backend(String),
    /// The token file cannot be read.
    #[error("cannot read token file {}", path.display())]
    TokenFileRead {
        /// The file.
        path: std::path::PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The token file is malformed.
    #[error("token file {}: record {record}: {reason}", path.display())]
    TokenFileInvalid {
        /// The file.
        path: std::path::PathBuf,
        /// The 1-based CSV record (line, for files without multi-line fields).
        record: usize,
        /// What is wrong.
        reason: String,
    },
    /// A verified client certificate could not be read.
    #[error("unreadable client certificate: {0}")]
    Certificate(String),
}

/// An authenticated (or anonymous) user: upstream's `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name, e.g. `system:admin` or `system:node:n1`.
    pub name: String,
    /// A unique identifier, if the authenticator has one.
    pub uid: String,
    /// The groups, e.g. `system:masters`, `system:authenticated`.
    pub groups: Vec<String>,
    /// Extra authenticator-specific attributes.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The user of requests without credentials.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS_USER.into(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
            ..Self::default()
        }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Adds `system:authenticated` unless the user already carries it or
    /// `system:unauthenticated` (upstream's authenticated-group adder).
    fn with_authenticated_group(mut self) -> Self {
        if !self.in_group(AUTHENTICATED_GROUP) && !self.in_group(UNAUTHENTICATED_GROUP) {
            self.groups.push(AUTHENTICATED_GROUP.into());
        }
        self
    }
}

/// Authenticates bearer tokens of one kind (static file, ServiceAccount JWT, bootstrap token…).
#[async_trait]
pub trait TokenAuthenticator: Send + Sync + fmt::Debug {
    /// The user the token stands for; `Ok(None)` if this authenticator does not know it.
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, Error>;
}

/// Where requests without credentials may go as `system:anonymous`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnonymousPolicy {
    /// Every request needs credentials.
    Disabled,
    /// Only these paths: an entry ending in `/*` allows everything below it, any other entry is
    /// an exact path.
    Paths(Vec<String>),
}

impl Default for AnonymousPolicy {
    /// Health and version endpoints only (query strings such as `?verbose` do not matter).
    fn default() -> Self {
        Self::Paths(
            [
                "/healthz",
                "/healthz/*",
                "/livez",
                "/livez/*",
                "/readyz",
                "/readyz/*",
                "/version",
                "/version/",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        )
    }
}

impl AnonymousPolicy {
    /// Whether an anonymous request for `path` is allowed.
    pub fn allows(&self, path: &str) -> bool {
        match self {
            Self::Disabled => false,
            Self::Paths(paths) => paths.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == p,
            }),
        }
    }
}

/// Why a request was not authenticated. Every rejection is answered with 401.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Credentials were presented and are not valid.
    #[error(transparent)]
    Invalid(#[from] Error),
    /// No credentials, on a path anonymous requests may not use.
    #[error("anonymous requests are not allowed for this path")]
    AnonymousNotAllowed,
}

/// The authentication chain.
#[derive(Clone, Debug, Default)]
pub struct Authenticator {
    tokens: Vec<Arc<dyn TokenAuthenticator>>,
    anonymous: AnonymousPolicy,
}

impl Authenticator {
    /// A chain with no token authenticators and the given anonymous policy.
    pub fn new(anonymous: AnonymousPolicy) -> Self {
        Self {
            tokens: Vec::new(),
            anonymous,
        }
    }

    /// Adds a token authenticator, tried after those added before it.
    #[must_use]
    pub fn with_token_authenticator(mut self, authenticator: Arc<dyn TokenAuthenticator>) -> Self {
        self.tokens.push(authenticator);
        self
    }

    /// Authenticates one request. `client_certificate_user` is the user of the connection's
    /// verified client certificate, if it presented one (see [`x509::user_from_certificate`]).
    pub async fn authenticate(
        &self,
        client_certificate_user: Option<&UserInfo>,
        headers: &HeaderMap,
        path: &str,
    ) -> Result<UserInfo, Rejection> {
        if let Some(user) = client_certificate_user {
            return Ok(user.clone().with_authenticated_group());
        }
        match bearer_token(headers)? {
            Some(token) => {
                let mut failure = None;
                for authenticator in &self.tokens {
                    match authenticator.authenticate_token(token).await {
                        Ok(Some(user)) => return Ok(user.with_authenticated_group()),
                        Ok(None) => {}
                        Err(e) => failure = failure.or(Some(e)),
                    }
                }
                Err(failure.unwrap_or(Error::InvalidToken).into())
            }
            None if self.anonymous.allows(path) => Ok(UserInfo::anonymous()),
            None => Err(Rejection::AnonymousNotAllowed),
        }
    }
}

/// The bearer token of `Authorization: Bearer <token>`, `None` if there is no such header (or
/// another scheme, or an empty token: those requests carry no credentials, as upstream reads
/// them). A header that is not text is rejected.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Error::InvalidToken)?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next().unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    Ok(parts.next().filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[derive(Debug)]
    struct OneToken;

    #[async_trait]
    impl TokenAuthenticator for OneToken {
        async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, Error> {
            Ok((token == "good").then(|| UserInfo {
                name: "alice".into(),
                groups: vec!["devs".into()],
                ..UserInfo::default()
            }))
        }
    }

    fn chain() -> Authenticator {
        Authenticator::new(AnonymousPolicy::default()).with_token_authenticator(Arc::new(OneToken))
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[tokio::test]
    async fn a_known_token_authenticates_and_adds_the_authenticated_group() {
        let user = chain()
            .authenticate(None, &with_auth("Bearer good"), "/api")
            .await
            .expect("authenticated");
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["devs", AUTHENTICATED_GROUP]);
    }

    #[tokio::test]
    async fn an_unknown_token_is_rejected_even_where_anonymous_is_allowed() {
        for path in ["/api", "/healthz", "/version"] {
            let result = chain()
                .authenticate(None, &with_auth("Bearer nope"), path)
                .await;
            assert!(
                matches!(result, Err(Rejection::Invalid(Error::InvalidToken))),
                "{path}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn no_credentials_is_anonymous_only_on_health_and_version_paths() {
        for path in [
            "/healthz",
            "/healthz/ping",
            "/livez",
            "/readyz",
            "/readyz/etcd",
            "/version",
            "/version/",
        ] {
            let user = chain()
                .authenticate(None, &HeaderMap::new(), path)
                .await
                .expect(path);
            assert_eq!(user, UserInfo::anonymous(), "{path}");
        }
        for path in ["/", "/api", "/apis", "/healthzz", "/versions", "/metrics"] {
            let result = chain().authenticate(None, &HeaderMap::new(), path).await;
            assert!(
                matches!(result, Err(Rejection::AnonymousNotAllowed)),
                "{path}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn other_schemes_and_empty_bearer_tokens_count_as_no_credentials() {
        for value in ["Basic YWxpY2U6cHc=", "Bearer", "Bearer  good", "Token good"] {
            let user = chain()
                .authenticate(None, &with_auth(value), "/healthz")
                .await
                .expect(value);
            assert_eq!(user.name, ANONYMOUS_USER, "{value}");
        }
    }

    #[tokio::test]
    async fn the_bearer_scheme_is_case_insensitive() {
        let user = chain()
            .authenticate(None, &with_auth("  bEaReR good  "), "/api")
            .await
            .expect("authenticated");
        assert_eq!(user.name, "alice");
    }

    #[tokio::test]
    async fn a_client_certificate_wins_over_a_bad_token() {
        let cert_user = UserInfo {
            name: "system:admin".into(),
            groups: vec!["system:masters".into()],
            ..UserInfo::default()
        };
        let user = chain()
            .authenticate(Some(&cert_user), &with_auth("Bearer nope"), "/api")
            .await
            .expect("authenticated");
        assert_eq!(user.groups, ["system:masters", AUTHENTICATED_GROUP]);
    }

    #[tokio::test]
    async fn a_disabled_anonymous_policy_rejects_even_health_checks() {
        let result = Authenticator::new(AnonymousPolicy::Disabled)
            .authenticate(None, &HeaderMap::new(), "/healthz")
            .await;
        assert!(matches!(result, Err(Rejection::AnonymousNotAllowed)));
    }
}
