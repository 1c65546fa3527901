//! Authentication and authorisation over HTTP (issue 4): every operation × every kind of
//! caller → the exact status and error code, and no state changed by any refused request.
//!
//! rulings.md 8: `401 InvalidAuthenticationToken` + `WWW-Authenticate: Bearer …` for a
//! missing, malformed, expired, not-yet-valid (beyond the 5 minutes' skew), forged, wrong
//! audience or wrong issuer token (the message never holds the token); `403 Forbidden` for a
//! valid token without the permission, naming the permissions that would do. rulings.md 1:
//! reads accept the four `.Read.All`/`.ReadWrite.All` permissions, writes either
//! `.ReadWrite.All`, delegated (`scp`) and application (`roles`) alike; personal Microsoft
//! accounts never. README "Authentication": a token is scoped to its tenant, and another
//! tenant's ids answer `404` like ids that exist nowhere. rulings.md 9: `--auth off`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{
    DEV_CLIENT_ID, DEV_CLIENT_SECRET, Response, Server, TENANT, Value, error_code, expect_error, get_ok, ids, json,
};
use enrollgraph_auth::{AccessClaims, Issuer, KeySet, permissions, service_principal_object_id};

const SC_R: &str = permissions::SERVICE_CONFIG_READ_ALL;
const SC_RW: &str = permissions::SERVICE_CONFIG_READ_WRITE_ALL;
const C_R: &str = permissions::CONFIGURATION_READ_ALL;
const C_RW: &str = permissions::CONFIGURATION_READ_WRITE_ALL;

const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";
const V1_CFG: &str = "/v1.0/deviceManagement/deviceEnrollmentConfigurations";
const APPLE: &str = "/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles";
const PROFILES: &str = "/beta/deviceManagement/windowsAutopilotDeploymentProfiles";
const DEVICES: &str = "/beta/deviceManagement/windowsAutopilotDeviceIdentities";

/// A second tenant for the isolation tests.
const TENANT_B: &str = "0b6f3c2e-9d4a-4e7b-8c1f-2a5d6e7f8091";
/// An id that exists in no tenant.
const NOWHERE: &str = "00000000-0000-0000-0000-00000000dead";

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

// --- callers ----------------------------------------------------------------------------

/// A client without the harness's default dev-app token: each request says how it
/// authenticates.
fn http() -> &'static reqwest::blocking::Client {
    static C: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    C.get_or_init(|| reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap())
}

/// The `Authorization` header a request carries (none, or this exact value).
#[derive(Clone, Debug)]
struct Auth(Option<String>);

fn bearer(token: &str) -> Auth {
    Auth(Some(format!("Bearer {token}")))
}

impl Auth {
    /// The token text, to check that no error message repeats it.
    fn token(&self) -> Option<&str> {
        self.0.as_deref().map(|h| h.split_once(' ').map_or(h, |(_, t)| t).trim()).filter(|t| t.len() >= 8)
    }
}

fn call(s: &Server, auth: &Auth, method: &str, path: &str, body: Option<&Value>) -> Response {
    let mut rb = http().request(method.parse().unwrap(), s.url(path));
    if let Some(h) = &auth.0 {
        rb = rb.header("authorization", h);
    }
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b.to_string());
    }
    rb.send().unwrap()
}

/// `POST /{tenant}/oauth2/v2.0/token` with a form.
fn token_request(s: &Server, tenant: &str, form: &[(&str, &str)]) -> Response {
    http().post(s.url(&format!("/{tenant}/oauth2/v2.0/token"))).form(form).send().unwrap()
}

fn access_token(r: Response) -> String {
    let status = r.status();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "token endpoint: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["token_type"], "Bearer", "{text}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// Registers an app (`enrollgraph app create`) and returns its client id and secret.
fn create_app(s: &Server, tenant: &str, roles: &[&str]) -> (String, String) {
    let client_id = uuid();
    let mut args = vec!["app", "create", "--tenant", tenant, "--client-id", &client_id];
    for r in roles {
        args.extend(["--role", r]);
    }
    let out = s.cli(&args);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no '{name}' in: {out}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("client id:"), client_id);
    let secret = field("client secret:");
    (client_id, secret)
}

/// A client-credentials token of a new app with `roles`, from the token endpoint.
fn app_token(s: &Server, tenant: &str, roles: &[&str]) -> String {
    let (id, secret) = create_app(s, tenant, roles);
    s.client_credentials_token(tenant, &id, &secret)
}

/// A client-credentials token of a new app with `roles`, minted by `enrollgraph token`.
fn app_token_cli(s: &Server, tenant: &str, roles: &[&str]) -> String {
    let (id, _) = create_app(s, tenant, roles);
    s.cli(&["token", "--tenant", tenant, "--app", &id]).trim().to_owned()
}

/// Creates a user (`enrollgraph user create`).
fn create_user(s: &Server, tenant: &str, upn: &str, scopes: &[&str], personal: bool) {
    let mut args = vec!["user", "create", "--tenant", tenant, "--upn", upn, "--password", "Pa55-word!"];
    for sc in scopes {
        args.extend(["--scope", sc]);
    }
    if personal {
        args.push("--personal");
    }
    s.cli(&args);
}

/// A delegated token of a new user from the token endpoint (password grant through the dev app).
fn user_token(s: &Server, upn: &str, scopes: &[&str], personal: bool) -> String {
    create_user(s, TENANT, upn, scopes, personal);
    access_token(token_request(
        s,
        TENANT,
        &[
            ("grant_type", "password"),
            ("client_id", DEV_CLIENT_ID),
            ("username", upn),
            ("password", "Pa55-word!"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    ))
}

/// A delegated token of a new user, minted by `enrollgraph token --user`.
fn user_token_cli(s: &Server, upn: &str, scopes: &[&str], personal: bool) -> String {
    create_user(s, TENANT, upn, scopes, personal);
    s.cli(&["token", "--user", upn]).trim().to_owned()
}

fn uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("a0c1d2e3-0000-4000-8000-{:04x}{:08x}", std::process::id() & 0xffff, n)
}

// --- hand-made tokens -------------------------------------------------------------------

const AUTHORITY: &str = "https://login.microsoftonline.com";

/// The key set every test server signs with (the harness passes it as `--signing-keys-file`).
fn fixture_keys() -> &'static KeySet {
    static K: OnceLock<KeySet> = OnceLock::new();
    K.get_or_init(|| KeySet::from_json(&std::fs::read_to_string(common::keys_file()).unwrap()).unwrap())
}

