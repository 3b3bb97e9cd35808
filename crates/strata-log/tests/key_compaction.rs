//! Key compaction on a real directory: the newest record of each key
//! survives at its offset with its bytes, tombstones go after
//! `delete.retention.ms`, aborted transactions' records go, and a
//! read_committed reader sees exactly the committed records.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_log::partition::Isolation;
use strata_log::wal_compaction::{CompactionOptions, CompactionPolicy};
use strata_log::{LogStore, PendingBatch, StoreOptions};
use strata_protocol::batch::{split_batches, validate_crc};
use strata_protocol::builder::{build_batch_with, build_control_batch, BatchOptions, RecordSpec};

fn options(dir: &Path) -> StoreOptions {
    let mut options = StoreOptions::new(dir.to_path_buf());
    options.wal_segment_bytes = 4096;
    options.wal_direct_io = false;
    // Compaction only when the test asks (`compact_now`).
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
    options
}

fn compact_now(store: &LogStore) {
    let totals = store
        .compact_wal(CompactionPolicy {
            live_ratio: 0.9,
            dead_bytes: 0,
            max_age_ms: 0,
            max_output_bytes: 4096,
        })
        .unwrap();
    assert_eq!(totals.failed_runs, 0);
}

fn compacted_topic(store: &LogStore, name: &str, delete_retention_ms: &str) {
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("min.cleanable.dirty.ratio".to_string(), "0.01".to_string()),
        (
            "delete.retention.ms".to_string(),
            delete_retention_ms.to_string(),
        ),
    ]);
    store.create_topic(name, 1, configs, false).unwrap();
}

/// Appends one batch of `(key, value)` records; returns its base offset.
fn append(
    store: &LogStore,
    topic: &str,
    records: &[(&str, Option<String>)],
    options: BatchOptions,
) -> i64 {
    let specs: Vec<RecordSpec<'_>> = records
        .iter()
        .map(|(k, v)| RecordSpec {
            key: Some(k.as_bytes()),
            value: v.as_deref().map(str::as_bytes),
            timestamp: 1_000,
        })
        .collect();
    append_bytes(store, topic, build_batch_with(&specs, options))
}

fn append_bytes(store: &LogStore, topic: &str, batch: Vec<u8>) -> i64 {
    let partition = store.topic(topic).unwrap().partition(0).unwrap();
    let pending = PendingBatch {
        partition: Arc::clone(&partition),
        batch: Bytes::from(batch),
        log_append_time: false,
    };
    let result = common::runtime().block_on(store.append(vec![pending]));
    result.into_iter().next().unwrap().unwrap().base_offset
}

/// `(offset, key, value)` of every record, every batch checked.
fn read(store: &LogStore, topic: &str, isolation: Isolation) -> Vec<(i64, String, Option<String>)> {
    let log = store.topic(topic).unwrap().partition(0).unwrap();
    let mut out = Vec::new();
    let (mut offset, high_watermark) = log.bounds();
    while offset < high_watermark {
        let read = log.read_isolated(offset, 1 << 20, isolation).unwrap();
        if read.records.is_empty() {
            break;
        }
        for (header, range) in split_batches(&read.records).unwrap() {
            let bytes = &read.records[range];
            validate_crc(bytes, &header).unwrap();
            let aborted = read.aborted.iter().any(|a| {
                a.producer_id == header.producer_id
                    && header.is_transactional()
                    && header.base_offset >= a.first_offset
                    && header.base_offset < a.last_offset
            });
            let hidden = isolation == Isolation::ReadCommitted && aborted;
            if !(header.is_control() || hidden) {
                strata_protocol::records::for_each_record(bytes, &header, 1 << 20, |r| {
                    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                    out.push((r.offset, text(r.key.unwrap()), r.value.map(text)));
                })
                .unwrap();
            }
            offset = header.last_offset() + 1;
        }
    }
    out
}

