//! HTTP-level property test (issue 18, "Done means"): generated requests, `$expand` (nested,
//! cyclic, starred, with options), `$filter` (long `in` lists, deep nesting), the other query
//! options, percent-encoded and odd paths, bodies, and `$batch` envelopes of such requests,
//! sent over real HTTP to one real server. Whatever is sent:
//! - no answer is a 5xx other than `501 NotImplemented` (a panic, a storage error, a bug);
//! - every error is Graph-shaped (`error.code`, `error.message`, `innerError.request-id`);
//! - a `$batch` that parses is `200`, and each of its responses obeys the same rules, with
//!   `headers` an object (IntuneCD reads it);
//! - each answer comes within a few seconds and is bounded in size;
//! - the server still serves afterwards.
//!
//! Bounded: a fixed number of cases from a fixed seed (deterministic in CI), well under a
//! minute on a debug build; `ENROLLGRAPH_FUZZ_CASES` asks for more, `ENROLLGRAPH_FUZZ_SEED`
//! for another sequence. The OData parser's own fuzz target (`crates/odata/fuzz`) still runs
//! in `.ci/run`.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const PROFILES: &str = "deviceManagement/windowsAutopilotDeploymentProfiles";
const DEVICES: &str = "deviceManagement/windowsAutopilotDeviceIdentities";
const CONFIGS: &str = "deviceManagement/deviceEnrollmentConfigurations";

/// Ids that exist, so that generated paths reach entities and not only 404s.
struct Seeded {
    ids: Vec<String>,
}

fn seed(s: &Server) -> Seeded {
    let mut ids = default_ids();
    let profile = s.create(
        &format!("/beta/{PROFILES}"),
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "p"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut devices = Vec::new();
    for i in 0..4 {
        let d = s.create(&format!("/beta/{DEVICES}"), &json!({"serialNumber": format!("SN-{i}"), "groupTag": "t"}));
        devices.push(d["id"].as_str().unwrap().to_owned());
    }
    expect_empty_200(s.post(&format!("/beta/{PROFILES}/{profile}/assign"), &json!({"deviceIds": devices})));
    let a = s.create(
        &format!("/beta/{PROFILES}/{profile}/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}),
    );
    ids.push(a["id"].as_str().unwrap().to_owned());
    ids.push(profile);
    ids.extend(devices);
    ids.push("nope".into());
    ids.push("00000000-0000-0000-0000-000000000000".into());
    Seeded { ids }
}

// --- generators ---------------------------------------------------------------------------

/// Percent-encodes what a URL may not carry as is, plus (when `all`) every letter, the
/// way an attacker spells a known name (`gr%6Fups`).
fn encode(text: &str, all: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        let keep = !all && (b.is_ascii_alphanumeric() || b"-._~$()',*=:;@!".contains(&b));
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "deviceManagement", "deviceEnrollmentConfigurations", "windowsAutopilotDeploymentProfiles",
            "windowsAutopilotDeviceIdentities", "assignments", "assignedDevices", "deploymentProfile",
            "groups", "assignmentFilters", "$count", "$ref", "assign", "setPriority", "$metadata",
            "$batch", "roleScopeTags", "microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
            "DEVICEMANAGEMENT", "Groups", "..", ".",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z0-9_.$']{0,12}",
    ]
}

fn segment(ids: Vec<String>) -> impl Strategy<Value = String> {
    (name(), prop::option::of(prop::sample::select(ids)), 0u8..6).prop_map(|(n, key, style)| match (key, style) {
        (Some(k), 0) => format!("{n}('{}')", encode(&k, false)),
        (Some(k), 1) => format!("{n}/{}", encode(&k, false)),
        (_, 2) => encode(&n, true),
        (_, 3) => format!("{n}/"),
        _ => n,
    })
}

/// Paths that resolve (most requests should reach the query and write code), with a key
/// of a seeded entity where they take one; then anything.
fn path(ids: Vec<String>) -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        format!("{DEVICES}"),
        format!("{DEVICES}/{{id}}"),
        format!("{DEVICES}/{{id}}/deploymentProfile"),
        format!("{PROFILES}"),
        format!("{PROFILES}/{{id}}"),
        format!("{PROFILES}('{{id}}')/assignedDevices"),
        format!("{PROFILES}/{{id}}/assignments"),
        format!("{CONFIGS}"),
        format!("{CONFIGS}/{{id}}"),
        format!("{CONFIGS}/{{id}}/assignments"),
        format!("{CONFIGS}/$count"),
        "groups".to_owned(),
        "deviceManagement/assignmentFilters".to_owned(),
    ]);
    let version = prop_oneof![8 => Just("beta"), 4 => Just("v1.0"), 1 => Just("BETA"), 1 => Just("v2")];
    prop_oneof![
        3 => (version.clone(), known, prop::sample::select(ids.clone()))
            .prop_map(|(v, p, id)| format!("/{v}/{}", p.replace("{id}", &encode(&id, false)))),
        1 => (version, prop::collection::vec(segment(ids), 0..6)).prop_map(|(v, segs)| format!("/{v}/{}", segs.join("/"))),
    ]
}

