//! PostgreSQL behind [`Store`]: the same rows as the SQLite store, so that several
//! `enrollgraph serve` replicas over one database behave as one service (issue 6).
//!
//! - **Connections.** `tokio-postgres` connections driven by a small runtime on a thread the
//!   store owns. The traits are synchronous and are called on tokio workers (reads run
//!   inline, as with SQLite) and on plain threads (tests, the writer): a call parks the
//!   calling thread on the client's future, which needs no runtime of its own (the client
//!   only talks to its connection task through channels), so it works from any thread and
//!   never hits "Cannot start a runtime from within a runtime". On a multi-thread tokio
//!   worker the read runs under `block_in_place`, so the worker's other tasks move on.
//! - **Reads** take a pooled connection (at most [`MAX_READERS`] open) and run in one
//!   `REPEATABLE READ READ ONLY` transaction: a consistent snapshot, as the trait promises.
//! - **Writes** mirror the SQLite store's group commit: a writer connection takes every
//!   queued job of its share of the tenants ([`WRITERS`] writers, a tenant always on the
//!   same one; at most [`MAX_BATCH`] jobs), runs each so that a failing job rolls back alone
//!   (a SAVEPOINT, see below) inside one transaction and commits once; a job is answered
//!   only after the COMMIT returned (`synchronous_commit` as the server has it: on by
//!   default, so the commit is flushed).
//! - **Replicas.** Before any job runs, the writer takes `pg_advisory_xact_lock` on each
//!   tenant of the batch, in sorted key order (two replicas never wait on each other in a
//!   cycle). So the writes of one tenant are serialised across every replica: the
//!   read-then-write of priorities and assignment sets inside a job sees the last commit
//!   (READ COMMITTED takes a fresh snapshot per statement, after the lock was granted), and
//!   `seq` grows in commit order within a tenant, which keyset paging relies on: the keys a
//!   transaction inserts with are allocated from the identity of `seq` after the locks are
//!   granted ([`begin_locked`]). Jobs are `FnOnce` and cannot be retried, so nothing that can
//!   conflict runs before the locks are held; insert conflicts are `ON CONFLICT DO NOTHING`
//!   (no aborted transaction to recover from).
//! - **Round trips.** A tenant's writes are serial, so the writer's throughput is the
//!   latency of its round trips; it waits only for what a job must see (issue 8: a create
//!   went from two waits to none):
//!   - BEGIN, the locks, the tenants' clocks and the keys go out in one message; SAVEPOINT,
//!     RELEASE and COMMIT are sent without waiting (the COMMIT with a probe that fails if the
//!     transaction is aborted: PostgreSQL answers COMMIT of an aborted transaction with a
//!     silent ROLLBACK, which must not be reported as committed).
//!   - *Cache.* `get`/`get_head` answers are kept by (tenant, parent, nav, folded id)
//!     ([`Batch::cache`]). Under the advisory lock nobody else writes the tenant, so they
//!     hold until the writer itself changes rows: an insert records its row, an update, a
//!     delete, a tenant drop or a job rolled back empties the cache. They are kept across
//!     transactions as long as the tenant's clock (`tenant_clock`, ticked by every writer
//!     transaction of the tenant under its lock, migration 2) reads one past this writer's
//!     last commit: any other replica's write in between moves it further and the tenant is
//!     forgotten. (A replica of an older version, without clocks, writing the same tenant
//!     during a rolling upgrade would not be seen: upgrade replicas of one database
//!     together.)
//!   - *Inserts sent without waiting.* A job's first write, when an insert PostgreSQL cannot
//!     refuse ([`deferrable`]: its one possible failure is then the duplicate that `ON
//!     CONFLICT DO NOTHING` answers with no row), goes out with its key and is not awaited.
//!     Its answer is read before the job's next statement, which then answers the conflict
//!     as the insert would have; if the job ends first, after it only when that insert was
//!     its one write and the job succeeded (a duplicate then left nothing behind, and the
//!     write's outcome is [`StoreError::Conflict`], what `?` on the insert would have made
//!     of it), else before the job is released.
//!   - *Lazy savepoints.* A job's SAVEPOINT is made before its first statement that can
//!     fail; an insert sent before it is undone by its key if the job fails. A create
//!     answered from the cache needs none: one statement per job, no subtransaction.
//! - **Bodies** are kept as the exact text given (`raw`; the wire form is written from it
//!   and property order matters, which `jsonb` would not keep) and as a generated `jsonb`
//!   column `body` that pushed-down `$filter`/`$orderby` (the OData `Postgres` dialect) and
//!   the expression indexes of [`Store::ensure_indexes`] read.
//! - **Ids** match case-insensitively like SQLite's `COLLATE NOCASE`: ASCII-only folding,
//!   `lower(id COLLATE "C")`, in the unique index and in every look-up.
//! - **Migrations** are versioned and forward-only (`schema_migrations`), run at start
//!   under a session advisory lock, because replicas may start together.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement};

use crate::{
    BoxFuture, Dialect, Link, ListSpec, ReadTx, Row, Seq, SqlParam, Store, StoreError, Tx, WriteJob, WriteRequest,
};

/// Forward-only migrations; `schema_migrations` records which ran.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE tenant (
        id      text PRIMARY KEY,
        created bigint GENERATED ALWAYS AS IDENTITY
    );
    CREATE TABLE entity (
        seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant text   NOT NULL,
        parent bigint NOT NULL,
        nav    text   NOT NULL,
        id     text   NOT NULL,
        type   text   NOT NULL,
        raw    text   NOT NULL,
        -- jsonb refuses the escape \u0000 that JSON allows (and SQLite keeps): the
        -- queryable copy reads it as U+FFFD rather than failing the write.
        body   jsonb  GENERATED ALWAYS AS (replace(raw, '\u0000', '\ufffd')::jsonb) STORED
    );
    CREATE UNIQUE INDEX entity_key ON entity (tenant, parent, nav, lower(id COLLATE "C"));
    CREATE INDEX entity_list ON entity (tenant, parent, nav, seq);
    CREATE TABLE link (
        tenant text   NOT NULL,
        source bigint NOT NULL,
        nav    text   NOT NULL,
        target bigint NOT NULL,
        PRIMARY KEY (source, nav)
    );
    CREATE INDEX link_target ON link (target, nav);
    CREATE INDEX link_tenant ON link (tenant);
"#,
    r#"
    -- Bumped by every writer transaction of a tenant, under the tenant's advisory lock: a
    -- writer that left a tenant at n with its last commit and finds n at its next BEGIN
    -- knows nobody else wrote the tenant since, so what it cached of it still holds. Rows
    -- are never deleted (not even with the tenant): a clock that started again could meet
    -- a value some writer remembers.
    CREATE TABLE tenant_clock (
        tenant text   PRIMARY KEY,
        gen    bigint NOT NULL
    );
