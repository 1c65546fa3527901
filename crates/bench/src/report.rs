//! The report: every run, enrollgraph against its ceilings, and one PASS/FAIL line per
//! target of the issue. Targets are data ([`THROUGHPUT`]); later ones (PostgreSQL) have
//! their place in [`PENDING`].

use std::fmt::Write as _;

use crate::load::Outcome;

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub server: &'static str,
    pub id: &'static str,
    pub title: String,
    pub conns: usize,
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub server_cpu: f64,
    pub gen_cpu: f64,
    /// Bytes the server sent to storage per second (NaN: not known).
    pub server_written: f64,
    /// What the per-request trace says of the tail.
    pub tail: crate::tails::Tail,
}

impl Measured {
    /// The line printed as a run ends: server, workload, connections, req/s, latency, errors.
    pub fn summary(&self) -> String {
        format!(
            "  {:<17} {:<30} c={:<3} {:>9} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  errors {}",
            self.server,
            self.title,
            self.conns,
            rps(self.rps),
            self.p50,
            self.p99,
            self.errors
        )
    }

    /// Requests per second of server CPU: the cost per request, robust to a server that did
    /// not get its whole core (other processes on the machine).
    pub fn per_cpu(&self) -> f64 {
        self.rps / self.server_cpu
    }

    /// Summarises `o`.
    pub fn new(server: &'static str, id: &'static str, title: String, conns: usize, o: &Outcome) -> Measured {
        let p99 = o.quantile_ms(0.99);
        Measured {
            tail: crate::tails::read(o, p99),
            server,
            id,
            title,
            conns,
            rps: o.rps(),
            p50: o.quantile_ms(0.5),
            p99,
            errors: o.errors,
            first_error: o.first_error.clone(),
            server_cpu: o.server_cpu,
            gen_cpu: o.gen_cpu,
            server_written: o.server_written,
        }
    }
}

/// W5's outcome.
pub enum W5 {
    /// Not run.
    NotRun,
    /// Skipped, with the reason.
    Skip(String),
    /// Page 1 and page `n` over `big` assignments, page 1 over `small`.
    Ran { n: usize, big: usize, small: usize, filter: String },
}

/// Everything the report prints.
pub struct Report {
    /// Machine facts and how processes were placed.
    pub facts: Vec<String>,
    pub runs: Vec<Measured>,
    /// Median start-up (ms) per server, with every sample.
    pub startup: Vec<(&'static str, Vec<f64>)>,
    /// enrollgraph's `VmHWM` after W4, KiB.
    pub rss_kib: Option<u64>,
    pub w5: W5,
    /// Costs measured side by side (issue 16's metrics, and the A/A control).
    pub paired: Vec<Paired>,
    pub notes: Vec<String>,
}

/// A variant of enrollgraph against plain enrollgraph, both run at the same time on the
/// same core: per measurement, the ratio (variant over base) of requests per second of
/// server CPU.
pub struct Paired {
    pub variant: &'static str,
    pub base: &'static str,
    pub workload: &'static str,
    pub cpu_ratios: Vec<f64>,
}

impl Paired {
    /// The median pair's cost and the quartiles', in per cent (negative: slower).
    pub fn summary(ratios: &[f64]) -> (f64, f64, f64) {
        let pct: Vec<f64> = ratios.iter().map(|r| (r - 1.0) * 100.0).collect();
        (median(&pct), quantile(&pct, 0.25), quantile(&pct, 0.75))
    }
}

/// The `q` quantile of `xs` (linear between the closest ranks; empty: NaN).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let at = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (at - lo as f64)
}

/// `(workload, ceiling, minimum throughput ratio)`; every one also has p99 ≤ 1.5 × the ceiling's.
pub const THROUGHPUT: &[(&str, &str, f64)] = &[
    ("W1c32", "sqlite-group", 0.8),
    ("W1c1", "sqlite-durable", 0.8),
    ("W2", "sqlite-group", 0.6),
    ("W3", "sqlite-group", 0.5),
    ("W4", "sqlite-group", 0.7),
];

/// The most enrollgraph's p99 may be, as a multiple of its ceiling's.
pub const P99_RATIO: f64 = 1.5;
/// W5: page 100 at most this many times page 1.
pub const W5_DEEP_RATIO: f64 = 1.2;
/// W5: the filter over 100,000 at most this many times over 1,000.
pub const W5_SIZE_RATIO: f64 = 2.0;
/// Start-up at most this many times hello's…
pub const STARTUP_RATIO: f64 = 5.0;
/// …and at most this long.
pub const STARTUP_MAX_MS: f64 = 50.0;
/// Peak RSS after W4.
pub const RSS_MAX_MIB: f64 = 30.0;

