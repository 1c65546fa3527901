//! Issue 18 (hardening), the query and path items: a read-only caller cannot make the server
//! build an unbounded answer with `$expand` (item 1), permissions are decided on the path the
//! service resolves (item 2), long `in` lists work and are bounded (item 7), continuation
//! tokens are opaque and scoped to their tenant (item 12). Each runs on both backends.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

const PROFILES: &str = "/beta/deviceManagement/windowsAutopilotDeploymentProfiles";
const DEVICES: &str = "/beta/deviceManagement/windowsAutopilotDeviceIdentities";
const READ_ONLY: &str = "DeviceManagementServiceConfig.Read.All";
const INTUNE_WRITE: &str = "DeviceManagementServiceConfig.ReadWrite.All";

/// A client without the harness's default token: each request names its own.
fn http() -> &'static reqwest::blocking::Client {
    static C: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    C.get_or_init(|| reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap())
}

fn call(s: &Server, token: &str, method: &str, path: &str, body: Option<&Value>) -> Response {
    let mut rb =
        http().request(method.parse().unwrap(), s.url(path)).header("authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b.to_string());
    }
    rb.send().unwrap()
}

/// A client-credentials token of a new app of `tenant` with `roles` (`enrollgraph app create`).
fn app_token(s: &Server, tenant: &str, roles: &[&str]) -> String {
    let client_id = uuid::Uuid::new_v4().to_string();
    let mut args = vec!["app", "create", "--tenant", tenant, "--client-id", &client_id];
    for r in roles {
        args.extend(["--role", r]);
    }
    let out = s.cli(&args);
    let secret = out.lines().find_map(|l| l.strip_prefix("client secret:")).unwrap().trim().to_owned();
    s.client_credentials_token(tenant, &client_id, &secret)
}

