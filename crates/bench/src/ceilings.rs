//! The ceilings: the fastest servers this machine can run for the same requests and the
//! same bodies, so enrollgraph is judged against what its design could reach here, not
//! against numbers from another machine (design.md "Dependencies, chosen for this project").
//!
//! - `hello`: bare axum, no storage; constant bodies, POST parses and discards.
//! - `sqlite-durable`: SQLite WAL, `synchronous=FULL`, one transaction (one fsync) per POST,
//!   answered after its commit.
//! - `sqlite-group`: the same, but one writer commits every queued POST in one transaction
//!   (group commit). Reads, in both SQLite ceilings, run inline on the async worker through
//!   a per-thread connection with cached statements (no blocking-pool hop).
//! - `sqlite-group-entity` (information, W1 only): `sqlite-group` over enrollgraph's own
//!   table, indexes and rows (the database made by `SqliteStore` with the schema's indexes,
//!   as `serve` makes it, and W5's 101,000 assignments). The gap between it and
//!   `sqlite-group` is what the storage layout costs; the gap between enrollgraph and it is
//!   enrollgraph's own work (issue 17: "the profile that shows what the remaining cost is").
//! - `sqlite-group-entity-bare` (information, W1 only): `sqlite-group-entity` without the
//!   `target/groupId` index W5's push-down uses, and nothing else changed: what that one
//!   index costs, measured in every run.
//!
//! Each runs in its own process (`enrollgraph-bench ceiling KIND`), like enrollgraph, on the
//! runtime enrollgraph uses (`Runtime::new()`: one worker per core it may run on).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

/// Graph's JSON content type, as enrollgraph sends it.
const GRAPH_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// The URL prefix of configurations, as enrollgraph serves them.
pub const CONFIGS: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";

/// The most POSTs `sqlite-group` commits together (enrollgraph's store uses the same).
const MAX_BATCH: usize = 512;

/// Which ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Bare axum, no storage.
    Hello,
    /// SQLite, one durable transaction per POST.
    SqliteDurable,
    /// SQLite, group commit.
    SqliteGroup,
    /// SQLite, group commit, over enrollgraph's table layout and rows.
    SqliteGroupEntity,
    /// The same without the `target/groupId` index.
    SqliteGroupEntityBare,
}

impl Kind {
    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hello => "hello",
            Kind::SqliteDurable => "sqlite-durable",
            Kind::SqliteGroup => "sqlite-group",
            Kind::SqliteGroupEntity => "sqlite-group-entity",
            Kind::SqliteGroupEntityBare => "sqlite-group-entity-bare",
        }
    }
}

/// What the ceilings serve: a real assignment as enrollgraph answered it (without its
/// `@odata.context`) and the keys of the read workloads, written by the bench.
pub struct Fixture {
    /// The assignment body.
    pub entity: Map<String, Value>,
    /// `(configuration id, its assignment ids)`.
    pub parents: Vec<(String, Vec<String>)>,
    /// `(configuration id, how many assignments)` enrollgraph holds besides `parents` (W5's):
    /// stored only by `sqlite-group-entity`, so that its indexes are as deep as enrollgraph's.
    pub filler: Vec<(String, usize)>,
}

impl Fixture {
    /// Writes the fixture as JSON.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let parents: Vec<Value> =
            self.parents.iter().map(|(id, children)| serde_json::json!({"id": id, "assignments": children})).collect();
        let filler: Vec<Value> =
            self.filler.iter().map(|(id, count)| serde_json::json!({"id": id, "count": count})).collect();
        let doc = serde_json::json!({"entity": self.entity, "parents": parents, "filler": filler});
        std::fs::write(path, doc.to_string()).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Reads what [`Fixture::write`] wrote.
    pub fn read(path: &Path) -> Result<Fixture, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let entity = doc.get("entity").and_then(Value::as_object).cloned().ok_or("fixture: no entity")?;
        let parents = doc
            .get("parents")
            .and_then(Value::as_array)
            .ok_or("fixture: no parents")?
            .iter()
            .map(|p| {
                let id = p.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                let children = p
                    .get("assignments")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                (id, children)
            })
            .collect();
        let filler = doc
            .get("filler")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| {
                        let id = f.get("id")?.as_str()?.to_owned();
                        let count = usize::try_from(f.get("count")?.as_u64()?).ok()?;
                        Some((id, count))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Fixture { entity, parents, filler })
    }
}

