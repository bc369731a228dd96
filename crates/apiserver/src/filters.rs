//! The filter every request passes before its handler, in upstream's order: request info
//! (500 if the path cannot be understood), authentication (401), authorization (403). The
//! handler then finds the [`RequestInfo`] and the [`UserInfo`] in the request's extensions.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};
use tug_apimachinery::Status;

use crate::{
    authn::{Authenticator, UserInfo},
    authz::{Attributes, Authorizer, Decision},
    request_info::{RequestInfo, RequestInfoResolver},
    serve::ConnectionInfo,
    status,
};

/// What the filter needs; shared by every request.
#[derive(Clone, Debug)]
pub(crate) struct Filters {
    pub(crate) resolver: RequestInfoResolver,
    pub(crate) authenticator: Authenticator,
    pub(crate) authorizer: Arc<dyn Authorizer>,
}

/// The middleware function (see [`axum::middleware::from_fn_with_state`]).
pub(crate) async fn filter(
    State(filters): State<Arc<Filters>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let info = match filters.resolver.resolve(
        request.method(),
        request.uri().path(),
        request.uri().query(),
    ) {
        Ok(info) => info,
        Err(e) => return status::response(&Status::internal_error(&e.to_string())),
    };

    let certificate_user = request
        .extensions()
        .get::<Arc<ConnectionInfo>>()
        .and_then(|c| c.client_certificate_user.as_ref());
    let user = match filters
        .authenticator
        .authenticate(certificate_user, request.headers(), &info.path)
        .await
    {
        Ok(user) => user,
        Err(rejection) => {
            tracing::debug!(method = %request.method(), path = %info.path, reason = %rejection, "unauthorized");
            return status::unauthorized();
        }
    };
    // Credentials must not travel further (for example to a proxied kubelet).
    request.headers_mut().remove(header::AUTHORIZATION);

    let attributes = Attributes {
        user: &user,
        request: &info,
    };
    match filters.authorizer.authorize(&attributes).await {
        Ok(verdict) if verdict.decision == Decision::Allow => {}
        Ok(verdict) => {
            tracing::debug!(user = %user.name, verb = %info.verb, path = %info.path, reason = %verdict.reason, "forbidden");
            return status::response(&Status::forbidden_by_authorizer(
                &attributes.forbidden_attributes(),
                &verdict.reason,
            ));
        }
        Err(e) => {
            tracing::warn!(user = %user.name, verb = %info.verb, path = %info.path, error = %e, "authorization failed");
            return status::response(&Status::internal_error(&e.to_string()));
        }
    }

    let method = request.method().clone();
    let (user_name, path) = (user.name.clone(), info.path.clone());
    request.extensions_mut().insert::<RequestInfo>(info);
    request.extensions_mut().insert::<UserInfo>(user);
    let response = next.run(request).await;
    tracing::debug!(%method, %path, user = %user_name, status = response.status().as_u16(), elapsed = ?started.elapsed(), "request");
    response
}
