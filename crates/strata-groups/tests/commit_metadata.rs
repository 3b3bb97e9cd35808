//! Commit metadata as Kafka keeps it: a null metadata is stored, and read
//! back (also after a restart), as the empty string.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strata_groups::{CommittedOffset, GroupCoordinator};
use strata_log::{LogStore, StoreOptions};

fn offset(metadata: Option<&str>) -> CommittedOffset {
    CommittedOffset {
        offset: 7,
        leader_epoch: -1,
        metadata: metadata.map(str::to_string),
        commit_ms: 1_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_metadata_is_stored_as_empty_string() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path().to_path_buf());
    let metadata = |groups: &GroupCoordinator, partition| {
        groups
            .committed("g", "t", partition)
            .map(|c| c.metadata)
            .unwrap()
    };
    {
        let (store, _) = LogStore::open(&options).unwrap();
        let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
        let commits = vec![
            ("t".to_string(), 0, offset(None)),
            ("t".to_string(), 1, offset(Some("kept"))),
        ];
        groups.commit("g", commits).await.unwrap();
        assert_eq!(metadata(&groups, 0).as_deref(), Some(""));
        assert_eq!(metadata(&groups, 1).as_deref(), Some("kept"));
    }
    let (store, _) = LogStore::open(&options).unwrap();
    let groups = GroupCoordinator::open(store, Default::default()).unwrap();
    assert_eq!(metadata(&groups, 0).as_deref(), Some(""));
    assert_eq!(metadata(&groups, 1).as_deref(), Some("kept"));
}
