//! The PostgreSQL rows (issue 6): enrollgraph on a `postgres://` store against a bare
//! `tokio-postgres` insert ceiling, and a mixed read/write load (W4) on SQLite, on
//! PostgreSQL with one replica and with two replicas over one database.
//!
//! The bench starts its own throwaway cluster (enrollgraph-testpg: `initdb` into a temp dir,
//! loopback, durable settings: `fsync` and `synchronous_commit` on), and skips these rows
//! with a line saying why when PostgreSQL is not installed. The PostgreSQL server itself is
//! not pinned: it runs on whichever core is free, for the ceiling and for enrollgraph alike.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::load::{self, Spec};
use crate::report::{self, Measured};
use crate::seed::{self, Layout, Seeded};
use crate::server::{Pinning, Server};
use crate::workloads::{self, Def, W1C32, W4};

/// The ratio enrollgraph's creates must reach against the bare insert ceiling.
const TARGET: f64 = 0.8;

/// What the PostgreSQL section needs from the main bench.
pub struct Settings<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub enrollgraph: &'a Path,
    pub pinning: Pinning,
    pub scratch: &'a Path,
    pub warmup: Duration,
    pub duration: Duration,
    pub layout: Layout,
    /// enrollgraph-on-SQLite's W4 req/s from the main table, when it ran.
    pub sqlite_w4: Option<f64>,
}

/// Runs the section and prints it; false when a response was an error.
///
/// # Errors
/// When the bench breaks (a server does not start).
pub fn run(s: &Settings<'_>) -> Result<bool, String> {
    println!("\n== PostgreSQL (issue 6)");
    let cluster = match enrollgraph_testpg::Cluster::start(true) {
        Ok(c) => c,
        Err(e) => {
            println!("  PostgreSQL rows: SKIPPED, no PostgreSQL to run: {e}");
            return Ok(true);
        }
    };
    println!("  cluster: PostgreSQL on 127.0.0.1:{} (fsync on, synchronous_commit on), unpinned", cluster.port);
    cluster.psql("postgres", "CREATE DATABASE bench").map_err(|e| format!("CREATE DATABASE: {e}"))?;
    let url = cluster.url("bench");
    let layout = Layout { big: 0, small: 0, ..s.layout };
    let seeded = seed::seed_postgres(&url, layout)?;
    println!("  seeded {} assignments in {:.1} s", seeded.total, seeded.seconds);

    let ceiling = s.runtime.block_on(insert_ceiling(&url, W1C32.conns, s.warmup, s.duration))?;
    println!(
        "  {:<17} {:<30} c={:<3} {:>9} req/s  (autocommit INSERT into the same table, one connection each)",
        "pg-insert",
        "bare tokio-postgres INSERT",
        W1C32.conns,
        report::rps(ceiling)
    );

    let start = |name: &str| -> Result<Server, String> {
        let dir = s.scratch.join(format!("{name}-data"));
        let args: Vec<OsString> = ["serve", "--port", "0", "--auth", "off", "--database", &url, "--data-dir"]
            .iter()
            .map(OsString::from)
            .chain([dir.into_os_string()])
            .collect();
        Server::start(s.enrollgraph, &args, s.pinning, &s.scratch.join(format!("{name}.log")))
    };
    let mut a = start("pg-replica-a")?;
    let mut b = start("pg-replica-b")?;
    let mut ok = true;

    let w1 = measure(s, &[&mut a], W1C32, &seeded, "enrollgraph-pg")?;
    ok &= w1.errors == 0;
    let w4_one = measure(s, &[&mut a], W4, &seeded, "enrollgraph-pg")?;
    ok &= w4_one.errors == 0;
    let w4_two = measure(s, &[&mut a, &mut b], W4, &seeded, "enrollgraph-pg×2")?;
    ok &= w4_two.errors == 0;

    let ratio = w1.rps / ceiling.max(1e-9);
    println!("\n== PostgreSQL targets");
    println!(
        "{} W1 c=32 creates on PostgreSQL: {} req/s = {ratio:.2}× the bare tokio-postgres insert ceiling ({} rows/s); target ≥ {TARGET}×",
        if ratio >= TARGET { "PASS" } else { "FAIL" },
        report::rps(w1.rps),
        report::rps(ceiling)
    );
    println!(
        "INFO mixed read/write (W4: 80% GET / 20% POST, c=32) req/s: SQLite {}; PostgreSQL one replica {}; two replicas {}",
        s.sqlite_w4.map_or_else(|| "not run".to_owned(), report::rps),
        report::rps(w4_one.rps),
        report::rps(w4_two.rps)
    );
    Ok(ok)
}

