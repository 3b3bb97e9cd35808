//! Data dirs written by earlier builds open and serve every record.
//!
//! `fixtures/format-v1` was written by the broker before the WAL's file
//! header carried a version: topic `fixture`, 2 partitions, 40 records
//! (key `k{i % 5}`, value `value-{i}-x…`, partition `i % 2`) produced one
//! by one by an idempotent producer, in three sealed segments with indexes
//! and one unsealed segment, with producer-state snapshots.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use strata_log::{LogStore, StoreOptions};
use strata_protocol::batch::split_batches;

/// `(offset, key, value)` of every record of a partition.
fn records(store: &LogStore, partition: i32) -> Vec<(i64, String, String)> {
    let log = store
        .topic("fixture")
        .unwrap()
        .partition(partition)
        .unwrap();
    let mut out = Vec::new();
    let (mut offset, high_watermark) = log.bounds();
    while offset < high_watermark {
        let read = log.read(offset, 1 << 20).unwrap();
        for (header, range) in split_batches(&read.records).unwrap() {
            let bytes = &read.records[range];
            strata_protocol::records::for_each_record(bytes, &header, 1 << 20, |r| {
                let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap().to_vec()).unwrap();
                out.push((r.offset, text(r.key), text(r.value)));
            })
            .unwrap();
            offset = header.last_offset() + 1;
        }
    }
    out
}

fn expected(partition: i32) -> Vec<(i64, String, String)> {
    (0..40)
        .filter(|i| i % 2 == partition)
        .enumerate()
        .map(|(offset, i)| {
            (
                offset as i64,
                format!("k{}", i % 5),
                format!("value-{i}-{}", "x".repeat(200)),
            )
        })
        .collect()
}

#[test]
fn a_version_one_data_dir_serves_every_record_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1");
    common::copy_tree(&fixture, dir.path());
    let options = StoreOptions::new(dir.path().to_path_buf());
    for _ in 0..2 {
        let (store, report) = LogStore::open(&options).unwrap();
        assert!(report.damaged.is_empty());
        for partition in 0..2 {
            assert_eq!(records(&store, partition), expected(partition));
        }
        store.shutdown();
    }
    // The segments this build wrote carry the versioned header; the old
    // ones are untouched.
    let wal = dir.path().join("wal");
    let mut versions = Vec::new();
    for (id, path) in strata_wal::list_segments(&wal).unwrap() {
        versions.push((id, strata_wal::read_header(&path).unwrap().unwrap().version));
    }
    assert_eq!(&versions[..4], &[(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert!(versions[4..].iter().all(|(_, v)| *v == 2));
    // The version 1 indexes were rewritten as version 2, listing the same
    // batches.
    for (id, path) in strata_log::segment_index::list_indexes(&wal).unwrap() {
        let head = strata_log::segment_index::read_head(&path)
            .unwrap()
            .unwrap();
        assert!(
            matches!(head, strata_log::segment_index::IndexHead::Runs(_)),
            "index {id} not rewritten"
        );
    }
    let fixture_index = fixture.join("wal/00000000000000000000.idx");
    let old = strata_log::segment_index::read(&fixture_index)
        .unwrap()
        .unwrap();
    let new = strata_log::segment_index::read(&strata_log::segment_index::index_path(&wal, 0))
        .unwrap()
        .unwrap();
    assert_eq!(old, new);
}

#[test]
fn a_segment_of_an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1");
    common::copy_tree(&fixture, dir.path());
    let mut header = strata_wal::encode_file_header(9);
    header[12] = 7;
    let crc = strata_wal::checksum(&header[..24]);
    header[24..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(strata_wal::segment_path(&dir.path().join("wal"), 9), header).unwrap();
    let err = LogStore::open(&StoreOptions::new(dir.path().to_path_buf())).unwrap_err();
    assert!(
        err.to_string().contains("version 7"),
        "unexpected error: {err}"
    );
}

#[test]
fn an_entry_of_an_unknown_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1");
    common::copy_tree(&fixture, dir.path());
    let mut bytes = strata_wal::encode_file_header(9).to_vec();
    strata_wal::encode_entry(&mut bytes, &[&[42u8; 30]]).unwrap();
    std::fs::write(strata_wal::segment_path(&dir.path().join("wal"), 9), bytes).unwrap();
    let err = LogStore::open(&StoreOptions::new(dir.path().to_path_buf())).unwrap_err();
    assert!(
        err.to_string().contains("unknown WAL entry kind 42"),
        "unexpected error: {err}"
    );
}

#[test]
fn metadata_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1");
    common::copy_tree(&fixture, dir.path());
    let path = dir.path().join("meta/topics.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let newer = text.replacen('{', "{\"version\": 99,", 1);
    std::fs::write(&path, newer).unwrap();
    let err = LogStore::open(&StoreOptions::new(dir.path().to_path_buf())).unwrap_err();
    assert!(
        err.to_string().contains("version 99"),
        "unexpected error: {err}"
    );
}
