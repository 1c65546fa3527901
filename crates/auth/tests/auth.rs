//! Round trips and rejections of the public API.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enrollgraph_auth::*;

const TENANT: &str = "5b0e1a5e-1111-4c2e-9a6f-000000000001";
const CLIENT: &str = "0c1d2e3f-2222-4c2e-9a6f-000000000002";
const USER: &str = "7a8b9c0d-3333-4c2e-9a6f-000000000003";
const AUTHORITY: &str = "https://localhost:8443";
const NOW: i64 = 1_750_000_000;
const LEEWAY: i64 = 60;

/// Key generation is slow in debug builds: the tests share two key sets.
fn keys() -> &'static KeySet {
    static K: OnceLock<KeySet> = OnceLock::new();
    K.get_or_init(|| KeySet::generate_at(NOW - 100).expect("generate"))
}

fn other_keys() -> &'static KeySet {
    static K: OnceLock<KeySet> = OnceLock::new();
    K.get_or_init(|| KeySet::generate_at(NOW - 100).expect("generate"))
}

fn issuer() -> Issuer {
    Issuer::new(keys().clone(), AUTHORITY)
}

fn validator() -> Validator {
    Validator::new(keys(), AUTHORITY, graph_audiences(), LEEWAY)
}

fn roles(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| s.to_string()).collect()
}

fn app_token_at(now: i64, lifetime: i64) -> String {
    issuer()
        .app_token(TENANT, CLIENT, &roles(&[permissions::SERVICE_CONFIG_READ_WRITE_ALL]), lifetime, now)
        .expect("app token")
        .0
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

fn base_claims() -> AccessClaims {
    serde_json::from_value(claims_of(&app_token_at(NOW, 3600))).expect("claims")
}

#[test]
fn app_token_round_trip() {
    let (token, expires_in) = issuer()
        .app_token(
            TENANT,
            CLIENT,
            &roles(&[permissions::SERVICE_CONFIG_READ_WRITE_ALL, permissions::CONFIGURATION_READ_ALL]),
            3599,
            NOW,
        )
        .expect("token");
    assert_eq!(expires_in, 3599);
    let p = validator().validate(&token, NOW + 10).expect("valid");
    assert_eq!(p.tenant, TENANT);
    assert_eq!(p.app_id, CLIENT);
    assert_eq!(p.object_id, service_principal_object_id(TENANT, CLIENT));
    assert_eq!(p.kind, PrincipalKind::Application);
    assert_eq!(p.roles, roles(&[permissions::SERVICE_CONFIG_READ_WRITE_ALL, permissions::CONFIGURATION_READ_ALL]));
    assert!(p.scopes.is_empty());
    assert!(!p.personal_account);
    assert_eq!(p.expires_at, NOW + 3599);
    assert!(p.has_any(permissions::WRITE));
    assert!(p.has_any(permissions::READ));

    // The claims are those of an Entra v1.0 app-only token for Graph.
    let c = claims_of(&token);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(c["idp"], c["iss"]);
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["sub"], c["oid"]);
    assert_eq!(c["iat"], NOW);
    assert_eq!(c["nbf"], NOW);
    assert_eq!(c["exp"], NOW + 3599);
    assert!(c.get("scp").is_none());
    assert_eq!(c["uti"].as_str().expect("uti").len(), 22);
    // Header: RS256 with the current kid.
    let h: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().expect("header")).expect("b64"))
            .expect("json");
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["kid"], keys().current_kid());
}

#[test]
fn app_token_without_roles_is_an_application_without_permissions() {
    let (token, _) = issuer().app_token(TENANT, CLIENT, &[], 600, NOW).expect("token");
    let p = validator().validate(&token, NOW).expect("valid");
    assert_eq!(p.kind, PrincipalKind::Application);
    assert!(p.roles.is_empty());
    assert!(!p.has_any(permissions::READ));
}

