//! Seeds enrollgraph's data directory in process, through `enrollgraph-service` (the code
//! `serve` runs), before the server starts: 100,000 creates over HTTP would take longer than
//! the whole benchmark, and in process many creates share one group commit.
//!
//! Layout (the numbers are [`Layout`]'s):
//! - `read` configurations × `per_parent` assignments: the keys of W2/W3/W4 reads (and the
//!   ceilings' rows);
//! - `write` configurations without assignments: W1/W4 create under them, so the read
//!   parents keep exactly one page;
//! - `assign` configurations: W6 replaces their set;
//! - `big` (100,000 assignments) and `small` (1,000) configurations for W5: one in
//!   `every` (1 %) targets the group [`FILTER_GROUP`], the rest a random group each, so
//!   `$filter=target/groupId eq '<FILTER_GROUP>'` is selective and its matches are spread
//!   evenly in insertion (= paging) order.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use enrollgraph_csdl::ApiVersion;
use enrollgraph_service::{Config, Method, Request, Service};
use enrollgraph_store::{PostgresStore, SqliteStore, Store};
use serde_json::{Map, Value, json};

use crate::load::Rng;

/// The tenant `enrollgraph serve` provisions and serves by default (crates/cli/src/main.rs).
pub const TENANT: &str = "d7c5e0a4-6f1b-4c3e-9a2d-5b8e7f0c1a93";

/// The database file `serve` opens in its data directory (crates/cli/src/main.rs).
pub const DB_FILE: &str = "enrollgraph.sqlite";

/// The group 1 % of W5's assignments target.
pub const FILTER_GROUP: &str = "0f0f0f0f-5e1e-4c71-8e00-00000000f117";

/// The base URL of in-process requests (only response bodies carry it; nothing stored does).
const BASE: &str = "http://127.0.0.1:5080";

/// Creates in flight at once: enough to fill the writer's batches (512 per commit).
const IN_FLIGHT: usize = 2048;

/// How much to seed.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub read: usize,
    pub per_parent: usize,
    pub write: usize,
    pub assign: usize,
    pub big: usize,
    pub small: usize,
    pub every: usize,
}

/// What was seeded: the keys the workloads use.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Read configurations and their assignment ids.
    pub read: Vec<(String, Vec<String>)>,
    /// Configurations W1/W4 create under.
    pub write: Vec<String>,
    /// Configurations W6 assigns.
    pub assign: Vec<String>,
    /// W5's configuration with `big` assignments.
    pub big: String,
    /// W5's configuration with `small` assignments.
    pub small: String,
    /// A real assignment as enrollgraph answers GET, without `@odata.context`.
    pub entity: Map<String, Value>,
    /// Assignments stored in all.
    pub total: usize,
    /// Seconds seeding took.
    pub seconds: f64,
}

fn request(method: Method, path: String, body: Option<Value>) -> Request {
    Request {
        method,
        version: ApiVersion::Beta,
        path,
        query: String::new(),
        body,
        tenant: TENANT.into(),
        base_url: BASE.into(),
    }
}

/// POSTs every `(path, body)`, many at once, and returns the created ids in order.
async fn post_many(service: &Service, items: Vec<(String, Value)>) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let handles: Vec<_> = items
            .by_ref()
            .take(IN_FLIGHT)
            .map(|(path, body)| {
                let service = service.clone();
                tokio::spawn(async move { service.handle(request(Method::Post, path, Some(body))).await })
            })
            .collect();
        for h in handles {
            let resp = h.await.map_err(|e| format!("seeding task: {e}"))?.map_err(|e| format!("seeding: {e}"))?;
            let id = match (resp.status, resp.body.json()) {
                (201, Some(v)) => v.get("id").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            ids.push(id.ok_or_else(|| format!("seeding: unexpected answer {resp:?}"))?);
        }
    }
    Ok(ids)
}

fn config_body(name: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
        "displayName": name,
        "description": "enrollgraph-bench",
        "limit": 5
    })
}

/// A create-assignment body, as W1 sends it.
pub fn assignment_body(group: &str) -> Value {
    json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}})
}

