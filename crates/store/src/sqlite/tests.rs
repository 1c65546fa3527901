#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::{ROOT, SqliteStore, Store, StoreError, StoreExt};

fn temp_store() -> (tempdir::Dir, Arc<dyn Store>) {
    let dir = tempdir::Dir::new();
    let store = SqliteStore::open(&dir.0.join("t.db")).unwrap();
    (dir, Arc::new(store))
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("eg-store-{}-{}", std::process::id(), uuid()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    fn uuid() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn committed_data_survives_reopening() {
    let dir = tempdir::Dir::new();
    let path = dir.0.join("d.db");
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "kept", "T", "{}")).await.unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    assert!(store.read::<_, StoreError, _>("t", |tx| tx.get(ROOT, "c", "kept")).unwrap().is_some());
}

crate::contract::contract_tests! {
    #[tokio::test] temp_store();
    crud_cascade_and_tenant_scoping,
    a_failed_job_rolls_back_alone_while_batched_jobs_commit,
    export_lists_a_tenant_in_order_and_drop_tenant_removes_only_it,
    get_chain_reads_levels_until_the_first_missing,
    a_failed_job_alone_leaves_nothing,
    remembered_parents_never_outlive_their_rows,
    a_read_chain_sees_every_change_to_its_levels,
}

#[test]
fn a_database_out_of_reach_is_unavailable_and_a_defect_is_not() {
    use rusqlite::ffi;
    let failure = |code: std::os::raw::c_int| {
        crate::sqlite_error(&rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some("m".into())))
    };
    for code in [ffi::SQLITE_BUSY, ffi::SQLITE_LOCKED, ffi::SQLITE_FULL, ffi::SQLITE_IOERR, ffi::SQLITE_CANTOPEN] {
        assert!(matches!(failure(code), StoreError::Unavailable(_)), "{code}");
    }
    for code in [ffi::SQLITE_CONSTRAINT, ffi::SQLITE_CORRUPT, ffi::SQLITE_ERROR, ffi::SQLITE_MISMATCH] {
        assert!(matches!(failure(code), StoreError::Backend(_)), "{code}");
    }
    assert!(matches!(StoreError::from(rusqlite::Error::QueryReturnedNoRows), StoreError::Backend(_)));
    // Context keeps the kind.
    assert!(
        matches!(failure(ffi::SQLITE_BUSY).context("commit failed"), StoreError::Unavailable(m) if m.starts_with("commit failed: "))
    );
}

#[tokio::test]
async fn a_write_blocked_past_the_busy_timeout_is_unavailable() {
    let (dir, store) = temp_store();
    store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "a", "T", "{}")).await.unwrap();
    // Another connection holds the write lock past the store's 5 s busy timeout.
    let other = rusqlite::Connection::open(dir.0.join("t.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let outcome = store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "b", "T", "{}")).await;
    assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{outcome:?}");
    other.execute_batch("ROLLBACK").unwrap();
    store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "b", "T", "{}")).await.unwrap();
}

#[tokio::test]
async fn a_parent_deleted_by_another_connection_is_not_resolved_by_the_writer() {
    // The CLI's `tenant admin` commands open the file themselves while a server may run:
    // the writer's remembered chains must see their commits (`PRAGMA data_version`).
    let dir = tempdir::Dir::new();
    let path = dir.0.join("d.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let heads = |store: Arc<dyn Store>| async move {
        store.write::<_, StoreError, _>("t", |tx| tx.get_chain(ROOT, &[("configs", "P")], false)).await.unwrap().len()
    };
    store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "configs", "P", "T", "{}")).await.unwrap();
    assert_eq!(heads(store.clone()).await, 1);
    let other = rusqlite::Connection::open(&path).unwrap();
    other.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(other.execute("DELETE FROM entity WHERE id = 'P'", []).unwrap(), 1);
    assert_eq!(heads(store.clone()).await, 0, "another connection's delete is seen");
}

#[tokio::test]
async fn a_read_outside_a_transaction_runs_one_statement_or_runs_again_inside_one() {
    let (_dir, store) = temp_store();
    let (p, a) = store
        .write::<_, StoreError, _>("t", |tx| {
            let p = tx.insert(ROOT, "configs", "P", "T", "{}")?;
            Ok((p, tx.insert(p, "assignments", "A", "X", "1")?))
        })
        .await
        .unwrap();
    // One statement: run once, outside a transaction.
    let mut runs = 0;
    let rows = store
        .read_single::<_, StoreError, _>("t", |tx| {
            runs += 1;
            tx.get_chain(ROOT, &[("configs", "P"), ("assignments", "A")], true)
        })
        .unwrap();
    assert_eq!((runs, rows.len(), rows[1].raw.as_str()), (1, 2, "1"));
    // Two statements: the second is refused outside a transaction, and the job runs again
    // inside one, whose answer is the one returned.
    let mut runs = 0;
    let mut refused = Vec::new();
    let seqs = store
        .read_single::<_, StoreError, _>("t", |tx| {
            runs += 1;
            let parent = tx.get_chain(ROOT, &[("configs", "P")], false)?;
            match tx.get_seq(a) {
                Ok(row) => Ok((parent[0].seq, row.map(|r| r.seq))),
                Err(e) => {
                    refused.push(e.to_string());
                    Err(e)
                }
            }
        })
        .unwrap();
    assert_eq!((runs, seqs), (2, (p, Some(a))));
    assert_eq!(refused, ["storage backend: a second statement outside a transaction"]);
    // A job's own error, in one statement, is its answer.
    let mut runs = 0;
    let failed = store.read_single::<(), StoreError, _>("t", |_| {
        runs += 1;
        Err(StoreError::Conflict("mine".into()))
    });
    assert!(matches!((runs, failed), (1, Err(StoreError::Conflict(id))) if id == "mine"));
    // The reader's connection is left outside any transaction: a write is not blocked,
    // and the next read sees it.
    store.write::<_, StoreError, _>("t", move |tx| tx.update(a, "X", "2")).await.unwrap();
    let raw = store
        .read_single::<_, StoreError, _>("t", |tx| tx.get_chain(ROOT, &[("configs", "P"), ("assignments", "A")], true))
        .unwrap()
        .pop()
        .unwrap()
        .raw;
    assert_eq!(raw, "2");
}

/// The SQLite linked in is built as .cargo/config.toml asks: without the two process-wide
/// mutexes every connection of every thread would otherwise take (allocation statistics,
/// and the page cache shared by all connections). A build that lost the flags (cargo run
/// from outside the workspace, a changed libsqlite3-sys default) fails here, not only in
/// the bench.
#[test]
fn sqlite_is_built_without_its_process_wide_mutexes() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
    let options: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
    // The rest of libsqlite3-sys's options stay (JSON is what the push-down indexes use).
    assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
}
