//! `replace_records`: a partition holds the new batches and nothing older,
//! also after a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_log::{LogStore, StoreOptions};
use strata_protocol::builder::{build_batch, RecordSpec};

fn batch(keys: &[&str]) -> Bytes {
    let specs: Vec<RecordSpec<'_>> = keys
        .iter()
        .map(|k| RecordSpec {
            key: Some(k.as_bytes()),
            value: Some(b"v"),
            timestamp: 1_000,
        })
        .collect();
    Bytes::from(build_batch(&specs))
}

/// The keys of every record from the log start.
fn keys(store: &LogStore) -> Vec<String> {
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    let mut out = Vec::new();
    partition
        .replay_records(|r| out.push(String::from_utf8(r.key.unwrap().to_vec()).unwrap()))
        .unwrap();
    out
}

#[test]
fn the_partition_holds_the_new_batches_only_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path().to_path_buf());
    let runtime = common::runtime();
    {
        let (store, _) = LogStore::open(&options).unwrap();
        store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
        let partition = store.topic("t").unwrap().partition(0).unwrap();
        runtime
            .block_on(store.replace_records(&partition, vec![batch(&["old-1", "old-2"])]))
            .unwrap();
        assert_eq!(keys(&store), ["old-1", "old-2"]);
        runtime
            .block_on(store.replace_records(&partition, vec![batch(&["a"]), batch(&["b", "c"])]))
            .unwrap();
        assert_eq!(keys(&store), ["a", "b", "c"]);
        assert_eq!(partition.bounds(), (2, 5));
        store.shutdown();
    }
    let (store, _) = LogStore::open(&options).unwrap();
    assert_eq!(keys(&store), ["a", "b", "c"]);
    // Nothing to write: the partition is emptied.
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    runtime
        .block_on(store.replace_records(&partition, Vec::new()))
        .unwrap();
    assert!(keys(&store).is_empty());
    assert_eq!(partition.bounds(), (5, 5));
    store.shutdown();
}
