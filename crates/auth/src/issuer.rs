//! Issuing v1.0 access tokens for Microsoft Graph.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};

use crate::keys::MAX_TOKEN_LIFETIME_SECS;
use crate::{AuthError, KeySet};

/// Microsoft Graph's application ID (`00000003-0000-0000-c000-000000000000`), one of the
/// two forms of its resource identifier ("Microsoft Graph permissions reference").
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Microsoft Graph's application ID URI, the `aud` of the tokens Entra issues for
/// `scope=https://graph.microsoft.com/.default`.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// The tenant ID of Microsoft accounts (personal accounts' home tenant, "Microsoft identity
/// platform ID token claims reference", `tid`).
pub const MSA_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// The `idp` value of tokens for personal Microsoft accounts ("Microsoft identity platform
/// access token claims reference", `idp`).
pub const PERSONAL_ACCOUNT_IDP: &str = "live.com";

/// The audiences a Graph resource server accepts: the application ID URI and the
/// application ID, each with and without a trailing slash.
pub fn graph_audiences() -> Vec<String> {
    vec![GRAPH_RESOURCE.to_string(), format!("{GRAPH_RESOURCE}/"), GRAPH_APP_ID.to_string(), format!("{GRAPH_APP_ID}/")]
}

/// The claims of an access token for Microsoft Graph, as Entra ID puts them in v1.0 access
/// tokens for `graph.microsoft.com` (Graph accepts only v1.0 tokens), following the
/// "Microsoft identity platform access token claims reference" and RFC 7519 §4.1.
///
/// Fields that are absent in a token are `None` and are not serialised. Unknown claims are
/// ignored when reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Audience (RFC 7519 §4.1.3): the resource, `https://graph.microsoft.com` by default.
    pub aud: String,
    /// Issuer (RFC 7519 §4.1.1): `https://sts.windows.net/{tid}/`, see [`Issuer::issuer_for`].
    pub iss: String,
    /// Issued at (RFC 7519 §4.1.6), unix seconds.
    pub iat: i64,
    /// Not before (RFC 7519 §4.1.5), unix seconds.
    pub nbf: i64,
    /// Expiration time (RFC 7519 §4.1.4), unix seconds.
    pub exp: i64,
    /// The client's application (client) ID.
    pub appid: String,
    /// How the client authenticated: `"1"` = client secret (`appidacr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appidacr: Option<String>,
    /// v2.0 name of `appid`; Entra does not put it in v1.0 tokens, so this crate never
    /// sets it, but accepts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Identity provider: the issuer for app-only tokens, `live.com` for personal Microsoft
    /// accounts, absent for a user of the token's own tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// `"app"` or `"user"` (the optional `idtyp` claim Graph tokens carry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    /// Object ID of the principal: the user, or the client's service principal.
    pub oid: String,
    /// Application permissions (app roles) granted, for app-only tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Delegated permissions, space-separated, for user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Subject (RFC 7519 §4.1.2): the service principal's object ID for app-only tokens, a
    /// pairwise (per application) identifier for users.
    pub sub: String,
    /// Tenant ID (a GUID) of the tenant the token was issued in.
    pub tid: String,
    /// A human-readable user name (for personal accounts `live.com#name@…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    /// User principal name (work or school accounts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// E-mail address (personal accounts, in place of `upn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Token identifier (Entra's `uti`, playing the role of RFC 7519 §4.1.7 `jti`).
    #[serde(default)]
    pub uti: String,
    /// Token version: `"1.0"`.
    pub ver: String,
    /// The incarnation of the tenant the token was issued in: an id the server gives a
    /// tenant each time it is created, so a tenant deleted and created again under the same
    /// id does not accept the tokens of its predecessor (issue 18 item 8). Entra has no
    /// such claim (its tenant ids are never reused); the `xms_` prefix is the one Entra uses
    /// for claims of its own, and unknown claims are ignored by clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_tinc: Option<String>,
}

/// The JOSE header this crate writes (RFC 7515 §4, RFC 7519 §5.1).
#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    kid: &'a str,
}

/// Signs v1.0 access tokens for Microsoft Graph with the current key of a [`KeySet`].
#[derive(Debug, Clone)]
pub struct Issuer {
    keys: KeySet,
    authority: String,
    audience: String,
    tenant_incarnation: Option<String>,
}

fn random_b64(len: usize) -> Result<String, AuthError> {
    let mut bytes = vec![0u8; len];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Crypto("random number generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The object ID this crate gives the service principal of `client_id` in `tenant` (the
/// `oid` and `sub` of app-only tokens): a name-based UUID (RFC 9562 §5.5, version 5) of
/// `"{tenant}/{client_id}"`, so that it is the same on every run without storage. A server
/// that stores real service principal IDs can ignore it.
pub fn service_principal_object_id(tenant: &str, client_id: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f0b_6a55_8d1e_4a3c_9a62_2f61_1c5e_7b3d);
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("{}/{}", tenant.to_ascii_lowercase(), client_id.to_ascii_lowercase()).as_bytes(),
    )
    .to_string()
}