"#,
];

/// Writer connections (and threads) per store; each serves a fixed share of the tenants.
const WRITERS: usize = 4;
/// The most writes committed together. A job that made a savepoint and wrote holds a
/// subtransaction id until the commit; past 64 per transaction PostgreSQL's per-backend
/// cache of them overflows and every other session's snapshot then looks them up in
/// `pg_subtrans`. Capping the batch keeps every transaction inside the cache.
const MAX_BATCH: usize = 64;
/// The most read connections a store keeps open (every replica has its own).
const MAX_READERS: usize = 16;
/// The most rows a writer keeps cached across transactions.
const MAX_CACHED: usize = 4096;
/// Prepared statements kept per connection (list queries vary with the filter).
const MAX_STATEMENTS: usize = 256;
/// Session advisory lock held while migrating (any constant shared by all replicas).
const MIGRATION_LOCK: i64 = 0x656e_726f_6c6c_6d67; // "enrollmg"

/// The advisory lock key of a tenant's writes: FNV-1a, stable across builds and replicas.
fn tenant_lock(tenant: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "enrollgraph-tenant:".bytes().chain(tenant.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// The message of a driver error (its `Display` says only "db error" for server errors),
/// as `Unavailable` when the database is out of reach rather than the request wrong: a
/// connection that failed or closed (a restart, a failover), and the SQLSTATE classes of
/// a server that is shutting down, starting, out of connections, disk or memory
/// (PostgreSQL manual, Appendix A: 08 connection exception, 53 insufficient resources,
/// 57P01-57P03 operator intervention, 57014 a statement cancelled, 40001/40P01 a
/// serialization failure or deadlock, which a retry resolves).
fn pg_err(e: &tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let text = format!("{}: {} ({code})", db.severity(), db.message());
            if code.starts_with("08")
                || code.starts_with("53")
                || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "40001" | "40P01")
            {
                StoreError::Unavailable(text)
            } else {
                StoreError::Backend(text)
            }
        }
        None => {
            let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
            let text = e.to_string();
            if io || e.is_closed() || text.starts_with("error connecting") || text.starts_with("timeout") {
                StoreError::Unavailable(text)
            } else {
                StoreError::Backend(text)
            }
        }
    }
}

/// Runs a future to completion on the calling thread by parking it between polls.
/// The client's futures only exchange messages with the connection task (driven by the
/// store's runtime), so no runtime is needed here.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Runs blocking work; on a multi-thread tokio worker under `block_in_place`, so that the
/// worker's queued tasks are handed to another thread meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A parameter that binds to whatever type the server inferred for its placeholder.
#[derive(Debug)]
struct Param<'a>(&'a SqlParam);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            SqlParam::Null => Ok(IsNull::Yes),
            SqlParam::Bool(b) => b.to_sql(ty, out),
            SqlParam::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => {
                    #[allow(clippy::cast_precision_loss)]
                    let f = *i as f64;
                    f.to_sql(ty, out)
                }
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            SqlParam::Double(d) => match *ty {
                Type::FLOAT4 => {
                    #[allow(clippy::cast_possible_truncation)]
                    let f = *d as f32;
                    f.to_sql(ty, out)
                }
                _ => d.to_sql(ty, out),
            },
            SqlParam::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    /// Behind a `RefCell` so that a statement can be prepared while answers of earlier
    /// ones, which borrow the client, are still awaited (the writer's deferred inserts).
    statements: RefCell<HashMap<String, Statement>>,
    /// The writer's connection is driven by a runtime of the writer thread's own, inside
    /// each wait: a round trip then costs no hand-off to another thread and back (the
    /// writer is serial, so the latency of its round trips is its throughput).
    local: Option<tokio::runtime::Runtime>,
}

impl Conn {
    fn new(client: Client, local: Option<tokio::runtime::Runtime>) -> Conn {
        Conn { client, statements: RefCell::new(HashMap::new()), local }
    }

    /// Waits for one of this connection's futures.
    fn wait<F: Future>(&self, f: F) -> F::Output {
        match &self.local {
            Some(rt) => rt.block_on(f),
            None => block_on(f),
        }
    }

    /// Lets the writer's own runtime drive its connection once, so that what was queued
    /// without waiting goes out to the server now (the server then works while the writer
    /// runs the next job) rather than at the next wait.
    fn flush(&self) {
        if let Some(rt) = &self.local {
            rt.block_on(tokio::task::yield_now());
        }
    }

    fn statement(&self, sql: &str, types: &[Type]) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.wait(self.client.prepare_typed(sql, types)).map_err(|e| pg_err(&e))?;
        let mut statements = self.statements.borrow_mut();
        if statements.len() >= MAX_STATEMENTS {
            statements.clear();
        }
        statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let s = self.statement(sql, &[])?;
        self.wait(self.client.query(&s, params)).map_err(|e| pg_err(&e))
    }

    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let s = self.statement(sql, &[])?;
        self.wait(self.client.execute(&s, params)).map_err(|e| pg_err(&e))
    }

    fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.wait(self.client.batch_execute(sql)).map_err(|e| pg_err(&e))
    }

    /// Sends `sql` without waiting for its answer (pipelined: the connection discards the
    /// answer of a dropped request). Only for commands whose failure the next awaited
    /// statement on this connection reveals (a failure aborts the transaction, and every
    /// later statement then fails too).
    fn send(&self, sql: &str) {
        let mut f = pin!(self.client.batch_execute(sql));
        let _ = queue(f.as_mut());
    }
}

/// Polls `f` once, which queues its request on the connection, without waiting for the
/// answer; the output if it was ready at once (a request refused before it was sent).
fn queue<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
    match f.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// The thread that drives the connections; the runtime lives and dies on it, so the store
/// can be dropped anywhere (dropping a runtime inside another one panics).
struct Driver {
    handle: tokio::runtime::Handle,
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl Driver {
    fn start() -> Result<Driver, StoreError> {
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("enrollgraph-pg-driver".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("enrollgraph-pg-io")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = tx.send(Ok(rt.handle().clone()));
                // Until the store is dropped (the sender goes away).
                let _ = stopped.recv();
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let handle = rx
            .recv()
            .map_err(|_| StoreError::Backend("the PostgreSQL driver thread did not start".into()))?
            .map_err(StoreError::Backend)?;
        Ok(Driver { handle, stop: Some(stop) })
    }

    fn connect(&self, config: &tokio_postgres::Config) -> Result<Conn, StoreError> {
        let config = config.clone();
        let (tx, rx) = mpsc::channel();
        self.handle.spawn(async move {
            match config.connect(NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(error = %e, "PostgreSQL connection ended");
                        }
                    });
                    let _ = tx.send(Ok(client));
                }
                Err(e) => {
                    let _ = tx.send(Err(pg_err(&e)));
                }
            }
        });
        let client =
            blocking(|| rx.recv()).map_err(|_| StoreError::Backend("the PostgreSQL driver has stopped".into()))??;
        Ok(Conn::new(client, None))
    }
}

