//! Produce-path validation of one record batch: header parse and CRC-32C.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strata_protocol::batch::{validate_crc, BatchHeader};
use strata_protocol::builder::{build_batch, RecordSpec};

fn batch_of(records: usize, value_len: usize) -> Vec<u8> {
    let value = vec![b'x'; value_len];
    let specs: Vec<RecordSpec<'_>> = (0..records)
        .map(|i| RecordSpec {
            key: None,
            value: Some(&value),
            timestamp: 1_700_000_000_000 + i as i64,
        })
        .collect();
    build_batch(&specs)
}

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_validation");
    for (records, value_len) in [(1, 1024), (16, 1024), (1000, 100)] {
        let batch = batch_of(records, value_len);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("parse_and_crc32c", format!("{records}x{value_len}B")),
            &batch,
            |b, batch| {
                b.iter(|| {
                    let header = BatchHeader::parse(batch).unwrap();
                    validate_crc(batch, &header).unwrap();
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
