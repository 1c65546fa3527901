//! Conformance: the published JavaScript client `@microsoft/microsoft-graph-client` 3.0.7
//! (npm, unmodified; `tests/clients/js/package-lock.json`, installed by `.ci/run` with
//! `npm ci --prefix tests/clients/js`) against `enrollgraph serve --tls`: create, list with its
//! PageIterator, get, update, delete, actions, query options, and a JSON `$batch` built with
//! `BatchRequestContent` (with `dependsOn`) read with `BatchResponseContent`
//! (`tests/clients/js/suite.mjs`). Over https because the client attaches `Authorization`
//! only there (shared reference clients.md §3).
#![allow(clippy::unwrap_used)]

#[path = "support/clients.rs"]
mod clients;
#[allow(unused_imports)] // not every re-export of the harness is used here
mod common;
#[path = "support/proxy_server.rs"]
mod proxy_server;

use std::path::PathBuf;
use std::time::Duration;

use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, TENANT, TlsServer};

#[test]
fn microsoft_graph_client_crud_paging_actions_and_batch() {
    if clients::node_modules().is_none() {
        return;
    }
    let s = TlsServer::start(&["--page-size", "3"]);
    let out = clients::run_script(
        &PathBuf::from("node"),
        &["tests/clients/js/suite.mjs"],
        &[
            ("AUTHORITY", s.base.clone()),
            ("TENANT", TENANT.to_owned()),
            ("CLIENT_ID", DEV_CLIENT_ID.to_owned()),
            ("CLIENT_SECRET", DEV_CLIENT_SECRET.to_owned()),
            ("NODE_EXTRA_CA_CERTS", s.ca.display().to_string()),
        ],
        Duration::from_secs(180),
        &s.banner,
    );
    assert!(out.stdout.contains("ok: per-request statuses: [201,200,200,200,404,424]"), "{}", out.stdout);
    let checks = out.stdout.lines().filter(|l| l.starts_with("ok: ")).count();
    assert!(checks >= 34, "only {checks} checks ran:\n{}", out.stdout);
}

/// The same suite with the client's default base URL (`https://graph.microsoft.com`) and the
/// public token endpoint, through `serve --proxy`: HTTPS_PROXY, NODE_EXTRA_CA_CERTS and
/// undici's `EnvHttpProxyAgent` preloaded (`tests/clients/js/proxy-env.mjs`: Node 20's fetch
/// reads no proxy variable itself), issue 14.
#[test]
fn microsoft_graph_client_with_its_default_base_url_through_the_proxy() {
    if clients::node_modules().is_none() {
        return;
    }
    let s = proxy_server::ProxyServer::start(&["--page-size", "3"]);
    let out = clients::run_script(
        &PathBuf::from("node"),
        &["--import", "./tests/clients/js/proxy-env.mjs", "tests/clients/js/suite.mjs"],
        &[
            ("AUTHORITY", String::new()),
            ("TENANT", TENANT.to_owned()),
            ("CLIENT_ID", DEV_CLIENT_ID.to_owned()),
            ("CLIENT_SECRET", DEV_CLIENT_SECRET.to_owned()),
            ("HTTPS_PROXY", s.proxy.clone()),
            ("NODE_EXTRA_CA_CERTS", s.ca.display().to_string()),
        ],
        Duration::from_secs(180),
        "suite.mjs through the proxy",
    );
    assert!(out.stdout.contains("ok: per-request statuses: [201,200,200,200,404,424]"), "{}", out.stdout);
    let checks = out.stdout.lines().filter(|l| l.starts_with("ok: ")).count();
    assert!(checks >= 34, "only {checks} checks ran:\n{}", out.stdout);
    assert!(s.journal().iter().any(|e| e["path"].as_str().is_some_and(|p| p.starts_with("/beta/"))));
}