/// A connection driven by a current-thread runtime of its own ([`Conn::local`]); only for
/// a plain thread that is never inside another runtime (the writer).
fn connect_local(config: &tokio_postgres::Config) -> Result<Conn, StoreError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let (client, connection) = rt.block_on(config.connect(NoTls)).map_err(|e| pg_err(&e))?;
    rt.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(Conn::new(client, Some(rt)))
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.take();
    }
}

/// Idle read connections, and how many are out.
struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

/// The read pool's gauges (issue 16): connections lent out and connections idle.
fn report_pool(pool: &Pool) {
    #[allow(clippy::cast_precision_loss)]
    let (idle, open) = (pool.idle.len() as f64, pool.open as f64);
    metrics::gauge!("enrollgraph_pg_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("enrollgraph_pg_pool_connections", "state" => "in_use").set((open - idle).max(0.0));
}

/// PostgreSQL behind [`Store`] (see the module docs).
pub struct PostgresStore {
    config: tokio_postgres::Config,
    driver: Arc<Driver>,
    pool: Mutex<Pool>,
    returned: Condvar,
    /// One queue per writer; a tenant always goes to the same one ([`WRITERS`]).
    writers: Vec<mpsc::Sender<WriteRequest>>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:pass@host:port/db`, or the
    /// key=value form), migrates it and starts the writer.
    ///
    /// # Errors
    /// When the URL is malformed, the server unreachable or the migration fails.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| StoreError::Backend(format!("database URL: {e}")))?;
        if config.get_application_name().is_none() {
            config.application_name("enrollgraph");
        }
        let driver = Arc::new(Driver::start()?);
        let admin = driver.connect(&config)?;
        migrate(&admin)?;
        let mut writers = Vec::with_capacity(WRITERS);
        for i in 0..WRITERS {
            let (writer, queue) = mpsc::channel::<WriteRequest>();
            let (started, ready) = mpsc::channel();
            let w_config = config.clone();
            std::thread::Builder::new()
                .name(format!("enrollgraph-pg-writer-{i}"))
                .spawn(move || match connect_local(&w_config) {
                    Ok(conn) => {
                        let _ = started.send(Ok(()));
                        write_loop(conn, &queue, &w_config);
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                })
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            blocking(|| ready.recv())
                .map_err(|_| StoreError::Backend("the PostgreSQL writer did not start".into()))??;
            writers.push(writer);
        }
        Ok(PostgresStore {
            config,
            driver,
            pool: Mutex::new(Pool { idle: vec![admin], open: 1 }),
            returned: Condvar::new(),
            writers,
        })
    }

    /// A read connection: an idle one, a new one below the cap, or the next returned. A
    /// read that waits long (a nested read while every connection is held) opens one
    /// beyond the cap rather than deadlock.
    fn take(&self) -> Result<Conn, StoreError> {
        let mut pool = self.pool.lock().map_err(|_| StoreError::Backend("pool poisoned".into()))?;
        loop {
            while let Some(c) = pool.idle.pop() {
                if !c.client.is_closed() {
                    report_pool(&pool);
                    return Ok(c);
                }
                pool.open -= 1;
            }
            if pool.open < MAX_READERS {
                break;
            }
            let (p, timeout) = self
                .returned
                .wait_timeout(pool, Duration::from_secs(2))
                .map_err(|_| StoreError::Backend("pool poisoned".into()))?;
            pool = p;
            if timeout.timed_out() && pool.idle.is_empty() {
                break;
            }
        }
        pool.open += 1;
        report_pool(&pool);
        drop(pool);
        self.driver.connect(&self.config).inspect_err(|_| {
            if let Ok(mut p) = self.pool.lock() {
                p.open -= 1;
            }
        })
    }

    fn give_back(&self, conn: Conn, healthy: bool) {
        if let Ok(mut pool) = self.pool.lock() {
            if healthy && !conn.client.is_closed() && pool.idle.len() < MAX_READERS {
                pool.idle.push(conn);
            } else {
                pool.open = pool.open.saturating_sub(1);
            }
            report_pool(&pool);
        }
        self.returned.notify_one();
    }
}

fn migrate(conn: &Conn) -> Result<(), StoreError> {
    conn.batch(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let outcome = (|| {
        conn.batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())",
        )?;
        let rows = conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?;
        let version: i32 = rows.first().map_or(0, |r| r.get(0));
        let version = usize::try_from(version).unwrap_or(0);
        if version > MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "the database is at schema version {version}, newer than this binary knows ({}); refusing to start",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            conn.batch("BEGIN")?;
            let applied = conn.batch(sql).and_then(|()| {
                let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
                conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&v]).map(|_| ())
            });
            match applied {
                Ok(()) => conn.batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.batch("ROLLBACK");
                    return Err(e);
                }
            }
        }
        Ok(())
    })();
    let unlocked = conn.batch(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
    outcome.and(unlocked)
}

/// Group commit across tenants, serialised per tenant across replicas, with as few waits
/// as the jobs allow (module docs: Round trips).
fn write_loop(conn: Conn, queue: &mpsc::Receiver<WriteRequest>, config: &tokio_postgres::Config) {
    let mut conn = conn;
    // What this writer knows of its tenants' rows, kept across transactions while the
    // tenants' clocks say nobody else wrote them ([`Batch::cache`]).
    let mut cache: HashMap<CacheKey, Cached> = HashMap::new();
    let mut clocks: HashMap<String, i64> = HashMap::new();
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if conn.client.is_closed() {
            (cache, clocks) = (HashMap::new(), HashMap::new());
            match connect_local(config) {
                Ok(c) => conn = c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot reconnect the PostgreSQL writer");
                    for req in batch {
                        let _ = req.done.send(Err(e.context("database unavailable")));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
        }
        let mut keys: Vec<i64> = batch.iter().map(|r| tenant_lock(&r.tenant)).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut distinct: Vec<&str> = batch.iter().map(|r| r.tenant.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        // The BEGIN waits for the tenants' advisory locks (another replica writing them).
        let locking = std::time::Instant::now();
        let mut begun = begin_locked(&conn, &keys, &distinct, batch.len());
        metrics::histogram!("enrollgraph_pg_lock_wait_seconds").record(locking.elapsed().as_secs_f64());
        if begun.is_err() && conn.client.is_closed() {
            // The server dropped the connection (a restart, a failover, an idle timeout):
            // nothing of the batch has run, so it may begin again on a fresh one.
            if let Ok(c) = connect_local(config) {
                conn = c;
                begun = begin_locked(&conn, &keys, &distinct, batch.len());
            }
        }
        let mut gens = Vec::new();
        let begun = begun.map(|b| {
            // A tenant another writer has written since this one's last commit: forget it.
            for (tenant, tick) in b.clocks {
                if clocks.get(&tenant) != Some(&(tick - 1)) {
                    cache.retain(|k, _| k.0 != tenant);
                }
                gens.push((tenant, tick));
            }
            if cache.len() > MAX_CACHED {
                cache.clear();
            }
            b.seqs
        });
        let (mut tenants, mut jobs, mut dones) = (Vec::new(), Vec::new(), Vec::new());
        for r in batch {
            tenants.push(r.tenant);
            jobs.push(r.job);
            dones.push(r.done);
        }
        let (started, size) = (std::time::Instant::now(), jobs.len());
        let (results, kept, committed) =
            run_batch(&conn, tenants.iter().map(String::as_str).zip(jobs), begun, std::mem::take(&mut cache));
        crate::record_commit("postgres", size, started);
        if committed {
            cache = kept;
            clocks.extend(gens);
        } else {
            clocks.clear();
        }
        for (done, result) in dones.into_iter().zip(results) {
            let _ = done.send(result);
        }
    }
}

/// Runs the jobs of one batch in the transaction `begun` opened (with the keys it
/// allocated) and commits. Each job's outcome, the cache as the transaction left it, and
/// whether it committed.
fn run_batch<'a>(
    conn: &Conn,
    jobs: impl Iterator<Item = (&'a str, WriteJob)>,
    begun: Result<VecDeque<Seq>, StoreError>,
    cache: HashMap<CacheKey, Cached>,
) -> (Vec<Result<(), StoreError>>, HashMap<CacheKey, Cached>, bool) {
    let state = RefCell::new(Batch { cache, ..Batch::default() });
    let mut results = Vec::new();
    let mut broken: Option<StoreError> = None;
    let begun = begun.map(|seqs| state.borrow_mut().seqs = seqs);
    for (n, (tenant, job)) in jobs.enumerate() {
        if let Err(e) = &begun {
            results.push(Err(e.context("cannot begin")));
            continue;
        }
        if let Some(e) = &broken {
            results.push(Err(e.context("the transaction failed")));
            continue;
        }
        match run_job(conn, &state, n, tenant, job) {
            Ok(outcome) => results.push(outcome),
            Err(e) => {
                // The savepoint machinery itself failed: nothing of the batch is sure.
                broken = Some(e.context("a job's savepoint failed"));
                results.push(Err(e));
            }
        }
    }
    if begun.is_err() {
        return (results, HashMap::new(), false);
    }
    let committed = if broken.is_none() && results.iter().any(Result::is_ok) {
        // The COMMIT goes out behind the inserts still in flight; their answers (a
        // conflict of a job that has ended) come back before its own.
        let mut commit = pin!(conn.client.batch_execute("SELECT 1; COMMIT"));
        let early = queue(commit.as_mut());
        let _ = settle(conn, &state, None);
        match early {
            Some(done) => done,
            None => conn.wait(commit),
        }
        .map_err(|e| pg_err(&e))
    } else {
        // Answers not awaited are dropped (the connection discards them).
        state.borrow_mut().pending.clear();
        conn.batch("ROLLBACK").and(Err(broken.unwrap_or_else(|| StoreError::Backend("nothing to commit".into()))))
    };
    for (n, e) in std::mem::take(&mut state.borrow_mut().late) {
        if let Some(r @ Ok(())) = results.get_mut(n) {
            *r = Err(e);
        }
    }
    let cache = std::mem::take(&mut state.borrow_mut().cache);
    if let Err(e) = committed {
        if results.iter().any(Result::is_ok) {
            tracing::error!(error = %e, "commit failed");
        }
        let _ = conn.batch("ROLLBACK");
        for r in &mut results {
            if r.is_ok() {
                *r = Err(e.context("commit failed"));
            }
        }
        return (results, HashMap::new(), false);
    }
    (results, cache, true)
}

/// What [`begin_locked`] found: the keys allocated, and each tenant's clock after this
/// transaction's tick.
struct Begun {
    seqs: VecDeque<Seq>,
    clocks: Vec<(String, i64)>,
}

/// BEGIN, take the tenants' locks in sorted order, tick their clocks and allocate
/// `inserts` keys, pipelined in one round trip; retried when the server breaks a deadlock
/// or a serialisation failure (nothing of a job has run yet, so a retry is safe). The
/// keys come from the identity of `entity.seq` while the locks are held, so they are
/// larger than every key an earlier transaction of these tenants used and smaller than any
/// later one's: inserting with them keeps `seq` growing in commit order per tenant.
fn begin_locked(conn: &Conn, keys: &[i64], tenants: &[&str], inserts: usize) -> Result<Begun, StoreError> {
    let mut sql = String::from("BEGIN ISOLATION LEVEL READ COMMITTED;");
    for k in keys {
        // Integers formatted by us: nothing to escape.
        sql.push_str(&format!(" SELECT pg_advisory_xact_lock({k});"));
    }
    let tick = conn.statement(
        "INSERT INTO tenant_clock (tenant, gen) SELECT t, 1 FROM unnest($1::text[]) AS t \
         ON CONFLICT (tenant) DO UPDATE SET gen = tenant_clock.gen + 1 RETURNING tenant, gen",
        &[],
    )?;
    let allocate =
        conn.statement(&format!("SELECT nextval('{SEQ_IDENTITY}') FROM generate_series(1, $1::integer)"), &[])?;
    let inserts = i32::try_from(inserts).unwrap_or(i32::MAX);
    let mut last = None;
    for attempt in 0..5u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(10 << attempt));
        }
        // Polled together, the three requests go out in order in one write.
        let (tick_params, allocate_params): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
            ([&tenants], [&inserts]);
        let (begun, clocks, seqs) = conn.wait(async {
            tokio::join!(
                conn.client.batch_execute(&sql),
                conn.client.query(&tick, &tick_params),
                conn.client.query(&allocate, &allocate_params)
            )
        });
        match begun.and(clocks).and_then(|c| seqs.map(|s| (c, s))) {
            Ok((clocks, seqs)) => {
                return Ok(Begun {
                    seqs: seqs.iter().map(|r| r.get(0)).collect(),
                    clocks: clocks.iter().map(|r| (r.get(0), r.get(1))).collect(),
                });
            }
            Err(e) => {
                let _ = conn.batch("ROLLBACK");
                last = Some(pg_err(&e));
                if conn.client.is_closed() {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| StoreError::Backend("cannot lock the tenant".into())))
}

/// Runs job number `n` of the batch in its own savepoint. The outer `Err` means the
/// savepoint could not be rolled back (the transaction is unusable); the inner result is
/// the job's.
fn run_job<'c>(
    conn: &'c Conn,
    state: &RefCell<Batch<'c>>,
    n: usize,
    tenant: &str,
    job: WriteJob,
) -> Result<Result<(), StoreError>, StoreError> {
    {
        let mut s = state.borrow_mut();
        s.job = n;
        s.writes = 0;
        s.savepoint = false;
        s.uncovered = None;
    }
    let failed = Cell::new(false);
    let mut tx = PgTx { conn, tenant, failed: &failed, batch: Some(state) };
    let mut outcome = catch_unwind(AssertUnwindSafe(|| job(&mut tx)))
        .unwrap_or_else(|_| Err(StoreError::Backend("a write job panicked".into())));
    // An insert of this job still in flight stays so past its end only when it was the
    // job's one write and the job succeeded: should it conflict, it left nothing behind and
    // the conflict becomes the job's outcome at the commit (module docs). Otherwise its
    // answer decides now whether the job stands.
    let (mine, alone) = {
        let s = state.borrow();
        (s.pending.iter().any(|p| p.job == n), s.writes == 1)
    };
    if mine
        && !(alone && outcome.is_ok() && !failed.get())
        && let Err(e) = settle(conn, state, Some(n))
    {
        failed.set(true);
        outcome = outcome.and(Err(e));
    }
    let (savepoint, uncovered) = {
        let s = state.borrow();
        (s.savepoint, s.uncovered)
    };
    match outcome {
        Ok(()) if !failed.get() => {
            if savepoint {
                conn.send(&format!("RELEASE SAVEPOINT job{n}"));
            }
            conn.flush();
            Ok(Ok(()))
        }
        outcome => {
            // The job failed, or swallowed a failed statement (the savepoint is aborted):
            // undo what it sent since its savepoint, and the insert it sent before (by its
            // key, allocated for it alone: a duplicate inserted nothing and deletes nothing).
            // What the cache learnt inside the job may be undone.
            state.borrow_mut().cache.clear();
            let mut undo = String::new();
            if savepoint {
                undo.push_str(&format!("ROLLBACK TO SAVEPOINT job{n}; RELEASE SAVEPOINT job{n};"));
            }
            if let Some(seq) = uncovered {
                // An integer formatted by us: nothing to escape.
                undo.push_str(&format!(" DELETE FROM entity WHERE seq = {seq};"));
            }
            if !undo.is_empty() {
                conn.batch(&undo)?;
            }
            Ok(outcome.and(Err(StoreError::Backend("a statement of the write failed".into()))))
        }
    }
}

/// Waits for every insert in flight. The failure of one of job `current`'s is returned (as
/// the insert would have answered it: [`StoreError::Conflict`] for a duplicate); those of
/// jobs that have ended are kept in [`Batch::late`] for the commit to report.
fn settle<'c>(conn: &'c Conn, state: &RefCell<Batch<'c>>, current: Option<usize>) -> Result<(), StoreError> {
    let pending = std::mem::take(&mut state.borrow_mut().pending);
    let mut mine = Ok(());
    for p in pending {
        let answer = match p.answer {
            Answer::Ready(a) => a,
            Answer::Waiting(f) => conn.wait(f),
        };
        let failure = match answer {
            Ok(0) => StoreError::Conflict(p.id),
            Ok(_) => continue,
            Err(e) => {
                // The transaction is aborted: every later statement fails, and the commit
                // reports it to every job of the batch.
                state.borrow_mut().cache.clear();
                pg_err(&e)
            }
        };
        if Some(p.job) == current {
            if mine.is_ok() {
                mine = Err(failure);
            }
        } else {
            state.borrow_mut().late.push((p.job, failure));
        }
    }
    mine
}

impl Store for PostgresStore {
    fn write_job(&self, tenant: &str, job: WriteJob) -> BoxFuture<'_, Result<(), StoreError>> {
        // A tenant's writes stay in one queue (their order is kept); tenants spread over the
        // writers, so different tenants commit in parallel and never wait on one another's
        // advisory locks inside a replica.
        let lock = tenant_lock(tenant);
        let i = usize::try_from(lock.unsigned_abs() % WRITERS as u64).unwrap_or(0);
        crate::queue_write(&self.writers[i], tenant, job)
    }

    fn read_job(
        &self,
        tenant: &str,
        job: &mut dyn FnMut(&dyn ReadTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let conn = self.take()?;
            // Pipelined: BEGIN goes ahead of the job's first query, COMMIT is not awaited
            // (a read-only transaction has nothing to lose; the next user's statements
            // queue behind it on the connection).
            conn.send("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
            let failed = Cell::new(false);
            let result = job(&PgTx { conn: &conn, tenant, failed: &failed, batch: None });
            conn.send("COMMIT");
            self.give_back(conn, true);
            result
        })
    }

    fn ensure_indexes(&self, paths: &[Vec<String>]) -> Result<(), StoreError> {
        blocking(|| {
            let conn = self.take()?;
            // Replicas starting together would race on the catalog: one at a time.
            let outcome = conn.batch(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).and_then(|()| {
                let made = paths.iter().try_for_each(|path| {
                    let name: String = path.join("_").chars().filter(char::is_ascii_alphanumeric).collect();
                    conn.batch(&format!(
                        "CREATE INDEX IF NOT EXISTS entity_json_{name} ON entity (tenant, parent, nav, ({}))",
                        json_path_expr(path)
                    ))
                });
                let unlocked = conn.batch(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
                made.and(unlocked)
            });
            let healthy = outcome.is_ok();
            self.give_back(conn, healthy);
            outcome
        })
    }

    fn tenants(&self) -> Result<Vec<String>, StoreError> {
        blocking(|| {
            let conn = self.take()?;
            let rows = conn.query("SELECT id FROM tenant ORDER BY created", &[]);
            let healthy = rows.is_ok();
            self.give_back(conn, healthy);
            Ok(rows?.iter().map(|r| r.get(0)).collect())
        })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn ready(&self) -> Result<(), StoreError> {
        blocking(|| {
            let conn = self.take()?;
            let rows = conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]);
            self.give_back(conn, rows.is_ok());
            let version: i32 = rows?.first().map_or(0, |r| r.get(0));
            if usize::try_from(version).ok() != Some(MIGRATIONS.len()) {
                return Err(StoreError::Backend(format!(
                    "the database is at schema version {version}, this binary's is {}",
                    MIGRATIONS.len()
                )));
            }
            Ok(())
        })
    }

    fn drain(&self) -> BoxFuture<'_, ()> {
        let all: Vec<_> = self.writers.iter().map(crate::drain_queue).collect();
        Box::pin(async move {
            for one in all {
                one.await;
            }
        })
    }

    fn close(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            let idle = std::mem::take(&mut pool.idle);
            pool.open = pool.open.saturating_sub(idle.len());
        }
    }
}

/// `(body #>> '{a,b}')`: the one spelling used by indexes and hints (an expression index
/// serves only the same expression). Text, as the hints compare strings.
fn json_path_expr(path: &[String]) -> String {
    let items: Vec<String> = path.iter().map(|p| format!("\"{}\"", p.replace(['"', '\\', '\''], ""))).collect();
    format!("(body #>> '{{{}}}')", items.join(","))
}

/// A read transaction, or a job's part of the writer's transaction.
struct PgTx<'t, 'c> {
    conn: &'c Conn,
    tenant: &'t str,
    /// Set when a statement failed (the transaction or savepoint is then aborted, even if
    /// the job goes on as if nothing happened).
    failed: &'t Cell<bool>,
    /// The writer's state of the transaction; `None` in a read.
    batch: Option<&'t RefCell<Batch<'c>>>,
}

/// A row's key in [`Batch::cache`]: tenant, containing row, navigation and the id folded
/// as the unique index folds it (ASCII only, `lower(id COLLATE "C")`).
type CacheKey = (String, Seq, String, String);

fn cache_key(tenant: &str, parent: Seq, nav: &str, id: &str) -> CacheKey {
    (tenant.to_owned(), parent, nav.to_owned(), id.to_ascii_lowercase())
}

/// What the writer's transaction knows of one key.
struct Cached {
    /// The row, or `None`: there is none.
    row: Option<Row>,
    /// Whether `row.raw` holds the body (read by `get`) or is empty (`get_head`).
    full: bool,
}

/// The answer to an insert sent without waiting.
enum Answer<'c> {
    Waiting(std::pin::Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + 'c>>),
    Ready(Result<u64, tokio_postgres::Error>),
}

/// An insert in flight: its job and id (for the conflict it may turn out to be).
struct Pending<'c> {
    job: usize,
    id: String,
    answer: Answer<'c>,
}

/// The writer's state of one transaction.
#[derive(Default)]
struct Batch<'c> {
    /// Rows read or written in this transaction by key (`None`: known absent). While the
    /// writer holds its tenants' advisory locks nobody else writes them, so what it read
    /// stays true until it writes: an insert replaces its key's entry, any other change
    /// of rows (update, delete, drop of the tenant) and the rollback of a job empty it.
    cache: HashMap<CacheKey, Cached>,
    /// Keys allocated at BEGIN ([`begin_locked`]), used in order by inserts.
    seqs: VecDeque<Seq>,
    /// Inserts sent without waiting, in the order sent.
    pending: Vec<Pending<'c>>,
    /// Failures of inserts found after their job ended: (job, error).
    late: Vec<(usize, StoreError)>,
    /// The job running, and how many writes it has made.
    job: usize,
    writes: u32,
    /// Whether the running job has made its savepoint ([`PgTx::guard`]).
    savepoint: bool,
    /// The key of the running job's insert sent before its savepoint, if any.
    uncovered: Option<Seq>,
}

/// The identity sequence of `entity.seq` (PostgreSQL's name for it: table_column_seq).
const SEQ_IDENTITY: &str = "entity_seq_seq";

/// The longest body, and id with navigation and tenant, an insert is sent without waiting
/// for: every index entry of such a row stays far below btree's limit of about 2.7 kB
/// (the expression indexes hold one property of the body).
const DEFERRED_BODY: usize = 2000;
const DEFERRED_KEY: usize = 600;

/// Whether an insert can be sent without waiting for its answer: nothing in it that
/// PostgreSQL refuses where Rust and serde accept it (a NUL in text, a `\u` escape jsonb
/// rejects, a number beyond `numeric`, an index entry too long, malformed JSON), so that
/// its one possible failure is the duplicate it answers with no row (`ON CONFLICT DO
/// NOTHING`), which leaves the transaction intact.
fn deferrable(tenant: &str, nav: &str, id: &str, type_name: &str, raw: &str) -> bool {
    raw.len() <= DEFERRED_BODY
        && tenant.len() + nav.len() + id.len() <= DEFERRED_KEY
        && ![tenant, nav, id, type_name, raw].iter().any(|t| t.contains('\0'))
        && !raw.contains("\\u")
        && plain_numbers(raw)
        && serde_json::from_str::<&serde_json::value::RawValue>(raw).is_ok()
}

/// True when every number in the JSON text `raw` is short, with an exponent of at most
/// three digits (`numeric` refuses exponents beyond some 131072 digits, and very long
/// fractions: this stays far inside).
fn plain_numbers(raw: &str) -> bool {
    let (mut in_string, mut escaped) = (false, false);
    let (mut run, mut exponent) = (0usize, None::<usize>);
    for b in raw.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                (run, exponent) = (0, None);
            }
            b'e' | b'E' => {
                run += 1;
                exponent = Some(0);
            }
            b'0'..=b'9' | b'.' | b'+' | b'-' => {
                run += 1;
                if let Some(d) = exponent.as_mut() {
                    *d += usize::from(b.is_ascii_digit());
                }
            }
            _ => (run, exponent) = (0, None),
        }
        if run > 40 || exponent.is_some_and(|d| d > 3) {
            return false;
        }
    }
    true
}