/// W2 with a bearer token at least this fraction of W2 without (a token adds ≤ 10 %).
pub const TOKEN_RATIO: f64 = 0.9;

/// W2 through `serve --proxy` at least this fraction of W2 over `serve --tls` (adds ≤ 15 %).
pub const PROXY_RATIO: f64 = 1.0 / 1.15;

/// The enrollgraph server that checks bearer tokens (the default `--auth on`).
pub const TOKEN: &str = "enrollgraph+token";
/// The enrollgraph server with `--query-push-down off` (W5 only: what push-down buys).
pub const NO_PUSH_DOWN: &str = "eg-no-pushdown";
/// enrollgraph with Prometheus metrics on (issue 16: their cost on W2, target ≤ 3 %).
pub const METRICS: &str = "eg+metrics";
/// A second plain enrollgraph (`--auth off`), the A/A control of the side-by-side line.
pub const AGAIN: &str = "eg-again";
/// The most metrics may cost W2 (issue 16), in per cent of throughput.
pub const METRICS_COST: f64 = 3.0;
/// Another enrollgraph build (`--against PATH`, `--auth off`): an A/B of two builds.
pub const AGAINST: &str = "eg-against";
/// enrollgraph with one log line per request (issue 16), to a file.
pub const REQUEST_LOGS: &str = "eg+request-logs";

/// Targets the issue leaves for later, so their lines already have a place.
pub const PENDING: &[&str] = &[];

