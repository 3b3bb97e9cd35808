//! `__consumer_offsets` is an ordinary compacted topic: key compaction keeps
//! the newest commit of each group and partition, so the topic stays as
//! small as the live offsets, and the offsets are right after a restart.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strata_groups::{CommittedOffset, GroupCoordinator};
use strata_log::wal_compaction::CompactionPolicy;
use strata_log::{LogStore, StoreOptions};

fn commit(topic: &str, partition: i32, offset: i64) -> Vec<(String, i32, CommittedOffset)> {
    vec![(
        topic.to_string(),
        partition,
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: Some(format!("m{offset}")),
            commit_ms: 1_000 + offset,
        },
    )]
}

fn compact_now(store: &LogStore) {
    let totals = store
        .compact_wal(CompactionPolicy {
            live_ratio: 0.5,
            dead_bytes: 0,
            max_age_ms: 0,
            max_output_bytes: 64 * 1024,
        })
        .unwrap();
    assert_eq!(totals.failed_runs, 0);
    assert!(totals.key_passes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_commits_leave_a_small_offsets_topic_and_the_right_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().to_path_buf());
    options.wal_segment_bytes = 64 * 1024;
    options.wal_direct_io = false;
    {
        let (store, _) = LogStore::open(&options).unwrap();
        let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
        for i in 0..2_000 {
            groups
                .commit("g", commit("data", (i % 10) as i32, i))
                .await
                .unwrap();
        }
        groups.commit("gone", commit("data", 0, 7)).await.unwrap();
        assert_eq!(groups.delete_group("gone").await, 0);
        let offsets = store
            .topic("__consumer_offsets")
            .unwrap()
            .partition(0)
            .unwrap();
        let before = offsets.size_bytes();
        compact_now(&store);
        let after = offsets.size_bytes();
        // Ten live offsets, plus what the segment being written still holds.
        assert!(after * 5 < before, "{before} bytes -> {after}");
        store.shutdown();
    }
    let (store, _) = LogStore::open(&options).unwrap();
    let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
    for partition in 0..10 {
        let got = groups.committed("g", "data", partition).unwrap();
        let newest = 1_990 + i64::from(partition);
        assert_eq!(
            (got.offset, got.metadata.as_deref()),
            (newest, Some(format!("m{newest}").as_str()))
        );
    }
    assert!(
        groups.committed("gone", "data", 0).is_none(),
        "a deleted group stays deleted"
    );
    store.shutdown();
}