/// A pairwise subject for a user seen by an application (`sub` of delegated tokens: "unique
/// to a particular user and application ID"): base64url of SHA-256 of tenant, client and
/// user IDs, 43 characters like Entra's.
fn pairwise_sub(tenant: &str, client_id: &str, oid: &str) -> String {
    let input = format!("{tenant}\n{client_id}\n{oid}").to_ascii_lowercase();
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, input.as_bytes()))
}

/// Strips a Graph resource prefix from a scope (`https://graph.microsoft.com/User.Read` →
/// `User.Read`): `scp` holds bare permission names.
fn bare_scope(scope: &str) -> &str {
    for prefix in [GRAPH_RESOURCE, GRAPH_APP_ID] {
        if let Some(rest) = scope.strip_prefix(prefix)
            && let Some(rest) = rest.strip_prefix('/')
        {
            return rest.trim_start_matches('/');
        }
    }
    scope
}

impl Issuer {
    /// An issuer signing with `keys`' current key. `authority` is the server's origin (e.g.
    /// `https://localhost:8443`), used for the discovery documents (see
    /// [`Issuer::openid_configuration`]); it does not appear in tokens (see
    /// [`Issuer::issuer_for`]). Tokens get the audience `https://graph.microsoft.com`.
    pub fn new(keys: KeySet, authority: &str) -> Issuer {
        Issuer {
            keys,
            authority: authority.trim_end_matches('/').to_string(),
            audience: GRAPH_RESOURCE.to_string(),
            tenant_incarnation: None,
        }
    }

    /// The same issuer with another `aud` for the tokens it issues (Entra puts the resource
    /// as requested: `00000003-0000-0000-c000-000000000000` when the scope names Graph by
    /// its application ID).
    pub fn with_audience(mut self, audience: &str) -> Issuer {
        self.audience = audience.to_string();
        self
    }

    /// The same issuer putting `incarnation` (the tenant's, see [`AccessClaims::xms_tinc`])
    /// in the tokens it issues; `None` leaves the claim out.
    pub fn with_tenant_incarnation(mut self, incarnation: Option<&str>) -> Issuer {
        self.tenant_incarnation = incarnation.map(str::to_owned);
        self
    }

    /// Replaces the keys (after [`KeySet::rotate`]): new tokens are signed by the new
    /// current key.
    pub fn set_keys(&mut self, keys: KeySet) {
        self.keys = keys;
    }

    /// The server origin this issuer was made with (no trailing slash).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The `iss` put in tokens for `tenant`: `https://sts.windows.net/{tenant}/`, exactly
    /// the issuer of the v1.0 access tokens Entra ID issues for Microsoft Graph ("Microsoft
    /// identity platform access token claims reference", `iss`). It does not depend on the
    /// origin the client reached the token endpoint by (base URL, TLS listener, proxy
    /// mode, a CLI-minted token), so a token stays valid whichever way it was obtained;
    /// what proves it came from this server is the signature with this server's key.
    pub fn issuer_for(&self, tenant: &str) -> String {
        issuer_for_tenant(tenant)
    }

    /// The OpenID Connect discovery document for `tenant` on this issuer's authority
    /// (see [`crate::openid_configuration`]).
    pub fn openid_configuration(&self, tenant: &str) -> serde_json::Value {
        crate::openid_configuration(&self.authority, tenant)
    }

    /// The JWKS (RFC 7517 §5) of this issuer's keys.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    /// An app-only (client credentials) token: `roles` are the application permissions
    /// granted, `oid` and `sub` are [`service_principal_object_id`], `idtyp` is `app`,
    /// `appidacr` is `1` (client secret). `tenant` must be the tenant ID (a GUID, not a
    /// domain name: Entra's `tid` is always the ID). `lifetime_secs` is clamped to
    /// `1..=`[`MAX_TOKEN_LIFETIME_SECS`]; `iat` = `nbf` = `now`, `exp` = `now + lifetime`.
    /// Returns the compact JWS (RFC 7515 §7.1) and the `expires_in` (seconds) to put in
    /// the token response.
    pub fn app_token(
        &self,
        tenant: &str,
        client_id: &str,
        roles: &[String],
        lifetime_secs: i64,
        now: i64,
    ) -> Result<(String, i64), AuthError> {
        check_id("tenant", tenant)?;
        check_id("client_id", client_id)?;
        let lifetime = lifetime_secs.clamp(1, MAX_TOKEN_LIFETIME_SECS);
        let iss = self.issuer_for(tenant);
        let oid = service_principal_object_id(tenant, client_id);
        let claims = AccessClaims {
            aud: self.audience.clone(),
            iss: iss.clone(),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            appid: client_id.to_string(),
            appidacr: Some("1".into()),
            azp: None,
            idp: Some(iss),
            idtyp: Some("app".into()),
            sub: oid.clone(),
            oid,
            roles: Some(roles.to_vec()),
            scp: None,
            tid: tenant.to_string(),
            unique_name: None,
            upn: None,
            email: None,
            uti: random_b64(16)?,
            ver: "1.0".into(),
            xms_tinc: self.tenant_incarnation.clone(),
        };
        Ok((self.sign(&claims)?, lifetime))
    }

