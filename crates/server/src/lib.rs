//! The HTTP face of enrollgraph: a thin axum layer that turns requests into
//! `enrollgraph_service::Request`s and writes Graph's headers and bodies. No Graph
//! semantics live here; see `ARCHITECTURE.md`.

pub mod admin;
mod batch;
mod error;
pub mod faults;
pub mod identity;
pub mod journal;
pub mod observe;
pub mod throttle;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use enrollgraph_csdl::ApiVersion;
use enrollgraph_service::{Body as ServiceBody, Method as ServiceMethod, Service};
use serde_json::Value;

pub use error::HttpError;

/// The request body limit (rulings.md 12).
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Graph's JSON content type (graph-behaviours.md "Headers").
pub(crate) const GRAPH_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The Graph service.
    pub service: Service,
    /// The tenant requests are served in until authentication decides it per token.
    pub default_tenant: Arc<str>,
    /// A fixed public origin (`https://graph.example`); else taken from each request.
    pub public_url: Option<Arc<str>>,
    /// Keys, token issuer and validator.
    pub identity: Arc<identity::Identity>,
    /// Whether Graph requests need a token (rulings.md 9: yes unless `--auth off`).
    pub auth_required: bool,
    /// The scheme this listener serves (`https` with `--tls`), for origins built from `Host`.
    pub scheme: &'static str,
    /// Throttling, fault rules, the request journal and the admin key (admin.rs).
    pub controls: Arc<admin::Controls>,
}

/// The ids a response and its error body carry.
#[derive(Debug, Clone)]
pub struct RequestIds {
    /// A new GUID per request.
    pub request_id: String,
    /// The client's, echoed, or a new GUID.
    pub client_request_id: String,
    /// The request URL, for Intune's error message.
    pub url: String,
    at: time::OffsetDateTime,
}

impl RequestIds {
    pub(crate) fn new(headers: &HeaderMap, url: String) -> Self {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = headers
            .get(&CLIENT_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 200)
            .map_or_else(|| request_id.clone(), str::to_owned);
        RequestIds { request_id, client_request_id, url, at: time::OffsetDateTime::now_utc() }
    }

    /// UTC without offset, as Graph writes `innerError.date` (`2021-12-20T19:37:09`).
    #[must_use]
    pub fn date(&self) -> String {
        let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        self.at.format(format).unwrap_or_default()
    }
}

/// The router. Tests drive it with `oneshot`; the CLI serves it.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/common/discovery/instance", get(identity::instance_discovery))
        // The first segment is a version for Graph and a tenant for the identity endpoints;
        // matchit needs one parameter name for both.
        .route("/{version}/v2.0/.well-known/openid-configuration", get(identity::openid_configuration))
        .route("/{version}/discovery/v2.0/keys", get(identity::keys))
        .route("/{version}/oauth2/v2.0/token", axum::routing::post(identity::token).get(identity::token_get))
        .route("/{version}/$metadata", get(metadata).fallback(metadata_method))
        .route(admin::PREFIX, any(admin::handle))
        .route(&format!("{}/", admin::PREFIX), any(admin::handle))
        .route(&format!("{}/{{*rest}}", admin::PREFIX), any(admin::handle))
        // Graph is the fallback, not `/{version}/{*path}`: a route with parameters makes
        // the router percent-decode them into a map on every request, which the handler
        // never reads (callgrind: 3 % of a point read, issue 8's W2).
        .fallback(graph)
        .with_state(state)
}

pub(crate) fn json_body(v: &Value) -> ([(HeaderName, HeaderValue); 1], String) {
    ([(header::CONTENT_TYPE, GRAPH_JSON_VALUE.clone())], v.to_string())
}

