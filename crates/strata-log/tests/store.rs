//! The log store end to end on a real directory: append, read, restart,
//! seal, recover from damage.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use strata_log::{LogStore, PendingBatch, StoreOptions};
use strata_protocol::batch::{split_batches, BatchHeader};
use strata_protocol::builder::{build_batch, RecordSpec};

fn batch(value: &str, timestamp: i64) -> Bytes {
    Bytes::from(build_batch(&[RecordSpec {
        key: Some(b"k"),
        value: Some(value.as_bytes()),
        timestamp,
    }]))
}

async fn produce(store: &LogStore, topic: &str, values: &[&str]) -> Vec<i64> {
    let partition = store.topic(topic).unwrap().partition(0).unwrap();
    let mut offsets = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let pending = PendingBatch {
            partition: Arc::clone(&partition),
            batch: batch(v, 1000 + i as i64),
            log_append_time: false,
        };
        let result = store.append(vec![pending]).await;
        offsets.push(result.into_iter().next().unwrap().unwrap().base_offset);
    }
    offsets
}

/// Every value in the partition, with its offset, read in small fetches.
fn read_all(store: &LogStore, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let partition = store.topic(topic).unwrap().partition(0).unwrap();
    let mut out = Vec::new();
    let mut offset = partition.bounds().0;
    loop {
        let read = partition.read(offset, 100).unwrap();
        if read.records.is_empty() {
            break;
        }
        for (header, range) in split_batches(&read.records).unwrap() {
            let bytes = &read.records[range];
            strata_protocol::records::for_each_record(bytes, &header, 1 << 20, |r| {
                out.push((r.offset, r.value.unwrap_or_default().to_vec()));
            })
            .unwrap();
            offset = header.last_offset() + 1;
        }
    }
    out
}

/// A store whose WAL rolls every `wal_segment_bytes`, holding topic "t" with
/// values `v0..v{count}`, one batch each; every rolled segment is sealed
/// (shutdown drains the sealer) when this returns.
fn sealed_store(dir: &std::path::Path, wal_segment_bytes: u64, count: usize) -> StoreOptions {
    let mut options = StoreOptions::new(dir.to_path_buf());
    options.wal_segment_bytes = wal_segment_bytes;
    let values: Vec<String> = (0..count).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let (store, _) = LogStore::open(&options).unwrap();
    store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
    common::runtime().block_on(produce(&store, "t", &refs));
    store.shutdown();
    options
}

#[test]
fn appended_batches_read_back_in_order_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path().to_path_buf());
    let rt = common::runtime();
    let values: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    {
        let (store, _) = LogStore::open(&options).unwrap();
        store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
        let offsets = rt.block_on(produce(&store, "t", &refs));
        assert_eq!(offsets, (0..50).collect::<Vec<_>>());
        let got = read_all(&store, "t");
        assert_eq!(got.len(), 50);
        store.shutdown();
    }
    let (store, report) = LogStore::open(&options).unwrap();
    assert_eq!(report.entries_recovered, 50);
    assert!(report.damaged.is_empty());
    let got = read_all(&store, "t");
    for (i, (offset, value)) in got.iter().enumerate() {
        assert_eq!(*offset, i as i64);
        assert_eq!(value, format!("v{i}").as_bytes());
    }
    let more = rt.block_on(produce(&store, "t", &["after"]));
    assert_eq!(more, vec![50]);
    store.shutdown();
}

