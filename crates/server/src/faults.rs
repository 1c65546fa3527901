//! Fault injection (issue 9): rules that answer a matching request with an error status
//! (Graph-shaped, headers included), add latency, or drop the connection, by method, path
//! pattern, tenant and app; on the n-th match, for k matches, or with probability p from
//! a seeded generator, so a run with the same rules, seed and requests repeats exactly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A rule as clients write it (admin API body, `--faults-file`, `enrollgraph faults add`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// Only this method (any case); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A pattern for the whole path (`/beta/deviceManagement/...`), `*` matching any run of
    /// characters (`/` included), case-insensitive; a pattern not starting with `/` or `*`
    /// is matched as `*/` + pattern. All paths when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Only requests in this tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Only requests of this app (client id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Answer with this status (400-599).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The Graph error code (default from the status: 429 `TooManyRequests`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The problem named in the error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Retry-After` seconds (default 1 on 429 and 503; else none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Delay the request this long, then serve it (or apply a status rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Close the connection without an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<bool>,
    /// Fire with this probability (0-1) on each eligible match (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// First eligible on the n-th matching request (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
    /// Fire at most this many times, then stay inert (default: no end; with `nth` and no
    /// `times`, once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// Seed of this rule's generator (default: the server's `--faults-seed` plus the rule
    /// number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// The Graph code and status for the codes clients meet; Intune's own PascalCase codes
/// (rulings.md 8) and Graph's generic camelCase ones.
const CODES: &[(&str, u16)] = &[
    ("BadRequest", 400),
    ("invalidRequest", 400),
    ("Unauthorized", 401),
    ("InvalidAuthenticationToken", 401),
    ("unauthenticated", 401),
    ("Forbidden", 403),
    ("accessDenied", 403),
    ("NotFound", 404),
    ("ResourceNotFound", 404),
    ("itemNotFound", 404),
    ("MethodNotAllowed", 405),
    ("Conflict", 409),
    ("PreconditionFailed", 412),
    ("RequestEntityTooLarge", 413),
    ("TooManyRequests", 429),
    ("activityLimitReached", 429),
    ("InternalServerError", 500),
    ("generalException", 500),
    ("NotImplemented", 501),
    ("BadGateway", 502),
    ("ServiceUnavailable", 503),
    ("serviceNotAvailable", 503),
    ("GatewayTimeout", 504),
];

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "InvalidAuthenticationToken",
        403 => "Forbidden",
        404 => "ResourceNotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        412 => "PreconditionFailed",
        413 => "RequestEntityTooLarge",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        501 => "NotImplemented",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        s if s < 500 => "BadRequest",
        _ => "InternalServerError",
    }
}

/// What a firing rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer with a Graph error.
    Respond {
        /// HTTP status.
        status: u16,
        /// Graph error code.
        code: String,
        /// The problem, for the message.
        message: String,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Close the connection.
    Drop,
}

/// What the rules decided for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long first.
    pub latency: Duration,
    /// Then answer or drop, instead of serving.
    pub action: Option<Action>,
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and the same sequence on every
/// platform for a seed, which is all reproducible chaos needs. Its state only ever moves by
/// a constant, so one atomic add steps it without a lock.
#[derive(Debug)]
struct SplitMix64(AtomicU64);

impl SplitMix64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    fn next(&self) -> u64 {
        let mut z = self.0.fetch_add(Self::GAMMA, Ordering::Relaxed).wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The longest path pattern a rule (or a journal query) may give: longer ones are refused
/// (issue 18 item 13), so that matching stays cheap whatever the rules.
pub const MAX_PATTERN: usize = 512;

#[derive(Debug)]
struct Rule {
    id: u64,
    spec: RuleSpec,
    /// The path pattern, ASCII-lowercased.
    pattern: Option<String>,
    action: Option<Action>,
    rng: SplitMix64,
    matched: AtomicU64,
    fired: AtomicU64,
}

impl Rule {
    fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.spec).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("id".into(), Value::String(self.id.to_string()));
            m.insert("matched".into(), Value::from(self.matched.load(Ordering::Relaxed)));
            m.insert("fired".into(), Value::from(self.fired.load(Ordering::Relaxed)));
        }
        v
    }

    /// `folded_path` is the request path ASCII-lowercased.
    fn matches(&self, method: &str, folded_path: &str, tenant: &str, app: Option<&str>) -> bool {
        self.spec.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.spec.tenant.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(tenant))
            && self.spec.app.as_deref().is_none_or(|a| app.is_some_and(|x| x.eq_ignore_ascii_case(a)))
            && self.pattern.as_deref().is_none_or(|p| glob_folded(p, folded_path))
    }
}

