//! The admin layer (issue 9): what a test suite needs from a Graph server beyond Graph.
//! [`Controls`] holds throttling, fault rules and the request journal, in this process's
//! memory; Graph requests pass through [`controlled_graph`] only while one of them is on
//! (three relaxed atomic loads otherwise). The admin API under `/_enrollgraph/` manages
//! them and the tenants (create with credentials, delete, reset, snapshot, restore); it
//! needs the admin key (`Authorization: Bearer <key>`) unless the server was started on
//! loopback with `--admin-auth off`. It answers JSON `{"error":{"code","message"}}` on
//! failure, never a Graph body: it is not Graph.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enrollgraph_service::{App, ServiceError, Snapshot};
use serde_json::{Value, json};

use crate::error::HttpError;
use crate::faults::{Action, Faults, RuleSpec};
use crate::journal::{Filter, Journal, Record};
use crate::throttle::{Clock, Mode, Throttle};
use crate::{AppState, RequestIds};

/// The admin API's path prefix.
pub const PREFIX: &str = "/_enrollgraph";

/// The largest admin API body (a snapshot to restore).
pub const ADMIN_BODY_LIMIT: usize = 512 * 1024 * 1024;

/// Throttling, faults and the journal, shared by every request of this process.
pub struct Controls {
    pub(crate) key: Option<String>,
    /// Throttling.
    pub throttle: Throttle,
    /// Fault rules.
    pub faults: Faults,
    /// The request journal.
    pub journal: Journal,
    /// The inspector's sign-in sessions (ui.rs).
    pub(crate) ui: crate::ui::Sessions,
}

/// How [`Controls`] start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The admin key's hash (`enrollgraph_auth::hash_generated_secret`: the key is kept
    /// hashed, issue 18 item 4); `None` leaves the admin API open (loopback only: the CLI
    /// checks).
    pub key: Option<String>,
    /// Throttling for every tenant.
    pub throttling: Mode,
    /// The clock only moves through the admin API (tests).
    pub manual_clock: bool,
    /// Seed of fault rules that name none.
    pub faults_seed: u64,
    /// Journal on.
    pub journal: bool,
    /// Requests kept per tenant.
    pub journal_size: usize,
}

impl Default for Settings {
    /// Everything off, and the admin API closed: its key is random and never shown (an
    /// open admin API must be asked for with `key: None`).
    fn default() -> Self {
        Settings {
            key: Some(enrollgraph_auth::hash_generated_secret(&format!("egadm_{}", uuid::Uuid::new_v4().simple()))),
            throttling: Mode::Off,
            manual_clock: false,
            faults_seed: 0,
            journal: false,
            journal_size: 100,
        }
    }
}

impl Controls {
    /// Builds the controls.
    #[must_use]
    pub fn new(s: Settings) -> Controls {
        Controls {
            key: s.key,
            throttle: Throttle::new(s.throttling, Clock::new(s.manual_clock)),
            faults: Faults::new(s.faults_seed),
            journal: Journal::new(s.journal, s.journal_size),
            ui: crate::ui::Sessions::default(),
        }
    }

    /// True when a Graph request must go through [`controlled_graph`].
    #[inline]
    pub fn active(&self) -> bool {
        self.throttle.is_on() || self.faults.any() || self.journal.is_on()
    }
}

/// A response body that fails at once: hyper closes the connection without a complete
/// answer (a fault rule's `drop`).
struct Abort;

impl http_body::Body for Abort {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection dropped by an enrollgraph fault rule",
        ))))
    }
}

fn dropped() -> Response {
    Response::new(Body::new(Abort))
}

