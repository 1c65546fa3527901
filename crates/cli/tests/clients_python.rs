//! Conformance: the published Python Graph SDKs, unmodified (msgraph-beta-sdk for beta,
//! msgraph-sdk for v1.0, pinned in tests/clients/requirements.txt), authenticated with
//! azure-identity's `ClientSecretCredential` against `enrollgraph serve --tls`'s own token
//! endpoint, with only the base URL changed (`tests/clients/sdk_suite.py`: create, list with
//! the SDK's PageIterator, get, update, delete; every target and filter type; `assign`,
//! `setPriority`; `$select`, `$filter`, `$expand`; errors as `ODataError`).
#![allow(clippy::unwrap_used)]

#[path = "support/clients.rs"]
mod clients;
#[allow(unused_imports)] // not every re-export of the harness is used here
mod common;
#[path = "support/proxy_server.rs"]
mod proxy_server;

use std::time::Duration;

use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, TENANT, TlsServer};

/// The server's page size: small, so that every list the suite reads spans several pages.
const PAGE_SIZE: &str = "3";

#[test]
fn msgraph_sdks_create_list_update_delete_assign_and_query() {
    let Some(py) = clients::python() else { return };
    let s = TlsServer::start(&["--page-size", PAGE_SIZE]);
    let out = clients::run_script(
        &py,
        &["tests/clients/sdk_suite.py"],
        &[
            ("AUTHORITY", s.base.clone()),
            ("TENANT", TENANT.to_owned()),
            ("CLIENT_ID", DEV_CLIENT_ID.to_owned()),
            ("CLIENT_SECRET", DEV_CLIENT_SECRET.to_owned()),
            ("PAGE_SIZE", PAGE_SIZE.to_owned()),
            ("SSL_CERT_FILE", s.ca.display().to_string()),
            ("REQUESTS_CA_BUNDLE", s.ca.display().to_string()),
        ],
        Duration::from_secs(300),
        &s.banner,
    );
    // Each part of the suite ran (a section that raised is a failed check, but make sure no
    // section was skipped silently).
    for section in
        ["== enrollment configurations", "== Apple user-initiated profiles", "== Autopilot", "== v1.0 (msgraph-sdk)"]
    {
        assert!(out.stdout.contains(section), "{section} did not run:\n{}", out.stdout);
    }
    let checks = out.stdout.lines().filter(|l| l.starts_with("ok: ")).count();
    assert!(checks >= 90, "only {checks} checks ran:\n{}", out.stdout);
}

/// The same suite with every client's defaults (https://graph.microsoft.com, the public
/// authority `login.microsoftonline.com` with instance discovery): only HTTPS_PROXY and the
/// CA variables point them at `serve --proxy` (issue 14).
#[test]
fn msgraph_sdks_with_their_default_hosts_through_the_proxy() {
    let Some(py) = clients::python() else { return };
    let s = proxy_server::ProxyServer::start(&["--page-size", PAGE_SIZE]);
    let out = clients::run_script(
        &py,
        &["tests/clients/sdk_suite.py"],
        &[
            ("AUTHORITY", String::new()),
            ("TENANT", TENANT.to_owned()),
            ("CLIENT_ID", DEV_CLIENT_ID.to_owned()),
            ("CLIENT_SECRET", DEV_CLIENT_SECRET.to_owned()),
            ("PAGE_SIZE", PAGE_SIZE.to_owned()),
            ("HTTPS_PROXY", s.proxy.clone()),
            ("SSL_CERT_FILE", s.ca.display().to_string()),
            ("REQUESTS_CA_BUNDLE", s.ca.display().to_string()),
        ],
        Duration::from_secs(300),
        "sdk_suite.py through the proxy",
    );
    for section in
        ["== enrollment configurations", "== Apple user-initiated profiles", "== Autopilot", "== v1.0 (msgraph-sdk)"]
    {
        assert!(out.stdout.contains(section), "{section} did not run:\n{}", out.stdout);
    }
    let checks = out.stdout.lines().filter(|l| l.starts_with("ok: ")).count();
    assert!(checks >= 90, "only {checks} checks ran:\n{}", out.stdout);
    // Every request went through the proxy: the journal holds Graph requests named by the
    // public host's paths, and the direct listener was never asked.
    assert!(s.journal().iter().any(|e| e["path"].as_str().is_some_and(|p| p.starts_with("/beta/"))));
}

/// Issue 14: azure-identity's `CertificateCredential` and MSAL Python's confidential client
/// with a certificate, each with its default authority (login.microsoftonline.com, instance
/// discovery on), through the proxy with only environment variables set.
#[test]
fn certificate_credentials_with_their_default_authority_through_the_proxy() {
    let Some(py) = clients::python() else { return };
    let s = proxy_server::ProxyServer::start(&[]);
    clients::run_script(
        &py,
        &["tests/clients/certificate_check.py"],
        &[
            ("AUTHORITY", String::new()),
            ("ADMIN_URL", s.base.clone()),
            ("ADMIN_KEY", proxy_server::ADMIN_KEY.to_owned()),
            ("TENANT", TENANT.to_owned()),
            ("GRAPH_URL", "https://graph.microsoft.com/beta".to_owned()),
            ("HTTPS_PROXY", s.proxy.clone()),
            ("SSL_CERT_FILE", s.ca.display().to_string()),
            ("REQUESTS_CA_BUNDLE", s.ca.display().to_string()),
        ],
        Duration::from_secs(180),
        "certificate_check.py through the proxy",
    );
    // The sign-ins went through the proxy to the intercepted login host.
    assert!(
        s.journal().iter().any(|e| e["path"].as_str().is_some_and(|p| p.ends_with("/oauth2/v2.0/token"))),
        "no token request reached the server through the proxy"
    );
}