#[test]
fn delegated_token_round_trip() {
    let scopes = roles(&["https://graph.microsoft.com/DeviceManagementServiceConfig.Read.All", "openid", "profile"]);
    let (token, _) =
        issuer().user_token(TENANT, CLIENT, USER, "adele@contoso.example", &scopes, false, 3600, NOW).expect("token");
    let p = validator().validate(&token, NOW).expect("valid");
    assert_eq!(p.kind, PrincipalKind::Delegated);
    assert_eq!(p.object_id, USER);
    assert_eq!(p.app_id, CLIENT);
    assert_eq!(p.scopes, roles(&["DeviceManagementServiceConfig.Read.All", "openid", "profile"]));
    assert!(p.roles.is_empty());
    assert!(!p.personal_account);
    assert_eq!(p.user_name.as_deref(), Some("adele@contoso.example"));
    assert!(p.has_any(permissions::READ));
    assert!(!p.has_any(permissions::WRITE));
    let c = claims_of(&token);
    assert_eq!(c["scp"], "DeviceManagementServiceConfig.Read.All openid profile");
    assert_eq!(c["upn"], "adele@contoso.example");
    assert_eq!(c["idtyp"], "user");
    assert!(c.get("idp").is_none());
    assert!(c.get("roles").is_none());
    assert_ne!(c["sub"], c["oid"]);
}

#[test]
fn personal_account_flag() {
    let (token, _) = issuer()
        .user_token(
            TENANT,
            CLIENT,
            USER,
            "someone@outlook.example",
            &roles(&["DeviceManagementServiceConfig.Read.All"]),
            true,
            3600,
            NOW,
        )
        .expect("token");
    let p = validator().validate(&token, NOW).expect("valid");
    assert!(p.personal_account);
    assert_eq!(p.kind, PrincipalKind::Delegated);
    let c = claims_of(&token);
    assert_eq!(c["idp"], "live.com");
    assert_eq!(c["unique_name"], "live.com#someone@outlook.example");
    assert!(c.get("upn").is_none());

    // The Microsoft accounts tenant also marks a personal account.
    let (token, _) =
        issuer().user_token(MSA_TENANT_ID, CLIENT, USER, "x@y.example", &[], false, 3600, NOW).expect("token");
    assert!(validator().validate(&token, NOW).expect("valid").personal_account);
}

#[test]
fn both_graph_audience_forms_validate() {
    for aud in [GRAPH_RESOURCE, GRAPH_APP_ID, "https://graph.microsoft.com/"] {
        let (token, _) = issuer().with_audience(aud).app_token(TENANT, CLIENT, &[], 600, NOW).expect("token");
        validator().validate(&token, NOW).expect(aud);
    }
}

#[test]
fn missing_token() {
    assert_eq!(validator().validate("", NOW), Err(AuthError::MissingToken));
    assert_eq!(bearer_token(None), Err(AuthError::MissingToken));
    assert_eq!(bearer_token(Some("  ")), Err(AuthError::MissingToken));
    assert_eq!(bearer_token(Some("Bearer ")), Err(AuthError::MissingToken));
    assert_eq!(bearer_token(Some("Basic dXNlcjpwdw==")), Err(AuthError::Malformed));
    assert_eq!(bearer_token(Some("bearer abc.def.ghi")), Ok("abc.def.ghi"));
    assert_eq!(bearer_token(Some("Bearer  abc ")), Ok("abc"));
}