    /// A delegated (user) token: `scp` is `scopes` joined by spaces, each stripped of a
    /// Graph resource prefix (`https://graph.microsoft.com/User.Read` → `User.Read`).
    /// A work or school user (`personal == false`) gets `upn` and `unique_name`; a personal
    /// Microsoft account gets `idp: "live.com"`, `unique_name: "live.com#{upn}"` and
    /// `email`, and no `upn`, as Entra does. `sub` is pairwise per application. Otherwise as
    /// [`Issuer::app_token`].
    #[allow(clippy::too_many_arguments)]
    pub fn user_token(
        &self,
        tenant: &str,
        client_id: &str,
        user_object_id: &str,
        upn: &str,
        scopes: &[String],
        personal: bool,
        lifetime_secs: i64,
        now: i64,
    ) -> Result<(String, i64), AuthError> {
        check_id("tenant", tenant)?;
        check_id("client_id", client_id)?;
        check_id("user_object_id", user_object_id)?;
        let lifetime = lifetime_secs.clamp(1, MAX_TOKEN_LIFETIME_SECS);
        let scp = scopes.iter().map(|s| bare_scope(s)).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ");
        let (idp, unique_name, upn_claim, email) = if personal {
            (
                Some(PERSONAL_ACCOUNT_IDP.to_string()),
                Some(format!("{PERSONAL_ACCOUNT_IDP}#{upn}")),
                None,
                Some(upn.to_string()),
            )
        } else {
            (None, Some(upn.to_string()), Some(upn.to_string()), None)
        };
        let claims = AccessClaims {
            aud: self.audience.clone(),
            iss: self.issuer_for(tenant),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            appid: client_id.to_string(),
            appidacr: Some("1".into()),
            azp: None,
            idp,
            idtyp: Some("user".into()),
            oid: user_object_id.to_string(),
            roles: None,
            scp: Some(scp),
            sub: pairwise_sub(tenant, client_id, user_object_id),
            tid: tenant.to_string(),
            unique_name,
            upn: upn_claim,
            email,
            uti: random_b64(16)?,
            ver: "1.0".into(),
            xms_tinc: self.tenant_incarnation.clone(),
        };
        Ok((self.sign(&claims)?, lifetime))
    }

    /// Signs arbitrary claims with the current key (RS256, RFC 7518 §3.3), header
    /// `{"typ":"JWT","alg":"RS256","kid":…}`. For tests and tools that need a token with
    /// unusual claims; the server should use [`Issuer::app_token`] / [`Issuer::user_token`].
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, AuthError> {
        let payload = serde_json::to_vec(claims).map_err(|e| AuthError::Crypto(e.to_string()))?;
        self.sign_payload(&payload)
    }

    /// Signs a raw JSON payload with the current key; see [`Issuer::sign`].
    pub fn sign_payload(&self, payload_json: &[u8]) -> Result<String, AuthError> {
        let key = self.keys.current().ok_or_else(|| AuthError::Crypto("the key set is empty".into()))?;
        let header = serde_json::to_vec(&Header { typ: "JWT", alg: "RS256", kid: &key.kid })
            .map_err(|e| AuthError::Crypto(e.to_string()))?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload_json, &mut token);
        let mut sig = vec![0u8; key.pair.public().modulus_len()];
        key.pair
            .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), token.as_bytes(), &mut sig)
            .map_err(|_| AuthError::Crypto("RS256 signing failed".into()))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig, &mut token);
        Ok(token)
    }
}

/// `https://sts.windows.net/{tenant}/`; see [`Issuer::issuer_for`].
pub(crate) fn issuer_for_tenant(tenant: &str) -> String {
    format!("{STS_PREFIX}{tenant}/")
}

pub(crate) const STS_PREFIX: &str = "https://sts.windows.net/";

fn check_id(what: &str, value: &str) -> Result<(), AuthError> {
    if value.is_empty() || value.contains(['/', ' ', '#', '?']) {
        return Err(AuthError::InvalidArgument(format!("{what} must be a non-empty identifier")));
    }
    Ok(())
}
