//! Issue 18, the secrets part, over HTTP on the real binary: the data dir is private
//! (item 4), the well-known development secret only on loopback (item 5), tokens die with
//! their tenant's incarnation (item 8), failed sign-ins are limited and restored hashes
//! capped (item 9), the token carries the stored app id (item 10), and tenant ids are GUIDs
//! or domain names, case-insensitive (item 15). Storage-backed ones run on PostgreSQL too
//! (`ENROLLGRAPH_TEST_BACKEND=postgres`).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use common::{BETA, DEV_CLIENT_ID, DEV_CLIENT_SECRET, Server, TENANT, Value, expect_error, json};
use reqwest::blocking::{Client, Response};

const KEY: &str = "egadm_secrets-test-admin-key";
const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";

fn start(extra: &[&str]) -> Server {
    let mut args = vec!["--admin-key", KEY];
    args.extend_from_slice(extra);
    Server::start_with(&args)
}

fn admin(s: &Server, method: &str, path: &str, body: Option<&Value>) -> Response {
    common::admin_call(s, KEY, method, path, body)
}

fn token_request(base: &str, tenant: &str, form: &[(&str, &str)]) -> Response {
    Client::new().post(format!("{base}/{tenant}/oauth2/v2.0/token")).form(form).send().unwrap()
}