/// The median of `xs` (empty: NaN).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Report {
    fn find(&self, server: &str, id: &str) -> Option<&Measured> {
        self.runs.iter().find(|m| m.server == server && m.id == id)
    }

    fn startup_of(&self, server: &str) -> Option<f64> {
        self.startup.iter().find(|(s, _)| *s == server).map(|(_, xs)| median(xs))
    }

    /// Prints the report; returns true when no run had errors.
    pub fn print(&self) -> bool {
        let mut out = String::new();
        let _ = writeln!(out, "\n== machine");
        for f in &self.facts {
            let _ = writeln!(out, "  {f}");
        }

        let _ = writeln!(
            out,
            "\n== every run (latency in ms; cpu in cores, 1.00 = one core busy; req/cpu-s = req/s per server core used)"
        );
        let _ = writeln!(
            out,
            "  {:<17} {:<30} {:>5} {:>10} {:>8} {:>8} {:>7} {:>7} {:>7} {:>10}",
            "server", "workload", "conns", "req/s", "p50", "p99", "errors", "srv cpu", "gen cpu", "req/cpu-s"
        );
        for m in &self.runs {
            let _ = writeln!(
                out,
                "  {:<17} {:<30} {:>5} {:>10} {:>8.2} {:>8.2} {:>7} {:>7.2} {:>7.2} {:>10.0}",
                m.server,
                m.title,
                m.conns,
                rps(m.rps),
                m.p50,
                m.p99,
                m.errors,
                m.server_cpu,
                m.gen_cpu,
                m.per_cpu()
            );
        }

        let _ = writeln!(out, "\n== enrollgraph against its ceilings (same run, same requests, same bodies)");
        let _ = writeln!(
            out,
            "  {:<30} {:>9} {:>7} {:>7}  {:<15} {:>9} {:>7}  {:>6} {:>6} {:>8}  {:<22} result",
            "workload", "req/s", "p50", "p99", "ceiling", "req/s", "p99", "ratio", "p99 x", "cpu-norm", "target"
        );
        let mut lines: Vec<(String, String)> = Vec::new();
        for &(id, ceiling, min) in THROUGHPUT {
            let Some(e) = self.find("enrollgraph", id) else {
                continue;
            };
            let title = format!("{} (c={})", e.title, e.conns);
            let Some(c) = self.find(ceiling, id) else {
                let _ = writeln!(
                    out,
                    "  {title:<30} {:>9.0} {:>7.2} {:>7.2}  {ceiling:<15} (not run)",
                    e.rps, e.p50, e.p99
                );
                continue;
            };
            let ratio = e.rps / c.rps;
            let p99x = e.p99 / c.p99;
            let per_cpu = e.per_cpu() / c.per_cpu();
            let ok_rps = ratio >= min;
            let ok_p99 = p99x <= P99_RATIO;
            let _ = writeln!(
                out,
                "  {title:<30} {:>9.0} {:>7.2} {:>7.2}  {ceiling:<15} {:>9.0} {:>7.2}  {ratio:>6.2} {p99x:>6.2} {per_cpu:>8.2}  {:<22} {}",
                e.rps,
                e.p50,
                e.p99,
                c.rps,
                c.p99,
                format!("≥{min} req/s, ≤{P99_RATIO} p99"),
                verdict(ok_rps && ok_p99)
            );
            lines.push((
                verdict(ok_rps).into(),
                format!(
                    "{title}: {:.0} req/s = {ratio:.2} × {ceiling} {:.0} req/s (target ≥ {min}; per server CPU: {per_cpu:.2})",
                    e.rps, c.rps
                ),
            ));
            lines.push((
                verdict(ok_p99).into(),
                format!(
                    "{title}: p99 {:.2} ms = {p99x:.2} × {ceiling} p99 {:.2} ms (target ≤ {P99_RATIO})",
                    e.p99, c.p99
                ),
            ));
        }
        for id in ["W5p1", "W5pN", "W5small", "W6"] {
            if let Some(e) = self.find("enrollgraph", id) {
                let _ = writeln!(
                    out,
                    "  {:<30} {:>9} {:>7.2} {:>7.2}  {:<15} {:>9} {:>7}  {:>6} {:>6} {:>8}  {:<22}",
                    format!("{} (c={})", e.title, e.conns),
                    rps(e.rps),
                    e.p50,
                    e.p99,
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    if id == "W6" { "(no target)" } else { "see W5 lines" }
                );
            }
        }

        // Token validation adds at most 10 % to W2 (issue 8: keys and verified tokens cached),
        // judged side by side (below) where that ran; the interleaved slices are information.
        let token_paired = self.paired.iter().any(|p| p.variant == TOKEN);
        match (self.find(TOKEN, "W2"), self.find("enrollgraph", "W2")) {
            (Some(t), Some(e)) => {
                let ratio = t.rps / e.rps;
                lines.push((
                    if token_paired { "INFO".into() } else { verdict(ratio >= TOKEN_RATIO).into() },
                    format!(
                        "token validation, interleaved: W2 with a bearer token {} req/s = {ratio:.2} × without{}; p99 {:.2} vs {:.2} ms",
                        rps(t.rps),
                        if token_paired { String::new() } else { format!(" (target ≥ {TOKEN_RATIO:.2})") },
                        t.p99,
                        e.p99
                    ),
                ));
            }
            _ if token_paired => {}
            _ => lines.push(("SKIP".into(), "token validation: W2 with a bearer token vs without (not run)".into())),
        }
        // Metrics cost W2 at most 3 % (issue 16): the median of measurements side by side
        // with plain enrollgraph, in requests per second of server CPU (a request's cost).
        for p in &self.paired {
            let (mid, q1, q3) = Paired::summary(&p.cpu_ratios);
            let token_cost = (1.0 - TOKEN_RATIO) * 100.0;
            let (verdict_text, what, target) = match p.variant {
                METRICS => (
                    verdict(mid >= -METRICS_COST),
                    format!("metrics: {} with --metrics-address", p.workload),
                    format!(" (target ≥ -{METRICS_COST} %)"),
                ),
                TOKEN => (
                    verdict(mid >= -token_cost),
                    format!("token validation: {} with a bearer token", p.workload),
                    format!(" (target ≥ -{token_cost:.0} %)"),
                ),
                "enrollgraph" => ("A/B", format!("{} on this build", p.workload), String::new()),
                _ => ("INFO", format!("A/A control: {} on a second plain enrollgraph", p.workload), String::new()),
            };
            lines.push((
                verdict_text.into(),
                format!(
                    "{what} vs {}, side by side on one core: median of {} measurements {mid:+.1} % requests \
                     per server CPU-second (quartiles {q1:+.1} %, {q3:+.1} %){target}",
                    p.base,
                    p.cpu_ratios.len(),
                ),
            ));
        }
        // The proxy adds at most 15 % to W2 over TLS (issue 14).
        match (self.find(crate::proxied::PROXIED, "W2"), self.find(crate::proxied::DIRECT, "W2")) {
            (Some(p), Some(d)) => {
                let ratio = p.rps / d.rps;
                lines.push((
                    verdict(ratio >= PROXY_RATIO).into(),
                    format!(
                        "proxy: W2 through serve --proxy (TLS, keep-alive) {} req/s = {ratio:.2} × over serve --tls directly (target ≥ {PROXY_RATIO:.2}: adds ≤ 15 %); p99 {:.2} vs {:.2} ms",
                        rps(p.rps),
                        p.p99,
                        d.p99
                    ),
                ));
            }
            _ => lines.push(("SKIP".into(), "proxy: W2 through serve --proxy vs serve --tls (not run)".into())),
        }
        // `--against`: this build over the other, per workload, as interleaved slices saw it.
        for a in self.runs.iter().filter(|m| m.server == AGAINST && m.rps > 0.0) {
            if let Some(e) = self.find("enrollgraph", a.id) {
                lines.push((
                    "A/B".into(),
                    format!(
                        "{} {}: enrollgraph {:.0} req/s = {:.3} × eg-against {:.0} (per server CPU-second {:.3} ×); p99 {:.2} vs {:.2} ms",
                        a.id,
                        a.title,
                        e.rps,
                        e.rps / a.rps,
                        a.rps,
                        e.per_cpu() / a.per_cpu(),
                        e.p99,
                        a.p99
                    ),
                ));
            }
        }
        if let (Some(n1), Some(nn), Some(e1), Some(en)) = (
            self.find(NO_PUSH_DOWN, "W5p1"),
            self.find(NO_PUSH_DOWN, "W5pN"),
            self.find("enrollgraph", "W5p1"),
            self.find("enrollgraph", "W5pN"),
        ) {
            lines.push((
                "INFO".into(),
                format!(
                    "W5 with --query-push-down off: page 1 p50 {:.2} ms ({:.1} × with), last page {:.2} ms ({:.1} × with)",
                    n1.p50,
                    n1.p50 / e1.p50,
                    nn.p50,
                    nn.p50 / en.p50
                ),
            ));
        }
        match &self.w5 {
            W5::NotRun => {}
            W5::Skip(why) => lines.push(("SKIP".into(), format!("W5 $filter paging: {why}"))),
            W5::Ran { n, big, small, filter } => {
                if let (Some(p1), Some(pn), Some(s1)) = (
                    self.find("enrollgraph", "W5p1"),
                    self.find("enrollgraph", "W5pN"),
                    self.find("enrollgraph", "W5small"),
                ) {
                    let deep = pn.p50 / p1.p50;
                    let size = p1.p50 / s1.p50;
                    lines.push((
                        verdict(deep <= W5_DEEP_RATIO).into(),
                        format!(
                            "W5 page {n} / page 1 over {big} ({filter}): p50 {:.2} / {:.2} ms = {deep:.2} (target ≤ {W5_DEEP_RATIO})",
                            pn.p50, p1.p50
                        ),
                    ));
                    lines.push((
                        verdict(size <= W5_SIZE_RATIO).into(),
                        format!(
                            "W5 filter over {big} / over {small}: p50 {:.2} / {:.2} ms = {size:.2} (target ≤ {W5_SIZE_RATIO})",
                            p1.p50, s1.p50
                        ),
                    ));
                }
            }
        }

        if !self.startup.is_empty() {
            let _ = writeln!(out, "\n== start-up: spawn to the first 200 from GET /health (ms; median of the samples)");
            for (server, xs) in &self.startup {
                let samples: Vec<String> = xs.iter().map(|x| format!("{x:.1}")).collect();
                let _ = writeln!(out, "  {server:<15} {:>7.1}   [{}]", median(xs), samples.join(", "));
            }
        }
        if let (Some(e), Some(h)) = (self.startup_of("enrollgraph"), self.startup_of("hello")) {
            let r = e / h;
            lines.push((
                verdict(r <= STARTUP_RATIO).into(),
                format!("start-up: enrollgraph {e:.1} ms = {r:.2} × hello {h:.1} ms (target ≤ {STARTUP_RATIO})"),
            ));
        }
        if let Some(e) = self.startup_of("enrollgraph") {
            lines.push((
                verdict(e <= STARTUP_MAX_MS).into(),
                format!("start-up: enrollgraph {e:.1} ms (target ≤ {STARTUP_MAX_MS} ms)"),
            ));
        }
        if let Some(kib) = self.rss_kib {
            let mib = kib as f64 / 1024.0;
            lines.push((
                verdict(mib <= RSS_MAX_MIB).into(),
                format!("peak RSS (VmHWM) after W4: {mib:.1} MiB (target ≤ {RSS_MAX_MIB} MiB)"),
            ));
        }

        let mut clean = true;
        for m in self.runs.iter().filter(|m| m.errors > 0) {
            clean = false;
            lines.push((
                "FAIL".into(),
                format!(
                    "{} {} (c={}): {} error(s), first: {}",
                    m.server,
                    m.title,
                    m.conns,
                    m.errors,
                    m.first_error.as_deref().unwrap_or("?")
                ),
            ));
        }
        for p in PENDING {
            lines.push(("LATER".into(), (*p).to_owned()));
        }
        self.print_tails(&mut out);

        let _ = writeln!(out, "\n== targets");
        for (v, text) in &lines {
            let _ = writeln!(out, "  {v:<5} {text}");
        }
        let count = |v: &str| lines.iter().filter(|(x, _)| x == v).count();
        let _ = writeln!(
            out,
            "  -- {} PASS, {} FAIL, {} SKIP, {} LATER",
            count("PASS"),
            count("FAIL"),
            count("SKIP"),
            count("LATER")
        );
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n== notes");
            for n in &self.notes {
                let _ = writeln!(out, "  {n}");
            }
        }
        print!("{out}");
        clean
    }
}