// Header values are statics made at compile time: `HeaderValue::from_static` outside a
// const context checks every byte on every call (2 % of a point read, callgrind).
static GRAPH_JSON_VALUE: HeaderValue = HeaderValue::from_static(GRAPH_JSON);
static ODATA_VERSION_VALUE: HeaderValue = HeaderValue::from_static("4.0");
static DIAGNOSTIC_VALUE: HeaderValue = HeaderValue::from_static(
    r#"{"ServerInfo":{"DataCenter":"enrollgraph","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"enrollgraph"}}"#,
);
static HSTS_VALUE: HeaderValue = HeaderValue::from_static("max-age=31536000");
static NO_CACHE_VALUE: HeaderValue = HeaderValue::from_static("no-cache");
static TEXT_PLAIN_VALUE: HeaderValue = HeaderValue::from_static("text/plain;charset=utf-8");
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");
const ODATA_VERSION: HeaderName = HeaderName::from_static("odata-version");
const DIAGNOSTIC: HeaderName = HeaderName::from_static("x-ms-ags-diagnostic");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers Graph puts on every response (graph-behaviours.md "Headers"). Names are
/// constants: a `&str` name is parsed and hashed on every insert.
pub(crate) fn finish(mut resp: Response, ids: &RequestIds) -> Response {
    let h = resp.headers_mut();
    h.reserve(FINISH_HEADERS);
    if let Ok(v) = HeaderValue::from_str(&ids.request_id) {
        if ids.client_request_id == ids.request_id {
            h.insert(CLIENT_REQUEST_ID, v.clone());
        } else if let Ok(c) = HeaderValue::from_str(&ids.client_request_id) {
            h.insert(CLIENT_REQUEST_ID, c);
        }
        h.insert(REQUEST_ID, v);
    }
    h.insert(ODATA_VERSION, ODATA_VERSION_VALUE.clone());
    h.insert(DIAGNOSTIC, DIAGNOSTIC_VALUE.clone());
    h.insert(header::STRICT_TRANSPORT_SECURITY, HSTS_VALUE.clone());
    h.insert(header::CACHE_CONTROL, NO_CACHE_VALUE.clone());
    resp
}

/// The origin the client used: a configured public URL, else `X-Forwarded-Proto/-Host`,
/// else `Host` (nextLinks must point back where the client came from: clients.md §0).
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let get = |name: &HeaderName| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or(v).trim())
    };
    let scheme = get(&X_FORWARDED_PROTO).unwrap_or(state.scheme);
    // HTTP/2 carries the host and port in the URI's authority, not in a Host header.
    let host = get(&X_FORWARDED_HOST).or_else(|| get(&header::HOST)).or_else(|| uri.authority().map(|a| a.as_str()));
    let host = host.unwrap_or("localhost");
    let mut url = String::with_capacity(scheme.len() + 3 + host.len());
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(host);
    url
}

/// `$metadata` with another method than GET: a Graph-shaped `405`, not the router's bare
/// one (found by the HTTP property test, crates/cli/tests/http_fuzz.rs).
async fn metadata_method(req: Request) -> Response {
    let ids = RequestIds::new(req.headers(), req.uri().path().to_owned());
    let e = enrollgraph_service::ServiceError::MethodNotAllowed {
        method: req.method().as_str().to_owned(),
        allow: vec!["GET", "HEAD"],
    };
    finish(HttpError::Service(e).into_graph_response(&ids), &ids)
}

async fn metadata(
    State(state): State<AppState>,
    axum::extract::Path(version): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let ids = RequestIds::new(&headers, format!("/{version}/$metadata"));
    let resp = match ApiVersion::parse(&version) {
        Some(v) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"))], state.service.model().schema(v).xml)
                .into_response()
        }
        None => HttpError::BadVersion(version).into_graph_response(&ids),
    };
    finish(resp, &ids)
}

async fn no_route(State(state): State<AppState>, req: Request) -> Response {
    let ids = RequestIds::new(req.headers(), request_url(&state, req.headers(), req.uri()));
    finish(HttpError::NoRoute(req.uri().path().to_owned()).into_graph_response(&ids), &ids)
}