const COLUMNS: &str = "seq, parent, nav, id, type, raw";

fn to_row(r: &tokio_postgres::Row) -> Row {
    Row { seq: r.get(0), parent: r.get(1), nav: r.get(2), id: r.get(3), type_name: r.get(4), raw: r.get(5) }
}

/// The types of the store's own placeholders `$1`..`$9` (tenant, parent, nav, after,
/// types, limit, offset, two spare), given explicitly because a list query uses only some.
const FIXED_TYPES: [Type; 9] =
    [Type::TEXT, Type::INT8, Type::TEXT, Type::INT8, Type::TEXT_ARRAY, Type::INT8, Type::INT8, Type::TEXT, Type::TEXT];

impl<'c> PgTx<'_, 'c> {
    /// Sends the request `f` makes, then waits for the inserts in flight and for `f`'s
    /// answer: one round trip for all. A failed insert of this job is the answer then (a
    /// duplicate found now is the conflict the insert would have answered).
    fn run<T>(&self, f: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T, StoreError> {
        let mut f = pin!(f);
        let Some(state) = self.batch else {
            return self.conn.wait(f).map_err(|e| pg_err(&e)).inspect_err(|_| self.failed.set(true));
        };
        self.guard();
        let early = queue(f.as_mut());
        let job = state.borrow().job;
        let settled = settle(self.conn, state, Some(job));
        let answer = match early {
            Some(a) => a,
            None => self.conn.wait(f),
        };
        settled.and(answer.map_err(|e| pg_err(&e))).inspect_err(|_| self.failed.set(true))
    }

    fn statement(&self, sql: &str, types: &[Type]) -> Result<Statement, StoreError> {
        self.guard();
        self.conn.statement(sql, types).inspect_err(|_| self.failed.set(true))
    }

    /// Makes the job's savepoint before its first statement that may fail. It is made
    /// lazily: a job answered from the cache and by one insert sent without waiting (W1's
    /// create) needs none, which spares the server two statements and a subtransaction.
    fn guard(&self) {
        if let Some(state) = self.batch {
            let mut s = state.borrow_mut();
            if !s.savepoint {
                s.savepoint = true;
                // A name per job: rolling back to a savepoint that was never made fails
                // loudly instead of rolling back an earlier job's savepoint of the same name.
                self.conn.send(&format!("SAVEPOINT job{}", s.job));
            }
        }
    }

    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let s = self.statement(sql, &[])?;
        self.run(self.conn.client.query(&s, params))
    }

    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let s = self.statement(sql, &[])?;
        self.run(self.conn.client.execute(&s, params))
    }

    /// What the writer's transaction knows of a key: `Some(None)` when there is no such
    /// row, `None` when it does not know (or, `full`, knows only the head).
    fn cached(&self, parent: Seq, nav: &str, id: &str, full: bool) -> Option<Option<Row>> {
        let state = self.batch?.borrow();
        let hit = state.cache.get(&cache_key(self.tenant, parent, nav, id))?;
        match &hit.row {
            None => Some(None),
            Some(r) if hit.full && !full => Some(Some(Row {
                seq: r.seq,
                parent: r.parent,
                nav: r.nav.clone(),
                id: r.id.clone(),
                type_name: r.type_name.clone(),
                raw: String::new(),
            })),
            Some(r) if hit.full || !full => Some(Some(r.clone())),
            Some(_) => None,
        }
    }

    fn remember(&self, parent: Seq, nav: &str, id: &str, row: Option<Row>, full: bool) {
        if let Some(state) = self.batch {
            state.borrow_mut().cache.insert(cache_key(self.tenant, parent, nav, id), Cached { row, full });
        }
    }

    /// Counts a write of the job; `forget`: it may change rows the cache holds.
    fn wrote(&self, forget: bool) {
        if let Some(state) = self.batch {
            let mut s = state.borrow_mut();
            s.writes += 1;
            if forget {
                s.cache.clear();
            }
        }
    }

    fn list_query(
        &self,
        count: bool,
        parent: Seq,
        nav: &str,
        spec: &ListSpec,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let select = if count { "count(*)" } else { COLUMNS };
        let mut sql = format!("SELECT {select} FROM entity WHERE tenant = $1 AND parent = $2 AND nav = $3");
        let paged = !count;
        if paged && spec.after.is_some() {
            sql.push_str(" AND seq > $4");
        }
        if spec.types.is_some() {
            sql.push_str(" AND type = ANY($5)");
        }
        if let Some(f) = &spec.filter {
            sql.push_str(" AND (");
            sql.push_str(&f.text);
            sql.push(')');
        }
        let order_len = if paged { spec.order.as_ref().map_or(0, |o| o.params.len()) } else { 0 };
        let hint_first = ListSpec::FIRST_PARAM + spec.filter.as_ref().map_or(0, |f| f.params.len()) + order_len;
        for (i, (path, _)) in spec.hints.iter().enumerate() {
            sql.push_str(&format!(" AND {} = ${}", json_path_expr(path), hint_first + i));
        }
        let limited = paged && (spec.limit.is_some() || spec.offset.is_some());
        if paged {
            sql.push_str(" ORDER BY ");
            if let Some(order) = &spec.order {
                sql.push_str(&order.text);
                sql.push_str(", ");
            }
            sql.push_str("seq");
            if limited {
                sql.push_str(" LIMIT $6 OFFSET $7");
            }
        }
        let after = if paged { spec.after } else { None };
        let limit = spec.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(spec.offset.unwrap_or(0)).unwrap_or(i64::MAX);
        let none: Option<String> = None;
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&self.tenant, &parent, &nav, &after, &spec.types, &limit, &offset, &none, &none];
        let order_params: Vec<&SqlParam> =
            if paged { spec.order.iter().flat_map(|o| o.params.iter()).collect() } else { Vec::new() };
        let rest: Vec<Param<'_>> = spec
            .filter
            .iter()
            .flat_map(|f| f.params.iter())
            .chain(order_params)
            .chain(spec.hints.iter().map(|(_, v)| v))
            .map(Param)
            .collect();
        params.extend(rest.iter().map(|p| p as &(dyn ToSql + Sync)));
        let stmt = self.statement(&sql, &FIXED_TYPES)?;
        self.run(self.conn.client.query(&stmt, &params))
    }
}