/// A profile with `n` devices assigned to it; returns (profile id, device ids).
fn profile_with_devices(s: &Server, n: usize, name_len: usize) -> (String, Vec<String>) {
    let profile = s.create(
        PROFILES,
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "kiosk"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let devices: Vec<String> = (0..n)
        .map(|i| {
            let body = json!({"serialNumber": format!("SN-{i}"), "displayName": "d".repeat(name_len)});
            s.create(DEVICES, &body)["id"].as_str().unwrap().to_owned()
        })
        .collect();
    expect_empty_200(s.post(&format!("{PROFILES}/{profile}/assign"), &json!({"deviceIds": devices})));
    (profile, devices)
}

/// `assignedDevices($expand=deploymentProfile($expand=assignedDevices(...)))`, `levels` deep.
fn cyclic_expand(levels: usize) -> String {
    let mut text = String::new();
    for i in 0..levels {
        text.push_str(if i % 2 == 0 { "assignedDevices" } else { "deploymentProfile" });
        if i + 1 < levels {
            text.push_str("($expand=");
        }
    }
    text.push_str(&")".repeat(levels - 1));
    text
}

// --- item 1: $expand amplification ---------------------------------------------------------

#[test]
fn cyclic_expand_is_refused_quickly_and_one_level_still_expands() {
    let s = Server::start();
    let (profile, devices) = profile_with_devices(&s, 10, 8);
    let reader = app_token(&s, TENANT, &[READ_ONLY]);
    // The attack: six levels over 10 devices was a 1 GB answer.
    let started = Instant::now();
    let r = call(&s, &reader, "GET", &format!("{PROFILES}/{profile}?$expand={}", cyclic_expand(6)), None);
    let body = expect_error(r, 400, "BadRequest");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(
        body["error"]["message"],
        "The request includes a $expand path which is too deep. The maximum depth allowed is 1."
    );
    // On the list too, and with `expand` without `$` (beta), and on v1.0.
    for path in [
        format!("{PROFILES}?$expand={}", cyclic_expand(2)),
        format!("{PROFILES}?expand={}", cyclic_expand(3)),
        format!("/v1.0/deviceManagement/windowsAutopilotDeploymentProfiles?$expand={}", cyclic_expand(2)),
        format!("{DEVICES}?$expand=deploymentProfile($select=id;$expand=assignments)"),
    ] {
        expect_error(call(&s, &reader, "GET", &path, None), 400, "BadRequest");
    }
    // Nesting far past any recursion limit is refused by the parser, not by the stack.
    let deep = cyclic_expand(1_000);
    let r = http().get(s.url(PROFILES)).query(&[("$expand", deep.as_str())]).bearer_auth(&reader).send().unwrap();
    expect_error(r, 400, "BadRequest");
    // One level is what Graph serves, and still works.
    let one = get_ok(&s, &format!("{PROFILES}/{profile}?$expand=assignedDevices($select=id)"));
    let mut got: Vec<String> =
        one["assignedDevices"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    let mut want = devices.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let dev = get_ok(&s, &format!("{DEVICES}/{}?$expand=deploymentProfile($select=id)", devices[0]));
    assert_eq!(dev["deploymentProfile"]["id"], json!(profile));
}

#[test]
fn no_answer_is_built_past_the_bound() {
    // A small bound stands for the default 64 MiB: 30 devices of ~1 KiB each are ~30 KiB.
    let s = Server::start_with(&["--max-answer-bytes", "16384"]);
    let (profile, _) = profile_with_devices(&s, 30, 1000);
    let reader = app_token(&s, TENANT, &[READ_ONLY]);
    for path in [
        format!("{PROFILES}/{profile}?$expand=assignedDevices"),
        format!("{PROFILES}?$expand=assignedDevices"),
        DEVICES.to_owned(),
        format!("{DEVICES}?$orderby=serialNumber"),
        format!("{DEVICES}?$filter=startswith(displayName,'d')"),
    ] {
        let body = expect_error(call(&s, &reader, "GET", &path, None), 400, "BadRequest");
        assert_eq!(
            body["error"]["message"],
            "The response would be larger than the 16384 bytes this service answers at once; request fewer items with $top, fewer properties with $select, or fewer $expand navigations.",
            "{path}"
        );
    }
    // The answers of one `$batch` share the bound: lists that fit alone, not all together.
    let one = s.get(&format!("{DEVICES}?$top=3")).text().unwrap().len();
    assert!(one > 16384 / 3 && one < 16384 / 2, "{one}");
    let item = |id: &str, query: &str| json!({"id": id, "method": "GET", "url": format!("{DEVICES}?{query}")});
    let batch = json!({"requests": [item("1", "$top=3"), item("2", "$top=3"), item("3", "$top=3"), item("4", "$top=1&$select=id")]});
    let r = call(&s, &reader, "POST", "/beta/$batch", Some(&batch));
    assert_eq!(r.status(), 200);
    let out: Value = r.json().unwrap();
    let statuses: Vec<&Value> = out["responses"].as_array().unwrap().iter().map(|x| &x["status"]).collect();
    assert_eq!(statuses, [&json!(200), &json!(200), &json!(400), &json!(200)], "{out:.300}");
    assert_eq!(out["responses"][2]["body"]["error"]["code"], "BadRequest");
    // Less fits.
    let some = get_ok(&s, &format!("{PROFILES}/{profile}?$expand=assignedDevices($select=id)"));
    assert_eq!(some["assignedDevices"].as_array().unwrap().len(), 30);
    assert_eq!(get_ok(&s, &format!("{DEVICES}?$top=5"))["value"].as_array().unwrap().len(), 5);
}

// --- item 2: permissions on the canonical path ---------------------------------------------

#[test]
fn encoded_spellings_of_groups_need_the_group_permissions() {
    let s = Server::start();
    // An app with every Intune permission and no Group.* one.
    let intune = app_token(&s, TENANT, &[INTUNE_WRITE]);
    let group = s.create(
        "/beta/groups",
        &json!({"displayName": "g", "mailEnabled": false, "securityEnabled": true, "mailNickname": "g"}),
    );
    let gid = group["id"].as_str().unwrap();
    let forbidden = |r: Response, what: &str| {
        let body = expect_error(r, 403, "Forbidden");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains("Group.ReadWrite.All"), "{what}: {m}");
    };
    let body = json!({"displayName": "mine", "mailEnabled": false, "securityEnabled": true, "mailNickname": "m"});
    for groups in ["gr%6Fups", "%67roups", "%67%72%6F%75%70%73", "GROUPS", "Gr%6fups"] {
        for prefix in ["/beta/", "/beta//", "/v1.0/"] {
            let list = format!("{prefix}{groups}");
            forbidden(call(&s, &intune, "GET", &list, None), &list);
            forbidden(call(&s, &intune, "POST", &list, Some(&body)), &list);
            let one = format!("{prefix}{groups}/{gid}");
            forbidden(call(&s, &intune, "GET", &one, None), &one);
            forbidden(call(&s, &intune, "PATCH", &one, Some(&json!({"displayName": "x"}))), &one);
            forbidden(call(&s, &intune, "DELETE", &one, None), &one);
            let keyed = format!("{prefix}{groups}('{gid}')");
            forbidden(call(&s, &intune, "DELETE", &keyed, None), &keyed);
        }
    }
    // The same requests inside `$batch`: each item is refused on its own, nothing changes.
    let requests: Vec<Value> = ["/%67roups", "gr%6Fups", "/beta/gr%6Fups", "https://graph.microsoft.com/beta/%67roups"]
        .iter()
        .enumerate()
        .flat_map(|(i, g)| {
            [
                json!({"id": format!("l{i}"), "method": "GET", "url": g}),
                json!({"id": format!("c{i}"), "method": "POST", "url": g, "body": body, "headers": {"Content-Type": "application/json"}}),
                json!({"id": format!("u{i}"), "method": "PATCH", "url": format!("{g}/{gid}"), "body": {"displayName": "x"}, "headers": {"Content-Type": "application/json"}}),
                json!({"id": format!("d{i}"), "method": "DELETE", "url": format!("{g}/{gid}")}),
            ]
        })
        .collect();
    assert_eq!(requests.len(), 16);
    let r = call(&s, &intune, "POST", "/beta/$batch", Some(&json!({"requests": requests})));
    assert_eq!(r.status(), 200);
    let out: Value = r.json().unwrap();
    let statuses: Vec<(String, u64)> = out["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["id"].as_str().unwrap().to_owned(), x["status"].as_u64().unwrap()))
        .collect();
    assert!(statuses.iter().all(|(_, st)| *st == 403), "{statuses:?}");
    assert_eq!(statuses.len(), 16);
    // Nothing was created, changed or deleted.
    let all = get_ok(&s, "/beta/groups");
    assert_eq!(ids(&all), vec![gid.to_owned()]);
    assert_eq!(all["value"][0]["displayName"], "g");
    // The Intune resources themselves, encoded, still take the Intune permissions.
    let r = call(&s, &intune, "GET", "/beta/%64eviceManagement/deviceEnrollmentConfigurations", None);
    assert_eq!(r.status(), 200);
    // And an app with the group permission may use the encoded spelling.
    let grouper = app_token(&s, TENANT, &["Group.ReadWrite.All"]);
    let r = call(&s, &grouper, "GET", "/beta/gr%6Fups", None);
    assert_eq!(r.status(), 200);
    let r = call(&s, &grouper, "GET", "/beta/%64eviceManagement/deviceEnrollmentConfigurations", None);
    assert_eq!(r.status(), 403);
}

// --- item 7: long `in` lists ------------------------------------------------------------

#[test]
fn in_lists_up_to_the_bound_work_and_longer_are_refused() {
    let s = Server::start();
    let (_, devices) = profile_with_devices(&s, 3, 4);
    let list_of = |n: usize, hit: &[String]| {
        let mut values: Vec<String> = (0..n - hit.len()).map(|i| format!("'missing-{i}'")).collect();
        values.extend(hit.iter().map(|d| format!("'{d}'")));
        values.join(",")
    };
    // 999 values were a 500 (SQLite's expression depth); Graph's own bound is URL length.
    let filter = format!("id in ({})", list_of(999, &devices[1..]));
    let r = s.raw().get(s.url(DEVICES)).query(&[("$filter", filter.as_str()), ("$select", "id")]).send().unwrap();
    assert_eq!(r.status(), 200);
    let mut got = ids(&r.json().unwrap());
    got.sort();
    let mut want = devices[1..].to_vec();
    want.sort();
    assert_eq!(got, want);
    // Negated, with null, and counted.
    let filter = format!("not (id in ({})) and serialNumber in ('SN-0', null)", list_of(1000, &devices[1..]));
    let r = s.raw().get(s.url(&format!("{DEVICES}/$count"))).query(&[("$filter", filter.as_str())]).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "1");
    // 1,001 values are a 400 naming the bound.
    let filter = format!("id in ({})", list_of(1001, &[]));
    let r = s.raw().get(s.url(DEVICES)).query(&[("$filter", filter.as_str())]).send().unwrap();
    let body = expect_error(r, 400, "BadRequest");
    assert!(body["error"]["message"].as_str().unwrap().contains("more than the 1000 values allowed"), "{body}");
}

// --- item 16: a storage outage is 503 + Retry-After, not 500 ----------------------------

/// A `503 ServiceUnavailable` with `Retry-After: 2`, as Graph answers a service briefly out
/// of reach (the SDKs' retry handlers retry it).
fn expect_unavailable(r: Response, what: &str) {
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = expect_error(r, 503, "ServiceUnavailable");
    assert_eq!(retry.as_deref(), Some("2"), "{what}: {body}");
    assert_eq!(
        body["error"]["message"],
        "The service is temporarily unavailable. Retry the request after the delay in Retry-After.",
        "{what}"
    );
}

/// The same request in a `$batch`: its item is the 503, with `Retry-After` in its headers.
fn batch_item_unavailable(s: &Server, request: &Value) {
    let r = s.post("/beta/$batch", &json!({"requests": [request]}));
    assert_eq!(r.status(), 200);
    let out: Value = r.json().unwrap();
    let item = &out["responses"][0];
    assert_eq!(item["status"], 503, "{out}");
    assert_eq!(item["body"]["error"]["code"], "ServiceUnavailable", "{out}");
    let retry = item["headers"].as_object().unwrap().iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after"));
    assert_eq!(retry.map(|(_, v)| v.clone()), Some(json!("2")), "{out}");
}

#[test]
fn a_sqlite_database_locked_past_the_busy_timeout_is_503_with_retry_after() {
    // SQLite whatever the suite's backend: this is the SQLite half of the test.
    let s = Server::start_on(None, &[]);
    let first = s.create(DEVICES, &json!({"serialNumber": "SN-1"}))["id"].as_str().unwrap().to_owned();
    // Another process holds the write lock for 8 s, past the server's 5 s busy timeout.
    let db = s.data_dir.join("enrollgraph.sqlite");
    let script = "import sqlite3, sys, time\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
                  c.execute('BEGIN EXCLUSIVE')\n\
                  print('locked', flush=True)\n\
                  time.sleep(8)\n\
                  c.execute('ROLLBACK')\n";
    let mut holder = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let started = Instant::now();
    expect_unavailable(s.post(DEVICES, &json!({"serialNumber": "SN-2"})), "POST");
    assert!(started.elapsed() >= Duration::from_secs(4), "{:?}", started.elapsed());
    // Reads go on meanwhile (WAL): only the writes wait.
    assert_eq!(ids(&get_ok(&s, DEVICES)), vec![first.clone()]);
    assert!(holder.wait().unwrap().success());
    // The lock gone, the same write succeeds: nothing of the refused one was kept.
    s.create(DEVICES, &json!({"serialNumber": "SN-2"}));
    assert_eq!(get_ok(&s, DEVICES)["value"].as_array().unwrap().len(), 2);
}

/// Stops a cluster that a test restarted (the harness's watchdog knows only the first).
struct StopAtEnd<'a>(&'a enrollgraph_testpg::Cluster);

