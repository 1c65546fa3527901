//! Durable storage of Graph entities: one trait, [`Store`], whose every read and write is
//! scoped to one tenant, an embedded SQLite implementation, [`SqliteStore`] (the default),
//! and [`PostgresStore`], over which several server replicas behave as one service.
//!
//! The model is generic: an entity is a row (tenant, containing entity, containing
//! navigation, id, type, JSON body), so a new resource needs no new table. Business
//! rules (priorities, assignment sets) live in the service crate and run inside one
//! transaction through [`Tx`], so a PostgreSQL backend only implements these primitives.

#[cfg(test)]
mod contract;
mod postgres;
mod sqlite;

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The SQL spoken by a store, for the pushed-down `$filter`/`$orderby` (the OData crate's
/// dialect of that name; both keep the JSON properties in a column `body`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite with JSON1; `body` is JSON text, placeholders `?N`.
    Sqlite,
    /// PostgreSQL; `body` is `jsonb`, placeholders `$N`.
    Postgres,
}

/// The key of a stored row, unique per database; also the insertion order that keyset
/// paging follows.
pub type Seq = i64;

/// The containing entity of the tenant's root singleton (`deviceManagement`).
pub const ROOT: Seq = 0;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An entity with that id already exists in that collection.
    #[error("an entity with id '{0}' already exists in this collection")]
    Conflict(String),
    /// The database failed (I/O, corruption, a bug); logged, sent out as a 500.
    #[error("storage backend: {0}")]
    Backend(String),
    /// The write closure failed; its own error is returned to the caller.
    #[error("write rolled back")]
    RolledBack,
    /// The database is briefly out of reach (PostgreSQL down, restarting or refusing
    /// connections; the disk full; a lock held past the busy timeout; an I/O error): the
    /// same request may succeed later, so it is answered `503` with `Retry-After`, not
    /// `500` (issue 18 item 16). Nothing of the request was committed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// The same kind of error, its message prefixed with what was being done.
    #[must_use]
    pub fn context(&self, what: &str) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{what}: {m}")),
            other => StoreError::Backend(format!("{what}: {other}")),
        }
    }
}

/// SQLite's result codes of a database briefly out of reach rather than of a defect: busy
/// or locked past the busy timeout, the disk full, I/O errors, a file that cannot be
/// opened or written (a read-only remount).
pub(crate) fn sqlite_error(e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked | C::DiskFull | C::SystemIoFailure | C::CannotOpen | C::ReadOnly) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        sqlite_error(&e)
    }
}

/// One stored entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Database key.
    pub seq: Seq,
    /// The containing entity ([`ROOT`] for top-level collections).
    pub parent: Seq,
    /// The containing navigation property.
    pub nav: String,
    /// The entity's Graph id.
    pub id: String,
    /// The entity's qualified type name.
    pub type_name: String,
    /// Structural properties, stored form (see enrollgraph-csdl), as JSON text: parsed only
    /// where needed ([`Row::body`]), shaped for the wire straight from the text otherwise.
    /// Empty for rows read with [`ReadTx::get_head`].
    pub raw: String,
}

impl Row {
    /// The stored properties, parsed.
    #[must_use]
    pub fn body(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.raw) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

/// A row borrowed from the backend's own buffers ([`ReadTx::list_each`]): listing streams
/// rows into the response without a `String` per column (issue 8's W3 spent a third of
/// its time copying rows out of SQLite).
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    /// Database key.
    pub seq: Seq,
    /// The entity's Graph id.
    pub id: &'a str,
    /// The entity's qualified type name.
    pub type_name: &'a str,
    /// Structural properties, stored form, as JSON text.
    pub raw: &'a str,
}

/// A parameter bound into pushed-down SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    /// NULL
    Null,
    /// INTEGER / BOOLEAN
    Int(i64),
    /// REAL
    Double(f64),
    /// TEXT
    Text(String),
    /// BOOLEAN
    Bool(bool),
}

/// A SQL predicate or expression over the `entity` row (columns `id`, `type`, `body`),
/// with its parameters numbered from the index the caller gave the translator.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFragment {
    /// The SQL text.
    pub text: String,
    /// Parameter values in order.
    pub params: Vec<SqlParam>,
}

