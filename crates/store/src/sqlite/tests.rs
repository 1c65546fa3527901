#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use crate::{ListSpec, ROOT, SqlFragment, SqlParam, SqliteStore, Store, StoreError, StoreExt};

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
async fn crud_cascade_and_tenant_scoping() {
    let (_d, store) = temp_store();
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
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "ids match case-insensitively");
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
    assert_eq!(rest.len(), 1);
    let filtered = ListSpec {
        filter: Some(SqlFragment { text: "json_extract(body, '$.n') >= ?10".into(), params: vec![SqlParam::Int(1)] }),
        ..ListSpec::default()
    };
    assert_eq!(store.read::<_, StoreError, _>("t1", |tx| tx.count(parent, "assignments", &filtered)).unwrap(), 2);
    store.write::<_, StoreError, _>("t1", move |tx| tx.delete(parent)).await.unwrap();
    assert_eq!(
        store.read::<_, StoreError, _>("t1", |tx| tx.count(parent, "assignments", &ListSpec::default())).unwrap(),
        0
    );
}

#[tokio::test]
async fn a_failed_job_rolls_back_alone_while_batched_jobs_commit() {
    let (_d, store) = temp_store();
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

#[tokio::test]
async fn export_lists_a_tenant_in_order_and_drop_tenant_removes_only_it() {
    let (_d, store) = temp_store();
    for t in ["t1", "t2"] {
        store
            .write::<_, StoreError, _>(t, |tx| {
                tx.create_tenant()?;
                let p = tx.insert(ROOT, "configs", "c1", "T", r#"{"id":"c1"}"#)?;
                let a = tx.insert(p, "assignments", "a1", "A", r#"{"id":"a1"}"#)?;
                tx.set_link(a, "profile", Some(p))
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
