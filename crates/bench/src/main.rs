//! `enrollgraph-bench`: enrollgraph against this machine's own ceilings, in one run, on
//! loopback, bounded in time; prints a table and one PASS/FAIL line per target.
//!
//! ```sh
//! cargo build --release -p enrollgraph-bench -p enrollgraph
//! target/release/enrollgraph-bench            # full (~4 min)
//! target/release/enrollgraph-bench --quick    # ≤ 60 s, proves it works
//! ```
//!
//! Servers run pinned to core 0 and the load generator to core 1 (`taskset`), so each has
//! one core and the ratios compare like with like. Every server runs at once and each
//! workload alternates between them in slices (`--rounds`), so a ratio compares runs
//! seconds apart under the same background load; the report also gives req/s per server
//! CPU-second, which survives other processes stealing the server's core.
//!
//! Servers: the ceilings (`ceilings.rs`), enrollgraph with `--auth off` (W1-W6), enrollgraph
//! with its default auth and a client-credentials token (W2 again: what token validation
//! costs), enrollgraph with `--query-push-down off` (W5 again: what push-down buys), and
//! enrollgraph with `--tls --proxy` (W2 over TLS, directly and through the proxy:
//! `proxied.rs`, issue 14).
//! Data: seeded in process before any server starts (`seed.rs`).
//!
//! Exit status: 0 even when targets fail (timings are not asserted); non-zero when the
//! bench breaks (a server does not start, a response is not 2xx).

mod ceilings;
mod load;
mod pg;
mod proxied;
mod report;
mod seed;
mod server;
mod tails;
mod tenants;
mod workloads;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::ceilings::Kind;
use crate::load::Spec;
use crate::report::{AGAIN, AGAINST, METRICS, Measured, NO_PUSH_DOWN, Paired, REQUEST_LOGS, Report, TOKEN, W5};
use crate::seed::{Layout, Seeded};
use crate::server::{Pinning, Server};
use crate::workloads::{Def, W1C1, W1C32, W2, W3, W4, W6};

#[derive(Parser)]
#[command(name = "enrollgraph-bench", about = "enrollgraph against this machine's own ceilings, in one run")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Small data and short runs (≤ 60 s): proves the bench works; timings mean little.
    #[arg(long)]
    quick: bool,
    /// The enrollgraph binary (default: `enrollgraph` next to this one).
    #[arg(long, env = "ENROLLGRAPH_BENCH_SERVER")]
    enrollgraph: Option<PathBuf>,
    /// Seconds each run is measured (default 8; quick 1), after a warm-up of a quarter of it.
    #[arg(long)]
    duration: Option<f64>,
    /// Only these workloads, comma-separated (prefixes of W1c1,W1c32,W2,W2proxy,W3,W4,W5,W6,startup,tenants,pg).
    #[arg(long)]
    only: Option<String>,
    /// Slices per run, alternating servers (default 4; quick 1).
    #[arg(long)]
    rounds: Option<usize>,
    /// Assignments under W5's big configuration (default 100000; quick 5000).
    #[arg(long)]
    assignments: Option<usize>,
    /// Also run this other enrollgraph build (`eg-against`, `--auth off`) in every workload
    /// enrollgraph runs in, interleaved with it, and W2 and W3 side by side with it on one
    /// core: an A/B of two builds on the same machine, printed as this build's req/s (and
    /// req/s per server CPU-second, side by side) over the other's.
    #[arg(long)]
    against: Option<PathBuf>,
    /// Also write each interleaved run's per-request trace to `DIR/<workload>-<server>.csv`
    /// (`done_us,latency_us`, in order of completion), for reading a tail by hand.
    #[arg(long)]
    trace_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one ceiling (the bench starts these itself).
    Ceiling {
        kind: Kind,
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The bodies and keys to serve (written by the bench).
        #[arg(long)]
        fixture: PathBuf,
        /// Where the SQLite ceilings keep their database.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Ceiling { kind, port, fixture, data_dir }) = &cli.command {
        return match ceilings::serve(*kind, *port, fixture, data_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("enrollgraph-bench ceiling: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match bench(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("enrollgraph-bench: some responses were errors (see the FAIL lines)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("enrollgraph-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Removes the scratch directory however the bench ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run settings derived from the flags.
struct Plan {
    warmup: Duration,
    duration: Duration,
    /// Slices each ceiling/enrollgraph run is cut into (interleaved).
    rounds: usize,
    /// W5 runs are latency probes at c=1: shorter.
    w5_duration: Duration,
    startup_runs: usize,
    layout: Layout,
    only: Option<Vec<String>>,
    trace_dir: Option<PathBuf>,
}

impl Plan {
    fn wants(&self, id: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| id.to_ascii_lowercase().starts_with(&o.to_ascii_lowercase())))
    }
}

fn default_server() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let dir = exe.parent().ok_or("this executable has no directory")?;
    Ok(dir.join("enrollgraph"))
}

fn machine_facts(pinning: Pinning, cores: usize, taskset: bool) -> Vec<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let placement = match pinning.server_core {
        Some(core) => format!("pinned with taskset: servers on core {core}, load generator on core {}", core + 1),
        None if !taskset => {
            "NOT pinned: taskset is not installed (util-linux); servers and generator share the cores".into()
        }
        None => format!("NOT pinned: {cores} core(s) available; servers and generator share them"),
    };
    vec![format!("{cores} core(s) available to the bench; {cpu}"), placement]
}

