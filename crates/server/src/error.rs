//! The one place an error becomes a status code and a Graph error body (rulings.md 8):
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.

use std::borrow::Cow;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enrollgraph_service::ServiceError;
use serde_json::json;

use crate::RequestIds;

/// The `Retry-After` (seconds) of a `503` for a storage outage: about what a PostgreSQL
/// restart or a failover takes, and short enough for the SDKs' default of three retries.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// Errors the HTTP layer itself finds, before the service runs.
#[derive(Debug)]
pub enum HttpError {
    /// From the service.
    Service(ServiceError),
    /// Malformed JSON body.
    MalformedJson(String),
    /// A body that is not JSON (rulings.md 13).
    UnsupportedMediaType(String),
    /// Above the 4 MiB limit (rulings.md 12).
    TooLarge,
    /// A version segment that is neither `beta` nor `v1.0`.
    BadVersion(String),
    /// Nothing is served here.
    NoRoute(String),
    /// A `$batch` request whose dependency failed.
    FailedDependency,
    /// 401: no valid token; the `WWW-Authenticate` value rides along.
    Unauthorized(String, String),
    /// 403: a valid token without the permission (or a personal account).
    Forbidden(String),
    /// 429 over a throttling limit; `Retry-After` seconds (graph-behaviours.md "throttling").
    Throttled(u64),
    /// An answer a fault rule injects (admin.rs), shaped as Graph's own.
    Injected {
        /// Status.
        status: u16,
        /// Graph error code.
        code: String,
        /// The problem.
        message: String,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
}

impl From<ServiceError> for HttpError {
    fn from(e: ServiceError) -> Self {
        HttpError::Service(e)
    }
}

/// Intune's own errors carry a JSON document in `message` (graph-behaviours.md "Responses");
/// we put the problem in front so that the message still names it. As on the live service
/// (graph-behaviours.md "Shapes"), the Activity ID is the client's `client-request-id` and
/// the Operation ID is the all-zero GUID.
fn intune_message(problem: &str, ids: &RequestIds) -> String {
    let inner = format!(
        "{problem} - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: {} - Url: {}",
        ids.client_request_id, ids.url
    );
    json!({
        "_version": 3,
        "Message": inner,
        "CustomApiErrorPhrase": "",
        "RetryAfter": null,
        "ErrorSourceService": "",
        "HttpHeaders": "{}",
    })
    .to_string()
}

impl HttpError {
    /// Status, Graph error code, message, and `Allow` methods: the mapping table.
    fn parts(&self, ids: &RequestIds) -> (StatusCode, Cow<'static, str>, String, Option<(HeaderName, String)>) {
        if let HttpError::Injected { status, code, message, retry_after } = self {
            return (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Cow::Owned(code.clone()),
                intune_message(message, ids),
                retry_after.map(|s| (header::RETRY_AFTER, s.to_string())),
            );
        }
        let (status, code, message, extra) = self.static_parts(ids);
        (status, Cow::Borrowed(code), message, extra)
    }

    fn static_parts(&self, ids: &RequestIds) -> (StatusCode, &'static str, String, Option<(HeaderName, String)>) {
        match self {
            HttpError::Service(e) => match e {
                ServiceError::BadRequest(m) => (StatusCode::BAD_REQUEST, "BadRequest", intune_message(m, ids), None),
                ServiceError::BadQuery(m) => (StatusCode::BAD_REQUEST, "BadRequest", m.clone(), None),
                ServiceError::SegmentNotFound(_) => (StatusCode::BAD_REQUEST, "BadRequest", e.to_string(), None),
                ServiceError::ResourceNotFound(m) => {
                    (StatusCode::NOT_FOUND, "ResourceNotFound", intune_message(m, ids), None)
                }
                ServiceError::MethodNotAllowed { allow, .. } => (
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    e.to_string(),
                    Some((header::ALLOW, allow.join(", "))),
                ),
                ServiceError::Conflict(m) => (StatusCode::CONFLICT, "Conflict", intune_message(m, ids), None),
                ServiceError::NotImplemented(_) | ServiceError::Unserved(_) => {
                    (StatusCode::NOT_IMPLEMENTED, "NotImplemented", e.to_string(), None)
                }
                // Graph's answer for a service that is briefly unavailable ("Microsoft Graph
                // error responses and resource types": 503 "The service is temporarily
                // unavailable ... You may repeat the request after a delay, the length of
                // which may be specified in a Retry-After header"); the SDKs' retry handlers
                // retry 503 after Retry-After, so a database restart is a pause, not a failure.
                ServiceError::Unavailable(detail) => {
                    tracing::warn!(request_id = %ids.request_id, %detail, "storage unavailable");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        "The service is temporarily unavailable. Retry the request after the delay in Retry-After."
                            .to_owned(),
                        Some((header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECS.to_string())),
                    )
                }
                ServiceError::Internal(detail) => {
                    tracing::error!(request_id = %ids.request_id, %detail, "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalServerError",
                        "An internal server error occurred.".to_owned(),
                        None,
                    )
                }
            },
            HttpError::MalformedJson(m) => {
                (StatusCode::BAD_REQUEST, "BadRequest", format!("Unable to read JSON request payload: {m}"), None)
            }
            HttpError::UnsupportedMediaType(ct) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("The content type '{ct}' is not supported; send application/json."),
                None,
            ),
            HttpError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "The request body exceeds the maximum size of 4 MiB.".to_owned(),
                None,
            ),
            // The gateway's answer to a first segment that is no version, lower-cased as it
            // writes it (graph-behaviours.md "Shapes": `Invalid version: devicemanagement`).
            HttpError::BadVersion(v) => {
                (StatusCode::NOT_FOUND, "ResourceNotFound", format!("Invalid version: {}", v.to_lowercase()), None)
            }
            HttpError::Unauthorized(message, challenge) => (
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                message.clone(),
                Some((header::WWW_AUTHENTICATE, challenge.clone())),
            ),
            HttpError::Forbidden(message) => (StatusCode::FORBIDDEN, "Forbidden", message.clone(), None),
            HttpError::FailedDependency => (
                StatusCode::FAILED_DEPENDENCY,
                "FailedDependency",
                "A request this request depends on failed.".to_owned(),
                None,
            ),
            HttpError::Throttled(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                intune_message("Too many requests: the request was throttled.", ids),
                Some((header::RETRY_AFTER, secs.to_string())),
            ),
            // Answered by `parts` (its code is the rule's, not a static one).
            HttpError::Injected { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", String::new(), None)
            }
            HttpError::NoRoute(p) => (
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("The resource '{p}' does not exist; Graph resources live under /beta and /v1.0."),
                None,
            ),
        }
    }

    /// The Graph-shaped response.
    pub fn into_graph_response(self, ids: &RequestIds) -> Response {
        let (status, body, extra) = self.graph_body(ids);
        let mut resp = (status, crate::json_body(&body)).into_response();
        if let Some((name, value)) = extra
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            resp.headers_mut().insert(name, value);
        }
        resp
    }

    /// Status, Graph error body and the extra header (`Allow`, `WWW-Authenticate`).
    pub fn graph_body(self, ids: &RequestIds) -> (StatusCode, serde_json::Value, Option<(HeaderName, String)>) {
        let (status, code, message, allow) = self.parts(ids);
        let body = json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": ids.date(),
                    "request-id": ids.request_id,
                    "client-request-id": ids.client_request_id,
                }
            }
        });
        (status, body, allow)
    }
}
