//! The built-in Microsoft identity platform endpoints a client needs (clients.md §1, §2b):
//! OIDC discovery, JWKS, instance discovery, and the v2.0 token endpoint with the
//! client-credentials grant (secret) and the resource-owner password grant (test users).
//! Answers and errors follow Entra's shapes (AADSTS codes: enrollgraph-auth `TokenError`).

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enrollgraph_auth::{AuthError, Issuer, KeySet, Principal, TokenError, Validator};
use enrollgraph_service::Service;
use serde_json::Value;

use crate::AppState;

/// Token lifetime, as Entra's default (about an hour).
const TOKEN_LIFETIME: i64 = 3599;

/// Keys, issuer and validator, shared by every request.
pub struct Identity {
    validator: Validator,
    issuer: RwLock<Issuer>,
    /// Tenants seen to exist (a tenant is never re-created with other data under its id).
    known_tenants: RwLock<HashSet<String>>,
    last_reload: AtomicI64,
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
            known_tenants: RwLock::new(HashSet::new()),
            last_reload: AtomicI64::new(0),
        }
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
        match self.validator.validate(token, now()) {
            Err(AuthError::UnknownKey) if self.last_reload.swap(now(), Ordering::Relaxed) != now() => {
                if let Ok(Some(json)) = service.keys()
                    && let Ok(keys) = KeySet::from_json(&json)
                {
                    self.validator.update_keys(&keys);
                    if let Ok(mut issuer) = self.issuer.write() {
                        issuer.set_keys(keys);
                    }
                }
                self.validator.validate(token, now())
            }
            other => other,
        }
    }

    /// True when `tenant` exists (cached once seen).
    pub fn tenant_exists(&self, service: &Service, tenant: &str) -> bool {
        self.check_tenant(service, tenant).unwrap_or(false)
    }

    /// Whether `tenant` exists (cached once seen), or why that cannot be told: a database
    /// out of reach is a `503` to retry, not a `401` for a good token (issue 18 item 16).
    ///
    /// # Errors
    /// Storage failures.
    pub fn check_tenant(&self, service: &Service, tenant: &str) -> Result<bool, enrollgraph_service::ServiceError> {
        if self.known_tenants.read().is_ok_and(|k| k.contains(tenant)) {
            return Ok(true);
        }
        let exists = service.tenant_exists(tenant)?;
        if exists && let Ok(mut k) = self.known_tenants.write() {
            k.insert(tenant.to_owned());
        }
        Ok(exists)
    }

    /// Forgets a tenant seen to exist (after the admin API deleted it).
    pub fn forget_tenant(&self, tenant: &str) {
        if let Ok(mut k) = self.known_tenants.write() {
            k.remove(tenant);
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
    let authority = crate::base_url(&state, &headers, &uri);
    json(StatusCode::OK, &enrollgraph_auth::openid_configuration(&authority, &tenant))
}

/// `GET /{tenant}/discovery/v2.0/keys`
pub async fn keys(State(state): State<AppState>) -> Response {
    json(StatusCode::OK, &state.identity.issuer().jwks())
}

/// `GET /common/discovery/instance`
pub async fn instance_discovery(State(state): State<AppState>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let authority = crate::base_url(&state, &headers, &uri);
    json(StatusCode::OK, &enrollgraph_auth::instance_discovery(&authority, "common"))
}

/// `GET /{tenant}/oauth2/v2.0/token`: Entra answers `AADSTS900561` (POST only).
pub async fn token_get(headers: HeaderMap) -> Response {
    token_failure(&TokenError::post_only("GET"), &headers)
}

/// `POST /{tenant}/oauth2/v2.0/token` (form-encoded).
pub async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let resp = match issue(&state, &tenant, &headers, &body) {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => token_failure(&e, &headers),
    };
    if state.controls.journal.is_on() {
        crate::admin::journal_token(&state, &tenant, &headers, &body, resp.status().as_u16(), started);
    }
    resp
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

fn issue(state: &AppState, tenant: &str, headers: &HeaderMap, body: &[u8]) -> Result<Value, TokenError> {
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
    if !state.identity.tenant_exists(&state.service, tenant) {
        return Err(TokenError::tenant_not_found(tenant));
    }
    let app = state.service.find_app(tenant, client_id).map_err(internal)?;
    let (token, expires_in) = match grant {
        "client_credentials" => {
            let audience = enrollgraph_auth::client_credentials_resource(scope, tenant)?;
            let issuer = state.identity.issuer().with_audience(&audience);
            let app = app.ok_or_else(|| TokenError::unknown_client(client_id, tenant))?;
            let secret = get("client_secret").ok_or_else(TokenError::missing_client_secret)?;
            if !app.secret_hashes.iter().any(|h| enrollgraph_auth::verify_secret(secret, h)) {
                return Err(TokenError::invalid_client_secret(client_id));
            }
            issuer.app_token(tenant, client_id, &app.roles, TOKEN_LIFETIME, now()).map_err(internal)?
        }
        "password" => {
            if app.is_none() {
                return Err(TokenError::unknown_client(client_id, tenant));
            }
            let user = state.service.find_user(tenant, need("username")?).map_err(internal)?;
            let password = need("password")?;
            let user = user
                .filter(|u| enrollgraph_auth::verify_secret(password, &u.password_hash))
                .ok_or_else(TokenError::invalid_user_credentials)?;
            let (audience, scopes) = delegated_scopes(scope, &user.scopes, tenant)?;
            state
                .identity
                .issuer()
                .with_audience(&audience)
                .user_token(
                    tenant,
                    client_id,
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
    Ok(enrollgraph_auth::token_response(&token, expires_in))
}
