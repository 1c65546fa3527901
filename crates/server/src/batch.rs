//! JSON batching (`POST /{version}/$batch`, OData JSON Format §19 as Graph implements it):
//! up to 20 requests, `dependsOn` (and `depends_on`, sent by msgraph-core Python), a `424`
//! for a request whose dependency failed, and a `headers` object on every response
//! (IntuneCD reads it: clients.md §0). Each request runs through the same service path as
//! a standalone one.

use std::collections::HashMap;

use enrollgraph_csdl::ApiVersion;
use enrollgraph_service::{Body as ServiceBody, Method, Request, ServiceError};
use serde_json::{Map, Value, json};

use crate::error::HttpError;
use crate::{AppState, GRAPH_JSON, RequestIds};

/// Graph's limit on requests in one batch.
const MAX_REQUESTS: usize = 20;

struct Item {
    id: String,
    method: Method,
    url: String,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn bad(msg: impl Into<String>) -> HttpError {
    HttpError::Service(ServiceError::BadQuery(msg.into()))
}

/// The id as a string: clients send numbers too (IntuneCD).
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse(body: Option<&Value>) -> Result<Vec<Item>, HttpError> {
    let requests = body
        .and_then(|b| b.get("requests"))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("The batch request body must be a JSON object with a 'requests' array."))?;
    if requests.is_empty() {
        return Err(bad("The batch request must contain at least one request."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(bad(format!("The number of requests in a batch exceeds the limit of {MAX_REQUESTS}.")));
    }
    let mut items: Vec<Item> = Vec::with_capacity(requests.len());
    for r in requests {
        let id = id_text(r.get("id")).ok_or_else(|| bad("Each batch request needs an 'id'."))?;
        if items.iter().any(|i| i.id.eq_ignore_ascii_case(&id)) {
            return Err(bad(format!("The batch request id '{id}' is not unique.")));
        }
        let method = match r.get("method").and_then(Value::as_str).map(str::to_ascii_uppercase).as_deref() {
            Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            Some("PATCH") => Method::Patch,
            Some("PUT") => Method::Put,
            Some("DELETE") => Method::Delete,
            Some(other) => Method::Other(other.to_owned()),
            None => return Err(bad(format!("The batch request '{id}' needs a 'method'."))),
        };
        let url = r
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("The batch request '{id}' needs a 'url'.")))?;
        let body = r.get("body").filter(|b| !b.is_null()).cloned();
        if body.is_some() {
            let has_type = r
                .get("headers")
                .and_then(Value::as_object)
                .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type")));
            if !has_type {
                return Err(bad(format!("The batch request '{id}' has a body but no Content-Type header.")));
            }
        }
        let deps = r.get("dependsOn").or_else(|| r.get("depends_on"));
        let depends_on: Vec<String> = match deps {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().filter_map(|v| id_text(Some(v))).collect(),
            Some(_) => return Err(bad(format!("'dependsOn' of batch request '{id}' must be an array of ids."))),
        };
        for d in &depends_on {
            if !items.iter().any(|i| i.id.eq_ignore_ascii_case(d)) {
                return Err(bad(format!(
                    "The batch request '{id}' depends on '{d}', which is not an earlier request of the batch."
                )));
            }
        }
        items.push(Item { id, method, url: url.to_owned(), body, depends_on });
    }
    Ok(items)
}

/// Splits a sub-request URL into (version, path, query): relative with or without a
/// leading `/`, with or without the version segment, or absolute (clients.md §0).
fn split_url(url: &str, default: ApiVersion) -> (ApiVersion, String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r.split_once('/').map_or("", |(_, p)| p));
    let rest = rest.trim_start_matches('/');
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (first, after) = path.split_once('/').unwrap_or((path, ""));
    match ApiVersion::parse(first) {
        Some(v) => (v, after.to_owned(), query.to_owned()),
        None => (default, path.to_owned(), query.to_owned()),
    }
}

