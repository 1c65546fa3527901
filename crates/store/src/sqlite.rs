//! The embedded SQLite store: WAL, `synchronous=FULL`, one writer thread that commits
//! every queued write in one transaction (group commit: one fsync for many requests,
//! each answered only after the commit), and reads on the calling thread through a
//! per-thread connection with cached statements (design.md "Dependencies": reads inline
//! reach ~3× the throughput of a blocking pool).

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;

use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, params};

use crate::{
    BoxFuture, Link, ListSpec, ReadTx, Row, RowRef, Seq, SqlParam, Store, StoreError, Tx, WriteJob, WriteRequest,
};

/// Forward-only migrations; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE tenant (id TEXT PRIMARY KEY, created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
    CREATE TABLE entity (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT    NOT NULL,
        parent INTEGER NOT NULL,
        nav    TEXT    NOT NULL,
        id     TEXT    NOT NULL COLLATE NOCASE,
        type   TEXT    NOT NULL,
        body   TEXT    NOT NULL
    );
    CREATE UNIQUE INDEX entity_key ON entity (tenant, parent, nav, id);
    CREATE INDEX entity_list ON entity (tenant, parent, nav, seq);
    CREATE TABLE link (
        tenant TEXT    NOT NULL,
        source INTEGER NOT NULL,
        nav    TEXT    NOT NULL,
        target INTEGER NOT NULL,
        PRIMARY KEY (source, nav)
    );
    CREATE INDEX link_target ON link (target, nav);
",
    r"
    -- The integer parent first: a point look-up compares one integer per index entry
    -- before any text, where (tenant, ...) compared a 36-character tenant id first
    -- (callgrind: the look-ups of every request, issue 8's W1/W2). Tenant scoping is
    -- unchanged: every query still constrains `tenant`.
    DROP INDEX entity_key;
    DROP INDEX entity_list;
    CREATE UNIQUE INDEX entity_key ON entity (parent, nav, id, tenant);
    CREATE INDEX entity_list ON entity (parent, nav, tenant, seq);
",
];

/// The most writes committed together.
const MAX_BATCH: usize = 512;

static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's read connections, one per open store.
    static READERS: RefCell<Vec<(u64, Connection)>> = const { RefCell::new(Vec::new()) };
}

/// SQLite behind [`Store`].
pub struct SqliteStore {
    id: u64,
    path: PathBuf,
    writer: mpsc::Sender<WriteRequest>,
    /// Announced writes whose job has not started ([`Store::announce_write`]).
    arriving: Arc<AtomicUsize>,
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    if !read_only {
        // WAL + FULL: an acknowledged commit is on disk and survives kill -9 (issue 2).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The writer touches index pages at random (GUID keys): with SQLite's default 2 MB
        // cache, inserts into a 100,000-row database went to read() for pages (bench W1
        // profile). 8 MB keeps the hot index pages; readers keep the default.
        conn.pragma_update(None, "cache_size", -8192)?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?.try_into().unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database is at schema version {version}, newer than this binary knows ({}); refusing to start",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = open_connection(path, false)?;
        migrate(&mut conn)?;
        let (writer, queue) = mpsc::channel::<WriteRequest>();
        let arriving = Arc::new(AtomicUsize::new(0));
        let counted = arriving.clone();
        std::thread::Builder::new()
            .name("enrollgraph-sqlite-writer".into())
            .spawn(move || write_loop(&conn, &queue, &counted))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(SqliteStore { id: NEXT_STORE.fetch_add(1, Ordering::Relaxed), path: path.to_owned(), writer, arriving })
    }
}

