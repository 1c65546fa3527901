//! Issue 14, identity: the login host's discovery documents as Entra shapes them (requests
//! that name `login.microsoftonline.com`, as an intercepting proxy forwards them), tenants
//! by domain name, and `common`/`organizations` where Entra takes them.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, Server, TENANT, Value, json};
use reqwest::blocking::Client;

const KEY: &str = "egadm_test-admin-key";
const LOGIN: &str = "login.microsoftonline.com";
/// The default domain of the development tenant: `enrollgraph` + the GUID's first group.
const DEV_DOMAIN: &str = "enrollgraphd7c5e0a4.onmicrosoft.com";

fn get(s: &Server, host: Option<&str>, path: &str) -> (u16, Value) {
    let mut rb = Client::new().get(s.url(path));
    if let Some(h) = host {
        rb = rb.header("host", h);
    }
    let r = rb.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

fn token(s: &Server, host: Option<&str>, tenant: &str) -> (u16, Value) {
    let mut rb = Client::new().post(s.url(&format!("/{tenant}/oauth2/v2.0/token")));
    if let Some(h) = host {
        rb = rb.header("host", h);
    }
    let r = rb
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEV_CLIENT_ID),
            ("client_secret", DEV_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn graph(s: &Server, token: &str) -> u16 {
    Client::new()
        .get(s.url("/beta/deviceManagement/deviceEnrollmentConfigurations"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn instance_discovery_on_the_login_host_is_entras_public_cloud_answer() {
    let s = Server::start();
    let query = format!(
        "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://{LOGIN}/{TENANT}/oauth2/v2.0/authorize"
    );
    let (status, body) = get(&s, Some(LOGIN), &query);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "tenant_discovery_endpoint": format!("https://{LOGIN}/{TENANT}/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [{
                "preferred_network": "login.microsoftonline.com",
                "preferred_cache": "login.windows.net",
                "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]
            }]
        })
    );
    // The v1 authorize endpoint (MSAL .NET with a v1 authority) names the v1 document; an
    // alias host is answered as itself.
    let v1 = format!(
        "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://{LOGIN}/common/oauth2/authorize"
    );
    let (_, body) = get(&s, Some("login.windows.net"), &v1);
    assert_eq!(body["tenant_discovery_endpoint"], "https://login.windows.net/common/.well-known/openid-configuration");
    // Directly (the server's own origin): the server is its own cloud, as before.
    let (_, body) = get(&s, None, &query);
    let host = s.base.trim_start_matches("http://");
    assert_eq!(body["metadata"], json!([{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]));
    assert_eq!(body["tenant_discovery_endpoint"], s.url(&format!("/{TENANT}/v2.0/.well-known/openid-configuration")));
    // A tenant that is not one is not echoed.
    let bad = format!(
        "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://{LOGIN}/a%20b/oauth2/v2.0/authorize"
    );
    let (status, body) = get(&s, Some(LOGIN), &bad);
    assert_eq!((status, body["error_codes"].clone()), (400, json!([90002])));
}

#[test]
fn the_openid_configuration_on_the_login_host_names_https_login_microsoftonline_com() {
    let s = Server::start();
    let (status, d) = get(&s, Some(LOGIN), &format!("/{TENANT}/v2.0/.well-known/openid-configuration"));
    assert_eq!(status, 200);
    let base = format!("https://{LOGIN}/{TENANT}");
    assert_eq!(d["issuer"], format!("{base}/v2.0"));
    assert_eq!(d["token_endpoint"], format!("{base}/oauth2/v2.0/token"));
    assert_eq!(d["authorization_endpoint"], format!("{base}/oauth2/v2.0/authorize"));
    assert_eq!(d["jwks_uri"], format!("{base}/discovery/v2.0/keys"));
    // With a port in Host (a proxy that keeps `:443`), the same.
    let (_, d) =
        get(&s, Some("login.microsoftonline.com:443"), &format!("/{TENANT}/v2.0/.well-known/openid-configuration"));
    assert_eq!(d["token_endpoint"], format!("{base}/oauth2/v2.0/token"));
    // `organizations` and `common` work for discovery, with Entra's `{tenantid}` issuer.
    for alias in ["organizations", "common"] {
        let (status, d) = get(&s, Some(LOGIN), &format!("/{alias}/v2.0/.well-known/openid-configuration"));
        assert_eq!(status, 200);
        assert_eq!(d["issuer"], format!("https://{LOGIN}/{{tenantid}}/v2.0"));
        assert_eq!(d["token_endpoint"], format!("https://{LOGIN}/{alias}/oauth2/v2.0/token"));
    }
}

#[test]
fn a_token_from_the_login_host_opens_graph() {
    let s = Server::start();
    let (status, body) = token(&s, Some(LOGIN), TENANT);
    assert_eq!(status, 200, "{body}");
    let t = body["access_token"].as_str().unwrap();
    let c = claims(t);
    assert_eq!(c["iss"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(c["tid"], TENANT);
    assert_eq!(graph(&s, t), 200);
}

#[test]
fn common_and_organizations_are_refused_at_the_token_endpoint() {
    let s = Server::start();
    for alias in ["organizations", "common", "Organizations"] {
        let (status, body) = token(&s, Some(LOGIN), alias);
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["error_codes"], json!([50059]), "{body}");
    }
}

#[test]
fn a_tenant_is_named_by_its_domains() {
    let s = Server::start_with(&["--admin-key", KEY]);
    // The development tenant's default domain: a token there is the tenant's token.
    let (status, body) = token(&s, None, DEV_DOMAIN);
    assert_eq!(status, 200, "{body}");
    let t = body["access_token"].as_str().unwrap();
    assert_eq!(claims(t)["tid"], TENANT);
    assert_eq!(graph(&s, t), 200);
    let (_, d) = get(&s, Some(LOGIN), &format!("/{}/v2.0/.well-known/openid-configuration", DEV_DOMAIN.to_uppercase()));
    assert_eq!(d["token_endpoint"], format!("https://{LOGIN}/{TENANT}/oauth2/v2.0/token"), "Entra names the id");
    // An unknown domain is Entra's unknown tenant.
    let (status, body) = token(&s, None, "nobody.onmicrosoft.com");
    assert_eq!((status, body["error_codes"].clone()), (400, json!([90002])));

    // The admin API: a tenant with its own domain; a domain held elsewhere is a 409.
    let admin = |method: &str, path: &str, body: &Value| {
        let r = Client::new()
            .request(method.parse().unwrap(), s.url(&format!("/_enrollgraph{path}")))
            .bearer_auth(KEY)
            .json(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let id = "6a1f4c2e-0000-4000-8000-00000000a001";
    let (status, created) = admin("POST", "/tenants", &json!({"id": id, "domains": ["Contoso.example"]}));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["domains"], json!(["contoso.example", "enrollgraph6a1f4c2e.onmicrosoft.com"]));
    let (status, body) = admin("POST", "/tenants", &json!({"domains": ["contoso.example"]}));
    assert_eq!(status, 409, "{body}");
    let (status, body) = admin("POST", "/tenants", &json!({"domains": [DEV_DOMAIN]}));
    assert_eq!(status, 409, "{body}");
    let (status, body) = admin("POST", "/tenants", &json!({"domains": ["single-label"]}));
    assert_eq!(status, 400, "{body}");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", created["clientId"].as_str().unwrap()),
        ("client_secret", created["clientSecret"].as_str().unwrap()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let r = Client::new().post(s.url("/contoso.example/oauth2/v2.0/token")).form(&form).send().unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    assert_eq!(claims(t["access_token"].as_str().unwrap())["tid"], id);

    // Deleting the tenant frees its domains.
    let (status, _) = admin("DELETE", &format!("/tenants/{id}"), &Value::Null);
    assert_eq!(status, 204);
    let r = Client::new().post(s.url("/contoso.example/oauth2/v2.0/token")).form(&form).send().unwrap();
    assert_eq!(r.status(), 400);
    let (status, body) = admin("POST", "/tenants", &json!({"domains": ["contoso.example"]}));
    assert_eq!(status, 201, "{body}");

    // The CLI: `tenant create --domain`.
    let out = s.cli(&["tenant", "create", "--domain", "fabrikam.example"]);
    let new_id = out.trim();
    let r = Client::new()
        .get(s.url("/fabrikam.example/v2.0/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(r["token_endpoint"], s.url(&format!("/{new_id}/oauth2/v2.0/token")));
}

#[test]
fn a_password_sign_in_at_organizations_finds_the_tenant_by_the_users_domain() {
    let s = Server::start();
    let upn = format!("adele@{DEV_DOMAIN}");
    s.cli(&["user", "create", "--tenant", TENANT, "--upn", &upn, "--password", "Pa55-word!"]);
    let send = |tenant: &str, upn: &str| {
        let r = Client::new()
            .post(s.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "password"),
                ("client_id", DEV_CLIENT_ID),
                ("username", upn),
                ("password", "Pa55-word!"),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap())
    };
    for alias in ["organizations", "common"] {
        let (status, body) = send(alias, &upn);
        assert_eq!(status, 200, "{alias}: {body}");
        assert_eq!(claims(body["access_token"].as_str().unwrap())["tid"], TENANT);
    }
    // Personal accounts only: never a tenant's user.
    let (status, body) = send("consumers", &upn);
    assert_eq!((status, body["error_codes"].clone()), (400, json!([50059])), "{body}");
    // A domain no tenant holds: the wrong-credentials answer, as for an unknown user.
    let (status, body) = send("organizations", "adele@nobody.example");
    assert_eq!((status, body["error_codes"].clone()), (400, json!([50126])), "{body}");
}