async fn graph(State(state): State<AppState>, req: Request) -> Response {
    // Graph serves the fallback (see `app`): a path without a version segment is no route.
    if req.uri().path().trim_start_matches('/').is_empty() {
        return no_route(State(state), req).await;
    }
    // Throttling, faults and the journal are off unless asked for: then this is the
    // whole cost they add (admin.rs).
    if state.controls.active() {
        // Boxed, as `$batch` is in `serve_graph`: inline, this path's future (~5 KB) set the
        // size of every request's future, which axum boxes and moves whole.
        return Box::pin(admin::controlled_graph(state, req)).await;
    }
    graph_plain(state, req).await
}

/// The URL a request was sent to, for Intune's error message: the client's origin and the
/// path and query. Not `uri` whole: over HTTP/2, and in HTTP/1.1's absolute form, it holds
/// the origin already (the message once named it twice).
pub(crate) fn request_url(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    format!("{}{}", base_url(state, headers, uri), uri.path_and_query().map_or("", |p| p.as_str()))
}

pub(crate) async fn graph_plain(state: AppState, req: Request) -> Response {
    let base = base_url(&state, req.headers(), req.uri());
    // The URL goes only into error bodies: built when one is written.
    let mut ids = RequestIds::new(req.headers(), String::new());
    let path_and_query = req.uri().path_and_query().cloned();
    let resp = match serve_graph(&state, req, &base).await {
        Ok(r) => r,
        Err(e) => {
            ids.url = format!("{base}{}", path_and_query.as_ref().map_or("", |p| p.as_str()));
            e.into_graph_response(&ids)
        }
    };
    finish(resp, &ids)
}

