//! The built-in Microsoft identity platform endpoints a client needs (clients.md §1, §2b):
//! OIDC discovery, JWKS, instance discovery, and the v2.0 token endpoint with the
//! client-credentials grant (secret) and the resource-owner password grant (test users).
//! Answers and errors follow Entra's shapes (AADSTS codes: enrollgraph-auth `TokenError`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enrollgraph_auth::{AuthError, Issuer, KeySet, Principal, TokenError, Validator};
use enrollgraph_service::{Incarnation, Service};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::AppState;
use crate::throttle::{FAILED_SIGN_INS_PER_APP, FAILED_SIGN_INS_PER_PEER, FailedSignIns};

/// How long a tenant's incarnation read from the store is trusted: another replica or the
/// CLI may delete and re-create the tenant, and this bounds how long its old tokens still
/// open it here (the admin API of this process forgets at once).
const INCARNATION_TTL: Duration = Duration::from_secs(1);

/// The largest token request body. A client-credentials or password request is a few
/// hundred bytes, a client assertion a few KiB; Entra documents no limit, so this is ours
/// (the 2 MB default of a body extractor let unauthenticated clients pin memory: issue 18).
pub const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// How long a token request waits for a new server's first signing key
/// ([`Identity::pending`]): the RSA search takes 0.2–0.9 s; longer means its store is out
/// of reach, and the request is answered `500` (Entra's `server_error`) rather than held.
const KEYS_WAIT: Duration = Duration::from_secs(30);

/// Token lifetime, as Entra's default (about an hour).
const TOKEN_LIFETIME: i64 = 3599;

/// Keys, issuer and validator, shared by every request.
pub struct Identity {
    validator: Validator,
    issuer: RwLock<Issuer>,
    /// Tenants seen to exist, with their incarnation and when it was read. FxHash: asked
    /// on every request with a token, and only tenants found in the store are ever keys
    /// (an attacker's spellings are looked up, never inserted), so no chain can be grown.
    known_tenants: RwLock<rustc_hash::FxHashMap<String, (Incarnation, Instant)>>,
    last_reload: AtomicI64,
    /// Bounds the token requests hashing at once (PBKDF2 runs on the blocking pool, not
    /// on the async workers that serve Graph: issue 18 item 9).
    hashing: Semaphore,
    /// Failed sign-ins per (tenant, app) and per peer address.
    pub(crate) failed_sign_ins: FailedSignIns,
    /// Secrets the token endpoint refuses whatever app holds them (the well-known
    /// development secret off loopback: issue 18 item 5).
    refused_secrets: Vec<String>,
    /// Whether the signing keys are here: a server on a new data dir answers at once and
    /// makes its first key meanwhile ([`Identity::pending`]); signing and publishing wait.
    keys_state: tokio::sync::watch::Sender<KeysState>,
}

