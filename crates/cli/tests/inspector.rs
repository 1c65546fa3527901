//! The inspector (issue 15): its sign-in and its guards over HTTP (no cookie, a forged or
//! signed-out cookie, the admin key in a query string, cross-site POSTs, asset names, the
//! CSP), and its pages in Debian's `chromium`, headless, driven over the DevTools protocol
//! (`headless_chrome` without its fetcher: never a downloaded browser). The browser tests
//! write a screenshot of each page to `target/inspector-screenshots/` for a reviewer, and
//! fail on any console error.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BETA, Server, TENANT, Value, json};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions, Tab};
use reqwest::blocking::{Client, Response};

const KEY: &str = "egadm_inspector-test-key";
const UI: &str = "/_enrollgraph/ui";

fn start() -> Server {
    Server::start_with(&["--admin-key", KEY, "--journal", "on"])
}

/// A client with no token, no cookie jar and no redirects followed.
fn bare() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(30)).build().unwrap()
}

fn origin(s: &Server) -> String {
    s.url("")
}

/// Signs in with `key`; the response (not followed).
fn sign_in(s: &Server, key: &str, with_origin: Option<&str>) -> Response {
    let mut rb = bare()
        .post(s.url(&format!("{UI}/signin")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", form_urlencoded_byte(key)));
    if let Some(o) = with_origin {
        rb = rb.header("origin", o);
    }
    rb.send().unwrap()
}

fn form_urlencoded_byte(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A signed-in session's cookie (`name=value`).
fn session(s: &Server) -> String {
    let r = sign_in(s, KEY, Some(&origin(s)));
    assert_eq!(r.status(), 303);
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

fn get_with(s: &Server, path: &str, cookie: Option<&str>) -> Response {
    let mut rb = bare().get(s.url(path));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    rb.send().unwrap()
}

fn admin(s: &Server, method: &str, path: &str, body: Option<&Value>) -> Response {
    let mut rb = bare().request(method.parse().unwrap(), s.url(&format!("/_enrollgraph{path}"))).bearer_auth(KEY);
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b.to_string());
    }
    rb.send().unwrap()
}

// --- the guards, over HTTP ------------------------------------------------------------------

#[test]
fn no_page_or_data_is_reachable_without_signing_in_and_the_key_in_a_query_string_is_not_a_key() {
    let s = start();
    for path in [format!("{UI}/"), format!("{UI}/?key={KEY}"), format!("{UI}/journal")] {
        let r = get_with(&s, &path, None);
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], format!("{UI}/signin"), "{path}");
    }
    for path in [
        format!("{UI}/api/tenants"),
        format!("{UI}/api/tenants?key={KEY}"),
        format!("{UI}/api/journal"),
        format!("{UI}/api/live"),
        format!("{UI}/api/tenants/{TENANT}/snapshot"),
        format!("{UI}/assets/app.js"),
    ] {
        let r = get_with(&s, &path, None);
        assert_eq!(r.status(), 401, "{path}");
        let v: Value = r.json().unwrap();
        assert_eq!(v["error"]["code"], "Unauthorized", "{path}");
    }
    // The admin API itself takes the key only from the Authorization header.
    let r = get_with(&s, &format!("/_enrollgraph/tenants?key={KEY}"), None);
    assert_eq!(r.status(), 401);
    // A forged cookie opens nothing.
    for forged in ["enrollgraph_ui=forged", &format!("enrollgraph_ui={KEY}"), "enrollgraph_ui="] {
        let r = get_with(&s, &format!("{UI}/api/tenants"), Some(forged));
        assert_eq!(r.status(), 401, "{forged}");
    }
    // The sign-in page and its style are public, and hold nothing of the server's.
    let r = get_with(&s, &format!("{UI}/signin"), None);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(get_with(&s, &format!("{UI}/assets/signin.css"), None).status(), 200);
}

