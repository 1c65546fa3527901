//! What every `Store` must do, written once and run against each backend (the SQLite and
//! PostgreSQL test modules call these with their own store).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use crate::{Dialect, ListSpec, ROOT, SqlFragment, SqlParam, Store, StoreError, StoreExt};

/// Registers contract tests in a backend's test module, one `async fn` each under the
/// test attribute given: `$store` makes a fresh `(guard, Arc<dyn Store>)` for each (it may
/// `return` to skip the test where the backend is absent).
macro_rules! contract_tests {
    (#[$attr:meta] $store:expr; $($name:ident),+ $(,)?) => {
        $(
            #[$attr]
            async fn $name() {
                let (_guard, store) = $store;
                crate::contract::$name(store).await;
            }
        )+
    };
}
pub(crate) use contract_tests;

/// `n >= $first` in the backend's SQL (what the OData translation would push down).
fn n_at_least_param(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "json_extract(body, '$.n') >= ?10",
        Dialect::Postgres => "((body #>> '{n}')::numeric) >= $10::bigint",
    }
}

/// `ORDER BY n DESC` in the backend's SQL.
fn n_descending(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "json_extract(body, '$.n') DESC",
        Dialect::Postgres => "((body #>> '{n}')::numeric) DESC",
    }
}

pub async fn crud_cascade_and_tenant_scoping(store: Arc<dyn Store>) {
    let parent = store
        .write::<_, StoreError, _>("t1", |tx| tx.insert(ROOT, "configs", "c1", "T", &json!({"id": "c1"}).to_string()))
        .await
        .unwrap();
    for i in 0..3 {
        store
            .write::<_, StoreError, _>("t1", move |tx| {
                tx.insert(parent, "assignments", &format!("a{i}"), "A", &json!({"n": i}).to_string())
            })
            .await
            .unwrap();
    }
    let dup = store.write::<_, StoreError, _>("t1", |tx| tx.insert(ROOT, "configs", "C1", "T", "{}")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "ids match case-insensitively: {dup:?}");
    let found = store.read::<_, StoreError, _>("t1", |tx| tx.get(ROOT, "configs", "C1")).unwrap().unwrap();
    assert_eq!((found.seq, found.id.as_str(), found.raw.as_str()), (parent, "c1", r#"{"id":"c1"}"#));
    let head = store.read::<_, StoreError, _>("t1", |tx| tx.get_head(ROOT, "configs", "c1")).unwrap().unwrap();
    assert_eq!((head.seq, head.raw.as_str()), (parent, ""));
    // another tenant sees nothing of t1
    let other = store.read::<_, StoreError, _>("t2", |tx| tx.get(ROOT, "configs", "c1")).unwrap();
    assert!(other.is_none());
    assert!(store.read::<_, StoreError, _>("t2", |tx| tx.get_seq(parent)).unwrap().is_none());
    let page = store
        .read::<_, StoreError, _>("t1", |tx| {
            tx.list(parent, "assignments", &ListSpec { limit: Some(2), ..ListSpec::default() })
        })
        .unwrap();
    assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a0", "a1"]);
    let rest = store
        .read::<_, StoreError, _>("t1", |tx| {
            tx.list(parent, "assignments", &ListSpec { after: Some(page[1].seq), ..ListSpec::default() })
        })
        .unwrap();
    assert_eq!(rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a2"]);
    let filtered = ListSpec {
        filter: Some(SqlFragment { text: n_at_least_param(store.dialect()).into(), params: vec![SqlParam::Int(1)] }),
        ..ListSpec::default()
    };
    assert_eq!(store.read::<_, StoreError, _>("t1", |tx| tx.count(parent, "assignments", &filtered)).unwrap(), 2);
    let ordered = ListSpec {
        order: Some(SqlFragment { text: n_descending(store.dialect()).into(), params: vec![] }),
        offset: Some(1),
        types: Some(vec!["A".into()]),
        ..ListSpec::default()
    };
    let rows = store.read::<_, StoreError, _>("t1", |tx| tx.list(parent, "assignments", &ordered)).unwrap();
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a1", "a0"]);
    let other_type = ListSpec { types: Some(vec!["B".into()]), ..ListSpec::default() };
    assert_eq!(store.read::<_, StoreError, _>("t1", |tx| tx.count(parent, "assignments", &other_type)).unwrap(), 0);
    store.write::<_, StoreError, _>("t1", move |tx| tx.delete(parent)).await.unwrap();
    assert_eq!(
        store.read::<_, StoreError, _>("t1", |tx| tx.count(parent, "assignments", &ListSpec::default())).unwrap(),
        0
    );
    assert!(store.read::<_, StoreError, _>("t1", |tx| tx.get(ROOT, "configs", "c1")).unwrap().is_none());
}

pub async fn a_failed_job_rolls_back_alone_while_batched_jobs_commit(store: Arc<dyn Store>) {
    let mut handles = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            store
                .write::<_, StoreError, _>("t", move |tx| {
                    tx.insert(ROOT, "c", &format!("x{i}"), "T", "{}")?;
                    if i % 5 == 0 { Err(StoreError::Conflict("boom".into())) } else { Ok(()) }
                })
                .await
        }));
    }
    let mut failed = 0;
    for h in handles {
        if h.await.unwrap().is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 10);
    assert_eq!(store.read::<_, StoreError, _>("t", |tx| tx.count(ROOT, "c", &ListSpec::default())).unwrap(), 40);
}