#[test]
fn malformed_tokens() {
    let v = validator();
    let good = app_token_at(NOW, 600);
    let (h, rest) = good.split_once('.').expect("dot");
    let (p, s) = rest.split_once('.').expect("dot");
    let json_junk = URL_SAFE_NO_PAD.encode("not json");
    let cases = [
        "abc".to_string(),
        "a.b".to_string(),
        format!("{good}.extra"),
        format!("{h}.{p}"),
        format!("!!!.{p}.{s}"),         // header not base64url
        format!("{h}=.{p}.{s}"),        // padding is not base64url without padding
        format!("{json_junk}.{p}.{s}"), // header not JSON
        format!("{h}.{p}.***"),         // signature not base64url
        format!("{h}.{p}.{s}").replace('.', ".."),
        "x".repeat(20_000),
    ];
    for t in &cases {
        assert_eq!(v.validate(t, NOW), Err(AuthError::Malformed), "{}", &t[..t.len().min(40)]);
    }
    // A correctly signed token whose payload is not JSON, or lacks required claims.
    let signed_junk = issuer().sign_payload(b"not json").expect("sign");
    assert_eq!(v.validate(&signed_junk, NOW), Err(AuthError::Malformed));
    let signed_empty = issuer().sign_payload(b"{}").expect("sign");
    assert_eq!(v.validate(&signed_empty, NOW), Err(AuthError::Malformed));
    // A payload altered after signing is a bad signature, not malformed.
    let other_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&serde_json::json!({"aud": "x"})).expect("json"));
    assert_eq!(v.validate(&format!("{h}.{other_payload}.{s}"), NOW), Err(AuthError::BadSignature));
}

#[test]
fn wrong_signature_and_unknown_key() {
    let v = validator();
    // Signed by another key set: its kid is unknown here.
    let foreign = Issuer::new(other_keys().clone(), AUTHORITY).app_token(TENANT, CLIENT, &[], 600, NOW).expect("token");
    assert_eq!(v.validate(&foreign.0, NOW), Err(AuthError::UnknownKey));
    // Another key claiming our kid: the signature does not verify.
    let json = other_keys().to_json().replace(other_keys().current_kid(), keys().current_kid());
    let impostor = KeySet::from_json(&json).expect("load");
    let forged = Issuer::new(impostor, AUTHORITY).app_token(TENANT, CLIENT, &roles(&["x"]), 600, NOW).expect("token");
    assert_eq!(v.validate(&forged.0, NOW), Err(AuthError::BadSignature));
    // A flipped signature bit.
    let good = app_token_at(NOW, 600);
    let (signed, sig) = good.rsplit_once('.').expect("dot");
    let mut raw = URL_SAFE_NO_PAD.decode(sig).expect("b64");
    raw[10] ^= 1;
    let flipped = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(raw));
    assert_eq!(v.validate(&flipped, NOW), Err(AuthError::BadSignature));
    // No kid at all.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let (_, rest) = good.split_once('.').expect("dot");
    assert_eq!(v.validate(&format!("{header}.{rest}"), NOW), Err(AuthError::UnknownKey));
}

#[test]
fn alg_none_and_hs256_confusion_rejected() {
    let v = validator();
    let good = app_token_at(NOW, 600);
    let payload = good.split('.').nth(1).expect("payload");
    let kid = keys().current_kid();
    // alg none, empty signature.
    let none = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
    assert_eq!(v.validate(&format!("{none}.{payload}."), NOW), Err(AuthError::UnsupportedAlgorithm));
    // HS256 with the public key (JWK n, and the whole JWKS text) as the HMAC secret.
    let jwks = keys().jwks();
    let n = jwks["keys"][0]["n"].as_str().expect("n").to_string();
    let hs = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#));
    for secret in [n.into_bytes(), jwks.to_string().into_bytes()] {
        let signed = format!("{hs}.{payload}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, signed.as_bytes());
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(v.validate(&token, NOW), Err(AuthError::UnsupportedAlgorithm));
    }
    // Other RSA/EC algorithms are refused too, even with a valid RS256 signature.
    let (h, rest) = good.split_once('.').expect("dot");
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).expect("b64")).expect("json");
    let mut ps = header.clone();
    ps["alg"] = "PS256".into();
    let ps = URL_SAFE_NO_PAD.encode(ps.to_string());
    assert_eq!(v.validate(&format!("{ps}.{rest}"), NOW), Err(AuthError::UnsupportedAlgorithm));
}