/// A key the server has never seen (RSA generation is slow unoptimised: once per binary).
fn foreign_keys() -> &'static KeySet {
    static K: OnceLock<KeySet> = OnceLock::new();
    K.get_or_init(|| KeySet::generate().unwrap())
}

/// The foreign key under the `kid` of the server's key: the signature check itself must fail.
fn foreign_keys_with_our_kid() -> KeySet {
    let mut v: Value = serde_json::from_str(&foreign_keys().to_json()).unwrap();
    v["keys"][0]["kid"] = json!(fixture_keys().current_kid());
    KeySet::from_json(&v.to_string()).unwrap()
}

fn sign(keys: &KeySet, claims: &AccessClaims) -> String {
    Issuer::new(keys.clone(), AUTHORITY).sign(claims).unwrap()
}

/// The claims the server's own token endpoint would give an app of `tenant` with `roles`.
fn app_claims(tenant: &str, roles: &[&str]) -> AccessClaims {
    let t = now();
    let iss = format!("https://sts.windows.net/{tenant}/");
    let oid = service_principal_object_id(tenant, DEV_CLIENT_ID);
    AccessClaims {
        aud: "https://graph.microsoft.com".into(),
        iss: iss.clone(),
        iat: t,
        nbf: t,
        exp: t + 3600,
        appid: DEV_CLIENT_ID.into(),
        appidacr: Some("1".into()),
        azp: None,
        idp: Some(iss),
        idtyp: Some("app".into()),
        oid: oid.clone(),
        roles: Some(roles.iter().map(|r| (*r).to_owned()).collect()),
        scp: None,
        sub: oid,
        tid: tenant.into(),
        unique_name: None,
        upn: None,
        email: None,
        uti: "dGVzdC10b2tlbi11dGk".into(),
        ver: "1.0".into(),
        xms_tinc: None,
    }
}

/// A valid read-write app token for the default tenant, signed with the fixture key.
fn good_claims() -> AccessClaims {
    app_claims(TENANT, &[SC_RW])
}

fn with(f: impl FnOnce(&mut AccessClaims)) -> String {
    let mut c = good_claims();
    f(&mut c);
    sign(fixture_keys(), &c)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Every token (or header) that must be answered `401`, with what is wrong with it. All
/// carry `DeviceManagementServiceConfig.ReadWrite.All`, so only authentication refuses them.
fn unauthenticated_callers() -> Vec<(&'static str, Auth)> {
    let t = now();
    let good = sign(fixture_keys(), &good_claims());
    let (good_header, good_payload) = {
        let mut p = good.split('.');
        (p.next().unwrap().to_owned(), p.next().unwrap().to_owned())
    };
    let elevated = {
        // A read-only token whose payload is swapped for a read-write one: the signature no
        // longer matches.
        let ro = sign(fixture_keys(), &app_claims(TENANT, &[SC_R]));
        let sig = ro.rsplit('.').next().unwrap().to_owned();
        format!("{good_header}.{good_payload}.{sig}")
    };
    let none_alg = format!("{}.{good_payload}.", b64(&json!({"typ": "JWT", "alg": "none"})));
    let hs256 = format!(
        "{}.{good_payload}.{}",
        b64(&json!({"typ": "JWT", "alg": "HS256", "kid": fixture_keys().current_kid()})),
        URL_SAFE_NO_PAD.encode([7u8; 32])
    );
    let no_kid =
        format!("{}.{good_payload}.{}", b64(&json!({"typ": "JWT", "alg": "RS256"})), good.rsplit('.').next().unwrap());
    vec![
        ("no Authorization header", Auth(None)),
        ("an empty Bearer", Auth(Some("Bearer ".into()))),
        ("the Basic scheme", Auth(Some(format!("Basic {}", URL_SAFE_NO_PAD.encode("dev:secret"))))),
        ("a bearer that is not a JWT", bearer("this-is-not-a-jwt-at-all")),
        ("three parts of garbage", bearer("garbage.garbage.garbage")),
        ("a truncated token", bearer(&good[..good.len() - 10])),
        ("alg none", bearer(&none_alg)),
        ("alg HS256", bearer(&hs256)),
        ("no kid", bearer(&no_kid)),
        ("expired an hour ago", bearer(&with(|c| (c.iat, c.nbf, c.exp) = (t - 7200, t - 7200, t - 3600)))),
        (
            "expired beyond the 5-minute leeway",
            bearer(&with(|c| (c.iat, c.nbf, c.exp) = (t - 3960, t - 3960, t - 360))),
        ),
        ("not valid for an hour", bearer(&with(|c| (c.iat, c.nbf, c.exp) = (t, t + 3600, t + 7200)))),
        ("not yet valid beyond the leeway", bearer(&with(|c| c.nbf = t + 360))),
        ("signed by an unknown key", bearer(&sign(foreign_keys(), &good_claims()))),
        ("signed by another key under our kid", bearer(&sign(&foreign_keys_with_our_kid(), &good_claims()))),
        ("a payload swapped after signing", bearer(&elevated)),
        ("the audience of Azure Resource Manager", bearer(&with(|c| c.aud = "https://management.azure.com".into()))),
        ("the audience of another API", bearer(&with(|c| c.aud = "api://5e0f7b2a-enrollgraph-other".into()))),
        ("an issuer on another host", bearer(&with(|c| c.iss = format!("https://sts.example.com/{TENANT}/")))),
        ("the issuer of another tenant", bearer(&with(|c| c.iss = format!("https://sts.windows.net/{TENANT_B}/")))),
        (
            "a tenant that does not exist",
            bearer(&sign(fixture_keys(), &app_claims("11111111-2222-4333-8444-555555555555", &[SC_RW]))),
        ),
    ]
}

// --- the fixture and the operations ------------------------------------------------------

/// Objects of the default tenant the operations work on, made with the dev app's token.
struct Fixture {
    cfg: String,
    cfg2: String,
    asg: String,
    asg2: String,
    apple: String,
    profile: String,
    profile2: String,
    device: String,
}

fn group(id: &str) -> Value {
    json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": id}})
}

fn limit(name: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": name, "limit": 3})
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

impl Fixture {
    fn new(s: &Server) -> Fixture {
        let cfg = id_of(&s.create(CFG, &limit("auth-1")));
        let cfg2 = id_of(&s.create(CFG, &limit("auth-2")));
        let asg = id_of(&s.create(&format!("{CFG}/{cfg}/assignments"), &group("g-1")));
        let asg2 = id_of(&s.create(&format!("{CFG}/{cfg}/assignments"), &group("g-2")));
        let apple = id_of(&s.create(APPLE, &json!({"displayName": "auth-apple", "platform": "iOS"})));
        s.create(&format!("{APPLE}/{apple}/assignments"), &group("g-3"));
        let autopilot = json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "auth-p"});
        let profile = id_of(&s.create(PROFILES, &autopilot));
        let profile2 = id_of(&s.create(PROFILES, &autopilot));
        s.create(&format!("{PROFILES}/{profile}/assignments"), &group("g-4"));
        let device = id_of(&s.create(
            DEVICES,
            &json!({"serialNumber": "AUTH-1", "deploymentProfile@odata.bind": format!("{PROFILES}('{profile}')")}),
        ));
        Fixture { cfg, cfg2, asg, asg2, apple, profile, profile2, device }
    }

    /// The same names with every id replaced by one that exists nowhere.
    fn nowhere() -> Fixture {
        let n = || NOWHERE.to_owned();
        Fixture { cfg: n(), cfg2: n(), asg: n(), asg2: n(), apple: n(), profile: n(), profile2: n(), device: n() }
    }

    fn all_ids(&self) -> Vec<&str> {
        vec![&self.cfg, &self.cfg2, &self.asg, &self.asg2, &self.apple, &self.profile, &self.profile2, &self.device]
    }
}