/// Where the signing keys are (see [`Identity::pending`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeysState {
    /// Being made: the token endpoint and the JWKS wait.
    Pending,
    /// Installed.
    Ready,
    /// Making or storing them failed: the token endpoint answers `500` (the JWKS, empty).
    Failed(String),
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Identity {
    /// Builds the identity state from the persisted key set.
    #[must_use]
    pub fn new(keys: &KeySet) -> Identity {
        Identity {
            validator: Validator::new(
                keys,
                "https://login.microsoftonline.com",
                enrollgraph_auth::graph_audiences(),
                300,
            ),
            issuer: RwLock::new(Issuer::new(keys.clone(), "https://login.microsoftonline.com")),
            known_tenants: RwLock::new(rustc_hash::FxHashMap::default()),
            last_reload: AtomicI64::new(0),
            hashing: Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)),
            failed_sign_ins: FailedSignIns::default(),
            refused_secrets: Vec::new(),
            keys_state: tokio::sync::watch::Sender::new(if keys.is_empty() {
                KeysState::Pending
            } else {
                KeysState::Ready
            }),
        }
    }

    /// The identity of a server whose first signing key is still being made: it validates
    /// nothing of its own yet (a token signed by another process's key is found by the
    /// reload in [`Identity::validate`]), and the token endpoint and the JWKS wait for
    /// [`Identity::keys_made`]. The RSA-2048 prime search takes 0.2–0.9 s, which a start on
    /// a new data dir used to spend before it answered (docs/performance.md, thirteenth
    /// round); a suite that starts a server per test and never asks for a token
    /// (`--auth off`) now never waits for it.
    #[must_use]
    pub fn pending() -> Identity {
        Identity::new(&KeySet::empty())
    }

    /// Installs the key set made (and stored) for a [`Identity::pending`] identity, or
    /// records why there is none: the token endpoint then answers `500` in Entra's shape.
    pub fn keys_made(&self, made: Result<KeySet, String>) {
        match made {
            Ok(keys) => {
                self.install(keys);
                self.keys_state.send_replace(KeysState::Ready);
            }
            Err(e) => {
                tracing::error!(error = %e, "the signing keys could not be made: the token endpoint answers 500");
                self.keys_state.send_replace(KeysState::Failed(e));
            }
        }
    }

    /// Verifies and signs with `keys` from now on (the first key made, or a reload after
    /// another process rotated them).
    fn install(&self, keys: KeySet) {
        self.validator.update_keys(&keys);
        self.issuer.write().unwrap_or_else(std::sync::PoisonError::into_inner).set_keys(keys);
    }

    /// Waits until the signing keys are installed ([`Identity::pending`]).
    ///
    /// # Errors
    /// Why they could not be made.
    pub async fn keys_ready(&self) -> Result<(), String> {
        if *self.keys_state.borrow() == KeysState::Ready {
            return Ok(());
        }
        let mut state = self.keys_state.subscribe();
        // Bounded: a database out of reach keeps the first key from being stored (its maker
        // retries), and a token request must not hang on it.
        let settled = tokio::time::timeout(KEYS_WAIT, state.wait_for(|s| *s != KeysState::Pending))
            .await
            .map_err(|_| format!("the signing keys were not ready within {} s", KEYS_WAIT.as_secs()))?
            .map_err(|e| e.to_string())?;
        match &*settled {
            KeysState::Failed(e) => Err(e.clone()),
            KeysState::Ready | KeysState::Pending => Ok(()),
        }
    }

    /// The same identity refusing `secret` at the token endpoint for every app (the
    /// well-known development secret on a listener that is not loopback only).
    #[must_use]
    pub fn refusing_secret(mut self, secret: &str) -> Identity {
        self.refused_secrets.push(secret.to_owned());
        self
    }

    fn issuer(&self) -> Issuer {
        match self.issuer.read() {
            Ok(i) => i.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Validates a bearer token. A key this process does not know may have been made by a
    /// rotation in another process (CLI, replica): reload the keys once a second at most.
    ///
    /// # Errors
    /// The token's rejection.
    pub fn validate(&self, service: &Service, token: &str) -> Result<Principal, AuthError> {
        self.validate_known(service, token).map(|(p, _)| Arc::unwrap_or_clone(p))
    }

    /// [`Identity::validate`], and whether the token's tenant exists when the incarnation
    /// check already found out (`None`: ask [`Identity::check_tenant`], which answers 503
    /// while the store is out of reach). Every Graph request with a token asks both; one
    /// look-up of the tenant instead of two (callgrind, W2 with a token: ~0.7 k
    /// instructions).
    ///
    /// # Errors
    /// The token's rejection.
    pub fn validate_known(&self, service: &Service, token: &str) -> Result<(Arc<Principal>, Option<bool>), AuthError> {
        let principal = self.validate_signature(service, token)?;
        let known = self.check_incarnation(service, &principal)?;
        Ok((principal, known))
    }

    /// A token issued in another incarnation of its tenant (deleted and created again
    /// since) is refused (issue 18 item 8). This runs on every request, after the
    /// validator's cache, so no cached token outlives its tenant. A token without the
    /// claim (hand-signed with the server's keys) must be issued after the tenant was
    /// created. A tenant that does not exist is left to the caller (401 or `--auth off`).
    /// Whether the tenant exists, when this found out (see [`Identity::validate_known`]).
    fn check_incarnation(&self, service: &Service, p: &Principal) -> Result<Option<bool>, AuthError> {
        let matches = |inc: &Incarnation| match &p.tenant_incarnation {
            Some(id) => *id == inc.id,
            None => p.issued_at >= inc.created,
        };
        match self.with_incarnation(service, &p.tenant, false, matches) {
            Ok(Some(true)) => Ok(Some(true)),
            // The cached incarnation may be older than the token: read again (a read that
            // fails refuses the token: it cannot be shown to be of this incarnation).
            Ok(Some(false)) => match self.with_incarnation(service, &p.tenant, true, matches) {
                Ok(Some(true)) => Ok(Some(true)),
                Ok(None) => Ok(Some(false)),
                Ok(Some(false)) | Err(_) => Err(AuthError::StaleTenant),
            },
            // Not found: the caller answers 401 (or serves the default tenant with
            // `--auth off`).
            Ok(None) => Ok(Some(false)),
            // The store is out of reach: the caller's tenant check decides (503).
            Err(_) => Ok(None),
        }
    }

    /// `f` of the incarnation of `tenant`, `None` when the tenant does not exist. The
    /// incarnation is cached for [`INCARNATION_TTL`] unless `fresh`; a cache hit (every
    /// Graph request) allocates nothing.
    fn with_incarnation<R>(
        &self,
        service: &Service,
        tenant: &str,
        fresh: bool,
        f: impl FnOnce(&Incarnation) -> R,
    ) -> Result<Option<R>, enrollgraph_service::ServiceError> {
        // Tokens carry the canonical (lower-case) id; other spellings come from URLs.
        let key: std::borrow::Cow<'_, str> = if tenant.bytes().any(|b| b.is_ascii_uppercase()) {
            tenant.to_ascii_lowercase().into()
        } else {
            tenant.into()
        };
        if !fresh
            && let Ok(k) = self.known_tenants.read()
            && let Some((inc, at)) = k.get(key.as_ref())
            && at.elapsed() < INCARNATION_TTL
        {
            return Ok(Some(f(inc)));
        }
        // A store out of reach is not a tenant that does not exist: the cache keeps what it
        // knew and the caller answers 503 (issue 18 item 16).
        let found = service.tenant_incarnation(&key)?;
        let out = found.as_ref().map(f);
        if let Ok(mut k) = self.known_tenants.write() {
            match found {
                Some(inc) => {
                    k.insert(key.into_owned(), (inc, Instant::now()));
                }
                None => {
                    k.remove(key.as_ref());
                }
            }
        }
        Ok(out)
    }

    /// The incarnation of `tenant`, `None` when it does not exist (cached, see
    /// [`Identity::with_incarnation`]).
    fn incarnation(&self, service: &Service, tenant: &str, fresh: bool) -> Option<Incarnation> {
        self.with_incarnation(service, tenant, fresh, Incarnation::clone).ok().flatten()
    }

    fn validate_signature(&self, service: &Service, token: &str) -> Result<Arc<Principal>, AuthError> {
        match self.validator.validate_shared(token, now()) {
            Err(AuthError::UnknownKey) if self.last_reload.swap(now(), Ordering::Relaxed) != now() => {
                if let Ok(Some(json)) = service.keys()
                    && let Ok(keys) = KeySet::from_json(&json)
                {
                    self.install(keys);
                }
                self.validator.validate_shared(token, now())
            }
            other => other,
        }
    }

    /// True when `tenant` exists (cached for a second once seen).
    pub fn tenant_exists(&self, service: &Service, tenant: &str) -> bool {
        self.check_tenant(service, tenant).unwrap_or(false)
    }

    /// Whether `tenant` exists (its incarnation cached, see [`Identity::with_incarnation`]),
    /// or why that cannot be told: a database out of reach is a `503` to retry, not a `401`
    /// for a good token (issue 18 item 16).
    ///
    /// # Errors
    /// Storage failures.
    pub fn check_tenant(&self, service: &Service, tenant: &str) -> Result<bool, enrollgraph_service::ServiceError> {
        Ok(self.with_incarnation(service, tenant, false, |_| ())?.is_some())
    }

    /// Forgets a tenant seen to exist (after the admin API deleted it).
    pub fn forget_tenant(&self, tenant: &str) {
        if let Ok(mut k) = self.known_tenants.write() {
            k.remove(&tenant.to_ascii_lowercase());
        }
    }

    /// Graph's `WWW-Authenticate` for a 401.
    #[must_use]
    pub fn www_authenticate(&self) -> String {
        self.validator.www_authenticate()
    }
}

