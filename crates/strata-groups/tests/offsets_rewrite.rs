//! Rewriting the committed offsets forward: the live offsets survive a
//! restart, and the WAL segments that only superseded commits held are
//! freed once the records beside them are gone.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use strata_groups::{CommittedOffset, GroupCoordinator};
use strata_log::{LogStore, PendingBatch, StoreOptions};
use strata_protocol::builder::{build_batch, RecordSpec};

fn wal_files(dir: &std::path::Path) -> usize {
    strata_wal::list_segments(&dir.join("wal")).unwrap().len()
}

fn commit(offset: i64) -> Vec<(String, i32, CommittedOffset)> {
    vec![(
        "data".to_string(),
        0,
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: Some(format!("m{offset}")),
            commit_ms: 1_000 + offset,
        },
    )]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_offsets_survive_restart_and_free_the_segments_old_commits_held() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().to_path_buf());
    options.wal_segment_bytes = 4096;
    {
        let (store, _) = LogStore::open(&options).unwrap();
        let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
        let data = store
            .create_topic("data", 1, BTreeMap::new(), false)
            .unwrap()
            .partition(0)
            .unwrap();
        let value = vec![b'x'; 1500];
        for i in 0..40 {
            let batch = build_batch(&[RecordSpec {
                key: None,
                value: Some(&value),
                timestamp: i,
            }]);
            let pending = PendingBatch {
                partition: Arc::clone(&data),
                batch: Bytes::from(batch),
                log_append_time: false,
            };
            store.append(vec![pending]).await[0].as_ref().unwrap();
            groups.commit("g", commit(i)).await.unwrap();
            groups.commit("other", commit(100 + i)).await.unwrap();
        }
        store.delete_topic("data").unwrap();
        // Every segment still holds a commit: nothing can be freed yet.
        let offsets = store
            .topic("__consumer_offsets")
            .unwrap()
            .partition(0)
            .unwrap();
        assert_eq!(offsets.bounds(), (0, 80));
        assert!(groups.rewrite_offsets().await.unwrap());
        assert_eq!(offsets.bounds(), (80, 82), "two live offsets rewritten");
        assert!(
            !groups.rewrite_offsets().await.unwrap(),
            "nothing superseded"
        );
        assert_eq!(groups.committed("g", "data", 0).unwrap().offset, 39);
        store.shutdown();
    }
    // The sealed segments held only the deleted topic and superseded
    // commits: removed. Left: the segment the rewrite went to, the one
    // written while shutting down, and their neighbour at most.
    assert!(
        wal_files(dir.path()) <= 3,
        "{} WAL segments left",
        wal_files(dir.path())
    );

    let (store, _) = LogStore::open(&options).unwrap();
    let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
    let g = groups.committed("g", "data", 0).unwrap();
    assert_eq!(
        (g.offset, g.metadata.as_deref(), g.commit_ms),
        (39, Some("m39"), 1_039)
    );
    assert_eq!(groups.committed("other", "data", 0).unwrap().offset, 139);
    store.shutdown();
}
