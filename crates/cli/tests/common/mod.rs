//! The test harness: the real `enrollgraph` binary on a random loopback port with a
//! fresh data directory, driven over real HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use reqwest::blocking::Response;
pub use serde_json::{Value, json};

/// The tenant the server provisions by default.
pub const TENANT: &str = "d7c5e0a4-6f1b-4c3e-9a2d-5b8e7f0c1a93";

/// A running server; killed (and its data dir removed) on drop.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    /// The PostgreSQL database (URL) when the suite runs on PostgreSQL ([`test_database`]).
    pub database: Option<String>,
    extra: Vec<String>,
    /// Without `--signing-keys-file`: the server makes its own key, as for a user.
    own_keys: bool,
    client: reqwest::blocking::Client,
    /// A token of the development app (DeviceManagementServiceConfig.ReadWrite.All), sent by
    /// `client` on every request; empty when the server runs with `--auth off`.
    pub token: String,
}

/// The development app every server registers (README.md).
pub const DEV_CLIENT_ID: &str = "5e0f7b2a-8c4d-4e1f-9a3b-6d2c1f0e8b7a";
pub const DEV_CLIENT_SECRET: &str = "egDev8Q~enrollgraph-development-secret-0001";

/// A test-only key set, so that servers do not each generate an RSA key.
pub fn keys_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signing-keys.json")
}

fn temp_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "enrollgraph-it-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    // Private, as the server makes its own data dir (issue 18 item 4): a 0755 dir would have
    // every test server warn that it set 0700.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700).create(&d).unwrap();
    d
}

