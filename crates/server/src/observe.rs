//! Observing requests (issue 16): Prometheus metrics and one log line per request.
//!
//! Both are keyed by a *route template*, never the raw path: every segment of a Graph
//! path that is a name in the CSDL (an entity set, singleton, navigation property,
//! action or function of either version) is kept in the schema's spelling, every other
//! segment is `{id}`, and a key predicate `name('…')` becomes `name({id})`. A path whose
//! first segment after the version is not a schema name, that has `{id}` where no key may
//! stand (after the version, or after another `{id}`), or that is deeper than
//! [`MAX_DEPTH`] is `(unmatched)`. So the label set is bounded by the schema, whatever ids
//! and garbage clients send.
//!
//! The log line carries the request id, client-request-id, tenant, app id, method, route
//! template, status and latency: never a header value, a query string, a token, a secret,
//! a password or a body (the route template is all of the path that is logged).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::Response;
use enrollgraph_csdl::{ApiVersion, Model};

/// The deepest Graph path (segments after the version) given its own template.
pub const MAX_DEPTH: usize = 8;

/// What the request observer needs: the schema's names and what to do.
pub struct Observer {
    /// Lower-cased name → the schema's spelling.
    names: HashMap<String, &'static str>,
    metrics: bool,
    log: bool,
}

/// Who the request was served as (tenant, app id), filled in by the Graph handler once the
/// token is checked, read by the log line.
#[derive(Clone, Default)]
pub struct Caller(Arc<OnceLock<(String, String)>>);

impl Caller {
    /// Records the tenant and app id the request was served as.
    pub fn set(&self, tenant: &str, app_id: Option<&str>) {
        let _ = self.0.set((tenant.to_owned(), app_id.unwrap_or_default().to_owned()));
    }
}

impl Observer {
    /// The names of every schema version of `model`; `metrics` and `log` say what to record.
    #[must_use]
    pub fn new(model: &Model, metrics: bool, log: bool) -> Observer {
        let mut names = HashMap::new();
        for version in [ApiVersion::V1, ApiVersion::Beta] {
            let Ok(doc) = roxmltree::Document::parse(model.schema(version).xml) else { continue };
            for node in doc.descendants() {
                if matches!(
                    node.tag_name().name(),
                    "EntitySet" | "Singleton" | "NavigationProperty" | "Action" | "Function"
                ) && let Some(name) = node.attribute("Name")
                {
                    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
                    names.entry(name.to_ascii_lowercase()).or_insert(leaked);
                }
            }
        }
        Observer { names, metrics, log }
    }

    /// The route template of `path` (see the module docs).
    #[must_use]
    pub fn template(&self, path: &str) -> String {
        const UNMATCHED: &str = "(unmatched)";
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [] => return "/".into(),
            ["health" | "ready"] => return format!("/{}", segments[0]),
            ["common", "discovery", "instance"] => return "/common/discovery/instance".into(),
            [_, "oauth2", "v2.0", "token"] => return "/{tenant}/oauth2/v2.0/token".into(),
            [_, "v2.0", ".well-known", "openid-configuration"] => {
                return "/{tenant}/v2.0/.well-known/openid-configuration".into();
            }
            [_, "discovery", "v2.0", "keys"] => return "/{tenant}/discovery/v2.0/keys".into(),
            ["_enrollgraph", ..] => return "/_enrollgraph".into(),
            _ => {}
        }
        let (version, rest) = (segments[0], &segments[1..]);
        if ApiVersion::parse(version).is_none() || rest.len() > MAX_DEPTH {
            return UNMATCHED.into();
        }
        let mut out = format!("/{version}");
        let mut after_name = false;
        for (i, raw) in rest.iter().enumerate() {
            if raw.starts_with('$') {
                let known = ["$batch", "$metadata", "$ref", "$count", "$value"];
                let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(raw)) else {
                    return UNMATCHED.into();
                };
                out.push('/');
                out.push_str(k);
                after_name = false;
                continue;
            }
            let (name, key) = match raw.split_once('(') {
                Some((n, _)) => (n, true),
                None => (*raw, false),
            };
            let bare = name.strip_prefix("microsoft.graph.").unwrap_or(name);
            match self.names.get(&bare.to_ascii_lowercase()) {
                Some(canonical) => {
                    out.push('/');
                    out.push_str(canonical);
                    if key {
                        out.push_str("({id})");
                    }
                    after_name = !key;
                }
                None if after_name && i > 0 => {
                    out.push_str("/{id}");
                    after_name = false;
                }
                None => return UNMATCHED.into(),
            }
        }
        out
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

