//! Running as a team's shared service (issue 16): Prometheus metrics (parsed with a real
//! text parser), bounded route labels, JSON request logs without secrets, readiness, and
//! a graceful shutdown that loses no acknowledged write.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, Server, TENANT, Value, json};

const CONFIGS: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";
const ADMIN_KEY: &str = "ops-test-admin-key-Zq81vNwe3";

fn limit_body(name: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": name, "limit": 3})
}

/// One sample of a scrape: its family, labels and value (a histogram's: its count).
#[derive(Debug)]
struct Sample {
    metric: String,
    labels: std::collections::HashMap<String, String>,
    value: f64,
}

/// `/metrics` parsed by a real Prometheus text-format parser (openmetrics-parser's pest
/// grammar: label values may hold `{` and `}`, as route templates do).
fn scrape(port: u16) -> Vec<Sample> {
    use openmetrics_parser::PrometheusValue as V;
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics")).unwrap().text().unwrap();
    let parsed = openmetrics_parser::prometheus::parse_prometheus(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let mut out = Vec::new();
    for (name, family) in &parsed.families {
        for sample in family.iter_samples() {
            let labels = sample.get_labelset().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let value = match &sample.value {
                V::Unknown(n) | V::Gauge(n) => n.as_f64(),
                V::Counter(c) => c.value.as_f64(),
                #[allow(clippy::cast_precision_loss)]
                V::Histogram(h) => h.count.unwrap_or(0) as f64,
                V::Summary(_) => 0.0,
            };
            out.push(Sample { metric: name.clone(), labels, value });
        }
    }
    out
}

fn label<'a>(s: &'a Sample, name: &str) -> &'a str {
    s.labels.get(name).map_or("", String::as_str)
}

fn value(s: &Sample) -> f64 {
    s.value
}

