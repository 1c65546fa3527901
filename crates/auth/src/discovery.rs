//! OpenID Connect discovery and MSAL instance discovery documents.

use serde_json::json;

fn authority_base(authority: &str) -> &str {
    authority.trim_end_matches('/')
}

/// The OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3) that Entra ID serves at
/// `/{tenant}/v2.0/.well-known/openid-configuration`, with every endpoint on `authority`
/// (the server's origin, e.g. `https://localhost:8443`):
/// `issuer` `{authority}/{tenant}/v2.0` (for `common`/`organizations` the literal
/// `{tenantid}` placeholder, as Entra), `authorization_endpoint`
/// `{authority}/{tenant}/oauth2/v2.0/authorize`, `token_endpoint`
/// `{authority}/{tenant}/oauth2/v2.0/token`, `jwks_uri`
/// `{authority}/{tenant}/discovery/v2.0/keys`, and the constant fields of Entra's document.
///
/// MSAL Python / azure-identity read `authorization_endpoint` and `token_endpoint` (both
/// must be `https` for them) and use the latter for the client credentials request. The
/// `issuer` here is the OIDC issuer (of ID tokens); Graph access tokens carry the v1.0
/// issuer `https://sts.windows.net/{tid}/` instead, exactly as with Entra (see
/// [`crate::Issuer::issuer_for`]).
pub fn openid_configuration(authority: &str, tenant: &str) -> serde_json::Value {
    let a = authority_base(authority);
    let issuer_tenant = match tenant.to_ascii_lowercase().as_str() {
        "common" | "organizations" => "{tenantid}".to_string(),
        "consumers" => crate::MSA_TENANT_ID.to_string(),
        _ => tenant.to_string(),
    };
    json!({
        "token_endpoint": format!("{a}/{tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{a}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{a}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{a}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{a}/{tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{a}/{tenant}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{a}/{tenant}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    })
}

/// The hosts of Entra's public cloud: a request that names one of them (through an
/// intercepting proxy) is answered as that cloud answers, with `https://{host}` URLs.
pub const PUBLIC_CLOUD_LOGIN_HOSTS: [&str; 4] =
    ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"];

/// The answer to MSAL's instance discovery, `GET /common/discovery/instance`
/// (`api-version=1.1`, as MSAL sends it), for an authority on `authority` (the server's
/// origin): `tenant_discovery_endpoint` is the OpenID configuration of `tenant`, in its
/// v2.0 form when `v2` (MSAL sends `authorization_endpoint=…/{tenant}/oauth2/v2.0/authorize`)
/// and the v1.0 form otherwise, as Entra derives it.
///
/// On one of [`PUBLIC_CLOUD_LOGIN_HOSTS`] the metadata is Entra's own for the public cloud
/// (`preferred_network` login.microsoftonline.com, `preferred_cache` login.windows.net, the
/// four aliases; MSAL .NET and JS key their token caches by these); the sovereign clouds'
/// entries Entra lists beside it are left out, since no request for them reaches here
/// unless the proxy intercepts them. Elsewhere one entry names the server's own host (with
/// its port), so MSAL treats the server as its own cloud.
pub fn instance_discovery(authority: &str, tenant: &str, v2: bool) -> serde_json::Value {
    let a = authority_base(authority);
    let host = a.split_once("://").map(|(_, h)| h).unwrap_or(a);
    let host = host.split('/').next().unwrap_or(host);
    let config = if v2 { "v2.0/.well-known/openid-configuration" } else { ".well-known/openid-configuration" };
    let metadata = if PUBLIC_CLOUD_LOGIN_HOSTS.contains(&host) {
        json!([{
            "preferred_network": "login.microsoftonline.com",
            "preferred_cache": "login.windows.net",
            "aliases": PUBLIC_CLOUD_LOGIN_HOSTS
        }])
    } else {
        json!([{ "preferred_network": host, "preferred_cache": host, "aliases": [host] }])
    };
    json!({
        "tenant_discovery_endpoint": format!("{a}/{tenant}/{config}"),
        "api-version": "1.1",
        "metadata": metadata
    })
}