fn client_credentials(base: &str, tenant: &str, client: &str, secret: &str) -> Response {
    token_request(
        base,
        tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
}

fn token_of(r: Response) -> String {
    assert_eq!(r.status(), 200);
    r.json::<Value>().unwrap()["access_token"].as_str().unwrap().to_owned()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn get(s: &Server, token: &str, path: &str) -> Response {
    s.raw().get(s.url(path)).bearer_auth(token).send().unwrap()
}

// --- item 4: the data dir -------------------------------------------------------------------

/// A server started by hand (the harness's waits for an http:// banner only), with its
/// banner lines up to the end of the admin key line.
struct Spawned {
    child: Child,
    banner: Vec<String>,
}

impl Spawned {
    fn start(data_dir: &Path, args: &[&str], umask: &str) -> Spawned {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(common::bin())
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .arg("--signing-keys-file")
            .arg(common::keys_file())
            .args(args)
            .env_remove("ENROLLGRAPH_DATABASE")
            .env_remove("ENROLLGRAPH_ADMIN_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = Vec::new();
        for _ in 0..30 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let done = line.trim_start().starts_with("admin key:");
            banner.push(line.trim_end().to_owned());
            if done {
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Spawned { child, banner }
    }

    /// The origin, with 127.0.0.1 for a wildcard address.
    fn base(&self) -> String {
        let first = self.banner.first().unwrap();
        let url = first.rsplit(' ').next().unwrap();
        url.replace("0.0.0.0", "127.0.0.1")
    }

    fn field(&self, name: &str) -> String {
        self.banner
            .iter()
            .find_map(|l| l.trim().strip_prefix(name).map(|r| r.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.banner))
    }

    /// Stops the server; its stderr.
    fn stop(mut self) -> String {
        use std::io::Read as _;
        let _ = self.child.kill();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Spawned {
    /// A failing test leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enrollgraph-secrets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn the_data_dir_is_private_under_umask_022_and_an_old_one_is_put_right() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp("modes");
    let files = ["enrollgraph.sqlite", "enrollgraph.sqlite-wal", "enrollgraph.sqlite-shm"];
    let tls = ["ca.pem", "server.pem", "server-key.pem"];
    let check = |dir: &Path| {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        assert_eq!(mode(&dir.join("tls")), 0o700);
        for f in files {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        for f in tls {
            assert_eq!(mode(&dir.join("tls").join(f)), 0o600, "tls/{f}");
        }
    };
    let s = Spawned::start(&dir, &["--tls"], "022");
    assert!(s.banner[0].starts_with("enrollgraph listening on https://"), "{:?}", s.banner);
    check(&dir);
    s.stop();
    // A data dir an earlier version left open is tightened at start, with a warning.
    for f in files.iter().map(|f| dir.join(f)).chain(tls.iter().map(|f| dir.join("tls").join(f))) {
        if f.exists() {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = Spawned::start(&dir, &["--tls"], "022");
    check(&dir);
    let err = s.stop();
    assert!(err.contains("was open to other users (mode 644); setting 600"), "{err}");
    assert!(err.contains("server-key.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// --- item 5: the development app off loopback -----------------------------------------------

#[test]
fn off_loopback_the_well_known_secret_is_refused_and_a_random_one_printed_once() {
    let dir = temp("devapp");
    // First on loopback: the well-known secret, as ever.
    let s = Spawned::start(&dir, &["--address", "127.0.0.1"], "077");
    assert_eq!(s.field("client secret:"), DEV_CLIENT_SECRET);
    token_of(client_credentials(&s.base(), TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET));
    s.stop();
    // On every interface: a random secret, printed once and said so; the well-known one is
    // refused (it was stored by the loopback start above).
    let s = Spawned::start(&dir, &["--address", "0.0.0.0"], "077");
    let shown = s.field("client secret:");
    let random = shown.split_whitespace().next().unwrap().to_owned();
    assert_ne!(random, DEV_CLIENT_SECRET);
    assert_eq!(random.len(), 40, "{shown}");
    assert!(shown.contains("the well-known development secret is refused off loopback"), "{shown}");
    let r = client_credentials(&s.base(), TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET);
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error_codes"], json!([7_000_215]));
    let token = token_of(client_credentials(&s.base(), TENANT, DEV_CLIENT_ID, &random));
    let r = Client::new().get(format!("{}{CFG}", s.base())).bearer_auth(&token).send().unwrap();
    assert_eq!(r.status(), 200);
    s.stop();
    // Again off loopback: not shown again, and still the same secret.
    let s = Spawned::start(&dir, &["--address", "0.0.0.0"], "077");
    let shown = s.field("client secret:");
    assert!(!shown.contains(&random) && shown.contains("shown when it was made"), "{shown}");
    token_of(client_credentials(&s.base(), TENANT, DEV_CLIENT_ID, &random));
    assert_eq!(client_credentials(&s.base(), TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET).status(), 401);
    s.stop();
    // Back on loopback, the well-known secret works again.
    let s = Spawned::start(&dir, &[], "077");
    assert_eq!(s.field("client secret:"), DEV_CLIENT_SECRET);
    token_of(client_credentials(&s.base(), TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET));
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

// --- item 8: tokens and the tenant's incarnation --------------------------------------------

#[test]
fn a_token_does_not_survive_its_tenant_being_deleted_and_created_again() {
    let s = start(&[]);
    let create = |s: &Server| {
        let r = admin(s, "POST", "/tenants", Some(&json!({"id": "reborn.example"})));
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        (v["clientId"].as_str().unwrap().to_owned(), v["clientSecret"].as_str().unwrap().to_owned())
    };
    let (client, secret) = create(&s);
    let old = token_of(client_credentials(&s.base, "reborn.example", &client, &secret));
    assert_eq!(get(&s, &old, CFG).status(), 200, "the token opens its tenant (and is cached)");
    assert_eq!(admin(&s, "DELETE", "/tenants/reborn.example", None).status(), 204);
    let (client2, secret2) = create(&s);
    // Same tenant id, same signing key, unexpired: still refused, as its tenant is gone.
    let e = expect_error(get(&s, &old, CFG), 401, "InvalidAuthenticationToken");
    assert_eq!(e["error"]["message"], "Access token validation failure. Invalid tenant.");
    let new = token_of(client_credentials(&s.base, "reborn.example", &client2, &secret2));
    assert_ne!(claims(&new)["xms_tinc"], claims(&old)["xms_tinc"]);
    assert_eq!(get(&s, &new, CFG).status(), 200);
    // A reset or a restore into the tenant keeps its incarnation: the token stays good.
    assert_eq!(admin(&s, "POST", "/tenants/reborn.example/reset", None).status(), 204);
    assert_eq!(get(&s, &new, CFG).status(), 200, "after a reset");
    let snapshot: Value = admin(&s, "GET", "/tenants/reborn.example/snapshot", None).json().unwrap();
    assert_eq!(admin(&s, "PUT", "/tenants/reborn.example/snapshot", Some(&snapshot)).status(), 204);
    assert_eq!(get(&s, &new, CFG).status(), 200, "after a restore");
}

#[test]
fn another_replica_refuses_a_token_of_an_earlier_incarnation() {
    // Two processes on one database (replicas on PostgreSQL; on SQLite the CLI on the data
    // dir): the one that did not delete the tenant has it cached, for a second at most.
    let s = start(&[]);
    let (client, secret) = {
        let v: Value = admin(&s, "POST", "/tenants", Some(&json!({"id": "replicated"}))).json().unwrap();
        (v["clientId"].as_str().unwrap().to_owned(), v["clientSecret"].as_str().unwrap().to_owned())
    };
    let old = token_of(client_credentials(&s.base, "replicated", &client, &secret));
    assert_eq!(get(&s, &old, CFG).status(), 200);
    s.cli(&["tenant", "delete", "--id", "replicated"]);
    s.cli(&["tenant", "create", "--id", "replicated"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    expect_error(get(&s, &old, CFG), 401, "InvalidAuthenticationToken");
}

// --- item 9: failed sign-ins and restored hashes --------------------------------------------

#[test]
fn failed_sign_ins_are_limited_per_app_as_entra_throttles() {
    let s = start(&[]);
    let v: Value = admin(&s, "POST", "/tenants", Some(&json!({"id": "guessed"}))).json().unwrap();
    let (client, secret) = (v["clientId"].as_str().unwrap().to_owned(), v["clientSecret"].as_str().unwrap().to_owned());
    for i in 0..20 {
        let r = client_credentials(&s.base, "guessed", &client, &format!("wrong-{i}"));
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    // The 21st: 429 with Retry-After (MSAL.NET "Client and server throttling"), and the
    // right secret too, until the window ends: a guess must not be told it was right.
    for s_try in ["wrong-21", secret.as_str()] {
        let r = client_credentials(&s.base, "guessed", &client, s_try);
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let v: Value = r.json().unwrap();
        assert_eq!(v["error_codes"], json!([50_196]));
    }
    // Another app of the same tenant is not locked out.
    token_of(client_credentials(&s.base, TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET));
    // A password grant of the locked app: invalid_grant AADSTS50196.
    let r = token_request(
        &s.base,
        "guessed",
        &[
            ("grant_type", "password"),
            ("client_id", &client),
            ("username", "nobody@guessed"),
            ("password", "x"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    );
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().unwrap();
    assert_eq!((v["error"].as_str(), v["error_codes"].clone()), (Some("invalid_grant"), json!([50_196])));
}

#[test]
fn failed_sign_ins_are_limited_per_peer_address() {
    let s = start(&[]);
    // Spread over apps, so only the peer's own limit (60) applies.
    let mut apps = Vec::new();
    for _ in 0..4 {
        let v: Value = admin(&s, "POST", &format!("/tenants/{TENANT}/apps"), Some(&json!({}))).json().unwrap();
        apps.push(v["clientId"].as_str().unwrap().to_owned());
    }
    for i in 0..60 {
        let r = client_credentials(&s.base, TENANT, &apps[i % 4], "wrong");
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = client_credentials(&s.base, TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET);
    assert_eq!(r.status(), 429, "the 61st failure of one peer locks the peer out");
}

#[test]
fn a_snapshot_with_hashes_beyond_the_cap_is_refused() {
    let s = start(&[]);
    let mut snapshot: Value = admin(&s, "GET", &format!("/tenants/{TENANT}/snapshot"), None).json().unwrap();
    let app = snapshot["entities"].as_array_mut().unwrap().iter_mut().find(|e| e["nav"] == "$apps").unwrap();
    let body = app["body"]["secretHashes"][0].as_str().unwrap().to_owned();
    // 10,000,000 rounds (issue 18 item 9): seconds of CPU per sign-in attempt.
    // Whatever count the stored hash has (the dev app's well-known secret has the cheap one).
    let at = body.find("i=").unwrap() + 2;
    let end = at + body[at..].find(',').unwrap();
    let heavy = format!("{}10000000{}", &body[..at], &body[end..]);
    assert_ne!(heavy, body);
    app["body"]["secretHashes"] = json!([heavy]);
    let r = admin(&s, "PUT", "/tenants/heavy/snapshot", Some(&snapshot));
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("more than 200000 rounds"), "{v}");
    assert_eq!(admin(&s, "GET", "/tenants/heavy/snapshot", None).status(), 404, "nothing was made");
    // At the cap it is taken.
    let at_cap = body.replacen("i=100000,", "i=200000,", 1);
    let app = snapshot["entities"].as_array_mut().unwrap().iter_mut().find(|e| e["nav"] == "$apps").unwrap();
    app["body"]["secretHashes"] = json!([at_cap]);
    assert_eq!(admin(&s, "PUT", "/tenants/heavy/snapshot", Some(&snapshot)).status(), 204);
}

// --- item 10: the stored app id ------------------------------------------------------------

#[test]
fn client_id_in_another_case_is_the_same_app_and_the_same_throttle_bucket() {
    let s = start(&["--throttling", "app-requests=3,window=60", "--manual-clock"]);
    let lower = token_of(client_credentials(&s.base, TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET));
    let upper = token_of(client_credentials(&s.base, TENANT, &DEV_CLIENT_ID.to_ascii_uppercase(), DEV_CLIENT_SECRET));
    assert_eq!(claims(&upper)["appid"], DEV_CLIENT_ID, "the stored id, in its stored case");
    assert_eq!(claims(&lower)["appid"], claims(&upper)["appid"]);
    for _ in 0..3 {
        assert_eq!(get(&s, &lower, CFG).status(), 200);
    }
    // The app's bucket is empty, whichever spelling the token was asked for with.
    expect_error(get(&s, &upper, CFG), 429, "TooManyRequests");
}

// --- item 15: tenant ids ---------------------------------------------------------------------

#[test]
fn tenant_ids_are_guids_or_domain_names_compared_case_insensitively() {
    let s = start(&[]);
    for bad in [".", "..", "common", "Organizations", "CONSUMERS", "a_b", "-a.com", "a..b", "a/b", "$system", ""] {
        let r = admin(&s, "POST", "/tenants", Some(&json!({"id": bad})));
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    let r = admin(&s, "POST", "/tenants", Some(&json!({"id": "Contoso.Example"})));
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    let (client, secret) = (v["clientId"].as_str().unwrap().to_owned(), v["clientSecret"].as_str().unwrap().to_owned());
    assert_eq!(admin(&s, "POST", "/tenants", Some(&json!({"id": "contoso.example"}))).status(), 409, "one tenant");
    let ids: Value = admin(&s, "GET", "/tenants", None).json().unwrap();
    assert!(ids["value"].as_array().unwrap().contains(&json!({"id": "contoso.example"})), "{ids}");
    // The token endpoint takes any case and issues for the canonical id.
    let token = token_of(client_credentials(&s.base, "CONTOSO.example", &client, &secret));
    assert_eq!(claims(&token)["tid"], "contoso.example");
    assert_eq!(get(&s, &token, &format!("{BETA}/deviceEnrollmentConfigurations")).status(), 200);
    // So do the CLI's directory commands.
    let out = s.cli(&["app", "create", "--tenant", "CONTOSO.EXAMPLE"]);
    let field = |name: &str| out.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_owned();
    let token =
        token_of(client_credentials(&s.base, "contoso.example", &field("client id:"), &field("client secret:")));
    assert_eq!(claims(&token)["tid"], "contoso.example");
    // Names that are no tenant's are "tenant not found" (AADSTS90002), not a lookup; Entra's
    // aliases name no tenant and are refused as Entra does, AADSTS50059 (issue 14).
    for (bad, code) in [("common", 50_059), ("organizations", 50_059), ("a_b", 90_002)] {
        let r = client_credentials(&s.base, bad, &client, &secret);
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().unwrap()["error_codes"], json!([code]), "{bad}");
    }
    // Discovery: ids and Entra's aliases are served (lower case); other names are not echoed.
    for (tenant, status) in [("Contoso.Example", 200), ("Organizations", 200), ("a_b", 400), ("x%2Fy", 400)] {
        let r = Client::new().get(s.url(&format!("/{tenant}/v2.0/.well-known/openid-configuration"))).send().unwrap();
        assert_eq!(r.status(), status, "{tenant}");
        let v: Value = r.json().unwrap();
        if status == 200 {
            let endpoint = v["token_endpoint"].as_str().unwrap();
            assert!(endpoint.contains(&format!("/{}/", tenant.to_ascii_lowercase())), "{endpoint}");
        } else {
            assert_eq!(v["error_codes"], json!([90_002]), "{tenant}");
        }
    }
}

#[test]
fn wrong_admin_keys_are_limited_for_the_admin_api_and_the_inspector_sign_in_alike() {
    let s = start(&[]);
    assert_eq!(admin(&s, "GET", "/tenants", None).status(), 200, "the right key opens the admin API");
    let http = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let sign_in = |key: &str| {
        http.post(s.url("/_enrollgraph/ui/signin"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", s.url(""))
            .body(format!("key={key}"))
            .send()
            .unwrap()
    };
    // One limit for both doors: 10 wrong keys at each (20 for one peer in a minute).
    for i in 0..10 {
        assert_eq!(common::admin_call(&s, "wrong-admin-key-0000", "GET", "/tenants", None).status(), 403, "{i}");
        assert_eq!(sign_in("wrong-admin-key-0000").status(), 403, "{i}");
    }
    // The 21st guess is refused before the key is checked: the right key too, so an
    // answer cannot tell a right guess from a wrong one.
    let r = admin(&s, "GET", "/tenants", None);
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests", "{body}");
    let page = sign_in(KEY);
    assert_eq!(page.status(), 429, "the inspector's sign-in is under the same limit");
    assert!(page.headers().contains_key("retry-after"));
    assert!(page.headers().get("set-cookie").is_none(), "no session while throttled");
    // Graph requests are not affected.
    let token = token_of(client_credentials(&s.base, TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET));
    assert_eq!(get(&s, &token, CFG).status(), 200);
}
