//! Throttling as Intune does it (graph-behaviours.md "Paging, batch, throttling"): token
//! buckets per tenant and per (tenant, app), for writes and for any request. Over a limit
//! the request gets `429 TooManyRequests` with `Retry-After` in seconds, and the bucket
//! refuses everything until that time has passed (a client that retries early is refused
//! again, as the issue asks).
//!
//! Buckets live in this process's memory: with several replicas each holds its own, so
//! the limits hold per replica (README "Throttling"). Sharing them would cost a database
//! round trip on every request, on the path the performance targets measure; a suite that
//! tests throttling talks to one process (or divides custom limits by the replicas).
//!
//! Arithmetic is in integers (one token = `window_ms` units, refilled at `capacity` units
//! per millisecond), so that with the manual clock the 201st write of a window is refused
//! exactly, never one early or late through rounding.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use serde_json::{Value, json};

/// Limits per window; `None` = no limit for that bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Writes per tenant.
    pub tenant_writes: Option<u64>,
    /// Writes per (tenant, app).
    pub app_writes: Option<u64>,
    /// Any request per tenant.
    pub tenant_requests: Option<u64>,
    /// Any request per (tenant, app).
    pub app_requests: Option<u64>,
    /// The window the limits count over, milliseconds.
    pub window_ms: u64,
}

impl Limits {
    /// Intune's published limits for these resources (graph-behaviours.md).
    pub const GRAPH: Limits = Limits {
        tenant_writes: Some(200),
        app_writes: Some(100),
        tenant_requests: Some(2000),
        app_requests: Some(1000),
        window_ms: 20_000,
    };
}

/// A throttling mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No throttling (the default for local development).
    Off,
    /// [`Limits::GRAPH`].
    Graph,
    /// Other limits.
    Custom(Limits),
}

impl Mode {
    fn limits(self) -> Option<Limits> {
        match self {
            Mode::Off => None,
            Mode::Graph => Some(Limits::GRAPH),
            Mode::Custom(l) => Some(l),
        }
    }

    /// Parses the flag form: `off`, `graph`, or `key=value` pairs separated by commas
    /// (`tenant-writes=10,app-writes=5,tenant-requests=100,app-requests=50,window=20`;
    /// a missing key is no limit, the window defaults to 20 seconds).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text.trim() {
            "off" => return Ok(Mode::Off),
            "graph" => return Ok(Mode::Graph),
            _ => {}
        }
        let mut l = Limits {
            tenant_writes: None,
            app_writes: None,
            tenant_requests: None,
            app_requests: None,
            window_ms: 20_000,
        };
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| format!("'{pair}' is not key=value"))?;
            let n: u64 = v.trim().parse().map_err(|_| format!("'{v}' is not a whole number"))?;
            if n == 0 {
                return Err(format!("'{k}' must be at least 1"));
            }
            match k.trim() {
                "tenant-writes" => l.tenant_writes = Some(n),
                "app-writes" => l.app_writes = Some(n),
                "tenant-requests" => l.tenant_requests = Some(n),
                "app-requests" => l.app_requests = Some(n),
                // The admin API's bound too: a day.
                "window" if n <= 86_400 => l.window_ms = n * 1000,
                "window" => return Err(format!("'window' is at most 86400 seconds, not {n}")),
                other => {
                    return Err(format!(
                        "unknown limit '{other}' (tenant-writes, app-writes, tenant-requests, app-requests, window)"
                    ));
                }
            }
        }
        Ok(Mode::Custom(l))
    }

    /// The admin API's form.
    #[must_use]
    pub fn to_json(self) -> Value {
        match self {
            Mode::Off => json!({"mode": "off"}),
            Mode::Graph => json!({"mode": "graph"}),
            Mode::Custom(l) => json!({
                "mode": "custom",
                "tenantWrites": l.tenant_writes,
                "appWrites": l.app_writes,
                "tenantRequests": l.tenant_requests,
                "appRequests": l.app_requests,
                "windowSeconds": l.window_ms as f64 / 1000.0,
            }),
        }
    }

    /// Reads the admin API's form: `{"mode":"off"|"graph"}` or `{"mode":"custom",
    /// "tenantWrites":n, "appWrites":n, "tenantRequests":n, "appRequests":n, "windowSeconds":s}`.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn from_json(v: &Value) -> Result<Mode, String> {
        let obj = v.as_object().ok_or("the body must be a JSON object")?;
        let mode = obj.get("mode").and_then(Value::as_str).ok_or("'mode' (off, graph or custom) is required")?;
        const KEYS: [&str; 6] = ["mode", "tenantWrites", "appWrites", "tenantRequests", "appRequests", "windowSeconds"];
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!("unknown property '{k}' (known: {})", KEYS.join(", ")));
        }
        match mode {
            "off" | "graph" if obj.len() > 1 => Err(format!("limits are only given with mode 'custom', not '{mode}'")),
            "off" => Ok(Mode::Off),
            "graph" => Ok(Mode::Graph),
            "custom" => {
                let count = |k: &str| -> Result<Option<u64>, String> {
                    match obj.get(k) {
                        None | Some(Value::Null) => Ok(None),
                        Some(v) => match v.as_u64() {
                            Some(n) if n >= 1 => Ok(Some(n)),
                            _ => Err(format!("'{k}' must be a whole number of at least 1")),
                        },
                    }
                };
                let window = match obj.get("windowSeconds") {
                    None | Some(Value::Null) => 20_000,
                    Some(v) => match v.as_f64() {
                        Some(s) if (0.001..=86_400.0).contains(&s) => (s * 1000.0).round() as u64,
                        _ => return Err("'windowSeconds' must be a number from 0.001 to 86400".into()),
                    },
                };
                Ok(Mode::Custom(Limits {
                    tenant_writes: count("tenantWrites")?,
                    app_writes: count("appWrites")?,
                    tenant_requests: count("tenantRequests")?,
                    app_requests: count("appRequests")?,
                    window_ms: window,
                }))
            }
            other => Err(format!("unknown mode '{other}' (off, graph, custom)")),
        }
    }
}