#[test]
fn expiry_and_not_before() {
    let v = validator();
    let t = app_token_at(NOW, 600);
    // Valid up to exp + leeway, refused after.
    assert!(v.validate(&t, NOW + 600 + LEEWAY).is_ok());
    let fresh = validator();
    assert_eq!(fresh.validate(&t, NOW + 600 + LEEWAY + 1), Err(AuthError::Expired));
    // Not yet valid beyond the leeway.
    let future = app_token_at(NOW + 1000, 600);
    assert_eq!(validator().validate(&future, NOW), Err(AuthError::NotYetValid));
    assert!(validator().validate(&future, NOW + 1000 - LEEWAY).is_ok());
    // Leeway is clamped to MAX_LEEWAY_SECS.
    let lax = Validator::new(keys(), AUTHORITY, graph_audiences(), 1_000_000);
    assert_eq!(lax.validate(&t, NOW + 600 + MAX_LEEWAY_SECS + 1), Err(AuthError::Expired));
}

#[test]
fn lifetime_is_clamped() {
    let (t, expires_in) = issuer().app_token(TENANT, CLIENT, &[], 10 * MAX_TOKEN_LIFETIME_SECS, NOW).expect("token");
    assert_eq!(expires_in, MAX_TOKEN_LIFETIME_SECS);
    assert_eq!(claims_of(&t)["exp"], NOW + MAX_TOKEN_LIFETIME_SECS);
    assert!(matches!(issuer().app_token("", CLIENT, &[], 600, NOW), Err(AuthError::InvalidArgument(_))));
}

#[test]
fn wrong_audience() {
    let (t, _) =
        issuer().with_audience("api://some-other-api").app_token(TENANT, CLIENT, &[], 600, NOW).expect("token");
    assert_eq!(validator().validate(&t, NOW), Err(AuthError::WrongAudience));
    // A validator configured for a single audience refuses the other Graph form.
    let strict = Validator::new(keys(), AUTHORITY, vec![GRAPH_APP_ID.to_string()], 0);
    assert_eq!(strict.validate(&app_token_at(NOW, 600), NOW), Err(AuthError::WrongAudience));
}

#[test]
fn wrong_issuer_and_tenant() {
    let v = validator();
    let sign = |c: &AccessClaims| issuer().sign(c).expect("sign");
    for iss in [
        format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        format!("{AUTHORITY}/{TENANT}/"),
        format!("https://sts.windows.net/{TENANT}"),
        "https://sts.windows.net//".to_string(),
        format!("https://sts.windows.net/{TENANT}/x/"),
        "https://evil.example/".to_string(),
    ] {
        let mut c = base_claims();
        c.iss = iss.clone();
        assert_eq!(v.validate(&sign(&c), NOW), Err(AuthError::WrongIssuer), "{iss}");
    }
    let mut c = base_claims();
    c.tid = "00000000-0000-0000-0000-000000000000".into();
    assert_eq!(v.validate(&sign(&c), NOW), Err(AuthError::WrongTenant));
    let mut c = base_claims();
    c.tid = String::new();
    assert_eq!(v.validate(&sign(&c), NOW), Err(AuthError::WrongTenant));
    // A validator restricted to other tenants.
    let restricted = validator().with_allowed_tenants(vec!["another-tenant".into()]);
    assert_eq!(restricted.validate(&app_token_at(NOW, 600), NOW), Err(AuthError::WrongTenant));
    let allowed = validator().with_allowed_tenants(vec![TENANT.to_uppercase()]);
    allowed.validate(&app_token_at(NOW, 600), NOW).expect("allowed tenant");
    // tid missing altogether: not a valid access token shape.
    let mut raw = serde_json::to_value(base_claims()).expect("json");
    raw.as_object_mut().expect("object").remove("tid");
    let t = issuer().sign_payload(raw.to_string().as_bytes()).expect("sign");
    assert_eq!(v.validate(&t, NOW), Err(AuthError::Malformed));
    // issuer_for is the scheme the validator checks.
    assert_eq!(issuer().issuer_for(TENANT), format!("https://sts.windows.net/{TENANT}/"));
}