fn json(status: StatusCode, v: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], v.to_string())
        .into_response()
}

fn token_failure(e: &TokenError, headers: &HeaderMap) -> Response {
    let correlation = headers.get("client-request-id").and_then(|v| v.to_str().ok());
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    json(status, &e.to_json_at(correlation, now()))
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`
pub async fn openid_configuration(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    // The tenant goes into every URL of the document: only a GUID, a domain name or one of
    // Entra's aliases (`common`, `organizations`, `consumers`, which MSAL authorities use)
    // is echoed; anything else (`..`, `a/b` once decoded) is Entra's unknown-tenant answer.
    let Some(tenant) = discovery_tenant(&tenant) else {
        return token_failure(&unknown_tenant(&tenant), &headers);
    };
    // A domain of a tenant: Entra's document names the tenant by its id in every URL.
    let tenant = match state.service.resolve_tenant(&tenant) {
        Ok(Some(id)) => id,
        _ => tenant,
    };
    let authority = authority(&state, &headers, &uri);
    json(StatusCode::OK, &enrollgraph_auth::openid_configuration(&authority, &tenant))
}

/// `GET /{tenant}/discovery/v2.0/keys`
pub async fn keys(State(state): State<AppState>) -> Response {
    // A new server's first key may still be being made (`Identity::pending`). If that
    // failed, the set stays empty: `{"keys":[]}`, and the token endpoint says why.
    let _ = state.identity.keys_ready().await;
    json(StatusCode::OK, &state.identity.issuer().jwks())
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…`: the tenant
/// of `authorization_endpoint` (`{authority}/{tenant}/oauth2[/v2.0]/authorize`) names the
/// OpenID configuration, as Entra answers (`common` when it names none).
pub async fn instance_discovery(State(state): State<AppState>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let authority = authority(&state, &headers, &uri);
    let endpoint = uri
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "authorization_endpoint"))
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let path = endpoint.split_once("://").map_or("", |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let mut segments = path.split('/');
    let tenant = segments.next().filter(|t| !t.is_empty()).unwrap_or("common");
    let v2 = path.contains("/oauth2/v2.0/") || endpoint.is_empty();
    let tenant = match discovery_tenant(tenant) {
        Some(t) => t,
        None => return token_failure(&unknown_tenant(tenant), &headers),
    };
    json(StatusCode::OK, &enrollgraph_auth::instance_discovery(&authority, &tenant, v2))
}