/// `*`-only glob, ASCII case-insensitive.
#[must_use]
pub fn glob(pattern: &str, text: &str) -> bool {
    glob_folded(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

/// `*`-only glob over text already folded as the pattern is, in time linear in both: the
/// pieces between stars are found left to right, each at its first place after the last
/// (the leftmost place leaves the most text to the pieces after it, so a match exists if
/// and only if this finds one); the first piece must start the text, the last end it.
/// The backtracking matcher it replaces took time proportional to their product (issue 18
/// item 13).
fn glob_folded(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let Some(last) = pieces.next_back() else { return rest.is_empty() };
    for piece in pieces {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// A request path as patterns see it: `//` collapsed and a trailing `/` dropped, as Graph
/// serves such paths (rulings.md 12; the Python SDKs' stock base URL sends
/// `/beta//deviceManagement/...`, clients.md §0), so that `/beta/deviceManagement/*`
/// matches them too.
#[must_use]
pub fn matched_path(path: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    if !trimmed.contains("//") {
        return std::borrow::Cow::Borrowed(trimmed);
    }
    let mut out = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A path pattern as matched: leading `*/` added to a relative one, trailing `/` dropped.
#[must_use]
pub fn normalize_pattern(p: &str) -> String {
    let p = p.trim();
    let p = if p.len() > 1 { p.trim_end_matches('/') } else { p };
    if p.starts_with('/') || p.starts_with('*') { p.to_owned() } else { format!("*/{p}") }
}

fn validate(spec: &RuleSpec) -> Result<Option<Action>, String> {
    if let Some(p) = &spec.path
        && p.len() > MAX_PATTERN
    {
        return Err(format!("'path' is at most {MAX_PATTERN} characters"));
    }
    let kinds = usize::from(spec.status.is_some() || spec.code.is_some()) + usize::from(spec.drop == Some(true));
    if kinds > 1 {
        return Err("a rule answers a status or drops the connection, not both".into());
    }
    if kinds == 0 && spec.latency_ms.is_none() {
        return Err("a rule needs an action: 'status' (or 'code'), 'latencyMs' or 'drop': true".into());
    }
    if let Some(p) = spec.probability
        && !(0.0..=1.0).contains(&p)
    {
        return Err(format!("'probability' must be from 0 to 1, not {p}"));
    }
    if spec.nth == Some(0) || spec.times == Some(0) {
        return Err("'nth' and 'times' count from 1".into());
    }
    if spec.latency_ms.is_some_and(|l| l > 600_000) {
        return Err("'latencyMs' is at most 600000 (10 minutes)".into());
    }
    if spec.retry_after.is_some_and(|r| r > 86_400) {
        return Err("'retryAfter' is at most 86400 seconds".into());
    }
    if let Some(m) = &spec.method
        && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(format!("'{m}' is not an HTTP method"));
    }
    if spec.drop == Some(true) {
        return Ok(Some(Action::Drop));
    }
    let status = match (spec.status, spec.code.as_deref()) {
        (Some(s), _) if !(400..=599).contains(&s) => return Err(format!("'status' must be from 400 to 599, not {s}")),
        (Some(s), _) => s,
        (None, Some(code)) => CODES
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(code))
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("the code '{code}' has no known status; give 'status' too"))?,
        (None, None) => return Ok(None),
    };
    if let Some(code) = &spec.code
        && (code.is_empty() || code.len() > 100)
    {
        return Err("'code' must be 1 to 100 characters".into());
    }
    let code = spec.code.clone().unwrap_or_else(|| default_code(status).to_owned());
    let retry_after = spec.retry_after.or(matches!(status, 429 | 503).then_some(1));
    let message = spec.message.clone().unwrap_or_else(|| match status {
        429 => "Too many requests: the request was throttled (injected by an enrollgraph fault rule).".to_owned(),
        _ => format!("{code} (injected by an enrollgraph fault rule)."),
    });
    Ok(Some(Action::Respond { status, code, message, retry_after }))
}

/// The rule set. Requests read a snapshot of the rules (an `Arc` cloned under a lock held
/// for that clone only) and count on the rules' atomics, so no lock is held while matching;
/// changes build a new list and swap it in.
pub struct Faults {
    rules: Mutex<Arc<[Arc<Rule>]>>,
    any: AtomicBool,
    next_id: AtomicU64,
    seed: u64,
}

impl Faults {
    /// No rules; `seed` seeds rules that name none.
    #[must_use]
    pub fn new(seed: u64) -> Faults {
        Faults {
            rules: Mutex::new(Arc::from(Vec::new())),
            any: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            seed,
        }
    }

    /// True when there is a rule (the hot path's one check).
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Arc<[Arc<Rule>]> {
        match self.rules.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the list with `change` applied to a copy of it.
    fn update<T>(&self, change: impl FnOnce(&mut Vec<Arc<Rule>>) -> T) -> T {
        let mut guard = match self.rules.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut list = guard.to_vec();
        let out = change(&mut list);
        self.any.store(!list.is_empty(), Ordering::Relaxed);
        *guard = Arc::from(list);
        out
    }

    /// Adds a rule and returns it as listed.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn add(&self, spec: RuleSpec) -> Result<Value, String> {
        let action = validate(&spec)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let seed = spec.seed.unwrap_or_else(|| self.seed.wrapping_add(id));
        let pattern = spec.path.as_deref().map(|p| normalize_pattern(p).to_ascii_lowercase());
        let rule = Rule {
            id,
            spec,
            pattern,
            action,
            rng: SplitMix64(AtomicU64::new(seed)),
            matched: AtomicU64::new(0),
            fired: AtomicU64::new(0),
        };
        let view = rule.to_json();
        self.update(|list| list.push(Arc::new(rule)));
        Ok(view)
    }

    /// Adds the rules of a file: a JSON array of rules, or `{"seed": n, "rules": [...]}`
    /// (the seed then overrides `--faults-seed` for rules that name none).
    ///
    /// # Errors
    /// What is wrong, with the rule's number.
    pub fn load(&self, text: &str) -> Result<usize, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let (seed, list) = match v {
            Value::Array(a) => (None, a),
            Value::Object(mut o) => {
                let seed = o.get("seed").and_then(Value::as_u64);
                match o.remove("rules") {
                    Some(Value::Array(a)) => (seed, a),
                    _ => return Err("expected an array of rules or {\"seed\": n, \"rules\": [...]}".into()),
                }
            }
            _ => return Err("expected an array of rules or {\"seed\": n, \"rules\": [...]}".into()),
        };
        let n = list.len();
        for (i, r) in list.into_iter().enumerate() {
            let mut spec: RuleSpec = serde_json::from_value(r).map_err(|e| format!("rule {}: {e}", i + 1))?;
            if let (None, Some(s)) = (spec.seed, seed) {
                spec.seed = Some(s.wrapping_add(i as u64 + 1));
            }
            self.add(spec).map_err(|e| format!("rule {}: {e}", i + 1))?;
        }
        Ok(n)
    }

    /// Every rule with its counters.
    pub fn list(&self) -> Vec<Value> {
        self.snapshot().iter().map(|r| r.to_json()).collect()
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.update(Vec::clear);
    }

    /// Removes one rule; false when there is none with that id.
    pub fn remove(&self, id: &str) -> bool {
        self.update(|list| {
            let before = list.len();
            list.retain(|rule| rule.id.to_string() != id);
            list.len() != before
        })
    }

    /// Runs a request past every rule, in order: each matching rule counts it; latencies
    /// of firing rules add up; the first firing status or drop rule decides the answer.
    pub fn decide(&self, method: &str, path: &str, tenant: &str, app: Option<&str>) -> Decision {
        let mut d = Decision::default();
        let rules = self.snapshot();
        let path = matched_path(path).to_ascii_lowercase();
        for rule in rules.iter() {
            if !rule.matches(method, &path, tenant, app) {
                continue;
            }
            let matched = rule.matched.fetch_add(1, Ordering::Relaxed) + 1;
            let nth = rule.spec.nth.unwrap_or(1);
            let times = rule.spec.times.or(rule.spec.nth.map(|_| 1));
            if matched < nth || times.is_some_and(|t| rule.fired.load(Ordering::Relaxed) >= t) {
                continue;
            }
            if let Some(p) = rule.spec.probability
                && rule.rng.unit() >= p
            {
                continue;
            }
            // Counted only while under `times`, also when requests race for the last one.
            let limit = times.unwrap_or(u64::MAX);
            if rule.fired.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| (f < limit).then_some(f + 1)).is_err()
            {
                continue;
            }
            metrics::counter!("enrollgraph_faults_injected_total", "rule" => rule.id.to_string()).increment(1);
            if let Some(ms) = rule.spec.latency_ms {
                d.latency += Duration::from_millis(ms);
            }
            if d.action.is_none() {
                d.action.clone_from(&rule.action);
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let p = normalize_pattern("*/assignments");
        assert!(glob(&p, "/beta/deviceManagement/deviceEnrollmentConfigurations/x/assignments"));
        assert!(glob(&p, "/beta/deviceManagement/deviceEnrollmentConfigurations/x/ASSIGNMENTS"));
        assert!(!glob(&p, "/beta/deviceManagement/deviceEnrollmentConfigurations/x/assignments/y"));
        assert!(glob(&normalize_pattern("deviceManagement/*"), "/v1.0/deviceManagement/a/b"));
        assert!(glob("*", ""));
        assert!(glob("/a*b*c", "/aXbYbc"));
        assert!(!glob("/a*b*c", "/aXbYbd"));
        assert!(glob("a*", "a") && glob("*a", "a") && glob("a*a", "aa") && !glob("a*a", "a"));
        assert!(glob("**", "") && glob("a**b", "ab") && !glob("ab", "abc") && glob("ab", "AB"));
        assert!(glob("*ab*ab", "xabyab") && !glob("*ab*ab", "xab") && glob("*aab", "aaab"));
        let f = Faults::new(0);
        let _ = f.add(spec(serde_json::json!({"path": "/beta/deviceManagement/*", "status": 503})));
        for path in ["/beta//deviceManagement/x", "/beta/deviceManagement//x/", "/beta/deviceManagement/x"] {
            assert!(f.decide("GET", path, "t", None).action.is_some(), "{path}");
        }
        assert_eq!(matched_path("/"), "/");
        assert_eq!(matched_path("//a///b//"), "/a/b");
    }

    fn spec(v: Value) -> RuleSpec {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn nth_times_and_seeded_probability_repeat() {
        let f = Faults::new(7);
        assert!(f.add(spec(serde_json::json!({"status": 503, "nth": 3}))).is_ok());
        let fired: Vec<bool> = (0..5).map(|_| f.decide("GET", "/beta/x", "t", None).action.is_some()).collect();
        assert_eq!(fired, [false, false, true, false, false]);
        let run = || {
            let f = Faults::new(0);
            let _ = f.add(spec(serde_json::json!({"status": 500, "probability": 0.5, "seed": 42})));
            (0..64).map(|_| f.decide("GET", "/beta/x", "t", None).action.is_some()).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let n = a.iter().filter(|x| **x).count();
        assert!((16..=48).contains(&n), "{n} of 64");
        assert!(validate(&spec(serde_json::json!({"status": 200}))).is_err());
        assert!(validate(&spec(serde_json::json!({"status": 500, "drop": true}))).is_err());
        assert!(validate(&spec(serde_json::json!({"code": "whatever"}))).is_err());
        assert_eq!(
            validate(&spec(serde_json::json!({"code": "TooManyRequests"}))).ok().flatten(),
            Some(Action::Respond {
                status: 429,
                code: "TooManyRequests".into(),
                message: "Too many requests: the request was throttled (injected by an enrollgraph fault rule).".into(),
                retry_after: Some(1)
            })
        );
    }

    /// Issue 18 item 13: a pathological pattern against a long path is answered in linear
    /// time (the backtracking matcher took about |pattern| x |path| steps: 0.75 s a match
    /// here, unoptimised), and a pattern over the bound is refused.
    #[test]
    fn pathological_patterns_match_fast_and_long_ones_are_refused() {
        let pattern = format!("/*{}*{}b", "a".repeat(250), "a".repeat(250));
        assert!(pattern.len() <= MAX_PATTERN);
        let path = format!("/{}", "a".repeat(400_000));
        let started = std::time::Instant::now();
        for _ in 0..10 {
            assert!(!glob(&pattern, &path));
        }
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        let f = Faults::new(0);
        assert!(f.add(spec(serde_json::json!({"path": pattern, "status": 503}))).is_ok());
        let started = std::time::Instant::now();
        assert!(f.decide("GET", &path, "t", None).action.is_none());
        assert!(started.elapsed() < Duration::from_millis(200), "{:?}", started.elapsed());
        let long = format!("/{}", "a".repeat(MAX_PATTERN));
        assert_eq!(
            f.add(spec(serde_json::json!({"path": long, "status": 503}))),
            Err(format!("'path' is at most {MAX_PATTERN} characters"))
        );
    }
}