#[test]
fn metrics_scrape_parses_with_bounded_route_labels() {
    let port = common::free_port();
    let s = Server::start_with(&["--metrics-address", &format!("127.0.0.1:{port}")]);
    let made = s.create(CONFIGS, &limit_body("metrics"));
    let id = made["id"].as_str().unwrap();
    assert_eq!(s.get(&format!("{CONFIGS}/{id}")).status(), 200);
    // A load of random ids and random paths: none may become a label value.
    let mut sent = Vec::new();
    for i in 0..150 {
        let random = uuid::Uuid::new_v4().to_string();
        let path = match i % 3 {
            0 => format!("{CONFIGS}/{random}"),
            1 => format!("{CONFIGS}/{random}/assignments/{random}"),
            _ => format!("/v1.0/{random}/{random}"),
        };
        let status = s.get(&path).status();
        assert!(status.is_client_error(), "{path}: {status}");
        sent.push(random);
    }
    // Methods of the client's invention are `other`.
    for (i, random) in sent.iter().take(5).enumerate() {
        let method = reqwest::Method::from_bytes(format!("X{i}{}", &random[..8]).to_uppercase().as_bytes()).unwrap();
        let status = s.raw().request(method, s.url(CONFIGS)).send().unwrap().status();
        assert!(status.is_client_error(), "{status}");
    }
    // A refused token counts as a failed validation, by reason.
    let bad = s.raw().get(s.url(CONFIGS)).header("authorization", "Bearer not.a.token").send().unwrap();
    assert_eq!(bad.status(), 401);
    let scrape = scrape(port);
    let requests: Vec<_> = scrape.iter().filter(|x| x.metric == "enrollgraph_http_requests_total").collect();
    let routes: BTreeSet<&str> = requests.iter().map(|x| label(x, "route")).collect();
    let methods: BTreeSet<&str> = requests.iter().map(|x| label(x, "method")).collect();
    assert_eq!(methods, BTreeSet::from(["GET", "POST", "other"]), "methods stay few");
    assert!(routes.len() <= 8, "route labels stay few: {routes:?}");
    for r in &routes {
        assert!(!sent.iter().any(|id| r.contains(id.as_str())), "an id in a route label: {r}");
        assert!(!r.contains(id), "an id in a route label: {r}");
    }
    let count = |route: &str, status: &str| {
        requests
            .iter()
            .filter(|x| label(x, "route") == route && label(x, "status") == status && label(x, "method") == "GET")
            .map(|x| value(x))
            .sum::<f64>()
    };
    assert_eq!(count("/beta/deviceManagement/deviceEnrollmentConfigurations/{id}", "404"), 50.0);
    assert_eq!(count("/beta/deviceManagement/deviceEnrollmentConfigurations/{id}", "200"), 1.0);
    assert_eq!(count("/beta/deviceManagement/deviceEnrollmentConfigurations/{id}/assignments/{id}", "404"), 50.0);
    let unmatched: f64 = requests.iter().filter(|x| label(x, "route") == "(unmatched)").map(|x| value(x)).sum();
    assert_eq!(unmatched, 50.0, "{requests:#?}");
    assert!(
        requests.iter().any(|x| label(x, "method") == "POST"
            && label(x, "status") == "201"
            && label(x, "version") == "beta"
            && label(x, "route") == "/beta/deviceManagement/deviceEnrollmentConfigurations"),
        "the create is counted"
    );
    // Latency histograms, group commits of this backend, token checks.
    let has = |metric: &str, key: &str, want: &str| {
        scrape.iter().any(|x| x.metric == metric && label(x, key) == want && value(x) > 0.0)
    };
    assert!(has("enrollgraph_http_request_duration_seconds", "method", "GET"));
    // One latency sample per request, under the same route labels as the counter.
    let timed = |route: &str| {
        scrape
            .iter()
            .filter(|x| {
                x.metric == "enrollgraph_http_request_duration_seconds"
                    && label(x, "route") == route
                    && label(x, "method") == "GET"
            })
            .map(value)
            .sum::<f64>()
    };
    assert_eq!(timed("/beta/deviceManagement/deviceEnrollmentConfigurations/{id}"), 51.0);
    assert_eq!(timed("/beta/deviceManagement/deviceEnrollmentConfigurations/{id}/assignments/{id}"), 50.0);
    let backend = if s.database.is_some() { "postgres" } else { "sqlite" };
    assert!(has("enrollgraph_group_commit_batch_size", "backend", backend), "batch sizes of {backend}");
    assert!(has("enrollgraph_group_commit_seconds", "backend", backend), "commit durations of {backend}");
    assert!(has("enrollgraph_token_validations_total", "outcome", "valid"));
    assert!(has("enrollgraph_token_validations_total", "outcome", "Malformed"));
    if s.database.is_some() {
        assert!(scrape.iter().any(|x| x.metric == "enrollgraph_pg_pool_connections"));
        assert!(scrape.iter().any(|x| x.metric == "enrollgraph_pg_lock_wait_seconds"));
    }
    // The Graph listener does not serve the metrics.
    assert_ne!(s.get("/metrics").status(), 200);
}

#[test]
fn throttling_faults_and_the_journal_are_counted() {
    let port = common::free_port();
    let s = Server::start_with(&[
        "--metrics-address",
        &format!("127.0.0.1:{port}"),
        "--admin-key",
        ADMIN_KEY,
        "--journal",
        "on",
        "--throttling",
        "tenant-requests=2,window=3600",
    ]);
    let rule = s
        .raw()
        .post(s.url("/_enrollgraph/faults"))
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .json(&json!({"path": "/beta/deviceManagement/deviceEnrollmentConfigurations", "status": 503, "times": 1}))
        .send()
        .unwrap();
    assert_eq!(rule.status(), 201);
    let statuses: Vec<u16> = (0..5).map(|_| s.get(CONFIGS).status().as_u16()).collect();
    assert!(statuses.contains(&503) && statuses.contains(&429), "{statuses:?}");
    let scrape = scrape(port);
    let has = |metric: &str| scrape.iter().any(|x| x.metric == metric && value(x) > 0.0);
    assert!(has("enrollgraph_throttled_total"), "throttling refusals");
    assert!(has("enrollgraph_faults_injected_total"), "fault injections");
    assert!(has("enrollgraph_journal_bytes"), "journal size");
}

/// The binary with `--log-format json`, its stderr captured.
struct Logged {
    child: std::process::Child,
    base: String,
    data_dir: std::path::PathBuf,
}