/// `router` with every request observed.
pub fn layer(router: Router, observer: Arc<Observer>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(observer, observe))
}

async fn observe(State(observer): State<Arc<Observer>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let caller = Caller::default();
    req.extensions_mut().insert(caller.clone());
    // Methods are the client's words too: any other than HTTP's own is `other` (bounded).
    let method = match *req.method() {
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE | Method::OPTIONS => {
            req.method().as_str().to_owned()
        }
        _ => "other".to_owned(),
    };
    let route = observer.template(req.uri().path());
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    if observer.metrics {
        let version = route.split('/').nth(1).filter(|v| ApiVersion::parse(v).is_some()).unwrap_or("").to_owned();
        metrics::counter!(
            "enrollgraph_http_requests_total",
            "method" => method.clone(),
            "route" => route.clone(),
            "status" => status.to_string(),
            "version" => version,
        )
        .increment(1);
        metrics::histogram!(
            "enrollgraph_http_request_duration_seconds",
            "method" => method.clone(),
            "route" => route.clone(),
        )
        .record(elapsed.as_secs_f64());
    }
    if observer.log {
        let header = |name: &HeaderName| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let (tenant, app_id) = caller.0.get().map_or(("", ""), |(t, a)| (t.as_str(), a.as_str()));
        tracing::info!(
            target: "enrollgraph::request",
            request_id = header(&REQUEST_ID),
            client_request_id = header(&CLIENT_REQUEST_ID),
            tenant,
            app_id,
            method = method.as_str(),
            route = route.as_str(),
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
    resp
}

/// Counts a token check (issue 16): `outcome` is `valid`, or the refusal's reason (the
/// error's variant name: a bounded set).
pub fn token_checked<T, E: std::fmt::Debug>(checked: &Result<T, E>) {
    let reason = match checked {
        Ok(_) => "valid".to_owned(),
        Err(e) => {
            let text = format!("{e:?}");
            text.split(['(', ' ', '{']).next().unwrap_or_default().to_owned()
        }
    };
    metrics::counter!("enrollgraph_token_validations_total", "outcome" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_keep_schema_names_and_hide_ids() {
        let Ok(model) = Model::load() else { panic!("the model loads") };
        let o = Observer::new(&model, true, true);
        let cases = [
            (
                "/v1.0/deviceManagement/deviceEnrollmentConfigurations",
                "/v1.0/deviceManagement/deviceEnrollmentConfigurations",
            ),
            (
                "/beta/deviceManagement/deviceEnrollmentConfigurations/abc-123/assignments",
                "/beta/deviceManagement/deviceEnrollmentConfigurations/{id}/assignments",
            ),
            (
                "/beta/deviceManagement/deviceEnrollmentConfigurations('x')/microsoft.graph.assign",
                "/beta/deviceManagement/deviceEnrollmentConfigurations({id})/assign",
            ),
            ("/v1.0/$batch", "/v1.0/$batch"),
            ("/v1.0/random-thing/abc", "(unmatched)"),
            ("/v1.0/deviceManagement/x/y", "(unmatched)"),
            ("/v9/deviceManagement", "(unmatched)"),
            ("/some-tenant/oauth2/v2.0/token", "/{tenant}/oauth2/v2.0/token"),
            ("/health", "/health"),
        ];
        for (path, want) in cases {
            assert_eq!(o.template(path), want, "{path}");
        }
    }
}
