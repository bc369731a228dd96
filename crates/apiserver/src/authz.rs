//! Request authorization: may this user do this?
//!
//! An [`AuthorizerChain`] asks its [`Authorizer`]s in order; the first `Allow` or `Deny` decides,
//! `NoOpinion` passes to the next, and a request nobody allows is forbidden (403). Today's
//! chain is [`PrivilegedGroups`] (`system:masters` may do everything) followed by
//! [`PublicInfo`] (everyone may read health and version); RBAC joins the chain later and
//! takes over `PublicInfo`'s job through upstream's bootstrap roles.

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use tug_apimachinery::status::ForbiddenAttributes;

use crate::{authn::UserInfo, pki::ADMIN_GROUP, request_info::RequestInfo};

/// What can go wrong while authorizing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An authorizer could not evaluate the request (its reason is in the message).
    #[error("authorizer {authorizer} failed: {reason}")]
    Evaluation {
        /// The failing authorizer.
        authorizer: &'static str,
        /// What failed.
        reason: String,
    },
    /// Several authorizers failed and none decided.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Aggregate(Vec<Error>),
}

/// An authorizer's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed; later authorizers are not asked.
    Allow,
    /// The request is forbidden; later authorizers are not asked.
    Deny,
    /// This authorizer has nothing to say; ask the next one.
    NoOpinion,
}

/// A decision and its (possibly empty) human-readable reason, which a 403 message quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// Why; empty if there is nothing to add.
    pub reason: String,
}

impl Verdict {
    /// `Allow` with a reason.
    pub fn allow(reason: impl Into<String>) -> Self {
        Self {
            decision: Decision::Allow,
            reason: reason.into(),
        }
    }

    /// `Deny` with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            decision: Decision::Deny,
            reason: reason.into(),
        }
    }

    /// `NoOpinion` without a reason.
    pub fn no_opinion() -> Self {
        Self {
            decision: Decision::NoOpinion,
            reason: String::new(),
        }
    }
}

/// Who wants to do what: the input of every authorizer.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    /// The authenticated (or anonymous) user.
    pub user: &'a UserInfo,
    /// What the request asks for.
    pub request: &'a RequestInfo,
}

impl Attributes<'_> {
    /// The attributes in the form the 403 `Status` message is built from.
    pub fn forbidden_attributes(&self) -> ForbiddenAttributes {
        let r = self.request;
        ForbiddenAttributes {
            user: self.user.name.clone(),
            verb: r.verb.clone(),
            resource_request: r.is_resource_request,
            api_group: r.api_group.clone(),
            resource: r.resource.clone(),
            subresource: r.subresource.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            path: r.path.clone(),
        }
    }
}

/// One authorization mode.
#[async_trait]
pub trait Authorizer: Send + Sync + fmt::Debug {
    /// Decides on one request. An error means "could not decide"; the chain goes on.
    async fn authorize(&self, attributes: &Attributes<'_>) -> Result<Verdict, Error>;
}

/// Authorizers asked in order (upstream's union authorizer).
#[derive(Clone, Debug, Default)]
pub struct AuthorizerChain {
    authorizers: Vec<Arc<dyn Authorizer>>,
}

impl AuthorizerChain {
    /// An empty chain: it allows nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Today's default chain: [`PrivilegedGroups`] for `system:masters`, then [`PublicInfo`].
    pub fn default_chain() -> Self {
        Self::new()
            .with(Arc::new(PrivilegedGroups::new([ADMIN_GROUP])))
            .with(Arc::new(PublicInfo))
    }

    /// Appends an authorizer, asked after those added before it.
    #[must_use]
    pub fn with(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizers.push(authorizer);
        self
    }
}

#[async_trait]
impl Authorizer for AuthorizerChain {
    /// The first `Allow` or `Deny` wins. Otherwise `NoOpinion` with every reason (one per
    /// line), or the errors if any authorizer failed.
    async fn authorize(&self, attributes: &Attributes<'_>) -> Result<Verdict, Error> {
        let mut reasons = Vec::new();
        let mut errors = Vec::new();
        for authorizer in &self.authorizers {
            match authorizer.authorize(attributes).await {
                Ok(verdict) if verdict.decision != Decision::NoOpinion => return Ok(verdict),
                Ok(verdict) => {
                    if !verdict.reason.is_empty() {
                        reasons.push(verdict.reason);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(Verdict {
                decision: Decision::NoOpinion,
                reason: reasons.join("\n"),
            }),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Aggregate(errors)),
        }
    }
}

/// Allows everything to members of the given groups (upstream: `system:masters`, checked
/// before any other authorizer so that admins can never lock themselves out).
#[derive(Clone, Debug)]
pub struct PrivilegedGroups {
    groups: Vec<String>,
}

impl PrivilegedGroups {
    /// Members of any of `groups` may do everything.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(groups: I) -> Self {
        Self {
            groups: groups.into_iter().map(Into::into).collect(),
        }
    }
}

#[async_trait]
impl Authorizer for PrivilegedGroups {
    async fn authorize(&self, attributes: &Attributes<'_>) -> Result<Verdict, Error> {
        Ok(if self.groups.iter().any(|g| attributes.user.in_group(g)) {
            Verdict::allow("")
        } else {
            Verdict::no_opinion()
        })
    }
}

/// Allows everyone, anonymous included, to read the health and version endpoints: the job of
/// upstream's `system:public-info-viewer` role, until RBAC serves it.
#[derive(Clone, Copy, Debug)]
pub struct PublicInfo;

/// The non-resource paths [`PublicInfo`] allows (`/*` entries: everything below).
const PUBLIC_PATHS: &[&str] = &[
    "/healthz",
    "/healthz/*",
    "/livez",
    "/livez/*",
    "/readyz",
    "/readyz/*",
    "/version",
    "/version/",
];

#[async_trait]
impl Authorizer for PublicInfo {
    async fn authorize(&self, attributes: &Attributes<'_>) -> Result<Verdict, Error> {
        let r = attributes.request;
        let public = !r.is_resource_request
            && matches!(r.verb.as_str(), "get" | "head")
            && PUBLIC_PATHS.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => r.path.starts_with(prefix),
                None => r.path == *p,
            });
        Ok(if public {
            Verdict::allow("")
        } else {
            Verdict::no_opinion()
        })
    }
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::request_info::RequestInfoResolver;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    fn request(method: Method, path: &str) -> RequestInfo {
        RequestInfoResolver::default()
            .resolve(&method, path, None)
            .expect("request info")
    }

