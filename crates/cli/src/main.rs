//! `enrollgraph`: the command line. `enrollgraph serve` starts the Graph server on an
//! embedded SQLite database (README.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use enrollgraph_server::{AppState, app};
use enrollgraph_service::{Config, Service};
use enrollgraph_store::{SqliteStore, Store};

/// The development tenant every server holds, like Azurite's well-known account.
const DEV_TENANT: &str = "d7c5e0a4-6f1b-4c3e-9a2d-5b8e7f0c1a93";

#[derive(Parser)]
#[command(name = "enrollgraph", version, about = "A self-hosted Microsoft Graph Intune enrollment API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the Graph server.
    Serve(ServeArgs),
}

/// Every flag is also an `ENROLLGRAPH_*` environment variable.
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ENROLLGRAPH_ADDRESS", default_value = "127.0.0.1")]
    address: std::net::IpAddr,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, env = "ENROLLGRAPH_PORT", default_value_t = 5080)]
    port: u16,
    /// Directory holding the database.
    #[arg(long, env = "ENROLLGRAPH_DATA_DIR", default_value = "./enrollgraph-data")]
    data_dir: PathBuf,
    /// The public origin clients use, for @odata.context, nextLink and Location
    /// (default: taken from each request's Host / X-Forwarded-* headers).
    #[arg(long, env = "ENROLLGRAPH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Server-driven page size of collections.
    #[arg(long, env = "ENROLLGRAPH_PAGE_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    page_size: u32,
    /// The tenant id requests are served in.
    #[arg(long, env = "ENROLLGRAPH_TENANT", default_value = DEV_TENANT)]
    tenant: String,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENROLLGRAPH_LOG")
                .unwrap_or_else(|_| "enrollgraph=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("enrollgraph: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enrollgraph: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    let db = args.data_dir.join("enrollgraph.sqlite");
    let store = SqliteStore::open(&db).map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let model = enrollgraph_csdl::Model::load().map_err(|e| e.to_string())?;
    store.ensure_indexes(&model.behaviour.indexes).map_err(|e| format!("cannot create indexes: {e}"))?;
    let service = Service::new(Arc::new(model), Arc::new(store), Config { page_size: args.page_size as usize });
    service.provision_tenant(&args.tenant).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.address, args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.address, args.port))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let state =
        AppState { service, default_tenant: args.tenant.clone().into(), public_url: args.public_url.map(Into::into) };
    // The first line is machine-readable: tests and scripts wait for it.
    // Written without println!, which panics when stdout has been closed.
    let banner = format!(
        "enrollgraph listening on http://{local}\n  tenant:   {}\n  data:     {}\n  try:      curl http://{local}/beta/deviceManagement/deviceEnrollmentConfigurations\n",
        args.tenant,
        db.display()
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown()).await.map_err(|e| e.to_string())
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
