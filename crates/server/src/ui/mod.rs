//! The inspector (issue 15): a web UI under `/_enrollgraph/ui`, its assets embedded in the
//! binary (no CDN, no Node.js at run time). It signs in with the admin key once, through a
//! form, and then carries a random session id in an `HttpOnly`, `SameSite=Strict` cookie
//! (never the key: sessions live in this process's memory and expire). Where the admin API
//! is open (`--admin-auth off`, loopback only) the inspector is open too.
//!
//! It keeps no data model of its own: its pages read the admin API's answers, passed
//! through [`crate::admin::answer`] under `/_enrollgraph/ui/api/...` (GET only, plus a
//! tenant's reset), and render them in the browser with `textContent` (no HTML is built
//! from data). The live journal is a server-sent event stream woken by the journal only
//! while someone watches (journal.rs `subscribe`): the Graph path pays nothing otherwise.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::journal::Filter;

/// The inspector's path.
pub const UI: &str = "/_enrollgraph/ui";

/// The session cookie's name.
const COOKIE: &str = "enrollgraph_ui";

/// How long a sign-in lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Sessions kept at most (each needs the admin key to make; the oldest goes first).
const MAX_SESSIONS: usize = 256;

/// Scripts and styles only from this origin, never inline: text from a tenant's data that
/// slipped into markup could not run (the pages build no markup from data anyway).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The embedded assets, by the only names served (a name not in this list is a 404: no
/// path is ever joined to a directory).
const ASSETS: [(&str, &str, &str); 3] = [
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("signin.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
];

const INDEX: &str = include_str!("assets/index.html");
const SIGNIN: &str = include_str!("assets/signin.html");

/// Signed-in sessions: random id → when it expires.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    fn create(&self) -> String {
        let id = format!("{}{}", enrollgraph_auth::generate_secret(), enrollgraph_auth::generate_secret());
        let now = Instant::now();
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, until| *until > now);
            if m.len() >= MAX_SESSIONS
                && let Some(oldest) = m.iter().min_by_key(|(_, until)| **until).map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
            m.insert(id.clone(), now + SESSION_TTL);
        }
        id
    }

    fn valid(&self, id: &str) -> bool {
        let now = Instant::now();
        self.map.lock().is_ok_and(|m| m.get(id).is_some_and(|until| *until > now))
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }

    /// Ends every session now (tests of expiry).
    #[doc(hidden)]
    pub fn expire_all(&self) {
        if let Ok(mut m) = self.map.lock() {
            let past = Instant::now();
            for until in m.values_mut() {
                *until = past;
            }
        }
    }
}

/// Whether `path` is the inspector's.
pub(crate) fn is_ui(path: &str) -> bool {
    path.strip_prefix(UI).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    state.controls.key.is_none() || session_id(headers).is_some_and(|id| state.controls.ui.valid(id))
}

/// A POST from a page of this origin: browsers send `Origin` on every POST, and a page of
/// another site cannot make it this origin (with `SameSite=Strict` the cookie is not sent
/// cross-site either; this holds even where a browser ignores `SameSite`).
fn same_origin(state: &AppState, parts: &axum::http::request::Parts) -> bool {
    let own = crate::base_url(state, &parts.headers, &parts.uri);
    parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).is_some_and(|o| o == own)
}

fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it a form POST carries `Origin: null`, which the CSRF check
    // refuses; `same-origin` sends nothing to other sites all the same.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

fn html(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], text).into_response()
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.to_string()).into_response()
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Escapes text for HTML (the sign-in page's one message).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn signin_page(status: StatusCode, message: &str) -> Response {
    let note = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message))
    };
    html(status, SIGNIN.replace("<!--message-->", &note))
}

/// Everything under `/_enrollgraph/ui`.
pub(crate) async fn handle(state: &AppState, req: Request) -> Response {
    secure(route(state, req).await)
}

