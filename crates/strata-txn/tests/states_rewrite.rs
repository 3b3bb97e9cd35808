//! Rewriting the transaction states forward keeps every transactional id's
//! latest state across a restart.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strata_groups::GroupCoordinator;
use strata_log::{LogStore, StoreOptions};
use strata_txn::TransactionCoordinator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_states_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path().to_path_buf());
    let last;
    {
        let (store, _) = LogStore::open(&options).unwrap();
        let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
        let txns = TransactionCoordinator::open(Arc::clone(&store), groups).unwrap();
        let mut got = (0, 0);
        for _ in 0..20 {
            got = txns.init_producer_id("a", 60_000, -1, -1).await.unwrap();
        }
        txns.init_producer_id("b", 60_000, -1, -1).await.unwrap();
        last = got;
        let state = store
            .topic("__transaction_state")
            .unwrap()
            .partition(0)
            .unwrap();
        let (start, end) = state.bounds();
        assert!(end - start > 2);
        assert!(txns.rewrite_states().await.unwrap());
        assert_eq!(state.bounds(), (end, end + 2), "two live states rewritten");
        assert!(!txns.rewrite_states().await.unwrap(), "nothing superseded");
        store.shutdown();
    }
    let (store, _) = LogStore::open(&options).unwrap();
    let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
    let txns = TransactionCoordinator::open(Arc::clone(&store), groups).unwrap();
    let (producer_id, epoch) = txns.init_producer_id("a", 60_000, -1, -1).await.unwrap();
    assert_eq!(
        (producer_id, epoch),
        (last.0, last.1 + 1),
        "the epoch continues"
    );
    store.shutdown();
}