#[test]
fn signing_in_sets_a_strict_http_only_session_cookie_that_is_not_the_key() {
    let s = start();
    // A wrong key: 403, no cookie.
    let r = sign_in(&s, "egadm_wrong", Some(&origin(&s)));
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().unwrap().contains("The admin key is wrong."));
    // The right key from another site's page (login CSRF), or with no Origin: 403.
    for o in [Some("https://evil.example"), None] {
        let r = sign_in(&s, KEY, o);
        assert_eq!(r.status(), 403, "{o:?}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    let r = sign_in(&s, KEY, Some(&origin(&s)));
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("{UI}/"));
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let attrs: Vec<&str> = set.split("; ").collect();
    let value = attrs[0].strip_prefix("enrollgraph_ui=").unwrap();
    assert!(value.len() >= 64, "{set}");
    assert!(!set.contains(KEY) && !set.contains("inspector-test-key"), "{set}");
    assert_eq!(&attrs[1..], ["Path=/_enrollgraph/ui", "HttpOnly", "SameSite=Strict", "Max-Age=28800"], "{set}");
    let cookie = attrs[0];
    let r = get_with(&s, &format!("{UI}/api/tenants"), Some(cookie));
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["value"][0]["id"], TENANT);
    assert_eq!(get_with(&s, &format!("{UI}/"), Some(cookie)).status(), 200);
    // Signing out ends the session (a cross-site sign-out is refused first).
    let out = |o: Option<&str>| {
        let mut rb = bare().post(s.url(&format!("{UI}/signout"))).header("cookie", cookie);
        if let Some(o) = o {
            rb = rb.header("origin", o);
        }
        rb.send().unwrap()
    };
    assert_eq!(out(Some("https://evil.example")).status(), 403);
    assert_eq!(get_with(&s, &format!("{UI}/api/tenants"), Some(cookie)).status(), 200);
    let r = out(Some(&origin(&s)));
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(get_with(&s, &format!("{UI}/api/tenants"), Some(cookie)).status(), 401);
}

#[test]
fn the_inspector_reads_but_only_resets_from_its_own_pages() {
    let s = start();
    let cookie = session(&s);
    let group = s.create(
        "/beta/groups",
        &json!({"displayName": "Kept", "mailEnabled": false, "mailNickname": "kept", "securityEnabled": true}),
    );
    let reset = |o: Option<&str>| {
        let mut rb = bare().post(s.url(&format!("{UI}/api/tenants/{TENANT}/reset"))).header("cookie", &cookie);
        if let Some(o) = o {
            rb = rb.header("origin", o);
        }
        rb.send().unwrap()
    };
    // Cross-site (another Origin) or without Origin: refused, nothing reset.
    assert_eq!(reset(Some("https://evil.example")).status(), 403);
    assert_eq!(reset(Some("null")).status(), 403);
    assert_eq!(reset(None).status(), 403);
    assert_eq!(s.get(&format!("/beta/groups/{}", group["id"].as_str().unwrap())).status(), 200);
    // Any other write through the inspector: 405, whatever the Origin.
    for (m, p) in
        [("POST", "/api/faults"), ("DELETE", "/api/tenants/x"), ("PUT", "/api/throttling"), ("POST", "/api/tenants")]
    {
        let r = bare()
            .request(m.parse().unwrap(), s.url(&format!("{UI}{p}")))
            .header("cookie", &cookie)
            .header("origin", origin(&s))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(r.status(), 405, "{m} {p}");
    }
    assert_eq!(admin(&s, "GET", "/faults", None).json::<Value>().unwrap()["value"], json!([]));
    // From its own page: the admin API's reset.
    assert_eq!(reset(Some(&origin(&s))).status(), 204);
    assert_eq!(s.get(&format!("/beta/groups/{}", group["id"].as_str().unwrap())).status(), 404);
}

