//! A data dir whose `__consumer_offsets` and `__transaction_state` were
//! written in Strata's first record layout opens with every offset and
//! transaction state, is rewritten in Kafka's layout before serving, and
//! after deletions, key compaction and a restart nothing deleted comes back.
//!
//! `fixtures/internal-topics-v1` was written through the coordinators by
//! the build before Kafka's layout (commit 93c9e62): topic `orders`
//! (2 partitions); group `billing` (orders-0 committed at 10 then at 15
//! with leader epoch 3 and metadata "second ✓", orders-1 at 20 with null
//! metadata), `audit` (orders-0 committed, then the group deleted),
//! `reports` (orders-0 at 7, orders-1 at 8 then deleted); transactional
//! ids `tx-idle` (producer 0, Empty), `tx-done` (producer 1, committed with
//! offset 30 of `txn-group` orders-0, leader epoch 2, metadata "in txn"),
//! `tx-open` (producer 2, Ongoing on orders-1 with a pending offset 99 for
//! `pending-group`, timeout 900 s).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strata_groups::{CommittedOffset, GroupCoordinator, OFFSETS_TOPIC};
use strata_log::wal_compaction::{CompactionOptions, CompactionPolicy};
use strata_log::{LogStore, StoreOptions};
use strata_protocol::coordinator_records::group::{
    GroupMetadataValue, GroupRecordKey, OffsetCommitValue,
};
use strata_protocol::coordinator_records::txn::{decode_key, TransactionLogValue};
use strata_txn::state::{PendingOffset, Status};
use strata_txn::{TransactionCoordinator, STATE_TOPIC};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A copy of the fixture, with small segments and compaction on demand.
fn fixture_copy() -> (tempfile::TempDir, StoreOptions) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/internal-topics-v1");
    copy_tree(&fixture, dir.path());
    let mut options = StoreOptions::new(dir.path().to_path_buf());
    options.wal_segment_bytes = 4096;
    options.wal_direct_io = false;
    options.wal_compaction = CompactionOptions {
        policy: CompactionPolicy {
            live_ratio: 0.0,
            dead_bytes: u64::MAX,
            max_age_ms: u64::MAX,
            max_output_bytes: 4096,
        },
        bytes_per_sec: 0,
        check_interval: Duration::from_secs(3600),
    };
    (dir, options)
}

struct Opened {
    store: Arc<LogStore>,
    groups: Arc<GroupCoordinator>,
    txns: Arc<TransactionCoordinator>,
}

fn open(options: &StoreOptions) -> Opened {
    let (store, report) = LogStore::open(options).unwrap();
    assert!(report.damaged.is_empty());
    let groups = GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
    let txns = TransactionCoordinator::open(Arc::clone(&store), Arc::clone(&groups)).unwrap();
    Opened {
        store,
        groups,
        txns,
    }
}

/// Every record of an internal topic from its log start, each checked to
/// be in Kafka's layout: `(key, tombstone)`.
fn kafka_records(store: &LogStore, topic: &str) -> Vec<(Vec<u8>, bool)> {
    let partition = store.topic(topic).unwrap().partition(0).unwrap();
    let mut out = Vec::new();
    partition
        .replay_records(|r| {
            let key = r.key.unwrap();
            if topic == OFFSETS_TOPIC {
                match (GroupRecordKey::decode(key), r.value) {
                    (Some(GroupRecordKey::OffsetCommit { .. }), Some(v)) => {
                        assert!(OffsetCommitValue::decode(v).is_some());
                    }
                    (Some(GroupRecordKey::GroupMetadata { .. }), Some(v)) => {
                        assert!(GroupMetadataValue::decode(v).is_some());
                    }
                    (Some(_), None) => {}
                    (None, _) => panic!("a key not in Kafka's layout: {key:?}"),
                }
            } else {
                assert!(decode_key(key).is_some(), "a key not in Kafka's layout");
                if let Some(v) = r.value {
                    assert!(TransactionLogValue::decode(v).is_some());
                }
            }
            out.push((key.to_vec(), r.value.is_none()));
        })
        .unwrap();
    out
}

fn offset(groups: &GroupCoordinator, group: &str, partition: i32) -> Option<CommittedOffset> {
    groups.committed(group, "orders", partition)
}

fn meta(offset: i64, leader_epoch: i32, metadata: &str, commit_ms: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch,
        metadata: Some(metadata.to_string()),
        commit_ms,
    }
}

/// Everything the fixture holds that `changed` does not name.
async fn assert_fixture_state(opened: &Opened, billing_deleted: bool) {
    let groups = &opened.groups;
    if billing_deleted {
        assert_eq!(groups.committed_all("billing"), vec![]);
    } else {
        assert_eq!(
            offset(groups, "billing", 0),
            Some(meta(15, 3, "second ✓", 1_700_000_000_015))
        );
        assert_eq!(
            offset(groups, "billing", 1),
            Some(meta(20, -1, "", 1_700_000_000_020))
        );
    }
    assert_eq!(groups.committed_all("audit"), vec![]);
    assert_eq!(
        offset(groups, "reports", 0),
        Some(meta(7, -1, "", 1_700_000_000_007))
    );
    assert_eq!(offset(groups, "reports", 1), None);
    let txn_offset = offset(groups, "txn-group", 0).unwrap();
    assert_eq!((txn_offset.offset, txn_offset.leader_epoch), (30, 2));
    assert_eq!(txn_offset.metadata.as_deref(), Some("in txn"));
    let states: BTreeMap<String, _> = opened.txns.states().await.into_iter().collect();
    assert_eq!(states.len(), 3);
    let idle = &states["tx-idle"];
    assert_eq!(
        (idle.producer_id, idle.epoch, idle.status),
        (0, 0, Status::Empty)
    );
    let done = &states["tx-done"];
    assert_eq!((done.producer_id, done.status), (1, Status::CompleteCommit));
    assert!(done.partitions.is_empty() && done.pending_offsets.is_empty());
    let open = &states["tx-open"];
    assert_eq!(
        (open.producer_id, open.status, open.timeout_ms),
        (2, Status::Ongoing, 900_000)
    );
    assert_eq!(
        open.partitions.iter().collect::<Vec<_>>(),
        [&("orders".to_string(), 1)]
    );
    assert_eq!(open.groups.iter().collect::<Vec<_>>(), ["pending-group"]);
    assert_eq!(
        open.pending_offsets,
        vec![PendingOffset {
            group: "pending-group".into(),
            topic: "orders".into(),
            partition: 1,
            offset: 99,
            leader_epoch: -1,
            metadata: None,
        }]
    );
    assert!(open.started_ms > 0 && open.updated_ms >= open.started_ms);
}