/// Runs `def` on the given replicas at once, its connections split between them, and
/// prints and returns the sum.
fn measure(
    s: &Settings<'_>,
    servers: &[&mut Server],
    def: Def,
    seeded: &Seeded,
    name: &'static str,
) -> Result<Measured, String> {
    let share = def.conns / servers.len();
    let runs = servers.iter().map(|server| {
        let spec = Spec {
            conns: share,
            warmup: s.warmup,
            duration: s.duration,
            make: workloads::make(def, &load::head(&server.addr.to_string(), None), seeded),
        };
        let (addr, pid) = (server.addr, server.pid);
        async move { load::run(addr, &spec, pid).await }
    });
    // Spawned together, so the replicas are loaded over the same window.
    let outcomes = s.runtime.block_on(async {
        let handles: Vec<_> = runs.map(tokio::spawn).collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.map_err(|e| format!("load task: {e}"))?);
        }
        Ok::<_, String>(out)
    })?;
    let mut total: Option<load::Outcome> = None;
    for o in outcomes {
        total = Some(match total {
            // Concurrent runs over the same window: add the requests, keep the window.
            Some(mut t) => {
                t.requests += o.requests;
                t.errors += o.errors;
                t.first_error = t.first_error.or(o.first_error);
                let _ = t.hist.add(&o.hist);
                t.server_cpu += o.server_cpu;
                t
            }
            None => o,
        });
    }
    let total = total.ok_or("no server to measure")?;
    let m = Measured::new(name, def.id, def.title.to_owned(), def.conns, &total);
    println!("{}{}", m.summary(), m.first_error.as_ref().map_or_else(String::new, |e| format!("  first: {e}")));
    Ok(m)
}

/// The bare ceiling: `conns` connections, each inserting one assignment-like row per
/// autocommit transaction into the store's own `entity` table (same indexes, same generated
/// `jsonb` column), for `duration` after `warmup`. Rows per second.
async fn insert_ceiling(url: &str, conns: usize, warmup: Duration, duration: Duration) -> Result<f64, String> {
    let start = Instant::now();
    let (from, end) = (start + warmup, start + warmup + duration);
    let counted = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        let (client, connection) =
            tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| format!("connect: {e}"))?;
        tokio::spawn(connection);
        let counted = counted.clone();
        tasks.spawn(async move {
            let stmt = client
                .prepare(
                    "INSERT INTO entity (tenant, parent, nav, id, type, raw) VALUES ($1, $2, 'assignments', $3, $4, $5)",
                )
                .await?;
            let mut rng = load::Rng::new(1000 + c as u64);
            while Instant::now() < end {
                let id = rng.uuid();
                let raw = seed::assignment_body(&rng.uuid()).to_string();
                let parent = -1_i64 - i64::try_from(c).unwrap_or(0);
                client
                    .execute(&stmt, &[&"bench-ceiling", &parent, &id, &"microsoft.graph.enrollmentConfigurationAssignment", &raw])
                    .await?;
                let now = Instant::now();
                if now >= from && now < end {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), tokio_postgres::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| format!("ceiling task: {e}"))?.map_err(|e| format!("ceiling insert: {e}"))?;
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(counted.load(Ordering::Relaxed) as f64 / duration.as_secs_f64())
}