impl ReadTx for PgTx<'_, '_> {
    fn get(&self, parent: Seq, nav: &str, id: &str) -> Result<Option<Row>, StoreError> {
        if let Some(known) = self.cached(parent, nav, id, true) {
            return Ok(known);
        }
        let rows = self.query(
            &format!(
                "SELECT {COLUMNS} FROM entity WHERE tenant = $1 AND parent = $2 AND nav = $3 \
                 AND lower(id COLLATE \"C\") = lower($4 COLLATE \"C\")"
            ),
            &[&self.tenant, &parent, &nav, &id],
        )?;
        let row = rows.first().map(to_row);
        self.remember(parent, nav, id, row.clone(), true);
        Ok(row)
    }

    fn get_head(&self, parent: Seq, nav: &str, id: &str) -> Result<Option<Row>, StoreError> {
        if let Some(known) = self.cached(parent, nav, id, false) {
            return Ok(known);
        }
        let rows = self.query(
            "SELECT seq, parent, nav, id, type, '' FROM entity WHERE tenant = $1 AND parent = $2 AND nav = $3 \
             AND lower(id COLLATE \"C\") = lower($4 COLLATE \"C\")",
            &[&self.tenant, &parent, &nav, &id],
        )?;
        let row = rows.first().map(to_row);
        self.remember(parent, nav, id, row.clone(), false);
        Ok(row)
    }