/// Tombstones go at once, and every sealed segment is cleaned now.
async fn compact_internal_topics(opened: &Opened) {
    for topic in [OFFSETS_TOPIC, STATE_TOPIC] {
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("min.cleanable.dirty.ratio".to_string(), "0.01".to_string()),
            ("delete.retention.ms".to_string(), "0".to_string()),
        ]);
        opened
            .store
            .set_topic_config(topic, configs, false)
            .unwrap();
    }
    // Filler commits, so the records above sit in sealed segments.
    for i in 0..200 {
        let filler = vec![("orders".to_string(), 0, meta(i, -1, "filler", 0))];
        opened.groups.commit("filler", filler).await.unwrap();
    }
    let totals = opened
        .store
        .compact_wal(CompactionPolicy {
            live_ratio: 0.9,
            dead_bytes: 0,
            max_age_ms: 0,
            max_output_bytes: 4096,
        })
        .unwrap();
    assert_eq!(totals.failed_runs, 0);
    assert!(totals.key_passes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_data_dir_is_rewritten_and_nothing_deleted_comes_back() {
    let (_dir, options) = fixture_copy();
    let opened = open(&options);
    assert_fixture_state(&opened, false).await;
    assert!(opened.groups.upgrade_records().await.unwrap() > 0);
    assert_eq!(opened.txns.upgrade_records().await.unwrap(), 3);
    for topic in [OFFSETS_TOPIC, STATE_TOPIC] {
        let partition = opened.store.topic(topic).unwrap().partition(0).unwrap();
        assert!(
            partition.bounds().0 > 0,
            "{topic}: the old records are below the log start"
        );
        kafka_records(&opened.store, topic);
    }
    assert_fixture_state(&opened, false).await;
    assert_eq!(opened.groups.upgrade_records().await.unwrap(), 0, "once");
    // Deleting a group, then compaction that drops every tombstone: in a
    // topic where the old layout's records lived on, billing's old commits
    // would be the newest of their keys now.
    assert_eq!(opened.groups.delete_group("billing").await, 0);
    compact_internal_topics(&opened).await;
    opened.store.shutdown();
    drop(opened);

    let opened = open(&options);
    assert_eq!(opened.groups.upgrade_records().await.unwrap(), 0);
    assert_eq!(opened.txns.upgrade_records().await.unwrap(), 0);
    assert_fixture_state(&opened, true).await;
    let billing = |key: &Vec<u8>| match GroupRecordKey::decode(key) {
        Some(GroupRecordKey::OffsetCommit { group, .. })
        | Some(GroupRecordKey::GroupMetadata { group }) => group == "billing",
        None => false,
    };
    let offsets = kafka_records(&opened.store, OFFSETS_TOPIC);
    assert!(
        !offsets.iter().any(|(key, _)| billing(key)),
        "billing's records are gone"
    );
    assert!(
        !offsets.iter().any(|(_, tombstone)| *tombstone),
        "tombstones are gone"
    );
    kafka_records(&opened.store, STATE_TOPIC);
    assert!(!opened.groups.list().iter().any(|(g, _, _)| g == "billing"));
    opened.store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_new_records_together_read_right_and_are_rewritten_again() {
    // What a crash leaves between the rewrite's appends and its move of
    // the log start: old records, then new ones for the same keys.
    let (_dir, options) = fixture_copy();
    let opened = open(&options);
    let newer = vec![("orders".to_string(), 1, meta(21, -1, "newer", 5))];
    opened.groups.commit("billing", newer).await.unwrap();
    let (producer_id, epoch) = opened
        .txns
        .init_producer_id("tx-idle", 60_000, -1, -1)
        .await
        .unwrap();
    assert_eq!((producer_id, epoch), (0, 1));
    opened.store.shutdown();
    drop(opened);

    for _ in 0..2 {
        let opened = open(&options);
        assert_eq!(
            offset(&opened.groups, "billing", 1),
            Some(meta(21, -1, "newer", 5))
        );
        assert_eq!(
            offset(&opened.groups, "billing", 0).map(|o| o.offset),
            Some(15)
        );
        let states: BTreeMap<String, _> = opened.txns.states().await.into_iter().collect();
        assert_eq!(states["tx-idle"].epoch, 1);
        assert_eq!(states["tx-open"].pending_offsets.len(), 1);
        opened.groups.upgrade_records().await.unwrap();
        opened.txns.upgrade_records().await.unwrap();
        kafka_records(&opened.store, OFFSETS_TOPIC);
        kafka_records(&opened.store, STATE_TOPIC);
        opened.store.shutdown();
    }
}