/// The authority (scheme and host) the client used: a request for one of Entra's login
/// hosts (sent through an intercepting proxy, or with that `Host`) is answered as
/// `https://{host}`, whatever the listener's scheme, `--public-url` or port, because that
/// is the only authority a client that believes it talks to Entra will accept; else the
/// server's own origin ([`crate::base_url`]).
pub(crate) fn authority(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(axum::http::uri::Authority::as_str))
        .unwrap_or_default();
    let name =
        host.rsplit_once(':').map_or(host, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
    if let Some(known) = enrollgraph_auth::PUBLIC_CLOUD_LOGIN_HOSTS.iter().find(|h| h.eq_ignore_ascii_case(name)) {
        return format!("https://{known}");
    }
    crate::base_url(state, headers, uri)
}

/// A tenant for a discovery document: an alias (`common`, `organizations`, `consumers`) in
/// lower case, or a canonical tenant id; `None` for anything else (never echoed).
fn discovery_tenant(tenant: &str) -> Option<String> {
    if ["common", "organizations", "consumers"].iter().any(|a| a.eq_ignore_ascii_case(tenant)) {
        return Some(tenant.to_ascii_lowercase());
    }
    enrollgraph_service::canonical_tenant_id(tenant).ok()
}

fn unknown_tenant(tenant: &str) -> TokenError {
    TokenError::new(
        "invalid_tenant",
        90_002,
        format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."),
    )
}

/// `GET /{tenant}/oauth2/v2.0/token`: Entra answers `AADSTS900561` (POST only).
pub async fn token_get(headers: HeaderMap) -> Response {
    token_failure(&TokenError::post_only("GET"), &headers)
}

/// Runs `work` on the blocking pool, at most `limit`'s permits at once: PBKDF2 costs
/// milliseconds of CPU, which on an async worker would stall the Graph requests sharing it
/// (issue 18 item 9: GET p50 3 → 52 ms under six clients sending wrong secrets).
pub(crate) async fn off_workers<T: Send + 'static>(
    limit: &Semaphore,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let _permit = limit.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(work).await.map_err(|e| e.to_string())
}