fn assignments_path(config: &str) -> String {
    format!("deviceManagement/deviceEnrollmentConfigurations/{config}/assignments")
}

async fn seed_async(dir: &Path, layout: Layout) -> Result<Seeded, String> {
    let db = dir.join(DB_FILE);
    let store = SqliteStore::open(&db).map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    seed_store(Arc::new(store), layout).await
}

/// Seeds the PostgreSQL database at `url` (fresh) the same way, through the same service.
pub fn seed_postgres(url: &str, layout: Layout) -> Result<Seeded, String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("seeding runtime: {e}"))?;
        let store = PostgresStore::connect(&url).map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?;
        runtime.block_on(seed_store(Arc::new(store), layout))
    })
    .join()
    .map_err(|_| "the seeding thread panicked".to_owned())?
}

async fn seed_store(store: Arc<dyn Store>, layout: Layout) -> Result<Seeded, String> {
    let started = Instant::now();
    let model = enrollgraph_csdl::Model::load().map_err(|e| format!("model: {e}"))?;
    let service = Service::new(Arc::new(model), store, Config::default());
    service.provision_tenant(TENANT).await.map_err(|e| format!("provisioning: {e}"))?;

    let names: Vec<String> = (0..layout.read)
        .map(|i| format!("read-{i}"))
        .chain((0..layout.write).map(|i| format!("write-{i}")))
        .chain((0..layout.assign).map(|i| format!("assign-{i}")))
        .chain(["filter-big".to_owned(), "filter-small".to_owned()])
        .collect();
    let configs = post_many(
        &service,
        names.iter().map(|n| ("deviceManagement/deviceEnrollmentConfigurations".to_owned(), config_body(n))).collect(),
    )
    .await?;
    let (read_ids, rest) = configs.split_at(layout.read);
    let (write, rest) = rest.split_at(layout.write);
    let (assign, rest) = rest.split_at(layout.assign);
    let (big, small) = (rest[0].clone(), rest[1].clone());

    let mut rng = Rng::new(42);
    let mut items = Vec::new();
    for config in read_ids {
        for _ in 0..layout.per_parent {
            items.push((assignments_path(config), assignment_body(&rng.uuid())));
        }
    }
    for (config, n) in [(&big, layout.big), (&small, layout.small)] {
        for i in 0..n {
            let group = if i % layout.every == 0 { FILTER_GROUP.to_owned() } else { rng.uuid() };
            items.push((assignments_path(config), assignment_body(&group)));
        }
    }
    let total = items.len();
    let ids = post_many(&service, items).await?;
    let read: Vec<(String, Vec<String>)> = read_ids
        .iter()
        .zip(ids.chunks(layout.per_parent))
        .map(|(config, children)| (config.clone(), children.to_vec()))
        .collect();

    // The body the ceilings serve: what enrollgraph itself answers for GET.
    let (config, children) = read.first().ok_or("seeding: no read configuration")?;
    let child = children.first().ok_or("seeding: no assignment")?;
    let got = service
        .handle(request(Method::Get, format!("{}/{child}", assignments_path(config)), None))
        .await
        .map_err(|e| format!("seeding: reading back: {e}"))?;
    let Some(Value::Object(mut entity)) = got.body.json() else {
        return Err(format!("seeding: GET answered {got:?}"));
    };
    entity.remove("@odata.context");

    Ok(Seeded {
        read,
        write: write.to_vec(),
        assign: assign.to_vec(),
        big,
        small,
        entity,
        total,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Seeds `dir` (fresh) on a thread of its own, so its per-thread read connection and the
/// store's writer are gone before the server opens the file; then checkpoints the WAL so
/// start-up is measured on a settled database.
pub fn seed(dir: &Path, layout: Layout) -> Result<Seeded, String> {
    let owned: PathBuf = dir.to_owned();
    let seeded = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("seeding runtime: {e}"))?;
        runtime.block_on(seed_async(&owned, layout))
    })
    .join()
    .map_err(|_| "the seeding thread panicked".to_owned())??;
    let db = dir.join(DB_FILE);
    let conn = rusqlite::Connection::open(&db).map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| e.to_string())?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(|e| format!("checkpoint: {e}"))?;
    Ok(seeded)
}