fn is_write(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The tenant and app a Graph request runs as: the token's, or the default tenant when
/// no token is needed; `None` when the request will be refused as unauthenticated (it is
/// neither throttled nor faulted, as Graph's gateway refuses it first).
fn caller(state: &AppState, headers: &HeaderMap) -> Option<(String, Option<String>)> {
    match crate::authenticate(state, headers) {
        Ok(Some(p)) => Some((p.tenant.clone(), Some(p.app_id.clone()))),
        Ok(None) => Some((state.default_tenant.to_string(), None)),
        Err(_) => None,
    }
}

/// A Graph request while throttling, faults or the journal is on.
pub(crate) async fn controlled_graph(state: AppState, req: Request) -> Response {
    let started = Instant::now();
    let c = state.controls.clone();
    let (parts, body) = req.into_parts();
    let who = caller(&state, &parts.headers);
    let journal = c.journal.is_on();
    let journal_headers = journal.then(|| parts.headers.clone());
    let mut sent = Bytes::new();
    // A request that will be refused as unauthenticated is not read: it is answered (401)
    // before its body, which the journal then does not keep (issue 18: no 4 MiB body is
    // read for a caller without a token).
    let body = if journal && who.is_some() {
        match crate::read_limited(&parts.headers, body).await {
            Ok(b) => {
                sent = Bytes::from(b);
                Body::from(sent.clone())
            }
            Err(e) => {
                let ids = RequestIds::new(&parts.headers, crate::request_url(&state, &parts.headers, &parts.uri));
                let resp = crate::finish(e.into_graph_response(&ids), &ids);
                record(&state, &parts, who.as_ref(), journal_headers.as_ref(), &sent, &resp, started);
                return resp;
            }
        }
    } else {
        body
    };
    let path = parts.uri.path().to_owned();
    let mut resp = None;
    if let Some((tenant, app)) = &who {
        let decision = if c.faults.any() {
            c.faults.decide(parts.method.as_str(), &path, tenant, app.as_deref())
        } else {
            crate::faults::Decision::default()
        };
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        let ids = || RequestIds::new(&parts.headers, crate::request_url(&state, &parts.headers, &parts.uri));
        match decision.action {
            Some(Action::Drop) => {
                record_status(&state, &parts, who.as_ref(), journal_headers.as_ref(), &sent, 0, None, started);
                return dropped();
            }
            Some(Action::Respond { status, code, message, retry_after }) => {
                let ids = ids();
                let e = HttpError::Injected { status, code, message, retry_after };
                resp = Some(crate::finish(e.into_graph_response(&ids), &ids));
            }
            None => {
                let after_version = path.trim_start_matches('/').split_once('/').map_or("", |(_, p)| p);
                let batch = crate::is_batch(after_version);
                // The envelope of a batch is not counted: its requests are, one by one
                // (graph-behaviours.md: "Each item is throttled on its own").
                if !batch
                    && c.throttle.is_on()
                    && let Err(secs) = c.throttle.check(tenant, app.as_deref(), is_write(&parts.method))
                {
                    let ids = ids();
                    resp = Some(crate::finish(HttpError::Throttled(secs).into_graph_response(&ids), &ids));
                }
            }
        }
    }
    let resp = match resp {
        Some(r) => r,
        None => crate::graph_plain(state.clone(), Request::from_parts(parts.clone(), body)).await,
    };
    record(&state, &parts, who.as_ref(), journal_headers.as_ref(), &sent, &resp, started);
    resp
}

/// Throttling and status faults for one request of a `$batch` (its sub-response carries
/// the 429 or the injected error; latency applies, a drop rule does not: one request of
/// a batch has no connection of its own).
pub(crate) async fn batch_item_gate(
    state: &AppState,
    tenant: &str,
    app: Option<&str>,
    method: &str,
    path: &str,
) -> Option<HttpError> {
    let c = &state.controls;
    if c.faults.any() {
        let d = c.faults.decide(method, path, tenant, app);
        if !d.latency.is_zero() {
            tokio::time::sleep(d.latency).await;
        }
        if let Some(Action::Respond { status, code, message, retry_after }) = d.action {
            return Some(HttpError::Injected { status, code, message, retry_after });
        }
    }
    if c.throttle.is_on()
        && let Err(secs) = c.throttle.check(tenant, app, !method.eq_ignore_ascii_case("GET"))
    {
        return Some(HttpError::Throttled(secs));
    }
    None
}

fn record(
    state: &AppState,
    parts: &axum::http::request::Parts,
    who: Option<&(String, Option<String>)>,
    headers: Option<&HeaderMap>,
    body: &[u8],
    resp: &Response,
    started: Instant,
) {
    let rid = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let ids = (rid("request-id"), rid("client-request-id"));
    record_status(state, parts, who, headers, body, resp.status().as_u16(), Some(ids), started);
}

#[allow(clippy::too_many_arguments)]
fn record_status(
    state: &AppState,
    parts: &axum::http::request::Parts,
    who: Option<&(String, Option<String>)>,
    headers: Option<&HeaderMap>,
    body: &[u8],
    status: u16,
    ids: Option<(Option<String>, Option<String>)>,
    started: Instant,
) {
    let Some(headers) = headers else { return };
    let (request_id, client_request_id) = ids.unwrap_or_default();
    let default = state.default_tenant.to_string();
    state.controls.journal.record(&Record {
        tenant: who.map_or(default.as_str(), |w| w.0.as_str()),
        app: who.and_then(|w| w.1.as_deref()),
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers,
        body,
        status,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        request_id,
        client_request_id,
    });
}

/// Journals a token-endpoint request (its form's secrets redacted).
pub(crate) fn journal_token(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    status: u16,
    started: Instant,
) {
    let path = format!("/{tenant}/oauth2/v2.0/token");
    // Anyone may name any tenant here: a journal per unknown name would let unauthenticated
    // requests grow memory and push real tenants' journals out (journal.rs MAX_TENANTS), so
    // those go to the default tenant, like other unauthenticated requests.
    let known = state.identity.tenant_exists(&state.service, tenant);
    let default = state.default_tenant.to_string();
    state.controls.journal.record(&Record {
        tenant: if known { tenant } else { &default },
        app: None,
        method: "POST",
        path: &path,
        query: "",
        headers,
        body,
        status,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        request_id: None,
        client_request_id: None,
    });
}

// ---------------------------------------------------------------------------------------
// The admin API.

/// An admin API failure: status, code and message as JSON.
#[derive(Debug)]
struct AdminError(StatusCode, &'static str, String);

impl AdminError {
    fn bad(m: impl Into<String>) -> AdminError {
        AdminError(StatusCode::BAD_REQUEST, "BadRequest", m.into())
    }

    fn not_found(m: impl Into<String>) -> AdminError {
        AdminError(StatusCode::NOT_FOUND, "NotFound", m.into())
    }
}

impl From<ServiceError> for AdminError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(m) | ServiceError::BadQuery(m) => AdminError::bad(m),
            ServiceError::ResourceNotFound(m) => AdminError::not_found(m),
            ServiceError::Conflict(m) => AdminError(StatusCode::CONFLICT, "Conflict", m),
            other => {
                tracing::error!(error = %other, "admin API failure");
                AdminError(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "The operation failed.".into())
            }
        }
    }
}