/// Group commit: gather the queued requests ([`crate::gather`]), run each in its own
/// savepoint inside one transaction, commit once, then answer them all. A job alone in
/// its batch needs no savepoint (the transaction is its own: rolled back if it fails);
/// a savepoint copies every page the job touches to the statement journal (callgrind,
/// issue 8's W1 at c=1).
fn write_loop(conn: &Connection, queue: &mpsc::Receiver<WriteRequest>, arriving: &AtomicUsize) {
    let mut expect = 1;
    let chains = RefCell::new(Chains::default());
    while let Ok(first) = queue.recv() {
        let batch = crate::gather(queue, first, MAX_BATCH, arriving, &mut expect, crate::GATHER_WAIT);
        let mut results = Vec::with_capacity(batch.len());
        let (started, size) = (std::time::Instant::now(), batch.len());
        // Cached: a statement prepared per commit was 3.5 k instructions (callgrind, W1 c=1).
        let begun = conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([]));
        if begun.is_ok() {
            // Under the write lock: no other connection can commit until this batch ends.
            let version =
                conn.prepare_cached("PRAGMA data_version").and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)));
            let mut c = chains.borrow_mut();
            if version.as_ref().ok() != c.data_version.as_ref() {
                c.forget();
            }
            c.data_version = version.ok();
        }
        let mut dones = Vec::with_capacity(batch.len());
        let alone = batch.len() == 1;
        for req in batch {
            dones.push(req.done);
            if let Err(e) = &begun {
                results.push(Err(crate::sqlite_error(e)));
                continue;
            }
            results.push(run_job(conn, &chains, &req.tenant, req.job, !alone));
        }
        if begun.is_ok() && !results.iter().any(Result::is_ok) {
            // Nothing to keep (a job alone that failed left its writes in the transaction).
            chains.borrow_mut().forget();
            if let Err(e) = conn.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([])) {
                tracing::error!(error = %e, "rollback failed");
            }
        } else if begun.is_ok()
            && let Err(e) = conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([]))
        {
            tracing::error!(error = %e, "commit failed");
            chains.borrow_mut().forget();
            let _ = conn.execute_batch("ROLLBACK");
            for r in &mut results {
                *r = Err(crate::sqlite_error(&e).context("commit failed"));
            }
        }
        crate::record_commit("sqlite", size, started);
        for (done, result) in dones.into_iter().zip(results) {
            let _ = done.send(result);
        }
    }
}

