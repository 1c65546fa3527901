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
    assert_eq!(
        cluster
            .psql(db, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations")
            .unwrap()
            .trim(),
        "1,2"
    );
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

/// The writer's cache of rows never answers with what its own transaction changed since:
/// inside one job, a row read, then updated, then deleted reads as it is each time; a job
/// rolled back leaves nothing cached behind it (whether the next job shares its batch or not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writers_cache_follows_its_own_writes_and_rollbacks() {
    let Some(url) = database() else { return };
    let store = open(&url);
    store
        .write::<_, StoreError, _>("t", |tx| {
            assert!(tx.get_head(ROOT, "c", "p")?.is_none());
            let p = tx.insert(ROOT, "c", "p", "T", r#"{"v":1}"#)?;
            let got = tx.get(ROOT, "c", "P")?.unwrap();
            assert_eq!((got.seq, got.id.as_str(), got.raw.as_str()), (p, "p", r#"{"v":1}"#));
            assert_eq!(tx.get_head(ROOT, "c", "p")?.unwrap().raw, "");
            tx.update(p, "T2", r#"{"v":2}"#)?;
            let got = tx.get(ROOT, "c", "p")?.unwrap();
            assert_eq!((got.type_name.as_str(), got.raw.as_str()), ("T2", r#"{"v":2}"#));
            let child = tx.insert(p, "kids", "k", "K", "{}")?;
            assert_eq!(tx.get_head(p, "kids", "k")?.unwrap().seq, child);
            tx.delete(p)?;
            assert!(tx.get(ROOT, "c", "p")?.is_none());
            assert!(tx.get_head(p, "kids", "k")?.is_none(), "the delete took what the row contained");
            Ok(())
        })
        .await
        .unwrap();
    // A job that read and wrote, then failed: the next job (the same batch or the next)
    // sees none of it.
    for together in [false, true] {
        let failing = store.write::<_, StoreError, _>("t", |tx| {
            assert!(tx.get(ROOT, "c", "gone")?.is_none());
            tx.insert(ROOT, "c", "gone", "T", "{}")?;
            assert!(tx.get_head(ROOT, "c", "gone")?.is_some());
            Err::<(), _>(StoreError::Backend("the job gives up".into()))
        });
        let after = || store.write::<_, StoreError, _>("t", |tx| Ok(tx.get_head(ROOT, "c", "gone")?.is_none()));
        let (failed, absent) = if together {
            tokio::join!(failing, after())
        } else {
            let failed = failing.await;
            (failed, after().await)
        };
        assert!(matches!(failed, Err(StoreError::Backend(ref m)) if m == "the job gives up"), "{failed:?}");
        assert!(absent.unwrap(), "a rolled-back insert was served from the cache (together: {together})");
    }
    assert!(store.read::<_, StoreError, _>("t", |tx| tx.get(ROOT, "c", "gone")).unwrap().is_none());
    // An insert sent before the job's savepoint (its first statement), then a statement
    // that needs one, then a failure: both are undone.
    let failed = store
        .write::<_, StoreError, _>("t", |tx| {
            let early = tx.insert(ROOT, "c", "early", "T", "{}")?;
            tx.insert(early, "kids", "late", "K", "{}")?;
            assert_eq!(tx.list(ROOT, "c", &ListSpec::default())?.len(), 1);
            Err::<(), _>(StoreError::Backend("the job gives up".into()))
        })
        .await;
    assert!(failed.is_err());
    let (rows, _) = store.read::<_, StoreError, _>("t", |tx| tx.export()).unwrap();
    assert!(rows.is_empty(), "{rows:?}");
}

/// What one replica's writer cached of a tenant is forgotten when another replica writes
/// that tenant in between (the tenant's clock moved): a row the other created is found, a
/// row it deleted or changed is not served from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_forgets_what_another_replica_changed() {
    let Some(url) = database() else { return };
    let a = open(&url);
    let b = open(&url);
    let head = |store: &Arc<dyn Store>| {
        let store = store.clone();
        async move {
            store
                .write::<_, StoreError, _>("t", |tx| Ok(tx.get(ROOT, "c", "x")?.map(|r| (r.seq, r.raw))))
                .await
                .unwrap()
        }
    };
    // a learns that x is absent, b creates it: a finds it.
    assert_eq!(head(&a).await, None);
    let x = b.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "x", "T", r#"{"v":1}"#)).await.unwrap();
    assert_eq!(head(&a).await, Some((x, r#"{"v":1}"#.to_owned())));
    // a has x cached; b changes it, then deletes it.
    b.write::<_, StoreError, _>("t", move |tx| tx.update(x, "T", r#"{"v":2}"#)).await.unwrap();
    assert_eq!(head(&a).await, Some((x, r#"{"v":2}"#.to_owned())));
    b.write::<_, StoreError, _>("t", move |tx| tx.delete(x)).await.unwrap();
    assert_eq!(head(&a).await, None);
    // and an insert under a parent the other replica deleted is refused by the resolution
    // the service does (get_head of the parent), not made into an orphan.
    let p = a.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "p", "T", "{}")).await.unwrap();
    assert!(a.write::<_, StoreError, _>("t", |tx| Ok(tx.get_head(ROOT, "c", "p")?.is_some())).await.unwrap());
    b.write::<_, StoreError, _>("t", move |tx| tx.delete(p)).await.unwrap();
    assert!(!a.write::<_, StoreError, _>("t", |tx| Ok(tx.get_head(ROOT, "c", "p")?.is_some())).await.unwrap());
}

/// An insert sent without waiting still reports its duplicate: as the job's only write (the
/// outcome of the write), or at the job's next statement, and the job's other writes are
/// rolled back with it; jobs batched with it commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_of_inserts_sent_without_waiting_are_conflicts() {
    let Some(url) = database() else { return };
    let store = open(&url);
    store.write::<_, StoreError, _>("t", |tx| tx.insert(ROOT, "c", "taken", "T", "{}")).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let id = if i % 4 == 0 { "TAKEN".to_owned() } else { format!("new{i}") };
            store.write::<_, StoreError, _>("t", move |tx| tx.insert(ROOT, "c", &id, "T", "{}")).await
        }));
    }
    let mut conflicts = 0;
    for h in handles {
        match h.await.unwrap() {
            Err(StoreError::Conflict(id)) => {
                assert_eq!(id, "TAKEN");
                conflicts += 1;
            }
            other => {
                other.unwrap();
            }
        }
    }
    assert_eq!(conflicts, 10);
    assert_eq!(store.read::<_, StoreError, _>("t", |tx| tx.count(ROOT, "c", &ListSpec::default())).unwrap(), 31);
    // A duplicate followed by more statements: the next one answers the conflict, and
    // nothing of the job stays.
    let outcome = store
        .write::<_, StoreError, _>("t", |tx| {
            let first = tx.insert(ROOT, "c", "taken", "T", "{}");
            let next = tx.insert(ROOT, "c", "other", "T", "{}");
            assert!(matches!(
                (&first, &next),
                (Err(StoreError::Conflict(_)), _) | (Ok(_), Err(StoreError::Conflict(_)))
            ));
            first.and(next)
        })
        .await;
    assert!(matches!(outcome, Err(StoreError::Conflict(ref id)) if id == "taken"), "{outcome:?}");
    assert!(store.read::<_, StoreError, _>("t", |tx| tx.get(ROOT, "c", "other")).unwrap().is_none());
    // A job that swallows the duplicate and ends: the write is the conflict.
    let swallowed = store
        .write::<_, StoreError, _>("t", |tx| {
            let _ = tx.insert(ROOT, "c", "taken", "T", "{}");
            Ok(())
        })
        .await;
    assert!(matches!(swallowed, Err(StoreError::Conflict(ref id)) if id == "taken"), "{swallowed:?}");
}

/// Bodies PostgreSQL refuses where serde accepts them fail their own write alone (they are
/// never sent without waiting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_postgres_refuses_fail_alone() {
    let Some(url) = database() else { return };
    let store = open(&url);
    let bad = [r#"{"n":1e200000}"#, r#"{"s":"\ud800"}"#, "not json"];
    let mut handles = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let (id, raw) = match bad.get(i % 4) {
                Some(raw) => (format!("bad{i}"), (*raw).to_owned()),
                None => (format!("good{i}"), "{}".to_owned()),
            };
            (i % 4, store.write::<_, StoreError, _>("t", move |tx| tx.insert(ROOT, "c", &id, "T", &raw)).await)
        }));
    }
    for h in handles {
        let (kind, outcome) = h.await.unwrap();
        if kind < bad.len() {
            assert!(matches!(outcome, Err(StoreError::Backend(_))), "{kind}: {outcome:?}");
        } else {
            outcome.unwrap();
        }
    }
    let rows = store.read::<_, StoreError, _>("t", |tx| tx.list(ROOT, "c", &ListSpec::default())).unwrap();
    let mut ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["good11", "good3", "good7"]);
}

#[test]
fn what_is_sent_without_waiting_is_what_postgres_takes() {
    use super::{deferrable, plain_numbers};
    assert!(deferrable("t", "c", "id", "T", r#"{"a":[1,-2.5e10,true,false,null,"x\"1e99999"],"b":{}}"#));
    assert!(plain_numbers(r#"{"n":1E+300,"s":"0000000000000000000000000000000000000000000000000"}"#));
    assert!(!plain_numbers(r#"{"n":1e1001}"#));
    assert!(!plain_numbers(r#"{"n":0.00000000000000000000000000000000000000000001}"#));
    assert!(!deferrable("t", "c", "id", "T", r#"{"s":"\u00e9"}"#));
    assert!(!deferrable("t", "c", "id\0", "T", "{}"));
    assert!(!deferrable("t", "c", "id", "T", "{"));
    assert!(!deferrable("t", "c", &"i".repeat(700), "T", "{}"));
    assert!(!deferrable("t", "c", "id", "T", &format!(r#"{{"s":"{}"}}"#, "x".repeat(3000))));
}

/// The keys allocated at BEGIN come from the identity of `entity.seq`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_the_identity_of_seq() {
    let Some(url) = database() else { return };
    let _store = open(&url);
    let cluster = enrollgraph_testpg::cluster().unwrap();
    let db = url.rsplit('/').next().unwrap();
    assert_eq!(
        cluster.psql(db, "SELECT pg_get_serial_sequence('entity', 'seq')").unwrap().trim(),
        format!("public.{}", super::SEQ_IDENTITY)
    );
}

// The crud contract test stays above: it also checks the dialect.
crate::contract::contract_tests! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] {
        let Some(url) = database() else { return };
        ((), open(&url))
    };
    a_failed_job_rolls_back_alone_while_batched_jobs_commit,
    export_lists_a_tenant_in_order_and_drop_tenant_removes_only_it,
    get_chain_reads_levels_until_the_first_missing,
    a_failed_job_alone_leaves_nothing,
    remembered_parents_never_outlive_their_rows,
    a_read_chain_sees_every_change_to_its_levels,
}