/// Everything a refused request could have changed, read with the dev app's token.
fn snapshot(s: &Server, f: &Fixture) -> Vec<Value> {
    let mut out = vec![get_ok(s, CFG), get_ok(s, APPLE), get_ok(s, PROFILES), get_ok(s, DEVICES)];
    for cfg in [&f.cfg, &f.cfg2] {
        out.push(get_ok(s, &format!("{CFG}/{cfg}/assignments")));
    }
    out.push(get_ok(s, &format!("{APPLE}/{}/assignments", f.apple)));
    for p in [&f.profile, &f.profile2] {
        out.push(get_ok(s, &format!("{PROFILES}/{p}/assignments")));
    }
    out.push(get_ok(s, &format!("{DEVICES}/{}/deploymentProfile", f.device)));
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Read,
    Write,
}

struct Op {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    kind: Kind,
    /// The status a permitted caller gets.
    ok: u16,
    /// Addresses objects by id (another tenant gets `404`); false for collection reads and creates.
    by_id: bool,
    /// For `$batch`: the sub-requests' statuses for a read-write caller.
    batch: bool,
}

fn op(name: &'static str, method: &'static str, path: String, body: Option<Value>, ok: u16, by_id: bool) -> Op {
    let kind = if method == "GET" { Kind::Read } else { Kind::Write };
    Op { name, method, path, body, kind, ok, by_id, batch: false }
}

/// Every operation of the matrix, in an order a permitted caller can run them one after
/// the other (reads, writes, then the deletions and `assign`, which empty what others use).
fn operations(f: &Fixture) -> Vec<Op> {
    let Fixture { cfg, cfg2, asg, asg2, apple, profile2, device, .. } = f;
    let target =
        json!({"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g-x"}});
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{cfg}")},
        {"id": "2", "method": "POST", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{cfg}/assignments"),
         "headers": {"Content-Type": "application/json"}, "body": group("g-batch")},
        {"id": "3", "method": "PATCH", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{cfg}"),
         "headers": {"Content-Type": "application/json"}, "body": {"displayName": "by batch"}},
    ]});
    vec![
        op("beta list configurations", "GET", CFG.into(), None, 200, false),
        op("beta get configuration", "GET", format!("{CFG}/{cfg}"), None, 200, true),
        op("beta list assignments", "GET", format!("{CFG}/{cfg}/assignments"), None, 200, true),
        op("beta get assignment", "GET", format!("{CFG}/{cfg}/assignments/{asg}"), None, 200, true),
        op("v1.0 list configurations", "GET", V1_CFG.into(), None, 200, false),
        op("v1.0 get configuration", "GET", format!("{V1_CFG}/{cfg}"), None, 200, true),
        op("v1.0 list assignments", "GET", format!("{V1_CFG}/{cfg}/assignments"), None, 200, true),
        op("v1.0 get assignment", "GET", format!("{V1_CFG}/{cfg}/assignments/{asg2}"), None, 200, true),
        op("$count of configurations", "GET", format!("{CFG}/$count"), None, 200, false),
        op("Apple profile assignments list", "GET", format!("{APPLE}/{apple}/assignments"), None, 200, true),
        op(
            "Autopilot device deploymentProfile/assignments",
            "GET",
            format!("{DEVICES}/{device}/deploymentProfile/assignments"),
            None,
            200,
            true,
        ),
        op("beta create configuration", "POST", CFG.into(), Some(limit("auth-new")), 201, false),
        op(
            "beta update configuration",
            "PATCH",
            format!("{CFG}/{cfg}"),
            Some(json!({"displayName": "renamed"})),
            200,
            true,
        ),
        op("beta create assignment", "POST", format!("{CFG}/{cfg}/assignments"), Some(group("g-new")), 201, true),
        op(
            "beta update assignment",
            "PATCH",
            format!("{CFG}/{cfg}/assignments/{asg}"),
            Some(target.clone()),
            200,
            true,
        ),
        op("v1.0 create configuration", "POST", V1_CFG.into(), Some(limit("auth-new-v1")), 201, false),
        op(
            "v1.0 update configuration",
            "PATCH",
            format!("{V1_CFG}/{cfg2}"),
            Some(json!({"displayName": "v1"})),
            200,
            true,
        ),
        op("v1.0 create assignment", "POST", format!("{V1_CFG}/{cfg2}/assignments"), Some(group("g-v1")), 201, true),
        op("v1.0 update assignment", "PATCH", format!("{V1_CFG}/{cfg}/assignments/{asg2}"), Some(target), 200, true),
        op("setPriority", "POST", format!("{CFG}/{cfg2}/setPriority"), Some(json!({"priority": 1})), 200, true),
        op(
            "Apple profile assignment create",
            "POST",
            format!("{APPLE}/{apple}/assignments"),
            Some(group("g-a")),
            201,
            true,
        ),
        op(
            "$ref PUT of a device's deploymentProfile",
            "PUT",
            format!("{DEVICES}/{device}/deploymentProfile/$ref"),
            Some(json!({"@odata.id": format!("{PROFILES}('{profile2}')")})),
            204,
            true,
        ),
        Op { batch: true, ..op("$batch", "POST", "/beta/$batch".into(), Some(batch), 200, true) },
        op("beta delete assignment", "DELETE", format!("{CFG}/{cfg}/assignments/{asg}"), None, 204, true),
        op("v1.0 delete assignment", "DELETE", format!("{V1_CFG}/{cfg}/assignments/{asg2}"), None, 204, true),
        op(
            "assign",
            "POST",
            format!("{CFG}/{cfg}/assign"),
            Some(json!({"enrollmentConfigurationAssignments": [group("g-assign")]})),
            200,
            true,
        ),
        op("beta delete configuration", "DELETE", format!("{CFG}/{cfg}"), None, 204, true),
        op("v1.0 delete configuration", "DELETE", format!("{V1_CFG}/{cfg2}"), None, 204, true),
    ]
}