/// `POST /{tenant}/oauth2/v2.0/token` (form-encoded).
pub async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let started = std::time::Instant::now();
    let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
    // Anyone may send here, unauthenticated: read no more than a token request needs.
    let (body, resp) = match crate::read_at_most(&headers, body, TOKEN_BODY_LIMIT).await {
        Ok(body) => {
            let body = Bytes::from(body);
            let authority = authority(&state, &headers, &uri);
            let work = {
                let (state, tenant, headers, body) = (state.clone(), tenant.clone(), headers.clone(), body.clone());
                move || issue(&state, &authority, &tenant, &headers, &body, peer)
            };
            // A new server's first key may still be being made (`Identity::pending`).
            let ready = state.identity.keys_ready().await;
            let signed = match ready {
                Ok(()) => off_workers(&state.identity.hashing, work).await.unwrap_or_else(|e| Err(internal(e))),
                Err(e) => Err(internal(e)),
            };
            let issued = match signed {
                Ok((v, Some((tenant, assertion)))) => {
                    // Remembered in the database, so a replica that did not see the first
                    // use refuses the replay too.
                    match state.service.record_assertion(&tenant, assertion.replay_key, assertion.expires, now()).await
                    {
                        Ok(true) => Ok(v),
                        Ok(false) => Err(enrollgraph_auth::replayed_assertion()),
                        Err(e) => Err(internal(e)),
                    }
                }
                Ok((v, None)) => Ok(v),
                Err(e) => Err(e),
            };
            let resp = match issued {
                Ok(v) => json(StatusCode::OK, &v),
                Err(e) => {
                    let mut r = token_failure(&e, &headers);
                    if let Some(secs) = e.retry_after {
                        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                    }
                    r
                }
            };
            (body, resp)
        }
        Err(crate::HttpError::TooLarge) => (Bytes::new(), token_failure(&body_too_large(), &headers)),
        Err(_) => (Bytes::new(), token_failure(&body_not_read(), &headers)),
    };
    if state.controls.journal.is_on() {
        crate::admin::journal_token(&state, &tenant, &headers, &body, resp.status().as_u16(), started);
    }
    resp
}

/// A token request over [`TOKEN_BODY_LIMIT`]: `413`, in Entra's error shape.
fn body_too_large() -> TokenError {
    let mut e = TokenError::new(
        "invalid_request",
        90_000,
        format!("AADSTS90000: The request body exceeds {} KiB.", TOKEN_BODY_LIMIT / 1024),
    );
    e.status = 413;
    e
}

/// A token request whose body did not arrive (in time, or at all): `400`.
fn body_not_read() -> TokenError {
    TokenError::new("invalid_request", 90_000, "AADSTS90000: The request body could not be read in time.")
}

fn internal(e: impl std::fmt::Display) -> TokenError {
    tracing::error!(error = %e, "token endpoint failure");
    TokenError::new("server_error", 500, "AADSTS50000: There was an error issuing a token.")
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1, `client_secret_basic`).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((unescape(id)?, unescape(secret)?))
}

/// The scopes of a password grant: `.default` gives every consented permission; explicit
/// Graph scopes (`https://graph.microsoft.com/X` or `X`) give those consented among them;
/// OpenID scopes (`openid profile offline_access email`), which MSAL adds, are ignored.
fn delegated_scopes(requested: &str, consented: &[String], tenant: &str) -> Result<(String, Vec<String>), TokenError> {
    let mut wanted = Vec::new();
    for s in requested.split_ascii_whitespace() {
        if ["openid", "profile", "offline_access", "email"].contains(&s) {
            continue;
        }
        if s.ends_with("/.default") {
            return Ok((enrollgraph_auth::client_credentials_resource(s, tenant)?, consented.to_vec()));
        }
        let name = s.rsplit_once('/').map_or(s, |(resource, name)| {
            if resource.eq_ignore_ascii_case(enrollgraph_auth::GRAPH_RESOURCE) { name } else { s }
        });
        if name.contains('/') {
            return Err(TokenError::invalid_scope(s));
        }
        wanted.push(name.to_owned());
    }
    if wanted.is_empty() {
        return Err(TokenError::missing_parameter("scope"));
    }
    let granted = consented.iter().filter(|c| wanted.iter().any(|w| w.eq_ignore_ascii_case(c))).cloned().collect();
    Ok((enrollgraph_auth::GRAPH_RESOURCE.to_owned(), granted))
}