/// `$expand` values: nested (past the limit too), cyclic, starred, with options.
fn expand() -> impl Strategy<Value = String> {
    let leaf =
        prop::sample::select(vec!["assignments", "assignedDevices", "deploymentProfile", "*", "assignments", "nope"])
            .prop_map(str::to_owned);
    leaf.prop_recursive(5, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a},{b}")),
            (prop::sample::select(vec!["assignments", "assignedDevices", "deploymentProfile"]), inner.clone())
                .prop_map(|(n, i)| format!("{n}($expand={i})")),
            (prop::sample::select(vec!["assignments", "assignedDevices"]), filter())
                .prop_map(|(n, f)| format!("{n}($filter={f};$select=id;$top=2)")),
        ]
    })
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "'[a-zA-Z0-9 -]{0,8}'",
        (0i64..1000).prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("2024-01-01T00:00:00Z".to_owned()),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    let property = prop::sample::select(vec![
        "id",
        "displayName",
        "serialNumber",
        "groupTag",
        "priority",
        "target/groupId",
        "id",
        "createdDateTime",
        "nope",
    ]);
    let atom = prop_oneof![
        2 => (property.clone(), prop::sample::select(vec!["eq", "ne", "gt", "le"]), literal())
            .prop_map(|(p, op, v)| format!("{p} {op} {v}")),
        1 => (property.clone(), prop::collection::vec(literal(), 0..40)).prop_map(|(p, l)| format!("{p} in ({})", l.join(","))),
        // Long lists, around the bound.
        2 => (prop::sample::select(vec!["id", "serialNumber", "displayName"]), prop::sample::select(vec![999usize, 1000, 1001, 3000]))
            .prop_map(|(p, n)| format!("{p} in ({})", vec!["'x'"; n].join(","))),
        1 => (property.clone(), literal()).prop_map(|(p, v)| format!("startswith({p},{v})")),
        1 => Just("roleScopeTagIds/any(t: t eq '0')".to_owned()),
        1 => "[ -~]{0,16}",
    ];
    atom.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            3 => (inner.clone(), prop::sample::select(vec!["and", "or"]), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            2 => inner.clone().prop_map(|a| format!("not ({a})")),
            1 => (1usize..400).prop_map(|n| format!("{}id eq 'x'{}", "(".repeat(n), ")".repeat(n))),
        ]
    })
}