/// What a caller is, for what it must be answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// No valid token: 401 on everything.
    Unauthenticated,
    /// A personal Microsoft account: 403 on everything.
    Personal,
    /// A valid token without any Intune permission: 403 on everything.
    NoPermission,
    /// `.Read.All` only: reads pass, writes 403.
    ReadOnly,
    /// A `.ReadWrite.All`: everything passes.
    ReadWrite,
    /// A read-write token of another tenant: 404 on this tenant's ids.
    OtherTenant,
}

fn batch_statuses(class: Class) -> [u16; 3] {
    match class {
        Class::Unauthenticated => unreachable!("the whole batch is refused"),
        Class::Personal | Class::NoPermission => [403, 403, 403],
        Class::ReadOnly => [200, 403, 403],
        Class::ReadWrite => [200, 201, 200],
        Class::OtherTenant => [404, 404, 404],
    }
}

/// The permissions a 403 must name for an operation of `kind`.
fn wanted(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Read => &[SC_R, SC_RW, C_R, C_RW],
        Kind::Write => &[SC_RW, C_RW],
    }
}

/// Checks a 401: code, `WWW-Authenticate: Bearer …`, and no trace of the token.
fn expect_401(r: Response, auth: &Auth, ctx: &str) {
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = expect_error(r, 401, "InvalidAuthenticationToken");
    let challenge = challenge.unwrap_or_else(|| panic!("{ctx}: a 401 without WWW-Authenticate"));
    assert!(challenge.starts_with("Bearer "), "{ctx}: WWW-Authenticate: {challenge}");
    if let Some(token) = auth.token() {
        let text = body.to_string();
        assert!(!text.contains(token), "{ctx}: the error repeats the token: {text}");
        let sig = token.rsplit('.').next().unwrap();
        assert!(sig.len() < 8 || !text.contains(sig), "{ctx}: the error repeats the token's signature: {text}");
    }
}

fn expect_403(r: Response, kind: Kind, class: Class, ctx: &str) {
    assert!(r.headers().get("www-authenticate").is_none(), "{ctx}: a 403 carries WWW-Authenticate");
    let body = expect_error(r, 403, "Forbidden");
    let message = body["error"]["message"].as_str().unwrap();
    if class != Class::Personal {
        for p in wanted(kind) {
            assert!(message.contains(p), "{ctx}: the 403 message does not name {p}: {message}");
        }
    }
}

/// Runs every operation as `auth` and checks each answer; for every refused request, the
/// default tenant's objects are checked unchanged.
fn run_matrix(s: &Server, f: &Fixture, who: &str, auth: &Auth, class: Class) {
    let before = if class == Class::ReadWrite { Vec::new() } else { snapshot(s, f) };
    let nowhere = operations(&Fixture::nowhere());
    for (i, o) in operations(f).into_iter().enumerate() {
        let ctx = format!("{who}: {} {} ({})", o.method, o.path, o.name);
        let r = call(s, auth, o.method, &o.path, o.body.as_ref());
        let refused = match class {
            Class::Unauthenticated => {
                expect_401(r, auth, &ctx);
                true
            }
            Class::Personal | Class::NoPermission if !o.batch => {
                expect_403(r, o.kind, class, &ctx);
                true
            }
            Class::ReadOnly if o.kind == Kind::Write && !o.batch => {
                expect_403(r, o.kind, class, &ctx);
                true
            }
            Class::OtherTenant if o.by_id && !o.batch => {
                let got = expect_error(r, 404, "ResourceNotFound");
                // Exactly as an id that exists nowhere, asked by either tenant.
                let n = &nowhere[i];
                for (label, a) in [("B", auth), ("A", &bearer(&s.token))] {
                    let r = call(s, a, n.method, &n.path, n.body.as_ref());
                    let status = r.status().as_u16();
                    let body: Value = r.json().unwrap();
                    assert_eq!(
                        (status, error_code(&body)),
                        (404, error_code(&got)),
                        "{ctx}: tenant {label} on an id that exists nowhere answers otherwise: {body}"
                    );
                }
                true
            }
            _ if o.batch => {
                let want = batch_statuses(class);
                let status = r.status();
                let text = r.text().unwrap();
                assert_eq!(status, 200, "{ctx}: {text}");
                let v: Value = serde_json::from_str(&text).unwrap();
                let mut got: Vec<(String, u16)> = v["responses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| {
                        (x["id"].as_str().unwrap().to_owned(), u16::try_from(x["status"].as_u64().unwrap()).unwrap())
                    })
                    .collect();
                got.sort();
                let got: Vec<u16> = got.into_iter().map(|(_, st)| st).collect();
                assert_eq!(got, want, "{ctx}: {text}");
                for x in v["responses"].as_array().unwrap() {
                    let code = x["body"]["error"]["code"].as_str().unwrap_or_default();
                    match x["status"].as_u64().unwrap() {
                        403 => assert_eq!(code, "Forbidden", "{ctx}: {x}"),
                        404 => assert_eq!(code, "ResourceNotFound", "{ctx}: {x}"),
                        _ => {}
                    }
                }
                want.iter().all(|st| *st >= 400)
            }
            _ => {
                let status = r.status().as_u16();
                let text = r.text().unwrap();
                assert_eq!(status, o.ok, "{ctx}: {text}");
                if class == Class::OtherTenant && o.kind == Kind::Read {
                    other_tenant_sees_only_its_own(s, auth, &text, f, &ctx);
                }
                false
            }
        };
        if class != Class::ReadWrite && (refused || class == Class::OtherTenant) && o.kind == Kind::Write {
            assert_eq!(snapshot(s, f), before, "{ctx}: a refused request changed the tenant's objects");
        }
    }
    if class != Class::ReadWrite {
        assert_eq!(snapshot(s, f), before, "{who}: the tenant's objects changed");
    }
}

