//! Running as a service (issue 16): the metrics listener and the readiness probe.
//!
//! `/metrics` has a listener of its own (`--metrics-address`), not a route of the Graph
//! listener under the admin key: Prometheus scrapes without a secret in its configuration,
//! the port stays off the network clients reach (a pod's or a compose network's own
//! address), and a scrape is never throttled, fault-injected or refused by the Graph
//! listener's connection cap.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enrollgraph_store::Store;
use metrics_exporter_prometheus::PrometheusBuilder;

/// Latency buckets (seconds) of the facade's histograms (a group commit with fsync takes a
/// few milliseconds, a lock wait up to seconds): the request latency's, so that dashboards
/// can put them side by side.
const SECONDS_BUCKETS: [f64; enrollgraph_server::observe::LATENCY_BOUNDS.len()] = {
    let mut seconds = [0.0; enrollgraph_server::observe::LATENCY_BOUNDS.len()];
    let mut i = 0;
    while i < seconds.len() {
        // Exact operands, one correctly rounded division: the f64 nearest the bound's `le`.
        #[allow(clippy::cast_precision_loss)]
        let nanos = enrollgraph_server::observe::LATENCY_BOUNDS[i].0 as f64;
        seconds[i] = nanos / 1e9;
        i += 1;
    }
    seconds
};
/// Group-commit batch sizes (writes per commit; the writers take at most 512).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Installs the Prometheus recorder and serves its text at `/metrics` on `addr`; the
/// address it listens on (port 0 picks one).
///
/// # Errors
/// The recorder cannot be installed or the address cannot be bound.
pub async fn metrics_listener(addr: SocketAddr) -> Result<SocketAddr, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("enrollgraph_group_commit_batch_size".into()),
                BATCH_BUCKETS,
            )
        })
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    describe();
    enrollgraph_server::observe::enable_metrics();
    // `install_recorder` leaves the exporter's upkeep to its caller: without it, every
    // histogram sample is held until a scrape folds it into the buckets, so a server
    // nobody scrapes would grow without bound (metrics-exporter-prometheus 0.17,
    // `PrometheusBuilder::install_recorder`). Every second (the builder's own default is five):
    // at W2's rate that keeps the samples waiting to 60,000 (a few hundred KiB) instead of
    // 300,000 streaming through the cache.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let handle = Arc::new(handle);
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                let mut text = handle.render();
                // The request counters and latencies are the observer's own (observe.rs).
                enrollgraph_server::observe::render(&mut text);
                ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], text)
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    tracing::info!(address = %local, "serving metrics at /metrics");
    Ok(local)
}

/// The help texts of the metrics (Prometheus `# HELP`).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    // enrollgraph_http_requests_total and enrollgraph_http_request_duration_seconds are
    // described where they are rendered (enrollgraph_server::observe::render).
    describe_histogram!("enrollgraph_group_commit_batch_size", "Writes committed together, per backend.");
    describe_histogram!(
        "enrollgraph_group_commit_seconds",
        metrics::Unit::Seconds,
        "Duration of a group commit's transaction (with its fsync), per backend."
    );
    describe_gauge!("enrollgraph_pg_pool_connections", "PostgreSQL read connections by state (in_use, idle).");
    describe_histogram!(
        "enrollgraph_pg_lock_wait_seconds",
        metrics::Unit::Seconds,
        "Time a PostgreSQL writer waited for its tenants' advisory locks."
    );
    describe_counter!("enrollgraph_token_validations_total", "Bearer token checks by outcome (valid or the reason).");
    describe_counter!("enrollgraph_throttled_total", "Requests refused by throttling, by rule.");
    describe_counter!("enrollgraph_faults_injected_total", "Faults injected, by rule.");
    describe_gauge!("enrollgraph_journal_bytes", "Bytes held by the request journal.");
}

/// `/ready`: `200` when the store answers and its schema is this binary's migration, else a
/// Graph-shaped `503` (orchestrators take the replica out of rotation; `/health` stays up).
pub async fn ready(store: Arc<dyn Store>) -> Response {
    let checked = tokio::task::spawn_blocking(move || store.ready()).await;
    let json = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    match checked {
        Ok(Ok(())) => (StatusCode::OK, json, r#"{"status":"ready"}"#).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            let body = serde_json::json!({"error": {"code": "ServiceUnavailable", "message": "The database is not reachable or not migrated."}});
            (StatusCode::SERVICE_UNAVAILABLE, json, body.to_string()).into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json,
            r#"{"error":{"code":"ServiceUnavailable","message":"The readiness check failed."}}"#,
        )
            .into_response(),
    }
}

/// `enrollgraph health`: `Ok` when `url` answers `200` within 3 seconds.
///
/// # Errors
/// No answer, or another status.
pub async fn probe(url: &str) -> Result<(), String> {
    let client =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build().map_err(|e| e.to_string())?;
    let status = client.get(url).send().await.map_err(|e| format!("{url}: {e}"))?.status();
    if status == reqwest::StatusCode::OK { Ok(()) } else { Err(format!("{url}: {status}")) }
}