/// The database a new server runs on: `None` is SQLite in its data dir (the default); with
/// `ENROLLGRAPH_TEST_BACKEND=postgres` the whole suite runs on PostgreSQL, each server on a
/// fresh database of the harness's throwaway cluster (rulings.md 11: never skipped then).
pub fn test_database() -> Option<String> {
    if !enrollgraph_testpg::requested() {
        return None;
    }
    let cluster = enrollgraph_testpg::cluster()
        .unwrap_or_else(|e| panic!("ENROLLGRAPH_TEST_BACKEND=postgres but PostgreSQL cannot run: {e}"));
    Some(cluster.create_database())
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_on(test_database(), extra)
    }

    /// A server on `database` (a PostgreSQL URL; `None` = SQLite in its data dir): several
    /// servers on one database are replicas of one service.
    pub fn start_on(database: Option<String>, extra: &[&str]) -> Server {
        Server::start_keys(database, extra, false)
    }

    /// A server without `--signing-keys-file`, on a new data dir: it answers before its
    /// first signing key is made (`Identity::pending`), as a user's first start does.
    pub fn start_making_keys(extra: &[&str]) -> Server {
        Server::start_keys(test_database(), extra, true)
    }

    /// [`Server::start_making_keys`] on `database` (replicas making their first key at once).
    pub fn start_making_keys_on(database: Option<String>, extra: &[&str]) -> Server {
        Server::start_keys(database, extra, true)
    }

    fn start_keys(database: Option<String>, extra: &[&str], own_keys: bool) -> Server {
        let mut s = Server {
            child: None,
            base: String::new(),
            data_dir: temp_dir(),
            database,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            own_keys,
            client: reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
            token: String::new(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_enrollgraph"))
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(&self.data_dir)
            .args(if self.own_keys {
                Vec::new()
            } else {
                vec![std::ffi::OsString::from("--signing-keys-file"), keys_file().into_os_string()]
            })
            .args(&self.extra)
            .env_remove("ENROLLGRAPH_DATABASE")
            .envs(self.database.iter().map(|d| ("ENROLLGRAPH_DATABASE", d)))
            // One log line per request would flood the test output (tests/ops.rs reads them).
            .env("ENROLLGRAPH_LOG", "enrollgraph=info,enrollgraph::request=off,warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        // Keep draining, so the server never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(url.starts_with("http://"), "unexpected banner: {line}");
        // On PostgreSQL nothing of the data is in the data dir: the run really is on it.
        assert_eq!(
            self.data_dir.join("enrollgraph.sqlite").exists(),
            self.database.is_none(),
            "database {:?}",
            self.database
        );
        self.base = url;
        self.child = Some(child);
        let auth_off = self.extra.windows(2).any(|w| w[0] == "--auth" && w[1] == "off")
            || self.extra.iter().any(|a| a == "--auth=off");
        if self.token.is_empty() && !auth_off {
            self.token = self.client_credentials_token(crate::common::TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("authorization", format!("Bearer {}", self.token).parse().unwrap());
            self.client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .default_headers(headers)
                .build()
                .unwrap();
        }
    }

    /// A token from the server's own token endpoint (client credentials grant).
    pub fn client_credentials_token(&self, tenant: &str, client_id: &str, secret: &str) -> String {
        let r = reqwest::blocking::Client::new()
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "token endpoint");
        let v: Value = r.json().unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// Runs the CLI against this server's data dir and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_enrollgraph"))
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("ENROLLGRAPH_DATABASE")
            .envs(self.database.iter().map(|d| ("ENROLLGRAPH_DATABASE", d)))
            .output()
            .unwrap();
        assert!(out.status.success(), "enrollgraph {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Stops the server with SIGKILL (no graceful shutdown) and starts it again on the same data.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn();
    }

    /// Sends SIGTERM (a graceful shutdown, issue 16) without waiting for the exit.
    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// Waits for the server to exit (after [`Server::sigterm`]), at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the server runs");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > limit {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("the server did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data after it exited.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server still runs");
        self.spawn();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stops the server with SIGKILL (no graceful shutdown), leaving it stopped.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().unwrap()
    }

    pub fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().unwrap()
    }

    pub fn send(&self, method: &str, path: &str, body: &Value) -> Response {
        self.client
            .request(method.parse().unwrap(), self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.send("POST", path, body)
    }

    pub fn patch(&self, path: &str, body: &Value) -> Response {
        self.send("PATCH", path, body)
    }

    pub fn raw(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// Creates an entity and returns its body (asserting 201).
    pub fn create(&self, path: &str, body: &Value) -> Value {
        let r = self.post(path, body);
        assert_eq!(r.status(), 201, "POST {path}: {}", r.text().unwrap_or_default());
        r.json().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Reads an example body from the reference (`../shared/reference/examples`).
pub fn example(name: &str) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden").join(name);
    serde_json::from_str(&std::fs::read_to_string(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()))).unwrap()
}

/// The error code of a Graph error body.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// Drops `@odata.context`, server-made ids and times, and the `#` of `@odata.type`, so a
/// response can be compared with a doc example (rulings.md 4: compare modulo `#`).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "@odata.context" | "id" | "createdDateTime" | "lastModifiedDateTime")
                })
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("@odata.type", Value::String(s)) => Value::String(s.trim_start_matches('#').to_owned()),
                        _ => normalize(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}
// ---------------------------------------------------------------------------------------
// Helpers added for the integration suites (crud, targets, actions, errors, paging,
// query, versions, durability). They only add; nothing above changes behaviour.

/// The beta and v1.0 `deviceManagement` roots.
/// A call of the admin API (`/_enrollgraph{path}`) with `key` as its bearer, and a JSON body.
pub fn admin_call(
    s: &Server,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> reqwest::blocking::Response {
    let mut rb = s
        .raw()
        .request(method.parse().unwrap(), s.url(&format!("/_enrollgraph{path}")))
        .header("authorization", format!("Bearer {key}"));
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b.to_string());
    }
    rb.send().unwrap()
}

pub const BETA: &str = "/beta/deviceManagement";
pub const V1: &str = "/v1.0/deviceManagement";

