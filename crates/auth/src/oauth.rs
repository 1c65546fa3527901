//! The token endpoint's answers: success body, Entra's OAuth 2.0 error bodies, and the
//! client credentials `scope` rule.

use serde_json::json;

use crate::{GRAPH_APP_ID, GRAPH_RESOURCE};

/// An OAuth 2.0 error of the token endpoint (RFC 6749 §5.2) with the `AADSTS` code Entra ID
/// uses for the case ("Microsoft Entra authentication and authorization error codes").
///
/// The constructors cover the cases a client-credentials token endpoint meets; each
/// names its code:
///
/// | constructor | `error` | AADSTS | HTTP |
/// |---|---|---|---|
/// | [`TokenError::invalid_client_secret`] | `invalid_client` | 7000215 | 401 |
/// | [`TokenError::expired_client_secret`] | `invalid_client` | 7000222 | 401 |
/// | [`TokenError::missing_client_secret`] | `invalid_request` | 7000216 | 400 |
/// | [`TokenError::unknown_client`] | `unauthorized_client` | 700016 | 400 |
/// | [`TokenError::tenant_not_found`] | `invalid_request` | 90002 | 400 |
/// | [`TokenError::missing_parameter`] | `invalid_request` | 900144 | 400 |
/// | [`TokenError::post_only`] | `invalid_request` | 900561 | 400 |
/// | [`TokenError::unsupported_grant_type`] | `unsupported_grant_type` | 70003 | 400 |
/// | [`TokenError::scope_not_default`] | `invalid_scope` | 1002012 | 400 |
/// | [`TokenError::invalid_scope`] | `invalid_scope` | 70011 | 400 |
/// | [`TokenError::resource_not_found`] | `invalid_resource` | 500011 | 400 |
/// | [`TokenError::invalid_user_credentials`] | `invalid_grant` | 50126 | 400 |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The HTTP status to answer with: 401 for `invalid_client` (RFC 6749 §5.2), else 400.
    pub status: u16,
    /// The RFC 6749 §5.2 `error` code.
    pub error: String,
    /// The AADSTS number (`error_codes[0]`).
    pub code: u32,
    /// The description without the `AADSTSnnn: ` prefix and trace suffix.
    pub description: String,
    /// Seconds for a `Retry-After` header (a throttled request), if any.
    pub retry_after: Option<u64>,
}

/// The AADSTS code this crate uses for an `error` when the description does not carry
/// one (see [`TokenError`]'s table).
fn default_code(error: &str) -> u32 {
    match error {
        "invalid_client" => 7_000_215,
        "unauthorized_client" => 700_016,
        "invalid_grant" => 50_126,
        "unsupported_grant_type" => 70_003,
        "invalid_scope" => 70_011,
        "invalid_resource" => 500_011,
        _ => 900_144,
    }
}

