//! `enrollgraph`: the command line. `enrollgraph serve` starts the Graph server on an
//! embedded SQLite database; `tenant`, `app`, `user`, `token` and `keys` manage the
//! built-in directory (README.md).

mod admin;
mod datadir;
mod devapp;
mod listen;
mod ops;
mod proxy;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use enrollgraph_auth::{Issuer, KeySet, permissions};
use enrollgraph_server::identity::{Identity, now};
use enrollgraph_server::{AppState, app};
use enrollgraph_service::{App, Config, Service, User};
use enrollgraph_store::{PostgresStore, SqliteStore, Store};

/// The development tenant, app and secret every server holds, like Azurite's well-known
/// account: published here and in the README, so never use them for anything real.
const DEV_TENANT: &str = "d7c5e0a4-6f1b-4c3e-9a2d-5b8e7f0c1a93";
const DEV_CLIENT_ID: &str = "5e0f7b2a-8c4d-4e1f-9a3b-6d2c1f0e8b7a";
const DEV_CLIENT_SECRET: &str = "egDev8Q~enrollgraph-development-secret-0001";

#[derive(Parser)]
#[command(name = "enrollgraph", version, about = "A self-hosted Microsoft Graph Intune enrollment API")]
struct Cli {
    /// Directory holding the database (and TLS files).
    #[arg(long, global = true, env = "ENROLLGRAPH_DATA_DIR", default_value = "./enrollgraph-data")]
    data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user:pass@host:port/db`) to use instead of the
    /// SQLite file in the data directory; replicas over one database act as one service.
    #[arg(long, global = true, env = "ENROLLGRAPH_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// Log lines as text or as one JSON object per line; levels come from `ENROLLGRAPH_LOG`
    /// (or `RUST_LOG`), e.g. `enrollgraph=debug` or `enrollgraph::request=off`.
    #[arg(long, global = true, env = "ENROLLGRAPH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the Graph server.
    Serve(ServeArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage app registrations.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage users (for delegated tokens).
    #[command(subcommand)]
    User(UserCommand),
    /// Mint an access token for tests, signed with the server's keys.
    Token(TokenArgs),
    /// Manage the signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Fault rules of a running server (its admin API).
    #[command(subcommand)]
    Faults(admin::FaultsCommand),
    /// Print the environment (`export` lines) that sends a tool through `serve --proxy`:
    /// HTTPS_PROXY, NO_PROXY, the local CA and a bundle of the system's roots plus it.
    Env(ProxyPlace),
    /// Which enrollment configuration of each kind and which Autopilot profile apply to a
    /// member of the given groups, and why (JSON; on the data dir, like `tenant`).
    Effective(EffectiveArgs),
    /// Exit 0 when a running server answers `200` at a probe URL (the container image's
    /// HEALTHCHECK: the image holds no curl).
    Health {
        /// The probe to ask (`/health` for liveness, `/ready` for readiness).
        #[arg(long, env = "ENROLLGRAPH_HEALTH_URL", default_value = "http://127.0.0.1:5080/health")]
        url: String,
    },
}

#[derive(Args)]
struct EffectiveArgs {
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// A group the user or device is a member of (repeat for several).
    #[arg(long = "group", required = true)]
    groups: Vec<String>,
    /// A device property for assignment filters, as NAME=VALUE (repeat for several), e.g.
    /// deviceOwnership=Corporate.
    #[arg(long = "device", value_parser = parse_property)]
    device: Vec<(String, String)>,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("'{s}' is not NAME=VALUE"))?;
    Ok((k.strip_prefix("device.").unwrap_or(k).to_owned(), v.to_owned()))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    /// Graph requests need a valid token (the default: rulings.md 9).
    On,
    /// Requests without a token are served in the default tenant (loopback only).
    Off,
}

/// Every flag is also an `ENROLLGRAPH_*` environment variable.
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ENROLLGRAPH_ADDRESS", default_value = "127.0.0.1")]
    address: std::net::IpAddr,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, env = "ENROLLGRAPH_PORT", default_value_t = 5080)]
    port: u16,
    /// The public origin clients use, for @odata.context, nextLink, Location and the
    /// identity endpoints (default: each request's Host / X-Forwarded-* headers).
    #[arg(long, env = "ENROLLGRAPH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Server-driven page size of collections.
    #[arg(long, env = "ENROLLGRAPH_PAGE_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    page_size: u32,
    /// The largest answer (bytes) a GET builds; larger answers are a 400 (issue 18).
    #[arg(long, env = "ENROLLGRAPH_MAX_ANSWER_BYTES", default_value_t = enrollgraph_service::DEFAULT_MAX_ANSWER_BYTES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4096..))]
    max_answer_bytes: usize,
    /// The tenant requests without a token are served in, and where the development app lives.
    #[arg(long, env = "ENROLLGRAPH_TENANT", default_value = DEV_TENANT)]
    tenant: String,
    /// Whether Graph requests need a bearer token.
    #[arg(long, env = "ENROLLGRAPH_AUTH", value_enum, default_value_t = AuthMode::On)]
    auth: AuthMode,
    /// Serve HTTPS with a certificate made and kept in the data dir.
    #[arg(long, env = "ENROLLGRAPH_TLS")]
    tls: bool,
    /// Translate $filter/$orderby to SQL where exact (off: evaluate in memory; for comparison).
    #[arg(long, env = "ENROLLGRAPH_QUERY_PUSH_DOWN", value_enum, default_value_t = Switch::On, hide = true)]
    query_push_down: Switch,
    /// Signing keys (JSON from `enrollgraph keys generate`) to use when the database has none yet.
    #[arg(long, env = "ENROLLGRAPH_SIGNING_KEYS_FILE")]
    signing_keys_file: Option<PathBuf>,
    /// Serve Prometheus metrics at `/metrics` on this address (e.g. `0.0.0.0:9090`), a
    /// listener of its own without authentication: keep it on a private network.
    #[arg(long, env = "ENROLLGRAPH_METRICS_ADDRESS")]
    metrics_address: Option<SocketAddr>,
    /// Seconds in-flight requests may take to finish after SIGTERM or SIGINT.
    #[arg(long, env = "ENROLLGRAPH_SHUTDOWN_GRACE", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    shutdown_grace: u64,
    #[command(flatten)]
    admin: admin::AdminArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    proxy: ProxyArgs,
}

/// `serve --proxy` (proxy.rs): be graph.microsoft.com and login.microsoftonline.com for
/// any tool that honours `HTTPS_PROXY`. Every flag is also an `ENROLLGRAPH_*` variable.
#[derive(Args)]
struct ProxyArgs {
    /// Also run an HTTP/1.1 forward proxy that serves Graph's and the login hosts itself.
    #[arg(long = "proxy", env = "ENROLLGRAPH_PROXY")]
    enabled: bool,
    #[command(flatten)]
    place: ProxyPlace,
    /// Let the proxy listen on a non-loopback address (it is refused without this flag).
    #[arg(long, env = "ENROLLGRAPH_PROXY_ALLOW_REMOTE")]
    proxy_allow_remote: bool,
    /// Tunnel CONNECTs to other hosts untouched instead of refusing them (package feeds).
    #[arg(long, env = "ENROLLGRAPH_PROXY_PASSTHROUGH")]
    proxy_passthrough: bool,
    /// Also serve the national clouds' Graph and login hosts (US Government, China).
    #[arg(long, env = "ENROLLGRAPH_PROXY_NATIONAL_CLOUDS")]
    proxy_national_clouds: bool,
}

/// Where the proxy listens.
#[derive(Args)]
struct ProxyPlace {
    /// Address the proxy listens on.
    #[arg(long, env = "ENROLLGRAPH_PROXY_ADDRESS", default_value = "127.0.0.1")]
    proxy_address: std::net::IpAddr,
    /// Port the proxy listens on (0 picks a free one and prints it).
    #[arg(long, env = "ENROLLGRAPH_PROXY_PORT", default_value_t = 5081)]
    proxy_port: u16,
}

/// What one client may hold (listen.rs); every flag is also an `ENROLLGRAPH_*` variable.
#[derive(Args)]
struct LimitArgs {
    /// Seconds a request's head (and a TLS handshake) may take to arrive.
    #[arg(long, env = "ENROLLGRAPH_HEADER_READ_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout: u64,
    /// Seconds a request's body may take to arrive, from its head (then `408`).
    #[arg(long, env = "ENROLLGRAPH_BODY_READ_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_read_timeout: u64,
    /// Seconds a connection may stay open with no request and no traffic.
    #[arg(long, env = "ENROLLGRAPH_IDLE_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86400))]
    idle_timeout: u64,
    /// Connections open at once; one more is answered `503` and closed.
    #[arg(long, env = "ENROLLGRAPH_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Proxies (IP addresses or CIDR blocks, comma-separated) whose `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` are believed; from anyone else those headers are ignored.
    #[arg(long, env = "ENROLLGRAPH_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    trusted_proxies: Vec<ipnet::IpNet>,
}

/// A CIDR block, or one address as a block of one.
fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("'{s}' is neither an IP address nor a CIDR block"))
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with Intune's defaults; prints its id.
    Create {
        /// The tenant id (default: a new GUID).
        #[arg(long)]
        id: Option<String>,
        /// A domain name of the tenant beside its default `*.onmicrosoft.com` one
        /// (repeatable); the identity endpoints accept it in place of the id.
        #[arg(long = "domain")]
        domains: Vec<String>,
    },
    /// List the tenants.
    List,
    #[command(flatten)]
    Admin(admin::TenantAdmin),
}

#[derive(Subcommand)]
enum AppCommand {
    /// Register an app with a new client secret; prints the client id and secret.
    Create {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// A display name.
        #[arg(long, default_value = "enrollgraph app")]
        name: String,
        /// A granted application permission (repeatable; default DeviceManagementServiceConfig.ReadWrite.All).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The client id (default: a new GUID).
        #[arg(long)]
        client_id: Option<String>,
        /// A PEM file with a public certificate the app signs client assertions with
        /// (repeatable; a file holding a private key is refused).
        #[arg(long = "certificate")]
        certificates: Vec<std::path::PathBuf>,
    },
    /// List the app registrations of a tenant.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create (or replace) a user who can sign in with a password.
    Create {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The sign-in name.
        #[arg(long)]
        upn: String,
        /// The password.
        #[arg(long, env = "ENROLLGRAPH_USER_PASSWORD")]
        password: String,
        /// A consented delegated permission (repeatable; default DeviceManagementServiceConfig.ReadWrite.All).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A personal Microsoft account (refused by every Intune operation).
        #[arg(long)]
        personal: bool,
    },
}

#[derive(Args)]
struct TokenArgs {
    /// The tenant.
    #[arg(long, default_value = DEV_TENANT)]
    tenant: String,
    /// An app-only token for this client id (with the app's granted permissions).
    #[arg(long, conflicts_with = "user")]
    app: Option<String>,
    /// A delegated token for this user (with the user's consented permissions).
    #[arg(long)]
    user: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    lifetime: i64,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Start signing with a new key; tokens signed by the old one stay valid until they expire.
    Rotate,
    /// Print a new key set as JSON (for `serve --signing-keys-file`).
    Generate,
}

/// mimalloc instead of glibc's malloc: its thread-local free lists make an allocation a few
/// instructions, where malloc and free were a fifth of a point read's (callgrind, issue 8's
/// W2; the bench's W4 went from 0.52 to about 0.7 of its ceiling). Cargo.toml says why
/// transparent huge pages are off.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("ENROLLGRAPH_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        // A line per request is opt-in (`ENROLLGRAPH_LOG=enrollgraph=info`): on by default it
        // halved W2's throughput (bench, `eg+request-logs` 25 k against 49 k req/s).
        .unwrap_or_else(|_| "enrollgraph=info,enrollgraph::request=off,warn".into());
    // Lines are written by a thread of their own, through a buffer flushed whenever no line
    // is waiting: a worker formats a line and goes on, instead of making a write(2) per line
    // (bench `eg+request-logs`). Not lossy: a full queue makes workers wait rather than
    // drop lines. `_flushed` writes out what is queued when `main` returns.
    let (writer, _flushed) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // 4,096 lines waiting at most: the default (128,000) is a channel whose slots are
        // all written when it is made, 4 MiB of resident memory (bench: peak RSS).
        .buffered_lines_limit(4096)
        .thread_name("enrollgraph-log")
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    // Colours only for a terminal: a file or a collector gets plain text, and the escape
    // codes around every field name were most of a request line's formatting (callgrind).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("enrollgraph: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enrollgraph: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints to stdout without `println!`, which panics when stdout has been closed.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Command::Keys(KeysCommand::Generate) = cli.command {
        say(&KeySet::generate().map_err(|e| e.to_string())?.to_json());
        return Ok(());
    }
    if let Command::Faults(cmd) = cli.command {
        return admin::faults(&cli.data_dir, cli.database.as_deref(), cmd).await;
    }
    if let Command::Health { url } = &cli.command {
        return ops::probe(url).await;
    }
    if let Command::Env(place) = cli.command {
        datadir::prepare(&cli.data_dir)?;
        say(&proxy_env(&cli.data_dir, &place)?);
        return Ok(());
    }
    let (service, store) = open(&cli.data_dir, cli.database.as_deref())?;
    match cli.command {
        Command::Serve(args) => {
            tracing::info!(database = %describe_database(&cli.data_dir, cli.database.as_deref()), "opened the database");
            let served = serve(service, store.clone(), &cli.data_dir, args).await;
            // Graceful shutdown (issue 16): the listener has stopped and in-flight requests
            // have had their grace; what the writer queue holds is committed before exit.
            tracing::info!("shutting down: committing the writer queue");
            if tokio::time::timeout(std::time::Duration::from_secs(30), store.drain()).await.is_err() {
                tracing::warn!("the writer queue did not drain within 30 s");
            }
            store.close();
            tracing::info!("stopped: database closed");
            served
        }
        Command::Tenant(TenantCommand::Create { id, domains }) => {
            let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()).to_ascii_lowercase();
            if !service.provision_tenant(&id).await.map_err(|e| e.to_string())? {
                return Err(format!("the tenant {id} exists already"));
            }
            for d in &domains {
                service.add_domain(&id, d).await.map_err(|e| format!("domain {d}: {e}"))?;
            }
            say(&id);
            Ok(())
        }
        Command::Tenant(TenantCommand::List) => {
            for t in service.tenants().map_err(|e| e.to_string())? {
                say(&t);
            }
            Ok(())
        }
        Command::Tenant(TenantCommand::Admin(cmd)) => admin::tenant(&service, cmd).await,
        Command::Effective(args) => {
            let q = enrollgraph_service::EffectiveQuery::new(args.groups, args.device).map_err(|e| e.to_string())?;
            let answer = service.effective_assignments(&args.tenant, &q).map_err(|e| e.to_string())?;
            say(&serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::App(AppCommand::Create { tenant, name, roles, client_id, certificates }) => {
            let certificates = admin::read_certificates(&certificates)?;
            let secret = enrollgraph_auth::generate_secret();
            let app_id = client_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let roles =
                if roles.is_empty() { vec![permissions::SERVICE_CONFIG_READ_WRITE_ALL.to_owned()] } else { roles };
            let app = App {
                app_id: app_id.clone(),
                display_name: name,
                roles,
                secret_hashes: vec![enrollgraph_auth::hash_secret(&secret)],
                certificates,
            };
            let thumbprints: String =
                app.certificates.iter().map(|c| format!("\ncertificate:   {}", c.thumbprint)).collect();
            service.save_app(&tenant, app).await.map_err(|e| e.to_string())?;
            say(&format!("client id:     {app_id}\nclient secret: {secret}{thumbprints}"));
            Ok(())
        }
        Command::App(AppCommand::List { tenant }) => {
            for a in service.apps(&tenant).map_err(|e| e.to_string())? {
                say(&format!("{}  {}  {}", a.app_id, a.display_name, a.roles.join(",")));
            }
            Ok(())
        }
        Command::User(UserCommand::Create { tenant, upn, password, scopes, personal }) => {
            let scopes =
                if scopes.is_empty() { vec![permissions::SERVICE_CONFIG_READ_WRITE_ALL.to_owned()] } else { scopes };
            let existing = service.find_user(&tenant, &upn).map_err(|e| e.to_string())?;
            let object_id = existing.map_or_else(|| uuid::Uuid::new_v4().to_string(), |u| u.object_id);
            let user = User {
                object_id: object_id.clone(),
                user_principal_name: upn,
                password_hash: enrollgraph_auth::hash_secret(&password),
                scopes,
                personal,
            };
            service.save_user(&tenant, user).await.map_err(|e| e.to_string())?;
            say(&object_id);
            Ok(())
        }
        Command::Token(args) => {
            let keys = load_keys(&service, None).await?;
            let incarnation =
                service.tenant_incarnation(&args.tenant).map_err(|e| e.to_string())?.ok_or("no such tenant")?.id;
            // Bound to this incarnation of the tenant, as the token endpoint's (issue 18 item 8).
            let issuer = Issuer::new(keys, "https://login.microsoftonline.com")
                .with_tenant_incarnation(Some(incarnation.as_str()).filter(|i| !i.is_empty()));
            let (token, _) = match (&args.app, &args.user) {
                (_, Some(upn)) => {
                    let user =
                        service.find_user(&args.tenant, upn).map_err(|e| e.to_string())?.ok_or("no such user")?;
                    issuer.user_token(
                        &args.tenant,
                        DEV_CLIENT_ID,
                        &user.object_id,
                        &user.user_principal_name,
                        &user.scopes,
                        user.personal,
                        args.lifetime,
                        now(),
                    )
                }
                (app, None) => {
                    let app_id = app.as_deref().unwrap_or(DEV_CLIENT_ID);
                    let app = service
                        .find_app(&args.tenant, app_id)
                        .map_err(|e| e.to_string())?
                        .ok_or("no such app in that tenant")?;
                    issuer.app_token(&args.tenant, &app.app_id, &app.roles, args.lifetime, now())
                }
            }
            .map_err(|e| e.to_string())?;
            say(&token);
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => {
            let mut keys = load_keys(&service, None).await?;
            keys.rotate(now()).map_err(|e| e.to_string())?;
            keys.prune(now());
            service.save_keys(keys.to_json()).await.map_err(|e| e.to_string())?;
            say(&format!("signing with key {}", keys.current_kid()));
            Ok(())
        }
        Command::Keys(KeysCommand::Generate) | Command::Faults(_) | Command::Env(_) | Command::Health { .. } => Ok(()),
    }
}

/// The database a log line may name: the PostgreSQL URL without its user and password.
fn describe_database(data_dir: &Path, database: Option<&str>) -> String {
    match database.filter(|d| !d.is_empty()) {
        Some(url) if url.contains("://") => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{}", host.split('?').next().unwrap_or(host))
        }
        Some(_) => "PostgreSQL (key=value connection string)".into(),
        None => data_dir.join("enrollgraph.sqlite").display().to_string(),
    }
}

fn open(data_dir: &Path, database: Option<&str>) -> Result<(Service, Arc<dyn Store>), String> {
    datadir::prepare(data_dir)?;
    let store: Arc<dyn Store> = match database.filter(|d| !d.is_empty()) {
        Some(url) => {
            Arc::new(PostgresStore::connect(url).map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?)
        }
        None => {
            let db = data_dir.join("enrollgraph.sqlite");
            datadir::create_private_file(&db)?;
            Arc::new(SqliteStore::open(&db).map_err(|e| format!("cannot open {}: {e}", db.display()))?)
        }
    };
    let model = enrollgraph_csdl::Model::load().map_err(|e| e.to_string())?;
    store.ensure_indexes(&model.behaviour.indexes).map_err(|e| format!("cannot create indexes: {e}"))?;
    Ok((Service::new(Arc::new(model), store.clone(), Config::default()), store))
}

/// The persisted key set, made (or taken from `file`) the first time.
async fn load_keys(service: &Service, file: Option<&Path>) -> Result<KeySet, String> {
    let seed = match file {
        Some(f) => Some(std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?),
        None => None,
    };
    let json = service
        .load_or_create_keys(move || {
            seed.unwrap_or_else(|| KeySet::generate().map(|k| k.to_json()).unwrap_or_default())
        })
        .await
        .map_err(|e| e.to_string())?;
    parse_keys(&json)
}

/// A stored key set, read back.
fn parse_keys(json: &str) -> Result<KeySet, String> {
    KeySet::from_json(json).map_err(|e| format!("the signing keys are unusable: {e}"))
}

/// The persisted key set, or `file`'s (stored when the database has none); `None` when the
/// database has none and no file is given: [`make_first_keys`] makes it.
async fn stored_keys(service: &Service, file: Option<&Path>) -> Result<Option<KeySet>, String> {
    if file.is_some() {
        return load_keys(service, file).await.map(Some);
    }
    match service.keys().map_err(|e| format!("cannot read the signing keys: {e}"))? {
        Some(json) => parse_keys(&json).map(Some),
        None => Ok(None),
    }
}

/// A new data dir's first signing key: the RSA prime search (0.2–0.9 s) runs on the
/// blocking pool, outside the write transaction (the writer thread stays free for Graph's
/// writes meanwhile), and is then stored unless another process (a replica, the CLI)
/// stored one first: the stored set is the one returned, so every process signs with it.
/// A store that fails (a PostgreSQL server restarting) is tried again, from 1 s up to every
/// 30 s: the server answers meanwhile, and token requests wait (bounded) for the key.
async fn make_first_keys(service: Service) -> Result<KeySet, String> {
    let made = tokio::task::spawn_blocking(KeySet::generate)
        .await
        .map_err(|e| e.to_string())
        .and_then(|k| k.map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot make a signing key: {e}"))?;
    let json = made.to_json();
    let mut pause = std::time::Duration::from_secs(1);
    let stored = loop {
        let offered = json.clone();
        match service.load_or_create_keys(move || offered).await {
            Ok(stored) => break stored,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_secs = pause.as_secs(), "cannot store the signing keys");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
        }
    };
    parse_keys(&stored)
}

async fn serve(service: Service, store: Arc<dyn Store>, data_dir: &Path, mut args: ServeArgs) -> Result<(), String> {
    args.tenant = enrollgraph_service::canonical_tenant_id(&args.tenant).map_err(|e| format!("--tenant: {e}"))?;
    if args.auth == AuthMode::Off && !args.address.is_loopback() {
        return Err("--auth off is refused unless the server listens on loopback only (rulings.md 9)".into());
    }
    let service = service.with_config(Config {
        page_size: args.page_size as usize,
        push_down: args.query_push_down == Switch::On,
        max_answer_bytes: args.max_answer_bytes,
    });
    service.provision_tenant(&args.tenant).await.map_err(|e| e.to_string())?;
    let keys = stored_keys(&service, args.signing_keys_file.as_deref()).await?;
    // None yet (a new data dir): made off the async workers while the server starts and
    // answers; only the token endpoint and the JWKS wait for it (`Identity::pending`).
    let first_keys = keys.is_none().then(|| tokio::spawn(make_first_keys(service.clone())));
    let loopback = args.address.is_loopback();
    let dev_secret = devapp::ensure(&service, &args.tenant, DEV_CLIENT_ID, DEV_CLIENT_SECRET, loopback).await?;
    let (controls, admin_banner) = admin::controls(&service, args.admin, args.address.is_loopback()).await?;
    let listener = std::net::TcpListener::bind(SocketAddr::new(args.address, args.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.address, args.port))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let tls = if args.tls { Some(tls::ensure(data_dir)?) } else { None };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if local.ip().is_loopback() && tls.is_some() {
        format!("localhost:{}", local.port())
    } else {
        local.to_string()
    };
    let state = AppState {
        service,
        default_tenant: args.tenant.clone().into(),
        public_url: args.public_url.map(Into::into),
        identity: Arc::new({
            let identity = keys.as_ref().map_or_else(Identity::pending, Identity::new);
            if loopback { identity } else { identity.refusing_secret(DEV_CLIENT_SECRET) }
        }),
        auth_required: args.auth == AuthMode::On,
        scheme,
        controls: Arc::new(controls),
    };
    if let Some(making) = first_keys {
        let identity = state.identity.clone();
        tokio::spawn(async move {
            identity.keys_made(making.await.unwrap_or_else(|e| Err(format!("cannot make a signing key: {e}"))));
        });
    }
    // The first line is machine-readable: tests and scripts wait for it.
    let mut banner = format!(
        "enrollgraph listening on {scheme}://{host}\n  tenant:        {}\n  client id:     {DEV_CLIENT_ID}\n  client secret: {dev_secret}\n  authority:     {scheme}://{host}   (token endpoint: {scheme}://{host}/{}/oauth2/v2.0/token)\n  auth:          {}\n  data:          {}",
        args.tenant,
        args.tenant,
        if state.auth_required {
            "bearer tokens required"
        } else {
            "off: requests without a token use the tenant above"
        },
        data_dir.display()
    );
    banner.push_str(&admin_banner);
    if let Some(files) = &tls {
        banner.push_str(&format!("\n  trust this CA: {}", files.ca.display()));
    }
    let proxy = if args.proxy.enabled { Some(start_proxy(&state, data_dir, &args.proxy)?) } else { None };
    if let Some((_, text)) = &proxy {
        banner.push_str(text);
    }
    let metrics = match args.metrics_address {
        Some(addr) => Some(ops::metrics_listener(addr).await?),
        None => None,
    };
    if let Some(addr) = metrics {
        banner.push_str(&format!("\n  metrics:       http://{addr}/metrics"));
    }
    say(&banner);
    let log_requests = tracing::enabled!(target: "enrollgraph::request", tracing::Level::INFO);
    let observer = enrollgraph_server::observe::Observer::new(state.service.model(), metrics.is_some(), log_requests);
    let router = app(state).route("/ready", axum::routing::get(move || ops::ready(store.clone())));
    let observer = (metrics.is_some() || log_requests).then(|| Arc::new(observer));
    let tls = match tls {
        None => None,
        Some(files) => Some(tls::server_config(&files)?),
    };
    let limits = listen::Limits {
        header_read: std::time::Duration::from_secs(args.limits.header_read_timeout),
        body_read: std::time::Duration::from_secs(args.limits.body_read_timeout),
        idle: std::time::Duration::from_secs(args.limits.idle_timeout),
        max_connections: args.limits.max_connections as usize,
        trusted_proxies: args.limits.trusted_proxies,
        shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace),
    };
    let Some(((proxy_listener, proxy), _)) = proxy else {
        return listen::serve(listener, tls, router, None, limits, observer, shutdown()).await;
    };
    // One signal stops both listeners.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let graph = listen::serve(
        listener,
        tls,
        router.clone(),
        None,
        limits.clone(),
        observer.clone(),
        until_stopped(stopped.clone()),
    );
    let forward = listen::serve(proxy_listener, None, router, Some(proxy), limits, observer, until_stopped(stopped));
    let (a, b) = tokio::join!(graph, forward);
    a.and(b)
}

/// The proxy's listener and configuration, and its banner lines.
fn start_proxy(
    state: &AppState,
    data_dir: &Path,
    args: &ProxyArgs,
) -> Result<((std::net::TcpListener, Arc<proxy::Proxy>), String), String> {
    let address = args.place.proxy_address;
    if !address.is_loopback() && !args.proxy_allow_remote {
        return Err(format!(
            "--proxy-address {address} is not a loopback address: a proxy there serves (and with --proxy-passthrough tunnels for) anyone who can reach it; add --proxy-allow-remote to mean it"
        ));
    }
    let listener = std::net::TcpListener::bind(SocketAddr::new(address, args.place.proxy_port))
        .map_err(|e| format!("cannot listen on {address}:{} for the proxy: {e}", args.place.proxy_port))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let files = tls::ensure(data_dir)?;
    let authority = tls::Authority::load(&files)?;
    let mut hosts: Vec<String> = proxy::PUBLIC_HOSTS.iter().map(|h| (*h).to_owned()).collect();
    if args.proxy_national_clouds {
        hosts.extend(proxy::NATIONAL_HOSTS.iter().map(|h| (*h).to_owned()));
    }
    // Intercepted requests name the host the client asked for (its Host header): a fixed
    // public URL is the direct listener's.
    let as_scheme = |scheme: &'static str| {
        let mut s = state.clone();
        s.scheme = scheme;
        s.public_url = None;
        app(s)
    };
    let proxy = proxy::Proxy::new(
        as_scheme("https"),
        as_scheme("http"),
        hosts,
        args.proxy_passthrough,
        state.controls.clone(),
        state.default_tenant.clone(),
        authority,
    );
    let text = format!(
        "\n  proxy:         http://{local}   (serves {} itself; other hosts {})\n  trust this CA: {}",
        proxy.hosts.join(", "),
        if proxy.passthrough { "tunnelled untouched" } else { "refused" },
        files.ca.display()
    );
    Ok(((listener, Arc::new(proxy)), text))
}

/// Where the system's trusted roots are, by distribution.
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// `enrollgraph env`: the variables that send a tool through the proxy, and a bundle of
/// the system's roots plus the local CA, so that passthrough hosts still verify.
fn proxy_env(data_dir: &Path, place: &ProxyPlace) -> Result<String, String> {
    let files = tls::ensure(data_dir)?;
    let ca = std::fs::read_to_string(&files.ca).map_err(|e| format!("cannot read {}: {e}", files.ca.display()))?;
    let roots = SYSTEM_ROOTS.iter().find_map(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    if roots.is_empty() {
        tracing::warn!("no system root certificates found: the bundle holds the local CA only");
    }
    let bundle = files.ca.with_file_name("ca-bundle.pem");
    let mut text = roots;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&ca);
    datadir::write_private(&bundle, &text)?;
    let address = place.proxy_address;
    let host = if address.is_ipv6() { format!("[{address}]") } else { address.to_string() };
    let proxy = format!("http://{host}:{}", place.proxy_port);
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    Ok([
        format!("export HTTPS_PROXY={proxy}"),
        format!("export HTTP_PROXY={proxy}"),
        format!("export https_proxy={proxy}"),
        format!("export http_proxy={proxy}"),
        "export NO_PROXY=localhost,127.0.0.1,::1".to_owned(),
        "export no_proxy=localhost,127.0.0.1,::1".to_owned(),
        format!("export ENROLLGRAPH_CA={}", quote(&files.ca)),
        format!("export REQUESTS_CA_BUNDLE={}", quote(&bundle)),
        format!("export SSL_CERT_FILE={}", quote(&bundle)),
        format!("export NODE_EXTRA_CA_CERTS={}", quote(&bundle)),
    ]
    .join("\n"))
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_named_in_logs_has_no_credentials() {
        let dir = Path::new("/data");
        assert_eq!(
            describe_database(dir, Some("postgres://eg:s3cret-pw@db.internal:5432/enrollgraph?sslmode=require")),
            "postgres://db.internal:5432/enrollgraph"
        );
        assert_eq!(
            describe_database(dir, Some("host=db password=s3cret-pw")),
            "PostgreSQL (key=value connection string)"
        );
        assert_eq!(describe_database(dir, None), "/data/enrollgraph.sqlite");
    }
}