fn run_job(
    conn: &Connection,
    chains: &RefCell<Chains>,
    tenant: &str,
    job: WriteJob,
    savepoint: bool,
) -> Result<(), StoreError> {
    // Cached statements: these run once per write (bench W1).
    if savepoint {
        conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    }
    let mut tx = SqliteTx { conn, tenant, chains: Some(chains), single: None };
    let outcome = catch_unwind(AssertUnwindSafe(|| job(&mut tx)))
        .unwrap_or_else(|_| Err(StoreError::Backend("a write job panicked".into())));
    if outcome.is_err() {
        // Its inserts are rolled back (below, or with the transaction): chains that saw
        // them must not outlive them.
        chains.borrow_mut().forget();
    }
    if savepoint {
        if outcome.is_err() {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        conn.prepare_cached("RELEASE job")?.execute([])?;
    }
    outcome
}

impl Store for SqliteStore {
    fn write_job(&self, tenant: &str, job: WriteJob) -> BoxFuture<'_, Result<(), StoreError>> {
        crate::queue_write(&self.writer, tenant, job)
    }

    fn announce_write(&self, _tenant: &str) -> crate::WriteIntent {
        crate::WriteIntent::counted(&self.arriving)
    }

    fn ready(&self) -> Result<(), StoreError> {
        let conn = open_connection(&self.path, true)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if usize::try_from(version).ok() != Some(MIGRATIONS.len()) {
            return Err(StoreError::Backend(format!(
                "the database is at schema version {version}, this binary's is {}",
                MIGRATIONS.len()
            )));
        }
        Ok(())
    }

    fn drain(&self) -> BoxFuture<'_, ()> {
        crate::drain_queue(&self.writer)
    }

    fn read_job(
        &self,
        tenant: &str,
        job: &mut dyn FnMut(&dyn ReadTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Take this thread's connection out while the job runs, so a nested read opens its own.
        let taken = READERS.with(|r| {
            let mut r = r.borrow_mut();
            r.iter().position(|(id, _)| *id == self.id).map(|i| r.swap_remove(i).1)
        });
        let conn = match taken {
            Some(c) => c,
            None => open_connection(&self.path, true)?,
        };
        conn.prepare_cached("BEGIN")?.execute([])?;
        let result = job(&SqliteTx { conn: &conn, tenant, chains: None, single: None });
        let ended = conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([]));
        READERS.with(|r| r.borrow_mut().push((self.id, conn)));
        ended?;
        result
    }

    fn read_job_single(
        &self,
        tenant: &str,
        job: &mut dyn FnMut(&dyn ReadTx) -> Result<(), StoreError>,
    ) -> Result<bool, StoreError> {
        // One statement in autocommit mode reads one snapshot; `BEGIN` and `COMMIT` around
        // it were two more statements, ~190 of a point read's ~2,970 instruction-cache
        // misses (callgrind's cache simulation, W2; docs/performance.md, ninth round).
        let taken = READERS.with(|r| {
            let mut r = r.borrow_mut();
            r.iter().position(|(id, _)| *id == self.id).map(|i| r.swap_remove(i).1)
        });
        let conn = match taken {
            Some(c) => c,
            None => open_connection(&self.path, true)?,
        };
        let tx = SqliteTx { conn: &conn, tenant, chains: None, single: Some(Cell::new(0)) };
        let result = job(&tx);
        let wanted_more = tx.wanted_more();
        READERS.with(|r| r.borrow_mut().push((self.id, conn)));
        if wanted_more { Ok(false) } else { result.map(|()| true) }
    }

    fn ensure_indexes(&self, paths: &[Vec<String>]) -> Result<(), StoreError> {
        let conn = open_connection(&self.path, false)?;
        for path in paths {
            let name: String = path.join("_").chars().filter(char::is_ascii_alphanumeric).collect();
            // Same column order as `entity_list` (migration 2); the older spelling goes.
            // Not a partial index (`WHERE expr IS NOT NULL`), though only assignments have a
            // `target/groupId`: SQLite then evaluates the expression twice per insert (+1.6 k
            // instructions per create, callgrind, issue 17), and every row of W1 needs the
            // entry anyway (docs/performance.md, fourth round).
            conn.execute_batch(&format!(
                "DROP INDEX IF EXISTS entity_json_{name};
                 CREATE INDEX IF NOT EXISTS entity_jsonp_{name} ON entity (parent, nav, tenant, {})",
                json_path_expr(path)
            ))?;
        }
        Ok(())
    }

    fn tenants(&self) -> Result<Vec<String>, StoreError> {
        let conn = open_connection(&self.path, true)?;
        let mut stmt = conn.prepare("SELECT id FROM tenant ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// `json_extract(body, '$."a"."b"')`: the one spelling used by indexes and hints, so that
/// SQLite matches them (an expression index is used only for the identical expression).
fn json_path_expr(path: &[String]) -> String {
    let inner: String = path.iter().map(|p| format!(".\"{}\"", p.replace(['"', '\''], ""))).collect();
    format!("json_extract(body, '${inner}')")
}

struct SqliteTx<'a> {
    conn: &'a Connection,
    tenant: &'a str,
    /// The writer's chains (`None` on a reader's connection).
    chains: Option<&'a RefCell<Chains>>,
    /// Outside a transaction ([`Store::read_job_single`]): the statements asked for so
    /// far; a second one is refused, since it would not share the first one's snapshot.
    single: Option<Cell<u32>>,
}

impl SqliteTx<'_> {
    /// Every statement of a transaction is prepared here, so that one outside a
    /// transaction cannot run a second.
    fn prepare(&self, sql: &str) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        if let Some(asked) = &self.single {
            asked.set(asked.get() + 1);
            if asked.get() > 1 {
                return Err(StoreError::Backend("a second statement outside a transaction".into()));
            }
        }
        Ok(self.conn.prepare_cached(sql)?)
    }

    /// Whether the job asked for more than the one statement it was allowed.
    fn wanted_more(&self) -> bool {
        self.single.as_ref().is_some_and(|asked| asked.get() > 1)
    }
}

/// Most parent chains the writer keeps (then it starts again).
const MAX_CHAINS: usize = 4096;