/// The attack shapes alone, so that every run sends them many times: long `in`
/// lists around the bound, cyclic `$expand` chains, deep parentheses.
fn hard_option() -> impl Strategy<Value = String> {
    prop_oneof![
        (prop::sample::select(vec!["id", "serialNumber", "displayName"]), 995usize..1003, any::<bool>()).prop_map(
            |(p, n, negated)| {
                let list = format!("{p} in ({})", vec!["'x'"; n].join(","));
                format!("$filter={}", if negated { format!("not ({list})") } else { list })
            }
        ),
        (1usize..9, any::<bool>()).prop_map(|(levels, devices_first)| {
            let names = if devices_first {
                ["assignedDevices", "deploymentProfile"]
            } else {
                ["deploymentProfile", "assignedDevices"]
            };
            let mut e = String::new();
            for i in 0..levels {
                e.push_str(names[i % 2]);
                if i + 1 < levels {
                    e.push_str("($expand=");
                }
            }
            e.push_str(&")".repeat(levels - 1));
            format!("$expand={e}")
        }),
        (90usize..120).prop_map(|n| format!("$filter={}id eq 'x'{}", "(".repeat(n), ")".repeat(n))),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let option = prop_oneof![
        3 => hard_option(),
        3 => expand().prop_map(|e| format!("$expand={e}")),
        3 => filter().prop_map(|f| format!("$filter={f}")),
        1 => prop_oneof![
            4 => prop::sample::select(vec!["id", "id,displayName", "*", "serialNumber,groupTag", "target"]).prop_map(str::to_owned),
            1 => "[a-zA-Z,/*]{0,20}",
        ]
        .prop_map(|s| format!("$select={s}")),
        1 => (0u64..200).prop_map(|n| format!("$top={n}")),
        1 => (0u64..20).prop_map(|n| format!("$skip={n}")),
        1 => Just("$count=true".to_owned()),
        1 => prop_oneof![
            4 => prop::sample::select(vec!["displayName", "id desc", "serialNumber,id", "priority desc"]).prop_map(str::to_owned),
            1 => "[a-zA-Z ,]{0,20}",
        ]
        .prop_map(|s| format!("$orderby={s}")),
        1 => "[A-Za-z0-9_-]{0,60}".prop_map(|s| format!("$skiptoken={s}")),
        1 => "[a-z$]{1,8}=[ -~]{0,10}",
    ];
    prop::collection::vec(option, 0..3).prop_map(|opts| {
        let encoded: Vec<String> = opts
            .iter()
            .map(|o| match o.split_once('=') {
                Some((k, v)) => format!("{}={}", encode(k, false), encode(v, false)),
                None => encode(o, false),
            })
            .collect();
        encoded.join("&")
    })
}

fn body() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        Just(json!({})),
        Just(json!({"displayName": "fuzz"})),
        Just(json!({"serialNumber": "SN-F"})),
        Just(
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "x", "limit": 3})
        ),
        Just(json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g"}})),
        Just(json!({"deviceIds": ["nope"]})),
        Just(json!({"priority": 2})),
        Just(
            json!({"@odata.id": "https://graph.microsoft.com/beta/deviceManagement/windowsAutopilotDeploymentProfiles('nope')"})
        ),
        Just(json!([1, 2])),
        Just(json!("text")),
        "[ -~]{0,12}".prop_map(|k| json!({ k: {"a": [null, 1.5, {"b": "c"}]} })),
    ])
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "GET", "GET", "GET", "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"])
}

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    query: String,
    body: Option<Value>,
}

fn request(ids: Vec<String>) -> impl Strategy<Value = Req> {
    (method(), path(ids), query(), body()).prop_map(|(method, path, query, body)| Req { method, path, query, body })
}

/// A `$batch` envelope of generated requests (sometimes more than 20, duplicated ids,
/// dangling or cyclic `dependsOn`, urls in every form clients send).
fn batch(ids: Vec<String>) -> impl Strategy<Value = Value> {
    let item = (request(ids), 0u8..4, prop::option::of(0u8..30), any::<bool>());
    prop::collection::vec(item, 0..24).prop_map(|items| {
        let requests: Vec<Value> = items
            .into_iter()
            .enumerate()
            .map(|(i, (r, form, dep, numeric))| {
                let rel = format!("{}{}", r.path, if r.query.is_empty() { String::new() } else { format!("?{}", r.query) });
                let url = match form {
                    0 => rel.clone(),
                    1 => rel.trim_start_matches("/beta").trim_start_matches('/').to_owned(),
                    2 => format!("https://graph.microsoft.com{rel}"),
                    _ => rel.split_once('/').map_or(rel.clone(), |(_, p)| p.to_owned()),
                };
                let mut v = json!({"id": if numeric { json!(i) } else { json!(format!("r{i}")) }, "method": r.method, "url": url});
                if let Some(b) = r.body {
                    v["body"] = b;
                    v["headers"] = json!({"Content-Type": "application/json"});
                }
                if let Some(d) = dep {
                    v["dependsOn"] = json!([format!("r{d}")]);
                }
                v
            })
            .collect();
        json!({ "requests": requests })
    })
}

// --- the properties -----------------------------------------------------------------------

