//! Turns a `meta/v1 Status` into an HTTP response the way upstream's response writers do:
//! JSON body, `Content-Type: application/json`, HTTP status = `Status.code`.

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use tug_apimachinery::Status;

/// The HTTP response carrying `status`.
pub fn response(status: &Status) -> Response {
    // A Status holds only strings and numbers: serialising it cannot fail.
    let body = serde_json::to_vec(status).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = u16::try_from(status.code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 401 `Unauthorized`, as the authentication filter sends it.
pub fn unauthorized() -> Response {
    response(&Status::unauthorized("Unauthorized"))
}

#[cfg(test)]
mod tests {
    use tug_apimachinery::status::ForbiddenAttributes;

    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf8")
    }

    #[tokio::test]
    async fn unauthorized_is_upstreams_status_byte_for_byte() {
        let response = unauthorized();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            HeaderValue::from_static("application/json")
        );
        assert_eq!(
            body(response).await,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }

    #[tokio::test]
    async fn forbidden_non_resource_requests_have_empty_details() {
        let attributes = ForbiddenAttributes {
            user: "bob".into(),
            verb: "get".into(),
            path: "/api".into(),
            ..ForbiddenAttributes::default()
        };
        let response = response(&Status::forbidden_by_authorizer(&attributes, ""));
        assert_eq!(response.status(), 403);
        assert_eq!(
            body(response).await,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"bob\" cannot get path \"/api\"","reason":"Forbidden","details":{},"code":403}"#
        );
    }
}