/// A collection read by tenant B: B's own defaults, none of A's objects.
fn other_tenant_sees_only_its_own(s: &Server, auth: &Auth, text: &str, f: &Fixture, ctx: &str) {
    if ctx.contains("$count") {
        let own: Value = call(s, auth, "GET", CFG, None).json().unwrap();
        assert_eq!(text.trim(), own["value"].as_array().unwrap().len().to_string(), "{ctx}: B's count is B's");
        return;
    }
    let v: Value = serde_json::from_str(text).unwrap();
    let listed = ids(&v);
    for id in f.all_ids() {
        assert!(!listed.iter().any(|l| l == id), "{ctx}: tenant B sees A's {id}: {text}");
    }
    assert!(listed.iter().any(|l| l == &format!("{TENANT_B}_DefaultLimit")), "{ctx}: no B default: {text}");
    assert!(!listed.iter().any(|l| l.starts_with(TENANT)), "{ctx}: tenant B sees A's defaults: {text}");
}

// --- the matrix -------------------------------------------------------------------------

#[test]
fn a_missing_or_bad_token_is_401_on_every_operation() {
    let s = Server::start();
    let f = Fixture::new(&s);
    for (who, auth) in unauthenticated_callers() {
        run_matrix(&s, &f, who, &auth, Class::Unauthenticated);
    }
}

#[test]
fn tokens_within_the_leeway_and_every_graph_audience_are_accepted() {
    // The controls of the test above: the same hand-made tokens, each with one claim at
    // the edge of what is allowed, pass; so the refusals there are for the reason named.
    let s = Server::start();
    let t = now();
    let accepted = [
        ("the fixture-signed token itself", sign(fixture_keys(), &good_claims())),
        ("expired 60 s ago (within 5 minutes' skew)", with(|c| c.exp = t - 60)),
        ("valid in 60 s (within 5 minutes' skew)", with(|c| c.nbf = t + 60)),
        ("aud https://graph.microsoft.com/", with(|c| c.aud = "https://graph.microsoft.com/".into())),
        ("aud = Graph's app id", with(|c| c.aud = "00000003-0000-0000-c000-000000000000".into())),
    ];
    for (what, token) in accepted {
        let r = call(&s, &bearer(&token), "GET", CFG, None);
        assert_eq!(r.status(), 200, "{what}: {}", r.text().unwrap());
    }
    // The scheme is case-insensitive (RFC 6750 §2.1 via RFC 7235 §2.1).
    let r = call(&s, &Auth(Some(format!("bearer {}", s.token))), "GET", CFG, None);
    assert_eq!(r.status(), 200);
}

#[test]
fn callers_without_the_permission_are_403_and_change_nothing() {
    let s = Server::start();
    let f = Fixture::new(&s);
    let callers = [
        ("personal account (password grant)", user_token(&s, "pat@outlook.com", &[SC_RW], true), Class::Personal),
        ("personal account (CLI token)", user_token_cli(&s, "kim@hotmail.com", &[C_RW, SC_R], true), Class::Personal),
        ("app with User.Read.All only", app_token(&s, TENANT, &["User.Read.All"]), Class::NoPermission),
        (
            "user with User.Read only (CLI token)",
            user_token_cli(&s, "u0@contoso.com", &["User.Read"], false),
            Class::NoPermission,
        ),
        ("app with ServiceConfig.Read.All", app_token(&s, TENANT, &[SC_R]), Class::ReadOnly),
        ("app with Configuration.Read.All (CLI token)", app_token_cli(&s, TENANT, &[C_R]), Class::ReadOnly),
        ("user with ServiceConfig.Read.All", user_token(&s, "u1@contoso.com", &[SC_R], false), Class::ReadOnly),
        (
            "user with Configuration.Read.All (CLI token)",
            user_token_cli(&s, "u2@contoso.com", &[C_R], false),
            Class::ReadOnly,
        ),
    ];
    for (who, token, class) in &callers {
        run_matrix(&s, &f, who, &bearer(token), *class);
    }
}

