//! The fetch read path: planning a read under the partition lock and
//! `pread`ing whole batches from the WAL segments they sit in, from the
//! segment being written and from sealed ones.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_log::{LogStore, PendingBatch, StoreOptions};
use strata_protocol::builder::{build_batch, RecordSpec};

const BATCHES: usize = 2000;
const RECORDS_PER_BATCH: usize = 16;

/// A store holding `BATCHES` batches of 16 x 1 KiB in topic "t"; with a
/// small WAL segment size most of them are in sealed segments.
fn store(dir: &std::path::Path, wal_segment_bytes: u64) -> Arc<LogStore> {
    let mut options = StoreOptions::new(dir.to_path_buf());
    options.wal_segment_bytes = wal_segment_bytes;
    let (store, _) = LogStore::open(&options).unwrap();
    store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    let value = vec![b'v'; 1024];
    let specs: Vec<RecordSpec<'_>> = (0..RECORDS_PER_BATCH)
        .map(|i| RecordSpec {
            key: None,
            value: Some(&value),
            timestamp: i as i64,
        })
        .collect();
    let batch = Bytes::from(build_batch(&specs));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..BATCHES {
            let pending = PendingBatch {
                partition: Arc::clone(&partition),
                batch: batch.clone(),
                log_append_time: false,
            };
            store
                .append(vec![pending])
                .await
                .into_iter()
                .next()
                .unwrap()
                .unwrap();
        }
    });
    store
}

fn read_everything(store: &LogStore) -> usize {
    let partition = store.topic("t").unwrap().partition(0).unwrap();
    let mut offset = 0;
    let mut bytes = 0;
    loop {
        let read = partition.read(offset, 1024 * 1024).unwrap();
        if read.records.is_empty() {
            return bytes;
        }
        bytes += read.records.len();
        let batches = strata_protocol::batch::split_batches(&read.records).unwrap();
        offset = batches.last().unwrap().0.last_offset() + 1;
    }
}

fn fetch(c: &mut Criterion) {
    let mut group = c.benchmark_group("fetch_read");
    group.sample_size(20);
    for (name, wal_segment_bytes) in [("active_segment", 1u64 << 40), ("sealed", 4 * 1024 * 1024)] {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), wal_segment_bytes);
        if wal_segment_bytes < 1 << 40 {
            // Wait for the sealer to catch up.
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let total = read_everything(&store);
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_function(format!("{name}_1MiB_fetches"), |b| {
            b.iter(|| read_everything(&store))
        });
        store.shutdown();
    }
    group.finish();
}

criterion_group!(benches, fetch);
criterion_main!(benches);