/// Runs a batch in `tenant`; `authorize` checks each request as if sent alone.
pub(crate) async fn run(
    state: &AppState,
    version: ApiVersion,
    (tenant, app): (&str, Option<&str>),
    base_url: &str,
    body: Option<&Value>,
    authorize: &(dyn Fn(&Method, &str) -> Result<(), HttpError> + Sync),
    ids: &RequestIds,
) -> Result<Value, HttpError> {
    let items = parse(body)?;
    let (mut answered, max_bytes) = (0usize, state.service.config().max_answer_bytes);
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::with_capacity(items.len());
    for item in items {
        let sub_ids = RequestIds { request_id: uuid::Uuid::new_v4().to_string(), url: item.url.clone(), ..ids.clone() };
        let failed_dep = item
            .depends_on
            .iter()
            .any(|d| statuses.get(&d.to_ascii_lowercase()).is_none_or(|s| !(200..300).contains(s)));
        let (status, headers, body) = if failed_dep {
            let e = HttpError::FailedDependency;
            error_parts(e, &sub_ids)
        } else {
            let (v, path, query) = split_url(&item.url, version);
            let gate = match authorize(&item.method, &path) {
                Err(e) => Some(e),
                // Throttling and faults count each request of a batch on its own.
                Ok(()) if state.controls.active() => {
                    let full = format!("/{}/{}", v.as_str(), path);
                    crate::admin::batch_item_gate(state, tenant, app, item.method.as_str(), &full).await
                }
                Ok(()) => None,
            };
            let outcome = match gate {
                Some(e) => Err(e),
                None => {
                    let req = Request {
                        method: item.method.clone(),
                        version: v,
                        path,
                        query,
                        body: item.body.clone(),
                        tenant: tenant.to_owned(),
                        base_url: base_url.to_owned(),
                    };
                    state.service.handle(req).await.map_err(HttpError::from)
                }
            };
            // The answers of one batch share one bound (issue 18 item 1): twenty lists each
            // just under it would otherwise make one answer twenty times larger.
            let outcome = outcome.and_then(|resp| {
                let size = match &resp.body {
                    ServiceBody::Raw(text) => text.len(),
                    _ => 0,
                };
                let total = answered.saturating_add(size);
                if total > max_bytes {
                    return Err(HttpError::Service(enrollgraph_service::ServiceError::answer_too_large(max_bytes)));
                }
                answered = total;
                Ok(resp)
            });
            match outcome {
                Ok(resp) => {
                    let mut headers = Map::new();
                    if let Some(loc) = resp.location {
                        headers.insert("Location".into(), Value::String(loc));
                    }
                    let body = match resp.body {
                        ServiceBody::Empty => None,
                        ServiceBody::Json(v) => {
                            headers.insert("Content-Type".into(), Value::String(GRAPH_JSON.into()));
                            Some(v)
                        }
                        ServiceBody::Raw(text) => {
                            headers.insert("Content-Type".into(), Value::String(GRAPH_JSON.into()));
                            serde_json::from_str(&text).ok()
                        }
                        ServiceBody::Text(t) => {
                            headers.insert("Content-Type".into(), Value::String("text/plain".into()));
                            Some(Value::String(t))
                        }
                    };
                    (resp.status, headers, body)
                }
                Err(e) => error_parts(e, &sub_ids),
            }
        };
        statuses.insert(item.id.to_ascii_lowercase(), status);
        let mut out = json!({"id": item.id, "status": status, "headers": headers});
        if let (Some(b), Some(obj)) = (body, out.as_object_mut()) {
            obj.insert("body".into(), b);
        }
        responses.push(out);
    }
    Ok(json!({"responses": responses}))
}

fn error_parts(e: HttpError, ids: &RequestIds) -> (u16, Map<String, Value>, Option<Value>) {
    let (status, body, extra) = e.graph_body(ids);
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), Value::String("application/json".into()));
    if let Some((name, value)) = extra {
        // Graph spells it so in batch responses (clients look it up case-sensitively in JSON).
        let key =
            if name == axum::http::header::RETRY_AFTER { "Retry-After".to_owned() } else { name.as_str().to_owned() };
        headers.insert(key, Value::String(value));
    }
    (status.as_u16(), headers, Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_every_form_clients_send() {
        for url in [
            "deviceManagement/x?$top=1",
            "/deviceManagement/x?$top=1",
            "/beta/deviceManagement/x?$top=1",
            "http://127.0.0.1:5080/beta/deviceManagement/x?$top=1",
        ] {
            let (v, p, q) = split_url(url, ApiVersion::Beta);
            assert_eq!((v, p.as_str(), q.as_str()), (ApiVersion::Beta, "deviceManagement/x", "$top=1"), "{url}");
        }
        assert_eq!(split_url("/v1.0/deviceManagement", ApiVersion::Beta).0, ApiVersion::V1);
    }

    #[test]
    fn malformed_batches_are_refused_whole() {
        assert!(parse(None).is_err());
        assert!(parse(Some(&json!({"requests": []}))).is_err());
        let many: Vec<Value> = (0..21).map(|i| json!({"id": i, "method": "GET", "url": "x"})).collect();
        assert!(parse(Some(&json!({"requests": many}))).is_err());
        assert!(parse(Some(&json!({"requests": [{"id": "1", "method": "GET", "url": "a"}, {"id": "1", "method": "GET", "url": "b"}]}))).is_err());
        assert!(parse(Some(&json!({"requests": [{"id": "1", "method": "POST", "url": "a", "body": {}}]}))).is_err());
        assert!(
            parse(Some(&json!({"requests": [{"id": "2", "method": "GET", "url": "a", "dependsOn": ["1"]}]}))).is_err()
        );
        let ok = parse(Some(&json!({"requests": [{"id": 1, "method": "get", "url": "a"}, {"id": "2", "method": "GET", "url": "b", "depends_on": [1]}]}))).unwrap_or_default();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].depends_on, ["1"]);
    }
}