/// The writer's memory of parent chains it resolved (issue 17: resolving a create's parent,
/// one indexed join, was 11 k of W1's 180 k instructions per create, and a client creating
/// many children names the same parent each time). Only chains without the last level's
/// body are kept: their rows' seq, id and type, which only a delete, an update (a type
/// could change), a tenant dropped or made, a rolled-back job or another process's commit
/// can change; each of those forgets them all:
/// - `delete`, `update`, `create_tenant`, `drop_tenant` in [`SqliteTx`];
/// - a job that failed (its savepoint, or the transaction, was rolled back: rows it
///   inserted and chains that saw them are gone) and a batch whose commit failed;
/// - at the start of each batch, `PRAGMA data_version`, which changes when another
///   connection (the CLI's `tenant admin` commands open the file themselves) committed.
#[derive(Default)]
struct Chains {
    data_version: Option<i64>,
    /// Key: tenant, parent and steps, each length-prefixed (ids are the client's text).
    rows: rustc_hash::FxHashMap<Vec<u8>, Vec<(Seq, String, String)>>,
}

impl Chains {
    fn key(tenant: &str, parent: Seq, steps: &[(&str, &str)]) -> Vec<u8> {
        let mut key = Vec::with_capacity(64);
        let mut push = |text: &[u8]| {
            key.extend_from_slice(&text.len().to_le_bytes());
            key.extend_from_slice(text);
        };
        push(tenant.as_bytes());
        push(&parent.to_le_bytes());
        for (nav, id) in steps {
            push(nav.as_bytes());
            push(id.as_bytes());
        }
        key
    }

    fn forget(&mut self) {
        self.rows.clear();
    }
}

/// Forgets the writer's chains, if this transaction is the writer's.
fn forget_chains(chains: Option<&RefCell<Chains>>) {
    if let Some(c) = chains {
        c.borrow_mut().forget();
    }
}

/// The columns of a [`Row`]; a macro so that the point look-ups below are `concat!`ed
/// literals, not a `format!` (an allocation and a formatting pass) per look-up.
macro_rules! columns {
    () => {
        "seq, parent, nav, id, type, body"
    };
}
const COLUMNS: &str = columns!();
/// What [`ReadTx::count`] selects (no order, no paging).
const COUNT: &str = "count(*)";

/// A text column borrowed from SQLite's buffer, checked as UTF-8 with SIMD: the std
/// check walked every byte of every body of a page (3 % of listing 100, callgrind).
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, StoreError> {
    let bytes = r.get_ref(i)?.as_bytes().map_err(rusqlite::Error::from)?;
    simdutf8::basic::from_utf8(bytes).map_err(|_| StoreError::Backend(format!("column {i} is not UTF-8")))
}

fn to_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row { seq: r.get(0)?, parent: r.get(1)?, nav: r.get(2)?, id: r.get(3)?, type_name: r.get(4)?, raw: r.get(5)? })
}

fn bind_param(p: &SqlParam) -> &dyn ToSql {
    match p {
        SqlParam::Null => &rusqlite::types::Null,
        SqlParam::Int(i) => i,
        SqlParam::Double(d) => d,
        SqlParam::Text(s) => s,
        SqlParam::Bool(b) => b,
    }
}

/// The longest chain [`ReadTx::get_chain`] reads in one statement.
const MAX_CHAIN: usize = 6;

/// The statement of a chain of `len` levels (made once per length and `body`):
/// parameters are the tenant, the first parent, then each level's navigation and id.
fn chain_sql(len: usize, body: bool) -> Option<&'static str> {
    static SQL: [[std::sync::OnceLock<String>; MAX_CHAIN + 1]; 2] =
        [const { [const { std::sync::OnceLock::new() }; MAX_CHAIN + 1] }; 2];
    if !(1..=MAX_CHAIN).contains(&len) {
        return None;
    }
    Some(SQL[usize::from(body)][len].get_or_init(|| {
        let columns: Vec<String> = (0..len)
            .map(|i| {
                // The parent and navigation of each level are the caller's (and the level
                // above's key): only what the caller does not know is read.
                let raw = if body && i + 1 == len { format!("e{i}.body") } else { "''".to_owned() };
                format!("e{i}.seq, e{i}.id, e{i}.type, {raw}")
            })
            .collect();
        let mut sql = format!("SELECT {} FROM entity e0", columns.join(", "));
        for i in 1..len {
            let (p, n, k) = (i - 1, 2 * i + 3, 2 * i + 4);
            sql.push_str(&format!(
                " LEFT JOIN entity e{i} ON e{i}.parent = e{p}.seq AND e{i}.nav = ?{n} AND e{i}.id = ?{k} AND e{i}.tenant = ?1"
            ));
        }
        sql.push_str(" WHERE e0.tenant = ?1 AND e0.parent = ?2 AND e0.nav = ?3 AND e0.id = ?4");
        sql
    }))
}

