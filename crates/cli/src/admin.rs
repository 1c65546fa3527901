//! The command line of the admin layer (issue 9): `serve`'s flags for the admin key,
//! throttling, fault rules, the journal and the manual clock; `enrollgraph tenant
//! delete|reset|export|restore` (on the data dir, like `tenant create|list`); and
//! `enrollgraph faults add|list|clear`, which talk to a running server's admin API.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use enrollgraph_server::admin::{Controls, Settings};
use enrollgraph_server::throttle::Mode;
use enrollgraph_service::{Service, Snapshot};
use serde_json::{Value, json};

use crate::say;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// `serve` flags of the admin layer (each also an `ENROLLGRAPH_*` variable).
#[derive(Args)]
pub struct AdminArgs {
    /// Whether the admin API (/_enrollgraph) needs the admin key; off only on loopback.
    #[arg(long, env = "ENROLLGRAPH_ADMIN_AUTH", value_enum, default_value_t = OnOff::On)]
    admin_auth: OnOff,
    /// Use this admin key (default: one made at first start, kept in the data dir).
    #[arg(long, env = "ENROLLGRAPH_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Throttling: off, graph (Intune's limits), or custom limits
    /// (tenant-writes=N,app-writes=N,tenant-requests=N,app-requests=N,window=SECONDS).
    #[arg(long, env = "ENROLLGRAPH_THROTTLING", default_value = "off", value_parser = parse_mode)]
    throttling: Mode,
    /// Fault rules to load at start (JSON: an array of rules, or {"seed": n, "rules": [...]}).
    #[arg(long, env = "ENROLLGRAPH_FAULTS_FILE")]
    faults_file: Option<PathBuf>,
    /// Seed of fault rules that name none (same seed, rules and requests: same faults).
    #[arg(long, env = "ENROLLGRAPH_FAULTS_SEED", default_value_t = 0)]
    faults_seed: u64,
    /// Keep a journal of requests (queryable at /_enrollgraph/journal).
    #[arg(long, env = "ENROLLGRAPH_JOURNAL", value_enum, default_value_t = OnOff::Off)]
    journal: OnOff,
    /// Requests the journal keeps per tenant.
    #[arg(long, env = "ENROLLGRAPH_JOURNAL_SIZE", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    journal_size: u32,
    /// Tests: the throttling clock stands still until POST /_enrollgraph/clock moves it.
    #[arg(long, env = "ENROLLGRAPH_MANUAL_CLOCK", hide = true)]
    manual_clock: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s)
}

/// The shortest admin key `--admin-key` accepts (the generated ones have 38 characters).
pub const MIN_ADMIN_KEY_LEN: usize = 16;

fn new_key() -> String {
    format!("egadm_{}", uuid::Uuid::new_v4().simple())
}