async fn serve_graph(state: &AppState, req: Request, base: &str) -> Result<Response, HttpError> {
    let (parts, body) = req.into_parts();
    let full = parts.uri.path().trim_start_matches('/');
    let (version_text, path) = full.split_once('/').unwrap_or((full, ""));
    let version = ApiVersion::parse(version_text).ok_or_else(|| HttpError::BadVersion(version_text.to_owned()))?;
    let method = match parts.method {
        Method::GET | Method::HEAD => ServiceMethod::Get,
        Method::POST => ServiceMethod::Post,
        Method::PATCH => ServiceMethod::Patch,
        Method::PUT => ServiceMethod::Put,
        Method::DELETE => ServiceMethod::Delete,
        ref other => ServiceMethod::Other(other.as_str().to_owned()),
    };
    let principal = authenticate(state, &parts.headers)?;
    let tenant = principal.as_ref().map_or_else(|| state.default_tenant.to_string(), |p| p.tenant.clone());
    if let Some(caller) = parts.extensions.get::<observe::Caller>() {
        caller.set(&tenant, principal.as_ref().map(|p| p.app_id.as_str()));
    }
    let body = read_json(&parts.headers, body, &method).await?;
    if is_batch(path) {
        if method != ServiceMethod::Post {
            return Err(HttpError::Service(enrollgraph_service::ServiceError::MethodNotAllowed {
                method: parts.method.as_str().to_owned(),
                allow: vec!["POST"],
            }));
        }
        let ids = RequestIds::new(&parts.headers, String::new());
        let check = |m: &ServiceMethod, p: &str| authorize(state, principal.as_deref(), m, p);
        let app = principal.as_ref().map(|p| p.app_id.as_str());
        // Boxed: `$batch` is rare, and its future (2.3 KB) inline made every request's
        // future 1 KB larger, copied each time it is moved and boxed (`-Zprint-type-sizes`:
        // `serve_graph` 3,056 → 2,040 bytes; callgrind, twelfth round: ~1 k instructions of
        // `memcpy` per point read moved these futures, ~0.3 k fewer with both boxed).
        let out = Box::pin(batch::run(state, version, (&tenant, app), base, body.as_ref(), &check, &ids)).await?;
        return Ok((StatusCode::OK, json_body(&out)).into_response());
    }
    authorize(state, principal.as_deref(), &method, path)?;
    let request = enrollgraph_service::Request {
        method,
        version,
        path: path.to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        body,
        tenant,
        base_url: base.to_owned(),
    };
    let out = state.service.handle(request).await?;
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::OK);
    let (content_type, body) = match out.body {
        ServiceBody::Empty => (None, Body::empty()),
        ServiceBody::Json(v) => (Some(&GRAPH_JSON_VALUE), Body::from(v.to_string())),
        ServiceBody::Raw(text) => (Some(&GRAPH_JSON_VALUE), Body::from(text)),
        ServiceBody::Text(t) => (Some(&TEXT_PLAIN_VALUE), Body::from(t)),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    // Room for every header the answer gets, here and in `finish`: a map grown header by
    // header reallocated and rehashed twice per answer (callgrind: 1.9 k instructions of
    // a 69 k point read).
    let h = resp.headers_mut();
    h.reserve(ANSWER_HEADERS);
    if let Some(v) = content_type {
        h.insert(header::CONTENT_TYPE, v.clone());
    }
    if let Some(loc) = out.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// The headers [`finish`] puts on every answer: request-id, client-request-id,
/// OData-Version, x-ms-ags-diagnostic, Strict-Transport-Security, Cache-Control.
const FINISH_HEADERS: usize = 6;

/// Content type, location and those of [`finish`].
const ANSWER_HEADERS: usize = 2 + FINISH_HEADERS;

/// True for the `$batch` endpoint, given the path after the version segment (one test,
/// shared with the throttle in admin.rs, so a path is a batch for both or for neither).
pub(crate) fn is_batch(after_version: &str) -> bool {
    after_version.trim_matches('/').eq_ignore_ascii_case("$batch")
}

/// The caller a bearer token proves (rulings.md 9: required unless `--auth off`, where a
/// valid token still picks its tenant and a missing or bad one falls back to the default).
pub(crate) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Arc<enrollgraph_auth::Principal>>, HttpError> {
    let unauthorized = |message: String| HttpError::Unauthorized(message, state.identity.www_authenticate());
    // Two credentials: a proxy and this server could each believe another one (issue 18).
    if has_two_authorizations(headers) {
        return Err(unauthorized("The request has more than one Authorization header.".into()));
    }
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let checked = enrollgraph_auth::bearer_token(header).and_then(|t| state.identity.validate_known(&state.service, t));
    observe::token_checked(&checked);
    let (checked, known) = match checked {
        Ok((p, Some(known))) => (Ok(p), known),
        Ok((p, None)) => match state.identity.check_tenant(&state.service, &p.tenant) {
            Err(e @ enrollgraph_service::ServiceError::Unavailable(_)) => return Err(HttpError::Service(e)),
            other => (Ok(p), other.unwrap_or(false)),
        },
        Err(e) => (Err(e), false),
    };
    match checked {
        Ok(p) if known => Ok(Some(p)),
        Ok(_) if state.auth_required => Err(unauthorized("The token's tenant does not exist.".into())),
        Err(e) if state.auth_required => Err(unauthorized(e.to_string())),
        _ => Ok(None),
    }
}

/// True when a request carries more than one `Authorization` header.
pub(crate) fn has_two_authorizations(headers: &HeaderMap) -> bool {
    headers.get_all(header::AUTHORIZATION).iter().nth(1).is_some()
}

/// The permissions of rulings.md 1: reads accept the four `.Read.All`/`.ReadWrite.All`
/// permissions, writes either `.ReadWrite.All`; personal Microsoft accounts never. A
/// resource outside Intune (`groups`) names its own in behaviour.json `permissions`,
/// keyed by the path's first segment.
fn authorize(
    state: &AppState,
    principal: Option<&enrollgraph_auth::Principal>,
    method: &ServiceMethod,
    path: &str,
) -> Result<(), HttpError> {
    let Some(p) = principal else { return Ok(()) };
    if p.personal_account {
        return Err(HttpError::Forbidden("Personal Microsoft accounts are not supported for this operation.".into()));
    }
    let write = !matches!(method, ServiceMethod::Get);
    // The same decoding as resolution (one function): a permission is never decided on a
    // spelling the service reads as another resource (issue 18 item 2).
    let first = enrollgraph_service::path::root_resource(path)?.unwrap_or_default();
    let own = state.service.model().behaviour.permissions(&first, write);
    let intune = if write { enrollgraph_auth::permissions::WRITE } else { enrollgraph_auth::permissions::READ };
    let allowed = match own {
        Some(list) => list.iter().any(|w| p.has_any(&[w.as_str()])),
        None => p.has_any(intune),
    };
    if allowed {
        return Ok(());
    }
    let who = match p.kind {
        enrollgraph_auth::PrincipalKind::Application => "Application",
        enrollgraph_auth::PrincipalKind::Delegated => "User",
    };
    // Intune's wording for a token without the permission.
    Err(HttpError::Forbidden(format!(
        "{who} is not authorized to perform this operation. {who} must have one of the following scopes: {}",
        own.map_or_else(|| intune.join(", "), |list| list.join(", "))
    )))
}

/// Reads and parses a JSON body: 413 above the limit, 415 for another media type,
/// 400 for malformed JSON. GETs may carry `Content-Type: application/json` and no body
/// (IntuneCD does: clients.md §0).
async fn read_json(headers: &HeaderMap, body: Body, method: &ServiceMethod) -> Result<Option<Value>, HttpError> {
    let bytes = read_limited(headers, body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) || matches!(method, ServiceMethod::Get) {
        return Ok(None);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence != "application/json" && !(essence.starts_with("application/") && essence.ends_with("+json")) {
        return Err(HttpError::UnsupportedMediaType(if content_type.is_empty() {
            "(none)".into()
        } else {
            content_type.to_owned()
        }));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| HttpError::MalformedJson(e.to_string()))?;
    check_string_lengths(&value)?;
    Ok(Some(value))
}

/// The longest string a write may store in one property. Graph documents no general bound
/// (its 4 MiB request limit bounds an object, and so [`BODY_LIMIT`] does here); this one
/// keeps a single property from holding most of it (issue 18 item 15: a storage quota per
/// property and object). Checked over the whole body, so `$batch` items' bodies too.
pub const MAX_STRING: usize = 256 * 1024;

fn check_string_lengths(v: &Value) -> Result<(), HttpError> {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.len() > MAX_STRING => {
                return Err(HttpError::Service(enrollgraph_service::ServiceError::BadRequest(format!(
                    "A string value is {} bytes long; the most a property holds is {MAX_STRING} bytes.",
                    s.len()
                ))));
            }
            Value::Array(items) => stack.extend(items),
            Value::Object(members) => stack.extend(members.values()),
            _ => {}
        }
    }
    Ok(())
}

