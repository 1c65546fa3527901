//! A real client's retry logic against the admin layer (issue 9): the Microsoft Graph
//! Python SDK (`msgraph-sdk`, its default middleware: kiota's RetryHandler) meets 429s with
//! `Retry-After` from a fault rule and from throttling, waits, retries and succeeds
//! (`tests/clients/sdk_retry_check.py`).
//!
//! The Python packages live in `<repo>/.venv` (`.ci/run`). Without it this test fails under
//! CI (env `CI` set) and is skipped elsewhere.
#![allow(clippy::unwrap_used)]

// The harness re-exports helpers this suite does not need.
#[allow(unused_imports)]
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, TENANT, TlsServer};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's Python, or `None` (after saying so) when it is missing outside CI.
fn python() -> Option<PathBuf> {
    let py = repo().join(".venv/bin/python");
    if py.is_file() {
        return Some(py);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"));
    assert!(
        !ci,
        "{} is missing; CI must create it: python3 -m venv .venv && .venv/bin/pip install -r tests/clients/requirements.txt",
        py.display()
    );
    eprintln!("skipping: run .ci/run or create .venv ({} is missing)", py.display());
    None
}

#[test]
fn msgraph_sdk_retry_handler_waits_out_injected_and_throttled_429s() {
    let Some(py) = python() else { return };
    let key = "egadm_sdk-retry-test-key";
    let s = TlsServer::start(&["--admin-key", key]);
    let mut child = Command::new(py)
        .arg(repo().join("tests/clients/sdk_retry_check.py"))
        .current_dir(repo())
        .env("BASE", &s.base)
        .env("ADMIN_KEY", key)
        .env("TENANT", TENANT)
        .env("CLIENT_ID", DEV_CLIENT_ID)
        .env("CLIENT_SECRET", DEV_CLIENT_SECRET)
        .env("REQUESTS_CA_BUNDLE", &s.ca)
        .env("SSL_CERT_FILE", &s.ca)
        .env("NO_PROXY", "localhost,127.0.0.1,::1")
        .env_remove("AZURE_AUTHORITY_HOST")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sdk_retry_check.py failed ({}):\n{stdout}\n{stderr}\nbanner:\n{}",
        out.status,
        s.banner
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
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