/// Which rows of one collection to read, in which order.
#[derive(Debug, Clone, Default)]
pub struct ListSpec {
    /// Only rows of these types (`None` = all).
    pub types: Option<Vec<String>>,
    /// A pushed-down predicate (parameters numbered from [`ListSpec::FIRST_PARAM`]).
    pub filter: Option<SqlFragment>,
    /// Only rows after this one in `seq` order (keyset paging).
    pub after: Option<Seq>,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// `ORDER BY` keys before `seq` (parameters numbered after the filter's).
    pub order: Option<SqlFragment>,
    /// Rows skipped after ordering (paging of a sorted result).
    pub offset: Option<usize>,
    /// Equalities implied by `filter` (property path = value), added so that the
    /// database can answer them from an expression index ([`Store::ensure_indexes`]).
    pub hints: Vec<(Vec<String>, SqlParam)>,
}

impl ListSpec {
    /// The first parameter index a pushed-down predicate may use; lower ones are the store's.
    pub const FIRST_PARAM: usize = 10;
}

/// Reads within one tenant.
pub trait ReadTx {
    /// The entity `id` in collection (`parent`, `nav`); ids match case-insensitively.
    ///
    /// # Errors
    /// Backend failures.
    fn get(&self, parent: Seq, nav: &str, id: &str) -> Result<Option<Row>, StoreError>;
    /// Like [`ReadTx::get`] without the body (for path segments that only lead further).
    ///
    /// # Errors
    /// Backend failures.
    fn get_head(&self, parent: Seq, nav: &str, id: &str) -> Result<Option<Row>, StoreError>;
    /// The rows along a containment chain: entity `steps[0].1` of collection (`parent`,
    /// `steps[0].0`), then entity `steps[1].1` of that entity's collection `steps[1].0`,
    /// and so on, stopping before the first that does not exist. All are heads
    /// ([`ReadTx::get_head`]) but the last when `body` is set. The default reads level by
    /// level; a backend may read the chain in one statement (a point read addressed as
    /// `configurations/{id}/assignments/{id}` was two statements: issue 8's W2).
    ///
    /// # Errors
    /// Backend failures.
    fn get_chain(&self, parent: Seq, steps: &[(&str, &str)], body: bool) -> Result<Vec<Row>, StoreError> {
        chain_by_level(self, parent, steps, body)
    }
    /// An entity by its key, if it belongs to this tenant.
    ///
    /// # Errors
    /// Backend failures.
    fn get_seq(&self, seq: Seq) -> Result<Option<Row>, StoreError>;
    /// Rows of collection (`parent`, `nav`) in insertion order.
    ///
    /// # Errors
    /// Backend failures.
    fn list(&self, parent: Seq, nav: &str, spec: &ListSpec) -> Result<Vec<Row>, StoreError>;
    /// Like [`ReadTx::list`], handing each row to `f` as it is read (stops at `f`'s error).
    /// The default reads the rows with [`ReadTx::list`]; a backend overrides it to lend its
    /// own buffers.
    ///
    /// # Errors
    /// Backend failures, or `f`'s.
    fn list_each(
        &self,
        parent: Seq,
        nav: &str,
        spec: &ListSpec,
        f: &mut dyn FnMut(RowRef<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for r in self.list(parent, nav, spec)? {
            f(RowRef { seq: r.seq, id: &r.id, type_name: &r.type_name, raw: &r.raw })?;
        }
        Ok(())
    }
    /// The number of rows [`ReadTx::list`] would return without `after`/`limit`.
    ///
    /// # Errors
    /// Backend failures.
    fn count(&self, parent: Seq, nav: &str, spec: &ListSpec) -> Result<u64, StoreError>;
    /// The target of the single-valued link `nav` of `source`.
    ///
    /// # Errors
    /// Backend failures.
    fn link(&self, source: Seq, nav: &str) -> Result<Option<Seq>, StoreError>;
    /// The sources whose link `nav` points at `target`, in source order.
    ///
    /// # Errors
    /// Backend failures.
    fn linked_from(&self, target: Seq, nav: &str) -> Result<Vec<Seq>, StoreError>;
    /// True when the tenant has been provisioned.
    ///
    /// # Errors
    /// Backend failures.
    fn tenant_exists(&self) -> Result<bool, StoreError>;
    /// Every row of the tenant in `seq` order (parents before what they contain), and every
    /// link as (source, nav, target): what a snapshot of the tenant holds.
    ///
    /// # Errors
    /// Backend failures.
    fn export(&self) -> Result<(Vec<Row>, Vec<Link>), StoreError>;
}

/// [`ReadTx::get_chain`] a statement per level.
pub(crate) fn chain_by_level<T: ReadTx + ?Sized>(
    tx: &T,
    parent: Seq,
    steps: &[(&str, &str)],
    body: bool,
) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::with_capacity(steps.len());
    let mut at = parent;
    for (i, (nav, id)) in steps.iter().enumerate() {
        let row = if body && i + 1 == steps.len() { tx.get(at, nav, id)? } else { tx.get_head(at, nav, id)? };
        let Some(row) = row else { break };
        at = row.seq;
        rows.push(row);
    }
    Ok(rows)
}