    async fn decide(user: &UserInfo, method: Method, path: &str) -> Decision {
        let request = request(method, path);
        AuthorizerChain::default_chain()
            .authorize(&Attributes {
                user,
                request: &request,
            })
            .await
            .expect("authorize")
            .decision
    }

    #[tokio::test]
    async fn system_masters_may_do_everything() {
        let admin = user("system:admin", &["system:masters", "system:authenticated"]);
        for (method, path) in [
            (Method::GET, "/api"),
            (Method::DELETE, "/api/v1/namespaces/kube-system"),
            (Method::POST, "/apis/apps/v1/namespaces/x/deployments"),
            (Method::GET, "/metrics"),
        ] {
            assert_eq!(
                decide(&admin, method, path).await,
                Decision::Allow,
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn everyone_else_may_only_read_health_and_version() {
        let bob = user("bob", &["system:authenticated"]);
        let anonymous = UserInfo::anonymous();
        for who in [&bob, &anonymous] {
            for path in ["/healthz", "/healthz/etcd", "/livez", "/readyz", "/version"] {
                assert_eq!(
                    decide(who, Method::GET, path).await,
                    Decision::Allow,
                    "{path}"
                );
            }
            assert_eq!(
                decide(who, Method::POST, "/healthz").await,
                Decision::NoOpinion
            );
            for path in ["/api", "/apis", "/api/v1/pods", "/metrics", "/"] {
                assert_eq!(
                    decide(who, Method::GET, path).await,
                    Decision::NoOpinion,
                    "{path}"
                );
            }
        }
    }

    #[tokio::test]
    async fn forbidden_messages_follow_upstream_wording() {
        let bob = user("bob", &[]);
        let check = |method: Method, path: &str, want: &str| {
            let request = request(method, path);
            let attrs = Attributes {
                user: &bob,
                request: &request,
            };
            assert_eq!(attrs.forbidden_attributes().message(), want, "{path}");
        };
        check(Method::GET, "/api", r#"User "bob" cannot get path "/api""#);
        check(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            r#"User "bob" cannot list resource "pods" in API group "" in the namespace "default""#,
        );
        check(
            Method::PUT,
            "/apis/apps/v1/namespaces/x/deployments/web/scale",
            r#"User "bob" cannot update resource "deployments/scale" in API group "apps" in the namespace "x""#,
        );
        check(
            Method::GET,
            "/api/v1/nodes",
            r#"User "bob" cannot list resource "nodes" in API group "" at the cluster scope"#,
        );
    }

    #[derive(Debug)]
    struct Fixed(Result<Decision, &'static str>, &'static str);

    #[async_trait]
    impl Authorizer for Fixed {
        async fn authorize(&self, _: &Attributes<'_>) -> Result<Verdict, Error> {
            match self.0 {
                Ok(decision) => Ok(Verdict {
                    decision,
                    reason: self.1.into(),
                }),
                Err(reason) => Err(Error::Evaluation {
                    authorizer: "fixed",
                    reason: reason.into(),
                }),
            }
        }
    }

    #[tokio::test]
    async fn the_first_decision_wins_and_reasons_of_no_opinions_are_collected() {
        let bob = user("bob", &[]);
        let request = request(Method::GET, "/api");
        let attrs = Attributes {
            user: &bob,
            request: &request,
        };
        let chain = AuthorizerChain::new()
            .with(Arc::new(Fixed(Ok(Decision::NoOpinion), "no rule a")))
            .with(Arc::new(Fixed(Ok(Decision::NoOpinion), "no rule b")));
        assert_eq!(
            chain.authorize(&attrs).await.expect("verdict"),
            Verdict {
                decision: Decision::NoOpinion,
                reason: "no rule a\nno rule b".into()
            }
        );
        let chain = chain
            .with(Arc::new(Fixed(Ok(Decision::Deny), "denied")))
            .with(Arc::new(Fixed(Ok(Decision::Allow), "")));
        assert_eq!(
            chain.authorize(&attrs).await.expect("verdict"),
            Verdict::deny("denied")
        );
        let failing = AuthorizerChain::new()
            .with(Arc::new(Fixed(Err("boom"), "")))
            .with(Arc::new(Fixed(Ok(Decision::Allow), "")));
        assert_eq!(
            failing.authorize(&attrs).await.expect("verdict").decision,
            Decision::Allow,
            "an error does not stop later authorizers from allowing"
        );
        let failing = AuthorizerChain::new().with(Arc::new(Fixed(Err("boom"), "")));
        assert!(failing.authorize(&attrs).await.is_err());
    }
}