#[test]
fn cache_returns_same_principal_and_honours_exp() {
    let v = validator();
    let t = app_token_at(NOW, 600);
    let first = v.validate(&t, NOW).expect("valid");
    assert_eq!(v.cached_tokens(), 1);
    let second = v.validate(&t, NOW + 1).expect("cached");
    assert_eq!(first, second);
    assert_eq!(v.cached_tokens(), 1);
    // The server's path shares the cached principal rather than cloning it per request.
    let (a, b) = (v.validate_shared(&t, NOW + 2).expect("cached"), v.validate_shared(&t, NOW + 3).expect("cached"));
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(*a, first);
    // Still cached, but expired: refused.
    assert_eq!(v.validate(&t, NOW + 600 + LEEWAY + 1), Err(AuthError::Expired));
    // And a cached token is checked for nbf too.
    let future = app_token_at(NOW + 1000, 600);
    v.validate(&future, NOW + 1000).expect("valid");
    assert_eq!(v.validate(&future, NOW), Err(AuthError::NotYetValid));
    // A failed validation is not cached.
    let _ = v.validate("a.b.c", NOW);
    assert_eq!(v.cached_tokens(), 2);
}

#[test]
fn cache_is_bounded_and_drops_expired() {
    let v = validator().with_cache_capacity(4);
    let tokens: Vec<String> = (0..10).map(|i| app_token_at(NOW + i, 60)).collect();
    for t in &tokens {
        v.validate(t, NOW + 10).expect("valid");
        assert!(v.cached_tokens() <= 4);
    }
    // Later, all cached tokens are expired: the next insertion sweeps them.
    let late = app_token_at(NOW + 10_000, 600);
    v.validate(&late, NOW + 10_000).expect("valid");
    assert_eq!(v.cached_tokens(), 1);
    // Capacity 0 disables the cache.
    let none = validator().with_cache_capacity(0);
    none.validate(&late, NOW + 10_000).expect("valid");
    assert_eq!(none.cached_tokens(), 0);
}

#[test]
fn rotation_keeps_old_key_until_its_tokens_expire() {
    let mut ks = KeySet::generate_at(NOW).expect("generate");
    let old_kid = ks.current_kid().to_string();
    let mut iss = Issuer::new(ks.clone(), AUTHORITY);
    let v = Validator::new(&ks, AUTHORITY, graph_audiences(), LEEWAY);
    let (old_token, _) = iss.app_token(TENANT, CLIENT, &[], MAX_TOKEN_LIFETIME_SECS, NOW).expect("token");
    v.validate(&old_token, NOW).expect("valid");

    ks.rotate(NOW + 100).expect("rotate");
    assert_ne!(ks.current_kid(), old_kid);
    assert_eq!(ks.kids().len(), 2);
    assert_eq!(ks.jwks()["keys"].as_array().expect("keys").len(), 2);
    assert_eq!(ks.jwks()["keys"][0]["kid"], ks.current_kid());
    v.update_keys(&ks);
    iss.set_keys(ks.clone());

    // The old token still validates (cache was emptied, so this is a fresh verification).
    assert_eq!(v.cached_tokens(), 0);
    v.validate(&old_token, NOW + 200).expect("old token still valid");
    // New tokens are signed with the new key.
    let (new_token, _) = iss.app_token(TENANT, CLIENT, &[], 600, NOW + 200).expect("token");
    let header = new_token.split('.').next().expect("header");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
    assert_eq!(header["kid"], ks.current_kid());
    v.validate(&new_token, NOW + 200).expect("new token valid");

    // Kept until every token it signed is expired (max lifetime + max leeway) …
    assert_eq!(ks.prune(NOW + 100 + RETIRED_KEY_RETENTION_SECS), 0);
    const { assert!(MAX_TOKEN_LIFETIME_SECS + LEEWAY <= 100 + RETIRED_KEY_RETENTION_SECS) };
    v.validate(&old_token, NOW + MAX_TOKEN_LIFETIME_SECS + LEEWAY).expect("valid until its exp");
    // … then pruned.
    assert_eq!(ks.prune(NOW + 101 + RETIRED_KEY_RETENTION_SECS), 1);
    assert_eq!(ks.kids(), vec![ks.current_kid()]);
    v.update_keys(&ks);
    assert_eq!(v.validate(&old_token, NOW + 101 + RETIRED_KEY_RETENTION_SECS), Err(AuthError::UnknownKey));
    // The persisted form keeps the retirement state.
    let reloaded = KeySet::from_json(&ks.to_json()).expect("load");
    assert_eq!(reloaded.kids(), ks.kids());
}