/// The user a password grant signs in, after exactly one password verification whether
/// or not the user exists: an unknown user is checked against a dummy hash of the same cost
/// (`enrollgraph_auth::dummy_hash`), so the answer's timing does not tell which users exist
/// (issue 18 item 11). `verify` is `enrollgraph_auth::verify_secret` (a parameter so a test
/// can count the calls).
fn password_user<'u>(
    user: Option<&'u enrollgraph_service::User>,
    password: &str,
    verify: impl Fn(&str, &str) -> bool,
) -> Option<&'u enrollgraph_service::User> {
    let hash: &str = match user {
        Some(u) => &u.password_hash,
        None => enrollgraph_auth::dummy_hash(),
    };
    let ok = verify(password, hash);
    user.filter(|_| ok)
}

/// A token answer, and the client assertion it was issued on (with its tenant), which the
/// replay cache must record before the answer goes out.
type Issued = (Value, Option<(String, enrollgraph_auth::VerifiedAssertion)>);

/// `client_assertion_type` must be RFC 7523's JWT bearer type, with a `client_assertion`
/// and no `client_secret` beside it (one credential per request, as Entra requires).
fn check_assertion_request<'a>(
    kind: &str,
    assertion: Option<&'a str>,
    secret: Option<&str>,
) -> Result<&'a str, TokenError> {
    if kind != enrollgraph_auth::JWT_BEARER_ASSERTION {
        return Err(TokenError::new(
            "invalid_request",
            50_027,
            format!(
                "The 'client_assertion_type' '{kind}' is not supported; use '{}'.",
                enrollgraph_auth::JWT_BEARER_ASSERTION
            ),
        ));
    }
    if secret.is_some() {
        return Err(TokenError::new(
            "invalid_request",
            90_000,
            "AADSTS90000: Only one client credential may be sent: 'client_assertion' or 'client_secret', not both.",
        ));
    }
    assertion.filter(|a| !a.is_empty()).ok_or_else(|| TokenError::missing_parameter("client_assertion"))
}

/// The `aud` values a client assertion may carry: the token endpoint as the client used it
/// (`authority` and the tenant as written in the path) and in its tenant-id form, in v2.0
/// and v1.0 spellings (Entra's certificate-credentials page: `aud` "must be
/// `https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token`"; MSAL writes the
/// token endpoint of its discovery document, which names the tenant as the authority did).
fn assertion_audiences(authority: &str, path_tenant: &str, tenant: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in [path_tenant, tenant] {
        for endpoint in ["oauth2/v2.0/token", "oauth2/token"] {
            out.push(format!("{authority}/{t}/{endpoint}"));
        }
    }
    out
}

