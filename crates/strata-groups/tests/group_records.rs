//! `__consumer_offsets` holds Kafka's records only: offset commits, a
//! group record when a generation's assignment is out and when the group
//! empties, and tombstones when a group goes; generations continue from
//! the record after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_groups::group::{JoinRequest, Outcome};
use strata_groups::{CommittedOffset, CoordinatorOptions, GroupCoordinator, OFFSETS_TOPIC};
use strata_log::{LogStore, StoreOptions};
use strata_protocol::coordinator_records::group::{
    GroupMetadataValue, GroupRecordKey, OffsetCommitValue,
};

/// Every record of the offsets topic, decoded with Kafka's layouts:
/// `(key, Some(group value))` for group records, `(key, None)` for
/// tombstones and commits.
fn records(store: &LogStore) -> Vec<(GroupRecordKey, Option<GroupMetadataValue>, bool)> {
    let partition = store.topic(OFFSETS_TOPIC).unwrap().partition(0).unwrap();
    let mut out = Vec::new();
    partition
        .replay_records(|r| {
            let key = GroupRecordKey::decode(r.key.unwrap()).expect("Kafka's key layout");
            let tombstone = r.value.is_none();
            let group = match (&key, r.value) {
                (GroupRecordKey::GroupMetadata { .. }, Some(v)) => {
                    Some(GroupMetadataValue::decode(v).expect("Kafka's group value layout"))
                }
                (GroupRecordKey::OffsetCommit { .. }, Some(v)) => {
                    OffsetCommitValue::decode(v).expect("Kafka's offset value layout");
                    None
                }
                _ => None,
            };
            out.push((key, group, tombstone));
        })
        .unwrap();
    out
}

/// The group's records in order: `Some(generation, members)`, or `None`
/// for a tombstone.
fn group_records(store: &LogStore, group: &str) -> Vec<Option<(i32, usize)>> {
    records(store)
        .into_iter()
        .filter(|(key, _, _)| {
            *key == GroupRecordKey::GroupMetadata {
                group: group.into(),
            }
        })
        .map(|(_, value, _)| value.map(|v| (v.generation, v.members.len())))
        .collect()
}

fn join_request() -> JoinRequest {
    JoinRequest {
        member_id: String::new(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"subscription"))],
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(10),
        requires_known_member_id: false,
    }
}

/// One member joins and syncs: the group is Stable. Returns the member id
/// and the generation.
async fn form(groups: &GroupCoordinator, group: &str) -> (String, i32) {
    let joined = match groups.join(group, join_request()) {
        Outcome::Later(rx) => rx.await.unwrap(),
        Outcome::Now(answer) => answer,
    };
    assert_eq!(joined.error, 0);
    let assignment = vec![(joined.member_id.clone(), Bytes::from_static(b"assigned"))];
    match groups.sync(
        group,
        &joined.member_id,
        None,
        joined.generation,
        assignment,
    ) {
        Outcome::Later(rx) => assert_eq!(rx.await.unwrap().error, 0),
        Outcome::Now(answer) => assert_eq!(answer.error, 0),
    }
    (joined.member_id, joined.generation)
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 5 s: {what}");
}

/// Groups form at once; `cleanup`: the retention check runs every tick.
fn options(cleanup: bool) -> CoordinatorOptions {
    let defaults = CoordinatorOptions::default();
    CoordinatorOptions {
        initial_rebalance_delay: Duration::ZERO,
        retention_check_interval: if cleanup {
            Duration::ZERO
        } else {
            defaults.retention_check_interval
        },
        ..defaults
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_records_follow_the_group_and_generations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store_options = StoreOptions::new(dir.path().to_path_buf());
    {
        let (store, _) = LogStore::open(&store_options).unwrap();
        let groups = GroupCoordinator::open(Arc::clone(&store), options(false)).unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let clock = tokio::spawn(Arc::clone(&groups).run_clock(stopped));
        let (member, generation) = form(&groups, "g").await;
        assert_eq!(generation, 1);
        eventually("a Stable record", || {
            group_records(&store, "g") == [Some((1, 1))]
        })
        .await;
        let record = records(&store).pop().unwrap().1.unwrap();
        assert_eq!(record.protocol_type, "consumer");
        assert_eq!(record.leader.as_deref(), Some(member.as_str()));
        assert_eq!(record.members[0].subscription, b"subscription");
        assert_eq!(record.members[0].assignment, b"assigned");
        assert_eq!(groups.leave("g", &member, None), 0);
        eventually("an Empty record", || {
            group_records(&store, "g") == [Some((1, 1)), Some((2, 0))]
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(group_records(&store, "g").len(), 2, "no record twice");
        let _ = stop.send(true);
        clock.await.unwrap();
        store.shutdown();
    }
    let (store, _) = LogStore::open(&store_options).unwrap();
    let groups = GroupCoordinator::open(Arc::clone(&store), options(true)).unwrap();
    // Known by its record alone, with the record's protocol type.
    assert!(groups
        .list()
        .iter()
        .any(|(g, t, _)| g == "g" && t == "consumer"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let clock = tokio::spawn(Arc::clone(&groups).run_clock(stopped));
    let (member, generation) = form(&groups, "g").await;
    assert_eq!(generation, 3, "the generation continues from the record");
    eventually("the Stable record of generation 3", || {
        group_records(&store, "g").last() == Some(&Some((3, 1)))
    })
    .await;
    assert_eq!(groups.leave("g", &member, None), 0);
    // The Empty record of generation 4, then Kafka's cleanup: a group with
    // neither members nor offsets loses its record (a tombstone).
    eventually("the unused group's tombstone", || {
        group_records(&store, "g").last() == Some(&None)
    })
    .await;
    // (Key compaction may have removed the superseded records by now.)
    assert!(group_records(&store, "g").ends_with(&[Some((3, 1)), Some((4, 0)), None]));
    assert!(groups.list().is_empty());
    let _ = stop.send(true);
    clock.await.unwrap();
    store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_group_writes_a_tombstone_per_offset_then_the_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(&StoreOptions::new(dir.path().to_path_buf())).unwrap();
    let groups = GroupCoordinator::open(Arc::clone(&store), CoordinatorOptions::default()).unwrap();
    let offset = CommittedOffset {
        offset: 5,
        leader_epoch: -1,
        metadata: None,
        commit_ms: 1_000,
    };
    let commits = (0..2)
        .map(|p| ("t".to_string(), p, offset.clone()))
        .collect();
    groups.commit("g", commits).await.unwrap();
    assert_eq!(groups.delete_group("g").await, 0);
    let tail: Vec<(GroupRecordKey, bool)> = records(&store)
        .into_iter()
        .skip(2)
        .map(|(key, _, tombstone)| (key, tombstone))
        .collect();
    let commit_key = |partition| GroupRecordKey::OffsetCommit {
        group: "g".into(),
        topic: "t".into(),
        partition,
    };
    assert_eq!(
        tail,
        vec![
            (commit_key(0), true),
            (commit_key(1), true),
            (GroupRecordKey::GroupMetadata { group: "g".into() }, true),
        ]
    );
    assert!(groups.committed("g", "t", 0).is_none());
    store.shutdown();
}
