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
}