fn issue(
    state: &AppState,
    authority: &str,
    path_tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<IpAddr>,
) -> Result<Issued, TokenError> {
    if crate::has_two_authorizations(headers) {
        return Err(TokenError::new(
            "invalid_request",
            90_000,
            "AADSTS90000: The request has more than one Authorization header.",
        ));
    }
    let mut form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    if let Some((id, secret)) = basic_credentials(headers) {
        form.push(("client_id".into(), id));
        form.push(("client_secret".into(), secret));
    }
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let need = |k: &str| get(k).filter(|v| !v.is_empty()).ok_or_else(|| TokenError::missing_parameter(k));
    let grant = need("grant_type")?;
    let client_id = need("client_id")?;
    let scope = need("scope")?;
    // `common`/`organizations`/`consumers` name no tenant: they work for discovery, and
    // for a password sign-in the user's domain names the tenant (Entra's ROPC takes
    // `organizations`); a client credentials token needs a tenant, and Entra refuses them
    // there with AADSTS50059 (the message MSAL .NET's samples quote for an untenanted
    // authority: Azure-Samples/active-directory-dotnetcore-devicecodeflow-v2). `consumers`
    // is personal accounts, refused everywhere (rulings.md 1).
    let alias = ["common", "organizations", "consumers"].iter().any(|a| a.eq_ignore_ascii_case(path_tenant));
    let owned_tenant = if alias {
        let by_domain = match (grant, get("username")) {
            ("password", Some(upn)) if !path_tenant.eq_ignore_ascii_case("consumers") => {
                let domain = upn.rsplit_once('@').map_or("", |(_, d)| d);
                Some(
                    state
                        .service
                        .resolve_tenant(domain)
                        .map_err(internal)?
                        .ok_or_else(TokenError::invalid_user_credentials)?,
                )
            }
            _ => None,
        };
        by_domain.ok_or_else(|| {
            TokenError::new(
                "invalid_request",
                50_059,
                "No tenant-identifying information found in either the request or implied by any provided credentials.",
            )
        })?
    } else {
        // Tenant ids are GUIDs or domain names, case-insensitive (issue 18 item 15); a
        // domain of a tenant names that tenant (issue 14), and the token carries its id.
        state
            .service
            .resolve_tenant(path_tenant)
            .map_err(internal)?
            .ok_or_else(|| TokenError::tenant_not_found(path_tenant))?
    };
    let tenant = &owned_tenant;
    let Some(incarnation) = state.identity.incarnation(&state.service, tenant, false) else {
        return Err(TokenError::tenant_not_found(tenant));
    };
    let app = state.service.find_app(tenant, client_id).map_err(internal)?;
    // The stored app id, in its stored case, names the app from here on: in the token
    // (`appid`, which keys the per-app throttle buckets) and in the sign-in limits, so
    // `client_id` spelled in another case is the same app (issue 18 item 10).
    let app_id = app.as_ref().map_or_else(|| client_id.to_ascii_lowercase(), |a| a.app_id.clone());
    let app_key = format!("app\n{tenant}\n{}", app_id.to_ascii_lowercase());
    let peer_key = peer.map(|p| format!("peer\n{p}"));
    let mut limits = vec![(app_key.as_str(), FAILED_SIGN_INS_PER_APP)];
    limits.extend(peer_key.as_deref().map(|k| (k, FAILED_SIGN_INS_PER_PEER)));
    let failed = || {
        let keys: Vec<&str> = limits.iter().map(|(k, _)| *k).collect();
        state.identity.failed_sign_ins.record(&keys);
    };
    let issuer =
        || state.identity.issuer().with_tenant_incarnation(Some(incarnation.id.as_str()).filter(|i| !i.is_empty()));
    let (token, expires_in) = match grant {
        "client_credentials" => {
            let audience = enrollgraph_auth::client_credentials_resource(scope, tenant)?;
            let app = app.ok_or_else(|| TokenError::unknown_client(client_id, tenant))?;
            if let Some(wait) = state.identity.failed_sign_ins.blocked(&limits) {
                return Err(TokenError::throttled(wait, false));
            }
            if let Some(kind) = get("client_assertion_type") {
                let assertion = check_assertion_request(kind, get("client_assertion"), get("client_secret"))?;
                let audiences = assertion_audiences(authority, path_tenant, tenant);
                let verified = enrollgraph_auth::verify_client_assertion(
                    assertion,
                    &app.app_id,
                    &app.certificates,
                    &audiences,
                    now(),
                )
                .inspect_err(|_| failed())?;
                let (token, expires_in) = issuer()
                    .with_audience(&audience)
                    .app_token(tenant, &app.app_id, &app.roles, TOKEN_LIFETIME, now())
                    .map_err(internal)?;
                return Ok((enrollgraph_auth::token_response(&token, expires_in), Some((tenant.clone(), verified))));
            }
            let secret = get("client_secret").ok_or_else(TokenError::missing_client_secret)?;
            let refused = state.identity.refused_secrets.iter().any(|r| r == secret);
            if refused || !app.secret_hashes.iter().any(|h| enrollgraph_auth::verify_secret(secret, h)) {
                failed();
                return Err(TokenError::invalid_client_secret(client_id));
            }
            issuer()
                .with_audience(&audience)
                .app_token(tenant, &app.app_id, &app.roles, TOKEN_LIFETIME, now())
                .map_err(internal)?
        }
        "password" => {
            if app.is_none() {
                return Err(TokenError::unknown_client(client_id, tenant));
            }
            let username = need("username")?;
            let password = need("password")?;
            if let Some(wait) = state.identity.failed_sign_ins.blocked(&limits) {
                return Err(TokenError::throttled(wait, true));
            }
            let user = state.service.find_user(tenant, username).map_err(internal)?;
            let Some(user) = password_user(user.as_ref(), password, enrollgraph_auth::verify_secret) else {
                failed();
                return Err(TokenError::invalid_user_credentials());
            };
            let (audience, scopes) = delegated_scopes(scope, &user.scopes, tenant)?;
            issuer()
                .with_audience(&audience)
                .user_token(
                    tenant,
                    &app_id,
                    &user.object_id,
                    &user.user_principal_name,
                    &scopes,
                    user.personal,
                    TOKEN_LIFETIME,
                    now(),
                )
                .map_err(internal)?
        }
        other => return Err(TokenError::unsupported_grant_type(other)),
    };
    Ok((enrollgraph_auth::token_response(&token, expires_in), None))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::{Identity, off_workers, password_user};

    #[test]
    fn a_pending_identity_waits_for_its_keys_and_reports_a_failure() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            // Waiting until the keys come: nothing is signed or published before.
            let identity = Arc::new(Identity::pending());
            assert_eq!(identity.issuer().jwks()["keys"], serde_json::json!([]));
            let waiting = {
                let identity = Arc::clone(&identity);
                tokio::spawn(async move { identity.keys_ready().await })
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiting.is_finished(), "keys_ready returned before any key was made");
            let keys = enrollgraph_auth::KeySet::generate().expect("keys");
            identity.keys_made(Ok(keys.clone()));
            assert_eq!(
                tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken").expect("task"),
                Ok(())
            );
            assert_eq!(identity.issuer().jwks(), keys.jwks(), "the installed set is published");
            assert_eq!(identity.keys_ready().await, Ok(()));
            // A failure is reported to every waiter, now and later (the token endpoint's 500).
            let failed = Identity::pending();
            failed.keys_made(Err("no entropy".into()));
            assert_eq!(failed.keys_ready().await, Err("no entropy".into()));
            assert_eq!(failed.issuer().jwks()["keys"], serde_json::json!([]));
        });
    }

    #[test]
    fn hashing_runs_off_the_async_workers_and_bounded() {
        // One async worker: if the work ran on it, the ticker could not tick until it ended.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let ticks = Arc::new(AtomicUsize::new(0));
            let ticker = {
                let ticks = Arc::clone(&ticks);
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            let limit = Arc::new(Semaphore::new(2));
            let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let jobs: Vec<_> = (0..6)
                .map(|_| {
                    let (limit, running, most) = (Arc::clone(&limit), Arc::clone(&running), Arc::clone(&most));
                    tokio::spawn(async move {
                        off_workers(&limit, move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            // Stands for PBKDF2: CPU the calling thread cannot give back.
                            std::thread::sleep(Duration::from_millis(60));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                    })
                })
                .collect();
            for j in jobs {
                j.await.expect("join").expect("work");
            }
            ticker.abort();
            // 3 rounds of 60 ms: the 5 ms ticker ran all along (loosely: > 10 of ~36).
            assert!(ticks.load(Ordering::Relaxed) > 10, "ticks: {}", ticks.load(Ordering::Relaxed));
            assert_eq!(most.load(Ordering::SeqCst), 2, "at most the permits at once");
        });
    }

    #[test]
    fn a_password_grant_verifies_once_whether_or_not_the_user_exists() {
        let user = enrollgraph_service::User {
            object_id: "o".into(),
            user_principal_name: "adele@contoso.example".into(),
            password_hash: enrollgraph_auth::hash_generated_secret("right"),
            scopes: Vec::new(),
            personal: false,
        };
        let calls = std::sync::Mutex::new(Vec::new());
        let counting = |password: &str, hash: &str| {
            calls.lock().expect("lock").push(hash.to_owned());
            enrollgraph_auth::verify_secret(password, hash)
        };
        assert!(password_user(Some(&user), "right", counting).is_some());
        assert!(password_user(Some(&user), "wrong", counting).is_none());
        assert!(password_user(None, "right", counting).is_none());
        let calls = calls.into_inner().expect("lock");
        assert_eq!(calls.len(), 3, "one verification per attempt, the unknown user's too");
        // The unknown user's costs what a stored password's does (hash_secret's rounds).
        assert_eq!(calls[2], enrollgraph_auth::dummy_hash());
        assert_eq!(
            enrollgraph_auth::hash_iterations(&calls[2]),
            Some(enrollgraph_auth::PBKDF2_ITERATIONS),
            "the dummy costs a full verification"
        );
    }
}