/// The time buckets refill by: the process's monotonic clock, or (with the hidden
/// `--manual-clock`, for tests) a clock that stands still until the admin API moves it,
/// so boundary tests do not depend on how fast the machine is.
pub struct Clock {
    manual: bool,
    start: Instant,
    offset_ms: AtomicU64,
}

impl Clock {
    /// A real or manual clock.
    #[must_use]
    pub fn new(manual: bool) -> Clock {
        Clock { manual, start: Instant::now(), offset_ms: AtomicU64::new(0) }
    }

    /// Whether the admin API may move it.
    #[must_use]
    pub fn is_manual(&self) -> bool {
        self.manual
    }

    /// Milliseconds since the server started (plus what was advanced).
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        if self.manual {
            offset
        } else {
            u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_add(offset)
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: u64) {
        // Saturating: a wrapped clock would run backwards and unblock every bucket.
        let _ = self.offset_ms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| Some(o.saturating_add(ms)));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    TenantWrites,
    AppWrites(String),
    TenantRequests,
    AppRequests(String),
}

impl Scope {
    /// The limit's name, as the metrics label it (issue 16).
    fn rule(&self) -> &'static str {
        match self {
            Scope::TenantWrites => "tenantWrites",
            Scope::AppWrites(_) => "appWrites",
            Scope::TenantRequests => "tenantRequests",
            Scope::AppRequests(_) => "appRequests",
        }
    }
}

#[derive(Debug)]
struct Bucket {
    /// Units held (one token = `window_ms` units).
    level: u64,
    /// When `level` was computed.
    at: u64,
    /// Refused until then (the `Retry-After` this bucket last gave).
    blocked_until: u64,
}

/// The throttle: a default mode, per-tenant overrides, and the buckets.
pub struct Throttle {
    default: RwLock<Mode>,
    tenants: RwLock<HashMap<String, Mode>>,
    buckets: Mutex<HashMap<(String, Scope), Bucket>>,
    on: AtomicBool,
    /// The clock buckets refill by.
    pub clock: Clock,
}

impl Throttle {
    /// A throttle in `mode` for every tenant.
    #[must_use]
    pub fn new(mode: Mode, clock: Clock) -> Throttle {
        Throttle {
            default: RwLock::new(mode),
            tenants: RwLock::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            on: AtomicBool::new(mode != Mode::Off),
            clock,
        }
    }

    /// True when some tenant may be throttled (the hot path's one check).
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    fn recompute(&self) {
        let default_on = self.default.read().is_ok_and(|d| *d != Mode::Off);
        let any_tenant = self.tenants.read().is_ok_and(|t| t.values().any(|m| *m != Mode::Off));
        self.on.store(default_on || any_tenant, Ordering::Relaxed);
    }

    /// The mode of tenants without their own.
    pub fn default_mode(&self) -> Mode {
        self.default.read().map_or(Mode::Off, |m| *m)
    }

    /// Sets the default mode; buckets start full again.
    pub fn set_default(&self, mode: Mode) {
        if let Ok(mut d) = self.default.write() {
            *d = mode;
        }
        if let Ok(mut b) = self.buckets.lock() {
            b.clear();
        }
        self.recompute();
    }

    /// A tenant's own mode, if it has one.
    pub fn tenant_mode(&self, tenant: &str) -> Option<Mode> {
        self.tenants.read().ok().and_then(|t| t.get(tenant).copied())
    }

