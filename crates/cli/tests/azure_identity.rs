//! A real client against the built-in token endpoint: Python azure-identity's
//! `ClientSecretCredential` (sync, over msal; and async, over aiohttp) gets a token from
//! `enrollgraph serve --tls` and calls Graph with it (`tests/clients/azure_identity_check.py`,
//! shared reference clients.md §2b).
//!
//! The Python packages live in `<repo>/.venv` (`.ci/run`: `python3 -m venv .venv &&
//! .venv/bin/pip install -r tests/clients/requirements.txt`). Without it these tests fail
//! under CI (env `CI` set) and are skipped elsewhere.
#![allow(clippy::unwrap_used)]

#[path = "support/clients.rs"]
mod clients;
mod common;

use std::process::Command;
use std::time::Duration;

use clients::{python, run_script};
use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, TENANT, TlsServer, Value, json};

/// Runs `azure_identity_check.py` against `s` with the dev app; `mode` is sync, async or both.
fn run_check(py: &std::path::Path, s: &TlsServer, mode: &str) {
    let envs = [
        ("AUTHORITY", s.base.clone()),
        ("TENANT", TENANT.to_owned()),
        ("CLIENT_ID", DEV_CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", DEV_CLIENT_SECRET.to_owned()),
        ("GRAPH_URL", s.url("/beta")),
        ("REQUESTS_CA_BUNDLE", s.ca.display().to_string()),
        ("SSL_CERT_FILE", s.ca.display().to_string()),
        ("MODE", mode.to_owned()),
    ];
    let context = format!("mode {mode}; server banner:\n{}", s.banner);
    run_script(py, &["tests/clients/azure_identity_check.py"], &envs, Duration::from_secs(120), &context);
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

#[test]
fn certificate_credential_and_msal_with_a_certificate_get_tokens_and_call_graph() {
    // issue 14: azure-identity's CertificateCredential (sync, with and without the x5c
    // chain; async) and MSAL Python's confidential client sign RFC 7523 client assertions.
    let Some(py) = python() else { return };
    let key = "egadm_certificate-check-key";
    let s = TlsServer::start(&["--admin-key", key]);
    let envs = [
        ("AUTHORITY", s.base.clone()),
        ("TENANT", TENANT.to_owned()),
        ("ADMIN_KEY", key.to_owned()),
        ("GRAPH_URL", s.url("/beta")),
        ("REQUESTS_CA_BUNDLE", s.ca.display().to_string()),
        ("SSL_CERT_FILE", s.ca.display().to_string()),
    ];
    let context = format!("server banner:\n{}", s.banner);
    run_script(&py, &["tests/clients/certificate_check.py"], &envs, Duration::from_secs(120), &context);
}