#[test]
fn the_newest_value_of_each_key_survives_with_its_offset_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(&options(dir.path())).unwrap();
    compacted_topic(&store, "balances", "0");
    let mut newest: HashMap<String, (i64, Option<String>)> = HashMap::new();
    let mut offset = 0;
    for round in 0..30 {
        let records: Vec<(String, Option<String>)> = (0..8)
            .map(|i| {
                let key = format!("account-{}", (round * 3 + i) % 20);
                let value = (round % 7 != 6 || i != 0)
                    .then(|| format!("balance-{round}-{i}-{}", "x".repeat(40)));
                (key, value)
            })
            .collect();
        let refs: Vec<(&str, Option<String>)> = records
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let base = append(&store, "balances", &refs, BatchOptions::default());
        assert_eq!(base, offset);
        for (i, (k, v)) in records.into_iter().enumerate() {
            newest.insert(k, (offset + i as i64, v));
        }
        offset += 8;
    }
    // A few more batches so the last ones above sit in sealed segments.
    let before = read(&store, "balances", Isolation::ReadUncommitted);
    assert_eq!(before.len(), 240);
    compact_now(&store);
    let after = read(&store, "balances", Isolation::ReadUncommitted);
    // Everything that survived is the newest of its key, at its offset,
    // in order; every key's newest non-tombstone is there unless it sits
    // in the part still being written (which is never compacted).
    let offsets: Vec<i64> = after.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    assert!(
        after.len() < 120,
        "only {} of 240 records removed",
        240 - after.len()
    );
    let by_offset: HashMap<i64, &(i64, String, Option<String>)> =
        before.iter().map(|r| (r.0, r)).collect();
    for record in &after {
        assert_eq!(
            Some(&record),
            by_offset.get(&record.0),
            "bytes changed at {}",
            record.0
        );
    }
    let survivors: HashMap<&str, i64> = after.iter().map(|r| (r.1.as_str(), r.0)).collect();
    for (key, (offset, value)) in &newest {
        if value.is_some() {
            assert_eq!(survivors.get(key.as_str()), Some(offset), "newest of {key}");
        }
    }
    // delete.retention.ms = 0: tombstones reached by compaction go at once
    // (those in the unsealed tail stay until they are sealed).
    let tombstones = after.iter().filter(|r| r.2.is_none()).count();
    assert!(tombstones <= 2, "{tombstones} tombstones left");
    // The same after a restart.
    store.shutdown();
    let (store, _) = LogStore::open(&options(dir.path())).unwrap();
    assert_eq!(read(&store, "balances", Isolation::ReadUncommitted), after);
    store.shutdown();
}

#[test]
fn tombstones_stay_for_delete_retention_ms_after_compaction_reaches_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(&options(dir.path())).unwrap();
    compacted_topic(&store, "t", "1500");
    append(
        &store,
        "t",
        &[("a", Some("1".into())), ("b", Some("1".into()))],
        BatchOptions::default(),
    );
    append(&store, "t", &[("a", None)], BatchOptions::default());
    for i in 0..60 {
        append(
            &store,
            "t",
            &[("filler", Some(format!("{i}-{}", "y".repeat(100))))],
            BatchOptions::default(),
        );
    }
    compact_now(&store);
    let got = read(&store, "t", Isolation::ReadUncommitted);
    assert_eq!(got[0], (1, "b".to_string(), Some("1".to_string())));
    assert_eq!(
        got[1],
        (2, "a".to_string(), None),
        "the tombstone stays for now"
    );
    std::thread::sleep(Duration::from_millis(1600));
    compact_now(&store);
    let got = read(&store, "t", Isolation::ReadUncommitted);
    assert_eq!(got[0], (1, "b".to_string(), Some("1".to_string())));
    assert_ne!(
        got[1].1, "a",
        "the tombstone is gone after delete.retention.ms"
    );
    store.shutdown();
}

/// How many transaction markers the partition holds.
fn markers(store: &LogStore, topic: &str) -> usize {
    let log = store.topic(topic).unwrap().partition(0).unwrap();
    let (mut offset, high_watermark) = log.bounds();
    let mut count = 0;
    while offset < high_watermark {
        let read = log.read(offset, 1 << 20).unwrap();
        for (header, _) in split_batches(&read.records).unwrap() {
            count += usize::from(header.is_control());
            offset = header.last_offset() + 1;
        }
    }
    count
}