struct Insert {
    parent: String,
    id: String,
    body: String,
    done: oneshot::Sender<Result<(), String>>,
}

struct App {
    base: String,
    template: Map<String, Value>,
    /// `hello`'s constant bodies.
    one: Bytes,
    list: Bytes,
    /// The SQLite ceilings' database and writer.
    db: Option<(PathBuf, mpsc::Sender<Insert>)>,
    /// `sqlite-group-entity`: reads go to enrollgraph's table layout.
    entity_layout: bool,
}

thread_local! {
    /// This worker's read connection (one database per process).
    static READER: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

fn entity_context(base: &str, parent: &str) -> String {
    format!("{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{parent}')/assignments/$entity")
}

/// `{"@odata.context":"…",` + the stored object without its `{`.
fn with_context(context: &str, body: &str) -> String {
    let mut out = String::with_capacity(context.len() + body.len() + 24);
    out.push_str("{\"@odata.context\":\"");
    out.push_str(context);
    out.push_str("\",");
    out.push_str(body.strip_prefix('{').unwrap_or(body));
    out
}

fn list_body(base: &str, parent: &str, items: &[String]) -> String {
    let mut out = String::with_capacity(200 + items.iter().map(|s| s.len() + 1).sum::<usize>());
    out.push_str("{\"@odata.context\":\"");
    out.push_str(base);
    out.push_str("/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('");
    out.push_str(parent);
    out.push_str("')/assignments\",\"value\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str("]}");
    out
}

fn json(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(GRAPH_JSON))], body.into()).into_response()
}

fn failure(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

fn open_db(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(16);
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(conn)
}

/// Runs `f` with this worker's read connection, opening it on first use.
fn with_reader<T>(path: &Path, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    READER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(open_db(path, true)?);
        }
        match slot.as_ref() {
            Some(conn) => f(conn),
            None => Err(rusqlite::Error::InvalidQuery),
        }
    })
}

async fn get_one(State(app): State<Arc<App>>, UrlPath((parent, id)): UrlPath<(String, String)>) -> Response {
    let Some((path, _)) = &app.db else {
        return json(StatusCode::OK, app.one.clone());
    };
    let sql = if app.entity_layout { ENTITY_GET } else { "SELECT body FROM assignment WHERE parent = ?1 AND id = ?2" };
    let row = with_reader(path, |c| {
        let mut stmt = c.prepare_cached(sql)?;
        if app.entity_layout {
            stmt.query_row(params![parent, id, crate::seed::TENANT], |r| r.get::<_, String>(0)).optional()
        } else {
            stmt.query_row(params![parent, id], |r| r.get::<_, String>(0)).optional()
        }
    });
    match row {
        Ok(Some(body)) => json(StatusCode::OK, with_context(&entity_context(&app.base, &parent), &body)),
        Ok(None) => (StatusCode::NOT_FOUND, "no such assignment").into_response(),
        Err(e) => failure(e),
    }
}