    /// Sets (`Some`) or removes (`None`) a tenant's own mode; its buckets start full again.
    pub fn set_tenant(&self, tenant: &str, mode: Option<Mode>) {
        if let Ok(mut t) = self.tenants.write() {
            match mode {
                Some(m) => t.insert(tenant.to_owned(), m),
                None => t.remove(tenant),
            };
        }
        self.forget_buckets(tenant);
        self.recompute();
    }

    /// Drops a tenant's buckets (when it is deleted, reset or its mode changes).
    pub fn forget_buckets(&self, tenant: &str) {
        if let Ok(mut b) = self.buckets.lock() {
            b.retain(|(t, _), _| t != tenant);
        }
    }

    /// Forgets a deleted tenant entirely.
    pub fn forget_tenant(&self, tenant: &str) {
        self.set_tenant(tenant, None);
    }

    /// Takes a token for one request from every bucket it counts against, or none and
    /// returns the `Retry-After` seconds when any bucket is empty or still refusing.
    ///
    /// # Errors
    /// The seconds to wait.
    pub fn check(&self, tenant: &str, app: Option<&str>, write: bool) -> Result<(), u64> {
        let mode = self.tenant_mode(tenant).unwrap_or_else(|| self.default_mode());
        let Some(limits) = mode.limits() else { return Ok(()) };
        let w = limits.window_ms.max(1);
        let mut scopes: Vec<(Scope, u64)> = Vec::with_capacity(4);
        if let Some(n) = limits.tenant_requests {
            scopes.push((Scope::TenantRequests, n));
        }
        if let (Some(n), Some(a)) = (limits.app_requests, app) {
            scopes.push((Scope::AppRequests(a.to_owned()), n));
        }
        if write {
            if let Some(n) = limits.tenant_writes {
                scopes.push((Scope::TenantWrites, n));
            }
            if let (Some(n), Some(a)) = (limits.app_writes, app) {
                scopes.push((Scope::AppWrites(a.to_owned()), n));
            }
        }
        let now = self.clock.now_ms();
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        let mut wait_ms = 0u64;
        let mut refused_by = "";
        for (scope, capacity) in &scopes {
            let full = capacity.saturating_mul(w);
            let b = buckets.entry((tenant.to_owned(), scope.clone())).or_insert(Bucket {
                level: full,
                at: now,
                blocked_until: 0,
            });
            let elapsed = now.saturating_sub(b.at);
            b.level = b.level.saturating_add(elapsed.saturating_mul(*capacity)).min(full);
            b.at = now;
            if now < b.blocked_until {
                wait_ms = wait_ms.max(b.blocked_until - now);
                refused_by = scope.rule();
            } else if b.level < w {
                refused_by = scope.rule();
                // Time until one token is back, in whole seconds (Retry-After has no
                // fractions), and the bucket refuses until then.
                let ms = (w - b.level).div_ceil(*capacity);
                let secs = ms.div_ceil(1000).max(1);
                b.blocked_until = now.saturating_add(secs * 1000);
                wait_ms = wait_ms.max(secs * 1000);
            }
        }
        if wait_ms > 0 {
            metrics::counter!("enrollgraph_throttled_total", "rule" => refused_by).increment(1);
            return Err(wait_ms.div_ceil(1000).max(1));
        }
        for (scope, _) in scopes {
            if let Some(b) = buckets.get_mut(&(tenant.to_owned(), scope)) {
                b.level -= w;
            }
        }
        Ok(())
    }
}

/// Failed sign-ins (wrong client secret, wrong password) counted per key in fixed windows
/// (issue 18 item 9): per (tenant, app) and per peer address, so neither one client nor
/// one host can guess secrets at the speed of the hash. A key over its limit is refused,
/// right secret or not, until its window ends (a guess that is answered differently when
/// right would still be a guess). Entra answers a throttled client-credentials request
/// `429` with `Retry-After` and a throttled user sign-in AADSTS50196 (MSAL.NET "Client and
/// server throttling", learn.microsoft.com/entra/msal/dotnet/advanced/client-and-server-throttling).
///
/// Real time only (not the manual clock of the Graph buckets: a test that moves that clock
/// must not unlock sign-ins), per process like the Graph buckets.
pub struct FailedSignIns {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    window_secs: u64,
}

/// Failed sign-ins one (tenant, app) may make per window.
pub const FAILED_SIGN_INS_PER_APP: u32 = 20;
/// Failed sign-ins one peer address may make per window (it may act for several apps).
pub const FAILED_SIGN_INS_PER_PEER: u32 = 60;
/// The window, in seconds (Entra's `Retry-After: 60`).
pub const FAILED_SIGN_IN_WINDOW_SECS: u64 = 60;
/// Keys kept before the expired ones are swept (bounds memory under a spray of names).
const MAX_SIGN_IN_KEYS: usize = 100_000;

impl Default for FailedSignIns {
    fn default() -> Self {
        FailedSignIns::new(FAILED_SIGN_IN_WINDOW_SECS)
    }
}