impl SqliteTx<'_> {
    /// `WHERE` text and bound parameters shared by list and count.
    fn list_query(
        &self,
        select: &str,
        parent: Seq,
        nav: &str,
        spec: &ListSpec,
        paged: bool,
        each: &mut dyn FnMut(&rusqlite::Row<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut sql = format!("SELECT {select} FROM entity WHERE tenant = ?1 AND parent = ?2 AND nav = ?3");
        if paged && spec.after.is_some() {
            sql.push_str(" AND seq > ?4");
        }
        if spec.types.is_some() {
            sql.push_str(" AND type IN (SELECT value FROM json_each(?5))");
        }
        if let Some(f) = &spec.filter {
            sql.push_str(" AND (");
            sql.push_str(&f.text);
            sql.push(')');
        }
        let order_len = if select != COUNT { spec.order.as_ref().map_or(0, |o| o.params.len()) } else { 0 };
        let hint_first = ListSpec::FIRST_PARAM + spec.filter.as_ref().map_or(0, |f| f.params.len()) + order_len;
        for (i, (path, _)) in spec.hints.iter().enumerate() {
            sql.push_str(&format!(" AND {} = ?{}", json_path_expr(path), hint_first + i));
        }
        if select != COUNT {
            sql.push_str(" ORDER BY ");
            if let Some(order) = &spec.order {
                sql.push_str(&order.text);
                sql.push_str(", ");
            }
            sql.push_str("seq");
            if paged && (spec.limit.is_some() || spec.offset.is_some()) {
                // Literals, not parameters: SQLite's planner reads a bound LIMIT, so a
                // statement with `LIMIT ?` is re-prepared on every execution (measured with
                // SQLITE_STMTSTATUS_REPREPARE; 6 % of listing 100 rows, issue 8's W3).
                let limit = spec.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
                let offset = i64::try_from(spec.offset.unwrap_or(0)).unwrap_or(i64::MAX);
                sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
            }
        }
        let mut stmt = self.prepare(&sql)?;
        stmt.raw_bind_parameter(1, self.tenant)?;
        stmt.raw_bind_parameter(2, parent)?;
        stmt.raw_bind_parameter(3, nav)?;
        if let (true, Some(after)) = (paged, spec.after) {
            stmt.raw_bind_parameter(4, after)?;
        }
        if let Some(types) = &spec.types {
            stmt.raw_bind_parameter(5, serde_json::to_string(types).unwrap_or_default())?;
        }
        let order_params =
            if select != COUNT { spec.order.iter().flat_map(|o| o.params.iter()).collect() } else { Vec::new() };
        let hints = spec.hints.iter().map(|(_, v)| v);
        let params = spec.filter.iter().flat_map(|f| f.params.iter()).chain(order_params).chain(hints);
        for (i, p) in params.enumerate() {
            stmt.raw_bind_parameter(ListSpec::FIRST_PARAM + i, bind_param(p))?;
        }
        let mut rows = stmt.raw_query();
        while let Some(r) = rows.next()? {
            each(r)?;
        }
        Ok(())
    }
}