fn check_error_shape(status: u16, text: &str, what: &str) -> Result<(), TestCaseError> {
    let body: Value = serde_json::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("{what}: {status} body is not JSON ({e}): {text:.300}")))?;
    let e = &body["error"];
    prop_assert!(e["code"].is_string() && e["message"].is_string(), "{what}: {status} not Graph-shaped: {text:.300}");
    prop_assert!(e["innerError"]["request-id"].is_string(), "{what}: {status} without innerError: {text:.300}");
    Ok(())
}

fn check_status(status: u16, what: &str, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500 || status == 501, "{what}: answered {status}: {text:.500}");
    Ok(())
}

fn send(s: &Server, r: &Req) -> Result<(), TestCaseError> {
    let what = format!("{} {}?{}", r.method, r.path, r.query);
    let url = if r.query.is_empty() { s.url(&r.path) } else { format!("{}?{}", s.url(&r.path), r.query) };
    let mut rb = s.raw().request(r.method.parse().unwrap(), &url);
    if let Some(b) = &r.body {
        rb = rb.header("content-type", "application/json").body(b.to_string());
    }
    let Ok(rb) = rb.build() else { return Ok(()) }; // a URL the client itself refuses
    let started = Instant::now();
    let resp = match s.raw().execute(rb) {
        Ok(r) => r,
        Err(e) if e.is_builder() => return Ok(()), // longer than a URI may be: never sent
        Err(e) => return Err(TestCaseError::fail(format!("{what}: no answer: {e}"))),
    };
    let status = resp.status().as_u16();
    let head = r.method == "HEAD";
    let text = resp.text().map_err(|e| TestCaseError::fail(format!("{what}: body: {e}")))?;
    prop_assert!(started.elapsed() < Duration::from_secs(10), "{what}: took {:?}", started.elapsed());
    prop_assert!(text.len() < 8 << 20, "{what}: {} bytes", text.len());
    check_status(status, &what, &text)?;
    if status >= 400 && !head {
        check_error_shape(status, &text, &what)?;
    }
    Ok(())
}

fn send_batch(s: &Server, version: &str, body: &Value) -> Result<(), TestCaseError> {
    let what = format!("$batch {body:.400}");
    let started = Instant::now();
    let resp = s
        .raw()
        .post(s.url(&format!("/{version}/$batch")))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .map_err(|e| TestCaseError::fail(format!("{what}: no answer: {e}")))?;
    let status = resp.status().as_u16();
    let text = resp.text().map_err(|e| TestCaseError::fail(format!("{what}: body: {e}")))?;
    prop_assert!(started.elapsed() < Duration::from_secs(30), "{what}: took {:?}", started.elapsed());
    check_status(status, &what, &text)?;
    if status != 200 {
        prop_assert_eq!(status, 400, "{}: {}", what, text);
        return check_error_shape(status, &text, &what);
    }
    let out: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
    let responses = out["responses"].as_array().cloned().unwrap_or_default();
    prop_assert_eq!(responses.len(), body["requests"].as_array().map_or(0, Vec::len), "{}", what);
    for item in responses {
        let st = u16::try_from(item["status"].as_u64().unwrap_or(0)).unwrap_or(0);
        prop_assert!((200..600).contains(&st), "{what}: item status {item}");
        check_status(st, &what, &item.to_string())?;
        prop_assert!(item["headers"].is_object(), "{what}: item headers {item}");
        if st >= 400 {
            check_error_shape(st, &item["body"].to_string(), &what)?;
        }
    }
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("ENROLLGRAPH_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    let seed: u64 = std::env::var("ENROLLGRAPH_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(18);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases, max_shrink_iters: 64, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

#[test]
fn generated_requests_and_batches_never_break_the_server() {
    let s = Server::start();
    let seeded = seed(&s);
    let started = Instant::now();
    let (n_requests, n_batches) = (cases(1000), cases(250));
    runner(n_requests).run(&request(seeded.ids.clone()), |r| send(&s, &r)).unwrap();
    let batches = (prop::sample::select(vec!["beta", "v1.0"]), batch(seeded.ids.clone()));
    runner(n_batches).run(&batches, |(v, b)| send_batch(&s, v, &b)).unwrap();
    // Still serving, and the default configurations are still there (five on beta).
    assert!(get_ok(&s, &format!("/beta/{CONFIGS}"))["value"].as_array().is_some_and(|v| !v.is_empty()));
    eprintln!("http_fuzz: {n_requests} requests and {n_batches} batches in {:?}", started.elapsed());
}
