//! The request journal (issue 9): the last N requests per tenant, so a test can assert
//! what its code sent. Bounded: N entries per tenant, [`MAX_TENANTS`] tenants (the one
//! written least recently is dropped), bodies cut at [`MAX_BODY`] bytes. Never holds a
//! secret: `Authorization`, cookies and the admin key header are left out, and secret
//! fields of token-endpoint forms (`client_secret`, `password`, assertions, codes,
//! refresh tokens) are replaced by `REDACTED`.
//!
//! Off by default: keeping it costs a copy of every request's headers and body and a
//! lock on the hot path, which the performance targets measure, and it retains request
//! bodies the user did not ask to keep. Tests turn it on with `--journal on` or through
//! the admin API.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Tenants with a journal at once.
pub const MAX_TENANTS: usize = 1024;
/// Bytes of a body kept.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest per-tenant size the settings accept.
pub const MAX_SIZE: usize = 10_000;

/// Headers never journaled (credentials).
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-admin-key"];
/// Token-endpoint form fields whose values are secrets.
const SECRET_FIELDS: &[&str] =
    &["client_secret", "password", "client_assertion", "assertion", "refresh_token", "code", "code_verifier"];

/// One journaled request.
#[derive(Debug, Clone)]
pub struct Entry {
    sequence: u64,
    time: OffsetDateTime,
    tenant: String,
    app: Option<String>,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    body_truncated: bool,
    status: u16,
    duration_ms: f64,
    request_id: Option<String>,
    client_request_id: Option<String>,
}

/// What a request was, for [`Journal::record`].
pub struct Record<'a> {
    /// The tenant it ran in.
    pub tenant: &'a str,
    /// The calling app, when a token said.
    pub app: Option<&'a str>,
    /// Method.
    pub method: &'a str,
    /// Path, as sent.
    pub path: &'a str,
    /// Query string, as sent.
    pub query: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Request body.
    pub body: &'a [u8],
    /// True for a form-encoded token-endpoint body (secret fields are redacted).
    pub token_form: bool,
    /// Response status.
    pub status: u16,
    /// Time taken, milliseconds.
    pub duration_ms: f64,
    /// The response's `request-id`.
    pub request_id: Option<String>,
    /// The response's `client-request-id`.
    pub client_request_id: Option<String>,
}

struct Inner {
    next: u64,
    tenants: HashMap<String, VecDeque<Entry>>,
}

/// The journal.
pub struct Journal {
    enabled: AtomicBool,
    size: AtomicUsize,
    inner: Mutex<Inner>,
}

/// A query over the journal (admin API `GET /_enrollgraph/journal?...`).
#[derive(Debug, Default)]
pub struct Filter {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only this method (any case).
    pub method: Option<String>,
    /// Only paths matching this pattern (as fault rules match).
    pub path: Option<String>,
    /// Only this status (`429`) or class (`4xx`).
    pub status: Option<String>,
    /// Only requests at or after this time (RFC 3339).
    pub since: Option<OffsetDateTime>,
    /// Only requests before this time (RFC 3339).
    pub until: Option<OffsetDateTime>,
}

impl Filter {
    /// Reads the admin API's query string.
    ///
    /// # Errors
    /// A message naming the bad parameter.
    pub fn parse(query: &str) -> Result<Filter, String> {
        let mut f = Filter::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let time = |v: &str| {
                OffsetDateTime::parse(v, &Rfc3339).map_err(|_| format!("'{k}' must be an RFC 3339 time, not '{v}'"))
            };
            match k.as_ref() {
                "tenant" => f.tenant = Some(v.into_owned()),
                "method" => f.method = Some(v.into_owned()),
                "path" => f.path = Some(crate::faults::normalize_pattern(&v)),
                "status" => {
                    let ok = v.len() == 3
                        && (v.bytes().all(|b| b.is_ascii_digit())
                            || (v.as_bytes()[0].is_ascii_digit() && v[1..].eq_ignore_ascii_case("xx")));
                    if !ok {
                        return Err(format!("'status' must be a status (429) or a class (4xx), not '{v}'"));
                    }
                    f.status = Some(v.to_ascii_lowercase());
                }
                "since" => f.since = Some(time(&v)?),
                "until" => f.until = Some(time(&v)?),
                other => {
                    return Err(format!("unknown parameter '{other}' (tenant, method, path, status, since, until)"));
                }
            }
        }
        Ok(f)
    }

    fn keeps(&self, e: &Entry) -> bool {
        self.tenant.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(&e.tenant))
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&e.method))
            && self.path.as_deref().is_none_or(|p| crate::faults::glob(p, &crate::faults::matched_path(&e.path)))
            && self.status.as_deref().is_none_or(|s| {
                let have = e.status.to_string();
                if s.ends_with("xx") { have.as_bytes()[0] == s.as_bytes()[0] } else { have == s }
            })
            && self.since.is_none_or(|t| e.time >= t)
            && self.until.is_none_or(|t| e.time < t)
    }
}