/// Writes within one tenant, all in one transaction.
pub trait Tx: ReadTx {
    /// Inserts an entity (its properties as JSON text) and returns its key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the id exists in that collection.
    fn insert(&mut self, parent: Seq, nav: &str, id: &str, type_name: &str, raw: &str) -> Result<Seq, StoreError>;
    /// Replaces an entity's type and properties (JSON text).
    ///
    /// # Errors
    /// Backend failures.
    fn update(&mut self, seq: Seq, type_name: &str, raw: &str) -> Result<(), StoreError>;
    /// Deletes an entity, everything it contains, and links from or to them.
    ///
    /// # Errors
    /// Backend failures.
    fn delete(&mut self, seq: Seq) -> Result<(), StoreError>;
    /// Sets or clears the single-valued link `nav` of `source`.
    ///
    /// # Errors
    /// Backend failures.
    fn set_link(&mut self, source: Seq, nav: &str, target: Option<Seq>) -> Result<(), StoreError>;
    /// Records the tenant as provisioned.
    ///
    /// # Errors
    /// Backend failures.
    fn create_tenant(&mut self) -> Result<(), StoreError>;
    /// Removes every row and link of the tenant and its provisioned mark (tenant delete,
    /// reset and restore start from here).
    ///
    /// # Errors
    /// Backend failures.
    fn drop_tenant(&mut self) -> Result<(), StoreError>;
}

/// A unit of work run inside a write transaction.
pub type WriteJob = Box<dyn FnOnce(&mut dyn Tx) -> Result<(), StoreError> + Send>;

/// A write job on its way to a backend's writer thread, with where to send its outcome.
pub(crate) struct WriteRequest {
    pub(crate) tenant: String,
    pub(crate) job: WriteJob,
    pub(crate) done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// A write on its way to the store ([`Store::announce_write`]): counted from when its
/// request begins until its job starts running (or is dropped unrun), so that the writer
/// knows how many writes are still being prepared when it gathers a batch.
#[derive(Debug)]
pub struct WriteIntent(Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>);

impl WriteIntent {
    /// An intent that counts nowhere (a backend without gathering).
    #[must_use]
    pub fn none() -> Self {
        WriteIntent(None)
    }