async fn list(State(app): State<Arc<App>>, UrlPath(parent): UrlPath<String>) -> Response {
    let Some((path, _)) = &app.db else {
        return json(StatusCode::OK, app.list.clone());
    };
    let sql = if app.entity_layout {
        ENTITY_LIST
    } else {
        "SELECT body FROM assignment WHERE parent = ?1 ORDER BY seq LIMIT 100"
    };
    let rows = with_reader(path, |c| {
        let mut stmt = c.prepare_cached(sql)?;
        if app.entity_layout {
            stmt.query_map(params![parent, crate::seed::TENANT], |r| r.get::<_, String>(0))?.collect()
        } else {
            stmt.query_map(params![parent], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()
        }
    });
    match rows {
        Ok(items) => json(StatusCode::OK, list_body(&app.base, &parent, &items)),
        Err(e) => failure(e),
    }
}

async fn create(State(app): State<Arc<App>>, UrlPath(parent): UrlPath<String>, body: Bytes) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let Some(target) = parsed.get("target") else {
        return (StatusCode::BAD_REQUEST, "no target").into_response();
    };
    let id = uuid::Uuid::new_v4().to_string();
    let mut entity = app.template.clone();
    entity.insert("id".into(), Value::String(id.clone()));
    entity.insert("target".into(), target.clone());
    let stored = Value::Object(entity).to_string();
    if let Some((_, writer)) = &app.db {
        let (done, wait) = oneshot::channel();
        if writer.send(Insert { parent: parent.clone(), id: id.clone(), body: stored.clone(), done }).is_err() {
            return failure("the writer stopped");
        }
        match wait.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return failure(e),
            Err(_) => return failure("the writer dropped a request"),
        }
    }
    let mut resp = json(StatusCode::CREATED, with_context(&entity_context(&app.base, &parent), &stored));
    if let Ok(loc) = HeaderValue::from_str(&format!("{}{CONFIGS}/{parent}/assignments/{id}", app.base)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// One writer: up to `max_batch` queued inserts per transaction, each answered after the
/// commit (1 = one fsync per POST; more = group commit). `insert` stores a batch.
fn write_loop(
    conn: &Connection,
    queue: &mpsc::Receiver<Insert>,
    max_batch: usize,
    mut insert: impl FnMut(&Connection, &[Insert]) -> rusqlite::Result<()>,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let result = (|| -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let inserted = insert(conn, &batch);
            if inserted.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
                return inserted;
            }
            conn.execute_batch("COMMIT")
        })()
        .map_err(|e| e.to_string());
        for r in batch {
            let _ = r.done.send(result.clone());
        }
    }
}

/// `sqlite-group` and `sqlite-durable`'s rows.
fn insert_assignments(conn: &Connection, batch: &[Insert]) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("INSERT INTO assignment (parent, id, body) VALUES (?1, ?2, ?3)")?;
    for r in batch {
        stmt.execute(params![r.parent, r.id, r.body])?;
    }
    Ok(())
}

/// `sqlite-group-entity`'s reads: enrollgraph's look-ups (parent by key, then the child).
const ENTITY_GET: &str = "SELECT body FROM entity WHERE tenant = ?3 AND nav = 'assignments' AND id = ?2 AND parent = \
     (SELECT seq FROM entity WHERE parent = 0 AND nav = 'deviceEnrollmentConfigurations' AND id = ?1 AND tenant = ?3)";
const ENTITY_LIST: &str = "SELECT body FROM entity WHERE tenant = ?2 AND nav = 'assignments' AND parent = \
     (SELECT seq FROM entity WHERE parent = 0 AND nav = 'deviceEnrollmentConfigurations' AND id = ?1 AND tenant = ?2) \
     ORDER BY seq LIMIT 100";

/// The type enrollgraph stores for an assignment of a configuration.
const ASSIGNMENT_TYPE: &str = "microsoft.graph.enrollmentConfigurationAssignment";