#[test]
fn keyset_json_round_trip() {
    let ks = keys();
    let json = ks.to_json();
    assert!(json.contains("-----BEGIN PRIVATE KEY-----"));
    let loaded = KeySet::from_json(&json).expect("load");
    assert_eq!(loaded.current_kid(), ks.current_kid());
    assert_eq!(loaded.jwks(), ks.jwks());
    assert_eq!(loaded.current_created_at(), NOW - 100);
    assert_eq!(loaded.to_json(), json);
    // A token signed with the loaded keys validates against the original, and back.
    let t = Issuer::new(loaded.clone(), AUTHORITY).app_token(TENANT, CLIENT, &[], 600, NOW).expect("token").0;
    validator().validate(&t, NOW).expect("valid");
    let v2 = Validator::new(&loaded, AUTHORITY, graph_audiences(), 0);
    v2.validate(&app_token_at(NOW, 600), NOW).expect("valid");
    // Debug does not leak private keys.
    assert!(!format!("{ks:?}").contains("PRIVATE"));
}

#[test]
fn keyset_json_rejections() {
    assert!(matches!(KeySet::from_json("nope"), Err(AuthError::InvalidKeySet(_))));
    assert!(matches!(KeySet::from_json(r#"{"version":1,"keys":[]}"#), Err(AuthError::InvalidKeySet(_))));
    let json = keys().to_json();
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    // Two current keys.
    let mut two = v.clone();
    let k = two["keys"][0].clone();
    let mut k2 = k.clone();
    k2["kid"] = "other".into();
    two["keys"].as_array_mut().expect("arr").push(k2);
    assert!(matches!(KeySet::from_json(&two.to_string()), Err(AuthError::InvalidKeySet(_))));
    // Duplicate kid.
    let mut dup = v.clone();
    let mut k3 = k.clone();
    k3["retired_at"] = NOW.into();
    dup["keys"].as_array_mut().expect("arr").push(k3);
    assert!(matches!(KeySet::from_json(&dup.to_string()), Err(AuthError::InvalidKeySet(_))));
    // Bad PEM.
    let mut bad = v.clone();
    bad["keys"][0]["private_key_pem"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    assert!(matches!(KeySet::from_json(&bad.to_string()), Err(AuthError::InvalidKeySet(_))));
    // Unknown version.
    let mut ver = v;
    ver["version"] = 2.into();
    assert!(matches!(KeySet::from_json(&ver.to_string()), Err(AuthError::InvalidKeySet(_))));
}

#[test]
fn jwks_shape() {
    let jwks = keys().jwks();
    let k = &jwks["keys"][0];
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["kid"], keys().current_kid());
    assert_eq!(k["e"], "AQAB");
    let n = URL_SAFE_NO_PAD.decode(k["n"].as_str().expect("n")).expect("b64");
    assert_eq!(n.len(), 256);
    assert!(k.get("d").is_none() && k.get("p").is_none());
    assert_eq!(keys().current_kid().len(), 27);
}

#[test]
fn secrets() {
    let s = generate_secret();
    assert_eq!(s.len(), 40);
    assert_eq!(&s[3..6], "8Q~");
    assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c)));
    assert_ne!(generate_secret(), s);
    let h1 = hash_secret(&s);
    let h2 = hash_secret(&s);
    assert_ne!(h1, h2, "salted");
    assert!(h1.starts_with(&format!("$pbkdf2-sha256$i={PBKDF2_ITERATIONS},l=32$")));
    assert!(verify_secret(&s, &h1));
    assert!(verify_secret(&s, &h2));
    assert!(!verify_secret("wrong", &h1));
    assert!(!verify_secret(&s[..39], &h1));
    assert!(!verify_secret(&s, ""));
    assert!(!verify_secret(&s, "$pbkdf2-sha256$i=0,l=32$AAAA$AAAA"));
    assert!(!verify_secret(&s, "$argon2id$v=19$m=19456,t=2,p=1$AAAA$AAAA"));
    assert!(!verify_secret(&s, &h1.replace("l=32", "l=31")));
    assert!(!verify_secret(&s, &format!("{h1}$x")));
    // A hash made elsewhere in the same PHC layout verifies (Python hashlib.pbkdf2_hmac,
    // "pw", salt "saltsalt", 1000 rounds; unpadded standard base64).
    let foreign = "$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAfjTCX2GWVTHwva2WigH9ow";
    assert!(verify_secret("pw", foreign));
    assert!(!verify_secret("pW", foreign));
    assert!(!verify_secret("pw", &foreign[..foreign.len() - 1]));
}