fn redact_form(body: &[u8]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(body) {
        // A name no form field has (a JSON body sent here, `{"client_secret":"..."}`, parses
        // as one long name) may itself hold a secret: it goes too.
        let plain = !k.is_empty()
            && k.len() <= 64
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !plain {
            out.append_pair("REDACTED", "REDACTED");
            continue;
        }
        let secret = SECRET_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(&k));
        out.append_pair(&k, if secret { "REDACTED" } else { &v });
    }
    out.finish()
}

impl Entry {
    fn to_json(&self) -> Value {
        let mut headers = Map::new();
        for (k, v) in &self.headers {
            match headers.get_mut(k) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(v);
                }
                _ => {
                    headers.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        json!({
            "sequence": self.sequence,
            "time": self.time.format(&Rfc3339).unwrap_or_default(),
            "tenant": self.tenant,
            "app": self.app,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers,
            "body": self.body,
            "bodyTruncated": self.body_truncated,
            "status": self.status,
            "durationMs": (self.duration_ms * 1000.0).round() / 1000.0,
            "requestId": self.request_id,
            "clientRequestId": self.client_request_id,
        })
    }
}

impl Journal {
    /// A journal keeping `size` requests per tenant, on or off.
    #[must_use]
    pub fn new(enabled: bool, size: usize) -> Journal {
        Journal {
            enabled: AtomicBool::new(enabled),
            size: AtomicUsize::new(size.clamp(1, MAX_SIZE)),
            inner: Mutex::new(Inner { next: 1, tenants: HashMap::new() }),
        }
    }