fn bench(cli: &Cli) -> Result<bool, String> {
    let started = Instant::now();
    let quick = cli.quick;
    let seconds = cli.duration.unwrap_or(if quick { 1.0 } else { 8.0 }).max(0.1);
    let big = cli.assignments.unwrap_or(if quick { 5_000 } else { 100_000 });
    let plan = Plan {
        warmup: Duration::from_secs_f64((seconds / 4.0).max(0.25)),
        duration: Duration::from_secs_f64(seconds),
        rounds: cli.rounds.unwrap_or(if quick { 1 } else { 4 }).max(1),
        w5_duration: Duration::from_secs_f64((seconds / 3.0).max(0.3)),
        startup_runs: if quick { 3 } else { 7 },
        layout: Layout {
            read: 10,
            per_parent: 100,
            write: 32,
            assign: W6.conns,
            big,
            small: 1_000.min(big),
            every: 100,
        },
        trace_dir: cli.trace_dir.clone(),
        only: cli.only.as_ref().map(|o| o.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()),
    };

    // Placement first: threads made later (runtimes, the seeding writer) inherit it.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let taskset = server::has_taskset();
    let pinning = Pinning { server_core: (taskset && cores >= 2).then_some(0) };
    if pinning.server_core.is_some() {
        server::pin_self(1)?;
    }
    let facts = machine_facts(pinning, cores, taskset);

    let enrollgraph = match &cli.enrollgraph {
        Some(p) => p.clone(),
        None => default_server()?,
    };
    if !enrollgraph.is_file() {
        return Err(format!(
            "no enrollgraph binary at {} (build it: cargo build --release -p enrollgraph, or pass --enrollgraph PATH)",
            enrollgraph.display()
        ));
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;

    let scratch = Scratch(std::env::temp_dir().join(format!("enrollgraph-bench-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let data = scratch.0.join("enrollgraph-data");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;

    println!("enrollgraph-bench{}: {}", if quick { " --quick" } else { "" }, facts.join("; "));
    println!("  enrollgraph: {}", enrollgraph.display());
    println!(
        "seeding {} assignments in process ({}×{} to read, {} and {} under W5's two configurations)…",
        plan.layout.read * plan.layout.per_parent + plan.layout.big + plan.layout.small,
        plan.layout.read,
        plan.layout.per_parent,
        plan.layout.big,
        plan.layout.small
    );
    let seeded = seed::seed(&data, plan.layout)?;
    println!("  seeded {} assignments in {:.1} s", seeded.total, seeded.seconds);
    let fixture_path = scratch.0.join("fixture.json");
    ceilings::Fixture {
        entity: seeded.entity.clone(),
        parents: seeded.read.clone(),
        filler: vec![(seeded.big.clone(), plan.layout.big), (seeded.small.clone(), plan.layout.small)],
    }
    .write(&fixture_path)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut report = Report {
        facts,
        runs: Vec::new(),
        startup: Vec::new(),
        rss_kib: None,
        w5: W5::NotRun,
        paired: Vec::new(),
        notes: Vec::new(),
    };

    // Start-up first, alternating hello and enrollgraph so both see the same background load.
    let ceiling_args = |kind: Kind| -> Vec<OsString> {
        vec![
            "ceiling".into(),
            kind.name().into(),
            "--port".into(),
            "0".into(),
            "--fixture".into(),
            fixture_path.clone().into(),
            "--data-dir".into(),
            scratch.0.join(kind.name()).into(),
        ]
    };
    // Start-up is measured as users start it (auth on, the default); the workloads run
    // with `--auth off` (loopback only), so token validation is measured on its own below.
    let eg_args = |extra: &[&str]| -> Vec<OsString> {
        let mut a: Vec<OsString> =
            vec!["serve".into(), "--port".into(), "0".into(), "--data-dir".into(), data.clone().into()];
        a.extend(extra.iter().map(OsString::from));
        a
    };
    if plan.wants("startup") {
        // One unmeasured start makes the signing keys and the development app, as any
        // data dir that has served before holds them.
        drop(Server::start(&enrollgraph, &eg_args(&[]), pinning, &scratch.0.join("prime.log"))?);
        let (mut hello, mut eg, mut empty) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..plan.startup_runs {
            let log = scratch.0.join(format!("startup-{i}.log"));
            hello.push(server::startup_ms(&me, &ceiling_args(Kind::Hello), pinning, &log)?);
            eg.push(server::startup_ms(&enrollgraph, &eg_args(&[]), pinning, &log)?);
            // A user's first start: a new data dir (database, tenant, development app,
            // admin key); its signing key is made while it already answers (thirteenth
            // round: that key made it 0.2–0.9 s before).
            let fresh = scratch.0.join(format!("empty-{i}"));
            let args: Vec<OsString> =
                vec!["serve".into(), "--port".into(), "0".into(), "--data-dir".into(), fresh.into()];
            empty.push(server::startup_ms(&enrollgraph, &args, pinning, &log)?);
        }
        report.startup.push(("hello", hello));
        report.startup.push(("enrollgraph", eg));
        report.startup.push(("eg-empty-dir", empty));
        report.notes.push(format!(
            "start-up: enrollgraph with its defaults (auth on) on its data dir holding {} assignments, after one unmeasured \
             start that made its signing keys; eg-empty-dir: the same on a new data dir each time (information)",
            seeded.total
        ));
    }

    if plan.wants("tenants") {
        for line in tenants::run(&enrollgraph, pinning, &scratch.0, if quick { 20 } else { 200 })? {
            println!("  {line}");
            report.notes.push(line);
        }
    }

    // The workloads with creates at c=32 also run on enrollgraph's layout, with and without
    // the `target/groupId` index (issue 17: what the layout costs, measured every run).
    const WRITE_SERVERS: &[&str] =
        &["hello", "sqlite-durable", "sqlite-group", "sqlite-group-entity-bare", "sqlite-group-entity", "enrollgraph"];
    // Every server runs at once (idle ones cost nothing), so each workload runs on its
    // ceilings and on enrollgraph back to back: a ratio compares runs seconds apart, under
    // the same background load.
    let schedule: [(Def, &[&str]); 6] = [
        (W1C1, &["sqlite-durable", "sqlite-group", "enrollgraph"]),
        (W1C32, WRITE_SERVERS),
        (W2, &["hello", "sqlite-group", "enrollgraph", TOKEN, METRICS, REQUEST_LOGS]),
        (W3, &["hello", "sqlite-group", "enrollgraph"]),
        (W4, WRITE_SERVERS),
        (W6, &["enrollgraph"]),
    ];
    // `--against`: the other build runs wherever enrollgraph does (not W6, which rewrites
    // the rows the two share: each would see the other's writes).
    let schedule = schedule.map(|(def, names)| {
        let mut names = names.to_vec();
        if cli.against.is_some() && def.id != W6.id {
            names.push(AGAINST);
        }
        (def, names)
    });
    let needed = |name: &str| {
        (matches!(name, "enrollgraph" | NO_PUSH_DOWN) && plan.wants("W5"))
            || schedule.iter().any(|(def, names)| plan.wants(def.id) && names.contains(&name))
    };
    let mut servers: Vec<Running> = Vec::new();
    for kind in
        [Kind::Hello, Kind::SqliteDurable, Kind::SqliteGroup, Kind::SqliteGroupEntityBare, Kind::SqliteGroupEntity]
    {
        if needed(kind.name()) {
            let log = scratch.0.join(format!("{}.log", kind.name()));
            let server = Server::start(&me, &ceiling_args(kind), pinning, &log)?;
            servers.push(Running { name: kind.name(), server, token: None });
        }
    }
    let variants: [(&'static str, &[&str]); 5] = [
        ("enrollgraph", &["--auth", "off"]),
        (TOKEN, &[]),
        (NO_PUSH_DOWN, &["--auth", "off", "--query-push-down", "off"]),
        (METRICS, &["--auth", "off", "--metrics-address", "127.0.0.1:0"]),
        (REQUEST_LOGS, &["--auth", "off"]),
    ];
    for (name, extra) in variants {
        if !needed(name) {
            continue;
        }
        let log = scratch.0.join(format!("{name}.log"));
        let started = if name == REQUEST_LOGS {
            Server::start_with_env(
                &enrollgraph,
                &eg_args(extra),
                pinning,
                &log,
                ("ENROLLGRAPH_LOG", "enrollgraph=info,warn"),
            )
        } else {
            Server::start(&enrollgraph, &eg_args(extra), pinning, &log)
        };
        match started {
            Ok(server) => {
                let token = if name == TOKEN {
                    Some(runtime.block_on(workloads::fetch_token(server.addr, seed::TENANT))?)
                } else {
                    None
                };
                servers.push(Running { name, server, token });
            }
            // The variants only add information; the bench goes on without them.
            Err(e) if name != "enrollgraph" => report.notes.push(format!("{name}: not run: {e}")),
            Err(e) => return Err(e),
        }
    }
    if let Some(other) = &cli.against {
        let server = Server::start(other, &eg_args(&["--auth", "off"]), pinning, &scratch.0.join("against.log"))?;
        servers.push(Running { name: AGAINST, server, token: None });
    }
    for (def, names) in schedule {
        if def.id == W6.id && plan.wants("W5") {
            // W5 before W6: W6 rewrites rows, W5 only reads.
            let eg = find(&mut servers, "enrollgraph")?;
            report.w5 = run_w5(&runtime, &mut eg.server, "enrollgraph", &plan, &seeded, &mut report.runs)?;
            if let (W5::Ran { .. }, Ok(nopd)) = (&report.w5, find(&mut servers, NO_PUSH_DOWN)) {
                run_w5(&runtime, &mut nopd.server, NO_PUSH_DOWN, &plan, &seeded, &mut report.runs)?;
            }
        }
        if !plan.wants(def.id) {
            continue;
        }
        let names: Vec<&'static str> = names.iter().copied().filter(|n| servers.iter().any(|r| r.name == *n)).collect();
        let rounds = if names.len() > 1 { plan.rounds } else { 1 };
        for m in run_interleaved(&runtime, &mut servers, &names, def, &plan, rounds, &seeded)? {
            if m.server == "enrollgraph" && def.id == W4.id {
                report.rss_kib = find(&mut servers, "enrollgraph")?.server.peak_rss_kib();
            }
            report.runs.push(m);
        }
    }
    // Issue 16's budget for metrics (≤ 3 % of W2), measured side by side with plain
    // enrollgraph; the same between two plain processes (A/A) shows what the method reads
    // when nothing differs.
    // The token line (issue 8's 10 %) is measured the same way: interleaved slices of two
    // processes read it anywhere from 0.79 to 1.06 × on one machine (2026-12-06, eleventh
    // round), wider than the budget.
    let start = |name: &'static str| -> Result<(Server, Option<String>), String> {
        let extra: &[&str] = match name {
            METRICS => &["--auth", "off", "--metrics-address", "127.0.0.1:0"],
            TOKEN => &[],
            _ => &["--auth", "off"],
        };
        let log = scratch.0.join(format!("paired-{name}.log"));
        let binary = match (name, &cli.against) {
            (AGAINST, Some(other)) => other,
            _ => &enrollgraph,
        };
        let server = Server::start(binary, &eg_args(extra), pinning, &log)?;
        let token = if name == TOKEN {
            Some(runtime.block_on(workloads::fetch_token(server.addr, seed::TENANT))?)
        } else {
            None
        };
        Ok((server, token))
    };
    if plan.wants("W2") {
        for variant in [METRICS, TOKEN, AGAIN] {
            let cpu_ratios = run_side_by_side(&runtime, &start, ["enrollgraph", variant], W2, &plan, &seeded)?;
            report.paired.push(Paired { variant, base: "enrollgraph", workload: W2.id, cpu_ratios });
        }
    }
    // `--against` side by side too, for the reads: interleaved slices of one binary against
    // itself read 0.86–1.06 × on the eleventh round's machine, where side by side they read
    // within ±1.5 %; a change of a few per cent is only seen this way. This build second,
    // so the ratio reads as the interleaved A/B lines do: this build over the other.
    if cli.against.is_some() {
        for def in [W2, W3].into_iter().filter(|d| plan.wants(d.id)) {
            let cpu_ratios = run_side_by_side(&runtime, &start, [AGAINST, "enrollgraph"], def, &plan, &seeded)?;
            report.paired.push(Paired { variant: "enrollgraph", base: AGAINST, workload: def.id, cpu_ratios });
        }
    }
    drop(servers);
    // W2 over TLS, directly and through `serve --proxy` (issue 14): its own server.
    if plan.wants("W2proxy") {
        let settings = proxied::Settings {
            runtime: &runtime,
            enrollgraph: &enrollgraph,
            data: &data,
            pinning,
            scratch: &scratch.0,
            warmup: plan.warmup,
            duration: plan.duration,
            rounds: plan.rounds,
        };
        report.runs.extend(proxied::run(&settings, &seeded)?);
    }
    // Issue 16: what metrics and request log lines cost on W2, as interleaved slices saw it.
    // Per server CPU-second too: on a shared machine the servers get different shares.
    let w2 = |server: &str| {
        report
            .runs
            .iter()
            .find(|m| m.id == W2.id && m.server == server)
            .map(|m| (m.rps, m.rps / m.server_cpu.max(1e-9)))
    };
    if let Some((base, base_cpu)) = w2("enrollgraph").filter(|b| b.0 > 0.0) {
        for variant in [METRICS, REQUEST_LOGS] {
            if let Some((rps, cpu)) = w2(variant) {
                // One interleaved slot per server: this figure has moved between +1 % and
                // −12 % from run to run (docs/performance.md), more than the budget, so
                // the paired slices judge it.
                let judged = if variant == METRICS { "; issue 16's ≤ 3 % is judged on the paired line" } else { "" };
                report.notes.push(format!(
                    "W2 {variant}: {rps:.0} req/s ({:+.1} % against enrollgraph's {base:.0}, interleaved); per server \
                     CPU-second {cpu:.0} ({:+.1} %{judged})",
                    (rps / base - 1.0) * 100.0,
                    (cpu / base_cpu - 1.0) * 100.0
                ));
            }
        }
    }
    // Issue 17: how much of W1's and W4's gaps is the storage layout, how much enrollgraph's
    // own work.
    for def in [W1C32, W4] {
        let run = |server: &str| report.runs.iter().find(|m| m.id == def.id && m.server == server);
        let (Some(group), Some(layout), Some(eg)) =
            (run("sqlite-group"), run("sqlite-group-entity"), run("enrollgraph"))
        else {
            continue;
        };
        if group.rps <= 0.0 || layout.rps <= 0.0 {
            continue;
        }
        let bare = run("sqlite-group-entity-bare").map_or_else(String::new, |bare| {
            format!(
                "; without the target/groupId index W5 uses (sqlite-group-entity-bare) {:.0} = {:.2} × sqlite-group",
                bare.rps,
                bare.rps / group.rps
            )
        });
        report.notes.push(format!(
            "{}: sqlite-group over enrollgraph's table, indexes and rows (sqlite-group-entity) {:.0} req/s = {:.2} × \
             sqlite-group (the layout's cost){bare}; enrollgraph {:.0} = {:.2} × sqlite-group-entity (its own work)",
            def.id,
            layout.rps,
            layout.rps / group.rps,
            eg.rps,
            eg.rps / layout.rps
        ));
        // What a request costs each: server CPU and bytes sent to storage (WAL frames and
        // checkpoints).
        let per_request = |m: &Measured| {
            let cpu_us = m.server_cpu / m.rps.max(1e-9) * 1e6;
            let kib = m.server_written / m.rps.max(1e-9) / 1024.0;
            format!("{} {cpu_us:.0} µs CPU, {kib:.1} KiB written", m.server)
        };
        let servers = ["sqlite-group", "sqlite-group-entity-bare", "sqlite-group-entity", "enrollgraph"];
        let costs: Vec<String> = servers.iter().filter_map(|s| run(s)).map(per_request).collect();
        report.notes.push(format!("{} per request: {}", def.id, costs.join("; ")));
    }
    let sqlite_w4 = report.runs.iter().find(|m| m.server == "enrollgraph" && m.id == W4.id).map(|m| m.rps);

    for m in &report.runs {
        if matches!(m.id, "W2" | "W3") && m.server_cpu < 0.8 {
            report.notes.push(format!(
                "{} {} (c={}): the server got only {:.2} of its core (other processes on the machine); \
                 its req/s understates it: compare req/cpu-s (cpu-norm)",
                m.server, m.title, m.conns, m.server_cpu
            ));
        }
        if m.gen_cpu >= 0.9 {
            report.notes.push(format!(
                "{} {} (c={}): the generator used {:.2} cores; this number may be the generator's limit, not the server's",
                m.server, m.title, m.conns, m.gen_cpu
            ));
        }
    }
    report.notes.push(format!(
        "W5: $filter=target/groupId eq '{}' with $top={}: 1 in {} assignments of W5's configurations target that group",
        seed::FILTER_GROUP,
        workloads::W5_TOP,
        plan.layout.every
    ));
    let printed = report.print();
    // PostgreSQL (issue 6): its own section, after the SQLite table.
    let pg_ok = if plan.wants("pg") {
        pg::run(&pg::Settings {
            runtime: &runtime,
            enrollgraph: &enrollgraph,
            pinning,
            scratch: &scratch.0,
            warmup: plan.warmup,
            duration: plan.duration,
            layout: plan.layout,
            sqlite_w4,
        })?
    } else {
        true
    };
    println!("total time {:.0} s", started.elapsed().as_secs_f64());
    Ok(printed && pg_ok)
}

/// A server the workloads run on.
struct Running {
    name: &'static str,
    server: Server,
    /// The bearer token its requests carry.
    token: Option<String>,
}

fn find<'a>(servers: &'a mut [Running], name: &str) -> Result<&'a mut Running, String> {
    servers.iter_mut().find(|r| r.name == name).ok_or_else(|| format!("no {name} server"))
}

/// Runs `def` on every server in `names`, in `rounds` slices each, alternating servers
/// (A B C, C B A, …) so slow drifts in the machine's background load fall on all of them
/// alike; each server's slices are merged into one result.
fn run_interleaved(
    runtime: &tokio::runtime::Runtime,
    servers: &mut [Running],
    names: &[&'static str],
    def: Def,
    plan: &Plan,
    rounds: usize,
    seeded: &Seeded,
) -> Result<Vec<Measured>, String> {
    let rounds = rounds.max(1);
    let mut makes = Vec::with_capacity(names.len());
    for name in names {
        let r = find(servers, name)?;
        makes.push(workloads::make(def, &load::head(&r.server.addr.to_string(), r.token.as_deref()), seeded));
    }
    let spec_of = |i: usize| Spec {
        conns: def.conns,
        warmup: (plan.warmup / u32::try_from(rounds).unwrap_or(1)).max(Duration::from_millis(200)),
        duration: plan.duration / u32::try_from(rounds).unwrap_or(1),
        make: makes[i].clone(),
    };
    let mut merged: Vec<Option<load::Outcome>> = names.iter().map(|_| None).collect();
    for round in 0..rounds {
        let order: Vec<usize> =
            if round % 2 == 0 { (0..names.len()).collect() } else { (0..names.len()).rev().collect() };
        for i in order {
            let server = &mut find(servers, names[i])?.server;
            let outcome = runtime.block_on(load::run(server.addr, &spec_of(i), server.pid));
            server.check_alive()?;
            merged[i] = Some(match merged[i].take() {
                Some(m) => m.merge(outcome),
                None => outcome,
            });
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for (name, outcome) in names.iter().zip(merged) {
        let outcome = outcome.ok_or("a server was not run")?;
        if let Some(dir) = &plan.trace_dir {
            write_trace(dir, def.id, name, &outcome.trace)?;
        }
        let m = Measured::new(name, def.id, def.title.to_owned(), def.conns, &outcome);
        println!("{}  server cpu {:.2}", m.summary(), m.server_cpu);
        out.push(m);
    }
    Ok(out)
}

/// Writes `trace` as `dir/<id>-<server>.csv`.
fn write_trace(dir: &std::path::Path, id: &str, server: &str, trace: &[load::Sample]) -> Result<(), String> {
    use std::io::Write as _;
    let path = dir.join(format!("{id}-{server}.csv"));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(fail)?);
    writeln!(out, "done_us,latency_us").map_err(fail)?;
    for s in trace {
        writeln!(out, "{},{}", s.done_us, s.latency_us).map_err(fail)?;
    }
    out.flush().map_err(fail)
}

/// Runs `def` on `names[0]` and `names[1]` at the same time, both servers on the same core,
/// and returns, per measurement, the ratio of their requests per second of server CPU
/// (`names[1]` over `names[0]`): what a request costs each.
///
/// Issue 16's budget for metrics (≤ 3 % of W2) is smaller than what this shared machine's
/// speed moves between slices even half a second apart: back-to-back slices of 0.5 s
/// varied by ±10 % a pair (2026-12-05), and their median moved by ±2 % between runs. Run
/// side by side, both servers see the same machine at every instant, and the ratio of
/// their costs does not depend on how the core was shared between them. Both are fresh
/// processes, started anew every few measurements, so that no process's own history (the
/// bench's plain server has served every workload before) or layout decides the line.
fn run_side_by_side(
    runtime: &tokio::runtime::Runtime,
    start: &dyn Fn(&'static str) -> Result<(Server, Option<String>), String>,
    names: [&'static str; 2],
    def: Def,
    plan: &Plan,
    seeded: &Seeded,
) -> Result<Vec<f64>, String> {
    const PER_PROCESS: usize = 3;
    let measurements = (plan.rounds * 3).max(2);
    let mut ratios = Vec::with_capacity(measurements);
    while ratios.len() < measurements {
        let (first, first_token) = start(names[0])?;
        let (second, second_token) = start(names[1])?;
        let mut servers = [first, second];
        let heads = [
            load::head(&servers[0].addr.to_string(), first_token.as_deref()),
            load::head(&servers[1].addr.to_string(), second_token.as_deref()),
        ];
        let spec = |i: usize, warmup: Duration| Spec {
            conns: def.conns,
            warmup,
            duration: (plan.duration / 4).max(Duration::from_millis(250)),
            make: workloads::make(def, &heads[i], seeded),
        };
        // The first measurement of new processes also warms their caches: not kept.
        for kept in (0..=PER_PROCESS.min(measurements - ratios.len())).map(|k| k > 0) {
            let warmup = Duration::from_millis(300);
            let specs = [spec(0, warmup), spec(1, warmup)];
            let (a, b) = runtime.block_on(async {
                tokio::join!(
                    load::run(servers[0].addr, &specs[0], servers[0].pid),
                    load::run(servers[1].addr, &specs[1], servers[1].pid)
                )
            });
            let mut per_cpu = [0.0; 2];
            for (i, outcome) in [a, b].into_iter().enumerate() {
                servers[i].check_alive()?;
                if outcome.errors > 0 {
                    return Err(format!(
                        "{} {}: {} errors side by side: {}",
                        names[i],
                        def.id,
                        outcome.errors,
                        outcome.first_error.unwrap_or_default()
                    ));
                }
                per_cpu[i] = outcome.requests as f64 / (outcome.server_cpu * outcome.seconds).max(1e-9);
            }
            if kept && per_cpu[0] > 0.0 {
                ratios.push(per_cpu[1] / per_cpu[0]);
            }
        }
    }
    Ok(ratios)
}

/// W5: probe the filter, then time page 1 and page 100 over the big configuration and
/// page 1 over the small one, each at c=1 (latency, not throughput).
fn run_w5(
    runtime: &tokio::runtime::Runtime,
    server: &mut Server,
    name: &'static str,
    plan: &Plan,
    seeded: &Seeded,
    runs: &mut Vec<Measured>,
) -> Result<W5, String> {
    let want = (plan.layout.big / plan.layout.every / workloads::W5_TOP).clamp(1, 100);
    let probe = runtime.block_on(workloads::probe_w5(server.addr, seeded, want));
    let w5 = match probe {
        Ok(p) => p,
        Err(workloads::W5Skip::NoFilter(why)) => {
            return Ok(W5::Skip(format!("server has no $filter yet ({why})")));
        }
        Err(workloads::W5Skip::Broken(why)) => return Err(format!("W5: {why}")),
    };
    let n = w5.n;
    for (id, title, req) in [
        ("W5p1", format!("W5 filter page 1 of {}", plan.layout.big), w5.page1),
        ("W5pN", format!("W5 filter page {n} of {}", plan.layout.big), w5.page_n),
        ("W5small", format!("W5 filter page 1 of {}", plan.layout.small), w5.small1),
    ] {
        let req = std::sync::Arc::new(req);
        let spec = Spec {
            conns: 1,
            warmup: plan.warmup / 2,
            duration: plan.w5_duration,
            make: std::sync::Arc::new(move |_, _, out: &mut Vec<u8>| out.extend_from_slice(&req)),
        };
        let outcome = runtime.block_on(load::run(server.addr, &spec, server.pid));
        server.check_alive()?;
        let m = Measured::new(name, id, title, 1, &outcome);
        println!(
            "  {:<17} {:<30} c=1   {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            m.server, m.title, m.rps, m.p50, m.p99
        );
        runs.push(m);
    }
    Ok(W5::Ran { n, big: plan.layout.big, small: plan.layout.small, filter: w5.filter })
}