#[test]
fn sealed_and_hot_data_join_without_gaps_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().to_path_buf());
    options.wal_segment_bytes = 2000;
    let rt = common::runtime();
    let values: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    {
        let (store, _) = LogStore::open(&options).unwrap();
        store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
        rt.block_on(produce(&store, "t", &refs));
        // Let the sealer catch up, then read across sealed and hot data.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let got = read_all(&store, "t");
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            (0..300).collect::<Vec<_>>()
        );
        store.shutdown();
    }
    // Every rolled segment is sealed (has an index) and kept; the last one
    // was still being written at shutdown.
    let wal_dir = dir.path().join("wal");
    let segments = strata_wal::list_segments(&wal_dir).unwrap();
    let indexes = strata_log::segment_index::list_indexes(&wal_dir).unwrap();
    assert!(segments.len() > 2, "the WAL did not roll");
    assert_eq!(indexes.len(), segments.len() - 1);
    let (store, report) = LogStore::open(&options).unwrap();
    assert!(report.entries_already_sealed > 250, "{report:?}");
    assert_eq!(
        report.entries_already_sealed + report.entries_recovered,
        300
    );
    let got = read_all(&store, "t");
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
    assert_eq!(got[299].1, b"v299");
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    let found = partition.offset_for_timestamp(1000 + 150).unwrap();
    assert_eq!(found, Some((150, 1150)));
    store.shutdown();
}

#[test]
fn damaged_wal_entry_is_skipped_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path().to_path_buf());
    let rt = common::runtime();
    {
        let (store, _) = LogStore::open(&options).unwrap();
        store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
        rt.block_on(produce(&store, "t", &["a0", "a1", "a2", "a3"]));
        store.shutdown();
    }
    let wal = strata_wal::list_segments(&dir.path().join("wal")).unwrap();
    let (_, path) = wal
        .iter()
        .find(|(_, p)| std::fs::metadata(p).unwrap().len() > 100)
        .unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let scan = strata_wal::scan_segment(&bytes);
    let second = scan.entries[1];
    bytes[(second.payload_position + 30) as usize] ^= 0xff;
    std::fs::write(path, &bytes).unwrap();
    let (store, report) = LogStore::open(&options).unwrap();
    assert_eq!(report.damaged.len(), 1);
    let got = read_all(&store, "t");
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 2, 3]);
    let more = rt.block_on(produce(&store, "t", &["b"]));
    assert_eq!(more, vec![4]);
    let header = BatchHeader::parse(&batch("x", 0)).unwrap();
    assert_eq!(header.record_count, 1);
    store.shutdown();

    // Shutdown drained the sealer: the damaged segment was sealed around
    // its damage (its index lists the intact batches), so the next start
    // loads it from the index without meeting the damage again.
    let id = strata_wal::list_segments(&dir.path().join("wal"))
        .unwrap()
        .into_iter()
        .find(|(_, p)| p == path)
        .unwrap()
        .0;
    assert!(strata_log::segment_index::index_path(&dir.path().join("wal"), id).exists());
    let (store, report) = LogStore::open(&options).unwrap();
    assert!(report.damaged.is_empty());
    assert_eq!(report.entries_already_sealed, 3);
    let got = read_all(&store, "t");
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        vec![0, 2, 3, 4]
    );
    store.shutdown();
}

#[test]
fn delete_records_inside_a_batch_survives_restart_and_sealing() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().to_path_buf());
    options.wal_segment_bytes = 4096;
    let rt = common::runtime();
    {
        let (store, _) = LogStore::open(&options).unwrap();
        let topic = store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
        let partition = topic.partition(0).unwrap();
        let specs: Vec<RecordSpec<'_>> = (0..10)
            .map(|i| RecordSpec {
                key: Some(b"k"),
                value: Some(b"v"),
                timestamp: i,
            })
            .collect();
        let pending = PendingBatch {
            partition: Arc::clone(&partition),
            batch: Bytes::from(build_batch(&specs)),
            log_append_time: false,
        };
        assert_eq!(
            rt.block_on(store.append(vec![pending]))[0]
                .as_ref()
                .unwrap()
                .base_offset,
            0
        );
        assert_eq!(store.delete_records(&partition, 4).unwrap(), 4);
        store.shutdown();
    }
    for round in 0..2 {
        let (store, _) = LogStore::open(&options).unwrap();
        let partition = store.topic("t").unwrap().partition(0).unwrap();
        assert_eq!(partition.bounds(), (4, 10 + 60 * round));
        // The batch straddling the log start is still served from offset 4.
        let read = partition.read(4, 1 << 20).unwrap();
        assert!(!read.records.is_empty());
        // Roll the WAL so the sealer runs over the straddling batch.
        rt.block_on(produce(&store, "t", &["x"; 60]));
        std::thread::sleep(std::time::Duration::from_millis(300));
        store.shutdown();
    }
    let (store, _) = LogStore::open(&options).unwrap();
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(partition.bounds(), (4, 130));
    assert!(!partition.read(4, 1 << 20).unwrap().records.is_empty());
    store.shutdown();
}