    /// Whether requests are recorded (the hot path's one check).
    pub fn is_on(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The settings, as the admin API shows them.
    pub fn settings(&self) -> Value {
        json!({"enabled": self.is_on(), "size": self.size.load(Ordering::Relaxed)})
    }

    /// Changes the settings (`{"enabled": bool, "size": n}`, either optional); a smaller
    /// size drops the oldest entries.
    ///
    /// # Errors
    /// What is wrong with the body.
    pub fn configure(&self, v: &Value) -> Result<(), String> {
        let obj = v.as_object().ok_or("the body must be a JSON object")?;
        if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "enabled" | "size")) {
            return Err(format!("unknown property '{k}' (enabled, size)"));
        }
        let enabled = match obj.get("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err("'enabled' must be true or false".into()),
        };
        let size = match obj.get("size") {
            None => None,
            Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if (1..=MAX_SIZE).contains(&n) => Some(n),
                _ => return Err(format!("'size' must be a whole number from 1 to {MAX_SIZE}")),
            },
        };
        if let Some(n) = size {
            self.size.store(n, Ordering::Relaxed);
            if let Ok(mut inner) = self.inner.lock() {
                for q in inner.tenants.values_mut() {
                    while q.len() > n {
                        q.pop_front();
                    }
                }
            }
        }
        if let Some(b) = enabled {
            self.enabled.store(b, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Records one request.
    pub fn record(&self, r: &Record<'_>) {
        let headers = r
            .headers
            .iter()
            .filter(|(k, _)| !SECRET_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let (body, body_truncated) = if r.body.is_empty() {
            (None, false)
        } else if r.token_form {
            // The serializer writes ASCII only, so any byte is a character boundary.
            let form = redact_form(r.body);
            let cut = form.len() > MAX_BODY;
            (Some(form.get(..MAX_BODY).unwrap_or(&form).to_owned()), cut)
        } else {
            let cut = &r.body[..r.body.len().min(MAX_BODY)];
            (Some(String::from_utf8_lossy(cut).into_owned()), cut.len() < r.body.len())
        };
        let size = self.size.load(Ordering::Relaxed);
        let Ok(mut inner) = self.inner.lock() else { return };
        let sequence = inner.next;
        inner.next += 1;
        let entry = Entry {
            sequence,
            time: OffsetDateTime::now_utc(),
            tenant: r.tenant.to_owned(),
            app: r.app.map(str::to_owned),
            method: r.method.to_owned(),
            path: r.path.to_owned(),
            query: r.query.to_owned(),
            headers,
            body,
            body_truncated,
            status: r.status,
            duration_ms: r.duration_ms,
            request_id: r.request_id.clone(),
            client_request_id: r.client_request_id.clone(),
        };
        if !inner.tenants.contains_key(r.tenant) && inner.tenants.len() >= MAX_TENANTS {
            let oldest =
                inner.tenants.iter().min_by_key(|(_, q)| q.back().map_or(0, |e| e.sequence)).map(|(t, _)| t.clone());
            if let Some(t) = oldest {
                inner.tenants.remove(&t);
            }
        }
        let q = inner.tenants.entry(r.tenant.to_owned()).or_default();
        q.push_back(entry);
        while q.len() > size {
            q.pop_front();
        }
    }

    /// Entries that pass `filter`, oldest first.
    pub fn query(&self, filter: &Filter) -> Vec<Value> {
        let Ok(inner) = self.inner.lock() else { return Vec::new() };
        let mut hits: Vec<&Entry> = inner.tenants.values().flatten().filter(|e| filter.keeps(e)).collect();
        hits.sort_by_key(|e| e.sequence);
        hits.into_iter().map(Entry::to_json).collect()
    }

    /// Removes the entries of one tenant, or all; returns how many.
    pub fn clear(&self, tenant: Option<&str>) -> usize {
        let Ok(mut inner) = self.inner.lock() else { return 0 };
        match tenant {
            // As `query` matches tenants: without regard to case (tenant ids are GUIDs).
            Some(t) => {
                let mut n = 0;
                inner.tenants.retain(|k, q| {
                    let hit = k.eq_ignore_ascii_case(t);
                    n += if hit { q.len() } else { 0 };
                    !hit
                });
                n
            }
            None => {
                let n = inner.tenants.values().map(VecDeque::len).sum();
                inner.tenants.clear();
                n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token request as the journal is given it.
    fn token_request<'a>(headers: &'a HeaderMap, body: &'a [u8], status: u16) -> Record<'a> {
        Record {
            tenant: "t",
            app: None,
            method: "POST",
            path: "/t/oauth2/v2.0/token",
            query: "",
            headers,
            body,
            token_form: true,
            status,
            duration_ms: 1.0,
            request_id: None,
            client_request_id: None,
        }
    }

    #[test]
    fn secrets_never_reach_the_journal() {
        let j = Journal::new(true, 2);
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer x".parse().unwrap_or(axum::http::HeaderValue::from_static("")));
        h.insert("content-type", axum::http::HeaderValue::from_static("application/x-www-form-urlencoded"));
        let body = b"grant_type=client_credentials&client_id=a&client_secret=s3cr%21t&scope=x";
        for status in [200, 400, 401] {
            j.record(&token_request(&h, body, status));
        }
        let all = j.query(&Filter::default());
        assert_eq!(all.len(), 2, "bounded");
        assert_eq!(all[0]["status"], 400);
        let text = all[0].to_string();
        assert!(!text.contains("s3cr") && !text.contains("Bearer"), "{text}");
        assert_eq!(all[0]["body"], "grant_type=client_credentials&client_id=a&client_secret=REDACTED&scope=x");
        assert_eq!(j.query(&Filter::parse("status=4xx").unwrap_or_default()).len(), 2);
        assert_eq!(j.query(&Filter::parse("status=401&method=post").unwrap_or_default()).len(), 1);
        assert!(Filter::parse("status=4x").is_err());
        assert!(Filter::parse("since=yesterday").is_err());
        assert_eq!(j.clear(Some("T")), 2, "cleared as queried: any case");
        assert_eq!(j.query(&Filter::default()).len(), 0);
    }

    #[test]
    fn a_token_body_in_another_shape_keeps_no_secret_and_is_cut() {
        let j = Journal::new(true, 10);
        let h = HeaderMap::new();
        let long = format!("grant_type=client_credentials&client_id={}", "a".repeat(2 * MAX_BODY));
        for body in [
            r#"{"client_secret":"s3cr3t-json","grant_type":"client_credentials"}"#.as_bytes(),
            b"CLIENT_SECRET=s3cr3t-upper&grant_type=client_credentials",
            b"client_secret%3Ds3cr3t-encoded=1",
            long.as_bytes(),
        ] {
            j.record(&token_request(&h, body, 400));
        }
        let all = j.query(&Filter::default());
        let text = serde_json::to_string(&all).unwrap_or_default();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(all[0]["body"], "REDACTED=REDACTED");
        assert_eq!(all[1]["body"], "CLIENT_SECRET=REDACTED&grant_type=client_credentials");
        assert_eq!(all[3]["body"].as_str().map(str::len), Some(MAX_BODY));
        assert_eq!(all[3]["bodyTruncated"], true);
    }
}