fn start_logged(extra: &[&str]) -> Logged {
    let data_dir =
        std::env::temp_dir().join(format!("enrollgraph-ops-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
    let mut child = Command::new(common::bin())
        .args(["serve", "--port", "0", "--log-format", "json", "--data-dir"])
        .arg(&data_dir)
        .arg("--signing-keys-file")
        .arg(common::keys_file())
        .args(extra)
        .env_remove("ENROLLGRAPH_DATABASE")
        // Request lines are opt-in: this is how a user turns them on.
        .env("ENROLLGRAPH_LOG", "enrollgraph=info,warn")
        .env_remove("RUST_LOG")
        .envs(common::test_database().iter().map(|d| ("ENROLLGRAPH_DATABASE", d.clone())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    Logged { child, base, data_dir }
}

impl Logged {
    /// SIGTERM, the exit status and everything the server logged.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let mut err = self.child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            err.read_to_string(&mut text).unwrap();
            text
        });
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        let _ = std::fs::remove_dir_all(&self.data_dir);
        (status, reader.join().unwrap())
    }
}

#[test]
fn request_logs_are_json_lines_without_secrets() {
    let password = "Pa55word-never-logged-7731";
    let body_marker = "body-text-never-logged-5512";
    let s = start_logged(&["--admin-key", ADMIN_KEY]);
    let http = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{}{p}", s.base);
    // The token endpoint with the client secret (form body), then a bad secret.
    let token: Value = http
        .post(url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEV_CLIENT_ID),
            ("client_secret", DEV_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let refused = http
        .post(url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "password"),
            ("client_id", DEV_CLIENT_ID),
            ("username", "nobody@example.com"),
            ("password", password),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .unwrap();
    assert!(refused.status().is_client_error());
    let bearer = format!("Bearer {token}");
    let created = http
        .post(url(CONFIGS))
        .header("authorization", &bearer)
        .header("client-request-id", "ops-log-test-1")
        .json(&limit_body(body_marker))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let app_id: Value = created.json().unwrap();
    let id = app_id["id"].as_str().unwrap().to_owned();
    let batch = http
        .post(url("/beta/$batch"))
        .header("authorization", &bearer)
        .json(&json!({"requests": [{"id": "1", "method": "PATCH", "url": format!("/deviceManagement/deviceEnrollmentConfigurations/{id}"),
            "headers": {"content-type": "application/json", "authorization": format!("Bearer {password}")},
            "body": {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "description": body_marker}}]}))
        .send()
        .unwrap();
    assert_eq!(batch.status(), 200);
    let admin =
        http.get(url("/_enrollgraph/faults")).header("authorization", format!("Bearer {ADMIN_KEY}")).send().unwrap();
    assert_eq!(admin.status(), 200);
    let wrong = http.get(url(CONFIGS)).header("authorization", format!("Bearer {password}")).send().unwrap();
    assert_eq!(wrong.status(), 401);
    let (status, logs) = s.stop();
    assert!(status.success(), "exit on SIGTERM: {status:?}\n{logs}");
    for secret in [token.as_str(), DEV_CLIENT_SECRET, ADMIN_KEY, password, body_marker] {
        assert!(!logs.contains(secret), "a secret in the logs: {secret}\n{logs}");
    }
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["target"] == "enrollgraph::request").collect();
    assert_eq!(requests.len(), 6, "one line per request: {requests:#?}");
    for r in &requests {
        for field in ["request_id", "client_request_id", "tenant", "app_id", "method", "route", "status", "latency_ms"]
        {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
        assert_eq!(r["level"], "INFO");
    }
    let create = requests.iter().find(|r| r["method"] == "POST" && r["status"] == 201).unwrap();
    assert_eq!(create["route"], "/beta/deviceManagement/deviceEnrollmentConfigurations");
    assert_eq!(create["client_request_id"], "ops-log-test-1");
    assert_eq!(create["tenant"], TENANT);
    assert_eq!(create["app_id"], DEV_CLIENT_ID);
    assert!(common::is_guid(create["request_id"].as_str().unwrap()));
    assert!(requests.iter().any(|r| r["route"] == "/{tenant}/oauth2/v2.0/token" && r["status"] == 200));
    assert!(requests.iter().any(|r| r["route"] == "/beta/$batch" && r["status"] == 200));
    // Start-up and shutdown lines say what was opened and closed.
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for m in ["opened the database", "stopped accepting connections", "stopped: database closed"] {
        assert!(messages.contains(&m), "{m} missing: {messages:?}");
    }
}

#[test]
fn readiness_answers_for_the_store() {
    let s = Server::start();
    let r = s.raw().get(s.url("/ready")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap(), json!({"status": "ready"}));
    assert_eq!(s.get("/health").status(), 200);
}

/// Stops a cluster the test started (also when it fails).
struct StopAtEnd<'a>(&'a enrollgraph_testpg::Cluster);

impl Drop for StopAtEnd<'_> {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

#[test]
fn readiness_follows_postgresql() {
    // A cluster of its own: stopping it must not disturb the suite's shared one.
    let cluster = match enrollgraph_testpg::Cluster::start(false) {
        Ok(c) => c,
        Err(e) if enrollgraph_testpg::required() => panic!("PostgreSQL is required here: {e}"),
        Err(e) => {
            eprintln!("readiness_follows_postgresql: skipped: {e}");
            return;
        }
    };
    let _stop = StopAtEnd(&cluster);
    let s = Server::start_on(Some(cluster.create_database()), &[]);
    assert_eq!(s.raw().get(s.url("/ready")).send().unwrap().status(), 200);
    cluster.stop().unwrap();
    let r = s.raw().get(s.url("/ready")).send().unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().unwrap()["error"]["code"], "ServiceUnavailable");
    assert_eq!(s.get("/health").status(), 200, "live while not ready");
    cluster.start_again().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.raw().get(s.url("/ready")).send().unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "not ready again after 20 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sigterm_loses_no_acknowledged_write_and_answers_in_flight_requests() {
    let mut s = Server::start_with(&["--admin-key", ADMIN_KEY, "--shutdown-grace", "10"]);
    // A slow request in flight when the signal comes: 1.5 s of injected latency.
    let slow_path = "/beta/deviceManagement/windowsAutopilotDeploymentProfiles";
    let rule = s
        .raw()
        .post(s.url("/_enrollgraph/faults"))
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .json(&json!({"path": slow_path, "latencyMs": 1500}))
        .send()
        .unwrap();
    assert_eq!(rule.status(), 201);
    // Writers: each keeps creating until its request fails; what was acknowledged must last.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (url, token) = (s.url(CONFIGS), s.token.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                let mut acked = Vec::new();
                for i in 0.. {
                    let r = http.post(&url).bearer_auth(&token).json(&limit_body(&format!("w{w}-{i}"))).send();
                    match r {
                        Ok(r) if r.status() == 201 => {
                            acked.push(r.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned())
                        }
                        Ok(r) => panic!("a write during shutdown answered {}", r.status()),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    let slow = {
        let (url, token) = (s.url(slow_path), s.token.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
            http.get(url).bearer_auth(token).send().map(|r| r.status().as_u16())
        })
    };
    // And a slow write: it is in the store's hands when the signal comes, so it must be
    // answered 201 and be there after a restart (a shutdown that exits without waiting for
    // its connections, or without draining the writer, fails here).
    let slow_write = {
        let (url, token) = (s.url(slow_path), s.token.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
            let body = json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "in flight"});
            let r = http.post(url).bearer_auth(token).json(&body).send().unwrap();
            (r.status().as_u16(), r.json::<Value>().unwrap()["id"].as_str().unwrap_or_default().to_owned())
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    let signalled = Instant::now();
    s.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    // After the signal: a new connection is refused (the listening socket is closed).
    let after = reqwest::blocking::Client::new().get(s.url("/health")).send();
    match after {
        Err(e) => assert!(e.is_connect(), "refused, not {e}"),
        Ok(r) => panic!("a request after SIGTERM was served: {}", r.status()),
    }
    let status = s.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    // The request in flight was answered, after the signal.
    assert_eq!(slow.join().unwrap().ok(), Some(200), "the in-flight request got its answer");
    assert!(signalled.elapsed() >= Duration::from_millis(700));
    let (write_status, slow_id) = slow_write.join().unwrap();
    assert_eq!(write_status, 201, "the write in flight got its answer");
    let acked: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert!(acked.len() > 4, "writes were acknowledged: {}", acked.len());
    s.start_again();
    let listed: BTreeSet<String> =
        common::list_all(&s, CONFIGS).iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect();
    for id in &acked {
        assert!(listed.contains(id), "an acknowledged write was lost: {id}");
    }
    let profile = s.get(&format!("{slow_path}/{slow_id}"));
    assert_eq!(profile.status(), 200, "the write acknowledged during shutdown lasted");
}