/// Graph's JSON content type (graph-behaviours.md "Headers on every response").
pub const GRAPH_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// `8-4-4-4-12` hexadecimal digits.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `YYYY-MM-DDTHH:MM:SS` of the current UTC time (days-from-civil, H. Hinnant).
pub fn utc_now_text() -> String {
    utc_text(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
}

fn utc_text(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap();
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Checks a Graph error response and returns its body: the status, `error.code`, the
/// Graph JSON content type, and `innerError` (graph-behaviours.md "Responses"): `date` in
/// UTC without offset (`2021-12-20T19:37:09`, within a minute of now), `request-id` (the
/// response header, a GUID) and `client-request-id` (the response header).
pub fn expect_error(r: Response, status: u16, code: &str) -> Value {
    let got = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().unwrap();
    assert_eq!(got, status, "expected {status} {code}, got {got}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    assert_eq!(error_code(&body), code, "{text}");
    assert!(body["error"]["message"].is_string(), "{text}");
    assert_eq!(headers["content-type"], GRAPH_JSON);
    let inner = &body["error"]["innerError"];
    let date = inner["date"].as_str().unwrap_or_else(|| panic!("no innerError.date: {text}"));
    let shape_ok = date.len() == 19
        && date.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        });
    assert!(shape_ok, "innerError.date '{date}' is not YYYY-MM-DDTHH:MM:SS (UTC, no offset)");
    let (before, after) = {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        (utc_text(now - 60), utc_text(now + 60))
    };
    assert!(
        before.as_str() <= date && date <= after.as_str(),
        "innerError.date {date} is not now in UTC ({before}..{after})"
    );
    let rid = inner["request-id"].as_str().unwrap_or_default();
    assert!(is_guid(rid), "request-id {rid}");
    assert_eq!(headers["request-id"].to_str().unwrap(), rid);
    let crid = inner["client-request-id"].as_str().unwrap_or_default();
    assert!(!crid.is_empty(), "{text}");
    assert_eq!(headers["client-request-id"].to_str().unwrap(), crid);
    body
}

/// The `id`s of a collection body's `value`, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list["value"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

/// GET that must answer 200 with JSON.
pub fn get_ok(s: &Server, path: &str) -> Value {
    let r = s.get(path);
    let status = r.status();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Every item of a collection, following `@odata.nextLink` (absolute) to the end.
pub fn list_all(s: &Server, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut page = get_ok(s, path);
    loop {
        out.extend(page["value"].as_array().unwrap().iter().cloned());
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                let r = s.raw().get(next).send().unwrap();
                assert_eq!(r.status(), 200, "GET {next}");
                page = r.json().unwrap();
            }
            None => return out,
        }
    }
}

/// A POST (or other method) with an exact raw body and content type (none when `None`).
pub fn send_raw(s: &Server, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Response {
    let mut rb = s.raw().request(method.parse().unwrap(), s.url(path));
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    rb.body(body).send().unwrap()
}

/// Asserts an action-style success: 200 and an empty body (rulings.md 2).
pub fn expect_empty_200(r: Response) {
    let status = r.status();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, "", "an action answers 200 with an empty body");
}
// ---------------------------------------------------------------------------------------
// Helpers added for the authentication suites (auth, azure_identity). They only add.

/// The `enrollgraph` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_enrollgraph")
}

/// A loopback port that was free a moment ago (for flags that must name the port up front,
/// such as `--public-url`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server started with `serve --tls` (plus `extra` flags) on a random port with a fresh
/// data dir and the test key fixture: HTTPS on `localhost` with its own CA. The harness's
/// HTTP client has no TLS, so this holds neither a client nor a token: the clients under
/// test bring their own. Killed, and its data dir removed, on drop.
pub struct TlsServer {
    child: Child,
    /// `https://localhost:PORT`, from the banner's first line.
    pub base: String,
    /// The CA certificate to trust, from the banner's `trust this CA:` line.
    pub ca: PathBuf,
    pub data_dir: PathBuf,
    /// The whole banner, for messages.
    pub banner: String,
}

impl TlsServer {
    pub fn start(extra: &[&str]) -> TlsServer {
        let data_dir = temp_dir();
        let mut child = Command::new(bin())
            .args(["serve", "--tls", "--data-dir"])
            .arg(&data_dir)
            .arg("--signing-keys-file")
            .arg(keys_file())
            .args(if extra.contains(&"--port") { &[][..] } else { &["--port", "0"][..] })
            .args(extra)
            .env_remove("ENROLLGRAPH_DATABASE")
            .envs(test_database().map(|d| ("ENROLLGRAPH_DATABASE", d)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let mut ca = None;
        for _ in 0..30 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            banner.push_str(&line);
            if let Some(path) = line.trim().strip_prefix("trust this CA:") {
                ca = Some(PathBuf::from(path.trim()));
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let first = banner.lines().next().unwrap_or_default();
        let base = first.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        let s = TlsServer { child, base, ca: ca.unwrap_or_default(), data_dir, banner };
        assert!(s.base.starts_with("https://"), "unexpected banner: {}", s.banner);
        assert!(s.ca.is_file(), "no CA file in the banner: {}", s.banner);
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The ids of the five default configurations of a new tenant, in the order the tenant
/// lists them (reference/defaults.md).
pub fn default_ids() -> Vec<String> {
    [
        "DefaultLimit",
        "DefaultPlatformRestrictions",
        "DefaultWindowsHelloForBusiness",
        "DefaultWindows10EnrollmentCompletionPageConfiguration",
        "WindowsRestore",
    ]
    .iter()
    .map(|d| format!("{TENANT}_{d}"))
    .collect()
}
