//! Certificate credentials (issue 14): an app holds public certificates; the token endpoint
//! accepts an RFC 7523 client assertion signed with one of them, as Entra does, and refuses
//! every forgery with Entra's error body and AADSTS code. Attack tests first.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Server, TENANT, Value, json};
use reqwest::blocking::Client;

const KEY: &str = "egadm_test-admin-key";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A self-signed RSA certificate and its private key.
struct Cert {
    pem: String,
    der: Vec<u8>,
    key: ring::signature::RsaKeyPair,
    key_pem: String,
}

fn make_cert(days_from_now_start: i64, days_from_now_end: i64) -> Cert {
    use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
    let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let key_pem = rsa_key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let key_der = rsa_key.to_pkcs8_der().unwrap();
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["enrollgraph-test-app".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(days_from_now_start);
    params.not_after = now + time::Duration::days(days_from_now_end);
    let cert = params.self_signed(&pair).unwrap();
    Cert {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        key: ring::signature::RsaKeyPair::from_pkcs8(key_der.as_bytes()).unwrap(),
        key_pem,
    }
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn x5t(der: &[u8]) -> String {
    b64(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A signed assertion with `header` and `claims`, signed by `key` (RS256 or PS256 per header).
fn sign(key: &ring::signature::RsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let alg: &dyn ring::signature::RsaEncoding =
        if header["alg"] == "PS256" { &ring::signature::RSA_PSS_SHA256 } else { &ring::signature::RSA_PKCS1_SHA256 };
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(alg, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
    format!("{input}.{}", b64(&sig))
}

fn claims(s: &Server, tenant: &str, client_id: &str) -> Value {
    json!({
        "aud": s.url(&format!("/{tenant}/oauth2/v2.0/token")),
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now() - 10,
        "exp": now() + 600,
    })
}

fn assertion(s: &Server, cert: &Cert, client_id: &str) -> String {
    sign(&cert.key, &json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(&cert.der)}), &claims(s, TENANT, client_id))
}

fn token_request(s: &Server, tenant: &str, client_id: &str, assertion: &str) -> (u16, Value) {
    let r = Client::new()
        .post(s.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ])
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

/// Entra's error body: `error`, the AADSTS code first in `error_codes` and in the description.
fn expect_token_error(got: (u16, Value), status: u16, error: &str, code: u32) -> Value {
    let (s, body) = got;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    assert!(body["error_description"].as_str().unwrap().starts_with(&format!("AADSTS{code}: ")), "{body}");
    body
}

fn admin(s: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = Client::new()
        .request(method.parse().unwrap(), s.url(&format!("/_enrollgraph{path}")))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// A server with an app (in the default tenant) holding `cert`; returns its client id.
fn app_with(s: &Server, tenant: &str, cert: &Cert) -> String {
    let (status, body) = admin(s, "POST", &format!("/tenants/{tenant}/apps"), &json!({"certificates": [cert.pem]}));
    assert_eq!(status, 201, "{body}");
    let thumb: String = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert.der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(body["certificateThumbprints"], json!([thumb]), "{body}");
    body["clientId"].as_str().unwrap().to_owned()
}

fn graph_ok(s: &Server, token: &str) {
    let r = Client::new()
        .get(s.url("/beta/deviceManagement/deviceEnrollmentConfigurations"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn a_signed_assertion_gets_a_token_and_a_replay_is_refused() {
    let s = Server::start_with(&["--admin-key", KEY, "--journal", "on"]);
    let cert = make_cert(-1, 30);
    let client = app_with(&s, TENANT, &cert);
    let a = assertion(&s, &cert, &client);
    let (status, body) = token_request(&s, TENANT, &client, &a);
    assert_eq!(status, 200, "{body}");
    graph_ok(&s, body["access_token"].as_str().unwrap());
    // The same assertion again: refused (its jti is remembered until it expires).
    expect_token_error(token_request(&s, TENANT, &client, &a), 401, "invalid_client", 50_013);
    // `x5t#S256` (padded, as MSAL Python writes thumbprints) and PS256 name and sign as well,
    // with fractional `exp`/`nbf` (MSAL Python's `time.time() + 600`).
    let header = json!({"alg": "PS256", "typ": "JWT",
        "x5t#S256": format!("{}=", b64(ring::digest::digest(&ring::digest::SHA256, &cert.der).as_ref()))});
    let mut c = claims(&s, TENANT, &client);
    c["exp"] = json!(now() as f64 + 600.25);
    c["nbf"] = json!(now() as f64 - 10.5);
    let (status, body) = token_request(&s, TENANT, &client, &sign(&cert.key, &header, &c));
    assert_eq!(status, 200, "{body}");
    // The journal never holds the assertion.
    let journal = Client::new().get(s.url("/_enrollgraph/journal")).bearer_auth(KEY).send().unwrap().text().unwrap();
    assert!(journal.contains("oauth2/v2.0/token"), "{journal}");
    assert!(!journal.contains(&a[..40]), "the journal recorded the client assertion: {journal}");
}

#[test]
fn forged_assertions_are_refused_with_entras_codes() {
    let s = Server::start_with(&["--admin-key", KEY]);
    let cert = make_cert(-1, 30);
    let client = app_with(&s, TENANT, &cert);
    let thumb = x5t(&cert.der);

    // Signed by another key, naming the app's certificate.
    let other = make_cert(-1, 30);
    let forged = sign(&other.key, &json!({"alg": "RS256", "x5t": thumb}), &claims(&s, TENANT, &client));
    let body = expect_token_error(token_request(&s, TENANT, &client, &forged), 401, "invalid_client", 700_027);
    assert!(body["error_description"].as_str().unwrap().contains("Client assertion failed signature validation"));
    // Signed by a certificate the app does not hold.
    let unknown = sign(&other.key, &json!({"alg": "RS256", "x5t": x5t(&other.der)}), &claims(&s, TENANT, &client));
    expect_token_error(token_request(&s, TENANT, &client, &unknown), 401, "invalid_client", 700_027);

    // alg none, and HS256 keyed with the (public) certificate.
    let body_part = |c: &Value| {
        format!(
            "{}.{}",
            b64(json!({"alg": "none", "x5t": thumb}).to_string().as_bytes()),
            b64(c.to_string().as_bytes())
        )
    };
    let none = format!("{}.", body_part(&claims(&s, TENANT, &client)));
    expect_token_error(token_request(&s, TENANT, &client, &none), 401, "invalid_client", 700_027);
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "x5t": thumb}).to_string().as_bytes()),
        b64(claims(&s, TENANT, &client).to_string().as_bytes())
    );
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &cert.der), input.as_bytes());
    let hs = format!("{input}.{}", b64(mac.as_ref()));
    expect_token_error(token_request(&s, TENANT, &client, &hs), 401, "invalid_client", 700_027);
    let hs_pem =
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, cert.pem.as_bytes()), input.as_bytes());
    let hs_pem = format!("{input}.{}", b64(hs_pem.as_ref()));
    expect_token_error(token_request(&s, TENANT, &client, &hs_pem), 401, "invalid_client", 700_027);

    // The audience of another tenant.
    let mut c = claims(&s, TENANT, &client);
    c["aud"] = json!(s.url("/0b7d6c9e-1111-4222-8333-944455556666/oauth2/v2.0/token"));
    let wrong_aud = sign(&cert.key, &json!({"alg": "RS256", "x5t": thumb}), &c);
    expect_token_error(token_request(&s, TENANT, &client, &wrong_aud), 401, "invalid_client", 700_023);

    // iss/sub of another app.
    let mut c = claims(&s, TENANT, &client);
    c["iss"] = json!(common::DEV_CLIENT_ID);
    c["sub"] = json!(common::DEV_CLIENT_ID);
    let other_app = sign(&cert.key, &json!({"alg": "RS256", "x5t": thumb}), &c);
    expect_token_error(token_request(&s, TENANT, &client, &other_app), 401, "invalid_client", 700_021);

    // Expired, and not yet valid.
    let mut c = claims(&s, TENANT, &client);
    c["nbf"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    let expired = sign(&cert.key, &json!({"alg": "RS256", "x5t": thumb}), &c);
    expect_token_error(token_request(&s, TENANT, &client, &expired), 401, "invalid_client", 700_024);
    let mut c = claims(&s, TENANT, &client);
    c["nbf"] = json!(now() + 3600);
    c["exp"] = json!(now() + 7200);
    let early = sign(&cert.key, &json!({"alg": "RS256", "x5t": thumb}), &c);
    expect_token_error(token_request(&s, TENANT, &client, &early), 401, "invalid_client", 700_024);

    // Extreme numbers and no `nbf` (MSAL Python sends none): no overflow, no 500.
    let mut c = claims(&s, TENANT, &client);
    c.as_object_mut().unwrap().remove("nbf");
    c["exp"] = json!(i64::MAX);
    let (status, body) =
        token_request(&s, TENANT, &client, &sign(&cert.key, &json!({"alg": "RS256", "x5t": thumb}), &c));
    assert_eq!(status, 200, "{body}");
    let mut c = claims(&s, TENANT, &client);
    c["nbf"] = json!(i64::MIN);
    c["exp"] = json!(i64::MIN);
    let low = sign(&cert.key, &json!({"alg": "RS256", "x5t": thumb}), &c);
    expect_token_error(token_request(&s, TENANT, &client, &low), 401, "invalid_client", 700_024);

    // A huge assertion is refused before it is decoded.
    let mut c = claims(&s, TENANT, &client);
    c["pad"] = json!("x".repeat(20_000));
    let huge = sign(&cert.key, &json!({"alg": "RS256", "x5t": thumb}), &c);
    expect_token_error(token_request(&s, TENANT, &client, &huge), 400, "invalid_request", 50_027);
    // Garbage.
    expect_token_error(token_request(&s, TENANT, &client, "not-a-jwt"), 400, "invalid_request", 50_027);

    // None of these used up a good assertion's chance: a fresh one still works.
    let (status, body) = token_request(&s, TENANT, &client, &assertion(&s, &cert, &client));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_assertion_of_another_tenants_app_is_refused() {
    let s = Server::start_with(&["--admin-key", KEY]);
    let other_tenant = "0b7d6c9e-1111-4222-8333-944455556666";
    let (status, body) = admin(&s, "POST", "/tenants", &json!({"id": other_tenant}));
    assert_eq!(status, 201, "{body}");
    let cert = make_cert(-1, 30);
    let client = app_with(&s, other_tenant, &cert);
    // At the default tenant's endpoint, with the other tenant's audience or this one's.
    let mut c = claims(&s, other_tenant, &client);
    let header = json!({"alg": "RS256", "x5t": x5t(&cert.der)});
    expect_token_error(
        token_request(&s, TENANT, &client, &sign(&cert.key, &header, &c)),
        400,
        "unauthorized_client",
        700_016,
    );
    c["aud"] = json!(s.url(&format!("/{TENANT}/oauth2/v2.0/token")));
    expect_token_error(
        token_request(&s, TENANT, &client, &sign(&cert.key, &header, &c)),
        400,
        "unauthorized_client",
        700_016,
    );
    // In its own tenant it works.
    let (status, body) =
        token_request(&s, other_tenant, &client, &sign(&cert.key, &header, &claims(&s, other_tenant, &client)));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_assertion_request_must_be_well_formed() {
    let s = Server::start_with(&["--admin-key", KEY]);
    let cert = make_cert(-1, 30);
    let client = app_with(&s, TENANT, &cert);
    let send = |form: &[(&str, &str)]| {
        let r = Client::new().post(s.url(&format!("/{TENANT}/oauth2/v2.0/token"))).form(form).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap())
    };
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", client.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let a = assertion(&s, &cert, &client);
    let mut f = base.to_vec();
    f.extend([("client_assertion_type", "urn:example:other"), ("client_assertion", a.as_str())]);
    expect_token_error(send(&f), 400, "invalid_request", 50_027);
    let mut f = base.to_vec();
    f.push(("client_assertion_type", ASSERTION_TYPE));
    expect_token_error(send(&f), 400, "invalid_request", 900_144);
    let mut f = base.to_vec();
    f.extend([("client_assertion_type", ASSERTION_TYPE), ("client_assertion", a.as_str()), ("client_secret", "x")]);
    expect_token_error(send(&f), 400, "invalid_request", 90_000);
}

#[test]
fn private_keys_and_expired_certificates_are_never_stored() {
    let s = Server::start_with(&["--admin-key", KEY]);
    let cert = make_cert(-1, 30);
    for pem in [format!("{}{}", cert.pem, cert.key_pem), cert.key_pem.clone()] {
        let (status, body) = admin(&s, "POST", &format!("/tenants/{TENANT}/apps"), &json!({"certificates": [pem]}));
        assert_eq!(status, 400, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("private key"), "{body}");
    }
    let expired = make_cert(-60, -1);
    let (status, body) = admin(&s, "POST", &format!("/tenants/{TENANT}/apps"), &json!({"certificates": [expired.pem]}));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
    let (status, _) = admin(&s, "POST", &format!("/tenants/{TENANT}/apps"), &json!({"certificates": ["not a pem"]}));
    assert_eq!(status, 400);

    // The CLI refuses the same, and stores a public certificate.
    let dir = s.data_dir.join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let both = dir.join("both.pem");
    std::fs::write(&both, format!("{}{}", cert.pem, cert.key_pem)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_enrollgraph"))
        .args(["app", "create", "--tenant", TENANT, "--certificate"])
        .arg(&both)
        .arg("--data-dir")
        .arg(&s.data_dir)
        .env_remove("ENROLLGRAPH_DATABASE")
        .envs(s.database.iter().map(|d| ("ENROLLGRAPH_DATABASE", d)))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("private key"), "{}", String::from_utf8_lossy(&out.stderr));
    let public = dir.join("cert.pem");
    std::fs::write(&public, &cert.pem).unwrap();
    let out = s.cli(&["app", "create", "--tenant", TENANT, "--certificate", public.to_str().unwrap()]);
    let client = out.lines().find_map(|l| l.strip_prefix("client id:")).unwrap().trim().to_owned();
    assert!(out.contains("certificate:"), "{out}");
    let (status, body) = token_request(&s, TENANT, &client, &assertion(&s, &cert, &client));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_replay_is_refused_by_another_replica() {
    // Two servers on one PostgreSQL database are one service: the jti is remembered in the
    // database. On SQLite (one process) this is the same check on one server.
    let Some(db) = common::test_database() else {
        eprintln!("replica check needs ENROLLGRAPH_TEST_BACKEND=postgres");
        return;
    };
    let a = Server::start_on(Some(db.clone()), &["--admin-key", KEY]);
    let b = Server::start_on(Some(db), &["--admin-key", KEY]);
    let cert = make_cert(-1, 30);
    let client = app_with(&a, TENANT, &cert);
    // Each replica is reached at its own origin, so the replay to b carries the same jti
    // under b's audience.
    let c = claims(&a, TENANT, &client);
    let header = json!({"alg": "RS256", "x5t": x5t(&cert.der)});
    let signed = sign(&cert.key, &header, &c);
    assert_eq!(token_request(&a, TENANT, &client, &signed).0, 200);
    expect_token_error(token_request(&a, TENANT, &client, &signed), 401, "invalid_client", 50_013);
    let mut c2 = claims(&b, TENANT, &client);
    c2["jti"] = c["jti"].clone();
    let same_jti = sign(&cert.key, &header, &c2);
    expect_token_error(token_request(&b, TENANT, &client, &same_jti), 401, "invalid_client", 50_013);
}

#[test]
fn the_audience_is_the_endpoint_as_the_client_used_it_or_its_tenant_id_form() {
    // Through an intercepting proxy the client names login.microsoftonline.com and maybe a
    // domain of the tenant; Entra accepts the endpoint as used and the tenant-id form.
    let s = Server::start_with(&["--admin-key", KEY]);
    let cert = make_cert(-1, 30);
    let client = app_with(&s, TENANT, &cert);
    let domain = "enrollgraphd7c5e0a4.onmicrosoft.com";
    let header = json!({"alg": "RS256", "x5t": x5t(&cert.der)});
    let send = |aud: String| {
        let mut c = claims(&s, TENANT, &client);
        c["aud"] = json!(aud);
        let r = Client::new()
            .post(s.url(&format!("/{domain}/oauth2/v2.0/token")))
            .header("host", "login.microsoftonline.com")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &sign(&cert.key, &header, &c)),
            ])
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap())
    };
    for aud in [
        format!("https://login.microsoftonline.com/{domain}/oauth2/v2.0/token"),
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/token"),
    ] {
        let (status, body) = send(aud.clone());
        assert_eq!(status, 200, "{aud}: {body}");
    }
    // The server's own origin is not the endpoint this client used.
    expect_token_error(send(s.url(&format!("/{TENANT}/oauth2/v2.0/token"))), 401, "invalid_client", 700_023);
}