    fn get_seq(&self, seq: Seq) -> Result<Option<Row>, StoreError> {
        let rows =
            self.query(&format!("SELECT {COLUMNS} FROM entity WHERE seq = $1 AND tenant = $2"), &[&seq, &self.tenant])?;
        Ok(rows.first().map(to_row))
    }

    fn list(&self, parent: Seq, nav: &str, spec: &ListSpec) -> Result<Vec<Row>, StoreError> {
        Ok(self.list_query(false, parent, nav, spec)?.iter().map(to_row).collect())
    }

    fn count(&self, parent: Seq, nav: &str, spec: &ListSpec) -> Result<u64, StoreError> {
        let rows = self.list_query(true, parent, nav, spec)?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    fn link(&self, source: Seq, nav: &str) -> Result<Option<Seq>, StoreError> {
        let rows = self.query(
            "SELECT target FROM link WHERE source = $1 AND nav = $2 AND tenant = $3",
            &[&source, &nav, &self.tenant],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn linked_from(&self, target: Seq, nav: &str) -> Result<Vec<Seq>, StoreError> {
        let rows = self.query(
            "SELECT source FROM link WHERE target = $1 AND nav = $2 AND tenant = $3 ORDER BY source",
            &[&target, &nav, &self.tenant],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn tenant_exists(&self) -> Result<bool, StoreError> {
        Ok(!self.query("SELECT 1 FROM tenant WHERE id = $1", &[&self.tenant])?.is_empty())
    }

    fn export(&self) -> Result<(Vec<Row>, Vec<Link>), StoreError> {
        let rows =
            self.query(&format!("SELECT {COLUMNS} FROM entity WHERE tenant = $1 ORDER BY seq"), &[&self.tenant])?;
        let links =
            self.query("SELECT source, nav, target FROM link WHERE tenant = $1 ORDER BY source, nav", &[&self.tenant])?;
        Ok((rows.iter().map(to_row).collect(), links.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()))
    }
}

/// An insert at a key allocated at BEGIN ([`begin_locked`]).
const INSERT_AT: &str = "INSERT INTO entity (seq, tenant, parent, nav, id, type, raw) OVERRIDING SYSTEM VALUE \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";

impl<'c> Tx for PgTx<'_, 'c> {
    fn insert(&mut self, parent: Seq, nav: &str, id: &str, type_name: &str, raw: &str) -> Result<Seq, StoreError> {
        // ON CONFLICT: a duplicate id is an answer, not an error that would abort the
        // transaction under the job's feet.
        self.wrote(false);
        let allocated = self.batch.and_then(|s| {
            let mut s = s.borrow_mut();
            s.seqs.pop_front().map(|seq| (seq, s.writes == 1))
        });
        let Some((seq, first)) = allocated else {
            let rows = self.query(
                "INSERT INTO entity (tenant, parent, nav, id, type, raw) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT DO NOTHING RETURNING seq",
                &[&self.tenant, &parent, &nav, &id, &type_name, &raw],
            )?;
            let seq = rows.first().map(|r| r.get(0)).ok_or_else(|| StoreError::Conflict(id.to_owned()))?;
            let row = Row { seq, parent, nav: nav.into(), id: id.into(), type_name: type_name.into(), raw: raw.into() };
            self.remember(parent, nav, id, Some(row), true);
            return Ok(seq);
        };
        let deferred = first && deferrable(self.tenant, nav, id, type_name, raw);
        let stmt = if deferred {
            // Not guarded: an insert that cannot fail needs no savepoint before it.
            self.conn.statement(INSERT_AT, &[]).inspect_err(|_| self.failed.set(true))?
        } else {
            self.statement(INSERT_AT, &[])?
        };
        if let Some(state) = self.batch.filter(|_| deferred) {
            // The job's first write: sent without waiting (its answer is awaited before the
            // job's next statement, or at the end of the job or of the batch, see
            // `run_job`). The cache forgets the key until the answer says what happened.
            let conn: &'c Conn = self.conn;
            let (tenant, nav_owned, id_owned) = (self.tenant.to_owned(), nav.to_owned(), id.to_owned());
            let (type_owned, raw_owned) = (type_name.to_owned(), raw.to_owned());
            let mut answer: std::pin::Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + 'c>> =
                Box::pin(async move {
                    conn.client
                        .execute(&stmt, &[&seq, &tenant, &parent, &nav_owned, &id_owned, &type_owned, &raw_owned])
                        .await
                });
            let answer = match queue(answer.as_mut()) {
                Some(done) => Answer::Ready(done),
                None => Answer::Waiting(answer),
            };
            let mut s = state.borrow_mut();
            s.cache.remove(&cache_key(self.tenant, parent, nav, id));
            if !s.savepoint {
                s.uncovered = Some(seq);
            }
            let job = s.job;
            s.pending.push(Pending { job, id: id.to_owned(), answer });
            return Ok(seq);
        }
        let inserted =
            self.run(self.conn.client.execute(&stmt, &[&seq, &self.tenant, &parent, &nav, &id, &type_name, &raw]))?;
        if inserted == 0 {
            return Err(StoreError::Conflict(id.to_owned()));
        }
        let row = Row { seq, parent, nav: nav.into(), id: id.into(), type_name: type_name.into(), raw: raw.into() };
        self.remember(parent, nav, id, Some(row), true);
        Ok(seq)
    }

    fn update(&mut self, seq: Seq, type_name: &str, raw: &str) -> Result<(), StoreError> {
        self.wrote(true);
        self.execute(
            "UPDATE entity SET type = $1, raw = $2 WHERE seq = $3 AND tenant = $4",
            &[&type_name, &raw, &seq, &self.tenant],
        )?;
        Ok(())
    }

    fn delete(&mut self, seq: Seq) -> Result<(), StoreError> {
        self.wrote(true);
        // The row, everything it contains and the links from or to them, in one statement.
        self.execute(
            "WITH RECURSIVE doomed(seq) AS ( \
                 SELECT seq FROM entity WHERE seq = $1 AND tenant = $2 \
                 UNION ALL \
                 SELECT e.seq FROM entity e JOIN doomed d ON e.parent = d.seq WHERE e.tenant = $2), \
             unlinked AS (DELETE FROM link WHERE source IN (SELECT seq FROM doomed) \
                 OR target IN (SELECT seq FROM doomed)) \
             DELETE FROM entity WHERE seq IN (SELECT seq FROM doomed)",
            &[&seq, &self.tenant],
        )?;
        Ok(())
    }

    fn set_link(&mut self, source: Seq, nav: &str, target: Option<Seq>) -> Result<(), StoreError> {
        // Links are not cached.
        self.wrote(false);
        match target {
            Some(t) => self.execute(
                "INSERT INTO link (tenant, source, nav, target) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (source, nav) DO UPDATE SET target = EXCLUDED.target, tenant = EXCLUDED.tenant",
                &[&self.tenant, &source, &nav, &t],
            )?,
            None => self.execute(
                "DELETE FROM link WHERE tenant = $1 AND source = $2 AND nav = $3",
                &[&self.tenant, &source, &nav],
            )?,
        };
        Ok(())
    }

    fn create_tenant(&mut self) -> Result<(), StoreError> {
        self.wrote(false);
        self.execute("INSERT INTO tenant (id) VALUES ($1) ON CONFLICT DO NOTHING", &[&self.tenant])?;
        Ok(())
    }

    fn drop_tenant(&mut self) -> Result<(), StoreError> {
        self.wrote(true);
        for sql in [
            "DELETE FROM link WHERE tenant = $1",
            "DELETE FROM entity WHERE tenant = $1",
            "DELETE FROM tenant WHERE id = $1",
        ] {
            self.execute(sql, &[&self.tenant])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