impl FailedSignIns {
    /// Counters with windows of `window_secs` seconds.
    #[must_use]
    pub fn new(window_secs: u64) -> FailedSignIns {
        FailedSignIns { windows: Mutex::new(HashMap::new()), window_secs: window_secs.max(1) }
    }

    /// `Some(seconds to wait)` when any of `keys` (each with its limit) is over its limit.
    pub fn blocked(&self, keys: &[(&str, u32)]) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        keys.iter()
            .filter_map(|(k, limit)| {
                let (start, n) = windows.get(*k)?;
                let age = now.duration_since(*start).as_secs();
                (age < self.window_secs && *n >= *limit).then(|| (self.window_secs - age).max(1))
            })
            .max()
    }

    /// Counts one failure against each of `keys`.
    pub fn record(&self, keys: &[&str]) {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if windows.len() >= MAX_SIGN_IN_KEYS {
            let w = self.window_secs;
            windows.retain(|_, (start, _)| now.duration_since(*start).as_secs() < w);
        }
        for k in keys {
            let e = windows.entry((*k).to_owned()).or_insert((now, 0));
            if now.duration_since(e.0).as_secs() >= self.window_secs {
                *e = (now, 0);
            }
            e.1 = e.1.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_201st_write_is_refused_and_tokens_come_back_with_time() {
        let t = Throttle::new(Mode::Graph, Clock::new(true));
        for i in 0..100 {
            assert_eq!(t.check("t", Some("a"), true), Ok(()), "write {i}");
        }
        assert_eq!(t.check("t", Some("a"), true), Err(1), "the app's 101st write");
        for i in 0..100 {
            assert_eq!(t.check("t", Some("b"), true), Ok(()), "write {i} of b");
        }
        assert_eq!(t.check("t", Some("c"), true), Err(1), "the tenant's 201st write");
        assert_eq!(t.check("t", Some("c"), false), Ok(()), "reads have their own bucket");
        // One token per 100 ms; Retry-After is 1 s and holds until it has passed.
        t.clock.advance(999);
        assert_eq!(t.check("t", Some("c"), true), Err(1));
        t.clock.advance(1);
        assert_eq!(t.check("t", Some("c"), true), Ok(()));
        t.clock.advance(20_000);
        for i in 0..100 {
            assert_eq!(t.check("t", Some("a"), true), Ok(()), "next window, write {i}");
        }
        assert_eq!(t.check("t", Some("a"), true), Err(1));
    }

    #[test]
    fn custom_limits_parse_and_refuse_with_whole_seconds() {
        let m = Mode::parse("tenant-requests=2,window=60").unwrap_or(Mode::Off);
        let t = Throttle::new(m, Clock::new(true));
        assert_eq!(t.check("t", None, false), Ok(()));
        assert_eq!(t.check("t", None, false), Ok(()));
        assert_eq!(t.check("t", None, false), Err(30));
        assert!(Mode::parse("tenant-writes=0").is_err());
        assert!(Mode::parse("bogus=1").is_err());
        assert_eq!(Mode::from_json(&Mode::Graph.to_json()), Ok(Mode::Graph));
        assert_eq!(Mode::from_json(&m.to_json()), Ok(m));
        assert!(Mode::parse("tenant-requests=1,window=86401").is_err());
        assert!(Mode::parse("tenant-requests=1,window=18446744073709551").is_err());
    }

    #[test]
    fn a_clock_at_its_end_neither_wraps_nor_overflows_a_bucket() {
        let t = Throttle::new(Mode::parse("tenant-requests=1,window=60").unwrap_or(Mode::Off), Clock::new(true));
        t.clock.advance(u64::MAX - 1);
        t.clock.advance(5);
        assert_eq!(t.clock.now_ms(), u64::MAX);
        assert_eq!(t.check("t", None, false), Ok(()));
        assert_eq!(t.check("t", None, false), Err(60));
        assert_eq!(t.check("t", None, false), Err(60));
    }

    #[test]
    fn failed_sign_ins_block_at_the_limit_per_key_until_the_window_ends() {
        let f = super::FailedSignIns::new(60);
        for _ in 0..3 {
            assert_eq!(f.blocked(&[("app", 3), ("peer", 10)]), None);
            f.record(&["app", "peer"]);
        }
        let wait = f.blocked(&[("app", 3), ("peer", 10)]);
        assert!(wait.is_some_and(|w| (59..=60).contains(&w)), "{wait:?}");
        assert_eq!(f.blocked(&[("other-app", 3), ("peer", 10)]), None, "another app from the same peer");
        let short = super::FailedSignIns::new(1);
        short.record(&["k"]);
        assert!(short.blocked(&[("k", 1)]).is_some());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(short.blocked(&[("k", 1)]), None, "the window ended");
    }
}