/// Builds the controls for `serve`: checks the flags, loads the admin key and the fault file.
/// Returns them and the banner's lines.
pub async fn controls(service: &Service, args: AdminArgs, loopback: bool) -> Result<(Controls, String), String> {
    if args.admin_auth == OnOff::Off && !loopback {
        return Err("--admin-auth off is refused unless the server listens on loopback only".into());
    }
    // It travels as `Authorization: Bearer <key>`: a key a header cannot carry (empty,
    // spaces, non-ASCII) would lock the admin API for good. It opens every tenant, and it
    // is stored as a fast hash (made for random keys), so a short chosen one is refused
    // (issue 18 item 15).
    if let Some(k) = &args.admin_key
        && (k.len() < MIN_ADMIN_KEY_LEN || k.len() > 256 || !k.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(format!(
            "--admin-key must be {MIN_ADMIN_KEY_LEN} to 256 visible ASCII characters (no spaces); a random one is best"
        ));
    }
    let (hash, shown) = if args.admin_auth == OnOff::On {
        let (hash, shown) = service.admin_key(args.admin_key.clone(), new_key).await.map_err(|e| e.to_string())?;
        (Some(hash), shown)
    } else {
        (None, None)
    };
    let controls = Controls::new(Settings {
        key: hash.clone(),
        throttling: args.throttling,
        manual_clock: args.manual_clock,
        faults_seed: args.faults_seed,
        journal: args.journal == OnOff::On,
        journal_size: args.journal_size as usize,
    });
    if let Some(file) = &args.faults_file {
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        controls.faults.load(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    let mut banner = match (&hash, shown, &args.admin_key) {
        (None, ..) => "\n  admin key:     off (admin API open on loopback)".to_owned(),
        (Some(_), _, Some(k)) => format!("\n  admin key:     {} (from --admin-key)", mask(k)),
        // Shown once, when made, like a client secret: only its hash is kept.
        (Some(_), Some(k), None) => {
            format!("\n  admin key:     {k}   (admin API: /_enrollgraph; shown once, only its hash is kept)")
        }
        (Some(_), None, None) => "\n  admin key:     (kept hashed; shown when it was made, give it with --admin-key or ENROLLGRAPH_ADMIN_KEY)".to_owned(),
    };
    let mode = match args.throttling {
        Mode::Off => "off".to_owned(),
        Mode::Graph => "graph (Intune's limits, per replica)".to_owned(),
        Mode::Custom(_) => "custom limits (per replica)".to_owned(),
    };
    banner.push_str(&format!("\n  throttling:    {mode}"));
    if controls.faults.any() {
        banner.push_str(&format!("\n  faults:        {} rule(s) loaded", controls.faults.list().len()));
    }
    if controls.journal.is_on() {
        banner.push_str(&format!("\n  journal:       on ({} requests per tenant)", args.journal_size));
    }
    Ok((controls, banner))
}

fn mask(k: &str) -> String {
    format!("{}…", k.chars().take(8).collect::<String>())
}

/// `enrollgraph tenant delete|reset|export|restore`: on the data dir (stop the server, or
/// use the admin API of a running one, whose caches these do not reach).
#[derive(Subcommand)]
pub enum TenantAdmin {
    /// Delete a tenant and everything it holds.
    Delete {
        /// The tenant.
        #[arg(long)]
        id: String,
    },
    /// Put a tenant back to Intune's defaults (its apps and users are kept).
    Reset {
        /// The tenant.
        #[arg(long)]
        id: String,
    },
    /// Print a tenant's snapshot (JSON) to stdout, or write it to a file.
    Export {
        /// The tenant.
        #[arg(long)]
        id: String,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replace a tenant's data with a snapshot (same ids); creates the tenant if needed.
    Restore {
        /// The tenant.
        #[arg(long)]
        id: String,
        /// The snapshot file (`-`: stdin).
        #[arg(long)]
        file: PathBuf,
    },
}

/// Runs a tenant admin command on the data dir.
pub async fn tenant(service: &Service, cmd: TenantAdmin) -> Result<(), String> {
    match cmd {
        TenantAdmin::Delete { id } => {
            service.delete_tenant(&id).await.map_err(|e| e.to_string())?;
            say(&format!("deleted {id}"));
        }
        TenantAdmin::Reset { id } => {
            service.reset_tenant(&id).await.map_err(|e| e.to_string())?;
            say(&format!("reset {id}"));
        }
        TenantAdmin::Export { id, out } => {
            let snap = service
                .export_tenant(&id)
                .map_err(|e| e.to_string())?
                .ok_or(format!("the tenant {id} does not exist"))?;
            let text = serde_json::to_string(&snap).map_err(|e| e.to_string())?;
            match out {
                // A snapshot holds the tenant's secret hashes: private, like the data dir.
                Some(path) => crate::datadir::write_private(&path, &text)?,
                None => say(&text),
            }
        }
        TenantAdmin::Restore { id, file } => {
            let text = if file == Path::new("-") {
                std::io::read_to_string(std::io::stdin()).map_err(|e| format!("cannot read stdin: {e}"))?
            } else {
                std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?
            };
            let snap: Snapshot = serde_json::from_str(&text).map_err(|e| format!("not a snapshot: {e}"))?;
            service.restore_tenant(&id, snap).await.map_err(|e| e.to_string())?;
            say(&format!("restored {id}"));
        }
    }
    Ok(())
}

/// Where the running server is and how to open its admin API.
#[derive(Args)]
pub struct Remote {
    /// The running server's origin.
    #[arg(long, env = "ENROLLGRAPH_SERVER", default_value = "http://127.0.0.1:5080")]
    server: String,
    /// The admin key (printed once when the server made it; the server keeps only its hash).
    #[arg(long, env = "ENROLLGRAPH_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
}

/// `enrollgraph faults ...`: fault rules of a running server (its admin API).
#[derive(Subcommand)]
// Parsed once per run of the CLI; boxing would only obscure the clap definition.
#[allow(clippy::large_enum_variant)]
pub enum FaultsCommand {
    /// Add a rule; prints it (with its id) as JSON.
    Add {
        #[command(flatten)]
        remote: Remote,
        /// Only this method.
        #[arg(long)]
        method: Option<String>,
        /// Only paths matching this pattern (`*/assignments`).
        #[arg(long)]
        path: Option<String>,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Only this app (client id).
        #[arg(long)]
        app: Option<String>,
        /// Answer this status (429, 500, 502, 503, 504, ...).
        #[arg(long)]
        status: Option<u16>,
        /// The Graph error code (default from the status).
        #[arg(long)]
        code: Option<String>,
        /// The problem named in the message.
        #[arg(long)]
        message: Option<String>,
        /// Retry-After seconds.
        #[arg(long)]
        retry_after: Option<u64>,
        /// Delay matching requests this many milliseconds.
        #[arg(long)]
        latency_ms: Option<u64>,
        /// Drop the connection.
        #[arg(long)]
        drop: bool,
        /// Fire with this probability (0-1).
        #[arg(long)]
        probability: Option<f64>,
        /// Fire on the n-th matching request.
        #[arg(long)]
        nth: Option<u64>,
        /// Fire at most this many times.
        #[arg(long)]
        times: Option<u64>,
        /// Seed of this rule's generator.
        #[arg(long)]
        seed: Option<u64>,
        /// The whole rule as JSON instead of the flags above.
        #[arg(long, conflicts_with_all = ["method", "path", "tenant", "app", "status", "code", "message", "retry_after", "latency_ms", "drop", "probability", "nth", "times", "seed"])]
        json: Option<String>,
    },
    /// List the rules with their counters (JSON).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove every rule.
    Clear {
        #[command(flatten)]
        remote: Remote,
    },
}

async fn call(
    data_dir: &Path,
    database: Option<&str>,
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    // The server keeps only the key's hash (issue 18 item 4), so the CLI cannot read it
    // from the data dir: it is given (flag or variable), or the admin API must be open.
    let _ = (data_dir, database);
    let key = remote.admin_key.clone();
    let url = format!("{}{}{path}", remote.server.trim_end_matches('/'), enrollgraph_server::admin::PREFIX);
    let mut rb = reqwest::Client::new().request(method, &url);
    if let Some(k) = &key {
        rb = rb.bearer_auth(k);
    }
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b.to_string());
    }
    let r = rb.send().await.map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| e.to_string())?;
    if status == reqwest::StatusCode::UNAUTHORIZED && key.is_none() {
        return Err(format!("{url}: {status}: give the admin key with --admin-key or ENROLLGRAPH_ADMIN_KEY"));
    }
    if !status.is_success() {
        return Err(format!("{url}: {status}: {text}"));
    }
    if text.is_empty() { Ok(Value::Null) } else { serde_json::from_str(&text).map_err(|e| format!("{url}: {e}")) }
}