async fn route(state: &AppState, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let rest = parts.uri.path().strip_prefix(UI).unwrap_or_default().to_owned();
    let m = parts.method.clone();
    let ok = signed_in(state, &parts.headers);
    match (rest.as_str(), m) {
        ("", Method::GET) => see_other(&format!("{UI}/")),
        ("/", Method::GET) if ok => html(StatusCode::OK, INDEX.to_owned()),
        ("/", Method::GET) => see_other(&format!("{UI}/signin")),
        ("/signin", Method::GET) if state.controls.key.is_none() => see_other(&format!("{UI}/")),
        ("/signin", Method::GET) => signin_page(StatusCode::OK, ""),
        ("/signin", Method::POST) => signin(state, &parts, body).await,
        ("/signout", Method::POST) if !same_origin(state, &parts) => {
            json_error(StatusCode::FORBIDDEN, "Forbidden", "A POST must come from the inspector's own pages.")
        }
        ("/signout", Method::POST) => {
            if let Some(id) = session_id(&parts.headers) {
                state.controls.ui.remove(id);
            }
            let mut r = see_other(&format!("{UI}/signin"));
            r.headers_mut().insert(header::SET_COOKIE, cookie(state, "", 0));
            r
        }
        (p, Method::GET) if p.starts_with("/assets/") => {
            let name = &p["/assets/".len()..];
            match ASSETS.iter().find(|(n, _, _)| *n == name) {
                // The sign-in page's style is public; the app's script needs a session.
                Some((n, ct, text)) if ok || *n == "signin.css" => {
                    let mut r =
                        (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(ct))], *text).into_response();
                    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                    r
                }
                Some(_) => json_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Sign in to the inspector first."),
                None => json_error(StatusCode::NOT_FOUND, "NotFound", "There is no such asset."),
            }
        }
        (p, _) if p.starts_with("/api/") && !ok => {
            json_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Sign in to the inspector first.")
        }
        ("/api/live", Method::GET) => live(state, parts.uri.query().unwrap_or_default()),
        (p, Method::GET) if p.starts_with("/api/") => {
            let admin_path = &p["/api".len()..];
            pass_through(state, &parts, admin_path, &[]).await
        }
        (p, Method::POST) if p.starts_with("/api/") => {
            let admin_path = &p["/api".len()..];
            let segs: Vec<&str> = admin_path.split('/').filter(|s| !s.is_empty()).collect();
            if !matches!(segs.as_slice(), ["tenants", _, "reset"]) {
                return json_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "The inspector is read-only.");
            }
            if !same_origin(state, &parts) {
                return json_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "A POST must come from the inspector's own pages.",
                );
            }
            pass_through(state, &parts, admin_path, &[]).await
        }
        (p, _) if p.starts_with("/api/") => {
            json_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "The inspector is read-only.")
        }
        _ if !ok => see_other(&format!("{UI}/signin")),
        _ => json_error(StatusCode::NOT_FOUND, "NotFound", "Nothing is served here."),
    }
}

/// The admin API's answer for `admin_path` (and this request's query).
async fn pass_through(state: &AppState, parts: &axum::http::request::Parts, admin_path: &str, body: &[u8]) -> Response {
    let uri = match parts.uri.query() {
        Some(q) => format!("{}{admin_path}?{q}", crate::admin::PREFIX),
        None => format!("{}{admin_path}", crate::admin::PREFIX),
    };
    let Ok(req) = Request::builder().method(parts.method.clone()).uri(uri).body(()) else {
        return json_error(StatusCode::BAD_REQUEST, "BadRequest", "The path is not valid.");
    };
    let (mut inner, ()) = req.into_parts();
    inner.headers = parts.headers.clone();
    crate::admin::answer(state, &inner, body).await
}

fn cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.scheme == "https" { "; Secure" } else { "" };
    let text = format!("{COOKIE}={value}; Path={UI}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("enrollgraph_ui=; Max-Age=0"))
}