/// Twelve one-record transactions on keys k0..k3 (even rounds commit, odd
/// ones abort), each followed by its marker, then filler: the committed
/// values by key.
fn transactions(store: &LogStore, delete_retention_ms: &str) -> HashMap<String, String> {
    compacted_topic(store, "tx", delete_retention_ms);
    let txn = |pid: i64, seq: i32| BatchOptions {
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: seq,
        attributes: 0x10,
    };
    let mut committed: HashMap<String, String> = HashMap::new();
    for round in 0..12i32 {
        let pid = 100 + i64::from(round % 3);
        let seq = round / 3;
        let key = format!("k{}", round % 4);
        let value = format!("v{round}-{}", "z".repeat(60));
        append(
            store,
            "tx",
            &[(key.as_str(), Some(value.clone()))],
            txn(pid, seq),
        );
        let commit = round % 2 == 0;
        append_bytes(store, "tx", build_control_batch(pid, 0, commit, 1_000));
        if commit {
            committed.insert(key, value);
        }
    }
    for i in 0..40 {
        append(
            store,
            "tx",
            &[("filler", Some(format!("{i}-{}", "y".repeat(100))))],
            BatchOptions::default(),
        );
    }
    committed
}

#[test]
fn aborted_records_go_and_read_committed_sees_exactly_the_committed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(&options(dir.path())).unwrap();
    let committed = transactions(&store, "0");
    assert_eq!(markers(&store, "tx"), 12);
    let before = read(&store, "tx", Isolation::ReadCommitted);
    compact_now(&store);
    let after = read(&store, "tx", Isolation::ReadCommitted);
    let after_uncommitted = read(&store, "tx", Isolation::ReadUncommitted);
    // No aborted record is left at all, read_committed or not.
    assert_eq!(
        after_uncommitted.iter().filter(|r| r.1 != "filler").count(),
        after.iter().filter(|r| r.1 != "filler").count()
    );
    let latest: HashMap<&str, &str> = after
        .iter()
        .filter(|r| r.1 != "filler")
        .map(|r| (r.1.as_str(), r.2.as_deref().unwrap()))
        .collect();
    for (key, value) in &committed {
        assert_eq!(latest.get(key.as_str()), Some(&value.as_str()), "key {key}");
    }
    // What read_committed saw before, minus superseded records.
    let before_latest: HashMap<&str, &str> = before
        .iter()
        .filter(|r| r.1 != "filler")
        .map(|r| (r.1.as_str(), r.2.as_deref().unwrap()))
        .collect();
    assert_eq!(latest, before_latest);
    // A marker goes with the last record of its transaction: those of the
    // surviving committed values stay, one per key.
    assert_eq!(markers(&store, "tx"), committed.len());
    store.shutdown();
}

#[test]
fn markers_stay_for_delete_retention_ms() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(&options(dir.path())).unwrap();
    let committed = transactions(&store, "3600000");
    compact_now(&store);
    assert_eq!(markers(&store, "tx"), 12);
    let after = read(&store, "tx", Isolation::ReadCommitted);
    let latest: HashMap<&str, &str> = after
        .iter()
        .filter(|r| r.1 != "filler")
        .map(|r| (r.1.as_str(), r.2.as_deref().unwrap()))
        .collect();
    assert_eq!(latest.len(), committed.len());
    store.shutdown();
}

/// A filler topic's batches, so the compacted topic's sit in sealed segments.
fn fill(store: &LogStore) {
    store
        .create_topic("filler", 1, BTreeMap::new(), false)
        .unwrap();
    for i in 0..60 {
        append(
            store,
            "filler",
            &[("f", Some(format!("{i}-{}", "y".repeat(100))))],
            BatchOptions::default(),
        );
    }
}

#[test]
fn offsets_are_never_handed_out_twice_after_compaction_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(&options(dir.path())).unwrap();
    compacted_topic(&store, "t", "0");
    append(
        &store,
        "t",
        &[("a", Some("1".into()))],
        BatchOptions::default(),
    );
    append(
        &store,
        "t",
        &[("a", Some("2".into()))],
        BatchOptions::default(),
    );
    // The newest batch: a tombstone, past delete.retention.ms at once.
    append(&store, "t", &[("a", None)], BatchOptions::default());
    fill(&store);
    compact_now(&store);
    compact_now(&store);
    let log = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(log.bounds(), (0, 3));
    store.shutdown();
    let (store, _) = LogStore::open(&options(dir.path())).unwrap();
    let next = append(
        &store,
        "t",
        &[("b", Some("1".into()))],
        BatchOptions::default(),
    );
    assert_eq!(next, 3, "the offset after the last one handed out");
    store.shutdown();
}