impl Report {
    /// The tails section: per workload with a ceiling, what each server's trace says
    /// ([`crate::tails`]), and the p99 ratio split into throughput's factor and the
    /// tail's own.
    fn print_tails(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n== tails (per-request traces; p99 x = mean x · shape x, shape = p99 ÷ mean; stall = no response for ≥ {} ms; \
             spell = a {} ms window under {} × the run's median pace)",
            crate::tails::STALL_US as f64 / 1000.0,
            crate::tails::SPELL_US as f64 / 1000.0,
            crate::tails::SPELL_RATE
        );
        let _ = writeln!(
            out,
            "  {:<8} {:<17} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>7} {:>8} {:>8} {:>9} {:>7} {:>8}",
            "workload",
            "server",
            "mean",
            "p99",
            "p99.9",
            "max",
            "traced",
            "shape",
            "stalls",
            "longest",
            "slow in",
            "runq wait",
            "spells",
            "p99 out"
        );
        let _ = writeln!(
            out,
            "  {:<8} {:<17} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>7} {:>8} {:>8} {:>9} {:>7} {:>8}",
            "", "", "ms", "ms", "ms", "ms", "", "", "% time", "gap ms", "stall %", "ms/s", "% time", "ms"
        );
        for &(id, ceiling, _) in THROUGHPUT {
            let (Some(e), Some(c)) = (self.find("enrollgraph", id), self.find(ceiling, id)) else {
                continue;
            };
            // With `--against`, the other build's row and an A/A line: two processes of
            // one kind in the same run, whose difference is the tail's noise on this
            // machine (twelfth round: the same binary read a shape factor of 0.88–1.88
            // against itself on the eleventh round's machine).
            let against = self.find(AGAINST, id);
            for m in [Some(c), Some(e), against].into_iter().flatten() {
                let t = &m.tail;
                let _ = writeln!(
                    out,
                    "  {:<8} {:<17} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>8} {:>6.2} {:>7.2} {:>8.2} {:>8.0} {:>9.1} {:>7.1} {:>8.2}",
                    id,
                    m.server,
                    t.mean_ms,
                    m.p99,
                    t.p999_ms,
                    t.max_ms,
                    t.traced,
                    t.shape,
                    t.stall_share * 100.0,
                    t.longest_gap_ms,
                    t.slow_in_stall * 100.0,
                    t.run_wait_ms_per_s,
                    t.spell_share * 100.0,
                    t.p99_outside_ms
                );
            }
            let _ = writeln!(
                out,
                "  {:<8} p99 x {:.2} = mean x {:.2} (1 ÷ req/s ratio: {:.2}) · shape x {:.2}; outside slow spells p99 x {:.2}",
                id,
                e.p99 / c.p99,
                e.tail.mean_ms / c.tail.mean_ms,
                c.rps / e.rps,
                e.tail.shape / c.tail.shape,
                e.tail.p99_outside_ms / c.tail.p99_outside_ms
            );
            if let Some(a) = against {
                let _ = writeln!(
                    out,
                    "  {:<8} eg-against × enrollgraph: p99 x {:.2} = mean x {:.2} · shape x {:.2}; outside slow spells p99 x {:.2} \
                     (the same code when --against is this build: noise)",
                    id,
                    a.p99 / e.p99,
                    a.tail.mean_ms / e.tail.mean_ms,
                    a.tail.shape / e.tail.shape,
                    a.tail.p99_outside_ms / e.tail.p99_outside_ms
                );
            }
        }
    }
}

/// Requests per second with a decimal when few (W6 does a handful).
pub fn rps(x: f64) -> String {
    if x < 100.0 { format!("{x:.1}") } else { format!("{x:.0}") }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}