fn reply(status: StatusCode, v: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], v.to_string()).into_response()
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let mut r = reply(self.0, &json!({"error": {"code": self.1, "message": self.2}}));
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"enrollgraph-admin\""));
        }
        r
    }
}

/// Wrong admin keys one peer address may present per window (`FailedSignIns`' 60 s).
pub(crate) const FAILED_ADMIN_KEYS_PER_PEER: u32 = 20;
/// Wrong admin keys all peers together may present per window: a key chosen with
/// `--admin-key` may be guessable, and its hash is cheap (1,000 rounds), so guesses from
/// many addresses are bounded too. While a limit holds, the right key is refused as well
/// (an answer that differed for it would still let guesses through).
pub(crate) const FAILED_ADMIN_KEYS_IN_ALL: u32 = 300;

/// How an admin-key check failed.
pub(crate) enum KeyRefused {
    /// Wrong.
    Wrong,
    /// Too many wrong keys: wait this many seconds.
    Throttled(u64),
}

/// Checks `presented` against the admin key's `hash` under the failed-guess limits, for the
/// admin API and the inspector's sign-in alike (SECURITY.md "Guessing").
pub(crate) fn guess_admin_key(
    state: &AppState,
    peer: Option<std::net::IpAddr>,
    presented: &str,
    hash: &str,
) -> Result<(), KeyRefused> {
    let peer_key = peer.map(|p| format!("admin\n{p}"));
    let mut limits = vec![("admin", FAILED_ADMIN_KEYS_IN_ALL)];
    limits.extend(peer_key.as_deref().map(|k| (k, FAILED_ADMIN_KEYS_PER_PEER)));
    if let Some(wait) = state.identity.failed_sign_ins.blocked(&limits) {
        return Err(KeyRefused::Throttled(wait));
    }
    if enrollgraph_auth::verify_secret(presented, hash) {
        return Ok(());
    }
    let keys: Vec<&str> = limits.iter().map(|(k, _)| *k).collect();
    state.identity.failed_sign_ins.record(&keys);
    Err(KeyRefused::Wrong)
}