impl Drop for StopAtEnd<'_> {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

#[test]
fn a_postgresql_database_down_is_503_with_retry_after_and_comes_back() {
    // The PostgreSQL half, on the PostgreSQL pass (rulings.md 11), on a cluster of its own:
    // the suite's shared cluster keeps serving the other tests.
    if !enrollgraph_testpg::requested() {
        return;
    }
    let cluster = enrollgraph_testpg::Cluster::start(false).unwrap();
    let _stop = StopAtEnd(&cluster);
    let s = Server::start_on(Some(cluster.create_database()), &[]);
    let first = s.create(DEVICES, &json!({"serialNumber": "SN-1"}))["id"].as_str().unwrap().to_owned();
    // A token of a tenant this server has not seen yet (minted by the CLI, not the server):
    // during the outage its tenant cannot be looked up, which is a 503, not a 401.
    s.cli(&["tenant", "create", "--id", TENANT_B]);
    let client_id = uuid::Uuid::new_v4().to_string();
    s.cli(&["app", "create", "--tenant", TENANT_B, "--client-id", &client_id, "--role", READ_ONLY]);
    let unseen = s.cli(&["token", "--tenant", TENANT_B, "--app", &client_id]).trim().to_owned();
    cluster.stop().unwrap();
    expect_unavailable(call(&s, &unseen, "GET", DEVICES, None), "GET, tenant not seen");
    expect_unavailable(s.get(DEVICES), "GET list");
    expect_unavailable(s.get(&format!("{DEVICES}/{first}")), "GET one");
    expect_unavailable(s.post(DEVICES, &json!({"serialNumber": "SN-2"})), "POST");
    expect_unavailable(s.patch(&format!("{DEVICES}/{first}"), &json!({"groupTag": "x"})), "PATCH");
    expect_unavailable(s.delete(&format!("{DEVICES}/{first}")), "DELETE");
    batch_item_unavailable(
        &s,
        &json!({"id": "1", "method": "GET", "url": "/deviceManagement/windowsAutopilotDeviceIdentities"}),
    );
    // Back up: the server reconnects by itself, and nothing refused was half-done.
    cluster.start_again().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.get(DEVICES);
        if r.status() == 200 {
            assert_eq!(ids(&r.json().unwrap()), vec![first.clone()]);
            break;
        }
        assert!(Instant::now() < deadline, "not back after 20 s: {}", r.status());
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = get_ok(&s, &format!("{DEVICES}/{first}"));
    assert_eq!(got["groupTag"], Value::Null);
    s.create(DEVICES, &json!({"serialNumber": "SN-2"}));
    assert_eq!(get_ok(&s, DEVICES)["value"].as_array().unwrap().len(), 2);
    assert_eq!(call(&s, &unseen, "GET", DEVICES, None).status(), 200);
}