/// Reads at most [`BODY_LIMIT`] bytes. Past the limit the rest is read and dropped (up to
/// [`DRAIN_LIMIT`] bytes or [`DRAIN_TIME`]) before the 413, so that a client still writing
/// its body reads the answer instead of a reset connection.
pub(crate) async fn read_limited(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, HttpError> {
    read_at_most(headers, body, BODY_LIMIT).await
}

/// [`read_limited`] with another limit (the token endpoint's is smaller).
pub(crate) async fn read_at_most(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, HttpError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let mut buf = Vec::new();
    if declared.is_none_or(|len| len <= limit) {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(body_error)?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    break;
                }
            }
        }
        if buf.len() <= limit {
            return Ok(buf);
        }
    }
    let mut drained = buf.len();
    let drain = async {
        while let Some(Ok(frame)) = body.frame().await {
            drained = drained.saturating_add(frame.data_ref().map_or(0, bytes::Buf::remaining));
            if drained > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    Err(HttpError::TooLarge)
}

/// A body that failed to arrive: `408` when the listener's body-read timeout ended it
/// (enrollgraph's listener fails the body with `TimedOut`), else `400`.
fn body_error(e: axum::Error) -> HttpError {
    let inner = e.into_inner();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
    while let Some(err) = source {
        if err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
            return HttpError::Injected {
                status: 408,
                code: "RequestTimeout".into(),
                message: "The request body did not arrive in time.".into(),
                retry_after: None,
            };
        }
        source = err.source();
    }
    HttpError::MalformedJson("the request body could not be read".into())
}

/// How long an oversized body is drained before answering 413 anyway.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// How much of an oversized body is read and dropped before answering 413.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