/// The peer address the listener recorded (absent in tests that call the router directly).
pub(crate) fn peer_of(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

/// `None` when the request may use the admin API, else the answer that refuses it.
fn check_key(state: &AppState, parts: &axum::http::request::Parts) -> Option<Response> {
    let Some(key) = &state.controls.key else { return None };
    let headers = &parts.headers;
    let refuse = |status, code, message: &str| AdminError(status, code, message.to_owned()).into_response();
    if crate::has_two_authorizations(headers) {
        return Some(refuse(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The request has more than one Authorization header.",
        ));
    }
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let presented = value.and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let Some(presented) = presented else {
        return Some(refuse(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The admin API needs the admin key: send 'Authorization: Bearer <admin key>' (printed at start).",
        ));
    };
    // Constant-time comparison of the derived hash (`ring::pbkdf2::verify`).
    match guess_admin_key(state, peer_of(&parts.extensions), presented, key) {
        Ok(()) => None,
        Err(KeyRefused::Throttled(wait)) => {
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many wrong admin keys; retry after the time in Retry-After.",
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            Some(r)
        }
        Err(KeyRefused::Wrong) if presented.matches('.').count() == 2 => Some(refuse(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "A Graph access token does not open the admin API; send the admin key.",
        )),
        Err(KeyRefused::Wrong) => Some(refuse(StatusCode::FORBIDDEN, "Forbidden", "The admin key is wrong.")),
    }
}

/// `/_enrollgraph` and everything under it.
pub async fn handle(State(state): State<AppState>, req: Request) -> Response {
    match serve(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn json_of(bytes: &[u8]) -> Result<Option<Value>, AdminError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|e| AdminError::bad(format!("The body is not JSON: {e}")))
}

fn need_json(bytes: &[u8]) -> Result<Value, AdminError> {
    json_of(bytes)?.ok_or_else(|| AdminError::bad("This operation needs a JSON body."))
}

fn method_not_allowed(allow: &str) -> AdminError {
    AdminError(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", format!("Allowed here: {allow}."))
}

async fn serve(state: &AppState, req: Request) -> Result<Response, AdminError> {
    // The inspector (issue 15) signs in with a cookie of its own, not the admin key.
    if crate::ui::is_ui(req.uri().path()) {
        return Ok(crate::ui::handle(state, req).await);
    }
    let (parts, body) = req.into_parts();
    if let Some(refused) = check_key(state, &parts) {
        return Ok(refused);
    }
    // Snapshots of big tenants exceed Graph's 4 MiB body limit; the admin key guards this.
    let bytes = axum::body::to_bytes(body, ADMIN_BODY_LIMIT).await.map_err(|_| {
        AdminError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("The body exceeds {} MiB or could not be read.", ADMIN_BODY_LIMIT >> 20),
        )
    })?;
    dispatch(state, &parts, &bytes).await
}

/// An admin API request whose caller is authorised: the inspector reads through this
/// (ui.rs), so it shows what the admin API answers and keeps no data model of its own.
pub(crate) async fn answer(state: &AppState, parts: &axum::http::request::Parts, bytes: &[u8]) -> Response {
    dispatch(state, parts, bytes).await.unwrap_or_else(IntoResponse::into_response)
}

async fn dispatch(state: &AppState, parts: &axum::http::request::Parts, bytes: &[u8]) -> Result<Response, AdminError> {
    let base = crate::base_url(state, &parts.headers, &parts.uri);
    let rest = parts.uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let segs: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let query = parts.uri.query().unwrap_or_default();
    let m = &parts.method;
    let c = &state.controls;
    match segs.as_slice() {
        [] => match *m {
            Method::GET => Ok(reply(
                StatusCode::OK,
                &json!({
                    "tenants": format!("{base}{PREFIX}/tenants"),
                    "throttling": format!("{base}{PREFIX}/throttling"),
                    "faults": format!("{base}{PREFIX}/faults"),
                    "journal": format!("{base}{PREFIX}/journal"),
                    "clock": format!("{base}{PREFIX}/clock"),
                }),
            )),
            _ => Err(method_not_allowed("GET")),
        },
        ["tenants"] => match *m {
            Method::GET => {
                let list: Vec<Value> = state.service.tenants()?.into_iter().map(|t| json!({"id": t})).collect();
                Ok(reply(StatusCode::OK, &json!({"value": list})))
            }
            Method::POST => create_tenant(state, json_of(bytes)?, &base).await,
            _ => Err(method_not_allowed("GET, POST")),
        },
        ["tenants", id] => match *m {
            Method::GET => {
                enrollgraph_service::check_tenant_id(id)?;
                if !state.service.tenant_exists(id)? {
                    return Err(AdminError::not_found(format!("The tenant '{id}' does not exist.")));
                }
                let apps: Vec<Value> = state
                    .service
                    .apps(id)?
                    .into_iter()
                    .map(|a| json!({"clientId": a.app_id, "displayName": a.display_name, "roles": a.roles}))
                    .collect();
                let throttling = c.throttle.tenant_mode(id).map(Mode::to_json);
                Ok(reply(StatusCode::OK, &json!({"id": id, "apps": apps, "throttling": throttling})))
            }
            // With --auth off, requests without a token are served in the default tenant:
            // deleted, their writes would land in a tenant that does not exist (listed
            // nowhere, found by no snapshot). It can be reset instead.
            Method::DELETE if !state.auth_required && *id == &*state.default_tenant => Err(AdminError(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "The tenant '{id}' is the default tenant, which requests without a token are served in (--auth off); reset it instead."
                ),
            )),
            Method::DELETE => {
                state.service.delete_tenant(id).await?;
                state.identity.forget_tenant(id);
                c.throttle.forget_tenant(id);
                c.journal.clear(Some(id));
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(method_not_allowed("GET, DELETE")),
        },
        ["tenants", id, "reset"] => match *m {
            Method::POST => {
                state.service.reset_tenant(id).await?;
                c.throttle.forget_buckets(id);
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(method_not_allowed("POST")),
        },
        ["tenants", id, "snapshot"] => match *m {
            Method::GET => {
                let snap = state
                    .service
                    .export_tenant(id)?
                    .ok_or_else(|| AdminError::not_found(format!("The tenant '{id}' does not exist.")))?;
                let text = serde_json::to_string(&snap)
                    .map_err(|e| AdminError::from(ServiceError::Internal(e.to_string())))?;
                Ok((StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], text)
                    .into_response())
            }
            Method::PUT => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return Err(AdminError::bad("This operation needs a snapshot (JSON) as its body."));
                }
                let snap: Snapshot = serde_json::from_slice(bytes)
                    .map_err(|e| AdminError::bad(format!("The body is not a snapshot: {e}")))?;
                state.service.restore_tenant(id, snap).await?;
                c.throttle.forget_buckets(id);
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(method_not_allowed("GET, PUT")),
        },
        ["tenants", id, "effective"] => match *m {
            Method::GET => effective(state, id, query),
            _ => Err(method_not_allowed("GET")),
        },
        ["tenants", id, "apps"] => match *m {
            Method::POST => {
                enrollgraph_service::check_tenant_id(id)?;
                let (app, secret) = new_app(json_of(bytes)?.as_ref(), &[])?;
                // A create: replacing a registration would drop its secrets (the development
                // app's printed one included) and roles without a word.
                if state.service.find_app(id, &app.app_id)?.is_some() {
                    return Err(AdminError(
                        StatusCode::CONFLICT,
                        "Conflict",
                        format!("The tenant '{id}' has an app '{}' already.", app.app_id),
                    ));
                }
                let out = credentials(id, &app, &secret, &base);
                state.service.save_app(id, app).await?;
                Ok(reply(StatusCode::CREATED, &out))
            }
            _ => Err(method_not_allowed("POST")),
        },
        ["tenants", id, "throttling"] => {
            enrollgraph_service::check_tenant_id(id)?;
            match *m {
                Method::GET => Ok(reply(
                    StatusCode::OK,
                    &json!({"tenant": id, "own": c.throttle.tenant_mode(id).map(Mode::to_json),
                            "effective": c.throttle.tenant_mode(id).unwrap_or_else(|| c.throttle.default_mode()).to_json()}),
                )),
                Method::PUT => {
                    let mode = Mode::from_json(&need_json(bytes)?).map_err(AdminError::bad)?;
                    c.throttle.set_tenant(id, Some(mode));
                    Ok(reply(StatusCode::OK, &mode.to_json()))
                }
                Method::DELETE => {
                    c.throttle.set_tenant(id, None);
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                _ => Err(method_not_allowed("GET, PUT, DELETE")),
            }
        }
        ["throttling"] => match *m {
            Method::GET => Ok(reply(StatusCode::OK, &c.throttle.default_mode().to_json())),
            Method::PUT => {
                let mode = Mode::from_json(&need_json(bytes)?).map_err(AdminError::bad)?;
                c.throttle.set_default(mode);
                Ok(reply(StatusCode::OK, &mode.to_json()))
            }
            _ => Err(method_not_allowed("GET, PUT")),
        },
        ["faults"] => match *m {
            Method::GET => Ok(reply(StatusCode::OK, &json!({"value": c.faults.list()}))),
            Method::POST => {
                let spec: RuleSpec = serde_json::from_value(need_json(bytes)?)
                    .map_err(|e| AdminError::bad(format!("The body is not a fault rule: {e}")))?;
                let rule = c.faults.add(spec).map_err(AdminError::bad)?;
                Ok(reply(StatusCode::CREATED, &rule))
            }
            Method::DELETE => {
                c.faults.clear();
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(method_not_allowed("GET, POST, DELETE")),
        },
        ["faults", id] => match *m {
            Method::DELETE if c.faults.remove(id) => Ok(StatusCode::NO_CONTENT.into_response()),
            Method::DELETE => Err(AdminError::not_found(format!("There is no fault rule '{id}'."))),
            _ => Err(method_not_allowed("DELETE")),
        },
        ["journal"] => match *m {
            Method::GET => {
                let filter = Filter::parse(query).map_err(AdminError::bad)?;
                Ok(reply(StatusCode::OK, &json!({"value": c.journal.query(&filter)})))
            }
            Method::DELETE => {
                let filter = Filter::parse(query).map_err(AdminError::bad)?;
                if filter.method.is_some()
                    || filter.path.is_some()
                    || filter.status.is_some()
                    || filter.since.is_some()
                    || filter.until.is_some()
                {
                    return Err(AdminError::bad("Only 'tenant' narrows what is cleared."));
                }
                let n = c.journal.clear(filter.tenant.as_deref());
                Ok(reply(StatusCode::OK, &json!({"cleared": n})))
            }
            _ => Err(method_not_allowed("GET, DELETE")),
        },
        ["journal", "settings"] => match *m {
            Method::GET => Ok(reply(StatusCode::OK, &c.journal.settings())),
            Method::PUT | Method::PATCH => {
                c.journal.configure(&need_json(bytes)?).map_err(AdminError::bad)?;
                Ok(reply(StatusCode::OK, &c.journal.settings()))
            }
            _ => Err(method_not_allowed("GET, PUT, PATCH")),
        },
        ["clock"] => {
            let clock = &c.throttle.clock;
            let now = || json!({"manual": clock.is_manual(), "nowMilliseconds": clock.now_ms()});
            match *m {
                Method::GET => Ok(reply(StatusCode::OK, &now())),
                Method::POST if !clock.is_manual() => Err(AdminError(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "The clock is the real one; start the server with --manual-clock to move it.".into(),
                )),
                Method::POST => {
                    let v = need_json(bytes)?;
                    let ms = match (v.get("advanceSeconds"), v.get("advanceMilliseconds")) {
                        (Some(s), None) => {
                            s.as_f64().filter(|s| (0.0..=1e9).contains(s)).map(|s| (s * 1000.0).round() as u64)
                        }
                        (None, Some(ms)) => ms.as_u64().filter(|ms| *ms <= 1_000_000_000_000),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        AdminError::bad(
                            "Give 'advanceSeconds' (a number from 0 to 1e9) or 'advanceMilliseconds' (a whole number from 0 to 1e12).",
                        )
                    })?;
                    clock.advance(ms);
                    Ok(reply(StatusCode::OK, &now()))
                }
                _ => Err(method_not_allowed("GET, POST")),
            }
        }
        _ => Err(AdminError::not_found(format!("Nothing is served at {}.", parts.uri.path()))),
    }
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

/// An app registration from `{"displayName": "...", "roles": [...], "clientId": "...",
/// "certificates": ["-----BEGIN CERTIFICATE-----…"]}` (all optional) and its new secret.
/// A certificate PEM holding a private key, or an expired certificate, is refused.
fn new_app(body: Option<&Value>, extra_keys: &[&str]) -> Result<(App, String), AdminError> {
    let empty = serde_json::Map::new();
    let obj = match body {
        None => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return Err(AdminError::bad("The body must be a JSON object.")),
    };
    if let Some(k) = obj.keys().find(|k| {
        !["displayName", "roles", "clientId", "certificates"].contains(&k.as_str()) && !extra_keys.contains(&k.as_str())
    }) {
        return Err(AdminError::bad(format!(
            "Unknown property '{k}' (displayName, roles, clientId, certificates{}).",
            extra_keys.iter().map(|k| format!(", {k}")).collect::<String>()
        )));
    }
    let display_name = match obj.get("displayName") {
        None => "enrollgraph test app".to_owned(),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
        Some(_) => return Err(AdminError::bad("'displayName' must be a string of 1 to 256 characters.")),
    };
    let roles = match obj.get("roles") {
        None => vec![enrollgraph_auth::permissions::SERVICE_CONFIG_READ_WRITE_ALL.to_owned()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|r| r.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| AdminError::bad("'roles' must be an array of permission names."))?,
        Some(_) => return Err(AdminError::bad("'roles' must be an array of permission names.")),
    };
    let app_id = match obj.get("clientId") {
        None => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => s.to_ascii_lowercase(),
        Some(_) => return Err(AdminError::bad("'clientId' must be a GUID.")),
    };
    let certificates = match obj.get("certificates") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.len() <= 16 => a
            .iter()
            .map(|pem| {
                let pem =
                    pem.as_str().ok_or_else(|| AdminError::bad("'certificates' must be an array of PEM strings."))?;
                enrollgraph_auth::ClientCertificate::from_pem(pem, crate::identity::now())
                    .map_err(|e| AdminError::bad(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(AdminError::bad("'certificates' must be an array of at most 16 PEM strings.")),
    };
    let secret = enrollgraph_auth::generate_secret();
    let app = App {
        app_id,
        display_name,
        roles,
        secret_hashes: vec![enrollgraph_auth::hash_generated_secret(&secret)],
        certificates,
    };
    Ok((app, secret))
}

fn credentials(tenant: &str, app: &App, secret: &str, base: &str) -> Value {
    json!({
        "tenantId": tenant,
        "clientId": app.app_id,
        "clientSecret": secret,
        "roles": app.roles,
        "certificateThumbprints": app.certificates.iter().map(|c| c.thumbprint.as_str()).collect::<Vec<_>>(),
        "authority": base,
        "tokenEndpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "graphUrl": format!("{base}/beta"),
    })
}

/// `POST /_enrollgraph/tenants`: `{"id"?, "displayName"?, "roles"?, "clientId"?}` → 201 with
/// the tenant id and a ready app's credentials.
async fn create_tenant(state: &AppState, body: Option<Value>, base: &str) -> Result<Response, AdminError> {
    let id = match body.as_ref().and_then(|b| b.get("id")) {
        None => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(AdminError::bad("'id' must be a string.")),
    };
    enrollgraph_service::check_tenant_id(&id)?;
    let domains = match body.as_ref().and_then(|b| b.get("domains")) {
        None => Vec::new(),
        Some(Value::Array(a)) if a.len() <= 16 => a
            .iter()
            .map(|d| d.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| AdminError::bad("'domains' must be an array of domain names."))?,
        Some(_) => return Err(AdminError::bad("'domains' must be an array of at most 16 domain names.")),
    };
    for d in &domains {
        let d = enrollgraph_service::canonical_tenant_id(d)?;
        if !d.contains('.') {
            return Err(AdminError::bad(format!("'{d}' is not a domain name: give at least two labels.")));
        }
        if state.service.resolve_tenant(&d)?.is_some() {
            return Err(AdminError(StatusCode::CONFLICT, "Conflict", format!("'{d}' names another tenant already.")));
        }
    }
    let (app, secret) = new_app(body.as_ref(), &["id", "domains"])?;
    let mut out = credentials(&id, &app, &secret, base);
    if !state.service.create_tenant(&id, vec![app]).await? {
        return Err(AdminError(StatusCode::CONFLICT, "Conflict", format!("The tenant '{id}' exists already.")));
    }
    for d in &domains {
        state.service.add_domain(&id, d).await?;
    }
    out["domains"] = json!(state.service.domains(&id)?);
    Ok(reply(StatusCode::CREATED, &out))
}

/// `GET /_enrollgraph/tenants/{tenant}/effective?group={id}[&group=…][&device.{property}=…]`:
/// which enrollment configuration of each kind and which Autopilot profile apply to a member
/// of those groups, and why (issue 15; `enrollgraph_service::effective`, the contract in
/// docs/effective-assignments.md).
fn effective(state: &AppState, tenant: &str, query: &str) -> Result<Response, AdminError> {
    let q = enrollgraph_service::EffectiveQuery::from_query_string(query)?;
    let answer = state.service.effective_assignments(tenant, &q)?;
    Ok(reply(StatusCode::OK, &answer))
}
