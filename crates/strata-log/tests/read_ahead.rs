//! Consumers reading old data in order, with direct I/O and no tail cache
//! (so every batch comes from disk, read ahead from the second read on):
//! they get every record once, in order, while WAL compaction moves the
//! batches they are about to read, and after segments are regrouped.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_log::wal_compaction::{CompactionOptions, CompactionPolicy};
use strata_log::{LogStore, PartitionLog, PendingBatch, StoreOptions};
use strata_protocol::batch::split_batches;
use strata_protocol::builder::{build_batch, RecordSpec};

const SEGMENT: u64 = 64 * 1024;

fn options(dir: &Path) -> StoreOptions {
    let mut options = StoreOptions::new(dir.to_path_buf());
    options.wal_segment_bytes = SEGMENT;
    options.wal_direct_io = true;
    options.wal_cache_bytes = 0;
    options.wal_compaction = CompactionOptions {
        policy: CompactionPolicy {
            live_ratio: 0.0,
            dead_bytes: u64::MAX,
            max_age_ms: u64::MAX,
            max_output_bytes: SEGMENT,
        },
        bytes_per_sec: 0,
        check_interval: Duration::from_secs(3600),
    };
    options
}

fn value(topic: &str, i: usize) -> String {
    format!("{topic}-{i}-{}", "x".repeat(900))
}

/// `count` one-record batches to each topic in turn: their batches share
/// every segment, interleaved.
fn produce_interleaved(store: &LogStore, topics: &[&str], count: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for i in 0..count {
        for topic in topics {
            let partition = store.topic(topic).unwrap().partition(0).unwrap();
            let value = value(topic, i);
            let batch = Bytes::from(build_batch(&[RecordSpec {
                key: None,
                value: Some(value.as_bytes()),
                timestamp: 1,
            }]));
            let pending = PendingBatch {
                partition: Arc::clone(&partition),
                batch,
                log_append_time: false,
            };
            let result = rt.block_on(store.append(vec![pending]));
            result.into_iter().next().unwrap().unwrap();
        }
    }
}

/// Reads `log` from `offset` in reads of about three batches until
/// `until`, checking every record; returns where it stopped.
fn read_in_order(log: &PartitionLog, topic: &str, mut offset: i64, until: i64) -> i64 {
    while offset < until {
        let read = log.read(offset, 3 * 1000).unwrap();
        assert!(!read.records.is_empty(), "nothing read at {offset}");
        for (header, range) in split_batches(&read.records).unwrap() {
            assert_eq!(header.base_offset, offset, "a gap or a repeat");
            strata_protocol::records::for_each_record(
                &read.records[range],
                &header,
                1 << 20,
                |r| {
                    let i = usize::try_from(r.offset).unwrap();
                    assert_eq!(r.value.unwrap(), value(topic, i).as_bytes());
                },
            )
            .unwrap();
            offset = header.last_offset() + 1;
        }
    }
    offset
}

fn setup(dir: &Path) -> Arc<LogStore> {
    let (store, _) = LogStore::open(&options(dir)).unwrap();
    for topic in ["keep", "other", "gone"] {
        store
            .create_topic(topic, 1, BTreeMap::new(), false)
            .unwrap();
    }
    produce_interleaved(&store, &["keep", "other", "gone"], 300);
    store
}

#[test]
fn a_reader_in_order_gets_every_record_while_compaction_moves_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path());
    let keep = store.topic("keep").unwrap().partition(0).unwrap();
    // Half-way: the read-ahead holds batches of the old segment files.
    let at = read_in_order(&keep, "keep", 0, 150);
    // Everything of "gone" dies; compaction rewrites every sealed segment
    // (each replacement keeps the id of the last segment it replaces).
    let gone = store.topic("gone").unwrap().partition(0).unwrap();
    store.delete_records(&gone, 300).unwrap();
    let policy = CompactionPolicy {
        live_ratio: 1.0,
        dead_bytes: 0,
        max_age_ms: 0,
        max_output_bytes: SEGMENT,
    };
    let totals = store.compact_wal(policy).unwrap();
    assert!(totals.runs > 0, "{totals:?}");
    read_in_order(&keep, "keep", at, 300);
    // Read again from the start, over the compacted files.
    read_in_order(&keep, "keep", 0, 300);
    let other = store.topic("other").unwrap().partition(0).unwrap();
    read_in_order(&other, "other", 0, 300);
    store.shutdown();
}

#[test]
fn regrouped_segments_read_back_whole_and_are_regrouped_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path());
    let keep = store.topic("keep").unwrap().partition(0).unwrap();
    let at = read_in_order(&keep, "keep", 0, 100);
    let totals = store.regroup_wal().unwrap();
    assert!(totals.runs > 0, "{totals:?}");
    assert_eq!(totals.failed_runs, 0);
    read_in_order(&keep, "keep", at, 300);
    for topic in ["keep", "other", "gone"] {
        let log = store.topic(topic).unwrap().partition(0).unwrap();
        read_in_order(&log, topic, 0, 300);
    }
    let again = store.regroup_wal().unwrap();
    assert_eq!(again.runs, 0, "already grouped: {again:?}");
    store.shutdown();
    // And after a restart, from the regrouped files' indexes.
    let (store, report) = LogStore::open(&options(dir.path())).unwrap();
    assert!(report.damaged.is_empty());
    for topic in ["keep", "other", "gone"] {
        let log = store.topic(topic).unwrap().partition(0).unwrap();
        read_in_order(&log, topic, 0, 300);
    }
    store.shutdown();
}