pub async fn export_lists_a_tenant_in_order_and_drop_tenant_removes_only_it(store: Arc<dyn Store>) {
    for t in ["t1", "t2"] {
        store
            .write::<_, StoreError, _>(t, |tx| {
                tx.create_tenant()?;
                tx.create_tenant()?; // twice: idempotent
                let p = tx.insert(ROOT, "configs", "c1", "T", r#"{"id":"c1"}"#)?;
                let a = tx.insert(p, "assignments", "a1", "A", r#"{"id":"a1"}"#)?;
                tx.set_link(a, "profile", Some(p))?;
                assert_eq!(tx.link(a, "profile")?, Some(p));
                assert_eq!(tx.linked_from(p, "profile")?, vec![a]);
                Ok(())
            })
            .await
            .unwrap();
    }
    let (rows, links) = store.read::<_, StoreError, _>("t1", |tx| tx.export()).unwrap();
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["c1", "a1"]);
    assert_eq!(rows[1].parent, rows[0].seq);
    assert_eq!(rows[1].raw, r#"{"id":"a1"}"#);
    assert_eq!(links, vec![(rows[1].seq, "profile".to_owned(), rows[0].seq)]);
    store.write::<_, StoreError, _>("t1", |tx| tx.drop_tenant()).await.unwrap();
    let (rows, links) = store.read::<_, StoreError, _>("t1", |tx| tx.export()).unwrap();
    assert!(rows.is_empty() && links.is_empty());
    assert!(!store.read::<_, StoreError, _>("t1", |tx| tx.tenant_exists()).unwrap());
    assert_eq!(store.tenants().unwrap(), ["t2"]);
    let (rows, links) = store.read::<_, StoreError, _>("t2", |tx| tx.export()).unwrap();
    assert_eq!((rows.len(), links.len()), (2, 1));
}

pub async fn get_chain_reads_levels_until_the_first_missing(store: Arc<dyn Store>) {
    let (config, assignment) = store
        .write::<_, StoreError, _>("t1", |tx| {
            let c = tx.insert(ROOT, "configs", "Cfg", "T", r#"{"id":"Cfg"}"#)?;
            let a = tx.insert(c, "assignments", "A1", "A", r#"{"id":"A1","n":1}"#)?;
            tx.insert(a, "notes", "N1", "N", r#"{"id":"N1"}"#)?;
            Ok((c, a))
        })
        .await
        .unwrap();
    let chain = |tenant: &str, steps: &[(&str, &str)]| {
        store.read::<_, StoreError, _>(tenant, |tx| tx.get_chain(ROOT, steps, true)).unwrap()
    };
    // Found whole: heads above, the last with its body; ids match case-insensitively.
    let rows = chain("t1", &[("configs", "cfg"), ("assignments", "a1")]);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].seq, rows[0].id.as_str(), rows[0].type_name.as_str(), rows[0].raw.as_str()),
        (config, "Cfg", "T", "")
    );
    assert_eq!((rows[1].seq, rows[1].parent, rows[1].nav.as_str()), (assignment, config, "assignments"));
    assert_eq!((rows[1].id.as_str(), rows[1].raw.as_str()), ("A1", r#"{"id":"A1","n":1}"#));
    let three = chain("t1", &[("configs", "Cfg"), ("assignments", "A1"), ("notes", "n1")]);
    assert_eq!(three.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>(), ["", "", r#"{"id":"N1"}"#]);
    // One level and the default agree.
    let one = chain("t1", &[("configs", "Cfg")]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].raw, r#"{"id":"Cfg"}"#);
    // Stops before the first level that does not exist.
    assert_eq!(chain("t1", &[("configs", "Cfg"), ("assignments", "nope")]).len(), 1);
    assert_eq!(chain("t1", &[("configs", "Cfg"), ("other", "A1")]).len(), 1);
    assert!(chain("t1", &[("configs", "nope"), ("assignments", "A1")]).is_empty());
    // Heads only, when the last body is not wanted.
    let heads = store.read::<_, StoreError, _>("t1", |tx| tx.get_chain(ROOT, &[("configs", "cfg")], false)).unwrap();
    assert_eq!((heads[0].seq, heads[0].raw.as_str()), (config, ""));
    let heads = store
        .read::<_, StoreError, _>("t1", |tx| tx.get_chain(ROOT, &[("configs", "cfg"), ("assignments", "a1")], false))
        .unwrap();
    assert_eq!(heads.iter().map(|r| (r.seq, r.raw.as_str())).collect::<Vec<_>>(), [(config, ""), (assignment, "")]);
    // Another tenant sees nothing of t1's chain.
    assert!(chain("t2", &[("configs", "Cfg"), ("assignments", "A1")]).is_empty());
}

pub async fn a_failed_job_alone_leaves_nothing(store: Arc<dyn Store>) {
    let failed = store
        .write::<(), StoreError, _>("t1", |tx| {
            tx.insert(ROOT, "configs", "half", "T", "{}")?;
            Err(StoreError::Backend("the job gave up after its insert".into()))
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
    assert!(store.read::<_, StoreError, _>("t1", |tx| tx.get(ROOT, "configs", "half")).unwrap().is_none());
    // The writer goes on: the next job commits.
    store.write::<_, StoreError, _>("t1", |tx| tx.insert(ROOT, "configs", "whole", "T", "{}")).await.unwrap();
    assert!(store.read::<_, StoreError, _>("t1", |tx| tx.get(ROOT, "configs", "whole")).unwrap().is_some());
}

/// The writer may remember the parents it resolved (SQLite's `Chains`, PostgreSQL's row
/// cache): whatever it remembers must never outlive the rows, their type, or a rolled-back
/// job. Each resolution below runs on the writer, as a create's does.
/// The same for reads: each change the writer makes between two reads of one chain (a
/// parent and a child with its body, as a point read asks) is seen by the second. It
/// guards any memory a reader might keep of parents (one was measured and not kept:
/// docs/performance.md, ninth round).
pub async fn a_read_chain_sees_every_change_to_its_levels(store: Arc<dyn Store>) {
    // The configuration's head and its assignment `A` with its body, as a point read asks.
    let read = |store: &Arc<dyn Store>, id: &'static str| {
        store
            .read::<_, StoreError, _>("t1", move |tx| {
                tx.get_chain(ROOT, &[("configs", id), ("assignments", "A")], true)
            })
            .unwrap()
            .into_iter()
            .map(|r| (r.seq, r.type_name, r.raw))
            .collect::<Vec<_>>()
    };
    let (p, a) = store
        .write::<_, StoreError, _>("t1", |tx| {
            let p = tx.insert(ROOT, "configs", "P", "T", "{}")?;
            Ok((p, tx.insert(p, "assignments", "A", "X", r#"{"n":1}"#)?))
        })
        .await
        .unwrap();
    let first = [(p, "T".to_owned(), String::new()), (a, "X".to_owned(), r#"{"n":1}"#.to_owned())];
    assert_eq!(read(&store, "P"), first);
    assert_eq!(read(&store, "P"), first, "read again");
    assert_eq!(read(&store, "p"), first, "ids match case-insensitively");
    // Deleted, then made again under the same id with another assignment `A`.
    store.write::<_, StoreError, _>("t1", move |tx| tx.delete(p)).await.unwrap();
    assert!(read(&store, "P").is_empty(), "a deleted parent is not resolved");
    assert_eq!(read(&store, "P"), [], "read again");
    let (again, b) = store
        .write::<_, StoreError, _>("t1", |tx| {
            let p = tx.insert(ROOT, "configs", "P", "T2", "{}")?;
            Ok((p, tx.insert(p, "assignments", "A", "X", r#"{"n":2}"#)?))
        })
        .await
        .unwrap();
    let second = [(again, "T2".to_owned(), String::new()), (b, "X".to_owned(), r#"{"n":2}"#.to_owned())];
    assert_eq!(read(&store, "P"), second, "the new parent, not the remembered one");
    // The parent's type changed by an update.
    store.write::<_, StoreError, _>("t1", move |tx| tx.update(again, "T3", "{}")).await.unwrap();
    assert_eq!(read(&store, "P")[0].1, "T3");
    // The assignment deleted: the parent stays, the assignment is gone.
    store.write::<_, StoreError, _>("t1", move |tx| tx.delete(b)).await.unwrap();
    assert_eq!(read(&store, "P").len(), 1);
    // The tenant dropped and made again: nothing of it is resolved.
    store.write::<_, StoreError, _>("t1", |tx| tx.drop_tenant()).await.unwrap();
    store.write::<_, StoreError, _>("t1", |tx| tx.create_tenant()).await.unwrap();
    assert!(read(&store, "P").is_empty(), "a dropped tenant's parent is not resolved");
    // Another tenant's chain of the same ids is its own.
    store
        .write::<_, StoreError, _>("t2", |tx| {
            let p = tx.insert(ROOT, "configs", "P", "T", "{}")?;
            tx.insert(p, "assignments", "A", "X", "{}")
        })
        .await
        .unwrap();
    assert!(read(&store, "P").is_empty(), "t1 sees nothing of t2");
}

pub async fn remembered_parents_never_outlive_their_rows(store: Arc<dyn Store>) {
    async fn heads(store: &Arc<dyn Store>, id: &'static str) -> Vec<(i64, String)> {
        store
            .write::<_, StoreError, _>("t1", move |tx| tx.get_chain(ROOT, &[("configs", id)], false))
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.seq, r.type_name))
            .collect()
    }
    let p = store.write::<_, StoreError, _>("t1", |tx| tx.insert(ROOT, "configs", "P", "T", "{}")).await.unwrap();
    assert_eq!(heads(&store, "P").await, [(p, "T".to_owned())]);
    assert_eq!(heads(&store, "p").await, [(p, "T".to_owned())], "ids match case-insensitively");
    // Deleted: gone for the writer at once.
    store.write::<_, StoreError, _>("t1", move |tx| tx.delete(p)).await.unwrap();
    assert!(heads(&store, "P").await.is_empty(), "a deleted parent is not resolved");
    // Made again under the same id: its own row, not the remembered one.
    let again = store.write::<_, StoreError, _>("t1", |tx| tx.insert(ROOT, "configs", "P", "T2", "{}")).await.unwrap();
    assert_eq!(heads(&store, "P").await, [(again, "T2".to_owned())]);
    // Its type changed by an update.
    store.write::<_, StoreError, _>("t1", move |tx| tx.update(again, "T3", "{}")).await.unwrap();
    assert_eq!(heads(&store, "P").await, [(again, "T3".to_owned())]);
    // A job that made a parent, resolved it and failed: the parent never was.
    let failed = store
        .write::<(), StoreError, _>("t1", |tx| {
            tx.insert(ROOT, "configs", "Q", "T", "{}")?;
            assert_eq!(tx.get_chain(ROOT, &[("configs", "Q")], false)?.len(), 1);
            Err(StoreError::Backend("the job fails after resolving".into()))
        })
        .await;
    assert!(failed.is_err());
    assert!(heads(&store, "Q").await.is_empty(), "a rolled-back parent is not resolved");
    // The same, with other jobs committing in the same batch.
    let (failed, kept) = tokio::join!(
        store.write::<(), StoreError, _>("t1", |tx| {
            tx.insert(ROOT, "configs", "R", "T", "{}")?;
            assert_eq!(tx.get_chain(ROOT, &[("configs", "R")], false)?.len(), 1);
            Err(StoreError::Backend("the job fails after resolving".into()))
        }),
        store.write::<_, StoreError, _>("t1", |tx| tx.insert(ROOT, "configs", "S", "T", "{}")),
    );
    assert!(failed.is_err());
    let s = kept.unwrap();
    assert!(heads(&store, "R").await.is_empty(), "a parent rolled back in a batch is not resolved");
    assert_eq!(heads(&store, "S").await, [(s, "T".to_owned())]);
    // The tenant dropped and made again: nothing of it is resolved.
    store.write::<_, StoreError, _>("t1", |tx| tx.drop_tenant()).await.unwrap();
    store.write::<_, StoreError, _>("t1", |tx| tx.create_tenant()).await.unwrap();
    assert!(heads(&store, "S").await.is_empty(), "a dropped tenant's parent is not resolved");
}
