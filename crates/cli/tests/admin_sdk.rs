//! A real client's retry logic against the admin layer (issue 9): the Microsoft Graph
//! Python SDK (`msgraph-sdk`, its default middleware: kiota's RetryHandler) meets 429s with
//! `Retry-After` from a fault rule and from throttling, waits, retries and succeeds
//! (`tests/clients/sdk_retry_check.py`).
//!
//! The Python packages live in `<repo>/.venv` (`.ci/run`). Without it this test fails under
//! CI (env `CI` set) and is skipped elsewhere.
#![allow(clippy::unwrap_used)]

#[path = "support/clients.rs"]
mod clients;
// The harness re-exports helpers this suite does not need.
#[allow(unused_imports)]
mod common;

use std::process::Command;
use std::time::Duration;

use clients::{python, repo, run_script};
use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, TENANT, TlsServer};

#[test]
fn msgraph_sdk_retry_handler_waits_out_injected_and_throttled_429s() {
    let Some(py) = python() else { return };
    let key = "egadm_sdk-retry-test-key";
    let s = TlsServer::start(&["--admin-key", key]);
    let envs = [
        ("BASE", s.base.clone()),
        ("ADMIN_KEY", key.to_owned()),
        ("TENANT", TENANT.to_owned()),
        ("CLIENT_ID", DEV_CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", DEV_CLIENT_SECRET.to_owned()),
        ("REQUESTS_CA_BUNDLE", s.ca.display().to_string()),
        ("SSL_CERT_FILE", s.ca.display().to_string()),
    ];
    let context = format!("banner:\n{}", s.banner);
    run_script(&py, &["tests/clients/sdk_retry_check.py"], &envs, Duration::from_secs(180), &context);
}

#[test]
fn the_readme_example_suite_passes() {
    let Some(py) = python() else { return };
    let key = "egadm_example-suite-key";
    let s = common::Server::start_with(&["--admin-key", key]);
    let out = Command::new(py)
        .args(["-m", "unittest", "-v", "tests/clients/examples/test_enrollgraph_example.py"])
        .current_dir(repo())
        .env("ENROLLGRAPH_URL", &s.base)
        .env("ENROLLGRAPH_ADMIN_KEY", key)
        .env("NO_PROXY", "localhost,127.0.0.1,::1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the example suite failed:\n{stderr}");
    assert!(stderr.contains("Ran 3 tests"), "{stderr}");
}
