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

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, Method};
use axum::response::Response;
use enrollgraph_csdl::{ApiVersion, Model};
use metrics::Counter;
use rustc_hash::FxHashMap;

/// The deepest Graph path (segments after the version) given its own template.
pub const MAX_DEPTH: usize = 8;

/// Distinct route templates given their own labels. The templates are schema names in
/// any order, so a client sending made-up chains of real names could otherwise grow the
/// label set (and the exporter's memory) without end; past this many, a template is
/// counted as `(unmatched)`.
pub const MAX_ROUTES: usize = 1024;

const UNMATCHED: &str = "(unmatched)";

/// The templates that are not Graph paths (`FIXED_ADMIN` is the admin API's).
const FIXED: [&str; 8] = [
    "/",
    "/health",
    "/ready",
    "/common/discovery/instance",
    "/{tenant}/oauth2/v2.0/token",
    "/{tenant}/v2.0/.well-known/openid-configuration",
    "/{tenant}/discovery/v2.0/keys",
    "/_enrollgraph",
];
const FIXED_ADMIN: u32 = 7;
/// OData's own segments.
const DOLLARS: [&str; 5] = ["$batch", "$metadata", "$ref", "$count", "$value"];

// A shape's codes: a version, `{id}`, a fixed template, a `$` segment, or a schema name
// (its number twice, plus one when a key follows it: `name({id})`).
const CODE_V1: u32 = 1;
const CODE_BETA: u32 = 2;
const CODE_ID: u32 = 3;
const CODE_FIXED: u32 = 16;
const CODE_DOLLAR: u32 = 32;
const CODE_NAME: u32 = 64;

/// A route template as numbers: the key routes are found by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    codes: [u32; MAX_DEPTH + 1],
    len: usize,
}

impl Shape {
    fn fixed(index: u32) -> Shape {
        let mut codes = [0; MAX_DEPTH + 1];
        codes[0] = CODE_FIXED + index;
        Shape { codes, len: 1 }
    }
}

/// Names longer than this are not given a template of their own (the schema's longest is
/// well under it).
const MAX_NAME: usize = 128;

/// Methods are the client's words too: any other than HTTP's own is `other` (bounded).
const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"];

/// Every byte `0x2f` (`/`) in a word: the high bit of each byte of `word` that is one.
const SLASHES: u64 = u64::from_ne_bytes([b'/'; 8]);
const LOW_SEVEN: u64 = u64::from_ne_bytes([0x7f; 8]);

/// Splits `path` at `/` into `held` (empty segments skipped) and returns how many there
/// are; `None` when there are more than `held` holds (then `held` has the first ones).
///
/// Eight bytes at a time, a word's `/`s found exactly with the classic zero-byte test on
/// `word ^ SLASHES`: a W2 path is ~190 bytes in 6 segments, and `memchr` per segment cost
/// ~55 instructions a call, a third of finding the route (callgrind, issue 16).
fn split<'a>(path: &'a str, held: &mut [&'a str; MAX_DEPTH + 1]) -> Option<usize> {
    let bytes = path.as_bytes();
    let mut n = 0;
    let mut start = 0;
    let mut cut = |end: usize| -> Option<()> {
        if end > start {
            *held.get_mut(n)? = path.get(start..end).unwrap_or_default();
            n += 1;
        }
        start = end + 1;
        Some(())
    };
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let mut base = 0;
    for word in words {
        let word = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes) ^ SLASHES;
        // High bit set exactly in the bytes of `word` that are zero (no false positives).
        let mut found = !(((word & LOW_SEVEN).wrapping_add(LOW_SEVEN)) | word | LOW_SEVEN);
        while found != 0 {
            cut(base + (found.trailing_zeros() / 8) as usize)?;
            found &= found - 1;
        }
        base += 8;
    }
    for (i, &byte) in tail.iter().enumerate() {
        if byte == b'/' {
            cut(base + i)?;
        }
    }
    cut(bytes.len())?;
    Some(n)
}

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// Set once the Prometheus recorder is installed: until then (and in a server without
/// `--metrics-address`) the facade's calls are skipped, not made into a no-op recorder.
static METRICS_ON: AtomicBool = AtomicBool::new(false);

/// Says that a recorder is installed (ops.rs, once, before the first request).
pub fn enable_metrics() {
    METRICS_ON.store(true, Ordering::Release);
}

