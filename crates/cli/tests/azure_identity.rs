//! A real client against the built-in token endpoint: Python azure-identity's
//! `ClientSecretCredential` (sync, over msal; and async, over aiohttp) gets a token from
//! `enrollgraph serve --tls` and calls Graph with it (`tests/clients/azure_identity_check.py`,
//! shared reference clients.md §2b).
//!
//! The Python packages live in `<repo>/.venv` (`.ci/run`: `python3 -m venv .venv &&
//! .venv/bin/pip install -r tests/clients/requirements.txt`). Without it these tests fail
//! under CI (env `CI` set) and are skipped elsewhere.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, TENANT, TlsServer, Value, json};

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

/// Runs `azure_identity_check.py` against `s` with the dev app; `mode` is sync, async or both.
/// Panics with the script's output unless it exits 0.
fn run_check(py: &PathBuf, s: &TlsServer, mode: &str) {
    let mut child = Command::new(py)
        .arg(repo().join("tests/clients/azure_identity_check.py"))
        .current_dir(repo())
        .env("AUTHORITY", &s.base)
        .env("TENANT", TENANT)
        .env("CLIENT_ID", DEV_CLIENT_ID)
        .env("CLIENT_SECRET", DEV_CLIENT_SECRET)
        .env("GRAPH_URL", s.url("/beta"))
        .env("REQUESTS_CA_BUNDLE", &s.ca)
        .env("SSL_CERT_FILE", &s.ca)
        .env("MODE", mode)
        .env("NO_PROXY", "localhost,127.0.0.1,::1")
        .env_remove("AZURE_AUTHORITY_HOST")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
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
        "azure_identity_check.py ({mode}) failed ({}):\n{stdout}\n{stderr}\nserver banner:\n{}",
        out.status,
        s.banner
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn sync_client_secret_credential_gets_a_token_and_calls_graph() {
    let Some(py) = python() else { return };
    let s = TlsServer::start(&[]);
    run_check(&py, &s, "sync");
}

#[test]
fn async_client_secret_credential_gets_a_token_and_calls_graph() {
    // The async credential posts to {authority}/{tenant}/oauth2/v2.0/token directly (no
    // discovery), so it does not meet the discovery bug above.
    let Some(py) = python() else { return };
    let s = TlsServer::start(&[]);
    run_check(&py, &s, "async");
}

#[test]
fn both_credentials_work_with_an_explicit_public_url() {
    // With --public-url the discovery document is right, and msal's whole flow works: nothing
    // else (instance discovery, client_info, x-client-* headers) is needed from the server.
    let Some(py) = python() else { return };
    let port = common::free_port().to_string();
    let public = format!("https://localhost:{port}");
    let s = TlsServer::start(&["--port", &port, "--public-url", &public]);
    assert_eq!(s.base, public);
    run_check(&py, &s, "both");
}

/// `curl` with the server's CA, or `None` (after saying so) when there is no curl.
fn curl(s: &TlsServer, args: &[&str], path: &str) -> Option<String> {
    let out = match Command::new("curl").args(["-sS", "--cacert"]).arg(&s.ca).args(args).arg(s.url(path)).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipping: no curl ({e})");
            return None;
        }
    };
    assert!(out.status.success(), "curl {args:?} {path}: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

fn discovery(s: &TlsServer, args: &[&str]) -> Option<Value> {
    let text = curl(s, args, &format!("/{TENANT}/v2.0/.well-known/openid-configuration"))?;
    Some(serde_json::from_str(&text).unwrap())
}

#[test]
fn discovery_over_tls_names_the_https_origin() {
    let s = TlsServer::start(&[]);
    let Some(d) = discovery(&s, &["--http1.1"]) else { return };
    let want = json!({
        "token_endpoint": s.url(&format!("/{TENANT}/oauth2/v2.0/token")),
        "authorization_endpoint": s.url(&format!("/{TENANT}/oauth2/v2.0/authorize")),
        "jwks_uri": s.url(&format!("/{TENANT}/discovery/v2.0/keys")),
    });
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&d[k], v, "{k}: {d}");
    }
}

#[test]
fn discovery_over_http2_keeps_the_port() {
    let s = TlsServer::start(&[]);
    let Some(d) = discovery(&s, &["--http2"]) else { return };
    let endpoint = d["token_endpoint"].as_str().unwrap();
    let port = s.base.rsplit(':').next().unwrap();
    assert!(endpoint.contains(&format!("localhost:{port}/")), "HTTP/2 lost the port: {endpoint}");
}