#[test]
fn producer_ids_are_never_reused_and_retries_are_deduplicated_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().to_path_buf());
    options.wal_segment_bytes = 4096;
    let rt = common::runtime();
    let idempotent = |seq: i32, pid: i64| {
        let mut b = build_batch(&[RecordSpec {
            key: Some(b"k"),
            value: Some(b"idempotent-value"),
            timestamp: 1,
        }]);
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    };
    let pid;
    {
        let (store, _) = LogStore::open(&options).unwrap();
        pid = store.allocate_producer_id().unwrap();
        let partition = store
            .create_topic("t", 1, BTreeMap::new(), false)
            .unwrap()
            .partition(0)
            .unwrap();
        for seq in 0..100 {
            let pending = PendingBatch {
                partition: Arc::clone(&partition),
                batch: idempotent(seq, pid),
                log_append_time: false,
            };
            assert_eq!(
                rt.block_on(store.append(vec![pending]))[0]
                    .as_ref()
                    .unwrap()
                    .base_offset,
                i64::from(seq)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        store.shutdown();
    }
    let (store, _) = LogStore::open(&options).unwrap();
    assert!(store.allocate_producer_id().unwrap() > pid);
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    // The last batches are retried after the restart: acknowledged at their offsets, not written again.
    for seq in 95..100 {
        let pending = PendingBatch {
            partition: Arc::clone(&partition),
            batch: idempotent(seq, pid),
            log_append_time: false,
        };
        assert_eq!(
            rt.block_on(store.append(vec![pending]))[0]
                .as_ref()
                .unwrap()
                .base_offset,
            i64::from(seq)
        );
    }
    assert_eq!(partition.bounds().1, 100);
    let gap = PendingBatch {
        partition: Arc::clone(&partition),
        batch: idempotent(105, pid),
        log_append_time: false,
    };
    assert!(matches!(
        rt.block_on(store.append(vec![gap]))[0],
        Err(strata_log::LogError::OutOfOrderSequence { .. })
    ));
    let next = PendingBatch {
        partition: Arc::clone(&partition),
        batch: idempotent(100, pid),
        log_append_time: false,
    };
    assert_eq!(
        rt.block_on(store.append(vec![next]))[0]
            .as_ref()
            .unwrap()
            .base_offset,
        100
    );
    store.shutdown();
}

#[test]
fn damaged_sealed_batch_is_not_served_and_reads_step_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = sealed_store(dir.path(), 2000, 100);
    let wal_dir = dir.path().join("wal");
    // The sealed segment holding offset 5, and where that batch sits in it.
    let (id, batch) = strata_log::segment_index::list_indexes(&wal_dir)
        .unwrap()
        .into_iter()
        .find_map(|(id, path)| {
            let batches = strata_log::segment_index::read(&path).unwrap().unwrap();
            batches
                .into_iter()
                .find(|b| b.base_offset == 5)
                .map(|b| (id, b))
        })
        .unwrap();
    let segment = strata_wal::segment_path(&wal_dir, id);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[(batch.position + u64::from(batch.len) - 2) as usize] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();

    let (store, report) = LogStore::open(&options).unwrap();
    assert!(report.damaged.is_empty(), "a sealed segment is not scanned");
    let got: Vec<i64> = read_all(&store, "t").iter().map(|g| g.0).collect();
    let expected: Vec<i64> = (0..100).filter(|o| *o != 5).collect();
    assert_eq!(got, expected);
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    let at_damage = partition.read(5, 10).unwrap();
    let (header, _) = split_batches(&at_damage.records).unwrap()[0].clone();
    assert_eq!(
        header.base_offset, 6,
        "a read at the damaged batch moves on to the next"
    );
    store.shutdown();
}