/// What the request observer needs: the schema's names and what to do.
///
/// Its cost on a request is part of issue 16's budget (≤ 3 % of W2): the template is
/// built into a reused buffer, names are found by their exact spelling first (clients
/// copy the schema's), and a route's counters live in the route itself, so a request
/// does three relaxed atomic adds and no look-up in the exporter's registry.
pub struct Observer {
    /// Lower-cased name → its number in `names`.
    codes: FxHashMap<Box<[u8]>, u32>,
    /// The schema's spellings by length (index), each with its number in `names`: a
    /// segment is compared with the few names of its own length (a hash of every segment,
    /// most of them ids, cost more than the comparisons: callgrind, issue 16).
    exact: Vec<Vec<(&'static [u8], u32)>>,
    /// The schema's spelling of each name, by number.
    names: Vec<&'static str>,
    metrics: bool,
    log: bool,
    /// Routes live as long as the process (an observer is made once, at start; at most
    /// `MAX_ROUTES` of them): leaked, so a request holds one without counting references.
    routes: RwLock<FxHashMap<Shape, &'static Route>>,
    unmatched: &'static Route,
    /// This observer's number, so a thread's [`Recent`] path is never another's.
    serial: u64,
}

/// Where a path's id segments are (byte ranges), for [`Recent`].
struct IdSpans {
    at: [(usize, usize); MAX_DEPTH],
    n: usize,
    /// Every id segment is one [`Recent::id_like`] accepts.
    reusable: bool,
}

impl IdSpans {
    const fn new() -> IdSpans {
        IdSpans { at: [(0, 0); MAX_DEPTH], n: 0, reusable: true }
    }
}

/// The last path a thread found a route for, with its id segments: the next path of the
/// same length that differs from it only inside those segments, by ids that the shape
/// would read as ids too, has the same route. A client reads and writes one collection
/// with many ids, so most requests are answered here: ~250 instructions instead of the
/// ~1,000 of splitting the path and looking up its names (callgrind, issue 16's W2).
struct Recent {
    serial: u64,
    path: Vec<u8>,
    ids: IdSpans,
    route: &'static Route,
}

impl Recent {
    /// A segment that [`Observer::shape`] reads as an id wherever it reads this position's
    /// segment as one: its `-` at byte 8 rules out every name (and a cast, whose byte 8
    /// is `t`), it is not a `$` segment or a key predicate, and it holds no `/`, so the
    /// path splits at the same places.
    fn id_like(segment: &[u8]) -> bool {
        segment.get(8) == Some(&b'-')
            && segment.first() != Some(&b'$')
            && segment.last() != Some(&b')')
            && memchr::memchr(b'/', segment).is_none()
    }

    fn route_of(&self, serial: u64, path: &[u8]) -> Option<&'static Route> {
        if self.serial != serial || self.path.len() != path.len() {
            return None;
        }
        let mut from = 0;
        for &(start, end) in self.ids.at.get(..self.ids.n)? {
            if self.path.get(from..start)? != path.get(from..start)? || !Recent::id_like(path.get(start..end)?) {
                return None;
            }
            from = end;
        }
        (self.path.get(from..)? == path.get(from..)?).then_some(self.route)
    }
}

thread_local! {
    static RECENT: std::cell::RefCell<Option<Recent>> = const { std::cell::RefCell::new(None) };
}

/// Numbers observers (see `Observer::serial`).
static SERIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Latency bounds of `enrollgraph_http_request_duration_seconds`: nanoseconds, and the
/// `le` label Prometheus reads (seconds). A point read is well under a millisecond, a group
/// commit with fsync a few milliseconds, a slow list up to seconds.
pub const LATENCY_BOUNDS: [(u64, &str); 15] = [
    (250_000, "0.00025"),
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
    (2_500_000_000, "2.5"),
    (5_000_000_000, "5"),
    (10_000_000_000, "10"),
];

/// One method's latency on one route: a Prometheus histogram counted where it is recorded.
///
/// Not the `metrics` facade's histogram: the Prometheus exporter's pushes every sample
/// into a lock-free bucket (a crossbeam epoch pin, a timestamp read from the TSC, a new
/// block every 64 samples) and folds them into buckets once a second, ~220 instructions a
/// request and a third of what observing cost W2 (callgrind, docs/performance.md,
/// eleventh round). Here a sample is two relaxed atomic adds, and a scrape sums buckets.
struct Latency {
    /// Requests by the first bound they are within; the last counts those past every one.
    within: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    nanos: AtomicU64,
}

impl Latency {
    fn new() -> Latency {
        Latency { within: std::array::from_fn(|_| AtomicU64::new(0)), nanos: AtomicU64::new(0) }
    }

    fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // Most requests are within the first bounds: a scan from the smallest.
        let at = LATENCY_BOUNDS.iter().position(|&(bound, _)| nanos <= bound).unwrap_or(LATENCY_BOUNDS.len());
        if let Some(bucket) = self.within.get(at) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Request counters a route finds without a lock: (method, status) pairs, claimed once.
const REQUEST_SLOTS: usize = 16;

/// One (method, status) pair's request count; `key` 0 is a free slot.
struct RequestSlot {
    key: AtomicU32,
    count: AtomicU64,
}

/// A slot's key: a status is never 0, so no key is.
fn request_key(method: usize, status: u16) -> u32 {
    (u32::try_from(method).unwrap_or(0) << 16) | u32::from(status)
}

/// One route template's counters, rendered by [`render`].
struct Route {
    template: Box<str>,
    version: &'static str,
    /// (method, status) → requests. A route sees a few of each.
    requests: [RequestSlot; REQUEST_SLOTS],
    /// The pairs past the slots (a route probed with many statuses): bounded by the
    /// methods and statuses there are.
    more_requests: Mutex<Vec<(u32, u64)>>,
    /// Latency by method, made on the method's first request.
    durations: [OnceLock<Box<Latency>>; METHODS.len()],
}

impl Route {
    fn new(template: &str) -> Route {
        let version = template.split('/').nth(1).and_then(ApiVersion::parse).map_or("", |v| match v {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        });
        Route {
            template: template.into(),
            version,
            requests: std::array::from_fn(|_| RequestSlot { key: AtomicU32::new(0), count: AtomicU64::new(0) }),
            more_requests: Mutex::new(Vec::new()),
            durations: Default::default(),
        }
    }

    /// Leaked (a route lives as long as the process) and listed for [`render`].
    fn made(template: &str) -> &'static Route {
        let route: &'static Route = Box::leak(Box::new(Route::new(template)));
        if let Ok(mut all) = ROUTES_MADE.lock() {
            all.push(route);
        }
        route
    }

    fn count(&self, method: usize, status: u16) {
        let key = request_key(method, status);
        for slot in &self.requests {
            let mut held = slot.key.load(Ordering::Acquire);
            if held == 0 {
                held = match slot.key.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => key,
                    Err(other) => other,
                };
            }
            if held == key {
                slot.count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Ok(mut more) = self.more_requests.lock() {
            match more.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => more.push((key, 1)),
            }
        }
    }

    fn time(&self, method: usize, elapsed: Duration) {
        if let Some(durations) = self.durations.get(method) {
            durations.get_or_init(|| Box::new(Latency::new())).record(elapsed);
        }
    }
}

/// Every route made, in the order made: what [`render`] writes out.
static ROUTES_MADE: Mutex<Vec<&'static Route>> = Mutex::new(Vec::new());

/// A label value as Prometheus' text format quotes it.
fn escape_label(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
    } else {
        value.into()
    }
}