/// `sqlite-group-entity`'s rows, in enrollgraph's layout. A configuration's row is found
/// once and remembered (as enrollgraph's writer remembers parent chains; forgotten when a
/// batch fails), so this is the layout's cost without enrollgraph's per-create work.
fn entity_inserter() -> impl FnMut(&Connection, &[Insert]) -> rusqlite::Result<()> {
    let mut parents: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    move |conn, batch| {
        let inserted = (|| {
            for r in batch {
                let parent = match parents.get(&r.parent) {
                    Some(seq) => *seq,
                    None => {
                        let seq = entity_parent(conn, &r.parent)?;
                        parents.insert(r.parent.clone(), seq);
                        seq
                    }
                };
                conn.prepare_cached(
                    "INSERT INTO entity (tenant, parent, nav, id, type, body) VALUES (?1, ?2, 'assignments', ?3, ?4, ?5)",
                )?
                .execute(params![crate::seed::TENANT, parent, r.id, ASSIGNMENT_TYPE, r.body])?;
            }
            Ok(())
        })();
        if inserted.is_err() {
            parents.clear();
        }
        inserted
    }
}

/// The row of configuration `id` in enrollgraph's layout, made if it is not there.
fn entity_parent(conn: &Connection, id: &str) -> rusqlite::Result<i64> {
    let found: Option<i64> = conn
        .prepare_cached(
            "SELECT seq FROM entity WHERE parent = 0 AND nav = 'deviceEnrollmentConfigurations' AND id = ?1 AND tenant = ?2",
        )?
        .query_row(params![id, crate::seed::TENANT], |r| r.get(0))
        .optional()?;
    if let Some(seq) = found {
        return Ok(seq);
    }
    conn.prepare_cached(
        "INSERT INTO entity (tenant, parent, nav, id, type, body) \
         VALUES (?1, 0, 'deviceEnrollmentConfigurations', ?2, 'microsoft.graph.deviceEnrollmentLimitConfiguration', ?3)",
    )?
    .execute(params![crate::seed::TENANT, id, format!(r#"{{"id":"{id}","displayName":"bench","limit":5,"priority":1}}"#)])?;
    Ok(conn.last_insert_rowid())
}

/// `sqlite-group-entity`'s database: made by enrollgraph's own store (its migrations, and the
/// indexes the schema's behaviour asks for, as `serve` makes them), so the layout measured
/// is always the one enrollgraph runs; then the fixture's assignments and as many more as
/// enrollgraph holds (`filler`), one in a hundred targeting the same group. `indexed`: with
/// the schema's indexes (`target/groupId`), as `serve` makes them.
fn create_db_entity(path: &Path, fixture: &Fixture, indexed: bool) -> Result<Connection, String> {
    let model = enrollgraph_csdl::Model::load().map_err(|e| e.to_string())?;
    let store = enrollgraph_store::SqliteStore::open(path).map_err(|e| e.to_string())?;
    if indexed {
        enrollgraph_store::Store::ensure_indexes(&store, &model.behaviour.indexes).map_err(|e| e.to_string())?;
    }
    drop(store);
    fill_entity_db(path, fixture).map_err(|e| e.to_string())
}

fn fill_entity_db(path: &Path, fixture: &Fixture) -> rusqlite::Result<Connection> {
    let mut conn = open_db(path, false)?;
    // enrollgraph's writer keeps 8 MB of pages (crates/store/src/sqlite.rs).
    conn.pragma_update(None, "cache_size", -8192)?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT OR IGNORE INTO entity (tenant, parent, nav, id, type, body) VALUES (?1, ?2, 'assignments', ?3, ?4, ?5)",
        )?;
        let mut entity = fixture.entity.clone();
        let all = fixture
            .parents
            .iter()
            .map(|(p, ids)| (p, ids.len(), Some(ids)))
            .chain(fixture.filler.iter().map(|(p, n)| (p, *n, None)));
        for (parent, count, ids) in all {
            let seq = entity_parent(&tx, parent)?;
            for i in 0..count {
                let id = ids.and_then(|ids| ids.get(i).cloned()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let group =
                    if i % 100 == 0 { crate::seed::FILTER_GROUP.to_owned() } else { uuid::Uuid::new_v4().to_string() };
                entity.insert("id".into(), Value::String(id.clone()));
                if let Some(Value::Object(target)) = entity.get_mut("target") {
                    target.insert("groupId".into(), Value::String(group));
                }
                let body = serde_json::to_string(&entity).unwrap_or_default();
                stmt.execute(params![crate::seed::TENANT, seq, id, ASSIGNMENT_TYPE, body])?;
            }
        }
    }
    tx.commit()?;
    Ok(conn)
}

/// Creates the database and stores the fixture's assignments (the read workloads' keys).
fn create_db(path: &Path, fixture: &Fixture) -> rusqlite::Result<Connection> {
    let mut conn = open_db(path, false)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS assignment (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             parent TEXT NOT NULL,
             id TEXT NOT NULL,
             body TEXT NOT NULL);
         CREATE UNIQUE INDEX IF NOT EXISTS assignment_key ON assignment (parent, id);
         CREATE INDEX IF NOT EXISTS assignment_list ON assignment (parent, seq);",
    )?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare("INSERT OR IGNORE INTO assignment (parent, id, body) VALUES (?1, ?2, ?3)")?;
        let mut entity = fixture.entity.clone();
        for (parent, ids) in &fixture.parents {
            for id in ids {
                entity.insert("id".into(), Value::String(id.clone()));
                stmt.execute(params![parent, id, serde_json::to_string(&entity).unwrap_or_default()])?;
            }
        }
    }
    tx.commit()?;
    Ok(conn)
}