#[test]
fn assets_are_served_by_name_only_and_every_answer_carries_the_csp() {
    let s = start();
    let cookie = session(&s);
    for path in [
        "/assets/../mod.rs",
        "/assets/%2e%2e/mod.rs",
        "/assets/..%2fmod.rs",
        "/assets/app.js%00",
        "/assets/",
        "/assets/mod.rs",
        "/assets/assets/app.js",
    ] {
        let r = get_with(&s, &format!("{UI}{path}"), Some(&cookie));
        assert!(matches!(r.status().as_u16(), 404), "{path}: {}", r.status());
        assert!(!r.text().unwrap().contains("fn route"), "{path}");
    }
    let r = get_with(&s, &format!("{UI}/assets/app.js"), Some(&cookie));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
    for path in ["/", "/signin", "/assets/app.js", "/api/tenants", "/nothing"] {
        let r = get_with(&s, &format!("{UI}{path}"), Some(&cookie));
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
    }
    // The page itself has no inline script for the CSP to have to allow.
    let page = get_with(&s, &format!("{UI}/"), Some(&cookie)).text().unwrap();
    assert!(!page.contains("<script>") && page.contains("<script src=\"assets/app.js\" defer></script>"));
}

#[test]
fn with_the_admin_api_open_on_loopback_the_inspector_is_open_too() {
    let s = Server::start_with(&["--admin-auth", "off"]);
    let r = get_with(&s, &format!("{UI}/"), None);
    assert_eq!(r.status(), 200);
    assert_eq!(get_with(&s, &format!("{UI}/api/tenants"), None).status(), 200);
    let r = get_with(&s, &format!("{UI}/signin"), None);
    assert_eq!(r.status(), 303);
}

// --- in the browser -------------------------------------------------------------------------

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/inspector-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> PathBuf {
    let p = PathBuf::from(std::env::var("ENROLLGRAPH_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        p.exists(),
        "Debian's chromium is needed at {} (.ci/run installs it: apt-get install chromium)",
        p.display()
    );
    p
}

struct Inspector {
    _browser: Browser,
    tab: Arc<Tab>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Inspector {
    fn open() -> Inspector {
        let options = LaunchOptions::default_builder()
            .path(Some(chromium()))
            .headless(true)
            .sandbox(false)
            .window_size(Some((1366, 900)))
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let browser = Browser::new(options).unwrap();
        let tab = browser.new_tab().unwrap();
        let errors = Arc::new(Mutex::new(Vec::new()));
        tab.enable_log().unwrap();
        tab.enable_runtime().unwrap();
        let sink = errors.clone();
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let text = match event {
                Event::LogEntryAdded(e) => {
                    let d = format!("{:?}", e.params.entry);
                    d.contains("level: Error").then_some(d)
                }
                Event::RuntimeConsoleAPICalled(e) => {
                    let d = format!("{:?}", e.params);
                    d.contains("Type: Error").then_some(d)
                }
                Event::RuntimeExceptionThrown(e) => Some(format!("{:?}", e.params.exception_details)),
                _ => None,
            };
            if let Some(t) = text {
                sink.lock().unwrap().push(t);
            }
        }))
        .unwrap();
        Inspector { _browser: browser, tab, errors }
    }

    fn go(&self, url: &str) {
        self.tab.navigate_to(url).unwrap().wait_until_navigated().unwrap();
    }

    fn eval(&self, js: &str) -> Value {
        self.tab.evaluate(js, true).unwrap().value.unwrap_or(Value::Null)
    }

    /// An expression's value as JSON (arrays and objects come back by reference otherwise).
    fn eval_json(&self, expr: &str) -> Value {
        let text = self.eval(&format!("JSON.stringify({expr})"));
        serde_json::from_str(text.as_str().unwrap()).unwrap()
    }

    /// Waits (at most 15 s) until `js` is true.
    fn wait(&self, js: &str) {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if self.eval(js) == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < until, "timed out waiting for: {js}\npage: {}", self.text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self) -> String {
        self.eval("document.body.textContent").as_str().unwrap_or_default().to_owned()
    }

    fn hash(&self, hash: &str) {
        self.eval(&format!("location.hash = {}; true", json!(hash)));
        self.wait(&format!("document.body.dataset.ready === {}", json!(hash.trim_start_matches('#'))));
    }

    fn shot(&self, name: &str) {
        let png = self.tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).unwrap();
        std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
    }

    fn no_console_errors(&self) {
        let e = self.errors.lock().unwrap();
        assert!(e.is_empty(), "console errors: {e:#?}");
    }

    fn sign_in(&self, s: &Server) {
        self.sign_in_at(&s.url(""));
    }

    fn sign_in_at(&self, base: &str) {
        self.go(&format!("{base}{UI}/"));
        self.wait("location.pathname === '/_enrollgraph/ui/signin' && !!document.getElementById('key')");
        self.tab.wait_for_element("#key").unwrap().click().unwrap();
        self.tab.type_str(KEY).unwrap();
        self.tab.press_key("Enter").unwrap();
        self.wait("location.pathname === '/_enrollgraph/ui/' && document.body.dataset.ready === '/'");
    }
}