    pub(crate) fn counted(counter: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        WriteIntent(Some(counter.clone()))
    }
}

impl Drop for WriteIntent {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

/// The longest a writer waits for announced writes to reach its queue before committing.
pub(crate) const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Group commit's batch: takes `first` and every queued request, then waits (at most
/// `wait`, [`GATHER_WAIT`] in the writers) for more while writes announced to `arriving` are still being
/// prepared, or while the batch is smaller than the last round's (`expect`, which the
/// writer keeps between calls).
///
/// Why wait: a commit is an fsync, and the writer is serial. Taking only what was
/// queued, a batch started as soon as the first request of a round arrived, while the
/// rest were still being parsed and validated on the workers; they then waited out that
/// fsync and made the next batch. At c=32 batches alternated small and large, 16 jobs on
/// average, and two fsyncs served each round (issue 8's W1, fsync-bound: the
/// `sqlite-group` ceiling fills its batches because its requests cost little before they
/// queue). Waiting a moment for what is on its way, as PostgreSQL's `commit_delay` does,
/// makes one fsync serve the round. A single client never waits: nothing else is
/// announced and its rounds hold one write. A round that shrinks (fewer clients) costs
/// one wait, after which `expect` follows it down.
pub(crate) fn gather(
    queue: &std::sync::mpsc::Receiver<WriteRequest>,
    first: WriteRequest,
    max: usize,
    arriving: &std::sync::atomic::AtomicUsize,
    expect: &mut usize,
    wait: std::time::Duration,
) -> Vec<WriteRequest> {
    let mut batch = vec![first];
    let drain = |batch: &mut Vec<WriteRequest>| {
        while batch.len() < max {
            match queue.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
    };
    drain(&mut batch);
    let deadline = std::time::Instant::now() + wait;
    let mut timed_out = false;
    // Every announced write not yet running is in this batch, queued, or being prepared.
    while batch.len() < max
        && (batch.len() < *expect || arriving.load(std::sync::atomic::Ordering::Acquire) > batch.len())
    {
        let now = std::time::Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        // Short slices: a write that fails validation leaves without queueing, and only
        // the count says so.
        match queue.recv_timeout((deadline - now).min(std::time::Duration::from_micros(100))) {
            Ok(r) => {
                batch.push(r);
                drain(&mut batch);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    *expect = if timed_out { batch.len() } else { (*expect).max(batch.len()) };
    batch
}

/// Queues `job` on a writer thread; the future resolves with the outcome of its commit.
/// (Both backends' `write_job`: a writer thread per queue runs the group commits.)
pub(crate) fn queue_write(
    writer: &std::sync::mpsc::Sender<WriteRequest>,
    tenant: &str,
    job: WriteJob,
) -> BoxFuture<'static, Result<(), StoreError>> {
    let (done, wait) = tokio::sync::oneshot::channel();
    let sent = writer.send(WriteRequest { tenant: tenant.to_owned(), job, done });
    Box::pin(async move {
        sent.map_err(|_| StoreError::Backend("the writer thread has stopped".into()))?;
        wait.await.map_err(|_| StoreError::Backend("the writer thread dropped a request".into()))?
    })
}

/// A single-valued link between two rows: (source, navigation, target).
pub type Link = (Seq, String, Seq);

/// A boxed future, for the object-safe trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Durable, tenant-scoped storage. Object-safe; the server holds an `Arc<dyn Store>`.
pub trait Store: Send + Sync + 'static {
    /// Runs `job` in a transaction of `tenant`; resolves after the commit is durable.
    /// A job that fails is rolled back alone (writes of other requests batched into the
    /// same commit are unaffected).
    fn write_job(&self, tenant: &str, job: WriteJob) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Runs `job` against a consistent snapshot of `tenant`, on the calling thread.
    ///
    /// # Errors
    /// Backend failures, or whatever `job` returns.
    fn read_job(
        &self,
        tenant: &str,
        job: &mut dyn FnMut(&dyn ReadTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Runs `job` as at most one statement outside a transaction: one statement reads one
    /// snapshot, so a point read need not pay for `BEGIN` and `COMMIT` (bench W2).
    /// `Ok(false)` when the job asked for a second statement, which was refused and whose
    /// outcome is dropped: the caller runs the job again with [`Store::read_job`]. The
    /// default runs it that way at once.
    ///
    /// # Errors
    /// Backend failures, or whatever `job` returns.
    fn read_job_single(
        &self,
        tenant: &str,
        job: &mut dyn FnMut(&dyn ReadTx) -> Result<(), StoreError>,
    ) -> Result<bool, StoreError> {
        self.read_job(tenant, job).map(|()| true)
    }
    /// Creates (if missing) an index on each JSON property path, per collection.
    ///
    /// # Errors
    /// Backend failures.
    fn ensure_indexes(&self, paths: &[Vec<String>]) -> Result<(), StoreError>;
    /// Every provisioned tenant, in creation order.
    ///
    /// # Errors
    /// Backend failures.
    fn tenants(&self) -> Result<Vec<String>, StoreError>;
    /// Announces a write of `tenant` that will reach [`Store::write_job`] soon: the writer
    /// waits a moment for announced writes before committing, so that they share its
    /// commit (a backend with a writer per share of the tenants counts per writer). Drop
    /// the intent when the job starts running (move it into the job), or when the write
    /// is abandoned. The default counts nothing.
    fn announce_write(&self, tenant: &str) -> WriteIntent {
        let _ = tenant;
        WriteIntent::none()
    }
    /// The SQL dialect that pushed-down predicates must be written in.
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    /// Readiness (issue 16): the database answers and its schema is at this binary's
    /// migration. The default reads the tenant list.
    ///
    /// # Errors
    /// The database is out of reach or its schema is not this binary's.
    fn ready(&self) -> Result<(), StoreError> {
        self.tenants().map(|_| ())
    }
    /// Resolves once every write queued before the call has been committed (or failed):
    /// graceful shutdown waits for it before the process exits (issue 16). The default has
    /// no queue.
    fn drain(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Closes the connections this store keeps idle (PostgreSQL's read pool); writers close
    /// theirs when the store is dropped.
    fn close(&self) {}
}

/// A marker job for [`Store::drain`]: queued behind every write already queued, it rolls
/// itself back, so that its answer means the writer has finished everything before it.
pub(crate) fn drain_queue(writer: &std::sync::mpsc::Sender<WriteRequest>) -> BoxFuture<'static, ()> {
    let done = queue_write(writer, "", Box::new(|_| Err(StoreError::RolledBack)));
    Box::pin(async move {
        let _ = done.await;
    })
}

/// Group-commit metrics (issue 16): the batch size and the commit's duration, per backend.
pub(crate) fn record_commit(backend: &'static str, batch: usize, started: std::time::Instant) {
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!("enrollgraph_group_commit_batch_size", "backend" => backend).record(batch as f64);
    metrics::histogram!("enrollgraph_group_commit_seconds", "backend" => backend)
        .record(started.elapsed().as_secs_f64());
}

/// Typed helpers over [`Store`] for any result and error type.
pub trait StoreExt {
    /// Runs `f` in one durable write transaction of `tenant`; `Err` rolls it back.
    fn write<T, E, F>(&self, tenant: &str, f: F) -> impl Future<Output = Result<T, E>> + Send
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static;
    /// Runs `f` against `tenant`'s data.
    ///
    /// # Errors
    /// Whatever `f` returns, or backend failures.
    fn read<T, E, F>(&self, tenant: &str, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&dyn ReadTx) -> Result<T, E>;

    /// [`StoreExt::read`] for a job that mostly runs one statement (a point read): first as
    /// that one statement outside a transaction ([`Store::read_job_single`]), again in a
    /// transaction when it needs more.
    ///
    /// # Errors
    /// Whatever `f` returns, or backend failures.
    fn read_single<T, E, F>(&self, tenant: &str, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnMut(&dyn ReadTx) -> Result<T, E>;
}

impl StoreExt for dyn Store {
    async fn write<T, E, F>(&self, tenant: &str, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T, E>>(1);
        let job: WriteJob = Box::new(move |t| {
            let out = f(t);
            let failed = out.is_err();
            let _ = tx.send(out);
            if failed { Err(StoreError::RolledBack) } else { Ok(()) }
        });
        let committed = self.write_job(tenant, job).await;
        let outcome = rx.try_recv().ok();
        match (committed, outcome) {
            (Ok(()), Some(out)) | (Err(StoreError::RolledBack), Some(out @ Err(_))) => out,
            (Err(e), _) => Err(E::from(e)),
            (Ok(()), None) => Err(E::from(StoreError::Backend("write job produced no result".into()))),
        }
    }

    fn read<T, E, F>(&self, tenant: &str, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&dyn ReadTx) -> Result<T, E>,
    {
        let mut f = Some(f);
        let mut out = None;
        let r = self.read_job(tenant, &mut |tx| {
            if let Some(f) = f.take() {
                out = Some(f(tx));
            }
            Ok(())
        });
        match (r, out) {
            (_, Some(out)) => out,
            (Err(e), None) => Err(E::from(e)),
            (Ok(()), None) => Err(E::from(StoreError::Backend("read job did not run".into()))),
        }
    }

    fn read_single<T, E, F>(&self, tenant: &str, mut f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnMut(&dyn ReadTx) -> Result<T, E>,
    {
        let mut out = None;
        let alone = self.read_job_single(tenant, &mut |tx| {
            out = Some(f(tx));
            Ok(())
        });
        match (alone, out) {
            (Ok(true), Some(out)) => out,
            (Ok(false), _) => self.read(tenant, f),
            (Err(e), _) => Err(E::from(e)),
            (Ok(true), None) => Err(E::from(StoreError::Backend("read job did not run".into()))),
        }
    }
}

#[cfg(test)]
mod gather_tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::{GATHER_WAIT, WriteIntent, WriteRequest, gather};

    fn request(tenant: &str) -> WriteRequest {
        let (done, _) = tokio::sync::oneshot::channel();
        WriteRequest { tenant: tenant.into(), job: Box::new(|_| Ok(())), done }
    }

    #[test]
    fn takes_what_is_queued_and_waits_for_nothing_unannounced() {
        let (tx, rx) = mpsc::channel();
        tx.send(request("b")).unwrap();
        tx.send(request("c")).unwrap();
        let arriving = AtomicUsize::new(0);
        let mut expect = 1;
        let batch = gather(&rx, request("a"), 512, &arriving, &mut expect, GATHER_WAIT);
        let tenants: Vec<&str> = batch.iter().map(|r| r.tenant.as_str()).collect();
        assert_eq!(tenants, ["a", "b", "c"]);
        assert_eq!(expect, 3, "the round held three writes");
        // Never more than `max`; the rest stays queued for the next batch.
        tx.send(request("d")).unwrap();
        tx.send(request("e")).unwrap();
        let batch = gather(&rx, request("x"), 2, &arriving, &mut 1, GATHER_WAIT);
        assert_eq!(batch.len(), 2);
        assert_eq!(rx.try_recv().unwrap().tenant, "e");
    }

    #[test]
    fn waits_for_an_announced_write_and_shares_its_batch() {
        let (tx, rx) = mpsc::channel();
        let arriving = Arc::new(AtomicUsize::new(0));
        let first = WriteIntent::counted(&arriving);
        let second = WriteIntent::counted(&arriving);
        assert_eq!(arriving.load(Ordering::Acquire), 2);
        // The second write is still being prepared when the writer starts gathering.
        let late = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_micros(200));
            tx.send(request("late")).unwrap();
            second
        });
        // Both intents live until their jobs run: the batch holds `early` and the writer
        // waits for the second announced write.
        // A long bound, so that a busy machine cannot make the test flaky: the wait ends
        // when the announced write arrives, not at the bound.
        let batch = gather(&rx, request("early"), 512, &arriving, &mut 1, std::time::Duration::from_secs(30));
        assert_eq!(batch.iter().map(|r| r.tenant.as_str()).collect::<Vec<_>>(), ["early", "late"]);
        drop(first);
        drop(late.join().unwrap());
        assert_eq!(arriving.load(Ordering::Acquire), 0, "intents count down when dropped");
    }

    #[test]
    fn an_announced_write_that_never_comes_costs_one_bounded_wait() {
        let (_tx, rx) = mpsc::channel();
        let arriving = AtomicUsize::new(5);
        let mut expect = 8;
        let started = std::time::Instant::now();
        let batch = gather(&rx, request("a"), 512, &arriving, &mut expect, GATHER_WAIT);
        assert_eq!(batch.len(), 1);
        // Generous bound (shared machines): the wait is GATHER_WAIT, not forever.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(expect, 1, "after a timed-out wait the writer expects what came");
    }
}