async fn signin(state: &AppState, parts: &axum::http::request::Parts, body: Body) -> Response {
    if !same_origin(state, parts) {
        return signin_page(StatusCode::FORBIDDEN, "Sign in from the inspector's own sign-in page.");
    }
    let Some(hash) = &state.controls.key else { return see_other(&format!("{UI}/")) };
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024).await else {
        return signin_page(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let key = form_urlencoded::parse(&bytes).find(|(k, _)| k == "key").map(|(_, v)| v.into_owned());
    // PBKDF2 off the async workers, as the token endpoint hashes, under the admin API's
    // failed-guess limits (SECURITY.md "Guessing").
    let peer = crate::admin::peer_of(&parts.extensions);
    let checked = match key {
        Some(k) if !k.is_empty() && k.len() <= 1024 => {
            let (state, hash) = (state.clone(), hash.clone());
            tokio::task::spawn_blocking(move || crate::admin::guess_admin_key(&state, peer, k.trim(), &hash))
                .await
                .unwrap_or(Err(crate::admin::KeyRefused::Wrong))
        }
        _ => Err(crate::admin::KeyRefused::Wrong),
    };
    match checked {
        Ok(()) => {}
        Err(crate::admin::KeyRefused::Throttled(wait)) => {
            let mut r = signin_page(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many wrong admin keys; try again in {wait} seconds."),
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return r;
        }
        Err(crate::admin::KeyRefused::Wrong) => return signin_page(StatusCode::FORBIDDEN, "The admin key is wrong."),
    }
    let id = state.controls.ui.create();
    let mut r = see_other(&format!("{UI}/"));
    r.headers_mut().insert(header::SET_COOKIE, cookie(state, &id, SESSION_TTL.as_secs()));
    r
}

/// `GET /_enrollgraph/ui/api/live?after=N&tenant=...` (the journal's filters): the journal's
/// new entries as server-sent events, one `entry` event each, from after sequence `N`.
fn live(state: &AppState, query: &str) -> Response {
    let mut after = 0u64;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "after" {
            match v.parse() {
                Ok(n) => after = n,
                Err(_) => return json_error(StatusCode::BAD_REQUEST, "BadRequest", "'after' must be a whole number."),
            }
        } else {
            rest.append_pair(&k, &v);
        }
    }
    let filter = match Filter::parse(&rest.finish()) {
        Ok(f) => f,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "BadRequest", &e),
    };
    let controls = state.controls.clone();
    let rx = controls.journal.subscribe();
    let stream = futures_util::stream::unfold(
        (controls, rx, filter, after, std::collections::VecDeque::<serde_json::Value>::new()),
        |(controls, mut rx, filter, mut after, mut pending)| async move {
            loop {
                if let Some(e) = pending.pop_front() {
                    let ev = Event::default().event("entry").data(e.to_string());
                    return Some((Ok::<Event, std::convert::Infallible>(ev), (controls, rx, filter, after, pending)));
                }
                let fresh = controls.journal.query_after(&filter, after);
                if let Some(last) = fresh.last().and_then(|e| e["sequence"].as_u64()) {
                    after = last;
                    pending.extend(fresh);
                    continue;
                }
                // The sender lives as long as the journal: an error means the server stops.
                rx.changed().await.ok()?;
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_by_its_exact_id() {
        let s = Sessions::default();
        let id = s.create();
        assert!(id.len() >= 64);
        assert!(s.valid(&id));
        assert!(!s.valid(&id[..id.len() - 1]));
        assert!(!s.valid(""));
        s.expire_all();
        assert!(!s.valid(&id), "an expired session still opens the inspector");
        // Making a session drops the expired ones.
        let _ = s.create();
        assert_eq!(s.map.lock().unwrap().len(), 1);
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.create();
        for _ in 0..MAX_SESSIONS {
            let _ = s.create();
        }
        assert_eq!(s.map.lock().unwrap().len(), MAX_SESSIONS);
        assert!(!s.valid(&first), "the oldest session goes first");
    }

    #[test]
    fn only_the_inspector_paths_are_its() {
        assert!(is_ui("/_enrollgraph/ui"));
        assert!(is_ui("/_enrollgraph/ui/api/tenants"));
        assert!(!is_ui("/_enrollgraph/uix"));
        assert!(!is_ui("/_enrollgraph/tenants"));
    }

    #[test]
    fn the_cookie_is_read_by_its_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; enrollgraph_uix=2; enrollgraph_ui=abc"));
        assert_eq!(session_id(&h), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("xenrollgraph_ui=abc"));
        assert_eq!(session_id(&h), None);
    }
}