impl TokenError {
    /// A token error with an explicit code; the status follows `error`.
    pub fn new(error: &str, code: u32, description: impl Into<String>) -> TokenError {
        TokenError {
            status: if error == "invalid_client" { 401 } else { 400 },
            error: error.to_string(),
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// Too many failed sign-ins (issue 18 item 9), as Entra throttles (MSAL.NET "Client and
    /// server throttling"): a client-credentials request gets `429` with `Retry-After`; a
    /// user sign-in (`user == true`) gets `invalid_grant` AADSTS50196, which MSAL surfaces as
    /// a UI-required error, with the same `Retry-After`.
    pub fn throttled(retry_after: u64, user: bool) -> TokenError {
        let mut e = TokenError::new(
            if user { "invalid_grant" } else { "temporarily_unavailable" },
            50_196,
            "The server terminated an operation because it encountered a loop while processing a request.",
        );
        if !user {
            e.status = 429;
        }
        e.retry_after = Some(retry_after);
        e
    }

    /// AADSTS7000215: the secret does not match any of the app's secrets.
    pub fn invalid_client_secret(app_id: &str) -> TokenError {
        TokenError::new(
            "invalid_client",
            7_000_215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{app_id}'."
            ),
        )
    }

    /// AADSTS7000222: the secret matches but has expired.
    pub fn expired_client_secret(app_id: &str) -> TokenError {
        TokenError::new(
            "invalid_client",
            7_000_222,
            format!(
                "The provided client secret keys for app '{app_id}' are expired. Create new keys for your app, or consider using certificate credentials for added security."
            ),
        )
    }

    /// AADSTS7000216: a client credentials request without `client_secret` (or assertion).
    pub fn missing_client_secret() -> TokenError {
        TokenError::new(
            "invalid_request",
            7_000_216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )
    }

    /// AADSTS700016: no application with this client ID in the tenant.
    pub fn unknown_client(app_id: &str, tenant: &str) -> TokenError {
        TokenError::new(
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{app_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// AADSTS90002: the tenant in the path is not known.
    pub fn tenant_not_found(tenant: &str) -> TokenError {
        TokenError::new(
            "invalid_request",
            90_002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    /// AADSTS900144: a required form parameter (`grant_type`, `client_id`, `scope`, …) is
    /// missing.
    pub fn missing_parameter(name: &str) -> TokenError {
        TokenError::new(
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// AADSTS900561: the token endpoint was called with another method than POST.
    pub fn post_only(method: &str) -> TokenError {
        TokenError::new(
            "invalid_request",
            900_561,
            format!("The endpoint only accepts POST requests. Received a {method} request."),
        )
    }

    /// AADSTS70003: a `grant_type` the server does not support.
    pub fn unsupported_grant_type(grant_type: &str) -> TokenError {
        TokenError::new(
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        )
    }

    /// AADSTS1002012: a client credentials scope without the `/.default` suffix.
    pub fn scope_not_default(scope: &str) -> TokenError {
        TokenError::new(
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }

    /// AADSTS70011: a scope value that is not valid (e.g. several resources at once).
    pub fn invalid_scope(scope: &str) -> TokenError {
        TokenError::new(
            "invalid_scope",
            70_011,
            format!("The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
        )
    }

    /// AADSTS500011: the scope names a resource that is not in the tenant (anything but
    /// Microsoft Graph here).
    pub fn resource_not_found(resource: &str, tenant: &str) -> TokenError {
        TokenError::new(
            "invalid_resource",
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// AADSTS50126: bad user name or password (resource owner password grant).
    pub fn invalid_user_credentials() -> TokenError {
        TokenError::new("invalid_grant", 50_126, "Error validating credentials due to invalid username or password.")
    }

    /// The body Entra sends, with the given correlation ID (Entra echoes the client's
    /// `client-request-id` header; a new UUID when `None`) and time (unix seconds). The
    /// `error_description` is `AADSTS{code}: {description} Trace ID: … Correlation ID: …
    /// Timestamp: …`, as Entra formats it.
    pub fn to_json_at(&self, correlation_id: Option<&str>, now: i64) -> serde_json::Value {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = correlation_id
            .filter(|c| !c.is_empty() && c.len() <= 64)
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let timestamp = format_timestamp(now);
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        })
    }

    /// [`TokenError::to_json_at`] now, with a new correlation ID.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_at(None, crate::keys::unix_now())
    }
}

/// Entra's timestamp format, `2024-12-03 13:51:30Z`.
pub(crate) fn format_timestamp(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Entra's OAuth error body (RFC 6749 §5.2 plus Entra's fields):
/// `{"error","error_description":"AADSTS…: … Trace ID: … Correlation ID: … Timestamp: …",
/// "error_codes":[n],"timestamp","trace_id","correlation_id","error_uri"}`.
/// If `description` starts with `AADSTS<n>:` that code is used, else the code of
/// [`TokenError`]'s table for `code` (invalid_client 7000215, unauthorized_client 700016,
/// invalid_grant 50126, unsupported_grant_type 70003, invalid_scope 70011,
/// invalid_resource 500011, anything else 900144). Answer it with
/// [`token_error_status`]`(code)`.
pub fn token_error(code: &str, description: &str) -> serde_json::Value {
    parse_described(code, description).to_json()
}

fn parse_described(code: &str, description: &str) -> TokenError {
    if let Some(rest) = description.strip_prefix("AADSTS")
        && let Some((digits, text)) = rest.split_once(':')
        && let Ok(n) = digits.parse::<u32>()
    {
        return TokenError::new(code, n, text.trim_start());
    }
    TokenError::new(code, default_code(code), description)
}

/// The HTTP status for a token endpoint error: 401 for `invalid_client`, 400 otherwise
/// (RFC 6749 §5.2, as Entra answers).
pub fn token_error_status(code: &str) -> u16 {
    if code == "invalid_client" { 401 } else { 400 }
}

/// The successful token response (RFC 6749 §5.1) as Entra sends it for client credentials:
/// `{"token_type":"Bearer","expires_in":N,"ext_expires_in":N,"access_token":"…"}`
/// (MSAL and azure-identity need nothing more).
pub fn token_response(access_token: &str, expires_in: i64) -> serde_json::Value {
    json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
    })
}

/// The resource a client credentials `scope` asks for, checked as Entra does for the
/// v2.0 endpoint ("Microsoft identity platform and the OAuth 2.0 client credentials flow":
/// the scope must be `{resource}/.default`). Accepts Graph by URI or application ID
/// (`https://graph.microsoft.com/.default`, `https://graph.microsoft.com//.default`,
/// `00000003-0000-0000-c000-000000000000/.default`) and returns the resource without a
/// trailing slash: the `aud` to give the token (see [`crate::Issuer::with_audience`]).
/// Errors: empty → AADSTS900144; no `/.default` → AADSTS1002012; several resources →
/// AADSTS70011; a resource other than Graph → AADSTS500011.
pub fn client_credentials_resource(scope: &str, tenant: &str) -> Result<String, TokenError> {
    let scopes: Vec<&str> = scope.split_ascii_whitespace().collect();
    let [only] = scopes.as_slice() else {
        if scopes.is_empty() {
            return Err(TokenError::missing_parameter("scope"));
        }
        if let Some(bad) = scopes.iter().find(|s| !s.ends_with("/.default")) {
            return Err(TokenError::scope_not_default(bad));
        }
        return Err(TokenError::invalid_scope(scope));
    };
    let Some(resource) = only.strip_suffix("/.default") else {
        return Err(TokenError::scope_not_default(only));
    };
    let resource = resource.trim_end_matches('/');
    if resource.eq_ignore_ascii_case(GRAPH_RESOURCE) {
        Ok(GRAPH_RESOURCE.to_string())
    } else if resource.eq_ignore_ascii_case(GRAPH_APP_ID) {
        Ok(GRAPH_APP_ID.to_string())
    } else {
        Err(TokenError::resource_not_found(resource, tenant))
    }
}