/// `enrollgraph-bench ceiling KIND`: serves until killed; the first stdout line is
/// `… listening on http://ADDR`, like enrollgraph's.
pub fn serve(kind: Kind, port: u16, fixture: &Path, data_dir: &Path) -> Result<(), String> {
    let fixture = Fixture::read(fixture)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| format!("cannot listen: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let base = format!("http://{addr}");
        let (first_parent, first_ids) = fixture.parents.first().cloned().unwrap_or_default();
        let mut sample = fixture.entity.clone();
        if let Some(id) = first_ids.first() {
            sample.insert("id".into(), Value::String(id.clone()));
        }
        let sample_text = Value::Object(sample).to_string();
        let one = Bytes::from(with_context(&entity_context(&base, &first_parent), &sample_text));
        let hello_list = Bytes::from(list_body(&base, &first_parent, &vec![sample_text; 100]));
        let db = match kind {
            Kind::Hello => None,
            Kind::SqliteDurable | Kind::SqliteGroup | Kind::SqliteGroupEntity | Kind::SqliteGroupEntityBare => {
                std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
                let path = data_dir.join(format!("{}.sqlite", kind.name()));
                let (writer, queue) = mpsc::channel();
                let writer_thread = std::thread::Builder::new().name("ceiling-writer".into());
                let entity = matches!(kind, Kind::SqliteGroupEntity | Kind::SqliteGroupEntityBare);
                let spawned = if entity {
                    let conn = create_db_entity(&path, &fixture, kind == Kind::SqliteGroupEntity)
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                    writer_thread.spawn(move || write_loop(&conn, &queue, MAX_BATCH, entity_inserter()))
                } else {
                    let conn =
                        create_db(&path, &fixture).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                    let max_batch = if kind == Kind::SqliteGroup { MAX_BATCH } else { 1 };
                    writer_thread.spawn(move || write_loop(&conn, &queue, max_batch, insert_assignments))
                };
                spawned.map_err(|e| e.to_string())?;
                Some((path, writer))
            }
        };
        let entity_layout = matches!(kind, Kind::SqliteGroupEntity | Kind::SqliteGroupEntityBare);
        let app = Arc::new(App { base, template: fixture.entity, one, list: hello_list, db, entity_layout });
        let router = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route(&format!("{CONFIGS}/{{parent}}/assignments"), get(list).post(create))
            .route(&format!("{CONFIGS}/{{parent}}/assignments/{{id}}"), get(get_one))
            .with_state(app);
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "enrollgraph-bench ceiling {} listening on http://{addr}", kind.name())
                .and_then(|()| out.flush());
        }
        axum::serve(listener, router).await.map_err(|e| e.to_string())
    })
}