/// Runs a faults command against a running server.
pub async fn faults(data_dir: &Path, database: Option<&str>, cmd: FaultsCommand) -> Result<(), String> {
    match cmd {
        FaultsCommand::Add {
            remote,
            method,
            path,
            tenant,
            app,
            status,
            code,
            message,
            retry_after,
            latency_ms,
            drop,
            probability,
            nth,
            times,
            seed,
            json: raw,
        } => {
            let rule = match raw {
                Some(text) => serde_json::from_str(&text).map_err(|e| format!("--json: {e}"))?,
                None => {
                    let mut v = json!({
                        "method": method, "path": path, "tenant": tenant, "app": app, "status": status,
                        "code": code, "message": message, "retryAfter": retry_after, "latencyMs": latency_ms,
                        "drop": drop.then_some(true), "probability": probability, "nth": nth, "times": times, "seed": seed,
                    });
                    if let Value::Object(m) = &mut v {
                        m.retain(|_, v| !v.is_null());
                    }
                    v
                }
            };
            let out = call(data_dir, database, &remote, reqwest::Method::POST, "/faults", Some(&rule)).await?;
            say(&out.to_string());
        }
        FaultsCommand::List { remote } => {
            let out = call(data_dir, database, &remote, reqwest::Method::GET, "/faults", None).await?;
            for rule in out["value"].as_array().into_iter().flatten() {
                say(&rule.to_string());
            }
        }
        FaultsCommand::Clear { remote } => {
            call(data_dir, database, &remote, reqwest::Method::DELETE, "/faults", None).await?;
            say("cleared");
        }
    }
    Ok(())
}

/// Reads `app create --certificate` files: public certificates only (a file holding a
/// private key is refused, so none is ever stored), not expired.
///
/// # Errors
/// The file and why it was refused.
pub fn read_certificates(paths: &[std::path::PathBuf]) -> Result<Vec<enrollgraph_auth::ClientCertificate>, String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    paths
        .iter()
        .map(|p| {
            let pem = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            enrollgraph_auth::ClientCertificate::from_pem(&pem, now).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}