#[test]
fn segments_are_kept_until_no_partition_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = sealed_store(dir.path(), 2000, 100);
    let wal_dir = dir.path().join("wal");
    let count = |ext: &str| {
        std::fs::read_dir(&wal_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == ext))
            .count()
    };
    let before = count("wal");
    assert!(before > 3, "the WAL did not roll");
    let rt = common::runtime();
    let (store, _) = LogStore::open(&options).unwrap();
    // Restarting removes nothing: every segment holds live records.
    assert_eq!(count("wal"), before + 1);
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    // Deleting the records of the first half frees the segments that
    // held only them, and nothing else. (Shutdown waits for the sealing
    // thread, which removes them.)
    store.delete_records(&partition, 50).unwrap();
    store.shutdown();
    let after_delete = count("wal");
    assert!(
        after_delete < before,
        "{after_delete} segments left of {before}"
    );
    assert!(after_delete > 1);
    let (store, _) = LogStore::open(&options).unwrap();
    let got: Vec<i64> = read_all(&store, "t").iter().map(|g| g.0).collect();
    assert_eq!(got, (50..100).collect::<Vec<_>>());

    // A second topic's records pin the segment they are in; deleting the
    // first topic frees every other sealed segment.
    store.create_topic("u", 1, BTreeMap::new(), false).unwrap();
    rt.block_on(produce(&store, "u", &["u0"]));
    store.delete_topic("t").unwrap();
    store.shutdown();
    assert_eq!(count("idx") + 1, count("wal"));
    let (store, _) = LogStore::open(&options).unwrap();
    assert_eq!(read_all(&store, "u").len(), 1);
    store.shutdown();
    // Only the segment holding "u0" (sealed at the restart) and the one
    // that restart began are left.
    assert_eq!(count("wal"), 2);
}

#[test]
fn a_data_dir_with_partition_segment_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let partition = dir.path().join("partitions").join("00-0");
    std::fs::create_dir_all(&partition).unwrap();
    std::fs::write(partition.join("00000000000000000000.log"), b"old layout").unwrap();
    let err = LogStore::open(&StoreOptions::new(dir.path().to_path_buf())).unwrap_err();
    assert!(err.to_string().contains("earlier data layout"), "{err}");
}

#[test]
fn sealed_batches_cost_one_summary_per_segment_and_read_back_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = sealed_store(dir.path(), 4000, 400);
    // No index cache: every walk over a sealed segment reads its index.
    options.wal_index_cache_bytes = 0;
    let expected: Vec<(i64, Vec<u8>)> = (0..400)
        .map(|i| (i as i64, format!("v{i}").into_bytes()))
        .collect();
    let (store, report) = LogStore::open(&options).unwrap();
    assert_eq!(
        report.entries_already_sealed + report.entries_recovered,
        400
    );
    assert!(report.entries_already_sealed > 300);
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    let (runs, batches) = {
        let st = partition.state();
        (st.batches().runs(), st.batches().len())
    };
    let segments = strata_log::segment_index::list_indexes(&dir.path().join("wal"))
        .unwrap()
        .len();
    assert_eq!(batches, 400);
    // One summary per sealed segment, and the segment being written.
    assert_eq!(runs, segments + 1);
    assert!(runs < 40, "{runs} runs for 400 batches");
    assert_eq!(read_all(&store, "t"), expected);
    let found = partition.offset_for_timestamp(1000 + 250).unwrap();
    assert_eq!(found, Some((250, 1250)));
    store.shutdown();

    // A damaged index entry: the segment is scanned for the batches.
    let (_, index) = strata_log::segment_index::list_indexes(&dir.path().join("wal"))
        .unwrap()
        .into_iter()
        .nth(1)
        .unwrap();
    let mut bytes = std::fs::read(&index).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&index, &bytes).unwrap();
    let (store, _) = LogStore::open(&options).unwrap();
    assert_eq!(read_all(&store, "t"), expected);
    store.shutdown();
}