// --- item 12: sealed, per-tenant continuation tokens ------------------------------------

/// A second tenant.
const TENANT_B: &str = "0b6f3c2e-9d4a-4e7b-8c1f-2a5d6e7f8091";

/// The `$skiptoken` of a next link, and the link with its origin cut off.
fn skiptoken_of(page: &Value) -> (String, String) {
    let link = page["@odata.nextLink"].as_str().unwrap_or_else(|| panic!("no nextLink: {page}"));
    let token = link.split("$skiptoken=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let path = link.split_once("://").unwrap().1.split_once('/').unwrap().1;
    (token, format!("/{path}"))
}

fn devices(s: &Server, n: usize, prefix: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let body = json!({"serialNumber": format!("{prefix}-{i}")});
            s.create(DEVICES, &body)["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn skiptokens_are_sealed_and_scoped_to_their_tenant() {
    let s = Server::start_with(&["--page-size", "2"]);
    let mine = devices(&s, 5, "A");
    s.cli(&["tenant", "create", "--id", TENANT_B]);
    let b = app_token(&s, TENANT_B, &[INTUNE_WRITE]);
    for i in 0..5 {
        let r = call(&s, &b, "POST", DEVICES, Some(&json!({"serialNumber": format!("B-{i}")})));
        assert_eq!(r.status(), 201);
    }
    // Each tenant pages through its own rows, as before.
    assert_eq!(ids(&json!({"value": list_all(&s, DEVICES)})), mine);
    for (query, next_query) in [("", ""), ("?$orderby=serialNumber desc", "$orderby")] {
        let page = get_ok(&s, &format!("{DEVICES}{query}"));
        let (token, next) = skiptoken_of(&page);
        assert!(next.contains(next_query), "{next}");
        assert_eq!(get_ok(&s, &next)["value"].as_array().unwrap().len(), 2);
        // Opaque: neither the position nor the row sequence shows through.
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &token).unwrap();
        assert!(bytes.len() >= 12 + 16 + 2, "{token}");
        let plain = bytes.first().is_some_and(|b| b"aok".contains(b))
            && bytes[1..].iter().all(|b| b.is_ascii_digit() || *b == b'.');
        assert!(!plain, "{token}");
        // The same page twice: two different tokens (a fresh nonce each), both valid.
        let (again, _) = skiptoken_of(&get_ok(&s, &format!("{DEVICES}{query}")));
        assert_ne!(token, again);
        // Carried to another tenant: a 400, as a token Graph did not issue.
        let body = expect_error(call(&s, &b, "GET", &next, None), 400, "BadRequest");
        assert_eq!(body["error"]["message"], format!("The skip token '{token}' is not valid."));
        // Altered anywhere: a 400.
        for at in [0, token.len() / 2, token.len() - 1] {
            let mut chars: Vec<char> = token.chars().collect();
            chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
            let forged: String = chars.into_iter().collect();
            let path = next.replace(&token, &forged);
            expect_error(s.get(&path), 400, "BadRequest");
        }
    }
    // The unsealed form of earlier versions (base64 of "a<seq>") is refused.
    for old in ["a1", "a999999", "o2", "k5.2"] {
        let text = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, old);
        let body = expect_error(s.get(&format!("{DEVICES}?$skiptoken={text}")), 400, "BadRequest");
        assert_eq!(body["error"]["message"], format!("The skip token '{text}' is not valid."));
    }
}

#[test]
fn a_skiptoken_from_one_replica_is_accepted_by_another() {
    // On the PostgreSQL pass (rulings.md 11): replicas share a PostgreSQL database.
    if !enrollgraph_testpg::requested() {
        return;
    }
    let cluster = enrollgraph_testpg::cluster().unwrap();
    let db = cluster.create_database();
    let one = Server::start_on(Some(db.clone()), &["--page-size", "2"]);
    let two = Server::start_on(Some(db), &["--page-size", "2"]);
    let made = devices(&one, 5, "R");
    let mut seen = ids(&get_ok(&one, DEVICES));
    let (_, mut next) = skiptoken_of(&get_ok(&one, DEVICES));
    // Every next page from the other replica than the one before.
    for server in [&two, &one, &two].iter().cycle() {
        let page = get_ok(server, &next);
        seen.extend(ids(&page));
        if page.get("@odata.nextLink").is_none() {
            break;
        }
        next = skiptoken_of(&page).1;
    }
    assert_eq!(seen, made);
}