#[test]
fn discovery_documents() {
    let d = openid_configuration("https://localhost:8443/", TENANT);
    assert_eq!(d["issuer"], format!("https://localhost:8443/{TENANT}/v2.0"));
    assert_eq!(d["token_endpoint"], format!("https://localhost:8443/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(d["authorization_endpoint"], format!("https://localhost:8443/{TENANT}/oauth2/v2.0/authorize"));
    assert_eq!(d["jwks_uri"], format!("https://localhost:8443/{TENANT}/discovery/v2.0/keys"));
    assert_eq!(d["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    assert!(d["token_endpoint_auth_methods_supported"].as_array().expect("arr").contains(&"client_secret_post".into()));
    assert!(d["response_types_supported"].is_array());
    assert!(d["subject_types_supported"].is_array());
    assert!(d["scopes_supported"].is_array());
    assert_eq!(d["cloud_instance_name"], "microsoftonline.com");
    assert!(d["tenant_region_scope"].is_string());
    let common = openid_configuration(AUTHORITY, "common");
    assert_eq!(common["issuer"], format!("{AUTHORITY}/{{tenantid}}/v2.0"));
    assert_eq!(issuer().openid_configuration(TENANT), openid_configuration(AUTHORITY, TENANT));

    let i = instance_discovery("https://localhost:8443", TENANT, true);
    assert_eq!(
        i["tenant_discovery_endpoint"],
        format!("https://localhost:8443/{TENANT}/v2.0/.well-known/openid-configuration")
    );
    assert_eq!(i["api-version"], "1.1");
    assert_eq!(i["metadata"][0]["preferred_network"], "localhost:8443");
    assert_eq!(i["metadata"][0]["preferred_cache"], "localhost:8443");
    assert_eq!(i["metadata"][0]["aliases"], serde_json::json!(["localhost:8443"]));
}

#[test]
fn token_errors() {
    let b = token_error("invalid_client", "AADSTS7000215: Invalid client secret provided.");
    assert_eq!(b["error"], "invalid_client");
    assert_eq!(b["error_codes"], serde_json::json!([7000215]));
    let d = b["error_description"].as_str().expect("desc");
    assert!(d.starts_with("AADSTS7000215: Invalid client secret provided. Trace ID: "));
    assert!(d.contains(" Correlation ID: ") && d.contains(" Timestamp: "));
    for f in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(b[f].is_string(), "{f}");
    }
    assert!(d.contains(b["trace_id"].as_str().expect("trace")));
    assert_eq!(token_error_status("invalid_client"), 401);
    assert_eq!(token_error_status("invalid_grant"), 400);

    // Without a prefix, the default code for the error is used and prefixed.
    let b = token_error("unsupported_grant_type", "The app requested an unsupported grant type 'password'.");
    assert_eq!(b["error_codes"], serde_json::json!([70003]));
    assert!(b["error_description"].as_str().expect("desc").starts_with("AADSTS70003: The app requested"));

    let e = TokenError::invalid_client_secret(CLIENT);
    assert_eq!((e.status, e.error.as_str(), e.code), (401, "invalid_client", 7_000_215));
    let body = e.to_json_at(Some("c0ffee00-0000-0000-0000-000000000000"), 1_733_233_890);
    assert_eq!(body["correlation_id"], "c0ffee00-0000-0000-0000-000000000000");
    assert_eq!(body["timestamp"], "2024-12-03 13:51:30Z");
    assert_eq!(body["error_uri"], "https://login.microsoftonline.com/error?code=7000215");
    let expect = [
        (TokenError::expired_client_secret(CLIENT), "invalid_client", 7_000_222, 401),
        (TokenError::missing_client_secret(), "invalid_request", 7_000_216, 400),
        (TokenError::unknown_client(CLIENT, TENANT), "unauthorized_client", 700_016, 400),
        (TokenError::tenant_not_found("x"), "invalid_request", 90_002, 400),
        (TokenError::missing_parameter("grant_type"), "invalid_request", 900_144, 400),
        (TokenError::post_only("GET"), "invalid_request", 900_561, 400),
        (TokenError::unsupported_grant_type("password"), "unsupported_grant_type", 70_003, 400),
        (TokenError::scope_not_default("User.Read"), "invalid_scope", 1_002_012, 400),
        (TokenError::invalid_scope("a b"), "invalid_scope", 70_011, 400),
        (TokenError::resource_not_found("api://x", TENANT), "invalid_resource", 500_011, 400),
        (TokenError::invalid_user_credentials(), "invalid_grant", 50_126, 400),
    ];
    for (e, error, code, status) in expect {
        assert_eq!((e.error.as_str(), e.code, e.status), (error, code, status));
        assert_eq!(e.to_json()["error_codes"][0], code);
    }
    let ok = token_response("abc", 3599);
    assert_eq!(
        ok,
        serde_json::json!({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"abc"})
    );
}

#[test]
fn client_credentials_scope() {
    assert_eq!(
        client_credentials_resource("https://graph.microsoft.com/.default", TENANT),
        Ok(GRAPH_RESOURCE.to_string())
    );
    assert_eq!(
        client_credentials_resource(" https://graph.microsoft.com//.default ", TENANT),
        Ok(GRAPH_RESOURCE.to_string())
    );
    assert_eq!(
        client_credentials_resource("00000003-0000-0000-c000-000000000000/.default", TENANT),
        Ok(GRAPH_APP_ID.to_string())
    );
    let code = |s: &str| client_credentials_resource(s, TENANT).map_err(|e| e.code);
    assert_eq!(code(""), Err(900_144));
    assert_eq!(code("https://graph.microsoft.com/User.Read"), Err(1_002_012));
    assert_eq!(code("https://graph.microsoft.com/.default User.Read"), Err(1_002_012));
    assert_eq!(code("https://graph.microsoft.com/.default https://vault.azure.net/.default"), Err(70_011));
    assert_eq!(code("https://vault.azure.net/.default"), Err(500_011));
}

#[test]
fn error_messages_never_contain_the_token() {
    let t = app_token_at(NOW, 600);
    let v = validator();
    let errs = [v.validate(&format!("{t}x"), NOW), v.validate(&t[1..], NOW), v.validate(&t, NOW + 100_000)];
    for e in errs {
        let e = e.expect_err("rejected");
        let text = format!("{e} {e:?}");
        assert!(!text.contains(&t[..30]));
        assert!(e.is_token_rejection());
    }
    assert_eq!(AuthError::Expired.to_string(), "Access token has expired or is not yet valid.");
    assert!(validator().www_authenticate().contains(
        "authorization_uri=\"https://localhost:8443/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""
    ));
}

#[test]
fn validator_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Validator>();
    assert_send_sync::<Issuer>();
    assert_send_sync::<KeySet>();
    let v = std::sync::Arc::new(validator());
    let t = app_token_at(NOW, 600);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let v = v.clone();
            let t = t.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    v.validate(&t, NOW).expect("valid");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("join");
    }
    assert_eq!(v.cached_tokens(), 1);
}