#[test]
fn callers_with_a_read_write_permission_may_do_everything() {
    let s = Server::start();
    let callers = [
        ("app with ServiceConfig.ReadWrite.All", app_token(&s, TENANT, &[SC_RW])),
        ("app with Configuration.ReadWrite.All", app_token(&s, TENANT, &[C_RW])),
        ("app with Configuration.ReadWrite.All (CLI token)", app_token_cli(&s, TENANT, &[C_RW])),
        ("user with ServiceConfig.ReadWrite.All", user_token(&s, "w1@contoso.com", &[SC_RW], false)),
        ("user with Configuration.ReadWrite.All (CLI token)", user_token_cli(&s, "w2@contoso.com", &[C_RW], false)),
        ("user with a read and a write scope", user_token(&s, "w3@contoso.com", &[SC_R, C_RW], false)),
        ("the dev app (CLI token)", s.cli(&["token"]).trim().to_owned()),
    ];
    for (who, token) in &callers {
        let f = Fixture::new(&s);
        run_matrix(&s, &f, who, &bearer(token), Class::ReadWrite);
        // The writes did happen: the configurations are gone, the device moved.
        expect_error(s.get(&format!("{CFG}/{}", f.cfg)), 404, "ResourceNotFound");
        expect_error(s.get(&format!("{CFG}/{}", f.cfg2)), 404, "ResourceNotFound");
        assert_eq!(get_ok(&s, &format!("{DEVICES}/{}/deploymentProfile", f.device))["id"], f.profile2.as_str());
        assert_eq!(get_ok(&s, &format!("{APPLE}/{}/assignments", f.apple))["value"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn another_tenants_token_finds_nothing_of_this_tenant() {
    let s = Server::start();
    s.cli(&["tenant", "create", "--id", TENANT_B]);
    let f = Fixture::new(&s);
    let b_app = app_token(&s, TENANT_B, &[SC_RW]);
    let b_cli = app_token_cli(&s, TENANT_B, &[C_RW]);
    run_matrix(&s, &f, "tenant B's app", &bearer(&b_app), Class::OtherTenant);
    run_matrix(&s, &f, "tenant B's app (CLI token)", &bearer(&b_cli), Class::OtherTenant);

    // What B created is B's: in B's list, not in A's.
    let b = bearer(&b_app);
    let b_list: Value = call(&s, &b, "GET", CFG, None).json().unwrap();
    let a_list = get_ok(&s, CFG);
    let b_names: Vec<&str> =
        b_list["value"].as_array().unwrap().iter().filter_map(|c| c["displayName"].as_str()).collect();
    assert!(b_names.contains(&"auth-new") && b_names.contains(&"auth-new-v1"), "{b_list}");
    for id in ids(&b_list) {
        assert!(!ids(&a_list).contains(&id), "A sees B's {id}");
    }
    // Each tenant has its own defaults, under its own ids, invisible to the other.
    let a_defaults: Vec<String> = ids(&a_list).into_iter().filter(|i| i.starts_with(TENANT)).collect();
    let b_defaults: Vec<String> = ids(&b_list).into_iter().filter(|i| i.starts_with(TENANT_B)).collect();
    assert_eq!(a_defaults.len(), 5, "{a_list}");
    assert_eq!(b_defaults.len(), 5, "{b_list}");
    for (a_id, b_id) in a_defaults.iter().zip(&b_defaults) {
        assert_eq!(a_id.trim_start_matches(TENANT), b_id.trim_start_matches(TENANT_B));
        expect_error(s.get(&format!("{CFG}/{b_id}")), 404, "ResourceNotFound");
        expect_error(call(&s, &b, "GET", &format!("{CFG}/{a_id}"), None), 404, "ResourceNotFound");
        assert_eq!(call(&s, &b, "GET", &format!("{CFG}/{b_id}"), None).status(), 200);
    }
    // A change to B's default is not A's.
    let r = call(&s, &b, "PATCH", &format!("{CFG}/{TENANT_B}_DefaultLimit"), Some(&json!({"limit": 11})));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    assert_ne!(get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit"))["limit"], 11);
}

#[test]
fn a_batch_authorises_each_request_on_its_own() {
    let s = Server::start();
    let f = Fixture::new(&s);
    let ro = bearer(&app_token(&s, TENANT, &[C_R]));
    let before = snapshot(&s, &f);
    let cfg = &f.cfg;
    let body = json!({"requests": [
        {"id": "r1", "method": "GET", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{cfg}/assignments")},
        {"id": "w1", "method": "POST", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{cfg}/assign"),
         "headers": {"Content-Type": "application/json"}, "body": {"enrollmentConfigurationAssignments": []}},
        {"id": "w2", "method": "DELETE", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{cfg}")},
        {"id": "w3", "method": "POST", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{cfg}/setPriority"),
         "headers": {"Content-Type": "application/json"}, "body": {"priority": 2}},
        {"id": "r2", "method": "GET", "url": "/deviceManagement/deviceEnrollmentConfigurations/$count"},
        {"id": "d1", "method": "GET", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{cfg}"), "dependsOn": ["w2"]},
    ]});
    for version in ["beta", "v1.0"] {
        let r = call(&s, &ro, "POST", &format!("/{version}/$batch"), Some(&body));
        assert_eq!(r.status(), 200);
        let v: Value = r.json().unwrap();
        let got: Vec<(String, u64)> = v["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["id"].as_str().unwrap().to_owned(), x["status"].as_u64().unwrap()))
            .collect();
        let want: Vec<(String, u64)> = [("r1", 200), ("w1", 403), ("w2", 403), ("w3", 403), ("r2", 200), ("d1", 424)]
            .iter()
            .map(|(i, st)| ((*i).to_owned(), *st))
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(sorted, want_sorted, "{v}");
        assert_eq!(snapshot(&s, &f), before, "a refused sub-request changed state");
    }
    // Bad token: the whole batch is 401, nothing runs.
    let forged = bearer(&sign(foreign_keys(), &good_claims()));
    expect_401(call(&s, &forged, "POST", "/beta/$batch", Some(&body)), &forged, "forged $batch");
    assert_eq!(snapshot(&s, &f), before);
}

// --- the token endpoint -----------------------------------------------------------------

#[test]
fn token_endpoint_errors_follow_entra() {
    let s = Server::start();
    let (b_app, b_secret) = {
        s.cli(&["tenant", "create", "--id", TENANT_B]);
        create_app(&s, TENANT_B, &[SC_RW])
    };
    let graph = "https://graph.microsoft.com/.default";
    create_user(&s, TENANT, "eve@contoso.com", &[SC_RW], false);
    let cases: Vec<TokenCase> = vec![
        ("wrong secret", TENANT, cc(DEV_CLIENT_ID, "not-the-secret", graph), 401, "invalid_client", 7_000_215),
        (
            "unknown client",
            TENANT,
            cc("9d3c1b0a-0000-4000-8000-000000000001", DEV_CLIENT_SECRET, graph),
            400,
            "unauthorized_client",
            700_016,
        ),
        ("another tenant's app", TENANT, cc(&b_app, &b_secret, graph), 400, "unauthorized_client", 700_016),
        (
            "unknown tenant",
            "3f1e2d3c-0000-4000-8000-000000000002",
            cc(DEV_CLIENT_ID, DEV_CLIENT_SECRET, graph),
            400,
            "invalid_request",
            90_002,
        ),
        (
            "unsupported grant_type",
            TENANT,
            vec![("grant_type", "authorization_code"), ("client_id", DEV_CLIENT_ID), ("code", "x"), ("scope", graph)],
            400,
            "unsupported_grant_type",
            70_003,
        ),
        (
            "scope without /.default",
            TENANT,
            cc(
                DEV_CLIENT_ID,
                DEV_CLIENT_SECRET,
                "https://graph.microsoft.com/DeviceManagementServiceConfig.ReadWrite.All",
            ),
            400,
            "invalid_scope",
            1_002_012,
        ),
        (
            "another resource",
            TENANT,
            cc(DEV_CLIENT_ID, DEV_CLIENT_SECRET, "https://management.azure.com/.default"),
            400,
            "invalid_resource",
            500_011,
        ),
        (
            "no client_secret",
            TENANT,
            vec![("grant_type", "client_credentials"), ("client_id", DEV_CLIENT_ID), ("scope", graph)],
            400,
            "invalid_request",
            7_000_216,
        ),
        (
            "no grant_type",
            TENANT,
            vec![("client_id", DEV_CLIENT_ID), ("client_secret", DEV_CLIENT_SECRET), ("scope", graph)],
            400,
            "invalid_request",
            900_144,
        ),
        (
            "wrong password",
            TENANT,
            vec![
                ("grant_type", "password"),
                ("client_id", DEV_CLIENT_ID),
                ("username", "nobody@contoso.com"),
                ("password", "x"),
                ("scope", graph),
            ],
            400,
            "invalid_grant",
            50_126,
        ),
        (
            "a user's wrong password",
            TENANT,
            vec![
                ("grant_type", "password"),
                ("client_id", DEV_CLIENT_ID),
                ("username", "eve@contoso.com"),
                ("password", "not-Pa55-word!"),
                ("scope", graph),
            ],
            400,
            "invalid_grant",
            50_126,
        ),
    ];
    for (what, tenant, form, status, error, code) in cases {
        let r = http()
            .post(s.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .header("client-request-id", "7a1b2c3d-0000-4000-8000-00000000c0de")
            .form(&form)
            .send()
            .unwrap();
        let got = r.status().as_u16();
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let text = r.text().unwrap();
        assert_eq!(got, status, "{what}: {text}");
        assert!(ct.starts_with("application/json"), "{what}: content-type {ct}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"], error, "{what}: {text}");
        assert_eq!(v["error_codes"], json!([code]), "{what}: {text}");
        let description = v["error_description"].as_str().unwrap();
        assert!(description.starts_with(&format!("AADSTS{code}: ")), "{what}: {description}");
        assert_eq!(v["correlation_id"], "7a1b2c3d-0000-4000-8000-00000000c0de", "{what}: {text}");
        for secret in [DEV_CLIENT_SECRET, b_secret.as_str(), "not-the-secret"] {
            assert!(!text.contains(secret), "{what}: the answer repeats a secret: {text}");
        }
    }

    // The successes: Graph by URI or by application id; the token's audience follows.
    for (scope, aud) in [
        (graph, "https://graph.microsoft.com"),
        ("00000003-0000-0000-c000-000000000000/.default", "00000003-0000-0000-c000-000000000000"),
    ] {
        let r = token_request(&s, TENANT, &cc(DEV_CLIENT_ID, DEV_CLIENT_SECRET, scope));
        let status = r.status();
        let v: Value = r.json().unwrap();
        assert_eq!(status, 200, "{scope}: {v}");
        assert_eq!(v["token_type"], "Bearer");
        assert!(v["expires_in"].as_i64().unwrap() > 3000, "{v}");
        let token = v["access_token"].as_str().unwrap();
        assert_eq!(claims_of(token)["aud"], aud);
        assert_eq!(claims_of(token)["tid"], TENANT);
        assert_eq!(claims_of(token)["iss"], format!("https://sts.windows.net/{TENANT}/"));
        // The development app also manages groups (README: the dev app).
        assert_eq!(claims_of(token)["roles"], json!([SC_RW, "Group.ReadWrite.All"]));
        assert_eq!(call(&s, &bearer(token), "GET", CFG, None).status(), 200);
    }
    // B's app gets a token in B.
    let t = s.client_credentials_token(TENANT_B, &b_app, &b_secret);
    assert_eq!(claims_of(&t)["tid"], TENANT_B);
}

#[test]
fn token_endpoint_accepts_client_secret_basic() {
    // RFC 6749 §2.3.1 (servers MUST support HTTP Basic for clients with a password; Entra does),
    // and `token_endpoint_auth_methods_supported` says so. Authlib and Go's oauth2 send it.
    let s = Server::start();
    let d: Value =
        http().get(s.url(&format!("/{TENANT}/v2.0/.well-known/openid-configuration"))).send().unwrap().json().unwrap();
    assert!(d["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("client_secret_basic")));
    let r = http()
        .post(s.url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .basic_auth(DEV_CLIENT_ID, Some(DEV_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")])
        .send()
        .unwrap();
    let token = access_token(r);
    assert_eq!(call(&s, &bearer(&token), "GET", CFG, None).status(), 200);
    // A wrong secret that way is Entra's invalid_client.
    let r = http()
        .post(s.url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .basic_auth(DEV_CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error_codes"], json!([7_000_215]));
}

#[test]
fn token_endpoint_refuses_get_like_entra() {
    let s = Server::start();
    let r = http().get(s.url(&format!("/{TENANT}/oauth2/v2.0/token"))).send().unwrap();
    let status = r.status();
    let text = r.text().unwrap();
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert_eq!(v["error"], "invalid_request");
    assert_eq!(v["error_codes"], json!([900_561]));
}

#[test]
fn a_cached_token_is_refused_once_it_expires() {
    // The validator caches verified tokens; expiry must still be checked on every use.
    let s = Server::start();
    let t = now();
    // Valid (within the 300 s skew) for about 3 more seconds. Issued now: a token without
    // the tenant's incarnation must be issued after the tenant was made (issue 18 item 8).
    let token = bearer(&with(|c| (c.iat, c.nbf, c.exp) = (t, t - 900, t - 297)));
    assert_eq!(call(&s, &token, "GET", CFG, None).status(), 200, "inside the skew");
    while now() <= t + 4 {
        std::thread::sleep(Duration::from_millis(200));
    }
    expect_401(call(&s, &token, "GET", CFG, None), &token, "the same token after it expired");
}

/// A form for the token endpoint.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// What is sent (name, tenant in the path, form) and the answer wanted (status, `error`, AADSTS code).
type TokenCase<'a> = (&'a str, &'a str, Form<'a>, u16, &'a str, u32);

/// A client credentials form.
fn cc<'a>(id: &'a str, secret: &'a str, scope: &'a str) -> Form<'a> {
    vec![("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret), ("scope", scope)]
}

fn part_of(token: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

fn claims_of(token: &str) -> Value {
    part_of(token, 1)
}

fn header_of(token: &str) -> Value {
    part_of(token, 0)
}

#[test]
fn delegated_tokens_carry_scp_and_personal_accounts_are_marked() {
    let s = Server::start();
    let work = user_token(&s, "ada@contoso.com", &[SC_R, C_RW], false);
    let c = claims_of(&work);
    assert_eq!(c["scp"], format!("{SC_R} {C_RW}"));
    assert_eq!(c["upn"], "ada@contoso.com");
    assert!(c.get("roles").is_none(), "{c}");
    let personal = user_token_cli(&s, "bob@outlook.com", &[SC_RW], true);
    let c = claims_of(&personal);
    assert_eq!(c["idp"], "live.com", "{c}");
    assert!(c.get("upn").is_none(), "{c}");
    // A personal account is refused even with every permission, on reads too, and on $batch.
    let r = call(&s, &bearer(&personal), "GET", CFG, None);
    let body = expect_error(r, 403, "Forbidden");
    assert!(body["error"]["message"].as_str().unwrap().to_lowercase().contains("personal"), "{body}");
}

#[test]
fn discovery_document_and_jwks() {
    let s = Server::start();
    let r = http().get(s.url(&format!("/{TENANT}/v2.0/.well-known/openid-configuration"))).send().unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().unwrap();
    assert_eq!(d["token_endpoint"], s.url(&format!("/{TENANT}/oauth2/v2.0/token")), "{d}");
    assert_eq!(d["jwks_uri"], s.url(&format!("/{TENANT}/discovery/v2.0/keys")), "{d}");
    assert_eq!(d["issuer"], s.url(&format!("/{TENANT}/v2.0")), "{d}");
    assert_eq!(d["authorization_endpoint"], s.url(&format!("/{TENANT}/oauth2/v2.0/authorize")), "{d}");
    // The token endpoint it names works.
    let token = access_token(
        http()
            .post(d["token_endpoint"].as_str().unwrap())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEV_CLIENT_ID),
                ("client_secret", DEV_CLIENT_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .unwrap(),
    );
    // The JWKS lists the key that signed it, public parts only.
    let jwks: Value = http().get(d["jwks_uri"].as_str().unwrap()).send().unwrap().json().unwrap();
    let kid = header_of(&token)["kid"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&token)["alg"], "RS256");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("{kid} not in {jwks}"));
    assert_eq!(key["kty"], "RSA");
    assert!(key["n"].is_string() && key["e"].is_string(), "{key}");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(key.get(private).is_none(), "the JWKS publishes '{private}'");
    }
    // Instance discovery (msal, when not disabled) points at this server.
    let i: Value = http().get(s.url("/common/discovery/instance?api-version=1.1")).send().unwrap().json().unwrap();
    assert_eq!(i["tenant_discovery_endpoint"], s.url("/common/v2.0/.well-known/openid-configuration"), "{i}");
    let host = s.base.trim_start_matches("http://");
    assert_eq!(i["metadata"][0]["aliases"], json!([host]), "{i}");
}

#[test]
fn keys_rotate_while_the_server_runs() {
    let s = Server::start();
    let before = s.client_credentials_token(TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET);
    let old_kid = header_of(&before)["kid"].as_str().unwrap().to_owned();
    let out = s.cli(&["keys", "rotate"]);
    let new_kid = out.trim().rsplit(' ').next().unwrap().to_owned();
    assert_ne!(new_kid, old_kid, "{out}");
    // A token minted before the rotation still works.
    assert_eq!(call(&s, &bearer(&before), "GET", CFG, None).status(), 200);
    // A token minted after it by the CLI, with the new key, works on the running server.
    let after = s.cli(&["token"]).trim().to_owned();
    assert_eq!(header_of(&after)["kid"], new_kid.as_str());
    let r = call(&s, &bearer(&after), "GET", CFG, None);
    assert_eq!(r.status(), 200, "the running server did not pick up the rotated key: {}", r.text().unwrap());
    // And so do the old one and writes with either.
    assert_eq!(call(&s, &bearer(&before), "GET", CFG, None).status(), 200);
    assert_eq!(call(&s, &bearer(&after), "POST", CFG, Some(&limit("after rotation"))).status(), 201);
    // The server now signs with the new key and publishes both.
    let fresh = s.client_credentials_token(TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET);
    assert_eq!(header_of(&fresh)["kid"], new_kid.as_str());
    let jwks: Value = http().get(s.url(&format!("/{TENANT}/discovery/v2.0/keys"))).send().unwrap().json().unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()), "{jwks}");
}

// --- --auth off ----------------------------------------------------------------------------

#[test]
fn auth_off_serves_requests_without_a_token_in_the_default_tenant() {
    let s = Server::start_with(&["--auth", "off"]);
    assert!(s.token.is_empty());
    let r = call(&s, &Auth(None), "GET", CFG, None);
    assert_eq!(r.status(), 200);
    let list: Value = r.json().unwrap();
    let got = ids(&list);
    assert_eq!(got.len(), 5, "{list}");
    assert!(got.iter().all(|i| i.starts_with(TENANT)), "{list}");
    let r = call(&s, &Auth(None), "POST", CFG, Some(&limit("no token")));
    assert_eq!(r.status(), 201);
    // A valid token still picks its tenant.
    s.cli(&["tenant", "create", "--id", TENANT_B]);
    let (id, _) = create_app(&s, TENANT_B, &[SC_RW]);
    let b = s.cli(&["token", "--tenant", TENANT_B, "--app", &id]).trim().to_owned();
    let list: Value = call(&s, &bearer(&b), "GET", CFG, None).json().unwrap();
    assert!(ids(&list).iter().all(|i| i.starts_with(TENANT_B)), "{list}");
}

#[test]
fn auth_off_is_refused_unless_on_loopback() {
    let dir = std::env::temp_dir().join(format!("enrollgraph-auth-off-{}", std::process::id()));
    let mut child = Command::new(common::bin())
        .args(["serve", "--address", "0.0.0.0", "--port", "0", "--auth", "off", "--data-dir"])
        .arg(&dir)
        .arg("--signing-keys-file")
        .arg(common::keys_file())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.is_some(),
        "the server started on 0.0.0.0 with --auth off: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--auth off") && stderr.contains("loopback"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "it printed a listening banner");
}

// --- a new data dir's first key (thirteenth round of issue 17) ---------------------------

/// The `kid` in a JWT's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

/// The `kid`s the JWKS publishes.
fn published_kids(s: &Server) -> Vec<String> {
    let r = s.raw().get(s.url(&format!("/{TENANT}/discovery/v2.0/keys"))).send().unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_new_data_dir_answers_at_once_and_signs_only_with_the_key_it_stored() {
    // The server answers before its RSA key is made (`Identity::pending`); the harness's
    // first token request, sent right after the banner, waits for the key. The attack: a
    // token signed by a key that is not the stored one (or by an empty set) would be
    // refused after a restart, or the JWKS would not hold its kid.
    let mut s = Server::start_making_keys(&[]);
    let token = s.token.clone();
    let kid = kid_of(&token);
    assert_eq!(published_kids(&s), vec![kid.clone()], "the JWKS publishes the key that signed");
    let ok = s.get(CFG);
    assert_eq!(ok.status(), 200, "the token opens Graph: {}", ok.text().unwrap());
    // Several token requests at once on a second new server: each waits, all get one key.
    let t = Server::start_making_keys(&["--auth", "off"]);
    assert_eq!(t.get("/health").status(), 200);
    assert_eq!(t.get(CFG).status(), 200, "--auth off never waits for the key");
    let kids: Vec<String> = std::thread::scope(|scope| {
        let asks: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| kid_of(&t.client_credentials_token(TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET))))
            .collect();
        asks.into_iter().map(|a| a.join().unwrap()).collect()
    });
    assert!(kids.iter().all(|k| *k == kids[0]), "one key signs every token: {kids:?}");
    assert_eq!(published_kids(&t), vec![kids[0].clone()]);
    assert_ne!(kids[0], kid, "each data dir makes its own key");
    // The key was stored: after a restart the same key is published and the first token
    // still opens Graph (a key made but not stored would be replaced by a new one).
    s.kill_and_restart();
    assert_eq!(published_kids(&s), vec![kid]);
    let again = s.raw().get(s.url(CFG)).bearer_auth(&token).send().unwrap();
    assert_eq!(again.status(), 200, "the token of the first start after a restart");
}
