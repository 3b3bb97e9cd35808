//! `__transaction_state` is an ordinary compacted topic: key compaction
//! keeps each transactional id's latest state, which survives a restart.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strata_groups::GroupCoordinator;
use strata_log::wal_compaction::CompactionPolicy;
use strata_log::{LogStore, StoreOptions};
use strata_txn::TransactionCoordinator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_states_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().to_path_buf());
    options.wal_segment_bytes = 16 * 1024;
    options.wal_direct_io = false;
    let last;
    {
        let (store, _) = LogStore::open(&options).unwrap();
        let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
        let txns = TransactionCoordinator::open(Arc::clone(&store), groups).unwrap();
        let mut got = (0, 0);
        for _ in 0..300 {
            got = txns.init_producer_id("a", 60_000, -1, -1).await.unwrap();
        }
        txns.init_producer_id("b", 60_000, -1, -1).await.unwrap();
        last = got;
        let state = store
            .topic("__transaction_state")
            .unwrap()
            .partition(0)
            .unwrap();
        let before = state.size_bytes();
        let totals = store
            .compact_wal(CompactionPolicy {
                live_ratio: 0.5,
                dead_bytes: 0,
                max_age_ms: 0,
                max_output_bytes: 16 * 1024,
            })
            .unwrap();
        assert!(totals.key_passes > 0);
        assert!(
            state.size_bytes() * 3 < before,
            "{before} -> {}",
            state.size_bytes()
        );
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
