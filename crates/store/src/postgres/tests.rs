//! `PostgresStore` against a real throwaway cluster (enrollgraph-testpg): the SQLite
//! store's tests, plus what only several stores over one database can show.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use crate::{Dialect, ListSpec, PostgresStore, ROOT, SqlParam, Store, StoreError, StoreExt};

/// A fresh database; `None` (skipped with a line) only where PostgreSQL may be absent.
fn database() -> Option<String> {
    enrollgraph_testpg::cluster_or_skip("PostgresStore tests").map(enrollgraph_testpg::Cluster::create_database)
}

fn open(url: &str) -> Arc<dyn Store> {
    Arc::new(PostgresStore::connect(url).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_cascade_and_tenant_scoping() {
    let Some(url) = database() else { return };
    let store = open(&url);
    assert_eq!(store.dialect(), Dialect::Postgres);
    crate::contract::crud_cascade_and_tenant_scoping(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_rolls_back_alone_while_batched_jobs_commit() {
    let Some(url) = database() else { return };
    crate::contract::a_failed_job_rolls_back_alone_while_batched_jobs_commit(open(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_swallows_a_failed_statement_is_rolled_back_alone() {
    let Some(url) = database() else { return };
    let store = open(&url);
    // The bad statement aborts the job's savepoint; the job itself says Ok.
    let bad = store.write::<_, StoreError, _>("t", |tx| {
        tx.insert(ROOT, "c", "lost", "T", "{}")?;
        let _ = tx.insert(ROOT, "c", "bad", "T", "not json");
        Ok(())
    });
    let good = store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "kept", "T", "{}").map(|_| ()));
    let (bad, good) = tokio::join!(bad, good);
    assert!(matches!(bad, Err(StoreError::Backend(_))), "{bad:?}");
    good.unwrap();
    let ids: Vec<String> = store
        .read::<_, StoreError, _>("t", |tx| tx.list(ROOT, "c", &ListSpec::default()))
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["kept"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_data_survives_reopening_and_migrations_run_once() {
    let Some(url) = database() else { return };
    {
        let store = open(&url);
        store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "kept", "T", "{}")).await.unwrap();
    }
    let store = open(&url);
    assert!(store.read::<_, StoreError, _>("t", |tx| tx.get(ROOT, "c", "kept")).unwrap().is_some());
    let cluster = enrollgraph_testpg::cluster().unwrap();
    let db = url.rsplit('/').next().unwrap();
    assert_eq!(cluster.psql(db, "SELECT count(*) FROM schema_migrations").unwrap().trim(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_lists_a_tenant_in_order_and_drop_tenant_removes_only_it() {
    let Some(url) = database() else { return };
    crate::contract::export_lists_a_tenant_in_order_and_drop_tenant_removes_only_it(open(&url)).await;
}

#[test]
fn the_body_text_is_kept_exactly_and_reads_work_outside_a_runtime() {
    let Some(url) = database() else { return };
    let store = open(&url);
    let raw = r#"{"z":1,"a":{"y":"2","b":[3, 1]},"m":null}"#;
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    // A current-thread runtime (no block_in_place there) and a plain thread both read.
    rt.block_on(async {
        store.write::<_, StoreError, _>("t", move |tx| tx.insert(ROOT, "c", "x", "T", raw)).await.unwrap();
        let row = store.read::<_, StoreError, _>("t", |tx| tx.get(ROOT, "c", "x")).unwrap().unwrap();
        assert_eq!(row.raw, raw);
    });
    let s = store.clone();
    let row = std::thread::spawn(move || s.read::<_, StoreError, _>("t", |tx| tx.get(ROOT, "c", "X")).unwrap())
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(row.raw, raw);
    // JSON's \u0000, which jsonb refuses, is stored and given back as sent.
    let nul = r#"{"n":"a\u0000b"}"#;
    rt.block_on(store.write::<_, StoreError, _>("t", move |tx| tx.insert(ROOT, "nul", "x", "T", nul))).unwrap();
    let row = store.read::<_, StoreError, _>("t", |tx| tx.get(ROOT, "nul", "x")).unwrap().unwrap();
    assert_eq!(row.raw, nul);
    // A nested read (a read inside a read) takes its own connection.
    let n = store
        .read::<_, StoreError, _>("t", |outer| {
            let inner = store.read::<_, StoreError, _>("t", |tx| tx.count(ROOT, "c", &ListSpec::default()))?;
            Ok(inner + outer.count(ROOT, "c", &ListSpec::default())?)
        })
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_on_json_paths_serve_the_hinted_equality() {
    let Some(url) = database() else { return };
    let store = open(&url);
    let path = vec!["target".to_owned(), "groupId".to_owned()];
    store.ensure_indexes(std::slice::from_ref(&path)).unwrap();
    store.ensure_indexes(std::slice::from_ref(&path)).unwrap();
    store
        .write::<_, StoreError, _>("t", |tx| {
            for i in 0..200 {
                tx.insert(
                    ROOT,
                    "a",
                    &format!("a{i}"),
                    "A",
                    &json!({"target": {"groupId": format!("g{}", i % 50)}}).to_string(),
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let spec = ListSpec { hints: vec![(path, SqlParam::Text("g7".into()))], ..ListSpec::default() };
    let rows = store.read::<_, StoreError, _>("t", |tx| tx.list(ROOT, "a", &spec)).unwrap();
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a7", "a57", "a107", "a157"]);
    let cluster = enrollgraph_testpg::cluster().unwrap();
    let db = url.rsplit('/').next().unwrap();
    let plan = cluster
        .psql(
            db,
            "SET enable_seqscan = off; EXPLAIN SELECT seq FROM entity WHERE tenant = 't' AND parent = 0 AND nav = 'a' \
             AND (body #>> '{\"target\",\"groupId\"}') = 'g7'",
        )
        .unwrap();
    assert!(plan.contains("entity_json_targetgroupid"), "{plan}");
}

/// Two stores over one database (two replicas): concurrent read-modify-write jobs on one
/// tenant never lose an update, because each batch holds the tenant's advisory lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_over_one_database_serialise_a_tenants_writes() {
    let Some(url) = database() else { return };
    let a = open(&url);
    let b = open(&url);
    let counter = a.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "n", "T", r#"{"n":0}"#)).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..200 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        handles.push(tokio::spawn(async move {
            store
                .write::<_, StoreError, _>("t", move |tx| {
                    let row = tx.get_seq(counter)?.unwrap();
                    let n = row.body()["n"].as_i64().unwrap();
                    tx.update(counter, "T", &json!({"n": n + 1}).to_string())?;
                    tx.insert(ROOT, "log", &format!("l{i}"), "T", "{}").map(|_| ())
                })
                .await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let row = b.read::<_, StoreError, _>("t", |tx| tx.get_seq(counter)).unwrap().unwrap();
    assert_eq!(row.raw, r#"{"n":200}"#);
    // seq grows in commit order: the log rows listed by seq are the order the counter moved.
    let log = a.read::<_, StoreError, _>("t", |tx| tx.list(ROOT, "log", &ListSpec::default())).unwrap();
    assert_eq!(log.len(), 200);
}

/// While one replica holds a tenant (a slow job inside its transaction), another replica's
/// write to that tenant waits for the commit and then reads it (the lock comes before any
/// statement of the job), and writes to other tenants go on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_held_by_one_replica_waits_for_its_commit_and_others_go_on() {
    let Some(url) = database() else { return };
    let a = open(&url);
    let b = open(&url);
    let writer = |t: &str| super::tenant_lock(t).unsigned_abs() % super::WRITERS as u64;
    let held = "held-tenant";
    let other = (0..100).map(|i| format!("other-{i}")).find(|t| writer(t) != writer(held)).unwrap();
    let hold = tokio::spawn({
        let b = b.clone();
        async move {
            b.write::<_, StoreError, _>(held, |tx| {
                tx.insert(ROOT, "c", "from-b", "T", "{}")?;
                std::thread::sleep(std::time::Duration::from_millis(1500));
                Ok(())
            })
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    a.write::<_, StoreError, _>(&other, |tx| tx.insert(ROOT, "c", "x", "T", "{}")).await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_millis(800),
        "another tenant waited: {:?}",
        started.elapsed()
    );
    let seen = a.write::<_, StoreError, _>(held, |tx| Ok(tx.get(ROOT, "c", "from-b")?.is_some())).await.unwrap();
    assert!(seen, "the write after the lock did not see the other replica's commit");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "the held tenant did not wait");
    hold.await.unwrap().unwrap();
}

/// Connections the server drops (a restart, a failover, an administrator) are replaced:
/// the next write begins on a fresh connection instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_drops_are_replaced() {
    let Some(url) = database() else { return };
    let store = open(&url);
    store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "before", "T", "{}")).await.unwrap();
    assert!(store.read::<_, StoreError, _>("t", |tx| tx.get(ROOT, "c", "before")).unwrap().is_some());
    let cluster = enrollgraph_testpg::cluster().unwrap();
    let db = url.rsplit('/').next().unwrap();
    let killed = cluster
        .psql(
            db,
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
        )
        .unwrap();
    assert!(killed.trim().parse::<u32>().unwrap() >= 2, "{killed}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "after", "T", "{}")).await.unwrap();
    let n = store.read::<_, StoreError, _>("t", |tx| tx.count(ROOT, "c", &ListSpec::default())).unwrap();
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_chain_reads_levels_until_the_first_missing() {
    let Some(url) = database() else { return };
    crate::contract::get_chain_reads_levels_until_the_first_missing(open(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_alone_leaves_nothing() {
    let Some(url) = database() else { return };
    crate::contract::a_failed_job_alone_leaves_nothing(open(&url)).await;
}