impl ReadTx for SqliteTx<'_> {
    fn get(&self, parent: Seq, nav: &str, id: &str) -> Result<Option<Row>, StoreError> {
        let mut stmt = self.prepare(concat!(
            "SELECT ",
            columns!(),
            " FROM entity WHERE tenant = ?1 AND parent = ?2 AND nav = ?3 AND id = ?4"
        ))?;
        Ok(stmt.query_row(params![self.tenant, parent, nav, id], to_row).optional()?)
    }

    fn get_head(&self, parent: Seq, nav: &str, id: &str) -> Result<Option<Row>, StoreError> {
        let mut stmt = self.prepare(
            "SELECT seq, parent, nav, id, type, '' FROM entity WHERE tenant = ?1 AND parent = ?2 AND nav = ?3 AND id = ?4",
        )?;
        Ok(stmt.query_row(params![self.tenant, parent, nav, id], to_row).optional()?)
    }

    fn get_chain(&self, parent: Seq, steps: &[(&str, &str)], body: bool) -> Result<Vec<Row>, StoreError> {
        // One statement, a LEFT JOIN per level, instead of a statement per level: a level
        // that does not exist reads as NULLs, and the rows stop there.
        let Some(sql) = chain_sql(steps.len(), body) else {
            return crate::chain_by_level(self, parent, steps, body);
        };
        let remembered = self.chains.filter(|_| !body);
        let key = remembered.map(|_| Chains::key(self.tenant, parent, steps));
        if let (Some(chains), Some(key)) = (remembered, &key)
            && let Some(levels) = chains.borrow().rows.get(key)
        {
            let mut above = parent;
            let rows = steps
                .iter()
                .zip(levels)
                .map(|((nav, _), (seq, id, type_name))| {
                    let row = Row {
                        seq: *seq,
                        parent: above,
                        nav: (*nav).to_owned(),
                        id: id.clone(),
                        type_name: type_name.clone(),
                        raw: String::new(),
                    };
                    above = *seq;
                    row
                })
                .collect();
            return Ok(rows);
        }
        let mut stmt = self.prepare(sql)?;
        let mut params: Vec<&dyn ToSql> = vec![&self.tenant, &parent];
        for (nav, id) in steps {
            params.push(nav);
            params.push(id);
        }
        let mut rows = stmt.query(params.as_slice())?;
        let mut out = Vec::with_capacity(steps.len());
        if let Some(r) = rows.next()? {
            let mut above = parent;
            for (i, (nav, _)) in steps.iter().enumerate() {
                let c = i * 4;
                let Some(seq) = r.get::<_, Option<Seq>>(c)? else { break };
                out.push(Row {
                    seq,
                    parent: above,
                    nav: (*nav).to_owned(),
                    id: r.get(c + 1)?,
                    type_name: r.get(c + 2)?,
                    raw: r.get(c + 3)?,
                });
                above = seq;
            }
        }
        // Only a chain found whole is kept (a missing level is a 404, answered cheaply).
        if let (Some(chains), Some(key)) = (remembered, key)
            && out.len() == steps.len()
        {
            let mut c = chains.borrow_mut();
            if c.rows.len() >= MAX_CHAINS {
                c.forget();
            }
            c.rows.insert(key, out.iter().map(|r| (r.seq, r.id.clone(), r.type_name.clone())).collect());
        }
        Ok(out)
    }

    fn get_seq(&self, seq: Seq) -> Result<Option<Row>, StoreError> {
        let mut stmt = self.prepare(concat!("SELECT ", columns!(), " FROM entity WHERE seq = ?1 AND tenant = ?2"))?;
        Ok(stmt.query_row(params![seq, self.tenant], to_row).optional()?)
    }

    fn list(&self, parent: Seq, nav: &str, spec: &ListSpec) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        self.list_query(COLUMNS, parent, nav, spec, true, &mut |r| {
            out.push(to_row(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    fn list_each(
        &self,
        parent: Seq,
        nav: &str,
        spec: &ListSpec,
        f: &mut dyn FnMut(RowRef<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Only the columns a RowRef has: decoding `parent` and `nav` for every row of a
        // page was wasted work (issue 8's W3).
        self.list_query("seq, id, type, body", parent, nav, spec, true, &mut |r| {
            f(RowRef { seq: r.get(0)?, id: text(r, 1)?, type_name: text(r, 2)?, raw: text(r, 3)? })
        })
    }

    fn count(&self, parent: Seq, nav: &str, spec: &ListSpec) -> Result<u64, StoreError> {
        let mut n = 0;
        self.list_query(COUNT, parent, nav, spec, false, &mut |r| {
            n = r.get(0)?;
            Ok(())
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn link(&self, source: Seq, nav: &str) -> Result<Option<Seq>, StoreError> {
        let mut stmt = self.prepare("SELECT target FROM link WHERE source = ?1 AND nav = ?2 AND tenant = ?3")?;
        Ok(stmt.query_row(params![source, nav, self.tenant], |r| r.get(0)).optional()?)
    }

    fn linked_from(&self, target: Seq, nav: &str) -> Result<Vec<Seq>, StoreError> {
        let mut stmt =
            self.prepare("SELECT source FROM link WHERE target = ?1 AND nav = ?2 AND tenant = ?3 ORDER BY source")?;
        let rows = stmt.query_map(params![target, nav, self.tenant], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn tenant_exists(&self) -> Result<bool, StoreError> {
        let mut stmt = self.prepare("SELECT 1 FROM tenant WHERE id = ?1")?;
        Ok(stmt.exists(params![self.tenant])?)
    }

    fn export(&self) -> Result<(Vec<Row>, Vec<Link>), StoreError> {
        let mut stmt = self.prepare(&format!("SELECT {COLUMNS} FROM entity WHERE tenant = ?1 ORDER BY seq"))?;
        let rows = stmt.query_map(params![self.tenant], to_row)?.collect::<Result<Vec<_>, _>>()?;
        let mut stmt = self.prepare("SELECT source, nav, target FROM link WHERE tenant = ?1 ORDER BY source, nav")?;
        let links = stmt
            .query_map(params![self.tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((rows, links))
    }
}

impl Tx for SqliteTx<'_> {
    fn insert(&mut self, parent: Seq, nav: &str, id: &str, type_name: &str, raw: &str) -> Result<Seq, StoreError> {
        let mut stmt =
            self.prepare("INSERT INTO entity (tenant, parent, nav, id, type, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        match stmt.execute(params![self.tenant, parent, nav, id, type_name, raw]) {
            Ok(_) => Ok(self.conn.last_insert_rowid()),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::Conflict(id.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn update(&mut self, seq: Seq, type_name: &str, raw: &str) -> Result<(), StoreError> {
        forget_chains(self.chains);
        let mut stmt = self.prepare("UPDATE entity SET type = ?1, body = ?2 WHERE seq = ?3 AND tenant = ?4")?;
        stmt.execute(params![type_name, raw, seq, self.tenant])?;
        Ok(())
    }

    fn delete(&mut self, seq: Seq) -> Result<(), StoreError> {
        forget_chains(self.chains);
        // The row and everything it contains, breadth first, each level from the
        // (tenant, parent) index.
        let mut doomed: Vec<Seq> = Vec::new();
        {
            let mut own = self.prepare("SELECT seq FROM entity WHERE seq = ?1 AND tenant = ?2")?;
            if own.exists(params![seq, self.tenant])? {
                doomed.push(seq);
            }
            let mut children = self.prepare("SELECT seq FROM entity WHERE tenant = ?1 AND parent = ?2")?;
            let mut i = 0;
            while i < doomed.len() {
                let found: Vec<Seq> =
                    children.query_map(params![self.tenant, doomed[i]], |r| r.get(0))?.collect::<Result<_, _>>()?;
                doomed.extend(found);
                i += 1;
            }
        }
        // One key look-up per row (bench W6: the set-based forms took a second per `assign`
        // of 50 on 100,000 rows).
        let mut links = self.prepare("DELETE FROM link WHERE source = ?1 OR target = ?1")?;
        let mut rows = self.prepare("DELETE FROM entity WHERE seq = ?1 AND tenant = ?2")?;
        for seq in doomed {
            links.execute(params![seq])?;
            rows.execute(params![seq, self.tenant])?;
        }
        Ok(())
    }

    fn set_link(&mut self, source: Seq, nav: &str, target: Option<Seq>) -> Result<(), StoreError> {
        match target {
            Some(t) => self
                .prepare("INSERT OR REPLACE INTO link (tenant, source, nav, target) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![self.tenant, source, nav, t])?,
            None => self
                .prepare("DELETE FROM link WHERE tenant = ?1 AND source = ?2 AND nav = ?3")?
                .execute(params![self.tenant, source, nav])?,
        };
        Ok(())
    }

    fn create_tenant(&mut self) -> Result<(), StoreError> {
        forget_chains(self.chains);
        self.prepare("INSERT OR IGNORE INTO tenant (id) VALUES (?1)")?.execute(params![self.tenant])?;
        Ok(())
    }

    fn drop_tenant(&mut self) -> Result<(), StoreError> {
        forget_chains(self.chains);
        for sql in [
            "DELETE FROM link WHERE tenant = ?1",
            "DELETE FROM entity WHERE tenant = ?1",
            "DELETE FROM tenant WHERE id = ?1",
        ] {
            self.prepare(sql)?.execute(params![self.tenant])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