/// Appends the request metrics in Prometheus' text format (0.0.4) to `out`, after the
/// `metrics` facade's (ops.rs's `/metrics`): `enrollgraph_http_requests_total` and
/// `enrollgraph_http_request_duration_seconds`, labelled as they were through the facade.
/// Series are summed by their labels, so two observers in one process (each with its own
/// routes) still give one series per label set, as the format requires.
pub fn render(out: &mut String) {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    let routes: Vec<&'static Route> = ROUTES_MADE.lock().map(|all| all.clone()).unwrap_or_default();
    let mut requests: BTreeMap<(&str, &str, &str, u32), u64> = BTreeMap::new();
    let mut latencies: BTreeMap<(&str, &str), ([u64; LATENCY_BOUNDS.len() + 1], u64)> = BTreeMap::new();
    for route in &routes {
        let more = route.more_requests.lock().map(|more| more.clone()).unwrap_or_default();
        let slots =
            route.requests.iter().map(|slot| (slot.key.load(Ordering::Acquire), slot.count.load(Ordering::Relaxed)));
        for (key, count) in slots.chain(more).filter(|&(key, count)| key != 0 && count > 0) {
            let method = METHODS.get((key >> 16) as usize).copied().unwrap_or("other");
            *requests.entry((&route.template, method, route.version, key & 0xffff)).or_default() += count;
        }
        for (method, latency) in METHODS.iter().zip(&route.durations) {
            let Some(latency) = latency.get() else { continue };
            let (within, nanos) = latencies.entry((&route.template, method)).or_default();
            for (sum, bucket) in within.iter_mut().zip(&latency.within) {
                *sum += bucket.load(Ordering::Relaxed);
            }
            *nanos += latency.nanos.load(Ordering::Relaxed);
        }
    }
    if !requests.is_empty() {
        out.push_str(
            "# HELP enrollgraph_http_requests_total Requests by method, route template, status and API version.\n",
        );
        out.push_str("# TYPE enrollgraph_http_requests_total counter\n");
        for ((template, method, version, status), count) in &requests {
            let route = escape_label(template);
            let _ = writeln!(
                out,
                "enrollgraph_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\",version=\"{version}\"}} {count}"
            );
        }
        out.push('\n');
    }
    if !latencies.is_empty() {
        out.push_str(
            "# HELP enrollgraph_http_request_duration_seconds Request latency by method and route template.\n",
        );
        out.push_str("# TYPE enrollgraph_http_request_duration_seconds histogram\n");
        for ((template, method), (within, nanos)) in &latencies {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape_label(template));
            let mut below = 0u64;
            for (&(_, le), n) in LATENCY_BOUNDS.iter().zip(within) {
                below += n;
                let _ =
                    writeln!(out, "enrollgraph_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {below}");
            }
            below += within.last().copied().unwrap_or(0);
            let _ = writeln!(out, "enrollgraph_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {below}");
            #[allow(clippy::cast_precision_loss)] // for display: f64's 53 bits hold ~104 days in nanoseconds exactly
            let seconds = *nanos as f64 / 1e9;
            let _ = writeln!(out, "enrollgraph_http_request_duration_seconds_sum{{{labels}}} {seconds}");
            let _ = writeln!(out, "enrollgraph_http_request_duration_seconds_count{{{labels}}} {below}");
        }
        out.push('\n');
    }
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
        let mut codes = FxHashMap::default();
        let mut names = Vec::new();
        for version in [ApiVersion::V1, ApiVersion::Beta] {
            let Ok(doc) = roxmltree::Document::parse(model.schema(version).xml) else { continue };
            for node in doc.descendants() {
                if matches!(
                    node.tag_name().name(),
                    "EntitySet" | "Singleton" | "NavigationProperty" | "Action" | "Function"
                ) && let Some(name) = node.attribute("Name")
                    && name.len() <= MAX_NAME
                    && !codes.contains_key(name.to_ascii_lowercase().as_bytes())
                    && let Ok(code) = u32::try_from(names.len())
                {
                    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
                    codes.insert(name.to_ascii_lowercase().into_bytes().into_boxed_slice(), code);
                    names.push(leaked);
                }
            }
        }
        let longest = names.iter().map(|k| k.len()).max().unwrap_or(0);
        let mut exact = vec![Vec::new(); longest + 1];
        for (code, name) in (0u32..).zip(&names) {
            if let Some(same_length) = exact.get_mut(name.len()) {
                same_length.push((name.as_bytes(), code));
            }
        }
        Observer {
            codes,
            exact,
            names,
            metrics,
            log,
            routes: RwLock::new(FxHashMap::default()),
            unmatched: Route::made(UNMATCHED),
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The route template of `path` (see the module docs).
    #[must_use]
    pub fn template(&self, path: &str) -> String {
        self.shape(path, &mut IdSpans::new()).map_or_else(|| UNMATCHED.to_owned(), |shape| self.spell(&shape))
    }

    /// The schema's name number of `name`, if it is a name of the schema (ASCII case
    /// folded on the stack: most segments are ids, and a look-up must not allocate).
    fn name_code(&self, name: &str) -> Option<u32> {
        let bytes = name.as_bytes();
        // Ids are most other segments, and Graph's are GUIDs (or start with one): a `-`
        // where a GUID has its first one cannot be in a CSDL name (an identifier).
        if bytes.get(8) == Some(&b'-') {
            return None;
        }
        // Clients write the schema's spelling: found without folding.
        let same_length = self.exact.get(bytes.len())?;
        if let Some(&(_, code)) = same_length.iter().find(|(spelled, _)| *spelled == bytes) {
            return Some(code);
        }
        let mut folded = [0u8; MAX_NAME];
        let folded = folded.get_mut(..bytes.len())?;
        folded.copy_from_slice(bytes);
        folded.make_ascii_lowercase();
        self.codes.get(&*folded).copied()
    }

    /// The shape of `path`'s template (`None`: unmatched). A shape is a few numbers, so a
    /// request finds its route without writing the template out (issue 16's budget).
    /// `ids` is told where the id segments are.
    fn shape(&self, path: &str, ids: &mut IdSpans) -> Option<Shape> {
        let mut held = [""; MAX_DEPTH + 1];
        let Some(n) = split(path, &mut held) else {
            return (held[0] == "_enrollgraph").then(|| Shape::fixed(FIXED_ADMIN));
        };
        let segments = &held[..n];
        let fixed = match segments {
            [] => Some(0),
            ["health"] => Some(1),
            ["ready"] => Some(2),
            ["common", "discovery", "instance"] => Some(3),
            [_, "oauth2", "v2.0", "token"] => Some(4),
            [_, "v2.0", ".well-known", "openid-configuration"] => Some(5),
            [_, "discovery", "v2.0", "keys"] => Some(6),
            ["_enrollgraph", ..] => Some(FIXED_ADMIN),
            _ => None,
        };
        if let Some(fixed) = fixed {
            return Some(Shape::fixed(fixed));
        }
        let mut shape = Shape { codes: [0; MAX_DEPTH + 1], len: 1 };
        // Clients write the version as Graph does: compared whole before folding case.
        shape.codes[0] = match segments[0] {
            "beta" => CODE_BETA,
            "v1.0" => CODE_V1,
            other => match ApiVersion::parse(other)? {
                ApiVersion::V1 => CODE_V1,
                ApiVersion::Beta => CODE_BETA,
            },
        };
        let mut after_name = false;
        for (i, raw) in segments[1..].iter().enumerate() {
            let code = if raw.starts_with('$') {
                after_name = false;
                let at = DOLLARS.iter().position(|k| k.eq_ignore_ascii_case(raw))?;
                CODE_DOLLAR + u32::try_from(at).unwrap_or(0)
            } else {
                let open = if raw.ends_with(')') { memchr::memchr(b'(', raw.as_bytes()) } else { None };
                let (name, key) = match open {
                    Some(at) => (raw.get(..at).unwrap_or_default(), true),
                    None => (*raw, false),
                };
                // Only a cast starts with `m` and is longer than the namespace (a
                // comparison skipped for most segments: they are ids or other names).
                let bare = if name.len() > 16 && name.starts_with('m') {
                    name.strip_prefix("microsoft.graph.").unwrap_or(name)
                } else {
                    name
                };
                match self.name_code(bare) {
                    Some(code) => {
                        after_name = !key;
                        CODE_NAME + code * 2 + u32::from(key)
                    }
                    None if after_name && i > 0 => {
                        after_name = false;
                        let start = (raw.as_ptr() as usize).wrapping_sub(path.as_ptr() as usize);
                        match ids.at.get_mut(ids.n) {
                            Some(slot) if Recent::id_like(raw.as_bytes()) => {
                                *slot = (start, start + raw.len());
                                ids.n += 1;
                            }
                            _ => ids.reusable = false,
                        }
                        CODE_ID
                    }
                    None => return None,
                }
            };
            shape.codes[shape.len] = code;
            shape.len += 1;
        }
        Some(shape)
    }

    /// The template a shape stands for.
    fn spell(&self, shape: &Shape) -> String {
        let mut out = String::new();
        for &code in &shape.codes[..shape.len] {
            match code {
                CODE_V1 => out.push_str("/v1.0"),
                CODE_BETA => out.push_str("/beta"),
                CODE_ID => out.push_str("/{id}"),
                c if (CODE_FIXED..CODE_DOLLAR).contains(&c) => {
                    out.push_str(FIXED.get((c - CODE_FIXED) as usize).copied().unwrap_or(UNMATCHED));
                }
                c if (CODE_DOLLAR..CODE_NAME).contains(&c) => {
                    out.push('/');
                    out.push_str(DOLLARS.get((c - CODE_DOLLAR) as usize).copied().unwrap_or_default());
                }
                c => {
                    out.push('/');
                    out.push_str(self.names.get(((c - CODE_NAME) / 2) as usize).copied().unwrap_or_default());
                    if (c - CODE_NAME) % 2 == 1 {
                        out.push_str("({id})");
                    }
                }
            }
        }
        out
    }

    /// The metric handles of `path`'s route template, made on its first request; the
    /// thread's [`Recent`] path first.
    fn route(&self, path: &str) -> &'static Route {
        let recent = RECENT.with(|r| {
            r.try_borrow().ok().and_then(|r| r.as_ref().and_then(|r| r.route_of(self.serial, path.as_bytes())))
        });
        if let Some(route) = recent {
            return route;
        }
        let mut ids = IdSpans::new();
        let Some(shape) = self.shape(path, &mut ids) else { return self.unmatched };
        let route = self.route_of_shape(shape);
        if ids.reusable {
            RECENT.with(|r| {
                if let Ok(mut r) = r.try_borrow_mut() {
                    let mut kept = r.take().map_or_else(Vec::new, |old| old.path);
                    kept.clear();
                    kept.extend_from_slice(path.as_bytes());
                    *r = Some(Recent { serial: self.serial, path: kept, ids, route });
                }
            });
        }
        route
    }

    fn route_of_shape(&self, shape: Shape) -> &'static Route {
        if let Some(route) = self.routes.read().ok().and_then(|r| r.get(&shape).copied()) {
            return route;
        }
        let Ok(mut routes) = self.routes.write() else { return self.unmatched };
        if let Some(route) = routes.get(&shape) {
            return route;
        }
        if routes.len() >= MAX_ROUTES {
            return self.unmatched;
        }
        let route = Route::made(&self.spell(&shape));
        routes.insert(shape, route);
        route
    }

    fn record(&self, route: &Route, method: usize, resp: &Response, elapsed: Duration, caller: Option<&Caller>) {
        let status = resp.status().as_u16();
        if self.metrics && METRICS_ON.load(Ordering::Relaxed) {
            route.count(method, status);
            route.time(method, elapsed);
        }
        if let Some(caller) = caller {
            let header = |name: &HeaderName| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let (tenant, app_id) = caller.0.get().map_or(("", ""), |(t, a)| (t.as_str(), a.as_str()));
            tracing::info!(
                target: "enrollgraph::request",
                request_id = header(&REQUEST_ID),
                client_request_id = header(&CLIENT_REQUEST_ID),
                tenant,
                app_id,
                method = METHODS[method],
                route = &*route.template,
                status,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

/// A request being observed: from [`Observer::begin`] to [`Observer::end`].
pub struct Observation {
    started: Instant,
    route: &'static Route,
    method: usize,
    caller: Option<Caller>,
}

impl Observer {
    /// Starts observing `req` (before it is routed).
    ///
    /// The listener calls this and [`Observer::end`] around the router itself rather than
    /// through a tower layer: a layer on an axum `Router` wraps every route in another
    /// boxed, cloned service and boxes a future per request, which was most of what
    /// observing cost (issue 16's budget: ≤ 3 % of W2; callgrind, docs/performance.md).
    pub fn begin<B>(&self, req: &mut axum::http::Request<B>) -> Observation {
        let started = Instant::now();
        let route = self.route(req.uri().path());
        let method = method_index(req.method());
        // The caller is only read by the log line.
        let caller = self.log.then(|| {
            let caller = Caller::default();
            req.extensions_mut().insert(caller.clone());
            caller
        });
        Observation { started, route, method, caller }
    }

    /// Records the answer to an observed request.
    pub fn end(&self, observation: Observation, resp: &Response) {
        let Observation { started, route, method, caller } = observation;
        self.record(route, method, resp, started.elapsed(), caller.as_ref());
    }
}

/// Counts a token check (issue 16): `outcome` is `valid`, or the refusal's reason (the
/// error's variant name: a bounded set). Skipped without a recorder; each outcome's counter
/// is registered once (nearly every request adds to one).
pub fn token_checked<T>(checked: &Result<T, enrollgraph_auth::AuthError>) {
    if !METRICS_ON.load(Ordering::Relaxed) {
        return;
    }
    static OUTCOMES: RwLock<Vec<(&'static str, Counter)>> = RwLock::new(Vec::new());
    let outcome = checked.as_ref().map_or_else(enrollgraph_auth::AuthError::reason, |_| "valid");
    let counted =
        OUTCOMES.read().is_ok_and(|o| o.iter().find(|(k, _)| *k == outcome).map(|(_, c)| c.increment(1)).is_some());
    if counted {
        return;
    }
    let counter = metrics::counter!("enrollgraph_token_validations_total", "outcome" => outcome);
    counter.increment(1);
    if let Ok(mut o) = OUTCOMES.write()
        && !o.iter().any(|(k, _)| *k == outcome)
    {
        o.push((outcome, counter));
    }
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

    #[test]
    fn split_finds_every_slash_as_str_split_does() {
        // Slashes at every offset of a word, doubled, leading and trailing, beside
        // multi-byte characters (bytes ≥ 0x80 next to `/`, the zero-byte test's edge).
        let pieces = ["", "a", "é", "ab/", "//", "abcdefg", "abcdefgh", "/x/", "€/€", "\u{2f}"];
        let mut cases = Vec::new();
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    cases.push(format!("/{a}{b}/{c}{a}"));
                    cases.push(format!("{a}/{b}{c}/"));
                }
            }
        }
        cases.push(format!("/beta/{}/x", "y/".repeat(3)));
        for path in &cases {
            let want: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            let mut held = [""; MAX_DEPTH + 1];
            match split(path, &mut held) {
                Some(n) => assert_eq!(&held[..n], &want[..], "{path:?}"),
                None => {
                    assert!(want.len() > held.len(), "{path:?}");
                    assert_eq!(&held[..], &want[..held.len()], "{path:?}");
                }
            }
        }
        // Too deep: the first segments are kept, so the admin API's prefix is still seen.
        let deep = format!("/_enrollgraph{}", "/a".repeat(MAX_DEPTH + 3));
        let Ok(model) = Model::load() else { panic!("the model loads") };
        assert_eq!(Observer::new(&model, true, false).template(&deep), "/_enrollgraph");
    }

    #[test]
    fn made_up_chains_of_real_names_stay_bounded() {
        let Ok(model) = Model::load() else { panic!("the model loads") };
        let o = Observer::new(&model, true, false);
        let names = o.names.clone();
        // Chains of three real names (the trimmed schema has a few dozen): far more
        // templates than the cap.
        for a in &names {
            for b in &names {
                for c in &names {
                    let _ = o.route(&format!("/beta/{a}/{b}/{c}"));
                }
            }
        }
        assert!(names.len().pow(3) > 2 * MAX_ROUTES, "the test makes more templates than the cap");
        let held = o.routes.read().map(|r| r.len()).unwrap_or(usize::MAX);
        assert_eq!(held, MAX_ROUTES, "the cap holds");
        let past = o.route("/beta/deviceManagement/deviceEnrollmentConfigurations/x/assignments");
        assert_eq!(&*past.template, UNMATCHED, "past the cap a new template is (unmatched)");
        // Case is folded; GUID-like ids never name anything.
        assert_eq!(
            o.template("/BETA/devicemanagement/DEVICEENROLLMENTCONFIGURATIONS/0f0f0f0f-5e1e-4c71-8e00-00000000f117"),
            "/beta/deviceManagement/deviceEnrollmentConfigurations/{id}"
        );
        assert_eq!(o.template("/v1.0/0f0f0f0f-5e1e-4c71-8e00-00000000f117"), "(unmatched)");
    }

    /// A thread's last path ([`Recent`]) answers only where the full reading agrees: each
    /// id segment of a primed path replaced by every kind of segment of the same length
    /// (ids, names, casts, key predicates, `$` segments, slashes, empty segments).
    #[test]
    fn the_recent_path_gives_the_route_the_full_reading_gives() {
        let Ok(model) = Model::load() else { panic!("the model loads") };
        let o = Observer::new(&model, true, false);
        let config = "0f0f0f0f-5e1e-4c71-8e00-00000000f117_Limit";
        let assignment = "0f0f0f0f-5e1e-4c71-8e00-00000000f117";
        let primes = [
            format!("/beta/deviceManagement/deviceEnrollmentConfigurations/{config}/assignments/{assignment}"),
            format!("/v1.0/deviceManagement/deviceEnrollmentConfigurations/{config}/assignments"),
            format!(
                "/beta/deviceManagement/windowsAutopilotDeviceIdentities/{assignment}/deploymentProfile/assignments"
            ),
            "/health".to_owned(),
        ];
        // Same-length stand-ins for an id of `len` bytes.
        let stand_ins = |len: usize| -> Vec<String> {
            let fit =
                |s: &str| -> Option<String> { (s.len() <= len).then(|| format!("{s}{}", "x".repeat(len - s.len()))) };
            let mut out: Vec<String> = [
                "1f0f0f0f-5e1e-4c71-8e00-00000000f117",
                "1f0f0f0f-",
                "1f0f0f0f_5e1e",
                "assignments",
                "deviceEnrollmentConfigurations",
                "microsoft.graph.assign",
                "$count",
                "$ref",
                "1f0f0f0f-/assignments",
                "1f0f0f0f-5e1e/",
                "/1f0f0f0f-5e1e",
                "assign('1f0f0f0f-')",
                "1f0f0f0f-(x)",
                "deviceEnrollmentConfigurations('1')",
            ]
            .iter()
            .filter_map(|s| fit(s))
            .collect();
            // Exactly the length, ending as the special forms do.
            // With the `-` at byte 8 that marks an id: a key predicate on a name, a `$` segment.
            out.extend([
                format!("{})", "a".repeat(len - 1)),
                format!("${}", "a".repeat(len - 1)),
                format!("assign(x-{})", "a".repeat(len - 10)),
                format!("$1f0f0f0-{}", "a".repeat(len - 9)),
            ]);
            out.extend(["assignments", "$count", "assign"].iter().map(|n| format!("{n}{}", "/".repeat(len - n.len()))));
            out
        };
        let mut checked = 0;
        for prime in &primes {
            let mut ids = IdSpans::new();
            o.shape(prime, &mut ids);
            let spans = ids.at[..ids.n].to_vec();
            let mut variants = vec![prime.clone()];
            for &(start, end) in &spans {
                for stand_in in stand_ins(end - start) {
                    variants.push(format!("{}{stand_in}{}", &prime[..start], &prime[end..]));
                }
            }
            // A changed byte outside the ids, and another version.
            variants.push(prime.replacen("deviceManagement", "deviceManagemenT", 1));
            variants.push(prime.replacen("/beta/", "/v1.0/", 1));
            for variant in variants {
                // Primed by the prime, then asked the variant.
                o.route(prime);
                let got = &*o.route(&variant).template;
                assert_eq!(got, o.template(&variant), "{prime} then {variant}");
                checked += 1;
            }
        }
        assert!(checked > 40, "{checked}");
        // The W2 case is answered from the recent path.
        let prime = &primes[0];
        o.route(prime);
        let next = prime.replace("0f0f0f0f-5e1e-4c71-8e00-00000000f117", "2f0f0f0f-5e1e-4c71-8e00-00000000f117");
        let answered = RECENT
            .with(|r| r.borrow().as_ref().and_then(|r| r.route_of(o.serial, next.as_bytes())).map(|r| &*r.template));
        assert_eq!(answered, Some("/beta/deviceManagement/deviceEnrollmentConfigurations/{id}/assignments/{id}"));
        // Another observer's recent path is not this one's.
        let other = Observer::new(&model, true, false);
        assert!(RECENT.with(|r| r.borrow().as_ref().and_then(|r| r.route_of(other.serial, next.as_bytes())).is_none()));
    }

    /// The lines of `render`'s text that are about `template`.
    fn rendered_for(template: &str) -> Vec<String> {
        let mut text = String::new();
        render(&mut text);
        let quoted = format!("route=\"{}\"", escape_label(template));
        text.lines().filter(|l| l.contains(&quoted)).map(str::to_owned).collect()
    }

    #[test]
    fn latencies_fall_in_their_buckets_and_render_as_a_prometheus_histogram() {
        let template = "/beta/test/latencies/{id}";
        let route = Route::made(template);
        let get = 0;
        // 100 µs and exactly 250 µs (Prometheus' `le`: within the bound), 3 ms, 20 s.
        for nanos in [100_000, 250_000, 3_000_000, 20_000_000_000] {
            route.time(get, Duration::from_nanos(nanos));
        }
        let lines = rendered_for(template);
        let labels = format!("method=\"GET\",route=\"{template}\"");
        let bucket = |le: &str| format!("enrollgraph_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}");
        let want = [
            format!("{} 2", bucket("0.00025")),
            format!("{} 2", bucket("0.0025")),
            format!("{} 3", bucket("0.005")),
            format!("{} 3", bucket("10")),
            format!("{} 4", bucket("+Inf")),
            format!("enrollgraph_http_request_duration_seconds_sum{{{labels}}} 20.00335"),
            format!("enrollgraph_http_request_duration_seconds_count{{{labels}}} 4"),
        ];
        for line in &want {
            assert!(lines.contains(line), "{line} in {lines:#?}");
        }
        // Every bound once, in order, cumulative; then +Inf, sum, count.
        assert_eq!(lines.len(), LATENCY_BOUNDS.len() + 3, "{lines:#?}");
        let les: Vec<&str> = lines.iter().filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()).collect();
        let mut expected: Vec<&str> = LATENCY_BOUNDS.iter().map(|&(_, le)| le).collect();
        expected.push("+Inf");
        assert_eq!(les, expected);
        // Each `le` is the bound in seconds.
        for &(nanos, le) in &LATENCY_BOUNDS {
            #[allow(clippy::cast_precision_loss)]
            let seconds = nanos as f64 / 1e9;
            assert_eq!(le.parse::<f64>().ok(), Some(seconds), "{le}");
        }
    }

    #[test]
    fn request_counts_by_method_and_status_past_the_slots() {
        let template = "/v1.0/test/requests";
        let route = Route::made(template);
        // More pairs than there are slots: the rest are counted all the same.
        let statuses: Vec<u16> = (0..u16::try_from(REQUEST_SLOTS).unwrap_or(16) + 4).map(|i| 400 + i).collect();
        for (i, &status) in statuses.iter().enumerate() {
            for _ in 0..=i {
                route.count(2, status);
            }
        }
        route.count(7, 200);
        let lines = rendered_for(template);
        assert_eq!(lines.len(), statuses.len() + 1, "{lines:#?}");
        for (i, status) in statuses.iter().enumerate() {
            let line = format!(
                "enrollgraph_http_requests_total{{method=\"POST\",route=\"{template}\",status=\"{status}\",version=\"v1.0\"}} {}",
                i + 1
            );
            assert!(lines.contains(&line), "{line} in {lines:#?}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("enrollgraph_http_requests_total{method=\"other\"") && l.ends_with(" 1"))
        );
    }

    #[test]
    fn two_observers_routes_render_as_one_series() {
        let template = "/beta/test/twice";
        Route::made(template).count(0, 200);
        Route::made(template).count(0, 200);
        Route::made(template).time(0, Duration::from_millis(1));
        Route::made(template).time(0, Duration::from_millis(1));
        let lines = rendered_for(template);
        let counted: Vec<&String> = lines.iter().filter(|l| l.starts_with("enrollgraph_http_requests_total")).collect();
        assert_eq!(counted.len(), 1, "{lines:#?}");
        assert!(counted[0].ends_with(" 2"), "{counted:?}");
        assert!(lines.iter().any(|l| l.contains("_count{") && l.ends_with(" 2")), "{lines:#?}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
        assert_eq!(escape_label("/beta/{id}"), "/beta/{id}");
    }
}