#[test]
fn a_wrong_key_is_refused_in_the_browser() {
    let s = start();
    let b = Inspector::open();
    b.go(&s.url(&format!("{UI}/journal")));
    b.wait("location.pathname === '/_enrollgraph/ui/signin'");
    b.tab.wait_for_element("#key").unwrap().click().unwrap();
    b.tab.type_str("egadm_not-the-key").unwrap();
    b.tab.press_key("Enter").unwrap();
    b.wait("document.querySelector('.error') !== null");
    assert!(b.text().contains("The admin key is wrong."));
    assert_eq!(b.eval("document.cookie"), json!(""));
    b.shot("signin-refused");
    // No page of the app was reachable: the browser holds no session.
    b.go(&s.url(&format!("{UI}/")));
    b.wait("location.pathname === '/_enrollgraph/ui/signin'");
    // The only console errors are the refused sign-in's 403 (Chromium logs a failed load).
    let errors = b.errors.lock().unwrap();
    assert!(errors.iter().all(|e| e.contains("403")), "{errors:#?}");
}

#[test]
fn the_pages_show_what_the_graph_api_changed_and_the_journal_lives() {
    let s = start();
    let b = Inspector::open();
    b.sign_in(&s);
    b.no_console_errors();
    assert_eq!(b.eval("document.cookie"), json!(""), "the session cookie is HttpOnly");
    let cookies = b.tab.get_cookies().unwrap();
    let c = cookies.iter().find(|c| c.name == "enrollgraph_ui").unwrap();
    assert!(c.http_only && !c.secure && c.path == UI, "{c:?}");
    assert_eq!(format!("{:?}", c.same_site), "Some(Strict)");
    assert!(!c.value.contains("inspector-test-key"));
    b.wait("document.querySelector('#tenants a') !== null");
    assert!(b.text().contains(TENANT));
    b.shot("tenants");

    // State changed through the Graph API, names that would be markup if not escaped.
    let xss = "<img src=x onerror=\"document.title='pwned'\">Limit";
    let group = s.create(
        "/beta/groups",
        &json!({"displayName": "Pilot <b>users</b>", "mailEnabled": false, "mailNickname": "pilot", "securityEnabled": true}),
    );
    let gid = group["id"].as_str().unwrap().to_owned();
    let filter = s.create(
        &format!("{BETA}/assignmentFilters"),
        &json!({"displayName": "Corporate only", "platform": "windows10AndLater", "rule": "(device.deviceOwnership -eq \"Corporate\")"}),
    );
    let fid = filter["id"].as_str().unwrap().to_owned();
    let limit = s.create(
        &format!("{BETA}/deviceEnrollmentConfigurations"),
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": xss, "limit": 3}),
    );
    let lid = limit["id"].as_str().unwrap().to_owned();
    let r = s.post(
        &format!("{BETA}/deviceEnrollmentConfigurations/{lid}/assign"),
        &json!({"enrollmentConfigurationAssignments": [{"target": {
            "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": gid,
            "deviceAndAppManagementAssignmentFilterId": fid, "deviceAndAppManagementAssignmentFilterType": "include"}}]}),
    );
    assert_eq!(r.status(), 200);
    let profile = s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles"),
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "Shared kiosks"}),
    );
    let pid = profile["id"].as_str().unwrap().to_owned();
    s.create(
        &format!("{BETA}/windowsAutopilotDeviceIdentities"),
        &json!({"serialNumber": "SN-INSPECT-1", "deploymentProfile@odata.bind": s.url(&format!("{BETA}/windowsAutopilotDeploymentProfiles('{pid}')"))}),
    );
    s.create(
        &format!("{BETA}/appleUserInitiatedEnrollmentProfiles"),
        &json!({"displayName": "Apple BYOD", "platform": "iOS"}),
    );

    b.hash(&format!("#/tenant/{TENANT}"));
    let text = b.text();
    for want in [
        "Device limit restrictions",
        "Pilot <b>users</b>",
        "Corporate only",
        "filter include",
        "exclusionGroup",
        "Shared kiosks",
        "SN-INSPECT-1",
        "Apple BYOD",
    ] {
        assert!(text.contains(want), "{want} missing from the tenant page:\n{text}");
    }
    // The configuration's name is text, not markup.
    let cell = b.eval(&format!("document.querySelector('[data-config=\"{lid}\"] td:nth-child(2)').textContent"));
    assert_eq!(cell, json!(xss));
    assert_eq!(b.eval("document.querySelectorAll('main img, main b').length"), json!(0));
    assert_ne!(b.eval("document.title"), json!("pwned"));
    // Priority order within a kind, the default (0) last.
    let order = b.eval_json(
        "[...document.querySelectorAll('table[data-kind=\"deviceEnrollmentLimitConfiguration\"] tbody tr')].map(r => r.cells[0].textContent)",
    );
    assert_eq!(order, json!(["1", "0"]));
    b.shot("tenant");
    // The README's picture: the top of this page, small (docs/inspector.jpg is a copy).
    let clip =
        headless_chrome::protocol::cdp::Page::Viewport { x: 0.0, y: 0.0, width: 1366.0, height: 520.0, scale: 0.7 };
    let jpg = b.tab.capture_screenshot(CaptureScreenshotFormatOption::Jpeg, Some(80), Some(clip), true).unwrap();
    std::fs::write(screenshots().join("readme-tenant.jpg"), jpg).unwrap();

    // The live journal, reached with the keyboard: a Graph request appears without a reload.
    b.eval("document.activeElement && document.activeElement.blur(); true");
    let mut presses = 0;
    while b.eval("document.activeElement.textContent") != json!("Journal") {
        presses += 1;
        assert!(presses < 10, "Tab does not reach the Journal link");
        b.tab.press_key("Tab").unwrap();
    }
    b.tab.press_key("Enter").unwrap();
    b.wait("document.body.dataset.ready === '/journal'");
    b.wait("document.getElementById('journal-state').textContent === 'Live'");
    let marker = b.eval("window.__marker = Math.random(); window.__marker");
    let odd = "/beta/deviceManagement/deviceEnrollmentConfigurations/%3Cimg%20src=x%20onerror=alert(1)%3E";
    assert!(s.get(odd).status().is_client_error());
    s.create(
        "/beta/groups",
        &json!({"displayName": "Live one <img src=x onerror=\"document.title='pwned'\">", "mailEnabled": false, "mailNickname": "live", "securityEnabled": true}),
    );
    b.wait("[...document.querySelectorAll('#journal-rows tr')].some(r => r.textContent.includes('onerror=alert(1)'))");
    b.wait("[...document.querySelectorAll('#journal-rows tr')].some(r => r.textContent.includes('POST') && r.textContent.includes('/beta/groups'))");
    assert_eq!(b.eval("window.__marker"), marker, "the page was reloaded");
    assert_eq!(b.eval("document.querySelectorAll('main img').length"), json!(0));
    // A body on demand (the journal's redaction applies: no token in the headers).
    b.eval("[...document.querySelectorAll('#journal-rows tr')].find(r => r.textContent.includes('POST')).querySelector('button').click(); true");
    b.wait("document.getElementById('journal-entry') !== null");
    let detail = b.eval("document.getElementById('journal-entry').textContent").as_str().unwrap().to_owned();
    assert!(detail.contains("Live one <img src=x"), "{detail}");
    assert_eq!(b.eval("document.querySelectorAll('main img').length"), json!(0));
    assert_ne!(b.eval("document.title"), json!("pwned"));
    assert!(!detail.contains(&s.token), "a token in the journal view");
    // Filtered by path.
    b.hash("#/journal?path=%2Fbeta%2Fgroups");
    b.wait("document.getElementById('journal-state').textContent === 'Live'");
    let paths = b.eval_json("[...document.querySelectorAll('#journal-rows tr')].map(r => r.cells[4].textContent)");
    assert!(paths.as_array().unwrap().iter().all(|p| p == "/beta/groups"), "{paths}");
    b.shot("journal");

    // Faults and throttling.
    let r = admin(&s, "POST", "/faults", Some(&json!({"path": "/beta/groups", "status": 503, "times": 1})));
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let rule: Value = admin(&s, "GET", "/faults", None).json().unwrap();
    let rule_id = rule["value"][0]["id"].as_str().unwrap().to_owned();
    b.hash("#/controls");
    b.wait("document.getElementById('faults') !== null");
    assert!(b.text().contains(&rule_id));
    assert!(b.text().contains("Default"));
    b.shot("controls");

    // The snapshot download and the reset, each behind a confirmation.
    b.hash("#/");
    b.eval("document.querySelector('a[download]').click(); true");
    b.wait("document.querySelector('dialog[open]') !== null");
    assert!(b.text().contains("Download a snapshot of tenant"));
    b.eval("document.querySelector('dialog[open] button:not(.danger)').click(); true");
    b.wait("document.querySelector('dialog') === null");
    b.eval(&format!("document.querySelector('[data-reset=\"{TENANT}\"]').click(); true"));
    b.wait("document.querySelector('dialog[open]') !== null");
    b.shot("reset-confirmation");
    assert_eq!(s.get(&format!("/beta/groups/{gid}")).status(), 200, "reset before the confirmation");
    b.eval("document.getElementById('confirm-yes').click(); true");
    let until = Instant::now() + Duration::from_secs(10);
    while s.get(&format!("/beta/groups/{gid}")).status() != 404 {
        assert!(Instant::now() < until, "the confirmed reset did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
    b.no_console_errors();
}

#[test]
fn the_effective_view_shows_what_the_admin_api_answers() {
    let s = start();
    let group = s.create(
        "/beta/groups",
        &json!({"displayName": "Effective group", "mailEnabled": false, "mailNickname": "eff", "securityEnabled": true}),
    );
    let gid = group["id"].as_str().unwrap().to_owned();
    let limit = s.create(
        &format!("{BETA}/deviceEnrollmentConfigurations"),
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Five devices", "limit": 5}),
    );
    let lid = limit["id"].as_str().unwrap();
    let r = s.post(
        &format!("{BETA}/deviceEnrollmentConfigurations/{lid}/assign"),
        &json!({"enrollmentConfigurationAssignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid}}]}),
    );
    assert_eq!(r.status(), 200);
    let r = admin(&s, "GET", &format!("/tenants/{TENANT}/effective?group={gid}"), None);
    assert_eq!(r.status(), 200);
    let want: Value = r.json().unwrap();
    let b = Inspector::open();
    b.sign_in(&s);
    b.hash(&format!("#/effective/{TENANT}?group={gid}"));
    b.wait("document.getElementById('effective-kinds') !== null");
    for k in want["kinds"].as_array().unwrap() {
        let kind = k["kind"].as_str().unwrap();
        let shown = b.eval(&format!(
            "document.querySelector('#effective-kinds tr[data-kind=\"{kind}\"] td.applies').textContent"
        ));
        let shown = shown.as_str().unwrap();
        match k["applies"]["displayName"].as_str() {
            Some(name) => assert!(shown.starts_with(name), "{kind}: shown {shown:?}, the API says {name:?}"),
            None => assert_eq!(shown, "nothing", "{kind}"),
        }
    }
    let limit_row = b.eval("document.querySelector('#effective-kinds tr[data-kind=\"limit\"] td.applies').textContent");
    assert!(limit_row.as_str().unwrap().starts_with("Five devices"), "{limit_row}");
    b.shot("effective");
    b.no_console_errors();
}

#[test]
fn over_tls_the_session_cookie_is_secure() {
    let s = common::TlsServer::start(&["--admin-key", KEY]);
    let b = Inspector::open();
    b.sign_in_at(&s.base);
    b.wait("document.querySelector('#tenants a') !== null");
    let cookies = b.tab.get_cookies().unwrap();
    let c = cookies.iter().find(|c| c.name == "enrollgraph_ui").unwrap();
    assert!(c.secure && c.http_only, "{c:?}");
    assert_eq!(format!("{:?}", c.same_site), "Some(Strict)");
    b.no_console_errors();
}

/// The effective page against the agreed contract (issue 15: the JSON the effective endpoint
/// answers), its answer fixed in the page's `fetch`, so the page is checked on this branch
/// too; names and reasons with markup in them stay text.
#[test]
fn the_effective_page_renders_the_agreed_contract() {
    let s = start();
    let group = s.create(
        "/beta/groups",
        &json!({"displayName": "Contract group", "mailEnabled": false, "mailNickname": "contract", "securityEnabled": true}),
    );
    let gid = group["id"].as_str().unwrap().to_owned();
    let answer = json!({
        "tenant": TENANT,
        "groups": [{"id": gid, "displayName": "Contract group"}],
        "kinds": [
            {"kind": "limit", "audience": "user", "title": "Device limit restrictions",
             "applies": {"id": "l1", "displayName": "Five <img src=x onerror=\"document.title='pwned'\">", "priority": 1,
                         "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "isDefault": false},
             "conditions": [{"filterId": "f1", "filterName": "Corporate only", "filterType": "include",
                             "rule": "(device.deviceOwnership -eq \"Corporate\")", "evaluated": null}],
             "reasons": ["Assigned to group Contract group at priority 1 <b>first</b>."],
             "candidates": [
                 {"id": "l1", "displayName": "Five", "priority": 1, "outcome": "applies", "via": format!("group {gid}"), "reason": "highest priority"},
                 {"id": "d", "displayName": "All users and all devices", "priority": 0, "outcome": "lowerPriority", "via": "default", "reason": "the default"}
             ]},
            {"kind": "windowsHelloForBusiness", "audience": "user", "title": "Windows Hello for Business",
             "applies": null, "conditions": [], "reasons": ["Nothing is assigned."], "candidates": []}
        ],
        "autopilot": {"applies": {"id": "p1", "displayName": "Shared kiosks"}, "reasons": ["Assigned to the group."], "candidates": []}
    });
    let b = Inspector::open();
    b.sign_in(&s);
    // DevTools' evaluate is not bound by the page's CSP: the page's own script is unchanged.
    b.eval(&format!(
        "const answer = {answer}; const real = window.fetch; window.fetch = (u, o) => String(u).includes('/effective?') \
         ? Promise.resolve(new Response(JSON.stringify(answer), {{status: 200, headers: {{'content-type': 'application/json'}}}})) \
         : real(u, o); true"
    ));
    b.hash(&format!("#/effective/{TENANT}?group={gid}"));
    b.wait("document.getElementById('effective-kinds') !== null");
    let applies = |kind: &str| {
        b.eval(&format!("document.querySelector('#effective-kinds tr[data-kind=\"{kind}\"] td.applies').textContent"))
    };
    assert_eq!(applies("limit"), json!("Five <img src=x onerror=\"document.title='pwned'\">priority 1 · l1"));
    assert_eq!(applies("windowsHelloForBusiness"), json!("nothing"));
    let text = b.text();
    for want in [
        "Device limit restrictions",
        "Corporate only",
        "include",
        "Assigned to group Contract group at priority 1 <b>first</b>.",
        "2 candidates",
        "lowerPriority",
        "Shared kiosks",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert_eq!(b.eval("document.querySelectorAll('main img, main b').length"), json!(0));
    assert_ne!(b.eval("document.title"), json!("pwned"));
    // The group chosen is selected in the form.
    assert_eq!(
        b.eval(&format!("document.querySelector('#effective-group option[value=\"{gid}\"]').selected")),
        json!(true)
    );
    b.eval("document.querySelector('#effective-kinds details').open = true; true");
    b.shot("effective");
    b.no_console_errors();
}
